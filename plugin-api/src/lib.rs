//! # plughost-plugin-api
//!
//! The only crate a plughost plugin depends on. A plugin is a `cdylib` that
//! builds a [`Plugin`] from typed Rust functions and exports it with
//! [`export_plugin!`]; the host loads it with `abi_stable`'s checked loader.
//!
//! ```
//! use plughost_plugin_api::prelude::*;
//!
//! /// F(0) = 0, F(1) = 1.
//! fn fibo(n: u32) -> Result<u64, PluginError> {
//!     let (mut a, mut b) = (0u64, Some(1u64)); // b = F(i + 1), None once it overflows
//!     for _ in 0..n {
//!         let next = b.ok_or_else(|| PluginError::bad_arguments("fibo: n must be at most 93"))?;
//!         (a, b) = (next, a.checked_add(next));
//!     }
//!     Ok(a)
//! }
//!
//! fn plugin(_config: &Config) -> Result<Plugin, PluginError> {
//!     Ok(Plugin::new("math", "1.0.0").method(
//!         Method::new("fibo", fibo)
//!             .route("com.goffersoft.math.algo.fibo")
//!             .doc("The n-th Fibonacci number")
//!             .example(json!([10]), json!(55)),
//!     ))
//! }
//!
//! export_plugin!(plugin);
//! # assert_eq!(plugin(&Config::default()).unwrap().call("fibo", vec![json!(10)]).unwrap(), json!(55));
//! ```
//!
//! ## Modules
//! - [`builder`]: [`Plugin`], [`Method`], [`Service`], [`Scenario`]: what authors write.
//! - [`handler`]: how typed functions become methods: [`Signature`]s from
//!   their types, named and omitted arguments.
//! - [`context`]: [`Context`], what a method learns about its call
//!   (deadline, cancellation, correlation id); [`LocalCall`] for tests.
//! - [`ffi`]: the `#[repr(C)]` types that cross the boundary (the host's side).
//! - [`error`]: [`PluginError`] and the shared error [`codes`].
//! - [`config`]: the plugin's configuration table.
//! - [`service`]: [`ServiceContext`] for tracked services.
//!
//! Panics never cross the boundary: every call into plugin code is wrapped,
//! and a panic comes back as a 500 error saying where it panicked.

pub mod builder;
pub mod config;
pub mod context;
pub mod error;
pub mod ffi;
pub mod handler;
pub mod service;

#[doc(hidden)]
pub mod export;

pub use builder::{Expected, Method, Plugin, Scenario, Service, Step};
pub use config::Config;
pub use context::{Context, LocalCall, Protocol};
pub use error::{codes, PanicReport, PluginError};
pub use ffi::LogLevel;
pub use handler::{Handler, IntoReply, Param, Signature};
pub use service::ServiceContext;

/// Re-exported so the export macro and plugins never need their own
/// dependency on it (and so both sides always use the same version).
pub use abi_stable;
/// Re-exported for plugin authors: parameter and result types describe
/// themselves through it (`#[derive(JsonSchema)]`, with
/// `#[schemars(crate = "plughost_plugin_api::schemars")]` when the plugin
/// has no dependency of its own on schemars).
pub use schemars;
/// Re-exported for plugin authors: structured arguments derive
/// `Deserialize` (with `#[serde(crate = "plughost_plugin_api::serde")]`
/// when the plugin has no dependency of its own on serde).
pub use serde;
/// Re-exported for plugin authors: arguments and results are JSON values.
pub use serde_json;

/// The version of this crate, compiled into every plugin and the host.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long one call of a method declared [`Method::non_blocking`] may run:
/// past it the host moves the method to the plugin's own threads, and the
/// conformance kit's latency check holds such a method's examples to it.
/// Far above what a non-blocking method needs (microseconds), well below
/// what other calls on the same host thread would notice as a stall.
pub const NON_BLOCKING_BUDGET: std::time::Duration = std::time::Duration::from_millis(5);

/// The default route of a method that names none: `plughost.<plugin>.<method>`.
///
/// ```
/// assert_eq!(plughost_plugin_api::default_route("math", "fibo"), "plughost.math.fibo");
/// ```
pub fn default_route(plugin: &str, method: &str) -> String {
    export::default_route(plugin, method)
}

/// Logs through the host from anywhere in plugin code (plugins must not
/// print to stdout or stderr). A no-op until the host created an instance.
///
/// ```
/// use plughost_plugin_api::prelude::*;
///
/// fn divide(a: f64, b: f64) -> Result<f64, PluginError> {
///     if b == 0.0 {
///         log(LogLevel::Warn, "divide: refused a division by zero");
///         return Err(PluginError::bad_arguments("divide: b must not be 0"));
///     }
///     Ok(a / b)
/// }
/// assert_eq!(divide(1.0, 4.0).unwrap(), 0.25);
/// assert_eq!(divide(1.0, 0.0).unwrap_err().code, 400);
/// ```
pub fn log(level: LogLevel, message: impl AsRef<str>) {
    export::host_log(level, message.as_ref());
}

/// Everything a plugin author needs, in one import:
/// `use plughost_plugin_api::prelude::*;` brings [`Plugin`], [`Method`],
/// [`Service`], [`Scenario`], [`ServiceContext`], [`Context`],
/// [`LocalCall`], [`Config`], [`PluginError`], [`codes`], [`log`],
/// [`LogLevel`], [`export_plugin!`], `serde`'s `Serialize` and
/// `Deserialize`, `schemars`' `JsonSchema`, and `serde_json`'s `json!` and
/// `Value`.
pub mod prelude {
    pub use crate::{
        codes, export_plugin, log, Config, Context, LocalCall, LogLevel, Method, Plugin,
        PluginError, Scenario, Service, ServiceContext,
    };
    pub use schemars::JsonSchema;
    pub use serde::{Deserialize, Serialize};
    pub use serde_json::{json, Value};
}

/// Exports a plugin from a `cdylib`: pass a function
/// `fn(&Config) -> Result<Plugin, PluginError>`. Use it once per library,
/// at the crate's top level.
///
/// ```
/// use plughost_plugin_api::prelude::*;
///
/// pub fn plugin(_config: &Config) -> Result<Plugin, PluginError> {
///     Ok(Plugin::new("hello", "0.1.0")
///         .method(Method::new("greet", |name: String| Ok::<_, PluginError>(format!("hello, {name}")))
///             .doc("Greets someone")
///             .example(json!(["ada"]), json!("hello, ada"))))
/// }
///
/// export_plugin!(plugin);
/// ```
///
/// It expands to the `LibHeader` static that `abi_stable`'s loader looks up
/// (what `#[export_root_module]` generates), written out here so that plugin
/// crates need no direct `abi_stable` dependency.
#[macro_export]
macro_rules! export_plugin {
    ($build:path) => {
        #[doc(hidden)]
        pub struct __PlughostPluginBuilder;

        impl $crate::export::Builder for __PlughostPluginBuilder {
            fn build(
                config: &$crate::Config,
            ) -> ::core::result::Result<$crate::Plugin, $crate::PluginError> {
                $build(config)
            }
        }

        #[doc(hidden)]
        #[no_mangle]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::abi_stable::library::LibHeader = unsafe {
            // SAFETY: the constructor returns a `PluginRootRef`, the module type named here.
            $crate::abi_stable::library::LibHeader::from_constructor::<$crate::ffi::PluginRootRef>(
                $crate::export::root_module_loader::<__PlughostPluginBuilder>,
                $crate::abi_stable::library::CheckTypeLayout::Yes,
            )
        };
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn exported_symbol_name_matches_abi_stable() {
        // The macro hard-codes the symbol abi_stable's loader looks up.
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }
}

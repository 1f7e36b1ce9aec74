//! # plughost-loader
//!
//! The host side of the plugin ABI, shared by the host and the conformance
//! kit: one plugin file in, one checked [`PluginHandle`] out, or a
//! [`LoadError`] that names the file and the reason.
//!
//! - [`load`](mod@load): the steps, in order: inspect (trust, settle,
//!   hash), shadow copy, ELF check, `dlopen`, plugin-api version and layout
//!   checks, instance creation, metadata validation.
//! - `inspect`: a plugin file's trust, settling and hash, before anything is copied.
//! - `trust`: may anyone but root and the host's user change a plugin file?
//! - `settle`: has a file stopped changing?
//! - `elf`: is a file a complete ELF shared object (nothing past its end)?
//! - [`shadow`]: the content-addressed cache libraries are mapped from, and
//!   its pruning.
//! - [`handle`]: a loaded instance, its descriptor (validated here: this is
//!   the one home of the metadata rules), state and counters.
//! - [`pool`]: the threads one instance's calls run on.
//! - [`host_api`]: the callbacks a plugin makes into the host (logging).
//! - [`call`]: [`HostCall`], what a plugin learns about one call (deadline,
//!   cancellation, correlation id).
//!
//! ```no_run
//! use plughost_loader::{load, PluginSpec};
//!
//! let math = load(&PluginSpec::file("target/release/libplugin_math.so"))?;
//! assert_eq!(math.call("fibo", &[10.into()])?, serde_json::json!(55));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod call;
mod elf;
mod error;
pub mod handle;
pub mod host_api;
mod inspect;
pub mod load;
pub mod pool;
pub mod settle;
pub mod shadow;
pub mod trust;

pub use call::{CancelReason, CancelScope, HostCall};
pub use error::LoadError;
pub use handle::{
    Admission, Example, InstanceId, MethodDescriptor, NotAdmitted, Outcome, ParamDescriptor,
    PluginDescriptor, PluginHandle, PluginState, ScenarioDescriptor, ServiceDescriptor,
};
pub use host_api::PLUGIN_LOG_TARGET;
pub use inspect::{file_sha256, inspect, PluginFile};
pub use load::{
    check_api_compatible, check_pin, host_api_version, instantiate, load, load_with_host,
    tracing_host, PluginSpec,
};

/// True when `route` is a usable AMQP topic routing key for a method: one or
/// more non-empty dot-separated words, no wildcards, at most 255 bytes. The
/// loader refuses plugins whose default routes break it, the manifest
/// refuses overrides that do.
///
/// ```
/// assert!(plughost_loader::is_valid_route("com.goffersoft.math.algo.fibo"));
/// assert!(!plughost_loader::is_valid_route("a..b"));
/// assert!(!plughost_loader::is_valid_route("a.*"));
/// ```
pub fn is_valid_route(route: &str) -> bool {
    !route.is_empty()
        && route.len() <= 255
        && route.split('.').all(|word| {
            !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':'))
        })
}

//! Plugins: loading cdylibs through abi_stable, checking them, and the
//! registry of the methods and services they provide.
//!
//! - [`loader`]: one file -> one checked [`PluginHandle`] (shadow copy,
//!   version and layout checks, instance creation).
//! - [`handle`]: a loaded instance, its descriptor, state and counters.
//! - [`registry`]: the plugins of one host and its method index.
//! - [`reload`]: the next registry from a changed manifest, built beside the current one.
//!
//! ```no_run
//! use plughost::plugins::{load, PluginSpec};
//!
//! let math = load(&PluginSpec::file("target/release/libplugin_math.so"))?;
//! assert_eq!(math.call("fibo", &[10.into()])?, serde_json::json!(55));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod call;
mod error;
pub mod handle;
pub mod host_api;
pub mod loader;
pub mod registry;
pub mod reload;

pub use call::HostCall;
pub use error::LoadError;
pub use handle::{
    Example, MethodDescriptor, Outcome, ParamDescriptor, PluginDescriptor, PluginHandle,
    PluginState, ScenarioDescriptor, ServiceDescriptor,
};
pub use host_api::PLUGIN_LOG_TARGET;
pub use loader::{host_api_version, load, load_with_host, PluginSpec};
pub use registry::{MethodEntry, Registry};
pub use reload::{rebuild, Changes};

//! Plugins: loading cdylibs through abi_stable, checking them, and the
//! registry of the methods and services they provide.
//!
//! - [`loader`]: one file -> one checked [`PluginHandle`] (trust, settle,
//!   hash, shadow copy, ELF, version and layout checks, instance creation).
//! - `trust`: may anyone but root and the host's user change a plugin file?
//! - `settle`: has a file stopped changing?
//! - `elf`: is a file a complete ELF shared object (nothing past its end)?
//! - [`shadow`]: the content-addressed cache the libraries are mapped from,
//!   and its pruning.
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

mod elf;
mod error;
pub mod handle;
pub(crate) mod host_api;
pub mod loader;
pub mod pool;
pub mod registry;
pub mod reload;
mod settle;
pub mod shadow;
mod trust;

pub use error::LoadError;
pub use handle::{
    MethodDescriptor, PluginDescriptor, PluginHandle, PluginState, ServiceDescriptor,
};
pub(crate) use loader::PluginFile;
pub use loader::{file_sha256, host_api_version, load, load_with_host, PluginSpec};
pub use registry::{MethodEntry, Registry};
pub use reload::{rebuild, Changes};

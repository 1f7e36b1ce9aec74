//! The plugins of one host: the registry of the methods and services they
//! provide, and the next registry a reload builds beside it.
//!
//! - [`registry`]: the plugins of one host and its method index, checked
//!   whole (names, limits, thread budget).
//! - [`reload`]: the next registry from a changed manifest.
//!
//! Loading and checking one plugin file is `plughost-loader`'s
//! ([`plughost_loader::load`]); this module decides what a host serves.

mod error;
pub mod registry;
pub mod reload;

pub use error::RegistryError;
pub use plughost_loader::{
    load, Example, HostCall, LoadError, MethodDescriptor, Outcome, ParamDescriptor,
    PluginDescriptor, PluginHandle, PluginSpec, PluginState, ScenarioDescriptor, ServiceDescriptor,
};
pub use registry::{MethodEntry, Registry};
pub use reload::{rebuild, Changes};

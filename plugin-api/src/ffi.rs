//! The types that cross the FFI boundary between the host and a plugin.
//!
//! Everything here is `#[repr(C)]` + [`StableAbi`] and built only from
//! abi_stable's `R*` types, so `abi_stable` can check at load time that the
//! host and the plugin agree on every layout. Plugin authors never touch this
//! module directly: [`crate::Plugin`] and [`crate::export_plugin!`] build it.
//!
//! Compatibility rules (see `docs/writing-plugins.md`):
//! - [`PluginRoot`] is a prefix type: fields after the one marked
//!   `last_prefix_field` may be appended in minor releases and are read
//!   through `Option` accessors, so an older plugin still loads.
//! - [`PluginInstance`] and [`ServiceHost`] are `sabi_trait` objects, which
//!   follow the same rule for their methods.
//! - The plain descriptor structs ([`PluginInfo`] and friends) never change
//!   within a major ABI version; growth goes through new root-module fields.

// `sabi_trait` expands to impls inside a const block; the lint does not apply to us.
#![allow(non_local_definitions)]

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, ROption, RResult, RStr, RString, RVec},
    StableAbi,
};

use crate::PluginError;

/// The root module a plugin library exports: the entry point the host
/// finds by symbol name after `dlopen`.
///
/// Built by [`crate::export_plugin!`]; the host reaches it through
/// [`PluginRootRef`].
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginRootRef)))]
pub struct PluginRoot {
    /// Creates a plugin instance from its JSON configuration (the plugin's
    /// `config` table in the manifest) and the host's callbacks.
    ///
    /// Never unwinds: a panic in the plugin's builder becomes an error.
    pub new_instance: extern "C" fn(
        config_json: RStr<'_>,
        host: HostApiBox,
    ) -> RResult<PluginInstanceBox, PluginError>,

    /// The plugin-api version the plugin was compiled against, as
    /// `major.minor.patch`.
    #[sabi(last_prefix_field)]
    pub api_version: extern "C" fn() -> RStr<'static>,
}

impl RootModule for PluginRootRef {
    declare_root_module_statics! {PluginRootRef}
    const BASE_NAME: &'static str = "plughost_plugin";
    const NAME: &'static str = "plughost plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// One live plugin instance: a plugin library plus one configuration.
///
/// The host may hold several instances of one library (for example the old
/// and new configuration during a reload); each owns its own state.
#[sabi_trait]
pub trait PluginInstance: Send + Sync {
    /// Describes the plugin: name, version, methods and tracked services.
    fn info(&self) -> PluginInfo;

    /// Calls `method` with a JSON array of arguments and returns the JSON
    /// result. Never unwinds: panics come back as errors with code 500.
    fn call(&self, method: RStr<'_>, args_json: RStr<'_>) -> RResult<RString, PluginError>;

    /// Runs the tracked service `service` until `host` says stop; returns
    /// when the service has finished. Never unwinds.
    #[sabi(last_prefix_field)]
    fn run_service(&self, service: RStr<'_>, host: ServiceHostBox) -> RResult<(), PluginError>;
}

/// An owned, type-erased [`PluginInstance`].
pub type PluginInstanceBox = PluginInstance_TO<'static, RBox<()>>;

/// Callbacks the host offers to every plugin instance.
#[sabi_trait]
pub trait HostApi: Send + Sync {
    /// Writes one log record through the host's logging (plugins must not
    /// print to stdout or stderr).
    #[sabi(last_prefix_field)]
    fn log(&self, level: LogLevel, message: RStr<'_>);
}

/// An owned, type-erased [`HostApi`].
pub type HostApiBox = HostApi_TO<'static, RBox<()>>;

/// What a running tracked service can ask of the host.
#[sabi_trait]
pub trait ServiceHost: Send + Sync {
    /// True once the host has asked the service to stop.
    fn should_stop(&self) -> bool;

    /// Blocks until the service is asked to stop or `timeout_ms` passes;
    /// returns true when it was asked to stop.
    fn wait_stop(&self, timeout_ms: u64) -> bool;

    /// The service's uuid as registered with the service manager.
    fn service_id(&self) -> RString;

    /// Sends a management command (for example `l` to list services) to the
    /// service manager and returns its answer body.
    fn ask_manager(&self, command: RStr<'_>) -> RResult<RString, PluginError>;

    /// Writes one log record through the host's logging.
    #[sabi(last_prefix_field)]
    fn log(&self, level: LogLevel, message: RStr<'_>);
}

/// An owned, type-erased [`ServiceHost`].
pub type ServiceHostBox = ServiceHost_TO<'static, RBox<()>>;

/// Severity of a log record sent from a plugin to the host, least severe
/// first.
///
/// ```
/// use plughost_plugin_api::LogLevel;
///
/// assert!(LogLevel::Trace < LogLevel::Error);
/// assert!(LogLevel::Warn >= LogLevel::Info);
/// ```
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the plugin recovered from.
    Warn,
    /// Something failed.
    Error,
}

/// A plugin's self-description, as the host lists and routes it.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct PluginInfo {
    /// Unique plugin name, for example `math`.
    pub name: RString,
    /// The plugin's own version (semver).
    pub version: RString,
    /// The plugin-api version it was built against.
    pub api_version: RString,
    /// One-line description.
    pub doc: RString,
    /// The RPC methods it serves.
    pub methods: RVec<MethodInfo>,
    /// The tracked services it runs.
    pub services: RVec<ServiceInfo>,
    /// A sample configuration as JSON, for documentation and conformance.
    pub sample_config: ROption<RString>,
}

/// One RPC method of a plugin.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct MethodInfo {
    /// Method name, unique across a host.
    pub name: RString,
    /// The default route (an AMQP topic routing key).
    pub route: RString,
    /// One-line documentation.
    pub doc: RString,
    /// Example calls with expected results, checked by the conformance kit.
    pub examples: RVec<ExampleCall>,
    /// How long one example call may take, in milliseconds; 0 = host default.
    pub latency_budget_ms: u64,
}

/// An example call: arguments and the result they must produce.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct ExampleCall {
    /// The arguments as a JSON array.
    pub args_json: RString,
    /// The expected result as JSON.
    pub expected_json: RString,
}

/// One tracked service of a plugin.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct ServiceInfo {
    /// Service name as registered with the service manager.
    pub name: RString,
    /// One-line documentation.
    pub doc: RString,
}

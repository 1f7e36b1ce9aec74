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
//! - [`PluginInstance`], [`CallContext`] and [`ServiceHost`] are
//!   `sabi_trait` objects, which follow the same rule for their methods.
//! - The plain descriptor structs ([`PluginInfo`] and friends) never change
//!   within one ABI version (for 0.x: one minor version); growth goes
//!   through new root-module fields or a new ABI version.
//!
//! What 0.2 added over 0.1 (so 0.1 plugins are refused with both versions
//! named): method signatures ([`ParamInfo`], result schema), a per-call
//! [`CallContext`], state hand-over ([`StateSnapshot`]), examples that
//! expect an error, and ordered [`ScenarioInfo`]s for the conformance kit.

// `sabi_trait` expands to impls inside a const block; the lint does not apply to us.
#![allow(non_local_definitions)]

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, ROption, RResult, RStr, RString, RVec},
    RRef, StableAbi,
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

    /// Calls `method` with its arguments as JSON (an array of positional
    /// arguments, or an object of named ones) and returns the JSON result.
    /// `ctx` describes this one call (deadline, cancellation, correlation
    /// id) and lives only as long as the call. Never unwinds: panics come
    /// back as errors with code 500.
    fn call(
        &self,
        method: RStr<'_>,
        args_json: RStr<'_>,
        ctx: CallContextRef<'_>,
    ) -> RResult<RString, PluginError>;

    /// Runs the tracked service `service` until `host` says stop; returns
    /// when the service has finished. Never unwinds.
    fn run_service(&self, service: RStr<'_>, host: ServiceHostBox) -> RResult<(), PluginError>;

    /// Hands the instance's state over before it retires: `RNone` when the
    /// plugin keeps no state (it did not opt in). Called after its last
    /// call has returned. Never unwinds.
    fn export_state(&self) -> RResult<ROption<StateSnapshot>, PluginError>;

    /// Takes over the state a previous instance exported, before this one
    /// serves its first call; an error refuses the upgrade (the old
    /// instance goes on serving). Never unwinds.
    #[sabi(last_prefix_field)]
    fn import_state(&self, state: StateSnapshot) -> RResult<(), PluginError>;

    /// The methods the author declared non-blocking
    /// ([`crate::Method::non_blocking`]). Added in 0.2.1 after the prefix,
    /// with a default: a plugin built against 0.2.0 has none, and still
    /// loads.
    fn non_blocking_methods(&self) -> RVec<RString> {
        RVec::new()
    }
}

/// What the host tells a plugin about one call, for as long as it runs.
///
/// The host makes one per call; the plugin sees it through
/// [`crate::Context`].
#[sabi_trait]
pub trait CallContext: Sync {
    /// Milliseconds left until the caller's deadline (`u64::MAX`: none).
    fn remaining_ms(&self) -> u64;

    /// True once the call is cancelled: its deadline passed, its caller is
    /// gone, or the host is shutting down or retiring this instance.
    fn is_cancelled(&self) -> bool;

    /// Blocks until the call is cancelled or `timeout_ms` passes; returns
    /// true when it is cancelled.
    fn wait_cancelled(&self, timeout_ms: u64) -> bool;

    /// The caller's correlation id (empty when the caller sent none).
    fn correlation_id(&self) -> RStr<'_>;

    /// How the call arrived: `v1`, `v2`, `local` or `in-process`.
    fn protocol(&self) -> RStr<'_>;

    /// The qualified method name, `<plugin>.<method>`.
    fn method(&self) -> RStr<'_>;

    /// Writes one log record, tagged with this call's correlation id.
    #[sabi(last_prefix_field)]
    fn log(&self, level: LogLevel, message: RStr<'_>);
}

/// A borrowed, type-erased [`CallContext`], valid for one call.
pub type CallContextRef<'a> = CallContext_TO<'a, RRef<'a, ()>>;

/// State one instance hands to the next during an upgrade (see
/// [`PluginInstance::export_state`]).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct StateSnapshot {
    /// The version of the plugin that exported it, so the importer can
    /// convert an older shape (Erlang/OTP's `code_change`).
    pub plugin_version: RString,
    /// How `data` is encoded.
    pub format: StateFormat,
    /// The state.
    pub data: RVec<u8>,
}

/// How a [`StateSnapshot`]'s data is encoded.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFormat {
    /// UTF-8 JSON text.
    Json,
    /// Bytes only the plugin understands.
    Bytes,
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
    /// Ordered call sequences for the conformance kit, run on one instance.
    pub scenarios: RVec<ScenarioInfo>,
    /// True when the plugin exports and imports its state across upgrades.
    pub keeps_state: bool,
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
    /// Its parameters, in order (empty for a variadic method).
    pub params: RVec<ParamInfo>,
    /// True when it takes any number of JSON arguments (no signature).
    pub variadic: bool,
    /// JSON Schema of its result, as JSON text.
    pub result_schema: RString,
    /// True when its handler takes a call context.
    pub takes_context: bool,
    /// Example calls with expected outcomes, checked by the conformance kit.
    pub examples: RVec<ExampleCall>,
    /// How long one example call may take, in milliseconds; 0 = host default.
    pub latency_budget_ms: u64,
}

/// One parameter of a method.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct ParamInfo {
    /// Its name (for named arguments; `arg1`, `arg2`, ... when the author
    /// gave none).
    pub name: RString,
    /// JSON Schema of its type, as JSON text.
    pub schema: RString,
    /// True when it may be left out (its type accepts `null`, as
    /// `Option<T>` does); only trailing parameters can be omitted.
    pub optional: bool,
}

/// An example call: arguments and the outcome they must produce.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct ExampleCall {
    /// The arguments as JSON (array or object).
    pub args_json: RString,
    /// The expected result as JSON (empty when an error is expected).
    pub expected_json: RString,
    /// The expected error code; 0 when a result is expected.
    pub expected_code: u16,
}

/// A named sequence of calls that must give these outcomes in this order,
/// on one fresh instance (for stateful plugins).
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct ScenarioInfo {
    /// Its name, for the kit's report.
    pub name: RString,
    /// The steps, in order.
    pub steps: RVec<ScenarioStep>,
}

/// One step of a scenario: a method and an example call.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct ScenarioStep {
    /// The method called.
    pub method: RString,
    /// Its arguments and expected outcome.
    pub call: ExampleCall,
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

//! [`PluginHandle`]: one loaded plugin instance and what the host knows about it.
//!
//! The handle is the one owner of an instance's life: its identity
//! ([`InstanceId`], never reused), its [`PluginState`] (loaded, serving,
//! draining, retired), the calls it admits and the events others wait on.
//! A call enters through [`PluginHandle::admit`], which lets it in only
//! while the instance serves; draining is waiting for the admitted calls
//! to leave ([`PluginHandle::drained`]), woken by the last one, not polled.
//! A replaced instance names its successor, so a call that found the old
//! instance follows the hand-over to the new one.

use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::SystemTime,
};

use abi_stable::{sabi_trait::TD_Opaque, std_types::RStr};
use event_listener::{Event, EventListener};
use plughost_plugin_api::{
    ffi::{
        CallContext_TO, ExampleCall, PluginInfo, PluginInstanceBox, ServiceHostBox, StateSnapshot,
    },
    PluginError,
};
use serde::Serialize;
use serde_json::Value;

use crate::{
    call::{CancelScope, HostCall},
    is_valid_route,
    pool::PluginPool,
    LoadError,
};

/// Threads of an instance before a registry gives it its share.
const DEFAULT_THREADS: usize = 16;

/// Where a plugin instance is in its life inside a host. Named in logs and
/// in `plughost status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginState {
    /// Loaded and checked, not yet taking calls (a replacement waits here
    /// while it imports its predecessor's state).
    Loaded,
    /// Taking calls.
    Serving,
    /// Replaced or removed: finishing the calls it has, taking no new ones.
    Draining,
    /// Done; its library stays mapped (libraries are never unloaded).
    Retired,
}

/// A plugin instance's identity within one host process: a counter, never
/// reused (unlike an `Arc`'s address, which a later instance may get).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct InstanceId(u64);

impl InstanceId {
    fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The number, as logs and `plughost status` show it.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Why [`PluginHandle::admit`] turned a call away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAdmitted {
    /// The instance is not serving (yet, or any more); wait for its next
    /// state change ([`PluginHandle::state_changes`]) and ask again.
    Wait,
    /// The instance handed its calls over to this successor.
    Moved,
}

impl fmt::Display for PluginState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        f.write_str(s.as_deref().unwrap_or("?"))
    }
}

/// A plugin's self-description in plain Rust types.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginDescriptor {
    /// Unique plugin name.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// The plugin-api version it was built against.
    pub api_version: String,
    /// One-line description.
    pub doc: String,
    /// Its RPC methods.
    pub methods: Vec<MethodDescriptor>,
    /// Its tracked services.
    pub services: Vec<ServiceDescriptor>,
    /// A sample configuration, if it offers one.
    pub sample_config: Option<Value>,
    /// Ordered call sequences for the conformance kit.
    pub scenarios: Vec<ScenarioDescriptor>,
    /// True when it hands its state over across upgrades.
    pub keeps_state: bool,
}

/// One method as the plugin declares it (before manifest overrides).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodDescriptor {
    /// Method name.
    pub name: String,
    /// Default route.
    pub route: String,
    /// One-line documentation.
    pub doc: String,
    /// Its parameters, in order (none for a variadic method).
    pub params: Vec<ParamDescriptor>,
    /// True when it takes any JSON arguments.
    pub variadic: bool,
    /// JSON Schema of its result.
    pub result_schema: Value,
    /// True when its handler takes a call context.
    pub takes_context: bool,
    /// Example calls: arguments and expected outcome.
    pub examples: Vec<Example>,
    /// Latency budget for an example call, in milliseconds (0 = default).
    pub latency_budget_ms: u64,
    /// Its author declared it non-blocking (`Method::non_blocking`): the
    /// host may run it inline.
    pub non_blocking: bool,
}

/// One parameter of a method.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamDescriptor {
    /// Its name.
    pub name: String,
    /// JSON Schema of its type.
    pub schema: Value,
    /// True when a caller may leave it out.
    pub optional: bool,
}

/// An example call and the outcome it must give.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Example {
    /// The arguments (array or object).
    pub args: Value,
    /// What it must give.
    pub expected: Outcome,
}

/// What an example must give.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// This result.
    Result(Value),
    /// An error with this code.
    Error(u16),
}

/// A named sequence of example calls on one instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioDescriptor {
    /// Its name.
    pub name: String,
    /// The calls, in order: method and example.
    pub steps: Vec<(String, Example)>,
}

/// One tracked service as the plugin declares it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceDescriptor {
    /// Service name.
    pub name: String,
    /// One-line documentation.
    pub doc: String,
}

/// The next change of a plugin instance's state ([`PluginHandle::state_changes`]).
/// A plain event (the `event-listener` crate), not a tokio channel: plugin
/// authors' kit builds this crate, and it stays free of tokio.
#[derive(Debug)]
pub struct StateChange(EventListener);

impl StateChange {
    /// Resolves when the state has changed.
    pub async fn changed(self) {
        self.0.await;
    }
}

/// A loaded plugin instance: the FFI object plus its descriptor, file
/// identity, state and call counters.
pub struct PluginHandle {
    id: InstanceId,
    descriptor: PluginDescriptor,
    file: PathBuf,
    sha256: String,
    loaded_at: SystemTime,
    config: Value,
    state: Mutex<PluginState>,
    /// Woken when the state changes.
    state_changed: Event,
    /// Calls served, per method.
    calls: HashMap<String, AtomicU64>,
    /// The methods that may run inline (declared non-blocking and not yet
    /// caught overrunning): see [`PluginHandle::runs_inline`].
    inline: HashMap<String, AtomicBool>,
    in_flight: AtomicUsize,
    /// Woken when the last in-flight call leaves.
    idle: Event,
    /// Every call of this instance; cancelled on shutdown or retirement.
    cancel: Arc<CancelScope>,
    /// The instance that took over its state, once it has.
    successor: OnceLock<Arc<PluginHandle>>,
    pool: PluginPool,
    instance: PluginInstanceBox,
}

impl fmt::Debug for PluginHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginHandle")
            .field("id", &self.id)
            .field("name", &self.descriptor.name)
            .field("version", &self.descriptor.version)
            .field("file", &self.file)
            .field("state", &self.state())
            .finish()
    }
}

impl PluginHandle {
    pub(super) fn new(
        file: PathBuf,
        sha256: String,
        loaded_at: SystemTime,
        config: Value,
        instance: PluginInstanceBox,
    ) -> Result<Self, LoadError> {
        let mut descriptor = describe(&file, instance.info())?;
        let non_blocking = instance.non_blocking_methods();
        for m in &mut descriptor.methods {
            m.non_blocking = non_blocking.iter().any(|n| n.as_str() == m.name);
        }
        let calls = descriptor
            .methods
            .iter()
            .map(|m| (m.name.clone(), AtomicU64::new(0)))
            .collect();
        let inline = descriptor
            .methods
            .iter()
            .filter(|m| m.non_blocking)
            .map(|m| (m.name.clone(), AtomicBool::new(true)))
            .collect();
        let pool = PluginPool::new(descriptor.name.clone(), DEFAULT_THREADS);
        Ok(Self {
            id: InstanceId::next(),
            descriptor,
            file,
            sha256,
            loaded_at,
            config,
            state: Mutex::new(PluginState::Loaded),
            state_changed: Event::new(),
            calls,
            inline,
            in_flight: AtomicUsize::new(0),
            idle: Event::new(),
            cancel: CancelScope::new(),
            successor: OnceLock::new(),
            pool,
            instance,
        })
    }

    /// This instance's identity.
    pub fn id(&self) -> InstanceId {
        self.id
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.descriptor.name
    }

    /// The plugin's version.
    pub fn version(&self) -> &str {
        &self.descriptor.version
    }

    /// Everything the plugin says about itself.
    pub fn descriptor(&self) -> &PluginDescriptor {
        &self.descriptor
    }

    /// The file it was loaded from (not the shadow copy).
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// SHA-256 of the file's content when it was loaded.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// When it was loaded.
    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }

    /// The configuration it was created with.
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// Its current state.
    pub fn state(&self) -> PluginState {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves it to another state, waking calls that wait for a change.
    pub fn set_state(&self, state: PluginState) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = state;
        self.state_changed.notify(usize::MAX);
    }

    /// The next change of its state: calls turned away by [`Self::admit`]
    /// wait on it. Take it before looking at the state again, so a change in
    /// between is not missed.
    pub fn state_changes(&self) -> StateChange {
        StateChange(self.state_changed.listen())
    }

    /// Lets a call in while the instance serves: the call counts as in
    /// flight until the [`Admission`] drops. Once [`Self::set_state`] has
    /// moved it to draining, no call gets in, and [`Self::drained`] sees
    /// every call that did.
    pub fn admit(self: &Arc<Self>) -> Result<Admission, NotAdmitted> {
        // Count first, then look: a drainer that changes the state and then
        // reads the count cannot miss a call that saw it serving.
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        if self.state() == PluginState::Serving {
            return Ok(Admission {
                plugin: Arc::clone(self),
            });
        }
        self.leave();
        if self.successor.get().is_some() {
            Err(NotAdmitted::Moved)
        } else {
            Err(NotAdmitted::Wait)
        }
    }

    fn leave(&self) {
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify(usize::MAX);
        }
    }

    /// Resolves once no call is in flight (after the state left serving, it
    /// stays so). Woken by the last call that leaves.
    pub async fn drained(&self) {
        loop {
            // Listen first, then look: the last call's wake-up cannot slip
            // in between.
            let idle = self.idle.listen();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }

    /// Records the instance that took over its state; calls turned away
    /// from this one go there.
    pub fn hand_over_to(&self, successor: Arc<PluginHandle>) {
        let _ = self.successor.set(successor);
    }

    /// The instance that took over its state, if one has.
    pub fn successor(&self) -> Option<&Arc<PluginHandle>> {
        self.successor.get()
    }

    /// The scope every call of this instance is in: cancel it to cancel
    /// them all (shutdown, retirement).
    pub fn cancel_scope(&self) -> &Arc<CancelScope> {
        &self.cancel
    }

    /// True when `method` may run on the thread that received the call
    /// rather than on this instance's pool: its author declared it
    /// non-blocking and no call of it has overrun since this instance
    /// loaded.
    pub fn runs_inline(&self, method: &str) -> bool {
        self.inline
            .get(method)
            .is_some_and(|i| i.load(Ordering::Relaxed))
    }

    /// Moves `method` back to this instance's pool for the rest of the
    /// instance's life (a call overran its inline budget). True the first
    /// time, so the caller logs it once.
    pub fn stop_inline(&self, method: &str) -> bool {
        self.inline
            .get(method)
            .is_some_and(|i| i.swap(false, Ordering::Relaxed))
    }

    /// Calls served so far, per method.
    pub fn call_counts(&self) -> Vec<(String, u64)> {
        let mut counts: Vec<_> = self
            .calls
            .iter()
            .map(|(m, c)| (m.clone(), c.load(Ordering::Relaxed)))
            .collect();
        counts.sort();
        counts
    }

    /// Calls a method with JSON values, in process, with no deadline.
    /// Blocking: run it off async workers.
    pub fn call(&self, method: &str, args: &[Value]) -> Result<Value, PluginError> {
        let args = serde_json::to_string(args)
            .map_err(|e| PluginError::bad_arguments(format!("arguments do not serialise: {e}")))?;
        let call = HostCall::new(self.name(), method, "in-process");
        let result = self.call_json(method, &args, &call)?;
        serde_json::from_str(&result).map_err(|e| {
            PluginError::failed(format!(
                "plugin {} returned invalid JSON from {method}: {e}",
                self.name()
            ))
        })
    }

    /// Calls a method with its arguments already encoded as JSON (an array,
    /// or an object of named arguments) and returns the JSON result text:
    /// the RPC path, which never needs the values decoded in the host.
    /// `call` is what the plugin may learn about the call (deadline,
    /// cancellation, correlation id).
    pub fn call_json(
        &self,
        method: &str,
        args_json: &str,
        call: &HostCall,
    ) -> Result<String, PluginError> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let result = self.invoke(method, args_json, call);
        self.leave();
        result
    }

    fn invoke(
        &self,
        method: &str,
        args_json: &str,
        call: &HostCall,
    ) -> Result<String, PluginError> {
        if let Some(counter) = self.calls.get(method) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        let entered = call.enter();
        let result = self
            .instance
            .call(
                RStr::from_str(method),
                RStr::from_str(args_json),
                CallContext_TO::from_ptr(call, TD_Opaque),
            )
            .into_result();
        drop(entered);
        result.map(|s| s.into_string())
    }

    /// The threads its calls run on (see [`PluginPool`]); the registry sets
    /// its limit from the manifest.
    pub fn pool(&self) -> &PluginPool {
        &self.pool
    }

    /// The instance's state, for the instance that replaces it; `None` when
    /// the plugin keeps no state. Blocking.
    pub fn export_state(&self) -> Result<Option<StateSnapshot>, PluginError> {
        self.instance
            .export_state()
            .into_result()
            .map(|s| s.into_option())
    }

    /// Takes over a previous instance's state before serving. Blocking.
    pub fn import_state(&self, state: StateSnapshot) -> Result<(), PluginError> {
        self.instance.import_state(state).into_result()
    }

    /// Calls running in the plugin right now (a draining plugin retires at 0).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Runs one of its tracked services until `host` says stop. Blocking.
    pub fn run_service(&self, service: &str, host: ServiceHostBox) -> Result<(), PluginError> {
        self.instance
            .run_service(RStr::from_str(service), host)
            .into_result()
    }
}

/// A call let in by [`PluginHandle::admit`]: in flight until dropped.
pub struct Admission {
    plugin: Arc<PluginHandle>,
}

impl fmt::Debug for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admission")
            .field("plugin", &self.plugin.name())
            .field("instance", &self.plugin.id)
            .finish()
    }
}

impl Admission {
    /// The instance it was let into.
    pub fn plugin(&self) -> &Arc<PluginHandle> {
        &self.plugin
    }

    /// [`PluginHandle::call_json`] for the admitted call. Blocking.
    pub fn call_json(
        &self,
        method: &str,
        args_json: &str,
        call: &HostCall,
    ) -> Result<String, PluginError> {
        self.plugin.invoke(method, args_json, call)
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.plugin.leave();
    }
}

/// Converts and checks the FFI description.
fn describe(file: &Path, info: PluginInfo) -> Result<PluginDescriptor, LoadError> {
    let bad = |reason: String| LoadError::Metadata {
        path: file.to_path_buf(),
        reason,
    };
    let name = info.name.into_string();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(bad(format!(
            "plugin name `{name}` must be non-empty letters, digits, '_' or '-'"
        )));
    }
    let version = info.version.into_string();
    if semver::Version::parse(&version).is_err() {
        return Err(bad(format!(
            "version `{version}` of plugin `{name}` is not semver (e.g. 1.2.3)"
        )));
    }
    let mut methods: Vec<MethodDescriptor> = Vec::new();
    for m in info.methods {
        let method = m.name.into_string();
        if method.is_empty() || methods.iter().any(|seen| seen.name == method) {
            return Err(bad(format!(
                "method name `{method}` is empty or declared twice"
            )));
        }
        if method.contains('.') {
            return Err(bad(format!(
                "method name `{method}` contains '.', which separates plugin and method in qualified names (`{name}.{method}`)"
            )));
        }
        let route = m.route.into_string();
        if !is_valid_route(&route) {
            return Err(bad(format!(
                "method `{method}` has an invalid route `{route}`"
            )));
        }
        let examples = m
            .examples
            .into_iter()
            .map(|e| {
                example(e)
                    .ok_or_else(|| {
                        bad(format!("method `{method}` has an example that is not JSON"))
                    })
                    .and_then(|e| {
                        if e.args.is_array() || e.args.is_object() {
                            Ok(e)
                        } else {
                            Err(bad(format!(
                                "method `{method}` has an example whose arguments are neither a JSON array nor an object"
                            )))
                        }
                    })
            })
            .collect::<Result<_, _>>()?;
        let params = m
            .params
            .into_iter()
            .map(|p| {
                let name = p.name.into_string();
                let schema = serde_json::from_str(p.schema.as_str()).map_err(|e| {
                    bad(format!(
                        "method `{method}`: parameter `{name}` has a schema that is not JSON: {e}"
                    ))
                })?;
                Ok(ParamDescriptor {
                    name,
                    schema,
                    optional: p.optional,
                })
            })
            .collect::<Result<_, LoadError>>()?;
        let result_schema = serde_json::from_str(m.result_schema.as_str()).map_err(|e| {
            bad(format!(
                "method `{method}` has a result schema that is not JSON: {e}"
            ))
        })?;
        methods.push(MethodDescriptor {
            name: method,
            route,
            doc: m.doc.into_string(),
            params,
            variadic: m.variadic,
            result_schema,
            takes_context: m.takes_context,
            examples,
            latency_budget_ms: m.latency_budget_ms,
            non_blocking: false,
        });
    }
    let mut services: Vec<ServiceDescriptor> = Vec::new();
    for s in info.services {
        let service = s.name.into_string();
        if service.trim().is_empty() || services.iter().any(|seen| seen.name == service) {
            return Err(bad(format!(
                "tracked service name `{service}` is empty or declared twice"
            )));
        }
        services.push(ServiceDescriptor {
            name: service,
            doc: s.doc.into_string(),
        });
    }
    let sample_config = info
        .sample_config
        .into_option()
        .map(|s| serde_json::from_str(s.as_str()))
        .transpose()
        .map_err(|e| bad(format!("sample config is not JSON: {e}")))?;
    let scenarios = info
        .scenarios
        .into_iter()
        .map(|s| {
            let scenario = s.name.into_string();
            let steps = s
                .steps
                .into_iter()
                .map(|step| {
                    let method = step.method.into_string();
                    example(step.call).map(|e| (method, e)).ok_or_else(|| {
                        bad(format!("scenario {scenario:?} has a step that is not JSON"))
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok(ScenarioDescriptor {
                name: scenario,
                steps,
            })
        })
        .collect::<Result<_, LoadError>>()?;
    Ok(PluginDescriptor {
        name,
        version,
        api_version: info.api_version.into_string(),
        doc: info.doc.into_string(),
        methods,
        services,
        sample_config,
        scenarios,
        keeps_state: info.keeps_state,
    })
}

/// An example as the plugin sent it, or `None` when it is not JSON.
fn example(call: ExampleCall) -> Option<Example> {
    let args = serde_json::from_str(call.args_json.as_str()).ok()?;
    let expected = match call.expected_code {
        0 => Outcome::Result(serde_json::from_str(call.expected_json.as_str()).ok()?),
        code => Outcome::Error(code),
    };
    Some(Example { args, expected })
}

#[cfg(test)]
mod tests {
    use abi_stable::std_types::{ROption, RVec};
    use plughost_plugin_api::ffi::MethodInfo;

    use super::*;

    fn info_with_method(method: &str) -> PluginInfo {
        PluginInfo {
            name: "math".into(),
            version: "0.1.0".into(),
            api_version: plughost_plugin_api::API_VERSION.into(),
            doc: "Math".into(),
            methods: RVec::from(vec![MethodInfo {
                name: method.into(),
                route: "math.algo".into(),
                doc: "A method".into(),
                params: RVec::new(),
                variadic: true,
                result_schema: "true".into(),
                takes_context: false,
                examples: RVec::new(),
                latency_budget_ms: 0,
            }]),
            services: RVec::new(),
            sample_config: ROption::RNone,
            scenarios: RVec::new(),
            keeps_state: false,
        }
    }

    #[test]
    fn a_method_name_with_a_dot_is_refused_for_qualified_names() {
        let file = Path::new("libmath.so");
        assert!(describe(file, info_with_method("fibo")).is_ok());
        let err = describe(file, info_with_method("algo.fibo"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("method name `algo.fibo` contains '.'")
                && err.contains("`math.algo.fibo`"),
            "{err}"
        );
    }
}

//! The glue between a [`Plugin`] and the FFI types: what
//! [`crate::export_plugin!`] expands to.
//!
//! It lives in the plugin library, so everything here (the panic hook, the
//! host logger) is per plugin library: each cdylib links its own copy of
//! `std`, with its own panic hook and statics.

use std::{
    any::Any,
    cell::RefCell,
    panic::{catch_unwind, AssertUnwindSafe},
    sync::{Once, RwLock},
};

use abi_stable::{
    library::RootModuleResult,
    prefix_type::PrefixTypeTrait,
    sabi_trait::TD_Opaque,
    std_types::{ROption, RResult, RStr, RString},
};
use serde_json::Value;

use crate::{
    builder::Expected,
    ffi::{
        CallContextRef, ExampleCall, HostApiBox, MethodInfo, ParamInfo, PluginInfo, PluginInstance,
        PluginInstanceBox, PluginInstance_TO, PluginRoot, PluginRootRef, ScenarioInfo,
        ScenarioStep, ServiceHostBox, ServiceInfo, StateSnapshot,
    },
    Config, Context, LogLevel, Plugin, PluginError, ServiceContext,
};

/// Implemented by the type [`crate::export_plugin!`] generates around the
/// author's builder function.
pub trait Builder {
    /// Builds the plugin for one configuration.
    fn build(config: &Config) -> Result<Plugin, PluginError>;
}

/// The root-module constructor referenced from the exported `LibHeader`.
pub extern "C" fn root_module_loader<B: Builder>() -> RootModuleResult {
    abi_stable::library::__call_root_module_loader(root_module::<B>)
}

fn root_module<B: Builder>() -> PluginRootRef {
    PluginRoot {
        new_instance: new_instance::<B>,
        api_version,
    }
    .leak_into_prefix()
}

extern "C" fn api_version() -> RStr<'static> {
    RStr::from_str(crate::API_VERSION)
}

extern "C" fn new_instance<B: Builder>(
    config_json: RStr<'_>,
    host: HostApiBox,
) -> RResult<PluginInstanceBox, PluginError> {
    install_panic_hook();
    set_host(host);
    guarded("plugin initialisation", || {
        let config = Config::from_json(config_json.as_str())?;
        let plugin = B::build(&config)?;
        match plugin.problems().as_slice() {
            [] => Ok(plugin),
            problems => Err(PluginError::failed(format!(
                "plugin {} is put together wrongly: {}",
                plugin.name,
                problems.join("; ")
            ))),
        }
    })
    .map(|plugin| PluginInstance_TO::from_value(Instance { plugin }, TD_Opaque))
    .into()
}

/// The default route of a method that names none.
pub fn default_route(plugin: &str, method: &str) -> String {
    format!("plughost.{plugin}.{method}")
}

struct Instance {
    plugin: Plugin,
}

impl PluginInstance for Instance {
    fn info(&self) -> PluginInfo {
        let p = &self.plugin;
        PluginInfo {
            name: p.name.as_str().into(),
            version: p.version.as_str().into(),
            api_version: crate::API_VERSION.into(),
            doc: p.doc.as_str().into(),
            methods: p
                .methods
                .iter()
                .map(|m| MethodInfo {
                    name: m.name.as_str().into(),
                    route: m
                        .route
                        .clone()
                        .unwrap_or_else(|| default_route(&p.name, &m.name))
                        .into(),
                    doc: m.doc.as_str().into(),
                    params: m
                        .signature
                        .params
                        .iter()
                        .map(|p| ParamInfo {
                            name: p.name.as_str().into(),
                            schema: p.schema.to_string().into(),
                            optional: p.optional,
                        })
                        .collect(),
                    variadic: m.signature.variadic,
                    result_schema: m.signature.result.to_string().into(),
                    takes_context: m.takes_context,
                    examples: m
                        .examples
                        .iter()
                        .map(|(args, expected)| example_call(args, expected))
                        .collect(),
                    latency_budget_ms: m
                        .latency_budget
                        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                        .unwrap_or(0),
                })
                .collect(),
            services: p
                .services
                .iter()
                .map(|s| ServiceInfo {
                    name: s.name.as_str().into(),
                    doc: s.doc.as_str().into(),
                })
                .collect(),
            sample_config: p
                .sample_config
                .as_ref()
                .map(|c| RString::from(c.to_string()))
                .into(),
            scenarios: p
                .scenarios
                .iter()
                .map(|s| ScenarioInfo {
                    name: s.name.as_str().into(),
                    steps: s
                        .steps
                        .iter()
                        .map(|step| ScenarioStep {
                            method: step.method.as_str().into(),
                            call: example_call(&step.args, &step.expected),
                        })
                        .collect(),
                })
                .collect(),
            keeps_state: p.state.is_some(),
        }
    }

    fn call(
        &self,
        method: RStr<'_>,
        args_json: RStr<'_>,
        ctx: CallContextRef<'_>,
    ) -> RResult<RString, PluginError> {
        let method = method.as_str();
        guarded_call(method, || {
            let args = parse_args(method, args_json.as_str())?;
            let m = self.plugin.find_method(method)?;
            let value = m.invoke(&Context::from_ffi(ctx), args)?;
            Ok(RString::from(value.to_string()))
        })
        .into()
    }

    fn export_state(&self) -> RResult<ROption<StateSnapshot>, PluginError> {
        guarded("state export", || {
            self.plugin.export_state().map(ROption::from)
        })
        .into()
    }

    fn import_state(&self, state: StateSnapshot) -> RResult<(), PluginError> {
        guarded("state import", || self.plugin.import_state(&state)).into()
    }

    fn non_blocking_methods(&self) -> abi_stable::std_types::RVec<RString> {
        self.plugin
            .methods
            .iter()
            .filter(|m| m.non_blocking)
            .map(|m| RString::from(m.name.as_str()))
            .collect()
    }

    fn run_service(&self, service: RStr<'_>, host: ServiceHostBox) -> RResult<(), PluginError> {
        let service = service.as_str();
        guarded(&format!("service {service}"), || {
            let s = self.plugin.find_service(service)?;
            (s.run)(&ServiceContext::new(host))
        })
        .into()
    }
}

fn example_call(args: &Value, expected: &Expected) -> ExampleCall {
    let (expected_json, expected_code) = match expected {
        Expected::Result(value) => (value.to_string(), 0),
        Expected::Error(code) => (String::new(), *code),
    };
    ExampleCall {
        args_json: args.to_string().into(),
        expected_json: expected_json.into(),
        expected_code,
    }
}

fn parse_args(method: &str, text: &str) -> Result<Value, PluginError> {
    serde_json::from_str::<Value>(text).map_err(|e| {
        PluginError::bad_arguments(format!("{method}: arguments are not valid JSON: {e}"))
    })
}

thread_local! {
    /// Message and location of the last panic on this thread, recorded by the
    /// hook so the error can say where the plugin panicked.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        // This is the plugin library's own std, so the host's hook is untouched.
        // Silent on purpose: the panic is reported once, as an error result.
        std::panic::set_hook(Box::new(|info| {
            let message = payload_message(info.payload());
            let detail = match info.location() {
                Some(at) => crate::error::panic_detail(&message, at.file(), at.line()),
                None => message,
            };
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(detail));
        }));
    });
}

fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}

/// Runs plugin code, turning a panic into a 500 error that says it panicked.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, PluginError>) -> Result<T, PluginError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| Err(panicked(what, payload)))
}

/// [`guarded`] for a method call, which names the method only when it panicked
/// (the per-call path formats nothing it does not need).
fn guarded_call<T>(
    method: &str,
    f: impl FnOnce() -> Result<T, PluginError>,
) -> Result<T, PluginError> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(panicked(&format!("method {method}"), payload)))
}

fn panicked(what: &str, payload: Box<dyn Any + Send>) -> PluginError {
    let detail = LAST_PANIC
        .with(|p| p.borrow_mut().take())
        .unwrap_or_else(|| payload_message(payload.as_ref()));
    PluginError::panicked(what, &detail)
}

static HOST: RwLock<Option<HostApiBox>> = RwLock::new(None);

fn set_host(host: HostApiBox) {
    if let Ok(mut slot) = HOST.write() {
        *slot = Some(host);
    }
}

/// Sends one log record to the host (used by [`crate::log`]).
pub(crate) fn host_log(level: LogLevel, message: &str) {
    if let Ok(slot) = HOST.read() {
        if let Some(host) = slot.as_ref() {
            host.log(level, RStr::from_str(message));
        }
    }
}

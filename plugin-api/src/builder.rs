//! What plugin authors write: a [`Plugin`] made of typed [`Method`]s,
//! [`Service`]s and, for stateful plugins, [`Scenario`]s and a state
//! hand-over.
//!
//! Methods are plain Rust functions; [`Handler`](crate::Handler) turns the
//! caller's JSON arguments into their typed parameters and their `Result`
//! back into JSON, so the author never sees JSON or FFI types. Wrong
//! argument counts, names and types become 400 errors that name the method
//! and the argument.

use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

use crate::{
    ffi::{StateFormat, StateSnapshot},
    handler::{Handler, Signature},
    Context, LocalCall, PluginError, ServiceContext,
};

/// A plugin under construction: its identity, methods and tracked services.
///
/// ```
/// use plughost_plugin_api::prelude::*;
///
/// fn double(n: i64) -> Result<i64, PluginError> {
///     n.checked_mul(2).ok_or_else(|| PluginError::bad_arguments("overflow"))
/// }
///
/// let plugin = Plugin::new("doubler", "1.0.0")
///     .doc("Doubles numbers")
///     .method(Method::new("double", double).doc("2 * n").example(json!([21]), json!(42)));
/// assert_eq!(plugin.call("double", vec![json!(21)]).unwrap(), json!(42));
/// assert_eq!(plugin.call("double", vec![json!("x")]).unwrap_err().code, 400);
/// ```
pub struct Plugin {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) doc: String,
    pub(crate) methods: Vec<Method>,
    pub(crate) services: Vec<Service>,
    pub(crate) sample_config: Option<Value>,
    pub(crate) scenarios: Vec<Scenario>,
    pub(crate) state: Option<StateHandover>,
}

impl Plugin {
    /// Starts a plugin with a unique name and a semver version (usually
    /// `env!("CARGO_PKG_VERSION")`).
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            doc: String::new(),
            methods: Vec::new(),
            services: Vec::new(),
            sample_config: None,
            scenarios: Vec::new(),
            state: None,
        }
    }

    /// One-line description shown by `plughost plugins`.
    pub fn doc(mut self, doc: impl Into<String>) -> Self {
        self.doc = doc.into();
        self
    }

    /// Adds an RPC method.
    pub fn method(mut self, method: Method) -> Self {
        self.methods.push(method);
        self
    }

    /// Adds a tracked service (see [`Service`]).
    pub fn service(mut self, service: Service) -> Self {
        self.services.push(service);
        self
    }

    /// A configuration that works, for documentation and the conformance kit
    /// (which initialises the plugin with it, and with an empty one).
    ///
    /// ```
    /// use plughost_plugin_api::prelude::*;
    ///
    /// fn plugin(config: &Config) -> Result<Plugin, PluginError> {
    ///     let greeting = config.get::<String>("greeting")?.unwrap_or_else(|| "hello".into());
    ///     Ok(Plugin::new("greeter", "1.0.0")
    ///         .sample_config(json!({ "greeting": "hi" }))
    ///         .method(Method::new("greet", move |name: String| Ok::<_, PluginError>(format!("{greeting}, {name}")))))
    /// }
    ///
    /// let p = plugin(&Config::from_value(json!({ "greeting": "hi" }))).unwrap();
    /// assert_eq!(p.call("greet", vec![json!("ada")]).unwrap(), json!("hi, ada"));
    /// ```
    pub fn sample_config(mut self, config: Value) -> Self {
        self.sample_config = Some(config);
        self
    }

    /// Adds an ordered sequence of calls the conformance kit runs on one
    /// fresh instance (see [`Scenario`]).
    pub fn scenario(mut self, scenario: Scenario) -> Self {
        self.scenarios.push(scenario);
        self
    }

    /// Opts in to keeping state across upgrades, as JSON. When the host
    /// replaces this instance (a new build or a new configuration), it lets
    /// the calls in flight finish, calls `export` on the old instance and
    /// hands the value to `import` of the new one, with the version of the
    /// plugin that exported it, before the new one takes its first call. An
    /// `import` error refuses the upgrade: the old instance goes on serving.
    /// Without it, a new instance starts empty.
    ///
    /// ```
    /// use std::{collections::BTreeMap, sync::{Arc, Mutex}};
    /// use plughost_plugin_api::prelude::*;
    ///
    /// type Store = Arc<Mutex<BTreeMap<String, String>>>;
    ///
    /// fn plugin(_config: &Config) -> Result<Plugin, PluginError> {
    ///     let store = Store::default();
    ///     let (put, get) = (store.clone(), store.clone());
    ///     let (export, import) = (store.clone(), store);
    ///     Ok(Plugin::new("kv", "1.0.0")
    ///         .method(Method::new("put", move |k: String, v: String| {
    ///             put.lock().unwrap().insert(k, v);
    ///             Ok::<_, PluginError>(())
    ///         }))
    ///         .method(Method::new("get", move |k: String| {
    ///             get.lock().unwrap().get(&k).cloned().ok_or_else(|| PluginError::not_found(k))
    ///         }))
    ///         .state_json(
    ///             move || Ok(export.lock().unwrap().clone()),
    ///             move |saved: BTreeMap<String, String>, _from_version: &str| {
    ///                 *import.lock().unwrap() = saved;
    ///                 Ok(())
    ///             },
    ///         ))
    /// }
    ///
    /// let old = plugin(&Config::default()).unwrap();
    /// old.call("put", vec![json!("a"), json!("1")]).unwrap();
    /// let new = plugin(&Config::default()).unwrap();
    /// old.hand_over_to(&new).unwrap();
    /// assert_eq!(new.call("get", vec![json!("a")]).unwrap(), json!("1"));
    /// ```
    pub fn state_json<T, E, I>(mut self, export: E, import: I) -> Self
    where
        T: Serialize + DeserializeOwned,
        E: Fn() -> Result<T, PluginError> + Send + Sync + 'static,
        I: Fn(T, &str) -> Result<(), PluginError> + Send + Sync + 'static,
    {
        self.state = Some(StateHandover {
            export: Box::new(move || {
                let value = export()?;
                serde_json::to_vec(&value)
                    .map(|data| (StateFormat::Json, data))
                    .map_err(|e| PluginError::failed(format!("state does not serialise: {e}")))
            }),
            import: Box::new(move |format, data, from| {
                if format != StateFormat::Json {
                    return Err(PluginError::bad_arguments(
                        "state: expected JSON state, got bytes",
                    ));
                }
                let value = serde_json::from_slice(data).map_err(|e| {
                    PluginError::bad_arguments(format!(
                        "state exported by version {from} does not fit: {e}"
                    ))
                })?;
                import(value, from)
            }),
        });
        self
    }

    /// Like [`Plugin::state_json`], with state as bytes only the plugin reads.
    pub fn state_bytes<E, I>(mut self, export: E, import: I) -> Self
    where
        E: Fn() -> Result<Vec<u8>, PluginError> + Send + Sync + 'static,
        I: Fn(&[u8], &str) -> Result<(), PluginError> + Send + Sync + 'static,
    {
        self.state = Some(StateHandover {
            export: Box::new(move || export().map(|data| (StateFormat::Bytes, data))),
            import: Box::new(move |format, data, from| {
                if format != StateFormat::Bytes {
                    return Err(PluginError::bad_arguments(
                        "state: expected bytes, got JSON state",
                    ));
                }
                import(data, from)
            }),
        });
        self
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Calls a method in process, exactly as the host would (minus the FFI),
    /// with a call that has no deadline: handy in a plugin's own unit
    /// tests. Unlike the host, it does not catch panics.
    ///
    /// ```
    /// use plughost_plugin_api::prelude::*;
    ///
    /// let p = Plugin::new("t", "1.0.0").method(Method::new("add", |a: i32, b: i32| Ok::<_, PluginError>(a + b)));
    /// assert_eq!(p.name(), "t");
    /// assert_eq!(p.call("add", vec![json!(1), json!(2)]).unwrap(), json!(3));
    /// assert_eq!(p.call("add", vec![json!(1)]).unwrap_err().message, "add expects 2 arguments, got 1");
    /// assert_eq!(p.call("nope", vec![]).unwrap_err().code, 404);
    /// ```
    pub fn call(&self, method: &str, args: Vec<Value>) -> Result<Value, PluginError> {
        self.call_value(method, Value::Array(args))
    }

    /// Like [`Plugin::call`], with the arguments as one JSON value: an
    /// array of positional ones or an object of named ones.
    ///
    /// ```
    /// use plughost_plugin_api::prelude::*;
    ///
    /// fn put(key: String, ttl: Option<u64>) -> Result<String, PluginError> {
    ///     Ok(format!("{key} for {}", ttl.map_or("ever".into(), |t| format!("{t} s"))))
    /// }
    /// let p = Plugin::new("kv", "1.0.0").method(Method::new("put", put).params(["key", "ttl"]));
    /// assert_eq!(p.call_value("put", json!({"key": "a", "ttl": 5})).unwrap(), json!("a for 5 s"));
    /// assert_eq!(p.call_value("put", json!(["a"])).unwrap(), json!("a for ever"));
    /// let err = p.call_value("put", json!({"kye": "a"})).unwrap_err();
    /// assert_eq!(err.message, "put: missing argument `key`; expected: key, ttl?");
    /// ```
    pub fn call_value(&self, method: &str, args: Value) -> Result<Value, PluginError> {
        let call = LocalCall::new().method(format!("{}.{method}", self.name));
        self.call_in(&call, method, args)
    }

    /// Calls a method in process within `call` (a deadline, a cancellation
    /// the test controls); see [`LocalCall`].
    pub fn call_in(
        &self,
        call: &LocalCall,
        method: &str,
        args: impl Into<Value>,
    ) -> Result<Value, PluginError> {
        self.find_method(method)?
            .invoke(&call.context(), args.into())
    }

    /// Hands this instance's state to `next`, as the host does during an
    /// upgrade (for a plugin's own tests of its [`Plugin::state_json`]).
    /// Nothing happens when the plugin keeps no state.
    pub fn hand_over_to(&self, next: &Plugin) -> Result<(), PluginError> {
        match self.export_state()? {
            Some(snapshot) => next.import_state(&snapshot),
            None => Ok(()),
        }
    }

    pub(crate) fn export_state(&self) -> Result<Option<StateSnapshot>, PluginError> {
        let Some(state) = &self.state else {
            return Ok(None);
        };
        let (format, data) = (state.export)()?;
        Ok(Some(StateSnapshot {
            plugin_version: self.version.as_str().into(),
            format,
            data: data.into(),
        }))
    }

    pub(crate) fn import_state(&self, snapshot: &StateSnapshot) -> Result<(), PluginError> {
        match &self.state {
            Some(state) => (state.import)(
                snapshot.format,
                snapshot.data.as_slice(),
                snapshot.plugin_version.as_str(),
            ),
            None => Err(PluginError::bad_arguments(format!(
                "plugin {} keeps no state; it cannot import any",
                self.name
            ))),
        }
    }

    /// What is wrong with how the plugin was put together (names that do
    /// not fit the parameters, say): the export glue refuses to create an
    /// instance that has any, so the host reports it at load.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for m in &self.methods {
            if let Some(names) = &m.names {
                if m.signature.variadic {
                    problems.push(format!(
                        "method {}: a variadic method has no parameter names",
                        m.name
                    ));
                } else if names.len() != m.signature.params.len() {
                    problems.push(format!(
                        "method {}: {} parameter names given for {} parameters",
                        m.name,
                        names.len(),
                        m.signature.params.len()
                    ));
                }
            }
        }
        for s in &self.scenarios {
            for step in &s.steps {
                if !self.methods.iter().any(|m| m.name == step.method) {
                    problems.push(format!(
                        "scenario {:?}: step calls `{}`, which the plugin does not have",
                        s.name, step.method
                    ));
                }
            }
        }
        problems
    }

    pub(crate) fn find_method(&self, method: &str) -> Result<&Method, PluginError> {
        self.methods
            .iter()
            .find(|m| m.name == method)
            .ok_or_else(|| {
                PluginError::not_found(format!("plugin {} has no method `{method}`", self.name))
            })
    }

    pub(crate) fn find_service(&self, service: &str) -> Result<&Service, PluginError> {
        self.services
            .iter()
            .find(|s| s.name == service)
            .ok_or_else(|| {
                PluginError::not_found(format!("plugin {} has no service `{service}`", self.name))
            })
    }
}

type Exporter = Box<dyn Fn() -> Result<(StateFormat, Vec<u8>), PluginError> + Send + Sync>;
type Importer = Box<dyn Fn(StateFormat, &[u8], &str) -> Result<(), PluginError> + Send + Sync>;

/// A plugin's state hand-over: how to export it and import it.
pub(crate) struct StateHandover {
    export: Exporter,
    import: Importer,
}

type BoxedHandler =
    Box<dyn Fn(&Context<'_>, Vec<Value>) -> Result<Value, PluginError> + Send + Sync>;

/// What an example or a scenario step must give.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    /// This result.
    Result(Value),
    /// An error with this code.
    Error(u16),
}

/// One RPC method: a name, a handler and what callers and tools should know.
///
/// ```
/// use std::time::Duration;
/// use plughost_plugin_api::prelude::*;
///
/// /// Typed parameters: the JSON arguments are checked and converted for you.
/// fn repeat(text: String, times: usize) -> Result<String, PluginError> {
///     if times > 100 {
///         return Err(PluginError::bad_arguments("repeat: at most 100 times").with_help("ask for fewer"));
///     }
///     Ok(text.repeat(times))
/// }
///
/// let method = Method::new("repeat", repeat)
///     .route("com.example.text.repeat")       // default: plughost.<plugin>.<method>
///     .doc("Repeats a string n times")         // required by the conformance kit
///     .params(["text", "times"])               // names for named arguments (default arg1, arg2)
///     .example(json!(["ab", 3]), json!("ababab"))
///     .example_error(json!(["ab", 1000]), 400)
///     .latency_budget(Duration::from_millis(10));
///
/// let p = Plugin::new("text", "1.0.0").method(method);
/// assert_eq!(p.call("repeat", vec![json!("ab"), json!(3)]).unwrap(), json!("ababab"));
/// assert_eq!(p.call_value("repeat", json!({"times": 2, "text": "x"})).unwrap(), json!("xx"));
/// let err = p.call("repeat", vec![json!("ab"), json!("three")]).unwrap_err();
/// assert_eq!(err.code, 400);
/// assert!(err.message.starts_with("repeat: argument 2: invalid type"), "{err}");
/// ```
pub struct Method {
    pub(crate) name: String,
    pub(crate) route: Option<String>,
    pub(crate) doc: String,
    pub(crate) examples: Vec<(Value, Expected)>,
    pub(crate) latency_budget: Option<Duration>,
    pub(crate) signature: Signature,
    pub(crate) names: Option<Vec<String>>,
    pub(crate) takes_context: bool,
    pub(crate) non_blocking: bool,
    handler: BoxedHandler,
}

impl Method {
    /// A method backed by a typed function of up to six arguments, each
    /// read from the corresponding JSON argument. Its first parameter may be
    /// `&Context` (see [`Context`]), which is not an argument callers give.
    pub fn new<M, H: Handler<M>>(name: impl Into<String>, handler: H) -> Self {
        let name = name.into();
        let method_name = name.clone();
        let mut method = Self::with_handler(
            name,
            H::signature(),
            Box::new(move |ctx, args| handler.call(ctx, &method_name, args)),
        );
        method.takes_context = H::takes_context();
        method
    }

    /// A method that takes any number of JSON arguments as they come.
    ///
    /// ```
    /// use plughost_plugin_api::prelude::*;
    ///
    /// let sum = Method::variadic("sum", |args| {
    ///     let mut total = 0i64;
    ///     for (i, arg) in args.iter().enumerate() {
    ///         total += arg
    ///             .as_i64()
    ///             .ok_or_else(|| PluginError::bad_arguments(format!("sum: argument {} is not an integer", i + 1)))?;
    ///     }
    ///     Ok(json!(total))
    /// });
    /// let p = Plugin::new("math", "1.0.0").method(sum.doc("Adds integers"));
    /// assert_eq!(p.call("sum", vec![json!(1), json!(2), json!(3)]).unwrap(), json!(6));
    /// assert_eq!(p.call("sum", vec![]).unwrap(), json!(0));
    /// assert_eq!(p.call("sum", vec![json!("x")]).unwrap_err().code, 400);
    /// ```
    pub fn variadic<F>(name: impl Into<String>, handler: F) -> Self
    where
        F: Fn(Vec<Value>) -> Result<Value, PluginError> + Send + Sync + 'static,
    {
        Self::with_handler(
            name.into(),
            Signature::variadic(),
            Box::new(move |_ctx, args| handler(args)),
        )
    }

    fn with_handler(name: String, signature: Signature, handler: BoxedHandler) -> Self {
        Self {
            name,
            route: None,
            doc: String::new(),
            examples: Vec::new(),
            latency_budget: None,
            signature,
            names: None,
            takes_context: false,
            non_blocking: false,
            handler,
        }
    }

    /// Declares that the method never blocks: it computes from its
    /// arguments and returns within microseconds, without I/O, sleeps,
    /// waiting on locks other calls hold, or waiting on its [`Context`]'s
    /// cancellation.
    ///
    /// A host may then run it on the thread that received the call instead
    /// of handing it to the plugin's own threads, which saves two thread
    /// wake-ups per call (the largest per-call cost of a fast method; see
    /// `docs/benchmarks.md`). The host holds the method to it: one call
    /// that runs longer than a few milliseconds there moves the method back
    /// to the plugin's threads, with a warning naming it. Without this
    /// declaration (the default) every call runs on the plugin's threads.
    ///
    /// ```
    /// use plughost_plugin_api::prelude::*;
    ///
    /// fn square(x: i64) -> Result<i64, PluginError> {
    ///     Ok(x * x)
    /// }
    /// let method = Method::new("square", square).non_blocking();
    /// let p = Plugin::new("math", "1.0.0").method(method.doc("x * x"));
    /// assert_eq!(p.call("square", vec![json!(7)]).unwrap(), json!(49));
    /// ```
    pub fn non_blocking(mut self) -> Self {
        self.non_blocking = true;
        self
    }

    /// The default route (AMQP topic key). Without one the route is
    /// `plughost.<plugin>.<method>`. Operators can override it in the manifest.
    pub fn route(mut self, route: impl Into<String>) -> Self {
        self.route = Some(route.into());
        self
    }

    /// One-line documentation (required by the conformance kit).
    pub fn doc(mut self, doc: impl Into<String>) -> Self {
        self.doc = doc.into();
        self
    }

    /// Names the parameters, in order, for named arguments and the
    /// published signature (default: `arg1`, `arg2`, ...). Their count must
    /// match the function's parameters (the context not counted); the host
    /// refuses the plugin otherwise.
    pub fn params<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        for (param, name) in self.signature.params.iter_mut().zip(&names) {
            param.name.clone_from(name);
        }
        self.names = Some(names);
        self
    }

    /// An example call: these arguments must give this result.
    pub fn example(mut self, args: Value, expected: Value) -> Self {
        self.examples.push((args, Expected::Result(expected)));
        self
    }

    /// An example call that must fail with this error code (e.g. 404 for a
    /// missing key); the conformance kit checks it.
    pub fn example_error(mut self, args: Value, code: u16) -> Self {
        self.examples.push((args, Expected::Error(code)));
        self
    }

    /// How long an example call may take before the conformance kit flags it.
    pub fn latency_budget(mut self, budget: Duration) -> Self {
        self.latency_budget = Some(budget);
        self
    }

    /// Its signature: parameters with names and JSON Schemas, and the
    /// result's schema.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Shapes `args` to the signature and runs the handler.
    pub(crate) fn invoke(&self, ctx: &Context<'_>, args: Value) -> Result<Value, PluginError> {
        let args = self.signature.shape(&self.name, args)?;
        (self.handler)(ctx, args)
    }
}

/// An ordered sequence of calls on one fresh instance, with the outcome
/// each must give: how a stateful plugin tells the conformance kit what it
/// does (put, then get, then delete, then get fails with 404).
///
/// ```
/// use plughost_plugin_api::prelude::*;
///
/// let s = Scenario::new("put then get")
///     .step("put", json!(["a", "1"]), json!(null))
///     .step("get", json!(["a"]), json!("1"))
///     .step_error("get", json!(["b"]), 404);
/// assert_eq!(s.steps().len(), 3);
/// ```
pub struct Scenario {
    pub(crate) name: String,
    pub(crate) steps: Vec<Step>,
}

/// One call of a [`Scenario`].
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The method called.
    pub method: String,
    /// Its arguments (array or object).
    pub args: Value,
    /// What it must give.
    pub expected: Expected,
}

impl Scenario {
    /// An empty scenario.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            steps: Vec::new(),
        }
    }

    /// A call that must give `expected`.
    pub fn step(mut self, method: impl Into<String>, args: Value, expected: Value) -> Self {
        self.steps.push(Step {
            method: method.into(),
            args,
            expected: Expected::Result(expected),
        });
        self
    }

    /// A call that must fail with error `code`.
    pub fn step_error(mut self, method: impl Into<String>, args: Value, code: u16) -> Self {
        self.steps.push(Step {
            method: method.into(),
            args,
            expected: Expected::Error(code),
        });
        self
    }

    /// Its steps, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
}

type BoxedService = Box<dyn Fn(&ServiceContext) -> Result<(), PluginError> + Send + Sync>;

/// A tracked service: a long-running function that returns when told to stop.
///
/// The host runs it on a thread of its own, registers it with the service
/// manager and tells it to stop on shutdown or reload; it must then return
/// within a second (the conformance kit checks this).
///
/// ```
/// use std::time::Duration;
/// use plughost_plugin_api::prelude::*;
///
/// fn heartbeat(ctx: &ServiceContext) -> Result<(), PluginError> {
///     let mut beats = 0u64;
///     // Sleeps up to a second at a time and wakes at once when told to stop.
///     while !ctx.wait_stop(Duration::from_secs(1)) {
///         beats += 1;
///         ctx.log(LogLevel::Debug, &format!("beat {beats}"));
///     }
///     Ok(())
/// }
///
/// let plugin = Plugin::new("pulse", "1.0.0")
///     .service(Service::new("heartbeat", heartbeat).doc("Logs a beat every second"));
/// # let _ = plugin;
/// ```
pub struct Service {
    pub(crate) name: String,
    pub(crate) doc: String,
    pub(crate) run: BoxedService,
}

impl Service {
    /// A service whose `run` loops until [`ServiceContext::wait_stop`] or
    /// [`ServiceContext::should_stop`] says stop.
    pub fn new<F>(name: impl Into<String>, run: F) -> Self
    where
        F: Fn(&ServiceContext) -> Result<(), PluginError> + Send + Sync + 'static,
    {
        Self {
            name: name.into(),
            doc: String::new(),
            run: Box::new(run),
        }
    }

    /// One-line documentation.
    pub fn doc(mut self, doc: impl Into<String>) -> Self {
        self.doc = doc.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use serde_json::json;

    fn add(a: i32, b: i32) -> Result<i32, PluginError> {
        Ok(a + b)
    }

    #[test]
    fn typed_method_checks_arity_and_types() {
        let p = Plugin::new("t", "1.0.0").method(Method::new("add", add));
        assert_eq!(p.call("add", vec![json!(1), json!(2)]).unwrap(), json!(3));
        let err = p.call("add", vec![json!(1)]).unwrap_err();
        assert_eq!(err.code, 400);
        assert_eq!(err.message, "add expects 2 arguments, got 1");
        let err = p.call("add", vec![json!(1), json!("x")]).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(
            err.message.starts_with("add: argument 2: invalid type"),
            "{}",
            err.message
        );
    }

    #[test]
    fn unknown_method_is_404() {
        let p = Plugin::new("t", "1.0.0");
        assert_eq!(p.call("nope", vec![]).unwrap_err().code, 404);
    }

    #[test]
    fn zero_argument_method() {
        let p = Plugin::new("t", "1.0.0").method(Method::new("now", || Ok::<_, PluginError>(7)));
        assert_eq!(p.call("now", vec![]).unwrap(), json!(7));
        assert_eq!(
            p.call("now", vec![json!(1)]).unwrap_err().message,
            "now expects 0 arguments, got 1"
        );
    }

    #[test]
    fn signatures_come_from_the_types() {
        fn put(key: String, value: u32, ttl: Option<u64>) -> Result<bool, PluginError> {
            let _ = (key, value, ttl);
            Ok(true)
        }
        let m = Method::new("put", put).params(["key", "value", "ttl"]);
        let s = m.signature();
        let names: Vec<&str> = s.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["key", "value", "ttl"]);
        assert_eq!(s.params[0].schema["type"], "string");
        assert_eq!(s.params[2].schema["type"], json!(["integer", "null"]));
        let optional: Vec<bool> = s.params.iter().map(|p| p.optional).collect();
        assert_eq!(optional, [false, false, true]);
        // A nullable type before a required one cannot be left out.
        let m = Method::new("f", |a: Option<u8>, b: u8| {
            Ok::<_, PluginError>(a.unwrap_or(b))
        });
        let optional: Vec<bool> = m.signature().params.iter().map(|p| p.optional).collect();
        assert_eq!(optional, [false, false]);
        assert_eq!(s.result["type"], "boolean");
        assert!(!s.variadic);
    }

    #[test]
    fn a_handler_may_take_the_call_context_first() {
        fn who(ctx: &Context, greeting: String) -> Result<String, PluginError> {
            Ok(format!("{greeting} from {}", ctx.method()))
        }
        let m = Method::new("who", who);
        assert!(m.takes_context);
        assert_eq!(m.signature().params.len(), 1, "the context is no argument");
        let p = Plugin::new("t", "1.0.0").method(m);
        assert_eq!(
            p.call("who", vec![json!("hi")]).unwrap(),
            json!("hi from t.who")
        );

        fn waits(ctx: &Context) -> Result<bool, PluginError> {
            Ok(ctx.wait_cancelled(Duration::from_secs(10)))
        }
        let p = Plugin::new("t", "1.0.0").method(Method::new("waits", waits));
        let call = LocalCall::new().timeout(Duration::from_millis(10));
        let started = std::time::Instant::now();
        assert_eq!(p.call_in(&call, "waits", json!([])).unwrap(), json!(true));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn mismatched_parameter_names_and_unknown_scenario_methods_are_problems() {
        let p = Plugin::new("t", "1.0.0")
            .method(Method::new("add", add).params(["a"]))
            .scenario(Scenario::new("s").step("sub", json!([1, 2]), json!(-1)));
        let problems = p.problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("1 parameter names given for 2 parameters"));
        assert!(problems[1].contains("`sub`"));
    }

    #[test]
    fn state_hand_over_refuses_what_does_not_fit() {
        let old =
            Plugin::new("t", "1.0.0").state_json(|| Ok(json!({"n": 1})), |_v: Value, _| Ok(()));
        let picky = Plugin::new("t", "2.0.0").state_json(|| Ok(0u32), |_v: u32, _| Ok(()));
        let err = old.hand_over_to(&picky).unwrap_err();
        assert!(err.message.contains("exported by version 1.0.0"), "{err}");
        let stateless = Plugin::new("t", "2.0.0");
        assert!(old.hand_over_to(&stateless).is_err());
        assert!(stateless.hand_over_to(&old).is_ok(), "nothing to hand over");
    }
}

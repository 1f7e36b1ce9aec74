//! What plugin authors write: a [`Plugin`] made of typed [`Method`]s and
//! [`Service`]s.
//!
//! Methods are plain Rust functions; [`Handler`] turns a JSON argument array
//! into their typed parameters and their `Result` back into JSON, so the
//! author never sees JSON or FFI types. Wrong argument counts and types
//! become 400 errors that name the method and the argument.

use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

use crate::{PluginError, ServiceContext};

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

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Calls a method in process, exactly as the host would (minus the FFI):
    /// handy in a plugin's own unit tests. Unlike the host, it does not catch
    /// panics.
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
        let m = self.find_method(method)?;
        (m.handler)(args)
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

type BoxedHandler = Box<dyn Fn(Vec<Value>) -> Result<Value, PluginError> + Send + Sync>;

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
///     .example(json!(["ab", 3]), json!("ababab"))
///     .latency_budget(Duration::from_millis(10));
///
/// let p = Plugin::new("text", "1.0.0").method(method);
/// assert_eq!(p.call("repeat", vec![json!("ab"), json!(3)]).unwrap(), json!("ababab"));
/// let err = p.call("repeat", vec![json!("ab"), json!("three")]).unwrap_err();
/// assert_eq!(err.code, 400);
/// assert!(err.message.starts_with("repeat: argument 2: invalid type"), "{err}");
/// ```
pub struct Method {
    pub(crate) name: String,
    pub(crate) route: Option<String>,
    pub(crate) doc: String,
    pub(crate) examples: Vec<(Value, Value)>,
    pub(crate) latency_budget: Option<Duration>,
    pub(crate) handler: BoxedHandler,
}

impl Method {
    /// A method backed by a typed function of up to six arguments, each
    /// deserialised from the corresponding element of the JSON argument array.
    pub fn new<M, H: Handler<M>>(name: impl Into<String>, handler: H) -> Self {
        let name = name.into();
        let method_name = name.clone();
        Self::with_handler(name, Box::new(move |args| handler.call(&method_name, args)))
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
        Self::with_handler(name.into(), Box::new(handler))
    }

    fn with_handler(name: String, handler: BoxedHandler) -> Self {
        Self {
            name,
            route: None,
            doc: String::new(),
            examples: Vec::new(),
            latency_budget: None,
            handler,
        }
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

    /// An example call: these arguments must give this result.
    pub fn example(mut self, args: Value, expected: Value) -> Self {
        self.examples.push((args, expected));
        self
    }

    /// How long an example call may take before the conformance kit flags it.
    pub fn latency_budget(mut self, budget: Duration) -> Self {
        self.latency_budget = Some(budget);
        self
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

/// What a method function may return: a `Result` whose value serialises to
/// JSON and whose error converts into a [`PluginError`].
///
/// So a method can use its own error type:
///
/// ```
/// use plughost_plugin_api::prelude::*;
///
/// enum LookupError {
///     Unknown(String),
///     Offline,
/// }
///
/// impl From<LookupError> for PluginError {
///     fn from(e: LookupError) -> Self {
///         match e {
///             LookupError::Unknown(key) => PluginError::not_found(format!("no entry `{key}`")),
///             LookupError::Offline => PluginError::new(503, "the directory is offline").with_help("retry later"),
///         }
///     }
/// }
///
/// fn lookup(key: String) -> Result<u32, LookupError> {
///     match key.as_str() {
///         "one" => Ok(1),
///         "offline" => Err(LookupError::Offline),
///         _ => Err(LookupError::Unknown(key)),
///     }
/// }
///
/// let p = Plugin::new("dir", "1.0.0").method(Method::new("lookup", lookup));
/// assert_eq!(p.call("lookup", vec![json!("one")]).unwrap(), json!(1));
/// assert_eq!(p.call("lookup", vec![json!("two")]).unwrap_err().code, 404);
/// assert_eq!(p.call("lookup", vec![json!("offline")]).unwrap_err().help(), Some("retry later"));
/// ```
pub trait IntoReply {
    /// Converts into the JSON reply.
    fn into_reply(self) -> Result<Value, PluginError>;
}

impl<T: Serialize, E: Into<PluginError>> IntoReply for Result<T, E> {
    fn into_reply(self) -> Result<Value, PluginError> {
        let value = self.map_err(Into::into)?;
        serde_json::to_value(value)
            .map_err(|e| PluginError::failed(format!("result does not serialise to JSON: {e}")))
    }
}

/// A typed function usable as a method. Implemented for `Fn(A1, ..., An) ->
/// Result<T, E>` with `n <= 6`; `M` is a marker that keeps the impls apart.
pub trait Handler<M>: Send + Sync + 'static {
    /// Runs the function on a JSON argument array.
    fn call(&self, method: &str, args: Vec<Value>) -> Result<Value, PluginError>;
}

fn check_arity(method: &str, expected: usize, got: usize) -> Result<(), PluginError> {
    if expected == got {
        return Ok(());
    }
    let plural = if expected == 1 { "" } else { "s" };
    Err(PluginError::bad_arguments(format!(
        "{method} expects {expected} argument{plural}, got {got}"
    )))
}

fn arg<T: DeserializeOwned>(method: &str, index: usize, value: Value) -> Result<T, PluginError> {
    serde_json::from_value(value)
        .map_err(|e| PluginError::bad_arguments(format!("{method}: argument {}: {e}", index + 1)))
}

macro_rules! impl_handler {
    ($count:expr $(, $ty:ident)*) => {
        impl<F, R, $($ty,)*> Handler<($($ty,)*)> for F
        where
            F: Fn($($ty),*) -> R + Send + Sync + 'static,
            R: IntoReply,
            $($ty: DeserializeOwned,)*
        {
            #[allow(non_snake_case, unused_mut, unused_variables)]
            fn call(&self, method: &str, args: Vec<Value>) -> Result<Value, PluginError> {
                check_arity(method, $count, args.len())?;
                let mut args = args.into_iter().enumerate();
                $(
                    let $ty: $ty = match args.next() {
                        Some((i, v)) => arg(method, i, v)?,
                        None => unreachable!("arity checked above"),
                    };
                )*
                (self)($($ty),*).into_reply()
            }
        }
    };
}

impl_handler!(0);
impl_handler!(1, A1);
impl_handler!(2, A1, A2);
impl_handler!(3, A1, A2, A3);
impl_handler!(4, A1, A2, A3, A4);
impl_handler!(5, A1, A2, A3, A4, A5);
impl_handler!(6, A1, A2, A3, A4, A5, A6);

#[cfg(test)]
mod tests {
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
}

//! How a typed Rust function becomes a method: [`Handler`] reads its
//! signature (parameter types as JSON Schema, through `schemars`), shapes
//! the caller's JSON arguments to it (positional or named, trailing
//! optionals left out) and converts each argument to its Rust type.
//!
//! All of it is derived from the function's types, so an author writes
//! none of it by hand; the only thing types cannot tell is the parameters'
//! names, which default to `arg1`, `arg2`, ... and can be given with
//! [`crate::Method::params`].

use schemars::JsonSchema;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

use crate::{Context, PluginError};

/// A method's signature, as the host publishes it and the kit checks it.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    /// The parameters, in order.
    pub params: Vec<Param>,
    /// True for a method that takes any JSON arguments (no parameter list).
    pub variadic: bool,
    /// JSON Schema of the result.
    pub result: Value,
}

/// One parameter of a method.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Its name.
    pub name: String,
    /// JSON Schema of its type.
    pub schema: Value,
    /// True when it may be left out (a trailing parameter whose type
    /// accepts `null`, as `Option<T>` does).
    pub optional: bool,
}

impl Signature {
    /// The signature of a variadic method.
    pub(crate) fn variadic() -> Self {
        Self {
            params: Vec::new(),
            variadic: true,
            result: Value::Bool(true),
        }
    }

    /// Builds a signature from each parameter's schema and whether its type
    /// accepts `null`; names are `arg1`, `arg2`, ...
    fn of(params: Vec<(Value, bool)>, result: Value) -> Self {
        let mut params: Vec<Param> = params
            .into_iter()
            .enumerate()
            .map(|(i, (schema, optional))| Param {
                name: format!("arg{}", i + 1),
                schema,
                optional,
            })
            .collect();
        // Only a trailing run of nullable parameters can be left out.
        let mut trailing = true;
        for p in params.iter_mut().rev() {
            trailing &= p.optional;
            p.optional = trailing;
        }
        Self {
            params,
            variadic: false,
            result,
        }
    }

    /// How many arguments a caller must give.
    pub fn required(&self) -> usize {
        self.params.iter().filter(|p| !p.optional).count()
    }

    fn names(&self) -> String {
        self.params
            .iter()
            .map(|p| {
                if p.optional {
                    format!("{}?", p.name)
                } else {
                    p.name.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Turns the caller's arguments (an array of positional ones, or an
    /// object of named ones) into exactly one value per parameter, `null`
    /// for optional ones left out; 400 errors say what was expected.
    pub fn shape(&self, method: &str, args: Value) -> Result<Vec<Value>, PluginError> {
        if self.variadic {
            return match args {
                Value::Array(args) => Ok(args),
                other => Err(PluginError::bad_arguments(format!(
                    "{method}: takes positional arguments (a JSON array), got {}",
                    kind(&other)
                ))),
            };
        }
        match args {
            Value::Array(mut args) => {
                let (required, total) = (self.required(), self.params.len());
                if args.len() < required || args.len() > total {
                    return Err(self.arity_error(method, args.len()));
                }
                args.resize(total, Value::Null);
                Ok(args)
            }
            Value::Object(mut named) => {
                let mut shaped = Vec::with_capacity(self.params.len());
                for p in &self.params {
                    match named.remove(&p.name) {
                        Some(v) => shaped.push(v),
                        None if p.optional => shaped.push(Value::Null),
                        None => {
                            return Err(PluginError::bad_arguments(format!(
                                "{method}: missing argument `{}`; expected: {}",
                                p.name,
                                self.names()
                            )))
                        }
                    }
                }
                if !named.is_empty() {
                    let unknown: Vec<String> = named.keys().map(|k| format!("`{k}`")).collect();
                    return Err(PluginError::bad_arguments(format!(
                        "{method}: unknown argument{} {}; expected: {}",
                        if unknown.len() == 1 { "" } else { "s" },
                        unknown.join(", "),
                        self.names()
                    )));
                }
                Ok(shaped)
            }
            other => Err(PluginError::bad_arguments(format!(
                "{method}: arguments must be a JSON array (positional) or object (named), got {}",
                kind(&other)
            ))),
        }
    }

    fn arity_error(&self, method: &str, got: usize) -> PluginError {
        let (required, total) = (self.required(), self.params.len());
        let plural = if total == 1 { "" } else { "s" };
        let expected = if required == total {
            format!("{total} argument{plural}")
        } else {
            format!("{required} to {total} arguments")
        };
        PluginError::bad_arguments(format!("{method} expects {expected}, got {got}"))
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The JSON Schema of `T`.
pub(crate) fn schema_of<T: JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Bool(true))
}

/// True when `T` can be read from `null` (so a caller may leave it out).
fn accepts_null<T: DeserializeOwned>() -> bool {
    serde_json::from_value::<T>(Value::Null).is_ok()
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
    /// JSON Schema of the result.
    fn result_schema() -> Value;
}

impl<T: Serialize + JsonSchema, E: Into<PluginError>> IntoReply for Result<T, E> {
    fn into_reply(self) -> Result<Value, PluginError> {
        let value = self.map_err(Into::into)?;
        serde_json::to_value(value)
            .map_err(|e| PluginError::failed(format!("result does not serialise to JSON: {e}")))
    }

    fn result_schema() -> Value {
        schema_of::<T>()
    }
}

/// Marks handlers whose first parameter is the call's [`Context`].
#[doc(hidden)]
pub struct WithContext;

/// A typed function usable as a method: `Fn(A1, ..., An) -> Result<T, E>`
/// or `Fn(&Context, A1, ..., An) -> Result<T, E>`, with `n <= 6`, every
/// `Ai: Deserialize + JsonSchema` and `T: Serialize + JsonSchema`. `M` is a
/// marker that keeps the impls apart.
pub trait Handler<M>: Send + Sync + 'static {
    /// The signature its types give.
    fn signature() -> Signature
    where
        Self: Sized;
    /// True when it takes a [`Context`].
    fn takes_context() -> bool
    where
        Self: Sized;
    /// Runs the function on arguments already shaped to its signature.
    fn call(&self, ctx: &Context<'_>, method: &str, args: Vec<Value>)
        -> Result<Value, PluginError>;
}

fn arg<T: DeserializeOwned>(method: &str, index: usize, value: Value) -> Result<T, PluginError> {
    serde_json::from_value(value)
        .map_err(|e| PluginError::bad_arguments(format!("{method}: argument {}: {e}", index + 1)))
}

macro_rules! impl_handler {
    ($($ty:ident),*) => {
        impl<F, R, $($ty,)*> Handler<($($ty,)*)> for F
        where
            F: Fn($($ty),*) -> R + Send + Sync + 'static,
            R: IntoReply,
            $($ty: DeserializeOwned + JsonSchema,)*
        {
            fn signature() -> Signature {
                Signature::of(vec![$((schema_of::<$ty>(), accepts_null::<$ty>()),)*], R::result_schema())
            }

            fn takes_context() -> bool {
                false
            }

            #[allow(non_snake_case, unused_mut, unused_variables)]
            fn call(&self, _ctx: &Context<'_>, method: &str, args: Vec<Value>) -> Result<Value, PluginError> {
                let mut args = args.into_iter().enumerate();
                $(
                    let $ty: $ty = match args.next() {
                        Some((i, v)) => arg(method, i, v)?,
                        None => return Err(PluginError::bad_arguments(format!("{method}: too few arguments"))),
                    };
                )*
                (self)($($ty),*).into_reply()
            }
        }

        impl<F, R, $($ty,)*> Handler<(WithContext, $($ty,)*)> for F
        where
            F: Fn(&Context<'_>, $($ty),*) -> R + Send + Sync + 'static,
            R: IntoReply,
            $($ty: DeserializeOwned + JsonSchema,)*
        {
            fn signature() -> Signature {
                Signature::of(vec![$((schema_of::<$ty>(), accepts_null::<$ty>()),)*], R::result_schema())
            }

            fn takes_context() -> bool {
                true
            }

            #[allow(non_snake_case, unused_mut, unused_variables)]
            fn call(&self, ctx: &Context<'_>, method: &str, args: Vec<Value>) -> Result<Value, PluginError> {
                let mut args = args.into_iter().enumerate();
                $(
                    let $ty: $ty = match args.next() {
                        Some((i, v)) => arg(method, i, v)?,
                        None => return Err(PluginError::bad_arguments(format!("{method}: too few arguments"))),
                    };
                )*
                (self)(ctx, $($ty),*).into_reply()
            }
        }
    };
}

impl_handler!();
impl_handler!(A1);
impl_handler!(A1, A2);
impl_handler!(A1, A2, A3);
impl_handler!(A1, A2, A3, A4);
impl_handler!(A1, A2, A3, A4, A5);
impl_handler!(A1, A2, A3, A4, A5, A6);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sig(params: &[(&str, bool)]) -> Signature {
        let mut s = Signature::of(
            params.iter().map(|(_, o)| (json!({}), *o)).collect(),
            json!(true),
        );
        for (p, (name, _)) in s.params.iter_mut().zip(params) {
            p.name = (*name).to_owned();
        }
        s
    }

    #[test]
    fn only_trailing_nullable_parameters_are_optional() {
        let s = sig(&[("a", true), ("b", false), ("c", true), ("d", true)]);
        let optional: Vec<bool> = s.params.iter().map(|p| p.optional).collect();
        assert_eq!(optional, [false, false, true, true]);
        assert_eq!(s.required(), 2);
    }

    #[test]
    fn positional_arguments_fill_omitted_optionals_with_null() {
        let s = sig(&[("key", false), ("ttl", true)]);
        assert_eq!(
            s.shape("put", json!(["k"])).unwrap(),
            [json!("k"), Value::Null]
        );
        assert_eq!(
            s.shape("put", json!(["k", 5])).unwrap(),
            [json!("k"), json!(5)]
        );
        let err = s.shape("put", json!([])).unwrap_err();
        assert_eq!(err.message, "put expects 1 to 2 arguments, got 0");
        let err = s.shape("put", json!([1, 2, 3])).unwrap_err();
        assert_eq!(err.code, 400);
    }

    #[test]
    fn named_arguments_map_by_name_and_wrong_names_list_the_expected_ones() {
        let s = sig(&[("key", false), ("ttl", true)]);
        assert_eq!(
            s.shape("put", json!({"ttl": 3, "key": "k"})).unwrap(),
            [json!("k"), json!(3)]
        );
        assert_eq!(
            s.shape("put", json!({"key": "k"})).unwrap(),
            [json!("k"), Value::Null]
        );
        let err = s.shape("put", json!({"kee": "k"})).unwrap_err();
        assert_eq!(err.code, 400);
        assert_eq!(
            err.message,
            "put: missing argument `key`; expected: key, ttl?"
        );
        let err = s.shape("put", json!({"key": "k", "tll": 1})).unwrap_err();
        assert_eq!(
            err.message,
            "put: unknown argument `tll`; expected: key, ttl?"
        );
        let err = s.shape("put", json!("k")).unwrap_err();
        assert!(err.message.contains("got a string"), "{err}");
    }
}

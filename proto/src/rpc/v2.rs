//! plughost's own RPC protocol (v2): JSON bodies, `content_type:
//! application/json`, replies to `reply_to`. Documented in `docs/protocol.md`.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// The codes of v2 error replies: the raw protocol's code table
/// (`200`, `403`, `500`, `503`), extended as `docs/wire.md` section 3 asks. Plugins see
/// the same numbers as `plughost_plugin_api::codes` (a host test checks that
/// the two agree).
pub mod codes {
    /// The arguments do not fit the method (count, names or types).
    pub const BAD_ARGUMENTS: u16 = 400;
    /// The caller is not allowed to do this.
    pub const FORBIDDEN: u16 = 403;
    /// No such method (or service).
    pub const NOT_FOUND: u16 = 404;
    /// A bare method name that hosts serve from different plugins: the
    /// caller must say which, with a qualified name (`plugin.method`).
    pub const AMBIGUOUS: u16 = 409;
    /// The method ran and failed, or panicked.
    pub const FAILED: u16 = 500;
    /// The method cannot run now (host draining, broker down, ...).
    pub const UNAVAILABLE: u16 = 503;
    /// The call's deadline passed before it finished.
    pub const DEADLINE_EXCEEDED: u16 = 504;
}

/// The `content_type` every v2 message carries.
pub const CONTENT_TYPE: &str = "application/json";

/// Header carrying the caller's deadline as Unix time in milliseconds, so a
/// host can answer 504 without running a request that waited too long.
pub const DEADLINE_HEADER: &str = "x-plughost-deadline-ms";

/// "Which route serves `method`?", sent to the name-service fanout.
/// `method` is a bare name (`fibo`) or a qualified one (`math.fibo`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FindRequest {
    /// The method looked for.
    pub method: String,
    /// A `describe` request: answers with a route also carry the method's
    /// [`Signature`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub describe: bool,
    /// Set when a host looks for its own bare names (at start and after
    /// each reload) to detect collisions: a name service that serves the
    /// name from another plugin logs the collision too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimant: Option<Claimant>,
}

impl FindRequest {
    /// A plain find for `method`.
    pub fn new(method: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            ..Self::default()
        }
    }
}

/// The AMQP `type` property of a stats request: "every host, send me your
/// per-method counters", published on the name-service fanout like a find.
/// Its body is a find for the empty method name (`{"method":""}`), so a host
/// that predates stats answers "not here" instead of counting a malformed
/// find; such answers are not [`StatsReply`]s and are skipped.
pub const STATS_REQUEST_TYPE: &str = "plughost.stats";

/// One host's answer to a stats request: its counters per method since the
/// process started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsReply {
    /// The answering host's name.
    pub host: String,
    /// One entry per plugin method that was called, sorted by plugin and method.
    pub methods: Vec<MethodStats>,
}

/// The counters of one method on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodStats {
    /// The plugin serving it.
    pub plugin: String,
    /// The method's bare name.
    pub method: String,
    /// Calls answered (results and errors).
    pub requests: u64,
    /// Calls answered with an error.
    pub errors: u64,
    /// The last error's code and message, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Mean time from dispatch to answer, in milliseconds.
    pub avg_ms: f64,
    /// 99th percentile of that time, in milliseconds (interpolated within
    /// doubling buckets from 0.1 ms, so within a factor of two).
    pub p99_ms: f64,
}

/// Who else serves a bare name (in a host's collision check).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claimant {
    /// The asking host's name.
    pub host: String,
    /// The plugin it serves the name from.
    pub plugin: String,
}

/// What a method takes and gives, derived from the plugin author's typed
/// handler (JSON Schemas through `schemars`): the answer to `describe`,
/// and what `plughost plugins --json` and `plughost status` show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signature {
    /// Its parameters, in order (empty for a variadic method).
    pub params: Vec<ParamSignature>,
    /// True when it takes any JSON arguments (no declared parameters).
    #[serde(default)]
    pub variadic: bool,
    /// JSON Schema of its result.
    pub result: Value,
}

impl Signature {
    /// One line for people: `greet(name: string, greeting?: string|null) -> string`
    /// (`?` marks a parameter that may be left out; `...` a variadic method).
    ///
    /// ```
    /// use plughost_proto::rpc::v2::{ParamSignature, Signature};
    /// use serde_json::json;
    /// let s = Signature {
    ///     params: vec![ParamSignature { name: "n".into(), schema: json!({"type": "integer"}), optional: false }],
    ///     variadic: false,
    ///     result: json!({"type": "integer"}),
    /// };
    /// assert_eq!(s.render("fibo"), "fibo(n: integer) -> integer");
    /// ```
    pub fn render(&self, method: &str) -> String {
        let params = if self.variadic {
            "...".to_owned()
        } else {
            self.params
                .iter()
                .map(|p| {
                    let mark = if p.optional { "?" } else { "" };
                    format!("{}{mark}: {}", p.name, type_name(&p.schema))
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!("{method}({params}) -> {}", type_name(&self.result))
    }
}

/// A schema's `type` for people (`integer`, `string|null`), or `any`.
fn type_name(schema: &Value) -> String {
    match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("|"),
        _ if schema.get("$ref").is_some() => "object".to_owned(),
        _ => "any".to_owned(),
    }
}

/// One parameter of a [`Signature`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamSignature {
    /// Its name (the key for named arguments).
    pub name: String,
    /// JSON Schema of its type.
    pub schema: Value,
    /// True when a caller may leave it out (a trailing `Option`).
    #[serde(default)]
    pub optional: bool,
}

/// A name service's answer. v2 name services answer "not here" too
/// (`route: None`), so a caller learns quickly that nobody has a method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindReply {
    /// The method asked about.
    pub method: String,
    /// The route serving it on the answering host, or `None`.
    pub route: Option<String>,
    /// The answering host's name.
    pub host: String,
    /// The plugin serving it, when found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// That plugin's version, when found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The method's signature, in answers to a `describe` request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

impl FindReply {
    /// The qualified name (`plugin.method`) this answer points at, when it
    /// has a route and names its plugin.
    pub fn qualified(&self) -> Option<String> {
        let plugin = self.plugin.as_deref()?;
        self.route.as_ref()?;
        let bare = self
            .method
            .split_once('.')
            .map_or(self.method.as_str(), |(_, m)| m);
        Some(format!("{plugin}.{bare}"))
    }
}

/// A call, published to the RPC exchange with the route as routing key.
#[derive(Debug, Serialize, Deserialize)]
pub struct CallRequest<'a> {
    /// The method to run (several methods may share a route).
    pub method: String,
    /// The arguments as a JSON array, passed to the plugin untouched.
    #[serde(borrow)]
    pub args: &'a RawValue,
}

/// The error half of a reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// 400, 404, 500, 503, 504 (see [`codes`]).
    pub code: u16,
    /// What went wrong.
    pub message: String,
    /// What to do about it, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl ErrorBody {
    /// An error with a code and message.
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            help: None,
        }
    }
}

/// A call's reply: `{"result": ...}` or `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallReply {
    /// The method's JSON result.
    Result(Value),
    /// Why there is no result.
    Error(ErrorBody),
}

/// Writes a success reply around a result that is already JSON text, without
/// decoding it (the host never needs to look inside results).
///
/// ```
/// use plughost_proto::rpc::v2::{encode_result, CallReply};
/// let body = encode_result("55");
/// assert_eq!(body, br#"{"result":55}"#);
/// assert_eq!(serde_json::from_slice::<CallReply>(&body).unwrap(), CallReply::Result(55.into()));
/// ```
pub fn encode_result(result_json: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(encoded_result_len(result_json));
    body.extend_from_slice(br#"{"result":"#);
    body.extend_from_slice(result_json.as_bytes());
    body.push(b'}');
    body
}

/// The size of [`encode_result`]'s body, known before writing it (so an
/// oversized result is refused without copying it).
///
/// ```
/// use plughost_proto::rpc::v2::{encode_result, encoded_result_len};
/// assert_eq!(encoded_result_len("55"), encode_result("55").len());
/// ```
pub fn encoded_result_len(result_json: &str) -> usize {
    result_json.len() + br#"{"result":}"#.len()
}

/// Writes an error reply.
pub fn encode_error(error: &ErrorBody) -> Vec<u8> {
    // Serialising a struct of strings and a number cannot fail.
    serde_json::to_vec(&CallReply::Error(error.clone())).unwrap_or_else(|_| {
        format!(
            r#"{{"error":{{"code":{},"message":"unencodable error"}}}}"#,
            codes::FAILED
        )
        .into_bytes()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_request_keeps_args_raw() {
        let req: CallRequest<'_> =
            serde_json::from_str(r#"{"method":"fibo","args":[10]}"#).unwrap();
        assert_eq!(req.method, "fibo");
        assert_eq!(req.args.get(), "[10]");
    }

    #[test]
    fn error_reply_shape() {
        let body = encode_error(&ErrorBody::new(404, "no such method"));
        assert_eq!(
            body,
            br#"{"error":{"code":404,"message":"no such method"}}"#
        );
    }

    #[test]
    fn find_reply_omits_absent_plugin() {
        let r = FindReply {
            method: "m".into(),
            route: None,
            host: "h".into(),
            plugin: None,
            version: None,
            signature: None,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"method":"m","route":null,"host":"h"}"#
        );
    }
}

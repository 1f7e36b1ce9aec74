//! The old system's RPC text framing (docs/wire.md section 1), byte for byte.
//!
//! Every v1 body is a list of parts, each followed by CRLF. The parsers here
//! follow the old service's rules exactly (including its quirks: empty call
//! arguments are skipped), and never panic on any input.

use std::fmt;

const CRLF: &str = "\r\n";

/// Why a v1 body could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum V1Error {
    /// The body is not UTF-8.
    #[error("v1 body is not UTF-8")]
    NotUtf8,
    /// A find body does not split into `[M, "", X, "", K, ""]`.
    #[error("v1 find body must be `M CRLF CRLF X CRLF CRLF K CRLF` (6 parts), got {parts} parts")]
    FindShape {
        /// How many CRLF-separated parts it had.
        parts: usize,
    },
    /// A call body has no method or no reply exchange.
    #[error("v1 call body must be `M CRLF CRLF X CRLF CRLF args...`; missing {missing}")]
    CallShape {
        /// What is missing: "method" or "reply exchange".
        missing: &'static str,
    },
}

/// A find request: which route serves `method`? Answer to `exchange`/`key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindRequest {
    /// The method looked for.
    pub method: String,
    /// The exchange to publish the answer to.
    pub exchange: String,
    /// The routing key to publish the answer with.
    pub key: String,
}

impl FindRequest {
    /// Parses a find body.
    ///
    /// ```
    /// use plughost_proto::rpc::v1::FindRequest;
    /// let f = FindRequest::parse(b"fibo\r\n\r\nrpc_exchange\r\n\r\namq.gen-1.RpcNameServiceClient\r\n").unwrap();
    /// assert_eq!((f.method.as_str(), f.exchange.as_str()), ("fibo", "rpc_exchange"));
    /// assert_eq!(f.encode(), b"fibo\r\n\r\nrpc_exchange\r\n\r\namq.gen-1.RpcNameServiceClient\r\n");
    /// ```
    pub fn parse(body: &[u8]) -> Result<Self, V1Error> {
        let text = std::str::from_utf8(body).map_err(|_| V1Error::NotUtf8)?;
        let parts: Vec<&str> = text.split(CRLF).collect();
        match parts.as_slice() {
            [m, "", x, "", k, ""] if !m.is_empty() && !x.is_empty() && !k.is_empty() => Ok(Self {
                method: (*m).to_owned(),
                exchange: (*x).to_owned(),
                key: (*k).to_owned(),
            }),
            _ => Err(V1Error::FindShape { parts: parts.len() }),
        }
    }

    /// The body bytes, as the old finder sends them.
    pub fn encode(&self) -> Vec<u8> {
        format!(
            "{}{CRLF}{CRLF}{}{CRLF}{CRLF}{}{CRLF}",
            self.method, self.exchange, self.key
        )
        .into_bytes()
    }
}

/// The answer to a find: `M CRLF CRLF R CRLF`.
///
/// ```
/// use plughost_proto::rpc::v1::find_reply;
/// assert_eq!(find_reply("fibo", "com.goffersoft.math.algo.fibo"), b"fibo\r\n\r\ncom.goffersoft.math.algo.fibo\r\n");
/// ```
pub fn find_reply(method: &str, route: &str) -> Vec<u8> {
    format!("{method}{CRLF}{CRLF}{route}{CRLF}").into_bytes()
}

/// Reads the route out of a find answer: part 2 after splitting on CRLF,
/// as the old finder does.
pub fn parse_find_reply(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split(CRLF)
        .nth(2)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
}

/// A call: run `method` with string `args`; answer to `reply_exchange`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRequest {
    /// The method to run.
    pub method: String,
    /// The exchange the result goes to (with key `<route>.result`).
    pub reply_exchange: String,
    /// The arguments, as strings (empty ones are lost, as in the old system).
    pub args: Vec<String>,
}

impl CallRequest {
    /// Parses a call body the way the old service does: part 0 is the
    /// method; after it, empty parts are skipped; the first non-empty part is
    /// the reply exchange, the rest are arguments.
    ///
    /// ```
    /// use plughost_proto::rpc::v1::CallRequest;
    /// let c = CallRequest::parse(b"fibo\r\n\r\nrpc_exchange\r\n\r\n10\r\n").unwrap();
    /// assert_eq!((c.method.as_str(), c.reply_exchange.as_str()), ("fibo", "rpc_exchange"));
    /// assert_eq!(c.args, ["10"]);
    /// ```
    pub fn parse(body: &[u8]) -> Result<Self, V1Error> {
        let text = std::str::from_utf8(body).map_err(|_| V1Error::NotUtf8)?;
        let mut parts = text.split(CRLF);
        let method = parts
            .next()
            .filter(|m| !m.is_empty())
            .ok_or(V1Error::CallShape { missing: "method" })?;
        let mut rest = parts.filter(|p| !p.is_empty());
        let reply_exchange = rest.next().ok_or(V1Error::CallShape {
            missing: "reply exchange",
        })?;
        Ok(Self {
            method: method.to_owned(),
            reply_exchange: reply_exchange.to_owned(),
            args: rest.map(str::to_owned).collect(),
        })
    }

    /// The body bytes, as the old caller sends them.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = format!(
            "{}{CRLF}{CRLF}{}{CRLF}{CRLF}",
            self.method, self.reply_exchange
        );
        for arg in &self.args {
            body.push_str(arg);
            body.push_str(CRLF);
        }
        body.into_bytes()
    }
}

/// How much of a call body [`reply_exchange_in_head`] reads.
pub const HEAD_BYTES: usize = 4096;

/// The reply exchange of a call body, read from its first [`HEAD_BYTES`]
/// only, so a body too large to parse can still be answered: the method and
/// the exchange must be complete (followed by CRLF) within them.
///
/// ```
/// use plughost_proto::rpc::v1::reply_exchange_in_head;
/// let mut body = b"echo\r\n\r\nrpc_exchange\r\n\r\n".to_vec();
/// body.resize(100_000, b'x');
/// assert_eq!(reply_exchange_in_head(&body), Some("rpc_exchange"));
/// assert_eq!(reply_exchange_in_head(b"echo\r\n\r\nrpc_exch"), None);
/// ```
pub fn reply_exchange_in_head(body: &[u8]) -> Option<&str> {
    let head = &body[..body.len().min(HEAD_BYTES)];
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // A cut through a character, or bytes that are not text at all.
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).ok()?,
    };
    let (complete, _) = text.rsplit_once(CRLF)?;
    let mut parts = complete.split(CRLF);
    parts.next().filter(|method| !method.is_empty())?;
    parts.find(|part| !part.is_empty())
}

/// The routing key v1 results are published with: `<route>.result`.
pub fn result_key(route: &str) -> String {
    format!("{route}.result")
}

/// The outcome of a v1 call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallReply {
    /// `Success CRLF CRLF <result> CRLF`
    Success(String),
    /// `Failure CRLF CRLF <error> CRLF`
    Failure(String),
}

impl CallReply {
    /// The body bytes.
    ///
    /// ```
    /// use plughost_proto::rpc::v1::CallReply;
    /// assert_eq!(CallReply::Success("55".into()).encode(), b"Success\r\n\r\n55\r\n");
    /// assert_eq!(CallReply::parse(b"Failure\r\n\r\nno such method\r\n"), Some(CallReply::Failure("no such method".into())));
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// The size of [`CallReply::encode`]'s body, known before writing it.
    ///
    /// ```
    /// use plughost_proto::rpc::v1::CallReply;
    /// let reply = CallReply::Failure("no such method".into());
    /// assert_eq!(reply.encoded_len(), reply.encode().len());
    /// ```
    pub fn encoded_len(&self) -> usize {
        let (status, text) = match self {
            Self::Success(t) => ("Success", t),
            Self::Failure(t) => ("Failure", t),
        };
        status.len() + text.len() + 3 * CRLF.len()
    }

    /// Parses a reply body (for tests and the v1 client helpers).
    pub fn parse(body: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(body).ok()?;
        let mut parts = text.splitn(3, CRLF);
        let status = parts.next()?;
        if !parts.next()?.is_empty() {
            return None;
        }
        let rest = parts.next()?;
        let value = rest.strip_suffix(CRLF).unwrap_or(rest).to_owned();
        match status {
            "Success" => Some(Self::Success(value)),
            "Failure" => Some(Self::Failure(value)),
            _ => None,
        }
    }
}

impl fmt::Display for CallReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (status, text) = match self {
            Self::Success(t) => ("Success", t),
            Self::Failure(t) => ("Failure", t),
        };
        write!(f, "{status}{CRLF}{CRLF}{text}{CRLF}")
    }
}

/// How a text argument becomes JSON, for v1 calls and for the CLI alike:
/// as JSON when it parses (`10` is the number 10, `[1]` an array), else as a
/// string (`abc`), so old callers' string arguments reach typed methods.
///
/// ```
/// use plughost_proto::rpc::v1::arg_value;
/// assert_eq!(arg_value("10"), serde_json::json!(10));
/// assert_eq!(arg_value("abc"), serde_json::json!("abc"));
/// ```
pub fn arg_value(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
}

/// How a v1 text argument becomes JSON for a parameter with JSON Schema
/// `schema`, the way the old service handed arguments to its methods:
///
/// - a parameter that takes a string gets the text as it is (`123` stays
///   the string "123", `"x"` keeps its quotes);
/// - a number or integer parameter gets the number the text spells, a
///   boolean parameter `true`/`false` (Python's `True`/`False` too);
/// - anything else (objects, arrays, schemas without a plain `type`) gets
///   the text parsed as JSON, or the string when it does not parse.
///
/// Text that does not convert stays a string, so the method answers 400
/// naming the argument and the type it expected.
///
/// ```
/// use plughost_proto::rpc::v1::arg_for_schema;
/// use serde_json::json;
/// assert_eq!(arg_for_schema("123", &json!({"type": "string"})), json!("123"));
/// assert_eq!(arg_for_schema("10", &json!({"type": "integer"})), json!(10));
/// assert_eq!(arg_for_schema("True", &json!({"type": ["boolean", "null"]})), json!(true));
/// ```
pub fn arg_for_schema(text: &str, schema: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let takes = |t: &str| types.contains(&t);
    if takes("string") {
        return Value::String(text.to_owned());
    }
    if takes("integer") || takes("number") {
        if let Ok(n) = serde_json::from_str::<serde_json::Number>(text.trim()) {
            return Value::Number(n);
        }
    }
    if takes("boolean") {
        match text.trim() {
            "true" | "True" => return Value::Bool(true),
            "false" | "False" => return Value::Bool(false),
            _ => {}
        }
    }
    if takes("null") && matches!(text.trim(), "null" | "None") {
        return Value::Null;
    }
    if types.is_empty() || takes("object") || takes("array") {
        return arg_value(text);
    }
    Value::String(text.to_owned())
}

/// How a JSON result is written into a v1 `Success` body: strings bare (as
/// the old Python service's `str()` did), everything else as JSON text.
pub fn result_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_body_must_have_exactly_six_parts() {
        assert!(FindRequest::parse(b"fibo\r\n\r\nx\r\n\r\nk\r\n").is_ok());
        assert_eq!(
            FindRequest::parse(b"fibo\r\n\r\nx\r\n").unwrap_err(),
            V1Error::FindShape { parts: 4 }
        );
        assert!(FindRequest::parse(b"fibo\r\n\r\nx\r\n\r\nk\r\nextra\r\n").is_err());
        assert!(FindRequest::parse(b"\r\n\r\nx\r\n\r\nk\r\n").is_err());
        assert_eq!(
            FindRequest::parse(&[0xff, 0xfe]).unwrap_err(),
            V1Error::NotUtf8
        );
    }

    #[test]
    fn call_parsing_skips_empty_parts_like_the_old_service() {
        let c = CallRequest::parse(b"echo\r\n\r\nrpc_exchange\r\n\r\na\r\n\r\nb\r\n").unwrap();
        assert_eq!(c.args, ["a", "b"]);
        let c = CallRequest::parse(b"now\r\n\r\nrpc_exchange\r\n\r\n").unwrap();
        assert!(c.args.is_empty());
        assert_eq!(
            CallRequest::parse(b"fibo\r\n\r\n").unwrap_err(),
            V1Error::CallShape {
                missing: "reply exchange"
            }
        );
        assert_eq!(
            CallRequest::parse(b"").unwrap_err(),
            V1Error::CallShape { missing: "method" }
        );
    }

    #[test]
    fn the_reply_exchange_is_read_from_the_head_only() {
        assert_eq!(
            reply_exchange_in_head(b"fibo\r\n\r\nrpc_exchange\r\n\r\n10\r\n"),
            Some("rpc_exchange")
        );
        assert_eq!(reply_exchange_in_head(b"fibo\r\nx\r\n"), Some("x"));
        assert_eq!(reply_exchange_in_head(b"fibo\r\n\r\n"), None, "no exchange");
        assert_eq!(reply_exchange_in_head(b"\r\n\r\nx\r\n"), None, "no method");
        assert_eq!(reply_exchange_in_head(&[0xff; 10_000]), None);
        let mut late = vec![b'm'; HEAD_BYTES];
        late.extend_from_slice(b"\r\n\r\nx\r\n");
        assert_eq!(reply_exchange_in_head(&late), None, "beyond the head");
        // A multi-byte character cut at the head's end does not hide what came before.
        let mut cut = b"m\r\n\r\nx\r\n".to_vec();
        cut.resize(HEAD_BYTES - 1, b'a');
        cut.extend_from_slice("é".as_bytes());
        assert_eq!(reply_exchange_in_head(&cut), Some("x"));
    }

    #[test]
    fn v1_text_arguments_follow_the_parameter_schema() {
        use serde_json::json;
        let string = json!({"type": "string"});
        assert_eq!(arg_for_schema("123", &string), json!("123"));
        assert_eq!(arg_for_schema("\"x\"", &string), json!("\"x\""));
        let int = json!({"type": "integer", "format": "uint32", "minimum": 0});
        assert_eq!(arg_for_schema("10", &int), json!(10));
        assert_eq!(arg_for_schema("ten", &int), json!("ten"), "left for a 400");
        assert_eq!(
            arg_for_schema("2.5", &json!({"type": "number"})),
            json!(2.5)
        );
        let opt_bool = json!({"type": ["boolean", "null"]});
        assert_eq!(arg_for_schema("false", &opt_bool), json!(false));
        assert_eq!(arg_for_schema("None", &opt_bool), json!(null));
        assert_eq!(
            arg_for_schema("[1,2]", &json!({"type": "array"})),
            json!([1, 2])
        );
        assert_eq!(
            arg_for_schema("{\"a\":1}", &json!({"$ref": "#/$defs/A"})),
            json!({"a": 1})
        );
        assert_eq!(arg_for_schema("abc", &json!(true)), json!("abc"));
    }

    #[test]
    fn encode_parse_round_trip() {
        let c = CallRequest {
            method: "fibo".into(),
            reply_exchange: "rpc_exchange".into(),
            args: vec!["10".into()],
        };
        assert_eq!(c.encode(), b"fibo\r\n\r\nrpc_exchange\r\n\r\n10\r\n");
        assert_eq!(CallRequest::parse(&c.encode()).unwrap(), c);
        assert_eq!(
            parse_find_reply(&find_reply("fibo", "a.b")).as_deref(),
            Some("a.b")
        );
        assert_eq!(result_text(&serde_json::json!("ABC")), "ABC");
        assert_eq!(result_text(&serde_json::json!([1, 2])), "[1,2]");
    }
}

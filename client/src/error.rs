//! Errors of the RPC roles and the client.

use plughost_proto::rpc::v2::codes;

/// An RPC failure as a caller sees it. Each maps to a wire code
/// ([`RpcError::code`]) so the CLI, the client and v2 replies agree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// The broker cannot be reached or the connection dropped (503).
    #[error("broker unavailable at {url}: {reason} (is RabbitMQ running? start it with `rabbitmq-server -detached`)")]
    BrokerUnavailable {
        /// The broker URL (without credentials).
        url: String,
        /// What failed.
        reason: String,
    },
    /// Nothing listens at the broker's address (503): no broker runs
    /// there. Unlike [`RpcError::BrokerUnavailable`] (a broker that does
    /// not answer), this is when a caller falls back to the local socket.
    #[error("no broker at {url}: {reason} (is RabbitMQ running? start it with `rabbitmq-server -detached`, or call a host on this machine with --local)")]
    NoBroker {
        /// The broker URL (without credentials).
        url: String,
        /// What the connect said.
        reason: String,
    },
    /// No host answers on the local socket (503).
    #[error("no local host on {socket}: {reason} (is `plughost run` running on this machine?)")]
    LocalUnavailable {
        /// The socket's path.
        socket: String,
        /// What failed.
        reason: String,
    },
    /// The broker URL or its TLS settings cannot be honoured as written
    /// (400): refused before any socket is opened, never downgraded.
    #[error("broker settings for {url} refused: {reason}")]
    BrokerConfig {
        /// The broker URL (without credentials).
        url: String,
        /// Why it cannot be honoured.
        reason: String,
    },
    /// The TLS handshake with the broker failed (503): an untrusted
    /// certificate, a port that does not speak TLS, a refused client
    /// certificate. The reason says which and what to set.
    #[error("TLS to the broker at {url} failed: {reason}")]
    Tls {
        /// The broker URL (without credentials).
        url: String,
        /// What failed, with a hint.
        reason: String,
    },
    /// The broker blocks publishing on this connection (503): AMQP
    /// `connection.blocked`, sent during a memory or disk alarm. Calls fail
    /// at once instead of waiting for their deadline, and work again after
    /// `connection.unblocked`.
    #[error("broker at {url} blocks publishing: {reason} (a resource alarm: calls fail until it clears; `rabbitmqctl status` lists alarms)")]
    Blocked {
        /// The broker URL (without credentials).
        url: String,
        /// The broker's reason, e.g. `low on memory` or `low on disk`.
        reason: String,
    },
    /// No name service knows the method (404).
    #[error("method `{method}` not found: no running host serves it")]
    MethodNotFound {
        /// The method.
        method: String,
    },
    /// Name services answered a bare method name with different plugins
    /// (409): calling it would reach one of them at random, so the caller
    /// must pick one with a qualified name.
    #[error("method `{method}` is ambiguous: it is served by {}; call one of them by its qualified name", .candidates.join(", "))]
    Ambiguous {
        /// The bare name asked for.
        method: String,
        /// Each answer as `plugin.method on host <host>`, sorted.
        candidates: Vec<String>,
    },
    /// Named arguments for a method only a v1 service serves (400): the
    /// old text framing carries positional arguments only.
    #[error("method `{method}` is served by a v1 service, which takes positional arguments only; pass them as a list")]
    V1NamedArguments {
        /// The method.
        method: String,
    },
    /// Nothing consumes the route: the broker returned the call (404).
    #[error("no service for route `{route}` (no host consumes it)")]
    NoRoute {
        /// The route.
        route: String,
    },
    /// No name service is running at all (503).
    #[error("no name service is running on exchange `{exchange}`")]
    NoNameService {
        /// The name-service exchange.
        exchange: String,
    },
    /// The call did not complete in time (504).
    #[error("call to `{method}` timed out after {timeout_ms} ms waiting for {waiting_for}")]
    Timeout {
        /// The method.
        method: String,
        /// The timeout.
        timeout_ms: u64,
        /// The step that was still open at the deadline: the broker's
        /// confirm of the request (a stalled broker) or the reply (a slow or
        /// absent host).
        waiting_for: &'static str,
    },
    /// The host answered with an error.
    #[error("{message}")]
    Remote {
        /// The reply's code.
        code: u16,
        /// The reply's message.
        message: String,
        /// The reply's help, if any.
        help: Option<String>,
    },
    /// A reply that is not valid v2.
    #[error("malformed reply: {0}")]
    BadReply(String),
    /// The arguments cannot be sent (400): they do not encode, or not as
    /// a JSON array or object. Nothing was sent.
    #[error("arguments of `{method}` refused: {reason}")]
    Arguments {
        /// The method.
        method: String,
        /// Why.
        reason: String,
    },
    /// The method answered, but not with the type the caller asked for
    /// (the call ran: do not simply retry).
    #[error("`{method}` returned {result}, which is not a {expected}: {reason}")]
    UnexpectedResult {
        /// The method.
        method: String,
        /// The Rust type asked for.
        expected: &'static str,
        /// The result (its first 200 characters).
        result: String,
        /// serde's reason.
        reason: String,
    },
}

impl RpcError {
    /// The wire code for this error (400, 404, 409, 500, 503, 504).
    pub fn code(&self) -> u16 {
        match self {
            Self::BrokerConfig { .. } | Self::Arguments { .. } | Self::V1NamedArguments { .. } => {
                codes::BAD_ARGUMENTS
            }
            Self::Ambiguous { .. } => codes::AMBIGUOUS,
            Self::BrokerUnavailable { .. }
            | Self::NoBroker { .. }
            | Self::LocalUnavailable { .. }
            | Self::Tls { .. }
            | Self::Blocked { .. }
            | Self::NoNameService { .. } => codes::UNAVAILABLE,
            Self::MethodNotFound { .. } | Self::NoRoute { .. } => codes::NOT_FOUND,
            Self::Timeout { .. } => codes::DEADLINE_EXCEEDED,
            Self::Remote { code, .. } => *code,
            Self::BadReply(_) | Self::UnexpectedResult { .. } => codes::FAILED,
        }
    }
}

//! # plughost-client
//!
//! Call plughost methods from Rust. A [`Client`] holds one broker
//! connection; it finds a method's route through the name services (v2,
//! falling back to the old tools' v1 when no v2 name service answers),
//! by its bare name (`fibo`) or qualified name (`math.fibo`), calls it with
//! a deadline that covers the whole call (find included), and hands back
//! the result, typed with serde when you ask for a type. A bare name that
//! hosts serve from different plugins fails with [`RpcError::Ambiguous`]. Errors tell apart what a
//! caller can act on: no such method, no host serving it, an error the
//! method returned (with its code and help), a timeout, an unavailable or
//! blocked broker.
//!
//! The crate is the callers' part of plughost: lapin, tokio and the wire
//! codecs of `plughost-proto`, nothing of the host (no plugin loading, no
//! ZeroMQ, no CLI). See `docs/client.md`.
//!
//! - [`client`]: [`Client`] and [`ClientOptions`]: connect, find, call.
//! - [`connection`]: one way to open a broker connection (TLS, deadlines,
//!   names the broker shows), shared with the host's own roles.
//! - [`topology`]: the exchanges plughost and the old tools share, and the
//!   route queues' declaration ([`topology::RouteQueueKind`]).
//! - [`urls`]: several broker addresses (a cluster's nodes): connect to
//!   the first that answers, fail over on loss, spread hosts over nodes.
//! - [`local`]: a host's local socket, for machines without a broker.
//! - [`RpcError`]: what can go wrong, each with its wire code.

pub mod client;
pub mod connection;
mod error;
pub mod local;
pub mod topology;
pub mod urls;

pub use client::{
    Answer, Args, Client, ClientOptions, Found, LocalMode, PublisherConfirms, ReplyMode, Transport,
};
pub use connection::TlsFiles;
pub use error::RpcError;
/// The wire codecs the client speaks (re-exported for callers that look
/// at replies themselves).
pub use plughost_proto::rpc as wire;
pub use topology::{Exchanges, RouteQueueKind};
pub use urls::BrokerUrls;

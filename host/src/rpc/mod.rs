//! The host's RPC roles over RabbitMQ: callers ask the name service which
//! route serves a method, then call that route; one host that serves it
//! runs the call.
//!
//! - [`server`]: the name-service and RPC-service roles of a host, with
//!   their reconnect loop and channel repairs.
//! - `replies`: where replies go (small ones on the request's own channel,
//!   the rest on a reply channel with confirms) and the check of v1 reply
//!   exchanges, so one bad reply cannot silence the others.
//! - [`collisions`]: bare names other hosts serve from other plugins
//!   (warnings at start and after each reload; who answers v1 finds).
//! - [`health`]: each channel's state, for `plughost status`.
//! - [`dispatch`]: the per-call path: limits, timeouts, the plugin's threads.
//! - [`inline`]: non-blocking methods run on the receiving thread, held to
//!   a budget by a watchdog.
//! - `acks`: which acknowledgements a consumer sends, several requests in
//!   one frame where none still running would be covered.
//! - `writes`: a request waits for its reply's write without being woken
//!   by it; its consumer looks whenever it wakes anyway.
//! - `route_queue`: a route queue declared elsewhere with other arguments
//!   (a 406): which argument differs and how to fix it.
//!
//! The wire formats are `plughost-proto`'s ([`plughost_proto::rpc`]); the
//! connection code and the shared topology are `plughost-client`'s.

mod acks;
pub mod collisions;
pub mod dispatch;
pub mod health;
pub mod inline;
mod replies;
mod route_queue;
pub mod server;
mod writes;

pub use health::{ChannelReport, RpcHealth};
/// Connecting and the shared broker objects, from `plughost-client`: the
/// host's roles open their connections exactly as callers do.
pub use plughost_client::{connection, topology, Exchanges, TlsFiles};
/// The RPC bodies (v1, v2), from `plughost-proto`.
pub use plughost_proto::rpc as wire;
pub use server::{serve, BrokerState, RpcConfig};

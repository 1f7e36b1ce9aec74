//! RPC over RabbitMQ: callers ask the name service which route serves a
//! method, then call that route; one host that serves it runs the call.
//!
//! - [`wire`]: the v1 (old text) and v2 (JSON) formats; no broker types.
//! - [`topology`]: exchanges and route queues, declared as the old tools do.
//! - [`server`]: the name-service and RPC-service roles of a host, with
//!   their reconnect loop and channel repairs.
//! - `replies`: the reply channel (confirmed publishes) and the check of
//!   v1 reply exchanges, so one bad reply cannot silence the others.
//! - [`health`]: each channel's state, for `plughost status`.
//! - [`dispatch`]: the per-call path: limits, timeouts, the blocking pool.
//! - [`client`]: [`Client`]: find, call, call_route.
//! - [`connection`]: connecting, naming connections, backoff.

pub mod client;
pub mod connection;
pub mod dispatch;
mod error;
pub mod health;
mod replies;
pub mod server;
pub mod topology;
pub mod wire;

pub use client::{Client, ClientOptions, ReplyMode};
pub use error::RpcError;
pub use health::{ChannelReport, RpcHealth};
pub use server::{serve, BrokerState, RpcConfig};
pub use topology::Exchanges;

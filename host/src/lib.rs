//! # plughost
//!
//! A plugin-based service host: it loads RPC methods and tracked services
//! from stable-ABI plugins listed in a TOML manifest and serves them. Map of
//! the crate:
//!
//! - [`admin`]: the local admin socket behind `plughost reload` and `plughost status`.
//! - [`bench`]: load generation for `plughost bench` (plughost vs a bare-lapin baseline).
//! - [`conformance`]: the plugin conformance kit's engine (checks, report,
//!   table/JSON/JUnit renderers); `plughost conformance` and the
//!   `plughost-conformance` crate are its two faces.
//! - [`faults`]: fault counters (shown by `plughost status`) and rate-limited fault logging.
//! - [`host`]: the entry point: [`host::run`] a manifest until a shutdown future.
//! - [`logging`]: install `tracing` from options, a TOML config and the environment.
//! - [`manifest`]: the TOML manifest: parse, validate.
//! - [`plugins`]: load plugin libraries, check their ABI, the method registry.
//! - [`proto`]: the protocol toolkit of the old system (messages, raw
//!   protocol, addresses, uids, codes, headers).
//! - [`rpc`]: RPC over RabbitMQ: name service, RPC service, client, v1/v2.
//! - [`scaffold`]: `plughost new`: generate a plugin crate that passes the kit.
//! - [`tracker`]: the service tracker over ZeroMQ: manager, service agents, management client.
//! - [`shutdown`]: the one shutdown signal every role listens to.
//! - [`versions`]: what this build is made of, for `plughost version`.
//! - [`watch`]: following the manifest and plugin files (debounced).
pub mod admin;
pub mod bench;
pub mod conformance;
pub mod faults;
pub mod host;
pub mod logging;
pub mod manifest;
pub mod plugins;
pub mod proto;
pub mod rpc;
pub mod scaffold;
pub mod shutdown;
pub mod tracker;
pub mod versions;
pub mod watch;

//! # plughost
//!
//! The plughost host as a library: one entry point, [`host::run`], takes a
//! manifest and a shutdown future and runs every role the manifest switches
//! on, serving the RPC methods and tracked services of the plugins it lists.
//! The `plughost` binary (crate `plughost-cli`) is a thin shell over it; an
//! embedding program calls the same function. Map of the crate:
//!
//! - [`host`]: the entry point and the control loop: start the roles, apply
//!   reloads one at a time, shut down within a grace.
//! - [`status`]: what `plughost status` shows (plugins, states, counters).
//! - [`admin`]: the local admin socket behind `plughost reload` and `plughost status`.
//! - [`local`]: the local transport: finds and calls over a Unix socket on
//!   this machine, through the same dispatch path, with or without a broker.
//! - [`manifest`]: the TOML manifest: parse, validate, where the broker is.
//! - [`plugins`]: the plugin set of a host (registry), and the next one a
//!   reload builds beside it; loading itself is `plughost-loader`'s.
//! - [`rpc`]: the RPC roles over RabbitMQ: name service, RPC service, the
//!   per-call dispatch path.
//! - [`tracker`]: the service tracker over ZeroMQ: manager, service agents,
//!   tracked services, management client.
//! - [`http`]: the read-only HTTP endpoint (`/metrics`, `/healthz`, `/readyz`).
//! - [`metrics`]: what `/metrics` counts (calls, latencies, reloads, reconnects).
//! - [`doctor`]: `plughost doctor`'s checks of a host's configuration and surroundings.
//! - [`faults`]: fault counters (shown by `plughost status`) and rate-limited fault logging.
//! - [`watch`]: following the manifest and plugin files (debounced).
//! - [`shutdown`]: the one shutdown signal every role listens to.
//! - [`runtime`]: the tokio runtime a host runs on, with its limits.
//!
//! The crates around it: `plughost-plugin-api` (the ABI plugins build
//! against), `plughost-loader` (opening and checking plugin files),
//! `plughost-proto` (wire formats, no I/O), `plughost-client` (callers'
//! side of RabbitMQ, whose connection code the host's roles share).
pub mod admin;
pub mod doctor;
pub mod faults;
pub mod host;
pub mod http;
pub mod local;
pub mod manifest;
pub mod metrics;
pub mod plugins;
pub mod rpc;
pub mod runtime;
pub mod shutdown;
pub mod status;
pub mod tracker;
pub mod watch;

/// The wire formats (`plughost-proto`), under the name the host's roles use.
pub use plughost_proto as proto;

//! # plughost
//!
//! A plugin-based service host. Map of the crate:
//!
//! - [`logging`]: install `tracing` from options, a TOML config and the environment.
//! - [`proto`]: the protocol toolkit of the old system (messages, raw protocol,
//!   addresses, uids, codes, headers).
pub mod logging;
pub mod proto;

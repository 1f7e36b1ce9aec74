//! # plughost
//!
//! A plugin-based service host. Map of the crate:
//!
//! - [`proto`]: the protocol toolkit of the old system (messages, raw protocol,
//!   addresses, uids, codes, headers).
pub mod proto;

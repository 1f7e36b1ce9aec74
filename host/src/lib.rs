//! # plughost
//!
//! A plugin-based service host: it loads RPC methods and tracked services
//! from stable-ABI plugins listed in a TOML manifest and serves them. Map of
//! the crate:
//!
//! - [`conformance`]: the plugin conformance kit's engine (checks, report,
//!   table/JSON/JUnit renderers); `plughost conformance` and the
//!   `plughost-conformance` crate are its two faces.
//! - [`manifest`]: the TOML manifest: parse, validate.
//! - [`plugins`]: load plugin libraries, check their ABI, the method registry.
//! - [`scaffold`]: `plughost new`: generate a plugin crate that passes the kit.
//! - [`proto`]: the protocol toolkit of the old system (messages, raw
//!   protocol, addresses, uids, codes, headers).
//! - [`versions`]: what this build is made of, for `plughost version`.
pub mod conformance;
pub mod manifest;
pub mod plugins;
pub mod proto;
pub mod scaffold;
pub mod versions;

//! The one error type that crosses the plugin boundary.
//!
//! A plain serializable struct (code, message, optional help) rather than an
//! enum, so the host, the RPC wire format and the conformance kit all read
//! the same three fields, and new codes never change the ABI.

use std::fmt;

use abi_stable::{
    std_types::{ROption, RString},
    StableAbi,
};

/// Error codes shared by plugins, the host and the RPC wire format.
///
/// They extend the raw protocol's code table (`200`, `403`, `500`, `503`).
/// The conformance kit expects 4xx for bad input and keeps 5xx for the
/// method's own failures.
///
/// ```
/// use plughost_plugin_api::{codes, PluginError};
///
/// let err = PluginError::new(codes::DEADLINE_EXCEEDED, "too slow");
/// let callers_fault = (400..500).contains(&err.code);
/// assert!(!callers_fault);
/// assert_eq!(PluginError::not_found("x").code, codes::NOT_FOUND);
/// assert_eq!(PluginError::failed("x").code, codes::FAILED);
/// ```
pub mod codes {
    /// The arguments do not fit the method (count or types).
    pub const BAD_ARGUMENTS: u16 = 400;
    /// The caller is not allowed to do this.
    pub const FORBIDDEN: u16 = 403;
    /// No such method (or service).
    pub const NOT_FOUND: u16 = 404;
    /// The method ran and failed, or panicked.
    pub const FAILED: u16 = 500;
    /// The method cannot run now (host draining, broker down, ...).
    pub const UNAVAILABLE: u16 = 503;
    /// The call's deadline passed before it finished.
    pub const DEADLINE_EXCEEDED: u16 = 504;
}

/// An error returned by a plugin method, a plugin's initialisation or a
/// tracked service.
///
/// ```
/// use plughost_plugin_api::PluginError;
///
/// let err = PluginError::bad_arguments("n must be at most 93").with_help("use a smaller n");
/// assert_eq!(err.code, 400);
/// assert_eq!(err.to_string(), "n must be at most 93 (help: use a smaller n)");
/// ```
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    /// One of [`codes`], or another code from the raw/HTTP tables.
    pub code: u16,
    /// What went wrong, for a human.
    pub message: RString,
    /// What the caller can do about it, when there is something to do.
    pub help: ROption<RString>,
}

impl PluginError {
    /// An error with any code.
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: RString::from(message.into()),
            help: ROption::RNone,
        }
    }

    /// 400: the arguments do not fit the method.
    pub fn bad_arguments(message: impl Into<String>) -> Self {
        Self::new(codes::BAD_ARGUMENTS, message)
    }

    /// 404: no such method or service.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(codes::NOT_FOUND, message)
    }

    /// 500: the method ran and failed.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(codes::FAILED, message)
    }

    /// Adds a hint on what to do next.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = ROption::RSome(RString::from(help.into()));
        self
    }

    /// The help text, if any.
    pub fn help(&self) -> Option<&str> {
        self.help.as_ref().map(|h| h.as_str()).into_option()
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(help) = self.help() {
            write!(f, " (help: {help})")?;
        }
        Ok(())
    }
}

impl std::error::Error for PluginError {}

impl From<serde_json::Error> for PluginError {
    /// A (de)serialisation problem is the caller's: arguments that do not fit.
    fn from(err: serde_json::Error) -> Self {
        Self::bad_arguments(err.to_string())
    }
}

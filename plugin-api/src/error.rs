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
    /// The request or its reply is larger than the host takes or sends
    /// (`[limits]` in the host's manifest).
    pub const TOO_LARGE: u16 = 413;
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

/// What the export glue writes between what panicked and the panic's detail.
const PANICKED: &str = " panicked: ";
/// What it writes before the panic's location.
const AT: &str = " (at ";

/// A panic inside plugin code, read back from the 500 error the export glue
/// made of it (`"<what> panicked: <message> (at <file>:<line>)"`), so the
/// host can log and count panics apart from ordinary failures. The format is
/// written and read only here, so the two cannot drift apart.
///
/// ```
/// use plughost_plugin_api::PluginError;
///
/// let err = PluginError::failed("method fibo panicked: boom (at src/lib.rs:7)");
/// let panic = err.panic_report().unwrap();
/// assert_eq!((panic.what, panic.message, panic.location), ("method fibo", "boom", Some("src/lib.rs:7")));
/// assert!(PluginError::failed("fibo: plain failure").panic_report().is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PanicReport<'a> {
    /// What panicked: `method <name>`, `service <name>`, `plugin initialisation`.
    pub what: &'a str,
    /// The panic's message.
    pub message: &'a str,
    /// `<file>:<line>` of the panic, when the plugin's panic hook saw it.
    pub location: Option<&'a str>,
}

impl PluginError {
    /// The 500 error a caught panic becomes; `detail` is the panic's message,
    /// followed by its location when known (see [`panic_detail`]).
    pub(crate) fn panicked(what: &str, detail: &str) -> Self {
        Self::failed(format!("{what}{PANICKED}{detail}"))
    }

    /// The panic this error reports, or `None` for any other error.
    pub fn panic_report(&self) -> Option<PanicReport<'_>> {
        if self.code != codes::FAILED {
            return None;
        }
        let (what, detail) = self.message.as_str().split_once(PANICKED)?;
        if what.is_empty() {
            return None;
        }
        let located = detail
            .strip_suffix(')')
            .and_then(|d| d.rsplit_once(AT))
            .filter(|(_, at)| is_location(at));
        Some(match located {
            Some((message, location)) => PanicReport {
                what,
                message,
                location: Some(location),
            },
            None => PanicReport {
                what,
                message: detail,
                location: None,
            },
        })
    }
}

/// A panic's message with its location, as [`PanicReport`] reads it back.
pub(crate) fn panic_detail(message: &str, file: &str, line: u32) -> String {
    format!("{message}{AT}{file}:{line})")
}

/// `<file>:<line>` with a non-empty file and a decimal line.
fn is_location(text: &str) -> bool {
    text.rsplit_once(':').is_some_and(|(file, line)| {
        !file.is_empty() && !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit())
    })
}

impl From<serde_json::Error> for PluginError {
    /// A (de)serialisation problem is the caller's: arguments that do not fit.
    fn from(err: serde_json::Error) -> Self {
        Self::bad_arguments(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_error_reads_back_as_written() {
        let err =
            PluginError::panicked("method m", &panic_detail("boom (really)", "src/lib.rs", 3));
        assert_eq!(
            err.message.as_str(),
            "method m panicked: boom (really) (at src/lib.rs:3)"
        );
        assert_eq!(
            err.panic_report(),
            Some(PanicReport {
                what: "method m",
                message: "boom (really)",
                location: Some("src/lib.rs:3"),
            })
        );
    }

    #[test]
    fn a_panic_without_location_or_with_odd_text_is_still_recognised() {
        let err = PluginError::panicked("service s", "a non-string panic payload");
        let report = err.panic_report().unwrap();
        assert_eq!((report.what, report.location), ("service s", None));
        let err = PluginError::failed("method m panicked: see (at the end)");
        let report = err.panic_report().unwrap();
        assert_eq!(
            (report.message, report.location),
            ("see (at the end)", None)
        );
    }

    #[test]
    fn other_errors_are_not_panics() {
        assert!(PluginError::failed("plain failure")
            .panic_report()
            .is_none());
        assert!(PluginError::bad_arguments("x panicked: but a 400")
            .panic_report()
            .is_none());
        assert!(PluginError::failed(" panicked: nothing before")
            .panic_report()
            .is_none());
    }
}

//! Errors from reading and validating a manifest.

use std::path::PathBuf;

/// Why a manifest could not be used. Every variant names the file; parse and
/// validation errors also name the key and line.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("manifest {path}: cannot read it: {source}")]
    Read {
        /// The manifest file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has an unknown key or a value of the wrong type.
    #[error("manifest {path}: {message}")]
    Parse {
        /// The manifest file.
        path: PathBuf,
        /// The parser's message, with line, column and key.
        message: String,
    },
    /// A value parsed but is not acceptable.
    #[error("manifest {path}: line {line}: `{key}`: {reason}")]
    Invalid {
        /// The manifest file.
        path: PathBuf,
        /// Dotted path of the offending key.
        key: String,
        /// 1-based line of the value.
        line: usize,
        /// Why it is not acceptable.
        reason: String,
    },
}

//! Why a plugin could not be loaded or registered.
//!
//! One enum for the whole plugins module: each variant names the file and
//! says what is wrong in an operator's words, and what to do where there is
//! something to do.

use std::{
    io,
    path::{Path, PathBuf},
};

use plughost_plugin_api::PluginError;

use crate::settle::Unsettled;

/// A plugin load or registration failure. Every variant names the file (or
/// the plugins involved) and the reason, in the words an operator needs.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file does not exist.
    #[error("plugin {path}: file not found (check `path` in the manifest, relative paths resolve against the manifest's folder)")]
    Missing {
        /// The plugin file.
        path: PathBuf,
    },
    /// The file exists but could not be read or copied.
    #[error("plugin {path}: cannot read it: {reason}")]
    Io {
        /// The plugin file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// The file's SHA-256 is not the one pinned in the manifest.
    #[error("plugin {path}: sha256 is {actual}, manifest pins {expected}")]
    ShaMismatch {
        /// The plugin file.
        path: PathBuf,
        /// The pinned hash.
        expected: String,
        /// The file's hash.
        actual: String,
    },
    /// Something the file's ELF headers declare lies past its end: a copy
    /// cut short, or one still being written.
    #[error("plugin file {path}: truncated: {what} ends at byte {end} but the file has {len} bytes (copy it completely; copying next to it and renaming over it with `mv` means the host never sees it half-written)")]
    Truncated {
        /// The plugin file.
        path: PathBuf,
        /// What is cut off, e.g. "segment 3 (PT_LOAD)".
        what: String,
        /// The byte it would end at.
        end: u64,
        /// The file's size.
        len: u64,
    },
    /// The file changed while it was being checked or copied.
    #[error("plugin file {path}: still being written: {change} during the check (a file is loaded once it has stayed unchanged for {} ms; the file watcher retries when it changes again)", crate::settle::QUIET.as_millis())]
    StillBeingWritten {
        /// The plugin file.
        path: PathBuf,
        /// What changed, e.g. "size changed from 500000 to 700000 bytes".
        change: String,
    },
    /// The file, a folder on the way to it or a link followed could be
    /// changed by a user other than root and the host's.
    #[error("plugin file {path}: refused: {kind} {culprit} {problem}, so another user could put code into this host; run `{fix}`, or set `allow_insecure_plugin_files = true` in [host] to load it anyway (with a warning at every load)")]
    Insecure {
        /// The plugin file.
        path: PathBuf,
        /// "file", "folder" or "symbolic link".
        kind: &'static str,
        /// The file, folder or link at fault.
        culprit: PathBuf,
        /// What is wrong, e.g. "is writable by others (mode 0666)".
        problem: String,
        /// The command that fixes it.
        fix: String,
    },
    /// The shadow cache folder (where copies are mapped from) could be
    /// changed by a user other than root and the host's.
    #[error("plugin file {path}: refused: the shadow cache's {kind} {culprit} {problem}; run `{fix}`, or point PLUGHOST_LIB_CACHE at a private folder (or set `allow_insecure_plugin_files = true` in [host])")]
    InsecureCache {
        /// The plugin file being loaded.
        path: PathBuf,
        /// "folder" or "symbolic link".
        kind: &'static str,
        /// The folder or link at fault.
        culprit: PathBuf,
        /// What is wrong.
        problem: String,
        /// The command that fixes it.
        fix: String,
    },
    /// The dynamic loader refused the file.
    #[error("plugin {path}: not a loadable shared library: {reason}")]
    NotALibrary {
        /// The plugin file.
        path: PathBuf,
        /// The dynamic loader's message.
        reason: String,
    },
    /// A shared library without a plughost root module.
    #[error("plugin {path}: not a plughost plugin (it exports no plughost root module; was it built with `export_plugin!`?)")]
    NotAPlugin {
        /// The plugin file.
        path: PathBuf,
    },
    /// Built against a plugin-api this host cannot load.
    #[error("plugin {path}: built against plugin-api {plugin_api}, host expects {host_api} (rebuild the plugin against plughost-plugin-api {host_api})")]
    IncompatibleApi {
        /// The plugin file.
        path: PathBuf,
        /// The plugin-api version the plugin was built with.
        plugin_api: String,
        /// The plugin-api version of this host.
        host_api: String,
    },
    /// abi_stable found that the plugin's types do not match the host's.
    #[error("plugin {path}: ABI layout does not match this host's plugin-api: {reason}")]
    Layout {
        /// The plugin file.
        path: PathBuf,
        /// abi_stable's description of the mismatch.
        reason: String,
    },
    /// Some other abi_stable loading failure.
    #[error("plugin {path}: cannot load: {reason}")]
    Abi {
        /// The plugin file.
        path: PathBuf,
        /// abi_stable's message.
        reason: String,
    },
    /// The plugin's initialisation returned an error or panicked.
    #[error("plugin {path}: initialisation failed: {error}")]
    Init {
        /// The plugin file.
        path: PathBuf,
        /// What the plugin said.
        error: PluginError,
    },
    /// The plugin describes itself incompletely or inconsistently.
    #[error("plugin {path}: invalid metadata: {reason}")]
    Metadata {
        /// The plugin file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl LoadError {
    /// A failure to open, stat or read a plugin file: missing, or another
    /// I/O error.
    pub(crate) fn reading(path: &Path, e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::NotFound => Self::Missing {
                path: path.to_path_buf(),
            },
            _ => Self::Io {
                path: path.to_path_buf(),
                reason: e.to_string(),
            },
        }
    }

    /// A file that did not settle, or could not be stat'ed.
    pub(crate) fn unsettled(path: &Path, e: Unsettled) -> Self {
        match e {
            Unsettled::Changed(change) => Self::StillBeingWritten {
                path: path.to_path_buf(),
                change,
            },
            Unsettled::Io(e) => Self::reading(path, e),
        }
    }
}

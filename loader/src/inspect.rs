//! Before a plugin file is copied or mapped: may anyone but root and the
//! host's user change it ([`crate::trust`]), has it stopped changing
//! ([`crate::settle`]), and what is its content's hash. The result, a
//! [`PluginFile`], is what the shadow cache copies and the loader opens.

use std::{
    fs,
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};
use tracing::warn;

use crate::{
    settle::{self, Stamp},
    trust, LoadError, PluginSpec,
};

/// A plugin file that passed the trust check and has settled, with the
/// hash of its content and the stamp it had when it was read.
#[derive(Debug)]
pub struct PluginFile {
    /// The file the manifest names.
    pub(crate) path: PathBuf,
    /// SHA-256 of its content (lower-case hex).
    pub sha256: String,
    /// Its `stat` when it was hashed; a copy must find it unchanged.
    pub(crate) stamp: Stamp,
}

/// Checks who could change the spec's file, waits until it has settled and
/// hashes it. Nothing is mapped yet.
pub fn inspect(spec: &PluginSpec) -> Result<PluginFile, LoadError> {
    let path = &spec.path;
    check_trust(path, spec.allow_insecure_files)?;
    let stamp = settle::settled(path, settle::QUIET).map_err(|e| LoadError::unsettled(path, e))?;
    let sha256 = file_sha256(path)?;
    settle::unchanged(path, &stamp).map_err(|e| LoadError::unsettled(path, e))?;
    Ok(PluginFile {
        path: path.clone(),
        sha256,
        stamp,
    })
}

/// Refuses a file that a user other than root and the host's could change,
/// or logs each such problem when the manifest allows them.
fn check_trust(path: &Path, allow_insecure: bool) -> Result<(), LoadError> {
    let problems = trust::check_file(path).map_err(|e| LoadError::reading(path, e))?;
    for problem in problems {
        if !allow_insecure {
            return Err(LoadError::Insecure {
                path: path.to_path_buf(),
                kind: problem.kind,
                culprit: problem.culprit,
                problem: problem.problem,
                fix: problem.fix,
            });
        }
        warn!(
            file = %path.display(),
            "{problem}: others could change this plugin; loading it anyway because [host] allow_insecure_plugin_files = true (fix: {})",
            problem.fix
        );
    }
    Ok(())
}

/// SHA-256 of a file, streamed (plugin files can be tens of MiB in debug
/// builds; reading them whole on every reload would churn the heap).
pub fn file_sha256(path: &Path) -> Result<String, LoadError> {
    let mut file = fs::File::open(path).map_err(|e| LoadError::reading(path, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| LoadError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(hex::encode(hasher.finalize()))
}

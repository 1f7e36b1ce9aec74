//! Throwaway manifests for tests.

use std::path::{Path, PathBuf};

/// A manifest file in its own temporary folder, removed on drop.
pub struct TempManifest {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl TempManifest {
    /// Writes `text` as `plughost.toml` in a fresh temporary folder.
    pub fn new(text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plughost.toml");
        std::fs::write(&path, text).unwrap();
        Self { dir, path }
    }

    /// A manifest that loads these plugin files (no overrides).
    pub fn with_plugins(plugins: &[&Path]) -> Self {
        Self::new(&plugins_toml(plugins))
    }

    /// The manifest's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The manifest's folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces the manifest's text.
    pub fn rewrite(&self, text: &str) {
        std::fs::write(&self.path, text).unwrap();
    }
}

/// `[[plugins]]` entries for these files.
pub fn plugins_toml(plugins: &[&Path]) -> String {
    plugins
        .iter()
        .map(|p| format!("[[plugins]]\npath = {:?}\n\n", p.display().to_string()))
        .collect()
}

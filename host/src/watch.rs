//! Following the manifest and plugin files on disk.
//!
//! We watch the *folders* of the files of interest, not the files: editors
//! save by writing a new file and renaming it over the old one, and `cargo
//! build` replaces libraries the same way, which a watch on the old inode
//! would miss. Events for other files in those folders are ignored. A burst
//! of events (one save, one build) becomes one change after a quiet period.

use std::{
    collections::{BTreeSet, HashSet},
    path::{Path, PathBuf},
    time::Duration,
};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// How long the files must stay quiet before a burst counts as one change.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Watches a set of files; [`FileWatch::changed`] resolves once per burst.
pub struct FileWatch {
    _watcher: RecommendedWatcher,
    events: mpsc::UnboundedReceiver<()>,
    files: BTreeSet<PathBuf>,
}

impl FileWatch {
    /// Starts watching `files` (they need not exist yet; their folders must).
    pub fn new(files: impl IntoIterator<Item = PathBuf>) -> notify::Result<Self> {
        let files: BTreeSet<PathBuf> = files.into_iter().map(|f| absolute(&f)).collect();
        let interesting: HashSet<PathBuf> = files.iter().cloned().collect();
        let (tx, events) = mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event {
                    if event.kind.is_access() {
                        return;
                    }
                    if event
                        .paths
                        .iter()
                        .any(|p| interesting.contains(&absolute(p)))
                    {
                        let _ = tx.send(());
                    }
                }
            })?;
        let dirs: BTreeSet<PathBuf> = files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        for dir in &dirs {
            watcher.watch(dir, RecursiveMode::NonRecursive)?;
        }
        Ok(Self {
            _watcher: watcher,
            events,
            files,
        })
    }

    /// The files being followed.
    pub fn files(&self) -> &BTreeSet<PathBuf> {
        &self.files
    }

    /// Resolves after a change to a followed file and [`DEBOUNCE`] of quiet.
    pub async fn changed(&mut self) {
        if self.events.recv().await.is_none() {
            return std::future::pending().await;
        }
        loop {
            match tokio::time::timeout(DEBOUNCE, self.events.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) | Err(_) => return,
            }
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_of_writes_is_one_change_and_other_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plughost.toml");
        std::fs::write(&file, "a").unwrap();
        let mut watch = FileWatch::new([file.clone()]).unwrap();

        std::fs::write(dir.path().join("unrelated.txt"), "x").unwrap();
        let quiet = tokio::time::timeout(Duration::from_millis(600), watch.changed()).await;
        assert!(quiet.is_err(), "a file we do not follow must not count");

        for i in 0..5 {
            std::fs::write(&file, format!("v{i}")).unwrap();
        }
        tokio::time::timeout(Duration::from_secs(5), watch.changed())
            .await
            .expect("the burst is seen");
        let again = tokio::time::timeout(Duration::from_millis(600), watch.changed()).await;
        assert!(again.is_err(), "the whole burst counts once");

        // Replacing the file by rename (what editors and cargo do) counts too.
        let tmp = dir.path().join(".plughost.toml.tmp");
        std::fs::write(&tmp, "renamed").unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        tokio::time::timeout(Duration::from_secs(5), watch.changed())
            .await
            .expect("the rename is seen");
    }
}

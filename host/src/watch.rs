//! Following the manifest and plugin files on disk.
//!
//! We watch the *folders* of the files of interest, not the files: editors
//! save by writing a new file and renaming it over the old one, and `cargo
//! build` replaces libraries the same way, which a watch on the old inode
//! would miss. Events for other files in those folders are ignored. A burst
//! of events (one save, one build) becomes one change after a quiet period.
//!
//! The quiet period says when to *try*; it does not prove a file is
//! complete (a `cp` may pause for longer). The loader checks that itself
//! (`plugins::settle`, `plugins::elf`) and refuses what is not; the next
//! write then brings another change. So that no change is lost, the set of
//! followed files is updated in place ([`FileWatch::follow`]): events that
//! arrive while a reload runs stay queued for the next [`FileWatch::changed`].

use std::{
    collections::{BTreeSet, HashSet},
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::Duration,
};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// How long the files must stay quiet before a burst counts as one change.
pub const DEBOUNCE: Duration = plughost_loader::settle::QUIET;

/// Watches a set of files; [`FileWatch::changed`] resolves once per burst.
pub struct FileWatch {
    watcher: RecommendedWatcher,
    events: mpsc::UnboundedReceiver<()>,
    files: BTreeSet<PathBuf>,
    /// What the watcher's callback matches events against.
    interesting: Arc<RwLock<HashSet<PathBuf>>>,
    dirs: BTreeSet<PathBuf>,
    /// A change was seen and its quiet period has not run out yet.
    pending: bool,
}

impl FileWatch {
    /// Starts watching `files` (they need not exist yet; their folders must).
    pub fn new(files: impl IntoIterator<Item = PathBuf>) -> notify::Result<Self> {
        let interesting: Arc<RwLock<HashSet<PathBuf>>> = Arc::default();
        let (tx, events) = mpsc::unbounded_channel();
        let watcher = {
            let interesting = Arc::clone(&interesting);
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event {
                    if event.kind.is_access() {
                        return;
                    }
                    let Ok(interesting) = interesting.read() else {
                        return;
                    };
                    if event
                        .paths
                        .iter()
                        .any(|p| interesting.contains(&absolute(p)))
                    {
                        let _ = tx.send(());
                    }
                }
            })?
        };
        let mut watch = Self {
            watcher,
            events,
            files: BTreeSet::new(),
            interesting,
            dirs: BTreeSet::new(),
            pending: false,
        };
        watch.follow(files)?;
        Ok(watch)
    }

    /// Follows this set of files from now on, keeping changes already
    /// seen and not yet returned by [`FileWatch::changed`].
    pub fn follow(&mut self, files: impl IntoIterator<Item = PathBuf>) -> notify::Result<()> {
        let files: BTreeSet<PathBuf> = files.into_iter().map(|f| absolute(&f)).collect();
        let dirs: BTreeSet<PathBuf> = files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        for dir in dirs.difference(&self.dirs) {
            self.watcher.watch(dir, RecursiveMode::NonRecursive)?;
        }
        for dir in self.dirs.difference(&dirs) {
            let _ = self.watcher.unwatch(dir);
        }
        if let Ok(mut interesting) = self.interesting.write() {
            *interesting = files.iter().cloned().collect();
        }
        self.files = files;
        self.dirs = dirs;
        Ok(())
    }

    /// The files being followed.
    pub fn files(&self) -> &BTreeSet<PathBuf> {
        &self.files
    }

    /// Resolves after a change to a followed file and [`DEBOUNCE`] of quiet.
    ///
    /// Cancel-safe: the host polls this in a `select!` with other triggers;
    /// a call dropped during the quiet period leaves the change pending, and
    /// the next call finishes the wait instead of forgetting it.
    pub async fn changed(&mut self) {
        if !self.pending {
            if self.events.recv().await.is_none() {
                return std::future::pending().await;
            }
            self.pending = true;
        }
        // Each further event restarts the quiet period.
        while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, self.events.recv()).await {}
        self.pending = false;
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

    #[tokio::test]
    async fn a_change_survives_a_wait_cancelled_during_its_quiet_period() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("libx.so");
        std::fs::write(&file, "a").unwrap();
        let mut watch = FileWatch::new([file.clone()]).unwrap();
        std::fs::write(&file, "b").unwrap();
        // The host's select! picks another trigger (an admin request) while
        // the change is in its quiet period, and drops this wait.
        let cancelled = tokio::time::timeout(Duration::from_millis(100), watch.changed()).await;
        assert!(cancelled.is_err());
        // No further writes: the change must still come out.
        tokio::time::timeout(Duration::from_secs(5), watch.changed())
            .await
            .expect("the change seen before the cancel is not lost");
    }

    #[tokio::test]
    async fn following_a_new_set_keeps_changes_already_seen() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (first, second) = (a.path().join("plughost.toml"), b.path().join("libx.so"));
        std::fs::write(&first, "a").unwrap();
        let mut watch = FileWatch::new([first.clone()]).unwrap();
        // A change arrives while a reload runs, before the set is updated.
        std::fs::write(&first, "b").unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        watch.follow([first.clone(), second.clone()]).unwrap();
        tokio::time::timeout(Duration::from_secs(5), watch.changed())
            .await
            .expect("the change seen before follow() is not lost");
        // The new file's folder is watched now.
        std::fs::write(&second, "x").unwrap();
        tokio::time::timeout(Duration::from_secs(5), watch.changed())
            .await
            .expect("a file added by follow() is followed");
        // And one no longer followed is not.
        watch.follow([second.clone()]).unwrap();
        std::fs::write(&first, "c").unwrap();
        let quiet = tokio::time::timeout(Duration::from_millis(600), watch.changed()).await;
        assert!(quiet.is_err(), "a file dropped by follow() must not count");
    }
}

//! Has a plugin file stopped changing? Never copy one that has not.
//!
//! A reload can start while a file is still being written: a `cp` that
//! pauses longer than the file watcher's debounce, a slow network copy, or
//! an operator's `plughost reload` right after starting a copy. A [`Stamp`]
//! (device, inode, size, modification and change times, as `stat` reports
//! them) is taken before the file is read; the file counts as settled when
//! its last change is at least [`QUIET`] old, waiting out the rest of that
//! time when it is younger and checking the stamp again. After each read
//! (hashing, copying) the stamp is compared once more, so a write, a
//! truncation or a rename-replace during the read refuses the file with
//! what changed rather than loading a mixture.
//!
//! The change time (`ctime`) is part of the stamp because, unlike `mtime`,
//! no tool can set it back: `cp -p` and `rsync -t` restore an old `mtime`
//! after writing, but the write still moves `ctime`.

use std::{
    fs, io,
    os::unix::fs::MetadataExt,
    path::Path,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// How long a file must have stayed unchanged before it is copied. The
/// host's file watcher uses the same quiet period as its debounce, so a
/// reload the watcher starts never waits.
pub const QUIET: Duration = Duration::from_millis(300);

/// What `stat` says about a file, enough to tell that it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    /// Stats `path` (following links, as opening it does).
    pub(crate) fn of(path: &Path) -> io::Result<Self> {
        let m = fs::metadata(path)?;
        Ok(Self {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }

    /// The later of the modification and change times.
    fn last_change(&self) -> SystemTime {
        let at = |(secs, nanos): (i64, i64)| {
            let secs = u64::try_from(secs).unwrap_or(0);
            let nanos = u32::try_from(nanos).unwrap_or(0);
            UNIX_EPOCH + Duration::new(secs, nanos)
        };
        at(self.mtime).max(at(self.ctime))
    }

    /// What changed between `self` and `later`, in an operator's words.
    pub(crate) fn change_to(&self, later: &Stamp) -> String {
        if (self.dev, self.ino) != (later.dev, later.ino) {
            "it was replaced by another file".to_owned()
        } else if self.len != later.len {
            format!("size changed from {} to {} bytes", self.len, later.len)
        } else {
            format!("it was modified (size still {} bytes)", self.len)
        }
    }
}

/// Why a file is not ready to be read.
#[derive(Debug)]
pub(crate) enum Unsettled {
    /// It changed while we watched it; the text says how.
    Changed(String),
    /// It could not be stat'ed.
    Io(io::Error),
}

impl From<io::Error> for Unsettled {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Waits until `path` has not changed for `quiet` (at most `quiet` from
/// now) and returns its stamp, or says what changed meanwhile.
pub(crate) fn settled(path: &Path, quiet: Duration) -> Result<Stamp, Unsettled> {
    let first = Stamp::of(path)?;
    // A last change in the future (clock skew, a copied timestamp) counts
    // as just now.
    let age = SystemTime::now()
        .duration_since(first.last_change())
        .unwrap_or(Duration::ZERO);
    if age >= quiet {
        return Ok(first);
    }
    std::thread::sleep(quiet - age);
    unchanged(path, &first)?;
    Ok(first)
}

/// Checks that `path` still has the stamp `before`.
pub(crate) fn unchanged(path: &Path, before: &Stamp) -> Result<(), Unsettled> {
    let now = Stamp::of(path)?;
    if now == *before {
        Ok(())
    } else {
        Err(Unsettled::Changed(before.change_to(&now)))
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io::Write,
        sync::{
            atomic::{AtomicBool, Ordering},
            Arc,
        },
        time::Instant,
    };

    use super::*;

    #[test]
    fn a_file_unchanged_for_the_quiet_period_is_not_waited_for() {
        // This crate's Cargo.toml has not changed since the build: with a
        // 10 s quiet period, waiting at all would take 10 s (margin: 5 s).
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let started = Instant::now();
        settled(&path, Duration::from_secs(10)).unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_fresh_file_is_watched_for_the_quiet_period_even_with_an_old_mtime() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), b"complete").unwrap();
        // What `cp -p` does after writing: the ctime still says "just now".
        let old = SystemTime::now() - Duration::from_secs(60);
        file.as_file().set_modified(old).unwrap();
        let started = Instant::now();
        let stamp = settled(file.path(), Duration::from_millis(200)).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert_eq!(stamp, Stamp::of(file.path()).unwrap());
    }

    #[test]
    fn a_growing_file_is_refused_with_both_sizes() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&[0; 1000]).unwrap();
        let path = file.path().to_path_buf();
        let stop = Arc::new(AtomicBool::new(false));
        // A writer appending every 10 ms, for as long as the check runs.
        let writer = {
            let stop = Arc::clone(&stop);
            let mut f = file.reopen().unwrap();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    use std::io::Seek;
                    f.seek(std::io::SeekFrom::End(0)).unwrap();
                    f.write_all(&[1; 100]).unwrap();
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        let result = settled(&path, Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        match result {
            Err(Unsettled::Changed(why)) => {
                assert!(why.starts_with("size changed from "), "{why}");
                assert!(why.ends_with(" bytes"), "{why}");
            }
            other => panic!("a growing file passed: {other:?}"),
        }
    }

    #[test]
    fn a_replaced_or_rewritten_file_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lib.so");
        std::fs::write(&path, b"one").unwrap();
        let before = Stamp::of(&path).unwrap();
        let other = dir.path().join("new");
        std::fs::write(&other, b"two").unwrap();
        std::fs::rename(&other, &path).unwrap();
        let Err(Unsettled::Changed(why)) = unchanged(&path, &before) else {
            panic!("a replaced file passed")
        };
        assert_eq!(why, "it was replaced by another file");

        let before = Stamp::of(&path).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&path, b"six").unwrap();
        let Err(Unsettled::Changed(why)) = unchanged(&path, &before) else {
            panic!("a rewritten file passed")
        };
        assert_eq!(why, "it was modified (size still 3 bytes)");
    }
}

//! The shadow cache: private, content-addressed copies of plugin files, the
//! only files the host ever maps.
//!
//! Why copies at all: `dlopen` hands back the library already loaded for a
//! path, so a rebuilt plugin could never load beside the old version, and a
//! file rewritten under a mapped library crashes the process. A copy is
//! named by its content (`<stem>-<sha256 prefix>.<ext>`), is written only by
//! this module, and is never changed after it is made.
//!
//! A copy enters the cache only when it is exactly what was checked: the
//! source has settled (see [`super::settle`]), the copy's SHA-256 matches
//! the hash of an earlier, separate read of the source, the source's stamp
//! did not move during the copy, and the copy is a complete ELF shared
//! object (see [`super::elf`]). Only then is it renamed into place.
//!
//! Several hosts of one user share the cache, so changes to it happen under
//! an exclusive `flock` on `<cache>/.lock`. A process that maps a copy holds
//! a shared `flock` on it for as long as it lives ([`Shadow`]): libraries
//! are never unloaded, and a mapped file's disk space is only freed when its
//! last mapping goes away, whatever happens to its name. Pruning, after each
//! new copy, keeps every copy some process holds plus the
//! [`KEEP_BUILDS`] newest copies per plugin file name (newest = most
//! recently loaded), and deletes the rest, saying what it removed.

use std::{
    collections::BTreeMap,
    fs::{self, File},
    io::{self, Write},
    os::unix::{fs::DirBuilderExt, io::AsRawFd},
    path::{Path, PathBuf},
    time::SystemTime,
};

use tracing::{info, warn};

use crate::{
    elf::{self, ElfProblem},
    settle, trust, LoadError, PluginFile,
};

/// How many copies per plugin file name the cache keeps besides the ones a
/// running process has loaded: the build being loaded, the one it replaces,
/// and one more to roll back to without copying again.
pub const KEEP_BUILDS: usize = 3;

/// A copy in the cache that this process has loaded (or is about to). The
/// open file holds a shared lock that keeps other hosts' pruning off it.
#[derive(Debug)]
pub(crate) struct Shadow {
    /// Where the copy is.
    pub(crate) path: PathBuf,
    _lease: File,
}

/// The cache folder of this process.
pub(crate) struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache folder (created private if missing), checked like a plugin
    /// folder: `for_file` is the plugin being loaded, for error messages.
    pub(crate) fn open(for_file: &Path, allow_insecure: bool) -> Result<Self, LoadError> {
        let dir = cache_dir();
        let io = |e: io::Error| LoadError::Io {
            path: for_file.to_path_buf(),
            reason: format!("cannot use the shadow cache {}: {e}", dir.display()),
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io)?;
        for problem in trust::check_folder(&dir).map_err(io)? {
            if !allow_insecure {
                return Err(LoadError::InsecureCache {
                    path: for_file.to_path_buf(),
                    kind: problem.kind,
                    culprit: problem.culprit,
                    problem: problem.problem,
                    fix: problem.fix,
                });
            }
            warn!(file = %for_file.display(), "shadow cache {problem}; using it anyway because [host] allow_insecure_plugin_files = true");
        }
        Ok(Self { dir })
    }

    /// The checked copy of `file`: an existing one with the same content,
    /// or a new one. A new copy prunes the cache.
    pub(crate) fn install(&self, file: &PluginFile) -> Result<Shadow, LoadError> {
        let path = &file.path;
        let io = |e: io::Error| LoadError::Io {
            path: path.clone(),
            reason: format!("cannot write shadow copy: {e}"),
        };
        let _lock = self.lock().map_err(io)?;
        let target = self.dir.join(copy_name(path, &file.sha256));
        let fresh = !holds(&target, &file.sha256);
        if fresh {
            self.copy_checked(file, &target)?;
        }
        let lease = File::open(&target).map_err(io)?;
        flock(&lease, libc::LOCK_SH).map_err(io)?;
        if !fresh {
            // Reused: it counts as the newest build of its name now.
            check_complete(path, &lease)?;
            if let Err(e) = lease.set_modified(SystemTime::now()) {
                warn!(copy = %target.display(), error = %e, "cannot mark a shadow copy as recently used");
            }
        } else {
            self.prune();
        }
        Ok(Shadow {
            path: target,
            _lease: lease,
        })
    }

    /// Copies the settled source to a temporary file, checks the copy
    /// against the first read and the ELF rules, and renames it to `target`.
    fn copy_checked(&self, file: &PluginFile, target: &Path) -> Result<(), LoadError> {
        let path = &file.path;
        let io = |e: io::Error| LoadError::Io {
            path: path.clone(),
            reason: format!("cannot write shadow copy: {e}"),
        };
        let mut tmp = PartialCopy::create_in(&self.dir).map_err(io)?;
        let mut source = File::open(path).map_err(|e| LoadError::reading(path, e))?;
        io::copy(&mut source, &mut tmp.file).map_err(io)?;
        tmp.file.flush().map_err(io)?;
        settle::unchanged(path, &file.stamp).map_err(|e| LoadError::unsettled(path, e))?;
        if crate::inspect::file_sha256(&tmp.path)? != file.sha256 {
            return Err(LoadError::StillBeingWritten {
                path: path.clone(),
                change: "its content changed between two reads".into(),
            });
        }
        check_complete(path, &tmp.file)?;
        tmp.persist(target).map_err(io)?;
        Ok(())
    }

    /// Takes the cache's exclusive lock (waiting for other processes).
    fn lock(&self) -> io::Result<File> {
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(".lock"))?;
        flock(&lock, libc::LOCK_EX)?;
        Ok(lock)
    }

    /// Deletes copies nobody holds beyond the newest [`KEEP_BUILDS`] of
    /// each plugin file name. Called with the cache locked.
    fn prune(&self) {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) => {
                warn!(cache = %self.dir.display(), error = %e, "cannot list the shadow cache to prune it");
                return;
            }
        };
        // Per plugin file name: (last use, copy name, size).
        let mut builds: BTreeMap<String, Vec<(SystemTime, String, u64)>> = BTreeMap::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let (Some(plugin), Ok(meta)) = (plugin_of(&name), entry.metadata()) else {
                continue;
            };
            let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            builds
                .entry(plugin)
                .or_default()
                .push((used, name, meta.len()));
        }
        let (mut removed, mut in_use, mut freed) = (Vec::new(), Vec::new(), 0u64);
        for mut copies in builds.into_values() {
            copies.sort_by(|a, b| b.cmp(a));
            for (_, name, len) in copies.into_iter().skip(KEEP_BUILDS) {
                match self.remove_unless_held(&name) {
                    Ok(true) => {
                        freed += len;
                        removed.push(name);
                    }
                    Ok(false) => in_use.push(name),
                    Err(e) => {
                        warn!(copy = %self.dir.join(&name).display(), error = %e, "cannot prune a shadow copy")
                    }
                }
            }
        }
        if !removed.is_empty() {
            info!(
                cache = %self.dir.display(),
                removed = ?removed,
                freed_bytes = freed,
                kept_in_use = ?in_use,
                keep_per_plugin = KEEP_BUILDS,
                "shadow cache pruned"
            );
        }
    }

    /// Removes a copy unless a process holds it; true when removed.
    fn remove_unless_held(&self, name: &str) -> io::Result<bool> {
        let path = self.dir.join(name);
        let file = File::open(&path)?;
        match flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => {
                fs::remove_file(&path)?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// How much the shadow cache holds, for the host's `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheUsage {
    /// Plugin copies (the lock file and copies being made are not counted).
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// What the cache of this process holds now (empty when it was never made).
pub fn cache_usage() -> io::Result<CacheUsage> {
    let mut usage = CacheUsage::default();
    let entries = match fs::read_dir(cache_dir()) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(usage),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let meta = entry.metadata()?;
        if meta.is_file() {
            usage.files += 1;
            usage.bytes += meta.len();
        }
    }
    Ok(usage)
}

/// Where shadow copies live: `$PLUGHOST_LIB_CACHE`, else a per-user folder
/// under the temp directory.
pub(crate) fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PLUGHOST_LIB_CACHE") {
        return PathBuf::from(dir);
    }
    std::env::temp_dir()
        .join(format!("plughost-{}", trust::host_uid()))
        .join("libs")
}

/// `<stem>-<first 16 hex digits of the hash>.<ext>`.
fn copy_name(path: &Path, sha256: &str) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "so".into());
    format!("{stem}-{}.{ext}", &sha256[..16])
}

/// The plugin file name a copy belongs to (`libplugin_echo.so` for
/// `libplugin_echo-0123456789abcdef.so`); None for anything else.
fn plugin_of(copy: &str) -> Option<String> {
    let (base, ext) = copy.rsplit_once('.')?;
    let (stem, hash) = base.rsplit_once('-')?;
    let is_hash = hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    (is_hash && !stem.is_empty()).then(|| format!("{stem}.{ext}"))
}

/// True when `target` exists with this content.
fn holds(target: &Path, sha256: &str) -> bool {
    target.exists() && crate::inspect::file_sha256(target).is_ok_and(|s| s == sha256)
}

fn check_complete(path: &Path, file: &File) -> Result<(), LoadError> {
    elf::check_complete(file).map_err(|problem| match problem {
        ElfProblem::Truncated { what, end, len } => LoadError::Truncated {
            path: path.to_path_buf(),
            what,
            end,
            len,
        },
        ElfProblem::NotShared(reason) => LoadError::NotALibrary {
            path: path.to_path_buf(),
            reason,
        },
        ElfProblem::Io(reason) => LoadError::Io {
            path: path.to_path_buf(),
            reason,
        },
    })
}

fn flock(file: &File, operation: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: the descriptor stays open for the call (`file` is
        // borrowed); flock has no other preconditions.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// A copy being written into the cache: a private file (0600, created
/// exclusively) under a `.tmp` name that [`ShadowCache::prune`] never takes
/// for a build, removed on drop unless it was renamed into place. (A few
/// lines of std instead of the `tempfile` crate, which would otherwise sit
/// in every plugin author's dependency graph through the kit.)
struct PartialCopy {
    path: PathBuf,
    file: File,
    persisted: bool,
}

impl PartialCopy {
    fn create_in(dir: &Path) -> io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(".tmp-{}-{n}", std::process::id()));
            // Read too: the copy is hashed and its ELF structure checked
            // through this handle before it is renamed into place.
            match fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(Self {
                        path,
                        file,
                        persisted: false,
                    })
                }
                // Left behind by an earlier process with the same pid.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Renames the copy to `target` (atomically replacing it).
    fn persist(mut self, target: &Path) -> io::Result<()> {
        fs::rename(&self.path, target)?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for PartialCopy {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_names_map_back_to_their_plugin_file_name() {
        let sha = "0123456789abcdef".repeat(4);
        let name = copy_name(Path::new("/x/libplugin_echo.so"), &sha);
        assert_eq!(name, "libplugin_echo-0123456789abcdef.so");
        assert_eq!(plugin_of(&name).as_deref(), Some("libplugin_echo.so"));
        let versioned = copy_name(Path::new("/x/libfoo.so.1"), &sha);
        assert_eq!(plugin_of(&versioned).as_deref(), Some("libfoo.so.1"));
        for other in [
            ".lock",
            ".tmpAbC123",
            "notes.txt",
            "lib-xyz.so",
            "-0123456789abcdef.so",
        ] {
            assert_eq!(plugin_of(other), None, "{other}");
        }
    }
}

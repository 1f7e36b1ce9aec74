//! Who besides the host's user could change a plugin file?
//!
//! A plugin runs inside the host with all its privileges, so a file that
//! another local user can write (or replace) is a way into the host. The
//! rule is the one sshd's `StrictModes` applies to `authorized_keys`: the
//! file, and every folder a lookup of its path passes through, must be owned
//! by root or by the user the host runs as, and must not be writable by
//! group or others. Symbolic links are followed step by step (as the kernel
//! does), so the folders holding each link and its target are checked too,
//! and each link must itself be owned by root or the host's user.
//!
//! One exception, for folders only: a folder with the sticky bit (`/tmp`,
//! mode 1777) may be writable by everyone, because there nobody can rename
//! or delete an entry they do not own; the entries below it are still
//! checked, so a plugin under `/tmp/<a folder of yours>/` is fine and one
//! under another user's folder in `/tmp` is not.
//!
//! This module only finds problems; the loader decides whether they refuse
//! the file or, with `[host] allow_insecure_plugin_files = true`, are logged.
//! It is public so that `plughost doctor` checks files by the same rule the
//! loader applies, not by a copy of it.

use std::{
    collections::VecDeque,
    ffi::OsString,
    fmt, fs, io,
    os::unix::fs::MetadataExt,
    path::{Component, Path, PathBuf},
};

/// Links followed before a path counts as a loop (the kernel's limit).
const MAX_LINKS: usize = 40;

/// Something in a plugin file's path that another user could change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untrusted {
    /// What kind of thing it is: "file", "folder" or "symbolic link".
    pub kind: &'static str,
    /// The file, folder or link at fault.
    pub culprit: PathBuf,
    /// What is wrong with it, e.g. "is writable by others (mode 0666)".
    pub problem: String,
    /// The command that fixes it, e.g. "chmod go-w /srv/plugins".
    pub fix: String,
}

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.kind,
            self.culprit.display(),
            self.problem
        )
    }
}

/// Checks a file, the folders on the way to it and the links followed.
/// Returns every problem found, the file's own first; none means trusted.
pub fn check_file(path: &Path) -> io::Result<Vec<Untrusted>> {
    let walk = walk(path)?;
    let meta = fs::metadata(&walk.target)?;
    let mut found: Vec<Untrusted> = problems("file", &walk.target, &meta, false)
        .into_iter()
        .collect();
    found.extend(folder_problems(&walk.folders)?);
    found.extend(walk.links);
    Ok(found)
}

/// Checks a folder and the folders on the way to it (for the shadow cache).
pub fn check_folder(dir: &Path) -> io::Result<Vec<Untrusted>> {
    let mut walk = walk(dir)?;
    walk.folders.push(walk.target);
    let mut found = folder_problems(&walk.folders)?;
    found.extend(walk.links);
    Ok(found)
}

/// The uid the host runs as.
pub(crate) fn host_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The folders a lookup passes through (outermost first), the links it
/// follows that are owned by someone else, and where it ends.
struct Walk {
    folders: Vec<PathBuf>,
    links: Vec<Untrusted>,
    target: PathBuf,
}

enum Step {
    Root,
    Parent,
    Name(OsString),
}

fn steps(path: &Path) -> VecDeque<Step> {
    path.components()
        .filter_map(|c| match c {
            Component::RootDir | Component::Prefix(_) => Some(Step::Root),
            Component::CurDir => None,
            Component::ParentDir => Some(Step::Parent),
            Component::Normal(name) => Some(Step::Name(name.to_owned())),
        })
        .collect()
}

/// Resolves `path` one component at a time, like the kernel does, noting
/// each folder a name is looked up in.
fn walk(path: &Path) -> io::Result<Walk> {
    let mut todo = steps(&std::path::absolute(path)?);
    let mut at = PathBuf::from("/");
    let mut walk = Walk {
        folders: Vec::new(),
        links: Vec::new(),
        target: PathBuf::new(),
    };
    let mut links = 0;
    while let Some(step) = todo.pop_front() {
        match step {
            Step::Root => at = PathBuf::from("/"),
            Step::Parent => {
                at.pop();
            }
            Step::Name(name) => {
                if !walk.folders.contains(&at) {
                    walk.folders.push(at.clone());
                }
                let next = at.join(&name);
                let meta = fs::symlink_metadata(&next)?;
                if !meta.file_type().is_symlink() {
                    at = next;
                    continue;
                }
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::other(format!(
                        "more than {MAX_LINKS} symbolic links on the way to {}",
                        path.display()
                    )));
                }
                walk.links
                    .extend(owner_problem("symbolic link", &next, &meta));
                let mut front = steps(&fs::read_link(&next)?);
                front.extend(todo.drain(..));
                todo = front;
            }
        }
    }
    walk.target = at;
    Ok(walk)
}

fn folder_problems(folders: &[PathBuf]) -> io::Result<Vec<Untrusted>> {
    let mut found = Vec::new();
    for folder in folders.iter().rev() {
        let meta = fs::metadata(folder)?;
        found.extend(problems("folder", folder, &meta, true));
    }
    Ok(found)
}

/// The first problem with one file or folder: a foreign owner, else write
/// access for group or others (forgiven for sticky folders).
fn problems(
    kind: &'static str,
    path: &Path,
    meta: &fs::Metadata,
    is_folder: bool,
) -> Option<Untrusted> {
    if let Some(problem) = owner_problem(kind, path, meta) {
        return Some(problem);
    }
    let mode = meta.mode();
    let sticky = mode & 0o1000 != 0; // S_ISVTX
    let writers = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        _ if is_folder && sticky => return None,
        (true, true) => "its group and others",
        (true, false) => "its group",
        (false, true) => "others",
        (false, false) => return None,
    };
    Some(Untrusted {
        kind,
        culprit: path.to_path_buf(),
        problem: format!("is writable by {writers} (mode {:04o})", mode & 0o7777),
        fix: format!("chmod go-w {}", path.display()),
    })
}

fn owner_problem(kind: &'static str, path: &Path, meta: &fs::Metadata) -> Option<Untrusted> {
    let (owner, host) = (meta.uid(), host_uid());
    if owner == 0 || owner == host {
        return None;
    }
    let chown = if kind == "symbolic link" {
        "chown -h"
    } else {
        "chown"
    };
    Some(Untrusted {
        kind,
        culprit: path.to_path_buf(),
        problem: format!(
            "is owned by uid {owner}, neither root nor the user the host runs as (uid {host})"
        ),
        fix: format!("{chown} {host} {}", path.display()),
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A private folder with a plugin-like file in it.
    fn layout() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("libx.so");
        fs::write(&file, b"x").unwrap();
        chmod(&file, 0o755);
        (dir, file)
    }

    #[test]
    fn a_private_file_in_a_private_folder_is_trusted() {
        let (_dir, file) = layout();
        assert_eq!(check_file(&file).unwrap(), []);
    }

    #[test]
    fn a_world_writable_file_is_named_with_its_mode_and_the_fix() {
        let (_dir, file) = layout();
        chmod(&file, 0o646);
        let found = check_file(&file).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].culprit, file);
        assert_eq!(found[0].problem, "is writable by others (mode 0646)");
        assert_eq!(found[0].fix, format!("chmod go-w {}", file.display()));
        chmod(&file, 0o775);
        assert_eq!(
            check_file(&file).unwrap()[0].problem,
            "is writable by its group (mode 0775)"
        );
    }

    #[test]
    fn a_group_writable_folder_on_the_way_is_named() {
        let (dir, _) = layout();
        let sub = dir.path().join("plugins");
        fs::create_dir(&sub).unwrap();
        let file = sub.join("liby.so");
        fs::write(&file, b"y").unwrap();
        chmod(&sub, 0o770);
        chmod(dir.path(), 0o777);
        let found = check_file(&file).unwrap();
        // Nearest folder first, then the one above it.
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(
            (found[0].kind, found[0].culprit.as_path()),
            ("folder", sub.as_path())
        );
        assert_eq!(found[0].problem, "is writable by its group (mode 0770)");
        assert_eq!(found[1].culprit, dir.path());
        assert_eq!(
            found[1].problem,
            "is writable by its group and others (mode 0777)"
        );
        chmod(dir.path(), 0o700);
    }

    #[test]
    fn a_sticky_world_writable_folder_is_fine_but_not_a_file_in_it_owned_by_others() {
        let (dir, file) = layout();
        chmod(dir.path(), 0o1777);
        assert_eq!(
            check_file(&file).unwrap(),
            [],
            "sticky folders are forgiven"
        );
        chmod(dir.path(), 0o700);
        if host_uid() == 0 {
            // Only root can give a file away.
            std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
            let found = check_file(&file).unwrap();
            assert_eq!(
                found[0].problem,
                "is owned by uid 65534, neither root nor the user the host runs as (uid 0)"
            );
            assert_eq!(found[0].fix, format!("chown 0 {}", file.display()));
        }
    }

    #[test]
    fn links_are_followed_and_the_folders_of_their_targets_checked() {
        let (dir, file) = layout();
        let open = dir.path().join("open");
        fs::create_dir(&open).unwrap();
        let real = open.join("libreal.so");
        fs::write(&real, b"r").unwrap();
        chmod(&open, 0o777);
        // dir/current -> open (relative), dir/libz.so -> current/libreal.so
        symlink("open", dir.path().join("current")).unwrap();
        let link = dir.path().join("libz.so");
        symlink("current/../current/libreal.so", &link).unwrap();
        let found = check_file(&link).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].culprit, open, "{found:?}");
        // A link to a trusted file is trusted.
        let good = dir.path().join("libgood.so");
        symlink(&file, &good).unwrap();
        assert_eq!(check_file(&good).unwrap(), []);
        // A loop is an error, not a hang.
        symlink("loop", dir.path().join("loop")).unwrap();
        let err = check_file(&dir.path().join("loop")).unwrap_err();
        assert!(err.to_string().contains("symbolic links"), "{err}");
    }

    #[test]
    fn the_cache_folder_check_includes_the_folder_itself() {
        let (dir, _) = layout();
        assert_eq!(check_folder(dir.path()).unwrap(), []);
        chmod(dir.path(), 0o730);
        let found = check_folder(dir.path()).unwrap();
        assert_eq!(found[0].culprit, dir.path());
        chmod(dir.path(), 0o700);
    }
}

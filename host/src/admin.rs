//! The admin endpoint of a running host: `plughost reload` and
//! `plughost status` talk to it.
//!
//! It is a Unix domain socket created with mode 0600, so only the user the
//! host runs as (and root) may connect: who may edit the manifest anyway.
//! By default it lives in a private folder of that user
//! (`$XDG_RUNTIME_DIR/plughost/`, else `<tmp>/plughost-<uid>/`, created
//! 0700), named after the manifest; `[host] admin = "PATH"` puts it
//! elsewhere. A socket in a folder that other users can write to is
//! refused: any of them could delete it and listen in its place, and
//! `plughost reload` would then talk to them.
//!
//! One request per connection: a JSON line in, a JSON line out. Every
//! connection is served on its own task with a read timeout, so a client
//! that connects and says nothing holds up nothing: not other clients, not
//! reloads, not shutdown.

use std::{
    future::Future,
    os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
    time::Duration,
};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
};
use tracing::{debug, warn};

use crate::{manifest::Manifest, plugins::Changes, shutdown::Shutdown, status::HostStatus};

/// How long a client may take to send its request, and the host to write
/// its answer, before the connection is dropped.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest request line read (requests are a few bytes).
const MAX_REQUEST_BYTES: u64 = 4096;

/// What a client asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "lowercase")]
pub enum AdminRequest {
    /// Re-read the manifest and apply it.
    Reload,
    /// Describe the plugins being served.
    Status,
}

/// What the host answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminReply {
    /// False when the request failed; `error` says why.
    pub ok: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For `reload`: what changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Changes>,
    /// For `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<HostStatus>,
}

impl AdminReply {
    /// A failure with its reason.
    pub fn failed(error: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: Some(error.into()),
            changes: None,
            status: None,
        }
    }
}

/// Why a client could not get an answer, or a host could not listen.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Nothing listens on the socket.
    #[error("no host answers on {path}: {source} (is `plughost run` running with this manifest and the admin role on?)")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The connect error.
        source: std::io::Error,
    },
    /// The conversation broke off or the answer was not understood.
    #[error("admin socket {path}: {reason}")]
    Protocol {
        /// The socket path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The socket's folder is not private enough to put a socket in.
    #[error("admin socket {path}: folder {folder} {reason}; a local user could replace the socket. Use a folder only this user can write to (chmod go-w {folder}), or set [host] admin to a path in one")]
    UnsafeFolder {
        /// The socket path.
        path: PathBuf,
        /// Its folder.
        folder: PathBuf,
        /// What is wrong with the folder.
        reason: String,
    },
    /// The socket could not be created.
    #[error("admin socket {path}: {source}")]
    Listen {
        /// The socket path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The private folder default admin sockets live in:
/// `$XDG_RUNTIME_DIR/plughost`, else `<tmp>/plughost-<uid>`.
pub fn runtime_dir() -> PathBuf {
    plughost_client::local::runtime_dir()
}

fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Where the admin socket of a manifest's host is: `[host] admin`, else
/// `<runtime dir>/<manifest stem>-<hash of its absolute path>.sock`, so two
/// manifests never share a socket and `plughost status --manifest M` finds
/// the host that serves M.
pub fn socket_path(manifest: &Manifest) -> PathBuf {
    if let Some(path) = &manifest.host.admin {
        return PathBuf::from(path);
    }
    let absolute = std::fs::canonicalize(&manifest.source)
        .or_else(|_| std::path::absolute(&manifest.source))
        .unwrap_or_else(|_| manifest.source.clone());
    let digest = hex::encode(Sha256::digest(absolute.as_os_str().as_encoded_bytes()));
    let stem: String = manifest
        .source
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plughost".into())
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(32)
        .collect();
    runtime_dir().join(format!("{stem}-{}.sock", &digest[..12]))
}

/// Binds the socket (replacing a stale one left by a killed host) with mode
/// 0600, after checking its folder is private: owned by this user (or
/// root) and not writable by group or others. The default folder is created
/// 0700 when missing.
pub fn listen(path: &Path) -> Result<UnixListener, AdminError> {
    let listen_error = |source| AdminError::Listen {
        path: path.to_path_buf(),
        source,
    };
    let folder = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(folder) => folder.to_path_buf(),
        None => PathBuf::from("."),
    };
    if folder == runtime_dir() && !folder.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&folder)
            .map_err(listen_error)?;
    }
    check_private_folder(path, &folder)?;
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(listen_error(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("another host already listens on {}", path.display()),
            )));
        }
        std::fs::remove_file(path).map_err(listen_error)?;
    }
    let listener = UnixListener::bind(path).map_err(listen_error)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(listen_error)?;
    Ok(listener)
}

/// Refuses a socket folder that another user owns or can write to (also
/// `plughost doctor`'s rule).
pub(crate) fn check_private_folder(path: &Path, folder: &Path) -> Result<(), AdminError> {
    let unsafe_folder = |reason: String| AdminError::UnsafeFolder {
        path: path.to_path_buf(),
        folder: folder.to_path_buf(),
        reason,
    };
    let meta =
        std::fs::metadata(folder).map_err(|e| unsafe_folder(format!("cannot be read: {e}")))?;
    let uid = current_uid();
    if meta.uid() != uid && meta.uid() != 0 {
        return Err(unsafe_folder(format!(
            "is owned by uid {}, not by this host's user (uid {uid})",
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(unsafe_folder(format!(
            "is writable by {} (mode {mode:o})",
            if mode & 0o002 != 0 {
                "others"
            } else {
                "its group"
            }
        )));
    }
    Ok(())
}

/// What a host does for admin requests; implemented by the host, so this
/// module needs nothing of the host but the types it sends.
pub trait AdminHandler: Send + Sync + 'static {
    /// The host's status now (never waits for a reload).
    fn status(&self) -> HostStatus;
    /// Re-reads the manifest and applies it.
    fn reload(&self) -> Pin<Box<dyn Future<Output = AdminReply> + Send + '_>>;
}

/// Accepts connections until `shutdown`, serving each on its own task.
pub async fn serve(listener: UnixListener, handler: Arc<dyn AdminHandler>, mut shutdown: Shutdown) {
    loop {
        tokio::select! {
            conn = listener.accept() => match conn {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(stream, Arc::clone(&handler)));
                }
                Err(e) => {
                    warn!(error = %e, "admin accept failed");
                    // Out of file descriptors, typically: do not spin.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.wait() => break,
        }
    }
}

async fn serve_connection(stream: UnixStream, handler: Arc<dyn AdminHandler>) {
    let mut stream = BufReader::new(stream);
    let reply = match tokio::time::timeout(IO_TIMEOUT, read_request(&mut stream)).await {
        Err(_) => {
            debug!("admin client sent no request within {IO_TIMEOUT:?}; dropped");
            return;
        }
        Ok(Err(e)) => AdminReply::failed(e),
        Ok(Ok(AdminRequest::Status)) => AdminReply {
            ok: true,
            error: None,
            changes: None,
            status: Some(handler.status()),
        },
        Ok(Ok(AdminRequest::Reload)) => handler.reload().await,
    };
    if tokio::time::timeout(IO_TIMEOUT, write_reply(stream, &reply))
        .await
        .is_err()
    {
        debug!("admin client did not read its answer within {IO_TIMEOUT:?}; dropped");
    }
}

/// Reads one request (one line, at most a few KiB) from a connection.
async fn read_request(stream: &mut BufReader<UnixStream>) -> Result<AdminRequest, String> {
    let mut line = String::new();
    stream
        .take(MAX_REQUEST_BYTES)
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_str(line.trim()).map_err(|e| format!("bad admin request: {e}"))
}

/// Writes the reply and closes the connection.
async fn write_reply(mut stream: BufReader<UnixStream>, reply: &AdminReply) {
    let mut line = serde_json::to_vec(reply).unwrap_or_default();
    line.push(b'\n');
    let _ = stream.get_mut().write_all(&line).await;
    let _ = stream.get_mut().shutdown().await;
}

/// Sends one request to the host listening on `path`.
pub async fn request(path: &Path, request: AdminRequest) -> Result<AdminReply, AdminError> {
    let protocol = |reason: String| AdminError::Protocol {
        path: path.to_path_buf(),
        reason,
    };
    let mut stream = UnixStream::connect(path)
        .await
        .map_err(|source| AdminError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
    let mut line = serde_json::to_vec(&request).map_err(|e| protocol(e.to_string()))?;
    line.push(b'\n');
    stream
        .write_all(&line)
        .await
        .map_err(|e| protocol(e.to_string()))?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .await
        .map_err(|e| protocol(e.to_string()))?;
    serde_json::from_str(answer.trim()).map_err(|e| protocol(format!("unreadable answer: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[tokio::test]
    async fn a_socket_in_a_folder_others_can_write_to_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        for bad in [0o777, 0o1777, 0o770] {
            mode(dir.path(), bad);
            let err = listen(&path).unwrap_err().to_string();
            assert!(
                err.contains(&dir.path().display().to_string())
                    && err.contains(&format!("{bad:o}"))
                    && err.contains("chmod go-w"),
                "{err}"
            );
            assert!(!path.exists(), "nothing was created");
        }
        mode(dir.path(), 0o755);
        let _listener = listen(&path).unwrap();
        let socket_mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(socket_mode, 0o600);
    }

    #[test]
    fn default_paths_are_private_and_differ_per_manifest() {
        let a = Manifest::parse("", Path::new("/srv"), "/srv/a/plughost.toml").unwrap();
        let b = Manifest::parse("", Path::new("/srv"), "/srv/b/plughost.toml").unwrap();
        let (pa, pb) = (socket_path(&a), socket_path(&b));
        assert_ne!(pa, pb);
        assert_eq!(pa.parent(), Some(runtime_dir().as_path()));
        assert!(pa
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("plughost-"));
        assert!(
            pa.as_os_str().len() < 100,
            "fits sun_path: {}",
            pa.display()
        );
    }
}

//! The admin endpoint of a running host: `plughost reload` and
//! `plughost status` talk to it.
//!
//! It is a Unix domain socket, by default next to the manifest
//! (`<dir>/.<manifest file name>.admin.sock`, or `[host] admin = "PATH"`),
//! created with mode 0600: only the user the host runs as (and root) may
//! connect, which is who may edit the manifest anyway. One request per
//! connection: a JSON line in, a JSON line out.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
};

use crate::{host::HostStatus, manifest::Manifest, plugins::Changes};

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

/// Why a client could not get an answer.
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
}

/// Where the admin socket of a manifest's host is.
pub fn socket_path(manifest: &Manifest) -> PathBuf {
    if let Some(path) = &manifest.host.admin {
        return PathBuf::from(path);
    }
    let dir = manifest
        .source
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = manifest
        .source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plughost".into());
    dir.join(format!(".{name}.admin.sock"))
}

/// Binds the socket (replacing a stale one left by a killed host) with mode 0600.
pub fn listen(path: &Path) -> std::io::Result<UnixListener> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("another host already listens on {}", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Reads one request from a connection.
pub async fn read_request(stream: &mut BufReader<UnixStream>) -> Result<AdminRequest, String> {
    let mut line = String::new();
    stream
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_str(line.trim()).map_err(|e| format!("bad admin request: {e}"))
}

/// Writes the reply and closes the connection.
pub async fn write_reply(mut stream: BufReader<UnixStream>, reply: &AdminReply) {
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

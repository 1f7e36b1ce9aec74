//! The callers' side of the local transport: finds and calls over a host's
//! Unix socket on this machine, for when there is no broker (or when asked
//! to with `--local`). The frames and envelopes are
//! `plughost_proto::rpc::local`'s; the host runs these requests through the
//! same dispatch path as broker calls.
//!
//! One [`LocalClient`] holds one connection and any number of requests in
//! flight on it: a reader task hands each reply to the request waiting for
//! its correlation id. Every request ends at its deadline.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{SystemTime, UNIX_EPOCH},
};

use plughost_proto::rpc::{
    local::{self, LocalBody, LocalReply, LocalReplyBody, LocalRequest, LENGTH_BYTES},
    v2::{CallReply, FindReply, FindRequest},
};
use serde::Serialize;
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{unix::OwnedWriteHalf, UnixStream},
    sync::oneshot,
    task::JoinHandle,
    time::Instant,
};

use crate::RpcError;

/// The largest reply a caller accepts (the host's default reply limit).
const MAX_REPLY_BYTES: usize = 8 * 1024 * 1024;

/// The private folder of this user's plughost sockets:
/// `$XDG_RUNTIME_DIR/plughost`, else `<tmp>/plughost-<uid>` (created 0700 by
/// the first host that needs it; hosts refuse it when others can write it).
pub fn runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("plughost"),
        None => std::env::temp_dir().join(format!("plughost-{}", current_uid())),
    }
}

fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Where a host serves its local socket, and callers look for it, when
/// nothing else is configured: `local.sock` in [`runtime_dir`].
pub fn default_socket() -> PathBuf {
    runtime_dir().join("local.sock")
}

type Waiting = Arc<Mutex<HashMap<String, oneshot::Sender<LocalReplyBody>>>>;

/// A connection to a host's local socket.
pub struct LocalClient {
    socket: PathBuf,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    waiting: Waiting,
    next_id: AtomicU64,
    reader: JoinHandle<()>,
}

impl Drop for LocalClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn lock(
    waiting: &Waiting,
) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<LocalReplyBody>>> {
    waiting.lock().unwrap_or_else(|p| p.into_inner())
}

impl LocalClient {
    /// Connects to the host serving `socket`, by `deadline`.
    pub async fn connect(socket: &Path, deadline: Instant) -> Result<Self, RpcError> {
        let unavailable = |reason: String| RpcError::LocalUnavailable {
            socket: socket.display().to_string(),
            reason,
        };
        let stream = match tokio::time::timeout_at(deadline, UnixStream::connect(socket)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(unavailable(
                    "no host serves it (the socket does not exist)".into(),
                ))
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err(unavailable("no host serves it (a stale socket)".into()))
            }
            Ok(Err(e)) => return Err(unavailable(e.to_string())),
            Err(_) => return Err(unavailable("no answer before the deadline".into())),
        };
        let (reader, writer) = stream.into_split();
        let waiting: Waiting = Arc::default();
        let reader = tokio::spawn(read_replies(reader, Arc::clone(&waiting)));
        Ok(Self {
            socket: socket.to_path_buf(),
            writer: tokio::sync::Mutex::new(writer),
            waiting,
            next_id: AtomicU64::new(1),
            reader,
        })
    }

    /// The socket it is connected to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Asks the host which plugin and route serve a method (and its
    /// signature, for a `describe`).
    pub async fn find(
        &self,
        request: &FindRequest,
        deadline: Instant,
    ) -> Result<FindReply, RpcError> {
        let method = request.method.clone();
        let body = LocalBody::Find(request.clone());
        match self
            .request(body, &method, deadline, "a find answer")
            .await?
        {
            LocalReplyBody::Found(reply) => Ok(reply),
            LocalReplyBody::Called(_) => Err(RpcError::BadReply(
                "the local host answered a find with a call reply".into(),
            )),
        }
    }

    /// Calls `method` with `args` (a JSON array or object, or anything that
    /// serialises to one).
    pub async fn call<A: Serialize + ?Sized>(
        &self,
        method: &str,
        args: &A,
        deadline: Instant,
    ) -> Result<Value, RpcError> {
        let args = serde_json::to_value(args).map_err(|e| RpcError::Arguments {
            method: method.to_owned(),
            reason: format!("they do not encode as JSON: {e}"),
        })?;
        let body = LocalBody::Call {
            method: method.to_owned(),
            args,
        };
        match self.request(body, method, deadline, "the reply").await? {
            LocalReplyBody::Called(CallReply::Result(value)) => Ok(value),
            LocalReplyBody::Called(CallReply::Error(e)) => Err(RpcError::Remote {
                code: e.code,
                message: e.message,
                help: e.help,
            }),
            LocalReplyBody::Found(_) => Err(RpcError::BadReply(
                "the local host answered a call with a find reply".into(),
            )),
        }
    }

    async fn request(
        &self,
        body: LocalBody,
        method: &str,
        deadline: Instant,
        waiting_for: &'static str,
    ) -> Result<LocalReplyBody, RpcError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).to_string();
        let left = deadline.saturating_duration_since(Instant::now());
        let deadline_ms = SystemTime::now()
            .checked_add(left)
            .and_then(|d| d.duration_since(UNIX_EPOCH).ok())
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let frame = local::encode(&LocalRequest {
            correlation_id: id.clone(),
            deadline_ms,
            body,
        });
        let (reply_tx, reply) = oneshot::channel();
        lock(&self.waiting).insert(id.clone(), reply_tx);
        let timeout = |_| RpcError::Timeout {
            method: method.to_owned(),
            timeout_ms: u64::try_from(left.as_millis()).unwrap_or(u64::MAX),
            waiting_for,
        };
        let lost = |reason: String| RpcError::LocalUnavailable {
            socket: self.socket.display().to_string(),
            reason,
        };
        let outcome = async {
            {
                let mut writer = tokio::time::timeout_at(deadline, self.writer.lock())
                    .await
                    .map_err(timeout)?;
                tokio::time::timeout_at(deadline, writer.write_all(&frame))
                    .await
                    .map_err(timeout)?
                    .map_err(|e| lost(format!("sending the request: {e}")))?;
            }
            tokio::time::timeout_at(deadline, reply)
                .await
                .map_err(timeout)?
                .map_err(|_| lost("the host closed the connection".into()))
        }
        .await;
        lock(&self.waiting).remove(&id);
        outcome
    }
}

/// Hands each reply to its request; when the connection ends, every
/// request still waiting learns it (its sender is dropped).
async fn read_replies(mut reader: tokio::net::unix::OwnedReadHalf, waiting: Waiting) {
    loop {
        let mut prefix = [0u8; LENGTH_BYTES];
        if reader.read_exact(&mut prefix).await.is_err() {
            break;
        }
        let Ok(len) = local::frame_len(prefix, MAX_REPLY_BYTES) else {
            break;
        };
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).await.is_err() {
            break;
        }
        let Ok(reply) = local::decode::<LocalReply>(&body) else {
            continue;
        };
        if let Some(waiter) = lock(&waiting).remove(&reply.correlation_id) {
            let _ = waiter.send(reply.body);
        }
    }
    lock(&waiting).clear();
}

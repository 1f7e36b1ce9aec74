//! The local transport's server: a Unix socket in the host's private
//! runtime folder that answers finds and calls from this machine, with or
//! without a broker (`docs/protocol.md`, "Local transport").
//!
//! Calls go through [`crate::rpc::dispatch`], the path broker calls take:
//! the current registry (hot reload, drain), per-method concurrency limits,
//! timeouts and the caller's deadline, each plugin's own threads, panics
//! contained, the call context (protocol `local`). So a plugin behaves the
//! same whichever transport a call came by.
//!
//! Each connection is a task of its own: a reader that spawns one task per
//! request (bounded per connection), and a writer that sends replies as
//! they finish, in any order. A frame over `[limits] max_request_bytes`
//! ends its connection (its correlation id cannot be read without reading
//! it); a frame that is not a request is answered 400 when it names a
//! correlation id. Every refusal is logged (rate-limited) and counted.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use plughost_plugin_api::codes;
use plughost_proto::rpc::{
    local::{self, FrameError, LocalBody, LocalReply, LocalReplyBody, LocalRequest, LENGTH_BYTES},
    v2::{self, CallReply, ErrorBody, FindReply},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{unix::OwnedReadHalf, UnixListener, UnixStream},
    sync::{mpsc, watch, Semaphore},
};
use tracing::{debug, info, warn};

use crate::{
    faults::{self, Fault},
    manifest::{Limits, Manifest},
    plugins::Registry,
    rpc::dispatch::{dispatch, Origin},
    shutdown::Shutdown,
};

/// Requests one connection may have running at once; more wait to be read.
const IN_FLIGHT_PER_CONNECTION: usize = 1024;

/// Where a manifest's host serves its local socket: `[local] socket`, else
/// the default every caller looks at.
pub fn socket_path(manifest: &Manifest) -> PathBuf {
    manifest
        .local
        .socket
        .clone()
        .unwrap_or_else(plughost_client::local::default_socket)
}

/// What the local server needs besides its socket.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// The host's name, in find answers.
    pub host_name: String,
    /// Request and reply size limits (`[limits]`).
    pub limits: Limits,
}

/// Serves `listener` until `shutdown`, then removes the socket file.
pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    config: LocalConfig,
    registry: watch::Receiver<Arc<Registry>>,
    mut shutdown: Shutdown,
) {
    let config = Arc::new(config);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, Arc::clone(&config), registry.clone(), shutdown.clone()));
                }
                Err(e) => {
                    warn!(socket = %path.display(), error = %e, "local socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.wait() => break,
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// One caller's connection: read requests, run each on its own task,
/// write replies as they finish.
async fn connection(
    stream: UnixStream,
    config: Arc<LocalConfig>,
    registry: watch::Receiver<Arc<Registry>>,
    mut shutdown: Shutdown,
) {
    let (mut reader, mut writer) = stream.into_split();
    let (replies, mut outbox) = mpsc::channel::<Vec<u8>>(IN_FLIGHT_PER_CONNECTION);
    let write = tokio::spawn(async move {
        while let Some(frame) = outbox.recv().await {
            if writer.write_all(&frame).await.is_err() {
                break;
            }
        }
    });
    let slots = Arc::new(Semaphore::new(IN_FLIGHT_PER_CONNECTION));
    loop {
        let body = tokio::select! {
            body = read_frame(&mut reader, config.limits.max_request_bytes) => body,
            _ = shutdown.wait() => break,
        };
        let body = match body {
            Ok(Some(body)) => body,
            Ok(None) => break,
            Err(e) => {
                if faults::note(Fault::RequestTooLarge) {
                    warn!(error = %e, "local socket: request refused; connection closed");
                }
                break;
            }
        };
        let received = Instant::now();
        let request = match local::decode::<LocalRequest>(&body) {
            Ok(request) => request,
            Err(e) => {
                if let Some(frame) = malformed(&body, &e) {
                    let _ = replies.send(frame).await;
                }
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let registry = registry.borrow().clone();
        let config = Arc::clone(&config);
        let replies = replies.clone();
        tokio::spawn(async move {
            let frame = answer(request, &registry, &config, received).await;
            let _ = replies.send(frame).await;
            drop(slot);
        });
    }
    drop(replies);
    // Replies of requests still running are written as they finish; the
    // writer ends when the last one has been sent.
    let _ = write.await;
}

/// Reads one frame body; `None` at a clean end of the connection.
async fn read_frame(
    reader: &mut OwnedReadHalf,
    limit: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut prefix = [0u8; LENGTH_BYTES];
    if reader.read_exact(&mut prefix).await.is_err() {
        return Ok(None);
    }
    let len = local::frame_len(prefix, limit)?;
    let mut body = vec![0u8; len];
    match reader.read_exact(&mut body).await {
        Ok(_) => Ok(Some(body)),
        Err(_) => Ok(None),
    }
}

/// The reply to a frame that is not a request: a 400 when the frame
/// names a correlation id to answer, else nothing. Counted either way.
fn malformed(body: &[u8], error: &FrameError) -> Option<Vec<u8>> {
    let id = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("correlation_id")?.as_str().map(str::to_owned));
    if faults::note(Fault::MalformedLocalRequest) {
        warn!(%error, correlation_id = ?id, "local socket: not a request");
    }
    let id = id?;
    let error = ErrorBody::new(
        codes::BAD_ARGUMENTS,
        format!("not a local request: {error}"),
    );
    Some(local::encode(&LocalReply {
        correlation_id: id,
        body: LocalReplyBody::Called(CallReply::Error(error)),
    }))
}

/// Runs one request and returns its reply frame.
async fn answer(
    request: LocalRequest,
    registry: &Registry,
    config: &LocalConfig,
    received: Instant,
) -> Vec<u8> {
    let LocalRequest {
        correlation_id,
        deadline_ms,
        body,
    } = request;
    match body {
        LocalBody::Find(find) => {
            let entry = registry.method(&find.method);
            let reply = FindReply {
                route: entry.map(|m| m.route.clone()),
                plugin: entry.map(|m| m.plugin.name().to_owned()),
                version: entry.map(|m| m.plugin.version().to_owned()),
                signature: entry.filter(|_| find.describe).map(|m| m.signature()),
                method: find.method,
                host: config.host_name.clone(),
            };
            local::encode(&LocalReply {
                correlation_id,
                body: LocalReplyBody::Found(reply),
            })
        }
        LocalBody::Call { method, args } => {
            let origin = Origin {
                protocol: "local",
                correlation_id: &correlation_id,
            };
            let deadline = deadline_ms.map(|ms| deadline_instant(ms, received));
            let outcome = dispatch(
                registry,
                &method,
                args.to_string(),
                received,
                deadline,
                origin,
            )
            .await;
            let max = config.limits.max_reply_bytes;
            let reply = match outcome {
                Ok(result) if v2::encoded_result_len(&result) <= max => v2::encode_result(&result),
                Ok(result) => {
                    faults::note(Fault::ReplyTooLarge);
                    let size = v2::encoded_result_len(&result);
                    v2::encode_error(&ErrorBody::new(
                        codes::TOO_LARGE,
                        format!("reply of `{method}` is {size} bytes, over the host's limit of {max} bytes ([limits] max_reply_bytes)"),
                    ))
                }
                Err(error) => v2::encode_error(&error),
            };
            called_frame(&correlation_id, &reply)
        }
    }
}

/// A call's reply frame around a v2 reply body that is already encoded
/// (`{"result": ...}` or `{"error": ...}`), without decoding the result.
fn called_frame(correlation_id: &str, v2_reply: &[u8]) -> Vec<u8> {
    let id = serde_json::to_string(correlation_id).unwrap_or_else(|_| "\"\"".into());
    let mut json = Vec::with_capacity(v2_reply.len() + id.len() + 32);
    json.extend_from_slice(br#"{"correlation_id":"#);
    json.extend_from_slice(id.as_bytes());
    json.extend_from_slice(br#","called":"#);
    json.extend_from_slice(v2_reply);
    json.push(b'}');
    local::frame(&json)
}

/// The caller's deadline (Unix milliseconds) as an `Instant` on this
/// host's clock.
fn deadline_instant(unix_ms: u64, now: Instant) -> Instant {
    let wall_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    now + Duration::from_millis(unix_ms.saturating_sub(wall_now))
}

/// Binds the local socket at `path` in a private folder (as the admin
/// socket: 0600, the folder owned by this user and not writable by
/// others). A socket another host serves is left to it: this host then
/// serves none, and says so.
pub fn listen(path: &Path) -> Option<UnixListener> {
    match crate::admin::listen(path) {
        Ok(listener) => {
            debug!(socket = %path.display(), "local socket listening");
            Some(listener)
        }
        Err(e) => {
            warn!(socket = %path.display(), error = %e, "local socket not served (set [local] socket to serve one of this host's own)");
            None
        }
    }
}

/// The plain words a host logs once when it finds no broker at start.
pub fn local_mode_notice(socket: &Path, url: &str) -> String {
    format!(
        "no broker at {url}: serving in local mode on {} only. Local mode is one host on this \
         machine: no queues, no redelivery if this host dies, and other machines cannot reach \
         it. For a deployment, run RabbitMQ and set [rabbitmq] url (or --amqp); this host \
         connects as soon as it answers.",
        socket.display()
    )
}

/// Logs the local-mode notice once if the broker is not serving within
/// `wait` of start (none on this machine, or none reachable).
pub async fn announce_local_mode(
    mut broker: watch::Receiver<crate::rpc::BrokerState>,
    socket: PathBuf,
    url: String,
    wait: Duration,
) {
    let serving = broker.wait_for(|s| *s == crate::rpc::BrokerState::Serving);
    if tokio::time::timeout(wait, serving).await.is_err() {
        info!("{}", local_mode_notice(&socket, &url));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_reply_frame_decodes_as_a_local_reply() {
        let frame = called_frame("id \"1\"", &v2::encode_result("[1,2]"));
        let reply: LocalReply = local::decode(&frame[LENGTH_BYTES..]).unwrap();
        assert_eq!(reply.correlation_id, "id \"1\"");
        assert_eq!(
            reply.body,
            LocalReplyBody::Called(CallReply::Result(serde_json::json!([1, 2])))
        );
    }

    #[test]
    fn frames_that_are_not_requests_get_a_400_only_when_they_name_an_id() {
        let err = FrameError::Malformed("x".into());
        assert!(malformed(b"not json", &err).is_none());
        let frame = malformed(br#"{"correlation_id":"7","call":{}}"#, &err).unwrap();
        let reply: LocalReply = local::decode(&frame[LENGTH_BYTES..]).unwrap();
        assert_eq!(reply.correlation_id, "7");
        assert!(matches!(
            reply.body,
            LocalReplyBody::Called(CallReply::Error(ErrorBody { code: 400, .. }))
        ));
    }

    #[test]
    fn a_deadline_in_the_past_is_now() {
        let now = Instant::now();
        assert_eq!(deadline_instant(0, now), now);
    }
}

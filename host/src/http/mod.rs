//! The host's HTTP endpoint: `/metrics` for Prometheus, `/healthz` and
//! `/readyz` for load balancers, systemd and orchestrators, and a status
//! page at `/` for people (plain HTML and a little script that reads
//! `/status.json` and `/metrics` every two seconds: no front-end build).
//! Every route is read-only; nothing here changes the host.
//!
//! It is a role like the others: it runs on the host's runtime, owns its
//! listener, and stops on the host's shutdown signal. It sees the host
//! through [`HostView`] (what `plughost status` sees, plus readiness), so
//! it depends on the host's state, not on the host.
//!
//! The server is hyper's HTTP/1 server alone (no router, no middleware):
//! three fixed GET routes do not need more, and the host keeps its
//! dependency tree small. Connections are bounded in number and in how long
//! their request head may take, so a slow or hostile client costs little.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use http_body_util::Full;
use hyper::{
    body::{Bytes, Incoming},
    header, Method, Request, Response, StatusCode,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, sync::Semaphore};
use tracing::{debug, info, warn};

use crate::{metrics, shutdown::Shutdown, status::HostStatus};

/// How many connections the endpoint serves at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 64;

/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The content type of OpenMetrics text.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The listen address could not be bound.
    #[error("HTTP endpoint ([http] listen = \"{addr}\"): cannot listen: {source}; is another process on that port?")]
    Bind {
        /// `[http] listen`.
        addr: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
}

/// What the endpoint needs from a host.
pub trait HostView: Send + Sync + 'static {
    /// What `plughost status` shows now.
    fn status(&self) -> HostStatus;
    /// Whether the host serves (broker connected and every route
    /// consumed, or no broker roles).
    fn readiness(&self) -> Readiness;
}

/// What `/readyz` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// The host serves.
    Ready,
    /// It does not; why, for an operator.
    NotReady(String),
}

/// Binds `[http] listen` (at start, so a taken port fails the start).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, HttpError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })
}

/// Serves `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, view: Arc<dyn HostView>, mut shutdown: Shutdown) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "HTTP endpoint serving / (status page), /metrics, /healthz, /readyz");
    }
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.wait() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    warn!(error = %e, "HTTP endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        let view = Arc::clone(&view);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let view = Arc::clone(&view);
                async move { Ok::<_, Infallible>(answer(&request, view.as_ref())) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                debug!(%peer, error = %e, "HTTP endpoint: connection ended with an error");
            }
            drop(permit);
        });
    }
    info!("HTTP endpoint stopped");
}

/// The answer to one request.
fn answer(request: &Request<Incoming>, view: &dyn HostView) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "every route of this endpoint is read-only: use GET\n".to_owned(),
        );
    }
    match request.uri().path() {
        "/metrics" => {
            let cache = plughost_loader::shadow::cache_usage()
                .ok()
                .map(|u| metrics::CacheSize {
                    files: u.files,
                    bytes: u.bytes,
                });
            let body = metrics::render(&view.status(), cache);
            let mut response = text(StatusCode::OK, body);
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(OPENMETRICS),
            );
            response
        }
        "/" => {
            let mut response = text(StatusCode::OK, PAGE.to_owned());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response
        }
        "/status.json" => {
            let not_ready = match view.readiness() {
                Readiness::Ready => None,
                Readiness::NotReady(reason) => Some(reason),
            };
            let page = StatusPage {
                status: view.status(),
                ready: not_ready.is_none(),
                not_ready,
                tracker_services: metrics::tracker_services(),
                reloads: metrics::recent_reloads(),
            };
            let body = serde_json::to_string(&page).unwrap_or_else(|e| {
                format!("{{\"error\":\"the status does not serialize: {e}\"}}")
            });
            let mut response = text(StatusCode::OK, body);
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            response
        }
        "/healthz" => text(StatusCode::OK, "alive\n".to_owned()),
        "/readyz" => match view.readiness() {
            Readiness::Ready => text(StatusCode::OK, "ready\n".to_owned()),
            Readiness::NotReady(reason) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {reason}\n"),
            ),
        },
        other => text(
            StatusCode::NOT_FOUND,
            format!("no route {other}; this endpoint serves /, /status.json, /metrics, /healthz and /readyz\n"),
        ),
    }
}

/// The status page: static; its script fills it in.
const PAGE: &str = include_str!("status.html");

/// What `/status.json` answers: what `plughost status` shows, readiness,
/// the service manager's registry size and the last reloads.
#[derive(Debug, serde::Serialize)]
struct StatusPage {
    #[serde(flatten)]
    status: HostStatus,
    ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_ready: Option<String>,
    /// None: no manager role in this process.
    tracker_services: Option<u64>,
    reloads: Vec<metrics::ReloadRecord>,
}

/// A plain-text response.
fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

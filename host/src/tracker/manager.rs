//! The service manager role: a PUB socket that sends a beacon every interval
//! and a ROUTER socket that takes INIT, HELLO, BYE and management requests.
//!
//! It answers INIT and HELLO with a short `ok` body, not the whole registry
//! as the old manager did: v1 services only check the response id, and
//! sending the listing on every heartbeat makes heartbeat traffic grow with
//! the square of the number of services.
//!
//! Every message goes through the raw-protocol parser; anything that fails
//! validation is dropped, logged at debug level and counted, so garbage can
//! neither crash the manager nor make it answer.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use zeromq::{PubSocket, RouterSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

use super::{registry::ServiceRegistry, TrackerError, STOP_LINE};
use crate::{
    proto::{
        address::RawAddress,
        codes::raw::RawCode,
        raw::{MgmtCommand, RawMessageType, RawRequest, RawResponse},
        uid::Uid,
    },
    shutdown::Shutdown,
};

/// How a manager runs.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// PUB endpoint for beacons, e.g. `tcp://127.0.0.1:5555` (port 0: any free port).
    pub discovery: String,
    /// ROUTER endpoint for management, e.g. `tcp://127.0.0.1:6666`.
    pub management: String,
    /// Time between beacons.
    pub beacon_interval: Duration,
    /// Services silent for longer than this are dropped.
    pub ttl: Duration,
    /// Token that `mgmt e` must carry (`e <token>`); without one, shutdown is always refused.
    pub admin_token: Option<String>,
}

/// A running manager.
pub struct ManagerHandle {
    /// Its address (`Service Manager:<uuid>`).
    pub address: RawAddress,
    /// The bound discovery endpoint (with the real port).
    pub discovery: String,
    /// The bound management endpoint (with the real port).
    pub management: String,
    /// Messages dropped because they failed validation.
    pub dropped: Arc<AtomicU64>,
    /// Resolves when the manager stops (shutdown, or an authorised `mgmt e`).
    pub task: JoinHandle<()>,
}

/// Binds the sockets and starts the manager task.
pub async fn start(
    config: ManagerConfig,
    shutdown: Shutdown,
) -> Result<ManagerHandle, TrackerError> {
    let mut beacons = PubSocket::new();
    let discovery = beacons
        .bind(&config.discovery)
        .await
        .map_err(|e| TrackerError::Bind {
            endpoint: config.discovery.clone(),
            reason: e.to_string(),
        })?
        .to_string();
    let mut router = RouterSocket::new();
    let management = router
        .bind(&config.management)
        .await
        .map_err(|e| TrackerError::Bind {
            endpoint: config.management.clone(),
            reason: e.to_string(),
        })?
        .to_string();
    let address = RawAddress::new("Service Manager", Uid::new_v4())
        .map_err(|e| TrackerError::Protocol(e.to_string()))?;
    let dropped = Arc::new(AtomicU64::new(0));
    info!(%address, %discovery, %management, "service manager listening");
    let manager = Manager {
        address: address.clone(),
        config,
        registry: ServiceRegistry::default(),
        dropped: Arc::clone(&dropped),
    };
    let task = tokio::spawn(manager.run(beacons, router, shutdown));
    Ok(ManagerHandle {
        address,
        discovery,
        management,
        dropped,
        task,
    })
}

struct Manager {
    address: RawAddress,
    config: ManagerConfig,
    registry: ServiceRegistry,
    dropped: Arc<AtomicU64>,
}

/// What handling one message asks the loop to do.
enum Outcome {
    Continue,
    ShutDown,
}

impl Manager {
    async fn run(
        mut self,
        mut beacons: PubSocket,
        mut router: RouterSocket,
        mut shutdown: Shutdown,
    ) {
        let mut beacon = tokio::time::interval(self.config.beacon_interval);
        beacon.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = beacon.tick() => {
                    for gone in self.registry.expire(Instant::now(), self.config.ttl) {
                        info!(service = %gone, "service expired (no message within the TTL)");
                    }
                    let hello = RawRequest::beacon(self.address.clone()).serialize();
                    if let Err(e) = beacons.send(ZmqMessage::from(hello)).await {
                        warn!(error = %e, "cannot send beacon");
                    }
                }
                message = router.recv() => match message {
                    Ok(message) => {
                        if let Outcome::ShutDown = self.handle(message, &mut router).await {
                            info!("service manager shut down by an authorised management request");
                            break;
                        }
                    }
                    Err(e) => debug!(error = %e, "management socket receive error"),
                },
                _ = shutdown.wait() => break,
            }
        }
        info!("service manager stopped");
    }

    async fn handle(&mut self, message: ZmqMessage, router: &mut RouterSocket) -> Outcome {
        let mut frames = message.into_vecdeque();
        let Some(identity) = frames.pop_front() else {
            return Outcome::Continue;
        };
        let request = match RawRequest::parse_frames(frames.iter()) {
            Ok(request) => request,
            Err(e) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                debug!(error = %e, "dropped an invalid management message");
                return Outcome::Continue;
            }
        };
        let addressed_to_us = request
            .to()
            .is_some_and(|to| to.uid() == self.address.uid());
        let identity_matches = identity.as_ref() == request.from().uid().to_string().as_bytes();
        if !addressed_to_us && !identity_matches {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            let refusal = request.answer(
                self.address.clone(),
                RawCode::Forbidden,
                ["To is not this manager and From is not the sender"],
            );
            send(router, &identity, refusal).await;
            return Outcome::Continue;
        }
        let now = Instant::now();
        match request.message_type() {
            Some(kind @ (RawMessageType::Init | RawMessageType::Hello)) => {
                let details = request
                    .trimmed_body()
                    .get(1)
                    .and_then(|line| serde_json::from_str(line).ok());
                if kind == RawMessageType::Init {
                    info!(service = %request.from(), "service registered");
                }
                self.registry.touch(request.from(), kind, details, now);
                send(
                    router,
                    &identity,
                    request.answer(self.address.clone(), RawCode::Success, ["ok"]),
                )
                .await;
            }
            Some(RawMessageType::Bye) => {
                if self.registry.remove(&request.from().uid()) {
                    info!(service = %request.from(), "service said bye");
                }
            }
            Some(RawMessageType::Mgmt) => {
                return self.management(request, identity, router, now).await
            }
            None => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                debug!(from = %request.from(), "dropped a request of unknown type");
            }
        }
        Outcome::Continue
    }

    async fn management(
        &mut self,
        request: RawRequest,
        identity: Bytes,
        router: &mut RouterSocket,
        now: Instant,
    ) -> Outcome {
        let me = self.address.clone();
        let answer = match request.mgmt_command() {
            Some(MgmtCommand::List) => {
                request.answer(me, RawCode::Success, self.registry.listing(now).lines())
            }
            Some(MgmtCommand::Other(line)) if line.trim() == LIST_JSON => {
                let json = serde_json::to_string(&self.registry.infos(now))
                    .unwrap_or_else(|_| "[]".into());
                request.answer(me, RawCode::Success, [json])
            }
            Some(MgmtCommand::Stop(uid)) => match self.registry.get(&uid) {
                Some(entry) => {
                    let target = entry.address.clone();
                    let stop = RawRequest::new(me.clone(), Some(target.clone()), [STOP_LINE]);
                    send_request(router, uid.to_string().as_bytes(), stop).await;
                    info!(service = %target, by = %request.from(), "asked service to stop");
                    request.answer(me, RawCode::Success, [format!("stopping {target}")])
                }
                None => request.answer(me, RawCode::NotFound, [format!("no service {uid}")]),
            },
            Some(MgmtCommand::Exit) => request.answer(
                me,
                RawCode::Forbidden,
                ["shutdown needs the admin token: e <token>"],
            ),
            Some(MgmtCommand::Other(line)) => match line.trim().strip_prefix("e ") {
                Some(token)
                    if self
                        .config
                        .admin_token
                        .as_deref()
                        .is_some_and(|t| t == token.trim()) =>
                {
                    send(
                        router,
                        &identity,
                        request.answer(me, RawCode::Success, ["shutting down"]),
                    )
                    .await;
                    return Outcome::ShutDown;
                }
                Some(_) => request.answer(me, RawCode::Forbidden, ["wrong admin token"]),
                None => request.answer(
                    me,
                    RawCode::InternalServerError,
                    [format!("unknown management command {line:?}")],
                ),
            },
            None => request.answer(
                me,
                RawCode::InternalServerError,
                ["mgmt request without a command line"],
            ),
        };
        send(router, &identity, answer).await;
        Outcome::Continue
    }
}

/// The v2 management command that asks for the listing as JSON.
pub const LIST_JSON: &str = "lj";

async fn send(router: &mut RouterSocket, identity: &Bytes, response: RawResponse) {
    route(router, identity.as_ref(), response.serialize()).await;
}

async fn send_request(router: &mut RouterSocket, identity: &[u8], request: RawRequest) {
    route(router, identity, request.serialize()).await;
}

/// Sends `[identity, payload]`. A peer that went away makes the send fail;
/// that is logged, never fatal.
async fn route(router: &mut RouterSocket, identity: &[u8], payload: Vec<u8>) {
    let frames = vec![Bytes::copy_from_slice(identity), Bytes::from(payload)];
    let Ok(message) = ZmqMessage::try_from(frames) else {
        return;
    };
    match tokio::time::timeout(Duration::from_secs(1), router.send(message)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => debug!(error = %e, "cannot route a reply to a peer"),
        Err(_) => debug!("routing a reply timed out"),
    }
}

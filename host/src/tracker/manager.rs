//! The service manager role: an XPUB socket that beacons every interval (and
//! greets every new subscriber with a beacon at once, so a service or a
//! command processor never waits a whole interval to find the manager), and
//! a ROUTER socket that takes INIT, HELLO, BYE and management requests.
//!
//! It runs on its own OS thread, which owns both sockets (libzmq sockets are
//! not thread-safe) and sleeps in `zmq::poll` until a message, the next
//! beacon or the shutdown waker. Sends never wait: the ROUTER is
//! `ZMQ_ROUTER_MANDATORY` and every send is non-blocking, so a peer that is
//! gone or whose queue (`hwm`) is full costs one dropped answer and a debug
//! line, never a stalled manager. `ZMQ_ROUTER_HANDOVER` lets a service that
//! reconnects take its identity back from its own dead connection.
//! `ZMQ_MAXMSGSIZE` makes libzmq drop a peer that announces an oversized
//! frame before anything is allocated; the socket monitor logs the drop.
//!
//! It answers INIT and HELLO with a short `ok` body, not the whole registry
//! as the old manager did: v1 services only check the response id, and
//! sending the listing on every heartbeat makes heartbeat traffic grow with
//! the square of the number of services. The `ok` also tells plughost's
//! command processor that it talks to a plughost manager (the old manager
//! answers with its listing).
//!
//! Every message goes through the raw-protocol parser; anything that fails
//! validation is dropped, logged at debug level and counted, so garbage can
//! neither crash the manager nor make it answer. Toward v1 peers (requests
//! without plughost's `v2` line) it is silent wherever the old manager was
//! silent (a bare `s`, unknown commands), because the old command processor
//! reads exactly one answer per command it sends.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::{
    curve::{ServerCurve, ZapHandler},
    registry::ServiceRegistry,
    socket::{self, Context, Limits, Monitor, WakeReceiver},
    TrackerError, STOP_LINE, V2_LINE,
};
use crate::{
    metrics,
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
    /// XPUB endpoint for beacons, e.g. `tcp://127.0.0.1:5555` (port 0: any free port).
    pub discovery: String,
    /// ROUTER endpoint for management, e.g. `tcp://127.0.0.1:6666`.
    pub management: String,
    /// Time between beacons.
    pub beacon_interval: Duration,
    /// v2 services silent for longer than this are dropped.
    pub ttl: Duration,
    /// The longest a v1 service may stay silent (the old manager's 60 s);
    /// see [`super::registry`] for how its TTL follows its pace.
    pub v1_ttl: Duration,
    /// Token that shutting the manager down (`e <token>`) and stopping a
    /// service (`s <uuid> <token>`) must carry. Without one, shutdown is
    /// always refused and stop is open to every peer.
    pub admin_token: Option<String>,
    /// Message size and queue limits.
    pub limits: Limits,
    /// CURVE: only peers with an allowed key get in (none: plain ZMTP).
    pub curve: Option<ServerCurve>,
}

impl ManagerConfig {
    /// A manager on `discovery` and `management` with the default timings
    /// (1 s beacons, 3 s TTL, 60 s for v1 services), limits, no token and no CURVE.
    pub fn new(discovery: impl Into<String>, management: impl Into<String>) -> Self {
        Self {
            discovery: discovery.into(),
            management: management.into(),
            beacon_interval: Duration::from_secs(1),
            ttl: Duration::from_secs(3),
            v1_ttl: Duration::from_secs(60),
            admin_token: None,
            limits: Limits::default(),
            curve: None,
        }
    }
}

/// Counters a manager keeps (shared with its handle).
#[derive(Debug, Default)]
pub struct ManagerCounters {
    /// Messages dropped because they failed validation or were of unknown type.
    pub dropped: AtomicU64,
    /// Requests refused: authenticity, a missing or wrong admin token, a
    /// peer whose CURVE key is not allowed.
    pub refused: AtomicU64,
    /// v1 requests the manager stayed silent on (as the old one did).
    pub unanswered: AtomicU64,
    /// Connections libzmq dropped or refused (size limit, protocol, CURVE).
    pub connections_dropped: AtomicU64,
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
    /// Everything else it counts.
    pub counters: Arc<ManagerCounters>,
    /// Resolves when the manager stops (shutdown, or an authorised `mgmt e`).
    pub task: JoinHandle<()>,
}

/// Binds the sockets on the manager's thread and starts it.
pub async fn start(
    config: ManagerConfig,
    mut shutdown: Shutdown,
) -> Result<ManagerHandle, TrackerError> {
    let address = RawAddress::new("Service Manager", Uid::new_v4())
        .map_err(|e| TrackerError::Protocol(e.to_string()))?;
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let (waker, wake_rx) = socket::waker()?;
    let stop = Arc::new(AtomicBool::new(false));
    let dropped = Arc::new(AtomicU64::new(0));
    let counters = Arc::new(ManagerCounters::default());
    let thread = {
        let (address, stop, dropped, counters) = (
            address.clone(),
            Arc::clone(&stop),
            Arc::clone(&dropped),
            Arc::clone(&counters),
        );
        std::thread::Builder::new()
            .name("tracker-manager".into())
            .spawn(move || {
                match Sockets::open(&config) {
                    Ok(sockets) => {
                        let bound = (sockets.discovery.clone(), sockets.management.clone());
                        let _ = bound_tx.send(Ok(bound));
                        let manager = Manager {
                            address,
                            pending_stops: std::collections::HashSet::new(),
                            beacon: Vec::new(),
                            config,
                            registry: ServiceRegistry::default(),
                            dropped,
                            counters,
                        };
                        manager.run(&sockets, &wake_rx, &stop);
                    }
                    Err(e) => {
                        let _ = bound_tx.send(Err(e));
                    }
                }
                let _ = done_tx.send(());
            })
            .map_err(|e| TrackerError::Socket {
                what: "manager thread".into(),
                reason: e.to_string(),
            })?
    };
    let (discovery, management) = match bound_rx.await {
        Ok(bound) => bound?,
        Err(_) => {
            let _ = thread.join();
            return Err(TrackerError::Socket {
                what: "manager thread".into(),
                reason: "ended before binding its sockets".into(),
            });
        }
    };
    info!(%address, %discovery, %management, "service manager listening");
    let task = tokio::spawn(async move {
        let mut done = done_rx;
        tokio::select! {
            _ = &mut done => {}
            _ = shutdown.wait() => {
                stop.store(true, Ordering::SeqCst);
                waker.wake();
                let _ = done.await;
            }
        }
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        info!("service manager stopped");
    });
    Ok(ManagerHandle {
        address,
        discovery,
        management,
        dropped,
        counters,
        task,
    })
}

/// The manager's sockets, all owned by its thread. Field order is drop
/// order: sockets close before the context terminates.
struct Sockets {
    beacons: zmq::Socket,
    router: zmq::Socket,
    beacons_monitor: Monitor,
    router_monitor: Monitor,
    zap: Option<ZapHandler>,
    discovery: String,
    management: String,
    _context: Arc<Context>,
}

impl Sockets {
    fn open(config: &ManagerConfig) -> Result<Self, TrackerError> {
        let context = Context::new(1, 64)?;
        let zap = match &config.curve {
            Some(curve) => Some(ZapHandler::bind(&context, Arc::clone(&curve.allowed))?),
            None => None,
        };
        let beacons = context.socket(zmq::XPUB)?;
        let router = context.socket(zmq::ROUTER)?;
        for s in [&beacons, &router] {
            socket::apply_limits(s, &config.limits)?;
            if let Some(curve) = &config.curve {
                curve.apply(s)?;
            }
        }
        let options = || -> zmq::Result<()> {
            // Manager sends never wait (see the module comment).
            router.set_sndtimeo(0)?;
            beacons.set_sndtimeo(0)?;
            router.set_router_handover(true)?;
            router.set_router_mandatory(true)?;
            Ok(())
        };
        options().map_err(|e| TrackerError::Socket {
            what: "manager socket options".into(),
            reason: e.to_string(),
        })?;
        let beacons_monitor = Monitor::start(&context, &beacons, "discovery")?;
        let router_monitor = Monitor::start(&context, &router, "management")?;
        let discovery = socket::bind(&beacons, &config.discovery)?;
        let management = socket::bind(&router, &config.management)?;
        Ok(Self {
            beacons,
            router,
            beacons_monitor,
            router_monitor,
            zap,
            discovery,
            management,
            _context: context,
        })
    }
}

impl Drop for Sockets {
    fn drop(&mut self) {
        // Before the sockets and their monitors close (see `stop_monitor`).
        socket::stop_monitor(&mut self.beacons);
        socket::stop_monitor(&mut self.router);
    }
}

struct Manager {
    address: RawAddress,
    /// Stops that could not be routed when asked for (the service was
    /// between connections); each goes out after the answer to that
    /// service's next INIT or HELLO.
    pending_stops: std::collections::HashSet<Uid>,
    /// The current beacon's bytes.
    beacon: Vec<u8>,
    config: ManagerConfig,
    registry: ServiceRegistry,
    dropped: Arc<AtomicU64>,
    counters: Arc<ManagerCounters>,
}

/// What handling one message asks the loop to do.
enum Outcome {
    Continue,
    ShutDown,
}

/// Messages handled per socket between two looks at the clock, so a flood
/// cannot delay beacons and expiry.
const BATCH: usize = 1000;

impl Manager {
    fn run(mut self, sockets: &Sockets, wake: &WakeReceiver, stop: &AtomicBool) {
        metrics::tracker_registry_size(self.registry.len());
        self.beacon = RawRequest::beacon(self.address.clone()).serialize();
        // Every new subscriber is greeted with a beacon (the id is fixed;
        // nobody reads a beacon's id).
        if let Err(e) = sockets
            .beacons
            .set_xpub_welcome_msg(std::str::from_utf8(&self.beacon).ok())
        {
            warn!(error = %e, "cannot set the welcome beacon; subscribers wait for the next beacon");
        }
        let mut next_beacon = Instant::now();
        loop {
            let now = Instant::now();
            if now >= next_beacon {
                self.sweep_and_beacon(sockets, now);
                next_beacon = now + self.config.beacon_interval;
            }
            let wait = next_beacon.saturating_duration_since(Instant::now());
            let mut items = vec![
                sockets.router.as_poll_item(zmq::POLLIN),
                sockets.beacons.as_poll_item(zmq::POLLIN),
                wake.poll_item(),
                sockets.router_monitor.poll_item(),
                sockets.beacons_monitor.poll_item(),
            ];
            if let Some(zap) = &sockets.zap {
                items.push(zap.poll_item());
            }
            let timeout = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX).max(1);
            if let Err(e) = zmq::poll(&mut items, timeout) {
                debug!(error = %e, "manager poll interrupted");
            }
            drop(items);
            if stop.load(Ordering::SeqCst) {
                break;
            }
            wake.drain();
            if let Some(zap) = &sockets.zap {
                let refused = zap.serve();
                self.counters.refused.fetch_add(refused, Ordering::Relaxed);
            }
            for monitor in [&sockets.router_monitor, &sockets.beacons_monitor] {
                let events = monitor.drain();
                let lost = events
                    .iter()
                    .filter(|e| !matches!(e, socket::ConnectionEvent::Up))
                    .count();
                self.counters
                    .connections_dropped
                    .fetch_add(lost as u64, Ordering::Relaxed);
            }
            // Subscriptions arrive on the XPUB; the manager has no use for them.
            for _ in 0..BATCH {
                if sockets.beacons.recv_multipart(zmq::DONTWAIT).is_err() {
                    break;
                }
            }
            for _ in 0..BATCH {
                let Ok(frames) = sockets.router.recv_multipart(zmq::DONTWAIT) else {
                    break;
                };
                if let Outcome::ShutDown = self.handle(frames, &sockets.router) {
                    info!("service manager shut down by an authorised management request");
                    return;
                }
            }
        }
    }

    fn sweep_and_beacon(&mut self, sockets: &Sockets, now: Instant) {
        let expired = self
            .registry
            .expire(now, self.config.ttl, self.config.v1_ttl);
        if !expired.is_empty() {
            metrics::tracker_expiries(expired.len());
            metrics::tracker_registry_size(self.registry.len());
        }
        for gone in expired {
            self.pending_stops.remove(&gone.uid());
            info!(service = %gone, "service expired (no message within its TTL)");
        }
        self.beacon = RawRequest::beacon(self.address.clone()).serialize();
        socket::send_now(&sockets.beacons, &[&self.beacon], "a beacon");
    }

    fn handle(&mut self, mut frames: Vec<Vec<u8>>, router: &zmq::Socket) -> Outcome {
        if frames.is_empty() {
            return Outcome::Continue;
        }
        let identity = frames.remove(0);
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
        let identity_matches = request.from().uid().is_text(&identity);
        if !addressed_to_us && !identity_matches {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            debug!(from = %request.from(), "refused a request: To is not this manager and From is not the sender");
            let refusal = request.answer(
                self.address.clone(),
                RawCode::Forbidden,
                ["To is not this manager and From is not the sender"],
            );
            send(router, &identity, refusal);
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
                    info!(service = %request.from(), v2 = details.is_some(), "service registered");
                }
                if self.registry.touch(request.from(), kind, details, now) {
                    metrics::tracker_registration();
                    metrics::tracker_registry_size(self.registry.len());
                }
                send(
                    router,
                    &identity,
                    request.answer(self.address.clone(), RawCode::Success, [INIT_ANSWER]),
                );
                let uid = request.from().uid();
                if self.pending_stops.remove(&uid) {
                    let stop = RawRequest::new(
                        self.address.clone(),
                        Some(request.from().clone()),
                        [STOP_LINE],
                    );
                    if route(router, &identity, &stop.serialize()) {
                        info!(service = %request.from(), "sent a stop that was waiting for this service");
                    } else {
                        self.pending_stops.insert(uid);
                    }
                }
            }
            Some(RawMessageType::Bye) => {
                self.pending_stops.remove(&request.from().uid());
                if self.registry.remove(&request.from().uid()) {
                    metrics::tracker_registry_size(self.registry.len());
                    info!(service = %request.from(), "service said bye");
                }
            }
            Some(RawMessageType::Mgmt) => return self.management(request, &identity, router, now),
            None => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                debug!(from = %request.from(), "dropped a request of unknown type");
            }
        }
        Outcome::Continue
    }

    fn management(
        &mut self,
        request: RawRequest,
        identity: &[u8],
        router: &zmq::Socket,
        now: Instant,
    ) -> Outcome {
        let me = self.address.clone();
        let body = request.trimmed_body();
        let v2 = body.get(2).is_some_and(|l| l == V2_LINE);
        let answer = match request.mgmt_command() {
            Some(MgmtCommand::List) => listing_answer(&request, me, &self.registry, now),
            Some(MgmtCommand::Other(line)) if line.trim() == LIST_JSON => {
                let json = serde_json::to_string(&self.registry.infos(now))
                    .unwrap_or_else(|_| "[]".into());
                request.answer(me, RawCode::Success, [json])
            }
            Some(MgmtCommand::Stop(uid)) => self.stop(&request, uid, None, router),
            Some(MgmtCommand::Other(line)) if stop_with_token(&line).is_some() => {
                match stop_with_token(&line) {
                    Some((uid, token)) => self.stop(&request, uid, Some(token), router),
                    None => return Outcome::Continue,
                }
            }
            Some(MgmtCommand::Exit) => {
                self.refuse(&request, "shutdown without the admin token");
                request.answer(
                    me,
                    RawCode::Forbidden,
                    ["shutdown needs the admin token: e <token>"],
                )
            }
            Some(MgmtCommand::Other(line)) => match line.trim().strip_prefix("e ") {
                Some(token) if self.token_matches(token.trim()) => {
                    send(
                        router,
                        identity,
                        request.answer(me, RawCode::Success, ["shutting down"]),
                    );
                    return Outcome::ShutDown;
                }
                Some(_) => {
                    self.refuse(&request, "shutdown with a wrong admin token");
                    request.answer(me, RawCode::Forbidden, ["wrong admin token"])
                }
                None if v2 => request.answer(
                    me,
                    RawCode::InternalServerError,
                    [format!("unknown management command {line:?}")],
                ),
                None => return self.silent(&request, &line),
            },
            None if v2 => request.answer(
                me,
                RawCode::InternalServerError,
                ["mgmt request without a command line"],
            ),
            None => return self.silent(&request, ""),
        };
        send(router, identity, answer);
        Outcome::Continue
    }

    /// `s <uuid>` (with the token when one is configured).
    fn stop(
        &mut self,
        request: &RawRequest,
        uid: Uid,
        token: Option<&str>,
        router: &zmq::Socket,
    ) -> RawResponse {
        let me = self.address.clone();
        if self.config.admin_token.is_some() && !token.is_some_and(|t| self.token_matches(t)) {
            self.refuse(request, "stop without the right admin token");
            return request.answer(
                me,
                RawCode::Forbidden,
                ["stopping a service needs the admin token: s <uuid> <token>"],
            );
        }
        let Some(entry) = self.registry.get(&uid) else {
            return request.answer(me, RawCode::NotFound, [format!("no service {uid}")]);
        };
        let (target, v2) = (entry.address.clone(), entry.v2);
        let stop = RawRequest::new(me.clone(), Some(target.clone()), [STOP_LINE]);
        let sent = route(router, uid.to_string().as_bytes(), &stop.serialize());
        info!(service = %target, by = %request.from(), v2, sent, "asked service to stop");
        let text = if !sent {
            // Between connections (a reconnect, a handover): the stop goes
            // with the answer to its next heartbeat, or lapses if it expires.
            self.pending_stops.insert(uid);
            format!("stopping {target} (not reachable this moment: the stop goes with the answer to its next heartbeat)")
        } else if v2 {
            format!("stopping {target}")
        } else {
            format!("sent stop to {target}, but it is a v1 service, which does not act on stop: it stays registered until it says bye or goes silent")
        };
        request.answer(me, RawCode::Success, [text])
    }

    fn token_matches(&self, token: &str) -> bool {
        self.config
            .admin_token
            .as_deref()
            .is_some_and(|t| t == token)
    }

    fn refuse(&self, request: &RawRequest, why: &str) {
        self.counters.refused.fetch_add(1, Ordering::Relaxed);
        warn!(from = %request.from(), reason = why, "refused a management request");
    }

    /// The old manager answered nothing here; its command processor reads
    /// one answer per command, so an answer would desynchronise it.
    fn silent(&self, request: &RawRequest, line: &str) -> Outcome {
        self.counters.unanswered.fetch_add(1, Ordering::Relaxed);
        info!(from = %request.from(), command = line, "v1 management request left unanswered, as the old manager did (not a command it knew)");
        Outcome::Continue
    }
}

/// The answer to INIT and HELLO (see the module comment).
pub const INIT_ANSWER: &str = "ok";

/// The v2 management command that asks for the listing as JSON.
pub const LIST_JSON: &str = "lj";

/// The answer to `l`: one body part holding the listing, each line ended by
/// `\n`, then the part's CRLF, exactly as the old manager wrote it (so the
/// message ends `...hello\n\r\n`, and an empty registry gives an empty part).
fn listing_answer(
    request: &RawRequest,
    me: RawAddress,
    registry: &ServiceRegistry,
    now: Instant,
) -> RawResponse {
    request.answer(me, RawCode::Success, [registry.listing(now)])
}

/// `s <uuid> <token>` -> (uuid, token).
fn stop_with_token(line: &str) -> Option<(Uid, &str)> {
    let rest = line.trim().strip_prefix("s ")?;
    let (uid, token) = rest.trim().split_once(' ')?;
    Some((Uid::parse(uid).ok()?, token.trim()))
}

fn send(router: &zmq::Socket, identity: &[u8], response: RawResponse) {
    route(router, identity, &response.serialize());
}

/// Sends `[identity, payload]` without waiting. A peer that went away or
/// whose queue is full makes the send fail; that is logged, never fatal.
fn route(router: &zmq::Socket, identity: &[u8], payload: &[u8]) -> bool {
    socket::send_now(router, &[identity, payload], "a reply to a peer")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> RawAddress {
        RawAddress::parse(text).unwrap()
    }

    /// The old manager's bytes for `l` with two services (docs/wire.md §2: the
    /// listing is one body string, each line ended by `\n`, and the
    /// serializer ends every part with CRLF).
    #[test]
    fn golden_listing_answer_is_the_old_managers_bytes() {
        let manager = address("Service Manager:0c3d6f5e-8a1b-4c2d-9e3f-4a5b6c7d8e9f");
        let cp = address("Command Processor:7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2910");
        let t0 = Instant::now();
        let mut registry = ServiceRegistry::default();
        registry.touch(
            &address("Service 42:9b2e4c6a-8d0f-4a1b-b3c5-d7e9f1a3b5c7"),
            RawMessageType::Init,
            None,
            t0,
        );
        registry.touch(
            &address("Service 7:1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"),
            RawMessageType::Init,
            None,
            t0 + Duration::from_millis(1500),
        );
        registry.touch(
            &address("Service 7:1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"),
            RawMessageType::Hello,
            None,
            t0 + Duration::from_millis(2000),
        );
        let request = RawRequest::new(cp.clone(), Some(manager.clone()), ["mgmt", "l"]);
        let now = t0 + Duration::from_millis(4500);
        let bytes = listing_answer(&request, manager.clone(), &registry, now).serialize();
        let expected = format!(
            "Raw Response Message : Version 1.0\r\n{id}\r\n\
             Service Manager:0c3d6f5e-8a1b-4c2d-9e3f-4a5b6c7d8e9f\r\n\
             Command Processor:7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2910\r\n\r\n200\r\nSuccess\r\n\
             [1] : service_name = Service 42 : service_id = 9b2e4c6a-8d0f-4a1b-b3c5-d7e9f1a3b5c7 :time_since_lastUpdate = 4.5 : last_msg_type = init\n\
             [2] : service_name = Service 7 : service_id = 1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d :time_since_lastUpdate = 2.5 : last_msg_type = hello\n\r\n",
            id = request.id()
        );
        assert_eq!(String::from_utf8(bytes).unwrap(), expected);

        let empty = listing_answer(&request, manager, &ServiceRegistry::default(), now);
        assert!(
            String::from_utf8(empty.serialize())
                .unwrap()
                .ends_with("\r\n\r\n200\r\nSuccess\r\n\r\n"),
            "an empty registry is one empty part"
        );
    }

    #[test]
    fn stop_with_token_reads_uuid_and_token() {
        let uid = Uid::new_v4();
        assert_eq!(stop_with_token(&format!("s {uid} t0k")), Some((uid, "t0k")));
        assert_eq!(stop_with_token(&format!("s {uid}")), None);
        assert_eq!(stop_with_token("s nope t0k"), None);
        assert_eq!(stop_with_token("s"), None);
    }
}

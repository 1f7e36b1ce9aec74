//! One service as the manager sees it: a SUB socket for beacons and a DEALER
//! (identity = the service's uuid) for INIT, HELLO, BYE and management.
//!
//! The conversation (docs/wire.md §2): INIT on the first beacon, HELLO every
//! heartbeat, BYE on stop. A beacon from a manager with another uuid (a
//! restarted manager) triggers a new INIT at that very beacon, on the same
//! DEALER: libzmq reconnects every socket type by itself (100 ms, backing
//! off to 5 s), and the manager's `ZMQ_ROUTER_HANDOVER` gives the identity
//! back to a reconnecting service even before the manager has noticed its
//! old connection die.
//!
//! Each agent runs on its own OS thread, which owns both sockets and sleeps
//! in `zmq::poll` until a beacon, an answer, the next heartbeat or a waker
//! from tokio (an `ask`, a stop). The DEALER starts without ZMTP
//! heartbeats, because an old manager may run on a libzmq that predates
//! them (libzmq sends PINGs whatever the peer's ZMTP version); once the
//! manager answers INIT with plughost's `ok`, the agent reopens its DEALER
//! with heartbeats (the handover lets the new DEALER take the identity at
//! once). So a v2 connection to a manager whose machine vanished is noticed
//! and re-established, and the manager drops a dead agent's connection
//! after the heartbeat TTL. When the management connection drops, the SUB
//! is reconnected too, so beacons of a manager that came back on the same
//! endpoint are heard even if the old discovery connection was left half-open.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc,
    },
    time::{Duration, Instant},
};

use tokio::sync::{oneshot, watch};
use tracing::{debug, info, warn};

use super::{
    curve::ClientCurve,
    manager::INIT_ANSWER,
    socket::{self, Context, Limits, Monitor, WakeReceiver, Waker},
    TrackerError, STOP_LINE, V2_LINE,
};
use crate::proto::{
    address::RawAddress,
    raw::{RawMessage, RawMessageType, RawRequest, RawResponse},
    uid::Uid,
};

/// Who a service is and where its manager is.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Its address (name and uuid).
    pub address: RawAddress,
    /// The manager's discovery (PUB) endpoint.
    pub discovery: String,
    /// The manager's management (ROUTER) endpoint.
    pub management: String,
    /// Time between HELLOs.
    pub heartbeat: Duration,
    /// A v2 line sent after `init`/`hello` (JSON: host, plugin, methods);
    /// `{}` is sent when there is none, so the manager knows a v2 service.
    pub details: Option<serde_json::Value>,
    /// Message size and queue limits.
    pub limits: Limits,
    /// CURVE keys, when the manager requires them.
    pub curve: Option<ClientCurve>,
}

impl AgentConfig {
    /// A service at `address` talking to the manager at the two endpoints,
    /// with a 1 s heartbeat, no details, default limits and no CURVE.
    pub fn new(
        address: RawAddress,
        discovery: impl Into<String>,
        management: impl Into<String>,
    ) -> Self {
        Self {
            address,
            discovery: discovery.into(),
            management: management.into(),
            heartbeat: Duration::from_secs(1),
            details: None,
            limits: Limits::default(),
            curve: None,
        }
    }
}

/// Why a management request through an agent got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    /// The agent has ended.
    #[error("service agent stopped")]
    Stopped,
    /// No beacon seen yet, so no manager to ask.
    #[error("no service manager known yet (no beacon seen)")]
    NoManager,
    /// The manager did not answer in time.
    #[error("no answer from the service manager within 5 s")]
    Timeout,
}

type Ask = (String, oneshot::Sender<Result<RawResponse, AskError>>);

/// A running agent.
pub struct AgentHandle {
    /// The service's address.
    pub address: RawAddress,
    asks: mpsc::Sender<Ask>,
    waker: Waker,
    stop: Arc<AtomicBool>,
    stop_requested: watch::Receiver<bool>,
    registered: watch::Receiver<Option<RawAddress>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const ASK_TIMEOUT: Duration = Duration::from_secs(5);

impl AgentHandle {
    /// Sends a management command to the current manager and waits (up to
    /// 5 s) for its answer.
    pub async fn ask(&self, command: &str) -> Result<RawResponse, AskError> {
        let rx = self.send_ask(command)?;
        match tokio::time::timeout(ASK_TIMEOUT, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(AskError::Stopped),
            Err(_) => Err(AskError::Timeout),
        }
    }

    /// [`AgentHandle::ask`] from a plain (non-async) thread (the agent
    /// gives up on an unanswered ask after 5 s, which ends the wait).
    pub fn ask_blocking(&self, command: &str) -> Result<RawResponse, AskError> {
        let asked = Instant::now();
        let rx = self.send_ask(command)?;
        rx.blocking_recv().unwrap_or_else(|_| {
            Err(if asked.elapsed() >= ASK_TIMEOUT {
                AskError::Timeout
            } else {
                AskError::Stopped
            })
        })
    }

    fn send_ask(
        &self,
        command: &str,
    ) -> Result<oneshot::Receiver<Result<RawResponse, AskError>>, AskError> {
        let (tx, rx) = oneshot::channel();
        self.asks
            .send((command.to_owned(), tx))
            .map_err(|_| AskError::Stopped)?;
        self.waker.wake();
        Ok(rx)
    }

    /// A clone of the "manager asked us to stop" flag.
    pub fn stop_requested(&self) -> watch::Receiver<bool> {
        self.stop_requested.clone()
    }

    /// The manager this service is registered with, once it is.
    pub fn registered(&self) -> watch::Receiver<Option<RawAddress>> {
        self.registered.clone()
    }

    /// Tells the agent to say BYE and end, without waiting for it.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.waker.wake();
    }

    /// Says BYE and ends the agent.
    pub async fn stop(mut self) {
        self.request_stop();
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Drop for AgentHandle {
    fn drop(&mut self) {
        self.request_stop();
    }
}

/// Starts an agent on its own thread.
pub fn spawn(config: AgentConfig) -> AgentHandle {
    let (asks_tx, asks) = mpsc::channel();
    let (requested_tx, stop_requested) = watch::channel(false);
    let (registered_tx, registered) = watch::channel(None);
    let stop = Arc::new(AtomicBool::new(false));
    let address = config.address.clone();
    let (waker, thread) = match socket::waker() {
        Ok((waker, wake_rx)) => {
            let agent = Agent {
                config,
                manager: None,
                v2_sockets: false,
                pending: HashMap::new(),
                requested: requested_tx,
                registered: registered_tx,
            };
            let stop = Arc::clone(&stop);
            let thread = std::thread::Builder::new()
                .name("tracker-agent".into())
                .stack_size(256 * 1024)
                .spawn(move || agent.run(&asks, &wake_rx, &stop))
                .map_err(|e| warn!(service = %address, error = %e, "cannot start the service agent's thread"))
                .ok();
            (waker, thread)
        }
        Err(e) => {
            warn!(service = %address, error = %e, "cannot start the service agent");
            (Waker::none(), None)
        }
    };
    AgentHandle {
        address,
        asks: asks_tx,
        waker,
        stop,
        stop_requested,
        registered,
        thread,
    }
}

struct Agent {
    config: AgentConfig,
    manager: Option<RawAddress>,
    /// True when the sockets are the heartbeat-enabled ones for a v2 manager.
    v2_sockets: bool,
    /// Asks waiting for their answer, with when they were sent.
    pending: HashMap<Uid, (Instant, oneshot::Sender<Result<RawResponse, AskError>>)>,
    requested: watch::Sender<bool>,
    registered: watch::Sender<Option<RawAddress>>,
}

/// The agent's sockets. Field order is drop order.
struct Sockets {
    beacons: zmq::Socket,
    dealer: zmq::Socket,
    beacons_monitor: Monitor,
    dealer_monitor: Monitor,
    /// The DEALER a reopen replaced, still read until the new one is
    /// answered: until the new connection's handshake hands the identity
    /// over, the manager routes to the old one (a stop, an answer).
    retiring: Option<(zmq::Socket, Monitor)>,
    _context: Arc<Context>,
}

impl Drop for Sockets {
    fn drop(&mut self) {
        // Before the sockets and their monitors close (see `stop_monitor`).
        socket::stop_monitor(&mut self.beacons);
        socket::stop_monitor(&mut self.dealer);
        self.retire_old_dealer();
    }
}

impl Sockets {
    fn retire_old_dealer(&mut self) {
        if let Some((mut old, _monitor)) = self.retiring.take() {
            socket::stop_monitor(&mut old);
        }
    }
}

impl Agent {
    fn open(&self) -> Result<Sockets, TrackerError> {
        let context = socket::shared_context()?;
        let beacons = context.socket(zmq::SUB)?;
        socket::apply_limits(&beacons, &self.config.limits)?;
        if let Some(curve) = &self.config.curve {
            curve.apply(&beacons)?;
        }
        beacons
            .set_subscribe(b"")
            .map_err(|e| TrackerError::Socket {
                what: "service agent subscription".into(),
                reason: e.to_string(),
            })?;
        let beacons_monitor = Monitor::start(&context, &beacons, "agent discovery")?;
        socket::connect(&beacons, &self.config.discovery)?;
        let (dealer, dealer_monitor) = self.open_dealer(&context, false)?;
        Ok(Sockets {
            beacons,
            dealer,
            beacons_monitor,
            dealer_monitor,
            retiring: None,
            _context: context,
        })
    }

    fn open_dealer(
        &self,
        context: &Context,
        heartbeats: bool,
    ) -> Result<(zmq::Socket, Monitor), TrackerError> {
        let dealer = context.socket(zmq::DEALER)?;
        socket::apply_limits(&dealer, &self.config.limits)?;
        if let Some(curve) = &self.config.curve {
            curve.apply(&dealer)?;
        }
        if heartbeats {
            socket::enable_heartbeats(&dealer, self.config.heartbeat)?;
        }
        let options = || -> zmq::Result<()> {
            dealer.set_identity(self.config.address.uid().to_string().as_bytes())?;
            // Let a BYE leave after the socket is closed.
            dealer.set_linger(1000)?;
            Ok(())
        };
        options().map_err(|e| TrackerError::Socket {
            what: "service agent socket options".into(),
            reason: e.to_string(),
        })?;
        let monitor = Monitor::start(context, &dealer, "agent management")?;
        socket::connect(&dealer, &self.config.management)?;
        Ok((dealer, monitor))
    }

    /// Replaces the DEALER by one with (or without) heartbeats.
    fn reopen_dealer(&self, sockets: &mut Sockets, heartbeats: bool) -> Result<(), TrackerError> {
        let (dealer, monitor) = self.open_dealer(&sockets._context, heartbeats)?;
        sockets.retire_old_dealer();
        let old = std::mem::replace(&mut sockets.dealer, dealer);
        let old_monitor = std::mem::replace(&mut sockets.dealer_monitor, monitor);
        // Nothing on the old one needs to leave any more.
        let _ = old.set_linger(0);
        sockets.retiring = Some((old, old_monitor));
        Ok(())
    }

    fn run(mut self, asks: &mpsc::Receiver<Ask>, wake: &WakeReceiver, stop: &AtomicBool) {
        let mut sockets = match self.open() {
            Ok(sockets) => sockets,
            Err(e) => {
                warn!(service = %self.config.address, error = %e, "service agent cannot open its sockets");
                return;
            }
        };
        let mut next_hello = Instant::now() + self.config.heartbeat;
        let (mut discovery_retry, mut management_retry) = (Retry::default(), Retry::default());
        while !stop.load(Ordering::SeqCst) {
            let wake_at = [discovery_retry.at, management_retry.at]
                .into_iter()
                .flatten()
                .fold(next_hello, Instant::min);
            let wait = wake_at.saturating_duration_since(Instant::now());
            let timeout = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX).max(1);
            {
                let mut items = vec![
                    sockets.beacons.as_poll_item(zmq::POLLIN),
                    sockets.dealer.as_poll_item(zmq::POLLIN),
                    wake.poll_item(),
                    sockets.beacons_monitor.poll_item(),
                    sockets.dealer_monitor.poll_item(),
                ];
                if let Some((old, old_monitor)) = &sockets.retiring {
                    items.push(old.as_poll_item(zmq::POLLIN));
                    items.push(old_monitor.poll_item());
                }
                if let Err(e) = zmq::poll(&mut items, timeout) {
                    debug!(error = %e, "agent poll interrupted");
                }
            }
            wake.drain();
            let lost = |events: Vec<socket::ConnectionEvent>| {
                events
                    .iter()
                    .any(|e| !matches!(e, socket::ConnectionEvent::Up))
            };
            let discovery_lost = lost(sockets.beacons_monitor.drain());
            let management_lost = lost(sockets.dealer_monitor.drain());
            // See the module comment: after a lost management connection the
            // discovery connection may be half-open, so it is redone too.
            if discovery_lost || management_lost {
                discovery_retry.schedule();
            }
            if management_lost {
                management_retry.schedule();
            }
            if discovery_retry.due() {
                reconnect(&sockets.beacons, &self.config.discovery);
            }
            if management_retry.due() {
                reconnect(&sockets.dealer, &self.config.management);
            }
            while let Ok(frames) = sockets.beacons.recv_multipart(zmq::DONTWAIT) {
                if self.on_beacon(&frames, &sockets) {
                    discovery_retry.reset();
                }
            }
            if let Some((old, old_monitor)) = &sockets.retiring {
                old_monitor.drain();
                while let Ok(frames) = old.recv_multipart(zmq::DONTWAIT) {
                    self.on_management(&frames);
                }
            }
            let mut upgrade = None;
            while let Ok(frames) = sockets.dealer.recv_multipart(zmq::DONTWAIT) {
                if let Some(v2) = self.on_management(&frames) {
                    management_retry.reset();
                    upgrade = Some(v2);
                    // The new DEALER has the identity now.
                    sockets.retire_old_dealer();
                }
            }
            while let Ok((command, reply)) = asks.try_recv() {
                self.ask(command, reply, &sockets);
            }
            self.pending.retain(|_, (asked, waiting)| {
                !waiting.is_closed() && asked.elapsed() < ASK_TIMEOUT
            });
            if Instant::now() >= next_hello {
                next_hello = Instant::now() + self.config.heartbeat;
                self.send_type(RawMessageType::Hello, &sockets);
            }
            if let Some(v2) = upgrade.filter(|v2| *v2 != self.v2_sockets) {
                match self.reopen_dealer(&mut sockets, v2) {
                    Ok(()) => {
                        debug!(service = %self.config.address, heartbeats = v2, "reopened the management socket for this manager");
                        self.v2_sockets = v2;
                    }
                    Err(e) => {
                        warn!(service = %self.config.address, error = %e, "cannot reopen the management socket; keeping the old one")
                    }
                }
            }
        }
        self.send_type(RawMessageType::Bye, &sockets);
        info!(service = %self.config.address, "service left");
    }

    /// Handles one message on the discovery socket; true for a beacon.
    fn on_beacon(&mut self, frames: &[Vec<u8>], sockets: &Sockets) -> bool {
        let Ok(beacon) = RawRequest::parse_frames(frames.iter()) else {
            debug!("ignored a message on the discovery socket that is not a beacon");
            return false;
        };
        if beacon.message_type() != Some(RawMessageType::Hello) || beacon.to().is_some() {
            return false;
        }
        let manager = beacon.from().clone();
        if self
            .manager
            .as_ref()
            .is_some_and(|m| m.uid() == manager.uid())
        {
            return true;
        }
        if self.manager.is_some() {
            info!(service = %self.config.address, %manager, "new service manager; registering again");
        }
        self.manager = Some(manager);
        self.send_type(RawMessageType::Init, sockets);
        true
    }

    fn send_type(&mut self, kind: RawMessageType, sockets: &Sockets) {
        let Some(manager) = self.manager.clone() else {
            return;
        };
        let mut body = vec![kind.as_str().to_owned()];
        if kind != RawMessageType::Bye {
            body.push(
                self.config
                    .details
                    .as_ref()
                    .map_or_else(|| "{}".to_owned(), ToString::to_string),
            );
        }
        let request = RawRequest::new(self.config.address.clone(), Some(manager), body);
        send(&sockets.dealer, &request);
    }

    /// Handles one message from the manager; `Some(v2)` when it was the
    /// answer to INIT or HELLO, telling whether the manager is plughost's.
    fn on_management(&mut self, frames: &[Vec<u8>]) -> Option<bool> {
        let from_manager =
            |from: &RawAddress| self.manager.as_ref().is_some_and(|m| m.uid() == from.uid());
        match RawMessage::parse_frames(frames.iter()) {
            Ok(RawMessage::Response(response)) => {
                // docs/wire.md: accept only answers from our manager, addressed to us.
                if !from_manager(response.from())
                    || response
                        .to()
                        .is_some_and(|t| t.uid() != self.config.address.uid())
                {
                    return None;
                }
                if let Some((_, waiting)) = self.pending.remove(&response.id()) {
                    let _ = waiting.send(Ok(response));
                    return None;
                }
                // The answer to INIT or HELLO: we are registered with this manager.
                let v2 = response.trimmed_body() == [INIT_ANSWER];
                let manager = response.from().clone();
                self.registered.send_if_modified(|current| {
                    let changed = current.as_ref().map(RawAddress::uid) != Some(manager.uid());
                    *current = Some(manager);
                    changed
                });
                Some(v2)
            }
            Ok(RawMessage::Request(request)) => {
                if from_manager(request.from())
                    && request
                        .trimmed_body()
                        .first()
                        .is_some_and(|l| l == STOP_LINE)
                {
                    info!(service = %self.config.address, "the service manager asked this service to stop");
                    let _ = self.requested.send(true);
                }
                None
            }
            Err(e) => {
                debug!(error = %e, "dropped an invalid message from the manager");
                None
            }
        }
    }

    fn ask(
        &mut self,
        command: String,
        reply: oneshot::Sender<Result<RawResponse, AskError>>,
        sockets: &Sockets,
    ) {
        let Some(manager) = self.manager.clone() else {
            let _ = reply.send(Err(AskError::NoManager));
            return;
        };
        let mut body = vec!["mgmt".to_owned(), command];
        if self.v2_sockets {
            body.push(V2_LINE.to_owned());
        }
        let request = RawRequest::new(self.config.address.clone(), Some(manager), body);
        self.pending.insert(request.id(), (Instant::now(), reply));
        send(&sockets.dealer, &request);
    }
}

/// When to redo a connection libzmq gave up on. libzmq reconnects by itself
/// after a peer closes or a heartbeat times out, but a connection it dropped
/// for a protocol error (a frame above `max_message_size`, garbage) ends its
/// session for good; the agent then connects again itself, backing off from
/// 100 ms to 5 s so that a hostile or broken manager cannot make it spin.
#[derive(Default)]
struct Retry {
    at: Option<Instant>,
    backoff: Duration,
}

impl Retry {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    fn schedule(&mut self) {
        if self.at.is_none() {
            self.backoff = self.backoff.max(Self::FIRST);
            self.at = Some(Instant::now() + self.backoff);
            self.backoff = (self.backoff * 2).min(Self::MAX);
        }
    }

    /// True (once) when the scheduled time has come.
    fn due(&mut self) -> bool {
        if self.at.is_some_and(|at| Instant::now() >= at) {
            self.at = None;
            return true;
        }
        false
    }

    /// The peer answered: the next loss retries quickly again.
    fn reset(&mut self) {
        self.backoff = Self::FIRST;
    }
}

/// Drops whatever is left of the connection to `endpoint` and starts a new one.
fn reconnect(socket: &zmq::Socket, endpoint: &str) {
    let _ = socket.disconnect(endpoint);
    if let Err(e) = socket::connect(socket, endpoint) {
        warn!(%endpoint, error = %e, "cannot reconnect a tracker socket");
    }
}

/// Sends one request on the DEALER, waiting at most the send timeout (a
/// DEALER queues while it reconnects; a full queue means the manager is
/// gone or stuck, and the message is dropped with a debug line).
fn send(dealer: &zmq::Socket, request: &RawRequest) {
    if let Err(e) = dealer.send(request.serialize(), 0) {
        debug!(error = %e, "cannot send to the service manager");
    }
}

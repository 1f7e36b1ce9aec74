//! One service as the manager sees it: a SUB socket for beacons and a DEALER
//! (identity = the service's uuid) for INIT, HELLO, BYE and management.
//!
//! The conversation (WIRE.md §2): INIT on the first beacon, HELLO every
//! heartbeat, BYE on stop. A beacon from a manager with another uuid (a
//! restarted manager) triggers a new INIT at once, on a *new* DEALER: the
//! zeromq crate's DEALER does not reconnect by itself, so after a manager
//! restart the old one would never be heard again.

use std::{collections::HashMap, time::Duration};

use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
};
use tracing::{debug, info, warn};
use zeromq::{DealerSocket, Socket, SocketRecv, SocketSend, SubSocket, ZmqMessage};

use super::STOP_LINE;
use plughost_proto::{
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
    /// A v2 line sent after `init`/`hello` (JSON: host, plugin, methods).
    pub details: Option<serde_json::Value>,
}

type Ask = (String, oneshot::Sender<Result<RawResponse, String>>);

/// A running agent.
pub struct AgentHandle {
    /// The service's address.
    pub address: RawAddress,
    asks: mpsc::Sender<Ask>,
    stop: watch::Sender<bool>,
    stop_requested: watch::Receiver<bool>,
    registered: watch::Receiver<Option<RawAddress>>,
    task: JoinHandle<()>,
}

impl AgentHandle {
    /// Sends a management command to the current manager and waits (up to
    /// 5 s) for its answer; usable from any thread (blocking variant below).
    pub async fn ask(&self, command: &str) -> Result<RawResponse, String> {
        let (tx, rx) = oneshot::channel();
        self.asks
            .send((command.to_owned(), tx))
            .await
            .map_err(|_| "service agent stopped".to_owned())?;
        match tokio::time::timeout(Duration::from_secs(5), rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err("service agent stopped".into()),
            Err(_) => Err("no answer from the service manager within 5 s".into()),
        }
    }

    /// [`AgentHandle::ask`] from a plain (non-async) thread.
    pub fn ask_blocking(&self, command: &str) -> Result<RawResponse, String> {
        let (tx, rx) = oneshot::channel();
        self.asks
            .blocking_send((command.to_owned(), tx))
            .map_err(|_| "service agent stopped".to_owned())?;
        rx.blocking_recv()
            .map_err(|_| "service agent stopped".to_owned())?
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
        let _ = self.stop.send(true);
    }

    /// Says BYE and ends the agent.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts an agent task.
pub fn spawn(config: AgentConfig) -> AgentHandle {
    let (asks_tx, asks) = mpsc::channel(16);
    let (stop, stop_rx) = watch::channel(false);
    let (requested_tx, stop_requested) = watch::channel(false);
    let (registered_tx, registered) = watch::channel(None);
    let address = config.address.clone();
    let agent = Agent {
        config,
        manager: None,
        dealer: None,
        pending: HashMap::new(),
        requested: requested_tx,
        registered: registered_tx,
        unanswered: 0,
    };
    let task = tokio::spawn(agent.run(asks, stop_rx));
    AgentHandle {
        address,
        asks: asks_tx,
        stop,
        stop_requested,
        registered,
        task,
    }
}

/// Resolves once the stop flag is set (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

struct Agent {
    config: AgentConfig,
    manager: Option<RawAddress>,
    dealer: Option<DealerSocket>,
    pending: HashMap<Uid, oneshot::Sender<Result<RawResponse, String>>>,
    requested: watch::Sender<bool>,
    registered: watch::Sender<Option<RawAddress>>,
    /// HELLOs sent since the manager last answered anything.
    unanswered: u32,
}

/// After this many unanswered HELLOs the DEALER is rebuilt and INIT sent
/// again: in zeromq 0.7 a peer that connects with our identity (#210) takes
/// it over silently, and our messages are no longer read.
const UNANSWERED_LIMIT: u32 = 2;

const SEND_TIMEOUT: Duration = Duration::from_secs(1);

impl Agent {
    async fn run(mut self, mut asks: mpsc::Receiver<Ask>, mut stop: watch::Receiver<bool>) {
        let Some(mut beacons) = self.subscribe(&mut stop).await else {
            return;
        };
        let mut heartbeat = tokio::time::interval(self.config.heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                beacon = beacons.recv() => match beacon {
                    Ok(message) => self.on_beacon(message).await,
                    Err(e) => debug!(error = %e, "beacon receive error"),
                },
                _ = heartbeat.tick() => {
                    if self.manager.is_some() {
                        if self.unanswered >= UNANSWERED_LIMIT {
                            warn!(service = %self.config.address, "the service manager stopped answering; reconnecting");
                            self.dealer = None;
                            // Let the manager see the old connection close before
                            // the same identity connects again.
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            self.dealer = self.connect_dealer().await;
                            self.unanswered = 0;
                            self.send_type(RawMessageType::Init).await;
                        } else {
                            self.unanswered += 1;
                            self.send_type(RawMessageType::Hello).await;
                        }
                    }
                }
                message = async { match self.dealer.as_mut() { Some(d) => d.recv().await, None => std::future::pending().await } } => match message {
                    Ok(message) => self.on_management(message),
                    Err(e) => {
                        debug!(error = %e, "management socket lost; waiting for the next beacon");
                        self.dealer = None;
                    }
                },
                Some((command, reply)) = asks.recv() => self.ask(command, reply).await,
                _ = stopped(&mut stop) => break,
            }
        }
        if self.manager.is_some() {
            self.send_type(RawMessageType::Bye).await;
        }
        info!(service = %self.config.address, "service left");
    }

    /// Connects the SUB socket, retrying until the discovery endpoint answers.
    async fn subscribe(&self, stop: &mut watch::Receiver<bool>) -> Option<SubSocket> {
        loop {
            let mut sub = SubSocket::new();
            let connected = async {
                sub.connect(&self.config.discovery).await?;
                sub.subscribe("").await
            };
            match tokio::time::timeout(Duration::from_secs(5), connected).await {
                Ok(Ok(())) => return Some(sub),
                Ok(Err(e)) => {
                    debug!(endpoint = %self.config.discovery, error = %e, "discovery not reachable yet")
                }
                Err(_) => debug!(endpoint = %self.config.discovery, "discovery connect timed out"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.heartbeat) => {}
                _ = stopped(stop) => return None,
            }
        }
    }

    async fn on_beacon(&mut self, message: ZmqMessage) {
        let frames = message.into_vec();
        let Ok(beacon) = RawRequest::parse_frames(frames.iter()) else {
            return;
        };
        if beacon.message_type() != Some(RawMessageType::Hello) || beacon.to().is_some() {
            return;
        }
        let manager = beacon.from().clone();
        if self
            .manager
            .as_ref()
            .is_some_and(|m| m.uid() == manager.uid())
            && self.dealer.is_some()
        {
            return;
        }
        if self.manager.is_some() {
            info!(service = %self.config.address, %manager, "new service manager; registering again");
        }
        self.dealer = self.connect_dealer().await;
        self.manager = Some(manager);
        self.unanswered = 0;
        self.send_type(RawMessageType::Init).await;
    }

    async fn connect_dealer(&self) -> Option<DealerSocket> {
        let mut dealer = super::dealer_with_identity(self.config.address.uid()).ok()?;
        match tokio::time::timeout(
            Duration::from_secs(5),
            dealer.connect(&self.config.management),
        )
        .await
        {
            Ok(Ok(())) => Some(dealer),
            Ok(Err(e)) => {
                warn!(endpoint = %self.config.management, error = %e, "cannot connect to the service manager");
                None
            }
            Err(_) => None,
        }
    }

    async fn send_type(&mut self, kind: RawMessageType) {
        let Some(manager) = self.manager.clone() else {
            return;
        };
        let mut body = vec![kind.as_str().to_owned()];
        if kind != RawMessageType::Bye {
            if let Some(details) = &self.config.details {
                body.push(details.to_string());
            }
        }
        let request = RawRequest::new(self.config.address.clone(), Some(manager), body);
        self.send(request).await;
    }

    async fn send(&mut self, request: RawRequest) {
        let Some(dealer) = self.dealer.as_mut() else {
            return;
        };
        match tokio::time::timeout(
            SEND_TIMEOUT,
            dealer.send(ZmqMessage::from(request.serialize())),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => debug!(error = %e, "cannot send to the service manager"),
            Err(_) => debug!("sending to the service manager timed out"),
        }
    }

    fn on_management(&mut self, message: ZmqMessage) {
        let frames = message.into_vec();
        let from_manager =
            |from: &RawAddress| self.manager.as_ref().is_some_and(|m| m.uid() == from.uid());
        match RawMessage::parse_frames(frames.iter()) {
            Ok(RawMessage::Response(response)) => {
                // WIRE.md: accept only answers from our manager, addressed to us.
                if !from_manager(response.from())
                    || response
                        .to()
                        .is_some_and(|t| t.uid() != self.config.address.uid())
                {
                    return;
                }
                self.unanswered = 0;
                if let Some(waiting) = self.pending.remove(&response.id()) {
                    let _ = waiting.send(Ok(response));
                } else {
                    // The answer to INIT or HELLO: we are registered with this manager.
                    let manager = response.from().clone();
                    self.registered.send_if_modified(|current| {
                        let changed = current.as_ref().map(RawAddress::uid) != Some(manager.uid());
                        *current = Some(manager);
                        changed
                    });
                }
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
            }
            Err(e) => debug!(error = %e, "dropped an invalid message from the manager"),
        }
    }

    async fn ask(&mut self, command: String, reply: oneshot::Sender<Result<RawResponse, String>>) {
        let Some(manager) = self.manager.clone() else {
            let _ = reply.send(Err("no service manager known yet (no beacon seen)".into()));
            return;
        };
        let request = RawRequest::new(
            self.config.address.clone(),
            Some(manager),
            ["mgmt".to_owned(), command],
        );
        self.pending.insert(request.id(), reply);
        self.send(request).await;
    }
}

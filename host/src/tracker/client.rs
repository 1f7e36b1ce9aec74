//! Management requests to a service manager: what `plughost services` and
//! `plughost cmd-proc` (the command processor) send.
//!
//! The client behaves as the old command processor did, because an old
//! manager needs exactly that: it listens for a beacon to learn the
//! manager's address, registers (INIT, From `Command Processor:<uuid>`, To
//! the manager, on a DEALER whose identity is its uuid), and addresses
//! every request To the manager (the old manager dereferences the To part
//! and dies without it). The answer to INIT tells the two managers apart
//! without a flag: plughost's manager answers `ok`, the old one its
//! listing. Against plughost's manager the client then says BYE (so it does
//! not list itself) and speaks v2: the JSON listing, error answers, stop
//! and shutdown with the admin token. Against an old manager it sends only
//! what the old command processor sent (`l`) and reads the v1 listing; it
//! refuses, locally and with a reason, what an old manager cannot do.
//!
//! The sockets live on the client's own thread (libzmq sockets are not
//! thread-safe); async callers hand it requests through a channel.

use std::{
    sync::mpsc,
    time::{Duration, Instant},
};

use tokio::sync::oneshot;
use tracing::debug;

use super::{
    curve::ClientCurve,
    manager::{INIT_ANSWER, LIST_JSON},
    registry::ServiceInfo,
    socket::{self, Limits},
    TrackerError, V2_LINE,
};
use crate::proto::{
    address::RawAddress,
    raw::{parse_listing, MgmtCommand, RawMessageType, RawRequest, RawResponse},
    uid::Uid,
};

/// Where a manager is and how to talk to it.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The manager's discovery endpoint (beacons tell its address).
    pub discovery: String,
    /// The manager's management endpoint.
    pub management: String,
    /// How long to wait for the beacon, and for each answer.
    pub timeout: Duration,
    /// Message size and queue limits.
    pub limits: Limits,
    /// CURVE keys, when the manager requires them.
    pub curve: Option<ClientCurve>,
}

impl ClientConfig {
    /// A client of the manager at these endpoints, waiting up to `timeout`.
    /// It accepts answers up to 64 MiB (a v1 listing of 10,000 services is
    /// about 1.4 MB); the manager it talks to is the one the user named.
    pub fn new(
        discovery: impl Into<String>,
        management: impl Into<String>,
        timeout: Duration,
    ) -> Self {
        Self {
            discovery: discovery.into(),
            management: management.into(),
            timeout,
            limits: Limits {
                max_message_size: 64 << 20,
                ..Limits::default()
            },
            curve: None,
        }
    }
}

type Job = (
    Vec<String>,
    oneshot::Sender<Result<RawResponse, TrackerError>>,
);

/// A connection to a manager.
pub struct ManagementClient {
    /// Dropping it ends the client's thread (after its BYE to an old manager).
    jobs: Option<mpsc::Sender<Job>>,
    manager: RawAddress,
    v2: bool,
    endpoint: String,
}

impl ManagementClient {
    /// Finds the manager (its beacon), registers with it and learns whether
    /// it is plughost's (v2) or an old one (v1).
    pub async fn connect(config: ClientConfig) -> Result<Self, TrackerError> {
        let (jobs_tx, jobs) = mpsc::channel::<Job>();
        let (ready_tx, ready) = oneshot::channel();
        let endpoint = config.management.clone();
        std::thread::Builder::new()
            .name("tracker-client".into())
            .spawn(move || match Session::open(&config) {
                Ok(session) => {
                    let _ = ready_tx.send(Ok((session.manager.clone(), session.v2)));
                    session.serve(&jobs);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| TrackerError::Socket {
                what: "management client thread".into(),
                reason: e.to_string(),
            })?;
        let (manager, v2) = match ready.await {
            Ok(found) => found?,
            Err(_) => {
                return Err(TrackerError::Socket {
                    what: "management client thread".into(),
                    reason: "ended before it found the manager".into(),
                })
            }
        };
        Ok(Self {
            jobs: Some(jobs_tx),
            manager,
            v2,
            endpoint,
        })
    }

    /// The manager's address, from its beacon.
    pub fn manager(&self) -> &RawAddress {
        &self.manager
    }

    /// True when the manager is plughost's (it answered INIT with `ok`).
    pub fn is_v2(&self) -> bool {
        self.v2
    }

    /// Sends one management command and waits for its answer. Toward a
    /// plughost manager the request carries the `v2` line.
    pub async fn request(&mut self, command: &str) -> Result<RawResponse, TrackerError> {
        let mut body = vec!["mgmt".to_owned(), command.to_owned()];
        if self.v2 {
            body.push(V2_LINE.to_owned());
        }
        let (tx, rx) = oneshot::channel();
        let stopped = || TrackerError::Socket {
            what: format!("management client of {}", self.endpoint),
            reason: "its thread has ended".into(),
        };
        self.jobs
            .as_ref()
            .ok_or_else(stopped)?
            .send((body, tx))
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// The v1 listing text, as the old manager sends it (one line per
    /// service, each ended by `\n`).
    pub async fn list_text(&mut self) -> Result<String, TrackerError> {
        let response = self.request(&MgmtCommand::List.to_string()).await?;
        Ok(listing_text(&response))
    }

    /// The listing as structured entries: the JSON form from a plughost
    /// manager, the v1 listing read line by line from an old one.
    pub async fn list(&mut self) -> Result<Vec<ServiceInfo>, TrackerError> {
        if !self.v2 {
            let text = self.list_text().await?;
            let entries = parse_listing(&text)
                .map_err(|e| TrackerError::Protocol(format!("old manager's listing: {e}")))?;
            return Ok(entries
                .into_iter()
                .map(|e| ServiceInfo {
                    name: e.service.name().to_owned(),
                    uuid: e.service.uid().to_string(),
                    last_msg_type: e.last_msg_type.as_str().to_owned(),
                    age_secs: e.seconds_since_update,
                    details: None,
                    protocol: String::new(),
                })
                .collect());
        }
        let response = self.request(LIST_JSON).await?;
        let body = response.trimmed_body().join("");
        serde_json::from_str(&body)
            .map_err(|e| TrackerError::Protocol(format!("manager's JSON listing: {e}")))
    }

    /// Asks the manager to stop a service (with the admin token when the
    /// manager has one); returns the manager's answer. An old manager never
    /// implemented stop, so nothing is sent to one.
    pub async fn stop(
        &mut self,
        uid: Uid,
        token: Option<&str>,
    ) -> Result<RawResponse, TrackerError> {
        self.v2_only("stop services")?;
        match token {
            Some(token) => self.request(&format!("s {uid} {token}")).await,
            None => self.request(&MgmtCommand::Stop(uid).to_string()).await,
        }
    }

    /// Asks the manager to shut down (refused without the right token).
    /// Never sent to an old manager, which obeys anyone.
    pub async fn shutdown(&mut self, token: Option<&str>) -> Result<RawResponse, TrackerError> {
        self.v2_only("be shut down from plughost")?;
        match token {
            Some(token) => self.request(&format!("e {token}")).await,
            None => self.request("e").await,
        }
    }

    fn v2_only(&self, what: &str) -> Result<(), TrackerError> {
        if self.v2 {
            Ok(())
        } else {
            Err(TrackerError::OldManager {
                manager: self.manager.to_string(),
                what: what.to_owned(),
            })
        }
    }
}

/// The listing in a response: the body parts joined, each line ended by `\n`.
pub fn listing_text(response: &RawResponse) -> String {
    response
        .trimmed_body()
        .iter()
        .flat_map(|part| part.split('\n'))
        .filter(|line| !line.is_empty())
        .map(|line| format!("{line}\n"))
        .collect()
}

/// The client's thread: its sockets and what it learnt about the manager.
struct Session {
    dealer: zmq::Socket,
    address: RawAddress,
    manager: RawAddress,
    v2: bool,
    endpoint: String,
    timeout: Duration,
    _context: std::sync::Arc<socket::Context>,
}

impl Session {
    fn open(config: &ClientConfig) -> Result<Self, TrackerError> {
        let context = socket::shared_context()?;
        let uid = Uid::new_v4();
        let address = RawAddress::new("Command Processor", uid)
            .map_err(|e| TrackerError::Protocol(e.to_string()))?;
        let beacons = context.socket(zmq::SUB)?;
        let dealer = context.socket(zmq::DEALER)?;
        for s in [&beacons, &dealer] {
            socket::apply_limits(s, &config.limits)?;
            if let Some(curve) = &config.curve {
                curve.apply(s)?;
            }
        }
        let options = || -> zmq::Result<()> {
            beacons.set_subscribe(b"")?;
            dealer.set_identity(uid.to_string().as_bytes())?;
            dealer.set_linger(500)?;
            Ok(())
        };
        options().map_err(|e| TrackerError::Socket {
            what: "management client socket options".into(),
            reason: e.to_string(),
        })?;
        socket::connect(&beacons, &config.discovery)?;
        socket::connect(&dealer, &config.management)?;
        let manager = wait_for_beacon(&beacons, config)?;
        drop(beacons);
        let mut session = Self {
            dealer,
            address,
            manager,
            v2: false,
            endpoint: config.management.clone(),
            timeout: config.timeout,
            _context: context,
        };
        let init = RawRequest::of_type(
            session.address.clone(),
            session.manager.clone(),
            RawMessageType::Init,
        );
        let answer = session.exchange(&init)?;
        session.v2 = answer.trimmed_body() == [INIT_ANSWER];
        if session.v2 {
            session.bye();
        }
        Ok(session)
    }

    fn serve(self, jobs: &mpsc::Receiver<Job>) {
        while let Ok((body, reply)) = jobs.recv() {
            let request = RawRequest::new(self.address.clone(), Some(self.manager.clone()), body);
            let _ = reply.send(self.exchange(&request));
        }
        if !self.v2 {
            self.bye();
        }
    }

    fn bye(&self) {
        let bye = RawRequest::of_type(
            self.address.clone(),
            self.manager.clone(),
            RawMessageType::Bye,
        );
        if let Err(e) = self.dealer.send(bye.serialize(), 0) {
            debug!(error = %e, "cannot say bye to the service manager");
        }
    }

    /// Sends `request` and waits for the response with its id; answers to
    /// earlier, timed-out requests are skipped.
    fn exchange(&self, request: &RawRequest) -> Result<RawResponse, TrackerError> {
        self.dealer
            .send(request.serialize(), 0)
            .map_err(|e| TrackerError::Connect {
                endpoint: self.endpoint.clone(),
                reason: e.to_string(),
            })?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !readable(&self.dealer, left) {
                return Err(TrackerError::Timeout {
                    endpoint: self.endpoint.clone(),
                    timeout_ms: self.timeout.as_millis() as u64,
                });
            }
            while let Ok(frames) = self.dealer.recv_multipart(zmq::DONTWAIT) {
                match RawResponse::parse_frames(frames.iter()) {
                    Ok(response) if response.id() == request.id() => return Ok(response),
                    _ => continue,
                }
            }
        }
    }
}

/// Waits up to the timeout for a beacon on `beacons`; the manager's address.
fn wait_for_beacon(
    beacons: &zmq::Socket,
    config: &ClientConfig,
) -> Result<RawAddress, TrackerError> {
    let deadline = Instant::now() + config.timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !readable(beacons, left) {
            return Err(TrackerError::NoBeacon {
                endpoint: config.discovery.clone(),
                timeout_ms: config.timeout.as_millis() as u64,
            });
        }
        while let Ok(frames) = beacons.recv_multipart(zmq::DONTWAIT) {
            if let Ok(beacon) = RawRequest::parse_frames(frames.iter()) {
                if beacon.message_type() == Some(RawMessageType::Hello) && beacon.to().is_none() {
                    return Ok(beacon.from().clone());
                }
            }
        }
    }
}

fn readable(socket: &zmq::Socket, within: Duration) -> bool {
    let timeout = i64::try_from(within.as_millis()).unwrap_or(i64::MAX).max(1);
    matches!(socket.poll(zmq::POLLIN, timeout), Ok(n) if n > 0)
}

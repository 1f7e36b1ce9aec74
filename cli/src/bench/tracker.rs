//! Simulated services for `plughost bench tracker`: many services
//! heartbeating a manager once a second, over a few connections.
//!
//! Each simulated service sends HELLO addressed To the manager (which the
//! manager accepts from any connection, docs/wire.md "Authenticity"), so N
//! services need only a handful of TCP connections; the manager's work per
//! message is the same as for N real services.

use std::time::{Duration, Instant};

use plughost::tracker::{
    client::{ClientConfig, ManagementClient},
    socket, TrackerError,
};
use plughost_proto::{
    address::RawAddress,
    raw::{RawMessageType, RawRequest},
    uid::Uid,
};

/// What the simulation did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrackerLoad {
    /// Services simulated.
    pub services: usize,
    /// HELLOs sent.
    pub hellos: u64,
    /// Answers received.
    pub answers: u64,
    /// Average time to list every service (v1 text), ms.
    pub list_ms: f64,
    /// Services the listing showed at the end.
    pub listed: usize,
}

/// Registers `services` simulated services with the manager at `discovery`
/// and `management` and keeps them heartbeating every second for
/// `duration`, over `connections` DEALER sockets (one thread each, as
/// libzmq sockets stay on one thread); then times five listings.
pub async fn simulate(
    discovery: &str,
    management: &str,
    services: usize,
    connections: usize,
    duration: Duration,
) -> Result<TrackerLoad, TrackerError> {
    let mut config = ClientConfig::new(discovery, management, Duration::from_secs(10));
    // A v1 listing of 10,000 services is about 1.4 MB.
    config.limits.max_message_size = 64 << 20;
    let mut client = ManagementClient::connect(config).await?;
    let manager = client.manager().clone();
    let connections = connections.clamp(1, services.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        let share = services / connections + usize::from(c < services % connections);
        let (management, manager) = (management.to_owned(), manager.clone());
        tasks.spawn_blocking(move || heartbeat(&management, &manager, share, duration));
    }
    let (mut hellos, mut answers) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        if let Ok(Ok((h, a))) = done {
            hellos += h;
            answers += a;
        }
    }
    let mut total = Duration::ZERO;
    let mut listed = 0;
    for _ in 0..5 {
        let started = Instant::now();
        let text = client.list_text().await?;
        total += started.elapsed();
        listed = text.lines().count();
    }
    Ok(TrackerLoad {
        services,
        hellos,
        answers,
        list_ms: total.as_secs_f64() * 1000.0 / 5.0,
        listed,
    })
}

/// One connection's share: INIT each service, then HELLO each once a second.
fn heartbeat(
    management: &str,
    manager: &RawAddress,
    services: usize,
    duration: Duration,
) -> Result<(u64, u64), TrackerError> {
    let context = socket::shared_context()?;
    let dealer = context.socket(zmq::DEALER)?;
    let limits = socket::Limits {
        hwm: u32::try_from(services.max(1000)).unwrap_or(u32::MAX),
        ..socket::Limits::default()
    };
    socket::apply_limits(&dealer, &limits)?;
    dealer
        .set_identity(Uid::new_v4().to_string().as_bytes())
        .map_err(|e| TrackerError::Socket {
            what: "bench DEALER identity".into(),
            reason: e.to_string(),
        })?;
    socket::connect(&dealer, management)?;
    let addresses: Vec<RawAddress> = (0..services)
        .filter_map(|i| RawAddress::new(format!("Simulated {i}"), Uid::new_v4()).ok())
        .collect();
    let (mut sent, mut answered) = (0u64, 0u64);
    let stop_at = Instant::now() + duration;
    let mut kind = RawMessageType::Init;
    let mut next = Instant::now();
    let drain = |until: Instant| {
        let mut n = 0;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let ms = i64::try_from(left.as_millis()).unwrap_or(0);
            if !matches!(dealer.poll(zmq::POLLIN, ms), Ok(r) if r > 0) {
                return n;
            }
            while dealer.recv_bytes(zmq::DONTWAIT).is_ok() {
                n += 1;
            }
            if left.is_zero() {
                return n;
            }
        }
    };
    while Instant::now() < stop_at {
        for address in &addresses {
            let request = RawRequest::of_type(address.clone(), manager.clone(), kind);
            if dealer.send(request.serialize(), 0).is_ok() {
                sent += 1;
            }
        }
        kind = RawMessageType::Hello;
        next += Duration::from_secs(1);
        // Take the answers while waiting for the next second.
        answered += drain(next.min(stop_at));
    }
    answered += drain(Instant::now() + Duration::from_millis(200));
    Ok((sent, answered))
}

//! Simulated services for `plughost bench tracker`: many services
//! heartbeating a manager once a second, over a few connections.
//!
//! Each simulated service sends HELLO addressed To the manager (which the
//! manager accepts from any connection, WIRE.md "Authenticity"), so N
//! services need only a handful of TCP connections; the manager's work per
//! message is the same as for N real services.

use std::time::{Duration, Instant};

use zeromq::{Socket, SocketRecv, SocketSend, ZmqMessage};

use plughost::tracker::{client::ManagementClient, TrackerError};
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

/// Registers `services` simulated services with the manager at `management`
/// and keeps them heartbeating every second for `duration`, over
/// `connections` DEALER sockets; then times five listings.
pub async fn simulate(
    management: &str,
    services: usize,
    connections: usize,
    duration: Duration,
) -> Result<TrackerLoad, TrackerError> {
    let mut client = ManagementClient::connect(management, Duration::from_secs(10)).await?;
    let manager = client.request("l").await?.from().clone();
    let connections = connections.clamp(1, services.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        let share = services / connections + usize::from(c < services % connections);
        let (management, manager) = (management.to_owned(), manager.clone());
        tasks.spawn(async move { heartbeat(&management, &manager, share, duration).await });
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
async fn heartbeat(
    management: &str,
    manager: &RawAddress,
    services: usize,
    duration: Duration,
) -> Result<(u64, u64), TrackerError> {
    let mut dealer = plughost::tracker::dealer_with_identity(Uid::new_v4())?;
    dealer
        .connect(management)
        .await
        .map_err(|e| TrackerError::Connect {
            endpoint: management.to_owned(),
            reason: e.to_string(),
        })?;
    let addresses: Vec<RawAddress> = (0..services)
        .filter_map(|i| RawAddress::new(format!("Simulated {i}"), Uid::new_v4()).ok())
        .collect();
    let (mut sent, mut answered) = (0u64, 0u64);
    let stop_at = Instant::now() + duration;
    let mut kind = RawMessageType::Init;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while Instant::now() < stop_at {
        tick.tick().await;
        for address in &addresses {
            let request = RawRequest::of_type(address.clone(), manager.clone(), kind);
            if dealer
                .send(ZmqMessage::from(request.serialize()))
                .await
                .is_ok()
            {
                sent += 1;
            }
        }
        kind = RawMessageType::Hello;
        // Drain the answers that arrived, without waiting past the second.
        while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(1), dealer.recv()).await {
            answered += 1;
        }
    }
    while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(200), dealer.recv()).await {
        answered += 1;
    }
    Ok((sent, answered))
}

//! Load generation for `plughost bench`: closed-loop workers that each keep
//! one call in flight for a fixed time, with latencies in an HDR histogram.
//!
//! - [`run_calls`]: plughost's own client against running hosts.
//! - [`baseline`]: the practical limit of the broker on this machine: the
//!   same request/reply pattern (mandatory + confirms, the same reply
//!   mechanism, ack after reply) written with bare lapin and a trivial echo
//!   consumer, with no plughost code on the path.
//! - [`tracker`]: simulated services heartbeating a service manager.

mod baseline;
mod report;
pub mod tracker;

use std::{
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

pub use baseline::baseline;
pub use report::BenchReport;
use serde_json::Value;

use plughost_client::{Client, RpcError};

/// How hard and how long to push.
#[derive(Debug, Clone, Copy)]
pub struct LoadShape {
    /// Calls kept in flight at once.
    pub concurrency: usize,
    /// How long to measure.
    pub duration: Duration,
}

/// Counts completed calls so a progress bar can follow along.
pub type Progress = Arc<AtomicU64>;

/// Runs `shape.concurrency` workers, each calling `one_call` in a loop until
/// `shape.duration` has passed, and merges what they measured.
pub async fn closed_loop<F, Fut>(shape: LoadShape, progress: Progress, one_call: F) -> BenchReport
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), u16>> + Send,
{
    let started = Instant::now();
    let stop_at = started + shape.duration;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..shape.concurrency.max(1) {
        let one_call = one_call.clone();
        let progress = Arc::clone(&progress);
        workers.spawn(async move {
            let mut report = BenchReport::empty();
            while Instant::now() < stop_at {
                let t0 = Instant::now();
                let outcome = one_call().await;
                report.record(t0.elapsed(), outcome.err());
                progress.fetch_add(1, Ordering::Relaxed);
            }
            report
        });
    }
    let mut total = BenchReport::empty();
    while let Some(done) = workers.join_next().await {
        if let Ok(report) = done {
            total.merge(&report);
        }
    }
    total.elapsed = started.elapsed();
    total
}

/// Benchmarks `method` through plughost: one find (v1 fallback included),
/// then calls on the found route in a closed loop over one shared client.
pub async fn run_calls(
    client: Arc<Client>,
    method: &str,
    args: Vec<Value>,
    shape: LoadShape,
    progress: Progress,
) -> Result<BenchReport, RpcError> {
    // Old deployments too: the find falls back to v1 and the calls follow it.
    let found = client
        .resolve(method, client.options().find_timeout)
        .await?;
    if found.reply.route.is_none() {
        return Err(RpcError::MethodNotFound {
            method: method.to_owned(),
        });
    }
    if found.protocol == plughost_client::wire::Protocol::V1 {
        tracing::info!(
            method,
            "a v1 name service answered: benchmarking the old text protocol"
        );
    }
    let found = Arc::new(found);
    let args = Arc::new(args);
    Ok(closed_loop(shape, progress, move || {
        let (client, found, args) = (Arc::clone(&client), Arc::clone(&found), Arc::clone(&args));
        async move {
            client
                .call_found(&found, &args)
                .await
                .map(|_| ())
                .map_err(|e| e.code())
        }
    })
    .await)
}

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

/// Benchmarks `method` through plughost: one find, then `call_route` in a
/// closed loop over one shared client.
pub async fn run_calls(
    client: Arc<Client>,
    method: &str,
    args: Vec<Value>,
    shape: LoadShape,
    progress: Progress,
) -> Result<BenchReport, RpcError> {
    let route = client.find(method).await?;
    let method: Arc<str> = method.into();
    let args = Arc::new(args);
    let route: Arc<str> = route.into();
    Ok(closed_loop(shape, progress, move || {
        let (client, method, args, route) = (
            Arc::clone(&client),
            Arc::clone(&method),
            Arc::clone(&args),
            Arc::clone(&route),
        );
        async move {
            client
                .call_route(&route, &method, &args)
                .await
                .map(|_| ())
                .map_err(|e| e.code())
        }
    })
    .await)
}

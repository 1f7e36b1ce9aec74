//! Load generation for `plughost bench`: closed-loop workers that each keep
//! one call in flight for a fixed time, with latencies in an HDR histogram.
//!
//! - [`run_calls`]: plughost's own client against running hosts.
//! - [`baseline`]: the practical limit of the broker on this machine: a
//!   two-process bare-lapin request/reply pair (a server process computing
//!   fib(n), a client with direct reply-to), with no plughost code on the
//!   path.
//! - [`tracker`]: simulated services heartbeating a service manager.

mod baseline;
pub mod cpu;
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

pub use baseline::{baseline, serve_pair, PairNames};
pub use report::BenchReport;
use serde_json::Value;

use plughost_client::{Client, Found, RpcError};

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

/// What a `bench call` worker does per iteration besides the call itself.
#[derive(Debug, Clone, Default)]
pub struct CallPlan {
    /// Read back after every successful call: call this method with the
    /// call's first argument and expect the call's last argument (a store's
    /// `get` after its `put`). A different answer counts as an error with
    /// code [`READ_BACK_MISMATCH`].
    pub read_back: Option<String>,
}

/// The error code a read-back that gave another value is counted under
/// (no reply carries it).
pub const READ_BACK_MISMATCH: u16 = 0;

/// The placeholder in a string argument that each call replaces with its
/// own number (0, 1, 2, ... across all workers), so calls can write
/// distinct keys.
pub const CALL_NUMBER: &str = "{n}";

/// `args` with [`CALL_NUMBER`] replaced by `n` in every string.
fn numbered(args: &[Value], n: u64) -> Vec<Value> {
    args.iter()
        .map(|a| match a {
            Value::String(s) if s.contains(CALL_NUMBER) => {
                Value::String(s.replace(CALL_NUMBER, &n.to_string()))
            }
            other => other.clone(),
        })
        .collect()
}

/// Benchmarks `method` through plughost: one find (v1 fallback included),
/// then calls on the found route in a closed loop over one shared client.
/// String arguments may hold [`CALL_NUMBER`]; `plan` may add a read-back
/// per call.
pub async fn run_calls(
    client: Arc<Client>,
    method: &str,
    args: Vec<Value>,
    plan: CallPlan,
    shape: LoadShape,
    progress: Progress,
) -> Result<BenchReport, RpcError> {
    // Old deployments too: the find falls back to v1 and the calls follow it.
    let found = resolve_route(&client, method).await?;
    let read_back = match &plan.read_back {
        Some(m) => Some(Arc::new(resolve_route(&client, m).await?)),
        None => None,
    };
    let numbered_args = args
        .iter()
        .any(|a| a.as_str().is_some_and(|s| s.contains(CALL_NUMBER)));
    let counter = Arc::new(AtomicU64::new(0));
    let found = Arc::new(found);
    let args = Arc::new(args);
    Ok(closed_loop(shape, progress, move || {
        let (client, found, args, read_back, counter) = (
            Arc::clone(&client),
            Arc::clone(&found),
            Arc::clone(&args),
            read_back.clone(),
            Arc::clone(&counter),
        );
        async move {
            let args = if numbered_args {
                numbered(&args, counter.fetch_add(1, Ordering::Relaxed))
            } else {
                args.to_vec()
            };
            client
                .call_found(&found, &args)
                .await
                .map_err(|e| e.code())?;
            let Some(read_back) = read_back else {
                return Ok(());
            };
            let (Some(key), Some(expected)) = (args.first(), args.last()) else {
                return Ok(());
            };
            let got = client
                .call_found(&read_back, std::slice::from_ref(key))
                .await
                .map_err(|e| e.code())?;
            if &got == expected {
                Ok(())
            } else {
                Err(READ_BACK_MISMATCH)
            }
        }
    })
    .await)
}

/// The route `method` is served on, by a v2 or (for old deployments) a v1
/// name service.
async fn resolve_route(client: &Client, method: &str) -> Result<Found, RpcError> {
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
    Ok(found)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn each_call_gets_its_number_in_place_of_the_placeholder() {
        let args = [json!("k/{n}"), json!("{n}"), json!(7)];
        assert_eq!(numbered(&args, 42), [json!("k/42"), json!("42"), json!(7)]);
    }
}

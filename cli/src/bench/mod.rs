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

/// Benchmarks `method` through plughost: one find, then `call_route` in a
/// closed loop over one shared client. String arguments may hold
/// [`CALL_NUMBER`]; `plan` may add a read-back per call.
pub async fn run_calls(
    client: Arc<Client>,
    method: &str,
    args: Vec<Value>,
    plan: CallPlan,
    shape: LoadShape,
    progress: Progress,
) -> Result<BenchReport, RpcError> {
    let route = client.find(method).await?;
    let read_route = match &plan.read_back {
        Some(m) => Some((
            Arc::<str>::from(m.as_str()),
            Arc::<str>::from(client.find(m).await?),
        )),
        None => None,
    };
    let numbered_args = args
        .iter()
        .any(|a| a.as_str().is_some_and(|s| s.contains(CALL_NUMBER)));
    let counter = Arc::new(AtomicU64::new(0));
    let method: Arc<str> = method.into();
    let args = Arc::new(args);
    let route: Arc<str> = route.into();
    Ok(closed_loop(shape, progress, move || {
        let (client, method, args, route, read_route, counter) = (
            Arc::clone(&client),
            Arc::clone(&method),
            Arc::clone(&args),
            Arc::clone(&route),
            read_route.clone(),
            Arc::clone(&counter),
        );
        async move {
            let args = if numbered_args {
                numbered(&args, counter.fetch_add(1, Ordering::Relaxed))
            } else {
                args.to_vec()
            };
            client
                .call_route(&route, &method, &args)
                .await
                .map_err(|e| e.code())?;
            let Some((read_method, read_route)) = read_route else {
                return Ok(());
            };
            let (Some(key), Some(expected)) = (args.first(), args.last()) else {
                return Ok(());
            };
            let got = client
                .call_route(&read_route, &read_method, std::slice::from_ref(key))
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

//! The per-call path shared by v1 and v2: find the method in the current
//! registry, respect its concurrency limit and timeout, run the plugin on the
//! blocking pool, and turn every outcome into a result or a coded error.

use std::time::{Duration, Instant};

use plughost_plugin_api::codes;

use super::wire::v2::ErrorBody;
use crate::plugins::{HostCall, Registry};

/// Runs `method` with `args_json` (a JSON array) and returns the result as
/// JSON text. `deadline` is the caller's, when it sent one.
pub async fn dispatch(
    registry: &Registry,
    method: &str,
    args_json: String,
    deadline: Option<Instant>,
) -> Result<String, ErrorBody> {
    let entry = registry
        .method(method)
        .ok_or_else(|| ErrorBody::new(codes::NOT_FOUND, format!("unknown method `{method}`")))?;
    let budget = match deadline {
        Some(d) => match d.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => left.min(entry.timeout),
            _ => return Err(deadline_passed(method)),
        },
        None => entry.timeout,
    };
    let started = Instant::now();
    // Uncontended calls skip the timer: most calls find a free permit.
    let permit = match entry.limiter.clone().try_acquire_owned() {
        Ok(permit) => permit,
        Err(_) => match tokio::time::timeout(budget, entry.limiter.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => {
                return Err(ErrorBody::new(
                    codes::UNAVAILABLE,
                    format!("method `{method}` is shutting down"),
                ))
            }
            Err(_) => return Err(timed_out(method, budget)),
        },
    };
    let plugin = entry.plugin.clone();
    let name = method.to_owned();
    let call = tokio::task::spawn_blocking(move || {
        let call = HostCall::new(plugin.name(), &name, "v2").deadline(deadline);
        let result = plugin.call_json(&name, &args_json, &call);
        drop(permit);
        result
    });
    let left = budget.saturating_sub(started.elapsed());
    match tokio::time::timeout(left, call).await {
        Ok(Ok(result)) => result.map_err(ErrorBody::from),
        Ok(Err(join)) => Err(ErrorBody::new(
            codes::FAILED,
            format!("method `{method}` failed in the host: {join}"),
        )),
        Err(_) => Err(timed_out(method, budget)),
    }
}

fn deadline_passed(method: &str) -> ErrorBody {
    ErrorBody::new(
        codes::DEADLINE_EXCEEDED,
        format!("call to `{method}` arrived after its deadline; not run"),
    )
}

fn timed_out(method: &str, budget: Duration) -> ErrorBody {
    ErrorBody::new(
        codes::DEADLINE_EXCEEDED,
        format!(
            "method `{method}` did not finish within {} ms",
            budget.as_millis()
        ),
    )
}

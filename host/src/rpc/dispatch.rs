//! The per-call path shared by v1 and v2: find the method in the current
//! registry, respect its concurrency limit and timeout, run the plugin on its
//! own threads (its [`PluginPool`](plughost_loader::pool::PluginPool)), or
//! inline when its author declared it non-blocking ([`super::inline`]), and
//! turn every outcome into a result or a coded error.
//!
//! A call's clock starts when its request was delivered, not when a permit
//! or a thread becomes free: the time it waits for either counts against
//! its timeout (and the caller's deadline), and a call still waiting when
//! that runs out is answered 504 and never run.
//!
//! A call enters its plugin instance through the instance's gate
//! ([`PluginHandle::admit`]): while an instance hands its state over to its
//! replacement, calls wait here (bounded by their deadline) and then go to
//! the replacement, so none reaches the old instance after its export.
//! The plugin sees the call's deadline as its [`HostCall`] context, so a
//! method that waits on cancellation wakes when the host answers 504; when
//! it returns after its cancellation the host logs it as cancelled.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use plughost_plugin_api::{codes, PluginError};
use tokio::sync::{oneshot, OwnedSemaphorePermit};
use tracing::{info, warn};

use plughost_loader::{pool::PoolJob, Admission, CancelReason, HostCall, NotAdmitted, PluginState};
use plughost_proto::rpc::v2::ErrorBody;

use super::inline;
use crate::{
    metrics::{CallTimer, MethodMeter},
    plugins::{PluginHandle, Registry},
};

/// Where a call came from, for the plugin's [`HostCall`] context and its logs.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// `v1`, `v2` or `local`.
    pub protocol: &'static str,
    /// The caller's correlation id (empty when it sent none).
    pub correlation_id: &'a str,
}

/// Runs `method` with `args_json` (a JSON array, or an object of named
/// arguments) and returns the result as JSON text. `received` is when the
/// request arrived; `deadline` is the caller's, when it sent one.
///
/// Every call is counted here, once, for `/metrics` (by plugin, method,
/// protocol and code, with its latency), whichever transport brought it.
pub async fn dispatch(
    registry: &Registry,
    method: &str,
    args_json: String,
    received: Instant,
    deadline: Option<Instant>,
    origin: Origin<'_>,
) -> Result<String, ErrorBody> {
    let meter = registry
        .method(method)
        .map_or_else(MethodMeter::unknown, |e| e.meter());
    let timer = CallTimer::start(meter, origin.protocol);
    let result = run(
        registry, method, args_json, received, deadline, origin, &timer,
    )
    .await;
    match &result {
        Ok(_) => timer.finish(200, None),
        Err(e) => timer.finish(e.code, Some(&e.message)),
    }
    result
}

/// [`dispatch`] without the counting.
async fn run(
    registry: &Registry,
    method: &str,
    args_json: String,
    received: Instant,
    deadline: Option<Instant>,
    origin: Origin<'_>,
    timer: &CallTimer,
) -> Result<String, ErrorBody> {
    let entry = registry
        .method(method)
        .ok_or_else(|| ErrorBody::new(codes::NOT_FOUND, format!("unknown method `{method}`")))?;
    let timeout_end = received + entry.timeout;
    let end = deadline.map_or(timeout_end, |d| d.min(timeout_end));
    let budget = end.saturating_duration_since(received);
    if Instant::now() >= end {
        return Err(deadline_passed(method));
    }
    // Uncontended calls skip the timer: most calls find a free permit.
    let permit = match entry.limiter.clone().try_acquire_owned() {
        Ok(permit) => permit,
        Err(_) => {
            timer.waited_for_limit();
            match tokio::time::timeout_at(end.into(), entry.limiter.clone().acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) => {
                    return Err(ErrorBody::new(
                        codes::UNAVAILABLE,
                        format!("method `{method}` is shutting down"),
                    ))
                }
                Err(_) => return Err(timed_out(method, budget)),
            }
        }
    };
    let admission = admit(&entry.plugin, method, end, budget).await?;
    let plugin = Arc::clone(admission.plugin());
    let (reply, result) = oneshot::channel();
    // A qualified name (`math.fibo`) reaches the plugin as its bare name.
    let method = entry.name.as_str();
    let context = HostCall::new(plugin.name(), method, origin.protocol)
        .deadline(Some(end))
        .correlation_id(origin.correlation_id)
        .scope(Arc::clone(plugin.cancel_scope()));
    if plugin.runs_inline(method) {
        // Declared non-blocking: no hand-off to the pool (see `inline`).
        let result = inline::call(&admission, method, &args_json, &context);
        drop(permit);
        if let Some(reason) = context.cancel_reason() {
            log_cancelled(&admission, method, &context, reason);
        }
        drop(admission);
        return result
            .inspect_err(|e| crate::faults::plugin_error(plugin.name(), method, e))
            .map_err(error_body);
    }
    let call = PluginCall {
        admission,
        method: method.to_owned(),
        args_json,
        context,
        permit,
        reply,
    };
    plugin
        .pool()
        .submit(Box::new(call), end)
        .map_err(|e| ErrorBody::new(codes::UNAVAILABLE, e.to_string()))?;
    match tokio::time::timeout_at(end.into(), result).await {
        Ok(Ok(Some(result))) => result
            .inspect_err(|e| crate::faults::plugin_error(plugin.name(), method, e))
            .map_err(error_body),
        Ok(Ok(None)) | Err(_) => Err(timed_out(method, budget)),
        Ok(Err(_)) => Err(ErrorBody::new(
            codes::FAILED,
            format!("method `{method}` failed in the host: its thread ended without an answer"),
        )),
    }
}

/// Lets the call into `plugin`, or into the instance that took over from
/// it; waits while the instance is not serving (loading its predecessor's
/// state, or handing its own over), until `end`.
async fn admit(
    plugin: &Arc<PluginHandle>,
    method: &str,
    end: Instant,
    budget: Duration,
) -> Result<Admission, ErrorBody> {
    let mut plugin = Arc::clone(plugin);
    loop {
        match plugin.admit() {
            Ok(admission) => return Ok(admission),
            Err(NotAdmitted::Moved) => {
                if let Some(next) = plugin.successor() {
                    plugin = Arc::clone(next);
                }
            }
            Err(NotAdmitted::Wait) => {
                let changes = plugin.state_changes();
                // Look again after subscribing: a change in between is not lost.
                let state = plugin.state();
                if state == PluginState::Serving || plugin.successor().is_some() {
                    continue;
                }
                if state == PluginState::Retired {
                    return Err(ErrorBody::new(
                        codes::UNAVAILABLE,
                        format!(
                            "method `{method}`: plugin {} was removed from this host",
                            plugin.name()
                        ),
                    ));
                }
                if tokio::time::timeout_at(end.into(), changes.changed())
                    .await
                    .is_err()
                {
                    return Err(timed_out(method, budget));
                }
            }
        }
    }
}

/// One call waiting for, or running on, a plugin thread. The method's
/// permit is held until the plugin returns, even past the timeout, so calls
/// that overrun cannot pile up beyond the method's limit; the admission
/// keeps it in flight on its instance until then, so a drain waits for it.
struct PluginCall {
    admission: Admission,
    method: String,
    args_json: String,
    context: HostCall,
    permit: OwnedSemaphorePermit,
    /// `None`: it expired in the queue and did not run.
    reply: oneshot::Sender<Option<Result<String, PluginError>>>,
}

impl PoolJob for PluginCall {
    fn run(self: Box<Self>) {
        let Self {
            admission,
            method,
            args_json,
            context,
            permit,
            reply,
        } = *self;
        let result = admission.call_json(&method, &args_json, &context);
        drop(permit);
        if let Some(reason) = context.cancel_reason() {
            log_cancelled(&admission, &method, &context, reason);
        }
        drop(admission);
        let _ = reply.send(Some(result));
    }

    fn expire(self: Box<Self>) {
        let _ = self.reply.send(None);
    }
}

/// A call that returned after it was cancelled: named as cancelled (and how
/// long after its deadline it returned), so it does not read as stuck.
fn log_cancelled(admission: &Admission, method: &str, context: &HostCall, reason: CancelReason) {
    let after_deadline_ms = context
        .deadline_at()
        .map(|d| Instant::now().saturating_duration_since(d).as_millis() as u64);
    let id = context.caller_correlation_id();
    let (plugin, instance) = (admission.plugin().name(), admission.plugin().id().get());
    let correlation_id = (!id.is_empty()).then_some(id);
    let message = "call cancelled; the plugin returned after its cancellation";
    match reason {
        // The caller was answered 504: worth an operator's eye.
        CancelReason::DeadlinePassed => warn!(
            plugin,
            instance,
            method,
            correlation_id,
            reason = reason.as_str(),
            after_deadline_ms,
            "{message}"
        ),
        CancelReason::Host => info!(
            plugin,
            instance,
            method,
            correlation_id,
            reason = reason.as_str(),
            after_deadline_ms,
            "{message}"
        ),
    }
}

/// A plugin's error as a v2 error reply: the same three fields.
pub fn error_body(e: PluginError) -> ErrorBody {
    ErrorBody {
        code: e.code,
        help: e.help().map(str::to_owned),
        message: e.message.into_string(),
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

#[cfg(test)]
mod tests {
    use plughost_plugin_api::codes as plugin;
    use plughost_proto::rpc::v2::codes as wire;

    #[test]
    fn plugins_and_the_wire_use_the_same_codes() {
        let pairs = [
            (plugin::BAD_ARGUMENTS, wire::BAD_ARGUMENTS),
            (plugin::FORBIDDEN, wire::FORBIDDEN),
            (plugin::NOT_FOUND, wire::NOT_FOUND),
            (plugin::FAILED, wire::FAILED),
            (plugin::UNAVAILABLE, wire::UNAVAILABLE),
            (plugin::DEADLINE_EXCEEDED, wire::DEADLINE_EXCEEDED),
        ];
        for (p, w) in pairs {
            assert_eq!(p, w);
        }
    }
}

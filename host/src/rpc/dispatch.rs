//! The per-call path shared by v1 and v2: find the method in the current
//! registry, respect its concurrency limit and timeout, run the plugin on its
//! own threads (its [`PluginPool`](plughost_loader::pool::PluginPool)), and
//! turn every outcome into a result or a coded error.
//!
//! A call's clock starts when its request was delivered, not when a permit
//! or a thread becomes free: the time it waits for either counts against
//! its timeout (and the caller's deadline), and a call still waiting when
//! that runs out is answered 504 and never run.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use plughost_plugin_api::{codes, PluginError};
use tokio::sync::{oneshot, OwnedSemaphorePermit};

use plughost_loader::{pool::PoolJob, HostCall};
use plughost_proto::rpc::v2::ErrorBody;

use crate::plugins::{PluginHandle, Registry};

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
pub async fn dispatch(
    registry: &Registry,
    method: &str,
    args_json: String,
    received: Instant,
    deadline: Option<Instant>,
    origin: Origin<'_>,
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
    let (reply, result) = oneshot::channel();
    // A qualified name (`math.fibo`) reaches the plugin as its bare name.
    let method = entry.name.as_str();
    let context = HostCall::new(entry.plugin.name(), method, origin.protocol)
        .deadline(Some(end))
        .correlation_id(origin.correlation_id);
    let call = PluginCall {
        plugin: Arc::clone(&entry.plugin),
        method: method.to_owned(),
        args_json,
        context,
        permit,
        reply,
    };
    entry
        .plugin
        .pool()
        .submit(Box::new(call), end)
        .map_err(|e| ErrorBody::new(codes::UNAVAILABLE, e.to_string()))?;
    match tokio::time::timeout_at(end.into(), result).await {
        Ok(Ok(Some(result))) => result
            .inspect_err(|e| crate::faults::plugin_error(entry.plugin.name(), method, e))
            .map_err(error_body),
        Ok(Ok(None)) | Err(_) => Err(timed_out(method, budget)),
        Ok(Err(_)) => Err(ErrorBody::new(
            codes::FAILED,
            format!("method `{method}` failed in the host: its thread ended without an answer"),
        )),
    }
}

/// One call waiting for, or running on, a plugin thread. The method's
/// permit is held until the plugin returns, even past the timeout, so calls
/// that overrun cannot pile up beyond the method's limit.
struct PluginCall {
    plugin: Arc<PluginHandle>,
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
            plugin,
            method,
            args_json,
            context,
            permit,
            reply,
        } = *self;
        let result = plugin.call_json(&method, &args_json, &context);
        drop(permit);
        let _ = reply.send(Some(result));
    }

    fn expire(self: Box<Self>) {
        let _ = self.reply.send(None);
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

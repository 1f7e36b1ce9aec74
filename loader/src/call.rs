//! [`HostCall`]: the host's side of one call's [`CallContext`]: its
//! deadline, its cancellation and who asked.
//!
//! A call is cancelled when its deadline passes (no timer is needed: every
//! question compares the clock with the deadline, and `wait_cancelled`
//! sleeps no longer than the time left) or when the host cancels it
//! ([`HostCall::cancel`]: shutdown, or retiring the instance).
//!
//! Log records a plugin writes while serving a call carry the call's
//! correlation id, also when the plugin logs through the plain
//! `plughost_plugin_api::log` function: the call's id is kept in a
//! thread-local for as long as the plugin runs on this thread
//! ([`HostCall::enter`]), and the host's log callback reads it.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Condvar, Mutex,
    },
    time::{Duration, Instant},
};

use abi_stable::std_types::RStr;
use plughost_plugin_api::{context::remaining_ms, ffi::CallContext, LogLevel};

use crate::host_api::{emit_for_call, enter_call, Entered};

/// One call as the host tells a plugin about it.
#[derive(Debug)]
pub struct HostCall {
    deadline: Option<Instant>,
    correlation_id: String,
    protocol: &'static str,
    method: String,
    plugin: String,
    cancelled: AtomicBool,
    lock: Mutex<()>,
    changed: Condvar,
}

impl HostCall {
    /// A call of `plugin.method` that arrived over `protocol` (`v1`, `v2`,
    /// `local`, `in-process`).
    pub fn new(plugin: &str, method: &str, protocol: &'static str) -> Self {
        Self {
            deadline: None,
            correlation_id: String::new(),
            protocol,
            method: format!("{plugin}.{method}"),
            plugin: plugin.to_owned(),
            cancelled: AtomicBool::new(false),
            lock: Mutex::new(()),
            changed: Condvar::new(),
        }
    }

    /// Gives it a deadline.
    pub fn deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Gives it the caller's correlation id.
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = id.into();
        self
    }

    /// Cancels it, waking the plugin if it waits on the signal.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        let _guard = self.lock.lock();
        self.changed.notify_all();
    }

    /// True once cancelled or past its deadline.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst) || self.remaining().is_some_and(|r| r.is_zero())
    }

    fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Marks this thread as running the call until the guard drops, so log
    /// records the plugin writes carry its correlation id.
    pub(crate) fn enter(&self) -> Entered {
        enter_call(&self.correlation_id)
    }
}

impl CallContext for HostCall {
    fn remaining_ms(&self) -> u64 {
        remaining_ms(self.remaining())
    }

    fn is_cancelled(&self) -> bool {
        HostCall::is_cancelled(self)
    }

    fn wait_cancelled(&self, timeout_ms: u64) -> bool {
        let timeout = Duration::from_millis(timeout_ms);
        let timeout = self.remaining().map_or(timeout, |r| r.min(timeout));
        let guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self
            .changed
            .wait_timeout_while(guard, timeout, |_| !self.cancelled.load(Ordering::SeqCst));
        HostCall::is_cancelled(self)
    }

    fn correlation_id(&self) -> RStr<'_> {
        RStr::from_str(&self.correlation_id)
    }

    fn protocol(&self) -> RStr<'_> {
        RStr::from_str(self.protocol)
    }

    fn method(&self) -> RStr<'_> {
        RStr::from_str(&self.method)
    }

    fn log(&self, level: LogLevel, message: RStr<'_>) {
        emit_for_call(&self.plugin, &self.correlation_id, level, message.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_cancelled_by_its_deadline_or_by_the_host() {
        let call = HostCall::new("p", "m", "v2").deadline(Some(Instant::now()));
        assert!(call.is_cancelled(), "a passed deadline cancels");
        let call =
            HostCall::new("p", "m", "v2").deadline(Some(Instant::now() + Duration::from_secs(60)));
        assert!(!call.is_cancelled());
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                call.cancel();
            });
            let started = Instant::now();
            assert!(CallContext::wait_cancelled(&call, 60_000));
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "woken by cancel"
            );
        });
        assert_eq!(CallContext::method(&call).as_str(), "p.m");
    }

    #[test]
    fn the_running_call_is_known_to_the_thread_while_it_runs() {
        let call = HostCall::new("p", "m", "v1").correlation_id("abc");
        {
            let _entered = call.enter();
            assert_eq!(
                crate::host_api::with_current_correlation(str::to_owned),
                "abc"
            );
        }
        assert_eq!(crate::host_api::with_current_correlation(str::to_owned), "");
    }
}

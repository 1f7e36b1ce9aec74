//! [`HostCall`]: the host's side of one call's [`CallContext`]: its
//! deadline, its cancellation and who asked.
//!
//! A call is cancelled when its deadline passes (no timer is needed: every
//! question compares the clock with the deadline, and `wait_cancelled`
//! sleeps no longer than the time left), when the host cancels it
//! ([`HostCall::cancel`]), or when the host cancels every call of its
//! instance at once ([`CancelScope::cancel`]: shutdown, or retiring the
//! instance). The calls of one instance share their scope's lock and
//! condition variable, so cancelling the scope wakes every waiting call
//! without the host keeping a list of them.
//!
//! Log records a plugin writes while serving a call carry the call's
//! correlation id, also when the plugin logs through the plain
//! `plughost_plugin_api::log` function: the call's id is kept in a
//! thread-local for as long as the plugin runs on this thread
//! ([`HostCall::enter`]), and the host's log callback reads it.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Condvar, Mutex,
    },
    time::{Duration, Instant},
};

use abi_stable::std_types::RStr;
use plughost_plugin_api::{context::remaining_ms, ffi::CallContext, LogLevel};

use crate::host_api::{emit_for_call, enter_call, Entered};

/// Cancels every call of one plugin instance at once (shutdown, or the
/// instance retiring), and is the lock and condition variable those calls
/// wait on.
#[derive(Debug, Default)]
pub struct CancelScope {
    cancelled: AtomicBool,
    lock: Mutex<()>,
    changed: Condvar,
}

impl CancelScope {
    /// A scope nothing has cancelled.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Cancels every call in the scope, now and later, waking those that wait.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// True once the scope is cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    fn wake(&self) {
        let _guard = self.lock.lock();
        self.changed.notify_all();
    }
}

/// One call as the host tells a plugin about it.
#[derive(Debug)]
pub struct HostCall {
    deadline: Option<Instant>,
    correlation_id: String,
    protocol: &'static str,
    method: String,
    plugin: String,
    cancelled: AtomicBool,
    scope: Arc<CancelScope>,
}

/// Why a call counts as cancelled, for the host's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// Its deadline (the caller's, or the method's timeout) passed.
    DeadlinePassed,
    /// The host cancelled it, or every call of its instance (shutdown,
    /// retiring the instance).
    Host,
}

impl CancelReason {
    /// How the log names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeadlinePassed => "deadline passed",
            Self::Host => "cancelled by the host",
        }
    }
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
            scope: CancelScope::new(),
        }
    }

    /// Puts it in `scope`: cancelling the scope cancels it.
    pub fn scope(mut self, scope: Arc<CancelScope>) -> Self {
        self.scope = scope;
        self
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
        self.scope.wake();
    }

    /// True once cancelled or past its deadline.
    pub fn is_cancelled(&self) -> bool {
        self.cancel_reason().is_some()
    }

    /// Why it is cancelled, or `None` while it is not.
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        if self.cancelled_by_host() {
            Some(CancelReason::Host)
        } else if self.remaining().is_some_and(|r| r.is_zero()) {
            Some(CancelReason::DeadlinePassed)
        } else {
            None
        }
    }

    /// Its deadline, if it has one.
    pub fn deadline_at(&self) -> Option<Instant> {
        self.deadline
    }

    /// The caller's correlation id.
    pub fn caller_correlation_id(&self) -> &str {
        &self.correlation_id
    }

    fn cancelled_by_host(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst) || self.scope.is_cancelled()
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
        let guard = self.scope.lock.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self
            .scope
            .changed
            .wait_timeout_while(guard, timeout, |_| !self.cancelled_by_host());
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
    fn cancelling_the_scope_wakes_every_call_in_it() {
        let scope = CancelScope::new();
        let a = HostCall::new("p", "a", "v2").scope(Arc::clone(&scope));
        let b = HostCall::new("p", "b", "v2").scope(Arc::clone(&scope));
        let outside = HostCall::new("p", "c", "v2");
        std::thread::scope(|s| {
            let waiter = s.spawn(|| CallContext::wait_cancelled(&a, 60_000));
            std::thread::sleep(Duration::from_millis(20));
            scope.cancel();
            assert!(waiter.join().unwrap_or(false), "woken by the scope");
        });
        assert_eq!(b.cancel_reason(), Some(CancelReason::Host));
        assert_eq!(outside.cancel_reason(), None);
        let late = HostCall::new("p", "d", "v2").deadline(Some(Instant::now()));
        assert_eq!(late.cancel_reason(), Some(CancelReason::DeadlinePassed));
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

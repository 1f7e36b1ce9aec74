//! [`Context`]: what a method may learn about the call it is serving.
//!
//! A handler that takes `&Context` as its first parameter gets the time
//! left until the caller's deadline, a cancellation signal, the call's
//! correlation id and protocol, and its own qualified name. Handlers that do
//! not ask for it are unchanged.
//!
//! The signal works like a tracked service's stop signal: a long method
//! polls [`Context::is_cancelled`] between steps, or sleeps in
//! [`Context::wait_cancelled`], which wakes the moment the call is
//! cancelled (its deadline passed, its caller is gone, or the host is
//! shutting down or retiring this instance). A cancelled method should
//! return promptly; what it returns is not delivered (the caller has had
//! its answer).
//!
//! In a plugin's own unit tests, [`LocalCall`] stands in for the host.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Condvar, Mutex,
    },
    time::{Duration, Instant},
};

use abi_stable::{sabi_trait::TD_Opaque, std_types::RStr};

use crate::{
    ffi::{CallContext, CallContextRef, CallContext_TO},
    LogLevel,
};

/// How a call reached the plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The old system's text framing over RabbitMQ.
    V1,
    /// plughost's JSON protocol over RabbitMQ.
    V2,
    /// The host's local socket (no broker).
    Local,
    /// A direct call in the same process (tests, `plughost invoke`, the kit).
    InProcess,
}

impl Protocol {
    fn parse(text: &str) -> Self {
        match text {
            "v1" => Self::V1,
            "v2" => Self::V2,
            "local" => Self::Local,
            _ => Self::InProcess,
        }
    }

    /// Its wire name: `v1`, `v2`, `local` or `in-process`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
            Self::Local => "local",
            Self::InProcess => "in-process",
        }
    }
}

/// The call a method is serving: deadline, cancellation, correlation id.
///
/// ```
/// use std::time::Duration;
/// use plughost_plugin_api::prelude::*;
///
/// /// Sums slowly, giving up as soon as the call is cancelled.
/// fn slow_sum(ctx: &Context, n: u64) -> Result<u64, PluginError> {
///     let mut total = 0;
///     for i in 0..n {
///         if ctx.wait_cancelled(Duration::from_millis(1)) {
///             return Err(PluginError::new(codes::DEADLINE_EXCEEDED, "slow_sum: cancelled"));
///         }
///         total += i;
///     }
///     Ok(total)
/// }
///
/// let p = Plugin::new("slow", "1.0.0").method(Method::new("slow_sum", slow_sum));
/// assert_eq!(p.call("slow_sum", vec![json!(3)]).unwrap(), json!(3));
///
/// let call = LocalCall::new().timeout(Duration::from_millis(20));
/// let err = p.call_in(&call, "slow_sum", vec![json!(1_000_000)]).unwrap_err();
/// assert_eq!(err.code, 504);
/// ```
pub struct Context<'a> {
    ffi: CallContextRef<'a>,
}

impl<'a> Context<'a> {
    /// Wraps the host's per-call object (done by the export glue).
    pub fn from_ffi(ffi: CallContextRef<'a>) -> Self {
        Self { ffi }
    }

    /// Time left until the caller's deadline; `None` when it set none.
    pub fn remaining(&self) -> Option<Duration> {
        match self.ffi.remaining_ms() {
            u64::MAX => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// The caller's deadline as an instant of this process; `None` when it set none.
    pub fn deadline(&self) -> Option<Instant> {
        self.remaining().map(|left| Instant::now() + left)
    }

    /// True once the call is cancelled (deadline passed, caller gone, host
    /// shutting down or retiring this instance).
    pub fn is_cancelled(&self) -> bool {
        self.ffi.is_cancelled()
    }

    /// Sleeps up to `timeout`, waking early when the call is cancelled;
    /// returns true when it is cancelled.
    pub fn wait_cancelled(&self, timeout: Duration) -> bool {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.ffi.wait_cancelled(ms)
    }

    /// The caller's correlation id (empty when it sent none).
    pub fn correlation_id(&self) -> &str {
        self.ffi.correlation_id().into()
    }

    /// How the call arrived.
    pub fn protocol(&self) -> Protocol {
        Protocol::parse(self.ffi.protocol().as_str())
    }

    /// The qualified name of the method being called, `<plugin>.<method>`.
    pub fn method(&self) -> &str {
        self.ffi.method().into()
    }

    /// Logs through the host, tagged with this call's correlation id.
    pub fn log(&self, level: LogLevel, message: &str) {
        self.ffi.log(level, RStr::from_str(message));
    }
}

/// A call made in process, for a plugin's own unit tests (and tools that
/// call plugins directly): no deadline unless given one, cancelled when
/// told or when its deadline passes.
///
/// ```
/// use std::time::Duration;
/// use plughost_plugin_api::LocalCall;
///
/// let call = LocalCall::new().timeout(Duration::from_millis(5));
/// assert!(!call.context().is_cancelled());
/// assert!(call.context().wait_cancelled(Duration::from_secs(5)), "woken by the deadline");
///
/// let call = LocalCall::new();
/// call.cancel();
/// assert!(call.context().is_cancelled());
/// ```
#[derive(Debug)]
pub struct LocalCall {
    deadline: Option<Instant>,
    correlation_id: String,
    method: String,
    cancelled: AtomicBool,
    lock: Mutex<()>,
    changed: Condvar,
}

impl Default for LocalCall {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalCall {
    /// A call with no deadline, not cancelled.
    pub fn new() -> Self {
        Self {
            deadline: None,
            correlation_id: String::new(),
            method: String::new(),
            cancelled: AtomicBool::new(false),
            lock: Mutex::new(()),
            changed: Condvar::new(),
        }
    }

    /// Gives the call a deadline `timeout` from now.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.deadline = Some(Instant::now() + timeout);
        self
    }

    /// Gives the call a correlation id.
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = id.into();
        self
    }

    /// Names the method it calls, as [`Context::method`] reports it
    /// (`<plugin>.<method>`; [`crate::Plugin::call`] sets it).
    pub fn method(mut self, qualified: impl Into<String>) -> Self {
        self.method = qualified.into();
        self
    }

    /// Cancels the call, waking any `wait_cancelled`.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        let _guard = self.lock.lock();
        self.changed.notify_all();
    }

    /// The context a method would see.
    pub fn context(&self) -> Context<'_> {
        Context::from_ffi(CallContext_TO::from_ptr(self, TD_Opaque))
    }

    fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    fn cancelled_now(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst) || self.remaining().is_some_and(|r| r.is_zero())
    }

    fn wait(&self, timeout: Duration) -> bool {
        let timeout = self.remaining().map_or(timeout, |r| r.min(timeout));
        let guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self
            .changed
            .wait_timeout_while(guard, timeout, |_| !self.cancelled.load(Ordering::SeqCst));
        self.cancelled_now()
    }
}

impl CallContext for LocalCall {
    fn remaining_ms(&self) -> u64 {
        remaining_ms(self.remaining())
    }
    fn is_cancelled(&self) -> bool {
        self.cancelled_now()
    }
    fn wait_cancelled(&self, timeout_ms: u64) -> bool {
        self.wait(Duration::from_millis(timeout_ms))
    }
    fn correlation_id(&self) -> RStr<'_> {
        RStr::from_str(&self.correlation_id)
    }
    fn protocol(&self) -> RStr<'_> {
        RStr::from_str(Protocol::InProcess.as_str())
    }
    fn method(&self) -> RStr<'_> {
        RStr::from_str(&self.method)
    }
    fn log(&self, level: LogLevel, message: RStr<'_>) {
        crate::log(level, message.as_str());
    }
}

/// `remaining_ms` as the FFI spells it: `u64::MAX` for no deadline.
pub fn remaining_ms(remaining: Option<Duration>) -> u64 {
    match remaining {
        None => u64::MAX,
        Some(left) => u64::try_from(left.as_millis())
            .unwrap_or(u64::MAX - 1)
            .min(u64::MAX - 1),
    }
}

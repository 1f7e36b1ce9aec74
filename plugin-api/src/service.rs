//! The plugin-side view of a running tracked service.
//!
//! A service sees only [`ServiceContext`]: the stop signal, its id, the
//! service manager and logging. The host (or a harness such as the
//! conformance kit) provides them through the FFI trait
//! [`ServiceHost`](crate::ffi::ServiceHost), so a service never depends on
//! how the host tracks it.

use std::time::Duration;

use abi_stable::std_types::RStr;

use crate::{ffi::ServiceHostBox, LogLevel, PluginError};

/// Handed to a tracked service's run function: the stop signal and the way
/// to reach the host and the service manager.
///
/// A well-behaved service loops on [`ServiceContext::wait_stop`], which both
/// paces the loop and returns `true` as soon as the host says stop; the
/// conformance kit checks that `run` returns within one second of that.
///
/// Running a service in process, with a minimal [`ServiceHost`] (what a
/// host or a test harness provides):
///
/// ```
/// use std::{sync::{atomic::{AtomicBool, Ordering}, Arc}, time::Duration};
/// use plughost_plugin_api::{
///     abi_stable::{sabi_trait::TD_Opaque, std_types::{RResult, RStr, RString}},
///     ffi::{ServiceHost, ServiceHost_TO},
///     prelude::*,
/// };
///
/// /// Says "stop" from the start, so the service returns at once.
/// struct StopNow(Arc<AtomicBool>);
///
/// impl ServiceHost for StopNow {
///     fn should_stop(&self) -> bool { self.0.load(Ordering::SeqCst) }
///     fn wait_stop(&self, _timeout_ms: u64) -> bool { self.should_stop() }
///     fn service_id(&self) -> RString { "00000000-0000-0000-0000-000000000000".into() }
///     fn ask_manager(&self, _command: RStr<'_>) -> RResult<RString, PluginError> {
///         RResult::RErr(PluginError::new(503, "no manager here"))
///     }
///     fn log(&self, _level: LogLevel, _message: RStr<'_>) {}
/// }
///
/// fn worker(ctx: &ServiceContext) -> Result<(), PluginError> {
///     while !ctx.wait_stop(Duration::from_millis(100)) {}
///     assert!(ctx.ask_manager("l").is_err());
///     Ok(())
/// }
///
/// let host = ServiceHost_TO::from_value(StopNow(Arc::new(AtomicBool::new(true))), TD_Opaque);
/// let ctx = ServiceContext::new(host);
/// assert!(ctx.should_stop());
/// assert_eq!(ctx.service_id().len(), 36);
/// worker(&ctx).unwrap();
/// ```
///
/// [`ServiceHost`]: crate::ffi::ServiceHost
pub struct ServiceContext {
    host: ServiceHostBox,
}

impl ServiceContext {
    /// Wraps the host's callbacks (done by the export glue, and by hosts or
    /// test harnesses that run a service in process).
    pub fn new(host: ServiceHostBox) -> Self {
        Self { host }
    }

    /// True once the host asked the service to stop.
    pub fn should_stop(&self) -> bool {
        self.host.should_stop()
    }

    /// Sleeps up to `timeout`, waking early when told to stop; returns true
    /// when the service should stop.
    pub fn wait_stop(&self, timeout: Duration) -> bool {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.host.wait_stop(ms)
    }

    /// This service's uuid as the service manager knows it.
    pub fn service_id(&self) -> String {
        self.host.service_id().into_string()
    }

    /// Sends a management command (`l` lists services) to the service
    /// manager and returns the answer body.
    pub fn ask_manager(&self, command: &str) -> Result<String, PluginError> {
        self.host
            .ask_manager(RStr::from_str(command))
            .into_result()
            .map(|s| s.into_string())
    }

    /// Logs through the host.
    pub fn log(&self, level: LogLevel, message: &str) {
        self.host.log(level, RStr::from_str(message));
    }
}

//! The plugin-side view of a running tracked service.

use std::time::Duration;

use abi_stable::std_types::RStr;

use crate::{ffi::ServiceHostBox, LogLevel, PluginError};

/// Handed to a tracked service's run function: the stop signal and the way
/// to reach the host and the service manager.
///
/// A well-behaved service loops on [`ServiceContext::wait_stop`], which both
/// paces the loop and returns `true` as soon as the host says stop; the
/// conformance kit checks that `run` returns within one second of that.
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

//! The host's side of the callbacks a plugin can make ([`HostApi`]): its log
//! records go to `tracing`, labelled with the plugin they came from, and
//! with the correlation id of the call the plugin is serving when it logs
//! from that call's thread (see [`crate::HostCall`]).

use std::cell::RefCell;

use abi_stable::{sabi_trait::TD_Opaque, std_types::RStr};
use plughost_plugin_api::{
    ffi::{HostApi, HostApiBox, HostApi_TO},
    LogLevel,
};

thread_local! {
    /// The correlation id of the call this thread is running, if any.
    static CURRENT: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Marks this thread as running a call with `correlation_id` until the
/// guard drops (see [`crate::HostCall`]).
pub(crate) fn enter_call(correlation_id: &str) -> Entered {
    CURRENT.with(|c| {
        let mut current = c.borrow_mut();
        current.clear();
        current.push_str(correlation_id);
    });
    Entered
}

/// While it lives, this thread is running a call (see [`enter_call`]).
pub(crate) struct Entered;

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.with(|c| c.borrow_mut().clear());
    }
}

/// Runs `f` with the correlation id of the call this thread runs (empty
/// when it runs none).
pub(crate) fn with_current_correlation<T>(f: impl FnOnce(&str) -> T) -> T {
    CURRENT.with(|c| f(&c.borrow()))
}

/// The `tracing` target of every record a plugin writes.
pub const PLUGIN_LOG_TARGET: &str = "plughost::plugin";

/// Forwards a plugin's log records to `tracing` under [`PLUGIN_LOG_TARGET`].
pub(crate) struct TracingHost {
    label: String,
}

impl TracingHost {
    pub(crate) fn boxed(label: impl Into<String>) -> HostApiBox {
        HostApi_TO::from_value(
            Self {
                label: label.into(),
            },
            TD_Opaque,
        )
    }
}

impl HostApi for TracingHost {
    fn log(&self, level: LogLevel, message: RStr<'_>) {
        with_current_correlation(|id| emit_for_call(&self.label, id, level, message.as_str()));
    }
}

/// Emits one plugin log record at the matching `tracing` level.
pub fn emit(plugin: &str, level: LogLevel, message: &str) {
    emit_for_call(plugin, "", level, message);
}

/// Emits one plugin log record, with the correlation id of the call it was
/// written for (none when empty).
pub fn emit_for_call(plugin: &str, correlation_id: &str, level: LogLevel, message: &str) {
    let id = (!correlation_id.is_empty()).then_some(correlation_id);
    match level {
        LogLevel::Trace => {
            tracing::trace!(target: "plughost::plugin", plugin, correlation_id = id, "{message}")
        }
        LogLevel::Debug => {
            tracing::debug!(target: "plughost::plugin", plugin, correlation_id = id, "{message}")
        }
        LogLevel::Info => {
            tracing::info!(target: "plughost::plugin", plugin, correlation_id = id, "{message}")
        }
        LogLevel::Warn => {
            tracing::warn!(target: "plughost::plugin", plugin, correlation_id = id, "{message}")
        }
        LogLevel::Error => {
            tracing::error!(target: "plughost::plugin", plugin, correlation_id = id, "{message}")
        }
    }
}

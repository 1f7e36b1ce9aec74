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
    /// Records a plugin logs while this thread creates its instance: the
    /// plugin's name is known only once its builder has returned, so they
    /// wait here and are emitted under that name (see [`initialising`]).
    static DURING_INIT: RefCell<Option<Vec<(LogLevel, String)>>> = const { RefCell::new(None) };
}

/// Runs `init` (a plugin's instance constructor) holding back the records
/// it logs through a [`TracingHost`] on this thread, then emits them under
/// the name `name_of` finds in the outcome (the plugin's declared name), or
/// `fallback` when there is none (init failed). Without this, records
/// logged during init would carry the file's name (`libkvstore`) instead
/// of the plugin's (`kvstore`).
pub(crate) fn initialising<T>(
    fallback: &str,
    init: impl FnOnce() -> T,
    name_of: impl FnOnce(&T) -> Option<String>,
) -> T {
    let outer = DURING_INIT.with(|d| d.borrow_mut().replace(Vec::new()));
    let outcome = init();
    let held = DURING_INIT.with(|d| std::mem::replace(&mut *d.borrow_mut(), outer));
    let name = name_of(&outcome).unwrap_or_else(|| fallback.to_owned());
    for (level, message) in held.unwrap_or_default() {
        emit(&name, level, &message);
    }
    outcome
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
        let held = DURING_INIT.with(|d| match d.borrow_mut().as_mut() {
            Some(held) => {
                held.push((level, message.as_str().to_owned()));
                true
            }
            None => false,
        });
        if !held {
            with_current_correlation(|id| emit_for_call(&self.label, id, level, message.as_str()));
        }
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

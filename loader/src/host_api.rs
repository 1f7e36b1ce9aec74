//! The host's side of the callbacks a plugin can make ([`HostApi`]): its log
//! records go to `tracing`, labelled with the plugin they came from.

use abi_stable::{sabi_trait::TD_Opaque, std_types::RStr};
use plughost_plugin_api::{
    ffi::{HostApi, HostApiBox, HostApi_TO},
    LogLevel,
};

/// Forwards a plugin's log records to `tracing` under target `plughost::plugin`.
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
        emit(&self.label, level, message.as_str());
    }
}

/// Emits one plugin log record at the matching `tracing` level.
pub fn emit(plugin: &str, level: LogLevel, message: &str) {
    match level {
        LogLevel::Trace => tracing::trace!(target: "plughost::plugin", plugin, "{message}"),
        LogLevel::Debug => tracing::debug!(target: "plughost::plugin", plugin, "{message}"),
        LogLevel::Info => tracing::info!(target: "plughost::plugin", plugin, "{message}"),
        LogLevel::Warn => tracing::warn!(target: "plughost::plugin", plugin, "{message}"),
        LogLevel::Error => tracing::error!(target: "plughost::plugin", plugin, "{message}"),
    }
}

//! What `plughost status` shows: the plugins a host serves (with their
//! states and counters) and the state of its broker connection.
//!
//! These are plain serialisable types, in a module of their own, so the
//! admin socket (which sends them) and the host (which fills them in) both
//! depend on this module and not on each other.

use std::{path::PathBuf, time::UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::plugins::{PluginHandle, PluginState};

/// One plugin as `plughost status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginStatus {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// Its file.
    pub file: PathBuf,
    /// SHA-256 of the file when loaded.
    pub sha256: String,
    /// Load time, Unix seconds.
    pub loaded_at: u64,
    /// serving, draining, retired...
    pub state: PluginState,
    /// Calls running now.
    pub in_flight: usize,
    /// Calls served, per method.
    pub calls: Vec<(String, u64)>,
}

/// What `plughost status` shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostStatus {
    /// Host name.
    pub host: String,
    /// Whether the RPC roles are connected.
    pub broker: String,
    /// Serving plugins first, then draining and retired ones.
    pub plugins: Vec<PluginStatus>,
}

impl PluginStatus {
    /// The status of one loaded plugin.
    pub fn of(p: &PluginHandle) -> Self {
        Self {
            name: p.name().to_owned(),
            version: p.version().to_owned(),
            file: p.file().to_path_buf(),
            sha256: p.sha256().to_owned(),
            loaded_at: p
                .loaded_at()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            state: p.state(),
            in_flight: p.in_flight(),
            calls: p.call_counts(),
        }
    }
}

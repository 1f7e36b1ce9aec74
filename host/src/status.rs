//! What `plughost status` shows: the plugins a host serves (with their
//! states and counters) and the state of its broker connection.
//!
//! These are plain serialisable types, in a module of their own, so the
//! admin socket (which sends them) and the host (which fills them in) both
//! depend on this module and not on each other.

use std::{collections::BTreeMap, path::PathBuf, time::UNIX_EPOCH};

use plughost_proto::rpc::v2::Signature;
use serde::{Deserialize, Serialize};

use crate::{
    plugins::{registry::signature_of, PluginHandle, PluginState},
    rpc::ChannelReport,
};

/// One plugin as `plughost status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginStatus {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// The instance's identity in this process (see [`plughost_loader::InstanceId`]).
    #[serde(default)]
    pub instance: u64,
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
    /// Each method's signature (parameter and result schemas), as the
    /// plugin declares it.
    #[serde(default)]
    pub methods: Vec<MethodStatus>,
}

/// One method's published signature in `plughost status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MethodStatus {
    /// The method's bare name.
    pub name: String,
    /// Its parameters and result.
    #[serde(flatten)]
    pub signature: Signature,
}

/// What `plughost status` shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostStatus {
    /// Host name.
    pub host: String,
    /// `serving` (connected, and every channel below serves), `degraded`
    /// (connected, but a channel is closed or not consuming) or
    /// `disconnected`.
    pub broker: String,
    /// Serving plugins first, then draining and retired ones.
    pub plugins: Vec<PluginStatus>,
    /// Each broker channel of the RPC roles (reply channel, name-service
    /// consumer, one consumer per route) and its state now.
    #[serde(default)]
    pub channels: Vec<ChannelReport>,
    /// The tracked services this host runs: state and restart count.
    #[serde(default)]
    pub services: Vec<ServiceStatus>,
    /// Faults since the process started, by kind ([`crate::faults::Fault::name`]):
    /// refused messages, plugin panics, refused reloads, requeues, repairs.
    #[serde(default)]
    pub faults: BTreeMap<String, u64>,
}

impl PluginStatus {
    /// The status of one loaded plugin.
    pub fn of(p: &PluginHandle) -> Self {
        Self {
            name: p.name().to_owned(),
            version: p.version().to_owned(),
            instance: p.id().get(),
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
            methods: p
                .descriptor()
                .methods
                .iter()
                .map(|m| MethodStatus {
                    name: m.name.clone(),
                    signature: signature_of(m),
                })
                .collect(),
        }
    }
}

/// What `plughost status` shows of one tracked service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// The plugin it belongs to.
    pub plugin: String,
    /// Its name.
    pub service: String,
    /// The plugin instance it runs on.
    pub instance: u64,
    /// `running`, `restarting` (waiting out its backoff), `stopped` (on
    /// purpose), `finished` (returned; its policy keeps it so) or `failed`.
    pub state: String,
    /// How often it was restarted on this instance.
    pub restarts: u32,
    /// Why its last run ended, when it failed.
    pub last_error: Option<String>,
}

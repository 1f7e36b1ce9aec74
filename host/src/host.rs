//! The host: one entry point that takes a manifest and a shutdown future and
//! runs every role the manifest switches on (the mini-redis `server::run`
//! shape). The binary passes ctrl-c; tests pass their own.
//!
//! The current plugin set lives in a `watch` channel of `Arc<Registry>`:
//! roles read the newest registry per request and are told when it changes.
//! A reload builds the next registry beside the current one
//! ([`crate::plugins::rebuild`]) and swaps it in whole, or not at all.
//! Plugins that leave the set go from serving to draining, and to retired
//! when their last in-flight call returns.

use std::{
    future::Future,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};
use tokio::{io::BufReader, sync::watch, task::JoinHandle};
use tracing::{error, info, warn};

use crate::{
    admin::{self, AdminReply, AdminRequest},
    manifest::{Manifest, ManifestError, DEFAULT_AMQP_URL},
    plugins::{rebuild, Changes, LoadError, PluginHandle, PluginState, Registry},
    rpc::{self, BrokerState, Exchanges, RpcConfig},
    shutdown::{self, ShutdownTrigger},
    tracker::{self, manager::ManagerConfig, services::ServicesConfig},
    watch::FileWatch,
};

/// Why a host could not start or reload.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The manifest could not be read or is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A plugin of the manifest did not load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The service manager could not start.
    #[error(transparent)]
    Tracker(#[from] crate::tracker::TrackerError),
    /// The admin socket could not be opened.
    #[error("admin socket {path}: {source}")]
    Admin {
        /// The socket path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// How many retired plugins `plughost status` remembers.
const KEEP_RETIRED: usize = 16;

/// Settings that come from outside the manifest (CLI, environment).
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// Broker URL that overrides the manifest's (`--amqp` / `PLUGHOST_AMQP_URL`).
    pub amqp_url: Option<String>,
}

/// The broker URL: explicit override, else the manifest's, else the default.
pub fn amqp_url(options: &HostOptions, manifest: &Manifest) -> String {
    options
        .amqp_url
        .clone()
        .or_else(|| manifest.rabbitmq.url.clone())
        .unwrap_or_else(|| DEFAULT_AMQP_URL.to_owned())
}

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
    fn of(p: &PluginHandle) -> Self {
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

/// A running host. Dropping it does not stop it: call [`Host::shutdown`].
pub struct Host {
    name: String,
    registry: watch::Sender<Arc<Registry>>,
    /// The registry whose routes the RPC roles consume (None: no RPC roles).
    served: Option<watch::Receiver<Arc<Registry>>>,
    broker: watch::Receiver<BrokerState>,
    trigger: ShutdownTrigger,
    tasks: Vec<JoinHandle<()>>,
    /// Plugins that left the serving set: draining, then retired.
    retired: Arc<Mutex<Vec<Arc<PluginHandle>>>>,
    reloading: tokio::sync::Mutex<()>,
    started_with: Manifest,
}

impl Host {
    /// Loads the manifest's plugins and starts the roles it enables.
    pub async fn start(manifest: &Manifest, options: &HostOptions) -> Result<Self, HostError> {
        let registry = Registry::from_manifest(manifest)?;
        for plugin in registry.plugins() {
            plugin.set_state(PluginState::Serving);
            info!(plugin = plugin.name(), version = plugin.version(), file = %plugin.file().display(), "plugin serving");
        }
        let registry = Arc::new(registry);
        let (registry_tx, registry_rx) = watch::channel(Arc::clone(&registry));
        let (served_tx, served_rx) = watch::channel(Arc::new(Registry::new()));
        let (broker_tx, broker_rx) = watch::channel(BrokerState::Disconnected);
        let (trigger, shutdown) = shutdown::channel();
        let mut tasks = Vec::new();
        let roles = manifest.roles;
        if roles.name_service || roles.rpc {
            let config = RpcConfig {
                url: amqp_url(options, manifest),
                exchanges: Exchanges {
                    rpc: manifest.rabbitmq.rpc_exchange.clone(),
                    ns: manifest.rabbitmq.ns_exchange.clone(),
                },
                host_name: manifest.host.name.clone(),
                prefetch: manifest.rabbitmq.prefetch,
                name_service: roles.name_service,
                rpc: roles.rpc,
            };
            tasks.push(tokio::spawn(rpc::serve(
                config,
                registry_rx,
                served_tx,
                broker_tx,
                shutdown.clone(),
            )));
        }
        let served = (roles.name_service || roles.rpc).then_some(served_rx);
        let zmq = &manifest.zeromq;
        if roles.manager {
            let config = ManagerConfig {
                discovery: bind_form(&zmq.discovery),
                management: bind_form(&zmq.management),
                beacon_interval: Duration::from_millis(zmq.beacon_interval_ms),
                ttl: Duration::from_millis(zmq.ttl_ms),
                v1_ttl: Duration::from_millis(zmq.v1_ttl_ms),
                admin_token: zmq.admin_token.clone(),
                limits: tracker::limits(zmq),
                curve: tracker::server_curve(zmq)?,
            };
            let manager = tracker::manager::start(config, shutdown.clone()).await?;
            tasks.push(tokio::spawn(async move {
                let _ = manager.task.await;
            }));
        }
        if roles.services {
            let config = ServicesConfig {
                host_name: manifest.host.name.clone(),
                discovery: zmq.discovery.clone(),
                management: zmq.management.clone(),
                heartbeat: Duration::from_millis(zmq.heartbeat_interval_ms),
                limits: tracker::limits(zmq),
                curve: tracker::client_curve(zmq)?,
            };
            tasks.push(tokio::spawn(tracker::services::run(
                config,
                registry_tx.subscribe(),
                shutdown.clone(),
            )));
        }
        Ok(Self {
            name: manifest.host.name.clone(),
            registry: registry_tx,
            served,
            broker: broker_rx,
            trigger,
            tasks,
            retired: Arc::default(),
            reloading: tokio::sync::Mutex::new(()),
            started_with: manifest.clone(),
        })
    }

    /// The plugin set being served now.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.borrow().clone()
    }

    /// Applies a changed manifest: loads what is new or changed beside what
    /// runs, then swaps the whole set. On error nothing changes.
    pub async fn reload(&self, manifest: &Manifest) -> Result<Changes, HostError> {
        let _one_at_a_time = self.reloading.lock().await;
        let current = self.registry();
        let target = manifest.clone();
        let (next, changes) = tokio::task::spawn_blocking(move || rebuild(&current, &target))
            .await
            .map_err(|e| LoadError::Io {
                path: manifest.source.clone(),
                reason: format!("reload task failed: {e}"),
            })??;
        self.warn_about_unreloadable(manifest);
        if changes.is_empty() {
            return Ok(changes);
        }
        for plugin in next.plugins() {
            if plugin.state() != PluginState::Serving {
                plugin.set_state(PluginState::Serving);
                info!(
                    plugin = plugin.name(),
                    version = plugin.version(),
                    sha256 = &plugin.sha256()[..12],
                    "plugin serving"
                );
            }
        }
        let next = Arc::new(next);
        let old = self.registry.send_replace(Arc::clone(&next));
        self.wait_live(&next).await;
        let now = self.registry();
        for plugin in old.plugins() {
            if !now.plugins().iter().any(|p| Arc::ptr_eq(p, plugin)) {
                self.retire(Arc::clone(plugin));
            }
        }
        info!(added = ?changes.added, removed = ?changes.removed, replaced = ?changes.replaced, "reload applied");
        Ok(changes)
    }

    /// Waits (up to 10 s) until the RPC roles consume the routes of `next`,
    /// so that when a reload returns its methods can be found and called.
    /// Does not wait while the broker is down: the roles apply the newest
    /// registry when they reconnect.
    async fn wait_live(&self, next: &Arc<Registry>) {
        let Some(served) = &self.served else { return };
        let mut served = served.clone();
        let mut broker = self.broker.clone();
        let live = async {
            tokio::select! {
                _ = served.wait_for(|s| Arc::ptr_eq(s, next)) => {}
                _ = broker.wait_for(|b| *b == BrokerState::Disconnected) => {}
            }
        };
        if tokio::time::timeout(Duration::from_secs(10), live)
            .await
            .is_err()
        {
            warn!("the RPC roles have not applied the reload after 10 s; it will take effect when they do");
        }
    }

    /// Marks a plugin draining, and retired once its in-flight calls are done.
    fn retire(&self, plugin: Arc<PluginHandle>) {
        plugin.set_state(PluginState::Draining);
        info!(
            plugin = plugin.name(),
            version = plugin.version(),
            in_flight = plugin.in_flight(),
            "plugin draining"
        );
        if let Ok(mut retired) = self.retired.lock() {
            // Status shows every draining plugin and the last few retired ones;
            // older records go, so repeated reloads do not grow the list.
            let mut keep = KEEP_RETIRED;
            retired.reverse();
            retired.retain(|p| {
                p.state() != PluginState::Retired || {
                    keep = keep.saturating_sub(1);
                    keep > 0
                }
            });
            retired.reverse();
            retired.push(Arc::clone(&plugin));
        }
        tokio::spawn(async move {
            while plugin.in_flight() > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            plugin.set_state(PluginState::Retired);
            info!(
                plugin = plugin.name(),
                version = plugin.version(),
                "plugin retired (its library stays mapped)"
            );
        });
    }

    fn warn_about_unreloadable(&self, manifest: &Manifest) {
        let was = &self.started_with;
        if was.rabbitmq != manifest.rabbitmq
            || was.zeromq != manifest.zeromq
            || was.roles != manifest.roles
            || was.host != manifest.host
        {
            warn!(
                "[host], [rabbitmq], [zeromq] and [roles] changes take effect only after a restart"
            );
        }
    }

    /// What `plughost status` shows.
    pub fn status(&self) -> HostStatus {
        let mut plugins: Vec<PluginStatus> = self
            .registry()
            .plugins()
            .iter()
            .map(|p| PluginStatus::of(p))
            .collect();
        if let Ok(retired) = self.retired.lock() {
            plugins.extend(retired.iter().map(|p| PluginStatus::of(p)));
        }
        let broker = match *self.broker.borrow() {
            BrokerState::Serving => "serving",
            BrokerState::Disconnected => "disconnected",
        };
        HostStatus {
            host: self.name.clone(),
            broker: broker.to_owned(),
            plugins,
        }
    }

    /// Waits until the RPC roles are connected and serving.
    pub async fn wait_serving(&self) {
        let mut broker = self.broker.clone();
        let _ = broker.wait_for(|s| *s == BrokerState::Serving).await;
    }

    /// Watches the broker connection state.
    pub fn broker_state(&self) -> watch::Receiver<BrokerState> {
        self.broker.clone()
    }

    /// Stops every role: consumers are cancelled, in-flight calls finish.
    pub async fn shutdown(self) {
        self.trigger.fire();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// The endpoint a manager binds for a configured one: `tcp://*:PORT` (all
/// interfaces, the old default) stays as written; anything else is used as is.
fn bind_form(endpoint: &str) -> String {
    endpoint.replace("tcp://*:", "tcp://0.0.0.0:")
}

/// Re-reads the manifest from disk and applies it, logging the outcome.
async fn reload_from_disk(
    host: &Host,
    path: &std::path::Path,
    why: &str,
) -> Result<Changes, HostError> {
    let result = match Manifest::load(path) {
        Ok(manifest) => host.reload(&manifest).await,
        Err(e) => Err(e.into()),
    };
    match &result {
        Ok(changes) if changes.is_empty() => info!(trigger = why, "reload: nothing changed"),
        Ok(_) => {}
        Err(e) => {
            error!(trigger = why, error = %e, "reload refused; still serving the previous set")
        }
    }
    result
}

/// The files a host follows: its manifest and every plugin file it names.
fn followed_files(path: &std::path::Path, host: &Host) -> Vec<PathBuf> {
    let mut files = vec![path.to_path_buf()];
    files.extend(
        host.registry()
            .plugins()
            .iter()
            .map(|p| p.file().to_path_buf()),
    );
    files
}

/// Runs a host until `shutdown` resolves: serves the roles, follows the
/// manifest and plugin files, reloads on SIGHUP, answers the admin socket.
pub async fn run(
    manifest: &Manifest,
    options: &HostOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), HostError> {
    let host = Host::start(manifest, options).await?;
    let path = manifest.source.clone();
    let admin_path = admin::socket_path(manifest);
    let listener = if manifest.roles.admin {
        let listener = admin::listen(&admin_path).map_err(|source| HostError::Admin {
            path: admin_path.clone(),
            source,
        })?;
        info!(socket = %admin_path.display(), "admin endpoint listening");
        Some(listener)
    } else {
        None
    };
    let watch_files = manifest.host.watch;
    let mut files = if watch_files {
        FileWatch::new(followed_files(&path, &host))
            .map_err(|e| warn!(error = %e, "cannot watch the manifest and plugin files; reload with SIGHUP or `plughost reload`"))
            .ok()
    } else {
        None
    };
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    tokio::pin!(shutdown);
    loop {
        let reloaded = tokio::select! {
            _ = &mut shutdown => break,
            _ = async { match files.as_mut() { Some(f) => f.changed().await, None => std::future::pending().await } } => {
                reload_from_disk(&host, &path, "file change").await.is_ok()
            }
            _ = async { match hangup.as_mut() { Some(h) => { h.recv().await; } None => std::future::pending().await } } => {
                reload_from_disk(&host, &path, "SIGHUP").await.is_ok()
            }
            conn = async { match listener.as_ref() { Some(l) => l.accept().await, None => std::future::pending().await } } => {
                match conn {
                    Ok((stream, _)) => {
                        let mut stream = BufReader::new(stream);
                        let (reply, reloaded) = match admin::read_request(&mut stream).await {
                            Ok(AdminRequest::Status) => (AdminReply { ok: true, error: None, changes: None, status: Some(host.status()) }, false),
                            Ok(AdminRequest::Reload) => match reload_from_disk(&host, &path, "plughost reload").await {
                                Ok(changes) => (AdminReply { ok: true, error: None, changes: Some(changes), status: None }, true),
                                Err(e) => (AdminReply::failed(e.to_string()), false),
                            },
                            Err(e) => (AdminReply::failed(e), false),
                        };
                        admin::write_reply(stream, &reply).await;
                        reloaded
                    }
                    Err(e) => {
                        warn!(error = %e, "admin accept failed");
                        false
                    }
                }
            }
        };
        if reloaded {
            // The manifest may name other plugin files now: follow the new set.
            if watch_files {
                files = FileWatch::new(followed_files(&path, &host)).ok().or(files);
            }
        }
    }
    info!("shutting down");
    host.shutdown().await;
    if listener.is_some() {
        let _ = std::fs::remove_file(&admin_path);
    }
    Ok(())
}

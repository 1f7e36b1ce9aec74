//! The host: one entry point that takes a manifest and a shutdown future and
//! runs every role the manifest switches on (the mini-redis `server::run`
//! shape). The binary passes ctrl-c; tests pass their own.
//!
//! The current plugin set lives in a `watch` channel of `Arc<Registry>`:
//! roles read the newest registry per request and are told when it changes.
//! A reload builds the next registry beside the current one
//! ([`crate::plugins::rebuild`]) and swaps it in whole, or not at all.
//! Plugins that leave the set go from serving to draining, and to retired
//! when their last in-flight call returns. A replacement of a plugin that
//! keeps state is handed the old instance's state first (see
//! [`Host::reload`]): the old instance stops taking calls, finishes those in
//! flight, exports; the new one imports before its first call. Calls that
//! arrive meanwhile wait at the old instance's gate and then follow it to
//! the new one.

use std::{
    future::Future,
    path::PathBuf,
    pin::Pin,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
};
use tracing::{error, info, warn};

use crate::{
    admin::{self, AdminError, AdminHandler, AdminReply},
    faults::{self, Fault},
    manifest::{BrokerOverrides, BrokerSettings, HostSettings, Manifest, ManifestError},
    plugins::{rebuild, Changes, PluginHandle, PluginState, Registry, RegistryError},
    rpc::{self, BrokerState, RpcConfig, RpcHealth},
    shutdown::{self, ShutdownTrigger},
    status::{HostStatus, PluginStatus},
    tracker::{
        self,
        manager::ManagerConfig,
        services::{ServiceBoard, ServicesConfig},
    },
    watch::FileWatch,
};

/// Why a host could not start or reload.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The manifest could not be read or is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A plugin of the manifest did not load, or the plugins do not fit together.
    #[error(transparent)]
    Plugins(#[from] RegistryError),
    /// A reload could not run to its end (its task failed).
    #[error("reload of {path}: {reason}")]
    Reload {
        /// The manifest.
        path: PathBuf,
        /// What happened to the reload task.
        reason: String,
    },
    /// A replacement could not take over its predecessor's state; the old
    /// instance goes on serving and the reload is refused.
    #[error("reload refused: state hand-over of plugin {plugin}: {reason}")]
    Handover {
        /// The plugin.
        plugin: String,
        /// What failed (export, import, or the drain).
        reason: String,
    },
    /// The service manager could not start.
    #[error(transparent)]
    Tracker(#[from] crate::tracker::TrackerError),
    /// The admin socket could not be opened.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// The HTTP endpoint (`[http] listen`) could not be opened.
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
    /// Shutdown took longer than its grace; the process gave up on what
    /// was still running.
    #[error("shutdown did not finish within its grace of {grace_ms} ms; abandoned: {}", abandoned.join("; "))]
    ShutdownIncomplete {
        /// The grace (`[host] shutdown_grace_ms`).
        grace_ms: u64,
        /// What was still running: services that ignored stop, calls, roles.
        abandoned: Vec<String>,
    },
}

/// How long a host waits for its broker at start before it says it runs
/// in local mode (a refused connection fails at once; this covers a broker
/// that is slow to answer too).
const LOCAL_MODE_NOTICE_AFTER: Duration = Duration::from_secs(3);

/// How many retired plugins `plughost status` remembers.
const KEEP_RETIRED: usize = 16;

/// Settings that come from outside the manifest (CLI, environment).
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// Broker URL that overrides the manifest's (`--amqp` / `PLUGHOST_AMQP_URL`).
    pub amqp_url: Option<String>,
}

/// The broker settings a host connects with: `options` over the
/// manifest's `[rabbitmq]` over the defaults (the one rule, in
/// [`BrokerOverrides::resolve`]).
pub fn broker_settings(options: &HostOptions, manifest: &Manifest) -> BrokerSettings {
    BrokerOverrides {
        url: options.amqp_url.clone(),
        ..BrokerOverrides::default()
    }
    .resolve(Some(manifest))
}

/// One role's task, with the role's name. The task returns what it had to
/// abandon when it stopped (a service that ignored stop, say).
type RoleTask = (&'static str, JoinHandle<Vec<String>>);

/// A running host. Dropping it does not stop it: call [`Host::shutdown`].
pub struct Host {
    name: String,
    registry: watch::Sender<Arc<Registry>>,
    /// The registry whose routes the RPC roles consume (None: no RPC roles).
    served: Option<watch::Receiver<Arc<Registry>>>,
    broker: watch::Receiver<BrokerState>,
    /// The RPC roles' channels, for status.
    health: Arc<RpcHealth>,
    /// The tracked services' states and restart counts, for status.
    services: Arc<ServiceBoard>,
    trigger: ShutdownTrigger,
    tasks: Mutex<Vec<RoleTask>>,
    /// Plugins that left the serving set: draining, then retired.
    retired: Arc<Mutex<Vec<Arc<PluginHandle>>>>,
    reloading: tokio::sync::Mutex<()>,
    started_with: Manifest,
    /// The local socket this host serves, if any.
    local_socket: Option<PathBuf>,
}

impl Host {
    /// Loads the manifest's plugins and starts the roles it enables.
    pub async fn start(manifest: &Manifest, options: &HostOptions) -> Result<Self, HostError> {
        let registry = Registry::from_manifest(manifest)?;
        // Bound before any role starts: a taken port fails the start whole.
        let http = match manifest.http.listen {
            Some(addr) => Some(crate::http::bind(addr).await?),
            None => None,
        };
        for plugin in registry.plugins() {
            plugin.set_state(PluginState::Serving);
        }
        let registry = Arc::new(registry);
        let (registry_tx, registry_rx) = watch::channel(Arc::clone(&registry));
        let (served_tx, served_rx) = watch::channel(Arc::new(Registry::new()));
        let (broker_tx, broker_rx) = watch::channel(BrokerState::Disconnected);
        let (trigger, shutdown) = shutdown::channel();
        let reporter = faults::report_suppressed(shutdown.clone());
        let mut tasks: Vec<RoleTask> = vec![(
            "fault reporter",
            tokio::spawn(async move {
                reporter.await;
                Vec::new()
            }),
        )];
        let health = Arc::new(RpcHealth::default());
        let services = Arc::new(ServiceBoard::default());
        let retired: Arc<Mutex<Vec<Arc<PluginHandle>>>> = Arc::default();
        let roles = manifest.roles;
        if roles.name_service || roles.rpc {
            let broker = broker_settings(options, manifest);
            let config = RpcConfig {
                url: broker.url,
                fallback_urls: broker.fallback_urls,
                route_queues: broker.route_queues,
                tls: broker.tls,
                exchanges: broker.exchanges,
                host_name: manifest.host.name.clone(),
                prefetch: manifest.rabbitmq.prefetch,
                name_service: roles.name_service,
                rpc: roles.rpc,
                limits: manifest.limits,
            };
            let rpc = rpc::serve(
                config,
                registry_rx,
                served_tx,
                broker_tx,
                Arc::clone(&health),
                shutdown.clone(),
            );
            tasks.push((
                "RPC",
                tokio::spawn(async move {
                    rpc.await;
                    Vec::new()
                }),
            ));
        }
        let mut local_socket = None;
        if manifest.local.enabled {
            let path = crate::local::socket_path(manifest);
            if let Some(listener) = crate::local::listen(&path) {
                local_socket = Some(path.clone());
                if roles.name_service || roles.rpc {
                    tokio::spawn(crate::local::announce_local_mode(
                        broker_rx.clone(),
                        path.clone(),
                        plughost_client::connection::redact(
                            &broker_settings(options, manifest).url,
                        ),
                        LOCAL_MODE_NOTICE_AFTER,
                    ));
                }
                let config = crate::local::LocalConfig {
                    host_name: manifest.host.name.clone(),
                    limits: manifest.limits,
                };
                let serve = crate::local::serve(
                    listener,
                    path,
                    config,
                    registry_tx.subscribe(),
                    shutdown.clone(),
                );
                tasks.push((
                    "local socket",
                    tokio::spawn(async move {
                        serve.await;
                        Vec::new()
                    }),
                ));
            }
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
            tasks.push((
                "service manager",
                tokio::spawn(async move {
                    let _ = manager.task.await;
                    Vec::new()
                }),
            ));
        }
        if roles.services {
            let config = ServicesConfig {
                host_name: manifest.host.name.clone(),
                discovery: zmq.discovery.clone(),
                management: zmq.management.clone(),
                heartbeat: Duration::from_millis(zmq.heartbeat_interval_ms),
                stop_grace: services_stop_grace(manifest),
                limits: tracker::limits(zmq),
                curve: tracker::client_curve(zmq)?,
            };
            tasks.push((
                "tracked services",
                tokio::spawn(tracker::services::run(
                    config,
                    registry_tx.subscribe(),
                    Arc::clone(&services),
                    shutdown.clone(),
                )),
            ));
        }
        if let Some(listener) = http {
            let view = StatusView {
                name: manifest.host.name.clone(),
                registry: registry_tx.subscribe(),
                served: served.clone(),
                retired: Arc::clone(&retired),
                broker: broker_rx.clone(),
                health: Arc::clone(&health),
                services: Arc::clone(&services),
            };
            let serve = crate::http::serve(listener, Arc::new(view), shutdown.clone());
            tasks.push((
                "HTTP endpoint",
                tokio::spawn(async move {
                    serve.await;
                    Vec::new()
                }),
            ));
        }
        Ok(Self {
            name: manifest.host.name.clone(),
            registry: registry_tx,
            served,
            broker: broker_rx,
            health,
            services,
            trigger,
            tasks: Mutex::new(tasks),
            retired,
            reloading: tokio::sync::Mutex::new(()),
            started_with: manifest.clone(),
            local_socket,
        })
    }

    /// The local socket this host serves (None: `[local] enabled = false`,
    /// or another host serves that path).
    pub fn local_socket(&self) -> Option<&std::path::Path> {
        self.local_socket.as_deref()
    }

    /// The plugin set being served now.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.borrow().clone()
    }

    /// Applies a changed manifest: loads what is new or changed beside what
    /// runs, hands state over to replacements that keep it, then swaps the
    /// whole set. On error nothing changes: a refused state import leaves
    /// the old instance serving.
    pub async fn reload(&self, manifest: &Manifest) -> Result<Changes, HostError> {
        let _one_at_a_time = self.reloading.lock().await;
        let current = self.registry();
        let target = manifest.clone();
        let rebuilt = Arc::clone(&current);
        let (next, changes) = tokio::task::spawn_blocking(move || rebuild(&rebuilt, &target))
            .await
            .map_err(|e| HostError::Reload {
                path: manifest.source.clone(),
                reason: format!("the reload task failed: {e}"),
            })??;
        self.warn_about_unreloadable(manifest);
        if changes.is_empty() {
            return Ok(changes);
        }
        let handovers = handovers(&current, &next);
        hand_state_over(&current, &handovers).await?;
        for plugin in next.plugins() {
            if plugin.state() != PluginState::Serving {
                plugin.set_state(PluginState::Serving);
                info!(
                    plugin = plugin.name(),
                    version = plugin.version(),
                    instance = plugin.id().get(),
                    sha256 = &plugin.sha256()[..12],
                    "plugin serving"
                );
            }
        }
        let next = Arc::new(next);
        let old = self.registry.send_replace(Arc::clone(&next));
        let gone = old
            .plugins()
            .iter()
            .filter(|p| !next.plugins().iter().any(|n| n.id() == p.id()));
        let mut removed = Vec::new();
        for plugin in gone {
            match next.plugins().iter().find(|p| p.name() == plugin.name()) {
                Some(successor) => {
                    // Calls that found the old instance go to the new one.
                    plugin.hand_over_to(Arc::clone(successor));
                    self.retire(Arc::clone(plugin), false);
                }
                None => removed.push(Arc::clone(plugin)),
            }
        }
        // A removed plugin serves until the RPC roles stop routing to it.
        self.wait_live(&next).await;
        for plugin in removed {
            self.retire(plugin, true);
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

    /// Marks a plugin draining, and retired once its in-flight calls are
    /// done (woken by the last one, not polled). A removed plugin's calls
    /// are cancelled (their methods may give up early); a replaced one's
    /// finish as they are.
    fn retire(&self, plugin: Arc<PluginHandle>, removed: bool) {
        if plugin.state() != PluginState::Retired {
            plugin.set_state(PluginState::Draining);
            info!(
                plugin = plugin.name(),
                version = plugin.version(),
                instance = plugin.id().get(),
                in_flight = plugin.in_flight(),
                "plugin draining"
            );
        }
        if removed {
            plugin.cancel_scope().cancel();
        }
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
            plugin.drained().await;
            plugin.set_state(PluginState::Retired);
            info!(
                plugin = plugin.name(),
                version = plugin.version(),
                instance = plugin.id().get(),
                "plugin retired (its library stays mapped)"
            );
        });
    }

    fn warn_about_unreloadable(&self, manifest: &Manifest) {
        let was = &self.started_with;
        // allow_insecure_plugin_files follows reloads: it decides how the
        // next load treats plugin files.
        let host_changed = HostSettings {
            allow_insecure_plugin_files: manifest.host.allow_insecure_plugin_files,
            ..was.host.clone()
        } != manifest.host;
        if was.rabbitmq != manifest.rabbitmq
            || was.zeromq != manifest.zeromq
            || was.roles != manifest.roles
            || host_changed
            || was.limits != manifest.limits
            || was.http != manifest.http
        {
            warn!(
                "[host], [rabbitmq], [zeromq], [roles], [limits] and [http] changes take effect only after a restart"
            );
        }
    }

    /// What `plughost status` shows.
    pub fn status(&self) -> HostStatus {
        use crate::http::HostView;
        self.view().status()
    }

    /// Whether the host serves: what `/readyz` answers.
    pub fn readiness(&self) -> crate::http::Readiness {
        use crate::http::HostView;
        self.view().readiness()
    }

    fn view(&self) -> StatusView {
        StatusView {
            name: self.name.clone(),
            registry: self.registry.subscribe(),
            served: self.served.clone(),
            retired: Arc::clone(&self.retired),
            broker: self.broker.clone(),
            health: Arc::clone(&self.health),
            services: Arc::clone(&self.services),
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

    /// Stops every role within `[host] shutdown_grace_ms`: consumers are cancelled, in-flight
    /// calls finish, services are told to stop and say BYE. Returns what was
    /// still running when the grace ran out (empty when everything
    /// stopped): roles that did not finish (they are aborted), services that
    /// ignored stop and calls still inside plugin code. Their threads cannot
    /// be stopped from outside; they end with the process.
    pub async fn shutdown(&self) -> Vec<String> {
        let grace = Duration::from_millis(self.started_with.host.shutdown_grace_ms);
        self.shutdown_within(grace).await
    }

    /// [`Host::shutdown`] with another grace than the manifest's.
    pub async fn shutdown_within(&self, grace: Duration) -> Vec<String> {
        self.trigger.fire();
        // Methods that watch their call's cancellation give up now.
        let retired = self.retired.lock().map(|r| r.clone()).unwrap_or_default();
        for plugin in self.registry().plugins().iter().chain(&retired) {
            plugin.cancel_scope().cancel();
        }
        let deadline = Instant::now() + grace;
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        let mut abandoned = Vec::new();
        for (role, mut task) in tasks {
            match tokio::time::timeout_at(deadline.into(), &mut task).await {
                Ok(Ok(left)) => abandoned.extend(left),
                Ok(Err(e)) => abandoned.push(format!("the {role} role failed: {e}")),
                Err(_) => {
                    task.abort();
                    abandoned.push(format!("the {role} role did not stop in time"));
                }
            }
        }
        let retired = self.retired.lock().map(|r| r.clone()).unwrap_or_default();
        for plugin in self.registry().plugins().iter().chain(&retired) {
            let running = plugin.in_flight();
            if running > 0 {
                abandoned.push(format!(
                    "plugin {} {}: {running} call(s) still running",
                    plugin.name(),
                    plugin.version()
                ));
            }
        }
        abandoned
    }
}

/// The HTTP endpoint's view of a host: the host's shared state, without
/// the host (the endpoint starts with it, before it exists).
struct StatusView {
    name: String,
    registry: watch::Receiver<Arc<Registry>>,
    served: Option<watch::Receiver<Arc<Registry>>>,
    retired: Arc<Mutex<Vec<Arc<PluginHandle>>>>,
    broker: watch::Receiver<BrokerState>,
    health: Arc<RpcHealth>,
    services: Arc<ServiceBoard>,
}

impl crate::http::HostView for StatusView {
    fn status(&self) -> HostStatus {
        let registry = self.registry.borrow().clone();
        let mut plugins: Vec<PluginStatus> = registry
            .plugins()
            .iter()
            .map(|p| PluginStatus::of(p))
            .collect();
        if let Ok(retired) = self.retired.lock() {
            plugins.extend(retired.iter().map(|p| PluginStatus::of(p)));
        }
        let broker = match *self.broker.borrow() {
            BrokerState::Serving if self.health.all_serving() => "serving",
            BrokerState::Serving => "degraded",
            BrokerState::Disconnected => "disconnected",
        };
        HostStatus {
            host: self.name.clone(),
            broker: broker.to_owned(),
            plugins,
            channels: self.health.report(),
            services: self.services.snapshot(),
            faults: faults::global().counts(),
        }
    }

    fn readiness(&self) -> crate::http::Readiness {
        use crate::http::Readiness::{NotReady, Ready};
        let Some(served) = &self.served else {
            // No broker roles: serving is the local socket's and the tracker's.
            return Ready;
        };
        if *self.broker.borrow() == BrokerState::Disconnected {
            return NotReady(
                "the broker is not connected (the RPC roles are reconnecting)".to_owned(),
            );
        }
        if !self.health.all_serving() {
            let channels = self.health.report();
            return NotReady(match channels.iter().find(|c| !c.serving()) {
                Some(c) => format!(
                    "broker channel {} is {}{}",
                    c.channel,
                    c.state,
                    c.problem
                        .as_deref()
                        .map(|p| format!(": {p}"))
                        .unwrap_or_default()
                ),
                None => "the broker connection is closing".to_owned(),
            });
        }
        if !Arc::ptr_eq(&served.borrow(), &self.registry.borrow()) {
            return NotReady("the routes of the latest reload are not consumed yet".to_owned());
        }
        Ready
    }
}

/// A replacement that takes over its predecessor's state: `(old, new)`.
type Handover = (Arc<PluginHandle>, Arc<PluginHandle>);

/// The replacements in `next` whose old and new instance both keep state.
fn handovers(current: &Registry, next: &Registry) -> Vec<Handover> {
    next.plugins()
        .iter()
        .filter_map(|new| {
            let old = current.plugins().iter().find(|p| p.name() == new.name())?;
            if old.id() == new.id() {
                return None;
            }
            match (old.descriptor().keeps_state, new.descriptor().keeps_state) {
                (true, true) => Some((Arc::clone(old), Arc::clone(new))),
                (true, false) => {
                    warn!(
                        plugin = new.name(),
                        from = old.version(),
                        to = new.version(),
                        "the new version keeps no state; the old instance's state is dropped"
                    );
                    None
                }
                _ => None,
            }
        })
        .collect()
}

/// Hands each old instance's state to its replacement: the old ones stop
/// taking calls (new calls wait at their gate), their calls in flight
/// finish, they export, the new ones import. On any failure every old
/// instance serves again and the reload is refused; the new instances
/// never served a call.
async fn hand_state_over(current: &Registry, handovers: &[Handover]) -> Result<(), HostError> {
    if handovers.is_empty() {
        return Ok(());
    }
    for (old, _) in handovers {
        old.set_state(PluginState::Draining);
        info!(
            plugin = old.name(),
            instance = old.id().get(),
            in_flight = old.in_flight(),
            "plugin draining to hand its state over"
        );
    }
    let resume = |reason: String, plugin: &str| {
        for (old, _) in handovers {
            old.set_state(PluginState::Serving);
        }
        faults::note(Fault::ReloadRefused);
        HostError::Handover {
            plugin: plugin.to_owned(),
            reason,
        }
    };
    for (old, _) in handovers {
        // In-flight calls end by their method's timeout; a plugin that
        // overruns it by far must not hold the reload (and the calls
        // waiting at its gate) forever.
        let limit = drain_limit(current, old);
        if tokio::time::timeout(limit, old.drained()).await.is_err() {
            return Err(resume(
                format!(
                    "{} call(s) still running after {} ms; the old instance goes on serving",
                    old.in_flight(),
                    limit.as_millis()
                ),
                old.name(),
            ));
        }
    }
    let pairs = handovers.to_vec();
    let moved = tokio::task::spawn_blocking(move || {
        for (old, new) in &pairs {
            let started = Instant::now();
            let snapshot = old.export_state().map_err(|e| {
                (old.name().to_owned(), format!("export from version {} failed: {e}", old.version()))
            })?;
            let Some(snapshot) = snapshot else { continue };
            let bytes = snapshot.data.len();
            new.import_state(snapshot).map_err(|e| {
                (new.name().to_owned(), format!(
                    "version {} refused the state of version {}: {e}; the old instance goes on serving",
                    new.version(),
                    old.version()
                ))
            })?;
            info!(plugin = new.name(), from = old.version(), to = new.version(), bytes, took_ms = started.elapsed().as_millis() as u64, "state handed over");
        }
        Ok::<(), (String, String)>(())
    })
    .await;
    match moved {
        Ok(Ok(())) => Ok(()),
        Ok(Err((plugin, reason))) => Err(resume(reason, &plugin)),
        Err(e) => Err(resume(format!("the hand-over task failed: {e}"), "?")),
    }
}

/// How long a hand-over waits for an old instance's calls: its slowest
/// method's timeout, and a little more.
fn drain_limit(registry: &Registry, plugin: &PluginHandle) -> Duration {
    registry
        .methods()
        .filter(|m| m.plugin.id() == plugin.id())
        .map(|m| m.timeout)
        .max()
        .unwrap_or(crate::plugins::registry::DEFAULT_TIMEOUT)
        + Duration::from_secs(1)
}

/// How long the tracked services may take to stop: most of the host's
/// grace, so that they still say BYE before the grace runs out.
fn services_stop_grace(manifest: &Manifest) -> Duration {
    let grace = Duration::from_millis(manifest.host.shutdown_grace_ms);
    grace
        .saturating_sub(Duration::from_millis(500))
        .max(grace / 2)
}

/// The endpoint a manager binds for a configured one: `tcp://*:PORT` (all
/// interfaces, the old default) stays as written; anything else is used as is.
fn bind_form(endpoint: &str) -> String {
    endpoint.replace("tcp://*:", "tcp://0.0.0.0:")
}

/// What a host says once at start, at the default log level: what it
/// serves (plugins, versions, methods and their routes), which roles run,
/// and where to reach it (broker, tracker endpoints, admin socket). One
/// record, so an operator reading a log sees the whole picture at once.
pub fn startup_summary(
    manifest: &Manifest,
    registry: &Registry,
    broker: &BrokerSettings,
    admin: Option<&std::path::Path>,
    local: Option<&std::path::Path>,
) -> String {
    use std::fmt::Write;
    let roles = &manifest.roles;
    let on: Vec<&str> = [
        (roles.name_service, "name service"),
        (roles.rpc, "RPC"),
        (roles.manager, "service manager"),
        (roles.services, "tracked services"),
        (roles.admin, "admin"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    let mut text = format!(
        "host {} serving {} plugin(s); roles: {}",
        manifest.host.name,
        registry.plugins().len(),
        if on.is_empty() {
            "none".to_owned()
        } else {
            on.join(", ")
        }
    );
    for plugin in registry.plugins() {
        let _ = write!(
            text,
            "\n  plugin {} {} ({})",
            plugin.name(),
            plugin.version(),
            plugin.file().display()
        );
        for method in registry
            .methods()
            .filter(|m| Arc::ptr_eq(&m.plugin, plugin))
        {
            let _ = write!(
                text,
                "\n    method {} -> route {}",
                method.name, method.route
            );
        }
        for service in &plugin.descriptor().services {
            let _ = write!(text, "\n    tracked service {}", service.name);
        }
    }
    if roles.name_service || roles.rpc {
        let _ = write!(
            text,
            "\n  broker {} (exchanges {} and {})",
            plughost_client::connection::redact(&broker.url),
            broker.exchanges.rpc,
            broker.exchanges.ns
        );
    }
    let zmq = &manifest.zeromq;
    if roles.manager {
        let _ = write!(
            text,
            "\n  service manager on {} (beacons) and {} (management)",
            zmq.discovery, zmq.management
        );
    } else if roles.services {
        let _ = write!(
            text,
            "\n  tracked services report to the manager at {}",
            zmq.management
        );
    }
    if let Some(local) = local {
        let _ = write!(
            text,
            "\n  local socket {} (finds and calls from this machine)",
            local.display()
        );
    }
    if let Some(admin) = admin {
        let _ = write!(text, "\n  admin socket {}", admin.display());
    }
    text
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
        Ok(changes) => crate::metrics::reload(why, Ok(changes)),
        Err(e) => {
            crate::metrics::reload(why, Err(e));
            faults::note(Fault::ReloadRefused);
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

/// "Re-read the manifest", from one of the triggers; `reply` gets the
/// outcome when someone waits for it (`plughost reload`).
struct ReloadRequest {
    trigger: &'static str,
    reply: Option<oneshot::Sender<Result<Changes, String>>>,
}

/// The admin socket's view of a host: status straight from the host (it
/// never waits for a reload), reloads through the control loop.
struct AdminBridge {
    host: Arc<Host>,
    reloads: mpsc::Sender<ReloadRequest>,
}

impl AdminHandler for AdminBridge {
    fn status(&self) -> HostStatus {
        self.host.status()
    }

    fn reload(&self) -> Pin<Box<dyn Future<Output = AdminReply> + Send + '_>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            let request = ReloadRequest {
                trigger: "plughost reload",
                reply: Some(reply),
            };
            if self.reloads.send(request).await.is_err() {
                return AdminReply::failed("the host is shutting down");
            }
            match answer.await {
                Ok(Ok(changes)) => AdminReply {
                    ok: true,
                    error: None,
                    changes: Some(changes),
                    status: None,
                },
                Ok(Err(e)) => AdminReply::failed(e),
                Err(_) => AdminReply::failed("the host is shutting down"),
            }
        })
    }
}

/// Turns file changes into reload requests; follows the file set it is
/// sent (in place, so changes seen during a reload still count). When
/// watching fails at start it is tried again with the next file set.
async fn follow_files(
    mut files: watch::Receiver<Vec<PathBuf>>,
    reloads: mpsc::Sender<ReloadRequest>,
) {
    let mut watch: Option<FileWatch> = None;
    loop {
        if watch.is_none() || files.has_changed().unwrap_or(false) {
            let wanted = files.borrow_and_update().clone();
            let followed = match watch.as_mut() {
                Some(w) => w.follow(wanted),
                None => FileWatch::new(wanted).map(|w| watch = Some(w)),
            };
            if let Err(e) = followed {
                warn!(error = %e, "cannot watch the manifest and plugin files; reload with SIGHUP or `plughost reload`");
            }
        }
        tokio::select! {
            _ = async { match watch.as_mut() { Some(w) => w.changed().await, None => std::future::pending().await } } => {
                let request = ReloadRequest { trigger: "file change", reply: None };
                if reloads.send(request).await.is_err() {
                    return;
                }
            }
            changed = files.changed() => if changed.is_err() { return },
        }
    }
}

/// Turns SIGHUP into reload requests.
async fn follow_hangups(reloads: mpsc::Sender<ReloadRequest>) {
    let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        warn!("cannot listen for SIGHUP; reload with `plughost reload`");
        return;
    };
    while hangup.recv().await.is_some() {
        let request = ReloadRequest {
            trigger: "SIGHUP",
            reply: None,
        };
        if reloads.send(request).await.is_err() {
            return;
        }
    }
}

/// Runs a host until `shutdown` resolves: serves the roles, follows the
/// manifest and plugin files, reloads on SIGHUP, answers the admin socket.
///
/// Each trigger (file watch, SIGHUP, admin connection) is a task of its
/// own that sends [`ReloadRequest`]s to one control loop, which applies
/// them one at a time. On shutdown every role gets `[host]
/// shutdown_grace_ms` to stop; what is still running then is named in
/// [`HostError::ShutdownIncomplete`].
pub async fn run(
    manifest: &Manifest,
    options: &HostOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), HostError> {
    let host = Arc::new(Host::start(manifest, options).await?);
    let path = manifest.source.clone();
    let (reload_tx, mut reloads) = mpsc::channel::<ReloadRequest>(16);
    let (stop_triggers, triggers_stop) = shutdown::channel();
    let mut triggers = Vec::new();
    let admin_path = admin::socket_path(manifest);
    if manifest.roles.admin {
        let listener = admin::listen(&admin_path)?;
        let bridge = Arc::new(AdminBridge {
            host: Arc::clone(&host),
            reloads: reload_tx.clone(),
        });
        triggers.push(tokio::spawn(admin::serve(
            listener,
            bridge,
            triggers_stop.clone(),
        )));
    }
    let broker = broker_settings(options, manifest);
    info!(
        "{}",
        startup_summary(
            manifest,
            &host.registry(),
            &broker,
            manifest.roles.admin.then_some(admin_path.as_path()),
            host.local_socket(),
        )
    );
    let (files_tx, files_rx) = watch::channel(followed_files(&path, &host));
    if manifest.host.watch {
        triggers.push(tokio::spawn(follow_files(files_rx, reload_tx.clone())));
    }
    triggers.push(tokio::spawn(follow_hangups(reload_tx)));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(request) = reloads.recv() => {
                let result = reload_from_disk(&host, &path, request.trigger).await;
                if result.is_ok() {
                    // The manifest may name other plugin files now: follow the new set.
                    files_tx.send_if_modified(|files| {
                        let next = followed_files(&path, &host);
                        let changed = *files != next;
                        *files = next;
                        changed
                    });
                }
                if let Some(reply) = request.reply {
                    let _ = reply.send(result.map_err(|e| e.to_string()));
                }
            }
        }
    }
    let grace = Duration::from_millis(manifest.host.shutdown_grace_ms);
    info!(grace_ms = grace.as_millis() as u64, "shutting down");
    stop_triggers.fire();
    for trigger in triggers {
        trigger.abort();
    }
    let abandoned = host.shutdown_within(grace).await;
    if manifest.roles.admin {
        let _ = std::fs::remove_file(&admin_path);
    }
    if abandoned.is_empty() {
        info!("host stopped");
        return Ok(());
    }
    for what in &abandoned {
        error!(abandoned = %what, "shutdown gave up on it");
    }
    Err(HostError::ShutdownIncomplete {
        grace_ms: grace.as_millis() as u64,
        abandoned,
    })
}

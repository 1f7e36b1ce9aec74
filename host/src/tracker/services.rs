//! Runs a host's tracked services and keeps them in step with its plugin set.
//!
//! The host registers itself as a service, and every tracked service of
//! every loaded plugin runs on its own OS thread (plugin code is blocking)
//! with an agent that registers it. When a reload removes or replaces a
//! plugin, its services are told to stop, say BYE and end; a replacement's
//! services start from the new instance. When the manager asks a service to
//! stop, its run function is told to stop, and the agent says BYE when it
//! returns; such a service stays stopped across reloads that leave its
//! plugin as it was, and starts again only with a new instance of its
//! plugin (a reload that changes or re-adds it).
//!
//! Services are supervised: one whose run function returns an error or
//! panics (or, with `restart = "always"`, returns at all) without being
//! asked to stop is started again after a backoff of 1 s, doubling to 60 s
//! (reset once a run lasted a minute). Restarts are counted, logged, and
//! shown by `plughost status` ([`ServiceBoard`]). A service stopped on
//! purpose (by the manager, shutdown, or its plugin leaving) is never
//! restarted. Services are keyed by their plugin instance's
//! [`InstanceId`], which is never reused.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Condvar, Mutex},
    time::{Duration, Instant},
};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RResult, RStr, RString},
};
use plughost_loader::InstanceId;
use plughost_plugin_api::{
    ffi::{ServiceHost, ServiceHost_TO},
    LogLevel, PluginError,
};
use tokio::sync::watch;
use tracing::{info, warn};

use super::{
    agent::{self, AgentConfig, AgentHandle},
    curve::ClientCurve,
    socket::Limits,
};
use crate::{
    manifest::RestartPolicy,
    plugins::{PluginHandle, Registry},
    proto::{address::RawAddress, uid::Uid},
    shutdown::Shutdown,
    status::ServiceStatus,
};

/// Where the manager is and how often to say hello.
#[derive(Debug, Clone)]
pub struct ServicesConfig {
    /// This host's name.
    pub host_name: String,
    /// The manager's discovery endpoint.
    pub discovery: String,
    /// The manager's management endpoint.
    pub management: String,
    /// Time between HELLOs.
    pub heartbeat: Duration,
    /// On shutdown, how long services get to return after being told to
    /// stop; the ones still running then are abandoned (and named).
    pub stop_grace: Duration,
    /// Message size and queue limits of the agents' sockets.
    pub limits: Limits,
    /// CURVE keys, when the manager requires them.
    pub curve: Option<ClientCurve>,
}

/// How long a service stopped during a reload gets to return.
const RELOAD_STOP_GRACE: Duration = Duration::from_secs(5);

/// The first restart's delay; each further one doubles it.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest delay between restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The delay before restart number `restart + 1` (0-based): 1 s, 2 s,
/// 4 s, ... up to 60 s.
pub fn backoff(restart: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32.checked_shl(restart.min(31)).unwrap_or(u32::MAX))
        .min(MAX_BACKOFF)
}

/// The tracked services' states, shared between the services role (which
/// writes) and `plughost status` (which reads).
#[derive(Debug, Default)]
pub struct ServiceBoard(Mutex<BTreeMap<(InstanceId, String), ServiceStatus>>);

impl ServiceBoard {
    /// Every service's status, by plugin and service name.
    pub fn snapshot(&self) -> Vec<ServiceStatus> {
        let board = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = board.values().cloned().collect();
        all.sort_by(|a, b| {
            (&a.plugin, &a.service, a.instance).cmp(&(&b.plugin, &b.service, b.instance))
        });
        all
    }

    fn update(&self, key: &ServiceKey, plugin: &str, change: impl FnOnce(&mut ServiceStatus)) {
        let mut board = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let status = board.entry(key.clone()).or_insert_with(|| ServiceStatus {
            plugin: plugin.to_owned(),
            service: key.1.clone(),
            instance: key.0.get(),
            state: "running".to_owned(),
            restarts: 0,
            last_error: None,
        });
        change(status);
    }

    fn forget_except(&self, keep: &[ServiceKey]) {
        let mut board = self.0.lock().unwrap_or_else(|p| p.into_inner());
        board.retain(|key, _| keep.contains(key));
    }
}

/// A stop signal a blocking thread can wait on.
#[derive(Default)]
struct StopFlag {
    stopped: Mutex<bool>,
    changed: Condvar,
}

impl StopFlag {
    fn set(&self) {
        if let Ok(mut s) = self.stopped.lock() {
            *s = true;
            self.changed.notify_all();
        }
    }

    fn is_set(&self) -> bool {
        self.stopped.lock().map(|s| *s).unwrap_or(true)
    }

    fn wait(&self, timeout: Duration) -> bool {
        let Ok(guard) = self.stopped.lock() else {
            return true;
        };
        match self
            .changed
            .wait_timeout_while(guard, timeout, |stopped| !*stopped)
        {
            Ok((stopped, _)) => *stopped,
            Err(_) => true,
        }
    }
}

/// The host side of [`ServiceHost`] for one running service.
struct HostForService {
    stop: Arc<StopFlag>,
    uid: Uid,
    label: String,
    agent: Arc<AgentHandle>,
}

impl ServiceHost for HostForService {
    fn should_stop(&self) -> bool {
        self.stop.is_set()
    }

    fn wait_stop(&self, timeout_ms: u64) -> bool {
        self.stop.wait(Duration::from_millis(timeout_ms))
    }

    fn service_id(&self) -> RString {
        self.uid.to_string().into()
    }

    fn ask_manager(&self, command: RStr<'_>) -> RResult<RString, PluginError> {
        match self.agent.ask_blocking(command.as_str()) {
            Ok(answer) => RResult::ROk(
                answer
                    .trimmed_body()
                    .iter()
                    .map(|l| format!("{l}\n"))
                    .collect::<String>()
                    .into(),
            ),
            Err(e) => RResult::RErr(PluginError::new(503, e.to_string())),
        }
    }

    fn log(&self, level: LogLevel, message: RStr<'_>) {
        plughost_loader::host_api::emit(&self.label, level, message.as_str());
    }
}

/// One running tracked service.
struct Running {
    plugin: Arc<PluginHandle>,
    agent: Arc<AgentHandle>,
    stop: Arc<StopFlag>,
    /// Set when its run function has returned: `Ok` or why it failed.
    /// Waiting on this rather than joining the thread means a service that
    /// ignores stop never ties up a task or a blocking thread of the runtime.
    finished: watch::Receiver<Option<Result<(), String>>>,
    /// Restarts before this run.
    restarts: u32,
    /// When this run started.
    started: tokio::time::Instant,
}

/// Services waiting out their backoff before they start again, keyed by
/// `K`, each with what it needs to start (`T`). Time is tokio's, so tests
/// drive it with `tokio::time::pause`.
struct Restarts<K, T> {
    pending: HashMap<K, Pending<T>>,
}

/// One service waiting out its backoff.
struct Pending<T> {
    start_with: T,
    /// Restarts once it starts again.
    restarts: u32,
    at: tokio::time::Instant,
}

impl<K: std::hash::Hash + Eq + Clone, T> Restarts<K, T> {
    fn new() -> Self {
        Self {
            pending: HashMap::new(),
        }
    }

    /// Schedules restart number `restarts + 1` of a service whose run
    /// lasted `ran`; returns the delay. A run that lasted a minute starts
    /// the backoff over.
    fn schedule(&mut self, key: K, start_with: T, restarts: u32, ran: Duration) -> Duration {
        let step = if ran >= MAX_BACKOFF { 0 } else { restarts };
        let delay = backoff(step);
        self.pending.insert(
            key,
            Pending {
                start_with,
                restarts: restarts + 1,
                at: tokio::time::Instant::now() + delay,
            },
        );
        delay
    }

    /// The services whose backoff is over, with their restart counts.
    fn take_due(&mut self) -> Vec<(K, T, u32)> {
        let now = tokio::time::Instant::now();
        let due: Vec<K> = self
            .pending
            .iter()
            .filter(|(_, p)| p.at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        due.into_iter()
            .filter_map(|k| {
                self.pending
                    .remove(&k)
                    .map(|p| (k, p.start_with, p.restarts))
            })
            .collect()
    }

    fn contains(&self, key: &K) -> bool {
        self.pending.contains_key(key)
    }

    fn retain(&mut self, keep: impl Fn(&K) -> bool) {
        self.pending.retain(|k, _| keep(k));
    }
}

/// Runs the host's own registration and its plugins' tracked services until
/// `shutdown`, following `registry`. Returns the services that did not
/// stop within the grace (they keep their threads; they end with the
/// process).
pub async fn run(
    config: ServicesConfig,
    mut registry: watch::Receiver<Arc<Registry>>,
    board: Arc<ServiceBoard>,
    mut shutdown: Shutdown,
) -> Vec<String> {
    let first = registry.borrow_and_update().clone();
    let host = start_agent(
        &config,
        format!("plughost {}", config.host_name),
        host_details(&config, &first),
    );
    let mut services = Services {
        config: &config,
        board: &board,
        running: HashMap::new(),
        stopped: StoppedByManager::new(),
        pending: Restarts::new(),
    };
    let mut check = tokio::time::interval(Duration::from_millis(100));
    services.sync(&first).await;
    loop {
        tokio::select! {
            changed = registry.changed() => {
                if changed.is_err() { break; }
                let current = registry.borrow_and_update().clone();
                services.sync(&current).await;
            }
            _ = check.tick() => {
                let current = registry.borrow().clone();
                services.reap(&current).await;
                services.restart_due();
            }
            _ = shutdown.wait() => break,
        }
    }
    let mut running = std::mem::take(&mut services.running);
    // Tell every service at once, then wait for all against one deadline.
    let deadline = Instant::now() + config.stop_grace;
    for service in running.values() {
        service.stop.set();
    }
    let mut abandoned = Vec::new();
    for (_, service) in running.drain() {
        abandoned.extend(stop(service, deadline).await);
    }
    host.stop().await;
    abandoned
}

fn host_details(config: &ServicesConfig, registry: &Registry) -> Option<serde_json::Value> {
    let methods: Vec<&str> = registry.methods().map(|m| m.name.as_str()).collect();
    Some(serde_json::json!({ "host": config.host_name, "methods": methods }))
}

fn start_agent(
    config: &ServicesConfig,
    name: String,
    details: Option<serde_json::Value>,
) -> AgentHandle {
    let name: String = name
        .chars()
        .map(|c| {
            if matches!(c, ':' | '\r' | '\n') {
                ' '
            } else {
                c
            }
        })
        .collect();
    let address = RawAddress::new(name, Uid::new_v4())
        .expect("names without ':' or line breaks are valid addresses");
    agent::spawn(AgentConfig {
        address,
        discovery: config.discovery.clone(),
        management: config.management.clone(),
        heartbeat: config.heartbeat,
        details,
        limits: config.limits,
        curve: config.curve.clone(),
    })
}

/// A tracked service of one plugin instance: the instance and the service's name.
type ServiceKey = (InstanceId, String);

/// Services the manager stopped: they stay stopped while their instance serves.
type StoppedByManager = HashSet<ServiceKey>;

/// The services role's bookkeeping.
struct Services<'a> {
    config: &'a ServicesConfig,
    board: &'a ServiceBoard,
    running: HashMap<ServiceKey, Running>,
    stopped: StoppedByManager,
    pending: Restarts<ServiceKey, Arc<PluginHandle>>,
}

impl Services<'_> {
    /// Starts services of plugins new to the set, stops those of plugins
    /// gone; leaves out those the manager stopped, while their instance is
    /// the same, and those waiting out a backoff.
    async fn sync(&mut self, registry: &Registry) {
        let mut wanted = Vec::new();
        for plugin in registry.plugins() {
            for service in &plugin.descriptor().services {
                wanted.push(((plugin.id(), service.name.clone()), Arc::clone(plugin)));
            }
        }
        let keys: Vec<ServiceKey> = wanted.iter().map(|(k, _)| k.clone()).collect();
        let gone: Vec<_> = self
            .running
            .keys()
            .filter(|k| !keys.contains(k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(service) = self.running.remove(&key) {
                stop(service, Instant::now() + RELOAD_STOP_GRACE).await;
            }
        }
        self.stopped.retain(|key| keys.contains(key));
        self.pending.retain(|key| keys.contains(key));
        self.board.forget_except(&keys);
        for (key, plugin) in wanted {
            if self.stopped.contains(&key) || self.pending.contains(&key) {
                continue;
            }
            if !self.running.contains_key(&key) {
                self.start(key, plugin, 0);
            }
        }
    }

    fn start(&mut self, key: ServiceKey, plugin: Arc<PluginHandle>, restarts: u32) {
        let name = plugin.name().to_owned();
        let service = start_service(self.config, plugin, &key.1, restarts);
        self.board.update(&key, &name, |s| {
            s.state = "running".to_owned();
            s.restarts = restarts;
        });
        self.running.insert(key, service);
    }

    /// Ends services whose run function returned or whose manager asked them
    /// to stop; remembers the latter so that reloads do not restart them,
    /// and schedules restarts for the former as their policy says.
    async fn reap(&mut self, registry: &Registry) {
        for (key, service) in &self.running {
            if *service.agent.stop_requested().borrow() {
                service.stop.set();
                self.stopped.insert(key.clone());
            }
        }
        let finished: Vec<_> = self
            .running
            .iter()
            .filter(|(_, s)| s.has_finished())
            .map(|(k, _)| k.clone())
            .collect();
        for key in finished {
            let Some(service) = self.running.remove(&key) else {
                continue;
            };
            let outcome = service.outcome();
            let (plugin, restarts, ran) = (
                Arc::clone(&service.plugin),
                service.restarts,
                service.started.elapsed(),
            );
            let name = service.agent.address.to_string();
            stop(service, Instant::now() + RELOAD_STOP_GRACE).await;
            if self.stopped.contains(&key) {
                self.board
                    .update(&key, plugin.name(), |s| s.state = "stopped".to_owned());
                continue;
            }
            let policy = registry.restart_policy(plugin.name(), &key.1);
            let failed = outcome.is_err();
            let restart = match policy {
                RestartPolicy::Always => true,
                RestartPolicy::OnFailure => failed,
                RestartPolicy::Never => false,
            };
            let error = outcome.err();
            if !restart {
                info!(service = %name, ?policy, "tracked service ended; its restart policy keeps it so");
                self.board.update(&key, plugin.name(), |s| {
                    s.state = if failed { "failed" } else { "finished" }.to_owned();
                    s.last_error = error;
                });
                continue;
            }
            let delay = self
                .pending
                .schedule(key.clone(), Arc::clone(&plugin), restarts, ran);
            warn!(
                service = %name,
                restart = restarts + 1,
                delay_ms = delay.as_millis() as u64,
                error = error.as_deref().unwrap_or("none (it returned)"),
                "tracked service ended without being asked to stop; restarting it"
            );
            self.board.update(&key, plugin.name(), |s| {
                s.state = "restarting".to_owned();
                s.last_error = error;
            });
        }
    }

    /// Starts the services whose backoff is over.
    fn restart_due(&mut self) {
        for (key, plugin, restarts) in self.pending.take_due() {
            self.start(key, plugin, restarts);
        }
    }
}

fn start_service(
    config: &ServicesConfig,
    plugin: Arc<PluginHandle>,
    name: &str,
    restarts: u32,
) -> Running {
    let details = serde_json::json!({ "host": config.host_name, "plugin": plugin.name(), "version": plugin.version(), "service": name });
    let agent = Arc::new(start_agent(
        config,
        format!("{}.{} on {}", plugin.name(), name, config.host_name),
        Some(details),
    ));
    let stop = Arc::new(StopFlag::default());
    let host = HostForService {
        stop: Arc::clone(&stop),
        uid: agent.address.uid(),
        label: plugin.name().to_owned(),
        agent: Arc::clone(&agent),
    };
    let service = name.to_owned();
    let address = agent.address.clone();
    let (done, finished) = watch::channel(None);
    let instance = Arc::clone(&plugin);
    let thread = std::thread::Builder::new()
        .name(format!("service-{service}"))
        .spawn(move || {
            info!(service = %address, restarts, "tracked service started");
            let outcome = plugin
                .run_service(&service, ServiceHost_TO::from_value(host, TD_Opaque))
                .map_err(|e| e.to_string());
            if let Err(e) = &outcome {
                warn!(service = %address, error = %e, "tracked service failed");
            }
            let _ = done.send(Some(outcome));
        });
    if let Err(e) = thread {
        // The closure (and `done`) was dropped unrun: `finished` reads as ended.
        warn!(error = %e, "cannot start a thread for a tracked service");
    }
    Running {
        plugin: instance,
        agent,
        stop,
        finished,
        restarts,
        started: tokio::time::Instant::now(),
    }
}

impl Running {
    /// True once its run function returned (or its thread never started).
    fn has_finished(&self) -> bool {
        self.finished.borrow().is_some() || self.finished.has_changed().is_err()
    }

    /// How its run ended (a thread that never started counts as failed).
    fn outcome(&self) -> Result<(), String> {
        self.finished
            .borrow()
            .clone()
            .unwrap_or_else(|| Err("its thread ended without an answer".to_owned()))
    }
}

/// Tells a service to stop, waits until `deadline` for its run function to
/// return, says BYE. Returns the service's name when it did not return in
/// time: its thread is left behind (threads cannot be stopped from outside).
async fn stop(service: Running, deadline: Instant) -> Option<String> {
    service.stop.set();
    let mut finished = service.finished.clone();
    // A dropped sender (thread gone) counts as returned too.
    let returned = tokio::time::timeout_at(deadline.into(), finished.wait_for(Option::is_some))
        .await
        .is_ok();
    let name = service.agent.address.to_string();
    if !returned {
        warn!(service = %name, "tracked service ignored stop; leaving its thread behind");
    }
    service.agent.request_stop();
    if let Ok(agent) = Arc::try_unwrap(service.agent) {
        agent.stop().await;
    }
    (!returned).then(|| format!("tracked service {name} ignored stop"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_one_second_to_a_minute() {
        let delays: Vec<u64> = (0..9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    /// Advances the paused clock by `ms` and returns what is due then.
    async fn after(restarts: &mut Restarts<&'static str, ()>, ms: u64) -> Vec<u32> {
        tokio::time::advance(Duration::from_millis(ms)).await;
        restarts.take_due().into_iter().map(|(_, _, n)| n).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn restarts_wait_one_second_then_two_and_a_long_run_starts_over() {
        let mut restarts = Restarts::new();
        let short = Duration::from_millis(10);
        assert_eq!(
            restarts.schedule("svc", (), 0, short),
            Duration::from_secs(1)
        );
        assert!(restarts.contains(&"svc"));
        assert_eq!(after(&mut restarts, 999).await, Vec::<u32>::new());
        assert_eq!(after(&mut restarts, 1).await, [1], "restart 1 after 1 s");
        assert_eq!(
            restarts.schedule("svc", (), 1, short),
            Duration::from_secs(2)
        );
        assert_eq!(after(&mut restarts, 1999).await, Vec::<u32>::new());
        assert_eq!(after(&mut restarts, 1).await, [2], "restart 2 after 2 more");
        assert_eq!(
            restarts.schedule("svc", (), 6, short),
            MAX_BACKOFF,
            "capped"
        );
        assert_eq!(after(&mut restarts, 59_999).await, Vec::<u32>::new());
        assert_eq!(after(&mut restarts, 1).await, [7]);
        // A run that lasted a minute was healthy: back to 1 s.
        assert_eq!(
            restarts.schedule("svc", (), 7, MAX_BACKOFF),
            Duration::from_secs(1)
        );
        restarts.retain(|_| false);
        assert!(
            !restarts.contains(&"svc"),
            "a service that left is forgotten"
        );
    }
}

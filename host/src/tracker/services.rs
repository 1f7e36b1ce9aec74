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

use std::{
    collections::HashMap,
    sync::{Arc, Condvar, Mutex},
    time::{Duration, Instant},
};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RResult, RStr, RString},
};
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
    plugins::{PluginHandle, Registry},
    proto::{address::RawAddress, uid::Uid},
    shutdown::Shutdown,
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
    /// Turns true when its run function has returned. Waiting on this
    /// rather than joining the thread means a service that ignores stop
    /// never ties up a task or a blocking thread of the runtime.
    finished: watch::Receiver<bool>,
}

/// Runs the host's own registration and its plugins' tracked services until
/// `shutdown`, following `registry`. Returns the services that did not
/// stop within the grace (they keep their threads; they end with the
/// process).
pub async fn run(
    config: ServicesConfig,
    mut registry: watch::Receiver<Arc<Registry>>,
    mut shutdown: Shutdown,
) -> Vec<String> {
    let first = registry.borrow_and_update().clone();
    let host = start_agent(
        &config,
        format!("plughost {}", config.host_name),
        host_details(&config, &first),
    );
    let mut running: HashMap<ServiceKey, Running> = HashMap::new();
    let mut stopped = StoppedByManager::new();
    let mut check = tokio::time::interval(Duration::from_millis(100));
    sync(&config, &first, &mut running, &mut stopped).await;
    loop {
        tokio::select! {
            changed = registry.changed() => {
                if changed.is_err() { break; }
                let current = registry.borrow_and_update().clone();
                sync(&config, &current, &mut running, &mut stopped).await;
            }
            _ = check.tick() => reap(&mut running, &mut stopped).await,
            _ = shutdown.wait() => break,
        }
    }
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

/// A tracked service of one plugin instance: the instance's address and the
/// service's name.
type ServiceKey = (usize, String);

/// Services the manager stopped, with the plugin instance they belong to
/// (held so that its address, part of the key, is not reused by another
/// instance while it is remembered).
type StoppedByManager = HashMap<ServiceKey, Arc<PluginHandle>>;

/// Starts services of plugins new to the set, stops those of plugins gone;
/// leaves out those the manager stopped, while their instance is the same.
async fn sync(
    config: &ServicesConfig,
    registry: &Registry,
    running: &mut HashMap<ServiceKey, Running>,
    stopped: &mut StoppedByManager,
) {
    let mut wanted = Vec::new();
    for plugin in registry.plugins() {
        for service in &plugin.descriptor().services {
            wanted.push((
                (Arc::as_ptr(plugin) as usize, service.name.clone()),
                Arc::clone(plugin),
            ));
        }
    }
    let gone: Vec<_> = running
        .keys()
        .filter(|k| !wanted.iter().any(|(w, _)| w == *k))
        .cloned()
        .collect();
    for key in gone {
        if let Some(service) = running.remove(&key) {
            stop(service, Instant::now() + RELOAD_STOP_GRACE).await;
        }
    }
    stopped.retain(|key, _| wanted.iter().any(|(w, _)| w == key));
    for (key, plugin) in wanted {
        if stopped.contains_key(&key) {
            continue;
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(key) {
            let service = start_service(config, plugin, &slot.key().1);
            slot.insert(service);
        }
    }
}

fn start_service(config: &ServicesConfig, plugin: Arc<PluginHandle>, name: &str) -> Running {
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
    let (done, finished) = watch::channel(false);
    let instance = Arc::clone(&plugin);
    let thread = std::thread::Builder::new()
        .name(format!("service-{service}"))
        .spawn(move || {
            info!(service = %address, "tracked service started");
            if let Err(e) =
                plugin.run_service(&service, ServiceHost_TO::from_value(host, TD_Opaque))
            {
                warn!(service = %address, error = %e, "tracked service failed");
            }
            let _ = done.send(true);
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
    }
}

impl Running {
    /// True once its run function returned (or its thread never started).
    fn has_finished(&self) -> bool {
        *self.finished.borrow() || self.finished.has_changed().is_err()
    }
}

/// Ends services whose run function returned or whose manager asked them
/// to stop; remembers the latter so that reloads do not restart them.
async fn reap(running: &mut HashMap<ServiceKey, Running>, stopped: &mut StoppedByManager) {
    for (key, service) in running.iter() {
        if *service.agent.stop_requested().borrow() {
            service.stop.set();
            stopped.insert(key.clone(), Arc::clone(&service.plugin));
        }
    }
    let finished: Vec<_> = running
        .iter()
        .filter(|(_, s)| s.has_finished())
        .map(|(k, _)| k.clone())
        .collect();
    for key in finished {
        if let Some(service) = running.remove(&key) {
            stop(service, Instant::now() + RELOAD_STOP_GRACE).await;
        }
    }
}

/// Tells a service to stop, waits until `deadline` for its run function to
/// return, says BYE. Returns the service's name when it did not return in
/// time: its thread is left behind (threads cannot be stopped from outside).
async fn stop(service: Running, deadline: Instant) -> Option<String> {
    service.stop.set();
    let mut finished = service.finished.clone();
    // A dropped sender (thread gone) counts as returned too.
    let returned = tokio::time::timeout_at(deadline.into(), finished.wait_for(|done| *done))
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

//! The host: one entry point that takes a manifest and a shutdown future and
//! runs every role the manifest switches on (the mini-redis `server::run`
//! shape). The binary passes ctrl-c; tests pass their own.
//!
//! The current plugin set lives in a `watch` channel of `Arc<Registry>`:
//! roles read the newest registry per request and are told when it changes.

use std::{future::Future, sync::Arc};

use tokio::{sync::watch, task::JoinHandle};
use tracing::info;

use crate::{
    manifest::{Manifest, DEFAULT_AMQP_URL},
    plugins::{LoadError, Registry},
    rpc::{self, BrokerState, Exchanges, RpcConfig},
    shutdown::{self, ShutdownTrigger},
};

/// Why a host could not start.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A plugin of the manifest did not load.
    #[error(transparent)]
    Load(#[from] LoadError),
}

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

/// A running host. Dropping it does not stop it: call [`Host::shutdown`].
pub struct Host {
    registry: watch::Sender<Arc<Registry>>,
    broker: watch::Receiver<BrokerState>,
    trigger: ShutdownTrigger,
    tasks: Vec<JoinHandle<()>>,
}

impl Host {
    /// Loads the manifest's plugins and starts the roles it enables.
    pub async fn start(manifest: &Manifest, options: &HostOptions) -> Result<Self, HostError> {
        let registry = Registry::from_manifest(manifest)?;
        for plugin in registry.plugins() {
            plugin.set_state(crate::plugins::PluginState::Serving);
            info!(plugin = plugin.name(), version = plugin.version(), file = %plugin.file().display(), "plugin serving");
        }
        let (registry_tx, registry_rx) = watch::channel(Arc::new(registry));
        let (broker_tx, broker_rx) = watch::channel(BrokerState::Disconnected);
        let (trigger, shutdown) = shutdown::channel();
        let mut tasks = Vec::new();
        let roles = manifest.roles;
        if roles.name_service || roles.rpc {
            let config = RpcConfig {
                url: amqp_url(options, manifest),
                exchanges: Exchanges { rpc: manifest.rabbitmq.rpc_exchange.clone(), ns: manifest.rabbitmq.ns_exchange.clone() },
                host_name: manifest.host.name.clone(),
                prefetch: manifest.rabbitmq.prefetch,
                name_service: roles.name_service,
                rpc: roles.rpc,
            };
            tasks.push(tokio::spawn(rpc::serve(config, registry_rx, broker_tx, shutdown.clone())));
        }
        Ok(Self { registry: registry_tx, broker: broker_rx, trigger, tasks })
    }

    /// The plugin set being served now.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.borrow().clone()
    }

    /// Replaces the plugin set; roles pick it up at once.
    pub fn set_registry(&self, registry: Registry) {
        self.registry.send_replace(Arc::new(registry));
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

/// Runs a host until `shutdown` resolves.
pub async fn run(manifest: &Manifest, options: &HostOptions, shutdown: impl Future<Output = ()>) -> Result<(), HostError> {
    let host = Host::start(manifest, options).await?;
    shutdown.await;
    info!("shutting down");
    host.shutdown().await;
    Ok(())
}

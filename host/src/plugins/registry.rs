//! [`Registry`]: the set of plugins one host serves, and the method index
//! the RPC roles route calls through.
//!
//! A registry is built whole and checked whole (duplicate plugin and method
//! names are errors), so a host can build the next one beside the one that
//! is serving and swap only when it is complete.

use std::{
    collections::BTreeMap,
    sync::{Arc, OnceLock},
    time::Duration,
};

use plughost_plugin_api::PluginError;
use plughost_proto::rpc::v2::{ParamSignature, Signature};
use serde_json::Value;
use tokio::sync::Semaphore;

use super::{load, MethodDescriptor, PluginHandle, RegistryError};
use crate::{
    manifest::{Manifest, MethodOverride, RestartPolicy, ServiceSettings},
    metrics::MethodMeter,
};

/// Timeout of a method the manifest gives none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Calls of one method that may run at once when the manifest says nothing.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// One servable method: the plugin that has it and how this host serves it.
#[derive(Debug, Clone)]
pub struct MethodEntry {
    /// Method name.
    pub name: String,
    /// The plugin that serves it.
    pub plugin: Arc<PluginHandle>,
    /// The route it is served on (manifest override or the plugin's default).
    pub route: String,
    /// One-line documentation.
    pub doc: String,
    /// How long a call may take.
    pub timeout: Duration,
    /// How many calls may run at once on this host.
    pub concurrency: usize,
    /// Permits for those calls; a call holds one until the plugin returns,
    /// even past its timeout, so runaway calls cannot pile up threads.
    pub limiter: Arc<Semaphore>,
    /// Its `/metrics` handles and stats totals, looked up at its first call.
    meter: OnceLock<Arc<MethodMeter>>,
}

impl MethodEntry {
    /// What counts this method's calls (see [`MethodMeter`]).
    pub fn meter(&self) -> Arc<MethodMeter> {
        Arc::clone(
            self.meter
                .get_or_init(|| Arc::new(MethodMeter::new(self.plugin.name(), &self.name))),
        )
    }

    /// The method's published signature (parameter and result schemas), as
    /// `describe`, `plughost plugins --json` and `plughost status` show it.
    pub fn signature(&self) -> Signature {
        self.plugin
            .descriptor()
            .methods
            .iter()
            .find(|m| m.name == self.name)
            .map(signature_of)
            .unwrap_or(Signature {
                params: Vec::new(),
                variadic: true,
                result: Value::Bool(true),
            })
    }

    /// `plugin.method`: the name that reaches this method whatever other
    /// hosts serve under the same bare name.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.plugin.name(), self.name)
    }
}

/// A plugin's method description in its wire form.
pub fn signature_of(m: &MethodDescriptor) -> Signature {
    Signature {
        params: m
            .params
            .iter()
            .map(|p| ParamSignature {
                name: p.name.clone(),
                schema: p.schema.clone(),
                optional: p.optional,
            })
            .collect(),
        variadic: m.variadic,
        result: m.result_schema.clone(),
    }
}

/// The plugins of one host and an index of their methods.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    plugins: Vec<Arc<PluginHandle>>,
    /// Each plugin's thread share, in the order of `plugins`.
    threads: Vec<usize>,
    methods: BTreeMap<String, MethodEntry>,
    /// Restart policies the manifest sets, by plugin and service name.
    restart: BTreeMap<(String, String), RestartPolicy>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads every plugin of a manifest into a new registry; the first
    /// failure wins and nothing half-built escapes.
    pub fn from_manifest(manifest: &Manifest) -> Result<Self, RegistryError> {
        let mut registry = Self::new();
        for entry in &manifest.plugins {
            let plugin = Arc::new(load(&entry.spec(&manifest.host))?);
            registry.add_shared(Arc::clone(&plugin), &entry.methods, entry.threads)?;
            registry.set_services(&plugin, &entry.services)?;
        }
        registry.seal(manifest.host.max_plugin_threads)?;
        Ok(registry)
    }

    /// Adds a loaded plugin with the manifest's overrides for its methods
    /// and the default thread share.
    pub fn add(
        &mut self,
        plugin: PluginHandle,
        overrides: &BTreeMap<String, MethodOverride>,
    ) -> Result<(), RegistryError> {
        self.add_shared(Arc::new(plugin), overrides, None)
    }

    /// Adds a plugin that may also be in another registry (a reload keeps
    /// unchanged plugins as they are, with their state and counters).
    /// `threads` is its thread share; by default the sum of its methods'
    /// concurrency limits, so each method can use its whole limit at once.
    /// A method's limit defaults to [`DEFAULT_CONCURRENCY`], or the share
    /// when that is smaller; a limit set above the share could never be
    /// used, so it is refused. Call [`Registry::seal`] when the registry is
    /// complete.
    pub fn add_shared(
        &mut self,
        plugin: Arc<PluginHandle>,
        overrides: &BTreeMap<String, MethodOverride>,
        threads: Option<usize>,
    ) -> Result<(), RegistryError> {
        if let Some(first) = self.plugins.iter().find(|p| p.name() == plugin.name()) {
            return Err(RegistryError::DuplicatePlugin {
                name: plugin.name().to_owned(),
                first: first.file().to_path_buf(),
                second: plugin.file().to_path_buf(),
            });
        }
        for method in overrides.keys() {
            if !plugin
                .descriptor()
                .methods
                .iter()
                .any(|m| &m.name == method)
            {
                return Err(RegistryError::UnknownOverride {
                    path: plugin.file().to_path_buf(),
                    plugin: plugin.name().to_owned(),
                    method: method.clone(),
                });
            }
        }
        for m in &plugin.descriptor().methods {
            if let Some(existing) = self.methods.get(&m.name) {
                return Err(RegistryError::DuplicateMethod {
                    method: m.name.clone(),
                    first: existing.plugin.name().to_owned(),
                    second: plugin.name().to_owned(),
                    second_file: plugin.file().to_path_buf(),
                });
            }
        }
        // Without a limit of its own, a method may use the default, or the
        // plugin's whole share when that is smaller.
        let concurrency_of = |name: &str| {
            overrides
                .get(name)
                .and_then(|o| o.concurrency)
                .unwrap_or_else(|| {
                    threads.map_or(DEFAULT_CONCURRENCY, |t| t.min(DEFAULT_CONCURRENCY))
                })
        };
        let methods = &plugin.descriptor().methods;
        let share = threads.unwrap_or_else(|| {
            methods
                .iter()
                .map(|m| concurrency_of(&m.name))
                .sum::<usize>()
                .max(1)
        });
        if let Some(m) = methods.iter().find(|m| concurrency_of(&m.name) > share) {
            return Err(RegistryError::Concurrency {
                path: plugin.file().to_path_buf(),
                plugin: plugin.name().to_owned(),
                method: m.name.clone(),
                concurrency: concurrency_of(&m.name),
                threads: share,
            });
        }
        for m in methods {
            let o = overrides.get(&m.name).cloned().unwrap_or_default();
            let concurrency = concurrency_of(&m.name);
            self.methods.insert(
                m.name.clone(),
                MethodEntry {
                    name: m.name.clone(),
                    plugin: Arc::clone(&plugin),
                    route: o.route.unwrap_or_else(|| m.route.clone()),
                    doc: m.doc.clone(),
                    timeout: o
                        .timeout_ms
                        .map(Duration::from_millis)
                        .unwrap_or(DEFAULT_TIMEOUT),
                    concurrency,
                    limiter: Arc::new(Semaphore::new(concurrency)),
                    meter: OnceLock::new(),
                },
            );
        }
        self.plugins.push(plugin);
        self.threads.push(share);
        Ok(())
    }

    /// Applies the manifest's `[plugins.services.<name>]` settings of
    /// `plugin`; a service the plugin does not have is an error.
    pub fn set_services(
        &mut self,
        plugin: &PluginHandle,
        services: &BTreeMap<String, ServiceSettings>,
    ) -> Result<(), RegistryError> {
        let known = &plugin.descriptor().services;
        for (service, settings) in services {
            if !known.iter().any(|s| &s.name == service) {
                return Err(RegistryError::UnknownService {
                    path: plugin.file().to_path_buf(),
                    plugin: plugin.name().to_owned(),
                    service: service.clone(),
                    known: known
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            self.restart.insert(
                (plugin.name().to_owned(), service.clone()),
                settings.restart,
            );
        }
        Ok(())
    }

    /// The restart policy of a plugin's tracked service (default: on failure).
    pub fn restart_policy(&self, plugin: &str, service: &str) -> RestartPolicy {
        self.restart
            .get(&(plugin.to_owned(), service.to_owned()))
            .copied()
            .unwrap_or_default()
    }

    /// Keeps the concurrency limiters of `previous` for methods served the
    /// same way (same plugin, same limit): calls still running there count
    /// against the limit here too, so a reload never doubles a method's
    /// concurrency.
    pub fn keep_limiters_from(&mut self, previous: &Registry) {
        for (name, entry) in &mut self.methods {
            if let Some(old) = previous.methods.get(name) {
                if old.plugin.name() == entry.plugin.name() && old.concurrency == entry.concurrency
                {
                    entry.limiter = Arc::clone(&old.limiter);
                }
            }
        }
    }

    /// Checks that the plugins' thread shares fit `budget` together, then
    /// gives each plugin's pool its share. Nothing changes on error, so a
    /// reload that needs too many threads leaves the running set as it was.
    pub fn seal(&self, budget: usize) -> Result<(), RegistryError> {
        let needed: usize = self.threads.iter().sum();
        if needed > budget {
            let shares = self
                .plugins
                .iter()
                .zip(&self.threads)
                .map(|(p, t)| format!("{} {t}", p.name()))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(RegistryError::ThreadBudget {
                needed,
                budget,
                shares,
            });
        }
        for (plugin, threads) in self.plugins.iter().zip(&self.threads) {
            plugin.pool().set_limit(*threads);
        }
        Ok(())
    }

    /// A plugin's thread share in this registry.
    pub fn threads_of(&self, plugin: &str) -> Option<usize> {
        self.plugins
            .iter()
            .position(|p| p.name() == plugin)
            .map(|i| self.threads[i])
    }

    /// The plugins, in load order.
    pub fn plugins(&self) -> &[Arc<PluginHandle>] {
        &self.plugins
    }

    /// All methods, by name.
    pub fn methods(&self) -> impl Iterator<Item = &MethodEntry> {
        self.methods.values()
    }

    /// One method by its bare name (`fibo`) or its qualified name
    /// (`math.fibo`: plugin, dot, method). Qualified names let a caller
    /// pick one plugin when hosts serve the same bare name from different
    /// plugins (`docs/protocol.md`, "Qualified names").
    pub fn method(&self, name: &str) -> Option<&MethodEntry> {
        if let Some(entry) = self.methods.get(name) {
            return Some(entry);
        }
        let (plugin, bare) = name.split_once('.')?;
        self.methods
            .get(bare)
            .filter(|entry| entry.plugin.name() == plugin)
    }

    /// Calls a method in process (blocking): 404 when no plugin serves it.
    pub fn call(&self, method: &str, args: &[Value]) -> Result<Value, PluginError> {
        let entry = self.method(method).ok_or_else(|| {
            PluginError::not_found(format!("no loaded plugin serves method `{method}`"))
        })?;
        entry.plugin.call(&entry.name, args)
    }
}

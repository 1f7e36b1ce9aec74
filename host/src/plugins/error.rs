//! Why a set of plugins could not be put together (a registry), beside
//! why one plugin could not be loaded ([`LoadError`], from the loader).

use std::path::PathBuf;

use plughost_loader::LoadError;

/// A registry could not be built: a plugin did not load, or the plugins do
/// not fit together or into the host's limits. Every variant names the
/// plugins and files involved.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// One plugin did not load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Two loaded files declare the same plugin name.
    #[error("plugin {second}: plugin name `{name}` is already used by {first}")]
    DuplicatePlugin {
        /// The plugin name.
        name: String,
        /// The file that declared it first.
        first: PathBuf,
        /// The file that declared it again.
        second: PathBuf,
    },
    /// Two plugins declare the same method name.
    #[error("plugin {second_file}: method `{method}` of plugin `{second}` is already served by plugin `{first}`")]
    DuplicateMethod {
        /// The method name.
        method: String,
        /// The plugin that declared it first.
        first: String,
        /// The plugin that declared it again.
        second: String,
        /// The second plugin's file.
        second_file: PathBuf,
    },
    /// A method may run more calls at once than its plugin has threads.
    #[error("plugin {path}: method `{method}` of plugin `{plugin}` has concurrency {concurrency}, more than the plugin's {threads} threads; raise `threads` of this plugin in the manifest or lower the method's concurrency")]
    Concurrency {
        /// The plugin file.
        path: PathBuf,
        /// The plugin name.
        plugin: String,
        /// The method.
        method: String,
        /// Its concurrency limit.
        concurrency: usize,
        /// The plugin's thread share.
        threads: usize,
    },
    /// The plugins together need more threads than the host allows.
    #[error("the plugins need {needed} threads together ({shares}), more than [host] max_plugin_threads = {budget}; lower their `threads` or concurrency, or raise the budget")]
    ThreadBudget {
        /// Threads the plugins' shares add up to.
        needed: usize,
        /// The host's budget.
        budget: usize,
        /// Each plugin's share, for the message.
        shares: String,
    },
    /// A manifest override names a method the plugin does not have.
    #[error("plugin {path}: manifest overrides method `{method}`, which plugin `{plugin}` does not declare")]
    UnknownOverride {
        /// The plugin file.
        path: PathBuf,
        /// The plugin name.
        plugin: String,
        /// The method named in the manifest.
        method: String,
    },
    /// The manifest sets up a tracked service the plugin does not have.
    #[error("{path}: plugin {plugin} has no tracked service `{service}` (named in [plugins.services]); its services: {known}")]
    UnknownService {
        /// The plugin file.
        path: PathBuf,
        /// The plugin name.
        plugin: String,
        /// The service named in the manifest.
        service: String,
        /// The services it has.
        known: String,
    },
}

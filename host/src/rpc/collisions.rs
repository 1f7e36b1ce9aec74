//! Bare method names that several hosts serve from different plugins.
//!
//! Method names are global on a broker: a caller that asks for `greet`
//! would reach whichever host answers first. A host therefore checks its
//! own bare names at start and after each reload ([`check`]): it asks the
//! other name services for each, as a *claimant* (the find says which
//! plugin this host serves the name from), and logs a warning for every
//! other plugin that answers. A name service that receives such a claim for
//! a name it serves from a different plugin logs the collision too
//! ([`Collisions::claimed`]), so both hosts say so.
//!
//! What a host learns here also makes v1 finds deterministic: old finders
//! know only bare names and take the first answer, so for a name known to
//! be ambiguous only the host(s) whose plugin name sorts first answer them
//! ([`Collisions::answers_v1`]). v2 callers get a 409 "ambiguous" error
//! instead (the client's rule, `docs/protocol.md`).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use plughost_client::{Client, ClientOptions};
use plughost_proto::rpc::v2::{Claimant, FindRequest};
use tracing::{debug, warn};

use super::RpcConfig;
use crate::plugins::{MethodEntry, Registry};

/// How long a check waits before it starts: a burst of reloads (or a
/// reconnect right after one) runs one check, for the registry it ends with
/// (each change aborts the waiting check and starts a new one).
const CHECK_SETTLE: Duration = Duration::from_secs(1);
/// How long a host's own check waits for each name's answers.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);
/// How long it listens after the first answer (other hosts' name services).
const CHECK_WINDOW: Duration = Duration::from_millis(500);

/// What this host knows about other hosts' plugins under its bare names.
#[derive(Debug, Default)]
pub struct Collisions {
    /// Bare name -> (other host -> its plugin), only for other plugins.
    known: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
}

impl Collisions {
    fn known(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeMap<String, String>>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Another host claims `entry`'s bare name for its own plugin (its
    /// collision check): logged when that plugin differs from ours.
    pub fn claimed(&self, own_host: &str, entry: &MethodEntry, claimant: &Claimant) {
        if claimant.host == own_host || claimant.plugin == entry.plugin.name() {
            return;
        }
        self.known()
            .entry(entry.name.clone())
            .or_default()
            .insert(claimant.host.clone(), claimant.plugin.clone());
        warn_collision(
            &entry.name,
            entry.plugin.name(),
            &claimant.host,
            &claimant.plugin,
        );
    }

    /// The outcome of this host's own check of `name`: replaces what was
    /// known about it.
    fn checked(&self, name: &str, others: BTreeMap<String, String>) {
        let mut known = self.known();
        if others.is_empty() {
            known.remove(name);
        } else {
            known.insert(name.to_owned(), others);
        }
    }

    /// Forgets names this host no longer serves.
    fn retain(&self, names: &BTreeSet<String>) {
        self.known().retain(|name, _| names.contains(name));
    }

    /// Whether this host answers a v1 find for `asked` (served by `entry`):
    /// always for a qualified name or a name nobody else serves from another
    /// plugin; for an ambiguous bare name only when this host's plugin name
    /// sorts first among the plugins serving it, so every v1 finder gets the
    /// same answer.
    pub fn answers_v1(&self, asked: &str, entry: &MethodEntry) -> bool {
        if asked != entry.name {
            return true;
        }
        let own = entry.plugin.name();
        self.known()
            .get(asked)
            .is_none_or(|others| others.values().all(|plugin| own <= plugin.as_str()))
    }
}

fn warn_collision(bare: &str, plugin: &str, other_host: &str, other_plugin: &str) {
    warn!(
        method = %bare,
        plugin,
        other_host,
        other_plugin,
        "method name collision: `{bare}` is served here by plugin `{plugin}` ({plugin}.{bare}) and on host `{other_host}` by plugin `{other_plugin}` ({other_plugin}.{bare}); callers of the bare name get a 409 \"ambiguous\" error and must use a qualified name",
    );
}

/// Asks the other name services about each bare name `registry` serves,
/// as a claimant, and logs every collision (see the module docs), after
/// [`CHECK_SETTLE`]. Runs on the session's [`Checker`] connection; a broker that cannot be asked
/// is logged at debug level (the check runs again at the next reload or
/// reconnect).
pub fn check(
    config: RpcConfig,
    registry: &Registry,
    collisions: Arc<Collisions>,
    checker: Checker,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    // Only the names are kept: holding the registry would keep a retired
    // plugin alive for as long as the check runs.
    let claims: Vec<(String, String)> = registry
        .methods()
        .map(|m| (m.name.clone(), m.plugin.name().to_owned()))
        .collect();
    run_check(config, claims, collisions, checker)
}

/// [`check`] of `claims` (bare name, plugin).
async fn run_check(
    config: RpcConfig,
    claims: Vec<(String, String)>,
    collisions: Arc<Collisions>,
    checker: Checker,
) {
    tokio::time::sleep(CHECK_SETTLE).await;
    let connect = || {
        let mut options = ClientOptions::new(config.url.clone());
        options.fallback_urls = config.fallback_urls.clone();
        options.tls = config.tls.clone();
        options.exchanges = config.exchanges.clone();
        options.answer_window = CHECK_WINDOW;
        options.v1_fallback_after = None;
        options.connect_timeout = CHECK_TIMEOUT;
        Client::connect(options)
    };
    let client = match checker.get_or_try_init(connect).await {
        Ok(client) => client,
        Err(e) => {
            debug!(error = %e, "collision check skipped: cannot connect");
            return;
        }
    };
    let names: BTreeSet<String> = claims.iter().map(|(name, _)| name.clone()).collect();
    collisions.retain(&names);
    let checks = claims.iter().map(|(name, plugin)| {
        let client = &client;
        let collisions = &collisions;
        let host = config.host_name.clone();
        async move {
            let request = FindRequest {
                method: name.clone(),
                describe: false,
                claimant: Some(Claimant {
                    host: host.clone(),
                    plugin: plugin.clone(),
                }),
            };
            let answers = match client.find_as(request, CHECK_TIMEOUT).await {
                Ok(answers) => answers,
                Err(e) => {
                    debug!(method = %name, error = %e, "collision check of one name failed");
                    return;
                }
            };
            let others: BTreeMap<String, String> = answers
                .into_iter()
                .filter(|f| f.reply.route.is_some() && f.reply.host != host)
                .filter_map(|f| {
                    let other = f.reply.plugin?;
                    (other != *plugin).then_some((f.reply.host, other))
                })
                .collect();
            for (other_host, other_plugin) in &others {
                warn_collision(name, plugin, other_host, other_plugin);
            }
            collisions.checked(name, others);
        }
    });
    futures_util::future::join_all(checks).await;
}

/// The client connection a session's collision checks share, opened by the
/// first check and closed with the session ([`close_checker`]): one
/// connection for all of a session's checks, never one per reload.
pub type Checker = Arc<tokio::sync::OnceCell<Client>>;

/// Closes a session's checker connection, if a check opened it.
pub async fn close_checker(checker: &Checker) {
    if let Some(client) = checker.get() {
        client.close().await;
    }
}

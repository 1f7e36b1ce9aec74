//! Manifest types: the raw TOML shape (strict, with spans for line numbers)
//! and the validated [`Manifest`] the rest of the host uses.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use plughost_client::RouteQueueKind;
use serde::Deserialize;
use toml::Spanned;

use super::{is_valid_route, ManifestError};

/// The broker URL used when neither the CLI, the environment nor the
/// manifest names one.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A validated manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Where it was read from (for messages and for watching).
    pub source: PathBuf,
    /// `[host]`
    pub host: HostSettings,
    /// `[rabbitmq]`
    pub rabbitmq: RabbitSettings,
    /// `[zeromq]`
    pub zeromq: ZmqSettings,
    /// `[roles]`
    pub roles: Roles,
    /// `[limits]`
    pub limits: Limits,
    /// `[local]`
    pub local: LocalSettings,
    /// `[http]`
    pub http: HttpSettings,
    /// `[[plugins]]`, in file order.
    pub plugins: Vec<PluginEntry>,
}

/// `[host]`: who this host is.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSettings {
    /// Host name as reported to callers and the service manager (default: the
    /// machine's host name).
    pub name: String,
    /// The admin socket's path (default: next to the manifest).
    pub admin: Option<String>,
    /// Follow changes to the manifest and plugin files (default true); with
    /// false, only SIGHUP and `plughost reload` apply changes.
    pub watch: bool,
    /// Load plugin files that users other than root and the host's could
    /// change (writable by group or others, or owned by someone else),
    /// logging a warning at every load, instead of refusing them (default
    /// false). Follows reloads.
    pub allow_insecure_plugin_files: bool,
    /// Threads all plugins together may hold (default
    /// [`DEFAULT_MAX_PLUGIN_THREADS`]); a manifest whose plugins need more
    /// is refused at load.
    pub max_plugin_threads: usize,
    /// How long shutdown may take before the host gives up on what is still
    /// running, names it and exits non-zero (default 10 s).
    pub shutdown_grace_ms: u64,
}

/// Threads all plugins of a host may hold together, when `[host]
/// max_plugin_threads` says nothing.
pub const DEFAULT_MAX_PLUGIN_THREADS: usize = 512;

/// Shutdown grace when `[host] shutdown_grace_ms` says nothing.
pub const DEFAULT_SHUTDOWN_GRACE_MS: u64 = 10_000;

/// `[local]`: the local transport, a Unix socket that serves this host's
/// methods on this machine with or without a broker (`docs/protocol.md`).
#[derive(Debug, Clone, PartialEq)]
pub struct LocalSettings {
    /// Serve the local socket (default true; it costs nothing unused).
    pub enabled: bool,
    /// Its path (default: `local.sock` in the private runtime folder, where
    /// callers look without being told); resolved against the manifest's
    /// folder.
    pub socket: Option<PathBuf>,
}

impl Default for LocalSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            socket: None,
        }
    }
}

/// `[http]`: the host's read-only HTTP endpoint (`/metrics`, `/healthz`,
/// `/readyz`; see docs/operations.md). Off unless `listen` is set: an
/// operator chooses where metrics are exposed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpSettings {
    /// The address to serve on, such as `127.0.0.1:9464` (None: no endpoint).
    pub listen: Option<std::net::SocketAddr>,
}

/// `[rabbitmq]`: the RPC transport.
#[derive(Debug, Clone, PartialEq)]
pub struct RabbitSettings {
    /// Broker URL; `None` means "CLI, `PLUGHOST_AMQP_URL`, or the default".
    /// With `urls = [...]`, the first of them.
    pub url: Option<String>,
    /// The other URLs of `urls = [...]` (a cluster's other nodes), tried in
    /// order when `url` does not answer or is lost.
    pub fallback_urls: Vec<String>,
    /// How route queues are declared (`route_queues`, default `classic`):
    /// every host of a deployment must say the same.
    pub route_queues: RouteQueueKind,
    /// The topic exchange calls are published to.
    pub rpc_exchange: String,
    /// The fanout exchange finds are published to.
    pub ns_exchange: String,
    /// Unacknowledged requests one host holds per route queue.
    pub prefetch: u16,
    /// CA certificate file (PEM) trusted for `amqps://` besides the
    /// system's store; resolved against the manifest's folder.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) presented over `amqps://`; needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// The private key (PEM) of `client_cert`.
    pub client_key: Option<PathBuf>,
}

/// `[zeromq]`: the service tracker transport and timings.
#[derive(Debug, Clone, PartialEq)]
pub struct ZmqSettings {
    /// The manager's PUB (beacon) endpoint.
    pub discovery: String,
    /// The manager's ROUTER (management) endpoint.
    pub management: String,
    /// Milliseconds between beacons.
    pub beacon_interval_ms: u64,
    /// Milliseconds between a service's HELLOs.
    pub heartbeat_interval_ms: u64,
    /// Milliseconds after which a silent v2 service is dropped.
    pub ttl_ms: u64,
    /// The longest a v1 (old-style) service may stay silent, in
    /// milliseconds (60000, the old manager's TTL); a v1 service's own TTL
    /// follows its heartbeat pace below that (`docs/tracker.md`).
    pub v1_ttl_ms: u64,
    /// Token that shutting the manager down and stopping a service need.
    pub admin_token: Option<String>,
    /// The largest message a tracker socket accepts, in bytes (1 MiB);
    /// a peer that announces a larger frame is disconnected.
    pub max_message_size: u64,
    /// Messages queued per peer and direction (1000).
    pub hwm: u32,
    /// How long a service's send to the manager may wait, in milliseconds (1000).
    pub send_timeout_ms: u64,
    /// CURVE: the manager's certificate (public and secret key on the
    /// manager's host; the public key alone is enough on other hosts).
    /// Setting it turns CURVE on for every tracker socket of this host.
    pub curve_server_key_file: Option<PathBuf>,
    /// CURVE: the public keys the manager lets in, one per line.
    pub curve_allowed_clients_file: Option<PathBuf>,
    /// CURVE: this host's own certificate for its services' sockets.
    pub curve_client_key_file: Option<PathBuf>,
}

/// `[roles]`: which parts of a host run (all by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Roles {
    /// Answer finds on the name-service exchange.
    pub name_service: bool,
    /// Consume route queues and run calls.
    pub rpc: bool,
    /// Run the ZeroMQ service manager.
    pub manager: bool,
    /// Run tracked services and register them (and the host) with a manager.
    pub services: bool,
    /// Listen for `plughost reload` and `plughost status`.
    pub admin: bool,
}

impl Default for Roles {
    fn default() -> Self {
        Self {
            name_service: true,
            rpc: true,
            manager: true,
            services: true,
            admin: true,
        }
    }
}

/// `[limits]`: the largest messages a host takes and sends.
///
/// A broker closes the channel of a publish over its own `max_message_size`
/// (128 MiB on RabbitMQ 3.10, 16 MiB on 4.x), so the defaults stay below
/// every broker's: an oversized request or reply is refused by the host
/// with a 413 error before the broker ever sees it, and one 50 MB request
/// never costs more than the message itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body (call or find) a host handles; larger ones are
    /// answered 413 without being parsed (dropped when they have no reply
    /// address).
    pub max_request_bytes: usize,
    /// Largest reply body a host publishes; a larger result becomes a 413
    /// error reply.
    pub max_reply_bytes: usize,
    /// Longest method name a find may ask for; longer ones are ignored (every
    /// name service would echo it back: amplification).
    pub max_find_method_bytes: usize,
}

impl Limits {
    /// Default `max_request_bytes`: 8 MiB.
    pub const DEFAULT_MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;
    /// Default `max_reply_bytes`: 8 MiB.
    pub const DEFAULT_MAX_REPLY_BYTES: usize = 8 * 1024 * 1024;
    /// Default `max_find_method_bytes`: 256.
    pub const DEFAULT_MAX_FIND_METHOD_BYTES: usize = 256;
    /// The largest value any size limit may have: RabbitMQ never carries a
    /// message over 512 MiB.
    pub const CEILING: usize = 512 * 1024 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: Self::DEFAULT_MAX_REQUEST_BYTES,
            max_reply_bytes: Self::DEFAULT_MAX_REPLY_BYTES,
            max_find_method_bytes: Self::DEFAULT_MAX_FIND_METHOD_BYTES,
        }
    }
}

/// One `[[plugins]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginEntry {
    /// The library file, resolved against the manifest's folder.
    pub path: PathBuf,
    /// Expected SHA-256 of the file (lower-case hex), if pinned.
    pub sha256: Option<String>,
    /// The plugin's `config` table, as JSON (an empty object when absent).
    pub config: serde_json::Value,
    /// Per-method overrides, by method name.
    pub methods: BTreeMap<String, MethodOverride>,
    /// Threads of the plugin's own (its bulkhead); default: the sum of its
    /// methods' concurrency limits.
    pub threads: Option<usize>,
    /// Per-service settings, by tracked service name.
    pub services: BTreeMap<String, ServiceSettings>,
}

/// `[plugins.services.<name>]`: how the host supervises a tracked service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServiceSettings {
    /// When to start it again after its run function returned.
    pub restart: RestartPolicy,
}

/// `restart = "always" | "on-failure" | "never"`: whether a tracked service
/// whose run function returned is started again (after a backoff of 1 s,
/// doubling to 60 s). A service stopped on purpose (by the service manager,
/// shutdown, or its plugin leaving) is never restarted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Also after it returned without an error.
    Always,
    /// After it returned an error or panicked (the default).
    #[default]
    OnFailure,
    /// Never: it stays finished until its plugin is reloaded.
    Never,
}

/// `[plugins.methods.<name>]`: what an operator may change about a method.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MethodOverride {
    /// Route to serve the method on instead of its default.
    pub route: Option<String>,
    /// Call timeout in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Calls of this method that may run at once on this host.
    pub concurrency: Option<usize>,
}

// ---- raw TOML shape -------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    host: RawHost,
    #[serde(default)]
    rabbitmq: RawRabbit,
    #[serde(default)]
    zeromq: RawZmq,
    #[serde(default)]
    roles: Roles,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    local: RawLocal,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    plugins: Vec<RawPlugin>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLocal {
    enabled: Option<bool>,
    socket: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_request_bytes: Option<Spanned<u64>>,
    max_reply_bytes: Option<Spanned<u64>>,
    max_find_method_bytes: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: Option<Spanned<String>>,
    admin: Option<Spanned<String>>,
    watch: Option<bool>,
    allow_insecure_plugin_files: Option<bool>,
    max_plugin_threads: Option<Spanned<u64>>,
    shutdown_grace_ms: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRabbit {
    url: Option<Spanned<String>>,
    urls: Option<Spanned<Vec<String>>>,
    route_queues: Option<Spanned<String>>,
    rpc_exchange: Option<Spanned<String>>,
    ns_exchange: Option<Spanned<String>>,
    prefetch: Option<Spanned<u16>>,
    ca_file: Option<Spanned<String>>,
    client_cert: Option<Spanned<String>>,
    client_key: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawZmq {
    discovery: Option<Spanned<String>>,
    management: Option<Spanned<String>>,
    beacon_interval_ms: Option<Spanned<u64>>,
    heartbeat_interval_ms: Option<Spanned<u64>>,
    ttl_ms: Option<Spanned<u64>>,
    v1_ttl_ms: Option<Spanned<u64>>,
    admin_token: Option<String>,
    max_message_size: Option<Spanned<u64>>,
    hwm: Option<Spanned<u32>>,
    send_timeout_ms: Option<Spanned<u64>>,
    curve_server_key_file: Option<Spanned<String>>,
    curve_allowed_clients_file: Option<Spanned<String>>,
    curve_client_key_file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    path: Spanned<String>,
    sha256: Option<Spanned<String>>,
    #[serde(default)]
    config: toml::Table,
    #[serde(default)]
    methods: BTreeMap<String, RawMethod>,
    threads: Option<Spanned<usize>>,
    #[serde(default)]
    services: BTreeMap<String, RawService>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    #[serde(default)]
    restart: RestartPolicy,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMethod {
    route: Option<Spanned<String>>,
    timeout_ms: Option<Spanned<u64>>,
    concurrency: Option<Spanned<usize>>,
}

// ---- validation -----------------------------------------------------------

/// Turns raw values into validated ones, turning spans into line numbers.
struct Validator<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Validator<'_> {
    fn line_of<T>(&self, value: &Spanned<T>) -> usize {
        let end = value.span().start.min(self.text.len());
        self.text[..end].matches('\n').count() + 1
    }

    fn invalid<T>(
        &self,
        key: &str,
        value: &Spanned<T>,
        reason: impl Into<String>,
    ) -> ManifestError {
        ManifestError::Invalid {
            path: self.path.to_path_buf(),
            key: key.to_owned(),
            line: self.line_of(value),
            reason: reason.into(),
        }
    }

    fn non_empty(
        &self,
        key: &str,
        value: Option<Spanned<String>>,
        default: &str,
    ) -> Result<String, ManifestError> {
        match value {
            None => Ok(default.to_owned()),
            Some(v) if v.get_ref().trim().is_empty() => {
                Err(self.invalid(key, &v, "must not be empty"))
            }
            Some(v) => Ok(v.into_inner()),
        }
    }

    /// An exchange name: non-empty and within AMQP's 255 bytes.
    fn exchange(
        &self,
        key: &str,
        value: Option<Spanned<String>>,
        default: &str,
    ) -> Result<String, ManifestError> {
        match value {
            Some(v) if v.get_ref().len() > 255 => {
                Err(self.invalid(key, &v, "must be at most 255 bytes (an AMQP name)"))
            }
            other => self.non_empty(key, other, default),
        }
    }

    fn positive(
        &self,
        key: &str,
        value: Option<Spanned<u64>>,
        default: u64,
    ) -> Result<u64, ManifestError> {
        match value {
            None => Ok(default),
            Some(v) if *v.get_ref() == 0 => Err(self.invalid(key, &v, "must be greater than 0")),
            Some(v) => Ok(v.into_inner()),
        }
    }

    /// A size limit: 1 to [`Limits::CEILING`] bytes.
    fn size_limit(
        &self,
        key: &str,
        value: Option<Spanned<u64>>,
        default: usize,
    ) -> Result<usize, ManifestError> {
        let Some(v) = value else { return Ok(default) };
        match usize::try_from(*v.get_ref()) {
            Ok(0) => Err(self.invalid(key, &v, "must be greater than 0")),
            Ok(n) if n <= Limits::CEILING => Ok(n),
            _ => Err(self.invalid(
                key,
                &v,
                format!(
                    "must be at most {} (512 MiB: RabbitMQ carries no larger message)",
                    Limits::CEILING
                ),
            )),
        }
    }

    /// An optional file path, resolved against the manifest's folder.
    fn path(
        &self,
        key: &str,
        value: Option<Spanned<String>>,
        base_dir: &Path,
    ) -> Result<Option<PathBuf>, ManifestError> {
        match value {
            None => Ok(None),
            Some(v) if v.get_ref().trim().is_empty() => {
                Err(self.invalid(key, &v, "must not be empty"))
            }
            Some(v) => {
                let path = Path::new(v.get_ref());
                Ok(Some(if path.is_absolute() {
                    path.to_path_buf()
                } else {
                    base_dir.join(path)
                }))
            }
        }
    }

    fn zmq_endpoint(
        &self,
        key: &str,
        value: Option<Spanned<String>>,
        default: &str,
    ) -> Result<String, ManifestError> {
        let endpoint = self.non_empty(key, value.clone(), default)?;
        match (value, endpoint.starts_with("tcp://")) {
            (Some(v), false) => Err(self.invalid(
                key,
                &v,
                "must be a tcp:// endpoint, e.g. tcp://127.0.0.1:5555",
            )),
            _ => Ok(endpoint),
        }
    }
}

/// The `[rabbitmq]` TLS files, checked and resolved.
type TlsPaths = (Option<PathBuf>, Option<PathBuf>, Option<PathBuf>);

impl Validator<'_> {
    /// Checks the `[rabbitmq]` TLS keys: non-empty paths (resolved against
    /// `base_dir`), a client certificate only with its key, and none of them
    /// with an `amqp://` URL, which would send everything in clear.
    fn tls_files(
        &self,
        ca_file: Option<Spanned<String>>,
        client_cert: Option<Spanned<String>>,
        client_key: Option<Spanned<String>>,
        url: Option<&str>,
        base_dir: &Path,
    ) -> Result<TlsPaths, ManifestError> {
        let resolve = |key: &str, value: &Option<Spanned<String>>| match value {
            Some(v) if v.get_ref().trim().is_empty() => {
                Err(self.invalid(key, v, "must not be empty"))
            }
            Some(v) => Ok(Some(resolve_path(v.get_ref(), base_dir))),
            None => Ok(None),
        };
        let paths = (
            resolve("rabbitmq.ca_file", &ca_file)?,
            resolve("rabbitmq.client_cert", &client_cert)?,
            resolve("rabbitmq.client_key", &client_key)?,
        );
        match (&client_cert, &client_key) {
            (Some(cert), None) => {
                return Err(self.invalid(
                    "rabbitmq.client_cert",
                    cert,
                    "needs rabbitmq.client_key (the certificate's private key)",
                ))
            }
            (None, Some(key)) => {
                return Err(self.invalid(
                    "rabbitmq.client_key",
                    key,
                    "needs rabbitmq.client_cert (the certificate it belongs to)",
                ))
            }
            _ => {}
        }
        let first = [("ca_file", &ca_file), ("client_cert", &client_cert)]
            .into_iter()
            .find_map(|(key, v)| v.as_ref().map(|v| (key, v)));
        if let (Some(url), Some((key, value))) = (url, first) {
            if url.starts_with("amqp://") {
                return Err(self.invalid(
                    &format!("rabbitmq.{key}"),
                    value,
                    "TLS files need an amqps:// url (rabbitmq.url is amqp://, which is plaintext)",
                ));
            }
        }
        Ok(paths)
    }
}

/// `path` as is when absolute, else under `base_dir`.
fn resolve_path(path: &str, base_dir: &Path) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}

impl Manifest {
    /// Reads and validates a manifest file.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let base = if base.as_os_str().is_empty() {
            Path::new(".")
        } else {
            base
        };
        let mut manifest = Self::parse(&text, base, path)?;
        manifest.source = path.to_path_buf();
        Ok(manifest)
    }

    /// Validates manifest text; relative plugin paths resolve against
    /// `base_dir`; `origin` names the text in errors.
    pub fn parse(
        text: &str,
        base_dir: &Path,
        origin: impl AsRef<Path>,
    ) -> Result<Self, ManifestError> {
        let origin = origin.as_ref();
        let raw: RawManifest = toml::from_str(text).map_err(|e| ManifestError::Parse {
            path: origin.to_path_buf(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let v = Validator { text, path: origin };

        let host = HostSettings {
            name: v.non_empty("host.name", raw.host.name, &default_host_name())?,
            admin: raw.host.admin.map(Spanned::into_inner),
            watch: raw.host.watch.unwrap_or(true),
            allow_insecure_plugin_files: raw.host.allow_insecure_plugin_files.unwrap_or(false),
            max_plugin_threads: usize::try_from(v.positive(
                "host.max_plugin_threads",
                raw.host.max_plugin_threads,
                DEFAULT_MAX_PLUGIN_THREADS as u64,
            )?)
            .unwrap_or(usize::MAX),
            shutdown_grace_ms: v.positive(
                "host.shutdown_grace_ms",
                raw.host.shutdown_grace_ms,
                DEFAULT_SHUTDOWN_GRACE_MS,
            )?,
        };

        let amqp = |u: &str| u.starts_with("amqp://") || u.starts_with("amqps://");
        let (url, fallback_urls) = match (raw.rabbitmq.url, raw.rabbitmq.urls) {
            (Some(_), Some(urls)) => {
                return Err(v.invalid(
                    "rabbitmq.urls",
                    &urls,
                    "set either rabbitmq.url or rabbitmq.urls, not both",
                ))
            }
            (Some(u), None) if !amqp(u.get_ref()) => {
                return Err(v.invalid("rabbitmq.url", &u, "must start with amqp:// or amqps://"))
            }
            (Some(u), None) => (Some(u.into_inner()), Vec::new()),
            (None, Some(urls)) => {
                if urls.get_ref().is_empty() {
                    return Err(v.invalid(
                        "rabbitmq.urls",
                        &urls,
                        "must name at least one broker URL",
                    ));
                }
                if let Some(bad) = urls.get_ref().iter().find(|u| !amqp(u)) {
                    return Err(v.invalid(
                        "rabbitmq.urls",
                        &urls,
                        format!("{bad:?} must start with amqp:// or amqps://"),
                    ));
                }
                let mut all = urls.into_inner().into_iter();
                (all.next(), all.collect())
            }
            (None, None) => (None, Vec::new()),
        };
        let route_queues =
            match raw.rabbitmq.route_queues {
                Some(kind) => match RouteQueueKind::from_name(kind.get_ref()) {
                    Some(k) => k,
                    None => return Err(v.invalid(
                        "rabbitmq.route_queues",
                        &kind,
                        "must be \"classic\" (durable classic queues, the default), \"quorum\" \
                         (replicated over a cluster's nodes) or \"transient\" (what older \
                         plughost hosts declare; refused by RabbitMQ 4.3 by default)",
                    )),
                },
                None => RouteQueueKind::default(),
            };
        // A plaintext URL anywhere in the list refuses TLS files.
        let plaintext = url
            .iter()
            .chain(&fallback_urls)
            .find(|u| u.starts_with("amqp://"))
            .or(url.as_ref())
            .cloned();
        let prefetch = match raw.rabbitmq.prefetch {
            Some(p) if *p.get_ref() == 0 => {
                return Err(v.invalid("rabbitmq.prefetch", &p, "must be greater than 0"))
            }
            Some(p) => p.into_inner(),
            None => 64,
        };
        let (ca_file, client_cert, client_key) = v.tls_files(
            raw.rabbitmq.ca_file,
            raw.rabbitmq.client_cert,
            raw.rabbitmq.client_key,
            plaintext.as_deref(),
            base_dir,
        )?;
        let rabbitmq = RabbitSettings {
            url,
            fallback_urls,
            route_queues,
            rpc_exchange: v.exchange(
                "rabbitmq.rpc_exchange",
                raw.rabbitmq.rpc_exchange,
                "rpc_exchange",
            )?,
            ns_exchange: v.exchange(
                "rabbitmq.ns_exchange",
                raw.rabbitmq.ns_exchange,
                "rpc_ns_exchange",
            )?,
            prefetch,
            ca_file,
            client_cert,
            client_key,
        };

        let zeromq = ZmqSettings {
            discovery: v.zmq_endpoint(
                "zeromq.discovery",
                raw.zeromq.discovery,
                "tcp://127.0.0.1:5555",
            )?,
            management: v.zmq_endpoint(
                "zeromq.management",
                raw.zeromq.management,
                "tcp://127.0.0.1:6666",
            )?,
            beacon_interval_ms: v.positive(
                "zeromq.beacon_interval_ms",
                raw.zeromq.beacon_interval_ms,
                1000,
            )?,
            heartbeat_interval_ms: v.positive(
                "zeromq.heartbeat_interval_ms",
                raw.zeromq.heartbeat_interval_ms,
                1000,
            )?,
            ttl_ms: v.positive("zeromq.ttl_ms", raw.zeromq.ttl_ms, 3000)?,
            v1_ttl_ms: v.positive("zeromq.v1_ttl_ms", raw.zeromq.v1_ttl_ms, 60_000)?,
            admin_token: raw.zeromq.admin_token,
            max_message_size: v.positive(
                "zeromq.max_message_size",
                raw.zeromq.max_message_size,
                1 << 20,
            )?,
            hwm: match raw.zeromq.hwm {
                Some(h) if *h.get_ref() == 0 => {
                    return Err(v.invalid("zeromq.hwm", &h, "must be greater than 0"))
                }
                Some(h) => h.into_inner(),
                None => 1000,
            },
            send_timeout_ms: v.positive(
                "zeromq.send_timeout_ms",
                raw.zeromq.send_timeout_ms,
                1000,
            )?,
            curve_server_key_file: v.path(
                "zeromq.curve_server_key_file",
                raw.zeromq.curve_server_key_file,
                base_dir,
            )?,
            curve_allowed_clients_file: v.path(
                "zeromq.curve_allowed_clients_file",
                raw.zeromq.curve_allowed_clients_file.clone(),
                base_dir,
            )?,
            curve_client_key_file: v.path(
                "zeromq.curve_client_key_file",
                raw.zeromq.curve_client_key_file,
                base_dir,
            )?,
        };
        if let (None, Some(allowed)) = (
            &zeromq.curve_server_key_file,
            &raw.zeromq.curve_allowed_clients_file,
        ) {
            return Err(v.invalid(
                "zeromq.curve_allowed_clients_file",
                allowed,
                "needs zeromq.curve_server_key_file (CURVE is on only with the manager's key)",
            ));
        }

        let limits = Limits {
            max_request_bytes: v.size_limit(
                "limits.max_request_bytes",
                raw.limits.max_request_bytes,
                Limits::DEFAULT_MAX_REQUEST_BYTES,
            )?,
            max_reply_bytes: v.size_limit(
                "limits.max_reply_bytes",
                raw.limits.max_reply_bytes,
                Limits::DEFAULT_MAX_REPLY_BYTES,
            )?,
            max_find_method_bytes: v.size_limit(
                "limits.max_find_method_bytes",
                raw.limits.max_find_method_bytes,
                Limits::DEFAULT_MAX_FIND_METHOD_BYTES,
            )?,
        };

        let local = LocalSettings {
            enabled: raw.local.enabled.unwrap_or(true),
            socket: match raw.local.socket {
                Some(s) if s.get_ref().trim().is_empty() => {
                    return Err(v.invalid("local.socket", &s, "must not be empty"))
                }
                Some(s) => Some(resolve_path(s.get_ref(), base_dir)),
                None => None,
            },
        };

        let http = HttpSettings {
            listen: match raw.http.listen {
                Some(l) => Some(l.get_ref().trim().parse().map_err(|_| {
                    v.invalid(
                        "http.listen",
                        &l,
                        "must be an IP address and port, such as 127.0.0.1:9464",
                    )
                })?),
                None => None,
            },
        };

        let plugins = raw
            .plugins
            .into_iter()
            .enumerate()
            .map(|(i, p)| validate_plugin(&v, i, p, base_dir))
            .collect::<Result<Vec<_>, _>>()?;

        Ok(Self {
            source: origin.to_path_buf(),
            host,
            rabbitmq,
            zeromq,
            roles: raw.roles,
            limits,
            local,
            http,
            plugins,
        })
    }
}

fn validate_plugin(
    v: &Validator<'_>,
    index: usize,
    raw: RawPlugin,
    base_dir: &Path,
) -> Result<PluginEntry, ManifestError> {
    let key = |k: &str| format!("plugins[{index}].{k}");
    if raw.path.get_ref().trim().is_empty() {
        return Err(v.invalid(&key("path"), &raw.path, "must not be empty"));
    }
    let path = resolve_path(raw.path.get_ref(), base_dir);

    let sha256 = match raw.sha256 {
        Some(s) => {
            let hex = s.get_ref().to_ascii_lowercase();
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(v.invalid(&key("sha256"), &s, "must be 64 hexadecimal digits"));
            }
            Some(hex)
        }
        None => None,
    };

    let config = serde_json::to_value(&raw.config).map_err(|e| ManifestError::Invalid {
        path: v.path.to_path_buf(),
        key: key("config"),
        line: v.line_of(&raw.path),
        reason: format!("cannot be expressed as JSON: {e}"),
    })?;

    let mut methods = BTreeMap::new();
    for (name, m) in raw.methods {
        let mkey = |k: &str| format!("plugins[{index}].methods.{name}.{k}");
        if let Some(route) = &m.route {
            if !is_valid_route(route.get_ref()) {
                return Err(v.invalid(
                    &mkey("route"),
                    route,
                    "must be dot-separated words of letters, digits, '_', '-' or ':' (no wildcards)",
                ));
            }
        }
        let timeout_ms = match m.timeout_ms {
            Some(t) if *t.get_ref() == 0 => {
                return Err(v.invalid(&mkey("timeout_ms"), &t, "must be greater than 0"))
            }
            other => other.map(Spanned::into_inner),
        };
        let concurrency = match m.concurrency {
            Some(c) if *c.get_ref() == 0 => {
                return Err(v.invalid(&mkey("concurrency"), &c, "must be greater than 0"))
            }
            other => other.map(Spanned::into_inner),
        };
        methods.insert(
            name.clone(),
            MethodOverride {
                route: m.route.map(Spanned::into_inner),
                timeout_ms,
                concurrency,
            },
        );
    }

    let threads = match raw.threads {
        Some(t) if *t.get_ref() == 0 => {
            return Err(v.invalid(&key("threads"), &t, "must be greater than 0"))
        }
        other => other.map(Spanned::into_inner),
    };

    let services = raw
        .services
        .into_iter()
        .map(|(name, s)| (name, ServiceSettings { restart: s.restart }))
        .collect();

    Ok(PluginEntry {
        path,
        sha256,
        config,
        methods,
        threads,
        services,
    })
}

/// The machine's host name, or `plughost` when it cannot be read.
fn default_host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "plughost".to_owned())
}

impl PluginEntry {
    /// What this entry asks the loader to load, under the manifest's `[host]`
    /// settings (whether insecure plugin files are allowed).
    pub fn spec(&self, host: &HostSettings) -> plughost_loader::PluginSpec {
        plughost_loader::PluginSpec {
            path: self.path.clone(),
            sha256: self.sha256.clone(),
            config: self.config.clone(),
            allow_insecure_files: host.allow_insecure_plugin_files,
        }
    }
}

impl RabbitSettings {
    /// The TLS files `[rabbitmq]` names, for the connection code.
    pub fn tls_files(&self) -> plughost_client::TlsFiles {
        plughost_client::TlsFiles {
            ca_file: self.ca_file.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(text, Path::new("/base"), "m.toml")
    }

    #[test]
    fn urls_name_a_clusters_nodes_and_route_queues_its_queue_type() {
        let m = parse(
            "[rabbitmq]\nurls = [\"amqp://a:1\", \"amqps://b:2\"]\nroute_queues = \"quorum\"\n",
        )
        .unwrap();
        assert_eq!(m.rabbitmq.url.as_deref(), Some("amqp://a:1"));
        assert_eq!(m.rabbitmq.fallback_urls, ["amqps://b:2"]);
        assert_eq!(m.rabbitmq.route_queues, RouteQueueKind::Quorum);
        assert_eq!(
            parse("").unwrap().rabbitmq.route_queues,
            RouteQueueKind::Classic
        );

        let refused = |text: &str, key: &str, needle: &str| {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(needle), "{e}");
        };
        refused(
            "[rabbitmq]\nurl = \"amqp://a\"\nurls = [\"amqp://b\"]\n",
            "rabbitmq.urls",
            "not both",
        );
        refused("[rabbitmq]\nurls = []\n", "rabbitmq.urls", "at least one");
        refused(
            "[rabbitmq]\nurls = [\"amqp://a\", \"http://b\"]\n",
            "rabbitmq.urls",
            "http://b",
        );
        refused(
            "[rabbitmq]\nroute_queues = \"mirrored\"\n",
            "rabbitmq.route_queues",
            "\"quorum\"",
        );
        refused(
            "[rabbitmq]\nurls = [\"amqps://a\", \"amqp://b\"]\nca_file = \"ca.pem\"\n",
            "rabbitmq.ca_file",
            "amqps://",
        );
    }

    #[test]
    fn empty_manifest_gets_defaults() {
        let m = parse("").unwrap();
        assert_eq!(m.rabbitmq.rpc_exchange, "rpc_exchange");
        assert_eq!(m.rabbitmq.ns_exchange, "rpc_ns_exchange");
        assert_eq!(m.zeromq.discovery, "tcp://127.0.0.1:5555");
        assert_eq!(m.zeromq.ttl_ms, 3000);
        assert_eq!(m.zeromq.v1_ttl_ms, 60_000);
        assert_eq!(m.zeromq.max_message_size, 1 << 20);
        assert_eq!((m.zeromq.hwm, m.zeromq.send_timeout_ms), (1000, 1000));
        assert_eq!(m.zeromq.curve_server_key_file, None);
        assert_eq!(m.roles, Roles::default());
        assert!(m.plugins.is_empty());
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = parse("[host]\nname = \"a\"\ncolour = \"red\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("m.toml"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn unknown_plugin_key_is_an_error() {
        let err = parse("[[plugins]]\npath = \"a.so\"\nsha = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3") && err.contains("sha"), "{err}");
    }

    #[test]
    fn bad_route_names_key_and_line() {
        let err = parse("[[plugins]]\npath = \"a.so\"\n[plugins.methods.fibo]\nroute = \"a.*\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("plugins[0].methods.fibo.route"), "{err}");
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn bad_sha_and_zero_values_are_rejected() {
        let err = parse("[[plugins]]\npath = \"a.so\"\nsha256 = \"abc\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("plugins[0].sha256") && err.contains("64 hexadecimal"),
            "{err}"
        );
        let err = parse("[zeromq]\nttl_ms = 0\n").unwrap_err().to_string();
        assert!(
            err.contains("zeromq.ttl_ms") && err.contains("line 2"),
            "{err}"
        );
        let err = parse("[zeromq]\ndiscovery = \"udp://x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tcp://"), "{err}");
        let err = parse("[rabbitmq]\nurl = \"http://x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("amqp://"), "{err}");
    }

    #[test]
    fn tls_files_resolve_against_the_manifest_folder() {
        let m = parse(
            "[rabbitmq]\nurl = \"amqps://broker:5671\"\nca_file = \"tls/ca.pem\"\nclient_cert = \"/etc/c.pem\"\nclient_key = \"tls/k.pem\"\n",
        )
        .unwrap();
        assert_eq!(
            m.rabbitmq.ca_file.as_deref(),
            Some(Path::new("/base/tls/ca.pem"))
        );
        assert_eq!(
            m.rabbitmq.client_cert.as_deref(),
            Some(Path::new("/etc/c.pem"))
        );
        assert_eq!(
            m.rabbitmq.client_key.as_deref(),
            Some(Path::new("/base/tls/k.pem"))
        );
        assert_eq!(parse("").unwrap().rabbitmq.ca_file, None);
    }

    #[test]
    fn tls_files_need_amqps_and_a_certificate_needs_its_key() {
        let err = parse("[rabbitmq]\nurl = \"amqp://broker\"\nca_file = \"ca.pem\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rabbitmq.ca_file") && err.contains("line 3") && err.contains("amqps://"),
            "{err}"
        );
        let err = parse("[rabbitmq]\nclient_cert = \"c.pem\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rabbitmq.client_cert") && err.contains("client_key"),
            "{err}"
        );
        let err = parse("[rabbitmq]\nclient_key = \"k.pem\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rabbitmq.client_key") && err.contains("client_cert"),
            "{err}"
        );
        let err = parse("[rabbitmq]\nca_file = \" \"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("must not be empty"), "{err}");
        // Without a url in the manifest the URL comes from the CLI or the
        // environment; the connection refuses a plaintext one there.
        assert!(parse("[rabbitmq]\nca_file = \"ca.pem\"\n").is_ok());
    }

    #[test]
    fn limits_have_defaults_below_every_broker_and_can_be_set() {
        let m = parse("").unwrap();
        assert_eq!(m.limits, Limits::default());
        // RabbitMQ 4.x refuses messages over 16 MiB (3.10: 128 MiB).
        assert!(m.limits.max_request_bytes < 16 * 1024 * 1024);
        assert!(m.limits.max_reply_bytes < 16 * 1024 * 1024);
        let m = parse("[limits]\nmax_request_bytes = 1024\nmax_reply_bytes = 2048\nmax_find_method_bytes = 64\n")
            .unwrap();
        assert_eq!(
            m.limits,
            Limits {
                max_request_bytes: 1024,
                max_reply_bytes: 2048,
                max_find_method_bytes: 64
            }
        );
    }

    #[test]
    fn bad_limits_name_key_line_and_reason() {
        let err = parse("[limits]\nmax_reply_bytes = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("limits.max_reply_bytes")
                && err.contains("line 2")
                && err.contains("greater than 0"),
            "{err}"
        );
        let err = parse("[limits]\n\nmax_request_bytes = 536870913\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("limits.max_request_bytes")
                && err.contains("line 3")
                && err.contains("512 MiB"),
            "{err}"
        );
        let err = parse(&format!(
            "[rabbitmq]\nrpc_exchange = {:?}\n",
            "x".repeat(256)
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("rabbitmq.rpc_exchange") && err.contains("255 bytes"),
            "{err}"
        );
        let err = parse("[limits]\nmax_bytes = 1\n").unwrap_err().to_string();
        assert!(err.contains("max_bytes") && err.contains("line 2"), "{err}");
    }

    #[test]
    fn tracker_limits_and_curve_files() {
        let m = parse(
            "[zeromq]\nmax_message_size = 4096\nhwm = 10\nv1_ttl_ms = 20000\ncurve_server_key_file = \"keys/manager.key\"\ncurve_allowed_clients_file = \"/etc/allowed\"\n",
        )
        .unwrap();
        assert_eq!((m.zeromq.max_message_size, m.zeromq.hwm), (4096, 10));
        assert_eq!(m.zeromq.v1_ttl_ms, 20_000);
        assert_eq!(
            m.zeromq.curve_server_key_file.as_deref(),
            Some(Path::new("/base/keys/manager.key"))
        );
        assert_eq!(
            m.zeromq.curve_allowed_clients_file.as_deref(),
            Some(Path::new("/etc/allowed"))
        );
        let err = parse("[zeromq]\nmax_message_size = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("zeromq.max_message_size") && err.contains("line 2"),
            "{err}"
        );
        let err = parse("[zeromq]\nhwm = 0\n").unwrap_err().to_string();
        assert!(err.contains("zeromq.hwm"), "{err}");
        let err = parse("[zeromq]\ncurve_allowed_clients_file = \"a\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("curve_server_key_file") && err.contains("line 2"),
            "{err}"
        );
    }

    #[test]
    fn the_local_socket_is_on_by_default_and_its_path_resolves_against_the_manifest() {
        let m = parse("").unwrap();
        assert_eq!(m.local, LocalSettings::default());
        assert!(m.local.enabled);
        let m = parse("[local]\nenabled = false\nsocket = \"run/local.sock\"\n").unwrap();
        assert!(!m.local.enabled);
        assert_eq!(
            m.local.socket.as_deref(),
            Some(Path::new("/base/run/local.sock"))
        );
        let err = parse("[local]\nsocket = \"\"\n").unwrap_err().to_string();
        assert!(
            err.contains("local.socket") && err.contains("line 2"),
            "{err}"
        );
        let err = parse("[local]\nport = 1\n").unwrap_err().to_string();
        assert!(err.contains("port"), "{err}");
    }

    #[test]
    fn the_http_endpoint_is_off_by_default_and_needs_an_address_and_port() {
        assert_eq!(parse("").unwrap().http.listen, None);
        let m = parse("[http]\nlisten = \"127.0.0.1:9464\"\n").unwrap();
        assert_eq!(m.http.listen, Some(([127, 0, 0, 1], 9464).into()));
        let err = parse("[http]\nlisten = \"localhost\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("http.listen") && err.contains("line 2") && err.contains("127.0.0.1:9464"),
            "{err}"
        );
    }

    #[test]
    fn wrong_type_is_a_parse_error() {
        let err = parse("[rabbitmq]\nprefetch = \"ten\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("prefetch"), "{err}");
    }

    #[test]
    fn plugin_entry_resolves_path_and_keeps_config() {
        let m = parse(
            "[[plugins]]\npath = \"plugins/libx.so\"\nsha256 = \"ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789\"\n[plugins.config]\ntick_ms = 5\n[plugins.methods.m]\nroute = \"a.b\"\nconcurrency = 2\n",
        )
        .unwrap();
        let p = &m.plugins[0];
        assert_eq!(p.path, Path::new("/base/plugins/libx.so"));
        assert!(p.sha256.as_deref().unwrap().starts_with("abcdef"));
        assert_eq!(p.config, serde_json::json!({"tick_ms": 5}));
        assert_eq!(p.methods["m"].route.as_deref(), Some("a.b"));
        assert_eq!(p.methods["m"].concurrency, Some(2));
    }

    #[test]
    fn missing_file_names_the_file() {
        let err = Manifest::load(Path::new("/nonexistent/plughost.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/nonexistent/plughost.toml") && err.contains("cannot read"),
            "{err}"
        );
    }
}

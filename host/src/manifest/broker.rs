//! Where a host or a caller finds the broker, decided in one place.
//!
//! The rule is the same for `plughost run`, `find`, `call`, `bench` and an
//! embedded host: an explicit setting (a CLI flag, its environment
//! variable, [`crate::host::HostOptions`]) wins over the manifest's
//! `[rabbitmq]`, which wins over the defaults (the local broker, the old
//! tools' exchange names, no TLS files). Keeping it here means a new
//! setting cannot end up with a different precedence in the CLI.

use std::path::PathBuf;

use plughost_client::{ClientOptions, Exchanges, LocalMode, RouteQueueKind, TlsFiles};

use super::{Manifest, RabbitSettings, DEFAULT_AMQP_URL};

/// Broker settings given explicitly, each overriding the manifest's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerOverrides {
    /// Broker URL (`--amqp`, `PLUGHOST_AMQP_URL`); several, separated by
    /// commas, are a cluster's nodes ([`split_urls`]) and replace the
    /// manifest's `url` or `urls` whole.
    pub url: Option<String>,
    /// The RPC (topic) exchange.
    pub rpc_exchange: Option<String>,
    /// The name-service (fanout) exchange.
    pub ns_exchange: Option<String>,
    /// CA file trusted for `amqps://`.
    pub ca_file: Option<PathBuf>,
    /// Client certificate for `amqps://`.
    pub client_cert: Option<PathBuf>,
    /// The client certificate's key.
    pub client_key: Option<PathBuf>,
    /// A host's local socket (`--local-socket`, `PLUGHOST_LOCAL_SOCKET`).
    pub local_socket: Option<PathBuf>,
}

/// The broker settings in force: what a host's RPC roles and a caller's
/// client connect with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerSettings {
    /// Broker URL: the first one tried.
    pub url: String,
    /// The other nodes of the same cluster, tried in order when `url` does
    /// not answer or is lost.
    pub fallback_urls: Vec<String>,
    /// How route queues are declared (the manifest's `route_queues`).
    pub route_queues: RouteQueueKind,
    /// Exchange names.
    pub exchanges: Exchanges,
    /// TLS files for `amqps://`.
    pub tls: TlsFiles,
    /// The local socket callers fall back to, or use with `--local`.
    pub local_socket: PathBuf,
}

impl BrokerOverrides {
    /// Applies the precedence rule: these overrides, then the manifest's
    /// `[rabbitmq]` and `[local]` (when there is a manifest), then the
    /// defaults.
    ///
    /// ```
    /// use plughost::manifest::{BrokerOverrides, Manifest, DEFAULT_AMQP_URL};
    ///
    /// let m = Manifest::parse("[rabbitmq]\nurl = \"amqp://m:5672\"\nrpc_exchange = \"x\"\n", "/".as_ref(), "m.toml").unwrap();
    /// let flags = BrokerOverrides { url: Some("amqp://flag:5672".into()), ..Default::default() };
    /// let settings = flags.resolve(Some(&m));
    /// assert_eq!(settings.url, "amqp://flag:5672");
    /// assert_eq!(settings.exchanges.rpc, "x");
    /// assert_eq!(settings.exchanges.ns, "rpc_ns_exchange");
    /// assert_eq!(BrokerOverrides::default().resolve(None).url, DEFAULT_AMQP_URL);
    /// ```
    pub fn resolve(&self, manifest: Option<&Manifest>) -> BrokerSettings {
        let local_socket = self
            .local_socket
            .clone()
            .or_else(|| manifest.and_then(|m| m.local.socket.clone()))
            .unwrap_or_else(plughost_client::local::default_socket);
        let manifest = manifest.map(|m| &m.rabbitmq);
        let defaults = Exchanges::default();
        let from_manifest = manifest.map(RabbitSettings::tls_files).unwrap_or_default();
        let (url, fallback_urls) = match &self.url {
            Some(flag) => {
                let mut all = split_urls(flag).into_iter();
                let first = all.next().unwrap_or_else(|| flag.clone());
                (first, all.collect())
            }
            None => match manifest.and_then(|m| m.url.clone()) {
                Some(url) => (
                    url,
                    manifest
                        .map(|m| m.fallback_urls.clone())
                        .unwrap_or_default(),
                ),
                None => (DEFAULT_AMQP_URL.to_owned(), Vec::new()),
            },
        };
        BrokerSettings {
            url,
            fallback_urls,
            route_queues: manifest.map(|m| m.route_queues).unwrap_or_default(),
            exchanges: Exchanges {
                rpc: self
                    .rpc_exchange
                    .clone()
                    .or_else(|| manifest.map(|m| m.rpc_exchange.clone()))
                    .unwrap_or(defaults.rpc),
                ns: self
                    .ns_exchange
                    .clone()
                    .or_else(|| manifest.map(|m| m.ns_exchange.clone()))
                    .unwrap_or(defaults.ns),
            },
            tls: TlsFiles {
                ca_file: self.ca_file.clone().or(from_manifest.ca_file),
                client_cert: self.client_cert.clone().or(from_manifest.client_cert),
                client_key: self.client_key.clone().or(from_manifest.client_key),
            },
            local_socket,
        }
    }
}

impl BrokerSettings {
    /// Client options for these settings (the client's other defaults):
    /// the broker, falling back to the local socket when no broker runs.
    pub fn client_options(&self) -> ClientOptions {
        let mut options = ClientOptions::new(self.url.clone());
        options.fallback_urls = self.fallback_urls.clone();
        options.exchanges = self.exchanges.clone();
        options.tls = self.tls.clone();
        options.local = LocalMode::Fallback(self.local_socket.clone());
        options
    }
}

/// The URLs of a `--amqp` value: one URL, or several separated by commas
/// (a cluster's nodes). Blank entries are dropped.
///
/// ```
/// use plughost::manifest::split_urls;
/// assert_eq!(split_urls("amqp://a, amqp://b"), ["amqp://a", "amqp://b"]);
/// assert_eq!(split_urls("amqp://a"), ["amqp://a"]);
/// ```
pub fn split_urls(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;

    fn manifest(text: &str) -> Manifest {
        Manifest::parse(text, "/base".as_ref(), "m.toml").unwrap()
    }

    #[test]
    fn each_setting_comes_from_the_override_then_the_manifest_then_the_default() {
        let m = manifest(
            "[rabbitmq]\nurl = \"amqps://m:5671\"\nrpc_exchange = \"mx\"\nns_exchange = \"mns\"\nca_file = \"ca.pem\"\n",
        );
        let none = BrokerOverrides::default();
        let from_manifest = none.resolve(Some(&m));
        assert_eq!(from_manifest.url, "amqps://m:5671");
        assert_eq!(from_manifest.exchanges.rpc, "mx");
        assert_eq!(from_manifest.exchanges.ns, "mns");
        assert_eq!(
            from_manifest.tls.ca_file.as_deref(),
            Some(std::path::Path::new("/base/ca.pem"))
        );

        let all = BrokerOverrides {
            url: Some("amqps://flag:5671".into()),
            rpc_exchange: Some("fx".into()),
            ns_exchange: Some("fns".into()),
            ca_file: Some("/flag/ca.pem".into()),
            client_cert: Some("/flag/c.pem".into()),
            client_key: Some("/flag/k.pem".into()),
            local_socket: Some("/flag/local.sock".into()),
        };
        let overridden = all.resolve(Some(&m));
        assert_eq!(overridden.url, "amqps://flag:5671");
        assert_eq!(overridden.exchanges.rpc, "fx");
        assert_eq!(overridden.exchanges.ns, "fns");
        assert_eq!(
            overridden.tls.ca_file.as_deref(),
            Some("/flag/ca.pem".as_ref())
        );
        assert_eq!(
            overridden.tls.client_key.as_deref(),
            Some("/flag/k.pem".as_ref())
        );

        let defaults = none.resolve(None);
        assert_eq!(defaults.url, DEFAULT_AMQP_URL);
        assert_eq!(defaults.exchanges, Exchanges::default());
        assert!(defaults.tls.is_empty());
        assert_eq!(
            defaults.local_socket,
            plughost_client::local::default_socket()
        );
        assert!(defaults.fallback_urls.is_empty());
        assert_eq!(defaults.route_queues, RouteQueueKind::Classic);
        // A manifest without a URL leaves the default in force.
        assert_eq!(none.resolve(Some(&manifest(""))).url, DEFAULT_AMQP_URL);
    }

    #[test]
    fn client_options_carry_the_resolved_settings() {
        let settings = BrokerOverrides {
            url: Some("amqp://h:1".into()),
            ..Default::default()
        }
        .resolve(None);
        let options = settings.client_options();
        assert_eq!(options.url, "amqp://h:1");
        assert_eq!(options.exchanges, Exchanges::default());
    }

    #[test]
    fn several_urls_come_from_the_manifest_or_replace_it_whole_from_the_flag() {
        let m = manifest(
            "[rabbitmq]\nurls = [\"amqp://a:1\", \"amqp://b:2\", \"amqp://c:3\"]\nroute_queues = \"quorum\"\n",
        );
        let from_manifest = BrokerOverrides::default().resolve(Some(&m));
        assert_eq!(from_manifest.url, "amqp://a:1");
        assert_eq!(from_manifest.fallback_urls, ["amqp://b:2", "amqp://c:3"]);
        assert_eq!(from_manifest.route_queues, RouteQueueKind::Quorum);
        let options = from_manifest.client_options();
        assert_eq!(options.url, "amqp://a:1");
        assert_eq!(options.fallback_urls, ["amqp://b:2", "amqp://c:3"]);

        let flag = BrokerOverrides {
            url: Some("amqp://x:1,amqp://y:2".into()),
            ..Default::default()
        }
        .resolve(Some(&m));
        assert_eq!(flag.url, "amqp://x:1");
        assert_eq!(flag.fallback_urls, ["amqp://y:2"]);
        // The flag names brokers, not the queue type: that stays the manifest's.
        assert_eq!(flag.route_queues, RouteQueueKind::Quorum);
    }
}

//! `plughost doctor`: checks a host's configuration and surroundings before
//! (or while) it runs, and says what to fix.
//!
//! Every check is one [`Check`]: a name, a [`Verdict`] and one line of
//! detail. Checks reuse the rules the host itself applies (the loader's
//! trust rule for files, the admin socket's folder rule, the broker
//! settings' precedence) so the doctor and the host cannot disagree. The
//! broker checks only look: an exchange is declared again only when it
//! exists already, with the attributes every host declares it with, which
//! changes nothing on the broker but makes it say whether they match.

use std::{
    fmt,
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use lapin::{options::ExchangeDeclareOptions, types::FieldTable, Connection, ExchangeKind};
use plughost_client::{
    connection::{connect, redact},
    topology::{exchange_exists, ExchangeLookup},
    RouteQueueKind,
};
use plughost_loader::trust;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    admin,
    host::{broker_settings, HostOptions},
    manifest::{BrokerSettings, Manifest},
};

/// How long the broker checks wait for an answer.
const BROKER_TIMEOUT: Duration = Duration::from_secs(5);

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Fine as it is.
    Pass,
    /// Works today, but worth fixing (deprecated, risky, or about to break).
    Warn,
    /// Broken or unsafe: the host will fail or be open to others.
    Fail,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        })
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked, e.g. `broker` or `plugin file /srv/libmath.so`.
    pub name: String,
    /// Pass, warn or fail.
    pub verdict: Verdict,
    /// What was found and, when it is not a pass, what to do.
    pub detail: String,
}

impl Check {
    /// A check; `detail` is made one line (a TOML parse error spans several).
    fn new(name: impl Into<String>, verdict: Verdict, detail: impl Into<String>) -> Self {
        let detail: String = detail.into();
        Self {
            name: name.into(),
            verdict,
            detail: detail
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}  {}: {}", self.verdict, self.name, self.detail)
    }
}

/// Runs every check for the host of the manifest at `path`. A manifest that
/// does not load is one failed check and the end of the list: the other
/// checks need it.
pub async fn diagnose(path: &Path, options: &HostOptions) -> Vec<Check> {
    let manifest = match Manifest::load(path) {
        Ok(m) => m,
        Err(e) => {
            return vec![Check::new(
                "manifest",
                Verdict::Fail,
                format!("{e}; the host will not start with it"),
            )]
        }
    };
    let mut checks = vec![Check::new(
        "manifest",
        Verdict::Pass,
        format!(
            "{} is valid: host {}, {} plugin(s)",
            path.display(),
            manifest.host.name,
            manifest.plugins.len()
        ),
    )];
    checks.push(file_check(
        "manifest file",
        path,
        Verdict::Fail,
        "whoever can change the manifest chooses the code the host loads",
    ));
    let insecure = if manifest.host.allow_insecure_plugin_files {
        Verdict::Warn
    } else {
        Verdict::Fail
    };
    for plugin in &manifest.plugins {
        checks.push(file_check(
            &format!("plugin file {}", plugin.path.display()),
            &plugin.path,
            insecure,
            if insecure == Verdict::Fail {
                "the host refuses to load it"
            } else {
                "the host loads it with a warning (allow_insecure_plugin_files = true)"
            },
        ));
    }
    checks.push(admin_socket(&manifest));
    checks.extend(tracker_endpoints(&manifest));
    if let Some(http) = http_endpoint(&manifest) {
        checks.push(http);
    }
    if manifest.roles.rpc || manifest.roles.name_service {
        checks.extend(broker(&broker_settings(options, &manifest)).await);
    }
    checks
}

/// True when any check failed.
pub fn failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.verdict == Verdict::Fail)
}

/// A file checked by the loader's trust rule (the file, every folder on the
/// way to it, every link followed).
fn file_check(name: &str, path: &Path, verdict: Verdict, consequence: &str) -> Check {
    match trust::check_file(path) {
        Ok(problems) if problems.is_empty() => Check::new(
            name,
            Verdict::Pass,
            "only root and this user can change it or its folders",
        ),
        Ok(problems) => {
            let found: Vec<String> = problems
                .iter()
                .map(|p| format!("{p} (fix: {})", p.fix))
                .collect();
            Check::new(
                name,
                verdict,
                format!("{}; {consequence}", found.join("; ")),
            )
        }
        Err(e) => Check::new(name, Verdict::Fail, format!("cannot be read: {e}")),
    }
}

/// The admin socket's folder: private to the host's user, as the host
/// requires when it opens the socket.
fn admin_socket(manifest: &Manifest) -> Check {
    const NAME: &str = "admin socket";
    if !manifest.roles.admin {
        return Check::new(NAME, Verdict::Pass, "the admin role is off");
    }
    let path = admin::socket_path(manifest);
    let folder = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(folder) => folder.to_path_buf(),
        None => PathBuf::from("."),
    };
    if folder == admin::runtime_dir() && !folder.exists() {
        return Check::new(
            NAME,
            Verdict::Pass,
            format!(
                "{} (its private folder is created 0700 at start)",
                path.display()
            ),
        );
    }
    match admin::check_private_folder(&path, &folder) {
        Ok(()) => Check::new(
            NAME,
            Verdict::Pass,
            format!("{} is in a private folder", path.display()),
        ),
        Err(e) => Check::new(
            NAME,
            Verdict::Fail,
            format!("{e}; the host will not start: set [host] admin to a path in a folder only its user can write to"),
        ),
    }
}

/// The service manager's endpoints: beyond loopback only with CURVE.
fn tracker_endpoints(manifest: &Manifest) -> Vec<Check> {
    if !manifest.roles.manager {
        return vec![Check::new(
            "tracker endpoints",
            Verdict::Pass,
            "the manager role is off (nothing bound)",
        )];
    }
    let zmq = &manifest.zeromq;
    let curve = zmq.curve_server_key_file.is_some();
    [
        ("zeromq.discovery", &zmq.discovery),
        ("zeromq.management", &zmq.management),
    ]
    .into_iter()
    .map(|(key, endpoint)| {
        let name = format!("tracker endpoint {key}");
        match endpoint_reach(endpoint) {
            Reach::Local => Check::new(name, Verdict::Pass, format!("{endpoint} is on this machine only")),
            Reach::Network(_) if curve => Check::new(
                name,
                Verdict::Pass,
                format!("{endpoint} is reachable from the network, with CURVE on"),
            ),
            Reach::Network(what) => Check::new(
                name,
                Verdict::Fail,
                format!(
                    "{endpoint} binds {what} without CURVE: anyone who reaches it can register, list and heartbeat as any service; bind 127.0.0.1, or turn CURVE on ([zeromq] curve_server_key_file and curve_allowed_clients_file)"
                ),
            ),
        }
    })
    .collect()
}

/// Who can reach a ZeroMQ endpoint.
#[derive(Debug, PartialEq, Eq)]
enum Reach {
    /// Loopback, `ipc://`, `inproc://`.
    Local,
    /// Other machines; what it binds.
    Network(String),
}

fn endpoint_reach(endpoint: &str) -> Reach {
    let Some(rest) = endpoint.strip_prefix("tcp://") else {
        return Reach::Local;
    };
    let host = rest.rsplit_once(':').map_or(rest, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host {
        "*" => Reach::Network("every interface".to_owned()),
        "localhost" => Reach::Local,
        _ => match host.parse::<IpAddr>() {
            Ok(ip) if ip.is_loopback() => Reach::Local,
            Ok(ip) if ip.is_unspecified() => Reach::Network("every interface".to_owned()),
            _ => Reach::Network(host.to_owned()),
        },
    }
}

/// The HTTP endpoint: a warning when it listens beyond loopback.
fn http_endpoint(manifest: &Manifest) -> Option<Check> {
    let addr = manifest.http.listen?;
    Some(if addr.ip().is_loopback() {
        Check::new(
            "http endpoint",
            Verdict::Pass,
            format!("{addr} is on this machine only"),
        )
    } else {
        Check::new(
            "http endpoint",
            Verdict::Warn,
            format!("{addr} is reachable from the network without authentication (read-only, but it names every plugin and method); bind 127.0.0.1 or a management network"),
        )
    })
}

/// The broker: reachable, its version, what a newer RabbitMQ refuses, and
/// whether the exchanges fit the old tools' declarations.
async fn broker(settings: &BrokerSettings) -> Vec<Check> {
    let url = redact(&settings.url);
    let conn = match connect(
        &settings.url,
        &settings.tls,
        "plughost doctor",
        BROKER_TIMEOUT,
    )
    .await
    {
        Ok(conn) => conn,
        Err(e) => {
            return vec![Check::new(
                "broker",
                Verdict::Fail,
                format!("{e}; the RPC roles cannot serve until it answers"),
            )]
        }
    };
    let version = server_version(&settings.url).await;
    let mut checks = vec![Check::new(
        "broker",
        Verdict::Pass,
        match &version {
            Ok(v) => format!("reachable at {url}: {} {}", v.product, v.version),
            Err(why) => format!("reachable at {url} (version not read: {why})"),
        },
    )];
    checks.push(route_queues(settings.route_queues, version.ok().as_ref()));
    for (name, kind, text) in [
        (&settings.exchanges.rpc, ExchangeKind::Topic, "topic"),
        (&settings.exchanges.ns, ExchangeKind::Fanout, "fanout"),
    ] {
        checks.push(exchange(&conn, name, kind, text).await);
    }
    let _ = conn.close(200, "plughost doctor done".into()).await;
    checks
}

/// What the broker says it is in its `connection.start`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerVersion {
    /// `product`, e.g. `RabbitMQ`.
    pub product: String,
    /// `version`, e.g. `3.10.7`.
    pub version: String,
}

/// Reads the server properties of the broker's `connection.start` (the
/// first frame of the AMQP handshake) and hangs up. lapin keeps them to
/// itself, so this opens a connection of its own; over TLS it says it cannot.
async fn server_version(url: &str) -> Result<ServerVersion, String> {
    let uri: lapin::uri::AMQPUri = url.parse()?;
    if uri.scheme != lapin::uri::AMQPScheme::AMQP {
        return Err("not read over amqps://".to_owned());
    }
    let address = (uri.authority.host.as_str(), uri.authority.port);
    let read = async {
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(b"AMQP\x00\x00\x09\x01")
            .await
            .map_err(|e| e.to_string())?;
        let mut head = [0u8; 7];
        stream
            .read_exact(&mut head)
            .await
            .map_err(|e| e.to_string())?;
        let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
        if head[0] != 1 || size > 1 << 20 {
            return Err("the first frame is not a method frame".to_owned());
        }
        let mut payload = vec![0u8; size];
        stream
            .read_exact(&mut payload)
            .await
            .map_err(|e| e.to_string())?;
        parse_start(&payload)
    };
    tokio::time::timeout(BROKER_TIMEOUT, read)
        .await
        .map_err(|_| "no connection.start within 5 s".to_owned())?
}

/// The product and version of a `connection.start` method frame's payload.
fn parse_start(payload: &[u8]) -> Result<ServerVersion, String> {
    use lapin::protocol::{connection::AMQPMethod, AMQPClass};
    let (_, class) = lapin::protocol::parse_class(payload)
        .map_err(|_| "the first frame does not parse".to_owned())?;
    let AMQPClass::Connection(AMQPMethod::Start(start)) = class else {
        return Err("the first frame is not connection.start".to_owned());
    };
    let property = |key: &str| {
        start
            .server_properties
            .inner()
            .get(&lapin::types::ShortString::from(key))
            .and_then(|v| match v {
                lapin::types::AMQPValue::LongString(s) => {
                    Some(String::from_utf8_lossy(s.as_bytes()).into_owned())
                }
                _ => None,
            })
    };
    Ok(ServerVersion {
        product: property("product").unwrap_or_else(|| "an AMQP broker".to_owned()),
        version: property("version").unwrap_or_else(|| "of unknown version".to_owned()),
    })
}

/// The route queues as `[rabbitmq] route_queues` declares them, against
/// what the broker's version does with such queues: RabbitMQ 4.3 refuses
/// transient non-exclusive queues by default, and quorum queues honour a
/// call's per-message `expiration` only from 3.10.
fn route_queues(kind: RouteQueueKind, version: Option<&ServerVersion>) -> Check {
    const NAME: &str = "route queues";
    let numbers = version
        .filter(|v| v.product == "RabbitMQ")
        .and_then(|v| parse_major_minor(&v.version));
    match kind {
        RouteQueueKind::Classic => Check::new(
            NAME,
            Verdict::Pass,
            "durable classic queues with x-expires (route_queues = \"classic\"), which RabbitMQ 3.x and 4.x accept; \
             on a cluster each lives on one node and is unavailable while that node is down (route_queues = \"quorum\" replicates them, docs/deploying.md)",
        ),
        RouteQueueKind::Quorum => match numbers {
            Some((major, minor)) if (major, minor) < (3, 10) => Check::new(
                NAME,
                Verdict::Fail,
                format!("quorum queues (route_queues = \"quorum\"): RabbitMQ {major}.{minor} ignores a call's expiration in quorum queues (from 3.10 it does not), so calls nobody picked up in time would run late; upgrade RabbitMQ or use route_queues = \"classic\""),
            ),
            _ => Check::new(
                NAME,
                Verdict::Pass,
                "quorum queues with x-expires (route_queues = \"quorum\"): replicated over the cluster's nodes; every host must say \"quorum\" too",
            ),
        },
        RouteQueueKind::Transient => {
            let what = "route queues are transient (non-durable), non-exclusive queues with x-expires (route_queues = \"transient\")";
            let fix = "set route_queues = \"classic\" on every host (after deleting the old queues), or allow them with `deprecated_features.permit.transient_nonexcl_queues = true` in rabbitmq.conf";
            match numbers {
                Some((major, minor)) if (major, minor) >= (4, 3) => Check::new(
                    NAME,
                    Verdict::Fail,
                    format!("{what}: RabbitMQ {major}.{minor} refuses them by default; {fix}"),
                ),
                Some((major, _)) if major >= 4 => Check::new(
                    NAME,
                    Verdict::Warn,
                    format!("{what}: deprecated in RabbitMQ 4 (feature transient_nonexcl_queues), refused by default from 4.3; before upgrading, {fix}"),
                ),
                Some(_) => Check::new(
                    NAME,
                    Verdict::Warn,
                    format!("{what}: fine on this broker, but RabbitMQ 4.3 refuses them by default; before upgrading, {fix}"),
                ),
                None => Check::new(
                    NAME,
                    Verdict::Warn,
                    format!("{what}: the broker's version is unknown; RabbitMQ 4.3 refuses them by default"),
                ),
            }
        }
    }
}

fn parse_major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.');
    let major = parts.next()?.trim().parse().ok()?;
    let minor = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()?;
    Some((major, minor))
}

/// One exchange: absent (a host declares it), or present with the old
/// tools' attributes (`kind`, non-durable, not auto-delete, no arguments).
async fn exchange(conn: &Connection, name: &str, kind: ExchangeKind, text: &str) -> Check {
    let check = format!("exchange {name}");
    let attributes = format!("{text}, non-durable, not auto-delete");
    let ask = async {
        let channel = conn.create_channel().await?;
        if let ExchangeLookup::Refused(_) = exchange_exists(&channel, &name.into()).await? {
            return Ok(None);
        }
        let channel = conn.create_channel().await?;
        let same = ExchangeDeclareOptions {
            passive: false,
            durable: false,
            auto_delete: false,
            internal: false,
            nowait: false,
        };
        Ok::<_, lapin::Error>(Some(
            channel
                .exchange_declare(name.into(), kind, same, FieldTable::default())
                .await,
        ))
    };
    match tokio::time::timeout(BROKER_TIMEOUT, ask).await {
        Err(_) => Check::new(check, Verdict::Fail, "the broker did not answer within 5 s"),
        Ok(Err(e)) => Check::new(check, Verdict::Fail, format!("cannot ask the broker: {e}")),
        Ok(Ok(None)) => Check::new(
            check,
            Verdict::Pass,
            format!("not declared yet; a host declares it {attributes}, as the old tools do"),
        ),
        Ok(Ok(Some(Ok(())))) => Check::new(
            check,
            Verdict::Pass,
            format!("declared {attributes}, as the old tools declare it"),
        ),
        Ok(Ok(Some(Err(e)))) => Check::new(
            check,
            Verdict::Fail,
            format!("declared with other attributes than the old tools' ({attributes}): {e}; hosts and old tools cannot declare it: delete it (rabbitmqctl delete_exchange {name}) and let a host declare it"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rabbit(version: &str) -> ServerVersion {
        ServerVersion {
            product: "RabbitMQ".to_owned(),
            version: version.to_owned(),
        }
    }

    #[test]
    fn route_queues_fail_from_rabbitmq_4_3_and_warn_before() {
        let transient = RouteQueueKind::Transient;
        assert_eq!(
            route_queues(transient, Some(&rabbit("4.3.0"))).verdict,
            Verdict::Fail
        );
        assert_eq!(
            route_queues(transient, Some(&rabbit("5.0.1"))).verdict,
            Verdict::Fail
        );
        let on_4_2 = route_queues(transient, Some(&rabbit("4.2.1")));
        assert_eq!(on_4_2.verdict, Verdict::Warn);
        assert!(
            on_4_2.detail.contains("transient_nonexcl_queues"),
            "{on_4_2}"
        );
        assert_eq!(
            route_queues(transient, Some(&rabbit("3.10.7"))).verdict,
            Verdict::Warn
        );
        assert_eq!(route_queues(transient, None).verdict, Verdict::Warn);
    }

    #[test]
    fn classic_route_queues_pass_everywhere_and_quorum_ones_from_3_10() {
        for version in ["3.10.8", "4.3.0"] {
            let classic = route_queues(RouteQueueKind::Classic, Some(&rabbit(version)));
            assert_eq!(classic.verdict, Verdict::Pass, "{classic}");
            assert!(classic.detail.contains("durable classic"), "{classic}");
            let quorum = route_queues(RouteQueueKind::Quorum, Some(&rabbit(version)));
            assert_eq!(quorum.verdict, Verdict::Pass, "{quorum}");
        }
        let old = route_queues(RouteQueueKind::Quorum, Some(&rabbit("3.9.29")));
        assert_eq!(old.verdict, Verdict::Fail, "{old}");
        assert!(old.detail.contains("expiration"), "{old}");
    }

    #[test]
    fn endpoints_beyond_loopback_are_network() {
        assert_eq!(endpoint_reach("tcp://127.0.0.1:5555"), Reach::Local);
        assert_eq!(endpoint_reach("tcp://[::1]:5555"), Reach::Local);
        assert_eq!(endpoint_reach("tcp://localhost:5555"), Reach::Local);
        assert_eq!(endpoint_reach("ipc:///run/x"), Reach::Local);
        assert!(matches!(endpoint_reach("tcp://*:5555"), Reach::Network(_)));
        assert!(matches!(
            endpoint_reach("tcp://0.0.0.0:5555"),
            Reach::Network(_)
        ));
        assert!(matches!(
            endpoint_reach("tcp://10.1.2.3:5555"),
            Reach::Network(_)
        ));
    }

    #[test]
    fn a_frame_that_is_not_connection_start_is_refused() {
        assert!(parse_start(b"\x00\x0a").is_err());
        assert!(parse_start(b"").is_err());
    }
}

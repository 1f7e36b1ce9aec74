//! Connecting to RabbitMQ: the one place where every part of plughost opens
//! a broker connection (the host's RPC roles, the client, the CLI, bench),
//! so that all of them follow the same rules.
//!
//! - **A URL's scheme is honoured or refused, never downgraded.** `amqp://`
//!   is plaintext; `amqps://` is TLS (rustls), verifying the broker's
//!   certificate against the system's CA store plus an optional `ca_file`,
//!   and presenting a client certificate when one is configured. Any other
//!   scheme is refused before a socket is opened, and so are TLS files given
//!   with an `amqp://` URL: whoever set a CA file believes the link is
//!   encrypted, and the credentials in the URL would go out in clear.
//! - **Connecting has a bound that the caller chooses.** A call's deadline
//!   covers its connect, so a frozen broker (TCP accepted by the kernel, the
//!   AMQP handshake never answered) costs that bound and no more.
//! - Connections are named, so operators and tests find them in
//!   `rabbitmqctl list_connections`, and failures become errors that say
//!   what to do next.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use lapin::{
    tcp::{OwnedIdentity, OwnedTLSConfig},
    uri::{AMQPScheme, AMQPUri},
    Connection, ConnectionProperties, DefaultConnectionBuilder,
};
use tracing::warn;

use crate::RpcError;

/// How long a connection attempt may take when the caller has no deadline
/// of its own (the host's reconnect loop, [`crate::ClientOptions::new`]).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The PEM files an `amqps://` connection uses. All are optional: without
/// them, TLS verifies the broker against the system's CA store and presents
/// no client certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificate(s) to trust besides the system's store: the CA that
    /// signed the broker's certificate when it is a private one.
    pub ca_file: Option<PathBuf>,
    /// Certificate (chain) to present, for a broker that asks for one
    /// (`ssl_options.verify = verify_peer`). Needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// The private key of `client_cert` (PKCS#8, PKCS#1 or SEC1 PEM).
    pub client_key: Option<PathBuf>,
}

impl TlsFiles {
    /// True when no file is set.
    pub fn is_empty(&self) -> bool {
        self.ca_file.is_none() && self.client_cert.is_none() && self.client_key.is_none()
    }

    fn names(&self) -> String {
        [
            ("ca_file", &self.ca_file),
            ("client_cert", &self.client_cert),
            ("client_key", &self.client_key),
        ]
        .iter()
        .filter(|(_, path)| path.is_some())
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// The URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Checks that `url` can be honoured as written with `tls`, without
/// connecting: a known scheme, TLS files only with `amqps://`, a client
/// certificate only with its key.
pub fn check_url(url: &str, tls: &TlsFiles) -> Result<AMQPUri, RpcError> {
    let refuse = |reason: String| {
        warn!(broker = %redact(url), %reason, "broker URL refused");
        RpcError::BrokerConfig {
            url: redact(url),
            reason,
        }
    };
    let uri: AMQPUri = url
        .parse()
        .map_err(|e: String| refuse(format!("{e} (broker URLs are amqp://... or amqps://...)")))?;
    if uri.scheme == AMQPScheme::AMQPS && !cfg!(feature = "tls") {
        return Err(refuse(
            "amqps:// needs TLS, and this build of plughost-client has none: \
             enable its `tls` feature (the plughost binary has it)"
                .into(),
        ));
    }
    if uri.scheme == AMQPScheme::AMQP && !tls.is_empty() {
        return Err(refuse(format!(
            "TLS files are set ({}) but the URL is amqp://, which is plaintext: \
             use amqps:// (RabbitMQ's TLS port is 5671 by default)",
            tls.names()
        )));
    }
    if tls.client_cert.is_some() != tls.client_key.is_some() {
        return Err(refuse(
            "client_cert and client_key go together: set both or neither".into(),
        ));
    }
    Ok(uri)
}

/// Checks everything about `url` and `tls` that can be checked without a
/// broker: [`check_url`], and that the TLS files can be read and hold what
/// they should. A host runs this at start, so a typo fails it at once
/// instead of feeding its reconnect loop.
pub fn check_settings(url: &str, tls: &TlsFiles) -> Result<(), RpcError> {
    check_url(url, tls)?;
    tls_config(url, tls).map(|_| ())
}

/// Opens a connection named `name` (shown by the broker as
/// `connection_name`), giving up after `timeout`.
pub async fn connect(
    url: &str,
    tls: &TlsFiles,
    name: &str,
    timeout: Duration,
) -> Result<Connection, RpcError> {
    let uri = check_url(url, tls)?;
    let scheme = uri.scheme.clone();
    let tls_config = tls_config(url, tls)?;
    let unavailable = |reason: String| RpcError::BrokerUnavailable {
        url: redact(url),
        reason,
    };
    let builder = DefaultConnectionBuilder::new()
        .map_err(|e| unavailable(e.to_string()))?
        .with_uri(uri)
        .with_properties(ConnectionProperties::default().with_connection_name(name.into()))
        .with_tls_config(tls_config);
    match tokio::time::timeout(timeout, builder.connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(classify(url, scheme, tls, e)),
        Err(_) => Err(unavailable(format!(
            "no answer within {} ms while connecting (is the broker frozen or overloaded?)",
            timeout.as_millis()
        ))),
    }
}

/// Reads the TLS files up front, so a missing or wrong file is named as
/// such instead of surfacing as a handshake failure.
fn tls_config(url: &str, tls: &TlsFiles) -> Result<OwnedTLSConfig, RpcError> {
    let read = |key: &str, path: &Path, label: &str| {
        read_pem(path, label).map_err(|reason| {
            warn!(broker = %redact(url), key, file = %path.display(), %reason, "TLS file refused");
            RpcError::BrokerConfig {
                url: redact(url),
                reason: format!("{key} {}: {reason}", path.display()),
            }
        })
    };
    let cert_chain = match &tls.ca_file {
        Some(path) => Some(String::from_utf8_lossy(&read("ca_file", path, "CERTIFICATE")?).into()),
        None => None,
    };
    let identity = match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => Some(OwnedIdentity::PKCS8 {
            pem: read("client_cert", cert, "CERTIFICATE")?,
            key: read("client_key", key, "PRIVATE KEY")?,
        }),
        _ => None,
    };
    Ok(OwnedTLSConfig {
        identity,
        cert_chain,
    })
}

/// Reads a PEM file that must hold at least one `label` block
/// (`CERTIFICATE`, or `... PRIVATE KEY` of any kind).
fn read_pem(path: &Path, label: &str) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    let text = String::from_utf8_lossy(&bytes);
    let found = text.lines().any(|line| {
        line.strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
            .is_some_and(|kind| kind.ends_with(label))
    });
    if !found {
        return Err(format!("no PEM {label} in it"));
    }
    Ok(bytes)
}

/// Turns a failed connect into an error that says which layer failed. Over
/// `amqps://`, rustls reports a refused certificate or a peer that does not
/// speak TLS as invalid data; a broker that refuses *our* certificate ends
/// the handshake with an alert or simply closes (reset, end of stream).
fn classify(url: &str, scheme: AMQPScheme, tls: &TlsFiles, e: lapin::Error) -> RpcError {
    use std::io::ErrorKind as Io;
    let tls_failure = scheme == AMQPScheme::AMQPS
        && matches!(e.kind(), lapin::ErrorKind::IOError(io) if matches!(
            io.kind(),
            Io::InvalidData | Io::UnexpectedEof | Io::ConnectionReset | Io::ConnectionAborted | Io::BrokenPipe
        ));
    if !tls_failure {
        let refused =
            matches!(e.kind(), lapin::ErrorKind::IOError(io) if io.kind() == Io::ConnectionRefused);
        return if refused {
            RpcError::NoBroker {
                url: redact(url),
                reason: e.to_string(),
            }
        } else {
            RpcError::BrokerUnavailable {
                url: redact(url),
                reason: e.to_string(),
            }
        };
    }
    let reason = e.to_string();
    let untrusted = reason.contains("UnknownIssuer") || reason.contains("invalid peer certificate");
    let not_tls = reason.contains("corrupt message") || reason.contains("InvalidContentType");
    let hint = if untrusted && tls.ca_file.is_some() {
        "the broker's certificate is not signed by the CA in ca_file (nor by one the system trusts), \
         or does not name the host of the URL"
    } else if untrusted {
        "the broker's certificate is not signed by a CA the system trusts: set ca_file \
         (--ca-file, PLUGHOST_AMQP_CA_FILE) to the CA that signed it"
    } else if not_tls {
        "is this port a TLS listener? amqps:// needs RabbitMQ's TLS port (5671 by default), \
         amqp:// its plain one"
    } else if tls.client_cert.is_none() {
        "the broker ended the TLS handshake: it may require a client certificate; set \
         client_cert and client_key (--client-cert, --client-key)"
    } else {
        "the broker ended the TLS handshake: it may not accept this client certificate"
    };
    RpcError::Tls {
        url: redact(url),
        reason: format!("{reason} ({hint})"),
    }
}

/// Exponential backoff for reconnect loops: 100 ms doubling to 5 s.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: Duration::from_millis(100),
        }
    }
}

impl Backoff {
    /// The delay before the next attempt (and doubles the one after).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(5));
        delay
    }

    /// Back to the shortest delay after a success.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_password() {
        assert_eq!(
            redact("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact("amqp://127.0.0.1"), "amqp://127.0.0.1");
    }

    #[test]
    fn backoff_doubles_to_a_cap() {
        let mut b = Backoff::default();
        let delays: Vec<_> = (0..8).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.reset();
        assert_eq!(b.next_delay().as_millis(), 100);
    }

    fn ca(path: &str) -> TlsFiles {
        TlsFiles {
            ca_file: Some(path.into()),
            ..Default::default()
        }
    }

    #[test]
    fn unknown_schemes_are_refused_with_the_reason() {
        let err = check_url("http://guest:pw@127.0.0.1:5672", &TlsFiles::default()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("http") && text.contains("amqps://") && !text.contains("pw"),
            "{text}"
        );
        assert_eq!(err.code(), 400);
        assert!(check_url("not a url", &TlsFiles::default()).is_err());
    }

    #[test]
    #[cfg(not(feature = "tls"))]
    fn without_the_tls_feature_amqps_is_refused_never_downgraded() {
        let err = check_url("amqps://broker.example", &TlsFiles::default()).unwrap_err();
        assert!(err.to_string().contains("`tls` feature"), "{err}");
    }

    #[test]
    #[cfg(feature = "tls")]
    fn tls_files_with_a_plaintext_url_are_refused_never_downgraded() {
        let text = check_url("amqp://guest:pw@127.0.0.1:5672", &ca("/ca.pem"))
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("ca_file") && text.contains("plaintext") && text.contains("amqps://"),
            "{text}"
        );
        let uri = check_url("amqps://guest:pw@broker.example:5671", &ca("/ca.pem")).unwrap();
        assert_eq!(uri.scheme, AMQPScheme::AMQPS);
        assert_eq!(
            check_url("amqps://broker.example", &TlsFiles::default())
                .unwrap()
                .authority
                .port,
            5671
        );
    }

    #[test]
    #[cfg(feature = "tls")]
    fn a_client_certificate_needs_its_key() {
        let files = TlsFiles {
            client_cert: Some("/cert.pem".into()),
            ..Default::default()
        };
        let text = check_url("amqps://broker.example", &files)
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("client_cert") && text.contains("client_key"),
            "{text}"
        );
    }

    #[test]
    fn tls_files_are_read_up_front_and_named_when_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let text = tls_config("amqps://h", &ca(missing.to_str().unwrap()))
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("ca_file")
                && text.contains("missing.pem")
                && text.contains("cannot read"),
            "{text}"
        );
        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        let text = tls_config("amqps://h", &ca(not_pem.to_str().unwrap()))
            .unwrap_err()
            .to_string();
        assert!(text.contains("no PEM CERTIFICATE"), "{text}");

        let cert = dir.path().join("cert.pem");
        std::fs::write(
            &cert,
            "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(
            &key,
            "-----BEGIN EC PRIVATE KEY-----\nAA==\n-----END EC PRIVATE KEY-----\n",
        )
        .unwrap();
        let files = TlsFiles {
            ca_file: Some(cert.clone()),
            client_cert: Some(cert),
            client_key: Some(key),
        };
        let config = tls_config("amqps://h", &files).unwrap();
        assert!(config.cert_chain.unwrap().contains("BEGIN CERTIFICATE"));
        assert!(matches!(config.identity, Some(OwnedIdentity::PKCS8 { .. })));
    }
}

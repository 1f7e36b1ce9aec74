//! Optional CURVE security for the tracker (libzmq's CurveZMQ): the manager
//! is a CURVE server with a secret key, and accepts only clients whose
//! public key is in its allowed-keys file; services and management clients
//! are CURVE clients with their own key pair and the manager's public key.
//!
//! Who may connect is decided by a ZAP handler (RFC 27) that the manager
//! runs on its own thread beside its sockets: libzmq asks it about every
//! CURVE handshake, and a refused peer is logged with its public key and
//! counted, and never gets a message through. A peer without CURVE at all
//! (every old v1 tool) fails the handshake before ZAP is asked; libzmq
//! reports that as a failed handshake, which the manager's socket monitor
//! logs. So CURVE is for deployments without old peers (`docs/tracker.md`).
//!
//! Key files use the certificate format of czmq and pyzmq's
//! `zmq.auth.create_certificates` (lines `public-key = "<z85>"` and
//! `secret-key = "<z85>"`), so keys made with either tool work, and
//! `plughost services keygen` writes the same format.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::Arc,
};

use tracing::{debug, warn};

use super::{socket::Context, TrackerError};

/// A CURVE key pair (Z85 text, 40 characters each); `secret` is absent in a
/// public certificate (what a service host holds for its manager).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// The public key.
    pub public: String,
    /// The secret key, if the file had one.
    pub secret: Option<String>,
}

impl std::fmt::Debug for KeyPair {
    /// Never prints the secret key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &self.public)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .finish()
    }
}

impl KeyPair {
    /// A fresh key pair from libzmq.
    pub fn generate() -> Result<Self, TrackerError> {
        let pair = zmq::CurveKeyPair::new().map_err(|e| TrackerError::Socket {
            what: "CURVE key pair".into(),
            reason: e.to_string(),
        })?;
        let z85 = |k: &[u8]| zmq::z85_encode(k).unwrap_or_default();
        Ok(Self {
            public: z85(&pair.public_key),
            secret: Some(z85(&pair.secret_key)),
        })
    }

    /// Reads a certificate file (czmq/pyzmq format).
    pub fn load(path: &Path) -> Result<Self, TrackerError> {
        let bad = |reason: String| TrackerError::KeyFile {
            path: path.to_path_buf(),
            reason,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let mut public = None;
        let mut secret = None;
        for line in text.lines() {
            if let Some(key) = key_value(line, "public-key") {
                public = Some(checked_key(key).map_err(|r| bad(format!("public-key: {r}")))?);
            } else if let Some(key) = key_value(line, "secret-key") {
                secret = Some(checked_key(key).map_err(|r| bad(format!("secret-key: {r}")))?);
            }
        }
        let public = public.ok_or_else(|| bad("no public-key line".into()))?;
        Ok(Self { public, secret })
    }

    /// The certificate text for this pair (with the secret key if present).
    pub fn to_certificate(&self) -> String {
        let mut text = String::from(
            "#   ZeroMQ CURVE certificate (written by plughost services keygen)\n\
             #   Keep a file with a secret-key private (mode 0600).\n\nmetadata\ncurve\n",
        );
        text.push_str(&format!("    public-key = \"{}\"\n", self.public));
        if let Some(secret) = &self.secret {
            text.push_str(&format!("    secret-key = \"{secret}\"\n"));
        }
        text
    }

    fn secret_or(&self, path: &Path) -> Result<&str, TrackerError> {
        self.secret.as_deref().ok_or_else(|| TrackerError::KeyFile {
            path: path.to_path_buf(),
            reason: "has no secret-key line, and this side needs its own secret key".into(),
        })
    }
}

/// `  name = "value"` -> `value`.
fn key_value<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let rest = line.trim().strip_prefix(name)?.trim_start();
    let value = rest.strip_prefix('=')?.trim();
    Some(value.trim_matches('"'))
}

/// A Z85 key: 40 characters that decode to 32 bytes.
fn checked_key(key: &str) -> Result<String, String> {
    match zmq::z85_decode(key) {
        Ok(bytes) if bytes.len() == 32 => Ok(key.to_owned()),
        _ => Err(format!("{key:?} is not a 40-character Z85 CURVE key")),
    }
}

/// The manager's side: its key pair and the public keys it lets in.
#[derive(Debug, Clone)]
pub struct ServerCurve {
    /// The manager's key pair (must have the secret key).
    pub keys: KeyPair,
    /// Where the keys came from (for errors).
    pub key_file: PathBuf,
    /// Allowed client public keys, decoded.
    pub allowed: Arc<HashSet<Vec<u8>>>,
}

impl ServerCurve {
    /// Reads the manager's certificate and the allowed-keys file (one Z85
    /// public key per line, or `public-key = "..."` lines; a line that
    /// starts with `#` is a comment: `#` is also a Z85 digit, so only there).
    pub fn load(key_file: &Path, allowed_file: &Path) -> Result<Self, TrackerError> {
        let keys = KeyPair::load(key_file)?;
        keys.secret_or(key_file)?;
        let text = std::fs::read_to_string(allowed_file).map_err(|e| TrackerError::KeyFile {
            path: allowed_file.to_path_buf(),
            reason: format!("cannot read it: {e}"),
        })?;
        let mut allowed = HashSet::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line == "metadata" || line == "curve" {
                continue;
            }
            let key = key_value(line, "public-key").unwrap_or(line);
            let bytes = match zmq::z85_decode(key) {
                Ok(bytes) if bytes.len() == 32 => bytes,
                _ => {
                    return Err(TrackerError::KeyFile {
                        path: allowed_file.to_path_buf(),
                        reason: format!(
                            "line {}: {key:?} is not a 40-character Z85 public key",
                            n + 1
                        ),
                    })
                }
            };
            allowed.insert(bytes);
        }
        Ok(Self {
            keys,
            key_file: key_file.to_path_buf(),
            allowed: Arc::new(allowed),
        })
    }

    /// Makes `socket` a CURVE server that asks the ZAP handler.
    pub fn apply(&self, socket: &zmq::Socket) -> Result<(), TrackerError> {
        let secret = self.keys.secret_or(&self.key_file)?;
        let set = || -> zmq::Result<()> {
            socket.set_curve_server(true)?;
            socket.set_curve_secretkey(&zmq::z85_decode(secret).unwrap_or_default())?;
            socket.set_zap_domain("plughost")?;
            Ok(())
        };
        set().map_err(|e| TrackerError::Socket {
            what: "CURVE server options".into(),
            reason: e.to_string(),
        })
    }
}

/// A service's or client's side: its own key pair and the manager's public key.
#[derive(Debug, Clone)]
pub struct ClientCurve {
    /// Its own key pair (must have the secret key).
    pub keys: KeyPair,
    /// The manager's public key (Z85).
    pub server_public: String,
}

impl ClientCurve {
    /// Reads the client's own certificate and the manager's (public) one.
    pub fn load(own_file: &Path, server_file: &Path) -> Result<Self, TrackerError> {
        let keys = KeyPair::load(own_file)?;
        keys.secret_or(own_file)?;
        let server = KeyPair::load(server_file)?;
        Ok(Self {
            keys,
            server_public: server.public,
        })
    }

    /// Makes `socket` a CURVE client of the manager.
    pub fn apply(&self, socket: &zmq::Socket) -> Result<(), TrackerError> {
        let decode = |k: &str| zmq::z85_decode(k).unwrap_or_default();
        let set = || -> zmq::Result<()> {
            socket.set_curve_serverkey(&decode(&self.server_public))?;
            socket.set_curve_publickey(&decode(&self.keys.public))?;
            socket.set_curve_secretkey(&decode(self.keys.secret.as_deref().unwrap_or("")))?;
            Ok(())
        };
        set().map_err(|e| TrackerError::Socket {
            what: "CURVE client options".into(),
            reason: e.to_string(),
        })
    }
}

/// The ZAP handler: a ROUTER on `inproc://zeromq.zap.01` of the manager's
/// context, polled by the manager's thread.
pub struct ZapHandler {
    socket: zmq::Socket,
    allowed: Arc<HashSet<Vec<u8>>>,
}

impl ZapHandler {
    /// Binds the handler in `context` (one per context, so one per manager).
    pub fn bind(context: &Context, allowed: Arc<HashSet<Vec<u8>>>) -> Result<Self, TrackerError> {
        let socket = context.socket(zmq::ROUTER)?;
        super::socket::bind(&socket, "inproc://zeromq.zap.01")?;
        Ok(Self { socket, allowed })
    }

    /// The poll item for the handler.
    pub fn poll_item(&self) -> zmq::PollItem<'_> {
        self.socket.as_poll_item(zmq::POLLIN)
    }

    /// Answers every pending ZAP request; returns how many it refused.
    pub fn serve(&self) -> u64 {
        let mut refused = 0;
        while let Ok(frames) = self.socket.recv_multipart(zmq::DONTWAIT) {
            // [routing id, "", version, request id, domain, address, identity, mechanism, credentials...]
            let [routing, _, version, request_id, _domain, address, _identity, mechanism, rest @ ..] =
                frames.as_slice()
            else {
                debug!(frames = frames.len(), "malformed ZAP request ignored");
                continue;
            };
            let peer = String::from_utf8_lossy(address).into_owned();
            let key = rest.first();
            let allowed = mechanism.as_slice() == b"CURVE"
                && key.is_some_and(|k| self.allowed.contains(k.as_slice()));
            let (status, text, user): (&[u8], &[u8], Vec<u8>) = if allowed {
                let user = key
                    .and_then(|k| zmq::z85_encode(k).ok())
                    .unwrap_or_default()
                    .into_bytes();
                (b"200", b"OK", user)
            } else {
                refused += 1;
                let shown = key
                    .and_then(|k| zmq::z85_encode(k).ok())
                    .unwrap_or_else(|| "(none)".into());
                warn!(%peer, public_key = %shown, mechanism = %String::from_utf8_lossy(mechanism), "refused a tracker peer: its CURVE public key is not in the allowed-keys file");
                (b"400", b"public key not allowed", Vec::new())
            };
            let reply: [&[u8]; 8] = [routing, b"", version, request_id, status, text, &user, b""];
            if let Err(e) = self.socket.send_multipart(reply, zmq::DONTWAIT) {
                debug!(error = %e, "cannot answer a ZAP request");
            }
        }
        refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_round_trip_and_bad_keys_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let pair = KeyPair::generate().unwrap();
        let path = dir.path().join("me.key_secret");
        std::fs::write(&path, pair.to_certificate()).unwrap();
        assert_eq!(KeyPair::load(&path).unwrap(), pair);
        assert!(!format!("{pair:?}").contains(pair.secret.as_deref().unwrap()));

        let public = KeyPair {
            public: pair.public.clone(),
            secret: None,
        };
        let public_path = dir.path().join("me.key");
        std::fs::write(&public_path, public.to_certificate()).unwrap();
        let err = ClientCurve::load(&public_path, &public_path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("me.key") && err.contains("secret-key"),
            "{err}"
        );

        std::fs::write(&path, "curve\n    public-key = \"short\"\n").unwrap();
        let err = KeyPair::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("me.key_secret") && err.contains("Z85"),
            "{err}"
        );

        // `#` is a Z85 digit: a key that contains one is still a key.
        let hashed = "0000#".repeat(8);
        assert_eq!(zmq::z85_decode(&hashed).unwrap().len(), 32);
        let allowed = dir.path().join("allowed");
        std::fs::write(&allowed, format!("# clients\n{hashed}\n")).unwrap();
        std::fs::write(&path, pair.to_certificate()).unwrap();
        assert_eq!(ServerCurve::load(&path, &allowed).unwrap().allowed.len(), 1);
        std::fs::write(&allowed, format!("# clients\n{}\nnot-a-key\n", pair.public)).unwrap();
        std::fs::write(&path, pair.to_certificate()).unwrap();
        let err = ServerCurve::load(&path, &allowed).unwrap_err().to_string();
        assert!(err.contains("allowed") && err.contains("line 3"), "{err}");
        std::fs::write(&allowed, format!("# clients\n{}\n", pair.public)).unwrap();
        assert_eq!(ServerCurve::load(&path, &allowed).unwrap().allowed.len(), 1);
    }
}

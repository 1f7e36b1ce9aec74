//! The service tracker over ZeroMQ (docs/wire.md §2), on libzmq: a service
//! manager that tracks services as they come and go, the runtime that
//! registers a host's services with a manager, and the management client
//! behind `plughost services` and `plughost cmd-proc`.
//!
//! - [`registry`]: the manager's bookkeeping (pure, clock passed in).
//! - [`manager`]: the manager role: beacons on XPUB, requests on ROUTER.
//! - [`agent`]: one registered service: SUB + DEALER, INIT/HELLO/BYE.
//! - [`services`]: runs a host's tracked services and keeps them in step
//!   with its plugin set.
//! - [`client`]: management requests (list, stop, shutdown), speaking v1 to
//!   an old manager and v2 to plughost's.
//! - [`socket`]: the libzmq bridge: contexts, limits, wakers, monitors.
//! - [`curve`]: optional CURVE keys and the ZAP handler.
//!
//! Wire types come from [`crate::proto`]; only this module touches libzmq.

pub mod agent;
pub mod client;
pub mod curve;
pub mod manager;
pub mod registry;
pub mod services;
pub mod socket;

/// The body line a manager sends to a service it asks to stop (plughost's
/// addition; v1 services ignore it).
pub const STOP_LINE: &str = "stop";

/// The line plughost's management requests carry after the command, so the
/// manager knows a v2 peer (which gets error answers where a v1 peer gets
/// the old manager's silence).
pub const V2_LINE: &str = "v2";

/// Tracker failures.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    /// A socket could not bind.
    #[error("cannot bind {endpoint}: {reason} (is another manager running there?)")]
    Bind {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// A socket could not connect.
    #[error("cannot connect to {endpoint}: {reason}")]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// No answer in time.
    #[error("no answer from the service manager at {endpoint} within {timeout_ms} ms (is a host with the manager role running?)")]
    Timeout {
        /// The management endpoint.
        endpoint: String,
        /// The wait.
        timeout_ms: u64,
    },
    /// No beacon in time, so the manager's address is unknown.
    #[error("no beacon from a service manager on {endpoint} within {timeout_ms} ms (is a manager running, and is this its discovery endpoint? pass --discovery or --manifest)")]
    NoBeacon {
        /// The discovery endpoint.
        endpoint: String,
        /// The wait.
        timeout_ms: u64,
    },
    /// The manager is an old (v1) one, which cannot do this.
    #[error("{manager} is an old (v1) service manager; it cannot {what}")]
    OldManager {
        /// The manager's address.
        manager: String,
        /// What was asked.
        what: String,
    },
    /// A libzmq socket or context could not be made or set up.
    #[error("{what}: {reason}")]
    Socket {
        /// The socket or option.
        what: String,
        /// libzmq's reason.
        reason: String,
    },
    /// A CURVE key file is missing or malformed.
    #[error("CURVE key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// A message that does not fit the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// The socket limits a manifest's `[zeromq]` asks for.
pub fn limits(settings: &crate::manifest::ZmqSettings) -> socket::Limits {
    socket::Limits {
        max_message_size: settings.max_message_size,
        hwm: settings.hwm,
        send_timeout: std::time::Duration::from_millis(settings.send_timeout_ms),
    }
}

/// The manager's CURVE set-up from `[zeromq]`, if CURVE is on.
pub fn server_curve(
    settings: &crate::manifest::ZmqSettings,
) -> Result<Option<curve::ServerCurve>, TrackerError> {
    let Some(key_file) = &settings.curve_server_key_file else {
        return Ok(None);
    };
    let Some(allowed) = &settings.curve_allowed_clients_file else {
        return Err(TrackerError::KeyFile {
            path: key_file.clone(),
            reason: "CURVE is on, but [zeromq] curve_allowed_clients_file is not set: the manager would let nobody in".into(),
        });
    };
    curve::ServerCurve::load(key_file, allowed).map(Some)
}

/// A service host's (or a client's) CURVE set-up from `[zeromq]`, if CURVE is on.
pub fn client_curve(
    settings: &crate::manifest::ZmqSettings,
) -> Result<Option<curve::ClientCurve>, TrackerError> {
    let Some(server) = &settings.curve_server_key_file else {
        return Ok(None);
    };
    let Some(own) = &settings.curve_client_key_file else {
        return Err(TrackerError::KeyFile {
            path: server.clone(),
            reason: "CURVE is on, but [zeromq] curve_client_key_file (this host's own certificate) is not set".into(),
        });
    };
    curve::ClientCurve::load(own, server).map(Some)
}

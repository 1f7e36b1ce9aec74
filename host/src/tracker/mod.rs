//! The service tracker over ZeroMQ (WIRE.md §2): a service manager that
//! tracks services as they come and go, the runtime that registers a host's
//! services with a manager, and the management client behind
//! `plughost services` and `plughost cmd-proc`.
//!
//! - [`registry`]: the manager's bookkeeping (pure, clock passed in).
//! - [`manager`]: the manager role: beacons on PUB, requests on ROUTER.
//! - [`agent`]: one registered service: SUB + DEALER, INIT/HELLO/BYE.
//! - [`services`]: runs a host's tracked services and keeps them in step
//!   with its plugin set.
//! - [`client`]: management requests (list, stop, shutdown).
//!
//! Wire types come from [`crate::proto`]; only this module touches zeromq.

pub mod agent;
pub mod client;
pub mod manager;
pub mod registry;
pub mod services;

/// The body line a manager sends to a service it asks to stop (plughost's
/// addition; v1 services ignore it).
pub const STOP_LINE: &str = "stop";

/// A DEALER whose socket identity is `uid`, as WIRE.md asks of every peer
/// that talks to a manager (the manager checks From uuid = identity).
pub fn dealer_with_identity(
    uid: plughost_proto::uid::Uid,
) -> Result<zeromq::DealerSocket, TrackerError> {
    use zeromq::Socket;
    let identity = zeromq::util::PeerIdentity::try_from(bytes::Bytes::from(uid.to_string()))
        .map_err(|e| TrackerError::Protocol(e.to_string()))?;
    let mut options = zeromq::SocketOptions::default();
    options.peer_identity(identity);
    Ok(zeromq::DealerSocket::with_options(options))
}

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
    /// A message that does not fit the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
}

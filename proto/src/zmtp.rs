//! The version of ZMTP, ZeroMQ's wire protocol, that plughost speaks: the
//! old toolkit's "zmq version" helper, reported by `plughost version` next
//! to the libzmq version.
//!
//! plughost's tracker runs on the system libzmq (through the `zmq` crate),
//! the reference implementation the old Python tools ran on (pyzmq), so
//! its wire is the old tools' by construction. libzmq 4.2 and later greet
//! with ZMTP 3.1 (3.0 plus the PING/PONG heartbeat commands) and accept
//! 3.0 peers. libzmq does not export the greeting version; it is stated
//! here, and `host/tests/zmtp_version.rs` reads the greeting bytes from a
//! real libzmq socket to catch a library that greets otherwise. This is the
//! only module of `proto` that concerns ZeroMQ; the wire types never touch it.
//!
//! ```
//! use plughost_proto::zmtp::zmq_version;
//!
//! let version = zmq_version();
//! assert_eq!((version.major, version.minor), (3, 1));
//! assert_eq!(version.to_string(), "ZMTP 3.1");
//! ```

use std::fmt;

use serde::Serialize;

/// A ZMTP protocol version, as carried in bytes 10 and 11 of the greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ZmtpVersion {
    /// Major version (greeting byte 10).
    pub major: u8,
    /// Minor version (greeting byte 11).
    pub minor: u8,
}

/// The ZMTP version libzmq 4.2 and later send in their greeting.
pub const ZMTP_VERSION: ZmtpVersion = ZmtpVersion { major: 3, minor: 1 };

/// The ZMTP version plughost's ZeroMQ sockets speak.
pub fn zmq_version() -> ZmtpVersion {
    ZMTP_VERSION
}

impl fmt::Display for ZmtpVersion {
    /// `ZMTP <major>.<minor>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ZMTP {}.{}", self.major, self.minor)
    }
}

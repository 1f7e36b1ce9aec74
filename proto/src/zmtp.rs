//! The version of ZMTP, ZeroMQ's wire protocol, that plughost speaks: the
//! old toolkit's "zmq version" helper, reported by `plughost version`.
//!
//! plughost talks ZeroMQ through the pure-Rust `zeromq` crate (0.7), not
//! libzmq, so the old answer ("libzmq 4.x") no longer applies; what matters
//! for interoperating with the old Python tools (pyzmq on libzmq, which
//! speaks ZMTP 3.1 and accepts 3.0) is the protocol version in the greeting.
//! The crate does not export it: it is `ZmqGreeting::default()` in
//! `zeromq-0.7.0/src/codec/greeting.rs` (`version: (3, 0)`), and
//! `negotiate_version` in `src/util.rs` always answers with that version. It
//! is stated here, and `host/tests/zmtp_version.rs` reads the greeting bytes
//! from a real zeromq socket to catch a crate upgrade that changes it. This is
//! the only module of `proto` that concerns the zeromq crate; the wire types
//! never touch it.
//!
//! ```
//! use plughost_proto::zmtp::zmq_version;
//!
//! let version = zmq_version();
//! assert_eq!((version.major, version.minor), (3, 0));
//! assert_eq!(version.to_string(), "ZMTP 3.0");
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

/// The ZMTP version the `zeromq` crate 0.7 sends in its greeting.
pub const ZMTP_VERSION: ZmtpVersion = ZmtpVersion { major: 3, minor: 0 };

/// The `zeromq` crate release plughost speaks ZMTP through.
pub const ZEROMQ_CRATE: &str = "zeromq 0.7";

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

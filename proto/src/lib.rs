//! # plughost-proto
//!
//! plughost's wire formats as plain data, for everyone who speaks them: the
//! host, the client crate, the CLI and the fuzz target. The protocol toolkit
//! of the system plughost descends from (the tracker is built on it and
//! `plughost proto` exposes it for debugging wire traffic), and the RPC
//! bodies of v1 and v2. One module per concept:
//!
//! - [`rpc`]: the RPC bodies: v1 (the old text framing) and v2 (JSON).
//! - [`uid`]: version-4 UUIDs with the old system's strict validation.
//! - [`address`]: field addresses, and the raw protocol's `<name>:<uuid4>`.
//! - [`message`]: the generic line-based message model (split, join).
//! - [`factory`]: recognise a message's protocol by its start line.
//! - [`raw`]: the raw protocol v1 the service tracker speaks, byte for byte.
//! - [`known`]: every protocol plughost knows, in one factory.
//! - [`codes`]: raw, HTTP and SIP status codes with classes.
//! - [`headers`]: raw, HTTP and SIP header names.
//! - [`zmtp`]: the ZeroMQ wire-protocol version plughost speaks.
//!
//! Nothing here opens a socket: the wire types are plain data, and the
//! transports (ZeroMQ for the tracker) sit in the roles that use them.
//!
//! ```
//! use plughost_proto::{known, raw::RawMessage, known::KnownMessage};
//!
//! let bytes = b"Raw Request Message : Version 1.0\r\n\
//!     3c1d2e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f\r\n\
//!     Service Manager:8f7e6d5c-4b3a-4291-8f7e-6d5c4b3a2910\r\n\
//!     \r\n\
//!     hello\r\n";
//! let found = known::factory().parse(bytes).unwrap();
//! assert_eq!(found.protocol, "raw");
//! let KnownMessage::Raw(RawMessage::Request(beacon)) = found.message else { unreachable!() };
//! assert_eq!(beacon.from().name(), "Service Manager");
//! ```

pub mod address;
pub mod codes;
pub mod factory;
pub mod headers;
pub mod known;
pub mod message;
pub mod raw;
pub mod rpc;
pub mod uid;
pub mod zmtp;

pub use address::{Address, RawAddress};
pub use uid::Uid;
pub use zmtp::zmq_version;

/// How many characters of offending input an error message quotes.
const EXCERPT_LIMIT: usize = 80;

/// `text`, cut to [`EXCERPT_LIMIT`] characters with `…` if it was longer, so
/// that errors about hostile or binary input stay readable in logs.
pub(crate) fn excerpt(text: &str) -> String {
    let mut quoted: String = text.chars().take(EXCERPT_LIMIT).collect();
    if text.chars().nth(EXCERPT_LIMIT).is_some() {
        quoted.push('…');
    }
    quoted
}

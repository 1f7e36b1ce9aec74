//! The protocols plughost knows, registered in one factory: what
//! `plughost proto parse` uses to recognise a message.
//!
//! [`KnownMessage`] is the factory's output type. It is `non_exhaustive`
//! because the tracker's v2 messages will join it; matching code keeps a
//! wildcard arm and goes on compiling when they do.
//!
//! ```
//! use plughost_proto::known::{self, KnownMessage};
//!
//! let factory = known::factory();
//! let found = factory
//!     .parse(b"Generic Request Message : Version 1.0\r\n7\r\nh\r\n\r\nbody\r\n")
//!     .unwrap();
//! assert_eq!(found.protocol, "generic");
//! assert!(matches!(found.message, KnownMessage::Generic(_)));
//! ```

use super::factory::MessageFactory;
use super::message::{
    LineSeparator, Message, MessageKind, GENERIC_REQUEST_LINE, GENERIC_RESPONSE_LINE,
};
use super::raw::{self, RawMessage};

/// The name the generic message model is registered under.
pub const GENERIC_PROTOCOL: &str = "generic";

/// A message of any protocol plughost knows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KnownMessage {
    /// The raw protocol of the service tracker (v1).
    Raw(RawMessage),
    /// The old toolkit's generic message (its default start lines).
    Generic(Message),
}

impl From<RawMessage> for KnownMessage {
    fn from(message: RawMessage) -> Self {
        Self::Raw(message)
    }
}

/// A factory with every protocol plughost knows registered: the raw
/// protocol and the old toolkit's generic messages, both over CRLF.
pub fn factory() -> MessageFactory<KnownMessage> {
    let mut factory = MessageFactory::new();
    register_all(&mut factory);
    factory
}

fn register_all(factory: &mut MessageFactory<KnownMessage>) {
    // The prefixes below are distinct constants that do not overlap, so
    // registration cannot fail; a test asserts it.
    let _ = raw::register(factory);
    for (kind, start_line) in [
        (MessageKind::Request, GENERIC_REQUEST_LINE),
        (MessageKind::Response, GENERIC_RESPONSE_LINE),
    ] {
        let _ = factory.register(GENERIC_PROTOCOL, kind, start_line, move |bytes: &[u8]| {
            Message::split(kind, bytes, &LineSeparator::CRLF).map(KnownMessage::Generic)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_protocol_is_registered() {
        let factory = factory();
        let registrations: Vec<(&str, MessageKind)> = factory
            .registrations()
            .map(|entry| (entry.protocol, entry.kind))
            .collect();
        assert_eq!(
            registrations,
            [
                ("raw", MessageKind::Request),
                ("raw", MessageKind::Response),
                ("generic", MessageKind::Request),
                ("generic", MessageKind::Response),
            ]
        );
    }

    #[test]
    fn generic_responses_are_recognised() {
        let factory = factory();
        let found = factory
            .parse(b"Generic Response Message : Version 1.0\r\n7\r\n\r\n200\r\n")
            .unwrap();
        assert_eq!(
            (found.protocol, found.kind),
            ("generic", MessageKind::Response)
        );
        let KnownMessage::Generic(message) = found.message else {
            panic!("expected a generic message");
        };
        assert_eq!(message.body, ["200"]);
    }
}

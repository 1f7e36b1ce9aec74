//! The message factory: one entry point that recognises which registered
//! protocol a message belongs to by its start line, and hands it to that
//! protocol's parser.
//!
//! The old toolkit kept a registry from "the message starts with" to a
//! validation handler. That is kept, with one fix: the old registry was a
//! dictionary walked in arbitrary order, so two protocols whose prefixes
//! overlapped (one a prefix of the other) would get messages by chance.
//! Here registering such a pair is an error, so at most one entry matches any
//! message and recognition does not depend on registration order.
//!
//! The factory is generic over what the parsers produce (`M`), so a user can
//! register the protocols they need into their own message enum; the
//! protocols plughost itself knows come ready-made from
//! [`known::factory`](super::known::factory).
//!
//! ```
//! use plughost_proto::factory::MessageFactory;
//! use plughost_proto::message::MessageKind;
//!
//! let mut factory: MessageFactory<String> = MessageFactory::new();
//! factory
//!     .register("ping", MessageKind::Request, "PING", |bytes: &[u8]| {
//!         Ok::<_, std::str::Utf8Error>(std::str::from_utf8(&bytes[4..])?.trim().to_owned())
//!     })
//!     .unwrap();
//! let found = factory.parse(b"PING hello").unwrap();
//! assert_eq!((found.protocol, found.kind, found.message.as_str()), ("ping", MessageKind::Request, "hello"));
//!
//! // A prefix that overlaps a registered one is refused.
//! assert!(factory.register("pingpong", MessageKind::Request, "PINGPONG", |_: &[u8]| Ok::<_, std::fmt::Error>(String::new())).is_err());
//! ```

use std::fmt;

use super::message::MessageKind;

/// The error a registered parser may return, boxed so protocols keep their own error types.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

type ParseFn<M> = Box<dyn Fn(&[u8]) -> Result<M, BoxError> + Send + Sync>;

/// Why registration or recognition failed.
#[derive(Debug, thiserror::Error)]
pub enum FactoryError {
    /// A protocol tried to register an empty prefix, which would match every message.
    #[error(
        "protocol {protocol:?} registered an empty {kind} prefix, which would match every message"
    )]
    EmptyPrefix {
        /// The protocol that tried.
        protocol: &'static str,
        /// Request or response.
        kind: MessageKind,
    },
    /// A new prefix overlaps a registered one: one is a prefix of the other.
    #[error(
        "{kind} prefix {prefix:?} of protocol {protocol:?} clashes with {existing_kind} prefix \
         {existing_prefix:?} of protocol {existing_protocol:?}: one starts with the other, so a \
         message could match both"
    )]
    PrefixClash {
        /// The protocol being registered.
        protocol: &'static str,
        /// The kind being registered.
        kind: MessageKind,
        /// The new prefix (lossily decoded for display).
        prefix: String,
        /// The protocol already registered.
        existing_protocol: &'static str,
        /// Its kind.
        existing_kind: MessageKind,
        /// Its prefix (lossily decoded for display).
        existing_prefix: String,
    },
    /// No registered prefix matches the message.
    #[error("no registered protocol recognises a message starting with {start:?}")]
    Unrecognised {
        /// The start of the message's first line (lossily decoded, shortened).
        start: String,
    },
    /// A protocol recognised the message, but its parser refused it.
    #[error("not a valid {protocol} {kind}: {reason}")]
    Parse {
        /// The protocol that recognised it.
        protocol: &'static str,
        /// Request or response.
        kind: MessageKind,
        /// Why its parser refused the message.
        reason: BoxError,
    },
}

/// A message recognised and parsed by a [`MessageFactory`].
#[derive(Debug, Clone, PartialEq)]
pub struct Recognised<M> {
    /// The name the protocol was registered under, e.g. `"raw"`.
    pub protocol: &'static str,
    /// Request or response, as registered for the matching prefix.
    pub kind: MessageKind,
    /// What the protocol's parser made of the message.
    pub message: M,
}

/// One registry entry, as [`MessageFactory::registrations`] shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration<'f> {
    /// The protocol's name.
    pub protocol: &'static str,
    /// Request or response.
    pub kind: MessageKind,
    /// The bytes a message of this protocol and kind starts with.
    pub prefix: &'f [u8],
}

struct Entry<M> {
    protocol: &'static str,
    kind: MessageKind,
    prefix: Vec<u8>,
    parse: ParseFn<M>,
}

/// A registry from start-line prefix to parser.
pub struct MessageFactory<M> {
    entries: Vec<Entry<M>>,
}

impl<M> MessageFactory<M> {
    /// An empty factory.
    pub fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Registers `parse` for messages of `protocol` and `kind` that start with
    /// `prefix`. The parser gets the whole message, prefix included.
    ///
    /// Fails if the prefix is empty or overlaps a registered prefix.
    pub fn register<F, E>(
        &mut self,
        protocol: &'static str,
        kind: MessageKind,
        prefix: impl Into<Vec<u8>>,
        parse: F,
    ) -> Result<&mut Self, FactoryError>
    where
        F: Fn(&[u8]) -> Result<M, E> + Send + Sync + 'static,
        E: Into<BoxError>,
    {
        let prefix = prefix.into();
        if prefix.is_empty() {
            return Err(FactoryError::EmptyPrefix { protocol, kind });
        }
        if let Some(existing) = self
            .entries
            .iter()
            .find(|entry| entry.prefix.starts_with(&prefix) || prefix.starts_with(&entry.prefix))
        {
            return Err(FactoryError::PrefixClash {
                protocol,
                kind,
                prefix: String::from_utf8_lossy(&prefix).into_owned(),
                existing_protocol: existing.protocol,
                existing_kind: existing.kind,
                existing_prefix: String::from_utf8_lossy(&existing.prefix).into_owned(),
            });
        }
        self.entries.push(Entry {
            protocol,
            kind,
            prefix,
            parse: Box::new(move |bytes| parse(bytes).map_err(Into::into)),
        });
        Ok(self)
    }

    /// Which protocol and kind `message` belongs to, without parsing it.
    pub fn recognise(&self, message: &[u8]) -> Option<Registration<'_>> {
        self.entry_for(message).map(Entry::registration)
    }

    /// Recognises `message` and parses it with its protocol's parser.
    pub fn parse(&self, message: &[u8]) -> Result<Recognised<M>, FactoryError> {
        let entry = self
            .entry_for(message)
            .ok_or_else(|| FactoryError::Unrecognised {
                start: quote_start(message),
            })?;
        let parsed = (entry.parse)(message).map_err(|reason| FactoryError::Parse {
            protocol: entry.protocol,
            kind: entry.kind,
            reason,
        })?;
        Ok(Recognised {
            protocol: entry.protocol,
            kind: entry.kind,
            message: parsed,
        })
    }

    /// Every registration, in the order they were made.
    pub fn registrations(&self) -> impl Iterator<Item = Registration<'_>> {
        self.entries.iter().map(Entry::registration)
    }

    fn entry_for(&self, message: &[u8]) -> Option<&Entry<M>> {
        self.entries
            .iter()
            .find(|entry| message.starts_with(&entry.prefix))
    }
}

impl<M> Entry<M> {
    fn registration(&self) -> Registration<'_> {
        Registration {
            protocol: self.protocol,
            kind: self.kind,
            prefix: &self.prefix,
        }
    }
}

impl<M> Default for MessageFactory<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> fmt::Debug for MessageFactory<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.registrations()).finish()
    }
}

/// The first line of `message`, lossily decoded and shortened, so an error
/// about a huge or binary message stays readable.
fn quote_start(message: &[u8]) -> String {
    let first_line = message
        .split(|&byte| byte == b'\r' || byte == b'\n')
        .next()
        .unwrap_or_default();
    super::excerpt(&String::from_utf8_lossy(first_line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Parsed(&'static str, usize);

    #[derive(Debug, thiserror::Error)]
    #[error("refused")]
    struct Refused;

    fn factory() -> MessageFactory<Parsed> {
        let mut factory = MessageFactory::new();
        factory
            .register("alpha", MessageKind::Request, "ALPHA-REQ", |b: &[u8]| {
                Ok::<_, Refused>(Parsed("alpha req", b.len()))
            })
            .unwrap()
            .register(
                "alpha",
                MessageKind::Response,
                "ALPHA-RESP",
                |b: &[u8]| Ok::<_, Refused>(Parsed("alpha resp", b.len())),
            )
            .unwrap()
            .register("beta", MessageKind::Request, "BETA", |_: &[u8]| {
                Err::<Parsed, _>(Refused)
            })
            .unwrap();
        factory
    }

    #[test]
    fn recognises_each_registered_protocol_and_says_which() {
        let factory = factory();
        let found = factory.parse(b"ALPHA-REQ x").unwrap();
        assert_eq!(found.protocol, "alpha");
        assert_eq!(found.kind, MessageKind::Request);
        assert_eq!(found.message, Parsed("alpha req", 11));
        let found = factory.parse(b"ALPHA-RESP").unwrap();
        assert_eq!(
            (found.protocol, found.kind),
            ("alpha", MessageKind::Response)
        );
        let registration = factory.recognise(b"BETA 1").unwrap();
        assert_eq!(
            (registration.protocol, registration.kind),
            ("beta", MessageKind::Request)
        );
    }

    #[test]
    fn unrecognised_messages_are_quoted_briefly() {
        let factory = factory();
        let long = format!("GAMMA {}\r\nsecond line", "x".repeat(100));
        match factory.parse(long.as_bytes()) {
            Err(FactoryError::Unrecognised { start }) => {
                assert!(start.starts_with("GAMMA xxx"), "{start}");
                assert!(start.ends_with('…'), "{start}");
                assert!(!start.contains("second"), "{start}");
            }
            other => panic!("expected Unrecognised, got {other:?}"),
        }
        assert!(factory.recognise(b"").is_none());
        assert!(matches!(
            factory.parse(b"\xff\xfe"),
            Err(FactoryError::Unrecognised { .. })
        ));
    }

    #[test]
    fn parser_errors_name_the_protocol() {
        let err = factory().parse(b"BETA").unwrap_err();
        assert_eq!(err.to_string(), "not a valid beta request: refused");
    }

    #[test]
    fn clashing_prefixes_are_refused_either_way_round() {
        let mut factory = factory();
        for prefix in ["ALPHA", "ALPHA-REQ", "ALPHA-REQ-2", "BET"] {
            let err = factory
                .register("gamma", MessageKind::Request, prefix, |_: &[u8]| {
                    Ok::<_, Refused>(Parsed("", 0))
                })
                .unwrap_err();
            assert!(
                matches!(err, FactoryError::PrefixClash { .. }),
                "{prefix}: {err:?}"
            );
            assert!(err.to_string().contains("clashes"), "{err}");
        }
        assert!(matches!(
            factory.register(
                "gamma",
                MessageKind::Request,
                "",
                |_: &[u8]| Ok::<_, Refused>(Parsed("", 0))
            ),
            Err(FactoryError::EmptyPrefix { .. })
        ));
        // Nothing was added by the refused registrations.
        assert_eq!(factory.registrations().count(), 3);
        // A prefix that merely shares a start is fine.
        factory
            .register("gamma", MessageKind::Request, "ALPHB", |_: &[u8]| {
                Ok::<_, Refused>(Parsed("", 0))
            })
            .unwrap();
        assert_eq!(factory.registrations().count(), 4);
    }
}

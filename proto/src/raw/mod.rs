//! The raw protocol, v1: the messages the old service tracker exchanges over
//! ZeroMQ, byte for byte (docs/wire.md section 2).
//!
//! A message is a list of parts, each followed by CRLF:
//!
//! ```text
//! Raw Request Message : Version 1.0      Raw Response Message : Version 1.0
//! <request id>                           <id of the request answered>
//! <from address>                         <from address>
//! <to address>      (optional)           <to address>      (optional)
//! <empty part>                           <empty part>
//! <body lines...>                        <code>
//!                                        <reason>
//!                                        <body lines...>
//! ```
//!
//! Parsing follows the old parser's checks in its order (too few parts,
//! start line, From, To, the empty part after To) and adds what plughost
//! relies on: the id must be a uid, a response must carry a three-digit code
//! and a reason, the bytes must be UTF-8. Every failure is a
//! [`RawParseError`] naming the field, and no input makes the parser panic
//! (it is fuzzed, see `docs/protocol-toolkit.md`).
//!
//! A body is kept as its lines, *including* trailing empty ones. The old
//! parser rebuilt a body by appending CRLF to every remaining part, so each
//! hop through an old forwarder added empty parts at the end; plughost keeps
//! whatever arrived, so that `serialize(parse(bytes)) == bytes` for every
//! message that ends in CRLF, and offers [`RawRequest::trimmed_body`] for
//! reading the content. Constructors split body strings at CRLF, which is
//! exactly what the old serializer produced from a body string.
//!
//! Nothing here touches a socket; [`RawMessage::parse_frames`] takes the
//! payload frames a ROUTER socket delivers (the old manager joined them).
//!
//! ```
//! use plughost_proto::address::RawAddress;
//! use plughost_proto::raw::{RawMessage, RawMessageType, RawRequest};
//! use plughost_proto::uid::Uid;
//!
//! let manager = RawAddress::new("Service Manager", Uid::new_v4()).unwrap();
//! let beacon = RawRequest::beacon(manager.clone());
//! let bytes = beacon.serialize();
//! assert!(bytes.starts_with(b"Raw Request Message : Version 1.0\r\n"));
//! assert!(bytes.ends_with(b"\r\n\r\nhello\r\n"));
//!
//! let RawMessage::Request(parsed) = RawMessage::parse(&bytes).unwrap() else { unreachable!() };
//! assert_eq!(parsed, beacon);
//! assert_eq!(parsed.message_type(), Some(RawMessageType::Hello));
//! assert_eq!(parsed.to(), None);
//! ```

mod error;
mod listing;
mod message_type;
mod request;
mod response;

pub use error::RawParseError;
pub use listing::{format_listing, parse_listing, ListingEntry, ListingError};
pub use message_type::{MgmtCommand, RawMessageType};
pub use request::RawRequest;
pub use response::RawResponse;

use super::address::RawAddress;
use super::factory::{FactoryError, MessageFactory};
use super::message::{LineSeparator, Message, MessageKind};
use super::uid::Uid;

/// The start line of every raw request.
pub const REQUEST_LINE: &str = "Raw Request Message : Version 1.0";
/// The start line of every raw response.
pub const RESPONSE_LINE: &str = "Raw Response Message : Version 1.0";
/// The name the raw protocol is registered under in a [`MessageFactory`].
pub const PROTOCOL: &str = "raw";

/// A raw message of either kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RawMessage {
    /// A request (beacon, init, hello, bye, mgmt).
    Request(RawRequest),
    /// A response (the manager's answers).
    Response(RawResponse),
}

impl RawMessage {
    /// Parses one message, telling request from response by the start line.
    pub fn parse(bytes: &[u8]) -> Result<Self, RawParseError> {
        if bytes.starts_with(RESPONSE_LINE.as_bytes()) {
            RawResponse::parse(bytes).map(Self::Response)
        } else if bytes.starts_with(REQUEST_LINE.as_bytes()) {
            RawRequest::parse(bytes).map(Self::Request)
        } else {
            let mut parts = LineSeparator::CRLF.split(bytes);
            let first = parts.next();
            let found = usize::from(first.is_some()) + parts.count();
            match first {
                Some(first) if found >= 3 => Err(RawParseError::BadStartLine {
                    expected:
                        "Raw Request Message : Version 1.0 or Raw Response Message : Version 1.0",
                    found: quote_bytes(first),
                }),
                _ => Err(RawParseError::TooFewParts { found }),
            }
        }
    }

    /// Parses the payload frames of one ZeroMQ message (without the ROUTER's
    /// identity frame): they are joined, as the old manager joined them, and
    /// parsed as one message. A single frame is parsed without copying.
    pub fn parse_frames<I>(frames: I) -> Result<Self, RawParseError>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        with_joined_frames(frames, Self::parse)
    }

    /// The message's bytes.
    pub fn serialize(&self) -> Vec<u8> {
        match self {
            Self::Request(request) => request.serialize(),
            Self::Response(response) => response.serialize(),
        }
    }

    /// Request or response.
    pub fn kind(&self) -> MessageKind {
        match self {
            Self::Request(_) => MessageKind::Request,
            Self::Response(_) => MessageKind::Response,
        }
    }

    /// The id (a response carries the id of the request it answers).
    pub fn id(&self) -> Uid {
        match self {
            Self::Request(request) => request.id(),
            Self::Response(response) => response.id(),
        }
    }

    /// The sender's address (the From part).
    ///
    /// This accessor shadows `From::from` in path calls, so convert a request
    /// with `.into()` or [`RawMessage::Request`] rather than `RawMessage::from`.
    pub fn from(&self) -> &RawAddress {
        match self {
            Self::Request(request) => request.from(),
            Self::Response(response) => response.from(),
        }
    }

    /// The receiver's address, if the message names one.
    pub fn to(&self) -> Option<&RawAddress> {
        match self {
            Self::Request(request) => request.to(),
            Self::Response(response) => response.to(),
        }
    }

    /// The body lines (for a response: after the code and reason).
    pub fn body(&self) -> &[String] {
        match self {
            Self::Request(request) => request.body(),
            Self::Response(response) => response.body(),
        }
    }
}

impl From<RawRequest> for RawMessage {
    fn from(request: RawRequest) -> Self {
        Self::Request(request)
    }
}

impl From<RawResponse> for RawMessage {
    fn from(response: RawResponse) -> Self {
        Self::Response(response)
    }
}

impl From<&RawMessage> for Message {
    /// The generic view: From and To are the headers; a response's code and
    /// reason are its first two body lines, where they sit on the wire.
    fn from(message: &RawMessage) -> Self {
        match message {
            RawMessage::Request(request) => request.into(),
            RawMessage::Response(response) => response.into(),
        }
    }
}

/// Registers the raw protocol's request and response start lines in `factory`.
///
/// ```
/// use plughost_proto::factory::MessageFactory;
/// use plughost_proto::raw::{self, RawMessage};
///
/// let mut factory: MessageFactory<RawMessage> = MessageFactory::new();
/// raw::register(&mut factory).unwrap();
/// assert_eq!(factory.registrations().count(), 2);
/// ```
pub fn register<M>(factory: &mut MessageFactory<M>) -> Result<(), FactoryError>
where
    M: From<RawMessage> + 'static,
{
    factory
        .register(
            PROTOCOL,
            MessageKind::Request,
            REQUEST_LINE,
            |bytes: &[u8]| {
                RawRequest::parse(bytes).map(|request| M::from(RawMessage::Request(request)))
            },
        )?
        .register(
            PROTOCOL,
            MessageKind::Response,
            RESPONSE_LINE,
            |bytes: &[u8]| {
                RawResponse::parse(bytes).map(|response| M::from(RawMessage::Response(response)))
            },
        )?;
    Ok(())
}

/// The part of a message both kinds share: everything up to the empty part.
struct Envelope<'a> {
    id: Uid,
    from: RawAddress,
    to: Option<RawAddress>,
    /// The parts after the empty part (or after the headers, if it is missing).
    rest: Vec<&'a str>,
}

/// Parses the envelope of a message whose start line must be `start_line`,
/// applying the old parser's checks in the old parser's order.
fn parse_envelope<'a>(
    bytes: &'a [u8],
    start_line: &'static str,
) -> Result<Envelope<'a>, RawParseError> {
    let parts: Vec<&[u8]> = LineSeparator::CRLF.split(bytes).collect();
    let [first, ..] = parts.as_slice() else {
        return Err(RawParseError::TooFewParts { found: 0 });
    };
    if parts.len() < 3 {
        return Err(RawParseError::TooFewParts { found: parts.len() });
    }
    if *first != start_line.as_bytes() {
        return Err(RawParseError::BadStartLine {
            expected: start_line,
            found: quote_bytes(first),
        });
    }
    let parts = parts
        .iter()
        .enumerate()
        .map(|(part, bytes)| {
            std::str::from_utf8(bytes).map_err(|err| RawParseError::NotUtf8 {
                part,
                valid_up_to: err.valid_up_to(),
            })
        })
        .collect::<Result<Vec<&str>, _>>()?;
    let [_, id, from, after_from @ ..] = parts.as_slice() else {
        return Err(RawParseError::TooFewParts { found: parts.len() });
    };
    let id = Uid::parse(id).map_err(|reason| RawParseError::BadId {
        found: quote(id),
        reason,
    })?;
    let from = RawAddress::parse(from).map_err(|reason| RawParseError::BadFrom {
        found: quote(from),
        reason,
    })?;
    let (to, rest) = match after_from {
        [to, after_to @ ..] if !to.is_empty() => {
            let to = RawAddress::parse(to).map_err(|reason| RawParseError::BadTo {
                found: quote(to),
                reason,
            })?;
            match after_to {
                [separator, ..] if !separator.is_empty() => {
                    return Err(RawParseError::MissingSeparatorAfterTo {
                        found: quote(separator),
                    })
                }
                [_, rest @ ..] => (Some(to), rest),
                [] => (Some(to), after_to),
            }
        }
        [_, rest @ ..] => (None, rest),
        [] => (None, after_from),
    };
    Ok(Envelope {
        id,
        from,
        to,
        rest: rest.to_vec(),
    })
}

/// Splits body strings into lines at CRLF, so that a body string given to a
/// constructor goes on the wire exactly as the old serializer wrote it and
/// comes back from the parser as the same lines.
/// Writes the part both message kinds share: start line, id, From, the
/// optional To and the empty separator part.
fn write_envelope(
    out: &mut Vec<u8>,
    start_line: &str,
    id: &Uid,
    from: &RawAddress,
    to: Option<&RawAddress>,
) {
    let crlf = LineSeparator::CRLF;
    crlf.write_line(out, start_line.as_bytes());
    crlf.write_line(out, id.to_string().as_bytes());
    crlf.write_line(out, from.to_string().as_bytes());
    if let Some(to) = to {
        crlf.write_line(out, to.to_string().as_bytes());
    }
    crlf.write_line(out, b"");
}

fn body_lines<I, S>(body: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    body.into_iter()
        .flat_map(|text| {
            text.as_ref()
                .split("\r\n")
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `body` without its trailing empty lines.
fn trim_trailing_empty(body: &[String]) -> &[String] {
    let end = body
        .iter()
        .rposition(|line| !line.is_empty())
        .map_or(0, |last| last + 1);
    body.get(..end).unwrap_or_default()
}

/// Runs `parse` on the concatenation of `frames`, borrowing when there is only one.
fn with_joined_frames<I, T>(frames: I, parse: impl FnOnce(&[u8]) -> T) -> T
where
    I: IntoIterator,
    I::Item: AsRef<[u8]>,
{
    let mut frames = frames.into_iter();
    let Some(first) = frames.next() else {
        return parse(b"");
    };
    let Some(second) = frames.next() else {
        return parse(first.as_ref());
    };
    let mut joined: Vec<u8> = [first.as_ref(), second.as_ref()].concat();
    for frame in frames {
        joined.extend_from_slice(frame.as_ref());
    }
    parse(&joined)
}

fn quote(text: &str) -> String {
    super::excerpt(text)
}

fn quote_bytes(bytes: &[u8]) -> String {
    quote(&String::from_utf8_lossy(bytes))
}

#[cfg(test)]
mod tests;

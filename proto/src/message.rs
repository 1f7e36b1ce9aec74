//! The generic line-based message model the old toolkit's protocols share:
//! a start line, an id, header lines, an empty line, then body lines, every
//! line followed by a line separator (CRLF unless configured otherwise).
//!
//! Two choices shape this module:
//!
//! - Splitting treats the separator as a *terminator*: `a CRLF b CRLF` is the
//!   two lines `a`, `b`, not `a`, `b`, `""` as `str::split` would give. That is
//!   how docs/wire.md describes messages ("each part followed by CRLF"), and it makes
//!   [`LineSeparator::join`] and [`LineSeparator::split`] exact inverses for
//!   lines that do not contain the separator.
//! - Splitting works on bytes, not `str`, because messages arrive from sockets
//!   and must be taken apart (and rejected with a precise error) even when they
//!   are not UTF-8. Protocol parsers such as [`raw`](super::raw) use
//!   [`LineSeparator::split`] directly and decode only what they keep.
//!
//! [`Message`] is the protocol-neutral view: a raw message converts into one,
//! and a protocol without a dedicated type can be handled as one.
//!
//! ```
//! use plughost_proto::message::{LineSeparator, Message, MessageKind};
//!
//! let bytes = b"Generic Request Message : Version 1.0\r\n42\r\nFrom: a\r\n\r\nhello\r\n";
//! let message = Message::split(MessageKind::Request, bytes, &LineSeparator::CRLF).unwrap();
//! assert_eq!(message.headers, ["From: a"]);
//! assert_eq!(message.body, ["hello"]);
//! assert_eq!(message.join(&LineSeparator::CRLF), bytes);
//! ```

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

/// The start line of the old toolkit's generic requests (its default message context).
pub const GENERIC_REQUEST_LINE: &str = "Generic Request Message : Version 1.0";
/// The start line of the old toolkit's generic responses.
pub const GENERIC_RESPONSE_LINE: &str = "Generic Response Message : Version 1.0";

/// Whether a message asks (request) or answers (response).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    /// A message that asks something; it carries a fresh id.
    Request,
    /// A message that answers a request; it carries the request's id.
    Response,
}

impl MessageKind {
    /// `"request"` or `"response"`, as the CLI prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Response => "response",
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a generic message could not be split or a separator not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// An empty separator would not separate anything.
    #[error("a line separator must not be empty")]
    EmptySeparator,
    /// Fewer lines than a start line and an id.
    #[error("a message needs at least a start line and an id, found {found} line(s)")]
    TooFewLines {
        /// How many lines there were.
        found: usize,
    },
    /// A line is not UTF-8 text.
    #[error("line {line} is not UTF-8 (valid up to byte {valid_up_to})")]
    NotUtf8 {
        /// The index of the line, counting the start line as 0.
        line: usize,
        /// How many bytes of the line are valid UTF-8.
        valid_up_to: usize,
    },
}

/// The bytes that end every line of a message. CRLF by default.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LineSeparator(Cow<'static, str>);

impl LineSeparator {
    /// `\r\n`: the separator of every protocol the old system spoke.
    pub const CRLF: LineSeparator = LineSeparator(Cow::Borrowed("\r\n"));
    /// `\n`: the separator the old toolkit's demo switched to, for text tools.
    pub const LF: LineSeparator = LineSeparator(Cow::Borrowed("\n"));

    /// A custom separator; it must not be empty.
    pub fn new(separator: impl Into<String>) -> Result<Self, MessageError> {
        let separator = separator.into();
        if separator.is_empty() {
            return Err(MessageError::EmptySeparator);
        }
        Ok(Self(Cow::Owned(separator)))
    }

    /// The separator text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lines of `data`: every line ends at a separator; bytes after the
    /// last separator, if any, form a final line. Never fails, never panics.
    ///
    /// ```
    /// use plughost_proto::message::LineSeparator;
    /// let lines: Vec<&[u8]> = LineSeparator::CRLF.split(b"a\r\n\r\nb\r\n").collect();
    /// assert_eq!(lines, [&b"a"[..], b"", b"b"]);
    /// assert_eq!(LineSeparator::CRLF.split(b"").count(), 0);
    /// assert_eq!(LineSeparator::CRLF.split(b"no end").count(), 1);
    /// ```
    pub fn split<'a>(&'a self, data: &'a [u8]) -> Lines<'a> {
        Lines {
            rest: data,
            separator: self.0.as_bytes(),
        }
    }

    /// Every line of `lines`, each followed by the separator.
    ///
    /// ```
    /// use plughost_proto::message::LineSeparator;
    /// assert_eq!(LineSeparator::CRLF.join(["a", "", "b"]), b"a\r\n\r\nb\r\n");
    /// ```
    pub fn join<I>(&self, lines: I) -> Vec<u8>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let mut out = Vec::new();
        for line in lines {
            self.write_line(&mut out, line.as_ref());
        }
        out
    }

    /// Appends `line` and the separator to `out`, so serializers can write a
    /// whole message into one buffer.
    pub fn write_line(&self, out: &mut Vec<u8>, line: &[u8]) {
        out.extend_from_slice(line);
        out.extend_from_slice(self.0.as_bytes());
    }
}

impl Default for LineSeparator {
    fn default() -> Self {
        Self::CRLF
    }
}

/// Iterator over the lines of a message; see [`LineSeparator::split`].
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    rest: &'a [u8],
    separator: &'a [u8],
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        match find(self.rest, self.separator) {
            Some(at) => {
                let line = &self.rest[..at];
                self.rest = &self.rest[at + self.separator.len()..];
                Some(line)
            }
            None => Some(std::mem::take(&mut self.rest)),
        }
    }
}

/// The first position of `needle` in `haystack`. `needle` is never empty
/// ([`LineSeparator`] guarantees it); separators are one or two bytes, so a
/// plain scan is as fast as anything cleverer.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, tail) = needle.split_first()?;
    haystack
        .iter()
        .enumerate()
        .filter(|&(_, &byte)| byte == first)
        .map(|(at, _)| at)
        .find(|&at| haystack.get(at + 1..at + 1 + tail.len()) == Some(tail))
}

/// A generic line-based message.
///
/// `headers` are the lines between the id and the first empty line; `body`
/// the lines after it. A message without an empty line has only headers.
/// Lines must not contain the separator, or they will come back as several.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Message {
    /// Request or response; the start line says which, the caller decides how.
    pub kind: MessageKind,
    /// The first line, which names the protocol and version.
    pub start_line: String,
    /// The request id (for a response: the id of the request it answers).
    pub id: String,
    /// Header lines, in order.
    pub headers: Vec<String>,
    /// Body lines, in order.
    pub body: Vec<String>,
}

impl Message {
    /// Splits `data` into a message of the given kind.
    pub fn split(
        kind: MessageKind,
        data: &[u8],
        separator: &LineSeparator,
    ) -> Result<Self, MessageError> {
        Self::from_lines(kind, separator.split(data))
    }

    /// Builds a message from already split lines (see [`LineSeparator::split`]).
    pub fn from_lines<'a, I>(kind: MessageKind, lines: I) -> Result<Self, MessageError>
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let mut start_line = None;
        let mut id = None;
        let mut headers = Vec::new();
        let mut body = Vec::new();
        let mut in_body = false;
        for (index, line) in lines.into_iter().enumerate() {
            let text = std::str::from_utf8(line)
                .map_err(|err| MessageError::NotUtf8 {
                    line: index,
                    valid_up_to: err.valid_up_to(),
                })?
                .to_owned();
            match index {
                0 => start_line = Some(text),
                1 => id = Some(text),
                _ if in_body => body.push(text),
                _ if text.is_empty() => in_body = true,
                _ => headers.push(text),
            }
        }
        match (start_line, id) {
            (Some(start_line), Some(id)) => Ok(Self {
                kind,
                start_line,
                id,
                headers,
                body,
            }),
            (start_line, _) => Err(MessageError::TooFewLines {
                found: usize::from(start_line.is_some()),
            }),
        }
    }

    /// The message as bytes: start line, id, headers, an empty line, body,
    /// each followed by `separator`. The empty line is always written.
    pub fn join(&self, separator: &LineSeparator) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(separator, &mut out);
        out
    }

    /// Appends the message as bytes to `out` (see [`Message::join`]).
    pub fn write_to(&self, separator: &LineSeparator, out: &mut Vec<u8>) {
        separator.write_line(out, self.start_line.as_bytes());
        separator.write_line(out, self.id.as_bytes());
        for header in &self.headers {
            separator.write_line(out, header.as_bytes());
        }
        separator.write_line(out, b"");
        for line in &self.body {
            separator.write_line(out, line.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(data: &[u8], separator: &LineSeparator) -> Vec<Vec<u8>> {
        separator.split(data).map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn split_treats_the_separator_as_a_terminator() {
        let crlf = LineSeparator::CRLF;
        assert_eq!(lines(b"a\r\nb\r\n", &crlf), [b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(lines(b"a\r\nb", &crlf), [b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(lines(b"\r\n\r\n", &crlf), [b"".to_vec(), b"".to_vec()]);
        assert_eq!(lines(b"", &crlf), Vec::<Vec<u8>>::new());
        // A lone CR or LF is part of a line, not a separator.
        assert_eq!(lines(b"a\rb\nc\r\r\n", &crlf), [b"a\rb\nc\r".to_vec()]);
    }

    #[test]
    fn split_with_custom_separators() {
        let lf = LineSeparator::LF;
        assert_eq!(lines(b"a\nb\n", &lf), [b"a".to_vec(), b"b".to_vec()]);
        let long = LineSeparator::new("<EOL>").unwrap();
        assert_eq!(
            lines(b"x<EOL><EO<EOL>", &long),
            [b"x".to_vec(), b"<EO".to_vec()]
        );
        assert_eq!(long.join(["x", "y"]), b"x<EOL>y<EOL>");
        assert_eq!(LineSeparator::new(""), Err(MessageError::EmptySeparator));
        assert_eq!(LineSeparator::default(), LineSeparator::CRLF);
    }

    #[test]
    fn join_then_split_gives_the_lines_back() {
        let crlf = LineSeparator::CRLF;
        let original: Vec<&[u8]> = vec![b"start", b"", b"x y", b"", b""];
        let joined = crlf.join(&original);
        assert_eq!(joined, b"start\r\n\r\nx y\r\n\r\n\r\n");
        assert_eq!(crlf.split(&joined).collect::<Vec<_>>(), original);
    }

    #[test]
    fn message_groups_headers_and_body() {
        let data = b"Start\r\nid-1\r\nh1\r\nh2\r\n\r\nb1\r\n\r\nb3\r\n";
        let message = Message::split(MessageKind::Response, data, &LineSeparator::CRLF).unwrap();
        assert_eq!(message.kind, MessageKind::Response);
        assert_eq!(message.start_line, "Start");
        assert_eq!(message.id, "id-1");
        assert_eq!(message.headers, ["h1", "h2"]);
        assert_eq!(message.body, ["b1", "", "b3"]);
        assert_eq!(message.join(&LineSeparator::CRLF), data);
    }

    #[test]
    fn message_without_empty_line_has_only_headers() {
        let message = Message::split(
            MessageKind::Request,
            b"S\r\ni\r\nh\r\n",
            &LineSeparator::CRLF,
        )
        .unwrap();
        assert_eq!(message.headers, ["h"]);
        assert!(message.body.is_empty());
        // Joining writes the empty line the old serializer always wrote.
        assert_eq!(message.join(&LineSeparator::CRLF), b"S\r\ni\r\nh\r\n\r\n");
    }

    #[test]
    fn message_errors_name_the_problem() {
        let crlf = LineSeparator::CRLF;
        assert_eq!(
            Message::split(MessageKind::Request, b"", &crlf),
            Err(MessageError::TooFewLines { found: 0 })
        );
        assert_eq!(
            Message::split(MessageKind::Request, b"only\r\n", &crlf),
            Err(MessageError::TooFewLines { found: 1 })
        );
        assert_eq!(
            Message::split(MessageKind::Request, b"S\r\nid\r\nok\xff\r\n", &crlf),
            Err(MessageError::NotUtf8 {
                line: 2,
                valid_up_to: 2
            })
        );
    }

    #[test]
    fn kind_names() {
        assert_eq!(MessageKind::Request.to_string(), "request");
        assert_eq!(
            serde_json::to_string(&MessageKind::Response).unwrap(),
            "\"response\""
        );
    }
}

//! Raw responses: the manager's answers (registry listings, refusals).

use super::{
    body_lines, parse_envelope, parse_listing, trim_trailing_empty, with_joined_frames,
    write_envelope, ListingEntry, ListingError, RawParseError, RESPONSE_LINE,
};
use crate::address::RawAddress;
use crate::codes::raw::RawCode;
use crate::message::{LineSeparator, Message, MessageKind};
use crate::uid::Uid;

/// A raw response.
///
/// The code is kept as a number: the parser accepts any three-digit code an
/// old peer may send, and [`RawResponse::raw_code`] says whether it is one of
/// the four the raw protocol defines.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawResponse {
    id: Uid,
    from: RawAddress,
    to: Option<RawAddress>,
    code: u16,
    reason: String,
    body: Vec<String>,
}

impl RawResponse {
    /// A response to the request `id`, with `code`'s standard reason.
    /// Body strings are split into lines at CRLF.
    ///
    /// The old manager's answer to INIT with an empty registry has the body
    /// `""` (one empty line); pass `[""]` to produce those exact bytes.
    pub fn new<I, S>(
        id: Uid,
        from: RawAddress,
        to: Option<RawAddress>,
        code: RawCode,
        body: I,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            id,
            from,
            to,
            code: code.code(),
            reason: code.reason().to_owned(),
            body: body_lines(body),
        }
    }

    /// The same response with another reason line, such as the old service's
    /// `Service Unavailable : Service Mgr Not Initialized`. A CRLF inside
    /// `reason` would end the line early, so each one becomes a space.
    ///
    /// ```
    /// use plughost_proto::address::RawAddress;
    /// use plughost_proto::codes::raw::RawCode;
    /// use plughost_proto::raw::RawResponse;
    /// use plughost_proto::uid::Uid;
    ///
    /// let service = RawAddress::new("Service 1", Uid::new_v4()).unwrap();
    /// let refusal = RawResponse::new(Uid::new_v4(), service, None, RawCode::ServiceUnavailable, Vec::<String>::new())
    ///     .with_reason("Service Unavailable : Service Mgr Not Initialized");
    /// assert_eq!(refusal.code(), 503);
    /// assert_eq!(refusal.reason(), "Service Unavailable : Service Mgr Not Initialized");
    /// ```
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        self.reason = if reason.contains("\r\n") {
            reason.replace("\r\n", " ")
        } else {
            reason
        };
        self
    }

    /// Parses one response.
    pub fn parse(bytes: &[u8]) -> Result<Self, RawParseError> {
        let envelope = parse_envelope(bytes, RESPONSE_LINE)?;
        let [code, after_code @ ..] = envelope.rest.as_slice() else {
            return Err(RawParseError::MissingCode);
        };
        let code = parse_code(code)?;
        let [reason, body @ ..] = after_code else {
            return Err(RawParseError::MissingReason);
        };
        Ok(Self {
            id: envelope.id,
            from: envelope.from,
            to: envelope.to,
            code,
            reason: (*reason).to_owned(),
            body: body.iter().map(|line| (*line).to_owned()).collect(),
        })
    }

    /// Parses the payload frames of one ZeroMQ message (see [`RawMessage::parse_frames`](super::RawMessage::parse_frames)).
    pub fn parse_frames<I>(frames: I) -> Result<Self, RawParseError>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        with_joined_frames(frames, Self::parse)
    }

    /// The response's bytes, as the old system wrote them.
    pub fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }

    /// Appends the response's bytes to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        write_envelope(out, RESPONSE_LINE, &self.id, &self.from, self.to.as_ref());
        let crlf = LineSeparator::CRLF;
        crlf.write_line(out, self.code.to_string().as_bytes());
        crlf.write_line(out, self.reason.as_bytes());
        for line in &self.body {
            crlf.write_line(out, line.as_bytes());
        }
    }

    /// The id of the request this answers.
    pub fn id(&self) -> Uid {
        self.id
    }

    /// The sender.
    pub fn from(&self) -> &RawAddress {
        &self.from
    }

    /// The receiver, if named.
    pub fn to(&self) -> Option<&RawAddress> {
        self.to.as_ref()
    }

    /// The code, 100 to 999.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The code, if it is one the raw protocol defines.
    pub fn raw_code(&self) -> Option<RawCode> {
        RawCode::from_u16(self.code)
    }

    /// Whether the code is a 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// The reason line.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The body lines after code and reason, trailing empty lines included.
    pub fn body(&self) -> &[String] {
        &self.body
    }

    /// The body without the trailing empty lines that forwarding adds.
    pub fn trimmed_body(&self) -> &[String] {
        trim_trailing_empty(&self.body)
    }

    /// The registry listing carried in the body (the answer to INIT, HELLO
    /// and `mgmt l`): every `\n`-terminated line of every body line.
    pub fn listing(&self) -> Result<Vec<ListingEntry>, ListingError> {
        let mut entries = Vec::new();
        for line in &self.body {
            entries.extend(parse_listing(line)?);
        }
        Ok(entries)
    }
}

/// Reads a code: exactly three ASCII digits, 100 to 999, so that the code
/// formats back to the same text.
fn parse_code(text: &str) -> Result<u16, RawParseError> {
    match text.as_bytes() {
        [hundreds @ b'1'..=b'9', tens @ b'0'..=b'9', units @ b'0'..=b'9'] => {
            Ok(u16::from(hundreds - b'0') * 100
                + u16::from(tens - b'0') * 10
                + u16::from(units - b'0'))
        }
        _ => Err(RawParseError::BadCode {
            found: super::quote(text),
        }),
    }
}

impl From<&RawResponse> for Message {
    /// The generic view: From (and To) as headers; code, reason and body as the body.
    fn from(response: &RawResponse) -> Self {
        Message {
            kind: MessageKind::Response,
            start_line: RESPONSE_LINE.to_owned(),
            id: response.id.to_string(),
            headers: std::iter::once(&response.from)
                .chain(&response.to)
                .map(ToString::to_string)
                .collect(),
            body: [response.code.to_string(), response.reason.clone()]
                .into_iter()
                .chain(response.body.iter().cloned())
                .collect(),
        }
    }
}

//! Raw requests: beacons, INIT, HELLO, BYE and management requests.

use super::{
    body_lines, parse_envelope, trim_trailing_empty, with_joined_frames, write_envelope,
    MgmtCommand, RawMessageType, RawParseError, RawResponse, REQUEST_LINE,
};
use crate::address::RawAddress;
use crate::codes::raw::RawCode;
use crate::message::{LineSeparator, Message, MessageKind};
use crate::uid::Uid;

/// A raw request.
///
/// Fields are private so that the invariants the wire needs always hold: the
/// id is a uid, the addresses are valid, no body line contains CRLF.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawRequest {
    id: Uid,
    from: RawAddress,
    to: Option<RawAddress>,
    body: Vec<String>,
}

impl RawRequest {
    /// A request with a fresh id. Body strings are split into lines at CRLF,
    /// so `["mgmt\r\nl"]` and `["mgmt", "l"]` are the same request.
    ///
    /// ```
    /// use plughost_proto::address::RawAddress;
    /// use plughost_proto::raw::{RawMessageType, RawRequest};
    /// use plughost_proto::uid::Uid;
    ///
    /// let service = RawAddress::new("Service 1", Uid::new_v4()).unwrap();
    /// let manager = RawAddress::new("Service Manager", Uid::new_v4()).unwrap();
    /// let init = RawRequest::new(service, Some(manager), ["init"]);
    /// assert_eq!(init.message_type(), Some(RawMessageType::Init));
    /// assert!(init.serialize().ends_with(b"\r\n\r\ninit\r\n"));
    /// ```
    pub fn new<I, S>(from: RawAddress, to: Option<RawAddress>, body: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::with_id(Uid::new_v4(), from, to, body)
    }

    /// A request with a given id (to rebuild or answer a known request).
    pub fn with_id<I, S>(id: Uid, from: RawAddress, to: Option<RawAddress>, body: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            id,
            from,
            to,
            body: body_lines(body),
        }
    }

    /// The manager's beacon: From the manager, no To, body `hello`.
    pub fn beacon(manager: RawAddress) -> Self {
        Self::new(manager, None, [RawMessageType::Hello.as_str()])
    }

    /// An INIT, HELLO, BYE or bare `mgmt` request from `from` to `to`, whose
    /// body is the type line alone.
    pub fn of_type(from: RawAddress, to: RawAddress, message_type: RawMessageType) -> Self {
        Self::new(from, Some(to), [message_type.as_str()])
    }

    /// A management request: body `mgmt CRLF <command>`.
    ///
    /// ```
    /// use plughost_proto::address::RawAddress;
    /// use plughost_proto::raw::{MgmtCommand, RawRequest};
    /// use plughost_proto::uid::Uid;
    ///
    /// let me = RawAddress::new("Command Processor", Uid::new_v4()).unwrap();
    /// let manager = RawAddress::new("Service Manager", Uid::new_v4()).unwrap();
    /// let list = RawRequest::mgmt(me, manager, &MgmtCommand::List);
    /// assert_eq!(list.body(), ["mgmt", "l"]);
    /// assert_eq!(list.mgmt_command(), Some(MgmtCommand::List));
    /// ```
    pub fn mgmt(from: RawAddress, to: RawAddress, command: &MgmtCommand) -> Self {
        Self::new(
            from,
            Some(to),
            [RawMessageType::Mgmt.as_str(), &command.to_string()],
        )
    }

    /// Parses one request.
    pub fn parse(bytes: &[u8]) -> Result<Self, RawParseError> {
        let envelope = parse_envelope(bytes, REQUEST_LINE)?;
        Ok(Self {
            id: envelope.id,
            from: envelope.from,
            to: envelope.to,
            body: envelope.rest.into_iter().map(str::to_owned).collect(),
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

    /// The request's bytes, as the old system wrote them.
    pub fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }

    /// Appends the request's bytes to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        write_envelope(out, REQUEST_LINE, &self.id, &self.from, self.to.as_ref());
        let crlf = LineSeparator::CRLF;
        for line in &self.body {
            crlf.write_line(out, line.as_bytes());
        }
    }

    /// The request id.
    pub fn id(&self) -> Uid {
        self.id
    }

    /// The sender.
    pub fn from(&self) -> &RawAddress {
        &self.from
    }

    /// The receiver; `None` for broadcasts such as the beacon.
    pub fn to(&self) -> Option<&RawAddress> {
        self.to.as_ref()
    }

    /// The body lines as they arrived, trailing empty lines included.
    pub fn body(&self) -> &[String] {
        &self.body
    }

    /// The body without the trailing empty lines that forwarding adds.
    pub fn trimmed_body(&self) -> &[String] {
        trim_trailing_empty(&self.body)
    }

    /// The message type, read from the first body line as the old manager
    /// read it (ignoring ASCII case); `None` if the body is empty or the line
    /// is not one of `init`, `hello`, `bye`, `mgmt`.
    pub fn message_type(&self) -> Option<RawMessageType> {
        self.body
            .first()
            .and_then(|line| RawMessageType::from_line(line))
    }

    /// For a `mgmt` request, the command on the second body line.
    pub fn mgmt_command(&self) -> Option<MgmtCommand> {
        if self.message_type() != Some(RawMessageType::Mgmt) {
            return None;
        }
        self.body.get(1).map(|line| MgmtCommand::parse(line))
    }

    /// The answer to this request from `from`: same id, To = this request's
    /// From, the code with its standard reason, and `body` (split at CRLF).
    ///
    /// ```
    /// use plughost_proto::address::RawAddress;
    /// use plughost_proto::codes::raw::RawCode;
    /// use plughost_proto::raw::{RawMessageType, RawRequest};
    /// use plughost_proto::uid::Uid;
    ///
    /// let service = RawAddress::new("Service 1", Uid::new_v4()).unwrap();
    /// let manager = RawAddress::new("Service Manager", Uid::new_v4()).unwrap();
    /// let init = RawRequest::of_type(service.clone(), manager.clone(), RawMessageType::Init);
    /// let answer = init.answer(manager, RawCode::Success, [""]);
    /// assert_eq!((answer.id(), answer.to()), (init.id(), Some(&service)));
    /// assert!(answer.serialize().ends_with(b"\r\n\r\n200\r\nSuccess\r\n\r\n"));
    /// ```
    pub fn answer<I, S>(&self, from: RawAddress, code: RawCode, body: I) -> RawResponse
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        RawResponse::new(self.id, from, Some(self.from.clone()), code, body)
    }
}

impl From<&RawRequest> for Message {
    /// The generic view: From (and To) as headers, the body as the body.
    fn from(request: &RawRequest) -> Self {
        Message {
            kind: MessageKind::Request,
            start_line: REQUEST_LINE.to_owned(),
            id: request.id.to_string(),
            headers: std::iter::once(&request.from)
                .chain(&request.to)
                .map(ToString::to_string)
                .collect(),
            body: request.body.clone(),
        }
    }
}

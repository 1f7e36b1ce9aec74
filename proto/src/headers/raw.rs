//! The header names of the old message model, as the raw protocol's
//! messages carry them (docs/wire.md section 2).
//!
//! On the wire the raw protocol writes no header names: `From` and `To` are
//! recognised by position and the ids by being the second line. The names
//! still matter: the old toolkit keyed a message's headers by them, and
//! plughost uses them in logs and in `plughost proto parse` output, so they
//! are kept with the old spelling.
//!
//! ```
//! use plughost_proto::headers::raw::RawHeader;
//!
//! assert_eq!(RawHeader::from_name("content-type"), Some(RawHeader::ContentType));
//! assert_eq!(RawHeader::ContentType.to_string(), "Content-Type");
//! ```

use std::fmt;

/// A header of the raw message model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RawHeader {
    /// `Content`: the message body.
    Content,
    /// `Content-Type`: what the body holds.
    ContentType,
    /// `From`: the sender's address.
    From,
    /// `To`: the receiver's address (absent in broadcasts such as the beacon).
    To,
    /// `Req-Id`: a request's id.
    ReqId,
    /// `Resp-Id`: a response's id (the id of the request it answers).
    RespId,
}

impl RawHeader {
    /// All six, in the old model's order.
    pub const ALL: [RawHeader; 6] = [
        RawHeader::Content,
        RawHeader::ContentType,
        RawHeader::From,
        RawHeader::To,
        RawHeader::ReqId,
        RawHeader::RespId,
    ];

    /// The name, spelled as the old model spelled it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Content => "Content",
            Self::ContentType => "Content-Type",
            Self::From => "From",
            Self::To => "To",
            Self::ReqId => "Req-Id",
            Self::RespId => "Resp-Id",
        }
    }

    /// The header called `name`, ignoring ASCII case (header names are case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|header| header.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for RawHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_old_ones_and_round_trip() {
        let names: Vec<&str> = RawHeader::ALL
            .iter()
            .map(|header| header.as_str())
            .collect();
        assert_eq!(
            names,
            ["Content", "Content-Type", "From", "To", "Req-Id", "Resp-Id"]
        );
        for header in RawHeader::ALL {
            assert_eq!(RawHeader::from_name(header.as_str()), Some(header));
            assert_eq!(
                RawHeader::from_name(&header.as_str().to_uppercase()),
                Some(header)
            );
        }
        assert_eq!(RawHeader::from_name("Req_Id"), None);
    }
}

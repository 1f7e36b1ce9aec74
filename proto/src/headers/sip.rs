//! SIP header names: the header fields of RFC 3261 section 20, with the
//! compact forms of section 7.3.3 (`i` for Call-ID, `v` for Via, ...).
//!
//! SIP messages may use either form, and names are case-insensitive, so a
//! parser needs one lookup that accepts `Via`, `via` and `v` alike and gives
//! back one value; [`SipHeader::lookup`] is that lookup, and every header is
//! also a constant ([`SipHeader::VIA`]) for code that writes messages.
//! Extension headers from later RFCs are left to the user: the set here is
//! the base protocol's, which every SIP element understands.
//!
//! ```
//! use plughost_proto::headers::sip::SipHeader;
//!
//! let call_id = SipHeader::lookup("i").unwrap();
//! assert_eq!(call_id, SipHeader::CALL_ID);
//! assert_eq!(call_id.name(), "Call-ID");
//! assert_eq!(call_id.compact(), Some('i'));
//! assert_eq!(SipHeader::lookup("cseq").map(SipHeader::name), Some("CSeq"));
//! ```

use std::fmt;

/// A SIP header: its full name and, if it has one, its compact form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SipHeader {
    name: &'static str,
    compact: Option<char>,
}

/// Every header of RFC 3261 section 20, in the RFC's (alphabetical) order.
static HEADERS: [SipHeader; 44] = [
    SipHeader::ACCEPT,
    SipHeader::ACCEPT_ENCODING,
    SipHeader::ACCEPT_LANGUAGE,
    SipHeader::ALERT_INFO,
    SipHeader::ALLOW,
    SipHeader::AUTHENTICATION_INFO,
    SipHeader::AUTHORIZATION,
    SipHeader::CALL_ID,
    SipHeader::CALL_INFO,
    SipHeader::CONTACT,
    SipHeader::CONTENT_DISPOSITION,
    SipHeader::CONTENT_ENCODING,
    SipHeader::CONTENT_LANGUAGE,
    SipHeader::CONTENT_LENGTH,
    SipHeader::CONTENT_TYPE,
    SipHeader::CSEQ,
    SipHeader::DATE,
    SipHeader::ERROR_INFO,
    SipHeader::EXPIRES,
    SipHeader::FROM,
    SipHeader::IN_REPLY_TO,
    SipHeader::MAX_FORWARDS,
    SipHeader::MIN_EXPIRES,
    SipHeader::MIME_VERSION,
    SipHeader::ORGANIZATION,
    SipHeader::PRIORITY,
    SipHeader::PROXY_AUTHENTICATE,
    SipHeader::PROXY_AUTHORIZATION,
    SipHeader::PROXY_REQUIRE,
    SipHeader::RECORD_ROUTE,
    SipHeader::REPLY_TO,
    SipHeader::REQUIRE,
    SipHeader::RETRY_AFTER,
    SipHeader::ROUTE,
    SipHeader::SERVER,
    SipHeader::SUBJECT,
    SipHeader::SUPPORTED,
    SipHeader::TIMESTAMP,
    SipHeader::TO,
    SipHeader::UNSUPPORTED,
    SipHeader::USER_AGENT,
    SipHeader::VIA,
    SipHeader::WARNING,
    SipHeader::WWW_AUTHENTICATE,
];

impl SipHeader {
    /// `Accept`.
    pub const ACCEPT: SipHeader = SipHeader::new("Accept", None);
    /// `Accept-Encoding`.
    pub const ACCEPT_ENCODING: SipHeader = SipHeader::new("Accept-Encoding", None);
    /// `Accept-Language`.
    pub const ACCEPT_LANGUAGE: SipHeader = SipHeader::new("Accept-Language", None);
    /// `Alert-Info`.
    pub const ALERT_INFO: SipHeader = SipHeader::new("Alert-Info", None);
    /// `Allow`.
    pub const ALLOW: SipHeader = SipHeader::new("Allow", None);
    /// `Authentication-Info`.
    pub const AUTHENTICATION_INFO: SipHeader = SipHeader::new("Authentication-Info", None);
    /// `Authorization`.
    pub const AUTHORIZATION: SipHeader = SipHeader::new("Authorization", None);
    /// `Call-ID` (compact form `i`).
    pub const CALL_ID: SipHeader = SipHeader::new("Call-ID", Some('i'));
    /// `Call-Info`.
    pub const CALL_INFO: SipHeader = SipHeader::new("Call-Info", None);
    /// `Contact` (compact form `m`).
    pub const CONTACT: SipHeader = SipHeader::new("Contact", Some('m'));
    /// `Content-Disposition`.
    pub const CONTENT_DISPOSITION: SipHeader = SipHeader::new("Content-Disposition", None);
    /// `Content-Encoding` (compact form `e`).
    pub const CONTENT_ENCODING: SipHeader = SipHeader::new("Content-Encoding", Some('e'));
    /// `Content-Language`.
    pub const CONTENT_LANGUAGE: SipHeader = SipHeader::new("Content-Language", None);
    /// `Content-Length` (compact form `l`).
    pub const CONTENT_LENGTH: SipHeader = SipHeader::new("Content-Length", Some('l'));
    /// `Content-Type` (compact form `c`).
    pub const CONTENT_TYPE: SipHeader = SipHeader::new("Content-Type", Some('c'));
    /// `CSeq`.
    pub const CSEQ: SipHeader = SipHeader::new("CSeq", None);
    /// `Date`.
    pub const DATE: SipHeader = SipHeader::new("Date", None);
    /// `Error-Info`.
    pub const ERROR_INFO: SipHeader = SipHeader::new("Error-Info", None);
    /// `Expires`.
    pub const EXPIRES: SipHeader = SipHeader::new("Expires", None);
    /// `From` (compact form `f`).
    pub const FROM: SipHeader = SipHeader::new("From", Some('f'));
    /// `In-Reply-To`.
    pub const IN_REPLY_TO: SipHeader = SipHeader::new("In-Reply-To", None);
    /// `Max-Forwards`.
    pub const MAX_FORWARDS: SipHeader = SipHeader::new("Max-Forwards", None);
    /// `Min-Expires`.
    pub const MIN_EXPIRES: SipHeader = SipHeader::new("Min-Expires", None);
    /// `MIME-Version`.
    pub const MIME_VERSION: SipHeader = SipHeader::new("MIME-Version", None);
    /// `Organization`.
    pub const ORGANIZATION: SipHeader = SipHeader::new("Organization", None);
    /// `Priority`.
    pub const PRIORITY: SipHeader = SipHeader::new("Priority", None);
    /// `Proxy-Authenticate`.
    pub const PROXY_AUTHENTICATE: SipHeader = SipHeader::new("Proxy-Authenticate", None);
    /// `Proxy-Authorization`.
    pub const PROXY_AUTHORIZATION: SipHeader = SipHeader::new("Proxy-Authorization", None);
    /// `Proxy-Require`.
    pub const PROXY_REQUIRE: SipHeader = SipHeader::new("Proxy-Require", None);
    /// `Record-Route`.
    pub const RECORD_ROUTE: SipHeader = SipHeader::new("Record-Route", None);
    /// `Reply-To`.
    pub const REPLY_TO: SipHeader = SipHeader::new("Reply-To", None);
    /// `Require`.
    pub const REQUIRE: SipHeader = SipHeader::new("Require", None);
    /// `Retry-After`.
    pub const RETRY_AFTER: SipHeader = SipHeader::new("Retry-After", None);
    /// `Route`.
    pub const ROUTE: SipHeader = SipHeader::new("Route", None);
    /// `Server`.
    pub const SERVER: SipHeader = SipHeader::new("Server", None);
    /// `Subject` (compact form `s`).
    pub const SUBJECT: SipHeader = SipHeader::new("Subject", Some('s'));
    /// `Supported` (compact form `k`).
    pub const SUPPORTED: SipHeader = SipHeader::new("Supported", Some('k'));
    /// `Timestamp`.
    pub const TIMESTAMP: SipHeader = SipHeader::new("Timestamp", None);
    /// `To` (compact form `t`).
    pub const TO: SipHeader = SipHeader::new("To", Some('t'));
    /// `Unsupported`.
    pub const UNSUPPORTED: SipHeader = SipHeader::new("Unsupported", None);
    /// `User-Agent`.
    pub const USER_AGENT: SipHeader = SipHeader::new("User-Agent", None);
    /// `Via` (compact form `v`).
    pub const VIA: SipHeader = SipHeader::new("Via", Some('v'));
    /// `Warning`.
    pub const WARNING: SipHeader = SipHeader::new("Warning", None);
    /// `WWW-Authenticate`.
    pub const WWW_AUTHENTICATE: SipHeader = SipHeader::new("WWW-Authenticate", None);

    const fn new(name: &'static str, compact: Option<char>) -> Self {
        Self { name, compact }
    }

    /// Every RFC 3261 header, alphabetically.
    pub fn all() -> &'static [SipHeader] {
        &HEADERS
    }

    /// The header called `name`, in full or compact form, ignoring ASCII case.
    pub fn lookup(name: &str) -> Option<SipHeader> {
        HEADERS.iter().copied().find(|header| {
            header.name.eq_ignore_ascii_case(name)
                || header.compact.is_some_and(|compact| {
                    name.len() == 1 && name.starts_with(|c: char| c.eq_ignore_ascii_case(&compact))
                })
        })
    }

    /// The full name, spelled as RFC 3261 spells it.
    pub fn name(self) -> &'static str {
        self.name
    }

    /// The compact form, for the ten headers that have one.
    pub fn compact(self) -> Option<char> {
        self.compact
    }
}

impl fmt::Display for SipHeader {
    /// The full name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_forms_are_the_rfc_3261_ones() {
        let compact: Vec<(char, &str)> = SipHeader::all()
            .iter()
            .filter_map(|header| header.compact().map(|c| (c, header.name())))
            .collect();
        assert_eq!(
            compact,
            [
                ('i', "Call-ID"),
                ('m', "Contact"),
                ('e', "Content-Encoding"),
                ('l', "Content-Length"),
                ('c', "Content-Type"),
                ('f', "From"),
                ('s', "Subject"),
                ('k', "Supported"),
                ('t', "To"),
                ('v', "Via"),
            ]
        );
    }

    #[test]
    fn lookup_accepts_full_and_compact_names_in_any_case() {
        assert_eq!(SipHeader::lookup("Via"), Some(SipHeader::VIA));
        assert_eq!(SipHeader::lookup("VIA"), Some(SipHeader::VIA));
        assert_eq!(SipHeader::lookup("V"), Some(SipHeader::VIA));
        assert_eq!(SipHeader::lookup("call-id"), Some(SipHeader::CALL_ID));
        assert_eq!(
            SipHeader::lookup("www-authenticate"),
            Some(SipHeader::WWW_AUTHENTICATE)
        );
        assert_eq!(
            SipHeader::lookup("Max-Forwards").map(SipHeader::compact),
            Some(None)
        );
        assert_eq!(SipHeader::lookup("x"), None);
        assert_eq!(SipHeader::lookup(""), None);
        assert_eq!(SipHeader::lookup("Via2"), None);
    }

    #[test]
    fn the_table_has_the_44_headers_of_section_20_once_each() {
        let all = SipHeader::all();
        assert_eq!(all.len(), 44);
        for (index, header) in all.iter().enumerate() {
            assert_eq!(SipHeader::lookup(header.name()), Some(*header));
            assert!(all[index + 1..]
                .iter()
                .all(|other| !other.name().eq_ignore_ascii_case(header.name())));
        }
    }
}

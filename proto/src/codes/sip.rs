//! SIP response codes: the IANA "Response Codes" registry of the SIP
//! parameters (every code assigned from 100 to 699, with its reason phrase),
//! the six classes of RFC 3261 section 21, and listing by class.
//!
//! No maintained crate carries the registry as plain data, so it is copied
//! here once, sorted, and looked up by binary search. A code that is not in
//! the registry (say 499) is not a [`SipStatus`]; its class can still be
//! asked for with [`SipClass::of`], as RFC 3261 tells a client to treat an
//! unknown code like the x00 code of its class.
//!
//! ```
//! use plughost_proto::codes::sip::{SipClass, SipStatus};
//!
//! let busy = SipStatus::from_u16(486).unwrap();
//! assert_eq!(busy.to_string(), "486 Busy Here");
//! assert_eq!(busy.class(), SipClass::RequestFailure);
//! assert!(busy.is_request_failure() && busy.is_final());
//! assert_eq!(SipStatus::from_u16(499), None);
//! ```

use std::fmt;

/// A registered SIP response code and its reason phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SipStatus {
    code: u16,
    reason: &'static str,
}

const fn status(code: u16, reason: &'static str) -> SipStatus {
    SipStatus { code, reason }
}

/// The IANA SIP response-code registry, ascending by code.
static REGISTRY: [SipStatus; 75] = [
    // 1xx provisional
    status(100, "Trying"),
    status(180, "Ringing"),
    status(181, "Call Is Being Forwarded"),
    status(182, "Queued"),
    status(183, "Session Progress"),
    status(199, "Early Dialog Terminated"),
    // 2xx success
    status(200, "OK"),
    status(202, "Accepted"),
    status(204, "No Notification"),
    // 3xx redirection
    status(300, "Multiple Choices"),
    status(301, "Moved Permanently"),
    status(302, "Moved Temporarily"),
    status(305, "Use Proxy"),
    status(380, "Alternative Service"),
    // 4xx request failure
    status(400, "Bad Request"),
    status(401, "Unauthorized"),
    status(402, "Payment Required"),
    status(403, "Forbidden"),
    status(404, "Not Found"),
    status(405, "Method Not Allowed"),
    status(406, "Not Acceptable"),
    status(407, "Proxy Authentication Required"),
    status(408, "Request Timeout"),
    status(410, "Gone"),
    status(412, "Conditional Request Failed"),
    status(413, "Request Entity Too Large"),
    status(414, "Request-URI Too Long"),
    status(415, "Unsupported Media Type"),
    status(416, "Unsupported URI Scheme"),
    status(417, "Unknown Resource-Priority"),
    status(420, "Bad Extension"),
    status(421, "Extension Required"),
    status(422, "Session Interval Too Small"),
    status(423, "Interval Too Brief"),
    status(424, "Bad Location Information"),
    status(425, "Bad Alert Message"),
    status(428, "Use Identity Header"),
    status(429, "Provide Referrer Identity"),
    status(430, "Flow Failed"),
    status(433, "Anonymity Disallowed"),
    status(436, "Bad Identity Info"),
    status(437, "Unsupported Credential"),
    status(438, "Invalid Identity Header"),
    status(439, "First Hop Lacks Outbound Support"),
    status(440, "Max-Breadth Exceeded"),
    status(469, "Bad Info Package"),
    status(470, "Consent Needed"),
    status(480, "Temporarily Unavailable"),
    status(481, "Call/Transaction Does Not Exist"),
    status(482, "Loop Detected"),
    status(483, "Too Many Hops"),
    status(484, "Address Incomplete"),
    status(485, "Ambiguous"),
    status(486, "Busy Here"),
    status(487, "Request Terminated"),
    status(488, "Not Acceptable Here"),
    status(489, "Bad Event"),
    status(491, "Request Pending"),
    status(493, "Undecipherable"),
    status(494, "Security Agreement Required"),
    // 5xx server failure
    status(500, "Server Internal Error"),
    status(501, "Not Implemented"),
    status(502, "Bad Gateway"),
    status(503, "Service Unavailable"),
    status(504, "Server Time-out"),
    status(505, "Version Not Supported"),
    status(513, "Message Too Large"),
    status(555, "Push Notification Service Not Supported"),
    status(580, "Precondition Failure"),
    // 6xx global failure
    status(600, "Busy Everywhere"),
    status(603, "Decline"),
    status(604, "Does Not Exist Anywhere"),
    status(606, "Not Acceptable"),
    status(607, "Unwanted"),
    status(608, "Rejected"),
];

impl SipStatus {
    /// The registered status with this code, if any.
    pub fn from_u16(code: u16) -> Option<Self> {
        REGISTRY
            .binary_search_by_key(&code, |status| status.code)
            .ok()
            .and_then(|index| REGISTRY.get(index).copied())
    }

    /// The whole registry, ascending by code.
    pub fn all() -> &'static [SipStatus] {
        &REGISTRY
    }

    /// The code.
    pub fn code(self) -> u16 {
        self.code
    }

    /// The reason phrase the registry gives.
    pub fn reason(self) -> &'static str {
        self.reason
    }

    /// The class of the code. Every registered code has one.
    pub fn class(self) -> SipClass {
        SipClass::of(self.code).unwrap_or(SipClass::GlobalFailure)
    }

    /// 1xx: the request is being worked on; more responses follow.
    pub fn is_provisional(self) -> bool {
        self.class() == SipClass::Provisional
    }

    /// 2xx: the request succeeded.
    pub fn is_success(self) -> bool {
        self.class() == SipClass::Success
    }

    /// 3xx: the request should be tried elsewhere.
    pub fn is_redirection(self) -> bool {
        self.class() == SipClass::Redirection
    }

    /// 4xx: the request failed at this server; a changed request may succeed.
    pub fn is_request_failure(self) -> bool {
        self.class() == SipClass::RequestFailure
    }

    /// 5xx: the server failed to handle a possibly valid request.
    pub fn is_server_failure(self) -> bool {
        self.class() == SipClass::ServerFailure
    }

    /// 6xx: the request will fail at any server.
    pub fn is_global_failure(self) -> bool {
        self.class() == SipClass::GlobalFailure
    }

    /// Whether the response ends the transaction (every class but 1xx).
    pub fn is_final(self) -> bool {
        !self.is_provisional()
    }
}

impl fmt::Display for SipStatus {
    /// `<code> <reason>`, as on a SIP status line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.reason)
    }
}

/// The six SIP response classes (RFC 3261 section 21).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SipClass {
    /// 1xx provisional.
    Provisional,
    /// 2xx success.
    Success,
    /// 3xx redirection.
    Redirection,
    /// 4xx request failure.
    RequestFailure,
    /// 5xx server failure.
    ServerFailure,
    /// 6xx global failure.
    GlobalFailure,
}

impl SipClass {
    /// All classes, 1xx to 6xx.
    pub const ALL: [SipClass; 6] = [
        SipClass::Provisional,
        SipClass::Success,
        SipClass::Redirection,
        SipClass::RequestFailure,
        SipClass::ServerFailure,
        SipClass::GlobalFailure,
    ];

    /// The class of any code from 100 to 699, registered or not.
    pub fn of(code: u16) -> Option<Self> {
        if !(100..=699).contains(&code) {
            return None;
        }
        u8::try_from(code / 100).ok().and_then(Self::from_digit)
    }

    /// The class whose codes start with `digit`.
    pub fn from_digit(digit: u8) -> Option<Self> {
        Self::ALL.get(usize::from(digit).checked_sub(1)?).copied()
    }

    /// The leading digit of the class's codes.
    pub fn digit(self) -> u8 {
        match self {
            Self::Provisional => 1,
            Self::Success => 2,
            Self::Redirection => 3,
            Self::RequestFailure => 4,
            Self::ServerFailure => 5,
            Self::GlobalFailure => 6,
        }
    }

    /// The class's name, as RFC 3261 words it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Provisional => "provisional",
            Self::Success => "success",
            Self::Redirection => "redirection",
            Self::RequestFailure => "request failure",
            Self::ServerFailure => "server failure",
            Self::GlobalFailure => "global failure",
        }
    }

    /// Whether `code` is in this class.
    pub fn contains(self, code: u16) -> bool {
        Self::of(code) == Some(self)
    }

    /// The registered codes of this class, ascending.
    pub fn codes(self) -> impl Iterator<Item = SipStatus> {
        REGISTRY
            .iter()
            .copied()
            .filter(move |status| self.contains(status.code))
    }
}

impl fmt::Display for SipClass {
    /// `4xx request failure`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}xx {}", self.digit(), self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(class: SipClass) -> Vec<u16> {
        class.codes().map(SipStatus::code).collect()
    }

    #[test]
    fn registry_is_sorted_unique_and_in_range() {
        assert!(REGISTRY.windows(2).all(|pair| pair[0].code < pair[1].code));
        assert!(REGISTRY
            .iter()
            .all(|status| (100..=699).contains(&status.code)));
        assert!(REGISTRY.iter().all(|status| !status.reason.is_empty()));
    }

    #[test]
    fn every_class_lists_exactly_the_assigned_codes() {
        assert_eq!(codes(SipClass::Provisional), [100, 180, 181, 182, 183, 199]);
        assert_eq!(codes(SipClass::Success), [200, 202, 204]);
        assert_eq!(codes(SipClass::Redirection), [300, 301, 302, 305, 380]);
        assert_eq!(
            codes(SipClass::RequestFailure),
            [
                400, 401, 402, 403, 404, 405, 406, 407, 408, 410, 412, 413, 414, 415, 416, 417,
                420, 421, 422, 423, 424, 425, 428, 429, 430, 433, 436, 437, 438, 439, 440, 469,
                470, 480, 481, 482, 483, 484, 485, 486, 487, 488, 489, 491, 493, 494
            ]
        );
        assert_eq!(
            codes(SipClass::ServerFailure),
            [500, 501, 502, 503, 504, 505, 513, 555, 580]
        );
        assert_eq!(
            codes(SipClass::GlobalFailure),
            [600, 603, 604, 606, 607, 608]
        );
    }

    #[test]
    fn reason_phrases() {
        let reason = |code| SipStatus::from_u16(code).map(SipStatus::reason);
        assert_eq!(reason(100), Some("Trying"));
        assert_eq!(reason(183), Some("Session Progress"));
        assert_eq!(reason(481), Some("Call/Transaction Does Not Exist"));
        assert_eq!(reason(486), Some("Busy Here"));
        assert_eq!(reason(504), Some("Server Time-out"));
        assert_eq!(reason(603), Some("Decline"));
        assert_eq!(reason(608), Some("Rejected"));
        for unassigned in [0, 99, 101, 201, 409, 411, 418, 490, 492, 599, 601, 700] {
            assert_eq!(reason(unassigned), None, "{unassigned}");
        }
    }

    #[test]
    fn class_predicates() {
        let status = |code| SipStatus::from_u16(code).unwrap();
        assert!(status(180).is_provisional() && !status(180).is_final());
        assert!(status(200).is_success() && status(200).is_final());
        assert!(status(302).is_redirection());
        assert!(status(486).is_request_failure());
        assert!(status(503).is_server_failure());
        assert!(status(603).is_global_failure());
        assert_eq!(SipClass::of(499), Some(SipClass::RequestFailure));
        assert_eq!(SipClass::of(700), None);
        assert_eq!(SipClass::of(99), None);
        assert_eq!(SipClass::GlobalFailure.to_string(), "6xx global failure");
        assert_eq!(SipClass::from_digit(7), None);
    }
}

//! HTTP status codes through the `http` crate, plus what it lacks: the class
//! as a value, and listing the registered codes by class.
//!
//! [`StatusCode`] already carries the registry's reason phrases
//! (`canonical_reason`) and the class predicates (`is_success`,
//! `is_client_error`, ...); re-typing that table would only let the two drift
//! apart. What a user debugging traffic also wants is "which class is this"
//! as a value to print, and "which codes are in 4xx"; [`HttpClass`] gives
//! both by asking `StatusCode` about every number from 100 to 999.
//!
//! ```
//! use plughost_proto::codes::http::{lookup, HttpClass};
//!
//! let teapot = lookup(418).unwrap();
//! assert_eq!(teapot.canonical_reason(), Some("I'm a teapot"));
//! assert_eq!(HttpClass::of(teapot), Some(HttpClass::ClientError));
//! assert!(HttpClass::Informational.codes().any(|code| code.as_u16() == 101));
//! ```

use std::fmt;

pub use ::http::StatusCode;

/// The five HTTP status classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HttpClass {
    /// 1xx: the request was received, processing continues.
    Informational,
    /// 2xx: the request was received, understood and accepted.
    Success,
    /// 3xx: further action is needed to complete the request.
    Redirection,
    /// 4xx: the request is wrong or cannot be fulfilled.
    ClientError,
    /// 5xx: the server failed to fulfil a valid request.
    ServerError,
}

impl HttpClass {
    /// All classes, 1xx to 5xx.
    pub const ALL: [HttpClass; 5] = [
        HttpClass::Informational,
        HttpClass::Success,
        HttpClass::Redirection,
        HttpClass::ClientError,
        HttpClass::ServerError,
    ];

    /// The class of `code`; `None` for 600 to 999, which `StatusCode` accepts
    /// but no HTTP class covers.
    pub fn of(code: StatusCode) -> Option<Self> {
        u8::try_from(code.as_u16() / 100)
            .ok()
            .and_then(Self::from_digit)
    }

    /// The class whose codes start with `digit`.
    pub fn from_digit(digit: u8) -> Option<Self> {
        Self::ALL.get(usize::from(digit).checked_sub(1)?).copied()
    }

    /// The leading digit of the class's codes.
    pub fn digit(self) -> u8 {
        match self {
            Self::Informational => 1,
            Self::Success => 2,
            Self::Redirection => 3,
            Self::ClientError => 4,
            Self::ServerError => 5,
        }
    }

    /// The class's name, as RFC 9110 section 15 words it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Informational => "informational",
            Self::Success => "success",
            Self::Redirection => "redirection",
            Self::ClientError => "client error",
            Self::ServerError => "server error",
        }
    }

    /// Whether `code` is in this class (the predicate for any class as a value).
    pub fn contains(self, code: StatusCode) -> bool {
        Self::of(code) == Some(self)
    }

    /// The registered codes of this class (those with a reason phrase), ascending.
    pub fn codes(self) -> impl Iterator<Item = StatusCode> {
        known_codes().filter(move |code| self.contains(*code))
    }
}

impl fmt::Display for HttpClass {
    /// `4xx client error`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}xx {}", self.digit(), self.name())
    }
}

/// Every code `StatusCode` knows a reason phrase for, ascending.
pub fn known_codes() -> impl Iterator<Item = StatusCode> {
    (100..=999u16).filter_map(lookup)
}

/// The status code `code`, if it is a registered one (has a reason phrase).
pub fn lookup(code: u16) -> Option<StatusCode> {
    StatusCode::from_u16(code)
        .ok()
        .filter(|status| status.canonical_reason().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_agree_with_status_code_predicates() {
        for code in (100..=999u16).filter_map(|n| StatusCode::from_u16(n).ok()) {
            let class = HttpClass::of(code);
            assert_eq!(
                class == Some(HttpClass::Informational),
                code.is_informational(),
                "{code}"
            );
            assert_eq!(
                class == Some(HttpClass::Success),
                code.is_success(),
                "{code}"
            );
            assert_eq!(
                class == Some(HttpClass::Redirection),
                code.is_redirection(),
                "{code}"
            );
            assert_eq!(
                class == Some(HttpClass::ClientError),
                code.is_client_error(),
                "{code}"
            );
            assert_eq!(
                class == Some(HttpClass::ServerError),
                code.is_server_error(),
                "{code}"
            );
        }
    }

    #[test]
    fn listing_by_class_holds_the_registered_codes() {
        let server: Vec<u16> = HttpClass::ServerError
            .codes()
            .map(|code| code.as_u16())
            .collect();
        assert_eq!(
            server,
            [500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511]
        );
        let all: usize = HttpClass::ALL
            .iter()
            .map(|class| class.codes().count())
            .sum();
        assert_eq!(all, known_codes().count());
        assert!(known_codes().all(|code| code.canonical_reason().is_some()));
    }

    #[test]
    fn lookup_only_finds_registered_codes() {
        assert_eq!(
            lookup(404).and_then(|code| code.canonical_reason()),
            Some("Not Found")
        );
        assert_eq!(lookup(299), None);
        assert_eq!(lookup(1000), None);
        assert_eq!(lookup(99), None);
    }

    #[test]
    fn digits_and_display() {
        assert_eq!(HttpClass::from_digit(0), None);
        assert_eq!(HttpClass::from_digit(6), None);
        for class in HttpClass::ALL {
            assert_eq!(HttpClass::from_digit(class.digit()), Some(class));
        }
        assert_eq!(HttpClass::ClientError.to_string(), "4xx client error");
        assert_eq!(HttpClass::of(StatusCode::from_u16(600).unwrap()), None);
    }
}

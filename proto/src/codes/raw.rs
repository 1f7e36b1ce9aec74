//! The raw protocol's response codes: the four the old system sends, with
//! the reasons it sends them with (docs/wire.md section 2), plus plughost's 404
//! for a stop request naming no registered service.
//!
//! The numbers are HTTP's and mean what they mean there, so their class is an
//! [`HttpClass`]. The reasons are the old system's, not HTTP's: 200 is
//! `Success`, not `OK`, and 500 is `Failure : Internal Server Error`. Other
//! tools match on these strings, so they are kept byte for byte.
//!
//! ```
//! use plughost_proto::codes::raw::RawCode;
//!
//! assert_eq!(RawCode::Success.code(), 200);
//! assert_eq!(RawCode::from_u16(500).unwrap().reason(), "Failure : Internal Server Error");
//! ```

use std::fmt;

use super::http::HttpClass;

/// A response code of the raw protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RawCode {
    /// 200: the request was handled.
    Success,
    /// 403: the request is not allowed (plughost: `mgmt e` without the admin token).
    Forbidden,
    /// 404: plughost's extension: `mgmt s <uuid>` names no registered service.
    NotFound,
    /// 500: handling the request failed.
    InternalServerError,
    /// 503: the service cannot handle it now (e.g. no manager known yet).
    ServiceUnavailable,
}

impl RawCode {
    /// Every raw code, in ascending order.
    pub const ALL: [RawCode; 5] = [
        RawCode::Success,
        RawCode::Forbidden,
        RawCode::NotFound,
        RawCode::InternalServerError,
        RawCode::ServiceUnavailable,
    ];

    /// The number, as written on the wire.
    pub const fn code(self) -> u16 {
        match self {
            Self::Success => 200,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::InternalServerError => 500,
            Self::ServiceUnavailable => 503,
        }
    }

    /// The reason line the old system sends with this code.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::Success => "Success",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "Not Found",
            Self::InternalServerError => "Failure : Internal Server Error",
            Self::ServiceUnavailable => "Service Unavailable",
        }
    }

    /// The raw code with this number, if it is one of the table.
    pub fn from_u16(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|raw| raw.code() == code)
    }

    /// The HTTP class of the number (2xx success, 4xx client error, ...).
    pub fn class(self) -> HttpClass {
        match self {
            Self::Success => HttpClass::Success,
            Self::Forbidden | Self::NotFound => HttpClass::ClientError,
            Self::InternalServerError | Self::ServiceUnavailable => HttpClass::ServerError,
        }
    }

    /// Whether the code reports success (2xx).
    pub fn is_success(self) -> bool {
        self.class() == HttpClass::Success
    }

    /// The raw codes of one class, in ascending order.
    pub fn in_class(class: HttpClass) -> impl Iterator<Item = RawCode> {
        Self::ALL
            .into_iter()
            .filter(move |raw| raw.class() == class)
    }
}

impl fmt::Display for RawCode {
    /// `<code> <reason>`, e.g. `403 Forbidden`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.reason())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_reasons_are_the_old_ones() {
        let table: Vec<String> = RawCode::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(
            table,
            [
                "200 Success",
                "403 Forbidden",
                "404 Not Found",
                "500 Failure : Internal Server Error",
                "503 Service Unavailable"
            ]
        );
    }

    #[test]
    fn lookup_and_classes() {
        assert_eq!(RawCode::from_u16(403), Some(RawCode::Forbidden));
        assert_eq!(RawCode::from_u16(404), Some(RawCode::NotFound));
        assert_eq!(RawCode::from_u16(418), None);
        assert!(RawCode::Success.is_success());
        assert!(!RawCode::ServiceUnavailable.is_success());
        assert_eq!(
            RawCode::in_class(HttpClass::ServerError).collect::<Vec<_>>(),
            [RawCode::InternalServerError, RawCode::ServiceUnavailable]
        );
        for raw in RawCode::ALL {
            assert_eq!(u8::try_from(raw.code() / 100).unwrap(), raw.class().digit());
        }
    }
}

//! Status codes of the protocols the old toolkit knew: the raw protocol's
//! own four, HTTP's and SIP's, each with reason phrases, classes and
//! listing by class.
//!
//! Each table lives where it is maintained best: HTTP codes come from the
//! `http` crate's [`StatusCode`](::http::StatusCode) (the table every Rust
//! HTTP stack shares, so it is not re-typed here; [`http`] adds classes and
//! listing), SIP codes are the IANA registry copied into [`sip`] (no
//! maintained crate carries it as data), raw codes are the old system's four
//! in [`raw`]. Classes are written `Nxx` as in the RFCs; [`class_digit`]
//! reads that notation for all three tables.
//!
//! ```
//! use plughost_proto::codes::{class_digit, sip::SipClass};
//!
//! let class = SipClass::from_digit(class_digit("6xx").unwrap()).unwrap();
//! let codes: Vec<u16> = class.codes().map(|status| status.code()).collect();
//! assert_eq!(codes, [600, 603, 604, 606, 607, 608]);
//! ```

pub mod http;
pub mod raw;
pub mod sip;

/// Why a code or class could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// The text is not a class in `Nxx` notation.
    #[error("{input:?} is not a status class; write it as Nxx with N from 1 to 9, e.g. 4xx")]
    BadClass {
        /// The text that was read.
        input: String,
    },
}

/// Reads a class in `Nxx` notation (`4xx`, `4XX`, or just `4`) and returns
/// its digit. Which digits are classes depends on the table: see
/// `HttpClass::from_digit` and `SipClass::from_digit`.
///
/// ```
/// use plughost_proto::codes::class_digit;
/// assert_eq!(class_digit("4xx"), Ok(4));
/// assert_eq!(class_digit("6XX"), Ok(6));
/// assert!(class_digit("4x").is_err());
/// ```
pub fn class_digit(input: &str) -> Result<u8, CodeError> {
    let bad = || CodeError::BadClass {
        input: input.to_owned(),
    };
    let (digit, rest) = input.split_at_checked(1).ok_or_else(bad)?;
    if !(rest.is_empty() || rest.eq_ignore_ascii_case("xx")) {
        return Err(bad());
    }
    match digit.as_bytes() {
        [byte @ b'1'..=b'9'] => Ok(byte - b'0'),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_notation() {
        assert_eq!(class_digit("1xx"), Ok(1));
        assert_eq!(class_digit("5"), Ok(5));
        assert_eq!(class_digit("9Xx"), Ok(9));
        for bad in ["", "0xx", "xx", "4xxx", "44x", "é", "ax"] {
            assert_eq!(
                class_digit(bad),
                Err(CodeError::BadClass { input: bad.into() }),
                "{bad}"
            );
        }
    }
}

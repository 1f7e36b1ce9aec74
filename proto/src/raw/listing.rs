//! The registry listing the old manager sends in its answers to INIT, HELLO
//! and `mgmt l`: one line per service, each ended by `\n` (docs/wire.md section 2):
//!
//! ```text
//! [<i>] : service_name = <name> : service_id = <uuid> :time_since_lastUpdate = <seconds> : last_msg_type = <init|hello>
//! ```
//!
//! Note the missing space before `time_since_lastUpdate`: it is in the old
//! format and kept. The seconds are written as Python's `str(float)` writes
//! them (`5.0`, `0.25`, `3.0994415283203125e-06`), so a listing made by
//! plughost is byte-identical to the old manager's for the same numbers.
//!
//! ```
//! use plughost_proto::address::RawAddress;
//! use plughost_proto::raw::{format_listing, parse_listing, ListingEntry, RawMessageType};
//!
//! let service = RawAddress::parse("Service 7:5e0b2f6a-1c3d-4e5f-9a7b-8c9d0e1f2a3b").unwrap();
//! let entry = ListingEntry::new(1, service, 5.0, RawMessageType::Init);
//! let text = format_listing([&entry]);
//! assert_eq!(
//!     text,
//!     "[1] : service_name = Service 7 : service_id = 5e0b2f6a-1c3d-4e5f-9a7b-8c9d0e1f2a3b \
//!      :time_since_lastUpdate = 5.0 : last_msg_type = init\n"
//! );
//! assert_eq!(parse_listing(&text).unwrap(), [entry]);
//! ```

use std::fmt;

use super::RawMessageType;
use crate::address::{AddressError, RawAddress};
use crate::uid::{Uid, UidError};

const NAME: &str = "] : service_name = ";
const ID: &str = " : service_id = ";
const AGE: &str = " :time_since_lastUpdate = ";
const TYPE: &str = " : last_msg_type = ";

/// Why a listing line could not be read. Each variant quotes the line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ListingError {
    /// The line does not have the listing's fixed text where it should.
    #[error("listing line {line:?} does not match the listing format: missing {missing:?}")]
    Shape {
        /// The line.
        line: String,
        /// The fixed text that was not found.
        missing: &'static str,
    },
    /// The index between the brackets is not a number.
    #[error("listing line {line:?}: index {found:?} is not a number")]
    BadIndex {
        /// The line.
        line: String,
        /// The index as found.
        found: String,
    },
    /// The service id is not a uid.
    #[error("listing line {line:?}: bad service_id: {reason}")]
    BadUid {
        /// The line.
        line: String,
        /// Why it is not a uid.
        reason: UidError,
    },
    /// The service name cannot be part of an address.
    #[error("listing line {line:?}: bad service_name: {reason}")]
    BadName {
        /// The line.
        line: String,
        /// Why the name is not valid.
        reason: AddressError,
    },
    /// The age is not a number.
    #[error("listing line {line:?}: time_since_lastUpdate {found:?} is not a number")]
    BadSeconds {
        /// The line.
        line: String,
        /// The age as found.
        found: String,
    },
    /// The last message type is not `init` or `hello`.
    #[error("listing line {line:?}: last_msg_type {found:?} is not init or hello")]
    BadMessageType {
        /// The line.
        line: String,
        /// The type as found.
        found: String,
    },
}

/// One service in a registry listing.
#[derive(Debug, Clone, PartialEq)]
pub struct ListingEntry {
    /// The position in the listing, counting from 1.
    pub index: usize,
    /// The service's name and uid.
    pub service: RawAddress,
    /// Seconds since the manager last heard from the service.
    pub seconds_since_update: f64,
    /// The last message the service sent: [`RawMessageType::Init`] or [`RawMessageType::Hello`].
    pub last_msg_type: RawMessageType,
}

impl ListingEntry {
    /// An entry.
    pub fn new(
        index: usize,
        service: RawAddress,
        seconds_since_update: f64,
        last_msg_type: RawMessageType,
    ) -> Self {
        Self {
            index,
            service,
            seconds_since_update,
            last_msg_type,
        }
    }

    /// Reads one listing line; a trailing `\n` (or `\r\n`) is allowed.
    pub fn parse(line: &str) -> Result<Self, ListingError> {
        let text = line.strip_suffix('\n').unwrap_or(line);
        let text = text.strip_suffix('\r').unwrap_or(text);
        let shape = |missing| ListingError::Shape {
            line: line.to_owned(),
            missing,
        };
        let rest = text.strip_prefix('[').ok_or_else(|| shape("["))?;
        let (index, rest) = rest.split_once(NAME).ok_or_else(|| shape(NAME))?;
        let (name, rest) = rest.split_once(ID).ok_or_else(|| shape(ID))?;
        let (uid, rest) = rest.split_once(AGE).ok_or_else(|| shape(AGE))?;
        let (seconds, last_msg_type) = rest.split_once(TYPE).ok_or_else(|| shape(TYPE))?;

        let index = index.parse().map_err(|_| ListingError::BadIndex {
            line: line.to_owned(),
            found: index.to_owned(),
        })?;
        let uid = Uid::parse(uid).map_err(|reason| ListingError::BadUid {
            line: line.to_owned(),
            reason,
        })?;
        let service = RawAddress::new(name, uid).map_err(|reason| ListingError::BadName {
            line: line.to_owned(),
            reason,
        })?;
        let seconds_since_update =
            parse_seconds(seconds).ok_or_else(|| ListingError::BadSeconds {
                line: line.to_owned(),
                found: seconds.to_owned(),
            })?;
        let last_msg_type = RawMessageType::from_line(last_msg_type)
            .filter(|kind| matches!(kind, RawMessageType::Init | RawMessageType::Hello))
            .ok_or_else(|| ListingError::BadMessageType {
                line: line.to_owned(),
                found: last_msg_type.to_owned(),
            })?;
        Ok(Self {
            index,
            service,
            seconds_since_update,
            last_msg_type,
        })
    }
}

impl fmt::Display for ListingEntry {
    /// The listing line, without its `\n`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}{NAME}{}{ID}{}{AGE}{}{TYPE}{}",
            self.index,
            self.service.name(),
            self.service.uid(),
            python_float(self.seconds_since_update),
            self.last_msg_type
        )
    }
}

/// The listing text for `entries`: each line ended by `\n`; the empty string
/// for no entries, as the old manager sent for an empty registry.
pub fn format_listing<'a, I>(entries: I) -> String
where
    I: IntoIterator<Item = &'a ListingEntry>,
{
    entries
        .into_iter()
        .map(|entry| format!("{entry}\n"))
        .collect()
}

/// Reads a listing text: every non-empty `\n`-separated line is an entry.
pub fn parse_listing(text: &str) -> Result<Vec<ListingEntry>, ListingError> {
    text.split('\n')
        .filter(|line| !line.is_empty() && *line != "\r")
        .map(ListingEntry::parse)
        .collect()
}

/// Reads the seconds as Python writes a float: decimal or exponent notation,
/// or `inf`/`nan` (which a clock step can produce in the old manager).
fn parse_seconds(text: &str) -> Option<f64> {
    let plain = text.trim_start_matches(['-', '+']);
    let numeric = plain.starts_with(|c: char| c.is_ascii_digit() || c == '.');
    if numeric || matches!(plain, "inf" | "nan") {
        text.parse().ok()
    } else {
        None
    }
}

/// Writes `value` as Python 3's `repr(float)` / `str(float)` does: the
/// shortest digits that read back to the same float (which Rust's `{:e}`
/// gives too), in fixed notation when the decimal exponent is from -4 to 15
/// (with `.0` for whole numbers), otherwise as `d.ddde±XX`.
fn python_float(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(positive) => ("-", positive),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exponent) {
        let (whole, fraction) = if exponent >= 0 {
            let whole_len = usize::try_from(exponent).unwrap_or(0) + 1;
            if digits.len() <= whole_len {
                (format!("{digits:0<whole_len$}"), "0".to_owned())
            } else {
                let (whole, fraction) = digits.split_at(whole_len);
                (whole.to_owned(), fraction.to_owned())
            }
        } else {
            let zeros = usize::try_from(-exponent - 1).unwrap_or(0);
            ("0".to_owned(), format!("{}{digits}", "0".repeat(zeros)))
        };
        format!("{sign}{whole}.{fraction}")
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let point = if rest.is_empty() { "" } else { "." };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{sign}{first}{point}{rest}e{exponent_sign}{:02}",
            exponent.unsigned_abs()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "9b2e4c6a-8d0f-4a1b-b3c5-d7e9f1a3b5c7";

    fn service(name: &str) -> RawAddress {
        RawAddress::new(name, Uid::parse(UID).unwrap()).unwrap()
    }

    #[test]
    fn floats_are_written_as_python_writes_them() {
        // Expected strings from CPython 3: `str(x)` for each value.
        let cases: [(f64, &str); 19] = [
            (5.0, "5.0"),
            (0.1, "0.1"),
            (0.0, "0.0"),
            (-0.5, "-0.5"),
            (1e-05, "1e-05"),
            (1.5e-05, "1.5e-05"),
            (0.0001, "0.0001"),
            (9.999e-05, "9.999e-05"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345.6, "123456789012345.6"),
            (1234567890123456.7, "1234567890123456.8"),
            (12345678901234567.0, "1.2345678901234568e+16"),
            (3.0994415283203125e-06, "3.0994415283203125e-06"),
            (4.76837158203125e-07, "4.76837158203125e-07"),
            (12.003456115722656, "12.003456115722656"),
            (60.00012397766113, "60.00012397766113"),
            (0.00012302398681640625, "0.00012302398681640625"),
            (2.5e+20, "2.5e+20"),
        ];
        for (value, python) in cases {
            assert_eq!(python_float(value), python, "{value:e}");
            assert_eq!(parse_seconds(python), Some(value), "{python}");
        }
        assert_eq!(python_float(f64::INFINITY), "inf");
        assert_eq!(python_float(f64::NAN), "nan");
    }

    #[test]
    fn golden_listing_of_two_services() {
        let entries = [
            ListingEntry::new(
                1,
                service("Service 42"),
                4.003456115722656,
                RawMessageType::Hello,
            ),
            ListingEntry::new(
                2,
                service("Command Processor"),
                3.0994415283203125e-06,
                RawMessageType::Init,
            ),
        ];
        let text = format_listing(&entries);
        assert_eq!(
            text,
            "[1] : service_name = Service 42 : service_id = 9b2e4c6a-8d0f-4a1b-b3c5-d7e9f1a3b5c7 :time_since_lastUpdate = 4.003456115722656 : last_msg_type = hello\n\
             [2] : service_name = Command Processor : service_id = 9b2e4c6a-8d0f-4a1b-b3c5-d7e9f1a3b5c7 :time_since_lastUpdate = 3.0994415283203125e-06 : last_msg_type = init\n"
        );
        assert_eq!(parse_listing(&text).unwrap(), entries);
        assert_eq!(format_listing([]), "");
        assert_eq!(parse_listing("").unwrap(), []);
    }

    #[test]
    fn parse_tolerates_the_line_endings_forwarding_adds() {
        let line = format!(
            "[3] : service_name = Service 9 : service_id = {UID} :time_since_lastUpdate = 0.5 : last_msg_type = init"
        );
        let entry = ListingEntry::parse(&format!("{line}\r\n")).unwrap();
        assert_eq!((entry.index, entry.service.name()), (3, "Service 9"));
        assert_eq!(parse_listing(&format!("{line}\n\r\n")).unwrap(), [entry]);
    }

    #[test]
    fn parse_errors_name_the_field() {
        let good = format!(
            "[1] : service_name = S : service_id = {UID} :time_since_lastUpdate = 1.0 : last_msg_type = hello"
        );
        assert!(ListingEntry::parse(&good).is_ok());
        let cases: [(String, &str); 7] = [
            (good.replace('[', ""), "Shape"),
            (good.replace(" :time", " : time"), "Shape"),
            (good.replace("[1]", "[x]"), "BadIndex"),
            (good.replace(UID, "nope"), "BadUid"),
            (good.replace("= S :", "= a:b :"), "BadName"),
            (good.replace("1.0", "soon"), "BadSeconds"),
            (good.replace("hello", "bye"), "BadMessageType"),
        ];
        for (line, variant) in cases {
            let err = ListingEntry::parse(&line).unwrap_err();
            assert!(format!("{err:?}").starts_with(variant), "{line}: {err:?}");
            assert!(err.to_string().contains(&format!("{line:?}")), "{err}");
        }
    }
}

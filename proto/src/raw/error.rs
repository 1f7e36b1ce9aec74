//! The one error type of the raw protocol's parser.

use crate::address::AddressError;
use crate::uid::UidError;

/// Why bytes are not a valid raw message. Each variant names the field that
/// is wrong and quotes what was found there (at most 80 characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RawParseError {
    /// Fewer than three CRLF-terminated parts: start line, id and From are required.
    #[error("too few parts: a raw message needs at least a start line, an id and a From address, found {found} part(s)")]
    TooFewParts {
        /// How many parts the message had.
        found: usize,
    },
    /// The first part is not the expected start line.
    #[error("bad start line: expected {expected:?}, found {found:?}")]
    BadStartLine {
        /// The start line that was expected.
        expected: &'static str,
        /// The first part as found.
        found: String,
    },
    /// A part is not UTF-8.
    #[error("part {part} is not UTF-8 (valid up to byte {valid_up_to})")]
    NotUtf8 {
        /// The index of the part, the start line being part 0.
        part: usize,
        /// How many bytes of it are valid UTF-8.
        valid_up_to: usize,
    },
    /// The id (part 1) is not a uid.
    #[error("bad id (part 1) {found:?}: not a valid UUID4: {reason}")]
    BadId {
        /// The id as found.
        found: String,
        /// Why it is not a uid.
        reason: UidError,
    },
    /// The From address (part 2) is not a valid `<name>:<uuid4>`.
    #[error("bad From address (part 2) {found:?}: {reason}")]
    BadFrom {
        /// The From part as found.
        found: String,
        /// Why it is not an address.
        reason: AddressError,
    },
    /// Part 3 is not empty, so it is a To address, and it is not a valid one.
    #[error("bad To address (part 3) {found:?}: {reason}")]
    BadTo {
        /// The To part as found.
        found: String,
        /// Why it is not an address.
        reason: AddressError,
    },
    /// After a To address, part 4 must be the empty part that ends the header block.
    #[error("missing separator after To: part 4 must be empty, found {found:?}")]
    MissingSeparatorAfterTo {
        /// Part 4 as found.
        found: String,
    },
    /// A response ends before its code.
    #[error("response has no code after the empty part")]
    MissingCode,
    /// A response's code is not three digits from 100 to 999.
    #[error("bad response code {found:?}: expected three digits, 100 to 999")]
    BadCode {
        /// The code part as found.
        found: String,
    },
    /// A response ends before its reason.
    #[error("response has no reason line after its code")]
    MissingReason,
}

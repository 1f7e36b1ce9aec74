//! Uids: the version-4 UUIDs that name managers, services and requests in
//! the raw protocol.
//!
//! The old system compares uids as text: a service is keyed by the uuid text
//! in its address, a response is matched to its request by id text, a DEALER
//! identity is the uuid string as bytes. So a uid is valid in exactly one
//! spelling: canonical, lowercase, hyphenated, version 4 (RFC 4122 variant),
//! a string that formats back to itself. This is the rule of the old
//! `is_valid_uid` (parse as a version-4 UUID, then require `str(uuid) == text`).
//! Accepting `{...}`, uppercase or unhyphenated forms and normalising them
//! would give one service two keys on the old side, so [`Uid::parse`] refuses
//! them instead, and [`Uid`]'s `Display` always prints the one canonical form.
//!
//! ```
//! use plughost_proto::uid::Uid;
//!
//! let uid = Uid::new_v4();
//! assert_eq!(Uid::parse(&uid.to_string()), Ok(uid));
//! assert!(Uid::is_valid("6f1f7a4e-8d3b-4c1a-9e2f-0a1b2c3d4e5f"));
//! assert!(!Uid::is_valid("6F1F7A4E-8D3B-4C1A-9E2F-0A1B2C3D4E5F")); // not lowercase
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::{Uuid, Variant};

use super::excerpt;

/// A canonical version-4 UUID, as the raw protocol uses for ids and in addresses.
///
/// Holding the parsed [`Uuid`] (16 bytes, `Copy`) rather than the text keeps
/// ids cheap to pass around and compare on the per-message path; the text is
/// recovered exactly by `Display` because only canonical text is accepted.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uid(Uuid);

/// Why a string is not a uid. Each variant carries the offending text (cut
/// to 80 characters, as it may come from the network).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UidError {
    /// The text is not a UUID at all.
    #[error("{value:?} is not a UUID ({reason})")]
    NotAUuid {
        /// The text that was parsed.
        value: String,
        /// What the `uuid` crate objected to.
        reason: String,
    },
    /// A UUID, but not version 4 (random).
    #[error("{value:?} is a version-{version} UUID; a uid must be version 4")]
    WrongVersion {
        /// The text that was parsed.
        value: String,
        /// The version nibble it carries.
        version: usize,
    },
    /// A version-4 UUID whose variant bits are not the RFC 4122 ones.
    #[error("{value:?} is not an RFC 4122 variant UUID; a uid must be")]
    WrongVariant {
        /// The text that was parsed.
        value: String,
    },
    /// A valid version-4 UUID written in another form than the canonical one.
    #[error("{value:?} is not in canonical form; expected {canonical:?} (lowercase, hyphenated)")]
    NotCanonical {
        /// The text that was parsed.
        value: String,
        /// How the same UUID is written canonically.
        canonical: String,
    },
}

impl Uid {
    /// A fresh random uid, as the old `getuid()` made for every new request
    /// and every process that did not configure its own.
    pub fn new_v4() -> Self {
        Self(Uuid::new_v4())
    }

    /// Parses `text`, accepting only the canonical lowercase hyphenated form
    /// of a version-4, RFC 4122 variant UUID.
    ///
    /// ```
    /// use plughost_proto::uid::{Uid, UidError};
    ///
    /// let uid = Uid::parse("0b9a2a6c-3f57-4d43-8f2a-5c6b7d8e9f00").unwrap();
    /// assert_eq!(uid.to_string(), "0b9a2a6c-3f57-4d43-8f2a-5c6b7d8e9f00");
    ///
    /// // A version-1 UUID, and the braced form of a valid one, are refused.
    /// assert!(matches!(
    ///     Uid::parse("0b9a2a6c-3f57-1d43-8f2a-5c6b7d8e9f00"),
    ///     Err(UidError::WrongVersion { version: 1, .. })
    /// ));
    /// assert!(matches!(
    ///     Uid::parse("{0b9a2a6c-3f57-4d43-8f2a-5c6b7d8e9f00}"),
    ///     Err(UidError::NotCanonical { .. })
    /// ));
    /// ```
    pub fn parse(text: &str) -> Result<Self, UidError> {
        let uuid = Uuid::try_parse(text).map_err(|err| UidError::NotAUuid {
            value: excerpt(text),
            reason: err.to_string(),
        })?;
        let uid = Self::try_from(uuid).map_err(|err| match err {
            UidError::WrongVersion { version, .. } => UidError::WrongVersion {
                value: excerpt(text),
                version,
            },
            UidError::WrongVariant { .. } => UidError::WrongVariant {
                value: excerpt(text),
            },
            other => other,
        })?;
        let mut buffer = Uuid::encode_buffer();
        let canonical = uuid.hyphenated().encode_lower(&mut buffer);
        if canonical != text {
            return Err(UidError::NotCanonical {
                value: excerpt(text),
                canonical: canonical.to_owned(),
            });
        }
        Ok(uid)
    }

    /// Whether `text` is a valid uid (see [`Uid::parse`]).
    pub fn is_valid(text: &str) -> bool {
        Self::parse(text).is_ok()
    }

    /// The UUID itself, for code that speaks `uuid` directly.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl TryFrom<Uuid> for Uid {
    type Error = UidError;

    /// Accepts a UUID value if it is version 4 with RFC 4122 variant bits; a
    /// value has no spelling, so canonical form is not a question here.
    fn try_from(uuid: Uuid) -> Result<Self, UidError> {
        let version = uuid.get_version_num();
        if version != 4 {
            return Err(UidError::WrongVersion {
                value: uuid.to_string(),
                version,
            });
        }
        if uuid.get_variant() != Variant::RFC4122 {
            return Err(UidError::WrongVariant {
                value: uuid.to_string(),
            });
        }
        Ok(Self(uuid))
    }
}

impl From<Uid> for Uuid {
    fn from(uid: Uid) -> Self {
        uid.0
    }
}

impl FromStr for Uid {
    type Err = UidError;

    fn from_str(text: &str) -> Result<Self, UidError> {
        Self::parse(text)
    }
}

impl Uid {
    /// True when `text` is this uid's canonical form (lowercase,
    /// hyphenated), compared without allocating: the tracker checks every
    /// message's sender against its socket identity this way.
    ///
    /// ```
    /// use plughost_proto::uid::Uid;
    /// let uid = Uid::parse("6f1c2a9e-3d4b-4c5d-8e6f-7a8b9c0d1e2f").unwrap();
    /// assert!(uid.is_text(b"6f1c2a9e-3d4b-4c5d-8e6f-7a8b9c0d1e2f"));
    /// assert!(!uid.is_text(b"6F1C2A9E-3D4B-4C5D-8E6F-7A8B9C0D1E2F"));
    /// assert!(!uid.is_text(b"6f1c2a9e"));
    /// ```
    pub fn is_text(&self, text: &[u8]) -> bool {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        self.0.hyphenated().encode_lower(&mut buf).as_bytes() == text
    }
}

impl fmt::Display for Uid {
    /// The canonical form: lowercase, hyphenated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uid({})", self.0.hyphenated())
    }
}

impl Serialize for Uid {
    /// As its canonical text, the form every other tool of the system uses.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Uid {
    /// From canonical text only, with the same strictness as [`Uid::parse`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "7d444840-9dc0-41a1-8e4c-8e2f2ae8a0b1";

    #[test]
    fn accepts_canonical_v4_and_formats_back_to_it() {
        let uid = Uid::parse(VALID).unwrap();
        assert_eq!(uid.to_string(), VALID);
        assert_eq!(format!("{uid:?}"), format!("Uid({VALID})"));
    }

    #[test]
    fn new_uids_are_valid_and_distinct() {
        let a = Uid::new_v4();
        let b = Uid::new_v4();
        assert_ne!(a, b);
        assert!(Uid::is_valid(&a.to_string()));
    }

    #[test]
    fn refuses_uppercase_simple_braced_and_urn_forms() {
        for text in [
            "7D444840-9DC0-41A1-8E4C-8E2F2AE8A0B1",
            "7d4448409dc041a18e4c8e2f2ae8a0b1",
            "{7d444840-9dc0-41a1-8e4c-8e2f2ae8a0b1}",
            "urn:uuid:7d444840-9dc0-41a1-8e4c-8e2f2ae8a0b1",
        ] {
            match Uid::parse(text) {
                Err(UidError::NotCanonical { value, canonical }) => {
                    assert_eq!(value, text);
                    assert_eq!(canonical, VALID);
                }
                other => panic!("{text}: expected NotCanonical, got {other:?}"),
            }
        }
    }

    #[test]
    fn refuses_other_versions_and_variants() {
        // version nibble 1
        assert!(matches!(
            Uid::parse("7d444840-9dc0-11a1-8e4c-8e2f2ae8a0b1"),
            Err(UidError::WrongVersion { version: 1, .. })
        ));
        // nil UUID: version 0
        assert!(matches!(
            Uid::parse("00000000-0000-0000-0000-000000000000"),
            Err(UidError::WrongVersion { version: 0, .. })
        ));
        // variant nibble c (Microsoft), version 4
        assert!(matches!(
            Uid::parse("7d444840-9dc0-41a1-ce4c-8e2f2ae8a0b1"),
            Err(UidError::WrongVariant { .. })
        ));
    }

    #[test]
    fn refuses_non_uuids_with_the_text_in_the_error() {
        for text in [
            "",
            "hello",
            "7d444840-9dc0-41a1-8e4c-8e2f2ae8a0b",
            "7d444840-9dc0-41a1-8e4c-8e2f2ae8a0bz",
        ] {
            let err = Uid::parse(text).unwrap_err();
            assert!(matches!(err, UidError::NotAUuid { .. }), "{text}: {err:?}");
            assert!(err.to_string().contains(&format!("{text:?}")), "{err}");
        }
    }

    #[test]
    fn serde_uses_the_canonical_text_and_validates() {
        let uid = Uid::parse(VALID).unwrap();
        let json = serde_json::to_string(&uid).unwrap();
        assert_eq!(json, format!("\"{VALID}\""));
        assert_eq!(serde_json::from_str::<Uid>(&json).unwrap(), uid);
        assert!(serde_json::from_str::<Uid>("\"7D444840-9DC0-41A1-8E4C-8E2F2AE8A0B1\"").is_err());
    }

    #[test]
    fn try_from_uuid_checks_version() {
        assert!(Uid::try_from(Uuid::nil()).is_err());
        let uuid = Uuid::new_v4();
        assert_eq!(Uuid::from(Uid::try_from(uuid).unwrap()), uuid);
    }
}

//! Logical addresses: a list of fields joined by a separator, and on top of
//! that the raw protocol's `<name>:<uuid4>` address.
//!
//! The old toolkit had one `Address` class (fields + separator, `:` by
//! default) and validated the raw protocol's addresses on top of it: exactly
//! two fields, the second a uid. Both layers are kept because they answer
//! different needs: [`Address`] is the general tool (any number of fields, any
//! separator), while [`RawAddress`] is the type the tracker passes around, so
//! an invalid `From` or `To` cannot exist past the parser. A field may not
//! contain the separator, otherwise formatting and parsing would disagree on
//! where fields end; that one rule makes every address round-trip.
//!
//! ```
//! use plughost_proto::address::{Address, RawAddress};
//!
//! let generic = Address::parse_with("a;b;c", ";").unwrap();
//! assert_eq!(generic.fields(), ["a", "b", "c"]);
//!
//! let manager = RawAddress::parse("Service Manager:4f0b7a1e-3c2d-4e5f-8a9b-0c1d2e3f4a5b").unwrap();
//! assert_eq!(manager.name(), "Service Manager");
//! assert_eq!(manager.to_string(), "Service Manager:4f0b7a1e-3c2d-4e5f-8a9b-0c1d2e3f4a5b");
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::excerpt;
use super::uid::{Uid, UidError};

/// The separator of the old toolkit's addresses, and the one the raw protocol uses.
pub const DEFAULT_SEPARATOR: &str = ":";

/// Why an address could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// An empty separator would split nothing apart.
    #[error("an address separator must not be empty")]
    EmptySeparator,
    /// An address with no field would format as an empty string, which parses back as one empty field.
    #[error("an address needs at least one field")]
    NoFields,
    /// A field holds the separator, so it could not be told apart from two fields.
    #[error("address field {field:?} contains the separator {separator:?}")]
    FieldContainsSeparator {
        /// The offending field.
        field: String,
        /// The separator of the address.
        separator: String,
    },
    /// A raw address must have exactly two fields. (Quoted texts in address
    /// errors are cut to 80 characters.)
    #[error("{address:?} has {found} field(s); a raw address is <name>:<uuid4>")]
    WrongFieldCount {
        /// The text that was parsed.
        address: String,
        /// How many `:`-separated fields it has.
        found: usize,
    },
    /// The name of a raw address holds a character that would break the address or the message framing.
    #[error("service name {name:?} {reason}")]
    BadName {
        /// The offending name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The uuid field of a raw address is not a uid.
    #[error("bad UUID in address {address:?}: {reason}")]
    BadUid {
        /// The text that was parsed.
        address: String,
        /// Why the uuid field is not a uid.
        reason: UidError,
    },
}

/// A logical address: fields joined by a separator.
///
/// Two addresses are equal when their fields and their separators are equal,
/// which is the old toolkit's rule (it compared the formatted text and the fields).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    fields: Vec<String>,
    separator: String,
}

impl Address {
    /// An address of `fields` with the default separator `:`.
    ///
    /// ```
    /// use plughost_proto::address::Address;
    /// let address = Address::new(["Command Processor", "42"]).unwrap();
    /// assert_eq!(address.to_string(), "Command Processor:42");
    /// assert!(Address::new(["a:b"]).is_err()); // a field may not hold the separator
    /// ```
    pub fn new<I, S>(fields: I) -> Result<Self, AddressError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::with_separator(fields, DEFAULT_SEPARATOR)
    }

    /// An address of `fields` joined by a custom `separator`.
    pub fn with_separator<I, S>(
        fields: I,
        separator: impl Into<String>,
    ) -> Result<Self, AddressError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let separator = separator.into();
        if separator.is_empty() {
            return Err(AddressError::EmptySeparator);
        }
        let fields: Vec<String> = fields.into_iter().map(Into::into).collect();
        if fields.is_empty() {
            return Err(AddressError::NoFields);
        }
        if let Some(field) = fields
            .iter()
            .find(|field| field.contains(separator.as_str()))
        {
            return Err(AddressError::FieldContainsSeparator {
                field: field.clone(),
                separator,
            });
        }
        Ok(Self { fields, separator })
    }

    /// Splits `text` on the default separator `:`. Never fails: any text is
    /// an address of at least one field (the empty text is one empty field).
    pub fn parse(text: &str) -> Self {
        Self {
            fields: text.split(DEFAULT_SEPARATOR).map(str::to_owned).collect(),
            separator: DEFAULT_SEPARATOR.to_owned(),
        }
    }

    /// Splits `text` on a custom `separator`.
    ///
    /// ```
    /// use plughost_proto::address::Address;
    /// let address = Address::parse_with("node<>7<>blue", "<>").unwrap();
    /// assert_eq!(address.field(1), Some("7"));
    /// assert_eq!(address.to_string(), "node<>7<>blue");
    /// ```
    pub fn parse_with(text: &str, separator: &str) -> Result<Self, AddressError> {
        if separator.is_empty() {
            return Err(AddressError::EmptySeparator);
        }
        Ok(Self {
            fields: text.split(separator).map(str::to_owned).collect(),
            separator: separator.to_owned(),
        })
    }

    /// The fields, in order.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// Field `index`, if there is one.
    pub fn field(&self, index: usize) -> Option<&str> {
        self.fields.get(index).map(String::as_str)
    }

    /// The separator the fields are joined with.
    pub fn separator(&self) -> &str {
        &self.separator
    }
}

impl fmt::Display for Address {
    /// The fields joined by the separator: the address as it goes on the wire.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, field) in self.fields.iter().enumerate() {
            if index > 0 {
                f.write_str(&self.separator)?;
            }
            f.write_str(field)?;
        }
        Ok(())
    }
}

/// The raw protocol's address `<name>:<uuid4>` (docs/wire.md section 2).
///
/// The name may contain spaces but not `:`, CR or LF; the uuid is a [`Uid`].
/// The old system keys services by the uuid, the name is for people.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawAddress {
    name: String,
    uid: Uid,
}

impl RawAddress {
    /// An address for `name` and `uid`.
    ///
    /// ```
    /// use plughost_proto::{address::RawAddress, uid::Uid};
    /// let uid = Uid::new_v4();
    /// let service = RawAddress::new("Service 4711", uid).unwrap();
    /// assert_eq!(service.to_string(), format!("Service 4711:{uid}"));
    /// assert!(RawAddress::new("a:b", uid).is_err());
    /// ```
    pub fn new(name: impl Into<String>, uid: Uid) -> Result<Self, AddressError> {
        let name = name.into();
        check_name(&name)?;
        Ok(Self { name, uid })
    }

    /// Parses `<name>:<uuid4>` strictly: two fields, a valid name, a canonical uid.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let fields = text.split(DEFAULT_SEPARATOR).count();
        let Some((name, uid)) = text.split_once(DEFAULT_SEPARATOR).filter(|_| fields == 2) else {
            return Err(AddressError::WrongFieldCount {
                address: excerpt(text),
                found: fields,
            });
        };
        check_name(name)?;
        let uid = Uid::parse(uid).map_err(|reason| AddressError::BadUid {
            address: excerpt(text),
            reason,
        })?;
        Ok(Self {
            name: name.to_owned(),
            uid,
        })
    }

    /// The name part: `Service Manager`, `Command Processor`, `Service 1234`, ...
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The uid part, by which the old system identifies the party.
    pub fn uid(&self) -> Uid {
        self.uid
    }

    /// The same address as a generic two-field [`Address`].
    pub fn to_address(&self) -> Address {
        Address {
            fields: vec![self.name.clone(), self.uid.to_string()],
            separator: DEFAULT_SEPARATOR.to_owned(),
        }
    }
}

fn check_name(name: &str) -> Result<(), AddressError> {
    let reason = if name.contains(DEFAULT_SEPARATOR) {
        "contains ':', which separates the name from the uuid"
    } else if name.contains(['\r', '\n']) {
        "contains a line break, which would break the message framing"
    } else {
        return Ok(());
    };
    Err(AddressError::BadName {
        name: excerpt(name),
        reason,
    })
}

impl fmt::Display for RawAddress {
    /// `<name>:<uuid>`, exactly as on the wire.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{DEFAULT_SEPARATOR}{}", self.name, self.uid)
    }
}

impl FromStr for RawAddress {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Self, AddressError> {
        Self::parse(text)
    }
}

impl TryFrom<&Address> for RawAddress {
    type Error = AddressError;

    /// Checks a generic address against the raw rules (separator `:`, two fields).
    fn try_from(address: &Address) -> Result<Self, AddressError> {
        Self::parse(&address.to_string())
    }
}

impl From<&RawAddress> for Address {
    fn from(address: &RawAddress) -> Self {
        address.to_address()
    }
}

impl Serialize for RawAddress {
    /// As its wire text `<name>:<uuid>`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RawAddress {
    /// From wire text, validated like [`RawAddress::parse`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "c1d2e3f4-a5b6-4c7d-8e9f-a0b1c2d3e4f5";

    #[test]
    fn generic_address_parses_and_formats_with_default_separator() {
        let address = Address::parse("a:b:c");
        assert_eq!(address.fields(), ["a", "b", "c"]);
        assert_eq!(address.separator(), ":");
        assert_eq!(address.to_string(), "a:b:c");
        assert_eq!(Address::parse("").fields(), [""]);
    }

    #[test]
    fn generic_address_with_custom_separator() {
        let address = Address::with_separator(["x", "y"], "->").unwrap();
        assert_eq!(address.to_string(), "x->y");
        assert_eq!(Address::parse_with("x->y", "->").unwrap(), address);
        // Same fields, other separator: a different address.
        assert_ne!(Address::new(["x", "y"]).unwrap(), address);
    }

    #[test]
    fn generic_address_rejects_bad_construction() {
        assert_eq!(
            Address::with_separator(["a"], ""),
            Err(AddressError::EmptySeparator)
        );
        assert_eq!(
            Address::parse_with("a", ""),
            Err(AddressError::EmptySeparator)
        );
        assert_eq!(
            Address::new(Vec::<String>::new()),
            Err(AddressError::NoFields)
        );
        assert_eq!(
            Address::with_separator(["a;b"], ";"),
            Err(AddressError::FieldContainsSeparator {
                field: "a;b".into(),
                separator: ";".into()
            })
        );
    }

    #[test]
    fn raw_address_round_trips() {
        let text = format!("Service Manager:{UID}");
        let address = RawAddress::parse(&text).unwrap();
        assert_eq!(address.name(), "Service Manager");
        assert_eq!(address.uid().to_string(), UID);
        assert_eq!(address.to_string(), text);
        assert_eq!(address.to_address(), Address::parse(&text));
        assert_eq!(
            RawAddress::try_from(&Address::parse(&text)).unwrap(),
            address
        );
    }

    #[test]
    fn raw_address_allows_an_empty_name_like_the_old_system() {
        assert_eq!(RawAddress::parse(&format!(":{UID}")).unwrap().name(), "");
    }

    #[test]
    fn raw_address_rejects_wrong_field_counts() {
        for (text, found) in [("", 1), ("Service Manager", 1), ("a:b:c", 3)] {
            assert_eq!(
                RawAddress::parse(text),
                Err(AddressError::WrongFieldCount {
                    address: text.into(),
                    found
                })
            );
        }
        let three = format!("a:b:{UID}");
        assert!(matches!(
            RawAddress::parse(&three),
            Err(AddressError::WrongFieldCount { found: 3, .. })
        ));
    }

    #[test]
    fn raw_address_rejects_bad_uuid_with_reason() {
        let err = RawAddress::parse("Service:not-a-uuid").unwrap_err();
        assert!(matches!(err, AddressError::BadUid { .. }), "{err:?}");
        assert!(err.to_string().contains("bad UUID"), "{err}");
        let upper = format!("Service:{}", UID.to_uppercase());
        assert!(matches!(
            RawAddress::parse(&upper),
            Err(AddressError::BadUid {
                reason: UidError::NotCanonical { .. },
                ..
            })
        ));
    }

    #[test]
    fn raw_address_rejects_line_breaks_in_names() {
        let uid = Uid::parse(UID).unwrap();
        assert!(matches!(
            RawAddress::new("a\r\nb", uid),
            Err(AddressError::BadName { .. })
        ));
        assert!(matches!(
            RawAddress::parse(&format!("a\nb:{UID}")),
            Err(AddressError::BadName { .. })
        ));
    }

    #[test]
    fn raw_address_serde_is_the_wire_text() {
        let address = RawAddress::parse(&format!("Service 1:{UID}")).unwrap();
        let json = serde_json::to_string(&address).unwrap();
        assert_eq!(json, format!("\"Service 1:{UID}\""));
        assert_eq!(serde_json::from_str::<RawAddress>(&json).unwrap(), address);
        assert!(serde_json::from_str::<RawAddress>("\"no uuid\"").is_err());
    }
}

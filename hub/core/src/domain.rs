//! Identifiers and value types shared by every rule: sites, SKUs, batches, time.
//!
//! Constructors validate; once a value exists it is well formed, so rules never re-check.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Milliseconds since the Unix epoch, UTC. The core never reads a clock: callers pass this in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// The instant `ms` milliseconds later.
    pub fn plus_millis(self, ms: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }

    /// RFC 3339 text, for people and payloads.
    pub fn to_rfc3339(self) -> String {
        chrono::DateTime::from_timestamp_millis(self.0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_else(|| format!("@{}ms", self.0))
    }
}

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{what} '{value}' is longer than {max} characters")]
    TooLong {
        what: &'static str,
        value: String,
        max: usize,
    },
    #[error("{what} '{value}' contains '{bad}'; only letters, digits and - _ . / : are allowed")]
    BadChar {
        what: &'static str,
        value: String,
        bad: char,
    },
}

fn check_id(what: &'static str, value: &str, max: usize) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { what });
    }
    if value.chars().count() > max {
        return Err(IdError::TooLong {
            what,
            value: value.to_owned(),
            max,
        });
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':')))
    {
        return Err(IdError::BadChar {
            what,
            value: value.to_owned(),
            bad,
        });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an identifier.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                check_id($what, &value, $max)?;
                Ok(Self(value))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}

id_type!(
    /// A site (one front warehouse or pickup point), e.g. `sh-pudong-017`.
    SiteId, "site id", 64
);
id_type!(
    /// A stock-keeping unit code from the central master data, e.g. `ORANGE-5KG`.
    SkuCode, "SKU code", 64
);
id_type!(
    /// A unique movement id; the same id applied twice is applied once.
    MovementId, "movement id", 128
);

/// A batch (lot) of one SKU, identified by its lot code; the expiry travels with it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BatchKey {
    /// Supplier's lot / batch code.
    pub lot: String,
    /// Last day the goods may be handed over, if the batch has one.
    pub expiry: Option<chrono::NaiveDate>,
}

impl BatchKey {
    /// A batch with a lot code and an optional expiry date.
    pub fn new(lot: impl Into<String>, expiry: Option<chrono::NaiveDate>) -> Result<Self, IdError> {
        let lot = lot.into();
        check_id("lot code", &lot, 64)?;
        Ok(Self { lot, expiry })
    }
}

/// The unit an SKU is counted in. Quantities are integers in this unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StockUnit {
    /// Whole items (a box, a bag, a bottle).
    Piece,
    /// Grams, for produce sold by weight.
    Gram,
}

impl StockUnit {
    /// Short name used in tables.
    pub fn symbol(self) -> &'static str {
        match self {
            StockUnit::Piece => "pc",
            StockUnit::Gram => "g",
        }
    }
}

/// A GTIN in the one form the hub stores and compares: GTIN-14, zero-padded on the left, its
/// GS1 check digit verified. The EAN-8, UPC-A (12 digits), EAN-13 and GTIN-14 of one product
/// are the same `Gtin`, so master data in one form matches a scan in another.
///
/// The rule itself (lengths, padding, check digit) is `firmware_shim::codes::gs1::gtin14`; this
/// type is where the hub applies it, once, to everything that carries a GTIN.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Gtin(String);

/// Why a text is not a GTIN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{value}' is not a GTIN: {reason} (a GTIN has 8, 12, 13 or 14 digits, the last one its GS1 check digit)"
)]
pub struct GtinError {
    pub value: String,
    pub reason: String,
}

impl Gtin {
    /// Normalises a GTIN-8/12/13/14 (surrounding spaces ignored) to its GTIN-14 form.
    pub fn parse(text: &str) -> Result<Gtin, GtinError> {
        use firmware_shim::codes::gs1::{Gs1Error, gtin14};
        let digits = text.trim();
        let fail = |reason: String| GtinError {
            value: text.to_owned(),
            reason,
        };
        if let Some(bad) = digits.chars().find(|c| !c.is_ascii_digit()) {
            return Err(fail(format!("it contains '{bad}'")));
        }
        if !matches!(digits.len(), 8 | 12 | 13 | 14) {
            return Err(fail(format!("it has {} digits", digits.len())));
        }
        match gtin14(digits.as_bytes()) {
            Ok(full) => Ok(Gtin(full.iter().map(|&b| char::from(b)).collect())),
            Err(Gs1Error::BadCheckDigit {
                expected, found, ..
            }) => Err(fail(format!(
                "its check digit is {found}, the GS1 check digit of the others is {expected}"
            ))),
            Err(e) => Err(fail(e.to_string())),
        }
    }

    /// The 14 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Gtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Gtin {
    type Err = GtinError;
    fn from_str(text: &str) -> Result<Gtin, GtinError> {
        Gtin::parse(text)
    }
}

impl TryFrom<String> for Gtin {
    type Error = GtinError;
    fn try_from(value: String) -> Result<Gtin, GtinError> {
        Gtin::parse(&value)
    }
}

impl From<Gtin> for String {
    fn from(value: Gtin) -> String {
        value.0
    }
}

/// SKU master data as the central system sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sku {
    pub code: SkuCode,
    pub name: String,
    pub unit: StockUnit,
    /// GTINs printed on this SKU's items (used to check scanned codes), as GTIN-14: master data
    /// may send any of GTIN-8/12/13/14; an invalid one refuses the whole SKU.
    #[serde(default)]
    pub gtins: Vec<Gtin>,
    /// Whether stock of this SKU may go below zero (e.g. sold before the delivery is booked).
    #[serde(default)]
    pub allow_negative: bool,
    /// Whether each item's trace code must be scanned when an order with this SKU is handed over.
    #[serde(default)]
    pub check_items_at_handover: bool,
    /// Master-data version; older versions never overwrite newer ones.
    #[serde(default)]
    pub version: i64,
}

impl Sku {
    /// A SKU with defaults: no GTINs, no negative stock, no item check, version 1.
    pub fn new(code: SkuCode, name: impl Into<String>, unit: StockUnit) -> Sku {
        Sku {
            code,
            name: name.into(),
            unit,
            gtins: vec![],
            allow_negative: false,
            check_items_at_handover: false,
            version: 1,
        }
    }
}

/// Lower-case hex SHA-256 of `bytes`: the one content hash of the hub (photos, models, command
/// bodies).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_refuse_empty_long_and_odd_characters() {
        assert!(SkuCode::new("ORANGE-5KG").is_ok());
        assert_eq!(SkuCode::new(""), Err(IdError::Empty { what: "SKU code" }));
        assert!(matches!(
            SkuCode::new("a b"),
            Err(IdError::BadChar { bad: ' ', .. })
        ));
        assert!(matches!(
            SkuCode::new("x".repeat(65)),
            Err(IdError::TooLong { .. })
        ));
        assert!(SiteId::new("sh-pudong-017").is_ok());
    }

    #[test]
    fn gtins_of_every_length_become_one_gtin_14() {
        let g14 = Gtin::parse("06901234567892").unwrap();
        assert_eq!(Gtin::parse("6901234567892").unwrap(), g14);
        assert_eq!(Gtin::parse(" 6901234567892 ").unwrap(), g14);
        assert_eq!(g14.as_str(), "06901234567892");
        // UPC-A 036000291452 and EAN-8 96385074.
        assert_eq!(
            Gtin::parse("036000291452").unwrap().as_str(),
            "00036000291452"
        );
        assert_eq!(Gtin::parse("96385074").unwrap().as_str(), "00000096385074");
        let bad = Gtin::parse("6901234567891").unwrap_err();
        assert!(bad.to_string().contains("check digit is 1"), "{bad}");
        assert!(
            Gtin::parse("690123456789")
                .unwrap_err()
                .to_string()
                .contains("check digit")
        );
        assert!(
            Gtin::parse("12345678901")
                .unwrap_err()
                .reason
                .contains("11 digits")
        );
        assert!(
            Gtin::parse("69O1234567892")
                .unwrap_err()
                .reason
                .contains("'O'")
        );
        // Master data carries GTINs as text (serde goes through `TryFrom<String>`).
        assert_eq!(Gtin::try_from("6901234567892".to_owned()), Ok(g14));
    }

    #[test]
    fn timestamps_format_as_rfc3339() {
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Timestamp(1_000).plus_millis(500), Timestamp(1_500));
    }
}

//! Trace-code classification for a scan: GS1 serialised item (GTIN + serial), SSCC, other GS1
//! data, GTINs from EAN/UPC symbols, the Chinese 20-digit drug trace code, in-store scale
//! labels, site-configured patterns, or opaque data kept verbatim.
//!
//! Site patterns use a tiny language, `name:prefix:charset:length[:check]`, e.g.
//! `sc-licence:SC:N:14` or `vet-drug::N:24` or `id::N:18:mod11`. Classification is pure: it must
//! not allocate, call out for online validation (the CN drug code's check digits are secret),
//! or keep state.

use core::fmt;

use super::check::{gs1_check_digit, luhn_check_digit, mod11_2_check_char};
use super::digital_link::{self, DlError};
use super::gs1::{self, ElementString, Gs1Error};
use crate::wire::scanner::{Scan, Symbology};

/// Character classes for site patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// `N`: digits.
    Digits,
    /// `A`: digits and uppercase letters.
    UpperAlnum,
    /// `X`: GS1 CSET 82.
    Cset82,
}

/// Check-character algorithms for site patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    /// No check character.
    None,
    /// `mod10`: GS1 mod-10 (weights 3,1 from the right) over the digits after the prefix.
    Gs1Mod10,
    /// `luhn`: Luhn mod-10.
    Luhn,
    /// `mod11`: ISO/IEC 7064 MOD 11-2 (last character `0`–`9` or `X`).
    Mod11_2,
}

/// A site-configured trace-code pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SitePattern<'p> {
    /// Name reported on a match.
    pub name: &'p str,
    /// Literal prefix (may be empty).
    pub prefix: &'p str,
    /// Character class of the part after the prefix.
    pub charset: Charset,
    /// Minimum length of the part after the prefix.
    pub min_len: u8,
    /// Maximum length of the part after the prefix.
    pub max_len: u8,
    /// Check character in the last position.
    pub check: CheckKind,
}

/// Why a site pattern specification was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternError {
    /// Not `name:prefix:charset:length[:check]`.
    Shape,
    /// The name is empty.
    EmptyName,
    /// The charset is not `N`, `A` or `X`.
    BadCharset,
    /// The length is not `n` or `min-max` within 1–255 with min ≤ max.
    BadLength,
    /// The check is not `none`, `mod10`, `luhn` or `mod11`.
    BadCheck,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Shape => "pattern must be name:prefix:charset:length[:check]",
            Self::EmptyName => "pattern name is empty",
            Self::BadCharset => "charset must be N, A or X",
            Self::BadLength => "length must be n or min-max (1-255)",
            Self::BadCheck => "check must be none, mod10, luhn or mod11",
        })
    }
}

impl core::error::Error for PatternError {}

/// Result of testing data against a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternMatch {
    /// Prefix, length or charset differ.
    NoMatch,
    /// Everything matches.
    Match,
    /// Shape matches but the check character is wrong.
    BadCheck {
        /// Computed check character.
        expected: u8,
        /// Character found.
        found: u8,
    },
}

impl<'p> SitePattern<'p> {
    /// Parses `name:prefix:charset:length[:check]`.
    pub fn parse(spec: &'p str) -> Result<SitePattern<'p>, PatternError> {
        let mut parts = spec.split(':');
        let (Some(name), Some(prefix), Some(charset), Some(length)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(PatternError::Shape);
        };
        let check = parts.next();
        if parts.next().is_some() {
            return Err(PatternError::Shape);
        }
        if name.is_empty() {
            return Err(PatternError::EmptyName);
        }
        let charset = match charset {
            "N" => Charset::Digits,
            "A" => Charset::UpperAlnum,
            "X" => Charset::Cset82,
            _ => return Err(PatternError::BadCharset),
        };
        let parse_len = |s: &str| s.parse::<u8>().ok().filter(|n| *n > 0);
        let (min_len, max_len) = match length.split_once('-') {
            Some((a, b)) => (parse_len(a), parse_len(b)),
            None => (parse_len(length), parse_len(length)),
        };
        let (Some(min_len), Some(max_len)) = (min_len, max_len) else {
            return Err(PatternError::BadLength);
        };
        if min_len > max_len {
            return Err(PatternError::BadLength);
        }
        let check = match check {
            None | Some("none") => CheckKind::None,
            Some("mod10") => CheckKind::Gs1Mod10,
            Some("luhn") => CheckKind::Luhn,
            Some("mod11") => CheckKind::Mod11_2,
            Some(_) => return Err(PatternError::BadCheck),
        };
        Ok(SitePattern {
            name,
            prefix,
            charset,
            min_len,
            max_len,
            check,
        })
    }

    /// Tests `data` against the pattern.
    pub fn test(&self, data: &[u8]) -> PatternMatch {
        let Some(body) = data.strip_prefix(self.prefix.as_bytes()) else {
            return PatternMatch::NoMatch;
        };
        if body.len() < usize::from(self.min_len) || body.len() > usize::from(self.max_len) {
            return PatternMatch::NoMatch;
        }
        let (&last, rest) = match body.split_last() {
            Some(x) => x,
            None => return PatternMatch::NoMatch,
        };
        let in_set = |b: u8| match self.charset {
            Charset::Digits => b.is_ascii_digit(),
            Charset::UpperAlnum => b.is_ascii_digit() || b.is_ascii_uppercase(),
            Charset::Cset82 => gs1::Cset::Cset82.contains(b),
        };
        let last_ok = in_set(last) || (self.check == CheckKind::Mod11_2 && last == b'X');
        if !rest.iter().all(|&b| in_set(b)) || !last_ok {
            return PatternMatch::NoMatch;
        }
        let expected = match self.check {
            CheckKind::None => return PatternMatch::Match,
            CheckKind::Gs1Mod10 => gs1_check_digit(rest).map(|d| b'0' + d),
            CheckKind::Luhn => luhn_check_digit(rest).map(|d| b'0' + d),
            CheckKind::Mod11_2 => mod11_2_check_char(rest),
        };
        match expected {
            Some(e) if e == last => PatternMatch::Match,
            Some(e) => PatternMatch::BadCheck {
                expected: e,
                found: last,
            },
            None => PatternMatch::NoMatch,
        }
    }
}

/// The Chinese 20-digit drug trace code (药品追溯码, former 电子监管码): `8` + 19 digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CnDrugCode<'a>(&'a str);

impl<'a> CnDrugCode<'a> {
    /// Accepts exactly `^8\d{19}$`. The last four digits are a proprietary check that can only
    /// be verified online, so only the syntax is checked here.
    pub fn parse(data: &'a [u8]) -> Option<CnDrugCode<'a>> {
        if data.len() == 20 && data[0] == b'8' && data.iter().all(u8::is_ascii_digit) {
            core::str::from_utf8(data).ok().map(CnDrugCode)
        } else {
            None
        }
    }

    /// All 20 digits.
    pub fn as_str(&self) -> &'a str {
        self.0
    }

    /// Digits 1–7: product resource code.
    pub fn product_code(&self) -> &'a str {
        &self.0[..7]
    }

    /// Digits 8–16: unit serial number.
    pub fn serial(&self) -> &'a str {
        &self.0[7..16]
    }

    /// Digits 17–20: check digits (not verifiable offline).
    pub fn check(&self) -> &'a str {
        &self.0[16..]
    }
}

/// What a scan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceCode<'a> {
    /// GS1 data with GTIN (01) and serial (21): a serialised trade item.
    Gs1Item {
        /// GTIN-14.
        gtin: &'a str,
        /// Serial number.
        serial: &'a str,
        /// All elements.
        elements: ElementString<'a>,
    },
    /// GS1 data with an SSCC (00): a logistic unit.
    Sscc {
        /// SSCC-18.
        sscc: &'a str,
        /// All elements.
        elements: ElementString<'a>,
    },
    /// Other valid GS1 data (e.g. GTIN and batch, no serial).
    Gs1Other {
        /// All elements.
        elements: ElementString<'a>,
    },
    /// A GTIN-8/12/13/14 from a linear EAN/UPC symbol, check digit verified.
    Gtin {
        /// The digits as scanned.
        digits: &'a str,
    },
    /// The Chinese 20-digit drug trace code.
    CnDrug(CnDrugCode<'a>),
    /// An in-store scale label: 13 or 18 digits starting with `2`, check digit verified.
    ScaleLabel {
        /// The digits.
        digits: &'a str,
    },
    /// Matched a site pattern.
    Site {
        /// Index of the pattern in the list given to [`classify`].
        pattern: usize,
        /// The pattern's name.
        name: &'a str,
        /// The code.
        code: &'a [u8],
    },
    /// Anything else, to be stored verbatim.
    Opaque {
        /// The scanned data.
        data: &'a [u8],
    },
}

/// Why a scan was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceError<'a> {
    /// Nothing was scanned.
    Empty,
    /// The symbology says GS1 but the data is not valid GS1.
    Gs1(Gs1Error),
    /// A GS1 Digital Link URI with invalid content.
    DigitalLink(DlError),
    /// An EAN/UPC or scale label whose check digit is wrong.
    BadCheckDigit {
        /// Computed digit.
        expected: u8,
        /// Digit found.
        found: u8,
    },
    /// A site pattern's shape matched but its check character is wrong.
    SitePatternCheck {
        /// The pattern's name.
        name: &'a str,
        /// Computed character.
        expected: u8,
        /// Character found.
        found: u8,
    },
}

impl fmt::Display for TraceError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty scan"),
            Self::Gs1(e) => write!(f, "invalid GS1 data: {e}"),
            Self::DigitalLink(e) => write!(f, "invalid GS1 Digital Link: {e}"),
            Self::BadCheckDigit { expected, found } => {
                write!(f, "bad check digit {found}, expected {expected}")
            }
            Self::SitePatternCheck {
                name,
                expected,
                found,
            } => write!(
                f,
                "pattern {name}: check character '{}', expected '{}'",
                char::from(*found),
                char::from(*expected)
            ),
        }
    }
}

impl core::error::Error for TraceError<'_> {}

fn from_gs1(elements: ElementString<'_>) -> TraceCode<'_> {
    if let (Some(gtin), Some(serial)) = (elements.gtin(), elements.serial()) {
        TraceCode::Gs1Item {
            gtin,
            serial,
            elements,
        }
    } else if let Some(sscc) = elements.sscc() {
        TraceCode::Sscc { sscc, elements }
    } else {
        TraceCode::Gs1Other { elements }
    }
}

fn check_digit_error(digits: &[u8]) -> Option<TraceError<'static>> {
    let (&last, body) = digits.split_last()?;
    let expected = gs1_check_digit(body)?;
    (last.wrapping_sub(b'0') != expected).then_some(TraceError::BadCheckDigit {
        expected,
        found: last.wrapping_sub(b'0'),
    })
}

/// Classifies one scan.
///
/// Order: GS1 AIM identifier → GS1 parser; `http(s)://` → Digital Link (a URL without a GS1
/// key is opaque); site patterns (first match wins; a pattern whose check character fails
/// rejects the scan only if nothing below claims it); CN 20-digit drug code; EAN/UPC (by AIM, or
/// plain 8/12/13/14 digits with a valid check digit); scale labels; un-flagged GS1 data that
/// parses with a GTIN or SSCC; otherwise opaque. `scratch` holds decoded Digital Link values
/// (256 bytes is plenty for real URIs).
pub fn classify<'a>(
    scan: &Scan<'a>,
    patterns: &[SitePattern<'a>],
    scratch: &'a mut [u8],
) -> Result<TraceCode<'a>, TraceError<'a>> {
    let data = scan.data;
    if data.is_empty() {
        return Err(TraceError::Empty);
    }
    if let Some(aim) = scan.aim {
        if aim.is_gs1() {
            return gs1::parse_elements(data, Some(aim))
                .map(from_gs1)
                .map_err(TraceError::Gs1);
        }
    }
    let lower_starts = |p: &[u8]| data.len() >= p.len() && data[..p.len()].eq_ignore_ascii_case(p);
    if lower_starts(b"http://") || lower_starts(b"https://") {
        return match digital_link::parse(data, scratch) {
            Ok(elements) => Ok(from_gs1(elements)),
            Err(DlError::NoPrimaryKey | DlError::TrailingSlash | DlError::NoDomain) => {
                Ok(TraceCode::Opaque { data })
            }
            Err(e) => Err(TraceError::DigitalLink(e)),
        };
    }
    // A pattern whose shape matches but whose check fails rejects the scan only if no other
    // class claims it.
    let mut pattern_failure = None;
    for (i, p) in patterns.iter().enumerate() {
        match p.test(data) {
            PatternMatch::NoMatch => {}
            PatternMatch::Match => {
                return Ok(TraceCode::Site {
                    pattern: i,
                    name: p.name,
                    code: data,
                });
            }
            PatternMatch::BadCheck { expected, found } => {
                pattern_failure.get_or_insert(TraceError::SitePatternCheck {
                    name: p.name,
                    expected,
                    found,
                });
            }
        }
    }
    if let Some(code) = CnDrugCode::parse(data) {
        return Ok(TraceCode::CnDrug(code));
    }
    let all_digits = data.iter().all(u8::is_ascii_digit);
    let text = core::str::from_utf8(data).unwrap_or("");
    let ean_symbol = scan
        .aim
        .is_some_and(|a| matches!(a.symbology(), Symbology::Ean13 | Symbology::Ean8));
    if all_digits && matches!(data.len(), 13 | 18) && data[0] == b'2' {
        return match check_digit_error(data) {
            None => Ok(TraceCode::ScaleLabel { digits: text }),
            Some(e) => Err(e),
        };
    }
    if all_digits && matches!(data.len(), 8 | 12 | 13 | 14) {
        match check_digit_error(data) {
            None => return Ok(TraceCode::Gtin { digits: text }),
            Some(e) if ean_symbol => return Err(e),
            Some(_) => {}
        }
    }
    if scan.aim.is_none() {
        if let Ok(elements) = gs1::parse_elements(data, None) {
            if elements.gtin().is_some() || elements.sscc().is_some() {
                return Ok(from_gs1(elements));
            }
        }
    }
    match pattern_failure {
        Some(e) => Err(e),
        None => Ok(TraceCode::Opaque { data }),
    }
}

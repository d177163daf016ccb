//! GS1 Application Identifier element strings (`]C1`, `]d2`, `]Q3`, `]e0`, `]J1` data).
//!
//! The AI table is generated at build time from GS1's Barcode Syntax Dictionary (see
//! `data/PROVENANCE.md`): lengths, pre-defined-length flags, character sets (N, CSET 82, CSET 39,
//! CSET 64) and the linters this module implements (check digits, YYMMDD with DD=00, times…).
//! Parsing borrows from the input and keeps at most [`MAX_ELEMENTS`] elements. This module must
//! not allocate, read a clock or know about scanners' framing.

use core::fmt;

use super::check::gs1_check_digit;
use crate::wire::scanner::AimId;
use crate::wire::{BufferFull, ByteWriter};

/// Most elements one element string may carry.
pub const MAX_ELEMENTS: usize = 16;
/// FNC1 as transmitted over a serial link: ASCII GS.
pub const GS: u8 = 0x1D;

/// Character set of an AI component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cset {
    /// Digits.
    Numeric,
    /// GS1 CSET 82 (`X`).
    Cset82,
    /// GS1 CSET 39 (`Y`).
    Cset39,
    /// GS1 CSET 64, base64url (`Z`).
    Cset64,
}

impl Cset {
    /// True when `b` belongs to the set.
    pub fn contains(self, b: u8) -> bool {
        match self {
            Cset::Numeric => b.is_ascii_digit(),
            Cset::Cset82 => {
                b.is_ascii_alphanumeric()
                    || matches!(
                        b,
                        b'!' | b'"'
                            | b'%'
                            | b'&'
                            | b'\''
                            | b'('
                            | b')'
                            | b'*'
                            | b'+'
                            | b','
                            | b'-'
                            | b'.'
                            | b'/'
                            | b':'
                            | b';'
                            | b'<'
                            | b'='
                            | b'>'
                            | b'?'
                            | b'_'
                    )
            }
            Cset::Cset39 => {
                b.is_ascii_digit() || b.is_ascii_uppercase() || matches!(b, b'#' | b'-' | b'/')
            }
            Cset::Cset64 => b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'='),
        }
    }

    /// The dictionary's name for the set.
    pub fn name(self) -> &'static str {
        match self {
            Cset::Numeric => "N",
            Cset::Cset82 => "CSET 82",
            Cset::Cset39 => "CSET 39",
            Cset::Cset64 => "CSET 64",
        }
    }
}

/// A content check ("linter") from the dictionary that this module enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linter {
    /// GS1 mod-10 check digit in the last position.
    Csum,
    /// Date YYMMDD where DD may be 00 (end of month).
    Yymmd0,
    /// Date YYMMDD.
    Yymmdd,
    /// Date YYYYMMDD.
    Yyyymmdd,
    /// Time HHMI.
    Hhmi,
    /// Hour 00–23.
    Hh,
    /// Minute 00–59.
    Mi,
    /// Second 00–59.
    Ss,
    /// Must be `0`.
    Zero,
    /// Must not be all zeros.
    NonZero,
    /// `0` or `1`.
    YesNo,
    /// No leading zero (unless the value is `0`).
    NoZeroPrefix,
    /// Must contain a non-digit.
    HasNonDigit,
}

/// One component of an AI's value specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Component {
    /// Character set.
    pub cset: Cset,
    /// Minimum length.
    pub min: u8,
    /// Maximum length.
    pub max: u8,
    /// May be omitted when the data ends before it.
    pub optional: bool,
    /// Content checks.
    pub linters: &'static [Linter],
}

/// One AI from the syntax dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AiEntry {
    /// The AI digits.
    pub ai: &'static str,
    /// Pre-defined length: no FNC1 separator follows.
    pub predefined: bool,
    /// Allowed as a GS1 Digital Link data attribute (query parameter).
    pub dl_attribute: bool,
    /// Value specification.
    pub components: &'static [Component],
    /// GS1 Digital Link primary key, with its qualifier sequences (`22,10,21|235`).
    pub dl_primary_key: Option<&'static str>,
    /// Required associations, `;`-separated groups of `,`-separated alternatives of
    /// `+`-joined AIs or patterns (`n` = any digit).
    pub req: &'static str,
    /// Invalid pairings, `,`-separated AIs or patterns.
    pub ex: &'static str,
    /// Data title.
    pub title: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/gs1_ai_table.rs"));

impl AiEntry {
    /// Shortest allowed value.
    pub fn min_len(&self) -> usize {
        self.components
            .iter()
            .filter(|c| !c.optional)
            .map(|c| usize::from(c.min))
            .sum()
    }

    /// Longest allowed value.
    pub fn max_len(&self) -> usize {
        self.components.iter().map(|c| usize::from(c.max)).sum()
    }
}

/// Looks up an AI by its digits.
pub fn lookup(ai: &str) -> Option<&'static AiEntry> {
    AI_TABLE
        .binary_search_by(|e| e.ai.cmp(ai))
        .ok()
        .map(|i| &AI_TABLE[i])
}

/// Finds the AI at the start of `data` (AIs are 2–4 digits and prefix-free).
pub fn find_ai(data: &[u8]) -> Option<&'static AiEntry> {
    (2..=4).find_map(|n| {
        let head = data.get(..n)?;
        if !head.iter().all(u8::is_ascii_digit) {
            return None;
        }
        lookup(core::str::from_utf8(head).ok()?)
    })
}

/// An AI as it appeared in the data (up to 4 characters), for error reports.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ai {
    bytes: [u8; 4],
    len: u8,
}

impl Ai {
    /// The first up-to-4 bytes of `data` (non-ASCII bytes shown as `?`).
    pub fn from_bytes(data: &[u8]) -> Ai {
        let mut bytes = [0u8; 4];
        let len = data.len().min(4);
        for (d, s) in bytes.iter_mut().zip(&data[..len]) {
            *d = if s.is_ascii_graphic() { *s } else { b'?' };
        }
        Ai {
            bytes,
            len: len as u8,
        }
    }

    /// The AI text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("?")
    }
}

impl fmt::Debug for Ai {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ai({})", self.as_str())
    }
}

impl fmt::Display for Ai {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({})", self.as_str())
    }
}

/// Why an element string (or one value) was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gs1Error {
    /// Nothing after the symbology identifier.
    Empty,
    /// The AIM identifier says this is not GS1 data.
    NotGs1(AimId),
    /// The data at `offset` does not start with a known AI (`ai` shows up to 4 bytes there).
    UnknownAi {
        /// What was found.
        ai: Ai,
        /// Byte offset in the element data.
        offset: usize,
    },
    /// Two separators in a row, or a separator where an AI belongs.
    MisplacedSeparator {
        /// Byte offset in the element data.
        offset: usize,
    },
    /// The value is empty.
    EmptyValue(Ai),
    /// The value is shorter than the AI allows.
    TooShort {
        /// The AI.
        ai: Ai,
        /// Bytes present.
        len: usize,
        /// Bytes required.
        min: usize,
    },
    /// The value is longer than the AI allows (a missing separator often causes this).
    TooLong {
        /// The AI.
        ai: Ai,
        /// Bytes present.
        len: usize,
        /// Bytes allowed.
        max: usize,
    },
    /// A byte outside the component's character set.
    BadCharacter {
        /// The AI.
        ai: Ai,
        /// The byte.
        byte: u8,
        /// Position in the value.
        position: usize,
        /// The set it should belong to.
        cset: Cset,
    },
    /// The check digit does not match.
    BadCheckDigit {
        /// The AI.
        ai: Ai,
        /// Computed digit.
        expected: u8,
        /// Digit found.
        found: u8,
    },
    /// A month outside 01–12.
    BadMonth(Ai),
    /// A day outside the month (or 00 where not allowed).
    BadDay(Ai),
    /// An hour, minute or second out of range.
    BadTime(Ai),
    /// Another content check failed.
    LintFailed {
        /// The AI.
        ai: Ai,
        /// The check.
        linter: Linter,
    },
    /// More than [`MAX_ELEMENTS`] elements.
    TooManyElements,
    /// The same AI twice with different values.
    ConflictingDuplicate(Ai),
}

impl fmt::Display for Gs1Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("no GS1 data"),
            Self::NotGs1(aim) => write!(f, "symbology {aim} does not carry GS1 data"),
            Self::UnknownAi { ai, offset } => write!(f, "unknown AI {ai} at byte {offset}"),
            Self::MisplacedSeparator { offset } => write!(f, "misplaced FNC1/GS at byte {offset}"),
            Self::EmptyValue(ai) => write!(f, "AI {ai} has an empty value"),
            Self::TooShort { ai, len, min } => {
                write!(f, "AI {ai} too short: {len} characters, needs {min}")
            }
            Self::TooLong { ai, len, max } => {
                write!(f, "AI {ai} too long: {len} characters, at most {max}")
            }
            Self::BadCharacter {
                ai,
                byte,
                position,
                cset,
            } => write!(
                f,
                "AI {ai}: byte 0x{byte:02x} at position {position} is not in {}",
                cset.name()
            ),
            Self::BadCheckDigit {
                ai,
                expected,
                found,
            } => write!(f, "AI {ai}: bad check digit {found}, expected {expected}"),
            Self::BadMonth(ai) => write!(f, "AI {ai}: illegal month"),
            Self::BadDay(ai) => write!(f, "AI {ai}: illegal day"),
            Self::BadTime(ai) => write!(f, "AI {ai}: illegal time"),
            Self::LintFailed { ai, linter } => write!(f, "AI {ai}: fails {linter:?} check"),
            Self::TooManyElements => write!(f, "more than {MAX_ELEMENTS} elements"),
            Self::ConflictingDuplicate(ai) => write!(f, "AI {ai} repeated with another value"),
        }
    }
}

impl core::error::Error for Gs1Error {}

/// Two ASCII digits as a number; callers check the bytes are digits.
fn two(d: &[u8]) -> u8 {
    d[0].wrapping_sub(b'0')
        .wrapping_mul(10)
        .wrapping_add(d[1].wrapping_sub(b'0'))
}

fn days_in_month(month: u8, leap: bool) -> u8 {
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn lint(ai: Ai, linter: Linter, v: &[u8]) -> Result<(), Gs1Error> {
    let digits = v.iter().all(u8::is_ascii_digit);
    let fail = Gs1Error::LintFailed { ai, linter };
    match linter {
        Linter::Csum => {
            let (&last, body) = v.split_last().ok_or(fail)?;
            let expected = gs1_check_digit(body).ok_or(fail)?;
            if !last.is_ascii_digit() {
                return Err(fail);
            }
            if last - b'0' != expected {
                return Err(Gs1Error::BadCheckDigit {
                    ai,
                    expected,
                    found: last - b'0',
                });
            }
        }
        Linter::Yymmd0 | Linter::Yymmdd | Linter::Yyyymmdd => {
            let (year_len, zero_day) = match linter {
                Linter::Yyyymmdd => (4, false),
                Linter::Yymmd0 => (2, true),
                _ => (2, false),
            };
            if !digits || v.len() != year_len + 4 {
                return Err(fail);
            }
            let year = v[..year_len]
                .iter()
                .fold(0u32, |a, d| a * 10 + u32::from(d - b'0'));
            let month = two(&v[year_len..]);
            let day = two(&v[year_len + 2..]);
            if !(1..=12).contains(&month) {
                return Err(Gs1Error::BadMonth(ai));
            }
            // Two-digit years: the GS1 linters treat YY % 4 == 0 as a leap year.
            let leap = if year_len == 4 {
                year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
            } else {
                year % 4 == 0
            };
            if (day == 0 && !zero_day) || day > days_in_month(month, leap) {
                return Err(Gs1Error::BadDay(ai));
            }
        }
        Linter::Hhmi => {
            if !digits || v.len() != 4 || two(v) > 23 || two(&v[2..]) > 59 {
                return Err(Gs1Error::BadTime(ai));
            }
        }
        Linter::Hh => {
            if !digits || v.len() != 2 || two(v) > 23 {
                return Err(Gs1Error::BadTime(ai));
            }
        }
        Linter::Mi | Linter::Ss => {
            if !digits || v.len() != 2 || two(v) > 59 {
                return Err(Gs1Error::BadTime(ai));
            }
        }
        Linter::Zero => {
            if v != b"0" {
                return Err(fail);
            }
        }
        Linter::NonZero => {
            if v.iter().all(|&b| b == b'0') {
                return Err(fail);
            }
        }
        Linter::YesNo => {
            if v != b"0" && v != b"1" {
                return Err(fail);
            }
        }
        Linter::NoZeroPrefix => {
            if v.len() > 1 && v[0] == b'0' {
                return Err(fail);
            }
        }
        Linter::HasNonDigit => {
            if digits {
                return Err(fail);
            }
        }
    }
    Ok(())
}

/// Checks one value against its AI's components, character sets and linters.
pub fn validate_value(entry: &AiEntry, value: &[u8]) -> Result<(), Gs1Error> {
    let ai = Ai::from_bytes(entry.ai.as_bytes());
    if value.is_empty() {
        return Err(Gs1Error::EmptyValue(ai));
    }
    let max = entry.max_len();
    if value.len() > max {
        return Err(Gs1Error::TooLong {
            ai,
            len: value.len(),
            max,
        });
    }
    let mut pos = 0;
    for c in entry.components {
        let remaining = value.len() - pos;
        if remaining == 0 && c.optional {
            break;
        }
        if remaining < usize::from(c.min) {
            return Err(Gs1Error::TooShort {
                ai,
                len: value.len(),
                min: entry.min_len().max(pos + usize::from(c.min)),
            });
        }
        let take = remaining.min(usize::from(c.max));
        let part = &value[pos..pos + take];
        if let Some(i) = part.iter().position(|&b| !c.cset.contains(b)) {
            return Err(Gs1Error::BadCharacter {
                ai,
                byte: part[i],
                position: pos + i,
                cset: c.cset,
            });
        }
        for &l in c.linters {
            lint(ai, l, part)?;
        }
        pos += take;
    }
    if pos < value.len() {
        return Err(Gs1Error::TooLong {
            ai,
            len: value.len(),
            max,
        });
    }
    Ok(())
}

/// One AI and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element<'a> {
    /// The AI's dictionary entry.
    pub entry: &'static AiEntry,
    /// The value (validated, so always ASCII).
    pub value: &'a str,
}

impl<'a> Element<'a> {
    /// The AI digits.
    pub fn ai(&self) -> &'static str {
        self.entry.ai
    }

    /// For AIs whose last digit counts implied decimals (31nn–36nn, 392n, 393n…), the value as
    /// `(scaled, decimals)`; the currency prefix of 391n/393n is skipped.
    pub fn decimal(&self) -> Option<(i64, u8)> {
        let ai = self.entry.ai.as_bytes();
        if ai.len() != 4 {
            return None;
        }
        let decimals = ai[3] - b'0';
        let digits = match &ai[..3] {
            [b'3', b'1'..=b'6', _] | b"390" | b"392" => self.value,
            b"391" | b"393" => self.value.get(3..)?,
            _ => return None,
        };
        if digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let v = digits
            .bytes()
            .fold(0i64, |a, d| a * 10 + i64::from(d - b'0'));
        Some((v, decimals))
    }

    /// For YYMMDD dates, the date with its century chosen by GS1's sliding window around
    /// `current_year` (4 digits). Day 0 means the end of the month.
    pub fn date(&self, current_year: u16) -> Option<Gs1Date> {
        let v = self.value.as_bytes();
        let is_date = self.entry.components.first().is_some_and(|c| {
            c.linters
                .iter()
                .any(|l| matches!(l, Linter::Yymmd0 | Linter::Yymmdd))
        });
        if !is_date || v.len() < 6 || !v[..6].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let yy = i32::from(two(v));
        let current = i32::from(current_year);
        let cur_yy = current % 100;
        let century = current - cur_yy;
        let diff = yy - cur_yy;
        let year = if diff >= 51 {
            century - 100 + yy
        } else if diff > -50 {
            century + yy
        } else {
            century + 100 + yy
        };
        Some(Gs1Date {
            year: year as u16,
            month: two(&v[2..]),
            day: two(&v[4..]),
        })
    }
}

/// A calendar date read from a GS1 YYMMDD field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gs1Date {
    /// Four-digit year.
    pub year: u16,
    /// Month 1–12.
    pub month: u8,
    /// Day 1–31, or 0 for "end of month".
    pub day: u8,
}

/// A parsed element string: up to [`MAX_ELEMENTS`] elements in input order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElementString<'a> {
    /// The AIM identifier the data came with, if any.
    pub aim: Option<AimId>,
    elements: [Option<Element<'a>>; MAX_ELEMENTS],
    len: usize,
}

/// An association rule (`req=` / `ex=`) from the dictionary that the data breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssociationError {
    /// `ai` requires one of the AIs in `rule`, none of which is present.
    MissingRequired {
        /// The AI with the requirement.
        ai: &'static str,
        /// The requirement as written in the dictionary.
        rule: &'static str,
    },
    /// `ai` must not appear together with `other`.
    Excluded {
        /// The AI with the exclusion.
        ai: &'static str,
        /// The AI it excludes.
        other: &'static str,
    },
}

impl fmt::Display for AssociationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingRequired { ai, rule } => {
                write!(f, "AI ({ai}) requires one of {rule}")
            }
            Self::Excluded { ai, other } => write!(f, "AI ({ai}) must not appear with ({other})"),
        }
    }
}

impl core::error::Error for AssociationError {}

fn pattern_matches(pattern: &str, ai: &str) -> bool {
    pattern.len() == ai.len()
        && pattern
            .bytes()
            .zip(ai.bytes())
            .all(|(p, a)| p == a || (p == b'n' && a.is_ascii_digit()))
}

impl<'a> ElementString<'a> {
    /// An empty element string.
    pub const fn new(aim: Option<AimId>) -> Self {
        Self {
            aim,
            elements: [None; MAX_ELEMENTS],
            len: 0,
        }
    }

    /// Appends an element (its value must already be validated).
    pub fn push(&mut self, element: Element<'a>) -> Result<(), Gs1Error> {
        let ai = Ai::from_bytes(element.entry.ai.as_bytes());
        if let Some(existing) = self.get(element.entry.ai) {
            return if existing == element.value {
                Ok(())
            } else {
                Err(Gs1Error::ConflictingDuplicate(ai))
            };
        }
        let slot = self
            .elements
            .get_mut(self.len)
            .ok_or(Gs1Error::TooManyElements)?;
        *slot = Some(element);
        self.len += 1;
        Ok(())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The elements in order.
    pub fn iter(&self) -> impl Iterator<Item = Element<'a>> + '_ {
        self.elements[..self.len].iter().flatten().copied()
    }

    /// The value of `ai`, if present.
    pub fn get(&self, ai: &str) -> Option<&'a str> {
        self.iter().find(|e| e.entry.ai == ai).map(|e| e.value)
    }

    /// GTIN (AI 01).
    pub fn gtin(&self) -> Option<&'a str> {
        self.get("01")
    }

    /// Serial number (AI 21).
    pub fn serial(&self) -> Option<&'a str> {
        self.get("21")
    }

    /// SSCC (AI 00).
    pub fn sscc(&self) -> Option<&'a str> {
        self.get("00")
    }

    /// Checks the dictionary's `req=` and `ex=` rules across all elements.
    pub fn check_associations(&self) -> Result<(), AssociationError> {
        let present = |pattern: &str| self.iter().any(|e| pattern_matches(pattern, e.entry.ai));
        for e in self.iter() {
            for rule in e.entry.req.split(';').filter(|r| !r.is_empty()) {
                let ok = rule.split(',').any(|group| group.split('+').all(&present));
                if !ok {
                    return Err(AssociationError::MissingRequired {
                        ai: e.entry.ai,
                        rule,
                    });
                }
            }
            for pattern in e.entry.ex.split(',').filter(|p| !p.is_empty()) {
                if let Some(other) = self
                    .iter()
                    .find(|o| o.entry.ai != e.entry.ai && pattern_matches(pattern, o.entry.ai))
                {
                    return Err(AssociationError::Excluded {
                        ai: e.entry.ai,
                        other: other.entry.ai,
                    });
                }
            }
        }
        Ok(())
    }

    /// Writes the element string with GS only where needed (after variable-length elements
    /// that are not last), without a symbology identifier. Returns the number of bytes.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, BufferFull> {
        let mut w = ByteWriter::new(out);
        let mut need_gs = false;
        for e in self.iter() {
            if need_gs {
                w.push(GS)?;
            }
            w.extend(e.entry.ai.as_bytes())?;
            w.extend(e.value.as_bytes())?;
            need_gs = !e.entry.predefined;
        }
        Ok(w.len())
    }

    /// Writes the human-readable form, e.g. `(01)09521234543213(10)ABC123`.
    pub fn write_bracketed(&self, out: &mut [u8]) -> Result<usize, BufferFull> {
        let mut w = ByteWriter::new(out);
        for e in self.iter() {
            w.push(b'(')?;
            w.extend(e.entry.ai.as_bytes())?;
            w.push(b')')?;
            w.extend(e.value.as_bytes())?;
        }
        Ok(w.len())
    }
}

/// Parses scanned GS1 data: an optional AIM identifier (which must be a GS1 one), then AI
/// element strings separated by GS where the AI is not of pre-defined length. A leading or
/// trailing GS is tolerated.
pub fn parse(data: &[u8]) -> Result<ElementString<'_>, Gs1Error> {
    match AimId::split(data) {
        Some((aim, rest)) if aim.is_gs1() => parse_elements(rest, Some(aim)),
        Some((aim, _)) => Err(Gs1Error::NotGs1(aim)),
        None => parse_elements(data, None),
    }
}

/// Parses AI element strings without a symbology identifier.
pub fn parse_elements(data: &[u8], aim: Option<AimId>) -> Result<ElementString<'_>, Gs1Error> {
    let mut out = ElementString::new(aim);
    let mut pos = 0;
    if data.first() == Some(&GS) {
        pos = 1;
    }
    if pos >= data.len() {
        return Err(Gs1Error::Empty);
    }
    while pos < data.len() {
        if data[pos] == GS {
            return Err(Gs1Error::MisplacedSeparator { offset: pos });
        }
        let entry = find_ai(&data[pos..]).ok_or(Gs1Error::UnknownAi {
            ai: Ai::from_bytes(&data[pos..]),
            offset: pos,
        })?;
        let ai = Ai::from_bytes(entry.ai.as_bytes());
        let start = pos + entry.ai.len();
        let field_end = data[start..]
            .iter()
            .position(|&b| b == GS)
            .map_or(data.len(), |i| start + i);
        let end = if entry.predefined {
            let len = entry.max_len();
            if field_end - start < len {
                return Err(if field_end == start {
                    Gs1Error::EmptyValue(ai)
                } else {
                    Gs1Error::TooShort {
                        ai,
                        len: field_end - start,
                        min: len,
                    }
                });
            }
            start + len
        } else {
            field_end
        };
        let value = &data[start..end];
        validate_value(entry, value)?;
        let value = core::str::from_utf8(value).map_err(|_| Gs1Error::EmptyValue(ai))?;
        out.push(Element { entry, value })?;
        pos = end;
        if data.get(pos) == Some(&GS) {
            pos += 1;
        }
    }
    Ok(out)
}

/// Parses the human-readable bracketed form, e.g. `(01)12345678901231(10)12345`.
///
/// Values borrow from `text`. A `(` always starts the next AI, so values that contain a
/// literal `(` (escaped as `\(` in GS1 tools) are rejected as bad characters.
pub fn parse_bracketed(text: &[u8]) -> Result<ElementString<'_>, Gs1Error> {
    let mut out = ElementString::new(None);
    if text.is_empty() {
        return Err(Gs1Error::Empty);
    }
    let mut pos = 0;
    while pos < text.len() {
        if text[pos] != b'(' {
            return Err(Gs1Error::UnknownAi {
                ai: Ai::from_bytes(&text[pos..]),
                offset: pos,
            });
        }
        let close = text[pos..]
            .iter()
            .position(|&b| b == b')')
            .map(|i| pos + i)
            .ok_or(Gs1Error::UnknownAi {
                ai: Ai::from_bytes(&text[pos + 1..]),
                offset: pos,
            })?;
        let ai_text = &text[pos + 1..close];
        let entry = core::str::from_utf8(ai_text)
            .ok()
            .filter(|a| a.bytes().all(|b| b.is_ascii_digit()))
            .and_then(lookup)
            .ok_or(Gs1Error::UnknownAi {
                ai: Ai::from_bytes(ai_text),
                offset: pos + 1,
            })?;
        let start = close + 1;
        let end = text[start..]
            .iter()
            .position(|&b| b == b'(')
            .map_or(text.len(), |i| start + i);
        let value = &text[start..end];
        validate_value(entry, value)?;
        let value = core::str::from_utf8(value)
            .map_err(|_| Gs1Error::EmptyValue(Ai::from_bytes(entry.ai.as_bytes())))?;
        out.push(Element { entry, value })?;
        pos = end;
    }
    Ok(out)
}

/// Normalises a GTIN-8/12/13/14 to 14 digits (left-padded with zeros) after checking its
/// check digit.
pub fn gtin14(digits: &[u8]) -> Result<[u8; 14], Gs1Error> {
    let ai = Ai::from_bytes(b"01");
    if !matches!(digits.len(), 8 | 12 | 13 | 14) {
        return Err(if digits.len() < 14 {
            Gs1Error::TooShort {
                ai,
                len: digits.len(),
                min: 8,
            }
        } else {
            Gs1Error::TooLong {
                ai,
                len: digits.len(),
                max: 14,
            }
        });
    }
    let mut out = [b'0'; 14];
    out[14 - digits.len()..].copy_from_slice(digits);
    validate_value(lookup("01").ok_or(Gs1Error::EmptyValue(ai))?, &out)?;
    Ok(out)
}

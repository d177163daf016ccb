//! Fixed-point weights and units shared by all scale protocols.
//!
//! Legal-for-trade values must never pass through floats: a weight is an integer count of the
//! smallest displayed digit plus a number of decimals. Nothing here allocates.

use core::fmt;

use super::{BufferFull, ByteWriter};

/// The most digits a decimal may carry (keeps every value inside `i64`).
pub const MAX_DIGITS: usize = 18;

/// A weight as a fixed-point decimal: `value × 10^-decimals` in `unit`.
///
/// `Weight { value: -1234, decimals: 2, unit: Unit::G }` is −12.34 g.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Weight {
    /// Scaled integer value.
    pub value: i64,
    /// Number of digits after the decimal point.
    pub decimals: u8,
    /// Unit of measure.
    pub unit: Unit,
}

/// Why a decimal number could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalError {
    /// No digits at all.
    NoDigits,
    /// A character that is not a digit, a sign or one decimal point.
    BadCharacter(u8),
    /// More than one decimal point.
    TwoDecimalPoints,
    /// More than 18 digits (the most an `i64` always holds).
    TooManyDigits,
}

impl fmt::Display for DecimalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoDigits => f.write_str("number has no digits"),
            Self::BadCharacter(b) => write!(f, "unexpected byte 0x{b:02x} in number"),
            Self::TwoDecimalPoints => f.write_str("number has two decimal points"),
            Self::TooManyDigits => write!(f, "number has more than {MAX_DIGITS} digits"),
        }
    }
}

impl core::error::Error for DecimalError {}

impl Weight {
    /// Builds a weight from its parts.
    pub const fn new(value: i64, decimals: u8, unit: Unit) -> Self {
        Self {
            value,
            decimals,
            unit,
        }
    }

    /// Parses a signed decimal such as `-12.34`, `+1.250` or `100` into `(value, decimals)`.
    pub fn parse_decimal(text: &[u8]) -> Result<(i64, u8), DecimalError> {
        let (negative, digits) = match text.first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let mut value: i64 = 0;
        let mut count = 0usize;
        let mut decimals: Option<u8> = None;
        for &b in digits {
            match b {
                b'0'..=b'9' => {
                    count += 1;
                    if count > MAX_DIGITS {
                        return Err(DecimalError::TooManyDigits);
                    }
                    value = value * 10 + i64::from(b - b'0');
                    if let Some(d) = decimals.as_mut() {
                        *d += 1;
                    }
                }
                b'.' => {
                    if decimals.is_some() {
                        return Err(DecimalError::TwoDecimalPoints);
                    }
                    decimals = Some(0);
                }
                other => return Err(DecimalError::BadCharacter(other)),
            }
        }
        if count == 0 {
            return Err(DecimalError::NoDigits);
        }
        Ok((if negative { -value } else { value }, decimals.unwrap_or(0)))
    }

    /// Writes the value as a plain decimal (`-12.34`), without unit or padding.
    pub fn write_decimal(&self, out: &mut ByteWriter<'_>) -> Result<(), BufferFull> {
        write_decimal(self.value, self.decimals, out)
    }

    /// Length in bytes of [`Weight::write_decimal`]'s output.
    pub fn decimal_len(&self) -> usize {
        let mut buf = [0u8; 52];
        let mut w = ByteWriter::new(&mut buf);
        match write_decimal(self.value, self.decimals, &mut w) {
            Ok(()) => w.len(),
            Err(BufferFull) => buf.len(),
        }
    }

    /// The same weight expressed with `decimals` digits after the point, if that is exact and
    /// fits in `i64`.
    pub fn with_decimals(&self, decimals: u8) -> Option<Weight> {
        let value = if decimals >= self.decimals {
            let f = 10i64.checked_pow(u32::from(decimals - self.decimals))?;
            self.value.checked_mul(f)?
        } else {
            let f = 10i64.checked_pow(u32::from(self.decimals - decimals))?;
            if self.value % f != 0 {
                return None;
            }
            self.value / f
        };
        Some(Weight::new(value, decimals, self.unit))
    }
}

/// Writes `value × 10^-decimals` as a plain decimal string.
pub(crate) fn write_decimal(
    value: i64,
    decimals: u8,
    out: &mut ByteWriter<'_>,
) -> Result<(), BufferFull> {
    let mut digits = [b'0'; 48];
    let mut n = 0;
    let mut v = value.unsigned_abs();
    while v > 0 && n < digits.len() {
        digits[n] = b'0' + (v % 10) as u8;
        v /= 10;
        n += 1;
    }
    // Decimals beyond the scratch width are clamped; real devices use at most a handful.
    let decimals = usize::from(decimals).min(digits.len() - 1);
    // At least one integer digit, plus all decimals.
    let total = n.max(decimals + 1).min(digits.len());
    if value < 0 {
        out.push(b'-')?;
    }
    for i in (0..total).rev() {
        out.push(digits[i])?;
        if i == decimals && decimals > 0 {
            out.push(b'.')?;
        }
    }
    Ok(())
}

impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 52];
        let mut w = ByteWriter::new(&mut buf);
        self.write_decimal(&mut w).map_err(|_| fmt::Error)?;
        let text = core::str::from_utf8(w.written()).map_err(|_| fmt::Error)?;
        write!(f, "{text} {}", self.unit)
    }
}

/// Unit of a weight as the device names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Gram, `g`.
    Gram,
    /// Kilogram, `kg`.
    Kilogram,
    /// Milligram, `mg`.
    Milligram,
    /// Pound, `lb`.
    Pound,
    /// Ounce, `oz`.
    Ounce,
    /// Carat, `ct`.
    Carat,
    /// Metric tonne, `t`.
    Tonne,
    /// Any other short unit text (1–6 ASCII letters, digits or `/`).
    Other(UnitText),
}

/// A short unit name not otherwise known, stored inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnitText {
    bytes: [u8; 6],
    len: u8,
}

impl UnitText {
    /// The unit text.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl Unit {
    /// Reads a unit token such as `g` or `kg`; `None` when it is empty, too long or not a word.
    pub fn parse(text: &[u8]) -> Option<Unit> {
        Some(match text {
            b"g" => Unit::Gram,
            b"kg" => Unit::Kilogram,
            b"mg" => Unit::Milligram,
            b"lb" => Unit::Pound,
            b"oz" => Unit::Ounce,
            b"ct" => Unit::Carat,
            b"t" => Unit::Tonne,
            _ => {
                if text.is_empty()
                    || text.len() > 6
                    || !text
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || *b == b'/' || *b == b'%')
                    || text[0].is_ascii_digit()
                {
                    return None;
                }
                let mut bytes = [0u8; 6];
                bytes[..text.len()].copy_from_slice(text);
                Unit::Other(UnitText {
                    bytes,
                    len: text.len() as u8,
                })
            }
        })
    }

    /// The unit's text as sent on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Unit::Gram => b"g",
            Unit::Kilogram => b"kg",
            Unit::Milligram => b"mg",
            Unit::Pound => b"lb",
            Unit::Ounce => b"oz",
            Unit::Carat => b"ct",
            Unit::Tonne => b"t",
            Unit::Other(t) => t.as_bytes(),
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.as_bytes() {
            fmt::Write::write_char(f, char::from(b))?;
        }
        Ok(())
    }
}

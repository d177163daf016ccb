//! Yaohua XK3190 indicator continuous output: the A9/A9+ 12-byte frame (`tF=0`) and the
//! A26/A23P `=` frames (reversed or plain).
//!
//! A9 frame: `STX sign d d d d d d dp X X ETX` where `dp` is the number of decimals and `X X` is
//! the XOR of bytes 2–9 as two uppercase hex digits. The frames carry no unit; indicators are
//! normally set to kg, so decoded weights are in [`Unit::Kilogram`]. This module must not
//! perform I/O or allocate.

use core::fmt;

use super::framer::FrameStats;
use super::{Unit, Weight};

/// Start of an A9 frame.
pub const STX: u8 = 0x02;
/// End of an A9 frame.
pub const ETX: u8 = 0x03;
/// Length of an A9 frame.
pub const A9_FRAME_LEN: usize = 12;

/// Why a frame was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YaohuaError {
    /// Wrong length or missing STX/ETX/`=`.
    NotFramed,
    /// The sign byte is neither `+` nor `-`.
    BadSign(u8),
    /// A non-digit where a digit belongs.
    BadDigit(u8),
    /// The decimals byte is not `0`..`4`.
    BadDecimals(u8),
    /// The XOR check does not match.
    Checksum {
        /// XOR computed over bytes 2–9.
        expected: u8,
        /// XOR received.
        found: u8,
    },
    /// An `=` frame is not a number.
    BadNumber,
    /// Encoding: the value does not fit six digits and four decimals.
    ValueTooWide,
}

impl fmt::Display for YaohuaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFramed => f.write_str("not a Yaohua frame"),
            Self::BadSign(b) => write!(f, "sign byte 0x{b:02x} is not '+' or '-'"),
            Self::BadDigit(b) => write!(f, "byte 0x{b:02x} where a digit belongs"),
            Self::BadDecimals(b) => write!(f, "decimals byte 0x{b:02x} is not '0'..'4'"),
            Self::Checksum { expected, found } => {
                write!(f, "XOR check 0x{found:02x}, expected 0x{expected:02x}")
            }
            Self::BadNumber => f.write_str("'=' frame is not a number"),
            Self::ValueTooWide => f.write_str("value needs more than 6 digits or 4 decimals"),
        }
    }
}

impl core::error::Error for YaohuaError {}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// XOR of the sign, digits and decimals bytes (frame bytes 2–9).
pub fn a9_check(body: &[u8]) -> u8 {
    body.iter().fold(0, |acc, b| acc ^ b)
}

/// Decodes one 12-byte A9 frame.
pub fn decode_a9(frame: &[u8]) -> Result<Weight, YaohuaError> {
    let [STX, sign, d @ .., dp, hi, lo, ETX] = frame else {
        return Err(YaohuaError::NotFramed);
    };
    if d.len() != 6 {
        return Err(YaohuaError::NotFramed);
    }
    let expected = a9_check(&frame[1..9]);
    let found = match (hex_value(*hi), hex_value(*lo)) {
        (Some(h), Some(l)) => (h << 4) | l,
        _ => {
            return Err(YaohuaError::Checksum {
                expected,
                found: 0xFF,
            });
        }
    };
    if found != expected {
        return Err(YaohuaError::Checksum { expected, found });
    }
    let negative = match sign {
        b'+' => false,
        b'-' => true,
        other => return Err(YaohuaError::BadSign(*other)),
    };
    let value = d.iter().try_fold(0i64, |acc, &b| {
        if b.is_ascii_digit() {
            Ok(acc * 10 + i64::from(b - b'0'))
        } else {
            Err(YaohuaError::BadDigit(b))
        }
    })?;
    let decimals = match dp {
        b'0'..=b'4' => dp - b'0',
        other => return Err(YaohuaError::BadDecimals(*other)),
    };
    Ok(Weight::new(
        if negative { -value } else { value },
        decimals,
        Unit::Kilogram,
    ))
}

/// Encodes a weight as an A9 frame (the unit is not transmitted).
pub fn encode_a9(weight: &Weight) -> Result<[u8; A9_FRAME_LEN], YaohuaError> {
    if weight.decimals > 4 || weight.value.unsigned_abs() > 999_999 {
        return Err(YaohuaError::ValueTooWide);
    }
    let mut f = [0u8; A9_FRAME_LEN];
    f[0] = STX;
    f[1] = if weight.value < 0 { b'-' } else { b'+' };
    let mut v = weight.value.unsigned_abs();
    for slot in f[2..8].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    f[8] = b'0' + weight.decimals;
    let x = a9_check(&f[1..9]);
    f[9] = HEX[usize::from(x >> 4)];
    f[10] = HEX[usize::from(x & 0x0F)];
    f[11] = ETX;
    Ok(f)
}

/// Cuts A9 frames out of a byte stream, resynchronising on STX.
#[derive(Debug, Clone, Default)]
pub struct A9Decoder {
    buf: [u8; A9_FRAME_LEN],
    len: usize,
    stats: FrameStats,
}

impl A9Decoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counters so far.
    pub fn stats(&self) -> FrameStats {
        self.stats
    }

    /// Feeds one byte; returns a weight, or the reason a complete frame was rejected.
    pub fn push(&mut self, byte: u8) -> Option<Result<Weight, YaohuaError>> {
        if byte == STX {
            if self.len > 0 {
                self.stats.garbage_bytes = self.stats.garbage_bytes.saturating_add(self.len as u32);
            }
            self.buf[0] = STX;
            self.len = 1;
            return None;
        }
        if self.len == 0 {
            self.stats.garbage_bytes = self.stats.garbage_bytes.saturating_add(1);
            return None;
        }
        self.buf[self.len] = byte;
        self.len += 1;
        if byte == ETX && self.len < A9_FRAME_LEN {
            self.stats.malformed = self.stats.malformed.saturating_add(1);
            self.len = 0;
            return Some(Err(YaohuaError::NotFramed));
        }
        if self.len < A9_FRAME_LEN {
            return None;
        }
        self.len = 0;
        let result = decode_a9(&self.buf);
        match result {
            Ok(_) => self.stats.frames = self.stats.frames.saturating_add(1),
            Err(YaohuaError::Checksum { .. }) => {
                self.stats.checksum_failures = self.stats.checksum_failures.saturating_add(1);
            }
            Err(_) => self.stats.malformed = self.stats.malformed.saturating_add(1),
        }
        Some(result)
    }
}

/// Decodes the 8 characters after `=` (A26/A23P formats 1 and 2).
///
/// With `reversed` (format 1) the display string was sent back to front, sign last:
/// `000.3000` is 3.000 and `00.1000-` is −1.00.
pub fn decode_eq(body: &[u8], reversed: bool) -> Result<Weight, YaohuaError> {
    if body.len() != 8 {
        return Err(YaohuaError::NotFramed);
    }
    let mut text = [0u8; 8];
    text.copy_from_slice(body);
    if reversed {
        text.reverse();
    }
    let (value, decimals) = Weight::parse_decimal(&text).map_err(|_| YaohuaError::BadNumber)?;
    Ok(Weight::new(value, decimals, Unit::Kilogram))
}

/// Encodes a weight as `=` followed by 8 characters (zero-padded, sign first), reversed for
/// format 1.
pub fn encode_eq(weight: &Weight, reversed: bool) -> Result<[u8; 9], YaohuaError> {
    let mut digits = [0u8; 24];
    let mut w = super::ByteWriter::new(&mut digits);
    super::weight::write_decimal(weight.value.abs(), weight.decimals, &mut w)
        .map_err(|_| YaohuaError::ValueTooWide)?;
    let text = w.written();
    let sign = usize::from(weight.value < 0);
    if text.len() + sign > 8 {
        return Err(YaohuaError::ValueTooWide);
    }
    let mut out = [b'0'; 9];
    out[0] = b'=';
    if weight.value < 0 {
        out[1] = b'-';
    }
    out[9 - text.len()..].copy_from_slice(text);
    if reversed {
        out[1..].reverse();
    }
    Ok(out)
}

/// Cuts `=` frames out of a back-to-back stream, resynchronising on `=`.
#[derive(Debug, Clone, Default)]
pub struct EqDecoder {
    reversed: bool,
    buf: [u8; 8],
    len: usize,
    in_frame: bool,
    stats: FrameStats,
}

impl EqDecoder {
    /// A decoder for format 1 (`reversed`) or format 2.
    pub fn new(reversed: bool) -> Self {
        Self {
            reversed,
            ..Self::default()
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> FrameStats {
        self.stats
    }

    /// Feeds one byte; returns a weight, or the reason a complete frame was rejected.
    pub fn push(&mut self, byte: u8) -> Option<Result<Weight, YaohuaError>> {
        if byte == b'=' {
            if self.in_frame && self.len > 0 {
                self.stats.garbage_bytes = self.stats.garbage_bytes.saturating_add(self.len as u32);
            }
            self.in_frame = true;
            self.len = 0;
            return None;
        }
        if !self.in_frame {
            self.stats.garbage_bytes = self.stats.garbage_bytes.saturating_add(1);
            return None;
        }
        self.buf[self.len] = byte;
        self.len += 1;
        if self.len < self.buf.len() {
            return None;
        }
        self.in_frame = false;
        self.len = 0;
        let result = decode_eq(&self.buf, self.reversed);
        match result {
            Ok(_) => self.stats.frames = self.stats.frames.saturating_add(1),
            Err(_) => self.stats.malformed = self.stats.malformed.saturating_add(1),
        }
        Some(result)
    }
}

//! Mettler Toledo "Standard Continuous Output": `STX SWA SWB SWC wwwwww tttttt CR [CHK]`.
//!
//! Three status words, six displayed-weight digits, six tare digits (or none, in the short
//! variant), CR, and an optional checksum (two's complement of the 7-bit sum of everything
//! before it, STX and CR included). Decodes and encodes frames and resynchronises a stream on
//! STX. Must not perform I/O or allocate.

use core::fmt;

use super::framer::FrameStats;
use super::{Unit, Weight};

/// Start of text.
pub const STX: u8 = 0x02;
/// Carriage return.
pub const CR: u8 = 0x0D;
/// Longest frame: STX, 3 status words, 12 digits, CR, checksum.
pub const MAX_FRAME: usize = 18;

/// Frame layout options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContinuousConfig {
    /// Six tare digits follow the weight.
    pub with_tare: bool,
    /// A checksum byte follows CR.
    pub with_checksum: bool,
}

impl ContinuousConfig {
    /// The full frame: tare and checksum.
    pub const FULL: ContinuousConfig = ContinuousConfig {
        with_tare: true,
        with_checksum: true,
    };

    /// Frame length in bytes for this layout.
    pub const fn frame_len(&self) -> usize {
        11 + if self.with_tare { 6 } else { 0 } + if self.with_checksum { 1 } else { 0 }
    }
}

/// A decoded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContinuousFrame {
    /// Displayed weight (gross or net, see `net`), signed by the SWB sign bit.
    pub weight: Weight,
    /// Tare weight (zero in the short variant).
    pub tare: Weight,
    /// Increment size: 1, 2 or 5 (0 if the bits are clear).
    pub increment: u8,
    /// Net mode.
    pub net: bool,
    /// Over or under range.
    pub out_of_range: bool,
    /// In motion.
    pub motion: bool,
    /// Powered up and not yet zeroed.
    pub not_zeroed: bool,
    /// Print requested.
    pub print_request: bool,
    /// Expanded display (×10).
    pub expanded: bool,
}

/// Why a frame was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContinuousError {
    /// Wrong length, or no STX/CR where expected.
    NotFramed,
    /// The checksum byte does not match.
    Checksum {
        /// Checksum computed over the frame.
        expected: u8,
        /// Checksum received.
        found: u8,
    },
    /// A weight or tare position holds a non-digit (spaces are read as zeros).
    BadDigit(u8),
    /// A status word lacks its always-one bit 5.
    BadStatusWord,
    /// Encoding: the value needs more than six digits or more than five decimals.
    ValueTooWide,
}

impl fmt::Display for ContinuousError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFramed => f.write_str("not an STX ... CR continuous frame"),
            Self::Checksum { expected, found } => {
                write!(f, "checksum 0x{found:02x}, expected 0x{expected:02x}")
            }
            Self::BadDigit(b) => write!(f, "byte 0x{b:02x} where a digit belongs"),
            Self::BadStatusWord => f.write_str("status word without bit 5"),
            Self::ValueTooWide => f.write_str("value needs more than 6 digits or 5 decimals"),
        }
    }
}

impl core::error::Error for ContinuousError {}

/// Checksum over `bytes` (STX through CR): `-(Σ (b & 0x7F)) & 0x7F`.
pub fn checksum(bytes: &[u8]) -> u8 {
    let sum = bytes.iter().fold(0u8, |acc, b| acc.wrapping_add(b & 0x7F));
    sum.wrapping_neg() & 0x7F
}

fn digits6(bytes: &[u8]) -> Result<i64, ContinuousError> {
    bytes.iter().try_fold(0i64, |acc, &b| match b & 0x7F {
        b' ' => Ok(acc * 10),
        d @ b'0'..=b'9' => Ok(acc * 10 + i64::from(d - b'0')),
        other => Err(ContinuousError::BadDigit(other)),
    })
}

/// Decodes one whole frame laid out as `config` says.
pub fn decode(frame: &[u8], config: ContinuousConfig) -> Result<ContinuousFrame, ContinuousError> {
    if frame.len() != config.frame_len() || frame[0] & 0x7F != STX {
        return Err(ContinuousError::NotFramed);
    }
    let cr_at = if config.with_tare { 16 } else { 10 };
    if frame[cr_at] & 0x7F != CR {
        return Err(ContinuousError::NotFramed);
    }
    if config.with_checksum {
        let expected = checksum(&frame[..=cr_at]);
        let found = frame[cr_at + 1] & 0x7F;
        if expected != found {
            return Err(ContinuousError::Checksum { expected, found });
        }
    }
    let (swa, swb, swc) = (frame[1] & 0x7F, frame[2] & 0x7F, frame[3] & 0x7F);
    if swa & 0x20 == 0 || swb & 0x20 == 0 || swc & 0x20 == 0 {
        return Err(ContinuousError::BadStatusWord);
    }
    // SWA bits 0-2: 0 = ×100, 1 = ×10, 2 = no decimals, 3..=7 = 1..=5 decimals.
    let code = swa & 0x07;
    let (scale, decimals) = match code {
        0 => (100, 0),
        1 => (10, 0),
        c => (1, c - 2),
    };
    let increment = match (swa >> 3) & 0x03 {
        0b01 => 1,
        0b10 => 2,
        0b11 => 5,
        _ => 0,
    };
    let unit = if swc & 0x01 != 0 {
        Unit::Gram
    } else if swb & 0x10 != 0 {
        Unit::Kilogram
    } else {
        Unit::Pound
    };
    let negative = swb & 0x02 != 0;
    let raw = digits6(&frame[4..10])? * scale;
    let tare = if config.with_tare {
        digits6(&frame[10..16])? * scale
    } else {
        0
    };
    Ok(ContinuousFrame {
        weight: Weight::new(if negative { -raw } else { raw }, decimals, unit),
        tare: Weight::new(tare, decimals, unit),
        increment,
        net: swb & 0x01 != 0,
        out_of_range: swb & 0x04 != 0,
        motion: swb & 0x08 != 0,
        not_zeroed: swb & 0x40 != 0,
        print_request: swc & 0x08 != 0,
        expanded: swc & 0x10 != 0,
    })
}

/// Encodes `frame` into `out`; returns the frame length. The tare is rescaled to the weight's
/// decimals; the unit must be kg, lb or g.
pub fn encode(
    frame: &ContinuousFrame,
    config: ContinuousConfig,
    out: &mut [u8; MAX_FRAME],
) -> Result<usize, ContinuousError> {
    let decimals = frame.weight.decimals;
    if decimals > 5 {
        return Err(ContinuousError::ValueTooWide);
    }
    let tare = frame
        .tare
        .with_decimals(decimals)
        .ok_or(ContinuousError::ValueTooWide)?;
    let increment_bits = match frame.increment {
        1 => 0b01,
        2 => 0b10,
        5 => 0b11,
        _ => 0b00,
    };
    let swa = 0x20 | (increment_bits << 3) | (decimals + 2);
    let (kg, grams) = match frame.weight.unit {
        Unit::Kilogram => (true, false),
        Unit::Gram => (false, true),
        _ => (false, false),
    };
    let swb = 0x20
        | u8::from(frame.net)
        | (u8::from(frame.weight.value < 0) << 1)
        | (u8::from(frame.out_of_range) << 2)
        | (u8::from(frame.motion) << 3)
        | (u8::from(kg) << 4)
        | (u8::from(frame.not_zeroed) << 6);
    let swc = 0x20
        | u8::from(grams)
        | (u8::from(frame.print_request) << 3)
        | (u8::from(frame.expanded) << 4);
    out[0] = STX;
    out[1] = swa;
    out[2] = swb;
    out[3] = swc;
    put_digits6(frame.weight.value.unsigned_abs(), &mut out[4..10])?;
    let mut at = 10;
    if config.with_tare {
        if tare.value < 0 {
            return Err(ContinuousError::ValueTooWide);
        }
        put_digits6(tare.value.unsigned_abs(), &mut out[10..16])?;
        at = 16;
    }
    out[at] = CR;
    if config.with_checksum {
        out[at + 1] = checksum(&out[..=at]);
        at += 1;
    }
    Ok(at + 1)
}

fn put_digits6(mut v: u64, out: &mut [u8]) -> Result<(), ContinuousError> {
    if v > 999_999 {
        return Err(ContinuousError::ValueTooWide);
    }
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    Ok(())
}

/// Cuts frames out of a continuous byte stream, resynchronising on STX.
#[derive(Debug, Clone)]
pub struct ContinuousDecoder {
    config: ContinuousConfig,
    buf: [u8; MAX_FRAME],
    len: usize,
    stats: FrameStats,
}

impl ContinuousDecoder {
    /// A decoder for frames laid out as `config` says.
    pub fn new(config: ContinuousConfig) -> Self {
        Self {
            config,
            buf: [0; MAX_FRAME],
            len: 0,
            stats: FrameStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> FrameStats {
        self.stats
    }

    /// Feeds one byte; returns a decoded frame, or the reason a complete frame was rejected.
    pub fn push(&mut self, byte: u8) -> Option<Result<ContinuousFrame, ContinuousError>> {
        let want = self.config.frame_len();
        let cr_at = if self.config.with_tare { 16 } else { 10 };
        if self.len == 0 {
            if byte & 0x7F == STX {
                self.buf[0] = byte;
                self.len = 1;
            } else {
                self.stats.garbage_bytes = self.stats.garbage_bytes.saturating_add(1);
            }
            return None;
        }
        // Inside a frame an STX can only appear as the checksum byte (after CR).
        if byte & 0x7F == STX && self.len != cr_at + 1 {
            self.stats.garbage_bytes = self.stats.garbage_bytes.saturating_add(self.len as u32);
            self.len = 1;
            return None;
        }
        self.buf[self.len] = byte;
        self.len += 1;
        if self.len <= cr_at && byte & 0x7F == CR {
            // CR too early: a short or damaged frame.
            self.stats.malformed = self.stats.malformed.saturating_add(1);
            self.len = 0;
            return Some(Err(ContinuousError::NotFramed));
        }
        if self.len < want {
            return None;
        }
        self.len = 0;
        let result = decode(&self.buf[..want], self.config);
        match result {
            Ok(_) => self.stats.frames = self.stats.frames.saturating_add(1),
            Err(ContinuousError::Checksum { .. }) => {
                self.stats.checksum_failures = self.stats.checksum_failures.saturating_add(1);
            }
            Err(_) => self.stats.malformed = self.stats.malformed.saturating_add(1),
        }
        Some(result)
    }
}

//! Toledo 8217 protocol (single-letter commands, `STX … CR` replies), as used by Mettler Toledo
//! Ariva/Viva/DIVA retail scales in "protocol 3".
//!
//! Covers the host commands, the reply format (`STX 01.234 [N] CR` or `STX ? <status> CR`), the
//! status byte and the `Ehello` echo probe. Line settings are 9600 7E1; a port read as 8N1 sees
//! the parity in bit 7, which [`StatusByte`] and [`ReplyFramer`] mask off. This module must not
//! perform I/O or decide scale behaviour.

use core::fmt;

use super::framer::FrameStats;
use super::{BufferFull, ByteWriter, DecimalError, Unit, Weight};

/// Start of text, first byte of every reply.
pub const STX: u8 = 0x02;
/// Carriage return, last byte of every reply.
pub const CR: u8 = 0x0D;
/// What the host sends to detect an 8217 scale.
pub const PROBE: &[u8] = b"Ehello";
/// What an 8217 scale answers to [`PROBE`]: echo mode start, then the echoed bytes.
pub const PROBE_REPLY: &[u8] = b"\x02E\rhello";
/// What the host sends after a successful probe to leave echo mode.
pub const PROBE_END: &[u8] = b"F";

/// A host command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostCommand {
    /// `W`: send the weight (or the status when it cannot).
    Weight,
    /// `Z`: zero.
    Zero,
    /// `T`: tare.
    Tare,
    /// `Twwwww`: digital tare, five digits (WWW.WW lb or WW.WWW kg).
    PresetTare(u32),
    /// `C`: clear tare.
    ClearTare,
    /// `A`: start the confidence test.
    ConfidenceStart,
    /// `B`: confidence test result.
    ConfidenceResult,
    /// `E`: start echo mode.
    EchoStart,
    /// `F`: end echo mode.
    EchoEnd,
    /// Anything else; the scale answers with its status.
    Unknown(u8),
}

impl HostCommand {
    /// Reads a single-letter command. `T` is returned as [`HostCommand::Tare`]; digital tare
    /// needs the following digits, see [`HostCommand::parse`].
    pub fn from_byte(byte: u8) -> HostCommand {
        match byte & 0x7F {
            b'W' => HostCommand::Weight,
            b'Z' => HostCommand::Zero,
            b'T' => HostCommand::Tare,
            b'C' => HostCommand::ClearTare,
            b'A' => HostCommand::ConfidenceStart,
            b'B' => HostCommand::ConfidenceResult,
            b'E' => HostCommand::EchoStart,
            b'F' => HostCommand::EchoEnd,
            other => HostCommand::Unknown(other),
        }
    }

    /// Reads a complete command: one letter, or `T` and exactly five digits.
    pub fn parse(bytes: &[u8]) -> Option<HostCommand> {
        match bytes {
            [b] => Some(HostCommand::from_byte(*b)),
            [b'T', digits @ ..] if digits.len() == 5 && digits.iter().all(u8::is_ascii_digit) => {
                let v = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
                Some(HostCommand::PresetTare(v))
            }
            _ => None,
        }
    }

    /// Writes the command; returns the number of bytes written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, BufferFull> {
        let mut w = ByteWriter::new(out);
        match self {
            HostCommand::Weight => w.push(b'W')?,
            HostCommand::Zero => w.push(b'Z')?,
            HostCommand::Tare => w.push(b'T')?,
            HostCommand::PresetTare(v) => {
                w.push(b'T')?;
                w.push_u64(u64::from(*v % 100_000), 5)?;
            }
            HostCommand::ClearTare => w.push(b'C')?,
            HostCommand::ConfidenceStart => w.push(b'A')?,
            HostCommand::ConfidenceResult => w.push(b'B')?,
            HostCommand::EchoStart => w.push(b'E')?,
            HostCommand::EchoEnd => w.push(b'F')?,
            HostCommand::Unknown(b) => w.push(*b)?,
        }
        Ok(w.len())
    }
}

/// The 8217 status byte (bits 0–5 are flags; bit 6 is always set; bit 7 is parity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusByte(pub u8);

impl StatusByte {
    /// Bit 0.
    pub const MOTION: u8 = 0x01;
    /// Bit 1.
    pub const OVER_CAPACITY: u8 = 0x02;
    /// Bit 2.
    pub const UNDER_ZERO: u8 = 0x04;
    /// Bit 3.
    pub const OUTSIDE_ZERO_CAPTURE: u8 = 0x08;
    /// Bit 4.
    pub const CENTER_OF_ZERO: u8 = 0x10;
    /// Bit 5.
    pub const NET: u8 = 0x20;
    /// Bit 6, always set by the scale.
    pub const ALWAYS: u8 = 0x40;

    /// A status byte with the given flag bits (bit 6 added).
    pub fn from_flags(flags: u8) -> StatusByte {
        StatusByte((flags & 0x3F) | Self::ALWAYS)
    }

    /// The flag bits 0–5.
    pub fn flags(self) -> u8 {
        self.0 & 0x3F
    }

    /// Scale in motion.
    pub fn motion(self) -> bool {
        self.0 & Self::MOTION != 0
    }

    /// Over capacity.
    pub fn over_capacity(self) -> bool {
        self.0 & Self::OVER_CAPACITY != 0
    }

    /// Under zero.
    pub fn under_zero(self) -> bool {
        self.0 & Self::UNDER_ZERO != 0
    }

    /// Outside the zero capture range.
    pub fn outside_zero_capture(self) -> bool {
        self.0 & Self::OUTSIDE_ZERO_CAPTURE != 0
    }

    /// At the centre of zero.
    pub fn center_of_zero(self) -> bool {
        self.0 & Self::CENTER_OF_ZERO != 0
    }

    /// Net mode (tare active).
    pub fn net(self) -> bool {
        self.0 & Self::NET != 0
    }
}

/// A scale reply, the bytes between `STX` and `CR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// A weight: kg with 3 decimals or lb with 2; `net` when suffixed with `N`.
    Weight {
        /// The weight.
        weight: Weight,
        /// Net weight (tare active).
        net: bool,
    },
    /// `? <status>`: status sent instead of a weight, or after Z/T/C.
    Status(StatusByte),
    /// Empty reply (`STX CR`), e.g. after `A`.
    Ack,
    /// `E`: echo mode started.
    EchoStart,
    /// `F`: echo mode ended.
    EchoEnd,
}

/// Why a reply was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyError {
    /// Not `STX … CR`.
    NotFramed,
    /// `?` without a status byte, or with more than one.
    BadStatus,
    /// The weight is not digits with one decimal point.
    BadWeight(DecimalError),
    /// A negative weight, which this protocol never sends.
    NegativeWeight,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFramed => f.write_str("reply is not STX ... CR"),
            Self::BadStatus => f.write_str("status reply must be '?' and one byte"),
            Self::BadWeight(e) => write!(f, "bad weight: {e}"),
            Self::NegativeWeight => f.write_str("negative weight (sent as status instead)"),
        }
    }
}

/// Parses a whole reply including `STX` and `CR` (bit 7 is masked off).
pub fn parse_reply(frame: &[u8]) -> Result<Reply, ReplyError> {
    match frame {
        [first, body @ .., last] if first & 0x7F == STX && last & 0x7F == CR => {
            parse_reply_body(body)
        }
        _ => Err(ReplyError::NotFramed),
    }
}

/// Parses the bytes between `STX` and `CR`.
pub fn parse_reply_body(body: &[u8]) -> Result<Reply, ReplyError> {
    let mut clean = [0u8; 16];
    let Some(dst) = clean.get_mut(..body.len()) else {
        return Err(ReplyError::BadWeight(DecimalError::TooManyDigits));
    };
    for (d, s) in dst.iter_mut().zip(body) {
        *d = s & 0x7F;
    }
    let body = &clean[..body.len()];
    match body {
        [] => Ok(Reply::Ack),
        [b'E'] => Ok(Reply::EchoStart),
        [b'F'] => Ok(Reply::EchoEnd),
        [b'?', s] => Ok(Reply::Status(StatusByte(*s))),
        [b'?', ..] => Err(ReplyError::BadStatus),
        _ => {
            let trimmed = trim_leading_spaces(body);
            let (digits, net) = match trimmed.split_last() {
                Some((b'N', rest)) => (rest, true),
                _ => (trimmed, false),
            };
            if digits.first() == Some(&b'-') {
                return Err(ReplyError::NegativeWeight);
            }
            if digits.first() == Some(&b'+') {
                return Err(ReplyError::BadWeight(DecimalError::BadCharacter(b'+')));
            }
            let (value, decimals) = Weight::parse_decimal(digits).map_err(ReplyError::BadWeight)?;
            let unit = if decimals == 2 {
                Unit::Pound
            } else {
                Unit::Kilogram
            };
            Ok(Reply::Weight {
                weight: Weight::new(value, decimals, unit),
                net,
            })
        }
    }
}

fn trim_leading_spaces(mut b: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = b {
        b = rest;
    }
    b
}

/// Why a reply could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer is too small.
    BufferFull,
    /// Negative weights are sent as a status ([`StatusByte::UNDER_ZERO`]), never as a value.
    NegativeWeight,
}

impl From<BufferFull> for EncodeError {
    fn from(_: BufferFull) -> Self {
        EncodeError::BufferFull
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferFull => f.write_str("output buffer too small"),
            Self::NegativeWeight => f.write_str("negative weights are sent as a status"),
        }
    }
}

impl core::error::Error for ReplyError {}
impl core::error::Error for EncodeError {}

/// Writes a reply with `STX` and `CR`. Weights get at least two integer digits (`01.234`).
pub fn encode_reply(reply: &Reply, out: &mut [u8]) -> Result<usize, EncodeError> {
    let mut w = ByteWriter::new(out);
    w.push(STX)?;
    match reply {
        Reply::Weight { weight, net } => {
            if weight.value < 0 {
                return Err(EncodeError::NegativeWeight);
            }
            let integer_digits = weight.decimal_len()
                - usize::from(weight.decimals > 0)
                - usize::from(weight.decimals);
            if integer_digits < 2 {
                w.push(b'0')?;
            }
            weight.write_decimal(&mut w)?;
            if *net {
                w.push(b'N')?;
            }
        }
        Reply::Status(s) => {
            w.push(b'?')?;
            w.push(s.0)?;
        }
        Reply::Ack => {}
        Reply::EchoStart => w.push(b'E')?,
        Reply::EchoEnd => w.push(b'F')?,
    }
    w.push(CR)?;
    Ok(w.len())
}

/// Cuts `STX … CR` replies out of a byte stream; bytes outside a reply are counted as garbage.
///
/// Replies are at most 16 bytes between STX and CR; longer ones are discarded as over-long.
#[derive(Debug, Clone, Default)]
pub struct ReplyFramer {
    buf: [u8; 16],
    len: usize,
    in_frame: bool,
    overlong: bool,
    stats: FrameStats,
}

impl ReplyFramer {
    /// An empty framer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counters so far.
    pub fn stats(&self) -> FrameStats {
        self.stats
    }

    /// Feeds one byte; returns a parsed reply when `byte` completes one. Malformed replies are
    /// counted and returned as errors.
    pub fn push(&mut self, byte: u8) -> Option<Result<Reply, ReplyError>> {
        let b = byte & 0x7F;
        if b == STX {
            if self.in_frame {
                self.stats.garbage_bytes =
                    self.stats.garbage_bytes.saturating_add(self.len as u32 + 1);
            }
            self.in_frame = true;
            self.overlong = false;
            self.len = 0;
            return None;
        }
        if !self.in_frame {
            self.stats.garbage_bytes = self.stats.garbage_bytes.saturating_add(1);
            return None;
        }
        if b == CR {
            self.in_frame = false;
            if core::mem::replace(&mut self.overlong, false) {
                self.stats.overlong = self.stats.overlong.saturating_add(1);
                return None;
            }
            let result = parse_reply_body(&self.buf[..self.len]);
            match result {
                Ok(_) => self.stats.frames = self.stats.frames.saturating_add(1),
                Err(_) => self.stats.malformed = self.stats.malformed.saturating_add(1),
            }
            return Some(result);
        }
        if self.len < self.buf.len() {
            self.buf[self.len] = b;
            self.len += 1;
        } else {
            self.overlong = true;
        }
        None
    }
}

//! Serial barcode scanner framing: `[prefix][STX][AIM id][data][ETX][suffix]<terminator>`.
//!
//! Frames end at a configured terminator (CR, LF, CR LF, any of them, a byte, or none) or after an
//! inter-character idle timeout; a configured prefix and suffix and optional STX/ETX are
//! stripped, and an AIM symbology identifier (`]C1`, `]d2`, `]Q3`, `]E0` …) is split off. The
//! data itself is not interpreted here (that is [`crate::codes`]). Time is passed in; this module
//! must not read a clock or allocate.

use core::fmt;

use super::framer::{FrameError, FrameStats, FramerConfig, LineFramer, Terminator};

/// An AIM symbology identifier (ISO/IEC 15424): `]` + code character + modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AimId {
    /// Code character, e.g. `C` for Code 128, `d` for Data Matrix.
    pub code: u8,
    /// Modifier character, e.g. `1` in `]C1`.
    pub modifier: u8,
}

/// Symbologies named by their AIM identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symbology {
    /// `]E0`: EAN-13, UPC-A or UPC-E as 13 digits.
    Ean13,
    /// `]E4`: EAN-8.
    Ean8,
    /// `]E1`, `]E2`: add-on only; `]E3`: EAN/UPC with add-on.
    EanAddOn,
    /// `]C0`: Code 128.
    Code128,
    /// `]C1`: GS1-128.
    Gs1_128,
    /// `]C2`: Code 128 with FNC1 in second position.
    Code128Fnc1Second,
    /// `]e0`: GS1 DataBar.
    Gs1DataBar,
    /// `]d1`: Data Matrix.
    DataMatrix,
    /// `]d2`: GS1 DataMatrix.
    Gs1DataMatrix,
    /// `]Q1`: QR Code.
    Qr,
    /// `]Q3`: GS1 QR Code.
    Gs1Qr,
    /// `]J0`: DotCode.
    DotCode,
    /// `]J1`: GS1 DotCode.
    Gs1DotCode,
    /// `]A*`: Code 39.
    Code39,
    /// `]I*`: Interleaved 2 of 5.
    Itf,
    /// `]F*`: Codabar.
    Codabar,
    /// `]G*`: Code 93.
    Code93,
    /// Any other identifier.
    Other,
}

impl AimId {
    /// Splits a leading `]xy` off `data`. The modifier must be an ASCII alphanumeric.
    pub fn split(data: &[u8]) -> Option<(AimId, &[u8])> {
        match data {
            [b']', code, modifier, rest @ ..]
                if code.is_ascii_alphabetic() && modifier.is_ascii_alphanumeric() =>
            {
                Some((
                    AimId {
                        code: *code,
                        modifier: *modifier,
                    },
                    rest,
                ))
            }
            _ => None,
        }
    }

    /// The symbology this identifier names.
    pub fn symbology(&self) -> Symbology {
        match (self.code, self.modifier) {
            (b'E', b'0') => Symbology::Ean13,
            (b'E', b'4') => Symbology::Ean8,
            (b'E', b'1' | b'2' | b'3') => Symbology::EanAddOn,
            (b'C', b'0') => Symbology::Code128,
            (b'C', b'1') => Symbology::Gs1_128,
            (b'C', b'2') => Symbology::Code128Fnc1Second,
            (b'e', b'0') => Symbology::Gs1DataBar,
            (b'd', b'1') => Symbology::DataMatrix,
            (b'd', b'2') => Symbology::Gs1DataMatrix,
            (b'Q', b'1') => Symbology::Qr,
            (b'Q', b'3') => Symbology::Gs1Qr,
            (b'J', b'0') => Symbology::DotCode,
            (b'J', b'1') => Symbology::Gs1DotCode,
            (b'A', _) => Symbology::Code39,
            (b'I', _) => Symbology::Itf,
            (b'F', _) => Symbology::Codabar,
            (b'G', _) => Symbology::Code93,
            _ => Symbology::Other,
        }
    }

    /// True when the identifier says the data is GS1 AI element strings (FNC1 in first position).
    pub fn is_gs1(&self) -> bool {
        matches!(
            self.symbology(),
            Symbology::Gs1_128
                | Symbology::Gs1DataBar
                | Symbology::Gs1DataMatrix
                | Symbology::Gs1Qr
                | Symbology::Gs1DotCode
        )
    }

    /// The three identifier bytes.
    pub fn as_bytes(&self) -> [u8; 3] {
        [b']', self.code, self.modifier]
    }
}

impl fmt::Display for AimId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "]{}{}", char::from(self.code), char::from(self.modifier))
    }
}

/// A short fixed prefix or suffix (up to 8 bytes) the scanner adds to every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Affix {
    bytes: [u8; 8],
    len: u8,
}

impl Affix {
    /// No affix.
    pub const NONE: Affix = Affix {
        bytes: [0; 8],
        len: 0,
    };

    /// An affix of `bytes`; `None` when longer than 8 bytes.
    pub const fn new(bytes: &[u8]) -> Option<Affix> {
        if bytes.len() > 8 {
            return None;
        }
        let mut a = [0u8; 8];
        let mut i = 0;
        while i < bytes.len() {
            a[i] = bytes[i];
            i += 1;
        }
        Some(Affix {
            bytes: a,
            len: bytes.len() as u8,
        })
    }

    /// The affix bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Scanner framing settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScannerConfig {
    /// What ends a frame.
    pub terminator: Terminator,
    /// Stripped from the start of a frame when present.
    pub prefix: Affix,
    /// Stripped from the end of a frame when present.
    pub suffix: Affix,
    /// Strip a leading STX and trailing ETX when present.
    pub strip_stx_etx: bool,
    /// Flush a frame after this many milliseconds without a byte.
    pub idle_timeout_ms: Option<u32>,
}

impl Default for ScannerConfig {
    /// CR, LF or CR LF; no prefix or suffix; STX/ETX stripped; 100 ms idle flush.
    fn default() -> Self {
        Self {
            terminator: Terminator::AnyEol,
            prefix: Affix::NONE,
            suffix: Affix::NONE,
            strip_stx_etx: true,
            idle_timeout_ms: Some(100),
        }
    }
}

/// One scan: the AIM identifier, if the scanner sent one, and the data after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan<'a> {
    /// AIM symbology identifier.
    pub aim: Option<AimId>,
    /// Data with prefix, suffix, STX/ETX and AIM identifier removed; GS (0x1D) kept.
    pub data: &'a [u8],
}

/// Strips the configured prefix/suffix, STX/ETX and the AIM identifier from one frame.
pub fn split_frame<'a>(config: &ScannerConfig, frame: &'a [u8]) -> Scan<'a> {
    let mut data = frame;
    if let Some(rest) = data.strip_prefix(config.prefix.as_bytes()) {
        data = rest;
    }
    if let Some(rest) = data.strip_suffix(config.suffix.as_bytes()) {
        data = rest;
    }
    if config.strip_stx_etx {
        if let [0x02, rest @ ..] = data {
            data = rest;
        }
        if let [rest @ .., 0x03] = data {
            data = rest;
        }
    }
    match AimId::split(data) {
        Some((aim, rest)) => Scan {
            aim: Some(aim),
            data: rest,
        },
        None => Scan { aim: None, data },
    }
}

/// A streaming scanner framer with an `N`-byte frame buffer.
#[derive(Debug, Clone)]
pub struct ScannerFramer<const N: usize> {
    config: ScannerConfig,
    framer: LineFramer<N>,
}

impl<const N: usize> ScannerFramer<N> {
    /// A framer for `config`. Scanner data may be UTF-8, so no byte is treated as noise.
    pub const fn new(config: ScannerConfig) -> Self {
        Self {
            config,
            framer: LineFramer::new(FramerConfig {
                terminator: config.terminator,
                ascii_only: false,
                idle_timeout_ms: config.idle_timeout_ms,
            }),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> FrameStats {
        self.framer.stats()
    }

    /// Feeds one byte received at `now_ms`. Call [`ScannerFramer::poll_idle`] first with the
    /// same time so that a frame left open by a previous scan is flushed.
    pub fn push(&mut self, byte: u8, now_ms: u64) -> Option<Result<Scan<'_>, FrameError>> {
        let config = self.config;
        self.framer
            .push_at(byte, now_ms)
            .map(|r| r.map(|frame| split_frame(&config, frame)))
    }

    /// Flushes a frame whose terminator never came, once the line has been idle long enough.
    pub fn poll_idle(&mut self, now_ms: u64) -> Option<Result<Scan<'_>, FrameError>> {
        let config = self.config;
        self.framer
            .poll_idle(now_ms)
            .map(|r| r.map(|frame| split_frame(&config, frame)))
    }
}

//! A streaming, byte-at-a-time line framer with a bounded buffer.
//!
//! Used for MT-SICS lines and serial scanner frames on both the device and the hub. Memory never
//! grows: an over-long frame is discarded (and counted) up to its terminator, bytes that cannot
//! come from a healthy link (wrong baud rate, line noise) taint the frame and are counted, and an
//! idle timeout can flush a frame that never got its terminator. The framer never reads a clock:
//! time is passed in. It must not interpret frame contents.

use core::fmt;

/// What ends a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminator {
    /// Carriage return (0x0D).
    Cr,
    /// Line feed (0x0A).
    Lf,
    /// CR LF; a lone LF also ends the frame (a missing CR is tolerated and stripped if present).
    CrLf,
    /// Any of CR, LF or CR LF: for devices whose end-of-line setting is unknown.
    AnyEol,
    /// A configured byte.
    Byte(u8),
    /// Nothing: frames end only by the idle timeout.
    None,
}

/// Framer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramerConfig {
    /// What ends a frame.
    pub terminator: Terminator,
    /// Treat bytes ≥ 0x80, DEL and control bytes other than TAB, STX, ETX, GS, CR and LF as
    /// line noise: they are dropped and the frame they arrived in is discarded as garbage.
    pub ascii_only: bool,
    /// Flush a partial frame after this many milliseconds without a byte.
    pub idle_timeout_ms: Option<u32>,
}

impl FramerConfig {
    /// MT-SICS lines: CR LF (lone CR or LF accepted), ASCII only, no idle flush.
    pub const MT_SICS: FramerConfig = FramerConfig {
        terminator: Terminator::AnyEol,
        ascii_only: true,
        idle_timeout_ms: None,
    };
}

/// Counters kept by every framer and stream decoder in this crate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// Frames handed out.
    pub frames: u32,
    /// Frames discarded because they did not fit the buffer.
    pub overlong: u32,
    /// Bytes dropped as noise or as bytes outside any frame.
    pub garbage_bytes: u32,
    /// Frames discarded because they contained noise.
    pub garbage_frames: u32,
    /// Frames discarded because their checksum did not match.
    pub checksum_failures: u32,
    /// Frames discarded because their content did not parse.
    pub malformed: u32,
}

/// Why a frame was discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The frame was longer than the buffer; its bytes were dropped.
    Overlong,
    /// The frame contained line noise (see [`FramerConfig::ascii_only`]).
    Garbage,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Overlong => f.write_str("frame longer than the buffer, discarded"),
            Self::Garbage => f.write_str("frame contained line noise, discarded"),
        }
    }
}

impl core::error::Error for FrameError {}

/// Outcome of feeding a byte: a complete frame (without its terminator) or a discarded one.
pub type FrameResult<'a> = Result<&'a [u8], FrameError>;

/// True for bytes a healthy ASCII link never carries.
pub fn is_noise(byte: u8) -> bool {
    byte >= 0x7F || (byte < 0x20 && !matches!(byte, b'\t' | b'\r' | b'\n' | 0x02 | 0x03 | 0x1D))
}

/// Splits a byte stream into frames of at most `N` bytes.
///
/// ```
/// use firmware_shim::wire::framer::{FramerConfig, LineFramer};
/// let mut framer = LineFramer::<32>::new(FramerConfig::MT_SICS);
/// let mut lines = 0;
/// for &b in b"S S     100.00 g\r\nS I\r\n" {
///     if let Some(Ok(line)) = framer.push(b) {
///         assert!(line.starts_with(b"S "));
///         lines += 1;
///     }
/// }
/// assert_eq!(lines, 2);
/// ```
#[derive(Debug, Clone)]
pub struct LineFramer<const N: usize> {
    buf: [u8; N],
    len: usize,
    config: FramerConfig,
    overlong: bool,
    tainted: bool,
    last_was_cr: bool,
    last_byte_ms: Option<u64>,
    stats: FrameStats,
}

impl<const N: usize> LineFramer<N> {
    /// An empty framer.
    pub const fn new(config: FramerConfig) -> Self {
        Self {
            buf: [0; N],
            len: 0,
            config,
            overlong: false,
            tainted: false,
            last_was_cr: false,
            last_byte_ms: None,
            stats: FrameStats {
                frames: 0,
                overlong: 0,
                garbage_bytes: 0,
                garbage_frames: 0,
                checksum_failures: 0,
                malformed: 0,
            },
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &FramerConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> FrameStats {
        self.stats
    }

    /// Mutable counters, so a caller that parses frames can record checksum or parse failures.
    pub fn stats_mut(&mut self) -> &mut FrameStats {
        &mut self.stats
    }

    /// Bytes of the frame being collected.
    pub fn pending(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Drops the partial frame (counters are kept).
    pub fn clear(&mut self) {
        self.len = 0;
        self.overlong = false;
        self.tainted = false;
        self.last_was_cr = false;
    }

    /// Feeds one byte received at `now_ms`; remembers the time for [`LineFramer::poll_idle`].
    pub fn push_at(&mut self, byte: u8, now_ms: u64) -> Option<FrameResult<'_>> {
        self.last_byte_ms = Some(now_ms);
        self.push(byte)
    }

    /// Feeds one byte. Returns a frame when `byte` completes one.
    pub fn push(&mut self, byte: u8) -> Option<FrameResult<'_>> {
        let after_cr = core::mem::replace(&mut self.last_was_cr, byte == b'\r');
        let ends = match self.config.terminator {
            Terminator::Cr => byte == b'\r',
            Terminator::Lf | Terminator::CrLf => byte == b'\n',
            Terminator::AnyEol => {
                if byte == b'\n' && after_cr {
                    // Second half of a CR LF whose CR already ended the frame.
                    return None;
                }
                byte == b'\r' || byte == b'\n'
            }
            Terminator::Byte(t) => byte == t,
            Terminator::None => false,
        };
        if ends {
            if self.config.terminator == Terminator::CrLf
                && self.buf[..self.len].last() == Some(&b'\r')
            {
                self.len -= 1;
            }
            return self.finish();
        }
        if self.config.ascii_only && is_noise(byte) {
            self.stats.garbage_bytes = self.stats.garbage_bytes.saturating_add(1);
            self.tainted = true;
            return None;
        }
        if self.overlong {
            return None;
        }
        if self.len < N {
            self.buf[self.len] = byte;
            self.len += 1;
        } else {
            self.overlong = true;
        }
        None
    }

    /// Flushes a partial frame when no byte arrived for the configured idle timeout.
    ///
    /// Call it before feeding bytes received at `now_ms`, and periodically while the line is quiet.
    pub fn poll_idle(&mut self, now_ms: u64) -> Option<FrameResult<'_>> {
        let timeout = self.config.idle_timeout_ms?;
        let last = self.last_byte_ms?;
        if now_ms.saturating_sub(last) < u64::from(timeout) {
            return None;
        }
        if self.len == 0 && !self.overlong && !self.tainted {
            return None;
        }
        self.finish()
    }

    fn finish(&mut self) -> Option<FrameResult<'_>> {
        let len = core::mem::replace(&mut self.len, 0);
        let overlong = core::mem::replace(&mut self.overlong, false);
        let tainted = core::mem::replace(&mut self.tainted, false);
        if overlong {
            self.stats.overlong = self.stats.overlong.saturating_add(1);
            return Some(Err(FrameError::Overlong));
        }
        if tainted {
            self.stats.garbage_frames = self.stats.garbage_frames.saturating_add(1);
            return Some(Err(FrameError::Garbage));
        }
        if len == 0 {
            return None;
        }
        self.stats.frames = self.stats.frames.saturating_add(1);
        Some(Ok(&self.buf[..len]))
    }
}

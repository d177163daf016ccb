//! Scanner input on the hub side: framing with the shim's `ScannerFramer`, then one
//! classification of each scan into the hub's [`crate::codes::ScannedCode`]
//! ([`crate::codes::classify_scan`], the shim's `codes::trace::classify` with the site's
//! patterns). The workflows get that classification; nothing classifies a scan again.
//!
//! Nothing is parsed here by hand. A scan that is not a valid code still goes to the
//! dispatcher (it is journaled and flagged on its line) and is counted as malformed. It does
//! no I/O.

use super::scale::escape;
use crate::codes::{Scanned, SitePatterns, classify_scan};
use firmware_shim::wire::framer::FrameStats;
use firmware_shim::wire::scanner::{Scan, ScannerConfig, ScannerFramer, split_frame};

/// Longest scan kept; longer frames are discarded and counted as over-long.
pub const MAX_SCAN: usize = 512;

/// Turns a complete frame (already cut) into a scan, e.g. an MQTT payload.
pub fn from_frame(
    config: &ScannerConfig,
    frame: &[u8],
    patterns: &SitePatterns,
) -> Option<Scanned> {
    let trimmed = frame
        .strip_suffix(b"\r\n")
        .or_else(|| frame.strip_suffix(b"\n"))
        .or_else(|| frame.strip_suffix(b"\r"))
        .unwrap_or(frame);
    let scan = split_frame(config, trimmed);
    if scan.data.is_empty() {
        return None;
    }
    Some(owned(&scan, frame, patterns))
}

fn owned(scan: &Scan<'_>, raw: &[u8], patterns: &SitePatterns) -> Scanned {
    let aim = scan.aim.map(|a| a.to_string()).unwrap_or_default();
    Scanned {
        text: format!("{aim}{}", String::from_utf8_lossy(scan.data)),
        code: classify_scan(scan, patterns),
        raw: escape(raw),
    }
}

/// A streaming scanner decoder: bytes in, scanned codes out.
pub struct ScannerDecoder {
    framer: Box<ScannerFramer<MAX_SCAN>>,
    pending: Vec<u8>,
    patterns: SitePatterns,
    /// Frames dropped as line noise, and their bytes.
    noise_frames: u32,
    noise_bytes: u32,
    /// Scans passed on that are not a valid code.
    malformed: u32,
}

/// True when a frame can be a scan: UTF-8 without control characters other than the GS1 and
/// ISO 15434 separators (GS, RS, EOT). Noise from a wrong baud rate fails this.
pub fn plausible_scan(data: &[u8]) -> bool {
    std::str::from_utf8(data).is_ok_and(|text| {
        text.chars()
            .all(|c| !c.is_control() || matches!(c, '\x1d' | '\x1e' | '\x04' | '\t'))
    })
}

impl std::fmt::Debug for ScannerDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScannerDecoder")
            .field("stats", &self.stats())
            .finish()
    }
}

impl ScannerDecoder {
    pub fn new(config: ScannerConfig) -> Self {
        ScannerDecoder {
            framer: Box::new(ScannerFramer::new(config)),
            pending: Vec::new(),
            patterns: SitePatterns::default(),
            noise_frames: 0,
            noise_bytes: 0,
            malformed: 0,
        }
    }

    /// Classifies with the site's trace-code patterns too.
    pub fn with_patterns(mut self, patterns: SitePatterns) -> Self {
        self.patterns = patterns;
        self
    }

    /// Framing counters.
    pub fn stats(&self) -> FrameStats {
        let mut s = self.framer.stats();
        s.frames = s.frames.saturating_sub(self.noise_frames);
        s.garbage_frames = s.garbage_frames.saturating_add(self.noise_frames);
        s.garbage_bytes = s.garbage_bytes.saturating_add(self.noise_bytes);
        s.malformed = s.malformed.saturating_add(self.malformed);
        s
    }

    fn reject_noise(&mut self, scan: Option<Scanned>, len: usize) -> Option<Scanned> {
        match scan {
            Some(c) if !plausible_scan(c.text.as_bytes()) || c.text.contains('\u{fffd}') => {
                self.noise_frames = self.noise_frames.saturating_add(1);
                self.noise_bytes = self.noise_bytes.saturating_add(len as u32);
                None
            }
            Some(c) => {
                if c.code.is_malformed() {
                    self.malformed = self.malformed.saturating_add(1);
                }
                Some(c)
            }
            None => None,
        }
    }

    fn track(&mut self, byte: u8) {
        if self.pending.len() < 96 {
            self.pending.push(byte);
        }
    }

    /// Feeds one byte received at `now_ms`. `None` while a frame is incomplete; `Some(None)`
    /// for a discarded frame (counted in [`ScannerDecoder::stats`]).
    pub fn push(&mut self, byte: u8, now_ms: u64) -> Option<Option<Scanned>> {
        let flushed = self.poll_idle(now_ms);
        self.track(byte);
        let result = match self.framer.push(byte, now_ms)? {
            Ok(scan) if !scan.data.is_empty() => {
                let data = scan.data.to_vec();
                let aim = scan.aim;
                Some(Scan { aim, data: &data }).map(|s| owned(&s, &self.pending, &self.patterns))
            }
            _ => None,
        };
        let len = self.pending.len();
        self.pending.clear();
        let result = self.reject_noise(result, len);
        // A frame flushed by the idle timeout just before this byte is not lost: it wins, and
        // this byte starts the next frame (it is already in the framer).
        Some(flushed.flatten().or(result))
    }

    /// Flushes a frame whose terminator never came, once the line was idle long enough.
    pub fn poll_idle(&mut self, now_ms: u64) -> Option<Option<Scanned>> {
        let result = match self.framer.poll_idle(now_ms)? {
            Ok(scan) if !scan.data.is_empty() => {
                let data = scan.data.to_vec();
                let aim = scan.aim;
                Some(owned(
                    &Scan { aim, data: &data },
                    &self.pending,
                    &self.patterns,
                ))
            }
            _ => None,
        };
        let len = self.pending.len();
        self.pending.clear();
        Some(self.reject_noise(result, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::ScannedCode;
    use hub_core::receiving::CodeKind;

    #[test]
    fn a_gs1_scan_is_classified_once_into_an_item_code() {
        let mut d = ScannerDecoder::new(ScannerConfig::default());
        let mut out = Vec::new();
        for (i, b) in b"]C1010950600013435221ABC123\x1d10LOT7\r\n"
            .iter()
            .enumerate()
        {
            if let Some(Some(code)) = d.push(*b, i as u64) {
                out.push(code);
            }
        }
        assert_eq!(out.len(), 1);
        assert!(out[0].text.starts_with("]C1"), "{:?}", out[0]);
        match &out[0].code {
            ScannedCode::Item {
                code, kind, gtin, ..
            } => {
                assert_eq!(code, "(01)09506000134352(21)ABC123");
                assert_eq!(*kind, CodeKind::TraceCode);
                assert_eq!(
                    gtin.as_ref().map(|g| g.to_string()).as_deref(),
                    Some("09506000134352")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn site_patterns_reach_the_scanner_classifier() {
        let patterns = SitePatterns::parse(&["staff:EMP:N:5:luhn".to_owned()]).unwrap();
        let mut d = ScannerDecoder::new(ScannerConfig::default()).with_patterns(patterns.clone());
        let mut out = Vec::new();
        // Luhn over 7992 gives 1: EMP79921 is good, EMP79922 is not.
        for (i, b) in b"EMP79921\rEMP79922\r".iter().enumerate() {
            if let Some(Some(code)) = d.push(*b, i as u64) {
                out.push(code.code);
            }
        }
        assert!(
            matches!(
                &out[0],
                ScannedCode::Item {
                    kind: CodeKind::TraceCode,
                    ..
                }
            ),
            "{:?}",
            out[0]
        );
        match &out[1] {
            ScannedCode::Malformed { reason, .. } => assert!(reason.contains("pattern staff")),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            d.stats().malformed,
            1,
            "the bad scan is counted as malformed"
        );
        let mqtt = from_frame(&ScannerConfig::default(), b"EMP79922", &patterns).unwrap();
        assert!(mqtt.code.is_malformed());
    }

    #[test]
    fn noise_frames_are_dropped_and_counted() {
        let mut d = ScannerDecoder::new(ScannerConfig::default());
        let mut out = Vec::new();
        for (i, b) in b"\xff\x81\x13abc\r\nDLV-1/1\r\n".iter().enumerate() {
            if let Some(Some(code)) = d.push(*b, i as u64) {
                out.push(code.text);
            }
        }
        assert_eq!(out, vec!["DLV-1/1".to_owned()]);
        assert_eq!(d.stats().garbage_frames, 1);
        assert_eq!(d.stats().frames, 1);
    }

    #[test]
    fn a_bad_check_digit_is_malformed_with_its_reason() {
        let none = SitePatterns::default();
        let scan = from_frame(&ScannerConfig::default(), b"]E04006381333932", &none).unwrap();
        assert!(scan.code.is_malformed(), "{:?}", scan.code);
    }
}

//! `hub bench devices`: can the hub parse scanner and scale streams faster than the wire can
//! carry them?
//!
//! Baseline: the frames per second a 115200-baud 8N1 (or 7E1) line carries, i.e. 11,520 bytes/s
//! divided by the frame length. Each stream is then pushed through the same hub-side pipeline
//! the serial task uses (shim framer and parser, stability check, placement tracker; for scans
//! also the trace-code classification), on one core, and reported as frames/s and as a ratio
//! to the line rate. The target is ten times the line rate, so parsing is never the bottleneck.

use crate::config::devices::ScaleProtocol;
use crate::devices::scale::{PlacementTracker, ScaleDecoder, StabilityGate};
use crate::devices::scanner::ScannerDecoder;
use firmware_shim::wire::scanner::ScannerConfig;
use std::time::{Duration, Instant};

/// Bits per character on the wire: start + 8 data (or 7 + parity) + stop.
pub const BITS_PER_CHAR: f64 = 10.0;
/// The line rate the figures are compared with.
pub const BAUD: f64 = 115_200.0;
/// Parsing must beat the line rate by this factor.
pub const TARGET_RATIO: f64 = 10.0;

/// One stream's figures; field names are the JSON contract.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StreamFigures {
    pub stream: String,
    pub frame_bytes: usize,
    pub line_rate_frames_per_s: f64,
    pub parsed_frames_per_s: f64,
    pub ratio: f64,
    pub meets_target: bool,
}

/// The whole run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DevicesBenchReport {
    pub baud: f64,
    pub target_ratio: f64,
    pub seconds_per_stream: f64,
    pub streams: Vec<StreamFigures>,
}

impl DevicesBenchReport {
    /// Whether every stream parses at least [`TARGET_RATIO`] times faster than the line rate.
    pub fn meets_targets(&self) -> bool {
        self.streams.iter().all(|s| s.meets_target)
    }
}

impl std::fmt::Display for DevicesBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "Device stream parsing vs a {:.0}-baud line ({:.1} s per stream, one core)",
            self.baud, self.seconds_per_stream
        )?;
        writeln!(
            f,
            "  {:<38} {:>6} {:>14} {:>14} {:>10}  target",
            "stream", "bytes", "line frames/s", "parsed/s", "ratio"
        )?;
        for s in &self.streams {
            writeln!(
                f,
                "  {:<38} {:>6} {:>14.0} {:>14.0} {:>9.0}x  >= {:.0}x {}",
                s.stream,
                s.frame_bytes,
                s.line_rate_frames_per_s,
                s.parsed_frames_per_s,
                s.ratio,
                self.target_ratio,
                if s.meets_target { "ok" } else { "BELOW TARGET" }
            )?;
        }
        write!(
            f,
            "  The baseline is what the wire can carry; a ratio of 100x means parsing one port's\n  full-speed stream costs about 1 % of a core."
        )
    }
}

fn repeat_frames(frame: &[u8], count: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(frame.len() * count);
    for _ in 0..count {
        v.extend_from_slice(frame);
    }
    v
}

fn measure(seconds: f64, mut pass: impl FnMut() -> usize) -> f64 {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut frames = 0usize;
    while Instant::now() < deadline {
        frames += pass();
    }
    frames as f64 / start.elapsed().as_secs_f64()
}

fn figures(stream: &str, frame_bytes: usize, parsed: f64) -> StreamFigures {
    let line = BAUD / BITS_PER_CHAR / frame_bytes as f64;
    let ratio = parsed / line;
    StreamFigures {
        stream: stream.to_owned(),
        frame_bytes,
        line_rate_frames_per_s: line,
        parsed_frames_per_s: parsed,
        ratio,
        meets_target: ratio >= TARGET_RATIO,
    }
}

fn scale_stream(protocol: ScaleProtocol, frame: &[u8], seconds: f64) -> StreamFigures {
    const FRAMES: usize = 1000;
    let bytes = repeat_frames(frame, FRAMES);
    let mut decoder = ScaleDecoder::new(protocol);
    let mut gate = StabilityGate::new(3);
    let mut placement = PlacementTracker::new(20, 20);
    let mut seen = 0usize;
    let rate = measure(seconds, || {
        let mut n = 0;
        for &b in &bytes {
            if let Some(Ok(reading)) = decoder.push(b) {
                n += 1;
                if let Some(g) = gate.feed(&reading).and_then(|g| placement.feed(g)) {
                    seen = seen.wrapping_add(g as usize);
                }
            }
        }
        n
    });
    std::hint::black_box(seen);
    figures(&format!("scale {}", protocol.as_str()), frame.len(), rate)
}

/// A reply the firmware-shim responder produces, so the bench parses what devices send.
fn responder_frame(protocol: ScaleProtocol) -> Vec<u8> {
    use crate::tools::sim::{Firmware, LoadCell, VecWriter};
    let mut firmware = Firmware::new(protocol, 100).expect("simulated scale config is valid");
    let mut cell = LoadCell::new();
    cell.put(1250.0);
    for i in 0..200u64 {
        let t = i as f64 * 0.0125;
        firmware.sample(cell.sample(t, 0.0125), i * 12);
    }
    let mut out = VecWriter::default();
    match protocol {
        ScaleProtocol::MtSics => firmware.on_bytes(b"SI\r\n", 2400, &mut out),
        ScaleProtocol::Toledo8217 => firmware.on_bytes(b"W", 2400, &mut out),
        _ => firmware.tick(2400, &mut out),
    }
    out.0
}

/// Runs every stream for `seconds`.
pub fn run(seconds: f64) -> DevicesBenchReport {
    let mut streams = Vec::new();
    let scan = b"]C1010950600013435221ABC123456\x1d10LOT2026A\r\n";
    const SCANS: usize = 500;
    let bytes = repeat_frames(scan, SCANS);
    let mut framing_only = ScannerDecoder::new(ScannerConfig::default());
    let rate = measure(seconds, || {
        let mut n = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if let Some(Some(code)) = framing_only.push(b, i as u64 / 64) {
                n += 1;
                std::hint::black_box(&code);
            }
        }
        n
    });
    streams.push(figures(
        "scanner GS1-128, framed + classified",
        scan.len(),
        rate,
    ));
    for protocol in [
        ScaleProtocol::MtSics,
        ScaleProtocol::Toledo8217,
        ScaleProtocol::MettlerContinuous,
        ScaleProtocol::YaohuaA9,
    ] {
        let frame = responder_frame(protocol);
        streams.push(scale_stream(protocol, &frame, seconds));
    }
    DevicesBenchReport {
        baud: BAUD,
        target_ratio: TARGET_RATIO,
        seconds_per_stream: seconds,
        streams,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stream_parses_frames() {
        let report = run(0.02);
        assert_eq!(report.streams.len(), 5);
        for s in &report.streams {
            assert!(s.parsed_frames_per_s > 0.0, "{s:?}");
            assert!(s.frame_bytes > 0);
        }
    }
}

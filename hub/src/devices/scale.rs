//! Scale streams on the hub side: protocol decoders over the `firmware-shim` wire formats, the
//! hub-side stability check and the placement tracker that turns readings into decisions.
//!
//! Parsing is never done here: every byte goes through the shim's framers and parsers
//! (`LineFramer` + `mtsics::parse_response`, `toledo8217::ReplyFramer`, `ContinuousDecoder`,
//! `yaohua::A9Decoder`). This module only maps their outputs to grams and a stability flag,
//! and decides which stable readings are worth acting on. It does no I/O.

use crate::config::devices::ScaleProtocol;
use firmware_shim::wire::framer::{FrameStats, FramerConfig, LineFramer};
use firmware_shim::wire::mtsics::{self, Body, Response, Status};
use firmware_shim::wire::{Unit, Weight, continuous, toledo8217, yaohua};

/// Longest MT-SICS line kept; longer ones are discarded and counted as over-long.
pub const SICS_MAX_LINE: usize = 128;

/// One reading as the scale reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleReading {
    /// Net weight in grams (rounded), or `None` for a status without weight (motion, overload).
    pub grams: Option<i64>,
    /// The scale's own stability flag.
    pub device_stable: bool,
    /// The frame as received, escaped for logs and the journal.
    pub raw: String,
}

/// A frame that was cut but could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeIssue {
    pub reason: String,
    pub raw: String,
}

/// Converts a fixed-point weight to grams (rounded half away from zero); `None` for units
/// that are not masses the hub can convert.
pub fn weight_to_grams(weight: &Weight) -> Option<i64> {
    // Grams per unit as a fraction (numerator, denominator).
    let (num, den): (i128, i128) = match weight.unit {
        Unit::Gram => (1, 1),
        Unit::Kilogram => (1000, 1),
        Unit::Milligram => (1, 1000),
        Unit::Tonne => (1_000_000, 1),
        Unit::Pound => (45_359_237, 100_000),
        Unit::Ounce => (28_349_523_125, 1_000_000_000),
        Unit::Carat => (1, 5),
        Unit::Other(_) => return None,
    };
    let scale = 10i128.checked_pow(u32::from(weight.decimals))?;
    let n = i128::from(weight.value) * num;
    let d = den * scale;
    let rounded = if n >= 0 {
        (n + d / 2) / d
    } else {
        -((-n + d / 2) / d)
    };
    i64::try_from(rounded).ok()
}

/// Escapes bytes for people: printable ASCII as is, everything else as `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect()
}

enum Inner {
    Sics(Box<LineFramer<SICS_MAX_LINE>>),
    Toledo(toledo8217::ReplyFramer),
    Continuous(continuous::ContinuousDecoder),
    Yaohua(yaohua::A9Decoder),
}

/// A streaming decoder for one scale protocol. Bytes in, readings out; memory stays bounded.
pub struct ScaleDecoder {
    protocol: ScaleProtocol,
    inner: Inner,
    /// Bytes of the frame being collected, for the journal (capped).
    pending: Vec<u8>,
    /// Frames that parsed at the framing level but not as a reading (counted here because the
    /// line framer does not parse contents).
    malformed: u32,
}

impl std::fmt::Debug for ScaleDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScaleDecoder")
            .field("protocol", &self.protocol)
            .field("stats", &self.stats())
            .finish()
    }
}

const RAW_CAP: usize = 64;

impl ScaleDecoder {
    /// A decoder for `protocol`.
    pub fn new(protocol: ScaleProtocol) -> Self {
        let inner = match protocol {
            ScaleProtocol::MtSics => Inner::Sics(Box::new(LineFramer::new(FramerConfig::MT_SICS))),
            ScaleProtocol::Toledo8217 => Inner::Toledo(toledo8217::ReplyFramer::new()),
            ScaleProtocol::MettlerContinuous => Inner::Continuous(
                continuous::ContinuousDecoder::new(continuous::ContinuousConfig::FULL),
            ),
            ScaleProtocol::YaohuaA9 => Inner::Yaohua(yaohua::A9Decoder::new()),
        };
        ScaleDecoder {
            protocol,
            inner,
            pending: Vec::with_capacity(RAW_CAP),
            malformed: 0,
        }
    }

    /// The protocol decoded.
    pub fn protocol(&self) -> ScaleProtocol {
        self.protocol
    }

    /// Framing counters: frames, noise, over-long, checksum failures, malformed.
    pub fn stats(&self) -> FrameStats {
        let mut s = match &self.inner {
            Inner::Sics(f) => f.stats(),
            Inner::Toledo(f) => f.stats(),
            Inner::Continuous(f) => f.stats(),
            Inner::Yaohua(f) => f.stats(),
        };
        s.malformed = s.malformed.saturating_add(self.malformed);
        s
    }

    fn take_raw(&mut self) -> String {
        let raw = escape(&self.pending);
        self.pending.clear();
        raw
    }

    /// Feeds one byte; returns a reading or an issue when `byte` completes a frame.
    pub fn push(&mut self, byte: u8) -> Option<Result<ScaleReading, DecodeIssue>> {
        if self.pending.len() < RAW_CAP {
            self.pending.push(byte);
        }
        let outcome = match &mut self.inner {
            Inner::Sics(framer) => match framer.push(byte)? {
                Ok(line) => {
                    let reading = mtsics::parse_response(line)
                        .map_err(|e| e.to_string())
                        .and_then(|response| sics_reading(&response).map_err(|e| e.to_string()));
                    if reading.is_err() {
                        self.malformed = self.malformed.saturating_add(1);
                    }
                    reading
                }
                Err(e) => Err(e.to_string()),
            },
            Inner::Toledo(framer) => match framer.push(byte)? {
                Ok(toledo8217::Reply::Weight { weight, .. }) => Ok(Some((weight, true))),
                // A status instead of a weight: motion, over capacity or under zero.
                Ok(toledo8217::Reply::Status(_)) => Ok(None),
                Ok(_) => return self.discard_quietly(),
                Err(e) => Err(e.to_string()),
            },
            Inner::Continuous(decoder) => match decoder.push(byte)? {
                Ok(frame) if frame.out_of_range => Ok(None),
                Ok(frame) => Ok(Some((frame.weight, !frame.motion))),
                Err(e) => Err(e.to_string()),
            },
            Inner::Yaohua(decoder) => match decoder.push(byte)? {
                // A9 frames carry no motion flag: only the hub-side check guards them.
                Ok(weight) => Ok(Some((weight, true))),
                Err(e) => Err(e.to_string()),
            },
        };
        let raw = self.take_raw();
        Some(match outcome {
            Ok(Some((weight, stable))) => match weight_to_grams(&weight) {
                Some(grams) => Ok(ScaleReading {
                    grams: Some(grams),
                    device_stable: stable,
                    raw,
                }),
                None => Err(DecodeIssue {
                    reason: format!("unit {} cannot be converted to grams", weight.unit),
                    raw,
                }),
            },
            Ok(None) => Ok(ScaleReading {
                grams: None,
                device_stable: false,
                raw,
            }),
            Err(reason) => Err(DecodeIssue { reason, raw }),
        })
    }

    fn discard_quietly(&mut self) -> Option<Result<ScaleReading, DecodeIssue>> {
        self.pending.clear();
        None
    }

    /// Forgets a partial frame (after a reconnect); counters are kept.
    pub fn reset_frame(&mut self) {
        self.pending.clear();
        if let Inner::Sics(f) = &mut self.inner {
            f.clear();
        }
    }
}

/// An MT-SICS reply that is not a weight.
#[derive(Debug, thiserror::Error)]
enum SicsProblem {
    #[error("weight reply without a readable weight and unit")]
    NoWeight,
    #[error("scale answered {0}")]
    ScaleError(String),
    #[error("unexpected reply {id} {status}")]
    Unexpected { id: String, status: char },
}

/// Maps an MT-SICS response to a reading: `Ok(Some)` weight, `Ok(None)` status without a usable
/// weight, `Err` a reply that is not a weight at all.
fn sics_reading(response: &Response<'_>) -> Result<Option<(Weight, bool)>, SicsProblem> {
    match response {
        Response::Reply {
            id: "S" | "SI",
            status,
            body,
        } => match (status, body) {
            (Status::Stable, Body::Weight(w)) => Ok(Some((*w, true))),
            (Status::Dynamic, Body::Weight(w)) => Ok(Some((*w, false))),
            (Status::Stable | Status::Dynamic, _) => Err(SicsProblem::NoWeight),
            _ => Ok(None),
        },
        Response::Error(e) => Err(SicsProblem::ScaleError(e.code().to_string())),
        Response::Reply { id, status, .. } => Err(SicsProblem::Unexpected {
            id: (*id).to_owned(),
            status: char::from(status.as_byte()),
        }),
    }
}

/// Reads a scale's answer to the MT-SICS probe (`I4`: its serial number) through the shim's
/// line framer: only a whole `I4 A "<serial>"` line counts, however the bytes were split
/// across reads, so no tail of it is left for the read loop to count as malformed.
pub struct SicsProbeReader {
    framer: Box<LineFramer<SICS_MAX_LINE>>,
}

impl std::fmt::Debug for SicsProbeReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SicsProbeReader").finish_non_exhaustive()
    }
}

impl Default for SicsProbeReader {
    fn default() -> Self {
        Self::new()
    }
}

impl SicsProbeReader {
    pub fn new() -> Self {
        SicsProbeReader {
            framer: Box::new(LineFramer::new(FramerConfig::MT_SICS)),
        }
    }

    /// Feeds one byte; returns the whole `I4 A …` line (escaped) once its terminator arrived.
    /// Other complete lines (a weight from a scale that streams) are skipped.
    pub fn push(&mut self, byte: u8) -> Option<String> {
        let Ok(line) = self.framer.push(byte)? else {
            return None;
        };
        match mtsics::parse_response(line) {
            Ok(Response::Reply {
                id: "I4",
                status: Status::Executed,
                ..
            }) => Some(escape(line)),
            _ => None,
        }
    }
}

/// The hub's own stability check: the scale's flag AND `n` equal consecutive readings.
#[derive(Debug, Clone)]
pub struct StabilityGate {
    n: usize,
    last: Option<i64>,
    run: usize,
}

impl StabilityGate {
    /// A gate needing `n` (≥ 1) equal readings.
    pub fn new(n: usize) -> Self {
        StabilityGate {
            n: n.max(1),
            last: None,
            run: 0,
        }
    }

    /// Feeds one reading; returns the weight when it is stable by both checks.
    pub fn feed(&mut self, reading: &ScaleReading) -> Option<i64> {
        let (Some(grams), true) = (reading.grams, reading.device_stable) else {
            self.last = None;
            self.run = 0;
            return None;
        };
        if self.last == Some(grams) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(grams);
            self.run = 1;
        }
        (self.run >= self.n).then_some(grams)
    }

    /// Forgets the history (after a reconnect).
    pub fn reset(&mut self) {
        self.last = None;
        self.run = 0;
    }
}

/// Decides which stable weights are new placements worth recording.
///
/// A placement is recorded once. The next one needs the pan to go back near zero, or a stable
/// weight that differs from the recorded one by more than `change_g` (goods added or removed).
#[derive(Debug, Clone)]
pub struct PlacementTracker {
    zero_band_g: i64,
    change_g: i64,
    recorded: Option<i64>,
}

impl PlacementTracker {
    pub fn new(zero_band_g: i64, change_g: i64) -> Self {
        PlacementTracker {
            zero_band_g,
            change_g,
            recorded: None,
        }
    }

    /// Feeds a stable weight; returns it when it is a new placement.
    pub fn feed(&mut self, grams: i64) -> Option<i64> {
        if grams.abs() <= self.zero_band_g {
            self.recorded = None;
            return None;
        }
        match self.recorded {
            Some(r) if (grams - r).abs() <= self.change_g => None,
            _ => {
                self.recorded = Some(grams);
                Some(grams)
            }
        }
    }
}

/// The command that asks for one reading, for polled protocols.
pub fn poll_command(protocol: ScaleProtocol) -> Option<&'static [u8]> {
    match protocol {
        ScaleProtocol::MtSics => Some(b"SI\r\n"),
        ScaleProtocol::Toledo8217 => Some(b"W"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firmware_shim::wire::framer::FrameStats;

    fn feed(decoder: &mut ScaleDecoder, bytes: &[u8]) -> Vec<Result<ScaleReading, DecodeIssue>> {
        bytes.iter().filter_map(|b| decoder.push(*b)).collect()
    }

    #[test]
    fn grams_from_every_unit() {
        assert_eq!(
            weight_to_grams(&Weight::new(1250, 3, Unit::Kilogram)),
            Some(1250)
        );
        assert_eq!(
            weight_to_grams(&Weight::new(-1234, 1, Unit::Gram)),
            Some(-123)
        );
        assert_eq!(
            weight_to_grams(&Weight::new(100, 2, Unit::Pound)),
            Some(454)
        );
    }

    #[test]
    fn mt_sics_stable_and_dynamic() {
        let mut d = ScaleDecoder::new(ScaleProtocol::MtSics);
        let out = feed(&mut d, b"S S      1.250 kg\r\nS D      1.300 kg\r\nS I\r\n");
        let r: Vec<_> = out.into_iter().map(Result::unwrap).collect();
        assert_eq!(r[0].grams, Some(1250));
        assert!(r[0].device_stable);
        assert!(!r[1].device_stable);
        assert_eq!(r[2].grams, None);
    }

    #[test]
    fn toledo_weight_and_motion_status() {
        let mut d = ScaleDecoder::new(ScaleProtocol::Toledo8217);
        let out = feed(&mut d, b"\x0201.250\r\x02?A\r");
        assert_eq!(out[0].as_ref().unwrap().grams, Some(1250));
        assert_eq!(out[1].as_ref().unwrap().grams, None);
    }

    #[test]
    fn garbage_and_overlong_lines_are_counted_not_fatal() {
        let mut d = ScaleDecoder::new(ScaleProtocol::MtSics);
        let mut noise = vec![0xFFu8, 0x80, 0x13, b'x', b'\r'];
        noise.extend(std::iter::repeat_n(b'9', 500));
        noise.extend_from_slice(b"\r\nS S      2.000 kg\r\n");
        let out = feed(&mut d, &noise);
        assert_eq!(out.last().unwrap().as_ref().unwrap().grams, Some(2000));
        let FrameStats {
            garbage_bytes,
            overlong,
            ..
        } = d.stats();
        assert!(garbage_bytes >= 3 && overlong == 1, "{:?}", d.stats());
    }

    #[test]
    fn the_probe_answer_counts_only_once_its_line_is_whole() {
        let mut probe = SicsProbeReader::new();
        let mut feed = |bytes: &[u8]| bytes.iter().find_map(|b| probe.push(*b));
        assert_eq!(
            feed(b"S S      1.250 kg\r\n"),
            None,
            "a weight is not the answer"
        );
        assert_eq!(feed(b"I4 A \"SIM0"), None, "half an answer is not one");
        assert_eq!(
            feed(b"000001\"\r\n").as_deref(),
            Some(r#"I4 A \"SIM0000001\""#)
        );
    }

    #[test]
    fn stability_needs_the_flag_and_n_equal_readings() {
        let mut gate = StabilityGate::new(3);
        let r = |g, s| ScaleReading {
            grams: Some(g),
            device_stable: s,
            raw: String::new(),
        };
        assert_eq!(gate.feed(&r(1250, true)), None);
        assert_eq!(gate.feed(&r(1250, false)), None);
        assert_eq!(gate.feed(&r(1250, true)), None);
        assert_eq!(gate.feed(&r(1250, true)), None);
        assert_eq!(gate.feed(&r(1250, true)), Some(1250));
    }

    #[test]
    fn one_placement_is_recorded_once() {
        let mut p = PlacementTracker::new(20, 20);
        assert_eq!(p.feed(1250), Some(1250));
        assert_eq!(p.feed(1250), None);
        assert_eq!(p.feed(1255), None);
        assert_eq!(p.feed(2250), Some(2250));
        assert_eq!(p.feed(5), None);
        assert_eq!(p.feed(2250), Some(2250));
    }
}

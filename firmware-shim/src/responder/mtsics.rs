//! MT-SICS level 0/1 responder: S, SI, SIR, Z, ZI, T, TI, TA, TAC, @, I0–I4; anything else `ES`.
//!
//! `S`, `Z` and `T` wait for stability and answer `I` after the stability timeout; `SIR` streams
//! `S S`/`S D` lines until `S`, `SI` or `@`. A line with line noise is answered `ET`, an
//! over-long one `ES`. Must not block, read a clock or allocate.

use embedded_io::Write;

use crate::scale::{Condition, Scale, TareError, ZeroError};
use crate::wire::framer::{FrameError, FramerConfig, LineFramer};
use crate::wire::mtsics::{Body, Command, CommandError, Response, Status, parse_command};
use crate::wire::{ByteWriter, Weight};

/// Longest command line accepted.
pub const MAX_LINE: usize = 64;

/// Timing settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SicsConfig {
    /// How long `S`, `Z` and `T` wait for stability before answering `I`.
    pub stability_timeout_ms: u32,
    /// Interval between `SIR` lines.
    pub repeat_interval_ms: u32,
}

impl Default for SicsConfig {
    /// 3 s stability timeout, 4 lines per second for `SIR`.
    fn default() -> Self {
        Self {
            stability_timeout_ms: 3_000,
            repeat_interval_ms: 250,
        }
    }
}

/// What `I1`–`I4` report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceInfo<'i> {
    /// `I4`: serial number.
    pub serial: &'i str,
    /// `I2`: device type.
    pub model: &'i str,
    /// `I3`: software version.
    pub software: &'i str,
    /// `I1`: the raw parameter list (level and versions), quotes included.
    pub level: &'i str,
}

impl Default for DeviceInfo<'static> {
    fn default() -> Self {
        Self {
            serial: "0000000000",
            model: "FW-SHIM",
            software: "0.1.0",
            level: "\"01\" \"2.00\" \"2.20\" \"1.00\" \"1.50\"",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    Stable,
    Zero,
    Tare,
}

impl Waiting {
    fn id(self) -> &'static str {
        match self {
            Waiting::Stable => "S",
            Waiting::Zero => "Z",
            Waiting::Tare => "T",
        }
    }
}

/// Commands listed by `I0`, with their levels.
const COMMANDS: &[(u8, &str)] = &[
    (0, "I0"),
    (0, "I1"),
    (0, "I2"),
    (0, "I3"),
    (0, "I4"),
    (0, "S"),
    (0, "SI"),
    (0, "SIR"),
    (0, "Z"),
    (0, "ZI"),
    (0, "@"),
    (1, "T"),
    (1, "TI"),
    (1, "TA"),
    (1, "TAC"),
];

/// An MT-SICS responder around a scale with an `F`-sample filter.
#[derive(Debug, Clone)]
pub struct SicsResponder<'i, const F: usize> {
    scale: Scale<F>,
    config: SicsConfig,
    info: DeviceInfo<'i>,
    framer: LineFramer<MAX_LINE>,
    waiting: Option<(Waiting, u64)>,
    repeat_next_ms: Option<u64>,
}

impl<'i, const F: usize> SicsResponder<'i, F> {
    /// A responder for `scale`.
    pub fn new(scale: Scale<F>, config: SicsConfig, info: DeviceInfo<'i>) -> Self {
        Self {
            scale,
            config,
            info,
            framer: LineFramer::new(FramerConfig::MT_SICS),
            waiting: None,
            repeat_next_ms: None,
        }
    }

    /// The scale, to feed samples with [`Scale::feed`].
    pub fn scale(&self) -> &Scale<F> {
        &self.scale
    }

    /// The scale, to feed samples with [`Scale::feed`].
    pub fn scale_mut(&mut self) -> &mut Scale<F> {
        &mut self.scale
    }

    /// Framing counters (noise, over-long lines).
    pub fn frame_stats(&self) -> crate::wire::framer::FrameStats {
        self.framer.stats()
    }

    /// Handles bytes received at `now_ms`, writing replies to `out`.
    pub fn on_bytes<W: Write>(
        &mut self,
        input: &[u8],
        now_ms: u64,
        out: &mut W,
    ) -> Result<(), W::Error> {
        for &b in input {
            let mut line = [0u8; MAX_LINE];
            let outcome = match self.framer.push(b) {
                None => continue,
                Some(Ok(l)) => {
                    line[..l.len()].copy_from_slice(l);
                    Ok(l.len())
                }
                Some(Err(e)) => Err(e),
            };
            match outcome {
                Ok(n) => self.handle_line(&line[..n], now_ms, out)?,
                Err(FrameError::Garbage) => out.write_all(b"ET\r\n")?,
                Err(FrameError::Overlong) => out.write_all(b"ES\r\n")?,
            }
        }
        self.tick(now_ms, out)
    }

    /// Resolves waiting commands (stable now, or timed out) and emits due `SIR` lines.
    pub fn tick<W: Write>(&mut self, now_ms: u64, out: &mut W) -> Result<(), W::Error> {
        if let Some((what, deadline)) = self.waiting {
            if self.try_execute(what, out)? {
                self.waiting = None;
            } else if now_ms >= deadline {
                self.waiting = None;
                self.send(&Response::status(what.id(), Status::NotExecutable), out)?;
            }
        }
        if let Some(next) = self.repeat_next_ms {
            if now_ms >= next {
                self.send_immediate(out)?;
                let interval = u64::from(self.config.repeat_interval_ms.max(1));
                let mut following = next.saturating_add(interval);
                if following <= now_ms {
                    following = now_ms.saturating_add(interval);
                }
                self.repeat_next_ms = Some(following);
            }
        }
        Ok(())
    }

    fn send<W: Write>(&self, response: &Response<'_>, out: &mut W) -> Result<(), W::Error> {
        let mut buf = [0u8; 96];
        match response.encode(&mut buf) {
            Ok(n) => out.write_all(&buf[..n]),
            // Only a misconfigured display (weight wider than 10 characters) gets here.
            Err(_) => out.write_all(b"EL\r\n"),
        }
    }

    fn weight(&self, lsd: i64) -> Weight {
        self.scale.weight(lsd)
    }

    fn send_immediate<W: Write>(&self, out: &mut W) -> Result<(), W::Error> {
        let response = match self.scale.reading() {
            None => Response::status("S", Status::NotExecutable),
            Some(r) => match r.condition {
                Condition::Overload => Response::status("S", Status::Overload),
                Condition::Underload => Response::status("S", Status::Underload),
                Condition::Normal => Response::weight(
                    "S",
                    if r.stable {
                        Status::Stable
                    } else {
                        Status::Dynamic
                    },
                    self.weight(r.net),
                ),
            },
        };
        self.send(&response, out)
    }

    /// Tries a stability-dependent command now; `Ok(true)` when answered.
    fn try_execute<W: Write>(&mut self, what: Waiting, out: &mut W) -> Result<bool, W::Error> {
        let Some(reading) = self.scale.reading() else {
            return Ok(false);
        };
        let id = what.id();
        let overload = Response::status(id, Status::Overload);
        let underload = Response::status(id, Status::Underload);
        match (what, reading.condition) {
            (Waiting::Stable | Waiting::Tare, Condition::Overload) => self.send(&overload, out)?,
            (Waiting::Stable | Waiting::Tare, Condition::Underload) => {
                self.send(&underload, out)?
            }
            _ if !reading.stable => return Ok(false),
            (Waiting::Stable, _) => {
                self.send(
                    &Response::weight("S", Status::Stable, self.weight(reading.net)),
                    out,
                )?;
            }
            (Waiting::Zero, _) => {
                let response = match self.scale.zero(true) {
                    Ok(()) => Response::status(id, Status::Executed),
                    Err(ZeroError::AboveRange) => overload,
                    Err(ZeroError::BelowRange) => underload,
                    Err(ZeroError::Unstable | ZeroError::NoData) => return Ok(false),
                };
                self.send(&response, out)?;
            }
            (Waiting::Tare, _) => {
                let response = match self.scale.tare_current(true) {
                    Ok(t) => Response::weight(id, Status::Stable, self.weight(t)),
                    Err(TareError::Overload) => overload,
                    Err(TareError::Underload) => underload,
                    Err(TareError::Unstable | TareError::NoData) => return Ok(false),
                };
                self.send(&response, out)?;
            }
        }
        Ok(true)
    }

    fn handle_line<W: Write>(
        &mut self,
        line: &[u8],
        now_ms: u64,
        out: &mut W,
    ) -> Result<(), W::Error> {
        let command = match parse_command(line) {
            Ok(c) => c,
            Err(CommandError::Empty) => return Ok(()),
            Err(CommandError::NotPrintable(_)) => return out.write_all(b"ET\r\n"),
            Err(CommandError::UnexpectedArgument | CommandError::BadTarePreset) => {
                return out.write_all(b"ES\r\n");
            }
        };
        // Commands are not pipelined: a new one ends the wait of the previous one.
        if let Some((what, _)) = self.waiting.take() {
            self.send(&Response::status(what.id(), Status::NotExecutable), out)?;
        }
        let deadline = now_ms.saturating_add(u64::from(self.config.stability_timeout_ms));
        match command {
            Command::Stable => {
                self.repeat_next_ms = None;
                self.wait_for(Waiting::Stable, deadline, out)?;
            }
            Command::Immediate => {
                self.repeat_next_ms = None;
                self.send_immediate(out)?;
            }
            Command::ImmediateRepeat => self.repeat_next_ms = Some(now_ms),
            Command::Zero => self.wait_for(Waiting::Zero, deadline, out)?,
            Command::Tare => self.wait_for(Waiting::Tare, deadline, out)?,
            Command::ZeroImmediate => {
                let response = match self.scale.zero(false) {
                    Ok(()) => Response::status("ZI", Status::Executed),
                    Err(ZeroError::AboveRange) => Response::status("ZI", Status::Overload),
                    Err(ZeroError::BelowRange) => Response::status("ZI", Status::Underload),
                    Err(ZeroError::NoData | ZeroError::Unstable) => {
                        Response::status("ZI", Status::NotExecutable)
                    }
                };
                self.send(&response, out)?;
            }
            Command::TareImmediate => {
                let stable = self.scale.is_stable();
                let response = match self.scale.tare_current(false) {
                    Ok(t) => Response::weight(
                        "TI",
                        if stable {
                            Status::Stable
                        } else {
                            Status::Dynamic
                        },
                        self.weight(t),
                    ),
                    Err(TareError::Overload) => Response::status("TI", Status::Overload),
                    Err(TareError::Underload) => Response::status("TI", Status::Underload),
                    Err(TareError::NoData | TareError::Unstable) => {
                        Response::status("TI", Status::NotExecutable)
                    }
                };
                self.send(&response, out)?;
            }
            Command::TareValue(None) => {
                let tare = self.weight(self.scale.tare());
                self.send(&Response::weight("TA", Status::Executed, tare), out)?;
            }
            Command::TareValue(Some(preset)) => {
                let cfg = self.scale.config();
                let lsd = (preset.unit == cfg.unit)
                    .then(|| preset.with_decimals(cfg.decimals))
                    .flatten();
                let response = match lsd.map(|w| self.scale.set_tare(w.value)) {
                    Some(Ok(())) => {
                        Response::weight("TA", Status::Executed, self.weight(self.scale.tare()))
                    }
                    _ => Response::status("TA", Status::Logical),
                };
                self.send(&response, out)?;
            }
            Command::TareClear => {
                self.scale.clear_tare();
                self.send(&Response::status("TAC", Status::Executed), out)?;
            }
            Command::Reset => {
                self.repeat_next_ms = None;
                self.scale.clear_tare();
                self.send_quoted("I4", Status::Executed, &[self.info.serial], out)?;
            }
            Command::Info(0) => {
                for (i, (level, name)) in COMMANDS.iter().enumerate() {
                    let status = if i + 1 == COMMANDS.len() {
                        Status::Executed
                    } else {
                        Status::More
                    };
                    let mut buf = [0u8; 24];
                    let mut w = ByteWriter::new(&mut buf);
                    let params = w
                        .push_u64(u64::from(*level), 1)
                        .and_then(|()| w.push(b' '))
                        .and_then(|()| w.push(b'"'))
                        .and_then(|()| w.extend(name.as_bytes()))
                        .and_then(|()| w.push(b'"'))
                        .ok()
                        .and_then(|()| core::str::from_utf8(w.into_written()).ok())
                        .unwrap_or("");
                    let response = Response::Reply {
                        id: "I0",
                        status,
                        body: Body::Params(params),
                    };
                    self.send(&response, out)?;
                }
            }
            Command::Info(1) => {
                let response = Response::Reply {
                    id: "I1",
                    status: Status::Executed,
                    body: Body::Params(self.info.level),
                };
                self.send(&response, out)?;
            }
            Command::Info(2) => {
                let cfg = *self.scale.config();
                let mut buf = [0u8; 48];
                let mut w = ByteWriter::new(&mut buf);
                let capacity = self.weight(cfg.capacity);
                let ok = w
                    .extend(self.info.model.as_bytes())
                    .and_then(|()| w.push(b' '))
                    .and_then(|()| capacity.write_decimal(&mut w))
                    .and_then(|()| w.push(b' '))
                    .and_then(|()| w.extend(cfg.unit.as_bytes()));
                let text = ok
                    .ok()
                    .and_then(|()| core::str::from_utf8(w.into_written()).ok())
                    .unwrap_or("");
                self.send_quoted("I2", Status::Executed, &[text], out)?;
            }
            Command::Info(3) => {
                self.send_quoted("I3", Status::Executed, &[self.info.software], out)?
            }
            Command::Info(_) => {
                self.send_quoted("I4", Status::Executed, &[self.info.serial], out)?
            }
            Command::Other { .. } => out.write_all(b"ES\r\n")?,
        }
        Ok(())
    }

    fn wait_for<W: Write>(
        &mut self,
        what: Waiting,
        deadline: u64,
        out: &mut W,
    ) -> Result<(), W::Error> {
        if !self.try_execute(what, out)? {
            self.waiting = Some((what, deadline));
        }
        Ok(())
    }

    fn send_quoted<W: Write>(
        &self,
        id: &str,
        status: Status,
        params: &[&str],
        out: &mut W,
    ) -> Result<(), W::Error> {
        let mut buf = [0u8; 96];
        let mut w = ByteWriter::new(&mut buf);
        let mut ok = w.extend(id.as_bytes()).is_ok()
            && w.push(b' ').is_ok()
            && w.push(status.as_byte()).is_ok();
        for p in params {
            ok = ok
                && w.push(b' ').is_ok()
                && w.push(b'"').is_ok()
                && w.extend(p.as_bytes()).is_ok()
                && w.push(b'"').is_ok();
        }
        ok = ok && w.extend(b"\r\n").is_ok();
        if ok {
            out.write_all(w.written())
        } else {
            out.write_all(b"EL\r\n")
        }
    }
}

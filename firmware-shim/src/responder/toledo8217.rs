//! Toledo 8217 responder: W, Z, T, Twwwww, C, A, B, E/F (echo mode); anything else gets the
//! status byte.
//!
//! `W` answers the weight, or `? <status>` while in motion, negative or over capacity. A `T`
//! followed by five digits within [`DIGITAL_TARE_WINDOW_MS`] is a digital tare. Must not block,
//! read a clock or allocate.

use embedded_io::Write;

use crate::scale::{Condition, Scale};
use crate::wire::toledo8217::{Reply, StatusByte, encode_reply};
use crate::wire::{Unit, Weight};

/// How long after `T` digits of a digital tare may arrive.
pub const DIGITAL_TARE_WINDOW_MS: u64 = 100;

/// A Toledo 8217 responder around a scale with an `F`-sample filter.
#[derive(Debug, Clone)]
pub struct Toledo8217Responder<const F: usize> {
    scale: Scale<F>,
    echo: bool,
    tare_digits: Option<([u8; 5], usize, u64)>,
}

impl<const F: usize> Toledo8217Responder<F> {
    /// A responder for `scale` (configure it in kg with 3 decimals or lb with 2).
    pub fn new(scale: Scale<F>) -> Self {
        Self {
            scale,
            echo: false,
            tare_digits: None,
        }
    }

    /// The scale.
    pub fn scale(&self) -> &Scale<F> {
        &self.scale
    }

    /// The scale, to feed samples.
    pub fn scale_mut(&mut self) -> &mut Scale<F> {
        &mut self.scale
    }

    /// The status byte for the current state.
    pub fn status(&self) -> StatusByte {
        let mut flags = 0;
        match self.scale.reading() {
            None => flags |= StatusByte::MOTION,
            Some(r) => {
                if !r.stable {
                    flags |= StatusByte::MOTION;
                }
                match r.condition {
                    Condition::Overload => flags |= StatusByte::OVER_CAPACITY,
                    Condition::Underload => flags |= StatusByte::UNDER_ZERO,
                    Condition::Normal => {}
                }
                if r.net < 0 {
                    flags |= StatusByte::UNDER_ZERO;
                }
                if r.gross == 0 {
                    flags |= StatusByte::CENTER_OF_ZERO;
                }
                if r.tare != 0 {
                    flags |= StatusByte::NET;
                }
            }
        }
        StatusByte::from_flags(flags)
    }

    fn reply<W: Write>(&self, reply: &Reply, out: &mut W) -> Result<(), W::Error> {
        let mut buf = [0u8; 24];
        match encode_reply(reply, &mut buf) {
            Ok(n) => out.write_all(&buf[..n]),
            Err(_) => self.send_status(out),
        }
    }

    fn send_status<W: Write>(&self, out: &mut W) -> Result<(), W::Error> {
        out.write_all(&[0x02, b'?', self.status().0, 0x0D])
    }

    /// Handles bytes received at `now_ms`, writing replies to `out`.
    pub fn on_bytes<W: Write>(
        &mut self,
        input: &[u8],
        now_ms: u64,
        out: &mut W,
    ) -> Result<(), W::Error> {
        for &raw in input {
            let b = raw & 0x7F;
            if self.echo {
                if b == b'F' {
                    self.echo = false;
                    self.reply(&Reply::EchoEnd, out)?;
                } else {
                    out.write_all(&[raw])?;
                }
                continue;
            }
            if let Some((mut digits, n, started)) = self.tare_digits {
                if b.is_ascii_digit() && now_ms.saturating_sub(started) <= DIGITAL_TARE_WINDOW_MS {
                    digits[n] = b;
                    if n + 1 == digits.len() {
                        self.tare_digits = None;
                        self.preset_tare(&digits, out)?;
                    } else {
                        self.tare_digits = Some((digits, n + 1, started));
                    }
                    continue;
                }
                // Not a digital tare after all: a plain `T`, then this byte.
                self.tare_digits = None;
                self.tare(out)?;
            }
            self.command(b, now_ms, out)?;
        }
        Ok(())
    }

    /// Completes a pending plain `T` once the digital-tare window has passed.
    pub fn tick<W: Write>(&mut self, now_ms: u64, out: &mut W) -> Result<(), W::Error> {
        if let Some((_, _, started)) = self.tare_digits {
            if now_ms.saturating_sub(started) > DIGITAL_TARE_WINDOW_MS {
                self.tare_digits = None;
                self.tare(out)?;
            }
        }
        Ok(())
    }

    fn tare<W: Write>(&mut self, out: &mut W) -> Result<(), W::Error> {
        // Refusals show up in the status byte the scale sends back.
        let _ = self.scale.tare_current(true);
        self.send_status(out)
    }

    fn preset_tare<W: Write>(&mut self, digits: &[u8; 5], out: &mut W) -> Result<(), W::Error> {
        let value = digits
            .iter()
            .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
        let cfg = self.scale.config();
        let decimals = if cfg.unit == Unit::Pound { 2 } else { 3 };
        if let Some(w) = Weight::new(value, decimals, cfg.unit).with_decimals(cfg.decimals) {
            let _ = self.scale.set_tare(w.value);
        }
        self.send_status(out)
    }

    fn command<W: Write>(&mut self, b: u8, now_ms: u64, out: &mut W) -> Result<(), W::Error> {
        match b {
            b'W' => match self.scale.reading() {
                Some(r) if r.stable && r.condition == Condition::Normal && r.net >= 0 => {
                    let reply = Reply::Weight {
                        weight: self.scale.weight(r.net),
                        net: r.tare != 0,
                    };
                    self.reply(&reply, out)
                }
                _ => self.send_status(out),
            },
            b'Z' => {
                let _ = self.scale.zero(true);
                self.send_status(out)
            }
            b'T' => {
                self.tare_digits = Some(([b'0'; 5], 0, now_ms));
                Ok(())
            }
            b'C' => {
                if self.scale.is_stable() {
                    self.scale.clear_tare();
                }
                self.send_status(out)
            }
            b'A' => self.reply(&Reply::Ack, out),
            b'B' => self.reply(&Reply::Status(StatusByte::from_flags(0)), out),
            b'E' => {
                self.echo = true;
                self.reply(&Reply::EchoStart, out)
            }
            b'F' => self.reply(&Reply::EchoEnd, out),
            _ => self.send_status(out),
        }
    }
}

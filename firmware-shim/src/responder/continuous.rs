//! Continuous-output emitter: sends a Mettler Toledo continuous frame or a Yaohua A9 frame from
//! the scale's state at a fixed interval. Must not block, read a clock or allocate.

use embedded_io::Write;

use crate::scale::{Condition, Scale};
use crate::wire::continuous::{self, ContinuousConfig, ContinuousFrame};
use crate::wire::yaohua;

/// Which frame to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContinuousFormat {
    /// Mettler Toledo standard continuous output.
    MettlerToledo(ContinuousConfig),
    /// Yaohua XK3190-A9 12-byte frame.
    YaohuaA9,
}

/// Emits a frame every `interval_ms`.
#[derive(Debug, Clone)]
pub struct ContinuousEmitter {
    format: ContinuousFormat,
    interval_ms: u32,
    next_ms: Option<u64>,
}

impl ContinuousEmitter {
    /// An emitter; the first frame goes out on the first [`ContinuousEmitter::tick`].
    pub fn new(format: ContinuousFormat, interval_ms: u32) -> Self {
        Self {
            format,
            interval_ms: interval_ms.max(1),
            next_ms: None,
        }
    }

    /// The Mettler Toledo frame for the scale's current state, if it has a reading.
    pub fn mettler_frame<const F: usize>(scale: &Scale<F>) -> Option<ContinuousFrame> {
        let r = scale.reading()?;
        let cfg = scale.config();
        let mut d = cfg.division;
        while d >= 10 && d % 10 == 0 {
            d /= 10;
        }
        Some(ContinuousFrame {
            weight: scale.weight(if r.tare != 0 { r.net } else { r.gross }),
            tare: scale.weight(r.tare),
            increment: if matches!(d, 1 | 2 | 5) { d as u8 } else { 0 },
            net: r.tare != 0,
            out_of_range: r.condition != Condition::Normal,
            motion: !r.stable,
            not_zeroed: false,
            print_request: false,
            expanded: false,
        })
    }

    /// Writes one frame if the interval has passed.
    pub fn tick<const F: usize, W: Write>(
        &mut self,
        scale: &Scale<F>,
        now_ms: u64,
        out: &mut W,
    ) -> Result<(), W::Error> {
        if self.next_ms.is_some_and(|next| now_ms < next) {
            return Ok(());
        }
        self.next_ms = Some(now_ms.saturating_add(u64::from(self.interval_ms)));
        let Some(reading) = scale.reading() else {
            return Ok(());
        };
        match self.format {
            ContinuousFormat::MettlerToledo(config) => {
                let Some(frame) = Self::mettler_frame(scale) else {
                    return Ok(());
                };
                let mut buf = [0u8; continuous::MAX_FRAME];
                if let Ok(n) = continuous::encode(&frame, config, &mut buf) {
                    out.write_all(&buf[..n])?;
                }
            }
            ContinuousFormat::YaohuaA9 => {
                let weight = scale.weight(reading.net);
                if let Ok(frame) = yaohua::encode_a9(&weight) {
                    out.write_all(&frame)?;
                }
            }
        }
        Ok(())
    }
}

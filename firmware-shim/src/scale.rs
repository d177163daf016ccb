//! The scale core: a pure state machine fed raw ADC counts with a timestamp.
//!
//! It filters (moving average over `F` samples), converts counts to weight with an exact
//! rational calibration, rounds to the division, and keeps zero, tare, overload/underload and
//! motion (stable when max − min ≤ N divisions for at least T ms). Weights are integers in the
//! display's least significant digit ("LSD": with 3 decimals in kg, 1 LSD = 1 g), never floats.
//! The core must not read a clock, touch hardware or know any wire protocol; responders in
//! [`crate::responder`] and the hub's simulators drive it.

use core::fmt;

use crate::wire::{Unit, Weight};

/// Counts-to-weight calibration: `counts` raw counts above zero weigh `weight` LSD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calibration {
    /// Raw counts for the reference weight (non-zero; negative for inverted cells).
    pub counts: i64,
    /// The reference weight in LSD (positive).
    pub weight: i64,
}

/// Scale settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleConfig {
    /// Display unit.
    pub unit: Unit,
    /// Display decimals.
    pub decimals: u8,
    /// Division (verification scale interval) in LSD, e.g. 5 for 0.005 kg.
    pub division: i64,
    /// Maximum capacity in LSD, e.g. 30 000 for 30.000 kg.
    pub capacity: i64,
    /// Overload above capacity plus this many divisions.
    pub overload_margin_div: i64,
    /// Underload below minus this many divisions (gross).
    pub underload_div: i64,
    /// Zeroing is allowed within ± this many LSD of the calibrated zero.
    pub zero_range: i64,
    /// Motion band in divisions.
    pub stable_band_div: i64,
    /// Time the weight must stay inside the band to be stable, in ms.
    pub stable_time_ms: u32,
    /// Counts-to-weight calibration.
    pub calibration: Calibration,
}

impl ScaleConfig {
    /// A 30 kg × 5 g platform scale: kg with 3 decimals, ±2 % zero range, 1 d / 500 ms motion.
    pub const fn platform_30kg(calibration: Calibration) -> Self {
        Self {
            unit: Unit::Kilogram,
            decimals: 3,
            division: 5,
            capacity: 30_000,
            overload_margin_div: 9,
            underload_div: 20,
            zero_range: 600,
            stable_band_div: 1,
            stable_time_ms: 500,
            calibration,
        }
    }
}

/// Why a configuration was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// Division must be positive.
    Division,
    /// Capacity must be a positive multiple of the division.
    Capacity,
    /// Calibration counts must be non-zero and weight positive.
    Calibration,
    /// The filter window `F` must be at least 1.
    FilterWindow,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Division => "division must be positive",
            Self::Capacity => "capacity must be a positive multiple of the division",
            Self::Calibration => "calibration needs non-zero counts and a positive weight",
            Self::FilterWindow => "filter window must hold at least one sample",
        })
    }
}

/// Load condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Within range.
    Normal,
    /// Above capacity plus the overload margin.
    Overload,
    /// Below the underload limit.
    Underload,
}

/// The latest state after a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// Gross weight in LSD, rounded to the division.
    pub gross: i64,
    /// Net weight (gross − tare) in LSD.
    pub net: i64,
    /// Tare in LSD.
    pub tare: i64,
    /// Inside the motion band for the stable time.
    pub stable: bool,
    /// Load condition.
    pub condition: Condition,
    /// Time of the sample.
    pub at_ms: u64,
}

/// Why zeroing was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroError {
    /// No sample yet.
    NoData,
    /// Not stable.
    Unstable,
    /// Above the zero range.
    AboveRange,
    /// Below the zero range.
    BelowRange,
}

impl fmt::Display for ZeroError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoData => "cannot zero: no reading yet",
            Self::Unstable => "cannot zero: weight not stable",
            Self::AboveRange => "cannot zero: above the zero range",
            Self::BelowRange => "cannot zero: below the zero range",
        })
    }
}

/// Why taring was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TareError {
    /// No sample yet.
    NoData,
    /// Not stable.
    Unstable,
    /// Gross (or the preset) above capacity, or overload.
    Overload,
    /// Gross (or the preset) below zero, or underload.
    Underload,
}

impl fmt::Display for TareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoData => "cannot tare: no reading yet",
            Self::Unstable => "cannot tare: weight not stable",
            Self::Overload => "cannot tare: above capacity",
            Self::Underload => "cannot tare: below zero",
        })
    }
}

/// Why a span calibration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalibrationError {
    /// No sample yet.
    NoData,
    /// Not stable.
    Unstable,
    /// The reference weight is not positive or gave no counts.
    BadReference,
}

impl fmt::Display for CalibrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoData => "cannot calibrate: no reading yet",
            Self::Unstable => "cannot calibrate: weight not stable",
            Self::BadReference => "cannot calibrate: reference weight gives no counts",
        })
    }
}

impl core::error::Error for ConfigError {}
impl core::error::Error for ZeroError {}
impl core::error::Error for TareError {}
impl core::error::Error for CalibrationError {}

/// A scale with an `F`-sample moving-average filter.
#[derive(Debug, Clone)]
pub struct Scale<const F: usize> {
    config: ScaleConfig,
    ring: [i32; F],
    ring_len: usize,
    ring_pos: usize,
    ring_sum: i64,
    reference_zero: i64,
    zero_offset: i64,
    tare: i64,
    band_min: i64,
    band_max: i64,
    stable_since_ms: u64,
    last: Option<Reading>,
}

fn div_round(n: i128, d: i128) -> i128 {
    let (n, d) = if d < 0 { (-n, -d) } else { (n, d) };
    if n >= 0 {
        (n + d / 2) / d
    } else {
        -((-n + d / 2) / d)
    }
}

impl<const F: usize> Scale<F> {
    /// A scale whose calibrated zero is `zero_counts` raw counts.
    pub fn new(config: ScaleConfig, zero_counts: i64) -> Result<Self, ConfigError> {
        if F == 0 {
            return Err(ConfigError::FilterWindow);
        }
        if config.division <= 0 {
            return Err(ConfigError::Division);
        }
        if config.capacity <= 0 || config.capacity % config.division != 0 {
            return Err(ConfigError::Capacity);
        }
        if config.calibration.counts == 0 || config.calibration.weight <= 0 {
            return Err(ConfigError::Calibration);
        }
        Ok(Self {
            config,
            ring: [0; F],
            ring_len: 0,
            ring_pos: 0,
            ring_sum: 0,
            reference_zero: zero_counts,
            zero_offset: zero_counts,
            tare: 0,
            band_min: 0,
            band_max: 0,
            stable_since_ms: 0,
            last: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ScaleConfig {
        &self.config
    }

    /// Filtered raw counts (mean of the window), if any sample arrived.
    pub fn filtered_counts(&self) -> Option<i64> {
        (self.ring_len > 0)
            .then(|| div_round(i128::from(self.ring_sum), self.ring_len as i128) as i64)
    }

    fn counts_to_lsd(&self, counts: i64) -> i64 {
        let cal = self.config.calibration;
        div_round(
            i128::from(counts - self.zero_offset) * i128::from(cal.weight),
            i128::from(cal.counts),
        )
        .clamp(i128::from(i64::MIN / 4), i128::from(i64::MAX / 4)) as i64
    }

    fn round_to_division(&self, lsd: i64) -> i64 {
        let d = self.config.division;
        div_round(i128::from(lsd), i128::from(d)) as i64 * d
    }

    /// Feeds one raw sample taken at `now_ms` and returns the new reading.
    pub fn feed(&mut self, raw: i32, now_ms: u64) -> Reading {
        if self.ring_len < F {
            self.ring_len += 1;
        } else {
            self.ring_sum -= i64::from(self.ring[self.ring_pos]);
        }
        self.ring[self.ring_pos] = raw;
        self.ring_sum += i64::from(raw);
        self.ring_pos = (self.ring_pos + 1) % F;

        let filtered = self.filtered_counts().unwrap_or(0);
        let exact = self.counts_to_lsd(filtered);
        let band = self.config.stable_band_div * self.config.division;
        if self.last.is_none() {
            self.band_min = exact;
            self.band_max = exact;
            self.stable_since_ms = now_ms;
        } else {
            let lo = self.band_min.min(exact);
            let hi = self.band_max.max(exact);
            if hi - lo > band {
                self.band_min = exact;
                self.band_max = exact;
                self.stable_since_ms = now_ms;
            } else {
                self.band_min = lo;
                self.band_max = hi;
            }
        }
        let stable =
            now_ms.saturating_sub(self.stable_since_ms) >= u64::from(self.config.stable_time_ms);
        let c = &self.config;
        let condition = if exact > c.capacity + c.overload_margin_div * c.division {
            Condition::Overload
        } else if exact < -c.underload_div * c.division {
            Condition::Underload
        } else {
            Condition::Normal
        };
        let gross = self.round_to_division(exact);
        let reading = Reading {
            gross,
            net: gross - self.tare,
            tare: self.tare,
            stable,
            condition,
            at_ms: now_ms,
        };
        self.last = Some(reading);
        reading
    }

    /// The latest reading (tare changes are reflected immediately).
    pub fn reading(&self) -> Option<Reading> {
        self.last.map(|r| Reading {
            tare: self.tare,
            net: r.gross - self.tare,
            ..r
        })
    }

    /// True when the latest reading is stable.
    pub fn is_stable(&self) -> bool {
        self.last.is_some_and(|r| r.stable)
    }

    /// `lsd` as a [`Weight`] in the display unit.
    pub fn weight(&self, lsd: i64) -> Weight {
        Weight::new(lsd, self.config.decimals, self.config.unit)
    }

    /// Current net weight, if any sample arrived.
    pub fn net_weight(&self) -> Option<Weight> {
        self.reading().map(|r| self.weight(r.net))
    }

    /// Current tare in LSD.
    pub fn tare(&self) -> i64 {
        self.tare
    }

    /// Sets zero to the current filtered counts, within the zero range of the calibrated zero.
    /// Clears the tare.
    pub fn zero(&mut self, require_stable: bool) -> Result<(), ZeroError> {
        let last = self.last.ok_or(ZeroError::NoData)?;
        if require_stable && !last.stable {
            return Err(ZeroError::Unstable);
        }
        let filtered = self.filtered_counts().ok_or(ZeroError::NoData)?;
        let cal = self.config.calibration;
        let offset = div_round(
            i128::from(filtered - self.reference_zero) * i128::from(cal.weight),
            i128::from(cal.counts),
        );
        if offset > i128::from(self.config.zero_range) {
            return Err(ZeroError::AboveRange);
        }
        if offset < -i128::from(self.config.zero_range) {
            return Err(ZeroError::BelowRange);
        }
        self.zero_offset = filtered;
        self.tare = 0;
        self.rebase(last.at_ms);
        Ok(())
    }

    /// Tares the current gross weight; returns the tare in LSD.
    pub fn tare_current(&mut self, require_stable: bool) -> Result<i64, TareError> {
        let last = self.last.ok_or(TareError::NoData)?;
        if require_stable && !last.stable {
            return Err(TareError::Unstable);
        }
        match last.condition {
            Condition::Overload => return Err(TareError::Overload),
            Condition::Underload => return Err(TareError::Underload),
            Condition::Normal => {}
        }
        self.set_tare(last.gross)?;
        Ok(self.tare)
    }

    /// Presets the tare (LSD, rounded to the division).
    pub fn set_tare(&mut self, lsd: i64) -> Result<(), TareError> {
        let t = self.round_to_division(lsd);
        if t < 0 {
            return Err(TareError::Underload);
        }
        if t > self.config.capacity {
            return Err(TareError::Overload);
        }
        self.tare = t;
        Ok(())
    }

    /// Clears the tare.
    pub fn clear_tare(&mut self) {
        self.tare = 0;
    }

    /// Span calibration: the current load (above zero) weighs `reference_lsd`.
    pub fn calibrate_span(&mut self, reference_lsd: i64) -> Result<(), CalibrationError> {
        if reference_lsd <= 0 {
            return Err(CalibrationError::BadReference);
        }
        let last = self.last.ok_or(CalibrationError::NoData)?;
        if !last.stable {
            return Err(CalibrationError::Unstable);
        }
        let counts = self.filtered_counts().ok_or(CalibrationError::NoData)? - self.zero_offset;
        if counts == 0 {
            return Err(CalibrationError::BadReference);
        }
        self.config.calibration = Calibration {
            counts,
            weight: reference_lsd,
        };
        self.rebase(last.at_ms);
        Ok(())
    }

    /// Recomputes the latest reading after zero or calibration changed, keeping motion state.
    fn rebase(&mut self, at_ms: u64) {
        if let (Some(last), Some(filtered)) = (self.last, self.filtered_counts()) {
            let exact = self.counts_to_lsd(filtered);
            let gross = self.round_to_division(exact);
            self.band_min = exact;
            self.band_max = exact;
            self.last = Some(Reading {
                gross,
                net: gross - self.tare,
                tare: self.tare,
                at_ms,
                ..last
            });
        }
    }
}

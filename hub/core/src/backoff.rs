//! Capped exponential backoff with jitter: the one retry rule of every reconnecting task (the
//! uplink, central's consumer, serial ports, the device broker, the camera spool).
//!
//! Pure: the caller passes the random draw (`jitter` in `0..=1`), so the rule is tested
//! without randomness and without a clock.

use std::time::Duration;

/// Capped exponential backoff. The step starts at `first`, doubles per failure and never
/// exceeds `max`; each delay is the step scaled by a factor drawn from the jitter band (by
/// default the upper half of the step, `0.5..=1.0`), and is never more than `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    attempt: u32,
    band: (f64, f64),
}

impl Backoff {
    /// Starts at `first`, doubles per failure, never exceeds `max`; delays fall in the upper
    /// half of the current step, so a fleet does not retry in lockstep.
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            attempt: 0,
            band: (0.5, 1.0),
        }
    }

    /// The same rule with another jitter band: each delay is the step times a factor from
    /// `low..=high` (e.g. `0.8..=1.2` for ±20 % around the step), still capped at `max`.
    pub fn with_jitter_band(mut self, low: f64, high: f64) -> Backoff {
        self.band = (low.min(high), high.max(low));
        self
    }

    /// The delay before the next attempt; `jitter` in `0..=1` picks the point in the band
    /// (clamped). Doubles the next step up to the cap.
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let factor = 2f64.powi(self.attempt.min(30) as i32);
        let step = (self.first.as_secs_f64() * factor).min(self.max.as_secs_f64());
        self.attempt = self.attempt.saturating_add(1);
        let (low, high) = self.band;
        let scale = low + (high - low) * jitter.clamp(0.0, 1.0);
        Duration::from_secs_f64(step * scale).min(self.max)
    }

    /// A connection held (or a success): start again from `first`.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let top: Vec<u128> = (0..6).map(|_| b.next_delay(1.0).as_millis()).collect();
        assert_eq!(top, [100, 200, 400, 800, 1000, 1000]);
        let low = b.next_delay(0.0);
        assert_eq!(low, Duration::from_millis(500));
        b.reset();
        assert_eq!(b.next_delay(1.0), Duration::from_millis(100));
    }

    #[test]
    fn a_band_around_the_step_is_still_capped() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2))
            .with_jitter_band(0.8, 1.2);
        assert_eq!(b.next_delay(0.0), Duration::from_millis(80));
        assert_eq!(b.next_delay(1.0), Duration::from_millis(240));
        for _ in 0..10 {
            assert!(b.next_delay(1.0) <= Duration::from_secs(2));
        }
        // A first step above the cap waits the cap.
        let mut b = Backoff::new(Duration::from_millis(250), Duration::from_millis(100))
            .with_jitter_band(0.8, 1.2);
        assert_eq!(b.next_delay(1.0), Duration::from_millis(100));
    }
}

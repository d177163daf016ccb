//! HX711 24-bit load-cell ADC driver on `embedded-hal` 1.0.
//!
//! Bit-bangs PD_SCK (an [`OutputPin`]) and reads DOUT (an [`InputPin`]), with a [`DelayNs`] for
//! the clock phases. The gain/channel for the *next* conversion is chosen by the number of clock
//! pulses (25 = A/128, 26 = B/32, 27 = A/64); readings are 24-bit two's complement, sign-extended
//! here (not the datasheet's `^ 0x800000`, which gives offset binary). Holding PD_SCK high for
//! more than 60 µs powers the chip down. This driver must not disable interrupts or pick a
//! platform: if an interrupt can stretch a clock-high phase past 50 µs, the caller must guard
//! [`Hx711::read`] with its own critical section.

use core::fmt;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};

/// Channel and gain for the next conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Gain {
    /// Channel A, gain 128 (25 pulses). The chip's mode after reset or power-up.
    #[default]
    A128,
    /// Channel B, gain 32 (26 pulses).
    B32,
    /// Channel A, gain 64 (27 pulses).
    A64,
}

impl Gain {
    /// Total clock pulses per read that select this mode.
    pub const fn pulses(self) -> u8 {
        match self {
            Gain::A128 => 25,
            Gain::B32 => 26,
            Gain::A64 => 27,
        }
    }
}

/// Driver errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<PinE> {
    /// A pin operation failed.
    Pin(PinE),
    /// DOUT did not go low (data ready) within the allowed time.
    Timeout,
}

impl<PinE> From<PinE> for Error<PinE> {
    fn from(e: PinE) -> Self {
        Error::Pin(e)
    }
}

impl<PinE: fmt::Debug> fmt::Display for Error<PinE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Pin(e) => write!(f, "HX711 pin error: {e:?}"),
            Error::Timeout => f.write_str("HX711 data not ready in time"),
        }
    }
}

impl<PinE: fmt::Debug> core::error::Error for Error<PinE> {}

/// Microseconds PD_SCK is held high to power the chip down (datasheet: more than 60 µs).
pub const POWER_DOWN_US: u32 = 70;
const _: () = assert!(
    POWER_DOWN_US > 60,
    "power-down needs PD_SCK high for more than 60 us"
);
/// Microseconds per clock phase (datasheet: 0.2 µs min, 50 µs max high time).
pub const CLOCK_PHASE_US: u32 = 1;

/// Sign-extends a raw 24-bit two's-complement reading.
pub const fn sign_extend_24(raw: u32) -> i32 {
    ((raw << 8) as i32) >> 8
}

/// HX711 on a clock pin, a data pin and a delay.
#[derive(Debug)]
pub struct Hx711<Sck, Dout, Delay> {
    sck: Sck,
    dout: Dout,
    delay: Delay,
    gain: Gain,
}

impl<Sck, Dout, Delay, E> Hx711<Sck, Dout, Delay>
where
    Sck: OutputPin<Error = E>,
    Dout: InputPin<Error = E>,
    Delay: DelayNs,
{
    /// Takes the pins and drives PD_SCK low (chip powered, waiting for data).
    pub fn new(mut sck: Sck, dout: Dout, delay: Delay) -> Result<Self, Error<E>> {
        sck.set_low()?;
        Ok(Self {
            sck,
            dout,
            delay,
            gain: Gain::A128,
        })
    }

    /// Gives the pins and delay back.
    pub fn release(self) -> (Sck, Dout, Delay) {
        (self.sck, self.dout, self.delay)
    }

    /// The gain that reads will select for the following conversion.
    pub fn gain(&self) -> Gain {
        self.gain
    }

    /// Selects channel/gain. It is applied by the pulses of the next read, so the reading after
    /// that is the first one in the new mode (discard the one in between).
    pub fn set_gain(&mut self, gain: Gain) {
        self.gain = gain;
    }

    /// True when a conversion is ready (DOUT low).
    pub fn is_ready(&mut self) -> Result<bool, Error<E>> {
        Ok(self.dout.is_low()?)
    }

    /// Polls DOUT every `poll_us` until it is low, for at most `timeout_us`.
    pub fn wait_ready(&mut self, timeout_us: u32, poll_us: u32) -> Result<(), Error<E>> {
        let poll = poll_us.max(1);
        let mut waited = 0u32;
        loop {
            if self.dout.is_low()? {
                return Ok(());
            }
            if waited >= timeout_us {
                return Err(Error::Timeout);
            }
            self.delay.delay_us(poll);
            waited = waited.saturating_add(poll);
        }
    }

    /// Reads a conversion if one is ready, else `None` without clocking.
    pub fn try_read(&mut self) -> Result<Option<i32>, Error<E>> {
        if !self.dout.is_low()? {
            return Ok(None);
        }
        self.shift_in().map(Some)
    }

    /// Waits up to `timeout_us` for data, then reads it.
    pub fn read(&mut self, timeout_us: u32) -> Result<i32, Error<E>> {
        self.wait_ready(timeout_us, 10)?;
        self.shift_in()
    }

    fn shift_in(&mut self) -> Result<i32, Error<E>> {
        let mut raw: u32 = 0;
        for _ in 0..24 {
            self.sck.set_high()?;
            self.delay.delay_us(CLOCK_PHASE_US);
            let bit = self.dout.is_high()?;
            self.sck.set_low()?;
            self.delay.delay_us(CLOCK_PHASE_US);
            raw = (raw << 1) | u32::from(bit);
        }
        for _ in 24..self.gain.pulses() {
            self.sck.set_high()?;
            self.delay.delay_us(CLOCK_PHASE_US);
            self.sck.set_low()?;
            self.delay.delay_us(CLOCK_PHASE_US);
        }
        Ok(sign_extend_24(raw))
    }

    /// Powers the chip down: PD_SCK low, then high for [`POWER_DOWN_US`] µs (left high).
    pub fn power_down(&mut self) -> Result<(), Error<E>> {
        self.sck.set_low()?;
        self.sck.set_high()?;
        self.delay.delay_us(POWER_DOWN_US);
        Ok(())
    }

    /// Powers the chip up (PD_SCK low). The chip resets to channel A, gain 128; the configured
    /// gain is applied again by the next read.
    pub fn power_up(&mut self) -> Result<(), Error<E>> {
        self.sck.set_low()?;
        Ok(())
    }

    /// Power-cycles the chip to reset it.
    pub fn reset(&mut self) -> Result<(), Error<E>> {
        self.power_down()?;
        self.power_up()
    }
}

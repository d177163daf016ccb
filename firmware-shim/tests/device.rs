//! HX711 driver (mock pins), scale core, and the responders over in-memory buffers.

use std::convert::Infallible;

use embedded_hal_mock::eh1::MockError;
use embedded_hal_mock::eh1::delay::{CheckedDelay, Transaction as DelayTx};
use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction as PinTx};
use firmware_shim::hx711::{Error, Gain, Hx711, POWER_DOWN_US, sign_extend_24};
use firmware_shim::responder::{
    ContinuousEmitter, ContinuousFormat, DeviceInfo, SicsConfig, SicsResponder, Toledo8217Responder,
};
use firmware_shim::scale::{
    Calibration, CalibrationError, Condition, ConfigError, Scale, ScaleConfig, TareError, ZeroError,
};
use firmware_shim::wire::Unit;
use firmware_shim::wire::continuous::ContinuousConfig;

// ---------------------------------------------------------------- HX711

/// Expected pin and delay traffic for one read of `raw` with `gain`.
fn read_transactions(raw: u32, gain: Gain) -> (Vec<PinTx>, Vec<PinTx>, Vec<DelayTx>) {
    let mut sck = Vec::new();
    let mut dout = vec![PinTx::get(State::Low)];
    let mut delay = Vec::new();
    for i in (0..24).rev() {
        sck.push(PinTx::set(State::High));
        delay.push(DelayTx::delay_us(1));
        dout.push(PinTx::get(if raw >> i & 1 == 1 {
            State::High
        } else {
            State::Low
        }));
        sck.push(PinTx::set(State::Low));
        delay.push(DelayTx::delay_us(1));
    }
    for _ in 24..gain.pulses() {
        sck.push(PinTx::set(State::High));
        delay.push(DelayTx::delay_us(1));
        sck.push(PinTx::set(State::Low));
        delay.push(DelayTx::delay_us(1));
    }
    (sck, dout, delay)
}

fn read_once(raw: u32, gain: Gain) -> i32 {
    let (sck_tx, dout_tx, delay_tx) = read_transactions(raw, gain);
    let mut sck_all = vec![PinTx::set(State::Low)];
    sck_all.extend(sck_tx);
    let mut hx = Hx711::new(
        PinMock::new(&sck_all),
        PinMock::new(&dout_tx),
        CheckedDelay::new(&delay_tx),
    )
    .unwrap();
    hx.set_gain(gain);
    let value = hx.try_read().unwrap().unwrap();
    let (mut sck, mut dout, mut delay) = hx.release();
    sck.done();
    dout.done();
    delay.done();
    value
}

#[test]
fn hx711_reads_and_sign_extends() {
    assert_eq!(read_once(0x800001, Gain::A128), -8_388_607);
    assert_eq!(read_once(0x7FFFFF, Gain::A128), 8_388_607);
    assert_eq!(read_once(0x000001, Gain::B32), 1);
    assert_eq!(read_once(0xFFFFF3, Gain::A64), -13);
}

#[test]
fn hx711_sign_extension_vectors() {
    for (raw, value) in [
        (0x000001, 1),
        (0x000002, 2),
        (0xFFFFFF, -1),
        (0xFFFFF3, -13),
        (0xF00000, -1_048_576),
        (0x800000, -8_388_608),
        (0x7FFFFF, 8_388_607),
    ] {
        assert_eq!(sign_extend_24(raw), value, "{raw:#x}");
    }
}

#[test]
fn hx711_gain_pulses() {
    assert_eq!(
        [Gain::A128.pulses(), Gain::B32.pulses(), Gain::A64.pulses()],
        [25, 26, 27]
    );
}

#[test]
fn hx711_not_ready_does_not_clock() {
    let mut hx = Hx711::new(
        PinMock::new(&[PinTx::set(State::Low)]),
        PinMock::new(&[PinTx::get(State::High)]),
        CheckedDelay::new(&[]),
    )
    .unwrap();
    assert_eq!(hx.try_read(), Ok(None));
    let (mut sck, mut dout, mut delay) = hx.release();
    sck.done();
    dout.done();
    delay.done();
}

#[test]
fn hx711_wait_ready_times_out() {
    let mut hx = Hx711::new(
        PinMock::new(&[PinTx::set(State::Low)]),
        PinMock::new(&[
            PinTx::get(State::High),
            PinTx::get(State::High),
            PinTx::get(State::High),
        ]),
        CheckedDelay::new(&[DelayTx::delay_us(10), DelayTx::delay_us(10)]),
    )
    .unwrap();
    assert_eq!(hx.read(20), Err(Error::Timeout));
    let (mut sck, mut dout, mut delay) = hx.release();
    sck.done();
    dout.done();
    delay.done();
}

#[test]
fn hx711_power_down_and_up() {
    let mut hx = Hx711::new(
        PinMock::new(&[
            PinTx::set(State::Low),
            PinTx::set(State::Low),
            PinTx::set(State::High),
            PinTx::set(State::Low),
        ]),
        PinMock::new(&[]),
        CheckedDelay::new(&[DelayTx::delay_us(POWER_DOWN_US)]),
    )
    .unwrap();
    hx.power_down().unwrap();
    hx.power_up().unwrap();
    let (mut sck, mut dout, mut delay) = hx.release();
    sck.done();
    dout.done();
    delay.done();
}

#[test]
fn hx711_pin_errors_are_reported() {
    let err = MockError::Io(std::io::ErrorKind::Other);
    let mut hx = Hx711::new(
        PinMock::new(&[PinTx::set(State::Low)]),
        PinMock::new(&[PinTx::get(State::Low).with_error(err.clone())]),
        CheckedDelay::new(&[]),
    )
    .unwrap();
    assert_eq!(hx.is_ready(), Err(Error::Pin(err)));
    let (mut sck, mut dout, mut delay) = hx.release();
    sck.done();
    dout.done();
    delay.done();
}

// ---------------------------------------------------------------- scale core

/// 30 kg × 5 g, 100 counts per gram, zero at 50 000 counts.
fn platform<const F: usize>() -> Scale<F> {
    let cfg = ScaleConfig::platform_30kg(Calibration {
        counts: 100,
        weight: 1,
    });
    Scale::new(cfg, 50_000).unwrap()
}

fn counts(grams: i64) -> i32 {
    (50_000 + grams * 100) as i32
}

#[test]
fn scale_rounds_to_division_and_detects_stability() {
    let mut s = platform::<1>();
    let r = s.feed(counts(1_233), 0);
    assert_eq!(r.gross, 1_235);
    assert!(!r.stable);
    assert!(!s.feed(counts(1_234), 400).stable);
    let r = s.feed(counts(1_232), 500);
    assert!(r.stable, "within 1 d for 500 ms");
    assert_eq!(r.gross, 1_230);
    // A jump of more than one division restarts the window.
    assert!(!s.feed(counts(1_250), 600).stable);
    assert!(!s.feed(counts(1_250), 1_000).stable);
    assert!(s.feed(counts(1_250), 1_100).stable);
}

#[test]
fn scale_filters_with_a_moving_average() {
    let mut s = platform::<4>();
    s.feed(counts(0), 0);
    s.feed(counts(0), 1);
    s.feed(counts(0), 2);
    let r = s.feed(counts(4_000), 3);
    assert_eq!(r.gross, 1_000);
    assert_eq!(s.filtered_counts(), Some(i64::from(counts(1_000))));
}

#[test]
fn scale_tare_and_zero() {
    let mut s = platform::<1>();
    assert_eq!(s.zero(false), Err(ZeroError::NoData));
    assert_eq!(s.tare_current(false), Err(TareError::NoData));
    s.feed(counts(2_000), 0);
    assert_eq!(s.tare_current(true), Err(TareError::Unstable));
    s.feed(counts(2_000), 600);
    assert_eq!(s.tare_current(true), Ok(2_000));
    let r = s.feed(counts(3_000), 700);
    assert_eq!((r.gross, r.net, r.tare), (3_000, 1_000, 2_000));
    s.clear_tare();
    assert_eq!(s.reading().unwrap().net, 3_000);
    assert_eq!(s.set_tare(-5), Err(TareError::Underload));
    assert_eq!(s.set_tare(30_005), Err(TareError::Overload));
    s.set_tare(502).unwrap();
    assert_eq!(s.tare(), 500, "rounded to the division");

    // Zero range is ±600 g (2 % of 30 kg) around the calibrated zero.
    let mut s = platform::<1>();
    s.feed(counts(550), 0);
    s.feed(counts(550), 600);
    s.set_tare(100).unwrap();
    s.zero(true).unwrap();
    assert_eq!(s.tare(), 0, "zeroing clears the tare");
    assert_eq!(s.feed(counts(550), 700).gross, 0);
    assert_eq!(s.feed(counts(1_550), 800).gross, 1_000);
    s.feed(counts(700), 900);
    assert_eq!(s.zero(false), Err(ZeroError::AboveRange));
    s.feed(counts(-700), 1_000);
    assert_eq!(s.zero(false), Err(ZeroError::BelowRange));
    s.feed(counts(-600), 1_100);
    assert_eq!(s.zero(false), Ok(()));
}

#[test]
fn scale_overload_and_underload() {
    let mut s = platform::<1>();
    assert_eq!(s.feed(counts(30_045), 0).condition, Condition::Normal);
    assert_eq!(s.feed(counts(30_046), 1).condition, Condition::Overload);
    assert_eq!(s.feed(counts(-100), 2).condition, Condition::Normal);
    assert_eq!(s.feed(counts(-101), 3).condition, Condition::Underload);
    s.feed(counts(-101), 1_000);
    assert_eq!(s.tare_current(true), Err(TareError::Underload));
}

#[test]
fn scale_span_calibration_and_config_checks() {
    let mut s = platform::<1>();
    s.feed(50_000 + 2 * 123_456, 0);
    assert_eq!(s.calibrate_span(10_000), Err(CalibrationError::Unstable));
    s.feed(50_000 + 2 * 123_456, 600);
    s.calibrate_span(10_000).unwrap();
    assert_eq!(s.reading().unwrap().gross, 10_000);
    assert_eq!(s.feed(50_000 + 123_456, 700).gross, 5_000);
    assert_eq!(s.calibrate_span(0), Err(CalibrationError::BadReference));

    let base = *platform::<1>().config();
    let bad = |cfg: ScaleConfig| Scale::<1>::new(cfg, 0).unwrap_err();
    assert_eq!(
        bad(ScaleConfig {
            division: 0,
            ..base
        }),
        ConfigError::Division
    );
    assert_eq!(
        bad(ScaleConfig {
            capacity: 30_002,
            ..base
        }),
        ConfigError::Capacity
    );
    let cal = Calibration {
        counts: 0,
        weight: 1,
    };
    assert_eq!(
        bad(ScaleConfig {
            calibration: cal,
            ..base
        }),
        ConfigError::Calibration
    );
    assert_eq!(
        Scale::<0>::new(base, 0).unwrap_err(),
        ConfigError::FilterWindow
    );
}

// ---------------------------------------------------------------- responders

#[derive(Default)]
struct Out(Vec<u8>);

impl embedded_io::ErrorType for Out {
    type Error = Infallible;
}

impl embedded_io::Write for Out {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

impl Out {
    fn take(&mut self) -> String {
        String::from_utf8(std::mem::take(&mut self.0)).unwrap()
    }
}

/// A 220 g × 0.01 g balance, 100 counts per 0.01 g, zero at 0 counts.
fn balance() -> SicsResponder<'static, 1> {
    let cfg = ScaleConfig {
        unit: Unit::Gram,
        decimals: 2,
        division: 1,
        capacity: 22_000,
        overload_margin_div: 9,
        underload_div: 2_000,
        zero_range: 440,
        stable_band_div: 1,
        stable_time_ms: 500,
        calibration: Calibration {
            counts: 100,
            weight: 1,
        },
    };
    let info = DeviceInfo {
        serial: "B207696838",
        ..DeviceInfo::default()
    };
    SicsResponder::new(Scale::new(cfg, 0).unwrap(), SicsConfig::default(), info)
}

fn hundredths(g100: i64) -> i32 {
    (g100 * 100) as i32
}

#[test]
fn sics_s_waits_for_stability_then_answers() {
    let mut r = balance();
    let mut out = Out::default();
    r.scale_mut().feed(hundredths(10_000), 0);
    r.on_bytes(b"S\r\n", 10, &mut out).unwrap();
    assert_eq!(out.take(), "", "not stable yet");
    r.scale_mut().feed(hundredths(10_000), 500);
    r.tick(500, &mut out).unwrap();
    assert_eq!(out.take(), "S S     100.00 g\r\n");
    // Immediately stable: answered at once.
    r.on_bytes(b"S\r\n", 600, &mut out).unwrap();
    assert_eq!(out.0, b"S S     100.00 g\r\n");
}

#[test]
fn sics_s_times_out_with_s_i() {
    let mut r = balance();
    let mut out = Out::default();
    r.scale_mut().feed(0, 0);
    r.on_bytes(b"S\r\n", 0, &mut out).unwrap();
    for t in (100..3_000).step_by(100) {
        r.scale_mut().feed(hundredths(t as i64), t);
        r.tick(t, &mut out).unwrap();
    }
    assert_eq!(out.take(), "");
    r.tick(3_000, &mut out).unwrap();
    assert_eq!(out.take(), "S I\r\n");
}

#[test]
fn sics_si_sir_and_reset() {
    let mut r = balance();
    let mut out = Out::default();
    r.on_bytes(b"SI\r\n", 0, &mut out).unwrap();
    assert_eq!(out.take(), "S I\r\n", "no data yet");
    r.scale_mut().feed(hundredths(-1_234), 0);
    r.on_bytes(b"SI\r\n", 0, &mut out).unwrap();
    assert_eq!(out.take(), "S D     -12.34 g\r\n");
    r.on_bytes(b"SIR\r\n", 100, &mut out).unwrap();
    r.tick(200, &mut out).unwrap();
    r.tick(350, &mut out).unwrap();
    r.scale_mut().feed(hundredths(-1_234), 600);
    r.tick(600, &mut out).unwrap();
    assert_eq!(
        out.take(),
        "S D     -12.34 g\r\nS D     -12.34 g\r\nS S     -12.34 g\r\n"
    );
    r.on_bytes(b"@\r\n", 700, &mut out).unwrap();
    r.tick(2_000, &mut out).unwrap();
    assert_eq!(out.take(), "I4 A \"B207696838\"\r\n", "@ stops SIR");
}

#[test]
fn sics_zero_tare_and_tare_register() {
    let mut r = balance();
    let mut out = Out::default();
    r.scale_mut().feed(hundredths(200), 0);
    r.scale_mut().feed(hundredths(200), 500);
    r.on_bytes(b"Z\r\n", 500, &mut out).unwrap();
    assert_eq!(out.take(), "Z A\r\n");
    r.scale_mut().feed(hundredths(5_200), 600);
    r.scale_mut().feed(hundredths(5_200), 1_100);
    r.on_bytes(b"T\r\n", 1_100, &mut out).unwrap();
    assert_eq!(out.take(), "T S      50.00 g\r\n");
    r.on_bytes(b"S\r\nTA\r\n", 1_100, &mut out).unwrap();
    assert_eq!(out.take(), "S S       0.00 g\r\nTA A      50.00 g\r\n");
    r.on_bytes(b"TA 2.486 g\r\nTA 2.48 g\r\nTA 1 kg\r\n", 1_200, &mut out)
        .unwrap();
    assert_eq!(out.take(), "TA L\r\nTA A       2.48 g\r\nTA L\r\n");
    r.on_bytes(b"TAC\r\nS\r\n", 1_200, &mut out).unwrap();
    assert_eq!(out.take(), "TAC A\r\nS S      50.00 g\r\n");
    // Zero range is ±4.40 g.
    r.scale_mut().feed(hundredths(10_000), 2_000);
    r.on_bytes(b"ZI\r\n", 2_000, &mut out).unwrap();
    assert_eq!(out.take(), "ZI +\r\n");
}

#[test]
fn sics_overload_underload_and_errors() {
    let mut r = balance();
    let mut out = Out::default();
    r.scale_mut().feed(hundredths(22_010), 0);
    r.on_bytes(b"S\r\nSI\r\n", 0, &mut out).unwrap();
    assert_eq!(out.take(), "S +\r\nS +\r\n");
    r.scale_mut().feed(hundredths(-2_000), 5);
    r.on_bytes(b"SI\r\n", 5, &mut out).unwrap();
    assert_eq!(out.take(), "S D     -20.00 g\r\n");
    r.scale_mut().feed(hundredths(-2_001), 10);
    r.on_bytes(b"S\r\n", 10, &mut out).unwrap();
    assert_eq!(out.take(), "S -\r\n");
    r.on_bytes(b"XYZ\r\ns\r\nS 1\r\n", 20, &mut out).unwrap();
    assert_eq!(out.take(), "ES\r\nES\r\nES\r\n");
    r.on_bytes(b"S\xff\xfe\r\n", 30, &mut out).unwrap();
    assert_eq!(out.take(), "ET\r\n");
    let long = [b'A'; 100];
    r.on_bytes(&long, 40, &mut out).unwrap();
    r.on_bytes(b"\r\n", 40, &mut out).unwrap();
    assert_eq!(out.take(), "ES\r\n");
    assert_eq!(r.frame_stats().overlong, 1);
    assert_eq!(r.frame_stats().garbage_frames, 1);
}

#[test]
fn sics_info_commands() {
    let mut r = balance();
    let mut out = Out::default();
    r.on_bytes(b"I1\r\nI2\r\nI3\r\nI4\r\n", 0, &mut out)
        .unwrap();
    assert_eq!(
        out.take(),
        "I1 A \"01\" \"2.00\" \"2.20\" \"1.00\" \"1.50\"\r\n\
         I2 A \"FW-SHIM 220.00 g\"\r\n\
         I3 A \"0.1.0\"\r\n\
         I4 A \"B207696838\"\r\n"
    );
    r.on_bytes(b"I0\r\n", 0, &mut out).unwrap();
    let text = out.take();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "I0 B 0 \"I0\"");
    assert_eq!(*lines.last().unwrap(), "I0 A 1 \"TAC\"");
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .all(|l| l.starts_with("I0 B "))
    );
}

/// 15 kg × 1 g in kg with 3 decimals, 10 counts per gram, zero at 0.
fn retail_scale() -> Scale<1> {
    let cfg = ScaleConfig {
        unit: Unit::Kilogram,
        decimals: 3,
        division: 1,
        capacity: 15_000,
        overload_margin_div: 9,
        underload_div: 20,
        zero_range: 300,
        stable_band_div: 1,
        stable_time_ms: 300,
        calibration: Calibration {
            counts: 10,
            weight: 1,
        },
    };
    Scale::new(cfg, 0).unwrap()
}

#[test]
fn toledo8217_responder_matches_vectors() {
    let mut r = Toledo8217Responder::new(retail_scale());
    let mut out = Out::default();
    r.scale_mut().feed(12_340, 0);
    r.on_bytes(b"W", 0, &mut out).unwrap();
    assert_eq!(out.0, b"\x02?A\r", "motion");
    out.take();
    r.scale_mut().feed(12_340, 300);
    r.on_bytes(b"W", 300, &mut out).unwrap();
    assert_eq!(out.0, b"\x0201.234\r");
    out.take();
    // Digital tare 0.500 kg, then a net reading.
    r.on_bytes(b"T00500", 310, &mut out).unwrap();
    assert_eq!(out.0, b"\x02?`\r", "bit 6 + net");
    out.take();
    r.scale_mut().feed(17_340, 400);
    r.scale_mut().feed(17_340, 700);
    r.on_bytes(b"W", 700, &mut out).unwrap();
    assert_eq!(out.0, b"\x0201.234N\r");
    out.take();
    r.on_bytes(b"C", 700, &mut out).unwrap();
    out.take();
    r.scale_mut().feed(-50, 800);
    r.scale_mut().feed(-50, 1_100);
    r.on_bytes(b"W", 1_100, &mut out).unwrap();
    assert_eq!(out.0, b"\x02?D\r", "under zero");
    out.take();
    r.scale_mut().feed(160_000, 1_200);
    r.scale_mut().feed(160_000, 1_500);
    r.on_bytes(b"W", 1_500, &mut out).unwrap();
    assert_eq!(out.0, b"\x02?B\r", "over capacity");
    out.take();
    r.on_bytes(b"Ehello", 1_600, &mut out).unwrap();
    assert_eq!(out.0, b"\x02E\rhello");
    out.take();
    r.on_bytes(b"F", 1_600, &mut out).unwrap();
    assert_eq!(out.0, b"\x02F\r");
}

#[test]
fn toledo8217_plain_tare_completes_on_tick() {
    let mut r = Toledo8217Responder::new(retail_scale());
    let mut out = Out::default();
    r.scale_mut().feed(5_000, 0);
    r.scale_mut().feed(5_000, 300);
    r.on_bytes(b"T", 300, &mut out).unwrap();
    r.tick(350, &mut out).unwrap();
    assert!(out.0.is_empty(), "waiting for digits");
    r.tick(401, &mut out).unwrap();
    assert_eq!(out.0, b"\x02?`\r");
    assert_eq!(r.scale().tare(), 500);
    out.take();
    // `T` followed by a non-digit: tare, then the other command.
    r.on_bytes(b"TW", 500, &mut out).unwrap();
    assert_eq!(out.0, b"\x02?`\r\x0200.000N\r");
}

#[test]
fn continuous_emitter_matches_vectors() {
    let mut scale = retail_scale();
    scale.feed(12_340, 0);
    scale.feed(12_340, 300);
    let mut e =
        ContinuousEmitter::new(ContinuousFormat::MettlerToledo(ContinuousConfig::FULL), 100);
    let mut out = Out::default();
    e.tick(&scale, 300, &mut out).unwrap();
    e.tick(&scale, 350, &mut out).unwrap();
    assert_eq!(
        out.0,
        [
            0x02, 0x2d, 0x30, 0x20, 0x30, 0x30, 0x31, 0x32, 0x33, 0x34, 0x30, 0x30, 0x30, 0x30,
            0x30, 0x30, 0x0d, 0x2a
        ],
        "one frame per interval"
    );
    out.take();
    scale.set_tare(500).unwrap();
    scale.feed(17_340, 400);
    e.tick(&scale, 400, &mut out).unwrap();
    assert_eq!(
        out.0,
        [
            0x02, 0x2d, 0x39, 0x20, 0x30, 0x30, 0x31, 0x32, 0x33, 0x34, 0x30, 0x30, 0x30, 0x35,
            0x30, 0x30, 0x0d, 0x1c
        ]
    );
    out.take();
    let mut y = ContinuousEmitter::new(ContinuousFormat::YaohuaA9, 100);
    y.tick(&scale, 400, &mut out).unwrap();
    assert_eq!(
        firmware_shim::wire::yaohua::decode_a9(&out.0),
        Ok(firmware_shim::wire::Weight::new(1234, 3, Unit::Kilogram))
    );
}

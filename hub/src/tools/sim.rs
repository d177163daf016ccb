//! Simulated devices on pseudo-terminals: `hub sim scale` and `hub sim scanner`.
//!
//! The simulated scale runs the real `firmware-shim` code on the host — `scale::Scale` and the
//! `SicsResponder`, `Toledo8217Responder` or `ContinuousEmitter` — fed by a load-cell model
//! (weight → HX711 counts with Gaussian-like noise and first-order settling, plus an optional
//! swing that stands for goods being moved). The simulated scanner writes codes with the
//! configured framing. Both are driven by line commands on stdin (`put 1.250`, `move`,
//! `unplug`, `replug`, `scan <code>` …) and report on stdout: `pty <path>`, `link <path>`,
//! `ready`, then `ok <command>` per command. The link is a symlink re-created on every replug,
//! like `/dev/serial/by-id/...`, while the pty number changes, like `ttyUSB0` → `ttyUSB1`.
//!
//! The simulator never blocks on the wire: like a UART it transmits whether or not anybody
//! listens, and drops what the pseudo-terminal cannot take.

use crate::config::devices::{ScaleProtocol, ScannerFraming};
use firmware_shim::responder::{
    ContinuousEmitter, ContinuousFormat, DeviceInfo, SicsConfig, SicsResponder, Toledo8217Responder,
};
use firmware_shim::scale::{Calibration, Scale, ScaleConfig};
use firmware_shim::wire::continuous::ContinuousConfig;
use firmware_shim::wire::framer::Terminator;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::time::Instant;
use tokio_serial::{SerialPort, SerialStream};

/// Raw HX711 counts at an empty pan.
pub const ZERO_COUNTS: i64 = 84_000;
/// Counts per gram of the simulated load cell (1,000,000 counts for 10 kg).
pub const COUNTS_PER_G: f64 = 100.0;
/// Standard deviation of the ADC noise, in counts (0.3 g: well inside one 5 g division).
pub const NOISE_COUNTS: f64 = 30.0;
/// Time constant of the pan settling after a change, in seconds.
pub const SETTLE_TAU_S: f64 = 0.15;
/// Sample period of the simulated HX711 (80 samples per second).
pub const SAMPLE_PERIOD: Duration = Duration::from_micros(12_500);
/// Moving-average window of the simulated scale core.
pub const FILTER: usize = 8;

/// The load cell: where the pan is, where it is going, and how it wobbles.
#[derive(Debug, Clone)]
pub struct LoadCell {
    target_g: f64,
    actual_g: f64,
    moving: bool,
}

impl Default for LoadCell {
    fn default() -> Self {
        Self::new()
    }
}

impl LoadCell {
    pub fn new() -> Self {
        LoadCell {
            target_g: 0.0,
            actual_g: 0.0,
            moving: false,
        }
    }

    /// Puts `grams` on the pan (replacing what was there).
    pub fn put(&mut self, grams: f64) {
        self.target_g = grams;
    }

    /// Starts or stops goods moving on the pan.
    pub fn set_moving(&mut self, moving: bool) {
        self.moving = moving;
    }

    /// One HX711 sample at `t_s` seconds, `dt_s` after the previous one.
    pub fn sample(&mut self, t_s: f64, dt_s: f64) -> i32 {
        let swing = if self.moving {
            // Two incommensurate swings: never the same reading twice in a row.
            60.0 * (std::f64::consts::TAU * 1.3 * t_s).sin()
                + 25.0 * (std::f64::consts::TAU * 3.7 * t_s).sin()
        } else {
            0.0
        };
        let goal = self.target_g + swing;
        self.actual_g += (goal - self.actual_g) * (1.0 - (-dt_s / SETTLE_TAU_S).exp());
        // Sum of four uniforms: close enough to Gaussian for a load cell's noise.
        let u: f64 = (0..4).map(|_| rand::random::<f64>()).sum::<f64>() - 2.0;
        let noise = u * NOISE_COUNTS * 3f64.sqrt();
        let counts = ZERO_COUNTS as f64 + self.actual_g * COUNTS_PER_G + noise;
        counts.round().clamp(-8_388_608.0, 8_388_607.0) as i32
    }
}

/// The scale the simulator runs: 30 kg × 5 g, kg with 3 decimals.
pub fn scale_config() -> ScaleConfig {
    ScaleConfig::platform_30kg(Calibration {
        counts: 1_000_000,
        weight: 10_000,
    })
}

/// A `Vec` as an `embedded_io` writer, so the firmware responders write straight into it.
#[derive(Debug, Default)]
pub struct VecWriter(pub Vec<u8>);

impl embedded_io::ErrorType for VecWriter {
    type Error = core::convert::Infallible;
}

impl embedded_io::Write for VecWriter {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// The firmware a simulated scale runs.
pub enum Firmware {
    Sics(Box<SicsResponder<'static, FILTER>>),
    Toledo(Box<Toledo8217Responder<FILTER>>),
    Stream {
        scale: Box<Scale<FILTER>>,
        emitter: ContinuousEmitter,
    },
}

impl std::fmt::Debug for Firmware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Firmware::Sics(_) => "Firmware::Sics",
            Firmware::Toledo(_) => "Firmware::Toledo",
            Firmware::Stream { .. } => "Firmware::Stream",
        })
    }
}

impl Firmware {
    /// The firmware for `protocol`; continuous protocols emit every `interval_ms`.
    pub fn new(protocol: ScaleProtocol, interval_ms: u32) -> anyhow::Result<Firmware> {
        let scale = Scale::<FILTER>::new(scale_config(), ZERO_COUNTS)
            .map_err(|e| anyhow::anyhow!("simulated scale configuration: {e}"))?;
        Ok(match protocol {
            ScaleProtocol::MtSics => Firmware::Sics(Box::new(SicsResponder::new(
                scale,
                SicsConfig::default(),
                DeviceInfo {
                    serial: "SIM0000001",
                    model: "HUB-SIM",
                    ..DeviceInfo::default()
                },
            ))),
            ScaleProtocol::Toledo8217 => {
                Firmware::Toledo(Box::new(Toledo8217Responder::new(scale)))
            }
            ScaleProtocol::MettlerContinuous => Firmware::Stream {
                scale: Box::new(scale),
                emitter: ContinuousEmitter::new(
                    ContinuousFormat::MettlerToledo(ContinuousConfig::FULL),
                    interval_ms,
                ),
            },
            ScaleProtocol::YaohuaA9 => Firmware::Stream {
                scale: Box::new(scale),
                emitter: ContinuousEmitter::new(ContinuousFormat::YaohuaA9, interval_ms),
            },
        })
    }

    fn scale_mut(&mut self) -> &mut Scale<FILTER> {
        match self {
            Firmware::Sics(r) => r.scale_mut(),
            Firmware::Toledo(r) => r.scale_mut(),
            Firmware::Stream { scale, .. } => scale,
        }
    }

    /// Feeds one ADC sample.
    pub fn sample(&mut self, counts: i32, now_ms: u64) {
        self.scale_mut().feed(counts, now_ms);
    }

    /// Bytes from the host.
    pub fn on_bytes(&mut self, input: &[u8], now_ms: u64, out: &mut VecWriter) {
        let _ = match self {
            Firmware::Sics(r) => r.on_bytes(input, now_ms, out),
            Firmware::Toledo(r) => r.on_bytes(input, now_ms, out),
            Firmware::Stream { .. } => Ok(()),
        };
    }

    /// Timers: waiting commands, `SIR` lines, continuous frames.
    pub fn tick(&mut self, now_ms: u64, out: &mut VecWriter) {
        let _ = match self {
            Firmware::Sics(r) => r.tick(now_ms, out),
            Firmware::Toledo(r) => r.tick(now_ms, out),
            Firmware::Stream { scale, emitter } => emitter.tick(scale.as_ref(), now_ms, out),
        };
    }
}

/// One plugged-in pseudo-terminal: the device keeps the master; the slave is what the hub
/// opens (by its path or the stable link).
struct Plugged {
    master: SerialStream,
    // Kept open so the master never reads EIO while the hub is between opens.
    _slave: SerialStream,
}

fn plug(link: Option<&Path>) -> anyhow::Result<Plugged> {
    let (master, slave) = SerialStream::pair()
        .map_err(|e| anyhow::anyhow!("cannot create a pseudo-terminal: {e}"))?;
    let path = slave
        .name()
        .ok_or_else(|| anyhow::anyhow!("the pseudo-terminal has no path"))?;
    println!("pty {path}");
    if let Some(link) = link {
        let tmp = link.with_extension("relink");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&path, &tmp)
            .and_then(|()| std::fs::rename(&tmp, link))
            .map_err(|e| anyhow::anyhow!("cannot create the link {}: {e}", link.display()))?;
        println!("link {}", link.display());
    }
    Ok(Plugged {
        master,
        _slave: slave,
    })
}

fn unplug(plugged: &mut Option<Plugged>, link: Option<&Path>) {
    *plugged = None;
    if let Some(link) = link {
        let _ = std::fs::remove_file(link);
    }
}

/// Transmits like a UART: whatever the pseudo-terminal cannot take now is dropped.
fn transmit(plugged: &mut Option<Plugged>, bytes: &[u8]) {
    if let Some(p) = plugged.as_mut()
        && !bytes.is_empty()
    {
        let _ = p.master.try_write(bytes);
    }
}

async fn read_master(plugged: &mut Option<Plugged>, buf: &mut [u8]) -> std::io::Result<usize> {
    match plugged.as_mut() {
        Some(p) => p.master.read(buf).await,
        None => std::future::pending().await,
    }
}

/// Decodes `\xNN`, `\r`, `\n`, `\t`, `\e`… escapes in a command argument.
pub fn unescape(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'\\' => out.push(b'\\'),
                b'x' if i + 3 < bytes.len() => {
                    match u8::from_str_radix(
                        std::str::from_utf8(&bytes[i + 2..i + 4]).unwrap_or(""),
                        16,
                    ) {
                        Ok(b) => {
                            out.push(b);
                            i += 4;
                            continue;
                        }
                        Err(_) => out.extend_from_slice(b"\\x"),
                    }
                }
                other => {
                    out.push(b'\\');
                    out.push(other);
                }
            }
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Bytes a link at the wrong baud rate (or with interference) delivers: high bits and
/// control characters.
pub fn noise(n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| {
            let b: u8 = rand::random();
            if (0x20..0x80).contains(&b) {
                b | 0x80
            } else {
                b
            }
        })
        .collect()
}

fn parse_grams(arg: &str) -> Option<f64> {
    let arg = arg.trim();
    if let Some(g) = arg.strip_suffix("kg") {
        return g.trim().parse::<f64>().ok().map(|kg| kg * 1000.0);
    }
    if let Some(g) = arg.strip_suffix('g') {
        return g.trim().parse::<f64>().ok();
    }
    arg.parse::<f64>().ok().map(|kg| kg * 1000.0)
}

fn partial_frame(protocol: ScaleProtocol) -> &'static [u8] {
    match protocol {
        ScaleProtocol::MtSics => b"S S      1.",
        ScaleProtocol::Toledo8217 => b"\x0201.",
        ScaleProtocol::MettlerContinuous => b"\x02\x35\x30\x20001",
        ScaleProtocol::YaohuaA9 => b"\x02+0012",
    }
}

fn overlong_frame(protocol: ScaleProtocol, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 3);
    match protocol {
        ScaleProtocol::Toledo8217 | ScaleProtocol::MettlerContinuous | ScaleProtocol::YaohuaA9 => {
            v.push(0x02)
        }
        ScaleProtocol::MtSics => {}
    }
    v.extend(std::iter::repeat_n(b'9', n));
    v.extend_from_slice(b"\r\n");
    v
}

/// Runs a simulated scale until stdin closes or `quit`.
pub async fn run_scale(
    protocol: ScaleProtocol,
    link: Option<PathBuf>,
    interval_ms: u32,
) -> anyhow::Result<()> {
    let link = link.as_deref();
    let mut plugged = Some(plug(link)?);
    println!("ready");
    let mut firmware = Firmware::new(protocol, interval_ms)?;
    let mut cell = LoadCell::new();
    let start = Instant::now();
    let mut tick = tokio::time::interval(SAMPLE_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_t = 0.0f64;
    let mut silent = false;
    // Answers sent in two writes this far apart, as a USB-serial adapter may deliver them.
    let mut split = Duration::ZERO;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut buf = [0u8; 512];
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let t = start.elapsed().as_secs_f64();
                let now_ms = (t * 1000.0) as u64;
                let counts = cell.sample(t, (t - last_t).max(0.001));
                last_t = t;
                firmware.sample(counts, now_ms);
                let mut out = VecWriter::default();
                firmware.tick(now_ms, &mut out);
                if !silent {
                    transmit(&mut plugged, &out.0);
                }
            }
            read = read_master(&mut plugged, &mut buf) => match read {
                Ok(n) if n > 0 => {
                    let now_ms = start.elapsed().as_millis() as u64;
                    let mut out = VecWriter::default();
                    if !silent {
                        firmware.on_bytes(&buf[..n], now_ms, &mut out);
                        if split.is_zero() || out.0.len() < 2 {
                            transmit(&mut plugged, &out.0);
                        } else {
                            let (first, rest) = out.0.split_at(out.0.len() / 2);
                            transmit(&mut plugged, first);
                            tokio::time::sleep(split).await;
                            transmit(&mut plugged, rest);
                        }
                    }
                }
                // EOF or EIO from the master: nobody has the port open; wait a little.
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            line = lines.next_line() => {
                let Ok(Some(line)) = line else { break };
                let (cmd, arg) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
                let reply = match cmd {
                    "put" => match parse_grams(arg) {
                        Some(g) => { cell.put(g); Ok(()) }
                        None => Err(format!("cannot read weight '{arg}'; e.g. put 1.250 or put 1250g")),
                    },
                    "remove" => { cell.put(0.0); Ok(()) }
                    "move" => { cell.set_moving(true); Ok(()) }
                    "still" => { cell.set_moving(false); Ok(()) }
                    "silent" => { silent = true; Ok(()) }
                    "talk" => { silent = false; Ok(()) }
                    "split" => match arg.parse::<u64>() {
                        Ok(ms) => { split = Duration::from_millis(ms); Ok(()) }
                        Err(_) => Err(format!("cannot read '{arg}'; e.g. split 200 (ms between the halves of each answer), split 0")),
                    },
                    "garbage" => { transmit(&mut plugged, &noise(arg.parse().unwrap_or(64))); Ok(()) }
                    "partial" => { transmit(&mut plugged, partial_frame(protocol)); Ok(()) }
                    "overlong" => { transmit(&mut plugged, &overlong_frame(protocol, arg.parse().unwrap_or(300))); Ok(()) }
                    "send" => { transmit(&mut plugged, &unescape(arg)); Ok(()) }
                    "unplug" => { unplug(&mut plugged, link); Ok(()) }
                    "replug" => {
                        unplug(&mut plugged, link);
                        plug(link).map(|p| { plugged = Some(p); }).map_err(|e| e.to_string())
                    }
                    "quit" => break,
                    other => Err(format!("unknown command '{other}'")),
                };
                match reply {
                    Ok(()) => println!("ok {cmd}"),
                    Err(e) => println!("error {e}"),
                }
            }
        }
    }
    unplug(&mut plugged, link);
    Ok(())
}

fn terminator_bytes(t: Terminator) -> Vec<u8> {
    match t {
        Terminator::Cr => b"\r".to_vec(),
        Terminator::Lf => b"\n".to_vec(),
        Terminator::CrLf | Terminator::AnyEol => b"\r\n".to_vec(),
        Terminator::Byte(b) => vec![b],
        Terminator::None => Vec::new(),
    }
}

/// Runs a simulated scanner until stdin closes or `quit`.
pub async fn run_scanner(framing: ScannerFraming, link: Option<PathBuf>) -> anyhow::Result<()> {
    let link = link.as_deref();
    let mut plugged = Some(plug(link)?);
    println!("ready");
    let term = terminator_bytes(framing.terminator);
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut buf = [0u8; 256];
    loop {
        tokio::select! {
            // A scanner ignores what the host sends; reading keeps the buffer empty.
            read = read_master(&mut plugged, &mut buf) => if !matches!(read, Ok(n) if n > 0) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            },
            line = lines.next_line() => {
                let Ok(Some(line)) = line else { break };
                let (cmd, arg) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
                let reply = match cmd {
                    "scan" => {
                        let mut frame = framing.prefix.clone();
                        frame.extend(unescape(arg));
                        frame.extend_from_slice(&framing.suffix);
                        frame.extend_from_slice(&term);
                        transmit(&mut plugged, &frame);
                        Ok(())
                    }
                    "partial" => { transmit(&mut plugged, &unescape(arg)); Ok(()) }
                    "garbage" => { transmit(&mut plugged, &noise(arg.parse().unwrap_or(64))); Ok(()) }
                    "overlong" => {
                        let mut frame = vec![b'7'; arg.parse().unwrap_or(2000)];
                        frame.extend_from_slice(&term);
                        transmit(&mut plugged, &frame);
                        Ok(())
                    }
                    "send" => { transmit(&mut plugged, &unescape(arg)); Ok(()) }
                    "unplug" => { unplug(&mut plugged, link); Ok(()) }
                    "replug" => {
                        unplug(&mut plugged, link);
                        plug(link).map(|p| { plugged = Some(p); }).map_err(|e| e.to_string())
                    }
                    "quit" => break,
                    other => Err(format!("unknown command '{other}'")),
                };
                match reply {
                    Ok(()) => println!("ok {cmd}"),
                    Err(e) => println!("error {e}"),
                }
            }
        }
    }
    unplug(&mut plugged, link);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_decode() {
        assert_eq!(unescape(r"]C101\x1d10A\r"), b"]C101\x1d10A\r");
        assert_eq!(unescape(r"plain"), b"plain");
    }

    #[test]
    fn the_load_cell_settles_on_the_weight() {
        let mut cell = LoadCell::new();
        cell.put(1250.0);
        let mut scale = Scale::<FILTER>::new(scale_config(), ZERO_COUNTS).unwrap();
        let mut reading = None;
        for i in 0..200u64 {
            let t = i as f64 * 0.0125;
            reading = Some(scale.feed(cell.sample(t, 0.0125), i * 12));
        }
        let r = reading.unwrap();
        assert_eq!(r.net, 1250);
        assert!(r.stable);
    }
}

//! One task per serial port: open → probe → read loop → (lost) → backoff → open again.
//!
//! A USB-serial adapter that is unplugged makes reads return `Ok(0)` or `EIO` forever; both
//! end the session at once, the port is dropped (so its exclusive lock goes with it) and the
//! device is reported offline before the task sleeps. Silence longer than `offline_after`
//! (no valid frame; garbage does not count) ends it too. The task reopens by path, so a
//! `/dev/serial/by-id/...` link finds the adapter again whatever ttyUSB number it got, and
//! the hub never needs a restart. A device must answer its protocol's probe before it counts
//! as online: a serial port that merely opens is not taken for a scale.
//!
//! Every wait is a read, a timer or the shutdown token: nothing here spins or blocks.

use super::scale::{
    PlacementTracker, ScaleDecoder, SicsProbeReader, StabilityGate, escape, poll_command,
};
use super::scanner::ScannerDecoder;
use super::{Backoff, DeviceEvent, HealthBoard};
use crate::config::devices::{DeviceConfig, DeviceKind, DeviceTransport, ScaleMode, ScaleProtocol};
use firmware_shim::wire::framer::FrameStats;
use firmware_shim::wire::toledo8217;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_serial::{SerialPort, SerialPortBuilderExt, SerialStream};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// First reconnect delay; doubles up to the device's `reconnect_max`.
pub const FIRST_RETRY: Duration = Duration::from_millis(250);
/// How long a probe waits for an answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);
/// Writes that take longer than this mean the port is stuck.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a serial port could not be opened, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "cannot open serial port {path}: no such device; check the cable and that the path names the adapter (ls -l /dev/serial/by-id/)"
    )]
    NotFound { path: String },
    #[error(
        "cannot open serial port {path}: permission denied; add the hub user to the dialout group"
    )]
    PermissionDenied { path: String },
    #[error(
        "cannot open serial port {path}: it is in use by another program (or another hub device entry)"
    )]
    Busy { path: String },
    #[error("cannot open serial port {path}: {detail}")]
    Other { path: String, detail: String },
}

fn open_error(path: &str, e: tokio_serial::Error) -> OpenError {
    use std::io::ErrorKind as Io;
    use tokio_serial::ErrorKind as K;
    let path = path.to_owned();
    match e.kind {
        K::NoDevice | K::Io(Io::NotFound) => OpenError::NotFound { path },
        K::Io(Io::PermissionDenied) => OpenError::PermissionDenied { path },
        K::Io(Io::ResourceBusy) => OpenError::Busy { path },
        _ if e.description.contains("EBUSY") || e.description.contains("busy") => {
            OpenError::Busy { path }
        }
        _ if e.description.contains("ENOENT") || e.description.contains("No such file") => {
            OpenError::NotFound { path }
        }
        _ => OpenError::Other {
            path,
            detail: e.description,
        },
    }
}

/// Opens the port with the protocol's line settings.
fn open(device: &DeviceConfig) -> Result<SerialStream, OpenError> {
    let DeviceTransport::Serial { path, baud } = &device.transport else {
        unreachable!("serial tasks are only started for serial devices");
    };
    let name = path.to_string_lossy().into_owned();
    let mut builder = tokio_serial::new(name.clone(), *baud);
    if device.protocol == Some(ScaleProtocol::Toledo8217) {
        builder = builder
            .data_bits(tokio_serial::DataBits::Seven)
            .parity(tokio_serial::Parity::Even);
    }
    builder
        .open_native_async()
        .map_err(|e| open_error(&name, e))
}

/// Why a session ended.
enum SessionEnd {
    Shutdown,
    Lost(PortFault),
}

/// Why a device went offline: shown on the status page, in `hub devices` and in the
/// `device_offline` event, so each says what to check.
#[derive(Debug, thiserror::Error)]
pub enum PortFault {
    /// The port could not be opened (it keeps being retried).
    #[error("{0}")]
    Open(String),
    #[error("end of file on the port: the adapter was unplugged or the device closed it")]
    EndOfFile,
    #[error("read failed: {0} (adapter unplugged?)")]
    Read(std::io::Error),
    #[error("write failed: {0}")]
    Write(std::io::Error),
    #[error("write timed out: the port does not drain")]
    WriteTimedOut,
    #[error("end of file on the port during the probe")]
    EndOfFileInProbe,
    #[error("read failed during the probe: {0}")]
    ReadInProbe(std::io::Error),
    #[error(
        "the device on this port does not answer as {protocol} (probe timed out after {ms} ms); check protocol, baud rate and cable"
    )]
    NoProbeAnswer { protocol: &'static str, ms: u128 },
    #[error(
        "no valid frame for {ms} ms: the device stopped answering (or the baud rate or protocol is wrong)"
    )]
    Silent { ms: u128 },
}

/// What a device produces from bytes: a scale pipeline or a scanner decoder.
pub(crate) enum Pipeline {
    Scale {
        decoder: ScaleDecoder,
        gate: StabilityGate,
        placement: PlacementTracker,
    },
    Scanner(ScannerDecoder),
}

impl Pipeline {
    pub(crate) fn new(device: &DeviceConfig) -> Self {
        match (device.kind, device.protocol) {
            (DeviceKind::Scale, Some(protocol)) => Pipeline::Scale {
                decoder: ScaleDecoder::new(protocol),
                gate: StabilityGate::new(device.stable_readings),
                placement: PlacementTracker::new(device.zero_band_g, device.placement_change_g),
            },
            _ => Pipeline::Scanner(
                ScannerDecoder::new(device.framing.shim_config())
                    .with_patterns(device.site_patterns.clone()),
            ),
        }
    }

    fn stats(&self) -> FrameStats {
        match self {
            Pipeline::Scale { decoder, .. } => decoder.stats(),
            Pipeline::Scanner(d) => d.stats(),
        }
    }

    /// After a reconnect: partial frames and the stability history are stale.
    fn reset(&mut self) {
        match self {
            Pipeline::Scale { decoder, gate, .. } => {
                decoder.reset_frame();
                gate.reset();
            }
            Pipeline::Scanner(_) => {}
        }
    }
}

/// Output of feeding bytes.
#[derive(Debug, Default)]
pub(crate) struct Fed {
    /// Frames that parsed (any reading or scan): proof of life.
    pub valid: u32,
    pub events: Vec<DeviceEvent>,
    pub last_grams: Option<i64>,
    /// The last reading of these bytes while the load settles, if no stable weight came
    /// after it (a live reading for the screen only).
    pub live_grams: Option<i64>,
}

pub(crate) fn feed(
    device: &str,
    pipeline: &mut Pipeline,
    bytes: &[u8],
    now_ms: u64,
    out: &mut Fed,
) {
    match pipeline {
        Pipeline::Scale {
            decoder,
            gate,
            placement,
        } => {
            for &b in bytes {
                match decoder.push(b) {
                    None => {}
                    Some(Ok(reading)) => {
                        out.valid += 1;
                        if reading.grams.is_some() {
                            out.last_grams = reading.grams;
                        }
                        match gate.feed(&reading) {
                            Some(stable) => {
                                out.live_grams = None;
                                if let Some(grams) = placement.feed(stable) {
                                    out.events.push(DeviceEvent::StableWeight {
                                        device: device.to_owned(),
                                        grams,
                                        raw: reading.raw,
                                    });
                                }
                            }
                            None => {
                                if reading.grams.is_some() {
                                    out.live_grams = reading.grams;
                                }
                            }
                        }
                    }
                    Some(Err(issue)) => {
                        // Counted by the decoder; motion history is no longer continuous.
                        gate.reset();
                        tracing::debug!(reason = %issue.reason, raw = %issue.raw, "frame discarded");
                    }
                }
            }
        }
        Pipeline::Scanner(decoder) => {
            for &b in bytes {
                if let Some(result) = decoder.push(b, now_ms) {
                    scanned(device, result, out);
                }
            }
        }
    }
}

fn scanned(device: &str, result: Option<crate::codes::Scanned>, out: &mut Fed) {
    if let Some(scan) = result {
        out.valid += 1;
        out.events.push(DeviceEvent::Scan {
            device: device.to_owned(),
            scan: Box::new(scan),
        });
    }
}

/// Runs one serial device until shutdown.
pub async fn run(
    device: DeviceConfig,
    events: mpsc::Sender<DeviceEvent>,
    board: HealthBoard,
    shutdown: CancellationToken,
) {
    let path = device
        .path()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let span = tracing::info_span!("device", device = %device.name, port = %path);
    run_inner(device, events, board, shutdown)
        .instrument(span)
        .await
}

async fn run_inner(
    device: DeviceConfig,
    events: mpsc::Sender<DeviceEvent>,
    board: HealthBoard,
    shutdown: CancellationToken,
) {
    let mut backoff = super::reconnect_backoff(FIRST_RETRY, device.reconnect_max);
    let mut pipeline = Pipeline::new(&device);
    let started = Instant::now();
    // None = never reported; Some(true) online; Some(false) offline.
    let mut reported: Option<bool> = None;
    let mut sessions = 0u64;
    let mut last_reason = String::new();
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let end = match open(&device) {
            Err(e) => SessionEnd::Lost(PortFault::Open(e.to_string())),
            Ok(port) => {
                sessions += 1;
                if sessions > 1 {
                    board.update(&device.name, |h| h.reconnects += 1);
                }
                pipeline.reset();
                let end = session(
                    &device,
                    port,
                    &mut pipeline,
                    &events,
                    &board,
                    &mut reported,
                    &mut backoff,
                    started,
                    &shutdown,
                )
                .await;
                publish_stats(&board, &device.name, &pipeline);
                end
            }
        };
        match end {
            SessionEnd::Shutdown => break,
            SessionEnd::Lost(fault) => {
                let reason = fault.to_string();
                if reported != Some(false) {
                    tracing::warn!(%reason, "device offline");
                    let now = crate::clock::now().millis();
                    board.update(&device.name, |h| {
                        h.online = false;
                        h.detail = reason.clone();
                        h.since_ms = now;
                    });
                    let event = DeviceEvent::DeviceOffline {
                        device: device.name.clone(),
                        reason: reason.clone(),
                    };
                    if events.send(event).await.is_err() {
                        break;
                    }
                    reported = Some(false);
                } else if reason != last_reason {
                    tracing::info!(%reason, "device still offline");
                    board.update(&device.name, |h| h.detail = reason.clone());
                }
                last_reason = reason;
            }
        }
        let delay = backoff.next_delay(rand::random());
        tracing::debug!(delay_ms = delay.as_millis() as u64, "reopening later");
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
    }
    tracing::debug!("device task stopped");
}

fn publish_stats(board: &HealthBoard, name: &str, pipeline: &Pipeline) {
    let s = pipeline.stats();
    board.update(name, |h| {
        h.frames = u64::from(s.frames);
        h.garbage_bytes = u64::from(s.garbage_bytes);
        h.garbage_frames = u64::from(s.garbage_frames);
        h.overlong = u64::from(s.overlong);
        h.checksum_failures = u64::from(s.checksum_failures);
        h.malformed = u64::from(s.malformed);
    });
}

async fn write(port: &mut SerialStream, bytes: &[u8]) -> Result<(), PortFault> {
    match tokio::time::timeout(WRITE_TIMEOUT, port.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(PortFault::Write(e)),
        Err(_) => Err(PortFault::WriteTimedOut),
    }
}

/// Drops a port after releasing its exclusive lock, so the next open (ours) is not refused.
fn close(mut port: SerialStream) {
    let _ = port.set_exclusive(false);
    drop(port);
}

#[allow(clippy::too_many_arguments)]
async fn session(
    device: &DeviceConfig,
    mut port: SerialStream,
    pipeline: &mut Pipeline,
    events: &mpsc::Sender<DeviceEvent>,
    board: &HealthBoard,
    reported: &mut Option<bool>,
    backoff: &mut Backoff,
    started: Instant,
    shutdown: &CancellationToken,
) -> SessionEnd {
    // Bytes left from before (a previous session, the adapter's FIFO) would only confuse the
    // probe.
    let _ = port.clear(tokio_serial::ClearBuffer::All);
    let detail = tokio::select! {
        _ = shutdown.cancelled() => { close(port); return SessionEnd::Shutdown; }
        probed = probe(device, &mut port, started) => match probed {
            Ok(detail) => detail,
            Err(reason) => { close(port); return SessionEnd::Lost(reason); }
        },
    };
    backoff.reset();
    tracing::info!(%detail, "device online");
    let now = crate::clock::now().millis();
    board.update(&device.name, |h| {
        h.online = true;
        h.detail = detail.clone();
        h.since_ms = now;
    });
    if *reported != Some(true) {
        let event = DeviceEvent::DeviceOnline {
            device: device.name.clone(),
            detail,
        };
        if events.send(event).await.is_err() {
            close(port);
            return SessionEnd::Shutdown;
        }
        *reported = Some(true);
    }
    let end = read_loop(
        device, &mut port, pipeline, events, board, started, shutdown,
    )
    .await;
    close(port);
    end
}

async fn read_loop(
    device: &DeviceConfig,
    port: &mut SerialStream,
    pipeline: &mut Pipeline,
    events: &mpsc::Sender<DeviceEvent>,
    board: &HealthBoard,
    started: Instant,
    shutdown: &CancellationToken,
) -> SessionEnd {
    let polled = device.protocol.filter(|p| p.is_polled());
    let stream_mode = device.mode == ScaleMode::Stream;
    if stream_mode && let Err(e) = write(port, b"SIR\r\n").await {
        return SessionEnd::Lost(e);
    }
    let mut poll = tokio::time::interval(device.poll_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut idle = tokio::time::interval(Duration::from_millis(50));
    idle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let is_scanner = matches!(pipeline, Pipeline::Scanner(_));
    let mut last_valid = Instant::now();
    let mut last_stats = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        let silent_until = device.offline_after.map(|d| last_valid + d);
        let fed = tokio::select! {
            _ = shutdown.cancelled() => return SessionEnd::Shutdown,
            read = port.read(&mut buf) => match read {
                Ok(0) => return SessionEnd::Lost(PortFault::EndOfFile),
                Ok(n) => {
                    let mut fed = Fed::default();
                    let now_ms = started.elapsed().as_millis() as u64;
                    feed(&device.name, pipeline, &buf[..n], now_ms, &mut fed);
                    fed
                }
                Err(e) => return SessionEnd::Lost(PortFault::Read(e)),
            },
            _ = poll.tick(), if polled.is_some() && !stream_mode => {
                if let Some(cmd) = polled.and_then(poll_command)
                    && let Err(e) = write(port, cmd).await
                {
                    return SessionEnd::Lost(e);
                }
                continue;
            }
            _ = idle.tick(), if is_scanner => {
                let mut fed = Fed::default();
                if let Pipeline::Scanner(d) = pipeline {
                    let now_ms = started.elapsed().as_millis() as u64;
                    if let Some(result) = d.poll_idle(now_ms) {
                        scanned(&device.name, result, &mut fed);
                    }
                }
                fed
            }
            _ = sleep_until_opt(silent_until) => {
                return SessionEnd::Lost(PortFault::Silent {
                    ms: device.offline_after.unwrap_or_default().as_millis(),
                });
            }
        };
        if fed.valid > 0 {
            last_valid = Instant::now();
            let seen = crate::clock::now().millis();
            let grams = fed.last_grams;
            let code = fed.events.iter().rev().find_map(|e| match e {
                DeviceEvent::Scan { scan, .. } => Some(scan.text.clone()),
                _ => None,
            });
            board.update(&device.name, |h| {
                h.last_seen_ms = Some(seen);
                if grams.is_some() {
                    h.last_grams = grams;
                }
                if code.is_some() {
                    h.last_code = code;
                }
            });
        }
        for event in fed.events {
            match &event {
                DeviceEvent::StableWeight { grams, .. } => {
                    tracing::info!(grams, "stable weight")
                }
                DeviceEvent::Scan { scan, .. } => {
                    tracing::info!(code = %escape(scan.text.as_bytes()), class = scan.code.class(), "scan")
                }
                _ => {}
            }
            board.update(&device.name, |h| h.events += 1);
            if events.send(event).await.is_err() {
                return SessionEnd::Shutdown;
            }
        }
        if let Some(grams) = fed.live_grams {
            // Only for the screen: when the dispatcher is busy it is dropped, never waited for.
            let _ = events.try_send(DeviceEvent::LiveWeight {
                device: device.name.clone(),
                grams,
            });
        }
        if last_stats.elapsed() >= Duration::from_millis(250) {
            publish_stats(board, &device.name, pipeline);
            last_stats = Instant::now();
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Confirms the device speaks its configured protocol. Returns what it said.
async fn probe(
    device: &DeviceConfig,
    port: &mut SerialStream,
    started: Instant,
) -> Result<String, PortFault> {
    let protocol = match (device.kind, device.protocol) {
        (DeviceKind::Scanner, _) | (_, None) => {
            // A scanner only talks when something is scanned; an open port is all there is.
            return Ok("port open (scanners cannot be probed)".into());
        }
        (_, Some(p)) => p,
    };
    let deadline = Instant::now() + PROBE_TIMEOUT.max(device.offline_after.unwrap_or_default());
    let mut buf = [0u8; 256];
    let mut seen: Vec<u8> = Vec::new();
    match protocol {
        ScaleProtocol::MtSics => {
            // Ask for the serial number: harmless, unlike `@`, which also clears the tare.
            write(port, b"I4\r\n").await?;
        }
        ScaleProtocol::Toledo8217 => write(port, toledo8217::PROBE).await?,
        ScaleProtocol::MettlerContinuous | ScaleProtocol::YaohuaA9 => {}
    }
    let mut probe_decoder = ScaleDecoder::new(protocol);
    let mut sics_answer = SicsProbeReader::new();
    loop {
        let n = tokio::select! {
            read = port.read(&mut buf) => match read {
                Ok(0) => return Err(PortFault::EndOfFileInProbe),
                Ok(n) => n,
                Err(e) => return Err(PortFault::ReadInProbe(e)),
            },
            _ = tokio::time::sleep_until(deadline) => {
                return Err(PortFault::NoProbeAnswer {
                    protocol: protocol.as_str(),
                    ms: deadline.duration_since(started).min(PROBE_TIMEOUT.max(device.offline_after.unwrap_or_default())).as_millis(),
                });
            }
        };
        let bytes = &buf[..n];
        match protocol {
            ScaleProtocol::MtSics => {
                // Answered `I4 A "<serial>"`: a whole line, however many reads it took.
                if let Some(line) = bytes.iter().find_map(|b| sics_answer.push(*b)) {
                    return Ok(format!("MT-SICS scale, {line}"));
                }
            }
            ScaleProtocol::Toledo8217 => {
                seen.extend_from_slice(bytes);
                let masked: Vec<u8> = seen.iter().map(|b| b & 0x7F).collect();
                if masked
                    .windows(toledo8217::PROBE_REPLY.len())
                    .any(|w| w == toledo8217::PROBE_REPLY)
                {
                    write(port, toledo8217::PROBE_END).await?;
                    // The echo-end reply (and anything before it) is not a reading.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let _ = port.clear(tokio_serial::ClearBuffer::Input);
                    return Ok("Toledo 8217 scale (echo probe answered)".into());
                }
                if seen.len() > 4096 {
                    seen.drain(..2048);
                }
            }
            ScaleProtocol::MettlerContinuous | ScaleProtocol::YaohuaA9 => {
                let valid = bytes
                    .iter()
                    .filter(|b| matches!(probe_decoder.push(**b), Some(Ok(_))))
                    .count();
                if valid > 0 {
                    return Ok(format!(
                        "{} frames received",
                        match protocol {
                            ScaleProtocol::YaohuaA9 => "Yaohua A9",
                            _ => "Mettler Toledo continuous",
                        }
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::devices::ScaleProtocol;

    #[test]
    fn readings_while_the_load_settles_are_live_and_a_stable_weight_supersedes_them() {
        let mut pipeline = Pipeline::Scale {
            decoder: ScaleDecoder::new(ScaleProtocol::MtSics),
            gate: StabilityGate::new(2),
            placement: PlacementTracker::new(20, 50),
        };
        let mut settling = Fed::default();
        feed(
            "scale",
            &mut pipeline,
            b"S D      0.700 kg\r\nS D      1.240 kg\r\n",
            0,
            &mut settling,
        );
        assert_eq!(settling.live_grams, Some(1240));
        assert!(settling.events.is_empty(), "{:?}", settling.events);
        let mut placed = Fed::default();
        feed(
            "scale",
            &mut pipeline,
            b"S D      1.249 kg\r\nS S      1.250 kg\r\nS S      1.250 kg\r\n",
            10,
            &mut placed,
        );
        assert_eq!(placed.live_grams, None, "the stable weight came after");
        assert!(
            matches!(
                placed.events.as_slice(),
                [DeviceEvent::StableWeight { grams: 1250, .. }]
            ),
            "{:?}",
            placed.events
        );
        // The same load staying on the pan is neither a new placement nor a live reading.
        let mut still = Fed::default();
        feed(
            "scale",
            &mut pipeline,
            b"S S      1.250 kg\r\n",
            20,
            &mut still,
        );
        assert_eq!(still.live_grams, None);
        assert!(still.events.is_empty());
    }
}

//! Device adapters: serial and MQTT scales and scanners, turned into one closed event type.
//!
//! Each serial port gets its own task ([`serial`]): open → probe → read loop, and on EOF, an
//! I/O error or silence it drops the port, reports the device offline and reopens it with
//! capped backoff. Networked devices on the site's local broker are read by one task
//! ([`mqtt_devices`]). Both send [`DeviceEvent`]s through a bounded channel to the
//! [`dispatch`] task, which journals each input in the store and acts on it in the same
//! transaction. Wire formats are never parsed here: [`scale`] and [`scanner`] feed bytes to
//! the `firmware-shim` framers and parsers. Simulated devices on pseudo-terminals live in `crate::tools::sim`.
//!
//! This module must not block the async runtime, must not decide business rules (the store's
//! workflows do), and must not spin: every wait is on a read, a timer or the shutdown token.

pub mod dispatch;
pub mod local_broker;
pub mod mqtt_devices;
pub mod scale;
pub mod scanner;
pub mod serial;

use crate::config::devices::{DeviceConfig, DeviceKind, DeviceTransport};
use crate::store::Store;
pub use hub_contract::devices::DeviceHealth;
pub use hub_core::Backoff;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Events waiting for the dispatcher before device tasks are held back.
pub const EVENT_QUEUE: usize = 256;

/// Everything a device can tell the hub. Closed: the dispatcher handles every variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceEvent {
    /// A weight that is stable by the scale's flag and the hub's own check, and is a new
    /// placement on the pan.
    StableWeight {
        device: String,
        grams: i64,
        raw: String,
    },
    /// A reading while the load settles (not yet stable by the scale's flag and the hub's
    /// check): shown live on the station's screen, never journaled or acted on. Sent only
    /// when the dispatcher's queue has room (a dropped one is superseded by the next).
    LiveWeight { device: String, grams: i64 },
    /// A scan, framed and classified once (boxed: it is much larger than the other variants).
    Scan {
        device: String,
        scan: Box<crate::codes::Scanned>,
    },
    /// The device answers (after its probe, or its broker connected).
    DeviceOnline { device: String, detail: String },
    /// The device disappeared, stopped answering or failed its probe.
    DeviceOffline { device: String, reason: String },
}

impl DeviceEvent {
    /// The device the event is about.
    pub fn device(&self) -> &str {
        match self {
            DeviceEvent::StableWeight { device, .. }
            | DeviceEvent::LiveWeight { device, .. }
            | DeviceEvent::Scan { device, .. }
            | DeviceEvent::DeviceOnline { device, .. }
            | DeviceEvent::DeviceOffline { device, .. } => device,
        }
    }
}

/// Live health of every device, shared by the device tasks and readable through a `watch`.
#[derive(Debug, Clone)]
pub struct HealthBoard {
    tx: watch::Sender<BTreeMap<String, DeviceHealth>>,
}

impl HealthBoard {
    /// A board listing `devices`, all offline until they answer.
    pub fn new(devices: &[DeviceConfig]) -> Self {
        let now = crate::clock::now().millis();
        let map = devices
            .iter()
            .map(|d| {
                let source = match &d.transport {
                    DeviceTransport::Serial { path, .. } => path.display().to_string(),
                    DeviceTransport::Mqtt { topic } => format!("mqtt:{topic}"),
                };
                let health = DeviceHealth {
                    name: d.name.clone(),
                    kind: match d.kind {
                        DeviceKind::Scale => "scale".into(),
                        DeviceKind::Scanner => "scanner".into(),
                    },
                    station: d.station.clone(),
                    source,
                    protocol: d.protocol.map(|p| p.as_str().to_owned()),
                    detail: "not connected yet".into(),
                    since_ms: now,
                    ..DeviceHealth::default()
                };
                (d.name.clone(), health)
            })
            .collect();
        HealthBoard {
            tx: watch::Sender::new(map),
        }
    }

    /// Changes one device's entry.
    pub fn update(&self, device: &str, f: impl FnOnce(&mut DeviceHealth)) {
        self.tx.send_if_modified(|map| match map.get_mut(device) {
            Some(h) => {
                let before = h.clone();
                f(h);
                *h != before
            }
            None => false,
        });
    }

    /// A receiver of snapshots, for the status page.
    pub fn subscribe(&self) -> watch::Receiver<BTreeMap<String, DeviceHealth>> {
        self.tx.subscribe()
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Vec<DeviceHealth> {
        self.tx.borrow().values().cloned().collect()
    }
}

/// The status page's view of one device: online/offline, the last reading in words (weight
/// or last scan), when it was last heard, and the port path (by-id link) or MQTT topic with
/// the reason it is offline as detail.
pub fn status_device(h: &DeviceHealth) -> crate::status::Device {
    use crate::status::Device;
    let last_seen = hub_core::Timestamp(h.last_seen_ms.unwrap_or(h.since_ms));
    let reading = match (h.kind.as_str(), h.last_grams, &h.last_code) {
        ("scale", Some(g), _) => Some(format_grams(g)),
        (_, _, Some(code)) => Some(scale::escape(code.as_bytes())),
        _ => None,
    };
    let detail = if h.online || h.detail.is_empty() {
        h.source.clone()
    } else {
        format!("{}: {}", h.source, h.detail)
    };
    let mut device = if h.online {
        Device::online(&h.name, &h.kind, "", last_seen)
    } else {
        Device::offline(&h.name, &h.kind, last_seen)
    };
    device.last_reading = reading;
    if h.last_seen_ms.is_none() && !h.online {
        device.last_seen = None;
    }
    device.with_detail(detail)
}

/// Grams as the page shows them, e.g. `1.250 kg`.
fn format_grams(grams: i64) -> String {
    let sign = if grams < 0 { "-" } else { "" };
    let g = grams.unsigned_abs();
    format!("{sign}{}.{:03} kg", g / 1000, g % 1000)
}

/// Keeps the status page's device list in step with the health board: every change of a
/// device's entry replaces its [`crate::status::Device`]. Ends at shutdown.
pub async fn report_to_status(
    health: HealthBoard,
    status: crate::status::StatusBoard,
    shutdown: CancellationToken,
) {
    let mut rx = health.subscribe();
    let mut shown: BTreeMap<String, crate::status::Device> = BTreeMap::new();
    loop {
        let snapshot: Vec<DeviceHealth> = rx.borrow_and_update().values().cloned().collect();
        for h in &snapshot {
            let device = status_device(h);
            if shown.get(&h.name) != Some(&device) {
                status.set_device(device.clone());
                shown.insert(h.name.clone(), device);
            }
        }
        let gone: Vec<String> = shown
            .keys()
            .filter(|name| !snapshot.iter().any(|h| &h.name == *name))
            .cloned()
            .collect();
        for name in gone {
            status.remove_device(&name);
            shown.remove(&name);
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = rx.changed() => if changed.is_err() { break },
        }
    }
}

/// Where the daemon writes the device health snapshot read by `hub devices`.
pub fn status_file(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("devices-status.json")
}

/// Starts every configured device task, the dispatcher and the status-file writer.
/// Returns the health board (for the status page). Pickup code checks made by scans are shown
/// on the station's screens through `feed`.
pub fn spawn(
    config: &crate::config::Config,
    store: &Store,
    feed: &crate::station_app::feed::StationFeed,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> HealthBoard {
    let board = HealthBoard::new(&config.devices);
    if config.devices.is_empty() {
        return board;
    }
    let (tx, rx) = mpsc::channel(EVENT_QUEUE);
    tracker.spawn(dispatch::run(
        rx,
        store.clone(),
        dispatch::Devices {
            site: crate::workflows::Site::of(config),
            configs: config.devices.clone(),
            feed: feed.clone(),
        },
        board.clone(),
        shutdown.child_token(),
    ));
    let mut mqtt = Vec::new();
    for device in &config.devices {
        match device.transport {
            DeviceTransport::Serial { .. } => {
                tracker.spawn(serial::run(
                    device.clone(),
                    tx.clone(),
                    board.clone(),
                    shutdown.child_token(),
                ));
            }
            DeviceTransport::Mqtt { .. } => mqtt.push(device.clone()),
        }
    }
    if !mqtt.is_empty() {
        tracker.spawn(mqtt_devices::run(
            config.device_broker.clone(),
            mqtt,
            tx.clone(),
            board.clone(),
            shutdown.child_token(),
        ));
    }
    tracker.spawn(status_writer(
        status_file(&config.store.data_dir),
        board.clone(),
        shutdown.child_token(),
    ));
    board
}

/// Writes the health snapshot to a file once a second when it changed (temp file + rename,
/// so a reader never sees half a file). Not durable on purpose: it is a view, not a record.
async fn status_writer(path: PathBuf, board: HealthBoard, shutdown: CancellationToken) {
    let mut rx = board.subscribe();
    rx.mark_changed();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        if !rx.has_changed().unwrap_or(false) {
            continue;
        }
        let snapshot: Vec<DeviceHealth> = rx.borrow_and_update().values().cloned().collect();
        let path = path.clone();
        let written = tokio::task::spawn_blocking(move || write_status(&path, &snapshot)).await;
        if let Ok(Err(e)) = written {
            tracing::warn!(error = %e, "cannot write the device status file");
        }
    }
    // Leave the last state behind for `hub devices` after a stop.
    let snapshot = board.snapshot();
    let _ = tokio::task::spawn_blocking(move || write_status(&path, &snapshot)).await;
}

fn write_status(path: &std::path::Path, snapshot: &[DeviceHealth]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, hub_contract::devices::encode_device_status(snapshot))?;
    std::fs::rename(&tmp, path)
}

/// The devices' reconnect backoff (`hub_core::Backoff`): doubling from `first` up to `max`,
/// with ±20 % jitter around each step so many ports (or cameras) do not retry in step.
pub fn reconnect_backoff(first: Duration, max: Duration) -> Backoff {
    Backoff::new(first, max).with_jitter_band(0.8, 1.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_becomes_a_status_device() {
        let mut h = DeviceHealth {
            name: "scale-1".into(),
            kind: "scale".into(),
            source: "/dev/serial/by-id/usb-scale".into(),
            online: true,
            detail: "MT-SICS".into(),
            since_ms: 10,
            last_grams: Some(1250),
            last_seen_ms: Some(20),
            ..DeviceHealth::default()
        };
        let d = status_device(&h);
        assert!(d.online);
        assert_eq!(d.last_reading.as_deref(), Some("1.250 kg"));
        assert_eq!(d.last_seen, Some(hub_core::Timestamp(20)));
        assert_eq!(d.detail.as_deref(), Some("/dev/serial/by-id/usb-scale"));
        h.online = false;
        h.detail = "end of file".into();
        let d = status_device(&h);
        assert!(!d.online);
        assert_eq!(d.last_reading.as_deref(), Some("1.250 kg"));
        assert_eq!(
            d.detail.as_deref(),
            Some("/dev/serial/by-id/usb-scale: end of file")
        );
        let scanner = DeviceHealth {
            name: "scan".into(),
            kind: "scanner".into(),
            last_code: Some("DLV-1/1".into()),
            ..DeviceHealth::default()
        };
        let d = status_device(&scanner);
        assert_eq!(d.last_reading.as_deref(), Some("DLV-1/1"));
        assert_eq!(d.last_seen, None);
        assert_eq!(format_grams(-5), "-0.005 kg");
    }

    #[test]
    fn backoff_grows_to_its_cap() {
        let mut b = reconnect_backoff(Duration::from_millis(100), Duration::from_secs(2));
        let delays: Vec<_> = (0..8).map(|_| b.next_delay(rand::random())).collect();
        assert!(delays[0] >= Duration::from_millis(80) && delays[0] <= Duration::from_millis(120));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(2)));
        assert!(delays[7] >= Duration::from_millis(1600));
        b.reset();
        assert!(b.next_delay(rand::random()) <= Duration::from_millis(120));
    }
}

//! The on-site status page: what a clerk or technician sees on a tablet in the warehouse.
//!
//! Two sources feed it. The store gives the figures it holds (outbox depth, today's receipts and
//! handovers, the open alerts in its `alert` table); the [`StatusBoard`] holds what only the
//! adapters know (uplink state, devices, the vision model in use, and any alert an adapter
//! keeps outside the store). [`gather`] joins both into a [`StatusSnapshot`], which
//! [`render`] turns into HTML, JSON and Prometheus text and [`server`] serves over HTTP.
//!
//! This module only reads: it never writes the database and never changes an adapter's state.
//!
//! # For adapter authors
//!
//! Take a clone of the daemon's `StatusBoard` and report what you know whenever it changes;
//! every call replaces the previous value and is cheap (a short lock, no I/O):
//!
//! ```
//! use hub::status::{Alert, AlertTier, Device, StatusBoard, Uplink, UplinkState, Vision};
//! use hub_core::Timestamp;
//!
//! let board = StatusBoard::new();
//! let now = Timestamp(1_764_000_000_000);
//! board.set_uplink(Uplink::new(UplinkState::Online, now).with_detail("mqtts://central:8883"));
//! board.set_device(Device::online("scale-1", "scale", "12.340 kg", now));
//! board.set_device(Device::offline("scanner-2", "scanner", now).with_detail("unplugged"));
//! board.set_alerts(vec![Alert::new(AlertTier::Orange, "MILK-1L", "12 left, reorder point 20", now)]);
//! board.set_vision(Vision::new("efficientnet-lite0", "onnxruntime 1.31.1"));
//! assert_eq!(board.view().devices.len(), 2);
//! ```

pub mod render;
pub mod server;
pub mod tls;

use crate::storage::{self, Space};
pub use crate::store::figures::{Dispute, Receiving, Today};
use crate::store::{Store, figures, outbox};
use hub_core::Timestamp;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// Whether the hub can reach the central broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UplinkState {
    /// No uplink is configured (or its adapter has not reported yet).
    NotConfigured,
    /// Trying to connect.
    Connecting,
    /// Connected; the outbox drains.
    Online,
    /// Not connected; events wait in the outbox.
    Offline,
}

impl UplinkState {
    /// Words for the page.
    pub fn label(self) -> &'static str {
        match self {
            UplinkState::NotConfigured => "not configured",
            UplinkState::Connecting => "connecting",
            UplinkState::Online => "online",
            UplinkState::Offline => "offline",
        }
    }
}

/// The uplink as its adapter last reported it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Uplink {
    pub state: UplinkState,
    /// When the state last changed.
    pub since: Option<Timestamp>,
    /// E.g. the broker address or the last error, for the technician.
    pub detail: Option<String>,
}

impl Uplink {
    /// An uplink in `state` since `since`.
    pub fn new(state: UplinkState, since: Timestamp) -> Uplink {
        Uplink {
            state,
            since: Some(since),
            detail: None,
        }
    }

    /// Adds a line for the technician (never a password or token).
    pub fn with_detail(mut self, detail: impl Into<String>) -> Uplink {
        self.detail = Some(detail.into());
        self
    }
}

impl Default for Uplink {
    fn default() -> Self {
        Uplink {
            state: UplinkState::NotConfigured,
            since: None,
            detail: None,
        }
    }
}

/// One scale, scanner or camera as its adapter last reported it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Device {
    /// Unique name from the config, e.g. `scale-1`; the board keys devices by it.
    pub name: String,
    /// `scale`, `scanner`, `camera`, …
    pub kind: String,
    pub online: bool,
    /// The last reading in words, e.g. `12.340 kg` or `(01)06901234567892`.
    pub last_reading: Option<String>,
    /// When the device last said anything.
    pub last_seen: Option<Timestamp>,
    /// E.g. the `/dev/serial/by-id/…` path or the last error.
    pub detail: Option<String>,
}

impl Device {
    /// A device that is online with its latest reading.
    pub fn online(name: &str, kind: &str, reading: impl Into<String>, at: Timestamp) -> Device {
        Device {
            name: name.to_owned(),
            kind: kind.to_owned(),
            online: true,
            last_reading: Some(reading.into()),
            last_seen: Some(at),
            detail: None,
        }
    }

    /// A device that is offline; `last_seen` is when it was last heard, if ever.
    pub fn offline(name: &str, kind: &str, last_seen: Timestamp) -> Device {
        Device {
            name: name.to_owned(),
            kind: kind.to_owned(),
            online: false,
            last_reading: None,
            last_seen: Some(last_seen),
            detail: None,
        }
    }

    /// Adds a line for the technician.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Device {
        self.detail = Some(detail.into());
        self
    }
}

/// Stock alert tiers, least to most urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertTier {
    Yellow,
    Orange,
    Red,
}

impl AlertTier {
    /// All tiers, most urgent first (the order the page lists them in).
    pub const URGENT_FIRST: [AlertTier; 3] = [AlertTier::Red, AlertTier::Orange, AlertTier::Yellow];

    /// Lower-case name, as in JSON and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertTier::Yellow => "yellow",
            AlertTier::Orange => "orange",
            AlertTier::Red => "red",
        }
    }
}

/// One open alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub tier: AlertTier,
    /// What kind of condition, e.g. `stock_low` or `device_offline` (empty when not given).
    pub kind: String,
    /// What it is about, usually a SKU code.
    pub subject: String,
    pub message: String,
    pub since: Timestamp,
}

impl Alert {
    /// An open alert of `tier` about `subject`.
    pub fn new(
        tier: AlertTier,
        subject: &str,
        message: impl Into<String>,
        since: Timestamp,
    ) -> Alert {
        Alert {
            tier,
            kind: String::new(),
            subject: subject.to_owned(),
            message: message.into(),
            since,
        }
    }

    /// Names the kind of condition (`stock_low`, `near_expiry`, `device_offline`, ...).
    pub fn with_kind(mut self, kind: impl Into<String>) -> Alert {
        self.kind = kind.into();
        self
    }
}

impl AlertTier {
    /// Parses the stored tier names; `normal` (and anything else) is not an open alert.
    pub fn parse(text: &str) -> Option<AlertTier> {
        match text {
            "yellow" => Some(AlertTier::Yellow),
            "orange" => Some(AlertTier::Orange),
            "red" => Some(AlertTier::Red),
            _ => None,
        }
    }
}

/// Most urgent first, then oldest first.
fn sort_alerts(alerts: &mut [Alert]) {
    alerts.sort_by(|a, b| b.tier.cmp(&a.tier).then(a.since.cmp(&b.since)));
}

/// The image-recognition model and the backend running it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Vision {
    pub model: String,
    /// E.g. `onnxruntime 1.31.1` or `tract`.
    pub backend: String,
    pub detail: Option<String>,
}

impl Vision {
    /// A model name and the backend that runs it.
    pub fn new(model: impl Into<String>, backend: impl Into<String>) -> Vision {
        Vision {
            model: model.into(),
            backend: backend.into(),
            detail: None,
        }
    }
}

/// Everything adapters have reported, as one value.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BoardView {
    pub uplink: Uplink,
    /// Sorted by name.
    pub devices: Vec<Device>,
    /// Open alerts, most urgent first, then oldest first.
    pub alerts: Vec<Alert>,
    pub vision: Option<Vision>,
    /// Messages from the central broker too large for the uplink's read limit (each counted
    /// once, however often the broker sent it again).
    pub oversized_messages: u64,
}

/// Shared, cloneable place where adapters post what the status page shows.
///
/// Clones share one state. Writers replace a whole part (the uplink, one device, the list of
/// alerts, the vision model); readers take a consistent copy with [`StatusBoard::view`].
/// Locks are held for a copy only, so it is safe to call from async tasks and from threads.
#[derive(Debug, Clone, Default)]
pub struct StatusBoard {
    inner: Arc<RwLock<BoardView>>,
}

impl StatusBoard {
    /// An empty board: uplink not configured, no devices, no alerts, no model.
    pub fn new() -> StatusBoard {
        StatusBoard::default()
    }

    fn update(&self, f: impl FnOnce(&mut BoardView)) {
        // A panic while holding the lock cannot leave the view half-written in a way that
        // matters (each update replaces whole values), so a poisoned lock is used as is.
        let mut view = self.inner.write().unwrap_or_else(|e| e.into_inner());
        f(&mut view);
    }

    /// Reports the uplink's state.
    pub fn set_uplink(&self, uplink: Uplink) {
        self.update(|v| v.uplink = uplink);
    }

    /// Reports one device, replacing what was known under the same name.
    pub fn set_device(&self, device: Device) {
        self.update(
            |v| match v.devices.iter_mut().find(|d| d.name == device.name) {
                Some(slot) => *slot = device,
                None => {
                    v.devices.push(device);
                    v.devices.sort_by(|a, b| a.name.cmp(&b.name));
                }
            },
        );
    }

    /// Forgets a device (e.g. removed from the config).
    pub fn remove_device(&self, name: &str) {
        self.update(|v| v.devices.retain(|d| d.name != name));
    }

    /// Replaces the list of open alerts this board adds to the store's own (the store's
    /// `alert` table is the usual home of alerts; use this for conditions kept in memory only).
    pub fn set_alerts(&self, mut alerts: Vec<Alert>) {
        sort_alerts(&mut alerts);
        self.update(|v| v.alerts = alerts);
    }

    /// Counts one message the central broker sent that was over the uplink's size limit.
    pub fn count_oversized_message(&self) {
        self.update(|v| v.oversized_messages += 1);
    }

    /// Reports the model and backend the vision adapter loaded.
    pub fn set_vision(&self, vision: Vision) {
        self.update(|v| v.vision = Some(vision));
    }

    /// A consistent copy of everything reported so far.
    pub fn view(&self) -> BoardView {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Open alerts counted by tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AlertCounts {
    pub yellow: u64,
    pub orange: u64,
    pub red: u64,
}

impl AlertCounts {
    /// Counts `alerts` by tier.
    pub fn of(alerts: &[Alert]) -> AlertCounts {
        let mut counts = AlertCounts::default();
        for alert in alerts {
            match alert.tier {
                AlertTier::Yellow => counts.yellow += 1,
                AlertTier::Orange => counts.orange += 1,
                AlertTier::Red => counts.red += 1,
            }
        }
        counts
    }

    /// The count for one tier.
    pub fn get(&self, tier: AlertTier) -> u64 {
        match tier {
            AlertTier::Yellow => self.yellow,
            AlertTier::Orange => self.orange,
            AlertTier::Red => self.red,
        }
    }
}

/// The figures the store holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StoreFigures {
    pub outbox: outbox::OutboxStats,
    pub today: Today,
    /// SKUs with stock on hand.
    pub skus_in_stock: i64,
    /// Open alerts recorded in the store (stock tiers, expiry, backlog, lockouts, ...).
    pub alerts: Vec<Alert>,
    pub receiving: Receiving,
}

impl From<figures::Figures> for StoreFigures {
    fn from(f: figures::Figures) -> Self {
        let mut alerts: Vec<Alert> = f
            .alerts
            .into_iter()
            .filter_map(|a| {
                Some(
                    Alert::new(
                        AlertTier::parse(&a.tier)?,
                        &a.subject,
                        a.message,
                        a.raised_at,
                    )
                    .with_kind(a.kind),
                )
            })
            .collect();
        sort_alerts(&mut alerts);
        StoreFigures {
            receiving: f.receiving,
            outbox: f.outbox,
            today: f.today,
            skus_in_stock: f.skus_in_stock,
            alerts,
        }
    }
}

/// Everything the page shows, at one moment. Field names are the `/status.json` contract.
#[derive(Debug, Clone, Serialize)]
pub struct StatusSnapshot {
    pub site_id: String,
    pub site_name: String,
    pub hub_version: String,
    pub generated_at: Timestamp,
    pub started_at: Timestamp,
    pub uplink: Uplink,
    /// Messages from the central broker over the uplink's size limit, since the hub started.
    pub oversized_messages: u64,
    pub outbox: outbox::OutboxStats,
    pub devices: Vec<Device>,
    pub devices_online: usize,
    pub alerts: Vec<Alert>,
    pub alert_counts: AlertCounts,
    pub today: Today,
    pub skus_in_stock: i64,
    pub receiving: Receiving,
    pub vision: Option<Vision>,
    pub data_dir: String,
    pub storage: Option<Space>,
    /// Set when the store could not be read; the rest of the page still shows.
    pub store_error: Option<String>,
    /// Set while the store's writes fail (damaged file, full disk, failing storage): the last
    /// error and since when; cleared by the next write that succeeds (never for a damaged
    /// file). A red `store_write_failing` alert stands beside it.
    pub store_write_error: Option<StoreWriteError>,
    /// The journal mode and `synchronous` level the store's writer runs with, as SQLite
    /// reports them back on that connection (`wal` and `full` unless a debug build's test
    /// switch weakened them).
    pub store_durability: crate::store::Durability,
}

/// The store's writes are failing: what the page and `/status.json` say about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreWriteError {
    /// `corrupt`, `disk_full`, `io` or `other`.
    pub kind: crate::store::WriteFaultKind,
    /// The latest failure's text.
    pub error: String,
    /// When writes started failing.
    pub since: Timestamp,
    /// Failed commits or requests since then.
    pub failures: u64,
    /// What a person should do.
    pub advice: String,
}

impl StoreWriteError {
    /// The store's current write fault as of `now`, if any.
    pub fn of(store: &Store, now: Timestamp) -> Option<StoreWriteError> {
        store.write_fault().map(|f| StoreWriteError {
            kind: f.kind,
            advice: f.kind.advice().to_owned(),
            since: Timestamp(now.millis() - f.since.elapsed().as_millis() as i64),
            failures: f.failures,
            error: f.error,
        })
    }

    /// The red alert that stands for it on the page while it lasts.
    pub fn alert(&self) -> Alert {
        Alert::new(
            AlertTier::Red,
            "database",
            format!("writes are failing ({}): {}", self.error, self.advice),
            self.since,
        )
        .with_kind(hub_core::alerts::AlertKind::StoreWriteFailing.as_str())
    }
}

/// What the status server needs to build a snapshot.
#[derive(Debug, Clone)]
pub struct StatusSource {
    pub site_id: String,
    pub site_name: String,
    pub store: Store,
    pub board: StatusBoard,
    pub data_dir: PathBuf,
    /// When the data directory counts as nearly full.
    pub disk: storage::DiskLimits,
    /// The site's time zone: "today" on the page is the site's day.
    pub timezone: chrono_tz::Tz,
    pub started_at: Timestamp,
}

/// Builds a snapshot now: store figures and free space off the async workers, the board copied.
pub async fn gather(source: &StatusSource, now: Timestamp) -> StatusSnapshot {
    let day_start = crate::clock::site_day_start(source.timezone, now);
    let figures = source
        .store
        .read(move |c| figures::read(c, day_start))
        .await
        .map(StoreFigures::from);
    let (dir, limits) = (source.data_dir.clone(), source.disk);
    let space = tokio::task::spawn_blocking(move || storage::space(&dir, limits).ok())
        .await
        .ok()
        .flatten();
    let board = source.board.view();
    let (figures, store_error) = match figures {
        Ok(f) => (f, None),
        Err(e) => (StoreFigures::default(), Some(e.to_string())),
    };
    let store_write_error = StoreWriteError::of(&source.store, now);
    let mut alerts = figures.alerts;
    alerts.extend(board.alerts);
    // The alert book holds the store's own alert when it could still be written; otherwise
    // the page shows it from the store's live state.
    if let Some(failing) = &store_write_error {
        let alert = failing.alert();
        if !alerts
            .iter()
            .any(|a| a.kind == alert.kind && a.subject == alert.subject)
        {
            alerts.push(alert);
        }
    }
    sort_alerts(&mut alerts);
    StatusSnapshot {
        site_id: source.site_id.clone(),
        site_name: source.site_name.clone(),
        hub_version: env!("CARGO_PKG_VERSION").to_owned(),
        generated_at: now,
        started_at: source.started_at,
        devices_online: board.devices.iter().filter(|d| d.online).count(),
        alert_counts: AlertCounts::of(&alerts),
        uplink: board.uplink,
        oversized_messages: board.oversized_messages,
        outbox: figures.outbox,
        devices: board.devices,
        alerts,
        today: figures.today,
        skus_in_stock: figures.skus_in_stock,
        receiving: figures.receiving,
        vision: board.vision,
        data_dir: source.data_dir.display().to_string(),
        storage: space,
        store_error,
        store_write_error,
        store_durability: source.store.durability().clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_board_keeps_one_entry_per_device_and_sorts_alerts_by_urgency() {
        let board = StatusBoard::new();
        let t = Timestamp(1_000);
        board.set_device(Device::online("scale-2", "scale", "1.000 kg", t));
        board.set_device(Device::online("scale-1", "scale", "2.000 kg", t));
        board.set_device(Device::offline("scale-2", "scale", t));
        let view = board.view();
        assert_eq!(view.devices.len(), 2);
        assert_eq!(view.devices[0].name, "scale-1");
        assert!(!view.devices[1].online);
        board.remove_device("scale-1");
        assert_eq!(board.view().devices.len(), 1);

        board.set_alerts(vec![
            Alert::new(AlertTier::Yellow, "A", "low", Timestamp(1)),
            Alert::new(AlertTier::Red, "B", "out", Timestamp(3)),
            Alert::new(AlertTier::Red, "C", "out", Timestamp(2)),
        ]);
        let view = board.view();
        let order: Vec<&str> = view.alerts.iter().map(|a| a.subject.as_str()).collect();
        assert_eq!(order, ["C", "B", "A"]);
        let counts = AlertCounts::of(&view.alerts);
        assert_eq!((counts.red, counts.orange, counts.yellow), (2, 0, 1));
    }

    #[test]
    fn clones_share_one_board() {
        let board = StatusBoard::new();
        let adapter = board.clone();
        adapter.set_uplink(Uplink::new(UplinkState::Offline, Timestamp(5)).with_detail("timeout"));
        adapter.set_vision(Vision::new("m", "tract"));
        let view = board.view();
        assert_eq!(view.uplink.state, UplinkState::Offline);
        assert_eq!(view.vision.unwrap().backend, "tract");
    }
}

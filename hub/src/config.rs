//! Site configuration: TOML in, a validated [`Config`] out.
//!
//! Two stages. Each section is deserialised on its own into a `Raw*` struct with
//! `deny_unknown_fields` (so a typo in one section does not hide problems in another), then
//! validated into typed settings. Every problem is collected with its key path and reported in
//! one go. Loading has no side effects: nothing is created or opened here.

use hub_core::SiteId;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One thing wrong with a configuration file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, e.g. `store.queue_capacity` or `devices[1].port`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Collects every problem found while validating.
#[derive(Debug, Default)]
pub struct Problems(Vec<Problem>);

impl Problems {
    /// Records a problem at a key path.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems found, in file order of discovery.
    pub fn list(&self) -> &[Problem] {
        &self.0
    }
}

/// A configuration that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} has {} problem(s):\n{}", problems.len(), format_problems(problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

fn format_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The validated configuration of one hub.
#[derive(Debug, Clone)]
pub struct Config {
    pub site: SiteConfig,
    pub store: StoreConfig,
    pub log: LogConfig,
    pub shutdown: ShutdownConfig,
    pub status: StatusConfig,
    pub pickup: PickupConfig,
    pub alerts: AlertsConfig,
    /// The stations of this site (`[[stations]]`): only these may receive, check codes or
    /// hand orders over.
    pub stations: Vec<StationConfig>,
    /// Scales and scanners, in file order (`[[devices]]`).
    pub devices: Vec<crate::devices::config::DeviceConfig>,
    /// The site's local MQTT broker that networked devices publish to (`[device_broker]`).
    pub device_broker: crate::devices::config::BrokerConfig,
    pub receiving: ReceivingConfig,
    /// The site's trace-code patterns (`[codes] patterns`), used by every classification.
    pub codes: crate::codes::SitePatterns,
    /// Upstream sync over MQTT; `None` when the file has no `[uplink]` section (or it is
    /// disabled), and the hub then keeps everything in its outbox.
    pub uplink: Option<UplinkConfig>,
    /// Photo checks with the image model (`[vision]`, with `[[vision.rules]]`).
    pub vision: crate::vision::VisionSettings,
}

/// Where a broker is and a secret that never shows in logs: `hub_mqtt`'s, used by `[uplink]`.
pub use hub_mqtt::{BrokerAddress, Secret};

/// How the hub talks to the central broker.
#[derive(Debug, Clone)]
pub struct UplinkConfig {
    pub broker: BrokerAddress,
    /// Stable client id (the broker keeps the session under it).
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// File holding the password (read when connecting), instead of `password`.
    pub password_file: Option<PathBuf>,
    /// CA certificate(s) that signed the broker's certificate (PEM); required for mqtts.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain and key (PEM) for mutual TLS.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    pub keep_alive: Duration,
    pub connect_timeout: Duration,
    /// Messages published and not yet acknowledged, at most.
    pub in_flight: usize,
    /// Largest message the broker accepts; bigger events are withheld with an alert.
    pub max_message_bytes: usize,
    /// Largest command accepted from central.
    pub max_command_bytes: usize,
    pub heartbeat: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// Delivered (and central-confirmed) outbox rows older than this are deleted.
    pub retention: Duration,
    /// The `outbox_backlog` alert turns red when this many rows wait for the uplink.
    pub backlog_alert_rows: i64,
    /// … or when the oldest waiting row is older than this.
    pub backlog_alert_age: Duration,
}

/// Receiving rules and evidence retention.
#[derive(Debug, Clone)]
pub struct ReceivingConfig {
    pub policy: hub_core::receiving::ReceivingPolicy,
    pub retention: crate::evidence::Retention,
}

/// Pickup-point rules.
#[derive(Debug, Clone)]
pub struct PickupConfig {
    /// Wrong guesses per station before a lockout, the window they count in, the lockout
    /// length, the site-wide hourly budget and alert level; whether a typed code alone is
    /// looked up among every open order (off by default: each such guess is compared with
    /// every open order); how recent a code check a handover needs.
    pub rules: hub_core::pickup::PickupRules,
}

/// What a station is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StationKind {
    Receiving,
    Pickup,
}

impl StationKind {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            StationKind::Receiving => "receiving",
            StationKind::Pickup => "pickup",
        }
    }
}

/// One declared station (`[[stations]]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StationConfig {
    pub id: String,
    pub kind: StationKind,
    /// A name for people ("收货台 1").
    pub name: String,
}

/// A station that is not declared, or declared for something else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StationError {
    #[error(
        "station '{0}' is not declared in this hub's config ([[stations]]); use a declared station"
    )]
    Unknown(String),
    #[error("station '{id}' is a {actual} station, not a {wanted} station")]
    WrongKind {
        id: String,
        actual: &'static str,
        wanted: &'static str,
    },
}

impl Config {
    /// The declared station `id`, if it is of `kind`.
    pub fn station(&self, id: &str, kind: StationKind) -> Result<&StationConfig, StationError> {
        let station = self
            .stations
            .iter()
            .find(|s| s.id == id)
            .ok_or_else(|| StationError::Unknown(id.to_owned()))?;
        if station.kind != kind {
            return Err(StationError::WrongKind {
                id: id.to_owned(),
                actual: station.kind.as_str(),
                wanted: kind.as_str(),
            });
        }
        Ok(station)
    }
}

/// Alert thresholds.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    /// Tier policy for SKUs that central has not sent one for.
    pub default_policy: hub_core::alerts::TierPolicy,
    /// Batches expiring within this many days raise a yellow alert.
    pub expiry_warn_days: i64,
    /// Undelivered outbox events older than this raise the `outbox_backlog` alert (yellow).
    pub outbox_backlog_warn: Duration,
    /// The backlog alert turns red at this many undelivered rows (`uplink.backlog_alert_rows`).
    pub outbox_backlog_red_rows: i64,
    /// … or when the oldest undelivered row is this old (`uplink.backlog_alert_age_hours`).
    pub outbox_backlog_red_age: Duration,
    /// How often the periodic checks run.
    pub check_interval: Duration,
    /// Held stock waiting longer than this for review raises an alert.
    pub quarantine_warn: Duration,
    /// The pickup limits whose lockouts and wrong-guess rate the checks report (a copy of
    /// `pickup.rules.attempts`).
    pub pickup_attempts: hub_core::pickup::AttemptPolicy,
}

impl AlertsConfig {
    /// The outbox backlog alert's thresholds, for `hub_core::alerts::backlog_tier`.
    pub fn backlog_policy(&self) -> hub_core::alerts::BacklogPolicy {
        hub_core::alerts::BacklogPolicy {
            warn_after_ms: self.outbox_backlog_warn.as_millis() as i64,
            red_rows: self.outbox_backlog_red_rows,
            red_after_ms: self.outbox_backlog_red_age.as_millis() as i64,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SiteConfig {
    pub id: SiteId,
    pub name: String,
}

/// How the local database is kept.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Folder for the database, photos and other evidence.
    pub data_dir: PathBuf,
    /// Requests waiting for the writer before callers are made to wait.
    pub queue_capacity: usize,
    /// Most requests committed together in one group commit.
    pub max_batch: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    /// A `tracing` filter such as `info` or `hub=debug,info`.
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone)]
pub struct ShutdownConfig {
    /// How long tasks may take to finish after a stop signal before they are abandoned.
    pub grace: Duration,
}

/// The on-site status page (`hub::status`).
#[derive(Clone)]
pub struct StatusConfig {
    /// Whether `hub run` serves the page at all.
    pub enabled: bool,
    /// Address the page is served on; loopback unless a LAN address is chosen explicitly.
    pub listen: std::net::SocketAddr,
    /// Bearer token every request must carry; always set when `listen` is not loopback.
    pub token: Option<String>,
    /// How often the HTML page reloads itself.
    pub refresh: Duration,
}

impl fmt::Debug for StatusConfig {
    // The token is a secret: never print it, not even in debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusConfig")
            .field("enabled", &self.enabled)
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("refresh", &self.refresh)
            .finish()
    }
}

impl Default for StatusConfig {
    fn default() -> Self {
        StatusConfig {
            enabled: true,
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: None,
            refresh: Duration::from_secs(10),
        }
    }
}

/// Shortest status token accepted: long enough that guessing it over a LAN is hopeless.
pub const MIN_STATUS_TOKEN_LEN: usize = 16;

/// Checks a status-page token: at least [`MIN_STATUS_TOKEN_LEN`] URL-safe characters, so it can
/// sit in a bookmark (`?token=`) without escaping.
pub fn check_status_token(token: &str) -> Result<(), String> {
    if token.len() < MIN_STATUS_TOKEN_LEN {
        return Err(format!(
            "is too short ({} characters); use at least {MIN_STATUS_TOKEN_LEN}, e.g. from `openssl rand -hex 16`",
            token.len()
        ));
    }
    if let Some(c) = token
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._~".contains(*c)))
    {
        return Err(format!(
            "contains {c:?}; use letters, digits and - . _ ~ only"
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSite {
    id: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStore {
    data_dir: Option<PathBuf>,
    queue_capacity: Option<i64>,
    max_batch: Option<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: Option<String>,
    format: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawShutdown {
    grace_seconds: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStatus {
    enabled: Option<bool>,
    listen: Option<String>,
    token: Option<String>,
    refresh_seconds: Option<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPickup {
    max_wrong_codes: Option<i64>,
    wrong_code_window_minutes: Option<i64>,
    lockout_minutes: Option<i64>,
    site_max_wrong_codes_per_hour: Option<i64>,
    wrong_code_alert_per_hour: Option<i64>,
    allow_code_only: Option<bool>,
    check_valid_minutes: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStation {
    id: String,
    kind: String,
    name: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    measure: Option<String>,
    yellow: Option<f64>,
    orange: Option<f64>,
    red: Option<f64>,
    hysteresis: Option<f64>,
    replenish_at: Option<String>,
    target: Option<f64>,
    re_request_after_minutes: Option<i64>,
    expiry_warn_days: Option<i64>,
    outbox_backlog_warn_minutes: Option<i64>,
    check_interval_seconds: Option<i64>,
    quarantine_warn_hours: Option<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCodes {
    patterns: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReceiving {
    min_days_to_expiry: Option<i64>,
    photo_required: Option<bool>,
    photo_max_age_days: Option<i64>,
    photo_max_total_mb: Option<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawUplink {
    enabled: Option<bool>,
    broker: Option<String>,
    client_id: Option<String>,
    username: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    client_cert_file: Option<PathBuf>,
    client_key_file: Option<PathBuf>,
    keep_alive_seconds: Option<f64>,
    connect_timeout_seconds: Option<f64>,
    in_flight: Option<i64>,
    max_message_bytes: Option<i64>,
    max_command_bytes: Option<i64>,
    heartbeat_seconds: Option<f64>,
    reconnect_min_seconds: Option<f64>,
    reconnect_max_seconds: Option<f64>,
    retention_hours: Option<f64>,
    backlog_alert_rows: Option<i64>,
    backlog_alert_age_hours: Option<f64>,
}

const SECTIONS: &[&str] = &[
    "site",
    "store",
    "log",
    "shutdown",
    "pickup",
    "alerts",
    "stations",
    "devices",
    "device_broker",
    "receiving",
    "uplink",
    "status",
    "vision",
    "codes",
];

/// What `hub check-config` finds on this machine about the files and devices a valid config
/// names (loading a config never looks at them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineCheck {
    /// Missing or unreadable TLS and credential files: the uplink cannot connect without them.
    pub problems: Vec<Problem>,
    /// Serial devices not plugged in now, or named by an unstable path: the hub copes.
    pub warnings: Vec<Problem>,
}

/// Stable serial device links: udev's, and the ones the package's rules add.
const STABLE_SERIAL_DIRS: [&str; 2] = ["/dev/serial/by-id/", "/dev/hub/by-id/"];

fn readable_file(path: &Path) -> Result<(), String> {
    match std::fs::File::open(path).and_then(|f| f.metadata()) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(_) => Err(format!("{} is not a file", path.display())),
        Err(e) => Err(format!(
            "cannot read {}: {e}; check the path and its permissions",
            path.display()
        )),
    }
}

impl Config {
    /// Checks the files and devices this config names, as they are on this machine now.
    pub fn check_machine(&self) -> MachineCheck {
        let mut check = MachineCheck::default();
        if let Some(u) = &self.uplink {
            for (key, path) in [
                ("uplink.ca_file", &u.ca_file),
                ("uplink.client_cert_file", &u.client_cert_file),
                ("uplink.client_key_file", &u.client_key_file),
                ("uplink.password_file", &u.password_file),
            ] {
                if let Some(path) = path
                    && let Err(message) = readable_file(path)
                {
                    check.problems.push(Problem {
                        path: key.into(),
                        message,
                    });
                }
            }
        }
        for (i, device) in self.devices.iter().enumerate() {
            let crate::devices::config::DeviceTransport::Serial { path, .. } = &device.transport
            else {
                continue;
            };
            let key = format!("devices[{i}].path");
            let text = path.to_string_lossy();
            if !STABLE_SERIAL_DIRS.iter().any(|dir| text.starts_with(dir)) {
                check.warnings.push(Problem {
                    path: key.clone(),
                    message: format!(
                        "{text} is not a /dev/serial/by-id/... link: ttyUSB/ttyACM numbers change when devices are replugged; use the by-id path (`ls -l /dev/serial/by-id/`)"
                    ),
                });
            }
            if !path.exists() {
                check.warnings.push(Problem {
                    path: key,
                    message: format!(
                        "{text} does not exist now (device unplugged or path mistyped?); the hub keeps trying to open it"
                    ),
                });
            }
        }
        check
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path.parent().unwrap_or(Path::new("."))).map_err(|problems| {
            ConfigError::Invalid {
                path: path.to_owned(),
                problems,
            }
        })
    }

    /// Validates config text. Relative paths are resolved against `base_dir`.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Config, Vec<Problem>> {
        let mut problems = Problems::default();
        let table: toml::Table = match text.parse() {
            Ok(table) => table,
            Err(e) => {
                problems.push("(file)", format!("not valid TOML: {}", e.message().trim()));
                if let Some(span) = e.span() {
                    let line = text[..span.start.min(text.len())].lines().count().max(1);
                    problems.0[0].path = format!("(line {line})");
                }
                return Err(problems.0);
            }
        };
        for key in table.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                problems.push(
                    key.clone(),
                    format!(
                        "unknown section; known sections are {}",
                        SECTIONS.join(", ")
                    ),
                );
            }
        }
        let site: RawSite = section(&table, "site", &mut problems);
        let store: RawStore = section(&table, "store", &mut problems);
        let log: RawLog = section(&table, "log", &mut problems);
        let shutdown: RawShutdown = section(&table, "shutdown", &mut problems);
        let uplink_present = table.contains_key("uplink");
        let raw_uplink: RawUplink = section(&table, "uplink", &mut problems);
        let status: RawStatus = section(&table, "status", &mut problems);
        let pickup: RawPickup = section(&table, "pickup", &mut problems);
        let alerts: RawAlerts = section(&table, "alerts", &mut problems);
        let pickup = validate_pickup(pickup, &mut problems);
        let mut alerts = validate_alerts(alerts, &mut problems);
        alerts.pickup_attempts = pickup.rules.attempts;
        let device_broker = crate::devices::config::validate_broker(
            section(&table, "device_broker", &mut problems),
            site.id.as_deref().unwrap_or("hub"),
            &mut problems,
        );
        let stations = validate_stations(table.get("stations"), &mut problems);
        let mut devices =
            crate::devices::config::validate_devices(table.get("devices"), &mut problems);
        for (i, device) in devices.iter().enumerate() {
            if !stations.iter().any(|s| s.id == device.station) {
                problems.push(
                    format!("devices[{i}].station"),
                    format!(
                        "'{}' is not a declared station; add it as [[stations]] (id, kind, name)",
                        device.station
                    ),
                );
            }
        }
        let codes: RawCodes = section(&table, "codes", &mut problems);
        let codes = match crate::codes::SitePatterns::parse(&codes.patterns.unwrap_or_default()) {
            Ok(patterns) => patterns,
            Err(list) => {
                for (index, problem) in list {
                    let path = match index {
                        Some(i) => format!("codes.patterns[{i}]"),
                        None => "codes.patterns".to_owned(),
                    };
                    problems.push(path, problem.to_string());
                }
                crate::codes::SitePatterns::default()
            }
        };
        for device in &mut devices {
            device.site_patterns = codes.clone();
        }
        let receiving: RawReceiving = section(&table, "receiving", &mut problems);
        let receiving = ReceivingConfig {
            policy: hub_core::receiving::ReceivingPolicy {
                min_days_to_expiry: int_in(
                    receiving.min_days_to_expiry,
                    2,
                    0,
                    365,
                    "receiving.min_days_to_expiry",
                    &mut problems,
                ) as i64,
                photo_required: receiving.photo_required.unwrap_or(true),
            },
            retention: crate::evidence::Retention {
                max_age_days: int_in(
                    receiving.photo_max_age_days,
                    90,
                    1,
                    3650,
                    "receiving.photo_max_age_days",
                    &mut problems,
                ) as i64,
                max_total_bytes: int_in(
                    receiving.photo_max_total_mb,
                    2048,
                    1,
                    1_000_000,
                    "receiving.photo_max_total_mb",
                    &mut problems,
                ) as u64
                    * 1024
                    * 1024,
            },
        };

        let site_id = match site.id {
            None => {
                problems.push(
                    "site.id",
                    "missing; every hub needs its site id, e.g. id = \"sh-pudong-017\"",
                );
                None
            }
            Some(id) => match SiteId::new(id) {
                Ok(id) => Some(id),
                Err(e) => {
                    problems.push("site.id", e.to_string());
                    None
                }
            },
        };
        let data_dir = match store.data_dir {
            None => {
                problems.push(
                    "store.data_dir",
                    "missing; the folder where the hub keeps its database",
                );
                PathBuf::new()
            }
            Some(dir) if dir.as_os_str().is_empty() => {
                problems.push("store.data_dir", "is empty");
                dir
            }
            Some(dir) if dir.is_relative() => base_dir.join(dir),
            Some(dir) => dir,
        };
        let queue_capacity = int_in(
            store.queue_capacity,
            1024,
            1,
            1_000_000,
            "store.queue_capacity",
            &mut problems,
        );
        let max_batch = int_in(
            store.max_batch,
            512,
            1,
            100_000,
            "store.max_batch",
            &mut problems,
        );
        let format = match log.format.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                problems.push(
                    "log.format",
                    format!("'{other}' is not a log format; use \"text\" or \"json\""),
                );
                LogFormat::Text
            }
        };
        let level = log.level.unwrap_or_else(|| "info".to_owned());
        if let Err(e) = level.parse::<tracing_subscriber::EnvFilter>() {
            problems.push("log.level", format!("'{level}' is not a log filter: {e}"));
        }
        let grace = match shutdown.grace_seconds {
            None => Duration::from_secs(10),
            Some(s) if s.is_finite() && (0.0..=600.0).contains(&s) => Duration::from_secs_f64(s),
            Some(s) => {
                problems.push(
                    "shutdown.grace_seconds",
                    format!("{s} is out of range 0..=600"),
                );
                Duration::from_secs(10)
            }
        };
        let uplink = if uplink_present && raw_uplink.enabled != Some(false) {
            validate_uplink(raw_uplink, site_id.as_ref(), base_dir, &mut problems)
        } else {
            None
        };
        let status = validate_status(status, &mut problems);
        let vision = crate::vision::validate(
            section(&table, "vision", &mut problems),
            base_dir,
            &mut problems,
        );
        let photo_stations = vision
            .spool
            .iter()
            .map(|s| ("vision.spool_station".to_owned(), &s.station))
            .chain(
                vision
                    .photo_topics
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (format!("vision.photo_topics[{i}].station"), &t.station)),
            );
        for (path, station) in photo_stations {
            if !stations
                .iter()
                .any(|s| &s.id == station && s.kind == StationKind::Receiving)
            {
                problems.push(
                    path,
                    format!("'{station}' is not a declared receiving station ([[stations]])"),
                );
            }
        }
        // One backlog alert: the periodic checks' `outbox_backlog`; the uplink's thresholds
        // set when it turns red.
        if let Some(u) = &uplink {
            alerts.outbox_backlog_red_rows = u.backlog_alert_rows;
            alerts.outbox_backlog_red_age = u.backlog_alert_age;
        }
        match (problems.is_empty(), site_id) {
            (true, Some(id)) => Ok(Config {
                site: SiteConfig {
                    name: site.name.unwrap_or_else(|| id.to_string()),
                    id,
                },
                store: StoreConfig {
                    data_dir,
                    queue_capacity,
                    max_batch,
                },
                log: LogConfig { level, format },
                shutdown: ShutdownConfig { grace },
                status,
                pickup,
                alerts,
                stations,
                devices,
                device_broker,
                receiving,
                codes,
                uplink,
                vision,
            }),
            _ => Err(problems.0),
        }
    }

    /// The site's database file inside the data directory.
    pub fn database_path(&self) -> PathBuf {
        self.store
            .data_dir
            .join(format!("hub-{}.sqlite", self.site.id))
    }

    /// The site's stream marker beside its database (see `crate::incarnation`).
    pub fn marker_path(&self) -> PathBuf {
        self.store
            .data_dir
            .join(format!("hub-{}.stream", self.site.id))
    }
}

fn validate_status(raw: RawStatus, problems: &mut Problems) -> StatusConfig {
    let defaults = StatusConfig::default();
    let listen = match raw.listen.as_deref() {
        None => defaults.listen,
        Some(text) => match text.parse::<std::net::SocketAddr>() {
            Ok(addr) => addr,
            Err(_) => {
                problems.push(
                    "status.listen",
                    format!(
                        "'{text}' is not an address:port; e.g. \"127.0.0.1:8080\" or \"192.168.1.20:8080\""
                    ),
                );
                defaults.listen
            }
        },
    };
    let token = raw.token.filter(|t| !t.is_empty());
    if let Some(token) = &token
        && let Err(message) = check_status_token(token)
    {
        problems.push("status.token", message);
    }
    let enabled = raw.enabled.unwrap_or(true);
    if enabled && !listen.ip().is_loopback() && token.is_none() {
        problems.push(
            "status.token",
            format!(
                "required because status.listen ({listen}) is not a loopback address; anyone on the LAN could read the page otherwise"
            ),
        );
    }
    let refresh = int_in(
        raw.refresh_seconds,
        10,
        2,
        3600,
        "status.refresh_seconds",
        problems,
    );
    StatusConfig {
        enabled,
        listen,
        token,
        refresh: Duration::from_secs(refresh as u64),
    }
}

fn validate_pickup(raw: RawPickup, problems: &mut Problems) -> PickupConfig {
    let d = hub_core::pickup::AttemptPolicy::default();
    let minutes = |v: Option<i64>, default_ms: i64, path: &str, problems: &mut Problems| {
        int_in(
            v,
            (default_ms / 60_000) as usize,
            1,
            24 * 60,
            path,
            problems,
        ) as i64
            * 60_000
    };
    let rules = hub_core::pickup::PickupRules {
        attempts: hub_core::pickup::AttemptPolicy {
            max_failures: int_in(
                raw.max_wrong_codes,
                d.max_failures as usize,
                1,
                100,
                "pickup.max_wrong_codes",
                problems,
            ) as u32,
            window_ms: minutes(
                raw.wrong_code_window_minutes,
                d.window_ms,
                "pickup.wrong_code_window_minutes",
                problems,
            ),
            lockout_ms: minutes(
                raw.lockout_minutes,
                d.lockout_ms,
                "pickup.lockout_minutes",
                problems,
            ),
            site_max_per_hour: int_in(
                raw.site_max_wrong_codes_per_hour,
                d.site_max_per_hour as usize,
                1,
                10_000,
                "pickup.site_max_wrong_codes_per_hour",
                problems,
            ) as u32,
            site_alert_per_hour: int_in(
                raw.wrong_code_alert_per_hour,
                d.site_alert_per_hour as usize,
                1,
                10_000,
                "pickup.wrong_code_alert_per_hour",
                problems,
            ) as u32,
        },
        allow_code_only: raw.allow_code_only.unwrap_or(false),
        check_valid_ms: minutes(
            raw.check_valid_minutes,
            10 * 60_000,
            "pickup.check_valid_minutes",
            problems,
        ),
    };
    PickupConfig { rules }
}

fn validate_stations(value: Option<&toml::Value>, problems: &mut Problems) -> Vec<StationConfig> {
    let Some(value) = value else {
        return Vec::new();
    };
    let Some(items) = value.as_array() else {
        problems.push(
            "stations",
            "must be an array of tables: write each station as [[stations]]",
        );
        return Vec::new();
    };
    let mut stations: Vec<StationConfig> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let raw: RawStation = match item.clone().try_into() {
            Ok(raw) => raw,
            Err(e) => {
                problems.push(format!("stations[{i}]"), e.message().trim().to_owned());
                continue;
            }
        };
        let id = raw.id.trim().to_owned();
        if id.is_empty()
            || id.len() > 64
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            problems.push(
                format!("stations[{i}].id"),
                format!("'{id}' must be 1-64 letters, digits, '-', '_' or '.' (it is an MQTT topic level)"),
            );
            continue;
        }
        let kind = match raw.kind.as_str() {
            "receiving" => StationKind::Receiving,
            "pickup" => StationKind::Pickup,
            other => {
                problems.push(
                    format!("stations[{i}].kind"),
                    format!("'{other}' is not a station kind; use \"receiving\" or \"pickup\""),
                );
                continue;
            }
        };
        if stations.iter().any(|s| s.id == id) {
            problems.push(
                format!("stations[{i}].id"),
                format!("'{id}' is declared twice; station ids must be unique"),
            );
            continue;
        }
        let name = raw
            .name
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| id.clone());
        stations.push(StationConfig { id, kind, name });
    }
    stations
}

fn validate_alerts(raw: RawAlerts, problems: &mut Problems) -> AlertsConfig {
    use hub_core::alerts::{Measure, Tier, TierPolicy};
    let measure = match raw.measure.as_deref() {
        None | Some("days_of_cover") => Measure::DaysOfCover,
        Some("absolute") => Measure::Absolute,
        Some(other) => {
            problems.push(
                "alerts.measure",
                format!("'{other}' is not a measure; use \"days_of_cover\" or \"absolute\""),
            );
            Measure::DaysOfCover
        }
    };
    let replenish_at = match raw.replenish_at.as_deref() {
        None | Some("red") => Tier::Red,
        Some("orange") => Tier::Orange,
        Some(other) => {
            problems.push(
                "alerts.replenish_at",
                format!("'{other}' must be \"orange\" or \"red\""),
            );
            Tier::Red
        }
    };
    let policy = TierPolicy {
        measure,
        yellow: raw.yellow.unwrap_or(3.0),
        orange: raw.orange.unwrap_or(2.0),
        red: raw.red.unwrap_or(1.0),
        hysteresis: raw.hysteresis.unwrap_or(0.15),
        replenish_at,
        target: raw.target.unwrap_or(5.0),
        re_request_after_ms: int_in(
            raw.re_request_after_minutes,
            240,
            1,
            7 * 24 * 60,
            "alerts.re_request_after_minutes",
            problems,
        ) as i64
            * 60_000,
    };
    if let Err(e) = policy.validate() {
        problems.push("alerts", e.to_string());
    }
    AlertsConfig {
        default_policy: policy,
        expiry_warn_days: int_in(
            raw.expiry_warn_days,
            2,
            0,
            365,
            "alerts.expiry_warn_days",
            problems,
        ) as i64,
        outbox_backlog_warn: Duration::from_secs(
            int_in(
                raw.outbox_backlog_warn_minutes,
                60,
                1,
                7 * 24 * 60,
                "alerts.outbox_backlog_warn_minutes",
                problems,
            ) as u64
                * 60,
        ),
        outbox_backlog_red_rows: 1_000_000,
        outbox_backlog_red_age: Duration::from_secs(24 * 3600),
        check_interval: Duration::from_secs(int_in(
            raw.check_interval_seconds,
            60,
            1,
            3600,
            "alerts.check_interval_seconds",
            problems,
        ) as u64),
        quarantine_warn: Duration::from_secs(
            int_in(
                raw.quarantine_warn_hours,
                4,
                1,
                24 * 30,
                "alerts.quarantine_warn_hours",
                problems,
            ) as u64
                * 3600,
        ),
        pickup_attempts: hub_core::pickup::AttemptPolicy::default(),
    }
}

fn seconds_in(
    value: Option<f64>,
    default: f64,
    range: std::ops::RangeInclusive<f64>,
    path: &str,
    problems: &mut Problems,
) -> Duration {
    match value {
        None => Duration::from_secs_f64(default),
        Some(s) if s.is_finite() && range.contains(&s) => Duration::from_secs_f64(s),
        Some(s) => {
            problems.push(
                path,
                format!("{s} is out of range {}..={}", range.start(), range.end()),
            );
            Duration::from_secs_f64(default)
        }
    }
}

fn validate_uplink(
    raw: RawUplink,
    site: Option<&SiteId>,
    base_dir: &Path,
    problems: &mut Problems,
) -> Option<UplinkConfig> {
    let broker = match raw.broker.as_deref() {
        None => {
            problems.push(
                "uplink.broker",
                "missing; e.g. broker = \"mqtts://central.example.com:8883\", or remove [uplink]",
            );
            None
        }
        Some(url) => match BrokerAddress::parse(url) {
            Ok(b) => Some(b),
            Err(e) => {
                problems.push("uplink.broker", e);
                None
            }
        },
    };
    if site.is_some_and(|s| s.as_str().contains('/')) {
        problems.push(
            "site.id",
            "must not contain '/' when [uplink] is configured: the site id is one MQTT topic level",
        );
    }
    let resolve =
        |p: Option<PathBuf>| p.map(|p| if p.is_relative() { base_dir.join(p) } else { p });
    let ca_file = resolve(raw.ca_file);
    let client_cert_file = resolve(raw.client_cert_file);
    let client_key_file = resolve(raw.client_key_file);
    if let Some(b) = &broker {
        if b.tls && ca_file.is_none() {
            problems.push(
                "uplink.ca_file",
                "required for mqtts://: the PEM file of the CA that signed the broker's certificate",
            );
        }
        if !b.tls && (ca_file.is_some() || client_cert_file.is_some()) {
            problems.push(
                "uplink.broker",
                "TLS files are set but the broker URL is mqtt://; use mqtts://",
            );
        }
    }
    if client_cert_file.is_some() != client_key_file.is_some() {
        problems.push(
            "uplink.client_key_file",
            "client_cert_file and client_key_file go together; set both or neither",
        );
    }
    if raw.password.is_some() && raw.password_file.is_some() {
        problems.push(
            "uplink.password",
            "set either password or password_file, not both",
        );
    }
    if (raw.password.is_some() || raw.password_file.is_some()) && raw.username.is_none() {
        problems.push("uplink.username", "missing; a password needs a username");
    }
    let client_id = raw
        .client_id
        .unwrap_or_else(|| format!("hub-{}", site.map(|s| s.as_str()).unwrap_or("site")));
    if client_id.is_empty() || client_id.len() > 128 {
        problems.push("uplink.client_id", "must be 1..=128 characters");
    }
    let in_flight = int_in(raw.in_flight, 100, 1, 1000, "uplink.in_flight", problems);
    let max_message_bytes = int_in(
        raw.max_message_bytes,
        65_536,
        1024,
        268_435_455,
        "uplink.max_message_bytes",
        problems,
    );
    let max_command_bytes = int_in(
        raw.max_command_bytes,
        262_144,
        1024,
        268_435_455,
        "uplink.max_command_bytes",
        problems,
    );
    let backlog_alert_rows = int_in(
        raw.backlog_alert_rows,
        1_000_000,
        1,
        i64::MAX,
        "uplink.backlog_alert_rows",
        problems,
    ) as i64;
    let keep_alive = seconds_in(
        raw.keep_alive_seconds,
        30.0,
        5.0..=3600.0,
        "uplink.keep_alive_seconds",
        problems,
    );
    let connect_timeout = seconds_in(
        raw.connect_timeout_seconds,
        10.0,
        1.0..=300.0,
        "uplink.connect_timeout_seconds",
        problems,
    );
    let heartbeat = seconds_in(
        raw.heartbeat_seconds,
        60.0,
        0.2..=86_400.0,
        "uplink.heartbeat_seconds",
        problems,
    );
    let reconnect_min = seconds_in(
        raw.reconnect_min_seconds,
        0.5,
        0.01..=600.0,
        "uplink.reconnect_min_seconds",
        problems,
    );
    let reconnect_max = seconds_in(
        raw.reconnect_max_seconds,
        60.0,
        0.01..=3600.0,
        "uplink.reconnect_max_seconds",
        problems,
    );
    if reconnect_max < reconnect_min {
        problems.push(
            "uplink.reconnect_max_seconds",
            "must not be below reconnect_min_seconds",
        );
    }
    let retention = seconds_in(
        raw.retention_hours.map(|h| h * 3600.0),
        7.0 * 24.0 * 3600.0,
        0.0..=(3650.0 * 24.0 * 3600.0),
        "uplink.retention_hours",
        problems,
    );
    let backlog_alert_age = seconds_in(
        raw.backlog_alert_age_hours.map(|h| h * 3600.0),
        24.0 * 3600.0,
        0.0..=(3650.0 * 24.0 * 3600.0),
        "uplink.backlog_alert_age_hours",
        problems,
    );
    Some(UplinkConfig {
        broker: broker?,
        client_id,
        username: raw.username,
        password: raw.password.map(Secret::new),
        password_file: resolve(raw.password_file),
        ca_file,
        client_cert_file,
        client_key_file,
        keep_alive,
        connect_timeout,
        in_flight,
        max_message_bytes,
        max_command_bytes,
        heartbeat,
        reconnect_min,
        reconnect_max,
        retention,
        backlog_alert_rows,
        backlog_alert_age,
    })
}

/// Deserialises one top-level section on its own so that its errors carry its name and do not
/// stop the other sections from being checked.
pub(crate) fn section<T: DeserializeOwned + Default>(
    table: &toml::Table,
    key: &str,
    problems: &mut Problems,
) -> T {
    match table.get(key) {
        None => T::default(),
        Some(value) => match value.clone().try_into::<T>() {
            Ok(v) => v,
            Err(e) => {
                problems.push(key, e.message().trim().to_owned());
                T::default()
            }
        },
    }
}

pub(crate) fn int_in(
    value: Option<i64>,
    default: usize,
    min: i64,
    max: i64,
    path: &str,
    problems: &mut Problems,
) -> usize {
    match value {
        None => default,
        Some(v) if (min..=max).contains(&v) => v as usize,
        Some(v) => {
            problems.push(path, format!("{v} is out of range {min}..={max}"));
            default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_config_gets_defaults() {
        let c = Config::parse(
            "[site]\nid='s1'\n[store]\ndata_dir='data'\n",
            Path::new("/etc/hub"),
        )
        .unwrap();
        assert_eq!(c.site.id.as_str(), "s1");
        assert_eq!(c.store.data_dir, PathBuf::from("/etc/hub/data"));
        assert_eq!(c.store.max_batch, 512);
        assert_eq!(c.log.format, LogFormat::Text);
        assert_eq!(
            c.database_path(),
            PathBuf::from("/etc/hub/data/hub-s1.sqlite")
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_key_path() {
        let text = r#"
            [site]
            id = "bad id"
            [store]
            queue_capacity = 0
            colour = "blue"
            [log]
            format = "xml"
            [shutdown]
            grace_seconds = 9000
            [mystery]
        "#;
        let problems = Config::parse(text, Path::new("/")).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        for expected in [
            "mystery",
            "store",
            "site.id",
            "store.data_dir",
            "log.format",
            "shutdown.grace_seconds",
        ] {
            assert!(
                paths.contains(&expected),
                "{expected} missing from {paths:?}"
            );
        }
        let store = problems.iter().find(|p| p.path == "store").unwrap();
        assert!(store.message.contains("colour"), "{}", store.message);
    }

    #[test]
    fn the_uplink_section_is_validated_with_key_paths() {
        let c = Config::parse(
            "[site]\nid='s1'\n[store]\ndata_dir='d'\n[uplink]\nbroker='mqtts://c.example:8883'\nca_file='ca.pem'\nusername='s1'\npassword='hunter2'\n",
            Path::new("/etc/hub"),
        )
        .unwrap();
        let u = c.uplink.unwrap();
        assert_eq!(u.broker.to_string(), "mqtts://c.example:8883");
        assert_eq!(u.ca_file, Some(PathBuf::from("/etc/hub/ca.pem")));
        assert_eq!(u.client_id, "hub-s1");
        assert!(!format!("{u:?}").contains("hunter2"), "secrets never show");
        let problems = Config::parse(
            "[site]\nid='s1'\n[store]\ndata_dir='d'\n[uplink]\nbroker='mqtts://x'\nin_flight=0\npassword='p'\ncolour=1\n",
            Path::new("/"),
        )
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert!(paths.contains(&"uplink"), "{paths:?}");
        let problems = Config::parse(
            "[site]\nid='s1'\n[store]\ndata_dir='d'\n[uplink]\nbroker='mqtts://x'\nin_flight=0\npassword='p'\n",
            Path::new("/"),
        )
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        for expected in ["uplink.ca_file", "uplink.in_flight", "uplink.username"] {
            assert!(
                paths.contains(&expected),
                "{expected} missing from {paths:?}"
            );
        }
        assert!(BrokerAddress::parse("http://x").is_err());
        assert_eq!(BrokerAddress::parse("mqtt://h").unwrap().port, 1883);
    }

    #[test]
    fn code_patterns_are_checked_with_their_index_and_reach_the_devices() {
        let base = "[site]\nid='s1'\n[store]\ndata_dir='d'\n";
        let bad = format!(
            "{base}[codes]\npatterns = ['licence:SC:N:14:mod10', 'x:P:Q:3', 'licence::N:4', 'short']\n"
        );
        let problems = Config::parse(&bad, Path::new("/")).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "codes.patterns[1]",
                "codes.patterns[2]",
                "codes.patterns[3]"
            ],
            "{problems:?}"
        );
        assert!(problems[0].message.contains("charset must be N, A or X"));
        let good = format!(
            "{base}[codes]\npatterns = ['licence:SC:N:14:mod10']\n[[stations]]\nid='recv-1'\nkind='receiving'\n[[devices]]\nname='scan'\nkind='scanner'\npath='/dev/ttyACM0'\nstation='recv-1'\n"
        );
        let config = Config::parse(&good, Path::new("/")).unwrap();
        assert_eq!(config.codes.specs(), ["licence:SC:N:14:mod10"]);
        assert_eq!(config.devices[0].site_patterns, config.codes);
    }

    #[test]
    fn the_status_page_needs_a_token_off_loopback() {
        let base = "[site]\nid='s1'\n[store]\ndata_dir='d'\n";
        let c = Config::parse(base, Path::new("/")).unwrap();
        assert_eq!(c.status.listen.to_string(), "127.0.0.1:8080");
        assert!(c.status.token.is_none());

        let lan = format!("{base}[status]\nlisten='0.0.0.0:8080'\n");
        let problems = Config::parse(&lan, Path::new("/")).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "status.token");
        assert!(problems[0].message.contains("not a loopback"));

        let short = format!("{base}[status]\nlisten='192.168.1.5:80'\ntoken='abc'\n");
        let problems = Config::parse(&short, Path::new("/")).unwrap_err();
        assert_eq!(problems[0].path, "status.token");
        assert!(problems[0].message.contains("too short"));

        let ok = format!(
            "{base}[status]\nlisten='[::]:8080'\ntoken='0123456789abcdef0123'\nrefresh_seconds=5\n"
        );
        let c = Config::parse(&ok, Path::new("/")).unwrap();
        assert_eq!(c.status.refresh, Duration::from_secs(5));
        assert!(!format!("{:?}", c.status).contains("0123456789abcdef"));

        let bad = format!("{base}[status]\nlisten='localhost'\nport=1\n");
        let problems = Config::parse(&bad, Path::new("/")).unwrap_err();
        assert!(problems.iter().any(|p| p.path == "status"), "{problems:?}");
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let problems = Config::parse("[site]\nid = 's1'\nname = \n", Path::new("/")).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "(line 3)");
    }
}

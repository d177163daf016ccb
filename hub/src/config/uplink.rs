//! `[uplink]`: the central broker, TLS and credentials, the window, backoff and retention.

use super::problems::{Problems, int_in, seconds_in};
use hub_core::SiteId;
use hub_mqtt::Connection;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where a broker is and a secret that never shows in logs: `hub_mqtt`'s, used by `[uplink]`.
pub use hub_mqtt::{BrokerAddress, Secret};

/// How the hub talks to the central broker: the connection (hub-mqtt's, as every MQTT client
/// here uses it), how the drain is tuned, and when a backlog is alerted.
#[derive(Debug, Clone)]
pub struct UplinkConfig {
    pub connection: Connection,
    pub tuning: UplinkTuning,
    /// The `outbox_backlog` alert turns red when this many rows wait for the uplink.
    pub backlog_alert_rows: i64,
    /// … or when the oldest waiting row is older than this.
    pub backlog_alert_age: Duration,
}

/// How the uplink drains. [`Default`] is what `[uplink]` gives when only the broker is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UplinkTuning {
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
}

impl Default for UplinkTuning {
    fn default() -> Self {
        UplinkTuning {
            in_flight: 100,
            max_message_bytes: 65_536,
            max_command_bytes: 262_144,
            heartbeat: Duration::from_secs(60),
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(60),
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUplink {
    pub(super) enabled: Option<bool>,
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

pub(super) fn validate_uplink(
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
                problems.push("uplink.broker", e.to_string());
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
    let defaults = UplinkTuning::default();
    let in_flight = int_in(
        raw.in_flight,
        defaults.in_flight,
        1,
        1000,
        "uplink.in_flight",
        problems,
    );
    let max_message_bytes = int_in(
        raw.max_message_bytes,
        defaults.max_message_bytes,
        1024,
        268_435_455,
        "uplink.max_message_bytes",
        problems,
    );
    let max_command_bytes = int_in(
        raw.max_command_bytes,
        defaults.max_command_bytes,
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
        defaults.heartbeat.as_secs_f64(),
        0.2..=86_400.0,
        "uplink.heartbeat_seconds",
        problems,
    );
    let reconnect_min = seconds_in(
        raw.reconnect_min_seconds,
        defaults.reconnect_min.as_secs_f64(),
        0.01..=600.0,
        "uplink.reconnect_min_seconds",
        problems,
    );
    let reconnect_max = seconds_in(
        raw.reconnect_max_seconds,
        defaults.reconnect_max.as_secs_f64(),
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
        defaults.retention.as_secs_f64(),
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
        connection: Connection {
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
        },
        tuning: UplinkTuning {
            in_flight,
            max_message_bytes,
            max_command_bytes,
            heartbeat,
            reconnect_min,
            reconnect_max,
            retention,
        },
        backlog_alert_rows,
        backlog_alert_age,
    })
}

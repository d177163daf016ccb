//! Site configuration: TOML in, a validated [`Config`] out.
//!
//! Two stages. Each section is deserialised on its own into a `Raw*` struct with
//! `deny_unknown_fields` (so a typo in one section does not hide problems in another), then
//! validated into typed settings. Every problem is collected with its key path and reported in
//! one go. Loading has no side effects: nothing is created or opened here.

//!
//! The module is split by section: each file owns its section's types and validation, and
//! `problems` (the collected problems and small parsers) sits at the bottom, knowing no section.

mod alerts;
pub mod devices;
mod machine;
mod pickup;
pub mod problems;
mod receiving;
mod site;
mod stations;
mod status;
mod uplink;
pub mod vision;

pub use alerts::AlertsConfig;
pub use machine::MachineCheck;
pub use pickup::PickupConfig;
pub use problems::{Problem, Problems};
pub use receiving::{DEFAULT_ON_TIME_TOLERANCE_MINUTES, ReceivingConfig, Retention};
pub use site::{LogConfig, LogFormat, ShutdownConfig, SiteConfig, StoreConfig};
pub use stations::{StationConfig, StationError, StationKind};
pub use status::{MIN_STATUS_TOKEN_LEN, StatusConfig, StatusTls, check_status_token};
pub use uplink::{BrokerAddress, Secret, UplinkConfig, UplinkTuning};

use problems::section;
use serde::Deserialize;
use std::path::{Path, PathBuf};

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
    pub devices: Vec<devices::DeviceConfig>,
    /// The site's local MQTT broker that networked devices publish to (`[device_broker]`).
    pub device_broker: devices::BrokerConfig,
    pub receiving: ReceivingConfig,
    /// The site's trace-code patterns (`[codes] patterns`), used by every classification.
    pub codes: crate::codes::SitePatterns,
    /// Upstream sync over MQTT; `None` when the file has no `[uplink]` section (or it is
    /// disabled), and the hub then keeps everything in its outbox.
    pub uplink: Option<UplinkConfig>,
    /// Photo checks with the image model (`[vision]`, with `[[vision.rules]]`).
    pub vision: vision::VisionSettings,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCodes {
    patterns: Option<Vec<String>>,
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

impl Config {
    /// The declared station `id`, if it is of `kind`.
    pub fn station(&self, id: &str, kind: StationKind) -> Result<&StationConfig, StationError> {
        find_station(&self.stations, id, kind)
    }
}

/// The declared station `id` among `stations`, if it is of `kind`.
pub fn find_station<'s>(
    stations: &'s [StationConfig],
    id: &str,
    kind: StationKind,
) -> Result<&'s StationConfig, StationError> {
    let station = stations
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

impl Config {
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
                let path = match e.span() {
                    Some(span) => {
                        let line = text[..span.start.min(text.len())].lines().count().max(1);
                        format!("(line {line})")
                    }
                    None => "(file)".to_owned(),
                };
                problems.push(path, format!("not valid TOML: {}", e.message().trim()));
                return Err(problems.into_vec());
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
        let site = site::validate_site(section(&table, "site", &mut problems), &mut problems);
        let store = site::validate_store(
            section(&table, "store", &mut problems),
            base_dir,
            &mut problems,
        );
        let log = site::validate_log(section(&table, "log", &mut problems), &mut problems);
        let shutdown =
            site::validate_shutdown(section(&table, "shutdown", &mut problems), &mut problems);
        let pickup =
            pickup::validate_pickup(section(&table, "pickup", &mut problems), &mut problems);
        let mut alerts =
            alerts::validate_alerts(section(&table, "alerts", &mut problems), &mut problems);
        alerts.pickup_attempts = pickup.rules.attempts;
        let device_broker = devices::validate_broker(
            section(&table, "device_broker", &mut problems),
            site.as_ref().map_or("hub", |s| s.id.as_str()),
            &mut problems,
        );
        let stations = stations::validate_stations(table.get("stations"), &mut problems);
        let mut devices = devices::validate_devices(table.get("devices"), &mut problems);
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
        let receiving = receiving::validate_receiving(
            section(&table, "receiving", &mut problems),
            &mut problems,
        );
        let uplink_present = table.contains_key("uplink");
        let raw_uplink: uplink::RawUplink = section(&table, "uplink", &mut problems);
        let uplink = if uplink_present && raw_uplink.enabled != Some(false) {
            uplink::validate_uplink(
                raw_uplink,
                site.as_ref().map(|s| &s.id),
                base_dir,
                &mut problems,
            )
        } else {
            None
        };
        let status = status::validate_status(
            section(&table, "status", &mut problems),
            base_dir,
            &mut problems,
        );
        let vision = vision::validate(
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
        match (problems.is_empty(), site) {
            (true, Some(site)) => Ok(Config {
                site,
                store,
                log,
                shutdown,
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
            _ => Err(problems.into_vec()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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

    /// The receipt reversal window is 30 minutes unless set, and a window of
    /// none is refused by its key.
    #[test]
    fn the_receipt_reversal_window_defaults_to_30_minutes_and_must_be_positive() {
        let base = "[site]\nid='s1'\n[store]\ndata_dir='data'\n";
        let c = Config::parse(base, Path::new("/")).unwrap();
        assert_eq!(c.receiving.reversal_window_minutes, 30);
        let c = Config::parse(
            &format!("{base}[receiving]\nreversal_window_minutes = 45\n"),
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(c.receiving.reversal_window_minutes, 45);
        let problems = Config::parse(
            &format!("{base}[receiving]\nreversal_window_minutes = 0\n"),
            Path::new("/"),
        )
        .unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.path == "receiving.reversal_window_minutes"),
            "{problems:?}"
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
        assert_eq!(u.connection.broker.to_string(), "mqtts://c.example:8883");
        assert_eq!(u.connection.ca_file, Some(PathBuf::from("/etc/hub/ca.pem")));
        assert_eq!(u.connection.client_id, "hub-s1");
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
    fn status_tls_needs_both_files_and_reads_them_beside_the_config() {
        let base = "[site]\nid='s1'\n[store]\ndata_dir='d'\n[status]\n";
        let both = format!("{base}tls_cert_file='tls/hub.pem'\ntls_key_file='/etc/hub/hub.key'\n");
        let c = Config::parse(&both, Path::new("/etc/hub")).unwrap();
        let tls = c.status.tls.unwrap();
        assert_eq!(tls.cert_file, Path::new("/etc/hub/tls/hub.pem"));
        assert_eq!(tls.key_file, Path::new("/etc/hub/hub.key"));

        let cert_only = format!("{base}tls_cert_file='hub.pem'\n");
        let problems = Config::parse(&cert_only, Path::new("/")).unwrap_err();
        assert_eq!(problems[0].path, "status.tls_key_file", "{problems:?}");
        let key_only = format!("{base}tls_key_file='hub.key'\n");
        let problems = Config::parse(&key_only, Path::new("/")).unwrap_err();
        assert_eq!(problems[0].path, "status.tls_cert_file", "{problems:?}");
        assert!(
            Config::parse(base, Path::new("/"))
                .unwrap()
                .status
                .tls
                .is_none()
        );
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let problems = Config::parse("[site]\nid = 's1'\nname = \n", Path::new("/")).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "(line 3)");
    }
}

//! The `[[devices]]` and `[device_broker]` sections: raw TOML in, validated device settings out.
//!
//! Each `[[devices]]` entry is deserialised on its own (so one typo does not hide the others)
//! and every problem is reported with its key path, e.g. `devices[1].protocol`. Loading opens
//! nothing: a port that does not exist yet is fine here (it may be plugged in later).

use super::problems::{Problems, int_in};
use firmware_shim::wire::framer::Terminator;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// What a device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    Scale,
    Scanner,
}

/// What a device's input is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceRole {
    /// Scans select delivery lines and bind trace codes; weights are recorded on the line.
    Receiving,
    /// Scans are pickup codes checked at the station (or items of the order on screen);
    /// weights fill the by-weight lines of the order on screen.
    Pickup,
}

/// The wire protocol of a serial scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScaleProtocol {
    /// Mettler Toledo MT-SICS level 0/1, polled with `SI` or streamed with `SIR`.
    MtSics,
    /// Toledo 8217 (`W` polling, 9600 7E1).
    Toledo8217,
    /// Mettler Toledo standard continuous output (full frame with tare and checksum).
    MettlerContinuous,
    /// Yaohua XK3190-A9 continuous frames.
    YaohuaA9,
}

impl ScaleProtocol {
    /// Every protocol name accepted in the config.
    pub const NAMES: &'static [&'static str] =
        &["mt-sics", "toledo8217", "mettler-continuous", "yaohua-a9"];

    /// Reads a protocol name.
    pub fn parse(name: &str) -> Option<ScaleProtocol> {
        Some(match name {
            "mt-sics" => ScaleProtocol::MtSics,
            "toledo8217" => ScaleProtocol::Toledo8217,
            "mettler-continuous" => ScaleProtocol::MettlerContinuous,
            "yaohua-a9" => ScaleProtocol::YaohuaA9,
            _ => return None,
        })
    }

    /// The config name.
    pub fn as_str(self) -> &'static str {
        match self {
            ScaleProtocol::MtSics => "mt-sics",
            ScaleProtocol::Toledo8217 => "toledo8217",
            ScaleProtocol::MettlerContinuous => "mettler-continuous",
            ScaleProtocol::YaohuaA9 => "yaohua-a9",
        }
    }

    /// Whether the hub asks for each reading (as opposed to the scale sending on its own).
    pub fn is_polled(self) -> bool {
        matches!(self, ScaleProtocol::MtSics | ScaleProtocol::Toledo8217)
    }
}

/// How an MT-SICS scale is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleMode {
    /// The hub sends `SI` every `poll_interval_ms`.
    Poll,
    /// The hub sends `SIR` once; the scale streams readings.
    Stream,
}

/// Where a device's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "transport", rename_all = "snake_case")]
pub enum DeviceTransport {
    /// A serial port (USB-serial adapter, RS-232, a pseudo-terminal in tests).
    Serial { path: PathBuf, baud: u32 },
    /// A topic on the site's local MQTT broker.
    Mqtt { topic: String },
}

/// Scanner framing as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannerFraming {
    pub terminator: Terminator,
    pub prefix: Vec<u8>,
    pub suffix: Vec<u8>,
}

impl ScannerFraming {
    /// The firmware-shim framing settings for these options.
    pub fn shim_config(&self) -> firmware_shim::wire::scanner::ScannerConfig {
        use firmware_shim::wire::scanner::{Affix, ScannerConfig};
        ScannerConfig {
            terminator: self.terminator,
            // Validation keeps affixes at 8 bytes or fewer.
            prefix: Affix::new(&self.prefix).unwrap_or(Affix::NONE),
            suffix: Affix::new(&self.suffix).unwrap_or(Affix::NONE),
            strip_stx_etx: true,
            idle_timeout_ms: Some(100),
        }
    }
}

/// One validated device.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// Unique name; also the alert subject and the journal's device column.
    pub name: String,
    pub kind: DeviceKind,
    pub transport: DeviceTransport,
    /// Scales on serial only.
    pub protocol: Option<ScaleProtocol>,
    pub mode: ScaleMode,
    /// Scanners only.
    pub framing: ScannerFraming,
    /// The receiving or pickup station the device belongs to.
    pub station: String,
    pub role: DeviceRole,
    /// Time between polls (polled protocols).
    pub poll_interval: Duration,
    /// No valid frame for this long means offline; `None` for scanners unless configured
    /// (a scanner is silent between scans).
    pub offline_after: Option<Duration>,
    /// Equal consecutive readings the hub requires, on top of the scale's own stable flag.
    pub stable_readings: usize,
    /// A reading within this many grams of zero means the pan is empty.
    pub zero_band_g: i64,
    /// A stable weight that differs from the last recorded one by more than this is a new
    /// placement even without the pan going empty in between.
    pub placement_change_g: i64,
    /// Longest wait between two attempts to reopen a lost serial port.
    pub reconnect_max: Duration,
    /// The site's `[codes] patterns`, copied here so a scanner task needs nothing else.
    pub site_patterns: crate::codes::SitePatterns,
}

impl DeviceConfig {
    /// The port path for serial devices.
    pub fn path(&self) -> Option<&std::path::Path> {
        match &self.transport {
            DeviceTransport::Serial { path, .. } => Some(path),
            DeviceTransport::Mqtt { .. } => None,
        }
    }
}

/// The site's local broker for networked devices.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub host: String,
    pub port: u16,
    pub client_id: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBroker {
    host: Option<String>,
    port: Option<i64>,
    client_id: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    name: Option<String>,
    kind: Option<String>,
    transport: Option<String>,
    path: Option<PathBuf>,
    baud: Option<i64>,
    protocol: Option<String>,
    mode: Option<String>,
    terminator: Option<String>,
    prefix: Option<String>,
    suffix: Option<String>,
    station: Option<String>,
    role: Option<String>,
    topic: Option<String>,
    poll_interval_ms: Option<i64>,
    offline_after_ms: Option<i64>,
    stable_readings: Option<i64>,
    zero_band_g: Option<i64>,
    placement_change_g: Option<i64>,
    reconnect_max_ms: Option<i64>,
}

/// Validates `[device_broker]`.
pub(crate) fn validate_broker(raw: RawBroker, site: &str, problems: &mut Problems) -> BrokerConfig {
    let host = raw.host.unwrap_or_else(|| "127.0.0.1".to_owned());
    if host.trim().is_empty() {
        problems.push("device_broker.host", "is empty");
    }
    let port = int_in(raw.port, 1883, 1, 65535, "device_broker.port", problems) as u16;
    let client_id = raw
        .client_id
        .unwrap_or_else(|| format!("{site}-devices").replace(['/', '+', '#'], "-"));
    if client_id.is_empty() {
        problems.push("device_broker.client_id", "is empty");
    }
    BrokerConfig {
        host,
        port,
        client_id,
    }
}

/// Reads a terminator name: cr, lf, crlf, any, tab or none.
pub fn parse_terminator(text: &str) -> Option<Terminator> {
    Some(match text {
        "cr" => Terminator::Cr,
        "lf" => Terminator::Lf,
        "crlf" => Terminator::CrLf,
        "any" => Terminator::AnyEol,
        "tab" => Terminator::Byte(b'\t'),
        "none" => Terminator::None,
        _ => return None,
    })
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Validates the `[[devices]]` array; every entry is checked even when an earlier one fails.
pub(crate) fn validate_devices(
    value: Option<&toml::Value>,
    problems: &mut Problems,
) -> Vec<DeviceConfig> {
    let Some(value) = value else {
        return Vec::new();
    };
    let Some(items) = value.as_array() else {
        problems.push(
            "devices",
            "must be an array of tables: write each device as [[devices]]",
        );
        return Vec::new();
    };
    let mut devices = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = |key: &str| format!("devices[{i}].{key}");
        let raw: RawDevice = match item.clone().try_into() {
            Ok(raw) => raw,
            Err(e) => {
                problems.push(format!("devices[{i}]"), e.message().trim().to_owned());
                continue;
            }
        };
        if let Some(device) = validate_device(raw, &at, problems) {
            if devices.iter().any(|d: &DeviceConfig| d.name == device.name) {
                problems.push(
                    at("name"),
                    format!(
                        "'{}' is used by another device; names must be unique",
                        device.name
                    ),
                );
            } else {
                devices.push(device);
            }
        }
    }
    devices
}

fn validate_device(
    raw: RawDevice,
    at: &dyn Fn(&str) -> String,
    problems: &mut Problems,
) -> Option<DeviceConfig> {
    let before = problems.list().len();
    let name = raw.name.unwrap_or_default();
    if !valid_name(&name) {
        problems.push(
            at("name"),
            "missing or invalid; use 1-64 letters, digits, '-', '_' or '.', e.g. \"scale-1\"",
        );
    }
    let kind = match raw.kind.as_deref() {
        Some("scale") => Some(DeviceKind::Scale),
        Some("scanner") => Some(DeviceKind::Scanner),
        Some(other) => {
            problems.push(
                at("kind"),
                format!("'{other}' is not a device kind; use \"scale\" or \"scanner\""),
            );
            None
        }
        None => {
            problems.push(at("kind"), "missing; use \"scale\" or \"scanner\"");
            None
        }
    };
    let transport_name = raw.transport.as_deref().unwrap_or("serial");
    let transport = match transport_name {
        "serial" => {
            if raw.topic.is_some() {
                problems.push(at("topic"), "only for transport = \"mqtt\"");
            }
            let baud = int_in(raw.baud, 9600, 300, 4_000_000, &at("baud"), problems) as u32;
            match raw.path {
                Some(path) if !path.as_os_str().is_empty() => {
                    Some(DeviceTransport::Serial { path, baud })
                }
                _ => {
                    problems.push(
                        at("path"),
                        "missing; the serial port, preferably a stable /dev/serial/by-id/... link",
                    );
                    None
                }
            }
        }
        "mqtt" => {
            for (key, set) in [("path", raw.path.is_some()), ("baud", raw.baud.is_some())] {
                if set {
                    problems.push(at(key), "only for transport = \"serial\"");
                }
            }
            match raw.topic {
                Some(topic)
                    if !topic.is_empty() && !topic.contains('+') && !topic.contains('#') =>
                {
                    Some(DeviceTransport::Mqtt { topic })
                }
                _ => {
                    problems.push(
                        at("topic"),
                        "missing or invalid; one topic without wildcards, e.g. \"site/devices/scanner-2\"",
                    );
                    None
                }
            }
        }
        other => {
            problems.push(
                at("transport"),
                format!("'{other}' is not a transport; use \"serial\" or \"mqtt\""),
            );
            None
        }
    };
    let protocol = match (kind, raw.protocol.as_deref(), transport_name) {
        (Some(DeviceKind::Scale), Some(p), "serial") => match ScaleProtocol::parse(p) {
            Some(p) => Some(p),
            None => {
                problems.push(
                    at("protocol"),
                    format!(
                        "'{p}' is not a scale protocol; valid protocols are {}",
                        ScaleProtocol::NAMES.join(", ")
                    ),
                );
                None
            }
        },
        (Some(DeviceKind::Scale), None, "serial") => {
            problems.push(
                at("protocol"),
                format!(
                    "missing; a serial scale needs its protocol, one of {} (the hub probes it and never guesses)",
                    ScaleProtocol::NAMES.join(", ")
                ),
            );
            None
        }
        (_, Some(_), _) => {
            problems.push(
                at("protocol"),
                "only for serial scales (MQTT scales publish JSON, scanners use terminator/prefix/suffix)",
            );
            None
        }
        _ => None,
    };
    let mode = match raw.mode.as_deref() {
        None | Some("poll") => ScaleMode::Poll,
        Some("stream") if protocol == Some(ScaleProtocol::MtSics) => ScaleMode::Stream,
        Some("stream") => {
            problems.push(at("mode"), "\"stream\" is only for protocol = \"mt-sics\"");
            ScaleMode::Poll
        }
        Some(other) => {
            problems.push(
                at("mode"),
                format!("'{other}' is not a mode; use \"poll\" or \"stream\""),
            );
            ScaleMode::Poll
        }
    };
    let is_scanner = kind == Some(DeviceKind::Scanner);
    let terminator = match raw.terminator.as_deref() {
        None => Terminator::AnyEol,
        Some(t) => match parse_terminator(t) {
            Some(t) => t,
            None => {
                problems.push(
                    at("terminator"),
                    format!("'{t}' is not a terminator; use cr, lf, crlf, any, tab or none"),
                );
                Terminator::AnyEol
            }
        },
    };
    let mut affix = |key: &str, value: Option<String>| -> Vec<u8> {
        let bytes = value.map(String::into_bytes).unwrap_or_default();
        if bytes.len() > 8 {
            problems.push(at(key), "longer than 8 bytes");
        }
        bytes
    };
    let prefix = affix("prefix", raw.prefix);
    let suffix = affix("suffix", raw.suffix);
    if !is_scanner && raw.terminator.is_some() {
        problems.push(at("terminator"), "only for scanners");
    }
    let station = raw.station.unwrap_or_default();
    if station.trim().is_empty() {
        problems.push(
            at("station"),
            "missing; the receiving or pickup station this device sits at, e.g. \"recv-1\"",
        );
    }
    let role = match raw.role.as_deref() {
        None | Some("receiving") => DeviceRole::Receiving,
        Some("pickup") => DeviceRole::Pickup,
        Some(other) => {
            problems.push(
                at("role"),
                format!("'{other}' is not a role; use \"receiving\" or \"pickup\""),
            );
            DeviceRole::Receiving
        }
    };
    let poll_interval = Duration::from_millis(int_in(
        raw.poll_interval_ms,
        250,
        20,
        60_000,
        &at("poll_interval_ms"),
        problems,
    ) as u64);
    let serial = transport_name == "serial";
    let offline_default = if is_scanner || !serial { 0 } else { 3000 };
    let offline_ms = int_in(
        raw.offline_after_ms,
        offline_default,
        0,
        3_600_000,
        &at("offline_after_ms"),
        problems,
    ) as u64;
    if !is_scanner && offline_ms > 0 && offline_ms <= poll_interval.as_millis() as u64 {
        problems.push(
            at("offline_after_ms"),
            "must be longer than poll_interval_ms, or every poll would look like a timeout",
        );
    }
    if !is_scanner && serial && offline_ms == 0 {
        problems.push(
            at("offline_after_ms"),
            "must be positive for scales: a scale that stops answering has to be reported",
        );
    }
    // Yaohua A9 frames carry no motion flag: the hub-side check is the only guard, so it asks
    // for more equal readings.
    let stable_default = if protocol == Some(ScaleProtocol::YaohuaA9) {
        5
    } else {
        3
    };
    let stable_readings = int_in(
        raw.stable_readings,
        stable_default,
        1,
        50,
        &at("stable_readings"),
        problems,
    );
    let zero_band_g = int_in(
        raw.zero_band_g,
        20,
        0,
        100_000,
        &at("zero_band_g"),
        problems,
    ) as i64;
    let placement_change_g = int_in(
        raw.placement_change_g,
        20,
        1,
        100_000,
        &at("placement_change_g"),
        problems,
    ) as i64;
    let reconnect_max = Duration::from_millis(int_in(
        raw.reconnect_max_ms,
        5000,
        100,
        300_000,
        &at("reconnect_max_ms"),
        problems,
    ) as u64);
    if problems.list().len() > before {
        return None;
    }
    Some(DeviceConfig {
        name,
        kind: kind?,
        transport: transport?,
        protocol,
        mode,
        framing: ScannerFraming {
            terminator,
            prefix,
            suffix,
        },
        station,
        role,
        poll_interval,
        offline_after: (offline_ms > 0).then(|| Duration::from_millis(offline_ms)),
        stable_readings,
        zero_band_g,
        placement_change_g,
        reconnect_max,
        site_patterns: crate::codes::SitePatterns::default(),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    const BASE: &str = "[site]\nid='s1'\n[store]\ndata_dir='d'\n[[stations]]\nid='recv-1'\nkind='receiving'\n[[stations]]\nid='pickup-1'\nkind='pickup'\n";

    #[test]
    fn devices_are_validated_with_their_index() {
        let text = format!(
            "{BASE}
            [[devices]]
            name = 'scale-1'
            kind = 'scale'
            path = '/dev/serial/by-id/usb-scale'
            protocol = 'mt-sics'
            station = 'recv-1'
            [[devices]]
            name = 'scale-2'
            kind = 'scale'
            path = '/dev/ttyUSB1'
            protocol = 'adam'
            station = 'recv-2'
            colour = 'red'
            [[devices]]
            name = 'scale-3'
            kind = 'scale'
            path = '/dev/ttyUSB1'
            protocol = 'adam'
            station = 'recv-2'
            "
        );
        let problems = Config::parse(&text, Path::new("/")).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert!(paths.contains(&"devices[1]"), "{paths:?}");
        let protocol = problems
            .iter()
            .find(|p| p.path == "devices[2].protocol")
            .expect("bad protocol reported");
        assert!(
            protocol
                .message
                .contains("mt-sics, toledo8217, mettler-continuous, yaohua-a9"),
            "{}",
            protocol.message
        );
    }

    #[test]
    fn a_scanner_and_an_mqtt_scale_parse() {
        let text = format!(
            "{BASE}
            [[devices]]
            name = 'scan-1'
            kind = 'scanner'
            path = '/dev/ttyACM0'
            terminator = 'cr'
            prefix = '#'
            station = 'recv-1'
            [[devices]]
            name = 'scale-net'
            kind = 'scale'
            transport = 'mqtt'
            topic = 'site/scale-net'
            station = 'recv-1'
            "
        );
        let config = Config::parse(&text, Path::new("/")).unwrap();
        assert_eq!(config.devices.len(), 2);
        assert_eq!(config.devices[0].offline_after, None);
        assert_eq!(config.devices[0].framing.prefix, b"#");
        assert_eq!(config.devices[1].offline_after, None);
        assert_eq!(config.device_broker.port, 1883);
    }
}

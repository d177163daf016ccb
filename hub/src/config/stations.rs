//! `[[stations]]`: the receiving benches and pickup counters of the site. Only declared
//! stations may receive, check codes or hand over.

use super::problems::Problems;
use serde::Deserialize;

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStation {
    id: String,
    kind: String,
    name: Option<String>,
}

pub(super) fn validate_stations(
    value: Option<&toml::Value>,
    problems: &mut Problems,
) -> Vec<StationConfig> {
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

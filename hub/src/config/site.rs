//! `[site]`, `[store]`, `[log]` and `[shutdown]`: who this hub is, where it keeps its data, how
//! it logs and how long it drains.

use super::problems::{Problems, int_in};
use hub_core::SiteId;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Who this hub is.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    pub id: SiteId,
    pub name: String,
    /// The site's time zone (`site.timezone`, default `Asia/Shanghai`): every calendar day and
    /// time shown to a person is in it.
    pub timezone: chrono_tz::Tz,
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
    /// When the data directory's filesystem counts as nearly full.
    pub disk: crate::storage::DiskLimits,
}

/// Text for people, JSON lines for machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// How the hub logs.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// A `tracing` filter such as `info` or `hub=debug,info`.
    pub level: String,
    pub format: LogFormat,
}

/// How the daemon stops.
#[derive(Debug, Clone)]
pub struct ShutdownConfig {
    /// How long tasks may take to finish after a stop signal before they are abandoned.
    pub grace: Duration,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSite {
    id: Option<String>,
    name: Option<String>,
    timezone: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    data_dir: Option<PathBuf>,
    queue_capacity: Option<i64>,
    max_batch: Option<i64>,
    min_free_percent: Option<i64>,
    min_free_mb: Option<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    level: Option<String>,
    format: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawShutdown {
    grace_seconds: Option<f64>,
}

/// Validates `[site]`: the id is required. `None` when it is missing or invalid.
pub(super) fn validate_site(raw: RawSite, problems: &mut Problems) -> Option<SiteConfig> {
    let id = match raw.id {
        None => {
            problems.push(
                "site.id",
                "missing; every hub needs its site id, e.g. id = \"sh-pudong-017\"",
            );
            return None;
        }
        Some(id) => match SiteId::new(id) {
            Ok(id) => id,
            Err(e) => {
                problems.push("site.id", e.to_string());
                return None;
            }
        },
    };
    let timezone = match raw.timezone.as_deref() {
        None => chrono_tz::Asia::Shanghai,
        Some(name) => match name.parse::<chrono_tz::Tz>() {
            Ok(tz) => tz,
            Err(_) => {
                problems.push(
                    "site.timezone",
                    format!("'{name}' is not an IANA time zone; e.g. \"Asia/Shanghai\""),
                );
                chrono_tz::Asia::Shanghai
            }
        },
    };
    Some(SiteConfig {
        name: raw.name.unwrap_or_else(|| id.to_string()),
        id,
        timezone,
    })
}

/// Validates `[store]`; a relative `data_dir` is resolved against `base_dir`.
pub(super) fn validate_store(
    raw: RawStore,
    base_dir: &Path,
    problems: &mut Problems,
) -> StoreConfig {
    let data_dir = match raw.data_dir {
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
    StoreConfig {
        data_dir,
        queue_capacity: int_in(
            raw.queue_capacity,
            1024,
            1,
            1_000_000,
            "store.queue_capacity",
            problems,
        ),
        max_batch: int_in(raw.max_batch, 512, 1, 100_000, "store.max_batch", problems),
        disk: crate::storage::DiskLimits {
            min_free_ratio: int_in(
                raw.min_free_percent,
                10,
                0,
                90,
                "store.min_free_percent",
                problems,
            ) as f64
                / 100.0,
            min_free_bytes: int_in(
                raw.min_free_mb,
                1024,
                0,
                1 << 30,
                "store.min_free_mb",
                problems,
            ) as u64
                * 1024
                * 1024,
        },
    }
}

/// Validates `[log]`.
pub(super) fn validate_log(raw: RawLog, problems: &mut Problems) -> LogConfig {
    let format = match raw.format.as_deref() {
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
    let level = raw.level.unwrap_or_else(|| "info".to_owned());
    if let Err(e) = level.parse::<tracing_subscriber::EnvFilter>() {
        problems.push("log.level", format!("'{level}' is not a log filter: {e}"));
    }
    LogConfig { level, format }
}

/// Validates `[shutdown]`.
pub(super) fn validate_shutdown(raw: RawShutdown, problems: &mut Problems) -> ShutdownConfig {
    let grace = match raw.grace_seconds {
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
    ShutdownConfig { grace }
}

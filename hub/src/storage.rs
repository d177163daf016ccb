//! Care for the storage under the data directory: free space and fsync latency.
//!
//! A front-warehouse box usually keeps its data on an SD card or eMMC. Those wear out, fill up
//! and can be slow to flush; this module measures what the hub needs to know about them and
//! warns at start-up. It never writes outside a temporary file it removes again, and it knows
//! nothing about SQLite or the ledger.

use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// When the data directory's filesystem counts as nearly full (`store.min_free_percent`,
/// `store.min_free_mb`): less than `min_free_ratio` of it, or less than `min_free_bytes`, is
/// free. Below a quarter of either it is critical.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DiskLimits {
    pub min_free_ratio: f64,
    pub min_free_bytes: u64,
}

impl Default for DiskLimits {
    fn default() -> Self {
        DiskLimits {
            min_free_ratio: 0.10,
            min_free_bytes: 1 << 30,
        }
    }
}
/// Warn when the median of the start-up fsync probe is slower than this.
pub const SLOW_FSYNC_P50: Duration = Duration::from_millis(20);
/// Appends the start-up probe makes (each 1 KiB followed by `fdatasync`).
pub const PROBE_FSYNCS: usize = 20;

/// Space on the filesystem that holds a folder, judged against the site's [`DiskLimits`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Space {
    pub total_bytes: u64,
    /// Bytes an unprivileged process (the hub's service user) may still use.
    pub available_bytes: u64,
    /// The limits it is judged against.
    #[serde(skip)]
    pub limits: DiskLimits,
}

impl Space {
    /// Share of the filesystem still available, 0.0..=1.0.
    pub fn available_ratio(&self) -> f64 {
        if self.total_bytes == 0 {
            return 0.0;
        }
        self.available_bytes as f64 / self.total_bytes as f64
    }

    /// Whether less than the limits' share or bytes is free.
    pub fn is_low(&self) -> bool {
        self.available_ratio() < self.limits.min_free_ratio
            || self.available_bytes < self.limits.min_free_bytes
    }

    /// Whether less than a quarter of the limits is free.
    pub fn is_critical(&self) -> bool {
        self.available_ratio() < self.limits.min_free_ratio / 4.0
            || self.available_bytes < self.limits.min_free_bytes / 4
    }
}

/// A storage measurement that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot read the free space of {path}: {source}")]
    Space {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write a probe file in {path}: {source}")]
    Probe {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Free and total space of the filesystem holding `dir`, judged against `limits`.
pub fn space(dir: &Path, limits: DiskLimits) -> Result<Space, StorageError> {
    let st = rustix::fs::statvfs(dir).map_err(|e| StorageError::Space {
        path: dir.to_owned(),
        source: e.into(),
    })?;
    Ok(Space {
        total_bytes: st.f_blocks.saturating_mul(st.f_frsize),
        available_bytes: st.f_bavail.saturating_mul(st.f_frsize),
        limits,
    })
}

/// Latency percentiles of a series of measurements, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub samples: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// Summarises durations (any order). Empty input gives zeros.
    pub fn of(samples: &mut [Duration]) -> Percentiles {
        samples.sort_unstable();
        let at = |q: f64| -> f64 {
            if samples.is_empty() {
                return 0.0;
            }
            let index = ((samples.len() - 1) as f64 * q).round() as usize;
            samples[index].as_secs_f64() * 1000.0
        };
        Percentiles {
            samples: samples.len(),
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// Appends 1 KiB and calls `fdatasync` `count` times in a temporary file inside `dir`, and
/// returns each call's latency. The file is removed afterwards.
pub fn fsync_latencies(dir: &Path, count: usize) -> Result<Vec<Duration>, StorageError> {
    let probe = |source| StorageError::Probe {
        path: dir.to_owned(),
        source,
    };
    let mut file = tempfile::Builder::new()
        .prefix(".hub-fsync-probe-")
        .tempfile_in(dir)
        .map_err(probe)?;
    let block = [0x5au8; 1024];
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        file.write_all(&block).map_err(probe)?;
        file.as_file().sync_data().map_err(probe)?;
        latencies.push(started.elapsed());
    }
    Ok(latencies)
}

/// What the start-up check found about the data directory.
#[derive(Debug, Clone, Serialize)]
pub struct StartupCheck {
    pub data_dir: PathBuf,
    pub space: Option<Space>,
    pub fsync: Option<Percentiles>,
    /// Each thing an operator should know, as a sentence.
    pub warnings: Vec<String>,
}

/// Measures the data directory's free space and fsync latency ([`PROBE_FSYNCS`] appends).
/// Problems are collected as warnings: a slow or full card degrades the site but the hub still
/// starts, so that it keeps taking what it can and shows the problem on the status page.
pub fn check_data_dir(dir: &Path, limits: DiskLimits) -> StartupCheck {
    let mut warnings = Vec::new();
    let space = match space(dir, limits) {
        Ok(space) => {
            if space.is_low() {
                warnings.push(format!(
                    "the filesystem holding {} is nearly full: {} free of {} ({:.1}%); the hub stops storing anything when it is full. Free space or move store.data_dir",
                    dir.display(),
                    human_bytes(space.available_bytes),
                    human_bytes(space.total_bytes),
                    space.available_ratio() * 100.0
                ));
            }
            Some(space)
        }
        Err(e) => {
            warnings.push(e.to_string());
            None
        }
    };
    let fsync = match fsync_latencies(dir, PROBE_FSYNCS) {
        Ok(mut samples) => {
            let p = Percentiles::of(&mut samples);
            if p.p50_ms > SLOW_FSYNC_P50.as_secs_f64() * 1000.0 {
                warnings.push(format!(
                    "the storage holding {} is slow to make writes durable: median fsync {:.1} ms (warn above {} ms). Expect fewer than {:.0} durable commits/s; use an A1/A2 or industrial SD card or eMMC, and run `hub bench disk`",
                    dir.display(),
                    p.p50_ms,
                    SLOW_FSYNC_P50.as_millis(),
                    1000.0 / p.p50_ms.max(0.001)
                ));
            }
            Some(p)
        }
        Err(e) => {
            warnings.push(e.to_string());
            None
        }
    };
    StartupCheck {
        data_dir: dir.to_owned(),
        space,
        fsync,
        warnings,
    }
}

/// Runs [`check_data_dir`] and logs the outcome: WARN per problem, INFO otherwise.
pub fn log_startup_check(dir: &Path, limits: DiskLimits) -> StartupCheck {
    let check = check_data_dir(dir, limits);
    for warning in &check.warnings {
        tracing::warn!(data_dir = %dir.display(), "{warning}");
    }
    if check.warnings.is_empty() {
        tracing::info!(
            data_dir = %dir.display(),
            available = %check.space.map(|s| human_bytes(s.available_bytes)).unwrap_or_default(),
            fsync_p50_ms = check.fsync.map(|p| p.p50_ms).unwrap_or_default(),
            "data directory storage ok"
        );
    }
    check
}

/// `1.5 GiB`, `320 MiB`, `12 KiB`, `512 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_space_is_judged_by_share_and_by_bytes() {
        let gib = 1u64 << 30;
        let limits = DiskLimits::default();
        let roomy = Space {
            total_bytes: 32 * gib,
            available_bytes: 20 * gib,
            limits,
        };
        assert!(!roomy.is_low());
        let small_share = Space {
            total_bytes: 100 * gib,
            available_bytes: 5 * gib,
            limits,
        };
        assert!(small_share.is_low() && !small_share.is_critical());
        let few_bytes = Space {
            total_bytes: 4 * gib,
            available_bytes: gib / 8,
            limits,
        };
        assert!(few_bytes.is_low() && few_bytes.is_critical());
        // A site that chose other limits is judged by them.
        let relaxed = Space {
            limits: DiskLimits {
                min_free_ratio: 0.02,
                min_free_bytes: 1 << 20,
            },
            ..small_share
        };
        assert!(!relaxed.is_low());
    }

    #[test]
    fn percentiles_pick_the_right_samples() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let p = Percentiles::of(&mut samples);
        assert_eq!(p.samples, 100);
        assert_eq!(p.p50_ms, 51.0);
        assert_eq!(p.p99_ms, 99.0);
        assert_eq!(p.max_ms, 100.0);
        assert_eq!(Percentiles::of(&mut []).p50_ms, 0.0);
    }

    #[test]
    fn the_check_measures_a_real_folder_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let check = check_data_dir(dir.path(), DiskLimits::default());
        assert!(check.space.unwrap().total_bytes > 0);
        assert_eq!(check.fsync.unwrap().samples, PROBE_FSYNCS);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let missing = check_data_dir(&dir.path().join("missing"), DiskLimits::default());
        assert_eq!(missing.warnings.len(), 2, "{:?}", missing.warnings);
    }

    #[test]
    fn bytes_read_like_a_person_writes_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}

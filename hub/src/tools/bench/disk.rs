//! `hub bench disk`: how fast and how durable-friendly is the storage under the data directory?
//!
//! Three measurements, each made on the folder under test and, as a baseline in the same run,
//! on a RAM filesystem (`/dev/shm`): (1) fsync latency of 1 KiB appends followed by
//! `fdatasync`, as percentiles; (2) sequential write throughput, ending with one `fdatasync`;
//! (3) SQLite durable commits per second (WAL, `synchronous=FULL`, one row per transaction).
//! The ratio to RAM shows how much the storage itself costs. Everything is written in scratch
//! folders that are removed afterwards.

use super::ledger::raw_sqlite;
use crate::storage::{Percentiles, fsync_latencies, human_bytes, space};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Worst median fsync latency a site's storage may have.
pub const TARGET_FSYNC_P50_MS: f64 = 20.0;
/// Fewest single-row durable SQLite commits per second a site's storage may allow.
pub const TARGET_SQLITE_COMMITS_PER_S: f64 = 50.0;

/// What to measure and for how long.
#[derive(Debug, Clone)]
pub struct DiskBenchOptions {
    /// Number of 1 KiB append + fdatasync samples.
    pub fsyncs: usize,
    /// Bytes written in the sequential phase.
    pub sequential_bytes: u64,
    /// Seconds of SQLite commits.
    pub sqlite_seconds: f64,
    /// RAM-backed folder for the baseline; skipped when it does not exist.
    pub baseline_dir: PathBuf,
}

impl Default for DiskBenchOptions {
    fn default() -> Self {
        DiskBenchOptions {
            fsyncs: 200,
            sequential_bytes: 64 << 20,
            sqlite_seconds: 2.0,
            baseline_dir: PathBuf::from("/dev/shm"),
        }
    }
}

/// Figures for one folder.
#[derive(Debug, Clone, Serialize)]
pub struct DiskFigures {
    pub folder: String,
    pub fsync: Percentiles,
    pub sequential_write_mb_per_s: f64,
    pub sqlite_durable_commits_per_s: f64,
    pub available_bytes: Option<u64>,
}

/// The whole result; field names are the JSON contract.
#[derive(Debug, Clone, Serialize)]
pub struct DiskBenchReport {
    pub target: DiskFigures,
    /// The same measurements on RAM, when a RAM folder was available.
    pub baseline: Option<DiskFigures>,
    pub target_fsync_p50_ms: f64,
    pub target_sqlite_commits_per_s: f64,
    pub meets_targets: bool,
}

impl DiskBenchReport {
    /// Whether the storage is fast enough for a site.
    pub fn meets_targets(&self) -> bool {
        self.meets_targets
    }
}

fn sequential_write(dir: &Path, bytes: u64) -> anyhow::Result<f64> {
    let mut file = tempfile::Builder::new()
        .prefix(".hub-bench-seq-")
        .tempfile_in(dir)?;
    let chunk = vec![0xa5u8; 1 << 20];
    let started = Instant::now();
    let mut written = 0u64;
    while written < bytes {
        let n = chunk.len().min((bytes - written) as usize);
        file.write_all(&chunk[..n])?;
        written += n as u64;
    }
    file.as_file().sync_data()?;
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    Ok(written as f64 / 1e6 / seconds)
}

fn measure(dir: &Path, options: &DiskBenchOptions) -> anyhow::Result<DiskFigures> {
    let scratch = tempfile::Builder::new()
        .prefix("hub-bench-disk-")
        .tempdir_in(dir)?;
    eprintln!("  {}: fsync latency …", dir.display());
    let mut samples = fsync_latencies(scratch.path(), options.fsyncs)?;
    let fsync = Percentiles::of(&mut samples);
    eprintln!("  {}: sequential write …", dir.display());
    let sequential = sequential_write(scratch.path(), options.sequential_bytes)?;
    eprintln!("  {}: SQLite durable commits …", dir.display());
    let sqlite = raw_sqlite(scratch.path(), options.sqlite_seconds)?;
    Ok(DiskFigures {
        folder: dir.display().to_string(),
        fsync,
        sequential_write_mb_per_s: sequential,
        sqlite_durable_commits_per_s: sqlite,
        available_bytes: space(dir, Default::default())
            .ok()
            .map(|s| s.available_bytes),
    })
}

/// Measures `dir` and the RAM baseline.
pub fn run(dir: &Path, options: &DiskBenchOptions) -> anyhow::Result<DiskBenchReport> {
    eprintln!("measuring the data folder:");
    let target = measure(dir, options)?;
    let baseline = if options.baseline_dir.is_dir() {
        eprintln!("measuring the RAM baseline:");
        Some(measure(&options.baseline_dir, options)?)
    } else {
        eprintln!(
            "no RAM baseline: {} does not exist",
            options.baseline_dir.display()
        );
        None
    };
    let meets_targets = target.fsync.p50_ms <= TARGET_FSYNC_P50_MS
        && target.sqlite_durable_commits_per_s >= TARGET_SQLITE_COMMITS_PER_S;
    Ok(DiskBenchReport {
        target,
        baseline,
        target_fsync_p50_ms: TARGET_FSYNC_P50_MS,
        target_sqlite_commits_per_s: TARGET_SQLITE_COMMITS_PER_S,
        meets_targets,
    })
}

impl std::fmt::Display for DiskBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = &self.target;
        let b = self.baseline.as_ref();
        let verdict = |ok: bool| if ok { "ok" } else { "BELOW TARGET" };
        writeln!(f, "Disk benchmark on {}", t.folder)?;
        if let Some(free) = t.available_bytes {
            writeln!(f, "  {} available", human_bytes(free))?;
        }
        let base_name = b.map(|b| b.folder.as_str()).unwrap_or("(none)");
        writeln!(
            f,
            "  {:<38} {:>12} {:>14} {:>9}  target",
            "measurement", "data folder", base_name, "ratio"
        )?;
        let row = |f: &mut std::fmt::Formatter<'_>,
                   name: &str,
                   value: f64,
                   base: Option<f64>,
                   slower_when_higher: bool,
                   target: &str|
         -> std::fmt::Result {
            let ratio = match base {
                Some(base) if base > 0.0 && value > 0.0 => {
                    let r = if slower_when_higher {
                        value / base
                    } else {
                        base / value
                    };
                    format!("{r:.1}x")
                }
                _ => "-".into(),
            };
            // Latencies are small numbers worth three decimals; rates are large ones.
            let decimals = if slower_when_higher { 3 } else { 1 };
            let base = base
                .map(|v| format!("{v:.decimals$}"))
                .unwrap_or_else(|| "-".into());
            writeln!(
                f,
                "  {name:<38} {value:>12.decimals$} {base:>14} {ratio:>9}  {target}"
            )
        };
        let p50_ok = t.fsync.p50_ms <= self.target_fsync_p50_ms;
        row(
            f,
            "fsync 1 KiB append, p50 (ms)",
            t.fsync.p50_ms,
            b.map(|b| b.fsync.p50_ms),
            true,
            &format!("<= {} ms  {}", self.target_fsync_p50_ms, verdict(p50_ok)),
        )?;
        row(
            f,
            "fsync 1 KiB append, p90 (ms)",
            t.fsync.p90_ms,
            b.map(|b| b.fsync.p90_ms),
            true,
            "",
        )?;
        row(
            f,
            "fsync 1 KiB append, p99 (ms)",
            t.fsync.p99_ms,
            b.map(|b| b.fsync.p99_ms),
            true,
            "",
        )?;
        row(
            f,
            "fsync 1 KiB append, max (ms)",
            t.fsync.max_ms,
            b.map(|b| b.fsync.max_ms),
            true,
            "",
        )?;
        row(
            f,
            "sequential write + fdatasync (MB/s)",
            t.sequential_write_mb_per_s,
            b.map(|b| b.sequential_write_mb_per_s),
            false,
            "",
        )?;
        let sqlite_ok = t.sqlite_durable_commits_per_s >= self.target_sqlite_commits_per_s;
        row(
            f,
            "SQLite durable commits, 1 row (/s)",
            t.sqlite_durable_commits_per_s,
            b.map(|b| b.sqlite_durable_commits_per_s),
            false,
            &format!(
                ">= {}/s  {}",
                self.target_sqlite_commits_per_s,
                verdict(sqlite_ok)
            ),
        )?;
        writeln!(f)?;
        write!(
            f,
            "  ratio = how many times slower than RAM. One durable commit costs about one fsync;\n  the hub groups writes, so a site needs far fewer commits than movements."
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quick_run_measures_both_folders_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let base = tempfile::tempdir().unwrap();
        let options = DiskBenchOptions {
            fsyncs: 5,
            sequential_bytes: 1 << 20,
            sqlite_seconds: 0.1,
            baseline_dir: base.path().to_owned(),
        };
        let report = run(dir.path(), &options).unwrap();
        assert_eq!(report.target.fsync.samples, 5);
        assert!(report.target.sequential_write_mb_per_s > 0.0);
        assert!(report.target.sqlite_durable_commits_per_s > 0.0);
        assert!(report.baseline.is_some());
        let text = report.to_string();
        assert!(text.contains("SQLite durable commits"), "{text}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(base.path()).unwrap().count(), 0);
    }
}

//! `hub bench …`: the benchmarks, each printed next to its baseline, with JSON figures and
//! the exit code saying whether the targets were met.

use super::vision::find_upwards;
use super::*;

#[derive(Debug, Subcommand)]
pub(super) enum BenchCommand {
    /// Storage under the data directory: fsync latency, sequential writes, SQLite durable
    /// commits, each against a RAM baseline (/dev/shm) measured in the same run.
    Disk {
        /// Folder to measure (default: the config's data directory, else the current folder).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Take the data directory from this config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Also write the figures as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Number of 1 KiB append + fdatasync samples.
        #[arg(long, default_value_t = 200)]
        fsyncs: usize,
        /// MiB written in the sequential phase.
        #[arg(long, default_value_t = 64)]
        sequential_mib: u64,
        /// Seconds of SQLite commits.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// RAM folder for the baseline.
        #[arg(long, default_value = "/dev/shm")]
        baseline_dir: PathBuf,
    },
    /// The ledger vs raw SQLite writing the same rows: one by one, and grouped in the same
    /// batch sizes; on slow-fsync storage also what group commit buys.
    Ledger {
        /// Folder to measure (default: the config's data directory, else the current folder).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Take the data directory from this config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Also write the figures as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Seconds per phase and round.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Concurrent requesters in the grouped phase.
        #[arg(long, default_value_t = 256)]
        requesters: usize,
        /// Rounds of every phase; the report gives medians.
        #[arg(long, default_value_t = 3)]
        repetitions: usize,
    },
    /// Uplink throughput against a local Mosquitto: raw rumqttc vs outbox drain.
    Sync {
        /// Also write the figures as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Backlog size to drain.
        #[arg(long, default_value_t = 100_000)]
        events: usize,
        /// In-flight window for both phases.
        #[arg(long, default_value_t = 100)]
        in_flight: usize,
    },
    /// Photo checks: hub (decode, pre-process, ONNX Runtime) vs a Python Pillow + numpy +
    /// onnxruntime pipeline, plus tract inference in a child process.
    Vision {
        /// Also write the figures as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Timed repetitions per case.
        #[arg(long, default_value_t = 15)]
        reps: usize,
        /// Skip the Python baseline (offline); targets are then not judged.
        #[arg(long)]
        skip_python: bool,
        /// Folder with orange.jpg and fruits.jpg (default: hub/vision/testdata/images of the
        /// checkout).
        #[arg(long)]
        images: Option<PathBuf>,
        /// Model manifest (default: the shipped model).
        #[arg(long)]
        model_manifest: Option<PathBuf>,
    },
    /// Parsing throughput of scanner and scale streams vs the 115200-baud line rate.
    Devices {
        /// Also write the figures as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Seconds per stream.
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
    },
}

pub(super) fn bench_vision(
    json: Option<PathBuf>,
    reps: usize,
    skip_python: bool,
    images: Option<PathBuf>,
    model_manifest: Option<PathBuf>,
) -> Result<i32, Failure> {
    let images = images
        .or_else(|| find_upwards("hub/vision/testdata/images"))
        .ok_or_else(|| Failure {
            code: EXIT_INVALID,
            error: anyhow::anyhow!(
                "no test images found (hub/vision/testdata/images of a checkout); give --images DIR with orange.jpg and fruits.jpg"
            ),
        })?;
    let manifest = match model_manifest {
        Some(m) => m,
        None => crate::vision::default_manifest(None).map_err(|tried| {
            anyhow::Error::from(crate::vision::VisionStartError::NoManifest { tried })
        })?,
    };
    let mut opts = hub_vision::VisionBenchOptions::new(manifest, images);
    opts.reps = reps.max(1);
    opts.skip_python = skip_python;
    opts.tract_child = Some(hub_vision::TractChildCommand {
        program: std::env::current_exe()?,
        args: vec!["__vision-tract-bench".into()],
    });
    let report =
        hub_vision::run_vision_bench(&opts).map_err(|e| anyhow::anyhow!("vision bench: {e}"))?;
    let met = match report.targets_met {
        Some(met) => met.iter().all(|m| *m),
        None => {
            eprintln!("targets not judged: the Python baseline did not run");
            true
        }
    };
    finish_bench(&report, json, met)
}

/// The folder a storage bench works in (created if missing): `--data-dir`, else the config's
/// data folder, else the current folder.
pub(super) fn bench_dir(
    data_dir: Option<PathBuf>,
    config: Option<PathBuf>,
) -> Result<PathBuf, Failure> {
    let dir = match (data_dir, config) {
        (Some(dir), _) => dir,
        (None, Some(config)) => Config::load(&config)?.store.data_dir,
        (None, None) => std::env::current_dir()?,
    };
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Prints a bench report, writes its figures as JSON when asked, and turns whether it met its
/// targets into the exit code.
pub(super) fn finish_bench(
    report: &(impl std::fmt::Display + serde::Serialize),
    json: Option<PathBuf>,
    met: bool,
) -> Result<i32, Failure> {
    println!("{}", report.to_string().trim_end());
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(report)?)?;
        println!("figures written to {}", path.display());
    }
    Ok(if met { EXIT_OK } else { EXIT_BELOW_TARGET })
}

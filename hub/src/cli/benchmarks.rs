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
    /// The manager's dashboard over 30 generated days of a busy site (5,000 orders a day),
    /// timed beside the raw SQL queries reading the same rows in the same run; goal ≤ 500 ms.
    /// Exit 1 when the baseline cannot be measured, 4 when the goal is missed.
    Dashboard {
        /// Folder for the generated store (default: the config's data directory, else the
        /// current folder); removed afterwards.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Take the data directory from this config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Also write the figures as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Pickup orders a day.
        #[arg(long, default_value_t = 5_000)]
        orders_per_day: i64,
        /// Days generated and shown.
        #[arg(long, default_value_t = 30)]
        days: i64,
        /// Timed rounds; the report gives medians.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// A compressed peak day at the station app through a real `hub run` (HTTP API and live
    /// channel, MQTT scanners, uplink on a local Mosquitto): scan-to-screen and handover p50/p99
    /// beside the same workflow called directly, bytes written per handover, the pickup page's
    /// size, the receiving bench's scan-to-screen while 12 MP photos are checked, and the
    /// dashboard. Exit 1 when a baseline cannot be measured, 4 when a goal is missed.
    Stations {
        /// Folder for the scratch stores (default: the config's data directory, else the
        /// current folder); removed afterwards.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Take the data directory from this config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Also write the figures as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Pickup orders scanned and handed over.
        #[arg(long, default_value_t = 5_000)]
        orders: usize,
        /// Scans at the receiving bench while photos are checked.
        #[arg(long, default_value_t = 300)]
        receiving_scans: usize,
        /// Dashboard: pickup orders a day.
        #[arg(long, default_value_t = 5_000)]
        dashboard_orders_per_day: i64,
        /// Dashboard: days generated and shown.
        #[arg(long, default_value_t = 30)]
        dashboard_days: i64,
        /// Dashboard: timed rounds (medians).
        #[arg(long, default_value_t = 3)]
        dashboard_rounds: usize,
        /// Folder with fruits.jpg, the source of the 12 MP photo (default:
        /// hub/vision/testdata/images of the checkout).
        #[arg(long)]
        images: Option<PathBuf>,
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
    /// Photo checks, each side timed from the file on disk: hub (read, decode, pre-process,
    /// ONNX Runtime) vs the Python pipeline a user would write (Pillow with draft(), numpy,
    /// onnxruntime) on 1080p and 12 MP camera-like JPEGs, plus tract inference in a child
    /// process. The Python side runs in a venv created once from PyPI in the cache folder.
    /// Exit 0: targets met; 4: a target missed; 1: the baseline could not be measured.
    Vision {
        /// Also write the figures as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Timed repetitions per case.
        #[arg(long, default_value_t = 15)]
        reps: usize,
        /// Measure the hub only. The targets are then not judged and the command exits 1
        /// ("baseline not measured").
        #[arg(long)]
        skip_python: bool,
        /// Python interpreter for the baseline, with pillow, numpy and onnxruntime==1.31.1
        /// installed (default: a venv in the cache folder, created on first use).
        #[arg(long, conflicts_with = "skip_python")]
        python: Option<PathBuf>,
        /// Cache folder for the baseline's venv (default: $XDG_CACHE_HOME/hub or ~/.cache/hub).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
        /// Folder with orange.jpg and fruits.jpg (default: hub/vision/testdata/images of the
        /// checkout).
        #[arg(long)]
        images: Option<PathBuf>,
        /// Model manifest (default: the shipped model).
        #[arg(long)]
        model_manifest: Option<PathBuf>,
    },
    /// The demand forecast on a generated site: WAPE vs seasonal naive and vs Python's
    /// statsforecast AutoETS (from PyPI, in a venv in the cache folder), the refit time of 500
    /// SKUs, and the simulated site under the forecast, trailing-average and oracle policies.
    /// Exit 0: goals met; 4: a goal missed; 1: the baseline could not be measured.
    Forecast {
        /// Also write the figures as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Seed of the generated site.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        /// SKUs of the evaluated site.
        #[arg(long, default_value_t = 60)]
        skus: usize,
        /// Days of history.
        #[arg(long, default_value_t = 180)]
        days: usize,
        /// SKUs of the refit timing.
        #[arg(long, default_value_t = 500)]
        refit_skus: usize,
        /// Measure the hub only (the goals are then not judged: exit 1).
        #[arg(long)]
        skip_python: bool,
        /// Python interpreter with statsforecast installed (default: a venv in the cache
        /// folder, created on first use from hub/forecast/bench/requirements.txt).
        #[arg(long, conflicts_with = "skip_python")]
        python: Option<PathBuf>,
        /// Cache folder for the baseline's venv (default: $XDG_CACHE_HOME/hub or ~/.cache/hub).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
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

/// The arguments of `hub bench vision`.
pub(super) struct VisionBenchArgs {
    pub(super) json: Option<PathBuf>,
    pub(super) reps: usize,
    pub(super) skip_python: bool,
    pub(super) python: Option<PathBuf>,
    pub(super) cache_dir: Option<PathBuf>,
    pub(super) images: Option<PathBuf>,
    pub(super) model_manifest: Option<PathBuf>,
}

pub(super) fn bench_vision(args: VisionBenchArgs) -> Result<Exit, Failure> {
    let images = args
        .images
        .or_else(|| find_upwards("hub/vision/testdata/images"))
        .ok_or_else(|| Failure {
            code: Exit::Invalid,
            error: anyhow::anyhow!(
                "no test images found (hub/vision/testdata/images of a checkout); give --images DIR with orange.jpg and fruits.jpg"
            ),
        })?;
    let manifest = match args.model_manifest {
        Some(m) => m,
        None => crate::vision::default_manifest(None).map_err(|tried| {
            anyhow::Error::from(crate::vision::VisionStartError::NoManifest { tried })
        })?,
    };
    // The baseline's interpreter: given, or a venv made here (never by the library).
    let (python, not_measured) = if args.skip_python {
        (None, Some("skipped with --skip-python".to_owned()))
    } else if let Some(python) = args.python {
        (Some(python), None)
    } else {
        let cache = args
            .cache_dir
            .unwrap_or_else(crate::tools::bench::python::default_cache_dir);
        let packages = hub_vision::bench::PY_PACKAGES;
        let venv = crate::tools::bench::python::venv_dir(&cache, &packages);
        if !venv.exists() {
            eprintln!(
                "setting up the Python baseline in {} (pip install {}; first run only)",
                venv.display(),
                packages.join(" ")
            );
        }
        match crate::tools::bench::python::ensure_venv(&cache, &packages) {
            Ok(python) => (Some(python), None),
            Err(e) => (None, Some(format!("cannot set up the Python venv: {e}"))),
        }
    };
    let mut opts = hub_vision::VisionBenchOptions::new(manifest, images);
    opts.reps = args.reps.max(1);
    opts.python = python;
    opts.tract_child = Some(hub_vision::TractChildCommand {
        program: std::env::current_exe()?,
        args: vec!["__vision-tract-bench".into()],
    });
    let mut report =
        hub_vision::run_vision_bench(&opts).map_err(|e| anyhow::anyhow!("vision bench: {e}"))?;
    if not_measured.is_some() {
        report.baseline_error = not_measured;
    }
    let code = finish_bench(&report, args.json, report.meets_targets() == Some(true))?;
    match (&report.baseline_error, report.meets_targets()) {
        (None, Some(_)) => Ok(code),
        (reason, _) => Err(Failure {
            code: Exit::Failed,
            error: anyhow::anyhow!(
                "baseline not measured ({}): the targets were not judged, so this run is not a pass",
                reason.as_deref().unwrap_or("no figures")
            ),
        }),
    }
}

/// `hub bench forecast`.
pub(super) fn bench_forecast(
    json: Option<PathBuf>,
    options: crate::tools::bench::forecast::ForecastBenchOptions,
) -> Result<Exit, Failure> {
    if options.skus == 0 || options.refit_skus == 0 || options.days < 70 {
        return Err(Failure {
            code: Exit::Invalid,
            error: anyhow::anyhow!(
                "--skus and --refit-skus must be at least 1 and --days at least 70 (8 weeks of hold-out and some history); got {}, {}, {}",
                options.skus,
                options.refit_skus,
                options.days
            ),
        });
    }
    let report = crate::tools::bench::forecast::run(&options)?;
    let code = finish_bench(&report, json, report.meets_targets())?;
    match &report.baseline_error {
        None => Ok(code),
        Some(reason) => Err(Failure {
            code: Exit::Failed,
            error: anyhow::anyhow!(
                "baseline not measured ({reason}): the goals were not judged, so this run is not a pass"
            ),
        }),
    }
}

/// The Python interpreter of the forecast bench's baseline, or why there is none.
pub(super) fn forecast_python(
    skip: bool,
    python: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
) -> Result<PathBuf, crate::tools::bench::forecast::NoBaseline> {
    use crate::tools::bench::forecast::NoBaseline;
    if skip {
        return Err(NoBaseline::Skipped);
    }
    if let Some(python) = python {
        return Ok(python);
    }
    let cache = cache_dir.unwrap_or_else(crate::tools::bench::python::default_cache_dir);
    let packages = crate::tools::bench::forecast::python_packages();
    let venv = crate::tools::bench::python::venv_dir(&cache, &packages);
    if !venv.exists() {
        eprintln!(
            "setting up the Python baseline in {} (pip install {}; first run only)",
            venv.display(),
            packages.join(" ")
        );
    }
    crate::tools::bench::python::ensure_venv(&cache, &packages)
        .map_err(|e| NoBaseline::Venv(e.to_string()))
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
) -> Result<Exit, Failure> {
    println!("{}", report.to_string().trim_end());
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(report)?)?;
        println!("figures written to {}", path.display());
    }
    Ok(if met { Exit::Ok } else { Exit::BelowTarget })
}

pub(super) fn bench_command(
    command: BenchCommand,
    log: Option<LogFormatArg>,
) -> Result<Exit, Failure> {
    match command {
        BenchCommand::Disk {
            data_dir,
            config,
            json,
            fsyncs,
            sequential_mib,
            seconds,
            baseline_dir,
        } => {
            let dir = bench_dir(data_dir, config)?;
            let options = bench::disk::DiskBenchOptions {
                fsyncs: fsyncs.max(1),
                sequential_bytes: sequential_mib.max(1) << 20,
                sqlite_seconds: seconds,
                baseline_dir,
            };
            let report = bench::disk::run(&dir, &options)?;
            finish_bench(&report, json, report.meets_targets())
        }
        BenchCommand::Ledger {
            data_dir,
            config,
            json,
            seconds,
            requesters,
            repetitions,
        } => {
            let dir = bench_dir(data_dir, config)?;
            let report = bench::ledger::run(&dir, seconds, requesters.max(1), repetitions)?;
            finish_bench(&report, json, report.meets_targets())
        }
        BenchCommand::Vision {
            json,
            reps,
            skip_python,
            python,
            cache_dir,
            images,
            model_manifest,
        } => {
            telemetry::init("warn", log_format(log, None));
            bench_vision(VisionBenchArgs {
                json,
                reps,
                skip_python,
                python,
                cache_dir,
                images,
                model_manifest,
            })
        }
        BenchCommand::Forecast {
            json,
            seed,
            skus,
            days,
            refit_skus,
            skip_python,
            python,
            cache_dir,
        } => {
            telemetry::init("error", log_format(log, None));
            let python = forecast_python(skip_python, python, cache_dir);
            bench_forecast(
                json,
                crate::tools::bench::forecast::ForecastBenchOptions {
                    seed,
                    skus,
                    days,
                    refit_skus,
                    python,
                },
            )
        }
        BenchCommand::Devices { json, seconds } => {
            let report = bench::devices::run(seconds.clamp(0.05, 60.0));
            finish_bench(&report, json, report.meets_targets())
        }
        BenchCommand::Dashboard {
            data_dir,
            config,
            json,
            orders_per_day,
            days,
            rounds,
        } => {
            telemetry::init("error", log_format(log, None));
            let dir = bench_dir(data_dir, config)?;
            let options = bench::dashboard::DashboardBenchOptions {
                orders_per_day,
                days,
                rounds,
            };
            let report = bench::dashboard::run(&dir, &options)?;
            finish_bench(&report, json, report.meets_targets())
        }
        BenchCommand::Stations {
            data_dir,
            config,
            json,
            orders,
            receiving_scans,
            dashboard_orders_per_day,
            dashboard_days,
            dashboard_rounds,
            images,
        } => {
            telemetry::init("error", log_format(log, None));
            let dir = bench_dir(data_dir, config)?;
            let images = images
                .or_else(|| find_upwards("hub/vision/testdata/images"))
                .ok_or_else(|| Failure {
                    code: Exit::Invalid,
                    error: anyhow::anyhow!(
                        "no test images found (hub/vision/testdata/images of a checkout); give --images DIR with fruits.jpg"
                    ),
                })?;
            let options = bench::stations::StationsBenchOptions {
                orders,
                receiving_scans,
                dashboard_orders_per_day,
                dashboard_days,
                dashboard_rounds,
                images,
            };
            let report = bench::stations::run(&dir, &options)?;
            let code = finish_bench(&report, json, report.meets_targets())?;
            match report.baseline_missing() {
                None => Ok(code),
                Some(reason) => Err(Failure {
                    code: Exit::Failed,
                    error: anyhow::anyhow!(
                        "baseline not measured ({reason}): the goals were not judged, so this run is not a pass"
                    ),
                }),
            }
        }
        BenchCommand::Sync {
            json,
            events,
            in_flight,
        } => {
            telemetry::init("error", log_format(log, None));
            let report = runtime()?.block_on(bench::sync::run(events.max(1), in_flight.max(1)))?;
            finish_bench(&report, json, report.meets_targets())
        }
    }
}

//! Command-line interface: argument parsing, dispatch, and the one exit-code policy. The
//! bigger command groups live in submodules (`pickup`, `receive`, `devices`, `vision`,
//! `benchmarks`); this module keeps the argument tree, the dispatch and the shared helpers.
//!
//! Exit codes: 0 success; 1 the command failed (message on stderr); 2 bad usage or an invalid
//! configuration; 3 the ledger or the database file does not verify; 4 a benchmark ran but
//! missed its targets.

use crate::config::{Config, LogFormat};
use crate::store::ledger;
use crate::tools::{bench, demo};
use crate::workflows::Site;
use crate::{daemon, telemetry};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

mod benchmarks;
mod devices;
mod pickup;
mod receive;
mod vision;

use benchmarks::{BenchCommand, bench_dir, bench_vision, finish_bench};
use devices::{SimCommand, devices_command, sim_command};
use pickup::{PickupCommand, pickup_command};
use receive::{ReceiveCommand, receive_command};
use vision::{CheckImageArgs, check_image, start_vision_if_enabled};

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_INVALID: i32 = 2;
pub const EXIT_LEDGER_MISMATCH: i32 = 3;
pub const EXIT_BELOW_TARGET: i32 = 4;
pub const EXIT_REFUSED: i32 = 5;

#[derive(Debug, Parser)]
#[command(
    name = "hub",
    version,
    about = "Edge hub for community front warehouses and pickup points"
)]
pub struct Cli {
    /// Log output format (overrides the config file's log.format).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// Replay this site's journal (its config file); without it a generated site is replayed.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Seed of the generated site.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// SKUs of the generated site.
    #[arg(long, default_value_t = 60)]
    skus: usize,
    /// Days of the generated history.
    #[arg(long, default_value_t = 180)]
    days: usize,
    /// TOML file with any of the settings below (snake_case keys, `[shelf_life_days]` table,
    /// `policies` list); flags override it.
    #[arg(long)]
    settings: Option<PathBuf>,
    /// Days simulated at the end of the history (default 56).
    #[arg(long, allow_negative_numbers = true)]
    sim_days: Option<i64>,
    /// Mornings between an evening order and its delivery (default 1).
    #[arg(long, allow_negative_numbers = true)]
    lead_time_days: Option<i64>,
    /// Days between reviews of the forecast policy (default 1).
    #[arg(long, allow_negative_numbers = true)]
    review_days: Option<i64>,
    /// Service target of the forecast policy (default 0.97).
    #[arg(long, allow_negative_numbers = true)]
    service_target: Option<f64>,
    /// Trailing policy's tier thresholds in days of cover (default 3 / 2 / 1).
    #[arg(long, allow_negative_numbers = true)]
    yellow: Option<f64>,
    #[arg(long, allow_negative_numbers = true)]
    orange: Option<f64>,
    #[arg(long, allow_negative_numbers = true)]
    red: Option<f64>,
    #[arg(long, allow_negative_numbers = true)]
    hysteresis: Option<f64>,
    /// Trailing policy's days of cover requested (default 5).
    #[arg(long, allow_negative_numbers = true)]
    target_days: Option<f64>,
    /// `orange` or `red` (default red).
    #[arg(long)]
    replenish_at: Option<String>,
    /// Trailing average window in days (default 7).
    #[arg(long, allow_negative_numbers = true)]
    window_days: Option<i64>,
    /// Shelf life of a category, CATEGORY=DAYS (repeatable), e.g. fresh=3.
    #[arg(long = "shelf-life", allow_hyphen_values = true)]
    shelf_life: Vec<String>,
    /// Policies, comma-separated: trailing_average, forecast, oracle (default all).
    #[arg(long, value_delimiter = ',')]
    policies: Option<Vec<String>>,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
    /// Also write an SVG chart to this file.
    #[arg(long)]
    svg: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ConfigArg {
    /// Site configuration file.
    #[arg(long, short, env = "HUB_CONFIG", default_value = "/etc/hub/hub.toml")]
    config: PathBuf,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant, reason = "parsed once per process")]
enum Command {
    /// Run the hub daemon until SIGINT or SIGTERM.
    Run {
        #[command(flatten)]
        config: ConfigArg,
        /// Start a new, empty database on purpose where the site's stream marker says one
        /// existed (the database is missing or empty); its events get a new stream. Without
        /// it the hub refuses to start then. Ignored when the database exists.
        #[arg(long)]
        new_database: bool,
    },
    /// Check a configuration file and list every problem in it.
    CheckConfig {
        file: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// Check the file alone, not the TLS/credential files and serial devices it names
        /// (for a config written on another machine).
        #[arg(long)]
        syntax_only: bool,
    },
    /// Show stock balances per SKU and batch.
    Stock {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
    /// Stock ledger maintenance.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Run a built-in scenario on a temporary site, with no external service.
    Demo {
        /// Keep the demo hub running until Ctrl-C.
        #[arg(long)]
        keep_running: bool,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        /// With --keep-running: where to serve the status page (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        status_listen: std::net::SocketAddr,
        /// Token the status page requires (needed when --status-listen is not loopback).
        #[arg(long, env = "HUB_STATUS_TOKEN", hide_env_values = true)]
        status_token: Option<String>,
    },
    /// Measure this box: is its storage fast enough for a site?
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Pickup point: check a customer's code, hand an order over.
    Pickup {
        #[command(subcommand)]
        command: PickupCommand,
    },
    /// SKU master data.
    Sku {
        #[command(subcommand)]
        command: SkuCommand,
    },
    /// Receiving deliveries: manifests, scans, weights, decisions, quarantine.
    Receive {
        #[command(subcommand)]
        command: ReceiveCommand,
    },
    /// Trace an item by its code, or a whole batch, from supplier to customer.
    Trace {
        #[command(flatten)]
        config: ConfigArg,
        /// The item's trace code (as scanned, or its canonical form).
        code: Option<String>,
        /// Trace every item of this lot instead.
        #[arg(long, conflicts_with = "code")]
        batch: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Open alerts (stock tiers, expiry, lockouts, backlog), worst first.
    Alerts {
        #[command(flatten)]
        config: ConfigArg,
        /// Run the periodic checks once before listing.
        #[arg(long)]
        check: bool,
        #[arg(long)]
        json: bool,
    },
    /// Operations report: stock-out rate, turnover, loss rate, acceptance, handovers.
    Report {
        #[command(flatten)]
        config: ConfigArg,
        /// First day (YYYY-MM-DD, the site's calendar: `site.timezone`); default 7 days
        /// before --to.
        #[arg(long)]
        from: Option<chrono::NaiveDate>,
        /// Day after the last day (YYYY-MM-DD, the site's calendar); default tomorrow.
        #[arg(long)]
        to: Option<chrono::NaiveDate>,
        #[arg(long)]
        json: bool,
    },
    /// What-if simulator: replay the site's own journal (`--config`) or a generated site day by
    /// day under several replenishment policies side by side (today's trailing-average tiers,
    /// the forecast policy, the perfect-foresight oracle). Exit 2 on bad settings.
    Simulate(SimulateArgs),
    /// Upstream sync tools.
    Sync {
        #[command(subcommand)]
        command: SyncCommand,
    },
    /// Device health and counters, and the latest journaled scans and weights.
    Devices {
        #[command(flatten)]
        config: ConfigArg,
        /// How many journal rows to show, newest first.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Run a simulated scale or scanner on a pseudo-terminal (commands on stdin).
    Sim {
        #[command(subcommand)]
        command: SimCommand,
    },
    /// Check one photo against a SKU's acceptance rule and print the evidence record.
    ///
    /// Exit 0 when the photo passes, 5 when it fails or needs review.
    CheckImage {
        /// The photo (JPEG or PNG).
        file: PathBuf,
        /// The SKU the photo should show.
        #[arg(long)]
        sku: String,
        /// Site config: its [vision] backend, model and the rule for --sku (optional).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Expected classes, ids or label names, comma-separated (e.g. 950,951), instead of the
        /// config's rule.
        #[arg(long, value_delimiter = ',')]
        expect: Vec<String>,
        /// With --expect: minimum combined probability of the expected classes in the top 5.
        #[arg(long, default_value_t = 0.2)]
        min_probability: f32,
        /// With --expect: the model alone may reject (fail instead of needs review).
        #[arg(long)]
        allow_model_reject: bool,
        #[arg(long)]
        json: bool,
    },
    /// The tract measurement of `hub bench vision`, run in a child process.
    #[command(name = "__vision-tract-bench", hide = true)]
    VisionTractBench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
    /// Developer tools used by the test suite.
    #[command(hide = true)]
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
}

#[derive(Debug, Subcommand)]
enum SkuCommand {
    /// Load SKU master data from a JSON file (an array), as central would send it.
    Import {
        #[command(flatten)]
        config: ConfigArg,
        file: PathBuf,
    },
    /// List SKU master data.
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SyncCommand {
    /// Connect to the configured broker once (address, TLS, credentials) and report.
    Check(ConfigArg),
}

#[derive(Debug, Subcommand)]
enum LedgerCommand {
    /// Recompute every balance from the journal; exit 3 on any mismatch.
    Verify {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum DevCommand {
    /// Receive deliveries in a loop, printing each durable decision.
    ReceiveLoop {
        #[arg(long)]
        db: PathBuf,
        #[arg(long)]
        prefix: String,
        #[arg(long, default_value_t = u64::MAX)]
        limit: u64,
    },
    /// Apply movements in a loop, printing each durable acknowledgement.
    ApplyLoop {
        #[arg(long)]
        db: PathBuf,
        #[arg(long)]
        prefix: String,
        #[arg(long, default_value_t = 4)]
        threads: usize,
        #[arg(long, default_value_t = u64::MAX)]
        limit: u64,
    },
}

/// A failure with the exit code it maps to.
struct Failure {
    code: i32,
    error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        let error = error.into();
        let code = if error.downcast_ref::<crate::config::ConfigError>().is_some() {
            EXIT_INVALID
        } else {
            EXIT_FAILED
        };
        Failure { code, error }
    }
}

/// Parses arguments, runs the command and returns the process exit code.
pub fn main() -> i32 {
    hub_mqtt::install_crypto_provider();
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(Failure { code, error }) => {
            eprintln!("error: {error:#}");
            code
        }
    }
}

fn log_format(cli: Option<LogFormatArg>, config: Option<&Config>) -> LogFormat {
    match cli {
        Some(LogFormatArg::Json) => LogFormat::Json,
        Some(LogFormatArg::Text) => LogFormat::Text,
        None => config.map(|c| c.log.format).unwrap_or(LogFormat::Text),
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn dispatch(cli: Cli) -> Result<i32, Failure> {
    match cli.command {
        Command::Run {
            config: args,
            new_database,
        } => {
            let config = Config::load(&args.config)?;
            telemetry::init(&config.log.level, log_format(cli.log_format, Some(&config)));
            // Stop signals are caught before anything that takes time: one that arrives while
            // the model loads or the store migrates stops the daemon cleanly once it is up.
            let rt = runtime()?;
            let stop = rt.block_on(async { daemon::StopSignal::install() })?;
            tracing::info!(site = %config.site.id, "starting; stop signals are handled from now on");
            // The inference backend is chosen first, before anything else could touch it.
            let vision = start_vision_if_enabled(&config.vision)?.map(std::sync::Arc::new);
            let store = crate::incarnation::open_store(&config, new_database, crate::clock::now())?;
            daemon::check_database(&store)?;
            crate::storage::log_startup_check(&config.store.data_dir, config.store.disk);
            rt.block_on(async {
                let shutdown = CancellationToken::new();
                let trigger = shutdown.clone();
                tokio::spawn(async move {
                    stop.wait().await;
                    trigger.cancel();
                });
                let board = crate::status::StatusBoard::new();
                daemon::run_with_vision(config, store, board, vision, shutdown, |_| {}).await
            })?;
            Ok(EXIT_OK)
        }
        Command::CheckConfig {
            file,
            json,
            syntax_only,
        } => match Config::load(&file) {
            Ok(config) => {
                let machine = if syntax_only {
                    crate::config::MachineCheck::default()
                } else {
                    config.check_machine()
                };
                let listed = |list: &[crate::config::Problem]| -> Vec<serde_json::Value> {
                    list.iter()
                        .map(|p| serde_json::json!({"path": p.path, "message": p.message}))
                        .collect()
                };
                let valid = machine.problems.is_empty();
                if json {
                    print_json(&serde_json::json!({
                        "file": file,
                        "valid": valid,
                        "problems": listed(&machine.problems),
                        "warnings": listed(&machine.warnings),
                    }))?;
                } else {
                    for w in &machine.warnings {
                        eprintln!("warning: {w}");
                    }
                    if valid {
                        println!(
                            "{}: valid (site {}, database {})",
                            file.display(),
                            config.site.id,
                            config.database_path().display()
                        );
                    } else {
                        eprintln!(
                            "{}: {} problem(s) on this machine",
                            file.display(),
                            machine.problems.len()
                        );
                        for p in &machine.problems {
                            eprintln!("  - {p}");
                        }
                    }
                }
                Ok(if valid { EXIT_OK } else { EXIT_INVALID })
            }
            Err(crate::config::ConfigError::Invalid { path, problems }) => {
                if json {
                    let list: Vec<_> = problems
                        .iter()
                        .map(|p| serde_json::json!({"path": p.path, "message": p.message}))
                        .collect();
                    print_json(&serde_json::json!(
                        {"file": path, "valid": false, "problems": list, "warnings": []}
                    ))?;
                } else {
                    eprintln!("{}: {} problem(s)", path.display(), problems.len());
                    for p in &problems {
                        eprintln!("  - {p}");
                    }
                }
                Ok(EXIT_INVALID)
            }
            Err(e) => Err(Failure {
                code: EXIT_INVALID,
                error: e.into(),
            }),
        },
        Command::Stock { config, json } => {
            let config = Config::load(&config.config)?;
            telemetry::init(&config.log.level, log_format(cli.log_format, Some(&config)));
            let store = daemon::open_store(&config)?;
            let stock = store.read_blocking(ledger::balances)?;
            if json {
                print_json(&stock)?;
            } else {
                print!("{}", crate::cli_output::StockTable(&stock));
            }
            store.close();
            Ok(EXIT_OK)
        }
        Command::Ledger {
            command: LedgerCommand::Verify { config, json },
        } => {
            let config = Config::load(&config.config)?;
            telemetry::init(&config.log.level, log_format(cli.log_format, Some(&config)));
            // A file too damaged to open is a verification failure too, not a generic one.
            let store = daemon::open_store(&config).map_err(|e| match e {
                crate::incarnation::IncarnationError::Store(
                    e @ (crate::store::StoreError::Corrupt { .. }
                    | crate::store::StoreError::NotADatabase { .. }),
                ) => Failure {
                    code: EXIT_LEDGER_MISMATCH,
                    error: e.into(),
                },
                e => Failure::from(e),
            })?;
            let report = store.read_blocking(ledger::verify_file)?;
            store.close();
            if json {
                print_json(&report)?;
            } else if report.ok() {
                println!(
                    "ledger ok: {} movements, {} SKU balances, {} batch balances, {} outbox events — all match; database file sound",
                    report.movements,
                    report.skus_checked,
                    report.batches_checked,
                    report.outbox_events
                );
            } else {
                if !report.integrity.is_empty() {
                    eprintln!(
                        "database file DAMAGED ({} problem(s) from SQLite's integrity check):",
                        report.integrity.len()
                    );
                    for p in &report.integrity {
                        eprintln!("  - {p}");
                    }
                    eprintln!("what to do: {}", crate::store::RESTORE_HINT);
                }
                if !report.problems.is_empty() {
                    eprintln!("ledger MISMATCH ({} problem(s)):", report.problems.len());
                    for p in &report.problems {
                        eprintln!("  - {p}");
                    }
                }
            }
            Ok(if report.ok() {
                EXIT_OK
            } else {
                EXIT_LEDGER_MISMATCH
            })
        }
        Command::Demo {
            keep_running,
            json,
            status_listen,
            status_token,
        } => {
            telemetry::init("error,rumqttd=off", log_format(cli.log_format, None));
            let status_token = status_token.filter(|t| !t.is_empty());
            if keep_running {
                if let Some(token) = &status_token {
                    crate::config::check_status_token(token).map_err(|m| Failure {
                        code: EXIT_INVALID,
                        error: anyhow::anyhow!("--status-token {m}"),
                    })?;
                } else if !status_listen.ip().is_loopback() {
                    return Err(Failure {
                        code: EXIT_INVALID,
                        error: anyhow::anyhow!(
                            "--status-listen {status_listen} is not a loopback address; give --status-token (or HUB_STATUS_TOKEN) too"
                        ),
                    });
                }
            }
            let dir = tempfile::Builder::new().prefix("hub-demo-").tempdir()?;
            let mut config = demo::demo_config(dir.path())?;
            config.status.listen = status_listen;
            config.status.token = status_token;
            let vision = start_vision_if_enabled(&config.vision)?.map(std::sync::Arc::new);
            let store = daemon::open_store(&config)?;
            let rt = runtime()?;
            let now = crate::clock::now();
            let mut summary = rt.block_on(demo::play(
                &store,
                config.site.id.as_str(),
                config.site.timezone,
                now,
            ))?;
            let device_steps = rt.block_on(crate::tools::demo_devices::receive_and_hand_over(
                &store,
                &config,
                vision.clone(),
                now,
            ))?;
            summary.steps.extend(device_steps);
            summary.stock = store.read_blocking(crate::store::ledger::balances)?;
            summary.verify = store.read_blocking(crate::store::ledger::verify)?;
            summary.central =
                Some(rt.block_on(demo::sync_to_embedded_central(&store, &config, dir.path()))?);
            summary.outbox = store.read_blocking(crate::store::outbox::stats)?;
            if json {
                print_json(&summary)?;
            } else {
                print!("{summary}");
            }
            if keep_running {
                let board = demo::demo_board(&summary, now);
                let data_dir = dir.path().display().to_string();
                rt.block_on(async {
                    let shutdown = CancellationToken::new();
                    let trigger = shutdown.clone();
                    tokio::spawn(async move {
                        daemon::stop_signal().await;
                        trigger.cancel();
                    });
                    daemon::run_with_vision(
                        config,
                        store.clone(),
                        board,
                        vision,
                        shutdown,
                        |started| {
                            if let Some(url) = &started.status_url {
                                eprintln!("status page: {url}");
                            }
                            eprintln!("demo hub keeps running on {data_dir}; press Ctrl-C to stop");
                        },
                    )
                    .await
                })?;
            } else {
                store.close();
                if let Some(v) = vision.and_then(|v| std::sync::Arc::try_unwrap(v).ok()) {
                    v.stop();
                }
            }
            Ok(if summary.verify.ok() {
                EXIT_OK
            } else {
                EXIT_LEDGER_MISMATCH
            })
        }
        Command::Bench {
            command:
                BenchCommand::Disk {
                    data_dir,
                    config,
                    json,
                    fsyncs,
                    sequential_mib,
                    seconds,
                    baseline_dir,
                },
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
        Command::Bench {
            command:
                BenchCommand::Ledger {
                    data_dir,
                    config,
                    json,
                    seconds,
                    requesters,
                    repetitions,
                },
        } => {
            let dir = bench_dir(data_dir, config)?;
            let report = bench::ledger::run(&dir, seconds, requesters.max(1), repetitions)?;
            finish_bench(&report, json, report.meets_targets())
        }
        Command::CheckImage {
            file,
            sku,
            config,
            expect,
            min_probability,
            allow_model_reject,
            json,
        } => check_image(
            CheckImageArgs {
                file,
                sku,
                config,
                expect,
                min_probability,
                allow_model_reject,
                json,
            },
            cli.log_format,
        ),
        Command::VisionTractBench { args } => match hub_vision::run_tract_infer_child(&args) {
            Ok(line) => {
                println!("{line}");
                Ok(EXIT_OK)
            }
            Err(e) => Err(anyhow::anyhow!("tract bench child: {e}").into()),
        },
        Command::Bench {
            command:
                BenchCommand::Vision {
                    json,
                    reps,
                    skip_python,
                    python,
                    cache_dir,
                    images,
                    model_manifest,
                },
        } => {
            telemetry::init("warn", log_format(cli.log_format, None));
            bench_vision(benchmarks::VisionBenchArgs {
                json,
                reps,
                skip_python,
                python,
                cache_dir,
                images,
                model_manifest,
            })
        }
        Command::Bench {
            command: BenchCommand::Devices { json, seconds },
        } => {
            let report = bench::devices::run(seconds.clamp(0.05, 60.0));
            finish_bench(&report, json, report.meets_targets())
        }
        Command::Devices {
            config,
            limit,
            json,
        } => devices_command(&config.config, limit, json, cli.log_format),
        Command::Sim { command } => sim_command(command, cli.log_format),
        Command::Sku {
            command: SkuCommand::Import { config, file },
        } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let skus: Vec<hub_core::Sku> = serde_json::from_str(&text).map_err(|e| Failure {
                code: EXIT_INVALID,
                error: anyhow::anyhow!("{} is not a JSON array of SKUs: {e}", file.display()),
            })?;
            let (_config, store) = open_site(&config.config, cli.log_format)?;
            let now = crate::clock::now();
            let count = skus.len();
            let outcomes = store.write_blocking(move |c| {
                skus.iter()
                    .map(|s| crate::store::sku::upsert(c, s, now))
                    .collect::<Result<Vec<_>, _>>()
            })?;
            store.close();
            let stale = outcomes
                .iter()
                .filter(|o| matches!(o, crate::store::sku::SkuUpsert::Stale { .. }))
                .count();
            println!(
                "{count} SKU(s) read, {} stored, {stale} skipped (same or newer version stored)",
                count - stale
            );
            Ok(EXIT_OK)
        }
        Command::Sku {
            command: SkuCommand::List { config, json },
        } => {
            let (_config, store) = open_site(&config.config, cli.log_format)?;
            let skus = store.read_blocking(crate::store::sku::all)?;
            store.close();
            if json {
                print_json(&skus)?;
            } else {
                for s in &skus {
                    println!(
                        "{:<16} {:<32} {:<6} v{} gtins {}",
                        s.code,
                        s.name,
                        s.unit.symbol(),
                        s.version,
                        s.gtins
                            .iter()
                            .map(|g| g.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    );
                }
            }
            Ok(EXIT_OK)
        }
        Command::Receive { command } => receive_command(command, cli.log_format),
        Command::Trace {
            config,
            code,
            batch,
            json,
        } => {
            let (site, store) = open_site(&config.config, cli.log_format)?;
            let out = match (code, batch) {
                (_, Some(lot)) => {
                    let traces =
                        store.read_blocking(move |c| crate::store::trace::batch(c, &lot))?;
                    if json {
                        print_json(&traces)?;
                    } else {
                        print!("{}", crate::cli_output::BatchTraces(&traces));
                    }
                    if traces.is_empty() {
                        EXIT_REFUSED
                    } else {
                        EXIT_OK
                    }
                }
                (Some(code), None) => {
                    let canonical = crate::codes::stored_form(&code, &site.codes);
                    let trace = store.read_blocking(move |c| {
                        Ok::<_, crate::store::StoreError>(
                            match crate::store::trace::item(c, &canonical)? {
                                Some(t) => Some(t),
                                None => crate::store::trace::item(c, &code)?,
                            },
                        )
                    })?;
                    match trace {
                        Some(t) if json => print_json(&t)?,
                        Some(t) => print!("{}", crate::cli_output::ItemTraceView(&t)),
                        None if json => print_json(&serde_json::Value::Null)?,
                        None => eprintln!("this hub has never seen that code"),
                    }
                    EXIT_OK
                }
                (None, None) => {
                    return Err(Failure {
                        code: EXIT_INVALID,
                        error: anyhow::anyhow!("give a trace code, or --batch LOT"),
                    });
                }
            };
            store.close();
            Ok(out)
        }
        Command::Pickup { command } => pickup_command(command, cli.log_format),
        Command::Alerts {
            config,
            check,
            json,
        } => {
            let (config, store) = open_site(&config.config, cli.log_format)?;
            if check {
                runtime()?.block_on(crate::workflows::alerts::run_checks(
                    &store,
                    &Site::of(&config),
                    &config.alerts,
                    crate::clock::now(),
                ))?;
            }
            let alerts = store.read_blocking(crate::store::alert_book::open_alerts)?;
            store.close();
            if json {
                print_json(&alerts)?;
            } else if alerts.is_empty() {
                println!("no open alerts");
            } else {
                for a in &alerts {
                    println!(
                        "[{:<6}] {:<18} {:<24} {}",
                        a.tier.as_str().to_uppercase(),
                        a.kind.as_str(),
                        a.subject,
                        a.message
                    );
                }
            }
            Ok(EXIT_OK)
        }
        Command::Report {
            config,
            from,
            to,
            json,
        } => {
            let (site_config, store) = open_site(&config.config, cli.log_format)?;
            // Days of the site's calendar (`site.timezone`), never UTC days.
            let zone = site_config.site.timezone;
            let warn_days = site_config.alerts.expiry_warn_days;
            let now = crate::clock::now();
            let today = crate::clock::site_date(zone, now);
            let to = to.unwrap_or(today + chrono::Days::new(1));
            let from = from.unwrap_or(to - chrono::Days::new(7));
            if from >= to {
                return Err(Failure {
                    code: EXIT_INVALID,
                    error: anyhow::anyhow!("--from {from} must be before --to {to}"),
                });
            }
            let report = store.read_blocking(move |c| {
                crate::store::report::compute(c, from, to, zone, warn_days, now)
            })?;
            store.close();
            if json {
                print_json(&report)?;
            } else {
                print!("{}", crate::cli_output::ReportView(&report));
            }
            Ok(EXIT_OK)
        }
        Command::Simulate(args) => simulate_command(args, cli.log_format),
        Command::Bench {
            command:
                BenchCommand::Forecast {
                    json,
                    seed,
                    skus,
                    days,
                    refit_skus,
                    skip_python,
                    python,
                    cache_dir,
                },
        } => {
            telemetry::init("error", log_format(cli.log_format, None));
            let python = benchmarks::forecast_python(skip_python, python, cache_dir);
            benchmarks::bench_forecast(
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
        Command::Bench {
            command:
                BenchCommand::Sync {
                    json,
                    events,
                    in_flight,
                },
        } => {
            telemetry::init("error", log_format(cli.log_format, None));
            let report = runtime()?.block_on(bench::sync::run(events.max(1), in_flight.max(1)))?;
            finish_bench(&report, json, report.meets_targets())
        }
        Command::Sync {
            command: SyncCommand::Check(args),
        } => {
            let config = Config::load(&args.config)?;
            telemetry::init(&config.log.level, log_format(cli.log_format, Some(&config)));
            let Some(uplink) = &config.uplink else {
                return Err(Failure {
                    code: EXIT_INVALID,
                    error: anyhow::anyhow!("{} has no [uplink] section", args.config.display()),
                });
            };
            let settings = crate::sync::uplink::UplinkSettings::from_config(uplink);
            let session = runtime()?.block_on(hub_mqtt::connect_once(&settings.connection))?;
            println!(
                "connected to {} as {} (broker {} a session for it)",
                uplink.broker,
                uplink.client_id,
                if session { "kept" } else { "had no" }
            );
            Ok(EXIT_OK)
        }
        Command::Dev {
            command: DevCommand::ReceiveLoop { db, prefix, limit },
        } => {
            crate::tools::dev::receive_loop(&db, &prefix, limit)?;
            Ok(EXIT_OK)
        }
        Command::Dev {
            command:
                DevCommand::ApplyLoop {
                    db,
                    prefix,
                    threads,
                    limit,
                },
        } => {
            crate::tools::dev::apply_loop(&db, &prefix, threads.max(1), limit)?;
            Ok(EXIT_OK)
        }
    }
}

/// Loads a site's config, sets up logging and opens its store.
/// `hub simulate`: settings from the file, then the flags; every bad setting named at once.
fn simulate_command(args: SimulateArgs, format: Option<LogFormatArg>) -> Result<i32, Failure> {
    use crate::tools::simulate::{self, SimulateSettings};
    let invalid = |error: anyhow::Error| Failure {
        code: EXIT_INVALID,
        error,
    };
    let file = match &args.settings {
        Some(path) => SimulateSettings::load(path).map_err(invalid)?,
        None => SimulateSettings::default(),
    };
    let mut shelf_life_days = std::collections::BTreeMap::new();
    for text in &args.shelf_life {
        let (category, days) = simulate::parse_shelf_life(text)
            .map_err(|e| invalid(anyhow::anyhow!("--shelf-life {e}")))?;
        shelf_life_days.insert(category, days);
    }
    let settings = file.overlay(SimulateSettings {
        sim_days: args.sim_days,
        lead_time_days: args.lead_time_days,
        review_days: args.review_days,
        service_target: args.service_target,
        yellow: args.yellow,
        orange: args.orange,
        red: args.red,
        hysteresis: args.hysteresis,
        target_days: args.target_days,
        replenish_at: args.replenish_at.clone(),
        window_days: args.window_days,
        opening_cover_days: None,
        shelf_life_days,
        policies: args.policies.clone(),
    });
    let (history, source) = match &args.config {
        Some(path) => {
            let (site_config, store) = open_site(path, format)?;
            let zone = site_config.site.timezone;
            let today = crate::clock::site_date(zone, crate::clock::now());
            let history = store.read_blocking(move |c| simulate::from_journal(c, zone, today))?;
            store.close();
            if history.skus.is_empty() {
                return Err(Failure {
                    code: EXIT_FAILED,
                    error: anyhow::anyhow!(
                        "the journal has no SKU with stock movements yet: nothing to replay (try without --config for a generated site)"
                    ),
                });
            }
            (history, "journal".to_owned())
        }
        None => {
            if args.skus == 0 || args.days < 14 {
                return Err(invalid(anyhow::anyhow!(
                    "--skus must be at least 1 and --days at least 14 (got {} and {})",
                    args.skus,
                    args.days
                )));
            }
            (
                simulate::generated(args.seed, args.skus, args.days),
                format!("generated (seed {})", args.seed),
            )
        }
    };
    let (config, policies) = settings.resolve(history.days).map_err(|problems| {
        invalid(anyhow::anyhow!(
            "simulator settings refused:\n  {}",
            problems.join("\n  ")
        ))
    })?;
    let out = simulate::run(&history, source, &config, &policies)
        .map_err(|problems| invalid(anyhow::anyhow!("{}", problems.join("; "))))?;
    if let Some(path) = &args.svg {
        std::fs::write(path, simulate::render_svg(&out)).map_err(|e| Failure {
            code: EXIT_FAILED,
            error: anyhow::anyhow!("cannot write the chart to {}: {e}", path.display()),
        })?;
    }
    if args.json {
        print_json(&out)?;
    } else {
        print!("{}", simulate::render_text(&out));
    }
    Ok(EXIT_OK)
}

fn open_site(
    path: &std::path::Path,
    format: Option<LogFormatArg>,
) -> Result<(Config, crate::store::Store), Failure> {
    let config = Config::load(path)?;
    telemetry::init(&config.log.level, log_format(format, Some(&config)));
    let store = daemon::open_store(&config)?;
    Ok((config, store))
}

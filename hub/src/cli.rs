//! Command-line interface: argument parsing, dispatch, and the one exit-code policy.
//!
//! Exit codes: 0 success; 1 the command failed (message on stderr); 2 bad usage or an invalid
//! configuration; 3 the ledger does not verify; 4 a benchmark ran but missed its targets.

use crate::config::{Config, LogFormat};
use crate::store::ledger;
use crate::{bench, daemon, demo, telemetry};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_INVALID: i32 = 2;
pub const EXIT_LEDGER_MISMATCH: i32 = 3;
pub const EXIT_BELOW_TARGET: i32 = 4;

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
struct ConfigArg {
    /// Site configuration file.
    #[arg(long, short, env = "HUB_CONFIG", default_value = "/etc/hub/hub.toml")]
    config: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the hub daemon until SIGINT or SIGTERM.
    Run(ConfigArg),
    /// Check a configuration file and list every problem in it.
    CheckConfig {
        file: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
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
    /// Developer tools used by the test suite.
    #[command(hide = true)]
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
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
enum BenchCommand {
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
    /// Durable commit rates: raw SQLite vs ledger movements, single and grouped.
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
        /// Seconds per phase.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Concurrent requesters in the grouped phase.
        #[arg(long, default_value_t = 256)]
        requesters: usize,
    },
}

#[derive(Debug, Subcommand)]
enum DevCommand {
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
        Command::Run(args) => {
            let config = Config::load(&args.config)?;
            telemetry::init(&config.log.level, log_format(cli.log_format, Some(&config)));
            let store = daemon::open_store(&config)?;
            crate::storage::log_startup_check(&config.store.data_dir);
            runtime()?.block_on(async {
                let shutdown = CancellationToken::new();
                let trigger = shutdown.clone();
                tokio::spawn(async move {
                    daemon::stop_signal().await;
                    trigger.cancel();
                });
                daemon::run(config, store, shutdown).await
            })?;
            Ok(EXIT_OK)
        }
        Command::CheckConfig { file, json } => match Config::load(&file) {
            Ok(config) => {
                if json {
                    print_json(&serde_json::json!({"file": file, "valid": true, "problems": []}))?;
                } else {
                    println!(
                        "{}: valid (site {}, database {})",
                        file.display(),
                        config.site.id,
                        config.database_path().display()
                    );
                }
                Ok(EXIT_OK)
            }
            Err(crate::config::ConfigError::Invalid { path, problems }) => {
                if json {
                    let list: Vec<_> = problems
                        .iter()
                        .map(|p| serde_json::json!({"path": p.path, "message": p.message}))
                        .collect();
                    print_json(
                        &serde_json::json!({"file": path, "valid": false, "problems": list}),
                    )?;
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
            let store = daemon::open_store(&config)?;
            let report = store.read_blocking(ledger::verify)?;
            store.close();
            if json {
                print_json(&report)?;
            } else if report.ok() {
                println!(
                    "ledger ok: {} movements, {} SKU balances, {} batch balances, {} outbox events — all match",
                    report.movements,
                    report.skus_checked,
                    report.batches_checked,
                    report.outbox_events
                );
            } else {
                eprintln!("ledger MISMATCH ({} problem(s)):", report.problems.len());
                for p in &report.problems {
                    eprintln!("  - {p}");
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
            telemetry::init("warn", log_format(cli.log_format, None));
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
            let store = daemon::open_store(&config)?;
            let rt = runtime()?;
            let now = crate::clock::now();
            let summary = rt.block_on(demo::play(&store, config.site.id.as_str(), now))?;
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
                    daemon::run_with(config, store.clone(), board, shutdown, |started| {
                        if let Some(url) = &started.status_url {
                            eprintln!("status page: {url}");
                        }
                        eprintln!("demo hub keeps running on {data_dir}; press Ctrl-C to stop");
                    })
                    .await
                })?;
            } else {
                store.close();
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
            let dir = match (data_dir, config) {
                (Some(dir), _) => dir,
                (None, Some(config)) => Config::load(&config)?.store.data_dir,
                (None, None) => std::env::current_dir()?,
            };
            std::fs::create_dir_all(&dir)?;
            let options = bench::disk::DiskBenchOptions {
                fsyncs: fsyncs.max(1),
                sequential_bytes: sequential_mib.max(1) << 20,
                sqlite_seconds: seconds,
                baseline_dir,
            };
            let report = bench::disk::run(&dir, &options)?;
            println!("{report}");
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
                println!("figures written to {}", path.display());
            }
            Ok(if report.meets_targets() {
                EXIT_OK
            } else {
                EXIT_BELOW_TARGET
            })
        }
        Command::Bench {
            command:
                BenchCommand::Ledger {
                    data_dir,
                    config,
                    json,
                    seconds,
                    requesters,
                },
        } => {
            let dir = match (data_dir, config) {
                (Some(dir), _) => dir,
                (None, Some(config)) => Config::load(&config)?.store.data_dir,
                (None, None) => std::env::current_dir()?,
            };
            std::fs::create_dir_all(&dir)?;
            let report = bench::ledger::run(&dir, seconds, requesters.max(1))?;
            println!("{report}");
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
                println!("figures written to {}", path.display());
            }
            Ok(if report.meets_targets() {
                EXIT_OK
            } else {
                EXIT_BELOW_TARGET
            })
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
            crate::dev::apply_loop(&db, &prefix, threads.max(1), limit)?;
            Ok(EXIT_OK)
        }
    }
}

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
#[allow(clippy::large_enum_variant, reason = "parsed once per process")]
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
    },
    /// Measure this box: is its storage fast enough for a site?
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Upstream sync tools.
    Sync {
        #[command(subcommand)]
        command: SyncCommand,
    },
    /// Reference central consumer: receive every site's events (or report, or send commands).
    #[command(args_conflicts_with_subcommands = true)]
    Central {
        #[command(subcommand)]
        command: Option<CentralCommand>,
        #[command(flatten)]
        run: CentralRunArgs,
    },
    /// Developer tools used by the test suite.
    #[command(hide = true)]
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
}

#[derive(Debug, Subcommand)]
enum SyncCommand {
    /// Connect to the configured broker once (address, TLS, credentials) and report.
    Check(ConfigArg),
}

/// How to reach the broker, for the central tools.
#[derive(Debug, Args, Clone)]
struct BrokerArgs {
    /// Broker URL, mqtt://host:port or mqtts://host:port.
    #[arg(long)]
    broker: Option<String>,
    /// MQTT client id (the broker keeps central's session under it).
    #[arg(long, default_value = "hub-central")]
    client_id: String,
    #[arg(long)]
    username: Option<String>,
    /// File holding the password.
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// CA certificate (PEM) for mqtts://.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long)]
    key: Option<PathBuf>,
}

impl BrokerArgs {
    fn connection(&self, client_id: &str) -> Result<crate::sync::Connection, Failure> {
        let url = self.broker.as_deref().ok_or_else(|| Failure {
            code: EXIT_INVALID,
            error: anyhow::anyhow!("--broker is required"),
        })?;
        let broker = crate::config::BrokerAddress::parse(url).map_err(|e| Failure {
            code: EXIT_INVALID,
            error: anyhow::anyhow!(e),
        })?;
        let mut c = crate::sync::Connection::plain(broker, client_id);
        c.username = self.username.clone();
        c.password_file = self.password_file.clone();
        c.ca_file = self.ca_file.clone();
        c.client_cert_file = self.cert.clone();
        c.client_key_file = self.key.clone();
        Ok(c)
    }
}

#[derive(Debug, Args)]
struct CentralRunArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    /// Central's own SQLite database.
    #[arg(long)]
    db: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant, reason = "parsed once per process")]
enum CentralCommand {
    /// Print what central holds per site: events, contiguous sequence, gaps, duplicates.
    Report {
        #[arg(long)]
        db: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Send one command down to a site and wait for the broker's acknowledgement.
    Send {
        #[command(flatten)]
        broker: BrokerArgs,
        #[arg(long)]
        site: String,
        /// sku_upsert, sku_thresholds, delivery_manifest, pickup_order, replenishment_ack, alert_tiers.
        #[arg(long)]
        kind: String,
        /// What the command is about (SKU code, manifest id, order id, …).
        #[arg(long)]
        key: String,
        #[arg(long)]
        version: i64,
        /// The body as JSON, or @FILE to read it from a file.
        #[arg(long)]
        body: String,
        /// Command id (default: a new UUID). Sending the same id again is applied once.
        #[arg(long)]
        id: Option<String>,
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
    crate::sync::install_crypto_provider();
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
        Command::Demo { keep_running, json } => {
            telemetry::init("warn", log_format(cli.log_format, None));
            let dir = tempfile::Builder::new().prefix("hub-demo-").tempdir()?;
            let config = demo::demo_config(dir.path())?;
            let store = daemon::open_store(&config)?;
            let rt = runtime()?;
            let mut summary = rt.block_on(demo::play(
                &store,
                config.site.id.as_str(),
                crate::clock::now(),
            ))?;
            summary.central =
                Some(rt.block_on(demo::sync_to_embedded_central(&store, &config, dir.path()))?);
            summary.outbox = store.read_blocking(crate::store::outbox::stats)?;
            if json {
                print_json(&summary)?;
            } else {
                print!("{summary}");
            }
            if keep_running {
                eprintln!(
                    "demo hub keeps running on {}; press Ctrl-C to stop",
                    dir.path().display()
                );
                rt.block_on(async {
                    let shutdown = CancellationToken::new();
                    let trigger = shutdown.clone();
                    tokio::spawn(async move {
                        daemon::stop_signal().await;
                        trigger.cancel();
                    });
                    daemon::run(config, store.clone(), shutdown).await
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
        Command::Bench {
            command:
                BenchCommand::Sync {
                    json,
                    events,
                    in_flight,
                },
        } => {
            telemetry::init("warn", log_format(cli.log_format, None));
            let report = runtime()?.block_on(bench::sync::run(events.max(1), in_flight.max(1)))?;
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
            let session = runtime()?.block_on(crate::sync::connect_once(&settings.connection))?;
            println!(
                "connected to {} as {} (broker {} a session for it)",
                uplink.broker,
                uplink.client_id,
                if session { "kept" } else { "had no" }
            );
            Ok(EXIT_OK)
        }
        Command::Central {
            command: Some(CentralCommand::Report { db, json }),
            ..
        } => {
            let report = crate::sync::central::report(&db)?;
            if json {
                print_json(&report)?;
            } else {
                print!("{report}");
            }
            Ok(EXIT_OK)
        }
        Command::Central {
            command:
                Some(CentralCommand::Send {
                    broker,
                    site,
                    kind,
                    key,
                    version,
                    body,
                    id,
                }),
            ..
        } => {
            telemetry::init("warn", log_format(cli.log_format, None));
            let body_text = match body.strip_prefix('@') {
                Some(file) => std::fs::read_to_string(file)?,
                None => body,
            };
            let body: serde_json::Value =
                serde_json::from_str(&body_text).map_err(|e| Failure {
                    code: EXIT_INVALID,
                    error: anyhow::anyhow!("--body is not JSON: {e}"),
                })?;
            let command = crate::sync::contract::CommandOut {
                v: crate::sync::contract::CONTRACT_VERSION,
                id: id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                site,
                kind,
                key,
                version,
                body,
            };
            let connection =
                broker.connection(&format!("hub-central-send-{}", uuid::Uuid::new_v4()))?;
            runtime()?.block_on(crate::sync::central::send_command(&connection, &command))?;
            println!("command {} sent to site {}", command.id, command.site);
            Ok(EXIT_OK)
        }
        Command::Central { command: None, run } => {
            telemetry::init("info", log_format(cli.log_format, None));
            let db = run.db.clone().ok_or_else(|| Failure {
                code: EXIT_INVALID,
                error: anyhow::anyhow!("--db is required"),
            })?;
            let connection = run.broker.connection(&run.broker.client_id)?;
            let options = crate::sync::central::CentralOptions::new(connection, db);
            runtime()?.block_on(async {
                let shutdown = CancellationToken::new();
                let trigger = shutdown.clone();
                tokio::spawn(async move {
                    daemon::stop_signal().await;
                    trigger.cancel();
                });
                crate::sync::central::run(options, shutdown).await
            })?;
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
            crate::dev::apply_loop(&db, &prefix, threads.max(1), limit)?;
            Ok(EXIT_OK)
        }
    }
}

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
        /// First day (YYYY-MM-DD, UTC); default 7 days before --to.
        #[arg(long)]
        from: Option<chrono::NaiveDate>,
        /// Day after the last day (YYYY-MM-DD, UTC); default tomorrow.
        #[arg(long)]
        to: Option<chrono::NaiveDate>,
        #[arg(long)]
        json: bool,
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
enum ReceiveCommand {
    /// Load a delivery manifest from a JSON file, as central would send it.
    Manifest {
        #[command(flatten)]
        config: ConfigArg,
        file: PathBuf,
    },
    /// A code scanned at a station: a crate/delivery label selects a line, an item code binds.
    Scan {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        station: String,
        code: String,
        #[arg(long)]
        json: bool,
    },
    /// A stable weight in grams for the station's selected line.
    Weight {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        station: String,
        grams: i64,
    },
    /// Staff count for a line without trace codes.
    Count {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        delivery: String,
        #[arg(long)]
        line: u32,
        count: i64,
    },
    /// Split part of a line off into another lot.
    Split {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        delivery: String,
        #[arg(long)]
        line: u32,
        #[arg(long)]
        lot: String,
        #[arg(long)]
        expiry: Option<chrono::NaiveDate>,
        #[arg(long)]
        quantity: i64,
    },
    /// Decide a line now.
    Decide {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        delivery: String,
        #[arg(long)]
        line: u32,
        #[arg(long)]
        staff: String,
        #[arg(long)]
        json: bool,
    },
    /// Release held stock into stock and/or reject it, after review.
    Release {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        delivery: String,
        #[arg(long)]
        line: u32,
        #[arg(long, default_value_t = 0)]
        release: i64,
        #[arg(long, default_value_t = 0)]
        reject: i64,
        #[arg(long)]
        staff: String,
        #[arg(long)]
        reason: String,
    },
    /// Close a delivery; undecided lines are decided now.
    Close {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        delivery: String,
        #[arg(long)]
        staff: String,
        #[arg(long)]
        json: bool,
    },
    /// Open a dispute on a delivery (its photos and decisions are then kept whatever the
    /// retention policy), or close it with --close once settled.
    Dispute {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        delivery: String,
        #[arg(long)]
        staff: String,
        /// What is contested (when opening) or how it was settled (with --close).
        #[arg(long)]
        note: String,
        /// Close the delivery's open dispute instead of opening one.
        #[arg(long)]
        close: bool,
    },
    /// A photo of the station's selected line: checked with the SKU's vision rule, stored as
    /// evidence and recorded on the line.
    Photo {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        station: String,
        /// The photo (JPEG or PNG).
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Show a delivery's lines and decisions.
    Show {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        delivery: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum PickupCommand {
    /// Check a pickup code (typed digits, or the QR payload ORDER:CODE).
    Check {
        #[command(flatten)]
        config: ConfigArg,
        /// The station (desk) checking the code; wrong codes are counted per station.
        #[arg(long)]
        station: String,
        code: String,
        #[arg(long)]
        json: bool,
    },
    /// Hand an order over (after its code was checked), exactly once.
    Handover {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        station: String,
        #[arg(long)]
        order: String,
        /// A trace code scanned while handing over (repeatable).
        #[arg(long = "item")]
        items: Vec<String>,
        /// A refused quantity: LINE:QTY:stock|loss[:reason] (line numbers start at 0).
        #[arg(long = "refuse")]
        refusals: Vec<String>,
        /// A weighed by-weight line: LINE:GRAMS.
        #[arg(long = "weigh")]
        weighings: Vec<String>,
        /// Who hands the order over (staff id, kept with the handover).
        #[arg(long)]
        staff: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Load pickup orders from a JSON file (an array), as central would send them.
    Import {
        #[command(flatten)]
        config: ConfigArg,
        file: PathBuf,
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
        /// sku_upsert, sku_thresholds, delivery_manifest, pickup_order, replenishment_ack,
        /// alert_tiers, delivery_dispute.
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

#[derive(Debug, Subcommand)]
enum SimCommand {
    /// A scale running the firmware-shim code over a load-cell model.
    ///
    /// Stdin commands: put <kg>|<g>g, remove, move, still, silent, talk, garbage [n],
    /// partial, overlong [n], send <text with \xNN escapes>, unplug, replug, quit.
    Scale {
        /// mt-sics, toledo8217, mettler-continuous or yaohua-a9.
        #[arg(long)]
        protocol: String,
        /// A stable symlink to the pseudo-terminal, re-created on every replug.
        #[arg(long)]
        link: Option<PathBuf>,
        /// Interval between frames of the continuous protocols, in ms.
        #[arg(long, default_value_t = 100)]
        interval_ms: u32,
    },
    /// A barcode scanner with configurable framing.
    ///
    /// Stdin commands: scan <code>, partial <text>, garbage [n], overlong [n], send <text>,
    /// unplug, replug, quit. Codes may use \xNN escapes (e.g. \x1d for GS).
    Scanner {
        #[arg(long)]
        link: Option<PathBuf>,
        /// cr, lf, crlf, tab or none.
        #[arg(long, default_value = "cr")]
        terminator: String,
        #[arg(long, default_value = "")]
        prefix: String,
        #[arg(long, default_value = "")]
        suffix: String,
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
            // The inference backend is chosen first, before anything else could touch it.
            let vision = start_vision_if_enabled(&config.vision)?;
            let store = daemon::open_store(&config)?;
            crate::storage::log_startup_check(&config.store.data_dir);
            runtime()?.block_on(async {
                let shutdown = CancellationToken::new();
                let trigger = shutdown.clone();
                tokio::spawn(async move {
                    daemon::stop_signal().await;
                    trigger.cancel();
                });
                let board = crate::status::StatusBoard::new();
                daemon::run_with_vision(config, store, board, vision, shutdown, |_| {}).await
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
            let vision = start_vision_if_enabled(&config.vision)?;
            let store = daemon::open_store(&config)?;
            let rt = runtime()?;
            let now = crate::clock::now();
            let mut summary = rt.block_on(demo::play(&store, config.site.id.as_str(), now))?;
            let device_steps = rt.block_on(crate::demo_devices::receive_and_hand_over(
                &store,
                &config,
                vision.as_ref(),
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
                if let Some(v) = vision {
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
                },
        } => {
            let dir = bench_dir(data_dir, config)?;
            let report = bench::ledger::run(&dir, seconds, requesters.max(1))?;
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
                    images,
                    model_manifest,
                },
        } => {
            telemetry::init("warn", log_format(cli.log_format, None));
            bench_vision(json, reps, skip_python, images, model_manifest)
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
                        s.gtins.join(",")
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
                    let canonical = match crate::codes::classify_text(&code, &site.codes) {
                        crate::codes::ScannedCode::Item { code, .. } => code,
                        _ => code.clone(),
                    };
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
                    &config.alerts,
                    crate::clock::now(),
                ))?;
            }
            let alerts = store.read_blocking(crate::store::alerts::open_alerts)?;
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
            let (_config, store) = open_site(&config.config, cli.log_format)?;
            let day = |d: chrono::NaiveDate| {
                hub_core::Timestamp(
                    d.and_hms_opt(0, 0, 0)
                        .map(|t| t.and_utc().timestamp_millis())
                        .unwrap_or(0),
                )
            };
            let today = chrono::Utc::now().date_naive();
            let to = to.unwrap_or(today + chrono::Days::new(1));
            let from = from.unwrap_or(to - chrono::Days::new(7));
            if from >= to {
                return Err(Failure {
                    code: EXIT_INVALID,
                    error: anyhow::anyhow!("--from {from} must be before --to {to}"),
                });
            }
            let report =
                store.read_blocking(move |c| crate::report::compute(c, day(from), day(to)))?;
            store.close();
            if json {
                print_json(&report)?;
            } else {
                print!("{report}");
            }
            Ok(EXIT_OK)
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
            telemetry::init("error", log_format(cli.log_format, None));
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
            command: DevCommand::ReceiveLoop { db, prefix, limit },
        } => {
            crate::dev::receive_loop(&db, &prefix, limit)?;
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

fn devices_command(
    path: &std::path::Path,
    limit: usize,
    json: bool,
    format: Option<LogFormatArg>,
) -> Result<i32, Failure> {
    let (config, store) = open_site(path, format)?;
    let journal = store.read_blocking(|c| crate::store::device_input::recent(c, limit))?;
    store.close();
    let status_path = crate::devices::status_file(&config.store.data_dir);
    let health: Vec<crate::devices::DeviceHealth> = match std::fs::read(&status_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    if json {
        print_json(&serde_json::json!({"devices": health, "journal": journal}))?;
        return Ok(EXIT_OK);
    }
    if health.is_empty() {
        println!(
            "no device status yet ({} is written by a running hub)",
            status_path.display()
        );
    }
    for h in &health {
        let shown = crate::devices::status_device(h);
        let last = match (&shown.last_reading, h.last_seen_ms) {
            (Some(reading), Some(ms)) => format!(
                "  last {reading} at {}",
                hub_core::Timestamp(ms).to_rfc3339()
            ),
            (Some(reading), None) => format!("  last {reading}"),
            _ => String::new(),
        };
        println!(
            "{:<14} {:<8} {:<8} {:<7} {}{last}  [frames {} garbage {}B/{} overlong {} checksum {} malformed {} reconnects {} applied {} refused {}]",
            h.name,
            h.kind,
            h.station,
            if h.online { "online" } else { "OFFLINE" },
            h.detail,
            h.frames,
            h.garbage_bytes,
            h.garbage_frames,
            h.overlong,
            h.checksum_failures,
            h.malformed,
            h.reconnects,
            h.applied,
            h.refused
        );
    }
    if !journal.is_empty() {
        println!("\nlatest inputs:");
    }
    for r in &journal {
        let what = match (&r.code, r.grams) {
            (Some(code), _) => code.clone(),
            (None, Some(g)) => format!("{g} g"),
            (None, None) => String::new(),
        };
        println!(
            "  #{:<6} {:<14} {:<7} {:<30} {:<8} {}",
            r.id, r.device, r.kind, what, r.outcome, r.detail
        );
    }
    Ok(EXIT_OK)
}

fn sim_command(command: SimCommand, format: Option<LogFormatArg>) -> Result<i32, Failure> {
    use crate::devices::config::{ScaleProtocol, ScannerFraming, parse_terminator};
    telemetry::init("warn", log_format(format, None));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match command {
        SimCommand::Scale {
            protocol,
            link,
            interval_ms,
        } => {
            let protocol = ScaleProtocol::parse(&protocol).ok_or_else(|| Failure {
                code: EXIT_INVALID,
                error: anyhow::anyhow!(
                    "--protocol {protocol}: use one of {}",
                    ScaleProtocol::NAMES.join(", ")
                ),
            })?;
            rt.block_on(crate::devices::sim::run_scale(
                protocol,
                link,
                interval_ms.max(10),
            ))?;
        }
        SimCommand::Scanner {
            link,
            terminator,
            prefix,
            suffix,
        } => {
            let terminator = parse_terminator(&terminator).ok_or_else(|| Failure {
                code: EXIT_INVALID,
                error: anyhow::anyhow!("--terminator {terminator}: use cr, lf, crlf, tab or none"),
            })?;
            let framing = ScannerFraming {
                terminator,
                prefix: crate::devices::sim::unescape(&prefix),
                suffix: crate::devices::sim::unescape(&suffix),
            };
            rt.block_on(crate::devices::sim::run_scanner(framing, link))?;
        }
    }
    Ok(EXIT_OK)
}

/// Loads a site's config, sets up logging and opens its store.
fn open_site(
    path: &std::path::Path,
    format: Option<LogFormatArg>,
) -> Result<(Config, crate::store::Store), Failure> {
    let config = Config::load(path)?;
    telemetry::init(&config.log.level, log_format(format, Some(&config)));
    let store = daemon::open_store(&config)?;
    Ok((config, store))
}

fn parse_refusal(text: &str) -> anyhow::Result<crate::store::pickup::Refusal> {
    let mut parts = text.splitn(4, ':');
    let (Some(line), Some(quantity), Some(to)) = (parts.next(), parts.next(), parts.next()) else {
        anyhow::bail!("--refuse {text}: expected LINE:QTY:stock|loss[:reason]");
    };
    let to = match to {
        "stock" => hub_core::event::RefusedTo::Stock,
        "loss" => hub_core::event::RefusedTo::Loss,
        other => anyhow::bail!("--refuse {text}: '{other}' must be stock or loss"),
    };
    Ok(crate::store::pickup::Refusal {
        line: line
            .parse()
            .map_err(|_| anyhow::anyhow!("--refuse {text}: line must be a number"))?,
        quantity: quantity
            .parse()
            .map_err(|_| anyhow::anyhow!("--refuse {text}: quantity must be a number"))?,
        to,
        reason: parts.next().unwrap_or("").to_owned(),
    })
}

fn parse_weighing(text: &str) -> anyhow::Result<crate::store::pickup::Weighing> {
    let (line, grams) = text
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("--weigh {text}: expected LINE:GRAMS"))?;
    Ok(crate::store::pickup::Weighing {
        line: line
            .parse()
            .map_err(|_| anyhow::anyhow!("--weigh {text}: line must be a number"))?,
        grams: grams
            .parse()
            .map_err(|_| anyhow::anyhow!("--weigh {text}: grams must be a number"))?,
    })
}

fn pickup_command(command: PickupCommand, format: Option<LogFormatArg>) -> Result<i32, Failure> {
    use crate::store::pickup::{HandoverError, HandoverRequest};
    match command {
        PickupCommand::Check {
            config,
            station,
            code,
            json,
        } => {
            let (config, store) = open_site(&config.config, format)?;
            let check = runtime()?.block_on(crate::workflows::pickup::check(
                &store,
                &config,
                &station,
                &code,
                crate::clock::now(),
            ))?;
            let pick = match &check {
                hub_core::pickup::CodeCheck::Found { order_id } => {
                    let id = order_id.clone();
                    store.read_blocking(move |c| crate::store::pickup::pick_list(c, &id))?
                }
                _ => vec![],
            };
            store.close();
            if json {
                print_json(&serde_json::json!({"check": check, "pick": pick}))?;
            } else {
                println!("{}", crate::store::pickup::describe(&check));
                for p in &pick {
                    let from = match (&p.lot, &p.expiry) {
                        (Some(lot), Some(expiry)) => format!("lot {lot} (expires {expiry})"),
                        (Some(lot), None) => format!("lot {lot}"),
                        _ => "any lot".into(),
                    };
                    println!("  take {} x{} from {from}", p.sku, p.quantity);
                }
            }
            Ok(if check.is_found() {
                EXIT_OK
            } else {
                EXIT_REFUSED
            })
        }
        PickupCommand::Handover {
            config,
            station,
            order,
            items,
            refusals,
            weighings,
            staff,
            json,
        } => {
            let request = HandoverRequest {
                staff,
                trace_codes: items,
                refusals: refusals
                    .iter()
                    .map(|r| parse_refusal(r))
                    .collect::<Result<_, _>>()
                    .map_err(|e| Failure {
                        code: EXIT_INVALID,
                        error: e,
                    })?,
                weighings: weighings
                    .iter()
                    .map(|w| parse_weighing(w))
                    .collect::<Result<_, _>>()
                    .map_err(|e| Failure {
                        code: EXIT_INVALID,
                        error: e,
                    })?,
            };
            let (config, store) = open_site(&config.config, format)?;
            let outcome = runtime()?.block_on(crate::workflows::pickup::handover(
                &store,
                &config,
                &station,
                &order,
                request,
                crate::clock::now(),
            ));
            store.close();
            match outcome {
                Ok(handover) => {
                    if json {
                        print_json(&handover)?;
                    } else {
                        println!(
                            "order {} handed over at station {}{}",
                            handover.order_id,
                            handover.station,
                            handover
                                .staff
                                .as_deref()
                                .map(|s| format!(" by {s}"))
                                .unwrap_or_default()
                        );
                        for l in &handover.lines {
                            println!(
                                "  {:<16} handed {:>6} of {:>6}  refused {:>4}",
                                l.sku, l.handed_over, l.ordered, l.refused
                            );
                        }
                    }
                    Ok(EXIT_OK)
                }
                Err(HandoverError::Store(e)) => Err(e.into()),
                Err(HandoverError::Ledger(crate::store::ledger::RecordError::Store(e))) => {
                    Err(e.into())
                }
                Err(refused) => {
                    if json {
                        print_json(&serde_json::json!({"refused": refused.to_string()}))?;
                    } else {
                        eprintln!("refused: {refused}");
                    }
                    Ok(EXIT_REFUSED)
                }
            }
        }
        PickupCommand::Import { config, file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let orders: Vec<hub_core::pickup::PickupOrder> =
                serde_json::from_str(&text).map_err(|e| Failure {
                    code: EXIT_INVALID,
                    error: anyhow::anyhow!(
                        "{} is not a JSON array of pickup orders: {e}",
                        file.display()
                    ),
                })?;
            let (_config, store) = open_site(&config.config, format)?;
            let now = crate::clock::now();
            let count = orders.len();
            let outcomes = store.write_blocking(move |c| {
                orders
                    .iter()
                    .map(|o| crate::store::pickup::upsert_order(c, o, now))
                    .collect::<Result<Vec<_>, _>>()
            })?;
            store.close();
            let stale = outcomes
                .iter()
                .filter(|o| {
                    !matches!(
                        o,
                        crate::store::pickup::OrderUpsert::Inserted
                            | crate::store::pickup::OrderUpsert::Updated
                    )
                })
                .count();
            println!(
                "{count} order(s) read, {} stored, {stale} skipped (older version or already collected)",
                count - stale
            );
            Ok(EXIT_OK)
        }
    }
}

fn receive_command(command: ReceiveCommand, format: Option<LogFormatArg>) -> Result<i32, Failure> {
    use crate::store::receiving::{self as rs, ReceivingError};
    use crate::workflows::receiving as wf;
    let now = crate::clock::now();
    // Refusals (unknown delivery, already decided, ...) are answers for staff, not failures.
    let answer = |e: ReceivingError| -> Result<i32, Failure> {
        match e {
            ReceivingError::Store(e)
            | ReceivingError::Ledger(crate::store::ledger::RecordError::Store(e)) => Err(e.into()),
            refused => {
                eprintln!("refused: {refused}");
                Ok(EXIT_REFUSED)
            }
        }
    };
    match command {
        ReceiveCommand::Manifest { config, file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let manifest: hub_core::receiving::Manifest =
                serde_json::from_str(&text).map_err(|e| Failure {
                    code: EXIT_INVALID,
                    error: anyhow::anyhow!("{} is not a delivery manifest: {e}", file.display()),
                })?;
            let (_config, store) = open_site(&config.config, format)?;
            let id = manifest.delivery_id.clone();
            let outcome = store.write_blocking(move |c| rs::upsert_manifest(c, &manifest, now))?;
            store.close();
            println!("delivery {id}: {outcome:?}");
            Ok(EXIT_OK)
        }
        ReceiveCommand::Scan {
            config,
            station,
            code,
            json,
        } => {
            let (config, store) = open_site(&config.config, format)?;
            let out = runtime()?.block_on(wf::scan(&store, &station, &code, &config.codes, now));
            store.close();
            match out {
                Ok(outcome) if json => print_json(&outcome).map(|_| EXIT_OK),
                Ok(outcome) => {
                    println!("{}", crate::cli_output::describe_scan(&outcome));
                    Ok(match outcome {
                        wf::ScanOutcome::Item(rs::BindOutcome::Flagged { .. }) => EXIT_REFUSED,
                        _ => EXIT_OK,
                    })
                }
                Err(e) => answer(e),
            }
        }
        ReceiveCommand::Weight {
            config,
            station,
            grams,
        } => {
            let (_config, store) = open_site(&config.config, format)?;
            let out = runtime()?.block_on(wf::weight(&store, &station, grams, now));
            store.close();
            match out {
                Ok(s) => {
                    println!(
                        "{grams} g recorded for delivery {} line {} ({} lot {})",
                        s.delivery_id, s.line_no, s.sku, s.lot
                    );
                    Ok(EXIT_OK)
                }
                Err(e) => answer(e),
            }
        }
        ReceiveCommand::Count {
            config,
            delivery,
            line,
            count,
        } => {
            let (_config, store) = open_site(&config.config, format)?;
            let out = store.write_blocking(move |c| rs::set_count(c, &delivery, line, count, now));
            store.close();
            match out {
                Ok(()) => {
                    println!("count {count} recorded");
                    Ok(EXIT_OK)
                }
                Err(e) => answer(e),
            }
        }
        ReceiveCommand::Split {
            config,
            delivery,
            line,
            lot,
            expiry,
            quantity,
        } => {
            let (_config, store) = open_site(&config.config, format)?;
            let out = store.write_blocking(move |c| {
                rs::split_line(c, &delivery, line, &lot, expiry, quantity, now)
            });
            store.close();
            match out {
                Ok(new_line) => {
                    println!("split {quantity} off line {line} into new line {new_line}");
                    Ok(EXIT_OK)
                }
                Err(e) => answer(e),
            }
        }
        ReceiveCommand::Decide {
            config,
            delivery,
            line,
            staff,
            json,
        } => {
            let (config, store) = open_site(&config.config, format)?;
            let out =
                runtime()?.block_on(wf::decide(&store, &config, &delivery, line, &staff, now));
            store.close();
            match out {
                Ok(d) if json => print_json(&d).map(|_| EXIT_OK),
                Ok(d) => {
                    print!("{}", crate::cli_output::DecisionView(&d));
                    Ok(EXIT_OK)
                }
                Err(e) => answer(e),
            }
        }
        ReceiveCommand::Release {
            config,
            delivery,
            line,
            release,
            reject,
            staff,
            reason,
        } => {
            let (config, store) = open_site(&config.config, format)?;
            let out = runtime()?.block_on(wf::resolve(
                &store, &config, &delivery, line, release, reject, &staff, &reason, now,
            ));
            store.close();
            match out {
                Ok(()) => {
                    println!(
                        "delivery {delivery} line {line}: {release} released into stock, {reject} rejected"
                    );
                    Ok(EXIT_OK)
                }
                Err(e) => answer(e),
            }
        }
        ReceiveCommand::Dispute {
            config,
            delivery,
            staff,
            note,
            close,
        } => {
            let (_config, store) = open_site(&config.config, format)?;
            let id = delivery.clone();
            let out = store.write_blocking(move |c| {
                if close {
                    rs::close_dispute(c, &id, &staff, &note, now)
                } else {
                    rs::open_dispute(c, &id, &staff, &note, now)
                }
            });
            store.close();
            match out {
                Ok(()) if close => {
                    println!(
                        "delivery {delivery}: dispute closed; its evidence follows the retention policy again"
                    );
                    Ok(EXIT_OK)
                }
                Ok(()) => {
                    println!(
                        "delivery {delivery}: dispute opened; its photos and decisions are kept until it is closed"
                    );
                    Ok(EXIT_OK)
                }
                Err(e) => answer(e),
            }
        }
        ReceiveCommand::Close {
            config,
            delivery,
            staff,
            json,
        } => {
            let (config, store) = open_site(&config.config, format)?;
            let out = runtime()?.block_on(wf::close(&store, &config, &delivery, &staff, now));
            store.close();
            match out {
                Ok(ds) if json => print_json(&ds).map(|_| EXIT_OK),
                Ok(ds) => {
                    println!(
                        "delivery {delivery} closed; {} line(s) decided now",
                        ds.len()
                    );
                    ds.iter()
                        .for_each(|d| print!("{}", crate::cli_output::DecisionView(d)));
                    Ok(EXIT_OK)
                }
                Err(e) => answer(e),
            }
        }
        ReceiveCommand::Photo {
            config,
            station,
            file,
            json,
        } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("cannot read photo {}: {e}", file.display()))?;
            let config = Config::load(&config.config)?;
            telemetry::init(&config.log.level, log_format(format, Some(&config)));
            let vision = crate::vision::start(&config.vision)?;
            let store = daemon::open_store(&config)?;
            let data_dir = config.store.data_dir.clone();
            let out = runtime()?.block_on(crate::vision::photo_for_station(
                &store, &vision, &data_dir, &station, bytes, now,
            ));
            store.close();
            vision.stop();
            match out {
                Ok(r) if json => print_json(&r).map(|_| EXIT_OK),
                Ok(r) => {
                    println!(
                        "photo {:?} recorded for delivery {} line {} ({} lot {}): {}",
                        r.evidence.verdict,
                        r.selected.delivery_id,
                        r.selected.line_no,
                        r.selected.sku,
                        r.selected.lot,
                        r.evidence.reasons.join("; ")
                    );
                    if let Some(problem) = &r.storage_problem {
                        eprintln!("warning: {problem}");
                    }
                    Ok(EXIT_OK)
                }
                Err(crate::vision::PhotoError::Receiving(e)) => answer(e),
                Err(e) => Err(e.into()),
            }
        }
        ReceiveCommand::Show {
            config,
            delivery,
            json,
        } => {
            let (_config, store) = open_site(&config.config, format)?;
            let id = delivery.clone();
            let decisions = store.read_blocking(move |c| rs::decisions(c, &id))?;
            store.close();
            if json {
                print_json(&decisions)?;
            } else if decisions.is_empty() {
                println!("delivery {delivery}: no line decided yet");
            } else {
                decisions
                    .iter()
                    .for_each(|d| print!("{}", crate::cli_output::DecisionView(d)));
            }
            Ok(EXIT_OK)
        }
    }
}

/// Starts the vision adapter when `[vision]` enables it (backend first, then the model).
fn start_vision_if_enabled(
    settings: &crate::vision::VisionSettings,
) -> Result<Option<crate::vision::VisionService>, Failure> {
    if !settings.enabled {
        return Ok(None);
    }
    Ok(Some(crate::vision::start(settings)?))
}

struct CheckImageArgs {
    file: PathBuf,
    sku: String,
    config: Option<PathBuf>,
    expect: Vec<String>,
    min_probability: f32,
    allow_model_reject: bool,
    json: bool,
}

fn check_image(args: CheckImageArgs, format: Option<LogFormatArg>) -> Result<i32, Failure> {
    use hub_vision::{ExpectedLabel, Outcome, SkuRule};
    let config = args.config.as_deref().map(Config::load).transpose()?;
    match &config {
        Some(c) => telemetry::init("warn", log_format(format, Some(c))),
        None => telemetry::init("warn", log_format(format, None)),
    }
    let settings = config
        .as_ref()
        .map(|c| c.vision.clone())
        .unwrap_or_default();
    let rule = if args.expect.is_empty() {
        settings.rule_for(&args.sku).cloned().ok_or_else(|| Failure {
            code: EXIT_INVALID,
            error: anyhow::anyhow!(
                "no vision rule for SKU {}: give --expect (class ids or label names, e.g. --expect 950,951) or add a [[vision.rules]] entry to the config",
                args.sku
            ),
        })?
    } else {
        SkuRule {
            sku: args.sku.clone(),
            expected: args
                .expect
                .iter()
                .map(|e| match e.trim().parse::<u32>() {
                    Ok(id) => ExpectedLabel::Id(id),
                    Err(_) => ExpectedLabel::Name(e.trim().to_owned()),
                })
                .collect(),
            top_k: 5,
            min_probability: args.min_probability,
            allow_model_reject: args.allow_model_reject,
        }
    };
    rule.validate().map_err(|e| Failure {
        code: EXIT_INVALID,
        error: e.into(),
    })?;
    let bytes = std::fs::read(&args.file)
        .map_err(|e| anyhow::anyhow!("cannot read photo {}: {e}", args.file.display()))?;
    let vision = crate::vision::start(&settings)?;
    let result = vision
        .handle
        .check_blocking(bytes, rule, Some(args.file.clone()));
    let backend = vision.backend.clone();
    vision.stop();
    let report =
        result.map_err(|e| anyhow::anyhow!("cannot check {}: {e}", args.file.display()))?;
    let e = &report.evidence;
    if args.json {
        print_json(e)?;
    } else {
        println!("{}: {:?} for SKU {}", args.file.display(), e.outcome, e.sku);
        for reason in &e.reasons {
            println!("  reason: {reason}");
        }
        for p in &e.top_k {
            println!(
                "  {:>6.1}%  #{:<4} {}",
                p.probability * 100.0,
                p.class_id,
                p.label
            );
        }
        println!(
            "  model {} ({}), backend {backend}, {:.1} ms",
            e.model_name,
            &e.model_sha256[..e.model_sha256.len().min(12)],
            e.timings.total_ms
        );
    }
    Ok(if e.outcome == Outcome::Pass {
        EXIT_OK
    } else {
        EXIT_REFUSED
    })
}

/// A folder named `rel` in the current directory, the executable's folder, or any parent.
fn find_upwards(rel: &str) -> Option<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(std::path::Path::to_owned));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(std::path::Path::to_owned))
    {
        roots.extend(dir.ancestors().map(std::path::Path::to_owned));
    }
    roots.into_iter().map(|r| r.join(rel)).find(|p| p.is_dir())
}

fn bench_vision(
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
fn bench_dir(data_dir: Option<PathBuf>, config: Option<PathBuf>) -> Result<PathBuf, Failure> {
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
fn finish_bench(
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

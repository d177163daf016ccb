//! Command-line interface: the argument tree, a dispatch that only routes, and the one
//! exit-code policy ([`Exit`]). Each command group has its own submodule: `run` (the daemon,
//! the demo, `check-config`, `sync check`), `stock` (stock, ledger, SKUs, traces, alerts,
//! report), `pickup`, `receive`, `stations` (tablets and staff), `devices` (with `hub sim`),
//! `vision` (`check-image`) and `benchmarks`.
//!
//! Exit codes: 0 success; 1 the command failed (message on stderr); 2 bad usage or an invalid
//! configuration; 3 the ledger or the database file does not verify; 4 a benchmark ran but
//! missed its targets; 5 the hub refused what was asked (a wrong pickup code, a photo that
//! fails its check, a trace with nothing to show).

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
mod import;
mod pickup;
mod receive;
mod run;
mod stations;
mod stock;
mod vision;

use benchmarks::BenchCommand;
use devices::{SimCommand, devices_command, sim_command};
use pickup::{PickupCommand, pickup_command};
use receive::{ReceiveCommand, receive_command};
use run::{CheckConfigArgs, DemoArgs, RunArgs};
use stations::{StaffCommand, StationCommand, staff_command, station_command};
use stock::{AlertsArgs, ReportArgs, StockArgs, TraceArgs};
use vision::{CheckImageArgs, check_image, start_vision_if_enabled};

/// The process exit code of every `hub` command: one policy, listed in the module header, the
/// README and `hub --help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The command did what was asked.
    Ok = 0,
    /// The command failed; the message on stderr says why and what to do.
    Failed = 1,
    /// Bad usage or an invalid configuration.
    Invalid = 2,
    /// The ledger or the database file does not verify.
    LedgerMismatch = 3,
    /// A benchmark ran but missed its targets.
    BelowTarget = 4,
    /// The hub refused what was asked (a wrong pickup code, a photo that fails its check, a
    /// trace with nothing to show): the answer is on stdout, nothing went wrong.
    Refused = 5,
}

#[derive(Debug, Parser)]
#[command(
    name = "hub",
    version,
    about = "Edge hub for community front warehouses and pickup points",
    after_help = "Exit codes: 0 success; 1 the command failed (the message says why and what to do); \
                  2 bad usage or an invalid configuration; 3 the ledger or the database file does \
                  not verify; 4 a benchmark ran but missed its targets; 5 refused (wrong pickup \
                  code, a refused handover or receiving step, a photo that fails its check)."
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
    Run(RunArgs),
    /// Check a configuration file and list every problem in it.
    CheckConfig(CheckConfigArgs),
    /// Show stock balances per SKU and batch.
    Stock(StockArgs),
    /// Stock ledger maintenance.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Run a built-in scenario on a temporary site, with no external service.
    Demo(DemoArgs),
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
    /// Station tablets: pair one to a declared station, list, revoke.
    Station {
        #[command(subcommand)]
        command: StationCommand,
    },
    /// Staff who sign in on station tablets: add, list, disable.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
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
    Trace(TraceArgs),
    /// Open alerts (stock tiers, expiry, lockouts, backlog), worst first.
    Alerts(AlertsArgs),
    /// Operations report: stock-out rate, turnover, loss rate, acceptance, handovers, dispute
    /// response (first response within 30 min, photos inspected within 2 h) and settlement
    /// times, and forecast accuracy per unit kind: the WAPE of the one-day-ahead forecast the
    /// hub made and stored each day (from earlier days only) against what was handed over, on
    /// the listed SKU-days with history that did not end in a stock-out; such SKU-days without
    /// a stored forecast are left out and counted (`forecast_sku_days_missing`).
    Report(ReportArgs),
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
    /// Load SKU master data from a JSON file: a `sku_upsert` command exactly as central sends
    /// it (docs/mqtt.md), or an array of them. Every error is listed at once.
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
    code: Exit,
    error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        let error = error.into();
        let code = if error.downcast_ref::<crate::config::ConfigError>().is_some() {
            Exit::Invalid
        } else {
            Exit::Failed
        };
        Failure { code, error }
    }
}

/// Parses arguments, runs the command and returns the process exit code.
pub fn main() -> i32 {
    hub_mqtt::install_crypto_provider();
    let cli = Cli::parse();
    if cli.command.prints_and_exits() {
        restore_default_sigpipe();
    }
    match dispatch(cli) {
        Ok(code) => code as i32,
        Err(Failure { code, error }) => {
            eprintln!("error: {error:#}");
            code as i32
        }
    }
}

impl Command {
    /// Commands that read or change the store, print, and exit. Their output is often piped
    /// into `head` or `grep -m1`; the daemon, the demo's server, the benchmarks and the device
    /// simulators are not (they also write to sockets and child processes' pipes).
    fn prints_and_exits(&self) -> bool {
        !matches!(
            self,
            Command::Run(_) | Command::Demo(_) | Command::Bench { .. } | Command::Sim { .. }
        )
    }
}

/// Rust starts every program with SIGPIPE ignored, so `println!` into a pipe whose reader has
/// gone (`hub stock --json | head -1`) panics with "failed printing to stdout". A command that
/// only prints should end quietly there, as `cat` or `grep` do: restore the default action.
/// Everything it wrote to the store was committed before it printed.
#[expect(
    unsafe_code,
    reason = "the C library's signal(2); no safe wrapper in std"
)]
fn restore_default_sigpipe() {
    // SAFETY: setting a signal's disposition to SIG_DFL at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
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

fn dispatch(cli: Cli) -> Result<Exit, Failure> {
    match cli.command {
        Command::Run(args) => run::run(args, cli.log_format),
        Command::CheckConfig(args) => run::check_config(args),
        Command::Stock(args) => stock::stock(args, cli.log_format),
        Command::Ledger { command } => stock::ledger_command(command, cli.log_format),
        Command::Demo(args) => run::demo(args, cli.log_format),
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
        Command::Devices {
            config,
            limit,
            json,
        } => devices_command(&config.config, limit, json, cli.log_format),
        Command::Sim { command } => sim_command(command, cli.log_format),
        Command::Receive { command } => receive_command(command, cli.log_format),
        Command::Trace(args) => stock::trace(args, cli.log_format),
        Command::Pickup { command } => pickup_command(command, cli.log_format),
        Command::Station { command } => station_command(command, cli.log_format),
        Command::Staff { command } => staff_command(command, cli.log_format),
        Command::Alerts(args) => stock::alerts(args, cli.log_format),
        Command::Report(args) => stock::report(args, cli.log_format),
        Command::Simulate(args) => simulate_command(args, cli.log_format),
        Command::Sync { command } => run::sync_command(command, cli.log_format),
        Command::Sku { command } => stock::sku_command(command, cli.log_format),
        Command::Bench { command } => benchmarks::bench_command(command, cli.log_format),
        Command::VisionTractBench { args } => match hub_vision::run_tract_infer_child(&args) {
            Ok(line) => {
                println!("{line}");
                Ok(Exit::Ok)
            }
            Err(e) => Err(anyhow::anyhow!("tract bench child: {e}").into()),
        },
        Command::Dev {
            command: DevCommand::ReceiveLoop { db, prefix, limit },
        } => {
            crate::tools::dev::receive_loop(&db, &prefix, limit)?;
            Ok(Exit::Ok)
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
            Ok(Exit::Ok)
        }
    }
}

/// Loads a site's config, sets up logging and opens its store.
/// `hub simulate`: settings from the file, then the flags; every bad setting named at once.
fn simulate_command(args: SimulateArgs, format: Option<LogFormatArg>) -> Result<Exit, Failure> {
    use crate::tools::simulate::{self, SimulateSettings};
    let invalid = |error: anyhow::Error| Failure {
        code: Exit::Invalid,
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
                    code: Exit::Failed,
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
            code: Exit::Failed,
            error: anyhow::anyhow!("cannot write the chart to {}: {e}", path.display()),
        })?;
    }
    if args.json {
        print_json(&out)?;
    } else {
        print!("{}", simulate::render_text(&out));
    }
    Ok(Exit::Ok)
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

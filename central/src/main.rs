//! `central`: the reference central consumer's command line.
//!
//! Exit codes: 0 success; 1 the command failed (message on stderr); 2 bad usage; 4 a benchmark
//! measured and missed its target.

use central::{CentralOptions, report, send_command};
use clap::{Args, Parser, Subcommand, ValueEnum};
use hub_contract::{CONTRACT_VERSION, CommandOut};
use hub_mqtt::{BrokerAddress, Connection};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

const EXIT_FAILED: u8 = 1;
const EXIT_INVALID: u8 = 2;
/// `central bench ingest`: measured, and one consumer below half the raw batched rate.
const EXIT_BELOW_TARGET: u8 = 4;

#[derive(Debug, Parser)]
#[command(
    name = "central",
    version,
    about = "Reference central consumer: receive every site's events, report what is held, send commands"
)]
struct Cli {
    /// Log output format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant, reason = "parsed once per process")]
enum Command {
    /// Receive every site's events until stopped (SIGINT or SIGTERM).
    Run {
        #[command(flatten)]
        broker: BrokerArgs,
        /// Client key (PEM) for the client certificate.
        #[arg(long = "key", visible_alias = "client-key")]
        tls_key: Option<PathBuf>,
        /// Central's own SQLite database (one consumer, a small fleet).
        #[arg(long, conflicts_with = "postgres")]
        db: Option<PathBuf>,
        /// The fleet's PostgreSQL database, shared by any number of consumers:
        /// `host=… port=… user=… dbname=…` or `postgresql://user@host:port/db`.
        #[arg(long)]
        postgres: Option<String>,
        /// Share the uplink with the other consumers of this group (MQTT shared subscription
        /// `$share/<group>/hub/v1/+/up/#`); give each consumer its own --client-id.
        #[arg(long)]
        share_group: Option<String>,
        /// Serve the read-only fleet page, /fleet.json and /metrics on this address
        /// (e.g. 127.0.0.1:9464).
        #[arg(long)]
        http: Option<std::net::SocketAddr>,
        /// File holding the token the fleet page requires (required off loopback).
        #[arg(long)]
        http_token_file: Option<PathBuf>,
        /// Seconds a resend request stands before a gap still open is asked for again (the
        /// request, its answer or the consumer that sent it was lost). Shared by every
        /// consumer of the database through its lease row; give all consumers the same value.
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        resend_lease: u64,
    },
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Print every site of the fleet, worst first: online/offline, heartbeat, hub version,
    /// outbox, events today, gaps open and for how long, red alerts, devices offline.
    Fleet {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
    },
    /// Print what central holds per site: events, contiguous sequence, gaps, duplicates.
    Report {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
    },
    /// Publish what N hubs would, through the broker (events, backlog, duplicates, withheld
    /// markers, gaps filled on request), until central confirmed every site's events.
    SimFleet {
        #[command(flatten)]
        broker: BrokerArgs,
        #[arg(long, default_value_t = 100)]
        sites: usize,
        /// Events per site.
        #[arg(long, default_value_t = 100)]
        events: usize,
        /// Site ids are `<prefix>-<n>`.
        #[arg(long, default_value = "sim")]
        site_prefix: String,
        /// Give up after this many seconds without every site confirmed (exit 1).
        #[arg(long, default_value_t = 600)]
        timeout_s: u64,
    },
    /// Send one command down to a site and wait for the broker's acknowledgement.
    Send {
        #[command(flatten)]
        broker: BrokerArgs,
        /// Client key (PEM) for the client certificate (`--key` names the command's key here).
        #[arg(long = "client-key")]
        tls_key: Option<PathBuf>,
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
enum BenchCommand {
    /// Ingest from MQTT into PostgreSQL (1 and 2 consumers) against raw batched INSERTs of
    /// the same rows, on a private cluster and Mosquitto started for the run.
    Ingest {
        #[arg(long, default_value_t = 200)]
        sites: usize,
        /// Backlog events per site (one hour of a busy site).
        #[arg(long, default_value_t = 360)]
        events: usize,
        /// Live events for the latency run.
        #[arg(long, default_value_t = 3000)]
        live_events: usize,
        /// Also write the figures as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

/// Which store a read-only command reads.
#[derive(Debug, Args, Clone)]
struct StoreArgs {
    /// Central's SQLite database.
    #[arg(long, conflicts_with = "postgres")]
    db: Option<PathBuf>,
    /// The fleet's PostgreSQL database (connection settings).
    #[arg(long)]
    postgres: Option<String>,
}

impl StoreArgs {
    fn fleet_source(&self) -> Result<central::web::FleetSource, Failure> {
        match (&self.db, &self.postgres) {
            (Some(db), None) => Ok(central::web::FleetSource::Sqlite(db.clone())),
            (None, Some(pg)) => Ok(central::web::FleetSource::postgres(pg)),
            _ => Err(invalid("--db or --postgres is required".into())),
        }
    }

    fn report(&self) -> Result<central::CentralReport, Failure> {
        match (&self.db, &self.postgres) {
            (Some(db), None) => Ok(report(db)?),
            (None, Some(pg)) => {
                use central::EventStore;
                Ok(central::PgStore::open_for_reading(pg)?.report()?)
            }
            _ => Err(invalid("--db or --postgres is required".into())),
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// How to reach the broker.
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
    #[arg(long, visible_alias = "client-cert")]
    cert: Option<PathBuf>,
}

/// A failure with the exit code it maps to.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure {
            code: EXIT_FAILED,
            error: error.into(),
        }
    }
}

fn invalid(message: String) -> Failure {
    Failure {
        code: EXIT_INVALID,
        error: anyhow::anyhow!(message),
    }
}

impl BrokerArgs {
    fn connection(&self, client_id: &str, tls_key: Option<PathBuf>) -> Result<Connection, Failure> {
        let url = self
            .broker
            .as_deref()
            .ok_or_else(|| invalid("--broker is required".into()))?;
        let broker = BrokerAddress::parse(url).map_err(|e| invalid(e.to_string()))?;
        let mut c = Connection::plain(broker, client_id);
        c.username = self.username.clone();
        c.password_file = self.password_file.clone();
        c.ca_file = self.ca_file.clone();
        c.client_cert_file = self.cert.clone();
        c.client_key_file = tls_key;
        Ok(c)
    }
}

fn main() -> ExitCode {
    hub_mqtt::install_crypto_provider();
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, error }) => {
            eprintln!("error: {error:#}");
            ExitCode::from(code)
        }
    }
}

/// Logs go to stderr (stdout stays for the report); `RUST_LOG` overrides `level`. Text logs
/// are coloured only on a terminal without `NO_COLOR`.
fn init_logs(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// Resolves when SIGINT or SIGTERM arrives.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn dispatch(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Bench(BenchCommand::Ingest {
            sites,
            events,
            live_events,
            json,
        }) => {
            init_logs("warn", cli.log_format);
            let options = central::bench::BenchOptions {
                sites,
                events_per_site: events,
                live_events,
            };
            let outcome = runtime()?.block_on(central::bench::ingest(&options))?;
            print!("{outcome}");
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_vec_pretty(&outcome)?)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            }
            if outcome.below_target {
                return Err(Failure {
                    code: EXIT_BELOW_TARGET,
                    error: anyhow::anyhow!(
                        "one consumer ingested {:.2}× the raw batched rate (target 0.5×)",
                        outcome.ratio_1_consumer_to_raw
                    ),
                });
            }
            Ok(())
        }
        Command::Fleet { store, json } => {
            let view = store.fleet_source()?.fleet(now_ms())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                print!("{view}");
            }
            Ok(())
        }
        Command::Report { store, json } => {
            let report = store.report()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            Ok(())
        }
        Command::Send {
            broker,
            tls_key,
            site,
            kind,
            key,
            version,
            body,
            id,
        } => {
            init_logs("error", cli.log_format);
            let body_text = match body.strip_prefix('@') {
                Some(file) => std::fs::read_to_string(file)?,
                None => body,
            };
            let body: serde_json::Value = serde_json::from_str(&body_text)
                .map_err(|e| invalid(format!("--body is not JSON: {e}")))?;
            let command = CommandOut {
                v: CONTRACT_VERSION,
                id: id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                site,
                kind,
                key,
                version,
                body,
            };
            let connection = broker.connection(
                &format!("hub-central-send-{}", uuid::Uuid::new_v4()),
                tls_key,
            )?;
            runtime()?.block_on(send_command(&connection, &command))?;
            println!("command {} sent to site {}", command.id, command.site);
            Ok(())
        }
        Command::SimFleet {
            broker,
            sites,
            events,
            site_prefix,
            timeout_s,
        } => {
            init_logs("warn", cli.log_format);
            let connection = broker.connection(&format!("{site_prefix}-fleet-sim"), None)?;
            let mut options = central::fleet_sim::FleetSimOptions::new(connection, sites, events);
            options.site_prefix = site_prefix;
            let started = std::time::Instant::now();
            let report = runtime()?.block_on(async {
                tokio::time::timeout(
                    std::time::Duration::from_secs(timeout_s),
                    central::fleet_sim::run(options, CancellationToken::new(), true),
                )
                .await
            });
            let report = report.map_err(|_| {
                anyhow::anyhow!("central did not confirm every site within {timeout_s} s")
            })??;
            println!(
                "{} sites, {} events ({} messages with copies and resends) confirmed by central in {:.1} s; {} events held back, {} resend requests",
                sites,
                report.events,
                report.messages,
                started.elapsed().as_secs_f64(),
                report.lost.len(),
                report.resend_requests.len()
            );
            Ok(())
        }
        Command::Run {
            broker,
            tls_key,
            db,
            postgres,
            share_group,
            http,
            http_token_file,
            resend_lease,
        } => {
            init_logs("info", cli.log_format);
            if db.is_none() && postgres.is_none() {
                return Err(invalid("--db is required (or --postgres)".into()));
            }
            let connection = broker.connection(&broker.client_id, tls_key)?;
            let mut options = CentralOptions::new(connection, db.unwrap_or_default());
            let source = match (&postgres, &options.db) {
                (Some(pg), _) => central::web::FleetSource::postgres(pg),
                (None, db) => central::web::FleetSource::Sqlite(db.clone()),
            };
            options.postgres = postgres;
            options.share_group = share_group;
            options.resend_lease = std::time::Duration::from_secs(resend_lease);
            let token = match &http_token_file {
                Some(file) => Some(
                    std::fs::read_to_string(file)
                        .map_err(|e| {
                            invalid(format!(
                                "cannot read --http-token-file {}: {e}",
                                file.display()
                            ))
                        })?
                        .trim()
                        .to_owned(),
                ),
                None => None,
            };
            let metrics = options.metrics.clone();
            runtime()?.block_on(async {
                let shutdown = CancellationToken::new();
                let trigger = shutdown.clone();
                tokio::spawn(async move {
                    stop_signal().await;
                    trigger.cancel();
                });
                if let Some(addr) = http {
                    let server = central::web::WebServer::bind(addr, token.as_deref())
                        .await
                        .map_err(|e| invalid(e.to_string()))?;
                    tracing::info!(url = %format!("http://{}/", server.local_addr()), "fleet page");
                    tokio::spawn(server.serve(source, metrics, token, shutdown.clone()));
                }
                central::run(options, shutdown).await.map_err(Failure::from)
            })?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_argument_tree_is_consistent() {
        // Two arguments of one command under one name (`send`'s `--key` and a TLS key) made
        // clap panic at parse time.
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "central",
            "send",
            "--broker",
            "mqtts://b",
            "--client-key",
            "k.pem",
            "--cert",
            "c.pem",
            "--site",
            "s1",
            "--kind",
            "sku_upsert",
            "--key",
            "MILK-1L",
            "--version",
            "2",
            "--body",
            "{}",
        ])
        .unwrap();
        let Command::Send { tls_key, key, .. } = cli.command else {
            panic!("{cli:?}")
        };
        assert_eq!(
            (tls_key.unwrap(), key.as_str()),
            (PathBuf::from("k.pem"), "MILK-1L")
        );
        let cli = Cli::try_parse_from([
            "central",
            "run",
            "--broker",
            "mqtts://b",
            "--db",
            "c.sqlite",
            "--key",
            "k.pem",
        ])
        .unwrap();
        let Command::Run { tls_key, .. } = cli.command else {
            panic!("{cli:?}")
        };
        assert_eq!(tls_key, Some(PathBuf::from("k.pem")));
    }
}

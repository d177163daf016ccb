//! `central`: the reference central consumer's command line.
//!
//! Exit codes: 0 success; 1 the command failed (message on stderr); 2 bad usage.

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
        /// Central's own SQLite database.
        #[arg(long)]
        db: Option<PathBuf>,
    },
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
        Command::Report { db, json } => {
            let report = report(&db)?;
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
        Command::Run {
            broker,
            tls_key,
            db,
        } => {
            init_logs("info", cli.log_format);
            let db = db.ok_or_else(|| invalid("--db is required".into()))?;
            let connection = broker.connection(&broker.client_id, tls_key)?;
            let options = CentralOptions::new(connection, db);
            runtime()?.block_on(async {
                let shutdown = CancellationToken::new();
                let trigger = shutdown.clone();
                tokio::spawn(async move {
                    stop_signal().await;
                    trigger.cancel();
                });
                central::run(options, shutdown).await
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

//! Running the hub: the daemon (`hub run`), the demo, and the checks a technician runs before
//! (`hub check-config`, `hub sync check`).

use super::*;

#[derive(Debug, Args)]
pub(super) struct RunArgs {
    #[command(flatten)]
    pub(super) config: ConfigArg,
    /// Start a new, empty database on purpose where the site's stream marker says one
    /// existed (the database is missing or empty); its events get a new stream. Without
    /// it the hub refuses to start then. Ignored when the database exists.
    #[arg(long)]
    pub(super) new_database: bool,
}

#[derive(Debug, Args)]
pub(super) struct CheckConfigArgs {
    pub(super) file: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub(super) json: bool,
    /// Check the file alone, not the TLS/credential files and serial devices it names
    /// (for a config written on another machine).
    #[arg(long)]
    pub(super) syntax_only: bool,
}

#[derive(Debug, Args)]
pub(super) struct DemoArgs {
    /// Keep the demo hub running until Ctrl-C.
    #[arg(long)]
    pub(super) keep_running: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub(super) json: bool,
    /// With --keep-running: where to serve the status page (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub(super) status_listen: std::net::SocketAddr,
    /// Token the status page requires (needed when --status-listen is not loopback).
    #[arg(long, env = "HUB_STATUS_TOKEN", hide_env_values = true)]
    pub(super) status_token: Option<String>,
}

pub(super) fn run(args: RunArgs, log: Option<LogFormatArg>) -> Result<Exit, Failure> {
    let RunArgs {
        config: args,
        new_database,
    } = args;
    let config = Config::load(&args.config)?;
    telemetry::init(&config.log.level, log_format(log, Some(&config)));
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
    Ok(Exit::Ok)
}

pub(super) fn check_config(args: CheckConfigArgs) -> Result<Exit, Failure> {
    let CheckConfigArgs {
        file,
        json,
        syntax_only,
    } = args;
    match Config::load(&file) {
        Ok(config) => {
            let mut machine = if syntax_only {
                crate::config::MachineCheck::default()
            } else {
                config.check_machine()
            };
            // The status page's certificate and key: readable, PEM, and made for each other.
            if let (false, true, Some(tls)) =
                (syntax_only, config.status.enabled, &config.status.tls)
                && let Err(e) = crate::status::tls::server_config(tls)
            {
                machine.problems.push(crate::config::Problem {
                    path: "status.tls_cert_file".into(),
                    message: e.to_string(),
                });
            }
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
            Ok(if valid { Exit::Ok } else { Exit::Invalid })
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
            Ok(Exit::Invalid)
        }
        Err(e) => Err(Failure {
            code: Exit::Invalid,
            error: e.into(),
        }),
    }
}

pub(super) fn demo(args: DemoArgs, log: Option<LogFormatArg>) -> Result<Exit, Failure> {
    let DemoArgs {
        keep_running,
        json,
        status_listen,
        status_token,
    } = args;
    telemetry::init("error,rumqttd=off", log_format(log, None));
    let status_token = status_token.filter(|t| !t.is_empty());
    if keep_running {
        if let Some(token) = &status_token {
            crate::config::check_status_token(token).map_err(|m| Failure {
                code: Exit::Invalid,
                error: anyhow::anyhow!("--status-token {m}"),
            })?;
        } else if !status_listen.ip().is_loopback() {
            return Err(Failure {
                code: Exit::Invalid,
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
        let stations = crate::tools::demo_station::set_up(&store, &config, now)?;
        let board = demo::demo_board(&summary, now);
        let data_dir = dir.path().display().to_string();
        rt.block_on(async {
            let shutdown = CancellationToken::new();
            let trigger = shutdown.clone();
            tokio::spawn(async move {
                daemon::stop_signal().await;
                trigger.cancel();
            });
            daemon::run_with_vision(config, store.clone(), board, vision, shutdown, |started| {
                if let Some(url) = &started.status_url {
                    eprintln!("status page: {url}");
                    eprint!(
                        "{}",
                        crate::tools::demo_station::instructions(url, &stations)
                    );
                }
                eprintln!("demo hub keeps running on {data_dir}; press Ctrl-C to stop");
            })
            .await
        })?;
    } else {
        store.close();
        if let Some(v) = vision.and_then(|v| std::sync::Arc::try_unwrap(v).ok()) {
            v.stop();
        }
    }
    Ok(if summary.verify.ok() {
        Exit::Ok
    } else {
        Exit::LedgerMismatch
    })
}

pub(super) fn sync_command(
    command: SyncCommand,
    log: Option<LogFormatArg>,
) -> Result<Exit, Failure> {
    let SyncCommand::Check(args) = command;
    let config = Config::load(&args.config)?;
    telemetry::init(&config.log.level, log_format(log, Some(&config)));
    let Some(uplink) = &config.uplink else {
        return Err(Failure {
            code: Exit::Invalid,
            error: anyhow::anyhow!("{} has no [uplink] section", args.config.display()),
        });
    };
    let settings = crate::sync::uplink::UplinkSettings::from_config(uplink);
    let session = runtime()?.block_on(hub_mqtt::connect_once(&settings.connection))?;
    println!(
        "connected to {} as {} (broker {} a session for it)",
        uplink.connection.broker,
        uplink.connection.client_id,
        if session { "kept" } else { "had no" }
    );
    Ok(Exit::Ok)
}

//! The daemon's lifecycle: start the tasks, wait for a stop signal, drain, flush the store last.
//!
//! Start-up order: config is already validated; open the store (checked against the site's
//! stream marker, then migrations run); spawn each adapter task under one `TaskTracker` with a
//! child of the shutdown token; wait. On stop, tasks get `grace` to finish; the stream marker
//! records how far the stream got; the store is closed last so everything they wrote is
//! committed.
//!
//! Under systemd (`Type=notify`) the daemon reports READY=1 once its tasks run, feeds the
//! watchdog while the store answers, and reports STOPPING=1 when it starts draining.
//!
//! Adapters spawned here take a clone of the `StatusBoard` passed to [`run_with`] and report
//! what only they know (uplink state, devices, the vision model) to it; see `crate::status`.

use crate::config::Config;
use crate::status::server::{ServeOptions, StatusServer};
use crate::status::{StatusBoard, StatusSource};
use crate::store::{Store, outbox};
use crate::systemd;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// SIGINT and SIGTERM, caught from the moment this is created. Created first, before
/// anything that takes time (the model, migrations), so a stop signal during start-up ends the
/// daemon cleanly once it is up instead of killing it half-way.
pub struct StopSignal {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl StopSignal {
    /// Installs the handlers now (inside a runtime).
    pub fn install() -> std::io::Result<StopSignal> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignal {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(StopSignal {})
        }
    }

    /// Resolves when SIGINT or SIGTERM arrived (also one that came before this was awaited).
    pub async fn wait(mut self) {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => {}
                _ = self.int.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Resolves when SIGINT or SIGTERM arrives (handlers installed on the first poll; the daemon
/// itself uses [`StopSignal`], installed before start-up).
pub async fn stop_signal() {
    match StopSignal::install() {
        Ok(signal) => signal.wait().await,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Opens the site's store with the configured options, checked against the site's stream
/// marker (a missing or rewound database is refused or starts a new stream, see
/// `crate::incarnation`).
pub fn open_store(config: &Config) -> Result<Store, crate::incarnation::IncarnationError> {
    crate::incarnation::open_store(config, false, crate::clock::now())
}

/// The database failed SQLite's `quick_check`: the hub must not run on it.
#[derive(Debug, thiserror::Error)]
#[error(
    "database {path} is damaged: SQLite's quick_check found {} problem(s):\n{}\nThe hub will not run on a damaged database (every write would fail or damage it further). What to do: {}, then start the hub again; `hub ledger verify` lists every problem",
    problems.len(),
    problems.iter().take(10).map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"),
    crate::store::RESTORE_HINT
)]
pub struct DamagedDatabase {
    pub path: std::path::PathBuf,
    pub problems: Vec<String>,
}

/// Runs SQLite's `PRAGMA quick_check` on the store's file before the daemon starts; a damaged
/// file is refused with what to do about it.
pub fn check_database(store: &Store) -> Result<(), anyhow::Error> {
    use crate::store::integrity::{Check, check};
    let started = std::time::Instant::now();
    let problems = store.read_blocking(|c| check(c, Check::Quick))?;
    tracing::info!(
        db = %store.path().display(),
        took_ms = started.elapsed().as_millis() as u64,
        problems = problems.len(),
        "database quick_check"
    );
    if problems.is_empty() {
        return Ok(());
    }
    Err(DamagedDatabase {
        path: store.path().to_owned(),
        problems,
    }
    .into())
}

/// What the running daemon tells the code that started it.
#[derive(Debug, Clone, Default)]
pub struct Started {
    /// The status page's URL (without its token), when it is served.
    pub status_url: Option<String>,
}

/// Runs the hub until `shutdown` is cancelled, with a fresh status board.
pub async fn run(config: Config, store: Store, shutdown: CancellationToken) -> anyhow::Result<()> {
    run_with(config, store, StatusBoard::new(), shutdown, |_| {}).await
}

/// Runs the hub until `shutdown` is cancelled. Adapters report to `board`; `started` is called
/// once every task runs (before READY=1 goes to systemd).
pub async fn run_with(
    config: Config,
    store: Store,
    board: StatusBoard,
    shutdown: CancellationToken,
    started: impl FnOnce(&Started),
) -> anyhow::Result<()> {
    run_with_vision(config, store, board, None, shutdown, started).await
}

/// [`run_with`] plus the vision adapter, already started by the caller (its backend must be
/// chosen before anything else, see `crate::vision::start`): the model goes on the status board
/// and the photo spool folder and photo topics, when configured, are read. The inference thread is stopped
/// after the other tasks, before the store is closed.
pub async fn run_with_vision(
    config: Config,
    store: Store,
    board: StatusBoard,
    vision: Option<std::sync::Arc<crate::vision::VisionService>>,
    shutdown: CancellationToken,
    started: impl FnOnce(&Started),
) -> anyhow::Result<()> {
    let tracker = TaskTracker::new();
    // Photos from the bench camera (spool folder, MQTT topics) and from receiving tablets all
    // go through this one desk.
    let photo_desk = vision.as_ref().map(|v| crate::vision::PhotoDesk {
        store: store.clone(),
        vision: v.clone(),
        data_dir: config.store.data_dir.clone(),
        site: crate::workflows::Site::of(&config),
    });
    if let (Some(v), Some(desk)) = (&vision, photo_desk.clone()) {
        board.set_vision(v.board_entry());
        if let Some(source) = v.settings.spool.clone() {
            tracing::info!(dir = %source.dir.display(), station = %source.station, "watching the photo spool folder");
            tracker.spawn(crate::vision::spool_task(
                desk.clone(),
                source,
                shutdown.child_token(),
            ));
        }
        if !v.settings.photo_topics.is_empty() {
            tracker.spawn(crate::vision::photo_topic_task(
                desk,
                config.device_broker.clone(),
                v.settings.photo_topics.clone(),
                shutdown.child_token(),
            ));
        }
    }
    let started_at = crate::clock::now();
    tracing::info!(site = %config.site.id, db = %store.path().display(), "hub running");
    let mut info = Started::default();

    // What each station's screen showed before a restart comes back; a store that cannot be
    // read for it leaves the screens empty (the hub still runs).
    let feed = match crate::station_app::feed::StationFeed::durable(store.clone()).await {
        Ok(feed) => feed,
        Err(e) => {
            tracing::warn!(error = %e, "station screens before the restart cannot be read; they start empty");
            crate::station_app::feed::StationFeed::new()
        }
    };
    if config.status.enabled {
        let source = StatusSource {
            site_id: config.site.id.to_string(),
            site_name: config.site.name.clone(),
            store: store.clone(),
            board: board.clone(),
            data_dir: config.store.data_dir.clone(),
            disk: config.store.disk,
            timezone: config.site.timezone,
            started_at,
        };
        let options = ServeOptions {
            token: config.status.token.clone(),
            refresh: config.status.refresh,
            station_app: Some({
                let app = crate::station_app::StationApp::new(
                    store.clone(),
                    crate::workflows::Site::of(&config),
                    feed.clone(),
                );
                match photo_desk.clone() {
                    Some(desk) => app.with_photos(std::sync::Arc::new(desk)),
                    None => app,
                }
            }),
        };
        let listen = config.status.listen;
        let token = config.status.token.clone();
        let tls = config.status.tls.clone();
        // The status page is for people; a taken port must not stop the warehouse. Log and
        // keep trying in the background instead of failing the daemon.
        let first = StatusServer::bind(listen, token.as_deref(), tls.as_ref()).await;
        if let Ok(server) = &first {
            info.status_url = Some(server.url());
        }
        let stop = shutdown.child_token();
        tracker.spawn(serve_status(
            first, listen, token, tls, source, options, stop,
        ));
    }
    tracker.spawn(status_task(store.clone(), shutdown.child_token()));
    tracker.spawn(store_health_task(store.clone(), shutdown.child_token()));
    tracker.spawn(crate::incarnation::marker_task(
        store.clone(),
        config.marker_path(),
        config.site.id.to_string(),
        shutdown.child_token(),
    ));
    match &config.uplink {
        Some(uplink) => {
            tracing::info!(broker = %uplink.connection.broker, client_id = %uplink.connection.client_id, "uplink configured");
            let mut settings = crate::sync::uplink::UplinkSettings::from_config(uplink);
            settings.stations = Some(std::sync::Arc::new(crate::workflows::Site::of(&config)));
            settings.board = Some(board.clone());
            tracker.spawn(crate::sync::uplink::run(
                config.site.id.clone(),
                settings,
                store.clone(),
                shutdown.child_token(),
            ));
        }
        None => {
            tracing::info!("no [uplink] configured; events stay in the outbox");
            board.set_uplink(
                crate::status::Uplink::new(
                    crate::status::UplinkState::NotConfigured,
                    crate::clock::now(),
                )
                .with_detail("no [uplink] section in the config; events stay in the outbox"),
            );
        }
    }
    if let Some(interval) = systemd::watchdog_interval() {
        tracing::info!(
            interval_ms = interval.as_millis() as u64,
            "feeding the systemd watchdog"
        );
        tracker.spawn(systemd::watchdog_task(
            store.clone(),
            interval,
            shutdown.child_token(),
        ));
    }
    tracker.spawn(storage_task(
        store.clone(),
        config.store.data_dir.clone(),
        config.store.disk,
        shutdown.child_token(),
    ));
    tracker.spawn(alert_checks_task(
        store.clone(),
        crate::workflows::Site::of(&config),
        config.alerts.clone(),
        shutdown.child_token(),
    ));
    tracker.spawn(evidence_retention_task(
        store.clone(),
        config.receiving.retention,
        shutdown.child_token(),
    ));
    // Device health for the status page; the board also writes a snapshot file for
    // `hub devices`.
    let device_health = crate::devices::spawn(&config, &store, &feed, &tracker, &shutdown);
    if !config.devices.is_empty() {
        tracker.spawn(crate::devices::report_to_status(
            device_health,
            board.clone(),
            shutdown.child_token(),
        ));
    }
    tracker.close();
    started(&info);
    systemd::notify_ready();

    shutdown.cancelled().await;
    systemd::notify_stopping();
    tracing::info!(
        grace_s = config.shutdown.grace.as_secs_f64(),
        "stopping; draining tasks"
    );
    if tokio::time::timeout(config.shutdown.grace, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("tasks did not finish within the grace period; stopping anyway");
    }
    // The model stops once nothing holds it: the desk shared with the station app goes first.
    drop(photo_desk);
    if let Some(v) = vision {
        match std::sync::Arc::try_unwrap(v) {
            Ok(v) => tokio::task::spawn_blocking(move || v.stop()).await?,
            Err(_) => tracing::warn!("a photo check is still running; not waiting for it"),
        }
    }
    // The marker's last word: how far this stream got (the tasks have stopped writing).
    let (marking, marker, site) = (
        store.clone(),
        config.marker_path(),
        config.site.id.to_string(),
    );
    match tokio::task::spawn_blocking(move || {
        crate::incarnation::record(&marking, &marker, &site, crate::clock::now())
    })
    .await?
    {
        Ok(m) => {
            tracing::info!(stream = %m.stream, high_water_seq = m.high_water_seq, "stream marker recorded")
        }
        Err(e) => tracing::error!(error = %e, "cannot record the stream marker at stop"),
    }
    let closing = store.clone();
    tokio::task::spawn_blocking(move || closing.close()).await?;
    tracing::info!("store flushed; hub stopped");
    Ok(())
}

/// Keeps the red `store_write_failing` alert in the open-alert book in step with the store's
/// write faults: raised when writes start failing (if the book can still be written: a damaged
/// file may still take it, a full disk usually not), cleared when they work again. The status
/// page shows the alert from the store's live state either way (`status::StoreWriteError`),
/// and the writer logs the failure with what to do.
async fn store_health_task(store: Store, shutdown: CancellationToken) {
    use crate::store::WriteFaultKind;
    use hub_core::alerts::{Alert, AlertKind, Tier};
    let mut faults = store.subscribe_write_faults();
    // The kind the book was last told about; one attempt per kind, so that a failed attempt
    // (itself a failed write) does not start another.
    let mut raised: Option<WriteFaultKind> = None;
    // An alert left open by an earlier run is cleared once writes are seen to work.
    let mut maybe_stale = true;
    loop {
        let fault = faults.borrow_and_update().clone();
        match fault {
            Some(fault) if raised != Some(fault.kind) => {
                raised = Some(fault.kind);
                maybe_stale = false;
                let alert = Alert {
                    kind: AlertKind::StoreWriteFailing,
                    subject: "database".into(),
                    tier: Tier::Red,
                    message: fault.describe(),
                };
                let now = crate::clock::now();
                if let Err(e) = store
                    .write(move |c| crate::store::alert_book::raise(c, &alert, now))
                    .await
                {
                    tracing::warn!(error = %e, "the store_write_failing alert cannot be written to the alert book; the status page shows it");
                }
            }
            None if raised.is_some() || maybe_stale => {
                raised = None;
                maybe_stale = false;
                let now = crate::clock::now();
                if let Err(e) = store
                    .write(move |c| {
                        crate::store::alert_book::clear(
                            c,
                            AlertKind::StoreWriteFailing,
                            "database",
                            now,
                        )
                    })
                    .await
                {
                    tracing::warn!(error = %e, "cannot clear the store_write_failing alert");
                }
            }
            _ => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = faults.changed() => if changed.is_err() { return },
        }
    }
}

/// How often evidence photos are pruned (also once at start-up).
const EVIDENCE_PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// Applies `[receiving] photo_max_age_days` / `photo_max_total_mb` to the evidence photos,
/// never deleting those of held lines or of deliveries with an open dispute.
async fn evidence_retention_task(
    store: Store,
    retention: crate::evidence::Retention,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(EVIDENCE_PRUNE_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = crate::clock::now();
        match store
            .write(move |c| crate::evidence::prune(c, retention, now))
            .await
        {
            Ok(r) if r.deleted > 0 || r.kept_protected > 0 => tracing::info!(
                deleted = r.deleted,
                freed_bytes = r.freed_bytes,
                kept_protected = r.kept_protected,
                kept = r.kept,
                "evidence photos pruned"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot prune evidence photos"),
        }
    }
}

/// How often the data directory's free space is checked.
const STORAGE_CHECK_INTERVAL: Duration = Duration::from_secs(600);

/// Keeps the `disk_nearly_full` alert in step with the data directory's free space: raised
/// (orange, red below a quarter of the limits) while space is low, cleared when it is not.
async fn storage_task(
    store: Store,
    data_dir: std::path::PathBuf,
    limits: crate::storage::DiskLimits,
    shutdown: CancellationToken,
) {
    use hub_core::alerts::{Alert, AlertKind, Tier};
    let mut tick = tokio::time::interval(STORAGE_CHECK_INTERVAL);
    let mut was_low = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let dir = data_dir.clone();
        let Ok(Ok(space)) =
            tokio::task::spawn_blocking(move || crate::storage::space(&dir, limits)).await
        else {
            continue;
        };
        let low = space.is_low();
        if was_low == Some(low) {
            continue;
        }
        let subject = data_dir.display().to_string();
        let now = crate::clock::now();
        let result = if low {
            let critical = space.is_critical();
            let alert = Alert {
                kind: AlertKind::DiskNearlyFull,
                subject: subject.clone(),
                tier: if critical { Tier::Red } else { Tier::Orange },
                message: format!(
                    "{} free of {} on the data directory's filesystem",
                    crate::storage::human_bytes(space.available_bytes),
                    crate::storage::human_bytes(space.total_bytes)
                ),
            };
            tracing::warn!(data_dir = %subject, available = space.available_bytes, "data directory nearly full");
            store
                .write(move |c| crate::store::alert_book::raise(c, &alert, now))
                .await
        } else {
            store
                .write(move |c| {
                    crate::store::alert_book::clear(c, AlertKind::DiskNearlyFull, &subject, now)
                })
                .await
        };
        match result {
            Ok(_) => was_low = Some(low),
            Err(e) => tracing::error!(error = %e, "cannot record the disk space alert"),
        }
    }
}

/// How long to wait before trying again to bind the status page's address.
const STATUS_BIND_RETRY: Duration = Duration::from_secs(30);

/// Serves the status page until `shutdown`, binding again every [`STATUS_BIND_RETRY`] while
/// the address cannot be bound.
async fn serve_status(
    first: Result<StatusServer, crate::status::server::StatusError>,
    listen: std::net::SocketAddr,
    token: Option<String>,
    tls: Option<crate::config::StatusTls>,
    source: StatusSource,
    options: ServeOptions,
    shutdown: CancellationToken,
) {
    let mut attempt = first;
    loop {
        match attempt {
            Ok(server) => {
                tracing::info!(url = %server.url(), token_required = options.token.is_some(), "status page served");
                if let Err(e) = server.serve(source, options, shutdown).await {
                    tracing::error!(error = %e, "status page stopped");
                }
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, retry_s = STATUS_BIND_RETRY.as_secs(), "status page unavailable; the hub keeps working without it");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(STATUS_BIND_RETRY) => {}
        }
        attempt = StatusServer::bind(listen, token.as_deref(), tls.as_ref()).await;
    }
}

/// Logs the outbox depth now and then, so an operator can see the hub is alive.
async fn status_task(store: Store, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match store.read(outbox::stats).await {
            Ok(s) => tracing::info!(
                outbox_undelivered = s.undelivered,
                last_seq = s.last_seq,
                "status"
            ),
            Err(e) => tracing::error!(error = %e, "cannot read outbox status"),
        }
    }
}

/// Runs the periodic alert checks (stock tiers, expiry, outbox backlog) until shutdown.
async fn alert_checks_task(
    store: Store,
    site: crate::workflows::Site,
    config: crate::config::AlertsConfig,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(config.check_interval);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = crate::clock::now();
        match crate::workflows::alerts::record_day_forecasts(&store, &site, now).await {
            Ok(0) => {}
            Ok(stored) => tracing::info!(stored, "day-ahead forecasts stored for today"),
            Err(e) => tracing::error!(error = %e, "cannot store today's day-ahead forecasts"),
        }
        // The report's records of the site days closed since the last round.
        match crate::workflows::rollups::refresh_report_rollups(&store, site.timezone, now).await {
            Ok(0) => {}
            Ok(days) => tracing::info!(days, "report rollups written for closed site days"),
            Err(e) => tracing::error!(error = %e, "cannot write the report's rollups"),
        }
        match crate::workflows::alerts::run_checks(&store, &site, &config, now).await {
            Ok(round) if round.stock_actions + round.alert_changes > 0 => {
                tracing::info!(
                    stock_actions = round.stock_actions,
                    alert_changes = round.alert_changes,
                    "alert checks"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "alert checks failed"),
        }
    }
}

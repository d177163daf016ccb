//! The daemon's lifecycle: start the tasks, wait for a stop signal, drain, flush the store last.
//!
//! Start-up order: config is already validated; open the store (migrations run here); spawn
//! each adapter task under one `TaskTracker` with a child of the shutdown token; wait. On stop,
//! tasks get `grace` to finish; the store is closed last so everything they wrote is committed.
//!
//! Under systemd (`Type=notify`) the daemon reports READY=1 once its tasks run, feeds the
//! watchdog while the store answers, and reports STOPPING=1 when it starts draining.

use crate::config::Config;
use crate::status::server::{ServeOptions, StatusServer};
use crate::status::{StatusBoard, StatusSource};
use crate::store::{Store, StoreOptions, outbox};
use crate::systemd;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Opens the site's store with the configured options.
pub fn open_store(config: &Config) -> Result<Store, crate::store::StoreError> {
    Store::open(
        &config.database_path(),
        config.site.id.as_str(),
        &StoreOptions {
            queue_capacity: config.store.queue_capacity,
            max_batch: config.store.max_batch,
        },
    )
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
    let tracker = TaskTracker::new();
    let started_at = crate::clock::now();
    tracing::info!(site = %config.site.id, db = %store.path().display(), "hub running");
    let mut info = Started::default();

    if config.status.enabled {
        let server =
            StatusServer::bind(config.status.listen, config.status.token.as_deref()).await?;
        let url = server.url();
        tracing::info!(%url, token_required = config.status.token.is_some(), "status page served");
        info.status_url = Some(url);
        let source = StatusSource {
            site_id: config.site.id.to_string(),
            site_name: config.site.name.clone(),
            store: store.clone(),
            board: board.clone(),
            data_dir: config.store.data_dir.clone(),
            started_at,
        };
        let options = ServeOptions {
            token: config.status.token.clone(),
            refresh: config.status.refresh,
        };
        let stop = shutdown.child_token();
        tracker.spawn(async move {
            if let Err(e) = server.serve(source, options, stop).await {
                tracing::error!(error = %e, "status page stopped");
            }
        });
    }
    tracker.spawn(status_task(store.clone(), shutdown.child_token()));
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
    let closing = store.clone();
    tokio::task::spawn_blocking(move || closing.close()).await?;
    tracing::info!("store flushed; hub stopped");
    Ok(())
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

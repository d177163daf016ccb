//! The daemon's lifecycle: start the tasks, wait for a stop signal, drain, flush the store last.
//!
//! Start-up order: config is already validated; open the store (migrations run here); spawn
//! each adapter task under one `TaskTracker` with a child of the shutdown token; wait. On stop,
//! tasks get `grace` to finish; the store is closed last so everything they wrote is committed.

use crate::config::Config;
use crate::store::{Store, StoreOptions, outbox};
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

/// Runs the hub until `shutdown` is cancelled.
pub async fn run(config: Config, store: Store, shutdown: CancellationToken) -> anyhow::Result<()> {
    let tracker = TaskTracker::new();
    tracing::info!(site = %config.site.id, db = %store.path().display(), "hub running");

    tracker.spawn(status_task(store.clone(), shutdown.child_token()));
    match &config.uplink {
        Some(uplink) => {
            tracing::info!(broker = %uplink.broker, client_id = %uplink.client_id, "uplink configured");
            tracker.spawn(crate::sync::uplink::run(
                config.site.id.clone(),
                crate::sync::uplink::UplinkSettings::from_config(uplink),
                store.clone(),
                shutdown.child_token(),
            ));
        }
        None => tracing::info!("no [uplink] configured; events stay in the outbox"),
    }
    tracker.spawn(alert_checks_task(
        store.clone(),
        config.alerts.clone(),
        shutdown.child_token(),
    ));
    // Device health for the status page; the board also writes a snapshot file for
    // `hub devices`.
    let _device_health = crate::devices::spawn(&config, &store, &tracker, &shutdown);
    tracker.close();

    shutdown.cancelled().await;
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

/// Runs the periodic alert checks (stock tiers, expiry, outbox backlog) until shutdown.
async fn alert_checks_task(
    store: Store,
    config: crate::config::AlertsConfig,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(config.check_interval);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match crate::workflows::alerts::run_checks(&store, &config, crate::clock::now()).await {
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

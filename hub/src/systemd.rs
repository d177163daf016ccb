//! Talking to systemd: readiness, stopping, status text and the watchdog (`sd_notify`).
//!
//! Every function is a no-op when the hub is not started by systemd (`NOTIFY_SOCKET` unset),
//! so the same binary runs by hand, in tests and under the service manager. The watchdog is
//! fed only while the hub is healthy — the store's writer answers a trivial request and a read
//! within a deadline — so a wedged writer or runtime gets the service restarted.

use crate::store::{Store, StoreError, outbox};
use sd_notify::NotifyState;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn notify(state: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// Tells systemd the hub is up (store open, tasks started).
pub fn notify_ready() {
    notify(&[NotifyState::Ready, NotifyState::Status("running")]);
}

/// Tells systemd the hub is stopping (draining tasks, flushing the store).
pub fn notify_stopping() {
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// How often to feed the watchdog: half the `WatchdogSec=` systemd asked for, or `None` when
/// no watchdog is configured for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let mut usec = 0u64;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        Some(Duration::from_micros(usec / 2))
    } else {
        None
    }
}

/// Whether the store answers a no-op write (through the writer thread and its queue) and a read
/// within `deadline`. Returns the outbox depth on success, for the status line.
pub async fn store_is_healthy(store: &Store, deadline: Duration) -> Result<i64, String> {
    let probe = async {
        store.write(|_| Ok::<_, StoreError>(())).await?;
        store.read(outbox::stats).await
    };
    match tokio::time::timeout(deadline, probe).await {
        Ok(Ok(stats)) => Ok(stats.undelivered),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "the store did not answer within {} ms",
            deadline.as_millis()
        )),
    }
}

/// Feeds the systemd watchdog every `interval` while the store is healthy; returns when
/// `shutdown` is cancelled. When unhealthy it logs and skips the ping, so systemd restarts
/// the hub after `WatchdogSec=` without a ping.
pub async fn watchdog_task(store: Store, interval: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match store_is_healthy(&store, interval).await {
            Ok(undelivered) => {
                let status = format!("running; {undelivered} events waiting to send");
                notify(&[NotifyState::Watchdog, NotifyState::Status(&status)]);
            }
            Err(problem) => {
                tracing::warn!(%problem, "unhealthy; not feeding the systemd watchdog");
            }
        }
    }
}

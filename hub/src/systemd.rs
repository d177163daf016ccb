//! Talking to systemd: readiness, stopping, status text and the watchdog (`sd_notify`).
//!
//! Every function is a no-op when the hub is not started by systemd (`NOTIFY_SOCKET` unset),
//! so the same binary runs by hand, in tests and under the service manager. The watchdog is
//! fed only while the hub is healthy — the store's writer answers a trivial request and a read
//! within a deadline, and its real writes are not failing on a damaged file or failing storage
//! (`Store::write_fault`) — so a wedged writer, runtime or disk gets the service restarted,
//! and a restarted hub refuses to run on a damaged database. The loop reports to a
//! [`WatchdogSink`]: systemd in production, a recorder in tests.

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

/// Whether the store is healthy: its writes are not failing in a way a restart should handle
/// (see `WriteFaultKind::stops_watchdog`), and it answers a no-op write (through the writer
/// thread and its queue) and a read within `deadline`. Returns the outbox depth on success, for
/// the status line.
pub async fn store_is_healthy(store: &Store, deadline: Duration) -> Result<i64, Unhealthy> {
    if let Some(fault) = store.write_fault().filter(|f| f.kind.stops_watchdog()) {
        return Err(Unhealthy::WritesFailing(fault.describe()));
    }
    let probe = async {
        store.write(|_| Ok::<_, StoreError>(())).await?;
        store.read(outbox::stats).await
    };
    match tokio::time::timeout(deadline, probe).await {
        Ok(Ok(stats)) => Ok(stats.undelivered),
        Ok(Err(e)) => Err(Unhealthy::Store(e)),
        Err(_) => Err(Unhealthy::NoAnswer {
            ms: deadline.as_millis(),
        }),
    }
}

/// Why the watchdog is not fed.
#[derive(Debug, thiserror::Error)]
pub enum Unhealthy {
    /// Writes fail on a damaged file or failing storage (the fault, described for a person).
    #[error("{0}")]
    WritesFailing(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the store did not answer within {ms} ms")]
    NoAnswer { ms: u128 },
}

/// Where the watchdog loop's verdicts go.
pub trait WatchdogSink: Send + 'static {
    /// The hub is healthy: feed the watchdog, with a status line.
    fn ping(&mut self, status: &str);
    /// The hub is not healthy: do not feed the watchdog; `problem` says why.
    fn withhold(&mut self, problem: &str);
}

/// The real watchdog: `WATCHDOG=1` to systemd, and the problem as the unit's status text
/// (`systemctl status hub`) when withheld.
#[derive(Debug, Clone, Copy, Default)]
pub struct Systemd;

impl WatchdogSink for Systemd {
    fn ping(&mut self, status: &str) {
        notify(&[NotifyState::Watchdog, NotifyState::Status(status)]);
    }

    fn withhold(&mut self, problem: &str) {
        notify(&[NotifyState::Status(&format!("unhealthy: {problem}"))]);
    }
}

/// Feeds the systemd watchdog every `interval` while the store is healthy; returns when
/// `shutdown` is cancelled. When unhealthy it logs and skips the ping, so systemd restarts
/// the hub after `WatchdogSec=` without a ping.
pub async fn watchdog_task(store: Store, interval: Duration, shutdown: CancellationToken) {
    watchdog_loop(store, interval, shutdown, Systemd).await;
}

/// [`watchdog_task`] with the verdicts going to `sink`.
pub async fn watchdog_loop(
    store: Store,
    interval: Duration,
    shutdown: CancellationToken,
    mut sink: impl WatchdogSink,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match store_is_healthy(&store, interval).await {
            Ok(undelivered) => {
                sink.ping(&format!("running; {undelivered} events waiting to send"));
            }
            Err(problem) => {
                tracing::warn!(%problem, "unhealthy; not feeding the systemd watchdog");
                sink.withhold(&problem.to_string());
            }
        }
    }
}

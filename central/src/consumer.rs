//! The consumer: one MQTT connection at a time subscribed to every site's uplink with a
//! persistent session; a task that only polls the event loop; batches stored through the
//! [`EventStore`] and acknowledged to the broker only once committed, in arrival order; a tick
//! that sends each hub a cursor for its current stream and asks for a resend when a gap stays
//! open below what the hub counts as delivered.

use crate::report::CentralReport;
use crate::store::{
    AnyStore, Arrival, CentralDb, EventStore, PgStore, ResendClaim, SiteSyncState, StoreError,
    report,
};
use hub_contract::{self as contract, LEGACY_STREAM, SyncControl};
use hub_core::Backoff;
use hub_mqtt::{
    Connection, MqttError, install_crypto_provider, mqtt_options, network_options, publish_once,
};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Most messages stored in one transaction. A batch is whatever arrived while the previous
/// one committed, up to this: the per-batch work (site locks, marks, counters) is paid once
/// for more events the further a consumer is behind. The broker's window of unacknowledged
/// messages (`max_inflight_messages`) should be larger, so it keeps sending during a commit.
pub const MAX_BATCH: usize = 10_000;

/// Milliseconds since the epoch, now.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// How the consumer runs.
#[derive(Debug, Clone)]
pub struct CentralOptions {
    pub connection: Connection,
    /// The consumer's own SQLite database file (when `postgres` is not set).
    pub db: PathBuf,
    /// PostgreSQL connection settings: the fleet's shared database, instead of `db`.
    pub postgres: Option<String>,
    /// Share the fleet's uplink with the other consumers of this group (MQTT shared
    /// subscription); `None` subscribes to every message alone.
    pub share_group: Option<String>,
    /// How long a resend request stands before a gap may be asked for again.
    pub resend_lease: Duration,
    /// Counters for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Tools only (the benchmark's latency): every committed batch with its commit time.
    pub committed: Option<tokio::sync::mpsc::UnboundedSender<(Vec<rumqttc::Publish>, i64)>>,
    /// How long a gap must stay unchanged before a resend is requested.
    pub resend_grace: Duration,
    /// How often the cursor is sent to each hub (when it moved).
    pub cursor_every: Duration,
}

impl CentralOptions {
    /// Defaults for a broker and a database file.
    pub fn new(connection: Connection, db: impl Into<PathBuf>) -> CentralOptions {
        CentralOptions {
            connection,
            db: db.into(),
            postgres: None,
            share_group: None,
            resend_lease: Duration::from_secs(300),
            metrics: Arc::default(),
            committed: None,
            resend_grace: Duration::from_secs(2),
            cursor_every: Duration::from_secs(1),
        }
    }
}

/// A consumer running in this process.
pub struct CentralHandle {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), MqttError>>,
    db: PathBuf,
    postgres: Option<String>,
}

impl CentralHandle {
    /// Opens (creating) the consumer's database, then starts the consumer on the current
    /// runtime. A database that cannot be opened is an error here, not a task that quietly
    /// ends.
    pub fn start(options: CentralOptions) -> Result<CentralHandle, MqttError> {
        let shutdown = CancellationToken::new();
        let path = options.db.clone();
        let postgres = options.postgres.clone();
        let db = open_db(&options)?;
        let task = tokio::spawn(run_with(db, options, shutdown.clone()));
        Ok(CentralHandle {
            shutdown,
            task,
            db: path,
            postgres,
        })
    }

    /// The current report (reads the database).
    pub fn report(&self) -> Result<CentralReport, StoreError> {
        match &self.postgres {
            None => report(&self.db),
            Some(config) => {
                let config = config.clone();
                // The PostgreSQL store drives its connection on a runtime of its own.
                std::thread::scope(|s| {
                    s.spawn(move || PgStore::open_for_reading(&config)?.report())
                        .join()
                        .unwrap_or_else(|_| {
                            Err(StoreError::PostgresSetup("report panicked".into()))
                        })
                })
            }
        }
    }

    /// Waits until the consumer is subscribed: publishes probe heartbeats (site `probe`) through
    /// `probe` until one is stored. Tests and benchmarks call this before hubs start sending.
    pub async fn wait_ready(&self, probe: &Connection, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let beat = contract::Heartbeat {
                v: contract::CONTRACT_VERSION,
                site: "probe".into(),
                at_ms: now_ms(),
                outbox_depth: 0,
                oldest_undelivered_age_s: 0.0,
                last_seq: 0,
                first_undelivered_seq: None,
                confirmed_seq: 0,
                in_flight: 0,
                red_alerts_open: None,
                devices_offline: None,
                stream: Default::default(),
            };
            let _ = publish_once(
                probe,
                &contract::heartbeat_topic("probe"),
                contract::encode(&beat),
            )
            .await;
            if self.task.is_finished() {
                anyhow::bail!("the central consumer stopped before it subscribed");
            }
            let poll_until = Instant::now() + Duration::from_millis(500);
            let mut last_error = None;
            while Instant::now() < poll_until {
                // The database may be locked for a moment while the consumer creates it.
                match self.report() {
                    Ok(r) if r.sites.iter().any(|s| s.site == "probe") => return Ok(()),
                    Ok(_) => {}
                    Err(e) => last_error = Some(e),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the central consumer did not subscribe within {within:?}{}",
                last_error.map_or(String::new(), |e| format!(" (reading its database: {e})"))
            );
        }
    }

    /// Stops the consumer and waits for it.
    pub async fn stop(self) -> Result<(), MqttError> {
        self.shutdown.cancel();
        self.task.await.unwrap_or(Ok(()))
    }
}

fn open_db(options: &CentralOptions) -> Result<AnyStore, MqttError> {
    let lost = |detail| MqttError::Lost {
        broker: options.connection.broker.to_string(),
        detail,
    };
    match &options.postgres {
        None => CentralDb::open(&options.db)
            .map(AnyStore::Sqlite)
            .map_err(|e| {
                lost(format!(
                    "cannot open central database {}: {e}",
                    options.db.display()
                ))
            }),
        Some(config) => {
            let config = config.clone();
            // Opened on a thread of its own: the store owns a runtime, which may not start or
            // stop inside this one's workers.
            std::thread::spawn(move || PgStore::open(&config, now_ms()))
                .join()
                .map_err(|_| lost("opening the PostgreSQL store panicked".into()))?
                .map(AnyStore::Postgres)
                .map_err(|e| lost(format!("cannot open central's PostgreSQL database: {e}")))
        }
    }
}

/// Runs the consumer until `shutdown` is cancelled, reconnecting with backoff.
pub async fn run(options: CentralOptions, shutdown: CancellationToken) -> Result<(), MqttError> {
    let db = open_db(&options)?;
    run_with(db, options, shutdown).await
}

/// Runs the consumer over any [`EventStore`] until `shutdown` is cancelled, reconnecting with
/// backoff.
pub async fn run_with<S: EventStore>(
    db: S,
    options: CentralOptions,
    shutdown: CancellationToken,
) -> Result<(), MqttError> {
    install_crypto_provider();
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let db = Arc::new(Mutex::new(db));
    let mut gaps: HashMap<String, (String, i64, Instant)> = HashMap::new();
    while !shutdown.is_cancelled() {
        match connection(&options, &db, &mut gaps, &shutdown).await {
            Ok(()) => return Ok(()),
            Err((e, held)) => {
                tracing::warn!(error = %e, "central consumer disconnected");
                if held {
                    backoff.reset();
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(backoff.next_delay(rand::random::<f64>())) => {}
        }
    }
    Ok(())
}

async fn connection<S: EventStore>(
    options: &CentralOptions,
    db: &Arc<Mutex<S>>,
    gaps: &mut HashMap<String, (String, i64, Instant)>,
    shutdown: &CancellationToken,
) -> Result<(), (MqttError, bool)> {
    let c = &options.connection;
    let mqtt =
        mqtt_options(c, crate::MAX_INCOMING_PACKET_BYTES, 1 << 20).map_err(|e| (e, false))?;
    let (client, mut eventloop) = AsyncClient::new(mqtt, 10_000);
    eventloop.set_network_options(network_options(c));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let poller = tokio::spawn(async move {
        loop {
            let polled = eventloop.poll().await;
            let failed = polled.is_err();
            if tx.send(polled).is_err() || failed {
                return;
            }
        }
    });
    let _abort = AbortOnDrop(poller);
    let lost = |e: rumqttc::ConnectionError, held| {
        (
            MqttError::from_connection(&c.broker, c.connect_timeout, e),
            held,
        )
    };
    let mut connected = false;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last_cursor: HashMap<String, (String, i64, Instant)> = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                let _ = client.try_disconnect();
                return Ok(());
            }
            polled = rx.recv() => {
                let Some(polled) = polled else {
                    return Err((MqttError::Lost { broker: c.broker.to_string(), detail: "poller ended".into() }, connected));
                };
                let mut batch = Vec::new();
                let mut failure = None;
                let mut next = Some(polled);
                while let Some(polled) = next.take() {
                    match polled {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            connected = true;
                            tracing::info!(broker = %c.broker, "central consumer connected");
                            let filter = options.share_group.as_deref().map_or_else(
                                || contract::CENTRAL_UPLINK_FILTER.to_owned(),
                                contract::central_shared_uplink_filter,
                            );
                            client
                                .try_subscribe(filter, QoS::AtLeastOnce)
                                .map_err(|e| (MqttError::Lost { broker: c.broker.to_string(), detail: e.to_string() }, true))?;
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => batch.push(p),
                        Ok(_) => {}
                        Err(e) => { failure = Some(e); break; }
                    }
                    if batch.len() < MAX_BATCH {
                        next = rx.try_recv().ok();
                    }
                }
                if !batch.is_empty() {
                    options.metrics.lag_messages.store((batch.len() + rx.len()) as i64, std::sync::atomic::Ordering::Relaxed);
                    let started = Instant::now();
                    let db = db.clone();
                    let (batch, (counts, committed_at)) = tokio::task::spawn_blocking(move || {
                        let arrivals: Vec<Arrival<'_>> = batch
                            .iter()
                            .map(|p| Arrival { topic: &p.topic, payload: &p.payload })
                            .collect();
                        let counts = db.lock().map_err(|_| StoreError::Sqlite(rusqlite::Error::InvalidQuery))?.store_batch(&arrivals, now_ms());
                        drop(arrivals);
                        counts.map(|c| (batch, (c, now_ms())))
                    })
                    .await
                    .map_err(|e| (MqttError::Lost { broker: c.broker.to_string(), detail: e.to_string() }, connected))?
                    .map_err(|e| {
                        options.metrics.batch_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        (MqttError::Lost { broker: c.broker.to_string(), detail: format!("central database: {e}") }, connected)
                    })?;
                    options.metrics.batch(&counts, started.elapsed().as_micros() as u64);
                    if counts.unreadable > 0 {
                        tracing::warn!(count = counts.unreadable, "central quarantined unreadable messages");
                    }
                    tracing::debug!(stored = counts.stored, duplicates = counts.duplicates, conflicts = counts.conflicts, "central batch");
                    // Acknowledge only what is committed, in arrival order.
                    for p in &batch {
                        if client.ack(p).await.is_err() {
                            break;
                        }
                    }
                    options.metrics.lag_messages.store(rx.len() as i64, std::sync::atomic::Ordering::Relaxed);
                    if let Some(hook) = &options.committed {
                        let _ = hook.send((batch, committed_at));
                    }
                }
                if let Some(e) = failure {
                    return Err(lost(e, connected));
                }
            }
            _ = tick.tick(), if connected => {
                let db2 = db.clone();
                let Ok(Ok(state)) = tokio::task::spawn_blocking(move || db2.lock().map_err(|_| StoreError::Sqlite(rusqlite::Error::InvalidQuery))?.sync_state()).await else { continue };
                for SiteSyncState { site, stream, contiguous_seq: contiguous, hub_first_undelivered, next_held: next_present } in state {
                    if !contract::site_fits_topic(&site) { continue; }
                    // Cursors and resends name the hub's current stream (none for the legacy
                    // stream, as an older hub expects).
                    let named = (stream != LEGACY_STREAM).then(|| stream.clone());
                    let sent = last_cursor.get(&site);
                    if contiguous > 0 && sent.is_none_or(|(s, seq, at)| *s != stream || (*seq != contiguous && at.elapsed() >= options.cursor_every) || at.elapsed() >= options.cursor_every * 10) {
                        let msg = SyncControl::Cursor { v: contract::CONTRACT_VERSION, site: site.clone(), stream: named.clone(), contiguous_seq: contiguous };
                        if client.try_publish(contract::sync_topic(&site), QoS::AtLeastOnce, false, contract::encode(&msg)).is_ok() {
                            last_cursor.insert(site.clone(), (stream.clone(), contiguous, Instant::now()));
                        }
                    }
                    // A gap below what the hub counts as delivered, unchanged for the grace
                    // period, was lost after the broker acknowledged it: ask for it again.
                    let hub_delivered_up_to = hub_first_undelivered.map_or(0, |f| f - 1);
                    if hub_delivered_up_to <= contiguous {
                        gaps.remove(&site);
                        continue;
                    }
                    let entry = gaps.entry(site.clone()).or_insert((stream.clone(), contiguous, Instant::now()));
                    if entry.0 != stream || entry.1 != contiguous {
                        *entry = (stream.clone(), contiguous, Instant::now());
                    } else if entry.2.elapsed() >= options.resend_grace {
                        entry.2 = Instant::now();
                        let to = next_present.map_or(hub_delivered_up_to, |n| (n - 1).min(hub_delivered_up_to));
                        // One request per gap among all consumers: whoever claims the lease asks.
                        let (db2, site2, stream2, consumer) = (db.clone(), site.clone(), stream.clone(), c.client_id.clone());
                        let lease_ms = options.resend_lease.as_millis() as i64;
                        let claimed = tokio::task::spawn_blocking(move || {
                            db2.lock().map_err(|_| StoreError::Sqlite(rusqlite::Error::InvalidQuery))?.claim_resend(&ResendClaim {
                                site: &site2, stream: &stream2, from_seq: contiguous + 1, to_seq: to,
                                now_ms: now_ms(), lease_ms, consumer: &consumer,
                            })
                        }).await;
                        if !matches!(claimed, Ok(Ok(true))) {
                            continue;
                        }
                        let msg = SyncControl::Resend { v: contract::CONTRACT_VERSION, site: site.clone(), stream: named, from_seq: contiguous + 1, to_seq: to };
                        if client.try_publish(contract::sync_topic(&site), QoS::AtLeastOnce, false, contract::encode(&msg)).is_ok() {
                            tracing::info!(site = %site, stream = %stream, from_seq = contiguous + 1, to_seq = to, "asked the hub to resend missing events");
                        }
                    }
                }
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_consumer_that_cannot_open_its_database_says_so_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let broker = hub_mqtt::BrokerAddress {
            host: "127.0.0.1".into(),
            port: 9,
            tls: false,
        };
        let options = CentralOptions::new(
            Connection::plain(broker, "c"),
            dir.path().join("missing-folder/central.sqlite"),
        );
        let err = CentralHandle::start(options).err().expect("start fails");
        assert!(
            err.to_string().contains("cannot open central database"),
            "{err}"
        );
    }
}

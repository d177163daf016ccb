//! The reference central consumer (`hub central`): what a central system must do with the
//! hub's uplink, in a few hundred lines a central team can read.
//!
//! It subscribes to every site's uplink with a persistent session, stores each event in its
//! own SQLite keyed by `(site, seq)` (duplicates are dropped by the key), acknowledges a
//! message to the broker only after it is committed, tracks per site the highest contiguous
//! sequence number, tells each hub how far it has everything (cursor, so the hub may prune),
//! and asks for a resend when a gap stays open below what the hub reports as delivered (for
//! example after a broker lost messages it had acknowledged). It also sends commands down.

use super::contract::{self, CommandOut, SyncControl, UpTopic};
use super::window::Backoff;
use super::{Connection, SyncError, install_crypto_provider, mqtt_options, network_options};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use rusqlite::{OptionalExtension, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How the consumer runs.
#[derive(Debug, Clone)]
pub struct CentralOptions {
    pub connection: Connection,
    /// The consumer's own database file.
    pub db: PathBuf,
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
            resend_grace: Duration::from_secs(2),
            cursor_every: Duration::from_secs(1),
        }
    }
}

/// The consumer's database.
pub struct CentralDb {
    conn: rusqlite::Connection,
}

/// A site row: name, received, duplicates, contiguous, max, hub's last seq, status JSON.
type SiteRow = (String, i64, i64, i64, i64, Option<i64>, Option<String>);
/// Sync state per site: name, contiguous, hub's first undelivered, next stored after the gap.
type SyncState = (String, i64, Option<i64>, Option<i64>);

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS event (
    site TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    lane TEXT NOT NULL,
    withheld TEXT,
    body TEXT,
    arrival INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (site, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS site (
    site TEXT PRIMARY KEY,
    contiguous_seq INTEGER NOT NULL DEFAULT 0,
    max_seq INTEGER NOT NULL DEFAULT 0,
    received INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    arrivals INTEGER NOT NULL DEFAULT 0,
    hub_last_seq INTEGER,
    hub_first_undelivered INTEGER,
    status TEXT,
    heartbeat TEXT
);
"#;

/// One site as central sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SiteReport {
    pub site: String,
    /// Distinct events stored.
    pub events: i64,
    /// Copies received and dropped because the `(site, seq)` was already stored.
    pub duplicates_dropped: i64,
    /// Every event up to here is stored.
    pub contiguous_seq: i64,
    pub max_seq: i64,
    /// Missing ranges (inclusive) between `contiguous_seq` and `max_seq`, first 100.
    pub gaps: Vec<(i64, i64)>,
    /// Events stored as withheld markers (too large to send).
    pub withheld: i64,
    /// Last status the hub published (`online` / `offline`).
    pub hub_state: Option<String>,
    /// Highest sequence number the hub has reported.
    pub hub_last_seq: Option<i64>,
}

/// Everything central holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CentralReport {
    pub sites: Vec<SiteReport>,
}

impl std::fmt::Display for CentralReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<20} {:>9} {:>11} {:>11} {:>9} {:>8} {:<8} gaps",
            "SITE", "EVENTS", "CONTIGUOUS", "HUB LAST", "DUPES", "WITHHELD", "HUB"
        )?;
        for s in &self.sites {
            let gaps = if s.gaps.is_empty() {
                "none".to_owned()
            } else {
                s.gaps
                    .iter()
                    .map(|(a, b)| {
                        if a == b {
                            format!("{a}")
                        } else {
                            format!("{a}-{b}")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            };
            writeln!(
                f,
                "{:<20} {:>9} {:>11} {:>11} {:>9} {:>8} {:<8} {gaps}",
                s.site,
                s.events,
                s.contiguous_seq,
                s.hub_last_seq.map_or("-".into(), |v| v.to_string()),
                s.duplicates_dropped,
                s.withheld,
                s.hub_state.as_deref().unwrap_or("-"),
            )?;
        }
        if self.sites.is_empty() {
            writeln!(f, "(nothing received yet)")?;
        }
        Ok(())
    }
}

/// One stored event, for tests and tools.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredEvent {
    pub seq: i64,
    pub id: String,
    pub kind: String,
    pub lane: String,
    /// Order of first arrival at central (per site, from 1).
    pub arrival: i64,
    pub withheld: Option<String>,
    pub body: Option<String>,
}

/// What one batch did.
#[derive(Debug, Default, Clone, Copy)]
struct BatchCounts {
    stored: usize,
    duplicates: usize,
    unreadable: usize,
}

impl CentralDb {
    /// Opens an existing database read-only, for reports while the consumer runs. Never
    /// creates or changes the file (two connections creating a WAL database at once can fail
    /// with "database is locked" whatever the busy timeout); `None` when there is none yet.
    pub fn open_read_only(path: &Path) -> rusqlite::Result<Option<CentralDb>> {
        if !path.exists() {
            return Ok(None);
        }
        let conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(Some(CentralDb { conn }))
    }

    /// Opens (creating) the consumer's database. Only the consumer itself calls this.
    pub fn open(path: &Path) -> rusqlite::Result<CentralDb> {
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")?;
        conn.execute_batch(SCHEMA)?;
        Ok(CentralDb { conn })
    }

    fn store_batch(&mut self, batch: &[rumqttc::Publish]) -> rusqlite::Result<BatchCounts> {
        let now = crate::clock::now().millis();
        let tx = self.conn.transaction()?;
        let mut counts = BatchCounts::default();
        let mut touched: Vec<String> = Vec::new();
        for p in batch {
            let Some((site, kind)) = contract::parse_up_topic(&p.topic) else {
                counts.unreadable += 1;
                continue;
            };
            tx.execute("INSERT OR IGNORE INTO site (site) VALUES (?1)", [site])?;
            match kind {
                UpTopic::Events | UpTopic::Acks => {
                    let Ok(e) = contract::decode_event(&p.payload) else {
                        counts.unreadable += 1;
                        continue;
                    };
                    if e.site != site {
                        counts.unreadable += 1;
                        continue;
                    }
                    let arrival: i64 = tx.query_row(
                        "UPDATE site SET arrivals = arrivals + 1 WHERE site = ?1 RETURNING arrivals",
                        [site],
                        |r| r.get(0),
                    )?;
                    let inserted = tx.execute(
                        "INSERT OR IGNORE INTO event (site, seq, id, kind, at_ms, lane, withheld, body, arrival, received_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                        params![
                            site,
                            e.seq,
                            e.id,
                            e.kind,
                            e.at_ms,
                            e.lane.as_str(),
                            e.withheld.as_ref().map(|w| serde_json::to_string(w).unwrap_or_default()),
                            e.event.as_ref().map(|b| b.get().to_owned()),
                            arrival,
                            now
                        ],
                    )?;
                    if inserted == 1 {
                        counts.stored += 1;
                        tx.execute(
                            "UPDATE site SET received = received + 1, max_seq = MAX(max_seq, ?2) WHERE site = ?1",
                            params![site, e.seq],
                        )?;
                        if !touched.iter().any(|t| t == site) {
                            touched.push(site.to_owned());
                        }
                    } else {
                        counts.duplicates += 1;
                        tx.execute(
                            "UPDATE site SET duplicates = duplicates + 1, arrivals = arrivals - 1 WHERE site = ?1",
                            [site],
                        )?;
                    }
                }
                UpTopic::Status | UpTopic::Heartbeat => {
                    let text = String::from_utf8_lossy(&p.payload).into_owned();
                    let (last, first) = match kind {
                        UpTopic::Status => serde_json::from_str::<contract::Status>(&text)
                            .map(|s| (s.last_seq, s.first_undelivered_seq)),
                        _ => serde_json::from_str::<contract::Heartbeat>(&text)
                            .map(|h| (h.last_seq, h.first_undelivered_seq)),
                    }
                    .unwrap_or((0, None));
                    let column = if kind == UpTopic::Status {
                        "status"
                    } else {
                        "heartbeat"
                    };
                    tx.execute(
                        &format!(
                            "UPDATE site SET {column} = ?2, hub_last_seq = ?3, hub_first_undelivered = ?4 WHERE site = ?1"
                        ),
                        params![site, text, last, first.unwrap_or(last + 1)],
                    )?;
                }
            }
        }
        for site in touched {
            advance_contiguous(&tx, &site)?;
        }
        tx.commit()?;
        Ok(counts)
    }

    /// The state of every site.
    pub fn report(&self) -> rusqlite::Result<CentralReport> {
        let mut st = self.conn.prepare(
            "SELECT site, received, duplicates, contiguous_seq, max_seq, hub_last_seq, status FROM site ORDER BY site",
        )?;
        let rows: Vec<SiteRow> = st
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        let mut sites = Vec::new();
        for (site, events, duplicates, contiguous, max_seq, hub_last, status) in rows {
            let withheld: i64 = self.conn.query_row(
                "SELECT COUNT(*) FROM event WHERE site = ?1 AND withheld IS NOT NULL",
                [&site],
                |r| r.get(0),
            )?;
            sites.push(SiteReport {
                gaps: gaps(&self.conn, &site, contiguous, max_seq)?,
                site,
                events,
                duplicates_dropped: duplicates,
                contiguous_seq: contiguous,
                max_seq,
                withheld,
                hub_state: status
                    .and_then(|s| serde_json::from_str::<contract::Status>(&s).ok())
                    .map(|s| s.state),
                hub_last_seq: hub_last,
            });
        }
        Ok(CentralReport { sites })
    }

    /// Every stored event of a site, in sequence order.
    pub fn events(&self, site: &str) -> rusqlite::Result<Vec<StoredEvent>> {
        let mut st = self.conn.prepare(
            "SELECT seq, id, kind, lane, arrival, withheld, body FROM event WHERE site = ?1 ORDER BY seq",
        )?;
        st.query_map([site], |r| {
            Ok(StoredEvent {
                seq: r.get(0)?,
                id: r.get(1)?,
                kind: r.get(2)?,
                lane: r.get(3)?,
                arrival: r.get(4)?,
                withheld: r.get(5)?,
                body: r.get(6)?,
            })
        })?
        .collect()
    }

    fn sync_state(&self) -> rusqlite::Result<Vec<SyncState>> {
        let mut st = self.conn.prepare(
            "SELECT site, contiguous_seq, hub_first_undelivered,
                    (SELECT MIN(seq) FROM event e WHERE e.site = s.site AND e.seq > s.contiguous_seq)
             FROM site s",
        )?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect()
    }
}

fn advance_contiguous(tx: &rusqlite::Transaction<'_>, site: &str) -> rusqlite::Result<()> {
    let mut contiguous: i64 = tx.query_row(
        "SELECT contiguous_seq FROM site WHERE site = ?1",
        [site],
        |r| r.get(0),
    )?;
    let mut st = tx.prepare_cached(
        "SELECT seq FROM event WHERE site = ?1 AND seq > ?2 ORDER BY seq LIMIT 1000",
    )?;
    'outer: loop {
        let seqs: Vec<i64> = st
            .query_map(params![site, contiguous], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if seqs.is_empty() {
            break;
        }
        for seq in &seqs {
            if *seq != contiguous + 1 {
                break 'outer;
            }
            contiguous = *seq;
        }
        if seqs.len() < 1000 {
            break;
        }
    }
    tx.execute(
        "UPDATE site SET contiguous_seq = ?2 WHERE site = ?1",
        params![site, contiguous],
    )?;
    Ok(())
}

fn gaps(
    conn: &rusqlite::Connection,
    site: &str,
    contiguous: i64,
    max_seq: i64,
) -> rusqlite::Result<Vec<(i64, i64)>> {
    let mut out = Vec::new();
    if max_seq <= contiguous {
        return Ok(out);
    }
    let mut st = conn.prepare("SELECT seq FROM event WHERE site = ?1 AND seq > ?2 ORDER BY seq")?;
    let mut expected = contiguous + 1;
    let mut rows = st.query(params![site, contiguous])?;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        if seq > expected {
            out.push((expected, seq - 1));
            if out.len() >= 100 {
                break;
            }
        }
        expected = seq + 1;
    }
    Ok(out)
}

/// Reads the report of a consumer database (the consumer may be running); empty while the
/// consumer has not created its database yet.
pub fn report(db: &Path) -> rusqlite::Result<CentralReport> {
    match CentralDb::open_read_only(db)? {
        Some(db) => db.report(),
        None => Ok(CentralReport { sites: Vec::new() }),
    }
}

/// A consumer running in this process.
pub struct CentralHandle {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), SyncError>>,
    db: PathBuf,
}

impl CentralHandle {
    /// Opens (creating) the consumer's database, then starts the consumer on the current
    /// runtime. A database that cannot be opened is an error here, not a task that quietly
    /// ends.
    pub fn start(options: CentralOptions) -> Result<CentralHandle, SyncError> {
        let shutdown = CancellationToken::new();
        let path = options.db.clone();
        let db = open_db(&options)?;
        let task = tokio::spawn(run_with(db, options, shutdown.clone()));
        Ok(CentralHandle {
            shutdown,
            task,
            db: path,
        })
    }

    /// The current report (reads the database).
    pub fn report(&self) -> rusqlite::Result<CentralReport> {
        report(&self.db)
    }

    /// Waits until the consumer is subscribed: publishes probe heartbeats (site `probe`) through
    /// `probe` until one is stored. Tests and benchmarks call this before hubs start sending.
    pub async fn wait_ready(&self, probe: &Connection, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let beat = contract::Heartbeat {
                v: contract::CONTRACT_VERSION,
                site: "probe".into(),
                at_ms: crate::clock::now().millis(),
                outbox_depth: 0,
                oldest_undelivered_age_s: 0.0,
                last_seq: 0,
                first_undelivered_seq: None,
                confirmed_seq: 0,
                in_flight: 0,
            };
            let _ = send_raw(
                probe,
                &contract::heartbeat_topic("probe"),
                contract::encode(&beat),
            )
            .await;
            if self.task.is_finished() {
                anyhow::bail!("the central consumer stopped before it subscribed");
            }
            let poll_until = Instant::now() + Duration::from_millis(500);
            while Instant::now() < poll_until {
                if self.report()?.sites.iter().any(|s| s.site == "probe") {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the central consumer did not subscribe within {within:?}"
            );
        }
    }

    /// Stops the consumer and waits for it.
    pub async fn stop(self) -> Result<(), SyncError> {
        self.shutdown.cancel();
        self.task.await.unwrap_or(Ok(()))
    }
}

fn open_db(options: &CentralOptions) -> Result<CentralDb, SyncError> {
    CentralDb::open(&options.db).map_err(|e| SyncError::Lost {
        broker: options.connection.broker.to_string(),
        detail: format!("cannot open central database {}: {e}", options.db.display()),
    })
}

/// Runs the consumer until `shutdown` is cancelled, reconnecting with backoff.
pub async fn run(options: CentralOptions, shutdown: CancellationToken) -> Result<(), SyncError> {
    let db = open_db(&options)?;
    run_with(db, options, shutdown).await
}

async fn run_with(
    db: CentralDb,
    options: CentralOptions,
    shutdown: CancellationToken,
) -> Result<(), SyncError> {
    install_crypto_provider();
    let db = Arc::new(Mutex::new(db));
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let mut gaps: HashMap<String, (i64, Instant)> = HashMap::new();
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

async fn connection(
    options: &CentralOptions,
    db: &Arc<Mutex<CentralDb>>,
    gaps: &mut HashMap<String, (i64, Instant)>,
    shutdown: &CancellationToken,
) -> Result<(), (SyncError, bool)> {
    let c = &options.connection;
    let mqtt =
        mqtt_options(c, super::MAX_INCOMING_PACKET_BYTES, 1 << 20).map_err(|e| (e, false))?;
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
            SyncError::from_connection(&c.broker, c.connect_timeout, e),
            held,
        )
    };
    let mut connected = false;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last_cursor: HashMap<String, (i64, Instant)> = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                let _ = client.try_disconnect();
                return Ok(());
            }
            polled = rx.recv() => {
                let Some(polled) = polled else {
                    return Err((SyncError::Lost { broker: c.broker.to_string(), detail: "poller ended".into() }, connected));
                };
                let mut batch = Vec::new();
                let mut failure = None;
                let mut next = Some(polled);
                while let Some(polled) = next.take() {
                    match polled {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            connected = true;
                            tracing::info!(broker = %c.broker, "central consumer connected");
                            client
                                .try_subscribe(contract::CENTRAL_UPLINK_FILTER, QoS::AtLeastOnce)
                                .map_err(|e| (SyncError::Lost { broker: c.broker.to_string(), detail: e.to_string() }, true))?;
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => batch.push(p),
                        Ok(_) => {}
                        Err(e) => { failure = Some(e); break; }
                    }
                    if batch.len() < 2000 {
                        next = rx.try_recv().ok();
                    }
                }
                if !batch.is_empty() {
                    let db = db.clone();
                    let (batch, counts) = tokio::task::spawn_blocking(move || {
                        let counts = db.lock().map_err(|_| rusqlite::Error::InvalidQuery)?.store_batch(&batch);
                        counts.map(|c| (batch, c))
                    })
                    .await
                    .map_err(|e| (SyncError::Lost { broker: c.broker.to_string(), detail: e.to_string() }, connected))?
                    .map_err(|e| (SyncError::Lost { broker: c.broker.to_string(), detail: format!("central database: {e}") }, connected))?;
                    if counts.unreadable > 0 {
                        tracing::warn!(count = counts.unreadable, "central dropped unreadable messages");
                    }
                    tracing::debug!(stored = counts.stored, duplicates = counts.duplicates, "central batch");
                    // Acknowledge only what is committed, in arrival order.
                    for p in &batch {
                        if client.ack(p).await.is_err() {
                            break;
                        }
                    }
                }
                if let Some(e) = failure {
                    return Err(lost(e, connected));
                }
            }
            _ = tick.tick(), if connected => {
                let db2 = db.clone();
                let Ok(Ok(state)) = tokio::task::spawn_blocking(move || db2.lock().map_err(|_| rusqlite::Error::InvalidQuery)?.sync_state()).await else { continue };
                for (site, contiguous, hub_first_undelivered, next_present) in state {
                    if !contract::site_fits_topic(&site) { continue; }
                    let sent = last_cursor.get(&site);
                    if contiguous > 0 && sent.is_none_or(|(seq, at)| *seq != contiguous && at.elapsed() >= options.cursor_every) {
                        let msg = SyncControl::Cursor { v: contract::CONTRACT_VERSION, site: site.clone(), contiguous_seq: contiguous };
                        if client.try_publish(contract::sync_topic(&site), QoS::AtLeastOnce, false, contract::encode(&msg)).is_ok() {
                            last_cursor.insert(site.clone(), (contiguous, Instant::now()));
                        }
                    }
                    // A gap below what the hub counts as delivered, unchanged for the grace
                    // period, was lost after the broker acknowledged it: ask for it again.
                    let hub_delivered_up_to = hub_first_undelivered.map_or(0, |f| f - 1);
                    if hub_delivered_up_to <= contiguous {
                        gaps.remove(&site);
                        continue;
                    }
                    let entry = gaps.entry(site.clone()).or_insert((contiguous, Instant::now()));
                    if entry.0 != contiguous {
                        *entry = (contiguous, Instant::now());
                    } else if entry.1.elapsed() >= options.resend_grace {
                        let to = next_present.map_or(hub_delivered_up_to, |n| (n - 1).min(hub_delivered_up_to));
                        let msg = SyncControl::Resend { v: contract::CONTRACT_VERSION, site: site.clone(), from_seq: contiguous + 1, to_seq: to };
                        if client.try_publish(contract::sync_topic(&site), QoS::AtLeastOnce, false, contract::encode(&msg)).is_ok() {
                            tracing::info!(site = %site, from_seq = contiguous + 1, to_seq = to, "asked the hub to resend missing events");
                        }
                        entry.1 = Instant::now();
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

/// Publishes one command at QoS 1 and waits for the broker's acknowledgement.
pub async fn send_command(c: &Connection, command: &CommandOut) -> Result<(), SyncError> {
    send_raw(
        c,
        &contract::commands_topic(&command.site),
        contract::encode(command),
    )
    .await
}

/// Publishes raw bytes on a topic at QoS 1 (clean session) and waits for the PUBACK. Used by
/// `hub central send` and by tests that need malformed messages.
pub async fn send_raw(c: &Connection, topic: &str, payload: Vec<u8>) -> Result<(), SyncError> {
    install_crypto_provider();
    let mut options = mqtt_options(c, 1 << 20, payload.len() + 4096)?;
    options.set_clean_session(true);
    let (client, mut eventloop) = AsyncClient::new(options, 10);
    eventloop.set_network_options(network_options(c));
    let wait = c.connect_timeout + Duration::from_secs(5);
    let lost = |e| SyncError::from_connection(&c.broker, c.connect_timeout, e);
    let outcome = tokio::time::timeout(wait, async {
        loop {
            match eventloop.poll().await.map_err(lost)? {
                Event::Incoming(Packet::ConnAck(_)) => {
                    client
                        .try_publish(topic, QoS::AtLeastOnce, false, payload.clone())
                        .map_err(|e| SyncError::Lost {
                            broker: c.broker.to_string(),
                            detail: e.to_string(),
                        })?;
                }
                Event::Incoming(Packet::PubAck(_)) => return Ok(()),
                _ => {}
            }
        }
    })
    .await
    .unwrap_or(Err(SyncError::Timeout {
        broker: c.broker.to_string(),
        seconds: wait.as_secs_f64(),
    }));
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_millis(300), eventloop.poll()).await;
    outcome
}

/// Reads the current stored status of a site, if any (for tools).
pub fn site_status(db: &Path, site: &str) -> rusqlite::Result<Option<String>> {
    CentralDb::open(db)?
        .conn
        .query_row("SELECT status FROM site WHERE site = ?1", [site], |r| {
            r.get(0)
        })
        .optional()
        .map(Option::flatten)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_never_create_or_change_the_consumers_database() {
        // Two connections creating one WAL database at once can fail with "database is
        // locked" whatever the busy timeout: a report that created the file could make the
        // consumer's own first open fail.
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("central.sqlite");
        assert_eq!(report(&db).unwrap().sites.len(), 0);
        assert!(!db.exists(), "a report created the database");
        CentralDb::open(&db).unwrap();
        let before = std::fs::read(&db).unwrap();
        assert_eq!(report(&db).unwrap().sites.len(), 0);
        assert_eq!(std::fs::read(&db).unwrap(), before);
    }

    #[tokio::test]
    async fn a_consumer_that_cannot_open_its_database_says_so_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let broker = crate::config::BrokerAddress {
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

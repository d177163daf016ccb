//! The reference central consumer (`hub central`): what a central system must do with the
//! hub's uplink, in a few hundred lines a central team can read.
//!
//! It subscribes to every site's uplink with a persistent session, stores each event in its
//! own SQLite keyed by `(site, stream, seq)`, acknowledges a message to the broker only after
//! it is committed, tracks per stream the highest contiguous sequence number, tells each hub
//! how far it has everything of the hub's current stream (cursor, so the hub may prune), and
//! asks for a resend when a gap stays open below what the hub reports as delivered (for
//! example after a broker lost messages it had acknowledged). It also sends commands down.
//!
//! Streams: a hub database numbers its events in a stream (see `store::stream`); a database
//! that went back in time or was replaced starts a new one, which may continue an older stream
//! up to a `base_seq` (the status and heartbeat say so). Central keeps every stream: the same
//! `(site, stream, seq)` with the same event id is a duplicate and dropped, with another id it
//! is a **conflict**, stored apart and reported, never dropped. Events from hubs older than
//! streams are the `legacy` stream. A stream's contiguous sequence counts the events it shares
//! with the stream it continues (up to its base).

use super::contract::{self, CommandOut, LEGACY_STREAM, SyncControl, UpTopic};
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

/// A site row: name, current stream, hub's last seq, status JSON.
type SiteRow = (String, Option<String>, Option<i64>, Option<String>);
/// Sync state of a site's current stream: site, stream, contiguous, hub's first undelivered,
/// next stored after the gap.
type SyncState = (String, String, i64, Option<i64>, Option<i64>);

/// Schema version of central's database (`PRAGMA user_version`). Version 1 (no streams) is
/// upgraded in place: its events become the `legacy` stream.
const CENTRAL_SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS event (
    site TEXT NOT NULL,
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    lane TEXT NOT NULL,
    withheld TEXT,
    body TEXT,
    arrival INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (site, stream, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stream (
    site TEXT NOT NULL,
    stream TEXT NOT NULL,
    continues TEXT,
    base_seq INTEGER NOT NULL DEFAULT 0,
    first_seen_at INTEGER NOT NULL,
    contiguous_seq INTEGER NOT NULL DEFAULT 0,
    max_seq INTEGER NOT NULL DEFAULT 0,
    received INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    conflicts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (site, stream)
);
CREATE TABLE IF NOT EXISTS conflict (
    site TEXT NOT NULL,
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    stored_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    lane TEXT NOT NULL,
    withheld TEXT,
    body TEXT,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (site, stream, seq, id)
);
CREATE TABLE IF NOT EXISTS site (
    site TEXT PRIMARY KEY,
    current_stream TEXT,
    arrivals INTEGER NOT NULL DEFAULT 0,
    hub_last_seq INTEGER,
    hub_first_undelivered INTEGER,
    status TEXT,
    heartbeat TEXT
);
"#;

/// Upgrade of a version 1 database (events keyed by `(site, seq)`, counters per site): its
/// events and counters become each site's `legacy` stream.
const UPGRADE_FROM_1: &str = r#"
ALTER TABLE event RENAME TO event_v1;
ALTER TABLE site RENAME TO site_v1;
"#;
const UPGRADE_FROM_1_COPY: &str = r#"
INSERT INTO event (site, stream, seq, id, kind, at_ms, lane, withheld, body, arrival, received_at)
    SELECT site, 'legacy', seq, id, kind, at_ms, lane, withheld, body, arrival, received_at FROM event_v1;
INSERT INTO stream (site, stream, first_seen_at, contiguous_seq, max_seq, received, duplicates)
    SELECT site, 'legacy', 0, contiguous_seq, max_seq, received, duplicates FROM site_v1;
INSERT INTO site (site, current_stream, arrivals, hub_last_seq, hub_first_undelivered, status, heartbeat)
    SELECT site, 'legacy', arrivals, hub_last_seq, hub_first_undelivered, status, heartbeat FROM site_v1;
DROP TABLE event_v1;
DROP TABLE site_v1;
"#;

/// A gap list: missing ranges (inclusive), first 100.
type Gaps = Vec<(i64, i64)>;

/// One stream of a site as central sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StreamReport {
    pub stream: String,
    /// The stream the hub numbers its events in now.
    pub current: bool,
    /// The stream whose events `1..=base_seq` this one shares, if the hub said so.
    pub continues: Option<String>,
    pub base_seq: i64,
    /// Set when the stream it continues had gone past `base_seq`: the hub's database went
    /// back in time (a restored backup) and events `base_seq + 1 ..= rewound_past` of the
    /// continued stream may differ from this stream's.
    pub rewound_past: Option<i64>,
    /// When central first saw the stream (ms since the epoch).
    pub first_seen_at_ms: i64,
    /// Distinct events stored under this stream.
    pub events: i64,
    pub duplicates_dropped: i64,
    /// Events with a sequence number already held under another id (kept in `conflicts`).
    pub conflicts: i64,
    /// Every event up to here is held (this stream's, or up to `base_seq` the continued one's).
    pub contiguous_seq: i64,
    pub max_seq: i64,
    /// Missing ranges (inclusive) between `contiguous_seq` and `max_seq`, first 100.
    pub gaps: Gaps,
}

/// An event that arrived with a `(site, stream, seq)` already held under another id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConflictReport {
    pub stream: String,
    pub seq: i64,
    /// The id stored first (the one in `events`).
    pub stored_id: String,
    /// The id that arrived later (kept here, not dropped).
    pub id: String,
    pub kind: String,
    pub received_at_ms: i64,
}

/// One site as central sees it. The sequence figures (`contiguous_seq`, `max_seq`, `gaps`)
/// are those of the site's current stream; the counts cover every stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SiteReport {
    pub site: String,
    /// The stream the hub numbers its events in now (from its status and heartbeat).
    pub stream: Option<String>,
    /// Distinct events stored, all streams.
    pub events: i64,
    /// Copies received and dropped because the same event was already stored.
    pub duplicates_dropped: i64,
    /// Every event up to here is stored (current stream).
    pub contiguous_seq: i64,
    pub max_seq: i64,
    /// Missing ranges (inclusive) between `contiguous_seq` and `max_seq`, first 100.
    pub gaps: Gaps,
    /// Events stored as withheld markers (too large to send).
    pub withheld: i64,
    /// Last status the hub published (`online` / `offline`).
    pub hub_state: Option<String>,
    /// Highest sequence number the hub has reported.
    pub hub_last_seq: Option<i64>,
    /// Events kept as conflicts, all streams.
    pub conflicts: i64,
    /// Every stream, the current one first, then newest first.
    pub streams: Vec<StreamReport>,
    /// The conflicting events, first 100.
    pub conflicting_events: Vec<ConflictReport>,
}

/// Everything central holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CentralReport {
    pub sites: Vec<SiteReport>,
}

fn gap_text(gaps: &Gaps) -> String {
    if gaps.is_empty() {
        return "none".to_owned();
    }
    gaps.iter()
        .map(|(a, b)| {
            if a == b {
                format!("{a}")
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The first characters of a stream id, enough to tell streams apart in a table.
fn short(stream: &str) -> &str {
    stream.get(..13).unwrap_or(stream)
}

impl std::fmt::Display for CentralReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<20} {:<13} {:>9} {:>11} {:>11} {:>9} {:>9} {:>8} {:<8} gaps",
            "SITE",
            "STREAM",
            "EVENTS",
            "CONTIGUOUS",
            "HUB LAST",
            "DUPES",
            "CONFLICTS",
            "WITHHELD",
            "HUB"
        )?;
        for s in &self.sites {
            writeln!(
                f,
                "{:<20} {:<13} {:>9} {:>11} {:>11} {:>9} {:>9} {:>8} {:<8} {}",
                s.site,
                s.stream.as_deref().map_or("-", short),
                s.events,
                s.contiguous_seq,
                s.hub_last_seq.map_or("-".into(), |v| v.to_string()),
                s.duplicates_dropped,
                s.conflicts,
                s.withheld,
                s.hub_state.as_deref().unwrap_or("-"),
                gap_text(&s.gaps),
            )?;
            if s.streams.len() > 1 || s.conflicts > 0 {
                for t in &s.streams {
                    let lineage = match (&t.continues, t.rewound_past) {
                        (Some(c), Some(past)) => format!(
                            "; continues {c} up to #{}; REWOUND: that stream went on to #{past}, its events #{}..=#{past} may differ from these",
                            t.base_seq,
                            t.base_seq + 1
                        ),
                        (Some(c), None) => format!("; continues {c} up to #{}", t.base_seq),
                        (None, _) => String::new(),
                    };
                    writeln!(
                        f,
                        "  stream {}{}: {} events, contiguous {}, max {}, {} dupes, {} conflicts, gaps {}{lineage}",
                        t.stream,
                        if t.current { " (current)" } else { "" },
                        t.events,
                        t.contiguous_seq,
                        t.max_seq,
                        t.duplicates_dropped,
                        t.conflicts,
                        gap_text(&t.gaps),
                    )?;
                }
                for c in &s.conflicting_events {
                    writeln!(
                        f,
                        "  CONFLICT stream {} #{}: held as {}, another event {} ({}) arrived; both kept",
                        c.stream, c.seq, c.stored_id, c.id, c.kind
                    )?;
                }
            }
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
    pub stream: String,
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
    conflicts: usize,
    unreadable: usize,
}

/// Makes sure central knows a stream of a site (and the site); the first stream seen becomes
/// the site's current one until the hub's status says otherwise.
fn ensure_stream(
    tx: &rusqlite::Connection,
    site: &str,
    stream: &str,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT OR IGNORE INTO site (site) VALUES (?1)")?
        .execute([site])?;
    let new = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO stream (site, stream, first_seen_at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![site, stream, now])?;
    if new == 1 {
        tx.prepare_cached(
            "UPDATE site SET current_stream = ?2 WHERE site = ?1 AND current_stream IS NULL",
        )?
        .execute(params![site, stream])?;
    }
    Ok(())
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

    /// Opens (creating, or upgrading from version 1) the consumer's database. Only the
    /// consumer itself calls this.
    pub fn open(path: &Path) -> rusqlite::Result<CentralDb> {
        let mut conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")?;
        // Readers (reports) open it often while the consumer writes: take the write lock only
        // when there is something to create or upgrade.
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found >= CENTRAL_SCHEMA_VERSION {
            return Ok(CentralDb { conn });
        }
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version < CENTRAL_SCHEMA_VERSION {
            let v1: bool = tx.query_row(
                "SELECT COUNT(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'event'",
                [],
                |r| r.get(0),
            )?;
            if v1 {
                tx.execute_batch(UPGRADE_FROM_1)?;
                tx.execute_batch(SCHEMA)?;
                tx.execute_batch(UPGRADE_FROM_1_COPY)?;
                tracing::info!(db = %path.display(), "central database upgraded: events so far are each site's legacy stream");
            } else {
                tx.execute_batch(SCHEMA)?;
            }
            tx.pragma_update(None, "user_version", CENTRAL_SCHEMA_VERSION)?;
        }
        tx.commit()?;
        Ok(CentralDb { conn })
    }

    fn store_batch(&mut self, batch: &[rumqttc::Publish]) -> rusqlite::Result<BatchCounts> {
        let now = crate::clock::now().millis();
        let tx = self.conn.transaction()?;
        let mut counts = BatchCounts::default();
        let mut touched: Vec<String> = Vec::new();
        let mut known: std::collections::HashSet<(String, String)> = Default::default();
        let mut ensure = |tx: &rusqlite::Connection, site: &str, stream: &str| {
            if known.contains(&(site.to_owned(), stream.to_owned())) {
                return Ok(());
            }
            ensure_stream(tx, site, stream, now)?;
            known.insert((site.to_owned(), stream.to_owned()));
            Ok::<_, rusqlite::Error>(())
        };
        for p in batch {
            let Some((site, kind)) = contract::parse_up_topic(&p.topic) else {
                counts.unreadable += 1;
                continue;
            };
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
                    let stream = e.stream();
                    ensure(&tx, site, stream)?;
                    let arrival: i64 = tx
                        .prepare_cached(
                            "UPDATE site SET arrivals = arrivals + 1 WHERE site = ?1 RETURNING arrivals",
                        )?
                        .query_row([site], |r| r.get(0))?;
                    let withheld = e
                        .withheld
                        .as_ref()
                        .map(|w| serde_json::to_string(w).unwrap_or_default());
                    let body = e.event.as_ref().map(|b| b.get().to_owned());
                    let inserted = tx
                        .prepare_cached(
                            "INSERT OR IGNORE INTO event (site, stream, seq, id, kind, at_ms, lane, withheld, body, arrival, received_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                        )?
                        .execute(params![
                            site,
                            stream,
                            e.seq,
                            e.id,
                            e.kind,
                            e.at_ms,
                            e.lane.as_str(),
                            withheld,
                            body,
                            arrival,
                            now
                        ])?;
                    if inserted == 1 {
                        counts.stored += 1;
                        tx.prepare_cached(
                            "UPDATE stream SET received = received + 1, max_seq = MAX(max_seq, ?3)
                             WHERE site = ?1 AND stream = ?2",
                        )?
                        .execute(params![site, stream, e.seq])?;
                        if !touched.iter().any(|t| t == site) {
                            touched.push(site.to_owned());
                        }
                        continue;
                    }
                    // Not stored: the same event again, or another event under a number
                    // already held (a database that reused it). The second is never dropped.
                    tx.prepare_cached("UPDATE site SET arrivals = arrivals - 1 WHERE site = ?1")?
                        .execute([site])?;
                    let stored_id: String = tx
                        .prepare_cached(
                            "SELECT id FROM event WHERE site = ?1 AND stream = ?2 AND seq = ?3",
                        )?
                        .query_row(params![site, stream, e.seq], |r| r.get(0))?;
                    let conflict = stored_id != e.id
                        && tx
                            .prepare_cached(
                                "INSERT OR IGNORE INTO conflict (site, stream, seq, id, stored_id, kind, at_ms, lane, withheld, body, received_at)
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                            )?
                            .execute(params![
                                site,
                                stream,
                                e.seq,
                                e.id,
                                stored_id,
                                e.kind,
                                e.at_ms,
                                e.lane.as_str(),
                                withheld,
                                body,
                                now
                            ])?
                            == 1;
                    if conflict {
                        counts.conflicts += 1;
                        tracing::warn!(site, stream, seq = e.seq, stored_id = %stored_id, id = %e.id,
                            "an event arrived under a sequence number already held by another event; both are kept");
                        tx.prepare_cached(
                            "UPDATE stream SET conflicts = conflicts + 1 WHERE site = ?1 AND stream = ?2",
                        )?
                        .execute(params![site, stream])?;
                    } else {
                        counts.duplicates += 1;
                        tx.prepare_cached(
                            "UPDATE stream SET duplicates = duplicates + 1 WHERE site = ?1 AND stream = ?2",
                        )?
                        .execute(params![site, stream])?;
                    }
                }
                UpTopic::Status | UpTopic::Heartbeat => {
                    let text = String::from_utf8_lossy(&p.payload).into_owned();
                    let (last, first, lineage) = match kind {
                        UpTopic::Status => serde_json::from_str::<contract::Status>(&text)
                            .map(|s| (s.last_seq, s.first_undelivered_seq, s.stream)),
                        _ => serde_json::from_str::<contract::Heartbeat>(&text)
                            .map(|h| (h.last_seq, h.first_undelivered_seq, h.stream)),
                    }
                    .unwrap_or((0, None, Default::default()));
                    let stream = lineage.stream.as_deref().unwrap_or(LEGACY_STREAM);
                    ensure(&tx, site, stream)?;
                    if let Some(base) = lineage.stream_base_seq {
                        tx.prepare_cached(
                            "UPDATE stream SET continues = ?3, base_seq = ?4 WHERE site = ?1 AND stream = ?2",
                        )?
                        .execute(params![site, stream, lineage.stream_continues, base])?;
                    }
                    let column = if kind == UpTopic::Status {
                        "status"
                    } else {
                        "heartbeat"
                    };
                    tx.execute(
                        &format!(
                            "UPDATE site SET {column} = ?2, hub_last_seq = ?3, hub_first_undelivered = ?4,
                                 current_stream = ?5 WHERE site = ?1"
                        ),
                        params![site, text, last, first.unwrap_or(last + 1), stream],
                    )?;
                    if !touched.iter().any(|t| t == site) {
                        touched.push(site.to_owned());
                    }
                }
            }
        }
        for site in touched {
            advance_site(&tx, &site)?;
        }
        tx.commit()?;
        Ok(counts)
    }

    /// The state of every site.
    pub fn report(&self) -> rusqlite::Result<CentralReport> {
        let mut st = self
            .conn
            .prepare("SELECT site, current_stream, hub_last_seq, status FROM site ORDER BY site")?;
        let rows: Vec<SiteRow> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        let mut sites = Vec::new();
        for (site, current, hub_last, status) in rows {
            let streams = self.streams(&site, current.as_deref())?;
            let withheld: i64 = self.conn.query_row(
                "SELECT COUNT(*) FROM event WHERE site = ?1 AND withheld IS NOT NULL",
                [&site],
                |r| r.get(0),
            )?;
            let now = streams.iter().find(|t| t.current);
            sites.push(SiteReport {
                stream: current.clone(),
                events: streams.iter().map(|t| t.events).sum(),
                duplicates_dropped: streams.iter().map(|t| t.duplicates_dropped).sum(),
                contiguous_seq: now.map_or(0, |t| t.contiguous_seq),
                max_seq: now.map_or(0, |t| t.max_seq),
                gaps: now.map(|t| t.gaps.clone()).unwrap_or_default(),
                withheld,
                hub_state: status
                    .and_then(|s| serde_json::from_str::<contract::Status>(&s).ok())
                    .map(|s| s.state),
                hub_last_seq: hub_last,
                conflicts: streams.iter().map(|t| t.conflicts).sum(),
                conflicting_events: self.conflicts(&site)?,
                streams,
                site,
            });
        }
        Ok(CentralReport { sites })
    }

    fn streams(&self, site: &str, current: Option<&str>) -> rusqlite::Result<Vec<StreamReport>> {
        let mut st = self.conn.prepare(
            "SELECT stream, continues, base_seq, first_seen_at, received, duplicates, conflicts,
                    contiguous_seq, max_seq
             FROM stream s WHERE site = ?1
             ORDER BY stream = ?2 DESC, first_seen_at DESC, stream",
        )?;
        let rows = st
            .query_map(params![site, current], |r| {
                Ok(StreamReport {
                    current: false,
                    stream: r.get(0)?,
                    continues: r.get(1)?,
                    base_seq: r.get(2)?,
                    rewound_past: None,
                    first_seen_at_ms: r.get(3)?,
                    events: r.get(4)?,
                    duplicates_dropped: r.get(5)?,
                    conflicts: r.get(6)?,
                    contiguous_seq: r.get(7)?,
                    max_seq: r.get(8)?,
                    gaps: Vec::new(),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let max_of: HashMap<String, i64> =
            rows.iter().map(|t| (t.stream.clone(), t.max_seq)).collect();
        rows.into_iter()
            .map(|mut t| {
                t.current = current == Some(t.stream.as_str());
                t.gaps = gaps(&self.conn, site, &t.stream, t.contiguous_seq, t.max_seq)?;
                t.rewound_past = t
                    .continues
                    .as_ref()
                    .and_then(|c| max_of.get(c))
                    .copied()
                    .filter(|past| *past > t.base_seq);
                Ok(t)
            })
            .collect()
    }

    /// Events kept as conflicts for a site, first 100 by stream and sequence number.
    pub fn conflicts(&self, site: &str) -> rusqlite::Result<Vec<ConflictReport>> {
        let mut st = self.conn.prepare(
            "SELECT stream, seq, stored_id, id, kind, received_at FROM conflict
             WHERE site = ?1 ORDER BY stream, seq, received_at LIMIT 100",
        )?;
        st.query_map([site], |r| {
            Ok(ConflictReport {
                stream: r.get(0)?,
                seq: r.get(1)?,
                stored_id: r.get(2)?,
                id: r.get(3)?,
                kind: r.get(4)?,
                received_at_ms: r.get(5)?,
            })
        })?
        .collect()
    }

    /// Every stored event of a site: stream by stream (in the order central first saw them),
    /// each in sequence order.
    pub fn events(&self, site: &str) -> rusqlite::Result<Vec<StoredEvent>> {
        let mut st = self.conn.prepare(
            "SELECT e.stream, e.seq, e.id, e.kind, e.lane, e.arrival, e.withheld, e.body
             FROM event e JOIN stream s ON s.site = e.site AND s.stream = e.stream
             WHERE e.site = ?1 ORDER BY s.first_seen_at, e.stream, e.seq",
        )?;
        st.query_map([site], |r| {
            Ok(StoredEvent {
                stream: r.get(0)?,
                seq: r.get(1)?,
                id: r.get(2)?,
                kind: r.get(3)?,
                lane: r.get(4)?,
                arrival: r.get(5)?,
                withheld: r.get(6)?,
                body: r.get(7)?,
            })
        })?
        .collect()
    }

    fn sync_state(&self) -> rusqlite::Result<Vec<SyncState>> {
        let mut st = self.conn.prepare(
            "SELECT s.site, s.current_stream, t.contiguous_seq, s.hub_first_undelivered
             FROM site s JOIN stream t ON t.site = s.site AND t.stream = s.current_stream",
        )?;
        let rows: Vec<(String, String, i64, Option<i64>)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(site, stream, contiguous, first)| {
                let chain = chain(&self.conn, &site, &stream)?;
                let (held, _) = held_after(&self.conn, &site, &chain, contiguous, 1)?;
                Ok((site, stream, contiguous, first, held.first().copied()))
            })
            .collect()
    }
}

/// The streams whose events count for `stream`, each with the highest sequence number that
/// counts: the stream itself (all), the one it continues (up to its base), and so on.
fn chain(
    conn: &rusqlite::Connection,
    site: &str,
    stream: &str,
) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut out = vec![(stream.to_owned(), i64::MAX)];
    let mut limit = i64::MAX;
    let mut at = stream.to_owned();
    let mut st = conn
        .prepare_cached("SELECT continues, base_seq FROM stream WHERE site = ?1 AND stream = ?2")?;
    while out.len() < 32 {
        let link: Option<(Option<String>, i64)> = st
            .query_row(params![site, at], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((Some(parent), base)) = link else {
            break;
        };
        if out.iter().any(|(s, _)| *s == parent) {
            break;
        }
        limit = limit.min(base);
        out.push((parent.clone(), limit));
        at = parent;
    }
    Ok(out)
}

/// Sequence numbers after `after` held for a stream through its chain, in order, at most
/// about `batch`; `true` when that is all of them.
fn held_after(
    conn: &rusqlite::Connection,
    site: &str,
    chain: &[(String, i64)],
    after: i64,
    batch: usize,
) -> rusqlite::Result<(Vec<i64>, bool)> {
    let mut st = conn.prepare_cached(
        "SELECT seq FROM event WHERE site = ?1 AND stream = ?2 AND seq > ?3 AND seq <= ?4
         ORDER BY seq LIMIT ?5",
    )?;
    let mut all = Vec::new();
    let mut bound = i64::MAX;
    for (stream, limit) in chain {
        let rows: Vec<i64> = st
            .query_map(params![site, stream, after, limit, batch as i64], |r| {
                r.get(0)
            })?
            .collect::<Result<_, _>>()?;
        if rows.len() >= batch
            && let Some(last) = rows.last()
        {
            bound = bound.min(*last);
        }
        all.extend(rows);
    }
    all.sort_unstable();
    all.dedup();
    all.retain(|seq| *seq <= bound);
    Ok((all, bound == i64::MAX))
}

/// Moves every stream of a site to its highest contiguous sequence number (a stream's
/// events, or its base's, may have arrived).
fn advance_site(tx: &rusqlite::Connection, site: &str) -> rusqlite::Result<()> {
    let streams: Vec<(String, i64)> = tx
        .prepare_cached("SELECT stream, contiguous_seq FROM stream WHERE site = ?1")?
        .query_map([site], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (stream, start) in streams {
        let chain = chain(tx, site, &stream)?;
        let mut contiguous = start;
        'outer: loop {
            let (seqs, complete) = held_after(tx, site, &chain, contiguous, 1000)?;
            for seq in &seqs {
                if *seq != contiguous + 1 {
                    break 'outer;
                }
                contiguous = *seq;
            }
            if complete || seqs.is_empty() {
                break;
            }
        }
        if contiguous != start {
            tx.prepare_cached(
                "UPDATE stream SET contiguous_seq = ?3 WHERE site = ?1 AND stream = ?2",
            )?
            .execute(params![site, stream, contiguous])?;
        }
    }
    Ok(())
}

fn gaps(
    conn: &rusqlite::Connection,
    site: &str,
    stream: &str,
    contiguous: i64,
    max_seq: i64,
) -> rusqlite::Result<Gaps> {
    let mut out = Vec::new();
    if max_seq <= contiguous {
        return Ok(out);
    }
    let chain = chain(conn, site, stream)?;
    let mut expected = contiguous + 1;
    let mut after = contiguous;
    loop {
        let (seqs, complete) = held_after(conn, site, &chain, after, 1000)?;
        for seq in &seqs {
            if *seq > max_seq {
                return Ok(out);
            }
            if *seq > expected {
                out.push((expected, seq - 1));
                if out.len() >= 100 {
                    return Ok(out);
                }
            }
            expected = seq + 1;
        }
        match seqs.last() {
            Some(last) if !complete => after = *last,
            _ => return Ok(out),
        }
    }
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
                stream: Default::default(),
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

async fn connection(
    options: &CentralOptions,
    db: &Arc<Mutex<CentralDb>>,
    gaps: &mut HashMap<String, (String, i64, Instant)>,
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
    let mut last_cursor: HashMap<String, (String, i64, Instant)> = HashMap::new();
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
                    tracing::debug!(stored = counts.stored, duplicates = counts.duplicates, conflicts = counts.conflicts, "central batch");
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
                for (site, stream, contiguous, hub_first_undelivered, next_present) in state {
                    if !contract::site_fits_topic(&site) { continue; }
                    // Cursors and resends name the hub's current stream (none for the legacy
                    // stream, as an older hub expects).
                    let named = (stream != LEGACY_STREAM).then(|| stream.clone());
                    let sent = last_cursor.get(&site);
                    if contiguous > 0 && sent.is_none_or(|(s, seq, at)| *s != stream || (*seq != contiguous && at.elapsed() >= options.cursor_every)) {
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
                        let to = next_present.map_or(hub_delivered_up_to, |n| (n - 1).min(hub_delivered_up_to));
                        let msg = SyncControl::Resend { v: contract::CONTRACT_VERSION, site: site.clone(), stream: named, from_seq: contiguous + 1, to_seq: to };
                        if client.try_publish(contract::sync_topic(&site), QoS::AtLeastOnce, false, contract::encode(&msg)).is_ok() {
                            tracing::info!(site = %site, stream = %stream, from_seq = contiguous + 1, to_seq = to, "asked the hub to resend missing events");
                        }
                        entry.2 = Instant::now();
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

    fn publish(topic: String, payload: serde_json::Value) -> rumqttc::Publish {
        rumqttc::Publish::new(
            topic,
            QoS::AtLeastOnce,
            serde_json::to_vec(&payload).unwrap(),
        )
    }

    fn event(stream: Option<&str>, seq: i64, id: &str) -> rumqttc::Publish {
        let mut e = serde_json::json!({"v": 1, "site": "s1", "seq": seq, "id": id,
            "kind": "sync_alert", "at_ms": 1, "lane": "live",
            "event": {"kind": "sync_alert", "code": "t", "message": id, "seq": null}});
        if let Some(stream) = stream {
            e["stream"] = serde_json::json!(stream);
        }
        publish(contract::events_topic("s1"), e)
    }

    fn status(stream: &str, continues: Option<&str>, base: i64, last: i64) -> rumqttc::Publish {
        publish(
            contract::status_topic("s1"),
            serde_json::json!({"v": 1, "site": "s1", "state": "online", "hub_version": "t",
                "last_seq": last, "first_undelivered_seq": null, "at_ms": 1,
                "stream": stream, "stream_continues": continues, "stream_base_seq": base}),
        )
    }

    fn db() -> (tempfile::TempDir, CentralDb) {
        let dir = tempfile::tempdir().unwrap();
        let db = CentralDb::open(&dir.path().join("central.sqlite")).unwrap();
        (dir, db)
    }

    fn site(db: &CentralDb) -> SiteReport {
        db.report().unwrap().sites.remove(0)
    }

    #[test]
    fn the_same_stream_and_seq_under_another_id_is_a_conflict_not_a_duplicate() {
        let (_dir, mut db) = db();
        db.store_batch(&[event(Some("A"), 1, "id-1"), event(Some("A"), 2, "id-2")])
            .unwrap();
        // The same event again is a duplicate; another event under A #2 is kept apart.
        let counts = db
            .store_batch(&[event(Some("A"), 2, "id-2"), event(Some("A"), 2, "id-X")])
            .unwrap();
        assert_eq!((counts.duplicates, counts.conflicts), (1, 1));
        // Delivered again, the conflicting event is not counted twice.
        db.store_batch(&[event(Some("A"), 2, "id-X")]).unwrap();
        let r = site(&db);
        assert_eq!(r.duplicates_dropped, 2, "{r:?}");
        assert_eq!((r.events, r.conflicts, r.contiguous_seq), (2, 1, 2));
        assert!(r.gaps.is_empty());
        assert_eq!(
            r.conflicting_events,
            [ConflictReport {
                stream: "A".into(),
                seq: 2,
                stored_id: "id-2".into(),
                id: "id-X".into(),
                kind: "sync_alert".into(),
                received_at_ms: r.conflicting_events[0].received_at_ms,
            }]
        );
        // The first event keeps its place; the conflicting one is stored in full.
        let ids: Vec<String> = db.events("s1").unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["id-1", "id-2"]);
        let body: String = db
            .conn
            .query_row("SELECT body FROM conflict WHERE id = 'id-X'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(body.contains("id-X"), "{body}");
        let text = db.report().unwrap().to_string();
        assert!(text.contains("CONFLICT stream A #2"), "{text}");
        let json = serde_json::to_value(db.report().unwrap()).unwrap();
        assert_eq!(json["sites"][0]["conflicting_events"][0]["id"], "id-X");
    }

    #[test]
    fn streams_are_kept_apart_and_a_rewound_one_continues_its_base() {
        let (_dir, mut db) = db();
        // Stream A reaches #5; the database is rewound to #3 and continues as stream B.
        let a: Vec<_> = (1..=5)
            .map(|n| event(Some("A"), n, &format!("a{n}")))
            .collect();
        db.store_batch(&a).unwrap();
        db.store_batch(&[status("A", None, 0, 5)]).unwrap();
        let b: Vec<_> = (4..=6)
            .map(|n| event(Some("B"), n, &format!("b{n}")))
            .collect();
        db.store_batch(&b).unwrap();
        // Before B's status says where it starts, its own events leave #1..=3 open.
        let r = site(&db);
        let b_report = r.streams.iter().find(|t| t.stream == "B").unwrap();
        assert_eq!(b_report.gaps, [(1, 3)]);
        db.store_batch(&[status("B", Some("A"), 3, 6)]).unwrap();
        let r = site(&db);
        assert_eq!(r.stream.as_deref(), Some("B"));
        assert_eq!((r.events, r.duplicates_dropped, r.conflicts), (8, 0, 0));
        assert_eq!((r.contiguous_seq, r.max_seq), (6, 6));
        assert!(r.gaps.is_empty(), "{:?}", r.gaps);
        let streams: Vec<(&str, bool, Option<i64>)> = r
            .streams
            .iter()
            .map(|t| (t.stream.as_str(), t.current, t.rewound_past))
            .collect();
        assert_eq!(streams, [("B", true, Some(5)), ("A", false, None)]);
        let text = db.report().unwrap().to_string();
        assert!(text.contains("continues A up to #3; REWOUND"), "{text}");
        // The cursor and resends follow the current stream.
        let state = db.sync_state().unwrap();
        let s1 = state.iter().find(|s| s.0 == "s1").unwrap();
        assert_eq!((s1.1.as_str(), s1.2), ("B", 6));
    }

    #[test]
    fn messages_without_a_stream_are_the_legacy_stream() {
        let (_dir, mut db) = db();
        db.store_batch(&[event(None, 1, "l1"), event(None, 2, "l2")])
            .unwrap();
        let r = site(&db);
        assert_eq!(r.stream.as_deref(), Some(LEGACY_STREAM));
        assert_eq!((r.events, r.contiguous_seq), (2, 2));
    }

    #[test]
    fn a_database_of_the_first_schema_is_upgraded_to_the_legacy_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("central.sqlite");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE event (site TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL,
                    kind TEXT NOT NULL, at_ms INTEGER NOT NULL, lane TEXT NOT NULL, withheld TEXT,
                    body TEXT, arrival INTEGER NOT NULL, received_at INTEGER NOT NULL,
                    PRIMARY KEY (site, seq)) WITHOUT ROWID;
                 CREATE TABLE site (site TEXT PRIMARY KEY, contiguous_seq INTEGER NOT NULL DEFAULT 0,
                    max_seq INTEGER NOT NULL DEFAULT 0, received INTEGER NOT NULL DEFAULT 0,
                    duplicates INTEGER NOT NULL DEFAULT 0, arrivals INTEGER NOT NULL DEFAULT 0,
                    hub_last_seq INTEGER, hub_first_undelivered INTEGER, status TEXT, heartbeat TEXT);
                 INSERT INTO event VALUES ('s1', 1, 'x1', 'k', 1, 'live', NULL, '{}', 1, 1),
                                          ('s1', 2, 'x2', 'k', 1, 'live', NULL, '{}', 2, 1);
                 INSERT INTO site (site, contiguous_seq, max_seq, received, duplicates, arrivals)
                    VALUES ('s1', 2, 2, 2, 7, 2);",
            )
            .unwrap();
        }
        let mut db = CentralDb::open(&path).unwrap();
        let r = site(&db);
        assert_eq!(
            (
                r.stream.as_deref(),
                r.events,
                r.duplicates_dropped,
                r.contiguous_seq
            ),
            (Some(LEGACY_STREAM), 2, 7, 2)
        );
        // The hub, upgraded too, continues the legacy stream after #2.
        db.store_batch(&[
            status("N", Some(LEGACY_STREAM), 2, 3),
            event(Some("N"), 3, "n3"),
        ])
        .unwrap();
        let r = site(&db);
        assert_eq!(
            (r.stream.as_deref(), r.contiguous_seq, r.events),
            (Some("N"), 3, 3)
        );
        assert!(r.gaps.is_empty());
        drop(db);
        // Opening it again changes nothing.
        assert_eq!(site(&CentralDb::open(&path).unwrap()).events, 3);
    }
}

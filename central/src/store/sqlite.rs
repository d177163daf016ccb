//! Central's SQLite database: events by `(site, stream, seq)`, conflicts kept apart, streams
//! with their lineage, and per site the hub's last status and heartbeat. The consumer is its
//! only writer; reports open it read-only while the consumer runs.

use super::{
    Arrival, BatchCounts, EventStore, Incoming, Quarantined, ResendClaim, SiteSyncState,
    StoreError, StoredEvent, classify, excerpt, topic_site,
};
use crate::report::{CentralReport, ConflictReport, Gaps, SiteReport, StreamReport};
use hub_contract::{self as contract, LEGACY_STREAM, UpTopic};
use rusqlite::{OptionalExtension, params};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// The consumer's database.
pub struct CentralDb {
    conn: rusqlite::Connection,
}

/// A site row: name, current stream, hub's last seq, status JSON.
type SiteRow = (String, Option<String>, Option<i64>, Option<String>);

/// Schema version of central's database (`PRAGMA user_version`). Version 1 (no streams) is
/// upgraded in place: its events become the `legacy` stream; version 2 gains the quarantine.
const CENTRAL_SCHEMA_VERSION: i64 = 3;

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
    gap_since INTEGER,
    PRIMARY KEY (site, stream)
);
CREATE TABLE IF NOT EXISTS site_day (
    site TEXT NOT NULL,
    day INTEGER NOT NULL,
    events INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (site, day)
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
CREATE TABLE IF NOT EXISTS resend_lease (
    site TEXT NOT NULL,
    stream TEXT NOT NULL,
    from_seq INTEGER NOT NULL,
    to_seq INTEGER NOT NULL,
    requested_at INTEGER NOT NULL,
    requested_by TEXT NOT NULL,
    PRIMARY KEY (site, stream, from_seq)
);
CREATE TABLE IF NOT EXISTS quarantine (
    topic TEXT NOT NULL,
    site TEXT,
    reason TEXT NOT NULL,
    excerpt TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS site (
    site TEXT PRIMARY KEY,
    current_stream TEXT,
    arrivals INTEGER NOT NULL DEFAULT 0,
    hub_last_seq INTEGER,
    hub_first_undelivered INTEGER,
    status TEXT,
    heartbeat TEXT,
    status_at_ms INTEGER,
    heartbeat_at_ms INTEGER,
    status_hub_at INTEGER,
    heartbeat_hub_at INTEGER
);
"#;

/// Upgrade of a version 2 database: what the fleet view needs (its new tables come from
/// `SCHEMA`).
const UPGRADE_FROM_2: &str = r#"
ALTER TABLE stream ADD COLUMN gap_since INTEGER;
ALTER TABLE site ADD COLUMN status_at_ms INTEGER;
ALTER TABLE site ADD COLUMN heartbeat_at_ms INTEGER;
ALTER TABLE site ADD COLUMN status_hub_at INTEGER;
ALTER TABLE site ADD COLUMN heartbeat_hub_at INTEGER;
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
    ///
    /// A file whose schema the consumer has not committed yet (it is creating it right now) is
    /// `None` too; one of the first schema (before streams) is an error saying to let the
    /// consumer upgrade it.
    pub fn open_read_only(path: &Path) -> Result<Option<CentralDb>, StoreError> {
        if !path.exists() {
            return Ok(None);
        }
        let conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // One statement, so one snapshot: read separately, the version could come from before
        // the consumer's schema commit and the table list from after it.
        let (version, has_events): (i64, bool) = conn.query_row(
            "SELECT (SELECT user_version FROM pragma_user_version),
                    (SELECT COUNT(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'event')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if version >= CENTRAL_SCHEMA_VERSION {
            return Ok(Some(CentralDb { conn }));
        }
        if has_events {
            return Err(StoreError::OldSchema {
                path: path.to_owned(),
            });
        }
        Ok(None)
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
            let v1: bool = version < 2
                && tx.query_row(
                    "SELECT COUNT(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'event'",
                    [],
                    |r| r.get(0),
                )?;
            if v1 {
                tx.execute_batch(UPGRADE_FROM_1)?;
                tx.execute_batch(SCHEMA)?;
                tx.execute_batch(UPGRADE_FROM_1_COPY)?;
                tracing::info!(db = %path.display(), "central database upgraded: events so far are each site's legacy stream");
            } else if version == 2 {
                tx.execute_batch(SCHEMA)?;
                tx.execute_batch(UPGRADE_FROM_2)?;
            } else {
                tx.execute_batch(SCHEMA)?;
            }
            tx.pragma_update(None, "user_version", CENTRAL_SCHEMA_VERSION)?;
        }
        tx.commit()?;
        Ok(CentralDb { conn })
    }

    fn store(&mut self, batch: &[Arrival<'_>], now: i64) -> rusqlite::Result<BatchCounts> {
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
            let incoming = match classify(p) {
                Ok(incoming) => incoming,
                Err(reason) => {
                    counts.quarantined(reason);
                    tracing::warn!(
                        topic = p.topic,
                        reason = reason.as_str(),
                        "central quarantined a message"
                    );
                    tx.prepare_cached(
                        "INSERT INTO quarantine (topic, site, reason, excerpt, bytes, received_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![
                        p.topic,
                        topic_site(p.topic),
                        reason.as_str(),
                        excerpt(p.payload),
                        p.payload.len() as i64,
                        now
                    ])?;
                    continue;
                }
            };
            match incoming {
                Incoming::Event { site, event: e } => {
                    let stream = e.stream();
                    ensure(&tx, site, stream)?;
                    let arrival: i64 = tx
                        .prepare_cached(
                            "UPDATE site SET arrivals = arrivals + 1 WHERE site = ?1 RETURNING arrivals",
                        )?
                        .query_row([site], |r| r.get(0))?;
                    let withheld = e.withheld.as_ref().map(contract::Withheld::to_json);
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
                        tx.prepare_cached(
                            "INSERT INTO site_day (site, day, events) VALUES (?1, ?2, 1)
                             ON CONFLICT (site, day) DO UPDATE SET events = events + 1",
                        )?
                        .execute(params![site, now.div_euclid(86_400_000)])?;
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
                Incoming::Report { site, kind } => {
                    let text = String::from_utf8_lossy(p.payload).into_owned();
                    let super::HubReport {
                        at_ms,
                        last_seq: last,
                        first_undelivered: first,
                        lineage,
                    } = super::read_hub_report(kind, &text);
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
                            "UPDATE site SET {column} = ?2, {column}_at_ms = ?6, {column}_hub_at = ?7,
                                 hub_last_seq = ?3, hub_first_undelivered = ?4, current_stream = ?5
                             WHERE site = ?1 AND ({column}_hub_at IS NULL OR {column}_hub_at <= ?7)"
                        ),
                        params![site, text, last, first.unwrap_or(last + 1), stream, now, at_ms],
                    )?;
                    if !touched.iter().any(|t| t == site) {
                        touched.push(site.to_owned());
                    }
                }
            }
        }
        for site in touched {
            advance_site(&tx, &site)?;
            tx.prepare_cached(
                "UPDATE stream SET gap_since = CASE WHEN contiguous_seq < max_seq
                     THEN COALESCE(gap_since, ?2) ELSE NULL END WHERE site = ?1",
            )?
            .execute(params![site, now])?;
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
                    .and_then(|s| contract::decode_status(s.as_bytes()).ok())
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

    fn sync_states(&self) -> rusqlite::Result<Vec<SiteSyncState>> {
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
                Ok(SiteSyncState {
                    site,
                    stream,
                    contiguous_seq: contiguous,
                    hub_first_undelivered: first,
                    next_held: held.first().copied(),
                })
            })
            .collect()
    }
}

impl EventStore for CentralDb {
    fn store_batch(
        &mut self,
        batch: &[Arrival<'_>],
        received_at_ms: i64,
    ) -> Result<BatchCounts, StoreError> {
        Ok(self.store(batch, received_at_ms)?)
    }

    fn report(&self) -> Result<CentralReport, StoreError> {
        Ok(CentralDb::report(self)?)
    }

    fn sync_state(&self) -> Result<Vec<SiteSyncState>, StoreError> {
        Ok(self.sync_states()?)
    }

    fn events(&self, site: &str) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(CentralDb::events(self, site)?)
    }

    fn claim_resend(&mut self, c: &ResendClaim<'_>) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT INTO resend_lease (site, stream, from_seq, to_seq, requested_at, requested_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (site, stream, from_seq) DO UPDATE
                SET to_seq = excluded.to_seq, requested_at = excluded.requested_at,
                    requested_by = excluded.requested_by
                WHERE resend_lease.requested_at <= excluded.requested_at - ?7",
            params![
                c.site, c.stream, c.from_seq, c.to_seq, c.now_ms, c.consumer, c.lease_ms
            ],
        )?;
        Ok(n == 1)
    }

    fn fleet_rows(&self, day: i64) -> Result<Vec<crate::fleet::FleetRow>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT s.site, s.status, s.status_at_ms, s.heartbeat, s.heartbeat_at_ms,
                    COALESCE(t.contiguous_seq, 0), COALESCE(t.max_seq, 0), s.hub_last_seq, t.gap_since,
                    COALESCE((SELECT d.events FROM site_day d WHERE d.site = s.site AND d.day = ?1), 0),
                    COALESCE((SELECT SUM(x.received) FROM stream x WHERE x.site = s.site), 0),
                    (SELECT COUNT(*) FROM quarantine q WHERE q.site = s.site)
             FROM site s LEFT JOIN stream t ON t.site = s.site AND t.stream = s.current_stream
             ORDER BY s.site",
        )?;
        Ok(st
            .query_map([day], |r| {
                Ok(crate::fleet::FleetRow {
                    site: r.get(0)?,
                    status: r.get(1)?,
                    status_at_ms: r.get(2)?,
                    heartbeat: r.get(3)?,
                    heartbeat_at_ms: r.get(4)?,
                    contiguous_seq: r.get(5)?,
                    max_seq: r.get(6)?,
                    hub_last_seq: r.get(7)?,
                    gap_since_ms: r.get(8)?,
                    events_today: r.get(9)?,
                    events_total: r.get(10)?,
                    quarantined: r.get(11)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn quarantined(&self) -> Result<Vec<Quarantined>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT topic, reason, excerpt, bytes, received_at FROM quarantine
             ORDER BY rowid LIMIT 1000",
        )?;
        Ok(st
            .query_map([], |r| {
                Ok(Quarantined {
                    topic: r.get(0)?,
                    reason: r.get(1)?,
                    excerpt: r.get(2)?,
                    bytes: r.get(3)?,
                    received_at_ms: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?)
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
pub fn report(db: &Path) -> Result<CentralReport, StoreError> {
    match CentralDb::open_read_only(db)? {
        Some(db) => Ok(db.report()?),
        None => Ok(CentralReport { sites: Vec::new() }),
    }
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
    use rumqttc::QoS;

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

    impl CentralDb {
        /// Stores a batch as the consumer does (arrival time 1).
        fn store_batch(&mut self, batch: &[rumqttc::Publish]) -> rusqlite::Result<BatchCounts> {
            let arrivals: Vec<Arrival<'_>> = batch
                .iter()
                .map(|p| Arrival {
                    topic: &p.topic,
                    payload: &p.payload,
                })
                .collect();
            self.store(&arrivals, 1)
        }
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
    fn a_report_while_the_consumer_creates_its_database_is_empty_not_an_error() {
        // `central run` creates the file before it commits the schema: a report in between
        // sees a database without tables.
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("central.sqlite");
        std::fs::write(&db, b"").unwrap();
        assert_eq!(report(&db).unwrap().sites.len(), 0);
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch("PRAGMA journal_mode=WAL;")
            .unwrap();
        assert_eq!(report(&db).unwrap().sites.len(), 0);
        // A database of the first schema is not empty: the consumer must upgrade it first.
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch("CREATE TABLE event (site TEXT, seq INTEGER);")
            .unwrap();
        let err = report(&db).unwrap_err();
        assert!(err.to_string().contains("central run"), "{err}");
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
        let state = db.sync_states().unwrap();
        let s1 = state.iter().find(|s| s.site == "s1").unwrap();
        assert_eq!((s1.stream.as_str(), s1.contiguous_seq), ("B", 6));
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

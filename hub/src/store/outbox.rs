//! The transactional outbox: events written in the same transaction as the change they report.
//!
//! Each event gets the next per-site sequence number (from a counter row, so numbers are never
//! reused even after delivered rows are pruned) and a unique id. A rolled-back transaction takes
//! its numbers with it, so committed sequence numbers have no gaps. Delivery (MQTT) is another
//! module's job; this one only appends, reads and marks.

use hub_core::{DomainEvent, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// Turns an SQLite error on this connection into a store error naming the file.
pub fn sql(conn: &Connection) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::from_sqlite(std::path::Path::new(conn.path().unwrap_or(":memory:")), e)
}

/// Takes the next value of a named counter (first value is 1).
pub fn next_counter(conn: &Connection, name: &str) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO counter (name, value) VALUES (?1, 1)
         ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
    )
    .and_then(|mut st| st.query_row([name], |r| r.get(0)))
    .map_err(sql(conn))
}

/// A row as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboxRow {
    pub seq: i64,
    pub id: String,
    pub kind: String,
    /// The event as JSON (`DomainEvent` serialisation).
    pub payload: String,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

/// Appends an event; returns its sequence number.
pub fn append(conn: &Connection, event: &DomainEvent, now: Timestamp) -> Result<i64, StoreError> {
    let seq = next_counter(conn, "outbox_seq")?;
    let payload = serde_json::to_string(event).map_err(|e| StoreError::Sqlite {
        path: conn.path().unwrap_or_default().into(),
        source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
    })?;
    conn.prepare_cached(
        "INSERT INTO outbox (seq, id, kind, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut st| {
        st.execute(params![
            seq,
            uuid::Uuid::now_v7().to_string(),
            event.kind(),
            payload,
            now.millis()
        ])
    })
    .map_err(sql(conn))?;
    Ok(seq)
}

/// Undelivered rows in sequence order, starting after `after_seq`.
pub fn pending(
    conn: &Connection,
    after_seq: i64,
    limit: usize,
) -> Result<Vec<OutboxRow>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT seq, id, kind, payload, created_at, delivered_at FROM outbox
             WHERE delivered_at IS NULL AND seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .map_err(sql(conn))?;
    st.query_map(params![after_seq, limit as i64], |r| {
        Ok(OutboxRow {
            seq: r.get(0)?,
            id: r.get(1)?,
            kind: r.get(2)?,
            payload: r.get(3)?,
            created_at: r.get(4)?,
            delivered_at: r.get(5)?,
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(sql(conn))
}

/// Marks rows delivered (acknowledged by the broker).
pub fn mark_delivered(
    conn: &Connection,
    seqs: &[i64],
    now: Timestamp,
) -> Result<usize, StoreError> {
    let mut st = conn
        .prepare_cached(
            "UPDATE outbox SET delivered_at = ?2 WHERE seq = ?1 AND delivered_at IS NULL",
        )
        .map_err(sql(conn))?;
    let mut n = 0;
    for seq in seqs {
        n += st.execute(params![seq, now.millis()]).map_err(sql(conn))?;
    }
    Ok(n)
}

/// Depth and age of the outbox, for status and alerts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct OutboxStats {
    pub total: i64,
    pub undelivered: i64,
    pub oldest_undelivered_at: Option<i64>,
    /// Highest sequence number ever assigned (0 when none).
    pub last_seq: i64,
}

/// Reads outbox statistics.
pub fn stats(conn: &Connection) -> Result<OutboxStats, StoreError> {
    let (total, undelivered, oldest): (i64, i64, Option<i64>) = conn
        .query_row(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE delivered_at IS NULL),
                    MIN(created_at) FILTER (WHERE delivered_at IS NULL) FROM outbox",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(sql(conn))?;
    let last_seq = conn
        .query_row(
            "SELECT value FROM counter WHERE name = 'outbox_seq'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql(conn))?
        .unwrap_or(0);
    Ok(OutboxStats {
        total,
        undelivered,
        oldest_undelivered_at: oldest,
        last_seq,
    })
}

/// Checks the outbox invariants: stored sequence numbers are contiguous, unique (by
/// construction: primary key) and never above the counter. Returns what is wrong.
pub fn check_sequence(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let (count, min, max): (i64, Option<i64>, Option<i64>) = conn
        .query_row("SELECT COUNT(*), MIN(seq), MAX(seq) FROM outbox", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(sql(conn))?;
    let last = stats(conn)?.last_seq;
    let mut problems = Vec::new();
    if let (Some(min), Some(max)) = (min, max) {
        if max - min + 1 != count {
            problems.push(format!(
                "outbox sequence numbers {min}..={max} have gaps: {count} rows for {} numbers",
                max - min + 1
            ));
        }
        if max > last {
            problems.push(format!("outbox sequence {max} is above the counter {last}"));
        }
    }
    Ok(problems)
}

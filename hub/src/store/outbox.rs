//! The transactional outbox: events written in the same transaction as the change they report.
//!
//! Each event gets the next per-site sequence number (one above the highest row, or above the
//! counter row that keeps the floor when rows are pruned, so numbers are never reused) and a
//! unique id. A rolled-back transaction takes its numbers with it, so committed sequence
//! numbers have no gaps. Delivery (MQTT) is another module's job; this one only appends, reads
//! and marks (a delivered watermark, and rows marked on their own where it cannot move).

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

/// The next number of a sequence kept as the integer primary key `column` of `table`, whose
/// counter row `name` (what numbered it before) is only a floor now: one more than the larger
/// of the two. Reading both costs no page of the commit, where taking a counter row's next
/// value rewrote the counter's page every time. Rows are never deleted above the
/// floor: whatever deletes the highest numbers raises the floor first ([`prune`]), so no number
/// is given twice.
fn next_in_sequence(
    conn: &Connection,
    table: &str,
    column: &str,
    name: &str,
) -> Result<i64, StoreError> {
    Ok(last_in_sequence(conn, table, column, name)? + 1)
}

/// The highest number of that sequence given so far (0 when none).
fn last_in_sequence(
    conn: &Connection,
    table: &str,
    column: &str,
    name: &str,
) -> Result<i64, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT MAX(COALESCE((SELECT MAX({column}) FROM {table}), 0),
                    COALESCE((SELECT value FROM counter WHERE name = ?1), 0))"
    ))
    .and_then(|mut st| st.query_row([name], |r| r.get(0)))
    .map_err(sql(conn))
}

/// The next movement journal number (the movement journal is append-only: never deleted).
pub fn next_journal_seq(conn: &Connection) -> Result<i64, StoreError> {
    next_in_sequence(conn, "movement", "journal_seq", "journal_seq")
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
    let seq = next_in_sequence(conn, "outbox", "seq", "outbox_seq")?;
    let payload = hub_contract::stored::encode_event(event).map_err(|e| StoreError::Sqlite {
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

/// The delivered watermark (docs/reliability.md): every row numbered up to it is delivered,
/// whatever its own `delivered_at` says. The uplink's acknowledgements arrive in sequence
/// order, so marking them moves this one counter row instead of rewriting every outbox row
/// (each row page written twice, once appended and once marked) and keeping an index of
/// undelivered rows. Rows acknowledged out of order, withheld rows and resend ranges are
/// marked on their own (`delivered_at`) as before.
const DELIVERED_THROUGH: &str = "outbox_delivered_through";

/// The delivered watermark (0: none yet).
pub fn delivered_through(conn: &Connection) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT COALESCE((SELECT value FROM counter WHERE name = ?1), 0)")
        .and_then(|mut st| st.query_row([DELIVERED_THROUGH], |r| r.get(0)))
        .map_err(sql(conn))
}

fn set_delivered_through(conn: &Connection, seq: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO counter (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = ?2",
    )
    .and_then(|mut st| st.execute(params![DELIVERED_THROUGH, seq]))
    .map_err(sql(conn))?;
    Ok(())
}

/// The watermark as an SQL expression, for the queries below.
const THROUGH: &str =
    "COALESCE((SELECT value FROM counter WHERE name = 'outbox_delivered_through'), 0)";

/// Undelivered rows in sequence order, starting after `after_seq`.
pub fn pending(
    conn: &Connection,
    after_seq: i64,
    limit: usize,
) -> Result<Vec<OutboxRow>, StoreError> {
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT seq, id, kind, payload, created_at, delivered_at FROM outbox
                 WHERE delivered_at IS NULL AND seq > MAX(?1, {THROUGH}) ORDER BY seq LIMIT ?2"
        ))
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

/// Marks rows delivered (acknowledged by the broker): those that continue the delivered
/// watermark move it (through rows already marked on their own), the others are marked on
/// their own. Returns how many of `seqs` became delivered.
pub fn mark_delivered(
    conn: &Connection,
    seqs: &[i64],
    now: Timestamp,
) -> Result<usize, StoreError> {
    let through = delivered_through(conn)?;
    let mut seqs: Vec<i64> = seqs.iter().copied().filter(|s| *s > through).collect();
    seqs.sort_unstable();
    seqs.dedup();
    let mut ahead = seqs.into_iter().peekable();
    let mut next = through + 1;
    let mut n = 0;
    let mut marked_alone = conn
        .prepare_cached("SELECT delivered_at IS NOT NULL FROM outbox WHERE seq = ?1")
        .map_err(sql(conn))?;
    loop {
        if ahead.next_if_eq(&next).is_some() {
            n += 1;
        } else if !marked_alone
            .query_row([next], |r| r.get::<_, bool>(0))
            .optional()
            .map_err(sql(conn))?
            .unwrap_or(false)
        {
            break;
        }
        next += 1;
    }
    if next - 1 > through {
        set_delivered_through(conn, next - 1)?;
    }
    let mut st = conn
        .prepare_cached(
            "UPDATE outbox SET delivered_at = ?2 WHERE seq = ?1 AND delivered_at IS NULL",
        )
        .map_err(sql(conn))?;
    for seq in ahead {
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
    /// Lowest sequence number not yet acknowledged by the broker.
    pub first_undelivered_seq: Option<i64>,
}

/// Reads outbox statistics.
pub fn stats(conn: &Connection) -> Result<OutboxStats, StoreError> {
    let through = delivered_through(conn)?;
    let (total, undelivered, oldest): (i64, i64, Option<i64>) = conn
        .query_row(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE delivered_at IS NULL AND seq > ?1),
                    MIN(created_at) FILTER (WHERE delivered_at IS NULL AND seq > ?1) FROM outbox",
            [through],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(sql(conn))?;
    let last_seq = last_in_sequence(conn, "outbox", "seq", "outbox_seq")?;
    Ok(OutboxStats {
        total,
        undelivered,
        oldest_undelivered_at: oldest,
        last_seq,
        first_undelivered_seq: first_undelivered(conn)?,
    })
}

/// Undelivered rows with `after_seq < seq <= up_to`, in sequence order.
pub fn pending_between(
    conn: &Connection,
    after_seq: i64,
    up_to: i64,
    limit: usize,
) -> Result<Vec<OutboxRow>, StoreError> {
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT seq, id, kind, payload, created_at, delivered_at FROM outbox
                 WHERE delivered_at IS NULL AND seq > MAX(?1, {THROUGH}) AND seq <= ?2
                 ORDER BY seq LIMIT ?3"
        ))
        .map_err(sql(conn))?;
    st.query_map(params![after_seq, up_to, limit as i64], |r| {
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

/// The lowest undelivered sequence number, if any row waits.
pub fn first_undelivered(conn: &Connection) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT MIN(seq) FROM outbox WHERE delivered_at IS NULL AND seq > {THROUGH}"
    ))
    .and_then(|mut st| st.query_row([], |r| r.get(0)))
    .map_err(sql(conn))
}

/// Marks a row as withheld: it could not be sent (e.g. larger than the broker accepts) and a
/// marker was delivered in its place. The row itself is kept and never pruned.
pub fn mark_withheld(
    conn: &Connection,
    seq: i64,
    reason: &str,
    now: Timestamp,
) -> Result<usize, StoreError> {
    conn.prepare_cached(
        "UPDATE outbox SET withheld_reason = ?2, delivered_at = COALESCE(delivered_at, ?3)
         WHERE seq = ?1",
    )
    .and_then(|mut st| st.execute(params![seq, reason, now.millis()]))
    .map_err(sql(conn))
}

/// Makes delivered rows in `from..=to` undelivered again, so the uplink sends them anew (the
/// central system asked for a resend). Withheld rows stay as they are. Returns how many.
pub fn mark_undelivered(conn: &Connection, from: i64, to: i64) -> Result<usize, StoreError> {
    let through = delivered_through(conn)?;
    let n: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM outbox WHERE seq BETWEEN ?1 AND ?2 AND withheld_reason IS NULL
             AND (delivered_at IS NOT NULL OR seq <= ?3)",
        )
        .and_then(|mut st| st.query_row(params![from, to, through], |r| r.get(0)))
        .map_err(sql(conn))?;
    if from <= through {
        // The watermark goes back below the range; the rows it covered above the range stay
        // delivered, each on its own (when exactly is not known: their creation time).
        conn.prepare_cached(
            "UPDATE outbox SET delivered_at = created_at
             WHERE seq > ?1 AND seq <= ?2 AND delivered_at IS NULL",
        )
        .and_then(|mut st| st.execute(params![to, through]))
        .map_err(sql(conn))?;
        set_delivered_through(conn, from - 1)?;
    }
    conn.prepare_cached(
        "UPDATE outbox SET delivered_at = NULL
         WHERE seq BETWEEN ?1 AND ?2 AND delivered_at IS NOT NULL AND withheld_reason IS NULL",
    )
    .and_then(|mut st| st.execute(params![from, to]))
    .map_err(sql(conn))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// The highest sequence number the central system has confirmed holding (0 when none).
pub fn confirmed_seq(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row(
        "SELECT value FROM counter WHERE name = 'central_confirmed_seq'",
        [],
        |r| r.get(0),
    )
    .optional()
    .map(|v| v.unwrap_or(0))
    .map_err(sql(conn))
}

/// Records the central system's confirmation; it only ever moves forward. Returns the value
/// now stored.
pub fn confirm(conn: &Connection, seq: i64) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO counter (name, value) VALUES ('central_confirmed_seq', ?1)
         ON CONFLICT (name) DO UPDATE SET value = MAX(value, ?1) RETURNING value",
    )
    .and_then(|mut st| st.query_row([seq], |r| r.get(0)))
    .map_err(sql(conn))
}

/// Deletes the oldest delivered rows: only a prefix of the sequence, only rows delivered
/// before `delivered_before`, only up to what the central system confirmed, and never a
/// withheld or undelivered row (nor anything after one). Returns how many rows went.
pub fn prune(conn: &Connection, delivered_before: Timestamp) -> Result<usize, StoreError> {
    let confirmed = confirmed_seq(conn)?;
    // A row under the delivered watermark has no time of its own: its creation time stands in
    // (it was delivered after it; `confirmed` keeps anything central does not hold).
    let blocker: Option<i64> = conn
        .query_row(
            "SELECT MIN(seq) FROM outbox
             WHERE (delivered_at IS NULL AND seq > ?2) OR withheld_reason IS NOT NULL
                OR delivered_at >= ?1 OR (delivered_at IS NULL AND created_at >= ?1)",
            params![delivered_before.millis(), delivered_through(conn)?],
            |r| r.get(0),
        )
        .map_err(sql(conn))?;
    let limit = match blocker {
        Some(b) => confirmed.min(b - 1),
        None => confirmed,
    };
    if limit <= 0 {
        return Ok(0);
    }
    // The floor of the sequence first: deleting the highest rows must not free their numbers.
    conn.prepare_cached(
        "INSERT INTO counter (name, value) VALUES ('outbox_seq', ?1)
         ON CONFLICT (name) DO UPDATE SET value = MAX(value, ?1)",
    )
    .and_then(|mut st| st.execute([limit]))
    .map_err(sql(conn))?;
    conn.execute("DELETE FROM outbox WHERE seq <= ?1", [limit])
        .map_err(sql(conn))
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

//! The record of central's commands the hub has handled: one `applied_command` row per command
//! id, written in the same transaction as the command's effects (or its rejection), so a command
//! delivered again finds it and is not applied twice. What the rows mean — duplicate, reused id —
//! is decided by `crate::commands`; this module only keeps them.

use super::StoreError;
use super::outbox::sql;
use hub_core::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

/// What is recorded about a command id handled before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    pub kind: String,
    /// `applied`, `unchanged` or `rejected`.
    pub outcome: String,
    /// The content hash of the command, when it was recorded.
    pub fingerprint: Option<String>,
    pub at: Timestamp,
}

/// The record of command `id`, if it was handled before.
pub fn handled_before(conn: &Connection, id: &str) -> Result<Option<Handled>, StoreError> {
    conn.prepare_cached(
        "SELECT kind, outcome, fingerprint, applied_at FROM applied_command WHERE command_id = ?1",
    )
    .and_then(|mut st| {
        st.query_row([id], |r| {
            Ok(Handled {
                kind: r.get(0)?,
                outcome: r.get(1)?,
                fingerprint: r.get(2)?,
                at: Timestamp(r.get(3)?),
            })
        })
        .optional()
    })
    .map_err(sql(conn))
}

/// One command's outcome, kept under its id.
pub struct Outcome<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub outcome: &'a str,
    pub reason: Option<&'a str>,
    pub fingerprint: Option<&'a str>,
}

/// Records a command's outcome under its id.
pub fn remember(conn: &Connection, o: &Outcome<'_>, now: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO applied_command (command_id, kind, outcome, reason, applied_at, fingerprint)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut st| {
        st.execute(params![
            o.id,
            o.kind,
            o.outcome,
            o.reason,
            now.millis(),
            o.fingerprint
        ])
    })
    .map(|_| ())
    .map_err(sql(conn))
}

/// How many commands were handled, by outcome (`applied`, `unchanged`, `rejected`).
pub fn outcome_counts(conn: &Connection) -> Result<Vec<(String, i64)>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT outcome, COUNT(*) FROM applied_command GROUP BY outcome ORDER BY outcome",
        )
        .map_err(sql(conn))?;
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .map_err(sql(conn))
}

//! The stock ledger as stored: journal rows, balances and outbox events in one transaction.
//!
//! The rules are `hub_core::ledger`; this module loads what they need, asks them, and writes the
//! answer. `verify` recomputes every balance from the journal.

use hub_core::ledger::{
    BalanceView, LedgerError, Movement, MovementKind, MovementPlan, plan_movement,
};
use hub_core::{BatchKey, DomainEvent, MovementId, SkuCode, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;

use super::StoreError;
use super::outbox::{self, sql};

/// Why recording a movement did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The ledger rules refused it; nothing was written.
    #[error(transparent)]
    Refused(#[from] LedgerError),
    /// The store failed; nothing was written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What recording a movement did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Recorded {
    Applied {
        sku_balance_after: i64,
        batch_balance_after: Option<i64>,
        outbox_seq: i64,
    },
    /// Same id and content as an earlier movement: applied once, already.
    Duplicate,
}

/// What the rules need, read inside the writing transaction.
struct Snapshot {
    allows_negative: Option<bool>,
    sku_balance: i64,
    batch_balance: i64,
    existing: Option<Movement>,
}

impl BalanceView for Snapshot {
    fn sku_allows_negative(&self, _: &SkuCode) -> Option<bool> {
        self.allows_negative
    }
    fn sku_balance(&self, _: &SkuCode) -> i64 {
        self.sku_balance
    }
    fn batch_balance(&self, _: &SkuCode, _: &BatchKey) -> i64 {
        self.batch_balance
    }
    fn existing_movement(&self, _: &MovementId) -> Option<Movement> {
        self.existing.clone()
    }
}

fn load_snapshot(conn: &Connection, m: &Movement) -> Result<Snapshot, StoreError> {
    let allows_negative = conn
        .prepare_cached("SELECT allow_negative FROM sku WHERE code = ?1")
        .and_then(|mut st| {
            st.query_row([m.sku.as_str()], |r| r.get::<_, bool>(0))
                .optional()
        })
        .map_err(sql(conn))?;
    let sku_balance = conn
        .prepare_cached("SELECT on_hand FROM balance_sku WHERE sku = ?1")
        .and_then(|mut st| {
            st.query_row([m.sku.as_str()], |r| r.get::<_, i64>(0))
                .optional()
        })
        .map_err(sql(conn))?
        .unwrap_or(0);
    let batch_balance = match &m.batch {
        Some(batch) => conn
            .prepare_cached("SELECT on_hand FROM balance_batch WHERE sku = ?1 AND lot = ?2")
            .and_then(|mut st| {
                st.query_row(params![m.sku.as_str(), batch.lot], |r| r.get::<_, i64>(0))
                    .optional()
            })
            .map_err(sql(conn))?
            .unwrap_or(0),
        None => 0,
    };
    let existing = movement_by_id(conn, &m.id)?;
    Ok(Snapshot {
        allows_negative,
        sku_balance,
        batch_balance,
        existing,
    })
}

/// Reads a journaled movement by id.
pub fn movement_by_id(conn: &Connection, id: &MovementId) -> Result<Option<Movement>, StoreError> {
    conn.prepare_cached(
        "SELECT id, sku, lot, expiry, kind, quantity, reason, reference, at FROM movement WHERE id = ?1",
    )
    .and_then(|mut st| st.query_row([id.as_str()], row_to_movement).optional())
    .map_err(sql(conn))
}

fn row_to_movement(r: &rusqlite::Row<'_>) -> rusqlite::Result<Movement> {
    let bad = |e: String| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    };
    let lot: Option<String> = r.get(2)?;
    let expiry: Option<String> = r.get(3)?;
    let kind: String = r.get(4)?;
    Ok(Movement {
        id: MovementId::new(r.get::<_, String>(0)?).map_err(|e| bad(e.to_string()))?,
        sku: SkuCode::new(r.get::<_, String>(1)?).map_err(|e| bad(e.to_string()))?,
        batch: lot.map(|lot| BatchKey {
            lot,
            expiry: expiry.and_then(|d| d.parse().ok()),
        }),
        kind: MovementKind::parse(&kind)
            .ok_or_else(|| bad(format!("unknown movement kind {kind}")))?,
        quantity: r.get(5)?,
        reason: r.get(6)?,
        reference: r.get(7)?,
        at: Timestamp(r.get(8)?),
    })
}

/// Plans a movement with the ledger rules and, if allowed, journals it, updates both balances
/// and appends its outbox event, all on the caller's transaction.
pub fn record(conn: &Connection, m: &Movement) -> Result<Recorded, RecordError> {
    let snapshot = load_snapshot(conn, m)?;
    let plan = plan_movement(&snapshot, m)?;
    let MovementPlan::Apply {
        delta,
        sku_balance_after,
        batch_balance_after,
    } = plan
    else {
        return Ok(Recorded::Duplicate);
    };
    let now = m.at.millis();
    let journal_seq = outbox::next_journal_seq(conn)?;
    let (lot, expiry) = match &m.batch {
        Some(b) => (Some(b.lot.as_str()), b.expiry.map(|d| d.to_string())),
        None => (None, None),
    };
    conn.prepare_cached(
        "INSERT INTO movement (journal_seq, id, sku, lot, expiry, kind, quantity, delta, reason, reference, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )
    .and_then(|mut st| {
        st.execute(params![
            journal_seq,
            m.id.as_str(),
            m.sku.as_str(),
            lot,
            expiry,
            m.kind.as_str(),
            m.quantity,
            delta,
            m.reason,
            m.reference,
            now
        ])
    })
    .map_err(sql(conn))?;
    conn.prepare_cached(
        "INSERT INTO balance_sku (sku, on_hand, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (sku) DO UPDATE SET on_hand = ?2, updated_at = ?3",
    )
    .and_then(|mut st| st.execute(params![m.sku.as_str(), sku_balance_after, now]))
    .map_err(sql(conn))?;
    if let (Some(lot), Some(after)) = (lot, batch_balance_after) {
        conn.prepare_cached(
            "INSERT INTO balance_batch (sku, lot, expiry, on_hand, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (sku, lot) DO UPDATE SET on_hand = ?4, updated_at = ?5,
                 expiry = COALESCE(balance_batch.expiry, ?3)",
        )
        .and_then(|mut st| st.execute(params![m.sku.as_str(), lot, expiry, after, now]))
        .map_err(sql(conn))?;
    }
    let event = DomainEvent::MovementRecorded {
        movement: m.clone(),
        sku_balance_after,
        batch_balance_after,
    };
    let outbox_seq = outbox::append(conn, &event, m.at)?;
    Ok(Recorded::Applied {
        sku_balance_after,
        batch_balance_after,
        outbox_seq,
    })
}

/// One SKU's stock, for `hub stock`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SkuStock {
    pub sku: String,
    pub name: String,
    pub unit: String,
    pub on_hand: i64,
    pub batches: Vec<BatchStock>,
}

/// One batch's stock.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BatchStock {
    pub lot: String,
    pub expiry: Option<String>,
    pub on_hand: i64,
}

/// Balances of every known SKU with their batches.
pub fn balances(conn: &Connection) -> Result<Vec<SkuStock>, StoreError> {
    let mut st = conn
        .prepare(
            "SELECT s.code, s.name, s.unit, COALESCE(b.on_hand, 0) FROM sku s
             LEFT JOIN balance_sku b ON b.sku = s.code ORDER BY s.code",
        )
        .map_err(sql(conn))?;
    let mut skus: Vec<SkuStock> = st
        .query_map([], |r| {
            Ok(SkuStock {
                sku: r.get(0)?,
                name: r.get(1)?,
                unit: r.get(2)?,
                on_hand: r.get(3)?,
                batches: vec![],
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(sql(conn))?;
    let mut st = conn
        .prepare("SELECT sku, lot, expiry, on_hand FROM balance_batch ORDER BY sku, expiry, lot")
        .map_err(sql(conn))?;
    let batches: Vec<(String, BatchStock)> = st
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                BatchStock {
                    lot: r.get(1)?,
                    expiry: r.get(2)?,
                    on_hand: r.get(3)?,
                },
            ))
        })
        .and_then(|rows| rows.collect())
        .map_err(sql(conn))?;
    for (sku, batch) in batches {
        if let Some(s) = skus.iter_mut().find(|s| s.sku == sku) {
            s.batches.push(batch);
        }
    }
    Ok(skus)
}

/// The result of recomputing the ledger from its journal.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub movements: i64,
    pub skus_checked: usize,
    pub batches_checked: usize,
    pub outbox_events: i64,
    /// Every mismatch found; empty means the ledger is consistent.
    pub problems: Vec<String>,
    /// What SQLite's `PRAGMA integrity_check` found in the file, when it was run (see
    /// [`verify_file`]); empty means the file is sound.
    pub integrity: Vec<String>,
}

impl VerifyReport {
    /// Whether the ledger is consistent and the file sound.
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.integrity.is_empty()
    }
}

/// [`verify`] preceded by SQLite's full `PRAGMA integrity_check` of the file (what
/// `hub ledger verify` runs). A file too damaged for the ledger queries to finish reports
/// that among its problems instead of failing.
pub fn verify_file(conn: &Connection) -> Result<VerifyReport, StoreError> {
    let integrity = super::integrity::check(conn, super::integrity::Check::Full)?;
    let mut report = match verify(conn) {
        Ok(report) => report,
        Err(StoreError::Corrupt { source, .. }) | Err(StoreError::Sqlite { source, .. })
            if super::integrity::is_damage(&source) =>
        {
            VerifyReport {
                problems: vec![format!("the ledger cannot be read: {source}")],
                ..VerifyReport::default()
            }
        }
        Err(StoreError::NotADatabase { .. }) => VerifyReport {
            problems: vec!["the ledger cannot be read: the file is not a database".into()],
            ..VerifyReport::default()
        },
        Err(e) => return Err(e),
    };
    report.integrity = integrity;
    Ok(report)
}

/// Recomputes every balance from the journal and compares; checks outbox sequence invariants.
pub fn verify(conn: &Connection) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport {
        movements: conn
            .query_row("SELECT COUNT(*) FROM movement", [], |r| r.get(0))
            .map_err(sql(conn))?,
        ..VerifyReport::default()
    };
    let sums = |query: &str| -> Result<BTreeMap<(String, String), i64>, StoreError> {
        let mut st = conn.prepare(query).map_err(sql(conn))?;
        st.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
            .and_then(|rows| rows.collect())
            .map_err(sql(conn))
    };
    let compare = |what: &str,
                   journal: BTreeMap<(String, String), i64>,
                   stored: BTreeMap<(String, String), i64>,
                   problems: &mut Vec<String>| {
        let keys: std::collections::BTreeSet<_> =
            journal.keys().chain(stored.keys()).cloned().collect();
        for key in &keys {
            let j = journal.get(key).copied().unwrap_or(0);
            let s = stored.get(key).copied().unwrap_or(0);
            if j != s {
                let label = if key.1.is_empty() {
                    key.0.clone()
                } else {
                    format!("{} lot {}", key.0, key.1)
                };
                problems.push(format!(
                    "{what} {label}: stored balance {s}, journal sums to {j}"
                ));
            }
        }
        keys.len()
    };
    let journal_sku = sums("SELECT sku, '', SUM(delta) FROM movement GROUP BY sku")?;
    let stored_sku = sums("SELECT sku, '', on_hand FROM balance_sku")?;
    report.skus_checked = compare("SKU", journal_sku, stored_sku, &mut report.problems);
    let journal_batch =
        sums("SELECT sku, lot, SUM(delta) FROM movement WHERE lot IS NOT NULL GROUP BY sku, lot")?;
    let stored_batch = sums("SELECT sku, lot, on_hand FROM balance_batch")?;
    report.batches_checked = compare("batch", journal_batch, stored_batch, &mut report.problems);
    let bad_deltas: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM movement WHERE delta != CASE
                 WHEN kind IN ('receipt', 'return', 'transfer_in', 'adjustment') THEN quantity
                 ELSE -quantity END",
            [],
            |r| r.get(0),
        )
        .map_err(sql(conn))?;
    if bad_deltas > 0 {
        report.problems.push(format!(
            "{bad_deltas} journal rows have a delta that does not match their kind"
        ));
    }
    report.outbox_events = outbox::stats(conn)?.total;
    report.problems.extend(outbox::check_sequence(conn)?);
    Ok(report)
}

/// One lot's expiry (YYYY-MM-DD) and quantity on hand, if the ledger has the lot.
pub fn lot(
    conn: &Connection,
    sku: &SkuCode,
    lot: &str,
) -> Result<Option<(Option<String>, i64)>, StoreError> {
    conn.prepare_cached("SELECT expiry, on_hand FROM balance_batch WHERE sku = ?1 AND lot = ?2")
        .and_then(|mut st| {
            st.query_row(params![sku.as_str(), lot], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(sql(conn))
}

/// Batches with stock on hand and an expiry date: `(sku, lot, expiry as YYYY-MM-DD, on hand)`.
pub fn dated_batches_on_hand(
    conn: &Connection,
) -> Result<Vec<(String, String, String, i64)>, StoreError> {
    conn.prepare_cached(
        "SELECT sku, lot, expiry, on_hand FROM balance_batch WHERE on_hand > 0 AND expiry IS NOT NULL",
    )
    .and_then(|mut st| {
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .and_then(|rows| rows.collect())
    })
    .map_err(sql(conn))
}

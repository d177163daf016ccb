//! The reads the report (`store::report`) and its per-site-day rollups
//! (`store::report_rollup`) share: the journal in storage order, and the orders collected in a
//! period with the units ordered and handed over. One home, so a rollup folds exactly the rows
//! the report would.

use rusqlite::{Connection, params};
use std::collections::HashMap;

/// The journal in storage order: a plain scan, no sort of the whole journal in SQL (the report
/// puts the rows up to the period's end on their days itself, and sums the issues of the
/// orders collected in the period by their reference on the way).
pub(super) const JOURNAL_SQL: &str =
    "SELECT journal_seq, sku, lot, expiry, kind, quantity, delta, at, reference FROM movement";

/// Orders collected in `[?1, ?2)` with the units ordered.
pub(super) const COLLECTED_SQL: &str = "SELECT o.order_id, o.collected_at,
       (SELECT COALESCE(SUM(l.quantity), 0) FROM pickup_order_line l WHERE l.order_id = o.order_id)
     FROM pickup_order o WHERE o.collected_at >= ?1 AND o.collected_at < ?2";

/// Orders collected in `[?1, ?2)`, their ids only.
pub(super) const COLLECTED_IDS_SQL: &str = "SELECT order_id, collected_at FROM pickup_order WHERE collected_at >= ?1 AND collected_at < ?2";

/// The reference an issue for a pickup order carries, before the order's id.
pub(super) const ORDER_REFERENCE: &str = "pickup order ";

/// Orders collected in the period: when, units ordered, units handed over (the issue
/// movements referring to the order, whenever they were recorded, less the returns of its
/// undone handovers).
#[derive(Default)]
pub(super) struct Collected {
    pub(super) index: HashMap<String, usize>,
    pub(super) rows: Vec<(i64, i64, i64)>,
}

impl Collected {
    pub(super) fn read(conn: &Connection, start: i64, end: i64) -> rusqlite::Result<Collected> {
        let mut c = Collected::default();
        let mut st = conn.prepare(COLLECTED_SQL)?;
        let mut rows = st.query(params![start, end])?;
        while let Some(r) = rows.next()? {
            c.index.insert(r.get(0)?, c.rows.len());
            c.rows.push((r.get(1)?, r.get(2)?, 0));
        }
        Ok(c)
    }

    /// The orders collected in `[start, end)` without their units ordered (none is read):
    /// what the report needs when the rollups give the units.
    pub(super) fn read_ids(conn: &Connection, start: i64, end: i64) -> rusqlite::Result<Collected> {
        let mut c = Collected::default();
        let mut st = conn.prepare_cached(COLLECTED_IDS_SQL)?;
        let mut rows = st.query(params![start, end])?;
        while let Some(r) = rows.next()? {
            c.index.insert(r.get(0)?, c.rows.len());
            c.rows.push((r.get(1)?, 0, 0));
        }
        Ok(c)
    }
}

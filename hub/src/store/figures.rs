//! The figures the status page and the station screens show, read in one place: today's
//! receipts and handovers since local midnight, receiving work waiting for a person, SKUs in
//! stock and the open alerts. Read-only.

use super::StoreError;
use super::outbox::sql;
use hub_core::Timestamp;
use rusqlite::Connection;
use serde::Serialize;

/// What happened today (local time, since midnight), from the movement journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Today {
    /// Start of the day the figures cover, ms since the epoch.
    pub since: Timestamp,
    /// Receipt movements (one per delivered line).
    pub receipt_lines: i64,
    /// Distinct deliveries those lines belong to.
    pub deliveries: i64,
    /// Pickup orders handed over.
    pub handovers: i64,
    /// Issue movements (one per handed-over line).
    pub handover_lines: i64,
}

impl Default for Today {
    fn default() -> Self {
        Today {
            since: Timestamp(0),
            receipt_lines: 0,
            deliveries: 0,
            handovers: 0,
            handover_lines: 0,
        }
    }
}

/// Receiving work waiting for a person: deliveries still open, stock held in quarantine, and
/// disputes with a supplier.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Receiving {
    /// Deliveries neither closed nor cancelled.
    pub open_deliveries: i64,
    /// Lines held in quarantine until someone releases or rejects them.
    pub held_lines: i64,
    /// Units those lines hold.
    pub held_units: i64,
    /// Open disputes, oldest first.
    pub disputes: Vec<Dispute>,
}

/// One open dispute about a delivery.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dispute {
    pub delivery_id: String,
    pub opened_at: Timestamp,
    pub note: String,
}

/// Receiving work waiting for a person.
pub fn receiving(conn: &Connection) -> Result<Receiving, StoreError> {
    let sql = sql(conn);
    let open_deliveries = conn
        .query_row(
            "SELECT COUNT(*) FROM delivery_manifest WHERE closed_at IS NULL AND cancelled = 0",
            [],
            |r| r.get(0),
        )
        .map_err(&sql)?;
    let (held_lines, held_units) = conn
        .query_row(
            "SELECT COUNT(*), COALESCE(SUM(quantity), 0) FROM quarantine WHERE status = 'held'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(&sql)?;
    let disputes = conn
        .prepare_cached(
            "SELECT delivery_id, opened_at, note FROM dispute WHERE closed_at IS NULL
             ORDER BY opened_at, delivery_id",
        )
        .and_then(|mut st| {
            st.query_map([], |r| {
                Ok(Dispute {
                    delivery_id: r.get(0)?,
                    opened_at: Timestamp(r.get(1)?),
                    note: r.get(2)?,
                })
            })
            .and_then(|rows| rows.collect())
        })
        .map_err(&sql)?;
    Ok(Receiving {
        open_deliveries,
        held_lines,
        held_units,
        disputes,
    })
}

/// What happened since `day_start` (local midnight, ms since the epoch).
pub fn today(conn: &Connection, day_start: Timestamp) -> Result<Today, StoreError> {
    let sql = sql(conn);
    let (receipt_lines, deliveries, handover_lines, issue_orders): (i64, i64, i64, i64) = conn
        .query_row(
            "SELECT COUNT(*) FILTER (WHERE kind = 'receipt'),
                    COUNT(DISTINCT reference) FILTER (WHERE kind = 'receipt'),
                    COUNT(*) FILTER (WHERE kind = 'issue'),
                    COUNT(DISTINCT reference) FILTER (WHERE kind = 'issue')
             FROM movement WHERE at >= ?1",
            [day_start.millis()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .map_err(&sql)?;
    // Handovers through the pickup workflow are recorded once each in `handover`; issues
    // recorded straight on the ledger (older data, the demo) count by their order reference.
    let recorded: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM handover WHERE at >= ?1",
            [day_start.millis()],
            |r| r.get(0),
        )
        .map_err(&sql)?;
    Ok(Today {
        since: day_start,
        receipt_lines,
        deliveries,
        handovers: recorded.max(issue_orders),
        handover_lines,
    })
}

/// SKUs with stock on hand.
pub fn skus_in_stock(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row(
        "SELECT COUNT(*) FROM balance_sku WHERE on_hand > 0",
        [],
        |r| r.get(0),
    )
    .map_err(sql(conn))
}

/// An open alert as the alert book keeps it (tier as stored: `yellow`, `orange`, `red`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAlert {
    pub kind: String,
    pub subject: String,
    pub tier: String,
    pub message: String,
    pub raised_at: Timestamp,
}

/// Every alert whose tier is not `normal`, in no particular order.
pub fn open_alerts(conn: &Connection) -> Result<Vec<OpenAlert>, StoreError> {
    conn.prepare_cached(
        "SELECT kind, subject, tier, message, raised_at FROM alert WHERE tier <> 'normal'",
    )
    .and_then(|mut st| {
        st.query_map([], |r| {
            Ok(OpenAlert {
                kind: r.get(0)?,
                subject: r.get(1)?,
                tier: r.get(2)?,
                message: r.get(3)?,
                raised_at: Timestamp(r.get(4)?),
            })
        })
        .and_then(|rows| rows.collect())
    })
    .map_err(sql(conn))
}

/// Everything the status page shows from the store, read in one go.
#[derive(Debug, Clone)]
pub struct Figures {
    pub outbox: super::outbox::OutboxStats,
    pub today: Today,
    pub skus_in_stock: i64,
    pub alerts: Vec<OpenAlert>,
    pub receiving: Receiving,
}

/// Reads [`Figures`]; `day_start` is the site's local midnight.
pub fn read(conn: &Connection, day_start: Timestamp) -> Result<Figures, StoreError> {
    Ok(Figures {
        outbox: super::outbox::stats(conn)?,
        today: today(conn, day_start)?,
        skus_in_stock: skus_in_stock(conn)?,
        alerts: open_alerts(conn)?,
        receiving: receiving(conn)?,
    })
}

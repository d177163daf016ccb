//! Traceability: the whole chain of one item (supplier → delivery → decision and evidence →
//! movements → pickup order), and every item of a batch, downstream and upstream.

use hub_contract::stored;
use hub_core::event::ReceivingDecision;
use hub_core::receiving::CodeElement;
use hub_core::{SkuCode, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::StoreError;
use super::outbox::sql;

/// One stock movement as shown in a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceMovement {
    pub id: String,
    pub kind: String,
    pub quantity: i64,
    pub reference: String,
    pub reason: String,
    pub at: String,
}

/// Where an item went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HandoverInfo {
    pub order_id: String,
    pub station: String,
    /// Who handed it over, when named.
    pub staff: Option<String>,
    pub at: String,
}

/// The whole chain of one item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemTrace {
    pub code: String,
    /// The GS1 elements read from the code when it was bound (GTIN, expiry, lot, serial…).
    pub elements: Vec<CodeElement>,
    pub sku: String,
    pub lot: String,
    pub status: String,
    pub bound_at: String,
    pub delivery_id: Option<String>,
    pub supplier: Option<String>,
    /// The acceptance decision of the item's delivery line, with its evidence.
    pub decision: Option<ReceivingDecision>,
    /// Movements of the item's batch (receipts, handovers, losses, releases).
    pub batch_movements: Vec<TraceMovement>,
    pub handed_over: Option<HandoverInfo>,
    /// Every dispute episode of the item's delivery, oldest first.
    pub disputes: Vec<super::disputes::DisputeEpisode>,
}

fn ts(ms: i64) -> String {
    hub_core::Timestamp(ms).to_rfc3339()
}

fn batch_movements(
    conn: &Connection,
    sku: &str,
    lot: &str,
) -> Result<Vec<TraceMovement>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT id, kind, quantity, reference, reason, at FROM movement WHERE sku = ?1 AND lot = ?2 ORDER BY journal_seq",
        )
        .map_err(sql(conn))?;
    st.query_map(params![sku, lot], |r| {
        Ok(TraceMovement {
            id: r.get(0)?,
            kind: r.get(1)?,
            quantity: r.get(2)?,
            reference: r.get(3)?,
            reason: r.get(4)?,
            at: ts(r.get(5)?),
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(sql(conn))
}

fn decision_for(
    conn: &Connection,
    delivery_id: &str,
    sku: &str,
    lot: &str,
) -> Result<Option<ReceivingDecision>, StoreError> {
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM line_decision WHERE delivery_id = ?1 AND sku = ?2 AND lot = ?3 ORDER BY line_no LIMIT 1")
        .and_then(|mut st| st.query_row(params![delivery_id, sku, lot], |r| r.get(0)).optional())
        .map_err(sql(conn))?;
    Ok(body.and_then(|b| stored::decode_decision(&b).ok()))
}

fn handover_of(conn: &Connection, order_id: &str) -> Result<Option<HandoverInfo>, StoreError> {
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM handover WHERE order_id = ?1")
        .and_then(|mut st| st.query_row([order_id], |r| r.get(0)).optional())
        .map_err(sql(conn))?;
    Ok(body
        .and_then(|b| stored::decode_handover(&b).ok())
        .map(|h| HandoverInfo {
            order_id: h.order_id,
            station: h.station,
            staff: h.staff,
            at: h.at.to_rfc3339(),
        }))
}

/// Traces one item by its code; `None` if the hub never saw it.
pub fn item(conn: &Connection, code: &str) -> Result<Option<ItemTrace>, StoreError> {
    type Row = (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        i64,
        Option<String>,
    );
    let row: Option<Row> = conn
        .prepare_cached("SELECT sku, lot, status, delivery_id, order_id, bound_at, elements FROM trace_code WHERE code = ?1")
        .and_then(|mut st| {
            st.query_row([code], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))).optional()
        })
        .map_err(sql(conn))?;
    let Some((sku, lot, status, delivery_id, order_id, bound_at, elements)) = row else {
        return Ok(None);
    };
    let supplier: Option<String> = match &delivery_id {
        Some(d) => conn
            .query_row(
                "SELECT supplier FROM delivery_manifest WHERE delivery_id = ?1",
                [d],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql(conn))?,
        None => None,
    };
    let decision = match &delivery_id {
        Some(d) => decision_for(conn, d, &sku, &lot)?,
        None => None,
    };
    let disputes = match &delivery_id {
        Some(d) => super::disputes::dispute_episodes(conn, d)?,
        None => Vec::new(),
    };
    let handed_over = match &order_id {
        Some(o) if status == "handed_over" => handover_of(conn, o)?,
        _ => None,
    };
    Ok(Some(ItemTrace {
        code: code.to_owned(),
        elements: elements
            .and_then(|e| stored::decode_code_elements(&e).ok())
            .unwrap_or_default(),
        batch_movements: batch_movements(conn, &sku, &lot)?,
        sku,
        lot,
        status,
        bound_at: ts(bound_at),
        delivery_id,
        supplier,
        decision,
        handed_over,
        disputes,
    }))
}

/// One item of a batch and where it is now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchItem {
    pub code: String,
    pub status: String,
    pub order_id: Option<String>,
    pub handed_over_at: Option<String>,
}

/// A batch: where it came from (upstream) and where each item went (downstream).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchTrace {
    pub lot: String,
    pub sku: String,
    /// Deliveries and their decisions that brought this batch in.
    pub upstream: Vec<ReceivingDecision>,
    pub items: Vec<BatchItem>,
    pub movements: Vec<TraceMovement>,
    pub on_hand: i64,
}

/// Traces every SKU's batch with this lot code.
pub fn batch(conn: &Connection, lot: &str) -> Result<Vec<BatchTrace>, StoreError> {
    let mut st = conn
        .prepare(
            "SELECT sku FROM movement WHERE lot = ?1 UNION SELECT sku FROM trace_code WHERE lot = ?1
             UNION SELECT sku FROM line_decision WHERE lot = ?1 ORDER BY 1",
        )
        .map_err(sql(conn))?;
    let skus: Vec<String> = st
        .query_map([lot], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(sql(conn))?;
    let mut traces = Vec::new();
    for sku in skus {
        let mut st = conn
            .prepare_cached(
                "SELECT body FROM line_decision WHERE sku = ?1 AND lot = ?2 ORDER BY decided_at",
            )
            .map_err(sql(conn))?;
        let bodies: Vec<String> = st
            .query_map(params![sku, lot], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(sql(conn))?;
        let mut st = conn
            .prepare_cached(
                "SELECT t.code, t.status, t.order_id, h.at FROM trace_code t
                 LEFT JOIN handover h ON h.order_id = t.order_id AND t.status = 'handed_over'
                 WHERE t.sku = ?1 AND t.lot = ?2 ORDER BY t.code",
            )
            .map_err(sql(conn))?;
        let items: Vec<BatchItem> = st
            .query_map(params![sku, lot], |r| {
                Ok(BatchItem {
                    code: r.get(0)?,
                    status: r.get(1)?,
                    order_id: r.get(2)?,
                    handed_over_at: r.get::<_, Option<i64>>(3)?.map(ts),
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(sql(conn))?;
        let on_hand: i64 = conn
            .query_row(
                "SELECT on_hand FROM balance_batch WHERE sku = ?1 AND lot = ?2",
                params![sku, lot],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql(conn))?
            .unwrap_or(0);
        traces.push(BatchTrace {
            lot: lot.to_owned(),
            upstream: bodies
                .iter()
                .filter_map(|b| stored::decode_decision(b).ok())
                .collect(),
            items,
            movements: batch_movements(conn, &sku, lot)?,
            on_hand,
            sku,
        });
    }
    Ok(traces)
}

/// Registers a trace code as in stock (receiving binds each accepted item's code), with
/// the GS1 elements read from it (none for other kinds of code).
#[allow(clippy::too_many_arguments)]
pub fn bind_trace_code(
    conn: &Connection,
    code: &str,
    sku: &SkuCode,
    lot: &str,
    delivery_id: Option<&str>,
    status: &str,
    elements: &[CodeElement],
    now: Timestamp,
) -> Result<bool, StoreError> {
    let elements = (!elements.is_empty()).then(|| stored::encode_code_elements(elements));
    conn.prepare_cached(
        "INSERT INTO trace_code (code, sku, lot, delivery_id, status, bound_at, updated_at, elements)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7) ON CONFLICT (code) DO NOTHING",
    )
    .and_then(|mut st| {
        st.execute(params![
            code,
            sku.as_str(),
            lot,
            delivery_id,
            status,
            now.millis(),
            elements
        ])
    })
    .map(|n| n == 1)
    .map_err(sql(conn))
}

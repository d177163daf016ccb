//! Reversing a delivery line's last receipt: a supervisor's correction within
//! `receiving.reversal_window_minutes` (`hub_core::receiving_reversal::reversal_blocker`
//! decides whether it is allowed and how much leaves).
//!
//! In the caller's transaction: an `adjustment` movement takes the received quantity out of
//! the lot again (the receipt movements stay in the journal); the line's `line_decision`,
//! `quarantine` and observation rows move into `receipt_reversal` (with who, when, why and the
//! client's request id), so the line waits for a new decision; the trace codes the receipt
//! bound are free again; a `receipt_reversed` event goes upstream.
//!
//! Receipt movement ids are fixed per line (`rcv-{delivery}-{line}`, `rel-…`): a new decision
//! after a reversal would reuse the id and be skipped by the ledger as a duplicate, losing the
//! stock. So from a line's first reversal on, its receipt ids carry the number of reversals
//! of the line (`rcv-D-1-r1`, …) — see [`super::deliveries::receipt_id`].

use hub_contract::stored;
use hub_core::event::DomainEvent;
use hub_core::receiving_reversal::{
    LastReceipt, ReversalReason, ReversalRefusal, reversal_blocker,
};
use hub_core::{BatchKey, Movement, MovementId, MovementKind, SkuCode, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::StoreError;
use super::deliveries::ReceivingError;
use super::ledger::record;
use super::outbox::{self, sql};

/// How a reversal movement's reference begins (the report takes it off the day's receipts).
pub const REVERSAL_REFERENCE: &str = "receipt reversed: ";

/// What a supervisor asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReversalRequest {
    pub delivery_id: String,
    pub line_no: u32,
    pub staff: String,
    /// Whether `staff` is a supervisor (the caller knows the roles).
    pub supervisor: bool,
    pub reason: ReversalReason,
    /// The client's id of this request: the same id again is answered from the stored
    /// reversal, never reversed twice.
    pub request_id: String,
    pub window_minutes: i64,
}

/// What a reversal did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reversed {
    pub delivery_id: String,
    pub line_no: u32,
    pub sku: String,
    pub lot: String,
    /// Taken out of the lot by the reversal movement.
    pub quantity: i64,
    pub movement_id: String,
    /// The receipt movements reversed (they stay in the journal).
    pub receipts: Vec<String>,
    /// Trace codes free to be bound again.
    pub freed_codes: Vec<String>,
    /// Answered from an earlier request with the same id: nothing was done now.
    pub repeated: bool,
}

struct ReceiptRow {
    id: String,
    sku: String,
    lot: String,
    expiry: Option<String>,
    quantity: i64,
    at: i64,
    seq: i64,
}

/// The line's current receipt movements (its decision's acceptance and a release after a
/// hold), oldest first.
fn receipts_of(
    conn: &Connection,
    delivery_id: &str,
    line_no: u32,
) -> Result<Vec<ReceiptRow>, StoreError> {
    let mut rows = Vec::new();
    for prefix in ["rcv", "rel"] {
        let id = super::deliveries::receipt_id(conn, prefix, delivery_id, line_no)?;
        let row = conn
            .prepare_cached(
                "SELECT id, sku, lot, expiry, quantity, at, journal_seq FROM movement
                 WHERE id = ?1 AND kind = 'receipt'",
            )
            .and_then(|mut st| {
                st.query_row([&id], |r| {
                    Ok(ReceiptRow {
                        id: r.get(0)?,
                        sku: r.get(1)?,
                        lot: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                        expiry: r.get(3)?,
                        quantity: r.get(4)?,
                        at: r.get(5)?,
                        seq: r.get(6)?,
                    })
                })
                .optional()
            })
            .map_err(sql(conn))?;
        rows.extend(row);
    }
    Ok(rows)
}

/// The line's receipt as the rule sees it: what it put on the ledger, when (the latest of its
/// movements), what of that lot left since its first movement, and the lot's on hand now.
fn last_receipt(conn: &Connection, rows: &[ReceiptRow]) -> Result<Option<LastReceipt>, StoreError> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let left_since: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(-delta), 0) FROM movement
             WHERE sku = ?1 AND lot = ?2 AND delta < 0 AND journal_seq > ?3",
        )
        .and_then(|mut st| st.query_row(params![first.sku, first.lot, first.seq], |r| r.get(0)))
        .map_err(sql(conn))?;
    let on_hand: i64 = conn
        .prepare_cached("SELECT on_hand FROM balance_batch WHERE sku = ?1 AND lot = ?2")
        .and_then(|mut st| {
            st.query_row(params![first.sku, first.lot], |r| r.get(0))
                .optional()
        })
        .map_err(sql(conn))?
        .unwrap_or(0);
    Ok(Some(LastReceipt {
        received: rows.iter().map(|r| r.quantity).sum(),
        received_at: Timestamp(rows.iter().map(|r| r.at).max().unwrap_or(first.at)),
        left_since,
        on_hand,
    }))
}

/// Whether the line's last receipt may be reversed now: the quantity that would leave, or why
/// not. Reads only (the bench screen asks before offering the action).
pub fn check(
    conn: &Connection,
    delivery_id: &str,
    line_no: u32,
    supervisor: bool,
    window_minutes: i64,
    now: Timestamp,
) -> Result<Result<i64, ReversalRefusal>, ReceivingError> {
    let closed = super::deliveries::delivery_state(conn, delivery_id, line_no)?;
    let rows = receipts_of(conn, delivery_id, line_no)?;
    let receipt = last_receipt(conn, &rows)?;
    Ok(reversal_blocker(
        supervisor,
        closed,
        receipt,
        window_minutes,
        now,
    ))
}

fn stored_reversal(
    conn: &Connection,
    request_id: &str,
) -> Result<Option<(Reversed, String, u32)>, StoreError> {
    conn.prepare_cached(
        "SELECT r.delivery_id, r.line_no, r.quantity, r.movement_id, r.receipts, r.freed_codes,
                m.sku, m.lot
         FROM receipt_reversal r JOIN movement m ON m.id = r.movement_id
         WHERE r.request_id = ?1",
    )
    .and_then(|mut st| {
        st.query_row([request_id], |r| {
            let delivery_id: String = r.get(0)?;
            let line_no: u32 = r.get(1)?;
            let list = |text: String| serde_json::from_str(&text).unwrap_or_default();
            Ok((
                Reversed {
                    delivery_id: delivery_id.clone(),
                    line_no,
                    quantity: r.get(2)?,
                    movement_id: r.get(3)?,
                    receipts: list(r.get(4)?),
                    freed_codes: list(r.get(5)?),
                    sku: r.get(6)?,
                    lot: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
                    repeated: true,
                },
                delivery_id,
                line_no,
            ))
        })
        .optional()
    })
    .map_err(sql(conn))
}

/// Reverses the line's last receipt if the rule allows it (see the module's description);
/// a request id seen before is answered with what it did then.
pub fn reverse_receipt(
    conn: &Connection,
    req: &ReversalRequest,
    now: Timestamp,
) -> Result<Reversed, ReceivingError> {
    let (delivery_id, line_no) = (req.delivery_id.as_str(), req.line_no);
    if let Some((done, d, l)) = stored_reversal(conn, &req.request_id)? {
        if d == delivery_id && l == line_no {
            return Ok(done);
        }
        return Err(ReceivingError::ReversalRequestReused(
            req.request_id.clone(),
        ));
    }
    let closed = super::deliveries::delivery_state(conn, delivery_id, line_no)?;
    let rows = receipts_of(conn, delivery_id, line_no)?;
    let receipt = last_receipt(conn, &rows)?;
    let quantity = reversal_blocker(req.supervisor, closed, receipt, req.window_minutes, now)
        .map_err(|refusal| ReceivingError::ReversalRefused {
            delivery_id: delivery_id.to_owned(),
            line_no,
            refusal,
        })?;
    let first = &rows[0];
    let movement_id = super::deliveries::receipt_id(conn, "rev", delivery_id, line_no)?;
    let sku =
        SkuCode::new(first.sku.clone()).map_err(|e| ReceivingError::UnknownSku(e.to_string()))?;
    let m = Movement {
        id: MovementId::new(movement_id.clone())
            .map_err(|e| ReceivingError::UnknownLabel(e.to_string()))?,
        sku: sku.clone(),
        batch: Some(BatchKey {
            lot: first.lot.clone(),
            expiry: first.expiry.as_deref().and_then(|e| e.parse().ok()),
        }),
        kind: MovementKind::Adjustment,
        quantity: -quantity,
        reason: format!("receipt reversed by {}: {}", req.staff, req.reason.as_str()),
        reference: format!("{REVERSAL_REFERENCE}delivery {delivery_id} line {line_no}"),
        at: now,
    };
    record(conn, &m)?;
    let body: String = conn
        .prepare_cached("SELECT body FROM line_decision WHERE delivery_id = ?1 AND line_no = ?2")
        .and_then(|mut st| st.query_row(params![delivery_id, line_no], |r| r.get(0)))
        .map_err(sql(conn))?;
    let bound = stored::decode_decision(&body)
        .map(|d| d.bound_codes)
        .unwrap_or_default();
    // The codes are freed (their rows deleted) rather than marked reversed: a scan binds a code
    // only when no row holds it (`bind_trace_code`, `ON CONFLICT DO NOTHING`, and a held code
    // is flagged "already bound"), so a marked row would make the redo flag the line's own
    // codes. Their history stays in `receipt_reversal.freed_codes` and upstream.
    let mut freed_codes = Vec::with_capacity(bound.len());
    for code in bound {
        let n = conn
            .prepare_cached("DELETE FROM trace_code WHERE code = ?1 AND delivery_id = ?2")
            .and_then(|mut st| st.execute(params![code, delivery_id]))
            .map_err(sql(conn))?;
        if n > 0 {
            freed_codes.push(code);
        }
    }
    let receipts: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    conn.prepare_cached(
        "INSERT INTO receipt_reversal (delivery_id, line_no, request_id, staff, reason, quantity,
             movement_id, receipts, reversed_at, decision, quarantine, observations, freed_codes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,
             (SELECT json_object('sku', sku, 'lot', lot, 'expiry', expiry, 'quantity', quantity,
                     'since', since, 'status', status, 'resolved_at', resolved_at,
                     'resolved_by', resolved_by, 'reason', reason)
              FROM quarantine WHERE delivery_id = ?1 AND line_no = ?2),
             (SELECT observations FROM receiving_line WHERE delivery_id = ?1 AND line_no = ?2),
             ?11)",
    )
    .and_then(|mut st| {
        st.execute(params![
            delivery_id,
            line_no,
            req.request_id,
            req.staff,
            req.reason.as_str(),
            quantity,
            movement_id,
            json(&receipts),
            now.millis(),
            body,
            json(&freed_codes)
        ])
    })
    .map_err(sql(conn))?;
    for statement in [
        "DELETE FROM line_decision WHERE delivery_id = ?1 AND line_no = ?2",
        "DELETE FROM quarantine WHERE delivery_id = ?1 AND line_no = ?2",
        "DELETE FROM receiving_line WHERE delivery_id = ?1 AND line_no = ?2",
    ] {
        conn.prepare_cached(statement)
            .and_then(|mut st| st.execute(params![delivery_id, line_no]))
            .map_err(sql(conn))?;
    }
    tracing::info!(
        delivery = delivery_id,
        line_no,
        quantity,
        staff = %req.staff,
        reason = req.reason.as_str(),
        "receipt reversed"
    );
    outbox::append(
        conn,
        &DomainEvent::ReceiptReversed {
            delivery_id: delivery_id.to_owned(),
            line_no,
            sku: sku.clone(),
            lot: first.lot.clone(),
            quantity,
            reason: req.reason,
            staff: req.staff.clone(),
            movement_id: movement_id.clone(),
            receipts: receipts.clone(),
            received_at: Timestamp(rows.iter().map(|r| r.at).max().unwrap_or(first.at)),
            freed_codes: freed_codes.clone(),
        },
        now,
    )?;
    Ok(Reversed {
        delivery_id: delivery_id.to_owned(),
        line_no,
        sku: sku.to_string(),
        lot: first.lot.clone(),
        quantity,
        movement_id,
        receipts,
        freed_codes,
        repeated: false,
    })
}

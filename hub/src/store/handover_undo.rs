//! Undoing a handover: a supervisor's correction within the undo window
//! (`hub_core::pickup::undo_blocker` decides whether it is allowed).
//!
//! The goods issued by the handover come back to stock with `return` movements (one per issue
//! movement, same batch and quantity); the issue movements stay in the journal. The handover
//! row moves to `handover_undone` (with who, when and why), the order is open again (the next
//! handover needs a new code check), trace codes handed over are in stock again, and a
//! `pickup_handover_undone` event goes upstream — all in the caller's transaction.

use super::StoreError;
use super::ledger::{RecordError, record};
use super::outbox::{self, sql};
use hub_core::event::DomainEvent;
use hub_core::pickup::{UndoRefusal, undo_blocker};
use hub_core::{BatchKey, Movement, MovementId, MovementKind, SkuCode, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

/// Why a handover could not be undone.
#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    #[error("order {0} is unknown at this site")]
    UnknownOrder(String),
    #[error(
        "'{0}' is not an undo reason; pick one of wrong_customer, customer_returned, clerk_mistake"
    )]
    UnknownReason(String),
    #[error("the handover of order {order_id} cannot be undone: {}", why(refusal))]
    Refused {
        order_id: String,
        refusal: UndoRefusal,
    },
    #[error(
        "order {0} was handed over in parts; undoing it is not supported here — correct it with central"
    )]
    InParts(String),
    #[error("the return of {movement} to stock was refused: {reason}")]
    ReturnRefused { movement: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn why(refusal: &UndoRefusal) -> String {
    match refusal {
        UndoRefusal::NotHandedOver => {
            "it has not been handed over (or its handover was undone already)".to_owned()
        }
        UndoRefusal::TooLate { window_ms, .. } => format!(
            "it was handed over more than {} minutes ago (pickup.undo_window_minutes); correct it with central instead",
            window_ms / 60_000
        ),
    }
}

/// What an undo did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Undone {
    pub order_id: String,
    pub station: String,
    pub handed_over_at: Timestamp,
    /// The return movements' ids.
    pub returned: Vec<String>,
    /// The SKUs whose stock came back (their tiers need a new look).
    #[serde(skip)]
    pub skus: Vec<SkuCode>,
}

/// Undoes the handover of `order_id` if it happened within `window_ms` before `now`.
pub fn undo_handover(
    conn: &Connection,
    order_id: &str,
    staff: &str,
    reason: &str,
    window_ms: i64,
    now: Timestamp,
) -> Result<Undone, UndoError> {
    let known: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM pickup_order WHERE order_id = ?1)")
        .and_then(|mut st| st.query_row([order_id], |r| r.get(0)))
        .map_err(sql(conn))?;
    if !known {
        return Err(UndoError::UnknownOrder(order_id.to_owned()));
    }
    // Only the last part's movements share the handover's time: undoing would return only
    // those. Refused rather than half done.
    let in_parts: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM handover_part WHERE order_id = ?1)")
        .and_then(|mut st| st.query_row([order_id], |r| r.get(0)))
        .map_err(sql(conn))?;
    if in_parts {
        return Err(UndoError::InParts(order_id.to_owned()));
    }
    let handover: Option<(String, i64)> = conn
        .prepare_cached("SELECT station, at FROM handover WHERE order_id = ?1")
        .and_then(|mut st| {
            st.query_row([order_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(sql(conn))?;
    if let Some(refusal) = undo_blocker(handover.as_ref().map(|h| Timestamp(h.1)), window_ms, now) {
        return Err(UndoError::Refused {
            order_id: order_id.to_owned(),
            refusal,
        });
    }
    let Some((station, at)) = handover else {
        return Err(UndoError::Refused {
            order_id: order_id.to_owned(),
            refusal: UndoRefusal::NotHandedOver,
        });
    };
    // The issue movements of this handover: same order, same instant (one transaction).
    type Issued = (String, String, Option<String>, Option<String>, i64);
    let issued: Vec<Issued> = conn
        .prepare_cached(
            "SELECT id, sku, lot, expiry, quantity FROM movement
             WHERE reference = ?1 AND kind = ?2 AND at = ?3 ORDER BY journal_seq",
        )
        .and_then(|mut st| {
            st.query_map(
                params![
                    format!("pickup order {order_id}"),
                    MovementKind::Issue.as_str(),
                    at
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )?
            .collect()
        })
        .map_err(sql(conn))?;
    let mut returned = Vec::with_capacity(issued.len());
    let mut skus: Vec<SkuCode> = Vec::new();
    for (id, sku, lot, expiry, quantity) in issued {
        let bad = |what: String| UndoError::ReturnRefused {
            movement: id.clone(),
            reason: what,
        };
        let return_id = format!("undo-{id}");
        let sku = SkuCode::new(sku).map_err(|e| bad(e.to_string()))?;
        let m = Movement {
            id: MovementId::new(return_id.clone()).map_err(|e| bad(e.to_string()))?,
            sku: sku.clone(),
            batch: lot.map(|lot| BatchKey {
                lot,
                expiry: expiry.and_then(|e| e.parse().ok()),
            }),
            kind: MovementKind::Return,
            quantity,
            reason: format!("handover undone: {reason}"),
            reference: format!("pickup order {order_id}"),
            at: now,
        };
        record(conn, &m).map_err(|e| match e {
            RecordError::Store(e) => UndoError::Store(e),
            RecordError::Refused(e) => bad(e.to_string()),
        })?;
        returned.push(return_id);
        if !skus.contains(&sku) {
            skus.push(sku);
        }
    }
    conn.prepare_cached(
        "INSERT INTO handover_undone (order_id, station, at, body, undone_at, undone_by, reason)
         SELECT order_id, station, at, body, ?2, ?3, ?4 FROM handover WHERE order_id = ?1",
    )
    .and_then(|mut st| st.execute(params![order_id, now.millis(), staff, reason]))
    .map_err(sql(conn))?;
    for statement in [
        "DELETE FROM handover WHERE order_id = ?1",
        "UPDATE pickup_order_line SET settled = 0 WHERE order_id = ?1",
        "UPDATE pickup_order SET status = 'open', collected_at = NULL, collected_by = NULL, updated_at = ?2 WHERE order_id = ?1",
        "UPDATE trace_code SET status = 'in_stock', order_id = NULL, updated_at = ?2 WHERE order_id = ?1 AND status = 'handed_over'",
    ] {
        conn.prepare_cached(statement)
            .and_then(|mut st| {
                if statement.contains("?2") {
                    st.execute(params![order_id, now.millis()])
                } else {
                    st.execute(params![order_id])
                }
            })
            .map_err(sql(conn))?;
    }
    outbox::append(
        conn,
        &DomainEvent::PickupHandoverUndone {
            order_id: order_id.to_owned(),
            station: station.clone(),
            staff: staff.to_owned(),
            reason: reason.to_owned(),
            handed_over_at: Timestamp(at),
            returned: returned.clone(),
        },
        now,
    )?;
    Ok(Undone {
        order_id: order_id.to_owned(),
        station,
        handed_over_at: Timestamp(at),
        returned,
        skus,
    })
}

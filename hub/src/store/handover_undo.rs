//! Undoing a handover: a supervisor's correction within the undo window
//! (`hub_core::pickup::undo_blocker` decides whether it is allowed).
//!
//! What is undone is the order's **last handover**: the whole handover of an order handed
//! over at once, or, for an order handed over in parts, its last part only.
//! A pickup counter corrects the handover it just made — the wrong bag to the wrong customer,
//! a clerk's slip — while earlier parts were separate visits, each with its own window, whose
//! goods the customer took home long ago; undoing them too would put stock back on the books
//! that is not on the shelf. A further undo takes the part before, while it is still within
//! the window.
//!
//! The goods that left in the undone handover come back to stock with `return` movements (one
//! per issue movement, same batch and quantity); the issue movements stay in the journal.
//! Refused goods written off stay written off (the goods were damaged), refused goods sent back
//! to stock never left. The handover (or the part) moves to `handover_undone` (with who, when
//! and why); the order is open again, or partly collected while earlier parts stand, with what
//! each line has settled counted from those parts; the next handover needs a new code check;
//! the undone trace codes are in stock again; and a `pickup_handover_undone` event goes
//! upstream (for a part, with the part and what is open of each line) — all in the caller's
//! transaction.

use super::StoreError;
use super::ledger::{RecordError, record};
use super::outbox::{self, sql};
use hub_contract::stored;
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
    /// The order's state after the undo: `open`, or `partially_collected` while earlier parts
    /// stand.
    pub status: &'static str,
    /// What is open of each line after the undo of a part (empty for a whole handover).
    pub open: Vec<i64>,
}

/// The last handover of an order: the last part if it was handed over in parts, else the
/// whole handover.
struct Last {
    station: String,
    at: i64,
    body: String,
    /// The part's number, for an order handed over in parts.
    part: Option<i64>,
}

fn last_handover(conn: &Connection, order_id: &str) -> Result<Option<Last>, StoreError> {
    let part = conn
        .prepare_cached(
            "SELECT part, station, at, body FROM handover_part WHERE order_id = ?1
             ORDER BY part DESC LIMIT 1",
        )
        .and_then(|mut st| {
            st.query_row([order_id], |r| {
                Ok(Last {
                    part: Some(r.get(0)?),
                    station: r.get(1)?,
                    at: r.get(2)?,
                    body: r.get(3)?,
                })
            })
            .optional()
        })
        .map_err(sql(conn))?;
    if part.is_some() {
        return Ok(part);
    }
    conn.prepare_cached("SELECT station, at, body FROM handover WHERE order_id = ?1")
        .and_then(|mut st| {
            st.query_row([order_id], |r| {
                Ok(Last {
                    part: None,
                    station: r.get(0)?,
                    at: r.get(1)?,
                    body: r.get(2)?,
                })
            })
            .optional()
        })
        .map_err(sql(conn))
}

fn unreadable(conn: &Connection, order_id: &str, e: impl std::fmt::Display) -> StoreError {
    sql(conn)(rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("handover part of order {order_id}: {e}").into(),
    ))
}

/// What each line has settled in the parts that stand: units handed over or refused, or the
/// whole line once weighed (a weighed line leaves whole), never more than ordered.
fn settled_by_parts(conn: &Connection, order_id: &str) -> Result<Vec<i64>, StoreError> {
    let ordered: Vec<i64> = conn
        .prepare_cached(
            "SELECT quantity FROM pickup_order_line WHERE order_id = ?1 ORDER BY line_no",
        )
        .and_then(|mut st| st.query_map([order_id], |r| r.get(0))?.collect())
        .map_err(sql(conn))?;
    let bodies: Vec<String> = conn
        .prepare_cached("SELECT body FROM handover_part WHERE order_id = ?1 ORDER BY part")
        .and_then(|mut st| st.query_map([order_id], |r| r.get(0))?.collect())
        .map_err(sql(conn))?;
    let mut settled = vec![0i64; ordered.len()];
    for body in bodies {
        let part = stored::decode_handover(&body).map_err(|e| unreadable(conn, order_id, e))?;
        for ((slot, line), of) in settled.iter_mut().zip(&part.lines).zip(&ordered) {
            *slot = match line.weighed_g {
                Some(_) => *of,
                None => (*slot + line.handed_over + line.refused).min(*of),
            };
        }
    }
    Ok(settled)
}

/// Undoes the last handover of `order_id` (the last part of an order handed over in parts)
/// if it happened within `window_ms` before `now`.
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
    let last = last_handover(conn, order_id)?;
    if let Some(refusal) = undo_blocker(last.as_ref().map(|h| Timestamp(h.at)), window_ms, now) {
        return Err(UndoError::Refused {
            order_id: order_id.to_owned(),
            refusal,
        });
    }
    let Some(Last {
        station,
        at,
        body,
        part,
    }) = last
    else {
        return Err(UndoError::Refused {
            order_id: order_id.to_owned(),
            refusal: UndoRefusal::NotHandedOver,
        });
    };
    // The issue movements of this handover (or part): same order, same instant (one
    // transaction).
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
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut st| {
        st.execute(params![
            order_id,
            station,
            at,
            body,
            now.millis(),
            staff,
            reason
        ])
    })
    .map_err(sql(conn))?;
    // An order collected whole (at once or with this last part) is not collected any more.
    conn.prepare_cached("DELETE FROM handover WHERE order_id = ?1")
        .and_then(|mut st| st.execute([order_id]))
        .map_err(sql(conn))?;
    let (status, undone_part, open) = match part {
        None => {
            for statement in [
                "UPDATE pickup_order_line SET settled = 0 WHERE order_id = ?1",
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
            ("open", None, vec![])
        }
        Some(part) => {
            let undone =
                stored::decode_handover(&body).map_err(|e| unreadable(conn, order_id, e))?;
            conn.prepare_cached("DELETE FROM handover_part WHERE order_id = ?1 AND part = ?2")
                .and_then(|mut st| st.execute(params![order_id, part]))
                .map_err(sql(conn))?;
            let settled = settled_by_parts(conn, order_id)?;
            let mut open = Vec::with_capacity(settled.len());
            for (i, (settled, line)) in settled.iter().zip(&undone.lines).enumerate() {
                conn.prepare_cached(
                    "UPDATE pickup_order_line SET settled = ?3 WHERE order_id = ?1 AND line_no = ?2",
                )
                .and_then(|mut st| st.execute(params![order_id, i as i64, settled]))
                .map_err(sql(conn))?;
                open.push(line.ordered - settled);
            }
            for code in &undone.trace_codes {
                conn.prepare_cached(
                    "UPDATE trace_code SET status = 'in_stock', order_id = NULL, updated_at = ?3
                     WHERE code = ?1 AND order_id = ?2 AND status = 'handed_over'",
                )
                .and_then(|mut st| st.execute(params![code, order_id, now.millis()]))
                .map_err(sql(conn))?;
            }
            let earlier: bool = conn
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM handover_part WHERE order_id = ?1)")
                .and_then(|mut st| st.query_row([order_id], |r| r.get(0)))
                .map_err(sql(conn))?;
            let status = if earlier {
                "partially_collected"
            } else {
                "open"
            };
            (status, Some(undone), open)
        }
    };
    conn.prepare_cached(
        "UPDATE pickup_order SET status = ?2, collected_at = NULL, collected_by = NULL, updated_at = ?3
         WHERE order_id = ?1",
    )
    .and_then(|mut st| st.execute(params![order_id, status, now.millis()]))
    .map_err(sql(conn))?;
    // The next handover needs a new code check.
    conn.prepare_cached("DELETE FROM pickup_check_pass WHERE order_id = ?1")
        .and_then(|mut st| st.execute([order_id]))
        .map_err(sql(conn))?;
    outbox::append(
        conn,
        &DomainEvent::PickupHandoverUndone {
            order_id: order_id.to_owned(),
            station: station.clone(),
            staff: staff.to_owned(),
            reason: reason.to_owned(),
            handed_over_at: Timestamp(at),
            returned: returned.clone(),
            part: undone_part,
            open: open.clone(),
        },
        now,
    )?;
    Ok(Undone {
        order_id: order_id.to_owned(),
        station,
        handed_over_at: Timestamp(at),
        returned,
        skus,
        status,
        open,
    })
}

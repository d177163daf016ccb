//! Stock corrections by a supervisor: a stocktake count or a loss on one lot. The rules are in
//! `hub_core::stocktake`; this reads the lot, journals one movement (an `adjustment` for a
//! count, a `loss` with its reason), re-evaluates the SKU's tier and records who did it, all
//! in one transaction. Applied once per request id: a retry answers what the first did.

use super::Site;
use crate::store::staff as staff_store;
use crate::store::{StoreError, ledger};
use hub_core::stocktake::{CorrectionError, LossReason, check_loss, stocktake_delta};
use hub_core::{BatchKey, Movement, MovementId, MovementKind, SkuCode, Timestamp};
use rusqlite::Connection;

/// What a supervisor records about one lot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Correction {
    /// The lot was counted: `counted` is on the shelf.
    Count { counted: i64 },
    /// `quantity` was written off for `reason`.
    Loss { quantity: i64, reason: LossReason },
}

/// Who records it, where, and the request's id (the same id twice is applied once).
#[derive(Debug, Clone)]
pub struct CorrectionBy<'a> {
    pub staff: &'a str,
    pub station: Option<&'a str>,
    pub device: Option<&'a str>,
    pub request_id: &'a str,
}

/// What was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrected {
    /// The journaled movement's signed change of the lot.
    pub delta: i64,
    /// The lot's quantity after it.
    pub lot_after: i64,
    /// This request was applied before; nothing new was written.
    pub repeated: bool,
}

/// Why a correction was not recorded; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum StockCorrectionError {
    #[error("no lot {lot} of {sku} is in the ledger; pick a lot from the stock list")]
    UnknownLot { sku: String, lot: String },
    #[error("{0}")]
    Refused(#[from] CorrectionError),
    #[error("the ledger refused the correction: {0}")]
    Ledger(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl StockCorrectionError {
    /// Stable code, for the catalogue's words (`stock.correction.<code>`).
    pub fn code(&self) -> &'static str {
        match self {
            StockCorrectionError::UnknownLot { .. } => "unknown_lot",
            StockCorrectionError::Refused(e) => e.code(),
            StockCorrectionError::Ledger(_) => "ledger",
            StockCorrectionError::Store(_) => "store",
        }
    }
}

/// Records `correction` of `sku`'s `lot` inside the caller's transaction.
pub fn correct_in(
    c: &Connection,
    site: &Site,
    sku: &SkuCode,
    lot: &str,
    correction: &Correction,
    by: &CorrectionBy<'_>,
    now: Timestamp,
) -> Result<Corrected, StockCorrectionError> {
    let id_text = match correction {
        Correction::Count { .. } => format!("stk-{}", by.request_id),
        Correction::Loss { .. } => format!("loss-{}", by.request_id),
    };
    let id = MovementId::new(&id_text).map_err(|e| StockCorrectionError::Ledger(e.to_string()))?;
    let unknown = || StockCorrectionError::UnknownLot {
        sku: sku.to_string(),
        lot: lot.to_owned(),
    };
    let (expiry, on_hand) = ledger::lot(c, sku, lot)?.ok_or_else(unknown)?;
    if let Some(done) = ledger::movement_by_id(c, &id)? {
        return Ok(Corrected {
            delta: done.delta(),
            lot_after: on_hand,
            repeated: true,
        });
    }
    let (kind, quantity, delta, reason) = match correction {
        Correction::Count { counted } => {
            let delta = stocktake_delta(on_hand, *counted)?;
            (
                MovementKind::Adjustment,
                delta,
                delta,
                format!(
                    "stocktake: counted {counted} (was {on_hand}) by {}",
                    by.staff
                ),
            )
        }
        Correction::Loss { quantity, reason } => {
            check_loss(on_hand, *quantity)?;
            (
                MovementKind::Loss,
                *quantity,
                -quantity,
                format!("{} by {}", reason.as_str(), by.staff),
            )
        }
    };
    let batch = BatchKey::new(lot, expiry.as_deref().and_then(|e| e.parse().ok()))
        .map_err(|_| unknown())?;
    let movement = Movement {
        id,
        sku: sku.clone(),
        batch: Some(batch),
        kind,
        quantity,
        reason: reason.clone(),
        reference: match correction {
            Correction::Count { .. } => "stocktake".into(),
            Correction::Loss { .. } => "loss".into(),
        },
        at: now,
    };
    match ledger::record(c, &movement) {
        Ok(_) => {}
        Err(ledger::RecordError::Store(e)) => return Err(e.into()),
        Err(ledger::RecordError::Refused(e)) => {
            return Err(StockCorrectionError::Ledger(e.to_string()));
        }
    }
    crate::store::alert_book::evaluate_sku(c, sku, &site.stock_rules(), now)?;
    staff_store::record_action(
        c,
        &staff_store::Action {
            staff: Some(by.staff),
            station: by.station,
            device: by.device,
            action: match correction {
                Correction::Count { .. } => "stocktake",
                Correction::Loss { .. } => "loss",
            },
            detail: &format!("{sku} lot {lot}: {reason}"),
        },
        now,
    )?;
    Ok(Corrected {
        delta,
        lot_after: on_hand + delta,
        repeated: false,
    })
}

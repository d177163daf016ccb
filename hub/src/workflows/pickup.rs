//! Pickup handover: check a code at a station, then hand the order over exactly once.
//!
//! Only declared pickup stations may check codes or hand orders over. A check targets one
//! order (QR, order number or phone tail); a handover needs a successful check of that order
//! at that station shortly before it.

use super::Site;
use crate::config::{StationError, StationKind};
use crate::store::Tx;
use crate::store::pickup_orders::{
    HandoverError, HandoverRequest, check_presented_code, hand_over, lift_lockout,
};
use crate::store::{Store, StoreError};
use hub_core::Timestamp;
use hub_core::event::Handover;
use hub_core::pickup::{CodeCheck, PresentedCode};

/// What the clerk entered: the code (or the whole QR payload), and the order number or the
/// customer's phone tail typed beside it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct CodeEntry {
    pub code: String,
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub phone_tail: Option<String>,
}

impl CodeEntry {
    /// A scanned QR payload or a code typed alone.
    pub fn scanned(code: &str) -> CodeEntry {
        CodeEntry {
            code: code.to_owned(),
            ..CodeEntry::default()
        }
    }
}

/// Why a pickup action was not run at all.
#[derive(Debug, thiserror::Error)]
pub enum PickupError {
    #[error(transparent)]
    Station(#[from] StationError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The check inside the caller's transaction (station commands record their reply in it).
pub fn check_in(
    c: &Tx<'_>,
    site: &Site,
    station: &str,
    entry: &CodeEntry,
    now: Timestamp,
) -> Result<CodeCheck, PickupError> {
    site.station(station, StationKind::Pickup)?;
    let (presented, raw_len) = presented(entry);
    Ok(check_presented_code(
        c,
        &site.id,
        station,
        &presented,
        raw_len,
        &site.pickup,
        now,
    )?)
}

/// What the clerk entered as the core reads it, and its length.
fn presented(entry: &CodeEntry) -> (PresentedCode, usize) {
    let presented = PresentedCode::typed(
        &entry.code,
        entry.order_id.as_deref(),
        entry.phone_tail.as_deref(),
    );
    let raw_len =
        entry.code.chars().count() + entry.order_id.as_deref().map_or(0, |o| o.chars().count());
    (presented, raw_len)
}

/// [`check_in`] on a read-only connection, for a check that changes nothing stored: `None`
/// when the code is wrong (a wrong code counts towards the lockouts: run [`check_in`] in a
/// write then). A `Found` answer still needs its pass stored
/// (`store::pickup_orders::record_check_pass`) before a handover can follow.
pub fn check_read_only(
    c: &rusqlite::Connection,
    site: &Site,
    station: &str,
    entry: &CodeEntry,
    now: Timestamp,
) -> Result<Option<CodeCheck>, PickupError> {
    site.station(station, StationKind::Pickup)?;
    let (presented, raw_len) = presented(entry);
    Ok(crate::store::pickup_orders::check_presented_code_read_only(
        c,
        &site.id,
        station,
        &presented,
        raw_len,
        &site.pickup,
        now,
    )?)
}

/// Checks a code typed or scanned at `station`.
pub async fn check(
    store: &Store,
    site: &Site,
    station: &str,
    entry: &CodeEntry,
    now: Timestamp,
) -> Result<CodeCheck, PickupError> {
    site.station(station, StationKind::Pickup)?;
    let (site, station, entry) = (site.clone(), station.to_owned(), entry.clone());
    store
        .write(move |c| check_in(c, &site, &station, &entry, now))
        .await
}

/// The handover inside the caller's transaction, with the stock tiers of its SKUs.
pub fn handover_in(
    c: &Tx<'_>,
    site: &Site,
    station: &str,
    order_id: &str,
    request: &HandoverRequest,
    now: Timestamp,
) -> Result<Handover, HandoverError> {
    site.station(station, StationKind::Pickup)
        .map_err(HandoverError::Station)?;
    // Scanned trace codes are looked up in their stored form, whichever way they were read.
    let request = HandoverRequest {
        trace_codes: request
            .trace_codes
            .iter()
            .map(|code| crate::codes::stored_form(code, &site.patterns))
            .collect(),
        ..request.clone()
    };
    let handover = hand_over(
        c,
        &site.id,
        station,
        order_id,
        &request,
        site.pickup.check_valid_ms,
        site.today(now),
        now,
    )?;
    let mut skus: Vec<_> = handover.lines.iter().map(|l| l.sku.clone()).collect();
    skus.dedup();
    for sku in &skus {
        crate::store::alert_book::evaluate_sku(c, sku, &site.stock_rules(), now)?;
    }
    Ok(handover)
}

/// Hands an order over and re-evaluates the stock tiers of its SKUs, in one transaction.
/// Scanned trace codes are read as any other scan (a scanner's `]C1…` or the printed
/// `(01)…(21)…`) and looked up in their stored form; stock leaves from lots that have not
/// expired on the site's day.
pub async fn handover(
    store: &Store,
    site: &Site,
    station: &str,
    order_id: &str,
    request: HandoverRequest,
    now: Timestamp,
) -> Result<Handover, HandoverError> {
    site.station(station, StationKind::Pickup)
        .map_err(HandoverError::Station)?;
    let (site, station, order_id) = (site.clone(), station.to_owned(), order_id.to_owned());
    store
        .write(move |c| handover_in(c, &site, &station, &order_id, &request, now))
        .await
}

/// An item checked at the counter: its stored form, and the order line it ticks (0-based) or
/// why it may not leave with the order.
pub type ItemChecked = (String, Result<usize, hub_core::pickup::ItemRefusal>);

/// One item scanned at the pickup counter before the handover, checked against the order on
/// screen: `code` in its stored form, and the order line it ticks (0-based) or why it may not
/// leave with this order. `None` when the order is unknown. Reads only.
pub fn check_item_in(
    c: &rusqlite::Connection,
    site: &Site,
    order_id: &str,
    scanned: &str,
) -> Result<Option<ItemChecked>, StoreError> {
    let code = crate::codes::stored_form(scanned, &site.patterns);
    Ok(crate::store::pickup_orders::item_check(c, order_id, &code)?.map(|line| (code, line)))
}

/// [`check_item_in`] with the order's line quantities (the screen ticks a line up to its
/// quantity). No check and no quantities when the order is unknown.
pub fn item_on_order(
    c: &rusqlite::Connection,
    site: &Site,
    order_id: &str,
    scanned: &str,
) -> Result<(Option<ItemChecked>, Vec<i64>), StoreError> {
    let checked = check_item_in(c, site, order_id, scanned)?;
    let quantities = crate::store::pickup_orders::order(c, order_id)?
        .map(|o| o.items.iter().map(|i| i.quantity).collect::<Vec<_>>())
        .unwrap_or_default();
    Ok((checked, quantities))
}

/// Which lines of `order_id` are sold by weight (their SKU counts grams); empty when the
/// order is unknown.
pub fn lines_by_weight(c: &rusqlite::Connection, order_id: &str) -> Result<Vec<bool>, StoreError> {
    let Some(order) = crate::store::pickup_orders::order(c, order_id)? else {
        return Ok(vec![]);
    };
    order
        .items
        .iter()
        .map(|item| {
            Ok(crate::store::sku::get(c, &item.sku)?
                .is_some_and(|s| s.unit == hub_core::StockUnit::Gram))
        })
        .collect()
}

/// The lines of `order_id` for the weight cross-check: what is still open of each, with the
/// master data's unit weight (`None` for lines sold by weight and SKUs without one).
pub fn bag_lines(
    c: &rusqlite::Connection,
    order_id: &str,
) -> Result<Vec<hub_core::counter::BagLine>, StoreError> {
    let Some(order) = crate::store::pickup_orders::order(c, order_id)? else {
        return Ok(vec![]);
    };
    let settled = crate::store::pickup_orders::settled_per_line(c, order_id, order.items.len())?;
    let by_weight = lines_by_weight(c, order_id)?;
    let mut lines = Vec::with_capacity(order.items.len());
    for (i, item) in order.items.iter().enumerate() {
        let unit_weight_g = if by_weight.get(i).copied().unwrap_or(false) {
            None
        } else {
            crate::store::unit_weights::get(c, item.sku.as_str())?
        };
        lines.push(hub_core::counter::BagLine {
            units: item.quantity - settled.get(i).copied().unwrap_or(0),
            unit_weight_g,
        });
    }
    Ok(lines)
}

/// A supervisor undoes the handover of `order_id` (within `pickup.undo_window_minutes`, for a
/// reason from [`hub_core::pickup::UNDO_REASONS`]): the goods come back to stock, the order is
/// open again, and the stock tiers of its SKUs are looked at again — in one transaction. The
/// station app and `hub pickup undo` both come here.
pub async fn undo_handover(
    store: &Store,
    site: &Site,
    order_id: &str,
    staff: &str,
    reason: &str,
    now: Timestamp,
) -> Result<crate::store::handover_undo::Undone, crate::store::handover_undo::UndoError> {
    let (site, order_id, staff, reason) = (
        site.clone(),
        order_id.to_owned(),
        staff.to_owned(),
        reason.to_owned(),
    );
    store
        .write(move |c| undo_handover_in(c, &site, &order_id, &staff, &reason, now))
        .await
}

/// [`undo_handover`] inside the caller's transaction (a `pickup_undo` station command stores
/// its reply in it).
pub fn undo_handover_in(
    c: &Tx<'_>,
    site: &Site,
    order_id: &str,
    staff: &str,
    reason: &str,
    now: Timestamp,
) -> Result<crate::store::handover_undo::Undone, crate::store::handover_undo::UndoError> {
    use crate::store::handover_undo::{UndoError, undo_handover};
    if !hub_core::pickup::UNDO_REASONS.contains(&reason) {
        return Err(UndoError::UnknownReason(reason.to_owned()));
    }
    let undone = undo_handover(c, order_id, staff, reason, site.pickup.undo_window_ms, now)?;
    for sku in &undone.skus {
        crate::store::alert_book::evaluate_sku(c, sku, &site.stock_rules(), now)?;
    }
    Ok(undone)
}

/// A supervisor lifts a station's lockout (`station: None`: the site-wide pause). Returns
/// whether it was locked.
pub async fn unlock(
    store: &Store,
    site: &Site,
    station: Option<&str>,
    staff: &str,
    reason: &str,
    now: Timestamp,
) -> Result<bool, PickupError> {
    if let Some(station) = station {
        site.station(station, StationKind::Pickup)?;
    }
    let (station, staff, reason) = (
        station.map(str::to_owned),
        staff.to_owned(),
        reason.to_owned(),
    );
    Ok(store
        .write(move |c| lift_lockout(c, station.as_deref(), &staff, &reason, now))
        .await?)
}

//! Receiving a delivery at a station: scans, weights and photos feed the selected line; staff
//! count, split, decide, release, dispute and close. Each step is one durable write; decisions
//! and releases also re-evaluate the SKU's stock tier in the same transaction. Only declared
//! receiving stations may receive.

use super::Site;
use crate::codes::{ScannedCode, classify_text, expiry_of};
use crate::config::StationKind;
use crate::store::Store;
use crate::store::Tx;
use crate::store::deliveries::{
    self as deliveries, BindOutcome, ReceivingError, ScannedItem, Selected,
};
use hub_core::event::ReceivingDecision;
use hub_core::receiving::{CodeFlag, PhotoEvidence};
use hub_core::{SkuCode, Timestamp};

/// What a scan at a receiving station did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "scan", rename_all = "snake_case")]
pub enum ScanOutcome {
    /// A crate or delivery label: this line is now selected.
    LineSelected(Selected),
    /// An item code, bound or flagged.
    Item(BindOutcome),
}

fn receiving_station(site: &Site, station: &str) -> Result<(), ReceivingError> {
    site.station(station, StationKind::Receiving)?;
    Ok(())
}

/// A code was scanned (or typed) at a receiving station.
pub async fn scan(
    store: &Store,
    site: &Site,
    station: &str,
    text: &str,
    now: Timestamp,
) -> Result<ScanOutcome, ReceivingError> {
    receiving_station(site, station)?;
    let (site, station, raw) = (site.clone(), station.to_owned(), text.trim().to_owned());
    let code = classify_text(&raw, &site.patterns);
    store
        .write(move |c| scan_in(c, &site, &station, &raw, &code, now))
        .await
}

/// The scan step inside the caller's transaction, for `raw` text classified once by the caller
/// into `code` ([`crate::codes::classify_text`], or the scanner adapter's classification): a
/// crate or delivery label selects its line; a trace code is bound to the selected line, a
/// product scan counted on it, and a code that is malformed or that no rule recognises is
/// flagged on it with its reason.
pub fn scan_in(
    c: &Tx<'_>,
    site: &Site,
    station: &str,
    raw: &str,
    code: &ScannedCode,
    now: Timestamp,
) -> Result<ScanOutcome, ReceivingError> {
    receiving_station(site, station)?;
    let label = match code {
        ScannedCode::Sscc { sscc } => sscc.clone(),
        _ => raw.trim().to_owned(),
    };
    match deliveries::scan_label(c, station, &label, now) {
        Ok(selected) => return Ok(ScanOutcome::LineSelected(selected)),
        Err(ReceivingError::UnknownLabel(_)) if !matches!(code, ScannedCode::Sscc { .. }) => {}
        Err(e) => return Err(e),
    }
    let outcome = match code.clone() {
        ScannedCode::Item {
            code,
            kind,
            gtin,
            elements,
            ..
        } => {
            let today = site.today(now);
            let item = ScannedItem {
                lot: ScannedCode::element(&elements, "10").map(str::to_owned),
                expiry: expiry_of(&elements, today),
                code,
                kind,
                gtin,
                elements,
            };
            deliveries::scan_item(c, station, &item, &site.receiving, today, now)?
        }
        ScannedCode::Malformed { raw, reason } => deliveries::flag_scan(
            c,
            station,
            &raw,
            CodeFlag::Malformed { detail: reason },
            now,
        )?,
        ScannedCode::Unrecognised { raw, reason } => deliveries::flag_scan(
            c,
            station,
            &raw,
            CodeFlag::Unrecognised { detail: reason },
            now,
        )?,
        ScannedCode::Sscc { sscc } => return Err(ReceivingError::UnknownLabel(sscc)),
    };
    Ok(ScanOutcome::Item(outcome))
}

/// A stable weight (grams) for the station's selected line, inside the caller's transaction.
pub fn weight_in(
    c: &Tx<'_>,
    site: &Site,
    station: &str,
    grams: i64,
    now: Timestamp,
) -> Result<Selected, ReceivingError> {
    receiving_station(site, station)?;
    deliveries::record_weight(c, station, grams, now)
}

/// A stable weight (grams) was read at a receiving station.
pub async fn weight(
    store: &Store,
    site: &Site,
    station: &str,
    grams: i64,
    now: Timestamp,
) -> Result<Selected, ReceivingError> {
    receiving_station(site, station)?;
    let (site, station) = (site.clone(), station.to_owned());
    store
        .write(move |c| weight_in(c, &site, &station, grams, now))
        .await
}

/// A photo check finished at a receiving station.
pub async fn photo(
    store: &Store,
    site: &Site,
    station: &str,
    evidence: PhotoEvidence,
    now: Timestamp,
) -> Result<Selected, ReceivingError> {
    receiving_station(site, station)?;
    let station = station.to_owned();
    store
        .write(move |c| deliveries::record_photo(c, &station, &evidence, now))
        .await
}

/// Staff counted a line by hand (inside the caller's transaction); a negative or absurd count
/// is refused.
pub fn count_in(
    c: &Tx<'_>,
    delivery_id: &str,
    line_no: u32,
    count: i64,
    now: Timestamp,
) -> Result<(), ReceivingError> {
    deliveries::set_count(c, delivery_id, line_no, count, now)
}

/// Staff counted a line by hand.
pub async fn count(
    store: &Store,
    delivery_id: &str,
    line_no: u32,
    count: i64,
    now: Timestamp,
) -> Result<(), ReceivingError> {
    let delivery_id = delivery_id.to_owned();
    store
        .write(move |c| count_in(c, &delivery_id, line_no, count, now))
        .await
}

/// Staff split `quantity` of a line off into another lot (inside the caller's transaction);
/// returns the new line's number.
pub fn split_in(
    c: &Tx<'_>,
    delivery_id: &str,
    line_no: u32,
    lot: &str,
    expiry: Option<chrono::NaiveDate>,
    quantity: i64,
    now: Timestamp,
) -> Result<u32, ReceivingError> {
    deliveries::split_line(c, delivery_id, line_no, lot.trim(), expiry, quantity, now)
}

/// Staff split `quantity` of a line off into another lot; returns the new line's number.
pub async fn split(
    store: &Store,
    delivery_id: &str,
    line_no: u32,
    lot: &str,
    expiry: Option<chrono::NaiveDate>,
    quantity: i64,
    now: Timestamp,
) -> Result<u32, ReceivingError> {
    let (delivery_id, lot) = (delivery_id.to_owned(), lot.to_owned());
    store
        .write(move |c| split_in(c, &delivery_id, line_no, &lot, expiry, quantity, now))
        .await
}

/// A station's tablet opened a delivery line (inside the caller's transaction): it is now the
/// station's selected line, as if its label had been scanned.
pub fn select_in(
    c: &Tx<'_>,
    site: &Site,
    station: &str,
    delivery_id: &str,
    line_no: u32,
    now: Timestamp,
) -> Result<Selected, ReceivingError> {
    receiving_station(site, station)?;
    deliveries::scan_label(c, station, &format!("{delivery_id}/{line_no}"), now)
}

/// Staff decided a line (inside the caller's transaction), and the SKU's tier follows.
pub fn decide_in(
    c: &Tx<'_>,
    site: &Site,
    delivery_id: &str,
    line_no: u32,
    staff: &str,
    now: Timestamp,
) -> Result<ReceivingDecision, ReceivingError> {
    decide_holding_in(c, site, delivery_id, line_no, staff, None, now)
}

/// [`decide_in`], with a clerk's hold for a supervisor's review when given (what the checks
/// reject stays rejected; what they would accept is held).
pub fn decide_holding_in(
    c: &Tx<'_>,
    site: &Site,
    delivery_id: &str,
    line_no: u32,
    staff: &str,
    hold: Option<hub_core::receiving::HoldReason>,
    now: Timestamp,
) -> Result<ReceivingDecision, ReceivingError> {
    let d = deliveries::decide_holding(
        c,
        delivery_id,
        line_no,
        staff,
        hold,
        &site.receiving,
        site.today(now),
        now,
    )?;
    crate::store::alert_book::evaluate_sku(c, &d.sku, &site.stock_rules(), now)?;
    Ok(d)
}

/// Staff decided a line.
pub async fn decide(
    store: &Store,
    site: &Site,
    delivery_id: &str,
    line_no: u32,
    staff: &str,
    now: Timestamp,
) -> Result<ReceivingDecision, ReceivingError> {
    let (site, delivery_id, staff) = (site.clone(), delivery_id.to_owned(), staff.to_owned());
    store
        .write(move |c| decide_in(c, &site, &delivery_id, line_no, &staff, now))
        .await
}

/// Staff decided a line, holding it for a supervisor's review when `hold` gives a reason
/// (`hub receive decide --hold`; the bench screen and MQTT's `receive_decide` hold the same way).
pub async fn decide_holding(
    store: &Store,
    site: &Site,
    delivery_id: &str,
    line_no: u32,
    staff: &str,
    hold: Option<hub_core::receiving::HoldReason>,
    now: Timestamp,
) -> Result<ReceivingDecision, ReceivingError> {
    let (site, delivery_id, staff) = (site.clone(), delivery_id.to_owned(), staff.to_owned());
    store
        .write(move |c| decide_holding_in(c, &site, &delivery_id, line_no, &staff, hold, now))
        .await
}

/// Staff closed a delivery (inside the caller's transaction): every undecided line is decided
/// now, and the tiers of its SKUs follow.
pub fn close_in(
    c: &Tx<'_>,
    site: &Site,
    delivery_id: &str,
    staff: &str,
    now: Timestamp,
) -> Result<Vec<ReceivingDecision>, ReceivingError> {
    let decisions =
        deliveries::close_delivery(c, delivery_id, staff, &site.receiving, site.today(now), now)?;
    let mut skus: Vec<&SkuCode> = decisions.iter().map(|d| &d.sku).collect();
    skus.sort();
    skus.dedup();
    for sku in skus {
        crate::store::alert_book::evaluate_sku(c, sku, &site.stock_rules(), now)?;
    }
    Ok(decisions)
}

/// Staff closed a delivery: every undecided line is decided now.
pub async fn close(
    store: &Store,
    site: &Site,
    delivery_id: &str,
    staff: &str,
    now: Timestamp,
) -> Result<Vec<ReceivingDecision>, ReceivingError> {
    let (site, delivery_id, staff) = (site.clone(), delivery_id.to_owned(), staff.to_owned());
    store
        .write(move |c| close_in(c, &site, &delivery_id, &staff, now))
        .await
}

/// What a person decided about held stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub delivery_id: String,
    pub line_no: u32,
    /// Into stock.
    pub release: i64,
    /// Rejected (not on the ledger).
    pub reject: i64,
    pub staff: String,
    pub reason: String,
}

/// Staff released and/or rejected held stock after review (inside the caller's transaction).
pub fn resolve_in(
    c: &Tx<'_>,
    site: &Site,
    r: &Resolution,
    now: Timestamp,
) -> Result<(), ReceivingError> {
    deliveries::resolve_quarantine(
        c,
        &r.delivery_id,
        r.line_no,
        r.release,
        r.reject,
        &r.staff,
        &r.reason,
        now,
    )?;
    for d in deliveries::decisions(c, &r.delivery_id)?
        .iter()
        .filter(|d| d.line_no == r.line_no)
    {
        crate::store::alert_book::evaluate_sku(c, &d.sku, &site.stock_rules(), now)?;
    }
    Ok(())
}

/// Staff released and/or rejected held stock after review.
pub async fn resolve(
    store: &Store,
    site: &Site,
    resolution: Resolution,
    now: Timestamp,
) -> Result<(), ReceivingError> {
    let site = site.clone();
    store
        .write(move |c| resolve_in(c, &site, &resolution, now))
        .await
}

/// One step on a delivery's dispute, the one home of its rules for the CLI, the station app
/// (`receive_dispute`) and central (`delivery_dispute`): open it (about `line_no`, with that
/// line's stored photos as its evidence), respond with a note, record that its photos were
/// inspected, or settle it. Each needs a note saying what was done.
pub fn dispute_in(
    c: &rusqlite::Connection,
    delivery_id: &str,
    staff: &str,
    step: hub_contract::station::DisputeStep,
    note: &str,
    line_no: Option<u32>,
    now: Timestamp,
) -> Result<(), ReceivingError> {
    use hub_contract::station::DisputeStep;
    match step {
        DisputeStep::Open => {
            deliveries::open_dispute_on_line(c, delivery_id, staff, note, line_no, now)
        }
        DisputeStep::Respond => deliveries::respond_to_dispute(
            c,
            delivery_id,
            staff,
            note,
            deliveries::DisputeResponse::Note,
            now,
        ),
        DisputeStep::PhotosInspected => deliveries::respond_to_dispute(
            c,
            delivery_id,
            staff,
            note,
            deliveries::DisputeResponse::PhotoInspection,
            now,
        ),
        DisputeStep::Settle => deliveries::close_dispute(c, delivery_id, staff, note, now),
    }
}

/// A supervisor opens a dispute on a delivery (its photos and decisions are then kept; about
/// `line_no` when given), or closes the open one once settled.
pub async fn dispute(
    store: &Store,
    delivery_id: &str,
    staff: &str,
    note: &str,
    close: bool,
    line_no: Option<u32>,
    now: Timestamp,
) -> Result<(), ReceivingError> {
    let (delivery_id, staff, note) = (delivery_id.to_owned(), staff.to_owned(), note.to_owned());
    store
        .write(move |c| {
            let step = if close {
                hub_contract::station::DisputeStep::Settle
            } else {
                hub_contract::station::DisputeStep::Open
            };
            dispute_in(c, &delivery_id, &staff, step, &note, line_no, now)
        })
        .await
}

/// A supervisor responds to the open dispute on a delivery (a note, or an inspection of its
/// photos); the first response is what the report's response time counts.
pub async fn respond_to_dispute(
    store: &Store,
    delivery_id: &str,
    staff: &str,
    note: &str,
    response: deliveries::DisputeResponse,
    now: Timestamp,
) -> Result<(), ReceivingError> {
    let (delivery_id, staff, note) = (delivery_id.to_owned(), staff.to_owned(), note.to_owned());
    store
        .write(move |c| {
            let step = match response {
                deliveries::DisputeResponse::Note => hub_contract::station::DisputeStep::Respond,
                deliveries::DisputeResponse::PhotoInspection => {
                    hub_contract::station::DisputeStep::PhotosInspected
                }
            };
            dispute_in(c, &delivery_id, &staff, step, &note, None, now)
        })
        .await
}

/// A supervisor reverses a line's last receipt within `receiving.reversal_window_minutes`
/// (inside the caller's transaction): the received quantity leaves the lot
/// again with a reversal movement, the line waits for a new decision, and the SKU's tier
/// follows. `supervisor` says whether `staff` is one (the caller knows the roles); a request
/// id seen before is answered with what it did then.
pub fn reverse_in(
    c: &Tx<'_>,
    site: &Site,
    request: &crate::store::receipt_reversal::ReversalRequest,
    now: Timestamp,
) -> Result<crate::store::receipt_reversal::Reversed, ReceivingError> {
    let mut request = request.clone();
    request.window_minutes = site.reversal_window_minutes;
    let done = crate::store::receipt_reversal::reverse_receipt(c, &request, now)?;
    if !done.repeated
        && let Ok(sku) = SkuCode::new(done.sku.clone())
    {
        crate::store::alert_book::evaluate_sku(c, &sku, &site.stock_rules(), now)?;
    }
    Ok(done)
}

/// [`reverse_in`] in its own transaction (`hub receive reverse`).
pub async fn reverse(
    store: &Store,
    site: &Site,
    request: crate::store::receipt_reversal::ReversalRequest,
    now: Timestamp,
) -> Result<crate::store::receipt_reversal::Reversed, ReceivingError> {
    let site = site.clone();
    store
        .write(move |c| reverse_in(c, &site, &request, now))
        .await
}

//! Receiving a delivery at a station: scans, weights and photos feed the selected line; staff
//! decide, release, split and close. Each step is one durable write; decisions and releases
//! also re-evaluate the SKU's stock tier in the same transaction.

use crate::codes::{ScannedCode, SitePatterns, classify_text, expiry_of};
use crate::config::Config;
use crate::store::Store;
use crate::store::receiving::{self as rs, BindOutcome, ReceivingError, ScannedItem, Selected};
use hub_core::event::ReceivingDecision;
use hub_core::receiving::{CodeFlag, PhotoEvidence, ReceivingPolicy};
use hub_core::{SkuCode, Timestamp};

/// What a scan at a receiving station did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "scan", rename_all = "snake_case")]
pub enum ScanOutcome {
    /// A crate or delivery label: this line is now selected.
    LineSelected(Selected),
    /// An item code, bound or flagged.
    Item(BindOutcome),
}

/// The site's day holding `now`: what expiry dates are compared with.
fn today(now: Timestamp) -> chrono::NaiveDate {
    crate::clock::local_date(now)
}

/// The site's rules a scan is checked with: its trace-code patterns (`[codes] patterns`) and
/// its receiving policy (`[receiving]`, for the expiry printed in a code).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanRules {
    pub patterns: SitePatterns,
    pub policy: ReceivingPolicy,
}

impl ScanRules {
    /// The rules of a site's config.
    pub fn of(config: &Config) -> ScanRules {
        ScanRules {
            patterns: config.codes.clone(),
            policy: config.receiving.policy,
        }
    }
}

/// A code was scanned at a receiving station, checked with the site's `rules`.
pub async fn scan(
    store: &Store,
    station: &str,
    text: &str,
    rules: &ScanRules,
    now: Timestamp,
) -> Result<ScanOutcome, ReceivingError> {
    let (station, text) = (station.to_owned(), text.trim().to_owned());
    let rules = rules.clone();
    store
        .write(move |c| scan_in(c, &station, &text, &rules, now))
        .await
}

/// The scan step inside the caller's transaction: a crate or delivery label selects its line;
/// a trace code is bound to the selected line, a product scan counted on it, and a code that
/// is malformed or that no rule recognises is flagged on it with its reason. The device
/// dispatcher calls this in the same transaction as the journal row of the scan.
pub fn scan_in(
    c: &rusqlite::Connection,
    station: &str,
    text: &str,
    rules: &ScanRules,
    now: Timestamp,
) -> Result<ScanOutcome, ReceivingError> {
    let text = text.trim();
    let classified = classify_text(text, &rules.patterns);
    let label = match &classified {
        ScannedCode::Sscc { sscc } => sscc.clone(),
        _ => text.to_owned(),
    };
    match rs::scan_label(c, station, &label, now) {
        Ok(selected) => return Ok(ScanOutcome::LineSelected(selected)),
        Err(ReceivingError::UnknownLabel(_)) if !matches!(classified, ScannedCode::Sscc { .. }) => {
        }
        Err(e) => return Err(e),
    }
    let outcome = match classified {
        ScannedCode::Item {
            code,
            kind,
            gtin,
            elements,
        } => {
            let today = today(now);
            let item = ScannedItem {
                lot: ScannedCode::element(&elements, "10").map(str::to_owned),
                expiry: expiry_of(&elements, today),
                code,
                kind,
                gtin,
                elements,
            };
            rs::scan_item(c, station, &item, &rules.policy, today, now)?
        }
        ScannedCode::Malformed { raw, reason } => rs::flag_scan(
            c,
            station,
            &raw,
            CodeFlag::Malformed { detail: reason },
            now,
        )?,
        ScannedCode::Unrecognised { raw, reason } => rs::flag_scan(
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

/// A stable weight (grams) was read at a receiving station.
pub async fn weight(
    store: &Store,
    station: &str,
    grams: i64,
    now: Timestamp,
) -> Result<Selected, ReceivingError> {
    let station = station.to_owned();
    store
        .write(move |c| rs::record_weight(c, &station, grams, now))
        .await
}

/// A photo check finished at a receiving station.
pub async fn photo(
    store: &Store,
    station: &str,
    evidence: PhotoEvidence,
    now: Timestamp,
) -> Result<Selected, ReceivingError> {
    let station = station.to_owned();
    store
        .write(move |c| rs::record_photo(c, &station, &evidence, now))
        .await
}

/// Staff decided a line (inside the caller's transaction), and the SKU's tier follows.
pub fn decide_in(
    c: &rusqlite::Connection,
    config: &Config,
    delivery_id: &str,
    line_no: u32,
    staff: &str,
    now: Timestamp,
) -> Result<ReceivingDecision, ReceivingError> {
    let policy = config.receiving.policy;
    let d = rs::decide(c, delivery_id, line_no, staff, &policy, today(now), now)?;
    crate::store::alerts::evaluate_sku(c, &d.sku, &config.alerts.default_policy, now)?;
    Ok(d)
}

/// Staff decided a line.
pub async fn decide(
    store: &Store,
    config: &Config,
    delivery_id: &str,
    line_no: u32,
    staff: &str,
    now: Timestamp,
) -> Result<ReceivingDecision, ReceivingError> {
    let (config, delivery_id, staff) = (config.clone(), delivery_id.to_owned(), staff.to_owned());
    store
        .write(move |c| decide_in(c, &config, &delivery_id, line_no, &staff, now))
        .await
}

/// Staff closed a delivery (inside the caller's transaction): every undecided line is decided
/// now, and the tiers of its SKUs follow.
pub fn close_in(
    c: &rusqlite::Connection,
    config: &Config,
    delivery_id: &str,
    staff: &str,
    now: Timestamp,
) -> Result<Vec<ReceivingDecision>, ReceivingError> {
    let policy = config.receiving.policy;
    let decisions = rs::close_delivery(c, delivery_id, staff, &policy, today(now), now)?;
    let mut skus: Vec<&SkuCode> = decisions.iter().map(|d| &d.sku).collect();
    skus.sort();
    skus.dedup();
    for sku in skus {
        crate::store::alerts::evaluate_sku(c, sku, &config.alerts.default_policy, now)?;
    }
    Ok(decisions)
}

/// Staff closed a delivery: every undecided line is decided now.
pub async fn close(
    store: &Store,
    config: &Config,
    delivery_id: &str,
    staff: &str,
    now: Timestamp,
) -> Result<Vec<ReceivingDecision>, ReceivingError> {
    let (config, delivery_id, staff) = (config.clone(), delivery_id.to_owned(), staff.to_owned());
    store
        .write(move |c| close_in(c, &config, &delivery_id, &staff, now))
        .await
}

/// Staff released and/or rejected held stock after review (inside the caller's transaction).
#[allow(clippy::too_many_arguments)]
pub fn resolve_in(
    c: &rusqlite::Connection,
    config: &Config,
    delivery_id: &str,
    line_no: u32,
    release: i64,
    reject: i64,
    staff: &str,
    reason: &str,
    now: Timestamp,
) -> Result<(), ReceivingError> {
    rs::resolve_quarantine(c, delivery_id, line_no, release, reject, staff, reason, now)?;
    for d in rs::decisions(c, delivery_id)?
        .iter()
        .filter(|d| d.line_no == line_no)
    {
        crate::store::alerts::evaluate_sku(c, &d.sku, &config.alerts.default_policy, now)?;
    }
    Ok(())
}

/// Staff released and/or rejected held stock after review.
#[allow(clippy::too_many_arguments)]
pub async fn resolve(
    store: &Store,
    config: &Config,
    delivery_id: &str,
    line_no: u32,
    release: i64,
    reject: i64,
    staff: &str,
    reason: &str,
    now: Timestamp,
) -> Result<(), ReceivingError> {
    let (config, delivery_id, staff, reason) = (
        config.clone(),
        delivery_id.to_owned(),
        staff.to_owned(),
        reason.to_owned(),
    );
    store
        .write(move |c| {
            resolve_in(
                c,
                &config,
                &delivery_id,
                line_no,
                release,
                reject,
                &staff,
                &reason,
                now,
            )
        })
        .await
}

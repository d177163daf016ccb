//! Pickup handover: check a code at a station, then hand the order over exactly once.

use crate::config::Config;
use crate::store::pickup::{HandoverError, HandoverRequest, check_presented_code, hand_over};
use crate::store::{Store, StoreError};
use hub_core::Timestamp;
use hub_core::event::Handover;
use hub_core::pickup::CodeCheck;

/// Checks a code typed or scanned at `station`.
pub async fn check(
    store: &Store,
    config: &Config,
    station: &str,
    input: &str,
    now: Timestamp,
) -> Result<CodeCheck, StoreError> {
    let site = config.site.id.clone();
    let policy = config.pickup.attempts;
    let (station, input) = (station.to_owned(), input.to_owned());
    store
        .write(move |c| check_presented_code(c, &site, &station, &input, &policy, now))
        .await
}

/// Hands an order over and re-evaluates the stock tiers of its SKUs, in one transaction.
/// Scanned trace codes are read as any other scan (a scanner's `]C1…` or the printed
/// `(01)…(21)…`) and looked up in their stored form; stock leaves from lots that have not
/// expired on the site's day.
pub async fn handover(
    store: &Store,
    config: &Config,
    station: &str,
    order_id: &str,
    request: HandoverRequest,
    now: Timestamp,
) -> Result<Handover, HandoverError> {
    let site = config.site.id.clone();
    let policy = config.alerts.default_policy.clone();
    let (station, order_id) = (station.to_owned(), order_id.to_owned());
    let request = HandoverRequest {
        trace_codes: request
            .trace_codes
            .iter()
            .map(|code| crate::codes::stored_form(code, &config.codes))
            .collect(),
        ..request
    };
    let today = crate::clock::local_date(now);
    store
        .write(move |c| {
            let handover = hand_over(c, &site, &station, &order_id, &request, today, now)?;
            let mut skus: Vec<_> = handover.lines.iter().map(|l| l.sku.clone()).collect();
            skus.dedup();
            for sku in &skus {
                crate::store::alerts::evaluate_sku(c, sku, &policy, now)?;
            }
            Ok(handover)
        })
        .await
}

//! Device input: a scan or a stable weight from a station's scanner or scale, journaled before
//! it acts. The device adapters call these (through the dispatcher) exactly as the CLI and the
//! station app call the receiving and pickup workflows: the same steps, the same rules.
//!
//! One write per input: the raw input goes into the `device_input` journal, the workflow for the
//! station's kind runs in a nested savepoint, and what it made of the input is written on the
//! journal row. A refused input rolls back only the workflow's effects; the input itself stays
//! on record. A failure of the store itself fails the whole write (nothing is journaled as
//! done that was not).

use super::Site;
use super::pickup::{CodeEntry, PickupError, check_in, check_read_only};
use super::receiving::{ScanOutcome, scan_in, weight_in};
use crate::codes::Scanned;
use crate::store::Tx;
use crate::store::deliveries::{BindOutcome, ReceivingError, Selected};
use crate::store::device_input::{self, NewInput};
use crate::store::{Store, StoreError, savepoint};
use hub_core::Timestamp;
use hub_core::pickup::CodeCheck;

/// Where an input comes from.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub device: &'a str,
    pub station: &'a str,
    /// `pickup` scanners check pickup codes; everything else is receiving.
    pub pickup: bool,
}

/// What the workflow made of an input.
#[derive(Debug)]
pub enum InputOutcome {
    /// A label or item scan at a receiving station.
    Scan(ScanOutcome),
    /// A stable weight recorded on the selected line.
    Weight { grams: i64, line: Selected },
    /// A pickup code checked at a pickup counter.
    Code(CodeCheck),
    /// The receiving step said no (no line selected, unknown label, …); nothing changed.
    ReceivingRefused(ReceivingError),
    /// The station may not check codes (not a declared pickup station).
    PickupRefused(String),
    /// An item scanned at a pickup counter while `order_id` was on screen: its stored form and
    /// the line it ticks or why it may not leave with the order (`None`: the order is
    /// unknown), with the order's line quantities.
    Item {
        order_id: String,
        checked: Option<super::pickup::ItemChecked>,
        quantities: Vec<i64>,
    },
    /// A stable weight on a pickup counter's scale: with `order_id` on screen (whose lines
    /// sold by weight are `by_weight`), or with no order on screen (nothing to weigh).
    CounterWeight {
        order_id: Option<String>,
        grams: i64,
        by_weight: Vec<bool>,
        /// The order's lines for the weight cross-check: open units and the master data's
        /// unit weight (none for lines sold by weight: the screen knows what they weighed).
        bag: Vec<hub_core::counter::BagLine>,
    },
}

/// How an input ended, as journaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Journaled {
    /// The workflow took it.
    Applied,
    /// Recorded on its line with a reason that holds the line for review.
    Flagged,
    /// The workflow changed nothing.
    Refused,
}

impl Journaled {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Journaled::Applied => "applied",
            Journaled::Flagged => "flagged",
            Journaled::Refused => "refused",
        }
    }
}

impl InputOutcome {
    /// Applied, flagged or refused.
    pub fn journaled(&self) -> Journaled {
        match self {
            InputOutcome::Scan(ScanOutcome::Item(BindOutcome::Flagged { .. })) => {
                Journaled::Flagged
            }
            InputOutcome::Scan(_) | InputOutcome::Weight { .. } => Journaled::Applied,
            InputOutcome::Item {
                checked: Some((_, Ok(_))),
                ..
            } => Journaled::Applied,
            InputOutcome::Item { .. } => Journaled::Refused,
            InputOutcome::CounterWeight {
                order_id: Some(_), ..
            } => Journaled::Applied,
            InputOutcome::CounterWeight { .. } => Journaled::Refused,
            InputOutcome::Code(check) if check.is_found() => Journaled::Applied,
            InputOutcome::Code(_)
            | InputOutcome::ReceivingRefused(_)
            | InputOutcome::PickupRefused(_) => Journaled::Refused,
        }
    }
}

impl std::fmt::Display for InputOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputOutcome::Scan(ScanOutcome::LineSelected(s)) => write!(
                f,
                "selected delivery {} line {} ({} lot {})",
                s.delivery_id, s.line_no, s.sku, s.lot
            ),
            InputOutcome::Scan(ScanOutcome::Item(BindOutcome::Bound {
                delivery_id,
                line_no,
                count,
            })) => write!(
                f,
                "bound to delivery {delivery_id} line {line_no} ({count} codes)"
            ),
            InputOutcome::Scan(ScanOutcome::Item(BindOutcome::Counted {
                delivery_id,
                line_no,
                count,
            })) => write!(
                f,
                "product scan counted on delivery {delivery_id} line {line_no} ({count} items)"
            ),
            InputOutcome::Scan(ScanOutcome::Item(BindOutcome::Flagged {
                delivery_id,
                line_no,
                flag,
            })) => write!(
                f,
                "{} on delivery {delivery_id} line {line_no}: {}",
                flag.code(),
                flag.describe()
            ),
            InputOutcome::Weight { grams, line } => write!(
                f,
                "{grams} g recorded on delivery {} line {} ({} lot {})",
                line.delivery_id, line.line_no, line.sku, line.lot
            ),
            InputOutcome::Code(check) => f.write_str(&crate::catalogue::code_check(
                check,
                crate::catalogue::Lang::En,
                chrono_tz::UTC,
            )),
            InputOutcome::ReceivingRefused(e) => write!(f, "{e}"),
            InputOutcome::PickupRefused(e) => f.write_str(e),
            InputOutcome::Item {
                order_id, checked, ..
            } => match checked {
                Some((code, Ok(line))) => {
                    write!(f, "item {code} is on order {order_id} line {}", line + 1)
                }
                Some((code, Err(refusal))) => {
                    write!(
                        f,
                        "item {code} may not leave with order {order_id}: {refusal:?}"
                    )
                }
                None => write!(f, "item scanned for unknown order {order_id}"),
            },
            InputOutcome::CounterWeight {
                order_id: Some(order_id),
                grams,
                ..
            } => write!(f, "{grams} g weighed at the counter for order {order_id}"),
            InputOutcome::CounterWeight { grams, .. } => write!(
                f,
                "{grams} g weighed at the counter with no order on screen; nothing recorded"
            ),
        }
    }
}

fn finish(c: &Tx<'_>, id: i64, outcome: InputOutcome) -> Result<InputOutcome, StoreError> {
    device_input::set_outcome(c, id, outcome.journaled().as_str(), &outcome.to_string())?;
    Ok(outcome)
}

/// Runs a receiving step in a savepoint: a refusal is an outcome, a store failure an error.
fn receiving_step<T>(
    c: &Tx<'_>,
    step: impl FnOnce(&Tx<'_>) -> Result<T, ReceivingError>,
    done: impl FnOnce(T) -> InputOutcome,
) -> Result<InputOutcome, StoreError> {
    match savepoint(c, step)? {
        Ok(v) => Ok(done(v)),
        Err(ReceivingError::Store(e)) => Err(e),
        Err(other) => Ok(InputOutcome::ReceivingRefused(other)),
    }
}

/// A scan, classified once by the scanner adapter: journaled, then a label selection or item
/// binding at a receiving station, or a pickup-code check at a pickup counter.
pub fn scanned(
    c: &Tx<'_>,
    site: &Site,
    source: Source<'_>,
    scan: &Scanned,
    now: Timestamp,
) -> Result<InputOutcome, StoreError> {
    let id = device_input::journal(
        c,
        &NewInput {
            device: source.device,
            station: source.station,
            kind: "scan",
            code: Some(crate::codes::without_aim(&scan.text)),
            grams: None,
            parsed: Some(crate::codes::journal_view(&scan.code, &scan.text)),
            raw: &scan.raw,
            received_at: now,
        },
    )?;
    let outcome = if source.pickup {
        match savepoint(c, |c| {
            check_in(
                c,
                site,
                source.station,
                &CodeEntry::scanned(&scan.text),
                now,
            )
        })? {
            Ok(check) => InputOutcome::Code(check),
            Err(PickupError::Store(e)) => return Err(e),
            Err(PickupError::Station(e)) => InputOutcome::PickupRefused(e.to_string()),
        }
    } else {
        receiving_step(
            c,
            |c| scan_in_receiving(c, site, source.station, scan, now),
            InputOutcome::Scan,
        )?
    };
    finish(c, id, outcome)
}

/// A scan at a pickup counter that the counter's rule
/// ([`hub_core::counter::counter_scan`]) makes an item of `order_id`, the order on screen:
/// journaled, then checked against that order (reads only; the tick itself is the screen's).
pub fn scanned_item(
    c: &Tx<'_>,
    site: &Site,
    source: Source<'_>,
    scan: &Scanned,
    order_id: &str,
    now: Timestamp,
) -> Result<InputOutcome, StoreError> {
    let id = device_input::journal(
        c,
        &NewInput {
            device: source.device,
            station: source.station,
            kind: "scan",
            code: Some(crate::codes::without_aim(&scan.text)),
            grams: None,
            parsed: Some(crate::codes::journal_view(&scan.code, &scan.text)),
            raw: &scan.raw,
            received_at: now,
        },
    )?;
    let text = crate::codes::without_aim(&scan.text);
    let (checked, quantities) = super::pickup::item_on_order(c, site, order_id, text)?;
    finish(
        c,
        id,
        InputOutcome::Item {
            order_id: order_id.to_owned(),
            checked,
            quantities,
        },
    )
}

/// A stable weight on a pickup counter's scale: journaled; with an order on screen, what the
/// screen needs to put it on a line (which lines are sold by weight). Records nothing else:
/// the weight goes with the handover.
pub fn weighed_at_counter(
    c: &Tx<'_>,
    source: Source<'_>,
    grams: i64,
    raw: &str,
    order_id: Option<&str>,
    now: Timestamp,
) -> Result<InputOutcome, StoreError> {
    let id = device_input::journal(
        c,
        &NewInput {
            device: source.device,
            station: source.station,
            kind: "weight",
            code: None,
            grams: Some(grams),
            parsed: None,
            raw,
            received_at: now,
        },
    )?;
    let (by_weight, bag) = match order_id {
        Some(order_id) => (
            super::pickup::lines_by_weight(c, order_id)?,
            super::pickup::bag_lines(c, order_id)?,
        ),
        None => (vec![], vec![]),
    };
    finish(
        c,
        id,
        InputOutcome::CounterWeight {
            order_id: order_id.map(str::to_owned),
            grams,
            by_weight,
            bag,
        },
    )
}

fn scan_in_receiving(
    c: &Tx<'_>,
    site: &Site,
    station: &str,
    scan: &Scanned,
    now: Timestamp,
) -> Result<ScanOutcome, ReceivingError> {
    scan_in(c, site, station, &scan.text, &scan.code, now)
}

/// A stable weight: journaled, then recorded on the station's selected line.
pub fn weighed(
    c: &Tx<'_>,
    site: &Site,
    source: Source<'_>,
    grams: i64,
    raw: &str,
    now: Timestamp,
) -> Result<InputOutcome, StoreError> {
    let id = device_input::journal(
        c,
        &NewInput {
            device: source.device,
            station: source.station,
            kind: "weight",
            code: None,
            grams: Some(grams),
            parsed: None,
            raw,
            received_at: now,
        },
    )?;
    let outcome = receiving_step(
        c,
        |c| weight_in(c, site, source.station, grams, now),
        |line| InputOutcome::Weight { grams, line },
    )?;
    finish(c, id, outcome)
}

/// A pickup-code scan at a pickup counter, without a commit of its own when it changes
/// nothing that must be stored at once. The check is worked out on a read-only
/// connection first:
///
/// - a **wrong code** counts towards the station's and the site's lockouts, which must survive
///   a restart: it runs as [`scanned`] in a durable write, as before;
/// - anything else (found, collected, expired, locked out, unreadable, not a pickup station)
///   is a read: when found, the pass the handover needs is kept with
///   [`Store::write_deferred`] and rides on the store's next commit — the handover that
///   follows, at the latest after [`crate::store::DEFERRED_AT_MOST`]; lost in a power cut
///   before that commit, the clerk scans the code again: nothing durable depends on it until
///   the handover, whose own commit carries it. The journal row waits longer
///   ([`Store::write_deferred_lazily`]): it is numbered when it is committed, a few seconds
///   later, and a power cut can lose the last seconds of it (the handover itself is recorded
///   by its own rows and events).
pub async fn scanned_at_counter(
    store: &Store,
    site: &Site,
    (device, station): (&str, &str),
    scan: Scanned,
    now: Timestamp,
) -> Result<InputOutcome, StoreError> {
    let read = {
        let (site, station, text) = (site.clone(), station.to_owned(), scan.text.clone());
        store
            .read(move |c| {
                match check_read_only(c, &site, &station, &CodeEntry::scanned(&text), now) {
                    Ok(check) => Ok(check.map(InputOutcome::Code)),
                    Err(PickupError::Store(e)) => Err(e),
                    Err(PickupError::Station(e)) => {
                        Ok(Some(InputOutcome::PickupRefused(e.to_string())))
                    }
                }
            })
            .await?
    };
    let (site, device, station) = (site.clone(), device.to_owned(), station.to_owned());
    let Some(outcome) = read else {
        return store
            .write(move |c| {
                let source = Source {
                    device: &device,
                    station: &station,
                    pickup: true,
                };
                scanned(c, &site, source, &scan, now)
            })
            .await;
    };
    let found = match &outcome {
        InputOutcome::Code(CodeCheck::Found { order_id }) => Some(order_id.clone()),
        _ => None,
    };
    let (journaled, detail) = (outcome.journaled(), outcome.to_string());
    let n = DEFERRED_INPUTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Some(order_id) = found {
        let station = station.clone();
        store.write_deferred(format!("check_pass:{n:020}"), move |c| {
            crate::store::pickup_orders::record_check_pass(c, &station, &order_id, now)
        });
    }
    store.write_deferred_lazily(format!("device_input:{n:020}"), move |c| {
        let id = device_input::journal(
            c,
            &NewInput {
                device: &device,
                station: &station,
                kind: "scan",
                code: Some(crate::codes::without_aim(&scan.text)),
                grams: None,
                parsed: Some(crate::codes::journal_view(&scan.code, &scan.text)),
                raw: &scan.raw,
                received_at: now,
            },
        )?;
        device_input::set_outcome(c, id, journaled.as_str(), &detail)
    });
    Ok(outcome)
}

/// Numbers the deferred passes and journal rows so that they keep their order (deferred
/// writes run in key order) and none replaces another.
static DEFERRED_INPUTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

//! The item check on the pickup screen: with an order on screen (its code checked), each
//! scanned trace code ticks its order line, or is shown in red with why it may not leave
//! with this order (another SKU or batch, quarantined, already handed over, unknown). The
//! ticked codes go with the handover (its own item check runs again there). The check is
//! `workflows::pickup::check_item_in`; what is ticked is the station's screen (kept across a
//! restart like the rest of it).

use super::feed::{BagShown, Shown, StationFeed, open_order};
use super::{StationApp, authorised, fragment, refusal};
use crate::workflows::pickup::ItemChecked;
use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use hub_core::Timestamp;
use hub_core::counter::{BagCheck, BagLine, CounterScan, Likely, check_bag, counter_scan};
use hub_core::pickup::{CodeCheck, ItemRefusal};
use serde::Deserialize;

/// The item check's route, merged into the app's router.
pub(super) fn routes() -> Router<StationApp> {
    Router::new()
        .route("/station/pickup/item", post(item))
        .route("/station/pickup/scan", post(scan))
}

#[derive(Deserialize)]
struct ItemForm {
    #[serde(default)]
    csrf: Option<String>,
    code: String,
}

/// The refusal's code, as the catalogue words it (`item.<code>`).
fn refusal_code(refusal: &ItemRefusal) -> &'static str {
    match refusal {
        ItemRefusal::NotOnOrder { .. } => "not_on_order",
        ItemRefusal::WrongBatch { .. } => "wrong_batch",
        ItemRefusal::Quarantined => "quarantined",
        ItemRefusal::AlreadyHandedOver { .. } => "already_handed_over",
        ItemRefusal::Unknown => "unknown",
    }
}

/// Every item refusal code the screen may show (the catalogue has words for each).
pub const ITEM_CODES: [&str; 7] = [
    "ok",
    "not_on_order",
    "wrong_batch",
    "quarantined",
    "already_handed_over",
    "unknown",
    "line_full",
];

/// The screen's record of an item check: ticks the line of the order on screen (once per
/// code, up to the line's quantity) or shows why it may not leave with the order. The same for
/// a keyboard-wedge scan and a scan on the counter's own scanner. Returns `false` (and shows
/// nothing) when `order_id` is no longer on screen.
pub async fn show_item(
    feed: &StationFeed,
    station: &str,
    order_id: &str,
    (code, line): ItemChecked,
    quantities: &[i64],
    now: Timestamp,
) -> bool {
    let Some((mut ticked, weighed)) = on_screen(feed, station, order_id) else {
        return false;
    };
    let refusal_code = match line {
        // The same item scanned twice ticks once.
        Ok(_) if ticked.iter().any(|(_, c)| *c == code) => None,
        Ok(line) => {
            let full = ticked.iter().filter(|(l, _)| *l == line).count() as i64
                >= quantities.get(line).copied().unwrap_or(0);
            if full {
                Some("line_full".to_owned())
            } else {
                ticked.push((line, code.clone()));
                None
            }
        }
        Err(refused) => {
            tracing::warn!(order = %order_id, code = %code, station, reason = refusal_code(&refused), "item refused at the pickup counter");
            Some(refusal_code(&refused).to_owned())
        }
    };
    let shown = Shown::Items {
        order_id: order_id.to_owned(),
        ticked,
        last_code: code,
        refusal: refusal_code,
        weighed,
        last_weight: None,
        bag: None,
        line_refused: None,
    };
    if let Err(e) = feed.show_kept(station, shown, now).await {
        tracing::warn!(error = %e, station, "station app: screen not kept for a restart");
    }
    true
}

/// What is ticked and weighed of `order_id` if it is the order on the station's screen.
#[allow(
    clippy::type_complexity,
    reason = "the screen's own two lists, read together"
)]
pub(super) fn on_screen(
    feed: &StationFeed,
    station: &str,
    order_id: &str,
) -> Option<(Vec<(usize, String)>, Vec<(usize, i64)>)> {
    match feed.current(station).map(|c| c.shown) {
        Some(Shown::Check(CodeCheck::Found { order_id: on })) if on == order_id => {
            Some((vec![], vec![]))
        }
        Some(Shown::Items {
            order_id: on,
            ticked,
            weighed,
            ..
        }) if on == order_id => Some((ticked, weighed)),
        _ => None,
    }
}

/// The screen's record of a stable weight on the counter's scale while `order_id` is on
/// screen: it fills the first line sold by weight not weighed yet
/// ([`hub_core::counter::weighed_line`]); the weighed grams go with the handover. A weight
/// with no such line left is shown and fills nothing. Returns `false` (and shows nothing)
/// when `order_id` is no longer on screen.
#[allow(
    clippy::too_many_arguments,
    reason = "the weight and what the screen needs to place it"
)]
pub async fn show_weight(
    feed: &StationFeed,
    station: &str,
    order_id: &str,
    grams: i64,
    by_weight: &[bool],
    bag: &[BagLine],
    tolerance_g: i64,
    now: Timestamp,
) -> bool {
    let Some((ticked, mut weighed)) = on_screen(feed, station, order_id) else {
        return false;
    };
    // A line left to weigh takes the weight; otherwise it is the bagged order's weight.
    let bag = match hub_core::counter::weighed_line(by_weight, &weighed) {
        Some(line) => {
            weighed.push((line, grams));
            None
        }
        None => bag_check(bag, &weighed, grams, tolerance_g),
    };
    let shown = Shown::Items {
        order_id: order_id.to_owned(),
        ticked,
        last_code: String::new(),
        refusal: None,
        weighed,
        last_weight: Some(grams),
        bag,
        line_refused: None,
    };
    if let Err(e) = feed.show_kept(station, shown, now).await {
        tracing::warn!(error = %e, station, "station app: screen not kept for a restart");
    }
    true
}

/// The weight cross-check of the bagged order (错领): lines sold by weight count with what they
/// weighed at the counter; `None` when some line's weight is unknown (no cross-check).
fn bag_check(
    bag: &[BagLine],
    weighed: &[(usize, i64)],
    measured_g: i64,
    tolerance_g: i64,
) -> Option<BagShown> {
    let lines: Vec<BagLine> = bag
        .iter()
        .enumerate()
        .map(|(i, line)| match weighed.iter().find(|(l, _)| *l == i) {
            Some((_, grams)) => BagLine {
                units: 1,
                unit_weight_g: Some(*grams),
            },
            None => *line,
        })
        .collect();
    match check_bag(&lines, measured_g, tolerance_g) {
        BagCheck::NotComparable => None,
        BagCheck::Matches {
            expected_g,
            measured_g,
        } => Some(BagShown {
            expected_g,
            measured_g,
            tolerance_g,
            matches: true,
            likely: None,
        }),
        BagCheck::Mismatch {
            expected_g,
            measured_g,
            likely,
        } => Some(BagShown {
            expected_g,
            measured_g,
            tolerance_g,
            matches: false,
            likely: likely.map(|l| match l {
                Likely::Missing { line, units } => (line, -units),
                Likely::Extra { line, units } => (line, units),
            }),
        }),
    }
}

/// The order whose items a scan of `text` at `station` is checked against, by the counter's
/// rule ([`hub_core::counter::counter_scan`]); `None`: the scan is a pickup code to check.
pub fn item_order(feed: &StationFeed, station: &str, text: &str) -> Option<String> {
    let on_screen = feed
        .current(station)
        .and_then(|c| open_order(&c.shown).map(str::to_owned));
    match counter_scan(text, on_screen.is_some()) {
        CounterScan::Item => on_screen,
        CounterScan::Code => None,
    }
}

#[derive(Deserialize)]
struct ScanForm {
    #[serde(default)]
    csrf: Option<String>,
    code: String,
}

/// A keyboard-wedge scan on the pickup screen: an item of the order on screen or a code to
/// check, decided by the hub with the same rule as for the counter's own scanner.
async fn scan(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Form(form): Form<ScanForm>,
) -> Response {
    let station = match authorised(&app, &headers, form.csrf.as_deref()).await {
        Ok(s) => s.station,
        Err(r) => return r,
    };
    if item_order(&app.feed, &station, form.code.trim()).is_some() {
        item(
            State(app),
            headers,
            Form(ItemForm {
                csrf: form.csrf,
                code: form.code,
            }),
        )
        .await
    } else {
        super::check(
            State(app),
            headers,
            Form(super::CheckForm {
                csrf: form.csrf,
                code: form.code,
                extra: String::new(),
            }),
        )
        .await
    }
}

async fn item(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Form(form): Form<ItemForm>,
) -> Response {
    let s = match authorised(&app, &headers, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let scanned = form.code.trim().to_owned();
    if scanned.is_empty() || scanned.len() > 128 {
        return refusal(
            StatusCode::BAD_REQUEST,
            "item check without a code",
            s.lang,
            "error.forged",
        );
    }
    let no_order = || {
        refusal(
            StatusCode::CONFLICT,
            "item scanned with no order on screen",
            s.lang,
            "item.no_order",
        )
    };
    let Some(order_id) = app
        .feed
        .current(&s.station)
        .and_then(|c| open_order(&c.shown).map(str::to_owned))
    else {
        return no_order();
    };
    let (site, oid) = (app.site.clone(), order_id.clone());
    let checked = app
        .store
        .read(move |c| crate::workflows::pickup::item_on_order(c, &site, &oid, &scanned))
        .await;
    match checked {
        Ok((Some(checked), quantities)) => {
            if !show_item(
                &app.feed,
                &s.station,
                &order_id,
                checked,
                &quantities,
                crate::clock::now(),
            )
            .await
            {
                return no_order();
            }
        }
        Ok((None, _)) => {
            return refusal(
                StatusCode::CONFLICT,
                "item scanned for an unknown order",
                s.lang,
                "item.no_order",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "station app: item check failed");
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "item check failed",
                s.lang,
                "error.store",
            );
        }
    }
    fragment(&app, &s).await
}

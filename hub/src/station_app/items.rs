//! The item check on the pickup screen: with an order on screen (its code checked), each
//! scanned trace code ticks its order line, or is shown in red with why it may not leave
//! with this order (another SKU or batch, quarantined, already handed over, unknown). The
//! ticked codes go with the handover (its own item check runs again there). The check is
//! `workflows::pickup::check_item_in`; what is ticked is the station's screen (kept across a
//! restart like the rest of it).

use super::feed::Shown;
use super::{StationApp, authorised, fragment, refusal, show};
use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use hub_core::pickup::{CodeCheck, ItemRefusal};
use serde::Deserialize;

/// The item check's route, merged into the app's router.
pub(super) fn routes() -> Router<StationApp> {
    Router::new().route("/station/pickup/item", post(item))
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
    let (order_id, mut ticked) = match app.feed.current(&s.station).map(|c| c.shown) {
        Some(Shown::Check(CodeCheck::Found { order_id })) => (order_id, vec![]),
        Some(Shown::Items {
            order_id, ticked, ..
        }) => (order_id, ticked),
        _ => {
            return refusal(
                StatusCode::CONFLICT,
                "item scanned with no order on screen",
                s.lang,
                "item.no_order",
            );
        }
    };
    let (site, oid, text) = (app.site.clone(), order_id.clone(), scanned.clone());
    let checked = app
        .store
        .read(move |c| {
            let checked = crate::workflows::pickup::check_item_in(c, &site, &oid, &text)?;
            let quantities = crate::store::pickup_orders::order(c, &oid)?
                .map(|o| o.items.iter().map(|i| i.quantity).collect::<Vec<_>>())
                .unwrap_or_default();
            Ok::<_, crate::store::StoreError>(checked.map(|c| (c, quantities)))
        })
        .await;
    let ((code, line), quantities) = match checked {
        Ok(Some(found)) => found,
        Ok(None) => {
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
            tracing::warn!(order = %order_id, code = %code, station = %s.station, reason = refusal_code(&refused), "item refused at the pickup counter");
            Some(refusal_code(&refused).to_owned())
        }
    };
    show(
        &app,
        &s.station,
        Shown::Items {
            order_id,
            ticked,
            last_code: code,
            refusal: refusal_code,
        },
        crate::clock::now(),
    )
    .await;
    fragment(&app, &s).await
}

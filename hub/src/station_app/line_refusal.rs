//! Per-line refusals at the pickup counter: the customer refuses one line of
//! the order (or some units of it) with a reason from the list; the rest of the order stays on
//! screen to be handed over.
//!
//! The refusal is the same station command as a handover (`workflows::station`, applied once
//! per request id, the path MQTT commands take) with the refused units and nothing leaving
//! now: the refused goods go back to stock or are written off at once, as
//! `hub_core::pickup::refusal_destination` says for the reason (the CLI and MQTT take the
//! destination from the same rule). The order becomes partly settled; as nothing left with
//! the customer, the code check stands and the rest can be handed over at once. This module
//! only reads the form, builds the command and words the result; it decides nothing itself.

use super::feed::Shown;
use super::{LineView, StationApp, authorised, refusal, show};
use crate::catalogue::{self, Lang, Tone};
use crate::store::staff as staff_store;
use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use hub_core::event::RefusedTo;
use hub_core::pickup::{LINE_REFUSAL_REASONS, refusal_destination};
use serde::Deserialize;

/// The per-line refusal's route, merged into the app's router.
pub(super) fn routes() -> Router<StationApp> {
    Router::new().route("/station/pickup/refuse-line", post(refuse_line))
}

/// The reasons a line may be refused for, each with where its goods go (`stock`/`loss`), for
/// the screen's list.
pub(super) fn reasons() -> Vec<serde_json::Value> {
    LINE_REFUSAL_REASONS
        .iter()
        .map(|code| {
            serde_json::json!({
                "code": code,
                "to": destination_key(refusal_destination(code).unwrap_or(RefusedTo::Stock)),
            })
        })
        .collect()
}

fn destination_key(to: RefusedTo) -> &'static str {
    match to {
        RefusedTo::Stock => "stock",
        RefusedTo::Loss => "loss",
    }
}

/// What earlier parts refused of a line, in words ("已拒收 ×1 · 退回库存"); empty when nothing.
pub(super) fn refused_words(refused: Option<(i64, Option<RefusedTo>)>, lang: Lang) -> String {
    match refused {
        Some((units, to)) if units > 0 => {
            let mut words = format!("{} ×{units}", catalogue::text("pickup.line_refused", lang));
            if let Some(to) = to {
                words.push_str(" · ");
                words.push_str(catalogue::text(
                    &format!("refuse.to.{}", destination_key(to)),
                    lang,
                ));
            }
            words
        }
        _ => String::new(),
    }
}

/// The screen's message after a line was refused: which line, how many, why and where the
/// goods went ("第 1 行 鲜牛奶 ×1 已拒收: 商品破损 → 报损").
pub(super) fn message(
    refused: Option<&(usize, i64, String)>,
    lines: &[LineView],
    lang: Lang,
) -> (Tone, String) {
    let Some((line, units, reason)) = refused else {
        return (Tone::Attention, String::new());
    };
    let name = lines
        .get(*line)
        .map(|l| l.name.as_str())
        .unwrap_or_default();
    let to = refusal_destination(reason).unwrap_or(RefusedTo::Stock);
    (
        Tone::Attention,
        format!(
            "{} {name} ×{units} {}: {} → {}",
            catalogue::text("pickup.line", lang).replace("{}", &(line + 1).to_string()),
            catalogue::text("pickup.line_refused", lang),
            catalogue::text(&format!("refuse.{reason}"), lang),
            catalogue::text(&format!("refuse.to.{}", destination_key(to)), lang),
        ),
    )
}

#[derive(Deserialize)]
struct LineRefusalForm {
    #[serde(default)]
    csrf: Option<String>,
    order_id: String,
    request_id: String,
    line_no: String,
    quantity: String,
    reason: String,
}

/// The form read and checked: order, request id, line (from 1), units and a listed reason.
struct Asked {
    order_id: String,
    request_id: String,
    line_no: usize,
    quantity: i64,
    reason: String,
}

fn read_form(form: &LineRefusalForm) -> Option<Asked> {
    let (order_id, request_id) = (form.order_id.trim(), form.request_id.trim());
    let ids_fit = |id: &str| !id.is_empty() && id.len() <= 64;
    let reason = form.reason.trim();
    let asked = Asked {
        order_id: order_id.to_owned(),
        request_id: request_id.to_owned(),
        line_no: form.line_no.trim().parse().ok().filter(|n| *n >= 1)?,
        quantity: form.quantity.trim().parse().ok().filter(|n| *n >= 1)?,
        reason: reason.to_owned(),
    };
    (ids_fit(order_id) && ids_fit(request_id) && LINE_REFUSAL_REASONS.contains(&reason))
        .then_some(asked)
}

/// Refuses units of one line of the order on screen, once per request id.
async fn refuse_line(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Form(form): Form<LineRefusalForm>,
) -> Response {
    let s = match authorised(&app, &headers, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(asked) = read_form(&form) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "line refusal without an order, a request id, a line, a quantity or a reason from the list",
            s.lang,
            "error.forged",
        );
    };
    let now = crate::clock::now();
    let to = refusal_destination(&asked.reason).unwrap_or(RefusedTo::Stock);
    let action = hub_contract::station::StationAction::PickupHandover {
        order_id: asked.order_id.clone(),
        trace_codes: vec![],
        refusals: vec![crate::store::pickup_orders::Refusal {
            line_no: asked.line_no,
            quantity: asked.quantity,
            to,
            reason: asked.reason.clone(),
        }],
        weighings: vec![],
        // Nothing leaves now: the rest of the order stays to be handed over.
        partial: vec![crate::store::pickup_orders::Part {
            line_no: asked.line_no,
            quantity: 0,
        }],
    };
    let body = format!(
        "app|refuse-line|{}|{}|{}|{}",
        asked.order_id, asked.line_no, asked.quantity, asked.reason
    );
    let hash = staff_store::secret_hash(&body);
    let record = super::recorded::Record {
        action: "pickup_refuse_line",
        detail: format!(
            "{} line {} ×{} {}",
            asked.order_id, asked.line_no, asked.quantity, asked.reason
        ),
    };
    let done = super::recorded::run_and_record(
        &app,
        &s,
        (asked.request_id.clone(), hash),
        record,
        move |_| Ok(action),
        now,
    )
    .await;
    let reply = match done {
        Ok(reply) => reply,
        Err(e) => {
            tracing::error!(error = %e, "station app: line refusal could not be stored");
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "store error at a line refusal",
                s.lang,
                "error.store",
            );
        }
    };
    let shown = if reply.ok {
        tracing::info!(order = %asked.order_id, line = asked.line_no, quantity = asked.quantity, reason = %asked.reason, staff = %s.staff_id, station = %s.station, "line refused at the pickup counter");
        let open = reply
            .result
            .as_ref()
            .map(|r| r.numbers("open"))
            .unwrap_or_default();
        if open.is_empty() {
            // That was all that was open: the order is settled.
            Shown::HandedOver {
                order_id: asked.order_id,
                staff: s.staff_id.clone(),
                refused: false,
                open,
            }
        } else {
            still_on_screen(&app, &s.station, asked, &open)
        }
    } else {
        let reason = reply.reason.unwrap_or_default();
        tracing::warn!(order = %asked.order_id, reason = %reason, "station app: line refusal refused");
        Shown::HandoverRefused {
            order_id: asked.order_id,
            reason,
            code: reply.code,
        }
    };
    show(&app, &s.station, shown, now).await;
    super::fragment(&app, &s).await
}

/// The order stays on screen with what was ticked and weighed (ticks beyond what is still
/// open of the refused line are dropped) and the refusal in words.
fn still_on_screen(app: &StationApp, station: &str, asked: Asked, open: &[i64]) -> Shown {
    let (mut ticked, weighed) =
        super::items::on_screen(&app.feed, station, &asked.order_id).unwrap_or_default();
    let line = asked.line_no - 1;
    let keep = usize::try_from(open.get(line).copied().unwrap_or(0)).unwrap_or(0);
    let mut kept_on_line = 0;
    ticked.retain(|(l, _)| {
        if *l != line {
            return true;
        }
        kept_on_line += 1;
        kept_on_line <= keep
    });
    Shown::Items {
        order_id: asked.order_id,
        ticked,
        last_code: String::new(),
        refusal: None,
        weighed,
        last_weight: None,
        bag: None,
        line_refused: Some((line, asked.quantity, asked.reason)),
    }
}

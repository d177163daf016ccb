//! Disputes on the receiving bench screen: the open delivery's dispute
//! episodes (opened, first response, every response, settled) and a supervisor's actions on
//! them — open a dispute about the selected line with a note (the line's stored photos become
//! its evidence), add a response note, record that the photos were inspected, settle it.
//!
//! Clerks see the episodes; their actions are refused with a reason in their language. Each
//! action is a station command (`receive_dispute`) run through
//! `workflows::station::run_command_in`: applied once per request id, its reply stored with its
//! effects, recorded with the staff id. The rules are `workflows::receiving::dispute_in`'s, the
//! same the CLI and central's `delivery_dispute` use.

use super::feed::{Bench, Shown};
use super::receiving::{fragment, not_at_bench};
use super::{StationApp, authorised, refusal};
use crate::catalogue::{Lang, receiving as words};
use crate::store::deliveries::ReceivingError;
use crate::store::staff as staff_store;
use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use hub_contract::station::{DisputeStep, StationAction};
use serde::Deserialize;

/// Longest dispute note taken from the screen.
const MAX_NOTE_CHARS: usize = 500;

/// The dispute routes (merged into the app's router).
pub fn routes() -> Router<StationApp> {
    Router::new().route("/station/receiving/dispute", post(act))
}

#[derive(Deserialize)]
struct DisputeForm {
    #[serde(default)]
    csrf: Option<String>,
    request_id: String,
    /// `open`, `respond`, `photos_inspected` or `settle`.
    op: String,
    delivery: String,
    #[serde(default)]
    line: String,
    #[serde(default)]
    note: String,
}

/// A supervisor's action on the open delivery's dispute, run once per request id.
async fn act(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Form(form): Form<DisputeForm>,
) -> Response {
    let s = match authorised(&app, &headers, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Some(r) = not_at_bench(&app, &s) {
        return r;
    }
    if !s.role.supervises() {
        return refusal(
            StatusCode::FORBIDDEN,
            "dispute action by a clerk",
            s.lang,
            "dispute.supervisor_only",
        );
    }
    let now = crate::clock::now();
    let request_id = form.request_id.trim().to_owned();
    let delivery_id = form.delivery.trim().to_owned();
    let step = DisputeStep::parse(form.op.trim());
    let line = form.line.trim();
    let line_no = if line.is_empty() {
        Ok(None)
    } else {
        line.parse::<u32>().map(Some)
    };
    let (Some(step), Ok(line_no)) = (step, line_no) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "dispute action unknown or with a bad line",
            s.lang,
            "error.forged",
        );
    };
    if request_id.is_empty() || request_id.len() > 64 || delivery_id.is_empty() {
        return refusal(
            StatusCode::BAD_REQUEST,
            "dispute action without a request id or delivery",
            s.lang,
            "error.forged",
        );
    }
    let note: String = form.note.trim().chars().take(MAX_NOTE_CHARS).collect();
    if note.is_empty() {
        let e = ReceivingError::EmptyDisputeNote;
        let bench = Bench::Refused {
            zh: words::refusal(&e, Lang::ZhCn),
            en: words::refusal(&e, Lang::En),
        };
        app.feed.show(&s.station, Shown::Receiving(bench), now);
        return fragment(&app, &s, true).await;
    }
    let line_no = if step == DisputeStep::Open {
        line_no
    } else {
        None
    };
    // What the workflow would refuse is refused in the supervisor's words before it is run
    // (the workflow refuses it too, with the reason in English for the reply).
    let (id, policy, today) = (delivery_id.clone(), app.site.receiving, app.site.today(now));
    let state = app
        .store
        .read(move |c| {
            let known = crate::store::deliveries::bench_delivery(c, &id, &policy, today)
                .map(|d| d.is_some());
            Ok::<_, ReceivingError>((known?, crate::store::deliveries::open_dispute_of(c, &id)?))
        })
        .await;
    let refused = match state {
        Ok((false, _)) => Some(ReceivingError::UnknownDelivery(delivery_id.clone())),
        Ok((true, Some(open))) if step == DisputeStep::Open => {
            Some(ReceivingError::DisputeAlreadyOpen {
                delivery_id: delivery_id.clone(),
                note: open.note,
            })
        }
        Ok((true, None)) if step != DisputeStep::Open => {
            Some(ReceivingError::NoOpenDispute(delivery_id.clone()))
        }
        Ok(_) => None,
        Err(e) => {
            tracing::error!(error = %e, "station app: cannot read a delivery's dispute");
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "store error at a dispute action",
                s.lang,
                "error.store",
            );
        }
    };
    if let Some(e) = refused {
        let bench = Bench::Refused {
            zh: words::refusal(&e, Lang::ZhCn),
            en: words::refusal(&e, Lang::En),
        };
        app.feed.show(&s.station, Shown::Receiving(bench), now);
        return fragment(&app, &s, true).await;
    }
    let body = serde_json::json!({
        "kind": "receive_dispute",
        "delivery": delivery_id,
        "step": step.as_str(),
        "line": line_no,
        "note": note,
    })
    .to_string();
    let hash = staff_store::secret_hash(&format!("app|{body}"));
    let action = StationAction::ReceiveDispute {
        delivery_id: delivery_id.clone(),
        step,
        note,
        line_no,
    };
    let record = super::recorded::Record {
        action: "receive_dispute",
        detail: format!("{delivery_id}/{}", step.as_str()),
    };
    let done = super::recorded::run_and_record(
        &app,
        &s,
        (request_id, hash),
        record,
        move |_| Ok(action),
        now,
    )
    .await;
    let bench = match done {
        Ok(reply) if reply.ok => {
            tracing::info!(staff = %s.staff_id, station = %s.station, step = step.as_str(), delivery = %delivery_id, "dispute action from the station app");
            let (zh, en) = done_words(step, &delivery_id);
            Bench::Done { zh, en }
        }
        Ok(reply) => {
            let reason = reply.reason.unwrap_or_default();
            tracing::warn!(step = step.as_str(), delivery = %delivery_id, reason = %reason, "station app: dispute action refused");
            Bench::Refused {
                zh: format!("操作被拒绝：{reason}"),
                en: format!("refused: {reason}"),
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "station app: a dispute action could not be stored");
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "store error at a dispute action",
                s.lang,
                "error.store",
            );
        }
    };
    app.feed.show(&s.station, Shown::Receiving(bench), now);
    fragment(&app, &s, true).await
}

fn done_words(step: DisputeStep, delivery_id: &str) -> (String, String) {
    match step {
        DisputeStep::Open => (
            format!("已对到货单 {delivery_id} 发起争议"),
            format!("dispute opened on delivery {delivery_id}"),
        ),
        DisputeStep::Respond => (
            format!("已记录对到货单 {delivery_id} 争议的响应"),
            format!("response to the dispute on {delivery_id} recorded"),
        ),
        DisputeStep::PhotosInspected => (
            format!("已记录到货单 {delivery_id} 的照片已查看"),
            format!("photos of {delivery_id} recorded as inspected"),
        ),
        DisputeStep::Settle => (
            format!("到货单 {delivery_id} 的争议已结案"),
            format!("dispute on {delivery_id} settled"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::text;
    use crate::station_app::dispute_view::{DisputeView, EpisodeView};
    use crate::station_app::templates;

    fn episode(open: bool) -> EpisodeView {
        EpisodeView {
            id: 1,
            open,
            note: "<b>mouldy</b>".into(),
            opened: "2026-03-02 10:00 · wang".into(),
            line_no: Some(1),
            photos: vec!["aaaaaaaaaaaa".into()],
            first_response: Some("2026-03-02 10:20 · note · wang".into()),
            photos_inspected: Some("2026-03-02 10:40".into()),
            responses: vec!["2026-03-02 10:20 · note · wang: called".into()],
            settled: (!open).then(|| "2026-03-02 11:00 · wang: credited".into()),
        }
    }

    /// The dispute part of the bench, open and settled, for a clerk and a supervisor, in both
    /// languages: it renders, names only texts the catalogue has, escapes outside text, and
    /// offers the actions only to a supervisor (open when none is open, the rest when one is).
    #[test]
    fn the_dispute_part_renders_in_both_languages_with_catalogue_texts_only() {
        for lang in [Lang::ZhCn, Lang::En] {
            for supervisor in [false, true] {
                for open in [false, true] {
                    let context = serde_json::json!({
                        "lang": lang.tag(), "csrf": "c", "supervisor": supervisor,
                        "request_id": "r1",
                        "current": {"delivery_id": "D1"},
                        "dispute": DisputeView {
                            episodes: vec![episode(false), episode(open)],
                            open,
                            line_no: Some(1),
                            line_photos: if open { vec![] } else { vec!["bbbbbbbbbbbb".into()] },
                        },
                    });
                    let page = templates::try_render("receiving_dispute.html", &context)
                        .unwrap_or_else(|e| panic!("receiving_dispute.html: {e:#}"));
                    assert!(
                        !page.contains("dispute.") && !page.contains("receiving."),
                        "{} shows a key without text: {page}",
                        lang.tag()
                    );
                    assert!(!page.contains("<b>mouldy</b>"), "{page}");
                    assert_eq!(page.contains("id=\"dispute-open\""), supervisor && !open);
                    assert_eq!(page.contains("id=\"dispute-submit\""), supervisor && open);
                    assert_eq!(page.contains("bbbbbbbbbbbb"), supervisor && !open);
                    assert_eq!(
                        page.contains(text("dispute.supervisor_only", lang)),
                        !supervisor
                    );
                }
            }
        }
    }
}

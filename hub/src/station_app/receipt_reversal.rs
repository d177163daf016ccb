//! The bench's "撤销收货" (branch bench2): a supervisor reverses a received line's last receipt
//! on an open delivery, with a reason from the list and a ticked confirmation. Checked here
//! first so a refusal (outside the window, stock already gone, …) is said in the clerk's
//! words; then it runs as the `receive_reverse` station command through the bench's usual
//! action path (once per request id, recorded with the staff id).

use super::feed::Shown;
use super::receiving::{fragment, refuse, said};
use super::{Session, StationApp, refusal};
use crate::catalogue::{self, Lang};
use crate::store::staff::Role;
use axum::http::StatusCode;
use axum::response::Response;
use hub_contract::station::StationAction;
use hub_core::Timestamp;
use hub_core::receiving_reversal::ReversalReason;

async fn say(app: &StationApp, s: &Session, zh: String, en: String, now: Timestamp) -> Response {
    app.feed
        .show(&s.station, Shown::Receiving(said(zh, en, false)), now);
    fragment(app, s, true).await
}

/// The station command for the bench form's `reverse`, or the answer that refuses it.
pub(super) async fn command(
    app: &StationApp,
    s: &Session,
    reason: &str,
    confirm: &str,
    delivery_id: &str,
    line_no: u32,
    now: Timestamp,
) -> Result<StationAction, Response> {
    if s.role != Role::Supervisor {
        return Err(refusal(
            StatusCode::FORBIDDEN,
            "receipt reversal by a clerk",
            s.lang,
            "receiving.supervisor_only",
        ));
    }
    let text = |key: &str| {
        (
            catalogue::text(key, Lang::ZhCn).to_owned(),
            catalogue::text(key, Lang::En).to_owned(),
        )
    };
    let Some(reason) = ReversalReason::parse(reason.trim()) else {
        let (zh, en) = text("receiving.reverse.pick_reason");
        return Err(say(app, s, zh, en, now).await);
    };
    if confirm.trim() != "yes" {
        let (zh, en) = text("receiving.reverse.unconfirmed");
        return Err(say(app, s, zh, en, now).await);
    }
    let (id, window) = (delivery_id.to_owned(), app.site.reversal_window_minutes);
    let checked = app
        .store
        .read(move |c| crate::store::receipt_reversal::check(c, &id, line_no, true, window, now))
        .await;
    match checked {
        Ok(Ok(_)) => Ok(StationAction::ReceiveReverse {
            delivery_id: delivery_id.to_owned(),
            line_no,
            reason,
        }),
        Ok(Err(why)) => {
            use catalogue::receiving::reversal_refusal;
            Err(say(
                app,
                s,
                reversal_refusal(why, Lang::ZhCn),
                reversal_refusal(why, Lang::En),
                now,
            )
            .await)
        }
        Err(e) => Err(refuse(app, s, now, e).await),
    }
}

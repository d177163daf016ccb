//! What only a supervisor may do at a station: lift the station's wrong-code lockout (the
//! same workflow as `hub pickup unlock`) and make a new pairing code for another tablet of
//! this station. A clerk who asks gets a refusal that says a supervisor must sign in; nothing
//! changes and the refusal is logged.

use super::{StationApp, authorised, refusal, show};
use crate::catalogue;
use crate::store::staff as staff_store;
use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use hub_core::Timestamp;
use serde::Deserialize;

/// The supervisor's routes, merged into the app's router.
pub(super) fn routes() -> Router<StationApp> {
    Router::new()
        .route("/station/supervisor/unlock", post(unlock))
        .route("/station/supervisor/pairing", post(pairing))
        .route("/station/supervisor/undo", post(undo))
}

#[derive(Deserialize)]
struct SupervisorForm {
    #[serde(default)]
    csrf: Option<String>,
}

/// The signed-in supervisor, or the refusal to send.
async fn supervisor(
    app: &StationApp,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Result<super::Session, Response> {
    let s = authorised(app, headers, csrf).await?;
    if !s.role.supervises() {
        tracing::warn!(staff = %s.staff_id, station = %s.station, "supervisor action asked by a clerk");
        return Err(refusal(
            StatusCode::FORBIDDEN,
            "supervisor-only action asked by a clerk",
            s.lang,
            "supervisor.only",
        ));
    }
    Ok(s)
}

/// Lifts this station's lockout after wrong codes (`workflows::pickup::unlock`, as the CLI).
async fn unlock(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Form(form): Form<SupervisorForm>,
) -> Response {
    let s = match supervisor(&app, &headers, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let now = crate::clock::now();
    let lifted = crate::workflows::pickup::unlock(
        &app.store,
        &app.site,
        Some(&s.station),
        &s.staff_id,
        "unlocked at the station app",
        now,
    )
    .await;
    match lifted {
        Ok(was_locked) => {
            tracing::info!(staff = %s.staff_id, station = %s.station, was_locked, "station unlocked by a supervisor");
            record(&app, &s, "station_unlocked", "", now).await;
            show(
                &app,
                &s.station,
                super::feed::Shown::Supervisor {
                    done: "unlocked".into(),
                    staff: s.staff_id.clone(),
                    detail: String::new(),
                },
                now,
            )
            .await;
            super::fragment(&app, &s).await
        }
        Err(e) => {
            tracing::error!(error = %e, station = %s.station, "station app: unlock failed");
            refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "unlock failed",
                s.lang,
                "error.store",
            )
        }
    }
}

#[derive(Deserialize)]
struct UndoForm {
    #[serde(default)]
    csrf: Option<String>,
    order_id: String,
    reason: String,
}

/// Undoes a handover (`workflows::pickup::undo_handover`, as `hub pickup undo`).
async fn undo(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Form(form): Form<UndoForm>,
) -> Response {
    use crate::store::handover_undo::UndoError;
    use hub_core::pickup::UndoRefusal;
    let s = match supervisor(&app, &headers, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let order_id = form.order_id.trim().to_owned();
    let now = crate::clock::now();
    let undone = crate::workflows::pickup::undo_handover(
        &app.store,
        &app.site,
        &order_id,
        &s.staff_id,
        form.reason.trim(),
        now,
    )
    .await;
    let (status, why, key) = match undone {
        Ok(u) => {
            tracing::info!(order = %u.order_id, staff = %s.staff_id, returned = u.returned.len(), "handover undone by a supervisor");
            record(&app, &s, "handover_undone", &order_id, now).await;
            show(
                &app,
                &s.station,
                super::feed::Shown::Supervisor {
                    done: "undone".into(),
                    staff: s.staff_id.clone(),
                    detail: order_id,
                },
                now,
            )
            .await;
            return super::fragment(&app, &s).await;
        }
        Err(UndoError::Refused {
            refusal: UndoRefusal::TooLate { .. },
            ..
        }) => (
            StatusCode::CONFLICT,
            "undo after its window",
            "undo.too_late",
        ),
        Err(UndoError::Refused { .. }) => (
            StatusCode::CONFLICT,
            "undo of an order not handed over",
            "undo.not_handed_over",
        ),
        Err(UndoError::UnknownReason(_) | UndoError::UnknownOrder(_)) => (
            StatusCode::BAD_REQUEST,
            "undo without a known order or a reason from the list",
            "error.forged",
        ),
        Err(e) => {
            tracing::error!(error = %e, "station app: undo failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "undo failed",
                "error.store",
            )
        }
    };
    refusal(status, why, s.lang, key)
}

/// A new one-time pairing code for this station, shown to the supervisor once.
async fn pairing(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Form(form): Form<SupervisorForm>,
) -> Response {
    let s = match supervisor(&app, &headers, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let now = crate::clock::now();
    let code = super::new_pairing_code();
    let (station, c2) = (s.station.clone(), code.clone());
    let expires = Timestamp(now.millis() + super::PAIRING_VALID_MS);
    let added = app
        .store
        .write(move |c| staff_store::add_pairing(c, &station, &c2, now, expires))
        .await;
    if let Err(e) = added {
        tracing::error!(error = %e, "station app: cannot store a pairing code");
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "store error at a new pairing code",
            s.lang,
            "error.store",
        );
    }
    record(&app, &s, "pairing_code_made", "", now).await;
    let message = format!(
        "{} {} · {} {}",
        catalogue::text("supervisor.pairing_code", s.lang),
        app.station_name(&s.station),
        catalogue::text("supervisor.valid_until", s.lang),
        catalogue::local_time(expires, app.site.timezone),
    );
    let page = super::templates::render(
        "pairing_code.html",
        serde_json::json!({"lang": s.lang.tag(), "message": message, "code": code}),
    );
    super::html(StatusCode::OK, page)
}

/// Records a supervisor's action with who did it (a failure to record is logged, the action
/// stands).
async fn record(
    app: &StationApp,
    s: &super::Session,
    action: &'static str,
    detail: &str,
    now: Timestamp,
) {
    let (staff, station, device, detail) = (
        s.staff_id.clone(),
        s.station.clone(),
        s.device_id.clone(),
        detail.to_owned(),
    );
    let recorded = app
        .store
        .write(move |c| {
            staff_store::record_action(
                c,
                &staff_store::Action {
                    staff: Some(&staff),
                    station: Some(&station),
                    device: Some(&device),
                    action,
                    detail: &detail,
                },
                now,
            )
        })
        .await;
    if let Err(e) = recorded {
        tracing::error!(error = %e, action, "station app: supervisor action not recorded");
    }
}

//! The stock and alerts screen (`/station/stock`, any signed-in staff): every SKU with its
//! on-hand per lot and expiry (expired and near-expiry lots marked), its tier colour, days of
//! cover and the replenishment request state, then the open alerts worst first, each with what
//! to do (alerts of one kind and tier about lots of the same SKU are one line, acknowledged
//! together). Any staff member can acknowledge an alert (who and when are kept, shown and sent
//! upstream; the alert stays open until its condition goes away, and a rise past the tier it
//! was acknowledged at asks again); nothing else on this screen changes the store.

use super::{StationApp, authorised, html, refusal, session, templates};
use crate::catalogue::{self, Lang};
use crate::store::{StoreError, alert_book, ledger};
use axum::Form;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::NaiveDate;
use hub_core::alerts::{AlertKind, SkuAlertState, Tier, split_lot_subject};
use hub_core::{SkuCode, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// How many lines of open alerts the screen lists (worst first); the heading gives the total.
const ALERTS_SHOWN: usize = 50;

/// How many lot codes a line of lot alerts names; the rest are counted.
const LOTS_NAMED: usize = 8;

/// The screen's routes.
pub fn routes() -> Router<StationApp> {
    Router::new()
        .route("/station/stock", get(page))
        .route("/station/stock/ack", post(acknowledge))
        .route("/station/stock/correct", post(correct))
}

/// The stocktake / loss form (supervisors).
#[derive(Debug, Deserialize)]
struct CorrectionForm {
    #[serde(default)]
    csrf: Option<String>,
    request_id: String,
    /// `SKU|LOT` as the form's lot list gives it.
    lot: String,
    /// `count` or `loss`.
    kind: String,
    quantity: String,
    #[serde(default)]
    reason: Option<String>,
}

/// Records a stocktake count or a loss (supervisor only), then shows the screen with what it did.
async fn correct(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Form(form): Form<CorrectionForm>,
) -> Response {
    use crate::workflows::stock::{Correction, CorrectionBy, correct_in};
    let s = match authorised(&app, &headers, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let lang = s.lang;
    if !s.role.supervises() {
        return refusal(
            StatusCode::FORBIDDEN,
            "stock correction asked by a clerk",
            lang,
            "supervisor.only",
        );
    }
    let refused = |key: &str| Notice {
        ok: false,
        text: catalogue::text(key, lang).to_owned(),
    };
    let request_id = form.request_id.trim().to_owned();
    let parsed = form
        .lot
        .split_once('|')
        .and_then(|(sku, lot)| Some((SkuCode::new(sku).ok()?, lot.to_owned())));
    let quantity = form.quantity.trim().parse::<i64>().ok();
    let correction = match (form.kind.as_str(), quantity) {
        ("count", Some(counted)) => Some(Correction::Count { counted }),
        ("loss", Some(quantity)) => form
            .reason
            .as_deref()
            .and_then(hub_core::stocktake::LossReason::parse)
            .map(|reason| Correction::Loss { quantity, reason }),
        _ => None,
    };
    let (Some((sku, lot)), Some(correction), false) = (
        parsed,
        correction,
        request_id.is_empty() || request_id.len() > 64,
    ) else {
        let notice = refused("stock.correction.form");
        return render(&app, &s, lang, Some(notice)).await;
    };
    let site = app.site.clone();
    let (staff, station, device) = (s.staff_id.clone(), s.station.clone(), s.device_id.clone());
    let (sku_w, lot_w, correction_w) = (sku.clone(), lot.clone(), correction.clone());
    let now = crate::clock::now();
    let done = app
        .store
        .write(move |c| {
            let by = CorrectionBy {
                staff: &staff,
                station: Some(&station),
                device: Some(&device),
                request_id: &request_id,
            };
            // Any error rolls the whole correction back.
            correct_in(c, &site, &sku_w, &lot_w, &correction_w, &by, now)
        })
        .await;
    let notice = match done {
        Ok(corrected) => {
            tracing::info!(staff = %s.staff_id, %sku, lot, delta = corrected.delta, "stock corrected");
            Notice {
                ok: true,
                text: format!(
                    "{} {sku} · {lot}: {:+} → {}",
                    catalogue::text(
                        match correction {
                            Correction::Count { .. } => "stock.correction.counted",
                            Correction::Loss { .. } => "stock.correction.lost",
                        },
                        lang
                    ),
                    corrected.delta,
                    corrected.lot_after
                ),
            }
        }
        Err(crate::workflows::stock::StockCorrectionError::Store(e)) => {
            tracing::error!(error = %e, "stock screen: cannot record the correction");
            refused("error.store")
        }
        Err(e) => {
            tracing::warn!(error = %e, "stock correction refused");
            refused(&format!("stock.correction.{}", e.code()))
        }
    };
    render(&app, &s, lang, Some(notice)).await
}

/// The acknowledge button's form: one alert (`subject`), or every alert of a lot kind about
/// the lots of one SKU (`lots_of`, the SKU's code).
#[derive(Debug, Deserialize)]
struct AckForm {
    #[serde(default)]
    csrf: Option<String>,
    kind: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    lots_of: Option<String>,
}

/// Records who acknowledged an open alert (idempotent), then shows the screen again.
async fn acknowledge(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Form(form): Form<AckForm>,
) -> Response {
    let s = match authorised(&app, &headers, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(kind) = AlertKind::parse(&form.kind) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "acknowledgement of an unknown alert kind",
            s.lang,
            "stock.ack.unknown",
        );
    };
    let readable = |text: &String| !text.is_empty() && text.len() <= 256;
    let subject = match (&form.subject, &form.lots_of) {
        (Some(subject), None) if readable(subject) => subject.clone(),
        (None, Some(sku)) if readable(sku) && kind.is_about_a_lot() => {
            return acknowledge_lots(&app, &s, kind, sku.clone()).await;
        }
        _ => {
            return refusal(
                StatusCode::BAD_REQUEST,
                "acknowledgement without one subject",
                s.lang,
                "stock.ack.unknown",
            );
        }
    };
    let (staff, now) = (s.staff_id.clone(), crate::clock::now());
    match app
        .store
        .write(move |c| alert_book::acknowledge_alert(c, kind, &subject, &staff, now))
        .await
    {
        Ok(alert_book::Acknowledged::Now) => {
            tracing::info!(staff = %s.staff_id, kind = kind.as_str(), subject = ?form.subject, "alert acknowledged");
            Redirect::to("/station/stock#alerts").into_response()
        }
        // Someone was first: the screen shows who and when.
        Ok(alert_book::Acknowledged::Already { .. }) => {
            Redirect::to("/station/stock#alerts").into_response()
        }
        Ok(alert_book::Acknowledged::NotOpen) => refusal(
            StatusCode::CONFLICT,
            "acknowledgement of an alert that is not open",
            s.lang,
            "stock.ack.not_open",
        ),
        Err(e) => {
            tracing::error!(error = %e, "stock screen: cannot record the acknowledgement");
            refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "store error while acknowledging an alert",
                s.lang,
                "error.store",
            )
        }
    }
}

/// Acknowledges every open alert of the lot kind `kind` about a lot of `sku` (one line on the
/// screen), then shows the screen again.
async fn acknowledge_lots(
    app: &StationApp,
    s: &super::Session,
    kind: AlertKind,
    sku: String,
) -> Response {
    let (staff, now) = (s.staff_id.clone(), crate::clock::now());
    let code = sku.clone();
    match app
        .store
        .write(move |c| alert_book::acknowledge_lot_alerts(c, kind, &code, &staff, now))
        .await
    {
        Ok(done) if done.open == 0 => refusal(
            StatusCode::CONFLICT,
            "acknowledgement of lot alerts that are not open",
            s.lang,
            "stock.ack.not_open",
        ),
        Ok(done) => {
            tracing::info!(staff = %s.staff_id, kind = kind.as_str(), sku = %sku, open = done.open, now = done.now, "lot alerts acknowledged");
            Redirect::to("/station/stock#alerts").into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "stock screen: cannot record the acknowledgements");
            refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "store error while acknowledging alerts",
                s.lang,
                "error.store",
            )
        }
    }
}

/// `?lang=` overrides the staff member's language.
#[derive(Debug, Default, Deserialize)]
pub struct StockQuery {
    lang: Option<String>,
}

/// One lot on hand.
#[derive(Debug, Serialize)]
struct LotRow {
    lot: String,
    expiry: Option<String>,
    on_hand: i64,
    /// `expired`, `near` or `ok`.
    state: &'static str,
}

/// One SKU's line on the screen.
#[derive(Debug, Serialize)]
struct SkuRow {
    sku: String,
    name: String,
    unit: String,
    on_hand: i64,
    tier: &'static str,
    days_of_cover: Option<f64>,
    /// What the days of cover divide by: `forecast` (today's stored day-ahead forecast),
    /// `average` (the last 7 days) or `none`.
    cover_basis: &'static str,
    /// `none`, `requested`, `acknowledged`.
    request: &'static str,
    lots: Vec<LotRow>,
}

/// What the screen shows, read in one store call.
#[derive(Debug)]
struct StockView {
    skus: Vec<SkuRow>,
    alerts: Vec<alert_book::ListedAlert>,
    /// Every SKU of the master data as `(code, name)` (to tell the SKU from the lot in a lot
    /// alert, and to name it).
    sku_names: Vec<(String, String)>,
}

fn lot_state(expiry: Option<&str>, today: NaiveDate, warn_days: i64) -> &'static str {
    match expiry.and_then(|e| e.parse::<NaiveDate>().ok()) {
        Some(e) if e < today => "expired",
        Some(e) if (e - today).num_days() <= warn_days => "near",
        _ => "ok",
    }
}

fn read(
    conn: &rusqlite::Connection,
    today: NaiveDate,
    warn_days: i64,
    now: Timestamp,
) -> Result<StockView, StoreError> {
    let tiers = alert_book::tiers(conn)?;
    // Today's day-ahead forecasts, as the daemon's daily job stored them (none before its
    // first round of the day: the screen then says it uses the 7-day average).
    let forecast: std::collections::HashMap<String, f64> =
        crate::store::day_forecast::between(conn, today, today + chrono::Days::new(1))?
            .into_iter()
            .map(|f| (f.sku, f.forecast))
            .collect();
    let mut skus = Vec::new();
    for s in ledger::balances(conn)? {
        let state: SkuAlertState = tiers
            .iter()
            .find(|(code, _)| *code == s.sku)
            .map(|(_, st)| st.clone())
            .unwrap_or_default();
        // Days of cover: what is free (on hand less what open orders hold) over today's
        // forecast demand, or over the last 7 days' average when there is no forecast.
        let (days_of_cover, cover_basis) = match SkuCode::new(&s.sku) {
            Ok(code) => {
                let f = alert_book::figures(conn, &code, now)?;
                let free = (f.on_hand - f.committed) as f64;
                match forecast.get(&s.sku) {
                    Some(&daily) if daily > 0.0 => (Some(free / daily), "forecast"),
                    _ if f.daily_demand > 0.0 => (Some(free / f.daily_demand), "average"),
                    _ => (None, "none"),
                }
            }
            Err(_) => (None, "none"),
        };
        let request = match &state.episode {
            None => "none",
            Some(e) if e.acknowledged => "acknowledged",
            Some(_) => "requested",
        };
        skus.push(SkuRow {
            lots: s
                .batches
                .iter()
                .filter(|b| b.on_hand != 0)
                .map(|b| LotRow {
                    lot: b.lot.clone(),
                    expiry: b.expiry.clone(),
                    on_hand: b.on_hand,
                    state: lot_state(b.expiry.as_deref(), today, warn_days),
                })
                .collect(),
            sku: s.sku,
            name: s.name,
            unit: s.unit,
            on_hand: s.on_hand,
            tier: state.tier.as_str(),
            days_of_cover,
            cover_basis,
            request,
        });
    }
    // Worst tier first, then by code.
    let rank = |t: &str| Tier::parse(t).unwrap_or(Tier::Normal);
    skus.sort_by(|a, b| rank(b.tier).cmp(&rank(a.tier)).then(a.sku.cmp(&b.sku)));
    Ok(StockView {
        skus,
        alerts: alert_book::open_alerts_listed(conn)?,
        sku_names: crate::store::sku::names(conn)?,
    })
}

async fn page(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Query(q): Query<StockQuery>,
) -> Response {
    let Some(s) = session(&app, &headers).await else {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "stock screen without a session",
            Lang::default(),
            "error.session",
        );
    };
    let lang = q.lang.as_deref().and_then(Lang::parse).unwrap_or(s.lang);
    render(&app, &s, lang, None).await
}

/// A line above the stock list saying what a correction did (or why it was refused).
#[derive(Debug, Serialize)]
struct Notice {
    ok: bool,
    text: String,
}

/// The screen for `s` in `lang`, with `notice` above it.
async fn render(
    app: &StationApp,
    s: &super::Session,
    lang: Lang,
    notice: Option<Notice>,
) -> Response {
    let zone = app.site.timezone;
    let now = crate::clock::now();
    let today = crate::clock::site_date(zone, now);
    let warn_days = app.site.expiry_warn_days;
    let view = match app
        .store
        .read(move |c| read(c, today, warn_days, now))
        .await
    {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "stock screen: cannot read the stock");
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "store error on the stock screen",
                lang,
                "error.store",
            );
        }
    };
    // A site with a long outage can have thousands of open alerts, most of them lots of a few
    // SKUs: one line per SKU and kind, the worst first, and how many more there are.
    let names: HashMap<&str, &str> = view
        .sku_names
        .iter()
        .map(|(code, name)| (code.as_str(), name.as_str()))
        .collect();
    let mut lines = alert_lines(&view.alerts, &names);
    // A line's lots in the order they expired (the oldest first, as on the shelf; lots whose
    // expiry the stock does not know last).
    let expiry: HashMap<(&str, &str), &str> = view
        .skus
        .iter()
        .flat_map(|k| {
            k.lots
                .iter()
                .map(move |l| ((k.sku.as_str(), l.lot.as_str()), l))
        })
        .filter_map(|(key, l)| Some((key, l.expiry.as_deref()?)))
        .collect();
    for line in &mut lines {
        if let Some(sku) = line.sku {
            line.members.sort_by_key(|(_, lot)| {
                let expired = lot.and_then(|lot| expiry.get(&(sku, lot)).copied());
                (expired.is_none(), expired, *lot)
            });
        }
    }
    let alerts_listed: usize = lines
        .iter()
        .take(ALERTS_SHOWN)
        .map(|l| l.members.len())
        .sum();
    let alerts: Vec<serde_json::Value> = lines
        .iter()
        .take(ALERTS_SHOWN)
        .map(|line| alert_line_json(line, &names, lang, zone))
        .collect();
    let context = serde_json::json!({
        "lang": lang.tag(),
        "csrf": s.csrf,
        "notice": notice,
        "supervisor": s.role.supervises(),
        "request_id": super::random_hex(12),
        "loss_reasons": hub_core::stocktake::LossReason::ALL.map(|r| r.as_str()),
        "staff": super::StaffView { staff_id: &s.staff_id, name: &s.name },
        "station_name": app.station_name(&s.station),
        "today": today.to_string(),
        "warn_days": warn_days,
        "skus": view.skus,
        "alerts": alerts,
        "alerts_total": view.alerts.len(),
        "alerts_more": view.alerts.len().saturating_sub(alerts_listed),
    });
    html(StatusCode::OK, templates::render("stock.html", context))
}

/// One line of the open alerts: a single alert, or the alerts of one lot kind and tier about
/// lots of the same SKU (a long outage can leave hundreds of expired lots of one SKU, which
/// would bury every other alert).
#[derive(Debug)]
struct AlertLine<'a> {
    /// The SKU of a lot alert's line.
    sku: Option<&'a str>,
    /// The alerts of the line, worst first, each with its lot when it is about one.
    members: Vec<(&'a alert_book::ListedAlert, Option<&'a str>)>,
}

/// The screen's lines of open alerts, in the order of each line's first (worst) alert.
fn alert_lines<'a>(
    alerts: &'a [alert_book::ListedAlert],
    names: &HashMap<&'a str, &'a str>,
) -> Vec<AlertLine<'a>> {
    let mut lines: Vec<AlertLine<'a>> = Vec::new();
    let mut line_of: HashMap<(AlertKind, Tier, &str), usize> = HashMap::new();
    for listed in alerts {
        let a = &listed.alert;
        let lot = if a.kind.is_about_a_lot() {
            split_lot_subject(&a.subject, |c| names.contains_key(c))
        } else {
            None
        };
        let Some((sku, lot)) = lot else {
            lines.push(AlertLine {
                sku: None,
                members: vec![(listed, None)],
            });
            continue;
        };
        match line_of.entry((a.kind, a.tier, sku)) {
            std::collections::hash_map::Entry::Occupied(i) => {
                lines[*i.get()].members.push((listed, Some(lot)));
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(lines.len());
                lines.push(AlertLine {
                    sku: Some(sku),
                    members: vec![(listed, Some(lot))],
                });
            }
        }
    }
    lines
}

/// What the template shows of one line of alerts.
fn alert_line_json(
    line: &AlertLine<'_>,
    names: &HashMap<&str, &str>,
    lang: Lang,
    zone: chrono_tz::Tz,
) -> serde_json::Value {
    let (first, first_lot) = line.members[0];
    let a = &first.alert;
    let kind = a.kind.as_str();
    let acked_count = line
        .members
        .iter()
        .filter(|(m, _)| m.acked.is_some())
        .count();
    // Acknowledged when every alert of the line is: by whoever was last.
    let acked = (acked_count == line.members.len())
        .then(|| {
            line.members
                .iter()
                .filter_map(|(m, _)| m.acked.as_ref())
                .max_by_key(|(_, at)| *at)
        })
        .flatten()
        .map(|(by, at)| {
            serde_json::json!({
                "by": by,
                "at": catalogue::local_date_time(*at, zone),
            })
        });
    let subject_shown = match (line.sku, first.sku_name.as_deref()) {
        (Some(sku), _) => {
            let sku_shown = match names.get(sku) {
                Some(name) if name != &sku => format!("{name}（{sku}）"),
                _ => sku.to_owned(),
            };
            match (line.members.len(), first_lot) {
                (1, Some(lot)) => {
                    format!("{sku_shown} · {} {lot}", catalogue::text("stock.lot", lang))
                }
                _ => sku_shown,
            }
        }
        (None, Some(name)) if name != a.subject => format!("{name}（{}）", a.subject),
        (None, _) => alert_subject(&a.subject, lang),
    };
    let grouped = line.members.len() > 1;
    let lots: Vec<&str> = line.members.iter().filter_map(|(_, lot)| *lot).collect();
    serde_json::json!({
        "acked": acked,
        "acked_count": acked_count,
        "tier": a.tier.as_str(),
        "kind": kind,
        "title": catalogue::text(&format!("stock.alert.{kind}"), lang),
        "todo": catalogue::text(&format!("stock.todo.{kind}"), lang),
        "subject": a.subject,
        "subject_shown": subject_shown,
        // A line of several lots is acknowledged as one (the SKU's code).
        "lots_of": if grouped { line.sku } else { None },
        "lots": if grouped { &lots[..lots.len().min(LOTS_NAMED)] } else { &[][..] },
        "lots_total": line.members.len(),
        "lots_more": if grouped { lots.len().saturating_sub(LOTS_NAMED) } else { 0 },
        "unacked": line.members.len() - acked_count,
        // The alert book keeps its detail in English (for logs and central); a zh-CN screen
        // shows the catalogue's title and what to do instead (a line of lots: its lots).
        "message": (lang == Lang::En && !grouped).then_some(&a.message),
    })
}

/// An alert's subject for a person: a site-wide alert's word (`uplink`, `database`, `site`)
/// from the catalogue; a SKU, lot or device id as it is.
fn alert_subject(subject: &str, lang: Lang) -> String {
    let key = format!("stock.subject.{subject}");
    if catalogue::has(&key) {
        catalogue::text(&key, lang).to_owned()
    } else {
        subject.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lots_are_expired_near_or_fine_by_the_site_day() {
        let today: NaiveDate = "2026-03-04".parse().unwrap();
        assert_eq!(lot_state(Some("2026-03-03"), today, 2), "expired");
        assert_eq!(lot_state(Some("2026-03-04"), today, 2), "near");
        assert_eq!(lot_state(Some("2026-03-06"), today, 2), "near");
        assert_eq!(lot_state(Some("2026-03-07"), today, 2), "ok");
        assert_eq!(lot_state(None, today, 2), "ok");
    }

    #[test]
    fn a_site_wide_alerts_subject_is_a_word_in_the_staff_members_language() {
        assert_eq!(alert_subject("uplink", Lang::ZhCn), "上传链路");
        assert_eq!(alert_subject("uplink", Lang::En), "uplink");
        assert_eq!(alert_subject("database", Lang::ZhCn), "本机数据库");
        assert_eq!(alert_subject("MILK/L1", Lang::ZhCn), "MILK/L1");
    }
}

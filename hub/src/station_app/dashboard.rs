//! The manager's dashboard (`/station/dashboard`, supervisors and managers): the operating figures of
//! today, the last 7 or 30 site days, each with its daily trend drawn as SVG by the hub
//! ([`super::charts`]) and its target where the business has one, the handovers per hour ×
//! weekday heat map, the lines held now, a CSV export of the days and the same figures as JSON.
//!
//! Every figure comes from [`crate::store::report::compute`], the function behind
//! `hub report`: for the same period the dashboard shows exactly what `hub report --json`
//! prints. This module only picks the period and lays the figures out; it computes none.

use super::{Session, StationApp, charts, html, refusal, session, templates};
use crate::catalogue::{self, Lang};
use crate::store::report::{self, OpsReport};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Target stock-out rate (below).
pub const TARGET_STOCK_OUT: f64 = 0.05;
/// Target turnover in days (below).
pub const TARGET_TURNOVER_DAYS: f64 = 7.0;
/// Target loss rate (about).
pub const TARGET_LOSS: f64 = 0.012;
/// Target sell-through rate 动销率 (above).
pub const TARGET_SELL_THROUGH: f64 = 0.85;

/// The dashboard's routes.
pub fn routes() -> Router<StationApp> {
    Router::new()
        .route("/station/dashboard", get(page))
        .route("/station/dashboard.json", get(json))
        .route("/station/dashboard.csv", get(csv))
}

/// `?period=today|7|30` (default 7), or `?from=YYYY-MM-DD&to=YYYY-MM-DD` (to exclusive, as
/// `hub report --from --to`); `?lang=` overrides the staff member's language.
#[derive(Debug, Default, Deserialize)]
pub struct PeriodQuery {
    period: Option<String>,
    from: Option<String>,
    to: Option<String>,
    lang: Option<String>,
}

/// The site days `from ..= to - 1` a query asks for, `today` being the site's date now; `None`
/// for a period that cannot be read.
pub fn period_of(
    period: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
    today: NaiveDate,
) -> Option<(NaiveDate, NaiveDate)> {
    let days = match period.unwrap_or("7") {
        "today" | "1" => 1,
        "7" => 7,
        "30" => 30,
        _ => return None,
    };
    let to = match to {
        Some(t) => t.parse().ok()?,
        None => today + chrono::Days::new(1),
    };
    let from = match from {
        Some(f) => f.parse().ok()?,
        None => to - chrono::Days::new(days),
    };
    (from < to && (to - from).num_days() <= 366).then_some((from, to))
}

/// A supervisor's session, or the refusal to answer with.
pub(super) async fn supervisor(app: &StationApp, headers: &HeaderMap) -> Result<Session, Response> {
    let Some(s) = session(app, headers).await else {
        return Err(refusal(
            StatusCode::UNAUTHORIZED,
            "dashboard without a session",
            Lang::default(),
            "error.session",
        ));
    };
    if !s.role.supervises() {
        return Err(refusal(
            StatusCode::FORBIDDEN,
            "dashboard asked for by a clerk",
            s.lang,
            "dashboard.supervisors_only",
        ));
    }
    Ok(s)
}

/// The report for the query's period, computed by `hub report`'s function.
async fn figures(
    app: &StationApp,
    q: &PeriodQuery,
    lang: Lang,
) -> Result<(OpsReport, &'static str), Response> {
    let zone = app.site.timezone;
    let now = crate::clock::now();
    let today = crate::clock::site_date(zone, now);
    let Some((from, to)) = period_of(
        q.period.as_deref(),
        q.from.as_deref(),
        q.to.as_deref(),
        today,
    ) else {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            "unreadable dashboard period",
            lang,
            "dashboard.bad_period",
        ));
    };
    let settings = app.site.report;
    let period = match (q.from.is_some() || q.to.is_some(), q.period.as_deref()) {
        (true, _) => "custom",
        (false, Some("today" | "1")) => "today",
        (false, Some("30")) => "30",
        _ => "7",
    };
    match app
        .store
        .read(move |c| report::compute_with(c, from, to, zone, settings, now))
        .await
    {
        Ok(r) => {
            // Closed days read from the journal (their rollups missing or stale, e.g. a hub
            // that was off at midnight): roll them up for the next request.
            if r.closed_days_from_journal > 0 {
                let store = app.store.clone();
                tokio::spawn(async move {
                    if let Err(e) =
                        crate::workflows::rollups::refresh_report_rollups(&store, zone, now).await
                    {
                        tracing::warn!(error = %e, "dashboard: cannot write the report's rollups");
                    }
                });
            }
            Ok((r, period))
        }
        Err(e) => {
            tracing::error!(error = %e, "dashboard: cannot compute the report");
            Err(refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "store error on the dashboard",
                lang,
                "error.store",
            ))
        }
    }
}

/// One figure on the dashboard: its value as shown and as a number, its target and its trend.
#[derive(Debug, Serialize)]
struct Card {
    /// The `hub report --json` key (with `by_unit.<unit>.` for per-unit figures).
    key: String,
    title: String,
    value: Option<f64>,
    shown: String,
    target: Option<String>,
    /// Whether the value is on the right side of its target (`None` without one).
    met: Option<bool>,
    svg: String,
}

fn percent(v: Option<f64>) -> String {
    v.map(|v| format!("{:.1} %", v * 100.0))
        .unwrap_or_else(|| "—".into())
}

fn days_text(v: Option<f64>, lang: Lang) -> String {
    v.map(|v| format!("{v:.1} {}", catalogue::text("dashboard.days_unit", lang)))
        .unwrap_or_else(|| "—".into())
}

fn cards(r: &OpsReport, lang: Lang) -> Vec<Card> {
    let t = |key: &str| catalogue::text(key, lang).to_owned();
    let series = |f: &dyn Fn(&report::DayFigures) -> Option<f64>| -> Vec<Option<f64>> {
        r.daily.iter().map(f).collect()
    };
    let mut cards = vec![Card {
        key: "stock_out_rate".into(),
        title: t("dashboard.stock_out_rate"),
        value: Some(r.stock_out_rate),
        shown: percent(Some(r.stock_out_rate)),
        target: Some(format!("< {}", percent(Some(TARGET_STOCK_OUT)))),
        met: Some(r.stock_out_rate < TARGET_STOCK_OUT),
        svg: charts::trend(&series(&|d| d.stock_out_rate), Some(TARGET_STOCK_OUT)),
    }];
    for u in &r.by_unit {
        let unit_name = t(&format!("dashboard.unit.{}", u.unit));
        let unit_series = |f: &dyn Fn(&report::DayUnitFigures) -> Option<f64>| {
            r.daily
                .iter()
                .map(|d| d.by_unit.iter().find(|x| x.unit == u.unit).and_then(f))
                .collect::<Vec<_>>()
        };
        cards.push(Card {
            key: format!("by_unit.{}.turnover_days", u.unit),
            title: format!("{} · {unit_name}", t("dashboard.turnover_days")),
            value: u.turnover_days,
            shown: days_text(u.turnover_days, lang),
            target: Some(format!("< {}", days_text(Some(TARGET_TURNOVER_DAYS), lang))),
            met: u.turnover_days.map(|v| v < TARGET_TURNOVER_DAYS),
            svg: charts::trend(
                &unit_series(&|x| x.turnover_days),
                Some(TARGET_TURNOVER_DAYS),
            ),
        });
        cards.push(Card {
            key: format!("by_unit.{}.loss_rate", u.unit),
            title: format!("{} · {unit_name}", t("dashboard.loss_rate")),
            value: u.loss_rate,
            shown: percent(u.loss_rate),
            target: Some(format!("≈ {}", percent(Some(TARGET_LOSS)))),
            met: u.loss_rate.map(|v| v <= TARGET_LOSS * 1.25),
            svg: charts::trend(&unit_series(&|x| x.loss_rate), Some(TARGET_LOSS)),
        });
        cards.push(Card {
            key: format!("by_unit.{}.forecast_wape", u.unit),
            title: if u.forecast_sku_days_missing > 0 {
                format!(
                    "{} · {unit_name} · {} {} ({} {})",
                    t("dashboard.forecast_wape"),
                    u.forecast_sku_days,
                    t("dashboard.sku_days"),
                    u.forecast_sku_days_missing,
                    t("dashboard.forecast_missing")
                )
            } else {
                format!(
                    "{} · {unit_name} · {} {}",
                    t("dashboard.forecast_wape"),
                    u.forecast_sku_days,
                    t("dashboard.sku_days")
                )
            },
            value: u.forecast_wape,
            shown: percent(u.forecast_wape),
            target: None,
            met: None,
            svg: charts::trend(&unit_series(&|x| x.forecast_wape), None),
        });
    }
    let plain = |key: &str, value: Option<f64>, target: Option<f64>, svg: String| Card {
        key: key.into(),
        title: t(&format!("dashboard.{key}")),
        value,
        shown: percent(value),
        target: target.map(|v| format!("> {}", percent(Some(v)))),
        met: target.and_then(|tg| value.map(|v| v > tg)),
        svg,
    };
    cards.push(plain(
        "sell_through_rate",
        r.sell_through_rate,
        Some(TARGET_SELL_THROUGH),
        charts::trend(&series(&|d| d.sell_through_rate), Some(TARGET_SELL_THROUGH)),
    ));
    cards.push(plain(
        "acceptance_pass_rate",
        r.acceptance_pass_rate,
        None,
        charts::trend(&series(&|d| d.acceptance_pass_rate), None),
    ));
    cards.push(plain(
        "order_fill_rate",
        r.order_fill_rate,
        None,
        charts::trend(&series(&|d| d.order_fill_rate), None),
    ));
    cards.push(plain(
        "near_expiry_share",
        r.near_expiry_share,
        None,
        charts::trend(&series(&|d| d.near_expiry_share), None),
    ));
    let on_time =
        |p: &report::PickupFigures| (p.due > 0).then(|| p.collected_on_time as f64 / p.due as f64);
    cards.push(Card {
        key: "pickups.collected_on_time".into(),
        title: t("dashboard.pickups_on_time"),
        value: Some(r.pickups.collected_on_time as f64),
        shown: format!(
            "{} / {} / {} ({})",
            r.pickups.collected_on_time,
            r.pickups.collected_late,
            r.pickups.never_collected,
            r.pickups.due
        ),
        target: None,
        met: None,
        svg: charts::trend(&series(&|d| on_time(&d.pickups)), None),
    });
    let d = &r.disputes;
    cards.push(Card {
        key: "disputes.settled_within_24_h".into(),
        title: t("dashboard.disputes"),
        value: Some(d.settled_within_24_h as f64),
        shown: format!(
            "{} · 30 min {} · 2 h {} · 24 h {}",
            d.opened, d.settled_within_30_min, d.settled_within_2_h, d.settled_within_24_h
        ),
        target: Some(t("dashboard.disputes_target")),
        met: Some(d.settled_within_24_h == d.opened),
        svg: charts::trend(&series(&|x| Some(x.disputes_opened as f64)), None),
    });
    cards.push(Card {
        key: "disputes.responded_within_30_min".into(),
        title: t("dashboard.dispute_response"),
        value: Some(d.responded_within_30_min as f64),
        shown: format!(
            "{} / {} · {} / {}",
            d.responded_within_30_min, d.opened, d.photos_inspected_within_2_h, d.photos_inspected
        ),
        target: Some(t("dashboard.disputes_target")),
        met: Some(
            d.responded_within_30_min == d.opened
                && d.photos_inspected_within_2_h == d.photos_inspected,
        ),
        svg: charts::trend(
            &series(&|x| Some(x.disputes_responded_within_30_min as f64)),
            None,
        ),
    });
    let dl = &r.deliveries;
    cards.push(Card {
        key: "deliveries.on_time_rate".into(),
        title: format!(
            "{} ({}{} {})",
            t("dashboard.deliveries_on_time"),
            t("dashboard.deliveries_within"),
            r.delivery_on_time_tolerance_minutes,
            t("dashboard.minutes")
        ),
        value: dl.on_time_rate,
        shown: format!(
            "{} · {} / {} · {} {} · {} {} · {} {} · {} {}",
            percent(dl.on_time_rate),
            dl.on_time,
            dl.due,
            t("dashboard.deliveries_early"),
            dl.early,
            t("dashboard.deliveries_late"),
            dl.late,
            t("dashboard.deliveries_never"),
            dl.never_received,
            t("dashboard.deliveries_waiting"),
            dl.still_expected
        ),
        target: None,
        met: None,
        svg: charts::trend(&series(&|d| d.deliveries.on_time_rate), None),
    });
    for (key, value, f) in [
        (
            "handovers",
            r.handovers,
            (|d: &report::DayFigures| d.handovers) as fn(&report::DayFigures) -> i64,
        ),
        ("receipts", r.receipts, |d: &report::DayFigures| d.receipts),
    ] {
        cards.push(Card {
            key: key.into(),
            title: t(&format!("dashboard.{key}")),
            value: Some(value as f64),
            shown: value.to_string(),
            target: None,
            met: None,
            svg: charts::trend(&series(&|d| Some(f(d) as f64)), None),
        });
    }
    cards
}

async fn page(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Query(q): Query<PeriodQuery>,
) -> Response {
    let s = match supervisor(&app, &headers).await {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let lang = q.lang.as_deref().and_then(Lang::parse).unwrap_or(s.lang);
    let (r, period) = match figures(&app, &q, lang).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let frame = Frame {
        csrf: &s.csrf,
        staff_id: &s.staff_id,
        staff_name: &s.name,
        station_name: &app.station_name(&s.station),
        period,
    };
    let page = render(&r, lang, app.site.timezone, crate::clock::now(), &frame);
    html(StatusCode::OK, page)
}

/// The page's frame: who is signed in where, and which period button is lit.
#[derive(Debug)]
pub struct Frame<'a> {
    pub csrf: &'a str,
    pub staff_id: &'a str,
    pub staff_name: &'a str,
    pub station_name: &'a str,
    /// `today`, `7`, `30` or `custom`.
    pub period: &'a str,
}

/// The dashboard page for report `r` (cards, charts, heat map, held lines) in `lang`, times in
/// `zone`; ages are counted to `now`.
pub fn render(
    r: &OpsReport,
    lang: Lang,
    zone: chrono_tz::Tz,
    now: hub_core::Timestamp,
    frame: &Frame<'_>,
) -> String {
    let held: Vec<serde_json::Value> = r
        .held_lines
        .iter()
        .map(|h| {
            serde_json::json!({
                "delivery_id": h.delivery_id, "line_no": h.line_no, "sku": h.sku, "lot": h.lot,
                "quantity": h.quantity, "since": catalogue::local_date_time(h.since, zone),
                "age": catalogue::ago(h.since, now, lang),
            })
        })
        .collect();
    let context = serde_json::json!({
        "lang": lang.tag(),
        "csrf": frame.csrf,
        "staff": super::StaffView { staff_id: frame.staff_id, name: frame.staff_name },
        "station_name": frame.station_name,
        "period": frame.period,
        "from": r.from,
        "to": r.to,
        "timezone": r.timezone,
        "cards": cards(r, lang),
        "heat": charts::heat_map(&r.handovers_by_weekday_hour),
        "held": held,
        "query": format!("from={}&to={}", r.from, r.to),
    });
    templates::render("dashboard.html", context)
}

async fn json(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Query(q): Query<PeriodQuery>,
) -> Response {
    let s = match supervisor(&app, &headers).await {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    match figures(&app, &q, s.lang).await {
        Ok((r, _)) => match serde_json::to_string(&r) {
            Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "dashboard: cannot write the report as JSON");
                refusal(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "report not serialisable",
                    s.lang,
                    "error.store",
                )
            }
        },
        Err(refused) => refused,
    }
}

/// The period's days as CSV, one row a day (quantities per unit kind in their own columns).
pub fn daily_csv(r: &OpsReport) -> String {
    let units: Vec<&str> = r.by_unit.iter().map(|u| u.unit.as_str()).collect();
    let mut out = String::from(
        "date,listed_skus,out_of_stock_skus,stock_out_rate,sell_through_rate,receipts,handovers,lines_decided,lines_passed,acceptance_pass_rate,pickups_due,collected_on_time,collected_late,never_collected,order_fill_rate,disputes_opened,near_expiry_share,disputes_responded_within_30_min,disputes_photos_inspected_within_2_h",
    );
    for u in &units {
        for col in [
            "received",
            "handed_over",
            "lost",
            "stock",
            "forecast_sku_days",
            "forecast_sku_days_missing",
            "forecast_wape",
        ] {
            out.push_str(&format!(",{col}_{u}"));
        }
    }
    out.push_str(",deliveries_due,deliveries_on_time,deliveries_early,deliveries_late,deliveries_never_received,deliveries_on_time_rate");
    out.push('\n');
    let f = |v: Option<f64>| v.map(|v| format!("{v:.6}")).unwrap_or_default();
    for d in &r.daily {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            d.date,
            d.listed_skus,
            d.out_of_stock_skus,
            f(d.stock_out_rate),
            f(d.sell_through_rate),
            d.receipts,
            d.handovers,
            d.lines_decided,
            d.lines_passed,
            f(d.acceptance_pass_rate),
            d.pickups.due,
            d.pickups.collected_on_time,
            d.pickups.collected_late,
            d.pickups.never_collected,
            f(d.order_fill_rate),
            d.disputes_opened,
            f(d.near_expiry_share),
            d.disputes_responded_within_30_min,
            d.disputes_photos_inspected_within_2_h,
        ));
        for u in &units {
            let x = d.by_unit.iter().find(|x| x.unit == *u);
            let q = |g: fn(&report::DayUnitFigures) -> i64| x.map(g).unwrap_or(0);
            out.push_str(&format!(
                ",{},{},{},{},{},{},{}",
                q(|x| x.received_quantity),
                q(|x| x.handed_over_quantity),
                q(|x| x.lost_quantity),
                q(|x| x.stock_quantity),
                q(|x| x.forecast_sku_days),
                q(|x| x.forecast_sku_days_missing),
                f(x.and_then(|x| x.forecast_wape)),
            ));
        }
        let dl = &d.deliveries;
        out.push_str(&format!(
            ",{},{},{},{},{},{}",
            dl.due,
            dl.on_time,
            dl.early,
            dl.late,
            dl.never_received,
            f(dl.on_time_rate)
        ));
        out.push('\n');
    }
    out
}

async fn csv(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Query(q): Query<PeriodQuery>,
) -> Response {
    let s = match supervisor(&app, &headers).await {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    match figures(&app, &q, s.lang).await {
        Ok((r, _)) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"report-{}-{}.csv\"", r.from, r.to),
                ),
            ],
            daily_csv(&r),
        )
            .into_response(),
        Err(refused) => refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_site_days_ending_today_or_as_asked() {
        let today: NaiveDate = "2026-03-04".parse().unwrap();
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(
            period_of(Some("today"), None, None, today),
            Some((d("2026-03-04"), d("2026-03-05")))
        );
        assert_eq!(
            period_of(None, None, None, today),
            Some((d("2026-02-26"), d("2026-03-05")))
        );
        assert_eq!(
            period_of(Some("30"), None, None, today),
            Some((d("2026-02-03"), d("2026-03-05")))
        );
        assert_eq!(
            period_of(None, Some("2026-03-02"), Some("2026-03-05"), today),
            Some((d("2026-03-02"), d("2026-03-05")))
        );
        assert_eq!(period_of(Some("9"), None, None, today), None);
        assert_eq!(
            period_of(None, Some("2026-03-05"), Some("2026-03-02"), today),
            None
        );
        assert_eq!(period_of(None, Some("yesterday"), None, today), None);
    }
}

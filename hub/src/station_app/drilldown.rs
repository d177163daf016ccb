//! One SKU's days (`/station/dashboard/sku?code=…`, supervisors; linked from the stock screen):
//! for each of the last 30 site days, what was handed over, today's kind of forecast the hub
//! stored for that day, the error, and whether the SKU ran out (a stock-out day's handovers
//! are a lower bound of demand, not demand). The days are counted by
//! `store::demand::daily_history_between`, the forecast's own reading of the journal, and the
//! forecasts are the daily job's stored ones: nothing here has rules of its own.

use super::{StationApp, html, refusal, templates};
use crate::catalogue::Lang;
use crate::store::{StoreError, day_forecast, demand, sku as sku_store};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use hub_core::SkuCode;
use serde::{Deserialize, Serialize};

/// Days shown.
const DAYS: u64 = 30;

/// The page's routes.
pub fn routes() -> Router<StationApp> {
    Router::new().route("/station/dashboard/sku", get(page))
}

/// `?code=` names the SKU (a query, since codes may hold `/`); `?lang=` overrides the staff
/// member's language.
#[derive(Debug, Default, Deserialize)]
pub struct DrillQuery {
    #[serde(default)]
    code: String,
    lang: Option<String>,
}

/// One site day of the SKU.
#[derive(Debug, Serialize)]
struct DayRow {
    day: String,
    sold: f64,
    forecast: Option<f64>,
    stocked_out: bool,
    listed: bool,
}

async fn page(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Query(q): Query<DrillQuery>,
) -> Response {
    let s = match super::dashboard::supervisor(&app, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let lang = q.lang.as_deref().and_then(Lang::parse).unwrap_or(s.lang);
    let Ok(sku) = SkuCode::new(&q.code) else {
        return refusal(
            StatusCode::NOT_FOUND,
            "drill-down of an unreadable SKU code",
            lang,
            "drill.unknown_sku",
        );
    };
    let zone = app.site.timezone;
    let today = crate::clock::site_date(zone, crate::clock::now());
    let (from, to) = (
        today - chrono::Days::new(DAYS - 1),
        today + chrono::Days::new(1),
    );
    let read = app
        .store
        .read(move |c| {
            let Some(master) = sku_store::get(c, &sku)? else {
                return Ok::<_, StoreError>(None);
            };
            let days = demand::daily_history_between(c, sku.as_str(), from, to, zone)?;
            let forecasts = day_forecast::between(c, from, to)?;
            Ok(Some((master, days, forecasts)))
        })
        .await;
    let (master, days, forecasts) = match read {
        Ok(Some(found)) => found,
        Ok(None) => {
            return refusal(
                StatusCode::NOT_FOUND,
                "drill-down of an unknown SKU",
                lang,
                "drill.unknown_sku",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "drill-down: cannot read the SKU's days");
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "store error on the drill-down",
                lang,
                "error.store",
            );
        }
    };
    let rows: Vec<DayRow> = days
        .iter()
        .rev()
        .map(|d| DayRow {
            day: d.date.to_string(),
            sold: d.sold,
            forecast: forecasts
                .iter()
                .find(|f| f.day == d.date && f.sku == master.code.as_str())
                .map(|f| f.forecast),
            stocked_out: d.stocked_out,
            listed: d.existed,
        })
        .collect();
    // Oldest first for the chart, like the dashboard's trends.
    let sold: Vec<Option<f64>> = days.iter().map(|d| d.existed.then_some(d.sold)).collect();
    let context = serde_json::json!({
        "lang": lang.tag(),
        "csrf": s.csrf,
        "staff": super::StaffView { staff_id: &s.staff_id, name: &s.name },
        "station_name": app.station_name(&s.station),
        "sku": master.code.as_str(),
        "name": master.name,
        "unit": match master.unit {
            hub_core::StockUnit::Piece => "piece",
            hub_core::StockUnit::Gram => "gram",
        },
        "rows": rows,
        "chart": super::charts::trend(&sold, None),
    });
    html(StatusCode::OK, templates::render("drilldown.html", context))
}

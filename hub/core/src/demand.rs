//! What a replenishment request says about demand: the plan a forecast gives (the tier figure
//! and the quantity) and the reasoning sent upstream with the request. Plain data shared by the
//! stock tiers (`alerts`) and the forecast-driven rule that fills it (`replenishment`).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Why a request asks for what it asks: the forecast and the plan, as sent upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplenishmentReasoning {
    /// `forecast`, or `trailing_average` when the fallback rule had to use today's rule.
    pub basis: DemandBasis,
    /// How the forecast was made (`ses`, `damped_trend`, `tsb`, `history_mean`,
    /// `category_prior`, `no_data`).
    pub method: String,
    /// The stated fallback rule when no model was fitted, e.g. "5 usable days of history, 14
    /// needed to fit: mean of the usable days".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// First forecast day (the site's day of the check).
    pub forecast_start: NaiveDate,
    /// Expected demand per day from `forecast_start` (units, two decimals).
    pub daily_forecast: Vec<f64>,
    /// Days the available stock lasts at the forecast rates; `None` when it never runs out.
    pub days_of_cover: Option<f64>,
    pub lead_time_days: u32,
    pub review_days: u32,
    /// Forecast demand over lead time + review period.
    pub forecast_over_horizon: f64,
    pub service_target: f64,
    /// From the forecast's own error over the horizon.
    pub safety_stock: f64,
    /// Units of the target kept for a running promotion's pre-sale orders.
    pub pre_sale_reserve: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shelf_life_days: Option<u32>,
    /// Set when the target was cut to what sells before it expires (that many units).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shelf_life_cap: Option<f64>,
    /// Target stock position after the order.
    pub order_up_to: f64,
    /// on hand − committed (nothing is counted on order).
    pub position: f64,
    /// Usable days the model was fitted on, stock-out (censored) days among them.
    pub history_days: usize,
    pub censored_days: usize,
}

/// Where the demand figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DemandBasis {
    Forecast,
    TrailingAverage,
}

/// The figure tiers are computed from and the quantity a request asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct DemandPlan {
    /// The tier figure under the policy's measure: forecast days of cover (infinite when the
    /// stock never runs out) or available units.
    pub figure: f64,
    /// Units a request asks for (at least 1).
    pub quantity: i64,
    pub reasoning: ReplenishmentReasoning,
}

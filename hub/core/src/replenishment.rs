//! Replenishment from the demand forecast: the days of cover the stock tiers measure and the
//! quantity a replenishment request asks for, with the reasoning sent upstream.
//!
//! The forecast (`hub_forecast::forecast_sku`) is made from the site's own days (handovers are
//! demand, stock-out days censored) and central's demand signals; the quantity is the
//! order-up-to level of `hub_forecast::plan_replenishment` over lead time + review period,
//! with safety stock from the forecast's own error and the service target, capped by shelf
//! life and keeping a running promotion's pre-sale reserve.
//!
//! Fallback rule, always stated in the reasoning: a SKU with fewer usable days than the model
//! needs gets the forecast's short-history rule (the mean of its usable days, blended with a
//! prior when there is one); a SKU with no usable day and no prior has no forecast at all, and
//! its tiers and quantity come from today's rule (trailing 7-day average, target days of
//! cover) — never a silent zero. Pure: the day is an argument.

use crate::alerts::{Measure, StockFigures, TierPolicy};
pub use crate::demand::{DemandBasis, DemandPlan, ReplenishmentReasoning};
use chrono::NaiveDate;
use hub_forecast::{
    Cap, DailyObservation, DemandSignal, ForecastConfig, Method, ReplenishmentInput, SkuContext,
    SkuSignals, forecast_sku, plan_replenishment,
};
use serde::{Deserialize, Serialize};

/// Days forecast ahead for cover and plans.
pub const FORECAST_HORIZON_DAYS: usize = 14;

/// The site's replenishment cycle and service target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReplenishmentSettings {
    /// Selling days before an order placed now is on the shelf (0: ordered after closing,
    /// delivered before the next opening).
    pub lead_time_days: u32,
    /// Days until the next order can be placed (at least 1).
    pub review_days: u32,
    /// Cycle service target, e.g. 0.95: the chance that the stock lasts to the next delivery.
    pub service_target: f64,
}

impl Default for ReplenishmentSettings {
    fn default() -> Self {
        ReplenishmentSettings {
            lead_time_days: 0,
            review_days: 1,
            service_target: 0.95,
        }
    }
}

/// What one SKU's forecast is made from.
#[derive(Debug, Clone, Copy)]
pub struct DemandInput<'a> {
    /// The SKU's days before `today` (see `hub_forecast::DailyObservation`).
    pub history: &'a [DailyObservation],
    pub sku: &'a str,
    /// Category for signals scoped to one (empty when the master data has none).
    pub category: &'a str,
    /// Central's signals, past and future.
    pub signals: &'a [DemandSignal],
    /// The site's day: the first day the current stock must serve.
    pub today: NaiveDate,
    /// Days a delivered unit can be sold; `None` for non-perishables.
    pub shelf_life_days: Option<u32>,
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Forecasts the SKU's demand and plans its replenishment (see the module header).
pub fn plan(
    input: &DemandInput<'_>,
    figures: &StockFigures,
    policy: &TierPolicy,
    settings: &ReplenishmentSettings,
) -> DemandPlan {
    let config = ForecastConfig::default();
    let ctx = SkuContext {
        sku: input.sku,
        category: input.category,
        prior_daily: None,
    };
    let forecast = forecast_sku(
        input.history,
        &ctx,
        input.signals,
        input.today,
        FORECAST_HORIZON_DAYS,
        &config,
    );
    let reserve_fraction = SkuSignals::for_sku(input.signals, input.sku, input.category)
        .reserve_fraction(input.today)
        .clamp(0.0, 0.95);
    let on_hand = figures.on_hand.max(0) as f64;
    let committed = figures.committed.max(0) as f64;
    let plan = plan_replenishment(&ReplenishmentInput {
        daily_forecast: forecast.means(),
        daily_sd: forecast.days.iter().map(|d| d.sd).collect(),
        on_hand,
        committed,
        on_order: 0.0,
        lead_time_days: settings.lead_time_days,
        review_days: settings.review_days.max(1),
        service_target: settings.service_target,
        shelf_life_days: input.shelf_life_days,
        reserve_fraction,
    });
    let fallback_text = forecast.fallback.map(|reason| {
        let rule = match forecast.method {
            Method::HistoryMean { .. } => "mean of the usable days",
            Method::CategoryPrior { .. } => "usable days blended with the category prior",
            _ => "no forecast: tiers and quantity by the trailing 7-day average rule",
        };
        format!("{reason}: {rule}")
    });
    let no_forecast = matches!(forecast.method, Method::NoData);
    let mut reasoning = ReplenishmentReasoning {
        basis: DemandBasis::Forecast,
        method: forecast.method.as_str().to_string(),
        fallback: fallback_text,
        forecast_start: input.today,
        daily_forecast: forecast.days.iter().map(|d| round2(d.mean)).collect(),
        days_of_cover: None,
        lead_time_days: settings.lead_time_days,
        review_days: settings.review_days.max(1),
        forecast_over_horizon: 0.0,
        service_target: settings.service_target,
        safety_stock: 0.0,
        pre_sale_reserve: 0.0,
        shelf_life_days: input.shelf_life_days,
        shelf_life_cap: None,
        order_up_to: 0.0,
        position: on_hand - committed,
        history_days: forecast.fit.usable_days,
        censored_days: forecast.fit.censored_days,
    };
    let trailing = |reasoning: ReplenishmentReasoning| {
        let target_units = match policy.measure {
            Measure::Absolute => policy.target,
            Measure::DaysOfCover => policy.target * figures.daily_demand.max(0.0),
        };
        let cover = figures.figure(Measure::DaysOfCover);
        DemandPlan {
            figure: figures.figure(policy.measure),
            quantity: ((target_units - figures.available() as f64).ceil() as i64).max(1),
            reasoning: ReplenishmentReasoning {
                basis: DemandBasis::TrailingAverage,
                days_of_cover: cover.is_finite().then(|| round2(cover)),
                order_up_to: round2(target_units),
                ..reasoning
            },
        }
    };
    let plan = match plan {
        Ok(plan) if !no_forecast => plan,
        Ok(_) => return trailing(reasoning),
        Err(e) => {
            reasoning.fallback = Some(format!(
                "no plan from the forecast ({e}): tiers and quantity by the trailing 7-day average rule"
            ));
            return trailing(reasoning);
        }
    };
    reasoning.days_of_cover = plan
        .days_of_cover
        .is_finite()
        .then(|| round2(plan.days_of_cover));
    reasoning.forecast_over_horizon = round2(plan.forecast_over_horizon);
    reasoning.safety_stock = round2(plan.safety_stock);
    reasoning.pre_sale_reserve = round2(plan.reserve);
    reasoning.shelf_life_cap = plan.capped_by.map(|Cap::ShelfLife { limit }| round2(limit));
    reasoning.order_up_to = round2(plan.order_up_to);
    DemandPlan {
        figure: match policy.measure {
            Measure::DaysOfCover => plan.days_of_cover,
            Measure::Absolute => figures.available() as f64,
        },
        quantity: plan.quantity.max(1),
        reasoning,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::Tier;
    use hub_forecast::{SignalKind, SignalScope};

    fn policy() -> TierPolicy {
        TierPolicy {
            measure: Measure::DaysOfCover,
            yellow: 3.0,
            orange: 2.0,
            red: 1.0,
            hysteresis: 0.15,
            replenish_at: Tier::Red,
            target: 5.0,
            re_request_after_ms: 3_600_000,
        }
    }

    fn day(n: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 1).unwrap() + chrono::Days::new(n as u64)
    }

    /// 56 days: weekdays sell 10, weekends 30 (a weekend-heavy SKU).
    fn weekly_history() -> Vec<DailyObservation> {
        (0..56)
            .map(|n| DailyObservation {
                date: day(n),
                sold: if matches!(
                    chrono::Datelike::weekday(&day(n)),
                    chrono::Weekday::Sat | chrono::Weekday::Sun
                ) {
                    30.0
                } else {
                    10.0
                },
                stocked_out: false,
                existed: true,
            })
            .collect()
    }

    fn stock(on_hand: i64, daily: f64) -> StockFigures {
        StockFigures {
            on_hand,
            committed: 0,
            daily_demand: daily,
        }
    }

    #[test]
    fn cover_follows_the_forecast_not_the_trailing_average() {
        let history = weekly_history();
        let today = day(54); // Friday 2026-04-24
        assert_eq!(chrono::Datelike::weekday(&today), chrono::Weekday::Fri);
        let input = DemandInput {
            history: &history[..54],
            sku: "A",
            category: "",
            signals: &[],
            today,
            shelf_life_days: None,
        };
        // 40 units: the trailing average (~15.7/day) says 2.5 days, the forecast says Friday
        // 10 + Saturday 30 = the stock is gone after about two days.
        let plan = plan(
            &input,
            &stock(40, 110.0 / 7.0),
            &policy(),
            &Default::default(),
        );
        assert_eq!(plan.reasoning.basis, DemandBasis::Forecast);
        assert!(plan.reasoning.fallback.is_none());
        assert!(plan.figure < 2.2, "forecast cover {}", plan.figure);
        assert!(plan.figure > 1.5, "forecast cover {}", plan.figure);
    }

    #[test]
    fn quantity_is_the_order_up_to_level_capped_by_shelf_life() {
        let history = weekly_history();
        let input = DemandInput {
            history: &history[..54],
            sku: "A",
            category: "",
            signals: &[],
            today: day(54),
            shelf_life_days: None,
        };
        let settings = ReplenishmentSettings {
            lead_time_days: 1,
            review_days: 2,
            service_target: 0.95,
        };
        let open = plan(&input, &stock(5, 15.0), &policy(), &settings);
        let r = &open.reasoning;
        // Fri + Sat + Sun ≈ 10 + 30 + 30, plus a safety stock.
        assert!((60.0..80.0).contains(&r.forecast_over_horizon), "{r:?}");
        assert!(r.safety_stock > 0.0);
        assert_eq!(open.quantity, (r.order_up_to - 5.0).ceil() as i64);
        let capped = plan(
            &DemandInput {
                shelf_life_days: Some(1),
                ..input
            },
            &stock(5, 15.0),
            &policy(),
            &settings,
        );
        // Lead time 1 + shelf life 1: at most Friday's and Saturday's demand.
        let cap = capped
            .reasoning
            .shelf_life_cap
            .expect("capped by shelf life");
        assert!(cap < r.order_up_to);
        assert!(capped.quantity < open.quantity);
    }

    #[test]
    fn a_promotion_keeps_its_pre_sale_reserve() {
        let history = weekly_history();
        let signals = [DemandSignal {
            id: "promo".into(),
            kind: SignalKind::Promotion {
                reserve_fraction: 0.2,
            },
            start: day(54),
            end: day(60),
            scope: SignalScope::Skus(vec!["A".into()]),
            multiplier: 1.5,
        }];
        let base = DemandInput {
            history: &history[..54],
            sku: "A",
            category: "",
            signals: &[],
            today: day(54),
            shelf_life_days: None,
        };
        let plain = plan(&base, &stock(0, 15.0), &policy(), &Default::default());
        let promo = plan(
            &DemandInput {
                signals: &signals,
                ..base
            },
            &stock(0, 15.0),
            &policy(),
            &Default::default(),
        );
        assert!(promo.reasoning.pre_sale_reserve > 0.0);
        assert!(promo.quantity as f64 > plain.quantity as f64 * 1.5);
    }

    #[test]
    fn short_history_states_its_rule_and_no_history_falls_back_to_the_trailing_rule() {
        let history = weekly_history();
        let short = plan(
            &DemandInput {
                history: &history[..5],
                sku: "A",
                category: "",
                signals: &[],
                today: day(5),
                shelf_life_days: None,
            },
            &stock(0, 0.0),
            &policy(),
            &Default::default(),
        );
        assert_eq!(short.reasoning.method, "history_mean");
        let text = short.reasoning.fallback.expect("fallback stated");
        assert!(text.contains("5 usable days"), "{text}");
        assert!(short.quantity >= 1);
        assert!(short.reasoning.daily_forecast.iter().all(|d| *d > 0.0));

        let none = plan(
            &DemandInput {
                history: &[],
                sku: "A",
                category: "",
                signals: &[],
                today: day(5),
                shelf_life_days: None,
            },
            &stock(2, 4.0),
            &policy(),
            &Default::default(),
        );
        assert_eq!(none.reasoning.basis, DemandBasis::TrailingAverage);
        assert!(
            none.reasoning
                .fallback
                .unwrap()
                .contains("trailing 7-day average")
        );
        assert_eq!(none.figure, 0.5);
        assert_eq!(none.quantity, 18);
    }
}

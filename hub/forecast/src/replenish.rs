//! Replenishment from a forecast: days of cover, and an order-up-to quantity over lead time +
//! review period with safety stock, capped by shelf life and keeping a promotion's pre-sale
//! reserve. The plan carries its reasoning as data so the hub can show why it asked for what.
//!
//! Pure: the caller passes the forecast (day 0 = the first day the current stock must serve),
//! the stock figures and the parameters; nothing here reads a clock or a store.

use crate::stats::normal_quantile;
use serde::{Deserialize, Serialize};

/// Days of cover: how many days `(on_hand − committed)` lasts at the forecast rates, walking the
/// days (a fraction for the last one). Past the end of the forecast the mean of its last seven
/// days is assumed. Infinite when the forecast is all zero; 0 when nothing is available.
pub fn days_of_cover(on_hand: f64, committed: f64, daily_forecast: &[f64]) -> f64 {
    let mut left = on_hand - committed;
    if left.is_nan() || left <= 0.0 {
        return 0.0;
    }
    let mut days = 0.0;
    for &f in daily_forecast {
        let f = if f.is_finite() { f.max(0.0) } else { 0.0 };
        if left <= f {
            return days + if f > 0.0 { left / f } else { 0.0 };
        }
        left -= f;
        days += 1.0;
    }
    let tail = tail_rate(daily_forecast);
    if tail > 0.0 {
        days + left / tail
    } else {
        f64::INFINITY
    }
}

/// Mean of the last seven days of a forecast (the rate assumed beyond its end).
fn tail_rate(daily: &[f64]) -> f64 {
    let tail = &daily[daily.len().saturating_sub(7)..];
    if tail.is_empty() {
        return 0.0;
    }
    tail.iter()
        .map(|f| if f.is_finite() { f.max(0.0) } else { 0.0 })
        .sum::<f64>()
        / tail.len() as f64
}

/// Sum of the forecast over `days` days from day 0, extended at the tail rate.
fn total_over(daily: &[f64], days: usize) -> f64 {
    let known: f64 = daily
        .iter()
        .take(days)
        .map(|f| if f.is_finite() { f.max(0.0) } else { 0.0 })
        .sum();
    known + days.saturating_sub(daily.len()) as f64 * tail_rate(daily)
}

/// What a replenishment plan is computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplenishmentInput {
    /// Forecast mean per day; day 0 is the first day the current stock must serve.
    pub daily_forecast: Vec<f64>,
    /// Forecast standard error per day (same days).
    pub daily_sd: Vec<f64>,
    pub on_hand: f64,
    /// Reserved by open pickup orders.
    pub committed: f64,
    /// Ordered and not yet received.
    pub on_order: f64,
    /// Selling days that pass before an order placed now is on the shelf: 0 for an order placed
    /// after closing and delivered before the next opening (the daily 次日达 cycle).
    pub lead_time_days: u32,
    /// Days until the next order can be placed.
    pub review_days: u32,
    /// Cycle service target, e.g. 0.95 (clamped to `[0.5, 0.9999]`).
    pub service_target: f64,
    /// Days a delivered unit can be sold (perishables); `None` for no limit.
    pub shelf_life_days: Option<u32>,
    /// Fraction of stock kept for a running promotion's pre-sale orders, in `[0, 1)`.
    pub reserve_fraction: f64,
}

/// What limited a plan below its order-up-to level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cap", rename_all = "snake_case")]
pub enum Cap {
    /// More would expire before it can be sold at the forecast rate.
    ShelfLife {
        /// Most stock that sells before a delivery arriving after the lead time expires.
        limit: f64,
    },
}

/// An order quantity with the figures that explain it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplenishmentPlan {
    /// Units to order now (whole units, never negative).
    pub quantity: i64,
    /// Target stock position after ordering (after any cap).
    pub order_up_to: f64,
    /// Position before the cap: (forecast + safety) ÷ (1 − reserve fraction).
    pub uncapped_order_up_to: f64,
    pub safety_stock: f64,
    /// Forecast demand over lead time + review period.
    pub forecast_over_horizon: f64,
    /// Lead time + review period, in days.
    pub horizon_days: u32,
    /// Units of the target kept for pre-sale orders.
    pub reserve: f64,
    /// on hand + on order − committed.
    pub position: f64,
    /// `z` for the service target.
    pub z: f64,
    pub capped_by: Option<Cap>,
    /// Days of cover of the current stock at the forecast rates.
    pub days_of_cover: f64,
}

/// Why a plan cannot be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("the forecast is empty")]
    EmptyForecast,
    #[error("lead time + review period is 0 days: nothing to cover")]
    ZeroHorizon,
    #[error("{what} is {value}: must be a finite number at least 0")]
    BadFigure { what: &'static str, value: f64 },
    #[error("pre-sale reserve fraction {0} must be at least 0 and below 1")]
    ReserveFraction(f64),
}

/// Order-up-to plan: `S = (F + z·σ·√H) / (1 − r)` over `H = lead + review` days, where `F` is
/// the forecast over `H`, `σ` the root-mean-square daily forecast error over those days and `r`
/// the pre-sale reserve fraction; capped by shelf life at `limit = forecast over lead + shelf
/// life days` (stock beyond it expires before it sells); quantity = `S − position`, rounded up,
/// at least 0.
pub fn plan_replenishment(input: &ReplenishmentInput) -> Result<ReplenishmentPlan, PlanError> {
    if input.daily_forecast.is_empty() {
        return Err(PlanError::EmptyForecast);
    }
    for (what, value) in [
        ("on hand", input.on_hand),
        ("committed", input.committed),
        ("on order", input.on_order),
    ] {
        if !(value.is_finite() && value >= 0.0) {
            return Err(PlanError::BadFigure { what, value });
        }
    }
    if !(0.0..1.0).contains(&input.reserve_fraction) {
        return Err(PlanError::ReserveFraction(input.reserve_fraction));
    }
    let horizon = input.lead_time_days + input.review_days;
    if horizon == 0 {
        return Err(PlanError::ZeroHorizon);
    }
    let h = horizon as usize;
    let forecast_over_horizon = total_over(&input.daily_forecast, h);
    let sds: Vec<f64> = (0..h)
        .map(|d| {
            input
                .daily_sd
                .get(d)
                .or(input.daily_sd.last())
                .copied()
                .filter(|v| v.is_finite())
                .unwrap_or(0.0)
                .max(0.0)
        })
        .collect();
    let sigma = (sds.iter().map(|s| s * s).sum::<f64>() / h as f64).sqrt();
    let z = normal_quantile(input.service_target.clamp(0.5, 0.9999));
    let safety_stock = (z * sigma * (h as f64).sqrt()).max(0.0);
    let r = input.reserve_fraction;
    let uncapped = (forecast_over_horizon + safety_stock) / (1.0 - r);
    let position = input.on_hand + input.on_order - input.committed;
    let mut order_up_to = uncapped;
    let mut capped_by = None;
    if let Some(life) = input.shelf_life_days {
        let limit = total_over(
            &input.daily_forecast,
            (input.lead_time_days + life) as usize,
        );
        if uncapped > limit {
            order_up_to = limit;
            capped_by = Some(Cap::ShelfLife { limit });
        }
    }
    let quantity = (order_up_to - position - 1e-9).ceil().max(0.0);
    Ok(ReplenishmentPlan {
        quantity: quantity as i64,
        order_up_to,
        uncapped_order_up_to: uncapped,
        safety_stock,
        forecast_over_horizon,
        horizon_days: horizon,
        reserve: r * order_up_to,
        position,
        z,
        capped_by,
        days_of_cover: days_of_cover(input.on_hand, input.committed, &input.daily_forecast),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn input() -> ReplenishmentInput {
        ReplenishmentInput {
            daily_forecast: vec![10.0; 14],
            daily_sd: vec![3.0; 14],
            on_hand: 12.0,
            committed: 2.0,
            on_order: 0.0,
            lead_time_days: 1,
            review_days: 1,
            service_target: 0.95,
            shelf_life_days: None,
            reserve_fraction: 0.0,
        }
    }

    #[test]
    fn cover_walks_the_days() {
        assert_eq!(days_of_cover(30.0, 0.0, &[10.0, 10.0, 20.0, 20.0]), 2.5);
        assert_eq!(days_of_cover(5.0, 5.0, &[10.0]), 0.0);
        assert_eq!(days_of_cover(5.0, 0.0, &[0.0, 0.0]), f64::INFINITY);
        // Beyond the forecast: the tail rate.
        assert_eq!(days_of_cover(50.0, 0.0, &[10.0, 10.0]), 5.0);
    }

    #[test]
    fn order_up_to_covers_horizon_and_safety() {
        let p = plan_replenishment(&input()).unwrap();
        assert_eq!(p.forecast_over_horizon, 20.0);
        let expected_ss = 1.644_853_6 * 3.0 * 2f64.sqrt();
        assert!((p.safety_stock - expected_ss).abs() < 1e-4);
        assert!((p.order_up_to - (20.0 + expected_ss)).abs() < 1e-4);
        assert_eq!(p.position, 10.0);
        assert_eq!(p.quantity, (20.0 + expected_ss - 10.0).ceil() as i64);
        assert_eq!(p.capped_by, None);
        assert_eq!(p.days_of_cover, 1.0);
    }

    #[test]
    fn shelf_life_caps_perishables() {
        // Sells 10 a day; a delivery after 1 day that keeps 1 day: at most 20 in position.
        let p = plan_replenishment(&ReplenishmentInput {
            shelf_life_days: Some(1),
            review_days: 3,
            ..input()
        })
        .unwrap();
        assert_eq!(p.capped_by, Some(Cap::ShelfLife { limit: 20.0 }));
        assert_eq!(p.order_up_to, 20.0);
        assert_eq!(p.quantity, 10);
    }

    #[test]
    fn reserve_keeps_its_fraction_free_of_regular_demand() {
        let base = plan_replenishment(&input()).unwrap();
        let p = plan_replenishment(&ReplenishmentInput {
            reserve_fraction: 0.2,
            ..input()
        })
        .unwrap();
        assert!((p.order_up_to * 0.8 - base.order_up_to).abs() < 1e-9);
        assert!((p.reserve - 0.2 * p.order_up_to).abs() < 1e-9);
        assert!(p.quantity > base.quantity);
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert_eq!(
            plan_replenishment(&ReplenishmentInput {
                daily_forecast: vec![],
                ..input()
            }),
            Err(PlanError::EmptyForecast)
        );
        assert_eq!(
            plan_replenishment(&ReplenishmentInput {
                lead_time_days: 0,
                review_days: 0,
                ..input()
            }),
            Err(PlanError::ZeroHorizon)
        );
        assert!(matches!(
            plan_replenishment(&ReplenishmentInput {
                on_hand: -1.0,
                ..input()
            }),
            Err(PlanError::BadFigure {
                what: "on hand",
                ..
            })
        ));
        assert_eq!(
            plan_replenishment(&ReplenishmentInput {
                reserve_fraction: 1.0,
                ..input()
            }),
            Err(PlanError::ReserveFraction(1.0))
        );
    }

    proptest! {
        /// The target never exceeds the shelf-life cap; the quantity never lifts the position
        /// past the target by a whole unit; without a cap the non-reserved part of the target
        /// covers forecast + safety.
        #[test]
        fn caps_and_reserve_hold(
            forecast in proptest::collection::vec(0.0f64..50.0, 1..30),
            sd in 0.0f64..20.0,
            on_hand in 0.0f64..200.0,
            committed in 0.0f64..50.0,
            on_order in 0.0f64..100.0,
            lead in 0u32..4,
            review in 1u32..4,
            life in proptest::option::of(1u32..10),
            reserve in 0.0f64..0.9,
            service in 0.5f64..0.999,
        ) {
            let input = ReplenishmentInput {
                daily_sd: vec![sd; forecast.len()],
                daily_forecast: forecast.clone(),
                on_hand, committed, on_order,
                lead_time_days: lead, review_days: review,
                service_target: service, shelf_life_days: life, reserve_fraction: reserve,
            };
            let p = plan_replenishment(&input).unwrap();
            prop_assert!(p.quantity >= 0);
            if let Some(life) = life {
                let limit = total_over(&forecast, (lead + life) as usize);
                prop_assert!(p.order_up_to <= limit + 1e-9);
            }
            if p.quantity > 0 {
                prop_assert!(p.position + p.quantity as f64 - p.order_up_to < 1.0);
                prop_assert!(p.position + p.quantity as f64 >= p.order_up_to - 1e-6);
            }
            if p.capped_by.is_none() {
                prop_assert!((p.order_up_to - p.reserve) >= p.forecast_over_horizon + p.safety_stock - 1e-6);
            } else {
                prop_assert!(p.order_up_to < p.uncapped_order_up_to);
            }
        }
    }
}

//! A what-if simulator of one site ("digital twin"): replays a generated demand history day by
//! day under a replenishment policy and reports stock-outs, turnover, expiry losses, units short
//! and requests sent.
//!
//! Each simulated day: deliveries due that morning arrive (a batch sellable for `shelf life`
//! days) → the day's true demand is served first-expiry-first-out, what cannot be served is
//! lost → batches at their last day are written off after closing → the evening review (the
//! 社区团购 order cut-off: the policy sees the day's sales, the stock and what is on order)
//! orders, delivered `lead time` mornings later (1 = next morning, "次日达"). The days before the simulated window are the generator's own observations, so
//! every policy starts from the same history and the same opening stock. Pure: no clock, no I/O.

use crate::generator::{SiteHistory, SkuHistory};
use crate::model::{DailyObservation, ForecastConfig, SkuContext, forecast_sku};
use crate::replenish::{ReplenishmentInput, days_of_cover, plan_replenishment};
use crate::signals::SkuSignals;
use serde::{Deserialize, Serialize};

/// Alert tier, mirroring `hub_core::alerts::Tier`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Above the yellow threshold.
    #[default]
    Normal,
    /// At or below `yellow` days of cover.
    Yellow,
    /// At or below `orange`.
    Orange,
    /// At or below `red`.
    Red,
}

/// Days-of-cover tiers, as the hub's default `TierPolicy` (measure = days of cover): yellow at
/// ≤ 3 days, orange ≤ 2, red ≤ 1, hysteresis 15 %, a request at red for a target of 5 days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoverTiers {
    pub yellow: f64,
    pub orange: f64,
    pub red: f64,
    /// Fraction by which a figure must clear a threshold to improve a tier.
    pub hysteresis: f64,
    /// Tier at which stock is requested (orange or red).
    pub replenish_at: Tier,
    /// Days of cover the trailing policy asks to be brought up to.
    pub target_days: f64,
    /// Trailing window of the average, in days (the hub's `DEMAND_WINDOW_DAYS`).
    pub window_days: usize,
}

impl Default for CoverTiers {
    fn default() -> Self {
        CoverTiers {
            yellow: 3.0,
            orange: 2.0,
            red: 1.0,
            hysteresis: 0.15,
            replenish_at: Tier::Red,
            target_days: 5.0,
            window_days: 7,
        }
    }
}

impl CoverTiers {
    fn tier_for(&self, figure: f64, inflate: f64) -> Tier {
        let margin = |t: f64| t + t.abs() * inflate;
        if figure <= margin(self.red) {
            Tier::Red
        } else if figure <= margin(self.orange) {
            Tier::Orange
        } else if figure <= margin(self.yellow) {
            Tier::Yellow
        } else {
            Tier::Normal
        }
    }

    /// The next tier given the current one: worse at once, better only past the hysteresis
    /// margin (the hub's `next_tier`).
    pub fn next_tier(&self, current: Tier, figure: f64) -> Tier {
        let raw = self.tier_for(figure, 0.0);
        if raw >= current {
            raw
        } else {
            self.tier_for(figure, self.hysteresis).min(current).max(raw)
        }
    }
}

/// Alert state of one SKU under the trailing rule: tier and whether an (acknowledged)
/// replenishment episode is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TrailingState {
    pub tier: Tier,
    pub episode_open: bool,
}

/// Today's hub rule, step by step: days of cover = (on hand − committed) ÷ trailing average
/// (infinite without demand); tier with hysteresis; entering the replenishment tier without an
/// open episode requests `max(1, ceil(target × average − available))` and opens one; central is
/// taken to acknowledge at once, so no repeat until the tier is back at yellow or better, which
/// ends the episode. Returns the new state and the request, if any.
pub fn trailing_step(
    state: TrailingState,
    available: i64,
    trailing_daily: f64,
    tiers: &CoverTiers,
) -> (TrailingState, Option<i64>) {
    let figure = if trailing_daily <= 0.0 {
        f64::INFINITY
    } else {
        available as f64 / trailing_daily
    };
    let tier = tiers.next_tier(state.tier, figure);
    let mut episode_open = state.episode_open;
    let mut request = None;
    if tier >= tiers.replenish_at {
        if !episode_open {
            let target = tiers.target_days * trailing_daily.max(0.0);
            request = Some(((target - available as f64).ceil() as i64).max(1));
            episode_open = true;
        }
    } else if tier <= Tier::Yellow {
        episode_open = false;
    }
    (TrailingState { tier, episode_open }, request)
}

/// Which policy to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Today's hub rule: trailing 7-day average, request at red for 5 days of cover.
    TrailingAverage,
    /// Order-up-to from the forecast (lead time + review period, safety stock, shelf-life cap,
    /// pre-sale reserve) every review day, and between reviews when the forecast days of cover
    /// (stock + on order) reach the replenishment tier.
    Forecast,
    /// Perfect foresight: orders exactly the demand it will not otherwise meet. The limit.
    Oracle,
}

impl Policy {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::TrailingAverage => "trailing_average",
            Policy::Forecast => "forecast",
            Policy::Oracle => "oracle",
        }
    }
}

/// Parameters of a simulation run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    /// The last `sim_days` days of the history are simulated; the earlier ones are history.
    pub sim_days: i64,
    /// Mornings between an evening order and its delivery: 1 = the next morning (at least 1).
    pub lead_time_days: i64,
    /// Days between two reviews of the forecast policy and the oracle (at least 1).
    pub review_days: i64,
    /// Cycle service target of the forecast policy, in (0.5, 1).
    pub service_target: f64,
    /// Tiers of the trailing policy (and the alert tiers reported for all policies).
    pub tiers: CoverTiers,
    /// Shelf life per category, replacing the SKU's own: `(category, days)`.
    pub shelf_life_override: Vec<(String, i64)>,
    /// Opening stock and launch deliveries, in days of demand.
    pub opening_cover_days: f64,
    pub forecast: ForecastConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            sim_days: 56,
            lead_time_days: 1,
            review_days: 1,
            service_target: 0.97,
            tiers: CoverTiers::default(),
            shelf_life_override: vec![],
            opening_cover_days: 2.0,
            forecast: ForecastConfig::default(),
        }
    }
}

/// Why a simulation configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "lead_time_days is {0}: must be 1 or more (an evening order arrives the next morning at the earliest)"
    )]
    LeadTime(i64),
    #[error("review_days is {0}: must be 1 or more")]
    ReviewPeriod(i64),
    #[error("shelf life of category {category} is {days} days: must be 1 or more")]
    ShelfLife { category: String, days: i64 },
    #[error("sim_days is {days}: must be between 1 and the history's {available} days")]
    SimDays { days: i64, available: usize },
    #[error("service_target {0} must be above 0.5 and below 1")]
    ServiceTarget(f64),
    #[error(
        "tiers must satisfy 0 <= red ({red}) <= orange ({orange}) <= yellow ({yellow}) < target_days ({target})"
    )]
    TierOrder {
        red: f64,
        orange: f64,
        yellow: f64,
        target: f64,
    },
    #[error("hysteresis {0} must be at least 0 and below 1")]
    Hysteresis(f64),
    #[error("replenish_at must be orange or red")]
    ReplenishAt,
    #[error("window_days must be 1 or more")]
    Window,
    #[error("opening_cover_days {0} must be a finite number at least 0")]
    OpeningCover(f64),
}

impl SimConfig {
    /// Checks every parameter and reports all problems at once.
    pub fn validate(&self, history_days: usize) -> Result<(), Vec<ConfigError>> {
        let mut e = Vec::new();
        if self.lead_time_days < 1 {
            e.push(ConfigError::LeadTime(self.lead_time_days));
        }
        if self.review_days < 1 {
            e.push(ConfigError::ReviewPeriod(self.review_days));
        }
        for (category, days) in &self.shelf_life_override {
            if *days < 1 {
                e.push(ConfigError::ShelfLife {
                    category: category.clone(),
                    days: *days,
                });
            }
        }
        if self.sim_days < 1 || self.sim_days as usize > history_days {
            e.push(ConfigError::SimDays {
                days: self.sim_days,
                available: history_days,
            });
        }
        if !(self.service_target > 0.5 && self.service_target < 1.0) {
            e.push(ConfigError::ServiceTarget(self.service_target));
        }
        let t = &self.tiers;
        let ordered = [t.red, t.orange, t.yellow, t.target_days]
            .iter()
            .all(|v| v.is_finite())
            && 0.0 <= t.red
            && t.red <= t.orange
            && t.orange <= t.yellow
            && t.yellow < t.target_days;
        if !ordered {
            e.push(ConfigError::TierOrder {
                red: t.red,
                orange: t.orange,
                yellow: t.yellow,
                target: t.target_days,
            });
        }
        if !(0.0..1.0).contains(&t.hysteresis) {
            e.push(ConfigError::Hysteresis(t.hysteresis));
        }
        if !matches!(t.replenish_at, Tier::Orange | Tier::Red) {
            e.push(ConfigError::ReplenishAt);
        }
        if t.window_days == 0 {
            e.push(ConfigError::Window);
        }
        if !(self.opening_cover_days.is_finite() && self.opening_cover_days >= 0.0) {
            e.push(ConfigError::OpeningCover(self.opening_cover_days));
        }
        if e.is_empty() { Ok(()) } else { Err(e) }
    }
}

/// Figures of a run (overall or for one category). Stock and flows are summed by value
/// (price × pieces), so turnover and loss never mix units.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SimFigures {
    /// SKU-days on which the SKU was listed.
    pub sku_days: usize,
    /// Listed SKU-days with demand left unmet.
    pub stockout_days: usize,
    /// `stockout_days ÷ sku_days`.
    pub stockout_rate: f64,
    /// Average stock value ÷ average daily issued value.
    pub turnover_days: f64,
    /// Expired value ÷ received value, of the deliveries the policy ordered (the opening stock
    /// and launch deliveries, the same under every policy, are counted apart).
    pub loss_rate: f64,
    pub units_demanded: f64,
    pub units_short: f64,
    pub units_received: f64,
    pub units_issued: f64,
    pub units_expired: f64,
    /// Replenishment requests sent to central.
    pub requests: usize,
    /// Opening stock and launch deliveries (included in `units_received`).
    pub seeded_units: f64,
    /// Of which expired (included in `units_expired`).
    pub seeded_expired_units: f64,
    /// Listed SKU-days that closed with no stock, nothing on order, no request sent and no sales
    /// in the trailing window: today's rule sees infinite cover there and never asks again.
    pub stranded_days: usize,
    stock_value_days: f64,
    issued_value: f64,
    expired_value: f64,
    received_value: f64,
    seeded_value: f64,
    seeded_expired_value: f64,
}

impl SimFigures {
    fn add(&mut self, o: &SimFigures) {
        self.sku_days += o.sku_days;
        self.stockout_days += o.stockout_days;
        self.units_demanded += o.units_demanded;
        self.units_short += o.units_short;
        self.units_received += o.units_received;
        self.units_issued += o.units_issued;
        self.units_expired += o.units_expired;
        self.requests += o.requests;
        self.stranded_days += o.stranded_days;
        self.stock_value_days += o.stock_value_days;
        self.issued_value += o.issued_value;
        self.expired_value += o.expired_value;
        self.received_value += o.received_value;
        self.seeded_units += o.seeded_units;
        self.seeded_expired_units += o.seeded_expired_units;
        self.seeded_value += o.seeded_value;
        self.seeded_expired_value += o.seeded_expired_value;
    }

    fn finish(&mut self) {
        self.stockout_rate = ratio(self.stockout_days as f64, self.sku_days as f64);
        self.turnover_days = ratio(self.stock_value_days, self.issued_value);
        self.loss_rate = ratio(
            self.expired_value - self.seeded_expired_value,
            self.received_value - self.seeded_value,
        );
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// Stock ledger of one SKU over the run: received = issued + expired + on hand at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkuLedger {
    pub code: String,
    pub category: String,
    /// Opening stock plus every delivery that arrived within the run.
    pub received: f64,
    pub issued: f64,
    pub expired: f64,
    pub on_hand_end: f64,
    /// Listed days and stock-out days within the run.
    pub listed_days: usize,
    pub stockout_days: usize,
}

/// Result of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimReport {
    pub policy: Policy,
    pub overall: SimFigures,
    /// Per category, sorted by name.
    pub by_category: Vec<(String, SimFigures)>,
    pub ledgers: Vec<SkuLedger>,
}

struct Batch {
    /// Last day index it can be sold.
    last_day: usize,
    qty: f64,
    /// Opening stock or a launch delivery: the same under every policy.
    seeded: bool,
}

/// Simulates the last `config.sim_days` days of `site` under `policy`.
pub fn simulate(
    site: &SiteHistory,
    policy: Policy,
    config: &SimConfig,
) -> Result<SimReport, Vec<ConfigError>> {
    config.validate(site.days)?;
    let mut by_cat: std::collections::BTreeMap<String, SimFigures> = Default::default();
    let mut ledgers = Vec::new();
    for sku in &site.skus {
        let (figures, ledger) = simulate_sku(site, sku, policy, config);
        by_cat
            .entry(sku.profile.category.clone())
            .or_default()
            .add(&figures);
        ledgers.push(ledger);
    }
    let mut overall = SimFigures::default();
    for f in by_cat.values_mut() {
        overall.add(f);
        f.finish();
    }
    overall.finish();
    Ok(SimReport {
        policy,
        overall,
        by_category: by_cat.into_iter().collect(),
        ledgers,
    })
}

fn shelf_life(sku: &SkuHistory, config: &SimConfig) -> usize {
    config
        .shelf_life_override
        .iter()
        .find(|(c, _)| *c == sku.profile.category)
        .map_or(sku.profile.shelf_life_days as usize, |(_, d)| {
            (*d).max(1) as usize
        })
}

fn simulate_sku(
    site: &SiteHistory,
    sku: &SkuHistory,
    policy: Policy,
    config: &SimConfig,
) -> (SimFigures, SkuLedger) {
    let days = site.days;
    let t0 = days - config.sim_days as usize;
    let lead = config.lead_time_days as usize;
    let review = config.review_days as usize;
    let life = shelf_life(sku, config);
    let price = sku.profile.price;
    let listed = |t: usize| t < days && t >= sku.profile.first_day && t < sku.profile.last_day;
    let signals = SkuSignals::for_sku(&site.signals, &sku.profile.code, &sku.profile.category);
    let ctx = SkuContext {
        sku: &sku.profile.code,
        category: &sku.profile.category,
        prior_daily: Some(sku.profile.prior_daily),
    };

    let mut obs: Vec<DailyObservation> = sku.observations[..t0].to_vec();
    let mut batches: Vec<Batch> = Vec::new();
    let mut pipeline: Vec<(usize, f64)> = Vec::new();
    let mut f = SimFigures::default();
    let mut trailing = TrailingState::default();
    let mut alert_tier = Tier::Normal;

    for t in t0..days {
        // Opening stock, or the launch delivery of a SKU listed during the run: the same for
        // every policy, and kept out of the policy's loss rate.
        let seed = if t == t0 && listed(t0) {
            let recent: Vec<f64> = (t0.saturating_sub(7)..t0)
                .filter(|&d| listed(d))
                .map(|d| sku.demand[d])
                .collect();
            let rate = if recent.is_empty() {
                sku.profile.prior_daily
            } else {
                recent.iter().sum::<f64>() / recent.len() as f64
            };
            (rate * config.opening_cover_days).ceil()
        } else if t == sku.profile.first_day && t > t0 {
            (sku.profile.prior_daily * config.opening_cover_days).ceil()
        } else {
            0.0
        };
        if seed > 0.0 {
            batches.push(Batch {
                last_day: t + life - 1,
                qty: seed,
                seeded: true,
            });
            f.units_received += seed;
            f.received_value += seed * price;
            f.seeded_units += seed;
            f.seeded_value += seed * price;
        }
        // 1. Morning: deliveries.
        let mut arrived = 0.0;
        pipeline.retain(|&(at, q)| {
            if at == t {
                arrived += q;
                false
            } else {
                true
            }
        });
        if arrived > 0.0 {
            batches.push(Batch {
                last_day: t + life - 1,
                qty: arrived,
                seeded: false,
            });
            batches.sort_by_key(|b| b.last_day);
            f.units_received += arrived;
            f.received_value += arrived * price;
        }

        // 2. The day's demand, first expiry first out; what cannot be served is lost.
        let demand = if listed(t) { sku.demand[t] } else { 0.0 };
        let mut left = demand;
        for b in &mut batches {
            let take = b.qty.min(left);
            b.qty -= take;
            left -= take;
            if left <= 0.0 {
                break;
            }
        }
        batches.retain(|b| b.qty > 0.0);
        let issued = demand - left;
        let after: f64 = batches.iter().map(|b| b.qty).sum();
        f.units_demanded += demand;
        f.units_issued += issued;
        f.issued_value += issued * price;
        if listed(t) {
            f.sku_days += 1;
            f.units_short += left;
            if left > 0.0 {
                f.stockout_days += 1;
            }
        }
        // The hub only sees that stock ran out: the day's sales are a lower bound of demand.
        obs.push(DailyObservation {
            date: site.date(t),
            sold: issued,
            stocked_out: listed(t) && after <= 0.0,
            existed: listed(t),
        });

        // 3. Batches at their last day are written off after closing.
        batches.retain(|b| {
            if b.last_day <= t {
                f.units_expired += b.qty;
                f.expired_value += b.qty * price;
                if b.seeded {
                    f.seeded_expired_units += b.qty;
                    f.seeded_expired_value += b.qty * price;
                }
                false
            } else {
                true
            }
        });
        let on_hand: f64 = batches.iter().map(|b| b.qty).sum();
        f.stock_value_days += on_hand * price;
        let on_order: f64 = pipeline.iter().map(|p| p.1).sum();

        // 4. Evening review: an order arrives `lead` mornings later.
        let arrival = t + lead;
        let may_order = listed(t) && listed(arrival);
        let review_day = (t - t0).is_multiple_of(review);
        let window = config.tiers.window_days;
        let trailing_daily = (t + 1).saturating_sub(window)..t + 1;
        let trailing_daily = trailing_daily.map(|d| obs[d].sold).sum::<f64>() / window as f64;
        // Selling days before the delivery is on the shelf, and the days one order must cover.
        let exposure = lead - 1;
        let mut order = 0.0;
        match policy {
            Policy::TrailingAverage => {
                let (next, request) =
                    trailing_step(trailing, on_hand as i64, trailing_daily, &config.tiers);
                trailing = next;
                alert_tier = trailing.tier;
                if may_order && let Some(q) = request {
                    order = q as f64;
                }
            }
            Policy::Forecast => {
                if listed(t) {
                    let horizon = (exposure + review).max((exposure + life).min(28));
                    let fc = forecast_sku(
                        &obs,
                        &ctx,
                        &site.signals,
                        site.date(t + 1),
                        horizon,
                        &config.forecast,
                    );
                    // The listing calendar is master data: no demand after delisting.
                    let means: Vec<f64> = fc
                        .days
                        .iter()
                        .enumerate()
                        .map(|(h, d)| if listed(t + 1 + h) { d.mean } else { 0.0 })
                        .collect();
                    alert_tier = config
                        .tiers
                        .next_tier(alert_tier, days_of_cover(on_hand + on_order, 0.0, &means));
                    // Order on review days, and between reviews when the forecast cover drops
                    // to the replenishment tier.
                    if may_order && (review_day || alert_tier >= config.tiers.replenish_at) {
                        let reserve = (t + 1..t + 1 + exposure + review)
                            .map(|d| signals.reserve_fraction(site.date(d)))
                            .fold(0.0, f64::max);
                        let plan = plan_replenishment(&ReplenishmentInput {
                            daily_sd: fc.days.iter().map(|d| d.sd).collect(),
                            daily_forecast: means,
                            on_hand,
                            committed: 0.0,
                            on_order,
                            lead_time_days: exposure as u32,
                            review_days: review as u32,
                            service_target: config.service_target,
                            shelf_life_days: Some(life as u32),
                            reserve_fraction: reserve,
                        });
                        if let Ok(plan) = plan {
                            order = plan.quantity as f64;
                        }
                    }
                }
            }
            Policy::Oracle => {
                if listed(t) {
                    let future: Vec<f64> =
                        (t + 1..(t + 29).min(days)).map(|d| sku.demand[d]).collect();
                    alert_tier = config
                        .tiers
                        .next_tier(alert_tier, days_of_cover(on_hand, 0.0, &future));
                }
                if may_order && review_day {
                    order =
                        oracle_shortfall(sku, &batches, &pipeline, t + 1, arrival, review, life);
                }
            }
        }
        if listed(t) && on_hand <= 0.0 && on_order <= 0.0 && order <= 0.0 && trailing_daily <= 0.0 {
            f.stranded_days += 1;
        }
        if order > 0.0 {
            f.requests += 1;
            if arrival < days {
                pipeline.push((arrival, order));
            }
        }
    }
    let on_hand_end: f64 = batches.iter().map(|b| b.qty).sum();
    let ledger = SkuLedger {
        code: sku.profile.code.clone(),
        category: sku.profile.category.clone(),
        received: f.units_received,
        issued: f.units_issued,
        expired: f.units_expired,
        on_hand_end,
        listed_days: f.sku_days,
        stockout_days: f.stockout_days,
    };
    (f, ledger)
}

/// What the oracle orders in the evening before day `from` for arrival on `arrival`: the
/// demand of the days `arrival .. arrival + review` that the stock and the pipeline will not
/// meet, projected with the true demand, first expiry first out, with write-offs.
fn oracle_shortfall(
    sku: &SkuHistory,
    batches: &[Batch],
    pipeline: &[(usize, f64)],
    from: usize,
    arrival: usize,
    review: usize,
    life: usize,
) -> f64 {
    let mut stock: Vec<(usize, f64)> = batches.iter().map(|b| (b.last_day, b.qty)).collect();
    let end = (arrival + review).min(sku.demand.len());
    let mut short = 0.0;
    for d in from..end {
        for &(at, q) in pipeline {
            if at == d {
                stock.push((d + life - 1, q));
            }
        }
        stock.sort_by_key(|s| s.0);
        let listed = d >= sku.profile.first_day && d < sku.profile.last_day;
        let mut left = if listed { sku.demand[d] } else { 0.0 };
        for s in &mut stock {
            let take = s.1.min(left);
            s.1 -= take;
            left -= take;
        }
        if d >= arrival {
            short += left;
        }
        stock.retain(|s| s.1 > 0.0 && s.0 > d);
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::{GeneratorConfig, generate};

    fn small_site() -> SiteHistory {
        generate(&GeneratorConfig {
            skus: 20,
            days: 90,
            ..GeneratorConfig::default()
        })
    }

    #[test]
    fn bad_configs_are_refused_with_every_problem() {
        let config = SimConfig {
            lead_time_days: -1,
            review_days: 0,
            shelf_life_override: vec![("fresh".into(), -2)],
            sim_days: 500,
            service_target: 1.2,
            ..SimConfig::default()
        };
        let errors = config.validate(90).unwrap_err();
        assert_eq!(
            errors,
            vec![
                ConfigError::LeadTime(-1),
                ConfigError::ReviewPeriod(0),
                ConfigError::ShelfLife {
                    category: "fresh".into(),
                    days: -2
                },
                ConfigError::SimDays {
                    days: 500,
                    available: 90
                },
                ConfigError::ServiceTarget(1.2),
            ]
        );
        assert!(errors[0].to_string().contains("lead_time_days is -1"));
        let tiers = CoverTiers {
            red: 4.0,
            hysteresis: 1.5,
            ..CoverTiers::default()
        };
        let errors = SimConfig {
            tiers,
            ..SimConfig::default()
        }
        .validate(90)
        .unwrap_err();
        assert!(
            matches!(
                &errors[..],
                [ConfigError::TierOrder { .. }, ConfigError::Hysteresis(_)]
            ),
            "{errors:?}"
        );
        assert!(
            simulate(
                &small_site(),
                Policy::Oracle,
                &SimConfig {
                    lead_time_days: -3,
                    ..SimConfig::default()
                }
            )
            .is_err()
        );
    }

    #[test]
    fn stock_is_conserved_and_stockouts_count_only_listed_days() {
        let site = small_site();
        let config = SimConfig {
            sim_days: 40,
            ..SimConfig::default()
        };
        for policy in [Policy::TrailingAverage, Policy::Forecast, Policy::Oracle] {
            let report = simulate(&site, policy, &config).unwrap();
            for l in &report.ledgers {
                let balance = l.issued + l.expired + l.on_hand_end;
                assert!((l.received - balance).abs() < 1e-6, "{policy:?} {l:?}");
                assert!(l.stockout_days <= l.listed_days);
            }
            for (s, l) in site.skus.iter().zip(&report.ledgers) {
                let listed = (site.days - 40..site.days)
                    .filter(|&t| t >= s.profile.first_day && t < s.profile.last_day)
                    .count();
                assert_eq!(l.listed_days, listed, "{}", l.code);
            }
            let o = &report.overall;
            assert_eq!(
                o.sku_days,
                report.ledgers.iter().map(|l| l.listed_days).sum::<usize>()
            );
            assert!(o.units_issued + o.units_short - o.units_demanded < 1e-6);
        }
    }

    #[test]
    fn an_unlisted_sku_never_counts_as_out_of_stock() {
        let mut site = small_site();
        // Delist SKU 0 for the whole run: it has no stock and no demand, and no stock-out days.
        site.skus[0].profile.last_day = site.days - 40;
        let config = SimConfig {
            sim_days: 40,
            ..SimConfig::default()
        };
        for policy in [Policy::TrailingAverage, Policy::Forecast, Policy::Oracle] {
            let report = simulate(&site, policy, &config).unwrap();
            assert_eq!(report.ledgers[0].listed_days, 0);
            assert_eq!(report.ledgers[0].stockout_days, 0);
            assert_eq!(report.ledgers[0].received, 0.0);
        }
    }

    #[test]
    fn the_oracle_is_the_limit() {
        let site = small_site();
        let config = SimConfig {
            sim_days: 40,
            ..SimConfig::default()
        };
        let oracle = simulate(&site, Policy::Oracle, &config).unwrap().overall;
        let trailing = simulate(&site, Policy::TrailingAverage, &config)
            .unwrap()
            .overall;
        assert!(oracle.stockout_rate < 0.01, "{oracle:?}");
        assert!(oracle.loss_rate < 1e-9, "{oracle:?}");
        assert!(oracle.turnover_days < trailing.turnover_days);
        assert!(oracle.stockout_rate <= trailing.stockout_rate);
    }
}

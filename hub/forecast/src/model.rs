//! The per-SKU daily demand forecast: demand signals divided out of the history, weekday
//! factors, stock-out days imputed as censored demand, then the better of a damped-trend
//! exponential smoother and a TSB intermittent-demand smoother, chosen by one-step error;
//! future signals multiplied back in. Too little history falls back to a stated rule.
//!
//! Pure and deterministic: no clock (the first forecast day is an argument), no I/O.

use crate::signals::{DemandSignal, SkuSignals};
use crate::stats::poisson_mean_at_least;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// One day of a SKU's history at the site.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DailyObservation {
    pub date: NaiveDate,
    /// Units handed over that day.
    pub sold: f64,
    /// The SKU ran out that day: `sold` is a lower bound of demand, not demand.
    pub stocked_out: bool,
    /// The SKU was listed at the site that day (false before launch or after delisting).
    pub existed: bool,
}

/// Largest `sold` value taken as real; larger, negative or non-finite values are ignored.
pub const MAX_DAILY_UNITS: f64 = 1e9;

/// Tuning of the forecast; the defaults are what the figures in the README were measured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastConfig {
    /// Fewer existing, usable days than this fall back to a stated rule.
    pub min_history_days: usize,
    /// Only the most recent days are fitted (older ones say little about next week).
    pub max_window_days: usize,
    /// Impute stock-out days as censored demand (true) or take their sales as demand (false,
    /// only for comparison).
    pub impute_censored: bool,
    /// Pseudo-units that pull weekday factors towards 1 for slow sellers.
    pub weekday_prior_units: f64,
    /// Half-life in days of the recency weight of the weekday factors.
    pub weekday_half_life_days: f64,
    /// Share of zero days from which the intermittent (TSB) smoother is also tried.
    pub intermittent_zero_share: f64,
    /// Trend damping per day, in `(0, 1]`.
    pub damping: f64,
    /// Weight of the category prior, in days of history, when a short history is blended.
    pub prior_weight_days: f64,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        ForecastConfig {
            min_history_days: 14,
            max_window_days: 182,
            impute_censored: true,
            weekday_prior_units: 20.0,
            weekday_half_life_days: 56.0,
            intermittent_zero_share: 0.3,
            damping: 0.9,
            prior_weight_days: 7.0,
        }
    }
}

/// The SKU being forecast: its code and category (to match signals) and central's prior.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SkuContext<'a> {
    pub sku: &'a str,
    pub category: &'a str,
    /// Expected daily demand of a SKU like this one (e.g. the category average at the site, or
    /// central's launch estimate); used when the history is too short.
    pub prior_daily: Option<f64>,
}

/// How the forecast was made.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Method {
    /// Damped additive trend on the weekday- and signal-adjusted series (SES when beta = 0).
    DampedTrend { alpha: f64, beta: f64, phi: f64 },
    /// Teunter–Syntetos–Babai: demand probability and size smoothed separately.
    Tsb {
        alpha_probability: f64,
        alpha_size: f64,
    },
    /// Short history blended with the category prior.
    CategoryPrior {
        prior_daily: f64,
        history_days: usize,
    },
    /// Short history, no prior: the mean of the usable days.
    HistoryMean { days: usize },
    /// Nothing to go on: zero, and the reason says so.
    NoData,
}

impl Method {
    /// Stable short name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Method::DampedTrend { beta, .. } if *beta == 0.0 => "ses",
            Method::DampedTrend { .. } => "damped_trend",
            Method::Tsb { .. } => "tsb",
            Method::CategoryPrior { .. } => "category_prior",
            Method::HistoryMean { .. } => "history_mean",
            Method::NoData => "no_data",
        }
    }
}

/// Why the model was not fitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum FallbackReason {
    /// Fewer usable days than required (new SKU, or mostly stock-outs).
    ShortHistory { usable_days: usize, required: usize },
    /// No usable day and no prior.
    NoHistoryNoPrior,
}

impl std::fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FallbackReason::ShortHistory {
                usable_days,
                required,
            } => write!(
                f,
                "{usable_days} usable days of history, {required} needed to fit"
            ),
            FallbackReason::NoHistoryNoPrior => {
                f.write_str("no usable history and no prior: forecast is zero")
            }
        }
    }
}

/// One forecast day.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForecastDay {
    pub date: NaiveDate,
    /// Expected demand (units), signals included.
    pub mean: f64,
    /// Standard error of that day's demand, for safety stock.
    pub sd: f64,
    /// Product of the demand signals applied to the day.
    pub signal_multiplier: f64,
}

/// How well the model fits its own history.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct FitStats {
    /// Root mean square of the one-step errors, in adjusted units (signals and weekday out).
    pub rmse: f64,
    /// Mean absolute one-step error, same units.
    pub mae: f64,
    /// Days the model was fitted on.
    pub usable_days: usize,
    /// Stock-out days among them.
    pub censored_days: usize,
}

/// A SKU's forecast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    pub days: Vec<ForecastDay>,
    pub method: Method,
    /// Set when a fallback rule was used instead of a fitted model.
    pub fallback: Option<FallbackReason>,
    pub fit: FitStats,
    /// Weekday factors, Monday first (all 1 for fallbacks).
    pub weekday_factors: [f64; 7],
}

impl Forecast {
    /// The daily means.
    pub fn means(&self) -> Vec<f64> {
        self.days.iter().map(|d| d.mean).collect()
    }

    /// Sum of the means over the first `days` days.
    pub fn total(&self, days: usize) -> f64 {
        self.days.iter().take(days).map(|d| d.mean).sum()
    }
}

struct Series {
    /// Adjusted demand: sales ÷ signal multiplier ÷ weekday factor.
    z: Vec<f64>,
    /// Factor that turns adjusted units back into units (multiplier × weekday factor).
    scale: Vec<f64>,
    usable: Vec<bool>,
    censored: Vec<bool>,
}

#[derive(Clone, Copy)]
enum Candidate {
    Holt { alpha: f64, beta: f64 },
    Tsb { ap: f64, az: f64 },
}

struct Fitted {
    /// Squared one-step errors (for the error measure).
    sse: f64,
    /// Squared 1..=SELECT_HORIZON-step errors (for choosing the smoother).
    select: f64,
    sae: f64,
    n: usize,
    /// Adjusted forecast for h = 1.. (index h-1).
    path_level: f64,
    path_trend: f64,
    tsb: Option<(f64, f64)>,
}

const HOLT_ALPHAS: [f64; 7] = [0.03, 0.06, 0.1, 0.15, 0.22, 0.32, 0.45];
const HOLT_BETAS: [f64; 3] = [0.0, 0.04, 0.12];
const TSB_AP: [f64; 4] = [0.02, 0.05, 0.1, 0.2];
const TSB_AZ: [f64; 4] = [0.05, 0.1, 0.2, 0.3];
const BURN_IN: usize = 7;
/// Days ahead over which candidate smoothers are compared.
const SELECT_HORIZON: usize = 7;

fn usable(o: &DailyObservation) -> bool {
    o.existed && o.sold.is_finite() && o.sold >= 0.0 && o.sold <= MAX_DAILY_UNITS
}

/// Forecasts `horizon` days from `start` for one SKU.
///
/// `history` holds the SKU's days before `start` in any order (later days and duplicates after
/// the first are ignored); `signals` holds past and future signals — past ones are divided out
/// of the history, future ones multiplied into the forecast. Every mean and sd is finite and
/// `>= 0`.
pub fn forecast_sku(
    history: &[DailyObservation],
    ctx: &SkuContext<'_>,
    signals: &[DemandSignal],
    start: NaiveDate,
    horizon: usize,
    config: &ForecastConfig,
) -> Forecast {
    let sku_signals = SkuSignals::for_sku(signals, ctx.sku, ctx.category);
    let window_start = start - chrono::Days::new(config.max_window_days.max(1) as u64);
    let first = history
        .iter()
        .filter(|o| o.date >= window_start && o.date < start && usable(o))
        .map(|o| o.date)
        .min();
    let Some(first) = first else {
        return fallback(&[], &[], ctx, &sku_signals, start, horizon, config);
    };
    let n = (start - first).num_days() as usize;
    let mut y = vec![0.0; n];
    let mut mult = vec![1.0; n];
    let mut ok = vec![false; n];
    let mut cens = vec![false; n];
    let mut seen = vec![false; n];
    for o in history {
        if o.date < first || o.date >= start {
            continue;
        }
        let i = (o.date - first).num_days() as usize;
        if seen[i] {
            continue;
        }
        seen[i] = true;
        if usable(o) {
            ok[i] = true;
            y[i] = o.sold;
            cens[i] = o.stocked_out;
        }
    }
    if !sku_signals.is_empty() {
        for (i, m) in mult.iter_mut().enumerate() {
            *m = sku_signals.multiplier(first + chrono::Days::new(i as u64));
        }
    }
    let usable_days = ok.iter().filter(|&&b| b).count();
    let uncensored = (0..n).filter(|&i| ok[i] && !cens[i]).count();
    let treat_as_demand = !config.impute_censored;
    let effective = if treat_as_demand {
        usable_days
    } else {
        uncensored
    };
    if effective < config.min_history_days {
        let x: Vec<f64> = (0..n).filter(|&i| ok[i]).map(|i| y[i] / mult[i]).collect();
        let c: Vec<bool> = (0..n)
            .filter(|&i| ok[i])
            .map(|i| cens[i] && !treat_as_demand)
            .collect();
        let mut f = fallback(&x, &c, ctx, &sku_signals, start, horizon, config);
        f.fallback = Some(FallbackReason::ShortHistory {
            usable_days: effective,
            required: config.min_history_days,
        });
        return f;
    }
    if treat_as_demand {
        cens.iter_mut().for_each(|c| *c = false);
    }
    let x: Vec<f64> = (0..n)
        .map(|i| if ok[i] { y[i] / mult[i] } else { 0.0 })
        .collect();
    let first_wd = first.weekday().num_days_from_monday() as usize;
    let wd = |i: usize| (first_wd + i) % 7;
    let factors = weekday_factors(&x, &ok, &cens, wd, config);
    let series = Series {
        z: (0..n).map(|i| x[i] / factors[wd(i)]).collect(),
        scale: (0..n).map(|i| mult[i] * factors[wd(i)]).collect(),
        usable: ok,
        censored: cens,
    };
    let zero_share = {
        let (zeros, total) = (0..n)
            .filter(|&i| series.usable[i] && !series.censored[i])
            .fold((0usize, 0usize), |(z, t), i| {
                (z + usize::from(y[i] == 0.0), t + 1)
            });
        zeros as f64 / total.max(1) as f64
    };
    let mut damp_sums = [0.0; SELECT_HORIZON];
    let mut acc = 0.0;
    for (k, d) in damp_sums.iter_mut().enumerate() {
        acc += config.damping.powi(k as i32 + 1);
        *d = acc;
    }
    let mut best: Option<(Candidate, Fitted)> = None;
    let mut consider = |cand: Candidate| {
        let fit = run(&series, cand, config.damping, &damp_sums);
        let better = match &best {
            None => true,
            Some((_, b)) => fit.select < b.select * (1.0 - 1e-9),
        };
        if better {
            best = Some((cand, fit));
        }
    };
    for &alpha in &HOLT_ALPHAS {
        for &beta in &HOLT_BETAS {
            consider(Candidate::Holt { alpha, beta });
        }
    }
    if zero_share >= config.intermittent_zero_share {
        for &ap in &TSB_AP {
            for &az in &TSB_AZ {
                consider(Candidate::Tsb { ap, az });
            }
        }
    }
    let Some((cand, fit)) = best else {
        return fallback(&[], &[], ctx, &sku_signals, start, horizon, config);
    };
    let rmse = if fit.n > 0 {
        (fit.sse / fit.n as f64).sqrt()
    } else {
        0.0
    };
    let mae = if fit.n > 0 {
        fit.sae / fit.n as f64
    } else {
        0.0
    };
    let (method, alpha) = match cand {
        Candidate::Holt { alpha, beta } => (
            Method::DampedTrend {
                alpha,
                beta,
                phi: config.damping,
            },
            alpha,
        ),
        Candidate::Tsb { ap, az } => (
            Method::Tsb {
                alpha_probability: ap,
                alpha_size: az,
            },
            ap.max(az),
        ),
    };
    let start_wd = start.weekday().num_days_from_monday() as usize;
    let mut damp_sum = 0.0;
    let mut damp = 1.0;
    let days = (0..horizon)
        .map(|h| {
            let date = start + chrono::Days::new(h as u64);
            damp *= config.damping;
            damp_sum += damp;
            let adjusted = match fit.tsb {
                Some((p, q)) => p * q,
                None => fit.path_level + fit.path_trend * damp_sum,
            }
            .max(0.0);
            let m = sku_signals.multiplier(date);
            let scale = m * factors[(start_wd + h) % 7];
            let growth = (1.0 + h as f64 * alpha * alpha).sqrt();
            ForecastDay {
                date,
                mean: finite_or_zero(adjusted * scale),
                sd: finite_or_zero(rmse * scale * growth),
                signal_multiplier: m,
            }
        })
        .collect();
    Forecast {
        days,
        method,
        fallback: None,
        fit: FitStats {
            rmse: finite_or_zero(rmse),
            mae: finite_or_zero(mae),
            usable_days,
            censored_days: series.censored.iter().filter(|&&c| c).count(),
        },
        weekday_factors: factors,
    }
}

fn finite_or_zero(v: f64) -> f64 {
    if v.is_finite() && v > 0.0 { v } else { 0.0 }
}

/// Weekday factors: recency-weighted ratio of each weekday's adjusted sales to the centred
/// 7-day mean, pulled towards 1 by `weekday_prior_units`, normalised to average 1.
fn weekday_factors(
    x: &[f64],
    ok: &[bool],
    cens: &[bool],
    wd: impl Fn(usize) -> usize,
    config: &ForecastConfig,
) -> [f64; 7] {
    let n = x.len();
    let clean = |i: usize| ok[i] && !cens[i];
    let mut num = [0.0; 7];
    let mut den = [0.0; 7];
    let decay = 0.5f64.powf(1.0 / config.weekday_half_life_days.max(1.0));
    let mut weight = 1.0;
    // Walk backwards so the newest day has weight 1.
    let mut i = n;
    // Running sums over the centred window [i-3, i+3].
    while i > 0 {
        i -= 1;
        if !clean(i) {
            weight *= decay;
            continue;
        }
        let lo = i.saturating_sub(3);
        let hi = (i + 3).min(n - 1);
        let (mut s, mut c) = (0.0, 0usize);
        for (j, v) in x.iter().enumerate().take(hi + 1).skip(lo) {
            if clean(j) {
                s += v;
                c += 1;
            }
        }
        if c >= 5 {
            num[wd(i)] += weight * x[i];
            den[wd(i)] += weight * s / c as f64;
        }
        weight *= decay;
    }
    let prior = config.weekday_prior_units.max(0.0);
    let mut f = [1.0; 7];
    for d in 0..7 {
        let v = (num[d] + prior) / (den[d] + prior);
        f[d] = if v.is_finite() && v > 0.0 { v } else { 1.0 };
    }
    let mean = f.iter().sum::<f64>() / 7.0;
    for v in &mut f {
        *v = (*v / mean).clamp(0.05, 20.0);
    }
    f
}

/// Post-update states of the last [`SELECT_HORIZON`] usable days, newest first.
struct Ring {
    states: [(f64, f64); SELECT_HORIZON],
    len: usize,
}

impl Ring {
    fn new() -> Self {
        Ring {
            states: [(0.0, 0.0); SELECT_HORIZON],
            len: 0,
        }
    }

    fn push(&mut self, state: (f64, f64)) {
        self.states.copy_within(0..SELECT_HORIZON - 1, 1);
        self.states[0] = state;
        self.len = (self.len + 1).min(SELECT_HORIZON);
    }
}

/// Runs one smoother over the series, imputing censored days from the one-step prediction.
/// Scores it on the squared errors of the 1- to [`SELECT_HORIZON`]-day-ahead predictions (the
/// forecast is used a week ahead, so a smoother that only chases yesterday is not rewarded).
fn run(s: &Series, cand: Candidate, phi: f64, damp_sums: &[f64; SELECT_HORIZON]) -> Fitted {
    let n = s.z.len();
    let init_idx: Vec<usize> = (0..n)
        .filter(|&i| s.usable[i] && !s.censored[i])
        .take(14)
        .collect();
    let init = if init_idx.is_empty() {
        0.0
    } else {
        init_idx.iter().map(|&i| s.z[i]).sum::<f64>() / init_idx.len() as f64
    };
    let (mut sse, mut sae, mut count, mut seen, mut select) = (0.0, 0.0, 0usize, 0usize, 0.0);
    let mut ring = Ring::new();
    let mut score = |ring: &Ring, obs: f64, err: f64, flat: bool| {
        seen += 1;
        if seen > BURN_IN {
            sse += err * err;
            sae += err.abs();
            count += 1;
            for (&(l, b), damp_sum) in ring.states.iter().zip(damp_sums).take(ring.len) {
                let pred = if flat { l } else { (l + b * damp_sum).max(0.0) };
                select += (obs - pred) * (obs - pred);
            }
        }
    };
    match cand {
        Candidate::Holt { alpha, beta } => {
            let (mut level, mut trend) = (init, 0.0);
            for i in 0..n {
                if !s.usable[i] {
                    continue;
                }
                let pred = (level + phi * trend).max(0.0);
                let obs = if s.censored[i] {
                    poisson_mean_at_least(pred * s.scale[i], s.z[i] * s.scale[i]) / s.scale[i]
                } else {
                    s.z[i]
                };
                let err = obs - pred;
                if !s.censored[i] {
                    score(&ring, obs, err, false);
                }
                level = (pred + alpha * err).max(0.0);
                trend = phi * trend + alpha * beta * err;
                ring.push((level, trend));
            }
            Fitted {
                sse,
                sae,
                n: count,
                select,
                path_level: level,
                path_trend: trend,
                tsb: None,
            }
        }
        Candidate::Tsb { ap, az } => {
            let nonzero: Vec<f64> = init_idx
                .iter()
                .map(|&i| s.z[i])
                .filter(|&v| v > 0.0)
                .collect();
            let mut p = nonzero.len() as f64 / init_idx.len().max(1) as f64;
            let mut q = if nonzero.is_empty() {
                init.max(1e-3)
            } else {
                nonzero.iter().sum::<f64>() / nonzero.len() as f64
            };
            for i in 0..n {
                if !s.usable[i] {
                    continue;
                }
                let pred = p * q;
                if s.censored[i] {
                    // Update with the expected occurrence and size given demand >= sales.
                    let mean = pred * s.scale[i];
                    let sold = s.z[i] * s.scale[i];
                    let (occ, size) = if sold > 0.0 {
                        (1.0, poisson_mean_at_least(mean, sold) / s.scale[i])
                    } else if mean > 0.0 {
                        let p_pos = 1.0 - (-mean).exp();
                        (p_pos, poisson_mean_at_least(mean, 1.0) / s.scale[i])
                    } else {
                        (p, q)
                    };
                    p += ap * (occ - p);
                    q += az * occ * (size - q);
                    ring.push((p * q, 0.0));
                    continue;
                }
                let obs = s.z[i];
                score(&ring, obs, obs - pred, true);
                if obs > 0.0 {
                    p += ap * (1.0 - p);
                    q += az * (obs - q);
                } else {
                    p -= ap * p;
                }
                ring.push((p * q, 0.0));
            }
            Fitted {
                sse,
                sae,
                n: count,
                select,
                path_level: p * q,
                path_trend: 0.0,
                tsb: Some((p, q)),
            }
        }
    }
}

/// The stated fallback: the prior blended with what exists, else the mean of what exists,
/// else zero. `x` are signal-adjusted usable days, `censored` marks stock-out days among them.
fn fallback(
    x: &[f64],
    censored: &[bool],
    ctx: &SkuContext<'_>,
    signals: &SkuSignals<'_>,
    start: NaiveDate,
    horizon: usize,
    config: &ForecastConfig,
) -> Forecast {
    // Stock-out days count only where they sold more than the clean days' mean (a lower bound
    // above the estimate raises it; one below says nothing).
    let clean: Vec<f64> = x
        .iter()
        .zip(censored)
        .filter(|(_, c)| !**c)
        .map(|(v, _)| *v)
        .collect();
    let clean_mean = (!clean.is_empty()).then(|| clean.iter().sum::<f64>() / clean.len() as f64);
    let values: Vec<f64> = x
        .iter()
        .zip(censored)
        .map(|(v, c)| match (c, clean_mean) {
            (true, Some(m)) => v.max(m),
            _ => *v,
        })
        .collect();
    let n = values.len();
    let sum: f64 = values.iter().sum();
    let prior = ctx.prior_daily.filter(|p| p.is_finite() && *p >= 0.0);
    let (level, method, reason) = match (prior, n) {
        (Some(p), _) => {
            let w = config.prior_weight_days.max(0.0);
            let level = if n as f64 + w > 0.0 {
                (sum + w * p) / (n as f64 + w)
            } else {
                p
            };
            (
                level,
                Method::CategoryPrior {
                    prior_daily: p,
                    history_days: n,
                },
                None,
            )
        }
        (None, 0) => (0.0, Method::NoData, Some(FallbackReason::NoHistoryNoPrior)),
        (None, n) => (sum / n as f64, Method::HistoryMean { days: n }, None),
    };
    let var = if n >= 3 {
        values.iter().map(|v| (v - level).powi(2)).sum::<f64>() / (n - 1) as f64
    } else {
        0.0
    };
    // Poisson spread at least, and wider with little data.
    let sd = var.max(level).sqrt() * (1.0 + 1.0 / (n as f64 + 1.0).sqrt());
    let days = (0..horizon)
        .map(|h| {
            let date = start + chrono::Days::new(h as u64);
            let m = signals.multiplier(date);
            ForecastDay {
                date,
                mean: finite_or_zero(level * m),
                sd: finite_or_zero(sd * m),
                signal_multiplier: m,
            }
        })
        .collect();
    Forecast {
        days,
        method,
        fallback: Some(reason.unwrap_or(FallbackReason::ShortHistory {
            usable_days: n,
            required: config.min_history_days,
        })),
        fit: FitStats {
            rmse: finite_or_zero(sd),
            mae: 0.0,
            usable_days: n,
            censored_days: censored.iter().filter(|&&c| c).count(),
        },
        weekday_factors: [1.0; 7],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::{SignalKind, SignalScope};
    use proptest::prelude::*;

    fn day0() -> NaiveDate {
        // A Monday.
        NaiveDate::from_ymd_opt(2026, 1, 5).unwrap()
    }

    fn history(values: &[f64], stocked_out: impl Fn(usize) -> bool) -> Vec<DailyObservation> {
        values
            .iter()
            .enumerate()
            .map(|(i, &sold)| DailyObservation {
                date: day0() + chrono::Days::new(i as u64),
                sold,
                stocked_out: stocked_out(i),
                existed: true,
            })
            .collect()
    }

    fn ctx(prior: Option<f64>) -> SkuContext<'static> {
        SkuContext {
            sku: "MILK",
            category: "dairy",
            prior_daily: prior,
        }
    }

    fn run_forecast(
        h: &[DailyObservation],
        signals: &[DemandSignal],
        config: &ForecastConfig,
    ) -> Forecast {
        let start = h.last().map_or(day0(), |o| o.date + chrono::Days::new(1));
        forecast_sku(h, &ctx(None), signals, start, 14, config)
    }

    /// A noisy but fixed pattern around `level`.
    fn pattern(level: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                (level * (1.0 + 0.3 * ((i * 7919 % 13) as f64 / 6.0 - 1.0)))
                    .round()
                    .max(0.0)
            })
            .collect()
    }

    #[test]
    fn censored_days_raise_the_forecast_above_sales_taken_as_demand() {
        // (level, every k-th day a stock-out selling a fraction of the day's demand)
        for (level, every, share) in [
            (10.0, 4, 0.4),
            (40.0, 3, 0.6),
            (2.0, 5, 0.0),
            (25.0, 7, 0.5),
            (0.8, 4, 0.0),
        ] {
            let demand = pattern(level, 70);
            let sold: Vec<f64> = demand
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    if i % every == 0 {
                        (d * share).floor()
                    } else {
                        *d
                    }
                })
                .collect();
            let h = history(&sold, |i| i % every == 0);
            let imputed = run_forecast(&h, &[], &ForecastConfig::default());
            let naive = run_forecast(
                &h,
                &[],
                &ForecastConfig {
                    impute_censored: false,
                    ..ForecastConfig::default()
                },
            );
            assert!(
                imputed.total(7) > naive.total(7),
                "level {level}: imputed {} vs sales-as-demand {}",
                imputed.total(7),
                naive.total(7)
            );
            // And close to the true demand: within 8 % over a week.
            let truth = demand.iter().sum::<f64>() / demand.len() as f64 * 7.0;
            assert!(
                (imputed.total(7) - truth).abs() < 0.08 * truth + 0.3,
                "level {level}: {} vs true {truth}",
                imputed.total(7)
            );
            assert_eq!(
                imputed.fit.censored_days,
                h.iter().filter(|o| o.stocked_out).count()
            );
        }
    }

    #[test]
    fn short_history_falls_back_to_a_stated_rule() {
        let h = history(&[4.0, 6.0, 5.0, 5.0, 6.0, 4.0, 5.0, 5.0, 5.0, 5.0], |_| {
            false
        });
        let start = day0() + chrono::Days::new(10);
        let f = forecast_sku(&h, &ctx(None), &[], start, 7, &ForecastConfig::default());
        assert_eq!(f.method, Method::HistoryMean { days: 10 });
        assert_eq!(
            f.fallback,
            Some(FallbackReason::ShortHistory {
                usable_days: 10,
                required: 14
            })
        );
        assert!(
            f.days
                .iter()
                .all(|d| (d.mean - 5.0).abs() < 1e-9 && d.sd > 0.0)
        );
        // With a prior: blended, weight 7 days.
        let f = forecast_sku(
            &h,
            &ctx(Some(12.0)),
            &[],
            start,
            7,
            &ForecastConfig::default(),
        );
        assert_eq!(
            f.method,
            Method::CategoryPrior {
                prior_daily: 12.0,
                history_days: 10
            }
        );
        assert!((f.days[0].mean - (50.0 + 7.0 * 12.0) / 17.0).abs() < 1e-9);
        // A new SKU: the prior alone, never a silent zero.
        let f = forecast_sku(
            &[],
            &ctx(Some(3.0)),
            &[],
            start,
            3,
            &ForecastConfig::default(),
        );
        assert_eq!(f.means(), vec![3.0; 3]);
        assert!(matches!(
            f.fallback,
            Some(FallbackReason::ShortHistory { usable_days: 0, .. })
        ));
        // Nothing at all: zero, with the reason saying so.
        let f = forecast_sku(&[], &ctx(None), &[], start, 3, &ForecastConfig::default());
        assert_eq!(
            (f.method, f.fallback),
            (Method::NoData, Some(FallbackReason::NoHistoryNoPrior))
        );
        assert!(f.fallback.unwrap().to_string().contains("zero"));
        // Mostly stock-outs: the clean days count, not the listed ones.
        let h = history(&pattern(10.0, 30), |i| i % 3 != 0);
        let f = run_forecast(&h, &[], &ForecastConfig::default());
        assert!(
            matches!(
                f.fallback,
                Some(FallbackReason::ShortHistory {
                    usable_days: 10,
                    ..
                })
            ),
            "{:?}",
            f.fallback
        );
    }

    #[test]
    fn enough_history_fits_a_model_with_weekday_factors() {
        let weekday: [f64; 7] = [1.0, 0.9, 0.9, 1.0, 1.2, 1.6, 0.8];
        let sold: Vec<f64> = (0..84).map(|i| (20.0 * weekday[i % 7]).round()).collect();
        let h = history(&sold, |_| false);
        let f = run_forecast(&h, &[], &ForecastConfig::default());
        assert_eq!(f.fallback, None);
        assert!(
            matches!(f.method, Method::DampedTrend { .. }),
            "{:?}",
            f.method
        );
        // Day 84 is a Monday again: Saturday (index 5) is the peak.
        let sat = f.days[5].mean;
        let tue = f.days[1].mean;
        assert!(sat > 1.5 * tue, "saturday {sat} tuesday {tue}");
        assert!(
            (f.total(7) - sold[..7].iter().sum::<f64>()).abs() < 3.0,
            "{}",
            f.total(7)
        );
    }

    #[test]
    fn slow_sellers_may_use_tsb_and_stay_positive() {
        let sold: Vec<f64> = (0..90)
            .map(|i| {
                if i % 4 == 0 {
                    1.0
                } else if i % 11 == 0 {
                    2.0
                } else {
                    0.0
                }
            })
            .collect();
        let f = run_forecast(&history(&sold, |_| false), &[], &ForecastConfig::default());
        let mean = sold.iter().sum::<f64>() / sold.len() as f64;
        assert!(f.days.iter().all(|d| d.mean > 0.0));
        assert!(
            (f.total(7) / 7.0 - mean).abs() < 0.2,
            "{} vs {mean}",
            f.total(7) / 7.0
        );
    }

    #[test]
    fn signals_are_divided_out_of_history_and_multiplied_into_the_forecast() {
        let n = 70;
        let promo_days = 40..44;
        let sold: Vec<f64> = (0..n)
            .map(|i| if promo_days.contains(&i) { 30.0 } else { 10.0 })
            .collect();
        let h = history(&sold, |_| false);
        let start = day0() + chrono::Days::new(n as u64);
        let at = |i: u64| day0() + chrono::Days::new(i);
        let signals = vec![
            DemandSignal {
                id: "past-promo".into(),
                kind: SignalKind::Promotion {
                    reserve_fraction: 0.2,
                },
                start: at(40),
                end: at(43),
                scope: SignalScope::Skus(vec!["MILK".into()]),
                multiplier: 3.0,
            },
            DemandSignal {
                id: "coming-festival".into(),
                kind: SignalKind::Holiday,
                start: at(n as u64 + 2),
                end: at(n as u64 + 2),
                scope: SignalScope::Category("dairy".into()),
                multiplier: 2.0,
            },
        ];
        let with = forecast_sku(
            &h,
            &ctx(None),
            &signals,
            start,
            7,
            &ForecastConfig::default(),
        );
        let without = forecast_sku(&h, &ctx(None), &[], start, 7, &ForecastConfig::default());
        assert!(
            (with.days[0].mean - 10.0).abs() < 0.5,
            "past promo divided out: {}",
            with.days[0].mean
        );
        assert!(
            (with.days[2].mean - 2.0 * with.days[1].mean).abs() < 1.0,
            "{:?}",
            with.means()
        );
        assert_eq!(with.days[2].signal_multiplier, 2.0);
        assert!(
            without.days[0].mean > with.days[0].mean,
            "without the signal the promo inflates the level"
        );
    }

    fn any_observation() -> impl Strategy<Value = (f64, bool, bool)> {
        (
            prop_oneof![
                8 => 0.0f64..500.0,
                1 => Just(0.0),
                1 => prop_oneof![Just(f64::NAN), Just(-3.0), Just(f64::INFINITY), Just(1e15)],
            ],
            proptest::bool::weighted(0.2),
            proptest::bool::weighted(0.9),
        )
    }

    proptest! {
        /// Any history, any flags, any gaps and order: every mean and sd is finite and >= 0.
        #[test]
        fn forecasts_are_finite_and_non_negative(
            obs in proptest::collection::vec((0u64..200, any_observation()), 0..160),
            prior in proptest::option::of(0.0f64..100.0),
            multiplier in 0.01f64..20.0,
            impute in proptest::bool::ANY,
        ) {
            let history: Vec<DailyObservation> = obs
                .iter()
                .map(|(d, (sold, out, existed))| DailyObservation {
                    date: day0() + chrono::Days::new(*d),
                    sold: *sold,
                    stocked_out: *out,
                    existed: *existed,
                })
                .collect();
            let signals = [DemandSignal {
                id: "s".into(),
                kind: SignalKind::Weather,
                start: day0() + chrono::Days::new(50),
                end: day0() + chrono::Days::new(210),
                scope: SignalScope::All,
                multiplier,
            }];
            let config = ForecastConfig { impute_censored: impute, ..ForecastConfig::default() };
            let f = forecast_sku(&history, &ctx(prior), &signals, day0() + chrono::Days::new(200), 21, &config);
            prop_assert_eq!(f.days.len(), 21);
            for d in &f.days {
                prop_assert!(d.mean.is_finite() && d.mean >= 0.0, "{:?}", d);
                prop_assert!(d.sd.is_finite() && d.sd >= 0.0, "{:?}", d);
            }
            prop_assert!(f.fit.rmse.is_finite());
            if f.fallback.is_none() {
                let fitted = matches!(f.method, Method::DampedTrend { .. } | Method::Tsb { .. });
                prop_assert!(fitted, "{:?}", f.method);
            }
        }
    }
}

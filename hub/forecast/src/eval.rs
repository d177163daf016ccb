//! Forecast quality: WAPE and MASE on hold-out windows, the seasonal-naive baseline (same
//! weekday last week), and a rolling-origin evaluation over a generated site that scores the
//! hub's forecast, the baseline and any external forecast (e.g. the Python ETS baseline) on the
//! very same SKU-days.
//!
//! Actuals are the generator's *true* demand on listed days — what replenishment needs to
//! meet — not the censored sales. Pure: no I/O, no clock.

use crate::generator::SiteHistory;
use crate::model::{DailyObservation, ForecastConfig, SkuContext, forecast_sku};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Weighted absolute percentage error: `Σ|forecast − actual| ÷ Σ actual`; `None` when the
/// actuals sum to 0 or the lengths differ.
pub fn wape(forecast: &[f64], actual: &[f64]) -> Option<f64> {
    if forecast.len() != actual.len() {
        return None;
    }
    let total: f64 = actual.iter().sum();
    (total > 0.0).then(|| {
        forecast
            .iter()
            .zip(actual)
            .map(|(f, a)| (f - a).abs())
            .sum::<f64>()
            / total
    })
}

/// Mean absolute scaled error: the forecast's MAE ÷ the in-sample MAE of the seasonal naive
/// forecast (lag `season`) over `training`; `None` when that scale is 0 or undefined.
pub fn mase(forecast: &[f64], actual: &[f64], training: &[f64], season: usize) -> Option<f64> {
    if forecast.len() != actual.len() || forecast.is_empty() || training.len() <= season {
        return None;
    }
    let scale = training
        .windows(season + 1)
        .map(|w| (w[season] - w[0]).abs())
        .sum::<f64>()
        / (training.len() - season) as f64;
    let mae = forecast
        .iter()
        .zip(actual)
        .map(|(f, a)| (f - a).abs())
        .sum::<f64>()
        / forecast.len() as f64;
    (scale > 0.0).then(|| mae / scale)
}

/// Seasonal naive forecast: each day gets the sales of the latest listed day with the same
/// weekday before `start` (0 when there is none).
pub fn seasonal_naive(history: &[DailyObservation], start: NaiveDate, horizon: usize) -> Vec<f64> {
    (0..horizon)
        .map(|h| {
            let target = start + chrono::Days::new(h as u64);
            history
                .iter()
                .filter(|o| o.existed && o.date < start && (target - o.date).num_days() % 7 == 0)
                .max_by_key(|o| o.date)
                .map_or(0.0, |o| o.sold.max(0.0))
        })
        .collect()
}

/// How the rolling-origin evaluation runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    /// Number of forecast origins.
    pub origins: usize,
    /// Days between origins; the last origin is `days − horizon`.
    pub step_days: usize,
    /// Days forecast from each origin.
    pub horizon: usize,
    /// Give the hub's forecast the demand signals (false for an ablation).
    pub use_signals: bool,
    pub forecast: ForecastConfig,
}

impl Default for EvalOptions {
    /// 8 weekly origins, 7 days ahead: the last 8 weeks are the hold-out.
    fn default() -> Self {
        EvalOptions {
            origins: 8,
            step_days: 7,
            horizon: 7,
            use_signals: true,
            forecast: ForecastConfig::default(),
        }
    }
}

/// One evaluated series: a SKU forecast from one origin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalCut {
    /// Index into `site.skus`.
    pub sku: usize,
    /// Day index of the first forecast day; the history is everything before it.
    pub origin: usize,
}

impl EvalCut {
    /// Series id used in the benchmark CSV: `<sku code>@<origin date>`.
    pub fn id(&self, site: &SiteHistory) -> String {
        format!(
            "{}@{}",
            site.skus[self.sku].profile.code,
            site.date(self.origin)
        )
    }
}

/// The cuts evaluated: every SKU listed the day before each origin and on some hold-out day.
pub fn evaluation_cuts(site: &SiteHistory, options: &EvalOptions) -> Vec<EvalCut> {
    let Some(last) = site.days.checked_sub(options.horizon) else {
        return vec![];
    };
    let mut cuts = Vec::new();
    for k in (0..options.origins).rev() {
        let Some(origin) = last.checked_sub(k * options.step_days) else {
            continue;
        };
        if origin == 0 {
            continue;
        }
        for (i, s) in site.skus.iter().enumerate() {
            let listed = |t: usize| s.observations.get(t).is_some_and(|o| o.existed);
            if listed(origin - 1) && (origin..origin + options.horizon).any(listed) {
                cuts.push(EvalCut { sku: i, origin });
            }
        }
    }
    cuts
}

/// Accuracy of one forecaster over the cuts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Accuracy {
    pub wape: f64,
    /// Mean of the per-series MASE (series with a defined scale).
    pub mase: f64,
    pub abs_error: f64,
    /// `Σ(forecast − actual) ÷ Σ actual`: above 0 forecasts too much.
    pub bias: f64,
}

/// Figures of a rolling-origin evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub hub: Accuracy,
    pub seasonal_naive: Accuracy,
    /// The generator's true daily means used as the forecast: the floor no forecaster beats
    /// on average (the rest is noise).
    pub true_mean: Accuracy,
    /// Series (SKU × origin) and SKU-days scored.
    pub series: usize,
    pub days: usize,
    pub actual_total: f64,
    /// How often each method was used, by name.
    pub methods: Vec<(String, usize)>,
    /// Series forecast by a fallback rule.
    pub fallbacks: usize,
}

struct Scorer {
    abs: f64,
    signed: f64,
    actual: f64,
    mase_sum: f64,
    mase_n: usize,
}

impl Scorer {
    fn new() -> Self {
        Scorer {
            abs: 0.0,
            signed: 0.0,
            actual: 0.0,
            mase_sum: 0.0,
            mase_n: 0,
        }
    }

    fn add(&mut self, forecast: &[f64], actual: &[f64], training: &[f64]) {
        self.abs += forecast
            .iter()
            .zip(actual)
            .map(|(f, a)| (f - a).abs())
            .sum::<f64>();
        self.signed += forecast.iter().zip(actual).map(|(f, a)| f - a).sum::<f64>();
        self.actual += actual.iter().sum::<f64>();
        if let Some(m) = mase(forecast, actual, training, 7) {
            self.mase_sum += m;
            self.mase_n += 1;
        }
    }

    fn accuracy(&self) -> Accuracy {
        Accuracy {
            wape: if self.actual > 0.0 {
                self.abs / self.actual
            } else {
                0.0
            },
            mase: if self.mase_n > 0 {
                self.mase_sum / self.mase_n as f64
            } else {
                0.0
            },
            abs_error: self.abs,
            bias: if self.actual > 0.0 {
                self.signed / self.actual
            } else {
                0.0
            },
        }
    }
}

/// Forecast days of a cut that are scored (listed days) with their true demand.
fn scored_days(site: &SiteHistory, cut: &EvalCut, horizon: usize) -> Vec<(usize, f64)> {
    let s = &site.skus[cut.sku];
    (0..horizon)
        .filter(|&h| {
            s.observations
                .get(cut.origin + h)
                .is_some_and(|o| o.existed)
        })
        .map(|h| (h, s.demand[cut.origin + h]))
        .collect()
}

fn training(site: &SiteHistory, cut: &EvalCut) -> Vec<f64> {
    site.skus[cut.sku].observations[..cut.origin]
        .iter()
        .filter(|o| o.existed)
        .map(|o| o.sold)
        .collect()
}

/// Rolling-origin evaluation of the hub's forecast and the seasonal naive baseline.
pub fn rolling_origin(site: &SiteHistory, options: &EvalOptions) -> EvalReport {
    let cuts = evaluation_cuts(site, options);
    let no_signals = [];
    let signals = if options.use_signals {
        &site.signals[..]
    } else {
        &no_signals[..]
    };
    let (mut hub, mut naive, mut floor) = (Scorer::new(), Scorer::new(), Scorer::new());
    let mut methods: HashMap<&'static str, usize> = HashMap::new();
    let (mut days, mut fallbacks) = (0, 0);
    for cut in &cuts {
        let s = &site.skus[cut.sku];
        let history = &s.observations[..cut.origin];
        let start = site.date(cut.origin);
        let ctx = SkuContext {
            sku: &s.profile.code,
            category: &s.profile.category,
            prior_daily: Some(s.profile.prior_daily),
        };
        let fc = forecast_sku(
            history,
            &ctx,
            signals,
            start,
            options.horizon,
            &options.forecast,
        );
        *methods.entry(fc.method.as_str()).or_default() += 1;
        fallbacks += usize::from(fc.fallback.is_some());
        let sn = seasonal_naive(history, start, options.horizon);
        let scored = scored_days(site, cut, options.horizon);
        let actual: Vec<f64> = scored.iter().map(|(_, a)| *a).collect();
        let train = training(site, cut);
        hub.add(
            &scored
                .iter()
                .map(|(h, _)| fc.days[*h].mean)
                .collect::<Vec<_>>(),
            &actual,
            &train,
        );
        naive.add(
            &scored.iter().map(|(h, _)| sn[*h]).collect::<Vec<_>>(),
            &actual,
            &train,
        );
        floor.add(
            &scored
                .iter()
                .map(|(h, _)| s.expected[cut.origin + h])
                .collect::<Vec<_>>(),
            &actual,
            &train,
        );
        days += scored.len();
    }
    let mut methods: Vec<(String, usize)> = methods
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    methods.sort();
    EvalReport {
        hub: hub.accuracy(),
        seasonal_naive: naive.accuracy(),
        true_mean: floor.accuracy(),
        series: cuts.len(),
        days,
        actual_total: hub.actual,
        methods,
        fallbacks,
    }
}

/// A forecast value read from an external forecaster's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExternalForecast {
    /// Series id, `<sku code>@<origin date>`.
    pub unique_id: String,
    pub date: NaiveDate,
    pub value: f64,
}

/// Why external forecasts could not be scored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoreError {
    #[error("{count} forecast values are missing, e.g. series {example_id} on {example_date}")]
    Missing {
        count: usize,
        example_id: String,
        example_date: NaiveDate,
    },
    #[error("series {id} on {date}: value {value} is not a finite number")]
    NotFinite {
        id: String,
        date: NaiveDate,
        value: f64,
    },
}

/// Scores external forecasts on the same cuts and days as [`rolling_origin`]. Negative values
/// are clipped to 0 (no demand is negative); a missing value is an error.
pub fn score_external(
    site: &SiteHistory,
    options: &EvalOptions,
    forecasts: &[ExternalForecast],
) -> Result<Accuracy, ScoreError> {
    let map: HashMap<(&str, NaiveDate), f64> = forecasts
        .iter()
        .map(|f| ((f.unique_id.as_str(), f.date), f.value))
        .collect();
    let mut scorer = Scorer::new();
    let mut missing: Vec<(String, NaiveDate)> = Vec::new();
    for cut in evaluation_cuts(site, options) {
        let id = cut.id(site);
        let scored = scored_days(site, &cut, options.horizon);
        let mut values = Vec::with_capacity(scored.len());
        for (h, _) in &scored {
            let date = site.date(cut.origin + h);
            match map.get(&(id.as_str(), date)) {
                Some(v) if !v.is_finite() => {
                    return Err(ScoreError::NotFinite {
                        id: id.clone(),
                        date,
                        value: *v,
                    });
                }
                Some(v) => values.push(v.max(0.0)),
                None => {
                    missing.push((id.clone(), date));
                    values.push(0.0);
                }
            }
        }
        let actual: Vec<f64> = scored.iter().map(|(_, a)| *a).collect();
        scorer.add(&values, &actual, &training(site, &cut));
    }
    if let Some((id, date)) = missing.first() {
        return Err(ScoreError::Missing {
            count: missing.len(),
            example_id: id.clone(),
            example_date: *date,
        });
    }
    Ok(scorer.accuracy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wape_and_mase_by_hand() {
        assert_eq!(wape(&[1.0, 3.0], &[2.0, 2.0]), Some(0.5));
        assert_eq!(wape(&[1.0], &[0.0]), None);
        assert_eq!(wape(&[1.0], &[1.0, 2.0]), None);
        // Training with a weekly lag-7 naive error of 2 on average; forecast MAE 1.
        let training: Vec<f64> = (0..14).map(|i| if i < 7 { 10.0 } else { 12.0 }).collect();
        assert_eq!(mase(&[11.0, 13.0], &[12.0, 12.0], &training, 7), Some(0.5));
        assert_eq!(mase(&[1.0], &[1.0], &[5.0; 10], 7), None);
    }

    #[test]
    fn seasonal_naive_repeats_last_week() {
        let start = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let history: Vec<DailyObservation> = (1..=14)
            .map(|k| DailyObservation {
                date: start - chrono::Days::new(k),
                sold: k as f64,
                stocked_out: false,
                existed: true,
            })
            .collect();
        // start − 7 sold 7; start + 1 matches start − 6 (sold 6).
        assert_eq!(seasonal_naive(&history, start, 3), vec![7.0, 6.0, 5.0]);
        assert_eq!(seasonal_naive(&[], start, 2), vec![0.0, 0.0]);
    }
}

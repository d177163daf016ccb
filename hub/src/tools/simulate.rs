//! `hub simulate`: the what-if simulator of the site (`hub_forecast::simulate`). It replays a
//! demand history day by day — the site's own journal or a generated site — under several
//! policies side by side (today's trailing-average tiers, the forecast policy, the
//! perfect-foresight oracle) with the thresholds, lead times and shelf lives given as flags or
//! in a TOML file, and prints stock-out rate, turnover, loss rate, units short and requests as
//! a table and a text chart (`--svg` also writes an SVG chart, `--json` the figures).
//!
//! The journal's history: a SKU's days as the forecast reads them (`store::demand`); its
//! demand is what was handed over (on stock-out days that is a lower bound, so the replay is
//! kind to every policy alike); its shelf life is that of its latest receipt (category
//! `fresh` up to 7 days, `long_life` beyond or when unknown); gram SKUs are counted in kg.
//! The master data has no prices, so stock and flows are weighed per unit.

use hub_forecast::{
    CoverTiers, DailyObservation, GeneratorConfig, Policy, SimConfig, SimReport, SiteHistory,
    SkuHistory, SkuProfile, Tier, generate, simulate,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Settings from a TOML file (`--settings`); every key optional, flags win.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulateSettings {
    pub sim_days: Option<i64>,
    pub lead_time_days: Option<i64>,
    pub review_days: Option<i64>,
    pub service_target: Option<f64>,
    pub yellow: Option<f64>,
    pub orange: Option<f64>,
    pub red: Option<f64>,
    pub hysteresis: Option<f64>,
    pub target_days: Option<f64>,
    pub replenish_at: Option<String>,
    pub window_days: Option<i64>,
    pub opening_cover_days: Option<f64>,
    /// Shelf life in days per category, replacing the SKUs' own.
    #[serde(default)]
    pub shelf_life_days: BTreeMap<String, i64>,
    /// Policies to run: `trailing_average`, `forecast`, `oracle` (default all three).
    pub policies: Option<Vec<String>>,
}

impl SimulateSettings {
    /// Reads a settings file; unknown keys and wrong types are refused with the file's words.
    pub fn load(path: &std::path::Path) -> anyhow::Result<SimulateSettings> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("cannot read simulator settings {}: {e}", path.display())
        })?;
        toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "simulator settings {} are not valid: {e}; keys: sim_days, lead_time_days, review_days, service_target, yellow, orange, red, hysteresis, target_days, replenish_at, window_days, opening_cover_days, policies, [shelf_life_days]",
                path.display()
            )
        })
    }

    /// `other`'s keys over these.
    pub fn overlay(mut self, other: SimulateSettings) -> SimulateSettings {
        macro_rules! take {
            ($($f:ident),*) => { $( if other.$f.is_some() { self.$f = other.$f; } )* };
        }
        take!(
            sim_days,
            lead_time_days,
            review_days,
            service_target,
            yellow,
            orange,
            red,
            hysteresis,
            target_days,
            replenish_at,
            window_days,
            opening_cover_days,
            policies
        );
        self.shelf_life_days.extend(other.shelf_life_days);
        self
    }

    /// The simulator's configuration and the policies, or every problem at once.
    pub fn resolve(&self, history_days: usize) -> Result<(SimConfig, Vec<Policy>), Vec<String>> {
        let mut problems = Vec::new();
        let d = SimConfig::default();
        let t = CoverTiers::default();
        let replenish_at = match self.replenish_at.as_deref() {
            None | Some("red") => Tier::Red,
            Some("orange") => Tier::Orange,
            Some(other) => {
                problems.push(format!("replenish_at '{other}' must be orange or red"));
                Tier::Red
            }
        };
        let window_days = match self.window_days {
            None => t.window_days,
            Some(w) if w >= 1 => w as usize,
            Some(w) => {
                problems.push(format!("window_days is {w}: must be 1 or more"));
                t.window_days
            }
        };
        let config = SimConfig {
            sim_days: self.sim_days.unwrap_or(d.sim_days.min(history_days as i64)),
            lead_time_days: self.lead_time_days.unwrap_or(d.lead_time_days),
            review_days: self.review_days.unwrap_or(d.review_days),
            service_target: self.service_target.unwrap_or(d.service_target),
            tiers: CoverTiers {
                yellow: self.yellow.unwrap_or(t.yellow),
                orange: self.orange.unwrap_or(t.orange),
                red: self.red.unwrap_or(t.red),
                hysteresis: self.hysteresis.unwrap_or(t.hysteresis),
                replenish_at,
                target_days: self.target_days.unwrap_or(t.target_days),
                window_days,
            },
            shelf_life_override: self
                .shelf_life_days
                .iter()
                .map(|(c, d)| (c.clone(), *d))
                .collect(),
            opening_cover_days: self.opening_cover_days.unwrap_or(d.opening_cover_days),
            forecast: d.forecast,
        };
        if let Err(errors) = config.validate(history_days) {
            problems.extend(errors.iter().map(ToString::to_string));
        }
        let mut policies = Vec::new();
        for name in self.policies.clone().unwrap_or_else(|| {
            vec![
                "trailing_average".into(),
                "forecast".into(),
                "oracle".into(),
            ]
        }) {
            match name.as_str() {
                "trailing_average" | "trailing" => policies.push(Policy::TrailingAverage),
                "forecast" => policies.push(Policy::Forecast),
                "oracle" => policies.push(Policy::Oracle),
                other => problems.push(format!(
                    "policy '{other}' is not known; use trailing_average, forecast or oracle"
                )),
            }
        }
        if policies.is_empty() && problems.is_empty() {
            problems.push("no policy to simulate".into());
        }
        if problems.is_empty() {
            Ok((config, policies))
        } else {
            Err(problems)
        }
    }
}

/// Parses `CATEGORY=DAYS` (`--shelf-life fresh=3`).
pub fn parse_shelf_life(text: &str) -> Result<(String, i64), BadShelfLife> {
    let (category, days) = text
        .split_once('=')
        .ok_or_else(|| BadShelfLife::Shape(text.to_owned()))?;
    let days: i64 = days.trim().parse().map_err(|_| BadShelfLife::Days {
        days: days.to_owned(),
        text: text.to_owned(),
    })?;
    Ok((category.trim().to_owned(), days))
}

/// A `--shelf-life` that is not `CATEGORY=DAYS`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadShelfLife {
    #[error("'{0}' must be CATEGORY=DAYS, e.g. fresh=3")]
    Shape(String),
    #[error("'{days}' in '{text}' is not a whole number of days")]
    Days { days: String, text: String },
}

/// One policy's figures (fractions and days).
#[derive(Debug, Clone, Serialize)]
pub struct PolicyFigures {
    pub policy: &'static str,
    pub stockout_rate: f64,
    pub turnover_days: f64,
    pub loss_rate: f64,
    pub units_short: f64,
    pub requests: usize,
    pub stranded_days: usize,
    pub sku_days: usize,
}

impl PolicyFigures {
    pub fn of(report: &SimReport) -> PolicyFigures {
        let o = &report.overall;
        PolicyFigures {
            policy: report.policy.as_str(),
            stockout_rate: o.stockout_rate,
            turnover_days: o.turnover_days,
            loss_rate: o.loss_rate,
            units_short: o.units_short,
            requests: o.requests,
            stranded_days: o.stranded_days,
            sku_days: o.sku_days,
        }
    }
}

/// What `hub simulate` prints (`--json`).
#[derive(Debug, Clone, Serialize)]
pub struct SimulateOutput {
    /// `journal` or `generated (seed N)`.
    pub source: String,
    pub skus: usize,
    pub history_days: usize,
    pub config: SimConfig,
    pub policies: Vec<PolicyFigures>,
}

/// Runs every policy over `history`.
pub fn run(
    history: &SiteHistory,
    source: String,
    config: &SimConfig,
    policies: &[Policy],
) -> Result<SimulateOutput, Vec<String>> {
    let mut figures = Vec::new();
    for policy in policies {
        let report = simulate(history, *policy, config)
            .map_err(|e| e.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        figures.push(PolicyFigures::of(&report));
    }
    Ok(SimulateOutput {
        source,
        skus: history.skus.len(),
        history_days: history.days,
        config: config.clone(),
        policies: figures,
    })
}

/// A generated site (`hub_forecast::generate`, fixed seed).
pub fn generated(seed: u64, skus: usize, days: usize) -> SiteHistory {
    generate(&GeneratorConfig {
        seed,
        skus,
        days,
        ..GeneratorConfig::default()
    })
}

/// The site's own history from its journal: every SKU's days before `today`.
pub fn from_journal(
    conn: &rusqlite::Connection,
    zone: chrono_tz::Tz,
    today: chrono::NaiveDate,
) -> Result<SiteHistory, crate::store::StoreError> {
    use crate::store::demand;
    let days = demand::HISTORY_DAYS as usize;
    let start = today - chrono::Days::new(demand::HISTORY_DAYS);
    let mut skus = Vec::new();
    for sku in crate::store::sku::all(conn)? {
        let (code, name) = (sku.code.to_string(), sku.name);
        let scale = if sku.unit == hub_core::StockUnit::Gram {
            0.001
        } else {
            1.0
        };
        let observations: Vec<DailyObservation> = demand::daily_history(conn, &code, today, zone)?
            .into_iter()
            .map(|o| DailyObservation {
                sold: o.sold * scale,
                ..o
            })
            .collect();
        let Some(first_day) = observations.iter().position(|o| o.existed) else {
            continue;
        };
        let shelf = demand::shelf_life_days(conn, &code, zone)?;
        let demand_per_day: Vec<f64> = observations.iter().map(|o| o.sold).collect();
        let listed = &demand_per_day[first_day..];
        let mean = listed.iter().sum::<f64>() / listed.len().max(1) as f64;
        skus.push(SkuHistory {
            profile: SkuProfile {
                code,
                name,
                category: if shelf.is_some_and(|d| d <= 7) {
                    "fresh".into()
                } else {
                    "long_life".into()
                },
                shelf_life_days: shelf.unwrap_or(3650),
                price: 1.0,
                first_day,
                last_day: days,
                prior_daily: mean,
                base_daily: mean,
            },
            expected: demand_per_day.clone(),
            demand: demand_per_day,
            observations,
        });
    }
    Ok(SiteHistory {
        start,
        days,
        skus,
        signals: demand::signals(conn)?,
    })
}

/// A charted figure: its name, how to read it off a policy, its unit.
type Metric = (&'static str, fn(&PolicyFigures) -> f64, &'static str);

/// The table and a text chart.
pub fn render_text(out: &SimulateOutput) -> String {
    let mut s = format!(
        "Simulated site: {} ({} SKUs, {} days of history, last {} simulated; lead time {} d, review {} d)\n\n",
        out.source,
        out.skus,
        out.history_days,
        out.config.sim_days,
        out.config.lead_time_days,
        out.config.review_days
    );
    s.push_str(&format!(
        "  {:<18} {:>10} {:>10} {:>9} {:>12} {:>9}\n",
        "policy", "stock-out", "turnover", "loss", "units short", "requests"
    ));
    for p in &out.policies {
        s.push_str(&format!(
            "  {:<18} {:>9.2}% {:>8.2} d {:>8.2}% {:>12.0} {:>9}\n",
            p.policy,
            p.stockout_rate * 100.0,
            p.turnover_days,
            p.loss_rate * 100.0,
            p.units_short,
            p.requests
        ));
    }
    s.push_str("  goals: stock-out < 5 %, turnover < 7 d, loss <= 1.2 %\n");
    let metrics: [Metric; 3] = [
        ("stock-out rate", |p| p.stockout_rate * 100.0, "%"),
        ("turnover", |p| p.turnover_days, "d"),
        ("loss rate", |p| p.loss_rate * 100.0, "%"),
    ];
    for (name, value, unit) in metrics {
        s.push_str(&format!("\n  {name}\n"));
        let max = out
            .policies
            .iter()
            .map(value)
            .fold(0.0f64, f64::max)
            .max(1e-9);
        for p in &out.policies {
            let v = value(p);
            let width = ((v / max) * 40.0).round() as usize;
            s.push_str(&format!(
                "  {:<18} {:<40} {v:.2} {unit}\n",
                p.policy,
                "#".repeat(width)
            ));
        }
    }
    s
}

/// A small SVG chart: one panel per figure, one bar per policy.
pub fn render_svg(out: &SimulateOutput) -> String {
    let colours = ["#c0504d", "#4f81bd", "#9bbb59", "#8064a2"];
    let panels: [Metric; 3] = [
        ("stock-out rate", |p| p.stockout_rate * 100.0, "%"),
        ("turnover", |p| p.turnover_days, "d"),
        ("loss rate", |p| p.loss_rate * 100.0, "%"),
    ];
    let (pw, ph) = (220.0, 200.0);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="11">"#,
        pw * 3.0 + 20.0,
        ph + 60.0
    );
    s.push_str(&format!(
        r#"<text x="10" y="16" font-size="13">Simulated site: {} — {} SKUs, last {} days</text>"#,
        escape(&out.source),
        out.skus,
        out.config.sim_days
    ));
    for (i, (name, value, unit)) in panels.iter().enumerate() {
        let x0 = 10.0 + i as f64 * pw;
        s.push_str(&format!(r#"<text x="{}" y="40">{name}</text>"#, x0 + 5.0));
        let max = out
            .policies
            .iter()
            .map(value)
            .fold(0.0f64, f64::max)
            .max(1e-9);
        let bw = (pw - 30.0) / out.policies.len().max(1) as f64;
        for (j, p) in out.policies.iter().enumerate() {
            let v = value(p);
            let h = v / max * (ph - 60.0);
            let x = x0 + 5.0 + j as f64 * bw;
            let y = 50.0 + (ph - 60.0) - h;
            s.push_str(&format!(
                r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}" fill="{}"/>"#,
                bw - 6.0,
                colours[j % colours.len()]
            ));
            s.push_str(&format!(
                r#"<text x="{x:.1}" y="{:.1}">{v:.2} {unit}</text>"#,
                y - 3.0
            ));
            s.push_str(&format!(
                r#"<text x="{x:.1}" y="{:.1}" font-size="9">{}</text>"#,
                50.0 + ph - 45.0,
                p.policy
            ));
        }
    }
    s.push_str("</svg>\n");
    s
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

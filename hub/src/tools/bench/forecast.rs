//! `hub bench forecast`: the hub's demand forecast measured side by side on a generated site
//! (`hub_forecast::generate`, fixed seed): WAPE/MASE over rolling origins against the true
//! demand, for the hub, seasonal naive (same weekday last week) and the Python forecaster a
//! user would pick (statsforecast AutoETS, season 7, from PyPI in the bench's venv; it sees the
//! recorded sales only, no demand signals); the time to refit every SKU of a 500-SKU site; and
//! the simulated site under the forecast policy, today's trailing-average policy and the
//! perfect-foresight oracle.
//!
//! Goals: WAPE ≤ 0.85 × seasonal naive and ≤ 0.9 × AutoETS; refit of 500 SKUs × 180 days ≤ 1 s;
//! forecast policy stock-out < 5 %, turnover < 7 d, loss ≤ 1.2 %.

use hub_forecast::{
    EvalOptions, ForecastConfig, GeneratorConfig, Policy, SimConfig, SkuContext, forecast_sku,
    generate, history_csv, parse_forecast_csv, rolling_origin, score_external, simulate,
};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

/// The baseline script (`hub/forecast/bench/ets_baseline.py`), written to a temporary file to
/// run.
pub const ETS_SCRIPT: &str = include_str!("../../../forecast/bench/ets_baseline.py");
/// Its pinned requirements (`hub/forecast/bench/requirements.txt`).
const REQUIREMENTS: &str = include_str!("../../../forecast/bench/requirements.txt");

/// The pip requirement specifiers of the baseline.
/// Why the Python baseline has no interpreter to run on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NoBaseline {
    #[error("skipped with --skip-python")]
    Skipped,
    #[error("cannot set up the Python venv: {0}")]
    Venv(String),
}

pub fn python_packages() -> Vec<&'static str> {
    REQUIREMENTS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// What to run.
#[derive(Debug, Clone)]
pub struct ForecastBenchOptions {
    pub seed: u64,
    /// SKUs of the evaluated site.
    pub skus: usize,
    pub days: usize,
    /// SKUs of the refit timing.
    pub refit_skus: usize,
    /// The baseline's interpreter; `None` with the reason it was not measured.
    pub python: Result<PathBuf, NoBaseline>,
}

/// One policy's figures (fractions and days).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PolicyFigures {
    pub stockout_rate: f64,
    pub turnover_days: f64,
    pub loss_rate: f64,
}

/// The figures (`--json`).
#[derive(Debug, Clone, Serialize)]
pub struct ForecastBenchReport {
    pub seed: u64,
    pub skus: usize,
    pub days: usize,
    pub series: usize,
    pub sku_days: usize,
    pub wape_hub: f64,
    pub wape_seasonal_naive: f64,
    /// `null` when the baseline could not be measured (the run is then not a pass).
    pub wape_python_ets: Option<f64>,
    pub mase_hub: f64,
    pub mase_seasonal_naive: f64,
    pub mase_python_ets: Option<f64>,
    pub python_seconds: Option<f64>,
    /// Why the Python baseline was not measured.
    pub baseline_error: Option<String>,
    /// Best of 3 (seconds) for every SKU of a `refit_skus`-SKU site, 14 days ahead.
    pub refit_500_skus_s: f64,
    pub refit_skus: usize,
    pub policy_forecast: PolicyFigures,
    pub policy_trailing: PolicyFigures,
    pub policy_oracle: PolicyFigures,
}

impl ForecastBenchReport {
    /// Each goal and whether it was met (`None`: not judged).
    pub fn goals(&self) -> Vec<(&'static str, Option<bool>)> {
        let f = &self.policy_forecast;
        vec![
            (
                "WAPE <= 0.85 x seasonal naive",
                Some(self.wape_hub <= 0.85 * self.wape_seasonal_naive),
            ),
            (
                "WAPE <= 0.9 x Python AutoETS",
                self.wape_python_ets.map(|e| self.wape_hub <= 0.9 * e),
            ),
            (
                "refit of 500 SKUs x 180 days <= 1 s",
                Some(self.refit_500_skus_s <= 1.0),
            ),
            (
                "forecast policy stock-out < 5 %",
                Some(f.stockout_rate < 0.05),
            ),
            (
                "forecast policy turnover < 7 d",
                Some(f.turnover_days < 7.0),
            ),
            ("forecast policy loss <= 1.2 %", Some(f.loss_rate <= 0.012)),
        ]
    }

    /// Every goal judged and met.
    pub fn meets_targets(&self) -> bool {
        self.goals().iter().all(|(_, met)| *met == Some(true))
    }
}

impl std::fmt::Display for ForecastBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "Forecast bench: generated site (seed {}, {} SKUs x {} days), {} series, {} SKU-days scored against the true demand",
            self.seed, self.skus, self.days, self.series, self.sku_days
        )?;
        writeln!(f, "  {:<34} {:>7} {:>7}", "forecaster", "WAPE", "MASE")?;
        writeln!(
            f,
            "  {:<34} {:>7.3} {:>7.3}",
            "hub", self.wape_hub, self.mase_hub
        )?;
        writeln!(
            f,
            "  {:<34} {:>7.3} {:>7.3}",
            "seasonal naive", self.wape_seasonal_naive, self.mase_seasonal_naive
        )?;
        match (self.wape_python_ets, self.mase_python_ets) {
            (Some(w), Some(m)) => writeln!(
                f,
                "  {:<34} {w:>7.3} {m:>7.3}   ({:.1} s)",
                "Python statsforecast AutoETS",
                self.python_seconds.unwrap_or(0.0)
            )?,
            _ => writeln!(
                f,
                "  {:<34} not measured: {}",
                "Python statsforecast AutoETS",
                self.baseline_error.as_deref().unwrap_or("unknown")
            )?,
        }
        writeln!(
            f,
            "  refit of {} SKUs x {} days: {:.3} s",
            self.refit_skus, self.days, self.refit_500_skus_s
        )?;
        writeln!(
            f,
            "  {:<18} {:>10} {:>10} {:>8}",
            "policy", "stock-out", "turnover", "loss"
        )?;
        for (name, p) in [
            ("forecast", &self.policy_forecast),
            ("trailing average", &self.policy_trailing),
            ("oracle (limit)", &self.policy_oracle),
        ] {
            writeln!(
                f,
                "  {:<18} {:>9.2}% {:>8.2} d {:>7.2}%",
                name,
                p.stockout_rate * 100.0,
                p.turnover_days,
                p.loss_rate * 100.0
            )?;
        }
        for (goal, met) in self.goals() {
            let verdict = match met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "not judged",
            };
            writeln!(f, "  goal {goal:<40} {verdict}")?;
        }
        Ok(())
    }
}

fn policy(site: &hub_forecast::SiteHistory, p: Policy) -> anyhow::Result<PolicyFigures> {
    let r = simulate(site, p, &SimConfig::default()).map_err(|e| {
        anyhow::anyhow!(
            "simulator refused its defaults: {}",
            e.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    Ok(PolicyFigures {
        stockout_rate: r.overall.stockout_rate,
        turnover_days: r.overall.turnover_days,
        loss_rate: r.overall.loss_rate,
    })
}

/// Runs the bench.
pub fn run(options: &ForecastBenchOptions) -> anyhow::Result<ForecastBenchReport> {
    let site = generate(&GeneratorConfig {
        seed: options.seed,
        skus: options.skus,
        days: options.days,
        ..GeneratorConfig::default()
    });
    let eval = EvalOptions::default();
    let report = rolling_origin(&site, &eval);

    let mut baseline_error = None;
    let mut ets = None;
    let mut python_seconds = None;
    match &options.python {
        Err(reason) => baseline_error = Some(reason.to_string()),
        Ok(python) => match run_ets(python, &history_csv(&site, &eval), eval.horizon) {
            Ok((csv, seconds)) => {
                let scored = parse_forecast_csv(&csv)
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .and_then(|f| {
                        score_external(&site, &eval, &f).map_err(|e| anyhow::anyhow!("{e}"))
                    });
                match scored {
                    Ok(a) => {
                        ets = Some(a);
                        python_seconds = Some(seconds);
                    }
                    Err(e) => baseline_error = Some(format!("baseline output not usable: {e}")),
                }
            }
            Err(e) => baseline_error = Some(e.to_string()),
        },
    }

    let big = generate(&GeneratorConfig {
        seed: options.seed,
        skus: options.refit_skus,
        days: options.days,
        ..GeneratorConfig::default()
    });
    let start = big.date(big.days);
    let config = ForecastConfig::default();
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        let mut checksum = 0.0;
        for s in &big.skus {
            let ctx = SkuContext {
                sku: &s.profile.code,
                category: &s.profile.category,
                prior_daily: Some(s.profile.prior_daily),
            };
            checksum +=
                forecast_sku(&s.observations, &ctx, &big.signals, start, 14, &config).total(1);
        }
        std::hint::black_box(checksum);
        best = best.min(t.elapsed().as_secs_f64());
    }

    Ok(ForecastBenchReport {
        seed: options.seed,
        skus: site.skus.len(),
        days: site.days,
        series: report.series,
        sku_days: report.days,
        wape_hub: report.hub.wape,
        wape_seasonal_naive: report.seasonal_naive.wape,
        wape_python_ets: ets.as_ref().map(|a| a.wape),
        mase_hub: report.hub.mase,
        mase_seasonal_naive: report.seasonal_naive.mase,
        mase_python_ets: ets.as_ref().map(|a| a.mase),
        python_seconds,
        baseline_error,
        refit_500_skus_s: best,
        refit_skus: big.skus.len(),
        policy_forecast: policy(&site, Policy::Forecast)?,
        policy_trailing: policy(&site, Policy::TrailingAverage)?,
        policy_oracle: policy(&site, Policy::Oracle)?,
    })
}

/// Runs the baseline script with `python` on the history CSV; its forecast CSV and seconds.
fn run_ets(python: &std::path::Path, csv: &str, horizon: usize) -> anyhow::Result<(String, f64)> {
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("ets_baseline.py");
    std::fs::write(&script, ETS_SCRIPT)?;
    let errors = dir.path().join("stderr.txt");
    let started = Instant::now();
    let mut child = Command::new(python)
        .arg(&script)
        .args(["--horizon", &horizon.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&errors)?)
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", python.display()))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdin to the baseline"))?;
    // Written from a thread: the child may fill its stdout before reading all of stdin.
    let input = csv.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output()?;
    let _ = writer.join();
    if !out.status.success() {
        let stderr = std::fs::read_to_string(&errors).unwrap_or_default();
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        anyhow::bail!(
            "{} ets_baseline.py failed ({}): {}",
            python.display(),
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    Ok((
        String::from_utf8(out.stdout)?,
        started.elapsed().as_secs_f64(),
    ))
}

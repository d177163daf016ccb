//! Prints the figures the hub's benchmark checks, on generated histories:
//! forecast WAPE/MASE vs seasonal naive (and vs the Python ETS baseline when a Python with
//! `statsforecast` is given), the refit time of 500 SKUs × 180 days, and the simulated site
//! under the trailing-average policy, the forecast policy and the oracle.
//!
//! ```sh
//! cargo run --release -p hub-forecast --example figures -- [--seed N] [--noise-shape K]
//!     [--service P] [--python /tmp/venv/bin/python] [--write-csv PATH] [--by-category] [--top-loss]
//! ```
//!
//! `--python` runs `bench/ets_baseline.py` with that interpreter (it needs
//! `bench/requirements.txt` installed); without it the ETS row is left out.

use hub_forecast::{
    EvalOptions, ForecastConfig, GeneratorConfig, Policy, SimConfig, SkuContext, forecast_sku,
    generate, history_csv, parse_forecast_csv, rolling_origin, score_external, simulate,
};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let seed: u64 = arg("--seed")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(2026);
    let noise_shape: f64 = arg("--noise-shape")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(GeneratorConfig::default().noise_shape);
    let site = generate(&GeneratorConfig {
        seed,
        noise_shape,
        ..GeneratorConfig::default()
    });
    println!(
        "site: seed {seed}, {} SKUs, {} days from {}, {} signals",
        site.skus.len(),
        site.days,
        site.start,
        site.signals.len()
    );

    // Forecast quality.
    let options = EvalOptions::default();
    let report = rolling_origin(&site, &options);
    println!(
        "\nrolling origin: {} origins × {} days ahead, {} series, {} SKU-days (actual = true demand)",
        options.origins, options.horizon, report.series, report.days
    );
    println!(
        "  methods used: {:?}, fallbacks {}",
        report.methods, report.fallbacks
    );
    println!(
        "  {:<34} {:>7} {:>7} {:>7}",
        "forecaster", "WAPE", "MASE", "bias"
    );
    let row = |name: &str, a: &hub_forecast::Accuracy| {
        println!(
            "  {name:<34} {:>7.3} {:>7.3} {:>+7.3}",
            a.wape, a.mase, a.bias
        )
    };
    row("hub forecast", &report.hub);
    row("seasonal naive (last week)", &report.seasonal_naive);
    row("true mean (floor)", &report.true_mean);
    let no_signals = rolling_origin(
        &site,
        &EvalOptions {
            use_signals: false,
            ..options.clone()
        },
    );
    row("hub without signals", &no_signals.hub);
    let no_censoring = rolling_origin(
        &site,
        &EvalOptions {
            forecast: ForecastConfig {
                impute_censored: false,
                ..ForecastConfig::default()
            },
            ..options.clone()
        },
    );
    row("hub, stock-outs taken as demand", &no_censoring.hub);
    println!(
        "  hub ÷ seasonal naive WAPE: {:.3} (goal ≤ 0.85)",
        report.hub.wape / report.seasonal_naive.wape
    );

    let csv = history_csv(&site, &options);
    if let Some(path) = arg("--write-csv") {
        std::fs::write(&path, &csv)?;
        println!("  history CSV written to {path}");
    }
    if let Some(python) = arg("--python") {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/ets_baseline.py");
        let started = Instant::now();
        let mut child = Command::new(&python)
            .args([script, "--horizon", &options.horizon.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .ok_or("no stdin")?
            .write_all(csv.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            return Err(format!("{python} {script} failed: {}", out.status).into());
        }
        let forecasts = parse_forecast_csv(&String::from_utf8(out.stdout)?)?;
        let ets = score_external(&site, &options, &forecasts)?;
        row("Python statsforecast AutoETS", &ets);
        println!(
            "  hub ÷ AutoETS WAPE: {:.3} (goal ≤ 0.9); AutoETS took {:.1} s for {} series",
            report.hub.wape / ets.wape,
            started.elapsed().as_secs_f64(),
            report.series
        );
    }

    // Refit time: 500 SKUs × 180 days.
    let big = generate(&GeneratorConfig {
        seed,
        noise_shape,
        skus: 500,
        ..GeneratorConfig::default()
    });
    let start = big.date(big.days);
    let config = ForecastConfig::default();
    let mut best = f64::INFINITY;
    let mut checksum = 0.0;
    for _ in 0..5 {
        let t = Instant::now();
        for s in &big.skus {
            let ctx = SkuContext {
                sku: &s.profile.code,
                category: &s.profile.category,
                prior_daily: Some(s.profile.prior_daily),
            };
            let fc = forecast_sku(&s.observations, &ctx, &big.signals, start, 14, &config);
            checksum += fc.days[0].mean;
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "\nrefit: {} SKUs × {} days, 14 days ahead: {:.1} ms (best of 5; checksum {checksum:.1})",
        big.skus.len(),
        big.days,
        best * 1e3
    );

    // The simulated site.
    let service_target: f64 = arg("--service")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(SimConfig::default().service_target);
    let sim = SimConfig {
        service_target,
        ..SimConfig::default()
    };
    println!(
        "\nsimulated site: last {} days, lead time {} d, review {} d, service target {}",
        sim.sim_days, sim.lead_time_days, sim.review_days, sim.service_target
    );
    println!(
        "  {:<18} {:>9} {:>9} {:>8} {:>11} {:>9} {:>8}",
        "policy", "stock-out", "turnover", "loss", "units short", "requests", "stranded"
    );
    for policy in [Policy::TrailingAverage, Policy::Forecast, Policy::Oracle] {
        let r = simulate(&site, policy, &sim).map_err(|e| format!("{e:?}"))?;
        let o = &r.overall;
        println!(
            "  {:<18} {:>8.2}% {:>7.2} d {:>7.2}% {:>11.0} {:>9} {:>8}",
            policy.as_str(),
            o.stockout_rate * 100.0,
            o.turnover_days,
            o.loss_rate * 100.0,
            o.units_short,
            o.requests,
            o.stranded_days
        );
        if args.iter().any(|a| a == "--top-loss") {
            let mut l: Vec<_> = r
                .ledgers
                .iter()
                .zip(&site.skus)
                .map(|(l, s)| (l.expired * s.profile.price, l, s))
                .collect();
            l.sort_by(|a, b| b.0.total_cmp(&a.0));
            for (v, l, s) in l.iter().take(6) {
                println!(
                    "    {:<22} expired {:>5} of {:>6} received (value {v:.0}), mean demand {:.1}, shelf {} d",
                    l.code,
                    l.expired,
                    l.received,
                    s.demand.iter().sum::<f64>() / s.demand.len() as f64,
                    s.profile.shelf_life_days
                );
            }
        }
        if args.iter().any(|a| a == "--by-category") {
            for (cat, f) in &r.by_category {
                println!(
                    "    {:<16} {:>8.2}% {:>7.2} d {:>7.2}% {:>11.0} {:>9}",
                    cat,
                    f.stockout_rate * 100.0,
                    f.turnover_days,
                    f.loss_rate * 100.0,
                    f.units_short,
                    f.requests
                );
            }
        }
    }
    Ok(())
}

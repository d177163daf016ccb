//! The benchmark's goals, asserted at a small size (timings are measured by
//! `examples/figures.rs`, not here): on a generated site the forecast beats seasonal naive by
//! the required margin and stays near the noise floor, and the forecast policy beats today's
//! trailing-average rule on stock-outs and losses, within the goals, with the oracle as the limit.

use hub_forecast::{
    EvalOptions, GeneratorConfig, Policy, SimConfig, generate, rolling_origin, simulate,
};

#[test]
fn forecast_and_forecast_policy_meet_the_goals_on_a_small_site() {
    let site = generate(&GeneratorConfig {
        seed: 7,
        skus: 36,
        ..GeneratorConfig::default()
    });
    let eval = rolling_origin(
        &site,
        &EvalOptions {
            origins: 4,
            ..EvalOptions::default()
        },
    );
    println!(
        "WAPE hub {:.3} seasonal naive {:.3} floor {:.3} (bias hub {:+.3})",
        eval.hub.wape, eval.seasonal_naive.wape, eval.true_mean.wape, eval.hub.bias
    );
    assert!(eval.hub.wape <= 0.85 * eval.seasonal_naive.wape);
    assert!(
        eval.hub.wape <= 1.15 * eval.true_mean.wape,
        "near the floor"
    );
    assert!(
        eval.hub.bias.abs() < 0.08,
        "the mean is not biased: {}",
        eval.hub.bias
    );

    let config = SimConfig {
        sim_days: 42,
        ..SimConfig::default()
    };
    let run = |p| simulate(&site, p, &config).unwrap().overall;
    let (trailing, forecast, oracle) = (
        run(Policy::TrailingAverage),
        run(Policy::Forecast),
        run(Policy::Oracle),
    );
    for (name, f) in [
        ("trailing", &trailing),
        ("forecast", &forecast),
        ("oracle", &oracle),
    ] {
        println!(
            "{name:<9} stock-out {:.2}% turnover {:.2} d loss {:.2}% requests {}",
            f.stockout_rate * 100.0,
            f.turnover_days,
            f.loss_rate * 100.0,
            f.requests
        );
    }
    assert!(forecast.stockout_rate < 0.05, "{forecast:?}");
    assert!(forecast.turnover_days < 7.0);
    assert!(forecast.loss_rate <= 0.012, "{forecast:?}");
    assert!(forecast.stockout_rate < trailing.stockout_rate);
    assert!(forecast.loss_rate < trailing.loss_rate);
    assert!(oracle.stockout_rate <= forecast.stockout_rate);
    assert!(oracle.loss_rate <= forecast.loss_rate);
}

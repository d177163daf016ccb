//! `hub simulate` and `hub bench forecast` run as a user would: policies side by side with a
//! table, a text chart, JSON and an SVG chart; bad settings refused with every reason; a tiny
//! bench run whose JSON holds the figures and that is not a pass without its baseline.

use tests::{hub, stderr, stdout};

#[test]
fn simulate_prints_the_policies_side_by_side_as_table_chart_json_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("chart.svg");
    let common = [
        "simulate",
        "--skus",
        "12",
        "--days",
        "90",
        "--sim-days",
        "28",
    ];
    let out = hub(&[&common[..], &["--svg", svg.to_str().unwrap()]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for word in [
        "trailing_average",
        "forecast",
        "oracle",
        "stock-out",
        "turnover",
        "loss rate",
        "####",
    ] {
        assert!(text.contains(word), "{word:?} missing in\n{text}");
    }
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(
        chart.starts_with("<svg") && chart.contains("<rect"),
        "{chart}"
    );

    let out = hub(&[
        &common[..],
        &["--json", "--policies", "trailing_average,forecast"],
    ]
    .concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let policies = json["policies"].as_array().unwrap();
    assert_eq!(policies.len(), 2);
    assert_eq!(policies[0]["policy"], "trailing_average");
    assert_eq!(policies[1]["policy"], "forecast");
    assert_eq!(json["config"]["sim_days"], 28);
    for p in policies {
        for key in ["stockout_rate", "turnover_days", "loss_rate", "units_short"] {
            assert!(p[key].as_f64().is_some_and(|v| v >= 0.0), "{key} in {p}");
        }
        assert!(p["requests"].as_u64().is_some_and(|r| r > 0), "{p}");
    }
    // A longer lead time changes what the simulated site yields.
    let slow = hub(&[
        &common[..],
        &["--json", "--policies", "forecast", "--lead-time-days", "3"],
    ]
    .concat());
    assert!(slow.status.success(), "{}", stderr(&slow));
    let slow: serde_json::Value = serde_json::from_slice(&slow.stdout).unwrap();
    assert_ne!(slow["policies"][0], policies[1]);
}

#[test]
fn simulate_refuses_bad_settings_with_every_reason() {
    let out = hub(&[
        "simulate",
        "--skus",
        "6",
        "--days",
        "60",
        "--lead-time-days",
        "-1",
        "--shelf-life",
        "fresh=-2",
        "--policies",
        "magic",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    for reason in [
        "lead_time_days is -1",
        "shelf life of category fresh is -2 days",
        "policy 'magic' is not known",
    ] {
        assert!(err.contains(reason), "{reason:?} missing in {err}");
    }

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sim.toml");
    std::fs::write(&file, "lead_time = 2\n").unwrap();
    let out = hub(&["simulate", "--settings", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("sim.toml") && err.contains("lead_time"),
        "{err}"
    );

    std::fs::write(&file, "review_days = 0\n[shelf_life_days]\ndairy = 0\n").unwrap();
    let out = hub(&[
        "simulate",
        "--skus",
        "6",
        "--days",
        "60",
        "--settings",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("review_days is 0") && err.contains("category dairy is 0 days"),
        "{err}"
    );
}

#[test]
fn a_tiny_forecast_bench_writes_its_figures_and_is_no_pass_without_its_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("forecast.json");
    let out = hub(&[
        "bench",
        "forecast",
        "--skus",
        "8",
        "--days",
        "100",
        "--refit-skus",
        "20",
        "--python",
        "/nonexistent/python3",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("baseline not measured"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("cannot run /nonexistent/python3"),
        "{}",
        stdout(&out)
    );
    let figures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for key in ["wape_hub", "wape_seasonal_naive", "refit_500_skus_s"] {
        assert!(
            figures[key].as_f64().is_some_and(|v| v > 0.0),
            "{key}: {figures}"
        );
    }
    assert!(figures["wape_python_ets"].is_null());
    for policy in ["policy_forecast", "policy_trailing", "policy_oracle"] {
        for key in ["stockout_rate", "turnover_days", "loss_rate"] {
            assert!(
                figures[policy][key].as_f64().is_some_and(|v| v >= 0.0),
                "{policy}.{key}: {figures}"
            );
        }
    }
    // The hub's forecast beats seasonal naive even on this tiny site.
    assert!(
        figures["wape_hub"].as_f64().unwrap() < figures["wape_seasonal_naive"].as_f64().unwrap()
    );
}

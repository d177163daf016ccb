//! The benchmark commands themselves, at a tiny size: each runs, exits 0 (targets met) or 4
//! (targets missed: their ratios are not judged here, only that they are measured) and writes
//! its figures. The ledger bench also runs on the emulated SD card through
//! `powercut sdcard --fsync-ms 5 -- hub bench ledger --data-dir {} --json PATH`, the command
//! the README gives for the SD-card figures. `hub bench stations` runs a real `hub run` with
//! 50 orders. (`hub bench vision` has its own tests in `vision.rs`.)

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tests::{hub_binary, stderr, stdout};

fn figures(out: &Output, json: &Path) -> Value {
    assert!(
        matches!(out.status.code(), Some(0 | 4)),
        "exit {:?}: {}{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
    let text = std::fs::read_to_string(json)
        .unwrap_or_else(|e| panic!("no figures in {}: {e}\n{}", json.display(), stderr(out)));
    serde_json::from_str(&text).unwrap()
}

fn positive(figures: &Value, keys: &[&str]) {
    for key in keys {
        let value = figures[key].as_f64().unwrap_or(0.0);
        assert!(value > 0.0, "{key} = {value} in {figures}");
    }
}

const LEDGER_KEYS: [&str; 4] = [
    "raw_single_per_s",
    "raw_batched_per_s",
    "ledger_single_per_s",
    "ledger_grouped_per_s",
];

fn bench(args: &[&str]) -> Output {
    Command::new(hub_binary())
        .arg("bench")
        .args(args)
        .output()
        .expect("run hub bench")
}

/// `powercut`, built with the workspace next to `hub`.
fn powercut_binary() -> PathBuf {
    let path = hub_binary().with_file_name("powercut");
    assert!(
        path.exists(),
        "{} not found: build it with `cargo build -p powercut`",
        path.display()
    );
    path
}

#[test]
fn hub_bench_ledger_runs_on_the_emulated_sd_card_through_powercut_sdcard() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("ledger.json");
    let out = Command::new(powercut_binary())
        .args(["sdcard", "--fsync-ms", "5", "--"])
        .arg(hub_binary())
        .args(["bench", "ledger", "--data-dir", "{}", "--json"])
        .arg(&json)
        .args([
            "--seconds",
            "0.2",
            "--repetitions",
            "1",
            "--requesters",
            "16",
        ])
        .output()
        .unwrap();
    let figures = figures(&out, &json);
    positive(&figures, &LEDGER_KEYS);
    // It measured the card (the folder powercut mounted), where every fsync takes 5 ms or
    // more.
    let err = stderr(&out);
    let card = err
        .lines()
        .find_map(|l| l.strip_prefix("powercut: SD card at "))
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("powercut named no card: {err}"));
    assert_eq!(figures["folder"], card, "{figures}");
    let fsync_ms = figures["fsync_p50_ms"].as_f64().unwrap_or(0.0);
    assert!(fsync_ms >= 4.5, "fsync p50 {fsync_ms} ms: {figures}");
    assert_eq!(figures["fsync_bound"], true, "{figures}");
}

#[test]
fn hub_bench_ledger_disk_devices_and_sync_run_at_a_tiny_size() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let data = data.to_str().unwrap();
    let json = |name: &str| dir.path().join(name);

    let ledger = json("ledger.json");
    let out = bench(&[
        "ledger",
        "--data-dir",
        data,
        "--seconds",
        "0.1",
        "--repetitions",
        "1",
        "--requesters",
        "8",
        "--json",
        ledger.to_str().unwrap(),
    ]);
    positive(&figures(&out, &ledger), &LEDGER_KEYS);

    let disk = json("disk.json");
    let out = bench(&["disk", "--data-dir", data, "--json", disk.to_str().unwrap()]);
    let figures_disk = figures(&out, &disk);
    assert!(figures_disk["target"].is_object(), "{figures_disk}");
    assert!(figures_disk["baseline"].is_object(), "{figures_disk}");

    let devices = json("devices.json");
    let out = bench(&[
        "devices",
        "--seconds",
        "0.1",
        "--json",
        devices.to_str().unwrap(),
    ]);
    let figures_devices = figures(&out, &devices);
    assert!(
        figures_devices["streams"]
            .as_array()
            .is_some_and(|s| !s.is_empty()),
        "{figures_devices}"
    );

    // Against a real Mosquitto started by the command; central must get every event once.
    let sync = json("sync.json");
    let out = bench(&["sync", "--events", "200", "--json", sync.to_str().unwrap()]);
    let figures_sync = figures(&out, &sync);
    positive(
        &figures_sync,
        &["raw_mqtt_qos1_per_s", "outbox_drain_per_s"],
    );
    assert_eq!(figures_sync["duplicates_at_central"], 0, "{figures_sync}");
    assert_eq!(figures_sync["events"], 200, "{figures_sync}");
}

#[test]
fn hub_bench_dashboard_runs_at_a_tiny_size_and_prints_both_figures() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("dashboard.json");
    let out = bench(&[
        "dashboard",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--orders-per-day",
        "40",
        "--days",
        "3",
        "--rounds",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    let figures_dashboard = figures(&out, &json);
    positive(
        &figures_dashboard,
        &["dashboard_30d_ms", "dashboard_30d_raw_sql_ms", "rows_read"],
    );
    assert_eq!(figures_dashboard["orders"], 120, "{figures_dashboard}");
    assert!(stdout(&out).contains("raw SQL"), "{}", stdout(&out));
}

#[test]
fn hub_bench_stations_runs_50_orders_through_a_real_hub_and_writes_every_figure() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("stations.json");
    let out = bench(&[
        "stations",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--orders",
        "50",
        "--receiving-scans",
        "10",
        "--dashboard-orders-per-day",
        "40",
        "--dashboard-days",
        "3",
        "--dashboard-rounds",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    let figures = figures(&out, &json);
    positive(
        &figures,
        &[
            "scan_to_screen_p50_ms",
            "scan_to_screen_p99_ms",
            "handover_p50_ms",
            "handover_p99_ms",
            "direct_handover_p50_ms",
            "direct_handover_p99_ms",
            "bytes_written_per_handover",
            "page_bytes",
            "receiving_scan_to_screen_p50_ms",
            "receiving_scan_to_screen_p99_ms",
            "dashboard_30d_ms",
            "dashboard_30d_raw_sql_ms",
        ],
    );
    assert_eq!(figures["orders"], 50, "{figures}");
    assert_eq!(figures["receiving_scans"], 10, "{figures}");
    // The first render is the browser test's figure: no always-null key here, and the text
    // says where it comes from.
    assert!(figures.get("first_render_ms").is_none(), "{figures}");
    assert!(
        stdout(&out).contains("--test station_browser"),
        "{}",
        stdout(&out)
    );
    // The photos went through the hub's vision path while the bench was scanned.
    assert!(
        figures["photos_checked"].as_u64().unwrap_or(0) >= 1,
        "{figures}"
    );
    let text = stdout(&out);
    for words in [
        "scan-to-screen",
        "called directly",
        "per handover",
        "raw SQL",
    ] {
        assert!(text.contains(words), "{words} missing from: {text}");
    }
    // The scratch stores are removed afterwards.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|n| n != "stations.json")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

//! Power cuts under the real workflows: the `hub` binary run step by step through its CLI
//! with its data folder on the power-cut filesystem (`powercut::harness`, the library behind
//! `powercut run`), `hub run` against a real Mosquitto and central's consumer in a fifth of the
//! rounds, the power cut at random moments, and after every cut everything the hub
//! acknowledged checked, the ledger verified and the interrupted work resumed. The negative
//! control runs the same harness (CLI rounds only) on a hub whose durability is weakened by its test-only switch
//! (debug builds) and must find acknowledged work lost, or the harness proves nothing.

use powercut::harness::{self, Options, Report};
use tests::{hub_binary, workspace_root};

fn options(cuts: u32, weaken: bool) -> Options {
    let seed = rand_seed();
    eprintln!("power-cut harness seed {seed} (replay: powercut run --seed {seed})");
    Options {
        hub: hub_binary(),
        workdir: Some(workspace_root()),
        photo: workspace_root().join("hub/vision/testdata/images/orange.jpg"),
        cuts,
        seed,
        weaken,
        stop_at_first_loss: weaken,
        faults: !weaken,
        // hub run against Mosquitto and central's consumer in a fifth of the rounds.
        central: (!weaken).then(|| hub_binary().with_file_name("central")),
    }
}

/// A seed from the clock's nanoseconds: each run cuts at other moments; the seed is printed.
fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

fn summary(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_default()
}

#[test]
fn nothing_acknowledged_is_lost_over_100_power_cuts_through_the_cli_workflows_and_mqtt() {
    let report = harness::run(&options(100, false)).expect("the harness ran");
    eprintln!(
        "{} cuts ({} inside a CLI step, {} under hub run with {} commands; central holds {} events), {} acknowledged steps checked, {} photos, {} fsyncs, {:.1} s",
        report.cuts,
        report.cuts_mid_step,
        report.sync_rounds,
        report.commands_sent,
        report.central_events,
        report.acknowledged_steps,
        report.photos_checked,
        report.fsyncs,
        report.elapsed_s
    );
    assert!(report.cuts >= 100, "{}", summary(&report));
    assert_eq!(report.acknowledged_lost, 0, "{}", summary(&report));
    assert!(report.ledger_verified, "{}", summary(&report));
    assert!(report.resume_failures.is_empty(), "{}", summary(&report));
    assert_eq!(report.photos_missing, 0, "{}", summary(&report));
    assert!(report.photos_checked > 0, "{}", summary(&report));
    assert!(
        report.receiving_sessions > 10 && report.pickups > 10,
        "{}",
        summary(&report)
    );
    assert!(
        report.cuts_mid_step > 30,
        "most cuts must land inside a step: {}",
        summary(&report)
    );
    assert!(
        report.sync_rounds >= 5 && report.commands_sent > 0,
        "{}",
        summary(&report)
    );
    assert!(report.central_events > 0, "{}", summary(&report));
    // ENOSPC and EIO under a receiving session: a clear error, nothing acknowledged lost.
    let faults: Vec<&str> = report.faults.iter().map(|f| f.fault.as_str()).collect();
    assert_eq!(faults, ["ENOSPC", "EIO"], "{}", summary(&report));
    assert!(report.hub_errors_unclear.is_empty(), "{}", summary(&report));
    assert!(report.passed());
}

#[test]
fn the_harness_finds_acknowledged_work_lost_when_the_hub_skips_its_fsyncs() {
    let report = harness::run(&options(30, true)).expect("the harness ran");
    assert!(
        report.acknowledged_lost > 0,
        "with synchronous=OFF nothing acknowledged was lost in {} cuts: the harness proves nothing\n{}",
        report.cuts,
        summary(&report)
    );
    eprintln!(
        "negative control: {} acknowledged steps lost after {} cut(s): {:?}",
        report.acknowledged_lost, report.cuts, report.losses
    );
}

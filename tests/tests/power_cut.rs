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
        sync_share: 0.2,
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

#[test]
fn the_mqtt_rounds_find_lost_commands_or_events_when_the_hub_skips_its_fsyncs() {
    let report = harness::run(&Options {
        central: Some(hub_binary().with_file_name("central")),
        sync_share: 1.0,
        ..options(20, true)
    })
    .expect("the harness ran");
    assert!(
        report.sync_rounds > 0 && report.acknowledged_lost > 0,
        "with synchronous=OFF the MQTT rounds lost nothing in {} cuts: they prove nothing\n{}",
        report.cuts,
        summary(&report)
    );
    eprintln!(
        "negative control, MQTT rounds: {} lost after {} cut(s): {:?}",
        report.acknowledged_lost, report.cuts, report.losses
    );
}

/// Runs `hub ARGS --config CONFIG` from the workspace root (where it finds the model).
fn hub_at(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(hub_binary())
        .current_dir(workspace_root())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run hub")
}

#[test]
fn a_photo_on_a_full_card_is_checked_and_recorded_without_its_copy_and_raises_disk_nearly_full() {
    use powercut::{Fault, MountOptions, PowerCutFs};
    let card = PowerCutFs::mount_temp(MountOptions::default()).unwrap();
    let data = card.mountpoint().join("data");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "[site]\nid = \"full-site\"\n[store]\ndata_dir = \"{}\"\n\
             [[stations]]\nid = \"dock\"\nkind = \"receiving\"\n",
            data.display()
        ),
    )
    .unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let ok = |args: &[&str]| {
        let out = hub_at(&config, args);
        assert!(
            out.status.success(),
            "hub {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let skus = write(
        "skus.json",
        r#"[{"code":"ORANGE","name":"Oranges","unit":"piece","gtins":[],"allow_negative":false,"check_items_at_handover":false,"version":1}]"#,
    );
    ok(&["sku", "import", &skus]);
    let manifest = write(
        "manifest.json",
        r#"{"delivery_id":"D1","supplier":"S","version":1,"lines":[{"line_no":1,"sku":"ORANGE","lot":"OR-1","expiry":"2030-01-31","expected_count":12}]}"#,
    );
    ok(&["receive", "manifest", &manifest]);
    ok(&["receive", "scan", "--station", "dock", "D1/1"]);

    // Room for the database's next writes, not for a 180 KB photo.
    card.inject(Fault::Capacity {
        bytes: card.used_bytes() + 64 * 1024,
    });
    let photo = workspace_root().join("hub/vision/testdata/images/baboon.jpg");
    let out = ok(&[
        "receive",
        "photo",
        "--station",
        "dock",
        photo.to_str().unwrap(),
    ]);
    assert!(out.contains("recorded for delivery D1 line 1"), "{out}");
    card.clear_faults();

    let progress: serde_json::Value =
        serde_json::from_str(&ok(&["receive", "progress", "--delivery", "D1", "--json"])).unwrap();
    let photos = &progress["lines"][0]["observed"]["photos"];
    assert_eq!(photos.as_array().map(Vec::len), Some(1), "{progress}");
    assert_eq!(
        photos[0]["photo_path"],
        serde_json::Value::Null,
        "{progress}"
    );
    assert_eq!(
        photos[0]["photo_sha256"].as_str().map(str::len),
        Some(64),
        "recorded with its hash: {progress}"
    );
    let evidence = data.join("evidence");
    let stored = std::fs::read_dir(&evidence)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "jpg"))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(
        stored,
        0,
        "no photo copy (nor half of one) is left in {}",
        evidence.display()
    );
    let alerts = ok(&["alerts", "--json"]);
    assert!(alerts.contains("disk_nearly_full"), "{alerts}");
}

#[test]
fn powercut_run_writes_the_json_figures_and_exits_0_when_nothing_was_lost() {
    let powercut = hub_binary().with_file_name("powercut");
    assert!(powercut.exists(), "build it with `cargo build -p powercut`");
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("powercut.json");
    let out = std::process::Command::new(&powercut)
        .current_dir(workspace_root())
        .args(["run", "--cuts", "4", "--no-faults", "--control-cuts", "10"])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("powercut run: seed "), "{err}");
    let figures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(figures["cuts"].as_u64() >= Some(4), "{figures}");
    assert_eq!(figures["acknowledged_lost"], 0, "{figures}");
    assert_eq!(figures["ledger_verified"], true, "{figures}");
    assert_eq!(figures["negative_control_detected_loss"], true, "{figures}");
    assert_eq!(figures["passed"], true, "{figures}");
}

/// On the first start the hub creates its data folder (and any missing parent). A power cut
/// right after the first acknowledged write must not take the folder, and so the database,
/// with it: the new folders' entries are fsynced in their parents.
#[test]
fn a_data_folder_the_hub_created_survives_a_power_cut() {
    use powercut::{MountOptions, PowerCutFs, Tear};
    let card = PowerCutFs::mount_temp(MountOptions::default()).unwrap();
    let data = card.mountpoint().join("hub").join("data");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "[site]\nid = \"new-site\"\n[store]\ndata_dir = \"{}\"\n",
            data.display()
        ),
    )
    .unwrap();
    let skus = dir.path().join("skus.json");
    std::fs::write(
        &skus,
        r#"[{"code":"ORANGE","name":"Oranges","unit":"piece","gtins":[],"allow_negative":false,"check_items_at_handover":false,"version":1}]"#,
    )
    .unwrap();
    let out = hub_at(&config, &["sku", "import", skus.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    card.cut(Tear::None).unwrap();

    let out = hub_at(&config, &["sku", "list", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("ORANGE"),
        "the imported SKU is still there after the cut: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

//! `powercut run --cuts N [--json PATH]`: the power-cut harness against a built `hub` (see
//! `powercut::harness`), then its negative control: the same harness with the hub's
//! durability weakened must find acknowledged data lost, or the run proves nothing.
//! Exit 0 when nothing acknowledged was lost and the control found a loss, 1 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use powercut::harness::{self, Options, Report};
use serde::Serialize;

/// Arguments of `powercut run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Power cuts to make under the hub
    #[arg(long, default_value_t = 100)]
    cuts: u32,
    /// Write the results as JSON to PATH
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// The hub binary [default: `hub` next to this executable]
    #[arg(long, value_name = "PATH")]
    hub: Option<PathBuf>,
    /// Seed of every random choice (printed; give it again to replay a run)
    #[arg(long)]
    seed: Option<u64>,
    /// Folder the hub runs in, where it finds `models/` [default: the current folder]
    #[arg(long, value_name = "DIR")]
    workdir: Option<PathBuf>,
    /// JPEG photographed in receiving sessions [default: hub/vision/testdata/images/orange.jpg
    /// under --workdir]
    #[arg(long, value_name = "FILE")]
    photo: Option<PathBuf>,
    /// Most cuts the negative control makes before giving up (it stops at the first loss)
    #[arg(long, default_value_t = 30)]
    control_cuts: u32,
    /// Skip the negative control (`negative_control_detected_loss` is then null)
    #[arg(long)]
    no_control: bool,
    /// Skip the ENOSPC and EIO rounds
    #[arg(long)]
    no_faults: bool,
    /// The `central` binary for the MQTT rounds (hub run against Mosquitto, central's
    /// consumer) [default: `central` next to the hub binary]
    #[arg(long, value_name = "PATH")]
    central: Option<PathBuf>,
    /// Skip the MQTT rounds (no Mosquitto needed)
    #[arg(long)]
    no_sync: bool,
}

/// What `--json` writes.
#[derive(Debug, Serialize)]
struct Output {
    cuts: u32,
    acknowledged_lost: u64,
    ledger_verified: bool,
    negative_control_detected_loss: Option<bool>,
    passed: bool,
    seed: u64,
    run: Report,
    negative_control: Option<Report>,
}

/// Runs the subcommand.
pub fn run(args: RunArgs) -> ExitCode {
    match run_inner(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("powercut: error: {e:#}");
            ExitCode::from(super::POWERCUT_FAILED)
        }
    }
}

fn run_inner(args: RunArgs) -> anyhow::Result<bool> {
    let seed = args.seed.unwrap_or_else(rand::random);
    eprintln!("powercut run: seed {seed} (replay with --seed {seed})");
    let hub = harness::hub::find_hub(args.hub.as_deref())?;
    let workdir = match &args.workdir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir()?,
    };
    let photo = args
        .photo
        .clone()
        .unwrap_or_else(|| workdir.join("hub/vision/testdata/images/orange.jpg"));
    let central = if args.no_sync {
        None
    } else {
        let central = args
            .central
            .clone()
            .unwrap_or_else(|| hub.with_file_name("central"));
        anyhow::ensure!(
            central.is_file(),
            "no central binary at {} (build it with `cargo build -p central`, pass --central PATH, or --no-sync)",
            central.display()
        );
        Some(central)
    };
    let options = Options {
        central,
        sync_share: 0.2,
        hub,
        workdir: Some(workdir),
        photo,
        cuts: args.cuts,
        seed,
        weaken: false,
        stop_at_first_loss: false,
        faults: !args.no_faults,
    };
    let report = harness::run(&options)?;
    eprintln!(
        "powercut run: {} cuts ({} inside a CLI step, {} under hub run with {} commands sent; central holds {} events), {} acknowledged steps checked, {} lost; ledger verified: {}; {} sessions resumed; {:.1} s",
        report.cuts,
        report.cuts_mid_step,
        report.sync_rounds,
        report.commands_sent,
        report.central_events,
        report.acknowledged_steps,
        report.acknowledged_lost,
        report.ledger_verified,
        report.sessions_resumed,
        report.elapsed_s
    );
    for loss in &report.losses {
        eprintln!("  lost: {loss}");
    }
    for failure in report.resume_failures.iter().chain(&report.ledger_problems) {
        eprintln!("  {failure}");
    }
    let control = if args.no_control {
        None
    } else {
        let control = harness::run(&Options {
            cuts: args.control_cuts,
            weaken: true,
            stop_at_first_loss: true,
            faults: false,
            central: None,
            seed: seed.wrapping_add(1),
            ..options.clone()
        })?;
        eprintln!(
            "powercut run: negative control ({}=synchronous-off): {} lost after {} cuts",
            harness::WEAKEN_ENV,
            control.acknowledged_lost,
            control.cuts
        );
        Some(control)
    };
    let detected = control.as_ref().map(|c| c.acknowledged_lost > 0);
    let passed = report.passed() && report.cuts >= args.cuts && detected != Some(false);
    let output = Output {
        cuts: report.cuts,
        acknowledged_lost: report.acknowledged_lost,
        ledger_verified: report.ledger_verified,
        negative_control_detected_loss: detected,
        passed,
        seed,
        run: report,
        negative_control: control,
    };
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&output)?)?;
    }
    if detected == Some(false) {
        eprintln!(
            "powercut run: the negative control lost nothing: the harness proves nothing (is the hub a release build? the switch exists in debug builds only)"
        );
    }
    Ok(passed)
}

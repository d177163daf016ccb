//! `powercut run`: the hub's data folder on a power-cut card, staff workflows driven through
//! the hub's CLI one command per step, and the power cut at random moments.
//!
//! Each round picks a workload (a receiving session or a pickup, see [`workloads`], or — with
//! the `central` binary given — `hub run` against a real Mosquitto with central's commands
//! arriving and the outbox draining to central's consumer, see [`sync`]), a step of it and a
//! delay: the steps before run to their end, the chosen one is SIGKILLed after the
//! delay (if it had not ended), and the card loses everything not made durable (with a random
//! tear of each file's last write). Then the harness checks what a user relies on:
//!
//! - every step the hub answered "ok" (exit 0 with its output) is still there: the manifest,
//!   each bound item, the weight, the photo, the decision, the release (stock of the lot), the
//!   imported order, the code check (a handover without a new check is accepted), the handover;
//! - `hub ledger verify` passes (SQLite's integrity check, balances recomputed from the
//!   journal, outbox sequence numbers contiguous);
//! - every photo on a decided line that has a stored copy has it with its hash;
//! - the interrupted workload can be resumed from what the hub shows and finishes as it would
//!   have without the cut (both items bound, not flagged; the lot in stock; the order
//!   collected).
//!
//! Every 10 rounds and at the end, every earlier session and order is checked again. The
//! random choices come from one seed, printed, so a run can be replayed with `--seed`.

pub mod hub;
pub mod sync;
pub mod workloads;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::{Fault, MountOptions, MountedFs, PowerCutFs, Tear};
use hub::Hub;
use workloads::{Effect, Files, Workload};

/// How long a restarted `hub run` gets to apply the commands the broker kept for it and to
/// deliver its outbox before what is missing counts as lost.
const DRAIN_DEADLINE: Duration = Duration::from_secs(120);

/// The hub's test-only switch that weakens durability (debug builds only, see the hub's
/// `store::WEAKEN_DURABILITY_ENV`).
pub const WEAKEN_ENV: &str = "HUB_TEST_WEAKEN_DURABILITY";

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub hub: PathBuf,
    /// Current folder of the hub's children (where it finds `models/`); `None`: ours.
    pub workdir: Option<PathBuf>,
    /// A JPEG for the receiving sessions' photos.
    pub photo: PathBuf,
    pub cuts: u32,
    pub seed: u64,
    /// Run the hub with durability weakened (the negative control).
    pub weaken: bool,
    /// Stop at the first acknowledged step found lost (the negative control needs one).
    pub stop_at_first_loss: bool,
    /// Also fill the card (ENOSPC) and fail its writes (EIO) under the hub.
    pub faults: bool,
    /// The `central` binary: with it, a fifth of the rounds run `hub run` against a real
    /// Mosquitto (commands down, the outbox drained to central's consumer) and cut it.
    pub central: Option<PathBuf>,
    /// Share of the rounds that are MQTT rounds when `central` is given (0.2 by default; 1.0
    /// runs MQTT rounds only).
    pub sync_share: f64,
}

/// What a run found.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub seed: u64,
    pub cuts: u32,
    /// Rounds whose chosen step was killed before it answered (the rest ended first).
    pub cuts_mid_step: u32,
    pub receiving_sessions: u32,
    pub pickups: u32,
    /// Rounds cut under `hub run` with commands arriving and the uplink draining.
    pub sync_rounds: u32,
    /// Commands the broker took from `central send` (all must be applied after restarts).
    pub commands_sent: u32,
    /// Events central holds for the site at the end (one stream, no gaps, no conflicts).
    pub central_events: i64,
    /// Steps answered "ok" and checked after a later cut.
    pub acknowledged_steps: u64,
    pub acknowledged_lost: u64,
    /// What was lost (the first 20).
    pub losses: Vec<String>,
    pub ledger_verified: bool,
    pub ledger_problems: Vec<String>,
    pub photos_checked: u64,
    pub photos_missing: u64,
    pub photos_without_copy: u64,
    pub sessions_resumed: u32,
    pub resume_failures: Vec<String>,
    /// ENOSPC and EIO rounds and what the hub said.
    pub faults: Vec<FaultRound>,
    pub hub_errors_unclear: Vec<String>,
    pub fsyncs: u64,
    pub elapsed_s: f64,
}

impl Report {
    fn lost(&mut self, what: String) {
        self.acknowledged_lost += 1;
        if self.losses.len() < 20 {
            self.losses.push(what);
        }
    }

    /// Nothing acknowledged lost, the ledger verified, every session resumed, every photo
    /// there, every injected fault a clear error.
    pub fn passed(&self) -> bool {
        self.acknowledged_lost == 0
            && self.ledger_verified
            && self.resume_failures.is_empty()
            && self.photos_missing == 0
            && self.hub_errors_unclear.is_empty()
    }
}

/// One injected fault: the step that met it and the hub's answer.
#[derive(Debug, Clone, Serialize)]
pub struct FaultRound {
    pub fault: String,
    pub step: String,
    pub exit: Option<i32>,
    pub message: String,
}

/// The card, the site and what the hub acknowledged so far.
struct Run {
    card: MountedFs,
    hub: Hub,
    files: Files,
    rng: StdRng,
    report: Report,
    done: Vec<Workload>,
    sync: Option<sync::SyncRig>,
    scratch_dir: PathBuf,
    /// Typical duration of each step kind (the kill delay is drawn below it).
    typical: std::collections::HashMap<String, Duration>,
    _scratch: tempfile::TempDir,
}

/// Runs the harness and returns its report (an `Err` is a failure of the harness itself).
pub fn run(options: &Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    let card = PowerCutFs::mount_temp(MountOptions {
        seed: Some(options.seed),
        ..MountOptions::default()
    })
    .context("mounting the power-cut card")?;
    let scratch = tempfile::Builder::new().prefix("powercut-run-").tempdir()?;
    // The data folder exists durably before the hub starts, as the package's postinst makes
    // /var/lib/hub: the hub's own durability starts inside it.
    let data = card.mountpoint().join("data");
    std::fs::create_dir(&data)?;
    std::fs::File::open(card.mountpoint())?.sync_all()?;
    let config = scratch.path().join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "[site]\nid = \"{}\"\n[store]\ndata_dir = \"{}\"\n\
             [receiving]\nphoto_required = false\n\
             [[stations]]\nid = \"dock\"\nkind = \"receiving\"\n\
             [[stations]]\nid = \"desk-1\"\nkind = \"pickup\"\n\
             [[stations]]\nid = \"desk-2\"\nkind = \"pickup\"\n",
            workloads::SITE,
            data.display()
        ),
    )?;
    let rig = match &options.central {
        Some(central) => Some(sync::SyncRig::start(scratch.path(), central.clone())?),
        None => None,
    };
    if let Some(rig) = &rig {
        let mut text = std::fs::read_to_string(&config)?;
        text.push_str(&format!(
            "[uplink]\nbroker = \"{}\"\nheartbeat_seconds = 1\nreconnect_min_seconds = 0.1\nreconnect_max_seconds = 1\n[status]\nenabled = false\n",
            rig.broker_url()
        ));
        std::fs::write(&config, text)?;
    }
    let photo = std::fs::read(&options.photo)
        .with_context(|| format!("reading the photo {}", options.photo.display()))?;
    let mut hub = Hub {
        binary: options.hub.clone(),
        config,
        workdir: options.workdir.clone(),
        env: Vec::new(),
    };
    let files = Files {
        dir: scratch.path().to_owned(),
        photo,
    };
    // Set-up with the hub's real durability, then a cut, so that the negative control differs
    // from the real run only in the workloads.
    files.setup(&hub).context("setting up the site")?;
    card.cut(Tear::None)?;
    if options.weaken {
        hub.env
            .push((WEAKEN_ENV.to_owned(), "synchronous-off".to_owned()));
    }
    let mut run = Run {
        card,
        hub,
        files,
        rng: StdRng::seed_from_u64(options.seed),
        report: Report {
            seed: options.seed,
            ledger_verified: true,
            ..Report::default()
        },
        done: Vec::new(),
        sync: rig,
        scratch_dir: scratch.path().to_owned(),
        typical: Default::default(),
        _scratch: scratch,
    };
    let mut next = 1u32;
    for round in 0..options.cuts {
        if run.sync.is_some() && run.rng.random_bool(options.sync_share.clamp(0.0, 1.0)) {
            run.sync_round(next)
                .with_context(|| format!("round {round} (sync S{next})"))?;
            next += 1;
            if options.stop_at_first_loss && run.report.acknowledged_lost > 0 {
                break;
            }
            continue;
        }
        let workload = if run.rng.random_bool(0.6) {
            Workload::Receiving { n: next }
        } else {
            Workload::Pickup { n: next }
        };
        next += 1;
        run.round(&workload)
            .with_context(|| format!("round {round} ({})", workload.name()))?;
        run.done.push(workload);
        if (round + 1) % 10 == 0 {
            run.check_all()?;
        }
        if options.stop_at_first_loss && run.report.acknowledged_lost > 0 {
            break;
        }
    }
    if options.faults && run.report.acknowledged_lost == 0 {
        run.faults(&mut next)?;
    }
    run.check_all()?;
    if run.sync.is_some() && run.report.acknowledged_lost == 0 {
        // A last drain without a cut: central ends with every event of the site, once.
        run.drain_and_check_central(None)?;
    }
    run.report.fsyncs = {
        let c = run.card.counters();
        c.fsyncs + c.fdatasyncs + c.fsyncdirs
    };
    run.report.elapsed_s = started.elapsed().as_secs_f64();
    Ok(run.report)
}

/// The step kind, for typical durations: `receive photo`, `pickup check`…
fn kind_of(args: &[String]) -> String {
    args.iter().take(2).cloned().collect::<Vec<_>>().join(" ")
}

impl Run {
    /// Runs `workload` up to a random step, kills that step at a random moment, cuts the
    /// power, checks, and resumes the workload to its end.
    fn round(&mut self, workload: &Workload) -> anyhow::Result<()> {
        match workload {
            Workload::Receiving { .. } => self.report.receiving_sessions += 1,
            Workload::Pickup { .. } => self.report.pickups += 1,
        }
        let steps = self.files.steps(workload)?;
        let victim = self.rng.random_range(0..steps.len());
        let mut acked = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let args: Vec<&str> = step.args.iter().map(String::as_str).collect();
            let kind = kind_of(&step.args);
            let kill_after = (i == victim).then(|| {
                let typical = self
                    .typical
                    .get(&kind)
                    .copied()
                    .unwrap_or(Duration::from_millis(50));
                // Up to 1.2× the typical duration: most kills land inside the step.
                typical.mul_f64(self.rng.random_range(0.0..1.2))
            });
            let answer = self.hub.run_killed_after(&args, kill_after)?;
            if !answer.answered() {
                self.report.cuts_mid_step += 1;
                break;
            }
            self.typical.insert(kind, answer.took);
            anyhow::ensure!(
                workloads::expected_answer(step, &answer),
                "{} answered unexpectedly before any cut (exit {:?}): {}",
                step.args.join(" "),
                answer.code,
                answer.text()
            );
            acked.push(step.effect.clone());
            if i == victim {
                break;
            }
        }
        let report = self.card.cut(Tear::Random)?;
        anyhow::ensure!(
            !report.lazy_unmount,
            "the card was still busy at the cut: {report:?}"
        );
        self.report.cuts += 1;
        self.check_acknowledged(workload, &acked)?;
        self.verify_ledger()?;
        self.resume(workload)?;
        Ok(())
    }

    /// After a cut: is every acknowledged step of `workload` still there?
    fn check_acknowledged(&mut self, workload: &Workload, acked: &[Effect]) -> anyhow::Result<()> {
        self.report.acknowledged_steps += acked.len() as u64;
        match *workload {
            Workload::Receiving { n } => {
                let stock = workloads::stock(&self.hub)?;
                let state = workloads::session_state(&self.hub, n, &stock)?;
                for effect in acked {
                    let kept = match effect {
                        Effect::ManifestLoaded => state.manifest,
                        // The station's selection is resumed by scanning the label again.
                        Effect::LineSelected => true,
                        Effect::ItemBound { serial } => state.bound.contains(serial),
                        Effect::Weighed => state.weighed,
                        Effect::Photographed { sha256 } => {
                            state.photos.iter().any(|(sha, _)| sha == sha256)
                        }
                        Effect::Decided => state.decided,
                        Effect::Released => state.released,
                        _ => true,
                    };
                    if !kept {
                        self.report
                            .lost(format!("D{n}: acknowledged {effect:?} gone after the cut"));
                    }
                }
            }
            Workload::Pickup { n } => {
                let collected = workloads::collected_orders(&self.hub)?.contains(&n);
                for effect in acked {
                    let kept = match effect {
                        // Central resending the order finds it already there.
                        Effect::OrderImported => {
                            workloads::import_again(&self.hub, &self.files, n)?
                        }
                        Effect::HandedOver | Effect::ToldCollected => collected,
                        // A kept check lets desk-1 hand over without a new one.
                        Effect::CodeChecked if !collected => {
                            let steps = self.files.steps(workload)?;
                            let args: Vec<&str> =
                                steps[2].args.iter().map(String::as_str).collect();
                            self.hub.run(&args)?.ok()
                        }
                        _ => true,
                    };
                    if !kept {
                        self.report
                            .lost(format!("P{n}: acknowledged {effect:?} gone after the cut"));
                    }
                }
            }
        }
        Ok(())
    }

    /// `hub ledger verify`: integrity, balances, outbox contiguity.
    fn verify_ledger(&mut self) -> anyhow::Result<()> {
        let answer = self.hub.run(&["ledger", "verify", "--json"])?;
        if !answer.ok() {
            self.report.ledger_verified = false;
            if self.report.ledger_problems.len() < 20 {
                self.report.ledger_problems.push(format!(
                    "after cut {}: exit {:?}: {}",
                    self.report.cuts,
                    answer.code,
                    answer.text().trim()
                ));
            }
        }
        Ok(())
    }

    /// Finishes an interrupted workload from what the hub shows, as staff would.
    fn resume(&mut self, workload: &Workload) -> anyhow::Result<()> {
        let failure = match *workload {
            Workload::Receiving { n } => self.resume_receiving(workload, n)?,
            Workload::Pickup { n } => self.resume_pickup(workload, n)?,
        };
        match failure {
            None => self.report.sessions_resumed += 1,
            Some(why) => {
                if self.report.resume_failures.len() < 20 {
                    self.report
                        .resume_failures
                        .push(format!("{}: {why}", workload.name()));
                }
            }
        }
        Ok(())
    }

    fn resume_receiving(&mut self, workload: &Workload, n: u32) -> anyhow::Result<Option<String>> {
        let steps = self.files.steps(workload)?;
        let stock = workloads::stock(&self.hub)?;
        let state = workloads::session_state(&self.hub, n, &stock)?;
        for step in &steps {
            let needed = match &step.effect {
                Effect::ManifestLoaded => !state.manifest,
                Effect::LineSelected => !state.decided,
                Effect::ItemBound { serial } => !state.decided && !state.bound.contains(serial),
                Effect::Weighed => !state.decided && !state.weighed,
                Effect::Photographed { .. } => !state.decided && state.photos.is_empty(),
                Effect::Decided => !state.decided,
                Effect::Released => !state.released,
                _ => false,
            };
            if !needed {
                continue;
            }
            let args: Vec<&str> = step.args.iter().map(String::as_str).collect();
            let answer = self.hub.run(&args)?;
            if !workloads::expected_answer(step, &answer) {
                return Ok(Some(format!(
                    "`{}` answered exit {:?}: {}",
                    step.args.join(" "),
                    answer.code,
                    answer.text().trim()
                )));
            }
        }
        let stock = workloads::stock(&self.hub)?;
        let state = workloads::session_state(&self.hub, n, &stock)?;
        if !state.released || state.bound.len() != 2 || state.flagged != "[]" {
            return Ok(Some(format!(
                "after resuming: released {}, bound {:?}, flagged {}",
                state.released, state.bound, state.flagged
            )));
        }
        Ok(None)
    }

    fn resume_pickup(&mut self, workload: &Workload, n: u32) -> anyhow::Result<Option<String>> {
        let steps = self.files.steps(workload)?;
        // Central resends the order if it was lost; then desk-1 checks the code and hands it
        // over, unless that already happened.
        workloads::import_again(&self.hub, &self.files, n)?;
        if !workloads::collected_orders(&self.hub)?.contains(&n) {
            for step in &steps[1..3] {
                let args: Vec<&str> = step.args.iter().map(String::as_str).collect();
                let answer = self.hub.run(&args)?;
                if !answer.ok() {
                    return Ok(Some(format!(
                        "`{}`: exit {:?}: {}",
                        step.args.join(" "),
                        answer.code,
                        answer.text().trim()
                    )));
                }
            }
        }
        // Desk-2 must hear that it is collected (a right code: never a wrong guess).
        let args: Vec<&str> = steps[3].args.iter().map(String::as_str).collect();
        let answer = self.hub.run(&args)?;
        if !workloads::expected_answer(&steps[3], &answer) {
            return Ok(Some(format!(
                "desk-2 after resuming: exit {:?}: {}",
                answer.code,
                answer.text().trim()
            )));
        }
        Ok(None)
    }

    /// Every earlier session and order, again: still there after all later cuts, and every
    /// photo's stored copy intact.
    fn check_all(&mut self) -> anyhow::Result<()> {
        let stock = workloads::stock(&self.hub)?;
        let collected = workloads::collected_orders(&self.hub)?;
        for workload in self.done.clone() {
            match workload {
                Workload::Receiving { n } => {
                    let state = workloads::session_state(&self.hub, n, &stock)?;
                    if !(state.manifest && state.decided && state.released) {
                        self.report.lost(format!(
                            "D{n}: finished session incomplete after later cuts: {state:?}"
                        ));
                    }
                    for (sha, path) in &state.photos {
                        match path {
                            Some(path) => {
                                self.report.photos_checked += 1;
                                if !workloads::photo_intact(Path::new(path), sha) {
                                    self.report.photos_missing += 1;
                                    self.report
                                        .lost(format!("D{n}: photo {sha} missing or altered"));
                                }
                            }
                            None => self.report.photos_without_copy += 1,
                        }
                    }
                }
                Workload::Pickup { n } => {
                    if !collected.contains(&n) {
                        self.report.lost(format!(
                            "P{n}: collected order not collected after later cuts"
                        ));
                    }
                }
            }
        }
        self.verify_ledger()
    }

    /// `hub run` against Mosquitto: commands sent while it drains the outbox, the power cut
    /// at a random moment, then a restart that must apply every command the broker took and
    /// bring central up to date with one stream, no gaps and no conflicts.
    fn sync_round(&mut self, n: u32) -> anyhow::Result<()> {
        self.report.sync_rounds += 1;
        let log = self.scratch_dir.join(format!("hub-run-{n}.log"));
        let daemon = sync::Daemon::start(&self.hub, log)?;
        let kill_at = Instant::now() + Duration::from_millis(self.rng.random_range(0..600));
        let mut sent = Vec::new();
        for k in 0..3 {
            if Instant::now() >= kill_at {
                break;
            }
            let code = format!("SYNC-{n}-{k}");
            let rig = self.sync.as_ref().context("sync rounds need the rig")?;
            if rig.send_sku(&code)? {
                sent.push(code);
            }
        }
        if let Some(wait) = kill_at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        daemon.kill();
        self.card.cut(Tear::Random)?;
        self.report.cuts += 1;
        self.report.commands_sent += sent.len() as u32;
        self.report.acknowledged_steps += sent.len() as u64;
        self.verify_ledger()?;
        self.drain_and_check_central(Some(&sent))?;
        Ok(())
    }

    /// Runs `hub run` until every command in `sent` is applied and central holds every event
    /// of the hub's outbox, then stops it cleanly; records what is missing.
    fn drain_and_check_central(&mut self, sent: Option<&[String]>) -> anyhow::Result<()> {
        let log = self.scratch_dir.join("hub-run-drain.log");
        let daemon = match sync::Daemon::start(&self.hub, log) {
            Ok(daemon) => daemon,
            Err(e) => {
                self.report
                    .lost(format!("hub run does not start after the cut: {e:#}"));
                return Ok(());
            }
        };
        // A command the broker holds arrives once the restarted hub has reconnected and drained
        // its session; on a machine kept busy that has taken over 30 s. A lost command never
        // arrives, so a long wait costs time only when something is really lost.
        let deadline = Instant::now() + DRAIN_DEADLINE;
        if let Some(sent) = sent {
            loop {
                let have = sync::sku_codes(&self.hub)?;
                let missing: Vec<&String> = sent.iter().filter(|c| !have.contains(c)).collect();
                if missing.is_empty() {
                    break;
                }
                if Instant::now() > deadline {
                    for code in missing {
                        self.report.lost(format!(
                            "command sku_upsert {code}, taken by the broker, never applied"
                        ));
                    }
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let rig = self.sync.as_ref().context("sync rounds need the rig")?;
        let (outbox, report) = loop {
            let verify = self.hub.must(&["ledger", "verify", "--json"])?;
            let verify: serde_json::Value = serde_json::from_str(&verify)?;
            let outbox = verify["outbox_events"].as_i64().unwrap_or(0);
            let report = rig.site_report()?;
            let caught_up = report.as_ref().is_some_and(|r| {
                r["max_seq"].as_i64() == Some(outbox)
                    && r["contiguous_seq"].as_i64() == Some(outbox)
            });
            if caught_up || Instant::now() > deadline {
                break (outbox, report);
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        daemon.stop()?;
        let report = report.unwrap_or_default();
        self.report.central_events = report["events"].as_i64().unwrap_or(0);
        let streams = report["streams"].as_array().map_or(0, Vec::len);
        let conflicts = report["conflicts"].as_i64().unwrap_or(0);
        let contiguous = report["contiguous_seq"].as_i64().unwrap_or(0);
        let max = report["max_seq"].as_i64().unwrap_or(0);
        if streams != 1 || conflicts != 0 || contiguous != max || max != outbox {
            self.report.lost(format!(
                "central after the cuts: {streams} stream(s), {conflicts} conflict(s), contiguous to {contiguous} of {max}, hub outbox {outbox}"
            ));
        }
        Ok(())
    }

    /// A full card (ENOSPC) and a failing one (EIO on the WAL) under a receiving session: the
    /// hub must answer with a clear error, and nothing it acknowledged may be lost.
    fn faults(&mut self, next: &mut u32) -> anyhow::Result<()> {
        for (name, fault) in [
            (
                "ENOSPC",
                Fault::Capacity {
                    bytes: self.card.used_bytes() + 16 * 1024,
                },
            ),
            (
                "EIO",
                Fault::WriteEio {
                    path_contains: ".sqlite-wal".to_owned(),
                },
            ),
        ] {
            let workload = Workload::Receiving { n: *next };
            *next += 1;
            self.report.receiving_sessions += 1;
            let steps = self.files.steps(&workload)?;
            let mut acked = Vec::new();
            // The first two steps with a healthy card, then the fault.
            for (i, step) in steps.iter().enumerate() {
                if i == 2 {
                    self.card.inject(fault.clone());
                }
                let args: Vec<&str> = step.args.iter().map(String::as_str).collect();
                let answer = self.hub.run(&args)?;
                if workloads::expected_answer(step, &answer) {
                    acked.push(step.effect.clone());
                    continue;
                }
                let message = answer.stderr.trim().to_owned();
                // A full card must be called full; a failing one an I/O error.
                let says = match fault {
                    Fault::Capacity { .. } => message.contains("full"),
                    _ => message.contains("I/O error"),
                };
                let clear = answer.code == Some(1) && !message.contains("panicked") && says;
                if !clear {
                    self.report.hub_errors_unclear.push(format!(
                        "{name} at `{}`: exit {:?}: {message}",
                        step.args.join(" "),
                        answer.code
                    ));
                }
                self.report.faults.push(FaultRound {
                    fault: name.to_owned(),
                    step: step.args[..2].join(" "),
                    exit: answer.code,
                    message: message.lines().last().unwrap_or_default().to_owned(),
                });
                break;
            }
            if !self.report.faults.iter().any(|f| f.fault == name) {
                self.report.hub_errors_unclear.push(format!(
                    "{name}: no step of {} met the fault",
                    workload.name()
                ));
            }
            self.card.clear_faults();
            self.card.cut(Tear::Random)?;
            self.report.cuts += 1;
            self.check_acknowledged(&workload, &acked)?;
            self.verify_ledger()?;
            self.resume(&workload)?;
            self.done.push(workload);
        }
        Ok(())
    }
}

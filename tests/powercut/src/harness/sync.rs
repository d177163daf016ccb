//! The hub's MQTT side under power cuts: `hub run` connected to a real Mosquitto, central's
//! commands (`central send`) applied while the uplink drains the outbox to the reference
//! consumer (`central run`, its database outside the card).
//!
//! A command counts as acknowledged once the broker took it from `central send` (exit 0): the
//! hub acknowledges it to the broker only after it committed it, so the broker redelivers
//! whatever a cut took, and after a restart every sent command must be applied. Central must
//! hold every event once: one stream (a hub that lost committed events would start a new one,
//! or reuse sequence numbers and make conflicts), no gaps, no conflicts, and it catches up with
//! the hub.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use hub_mqtt::brokers::{Mosquitto, MosquittoOptions};
use serde_json::Value;

use super::hub::Hub;
use super::workloads::SITE;

/// Mosquitto and central's consumer, for the life of a harness run.
pub struct SyncRig {
    broker: Mosquitto,
    central_bin: PathBuf,
    central: Child,
    central_db: PathBuf,
}

impl SyncRig {
    pub fn start(dir: &Path, central_bin: PathBuf) -> anyhow::Result<SyncRig> {
        let broker = Mosquitto::start(&dir.join("mosquitto"), &MosquittoOptions::default())
            .context("starting Mosquitto (Debian package `mosquitto`)")?;
        let central_db = dir.join("central.sqlite");
        let central = Command::new(&central_bin)
            .args([
                "run",
                "--broker",
                &format!("mqtt://127.0.0.1:{}", broker.port()),
            ])
            .arg("--db")
            .arg(&central_db)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("central.log"))?)
            .spawn()
            .with_context(|| format!("starting {}", central_bin.display()))?;
        Ok(SyncRig {
            broker,
            central_bin,
            central,
            central_db,
        })
    }

    pub fn broker_url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.broker.port())
    }

    /// `central send` of an `sku_upsert` for SKU `code`: whether the broker took it.
    pub fn send_sku(&self, code: &str) -> anyhow::Result<bool> {
        let body =
            format!(r#"{{"code":"{code}","name":"Synced {code}","unit":"piece","version":1}}"#);
        let out = Command::new(&self.central_bin)
            .args(["send", "--broker", &self.broker_url(), "--site", SITE])
            .args(["--kind", "sku_upsert", "--key", code, "--version", "1"])
            .args(["--id", &format!("cmd-{code}"), "--body", &body])
            .stdin(Stdio::null())
            .output()?;
        Ok(out.status.success())
    }

    /// What central holds for the site (`central report --json`).
    pub fn site_report(&self) -> anyhow::Result<Option<Value>> {
        let out = Command::new(&self.central_bin)
            .args(["report", "--json", "--db"])
            .arg(&self.central_db)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "central report failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "central report --json: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })?;
        Ok(report["sites"]
            .as_array()
            .and_then(|sites| sites.iter().find(|s| s["site"] == SITE))
            .cloned())
    }
}

impl Drop for SyncRig {
    fn drop(&mut self) {
        let _ = self.central.kill();
        let _ = self.central.wait();
    }
}

/// A running `hub run`, killed (the power cut) or stopped with SIGTERM.
pub struct Daemon {
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Starts `hub run` and waits until it says it runs (or fails).
    pub fn start(hub: &Hub, log: PathBuf) -> anyhow::Result<Daemon> {
        let mut command = hub.command(&["run"]);
        command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?);
        let child = command.spawn()?;
        let mut daemon = Daemon {
            child: Some(child),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if daemon.log_text().contains("hub running") {
                return Ok(daemon);
            }
            if let Some(status) = daemon.child_mut().try_wait()? {
                anyhow::bail!("hub run exited ({status}) at start: {}", daemon.log_text());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "hub run did not start in 60 s: {}",
                daemon.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child
            .as_mut()
            .expect("the daemon runs until it is killed or stopped")
    }

    pub fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// SIGKILL, as the power cut does.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait: a clean stop.
    pub fn stop(mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            rustix::process::kill_process(
                rustix::process::Pid::from_raw(child.id() as i32)
                    .context("the daemon has a pid")?,
                rustix::process::Signal::TERM,
            )?;
            let status = child.wait()?;
            anyhow::ensure!(status.success(), "hub run stopped with {status}");
        }
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The SKU codes the hub holds (`sku list --json`).
pub fn sku_codes(hub: &Hub) -> anyhow::Result<Vec<String>> {
    let out = hub.must(&["sku", "list", "--json"])?;
    let skus: Value =
        serde_json::from_str(&out).with_context(|| format!("sku list --json: {out}"))?;
    Ok(skus
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["code"].as_str().map(str::to_owned))
        .collect())
}

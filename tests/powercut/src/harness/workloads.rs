//! What staff do, step by step through the hub's CLI, and how to tell afterwards which of the
//! acknowledged steps the hub still knows about.
//!
//! - A **receiving session** (delivery `D<n>`, one line of two trace-coded oranges): manifest,
//!   crate label scan, two item scans, a weight, a photo (a copy of the test photo made unique,
//!   so each session has its own evidence file), the decision (held: the site has no vision
//!   rule, so the photo needs review) and the release of both items into stock.
//! - A **pickup** (order `P<n>` for one bag of rice, from the stock received at setup): the order
//!   is imported, its code checked at desk-1, handed over at desk-1, and checked again at
//!   desk-2, which must be told it is already collected.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::hub::{Answer, Hub};

pub const SITE: &str = "powercut-site";
pub const GTIN: &str = "09506000134352";
const SALT: &str = "0a0b0c0d";
const PICKUP_CODE: &str = "246810";

/// One CLI step of a workload and what the hub must remember once it said "ok".
#[derive(Debug, Clone)]
pub struct Step {
    pub args: Vec<String>,
    pub effect: Effect,
}

/// What an acknowledged step left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    ManifestLoaded,
    LineSelected,
    ItemBound {
        serial: String,
    },
    Weighed,
    Photographed {
        sha256: String,
    },
    Decided,
    Released,
    OrderImported,
    CodeChecked,
    HandedOver,
    /// Desk-2 was told the order is collected (a read; nothing to keep).
    ToldCollected,
}

/// A workload instance: a receiving session or a pickup, numbered.
#[derive(Debug, Clone)]
pub enum Workload {
    Receiving { n: u32 },
    Pickup { n: u32 },
}

impl Workload {
    pub fn name(&self) -> String {
        match self {
            Workload::Receiving { n } => format!("receiving D{n}"),
            Workload::Pickup { n } => format!("pickup P{n}"),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Workload::Receiving { .. } => "receiving",
            Workload::Pickup { .. } => "pickup",
        }
    }
}

fn serials(n: u32) -> [String; 2] {
    [format!("I{n:05}A"), format!("I{n:05}B")]
}

fn item_code(serial: &str) -> String {
    // GS1 DataMatrix as a scanner sends it: symbology id, AI 01 GTIN, AI 21 serial.
    format!("]C101{GTIN}21{serial}")
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The files a workload reads (manifest, photo, orders), written outside the card.
pub struct Files {
    pub dir: PathBuf,
    pub photo: Vec<u8>,
}

impl Files {
    fn write(&self, name: &str, contents: &[u8]) -> anyhow::Result<String> {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
        Ok(path.display().to_string())
    }

    /// The session's photo: the test photo with bytes after its end marker (decoders ignore
    /// them), so every session has a photo with its own hash.
    fn photo(&self, n: u32) -> anyhow::Result<(String, String)> {
        let mut bytes = self.photo.clone();
        bytes.extend_from_slice(format!("powercut session {n}").as_bytes());
        let sha = sha256_hex(&bytes);
        Ok((self.write(&format!("photo-{n}.jpg"), &bytes)?, sha))
    }

    fn manifest(&self, n: u32) -> anyhow::Result<String> {
        let manifest = json!({
            "delivery_id": format!("D{n}"), "supplier": "Sunny Orchards", "version": 1,
            "lines": [{"line_no": 1, "sku": "ORANGE", "lot": format!("OR-{n}"),
                       "expiry": "2030-01-31", "expected_count": 2,
                       "expected_weight_g": 10000, "weight_tolerance_g": 300}]
        });
        self.write(
            &format!("manifest-{n}.json"),
            manifest.to_string().as_bytes(),
        )
    }

    pub fn order(&self, n: u32) -> anyhow::Result<String> {
        let mut salted = hex::decode(SALT)?;
        salted.extend_from_slice(PICKUP_CODE.as_bytes());
        let order = json!([{
            "order_id": format!("P{n}"), "site": SITE, "code_salt": SALT,
            "code_hash": sha256_hex(&salted),
            "items": [{"sku": "RICE", "quantity": 1}],
            "opens_at": 0, "closes_at": 4_102_444_800_000i64,
            "status": {"state": "open"}, "version": 1
        }]);
        self.write(&format!("order-{n}.json"), order.to_string().as_bytes())
    }

    /// The site's master data and a bulk delivery of rice that pickups take from.
    pub fn setup(&self, hub: &Hub) -> anyhow::Result<()> {
        let skus = json!([
            {"code": "ORANGE", "name": "Navel oranges", "unit": "piece", "gtins": [GTIN],
             "allow_negative": false, "check_items_at_handover": false, "version": 1},
            {"code": "RICE", "name": "Rice 5 kg", "unit": "piece", "gtins": [],
             "allow_negative": false, "check_items_at_handover": false, "version": 1}
        ]);
        let skus = self.write("skus.json", skus.to_string().as_bytes())?;
        hub.must(&["sku", "import", &skus])?;
        let bulk = json!({
            "delivery_id": "BULK", "supplier": "Grain Co", "version": 1,
            "lines": [{"line_no": 1, "sku": "RICE", "lot": "R-1", "expiry": "2030-01-31",
                       "expected_count": 100000}]
        });
        let bulk = self.write("bulk.json", bulk.to_string().as_bytes())?;
        hub.must(&["receive", "manifest", &bulk])?;
        hub.must(&[
            "receive",
            "count",
            "--delivery",
            "BULK",
            "--line",
            "1",
            "100000",
        ])?;
        let decided = hub.must(&[
            "receive",
            "decide",
            "--delivery",
            "BULK",
            "--line",
            "1",
            "--staff",
            "setup",
        ])?;
        anyhow::ensure!(decided.contains("ACCEPTED"), "bulk rice: {decided}");
        Ok(())
    }

    /// The workload's steps from its start.
    pub fn steps(&self, workload: &Workload) -> anyhow::Result<Vec<Step>> {
        let step = |args: &[&str], effect| Step {
            args: args.iter().map(|s| s.to_string()).collect(),
            effect,
        };
        Ok(match *workload {
            Workload::Receiving { n } => {
                let d = format!("D{n}");
                let manifest = self.manifest(n)?;
                let (photo, sha256) = self.photo(n)?;
                let [a, b] = serials(n);
                vec![
                    step(&["receive", "manifest", &manifest], Effect::ManifestLoaded),
                    step(
                        &["receive", "scan", "--station", "dock", &format!("{d}/1")],
                        Effect::LineSelected,
                    ),
                    step(
                        &["receive", "scan", "--station", "dock", &item_code(&a)],
                        Effect::ItemBound { serial: a.clone() },
                    ),
                    step(
                        &["receive", "scan", "--station", "dock", &item_code(&b)],
                        Effect::ItemBound { serial: b.clone() },
                    ),
                    step(
                        &["receive", "weight", "--station", "dock", "10100"],
                        Effect::Weighed,
                    ),
                    step(
                        &["receive", "photo", "--station", "dock", &photo],
                        Effect::Photographed { sha256 },
                    ),
                    step(
                        &[
                            "receive",
                            "decide",
                            "--delivery",
                            &d,
                            "--line",
                            "1",
                            "--staff",
                            "li.wei",
                        ],
                        Effect::Decided,
                    ),
                    step(
                        &[
                            "receive",
                            "release",
                            "--delivery",
                            &d,
                            "--line",
                            "1",
                            "--release",
                            "2",
                            "--staff",
                            "zhao.min",
                            "--reason",
                            "photo checked by a person",
                        ],
                        Effect::Released,
                    ),
                ]
            }
            Workload::Pickup { n } => {
                let p = format!("P{n}");
                let order = self.order(n)?;
                let qr = format!("{p}:{PICKUP_CODE}");
                vec![
                    step(&["pickup", "import", &order], Effect::OrderImported),
                    step(
                        &["pickup", "check", "--station", "desk-1", &qr],
                        Effect::CodeChecked,
                    ),
                    step(
                        &[
                            "pickup",
                            "handover",
                            "--station",
                            "desk-1",
                            "--order",
                            &p,
                            "--staff",
                            "wu.fang",
                        ],
                        Effect::HandedOver,
                    ),
                    step(
                        &["pickup", "check", "--station", "desk-2", &qr],
                        Effect::ToldCollected,
                    ),
                ]
            }
        })
    }
}

/// Whether a step's answer is the one staff expect (desk-2 is refused, exit 5, "collected").
pub fn expected_answer(step: &Step, answer: &Answer) -> bool {
    match step.effect {
        Effect::ToldCollected => answer.code == Some(5) && answer.stdout.contains("collected"),
        Effect::ItemBound { .. } => answer.ok() && answer.stdout.contains("bound"),
        _ => answer.ok(),
    }
}

/// What the hub holds for a receiving session, read through the CLI.
#[derive(Debug, Default)]
pub struct SessionState {
    pub manifest: bool,
    pub bound: Vec<String>,
    pub flagged: String,
    pub weighed: bool,
    /// (sha256, stored path) of each photo on the line.
    pub photos: Vec<(String, Option<String>)>,
    pub decided: bool,
    pub released: bool,
}

/// Reads delivery `D<n>` (`receive progress --json`) and lot `OR-<n>` (`stock --json`).
pub fn session_state(hub: &Hub, n: u32, stock: &Value) -> anyhow::Result<SessionState> {
    let shown = hub.run(&[
        "receive",
        "progress",
        "--delivery",
        &format!("D{n}"),
        "--json",
    ])?;
    anyhow::ensure!(
        shown.ok(),
        "receive progress --delivery D{n} failed (exit {:?}): {}",
        shown.code,
        shown.text()
    );
    let progress: Value = serde_json::from_str(&shown.stdout)
        .with_context(|| format!("receive progress --json printed no JSON: {}", shown.text()))?;
    let mut state = SessionState::default();
    let Some(line) = progress["lines"].as_array().and_then(|l| l.first()) else {
        return Ok(state);
    };
    let observed = &line["observed"];
    state.manifest = progress["known"] == true;
    let bound = observed["bound_codes"].to_string();
    state.bound = serials(n)
        .into_iter()
        .filter(|s| bound.contains(s.as_str()))
        .collect();
    state.flagged = observed["flagged"].to_string();
    state.weighed = observed["weights_g"]
        .as_array()
        .is_some_and(|w| w.iter().any(|g| g.as_i64() == Some(10100)));
    state.photos = observed["photos"]
        .as_array()
        .map(|photos| {
            photos
                .iter()
                .map(|p| {
                    (
                        p["photo_sha256"].as_str().unwrap_or_default().to_owned(),
                        p["photo_path"].as_str().map(str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    state.decided = line["decided"] == true;
    state.released = lot_on_hand(stock, "ORANGE", &format!("OR-{n}")) == 2;
    Ok(state)
}

/// `hub stock --json`.
pub fn stock(hub: &Hub) -> anyhow::Result<Value> {
    let out = hub.must(&["stock", "--json"])?;
    serde_json::from_str(&out).with_context(|| format!("stock --json printed no JSON: {out}"))
}

fn lot_on_hand(stock: &Value, sku: &str, lot: &str) -> i64 {
    stock
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["sku"] == sku)
        .flat_map(|s| s["batches"].as_array().into_iter().flatten())
        .filter(|b| b["lot"] == lot)
        .filter_map(|b| b["on_hand"].as_i64())
        .sum()
}

/// Orders handed over: the handover movements out of the bulk rice lot (`trace --batch`, a
/// read). Checking codes to find out would count wrong guesses for orders lost with an
/// unacknowledged import, and lock the station out.
pub fn collected_orders(hub: &Hub) -> anyhow::Result<std::collections::BTreeSet<u32>> {
    let out = hub.must(&["trace", "--batch", "R-1", "--json"])?;
    let traces: Value = serde_json::from_str(&out)
        .with_context(|| format!("trace --batch --json printed no JSON: {out}"))?;
    Ok(traces
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["movements"].as_array().into_iter().flatten())
        .filter_map(|m| {
            m["reference"]
                .as_str()?
                .strip_prefix("pickup order P")?
                .parse()
                .ok()
        })
        .collect())
}

/// Imports order `P<n>` again (as central would resend it): whether the hub already had it.
pub fn import_again(hub: &Hub, files: &Files, n: u32) -> anyhow::Result<bool> {
    let order = files.order(n)?;
    let out = hub.must(&["pickup", "import", &order])?;
    // "1 order(s) read, N stored, M skipped (…)"
    let stored = out
        .split(", ")
        .find_map(|part| part.strip_suffix(" stored"))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .with_context(|| format!("pickup import said: {out}"))?;
    Ok(stored == 0)
}

/// A photo's stored copy: present with the hash it is filed under.
pub fn photo_intact(path: &Path, sha256: &str) -> bool {
    std::fs::read(path).is_ok_and(|bytes| sha256_hex(&bytes) == sha256)
}

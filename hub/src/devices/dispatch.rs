//! The dispatcher: device events in, journal rows and workflow calls out — journal then act.
//!
//! Each scan or stable weight becomes one store write: the raw input goes into `device_input`,
//! then the workflow for the device's role runs in a nested savepoint, then the outcome is
//! written on the journal row, all in one durable transaction. A workflow that refuses (no
//! line selected, unknown label) rolls back only its own effects: the input stays journaled
//! as `refused`, the refusal is logged with device and station and counted, and the task
//! goes on. A scan the workflow records on its line as flagged (malformed, unrecognised,
//! already bound, wrong lot…) is journaled as `flagged` with the flag's reason, never as
//! `applied`. Online/offline changes write their outbox event and raise or clear the alert.
//! Business rules stay in the store's workflows; this task only routes.

use super::config::{DeviceConfig, DeviceRole};
use super::{DeviceEvent, HealthBoard, ParsedCode};
use crate::config::Config;
use crate::store::device_input::{self, NewInput, attempt};
use crate::store::receiving;
use crate::store::{Store, StoreError};
use crate::workflows::receiving::{ScanOutcome, ScanRules};
use hub_core::Timestamp;
use rusqlite::Connection;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What became of one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `applied`, `flagged` or `refused`.
    pub outcome: &'static str,
    pub detail: String,
}

/// What a workflow did with an input it took.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Acted {
    Applied(String),
    /// Recorded, but flagged for a person (the detail says why).
    Flagged(String),
}

/// Runs until shutdown; events already queued at shutdown are still journaled.
pub async fn run(
    mut events: mpsc::Receiver<DeviceEvent>,
    store: Store,
    config: Config,
    board: HealthBoard,
    shutdown: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            event = events.recv() => match event {
                Some(event) => event,
                None => break,
            },
            _ = shutdown.cancelled() => {
                events.close();
                while let Ok(event) = events.try_recv() {
                    handle(&store, &config, &board, event).await;
                }
                break;
            }
        };
        handle(&store, &config, &board, event).await;
    }
    tracing::debug!("device dispatcher stopped");
}

async fn handle(store: &Store, config: &Config, board: &HealthBoard, event: DeviceEvent) {
    let Some(device) = config
        .devices
        .iter()
        .find(|d| d.name == event.device())
        .cloned()
    else {
        tracing::error!(
            device = event.device(),
            "event from a device that is not configured"
        );
        return;
    };
    let now = crate::clock::now();
    let name = device.name.clone();
    let result = match event {
        DeviceEvent::DeviceOnline { detail, .. } => {
            let d = name.clone();
            store
                .write(move |c| device_input::set_device_state(c, &d, true, &detail, now))
                .await
                .map(|()| None)
        }
        DeviceEvent::DeviceOffline { reason, .. } => {
            let d = name.clone();
            store
                .write(move |c| device_input::set_device_state(c, &d, false, &reason, now))
                .await
                .map(|()| None)
        }
        DeviceEvent::StableWeight { grams, raw, .. } => store
            .write(move |c| weight(c, &device, grams, &raw, now))
            .await
            .map(Some),
        DeviceEvent::Scan {
            code, parsed, raw, ..
        } => {
            let rules = crate::workflows::receiving::ScanRules {
                patterns: device.site_patterns.clone(),
                policy: config.receiving.policy,
            };
            let config = config.clone();
            store
                .write(move |c| {
                    let input = NewInput {
                        device: &device.name,
                        station: &device.station,
                        kind: "scan",
                        code: Some(&code),
                        grams: None,
                        parsed: Some(hub_contract::devices::encode_parsed_code(&parsed)),
                        raw: &raw,
                        received_at: now,
                    };
                    let id = device_input::journal(c, &input)?;
                    let outcome = match device.role {
                        DeviceRole::Receiving => {
                            receiving_scan(c, &device, &rules, &code, &parsed, now)?
                        }
                        DeviceRole::Pickup => attempt(c, |c| {
                            crate::workflows::pickup::check_in(
                                c,
                                &config,
                                &device.station,
                                &crate::workflows::pickup::CodeEntry::scanned(&code),
                                now,
                            )
                        })?
                        .and_then(|check| {
                            let text = crate::store::pickup::describe(&check);
                            if check.is_found() {
                                Ok(Acted::Applied(text))
                            } else {
                                Err(text)
                            }
                        }),
                    };
                    finish(c, id, outcome)
                })
                .await
                .map(Some)
        }
    };
    match result {
        Ok(None) => {}
        Ok(Some(outcome)) => {
            let station = config
                .devices
                .iter()
                .find(|d| d.name == name)
                .map(|d| d.station.as_str())
                .unwrap_or_default();
            match outcome.outcome {
                "applied" => {
                    tracing::info!(device = %name, station, detail = %outcome.detail, "device input applied");
                    board.update(&name, |h| h.applied += 1);
                }
                "flagged" => {
                    tracing::warn!(device = %name, station, detail = %outcome.detail, "device input flagged for review (journaled)");
                    board.update(&name, |h| h.flagged += 1);
                }
                _ => {
                    tracing::warn!(device = %name, station, detail = %outcome.detail, "device input refused (journaled)");
                    board.update(&name, |h| h.refused += 1);
                }
            }
        }
        Err(e) => {
            // The input may be lost: the store could not make it durable.
            tracing::error!(device = %name, error = %e, "cannot journal device input");
        }
    }
}

fn finish(c: &Connection, id: i64, outcome: Result<Acted, String>) -> Result<Outcome, StoreError> {
    let outcome = match outcome {
        Ok(Acted::Applied(detail)) => Outcome {
            outcome: "applied",
            detail,
        },
        Ok(Acted::Flagged(detail)) => Outcome {
            outcome: "flagged",
            detail,
        },
        Err(detail) => Outcome {
            outcome: "refused",
            detail,
        },
    };
    device_input::set_outcome(c, id, outcome.outcome, &outcome.detail)?;
    Ok(outcome)
}

fn weight(
    c: &Connection,
    device: &DeviceConfig,
    grams: i64,
    raw: &str,
    now: Timestamp,
) -> Result<Outcome, StoreError> {
    let input = NewInput {
        device: &device.name,
        station: &device.station,
        kind: "weight",
        code: None,
        grams: Some(grams),
        parsed: None,
        raw,
        received_at: now,
    };
    let id = device_input::journal(c, &input)?;
    let outcome = attempt(c, |c| {
        receiving::record_weight(c, &device.station, grams, now)
    })?
    .map(|sel| {
        Acted::Applied(format!(
            "{grams} g recorded on delivery {} line {} ({} lot {})",
            sel.delivery_id, sel.line_no, sel.sku, sel.lot
        ))
    });
    finish(c, id, outcome)
}

/// A receiving scan goes through the same step as every other entry point
/// ([`crate::workflows::receiving::scan_in`]): a crate or delivery label selects its line, a
/// trace code is bound and a product scan counted on the selected line (applied), anything
/// else is flagged on it with its reason (flagged).
fn receiving_scan(
    c: &Connection,
    device: &DeviceConfig,
    rules: &ScanRules,
    code: &str,
    parsed: &ParsedCode,
    now: Timestamp,
) -> Result<Result<Acted, String>, StoreError> {
    // The AIM identifier tells the classifier the data is GS1; put it back in front.
    let text = format!("{}{code}", parsed.aim.as_deref().unwrap_or(""));
    let outcome = attempt(c, |c| {
        crate::workflows::receiving::scan_in(c, &device.station, &text, rules, now)
    })?;
    Ok(outcome.map(|o| match o {
        ScanOutcome::LineSelected(s) => Acted::Applied(format!(
            "selected delivery {} line {} ({} lot {})",
            s.delivery_id, s.line_no, s.sku, s.lot
        )),
        ScanOutcome::Item(receiving::BindOutcome::Bound {
            delivery_id,
            line_no,
            count,
        }) => Acted::Applied(format!(
            "bound to delivery {delivery_id} line {line_no} ({count} codes)"
        )),
        ScanOutcome::Item(receiving::BindOutcome::Counted {
            delivery_id,
            line_no,
            count,
        }) => Acted::Applied(format!(
            "product scan counted on delivery {delivery_id} line {line_no} ({count} items)"
        )),
        ScanOutcome::Item(receiving::BindOutcome::Flagged {
            delivery_id,
            line_no,
            flag,
        }) => Acted::Flagged(format!(
            "{} on delivery {delivery_id} line {line_no}: {}",
            flag.code(),
            flag.describe()
        )),
    }))
}

//! Staff actions from station tablets over MQTT.
//!
//! A tablet at a pickup or receiving station publishes a JSON command on
//! `hub/v1/{site}/down/station/{station}`; the hub runs it through the same `workflows` code
//! as the CLI and publishes the answer on `hub/v1/{site}/up/station/{station}/reply` (QoS 1, not
//! retained). Answers are ephemeral and bypass the outbox: the state changes they report
//! already wrote their own outbox events. A command that cannot be read is answered with an
//! error reply and never stops the hub. Payloads are documented in `docs/mqtt.md`.

use crate::config::Config;
use crate::store::Store;
use crate::store::StoreError;
use crate::store::pickup::{HandoverError, HandoverRequest, Refusal, Weighing};
use crate::store::receiving::ReceivingError;
use crate::workflows;
use hub_core::Timestamp;
use serde::{Deserialize, Serialize};

/// Largest station command read (a handover with many trace codes fits easily).
pub const MAX_STATION_COMMAND_BYTES: usize = 64 * 1024;

/// What staff asked for. The envelope's `kind` selects the variant.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StationAction {
    /// Check a code typed or scanned by the customer.
    PickupCheck { code: String },
    /// Hand an order over (after a `found` check).
    PickupHandover {
        order_id: String,
        #[serde(default)]
        trace_codes: Vec<String>,
        #[serde(default)]
        refusals: Vec<Refusal>,
        #[serde(default)]
        weighings: Vec<Weighing>,
    },
    /// A label or item code scanned while receiving.
    ReceiveScan { code: String },
    /// Decide one delivery line.
    ReceiveDecide { delivery_id: String, line_no: u32 },
    /// Release and/or reject held stock after review.
    ReceiveRelease {
        delivery_id: String,
        line_no: u32,
        release: i64,
        #[serde(default)]
        reject: i64,
        reason: String,
    },
    /// Close a delivery: every undecided line is decided now.
    ReceiveClose { delivery_id: String },
}

impl StationAction {
    fn name(&self) -> &'static str {
        match self {
            StationAction::PickupCheck { .. } => "pickup_check",
            StationAction::PickupHandover { .. } => "pickup_handover",
            StationAction::ReceiveScan { .. } => "receive_scan",
            StationAction::ReceiveDecide { .. } => "receive_decide",
            StationAction::ReceiveRelease { .. } => "receive_release",
            StationAction::ReceiveClose { .. } => "receive_close",
        }
    }
}

/// A readable station command.
#[derive(Debug, Clone, PartialEq)]
pub struct StationCommand {
    pub id: String,
    pub staff: String,
    pub action: StationAction,
}

/// The answer published on the reply topic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StationReply {
    pub v: u32,
    /// The command's id (`null` when it could not be read).
    pub id: Option<String>,
    pub station: String,
    pub staff: Option<String>,
    pub kind: Option<String>,
    pub ok: bool,
    /// What the workflow answered (present when `ok`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// Stable error code (present when not `ok`): `malformed`, `refused`, `unavailable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    /// What went wrong and what to do, for the person at the station.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub at_ms: i64,
}

/// Why a station command could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Unreadable {
    pub id: Option<String>,
    pub staff: Option<String>,
    pub kind: Option<String>,
    pub reason: String,
}

/// Reads a station command: `{"v":1,"id":…,"staff":…,"kind":…, …fields of the kind}`.
pub fn decode(bytes: &[u8]) -> Result<StationCommand, Unreadable> {
    let mut unreadable = Unreadable {
        id: None,
        staff: None,
        kind: None,
        reason: String::new(),
    };
    if bytes.len() > MAX_STATION_COMMAND_BYTES {
        unreadable.reason = format!(
            "command of {} bytes is larger than the limit of {MAX_STATION_COMMAND_BYTES}",
            bytes.len()
        );
        return Err(unreadable);
    }
    let value: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        Ok(_) => {
            unreadable.reason = "command must be a JSON object".into();
            return Err(unreadable);
        }
        Err(e) => {
            unreadable.reason = format!("command is not JSON: {e}");
            return Err(unreadable);
        }
    };
    let text = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    unreadable.id = text("id");
    unreadable.staff = text("staff");
    unreadable.kind = text("kind");
    if let Some(v) = value.get("v").and_then(|v| v.as_u64())
        && v != u64::from(super::contract::CONTRACT_VERSION)
    {
        unreadable.reason = format!("envelope version {v} is not supported (this hub speaks 1)");
        return Err(unreadable);
    }
    let (Some(id), Some(staff)) = (unreadable.id.clone(), unreadable.staff.clone()) else {
        unreadable.reason = "command needs a string \"id\" and a string \"staff\"".into();
        return Err(unreadable);
    };
    if id.is_empty() || staff.trim().is_empty() {
        unreadable.reason = "\"id\" and \"staff\" must not be empty".into();
        return Err(unreadable);
    }
    match serde_json::from_value::<StationAction>(value) {
        Ok(action) => Ok(StationCommand { id, staff, action }),
        Err(e) => {
            unreadable.reason = format!(
                "not a station command: {e} (kinds: pickup_check, pickup_handover, receive_scan, \
                 receive_decide, receive_release, receive_close)"
            );
            Err(unreadable)
        }
    }
}

/// A workflow refused or the store failed; the reply says which.
enum Failure {
    Refused(String),
    Unavailable(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Unavailable(format!("the hub could not store this: {e}; try again"))
    }
}

impl From<HandoverError> for Failure {
    fn from(e: HandoverError) -> Self {
        match e {
            HandoverError::Store(e) => e.into(),
            other => Failure::Refused(other.to_string()),
        }
    }
}

impl From<ReceivingError> for Failure {
    fn from(e: ReceivingError) -> Self {
        match e {
            ReceivingError::Store(e) => e.into(),
            other => Failure::Refused(other.to_string()),
        }
    }
}

fn json(value: impl Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

async fn run_action(
    store: &Store,
    config: &Config,
    station: &str,
    staff: &str,
    action: &StationAction,
    now: Timestamp,
) -> Result<serde_json::Value, Failure> {
    Ok(match action.clone() {
        StationAction::PickupCheck { code } => {
            let check = workflows::pickup::check(store, config, station, &code, now).await?;
            let mut v = json(&check);
            if let Some(o) = v.as_object_mut() {
                o.insert(
                    "message".into(),
                    crate::store::pickup::describe(&check).into(),
                );
            }
            v
        }
        StationAction::PickupHandover {
            order_id,
            trace_codes,
            refusals,
            weighings,
        } => {
            let request = HandoverRequest {
                trace_codes,
                refusals,
                weighings,
                staff: Some(staff.to_owned()),
            };
            json(
                workflows::pickup::handover(store, config, station, &order_id, request, now)
                    .await?,
            )
        }
        StationAction::ReceiveScan { code } => json(
            workflows::receiving::scan(
                store,
                station,
                &code,
                &workflows::receiving::ScanRules::of(config),
                now,
            )
            .await?,
        ),
        StationAction::ReceiveDecide {
            delivery_id,
            line_no,
        } => json(
            workflows::receiving::decide(store, config, &delivery_id, line_no, staff, now).await?,
        ),
        StationAction::ReceiveRelease {
            delivery_id,
            line_no,
            release,
            reject,
            reason,
        } => {
            workflows::receiving::resolve(
                store,
                config,
                &delivery_id,
                line_no,
                release,
                reject,
                staff,
                &reason,
                now,
            )
            .await?;
            serde_json::json!({"released": release, "rejected": reject})
        }
        StationAction::ReceiveClose { delivery_id } => {
            json(workflows::receiving::close(store, config, &delivery_id, staff, now).await?)
        }
    })
}

/// Handles one station message and returns the reply to publish. Never fails: every problem
/// becomes an error reply. `config` is `None` when the uplink runs without the hub's config
/// (tools and tests); then every command is answered `unavailable`.
pub async fn handle(
    store: &Store,
    config: Option<&Config>,
    station: &str,
    payload: &[u8],
) -> StationReply {
    let now = crate::clock::now();
    let mut reply = StationReply {
        v: super::contract::CONTRACT_VERSION,
        id: None,
        station: station.to_owned(),
        staff: None,
        kind: None,
        ok: false,
        result: None,
        error: None,
        reason: None,
        at_ms: now.millis(),
    };
    let command = match decode(payload) {
        Ok(c) => c,
        Err(u) => {
            tracing::warn!(station, id = u.id.as_deref().unwrap_or("-"), reason = %u.reason, "unreadable station command");
            reply.id = u.id;
            reply.staff = u.staff;
            reply.kind = u.kind;
            reply.error = Some("malformed");
            reply.reason = Some(u.reason);
            return reply;
        }
    };
    reply.id = Some(command.id.clone());
    reply.staff = Some(command.staff.clone());
    reply.kind = Some(command.action.name().to_owned());
    let Some(config) = config else {
        reply.error = Some("unavailable");
        reply.reason = Some("station commands are not enabled on this uplink".into());
        return reply;
    };
    let outcome = run_action(store, config, station, &command.staff, &command.action, now).await;
    match outcome {
        Ok(result) => {
            reply.ok = true;
            reply.result = Some(result);
        }
        Err(Failure::Refused(reason)) => {
            reply.error = Some("refused");
            reply.reason = Some(reason);
        }
        Err(Failure::Unavailable(reason)) => {
            reply.error = Some("unavailable");
            reply.reason = Some(reason);
        }
    }
    tracing::info!(
        station,
        staff = %command.staff,
        command_id = %command.id,
        kind = command.action.name(),
        ok = reply.ok,
        error = reply.error.unwrap_or("-"),
        "station command"
    );
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_decode_and_bad_ones_say_why() {
        let c = decode(br#"{"v":1,"id":"a1","staff":"li","kind":"pickup_check","code":"123456"}"#)
            .unwrap();
        assert_eq!(
            c.action,
            StationAction::PickupCheck {
                code: "123456".into()
            }
        );
        let e = decode(br#"{"id":"a2","staff":"li","kind":"launch"}"#).unwrap_err();
        assert_eq!(e.id.as_deref(), Some("a2"));
        assert!(e.reason.contains("pickup_check"), "{}", e.reason);
        assert!(decode(b"nope").unwrap_err().reason.contains("not JSON"));
        let e = decode(br#"{"id":"a3","kind":"pickup_check","code":"1"}"#).unwrap_err();
        assert!(e.reason.contains("staff"), "{}", e.reason);
    }
}

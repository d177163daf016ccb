//! Staff actions from station tablets over MQTT.
//!
//! A tablet at a pickup or receiving station publishes a JSON command on
//! `hub/v1/{site}/down/station/{station}`; the hub runs it through the same `workflows` code
//! as the CLI and publishes the answer on `hub/v1/{site}/up/station/{station}/reply` (QoS 1, not
//! retained). Each command carries an id and is applied once: its reply is stored with its
//! effects (`store::station`), a redelivered command gets the stored reply again, and the
//! uplink publishes stored replies until the broker acknowledges them, across reconnects.
//! Replies bypass the outbox: the state changes they report already wrote their own outbox
//! events. A command that cannot be read is answered with an error reply and never stops the
//! hub. Payloads are documented in `docs/mqtt.md`.

use crate::config::StationKind;
use crate::store::StoreError;
use crate::store::Tx;
use crate::store::pickup::{HandoverError, HandoverRequest, Refusal, Weighing};
use crate::store::receiving::ReceivingError;
use crate::workflows;
use crate::workflows::Site;
use crate::workflows::pickup::PickupError;
use hub_core::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Largest station command read (a handover with many trace codes fits easily).
pub const MAX_STATION_COMMAND_BYTES: usize = 64 * 1024;

/// What staff asked for. The envelope's `kind` selects the variant.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StationAction {
    /// Check a code: the QR payload, or the typed code with the order number or the
    /// customer's phone tail.
    PickupCheck {
        code: String,
        #[serde(default)]
        order_id: Option<String>,
        #[serde(default)]
        phone_tail: Option<String>,
    },
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

/// Why a station command did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyError {
    /// The command could not be read.
    Malformed,
    /// The workflow refused it; nothing changed.
    Refused,
    /// Station commands are not enabled on this uplink.
    Unavailable,
    /// The id was used before for another command at this station; not run.
    IdReused,
}

impl ReplyError {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyError::Malformed => "malformed",
            ReplyError::Refused => "refused",
            ReplyError::Unavailable => "unavailable",
            ReplyError::IdReused => "id_reused",
        }
    }
}

/// The answer published on the reply topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StationReply {
    pub v: u32,
    /// The command's id (`null` when it could not be read).
    pub id: Option<String>,
    pub station: String,
    pub staff: Option<String>,
    pub kind: Option<String>,
    pub ok: bool,
    /// What the workflow answered (present when `ok`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// Why it did not succeed (present when not `ok`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ReplyError>,
    /// What went wrong and what to do, for the person at the station.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

/// A workflow refused (its effects rolled back); the reply says why.
struct Refused(String);

/// Runs `f` in a nested savepoint: its effects stay if it succeeds and are rolled back if it
/// refuses. A failure of the store itself is returned as such (the whole request then fails
/// and is not acknowledged, so the broker delivers it again).
fn attempt<T>(
    c: &Tx<'_>,
    f: impl FnOnce(&Tx<'_>) -> Result<T, Failure>,
) -> Result<Result<T, Refused>, StoreError> {
    match crate::store::savepoint(c, f)? {
        Ok(v) => Ok(Ok(v)),
        Err(Failure::Refused(reason)) => Ok(Err(Refused(reason))),
        Err(Failure::Store(e)) => Err(e),
    }
}

/// How an action ended short of success.
enum Failure {
    Refused(String),
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl From<HandoverError> for Failure {
    fn from(e: HandoverError) -> Self {
        match e {
            HandoverError::Store(e) => Failure::Store(e),
            HandoverError::Ledger(crate::store::ledger::RecordError::Store(e)) => Failure::Store(e),
            other => Failure::Refused(other.to_string()),
        }
    }
}

impl From<ReceivingError> for Failure {
    fn from(e: ReceivingError) -> Self {
        match e {
            ReceivingError::Store(e) => Failure::Store(e),
            other => Failure::Refused(other.to_string()),
        }
    }
}

impl From<PickupError> for Failure {
    fn from(e: PickupError) -> Self {
        match e {
            PickupError::Store(e) => Failure::Store(e),
            PickupError::Station(e) => Failure::Refused(e.to_string()),
        }
    }
}

fn json(value: impl Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

fn run_action(
    c: &Tx<'_>,
    site: &Site,
    station: &str,
    staff: &str,
    action: &StationAction,
    now: Timestamp,
) -> Result<serde_json::Value, Failure> {
    let receiving = |site: &Site| {
        site.station(station, StationKind::Receiving)
            .map(|_| ())
            .map_err(|e| Failure::Refused(e.to_string()))
    };
    Ok(match action.clone() {
        StationAction::PickupCheck {
            code,
            order_id,
            phone_tail,
        } => {
            let entry = workflows::pickup::CodeEntry {
                code,
                order_id,
                phone_tail,
            };
            let check = workflows::pickup::check_in(c, site, station, &entry, now)?;
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
            json(workflows::pickup::handover_in(
                c, site, station, &order_id, &request, now,
            )?)
        }
        StationAction::ReceiveScan { code } => {
            let classified = crate::codes::classify_text(code.trim(), &site.patterns);
            json(workflows::receiving::scan_in(
                c,
                site,
                station,
                &code,
                &classified,
                now,
            )?)
        }
        StationAction::ReceiveDecide {
            delivery_id,
            line_no,
        } => {
            receiving(site)?;
            json(workflows::receiving::decide_in(
                c,
                site,
                &delivery_id,
                line_no,
                staff,
                now,
            )?)
        }
        StationAction::ReceiveRelease {
            delivery_id,
            line_no,
            release,
            reject,
            reason,
        } => {
            receiving(site)?;
            workflows::receiving::resolve_in(
                c,
                site,
                &workflows::receiving::Resolution {
                    delivery_id,
                    line_no,
                    release,
                    reject,
                    staff: staff.to_owned(),
                    reason,
                },
                now,
            )?;
            serde_json::json!({"released": release, "rejected": reject})
        }
        StationAction::ReceiveClose { delivery_id } => {
            receiving(site)?;
            json(workflows::receiving::close_in(
                c,
                site,
                &delivery_id,
                staff,
                now,
            )?)
        }
    })
}

fn body_hash(payload: &[u8]) -> String {
    hex::encode(Sha256::digest(payload))
}

/// Handles one station message inside the caller's write transaction and returns the reply,
/// which is stored in the same transaction (and published by the uplink once committed).
///
/// A command whose id was seen at this station before is not run again: with the same body
/// it gets its stored reply again; with another body it is refused (`id_reused`). A new
/// command runs its workflow in a savepoint — a refusal rolls back the workflow's effects but
/// keeps the reply. Only a failure of the store itself is an `Err`: then nothing is kept and
/// the message must not be acknowledged. `site` is `None` when the uplink runs without the
/// hub's site (tools and tests); then every command is answered `unavailable`.
pub fn handle_in(
    c: &Tx<'_>,
    site: Option<&Site>,
    station: &str,
    payload: &[u8],
    now: Timestamp,
) -> Result<StationReply, StoreError> {
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
        Ok(command) => command,
        Err(u) => {
            tracing::warn!(station, id = u.id.as_deref().unwrap_or("-"), reason = %u.reason, "unreadable station command");
            reply.id = u.id;
            reply.staff = u.staff;
            reply.kind = u.kind;
            reply.error = Some(ReplyError::Malformed);
            reply.reason = Some(u.reason);
            store_reply(c, &reply, None, now)?;
            return Ok(reply);
        }
    };
    reply.id = Some(command.id.clone());
    reply.staff = Some(command.staff.clone());
    reply.kind = Some(command.action.name().to_owned());
    let hash = body_hash(payload);
    if let Some(seen) = crate::store::station::find(c, station, &command.id)? {
        if seen.body_sha256 == hash {
            tracing::info!(station, command_id = %command.id, "station command seen before; its stored reply is sent again");
            crate::store::station::redeliver(c, seen.reply_id)?;
            return Ok(serde_json::from_str(&seen.reply).unwrap_or(reply));
        }
        tracing::warn!(station, command_id = %command.id, "station command id reused with another body; not run");
        reply.error = Some(ReplyError::IdReused);
        reply.reason = Some(format!(
            "command id {} was already used at station {station} for another command; it was not run again — give each new command a new id",
            command.id
        ));
        store_reply(c, &reply, None, now)?;
        return Ok(reply);
    }
    match site {
        None => {
            reply.error = Some(ReplyError::Unavailable);
            reply.reason = Some("station commands are not enabled on this uplink".into());
        }
        Some(site) => {
            match attempt(c, |c| {
                run_action(c, site, station, &command.staff, &command.action, now)
            })? {
                Ok(result) => {
                    reply.ok = true;
                    reply.result = Some(result);
                }
                Err(Refused(reason)) => {
                    reply.error = Some(ReplyError::Refused);
                    reply.reason = Some(reason);
                }
            }
        }
    }
    store_reply(c, &reply, Some((&command.id, &hash)), now)?;
    tracing::info!(
        station,
        staff = %command.staff,
        command_id = %command.id,
        kind = command.action.name(),
        ok = reply.ok,
        error = reply.error.map_or("-", ReplyError::as_str),
        "station command"
    );
    Ok(reply)
}

fn store_reply(
    c: &Tx<'_>,
    reply: &StationReply,
    request: Option<(&str, &str)>,
    now: Timestamp,
) -> Result<i64, StoreError> {
    let text = String::from_utf8(super::contract::encode(reply)).unwrap_or_default();
    crate::store::station::record(
        c,
        &crate::store::station::NewReply {
            station: &reply.station,
            request_id: request.map(|(id, _)| id),
            body_sha256: request.map(|(_, hash)| hash),
            kind: reply.kind.as_deref(),
            staff: reply.staff.as_deref(),
            reply: &text,
        },
        now,
    )
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
                code: "123456".into(),
                order_id: None,
                phone_tail: None,
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

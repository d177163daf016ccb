//! Staff actions from station tablets, applied once: the station app's requests and station
//! commands over MQTT both run here.
//!
//! Over MQTT, a tablet at a pickup or receiving station publishes a JSON command on
//! `hub/v1/{site}/down/station/{station}`; the hub runs it through the same `workflows` code
//! as the CLI and publishes the answer on `hub/v1/{site}/up/station/{station}/reply` (QoS 1, not
//! retained). Each command carries an id and is applied once: its reply is stored with its
//! effects (`store::station`), a redelivered command gets the stored reply again, and the
//! uplink publishes stored replies until the broker acknowledges them, across reconnects.
//! Replies bypass the outbox: the state changes they report already wrote their own outbox
//! events. A command that cannot be read is answered with an error reply and never stops the
//! hub. What a command and a reply are (and how they are read and written) is
//! `hub_contract::station`'s, documented in `docs/mqtt.md`; this module only runs them.

use super::Site;
use super::pickup::PickupError;
use crate::config::StationKind;
use crate::store::StoreError;
use crate::store::Tx;
use crate::store::deliveries::ReceivingError;
use crate::store::pickup_orders::{HandoverError, HandoverRequest};
use crate::workflows;
use hub_contract::CONTRACT_VERSION;
use hub_contract::station::{
    ReplyError, ReplyResult, StationAction, StationCommand, StationReply, decode,
};
use hub_core::Timestamp;
use sha2::{Digest, Sha256};

/// A workflow refused (its effects rolled back); the reply says why, as a code and in words.
struct Refused(String, String);

/// Runs `f` in a nested savepoint: its effects stay if it succeeds and are rolled back if it
/// refuses. A failure of the store itself is returned as such (the whole request then fails
/// and is not acknowledged, so the broker delivers it again).
fn attempt<T>(
    c: &Tx<'_>,
    f: impl FnOnce(&Tx<'_>) -> Result<T, Failure>,
) -> Result<Result<T, Refused>, StoreError> {
    match crate::store::savepoint(c, f)? {
        Ok(v) => Ok(Ok(v)),
        Err(Failure::Refused(code, reason)) => Ok(Err(Refused(code, reason))),
        Err(Failure::Store(e)) => Err(e),
    }
}

/// How an action ended short of success.
enum Failure {
    /// A stable refusal code and the sentence.
    Refused(String, String),
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
            other => Failure::Refused(other.code(), other.to_string()),
        }
    }
}

impl From<ReceivingError> for Failure {
    fn from(e: ReceivingError) -> Self {
        match e {
            ReceivingError::Store(e) => Failure::Store(e),
            other => Failure::Refused("refused".into(), other.to_string()),
        }
    }
}

impl From<PickupError> for Failure {
    fn from(e: PickupError) -> Self {
        match e {
            PickupError::Store(e) => Failure::Store(e),
            PickupError::Station(e) => Failure::Refused("station".into(), e.to_string()),
        }
    }
}

fn run_action(
    c: &Tx<'_>,
    site: &Site,
    station: &str,
    staff: &str,
    action: &StationAction,
    command_id: &str,
    now: Timestamp,
) -> Result<ReplyResult, Failure> {
    let receiving = |site: &Site| {
        site.station(station, StationKind::Receiving)
            .map(|_| ())
            .map_err(|e| Failure::Refused("station".into(), e.to_string()))
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
            ReplyResult::of(&check).with_message(crate::catalogue::code_check(
                &check,
                crate::catalogue::Lang::ZhCn,
                site.timezone,
            ))
        }
        StationAction::PickupHandover {
            order_id,
            trace_codes,
            refusals,
            weighings,
            partial,
        } => {
            let request = HandoverRequest {
                trace_codes,
                refusals,
                weighings,
                partial,
                staff: Some(staff.to_owned()),
            };
            ReplyResult::of(&workflows::pickup::handover_in(
                c, site, station, &order_id, &request, now,
            )?)
        }
        StationAction::PickupUndo { order_id, reason } => {
            site.station(station, StationKind::Pickup)
                .map_err(|e| Failure::Refused("station".into(), e.to_string()))?;
            supervisor_only(c, staff, "undo a handover")?;
            let undone =
                workflows::pickup::undo_handover_in(c, site, &order_id, staff, &reason, now)
                    .map_err(|e| match e {
                        crate::store::handover_undo::UndoError::Store(e) => Failure::Store(e),
                        other => Failure::Refused(undo_code(&other).into(), other.to_string()),
                    })?;
            ReplyResult::of(&undone)
        }
        StationAction::ReceiveScan { code } => {
            let classified = crate::codes::classify_text(code.trim(), &site.patterns);
            ReplyResult::of(&workflows::receiving::scan_in(
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
            hold,
        } => {
            receiving(site)?;
            ReplyResult::of(&workflows::receiving::decide_holding_in(
                c,
                site,
                &delivery_id,
                line_no,
                staff,
                hold,
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
            ReplyResult::released(release, reject)
        }
        StationAction::ReceiveClose { delivery_id } => {
            receiving(site)?;
            ReplyResult::of(&workflows::receiving::close_in(
                c,
                site,
                &delivery_id,
                staff,
                now,
            )?)
        }
        StationAction::ReceiveCount {
            delivery_id,
            line_no,
            count,
        } => {
            receiving(site)?;
            workflows::receiving::count_in(c, &delivery_id, line_no, count, now)?;
            ReplyResult::of(&serde_json::json!({ "count": count }))
        }
        StationAction::ReceiveSplit {
            delivery_id,
            line_no,
            lot,
            expiry,
            quantity,
        } => {
            receiving(site)?;
            let new_line = workflows::receiving::split_in(
                c,
                &delivery_id,
                line_no,
                &lot,
                expiry,
                quantity,
                now,
            )?;
            ReplyResult::of(&serde_json::json!({ "new_line_no": new_line }))
        }
        StationAction::ReceiveDispute {
            delivery_id,
            step,
            note,
            line_no,
        } => {
            receiving(site)?;
            supervisor_only(c, staff, "act on a dispute")?;
            workflows::receiving::dispute_in(c, &delivery_id, staff, step, &note, line_no, now)?;
            ReplyResult::of(&serde_json::json!({ "step": step.as_str() }))
        }
        StationAction::ReceiveReverse {
            delivery_id,
            line_no,
            reason,
        } => {
            receiving(site)?;
            // A clerk reaches the reversal's own rule, which refuses in its words; staff the
            // hub does not know, or has disabled, are refused here as for every
            // supervisor's action.
            let member = crate::store::staff::staff(c, staff)?;
            if member.as_ref().is_none_or(|m| m.disabled) {
                supervisor_only(c, staff, "reverse a receipt")?;
            }
            let supervisor = member.is_some_and(|m| m.role.supervises());
            let request = crate::store::receipt_reversal::ReversalRequest {
                delivery_id,
                line_no,
                staff: staff.to_owned(),
                supervisor,
                reason,
                request_id: format!("{station}/{command_id}"),
                window_minutes: site.reversal_window_minutes,
            };
            ReplyResult::of(&workflows::receiving::reverse_in(c, site, &request, now)?)
        }
    })
}

/// Refuses anyone but a supervisor (or manager) the store knows and has not disabled: a
/// station command names its staff member, and only the hub's own staff list says what that
/// member may do.
fn supervisor_only(c: &Tx<'_>, staff: &str, what: &str) -> Result<(), Failure> {
    match crate::store::staff::staff(c, staff)? {
        Some(m) if m.role.supervises() && !m.disabled => Ok(()),
        Some(m) if m.disabled => Err(Failure::Refused(
            "supervisor_only".into(),
            format!("{staff} is disabled at this hub: only an active supervisor can {what}"),
        )),
        Some(_) => Err(Failure::Refused(
            "supervisor_only".into(),
            format!("{staff} is not a supervisor: only a supervisor can {what}; ask one"),
        )),
        None => Err(Failure::Refused(
            "supervisor_only".into(),
            format!(
                "{staff} is not known at this hub: only a supervisor can {what} (hub staff add, or staff_upsert from central)"
            ),
        )),
    }
}

/// The refusal code of an undo the store refused.
fn undo_code(e: &crate::store::handover_undo::UndoError) -> &'static str {
    use crate::store::handover_undo::UndoError;
    match e {
        UndoError::UnknownOrder(_) => "unknown_order",
        UndoError::UnknownReason(_) => "unknown_reason",
        UndoError::Refused {
            refusal: hub_core::pickup::UndoRefusal::TooLate { .. },
            ..
        } => "undo_too_late",
        UndoError::Refused { .. } => "not_handed_over",
        UndoError::ReturnRefused { .. } | UndoError::Store(_) => "refused",
    }
}

fn body_hash(payload: &[u8]) -> String {
    hex::encode(Sha256::digest(payload))
}

/// A reply not filled in yet: not ok, no result, no error.
pub fn blank_reply(station: &str, now: Timestamp) -> StationReply {
    StationReply {
        v: CONTRACT_VERSION,
        id: None,
        station: station.to_owned(),
        staff: None,
        kind: None,
        ok: false,
        result: None,
        error: None,
        reason: None,
        code: None,
        at_ms: now.millis(),
    }
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
    let mut reply = blank_reply(station, now);
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
    let hash = body_hash(payload);
    run_command_in(c, site, station, &command, &hash, reply, now)
}

/// Runs a readable station command (from MQTT, or built by the station app) exactly once per
/// `(station, id)`: a command seen before gets its stored reply (same `hash` of its body) or
/// `id_reused`; a new one runs its workflow in a savepoint and its reply is stored in the same
/// transaction. `reply` is the reply to fill in.
pub fn run_command_in(
    c: &Tx<'_>,
    site: Option<&Site>,
    station: &str,
    command: &StationCommand,
    hash: &str,
    reply: StationReply,
    now: Timestamp,
) -> Result<StationReply, StoreError> {
    run_command(
        c,
        (site, station),
        command,
        hash,
        reply,
        Answered::OverMqtt,
        now,
    )
}

/// [`run_command_in`] for a request of the station app, answered over HTTP: the
/// reply is stored for a retry of the same request id (answered once, from it) but not
/// published on the station's MQTT reply topic — nobody listens there for it — so it waits
/// for no broker acknowledgement: no undelivered-index entry, no delivered mark later.
pub fn run_app_command_in(
    c: &Tx<'_>,
    site: Option<&Site>,
    station: &str,
    command: &StationCommand,
    hash: &str,
    reply: StationReply,
    now: Timestamp,
) -> Result<StationReply, StoreError> {
    run_command(
        c,
        (site, station),
        command,
        hash,
        reply,
        Answered::OverHttp,
        now,
    )
}

/// Where a command's reply goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answered {
    /// Published on the station's reply topic by the uplink (MQTT station commands).
    OverMqtt,
    /// The HTTP answer of the station app's own request.
    OverHttp,
}

fn run_command(
    c: &Tx<'_>,
    (site, station): (Option<&Site>, &str),
    command: &StationCommand,
    hash: &str,
    mut reply: StationReply,
    answered: Answered,
    now: Timestamp,
) -> Result<StationReply, StoreError> {
    reply.id = Some(command.id.clone());
    reply.staff = Some(command.staff.clone());
    reply.kind = Some(command.action.name().to_owned());
    if let Some(seen) = crate::store::station::find(c, station, &command.id)? {
        if seen.body_sha256 == hash {
            tracing::info!(station, command_id = %command.id, "station command seen before; its stored reply is sent again");
            if answered == Answered::OverMqtt {
                crate::store::station::redeliver(c, seen.reply_id)?;
            }
            return Ok(StationReply::from_json(&seen.reply).unwrap_or(reply));
        }
        tracing::warn!(station, command_id = %command.id, "station command id reused with another body; not run");
        reply.error = Some(ReplyError::IdReused);
        reply.reason = Some(format!(
            "command id {} was already used at station {station} for another command; it was not run again — give each new command a new id",
            command.id
        ));
        store_reply_answered(c, &reply, None, answered, now)?;
        return Ok(reply);
    }
    match site {
        None => {
            reply.error = Some(ReplyError::Unavailable);
            reply.reason = Some("station commands are not enabled on this uplink".into());
        }
        Some(site) => {
            match attempt(c, |c| {
                run_action(
                    c,
                    site,
                    station,
                    &command.staff,
                    &command.action,
                    &command.id,
                    now,
                )
            })? {
                Ok(result) => {
                    reply.ok = true;
                    reply.result = Some(result);
                }
                Err(Refused(code, reason)) => {
                    reply.error = Some(ReplyError::Refused);
                    reply.reason = Some(reason);
                    reply.code = Some(code);
                }
            }
        }
    }
    store_reply_answered(c, &reply, Some((&command.id, hash)), answered, now)?;
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
    store_reply_answered(c, reply, request, Answered::OverMqtt, now)
}

fn store_reply_answered(
    c: &Tx<'_>,
    reply: &StationReply,
    request: Option<(&str, &str)>,
    answered: Answered,
    now: Timestamp,
) -> Result<i64, StoreError> {
    let text = reply.to_json();
    crate::store::station::record(
        c,
        &crate::store::station::NewReply {
            station: &reply.station,
            request_id: request.map(|(id, _)| id),
            body_sha256: request.map(|(_, hash)| hash),
            kind: reply.kind.as_deref(),
            staff: reply.staff.as_deref(),
            reply: &text,
            publish: answered == Answered::OverMqtt,
        },
        now,
    )
}

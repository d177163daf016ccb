//! Station commands and replies (`down/station/{station}`, `up/station/{station}/reply`):
//! what staff at a tablet ask for ([`StationAction`]), how a command is read ([`decode`],
//! every failure an [`Unreadable`] with what could be read of it), and the reply
//! ([`StationReply`]). Running a command is the hub's business (`hub::sync::station`).

use hub_core::event::RefusedTo;
use serde::{Deserialize, Serialize};

use crate::CONTRACT_VERSION;

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
        /// A partial handover: what leaves now of each line (`line_no` from 1); the rest
        /// stays open. Absent or empty: everything open leaves.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        partial: Vec<Part>,
    },
    /// A supervisor undoes the order's last handover (the last part of one handed over in
    /// parts) within the undo window, with a reason from the list.
    PickupUndo { order_id: String, reason: String },
    /// A label or item code scanned while receiving.
    ReceiveScan { code: String },
    /// Decide one delivery line; with `hold`, a clerk holds for a supervisor what the checks
    /// would accept (older commands have no `hold`).
    ReceiveDecide {
        delivery_id: String,
        line_no: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hold: Option<hub_core::receiving::HoldReason>,
    },
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
    /// Staff counted a line by hand (overrides the count of scans).
    ReceiveCount {
        delivery_id: String,
        line_no: u32,
        count: i64,
    },
    /// Split `quantity` of a line off into another lot (a line that arrived as two batches).
    ReceiveSplit {
        delivery_id: String,
        line_no: u32,
        lot: String,
        #[serde(default)]
        expiry: Option<chrono::NaiveDate>,
        quantity: i64,
    },
    /// A supervisor acts on a delivery's dispute: opens it (about `line_no`,
    /// with that line's stored photos), responds with a note, records that its photos were
    /// inspected, or settles it.
    ReceiveDispute {
        delivery_id: String,
        step: DisputeStep,
        note: String,
        #[serde(default)]
        line_no: Option<u32>,
    },
    /// A supervisor reverses a line's last receipt within the site's window:
    /// the received quantity leaves the lot again and the line waits for a new decision.
    ReceiveReverse {
        delivery_id: String,
        line_no: u32,
        reason: hub_core::receiving_reversal::ReversalReason,
    },
}

/// A step on a delivery's dispute (station `receive_dispute`, central's `delivery_dispute`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeStep {
    /// Open a dispute (a new episode when an earlier one was settled).
    Open,
    /// Respond to the open dispute with a note.
    Respond,
    /// The open dispute's photos were inspected (the note says what they show).
    PhotosInspected,
    /// Settle (close) the open dispute; the note says how.
    Settle,
}

impl DisputeStep {
    /// The step's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            DisputeStep::Open => "open",
            DisputeStep::Respond => "respond",
            DisputeStep::PhotosInspected => "photos_inspected",
            DisputeStep::Settle => "settle",
        }
    }

    /// Looks a step up by its wire name.
    pub fn parse(name: &str) -> Option<DisputeStep> {
        [
            DisputeStep::Open,
            DisputeStep::Respond,
            DisputeStep::PhotosInspected,
            DisputeStep::Settle,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

impl StationAction {
    /// The kind's name on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            StationAction::PickupCheck { .. } => "pickup_check",
            StationAction::PickupHandover { .. } => "pickup_handover",
            StationAction::PickupUndo { .. } => "pickup_undo",
            StationAction::ReceiveScan { .. } => "receive_scan",
            StationAction::ReceiveDecide { .. } => "receive_decide",
            StationAction::ReceiveRelease { .. } => "receive_release",
            StationAction::ReceiveClose { .. } => "receive_close",
            StationAction::ReceiveCount { .. } => "receive_count",
            StationAction::ReceiveSplit { .. } => "receive_split",
            StationAction::ReceiveDispute { .. } => "receive_dispute",
            StationAction::ReceiveReverse { .. } => "receive_reverse",
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
    pub result: Option<ReplyResult>,
    /// Why it did not succeed (present when not `ok`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ReplyError>,
    /// What went wrong and what to do, for the person at the station.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The refusal as a stable code (e.g. `not_checked`, `not_open.already_collected`), for a
    /// screen to say it in its own language; absent from older replies and other errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
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
        && v != u64::from(CONTRACT_VERSION)
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
                 receive_decide, receive_release, receive_close, receive_count, receive_split, \
                 receive_dispute, receive_reverse)"
            );
            Err(unreadable)
        }
    }
}

/// A refusal of `quantity` on line `line_no` (numbered from 1, as everywhere a person sees
/// lines), and where the goods go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawRefusal")]
pub struct Refusal {
    pub line_no: usize,
    pub quantity: i64,
    pub to: RefusedTo,
    pub reason: String,
}

/// What leaves now of an order line in a partial handover (`line_no` from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub line_no: usize,
    pub quantity: i64,
}

impl From<&Part> for hub_core::pickup::LineQuantity {
    fn from(p: &Part) -> Self {
        hub_core::pickup::LineQuantity {
            line_no: p.line_no,
            quantity: p.quantity,
        }
    }
}

/// A weighed quantity for a by-weight line (`line_no` from 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawWeighing")]
pub struct Weighing {
    pub line_no: usize,
    pub grams: i64,
}

impl From<&Refusal> for hub_core::pickup::LineRefusal {
    fn from(r: &Refusal) -> Self {
        hub_core::pickup::LineRefusal {
            line_no: r.line_no,
            quantity: r.quantity,
            to: r.to,
            reason: r.reason.clone(),
        }
    }
}

impl From<&Weighing> for hub_core::pickup::LineWeighing {
    fn from(w: &Weighing) -> Self {
        hub_core::pickup::LineWeighing {
            line_no: w.line_no,
            grams: w.grams,
        }
    }
}

/// Line numbers from 1 (`line_no`); messages written before that carry `line`, from 0.
fn line_no_of(line_no: Option<usize>, legacy_line: Option<usize>) -> Result<usize, MissingLineNo> {
    match (line_no, legacy_line) {
        (Some(n), _) => Ok(n),
        (None, Some(zero_based)) => Ok(zero_based + 1),
        (None, None) => Err(MissingLineNo),
    }
}

/// A refusal or weighing that names no line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("missing field `line_no` (order lines are numbered from 1)")]
pub struct MissingLineNo;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRefusal {
    line_no: Option<usize>,
    line: Option<usize>,
    quantity: i64,
    /// Optional when `reason` is one of `hub_core::pickup::REFUSAL_REASONS`.
    #[serde(default)]
    to: Option<RefusedTo>,
    #[serde(default)]
    reason: String,
}

/// A refusal that cannot be read: no line, or no `to` and no reason from the list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadRefusal {
    #[error(transparent)]
    MissingLineNo(#[from] MissingLineNo),
    #[error(
        "missing field `to` (stock or loss); it may be left out only when `reason` is one of {}",
        hub_core::pickup::REFUSAL_REASONS.join(", ")
    )]
    MissingTo,
}

impl TryFrom<RawRefusal> for Refusal {
    type Error = BadRefusal;
    fn try_from(raw: RawRefusal) -> Result<Self, BadRefusal> {
        let to = raw
            .to
            .or_else(|| hub_core::pickup::refusal_destination(raw.reason.trim()))
            .ok_or(BadRefusal::MissingTo)?;
        Ok(Refusal {
            line_no: line_no_of(raw.line_no, raw.line)?,
            quantity: raw.quantity,
            to,
            reason: raw.reason,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeighing {
    line_no: Option<usize>,
    line: Option<usize>,
    grams: i64,
}

impl TryFrom<RawWeighing> for Weighing {
    type Error = MissingLineNo;
    fn try_from(raw: RawWeighing) -> Result<Self, MissingLineNo> {
        Ok(Weighing {
            line_no: line_no_of(raw.line_no, raw.line)?,
            grams: raw.grams,
        })
    }
}

/// What a workflow answered, as a reply carries it: the workflow's result as JSON (its type's
/// serde form), so the reply shows exactly what the CLI's `--json` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReplyResult(serde_json::Value);

impl ReplyResult {
    /// A workflow's result (`null` if it cannot be represented, which plain data never is).
    pub fn of(value: &impl Serialize) -> ReplyResult {
        ReplyResult(serde_json::to_value(value).unwrap_or(serde_json::Value::Null))
    }

    /// The result with a `message` for the person at the station (an object result only).
    pub fn with_message(mut self, message: impl Into<String>) -> ReplyResult {
        if let Some(o) = self.0.as_object_mut() {
            o.insert("message".into(), message.into().into());
        }
        self
    }

    /// What a release answers: how many were released and rejected.
    pub fn released(release: i64, reject: i64) -> ReplyResult {
        ReplyResult(serde_json::json!({"released": release, "rejected": reject}))
    }

    /// A top-level field of the result that is a list of whole numbers (e.g. a partial
    /// handover's `open`); empty when absent.
    pub fn numbers(&self, field: &str) -> Vec<i64> {
        self.0
            .get(field)
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|n| n.as_i64()).collect())
            .unwrap_or_default()
    }

    /// A top-level text field of the result (e.g. `result`, `message`).
    pub fn text(&self, field: &str) -> Option<&str> {
        self.0.get(field).and_then(|v| v.as_str())
    }
}

impl StationReply {
    /// The reply as published and stored (JSON text).
    pub fn to_json(&self) -> String {
        String::from_utf8(crate::encode(self)).expect("JSON is UTF-8")
    }

    /// Reads a stored or published reply.
    pub fn from_json(text: &str) -> Result<StationReply, serde_json::Error> {
        serde_json::from_str(text)
    }
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

    /// A receipt's reversal reads with a reason from the list, and any other
    /// reason is unreadable with the kinds named.
    #[test]
    fn a_receipt_reversal_reads_with_a_reason_from_the_list_only() {
        let c = decode(
            br#"{"v":1,"id":"v1","staff":"wang","kind":"receive_reverse","delivery_id":"D1",
                 "line_no":2,"reason":"supplier_recall"}"#,
        )
        .unwrap();
        assert_eq!(
            c.action,
            StationAction::ReceiveReverse {
                delivery_id: "D1".into(),
                line_no: 2,
                reason: hub_core::receiving_reversal::ReversalReason::SupplierRecall,
            }
        );
        assert_eq!(c.action.name(), "receive_reverse");
        let e = decode(
            br#"{"v":1,"id":"v2","staff":"wang","kind":"receive_reverse","delivery_id":"D1",
                 "line_no":2,"reason":"looks_odd"}"#,
        )
        .unwrap_err();
        assert!(
            e.reason.contains("looks_odd") && e.reason.contains("receive_reverse"),
            "{}",
            e.reason
        );
    }

    #[test]
    fn a_partial_handover_names_what_leaves_of_each_line_and_old_commands_hand_over_all() {
        let c = decode(
            br#"{"v":1,"id":"h2","staff":"li","kind":"pickup_handover","order_id":"P1",
                "partial":[{"line_no":1,"quantity":1}]}"#,
        )
        .unwrap();
        let StationAction::PickupHandover { partial, .. } = &c.action else {
            panic!("{:?}", c.action)
        };
        assert_eq!(
            partial,
            &vec![Part {
                line_no: 1,
                quantity: 1
            }]
        );
        let old =
            decode(br#"{"v":1,"id":"h3","staff":"li","kind":"pickup_handover","order_id":"P1"}"#)
                .unwrap();
        let StationAction::PickupHandover { partial, .. } = &old.action else {
            panic!("{:?}", old.action)
        };
        assert!(partial.is_empty());
        let result = ReplyResult::of(&serde_json::json!({"order_id": "P1", "open": [1, 0]}));
        assert_eq!(result.numbers("open"), vec![1, 0]);
        assert!(result.numbers("lines").is_empty());
    }

    #[test]
    fn handover_lines_are_numbered_from_one_and_old_zero_based_lines_still_read() {
        let c = decode(
            br#"{"v":1,"id":"h1","staff":"li","kind":"pickup_handover","order_id":"P1",
                "refusals":[{"line_no":2,"quantity":1,"to":"stock","reason":"dented"},
                            {"line":0,"quantity":1,"to":"stock"}],
                "weighings":[{"line":1,"grams":1020}]}"#,
        )
        .unwrap();
        let StationAction::PickupHandover {
            refusals,
            weighings,
            ..
        } = c.action
        else {
            panic!("{:?}", c.action)
        };
        assert_eq!(
            refusals.iter().map(|r| r.line_no).collect::<Vec<_>>(),
            [2, 1]
        );
        assert_eq!(
            weighings[0],
            Weighing {
                line_no: 2,
                grams: 1020
            }
        );
        let e = decode(
            br#"{"v":1,"id":"h2","staff":"li","kind":"pickup_handover","order_id":"P1","weighings":[{"grams":1}]}"#,
        )
        .unwrap_err();
        assert!(e.reason.contains("line_no"), "{}", e.reason);
    }

    #[test]
    fn a_refusal_with_a_reason_from_the_list_may_leave_out_where_the_goods_go() {
        let c = decode(
            br#"{"v":1,"id":"r1","staff":"li","kind":"pickup_handover","order_id":"P1",
                "refusals":[{"line_no":1,"quantity":1,"reason":"damaged"},
                            {"line_no":2,"quantity":1,"reason":"customer_declined"},
                            {"line_no":3,"quantity":1,"to":"stock","reason":"damaged"}]}"#,
        )
        .unwrap();
        let StationAction::PickupHandover { refusals, .. } = c.action else {
            panic!("{:?}", c.action)
        };
        assert_eq!(
            refusals.iter().map(|r| r.to).collect::<Vec<_>>(),
            [RefusedTo::Loss, RefusedTo::Stock, RefusedTo::Stock]
        );
        let e = decode(
            br#"{"v":1,"id":"r2","staff":"li","kind":"pickup_handover","order_id":"P1","refusals":[{"line_no":1,"quantity":1,"reason":"dented"}]}"#,
        )
        .unwrap_err();
        assert!(e.reason.contains("missing field `to`"), "{}", e.reason);
    }

    #[test]
    fn replies_are_encoded_as_documented_and_read_back() {
        let reply = StationReply {
            v: 1,
            id: Some("t-0001".into()),
            station: "counter-1".into(),
            staff: Some("li.na".into()),
            kind: Some("pickup_check".into()),
            ok: true,
            result: Some(ReplyResult::of(
                &serde_json::json!({"result": "wrong_code"}),
            )),
            error: None,
            reason: None,
            code: None,
            at_ms: 1764000000000,
        };
        let text = reply.to_json();
        assert_eq!(
            text,
            r#"{"v":1,"id":"t-0001","station":"counter-1","staff":"li.na","kind":"pickup_check","ok":true,"result":{"result":"wrong_code"},"at_ms":1764000000000}"#
        );
        let back = StationReply::from_json(&text).unwrap();
        assert_eq!(back, reply);
        let result = back
            .result
            .unwrap()
            .with_message("wrong code: no order has this code");
        assert_eq!(result.text("result"), Some("wrong_code"));
        assert_eq!(
            result.text("message"),
            Some("wrong code: no order has this code")
        );
    }
}

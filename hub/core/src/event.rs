//! Domain events: what the hub tells the central system happened.
//!
//! Each state change produces events that the store writes into the outbox in the same
//! transaction. The wire shape (topics, envelopes) is the MQTT adapter's business; here an
//! event is only a typed fact with a stable `kind` name.

use crate::alerts::{Alert, AlertKind, Tier};
use crate::domain::{Sku, SkuCode, Timestamp};
use crate::ledger::Movement;
use crate::receiving::{CodeElement, CodeFlag, LineDecision, PhotoEvidence};
use serde::{Deserialize, Serialize};

/// A fact recorded by the hub, destined for the central system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DomainEvent {
    /// SKU master data was stored or updated.
    SkuUpserted { sku: Sku },
    /// A stock movement was journaled; balances are those after it.
    MovementRecorded {
        movement: Movement,
        sku_balance_after: i64,
        batch_balance_after: Option<i64>,
    },
    /// A command from the central system was applied (exactly once, by its id).
    CommandApplied {
        command_id: String,
        command_kind: String,
        /// `applied`, or `unchanged` when the same version was already stored.
        outcome: String,
        key: Option<String>,
        version: Option<i64>,
    },
    /// A command from the central system was refused; nothing of it was applied.
    CommandRejected {
        /// The command's id when it could be read at all.
        command_id: Option<String>,
        command_kind: Option<String>,
        /// Machine-readable reason code, e.g. `stale_version` or `wrong_site`.
        code: String,
        /// What was wrong, for people.
        reason: String,
    },
    /// Something about the upstream sync that a person should look at.
    SyncAlert {
        /// Machine-readable alert code, e.g. `event_too_large`.
        code: String,
        message: String,
        /// The outbox sequence number concerned, if any.
        seq: Option<i64>,
    },
    /// A pickup order left the site (wholly or partly), exactly once.
    PickupHandedOver { handover: Handover },
    /// Part of a pickup order left the site (a partial handover): `handover` has this part's
    /// lines (`handed_over`, `refused`) and, in `open`, what stays open of each order line. The
    /// order is collected, with one `pickup_handed_over` for the whole order (the sum of its
    /// parts), when a later handover takes the rest.
    PickupPartlyHandedOver { handover: Handover },
    /// A station typed too many wrong pickup codes and is locked out until `until`.
    PickupStationLockedOut {
        station: String,
        until: Timestamp,
        failures: u32,
    },
    /// The site used its hourly budget of wrong pickup guesses: every station's code checks
    /// pause until `until`.
    PickupSiteLockedOut { until: Timestamp, guesses: u32 },
    /// A supervisor undid a handover within the undo window: the goods issued came back to
    /// stock by the `returned` movements (the original handover stays in the journal) and
    /// the order is open again.
    PickupHandoverUndone {
        order_id: String,
        station: String,
        staff: String,
        /// A code from the list of undo reasons (`wrong_customer`, …).
        reason: String,
        handed_over_at: Timestamp,
        returned: Vec<String>,
        /// An order handed over in parts: the part undone (the last one) …
        #[serde(default, skip_serializing_if = "Option::is_none")]
        part: Option<Handover>,
        /// … and what is open of each line after the undo (the order is partly collected while
        /// earlier parts stand). Absent for a whole handover, and from older hubs.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        open: Vec<i64>,
    },
    /// A supervisor lifted a lockout early (`station` is `None` for the site-wide pause).
    PickupLockoutLifted {
        station: Option<String>,
        staff: String,
        reason: String,
    },
    /// A SKU's stock tier changed.
    StockTierChanged {
        sku: SkuCode,
        from: Tier,
        to: Tier,
        figure: f64,
    },
    /// Stock is needed: one request per episode (repeat > 0 only after the re-request interval).
    ReplenishmentRequested {
        sku: SkuCode,
        episode_id: String,
        suggested_quantity: i64,
        tier: Tier,
        repeat: u32,
        /// The forecast and plan behind `suggested_quantity`; absent in events from hubs
        /// before the forecast (and on today's trailing rule).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reasoning: Option<Box<crate::replenishment::ReplenishmentReasoning>>,
    },
    /// The SKU recovered; its replenishment episode is over.
    ReplenishmentEpisodeEnded { sku: SkuCode, episode_id: String },
    /// An operational alert was raised or changed tier.
    AlertRaised { alert: Alert },
    /// An operational alert's condition went away.
    AlertCleared {
        alert_kind: AlertKind,
        subject: String,
    },
    /// A staff member acknowledged an open alert at its tier (it stays open until its
    /// condition goes away; a rise past that tier asks again).
    AlertAcknowledged {
        alert_kind: AlertKind,
        subject: String,
        tier: crate::alerts::Tier,
        staff: String,
    },
    /// A delivery line was decided at receiving, with all its evidence.
    ReceivingLineDecided { decision: ReceivingDecision },
    /// A trace code was bound to a batch at receiving.
    TraceCodeBound {
        code: String,
        sku: SkuCode,
        lot: String,
        delivery_id: String,
        line_no: u32,
        /// The GS1 elements read from the code (GTIN, lot, expiry, serial…), if it is GS1.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        elements: Vec<CodeElement>,
    },
    /// A scanned trace code was not bound: possible counterfeit or mix-up.
    TraceCodeFlagged {
        code: String,
        delivery_id: String,
        line_no: u32,
        flag: CodeFlag,
    },
    /// Held stock was released into stock or rejected after review.
    QuarantineResolved {
        delivery_id: String,
        line_no: u32,
        sku: SkuCode,
        lot: String,
        released: i64,
        rejected: i64,
        staff: String,
        reason: String,
    },
    /// A supervisor reversed a line's last receipt: `movement_id` took
    /// `quantity` out of the lot again (the receipts in `receipts` stay in the journal), the
    /// line waits for a new decision, and `freed_codes` may be bound again.
    ReceiptReversed {
        delivery_id: String,
        line_no: u32,
        sku: SkuCode,
        lot: String,
        quantity: i64,
        reason: crate::receiving_reversal::ReversalReason,
        staff: String,
        movement_id: String,
        receipts: Vec<String>,
        received_at: Timestamp,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        freed_codes: Vec<String>,
    },
    /// Staff closed a delivery; every line has a decision.
    DeliveryClosed {
        delivery_id: String,
        staff: String,
        lines: usize,
    },
    /// A delivery is disputed (by the supplier, a customer or central): its photos and
    /// decisions are kept whatever the retention policy until the dispute is closed.
    DisputeOpened {
        delivery_id: String,
        staff: String,
        note: String,
        /// The manifest line the dispute is about, when it is about one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        line_no: Option<u32>,
        /// The SHA-256 of that line's photos stored when the dispute was opened (its evidence).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        photos: Vec<String>,
    },
    /// A supervisor responded to an open dispute (a note, or an inspection of its photos).
    DisputeResponded {
        delivery_id: String,
        staff: String,
        note: String,
        /// The delivery's photos were inspected.
        photos_inspected: bool,
    },
    /// A dispute was settled; the delivery's evidence falls back under the retention policy.
    DisputeClosed {
        delivery_id: String,
        staff: String,
        note: String,
    },
    /// A scale or scanner answers again (or for the first time since the hub started).
    DeviceOnline { device: String, detail: String },
    /// A scale or scanner disappeared, stopped answering or failed its probe.
    DeviceOffline { device: String, reason: String },
    /// The site's events are numbered in a new stream (incarnation) from here on, because its
    /// database went back in time (a restored backup), was started anew on purpose, or was
    /// replaced by another copy. Central keeps the old stream's events as they are.
    StreamStarted {
        /// The new stream's id (the `stream` of every envelope from now on).
        stream: String,
        /// `rewound` (a backup whose counter is below what the site had reached),
        /// `new_database` (`hub run --new-database` where a stream was recorded) or
        /// `replaced` (the database belongs to another stream than the site's marker).
        reason: String,
        /// The stream whose events 1..=`base_seq` this one shares (the database's own earlier
        /// stream); `None` for a new database.
        continues_stream: Option<String>,
        /// Sequence numbers up to here are `continues_stream`'s; this stream's own start after.
        base_seq: i64,
        /// The stream the site's marker recorded before (what central saw last).
        previous_stream: Option<String>,
        /// How far the previous stream was known to have got, and when that was recorded.
        previous_high_water_seq: Option<i64>,
        previous_recorded_at: Option<Timestamp>,
        /// What happened, for people.
        message: String,
    },
}

/// A receiving decision with the evidence behind it, as kept for disputes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceivingDecision {
    pub delivery_id: String,
    pub supplier: String,
    pub line_no: u32,
    pub sku: SkuCode,
    pub lot: String,
    pub decision: LineDecision,
    pub staff: String,
    pub decided_at: Timestamp,
    /// Every stable weight read for this line, in grams, oldest first.
    pub weight_readings_g: Vec<i64>,
    pub photos: Vec<PhotoEvidence>,
    pub bound_codes: Vec<String>,
    pub flagged_codes: Vec<(String, CodeFlag)>,
    /// Product-only scans (a bare EAN/UPC, GS1 data without a serial) counted on the line;
    /// they name the product, not an item, so they are never bound.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub product_scans: Vec<String>,
}

/// What left the site with one pickup order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handover {
    pub order_id: String,
    pub station: String,
    /// Who handed it over, when the station or command named them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff: Option<String>,
    pub at: Timestamp,
    pub lines: Vec<HandoverLine>,
    /// Trace codes scanned at handover.
    pub trace_codes: Vec<String>,
    /// A partial handover: what stays open of each order line (in the order's line order).
    /// Empty when the order is collected whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open: Vec<i64>,
}

/// One order line at handover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandoverLine {
    pub sku: SkuCode,
    pub lot: Option<String>,
    pub ordered: i64,
    pub handed_over: i64,
    /// Refused by the customer.
    pub refused: i64,
    /// What happened to refused goods: back to stock, or written off.
    pub refused_to: Option<RefusedTo>,
    /// Weighed quantity (grams) for by-weight items, and the price difference in cents.
    pub weighed_g: Option<i64>,
    pub price_difference_cents: Option<i64>,
}

/// Where refused goods go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusedTo {
    Stock,
    Loss,
}

impl DomainEvent {
    /// Stable event name used for routing and storage.
    pub fn kind(&self) -> &'static str {
        match self {
            DomainEvent::SkuUpserted { .. } => "sku_upserted",
            DomainEvent::MovementRecorded { .. } => "movement_recorded",
            DomainEvent::CommandApplied { .. } => "command_applied",
            DomainEvent::CommandRejected { .. } => "command_rejected",
            DomainEvent::SyncAlert { .. } => "sync_alert",
            DomainEvent::PickupHandedOver { .. } => "pickup_handed_over",
            DomainEvent::PickupPartlyHandedOver { .. } => "pickup_partly_handed_over",
            DomainEvent::PickupStationLockedOut { .. } => "pickup_station_locked_out",
            DomainEvent::PickupSiteLockedOut { .. } => "pickup_site_locked_out",
            DomainEvent::PickupHandoverUndone { .. } => "pickup_handover_undone",
            DomainEvent::PickupLockoutLifted { .. } => "pickup_lockout_lifted",
            DomainEvent::StockTierChanged { .. } => "stock_tier_changed",
            DomainEvent::ReplenishmentRequested { .. } => "replenishment_requested",
            DomainEvent::ReplenishmentEpisodeEnded { .. } => "replenishment_episode_ended",
            DomainEvent::AlertRaised { .. } => "alert_raised",
            DomainEvent::AlertCleared { .. } => "alert_cleared",
            DomainEvent::AlertAcknowledged { .. } => "alert_acknowledged",
            DomainEvent::ReceivingLineDecided { .. } => "receiving_line_decided",
            DomainEvent::TraceCodeBound { .. } => "trace_code_bound",
            DomainEvent::TraceCodeFlagged { .. } => "trace_code_flagged",
            DomainEvent::QuarantineResolved { .. } => "quarantine_resolved",
            DomainEvent::ReceiptReversed { .. } => "receipt_reversed",
            DomainEvent::DeliveryClosed { .. } => "delivery_closed",
            DomainEvent::DisputeOpened { .. } => "dispute_opened",
            DomainEvent::DisputeResponded { .. } => "dispute_responded",
            DomainEvent::DisputeClosed { .. } => "dispute_closed",
            DomainEvent::DeviceOnline { .. } => "device_online",
            DomainEvent::DeviceOffline { .. } => "device_offline",
            DomainEvent::StreamStarted { .. } => "stream_started",
        }
    }
}

//! Domain events: what the hub tells the central system happened.
//!
//! Each state change produces events that the store writes into the outbox in the same
//! transaction. The wire shape (topics, envelopes) is the MQTT adapter's business; here an
//! event is only a typed fact with a stable `kind` name.

use crate::domain::Sku;
use crate::ledger::Movement;
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
        /// Machine-readable alert code, e.g. `event_too_large` or `backlog_high`.
        code: String,
        message: String,
        /// The outbox sequence number concerned, if any.
        seq: Option<i64>,
    },
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
        }
    }
}

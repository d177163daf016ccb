//! The hub's pure domain: what a front warehouse *is* and the rules it keeps.
//!
//! Everything here is plain data and plain functions. This crate must never do I/O: it knows
//! nothing of SQLite, MQTT, serial ports, ONNX, JSON or the clock. Time comes in as an argument
//! (`Timestamp`), storage comes in as a read-only view (`BalanceView`). That is what lets the
//! rules be tested exhaustively with plain unit and property tests, and what keeps adapters thin.

pub mod alerts;
pub mod backoff;
pub mod counter;
pub mod demand;
pub mod domain;
pub mod event;
pub mod ledger;
pub mod pickup;
pub mod receiving;
pub mod receiving_reversal;
pub mod replenishment;
pub mod stocktake;

pub use backoff::Backoff;
pub use domain::{
    BatchKey, Gtin, GtinError, MovementId, SiteId, Sku, SkuCode, StockUnit, Timestamp, sha256_hex,
};
pub use event::DomainEvent;
pub use ledger::{BalanceView, LedgerError, Movement, MovementKind, MovementPlan, plan_movement};

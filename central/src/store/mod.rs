//! Where central keeps what the hubs send: the [`EventStore`] the consumer writes through, and
//! its SQLite implementation ([`CentralDb`]).
//!
//! Whatever the database, an implementation keeps the rules of `docs/mqtt.md`: events keyed by
//! `(site, stream, seq)`, the same key with the same id a duplicate (dropped), with another id
//! a conflict (kept apart, reported, never dropped); each stream's contiguous sequence counts
//! the events of the stream it continues up to its base; a batch is stored in one
//! transaction, before any of its messages is acknowledged to the broker.

mod sqlite;

pub use sqlite::{CentralDb, report, site_status};

use crate::report::CentralReport;

/// One message as it arrived from the broker.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
}

/// What one batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchCounts {
    pub stored: usize,
    pub duplicates: usize,
    pub conflicts: usize,
    /// Messages that are not an uplink message of this contract (dropped, logged).
    pub unreadable: usize,
}

/// What the consumer needs to tell one site: how far central holds the hub's current stream,
/// and whether a gap stays open below what the hub counts as delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteSyncState {
    pub site: String,
    /// The hub's current stream.
    pub stream: String,
    /// Every event of that stream up to here is held.
    pub contiguous_seq: i64,
    /// The lowest sequence number the hub has not had acknowledged (from its status or
    /// heartbeat; its last one plus one when it said none).
    pub hub_first_undelivered: Option<i64>,
    /// The next sequence number held after the gap, if any.
    pub next_held: Option<i64>,
}

/// Why central's storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "central database {} has the first schema (before streams); run `central run` on it once to upgrade it, then report again",
        path.display()
    )]
    OldSchema { path: std::path::PathBuf },
}

/// Central's storage, as the consumer uses it.
pub trait EventStore: Send + 'static {
    /// Stores a batch of uplink messages (events, acks, status, heartbeats) in one
    /// transaction; `received_at_ms` is when they arrived. Returns only once committed.
    fn store_batch(
        &mut self,
        batch: &[Arrival<'_>],
        received_at_ms: i64,
    ) -> Result<BatchCounts, StoreError>;

    /// Everything held, per site and stream.
    fn report(&self) -> Result<CentralReport, StoreError>;

    /// The sync state of every site's current stream.
    fn sync_state(&self) -> Result<Vec<SiteSyncState>, StoreError>;
}

/// One stored event, for tests and tools.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredEvent {
    pub stream: String,
    pub seq: i64,
    pub id: String,
    pub kind: String,
    pub lane: String,
    /// Order of first arrival at central (per site, from 1).
    pub arrival: i64,
    pub withheld: Option<String>,
    pub body: Option<String>,
}

//! Where central keeps what the hubs send: the [`EventStore`] the consumer writes through, and
//! its SQLite implementation ([`CentralDb`]).
//!
//! Whatever the database, an implementation keeps the rules of `docs/mqtt.md`: events keyed by
//! `(site, stream, seq)`, the same key with the same id a duplicate (dropped), with another id
//! a conflict (kept apart, reported, never dropped); each stream's contiguous sequence counts
//! the events of the stream it continues up to its base; a batch is stored in one
//! transaction, before any of its messages is acknowledged to the broker.

mod postgres;
mod sqlite;

pub use postgres::PgStore;
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
    /// Messages that are not an uplink message of this contract: kept in the quarantine
    /// table with their reason, never dropped silently.
    pub unreadable: usize,
    /// `unreadable` by reason, in the order of [`QuarantineReason::ALL`].
    pub quarantined_by_reason: [usize; QuarantineReason::ALL.len()],
}

impl BatchCounts {
    /// Counts one quarantined message.
    pub fn quarantined(&mut self, reason: QuarantineReason) {
        self.unreadable += 1;
        if let Some(i) = QuarantineReason::ALL.iter().position(|r| *r == reason) {
            self.quarantined_by_reason[i] += 1;
        }
    }
}

/// Largest event message central stores as an event (a larger one is quarantined). Hubs send
/// a withheld marker instead of an event larger than their own limit, far below this.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// Largest sequence number central accepts (the hub's own bound: 2^53, exact in JSON).
pub const MAX_SEQ: i64 = 1 << 53;

/// Why a message went to quarantine instead of the event table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuarantineReason {
    /// The topic is not an uplink topic of this contract.
    UnknownTopic,
    /// The body is larger than [`MAX_EVENT_BYTES`].
    TooLarge,
    /// The body is not UTF-8.
    NotUtf8,
    /// The body is not an event envelope (invalid JSON or missing fields).
    NotAnEnvelope,
    /// The envelope's `v` is not a contract version central reads.
    UnknownVersion,
    /// The envelope names another site than its topic.
    SiteMismatch,
    /// `seq` is 0, negative or beyond [`MAX_SEQ`].
    SeqOutOfRange,
}

impl QuarantineReason {
    pub const ALL: [QuarantineReason; 7] = [
        QuarantineReason::UnknownTopic,
        QuarantineReason::TooLarge,
        QuarantineReason::NotUtf8,
        QuarantineReason::NotAnEnvelope,
        QuarantineReason::UnknownVersion,
        QuarantineReason::SiteMismatch,
        QuarantineReason::SeqOutOfRange,
    ];

    /// The reason as stored and counted.
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineReason::UnknownTopic => "unknown_topic",
            QuarantineReason::TooLarge => "too_large",
            QuarantineReason::NotUtf8 => "not_utf8",
            QuarantineReason::NotAnEnvelope => "not_an_envelope",
            QuarantineReason::UnknownVersion => "unknown_version",
            QuarantineReason::SiteMismatch => "site_mismatch",
            QuarantineReason::SeqOutOfRange => "seq_out_of_range",
        }
    }
}

/// One uplink message as both stores read it.
pub enum Incoming<'a> {
    /// An event or withheld marker on the events or acks topic.
    Event {
        site: &'a str,
        event: Box<hub_contract::EventIn>,
    },
    /// A status or heartbeat (stored as sent; an unreadable one still says the hub is there).
    Report {
        site: &'a str,
        kind: hub_contract::UpTopic,
    },
}

/// Reads one arrival, or says why it goes to quarantine.
pub fn classify<'a>(a: &Arrival<'a>) -> Result<Incoming<'a>, QuarantineReason> {
    use hub_contract::UpTopic;
    let Some((site, kind)) = hub_contract::parse_up_topic(a.topic) else {
        return Err(QuarantineReason::UnknownTopic);
    };
    match kind {
        UpTopic::Status | UpTopic::Heartbeat => Ok(Incoming::Report { site, kind }),
        UpTopic::Events | UpTopic::Acks => {
            if a.payload.len() > MAX_EVENT_BYTES {
                return Err(QuarantineReason::TooLarge);
            }
            if std::str::from_utf8(a.payload).is_err() {
                return Err(QuarantineReason::NotUtf8);
            }
            let event = hub_contract::decode_event(a.payload)
                .map_err(|_| QuarantineReason::NotAnEnvelope)?;
            if event.v != hub_contract::CONTRACT_VERSION {
                return Err(QuarantineReason::UnknownVersion);
            }
            if event.site != site {
                return Err(QuarantineReason::SiteMismatch);
            }
            if event.seq < 1 || event.seq > MAX_SEQ {
                return Err(QuarantineReason::SeqOutOfRange);
            }
            Ok(Incoming::Event {
                site,
                event: Box::new(event),
            })
        }
    }
}

/// What a status or heartbeat says (zeros for one that cannot be read: it still shows the hub
/// is there).
pub(crate) struct HubReport {
    pub at_ms: i64,
    pub last_seq: i64,
    pub first_undelivered: Option<i64>,
    pub lineage: hub_contract::StreamFields,
}

pub(crate) fn read_hub_report(kind: hub_contract::UpTopic, text: &str) -> HubReport {
    let read = match kind {
        hub_contract::UpTopic::Status => hub_contract::decode_status(text.as_bytes())
            .map(|s| (s.at_ms, s.last_seq, s.first_undelivered_seq, s.stream)),
        _ => hub_contract::decode_heartbeat(text.as_bytes())
            .map(|h| (h.at_ms, h.last_seq, h.first_undelivered_seq, h.stream)),
    };
    let (at_ms, last_seq, first_undelivered, lineage) =
        read.unwrap_or((0, 0, None, Default::default()));
    HubReport {
        at_ms,
        last_seq,
        first_undelivered,
        lineage,
    }
}

/// A message kept in quarantine.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Quarantined {
    pub topic: String,
    pub reason: String,
    /// The body as received (lossy UTF-8, first 4 KiB).
    pub excerpt: String,
    pub bytes: i64,
    pub received_at_ms: i64,
}

/// The site named by a topic `hub/v1/<site>/...`, if any (for quarantine rows).
pub fn topic_site(topic: &str) -> Option<&str> {
    let mut parts = topic.split('/');
    (parts.next() == Some("hub") && parts.next() == Some("v1"))
        .then(|| parts.next())
        .flatten()
}

/// First 4 KiB of a body, as text.
pub fn excerpt(payload: &[u8]) -> String {
    String::from_utf8_lossy(&payload[..payload.len().min(4096)]).into_owned()
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
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("PostgreSQL: {0}")]
    PostgresSetup(String),
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

    /// Every stored event of a site: stream by stream (in the order central first saw them),
    /// each in sequence order.
    fn events(&self, site: &str) -> Result<Vec<StoredEvent>, StoreError>;

    /// The messages kept in quarantine, oldest first (first 1000).
    fn quarantined(&self) -> Result<Vec<Quarantined>, StoreError>;

    /// Every site's figures for the fleet view; `day` is the UTC day (days since the epoch)
    /// whose events count as today's.
    fn fleet_rows(&self, day: i64) -> Result<Vec<crate::fleet::FleetRow>, StoreError>;

    /// Claims the resend request for the gap of `site`'s `stream` starting at `from_seq`: true
    /// for exactly one caller among all consumers of the database (a lease row); again only
    /// once the lease is older than `lease_ms` (the request or its answer was lost).
    fn claim_resend(&mut self, claim: &ResendClaim<'_>) -> Result<bool, StoreError>;
}

/// A consumer's claim to ask a hub for a gap.
#[derive(Debug, Clone, Copy)]
pub struct ResendClaim<'a> {
    pub site: &'a str,
    pub stream: &'a str,
    pub from_seq: i64,
    pub to_seq: i64,
    pub now_ms: i64,
    pub lease_ms: i64,
    /// Who claims (the consumer's MQTT client id).
    pub consumer: &'a str,
}

/// Either store, chosen at start (`central run --db` or `--postgres`).
pub enum AnyStore {
    Sqlite(CentralDb),
    Postgres(PgStore),
}

macro_rules! both {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnyStore::Sqlite($s) => $e,
            AnyStore::Postgres($s) => $e,
        }
    };
}

impl EventStore for AnyStore {
    fn store_batch(
        &mut self,
        batch: &[Arrival<'_>],
        received_at_ms: i64,
    ) -> Result<BatchCounts, StoreError> {
        both!(self, s => s.store_batch(batch, received_at_ms))
    }
    fn report(&self) -> Result<CentralReport, StoreError> {
        both!(self, s => EventStore::report(s))
    }
    fn sync_state(&self) -> Result<Vec<SiteSyncState>, StoreError> {
        both!(self, s => s.sync_state())
    }
    fn events(&self, site: &str) -> Result<Vec<StoredEvent>, StoreError> {
        both!(self, s => EventStore::events(s, site))
    }
    fn quarantined(&self) -> Result<Vec<Quarantined>, StoreError> {
        both!(self, s => s.quarantined())
    }
    fn claim_resend(&mut self, claim: &ResendClaim<'_>) -> Result<bool, StoreError> {
        both!(self, s => s.claim_resend(claim))
    }
    fn fleet_rows(&self, day: i64) -> Result<Vec<crate::fleet::FleetRow>, StoreError> {
        both!(self, s => s.fleet_rows(day))
    }
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

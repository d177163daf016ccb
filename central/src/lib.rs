//! The reference central consumer: what a central system must do with the hubs' uplink, in a
//! few hundred lines a central team can read. Binary `central` (`central run`, `central
//! report`, `central send`); `hub demo` runs it embedded.
//!
//! It subscribes to every site's uplink with a persistent session, stores each event keyed by
//! `(site, stream, seq)`, acknowledges a message to the broker only after it is committed,
//! tracks per stream the highest contiguous sequence number, tells each hub how far it has
//! everything of the hub's current stream (cursor, so the hub may prune), and asks for a
//! resend when a gap stays open below what the hub reports as delivered (for example after a
//! broker lost messages it had acknowledged). It also sends commands down.
//!
//! Streams: a hub database numbers its events in a stream; a database that went back in time
//! or was replaced starts a new one, which may continue an older stream up to a `base_seq`
//! (the status and heartbeat say so). Central keeps every stream: the same
//! `(site, stream, seq)` with the same event id is a duplicate and dropped, with another id it
//! is a **conflict**, stored apart and reported, never dropped. Events from hubs older than
//! streams are the `legacy` stream. A stream's contiguous sequence counts the events it shares
//! with the stream it continues (up to its base).
//!
//! - [`consumer`]: the connection loop ([`run`], [`CentralHandle`]);
//! - [`store`]: the [`EventStore`] it writes through and its SQLite implementation;
//! - [`report`]: what central holds, per site and stream.
//!
//! It depends on the contract (`hub-contract`) and the MQTT set-up (`hub-mqtt`), never on the
//! hub itself.

pub mod bench;
pub mod consumer;
pub mod fleet;
pub mod fleet_sim;
pub mod metrics;
pub mod pg_cluster;
pub mod report;
pub mod store;
pub mod web;

pub use consumer::{CentralHandle, CentralOptions, run, run_with};
pub use report::{CentralReport, ConflictReport, SiteReport, StreamReport};
pub use store::{AnyStore, CentralDb, EventStore, PgStore, StoredEvent, report};

use hub_contract::{self as contract, CommandOut};
use hub_mqtt::{Connection, MqttError};

/// Largest packet the consumer reads. (A hub reads up to its `uplink.max_command_bytes`.)
pub const MAX_INCOMING_PACKET_BYTES: usize = 64 << 20;

/// Publishes one command at QoS 1 and waits for the broker's acknowledgement.
pub async fn send_command(c: &Connection, command: &CommandOut) -> Result<(), MqttError> {
    hub_mqtt::publish_once(
        c,
        &contract::commands_topic(&command.site),
        contract::encode(command),
    )
    .await
}

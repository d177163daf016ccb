//! The hub's contract: every JSON document the hub reads or writes, in one place.
//!
//! - [`topics`]: every MQTT topic string (the tree a site's hub, central and station tablets
//!   share);
//! - [`envelope`]: what a hub sends up (events, withheld markers, status, heartbeat) and the
//!   sync control central sends down (cursors, resend requests), with their streams;
//! - [`command`]: central's commands, decoded once: the envelope, the rejection of what
//!   cannot be read (naming the command whenever its id can be found), the fingerprint that
//!   recognises the same command again, and each kind's body as a typed, validated value;
//! - [`station`]: staff commands from station tablets and the replies to them;
//! - [`devices`]: networked devices' payloads on the site's local broker, a scan's
//!   classification and the device status file;
//! - [`stored`]: the JSON documents in the hub's database and the stream marker file.
//!
//! `docs/mqtt.md` documents the MQTT part exactly; change both together, and keep old
//! messages readable. Pure: no I/O, no clock (times are arguments or fields). Types of the
//! domain come from `hub-core`; their serde form is part of this contract (an outbox event's
//! payload is `hub_core::DomainEvent` as JSON).

pub mod command;
pub mod devices;
pub mod envelope;
pub mod station;
pub mod stored;
pub mod topics;

pub use command::{
    Command, CommandBody, CommandKind, CommandOut, InvalidBody, MAX_VERSION, RejectCode, Rejection,
    decode_command, sniff_identity, version_out_of_range,
};
pub use envelope::{
    BadStoredEvent, EventIn, EventRef, Heartbeat, LEGACY_STREAM, Lane, Status, StreamFields,
    SyncControl, Withheld, decode_event, decode_heartbeat, decode_status, decode_sync,
    encode_event, encode_withheld,
};
pub use topics::*;

/// Version of every envelope defined here (`"v"` field).
pub const CONTRACT_VERSION: u32 = 1;

/// Encodes any of the plain JSON messages.
pub fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("serialising plain data cannot fail")
}

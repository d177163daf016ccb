//! The envelopes of what a hub sends up (events, withheld markers, status, heartbeat) and of
//! the sync control central sends down (cursors, resend requests), with the streams they name.

use crate::{CONTRACT_VERSION, encode};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Which lane an event travelled on (informational; order comes from `seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// Recorded after the current connection was established.
    Live,
    /// Recorded before it (catch-up after an outage or restart).
    Backlog,
}

impl Lane {
    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Live => "live",
            Lane::Backlog => "backlog",
        }
    }
}

/// Why an event's content was not sent, and what was sent instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withheld {
    /// `too_large`.
    pub reason: String,
    /// Size of the full message in bytes.
    pub bytes: usize,
    /// The limit it exceeded.
    pub limit: usize,
}

#[derive(Serialize)]
struct EventOut<'a> {
    v: u32,
    site: &'a str,
    stream: &'a str,
    seq: i64,
    id: &'a str,
    kind: &'a str,
    at_ms: i64,
    lane: Lane,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    withheld: Option<Withheld>,
}

/// One outbox row as the uplink sees it.
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    pub site: &'a str,
    /// The database's stream (incarnation): `seq` counts within it.
    pub stream: &'a str,
    pub seq: i64,
    pub id: &'a str,
    pub kind: &'a str,
    pub created_at_ms: i64,
    /// The event JSON as stored in the outbox.
    pub payload: &'a str,
}

/// Encoding an event failed because the stored payload is not JSON (a store bug).
#[derive(Debug, thiserror::Error)]
#[error("outbox row {seq} does not hold valid JSON: {source}")]
pub struct BadStoredEvent {
    pub seq: i64,
    source: serde_json::Error,
}

/// Encodes an outbox row as an event message. If the message would exceed `limit` bytes, a
/// withheld marker for the same sequence number is encoded instead (so central sees no gap)
/// and returned with `Some(Withheld)`.
pub fn encode_event(
    row: EventRef<'_>,
    lane: Lane,
    limit: usize,
) -> Result<(Vec<u8>, Option<Withheld>), BadStoredEvent> {
    let raw: &RawValue = serde_json::from_str(row.payload).map_err(|source| BadStoredEvent {
        seq: row.seq,
        source,
    })?;
    let mut out = EventOut {
        v: CONTRACT_VERSION,
        site: row.site,
        stream: row.stream,
        seq: row.seq,
        id: row.id,
        kind: row.kind,
        at_ms: row.created_at_ms,
        lane,
        event: Some(raw),
        withheld: None,
    };
    let full = encode(&out);
    if full.len() <= limit {
        return Ok((full, None));
    }
    let withheld = Withheld {
        reason: "too_large".into(),
        bytes: full.len(),
        limit,
    };
    out.event = None;
    out.withheld = Some(withheld.clone());
    let marker = encode(&out);
    Ok((marker, Some(withheld)))
}

/// Encodes a withheld marker for a row whose content cannot be sent at all.
pub fn encode_withheld(row: EventRef<'_>, lane: Lane, withheld: Withheld) -> Vec<u8> {
    encode(&EventOut {
        v: CONTRACT_VERSION,
        site: row.site,
        stream: row.stream,
        seq: row.seq,
        id: row.id,
        kind: row.kind,
        at_ms: row.created_at_ms,
        lane,
        event: None,
        withheld: Some(withheld),
    })
}

/// Central's name for the stream of messages that name none (hubs from before streams).
pub const LEGACY_STREAM: &str = "legacy";

/// An event message as central reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct EventIn {
    pub v: u32,
    pub site: String,
    /// The hub database's stream; `None` from hubs older than streams (the legacy stream).
    #[serde(default)]
    pub stream: Option<String>,
    pub seq: i64,
    pub id: String,
    pub kind: String,
    pub at_ms: i64,
    pub lane: Lane,
    #[serde(default)]
    pub event: Option<Box<RawValue>>,
    #[serde(default)]
    pub withheld: Option<Withheld>,
}

impl EventIn {
    /// The stream the event's `seq` counts in ([`LEGACY_STREAM`] when it names none).
    pub fn stream(&self) -> &str {
        self.stream.as_deref().unwrap_or(LEGACY_STREAM)
    }
}

/// Decodes an event message (central side).
pub fn decode_event(bytes: &[u8]) -> Result<EventIn, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// Which stream a hub numbers its events in, as its status and heartbeat say (all `None` in
/// messages from hubs older than streams).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamFields {
    /// The hub database's current stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// The stream whose events `1..=stream_base_seq` the current one shares (a database that
    /// went back in time continues its own earlier stream; one from before streams continues
    /// `legacy`); `null` for a stream of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_continues: Option<String>,
    /// Sequence numbers up to here are `stream_continues`'s (0 for a stream of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_base_seq: Option<i64>,
}

/// Online/offline status, retained on the status topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub v: u32,
    pub site: String,
    /// `online` or `offline`.
    pub state: String,
    pub hub_version: String,
    /// Highest sequence number the hub has assigned.
    pub last_seq: i64,
    /// Lowest sequence number not yet acknowledged by the broker (none when all are).
    pub first_undelivered_seq: Option<i64>,
    pub at_ms: i64,
    #[serde(flatten)]
    pub stream: StreamFields,
}

/// The periodic heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub v: u32,
    pub site: String,
    pub at_ms: i64,
    /// Rows waiting in the outbox.
    pub outbox_depth: i64,
    /// Age of the oldest waiting row in seconds (0 when none wait).
    pub oldest_undelivered_age_s: f64,
    pub last_seq: i64,
    pub first_undelivered_seq: Option<i64>,
    /// Highest sequence number central has confirmed.
    pub confirmed_seq: i64,
    /// Messages published and not yet acknowledged.
    pub in_flight: usize,
    /// Open alerts of the red tier (absent from hubs before the fleet view).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub red_alerts_open: Option<i64>,
    /// Devices with an open `device_offline` alert (absent from hubs before the fleet view).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices_offline: Option<i64>,
    #[serde(flatten)]
    pub stream: StreamFields,
}

/// Messages central sends on the sync topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SyncControl {
    /// Central holds every event of `stream` up to and including `contiguous_seq`; the hub
    /// may prune them if `stream` is its current stream (it ignores cursors for other streams
    /// and cursors that name none).
    Cursor {
        v: u32,
        site: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stream: Option<String>,
        contiguous_seq: i64,
    },
    /// Central misses these events of `stream` although the hub had them acknowledged; send
    /// them again (ignored by a hub whose current stream is another one).
    Resend {
        v: u32,
        site: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stream: Option<String>,
        from_seq: i64,
        to_seq: i64,
    },
}

/// Decodes a sync control message.
pub fn decode_sync(bytes: &[u8]) -> Result<SyncControl, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// Decodes a status message (central side).
pub fn decode_status(bytes: &[u8]) -> Result<Status, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// Decodes a heartbeat (central side).
pub fn decode_heartbeat(bytes: &[u8]) -> Result<Heartbeat, serde_json::Error> {
    serde_json::from_slice(bytes)
}

impl Withheld {
    /// The marker's `withheld` object as JSON text (how central stores it).
    pub fn to_json(&self) -> String {
        String::from_utf8(encode(self)).expect("JSON is UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_large_events_become_withheld_markers() {
        let payload = format!("{{\"kind\":\"x\",\"blob\":\"{}\"}}", "a".repeat(2000));
        let row = EventRef {
            site: "s1",
            stream: "st-1",
            seq: 7,
            id: "id7",
            kind: "x",
            created_at_ms: 1,
            payload: &payload,
        };
        let (full, withheld) = encode_event(row, Lane::Live, 10_000).unwrap();
        assert!(withheld.is_none());
        let back = decode_event(&full).unwrap();
        assert_eq!((back.seq, back.stream()), (7, "st-1"));
        assert!(back.event.unwrap().get().contains("blob"));
        let (marker, withheld) = encode_event(row, Lane::Backlog, 1000).unwrap();
        assert!(marker.len() < 1000);
        assert_eq!(withheld.unwrap().limit, 1000);
        let back = decode_event(&marker).unwrap();
        assert!(back.event.is_none() && back.withheld.is_some());
    }

    #[test]
    fn messages_from_before_streams_stay_readable_as_the_legacy_stream() {
        let event = decode_event(
            br#"{"v":1,"site":"s1","seq":3,"id":"i","kind":"x","at_ms":1,"lane":"live","event":{}}"#,
        )
        .unwrap();
        assert_eq!(
            (event.stream.as_deref(), event.stream()),
            (None, LEGACY_STREAM)
        );
        let status: Status = serde_json::from_slice(
            br#"{"v":1,"site":"s1","state":"online","hub_version":"0.1.0","last_seq":4,"first_undelivered_seq":null,"at_ms":1}"#,
        )
        .unwrap();
        assert_eq!(status.stream, StreamFields::default());
        let beat: Heartbeat = serde_json::from_slice(
            br#"{"v":1,"site":"s1","at_ms":1,"outbox_depth":0,"oldest_undelivered_age_s":0.0,"last_seq":4,"first_undelivered_seq":null,"confirmed_seq":4,"in_flight":0}"#,
        )
        .unwrap();
        assert_eq!(beat.stream, StreamFields::default());
        assert_eq!(
            decode_sync(br#"{"type":"cursor","v":1,"site":"s1","contiguous_seq":4}"#).unwrap(),
            SyncControl::Cursor {
                v: 1,
                site: "s1".into(),
                stream: None,
                contiguous_seq: 4
            }
        );
        // And what a hub sends now names its stream everywhere.
        let fields = StreamFields {
            stream: Some("st-2".into()),
            stream_continues: Some("st-1".into()),
            stream_base_seq: Some(3),
        };
        let text = String::from_utf8(encode(&Status {
            stream: fields.clone(),
            ..status
        }))
        .unwrap();
        assert!(
            text.contains(r#""stream":"st-2","stream_continues":"st-1","stream_base_seq":3"#),
            "{text}"
        );
        let back: Status = serde_json::from_str(&text).unwrap();
        assert_eq!(back.stream, fields);
    }

    #[test]
    fn the_documented_event_envelope_is_what_is_encoded() {
        // docs/mqtt.md, "Event envelope": field order and names as central reads them.
        let payload = r#"{"kind":"sync_alert","code":"t","message":"m","seq":null}"#;
        let row = EventRef {
            site: "sh-pudong-017",
            stream: "st-1",
            seq: 42,
            id: "e-42",
            kind: "sync_alert",
            created_at_ms: 1764000000000,
            payload,
        };
        let (bytes, _) = encode_event(row, Lane::Live, 1 << 20).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            format!(
                r#"{{"v":1,"site":"sh-pudong-017","stream":"st-1","seq":42,"id":"e-42","kind":"sync_alert","at_ms":1764000000000,"lane":"live","event":{payload}}}"#
            )
        );
        let marker = encode_withheld(
            row,
            Lane::Backlog,
            Withheld {
                reason: "too_large".into(),
                bytes: 70211,
                limit: 65536,
            },
        );
        assert_eq!(
            String::from_utf8(marker).unwrap(),
            r#"{"v":1,"site":"sh-pudong-017","stream":"st-1","seq":42,"id":"e-42","kind":"sync_alert","at_ms":1764000000000,"lane":"backlog","withheld":{"reason":"too_large","bytes":70211,"limit":65536}}"#
        );
        let cursor = SyncControl::Cursor {
            v: 1,
            site: "s1".into(),
            stream: Some("st-1".into()),
            contiguous_seq: 40,
        };
        assert_eq!(
            String::from_utf8(encode(&cursor)).unwrap(),
            r#"{"type":"cursor","v":1,"site":"s1","stream":"st-1","contiguous_seq":40}"#
        );
    }
}

//! The MQTT contract: every topic string and every JSON envelope the hub and the central
//! system exchange. `docs/mqtt.md` documents exactly what is here; change both together.
//!
//! This is the only module that knows topic names and payload shapes. It converts between
//! wire bytes and typed values and does no I/O.

use crate::commands::{Command, CommandKind, RejectCode, Rejection};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Version of every envelope defined here (`"v"` field).
pub const CONTRACT_VERSION: u32 = 1;

/// First levels of every topic.
const ROOT: &str = "hub/v1";

/// What central subscribes to: everything every site sends up.
pub const CENTRAL_UPLINK_FILTER: &str = "hub/v1/+/up/#";

/// Uplink events (outbox rows): QoS 1, not retained.
pub fn events_topic(site: &str) -> String {
    format!("{ROOT}/{site}/up/events")
}

/// Command outcomes (`command_applied` / `command_rejected` outbox rows): QoS 1, not retained.
pub fn acks_topic(site: &str) -> String {
    format!("{ROOT}/{site}/up/acks")
}

/// Online/offline status (also the Last Will): QoS 1, retained.
pub fn status_topic(site: &str) -> String {
    format!("{ROOT}/{site}/up/status")
}

/// Periodic heartbeat: QoS 0, not retained.
pub fn heartbeat_topic(site: &str) -> String {
    format!("{ROOT}/{site}/up/heartbeat")
}

/// Commands from central to one site: QoS 1, not retained.
pub fn commands_topic(site: &str) -> String {
    format!("{ROOT}/{site}/down/commands")
}

/// Sync control from central (cursor confirmations, resend requests): QoS 1, not retained.
pub fn sync_topic(site: &str) -> String {
    format!("{ROOT}/{site}/down/sync")
}

/// Staff commands from a station tablet: QoS 1, not retained. The hub subscribes to
/// [`station_filter`].
pub fn station_topic(site: &str, station: &str) -> String {
    format!("{ROOT}/{site}/down/station/{station}")
}

/// Every station's commands of one site.
pub fn station_filter(site: &str) -> String {
    format!("{ROOT}/{site}/down/station/+")
}

/// Answers to a station's commands: QoS 1, not retained, not through the outbox.
pub fn station_reply_topic(site: &str, station: &str) -> String {
    format!("{ROOT}/{site}/up/station/{station}/reply")
}

/// Parses a station command topic into the site and the station.
pub fn parse_station_topic(topic: &str) -> Option<(&str, &str)> {
    let (site, dir, leaf) = split_topic(topic)?;
    let station = leaf.strip_prefix("station/")?;
    (dir == "down" && site_fits_topic(station)).then_some((site, station))
}

/// Local device topics on the site's own broker (scales, scanners): `…/local/devices/{id}/{leaf}`.
pub fn device_topic(site: &str, device: &str, leaf: &str) -> String {
    format!("{ROOT}/{site}/local/devices/{device}/{leaf}")
}

/// Which uplink topic a message arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpTopic {
    Events,
    Acks,
    Status,
    Heartbeat,
}

/// Which downlink topic a message arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownTopic {
    Commands,
    Sync,
}

fn split_topic(topic: &str) -> Option<(&str, &str, &str)> {
    let rest = topic.strip_prefix(ROOT)?.strip_prefix('/')?;
    let mut parts = rest.splitn(3, '/');
    let site = parts.next()?;
    let dir = parts.next()?;
    let leaf = parts.next()?;
    (!site.is_empty()).then_some((site, dir, leaf))
}

/// Parses an uplink topic into the site and the kind of message.
pub fn parse_up_topic(topic: &str) -> Option<(&str, UpTopic)> {
    let (site, dir, leaf) = split_topic(topic)?;
    if dir != "up" {
        return None;
    }
    let kind = match leaf {
        "events" => UpTopic::Events,
        "acks" => UpTopic::Acks,
        "status" => UpTopic::Status,
        "heartbeat" => UpTopic::Heartbeat,
        _ => return None,
    };
    Some((site, kind))
}

/// Parses a downlink topic into the site and the kind of message.
pub fn parse_down_topic(topic: &str) -> Option<(&str, DownTopic)> {
    let (site, dir, leaf) = split_topic(topic)?;
    if dir != "down" {
        return None;
    }
    match leaf {
        "commands" => Some((site, DownTopic::Commands)),
        "sync" => Some((site, DownTopic::Sync)),
        _ => None,
    }
}

/// Whether a site id can be used as one topic level (no `/`, `+`, `#`).
pub fn site_fits_topic(site: &str) -> bool {
    !site.is_empty() && !site.contains(['/', '+', '#'])
}

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
    let full = serde_json::to_vec(&out).expect("serialising plain data cannot fail");
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
    let marker = serde_json::to_vec(&out).expect("serialising plain data cannot fail");
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

/// The topic an outbox row goes to: command outcomes on the acks topic, the rest on events.
pub fn topic_for_event(site: &str, kind: &str) -> String {
    if kind == "command_applied" || kind == "command_rejected" {
        acks_topic(site)
    } else {
        events_topic(site)
    }
}

/// Central's name for the stream of messages that name none (hubs from before streams).
pub const LEGACY_STREAM: &str = crate::store::stream::LEGACY_STREAM;

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
    #[serde(flatten)]
    pub stream: StreamFields,
}

/// Encodes any of the plain JSON messages.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("serialising plain data cannot fail")
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

/// A command as put on the wire (central side).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandOut {
    pub v: u32,
    pub id: String,
    pub site: String,
    pub kind: String,
    pub key: String,
    pub version: i64,
    pub body: serde_json::Value,
}

/// How far into an unreadable command [`sniff_identity`] looks for its id and kind. Central
/// writes them first (`v`, `id`, `site`, `kind`, … then `body`), so a bounded prefix finds them
/// in any command central sends, however large or damaged its body.
pub const SNIFF_LIMIT: usize = 1 << 20;

/// Longest command id accepted (bytes).
const MAX_COMMAND_ID_BYTES: usize = 128;

fn usable_id(id: String) -> Option<String> {
    (!id.is_empty() && id.len() <= MAX_COMMAND_ID_BYTES).then_some(id)
}

/// Reads the top-level `"id"` and `"kind"` of a command that cannot be decoded (too large, not
/// UTF-8, not JSON, cut off), so that its rejection names it. Lenient: it walks the top-level
/// object byte by byte within the first [`SNIFF_LIMIT`] bytes, skips nested values, and stops
/// at the first thing it cannot follow, keeping what it found before. Only string values that
/// are themselves valid JSON strings count; nested `"id"` keys (inside `body`) never do.
pub fn sniff_identity(bytes: &[u8]) -> (Option<String>, Option<String>) {
    let bytes = &bytes[..bytes.len().min(SNIFF_LIMIT)];
    let mut scan = Sniffer { bytes, at: 0 };
    let (mut id, mut kind) = (None, None);
    scan.whitespace();
    if !scan.eat(b'{') {
        return (None, None);
    }
    loop {
        scan.whitespace();
        let Some(key) = scan.string() else { break };
        scan.whitespace();
        if !scan.eat(b':') {
            break;
        }
        scan.whitespace();
        let value_start = scan.at;
        if scan.peek() == Some(b'"') {
            let Some(token) = scan.string() else { break };
            let text = || serde_json::from_slice::<String>(token).ok();
            match key {
                b"\"id\"" if id.is_none() => id = text().and_then(usable_id),
                b"\"kind\"" if kind.is_none() => kind = text().filter(|k| !k.is_empty()),
                _ => {}
            }
        } else if !scan.skip_value() || scan.at == value_start {
            break;
        }
        scan.whitespace();
        if !scan.eat(b',') {
            break;
        }
    }
    (id, kind)
}

/// A cursor over the bytes of a JSON text, for [`sniff_identity`].
struct Sniffer<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Sniffer<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let hit = self.peek() == Some(byte);
        self.at += usize::from(hit);
        hit
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// A string token, quotes included; `None` when there is none or it is cut off.
    fn string(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        if !self.eat(b'"') {
            return None;
        }
        while let Some(b) = self.peek() {
            self.at += 1;
            match b {
                b'\\' => self.at += 1,
                b'"' => return self.bytes.get(start..self.at),
                _ => {}
            }
        }
        None
    }

    /// Skips a non-string value: an object or array (strings inside included) or a scalar.
    /// `false` when it is cut off.
    fn skip_value(&mut self) -> bool {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'"' => {
                    if self.string().is_none() {
                        return false;
                    }
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth == 0 => return true,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        self.at += 1;
                        return true;
                    }
                }
                b',' if depth == 0 => return true,
                _ => {}
            }
            self.at += 1;
        }
        depth == 0
    }
}

/// A fingerprint of a command's exact bytes, for commands that could not be decoded: the same
/// message delivered again is recognised, another one under the same id is not.
fn raw_fingerprint(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Decodes a command message; every failure becomes a [`Rejection`] with as much of the
/// command's identity as could be read (see [`sniff_identity`]). Checks the size and the
/// encoding before parsing anything.
pub fn decode_command(bytes: &[u8], max_bytes: usize) -> Result<Command, Rejection> {
    let rejection = |id: Option<String>, kind: Option<String>, code, reason: String| Rejection {
        command_id: id,
        kind,
        code,
        reason,
        fingerprint: Some(raw_fingerprint(bytes)),
    };
    let unreadable = |code, reason: String| {
        let (id, kind) = sniff_identity(bytes);
        rejection(id, kind, code, reason)
    };
    if bytes.len() > max_bytes {
        return Err(unreadable(
            RejectCode::Oversized,
            format!("command is {} bytes; the limit is {max_bytes}", bytes.len()),
        ));
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(unreadable(
            RejectCode::Malformed,
            format!(
                "command is not valid UTF-8 (bad byte at offset {}); JSON commands must be UTF-8",
                e.valid_up_to()
            ),
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| unreadable(RejectCode::Malformed, format!("not a JSON command: {e}")))?;
    let text = |key: &str| {
        value
            .get(key)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let id = text("id").and_then(usable_id);
    let kind_name = text("kind");
    let Some(id) = id else {
        return Err(rejection(
            None,
            kind_name,
            RejectCode::Malformed,
            format!(
                "missing or invalid \"id\" (a string of 1..={MAX_COMMAND_ID_BYTES} characters)"
            ),
        ));
    };
    match value.get("v").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(CONTRACT_VERSION) => {}
        other => {
            return Err(rejection(
                Some(id),
                kind_name,
                RejectCode::UnsupportedVersion,
                format!(
                    "envelope version {} is not supported; this hub speaks v{CONTRACT_VERSION}",
                    other.map_or("(missing)".to_owned(), |v| v.to_string())
                ),
            ));
        }
    }
    let Some(kind_name) = kind_name else {
        return Err(rejection(
            Some(id),
            None,
            RejectCode::Malformed,
            "missing \"kind\"".into(),
        ));
    };
    let Some(kind) = CommandKind::parse(&kind_name) else {
        let known: Vec<&str> = CommandKind::ALL.iter().map(|k| k.as_str()).collect();
        return Err(rejection(
            Some(id),
            Some(kind_name.clone()),
            RejectCode::UnknownKind,
            format!(
                "unknown command kind '{kind_name}'; known kinds are {}",
                known.join(", ")
            ),
        ));
    };
    let refuse = |reason: String| {
        rejection(
            Some(id.clone()),
            Some(kind_name.clone()),
            RejectCode::Malformed,
            reason,
        )
    };
    let missing = |what: &str| refuse(format!("missing or invalid \"{what}\""));
    let site = text("site").ok_or_else(|| missing("site"))?;
    let key = text("key").ok_or_else(|| missing("key"))?;
    // Any whole number that fits is read here; `commands::apply` refuses the ones outside
    // the range versions may take. A number that does not fit is refused for the same reason.
    let version = match value.get("version") {
        Some(serde_json::Value::Number(n)) => match n.as_i64() {
            Some(v) => v,
            None => return Err(refuse(crate::commands::version_out_of_range(n))),
        },
        _ => return Err(missing("version")),
    };
    let body = value.get("body").cloned().ok_or_else(|| missing("body"))?;
    Ok(Command {
        id,
        site,
        kind,
        key,
        version,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip() {
        assert_eq!(events_topic("s1"), "hub/v1/s1/up/events");
        assert_eq!(
            parse_up_topic(&status_topic("s-2")),
            Some(("s-2", UpTopic::Status))
        );
        assert_eq!(
            parse_down_topic(&commands_topic("s1")),
            Some(("s1", DownTopic::Commands))
        );
        assert_eq!(parse_up_topic("hub/v1/s1/down/commands"), None);
        assert!(!site_fits_topic("a/b"));
    }

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
    fn bad_commands_are_rejected_with_their_identity() {
        let ok = br#"{"v":1,"id":"c1","site":"s1","kind":"pickup_order","key":"P1","version":2,"body":{}}"#;
        let c = decode_command(ok, 1000).unwrap();
        assert_eq!((c.kind, c.version), (CommandKind::PickupOrder, 2));
        let code = |b: &[u8]| decode_command(b, 200).unwrap_err().code;
        assert_eq!(code(b"not json"), RejectCode::Malformed);
        assert_eq!(code(&[b' '; 300]), RejectCode::Oversized);
        let unknown = decode_command(
            br#"{"v":1,"id":"c2","site":"s1","kind":"launch","key":"k","version":1,"body":{}}"#,
            200,
        )
        .unwrap_err();
        assert_eq!(unknown.code, RejectCode::UnknownKind);
        assert_eq!(unknown.command_id.as_deref(), Some("c2"));
        assert_eq!(
            code(br#"{"v":9,"id":"c3","kind":"pickup_order"}"#),
            RejectCode::UnsupportedVersion
        );
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
    fn unreadable_commands_still_name_their_top_level_id_and_kind() {
        let named = |bytes: &[u8], limit| {
            let r = decode_command(bytes, limit).unwrap_err();
            (r.command_id, r.kind)
        };
        let some = |s: &str| Some(s.to_owned());
        // The id after a nested "id" and a long body; only the top level counts.
        let late = format!(
            r#"{{"v":1,"body":{{"id":"inner","items":[{{"id":"x"}}],"pad":"{}"}},"kind":"pickup_order","id":"outer"}}"#,
            "y".repeat(3000)
        );
        assert_eq!(
            named(late.as_bytes(), 100),
            (some("outer"), some("pickup_order"))
        );
        // Escapes in the id are decoded; invalid UTF-8 elsewhere does not hide it.
        let mut bad = br#"{"id" : "c-\"q\"\u00e9", "note":"#.to_vec();
        bad.extend_from_slice(b"\"\xc3\x28\", \"kind\":\"sku_upsert\"}");
        assert_eq!(named(&bad, 1000), (some("c-\"q\"é"), some("sku_upsert")));
        // Cut off mid-way: whatever was read before the cut still names it.
        assert_eq!(
            named(br#"{"id":"c-cut","kind":"sku_ups"#, 1000),
            (some("c-cut"), None)
        );
        // No usable id: an empty, over-long or non-string id, or none at all.
        assert_eq!(named(br#"{"id":"","kind":"x"#, 1000).0, None);
        let long = format!(r#"{{"id":"{}","x":"#, "i".repeat(129));
        assert_eq!(named(long.as_bytes(), 1000).0, None);
        assert_eq!(named(br#"{"id":42,"x":"#, 1000).0, None);
        assert_eq!(named(b"\xff\xfe not json at all", 1000).0, None);
        assert_eq!(named(br#"["id","c1"]"#, 1000).0, None);
    }
}

//! The documents the hub stores as JSON: columns of its database (outbox events, SKU GTINs,
//! tier policies and alert state, pickup order items, attempt limiters, handovers, trace-code
//! elements, manifests, line observations, decisions, device-input classifications) and the
//! stream marker file beside it. The store calls these functions and names no JSON itself.
//!
//! Their bytes are on disk in every site's database: a change of form needs a migration (or a
//! reader that still takes the old form), never just a new encoder.

use hub_core::alerts::{SkuAlertState, TierPolicy};
use hub_core::event::{Handover, ReceivingDecision};
use hub_core::pickup::{AttemptLimiter, PickupItem};
use hub_core::receiving::{CodeElement, CodeFlag, Manifest, PhotoEvidence};
use hub_core::{DomainEvent, Gtin};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A stored document that cannot be read back (or, for an event, written).
#[derive(Debug, thiserror::Error)]
#[error("stored {what} is not {}: {source}", if *.writing { "writable" } else { "readable" })]
pub struct StoredError {
    /// What the document is (`pickup order items`, `manifest`, …).
    pub what: &'static str,
    /// Whether it was being written (rather than read).
    pub writing: bool,
    #[source]
    pub source: serde_json::Error,
}

fn decode<T: DeserializeOwned>(what: &'static str, text: &str) -> Result<T, StoredError> {
    serde_json::from_str(text).map_err(|source| StoredError {
        what,
        writing: false,
        source,
    })
}

fn encode_or<T: Serialize + ?Sized>(value: &T, fallback: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| fallback.to_owned())
}

/// An outbox event's payload (`outbox.payload`): the event's fields as JSON, exactly what the
/// uplink sends as the envelope's `event`.
pub fn encode_event(event: &DomainEvent) -> Result<String, StoredError> {
    serde_json::to_string(event).map_err(|source| StoredError {
        what: "outbox event",
        writing: true,
        source,
    })
}

/// Reads an outbox event's payload back.
pub fn decode_event(text: &str) -> Result<DomainEvent, StoredError> {
    decode("outbox event", text)
}

/// A SKU's GTINs (`sku.gtins`), a JSON array of GTIN-14 texts.
pub fn encode_gtins(gtins: &[Gtin]) -> String {
    encode_or(gtins, "[]")
}

/// The GTIN texts as stored (rows written before GTINs were normalised may hold other
/// lengths; the store normalises them).
pub fn decode_gtin_texts(text: &str) -> Result<Vec<String>, StoredError> {
    decode("SKU GTINs", text)
}

/// One of central's demand signals (`demand_signal.body`).
pub fn encode_demand_signal(signal: &hub_forecast::DemandSignal) -> String {
    encode_or(signal, "")
}

/// Reads a stored demand signal.
pub fn decode_demand_signal(text: &str) -> Result<hub_forecast::DemandSignal, StoredError> {
    decode("demand signal", text)
}

/// A SKU's tier policy (`sku_tier_policy.policy`).
pub fn encode_tier_policy(policy: &TierPolicy) -> String {
    encode_or(policy, "")
}

/// Reads a stored tier policy.
pub fn decode_tier_policy(text: &str) -> Result<TierPolicy, StoredError> {
    decode("tier policy", text)
}

/// A SKU's alert state: tier, episode (`sku_alert_state.state`).
pub fn encode_alert_state(state: &SkuAlertState) -> String {
    encode_or(state, "")
}

/// Reads a stored alert state.
pub fn decode_alert_state(text: &str) -> Result<SkuAlertState, StoredError> {
    decode("SKU alert state", text)
}

/// A pickup order's items (`pickup_order.body`).
pub fn encode_order_items(items: &[PickupItem]) -> String {
    encode_or(items, "[]")
}

/// Reads a pickup order's stored items.
pub fn decode_order_items(text: &str) -> Result<Vec<PickupItem>, StoredError> {
    decode("pickup order items", text)
}

/// A station's (or the site's) wrong-code limiter (`station_attempts.state`).
pub fn encode_limiter(limiter: &AttemptLimiter) -> String {
    encode_or(limiter, "{}")
}

/// Reads a stored limiter.
pub fn decode_limiter(text: &str) -> Result<AttemptLimiter, StoredError> {
    decode("attempt limiter", text)
}

/// A handover record (`handover.body`).
pub fn encode_handover(handover: &Handover) -> String {
    encode_or(handover, "")
}

/// Reads a stored handover.
pub fn decode_handover(text: &str) -> Result<Handover, StoredError> {
    decode("handover", text)
}

/// The GS1 elements of a bound trace code (`trace_code.elements`).
pub fn encode_code_elements(elements: &[CodeElement]) -> String {
    encode_or(elements, "")
}

/// Reads a trace code's stored elements.
pub fn decode_code_elements(text: &str) -> Result<Vec<CodeElement>, StoredError> {
    decode("trace-code elements", text)
}

/// A delivery manifest (`delivery_manifest.body`).
pub fn encode_manifest(manifest: &Manifest) -> String {
    encode_or(manifest, "")
}

/// Reads a stored manifest.
pub fn decode_manifest(text: &str) -> Result<Manifest, StoredError> {
    decode("manifest", text)
}

/// What was observed on one receiving line so far (`receiving_line.observations`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LineRecord {
    /// A count entered by staff, overriding the count of scans.
    pub counted_by_staff: Option<i64>,
    pub bound_codes: Vec<String>,
    /// Product scans (no serial) counted on the line, as scanned; never bound.
    #[serde(default)]
    pub product_scans: Vec<String>,
    pub flagged: Vec<(String, CodeFlag)>,
    /// Stable weights in grams, oldest first; the last one counts.
    pub weights_g: Vec<i64>,
    pub photos: Vec<PhotoEvidence>,
}

impl LineRecord {
    /// Items counted by scanning: trace codes bound plus product scans.
    pub fn scanned(&self) -> usize {
        self.bound_codes.len() + self.product_scans.len()
    }
}

/// A line's observations (`receiving_line.observations`).
pub fn encode_line_record(record: &LineRecord) -> String {
    encode_or(record, "")
}

/// Reads a line's stored observations.
pub fn decode_line_record(text: &str) -> Result<LineRecord, StoredError> {
    decode("line observations", text)
}

/// A receiving decision (`line_decision.body`).
pub fn encode_decision(decision: &ReceivingDecision) -> String {
    encode_or(decision, "")
}

/// Reads a stored decision.
pub fn decode_decision(text: &str) -> Result<ReceivingDecision, StoredError> {
    decode("receiving decision", text)
}

/// A stored JSON document shown as it is (a scan's classification in `device_input.parsed`,
/// whatever hub version wrote it): serialises as the JSON it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StoredDocument(serde_json::Value);

impl StoredDocument {
    /// A top-level text field of the document.
    pub fn text(&self, field: &str) -> Option<&str> {
        self.0.get(field).and_then(|v| v.as_str())
    }
}

/// Reads a stored document for display.
pub fn decode_document(text: &str) -> Result<StoredDocument, StoredError> {
    decode("document", text)
}

/// What the stream marker file beside the database holds (`<data_dir>/hub-<site>.stream`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamMarker {
    /// The site the database belongs to.
    pub site: String,
    /// The stream the site's events are numbered in.
    pub stream: String,
    /// When that stream was created (ms since the epoch).
    pub stream_created_at_ms: i64,
    /// A sequence number the database had committed (a lower bound of its outbox counter).
    pub high_water_seq: i64,
    /// When the high-water mark was recorded (ms since the epoch).
    pub recorded_at_ms: i64,
}

/// The stream marker file's bytes: pretty JSON and a final newline.
pub fn encode_marker(marker: &StreamMarker) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(marker).expect("serialising plain data cannot fail");
    bytes.push(b'\n');
    bytes
}

/// Reads a stream marker file.
pub fn decode_marker(bytes: &[u8]) -> Result<StreamMarker, StoredError> {
    serde_json::from_slice(bytes).map_err(|source| StoredError {
        what: "stream marker",
        writing: false,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hub_core::pickup::AttemptLimiter;
    use hub_core::{SkuCode, Timestamp};

    #[test]
    fn stored_documents_keep_their_form() {
        // These bytes are in sites' databases: the encoders must keep writing them and the
        // decoders keep reading them.
        let items = vec![PickupItem {
            sku: SkuCode::new("MILK-1L").unwrap(),
            quantity: 2,
            lot: None,
            trace_codes: vec![],
            unit_price_cents: None,
        }];
        let text = encode_order_items(&items);
        assert_eq!(decode_order_items(&text).unwrap(), items);
        assert!(
            text.starts_with(r#"[{"sku":"MILK-1L","quantity":2"#),
            "{text}"
        );
        let gtins = [Gtin::parse("6901234567892").unwrap()];
        assert_eq!(encode_gtins(&gtins), r#"["06901234567892"]"#);
        assert_eq!(
            decode_gtin_texts(r#"["6901234567892"]"#).unwrap(),
            ["6901234567892"]
        );
        let limiter = AttemptLimiter::default();
        assert_eq!(decode_limiter(&encode_limiter(&limiter)).unwrap(), limiter);
        let record = LineRecord {
            counted_by_staff: Some(3),
            bound_codes: vec!["c1".into()],
            ..LineRecord::default()
        };
        assert_eq!(
            decode_line_record(&encode_line_record(&record)).unwrap(),
            record
        );
        // A line record from before product scans were kept still reads.
        let old = r#"{"counted_by_staff":null,"bound_codes":["a"],"flagged":[],"weights_g":[5],"photos":[]}"#;
        assert_eq!(decode_line_record(old).unwrap().weights_g, [5]);
        let err = decode_manifest("{").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("stored manifest is not readable"),
            "{err}"
        );
        let event = DomainEvent::SyncAlert {
            code: "t".into(),
            message: "m".into(),
            seq: None,
        };
        let text = encode_event(&event).unwrap();
        assert_eq!(
            text,
            r#"{"kind":"sync_alert","code":"t","message":"m","seq":null}"#
        );
        assert_eq!(decode_event(&text).unwrap(), event);
        let marker = StreamMarker {
            site: "s1".into(),
            stream: "st".into(),
            stream_created_at_ms: 1,
            high_water_seq: 2,
            recorded_at_ms: Timestamp(3).millis(),
        };
        let bytes = encode_marker(&marker);
        assert!(bytes.ends_with(b"}\n"));
        assert_eq!(decode_marker(&bytes).unwrap(), marker);
        let doc = decode_document(r#"{"class":"gtin"}"#).unwrap();
        assert_eq!(doc.text("class"), Some("gtin"));
    }
}

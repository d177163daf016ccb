//! What networked devices publish on the site's local broker, and the documents the hub keeps
//! about its devices: a scan's classification (journaled with each scan) and the device status
//! file (`hub devices` reads what a running hub wrote).

use serde::{Deserialize, Serialize};

/// Largest payload accepted from a device.
pub const MAX_DEVICE_PAYLOAD: usize = 4096;

/// What a networked scale published: `{"grams": 1250, "stable": true}` or
/// `{"weight": "1.250", "unit": "kg", "stable": true}` (a `ts` is allowed and ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePayload {
    pub weight: ScaleWeight,
    /// The scale's own stability flag.
    pub stable: bool,
}

/// The weight in a scale payload, as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScaleWeight {
    /// Whole grams.
    Grams(i64),
    /// A decimal as text (a JSON number is taken as its text) in `unit` (`kg` when omitted);
    /// the hub reads both with the firmware shim's parsers.
    Decimal { text: String, unit: Option<String> },
}

/// A weight payload, as devices publish it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WeightWire {
    grams: Option<i64>,
    weight: Option<serde_json::Value>,
    unit: Option<String>,
    #[serde(default)]
    stable: bool,
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "devices may send their own time; the hub uses its clock"
    )]
    ts: Option<i64>,
}

/// What is wrong with a scale's payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScalePayloadError {
    #[error("weight payload is not the expected JSON: {0}")]
    NotJson(String),
    #[error("\"weight\" must be a decimal string or number")]
    WeightNotDecimal,
    #[error("give exactly one of \"grams\" or \"weight\"")]
    GramsOrWeight,
}

/// Reads a scale payload; the error says what is wrong with it.
pub fn decode_scale_payload(payload: &[u8]) -> Result<ScalePayload, ScalePayloadError> {
    let p: WeightWire =
        serde_json::from_slice(payload).map_err(|e| ScalePayloadError::NotJson(e.to_string()))?;
    let weight = match (p.grams, p.weight) {
        (Some(g), None) => ScaleWeight::Grams(g),
        (None, Some(w)) => {
            let text = match &w {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => return Err(ScalePayloadError::WeightNotDecimal),
            };
            ScaleWeight::Decimal { text, unit: p.unit }
        }
        _ => return Err(ScalePayloadError::GramsOrWeight),
    };
    Ok(ScalePayload {
        weight,
        stable: p.stable,
    })
}

/// What a scanned code was classified as (from `firmware_shim::codes::trace::classify`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ParsedCode {
    /// `gs1_item`, `sscc`, `gs1_other`, `gtin`, `cn_drug`, `scale_label`, `site`, `opaque`,
    /// or `invalid`.
    pub class: String,
    /// AIM symbology identifier, e.g. `]C1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aim: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gtin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sscc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    /// The site pattern it matched (class `site`), from `[codes] patterns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Why the code is not a valid trace code (class `invalid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ParsedCode {
    /// A scan that is not a valid code (counted as a malformed frame of its scanner).
    pub fn is_malformed(&self) -> bool {
        self.class == "invalid"
    }
}

/// A device's health and counters, for the status page and `hub devices` (one row of the
/// device status file).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceHealth {
    pub name: String,
    pub kind: String,
    pub station: String,
    /// The port path or the MQTT topic.
    pub source: String,
    pub protocol: Option<String>,
    pub online: bool,
    /// Why it is offline, or what the probe found when online.
    pub detail: String,
    /// Milliseconds since the epoch of the last online/offline change.
    pub since_ms: i64,
    /// Times the port was opened again after being lost.
    pub reconnects: u64,
    /// Frames that parsed.
    pub frames: u64,
    /// Bytes dropped as line noise or outside any frame (wrong baud rate, interference).
    pub garbage_bytes: u64,
    /// Frames discarded because they contained noise.
    pub garbage_frames: u64,
    /// Frames discarded for being longer than the buffer.
    pub overlong: u64,
    pub checksum_failures: u64,
    /// Frames cut correctly whose content did not parse (partial or damaged frames; for
    /// scanners, scans that are not a valid code).
    pub malformed: u64,
    /// Stable placements (scales) or scans (scanners) sent to the dispatcher.
    pub events: u64,
    /// Inputs the workflows applied.
    pub applied: u64,
    /// Inputs the workflows refused (journaled all the same).
    pub refused: u64,
    /// Scans recorded on their line as flagged (malformed, unrecognised, already bound…),
    /// which holds the line for review.
    #[serde(default)]
    pub flagged: u64,
    /// Last weight seen (stable or not), grams.
    pub last_grams: Option<i64>,
    /// Last code scanned (scanners), as framed, without AIM identifier.
    #[serde(default)]
    pub last_code: Option<String>,
    /// Milliseconds since the epoch of the last frame that parsed (the device "last seen").
    #[serde(default)]
    pub last_seen_ms: Option<i64>,
}

/// Encodes a scan's classification as journaled with the scan (`device_input.parsed`).
pub fn encode_parsed_code(parsed: &ParsedCode) -> String {
    String::from_utf8(crate::encode(parsed)).expect("JSON is UTF-8")
}

/// The device status file: every device's health, pretty-printed.
pub fn encode_device_status(devices: &[DeviceHealth]) -> Vec<u8> {
    serde_json::to_vec_pretty(devices).expect("serialising plain data cannot fail")
}

/// Reads a device status file.
pub fn decode_device_status(bytes: &[u8]) -> Result<Vec<DeviceHealth>, serde_json::Error> {
    serde_json::from_slice(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_payloads_in_grams_or_as_a_decimal_with_a_unit() {
        let p = decode_scale_payload(br#"{"grams": 1250, "stable": true}"#).unwrap();
        assert_eq!(
            p,
            ScalePayload {
                weight: ScaleWeight::Grams(1250),
                stable: true
            }
        );
        let p = decode_scale_payload(br#"{"weight": 1.25, "unit": "kg", "ts": 5}"#).unwrap();
        assert_eq!(
            p.weight,
            ScaleWeight::Decimal {
                text: "1.25".into(),
                unit: Some("kg".into())
            }
        );
        assert!(!p.stable);
        let err = |b: &[u8]| decode_scale_payload(b).unwrap_err().to_string();
        assert!(err(b"{\"grams\": 1, \"weight\": \"1\"}").contains("exactly one"));
        assert!(err(b"{\"weight\": true}").contains("decimal string or number"));
        assert!(err(b"{\"grams\": 1, \"tare\": 2}").contains("not the expected JSON"));
        assert!(err(b"1250").contains("not the expected JSON"));
    }

    #[test]
    fn the_status_file_reads_back_and_older_files_without_new_counters_still_read() {
        let h = DeviceHealth {
            name: "scale-1".into(),
            kind: "scale".into(),
            online: true,
            flagged: 2,
            last_code: Some("X".into()),
            ..DeviceHealth::default()
        };
        let bytes = encode_device_status(std::slice::from_ref(&h));
        assert_eq!(decode_device_status(&bytes).unwrap(), [h]);
        let old = br#"[{"name":"s","kind":"scanner","station":"","source":"","protocol":null,
            "online":false,"detail":"","since_ms":0,"reconnects":0,"frames":0,"garbage_bytes":0,
            "garbage_frames":0,"overlong":0,"checksum_failures":0,"malformed":0,"events":0,
            "applied":0,"refused":0,"last_grams":null}]"#;
        assert_eq!(decode_device_status(old).unwrap()[0].flagged, 0);
        let code = ParsedCode {
            class: "gtin".into(),
            gtin: Some("06901234567892".into()),
            ..ParsedCode::default()
        };
        assert_eq!(
            encode_parsed_code(&code),
            r#"{"class":"gtin","gtin":"06901234567892"}"#
        );
    }
}

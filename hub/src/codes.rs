//! Scanned codes as the hub's workflows see them: the firmware-shim's classification, turned
//! into owned values with a canonical form to store and compare.
//!
//! Parsing itself lives once, in `firmware_shim::codes`; this module only adapts it.

use firmware_shim::codes::trace::{TraceCode, classify};
use firmware_shim::wire::scanner::{AimId, Scan};

/// What a scan is, for the workflows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "class", rename_all = "snake_case")]
pub enum ScannedCode {
    /// A serialised item: GTIN + serial (GS1), or another item trace code.
    Item { code: String, gtin: Option<String> },
    /// A logistic unit (crate, pallet): SSCC-18.
    Sscc { sscc: String },
    /// Something that is not a valid code; `reason` says why.
    Malformed { raw: String, reason: String },
}

/// Classifies scanner text (an AIM prefix such as `]C1` and GS separators may be present).
pub fn classify_text(text: &str) -> ScannedCode {
    let raw = text.trim_end_matches(['\r', '\n']);
    let bytes = raw.as_bytes();
    let scan = match AimId::split(bytes) {
        Some((aim, data)) => Scan {
            aim: Some(aim),
            data,
        },
        None => Scan {
            aim: None,
            data: bytes,
        },
    };
    classify_scan(&scan)
}

/// Classifies a framed scan.
pub fn classify_scan(scan: &Scan<'_>) -> ScannedCode {
    let raw = String::from_utf8_lossy(scan.data).replace('\u{1d}', "<GS>");
    let mut scratch = [0u8; 512];
    match classify(scan, &[], &mut scratch) {
        Ok(TraceCode::Gs1Item { gtin, serial, .. }) => ScannedCode::Item {
            code: format!("(01){gtin}(21){serial}"),
            gtin: Some(gtin.to_owned()),
        },
        Ok(TraceCode::Sscc { sscc, .. }) => ScannedCode::Sscc {
            sscc: sscc.to_owned(),
        },
        Ok(TraceCode::Gs1Other { elements }) => {
            let mut out = [0u8; 256];
            let code = match elements.write_bracketed(&mut out) {
                Ok(n) => String::from_utf8_lossy(&out[..n]).into_owned(),
                Err(_) => raw,
            };
            ScannedCode::Item {
                code,
                gtin: elements.gtin().map(str::to_owned),
            }
        }
        Ok(TraceCode::Gtin { digits }) => ScannedCode::Item {
            code: digits.to_owned(),
            gtin: Some(digits.to_owned()),
        },
        Ok(TraceCode::CnDrug(_))
        | Ok(TraceCode::ScaleLabel { .. })
        | Ok(TraceCode::Site { .. })
        | Ok(TraceCode::Opaque { .. }) => ScannedCode::Item {
            code: raw,
            gtin: None,
        },
        Err(e) => ScannedCode::Malformed {
            raw,
            reason: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gs1_items_ssccs_and_bad_check_digits() {
        assert_eq!(
            classify_text("]C10109506000134352211234567"),
            ScannedCode::Item {
                code: "(01)09506000134352(21)1234567".into(),
                gtin: Some("09506000134352".into())
            }
        );
        assert_eq!(
            classify_text("]C100106141411234567897"),
            ScannedCode::Sscc {
                sscc: "106141411234567897".into()
            }
        );
        assert!(matches!(
            classify_text("]C10109506000134353211234567"),
            ScannedCode::Malformed { .. }
        ));
        assert_eq!(
            classify_text("86123456789012345678"),
            ScannedCode::Item {
                code: "86123456789012345678".into(),
                gtin: None
            }
        );
    }
}

//! Scanned codes as the hub's workflows see them: the firmware-shim's classification, turned
//! into owned values with a canonical form to store and compare.
//!
//! Parsing itself lives once, in `firmware_shim::codes`; this module only adapts it. The
//! site's own trace-code patterns (`[codes] patterns`, the shim's [`SitePattern`] syntax
//! `name:prefix:N|A|X:len[-max][:mod10|luhn|mod11]`) are validated once into [`SitePatterns`]
//! and handed to every classification.

use firmware_shim::codes::trace::{PatternError, SitePattern, TraceCode, classify};
use firmware_shim::wire::scanner::{AimId, Scan};
use std::sync::Arc;

/// Most site patterns a config may list (each scan is tested against all of them).
pub const MAX_SITE_PATTERNS: usize = 32;

/// Why a site pattern is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SitePatternError {
    /// The specification does not parse.
    #[error(
        "'{spec}' is not a pattern: {reason}; write name:prefix:N|A|X:len[-max][:mod10|luhn|mod11], e.g. \"sc-licence:SC:N:14\""
    )]
    Syntax { spec: String, reason: PatternError },
    /// Two patterns share a name (the name is what a match reports).
    #[error("the name '{name}' is used by an earlier pattern; names must be unique")]
    DuplicateName { name: String },
    /// More patterns than [`MAX_SITE_PATTERNS`].
    #[error("at most {MAX_SITE_PATTERNS} patterns")]
    TooMany,
}

/// The site's validated trace-code patterns, cheap to clone. Empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SitePatterns {
    specs: Arc<[String]>,
}

impl SitePatterns {
    /// Validates `specs`; every problem comes back with the index of its pattern.
    pub fn parse(specs: &[String]) -> Result<SitePatterns, Vec<(Option<usize>, SitePatternError)>> {
        let mut problems = Vec::new();
        if specs.len() > MAX_SITE_PATTERNS {
            problems.push((None, SitePatternError::TooMany));
        }
        let mut names: Vec<&str> = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            match SitePattern::parse(spec) {
                Ok(p) if names.contains(&p.name) => problems.push((
                    Some(i),
                    SitePatternError::DuplicateName {
                        name: p.name.to_owned(),
                    },
                )),
                Ok(p) => names.push(p.name),
                Err(reason) => problems.push((
                    Some(i),
                    SitePatternError::Syntax {
                        spec: spec.clone(),
                        reason,
                    },
                )),
            }
        }
        if problems.is_empty() {
            Ok(SitePatterns {
                specs: specs.iter().cloned().collect(),
            })
        } else {
            Err(problems)
        }
    }

    /// The patterns in config order, for `firmware_shim::codes::trace::classify`.
    pub fn patterns(&self) -> Vec<SitePattern<'_>> {
        // Every spec parsed when the value was built.
        self.specs
            .iter()
            .filter_map(|s| SitePattern::parse(s).ok())
            .collect()
    }

    /// The specifications as configured.
    pub fn specs(&self) -> &[String] {
        &self.specs
    }

    /// No site patterns.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }
}

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

/// Classifies scanner text (an AIM prefix such as `]C1` and GS separators may be present),
/// trying the site's `patterns` as the shim's classifier orders them.
pub fn classify_text(text: &str, patterns: &SitePatterns) -> ScannedCode {
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
    classify_scan(&scan, patterns)
}

/// Classifies a framed scan. A code matching a site pattern is an item code; a code with a
/// pattern's shape but a wrong check character is malformed, with the reason.
pub fn classify_scan(scan: &Scan<'_>, patterns: &SitePatterns) -> ScannedCode {
    let raw = String::from_utf8_lossy(scan.data).replace('\u{1d}', "<GS>");
    let mut scratch = [0u8; 512];
    let site = patterns.patterns();
    match classify(scan, &site, &mut scratch) {
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

    fn sites(specs: &[&str]) -> SitePatterns {
        let specs: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
        SitePatterns::parse(&specs).unwrap()
    }

    #[test]
    fn site_patterns_make_item_codes_and_flag_bad_check_characters() {
        let none = SitePatterns::default();
        let site = sites(&["licence:SC:N:14:mod10", "staff:EMP:A:4-8"]);
        // SC, 13 digits and their GS1 mod-10 check digit.
        let body = "1234567890123";
        let check = firmware_shim::codes::check::gs1_check_digit(body.as_bytes()).unwrap();
        let good = format!("SC{body}{check}");
        let bad = format!("SC{body}{}", (check + 1) % 10);
        assert_eq!(
            classify_text(&good, &site),
            ScannedCode::Item {
                code: good.clone(),
                gtin: None
            }
        );
        match classify_text(&bad, &site) {
            ScannedCode::Malformed { raw, reason } => {
                assert_eq!(raw, bad);
                assert!(reason.contains("pattern licence"), "{reason}");
                assert!(reason.contains(&format!("expected '{check}'")), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // Without the site's patterns the same text is an opaque item code, not an error.
        assert!(matches!(
            classify_text(&bad, &none),
            ScannedCode::Item { .. }
        ));
        assert!(matches!(
            classify_text("EMP7Q2X", &site),
            ScannedCode::Item { .. }
        ));
    }

    #[test]
    fn site_pattern_specs_are_validated_with_their_index() {
        let specs: Vec<String> = ["ok::N:4", "bad:P:Z:4", "ok::A:2-3", "len::N:9-3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let problems = SitePatterns::parse(&specs).unwrap_err();
        let at: Vec<Option<usize>> = problems.iter().map(|(i, _)| *i).collect();
        assert_eq!(at, [Some(1), Some(2), Some(3)]);
        assert!(
            problems[0]
                .1
                .to_string()
                .contains("charset must be N, A or X")
        );
        assert!(matches!(
            problems[1].1,
            SitePatternError::DuplicateName { .. }
        ));
    }

    #[test]
    fn gs1_items_ssccs_and_bad_check_digits() {
        assert_eq!(
            classify_text("]C10109506000134352211234567", &SitePatterns::default()),
            ScannedCode::Item {
                code: "(01)09506000134352(21)1234567".into(),
                gtin: Some("09506000134352".into())
            }
        );
        assert_eq!(
            classify_text("]C100106141411234567897", &SitePatterns::default()),
            ScannedCode::Sscc {
                sscc: "106141411234567897".into()
            }
        );
        assert!(matches!(
            classify_text("]C10109506000134353211234567", &SitePatterns::default()),
            ScannedCode::Malformed { .. }
        ));
        assert_eq!(
            classify_text("86123456789012345678", &SitePatterns::default()),
            ScannedCode::Item {
                code: "86123456789012345678".into(),
                gtin: None
            }
        );
    }
}

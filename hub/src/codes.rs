//! Scanned codes as the hub's workflows see them: the firmware-shim's classification, turned
//! into owned values with a canonical form to store and compare.
//!
//! Parsing itself lives once, in `firmware_shim::codes`; this module only adapts it. The
//! site's own trace-code patterns (`[codes] patterns`, the shim's [`SitePattern`] syntax
//! `name:prefix:N|A|X:len[-max][:mod10|luhn|mod11]`) are validated once into [`SitePatterns`]
//! and handed to every classification. Every GTIN leaves here as a [`Gtin`] (GTIN-14), the one
//! form the hub compares; a scan that is a trace code is told apart from a product scan
//! ([`CodeKind`]); a scan no rule recognises is [`ScannedCode::Unrecognised`], never an item.

use firmware_shim::codes::gs1;
use firmware_shim::codes::trace::{PatternError, SitePattern, TraceCode, classify};
use firmware_shim::wire::scanner::{AimId, Scan};
use hub_contract::devices::ParsedCode;
use hub_core::Gtin;
use hub_core::receiving::{CodeElement, CodeKind};
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

/// One site pattern, parsed once when the configuration is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ParsedPattern {
    name: String,
    prefix: String,
    charset: firmware_shim::codes::trace::Charset,
    min_len: u8,
    max_len: u8,
    check: firmware_shim::codes::trace::CheckKind,
}

/// The site's validated trace-code patterns, parsed once, cheap to clone. Empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SitePatterns {
    specs: Arc<[String]>,
    parsed: Arc<[ParsedPattern]>,
}

impl SitePatterns {
    /// Validates `specs`; every problem comes back with the index of its pattern.
    pub fn parse(specs: &[String]) -> Result<SitePatterns, Vec<(Option<usize>, SitePatternError)>> {
        let mut problems = Vec::new();
        if specs.len() > MAX_SITE_PATTERNS {
            problems.push((None, SitePatternError::TooMany));
        }
        let mut parsed: Vec<ParsedPattern> = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            match SitePattern::parse(spec) {
                Ok(p) if parsed.iter().any(|q| q.name == p.name) => problems.push((
                    Some(i),
                    SitePatternError::DuplicateName {
                        name: p.name.to_owned(),
                    },
                )),
                Ok(p) => parsed.push(ParsedPattern {
                    name: p.name.to_owned(),
                    prefix: p.prefix.to_owned(),
                    charset: p.charset,
                    min_len: p.min_len,
                    max_len: p.max_len,
                    check: p.check,
                }),
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
                parsed: parsed.into(),
            })
        } else {
            Err(problems)
        }
    }

    /// The patterns in config order, as views for `firmware_shim::codes::trace::classify`
    /// (parsed when the configuration was loaded, never per scan).
    pub fn patterns(&self) -> Vec<SitePattern<'_>> {
        self.parsed
            .iter()
            .map(|p| SitePattern {
                name: &p.name,
                prefix: &p.prefix,
                charset: p.charset,
                min_len: p.min_len,
                max_len: p.max_len,
                check: p.check,
            })
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
    /// A code about goods: a trace code naming one item (GS1 GTIN + serial, a CN drug code, an
    /// in-store scale label, a site pattern), or a product scan naming only the product (a
    /// bare EAN/UPC, GS1 data with a GTIN and no serial). `code` is the form stored and
    /// compared; `gtin` is normalised to GTIN-14; `elements` are the GS1 AIs read, if any.
    Item {
        code: String,
        kind: CodeKind,
        gtin: Option<Gtin>,
        elements: Vec<CodeElement>,
        /// Which rule recognised it.
        #[serde(flatten)]
        source: CodeSource,
    },
    /// A logistic unit (crate, pallet): SSCC-18.
    Sscc { sscc: String },
    /// Something that is not a valid code; `reason` says why.
    Malformed { raw: String, reason: String },
    /// Well formed, but no rule recognises it (and no site pattern names it a trace code).
    Unrecognised { raw: String, reason: String },
}

/// Which rule recognised an item code.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum CodeSource {
    /// GS1 data (scanned with a GS1 AIM identifier, or typed as `(01)…`).
    Gs1,
    /// A bare EAN/UPC/GTIN.
    Gtin,
    /// A Chinese 20-digit drug trace code.
    CnDrug,
    /// An in-store scale label.
    ScaleLabel,
    /// One of the site's `[codes] patterns`.
    Site { pattern: String },
}

/// Scanner text without its AIM identifier (what the journal shows as the code).
pub fn without_aim(text: &str) -> &str {
    match AimId::split(text.as_bytes()) {
        Some((_, data)) => std::str::from_utf8(data).unwrap_or(text),
        None => text,
    }
}

/// A scan as the device journal keeps it (`hub devices`): the classification's class, with
/// the key data pulled out, in the shape the contract documents.
pub fn journal_view(code: &ScannedCode, text: &str) -> ParsedCode {
    let mut view = ParsedCode {
        aim: AimId::split(text.as_bytes()).map(|(aim, _)| aim.to_string()),
        ..ParsedCode::default()
    };
    let class = match code {
        ScannedCode::Item {
            gtin,
            elements,
            source,
            ..
        } => {
            let element = |ai: &str| ScannedCode::element(elements, ai).map(str::to_owned);
            view.gtin = gtin.as_ref().map(|g| g.to_string());
            view.serial = element("21");
            view.lot = element("10");
            match source {
                CodeSource::Gs1 if view.serial.is_some() => "gs1_item",
                CodeSource::Gs1 => "gs1_other",
                CodeSource::Gtin => "gtin",
                CodeSource::CnDrug => "cn_drug",
                CodeSource::ScaleLabel => "scale_label",
                CodeSource::Site { pattern } => {
                    view.pattern = Some(pattern.clone());
                    "site"
                }
            }
        }
        ScannedCode::Sscc { sscc } => {
            view.sscc = Some(sscc.clone());
            "sscc"
        }
        ScannedCode::Malformed { reason, .. } => {
            view.error = Some(reason.clone());
            "invalid"
        }
        ScannedCode::Unrecognised { .. } => "opaque",
    };
    view.class = class.to_owned();
    view
}

impl ScannedCode {
    /// What it was classified as, for logs.
    pub fn class(&self) -> &'static str {
        match self {
            ScannedCode::Item {
                kind: CodeKind::TraceCode,
                ..
            } => "trace_code",
            ScannedCode::Item { .. } => "product",
            ScannedCode::Sscc { .. } => "sscc",
            ScannedCode::Malformed { .. } => "malformed",
            ScannedCode::Unrecognised { .. } => "unrecognised",
        }
    }

    /// Not a valid code (counted as a malformed frame of its scanner).
    pub fn is_malformed(&self) -> bool {
        matches!(self, ScannedCode::Malformed { .. })
    }

    /// The value of AI `ai` in an item code's GS1 elements.
    pub fn element<'s>(elements: &'s [CodeElement], ai: &str) -> Option<&'s str> {
        elements
            .iter()
            .find(|e| e.ai == ai)
            .map(|e| e.value.as_str())
    }
}

/// The expiry printed in a code (AI 17, `YYMMDD`; day `00` is the month's last day), with the
/// century chosen by GS1's sliding window around `today`'s year.
pub fn expiry_of(elements: &[CodeElement], today: chrono::NaiveDate) -> Option<chrono::NaiveDate> {
    use chrono::Datelike;
    let value = ScannedCode::element(elements, "17")?;
    let element = gs1::Element {
        entry: gs1::lookup("17")?,
        value,
    };
    let date = element.date(u16::try_from(today.year()).ok()?)?;
    let (year, month) = (i32::from(date.year), u32::from(date.month));
    if date.day == 0 {
        let (next_year, next_month) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        chrono::NaiveDate::from_ymd_opt(next_year, next_month, 1)?.pred_opt()
    } else {
        chrono::NaiveDate::from_ymd_opt(year, month, u32::from(date.day))
    }
}

/// What a clerk is told about a scan nothing recognises.
fn unrecognised_reason(raw: &str) -> String {
    format!(
        "'{raw}' is not a code the hub recognises (not GS1 data, a GTIN, a CN drug trace code or an in-store label); if the site's items carry such codes, describe them in [codes] patterns"
    )
}

fn elements_of(elements: &gs1::ElementString<'_>) -> Vec<CodeElement> {
    elements
        .iter()
        .map(|e| CodeElement {
            ai: e.ai().to_owned(),
            value: e.value.to_owned(),
        })
        .collect()
}

fn bracketed(elements: &gs1::ElementString<'_>, fallback: &str) -> String {
    let mut out = [0u8; 256];
    match elements.write_bracketed(&mut out) {
        Ok(n) => String::from_utf8_lossy(&out[..n]).into_owned(),
        Err(_) => fallback.to_owned(),
    }
}

/// An item code from GS1 data: GTIN + serial is a trace code, a GTIN alone a product scan.
fn from_elements(elements: &gs1::ElementString<'_>, raw: &str) -> ScannedCode {
    let gtin = match elements.gtin().map(Gtin::parse).transpose() {
        Ok(gtin) => gtin,
        Err(e) => {
            return ScannedCode::Malformed {
                raw: raw.to_owned(),
                reason: e.to_string(),
            };
        }
    };
    let (code, kind) = match (&gtin, elements.serial()) {
        (Some(gtin), Some(serial)) => (format!("(01){gtin}(21){serial}"), CodeKind::TraceCode),
        (Some(_), None) => (bracketed(elements, raw), CodeKind::Product),
        // GS1 data with another key (GIAI, GSRN…) names one thing, as before.
        (None, _) => (bracketed(elements, raw), CodeKind::TraceCode),
    };
    ScannedCode::Item {
        code,
        kind,
        gtin,
        elements: elements_of(elements),
        source: CodeSource::Gs1,
    }
}

/// Classifies scanner text (an AIM prefix such as `]C1` and GS separators may be present),
/// trying the site's `patterns` as the shim's classifier orders them. Text in GS1's
/// human-readable form, `(01)…(21)…`, as people type it, is read as GS1 data.
pub fn classify_text(text: &str, patterns: &SitePatterns) -> ScannedCode {
    let raw = text.trim_end_matches(['\r', '\n']);
    let bytes = raw.as_bytes();
    if bytes.first() == Some(&b'(')
        && let Ok(elements) = gs1::parse_bracketed(bytes)
    {
        return match elements.sscc() {
            Some(sscc) if elements.len() == 1 => ScannedCode::Sscc {
                sscc: sscc.to_owned(),
            },
            _ => from_elements(&elements, raw),
        };
    }
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

/// The form a scanned or typed code is stored and looked up in: an item code's canonical form
/// (GS1 as `(01)…(21)…`, a bare GTIN as its GTIN-14), otherwise the trimmed text.
pub fn stored_form(text: &str, patterns: &SitePatterns) -> String {
    match classify_text(text.trim(), patterns) {
        ScannedCode::Item { code, .. } => code,
        _ => text.trim().to_owned(),
    }
}

/// Classifies a framed scan. A code matching a site pattern is an item code; a code with a
/// pattern's shape but a wrong check character is malformed, with the reason; a code no rule
/// recognises is unrecognised, with what would make it a trace code.
pub fn classify_scan(scan: &Scan<'_>, patterns: &SitePatterns) -> ScannedCode {
    let raw = String::from_utf8_lossy(scan.data).replace('\u{1d}', "<GS>");
    let mut scratch = [0u8; 512];
    let site = patterns.patterns();
    let trace_code = |code: String, source: CodeSource| ScannedCode::Item {
        code,
        kind: CodeKind::TraceCode,
        gtin: None,
        elements: vec![],
        source,
    };
    match classify(scan, &site, &mut scratch) {
        Ok(TraceCode::Gs1Item { elements, .. }) | Ok(TraceCode::Gs1Other { elements }) => {
            from_elements(&elements, &raw)
        }
        Ok(TraceCode::Sscc { sscc, .. }) => ScannedCode::Sscc {
            sscc: sscc.to_owned(),
        },
        Ok(TraceCode::Gtin { digits }) => match Gtin::parse(digits) {
            Ok(gtin) => ScannedCode::Item {
                code: gtin.to_string(),
                kind: CodeKind::Product,
                gtin: Some(gtin),
                elements: vec![],
                source: CodeSource::Gtin,
            },
            Err(e) => ScannedCode::Malformed {
                raw,
                reason: e.to_string(),
            },
        },
        Ok(TraceCode::CnDrug(_)) => trace_code(raw, CodeSource::CnDrug),
        Ok(TraceCode::ScaleLabel { .. }) => trace_code(raw, CodeSource::ScaleLabel),
        Ok(TraceCode::Site { name, .. }) => trace_code(
            raw,
            CodeSource::Site {
                pattern: name.to_owned(),
            },
        ),
        Ok(TraceCode::Opaque { .. }) => ScannedCode::Unrecognised {
            reason: unrecognised_reason(&raw),
            raw,
        },
        Err(e) => ScannedCode::Malformed {
            raw,
            reason: e.to_string(),
        },
    }
}

/// A scan as a scanner delivered it, classified once: what the device adapters hand to the
/// workflows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// The data without framing or prefix/suffix, with its AIM identifier in front when the
    /// scanner sent one (GS kept as 0x1D): what a person would have typed.
    pub text: String,
    /// What it is, classified once.
    pub code: ScannedCode,
    /// The frame as received, escaped.
    pub raw: String,
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
                kind: CodeKind::TraceCode,
                gtin: None,
                elements: vec![],
                source: CodeSource::Site {
                    pattern: "licence".into()
                },
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
        // Without the site's patterns no rule recognises the same text: not an item code.
        match classify_text(&bad, &none) {
            ScannedCode::Unrecognised { raw, reason } => {
                assert_eq!(raw, bad);
                assert!(reason.contains("[codes] patterns"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
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
        let gtin = |g: &str| Some(Gtin::parse(g).unwrap());
        let element = |ai: &str, value: &str| CodeElement {
            ai: ai.into(),
            value: value.into(),
        };
        assert_eq!(
            classify_text("]C10109506000134352211234567", &SitePatterns::default()),
            ScannedCode::Item {
                code: "(01)09506000134352(21)1234567".into(),
                kind: CodeKind::TraceCode,
                gtin: gtin("09506000134352"),
                elements: vec![element("01", "09506000134352"), element("21", "1234567")],
                source: CodeSource::Gs1,
            }
        );
        // The same item typed in GS1's human-readable form.
        assert_eq!(
            classify_text("(01)09506000134352(21)1234567", &SitePatterns::default()),
            classify_text("]C10109506000134352211234567", &SitePatterns::default())
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
                kind: CodeKind::TraceCode,
                gtin: None,
                elements: vec![],
                source: CodeSource::CnDrug,
            }
        );
    }

    #[test]
    fn bare_gtins_and_gs1_data_without_a_serial_are_product_scans_with_gtin_14() {
        let none = SitePatterns::default();
        let ean13 = classify_text("]E06901234567892", &none);
        assert_eq!(
            ean13,
            ScannedCode::Item {
                code: "06901234567892".into(),
                kind: CodeKind::Product,
                gtin: Some(Gtin::parse("06901234567892").unwrap()),
                elements: vec![],
                source: CodeSource::Gtin,
            }
        );
        assert_eq!(classify_text("6901234567892", &none), ean13);
        match classify_text("]C10106901234567892\u{1d}10LOT-9", &none) {
            ScannedCode::Item {
                code, kind, gtin, ..
            } => {
                assert_eq!(code, "(01)06901234567892(10)LOT-9");
                assert_eq!(kind, CodeKind::Product);
                assert_eq!(gtin.unwrap().as_str(), "06901234567892");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_expiry_in_a_code_is_a_date_with_its_century_and_month_end() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 18).unwrap();
        let with = |value: &str| {
            vec![CodeElement {
                ai: "17".into(),
                value: value.into(),
            }]
        };
        assert_eq!(expiry_of(&with("261220"), today), "2026-12-20".parse().ok());
        assert_eq!(expiry_of(&with("270200"), today), "2027-02-28".parse().ok());
        assert_eq!(expiry_of(&with("281200"), today), "2028-12-31".parse().ok());
        assert_eq!(expiry_of(&[], today), None);
    }
}

//! Receiving a delivery: the manifest central sent, and the decision per line.
//!
//! A line's decision combines what staff and devices observed — the count of scanned items
//! (or a counted quantity), the stable weight, the model's verdict on the photo, the
//! suspicious codes and the expiry — into accepted / partially accepted / rejected / held,
//! with every reason. Accepted quantity becomes receipt movements; rejected quantity goes back
//! to the supplier; held quantity is quarantined until a person releases it. Pure: the caller
//! passes the observations and today's date.
//!
//! What a scan counts for ([`check_scan_for_line`]): a *trace code* (GS1 GTIN + serial, a CN
//! drug code, a site pattern) names one item and is bound once; a *product scan* (a bare
//! EAN/UPC, or GS1 data with a GTIN but no serial) names only the product, so it is never bound,
//! never "already bound", and counts one item on a line that has no issued trace-code list (a
//! line with such a list wants those codes instead). Lot (AI 10) and expiry (AI 17) printed in
//! either kind are checked against the line. The weight is judged on the manifest's figures
//! (expected weight and tolerance), never scaled by a scanned count; a by-weight line
//! ([`StockUnit::Gram`]) is received by its weight.

use crate::domain::{Gtin, SkuCode, StockUnit};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// One expected line of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestLine {
    pub line_no: u32,
    pub sku: SkuCode,
    pub lot: String,
    #[serde(default)]
    pub production_date: Option<NaiveDate>,
    #[serde(default)]
    pub expiry: Option<NaiveDate>,
    /// Expected number of units (pieces, or grams for by-weight SKUs), if counted.
    #[serde(default)]
    pub expected_count: Option<i64>,
    /// Expected net weight in grams, if weighed.
    #[serde(default)]
    pub expected_weight_g: Option<i64>,
    /// Allowed deviation from the expected weight, in grams.
    #[serde(default)]
    pub weight_tolerance_g: i64,
    /// Trace codes issued for this batch; empty when central does not send them.
    #[serde(default)]
    pub trace_codes: Vec<String>,
    /// SSCC or label barcode on this line's crate, if any.
    #[serde(default)]
    pub crate_label: Option<String>,
}

impl ManifestLine {
    /// A line with only its SKU and lot known (goods not in the manifest, released stock).
    pub fn unexpected(line_no: u32, sku: SkuCode, lot: &str) -> ManifestLine {
        ManifestLine {
            line_no,
            sku,
            lot: lot.to_owned(),
            production_date: None,
            expiry: None,
            expected_count: None,
            expected_weight_g: None,
            weight_tolerance_g: 0,
            trace_codes: vec![],
            crate_label: None,
        }
    }
}

/// A delivery manifest as central sends it; later versions amend or cancel it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub delivery_id: String,
    pub supplier: String,
    #[serde(default)]
    pub expected_at: Option<String>,
    pub lines: Vec<ManifestLine>,
    #[serde(default)]
    pub cancelled: bool,
    pub version: i64,
}

/// The model's verdict on the line's photo, as the vision check reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhotoVerdict {
    Pass,
    /// The model says wrong product or bad condition, and the SKU allows the model to reject.
    Fail,
    /// Uncertain, or a failure the model alone may not act on.
    NeedsReview,
}

/// One label the model saw, with its probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelScore {
    pub class_id: u32,
    pub label: String,
    pub probability: f32,
}

/// What a photo check leaves behind for disputes: the photo, the model, the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoEvidence {
    pub photo_sha256: String,
    /// Where the photo is kept on the hub (None when it could not be stored, e.g. disk full).
    pub photo_path: Option<String>,
    pub model_name: String,
    pub model_sha256: String,
    /// `onnxruntime` or `tract`.
    pub backend: String,
    pub top_k: Vec<LabelScore>,
    /// Thresholds the verdict used.
    pub expected_labels: Vec<String>,
    pub min_probability: f32,
    pub verdict: PhotoVerdict,
    pub reasons: Vec<String>,
    pub duration_ms: f64,
}

/// Why a scanned code was not taken: it holds the line for a person to look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum CodeFlag {
    /// Bound before (to this or another batch): possible counterfeit or double scan.
    AlreadyBound { batch: String },
    /// Not in the list central issued for this batch.
    NotIssuedForBatch,
    /// The code's GTIN is not one of the line's SKU.
    GtinMismatch { gtin: String },
    /// Not a valid code at all (a check digit, a GS1 syntax error…).
    Malformed { detail: String },
    /// Well formed, but no rule recognises it as a trace code or product code.
    Unrecognised { detail: String },
    /// The lot printed in the code (AI 10) is not the line's lot.
    LotMismatch { code_lot: String, line_lot: String },
    /// The expiry printed in the code (AI 17) has passed.
    Expired { expiry: NaiveDate, days_left: i64 },
    /// The expiry printed in the code (AI 17) is closer than the site accepts.
    ExpiryTooClose {
        expiry: NaiveDate,
        days_left: i64,
        minimum: i64,
    },
    /// The expiry printed in the code (AI 17) is not the line's expiry.
    ExpiryMismatch {
        code_expiry: NaiveDate,
        line_expiry: NaiveDate,
    },
}

impl CodeFlag {
    /// Stable name (the `reason` field of its JSON form).
    pub fn code(&self) -> &'static str {
        match self {
            CodeFlag::AlreadyBound { .. } => "already_bound",
            CodeFlag::NotIssuedForBatch => "not_issued_for_batch",
            CodeFlag::GtinMismatch { .. } => "gtin_mismatch",
            CodeFlag::Malformed { .. } => "malformed",
            CodeFlag::Unrecognised { .. } => "unrecognised",
            CodeFlag::LotMismatch { .. } => "lot_mismatch",
            CodeFlag::Expired { .. } => "expired",
            CodeFlag::ExpiryTooClose { .. } => "expiry_too_close",
            CodeFlag::ExpiryMismatch { .. } => "expiry_mismatch",
        }
    }

    /// What the clerk is told.
    pub fn describe(&self) -> String {
        match self {
            CodeFlag::AlreadyBound { batch } => {
                format!("already bound to batch {batch}: a second scan or a copied code")
            }
            CodeFlag::NotIssuedForBatch => {
                "not in the trace codes central issued for this batch".into()
            }
            CodeFlag::GtinMismatch { gtin } => {
                format!("GTIN {gtin} is not one of this SKU's GTINs: another product?")
            }
            CodeFlag::Malformed { detail } => format!("not a valid code: {detail}"),
            CodeFlag::Unrecognised { detail } => detail.clone(),
            CodeFlag::LotMismatch { code_lot, line_lot } => {
                format!("the code says lot {code_lot}, the delivery line lot {line_lot}")
            }
            CodeFlag::Expired { expiry, days_left } => {
                format!(
                    "the code says it expired on {expiry} ({} day(s) ago)",
                    -days_left
                )
            }
            CodeFlag::ExpiryTooClose {
                expiry,
                days_left,
                minimum,
            } => format!(
                "the code says it expires on {expiry}, in {days_left} day(s); the site accepts {minimum} at least"
            ),
            CodeFlag::ExpiryMismatch {
                code_expiry,
                line_expiry,
            } => format!(
                "the code says it expires on {code_expiry}, the delivery line on {line_expiry}"
            ),
        }
    }
}

/// Whether a scanned code names one item or only its product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeKind {
    /// Unique to one item (GS1 GTIN + serial, CN drug code, a site pattern): bound once.
    TraceCode,
    /// The product only (a bare EAN/UPC, GS1 data without a serial): counted, never bound.
    Product,
}

/// One GS1 element (Application Identifier and value) read from a scanned code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeElement {
    pub ai: String,
    pub value: String,
}

/// What a scan says about an item, as receiving checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemScan<'a> {
    /// The code in its stored form.
    pub code: &'a str,
    pub kind: CodeKind,
    /// The GTIN in the code, if any.
    pub gtin: Option<&'a Gtin>,
    /// The lot printed in the code (AI 10), if any.
    pub lot: Option<&'a str>,
    /// The expiry printed in the code (AI 17), if any.
    pub expiry: Option<NaiveDate>,
}

/// What to do with a scanned item code on a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanVerdict {
    /// A trace code: bind it to the line's batch.
    Bind,
    /// A product scan on a line without an issued trace-code list: count one item.
    CountProduct,
    /// Record the flag on the line (which holds it for review).
    Flag(CodeFlag),
    /// A product scan on a line whose items carry issued trace codes: nothing is recorded;
    /// the clerk must scan the item's trace code.
    WantsTraceCode,
}

/// Everything observed about one line before deciding.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LineObservation {
    /// Units counted: a count entered by staff, or the line's scans (trace codes bound plus
    /// product scans). For a by-weight line only a staff-entered quantity (grams) counts.
    pub counted: Option<i64>,
    /// Stable net weight in grams from the scale.
    pub weight_g: Option<i64>,
    pub photo: Option<PhotoVerdict>,
    /// Codes that were flagged instead of bound.
    pub flagged_codes: Vec<CodeFlag>,
}

/// Site rules for receiving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivingPolicy {
    /// Minimum days between today and expiry for goods to be accepted.
    pub min_days_to_expiry: i64,
    /// Whether a line may be decided without a photo check.
    pub photo_required: bool,
}

impl Default for ReceivingPolicy {
    fn default() -> Self {
        ReceivingPolicy {
            min_days_to_expiry: 2,
            photo_required: true,
        }
    }
}

/// A reason that went into a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Reason {
    CountShort {
        expected: i64,
        counted: i64,
    },
    CountOver {
        expected: i64,
        counted: i64,
    },
    NotCounted,
    /// The weight matches the manifest's quantity but the count does not: a missed or doubled
    /// scan, or goods that are not what the manifest says. A person looks before stock moves.
    CountDisagreesWithWeight {
        expected: i64,
        counted: i64,
    },
    WeightOutOfTolerance {
        expected_g: i64,
        measured_g: i64,
        tolerance_g: i64,
    },
    NoStableWeight,
    ModelFail,
    ModelUncertain,
    NoPhotoCheck,
    SuspiciousCodes {
        count: usize,
    },
    ExpiryTooClose {
        days_left: i64,
        minimum: i64,
    },
    Expired {
        days_left: i64,
    },
    NotInManifest,
    /// A clerk held the line for a supervisor's review, with a reason from the list.
    HeldByStaff {
        reason: HoldReason,
    },
}

/// Why a clerk holds a line for review though the hub's checks would accept it; picked from
/// a list on the bench screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldReason {
    DamagedPackaging,
    WrongTemperature,
    QualityDoubt,
    LabelUnreadable,
}

impl HoldReason {
    /// Every reason, in the order a screen lists them.
    pub const ALL: [HoldReason; 4] = [
        HoldReason::DamagedPackaging,
        HoldReason::WrongTemperature,
        HoldReason::QualityDoubt,
        HoldReason::LabelUnreadable,
    ];

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldReason::DamagedPackaging => "damaged_packaging",
            HoldReason::WrongTemperature => "wrong_temperature",
            HoldReason::QualityDoubt => "quality_doubt",
            HoldReason::LabelUnreadable => "label_unreadable",
        }
    }

    /// Reads the name written by [`HoldReason::as_str`].
    pub fn parse(text: &str) -> Option<HoldReason> {
        HoldReason::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// A clerk's hold over the hub's decision: what the checks reject stays rejected (a hold never
/// lets goods in), and everything they would accept is held for a supervisor instead.
pub fn hold_for_review(decision: LineDecision, reason: HoldReason) -> LineDecision {
    let held = decision.held + decision.accepted;
    let mut reasons = decision.reasons;
    reasons.push(Reason::HeldByStaff { reason });
    LineDecision {
        outcome: if held > 0 {
            Outcome::Held
        } else {
            decision.outcome
        },
        accepted: 0,
        rejected: decision.rejected,
        held,
        reasons,
    }
}

/// The outcome of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Accepted,
    PartiallyAccepted,
    Rejected,
    Held,
}

impl Outcome {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::PartiallyAccepted => "partially_accepted",
            Outcome::Rejected => "rejected",
            Outcome::Held => "held",
        }
    }
}

/// A line's decision with the quantities it sends to stock, back to the supplier and to
/// quarantine. `accepted + rejected + held` equals what arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineDecision {
    pub outcome: Outcome,
    pub accepted: i64,
    pub rejected: i64,
    pub held: i64,
    pub reasons: Vec<Reason>,
}

/// Decides one manifest line of an SKU counted in `unit`.
///
/// The weight is judged on the manifest's figures: the measured weight against the line's
/// expected weight and tolerance, never scaled by a count (scans can be missed or doubled). A
/// count that differs from the manifest while the weight matches it holds the line. A
/// by-weight line ([`StockUnit::Gram`]) arrives as its measured weight (or the grams staff
/// entered): within tolerance of the expected weight it is accepted as weighed.
pub fn decide_line(
    line: &ManifestLine,
    unit: StockUnit,
    seen: &LineObservation,
    policy: &ReceivingPolicy,
    today: NaiveDate,
) -> LineDecision {
    let by_weight = unit == StockUnit::Gram;
    let expected_weight_g = if by_weight {
        line.expected_weight_g.or(line.expected_count)
    } else {
        line.expected_weight_g
    };
    let arrived = if by_weight {
        seen.counted.or(seen.weight_g).or(expected_weight_g)
    } else {
        seen.counted.or(line.expected_count)
    }
    .unwrap_or(0)
    .max(0);
    let mut reasons = Vec::new();
    let reject_all = |reasons: Vec<Reason>| LineDecision {
        outcome: Outcome::Rejected,
        accepted: 0,
        rejected: arrived,
        held: 0,
        reasons,
    };

    // Hard rejections first: out-of-date goods and a model that may reject.
    if let Some(expiry) = line.expiry {
        let days_left = (expiry - today).num_days();
        if days_left < 0 {
            return reject_all(vec![Reason::Expired { days_left }]);
        }
        if days_left < policy.min_days_to_expiry {
            return reject_all(vec![Reason::ExpiryTooClose {
                days_left,
                minimum: policy.min_days_to_expiry,
            }]);
        }
    }
    if seen.photo == Some(PhotoVerdict::Fail) {
        return reject_all(vec![Reason::ModelFail]);
    }

    // Reasons to hold everything for a person.
    let mut hold = false;
    match seen.photo {
        Some(PhotoVerdict::NeedsReview) => {
            reasons.push(Reason::ModelUncertain);
            hold = true;
        }
        None if policy.photo_required => {
            reasons.push(Reason::NoPhotoCheck);
            hold = true;
        }
        _ => {}
    }
    if !seen.flagged_codes.is_empty() {
        reasons.push(Reason::SuspiciousCodes {
            count: seen.flagged_codes.len(),
        });
        hold = true;
    }
    let mut weight_matches = false;
    if let Some(expected_g) = expected_weight_g {
        match seen.weight_g {
            Some(measured_g) if (measured_g - expected_g).abs() > line.weight_tolerance_g => {
                reasons.push(Reason::WeightOutOfTolerance {
                    expected_g,
                    measured_g,
                    tolerance_g: line.weight_tolerance_g,
                });
                hold = true;
            }
            Some(_) => weight_matches = true,
            None => {
                reasons.push(Reason::NoStableWeight);
                hold = true;
            }
        }
    }

    let (mut accepted, mut rejected) = (arrived, 0);
    let mut count_in_doubt = false;
    if !by_weight {
        if seen.counted.is_none() && line.expected_count.is_some() {
            reasons.push(Reason::NotCounted);
            hold = true;
        }
        // Count against the manifest: short is accepted as counted; surplus goes back. When
        // the weight says the manifest's quantity is there, the count itself is in doubt.
        let expected = line.expected_count.unwrap_or(arrived);
        if let Some(counted) = seen.counted {
            if counted != expected && weight_matches && line.expected_count.is_some() {
                reasons.push(Reason::CountDisagreesWithWeight { expected, counted });
                hold = true;
                count_in_doubt = true;
            } else if counted < expected {
                reasons.push(Reason::CountShort { expected, counted });
            } else if counted > expected {
                reasons.push(Reason::CountOver { expected, counted });
                accepted = expected;
                rejected = counted - expected;
            }
        }
    }
    if hold {
        if count_in_doubt {
            (accepted, rejected) = (arrived, 0);
        }
        return LineDecision {
            outcome: Outcome::Held,
            accepted: 0,
            rejected,
            held: accepted,
            reasons,
        };
    }
    let outcome = if reasons.is_empty() {
        Outcome::Accepted
    } else {
        Outcome::PartiallyAccepted
    };
    LineDecision {
        outcome,
        accepted,
        rejected,
        held: 0,
        reasons,
    }
}

/// A line that arrived but is not in the manifest: everything is held for review.
pub fn decide_unexpected(counted: i64) -> LineDecision {
    LineDecision {
        outcome: Outcome::Held,
        accepted: 0,
        rejected: 0,
        held: counted.max(0),
        reasons: vec![Reason::NotInManifest],
    }
}

/// Checks a scanned item code against a line: bind it, count it, flag it, or ask for the
/// trace code. `sku_gtins` are the line SKU's GTINs; `bound_to` is the batch a trace code is
/// already bound to, if any; `today` is the site's day.
///
/// Order: a trace code bound before; a GTIN that is not the SKU's; a trace code outside the
/// issued list; the printed lot, then the printed expiry (past, too close, not the line's);
/// then a product scan on a line that wants its issued trace codes.
pub fn check_scan_for_line(
    line: &ManifestLine,
    sku_gtins: &[Gtin],
    scan: &ItemScan<'_>,
    bound_to: Option<&str>,
    policy: &ReceivingPolicy,
    today: NaiveDate,
) -> ScanVerdict {
    let trace_code = scan.kind == CodeKind::TraceCode;
    if let (true, Some(batch)) = (trace_code, bound_to) {
        return ScanVerdict::Flag(CodeFlag::AlreadyBound {
            batch: batch.to_owned(),
        });
    }
    if let Some(gtin) = scan.gtin
        && !sku_gtins.is_empty()
        && !sku_gtins.contains(gtin)
    {
        return ScanVerdict::Flag(CodeFlag::GtinMismatch {
            gtin: gtin.to_string(),
        });
    }
    if trace_code
        && !line.trace_codes.is_empty()
        && !line.trace_codes.iter().any(|c| c == scan.code)
    {
        return ScanVerdict::Flag(CodeFlag::NotIssuedForBatch);
    }
    if let Some(code_lot) = scan.lot
        && code_lot.trim() != line.lot.trim()
    {
        return ScanVerdict::Flag(CodeFlag::LotMismatch {
            code_lot: code_lot.to_owned(),
            line_lot: line.lot.clone(),
        });
    }
    if let Some(expiry) = scan.expiry {
        let days_left = (expiry - today).num_days();
        if days_left < 0 {
            return ScanVerdict::Flag(CodeFlag::Expired { expiry, days_left });
        }
        if days_left < policy.min_days_to_expiry {
            return ScanVerdict::Flag(CodeFlag::ExpiryTooClose {
                expiry,
                days_left,
                minimum: policy.min_days_to_expiry,
            });
        }
        if let Some(line_expiry) = line.expiry
            && line_expiry != expiry
        {
            return ScanVerdict::Flag(CodeFlag::ExpiryMismatch {
                code_expiry: expiry,
                line_expiry,
            });
        }
    }
    match scan.kind {
        CodeKind::TraceCode => ScanVerdict::Bind,
        CodeKind::Product if line.trace_codes.is_empty() => ScanVerdict::CountProduct,
        CodeKind::Product => ScanVerdict::WantsTraceCode,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clerks_hold_holds_what_would_be_accepted_and_never_lets_rejected_goods_in() {
        let decision = |outcome, accepted, rejected, held| LineDecision {
            outcome,
            accepted,
            rejected,
            held,
            reasons: vec![],
        };
        let held = hold_for_review(
            decision(Outcome::Accepted, 10, 0, 0),
            HoldReason::DamagedPackaging,
        );
        assert_eq!(
            (held.outcome, held.accepted, held.held),
            (Outcome::Held, 0, 10)
        );
        assert_eq!(
            held.reasons,
            vec![Reason::HeldByStaff {
                reason: HoldReason::DamagedPackaging
            }]
        );
        let partly = hold_for_review(
            decision(Outcome::PartiallyAccepted, 8, 0, 2),
            HoldReason::QualityDoubt,
        );
        assert_eq!((partly.accepted, partly.held, partly.rejected), (0, 10, 0));
        let rejected = hold_for_review(
            decision(Outcome::Rejected, 0, 6, 0),
            HoldReason::WrongTemperature,
        );
        assert_eq!(
            (rejected.outcome, rejected.rejected, rejected.held),
            (Outcome::Rejected, 6, 0)
        );
        for r in HoldReason::ALL {
            assert_eq!(HoldReason::parse(r.as_str()), Some(r));
        }
    }
    use proptest::prelude::*;

    fn line() -> ManifestLine {
        ManifestLine {
            line_no: 1,
            sku: SkuCode::new("ORANGE").unwrap(),
            lot: "L1".into(),
            production_date: None,
            expiry: NaiveDate::from_ymd_opt(2026, 12, 10),
            expected_count: Some(10),
            expected_weight_g: Some(50_000),
            weight_tolerance_g: 500,
            trace_codes: vec![],
            crate_label: None,
        }
    }

    fn good() -> LineObservation {
        LineObservation {
            counted: Some(10),
            weight_g: Some(50_200),
            photo: Some(PhotoVerdict::Pass),
            flagged_codes: vec![],
        }
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
    }

    fn decide(seen: LineObservation) -> LineDecision {
        decide_line(
            &line(),
            StockUnit::Piece,
            &seen,
            &ReceivingPolicy::default(),
            today(),
        )
    }

    #[test]
    fn decision_table() {
        let d = decide(good());
        assert_eq!(
            (d.outcome, d.accepted, d.rejected, d.held),
            (Outcome::Accepted, 10, 0, 0)
        );

        // Short by count and by weight: the weight is judged against the manifest's 50 kg,
        // not scaled down to the 8 counted, so a person looks at it.
        let d = decide(LineObservation {
            counted: Some(8),
            weight_g: Some(39_900),
            ..good()
        });
        assert_eq!((d.outcome, d.held, d.accepted), (Outcome::Held, 8, 0));
        assert_eq!(
            d.reasons,
            vec![
                Reason::WeightOutOfTolerance {
                    expected_g: 50_000,
                    measured_g: 39_900,
                    tolerance_g: 500
                },
                Reason::CountShort {
                    expected: 10,
                    counted: 8
                }
            ]
        );

        let d = decide(LineObservation {
            counted: Some(8),
            weight_g: Some(50_000),
            ..good()
        });
        assert_eq!(
            (d.outcome, d.held, d.rejected),
            (Outcome::Held, 8, 0),
            "8 units weighing as much as 10 is suspicious"
        );
        assert_eq!(
            d.reasons,
            vec![Reason::CountDisagreesWithWeight {
                expected: 10,
                counted: 8
            }]
        );

        // Two scans too many, the weight says ten: a doubled scan, not two extra boxes to
        // send back.
        let d = decide(LineObservation {
            counted: Some(12),
            weight_g: Some(50_100),
            ..good()
        });
        assert_eq!(
            (d.outcome, d.held, d.rejected),
            (Outcome::Held, 12, 0),
            "{:?}",
            d.reasons
        );

        // Twelve counted and twelve weighed: the surplus goes back, and the weight (against
        // the manifest's ten) holds the rest for a person.
        let d = decide(LineObservation {
            counted: Some(12),
            weight_g: Some(60_100),
            ..good()
        });
        assert_eq!(
            (d.outcome, d.held, d.rejected),
            (Outcome::Held, 10, 2),
            "{:?}",
            d.reasons
        );

        // Without an expected weight a short count is accepted as counted, a surplus returned.
        let unweighed = ManifestLine {
            expected_weight_g: None,
            ..line()
        };
        let d = decide_line(
            &unweighed,
            StockUnit::Piece,
            &LineObservation {
                counted: Some(8),
                weight_g: None,
                ..good()
            },
            &ReceivingPolicy::default(),
            today(),
        );
        assert_eq!((d.outcome, d.accepted), (Outcome::PartiallyAccepted, 8));
        let d = decide_line(
            &unweighed,
            StockUnit::Piece,
            &LineObservation {
                counted: Some(12),
                ..good()
            },
            &ReceivingPolicy::default(),
            today(),
        );
        assert_eq!(
            (d.outcome, d.accepted, d.rejected),
            (Outcome::PartiallyAccepted, 10, 2)
        );

        let d = decide(LineObservation {
            photo: Some(PhotoVerdict::Fail),
            ..good()
        });
        assert_eq!((d.outcome, d.rejected), (Outcome::Rejected, 10));

        let d = decide(LineObservation {
            photo: Some(PhotoVerdict::NeedsReview),
            ..good()
        });
        assert_eq!((d.outcome, d.held, d.accepted), (Outcome::Held, 10, 0));
        assert_eq!(d.reasons, vec![Reason::ModelUncertain]);

        let d = decide(LineObservation {
            weight_g: Some(48_000),
            ..good()
        });
        assert_eq!(d.outcome, Outcome::Held);
        assert!(matches!(
            d.reasons[0],
            Reason::WeightOutOfTolerance {
                measured_g: 48_000,
                ..
            }
        ));

        let d = decide(LineObservation {
            flagged_codes: vec![CodeFlag::NotIssuedForBatch],
            ..good()
        });
        assert_eq!((d.outcome, d.held), (Outcome::Held, 10));

        let d = decide(LineObservation {
            photo: None,
            ..good()
        });
        assert_eq!(d.reasons, vec![Reason::NoPhotoCheck]);
    }

    #[test]
    fn a_by_weight_line_is_received_by_its_weight() {
        // 25 kg of cabbage expected (the manifest states grams as its count too), 500 g
        // tolerance.
        let cabbage = ManifestLine {
            expected_count: Some(25_000),
            expected_weight_g: Some(25_000),
            ..line()
        };
        let weighed = |grams: i64| LineObservation {
            counted: None,
            weight_g: Some(grams),
            photo: Some(PhotoVerdict::Pass),
            flagged_codes: vec![],
        };
        let decide = |l: &ManifestLine, seen: LineObservation| {
            decide_line(
                l,
                StockUnit::Gram,
                &seen,
                &ReceivingPolicy::default(),
                today(),
            )
        };
        let d = decide(&cabbage, weighed(25_100));
        assert_eq!(
            (d.outcome, d.accepted, d.rejected, d.held),
            (Outcome::Accepted, 25_100, 0, 0),
            "{:?}",
            d.reasons
        );
        let d = decide(&cabbage, weighed(24_600));
        assert_eq!((d.outcome, d.accepted), (Outcome::Accepted, 24_600));
        let d = decide(&cabbage, weighed(26_000));
        assert_eq!((d.outcome, d.held, d.rejected), (Outcome::Held, 26_000, 0));
        assert!(matches!(
            d.reasons[..],
            [Reason::WeightOutOfTolerance {
                expected_g: 25_000,
                measured_g: 26_000,
                ..
            }]
        ));
        // Only an expected weight, or only an expected count in grams: the same rule.
        for l in [
            ManifestLine {
                expected_count: None,
                ..cabbage.clone()
            },
            ManifestLine {
                expected_weight_g: None,
                ..cabbage.clone()
            },
        ] {
            let d = decide(&l, weighed(25_100));
            assert_eq!(
                (d.outcome, d.accepted),
                (Outcome::Accepted, 25_100),
                "{l:?}"
            );
        }
        let d = decide(
            &cabbage,
            LineObservation {
                weight_g: None,
                ..weighed(0)
            },
        );
        assert_eq!(d.outcome, Outcome::Held);
        assert_eq!(d.reasons, vec![Reason::NoStableWeight]);
    }

    #[test]
    fn expiry_rules() {
        let mut l = line();
        l.expiry = NaiveDate::from_ymd_opt(2026, 11, 25);
        let d = decide_line(
            &l,
            StockUnit::Piece,
            &good(),
            &ReceivingPolicy::default(),
            today(),
        );
        assert_eq!(d.outcome, Outcome::Rejected);
        assert_eq!(
            d.reasons,
            vec![Reason::ExpiryTooClose {
                days_left: 1,
                minimum: 2
            }]
        );
        l.expiry = NaiveDate::from_ymd_opt(2026, 11, 20);
        let d = decide_line(
            &l,
            StockUnit::Piece,
            &good(),
            &ReceivingPolicy::default(),
            today(),
        );
        assert_eq!(d.reasons, vec![Reason::Expired { days_left: -4 }]);
    }

    fn gtin(text: &str) -> Gtin {
        Gtin::parse(text).unwrap()
    }

    fn check(l: &ManifestLine, scan: ItemScan<'_>, bound_to: Option<&str>) -> ScanVerdict {
        let gtins = vec![gtin("06901234567892")];
        check_scan_for_line(
            l,
            &gtins,
            &scan,
            bound_to,
            &ReceivingPolicy::default(),
            today(),
        )
    }

    fn trace(code: &str) -> ItemScan<'_> {
        ItemScan {
            code,
            kind: CodeKind::TraceCode,
            gtin: None,
            lot: None,
            expiry: None,
        }
    }

    #[test]
    fn code_checks() {
        let mut l = line();
        let milk = gtin("06901234567892");
        let other = gtin("09506000134352");
        assert_eq!(
            check(
                &l,
                ItemScan {
                    gtin: Some(&milk),
                    ..trace("C1")
                },
                None
            ),
            ScanVerdict::Bind
        );
        // The EAN-13 of the same product is the same GTIN.
        let ean13 = gtin("6901234567892");
        assert_eq!(
            check(
                &l,
                ItemScan {
                    gtin: Some(&ean13),
                    ..trace("C1")
                },
                None
            ),
            ScanVerdict::Bind
        );
        assert_eq!(
            check(
                &l,
                ItemScan {
                    gtin: Some(&other),
                    ..trace("C1")
                },
                None
            ),
            ScanVerdict::Flag(CodeFlag::GtinMismatch {
                gtin: "09506000134352".into()
            })
        );
        assert_eq!(
            check(&l, trace("C1"), Some("L0")),
            ScanVerdict::Flag(CodeFlag::AlreadyBound { batch: "L0".into() })
        );
        l.trace_codes = vec!["C2".into()];
        assert_eq!(
            check(&l, trace("C1"), None),
            ScanVerdict::Flag(CodeFlag::NotIssuedForBatch)
        );
        assert_eq!(check(&l, trace("C2"), None), ScanVerdict::Bind);
    }

    #[test]
    fn product_scans_count_but_are_never_bound() {
        let mut l = line();
        let milk = gtin("6901234567892");
        let product = ItemScan {
            code: "06901234567892",
            kind: CodeKind::Product,
            gtin: Some(&milk),
            lot: None,
            expiry: None,
        };
        assert_eq!(check(&l, product, None), ScanVerdict::CountProduct);
        // A product code is never "already bound", whatever the trace-code table says.
        assert_eq!(check(&l, product, Some("L0")), ScanVerdict::CountProduct);
        l.trace_codes = vec!["C2".into()];
        assert_eq!(check(&l, product, None), ScanVerdict::WantsTraceCode);
        let other = gtin("09506000134352");
        assert!(matches!(
            check(
                &l,
                ItemScan {
                    gtin: Some(&other),
                    ..product
                },
                None
            ),
            ScanVerdict::Flag(CodeFlag::GtinMismatch { .. })
        ));
    }

    #[test]
    fn lot_and_expiry_printed_in_a_code_are_checked() {
        let l = line(); // lot L1, expires 2026-12-10; today 2026-11-24; 2 days at least
        let date = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        let with = |lot: Option<&'static str>, expiry: Option<NaiveDate>| ItemScan {
            lot,
            expiry,
            ..trace("C1")
        };
        assert_eq!(
            check(&l, with(Some("L1"), Some(date(12, 10))), None),
            ScanVerdict::Bind
        );
        assert_eq!(
            check(&l, with(Some("L2"), None), None),
            ScanVerdict::Flag(CodeFlag::LotMismatch {
                code_lot: "L2".into(),
                line_lot: "L1".into()
            })
        );
        assert_eq!(
            check(&l, with(None, Some(date(11, 23))), None),
            ScanVerdict::Flag(CodeFlag::Expired {
                expiry: date(11, 23),
                days_left: -1
            })
        );
        assert_eq!(
            check(&l, with(None, Some(date(11, 25))), None),
            ScanVerdict::Flag(CodeFlag::ExpiryTooClose {
                expiry: date(11, 25),
                days_left: 1,
                minimum: 2
            })
        );
        assert_eq!(
            check(&l, with(None, Some(date(12, 11))), None),
            ScanVerdict::Flag(CodeFlag::ExpiryMismatch {
                code_expiry: date(12, 11),
                line_expiry: date(12, 10)
            })
        );
        let flag = CodeFlag::LotMismatch {
            code_lot: "L2".into(),
            line_lot: "L1".into(),
        };
        assert_eq!(flag.code(), "lot_mismatch");
        assert!(flag.describe().contains("lot L2"));
    }

    proptest! {
        /// Whatever was observed, the quantities add up to what arrived and are never negative.
        #[test]
        fn quantities_always_add_up(counted in proptest::option::of(0i64..40), weight in proptest::option::of(45_000i64..55_000),
                                    photo in proptest::option::of(prop_oneof![Just(PhotoVerdict::Pass), Just(PhotoVerdict::Fail), Just(PhotoVerdict::NeedsReview)]),
                                    flagged in 0usize..3, by_weight: bool) {
            let seen = LineObservation { counted, weight_g: weight, photo, flagged_codes: vec![CodeFlag::NotIssuedForBatch; flagged] };
            let unit = if by_weight { StockUnit::Gram } else { StockUnit::Piece };
            let d = decide_line(&line(), unit, &seen, &ReceivingPolicy::default(), today());
            let arrived = if by_weight { counted.or(weight).unwrap_or(50_000) } else { counted.unwrap_or(10) };
            prop_assert_eq!(d.accepted + d.rejected + d.held, arrived);
            prop_assert!(d.accepted >= 0 && d.rejected >= 0 && d.held >= 0);
            if d.outcome == Outcome::Accepted { prop_assert!(d.reasons.is_empty()); }
        }
    }
}

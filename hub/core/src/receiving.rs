//! Receiving a delivery: the manifest central sent, and the decision per line.
//!
//! A line's decision combines what staff and devices observed — the count of bound trace
//! codes (or a counted quantity), the stable weight, the model's verdict on the photo, the
//! suspicious codes and the expiry — into accepted / partially accepted / rejected / held,
//! with every reason. Accepted quantity becomes receipt movements; rejected quantity goes back
//! to the supplier; held quantity is quarantined until a person releases it. Pure: the caller
//! passes the observations and today's date.

use crate::domain::SkuCode;
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

/// Why a trace code was not bound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum CodeFlag {
    /// Bound before (to this or another batch): possible counterfeit or double scan.
    AlreadyBound { batch: String },
    /// Not in the list central issued for this batch.
    NotIssuedForBatch,
    /// The code's GTIN is not one of the line's SKU.
    GtinMismatch { gtin: String },
    /// Not a valid trace code at all.
    Malformed { detail: String },
}

/// Everything observed about one line before deciding.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LineObservation {
    /// Units counted: bound trace codes, or a count entered by staff.
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

/// Decides one manifest line.
pub fn decide_line(
    line: &ManifestLine,
    seen: &LineObservation,
    policy: &ReceivingPolicy,
    today: NaiveDate,
) -> LineDecision {
    let mut reasons = Vec::new();
    let arrived = seen.counted.or(line.expected_count).unwrap_or(0).max(0);
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
    if let Some(manifest_g) = line.expected_weight_g {
        // A short or over count is judged on its own; the weight must match what was counted.
        let expected_g = match (seen.counted, line.expected_count) {
            (Some(counted), Some(expected)) if expected > 0 && counted != expected => {
                manifest_g * counted / expected
            }
            _ => manifest_g,
        };
        match seen.weight_g {
            Some(measured_g) if (measured_g - expected_g).abs() > line.weight_tolerance_g => {
                reasons.push(Reason::WeightOutOfTolerance {
                    expected_g,
                    measured_g,
                    tolerance_g: line.weight_tolerance_g,
                });
                hold = true;
            }
            Some(_) => {}
            None => {
                reasons.push(Reason::NoStableWeight);
                hold = true;
            }
        }
    }
    if seen.counted.is_none() && line.expected_count.is_some() {
        reasons.push(Reason::NotCounted);
        hold = true;
    }

    // Count against the manifest: short is accepted as counted; surplus goes back.
    let expected = line.expected_count.unwrap_or(arrived);
    let (mut accepted, mut rejected) = (arrived, 0);
    if let Some(counted) = seen.counted {
        if counted < expected {
            reasons.push(Reason::CountShort { expected, counted });
        } else if counted > expected {
            reasons.push(Reason::CountOver { expected, counted });
            accepted = expected;
            rejected = counted - expected;
        }
    }
    if hold {
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

/// Checks a scanned trace code against a line before binding it. `bound_to` is the batch the
/// code is already bound to, if any; `gtin` the GTIN parsed from the code, if it has one.
pub fn check_code_for_line(
    line: &ManifestLine,
    sku_gtins: &[String],
    code: &str,
    gtin: Option<&str>,
    bound_to: Option<&str>,
) -> Result<(), CodeFlag> {
    if let Some(batch) = bound_to {
        return Err(CodeFlag::AlreadyBound {
            batch: batch.to_owned(),
        });
    }
    if let Some(gtin) = gtin
        && !sku_gtins.is_empty()
        && !sku_gtins.iter().any(|g| g == gtin)
    {
        return Err(CodeFlag::GtinMismatch {
            gtin: gtin.to_owned(),
        });
    }
    if !line.trace_codes.is_empty() && !line.trace_codes.iter().any(|c| c == code) {
        return Err(CodeFlag::NotIssuedForBatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
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
        decide_line(&line(), &seen, &ReceivingPolicy::default(), today())
    }

    #[test]
    fn decision_table() {
        let d = decide(good());
        assert_eq!(
            (d.outcome, d.accepted, d.rejected, d.held),
            (Outcome::Accepted, 10, 0, 0)
        );

        let d = decide(LineObservation {
            counted: Some(8),
            weight_g: Some(39_900),
            ..good()
        });
        assert_eq!((d.outcome, d.accepted), (Outcome::PartiallyAccepted, 8));
        assert_eq!(
            d.reasons,
            vec![Reason::CountShort {
                expected: 10,
                counted: 8
            }]
        );

        let d = decide(LineObservation {
            counted: Some(8),
            weight_g: Some(50_000),
            ..good()
        });
        assert_eq!(
            d.outcome,
            Outcome::Held,
            "8 units weighing as much as 10 is suspicious"
        );

        let d = decide(LineObservation {
            counted: Some(12),
            weight_g: Some(60_100),
            ..good()
        });
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
    fn expiry_rules() {
        let mut l = line();
        l.expiry = NaiveDate::from_ymd_opt(2026, 11, 25);
        let d = decide_line(&l, &good(), &ReceivingPolicy::default(), today());
        assert_eq!(d.outcome, Outcome::Rejected);
        assert_eq!(
            d.reasons,
            vec![Reason::ExpiryTooClose {
                days_left: 1,
                minimum: 2
            }]
        );
        l.expiry = NaiveDate::from_ymd_opt(2026, 11, 20);
        let d = decide_line(&l, &good(), &ReceivingPolicy::default(), today());
        assert_eq!(d.reasons, vec![Reason::Expired { days_left: -4 }]);
    }

    #[test]
    fn code_checks() {
        let mut l = line();
        let gtins = vec!["06901234567892".to_string()];
        assert_eq!(
            check_code_for_line(&l, &gtins, "C1", Some("06901234567892"), None),
            Ok(())
        );
        assert_eq!(
            check_code_for_line(&l, &gtins, "C1", Some("09506000134352"), None),
            Err(CodeFlag::GtinMismatch {
                gtin: "09506000134352".into()
            })
        );
        assert_eq!(
            check_code_for_line(&l, &gtins, "C1", None, Some("L0")),
            Err(CodeFlag::AlreadyBound { batch: "L0".into() })
        );
        l.trace_codes = vec!["C2".into()];
        assert_eq!(
            check_code_for_line(&l, &gtins, "C1", None, None),
            Err(CodeFlag::NotIssuedForBatch)
        );
        assert_eq!(check_code_for_line(&l, &gtins, "C2", None, None), Ok(()));
    }

    proptest! {
        /// Whatever was observed, the quantities add up to what arrived and are never negative.
        #[test]
        fn quantities_always_add_up(counted in proptest::option::of(0i64..40), weight in proptest::option::of(45_000i64..55_000),
                                    photo in proptest::option::of(prop_oneof![Just(PhotoVerdict::Pass), Just(PhotoVerdict::Fail), Just(PhotoVerdict::NeedsReview)]),
                                    flagged in 0usize..3) {
            let seen = LineObservation { counted, weight_g: weight, photo, flagged_codes: vec![CodeFlag::NotIssuedForBatch; flagged] };
            let d = decide(seen);
            let arrived = counted.unwrap_or(10);
            prop_assert_eq!(d.accepted + d.rejected + d.held, arrived);
            prop_assert!(d.accepted >= 0 && d.rejected >= 0 && d.held >= 0);
            if d.outcome == Outcome::Accepted { prop_assert!(d.reasons.is_empty()); }
        }
    }
}

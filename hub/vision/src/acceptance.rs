//! Acceptance rules per SKU: does the model's top-k say this photo shows the expected produce?
//!
//! Pure functions over plain data: no I/O, no clock, no model. The one policy that matters for the
//! business: **the model alone never rejects stock** unless the SKU's rule sets
//! `allow_model_reject = true`; otherwise what would be a fail is held for a human
//! (`NeedsReview`).

use serde::{Deserialize, Serialize};

use crate::error::VisionError;

/// A class the SKU may show, by ImageNet-style class id or by label name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ExpectedLabel {
    /// Class index, e.g. `950`.
    Id(u32),
    /// Label name, matched case-insensitively against the whole label or any of its
    /// comma-separated synonyms, e.g. `"orange"`.
    Name(String),
}

impl std::fmt::Display for ExpectedLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Id(id) => write!(f, "#{id}"),
            Self::Name(name) => write!(f, "'{name}'"),
        }
    }
}

impl ExpectedLabel {
    /// Whether this expectation matches a prediction.
    pub fn matches(&self, p: &Prediction) -> bool {
        match self {
            Self::Id(id) => *id == p.class_id,
            Self::Name(name) => {
                let name = name.trim();
                p.label.eq_ignore_ascii_case(name)
                    || p.label
                        .split(',')
                        .any(|syn| syn.trim().eq_ignore_ascii_case(name))
            }
        }
    }
}

fn default_top_k() -> usize {
    5
}

/// How the model's verdict is judged for one SKU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkuRule {
    /// The SKU this rule is for.
    pub sku: String,
    /// Classes that count as "this is the product" (any of them).
    pub expected: Vec<ExpectedLabel>,
    /// How many of the model's best classes to look at (default 5).
    #[serde(default = "default_top_k")]
    pub top_k: usize,
    /// Minimum combined probability of the expected classes found in the top-k.
    pub min_probability: f32,
    /// Whether the model alone may reject a delivery. Default false: a would-be fail becomes
    /// `NeedsReview`.
    #[serde(default)]
    pub allow_model_reject: bool,
}

impl SkuRule {
    /// Checks that the rule can be applied.
    pub fn validate(&self) -> Result<(), VisionError> {
        let fail = |reason: String| {
            Err(VisionError::InvalidRule {
                sku: self.sku.clone(),
                reason,
            })
        };
        if self.expected.is_empty() {
            return fail("no expected labels (give class ids or names)".into());
        }
        if self
            .expected
            .iter()
            .any(|e| matches!(e, ExpectedLabel::Name(n) if n.trim().is_empty()))
        {
            return fail("an expected label name is empty".into());
        }
        if self.top_k == 0 {
            return fail("top_k must be at least 1".into());
        }
        if !(self.min_probability.is_finite() && (0.0..=1.0).contains(&self.min_probability)) {
            return fail(format!(
                "min_probability {} must be within 0..=1",
                self.min_probability
            ));
        }
        Ok(())
    }
}

/// One class the model proposed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Class index.
    pub class_id: u32,
    /// Label from the model's labels file.
    pub label: String,
    /// Probability (after softmax where the model outputs logits).
    pub probability: f32,
}

/// Result of an acceptance check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The photo shows the expected product with enough confidence.
    Pass,
    /// The photo does not show the product, and the rule lets the model reject.
    Fail,
    /// A human must look at the photo.
    NeedsReview,
}

/// Outcome with the reasons an operator reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The outcome.
    pub outcome: Outcome,
    /// Why, in plain words; at least one entry.
    pub reasons: Vec<String>,
    /// Combined probability of the expected classes within the top-k.
    pub expected_probability: f32,
}

/// Judges the model's predictions (best first) against a rule.
///
/// - Pass: at least one expected class is in the top-k and their combined probability is at
///   least `min_probability`.
/// - Expected classes in the top-k but below `min_probability`: NeedsReview (the model is unsure).
/// - No expected class in the top-k: Fail when `allow_model_reject`, otherwise NeedsReview.
/// - An invalid rule or non-finite probabilities: NeedsReview.
pub fn evaluate(rule: &SkuRule, predictions: &[Prediction]) -> Verdict {
    if let Err(e) = rule.validate() {
        return Verdict {
            outcome: Outcome::NeedsReview,
            reasons: vec![e.to_string()],
            expected_probability: 0.0,
        };
    }
    let top = &predictions[..predictions.len().min(rule.top_k)];
    if top.is_empty() || top.iter().any(|p| !p.probability.is_finite()) {
        return Verdict {
            outcome: Outcome::NeedsReview,
            reasons: vec![
                "model output is empty or not a number; a human must check the photo".into(),
            ],
            expected_probability: 0.0,
        };
    }
    let matched: Vec<(usize, &Prediction)> = top
        .iter()
        .enumerate()
        .filter(|(_, p)| rule.expected.iter().any(|e| e.matches(p)))
        .collect();
    let combined: f32 = matched.iter().map(|(_, p)| p.probability).sum();
    let expected_list = rule
        .expected
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let describe = |(rank, p): &(usize, &Prediction)| {
        format!(
            "'{}' (#{}) at rank {} with p={:.3}",
            p.label,
            p.class_id,
            rank + 1,
            p.probability
        )
    };

    if !matched.is_empty() {
        let found = matched.iter().map(describe).collect::<Vec<_>>().join(", ");
        if combined >= rule.min_probability {
            return Verdict {
                outcome: Outcome::Pass,
                reasons: vec![format!(
                    "expected {found}; combined p={combined:.3} >= minimum {:.3}",
                    rule.min_probability
                )],
                expected_probability: combined,
            };
        }
        return Verdict {
            outcome: Outcome::NeedsReview,
            reasons: vec![format!(
                "expected {found}, but combined p={combined:.3} is below minimum {:.3}; the model is unsure",
                rule.min_probability
            )],
            expected_probability: combined,
        };
    }

    let best = &top[0];
    let mut reasons = vec![format!(
        "none of the expected labels ({expected_list}) is in the model's top {}; best is '{}' (#{}) with p={:.3}",
        rule.top_k, best.label, best.class_id, best.probability
    )];
    let outcome = if rule.allow_model_reject {
        Outcome::Fail
    } else {
        reasons.push(
            "the model alone may not reject stock for this SKU (allow_model_reject = false)".into(),
        );
        Outcome::NeedsReview
    };
    Verdict {
        outcome,
        reasons,
        expected_probability: 0.0,
    }
}

/// Softmax over logits, numerically stable.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// The `k` most probable classes, best first, with labels.
pub fn top_k(probabilities: &[f32], labels: &[String], k: usize) -> Vec<Prediction> {
    let mut idx: Vec<usize> = (0..probabilities.len()).collect();
    idx.sort_by(|&a, &b| {
        probabilities[b]
            .total_cmp(&probabilities[a])
            .then(a.cmp(&b))
    });
    idx.into_iter()
        .take(k)
        .map(|i| Prediction {
            class_id: i as u32,
            label: labels
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("class {i}")),
            probability: probabilities[i],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(id: u32, label: &str, prob: f32) -> Prediction {
        Prediction {
            class_id: id,
            label: label.into(),
            probability: prob,
        }
    }

    fn orange_rule(allow_model_reject: bool) -> SkuRule {
        SkuRule {
            sku: "ORANGE-1KG".into(),
            expected: vec![ExpectedLabel::Id(950), ExpectedLabel::Name("lemon".into())],
            top_k: 5,
            min_probability: 0.2,
            allow_model_reject,
        }
    }

    #[test]
    fn table() {
        let orange_top = vec![
            p(950, "orange", 0.27),
            p(951, "lemon", 0.10),
            p(1, "goldfish", 0.05),
        ];
        let weak = vec![
            p(1, "goldfish", 0.6),
            p(950, "orange", 0.05),
            p(951, "lemon", 0.04),
        ];
        let other = vec![p(372, "baboon", 0.65), p(1, "goldfish", 0.1)];
        let rank6 = vec![
            p(1, "a", 0.3),
            p(2, "b", 0.2),
            p(3, "c", 0.1),
            p(4, "d", 0.1),
            p(5, "e", 0.1),
            p(950, "orange", 0.09),
        ];
        let nan = vec![p(950, "orange", f32::NAN)];
        let cases: Vec<(&str, SkuRule, Vec<Prediction>, Outcome)> = vec![
            (
                "top-1 expected above min",
                orange_rule(false),
                orange_top.clone(),
                Outcome::Pass,
            ),
            (
                "combined probability counts",
                SkuRule {
                    min_probability: 0.35,
                    ..orange_rule(false)
                },
                orange_top.clone(),
                Outcome::Pass,
            ),
            (
                "combined below min",
                SkuRule {
                    min_probability: 0.5,
                    ..orange_rule(true)
                },
                orange_top,
                Outcome::NeedsReview,
            ),
            (
                "weak match is review even if rejects allowed",
                orange_rule(true),
                weak,
                Outcome::NeedsReview,
            ),
            (
                "absent, rejects not allowed",
                orange_rule(false),
                other.clone(),
                Outcome::NeedsReview,
            ),
            (
                "absent, rejects allowed",
                orange_rule(true),
                other,
                Outcome::Fail,
            ),
            (
                "outside top-k does not count",
                orange_rule(true),
                rank6.clone(),
                Outcome::Fail,
            ),
            (
                "top_k 6 sees it but below min",
                SkuRule {
                    top_k: 6,
                    ..orange_rule(true)
                },
                rank6,
                Outcome::NeedsReview,
            ),
            ("nan output", orange_rule(true), nan, Outcome::NeedsReview),
            (
                "empty output",
                orange_rule(true),
                vec![],
                Outcome::NeedsReview,
            ),
            (
                "invalid rule",
                SkuRule {
                    expected: vec![],
                    ..orange_rule(true)
                },
                vec![p(950, "orange", 0.9)],
                Outcome::NeedsReview,
            ),
        ];
        for (name, rule, preds, want) in cases {
            let v = evaluate(&rule, &preds);
            assert_eq!(v.outcome, want, "{name}: {v:?}");
            assert!(!v.reasons.is_empty(), "{name}");
        }
    }

    #[test]
    fn name_matching_uses_synonyms_case_insensitively() {
        let e = ExpectedLabel::Name("Granny Smith".into());
        assert!(e.matches(&p(948, "Granny Smith", 0.5)));
        let e = ExpectedLabel::Name("tinca tinca".into());
        assert!(e.matches(&p(0, "tench, Tinca tinca", 0.5)));
        assert!(!ExpectedLabel::Name("orange".into()).matches(&p(1, "orangutan, orang", 0.5)));
    }

    #[test]
    fn reasons_name_the_evidence() {
        let v = evaluate(&orange_rule(false), &[p(372, "baboon", 0.65)]);
        let text = v.reasons.join(" | ");
        assert!(
            text.contains("baboon") && text.contains("#950") && text.contains("allow_model_reject"),
            "{text}"
        );
    }

    #[test]
    fn rule_validation() {
        assert!(orange_rule(false).validate().is_ok());
        assert!(
            SkuRule {
                top_k: 0,
                ..orange_rule(false)
            }
            .validate()
            .is_err()
        );
        assert!(
            SkuRule {
                min_probability: 1.5,
                ..orange_rule(false)
            }
            .validate()
            .is_err()
        );
        assert!(
            SkuRule {
                min_probability: f32::NAN,
                ..orange_rule(false)
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn rule_from_toml() {
        let r: SkuRule = toml::from_str(
            "sku = \"ORANGE-1KG\"\nexpected = [950, \"lemon\"]\nmin_probability = 0.2\n",
        )
        .unwrap();
        assert_eq!(r.top_k, 5);
        assert!(!r.allow_model_reject);
        assert_eq!(
            r.expected,
            vec![ExpectedLabel::Id(950), ExpectedLabel::Name("lemon".into())]
        );
    }

    #[test]
    fn softmax_and_top_k() {
        let probs = softmax(&[1.0, 3.0, 2.0, 4.0]);
        assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        let labels: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let top = top_k(&probs, &labels, 2);
        assert_eq!(top[0].class_id, 3);
        assert_eq!(top[1].label, "b");
    }

    fn arb_prediction() -> impl Strategy<Value = Prediction> {
        (
            0u32..1000,
            prop::sample::select(vec!["orange", "lemon", "baboon", "fig", "x, y"]),
            prop::num::f32::ANY,
        )
            .prop_map(|(id, label, probability)| Prediction {
                class_id: id,
                label: label.into(),
                probability,
            })
    }

    fn arb_expected() -> impl Strategy<Value = ExpectedLabel> {
        prop_oneof![
            (0u32..1000).prop_map(ExpectedLabel::Id),
            prop::sample::select(vec!["orange", "lemon", "y", ""])
                .prop_map(|s| ExpectedLabel::Name(s.into())),
        ]
    }

    proptest! {
        #[test]
        fn model_alone_never_fails_unless_allowed(
            preds in prop::collection::vec(arb_prediction(), 0..12),
            expected in prop::collection::vec(arb_expected(), 0..4),
            top_k in 0usize..10,
            min_probability in prop::num::f32::ANY,
        ) {
            let rule = SkuRule { sku: "S".into(), expected, top_k, min_probability, allow_model_reject: false };
            let v = evaluate(&rule, &preds);
            prop_assert_ne!(v.outcome, Outcome::Fail);
            prop_assert!(!v.reasons.is_empty());
        }

        #[test]
        fn pass_needs_an_expected_class_in_top_k(
            preds in prop::collection::vec(arb_prediction(), 0..12),
            expected in prop::collection::vec(arb_expected(), 0..4),
            top_k in 1usize..10,
            allow in any::<bool>(),
        ) {
            let rule = SkuRule { sku: "S".into(), expected, top_k, min_probability: 0.0, allow_model_reject: allow };
            let v = evaluate(&rule, &preds);
            if v.outcome == Outcome::Pass {
                prop_assert!(preds.iter().take(top_k).any(|p| rule.expected.iter().any(|e| e.matches(p))));
            }
        }
    }
}

//! Demand signals from central — holidays and festivals, promotions, weather — as multipliers on
//! a SKU's daily demand, their validation, and how they combine for one SKU and day.
//!
//! Combination rule: signals of *different* kinds multiply (rain during a promotion on a
//! festival is three factors). Two signals of the *same* kind for the same SKU and day are
//! ambiguous (replace or multiply?) and [`validate_signals`] refuses them where it can see them:
//! when either is scoped to all SKUs, both name the same category, or both list the same SKU.
//! A category signal and a SKU-list signal of the same kind cannot be compared without the
//! catalogue; if both reach a SKU on a day, the more specific one (SKU list over category over
//! all) applies. Unknown SKU codes are the caller's business. Pure: dates come in as arguments.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Multipliers above this are refused as absurd.
pub const MAX_MULTIPLIER: f64 = 20.0;

/// What a signal is about. Same-kind signals must not overlap; different kinds multiply.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SignalKind {
    /// A festival or holiday window (清明, 端午, 中秋, 冬至, 春节 eve, year-end...).
    Holiday,
    /// A promotion: uplift plus the fraction of stock held back for its pre-sale orders.
    Promotion {
        /// Fraction of stock kept for pre-sale orders, in `[0, 1)`, e.g. 0.2.
        reserve_fraction: f64,
    },
    /// A weather forecast effect (rain, heat, cold) on the SKUs it names.
    Weather,
}

impl SignalKind {
    /// Stable name of the kind.
    pub fn as_str(&self) -> &'static str {
        match self {
            SignalKind::Holiday => "holiday",
            SignalKind::Promotion { .. } => "promotion",
            SignalKind::Weather => "weather",
        }
    }

    fn index(&self) -> usize {
        match self {
            SignalKind::Holiday => 0,
            SignalKind::Promotion { .. } => 1,
            SignalKind::Weather => 2,
        }
    }
}

/// Which SKUs a signal applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", content = "value", rename_all = "snake_case")]
pub enum SignalScope {
    /// Every SKU of the site.
    All,
    /// Every SKU of one category, e.g. `fresh`.
    Category(String),
    /// The listed SKU codes.
    Skus(Vec<String>),
}

impl SignalScope {
    /// Whether the scope reaches a SKU of the given category.
    pub fn covers(&self, sku: &str, category: &str) -> bool {
        match self {
            SignalScope::All => true,
            SignalScope::Category(c) => c == category,
            SignalScope::Skus(list) => list.iter().any(|s| s == sku),
        }
    }

    /// Higher is more specific: SKU list 2, category 1, all 0.
    fn specificity(&self) -> u8 {
        match self {
            SignalScope::All => 0,
            SignalScope::Category(_) => 1,
            SignalScope::Skus(_) => 2,
        }
    }

    /// What two scopes visibly share, described for an error; `None` if nothing visible.
    fn visible_overlap(&self, other: &SignalScope) -> Option<String> {
        match (self, other) {
            (SignalScope::All, _) | (_, SignalScope::All) => Some("all SKUs".into()),
            (SignalScope::Category(a), SignalScope::Category(b)) if a == b => {
                Some(format!("category {a}"))
            }
            (SignalScope::Skus(a), SignalScope::Skus(b)) => {
                a.iter().find(|s| b.contains(s)).map(|s| format!("SKU {s}"))
            }
            _ => None,
        }
    }
}

/// One demand signal: a date range (inclusive), a scope and a multiplier on demand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemandSignal {
    /// Central's id, quoted in every error, e.g. `qingming-2026`.
    pub id: String,
    pub kind: SignalKind,
    /// First day the multiplier applies.
    pub start: NaiveDate,
    /// Last day the multiplier applies (inclusive).
    pub end: NaiveDate,
    pub scope: SignalScope,
    /// Factor on the day's demand, in `(0, MAX_MULTIPLIER]`; below 1 lowers demand.
    pub multiplier: f64,
}

impl DemandSignal {
    /// Whether the signal covers this day.
    pub fn covers_date(&self, date: NaiveDate) -> bool {
        self.start <= date && date <= self.end
    }

    /// Pre-sale reserve fraction (0 unless a promotion).
    pub fn reserve_fraction(&self) -> f64 {
        match self.kind {
            SignalKind::Promotion { reserve_fraction } => reserve_fraction,
            _ => 0.0,
        }
    }
}

/// Why a signal was refused. Every variant names the signal.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SignalError {
    #[error("signal {id}: multiplier {multiplier} must be above 0")]
    NonPositiveMultiplier { id: String, multiplier: f64 },
    #[error("signal {id}: multiplier {multiplier} is absurd (limit {MAX_MULTIPLIER})")]
    AbsurdMultiplier { id: String, multiplier: f64 },
    #[error("signal {id}: ends {end}, before it starts {start}")]
    InvertedRange {
        id: String,
        start: NaiveDate,
        end: NaiveDate,
    },
    #[error("signal {id}: ends {end}, before the as-of date {as_of}")]
    InPast {
        id: String,
        end: NaiveDate,
        as_of: NaiveDate,
    },
    #[error("signal {id}: pre-sale reserve fraction {fraction} must be at least 0 and below 1")]
    ReserveFraction { id: String, fraction: f64 },
    #[error("signal {id}: scope names no category or SKU")]
    EmptyScope { id: String },
    #[error("signals {first} and {second} are both {kind} signals for {what} on {day}")]
    Overlap {
        first: String,
        second: String,
        kind: &'static str,
        what: String,
        day: NaiveDate,
    },
}

/// Checks signals received on `as_of` and reports every problem at once: multipliers ≤ 0, not
/// finite or above [`MAX_MULTIPLIER`], inverted ranges, signals that ended before `as_of`
/// (a running one — started earlier, ends today or later — is accepted, since central re-sends
/// running promotions), reserve fractions outside `[0, 1)`, empty scopes, and same-kind overlaps
/// visible without the catalogue (see the module header).
pub fn validate_signals(
    signals: &[DemandSignal],
    as_of: NaiveDate,
) -> Result<(), Vec<SignalError>> {
    let mut errors = Vec::new();
    for s in signals {
        let id = || s.id.clone();
        if s.multiplier.is_nan() || s.multiplier <= 0.0 {
            errors.push(SignalError::NonPositiveMultiplier {
                id: id(),
                multiplier: s.multiplier,
            });
        } else if s.multiplier > MAX_MULTIPLIER {
            errors.push(SignalError::AbsurdMultiplier {
                id: id(),
                multiplier: s.multiplier,
            });
        }
        if s.end < s.start {
            errors.push(SignalError::InvertedRange {
                id: id(),
                start: s.start,
                end: s.end,
            });
        }
        if s.end < as_of {
            errors.push(SignalError::InPast {
                id: id(),
                end: s.end,
                as_of,
            });
        }
        let r = s.reserve_fraction();
        if !(0.0..1.0).contains(&r) {
            errors.push(SignalError::ReserveFraction {
                id: id(),
                fraction: r,
            });
        }
        let empty = match &s.scope {
            SignalScope::All => false,
            SignalScope::Category(c) => c.is_empty(),
            SignalScope::Skus(list) => list.is_empty() || list.iter().any(|s| s.is_empty()),
        };
        if empty {
            errors.push(SignalError::EmptyScope { id: id() });
        }
    }
    for (i, a) in signals.iter().enumerate() {
        for b in &signals[i + 1..] {
            if a.kind.index() != b.kind.index() || a.end < a.start || b.end < b.start {
                continue;
            }
            let first_day = a.start.max(b.start);
            if first_day > a.end.min(b.end) {
                continue;
            }
            if let Some(what) = a.scope.visible_overlap(&b.scope) {
                errors.push(SignalError::Overlap {
                    first: a.id.clone(),
                    second: b.id.clone(),
                    kind: a.kind.as_str(),
                    what,
                    day: first_day,
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The signals that reach one SKU, ready to be asked for a day's multiplier.
#[derive(Debug, Clone)]
pub struct SkuSignals<'a> {
    signals: Vec<&'a DemandSignal>,
}

impl<'a> SkuSignals<'a> {
    /// Keeps the signals whose scope covers the SKU (any date).
    pub fn for_sku(signals: &'a [DemandSignal], sku: &str, category: &str) -> Self {
        SkuSignals {
            signals: signals
                .iter()
                .filter(|s| {
                    s.scope.covers(sku, category) && s.multiplier.is_finite() && s.multiplier > 0.0
                })
                .collect(),
        }
    }

    /// The signals of one kind that apply on the day: the most specific one wins.
    fn active(&self, date: NaiveDate) -> [Option<&'a DemandSignal>; 3] {
        let mut best: [Option<&'a DemandSignal>; 3] = [None; 3];
        for s in self.signals.iter().filter(|s| s.covers_date(date)) {
            let slot = &mut best[s.kind.index()];
            match slot {
                Some(b) if b.scope.specificity() >= s.scope.specificity() => {}
                _ => *slot = Some(s),
            }
        }
        best
    }

    /// Product of the multipliers that apply on the day (1 without any).
    pub fn multiplier(&self, date: NaiveDate) -> f64 {
        self.active(date)
            .iter()
            .flatten()
            .map(|s| s.multiplier.min(MAX_MULTIPLIER))
            .product()
    }

    /// Pre-sale reserve fraction of the promotion running on the day (0 without one).
    pub fn reserve_fraction(&self, date: NaiveDate) -> f64 {
        self.active(date)[1].map_or(0.0, |s| s.reserve_fraction().clamp(0.0, 0.95))
    }

    /// Whether any signal reaches the SKU at all.
    pub fn is_empty(&self) -> bool {
        self.signals.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).unwrap()
    }

    fn sig(
        id: &str,
        kind: SignalKind,
        start: NaiveDate,
        end: NaiveDate,
        scope: SignalScope,
        m: f64,
    ) -> DemandSignal {
        DemandSignal {
            id: id.into(),
            kind,
            start,
            end,
            scope,
            multiplier: m,
        }
    }

    fn good() -> DemandSignal {
        sig(
            "qingming-2026",
            SignalKind::Holiday,
            d(4, 2),
            d(4, 5),
            SignalScope::Skus(vec!["QINGTUAN".into()]),
            3.0,
        )
    }

    #[test]
    fn each_bad_case_is_refused_with_the_signal_named() {
        let as_of = d(3, 1);
        assert_eq!(validate_signals(&[good()], as_of), Ok(()));
        type Expect = fn(&SignalError) -> bool;
        let cases: Vec<(DemandSignal, Expect)> = vec![
            (
                DemandSignal {
                    multiplier: 0.0,
                    ..good()
                },
                |e| matches!(e, SignalError::NonPositiveMultiplier { .. }),
            ),
            (
                DemandSignal {
                    multiplier: -1.0,
                    ..good()
                },
                |e| matches!(e, SignalError::NonPositiveMultiplier { .. }),
            ),
            (
                DemandSignal {
                    multiplier: f64::NAN,
                    ..good()
                },
                |e| matches!(e, SignalError::NonPositiveMultiplier { .. }),
            ),
            (
                DemandSignal {
                    multiplier: 20.5,
                    ..good()
                },
                |e| matches!(e, SignalError::AbsurdMultiplier { .. }),
            ),
            (
                DemandSignal {
                    multiplier: f64::INFINITY,
                    ..good()
                },
                |e| matches!(e, SignalError::AbsurdMultiplier { .. }),
            ),
            (
                DemandSignal {
                    start: d(4, 6),
                    ..good()
                },
                |e| matches!(e, SignalError::InvertedRange { .. }),
            ),
            (
                DemandSignal {
                    start: d(2, 1),
                    end: d(2, 28),
                    ..good()
                },
                |e| matches!(e, SignalError::InPast { .. }),
            ),
            (
                DemandSignal {
                    kind: SignalKind::Promotion {
                        reserve_fraction: 1.0,
                    },
                    ..good()
                },
                |e| matches!(e, SignalError::ReserveFraction { .. }),
            ),
            (
                DemandSignal {
                    scope: SignalScope::Skus(vec![]),
                    ..good()
                },
                |e| matches!(e, SignalError::EmptyScope { .. }),
            ),
        ];
        for (signal, is_expected) in cases {
            // Another SKU, so that only the defect under test is reported.
            let scope = match &signal.scope {
                SignalScope::Skus(list) if list.is_empty() => signal.scope.clone(),
                _ => SignalScope::Skus(vec!["OTHER".into()]),
            };
            let bad = DemandSignal {
                id: "bad-one".into(),
                scope,
                ..signal
            };
            let errors = validate_signals(&[good(), bad.clone()], as_of).unwrap_err();
            assert_eq!(errors.len(), 1, "{bad:?}: {errors:?}");
            assert!(is_expected(&errors[0]), "{bad:?}: {errors:?}");
            assert!(errors[0].to_string().contains("bad-one"), "{}", errors[0]);
        }
    }

    #[test]
    fn a_running_signal_is_accepted() {
        let running = DemandSignal {
            start: d(2, 27),
            end: d(3, 3),
            ..good()
        };
        assert_eq!(validate_signals(&[running], d(3, 1)), Ok(()));
    }

    #[test]
    fn same_kind_overlaps_are_refused_other_kinds_combine() {
        let as_of = d(3, 1);
        let all = sig(
            "spring-all",
            SignalKind::Holiday,
            d(4, 4),
            d(4, 8),
            SignalScope::All,
            1.2,
        );
        let errors = validate_signals(&[good(), all.clone()], as_of).unwrap_err();
        assert!(
            matches!(&errors[..], [SignalError::Overlap { first, second, day, .. }]
            if first == "qingming-2026" && second == "spring-all" && *day == d(4, 4)),
            "{errors:?}"
        );
        let same_sku = sig(
            "promo",
            SignalKind::Holiday,
            d(4, 5),
            d(4, 5),
            SignalScope::Skus(vec!["X".into(), "QINGTUAN".into()]),
            2.0,
        );
        assert!(validate_signals(&[good(), same_sku], as_of).is_err());
        let same_cat_a = sig(
            "a",
            SignalKind::Weather,
            d(4, 1),
            d(4, 3),
            SignalScope::Category("fresh".into()),
            1.2,
        );
        let same_cat_b = sig(
            "b",
            SignalKind::Weather,
            d(4, 3),
            d(4, 4),
            SignalScope::Category("fresh".into()),
            0.8,
        );
        assert!(validate_signals(&[same_cat_a.clone(), same_cat_b], as_of).is_err());
        // Different kinds on the same SKU and day are fine, and multiply.
        let promo = sig(
            "promo",
            SignalKind::Promotion {
                reserve_fraction: 0.2,
            },
            d(4, 5),
            d(4, 6),
            SignalScope::Skus(vec!["QINGTUAN".into()]),
            1.5,
        );
        let rain = sig(
            "rain",
            SignalKind::Weather,
            d(4, 5),
            d(4, 5),
            SignalScope::All,
            1.1,
        );
        let set = [good(), promo, rain];
        assert_eq!(validate_signals(&set, as_of), Ok(()));
        let s = SkuSignals::for_sku(&set, "QINGTUAN", "bakery");
        assert!((s.multiplier(d(4, 5)) - 3.0 * 1.5 * 1.1).abs() < 1e-12);
        assert!((s.multiplier(d(4, 6)) - 1.5).abs() < 1e-12);
        assert_eq!(s.multiplier(d(4, 7)), 1.0);
        assert_eq!(s.reserve_fraction(d(4, 6)), 0.2);
        assert_eq!(s.reserve_fraction(d(4, 7)), 0.0);
        // Non-overlapping same kind for different categories.
        let other_cat = sig(
            "c",
            SignalKind::Weather,
            d(4, 1),
            d(4, 3),
            SignalScope::Category("dairy".into()),
            1.2,
        );
        assert_eq!(validate_signals(&[same_cat_a, other_cat], as_of), Ok(()));
    }

    #[test]
    fn the_more_specific_signal_of_a_kind_wins() {
        let cat = sig(
            "cat",
            SignalKind::Holiday,
            d(4, 1),
            d(4, 9),
            SignalScope::Category("bakery".into()),
            1.5,
        );
        let set = [cat, good()];
        let s = SkuSignals::for_sku(&set, "QINGTUAN", "bakery");
        assert_eq!(s.multiplier(d(4, 3)), 3.0);
        assert_eq!(s.multiplier(d(4, 8)), 1.5);
        let other = SkuSignals::for_sku(&set, "BREAD", "bakery");
        assert_eq!(other.multiplier(d(4, 3)), 1.5);
    }
}

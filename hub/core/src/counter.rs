//! Rules of the pickup counter's screen that do not belong to the code check itself: what a
//! scan at the counter is for, which line a stable weight fills and what weighing changes in
//! the price. Pure: the caller says what is on screen.

use crate::pickup::PresentedCode;

/// What a scan at the pickup counter is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterScan {
    /// A trace code for the order on screen: it ticks (or is refused on) that order's lines.
    Item,
    /// A customer's pickup code: checked, and queued behind the order on screen if there is one.
    Code,
}

/// The one rule for every scan at a pickup counter, whether it comes from a keyboard-wedge
/// scanner on the tablet or from the counter's own scanner (serial or MQTT): with an order on
/// screen, anything that is not a pickup QR (`ORDER:CODE`) is an item of that order; with no
/// order on screen, every scan is a code to check.
pub fn counter_scan(text: &str, order_on_screen: bool) -> CounterScan {
    let is_qr = PresentedCode::parse(text).order_id.is_some();
    if order_on_screen && !is_qr {
        CounterScan::Item
    } else {
        CounterScan::Code
    }
}

/// Which line of the order on screen a stable weight at the counter belongs to: the first
/// line sold by weight (`by_weight`, in the order's line order) not weighed yet (`weighed`:
/// 0-based lines with their grams); `None` when every such line is weighed (or there is none).
pub fn weighed_line(by_weight: &[bool], weighed: &[(usize, i64)]) -> Option<usize> {
    by_weight
        .iter()
        .enumerate()
        .find(|(i, w)| **w && !weighed.iter().any(|(l, _)| l == i))
        .map(|(i, _)| i)
}

/// The price rule of a weighed line lives with the handover that records it.
pub use crate::pickup::weighed_price_difference;

/// One line of the order in the bag, for the weight cross-check: how many units, and what one
/// weighs (master data), or the line's own weighed grams (a by-weight line weighed at the
/// counter, `units` 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BagLine {
    pub units: i64,
    pub unit_weight_g: Option<i64>,
}

/// What the scale says about the bagged order against what its lines should weigh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BagCheck {
    /// Some line's weight is unknown (no unit weight in the master data): no cross-check.
    NotComparable,
    /// Within `expected_g` ± the tolerance.
    Matches { expected_g: i64, measured_g: i64 },
    /// Off by more than the tolerance; `likely` names the line (0-based) and units that best
    /// explain the difference, if one does within the tolerance.
    Mismatch {
        expected_g: i64,
        measured_g: i64,
        likely: Option<Likely>,
    },
}

/// The likely cause of a mismatch: units of one line missing from the bag, or extra in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Likely {
    Missing { line: usize, units: i64 },
    Extra { line: usize, units: i64 },
}

/// Most extra units of one line the cross-check considers (a second bag of the same item is
/// common; ten are not an explanation worth naming).
const MAX_EXTRA_UNITS: i64 = 3;

/// The weight cross-check against wrong handovers (错领): the bagged order's stable weight
/// `measured_g` against the sum of its lines' weights, within `tolerance_g` either way. On a
/// mismatch it names the single line whose units best explain the difference (missing: up to
/// the line's units; extra: up to three), if that explanation is itself within the tolerance;
/// the closest explanation wins, then fewer units, then the earlier line.
pub fn check_bag(lines: &[BagLine], measured_g: i64, tolerance_g: i64) -> BagCheck {
    let tolerance_g = tolerance_g.max(0);
    let mut expected_g = 0i64;
    for line in lines {
        match line.unit_weight_g {
            Some(w) if w > 0 && line.units >= 0 => {
                expected_g = expected_g.saturating_add(w.saturating_mul(line.units));
            }
            _ => return BagCheck::NotComparable,
        }
    }
    if lines.is_empty() {
        return BagCheck::NotComparable;
    }
    let diff = measured_g.saturating_sub(expected_g);
    if diff.abs() <= tolerance_g {
        return BagCheck::Matches {
            expected_g,
            measured_g,
        };
    }
    let missing = diff < 0;
    let mut best: Option<(i64, i64, usize)> = None;
    for (i, line) in lines.iter().enumerate() {
        let w = line.unit_weight_g.unwrap_or(0);
        let most = if missing { line.units } else { MAX_EXTRA_UNITS };
        for units in 1..=most.max(0) {
            let off = (diff.abs() - w.saturating_mul(units)).abs();
            if off > tolerance_g {
                continue;
            }
            let better = match best {
                None => true,
                Some((b_off, b_units, _)) => (off, units) < (b_off, b_units),
            };
            if better {
                best = Some((off, units, i));
            }
        }
    }
    BagCheck::Mismatch {
        expected_g,
        measured_g,
        likely: best.map(|(_, units, line)| {
            if missing {
                Likely::Missing { line, units }
            } else {
                Likely::Extra { line, units }
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(units: i64, w: i64) -> BagLine {
        BagLine {
            units,
            unit_weight_g: Some(w),
        }
    }

    #[test]
    fn a_bag_within_tolerance_matches_and_unknown_weights_are_not_compared() {
        let order = [line(2, 1_030), line(1, 250)];
        assert_eq!(
            check_bag(&order, 2_300, 30),
            BagCheck::Matches {
                expected_g: 2_310,
                measured_g: 2_300
            }
        );
        // Exactly at the tolerance still matches; one gram more does not.
        assert!(matches!(
            check_bag(&order, 2_340, 30),
            BagCheck::Matches { .. }
        ));
        assert!(matches!(
            check_bag(&order, 2_341, 30),
            BagCheck::Mismatch { .. }
        ));
        let unknown = [
            line(1, 500),
            BagLine {
                units: 1,
                unit_weight_g: None,
            },
        ];
        assert_eq!(check_bag(&unknown, 500, 30), BagCheck::NotComparable);
        assert_eq!(check_bag(&[line(1, 0)], 0, 30), BagCheck::NotComparable);
        assert_eq!(check_bag(&[], 0, 30), BagCheck::NotComparable);
        // A negative tolerance is read as none.
        assert!(matches!(
            check_bag(&[line(1, 100)], 101, -5),
            BagCheck::Mismatch { .. }
        ));
    }

    #[test]
    fn a_mismatch_names_the_missing_or_extra_item_that_explains_it() {
        let order = [line(2, 1_030), line(1, 250), line(3, 90)];
        // 2,580 expected. One milk missing.
        assert_eq!(
            check_bag(&order, 1_555, 30),
            BagCheck::Mismatch {
                expected_g: 2_580,
                measured_g: 1_555,
                likely: Some(Likely::Missing { line: 0, units: 1 })
            }
        );
        // Two of the small items missing (180 g), not one 250 g item.
        assert_eq!(
            check_bag(&order, 2_400, 30),
            BagCheck::Mismatch {
                expected_g: 2_580,
                measured_g: 2_400,
                likely: Some(Likely::Missing { line: 2, units: 2 })
            }
        );
        // An extra 250 g item.
        assert!(matches!(
            check_bag(&order, 2_830, 30),
            BagCheck::Mismatch {
                likely: Some(Likely::Extra { line: 1, units: 1 }),
                ..
            }
        ));
        // Nothing explains 600 g missing within 30 g: mismatch, no culprit named.
        assert!(matches!(
            check_bag(&order, 1_980, 30),
            BagCheck::Mismatch { likely: None, .. }
        ));
        // More missing than the line has is no explanation: 3 milks of 2.
        assert!(matches!(
            check_bag(&[line(2, 1_000), line(1, 100)], 100 - 1_000, 10),
            BagCheck::Mismatch { likely: None, .. }
        ));
    }

    proptest! {
        /// Whatever the order, a bag weighed exactly as expected matches, and a bag missing k
        /// units of one line (weights far apart, so only that line explains it) is a mismatch
        /// naming that line and k.
        #[test]
        fn a_bag_missing_units_of_one_line_is_named(
            units in proptest::collection::vec(1i64..6, 1..6),
            pick in 0usize..6,
            k in 1i64..6,
            noise in -20i64..=20,
        ) {
            // Weights 1000, 10000, 100000…: no sum of other lines' units mimics another.
            let lines: Vec<BagLine> = units
                .iter()
                .enumerate()
                .map(|(i, u)| line(*u, 1_000 * 10i64.pow(i as u32)))
                .collect();
            let expected: i64 = lines.iter().map(|l| l.units * l.unit_weight_g.unwrap()).sum();
            prop_assert!(
                matches!(check_bag(&lines, expected + noise, 30), BagCheck::Matches { .. }),
                "exact bag"
            );
            let pick = pick % lines.len();
            let k = k.min(lines[pick].units);
            let measured = expected - k * lines[pick].unit_weight_g.unwrap() + noise;
            prop_assert_eq!(
                check_bag(&lines, measured, 30),
                BagCheck::Mismatch {
                    expected_g: expected,
                    measured_g: measured,
                    likely: Some(Likely::Missing { line: pick, units: k }),
                }
            );
        }
    }

    #[test]
    fn a_weight_fills_the_first_by_weight_line_not_weighed_yet() {
        assert_eq!(weighed_line(&[false, true, true], &[]), Some(1));
        assert_eq!(weighed_line(&[false, true, true], &[(1, 540)]), Some(2));
        assert_eq!(
            weighed_line(&[false, true, true], &[(2, 1), (1, 540)]),
            None
        );
        assert_eq!(weighed_line(&[false, false], &[]), None);
        assert_eq!(weighed_line(&[], &[]), None);
    }

    #[test]
    fn the_price_difference_of_a_weighed_line_is_per_kilogram() {
        // 40 g more at 30.00 a kilogram: 1.20 more; 25 g less: 0.75 less; exact: nothing.
        assert_eq!(weighed_price_difference(500, 540, 3_000), 120);
        assert_eq!(weighed_price_difference(500, 475, 3_000), -75);
        assert_eq!(weighed_price_difference(500, 500, 3_000), 0);
        // Truncated toward zero: 1 g at 9.99 a kilogram is less than a cent.
        assert_eq!(weighed_price_difference(500, 501, 999), 0);
    }

    #[test]
    fn with_an_order_on_screen_only_pickup_qrs_are_codes() {
        for (text, on_screen, expected) in [
            ("TC-1", true, CounterScan::Item),
            ("0104012345678901215ABC", true, CounterScan::Item),
            (" TC-1 ", true, CounterScan::Item),
            ("A2:654321", true, CounterScan::Code),
            ("A2:654321", false, CounterScan::Code),
            ("TC-1", false, CounterScan::Code),
            ("123456", false, CounterScan::Code),
            // A colon with nothing on one side is no QR.
            ("A2:", true, CounterScan::Item),
            (":654321", true, CounterScan::Item),
        ] {
            assert_eq!(
                counter_scan(text, on_screen),
                expected,
                "{text} {on_screen}"
            );
        }
    }
}

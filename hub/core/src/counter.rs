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

/// What weighing a by-weight line changes in its price: (weighed − ordered) grams at
/// `per_kg_cents` a kilogram, in cents (truncated toward zero, as the handover records it).
pub fn weighed_price_difference(ordered_g: i64, weighed_g: i64, per_kg_cents: i64) -> i64 {
    (weighed_g - ordered_g) * per_kg_cents / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

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

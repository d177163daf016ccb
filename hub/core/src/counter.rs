//! Rules of the pickup counter's screen that do not belong to the code check itself: what a
//! scan at the counter is for. Pure: the caller says what is on screen.

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

#[cfg(test)]
mod tests {
    use super::*;

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

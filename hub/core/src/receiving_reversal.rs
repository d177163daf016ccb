//! Reversing the last receipt of a delivery line (a supervisor, within a window): whether it
//! may happen and how much stock leaves with the reversal movement. Pure: the caller passes
//! who asks, the delivery's state, what the receipt put on the ledger and what has happened to
//! that stock since, and the time.
//!
//! The original receipt stays in the journal; the reversal is a movement of its own that
//! takes the received quantity out again, so it is only allowed while all of it is still on
//! hand (nothing handed over since). The line then waits for a new decision.

use crate::domain::Timestamp;
use serde::{Deserialize, Serialize};

/// Why a supervisor reverses a receipt; picked from a list on the bench screen and in the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReversalReason {
    /// The count or weight recorded was wrong.
    CountError,
    /// The goods were received on the wrong line or lot.
    WrongLine,
    /// Damage found after the receipt.
    DamageFound,
    /// The supplier recalled the goods.
    SupplierRecall,
}

impl ReversalReason {
    /// Every reason, in the order a screen lists them.
    pub const ALL: [ReversalReason; 4] = [
        ReversalReason::CountError,
        ReversalReason::WrongLine,
        ReversalReason::DamageFound,
        ReversalReason::SupplierRecall,
    ];

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReversalReason::CountError => "count_error",
            ReversalReason::WrongLine => "wrong_line",
            ReversalReason::DamageFound => "damage_found",
            ReversalReason::SupplierRecall => "supplier_recall",
        }
    }

    /// Reads the name written by [`ReversalReason::as_str`].
    pub fn parse(text: &str) -> Option<ReversalReason> {
        ReversalReason::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// The last receipt of a line as the ledger holds it, and what became of its stock since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastReceipt {
    /// Quantity the receipt (a decision's acceptance, or a release after a hold) put on the
    /// ledger.
    pub received: i64,
    pub received_at: Timestamp,
    /// Quantity of the receipt's lot handed over (or otherwise taken out) since the receipt.
    pub left_since: i64,
    /// On hand of the receipt's lot now.
    pub on_hand: i64,
}

/// Why a reversal is refused; nothing changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ReversalRefusal {
    /// Only a supervisor reverses a receipt.
    NotSupervisor,
    /// The delivery is closed.
    DeliveryClosed,
    /// The line has no receipt to reverse (not decided, nothing accepted or released, or its
    /// receipt was reversed already).
    NothingReceived,
    /// The receipt is older than the window.
    OutsideWindow {
        window_minutes: i64,
        age_minutes: i64,
    },
    /// Some of the received stock has left the site since (handed over, written off).
    AlreadyHandedOver { received: i64, left: i64 },
}

impl ReversalRefusal {
    /// Stable code (the catalogue's key is `receiving.reverse.refused.<code>`).
    pub fn code(self) -> &'static str {
        match self {
            ReversalRefusal::NotSupervisor => "not_supervisor",
            ReversalRefusal::DeliveryClosed => "delivery_closed",
            ReversalRefusal::NothingReceived => "nothing_received",
            ReversalRefusal::OutsideWindow { .. } => "outside_window",
            ReversalRefusal::AlreadyHandedOver { .. } => "already_handed_over",
        }
    }
}

/// The refusal in English, for logs, MQTT replies and the catalogue's English text.
impl std::fmt::Display for ReversalRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReversalRefusal::NotSupervisor => {
                f.write_str("Only a supervisor may reverse a receipt")
            }
            ReversalRefusal::DeliveryClosed => {
                f.write_str("The delivery is closed: its receipts can no longer be reversed")
            }
            ReversalRefusal::NothingReceived => f.write_str("This line has no receipt to reverse"),
            ReversalRefusal::OutsideWindow {
                window_minutes,
                age_minutes,
            } => write!(
                f,
                "The receipt is {age_minutes} min old: it can only be reversed within {window_minutes} min"
            ),
            ReversalRefusal::AlreadyHandedOver { received, left } => write!(
                f,
                "{left} of the {received} received have already left the site: the receipt cannot be reversed"
            ),
        }
    }
}

/// Whether `receipt` may be reversed now, and if so the quantity the reversal movement takes
/// out (all of the receipt). `window_minutes` is the configured window after the receipt; a
/// clock that went back (a receipt "in the future") counts as inside it.
pub fn reversal_blocker(
    supervisor: bool,
    delivery_closed: bool,
    receipt: Option<LastReceipt>,
    window_minutes: i64,
    now: Timestamp,
) -> Result<i64, ReversalRefusal> {
    if !supervisor {
        return Err(ReversalRefusal::NotSupervisor);
    }
    if delivery_closed {
        return Err(ReversalRefusal::DeliveryClosed);
    }
    let receipt = receipt
        .filter(|r| r.received > 0)
        .ok_or(ReversalRefusal::NothingReceived)?;
    let age_ms = (now.millis() - receipt.received_at.millis()).max(0);
    if age_ms > window_minutes.saturating_mul(60_000) {
        return Err(ReversalRefusal::OutsideWindow {
            window_minutes,
            age_minutes: age_ms / 60_000,
        });
    }
    let left = receipt
        .left_since
        .max(receipt.received - receipt.on_hand)
        .max(0);
    if left > 0 {
        return Err(ReversalRefusal::AlreadyHandedOver {
            received: receipt.received,
            left,
        });
    }
    Ok(receipt.received)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn receipt(received: i64, at_min: i64, left_since: i64, on_hand: i64) -> Option<LastReceipt> {
        Some(LastReceipt {
            received,
            received_at: Timestamp(at_min * MIN),
            left_since,
            on_hand,
        })
    }

    #[test]
    fn a_supervisor_reverses_a_whole_receipt_inside_the_window_and_nothing_else() {
        let now = Timestamp(100 * MIN);
        let window = 30;
        let cases = [
            // (supervisor, closed, receipt, expected)
            (true, false, receipt(10, 90, 0, 10), Ok(10)),
            (true, false, receipt(10, 70, 0, 25), Ok(10)),
            // Clock went back: the receipt is not older than the window.
            (true, false, receipt(10, 120, 0, 10), Ok(10)),
            (
                false,
                false,
                receipt(10, 90, 0, 10),
                Err(ReversalRefusal::NotSupervisor),
            ),
            (
                true,
                true,
                receipt(10, 90, 0, 10),
                Err(ReversalRefusal::DeliveryClosed),
            ),
            (true, false, None, Err(ReversalRefusal::NothingReceived)),
            (
                true,
                false,
                receipt(0, 90, 0, 0),
                Err(ReversalRefusal::NothingReceived),
            ),
            (
                true,
                false,
                receipt(10, 69, 0, 10),
                Err(ReversalRefusal::OutsideWindow {
                    window_minutes: 30,
                    age_minutes: 31,
                }),
            ),
            (
                true,
                false,
                receipt(10, 90, 3, 20),
                Err(ReversalRefusal::AlreadyHandedOver {
                    received: 10,
                    left: 3,
                }),
            ),
            // Less on hand than was received: some of it left, whatever took it.
            (
                true,
                false,
                receipt(10, 90, 0, 8),
                Err(ReversalRefusal::AlreadyHandedOver {
                    received: 10,
                    left: 2,
                }),
            ),
        ];
        for (supervisor, closed, r, expected) in cases {
            assert_eq!(
                reversal_blocker(supervisor, closed, r, window, now),
                expected,
                "{supervisor} {closed} {r:?}"
            );
        }
    }

    #[test]
    fn every_reversal_reason_reads_back_and_nothing_else_does() {
        for reason in ReversalReason::ALL {
            assert_eq!(ReversalReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(ReversalReason::parse("looks_odd"), None);
        assert_eq!(ReversalReason::parse(""), None);
    }
}

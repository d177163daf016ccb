//! Stock corrections a supervisor records on the stock screen: a **stocktake** (the counted
//! quantity of a lot replaces what the ledger holds, through one signed adjustment) and a
//! **loss** (spoiled, damaged, missing or expired goods written off with their reason).
//!
//! The rules of what may be recorded live here, pure; the workflow
//! (`hub::workflows::stock`) reads the lot, asks these rules, and journals the movement.

use serde::{Deserialize, Serialize};

/// Largest quantity one correction may name, in the SKU's unit (pieces or grams): 10 t of a
/// gram SKU. A count beyond it is a typing slip (an extra zero, a barcode in the count field).
pub const MAX_CORRECTION: i64 = 10_000_000;

/// Why goods were written off; a supervisor picks one from this list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossReason {
    Spoiled,
    Damaged,
    Missing,
    Expired,
}

impl LossReason {
    /// Every reason, in the order a screen lists them.
    pub const ALL: [LossReason; 4] = [
        LossReason::Spoiled,
        LossReason::Damaged,
        LossReason::Missing,
        LossReason::Expired,
    ];

    /// Stable name (stored in the movement's reason, sent upstream).
    pub fn as_str(self) -> &'static str {
        match self {
            LossReason::Spoiled => "spoiled",
            LossReason::Damaged => "damaged",
            LossReason::Missing => "missing",
            LossReason::Expired => "expired",
        }
    }

    /// Reads the name written by [`LossReason::as_str`].
    pub fn parse(text: &str) -> Option<LossReason> {
        LossReason::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// Why a correction cannot be recorded; nothing changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorrectionError {
    #[error("a count of {0} is negative; count what is on the shelf (0 or more)")]
    NegativeCount(i64),
    #[error("a quantity of {0} is not possible here (at most {MAX_CORRECTION}); check the number")]
    Absurd(i64),
    #[error("a loss of {0} must be at least 1")]
    NotPositive(i64),
    #[error(
        "a loss of {loss} is more than the {on_hand} on hand in this lot; count the lot instead"
    )]
    MoreThanOnHand { loss: i64, on_hand: i64 },
    #[error("the count equals the {0} on hand: nothing to correct")]
    NothingToCorrect(i64),
}

impl CorrectionError {
    /// Stable code, for the catalogue's words.
    pub fn code(&self) -> &'static str {
        match self {
            CorrectionError::NegativeCount(_) => "negative_count",
            CorrectionError::Absurd(_) => "absurd",
            CorrectionError::NotPositive(_) => "not_positive",
            CorrectionError::MoreThanOnHand { .. } => "more_than_on_hand",
            CorrectionError::NothingToCorrect(_) => "nothing_to_correct",
        }
    }
}

/// The signed adjustment that makes a lot holding `on_hand` hold `counted`.
pub fn stocktake_delta(on_hand: i64, counted: i64) -> Result<i64, CorrectionError> {
    if counted < 0 {
        return Err(CorrectionError::NegativeCount(counted));
    }
    if counted > MAX_CORRECTION {
        return Err(CorrectionError::Absurd(counted));
    }
    match counted - on_hand {
        0 => Err(CorrectionError::NothingToCorrect(on_hand)),
        delta => Ok(delta),
    }
}

/// Checks a loss of `quantity` from a lot holding `on_hand`.
pub fn check_loss(on_hand: i64, quantity: i64) -> Result<(), CorrectionError> {
    if quantity < 1 {
        return Err(CorrectionError::NotPositive(quantity));
    }
    if quantity > MAX_CORRECTION {
        return Err(CorrectionError::Absurd(quantity));
    }
    if quantity > on_hand {
        return Err(CorrectionError::MoreThanOnHand {
            loss: quantity,
            on_hand,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_becomes_the_signed_difference_and_bad_counts_are_refused() {
        assert_eq!(stocktake_delta(10, 7), Ok(-3));
        assert_eq!(stocktake_delta(10, 12), Ok(2));
        assert_eq!(
            stocktake_delta(-2, 0),
            Ok(2),
            "a negative balance counted empty"
        );
        assert_eq!(
            stocktake_delta(10, 10),
            Err(CorrectionError::NothingToCorrect(10))
        );
        assert_eq!(
            stocktake_delta(10, -1),
            Err(CorrectionError::NegativeCount(-1))
        );
        assert_eq!(
            stocktake_delta(10, MAX_CORRECTION + 1),
            Err(CorrectionError::Absurd(MAX_CORRECTION + 1))
        );
    }

    #[test]
    fn a_loss_is_positive_and_never_more_than_the_lot_holds() {
        assert_eq!(check_loss(5, 5), Ok(()));
        assert_eq!(check_loss(5, 0), Err(CorrectionError::NotPositive(0)));
        assert_eq!(
            check_loss(5, 6),
            Err(CorrectionError::MoreThanOnHand {
                loss: 6,
                on_hand: 5
            })
        );
        assert!(matches!(
            check_loss(i64::MAX, i64::MAX),
            Err(CorrectionError::Absurd(_))
        ));
    }

    #[test]
    fn loss_reasons_read_back_their_names() {
        for r in LossReason::ALL {
            assert_eq!(LossReason::parse(r.as_str()), Some(r));
        }
        assert_eq!(LossReason::parse("stolen"), None);
    }
}

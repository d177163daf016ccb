//! Stock ledger rules: an append-only journal of movements and the balances it implies.
//!
//! A movement is planned against a read-only [`BalanceView`]; the plan says whether it is a
//! duplicate (same id, same content: applied once), or what the balances become. Refusals are
//! typed errors. Persisting the plan is the store's job; this module never writes anything.

use crate::domain::{BatchKey, MovementId, SkuCode, Timestamp};
use serde::{Deserialize, Serialize};

/// What kind of stock change a movement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    /// Goods accepted from a delivery.
    Receipt,
    /// Goods handed over to a customer.
    Issue,
    /// Goods brought back by a customer (back into sellable stock).
    Return,
    /// A stocktake correction; the quantity is a signed delta.
    Adjustment,
    /// Spoiled, damaged or missing goods written off.
    Loss,
    /// Goods arriving from another site.
    TransferIn,
    /// Goods sent to another site.
    TransferOut,
}

impl MovementKind {
    /// Every kind, for tables and generators.
    pub const ALL: [MovementKind; 7] = [
        MovementKind::Receipt,
        MovementKind::Issue,
        MovementKind::Return,
        MovementKind::Adjustment,
        MovementKind::Loss,
        MovementKind::TransferIn,
        MovementKind::TransferOut,
    ];

    /// Stable lowercase name, used in storage and payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            MovementKind::Receipt => "receipt",
            MovementKind::Issue => "issue",
            MovementKind::Return => "return",
            MovementKind::Adjustment => "adjustment",
            MovementKind::Loss => "loss",
            MovementKind::TransferIn => "transfer_in",
            MovementKind::TransferOut => "transfer_out",
        }
    }

    /// Parses the name written by [`MovementKind::as_str`].
    pub fn parse(text: &str) -> Option<MovementKind> {
        MovementKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Whether a person must say why (write-offs and stocktake corrections).
    pub fn needs_reason(self) -> bool {
        matches!(self, MovementKind::Adjustment | MovementKind::Loss)
    }
}

/// One entry of the stock journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    /// Unique id; the same id twice is applied once.
    pub id: MovementId,
    pub sku: SkuCode,
    /// The batch the stock belongs to, when known.
    pub batch: Option<BatchKey>,
    pub kind: MovementKind,
    /// Magnitude in the SKU's unit (> 0); for [`MovementKind::Adjustment`] a signed, non-zero delta.
    pub quantity: i64,
    /// Why (free text; required for adjustments and losses).
    pub reason: String,
    /// What it belongs to: a delivery, an order, a stocktake, ...
    pub reference: String,
    /// When it happened, as recorded by the hub.
    pub at: Timestamp,
}

impl Movement {
    /// The signed change this movement makes to the balance.
    pub fn delta(&self) -> i64 {
        match self.kind {
            MovementKind::Receipt | MovementKind::Return | MovementKind::TransferIn => {
                self.quantity
            }
            MovementKind::Issue | MovementKind::Loss | MovementKind::TransferOut => -self.quantity,
            MovementKind::Adjustment => self.quantity,
        }
    }

    /// Whether two movements with the same id describe the same thing (time excluded, so a
    /// retried request with a fresh timestamp is still a duplicate).
    pub fn same_content(&self, other: &Movement) -> bool {
        self.id == other.id
            && self.sku == other.sku
            && self.batch == other.batch
            && self.kind == other.kind
            && self.quantity == other.quantity
            && self.reason == other.reason
            && self.reference == other.reference
    }
}

/// Why a movement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("SKU {sku} is unknown; SKU master data must arrive before stock moves")]
    UnknownSku { sku: SkuCode },
    #[error("movement {id}: quantity must be greater than zero for a {kind}, got {quantity}")]
    NonPositiveQuantity {
        id: MovementId,
        kind: &'static str,
        quantity: i64,
    },
    #[error("movement {id}: an adjustment of zero changes nothing")]
    ZeroAdjustment { id: MovementId },
    #[error("movement {id}: a {kind} needs a reason")]
    MissingReason { id: MovementId, kind: &'static str },
    #[error(
        "movement {id} would take {sku}{batch} to {after} (on hand {on_hand}); negative stock is not allowed for this SKU"
    )]
    InsufficientStock {
        id: MovementId,
        sku: SkuCode,
        /// `" batch LOT"` or empty.
        batch: String,
        on_hand: i64,
        after: i64,
    },
    #[error("movement id {id} was already used for a different movement; ids must be unique")]
    IdReused { id: MovementId },
    #[error("movement {id}: balance of {sku} would overflow")]
    Overflow { id: MovementId, sku: SkuCode },
}

/// What the ledger rules need to know about the current state. The store implements it over
/// SQLite inside the writing transaction; tests implement it over maps.
pub trait BalanceView {
    /// Whether the SKU exists and whether it may go negative; `None` if unknown.
    fn sku_allows_negative(&self, sku: &SkuCode) -> Option<bool>;
    /// Current on-hand quantity of the SKU over all batches.
    fn sku_balance(&self, sku: &SkuCode) -> i64;
    /// Current on-hand quantity of one batch of the SKU.
    fn batch_balance(&self, sku: &SkuCode, batch: &BatchKey) -> i64;
    /// The movement already journaled under this id, if any.
    fn existing_movement(&self, id: &MovementId) -> Option<Movement>;
}

/// The outcome of planning a movement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MovementPlan {
    /// Same id and content as a journaled movement: nothing to do, report success.
    Duplicate,
    /// Journal it and set the balances to these values.
    Apply {
        delta: i64,
        sku_balance_after: i64,
        batch_balance_after: Option<i64>,
    },
}

/// Decides what a movement does to the ledger, without changing anything.
pub fn plan_movement(
    view: &impl BalanceView,
    movement: &Movement,
) -> Result<MovementPlan, LedgerError> {
    let id = &movement.id;
    if let Some(existing) = view.existing_movement(id) {
        return if existing.same_content(movement) {
            Ok(MovementPlan::Duplicate)
        } else {
            Err(LedgerError::IdReused { id: id.clone() })
        };
    }
    match movement.kind {
        MovementKind::Adjustment if movement.quantity == 0 => {
            return Err(LedgerError::ZeroAdjustment { id: id.clone() });
        }
        MovementKind::Adjustment => {}
        kind if movement.quantity <= 0 => {
            return Err(LedgerError::NonPositiveQuantity {
                id: id.clone(),
                kind: kind.as_str(),
                quantity: movement.quantity,
            });
        }
        _ => {}
    }
    if movement.kind.needs_reason() && movement.reason.trim().is_empty() {
        return Err(LedgerError::MissingReason {
            id: id.clone(),
            kind: movement.kind.as_str(),
        });
    }
    let allows_negative =
        view.sku_allows_negative(&movement.sku)
            .ok_or_else(|| LedgerError::UnknownSku {
                sku: movement.sku.clone(),
            })?;

    let delta = movement.delta();
    let overflow = || LedgerError::Overflow {
        id: id.clone(),
        sku: movement.sku.clone(),
    };
    let sku_before = view.sku_balance(&movement.sku);
    let sku_after = sku_before.checked_add(delta).ok_or_else(overflow)?;
    let batch_before_after = match &movement.batch {
        Some(batch) => {
            let before = view.batch_balance(&movement.sku, batch);
            Some((before, before.checked_add(delta).ok_or_else(overflow)?))
        }
        None => None,
    };

    // Only a decrease can be refused: a receipt into a negative balance always helps.
    if !allows_negative && delta < 0 {
        let refuse = |on_hand: i64, after: i64, batch: String| LedgerError::InsufficientStock {
            id: id.clone(),
            sku: movement.sku.clone(),
            batch,
            on_hand,
            after,
        };
        if sku_after < 0 {
            return Err(refuse(sku_before, sku_after, String::new()));
        }
        if let (Some((before, after)), Some(batch)) = (batch_before_after, &movement.batch)
            && after < 0
        {
            return Err(refuse(before, after, format!(" batch {}", batch.lot)));
        }
    }
    Ok(MovementPlan::Apply {
        delta,
        sku_balance_after: sku_after,
        batch_balance_after: batch_before_after.map(|(_, after)| after),
    })
}

pub mod memory {
    //! An in-memory ledger over maps: the reference model the store is checked against.

    use super::*;
    use std::collections::BTreeMap;

    /// Balances and journal kept in maps.
    #[derive(Debug, Default, Clone)]
    pub struct MemoryLedger {
        pub allow_negative: BTreeMap<SkuCode, bool>,
        pub sku_balances: BTreeMap<SkuCode, i64>,
        pub batch_balances: BTreeMap<(SkuCode, BatchKey), i64>,
        pub journal: Vec<Movement>,
    }

    impl BalanceView for MemoryLedger {
        fn sku_allows_negative(&self, sku: &SkuCode) -> Option<bool> {
            self.allow_negative.get(sku).copied()
        }
        fn sku_balance(&self, sku: &SkuCode) -> i64 {
            self.sku_balances.get(sku).copied().unwrap_or(0)
        }
        fn batch_balance(&self, sku: &SkuCode, batch: &BatchKey) -> i64 {
            self.batch_balances
                .get(&(sku.clone(), batch.clone()))
                .copied()
                .unwrap_or(0)
        }
        fn existing_movement(&self, id: &MovementId) -> Option<Movement> {
            self.journal.iter().find(|m| &m.id == id).cloned()
        }
    }

    impl MemoryLedger {
        /// Plans and, if allowed, applies a movement.
        pub fn apply(&mut self, movement: &Movement) -> Result<MovementPlan, LedgerError> {
            let plan = plan_movement(self, movement)?;
            if let MovementPlan::Apply {
                sku_balance_after,
                batch_balance_after,
                ..
            } = &plan
            {
                self.sku_balances
                    .insert(movement.sku.clone(), *sku_balance_after);
                if let (Some(batch), Some(after)) = (&movement.batch, batch_balance_after) {
                    self.batch_balances
                        .insert((movement.sku.clone(), batch.clone()), *after);
                }
                self.journal.push(movement.clone());
            }
            Ok(plan)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::memory::MemoryLedger;
    use super::*;
    use proptest::prelude::*;

    fn sku(code: &str) -> SkuCode {
        SkuCode::new(code).unwrap()
    }

    fn mv(
        id: &str,
        sku_code: &str,
        lot: Option<&str>,
        kind: MovementKind,
        quantity: i64,
    ) -> Movement {
        Movement {
            id: MovementId::new(id).unwrap(),
            sku: sku(sku_code),
            batch: lot.map(|l| BatchKey::new(l, None).unwrap()),
            kind,
            quantity,
            reason: if kind.needs_reason() {
                "stocktake".into()
            } else {
                String::new()
            },
            reference: "test".into(),
            at: Timestamp(0),
        }
    }

    fn ledger() -> MemoryLedger {
        let mut l = MemoryLedger::default();
        l.allow_negative.insert(sku("A"), false);
        l.allow_negative.insert(sku("NEG"), true);
        l
    }

    #[test]
    fn each_kind_moves_stock_in_its_direction() {
        let table = [
            (MovementKind::Receipt, 5, 5),
            (MovementKind::Return, 5, 5),
            (MovementKind::TransferIn, 5, 5),
            (MovementKind::Issue, 5, -5),
            (MovementKind::Loss, 5, -5),
            (MovementKind::TransferOut, 5, -5),
            (MovementKind::Adjustment, -3, -3),
            (MovementKind::Adjustment, 3, 3),
        ];
        for (kind, quantity, delta) in table {
            assert_eq!(
                mv("x", "A", None, kind, quantity).delta(),
                delta,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn refuses_negative_stock_per_sku_and_per_batch() {
        let mut l = ledger();
        l.apply(&mv("r1", "A", Some("L1"), MovementKind::Receipt, 10))
            .unwrap();
        l.apply(&mv("r2", "A", Some("L2"), MovementKind::Receipt, 2))
            .unwrap();
        let err = l
            .apply(&mv("i1", "A", Some("L2"), MovementKind::Issue, 3))
            .unwrap_err();
        assert!(
            matches!(
                err,
                LedgerError::InsufficientStock {
                    on_hand: 2,
                    after: -1,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("batch L2"));
        let err = l
            .apply(&mv("i2", "A", None, MovementKind::Issue, 13))
            .unwrap_err();
        assert!(matches!(
            err,
            LedgerError::InsufficientStock {
                on_hand: 12,
                after: -1,
                ..
            }
        ));
        assert_eq!(l.sku_balance(&sku("A")), 12);
    }

    #[test]
    fn negative_allowed_skus_may_go_below_zero() {
        let mut l = ledger();
        l.apply(&mv("i1", "NEG", None, MovementKind::Issue, 4))
            .unwrap();
        assert_eq!(l.sku_balance(&sku("NEG")), -4);
    }

    #[test]
    fn duplicates_apply_once_and_reused_ids_are_refused() {
        let mut l = ledger();
        let first = mv("r1", "A", None, MovementKind::Receipt, 10);
        assert!(matches!(
            l.apply(&first).unwrap(),
            MovementPlan::Apply { .. }
        ));
        let mut retried = first.clone();
        retried.at = Timestamp(99);
        assert_eq!(l.apply(&retried).unwrap(), MovementPlan::Duplicate);
        assert_eq!(l.sku_balance(&sku("A")), 10);
        let other = mv("r1", "A", None, MovementKind::Receipt, 11);
        assert!(matches!(l.apply(&other), Err(LedgerError::IdReused { .. })));
    }

    #[test]
    fn refuses_malformed_movements_with_reasons() {
        let mut l = ledger();
        assert!(matches!(
            l.apply(&mv("q", "A", None, MovementKind::Receipt, 0)),
            Err(LedgerError::NonPositiveQuantity { .. })
        ));
        assert!(matches!(
            l.apply(&mv("z", "A", None, MovementKind::Adjustment, 0)),
            Err(LedgerError::ZeroAdjustment { .. })
        ));
        let mut loss = mv("l", "A", None, MovementKind::Loss, 1);
        loss.reason = " ".into();
        assert!(matches!(
            l.apply(&loss),
            Err(LedgerError::MissingReason { .. })
        ));
        assert!(matches!(
            l.apply(&mv("u", "B", None, MovementKind::Receipt, 1)),
            Err(LedgerError::UnknownSku { .. })
        ));
        assert!(l.journal.is_empty());
    }

    fn arb_movement() -> impl Strategy<Value = Movement> {
        (
            0u8..40,
            prop_oneof![Just("A"), Just("NEG"), Just("UNKNOWN")],
            proptest::option::of(prop_oneof![Just("L1"), Just("L2")]),
            proptest::sample::select(MovementKind::ALL.to_vec()),
            -20i64..40,
        )
            .prop_map(|(id, sku_code, lot, kind, quantity)| {
                mv(&format!("m{id}"), sku_code, lot, kind, quantity)
            })
    }

    proptest! {
        #[test]
        fn balances_equal_the_sum_of_applied_movements(moves in proptest::collection::vec(arb_movement(), 0..120)) {
            let mut l = ledger();
            for m in &moves {
                let _ = l.apply(m);
            }
            // Every id is journaled at most once.
            let mut ids: Vec<_> = l.journal.iter().map(|m| m.id.clone()).collect();
            ids.sort();
            ids.dedup();
            prop_assert_eq!(ids.len(), l.journal.len());
            for (code, balance) in &l.sku_balances {
                let sum: i64 = l.journal.iter().filter(|m| &m.sku == code).map(Movement::delta).sum();
                prop_assert_eq!(*balance, sum);
                if !l.allow_negative[code] {
                    prop_assert!(*balance >= 0);
                }
            }
            for ((code, batch), balance) in &l.batch_balances {
                let sum: i64 = l.journal.iter()
                    .filter(|m| &m.sku == code && m.batch.as_ref() == Some(batch))
                    .map(Movement::delta).sum();
                prop_assert_eq!(*balance, sum);
                if !l.allow_negative[code] {
                    prop_assert!(*balance >= 0);
                }
            }
        }
    }
}

//! The simulator's trailing-average policy is the hub's current stock rule: for any sequence of
//! stock figures, `hub_forecast::trailing_step` gives the same tier and the same request as
//! `hub_core::alerts::evaluate` with the hub's default policy, central acknowledging each
//! request at once (as the simulator assumes).

use hub_core::alerts::{
    self, Measure, SkuAlertState, StockAction, StockFigures, Tier as HubTier, TierPolicy,
};
use hub_core::domain::{SkuCode, Timestamp};
use hub_forecast::{CoverTiers, Tier, TrailingState, trailing_step};
use proptest::prelude::*;

/// The hub's default policy (hub/src/config.rs `validate_alerts` defaults).
fn hub_default() -> TierPolicy {
    TierPolicy {
        measure: Measure::DaysOfCover,
        yellow: 3.0,
        orange: 2.0,
        red: 1.0,
        hysteresis: 0.15,
        replenish_at: HubTier::Red,
        target: 5.0,
        re_request_after_ms: 240 * 60_000,
    }
}

fn same(t: Tier, h: HubTier) -> bool {
    matches!(
        (t, h),
        (Tier::Normal, HubTier::Normal)
            | (Tier::Yellow, HubTier::Yellow)
            | (Tier::Orange, HubTier::Orange)
            | (Tier::Red, HubTier::Red)
    )
}

fn check(
    steps: &[(i64, i64, f64)],
    tiers: &CoverTiers,
    policy: &TierPolicy,
) -> Result<(), TestCaseError> {
    let sku = SkuCode::new("FRESH-QINGCAI-01").unwrap();
    let mut hub = SkuAlertState::default();
    let mut mine = TrailingState::default();
    for (i, &(on_hand, committed, daily)) in steps.iter().enumerate() {
        // A day apart: the re-request interval has always passed, only the ack stops repeats.
        let now = Timestamp(i as i64 * 86_400_000);
        let figures = StockFigures {
            on_hand,
            committed,
            daily_demand: daily,
        };
        let (next, actions) = alerts::evaluate(&sku, &hub, &figures, policy, now);
        hub = next;
        let hub_request = actions.iter().find_map(|a| match a {
            StockAction::RequestReplenishment {
                suggested_quantity,
                episode_id,
                ..
            } => Some((*suggested_quantity, episode_id.clone())),
            _ => None,
        });
        if let Some((_, id)) = &hub_request {
            prop_assert!(alerts::acknowledge(&mut hub, id));
        }
        let (next, request) = trailing_step(mine, on_hand - committed, daily, tiers);
        mine = next;
        prop_assert!(
            same(mine.tier, hub.tier),
            "step {i}: {:?} vs {:?}",
            mine.tier,
            hub.tier
        );
        prop_assert_eq!(request, hub_request.map(|r| r.0), "step {}", i);
        prop_assert_eq!(mine.episode_open, hub.episode.is_some(), "step {}", i);
    }
    Ok(())
}

#[test]
fn a_replenishment_episode_by_hand() {
    // Cover 10 → 2.5 (yellow) → 0.8 (red: ask for 5 × 10 − 8 = 42) → 0.5 (open episode: silent)
    // → 4 (normal: episode ends) → 0 with no sales (infinite cover: never asks).
    let steps = [
        (100, 0, 10.0),
        (25, 0, 10.0),
        (8, 0, 10.0),
        (5, 0, 10.0),
        (40, 0, 10.0),
        (0, 0, 0.0),
    ];
    check(&steps, &CoverTiers::default(), &hub_default()).unwrap();
    let mut state = TrailingState::default();
    let mut requests = vec![];
    for (on_hand, committed, daily) in steps {
        let (next, r) = trailing_step(state, on_hand - committed, daily, &CoverTiers::default());
        state = next;
        requests.push(r);
    }
    assert_eq!(requests, vec![None, None, Some(42), None, None, None]);
}

proptest! {
    #[test]
    fn trailing_policy_is_the_hubs_rule(
        steps in proptest::collection::vec((0i64..200, 0i64..30, prop_oneof![Just(0.0), 0.0f64..40.0]), 1..80),
        replenish_at_orange in proptest::bool::ANY,
    ) {
        let mut policy = hub_default();
        let mut tiers = CoverTiers::default();
        if replenish_at_orange {
            policy.replenish_at = HubTier::Orange;
            tiers.replenish_at = Tier::Orange;
        }
        check(&steps, &tiers, &policy)?;
    }
}

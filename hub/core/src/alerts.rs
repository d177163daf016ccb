//! Stock alert tiers, replenishment episodes, and the generic open-alert book.
//!
//! Tiers (yellow / orange / red) are computed from projected days of cover or absolute levels,
//! with hysteresis: a worse tier is entered as soon as its threshold is crossed, but a better
//! one only once the figure clears the threshold by the hysteresis margin, so a level bouncing
//! on a threshold does not flap. Entering the replenishment tier starts an *episode* that asks
//! central for stock exactly once; no second request until central acknowledges, the episode
//! ends, or the re-request interval passes. State is plain data the store persists, so
//! restarts never duplicate a request. Pure: time and figures come in as arguments.

use crate::domain::{SkuCode, Timestamp};
use serde::{Deserialize, Serialize};

/// Alert severity; for stock, how low it is. Ordered: `Normal < Yellow < Orange < Red`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Normal,
    Yellow,
    Orange,
    Red,
}

impl Tier {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Normal => "normal",
            Tier::Yellow => "yellow",
            Tier::Orange => "orange",
            Tier::Red => "red",
        }
    }

    /// Parses [`Tier::as_str`].
    pub fn parse(text: &str) -> Option<Tier> {
        [Tier::Normal, Tier::Yellow, Tier::Orange, Tier::Red]
            .into_iter()
            .find(|t| t.as_str() == text)
    }
}

/// What the thresholds are measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// (on hand − committed) ÷ recent daily demand.
    DaysOfCover,
    /// (on hand − committed), in the SKU's unit.
    Absolute,
}

/// Per-SKU tier configuration (from central or the site config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierPolicy {
    pub measure: Measure,
    /// At or below this figure the tier is at least yellow.
    pub yellow: f64,
    pub orange: f64,
    pub red: f64,
    /// Fraction by which a figure must clear a threshold to improve a tier (e.g. 0.1).
    pub hysteresis: f64,
    /// The tier at which stock is requested: orange or red.
    pub replenish_at: Tier,
    /// Target figure after replenishment (days of cover or units); sets the suggested quantity.
    pub target: f64,
    /// A request not acknowledged within this time may be sent again.
    pub re_request_after_ms: i64,
}

/// Why a tier policy is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("thresholds must satisfy red ({red}) <= orange ({orange}) <= yellow ({yellow})")]
    Order {
        red: String,
        orange: String,
        yellow: String,
    },
    #[error("hysteresis {0} must be between 0 and 1")]
    Hysteresis(String),
    #[error("replenish_at must be orange or red, not {0}")]
    ReplenishTier(&'static str),
    #[error("target {target} must be above the yellow threshold {yellow}")]
    Target { target: String, yellow: String },
}

impl TierPolicy {
    /// Checks that the policy makes sense.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let all_finite = [self.red, self.orange, self.yellow, self.target]
            .iter()
            .all(|v| v.is_finite());
        if !(all_finite && self.red <= self.orange && self.orange <= self.yellow) {
            return Err(PolicyError::Order {
                red: self.red.to_string(),
                orange: self.orange.to_string(),
                yellow: self.yellow.to_string(),
            });
        }
        if !(0.0..1.0).contains(&self.hysteresis) {
            return Err(PolicyError::Hysteresis(self.hysteresis.to_string()));
        }
        if !matches!(self.replenish_at, Tier::Orange | Tier::Red) {
            return Err(PolicyError::ReplenishTier(self.replenish_at.as_str()));
        }
        if self.target <= self.yellow {
            return Err(PolicyError::Target {
                target: self.target.to_string(),
                yellow: self.yellow.to_string(),
            });
        }
        Ok(())
    }

    fn tier_for(&self, figure: f64, inflate: f64) -> Tier {
        // Inflating by the hysteresis margin moves thresholds up, so improving needs more stock.
        let margin = |t: f64| t + t.abs() * inflate;
        if figure <= margin(self.red) {
            Tier::Red
        } else if figure <= margin(self.orange) {
            Tier::Orange
        } else if figure <= margin(self.yellow) {
            Tier::Yellow
        } else {
            Tier::Normal
        }
    }
}

/// The stock figures a tier is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StockFigures {
    pub on_hand: i64,
    /// Reserved by open pickup orders.
    pub committed: i64,
    /// Recent average demand per day, in the SKU's unit.
    pub daily_demand: f64,
}

impl StockFigures {
    /// Stock that is free to sell.
    pub fn available(&self) -> i64 {
        self.on_hand - self.committed
    }

    /// The figure the policy measures; days of cover are infinite without demand.
    pub fn figure(&self, measure: Measure) -> f64 {
        match measure {
            Measure::Absolute => self.available() as f64,
            Measure::DaysOfCover if self.daily_demand <= 0.0 => f64::INFINITY,
            Measure::DaysOfCover => self.available() as f64 / self.daily_demand,
        }
    }
}

/// The next tier given the current one, with hysteresis on the way up.
pub fn next_tier(current: Tier, figure: f64, policy: &TierPolicy) -> Tier {
    let raw = policy.tier_for(figure, 0.0);
    if raw >= current {
        raw
    } else {
        policy
            .tier_for(figure, policy.hysteresis)
            .min(current)
            .max(raw)
    }
}

/// One open replenishment episode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Episode {
    pub id: String,
    pub started_at: Timestamp,
    pub last_requested_at: Timestamp,
    pub requests_sent: u32,
    pub acknowledged: bool,
}

/// Persisted alert state of one SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuAlertState {
    pub tier: Tier,
    pub episode: Option<Episode>,
}

impl Default for SkuAlertState {
    fn default() -> Self {
        SkuAlertState {
            tier: Tier::Normal,
            episode: None,
        }
    }
}

/// What an evaluation asks the hub to record and send.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum StockAction {
    TierChanged {
        sku: SkuCode,
        from: Tier,
        to: Tier,
        figure: f64,
    },
    RequestReplenishment {
        sku: SkuCode,
        episode_id: String,
        suggested_quantity: i64,
        tier: Tier,
        repeat: u32,
        /// The forecast and plan behind the quantity (`None` on today's trailing rule).
        reasoning: Option<Box<crate::demand::ReplenishmentReasoning>>,
    },
    EpisodeEnded {
        sku: SkuCode,
        episode_id: String,
    },
}

/// Evaluates one SKU on today's rule (days of cover over the trailing average, target days of
/// cover): returns the new state and the actions (events) it implies.
pub fn evaluate(
    sku: &SkuCode,
    state: &SkuAlertState,
    figures: &StockFigures,
    policy: &TierPolicy,
    now: Timestamp,
) -> (SkuAlertState, Vec<StockAction>) {
    let target_units = match policy.measure {
        Measure::Absolute => policy.target,
        Measure::DaysOfCover => policy.target * figures.daily_demand.max(0.0),
    };
    let suggested = ((target_units - figures.available() as f64).ceil() as i64).max(1);
    step(
        sku,
        state,
        figures.figure(policy.measure),
        suggested,
        None,
        policy,
        now,
    )
}

/// Evaluates one SKU on its forecast ([`crate::replenishment::plan`]): the tier from the
/// plan's figure (forecast days of cover), a request for the plan's quantity carrying its
/// reasoning. Episodes work as in [`evaluate`]: one request per episode.
pub fn evaluate_planned(
    sku: &SkuCode,
    state: &SkuAlertState,
    plan: &crate::demand::DemandPlan,
    policy: &TierPolicy,
    now: Timestamp,
) -> (SkuAlertState, Vec<StockAction>) {
    step(
        sku,
        state,
        plan.figure,
        plan.quantity,
        Some(&plan.reasoning),
        policy,
        now,
    )
}

fn step(
    sku: &SkuCode,
    state: &SkuAlertState,
    figure: f64,
    suggested_quantity: i64,
    reasoning: Option<&crate::demand::ReplenishmentReasoning>,
    policy: &TierPolicy,
    now: Timestamp,
) -> (SkuAlertState, Vec<StockAction>) {
    let tier = next_tier(state.tier, figure, policy);
    let mut actions = Vec::new();
    if tier != state.tier {
        actions.push(StockAction::TierChanged {
            sku: sku.clone(),
            from: state.tier,
            to: tier,
            figure,
        });
    }
    let mut episode = state.episode.clone();
    let reasoning = || reasoning.map(|r| Box::new(r.clone()));
    if tier >= policy.replenish_at {
        match &mut episode {
            None => {
                let id = format!("{}-{}", sku, now.millis());
                actions.push(StockAction::RequestReplenishment {
                    sku: sku.clone(),
                    episode_id: id.clone(),
                    suggested_quantity,
                    tier,
                    repeat: 0,
                    reasoning: reasoning(),
                });
                episode = Some(Episode {
                    id,
                    started_at: now,
                    last_requested_at: now,
                    requests_sent: 1,
                    acknowledged: false,
                });
            }
            Some(e)
                if !e.acknowledged
                    && now.millis() - e.last_requested_at.millis()
                        >= policy.re_request_after_ms =>
            {
                actions.push(StockAction::RequestReplenishment {
                    sku: sku.clone(),
                    episode_id: e.id.clone(),
                    suggested_quantity,
                    tier,
                    repeat: e.requests_sent,
                    reasoning: reasoning(),
                });
                e.last_requested_at = now;
                e.requests_sent += 1;
            }
            Some(_) => {}
        }
    } else if tier <= Tier::Yellow
        && let Some(e) = episode.take()
    {
        actions.push(StockAction::EpisodeEnded {
            sku: sku.clone(),
            episode_id: e.id,
        });
    }
    (SkuAlertState { tier, episode }, actions)
}

/// Whether a staff member's acknowledgement of an alert, given at `acked_tier`, still holds now
/// that the alert stands at `tier`: it does until the alert gets worse than what was seen.
pub fn acknowledgement_holds(acked_tier: Tier, tier: Tier) -> bool {
    tier <= acked_tier
}

/// Central acknowledged a request: no more requests in this episode.
pub fn acknowledge(state: &mut SkuAlertState, episode_id: &str) -> bool {
    match &mut state.episode {
        Some(e) if e.id == episode_id => {
            e.acknowledged = true;
            true
        }
        _ => false,
    }
}

/// What an operational alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    StockLow,
    NearExpiry,
    QuarantineWaiting,
    DeviceOffline,
    OutboxBacklog,
    DiskNearlyFull,
    PickupLockout,
    /// Wrong pickup codes arrive at a sustained rate below the lockouts.
    PickupWrongCodeRate,
    EventTooLarge,
    /// A lot past its expiry is still on hand: it cannot be handed over; write it off.
    StockExpired,
    /// The database cannot be written (damaged file, full disk, failing storage).
    StoreWriteFailing,
}

impl AlertKind {
    /// Every kind, for parsing stored names.
    pub const ALL: [AlertKind; 11] = [
        AlertKind::StockLow,
        AlertKind::NearExpiry,
        AlertKind::QuarantineWaiting,
        AlertKind::DeviceOffline,
        AlertKind::OutboxBacklog,
        AlertKind::DiskNearlyFull,
        AlertKind::PickupLockout,
        AlertKind::PickupWrongCodeRate,
        AlertKind::EventTooLarge,
        AlertKind::StockExpired,
        AlertKind::StoreWriteFailing,
    ];

    /// Parses [`AlertKind::as_str`].
    pub fn parse(text: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::StockLow => "stock_low",
            AlertKind::NearExpiry => "near_expiry",
            AlertKind::QuarantineWaiting => "quarantine_waiting",
            AlertKind::DeviceOffline => "device_offline",
            AlertKind::OutboxBacklog => "outbox_backlog",
            AlertKind::DiskNearlyFull => "disk_nearly_full",
            AlertKind::PickupLockout => "pickup_lockout",
            AlertKind::PickupWrongCodeRate => "pickup_wrong_code_rate",
            AlertKind::EventTooLarge => "event_too_large",
            AlertKind::StockExpired => "stock_expired",
            AlertKind::StoreWriteFailing => "store_write_failing",
        }
    }

    /// Whether an alert of this kind is about one lot of a SKU (its subject is
    /// [`lot_subject`]).
    pub fn is_about_a_lot(self) -> bool {
        matches!(self, AlertKind::NearExpiry | AlertKind::StockExpired)
    }
}

/// The subject of an alert about one lot of a SKU: `SKU/LOT`.
pub fn lot_subject(sku: &str, lot: &str) -> String {
    format!("{sku}/{lot}")
}

/// The SKU and lot a [`lot_subject`] is about, given which codes are SKUs. SKU and lot codes
/// may both contain `/`, so the split is at the last `/` whose left side is a SKU code (the
/// longest one).
pub fn split_lot_subject(subject: &str, is_sku: impl Fn(&str) -> bool) -> Option<(&str, &str)> {
    subject
        .rmatch_indices('/')
        .map(|(i, _)| i)
        .filter(|&i| i > 0 && i + 1 < subject.len())
        .find(|&i| is_sku(&subject[..i]))
        .map(|i| (&subject[..i], &subject[i + 1..]))
}

/// A condition that should be visible until it goes away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub kind: AlertKind,
    /// What it is about: a SKU, a batch, a device, a station, ...
    pub subject: String,
    pub tier: Tier,
    pub message: String,
}

/// A change to the set of open alerts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum AlertChange {
    Raised(Alert),
    /// Same condition, different tier.
    Changed {
        from: Tier,
        alert: Alert,
    },
    Cleared {
        kind: AlertKind,
        subject: String,
    },
}

/// Compares the open alerts of one kind with the conditions observed now. Alerts of other kinds
/// are left alone, so each checker reconciles only what it observes.
pub fn reconcile(kind: AlertKind, open: &[Alert], observed: &[Alert]) -> Vec<AlertChange> {
    let mut changes = Vec::new();
    for now in observed
        .iter()
        .filter(|a| a.kind == kind && a.tier != Tier::Normal)
    {
        match open
            .iter()
            .find(|o| o.kind == kind && o.subject == now.subject)
        {
            None => changes.push(AlertChange::Raised(now.clone())),
            Some(o) if o.tier != now.tier => changes.push(AlertChange::Changed {
                from: o.tier,
                alert: now.clone(),
            }),
            Some(_) => {}
        }
    }
    for o in open.iter().filter(|o| o.kind == kind) {
        let still = observed
            .iter()
            .any(|a| a.kind == kind && a.subject == o.subject && a.tier != Tier::Normal);
        if !still {
            changes.push(AlertChange::Cleared {
                kind,
                subject: o.subject.clone(),
            });
        }
    }
    changes
}

/// The expiry alert of a batch with stock on hand, seen on the site's day `today`: a lot past
/// its expiry date (the last day it may be handed over) is `stock_expired` (red) until it is
/// written off; one close to it is `near_expiry`, tiered by [`expiry_tier`]; otherwise none.
pub fn batch_expiry_alert(
    sku: &str,
    lot: &str,
    expiry: chrono::NaiveDate,
    on_hand: i64,
    today: chrono::NaiveDate,
    warn_days: i64,
) -> Option<Alert> {
    let days_left = (expiry - today).num_days();
    let subject = lot_subject(sku, lot);
    if days_left < 0 {
        return Some(Alert {
            kind: AlertKind::StockExpired,
            subject,
            tier: Tier::Red,
            message: format!(
                "{sku} lot {lot} expired on {expiry} with {on_hand} on hand: it cannot be handed over; write it off (loss)"
            ),
        });
    }
    let tier = expiry_tier(days_left, warn_days);
    (tier != Tier::Normal).then(|| Alert {
        kind: AlertKind::NearExpiry,
        subject,
        tier,
        message: format!(
            "{sku} lot {lot} expires {expiry} ({days_left} day(s) left): hand it over first"
        ),
    })
}

/// When the one outbox backlog alert (`outbox_backlog`) shows, and how red: the whole rule, in
/// one place (the config keys are `alerts.outbox_backlog_warn_minutes`,
/// `uplink.backlog_alert_rows` and `uplink.backlog_alert_age_hours`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BacklogPolicy {
    /// Yellow once the oldest waiting event is older than this (ms).
    pub warn_after_ms: i64,
    /// Red at this many waiting events …
    pub red_rows: i64,
    /// … or once the oldest waiting event is this old (ms).
    pub red_after_ms: i64,
}

/// Tier of the outbox backlog: `undelivered` events wait, the oldest for `oldest_age_ms`.
/// Red at `red_rows` events or `red_after_ms` of age; yellow past `warn_after_ms`; normal
/// otherwise, and always when nothing waits.
pub fn backlog_tier(undelivered: i64, oldest_age_ms: i64, policy: &BacklogPolicy) -> Tier {
    if undelivered <= 0 {
        Tier::Normal
    } else if undelivered >= policy.red_rows || oldest_age_ms >= policy.red_after_ms {
        Tier::Red
    } else if oldest_age_ms > policy.warn_after_ms {
        Tier::Yellow
    } else {
        Tier::Normal
    }
}

/// Tier of a batch by days left before expiry: red when expired or expiring today, orange
/// within a day, yellow within `warn_days`.
pub fn expiry_tier(days_left: i64, warn_days: i64) -> Tier {
    match days_left {
        d if d <= 0 => Tier::Red,
        1 => Tier::Orange,
        d if d <= warn_days => Tier::Yellow,
        _ => Tier::Normal,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_lot_subject_splits_at_the_longest_sku_code_even_with_slashes_in_the_codes() {
        use super::{AlertKind, lot_subject, split_lot_subject};
        assert_eq!(lot_subject("MILK", "L1"), "MILK/L1");
        let is_sku = |c: &str| ["MILK", "MILK/2L", "RICE"].contains(&c);
        assert_eq!(split_lot_subject("MILK/L1", is_sku), Some(("MILK", "L1")));
        assert_eq!(
            split_lot_subject("MILK/2L/A/B", is_sku),
            Some(("MILK/2L", "A/B"))
        );
        assert_eq!(split_lot_subject("MILK/2L", is_sku), Some(("MILK", "2L")));
        assert_eq!(split_lot_subject("MILK/", is_sku), None, "no lot");
        assert_eq!(split_lot_subject("MILKY/L1", is_sku), None);
        assert_eq!(split_lot_subject("BREAD/L1", is_sku), None, "unknown SKU");
        assert!(AlertKind::StockExpired.is_about_a_lot());
        assert!(AlertKind::NearExpiry.is_about_a_lot());
        assert!(!AlertKind::StockLow.is_about_a_lot());
        assert!(!AlertKind::QuarantineWaiting.is_about_a_lot());
    }

    #[test]
    fn every_alert_kind_is_listed_and_parses_back() {
        use super::AlertKind;

        for kind in AlertKind::ALL {
            assert_eq!(AlertKind::parse(kind.as_str()), Some(kind));
            // A new kind must be added here, which reminds the author of `ALL`.
            match kind {
                AlertKind::StockLow
                | AlertKind::NearExpiry
                | AlertKind::QuarantineWaiting
                | AlertKind::DeviceOffline
                | AlertKind::OutboxBacklog
                | AlertKind::DiskNearlyFull
                | AlertKind::PickupLockout
                | AlertKind::PickupWrongCodeRate
                | AlertKind::EventTooLarge
                | AlertKind::StockExpired
                | AlertKind::StoreWriteFailing => {}
            }
        }
        assert_eq!(AlertKind::parse("nonsense"), None);
    }

    use super::*;

    #[test]
    fn an_acknowledgement_holds_until_the_alert_gets_worse_than_what_was_seen() {
        use Tier::*;
        for (acked, now, holds) in [
            (Yellow, Yellow, true),
            (Orange, Yellow, true),
            (Red, Orange, true),
            (Yellow, Orange, false),
            (Orange, Red, false),
            (Yellow, Red, false),
        ] {
            assert_eq!(
                acknowledgement_holds(acked, now),
                holds,
                "{acked:?} -> {now:?}"
            );
        }
    }
    use proptest::prelude::*;

    #[test]
    fn the_backlog_turns_red_at_the_documented_row_count_or_age_only() {
        const MIN: i64 = 60_000;
        const HOUR: i64 = 60 * MIN;
        let policy = BacklogPolicy {
            warn_after_ms: 60 * MIN,
            red_rows: 1_000_000,
            red_after_ms: 24 * HOUR,
        };
        let cases = [
            (0, 48 * HOUR, Tier::Normal),
            (10, 59 * MIN, Tier::Normal),
            (10, 61 * MIN, Tier::Yellow),
            (10, 6 * HOUR + MIN, Tier::Yellow),
            (10, 23 * HOUR, Tier::Yellow),
            (10, 24 * HOUR, Tier::Red),
            (1_000_000, 0, Tier::Red),
            (999_999, 2 * HOUR, Tier::Yellow),
        ];
        for (rows, age, tier) in cases {
            assert_eq!(
                backlog_tier(rows, age, &policy),
                tier,
                "{rows} rows, {age} ms"
            );
        }
    }

    fn policy() -> TierPolicy {
        TierPolicy {
            measure: Measure::Absolute,
            yellow: 30.0,
            orange: 20.0,
            red: 10.0,
            hysteresis: 0.2,
            replenish_at: Tier::Red,
            target: 60.0,
            re_request_after_ms: 3_600_000,
        }
    }

    fn figures(on_hand: i64) -> StockFigures {
        StockFigures {
            on_hand,
            committed: 0,
            daily_demand: 10.0,
        }
    }

    #[test]
    fn policies_are_validated() {
        assert!(policy().validate().is_ok());
        let mut p = policy();
        p.red = 40.0;
        assert!(matches!(p.validate(), Err(PolicyError::Order { .. })));
        let mut p = policy();
        p.replenish_at = Tier::Yellow;
        assert!(matches!(
            p.validate(),
            Err(PolicyError::ReplenishTier("yellow"))
        ));
    }

    #[test]
    fn worse_tiers_are_entered_at_once_better_ones_only_past_the_margin() {
        let p = policy();
        assert_eq!(next_tier(Tier::Normal, 31.0, &p), Tier::Normal);
        assert_eq!(next_tier(Tier::Normal, 30.0, &p), Tier::Yellow);
        assert_eq!(next_tier(Tier::Normal, 5.0, &p), Tier::Red);
        // 11 is above red (10) but not above red + 20% (12): still red.
        assert_eq!(next_tier(Tier::Red, 11.0, &p), Tier::Red);
        assert_eq!(next_tier(Tier::Red, 13.0, &p), Tier::Orange);
        assert_eq!(next_tier(Tier::Red, 100.0, &p), Tier::Normal);
    }

    #[test]
    fn days_of_cover_uses_committed_stock_and_demand() {
        let f = StockFigures {
            on_hand: 50,
            committed: 20,
            daily_demand: 10.0,
        };
        assert_eq!(f.figure(Measure::DaysOfCover), 3.0);
        assert_eq!(
            StockFigures {
                daily_demand: 0.0,
                ..f
            }
            .figure(Measure::DaysOfCover),
            f64::INFINITY
        );
    }

    #[test]
    fn one_request_per_episode_until_acknowledged_or_timed_out() {
        let p = policy();
        let sku = SkuCode::new("MILK").unwrap();
        let (s, a) = evaluate(
            &sku,
            &SkuAlertState::default(),
            &figures(8),
            &p,
            Timestamp(0),
        );
        assert_eq!(a.len(), 2, "{a:?}");
        assert!(matches!(
            &a[1],
            StockAction::RequestReplenishment {
                suggested_quantity: 52,
                repeat: 0,
                ..
            }
        ));
        let (s, a) = evaluate(&sku, &s, &figures(5), &p, Timestamp(60_000));
        assert!(a.is_empty(), "no second request within the interval: {a:?}");
        let (mut s, a) = evaluate(&sku, &s, &figures(5), &p, Timestamp(3_600_000));
        assert!(
            matches!(
                &a[..],
                [StockAction::RequestReplenishment { repeat: 1, .. }]
            ),
            "{a:?}"
        );
        let id = s.episode.clone().unwrap().id;
        assert!(acknowledge(&mut s, &id));
        let (s, a) = evaluate(&sku, &s, &figures(5), &p, Timestamp(9_000_000));
        assert!(a.is_empty(), "acknowledged: silent: {a:?}");
        let (s, a) = evaluate(&sku, &s, &figures(80), &p, Timestamp(9_100_000));
        assert_eq!(s.episode, None);
        assert!(matches!(
            &a[..],
            [
                StockAction::TierChanged {
                    to: Tier::Normal,
                    ..
                },
                StockAction::EpisodeEnded { .. }
            ]
        ));
    }

    #[test]
    fn reconcile_raises_changes_and_clears() {
        let a = |subject: &str, tier| Alert {
            kind: AlertKind::DeviceOffline,
            subject: subject.into(),
            tier,
            message: String::new(),
        };
        let other = Alert {
            kind: AlertKind::NearExpiry,
            subject: "x".into(),
            tier: Tier::Red,
            message: String::new(),
        };
        let open = vec![a("scale-1", Tier::Orange), a("scanner-1", Tier::Red), other];
        let observed = vec![a("scale-1", Tier::Red), a("scale-2", Tier::Orange)];
        let changes = reconcile(AlertKind::DeviceOffline, &open, &observed);
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert!(matches!(
            &changes[0],
            AlertChange::Changed {
                from: Tier::Orange,
                ..
            }
        ));
        assert!(matches!(&changes[1], AlertChange::Raised(al) if al.subject == "scale-2"));
        assert!(
            matches!(&changes[2], AlertChange::Cleared { subject, .. } if subject == "scanner-1")
        );
    }

    #[test]
    fn expiry_tiers() {
        assert_eq!(expiry_tier(-1, 3), Tier::Red);
        assert_eq!(expiry_tier(0, 3), Tier::Red);
        assert_eq!(expiry_tier(1, 3), Tier::Orange);
        assert_eq!(expiry_tier(3, 3), Tier::Yellow);
        assert_eq!(expiry_tier(4, 3), Tier::Normal);
    }

    #[test]
    fn an_expired_lot_is_stock_expired_not_near_expiry() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        let alert = |days: i64| {
            batch_expiry_alert(
                "MILK",
                "L1",
                today + chrono::Duration::days(days),
                5,
                today,
                2,
            )
        };
        let expired = alert(-1).unwrap();
        assert_eq!(
            (expired.kind, expired.tier, expired.subject.as_str()),
            (AlertKind::StockExpired, Tier::Red, "MILK/L1")
        );
        assert!(
            expired.message.contains("write it off"),
            "{}",
            expired.message
        );
        // The expiry day itself is the last day it may be handed over.
        let last_day = alert(0).unwrap();
        assert_eq!(
            (last_day.kind, last_day.tier),
            (AlertKind::NearExpiry, Tier::Red)
        );
        assert_eq!(alert(2).map(|a| a.tier), Some(Tier::Yellow));
        assert_eq!(alert(3), None);
    }

    proptest! {
        /// Noise smaller than the hysteresis margin around a threshold never makes a tier flap,
        /// and a whole series never asks for stock twice without an ack or the interval passing.
        #[test]
        fn noise_inside_the_margin_does_not_flap(base in 10.5f64..11.5, noise in proptest::collection::vec(-0.4f64..0.4, 1..200)) {
            let p = policy();
            let sku = SkuCode::new("A").unwrap();
            let mut state = SkuAlertState { tier: Tier::Red, episode: None };
            let mut changes = 0;
            let mut requests = 0;
            for (i, n) in noise.iter().enumerate() {
                let f = StockFigures { on_hand: 0, committed: 0, daily_demand: 1.0 };
                let figure_units = (base + n).round() as i64;
                let (s, actions) = evaluate(&sku, &state, &StockFigures { on_hand: figure_units, ..f }, &p, Timestamp(i as i64 * 1000));
                changes += actions.iter().filter(|a| matches!(a, StockAction::TierChanged { .. })).count();
                requests += actions.iter().filter(|a| matches!(a, StockAction::RequestReplenishment { .. })).count();
                state = s;
            }
            // Values stay in 10..=12: at most one move (red → orange would need > 12).
            prop_assert_eq!(changes, 0);
            prop_assert!(requests <= 1);
        }
    }
}

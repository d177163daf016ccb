//! `[pickup]`: the limits on wrong pickup codes, code-only lookups, how recent a check a
//! handover needs, how long a supervisor may undo a handover, the weight cross-check's
//! tolerance.

use super::problems::{Problems, int_in};
use serde::Deserialize;

/// Pickup-point rules.
#[derive(Debug, Clone)]
pub struct PickupConfig {
    /// Wrong guesses per station before a lockout, the window they count in, the lockout
    /// length, the site-wide hourly budget and alert level; whether a typed code alone is
    /// looked up among every open order (off by default: each such guess is compared with
    /// every open order); how recent a code check a handover needs.
    pub rules: hub_core::pickup::PickupRules,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPickup {
    max_wrong_codes: Option<i64>,
    wrong_code_window_minutes: Option<i64>,
    lockout_minutes: Option<i64>,
    site_max_wrong_codes_per_hour: Option<i64>,
    wrong_code_alert_per_hour: Option<i64>,
    allow_code_only: Option<bool>,
    check_valid_minutes: Option<i64>,
    undo_window_minutes: Option<i64>,
    bag_tolerance_g: Option<i64>,
}

pub(super) fn validate_pickup(raw: RawPickup, problems: &mut Problems) -> PickupConfig {
    let d = hub_core::pickup::AttemptPolicy::default();
    let minutes = |v: Option<i64>, default_ms: i64, path: &str, problems: &mut Problems| {
        int_in(
            v,
            (default_ms / 60_000) as usize,
            1,
            24 * 60,
            path,
            problems,
        ) as i64
            * 60_000
    };
    let rules = hub_core::pickup::PickupRules {
        attempts: hub_core::pickup::AttemptPolicy {
            max_failures: int_in(
                raw.max_wrong_codes,
                d.max_failures as usize,
                1,
                100,
                "pickup.max_wrong_codes",
                problems,
            ) as u32,
            window_ms: minutes(
                raw.wrong_code_window_minutes,
                d.window_ms,
                "pickup.wrong_code_window_minutes",
                problems,
            ),
            lockout_ms: minutes(
                raw.lockout_minutes,
                d.lockout_ms,
                "pickup.lockout_minutes",
                problems,
            ),
            site_max_per_hour: int_in(
                raw.site_max_wrong_codes_per_hour,
                d.site_max_per_hour as usize,
                1,
                10_000,
                "pickup.site_max_wrong_codes_per_hour",
                problems,
            ) as u32,
            site_alert_per_hour: int_in(
                raw.wrong_code_alert_per_hour,
                d.site_alert_per_hour as usize,
                1,
                10_000,
                "pickup.wrong_code_alert_per_hour",
                problems,
            ) as u32,
        },
        allow_code_only: raw.allow_code_only.unwrap_or(false),
        check_valid_ms: minutes(
            raw.check_valid_minutes,
            10 * 60_000,
            "pickup.check_valid_minutes",
            problems,
        ),
        undo_window_ms: minutes(
            raw.undo_window_minutes,
            15 * 60_000,
            "pickup.undo_window_minutes",
            problems,
        ),
        bag_tolerance_g: int_in(
            raw.bag_tolerance_g,
            hub_core::pickup::DEFAULT_BAG_TOLERANCE_G as usize,
            0,
            10_000,
            "pickup.bag_tolerance_g",
            problems,
        ) as i64,
    };
    PickupConfig { rules }
}

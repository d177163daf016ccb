//! `[receiving]`: acceptance rules and how long photo evidence is kept.

use super::problems::{Problems, int_in};
use serde::Deserialize;

/// Minutes either side of a delivery's expected time it still counts as on time in the report,
/// when `receiving.on_time_tolerance_minutes` is not set.
pub const DEFAULT_ON_TIME_TOLERANCE_MINUTES: i64 = 30;

/// Retention limits for evidence photos (`receiving.photo_max_age_days`,
/// `photo_max_total_mb`); held and disputed evidence is kept whatever they say.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub max_age_days: i64,
    pub max_total_bytes: u64,
}

/// Receiving rules and evidence retention.
#[derive(Debug, Clone)]
pub struct ReceivingConfig {
    pub policy: hub_core::receiving::ReceivingPolicy,
    pub retention: Retention,
    /// Minutes either side of a delivery's expected time it counts as on time in the report
    /// and the dashboard (`receiving.on_time_tolerance_minutes`).
    pub on_time_tolerance_minutes: i64,
    /// How long after a line's receipt a supervisor may reverse it
    /// (`receiving.reversal_window_minutes`).
    pub reversal_window_minutes: i64,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReceiving {
    min_days_to_expiry: Option<i64>,
    photo_required: Option<bool>,
    photo_max_age_days: Option<i64>,
    photo_max_total_mb: Option<i64>,
    on_time_tolerance_minutes: Option<i64>,
    reversal_window_minutes: Option<i64>,
}

/// Validates `[receiving]`.
pub(super) fn validate_receiving(raw: RawReceiving, problems: &mut Problems) -> ReceivingConfig {
    ReceivingConfig {
        policy: hub_core::receiving::ReceivingPolicy {
            min_days_to_expiry: int_in(
                raw.min_days_to_expiry,
                2,
                0,
                365,
                "receiving.min_days_to_expiry",
                problems,
            ) as i64,
            photo_required: raw.photo_required.unwrap_or(true),
        },
        retention: Retention {
            max_age_days: int_in(
                raw.photo_max_age_days,
                90,
                1,
                3650,
                "receiving.photo_max_age_days",
                problems,
            ) as i64,
            max_total_bytes: int_in(
                raw.photo_max_total_mb,
                2048,
                1,
                1_000_000,
                "receiving.photo_max_total_mb",
                problems,
            ) as u64
                * 1024
                * 1024,
        },
        on_time_tolerance_minutes: int_in(
            raw.on_time_tolerance_minutes,
            DEFAULT_ON_TIME_TOLERANCE_MINUTES as usize,
            0,
            720,
            "receiving.on_time_tolerance_minutes",
            problems,
        ) as i64,
        reversal_window_minutes: int_in(
            raw.reversal_window_minutes,
            30,
            1,
            24 * 60,
            "receiving.reversal_window_minutes",
            problems,
        ) as i64,
    }
}

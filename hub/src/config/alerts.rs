//! `[alerts]`: tier thresholds, expiry warnings, the outbox backlog alert and how often the
//! checks run.

use super::problems::{Problems, int_in};
use serde::Deserialize;
use std::time::Duration;

/// Alert thresholds.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    /// Tier policy for SKUs that central has not sent one for.
    pub default_policy: hub_core::alerts::TierPolicy,
    /// Batches expiring within this many days raise a yellow alert.
    pub expiry_warn_days: i64,
    /// Undelivered outbox events older than this raise the `outbox_backlog` alert (yellow).
    pub outbox_backlog_warn: Duration,
    /// The backlog alert turns red at this many undelivered rows (`uplink.backlog_alert_rows`).
    pub outbox_backlog_red_rows: i64,
    /// … or when the oldest undelivered row is this old (`uplink.backlog_alert_age_hours`).
    pub outbox_backlog_red_age: Duration,
    /// How often the periodic checks run.
    pub check_interval: Duration,
    /// Held stock waiting longer than this for review raises an alert.
    pub quarantine_warn: Duration,
    /// The pickup limits whose lockouts and wrong-guess rate the checks report (a copy of
    /// `pickup.rules.attempts`).
    pub pickup_attempts: hub_core::pickup::AttemptPolicy,
    /// Replenishment from the forecast: lead time, review period, service target.
    pub replenishment: hub_core::replenishment::ReplenishmentSettings,
}

impl AlertsConfig {
    /// The outbox backlog alert's thresholds, for `hub_core::alerts::backlog_tier`.
    pub fn backlog_policy(&self) -> hub_core::alerts::BacklogPolicy {
        hub_core::alerts::BacklogPolicy {
            warn_after_ms: self.outbox_backlog_warn.as_millis() as i64,
            red_rows: self.outbox_backlog_red_rows,
            red_after_ms: self.outbox_backlog_red_age.as_millis() as i64,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlerts {
    measure: Option<String>,
    yellow: Option<f64>,
    orange: Option<f64>,
    red: Option<f64>,
    hysteresis: Option<f64>,
    replenish_at: Option<String>,
    target: Option<f64>,
    re_request_after_minutes: Option<i64>,
    expiry_warn_days: Option<i64>,
    outbox_backlog_warn_minutes: Option<i64>,
    check_interval_seconds: Option<i64>,
    quarantine_warn_hours: Option<i64>,
    lead_time_days: Option<i64>,
    review_days: Option<i64>,
    service_target: Option<f64>,
}

pub(super) fn validate_alerts(raw: RawAlerts, problems: &mut Problems) -> AlertsConfig {
    use hub_core::alerts::{Measure, Tier, TierPolicy};
    let measure = match raw.measure.as_deref() {
        None | Some("days_of_cover") => Measure::DaysOfCover,
        Some("absolute") => Measure::Absolute,
        Some(other) => {
            problems.push(
                "alerts.measure",
                format!("'{other}' is not a measure; use \"days_of_cover\" or \"absolute\""),
            );
            Measure::DaysOfCover
        }
    };
    let replenish_at = match raw.replenish_at.as_deref() {
        None | Some("red") => Tier::Red,
        Some("orange") => Tier::Orange,
        Some(other) => {
            problems.push(
                "alerts.replenish_at",
                format!("'{other}' must be \"orange\" or \"red\""),
            );
            Tier::Red
        }
    };
    let policy = TierPolicy {
        measure,
        yellow: raw.yellow.unwrap_or(3.0),
        orange: raw.orange.unwrap_or(2.0),
        red: raw.red.unwrap_or(1.0),
        hysteresis: raw.hysteresis.unwrap_or(0.15),
        replenish_at,
        target: raw.target.unwrap_or(5.0),
        re_request_after_ms: int_in(
            raw.re_request_after_minutes,
            240,
            1,
            7 * 24 * 60,
            "alerts.re_request_after_minutes",
            problems,
        ) as i64
            * 60_000,
    };
    if let Err(e) = policy.validate() {
        problems.push("alerts", e.to_string());
    }
    AlertsConfig {
        default_policy: policy,
        expiry_warn_days: int_in(
            raw.expiry_warn_days,
            2,
            0,
            365,
            "alerts.expiry_warn_days",
            problems,
        ) as i64,
        outbox_backlog_warn: Duration::from_secs(
            int_in(
                raw.outbox_backlog_warn_minutes,
                60,
                1,
                7 * 24 * 60,
                "alerts.outbox_backlog_warn_minutes",
                problems,
            ) as u64
                * 60,
        ),
        outbox_backlog_red_rows: 1_000_000,
        outbox_backlog_red_age: Duration::from_secs(24 * 3600),
        check_interval: Duration::from_secs(int_in(
            raw.check_interval_seconds,
            60,
            1,
            3600,
            "alerts.check_interval_seconds",
            problems,
        ) as u64),
        quarantine_warn: Duration::from_secs(
            int_in(
                raw.quarantine_warn_hours,
                4,
                1,
                24 * 30,
                "alerts.quarantine_warn_hours",
                problems,
            ) as u64
                * 3600,
        ),
        pickup_attempts: hub_core::pickup::AttemptPolicy::default(),
        replenishment: hub_core::replenishment::ReplenishmentSettings {
            lead_time_days: int_in(
                raw.lead_time_days,
                0,
                0,
                60,
                "alerts.lead_time_days",
                problems,
            ) as u32,
            review_days: int_in(raw.review_days, 1, 1, 60, "alerts.review_days", problems) as u32,
            service_target: match raw.service_target {
                None => 0.95,
                Some(t) if (0.5..=0.9999).contains(&t) => t,
                Some(t) => {
                    problems.push(
                        "alerts.service_target",
                        format!("{t} must be between 0.5 and 0.9999 (e.g. 0.95: the stock lasts to the next delivery 95 times in 100)"),
                    );
                    0.95
                }
            },
        },
    }
}

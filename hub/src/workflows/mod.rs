//! Workflows: what staff and devices do. The only door for every staff or device action —
//! CLI, serial and MQTT devices, MQTT station commands, the demo and the station app all call
//! the same function here.
//!
//! A workflow composes store operations (which apply the core's rules) into one transaction,
//! so a handover, its movements, its tier re-evaluation and all their events commit together.
//! Each has an `*_in` form that runs inside the caller's transaction (a device input journals
//! itself in the same one; a station command stores its reply in it) and an async form that
//! is one durable write of its own. Workflows take the [`Site`] — what they need to know about
//! the site — not the whole configuration.

pub mod alerts;
pub mod devices;
pub mod pickup;
pub mod receiving;
pub mod rollups;
pub mod station;
pub mod stock;

use crate::codes::SitePatterns;
use crate::config::{Config, StationConfig, StationError, StationKind};
use hub_core::alerts::TierPolicy;
use hub_core::pickup::PickupRules;
use hub_core::receiving::ReceivingPolicy;
use hub_core::{SiteId, Timestamp};

/// What the workflows need to know about the site: who it is, its time zone, its stations and
/// its rules. Built once from the configuration.
#[derive(Debug, Clone)]
pub struct Site {
    pub id: SiteId,
    pub timezone: chrono_tz::Tz,
    pub stations: Vec<StationConfig>,
    pub pickup: PickupRules,
    pub receiving: ReceivingPolicy,
    /// The site's trace-code patterns (`[codes] patterns`).
    pub patterns: SitePatterns,
    /// The tier policy of SKUs central has not sent one for.
    pub tiers: TierPolicy,
    /// Lead time, review period and service target of replenishment from the forecast.
    pub replenishment: hub_core::replenishment::ReplenishmentSettings,
    /// Days before expiry a lot counts as near expiry (`alerts.expiry_warn_days`).
    pub expiry_warn_days: i64,
    /// What the report and the dashboard count with (`alerts.expiry_warn_days`,
    /// `receiving.on_time_tolerance_minutes`).
    pub report: crate::store::report::ReportSettings,
    /// Minutes after a receipt a supervisor may reverse it (`receiving.reversal_window_minutes`).
    pub reversal_window_minutes: i64,
}

impl Site {
    /// The site as its configuration describes it.
    pub fn of(config: &Config) -> Site {
        Site {
            id: config.site.id.clone(),
            timezone: config.site.timezone,
            stations: config.stations.clone(),
            pickup: config.pickup.rules,
            receiving: config.receiving.policy,
            patterns: config.codes.clone(),
            tiers: config.alerts.default_policy.clone(),
            replenishment: config.alerts.replenishment,
            expiry_warn_days: config.alerts.expiry_warn_days,
            report: crate::store::report::ReportSettings {
                expiry_warn_days: config.alerts.expiry_warn_days,
                on_time_tolerance_minutes: config.receiving.on_time_tolerance_minutes,
            },
            reversal_window_minutes: config.receiving.reversal_window_minutes,
        }
    }

    /// What stock tiers and replenishment requests are evaluated with.
    pub fn stock_rules(&self) -> crate::store::alert_book::StockRules<'_> {
        crate::store::alert_book::StockRules {
            default_policy: &self.tiers,
            timezone: self.timezone,
            replenishment: self.replenishment,
        }
    }

    /// The declared station `id`, if it is of `kind`: only declared stations may act.
    pub fn station(&self, id: &str, kind: StationKind) -> Result<&StationConfig, StationError> {
        crate::config::find_station(&self.stations, id, kind)
    }

    /// The site's calendar day holding `now`.
    pub fn today(&self, now: Timestamp) -> chrono::NaiveDate {
        crate::clock::site_date(self.timezone, now)
    }
}

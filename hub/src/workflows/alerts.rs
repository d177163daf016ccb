//! Periodic checks that raise and clear alerts: stock tiers (re-request timers, demand drift),
//! batches near expiry, expired batches still on hand (until a loss writes them off), and an
//! outbox backlog the uplink has not drained.
//!
//! The outbox backlog has exactly one alert, `outbox_backlog`, raised here: it sits in the
//! open-alert book (status page, tiers, cleared when the backlog drains, kept across restarts)
//! and works with or without an uplink. The uplink raises none of its own: an event about a
//! backlog would wait behind that very backlog before central saw it.

use crate::config::AlertsConfig;
use crate::store::{Store, StoreError, alert_book, outbox};
use hub_core::alerts::{Alert, AlertKind, Tier, backlog_tier, batch_expiry_alert};
use hub_core::{SkuCode, Timestamp};

/// What one round of checks changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CheckRound {
    pub stock_actions: usize,
    pub alert_changes: usize,
}

/// The daily forecast job: makes and stores today's day-ahead forecast of every SKU with
/// history (`store::day_forecast`) unless today's were made already; the number stored. The
/// forecasts are made on a reader and written in one transaction (the fits do not hold the
/// writer). The daemon runs it before each round of checks, so the first round of a site day
/// makes them — also offline, and on a box that was off at midnight.
pub async fn record_day_forecasts(
    store: &Store,
    site: &super::Site,
    now: Timestamp,
) -> Result<usize, StoreError> {
    use crate::store::day_forecast;
    let today = site.today(now);
    let zone = site.timezone;
    let forecasts = store
        .read(move |c| {
            if day_forecast::made(c, today)? {
                return Ok(None);
            }
            day_forecast::make_day(c, today, zone, now).map(Some)
        })
        .await?;
    let Some(forecasts) = forecasts else {
        return Ok(0);
    };
    store
        .write(move |c| day_forecast::store_day(c, today, &forecasts))
        .await
}

/// Runs every periodic check once, in one transaction.
pub async fn run_checks(
    store: &Store,
    site: &super::Site,
    config: &AlertsConfig,
    now: Timestamp,
) -> Result<CheckRound, StoreError> {
    let config = config.clone();
    let today = site.today(now);
    let site = site.clone();
    store
        .write(move |c| {
            let mut round = CheckRound::default();
            for code in crate::store::sku::codes(c)? {
                if let Ok(sku) = SkuCode::new(code) {
                    round.stock_actions +=
                        alert_book::evaluate_sku(c, &sku, &site.stock_rules(), now)?.len();
                }
            }

            // Batches on hand by the site's day: expired lots (`stock_expired`, red until they
            // are written off) and lots close to their expiry (`near_expiry`).
            let observed: Vec<Alert> = crate::store::ledger::dated_batches_on_hand(c)?
                .into_iter()
                .filter_map(|(sku, lot, expiry, on_hand)| {
                    batch_expiry_alert(
                        &sku,
                        &lot,
                        expiry.parse().ok()?,
                        on_hand,
                        today,
                        config.expiry_warn_days,
                    )
                })
                .collect();
            round.alert_changes += usize::from(alert_book::reconcile_kind(
                c,
                AlertKind::StockExpired,
                &observed,
                now,
            )?);
            round.alert_changes += usize::from(alert_book::reconcile_kind(
                c,
                AlertKind::NearExpiry,
                &observed,
                now,
            )?);

            let waiting_ms = config.quarantine_warn.as_millis() as i64;
            let observed: Vec<Alert> = crate::store::deliveries::held(c)?
                .into_iter()
                .filter(|h| now.millis() - h.since.millis() > waiting_ms)
                .map(|h| {
                    let hours = (now.millis() - h.since.millis()) / 3_600_000;
                    Alert {
                        kind: AlertKind::QuarantineWaiting,
                        subject: format!("{}/{}", h.delivery_id, h.line_no),
                        tier: if now.millis() - h.since.millis() > waiting_ms * 3 {
                            Tier::Red
                        } else {
                            Tier::Orange
                        },
                        message: format!(
                            "{} x{} (lot {}) from delivery {} held for review for {hours} h",
                            h.sku, h.quantity, h.lot, h.delivery_id
                        ),
                    }
                })
                .collect();
            round.alert_changes += usize::from(alert_book::reconcile_kind(
                c,
                AlertKind::QuarantineWaiting,
                &observed,
                now,
            )?);

            // Pickup lockouts clear when they end; a sustained wrong-guess rate stays visible.
            let pickup =
                crate::store::pickup_orders::lockout_alerts(c, &config.pickup_attempts, now)?;
            for kind in [AlertKind::PickupLockout, AlertKind::PickupWrongCodeRate] {
                let observed: Vec<Alert> =
                    pickup.iter().filter(|a| a.kind == kind).cloned().collect();
                round.alert_changes +=
                    usize::from(alert_book::reconcile_kind(c, kind, &observed, now)?);
            }

            let stats = outbox::stats(c)?;
            let backlog_age_ms = stats
                .oldest_undelivered_at
                .map(|t| now.millis() - t)
                .unwrap_or(0);
            let tier = backlog_tier(stats.undelivered, backlog_age_ms, &config.backlog_policy());
            let observed: Vec<Alert> = if tier != Tier::Normal {
                vec![Alert {
                    kind: AlertKind::OutboxBacklog,
                    subject: "uplink".into(),
                    tier,
                    message: format!(
                        "{} event(s) waiting for the uplink, oldest {} min old",
                        stats.undelivered,
                        backlog_age_ms / 60_000
                    ),
                }]
            } else {
                vec![]
            };
            round.alert_changes += usize::from(alert_book::reconcile_kind(
                c,
                AlertKind::OutboxBacklog,
                &observed,
                now,
            )?);
            Ok(round)
        })
        .await
}

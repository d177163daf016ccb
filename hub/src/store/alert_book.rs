//! Alerts as stored: per-SKU tier state and replenishment episodes, and the open-alert table.
//!
//! Stock tiers are re-evaluated in the same transaction as the change that moved stock, so a
//! tier event and its replenishment request commit with their cause and a restart can never
//! send them twice. Other alerts are reconciled by periodic checks through the same table.

use hub_contract::stored;
use hub_core::alerts::{
    Alert, AlertChange, AlertKind, SkuAlertState, StockAction, StockFigures, Tier, TierPolicy,
    acknowledge, acknowledgement_holds, evaluate_planned, reconcile,
};
use hub_core::replenishment::{self, DemandBasis, DemandInput, ReplenishmentSettings};
use hub_core::{DomainEvent, SkuCode, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::outbox::{self, sql};
use super::{StoreError, demand};

/// Raises (or re-tiers) one alert, writing an event only when something changed.
pub fn raise(conn: &Connection, alert: &Alert, now: Timestamp) -> Result<bool, StoreError> {
    let open = open_alerts(conn)?;
    let mut observed: Vec<Alert> = open
        .iter()
        .filter(|a| a.kind == alert.kind && a.subject != alert.subject)
        .cloned()
        .collect();
    observed.push(alert.clone());
    apply_changes(conn, &reconcile(alert.kind, &open, &observed), now)
}

/// Clears one alert if it is open.
pub fn clear(
    conn: &Connection,
    kind: AlertKind,
    subject: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let open = open_alerts(conn)?;
    let observed: Vec<Alert> = open
        .iter()
        .filter(|a| a.kind == kind && a.subject != subject)
        .cloned()
        .collect();
    apply_changes(conn, &reconcile(kind, &open, &observed), now)
}

/// Makes the open alerts of `kind` match what a checker observed now.
pub fn reconcile_kind(
    conn: &Connection,
    kind: AlertKind,
    observed: &[Alert],
    now: Timestamp,
) -> Result<bool, StoreError> {
    let open = open_alerts(conn)?;
    apply_changes(conn, &reconcile(kind, &open, observed), now)
}

fn apply_changes(
    conn: &Connection,
    changes: &[AlertChange],
    now: Timestamp,
) -> Result<bool, StoreError> {
    for change in changes {
        match change {
            AlertChange::Raised(alert) | AlertChange::Changed { alert, .. } => {
                conn.prepare_cached(
                    "INSERT INTO alert (kind, subject, tier, message, raised_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                     ON CONFLICT (kind, subject) DO UPDATE SET tier = ?3, message = ?4, updated_at = ?5",
                )
                .and_then(|mut st| {
                    st.execute(params![alert.kind.as_str(), alert.subject, alert.tier.as_str(), alert.message, now.millis()])
                })
                .map_err(sql(conn))?;
                forget_outgrown_acknowledgement(conn, alert)?;
                tracing::warn!(kind = alert.kind.as_str(), subject = %alert.subject, tier = alert.tier.as_str(), message = %alert.message, "alert");
                outbox::append(
                    conn,
                    &DomainEvent::AlertRaised {
                        alert: alert.clone(),
                    },
                    now,
                )?;
            }
            AlertChange::Cleared { kind, subject } => {
                conn.execute(
                    "DELETE FROM alert WHERE kind = ?1 AND subject = ?2",
                    params![kind.as_str(), subject],
                )
                .map_err(sql(conn))?;
                tracing::info!(kind = kind.as_str(), subject = %subject, "alert cleared");
                outbox::append(
                    conn,
                    &DomainEvent::AlertCleared {
                        alert_kind: *kind,
                        subject: subject.clone(),
                    },
                    now,
                )?;
            }
        }
    }
    Ok(!changes.is_empty())
}

fn parse_kind(text: &str) -> Option<AlertKind> {
    AlertKind::parse(text)
}

/// Every open alert, worst first.
pub fn open_alerts(conn: &Connection) -> Result<Vec<Alert>, StoreError> {
    let mut st = conn
        .prepare_cached("SELECT kind, subject, tier, message FROM alert")
        .map_err(sql(conn))?;
    let rows: Vec<(String, String, String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .and_then(|rows| rows.collect())
        .map_err(sql(conn))?;
    let mut alerts: Vec<Alert> = rows
        .into_iter()
        .filter_map(|(kind, subject, tier, message)| {
            Some(Alert {
                kind: parse_kind(&kind)?,
                subject,
                tier: Tier::parse(&tier)?,
                message,
            })
        })
        .collect();
    alerts.sort_by(|a, b| {
        b.tier
            .cmp(&a.tier)
            .then(a.kind.cmp(&b.kind))
            .then(a.subject.cmp(&b.subject))
    });
    Ok(alerts)
}

/// An open alert's acknowledgement goes once the alert is worse than the tier it was given at.
fn forget_outgrown_acknowledgement(conn: &Connection, alert: &Alert) -> Result<(), StoreError> {
    let acked_tier: Option<String> = conn
        .prepare_cached("SELECT acked_tier FROM alert WHERE kind = ?1 AND subject = ?2")
        .and_then(|mut st| {
            st.query_row(params![alert.kind.as_str(), alert.subject], |r| r.get(0))
                .optional()
        })
        .map_err(sql(conn))?
        .flatten();
    let holds = acked_tier
        .as_deref()
        .and_then(Tier::parse)
        .is_none_or(|t| acknowledgement_holds(t, alert.tier));
    if !holds {
        conn.prepare_cached(
            "UPDATE alert SET acked_by = NULL, acked_at = NULL, acked_tier = NULL
             WHERE kind = ?1 AND subject = ?2",
        )
        .and_then(|mut st| st.execute(params![alert.kind.as_str(), alert.subject]))
        .map_err(sql(conn))?;
    }
    Ok(())
}

/// What acknowledging an alert did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acknowledged {
    /// Recorded now, with an `alert_acknowledged` event.
    Now,
    /// Someone acknowledged it already at its present tier: nothing changed.
    Already { by: String, at: Timestamp },
    /// No such open alert (it cleared meanwhile): nothing changed.
    NotOpen,
}

/// A staff member acknowledges an open alert at its present tier (idempotent: a second
/// acknowledgement changes nothing and says who was first).
pub fn acknowledge_alert(
    conn: &Connection,
    kind: AlertKind,
    subject: &str,
    staff: &str,
    now: Timestamp,
) -> Result<Acknowledged, StoreError> {
    let row: Option<(String, Option<String>, Option<i64>)> = conn
        .prepare_cached(
            "SELECT tier, acked_by, acked_at FROM alert WHERE kind = ?1 AND subject = ?2",
        )
        .and_then(|mut st| {
            st.query_row(params![kind.as_str(), subject], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
        })
        .map_err(sql(conn))?;
    let Some((tier, acked_by, acked_at)) = row else {
        return Ok(Acknowledged::NotOpen);
    };
    if let (Some(by), Some(at)) = (acked_by, acked_at) {
        return Ok(Acknowledged::Already {
            by,
            at: Timestamp(at),
        });
    }
    let tier = Tier::parse(&tier).unwrap_or(Tier::Normal);
    conn.prepare_cached(
        "UPDATE alert SET acked_by = ?3, acked_at = ?4, acked_tier = ?5 WHERE kind = ?1 AND subject = ?2",
    )
    .and_then(|mut st| {
        st.execute(params![kind.as_str(), subject, staff, now.millis(), tier.as_str()])
    })
    .map_err(sql(conn))?;
    outbox::append(
        conn,
        &DomainEvent::AlertAcknowledged {
            alert_kind: kind,
            subject: subject.to_owned(),
            tier,
            staff: staff.to_owned(),
        },
        now,
    )?;
    Ok(Acknowledged::Now)
}

/// What acknowledging every open alert of one kind about the lots of one SKU did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LotsAcknowledged {
    /// Open alerts of that kind about a lot of that SKU.
    pub open: usize,
    /// Of those, acknowledged now (each with its `alert_acknowledged` event); the others had
    /// been acknowledged at their present tier already.
    pub now: usize,
}

/// A staff member acknowledges, at once, every open alert of a lot kind
/// ([`AlertKind::is_about_a_lot`]) about a lot of `sku`: the stock screen lists them as one
/// line (a long outage can leave hundreds of expired lots of one SKU). Each is acknowledged
/// as [`acknowledge_alert`] does it, with its own event.
pub fn acknowledge_lot_alerts(
    conn: &Connection,
    kind: AlertKind,
    sku: &str,
    staff: &str,
    now: Timestamp,
) -> Result<LotsAcknowledged, StoreError> {
    let mut done = LotsAcknowledged { open: 0, now: 0 };
    if !kind.is_about_a_lot() {
        return Ok(done);
    }
    let codes: std::collections::HashSet<String> = super::sku::codes(conn)?.into_iter().collect();
    let subjects: Vec<String> = conn
        .prepare_cached("SELECT subject FROM alert WHERE kind = ?1")
        .and_then(|mut st| {
            st.query_map([kind.as_str()], |r| r.get(0))?
                .collect::<Result<_, _>>()
        })
        .map_err(sql(conn))?;
    for subject in subjects {
        let about = hub_core::alerts::split_lot_subject(&subject, |c| codes.contains(c));
        if about.map(|(code, _)| code) != Some(sku) {
            continue;
        }
        done.open += 1;
        if acknowledge_alert(conn, kind, &subject, staff, now)? == Acknowledged::Now {
            done.now += 1;
        }
    }
    Ok(done)
}

/// An open alert as a person reads it: since when, the SKU's name when it is about one, and
/// who acknowledged it when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedAlert {
    pub alert: Alert,
    pub raised_at: Timestamp,
    pub sku_name: Option<String>,
    pub acked: Option<(String, Timestamp)>,
}

/// Every open alert, worst first (the order of [`open_alerts`]), with its time and SKU name.
pub fn open_alerts_listed(conn: &Connection) -> Result<Vec<ListedAlert>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT a.kind, a.subject, a.raised_at, s.name, a.acked_by, a.acked_at FROM alert a
             LEFT JOIN sku s ON s.code = a.subject",
        )
        .map_err(sql(conn))?;
    type Row = (i64, Option<String>, Option<(String, Timestamp)>);
    let mut found: std::collections::HashMap<(String, String), Row> = st
        .query_map([], |r| {
            let acked = match (r.get::<_, Option<String>>(4)?, r.get::<_, Option<i64>>(5)?) {
                (Some(by), Some(at)) => Some((by, Timestamp(at))),
                _ => None,
            };
            Ok(((r.get(0)?, r.get(1)?), (r.get(2)?, r.get(3)?, acked)))
        })
        .and_then(|rows| rows.collect())
        .map_err(sql(conn))?;
    Ok(open_alerts(conn)?
        .into_iter()
        .map(|alert| {
            let (at, sku_name, acked) = found
                .remove(&(alert.kind.as_str().to_owned(), alert.subject.clone()))
                .unwrap_or((0, None, None));
            ListedAlert {
                alert,
                raised_at: Timestamp(at),
                sku_name,
                acked,
            }
        })
        .collect())
}

/// The version of a SKU's stored tier policy, if it has one.
pub fn policy_version(conn: &Connection, sku: &SkuCode) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached("SELECT version FROM sku_tier_policy WHERE sku = ?1")
        .and_then(|mut st| st.query_row([sku.as_str()], |r| r.get(0)).optional())
        .map_err(sql(conn))
}

/// Stores a SKU's tier policy (from central), unless a newer one is stored.
pub fn set_policy(
    conn: &Connection,
    sku: &SkuCode,
    policy: &TierPolicy,
    version: i64,
) -> Result<bool, StoreError> {
    let stored = policy_version(conn, sku)?;
    if stored.is_some_and(|v| v >= version) {
        return Ok(false);
    }
    let body = stored::encode_tier_policy(policy);
    conn.execute(
        "INSERT INTO sku_tier_policy (sku, policy, version) VALUES (?1, ?2, ?3)
         ON CONFLICT (sku) DO UPDATE SET policy = ?2, version = ?3",
        params![sku.as_str(), body, version],
    )
    .map_err(sql(conn))?;
    Ok(true)
}

fn policy_for(
    conn: &Connection,
    sku: &SkuCode,
    default: &TierPolicy,
) -> Result<TierPolicy, StoreError> {
    let body: Option<String> = conn
        .prepare_cached("SELECT policy FROM sku_tier_policy WHERE sku = ?1")
        .and_then(|mut st| st.query_row([sku.as_str()], |r| r.get(0)).optional())
        .map_err(sql(conn))?;
    Ok(body
        .and_then(|b| stored::decode_tier_policy(&b).ok())
        .unwrap_or_else(|| default.clone()))
}

fn load_state(conn: &Connection, sku: &SkuCode) -> Result<SkuAlertState, StoreError> {
    let body: Option<String> = conn
        .prepare_cached("SELECT state FROM sku_alert_state WHERE sku = ?1")
        .and_then(|mut st| st.query_row([sku.as_str()], |r| r.get(0)).optional())
        .map_err(sql(conn))?;
    Ok(body
        .and_then(|b| stored::decode_alert_state(&b).ok())
        .unwrap_or_default())
}

fn save_state(
    conn: &Connection,
    sku: &SkuCode,
    state: &SkuAlertState,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO sku_alert_state (sku, state, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (sku) DO UPDATE SET state = ?2, updated_at = ?3",
    )
    .and_then(|mut st| {
        st.execute(params![
            sku.as_str(),
            stored::encode_alert_state(state),
            now.millis()
        ])
    })
    .map_err(sql(conn))?;
    Ok(())
}

/// Days of demand history used for the daily average.
pub const DEMAND_WINDOW_DAYS: i64 = 7;

/// The figures tiers are computed from: on hand, committed to open orders, recent demand.
pub fn figures(
    conn: &Connection,
    sku: &SkuCode,
    now: Timestamp,
) -> Result<StockFigures, StoreError> {
    let on_hand: i64 = conn
        .prepare_cached("SELECT on_hand FROM balance_sku WHERE sku = ?1")
        .and_then(|mut st| st.query_row([sku.as_str()], |r| r.get(0)).optional())
        .map_err(sql(conn))?
        .unwrap_or(0);
    let since = now.millis() - DEMAND_WINDOW_DAYS * 86_400_000;
    let issued: i64 = conn
        .prepare_cached("SELECT COALESCE(SUM(quantity), 0) FROM movement WHERE sku = ?1 AND kind = 'issue' AND at >= ?2")
        .and_then(|mut st| st.query_row(params![sku.as_str(), since], |r| r.get(0)))
        .map_err(sql(conn))?;
    // Reserved by orders not yet collected.
    let committed: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(l.quantity - l.settled), 0) FROM pickup_order_line l
             JOIN pickup_order o ON o.order_id = l.order_id
             WHERE l.sku = ?1 AND o.status IN ('open', 'on_hold', 'partially_collected')",
        )
        .and_then(|mut st| st.query_row([sku.as_str()], |r| r.get(0)))
        .map_err(sql(conn))?;
    Ok(StockFigures {
        on_hand,
        committed,
        daily_demand: issued as f64 / DEMAND_WINDOW_DAYS as f64,
    })
}

/// What a SKU's tiers and requests are evaluated with.
#[derive(Debug, Clone, Copy)]
pub struct StockRules<'a> {
    /// The tier policy of SKUs central has not sent one for.
    pub default_policy: &'a TierPolicy,
    /// The site's calendar (days of the forecast's history).
    pub timezone: chrono_tz::Tz,
    pub replenishment: ReplenishmentSettings,
}

/// Re-evaluates one SKU's tier and episode on its demand forecast, persisting the state and
/// writing every event (a request carries the forecast and the plan behind its quantity).
pub fn evaluate_sku(
    conn: &Connection,
    sku: &SkuCode,
    rules: &StockRules<'_>,
    now: Timestamp,
) -> Result<Vec<StockAction>, StoreError> {
    let policy = policy_for(conn, sku, rules.default_policy)?;
    let state = load_state(conn, sku)?;
    let figures = figures(conn, sku, now)?;
    let today = crate::clock::site_date(rules.timezone, now);
    let history = demand::daily_history(conn, sku.as_str(), today, rules.timezone)?;
    let shelf_life_days = demand::shelf_life_days(conn, sku.as_str(), rules.timezone)?;
    let signals = demand::signals(conn)?;
    let category = super::sku::category_of(conn, sku.as_str())?.unwrap_or_default();
    let plan = replenishment::plan(
        &DemandInput {
            history: &history,
            sku: sku.as_str(),
            category: &category,
            signals: &signals,
            today,
            shelf_life_days,
        },
        &figures,
        &policy,
        &rules.replenishment,
    );
    let (next, actions) = evaluate_planned(sku, &state, &plan, &policy, now);
    if next != state {
        save_state(conn, sku, &next, now)?;
    }
    for action in &actions {
        let event = match action.clone() {
            StockAction::TierChanged {
                sku,
                from,
                to,
                figure,
            } => {
                let alert = Alert {
                    kind: AlertKind::StockLow,
                    subject: sku.to_string(),
                    tier: to,
                    message: format!(
                        "{sku}: {} {figure:.1} ({} on hand, {} committed)",
                        match (policy.measure, plan.reasoning.basis) {
                            (hub_core::alerts::Measure::DaysOfCover, DemandBasis::Forecast) => {
                                "days of cover at the forecast"
                            }
                            (
                                hub_core::alerts::Measure::DaysOfCover,
                                DemandBasis::TrailingAverage,
                            ) => {
                                "days of cover at the 7-day average"
                            }
                            (hub_core::alerts::Measure::Absolute, _) => "available",
                        },
                        figures.on_hand,
                        figures.committed
                    ),
                };
                if to == Tier::Normal {
                    clear(conn, AlertKind::StockLow, sku.as_str(), now)?;
                } else {
                    raise(conn, &alert, now)?;
                }
                DomainEvent::StockTierChanged {
                    sku,
                    from,
                    to,
                    figure: if figure.is_finite() { figure } else { f64::MAX },
                }
            }
            StockAction::RequestReplenishment {
                sku,
                episode_id,
                suggested_quantity,
                tier,
                repeat,
                reasoning,
            } => {
                tracing::info!(sku = %sku, episode = %episode_id, suggested_quantity, repeat, "replenishment requested");
                DomainEvent::ReplenishmentRequested {
                    sku,
                    episode_id,
                    suggested_quantity,
                    tier,
                    repeat,
                    reasoning,
                }
            }
            StockAction::EpisodeEnded { sku, episode_id } => {
                DomainEvent::ReplenishmentEpisodeEnded { sku, episode_id }
            }
        };
        outbox::append(conn, &event, now)?;
    }
    Ok(actions)
}

/// Central acknowledged a replenishment request: no more requests in that episode.
pub fn acknowledge_replenishment(
    conn: &Connection,
    sku: &SkuCode,
    episode_id: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let mut state = load_state(conn, sku)?;
    let changed = acknowledge(&mut state, episode_id);
    if changed {
        save_state(conn, sku, &state, now)?;
    }
    Ok(changed)
}

/// Every SKU's current tier (for status and reports).
pub fn tiers(conn: &Connection) -> Result<Vec<(String, SkuAlertState)>, StoreError> {
    let mut st = conn
        .prepare_cached("SELECT sku, state FROM sku_alert_state ORDER BY sku")
        .map_err(sql(conn))?;
    let rows: Vec<(String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .map_err(sql(conn))?;
    Ok(rows
        .into_iter()
        .filter_map(|(sku, s)| Some((sku, stored::decode_alert_state(&s).ok()?)))
        .collect())
}

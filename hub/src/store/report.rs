//! The figures the operations team steers by (`hub report`), computed for a period of the
//! site's calendar days from the journal. How they are shown is the CLI's (`cli_output`);
//! `hub report --json` is the single source of these figures.
//!
//! - stock-out rate: share of *listed* SKU-days (a SKU is listed from the day of its first
//!   movement) that ended with nothing on hand;
//! - turnover days and loss rate **per unit kind** (`piece`, `gram`): grams and pieces are
//!   never added together (the master data has no prices to weigh them by value); the overall
//!   figures are given only when every SKU is of one kind;
//! - acceptance pass rate: lines accepted, or held and later released, ÷ lines decided;
//! - sell-through rate (动销率): SKUs handed over at least once ÷ SKUs that had stock;
//! - pickups due in the period: collected on time, late, never (closed and not collected);
//! - order fill rate: units handed over ÷ units ordered, for orders collected in the period;
//! - disputes opened in the period: how fast they were first responded to (the first
//!   supervisor action on the open dispute: a note, a photo inspection or the settlement; within
//!   30 min), how fast their photos were inspected (the first `photos inspected` response;
//!   within 2 h) and how fast they were settled (within 24 h; also counted against 30 min and
//!   2 h);
//! - forecast accuracy per unit kind: for each listed SKU-day of the period that did not end in
//!   a stock-out, the one-day-ahead forecast the hub would have made that morning (from the
//!   days before it only, with the demand signals received before it) against the quantity
//!   handed over that day: WAPE = Σ|forecast − handed over| ÷ Σ handed over, with the number of
//!   SKU-days it covers (a SKU's first listed day has no history and no forecast; stock-out
//!   days are censored: what was handed over is not what was asked for);
//! - near-expiry share: lots on hand at the end of the period that expire within the warning
//!   days, ÷ lots on hand with an expiry date;
//! - handovers per weekday × hour (site time), open alerts;
//! - `daily`: the same figures for each day of the period (the dashboard's trend charts), from
//!   the same pass over the journal, and the lines held in quarantine now with their age.

use super::{StoreError, alert_book, sql_error};
use chrono::{Datelike, NaiveDate, Timelike};
use hub_core::Timestamp;
use hub_core::alerts::Alert;
use rusqlite::{Connection, params};
use std::collections::{BTreeMap, BTreeSet};

/// The figures of one unit kind.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UnitFigures {
    /// `piece` or `gram`.
    pub unit: String,
    pub skus: usize,
    pub stock_out_rate: Option<f64>,
    /// Average stock on hand ÷ average daily quantity handed over.
    pub turnover_days: Option<f64>,
    /// Quantity written off ÷ quantity received.
    pub loss_rate: Option<f64>,
    pub received_quantity: i64,
    pub handed_over_quantity: i64,
    pub lost_quantity: i64,
    /// SKU-days the forecast accuracy covers (listed, with history, not a stock-out day).
    pub forecast_sku_days: i64,
    /// WAPE of the hub's one-day-ahead forecast on those SKU-days: Σ|forecast − handed over|
    /// ÷ Σ handed over; none when nothing was handed over on them.
    pub forecast_wape: Option<f64>,
}

/// Pickup orders whose collection window closed in the period.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct PickupFigures {
    pub due: i64,
    pub collected_on_time: i64,
    pub collected_late: i64,
    /// Window closed, not collected.
    pub never_collected: i64,
    /// Window not closed yet, not collected.
    pub still_open: i64,
}

/// Disputes opened in the period.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DisputeFigures {
    pub opened: i64,
    /// Disputes with a first response (a note, a photo inspection or the settlement).
    pub responded: i64,
    pub median_first_response_minutes: Option<f64>,
    pub responded_within_30_min: i64,
    /// Disputes whose photos were inspected.
    pub photos_inspected: i64,
    pub photos_inspected_within_2_h: i64,
    pub settled: i64,
    pub median_settle_minutes: Option<f64>,
    pub settled_within_30_min: i64,
    pub settled_within_2_h: i64,
    pub settled_within_24_h: i64,
}

/// The operations report for the site's days `from ..= to - 1`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpsReport {
    pub from: String,
    pub to: String,
    /// The site's time zone the days are counted in.
    pub timezone: String,
    pub days: i64,
    pub skus: usize,
    pub stock_out_rate: f64,
    /// Only when every SKU is of one unit kind (see `by_unit`).
    pub turnover_days: Option<f64>,
    /// Only when every SKU is of one unit kind (see `by_unit`).
    pub loss_rate: Option<f64>,
    pub by_unit: Vec<UnitFigures>,
    pub acceptance_pass_rate: Option<f64>,
    pub sell_through_rate: Option<f64>,
    pub pickups: PickupFigures,
    pub order_fill_rate: Option<f64>,
    pub disputes: DisputeFigures,
    pub near_expiry_share: Option<f64>,
    /// Handovers by weekday (Monday first) and hour of the site's day.
    pub handovers_by_weekday_hour: Vec<Vec<i64>>,
    pub receipts: i64,
    pub handovers: i64,
    pub open_alerts: Vec<Alert>,
    /// The period's figures day by day (site days), for trend charts.
    pub daily: Vec<DayFigures>,
    /// Lines held in quarantine at `now`, oldest first.
    pub held_lines: Vec<HeldLine>,
}

/// One site day's figures, counted like the period's (a day's stock-out rate is its out SKUs ÷
/// its listed SKUs; its sell-through its SKUs handed over ÷ its SKUs with stock; pickups by
/// the day their window closed; disputes by the day they were opened).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DayFigures {
    pub date: String,
    pub listed_skus: i64,
    pub out_of_stock_skus: i64,
    pub stock_out_rate: Option<f64>,
    pub sell_through_rate: Option<f64>,
    /// Quantities per unit kind (`gram`, `piece`), never added together.
    pub by_unit: Vec<DayUnitFigures>,
    pub receipts: i64,
    pub handovers: i64,
    pub lines_decided: i64,
    pub lines_passed: i64,
    pub acceptance_pass_rate: Option<f64>,
    pub pickups: PickupFigures,
    pub units_ordered: i64,
    pub units_handed_over: i64,
    pub order_fill_rate: Option<f64>,
    pub disputes_opened: i64,
    pub disputes_responded_within_30_min: i64,
    pub disputes_photos_inspected_within_2_h: i64,
    pub disputes_settled_within_30_min: i64,
    pub disputes_settled_within_2_h: i64,
    pub disputes_settled_within_24_h: i64,
    /// Lots on hand at the end of the day that expire within the warning days ÷ lots on hand
    /// with an expiry date.
    pub near_expiry_share: Option<f64>,
}

/// One unit kind's quantities on one day.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DayUnitFigures {
    pub unit: String,
    pub received_quantity: i64,
    pub handed_over_quantity: i64,
    pub lost_quantity: i64,
    /// Stock on hand at the end of the day.
    pub stock_quantity: i64,
    /// End-of-day stock ÷ the day's quantity handed over.
    pub turnover_days: Option<f64>,
    /// The day's loss ÷ the day's receipts.
    pub loss_rate: Option<f64>,
    /// SKU-days of the day the forecast accuracy covers, and its WAPE on them.
    pub forecast_sku_days: i64,
    pub forecast_wape: Option<f64>,
}

/// A line held in quarantine, waiting for a supervisor to release or reject it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HeldLine {
    pub delivery_id: String,
    pub line_no: i64,
    pub sku: String,
    pub lot: String,
    pub quantity: i64,
    pub since: Timestamp,
    /// Hours from `since` to the report's `now`.
    pub age_hours: f64,
}

#[derive(Default)]
struct UnitAcc {
    skus: usize,
    listed_days: i64,
    out_days: i64,
    stock_sum: i64,
    received: i64,
    issued: i64,
    lost: i64,
    forecast: ForecastAcc,
}

/// Σ|forecast − handed over|, Σ handed over and SKU-days.
#[derive(Default, Clone, Copy)]
struct ForecastAcc {
    abs_error: f64,
    actual: f64,
    sku_days: i64,
}

impl ForecastAcc {
    fn wape(&self) -> Option<f64> {
        ratio(self.abs_error, self.actual)
    }
}

struct Row {
    sku: String,
    lot: Option<String>,
    expiry: Option<String>,
    kind: String,
    quantity: i64,
    delta: i64,
    at: i64,
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den)
}

/// Computes the report over the site's days `from` (inclusive) to `to` (exclusive) in `zone`;
/// `now` decides which pickup windows have closed, `expiry_warn_days` what is near expiry.
pub fn compute(
    conn: &Connection,
    from: NaiveDate,
    to: NaiveDate,
    zone: chrono_tz::Tz,
    expiry_warn_days: i64,
    now: Timestamp,
) -> Result<OpsReport, StoreError> {
    let start = crate::clock::day_start(zone, from).millis();
    let end = crate::clock::day_start(zone, to).millis();
    let days = (to - from).num_days().max(1);
    let rows: Vec<Row> = conn
        .prepare("SELECT sku, lot, expiry, kind, quantity, delta, at FROM movement WHERE at < ?1 ORDER BY at, journal_seq")
        .and_then(|mut st| {
            st.query_map([end], |r| {
                Ok(Row {
                    sku: r.get(0)?,
                    lot: r.get(1)?,
                    expiry: r.get(2)?,
                    kind: r.get(3)?,
                    quantity: r.get(4)?,
                    delta: r.get(5)?,
                    at: r.get(6)?,
                })
            })
            .and_then(|rows| rows.collect())
        })
        .map_err(sql_error(conn))?;
    let units: BTreeMap<String, String> = conn
        .prepare("SELECT code, unit FROM sku")
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql_error(conn))?;
    let unit_of = |sku: &str| units.get(sku).cloned().unwrap_or_else(|| "piece".into());

    let mut acc: BTreeMap<String, UnitAcc> = BTreeMap::new();
    for code in units.keys() {
        acc.entry(unit_of(code.as_str())).or_default().skus += 1;
    }
    let listed: BTreeSet<&str> = rows.iter().map(|r| r.sku.as_str()).collect();
    let signals = super::demand::signals_with_arrival(conn)?;
    // The signals known on each day of the period (received before the day began).
    let known: Vec<Vec<hub_forecast::DemandSignal>> = (0..days)
        .map(|d| {
            let begins = crate::clock::day_start(zone, from + chrono::Days::new(d as u64)).millis();
            signals
                .iter()
                .filter(|(at, _)| *at < begins)
                .map(|(_, s)| s.clone())
                .collect()
        })
        .collect();
    let history_from = from - chrono::Days::new(super::demand::HISTORY_DAYS);
    let observed = listed
        .iter()
        .map(|sku| {
            super::demand::daily_history_between(conn, sku, history_from, to, zone)
                .map(|o| (*sku, o))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut forecast_days: Vec<BTreeMap<String, ForecastAcc>> =
        vec![BTreeMap::new(); days as usize];
    for ((sku, _), errors) in observed.iter().zip(day_ahead_errors_all(&observed, &known)) {
        let unit = unit_of(sku);
        for (d, error) in errors.into_iter().enumerate() {
            let Some((forecast, actual)) = error else {
                continue;
            };
            for f in [
                &mut acc.entry(unit.clone()).or_default().forecast,
                forecast_days[d].entry(unit.clone()).or_default(),
            ] {
                f.abs_error += (forecast - actual).abs();
                f.actual += actual;
                f.sku_days += 1;
            }
        }
    }
    // SKU → balance (a SKU is in the map, listed, from its first movement); lot → balance.
    let mut balance: BTreeMap<&str, i64> = BTreeMap::new();
    let mut lots: BTreeMap<(&str, &str), (i64, Option<&str>)> = BTreeMap::new();
    let (mut receipts, mut sold, mut stocked) = (0i64, BTreeSet::new(), BTreeSet::new());
    let mut daily: Vec<DayFigures> = Vec::with_capacity(days as usize);
    let mut day_ends: Vec<i64> = Vec::with_capacity(days as usize);
    let mut i = 0;
    // The stock before the period, so that its first day starts with what was on hand.
    while i < rows.len() && rows[i].at < start {
        let r = &rows[i];
        *balance.entry(r.sku.as_str()).or_insert(0) += r.delta;
        if let Some(lot) = &r.lot {
            lots.entry((r.sku.as_str(), lot.as_str()))
                .or_insert((0, r.expiry.as_deref()))
                .0 += r.delta;
        }
        i += 1;
    }
    for d in 0..days {
        let day = from + chrono::Days::new(d as u64);
        let day_end = crate::clock::day_start(zone, day + chrono::Days::new(1)).millis();
        day_ends.push(day_end);
        let mut day_units: BTreeMap<String, DayUnitFigures> = BTreeMap::new();
        let (mut day_stocked, mut day_sold) = (BTreeSet::new(), BTreeSet::new());
        let mut day_receipts = 0i64;
        for (sku, b) in &balance {
            if *b > 0 {
                stocked.insert(*sku);
                day_stocked.insert(*sku);
            }
        }
        while i < rows.len() && rows[i].at < day_end {
            let r = &rows[i];
            *balance.entry(r.sku.as_str()).or_insert(0) += r.delta;
            if let Some(lot) = &r.lot {
                let e = lots
                    .entry((r.sku.as_str(), lot.as_str()))
                    .or_insert((0, r.expiry.as_deref()));
                e.0 += r.delta;
            }
            if r.at >= start {
                let unit = unit_of(r.sku.as_str());
                let a = acc.entry(unit.clone()).or_default();
                let du = day_units.entry(unit).or_default();
                match r.kind.as_str() {
                    "receipt" => {
                        a.received += r.quantity;
                        du.received_quantity += r.quantity;
                        receipts += 1;
                        day_receipts += 1;
                        stocked.insert(r.sku.as_str());
                        day_stocked.insert(r.sku.as_str());
                    }
                    "issue" => {
                        a.issued += r.quantity;
                        du.handed_over_quantity += r.quantity;
                        sold.insert(r.sku.as_str());
                        day_sold.insert(r.sku.as_str());
                    }
                    "loss" => {
                        a.lost += r.quantity;
                        du.lost_quantity += r.quantity;
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        // Only SKUs with a movement by the end of the day are listed that day.
        let (mut day_listed, mut day_out) = (0i64, 0i64);
        for (sku, b) in &balance {
            let unit = unit_of(sku);
            let a = acc.entry(unit.clone()).or_default();
            a.listed_days += 1;
            day_listed += 1;
            if *b <= 0 {
                a.out_days += 1;
                day_out += 1;
            } else {
                a.stock_sum += b;
                day_units.entry(unit).or_default().stock_quantity += b;
            }
        }
        for unit in forecast_days[d as usize].keys() {
            day_units.entry(unit.clone()).or_default();
        }
        let by_unit = day_units
            .into_iter()
            .map(|(unit, u)| {
                let f = forecast_days[d as usize]
                    .get(&unit)
                    .copied()
                    .unwrap_or_default();
                DayUnitFigures {
                    unit,
                    turnover_days: ratio(u.stock_quantity as f64, u.handed_over_quantity as f64),
                    loss_rate: ratio(u.lost_quantity as f64, u.received_quantity as f64),
                    forecast_sku_days: f.sku_days,
                    forecast_wape: f.wape(),
                    ..u
                }
            })
            .collect();
        daily.push(DayFigures {
            date: day.to_string(),
            listed_skus: day_listed,
            out_of_stock_skus: day_out,
            stock_out_rate: ratio(day_out as f64, day_listed as f64),
            sell_through_rate: ratio(day_sold.len() as f64, day_stocked.len() as f64),
            by_unit,
            receipts: day_receipts,
            near_expiry_share: near_expiry(&lots, day, expiry_warn_days),
            ..Default::default()
        });
    }
    // The index of the period's day a moment falls on, if it falls in the period.
    let day_of = |at: i64| -> Option<usize> {
        (at >= start && at < end).then(|| day_ends.partition_point(|e| *e <= at))
    };
    let by_unit_days = acc
        .values()
        .fold((0i64, 0i64), |t, a| (t.0 + a.listed_days, t.1 + a.out_days));
    let by_unit: Vec<UnitFigures> = acc
        .into_iter()
        .filter(|(_, a)| a.skus > 0 || a.listed_days > 0)
        .map(|(unit, a)| UnitFigures {
            unit,
            skus: a.skus,
            stock_out_rate: ratio(a.out_days as f64, a.listed_days as f64),
            // (Σ end-of-day stock ÷ days) ÷ (issued ÷ days).
            turnover_days: ratio(a.stock_sum as f64, a.issued as f64),
            loss_rate: ratio(a.lost as f64, a.received as f64),
            received_quantity: a.received,
            handed_over_quantity: a.issued,
            lost_quantity: a.lost,
            forecast_sku_days: a.forecast.sku_days,
            forecast_wape: a.forecast.wape(),
        })
        .collect();
    let listed_days: i64 = by_unit_days.0;
    let out_days: i64 = by_unit_days.1;
    let one_unit = (by_unit.len() == 1).then(|| &by_unit[0]);

    let near_expiry_share = daily.last().and_then(|d| d.near_expiry_share);

    let handover_times: Vec<i64> = conn
        .prepare("SELECT at FROM handover WHERE at >= ?1 AND at < ?2")
        .and_then(|mut st| {
            st.query_map(params![start, end], |r| r.get(0))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql_error(conn))?;
    let mut by_hour = vec![vec![0i64; 24]; 7];
    for at in &handover_times {
        if let Some(d) = day_of(*at) {
            daily[d].handovers += 1;
        }
        if let Some(t) = chrono::DateTime::from_timestamp_millis(*at) {
            let local = t.with_timezone(&zone);
            by_hour[local.weekday().num_days_from_monday() as usize][local.hour() as usize] += 1;
        }
    }

    let acceptance_pass_rate = acceptance_rate(conn, start, end, &day_of, &mut daily)?;
    let pickups = pickups(conn, start, end, now, &day_of, &mut daily)?;
    let order_fill_rate = order_fill_rate(conn, start, end, &day_of, &mut daily)?;
    let disputes = disputes(conn, start, end, &day_of, &mut daily)?;
    let held_lines = held_lines(conn, now)?;
    Ok(OpsReport {
        from: from.to_string(),
        to: to.to_string(),
        timezone: zone.name().to_string(),
        days,
        skus: units.len(),
        stock_out_rate: ratio(out_days as f64, listed_days as f64).unwrap_or(0.0),
        turnover_days: one_unit.and_then(|u| u.turnover_days),
        loss_rate: one_unit.and_then(|u| u.loss_rate),
        acceptance_pass_rate,
        sell_through_rate: ratio(sold.len() as f64, stocked.len() as f64),
        pickups,
        order_fill_rate,
        disputes,
        near_expiry_share,
        handovers_by_weekday_hour: by_hour,
        receipts,
        handovers: handover_times.len() as i64,
        by_unit,
        open_alerts: alert_book::open_alerts(conn)?,
        daily,
        held_lines,
    })
}

/// For each day of the period, the one-day-ahead forecast the hub would have made for a SKU
/// that day (from the days before it only, and the demand signals received before it) and
/// what was handed over that day; `None` for a day the SKU was not listed, had no listed day
/// before it (no history, no forecast), or ran out (censored: handovers are not demand).
/// `observed` holds the SKU's days from `HISTORY_DAYS` before the period's first day on
/// (`demand::daily_history_between`), `known[d]` the signals known on the period's day `d`.
fn day_ahead_errors(
    sku: &str,
    observed: &[hub_forecast::DailyObservation],
    known: &[Vec<hub_forecast::DemandSignal>],
) -> Vec<Option<(f64, f64)>> {
    let window = super::demand::HISTORY_DAYS as usize;
    let config = hub_forecast::ForecastConfig::default();
    let ctx = hub_forecast::SkuContext {
        sku,
        category: "",
        prior_daily: None,
    };
    (0..known.len())
        .map(|d| {
            let k = window + d;
            let day = observed.get(k)?;
            let history = &observed[d..k];
            if !day.existed || day.stocked_out || !history.iter().any(|o| o.existed) {
                return None;
            }
            let forecast =
                hub_forecast::forecast_sku(history, &ctx, &known[d], day.date, 1, &config);
            Some((forecast.days.first().map_or(0.0, |f| f.mean), day.sold))
        })
        .collect()
}

/// `day_ahead_errors` of every SKU (in the order given), the SKUs shared out over the
/// machine's cores: the refits are pure and independent.
fn day_ahead_errors_all(
    observed: &[(&str, Vec<hub_forecast::DailyObservation>)],
    known: &[Vec<hub_forecast::DemandSignal>],
) -> Vec<Vec<Option<(f64, f64)>>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let chunk = observed.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = observed
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(sku, obs)| day_ahead_errors(sku, obs, known))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Lots on hand (as `lots` holds them) with an expiry within `warn_days` of `day` ÷ lots on
/// hand with an expiry date.
fn near_expiry(
    lots: &BTreeMap<(&str, &str), (i64, Option<&str>)>,
    day: NaiveDate,
    warn_days: i64,
) -> Option<f64> {
    let on_hand: Vec<NaiveDate> = lots
        .values()
        .filter(|(b, _)| *b > 0)
        .filter_map(|(_, e)| e.and_then(|e| e.parse().ok()))
        .collect();
    let near = on_hand
        .iter()
        .filter(|e| (**e - day).num_days() <= warn_days)
        .count();
    ratio(near as f64, on_hand.len() as f64)
}

/// Lines held in quarantine at `now`, oldest first.
fn held_lines(conn: &Connection, now: Timestamp) -> Result<Vec<HeldLine>, StoreError> {
    conn.prepare(
        "SELECT delivery_id, line_no, sku, lot, quantity, since FROM quarantine
         WHERE status = 'held' ORDER BY since, delivery_id, line_no",
    )
    .and_then(|mut st| {
        st.query_map([], |r| {
            let since: i64 = r.get(5)?;
            Ok(HeldLine {
                delivery_id: r.get(0)?,
                line_no: r.get(1)?,
                sku: r.get(2)?,
                lot: r.get(3)?,
                quantity: r.get(4)?,
                since: Timestamp(since),
                age_hours: (now.millis() - since).max(0) as f64 / 3_600_000.0,
            })
        })
        .and_then(|rows| rows.collect())
    })
    .map_err(sql_error(conn))
}

/// The index of the period's day a moment falls on.
type DayOf<'a> = dyn Fn(i64) -> Option<usize> + 'a;

/// Lines accepted, or held and later released, ÷ lines decided in `[start, end)`; each day's
/// share into `daily`.
fn acceptance_rate(
    conn: &Connection,
    start: i64,
    end: i64,
    day_of: &DayOf,
    daily: &mut [DayFigures],
) -> Result<Option<f64>, StoreError> {
    let rows: Vec<(i64, bool)> = conn
        .prepare(
            "SELECT d.decided_at, d.outcome = 'accepted' OR COALESCE(q.status = 'released', 0)
             FROM line_decision d
             LEFT JOIN quarantine q ON q.delivery_id = d.delivery_id AND q.line_no = d.line_no
             WHERE d.decided_at >= ?1 AND d.decided_at < ?2",
        )
        .and_then(|mut st| {
            st.query_map(params![start, end], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql_error(conn))?;
    for (at, passed) in &rows {
        if let Some(d) = day_of(*at) {
            daily[d].lines_decided += 1;
            daily[d].lines_passed += i64::from(*passed);
        }
    }
    for d in daily.iter_mut() {
        d.acceptance_pass_rate = ratio(d.lines_passed as f64, d.lines_decided as f64);
    }
    let passed = rows.iter().filter(|(_, p)| *p).count();
    Ok(ratio(passed as f64, rows.len() as f64))
}

fn pickups(
    conn: &Connection,
    start: i64,
    end: i64,
    now: Timestamp,
    day_of: &DayOf,
    daily: &mut [DayFigures],
) -> Result<PickupFigures, StoreError> {
    let rows: Vec<(i64, Option<i64>)> = conn
        .prepare(
            "SELECT closes_at, collected_at FROM pickup_order
             WHERE closes_at >= ?1 AND closes_at < ?2 AND status NOT IN ('cancelled', 'refunded')",
        )
        .and_then(|mut st| {
            st.query_map(params![start, end], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql_error(conn))?;
    let mut f = PickupFigures::default();
    for (closes_at, collected_at) in rows {
        let count = |f: &mut PickupFigures| {
            f.due += 1;
            match collected_at {
                Some(at) if at <= closes_at => f.collected_on_time += 1,
                Some(_) => f.collected_late += 1,
                None if closes_at <= now.millis() => f.never_collected += 1,
                None => f.still_open += 1,
            }
        };
        count(&mut f);
        if let Some(d) = day_of(closes_at) {
            count(&mut daily[d].pickups);
        }
    }
    Ok(f)
}

/// Units handed over ÷ units ordered, for orders collected in `[start, end)` (each day's by
/// the day of collection).
fn order_fill_rate(
    conn: &Connection,
    start: i64,
    end: i64,
    day_of: &DayOf,
    daily: &mut [DayFigures],
) -> Result<Option<f64>, StoreError> {
    let rows: Vec<(i64, i64, i64)> = conn
        .prepare(
            "SELECT o.collected_at,
               (SELECT COALESCE(SUM(l.quantity), 0) FROM pickup_order_line l WHERE l.order_id = o.order_id),
               (SELECT COALESCE(SUM(m.quantity), 0) FROM movement m
                 WHERE m.kind = 'issue' AND m.reference = 'pickup order ' || o.order_id)
             FROM pickup_order o WHERE o.collected_at >= ?1 AND o.collected_at < ?2",
        )
        .and_then(|mut st| {
            st.query_map(params![start, end], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql_error(conn))?;
    let (mut ordered, mut handed) = (0i64, 0i64);
    for (at, o, h) in rows {
        ordered += o;
        handed += h;
        if let Some(d) = day_of(at) {
            daily[d].units_ordered += o;
            daily[d].units_handed_over += h;
        }
    }
    for d in daily.iter_mut() {
        d.order_fill_rate = ratio(d.units_handed_over as f64, d.units_ordered as f64);
    }
    Ok(ratio(handed as f64, ordered as f64))
}

fn disputes(
    conn: &Connection,
    start: i64,
    end: i64,
    day_of: &DayOf,
    daily: &mut [DayFigures],
) -> Result<DisputeFigures, StoreError> {
    type DisputeRow = (i64, Option<i64>, Option<i64>, Option<i64>);
    let all: Vec<DisputeRow> = conn
        .prepare(
            "SELECT opened_at, closed_at, first_response_at, photos_inspected_at FROM dispute
             WHERE opened_at >= ?1 AND opened_at < ?2",
        )
        .and_then(|mut st| {
            st.query_map(params![start, end], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .and_then(|rows| rows.collect())
        })
        .map_err(sql_error(conn))?;
    let minutes_after = |opened: i64, at: Option<i64>| at.map(|c| (c - opened) as f64 / 60_000.0);
    let mut response: Vec<f64> = Vec::new();
    let mut inspection: Vec<f64> = Vec::new();
    for (opened, _, responded, inspected) in &all {
        let responded = minutes_after(*opened, *responded);
        let inspected = minutes_after(*opened, *inspected);
        response.extend(responded);
        inspection.extend(inspected);
        if let Some(d) = day_of(*opened) {
            let f = &mut daily[d];
            f.disputes_responded_within_30_min += i64::from(responded.is_some_and(|m| m <= 30.0));
            f.disputes_photos_inspected_within_2_h +=
                i64::from(inspected.is_some_and(|m| m <= 120.0));
        }
    }
    response.sort_by(f64::total_cmp);
    let rows: Vec<(i64, Option<i64>)> = all.iter().map(|r| (r.0, r.1)).collect();
    for (opened, closed) in &rows {
        if let Some(d) = day_of(*opened) {
            let f = &mut daily[d];
            f.disputes_opened += 1;
            if let Some(m) = closed.map(|c| (c - opened) as f64 / 60_000.0) {
                f.disputes_settled_within_30_min += i64::from(m <= 30.0);
                f.disputes_settled_within_2_h += i64::from(m <= 120.0);
                f.disputes_settled_within_24_h += i64::from(m <= 1440.0);
            }
        }
    }
    let mut minutes: Vec<f64> = rows
        .iter()
        .filter_map(|(opened, closed)| closed.map(|c| (c - opened) as f64 / 60_000.0))
        .collect();
    minutes.sort_by(f64::total_cmp);
    let within = |limit: f64| minutes.iter().filter(|m| **m <= limit).count() as i64;
    Ok(DisputeFigures {
        opened: rows.len() as i64,
        responded: response.len() as i64,
        median_first_response_minutes: median(&response),
        responded_within_30_min: response.iter().filter(|m| **m <= 30.0).count() as i64,
        photos_inspected: inspection.len() as i64,
        photos_inspected_within_2_h: inspection.iter().filter(|m| **m <= 120.0).count() as i64,
        settled: minutes.len() as i64,
        median_settle_minutes: median(&minutes),
        settled_within_30_min: within(30.0),
        settled_within_2_h: within(120.0),
        settled_within_24_h: within(1440.0),
    })
}

/// The median of sorted values.
fn median(sorted: &[f64]) -> Option<f64> {
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[n / 2]),
        n => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The rows the report reads for the site's days `from ..= to - 1`, fetched with plain queries
/// and nothing computed: the baseline `hub bench dashboard` times the report against. Returns
/// the number of rows read.
pub fn raw_reads(
    conn: &Connection,
    from: NaiveDate,
    to: NaiveDate,
    zone: chrono_tz::Tz,
) -> Result<i64, StoreError> {
    let start = crate::clock::day_start(zone, from).millis();
    let end = crate::clock::day_start(zone, to).millis();
    let mut rows = 0i64;
    let queries: [&str; 7] = [
        "SELECT sku, lot, expiry, kind, quantity, delta, at FROM movement WHERE at < ?2 AND ?1 = ?1 ORDER BY at, journal_seq",
        "SELECT code, unit FROM sku WHERE ?1 = ?1 AND ?2 = ?2",
        "SELECT at FROM handover WHERE at >= ?1 AND at < ?2",
        "SELECT d.decided_at, d.outcome, q.status FROM line_decision d LEFT JOIN quarantine q ON q.delivery_id = d.delivery_id AND q.line_no = d.line_no WHERE d.decided_at >= ?1 AND d.decided_at < ?2",
        "SELECT closes_at, collected_at FROM pickup_order WHERE closes_at >= ?1 AND closes_at < ?2 AND status NOT IN ('cancelled', 'refunded')",
        "SELECT o.collected_at, (SELECT COALESCE(SUM(l.quantity), 0) FROM pickup_order_line l WHERE l.order_id = o.order_id), (SELECT COALESCE(SUM(m.quantity), 0) FROM movement m WHERE m.kind = 'issue' AND m.reference = 'pickup order ' || o.order_id) FROM pickup_order o WHERE o.collected_at >= ?1 AND o.collected_at < ?2",
        "SELECT opened_at, closed_at, first_response_at, photos_inspected_at FROM dispute WHERE opened_at >= ?1 AND opened_at < ?2",
    ];
    for query in queries {
        let mut st = conn.prepare(query).map_err(sql_error(conn))?;
        let mut found = st.query(params![start, end]).map_err(sql_error(conn))?;
        while let Some(row) = found.next().map_err(sql_error(conn))? {
            let _: rusqlite::types::Value = row.get(0).map_err(sql_error(conn))?;
            rows += 1;
        }
    }
    Ok(rows)
}

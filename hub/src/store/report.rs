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
//! - order fill rate: units handed over ÷ units ordered, for orders collected in the period
//!   (what an undone handover returned does not count);
//! - disputes opened in the period: how fast they were first responded to (the first
//!   supervisor action on the open dispute: a note, a photo inspection or the settlement; within
//!   30 min), how fast their photos were inspected (the first `photos inspected` response;
//!   within 2 h) and how fast they were settled (within 24 h; also counted against 30 min and
//!   2 h);
//! - forecast accuracy per unit kind: for each listed SKU-day of the period with a listed day
//!   before it and no stock-out (as the forecast counts one: a handover or write-off that took
//!   the stock to zero, or the day ended empty), the one-day-ahead forecast the hub made for
//!   that day and stored (`day_forecast`: made the first time the hub ran on the day, from the
//!   days before it only and the demand signals received before it) against the quantity
//!   handed over that day: WAPE = Σ|forecast − handed over| ÷ Σ handed over, with the number of
//!   SKU-days it covers (a SKU's first listed day has no history and no forecast; stock-out
//!   days are censored: what was handed over is not what was asked for). Nothing is refitted:
//!   a SKU-day that qualifies but has no stored forecast (a day the hub did not run, days
//!   before the upgrade that added the table, imported history) is left out of the WAPE and
//!   counted as `forecast_sku_days_missing`;
//! - near-expiry share: lots on hand at the end of the period that expire within the warning
//!   days, ÷ lots on hand with an expiry date;
//! - deliveries on time (by the site day of their expected time, `expected_at` of the manifest):
//!   a delivery is received when its first line is decided (the goods are at the bench and
//!   checked; its close can wait hours for held lines and paperwork); on time when that is
//!   within the tolerance (`receiving.on_time_tolerance_minutes`) either side of the expected
//!   time, early or late beyond it, never received when no line was decided by the end of its
//!   site day; cancelled deliveries and those without a readable date and time are not counted;
//! - handovers per weekday × hour (site time), open alerts;
//! - `daily`: the same figures for each day of the period (the dashboard's trend charts), from
//!   the same pass over the journal, and the lines held in quarantine now with their age.

use super::report_journal::{COLLECTED_IDS_SQL, COLLECTED_SQL, Collected};
use super::{StoreError, alert_book, sql_error};
use chrono::{Datelike, NaiveDate, TimeZone, Timelike};
use hub_core::Timestamp;
use hub_core::alerts::Alert;
use rusqlite::{Connection, params};
use std::collections::{BTreeMap, BTreeSet, HashMap};

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
    /// SKU-days the forecast accuracy covers (listed, with history, not a stock-out day, with
    /// the forecast the hub stored for the day).
    pub forecast_sku_days: i64,
    /// SKU-days that qualify but have no stored forecast (the hub did not run that day, or
    /// they predate the stored forecasts): left out of the WAPE, never refitted.
    pub forecast_sku_days_missing: i64,
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

/// Deliveries expected in the period (by the site day of their expected time).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DeliveryFigures {
    pub due: i64,
    /// First line decided within the tolerance of the expected time.
    pub on_time: i64,
    /// First line decided before the expected time less the tolerance.
    pub early: i64,
    /// First line decided after the expected time plus the tolerance, on its site day.
    pub late: i64,
    /// No line decided by the end of its site day.
    pub never_received: i64,
    /// Its site day is not over and no line is decided yet.
    pub still_expected: i64,
    /// On time ÷ the deliveries whose outcome is known (due less still expected).
    pub on_time_rate: Option<f64>,
}

/// Minutes either side of a delivery's expected time it still counts as on time, when the
/// configuration does not say (its home is the config's default).
pub use crate::config::DEFAULT_ON_TIME_TOLERANCE_MINUTES;

/// What the report counts with besides the period: near expiry within `expiry_warn_days`
/// (`alerts.expiry_warn_days`), deliveries on time within `on_time_tolerance_minutes`.
#[derive(Debug, Clone, Copy)]
pub struct ReportSettings {
    pub expiry_warn_days: i64,
    pub on_time_tolerance_minutes: i64,
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
    /// Deliveries expected in the period.
    pub deliveries: DeliveryFigures,
    /// The tolerance `deliveries` were counted with.
    pub delivery_on_time_tolerance_minutes: i64,
    /// Days of the period read from their rollups rather than the journal (not
    /// a figure: not in the JSON).
    #[serde(skip)]
    pub rollup_days: usize,
    /// Closed days of the period computed from the journal because their rollups were missing
    /// or not usable (a refresh would roll them up; not in the JSON).
    #[serde(skip)]
    pub closed_days_from_journal: usize,
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
    /// Deliveries expected on the day.
    pub deliveries: DeliveryFigures,
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
    /// SKU-days of the day that qualify but have no stored forecast (left out).
    pub forecast_sku_days_missing: i64,
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

/// Σ|forecast − handed over|, Σ handed over and SKU-days, and the SKU-days without a stored
/// forecast.
#[derive(Default, Clone, Copy)]
struct ForecastAcc {
    abs_error: f64,
    actual: f64,
    sku_days: i64,
    missing: i64,
}

impl ForecastAcc {
    fn wape(&self) -> Option<f64> {
        ratio(self.abs_error, self.actual)
    }
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den)
}

/// Computes the report over the site's days `from` (inclusive) to `to` (exclusive) in `zone`;
/// `now` decides which pickup windows have closed, `expiry_warn_days` what is near expiry;
/// deliveries on time with [`DEFAULT_ON_TIME_TOLERANCE_MINUTES`].
pub fn compute(
    conn: &Connection,
    from: NaiveDate,
    to: NaiveDate,
    zone: chrono_tz::Tz,
    expiry_warn_days: i64,
    now: Timestamp,
) -> Result<OpsReport, StoreError> {
    let settings = ReportSettings {
        expiry_warn_days,
        on_time_tolerance_minutes: DEFAULT_ON_TIME_TOLERANCE_MINUTES,
    };
    compute_with(conn, from, to, zone, settings, now)
}

/// [`compute`] with every setting given (what `hub report` and the dashboard call, from the
/// configuration).
pub fn compute_with(
    conn: &Connection,
    from: NaiveDate,
    to: NaiveDate,
    zone: chrono_tz::Tz,
    settings: ReportSettings,
    now: Timestamp,
) -> Result<OpsReport, StoreError> {
    let expiry_warn_days = settings.expiry_warn_days;
    // One snapshot: the rollups, the journal's tail and the live tables agree.
    let _snapshot = conn
        .is_autocommit()
        .then(|| conn.unchecked_transaction())
        .transpose()
        .map_err(sql_error(conn))?;
    let start = crate::clock::day_start(zone, from).millis();
    let end = crate::clock::day_start(zone, to).millis();
    let days = (to - from).num_days().max(1);
    let units: BTreeMap<String, String> = conn
        .prepare("SELECT code, unit FROM sku")
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql_error(conn))?;
    let day_ends: Vec<i64> = (0..days)
        .map(|d| {
            let day = from + chrono::Days::new(d as u64 + 1);
            crate::clock::day_start(zone, day).millis()
        })
        .collect();
    // The closed days from their rollups and the rest from the journal's tail, or every day
    // from the whole journal when the rollups cannot be used (`report_rollup`).
    let rolled = if super::report_rollup::usable_for(conn, from, zone).map_err(sql_error(conn))? {
        let ids = Collected::read_ids(conn, start, end).map_err(sql_error(conn))?;
        super::report_rollup::rolled_period(conn, from, zone, &day_ends, &ids)?.map(|r| (r, ids))
    } else {
        None
    };
    let (states, fill_by_day, rollup_days, collected) = match rolled {
        Some((r, ids)) => (r.days, Some((r.ordered, r.handed)), r.from_records, ids),
        None => {
            let mut collected = Collected::read(conn, start, end).map_err(sql_error(conn))?;
            let folded = super::report_rollup::fold_journal(
                conn,
                units.keys().cloned(),
                start,
                &day_ends,
                &mut collected,
            )
            .map_err(sql_error(conn))?;
            (folded.days, None, 0, collected)
        }
    };

    // SKUs by index: the master data's codes in order, then any other code the journal has
    // (none while foreign keys hold).
    let mut sku_names: Vec<String> = units.keys().cloned().collect();
    let mut sku_index: HashMap<String, u32> = sku_names
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), i as u32))
        .collect();
    let others: BTreeSet<&str> = states
        .iter()
        .flat_map(|s| s.skus.iter())
        .map(|e| e.sku.as_str())
        .filter(|c| !sku_index.contains_key(*c))
        .collect();
    for code in others {
        sku_index.insert(code.to_owned(), sku_names.len() as u32);
        sku_names.push(code.to_owned());
    }

    // Unit kinds by index, and each SKU's (a SKU missing from the master data counts as
    // pieces).
    let mut unit_names: Vec<String> = units
        .values()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !unit_names.iter().any(|u| u == "piece") {
        unit_names.push("piece".into());
    }
    let unit_ix = |u: &str| unit_names.iter().position(|n| n == u).unwrap_or(0);
    let sku_unit: Vec<usize> = sku_names
        .iter()
        .map(|code| unit_ix(units.get(code).map_or("piece", String::as_str)))
        .collect();
    // Unit indices in name order, the order the figures are listed in.
    let mut unit_order: Vec<usize> = (0..unit_names.len()).collect();
    unit_order.sort_by(|a, b| unit_names[*a].cmp(&unit_names[*b]));

    let mut acc: Vec<UnitAcc> = (0..unit_names.len()).map(|_| UnitAcc::default()).collect();
    for code in units.keys() {
        acc[sku_unit[sku_index[code] as usize]].skus += 1;
    }
    let n_skus = sku_names.len();
    // Forecast accuracy: the forecast the hub stored for each SKU and day of the period.
    let mut stored_forecast: Vec<Vec<Option<f64>>> = vec![vec![None; n_skus]; days as usize];
    read_stored_forecasts(conn, from, to, &sku_index, &mut stored_forecast)
        .map_err(sql_error(conn))?;
    let mut receipts = 0i64;
    let (mut sold, mut stocked) = (vec![false; n_skus], vec![false; n_skus]);
    let (mut sold_n, mut stocked_n) = (0usize, 0usize);
    let mut daily: Vec<DayFigures> = Vec::with_capacity(days as usize);
    for (d, state) in states.iter().enumerate() {
        use super::report_rollup::{
            SKU_CENSORED, SKU_HAD_HISTORY, SKU_MOVED, SKU_SOLD, SKU_STOCKED,
        };
        let day = from + chrono::Days::new(d as u64);
        let mut day_units: Vec<Option<DayUnitFigures>> = vec![None; unit_names.len()];
        let (mut day_stocked, mut day_sold) = (0usize, 0usize);
        let mut day_forecast: Vec<ForecastAcc> = vec![ForecastAcc::default(); unit_names.len()];
        // The day's listed SKUs in index order (their codes' order while every SKU is in the
        // master data).
        let mut entries: Vec<(usize, &super::report_rollup::SkuDay)> = state
            .skus
            .iter()
            .map(|e| (sku_index[&e.sku] as usize, e))
            .collect();
        if !entries.is_sorted_by_key(|(i, _)| *i) {
            entries.sort_by_key(|(i, _)| *i);
        }
        let (mut day_listed, mut day_out) = (0i64, 0i64);
        for (sku, e) in entries {
            let unit = sku_unit[sku];
            if e.has(SKU_STOCKED) {
                stocked_n += usize::from(!std::mem::replace(&mut stocked[sku], true));
                day_stocked += 1;
            }
            if e.has(SKU_SOLD) {
                sold_n += usize::from(!std::mem::replace(&mut sold[sku], true));
                day_sold += 1;
            }
            let a = &mut acc[unit];
            if e.has(SKU_MOVED) {
                let du = day_units[unit].get_or_insert_with(DayUnitFigures::default);
                du.received_quantity += e.received;
                du.handed_over_quantity += e.issued;
                du.lost_quantity += e.lost;
                a.received += e.received;
                a.issued += e.issued;
                a.lost += e.lost;
            }
            // Only SKUs with a movement by the end of the day are listed that day.
            a.listed_days += 1;
            day_listed += 1;
            let b = e.balance;
            if e.has(SKU_HAD_HISTORY) && !e.has(SKU_CENSORED) && b > 0 {
                let f = &mut day_forecast[unit];
                match stored_forecast[d][sku] {
                    Some(forecast) => {
                        // What was handed over that day (nothing when it did not move).
                        let sold = e.issued as f64;
                        f.abs_error += (forecast - sold).abs();
                        f.actual += sold;
                        f.sku_days += 1;
                    }
                    None => f.missing += 1,
                }
            }
            if b <= 0 {
                a.out_days += 1;
                day_out += 1;
            } else {
                a.stock_sum += b;
                day_units[unit]
                    .get_or_insert_with(DayUnitFigures::default)
                    .stock_quantity += b;
            }
        }
        receipts += state.receipts;
        for (a, f) in acc.iter_mut().zip(&day_forecast) {
            a.forecast.abs_error += f.abs_error;
            a.forecast.actual += f.actual;
            a.forecast.sku_days += f.sku_days;
            a.forecast.missing += f.missing;
        }
        let by_unit = unit_order
            .iter()
            .filter_map(|u| {
                let figures = day_units[*u].take();
                let forecast = day_forecast[*u];
                (figures.is_some() || forecast.sku_days > 0)
                    .then(|| (*u, figures.unwrap_or_default(), forecast))
            })
            .map(|(u, f, forecast)| DayUnitFigures {
                unit: unit_names[u].clone(),
                turnover_days: ratio(f.stock_quantity as f64, f.handed_over_quantity as f64),
                loss_rate: ratio(f.lost_quantity as f64, f.received_quantity as f64),
                forecast_sku_days: forecast.sku_days,
                forecast_sku_days_missing: forecast.missing,
                forecast_wape: forecast.wape(),
                ..f
            })
            .collect();
        daily.push(DayFigures {
            date: day.to_string(),
            listed_skus: day_listed,
            out_of_stock_skus: day_out,
            stock_out_rate: ratio(day_out as f64, day_listed as f64),
            sell_through_rate: ratio(day_sold as f64, day_stocked as f64),
            by_unit,
            receipts: state.receipts,
            near_expiry_share: state.near_expiry(day, expiry_warn_days),
            ..Default::default()
        });
    }
    // The index of the period's day a moment falls on, if it falls in the period.
    let day_of = |at: i64| -> Option<usize> {
        (at >= start && at < end).then(|| day_ends.partition_point(|e| *e <= at))
    };
    let by_unit_days = acc
        .iter()
        .fold((0i64, 0i64), |t, a| (t.0 + a.listed_days, t.1 + a.out_days));
    let by_unit: Vec<UnitFigures> = unit_order
        .iter()
        .map(|u| (unit_names[*u].clone(), &acc[*u]))
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
            forecast_sku_days_missing: a.forecast.missing,
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
    let order_fill_rate = order_fill_rate(&collected, &day_of, fill_by_day.as_ref(), &mut daily);
    let disputes = disputes(conn, start, end, &day_of, &mut daily)?;
    let held_lines = held_lines(conn, now)?;
    let tolerance = settings.on_time_tolerance_minutes;
    let deliveries = deliveries(
        conn,
        (from, to),
        zone,
        tolerance,
        now,
        &day_ends,
        &mut daily,
    )?;
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
        sell_through_rate: ratio(sold_n as f64, stocked_n as f64),
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
        deliveries,
        delivery_on_time_tolerance_minutes: tolerance,
        rollup_days,
        closed_days_from_journal: day_ends
            .iter()
            .filter(|e| **e <= now.millis())
            .count()
            .saturating_sub(rollup_days),
    })
}

/// Deliveries not cancelled whose expected time may fall in the site days `[?1, ?2]` (its
/// date part, a day wider each side for offsets; [`expected_moment`] decides), with when
/// their first line was decided. The expected time is `expected_at` of the stored manifest
/// (`hub_contract::stored::decode_manifest`'s shape).
const DELIVERIES_SQL: &str = "SELECT json_extract(m.body, '$.expected_at'),
       (SELECT MIN(d.decided_at) FROM line_decision d WHERE d.delivery_id = m.delivery_id)
     FROM delivery_manifest m
     WHERE m.cancelled = 0
       AND substr(json_extract(m.body, '$.expected_at'), 1, 10) BETWEEN ?1 AND ?2";

/// A manifest's expected time: RFC 3339 (`2026-11-25T06:00:00+08:00`), or a date and time
/// without offset read in the site's zone; `None` for anything else (a time without a date
/// cannot be put on a day).
pub fn expected_moment(text: &str, zone: chrono_tz::Tz) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text.trim()) {
        return Some(t.timestamp_millis());
    }
    [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| chrono::NaiveDateTime::parse_from_str(text.trim(), f).ok())
    .and_then(|local| zone.from_local_datetime(&local).earliest())
    .map(|t| t.timestamp_millis())
}

/// Deliveries expected in the period `(from, to)`, each counted on the site day of its
/// expected time (`day_ends`: the end of each of the period's days) in `daily`.
fn deliveries(
    conn: &Connection,
    (from, to): (NaiveDate, NaiveDate),
    zone: chrono_tz::Tz,
    tolerance_minutes: i64,
    now: Timestamp,
    day_ends: &[i64],
    daily: &mut [DayFigures],
) -> Result<DeliveryFigures, StoreError> {
    let start = crate::clock::day_start(zone, from).millis();
    let end = crate::clock::day_start(zone, to).millis();
    let wide = (
        (from - chrono::Days::new(1)).to_string(),
        (to + chrono::Days::new(1)).to_string(),
    );
    let rows: Vec<(Option<String>, Option<i64>)> = conn
        .prepare_cached(DELIVERIES_SQL)
        .and_then(|mut st| {
            st.query_map(params![wide.0, wide.1], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql_error(conn))?;
    let tolerance = tolerance_minutes * 60_000;
    let mut f = DeliveryFigures::default();
    for (expected, received) in rows {
        let Some(expected) = expected.and_then(|e| expected_moment(&e, zone)) else {
            continue;
        };
        if expected < start || expected >= end {
            continue;
        }
        let d = day_ends.partition_point(|e| *e <= expected);
        let day_end = day_ends[d];
        let count = |f: &mut DeliveryFigures| {
            f.due += 1;
            match received {
                Some(at) if at < day_end => {
                    if at > expected + tolerance {
                        f.late += 1;
                    } else if at < expected - tolerance {
                        f.early += 1;
                    } else {
                        f.on_time += 1;
                    }
                }
                _ if day_end <= now.millis() => f.never_received += 1,
                _ => f.still_expected += 1,
            }
        };
        count(&mut f);
        count(&mut daily[d].deliveries);
    }
    let rate = |f: &mut DeliveryFigures| {
        f.on_time_rate = ratio(f.on_time as f64, (f.due - f.still_expected) as f64);
    };
    rate(&mut f);
    daily.iter_mut().for_each(|d| rate(&mut d.deliveries));
    Ok(f)
}

/// The day-ahead forecasts stored for the period's days (`day_forecast`) into
/// `forecasts[day][sku]`, SKUs by the journal's index (a SKU the journal does not know has
/// no listed day to count).
fn read_stored_forecasts(
    conn: &Connection,
    from: NaiveDate,
    to: NaiveDate,
    sku_index: &HashMap<String, u32>,
    forecasts: &mut [Vec<Option<f64>>],
) -> rusqlite::Result<()> {
    let mut st = conn.prepare_cached(STORED_FORECASTS_SQL)?;
    let mut rows = st.query(params![from.to_string(), to.to_string()])?;
    while let Some(r) = rows.next()? {
        let Ok(day) = r.get_ref(0)?.as_str()?.parse::<NaiveDate>() else {
            continue;
        };
        let d = (day - from).num_days();
        if let (Ok(d), Some(sku)) = (usize::try_from(d), sku_index.get(r.get_ref(1)?.as_str()?))
            && let Some(slot) = forecasts
                .get_mut(d)
                .and_then(|day| day.get_mut(*sku as usize))
        {
            *slot = Some(r.get(2)?);
        }
    }
    Ok(())
}

/// The stored day-ahead forecasts of the days `[?1, ?2)`.
const STORED_FORECASTS_SQL: &str =
    "SELECT day, sku, forecast FROM day_forecast WHERE day >= ?1 AND day < ?2";

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
/// `by_day`: the units ordered and handed over per collection day when they come from the
/// rollups (`report_rollup`) rather than per order.
fn order_fill_rate(
    collected: &Collected,
    day_of: &DayOf,
    by_day: Option<&(Vec<i64>, Vec<i64>)>,
    daily: &mut [DayFigures],
) -> Option<f64> {
    let (mut ordered, mut handed) = (0i64, 0i64);
    match by_day {
        None => {
            for &(at, o, h) in &collected.rows {
                ordered += o;
                handed += h;
                if let Some(d) = day_of(at) {
                    daily[d].units_ordered += o;
                    daily[d].units_handed_over += h;
                }
            }
        }
        Some((o_by_day, h_by_day)) => {
            for (d, (o, h)) in o_by_day.iter().zip(h_by_day).enumerate() {
                ordered += o;
                handed += h;
                daily[d].units_ordered += o;
                daily[d].units_handed_over += h;
            }
        }
    }
    for d in daily.iter_mut() {
        d.order_fill_rate = ratio(d.units_handed_over as f64, d.units_ordered as f64);
    }
    ratio(handed as f64, ordered as f64)
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

/// The rows the report read for the site's days `from ..= to - 1` before the rollups (the
/// whole journal and the live tables), fetched with plain queries and nothing computed: shown
/// by `hub bench dashboard` beside [`raw_reads_with_rollups`] for what the rollups saved.
/// Returns the number of rows read.
pub fn raw_reads(
    conn: &Connection,
    from: NaiveDate,
    to: NaiveDate,
    zone: chrono_tz::Tz,
) -> Result<i64, StoreError> {
    raw_reads_of(conn, from, to, zone, true)
}

/// The rows the report reads for the site's days `from ..= to - 1` with its rollups: the
/// state row, the period's day records, the journal's tail after them and the
/// live tables, fetched with plain queries and nothing computed: the baseline `hub bench
/// dashboard` times the report against. Returns the number of rows read.
pub fn raw_reads_with_rollups(
    conn: &Connection,
    from: NaiveDate,
    to: NaiveDate,
    zone: chrono_tz::Tz,
) -> Result<i64, StoreError> {
    Ok(super::report_rollup::raw_reads(conn, from, to)?
        + raw_reads_of(conn, from, to, zone, false)?)
}

fn raw_reads_of(
    conn: &Connection,
    from: NaiveDate,
    to: NaiveDate,
    zone: chrono_tz::Tz,
    whole_journal: bool,
) -> Result<i64, StoreError> {
    let start = crate::clock::day_start(zone, from).millis();
    let end = crate::clock::day_start(zone, to).millis();
    let mut rows = 0i64;
    let journal = "SELECT journal_seq, sku, lot, expiry, kind, quantity, delta, at, reference FROM movement WHERE ?1 = ?1 AND ?2 = ?2";
    let queries: [&str; 7] = [
        if whole_journal {
            journal
        } else {
            "SELECT 1 WHERE ?1 = 0 AND ?2 = 0"
        },
        "SELECT code, unit FROM sku WHERE ?1 = ?1 AND ?2 = ?2",
        "SELECT at FROM handover WHERE at >= ?1 AND at < ?2",
        "SELECT d.decided_at, d.outcome, q.status FROM line_decision d LEFT JOIN quarantine q ON q.delivery_id = d.delivery_id AND q.line_no = d.line_no WHERE d.decided_at >= ?1 AND d.decided_at < ?2",
        "SELECT closes_at, collected_at FROM pickup_order WHERE closes_at >= ?1 AND closes_at < ?2 AND status NOT IN ('cancelled', 'refunded')",
        // With the rollups the report reads the collected orders' ids only (their units come
        // from the rollups).
        if whole_journal {
            COLLECTED_SQL
        } else {
            COLLECTED_IDS_SQL
        },
        "SELECT opened_at, closed_at, first_response_at, photos_inspected_at FROM dispute WHERE opened_at >= ?1 AND opened_at < ?2",
    ];
    // The stored forecasts are keyed by site day, the other rows by time; the deliveries by
    // the date of their expected time, a day wider each side (as the report reads them).
    let (from_day, to_day) = (from.to_string(), to.to_string());
    let (wide_from, wide_to) = (
        (from - chrono::Days::new(1)).to_string(),
        (to + chrono::Days::new(1)).to_string(),
    );
    let by_time: [&dyn rusqlite::ToSql; 2] = [&start, &end];
    let by_day: [&dyn rusqlite::ToSql; 2] = [&from_day, &to_day];
    let by_wide_day: [&dyn rusqlite::ToSql; 2] = [&wide_from, &wide_to];
    let all = queries.iter().map(|q| (*q, &by_time)).chain([
        (STORED_FORECASTS_SQL, &by_day),
        (DELIVERIES_SQL, &by_wide_day),
    ]);
    for (query, bounds) in all {
        let mut st = conn.prepare(query).map_err(sql_error(conn))?;
        let columns = st.column_count();
        let mut found = st.query(&bounds[..]).map_err(sql_error(conn))?;
        while let Some(row) = found.next().map_err(sql_error(conn))? {
            // Every column, as the report reads them (borrowed, nothing converted).
            for i in 0..columns {
                let _ = row.get_ref(i).map_err(sql_error(conn))?;
            }
            rows += 1;
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoreOptions};

    /// The journal is read without a temporary B-tree (a sort of every movement up to the
    /// period's end, the report's main cost on a busy site).
    #[test]
    fn the_journal_is_read_without_sorting_it_in_sql() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("hub.sqlite"),
            "s1",
            &StoreOptions::default(),
        )
        .unwrap();
        let plan: Vec<String> = store
            .read_blocking(|c| {
                c.prepare(&format!(
                    "EXPLAIN QUERY PLAN {}",
                    crate::store::report_journal::JOURNAL_SQL
                ))
                .and_then(|mut st| {
                    st.query_map([], |r| r.get::<_, String>(3))
                        .and_then(|rows| rows.collect())
                })
                .map_err(sql_error(c))
            })
            .unwrap();
        assert!(!plan.is_empty());
        assert!(
            plan.iter().all(|step| !step.contains("TEMP B-TREE")),
            "{plan:?}"
        );
    }
}

//! What the demand forecast reads from the journal: a SKU's days at the site (units handed
//! over, whether it ran out, whether it was listed yet) on the site's calendar, and the shelf
//! life of its latest receipt.
//!
//! A day is a stock-out day when a handover or write-off took the SKU's stock to zero (or
//! below) or the day ended with nothing on hand: its handovers are then a lower bound of
//! demand (censored), not demand. A day that starts empty and is restocked in the morning is
//! not one. A SKU exists from the day of its first movement.

use super::{StoreError, sql_error};
use chrono::NaiveDate;
use hub_core::Timestamp;
use hub_forecast::DailyObservation;
use rusqlite::{Connection, params};

/// Days of history the forecast looks at.
pub const HISTORY_DAYS: u64 = 182;

/// The SKU's days from `HISTORY_DAYS` before `today` up to the day before `today`.
pub fn daily_history(
    conn: &Connection,
    sku: &str,
    today: NaiveDate,
    zone: chrono_tz::Tz,
) -> Result<Vec<DailyObservation>, StoreError> {
    daily_history_between(
        conn,
        sku,
        today - chrono::Days::new(HISTORY_DAYS),
        today,
        zone,
    )
}

/// The SKU's days from `first_day` up to the day before `today`, each counted exactly as
/// `daily_history` counts it (so a slice of them is what `daily_history` gives for a later day).
pub fn daily_history_between(
    conn: &Connection,
    sku: &str,
    first_day: NaiveDate,
    today: NaiveDate,
    zone: chrono_tz::Tz,
) -> Result<Vec<DailyObservation>, StoreError> {
    let window_start = crate::clock::day_start(zone, first_day);
    let window_end = crate::clock::day_start(zone, today);
    let (opening, first_at): (i64, Option<i64>) = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(CASE WHEN at < ?2 THEN delta ELSE 0 END), 0), MIN(at)
             FROM movement WHERE sku = ?1",
        )
        .and_then(|mut st| {
            st.query_row(params![sku, window_start.millis()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
        })
        .map_err(sql_error(conn))?;
    let Some(first_at) = first_at else {
        return Ok(Vec::new());
    };
    let listed_from = crate::clock::site_date(zone, Timestamp(first_at));
    let rows: Vec<(String, i64, i64, i64)> = conn
        .prepare_cached(
            "SELECT kind, quantity, delta, at FROM movement
             WHERE sku = ?1 AND at >= ?2 AND at < ?3 ORDER BY at, journal_seq",
        )
        .and_then(|mut st| {
            st.query_map(
                params![sku, window_start.millis(), window_end.millis()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .and_then(|rows| rows.collect())
        })
        .map_err(sql_error(conn))?;
    let mut days = Vec::with_capacity((today - first_day).num_days().max(0) as usize);
    let mut balance = opening;
    let mut i = 0;
    let mut date = first_day;
    while date < today {
        let end = crate::clock::day_start(zone, date + chrono::Days::new(1)).millis();
        let mut sold = 0i64;
        let mut stocked_out = false;
        while i < rows.len() && rows[i].3 < end {
            let (kind, quantity, delta, _) = &rows[i];
            balance += delta;
            if kind == "issue" {
                sold += quantity;
            }
            stocked_out |= *delta < 0 && balance <= 0;
            i += 1;
        }
        stocked_out |= balance <= 0;
        let existed = date >= listed_from;
        days.push(DailyObservation {
            date,
            sold: sold as f64,
            stocked_out: existed && stocked_out,
            existed,
        });
        date = date + chrono::Days::new(1);
    }
    Ok(days)
}

/// Days from the latest receipt with an expiry to that expiry (on the site's calendar), at
/// least 1; `None` when no receipt had an expiry (not perishable, or not known).
pub fn shelf_life_days(
    conn: &Connection,
    sku: &str,
    zone: chrono_tz::Tz,
) -> Result<Option<u32>, StoreError> {
    let row: Option<(i64, String)> = conn
        .prepare_cached(
            "SELECT at, expiry FROM movement WHERE sku = ?1 AND kind = 'receipt' AND expiry IS NOT NULL
             ORDER BY journal_seq DESC LIMIT 1",
        )
        .and_then(|mut st| {
            use rusqlite::OptionalExtension;
            st.query_row([sku], |r| Ok((r.get(0)?, r.get(1)?))).optional()
        })
        .map_err(sql_error(conn))?;
    Ok(row.and_then(|(at, expiry)| {
        let expiry: NaiveDate = expiry.parse().ok()?;
        let received = crate::clock::site_date(zone, Timestamp(at));
        Some((expiry - received).num_days().clamp(1, 3650) as u32)
    }))
}

/// Every stored demand signal (past ones too: the forecast divides them out of the history).
/// A row that cannot be read is skipped with a warning rather than stopping stock checks.
pub fn signals(conn: &Connection) -> Result<Vec<hub_forecast::DemandSignal>, StoreError> {
    let rows: Vec<(String, String)> = conn
        .prepare_cached("SELECT id, body FROM demand_signal ORDER BY start_day, id")
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql_error(conn))?;
    Ok(rows
        .into_iter()
        .filter_map(
            |(id, body)| match hub_contract::stored::decode_demand_signal(&body) {
                Ok(signal) => Some(signal),
                Err(e) => {
                    tracing::warn!(signal = %id, error = %e, "stored demand signal skipped");
                    None
                }
            },
        )
        .collect())
}

/// Every stored demand signal with when the hub received it (milliseconds), so that a past
/// day's forecast can be made with only the signals known then.
pub fn signals_with_arrival(
    conn: &Connection,
) -> Result<Vec<(i64, hub_forecast::DemandSignal)>, StoreError> {
    let rows: Vec<(String, String, i64)> = conn
        .prepare_cached("SELECT id, body, received_at FROM demand_signal ORDER BY start_day, id")
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql_error(conn))?;
    Ok(rows
        .into_iter()
        .filter_map(
            |(id, body, at)| match hub_contract::stored::decode_demand_signal(&body) {
                Ok(signal) => Some((at, signal)),
                Err(e) => {
                    tracing::warn!(signal = %id, error = %e, "stored demand signal skipped");
                    None
                }
            },
        )
        .collect())
}

/// Stores signals by id (a signal sent again replaces the stored one).
pub fn store_signals(
    conn: &Connection,
    signals: &[hub_forecast::DemandSignal],
    now: Timestamp,
) -> Result<(), StoreError> {
    for signal in signals {
        conn.prepare_cached(
            "INSERT INTO demand_signal (id, body, start_day, end_day, received_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET body = ?2, start_day = ?3, end_day = ?4, received_at = ?5",
        )
        .and_then(|mut st| {
            st.execute(params![
                signal.id,
                hub_contract::stored::encode_demand_signal(signal),
                signal.start.to_string(),
                signal.end.to_string(),
                now.millis()
            ])
        })
        .map_err(sql_error(conn))?;
    }
    Ok(())
}

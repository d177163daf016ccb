//! The day-ahead forecasts the hub made: for each site day, the first time the hub runs on that
//! day (the daemon's periodic checks, so also offline and on a box that was off at midnight) it
//! forecasts every SKU with history for that day and keeps the forecast, one row per SKU and
//! day, written in one transaction and never rewritten. The report's forecast accuracy reads
//! them (`report`), so it measures the forecasts the hub actually made instead of refitting
//! every SKU for every day of the period.
//!
//! The forecast is the one-day-ahead mean of `hub_forecast::forecast_sku` from the SKU's days
//! before that day (`demand::daily_history`: handovers are demand, stock-out days censored)
//! and the demand signals received before the day began, with the unit kind of the master data
//! (pieces for a SKU missing from it), when it was made and the model or fallback rule it came
//! from. A SKU without a movement before the day has no history and gets no row. A day the hub
//! did not run on (switched off all day, or before this table existed) has no rows: its
//! forecasts were never made, and none is made afterwards.

use super::{StoreError, demand, sql_error};
use chrono::NaiveDate;
use hub_core::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;

/// One stored forecast.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DayForecast {
    pub day: NaiveDate,
    pub sku: String,
    /// `piece` or `gram`.
    pub unit: String,
    /// Forecast quantity handed over that day (pieces or grams).
    pub forecast: f64,
    /// The model or fallback rule (`hub_forecast::Method::as_str`).
    pub method: String,
    /// Usable days of history the forecast was made from.
    pub history_days: i64,
    pub made_at: Timestamp,
}

/// Makes and stores the site day `day`'s forecasts unless they were made already; the number
/// of forecasts stored (0 when the day had them). Call it inside one write transaction (the
/// store's writer gives one). The daemon splits it (`made`, `make_day` on a reader, then
/// `store_day` on the writer) so that the fits do not hold the writer.
pub fn record_day(
    conn: &Connection,
    day: NaiveDate,
    zone: chrono_tz::Tz,
    now: Timestamp,
) -> Result<usize, StoreError> {
    if made(conn, day)? {
        return Ok(0);
    }
    let forecasts = make_day(conn, day, zone, now)?;
    store_day(conn, day, &forecasts)
}

/// Whether the site day `day`'s forecasts were made already.
pub fn made(conn: &Connection, day: NaiveDate) -> Result<bool, StoreError> {
    let done: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM day_forecast WHERE day = ?1 LIMIT 1")
        .and_then(|mut st| st.query_row([day.to_string()], |r| r.get(0)).optional())
        .map_err(sql_error(conn))?;
    Ok(done.is_some())
}

/// The site day `day`'s forecasts, made now (reads only).
pub fn make_day(
    conn: &Connection,
    day: NaiveDate,
    zone: chrono_tz::Tz,
    now: Timestamp,
) -> Result<Vec<DayForecast>, StoreError> {
    let begins = crate::clock::day_start(zone, day).millis();
    let known: Vec<hub_forecast::DemandSignal> = demand::signals_with_arrival(conn)?
        .into_iter()
        .filter(|(at, _)| *at < begins)
        .map(|(_, s)| s)
        .collect();
    let units: HashMap<String, String> = conn
        .prepare_cached("SELECT code, unit FROM sku")
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql_error(conn))?;
    let skus: Vec<String> = conn
        .prepare_cached("SELECT DISTINCT sku FROM movement")
        .and_then(|mut st| {
            st.query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql_error(conn))?;
    let config = hub_forecast::ForecastConfig::default();
    let mut made = Vec::with_capacity(skus.len());
    for sku in skus {
        let history = demand::daily_history(conn, &sku, day, zone)?;
        if !history.iter().any(|o| o.existed) {
            continue;
        }
        // Signals scoped to a category reach the SKU by its master data's category, as in
        // replenishment.
        let category = super::sku::category_of(conn, &sku)?.unwrap_or_default();
        let ctx = hub_forecast::SkuContext {
            sku: &sku,
            category: &category,
            prior_daily: None,
        };
        let forecast = hub_forecast::forecast_sku(&history, &ctx, &known, day, 1, &config);
        made.push(DayForecast {
            day,
            unit: units.get(&sku).map_or("piece", String::as_str).to_owned(),
            sku,
            forecast: forecast.days.first().map_or(0.0, |f| f.mean),
            method: forecast.method.as_str().to_owned(),
            history_days: forecast.fit.usable_days as i64,
            made_at: now,
        });
    }
    Ok(made)
}

/// Stores the site day `day`'s `forecasts` in the caller's transaction unless the day has
/// forecasts already (made by another run meanwhile): never rewritten. The number stored.
pub fn store_day(
    conn: &Connection,
    day: NaiveDate,
    forecasts: &[DayForecast],
) -> Result<usize, StoreError> {
    if made(conn, day)? {
        return Ok(0);
    }
    let mut stored = 0;
    for f in forecasts.iter().filter(|f| f.day == day) {
        stored += conn
            .prepare_cached(
                "INSERT INTO day_forecast (day, sku, unit, forecast, method, history_days, made_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (day, sku) DO NOTHING",
            )
            .and_then(|mut st| {
                st.execute(params![
                    day.to_string(),
                    f.sku,
                    f.unit,
                    f.forecast,
                    f.method,
                    f.history_days,
                    f.made_at.millis()
                ])
            })
            .map_err(sql_error(conn))?;
    }
    Ok(stored)
}

/// The stored forecasts of the site days `from ..= to - 1`, by day then SKU.
pub fn between(
    conn: &Connection,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DayForecast>, StoreError> {
    conn.prepare_cached(
        "SELECT day, sku, unit, forecast, method, history_days, made_at FROM day_forecast
         WHERE day >= ?1 AND day < ?2 ORDER BY day, sku",
    )
    .and_then(|mut st| {
        st.query_map(params![from.to_string(), to.to_string()], |r| {
            let day: String = r.get(0)?;
            Ok(DayForecast {
                day: day.parse().map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        0,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })?,
                sku: r.get(1)?,
                unit: r.get(2)?,
                forecast: r.get(3)?,
                method: r.get(4)?,
                history_days: r.get(5)?,
                made_at: Timestamp(r.get(6)?),
            })
        })
        .and_then(|rows| rows.collect())
    })
    .map_err(sql_error(conn))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoreOptions, ledger};
    use chrono::TimeZone;
    use hub_core::{BatchKey, Movement, MovementId, MovementKind, SkuCode};

    const ZONE: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
    }

    fn at(d: u32, hour: u32) -> Timestamp {
        Timestamp(
            ZONE.from_local_datetime(&day(d).and_hms_opt(hour, 0, 0).unwrap())
                .unwrap()
                .timestamp_millis(),
        )
    }

    fn record(c: &Connection, id: &str, sku: &str, kind: MovementKind, q: i64, when: Timestamp) {
        let m = Movement {
            id: MovementId::new(id).unwrap(),
            sku: SkuCode::new(sku).unwrap(),
            batch: Some(BatchKey::new("L1", None).unwrap()),
            kind,
            quantity: q,
            reason: "test".into(),
            reference: "test".into(),
            at: when,
        };
        ledger::record(c, &m).unwrap();
    }

    /// The first run on a day (here at 10:00, the box having been off at midnight) stores one
    /// forecast per SKU with history, in its unit kind, when it was made and its rule; a SKU
    /// first moved that day has none; a later run the same day stores nothing.
    #[test]
    fn the_days_forecasts_are_made_once_for_the_skus_with_history() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("hub.sqlite"),
            "s1",
            &StoreOptions::default(),
        )
        .unwrap();
        store
            .write_blocking(|c| {
                c.execute(
                    "INSERT INTO sku (code, name, unit, gtins, allow_negative, version, updated_at)
                     VALUES ('RICE', 'RICE', 'gram', '[]', 1, 1, 0), ('EGG', 'EGG', 'piece', '[]', 1, 1, 0),
                            ('NEW', 'NEW', 'piece', '[]', 1, 1, 0)",
                    [],
                )
                .map_err(sql_error(c))?;
                record(c, "r1", "RICE", MovementKind::Receipt, 9000, at(1, 8));
                record(c, "i1", "RICE", MovementKind::Issue, 1000, at(1, 12));
                record(c, "i2", "RICE", MovementKind::Issue, 3000, at(2, 12));
                record(c, "r2", "EGG", MovementKind::Receipt, 10, at(2, 8));
                record(c, "r3", "NEW", MovementKind::Receipt, 10, at(3, 8));
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let stored = store
            .write_blocking(|c| record_day(c, day(3), ZONE, at(3, 10)))
            .unwrap();
        assert_eq!(stored, 2);
        let rows = store.read_blocking(|c| between(c, day(3), day(4))).unwrap();
        let brief: Vec<(&str, &str, f64, &str, Timestamp)> = rows
            .iter()
            .map(|r| {
                (
                    r.sku.as_str(),
                    r.unit.as_str(),
                    r.forecast,
                    r.method.as_str(),
                    r.made_at,
                )
            })
            .collect();
        assert_eq!(
            brief,
            vec![
                ("EGG", "piece", 0.0, "history_mean", at(3, 10)),
                ("RICE", "gram", 2000.0, "history_mean", at(3, 10)),
            ]
        );
        let again = store
            .write_blocking(|c| record_day(c, day(3), ZONE, at(3, 11)))
            .unwrap();
        assert_eq!(again, 0);
        assert_eq!(
            store.read_blocking(|c| between(c, day(3), day(4))).unwrap(),
            rows
        );
    }
}

//! The figures the operations team steers by (`hub report`), computed for a period from the
//! journal. How they are shown is the CLI's (`cli_output`).
//!
//! - stock-out rate: share of SKU-days in the period that ended with nothing on hand;
//! - turnover days: average stock on hand ÷ average daily quantity handed over;
//! - loss rate: quantity written off ÷ quantity received;
//! - acceptance pass rate: accepted receiving lines ÷ decided lines (when receiving has data);
//! - handovers, receipts and open alerts.

use super::{StoreError, alert_book, sql_error};
use hub_core::Timestamp;
use hub_core::alerts::Alert;
use rusqlite::{Connection, params};
use std::collections::BTreeMap;

const DAY_MS: i64 = 86_400_000;

/// The operations report for `[from, to)`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpsReport {
    pub from: String,
    pub to: String,
    pub days: i64,
    pub skus: usize,
    pub stock_out_rate: f64,
    pub turnover_days: Option<f64>,
    pub loss_rate: Option<f64>,
    pub acceptance_pass_rate: Option<f64>,
    pub receipts: i64,
    pub received_quantity: i64,
    pub handovers: i64,
    pub handed_over_quantity: i64,
    pub lost_quantity: i64,
    pub open_alerts: Vec<Alert>,
}

/// Computes the report over whole days from `from` (inclusive) to `to` (exclusive).
pub fn compute(conn: &Connection, from: Timestamp, to: Timestamp) -> Result<OpsReport, StoreError> {
    let days = ((to.millis() - from.millis()) / DAY_MS).max(1);
    // Replay every SKU's balance to the end of each day of the period.
    let mut st = conn
        .prepare("SELECT sku, delta, at, kind, quantity FROM movement WHERE at < ?1 ORDER BY journal_seq")
        .map_err(sql_error(conn))?;
    let rows: Vec<(String, i64, i64, String, i64)> = st
        .query_map([to.millis()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .and_then(|rows| rows.collect())
        .map_err(sql_error(conn))?;
    let skus: Vec<String> = conn
        .prepare("SELECT code FROM sku")
        .and_then(|mut st| {
            st.query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql_error(conn))?;
    let mut balance: BTreeMap<&str, i64> = skus.iter().map(|s| (s.as_str(), 0)).collect();
    let (mut received, mut issued, mut lost, mut receipts) = (0i64, 0i64, 0i64, 0i64);
    let mut day_end = from.millis() + DAY_MS;
    let (mut sku_days_out, mut stock_sum) = (0i64, 0i64);
    let mut i = 0;
    for _ in 0..days {
        while i < rows.len() && rows[i].2 < day_end {
            let (sku, delta, at, kind, quantity) = &rows[i];
            *balance.entry(sku.as_str()).or_insert(0) += delta;
            if *at >= from.millis() {
                match kind.as_str() {
                    "receipt" => {
                        received += quantity;
                        receipts += 1;
                    }
                    "issue" => issued += quantity,
                    "loss" => lost += quantity,
                    _ => {}
                }
            }
            i += 1;
        }
        sku_days_out += balance.values().filter(|b| **b <= 0).count() as i64;
        stock_sum += balance.values().copied().filter(|b| *b > 0).sum::<i64>();
        day_end += DAY_MS;
    }
    let sku_days = (balance.len() as i64 * days).max(1);
    let handovers: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM handover WHERE at >= ?1 AND at < ?2",
            params![from.millis(), to.millis()],
            |r| r.get(0),
        )
        .map_err(sql_error(conn))?;
    let acceptance_pass_rate = acceptance_rate(conn, from, to)?;
    let avg_stock = stock_sum as f64 / days as f64;
    let avg_daily_issue = issued as f64 / days as f64;
    Ok(OpsReport {
        from: from.to_rfc3339(),
        to: to.to_rfc3339(),
        days,
        skus: balance.len(),
        stock_out_rate: sku_days_out as f64 / sku_days as f64,
        turnover_days: (avg_daily_issue > 0.0).then(|| avg_stock / avg_daily_issue),
        loss_rate: (received > 0).then(|| lost as f64 / received as f64),
        acceptance_pass_rate,
        receipts,
        received_quantity: received,
        handovers,
        handed_over_quantity: issued,
        lost_quantity: lost,
        open_alerts: alert_book::open_alerts(conn)?,
    })
}

/// Accepted ÷ decided receiving lines, when the receiving tables exist and have data.
fn acceptance_rate(
    conn: &Connection,
    from: Timestamp,
    to: Timestamp,
) -> Result<Option<f64>, StoreError> {
    let exists: bool = conn
        .query_row("SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'line_decision'", [], |r| r.get(0))
        .map_err(sql_error(conn))?;
    if !exists {
        return Ok(None);
    }
    let (decided, accepted): (i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE outcome = 'accepted') FROM line_decision WHERE decided_at >= ?1 AND decided_at < ?2",
            params![from.millis(), to.millis()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(sql_error(conn))?;
    Ok((decided > 0).then(|| accepted as f64 / decided as f64))
}

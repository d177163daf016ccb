//! The master data's unit weights (grams per unit of a SKU), as central sends them with
//! `sku_upsert`, for the pickup counter's weight cross-check. A SKU without one is not
//! cross-checked. SQL only; the rule is `hub_core::counter::check_bag`.

use super::StoreError;
use super::outbox::sql;
use rusqlite::{Connection, OptionalExtension, params};

/// Sets (`Some`) or clears (`None`) what one unit of `sku` weighs.
pub fn set(conn: &Connection, sku: &str, grams: Option<i64>) -> Result<(), StoreError> {
    match grams {
        Some(g) => conn
            .prepare_cached(
                "INSERT INTO sku_unit_weight (sku, grams) VALUES (?1, ?2)
                 ON CONFLICT (sku) DO UPDATE SET grams = ?2",
            )
            .and_then(|mut st| st.execute(params![sku, g])),
        None => conn
            .prepare_cached("DELETE FROM sku_unit_weight WHERE sku = ?1")
            .and_then(|mut st| st.execute([sku])),
    }
    .map(|_| ())
    .map_err(sql(conn))
}

/// What one unit of `sku` weighs, if the master data says.
pub fn get(conn: &Connection, sku: &str) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached("SELECT grams FROM sku_unit_weight WHERE sku = ?1")
        .and_then(|mut st| st.query_row([sku], |r| r.get(0)).optional())
        .map_err(sql(conn))
}

//! SKU master data as stored: upserts that respect versions, and look-ups.

use hub_core::{DomainEvent, Gtin, Sku, SkuCode, StockUnit, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::outbox::{self, sql};

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkuUpsert {
    Inserted,
    Updated,
    /// The stored version is newer or equal; nothing changed.
    Stale {
        stored_version: i64,
    },
}

fn unit_name(unit: StockUnit) -> &'static str {
    match unit {
        StockUnit::Piece => "piece",
        StockUnit::Gram => "gram",
    }
}

fn parse_unit(text: &str) -> StockUnit {
    if text == "gram" {
        StockUnit::Gram
    } else {
        StockUnit::Piece
    }
}

/// Stores SKU master data unless a newer version is already stored, and writes its event.
pub fn upsert(conn: &Connection, sku: &Sku, now: Timestamp) -> Result<SkuUpsert, StoreError> {
    let stored: Option<i64> = conn
        .prepare_cached("SELECT version FROM sku WHERE code = ?1")
        .and_then(|mut st| st.query_row([sku.code.as_str()], |r| r.get(0)).optional())
        .map_err(sql(conn))?;
    if let Some(stored_version) = stored
        && stored_version >= sku.version
    {
        return Ok(SkuUpsert::Stale { stored_version });
    }
    let gtins = hub_contract::stored::encode_gtins(&sku.gtins);
    conn.prepare_cached(
        "INSERT INTO sku (code, name, unit, gtins, allow_negative, version, updated_at, check_items)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (code) DO UPDATE SET name = ?2, unit = ?3, gtins = ?4, allow_negative = ?5,
             version = ?6, updated_at = ?7, check_items = ?8",
    )
    .and_then(|mut st| {
        st.execute(params![
            sku.code.as_str(),
            sku.name,
            unit_name(sku.unit),
            gtins,
            sku.allow_negative,
            sku.version,
            now.millis(),
            sku.check_items_at_handover
        ])
    })
    .map_err(sql(conn))?;
    outbox::append(conn, &DomainEvent::SkuUpserted { sku: sku.clone() }, now)?;
    Ok(if stored.is_some() {
        SkuUpsert::Updated
    } else {
        SkuUpsert::Inserted
    })
}

/// Reads one SKU.
pub fn get(conn: &Connection, code: &SkuCode) -> Result<Option<Sku>, StoreError> {
    conn.prepare_cached(
        "SELECT code, name, unit, gtins, allow_negative, version, check_items FROM sku WHERE code = ?1",
    )
    .and_then(|mut st| st.query_row([code.as_str()], row_to_sku).optional())
    .map_err(sql(conn))
}

/// Reads every SKU, by code.
pub fn all(conn: &Connection) -> Result<Vec<Sku>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT code, name, unit, gtins, allow_negative, version, check_items FROM sku ORDER BY code",
        )
        .map_err(sql(conn))?;
    st.query_map([], row_to_sku)
        .and_then(|rows| rows.collect())
        .map_err(sql(conn))
}

/// GTINs as stored: GTIN-14 since they are normalised on the way in; rows written before that
/// may hold other lengths, which are normalised here. One that is no GTIN at all (it could
/// never match a scan) is left out with a warning.
fn stored_gtins(sku: &str, json: &str) -> Vec<Gtin> {
    let texts: Vec<String> = hub_contract::stored::decode_gtin_texts(json).unwrap_or_default();
    texts
        .iter()
        .filter_map(|t| match Gtin::parse(t) {
            Ok(g) => Some(g),
            Err(e) => {
                tracing::warn!(sku, error = %e, "stored GTIN ignored; send the SKU's master data again");
                None
            }
        })
        .collect()
}

fn row_to_sku(r: &rusqlite::Row<'_>) -> rusqlite::Result<Sku> {
    let code: String = r.get(0)?;
    let gtins: String = r.get(3)?;
    let unit: String = r.get(2)?;
    Ok(Sku {
        gtins: stored_gtins(&code, &gtins),
        code: SkuCode::new(code).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })?,
        name: r.get(1)?,
        unit: parse_unit(&unit),
        allow_negative: r.get(4)?,
        check_items_at_handover: r.get(6)?,
        version: r.get(5)?,
    })
}

/// Every SKU code in the master data, sorted.
pub fn codes(conn: &Connection) -> Result<Vec<String>, StoreError> {
    conn.prepare_cached("SELECT code FROM sku ORDER BY code")
        .and_then(|mut st| {
            st.query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql(conn))
}

/// Every SKU of the master data as `(code, name)`, sorted by code.
pub fn names(conn: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    conn.prepare_cached("SELECT code, name FROM sku ORDER BY code")
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql(conn))
}

/// Whether the master data has a SKU with this code.
pub fn exists(conn: &Connection, code: &str) -> Result<bool, StoreError> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM sku WHERE code = ?1)")
        .and_then(|mut st| st.query_row([code], |r| r.get(0)))
        .map_err(sql(conn))
}

/// Sets a SKU's category from its master data (`None`: it has none). Only the version of the
/// master data just stored sets it (the caller applies it with that upsert).
pub fn set_category(
    conn: &Connection,
    code: &SkuCode,
    category: Option<&str>,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE sku SET category = ?2 WHERE code = ?1")
        .and_then(|mut st| st.execute(params![code.as_str(), category]))
        .map_err(sql(conn))?;
    Ok(())
}

/// A SKU's category, if its master data has one.
pub fn category_of(conn: &Connection, code: &str) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT category FROM sku WHERE code = ?1")
        .and_then(|mut st| {
            st.query_row([code], |r| r.get::<_, Option<String>>(0))
                .optional()
        })
        .map(Option::flatten)
        .map_err(sql(conn))
}

/// The SKUs of a category, by code.
pub fn in_category(conn: &Connection, category: &str) -> Result<Vec<String>, StoreError> {
    conn.prepare_cached("SELECT code FROM sku WHERE category = ?1 ORDER BY code")
        .and_then(|mut st| {
            st.query_map([category], |r| r.get(0))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql(conn))
}

//! The device-input journal and device health as stored.
//!
//! Every scan and stable weight is written to `device_input` in the same transaction as the
//! workflow it feeds, together with what the workflow made of it, so an input staff saw
//! accepted is never lost and a refused one is still on record. Online/offline changes raise
//! or clear a `device_offline` alert and write an outbox event. Nothing here reads devices.

use hub_contract::stored::StoredDocument;
use hub_core::alerts::{Alert, AlertKind, Tier};
use hub_core::{DomainEvent, Timestamp};
use rusqlite::{Connection, params};
use serde::Serialize;

use super::StoreError;
use super::outbox::{self, sql};

/// One input as it arrived.
#[derive(Debug, Clone)]
pub struct NewInput<'a> {
    pub device: &'a str,
    pub station: &'a str,
    /// `scan` or `weight`.
    pub kind: &'a str,
    pub code: Option<&'a str>,
    pub grams: Option<i64>,
    /// What the scan was classified as (kept as JSON).
    pub parsed: Option<hub_contract::devices::ParsedCode>,
    pub raw: &'a str,
    pub received_at: Timestamp,
}

/// A journal row.
#[derive(Debug, Clone, Serialize)]
pub struct InputRow {
    pub id: i64,
    pub device: String,
    pub station: String,
    pub kind: String,
    pub code: Option<String>,
    pub grams: Option<i64>,
    pub parsed: Option<StoredDocument>,
    pub raw: String,
    pub received_at: i64,
    /// `applied`, `flagged` (recorded on its line with a reason that holds it for review)
    /// or `refused` (the workflow changed nothing); `pending` only inside its transaction.
    pub outcome: String,
    pub detail: String,
}

/// Journals an input (outcome pending); returns its id.
pub fn journal(conn: &Connection, input: &NewInput<'_>) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO device_input (device, station, kind, code, grams, parsed, raw, received_at, outcome, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', '')",
    )
    .and_then(|mut st| {
        st.execute(params![
            input.device,
            input.station,
            input.kind,
            input.code,
            input.grams,
            input.parsed.as_ref().map(hub_contract::devices::encode_parsed_code),
            input.raw,
            input.received_at.millis()
        ])
    })
    .map_err(sql(conn))?;
    Ok(conn.last_insert_rowid())
}

/// Records what was done with an input.
pub fn set_outcome(
    conn: &Connection,
    id: i64,
    outcome: &str,
    detail: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE device_input SET outcome = ?2, detail = ?3 WHERE id = ?1")
        .and_then(|mut st| st.execute(params![id, outcome, detail]))
        .map_err(sql(conn))?;
    Ok(())
}

/// The most recent inputs, newest first.
pub fn recent(conn: &Connection, limit: usize) -> Result<Vec<InputRow>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT id, device, station, kind, code, grams, parsed, raw, received_at, outcome, detail
             FROM device_input ORDER BY id DESC LIMIT ?1",
        )
        .map_err(sql(conn))?;
    st.query_map([limit as i64], |r| {
        let parsed: Option<String> = r.get(6)?;
        Ok(InputRow {
            id: r.get(0)?,
            device: r.get(1)?,
            station: r.get(2)?,
            kind: r.get(3)?,
            code: r.get(4)?,
            grams: r.get(5)?,
            parsed: parsed.and_then(|p| hub_contract::stored::decode_document(&p).ok()),
            raw: r.get(7)?,
            received_at: r.get(8)?,
            outcome: r.get(9)?,
            detail: r.get(10)?,
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(sql(conn))
}

/// Records a device going online or offline: the outbox event and the alert, together.
pub fn set_device_state(
    conn: &Connection,
    device: &str,
    online: bool,
    detail: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    if online {
        alerts_clear(conn, device, now)?;
        outbox::append(
            conn,
            &DomainEvent::DeviceOnline {
                device: device.to_owned(),
                detail: detail.to_owned(),
            },
            now,
        )?;
    } else {
        super::alert_book::raise(
            conn,
            &Alert {
                kind: AlertKind::DeviceOffline,
                subject: device.to_owned(),
                tier: Tier::Orange,
                message: format!("device {device} is offline: {detail}"),
            },
            now,
        )?;
        outbox::append(
            conn,
            &DomainEvent::DeviceOffline {
                device: device.to_owned(),
                reason: detail.to_owned(),
            },
            now,
        )?;
    }
    Ok(())
}

fn alerts_clear(conn: &Connection, device: &str, now: Timestamp) -> Result<bool, StoreError> {
    super::alert_book::clear(conn, AlertKind::DeviceOffline, device, now)
}

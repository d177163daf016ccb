//! Station requests applied once, with their replies.
//!
//! A staff action from a station (an MQTT station command today, the station app later)
//! carries an id. Its reply is stored in the same transaction as the action's effects, keyed
//! by station and id, so a request that arrives again (a redelivery after a reconnect, a
//! retry after a network blip) gets the stored reply and is never run twice. Stored replies
//! also wait here until the uplink has published them and the broker acknowledged it, so a
//! reconnect loses none.

use super::StoreError;
use super::outbox::sql;
use hub_core::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

/// A request seen before: the hash of its body and the reply it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    pub reply_id: i64,
    pub body_sha256: String,
    pub reply: String,
}

/// The stored request `request_id` of `station`, if any.
pub fn find(
    conn: &Connection,
    station: &str,
    request_id: &str,
) -> Result<Option<SeenRequest>, StoreError> {
    conn.prepare_cached(
        "SELECT reply_id, body_sha256, reply FROM station_request WHERE station = ?1 AND request_id = ?2",
    )
    .and_then(|mut st| {
        st.query_row(params![station, request_id], |r| {
            Ok(SeenRequest {
                reply_id: r.get(0)?,
                body_sha256: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                reply: r.get(2)?,
            })
        })
        .optional()
    })
    .map_err(sql(conn))
}

/// A reply to store (and deliver).
#[derive(Debug, Clone, Copy)]
pub struct NewReply<'a> {
    pub station: &'a str,
    /// The request's id; `None` for a reply that answers no readable request.
    pub request_id: Option<&'a str>,
    pub body_sha256: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub staff: Option<&'a str>,
    /// The reply as published.
    pub reply: &'a str,
    /// Whether the uplink publishes it on the station's reply topic: `false` for a reply
    /// already given another way (the station app's HTTP answer), kept only for a retry of its
    /// request id and stored as delivered.
    pub publish: bool,
}

/// Stores a reply, waiting to be published. Returns its id.
pub fn record(conn: &Connection, reply: &NewReply<'_>, now: Timestamp) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO station_request (station, request_id, body_sha256, kind, staff, reply, at, delivered)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut st| {
        st.execute(params![
            reply.station,
            reply.request_id,
            reply.body_sha256,
            reply.kind,
            reply.staff,
            reply.reply,
            now.millis(),
            i64::from(!reply.publish)
        ])
    })
    .map_err(sql(conn))?;
    Ok(conn.last_insert_rowid())
}

/// A request came again: its stored reply is published again.
pub fn redeliver(conn: &Connection, reply_id: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE station_request SET delivered = 0 WHERE reply_id = ?1")
        .and_then(|mut st| st.execute([reply_id]))
        .map_err(sql(conn))?;
    Ok(())
}

/// A reply waiting to be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingReply {
    pub reply_id: i64,
    pub station: String,
    pub reply: String,
}

/// Replies not yet acknowledged by the broker, oldest first, recorded at or after
/// `not_before` (older ones are of no use to a tablet any more).
pub fn pending(
    conn: &Connection,
    not_before: Timestamp,
    limit: usize,
) -> Result<Vec<PendingReply>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT reply_id, station, reply FROM station_request
             WHERE delivered = 0 AND at >= ?1 ORDER BY reply_id LIMIT ?2",
        )
        .map_err(sql(conn))?;
    st.query_map(params![not_before.millis(), limit as i64], |r| {
        Ok(PendingReply {
            reply_id: r.get(0)?,
            station: r.get(1)?,
            reply: r.get(2)?,
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(sql(conn))
}

/// The broker acknowledged these replies.
pub fn mark_delivered(conn: &Connection, reply_ids: &[i64]) -> Result<(), StoreError> {
    let mut st = conn
        .prepare_cached("UPDATE station_request SET delivered = 1 WHERE reply_id = ?1")
        .map_err(sql(conn))?;
    for id in reply_ids {
        st.execute([id]).map_err(sql(conn))?;
    }
    Ok(())
}

/// Forgets requests older than `before` (their ids may then be used again). Returns how many.
pub fn prune(conn: &Connection, before: Timestamp) -> Result<usize, StoreError> {
    conn.prepare_cached("DELETE FROM station_request WHERE at < ?1")
        .and_then(|mut st| st.execute([before.millis()]))
        .map_err(sql(conn))
}

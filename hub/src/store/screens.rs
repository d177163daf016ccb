//! What the station app keeps across a restart of the hub: staff sessions and what each
//! station's screen shows.
//!
//! A session is stored under the SHA-256 of its cookie token (the token itself is never
//! stored), with its CSRF token and the time it was last used; a session idle longer than the
//! caller's limit, of a disabled staff member, or on another device is not found. A screen is
//! stored as the caller's JSON with its change number; a write with an older number than the
//! stored one changes nothing, so writes that arrive out of order keep the newest screen.

use super::StoreError;
use super::outbox::sql;
use super::staff::Role;
use hub_core::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

/// A stored session, joined with its staff member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub staff_id: String,
    pub name: String,
    pub role: Role,
    /// The staff member's language tag.
    pub lang: String,
    pub device_id: String,
    pub station: String,
    pub csrf: String,
    pub last_seen: Timestamp,
}

/// A new session under `token_hash`; sessions idle since before `idle_before` are deleted on
/// the way.
#[allow(clippy::too_many_arguments)] // reason: one row's columns, each a plain value
pub fn open_session(
    conn: &Connection,
    token_hash: &str,
    staff_id: &str,
    device_id: &str,
    station: &str,
    csrf: &str,
    now: Timestamp,
    idle_before: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM staff_session WHERE last_seen < ?1")
        .and_then(|mut st| st.execute(params![idle_before.millis()]))
        .map_err(sql(conn))?;
    conn.prepare_cached(
        "INSERT INTO staff_session (token_hash, staff_id, device_id, station, csrf, created_at, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )
    .and_then(|mut st| {
        st.execute(params![token_hash, staff_id, device_id, station, csrf, now.millis()])
    })
    .map_err(sql(conn))?;
    Ok(())
}

/// The session under `token_hash` if it was used at or after `idle_before` and its staff
/// member is enabled.
pub fn session(
    conn: &Connection,
    token_hash: &str,
    idle_before: Timestamp,
) -> Result<Option<StoredSession>, StoreError> {
    conn.prepare_cached(
        "SELECT s.staff_id, f.name, f.role, f.lang, s.device_id, s.station, s.csrf, s.last_seen
         FROM staff_session s JOIN staff f ON f.staff_id = s.staff_id
         WHERE s.token_hash = ?1 AND s.last_seen >= ?2 AND f.disabled = 0",
    )
    .and_then(|mut st| {
        st.query_row(params![token_hash, idle_before.millis()], |r| {
            let role: String = r.get(2)?;
            Ok(StoredSession {
                staff_id: r.get(0)?,
                name: r.get(1)?,
                role: Role::parse(&role).unwrap_or(Role::Clerk),
                lang: r.get(3)?,
                device_id: r.get(4)?,
                station: r.get(5)?,
                csrf: r.get(6)?,
                last_seen: Timestamp(r.get(7)?),
            })
        })
        .optional()
    })
    .map_err(sql(conn))
}

/// Moves a session's idle clock to `now`.
pub fn touch_session(
    conn: &Connection,
    token_hash: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE staff_session SET last_seen = ?2 WHERE token_hash = ?1")
        .and_then(|mut st| st.execute(params![token_hash, now.millis()]))
        .map_err(sql(conn))?;
    Ok(())
}

/// Ends a session (signing out).
pub fn close_session(conn: &Connection, token_hash: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM staff_session WHERE token_hash = ?1")
        .and_then(|mut st| st.execute(params![token_hash]))
        .map_err(sql(conn))?;
    Ok(())
}

/// One station's stored screen: its change number, when it changed, the caller's JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredScreen {
    pub station: String,
    pub seq: u64,
    pub at: Timestamp,
    pub shown: String,
}

/// Stores `station`'s screen unless a newer one (higher `seq`) is stored already.
pub fn save_screen(conn: &Connection, screen: &StoredScreen) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO station_screen (station, seq, at, shown) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (station) DO UPDATE SET seq = excluded.seq, at = excluded.at, shown = excluded.shown
         WHERE excluded.seq > station_screen.seq",
    )
    .and_then(|mut st| {
        st.execute(params![
            screen.station,
            i64::try_from(screen.seq).unwrap_or(i64::MAX),
            screen.at.millis(),
            screen.shown
        ])
    })
    .map_err(sql(conn))?;
    Ok(())
}

/// Every stored screen.
pub fn screens(conn: &Connection) -> Result<Vec<StoredScreen>, StoreError> {
    conn.prepare_cached("SELECT station, seq, at, shown FROM station_screen ORDER BY station")
        .and_then(|mut st| {
            st.query_map([], |r| {
                Ok(StoredScreen {
                    station: r.get(0)?,
                    seq: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    at: Timestamp(r.get(2)?),
                    shown: r.get(3)?,
                })
            })?
            .collect()
        })
        .map_err(sql(conn))
}

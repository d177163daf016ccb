//! Who may use the station app: one-time pairing codes, paired tablets (each a long-lived,
//! revocable device credential), staff with their PIN hashes and lockouts, and the record of
//! what each person did.
//!
//! Only hashes are stored: a pairing code or device token as SHA-256 (both are random and
//! short-lived or long enough that a fast hash is safe), a PIN as the argon2 PHC string the
//! caller computed (hashing is slow on purpose and never runs on the writer thread).

use super::StoreError;
use super::outbox::sql;
use hub_core::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

/// SHA-256 hex of a random secret (pairing code, device token).
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.trim().as_bytes()))
}

/// Stores a new pairing code for `station`, valid until `expires_at`.
pub fn add_pairing(
    conn: &Connection,
    station: &str,
    code: &str,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO station_pairing (code_hash, station, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut st| st.execute(params![secret_hash(code), station, now.millis(), expires_at.millis()]))
    .map_err(sql(conn))?;
    Ok(())
}

/// Uses a pairing code once: pairs a new device (`device_id`, `token`) to the code's station
/// and returns the station, or `None` when the code is unknown, used or expired.
pub fn redeem_pairing(
    conn: &Connection,
    code: &str,
    device_id: &str,
    token: &str,
    now: Timestamp,
) -> Result<Option<String>, StoreError> {
    let station: Option<String> = conn
        .prepare_cached(
            "UPDATE station_pairing SET used_at = ?2
             WHERE code_hash = ?1 AND used_at IS NULL AND expires_at > ?2 RETURNING station",
        )
        .and_then(|mut st| {
            st.query_row(params![secret_hash(code), now.millis()], |r| r.get(0))
                .optional()
        })
        .map_err(sql(conn))?;
    let Some(station) = station else {
        return Ok(None);
    };
    conn.prepare_cached(
        "INSERT INTO station_device (device_id, station, token_hash, paired_at) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut st| st.execute(params![device_id, station, secret_hash(token), now.millis()]))
    .map_err(sql(conn))?;
    record_action(
        conn,
        &Action {
            staff: None,
            station: Some(&station),
            device: Some(device_id),
            action: "device_paired",
            detail: "",
        },
        now,
    )?;
    Ok(Some(station))
}

/// A paired tablet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PairedDevice {
    pub device_id: String,
    pub station: String,
    pub paired_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

fn device_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PairedDevice> {
    Ok(PairedDevice {
        device_id: r.get(0)?,
        station: r.get(1)?,
        paired_at: Timestamp(r.get(2)?),
        revoked_at: r.get::<_, Option<i64>>(3)?.map(Timestamp),
    })
}

/// The device holding `token`, unless it was revoked.
pub fn device_by_token(conn: &Connection, token: &str) -> Result<Option<PairedDevice>, StoreError> {
    conn.prepare_cached(
        "SELECT device_id, station, paired_at, revoked_at FROM station_device
         WHERE token_hash = ?1 AND revoked_at IS NULL",
    )
    .and_then(|mut st| {
        st.query_row(params![secret_hash(token)], device_row)
            .optional()
    })
    .map_err(sql(conn))
}

/// Every paired device, newest first.
pub fn devices(conn: &Connection) -> Result<Vec<PairedDevice>, StoreError> {
    conn.prepare_cached(
        "SELECT device_id, station, paired_at, revoked_at FROM station_device ORDER BY paired_at DESC, device_id",
    )
    .and_then(|mut st| st.query_map([], device_row)?.collect())
    .map_err(sql(conn))
}

/// Revokes a device (by id) or every device of a station (by station id). Returns how many
/// were revoked now.
pub fn revoke(
    conn: &Connection,
    device_or_station: &str,
    now: Timestamp,
) -> Result<usize, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE station_device SET revoked_at = ?2
             WHERE (device_id = ?1 OR station = ?1) AND revoked_at IS NULL",
        )
        .and_then(|mut st| st.execute(params![device_or_station, now.millis()]))
        .map_err(sql(conn))?;
    if n > 0 {
        record_action(
            conn,
            &Action {
                staff: None,
                station: None,
                device: Some(device_or_station),
                action: "device_revoked",
                detail: "",
            },
            now,
        )?;
    }
    Ok(n)
}

/// A staff member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Clerk,
    Supervisor,
    /// The store manager (店长): the dashboard, and whatever a supervisor may do (the senior
    /// person on site is accountable for the stock; a site run by a manager and clerks must
    /// still be able to release a hold or settle a dispute).
    Manager,
}

impl Role {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Clerk => "clerk",
            Role::Supervisor => "supervisor",
            Role::Manager => "manager",
        }
    }

    /// Whether this role may do what a supervisor may (release, reject, correct stock,
    /// disputes, imports) and see the dashboard: supervisors and managers.
    pub fn supervises(self) -> bool {
        matches!(self, Role::Supervisor | Role::Manager)
    }

    /// Reads a stored or typed role.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "clerk" => Some(Role::Clerk),
            "supervisor" => Some(Role::Supervisor),
            "manager" => Some(Role::Manager),
            _ => None,
        }
    }
}

/// A staff member as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StaffMember {
    pub staff_id: String,
    pub name: String,
    pub role: Role,
    /// Language tag of their screens (`zh-CN`, `en`).
    pub lang: String,
    pub disabled: bool,
    pub failed_pins: i64,
    pub locked_until: Option<Timestamp>,
    #[serde(skip)]
    pub pin_hash: String,
}

fn staff_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StaffMember> {
    let role: String = r.get(2)?;
    Ok(StaffMember {
        staff_id: r.get(0)?,
        name: r.get(1)?,
        role: Role::parse(&role).unwrap_or(Role::Clerk),
        lang: r.get(3)?,
        disabled: r.get::<_, i64>(4)? != 0,
        failed_pins: r.get(5)?,
        locked_until: r.get::<_, Option<i64>>(6)?.map(Timestamp),
        pin_hash: r.get(7)?,
    })
}

const STAFF_COLUMNS: &str =
    "staff_id, name, role, lang, disabled, failed_pins, locked_until, pin_hash";

/// Adds a staff member or replaces their name, role, language and PIN hash (and enables them
/// again, clearing any lockout).
pub fn upsert_staff(
    conn: &Connection,
    member: &StaffMember,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO staff (staff_id, name, role, pin_hash, lang, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (staff_id) DO UPDATE SET name = ?2, role = ?3, pin_hash = ?4, lang = ?5,
             disabled = 0, failed_pins = 0, locked_until = NULL, updated_at = ?6",
    )
    .and_then(|mut st| {
        st.execute(params![
            member.staff_id,
            member.name,
            member.role.as_str(),
            member.pin_hash,
            member.lang,
            now.millis()
        ])
    })
    .map_err(sql(conn))?;
    record_action(
        conn,
        &Action {
            staff: Some(&member.staff_id),
            station: None,
            device: None,
            action: "staff_saved",
            detail: member.role.as_str(),
        },
        now,
    )?;
    Ok(())
}

/// One staff member.
pub fn staff(conn: &Connection, staff_id: &str) -> Result<Option<StaffMember>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {STAFF_COLUMNS} FROM staff WHERE staff_id = ?1"
    ))
    .and_then(|mut st| st.query_row(params![staff_id], staff_row).optional())
    .map_err(sql(conn))
}

/// Every staff member, by id.
pub fn all_staff(conn: &Connection) -> Result<Vec<StaffMember>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {STAFF_COLUMNS} FROM staff ORDER BY staff_id"
    ))
    .and_then(|mut st| st.query_map([], staff_row)?.collect())
    .map_err(sql(conn))
}

/// Disables a staff member. Returns whether they existed.
pub fn disable_staff(
    conn: &Connection,
    staff_id: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached("UPDATE staff SET disabled = 1, updated_at = ?2 WHERE staff_id = ?1")
        .and_then(|mut st| st.execute(params![staff_id, now.millis()]))
        .map_err(sql(conn))?;
    if n > 0 {
        record_action(
            conn,
            &Action {
                staff: Some(staff_id),
                station: None,
                device: None,
                action: "staff_disabled",
                detail: "",
            },
            now,
        )?;
    }
    Ok(n > 0)
}

/// Records the outcome of a PIN check: a success clears the count; a failure counts, and the
/// `max_failures`-th locks the account until `now + lock_ms`. Returns the failures counted so
/// far (0 after a success) and the lock, if any.
pub fn record_pin_attempt(
    conn: &Connection,
    staff_id: &str,
    device_id: &str,
    ok: bool,
    max_failures: i64,
    lock_ms: i64,
    now: Timestamp,
) -> Result<(i64, Option<Timestamp>), StoreError> {
    let (failed, locked): (i64, Option<i64>) = if ok {
        conn.prepare_cached(
            "UPDATE staff SET failed_pins = 0, locked_until = NULL WHERE staff_id = ?1",
        )
        .and_then(|mut st| st.execute(params![staff_id]))
        .map_err(sql(conn))?;
        (0, None)
    } else {
        conn.prepare_cached(
            "UPDATE staff SET failed_pins = failed_pins + 1,
                 locked_until = CASE WHEN failed_pins + 1 >= ?2 THEN ?3 ELSE locked_until END
             WHERE staff_id = ?1 RETURNING failed_pins, locked_until",
        )
        .and_then(|mut st| {
            st.query_row(
                params![staff_id, max_failures, now.millis() + lock_ms],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })
        .map_err(sql(conn))?
        .unwrap_or((0, None))
    };
    record_action(
        conn,
        &Action {
            staff: Some(staff_id),
            station: None,
            device: Some(device_id),
            action: if ok { "signed_in" } else { "wrong_pin" },
            detail: "",
        },
        now,
    )?;
    Ok((failed, locked.map(Timestamp)))
}

/// One entry of the record of who did what.
#[derive(Debug, Clone, Copy)]
pub struct Action<'a> {
    pub staff: Option<&'a str>,
    pub station: Option<&'a str>,
    pub device: Option<&'a str>,
    /// What was done, e.g. `signed_in`, `pickup_handover`.
    pub action: &'a str,
    pub detail: &'a str,
}

/// Records an action with who did it.
pub fn record_action(conn: &Connection, a: &Action<'_>, now: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO staff_action (at, staff_id, station, device_id, action, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut st| {
        st.execute(params![
            now.millis(),
            a.staff,
            a.station,
            a.device,
            a.action,
            a.detail
        ])
    })
    .map_err(sql(conn))?;
    Ok(())
}

/// How many actions of `action` were recorded for `staff_id` (tests and reports).
pub fn count_actions(conn: &Connection, staff_id: &str, action: &str) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT COUNT(*) FROM staff_action WHERE staff_id = ?1 AND action = ?2")
        .and_then(|mut st| st.query_row(params![staff_id, action], |r| r.get(0)))
        .map_err(sql(conn))
}

/// A staff member as central sends them (`staff_upsert`).
#[derive(Debug, Clone, Copy)]
pub struct CentralStaff<'a> {
    pub staff_id: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub lang: &'a str,
    /// An argon2 PHC string; `None` keeps the stored one.
    pub pin_hash: Option<&'a str>,
    pub disabled: bool,
    pub version: i64,
}

/// What storing central's staff member did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CentralStaffStored {
    Stored,
    /// This version is stored already.
    Same,
    /// A newer version is stored; nothing changed.
    Stale {
        stored_version: i64,
    },
    /// A new staff member without a PIN hash cannot sign in; nothing stored.
    NoPin,
}

/// Stores central's version of a staff member unless a newer (or the same) version is
/// stored. A new PIN hash clears the member's wrong-PIN count and lockout.
pub fn upsert_from_central(
    conn: &Connection,
    m: &CentralStaff<'_>,
    now: Timestamp,
) -> Result<CentralStaffStored, StoreError> {
    let stored: Option<(i64, String)> = conn
        .prepare_cached("SELECT version, pin_hash FROM staff WHERE staff_id = ?1")
        .and_then(|mut st| {
            st.query_row(params![m.staff_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(sql(conn))?;
    let pin_hash = match (&stored, m.pin_hash) {
        (Some((v, _)), _) if *v > m.version => {
            return Ok(CentralStaffStored::Stale { stored_version: *v });
        }
        (Some((v, _)), _) if *v == m.version => return Ok(CentralStaffStored::Same),
        (None, None) => return Ok(CentralStaffStored::NoPin),
        (_, Some(hash)) => hash.to_owned(),
        (Some((_, hash)), None) => hash.clone(),
    };
    let new_pin = stored.as_ref().is_none_or(|(_, old)| *old != pin_hash);
    conn.prepare_cached(
        "INSERT INTO staff (staff_id, name, role, pin_hash, lang, disabled, version, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (staff_id) DO UPDATE SET name = ?2, role = ?3, pin_hash = ?4, lang = ?5,
             disabled = ?6, version = ?7, updated_at = ?8,
             failed_pins = CASE WHEN ?9 THEN 0 ELSE failed_pins END,
             locked_until = CASE WHEN ?9 THEN NULL ELSE locked_until END",
    )
    .and_then(|mut st| {
        st.execute(params![
            m.staff_id,
            m.name,
            m.role.as_str(),
            pin_hash,
            m.lang,
            m.disabled,
            m.version,
            now.millis(),
            new_pin
        ])
    })
    .map_err(sql(conn))?;
    record_action(
        conn,
        &Action {
            staff: Some(m.staff_id),
            station: None,
            device: None,
            action: "staff_saved_by_central",
            detail: if m.disabled {
                "disabled"
            } else {
                m.role.as_str()
            },
        },
        now,
    )?;
    Ok(CentralStaffStored::Stored)
}

//! Versioned schema migrations and the binding of a database file to its site.
//!
//! All pending migrations run in one `BEGIN IMMEDIATE` transaction together with the bump of
//! `PRAGMA user_version`, so an upgrade that fails at any step (even across several schema
//! versions) leaves the database exactly as the old hub left it.

use super::StoreError;
use rusqlite::{Connection, OptionalExtension};
use std::path::Path;

/// Migrations in order; index + 1 is the schema version each one produces. Never edit a
/// released entry: add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: SKU master data, the movement journal, balances, the outbox, counters.
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
    CREATE TABLE counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
    CREATE TABLE sku (
        code TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        unit TEXT NOT NULL,
        gtins TEXT NOT NULL,
        allow_negative INTEGER NOT NULL,
        version INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE movement (
        journal_seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        sku TEXT NOT NULL REFERENCES sku(code),
        lot TEXT,
        expiry TEXT,
        kind TEXT NOT NULL,
        quantity INTEGER NOT NULL,
        delta INTEGER NOT NULL,
        reason TEXT NOT NULL,
        reference TEXT NOT NULL,
        at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX movement_by_sku ON movement(sku, lot);
    CREATE INDEX movement_by_reference ON movement(reference);
    CREATE TRIGGER movement_no_update BEFORE UPDATE ON movement
        BEGIN SELECT RAISE(ABORT, 'the movement journal is append-only'); END;
    CREATE TRIGGER movement_no_delete BEFORE DELETE ON movement
        BEGIN SELECT RAISE(ABORT, 'the movement journal is append-only'); END;
    CREATE TABLE balance_sku (
        sku TEXT PRIMARY KEY REFERENCES sku(code),
        on_hand INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE balance_batch (
        sku TEXT NOT NULL REFERENCES sku(code),
        lot TEXT NOT NULL,
        expiry TEXT,
        on_hand INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (sku, lot)
    ) STRICT;
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        delivered_at INTEGER
    ) STRICT;
    CREATE INDEX outbox_undelivered ON outbox(seq) WHERE delivered_at IS NULL;
    "#,
    // 2: pickup orders and handovers, trace codes, station lockouts, stock tiers and alerts.
    r#"
    ALTER TABLE sku ADD COLUMN check_items INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE pickup_order (
        order_id TEXT PRIMARY KEY,
        site TEXT NOT NULL,
        code_salt TEXT NOT NULL,
        code_hash TEXT NOT NULL,
        body TEXT NOT NULL,
        opens_at INTEGER NOT NULL,
        closes_at INTEGER NOT NULL,
        status TEXT NOT NULL,
        collected_at INTEGER,
        collected_by TEXT,
        version INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX pickup_order_by_close ON pickup_order(closes_at);
    CREATE TABLE pickup_order_line (
        order_id TEXT NOT NULL REFERENCES pickup_order(order_id),
        line_no INTEGER NOT NULL,
        sku TEXT NOT NULL,
        quantity INTEGER NOT NULL,
        PRIMARY KEY (order_id, line_no)
    ) STRICT;
    CREATE INDEX pickup_order_line_by_sku ON pickup_order_line(sku);
    CREATE TABLE handover (
        order_id TEXT PRIMARY KEY REFERENCES pickup_order(order_id),
        station TEXT NOT NULL,
        at INTEGER NOT NULL,
        body TEXT NOT NULL
    ) STRICT;
    CREATE TABLE station_attempts (
        station TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE trace_code (
        code TEXT PRIMARY KEY,
        sku TEXT NOT NULL,
        lot TEXT NOT NULL,
        delivery_id TEXT,
        status TEXT NOT NULL,
        order_id TEXT,
        bound_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX trace_code_by_batch ON trace_code(sku, lot);
    CREATE TABLE sku_tier_policy (
        sku TEXT PRIMARY KEY,
        policy TEXT NOT NULL,
        version INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE sku_alert_state (
        sku TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE alert (
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        tier TEXT NOT NULL,
        message TEXT NOT NULL,
        raised_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (kind, subject)
    ) STRICT;
    "#,
    // 3: receiving: manifests, per-line observations, decisions, quarantine, photos, disputes.
    r#"
    CREATE TABLE delivery_manifest (
        delivery_id TEXT PRIMARY KEY,
        supplier TEXT NOT NULL,
        body TEXT NOT NULL,
        version INTEGER NOT NULL,
        cancelled INTEGER NOT NULL,
        closed_at INTEGER,
        closed_by TEXT,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE receiving_line (
        delivery_id TEXT NOT NULL REFERENCES delivery_manifest(delivery_id),
        line_no INTEGER NOT NULL,
        observations TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (delivery_id, line_no)
    ) STRICT;
    CREATE TABLE line_decision (
        delivery_id TEXT NOT NULL,
        line_no INTEGER NOT NULL,
        sku TEXT NOT NULL,
        lot TEXT NOT NULL,
        outcome TEXT NOT NULL,
        accepted INTEGER NOT NULL,
        rejected INTEGER NOT NULL,
        held INTEGER NOT NULL,
        body TEXT NOT NULL,
        staff TEXT NOT NULL,
        decided_at INTEGER NOT NULL,
        PRIMARY KEY (delivery_id, line_no)
    ) STRICT;
    CREATE TABLE quarantine (
        delivery_id TEXT NOT NULL,
        line_no INTEGER NOT NULL,
        sku TEXT NOT NULL,
        lot TEXT NOT NULL,
        expiry TEXT,
        quantity INTEGER NOT NULL,
        since INTEGER NOT NULL,
        status TEXT NOT NULL,
        resolved_at INTEGER,
        resolved_by TEXT,
        reason TEXT,
        PRIMARY KEY (delivery_id, line_no)
    ) STRICT;
    CREATE TABLE station_session (
        station TEXT PRIMARY KEY,
        delivery_id TEXT NOT NULL,
        line_no INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE photo (
        sha256 TEXT PRIMARY KEY,
        path TEXT,
        bytes INTEGER NOT NULL,
        delivery_id TEXT,
        line_no INTEGER,
        stored_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE dispute (
        delivery_id TEXT PRIMARY KEY,
        opened_at INTEGER NOT NULL,
        closed_at INTEGER,
        note TEXT NOT NULL
    ) STRICT;
    "#,
    // 4: upstream sync: withheld (too large) outbox rows, commands applied exactly once, and
    // versioned documents sent down by the central system.
    r#"
    ALTER TABLE outbox ADD COLUMN withheld_reason TEXT;
    CREATE TABLE applied_command (
        command_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        outcome TEXT NOT NULL,
        reason TEXT,
        applied_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE downlink_document (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        version INTEGER NOT NULL,
        body TEXT NOT NULL,
        command_id TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (kind, key)
    ) STRICT;
    "#,
    // 5: raw device input (scans, stable weights) journaled with what was done with it.
    r#"
    CREATE TABLE device_input (
        id INTEGER PRIMARY KEY,
        device TEXT NOT NULL,
        station TEXT NOT NULL,
        kind TEXT NOT NULL,
        code TEXT,
        grams INTEGER,
        parsed TEXT,
        raw TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL
    ) STRICT;
    CREATE INDEX device_input_by_device ON device_input (device, id);
    "#,
    // 6 (main): targeted pickup checks (the customer's phone tail), the check a handover needs,
    // and station requests applied once with their stored replies.
    r#"
    ALTER TABLE pickup_order ADD COLUMN phone_tail TEXT;
    CREATE INDEX pickup_order_by_phone_tail ON pickup_order (phone_tail) WHERE phone_tail IS NOT NULL;
    CREATE TABLE pickup_check_pass (
        station TEXT NOT NULL,
        order_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (station, order_id)
    ) STRICT;
    CREATE TABLE station_request (
        reply_id INTEGER PRIMARY KEY,
        station TEXT NOT NULL,
        request_id TEXT,
        body_sha256 TEXT,
        kind TEXT,
        staff TEXT,
        reply TEXT NOT NULL,
        at INTEGER NOT NULL,
        delivered INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    CREATE UNIQUE INDEX station_request_once ON station_request (station, request_id)
        WHERE request_id IS NOT NULL;
    CREATE INDEX station_request_undelivered ON station_request (reply_id) WHERE delivered = 0;
    "#,
    // 7: the GS1 elements (GTIN, lot, expiry, serial…) read from a bound trace code, as JSON
    // `[{"ai":"01","value":"…"},…]`; NULL for codes that are not GS1.
    r#"
    ALTER TABLE trace_code ADD COLUMN elements TEXT;
    "#,
    // 8: what each handled command was (a hash of its content), so a
    // command id reused with another body is answered instead of dropped as a duplicate. Rows
    // from before have none and keep the old rule (any reuse is a duplicate).
    r#"
    ALTER TABLE applied_command ADD COLUMN fingerprint TEXT;
    "#,
    // 9: the station app — one-time pairing codes, paired tablets (device
    // credentials, hashed), staff with slow-hashed PINs and lockouts, and who did what.
    r#"
    CREATE TABLE station_pairing (
        code_hash  TEXT PRIMARY KEY,
        station    TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at    INTEGER
    );
    CREATE TABLE station_device (
        device_id  TEXT PRIMARY KEY,
        station    TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        paired_at  INTEGER NOT NULL,
        revoked_at INTEGER
    );
    CREATE TABLE staff (
        staff_id     TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        role         TEXT NOT NULL CHECK (role IN ('clerk', 'supervisor')),
        pin_hash     TEXT NOT NULL,
        lang         TEXT NOT NULL DEFAULT 'zh-CN',
        disabled     INTEGER NOT NULL DEFAULT 0,
        failed_pins  INTEGER NOT NULL DEFAULT 0,
        locked_until INTEGER,
        updated_at   INTEGER NOT NULL
    );
    CREATE TABLE staff_action (
        id        INTEGER PRIMARY KEY,
        at        INTEGER NOT NULL,
        staff_id  TEXT,
        station   TEXT,
        device_id TEXT,
        action    TEXT NOT NULL,
        detail    TEXT NOT NULL
    );
    "#,
    // 10: central's demand signals (holidays, promotions, weather) as
    // `hub_forecast::DemandSignal` JSON, by central's id; past ones are kept (the forecast
    // divides them out of the history).
    r#"
    CREATE TABLE demand_signal (
        id TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        start_day TEXT NOT NULL,
        end_day TEXT NOT NULL,
        received_at INTEGER NOT NULL
    ) STRICT;
    "#,
    // 11: station app state that survives a restart — staff sessions (the
    // token as SHA-256, the CSRF token, the idle clock) and what each station's screen shows;
    // handovers a supervisor undid (moved out of `handover`, kept with who, when and why);
    // the version of central's last `staff_upsert` of each staff member (0: added locally).
    r#"
    CREATE TABLE staff_session (
        token_hash TEXT PRIMARY KEY,
        staff_id   TEXT NOT NULL,
        device_id  TEXT NOT NULL,
        station    TEXT NOT NULL,
        csrf       TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE station_screen (
        station TEXT PRIMARY KEY,
        seq     INTEGER NOT NULL,
        at      INTEGER NOT NULL,
        shown   TEXT NOT NULL
    ) STRICT;
    CREATE TABLE handover_undone (
        order_id  TEXT NOT NULL,
        station   TEXT NOT NULL,
        at        INTEGER NOT NULL,
        body      TEXT NOT NULL,
        undone_at INTEGER NOT NULL,
        undone_by TEXT NOT NULL,
        reason    TEXT NOT NULL,
        PRIMARY KEY (order_id, at)
    ) STRICT;
    ALTER TABLE staff ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
    "#,
    // 12: a dispute's first response (who, when, what: a note, a photo
    // inspection or the settlement) and when its photos were first inspected, for the report's
    // response times; every response with its note.
    r#"
    ALTER TABLE dispute ADD COLUMN first_response_at INTEGER;
    ALTER TABLE dispute ADD COLUMN first_response_by TEXT;
    ALTER TABLE dispute ADD COLUMN first_response_kind TEXT;
    ALTER TABLE dispute ADD COLUMN photos_inspected_at INTEGER;
    CREATE TABLE dispute_response (
        delivery_id TEXT NOT NULL,
        at          INTEGER NOT NULL,
        staff       TEXT NOT NULL,
        kind        TEXT NOT NULL,
        note        TEXT NOT NULL
    ) STRICT;
    "#,
    // 13 (alert acknowledgement): who acknowledged an open alert on the stock
    // screen, when, and at which tier (a rise past that tier asks again).
    r#"
    ALTER TABLE alert ADD COLUMN acked_by TEXT;
    ALTER TABLE alert ADD COLUMN acked_at INTEGER;
    ALTER TABLE alert ADD COLUMN acked_tier TEXT;
    "#,
    // 14: partial handovers — what each order line has settled so far (handed
    // over or refused) and each part handed over before the order was collected whole; the
    // master data's unit weights for the pickup counter's weight cross-check.
    r#"
    ALTER TABLE pickup_order_line ADD COLUMN settled INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE handover_part (
        order_id TEXT NOT NULL REFERENCES pickup_order(order_id),
        part     INTEGER NOT NULL,
        station  TEXT NOT NULL,
        at       INTEGER NOT NULL,
        body     TEXT NOT NULL,
        PRIMARY KEY (order_id, part)
    ) STRICT;
    CREATE TABLE sku_unit_weight (
        sku   TEXT PRIMARY KEY,
        grams INTEGER NOT NULL
    ) STRICT;
    "#,
    // 15: the day-ahead forecast the hub made for each SKU and site day (the
    // first time it ran on that day), with its unit kind, when it was made and the model or
    // fallback rule it came from; the report's forecast accuracy reads these instead of
    // refitting. One row per (day, SKU), never rewritten (the trigger refuses updates).
    r#"
    CREATE TABLE day_forecast (
        day       TEXT NOT NULL,
        sku       TEXT NOT NULL,
        unit      TEXT NOT NULL,
        forecast  REAL NOT NULL,
        method    TEXT NOT NULL,
        history_days INTEGER NOT NULL,
        made_at   INTEGER NOT NULL,
        PRIMARY KEY (day, sku)
    ) STRICT, WITHOUT ROWID;
    CREATE TRIGGER day_forecast_never_rewritten BEFORE UPDATE ON day_forecast
    BEGIN
        SELECT RAISE(ABORT, 'a stored day-ahead forecast is never rewritten');
    END;
    "#,
    // 16: each dispute episode is its own row (a delivery's dispute can be
    // settled and opened again; the earlier episode keeps its times), with who opened and who
    // settled it and how, and the line it is about with that line's stored photos (a JSON array
    // of SHA-256); at most one open episode per delivery. Existing rows are kept as
    // episodes; each response belongs to its episode (earlier responses to the delivery's one
    // row).
    r#"
    CREATE TABLE dispute_episode (
        id                  INTEGER PRIMARY KEY,
        delivery_id         TEXT NOT NULL,
        opened_at           INTEGER NOT NULL,
        opened_by           TEXT,
        note                TEXT NOT NULL,
        closed_at           INTEGER,
        closed_by           TEXT,
        settle_note         TEXT,
        first_response_at   INTEGER,
        first_response_by   TEXT,
        first_response_kind TEXT,
        photos_inspected_at INTEGER,
        line_no             INTEGER,
        photos              TEXT
    ) STRICT;
    INSERT INTO dispute_episode (delivery_id, opened_at, note, closed_at, first_response_at,
                                 first_response_by, first_response_kind, photos_inspected_at)
        SELECT delivery_id, opened_at, note, closed_at, first_response_at, first_response_by,
               first_response_kind, photos_inspected_at
        FROM dispute ORDER BY opened_at;
    DROP TABLE dispute;
    ALTER TABLE dispute_episode RENAME TO dispute;
    CREATE UNIQUE INDEX dispute_open_per_delivery ON dispute (delivery_id) WHERE closed_at IS NULL;
    CREATE INDEX dispute_by_delivery ON dispute (delivery_id, opened_at);
    CREATE INDEX dispute_by_opened ON dispute (opened_at);
    ALTER TABLE dispute_response ADD COLUMN dispute_id INTEGER;
    UPDATE dispute_response SET dispute_id =
        (SELECT d.id FROM dispute d WHERE d.delivery_id = dispute_response.delivery_id);
    "#,
    // 17: a SKU's category from the master data (`sku_upsert`'s optional
    // `category`), so demand signals scoped to a category reach its SKUs; NULL: none.
    r#"
    ALTER TABLE sku ADD COLUMN category TEXT;
    CREATE INDEX sku_by_category ON sku (category) WHERE category IS NOT NULL;
    "#,
    // 18: fewer b-tree pages per scan and handover, each a WAL page on the SD
    // card per commit. `device_input_by_device` is read by no query (the journal is read by
    // id); a code check's pass is keyed by (station, order) and kept WITHOUT ROWID, so a
    // check writes one b-tree instead of the table plus its primary-key index.
    r#"
    DROP INDEX IF EXISTS device_input_by_device;
    CREATE TABLE pickup_check_pass_keyed (
        station TEXT NOT NULL,
        order_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (station, order_id)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO pickup_check_pass_keyed (station, order_id, at)
        SELECT station, order_id, at FROM pickup_check_pass;
    DROP TABLE pickup_check_pass;
    ALTER TABLE pickup_check_pass_keyed RENAME TO pickup_check_pass;
    "#,
    // 19: staff may have the role `manager` (the store manager). SQLite cannot
    // change a CHECK constraint, so the table is rebuilt with the same columns and rows (no
    // other table refers to it).
    r#"
    CREATE TABLE staff_with_manager (
        staff_id     TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        role         TEXT NOT NULL CHECK (role IN ('clerk', 'supervisor', 'manager')),
        pin_hash     TEXT NOT NULL,
        lang         TEXT NOT NULL DEFAULT 'zh-CN',
        disabled     INTEGER NOT NULL DEFAULT 0,
        failed_pins  INTEGER NOT NULL DEFAULT 0,
        locked_until INTEGER,
        updated_at   INTEGER NOT NULL,
        version      INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO staff_with_manager (staff_id, name, role, pin_hash, lang, disabled, failed_pins,
        locked_until, updated_at, version)
        SELECT staff_id, name, role, pin_hash, lang, disabled, failed_pins, locked_until,
            updated_at, version FROM staff;
    DROP TABLE staff;
    ALTER TABLE staff_with_manager RENAME TO staff;
    "#,
    // 20: receipts a supervisor reversed. Each row keeps what the reversal moved out
    // of the live tables — the line's decision (its `line_decision.body`), its quarantine row
    // and observations as JSON, the trace codes it freed — with who, when, why, the reversal
    // movement and the client's request id (a repeated request is answered from this row).
    // The number of rows of a line suffixes its next receipt movement ids.
    r#"
    CREATE TABLE receipt_reversal (
        id INTEGER PRIMARY KEY,
        delivery_id TEXT NOT NULL,
        line_no INTEGER NOT NULL,
        request_id TEXT NOT NULL UNIQUE,
        staff TEXT NOT NULL,
        reason TEXT NOT NULL,
        quantity INTEGER NOT NULL,
        movement_id TEXT NOT NULL,
        receipts TEXT NOT NULL,
        reversed_at INTEGER NOT NULL,
        decision TEXT NOT NULL,
        quarantine TEXT,
        observations TEXT,
        freed_codes TEXT NOT NULL
    ) STRICT;
    CREATE INDEX receipt_reversal_by_line ON receipt_reversal (delivery_id, line_no);
    "#,
    // 21: per-site-day rollups of the report's journal figures
    // (`store::report_rollup`): one record per closed site day (the report's per-day state as
    // JSON, with its format version) and one state row (the days covered, the journal sequence
    // they cover, the fold state at the end of the last day). Derived data: dropping both
    // tables' rows only makes the next report read the whole journal and rebuild them.
    r#"
    CREATE TABLE report_rollup (
        day     TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        record  TEXT NOT NULL
    ) STRICT;
    CREATE TABLE report_rollup_state (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        version     INTEGER NOT NULL,
        zone        TEXT NOT NULL,
        from_day    TEXT NOT NULL,
        through_day TEXT NOT NULL,
        covered_seq INTEGER NOT NULL,
        next_seq    INTEGER NOT NULL,
        checkpoint  TEXT NOT NULL
    ) STRICT;
    "#,
    // 22: the outbox without its indexes, each a b-tree page of every commit
    // that appends an event: the unique index on the event id (no query looks an event up by
    // its id — central keys events by stream and seq, the id only tells a conflict from a
    // duplicate — and a UUID v7 is unique without it), and the index of undelivered rows
    // (delivery is a watermark now, `outbox_delivered_through` in `counter`: undelivered rows
    // are those above it, read by sequence number). The table is rebuilt with the same
    // columns and rows.
    r#"
    CREATE TABLE outbox_without_id_index (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        delivered_at INTEGER,
        withheld_reason TEXT
    ) STRICT;
    INSERT INTO outbox_without_id_index (seq, id, kind, payload, created_at, delivered_at, withheld_reason)
        SELECT seq, id, kind, payload, created_at, delivered_at, withheld_reason FROM outbox;
    DROP TABLE outbox;
    ALTER TABLE outbox_without_id_index RENAME TO outbox;
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Brings the database up to [`SCHEMA_VERSION`].
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    migrate_with(conn, path, &MIGRATIONS[..SCHEMA_VERSION as usize])
}

/// Applies the `migrations` the database lacks, all in one `BEGIN IMMEDIATE` transaction
/// together with the bump of `PRAGMA user_version`: an upgrade that crosses several schema
/// versions either completes or leaves the database exactly as the old hub left it.
fn migrate_with(conn: &mut Connection, path: &Path, migrations: &[&str]) -> Result<(), StoreError> {
    let known = migrations.len() as i64;
    let found = user_version(conn).map_err(|e| StoreError::from_sqlite(path, e))?;
    if found > known {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found,
            known,
        });
    }
    if found == known {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => StoreError::NotADatabase {
                path: path.to_owned(),
            },
            _ => StoreError::Migration {
                path: path.to_owned(),
                version: found + 1,
                source: e,
            },
        })?;
    for (index, sql) in migrations.iter().enumerate().skip(found as usize) {
        let version = index as i64 + 1;
        let migration_error = |source| StoreError::Migration {
            path: path.to_owned(),
            version,
            source,
        };
        tx.execute_batch(sql).map_err(migration_error)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(migration_error)?;
    }
    tx.commit().map_err(|source| StoreError::Migration {
        path: path.to_owned(),
        version: known,
        source,
    })?;
    tracing::info!(path = %path.display(), from = found, to = known, "database migrated");
    Ok(())
}

/// Records which site a new database belongs to, or checks it for an existing one.
pub fn bind_site(conn: &Connection, path: &Path, site: &str) -> Result<(), StoreError> {
    let found: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'site_id'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| StoreError::from_sqlite(path, e))?;
    match found {
        Some(found) if found == site => Ok(()),
        Some(found) => Err(StoreError::WrongSite {
            path: path.to_owned(),
            found,
            expected: site.to_owned(),
        }),
        None => conn
            .execute(
                "INSERT INTO meta (key, value) VALUES ('site_id', ?1)",
                [site],
            )
            .map(|_| ())
            .map_err(|e| StoreError::from_sqlite(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_upgrade_leaves_the_old_database_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut conn = Connection::open(&path).unwrap();
        let v1 = "CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1);";
        migrate_with(&mut conn, &path, &[v1]).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 1);

        // An upgrade across two versions whose second step fails: the first step's table must
        // not survive, the old data must, and the version must stay at 1.
        let v2 = "CREATE TABLE b (y INTEGER); INSERT INTO a VALUES (2);";
        let v3 = "CREATE TABLE a (z INTEGER);";
        let err = migrate_with(&mut conn, &path, &[v1, v2, v3]).unwrap_err();
        assert!(
            matches!(err, StoreError::Migration { version: 3, .. }),
            "{err}"
        );
        assert_eq!(user_version(&conn).unwrap(), 1);
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM a", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1);
        let b: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'b'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(b, 0);

        // A good upgrade goes all the way.
        migrate_with(&mut conn, &path, &[v1, v2]).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 2);
    }

    #[test]
    fn the_fewer_pages_migration_keeps_the_check_passes_and_drops_the_unread_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut conn = Connection::open(&path).unwrap();
        let keyed = MIGRATIONS
            .iter()
            .position(|m| m.contains("CREATE TABLE pickup_check_pass_keyed"))
            .unwrap();
        migrate_with(&mut conn, &path, &MIGRATIONS[..keyed]).unwrap();
        conn.execute_batch(
            "INSERT INTO pickup_check_pass (station, order_id, at) VALUES ('desk-1', 'B1', 1000),
                                                                     ('desk-2', 'B1', 2000);",
        )
        .unwrap();
        migrate_with(&mut conn, &path, &MIGRATIONS[..=keyed]).unwrap();
        let passes: Vec<(String, String, i64)> = conn
            .prepare("SELECT station, order_id, at FROM pickup_check_pass ORDER BY station")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            passes,
            vec![
                ("desk-1".into(), "B1".into(), 1000),
                ("desk-2".into(), "B1".into(), 2000)
            ]
        );
        // One b-tree per table written at a check: no primary-key index beside the table,
        // and no index on the device journal but its own rowid.
        let extra: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'index'
                 AND tbl_name IN ('pickup_check_pass', 'device_input') ORDER BY name",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(extra.is_empty(), "{extra:?}");
        // Still one pass per station and order.
        let again = conn.execute(
            "INSERT INTO pickup_check_pass (station, order_id, at) VALUES ('desk-1', 'B1', 3000)",
            [],
        );
        assert!(again.is_err(), "{again:?}");
    }

    #[test]
    fn dispute_episodes_migration_keeps_the_existing_disputes_and_their_responses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut conn = Connection::open(&path).unwrap();
        let episodes = MIGRATIONS
            .iter()
            .position(|m| m.contains("CREATE TABLE dispute_episode"))
            .unwrap();
        migrate_with(&mut conn, &path, &MIGRATIONS[..episodes]).unwrap();
        conn.execute_batch(
            "INSERT INTO dispute (delivery_id, opened_at, closed_at, note, first_response_at,
                                  first_response_by, first_response_kind, photos_inspected_at)
                 VALUES ('D1', 1000, 5000, 'mouldy', 2000, 'li', 'note', 3000),
                        ('D2', 1500, NULL, 'short', NULL, NULL, NULL, NULL);
             INSERT INTO dispute_response (delivery_id, at, staff, kind, note)
                 VALUES ('D1', 2000, 'li', 'note', 'called the supplier');",
        )
        .unwrap();
        migrate_with(&mut conn, &path, &MIGRATIONS[..=episodes]).unwrap();
        type Row = (String, i64, Option<i64>, Option<i64>, Option<i64>);
        let rows: Vec<Row> = conn
            .prepare(
                "SELECT delivery_id, opened_at, closed_at, first_response_at, photos_inspected_at
                 FROM dispute ORDER BY delivery_id",
            )
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![
                ("D1".into(), 1000, Some(5000), Some(2000), Some(3000)),
                ("D2".into(), 1500, None, None, None),
            ]
        );
        let response_of: String = conn
            .query_row(
                "SELECT d.delivery_id FROM dispute_response r JOIN dispute d ON d.id = r.dispute_id",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(response_of, "D1");
        // D2 is still open: a second open episode of it is refused by the schema.
        let second = conn.execute(
            "INSERT INTO dispute (delivery_id, opened_at, note) VALUES ('D2', 9000, 'again')",
            [],
        );
        assert!(second.is_err(), "{second:?}");
    }

    #[test]
    fn manager_role_migration_keeps_the_staff_and_allows_managers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut conn = Connection::open(&path).unwrap();
        let managers = MIGRATIONS
            .iter()
            .position(|m| m.contains("CREATE TABLE staff_with_manager"))
            .unwrap();
        migrate_with(&mut conn, &path, &MIGRATIONS[..managers]).unwrap();
        let manager = "INSERT INTO staff (staff_id, name, role, pin_hash, updated_at)
                       VALUES ('zhou', '周店长', 'manager', '$argon2id$x', 1)";
        assert!(conn.execute(manager, []).is_err(), "refused before");
        conn.execute_batch(
            "INSERT INTO staff (staff_id, name, role, pin_hash, lang, disabled, failed_pins,
                                locked_until, updated_at, version)
                 VALUES ('li', '李小红', 'clerk', '$argon2id$a', 'en', 1, 2, 900, 5, 7);",
        )
        .unwrap();
        migrate_with(&mut conn, &path, &MIGRATIONS[..=managers]).unwrap();
        type Row = (
            String,
            String,
            String,
            String,
            i64,
            i64,
            Option<i64>,
            i64,
            i64,
        );
        let li: Row = conn
            .query_row(
                "SELECT name, role, pin_hash, lang, disabled, failed_pins, locked_until,
                        updated_at, version FROM staff WHERE staff_id = 'li'",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                    ))
                },
            )
            .unwrap();
        assert_eq!(
            li,
            (
                "李小红".into(),
                "clerk".into(),
                "$argon2id$a".into(),
                "en".into(),
                1,
                2,
                Some(900),
                5,
                7
            )
        );
        conn.execute(manager, []).unwrap();
        let nobody = conn.execute(
            "INSERT INTO staff (staff_id, name, role, pin_hash, updated_at)
             VALUES ('x', 'x', 'owner', 'h', 1)",
            [],
        );
        assert!(nobody.is_err(), "{nobody:?}");
    }

    #[test]
    fn the_outbox_without_its_id_index_keeps_every_row_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut conn = Connection::open(&path).unwrap();
        let rebuilt = MIGRATIONS
            .iter()
            .position(|m| m.contains("CREATE TABLE outbox_without_id_index"))
            .unwrap();
        migrate_with(&mut conn, &path, &MIGRATIONS[..rebuilt]).unwrap();
        conn.execute_batch(
            "INSERT INTO outbox (seq, id, kind, payload, created_at, delivered_at, withheld_reason)
             VALUES (7, 'e7', 'sku_upserted', '{}', 1000, 1500, NULL),
                    (8, 'e8', 'sync_alert', '{\"a\":1}', 2000, 2500, 'too large'),
                    (9, 'e9', 'movement_recorded', '{}', 3000, NULL, NULL);",
        )
        .unwrap();
        migrate_with(&mut conn, &path, MIGRATIONS).unwrap();
        type Row = (
            i64,
            String,
            String,
            String,
            i64,
            Option<i64>,
            Option<String>,
        );
        let rows: Vec<Row> = conn
            .prepare(
                "SELECT seq, id, kind, payload, created_at, delivered_at, withheld_reason
                 FROM outbox ORDER BY seq",
            )
            .unwrap()
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[1],
            (
                8,
                "e8".into(),
                "sync_alert".into(),
                "{\"a\":1}".into(),
                2000,
                Some(2500),
                Some("too large".into())
            )
        );
        assert_eq!(rows[2].5, None);
        // No index: an append writes the table's page alone.
        let indexes: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'outbox'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(indexes, Vec::<String>::new());
    }
}

//! Versioned schema migrations and the binding of a database file to its site.
//!
//! Each migration runs in its own `BEGIN IMMEDIATE` transaction together with the bump of
//! `PRAGMA user_version`, so a failed migration leaves the database exactly as it was.

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
    // 2: upstream sync: withheld (too large) outbox rows, commands applied exactly once, and
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
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Brings the database up to [`SCHEMA_VERSION`].
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let found = user_version(conn).map_err(|e| StoreError::from_sqlite(path, e))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as i64 + 1;
        let migration_error = |source| StoreError::Migration {
            path: path.to_owned(),
            version,
            source,
        };
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::NotADatabase) => StoreError::NotADatabase {
                    path: path.to_owned(),
                },
                _ => migration_error(e),
            })?;
        tx.execute_batch(sql).map_err(migration_error)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(migration_error)?;
        tx.commit().map_err(migration_error)?;
        tracing::info!(path = %path.display(), version, "database migrated");
    }
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

//! The database's stream (incarnation): the id that tells central which run of sequence
//! numbers an outbox event belongs to.
//!
//! Sequence numbers are unique within one database, but a database can go back in time (a
//! restored backup) or be replaced by a new one, and then numbers are used again for other
//! events. Each database therefore carries a stream id (a UUID v7, created with the database
//! and kept in `meta`), and every envelope names it, so central keys events by
//! `(site, stream, seq)`. A stream may continue another: its events `1..=base_seq` are that
//! stream's (a restored backup shares its history up to its own counter). A database made by
//! a hub from before streams gets a stream that continues the `legacy` one (central's name for
//! events that carry no stream) after the events it already had.
//!
//! When a new stream must start is decided outside the store (`crate::incarnation`, from the
//! marker file in the data folder); this module only reads and writes the rows.

use super::StoreError;
use super::outbox::{self, sql};
use hub_core::Timestamp;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::Path;

/// Central's name for the stream of events that carry no stream id (hubs from before streams).
pub use hub_contract::LEGACY_STREAM;

/// The database's current stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StreamInfo {
    /// The stream id (UUID v7 text).
    pub id: String,
    /// When the stream was created (the time in its UUID).
    pub created_at: Timestamp,
    /// The stream whose events `1..=base_seq` this one shares, if any.
    pub continues: Option<String>,
    /// Sequence numbers up to here belong to `continues`; 0 for a stream of its own.
    pub base_seq: i64,
}

fn meta(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")
        .and_then(|mut st| st.query_row([key], |r| r.get(0)).optional())
        .map_err(sql(conn))
}

fn set_meta(conn: &Connection, key: &str, value: Option<&str>) -> Result<(), StoreError> {
    let result = match value {
        Some(value) => conn
            .prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = ?2",
            )
            .and_then(|mut st| st.execute(params![key, value])),
        None => conn
            .prepare_cached("DELETE FROM meta WHERE key = ?1")
            .and_then(|mut st| st.execute([key])),
    };
    result.map(|_| ()).map_err(sql(conn))
}

/// The database's current stream.
pub fn current(conn: &Connection) -> Result<StreamInfo, StoreError> {
    let Some(id) = meta(conn, "stream_id")? else {
        return Err(sql(conn)(rusqlite::Error::QueryReturnedNoRows));
    };
    let number = |key: &str| -> Result<i64, StoreError> {
        Ok(meta(conn, key)?.and_then(|v| v.parse().ok()).unwrap_or(0))
    };
    Ok(StreamInfo {
        id,
        created_at: Timestamp(number("stream_created_at")?),
        continues: meta(conn, "stream_continues")?,
        base_seq: number("stream_base_seq")?,
    })
}

/// Starts a new stream for this database: from now on its events are numbered in it. It
/// continues `continues` up to `base_seq` (normally the database's own previous stream and
/// its outbox counter). The caller writes the event that reports it in the same transaction.
pub fn start_new(
    conn: &Connection,
    continues: Option<&str>,
    base_seq: i64,
) -> Result<StreamInfo, StoreError> {
    let id = uuid::Uuid::now_v7();
    let created_at = id
        .get_timestamp()
        .map(|t| {
            let (secs, nanos) = t.to_unix();
            Timestamp(secs as i64 * 1000 + i64::from(nanos / 1_000_000))
        })
        .unwrap_or(Timestamp(0));
    let info = StreamInfo {
        id: id.to_string(),
        created_at,
        continues: continues.map(str::to_owned),
        base_seq,
    };
    set_meta(conn, "stream_id", Some(&info.id))?;
    set_meta(
        conn,
        "stream_created_at",
        Some(&created_at.millis().to_string()),
    )?;
    set_meta(conn, "stream_continues", continues)?;
    set_meta(conn, "stream_base_seq", Some(&base_seq.to_string()))?;
    Ok(info)
}

/// Gives a database its first stream, if it has none: a new database gets a stream of its
/// own; one written by a hub from before streams continues the `legacy` stream after its last
/// event. Called by `Store::open`.
pub(super) fn bind(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    // Usually there is one: opening then writes nothing (a read-only medium still opens).
    if meta(conn, "stream_id")?.is_some() {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| StoreError::from_sqlite(path, e))?;
    if meta(&tx, "stream_id")?.is_none() {
        let last = outbox::stats(&tx)?.last_seq;
        let info = if last > 0 {
            start_new(&tx, Some(LEGACY_STREAM), last)?
        } else {
            start_new(&tx, None, 0)?
        };
        tracing::info!(path = %path.display(), stream = %info.id, continues = ?info.continues,
            base_seq = info.base_seq, "database stream created");
    }
    tx.commit().map_err(|e| StoreError::from_sqlite(path, e))
}

/// Records central's cursor if it is for this database's current stream; returns the
/// confirmed sequence number then, `None` for another stream (or none: an older central that
/// cannot tell streams apart), which must not prune anything.
pub fn confirm_cursor(
    conn: &Connection,
    stream: Option<&str>,
    contiguous_seq: i64,
) -> Result<Option<i64>, StoreError> {
    if stream != Some(current(conn)?.id.as_str()) {
        return Ok(None);
    }
    outbox::confirm(conn, contiguous_seq).map(Some)
}

/// What is at a database path before the store opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseFile {
    /// No file.
    Missing,
    /// A file with no hub data: zero length, or an SQLite file without any table.
    Empty { bytes: u64 },
    /// Anything else (a hub database, or something the store will refuse with its reason).
    Present,
}

/// Looks at a database path without creating or changing anything.
pub fn inspect(path: &Path) -> Result<DatabaseFile, StoreError> {
    let bytes = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DatabaseFile::Missing),
        // Unreadable: the store reports it when it tries to open the file.
        Err(_) => return Ok(DatabaseFile::Present),
    };
    let Ok(conn) = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) else {
        return Ok(DatabaseFile::Present);
    };
    let _ = conn.busy_timeout(std::time::Duration::from_secs(5));
    let tables: rusqlite::Result<i64> =
        conn.query_row("SELECT COUNT(*) FROM sqlite_schema", [], |r| r.get(0));
    Ok(match tables {
        Ok(0) => DatabaseFile::Empty { bytes },
        _ => DatabaseFile::Present,
    })
}

/// The database's stream and its outbox counter (the last sequence number written).
pub fn position(conn: &Connection) -> Result<(StreamInfo, i64), StoreError> {
    Ok((current(conn)?, super::outbox::stats(conn)?.last_seq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoreOptions};

    #[test]
    fn a_new_database_gets_a_stream_of_its_own_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        assert_eq!(inspect(&path).unwrap(), DatabaseFile::Missing);
        let store = Store::open(&path, "s1", &StoreOptions::default()).unwrap();
        let first = store.read_blocking(current).unwrap();
        assert_eq!((first.continues.as_deref(), first.base_seq), (None, 0));
        assert!(first.created_at.millis() > 0);
        store.close();
        assert_eq!(inspect(&path).unwrap(), DatabaseFile::Present);
        let store = Store::open(&path, "s1", &StoreOptions::default()).unwrap();
        assert_eq!(store.read_blocking(current).unwrap(), first);
        // A cursor counts only for this stream.
        let id = first.id.clone();
        let confirmed = store
            .write_blocking(move |c| {
                Ok::<_, StoreError>((
                    confirm_cursor(c, Some("another"), 5)?,
                    confirm_cursor(c, None, 6)?,
                    confirm_cursor(c, Some(&id), 3)?,
                ))
            })
            .unwrap();
        assert_eq!(confirmed, (None, None, Some(3)));
        assert_eq!(store.read_blocking(outbox::confirmed_seq).unwrap(), 3);
    }

    #[test]
    fn a_database_from_before_streams_continues_the_legacy_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        let store = Store::open(&path, "s1", &StoreOptions::default()).unwrap();
        store
            .write_blocking(|c| {
                for _ in 0..3 {
                    outbox::append(
                        c,
                        &hub_core::DomainEvent::SyncAlert {
                            code: "t".into(),
                            message: "m".into(),
                            seq: None,
                        },
                        Timestamp(1),
                    )?;
                }
                // What a hub from before streams left: no stream in `meta`.
                c.execute("DELETE FROM meta WHERE key LIKE 'stream_%'", [])
                    .map_err(sql(c))
            })
            .unwrap();
        store.close();
        let store = Store::open(&path, "s1", &StoreOptions::default()).unwrap();
        let info = store.read_blocking(current).unwrap();
        assert_eq!(
            (info.continues.as_deref(), info.base_seq),
            (Some(LEGACY_STREAM), 3)
        );
    }

    #[test]
    fn empty_files_are_told_apart_from_databases() {
        let dir = tempfile::tempdir().unwrap();
        let zero = dir.path().join("zero.sqlite");
        std::fs::write(&zero, b"").unwrap();
        assert_eq!(inspect(&zero).unwrap(), DatabaseFile::Empty { bytes: 0 });
        assert_eq!(std::fs::metadata(&zero).unwrap().len(), 0, "left as it was");
        let bare = dir.path().join("bare.sqlite");
        Connection::open(&bare)
            .unwrap()
            .execute_batch("CREATE TABLE t (x INTEGER); DROP TABLE t;")
            .unwrap();
        assert!(matches!(
            inspect(&bare).unwrap(),
            DatabaseFile::Empty { .. }
        ));
        let junk = dir.path().join("junk.sqlite");
        std::fs::write(&junk, vec![0x42u8; 8192]).unwrap();
        assert_eq!(inspect(&junk).unwrap(), DatabaseFile::Present);
    }
}

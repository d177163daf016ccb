//! SQLite's own consistency checks of the database file: `PRAGMA quick_check` (run by
//! `hub run` before it starts) and `PRAGMA integrity_check` (run by `hub ledger verify`).
//!
//! Both return the problems found as text, one per entry; an empty list means the file is
//! sound. A file so damaged that SQLite cannot even walk it reports that as its one problem.

use super::StoreError;
use rusqlite::Connection;

/// How thorough a check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// `PRAGMA quick_check`: page structure and record formats, no index contents (fast).
    Quick,
    /// `PRAGMA integrity_check`: everything, indexes against their tables too.
    Full,
}

/// Most problems reported by one check (SQLite's default is 100).
const MAX_PROBLEMS: u32 = 100;

/// Runs the check on `conn` (read-only is enough) and returns the problems found.
pub fn check(conn: &Connection, how: Check) -> Result<Vec<String>, StoreError> {
    let pragma = match how {
        Check::Quick => format!("PRAGMA quick_check({MAX_PROBLEMS})"),
        Check::Full => format!("PRAGMA integrity_check({MAX_PROBLEMS})"),
    };
    let rows = conn.prepare(&pragma).and_then(|mut st| {
        st.query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
    });
    match rows {
        Ok(rows) if rows.len() == 1 && rows[0] == "ok" => Ok(Vec::new()),
        Ok(rows) => Ok(rows),
        Err(e) if is_damage(&e) => Ok(vec![format!("SQLite cannot read the file: {e}")]),
        Err(e) => Err(super::outbox::sql(conn)(e)),
    }
}

/// Whether an SQLite error says the file is damaged.
pub fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sound_database_has_no_problems() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT); INSERT INTO t VALUES (1, 'x');",
        )
        .unwrap();
        assert!(check(&conn, Check::Quick).unwrap().is_empty());
        assert!(check(&conn, Check::Full).unwrap().is_empty());
    }
}

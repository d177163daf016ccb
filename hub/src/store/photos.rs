//! Evidence photos as the store knows them: which stored copies exist, which are protected
//! (they back a held line or an open dispute), and forgetting a copy once its file is gone.
//! The files themselves are `crate::evidence`'s.

use super::StoreError;
use super::outbox::sql;
use rusqlite::{Connection, params};

/// A stored photo copy, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoCopy {
    pub sha256: String,
    pub path: String,
    pub stored_at: i64,
    /// It backs a held (quarantined) line or a delivery with an open dispute: kept whatever
    /// the retention says.
    pub protected: bool,
}

/// Every photo with a stored copy, oldest first.
pub fn copies(conn: &Connection) -> Result<Vec<PhotoCopy>, StoreError> {
    let mut st = conn
        .prepare(
            "SELECT p.sha256, p.path, p.stored_at,
                    EXISTS (SELECT 1 FROM quarantine q WHERE q.delivery_id = p.delivery_id AND q.line_no = p.line_no AND q.status = 'held')
                    OR EXISTS (SELECT 1 FROM dispute d WHERE d.delivery_id = p.delivery_id AND d.closed_at IS NULL)
             FROM photo p WHERE p.path IS NOT NULL ORDER BY p.stored_at",
        )
        .map_err(sql(conn))?;
    st.query_map([], |r| {
        Ok(PhotoCopy {
            sha256: r.get(0)?,
            path: r.get(1)?,
            stored_at: r.get(2)?,
            protected: r.get(3)?,
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(sql(conn))
}

/// The copy of photo `sha256` was deleted: the record keeps its hash, without a path.
pub fn forget_copy(conn: &Connection, sha256: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE photo SET path = NULL WHERE sha256 = ?1",
        params![sha256],
    )
    .map_err(sql(conn))?;
    Ok(())
}

/// The SHA-256 of the photos stored for a delivery line (with a copy on disk), oldest first.
pub fn of_line(
    conn: &Connection,
    delivery_id: &str,
    line_no: u32,
) -> Result<Vec<String>, StoreError> {
    conn.prepare_cached(
        "SELECT sha256 FROM photo WHERE delivery_id = ?1 AND line_no = ?2 AND path IS NOT NULL
         ORDER BY stored_at, sha256",
    )
    .and_then(|mut st| {
        st.query_map(params![delivery_id, line_no], |r| r.get(0))
            .and_then(|rows| rows.collect())
    })
    .map_err(sql(conn))
}

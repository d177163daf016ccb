//! A test helper, not a tool: the SQLite writer that `tests/sqlite.rs` kills before each power
//! cut. It commits one row per transaction into table `t` of DB (WAL, `synchronous` as given)
//! and appends each committed id to ACKS, one write(2) per id, so a kill never leaves half a
//! line. Runs until killed.
//!
//! Usage: `powercut-sqlite-writer DB ACKS FULL|OFF`

use std::fs::OpenOptions;
use std::io::Write;

use rusqlite::Connection;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, acks, synchronous] = args.as_slice() else {
        anyhow::bail!("usage: powercut-sqlite-writer DB ACKS FULL|OFF");
    };
    anyhow::ensure!(
        matches!(synchronous.as_str(), "FULL" | "OFF"),
        "synchronous must be FULL or OFF, got {synchronous}"
    );
    let mut conn = Connection::open(db)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    anyhow::ensure!(mode == "wal", "journal_mode is {mode}, not wal");
    conn.execute_batch(&format!(
        "PRAGMA synchronous={synchronous}; PRAGMA wal_autocheckpoint=64;"
    ))?;
    let mut ack = OpenOptions::new().create(true).append(true).open(acks)?;
    let mut next: i64 =
        conn.query_row("SELECT coalesce(max(id), 0) + 1 FROM t", [], |r| r.get(0))?;
    loop {
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO t VALUES (?1, randomblob(?2))",
            (next, 1000 + (next % 7) * 700),
        )?;
        tx.commit()?;
        ack.write_all(format!("{next}\n").as_bytes())?;
        next += 1;
    }
}

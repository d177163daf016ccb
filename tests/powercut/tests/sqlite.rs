//! SQLite on the power-cut filesystem: WAL mode works on it (its `-shm` file is a shared
//! mmap), and with `synchronous=FULL` every acknowledged commit survives a writer killed at a
//! random moment followed by a power cut, while with `synchronous=OFF` the same harness sees
//! acknowledged rows vanish — the negative control that shows the filesystem really loses
//! what was not synced.
//!
//! The writer is a child process, the crate's helper binary `powercut-sqlite-writer`: it
//! commits one row per transaction and appends each committed id to an acknowledgement file
//! outside the mount.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use powercut::{MountOptions, MountedFs, PowerCutFs, Tear};
use rand::Rng;
use rusqlite::Connection;

const ROUNDS: usize = 20;

fn open(db: &Path, synchronous: &str) -> Connection {
    let conn = Connection::open(db).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.execute_batch(&format!(
        "PRAGMA synchronous={synchronous}; PRAGMA wal_autocheckpoint=64;"
    ))
    .unwrap();
    conn
}

fn create_schema(db: &Path) {
    let conn = open(db, "FULL");
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, payload BLOB NOT NULL)",
    )
    .unwrap();
}

fn integrity(conn: &Connection) -> String {
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

fn ids(conn: &Connection) -> BTreeSet<i64> {
    let mut stmt = conn.prepare("SELECT id FROM t").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn wal_mode_with_full_sync_works_and_survives_a_remount() {
    let fs = PowerCutFs::mount_temp(MountOptions::default()).unwrap();
    let db = fs.mountpoint().join("ledger.db");
    let before = fs.counters();
    create_schema(&db);
    let writer = open(&db, "FULL");
    let reader = open(&db, "FULL");
    for id in 1..=50 {
        writer
            .execute("INSERT INTO t VALUES (?1, randomblob(3000))", [id])
            .unwrap();
        // The reader sees each commit through the shared-memory wal-index (a MAP_SHARED mmap
        // of ledger.db-shm on this filesystem).
        let count: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, id);
    }
    let delta = fs.counters().since(&before);
    eprintln!("SQLite, schema + 50 commits (WAL, FULL): {delta:?}");
    assert!(
        delta.fsyncs + delta.fdatasyncs >= 50,
        "FULL syncs every commit"
    );
    assert!(
        delta.fsyncdirs >= 1,
        "SQLite fsyncs the directory after creating the WAL"
    );
    drop(reader);
    drop(writer);

    fs.cut(Tear::Random).unwrap();
    let conn = open(&db, "FULL");
    assert_eq!(integrity(&conn), "ok");
    assert_eq!(ids(&conn), (1..=50).collect());
}

/// Commits five rows one by one in `journal_mode`, closes, cuts; the rows left.
fn rows_after_cut(journal_mode: &str) -> i64 {
    let fs = PowerCutFs::mount_temp(MountOptions::default()).unwrap();
    let db = fs.mountpoint().join("ledger.db");
    let conn = Connection::open(&db).unwrap();
    let _: String = conn
        .query_row(&format!("PRAGMA journal_mode={journal_mode}"), [], |r| {
            r.get(0)
        })
        .unwrap();
    conn.execute_batch("PRAGMA synchronous=FULL; CREATE TABLE t(x)")
        .unwrap();
    for i in 0..5 {
        conn.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
    }
    drop(conn);
    fs.cut(Tear::None).unwrap();
    Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_rollback_journal_deleted_without_a_directory_fsync_undoes_the_last_commit() {
    // DELETE's commit point is the unlink of -journal, which SQLite does not fsync: after a
    // cut the journal is back, hot, and rolls the last acknowledged transaction back.
    assert_eq!(rows_after_cut("DELETE"), 4);
    // TRUNCATE fsyncs the emptied journal at its commit point; WAL fsyncs the WAL.
    assert_eq!(rows_after_cut("TRUNCATE"), 5);
    assert_eq!(rows_after_cut("WAL"), 5);
}

/// Starts the writer child for one round.
fn spawn_writer(db: &Path, acks: &Path, synchronous: &str, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_powercut-sqlite-writer"))
        .arg(db)
        .arg(acks)
        .arg(synchronous)
        .stdout(Stdio::null())
        .stderr(fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Lets the child commit for a random while after its first acknowledgement, then SIGKILLs it.
fn kill_mid_write(child: &mut Child, acks: &Path, log: &Path, rng: &mut impl Rng) {
    let started = Instant::now();
    while fs::metadata(acks).map(|m| m.len()).unwrap_or(0) == 0 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "writer exited ({status}) before committing: {}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "writer never committed"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_micros(rng.random_range(0..40_000)));
    child.kill().unwrap();
    child.wait().unwrap();
}

fn acknowledged(acks: &Path) -> BTreeSet<i64> {
    fs::read_to_string(acks)
        .unwrap_or_default()
        .lines()
        .map(|l| l.parse().expect("whole lines only: one write(2) per ack"))
        .collect()
}

/// What one round found after the cut.
struct Round {
    acked: BTreeSet<i64>,
    missing: BTreeSet<i64>,
    integrity: String,
}

struct Harness {
    fs: MountedFs,
    db: PathBuf,
    scratch: tempfile::TempDir,
    synchronous: &'static str,
}

impl Harness {
    fn new(synchronous: &'static str) -> Harness {
        let fs = PowerCutFs::mount_temp(MountOptions::default()).unwrap();
        let db = fs.mountpoint().join("ledger.db");
        // The schema is made with FULL in every harness, so that only the writer's setting
        // differs between the real run and the negative control.
        create_schema(&db);
        fs.cut(Tear::None).unwrap();
        Harness {
            fs,
            db,
            scratch: tempfile::tempdir().unwrap(),
            synchronous,
        }
    }

    /// One round: start a writer, kill it mid-write, cut the power, reopen and check.
    fn round(&self, n: usize, previously_acked: &BTreeSet<i64>, rng: &mut impl Rng) -> Round {
        let acks = self.scratch.path().join(format!("acks-{n}"));
        let log = self.scratch.path().join(format!("writer-{n}.log"));
        let mut child = spawn_writer(&self.db, &acks, self.synchronous, &log);
        kill_mid_write(&mut child, &acks, &log, rng);
        let report = self.fs.cut(Tear::Random).unwrap();
        assert!(
            !report.lazy_unmount,
            "the killed writer left the mount busy"
        );
        let conn = Connection::open(&self.db).unwrap();
        let integrity = integrity(&conn);
        let present = ids(&conn);
        let acked = acknowledged(&acks);
        let missing = acked
            .iter()
            .chain(previously_acked)
            .filter(|id| !present.contains(id))
            .copied()
            .collect();
        Round {
            acked,
            missing,
            integrity,
        }
    }
}

#[test]
fn every_acknowledged_commit_survives_random_kills_and_cuts_with_full_sync() {
    let harness = Harness::new("FULL");
    let mut rng = rand::rng();
    let mut all_acked = BTreeSet::new();
    for n in 0..ROUNDS {
        let round = harness.round(n, &all_acked, &mut rng);
        assert_eq!(round.integrity, "ok", "round {n}");
        assert!(
            round.missing.is_empty(),
            "round {n}: acknowledged rows lost: {:?}",
            round.missing
        );
        assert!(!round.acked.is_empty());
        all_acked.extend(round.acked);
    }
    let counters = harness.fs.counters();
    eprintln!(
        "{ROUNDS} kills and cuts, {} acknowledged commits all kept; {counters:?}",
        all_acked.len()
    );
}

#[test]
fn the_harness_sees_acknowledged_rows_lost_with_synchronous_off() {
    let harness = Harness::new("OFF");
    let mut rng = rand::rng();
    let mut detections = 0;
    for n in 0..ROUNDS {
        let round = harness.round(n, &BTreeSet::new(), &mut rng);
        if !round.missing.is_empty() {
            detections += 1;
            eprintln!(
                "round {n}: {} of {} acknowledged rows lost (integrity: {})",
                round.missing.len(),
                round.acked.len(),
                round.integrity
            );
            break;
        }
    }
    assert!(
        detections >= 1,
        "with synchronous=OFF no acknowledged row was lost in {ROUNDS} cuts: the filesystem proves nothing"
    );
}

//! The store against real SQLite files: group commit (counted in real fsyncs on an emulated
//! SD card), the ledger over many requesters, a property test against a model written from
//! the ledger's rules as stated (not from the code under test), every bad-storage case (a
//! damaged file, a read-only or full filesystem) and what the watchdog makes of them, and the
//! bounded pool of readers.

mod support;

use hub::store::ledger::{RecordError, Recorded, record, verify};
use hub::store::{Store, StoreError, StoreOptions, outbox, sku as sku_store};
use hub_core::{BatchKey, Movement, MovementId, MovementKind, Sku, SkuCode, Timestamp};
use proptest::prelude::*;
use std::path::Path;

fn sku(code: &str, allow_negative: bool) -> Sku {
    Sku {
        allow_negative,
        ..support::sku(code)
    }
}

fn mv(id: &str, code: &str, lot: Option<&str>, kind: MovementKind, quantity: i64) -> Movement {
    Movement {
        id: MovementId::new(id).unwrap(),
        sku: SkuCode::new(code).unwrap(),
        batch: lot.map(|l| BatchKey::new(l, None).unwrap()),
        kind,
        quantity,
        reason: if kind.needs_reason() {
            "stocktake".into()
        } else {
            String::new()
        },
        reference: "test".into(),
        at: Timestamp(1_000),
    }
}

fn open(dir: &Path) -> Store {
    Store::open(&dir.join("site.sqlite"), "site-1", &StoreOptions::default()).unwrap()
}

fn seed(store: &Store, skus: Vec<Sku>) {
    store
        .write_blocking(move |c| {
            for s in &skus {
                sku_store::upsert(c, s, Timestamp(0))?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requesters_are_group_committed_and_each_answered() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    tokio::task::block_in_place(|| seed(&store, vec![sku("A", false)]));
    let mut tasks = Vec::new();
    for t in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let m = mv(
                    &format!("r-{t}-{i}"),
                    "A",
                    Some("L1"),
                    MovementKind::Receipt,
                    2,
                );
                let out = store.write(move |c| record(c, &m)).await.unwrap();
                assert!(matches!(out, Recorded::Applied { .. }));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (report, stats, stock) = store
        .read(|c| {
            Ok::<_, StoreError>((
                verify(c)?,
                outbox::stats(c)?,
                hub::store::ledger::balances(c)?,
            ))
        })
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.movements, 800);
    assert_eq!(stock[0].on_hand, 1600);
    assert_eq!(
        stats.total, 801,
        "one SKU event plus one event per movement"
    );
    assert_eq!(stats.last_seq, 801);
}

#[test]
fn a_refused_request_does_not_undo_its_group_neighbours() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    seed(&store, vec![sku("A", false)]);
    std::thread::scope(|s| {
        for i in 0..20 {
            let store = store.clone();
            s.spawn(move || {
                // Even ids receive, odd ids try to issue more than can ever be on hand.
                let m = if i % 2 == 0 {
                    mv(&format!("ok-{i}"), "A", None, MovementKind::Receipt, 1)
                } else {
                    mv(&format!("no-{i}"), "A", None, MovementKind::Issue, 1_000)
                };
                let out = store.write_blocking(move |c| record(c, &m));
                if i % 2 == 0 {
                    assert!(matches!(out, Ok(Recorded::Applied { .. })), "{out:?}");
                } else {
                    assert!(matches!(out, Err(RecordError::Refused(_))), "{out:?}");
                }
            });
        }
    });
    let report = store.read_blocking(verify).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.movements, 10);
    let stats = store.read_blocking(outbox::stats).unwrap();
    assert_eq!(
        (stats.total, stats.last_seq),
        (11, 11),
        "refused requests leave no sequence gaps"
    );
}

#[test]
fn the_journal_is_append_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    seed(&store, vec![sku("A", false)]);
    let m = mv("r1", "A", None, MovementKind::Receipt, 5);
    store.write_blocking(move |c| record(c, &m)).unwrap();
    let tamper = store.write_blocking(|c| {
        c.execute("UPDATE movement SET quantity = 500", [])
            .map_err(|e| StoreError::from_sqlite(Path::new("x"), e))
    });
    assert!(tamper.unwrap_err().to_string().contains("append-only"));
    let delete = store.write_blocking(|c| {
        c.execute("DELETE FROM movement", [])
            .map_err(|e| StoreError::from_sqlite(Path::new("x"), e))
    });
    assert!(delete.unwrap_err().to_string().contains("append-only"));
}

#[test]
fn verify_finds_a_tampered_balance() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    seed(&store, vec![sku("A", false)]);
    let m = mv("r1", "A", Some("L1"), MovementKind::Receipt, 5);
    store.write_blocking(move |c| record(c, &m)).unwrap();
    store
        .write_blocking(|c| {
            c.execute("UPDATE balance_batch SET on_hand = 4", [])
                .map_err(|e| StoreError::from_sqlite(Path::new("x"), e))
        })
        .unwrap();
    let report = store.read_blocking(verify).unwrap();
    assert_eq!(
        report.problems,
        vec!["batch A lot L1: stored balance 4, journal sums to 5".to_string()]
    );
}

#[test]
fn reopening_keeps_everything_and_refuses_another_sites_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.sqlite");
    {
        let store = open(dir.path());
        seed(&store, vec![sku("A", false)]);
        let m = mv("r1", "A", None, MovementKind::Receipt, 5);
        store.write_blocking(move |c| record(c, &m)).unwrap();
        store.close();
    }
    let store = open(dir.path());
    assert_eq!(store.read_blocking(verify).unwrap().movements, 1);
    store.close();
    let err = Store::open(&path, "site-2", &StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::WrongSite { .. }), "{err}");
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.sqlite");
    let junk = b"this is a shopping list, not a database\n".repeat(200);
    std::fs::write(&path, &junk).unwrap();
    let err = Store::open(&path, "site-1", &StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::NotADatabase { .. }), "{err}");
    assert!(err.to_string().contains("not a hub database"));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        junk,
        "the file must not be modified"
    );
}

#[test]
fn a_database_from_a_newer_hub_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 999).unwrap();
    }
    let err = Store::open(&path, "site-1", &StoreOptions::default()).unwrap_err();
    assert!(
        matches!(err, StoreError::TooNew { found: 999, .. }),
        "{err}"
    );
}

/// Mounts a tmpfs (the tests run as root, as CI does) and unmounts it on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(options: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount(8) must be available: these tests need root to mount a small tmpfs");
        assert!(
            status.success(),
            "mounting a tmpfs failed: run the test suite as root"
        );
        Tmpfs { dir }
    }

    fn remount(&self, options: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_read_only_data_directory_is_a_clear_error_and_loses_nothing() {
    let fs = Tmpfs::mount("size=8m");
    let path = fs.dir.path().join("site.sqlite");
    {
        let store = Store::open(&path, "site-1", &StoreOptions::default()).unwrap();
        seed(&store, vec![sku("A", false)]);
        let m = mv("r1", "A", None, MovementKind::Receipt, 5);
        store.write_blocking(move |c| record(c, &m)).unwrap();
        store.close();
    }
    fs.remount("ro");
    let err = Store::open(&path, "site-1", &StoreOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&path.display().to_string()),
        "error names the file: {text}"
    );
    let fresh = Store::open(
        &fs.dir.path().join("new/site.sqlite"),
        "site-1",
        &StoreOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(fresh, StoreError::CreateDir { .. }), "{fresh}");
    fs.remount("rw");
    let store = Store::open(&path, "site-1", &StoreOptions::default()).unwrap();
    let report = store.read_blocking(verify).unwrap();
    assert!(report.ok());
    assert_eq!(report.movements, 1, "the movement stored before survives");
}

#[test]
fn a_full_disk_refuses_new_writes_and_keeps_every_acknowledged_one() {
    let fs = Tmpfs::mount("size=1m");
    let path = fs.dir.path().join("site.sqlite");
    let store = Store::open(&path, "site-1", &StoreOptions::default()).unwrap();
    seed(&store, vec![sku("A", false)]);
    let mut acked = Vec::new();
    let mut full_error = None;
    for i in 0..100_000 {
        let mut m = mv(&format!("r{i}"), "A", Some("L1"), MovementKind::Receipt, 1);
        m.reference = "x".repeat(400);
        let id = m.id.clone();
        match store.write_blocking(move |c| record(c, &m)) {
            Ok(_) => acked.push(id),
            Err(e) => {
                full_error = Some(e);
                break;
            }
        }
    }
    let err = full_error.expect("a 1 MiB filesystem fills up");
    let text = err.to_string();
    assert!(
        text.contains("full") || text.contains("disk"),
        "clear disk-full error: {text}"
    );
    store.close();
    // Free space, reopen: every acknowledged movement is there and the ledger verifies.
    fs.remount("size=16m");
    let store = Store::open(&path, "site-1", &StoreOptions::default()).unwrap();
    let report = store.read_blocking(verify).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.movements as usize, acked.len());
    for id in acked.iter().step_by(97) {
        let id = id.clone();
        assert!(
            store
                .read_blocking(move |c| hub::store::ledger::movement_by_id(c, &id))
                .unwrap()
                .is_some()
        );
    }
}

/// Flips 64 bytes at the start of the root page of `table` in a closed database: the b-tree
/// page header and its first cell pointers. Page 1 (header and schema) is left alone, so the
/// file still opens; SQLite reports it malformed when the table is read.
fn damage_table(path: &Path, table: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    let root: i64 = conn
        .query_row(
            "SELECT rootpage FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )
        .unwrap();
    drop(conn);
    assert!(root > 1, "the table's root is not the header page");
    assert!(
        !path.with_extension("sqlite-wal").exists()
            || std::fs::metadata(path.with_extension("sqlite-wal"))
                .unwrap()
                .len()
                == 0,
        "everything is in the main file"
    );
    let mut bytes = std::fs::read(path).unwrap();
    let start = ((root - 1) * page_size) as usize;
    for b in &mut bytes[start..start + 64] {
        *b ^= 0xFF;
    }
    std::fs::write(path, bytes).unwrap();
}

/// A closed store whose `movement` table spans several pages, its root page then damaged.
fn damaged_store_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("site.sqlite");
    let store = Store::open(&path, "site-1", &StoreOptions::default()).unwrap();
    seed(&store, vec![sku("A", false), sku("B", false)]);
    for i in 0..300 {
        let mut m = mv(&format!("r{i}"), "A", Some("L1"), MovementKind::Receipt, 1);
        m.reference = format!("delivery {i} with a longer reference to fill pages");
        store.write_blocking(move |c| record(c, &m)).unwrap();
    }
    store.close();
    drop(store);
    damage_table(&path, "movement");
    path
}

#[test]
fn a_damaged_table_page_is_found_by_the_checks_and_makes_writes_fail_for_good() {
    use hub::store::WriteFaultKind;
    use hub::store::integrity::{Check, check};
    let dir = tempfile::tempdir().unwrap();
    let path = damaged_store_file(dir.path());
    // The file still opens (its header and schema are intact) …
    let store = Store::open(&path, "site-1", &StoreOptions::default()).unwrap();
    // … but SQLite's own checks see the damage, and `hub ledger verify`'s report fails.
    let quick = store.read_blocking(|c| check(c, Check::Quick)).unwrap();
    assert!(!quick.is_empty(), "quick_check finds the damaged page");
    let report = store
        .read_blocking(hub::store::ledger::verify_file)
        .unwrap();
    assert!(!report.ok());
    assert!(!report.integrity.is_empty(), "{report:?}");
    assert!(store.write_fault().is_none(), "nothing was written yet");

    // A movement needs the damaged table: refused, and the store says its writes fail.
    let m = mv("late", "A", Some("L1"), MovementKind::Receipt, 1);
    let err = store.write_blocking(move |c| record(c, &m)).unwrap_err();
    let fault = store
        .write_fault()
        .unwrap_or_else(|| panic!("a write that met a damaged page is a write fault: {err}"));
    assert_eq!(fault.kind, WriteFaultKind::Corrupt);
    assert!(fault.kind.stops_watchdog());
    assert!(fault.describe().contains("restore"), "{}", fault.describe());

    // Writes elsewhere may still work, but the file stays damaged: the fault stays.
    store
        .write_blocking(|c| sku_store::upsert(c, &sku("C", false), Timestamp(5)))
        .unwrap();
    assert_eq!(
        store.write_fault().map(|f| f.kind),
        Some(WriteFaultKind::Corrupt)
    );
}

/// Records what the watchdog loop decides, in order: `true` for a ping, `false` when withheld.
#[derive(Clone, Default)]
struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<bool>>>);

impl hub::systemd::WatchdogSink for Recorder {
    fn ping(&mut self, _status: &str) {
        self.0.lock().unwrap().push(true);
    }
    fn withhold(&mut self, _problem: &str) {
        self.0.lock().unwrap().push(false);
    }
}

impl Recorder {
    fn verdicts(&self) -> Vec<bool> {
        self.0.lock().unwrap().clone()
    }

    async fn wait_for(&self, what: &str, done: impl Fn(&[bool]) -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !done(&self.verdicts()) {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}: {:?}",
                self.verdicts()
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_stops_being_fed_once_writes_fail_on_a_damaged_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = tokio::task::block_in_place(|| damaged_store_file(dir.path()));
    let store = Store::open(&path, "site-1", &StoreOptions::default()).unwrap();
    let recorder = Recorder::default();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let watchdog = tokio::spawn(hub::systemd::watchdog_loop(
        store.clone(),
        std::time::Duration::from_millis(20),
        shutdown.clone(),
        recorder.clone(),
    ));
    // Reads and the no-op write probe work: the watchdog is fed.
    recorder
        .wait_for("two pings", |v| v.iter().filter(|p| **p).count() >= 2)
        .await;

    let m = mv("late", "A", Some("L1"), MovementKind::Receipt, 1);
    store.write(move |c| record(c, &m)).await.unwrap_err();
    let mark = recorder.verdicts().len();
    // From the first check that saw the failure on, it is never fed again.
    recorder
        .wait_for("three withheld pings", |v| {
            v[mark..].iter().filter(|p| !**p).count() >= 3
        })
        .await;
    let after = recorder.verdicts()[mark..].to_vec();
    let first_withheld = after.iter().position(|p| !*p).unwrap();
    assert!(
        after[first_withheld..].iter().all(|p| !*p),
        "fed again while writes fail: {after:?}"
    );
    shutdown.cancel();
    watchdog.await.unwrap();
}

#[test]
fn a_full_disk_is_a_write_fault_until_a_write_succeeds_again() {
    use hub::store::WriteFaultKind;
    let fs = Tmpfs::mount("size=4m");
    let path = fs.dir.path().join("site.sqlite");
    let store = Store::open(&path, "site-1", &StoreOptions::default()).unwrap();
    seed(&store, vec![sku("A", false)]);
    // Fill what is left with another file.
    let filler = fs.dir.path().join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    let mut failed = None;
    for i in 0..200 {
        let mut m = mv(&format!("r{i}"), "A", None, MovementKind::Receipt, 1);
        m.reference = "x".repeat(2000);
        if let Err(e) = store.write_blocking(move |c| record(c, &m)) {
            failed = Some(e);
            break;
        }
    }
    failed.expect("writes fail on a full disk");
    let fault = store
        .write_fault()
        .expect("a write fault while the disk is full");
    assert_eq!(fault.kind, WriteFaultKind::DiskFull, "{fault:?}");
    assert!(
        !fault.kind.stops_watchdog(),
        "a restart does not free space"
    );
    assert!(
        fault.describe().contains("free space"),
        "{}",
        fault.describe()
    );

    std::fs::remove_file(&filler).unwrap();
    let m = mv("after", "A", None, MovementKind::Receipt, 1);
    store.write_blocking(move |c| record(c, &m)).unwrap();
    assert!(
        store.write_fault().is_none(),
        "a successful write clears the fault"
    );
}

#[test]
fn readers_wait_for_the_pool_instead_of_opening_more_connections() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    seed(&store, vec![sku("A", false)]);
    let busy = AtomicUsize::new(0);
    let most = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..32 {
            s.spawn(|| {
                store
                    .read_blocking(|c| {
                        let now = busy.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(30));
                        busy.fetch_sub(1, Ordering::SeqCst);
                        outbox::stats(c)
                    })
                    .unwrap();
            });
        }
    });
    let most = most.load(Ordering::SeqCst);
    assert!(
        most <= hub::store::READERS,
        "{most} read connections at once; the pool holds {}",
        hub::store::READERS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_async_reads_shares_the_pool_of_readers() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let busy = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut reads = Vec::new();
    for _ in 0..200 {
        let (store, busy, most) = (store.clone(), busy.clone(), most.clone());
        reads.push(tokio::spawn(async move {
            let (b, m) = (busy.clone(), most.clone());
            let entered = move || {
                let now = b.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
            };
            store
                .read(move |c| {
                    entered();
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    busy.fetch_sub(1, Ordering::SeqCst);
                    outbox::stats(c)
                })
                .await
                .unwrap();
        }));
    }
    for r in reads {
        r.await.unwrap();
    }
    let most = most.load(Ordering::SeqCst);
    assert!(
        most <= hub::store::READERS,
        "{most} reads at once; the pool holds {}",
        hub::store::READERS
    );
}

fn arb_movement() -> impl Strategy<Value = Movement> {
    (
        0u8..30,
        prop_oneof![Just("A"), Just("NEG"), Just("NOPE")],
        proptest::option::of(prop_oneof![Just("L1"), Just("L2")]),
        proptest::sample::select(MovementKind::ALL.to_vec()),
        -10i64..30,
        prop_oneof![4 => Just("stocktake"), 1 => Just(""), 1 => Just("  ")],
    )
        .prop_map(|(id, code, lot, kind, q, reason)| {
            let mut m = mv(&format!("m{id}"), code, lot, kind, q);
            m.reason = reason.into();
            m
        })
}

/// The ledger's rules as the documentation states them, written out independently of
/// `hub_core::ledger::plan_movement`, so the property test does not check the code against
/// itself.
#[derive(Default)]
struct SpecLedger {
    allow_negative: std::collections::HashMap<String, bool>,
    sku: std::collections::HashMap<String, i64>,
    batch: std::collections::HashMap<(String, String), i64>,
    applied: std::collections::HashMap<String, Movement>,
}

impl SpecLedger {
    /// Whether the movement is accepted (applied, or a repeat of one applied before).
    fn apply(&mut self, m: &Movement) -> bool {
        // The same id is applied once: the same content again is fine, other content is not.
        if let Some(earlier) = self.applied.get(m.id.as_str()) {
            return earlier.sku == m.sku
                && earlier.batch == m.batch
                && earlier.kind == m.kind
                && earlier.quantity == m.quantity
                && earlier.reason == m.reason
                && earlier.reference == m.reference;
        }
        let sign = match m.kind {
            MovementKind::Receipt | MovementKind::Return | MovementKind::TransferIn => 1,
            MovementKind::Issue | MovementKind::Loss | MovementKind::TransferOut => -1,
            MovementKind::Adjustment => 0,
        };
        // Quantities are positive; an adjustment is a signed, non-zero delta.
        if (sign != 0 && m.quantity <= 0) || (sign == 0 && m.quantity == 0) {
            return false;
        }
        // Write-offs and stocktake corrections say why.
        let needs_reason = matches!(m.kind, MovementKind::Loss | MovementKind::Adjustment);
        if needs_reason && m.reason.trim().is_empty() {
            return false;
        }
        // Stock moves only for known SKUs.
        let Some(&negative_ok) = self.allow_negative.get(m.sku.as_str()) else {
            return false;
        };
        let delta = if sign == 0 {
            m.quantity
        } else {
            sign * m.quantity
        };
        let sku_after = self.sku.get(m.sku.as_str()).copied().unwrap_or(0) + delta;
        let batch_key = m.batch.as_ref().map(|b| (m.sku.to_string(), b.lot.clone()));
        let batch_after = batch_key
            .as_ref()
            .map(|k| self.batch.get(k).copied().unwrap_or(0) + delta);
        // A decrease may not take the SKU, or its batch, below zero unless the SKU allows it.
        if !negative_ok && delta < 0 && (sku_after < 0 || batch_after.is_some_and(|b| b < 0)) {
            return false;
        }
        self.sku.insert(m.sku.to_string(), sku_after);
        if let (Some(k), Some(after)) = (batch_key, batch_after) {
            self.batch.insert(k, after);
        }
        self.applied.insert(m.id.to_string(), m.clone());
        true
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    /// For any sequence (duplicates and refusals included) the stored ledger agrees with the
    /// rules as stated, verifies, and never goes negative where that is not allowed.
    #[test]
    fn the_stored_ledger_matches_the_stated_rules(moves in proptest::collection::vec(arb_movement(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("p.sqlite"), "site-1", &StoreOptions::default()).unwrap();
        seed(&store, vec![sku("A", false), sku("NEG", true)]);
        let mut model = SpecLedger::default();
        model.allow_negative.insert("A".into(), false);
        model.allow_negative.insert("NEG".into(), true);
        for m in moves {
            let expected = model.apply(&m);
            let got = store.write_blocking(move |c| record(c, &m));
            prop_assert_eq!(expected, got.is_ok(), "{:?}", got);
        }
        let report = store.read_blocking(verify).unwrap();
        prop_assert!(report.ok(), "{:?}", report.problems);
        let stock = store.read_blocking(hub::store::ledger::balances).unwrap();
        for s in &stock {
            prop_assert_eq!(s.on_hand, model.sku.get(&s.sku).copied().unwrap_or(0));
            for b in &s.batches {
                prop_assert_eq!(b.on_hand, model.batch.get(&(s.sku.clone(), b.lot.clone())).copied().unwrap_or(0));
            }
            if s.sku == "A" {
                prop_assert!(s.on_hand >= 0);
                prop_assert!(s.batches.iter().all(|b| b.on_hand >= 0));
            }
        }
        let journaled: i64 = store
            .read_blocking(|c| c.query_row("SELECT COUNT(*) FROM movement", [], |r| r.get(0)).map_err(hub::store::sql_error(c)))
            .unwrap();
        prop_assert_eq!(journaled as usize, model.applied.len());
        store.close();
    }
}

/// Group commit, counted where it matters: on an emulated SD card (every fsync takes 5 ms), 200
/// concurrent movements share far fewer durable commits — and far fewer real fsyncs — than
/// requests. One fsync per request would make the counts equal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_fsyncs_on_a_slow_card() {
    let card = tokio::task::block_in_place(|| {
        powercut::PowerCutFs::mount_temp(powercut::MountOptions {
            fsync_latency: std::time::Duration::from_millis(5),
            ..Default::default()
        })
    })
    .expect("the emulated card mounts (FUSE, as root)");
    let store = tokio::task::block_in_place(|| {
        let store = open(card.mountpoint());
        seed(&store, vec![sku("A", false)]);
        store
    });
    let fsyncs_before = card.counters();
    let stats_before = store.writer_stats();
    const N: usize = 200;
    let mut tasks = Vec::new();
    for i in 0..N {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let m = mv(&format!("g{i}"), "A", Some("L1"), MovementKind::Receipt, 1);
            store.write(move |c| record(c, &m)).await
        }));
    }
    for t in tasks {
        assert!(matches!(t.await.unwrap(), Ok(Recorded::Applied { .. })));
    }
    let stats = store.writer_stats();
    let groups = stats.groups_committed - stats_before.groups_committed;
    let requests = stats.requests_committed - stats_before.requests_committed;
    let synced = card.counters().since(&fsyncs_before);
    let fsyncs = synced.fsyncs + synced.fdatasyncs;
    assert_eq!(requests, N as u64);
    assert!(
        groups * 4 <= N as u64,
        "{N} requests took {groups} durable commits: they were not grouped"
    );
    assert!(
        fsyncs * 4 <= N as u64 && fsyncs >= 1,
        "{N} requests took {fsyncs} fsyncs on the card"
    );
    let balance = store.read(hub::store::ledger::balances).await.unwrap();
    assert_eq!(
        balance[0].on_hand, N as i64,
        "every acknowledged movement is there"
    );
    tokio::task::block_in_place(|| store.close());
}

/// This thread's `write_bytes` (bytes it caused to be written to storage, temporary files
/// included), from `/proc/thread-self/io`.
fn thread_write_bytes() -> u64 {
    std::fs::read_to_string("/proc/thread-self/io")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

/// Each write request runs in a savepoint of the group's transaction, and SQLite keeps the
/// pages a savepoint changes in a statement journal, spilled to a temporary file above 64 KiB:
/// written to the card for nothing (`hub bench stations` saw 83 KiB per handover). The writer
/// keeps statement journals in memory: a request changing ~1 MiB of existing pages writes
/// nothing to storage before its commit.
#[test]
fn a_write_request_changing_many_pages_writes_no_temporary_file_before_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .write_blocking(|c| {
            c.execute_batch("CREATE TABLE scratch (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
                .map_err(|e| StoreError::from_sqlite(Path::new("scratch"), e))?;
            for i in 0..1000 {
                c.execute(
                    "INSERT INTO scratch (id, body) VALUES (?1, zeroblob(1000))",
                    [i],
                )
                .map_err(|e| StoreError::from_sqlite(Path::new("scratch"), e))?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    // The job runs on the writer's thread, inside its savepoint; the commit comes after it.
    let written = store
        .write_blocking(|c| {
            let before = thread_write_bytes();
            c.execute("UPDATE scratch SET body = randomblob(1000)", [])
                .map_err(|e| StoreError::from_sqlite(Path::new("scratch"), e))?;
            Ok::<_, StoreError>(thread_write_bytes() - before)
        })
        .unwrap();
    assert_eq!(
        written, 0,
        "the request wrote {written} bytes (a statement journal on disk) before its commit"
    );
    store.close();
}

/// The WAL writes every page a commit touches, whole; a stock movement touches a handful of
/// b-trees (the journal and its indexes, the balances, the outbox), each for one small row.
/// A database the store creates uses 1 KiB pages, so such a commit appends about a quarter of
/// what SQLite's default 4 KiB pages would (the SD card's wear, README "Bytes per handover").
#[test]
fn a_new_database_uses_small_pages_so_a_movement_commit_appends_little_to_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    seed(&store, vec![sku("A", false)]);
    let page_size: i64 = store
        .read_blocking(|c| {
            c.query_row("PRAGMA page_size", [], |r| r.get(0))
                .map_err(|e| StoreError::from_sqlite(Path::new("page_size"), e))
        })
        .unwrap();
    assert_eq!(page_size, 1024, "a new database's page size");
    let wal = dir.path().join("site.sqlite-wal");
    let wal_len = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    const N: u64 = 20;
    let before = wal_len();
    for i in 0..N {
        let m = mv(&format!("w{i}"), "A", Some("L1"), MovementKind::Receipt, 1);
        assert!(matches!(
            store.write_blocking(move |c| record(c, &m)),
            Ok(Recorded::Applied { .. })
        ));
    }
    let per_commit = (wal_len() - before) / N;
    assert!(per_commit > 0, "the commits were not measured in the WAL");
    assert!(
        per_commit <= 12 * 1024,
        "a movement's commit appended {per_commit} bytes to the WAL"
    );
    store.close();
}

/// A database created before (SQLite's default 4 KiB pages) keeps its page size and works:
/// the smaller size applies to new files only.
#[test]
fn an_existing_database_keeps_its_page_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA page_size=4096; PRAGMA journal_mode=WAL; VACUUM;")
            .unwrap();
    }
    let store = open(dir.path());
    seed(&store, vec![sku("A", false)]);
    let m = mv("old-1", "A", Some("L1"), MovementKind::Receipt, 3);
    assert!(matches!(
        store.write_blocking(move |c| record(c, &m)),
        Ok(Recorded::Applied { .. })
    ));
    store.close();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    assert_eq!(page_size, 4096);
    let on_hand: i64 = conn
        .query_row("SELECT on_hand FROM balance_sku WHERE sku = 'A'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(on_hand, 3);
}

/// What a restart can do without (a station's screen) rides on the next commit instead of a
/// commit of its own: every request below is followed by a deferred save, and the saves
/// cost no commit; the latest save under a key wins; alone, a deferred save is committed
/// within `DEFERRED_AT_MOST`; closing the store commits what is pending.
#[test]
fn deferred_writes_ride_on_the_next_commit_and_are_committed_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    seed(&store, vec![sku("A", false)]);
    store
        .write_blocking(|c| {
            c.execute_batch("CREATE TABLE kept (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
                .map_err(|e| StoreError::from_sqlite(Path::new("kept"), e))
        })
        .unwrap();
    let save = |store: &Store, key: &'static str, v: i64| {
        store.write_deferred(key, move |c| {
            c.execute(
                "INSERT INTO kept (k, v) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                rusqlite::params![key, v],
            )
            .map(|_| ())
            .map_err(|e| StoreError::from_sqlite(Path::new("kept"), e))
        });
    };
    let kept = |path: &Path| -> Vec<(String, i64)> {
        let conn = rusqlite::Connection::open(path).unwrap();
        let mut st = conn.prepare("SELECT k, v FROM kept ORDER BY k").unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let before = store.writer_stats();
    const N: u64 = 10;
    for i in 0..N {
        let m = mv(&format!("d{i}"), "A", Some("L1"), MovementKind::Receipt, 1);
        assert!(matches!(
            store.write_blocking(move |c| record(c, &m)),
            Ok(Recorded::Applied { .. })
        ));
        save(&store, "screen", i as i64);
    }
    // One more request carries the last save.
    store.write_blocking(|_| Ok::<_, StoreError>(())).unwrap();
    let after = store.writer_stats();
    assert_eq!(
        after.groups_committed - before.groups_committed,
        N + 1,
        "the deferred saves took commits of their own"
    );
    let db = dir.path().join("site.sqlite");
    assert_eq!(kept(&db), vec![("screen".to_owned(), N as i64 - 1)]);
    // Alone, it is committed by itself, within the limit.
    save(&store, "alone", 7);
    let deadline = std::time::Instant::now()
        + hub::store::DEFERRED_AT_MOST
        + std::time::Duration::from_secs(10);
    while !kept(&db).contains(&("alone".to_owned(), 7)) {
        assert!(
            std::time::Instant::now() < deadline,
            "a deferred write alone was never committed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Pending on close: committed by the close.
    save(&store, "screen", 99);
    store.close();
    assert!(
        kept(&db).contains(&("screen".to_owned(), 99)),
        "{:?}",
        kept(&db)
    );
}

/// Pages rewritten by every commit are copied into the main file once per checkpoint: the
/// store checkpoints after `CHECKPOINT_AFTER_WAL_BYTES` of WAL, not after SQLite's default
/// 1000 pages (1 MiB with 1 KiB pages): after ~1.5 MiB of commits the main file has not been
/// written yet; closing folds the WAL in.
#[test]
fn the_wal_is_checkpointed_after_megabytes_not_after_a_thousand_pages() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .write_blocking(|c| {
            c.execute_batch("CREATE TABLE scratch (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
                .map_err(|e| StoreError::from_sqlite(Path::new("scratch"), e))
        })
        .unwrap();
    let db = dir.path().join("site.sqlite");
    let main_len = || std::fs::metadata(&db).unwrap().len();
    let before = main_len();
    for round in 0..15 {
        store
            .write_blocking(move |c| {
                for i in 0..100 {
                    c.execute(
                        "INSERT INTO scratch (id, body) VALUES (?1, zeroblob(900))",
                        [round * 100 + i],
                    )
                    .map_err(|e| StoreError::from_sqlite(Path::new("scratch"), e))?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
    }
    assert_eq!(
        main_len(),
        before,
        "the main file was written (checkpointed) after ~1.5 MiB of WAL"
    );
    store.close();
    assert!(main_len() > before + 1_000_000, "closing folds the WAL in");
}

//! What the store writes to the SD card, counted through its own files: sequence
//! numbers taken without rewriting a counter row (and never given twice, even after the
//! outbox is pruned to nothing), and what a restart can do without waiting a few seconds
//! before it rides on a commit.

mod support;

use hub::store::ledger::{Recorded, record};
use hub::store::{Store, StoreError, StoreOptions, outbox, sku as sku_store};
use hub_core::{DomainEvent, Movement, MovementId, MovementKind, SkuCode, Timestamp};
use std::path::Path;

fn open(dir: &Path) -> Store {
    Store::open(&dir.join("site.sqlite"), "site-1", &StoreOptions::default()).unwrap()
}

fn receipt(id: &str) -> Movement {
    Movement {
        id: MovementId::new(id).unwrap(),
        sku: SkuCode::new("A").unwrap(),
        batch: None,
        kind: MovementKind::Receipt,
        quantity: 1,
        reason: String::new(),
        reference: "test".into(),
        at: Timestamp(1_000),
    }
}

fn counter_rows(db: &Path) -> Vec<(String, i64)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut st = conn
        .prepare("SELECT name, value FROM counter ORDER BY name")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn sequence_numbers_rewrite_no_counter_row_and_are_never_given_twice_after_a_prune() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let db = dir.path().join("site.sqlite");
    store
        .write_blocking(|c| {
            sku_store::upsert(c, &support::sku("A"), Timestamp(0))?;
            for i in 0..3 {
                assert!(matches!(
                    record(c, &receipt(&format!("r{i}"))),
                    Ok(Recorded::Applied { .. })
                ));
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    // Movements and their events are numbered 1, 2, 3… without a counter row being written.
    let counters = counter_rows(&db);
    assert!(
        counters
            .iter()
            .all(|(name, _)| name != "outbox_seq" && name != "journal_seq"),
        "{counters:?}"
    );
    let journal: Vec<i64> = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let mut st = conn
            .prepare("SELECT journal_seq FROM movement ORDER BY journal_seq")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(journal, vec![1, 2, 3]);
    let last = store.read_blocking(outbox::stats).unwrap().last_seq;
    assert_eq!(
        last, 4,
        "one sku_upserted and three movement_recorded events"
    );

    // Everything delivered and confirmed by central, then pruned: the outbox is empty, and
    // the next event still gets the next number.
    let pruned = store
        .write_blocking(move |c| {
            outbox::mark_delivered(c, &(1..=last).collect::<Vec<_>>(), Timestamp(2_000))?;
            outbox::confirm(c, last)?;
            outbox::prune(c, Timestamp(3_000))
        })
        .unwrap();
    assert_eq!(pruned, 4);
    assert_eq!(store.read_blocking(outbox::stats).unwrap().last_seq, last);
    let next = store
        .write_blocking(|c| {
            outbox::append(
                c,
                &DomainEvent::SkuUpserted {
                    sku: support::sku("A"),
                },
                Timestamp(4_000),
            )
        })
        .unwrap();
    assert_eq!(next, last + 1);
    // A database whose counter row is ahead of its rows (an older hub pruned them) goes on
    // from the counter.
    store
        .write_blocking(|c| {
            c.execute(
                "INSERT INTO counter (name, value) VALUES ('outbox_seq', 40), ('journal_seq', 30)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                [],
            )
            .map_err(|e| StoreError::from_sqlite(Path::new("counter"), e))
        })
        .unwrap();
    let applied = store
        .write_blocking(|c| record(c, &receipt("r-after")))
        .unwrap();
    assert!(
        matches!(applied, Recorded::Applied { outbox_seq: 41, .. }),
        "{applied:?}"
    );
    let journal_seq: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT journal_seq FROM movement WHERE id = 'r-after'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(journal_seq, 31);
    store.close();
}

/// A lazily deferred write (a station's screen) does not ride on the commits that follow at
/// once; alone, it is committed within `DEFERRED_AT_MOST`; closing commits what is pending.
#[test]
fn lazily_deferred_writes_skip_the_next_commits_and_are_still_committed_alone_and_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let db = dir.path().join("site.sqlite");
    store
        .write_blocking(|c| {
            c.execute_batch("CREATE TABLE kept (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
                .map_err(|e| StoreError::from_sqlite(Path::new("kept"), e))
        })
        .unwrap();
    let save = |store: &Store, key: &'static str, v: i64| {
        store.write_deferred_lazily(key, move |c| {
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
    save(&store, "screen", 1);
    for _ in 0..5 {
        store.write_blocking(|_| Ok::<_, StoreError>(())).unwrap();
        save(&store, "screen", 2);
    }
    assert_eq!(
        kept(&db),
        vec![],
        "a lazy write rode on the commits right after it"
    );
    // No other write: committed alone, within the limit.
    let deadline = std::time::Instant::now()
        + hub::store::DEFERRED_AT_MOST
        + std::time::Duration::from_secs(10);
    while kept(&db) != vec![("screen".to_owned(), 2)] {
        assert!(
            std::time::Instant::now() < deadline,
            "a lazily deferred write alone was never committed: {:?}",
            kept(&db)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    save(&store, "screen", 3);
    store.close();
    assert_eq!(kept(&db), vec![("screen".to_owned(), 3)]);
}

/// The b-trees (by name) of the pages each commit appended to the WAL from byte `from` on.
fn commits_in_wal(db: &Path, from: u64) -> Vec<Vec<String>> {
    let wal = std::fs::read(format!("{}-wal", db.display())).unwrap();
    let conn = rusqlite::Connection::open(db).unwrap();
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    let names: std::collections::HashMap<i64, String> = conn
        .prepare("SELECT pageno, name FROM dbstat")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let frame = 24 + page_size as usize;
    let (mut commits, mut pages) = (vec![], vec![]);
    let mut at = (from as usize).max(32);
    while at + frame <= wal.len() {
        let word = |i: usize| u32::from_be_bytes(wal[at + i..at + i + 4].try_into().unwrap());
        let page = i64::from(word(0));
        pages.push(names.get(&page).cloned().unwrap_or(format!("page {page}")));
        if word(4) != 0 {
            commits.push(std::mem::take(&mut pages));
        }
        at += frame;
    }
    commits
}

/// Delivery moves a watermark: marking events delivered in sequence order rewrites no outbox
/// page, while marks out of order, withheld rows and a resend range still mean what they did.
#[test]
fn marking_events_delivered_moves_a_watermark_and_out_of_order_marks_and_resends_still_hold() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let db = dir.path().join("site.sqlite");
    let append = |store: &Store, n: usize| {
        store
            .write_blocking(move |c| {
                (0..n)
                    .map(|i| {
                        outbox::append(
                            c,
                            &DomainEvent::SkuUpserted {
                                sku: support::sku(&format!("S{i}")),
                            },
                            Timestamp(1_000),
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap()
    };
    let mark = |store: &Store, seqs: &[i64]| {
        let seqs = seqs.to_vec();
        store
            .write_blocking(move |c| outbox::mark_delivered(c, &seqs, Timestamp(2_000)))
            .unwrap()
    };
    let pending = |store: &Store| -> Vec<i64> {
        store
            .read_blocking(|c| outbox::pending(c, 0, 100))
            .unwrap()
            .into_iter()
            .map(|r| r.seq)
            .collect()
    };
    assert_eq!(append(&store, 6), vec![1, 2, 3, 4, 5, 6]);
    // Acknowledged out of order: 3 and 4 first.
    assert_eq!(mark(&store, &[4, 3]), 2);
    assert_eq!(pending(&store), vec![1, 2, 5, 6]);
    assert_eq!(
        store.read_blocking(outbox::first_undelivered).unwrap(),
        Some(1)
    );
    assert_eq!(mark(&store, &[1, 2]), 2);
    assert_eq!(pending(&store), vec![5, 6]);
    // In order, the mark is the watermark's counter row alone: no outbox page is rewritten.
    let wal_before = std::fs::metadata(format!("{}-wal", db.display()))
        .unwrap()
        .len();
    assert_eq!(mark(&store, &[5, 6]), 2);
    let commits = commits_in_wal(&db, wal_before);
    assert_eq!(commits, vec![vec!["counter".to_owned()]]);
    assert_eq!(pending(&store), Vec::<i64>::new());
    let stats = store.read_blocking(outbox::stats).unwrap();
    assert_eq!(
        (
            stats.undelivered,
            stats.first_undelivered_seq,
            stats.last_seq
        ),
        (0, None, 6)
    );
    // Central asks for 2..=3 again: those two are sent again, 4..=6 stay delivered.
    let resent = store
        .write_blocking(|c| outbox::mark_undelivered(c, 2, 3))
        .unwrap();
    assert_eq!(resent, 2);
    assert_eq!(pending(&store), vec![2, 3]);
    assert_eq!(mark(&store, &[2, 3]), 2);
    assert_eq!(pending(&store), Vec::<i64>::new());
    // A withheld row is delivered as far as the uplink is concerned, and the watermark passes it.
    assert_eq!(append(&store, 2), vec![7, 8]);
    store
        .write_blocking(|c| outbox::mark_withheld(c, 7, "too large", Timestamp(3_000)))
        .unwrap();
    assert_eq!(pending(&store), vec![8]);
    assert_eq!(mark(&store, &[8]), 1);
    assert_eq!(pending(&store), Vec::<i64>::new());
    assert_eq!(store.read_blocking(outbox::delivered_through).unwrap(), 8);
    // Pruning still stops before the withheld row.
    let pruned = store
        .write_blocking(|c| {
            outbox::confirm(c, 8)?;
            outbox::prune(c, Timestamp(10_000))
        })
        .unwrap();
    assert_eq!(pruned, 6);
    store.close();
}

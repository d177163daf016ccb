//! Pickup codes scanned at the counter's scanner: a check that changes nothing
//! stored costs no commit of its own — the pass the handover needs rides on the handover's
//! commit, its journal row a few seconds later — while a wrong code, which counts towards the lockout, is stored at
//! once and survives a restart. The station app's own requests are answered once but not
//! published over MQTT. Real SQLite files; the counts are the store's own.

mod support;

use hub::config::Config;
use hub::store::pickup_orders::{HandoverRequest, upsert_order};
use hub::store::{Store, StoreError, StoreOptions, device_input, sku as sku_store};
use hub::workflows::Site;
use hub::workflows::devices::{InputOutcome, scanned_at_counter};
use hub::workflows::pickup;
use hub_core::pickup::{CodeCheck, OrderStatus, PickupItem, PickupOrder, hash_code};
use hub_core::{BatchKey, Movement, MovementId, MovementKind, SiteId, SkuCode, Timestamp};
use std::path::Path;

const T0: i64 = 1_790_000_000_000;

fn config(dir: &Path) -> Config {
    let text = "[site]\nid = \"pp-1\"\n[store]\ndata_dir = \"data\"\n[pickup]\nmax_wrong_codes = 2\nlockout_minutes = 5\n[[stations]]\nid = \"desk-1\"\nkind = \"pickup\"\n";
    Config::parse(text, dir).unwrap()
}

fn open(config: &Config) -> Store {
    Store::open(
        &config.database_path(),
        config.site.id.as_str(),
        &StoreOptions::default(),
    )
    .unwrap()
}

fn seed(store: &Store, order_id: &str, code: &str) {
    let salt = "0badc0de".to_owned();
    let order = PickupOrder {
        order_id: order_id.into(),
        site: SiteId::new("pp-1").unwrap(),
        code_hash: hash_code(&salt, code).unwrap(),
        code_salt: salt,
        items: vec![PickupItem {
            sku: SkuCode::new("MILK").unwrap(),
            quantity: 1,
            lot: None,
            trace_codes: vec![],
            unit_price_cents: None,
        }],
        opens_at: Timestamp(T0 - 3_600_000),
        closes_at: Timestamp(T0 + 86_400_000),
        status: OrderStatus::Open,
        version: 1,
        phone_tail: None,
    };
    // Called from the tests' runtime: the blocking write may not hold up its thread.
    tokio::task::block_in_place(|| {
        store
            .write_blocking(move |c| {
                sku_store::upsert(c, &support::sku("MILK"), Timestamp(T0))?;
                support::record(
                    c,
                    &Movement {
                        id: MovementId::new("rcv-1").unwrap(),
                        sku: SkuCode::new("MILK").unwrap(),
                        batch: Some(BatchKey::new("L1", "2030-01-01".parse().ok()).unwrap()),
                        kind: MovementKind::Receipt,
                        quantity: 10,
                        reason: String::new(),
                        reference: "delivery D1".into(),
                        at: Timestamp(T0),
                    },
                )?;
                upsert_order(c, &order, Timestamp(T0))?;
                Ok::<_, StoreError>(())
            })
            .unwrap()
    });
}

fn scan(site: &Site, text: &str) -> hub::codes::Scanned {
    hub::codes::Scanned {
        text: text.to_owned(),
        code: hub::codes::classify_text(text, &site.patterns),
        raw: text.to_owned(),
    }
}

/// What another process reading the file sees now: only what was committed.
fn committed<T>(config: &Config, sql: &str) -> T
where
    T: rusqlite::types::FromSql,
{
    let conn = rusqlite::Connection::open(config.database_path()).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pickup_code_that_checks_out_at_the_counter_rides_on_the_handovers_commit() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store = open(&config);
    seed(&store, "P1", "424242");
    let site = Site::of(&config);
    let before = store.writer_stats().groups_committed;

    let outcome = scanned_at_counter(
        &store,
        &site,
        ("desk-scanner", "desk-1"),
        scan(&site, "P1:424242"),
        Timestamp(T0),
    )
    .await
    .unwrap();
    assert!(
        matches!(&outcome, InputOutcome::Code(CodeCheck::Found { order_id }) if order_id == "P1"),
        "{outcome:?}"
    );
    // No commit of its own: nothing of the scan is in the file yet.
    assert_eq!(store.writer_stats().groups_committed, before);
    let journaled: i64 = committed(&config, "SELECT COUNT(*) FROM device_input");
    assert_eq!(journaled, 0);

    // The handover finds the pass: it rode on the handover's own commit, one commit for both.
    let handover = pickup::handover(
        &store,
        &site,
        "desk-1",
        "P1",
        HandoverRequest::default(),
        Timestamp(T0 + 2_000),
    )
    .await
    .unwrap();
    assert_eq!(handover.order_id, "P1");
    assert_eq!(store.writer_stats().groups_committed, before + 1);
    // The scan's journal row waits a few seconds longer; closing the store commits it.
    store.close();
    let store = open(&config);
    let rows = store.read(|c| device_input::recent(c, 10)).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].station, "desk-1");
    assert_eq!(rows[0].outcome, "applied");
    assert_eq!(rows[0].code.as_deref(), Some("P1:424242"));
    store.close();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_code_scanned_at_the_counter_is_stored_at_once_and_its_lockout_survives_a_restart()
{
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store = open(&config);
    seed(&store, "P1", "424242");
    let site = Site::of(&config);

    for (i, guess) in ["P1:000000", "P1:000001"].into_iter().enumerate() {
        let before = store.writer_stats().groups_committed;
        let outcome = scanned_at_counter(
            &store,
            &site,
            ("desk-scanner", "desk-1"),
            scan(&site, guess),
            Timestamp(T0 + i as i64 * 1000),
        )
        .await
        .unwrap();
        assert!(
            matches!(outcome, InputOutcome::Code(CodeCheck::WrongCode)),
            "{outcome:?}"
        );
        // Committed before the answer, journal row and all.
        assert_eq!(store.writer_stats().groups_committed, before + 1);
        let refused: i64 = committed(
            &config,
            "SELECT COUNT(*) FROM device_input WHERE outcome = 'refused'",
        );
        assert_eq!(refused, i as i64 + 1);
    }
    // The second wrong code locked the station; a restart keeps it locked, even for the right
    // code (whose answer is a read).
    drop(store);
    let store = open(&config);
    let outcome = scanned_at_counter(
        &store,
        &site,
        ("desk-scanner", "desk-1"),
        scan(&site, "P1:424242"),
        Timestamp(T0 + 5_000),
    )
    .await
    .unwrap();
    assert!(
        matches!(outcome, InputOutcome::Code(CodeCheck::LockedOut { until }) if until == Timestamp(T0 + 1_000 + 300_000)),
        "{outcome:?}"
    );
    store.close();
}

/// The b-trees (by name) of the pages each commit appended to the WAL from byte `from` on.
fn commits_in_wal(db: &Path, from: u64) -> Vec<Vec<String>> {
    let wal = std::fs::read(format!("{}-wal", db.display())).unwrap();
    let conn = rusqlite::Connection::open(db).unwrap();
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    let page_size = page_size as usize;
    let names: std::collections::HashMap<i64, String> = conn
        .prepare("SELECT pageno, name FROM dbstat")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut commits = vec![];
    let mut pages = vec![];
    let mut at = (from as usize).max(32);
    while at + 24 + page_size <= wal.len() {
        let word = |i: usize| u32::from_be_bytes(wal[at + i..at + i + 4].try_into().unwrap());
        let (page, size_after) = (i64::from(word(0)), word(4));
        pages.push(if page == 1 {
            "page 1".to_owned()
        } else {
            names
                .get(&page)
                .cloned()
                .unwrap_or_else(|| format!("page {page}"))
        });
        if size_after != 0 {
            commits.push(std::mem::take(&mut pages));
        }
        at += 24 + page_size;
    }
    commits
}

fn wal_len(db: &Path) -> u64 {
    std::fs::metadata(format!("{}-wal", db.display())).map_or(0, |m| m.len())
}

/// A scan and its handover are one commit, and that commit rewrites no counter row and no
/// index of outbox event ids: the pages it writes are those of the rows it adds or changes
/// (the scan's journal row comes a few seconds later, with the rows of other scans).
#[tokio::test(flavor = "multi_thread")]
async fn a_scan_and_its_handover_are_one_commit_without_a_counter_or_event_id_page() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store = open(&config);
    seed(&store, "P1", "424242");
    let site = Site::of(&config);
    let db = config.database_path();
    let from = wal_len(&db);
    scanned_at_counter(
        &store,
        &site,
        ("desk-scanner", "desk-1"),
        scan(&site, "P1:424242"),
        Timestamp(T0),
    )
    .await
    .unwrap();
    pickup::handover(
        &store,
        &site,
        "desk-1",
        "P1",
        HandoverRequest::default(),
        Timestamp(T0 + 2_000),
    )
    .await
    .unwrap();
    let commits = commits_in_wal(&db, from);
    assert_eq!(commits.len(), 1, "{commits:?}");
    let pages = &commits[0];
    for tree in ["pickup_check_pass", "handover", "movement", "outbox"] {
        assert!(pages.iter().any(|p| p == tree), "{tree} not in {pages:?}");
    }
    for tree in ["counter", "sqlite_autoindex_outbox_1", "device_input"] {
        assert!(!pages.iter().any(|p| p == tree), "{tree} in {pages:?}");
    }
    store.close();
}

/// The station app's own request is answered over HTTP: its reply is stored for a retry of
/// the same request id — answered once, from the stored reply, after a restart too — but not
/// left waiting to be published on the station's MQTT reply topic.
#[tokio::test(flavor = "multi_thread")]
async fn an_app_request_is_answered_once_across_a_restart_and_not_left_for_mqtt() {
    use hub::workflows::station::{blank_reply, run_app_command_in};
    use hub_contract::station::{StationAction, StationCommand};
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store = open(&config);
    seed(&store, "P1", "424242");
    let site = Site::of(&config);
    let entry = pickup::CodeEntry {
        code: "424242".into(),
        order_id: Some("P1".into()),
        phone_tail: None,
    };
    assert!(
        pickup::check(&store, &site, "desk-1", &entry, Timestamp(T0))
            .await
            .unwrap()
            .is_found()
    );
    let run = |store: Store, at: i64| {
        let site = site.clone();
        async move {
            store
                .write(move |c| {
                    let command = StationCommand {
                        id: "tap-1".into(),
                        staff: "li.na".into(),
                        action: StationAction::PickupHandover {
                            order_id: "P1".into(),
                            trace_codes: vec![],
                            refusals: vec![],
                            weighings: vec![],
                            partial: vec![],
                        },
                    };
                    let now = Timestamp(T0 + at);
                    run_app_command_in(
                        c,
                        Some(&site),
                        "desk-1",
                        &command,
                        "body-hash-1",
                        blank_reply("desk-1", now),
                        now,
                    )
                })
                .await
        }
    };
    let first = run(store.clone(), 1_000).await.unwrap();
    assert!(first.ok, "{first:?}");
    let unpublished = |store: Store| async move {
        store
            .read(|c| hub::store::station::pending(c, Timestamp(0), 10))
            .await
    };
    assert_eq!(unpublished(store.clone()).await.unwrap(), vec![]);
    store.close();

    let store = open(&config);
    let again = run(store.clone(), 2_000).await.unwrap();
    assert_eq!(again, first, "a retry is answered from the stored reply");
    assert_eq!(unpublished(store.clone()).await.unwrap(), vec![]);
    let handovers: i64 = committed(&config, "SELECT COUNT(*) FROM handover");
    let issued: i64 = committed(&config, "SELECT COUNT(*) FROM movement WHERE delta < 0");
    assert_eq!((handovers, issued), (1, 1));
    store.close();
}

//! One behaviour suite for both of central's stores: the same test bodies run against the
//! SQLite store (a real file) and the PostgreSQL store (a private cluster started once for this
//! binary, a database per case). Plus what only a shared database has: several consumers
//! writing the same sites at once, and a PostgreSQL restart under a store.

use central::pg_cluster::PgCluster;
use central::store::{Arrival, EventStore, MAX_EVENT_BYTES};
use central::{CentralDb, PgStore};
use hub_contract::{self as contract, LEGACY_STREAM};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A message as the consumer would pass it on.
struct Msg {
    topic: String,
    payload: Vec<u8>,
}

fn store<S: EventStore>(db: &mut S, batch: &[Msg]) -> central::store::BatchCounts {
    let arrivals: Vec<Arrival<'_>> = batch
        .iter()
        .map(|m| Arrival {
            topic: &m.topic,
            payload: &m.payload,
        })
        .collect();
    db.store_batch(&arrivals, 1_000).expect("batch stored")
}

fn event_at(site: &str, stream: Option<&str>, seq: i64, id: &str) -> Msg {
    let mut e = json!({"v": 1, "site": site, "seq": seq, "id": id,
        "kind": "sync_alert", "at_ms": 1_700_000_000_000i64 + seq, "lane": "live",
        "event": {"kind": "sync_alert", "code": "t", "message": id, "seq": null}});
    if let Some(stream) = stream {
        e["stream"] = json!(stream);
    }
    Msg {
        topic: contract::events_topic(site),
        payload: serde_json::to_vec(&e).unwrap(),
    }
}

fn event(stream: Option<&str>, seq: i64, id: &str) -> Msg {
    event_at("s1", stream, seq, id)
}

fn status(stream: &str, continues: Option<&str>, base: i64, last: i64) -> Msg {
    Msg {
        topic: contract::status_topic("s1"),
        payload: serde_json::to_vec(&json!({"v": 1, "site": "s1", "state": "online",
            "hub_version": "t", "last_seq": last, "first_undelivered_seq": null, "at_ms": 1,
            "stream": stream, "stream_continues": continues, "stream_base_seq": base}))
        .unwrap(),
    }
}

fn site<S: EventStore>(db: &S) -> central::SiteReport {
    db.report()
        .unwrap()
        .sites
        .into_iter()
        .find(|s| s.site == "s1")
        .expect("site s1 reported")
}

fn duplicates_are_dropped_and_conflicts_kept<S: EventStore>(mut db: S) {
    store(
        &mut db,
        &[event(Some("A"), 1, "id-1"), event(Some("A"), 2, "id-2")],
    );
    let counts = store(
        &mut db,
        &[event(Some("A"), 2, "id-2"), event(Some("A"), 2, "id-X")],
    );
    assert_eq!((counts.duplicates, counts.conflicts), (1, 1));
    // Delivered again, the conflicting event is not counted twice.
    store(&mut db, &[event(Some("A"), 2, "id-X")]);
    let r = site(&db);
    assert_eq!(r.duplicates_dropped, 2, "{r:?}");
    assert_eq!((r.events, r.conflicts, r.contiguous_seq), (2, 1, 2));
    assert!(r.gaps.is_empty());
    assert_eq!(r.conflicting_events.len(), 1);
    assert_eq!(
        (
            r.conflicting_events[0].stored_id.as_str(),
            r.conflicting_events[0].id.as_str()
        ),
        ("id-2", "id-X")
    );
    let ids: Vec<String> = db.events("s1").unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(ids, ["id-1", "id-2"]);
    // Arrival order counts stored events only.
    let arrivals: Vec<i64> = db
        .events("s1")
        .unwrap()
        .into_iter()
        .map(|e| e.arrival)
        .collect();
    assert_eq!(arrivals, [1, 2]);
}

fn gaps_close_when_the_missing_events_arrive<S: EventStore>(mut db: S) {
    store(
        &mut db,
        &[
            event(Some("A"), 1, "a1"),
            event(Some("A"), 4, "a4"),
            event(Some("A"), 2, "a2"),
            event(Some("A"), 6, "a6"),
        ],
    );
    let r = site(&db);
    assert_eq!((r.contiguous_seq, r.max_seq), (2, 6));
    assert_eq!(r.gaps, [(3, 3), (5, 5)]);
    let state = db.sync_state().unwrap();
    let s1 = state.iter().find(|s| s.site == "s1").unwrap();
    assert_eq!((s1.contiguous_seq, s1.next_held), (2, Some(4)));
    store(&mut db, &[event(Some("A"), 5, "a5")]);
    assert_eq!(site(&db).gaps, [(3, 3)]);
    store(&mut db, &[event(Some("A"), 3, "a3")]);
    let r = site(&db);
    assert_eq!((r.contiguous_seq, r.events), (6, 6));
    assert!(r.gaps.is_empty());
}

fn streams_are_kept_apart_and_a_rewound_one_continues_its_base<S: EventStore>(mut db: S) {
    let a: Vec<_> = (1..=5)
        .map(|n| event(Some("A"), n, &format!("a{n}")))
        .collect();
    store(&mut db, &a);
    store(&mut db, &[status("A", None, 0, 5)]);
    let b: Vec<_> = (4..=6)
        .map(|n| event(Some("B"), n, &format!("b{n}")))
        .collect();
    store(&mut db, &b);
    let r = site(&db);
    let b_report = r.streams.iter().find(|t| t.stream == "B").unwrap();
    assert_eq!(b_report.gaps, [(1, 3)]);
    store(&mut db, &[status("B", Some("A"), 3, 6)]);
    let r = site(&db);
    assert_eq!(r.stream.as_deref(), Some("B"));
    assert_eq!((r.events, r.duplicates_dropped, r.conflicts), (8, 0, 0));
    assert_eq!((r.contiguous_seq, r.max_seq), (6, 6));
    assert!(r.gaps.is_empty(), "{:?}", r.gaps);
    let streams: Vec<(&str, bool, Option<i64>)> = r
        .streams
        .iter()
        .map(|t| (t.stream.as_str(), t.current, t.rewound_past))
        .collect();
    assert_eq!(streams, [("B", true, Some(5)), ("A", false, None)]);
    let state = db.sync_state().unwrap();
    let s1 = state.iter().find(|s| s.site == "s1").unwrap();
    assert_eq!((s1.stream.as_str(), s1.contiguous_seq), ("B", 6));
}

fn messages_without_a_stream_are_the_legacy_stream<S: EventStore>(mut db: S) {
    store(&mut db, &[event(None, 1, "l1"), event(None, 2, "l2")]);
    let r = site(&db);
    assert_eq!(r.stream.as_deref(), Some(LEGACY_STREAM));
    assert_eq!((r.events, r.contiguous_seq), (2, 2));
}

fn bad_input_is_quarantined_with_its_reason_and_the_stream_continues<S: EventStore>(mut db: S) {
    let raw = |topic: String, payload: Vec<u8>| Msg { topic, payload };
    let mut wrong_site = event(Some("A"), 2, "x");
    wrong_site.topic = contract::events_topic("s2");
    let mut v9: serde_json::Value =
        serde_json::from_slice(&event(Some("A"), 2, "v9").payload).unwrap();
    v9["v"] = json!(9);
    let mut huge: serde_json::Value =
        serde_json::from_slice(&event(Some("A"), 2, "big").payload).unwrap();
    huge["event"]["message"] = json!("x".repeat(MAX_EVENT_BYTES));
    let counts = store(
        &mut db,
        &[
            event(Some("A"), 1, "a1"),
            wrong_site,
            raw(
                contract::events_topic("s1"),
                serde_json::to_vec(&v9).unwrap(),
            ),
            event(Some("A"), 0, "zero"),
            event(Some("A"), (1 << 53) + 1, "far"),
            raw(
                contract::events_topic("s1"),
                serde_json::to_vec(&huge).unwrap(),
            ),
            raw(contract::events_topic("s1"), b"{not json".to_vec()),
            raw(contract::events_topic("s1"), vec![0xff, 0xfe, b'{']),
            raw("hub/v1/s1/up/unknown".into(), b"{}".to_vec()),
            event(Some("A"), 2, "a2"),
        ],
    );
    assert_eq!((counts.stored, counts.unreadable), (2, 8));
    let reasons: Vec<String> = db
        .quarantined()
        .unwrap()
        .into_iter()
        .map(|q| q.reason)
        .collect();
    assert_eq!(
        reasons,
        [
            "site_mismatch",
            "unknown_version",
            "seq_out_of_range",
            "seq_out_of_range",
            "too_large",
            "not_an_envelope",
            "not_utf8",
            "unknown_topic"
        ]
    );
    let q = db.quarantined().unwrap();
    assert_eq!(q[0].topic, contract::events_topic("s2"));
    assert!(q[5].excerpt.starts_with("{not json"), "{:?}", q[5]);
    // The site's stream went on past the bad messages.
    let r = site(&db);
    assert_eq!((r.events, r.contiguous_seq), (2, 2));
}

fn site_msg(site: &str, topic: fn(&str) -> String, body: serde_json::Value) -> Msg {
    Msg {
        topic: topic(site),
        payload: serde_json::to_vec(&body).unwrap(),
    }
}

fn the_fleet_view_shows_every_site_worst_first<S: EventStore>(mut db: S) {
    let status = |site: &str, state: &str| {
        site_msg(
            site,
            contract::status_topic,
            json!({"v": 1, "site": site, "state": state,
            "hub_version": "1.4.0", "last_seq": 3, "first_undelivered_seq": null, "at_ms": 1,
            "stream": "A", "stream_continues": null, "stream_base_seq": 0}),
        )
    };
    let beat = |site: &str, red: i64| {
        site_msg(
            site,
            contract::heartbeat_topic,
            json!({"v": 1, "site": site, "at_ms": 1,
            "outbox_depth": 4, "oldest_undelivered_age_s": 30.0, "last_seq": 3,
            "first_undelivered_seq": null, "confirmed_seq": 0, "in_flight": 0,
            "red_alerts_open": red, "devices_offline": 1, "stream": "A"}),
        )
    };
    // ok: all held; gap: #2 missing; down: offline (its Last Will); old: a hub from before
    // the fleet view (no alert figures).
    let mut batch = vec![status("ok", "online"), beat("ok", 0)];
    batch.extend((1..=3).map(|n| event_at("ok", Some("A"), n, &format!("ok{n}"))));
    batch.extend([status("gap", "online"), beat("gap", 2)]);
    batch.extend([1, 3].map(|n| event_at("gap", Some("A"), n, &format!("gap{n}"))));
    batch.extend([status("down", "offline")]);
    batch.extend((1..=3).map(|n| event_at("down", Some("A"), n, &format!("down{n}"))));
    batch.push(site_msg(
        "old",
        contract::heartbeat_topic,
        json!({"v": 1, "site": "old",
        "at_ms": 1, "outbox_depth": 0, "oldest_undelivered_age_s": 0.0, "last_seq": 0,
        "first_undelivered_seq": null, "confirmed_seq": 0, "in_flight": 0}),
    ));
    batch.push(event_at("ok", Some("A"), 0, "bad"));
    store(&mut db, &batch);
    let rows = db.fleet_rows(0).unwrap();
    let view = central::fleet::FleetView::from_rows(rows, 61_000);
    let order: Vec<&str> = view.fleet.iter().map(|s| s.site.as_str()).collect();
    assert_eq!(order, ["down", "old", "gap", "ok"]);
    assert_eq!(
        (
            view.sites,
            view.sites_offline,
            view.gaps_open,
            view.events_today
        ),
        (4, 2, 1, 8)
    );
    let gap = &view.fleet[2];
    assert_eq!((gap.contiguous_seq, gap.missing), (1, 2));
    assert_eq!(gap.gap_open_s, Some(60.0));
    assert_eq!(
        (gap.red_alerts_open, gap.devices_offline),
        (Some(2), Some(1))
    );
    assert_eq!(gap.hub_version.as_deref(), Some("1.4.0"));
    assert_eq!(gap.outbox_depth, Some(4));
    assert_eq!(view.fleet[1].red_alerts_open, None);
    let ok = &view.fleet[3];
    assert_eq!(
        (ok.quarantined, ok.gap_open_s, ok.heartbeat_age_s),
        (1, None, Some(60.0))
    );
    // The missing event arrives: the gap closes.
    store(&mut db, &[event_at("gap", Some("A"), 2, "gap2")]);
    let view = central::fleet::FleetView::from_rows(db.fleet_rows(0).unwrap(), 61_000);
    assert_eq!(view.gaps_open, 0);
    // A status older (by the hub's clock) than the one held, committed later by another
    // consumer, does not overwrite it.
    store(
        &mut db,
        &[site_msg(
            "ok",
            contract::status_topic,
            json!({"v": 1, "site": "ok", "state": "offline",
            "hub_version": "1.3.0", "last_seq": 3, "first_undelivered_seq": null, "at_ms": 0,
            "stream": "A", "stream_continues": null, "stream_base_seq": 0}),
        )],
    );
    let view = central::fleet::FleetView::from_rows(db.fleet_rows(0).unwrap(), 61_000);
    assert_eq!(view.sites_offline, 2);
    // Another day counts its own events.
    let later = central::fleet::FleetView::from_rows(db.fleet_rows(1).unwrap(), 86_400_000);
    assert_eq!((later.events_today, later.events_total), (0, 9));
}

/// Runs every case against stores made by `make` (one fresh store per case).
fn suite<S: EventStore>(mut make: impl FnMut(&str) -> S) {
    duplicates_are_dropped_and_conflicts_kept(make("dup"));
    gaps_close_when_the_missing_events_arrive(make("gaps"));
    streams_are_kept_apart_and_a_rewound_one_continues_its_base(make("streams"));
    messages_without_a_stream_are_the_legacy_stream(make("legacy"));
    bad_input_is_quarantined_with_its_reason_and_the_stream_continues(make("bad"));
    the_fleet_view_shows_every_site_worst_first(make("fleet"));
}

#[test]
fn sqlite_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    suite(|name| CentralDb::open(&dir.path().join(format!("{name}.sqlite"))).unwrap());
}

static DATABASES: AtomicUsize = AtomicUsize::new(0);

fn pg_store(cluster: &PgCluster, name: &str) -> PgStore {
    let n = DATABASES.fetch_add(1, Ordering::Relaxed);
    let url = cluster.create_database(&format!("{name}_{n}")).unwrap();
    PgStore::open(&url, 1_700_000_000_000).unwrap()
}

#[test]
fn postgres_store_keeps_the_contract_and_stores_each_event_once_under_concurrent_writers() {
    let cluster = PgCluster::start().expect("private PostgreSQL cluster starts");
    suite(|name| pg_store(&cluster, name));

    // Reports read: on a database no consumer has set up yet they say so, and create nothing.
    let empty = cluster.create_database("empty").unwrap();
    let err = PgStore::open_for_reading(&empty).err().expect("refused");
    assert!(err.to_string().contains("central run"), "{err}");
    assert!(
        PgStore::open_for_reading(&empty).is_err(),
        "the read created the schema"
    );

    // Three writers store overlapping batches of the same sites at once (as consumers sharing
    // a subscription do after redeliveries): every event is stored once, marks contiguous.
    let url = cluster.create_database("shared").unwrap();
    PgStore::open(&url, 1_700_000_000_000).unwrap();
    let sites: Vec<String> = (0..20).map(|i| format!("site-{i:02}")).collect();
    std::thread::scope(|scope| {
        for w in 0..3 {
            let (url, sites) = (&url, &sites);
            scope.spawn(move || {
                let mut db = PgStore::open(url, 1_700_000_000_000).unwrap();
                for round in 0..10 {
                    let mut batch = Vec::new();
                    // Each writer sees every seq of every site, in its own order.
                    for site in sites {
                        for k in 1..=5 {
                            let seq = round * 5 + k;
                            batch.push(event_at(site, Some("A"), seq, &format!("{site}-{seq}")));
                        }
                    }
                    if w % 2 == 1 {
                        batch.reverse();
                    }
                    let arrivals: Vec<Arrival<'_>> = batch
                        .iter()
                        .map(|m| Arrival {
                            topic: &m.topic,
                            payload: &m.payload,
                        })
                        .collect();
                    db.store_batch(&arrivals, 1_000).expect("batch stored");
                }
            });
        }
    });
    let db = PgStore::open(&url, 1_700_000_000_000).unwrap();
    let report = db.report().unwrap();
    assert_eq!(report.sites.len(), 20);
    for s in &report.sites {
        assert_eq!(
            (
                s.events,
                s.contiguous_seq,
                s.duplicates_dropped,
                s.conflicts
            ),
            (50, 50, 100, 0),
            "{s:?}"
        );
        let seqs: Vec<i64> = db.events(&s.site).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
    }

    // A restart of PostgreSQL fails the batch in flight (nothing half-stored) and the store
    // connects again for the next one.
    let mut db = PgStore::open(&url, 1_700_000_000_000).unwrap();
    cluster.restart().unwrap();
    let retry = [event_at("site-00", Some("A"), 51, "site-00-51")];
    let arrivals: Vec<Arrival<'_>> = retry
        .iter()
        .map(|m| Arrival {
            topic: &m.topic,
            payload: &m.payload,
        })
        .collect();
    if db.store_batch(&arrivals, 1_000).is_err() {
        db.store_batch(&arrivals, 1_000)
            .expect("stored after reconnecting");
    }
    let r = db.report().unwrap();
    assert_eq!(r.sites[0].contiguous_seq, 51);
}

/// One writer's batch as the consumer passes it on.
fn store_msgs(db: &mut PgStore, batch: &[Msg]) {
    let arrivals: Vec<Arrival<'_>> = batch
        .iter()
        .map(|m| Arrival {
            topic: &m.topic,
            payload: &m.payload,
        })
        .collect();
    db.store_batch(&arrivals, 1_000).expect("batch stored");
}

#[test]
fn two_consumers_committing_overlapping_batches_with_a_conflict_at_once_store_each_event_once() {
    let cluster = PgCluster::start().expect("private PostgreSQL cluster starts");
    let url = cluster.create_database("conflict_race").unwrap();
    PgStore::open(&url, 1_700_000_000_000).unwrap();
    let sites: Vec<String> = (0..10).map(|i| format!("site-{i:02}")).collect();
    // Round r: the first consumer has seqs r*10+1..=r*10+7 of every site, the second
    // r*10+4..=r*10+10 (four in common, three of its own each, in reverse order); the second's
    // copy of site-03 #25 carries another event id.
    let batch = |writer: usize, round: i64| -> Vec<Msg> {
        let seqs = if writer == 0 { 1..=7 } else { 4..=10 };
        let mut batch = Vec::new();
        for site in &sites {
            for k in seqs.clone() {
                let seq = round * 10 + k;
                let id = if writer == 1 && site == "site-03" && seq == 25 {
                    "site-03-25-other".to_owned()
                } else {
                    format!("{site}-{seq}")
                };
                batch.push(event_at(site, Some("A"), seq, &id));
            }
        }
        if writer == 1 {
            batch.reverse();
        }
        batch
    };
    let together = std::sync::Barrier::new(2);
    std::thread::scope(|scope| {
        for writer in 0..2 {
            let (url, together, batch) = (&url, &together, &batch);
            scope.spawn(move || {
                // Each consumer its own connection; every round both commit at once.
                let mut db = PgStore::open(url, 1_700_000_000_000).unwrap();
                for round in 0..5 {
                    let mine = batch(writer, round);
                    together.wait();
                    store_msgs(&mut db, &mine);
                }
                // Both acks of round 2 were lost: the broker redelivers both batches at once.
                let again = batch(writer, 2);
                together.wait();
                store_msgs(&mut db, &again);
            });
        }
    });

    let db = PgStore::open(&url, 1_700_000_000_000).unwrap();
    let report = db.report().unwrap();
    assert_eq!(report.sites.len(), 10);
    for s in &report.sites {
        // Per site: 50 events; 4 common seqs × 5 rounds plus the 14 redelivered are
        // duplicates, except site-03 #25, which is the one conflict.
        let expected_conflicts = i64::from(s.site == "site-03");
        assert_eq!(
            (
                s.events,
                s.contiguous_seq,
                s.max_seq,
                s.duplicates_dropped,
                s.conflicts
            ),
            (50, 50, 50, 34 - expected_conflicts, expected_conflicts),
            "{s:?}"
        );
        assert!(s.gaps.is_empty(), "{s:?}");
        let events = db.events(&s.site).unwrap();
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=50).collect::<Vec<_>>(), "{}", s.site);
        if s.site == "site-03" {
            // Recorded once, whichever consumer committed first: the other id is the conflict.
            assert_eq!(s.conflicting_events.len(), 1, "{:?}", s.conflicting_events);
            let c = &s.conflicting_events[0];
            let stored = &events[24];
            assert_eq!((c.stream.as_str(), c.seq), ("A", 25));
            assert_eq!(c.stored_id, stored.id);
            let mut ids = [c.stored_id.as_str(), c.id.as_str()];
            ids.sort();
            assert_eq!(ids, ["site-03-25", "site-03-25-other"]);
        } else {
            assert!(
                s.conflicting_events.is_empty(),
                "{:?}",
                s.conflicting_events
            );
        }
    }
}

#[test]
fn a_stream_whose_highest_number_lags_its_events_still_stores_each_event_once() {
    // New rows are written by COPY, without a conflict check per row, when the site lock and
    // the stream's highest number say none is held. Should that number lag what is stored
    // (a hand edit, a restore), the batch is written again with the check instead of failing
    // on every redelivery.
    let cluster = PgCluster::start().expect("private PostgreSQL cluster starts");
    let url = cluster.create_database("lagging_max").unwrap();
    let mut db = PgStore::open(&url, 1_700_000_000_000).unwrap();
    store_msgs(
        &mut db,
        &[
            event(Some("A"), 1, "a1"),
            event(Some("A"), 2, "a2"),
            event(Some("A"), 3, "a3"),
        ],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .execute("UPDATE stream SET max_seq = 1 WHERE site = 's1'", &[])
            .await
            .unwrap();
    });
    store_msgs(
        &mut db,
        &[event(Some("A"), 3, "a3"), event(Some("A"), 4, "a4")],
    );
    let seqs: Vec<i64> = db.events("s1").unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    let r = site(&db);
    assert_eq!((r.contiguous_seq, r.max_seq), (4, 4));
}

//! Upstream sync against a real Mosquitto started by each test on a free loopback port
//! (Debian package `mosquitto`). Every promise is checked in the reference central consumer's
//! database: each event exactly once, in sequence, no gaps.

mod support;

use central::{CentralHandle, CentralOptions, SiteReport, report};
use hub::commands;
use hub::store::{Store, StoreError, StoreOptions, alert_book, outbox, pickup_orders, sku};
use hub::sync::uplink::{self, UplinkSettings};
use hub::workflows::pickup::CodeEntry;
use hub_contract as contract;
use hub_core::alerts::{Measure, StockAction, Tier, TierPolicy};
use hub_core::pickup::OrderStatus;
use hub_core::{DomainEvent, SiteId, SkuCode, Timestamp};
use hub_mqtt::BrokerAddress;
use hub_mqtt::brokers::{Mosquitto, MosquittoOptions, MosquittoTls};
use hub_mqtt::{Connection, MqttError, connect_once};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn plain(port: u16, id: &str) -> Connection {
    let mut c = Connection::plain(
        BrokerAddress {
            host: "127.0.0.1".into(),
            port,
            tls: false,
        },
        id,
    );
    c.connect_timeout = Duration::from_secs(3);
    c
}

fn settings(connection: Connection, in_flight: usize) -> UplinkSettings {
    let mut s = UplinkSettings::from_defaults(connection);
    s.tuning.in_flight = in_flight;
    s.tuning.heartbeat = Duration::from_millis(300);
    s.tuning.reconnect_min = Duration::from_millis(50);
    s.tuning.reconnect_max = Duration::from_millis(500);
    s
}

async fn start_central(dir: &Path, port: u16) -> CentralHandle {
    let central = CentralHandle::start(CentralOptions::new(
        plain(port, "central"),
        dir.join("central.sqlite"),
    ))
    .expect("central opens its database");
    central
        .wait_ready(&plain(port, "probe"), Duration::from_secs(30))
        .await
        .expect("central subscribes");
    central
}

fn alert(n: usize) -> DomainEvent {
    DomainEvent::SyncAlert {
        code: "test".into(),
        message: format!("event {n}"),
        seq: None,
    }
}

fn open_store(path: &Path, site: &str) -> Store {
    Store::open(path, site, &StoreOptions::default()).expect("store opens")
}

fn prefill(store: &Store, n: usize) {
    tokio::task::block_in_place(|| prefill_blocking(store, n));
}

fn prefill_blocking(store: &Store, n: usize) {
    store
        .write_blocking(move |c| {
            for i in 0..n {
                outbox::append(c, &alert(i), hub::clock::now())?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
}

fn site_report(db: &Path, site: &str) -> Option<SiteReport> {
    report(db).ok()?.sites.into_iter().find(|s| s.site == site)
}

/// Polls central until `done` holds for the site. Fails when central stored nothing new for
/// the site for `stalled` (a drain that stopped), not after a fixed time: on a loaded machine
/// a drain is slower, never stuck.
async fn wait_central(
    db: &Path,
    site: &str,
    stalled: Duration,
    what: &str,
    done: impl Fn(&SiteReport) -> bool,
) -> SiteReport {
    let mut last_progress = Instant::now();
    let mut seen: Option<(i64, i64)> = None;
    loop {
        let report = site_report(db, site);
        if let Some(r) = report.clone().filter(|r| done(r)) {
            return r;
        }
        let now_seen = report.as_ref().map(|r| (r.events, r.duplicates_dropped));
        if now_seen != seen {
            seen = now_seen;
            last_progress = Instant::now();
        }
        assert!(
            last_progress.elapsed() < stalled,
            "waiting for {what}: central stored nothing new for {stalled:?}; it has {report:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Every event 1..=n exactly once, nothing else, no gaps.
fn assert_exactly_once_in_sequence(db: &Path, site: &str, n: i64) {
    let events = central::CentralDb::open(db).unwrap().events(site).unwrap();
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs.len() as i64,
        n,
        "central holds {} events, expected {n}",
        seqs.len()
    );
    assert!(
        seqs.iter().copied().eq(1..=n),
        "central's events are not exactly 1..={n}"
    );
    let r = site_report(db, site).unwrap();
    assert_eq!(r.contiguous_seq, n);
    assert!(r.gaps.is_empty(), "gaps: {:?}", r.gaps);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_killed_and_restarted_during_a_drain_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker =
        Mosquitto::start(&dir.path().join("broker"), &MosquittoOptions::default()).unwrap();
    let port = broker.port();
    let central = start_central(dir.path(), port).await;
    let central_db = dir.path().join("central.sqlite");
    let store = open_store(&dir.path().join("hub.sqlite"), "site-k");
    const N: i64 = 20_000;
    prefill(&store, N as usize);

    let shutdown = CancellationToken::new();
    let site = SiteId::new("site-k").unwrap();
    let task = tokio::spawn(uplink::run(
        site,
        settings(plain(port, "hub-site-k"), 50),
        store.clone(),
        shutdown.clone(),
    ));
    for threshold in [1_000, 6_000, 12_000] {
        wait_central(
            &central_db,
            "site-k",
            Duration::from_secs(60),
            "progress",
            |r| r.events >= threshold,
        )
        .await;
        tokio::task::block_in_place(|| {
            broker.kill();
            broker.restart().unwrap();
        });
    }
    wait_central(
        &central_db,
        "site-k",
        Duration::from_secs(30),
        "full drain",
        |r| r.contiguous_seq >= N,
    )
    .await;
    // Central may hold the last events a moment before their PUBACKs are marked in the outbox.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = store.read(outbox::stats).await.unwrap();
        if stats.undelivered == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the hub does not know every event was delivered: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    shutdown.cancel();
    task.await.unwrap();
    central.stop().await.unwrap();
    assert_exactly_once_in_sequence(&central_db, "site-k", N);
}

fn write_hub_config(dir: &Path, site: &str, port: u16, in_flight: usize) -> PathBuf {
    let path = dir.join("hub.toml");
    std::fs::write(
        &path,
        format!(
            // (the machine's own free space is not what these tests are about: no disk alert)
            "[site]\nid = \"{site}\"\n[store]\ndata_dir = \"{}\"\nmin_free_percent = 0\nmin_free_mb = 0\n[log]\nlevel = \"warn\"\n\
             [uplink]\nbroker = \"mqtt://127.0.0.1:{port}\"\nin_flight = {in_flight}\n\
             heartbeat_seconds = 0.3\nreconnect_min_seconds = 0.05\nreconnect_max_seconds = 0.3\n\
             connect_timeout_seconds = 3\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_killed_at_random_moments_during_a_drain_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let broker =
        Mosquitto::start(&dir.path().join("broker"), &MosquittoOptions::default()).unwrap();
    let port = broker.port();
    let central = start_central(dir.path(), port).await;
    let central_db = dir.path().join("central.sqlite");
    let config = write_hub_config(dir.path(), "site-c", port, 5);
    // Large enough that twenty short runs do not drain it even on an idle machine.
    const N: i64 = 60_000;
    {
        let store = open_store(&dir.path().join("data/hub-site-c.sqlite"), "site-c");
        tokio::task::block_in_place(|| {
            prefill_blocking(&store, N as usize);
            store.close();
        });
    }
    /// SIGKILLs and reaps the hub when dropped, so a failed wait leaves no hub running.
    struct KilledOnDrop(std::process::Child);
    impl KilledOnDrop {
        fn kill(&mut self) {
            self.0.kill().unwrap(); // SIGKILL
            self.0.wait().unwrap();
        }
    }
    impl Drop for KilledOnDrop {
        fn drop(&mut self) {
            if matches!(self.0.try_wait(), Ok(None)) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }
    let spawn = || {
        KilledOnDrop(
            std::process::Command::new(env!("CARGO_BIN_EXE_hub"))
                .args(["run", "--config"])
                .arg(&config)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("hub starts"),
        )
    };
    // Kill the hub 20 times mid-drain: each run is killed at a random moment after central
    // has seen it make progress, so no kill is wasted on a hub that had not connected yet
    // (a loaded machine) and an idle machine cannot finish the backlog before the kills end.
    let mut kills_mid_drain = 0;
    for _ in 0..20 {
        let before = site_report(&central_db, "site-c").map_or(0, |r| r.events);
        let mut child = spawn();
        let deadline = Instant::now() + Duration::from_secs(30);
        while site_report(&central_db, "site-c").map_or(0, |r| r.events) == before
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(rand::random_range(0..80))).await;
        child.kill();
        let seen = site_report(&central_db, "site-c").map_or(0, |r| r.events);
        assert!(
            seen > before,
            "the hub made no progress in 30 s after a restart"
        );
        if seen >= N {
            break;
        }
        kills_mid_drain += 1;
    }
    assert!(
        kills_mid_drain >= 10,
        "the drain finished after {kills_mid_drain} kills; the test proves too little"
    );
    let mut child = spawn();
    wait_central(
        &central_db,
        "site-c",
        Duration::from_secs(30),
        "full drain",
        |r| r.contiguous_seq >= N,
    )
    .await;
    child.kill();
    central.stop().await.unwrap();
    assert_exactly_once_in_sequence(&central_db, "site-c", N);
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_events_arrive_while_a_long_backlog_drains() {
    let dir = tempfile::tempdir().unwrap();
    let broker =
        Mosquitto::start(&dir.path().join("broker"), &MosquittoOptions::default()).unwrap();
    let port = broker.port();
    let central = start_central(dir.path(), port).await;
    let central_db = dir.path().join("central.sqlite");
    let store = open_store(&dir.path().join("hub.sqlite"), "site-l");
    const BACKLOG: i64 = 30_000;
    const LIVE: i64 = 10;
    prefill(&store, BACKLOG as usize);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(uplink::run(
        SiteId::new("site-l").unwrap(),
        settings(plain(port, "hub-site-l"), 10),
        store.clone(),
        shutdown.clone(),
    ));
    wait_central(
        &central_db,
        "site-l",
        Duration::from_secs(30),
        "uplink up",
        |r| r.events > 0,
    )
    .await;
    for i in 0..LIVE {
        store
            .write(move |c| outbox::append(c, &alert(1_000_000 + i as usize), hub::clock::now()))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_central(
        &central_db,
        "site-l",
        Duration::from_secs(30),
        "full drain",
        |r| r.contiguous_seq >= BACKLOG + LIVE,
    )
    .await;
    shutdown.cancel();
    task.await.unwrap();
    central.stop().await.unwrap();
    assert_exactly_once_in_sequence(&central_db, "site-l", BACKLOG + LIVE);
    let events = central::CentralDb::open(&central_db)
        .unwrap()
        .events("site-l")
        .unwrap();
    let last_backlog_arrival = events[..BACKLOG as usize]
        .iter()
        .map(|e| e.arrival)
        .max()
        .unwrap();
    for live in &events[BACKLOG as usize..] {
        assert_eq!(
            live.lane, "live",
            "event #{} went on the wrong lane",
            live.seq
        );
        assert!(
            live.arrival < last_backlog_arrival,
            "live event #{} arrived after the whole backlog (arrival {} vs {last_backlog_arrival})",
            live.seq,
            live.arrival
        );
    }
    drop(broker);
}

fn command(
    id: &str,
    site: &str,
    kind: &str,
    key: &str,
    version: i64,
    body: serde_json::Value,
) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "v": 1, "id": id, "site": site, "kind": kind, "key": key, "version": version, "body": body
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downlink_commands_sent_while_offline_apply_once_and_bad_ones_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let broker =
        Mosquitto::start(&dir.path().join("broker"), &MosquittoOptions::default()).unwrap();
    let port = broker.port();
    let central = start_central(dir.path(), port).await;
    let central_db = dir.path().join("central.sqlite");
    let store = open_store(&dir.path().join("hub.sqlite"), "site-d");
    let site = SiteId::new("site-d").unwrap();

    // First connection creates the hub's persistent session (its subscriptions).
    let run_uplink = |shutdown: CancellationToken| {
        tokio::spawn(uplink::run(
            site.clone(),
            settings(plain(port, "hub-site-d"), 20),
            store.clone(),
            shutdown,
        ))
    };
    let shutdown = CancellationToken::new();
    let task = run_uplink(shutdown.clone());
    wait_central(
        &central_db,
        "site-d",
        Duration::from_secs(30),
        "hub online",
        |r| r.hub_state.as_deref() == Some("online"),
    )
    .await;
    shutdown.cancel();
    task.await.unwrap();
    wait_central(
        &central_db,
        "site-d",
        Duration::from_secs(10),
        "hub offline",
        |r| r.hub_state.as_deref() == Some("offline"),
    )
    .await;

    // A replenishment request is open for EGGS (no stock, absolute thresholds).
    let eggs = SkuCode::new("EGGS-10").unwrap();
    let policy = TierPolicy {
        measure: Measure::Absolute,
        yellow: 20.0,
        orange: 10.0,
        red: 5.0,
        hysteresis: 0.1,
        replenish_at: Tier::Orange,
        target: 40.0,
        re_request_after_ms: 60_000,
    };
    let t0 = hub::clock::now();
    let (p, e) = (policy.clone(), eggs.clone());
    let actions = store
        .write(move |c| alert_book::evaluate_sku(c, &e, &rules(&p), t0))
        .await
        .unwrap();
    let episode = actions
        .iter()
        .find_map(|a| match a {
            StockAction::RequestReplenishment { episode_id, .. } => Some(episode_id.clone()),
            _ => None,
        })
        .expect("a replenishment request");

    // While the hub is offline, central sends good, duplicate and bad commands.
    let topic = contract::commands_topic("site-d");
    let sku = |v: i64| serde_json::json!({"code": "MILK-1L", "name": "Milk 1 L", "unit": "piece", "version": v});
    let order = |status: &str| {
        serde_json::json!({"code_salt": "5a17", "code_hash": "0f".repeat(32),
            "items": [{"sku": "MILK-1L", "quantity": 2}],
            "opens_at_ms": 1_764_000_000_000_i64, "closes_at_ms": 1_764_086_400_000_i64,
            "status": status})
    };
    let mut not_utf8 = command("c-utf8", "site-d", "sku_upsert", "MILK-1L", 5, sku(5));
    let at = not_utf8.len() - 10;
    not_utf8[at] = 0xff;
    let mut renamed = sku(2);
    renamed["name"] = serde_json::json!("Milk 1 L, renamed");
    let messages: Vec<Vec<u8>> = vec![
        command("c-sku-2", "site-d", "sku_upsert", "MILK-1L", 2, sku(2)),
        command("c-sku-2", "site-d", "sku_upsert", "MILK-1L", 2, sku(2)),
        command("c-sku-2", "site-d", "sku_upsert", "MILK-1L", 2, renamed),
        not_utf8,
        command("c-max", "site-d", "pickup_order", "P-MAX", i64::MAX, order("open")),
        command("c-order", "site-d", "pickup_order", "P-100", 3, order("open")),
        command("c-order", "site-d", "pickup_order", "P-100", 3, order("open")),
        command("c-order-hold", "site-d", "pickup_order", "P-100", 4, order("on_hold")),
        command("c-manifest", "site-d", "delivery_manifest", "D-7", 1, serde_json::json!({
            "supplier": "Dairy Co", "lines": [{"line_no": 1, "sku": "MILK-1L", "lot": "L7",
                "expiry": "2030-01-31", "expected_count": 24}]})),
        command("c-ack", "site-d", "replenishment_ack", &episode, 1,
            serde_json::json!({"sku": "EGGS-10", "accepted": true, "eta_ms": 1_764_050_000_000_i64})),
        command("c-stale", "site-d", "sku_upsert", "MILK-1L", 1, sku(1)),
        command("c-site", "site-x", "sku_upsert", "MILK-1L", 3, sku(3)),
        command("c-kind", "site-d", "launch_rocket", "k", 1, serde_json::json!({})),
        b"{this is not json".to_vec(),
        command("c-big", "site-d", "pickup_order", "P-BIG", 1, serde_json::json!({"pad": "x".repeat(300_000)})),
        serde_json::to_vec(&serde_json::json!({"v": 7, "id": "c-v7", "site": "site-d", "kind": "pickup_order", "key": "k", "version": 1, "body": {}})).unwrap(),
    ];
    let sender = plain(port, "central-sender");
    for m in messages {
        hub_mqtt::publish_once(&sender, &topic, m).await.unwrap();
    }

    let shutdown = CancellationToken::new();
    let task = run_uplink(shutdown.clone());
    // 5 applied + 9 rejected outcomes, plus the SKU's own event.
    let db = central_db.clone();
    let outcomes = move || {
        central::CentralDb::open(&db)
            .unwrap()
            .events("site-d")
            .unwrap()
            .into_iter()
            .filter(|e| e.kind.starts_with("command_"))
            .collect::<Vec<_>>()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while outcomes().len() < 14 {
        assert!(
            Instant::now() < deadline,
            "outcomes so far: {:?}; hub handled {:?}",
            outcomes(),
            store.read_blocking(hub::store::applied_commands::outcome_counts)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Give a duplicate application a chance to show up before judging.
    let last = store.read_blocking(outbox::stats).unwrap().last_seq;
    wait_central(
        &central_db,
        "site-d",
        Duration::from_secs(10),
        "all events",
        |r| r.contiguous_seq >= last,
    )
    .await;
    shutdown.cancel();
    task.await.unwrap();
    central.stop().await.unwrap();

    let outcomes = outcomes();
    let applied: Vec<_> = outcomes
        .iter()
        .filter(|e| e.kind == "command_applied")
        .collect();
    assert_eq!(applied.len(), 5, "{outcomes:?}");
    assert_eq!(
        applied
            .iter()
            .filter(|e| e.body.as_deref().unwrap().contains("c-sku-2"))
            .count(),
        1,
        "the duplicate command was applied once"
    );
    assert_eq!(
        applied
            .iter()
            .filter(|e| e.body.as_deref().unwrap().contains("\"c-order\""))
            .count(),
        1,
        "the duplicate order was applied once"
    );
    let mut rejected: Vec<(String, Option<String>)> = outcomes
        .iter()
        .filter(|e| e.kind == "command_rejected")
        .map(|e| {
            let body: serde_json::Value = serde_json::from_str(e.body.as_deref().unwrap()).unwrap();
            assert!(!body["reason"].as_str().unwrap().is_empty());
            (
                body["code"].as_str().unwrap().to_owned(),
                body["command_id"].as_str().map(str::to_owned),
            )
        })
        .collect();
    rejected.sort();
    let id = |s: &str| Some(s.to_owned());
    // Every rejection names its command, the oversized and the non-UTF-8 ones included; only
    // the message that is not JSON at all has no id to name.
    assert_eq!(
        rejected,
        [
            ("id_reused".into(), id("c-sku-2")),
            ("malformed".into(), None),
            ("malformed".into(), id("c-max")),
            ("malformed".into(), id("c-utf8")),
            ("oversized".into(), id("c-big")),
            ("stale_version".into(), id("c-stale")),
            ("unknown_kind".into(), id("c-kind")),
            ("unsupported_version".into(), id("c-v7")),
            ("wrong_site".into(), id("c-site")),
        ]
    );
    let stored = store
        .read_blocking(|c| sku::get(c, &SkuCode::new("MILK-1L").unwrap()))
        .unwrap()
        .unwrap();
    assert_eq!(stored.version, 2);
    // The order and the manifest are in their typed tables, each applied once.
    let order = store
        .read_blocking(|c| pickup_orders::order(c, "P-100"))
        .unwrap()
        .unwrap();
    assert_eq!((order.version, order.status), (4, OrderStatus::OnHold));
    let manifests: i64 = store
        .read_blocking(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM delivery_manifest WHERE delivery_id = 'D-7' AND version = 1",
                [],
                |r| r.get(0),
            )
            .map_err(hub::store::sql_error(c))
        })
        .unwrap();
    assert_eq!(manifests, 1);
    // The acknowledged episode asks for nothing more, however long it stays open.
    let later = Timestamp(t0.millis() + 86_400_000);
    let actions = store
        .write(move |c| alert_book::evaluate_sku(c, &eggs, &rules(&policy), later))
        .await
        .unwrap();
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, StockAction::RequestReplenishment { .. })),
        "{actions:?}"
    );
    drop(broker);
}

fn openssl(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl {args:?} failed");
}

/// A CA and, signed by it, certificates for the given names (`server` gets 127.0.0.1; the
/// others are client certificates with that CN).
fn make_pki(dir: &Path, ca: &str, names: &[&str]) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    let ca_key = format!("{ca}.key");
    let ca_pem = format!("{ca}.pem");
    let subj = format!("/CN={ca}");
    args.extend([
        "-keyout", &ca_key, "-out", &ca_pem, "-days", "2", "-subj", &subj,
    ]);
    openssl(dir, &args);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for &name in names {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let pem = format!("{name}.pem");
        let subj = format!("/CN={}", if name == "server" { "127.0.0.1" } else { name });
        let mut args = vec!["req"];
        args.extend(ec);
        args.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(dir, &args);
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
        ];
        args.extend([
            "-extfile",
            if name == "server" {
                "server.ext"
            } else {
                "client.ext"
            },
        ]);
        openssl(dir, &args);
    }
}

fn tls(port: u16, pki: &Path, ca: &str, client: &str) -> Connection {
    let mut c = plain(port, client);
    c.broker.tls = true;
    c.ca_file = Some(pki.join(format!("{ca}.pem")));
    c.client_cert_file = Some(pki.join(format!("{client}.pem")));
    c.client_key_file = Some(pki.join(format!("{client}.key")));
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates_and_the_documented_acl() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    make_pki(&pki, "ca", &["server", "site-a", "central", "probe"]);
    make_pki(&pki, "other-ca", &[]);
    let acl = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/mosquitto/acl");
    let broker = Mosquitto::start(
        &dir.path().join("broker"),
        &MosquittoOptions {
            tls: Some(MosquittoTls {
                ca_file: pki.join("ca.pem"),
                cert_file: pki.join("server.pem"),
                key_file: pki.join("server.key"),
                require_certificate: true,
            }),
            acl_file: Some(acl),
            ..MosquittoOptions::default()
        },
    )
    .unwrap();
    let port = broker.port();

    connect_once(&tls(port, &pki, "ca", "site-a"))
        .await
        .expect("TLS with a client certificate works");
    let err = connect_once(&tls(port, &pki, "other-ca", "site-a"))
        .await
        .unwrap_err();
    assert!(matches!(err, MqttError::Tls { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("ca_file") && text.contains("UnknownIssuer"),
        "{text}"
    );

    let central = CentralHandle::start(CentralOptions::new(
        tls(port, &pki, "ca", "central"),
        dir.path().join("central.sqlite"),
    ))
    .unwrap();
    central
        .wait_ready(&tls(port, &pki, "ca", "probe"), Duration::from_secs(30))
        .await
        .unwrap();
    let event = |site: &str| {
        let payload = serde_json::to_string(&alert(1)).unwrap();
        contract::encode_event(
            contract::EventRef {
                site,
                stream: "st-1",
                seq: 1,
                id: "e1",
                kind: "sync_alert",
                created_at_ms: 1,
                payload: &payload,
            },
            contract::Lane::Live,
            1 << 20,
        )
        .unwrap()
        .0
    };
    let site_a = tls(port, &pki, "ca", "site-a");
    // Denied: site-a writing site-b's uplink. Mosquitto drops the message; depending on its
    // version it either acknowledges it or closes the connection.
    let denied =
        hub_mqtt::publish_once(&site_a, &contract::events_topic("site-b"), event("site-b")).await;
    assert!(
        matches!(denied, Ok(()) | Err(MqttError::Lost { .. })),
        "{denied:?}"
    );
    hub_mqtt::publish_once(&site_a, &contract::events_topic("site-a"), event("site-a"))
        .await
        .unwrap();
    let central_db = dir.path().join("central.sqlite");
    wait_central(
        &central_db,
        "site-a",
        Duration::from_secs(20),
        "site-a's own event",
        |r| r.events == 1,
    )
    .await;
    assert!(
        site_report(&central_db, "site-b").is_none(),
        "the ACL let site-a write site-b's topic"
    );
    central.stop().await.unwrap();
    drop(broker);
}

/// A station tablet on the site broker: publishes commands, collects replies.
struct Tablet {
    client: rumqttc::AsyncClient,
    replies: tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
    poller: tokio::task::JoinHandle<()>,
}

impl Tablet {
    async fn connect(port: u16, site: &str) -> Tablet {
        Tablet::connect_as(port, site, "tablet-1", true).await
    }

    /// A tablet with its own client id; with `clean_session: false` the broker keeps the
    /// replies published while it is away.
    async fn connect_as(port: u16, site: &str, id: &str, clean_session: bool) -> Tablet {
        let mut options = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
        options
            .set_keep_alive(Duration::from_secs(5))
            .set_clean_session(clean_session);
        let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 64);
        client
            .subscribe(
                format!("hub/v1/{site}/up/station/+/reply"),
                rumqttc::QoS::AtLeastOnce,
            )
            .await
            .unwrap();
        let (tx, replies) = tokio::sync::mpsc::unbounded_channel();
        let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
        let mut subscribed_tx = Some(subscribed_tx);
        let poller = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                        if let Some(s) = subscribed_tx.take() {
                            let _ = s.send(());
                        }
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        let _ = tx.send(serde_json::from_slice(&p.payload).unwrap());
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed)
            .await
            .expect("tablet subscribes")
            .unwrap();
        Tablet {
            client,
            replies,
            poller,
        }
    }

    async fn send(&self, topic: &str, command: serde_json::Value) {
        self.client
            .publish(
                topic,
                rumqttc::QoS::AtLeastOnce,
                false,
                serde_json::to_vec(&command).unwrap(),
            )
            .await
            .unwrap();
    }

    /// Waits for the reply to command `id`.
    async fn reply(&mut self, id: &str, within: Duration) -> Option<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.replies.recv()).await {
                Ok(Some(r)) if r["id"] == id => return Some(r),
                Ok(Some(_)) => {}
                _ => return None,
            }
        }
    }

    /// Sends `command` and waits for its reply.
    async fn ask(&mut self, topic: &str, command: serde_json::Value) -> serde_json::Value {
        let id = command["id"].as_str().unwrap().to_owned();
        self.send(topic, command).await;
        self.reply(&id, Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("no reply to {id}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn station_commands_over_mqtt_check_and_hand_over_and_explain_a_wrong_code() {
    let dir = tempfile::tempdir().unwrap();
    let broker =
        Mosquitto::start(&dir.path().join("broker"), &MosquittoOptions::default()).unwrap();
    let port = broker.port();
    let config = hub::config::Config::parse(
        "[site]\nid = \"site-s\"\n[store]\ndata_dir = \"data\"\n[[stations]]\nid = \"counter-1\"\nkind = \"pickup\"\n",
        dir.path(),
    )
    .unwrap();
    let store = open_store(&dir.path().join("hub.sqlite"), "site-s");
    let site = SiteId::new("site-s").unwrap();
    let now = hub::clock::now();
    let salt = "5a17";
    let order = serde_json::json!({"code_salt": salt,
        "code_hash": hub_core::pickup::hash_code(salt, "424242").unwrap(),
        "items": [{"sku": "MILK-1L", "quantity": 2}],
        "opens_at_ms": now.millis() - 3_600_000, "closes_at_ms": now.millis() + 86_400_000});
    let (s, o) = (site.clone(), order.clone());
    store
        .write(move |c| {
            for (id, kind, key, body) in [
                ("c1", "sku_upsert", "MILK-1L",
                    serde_json::json!({"code": "MILK-1L", "name": "Milk", "unit": "piece", "version": 1})),
                ("c2", "pickup_order", "P1", o),
            ] {
                let command = wire_command("site-s", id, kind, key, body);
                commands::apply(c, &s, chrono_tz::Asia::Shanghai, Ok(command), now)?;
            }
            let m = hub_core::Movement {
                id: hub_core::MovementId::new("rcv-1").unwrap(),
                sku: SkuCode::new("MILK-1L").unwrap(),
                batch: Some(hub_core::BatchKey::new("L1", "2030-01-01".parse().ok()).unwrap()),
                kind: hub_core::MovementKind::Receipt,
                quantity: 10,
                reason: String::new(),
                reference: "delivery D1".into(),
                at: now,
            };
            support::record(c, &m)?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();

    let board = hub::status::StatusBoard::default();
    let mut s = settings(plain(port, "hub-site-s"), 20);
    s.stations = Some(std::sync::Arc::new(hub::workflows::Site::of(&config)));
    s.board = Some(board.clone());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(uplink::run(
        site.clone(),
        s,
        store.clone(),
        shutdown.clone(),
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    while board.view().uplink.state != hub::status::UplinkState::Online {
        assert!(
            Instant::now() < deadline,
            "uplink: {:?}",
            board.view().uplink
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut tablet = Tablet::connect(port, "site-s").await;
    let topic = contract::station_topic("site-s", "counter-1");
    // The hub subscribes right after it connects; a malformed probe (no state change) tells
    // when it listens, and shows that a bad command gets a clear answer.
    let probe =
        |n: usize| serde_json::json!({"id": format!("probe-{n}"), "staff": "li", "kind": "dance"});
    let mut n = 0;
    let answer = loop {
        tablet.send(&topic, probe(n)).await;
        if let Some(r) = tablet
            .reply(&format!("probe-{n}"), Duration::from_millis(500))
            .await
        {
            break r;
        }
        n += 1;
        assert!(n < 40, "the hub never answered a station command");
    };
    assert_eq!(answer["ok"], false);
    assert_eq!(answer["error"], "malformed");
    assert!(
        answer["reason"].as_str().unwrap().contains("pickup_check"),
        "{answer}"
    );
    let garbage = tablet
        .ask(
            &topic,
            serde_json::json!({"id": "g1", "kind": "pickup_check", "code": "1"}),
        )
        .await;
    assert!(
        garbage["reason"].as_str().unwrap().contains("staff"),
        "{garbage}"
    );

    let wrong = tablet
        .ask(&topic, serde_json::json!({"v": 1, "id": "s1", "staff": "li", "kind": "pickup_check", "code": "000000", "order_id": "P1"}))
        .await;
    assert_eq!(wrong["ok"], true, "{wrong}");
    assert_eq!(wrong["result"]["result"], "wrong_code", "{wrong}");
    assert!(
        !wrong["result"]["message"].as_str().unwrap().is_empty(),
        "{wrong}"
    );
    assert_eq!(wrong["staff"], "li");
    assert_eq!(wrong["station"], "counter-1");

    let found = tablet
        .ask(&topic, serde_json::json!({"v": 1, "id": "s2", "staff": "li", "kind": "pickup_check", "code": "P1:424242"}))
        .await;
    assert_eq!(found["result"]["result"], "found", "{found}");
    assert_eq!(found["result"]["order_id"], "P1", "{found}");

    let handed = tablet
        .ask(&topic, serde_json::json!({"v": 1, "id": "s3", "staff": "li", "kind": "pickup_handover", "order_id": "P1"}))
        .await;
    assert_eq!(handed["ok"], true, "{handed}");
    let again = tablet
        .ask(&topic, serde_json::json!({"v": 1, "id": "s4", "staff": "wang", "kind": "pickup_handover", "order_id": "P1"}))
        .await;
    assert_eq!(
        (&again["ok"], &again["error"]),
        (&false.into(), &"refused".into()),
        "{again}"
    );
    assert!(
        again["reason"].as_str().unwrap().contains("counter-1"),
        "{again}"
    );

    let order = store
        .read_blocking(|c| pickup_orders::order(c, "P1"))
        .unwrap()
        .unwrap();
    assert!(
        matches!(&order.status, OrderStatus::Collected { station, .. } if station == "counter-1"),
        "{:?}",
        order.status
    );
    assert_eq!(
        handed["result"]["staff"], "li",
        "the handover names who did it: {handed}"
    );
    let body: String = store
        .read_blocking(|c| {
            c.query_row("SELECT body FROM handover WHERE order_id = 'P1'", [], |r| {
                r.get(0)
            })
            .map_err(|e| hub::store::StoreError::from_sqlite(std::path::Path::new(""), e))
        })
        .unwrap();
    assert!(body.contains("\"staff\":\"li\""), "{body}");
    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(board.view().uplink.state, hub::status::UplinkState::Offline);
    tablet.poller.abort();
    drop(broker);
}

/// Applies SKU master data and pickup orders (`(order id, code)`) the way central sends them,
/// and books `stock` pieces in.
async fn seed_orders(store: &Store, site: &str, orders: &[(&str, &str)], stock: i64) {
    let now = hub::clock::now();
    let mut list = vec![(
        "c-sku".to_owned(),
        "sku_upsert",
        "MILK-1L".to_owned(),
        serde_json::json!({"code": "MILK-1L", "name": "Milk", "unit": "piece", "version": 1}),
    )];
    for (id, code) in orders {
        let salt = "0a0b0c";
        list.push((
            format!("c-{id}"),
            "pickup_order",
            (*id).to_owned(),
            serde_json::json!({"code_salt": salt,
                "code_hash": hub_core::pickup::hash_code(salt, code).unwrap(),
                "items": [{"sku": "MILK-1L", "quantity": 1}],
                "opens_at_ms": now.millis() - 3_600_000, "closes_at_ms": now.millis() + 86_400_000}),
        ));
    }
    let site = SiteId::new(site).unwrap();
    store
        .write(move |c| {
            for (id, kind, key, body) in list {
                let command = wire_command(site.as_str(), &id, kind, &key, body);
                let applied =
                    commands::apply(c, &site, chrono_tz::Asia::Shanghai, Ok(command), now)?;
                assert!(
                    matches!(applied, commands::Applied::Applied { .. }),
                    "{applied:?}"
                );
            }
            let m = hub_core::Movement {
                id: hub_core::MovementId::new("rcv-1").unwrap(),
                sku: SkuCode::new("MILK-1L").unwrap(),
                batch: Some(hub_core::BatchKey::new("L1", "2030-01-01".parse().ok()).unwrap()),
                kind: hub_core::MovementKind::Receipt,
                quantity: stock,
                reason: String::new(),
                reference: "delivery D1".into(),
                at: now,
            };
            support::record(c, &m)?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pickups_done_with_the_broker_down_reach_central_once_in_order_after_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker =
        Mosquitto::start(&dir.path().join("broker"), &MosquittoOptions::default()).unwrap();
    let port = broker.port();
    tokio::task::block_in_place(|| broker.kill());
    let config = hub::config::Config::parse(
        "[site]\nid = \"site-o\"\n[store]\ndata_dir = \"data\"\n[[stations]]\nid = \"desk\"\nkind = \"pickup\"\n",
        dir.path(),
    )
    .unwrap();
    let store = open_store(&dir.path().join("hub.sqlite"), "site-o");
    let orders: Vec<(String, String)> = (0..5)
        .map(|i| (format!("P{i}"), format!("70000{i}")))
        .collect();
    let refs: Vec<(&str, &str)> = orders
        .iter()
        .map(|(o, c)| (o.as_str(), c.as_str()))
        .collect();
    seed_orders(&store, "site-o", &refs, 20).await;

    // The uplink runs but cannot reach the broker.
    let board = hub::status::StatusBoard::default();
    let mut s = settings(plain(port, "hub-site-o"), 20);
    s.board = Some(board.clone());
    let shutdown = CancellationToken::new();
    let site = SiteId::new("site-o").unwrap();
    let task = tokio::spawn(uplink::run(site, s, store.clone(), shutdown.clone()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while board.view().uplink.state != hub::status::UplinkState::Offline {
        assert!(
            Instant::now() < deadline,
            "uplink: {:?}",
            board.view().uplink
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Staff keep working: codes are verified and orders handed over, in this order.
    let now = || hub::clock::now();
    let wrong = hub::workflows::pickup::check(
        &store,
        &hub::workflows::Site::of(&config),
        "desk",
        &CodeEntry {
            code: "999999".into(),
            order_id: Some("P0".into()),
            phone_tail: None,
        },
        now(),
    )
    .await
    .unwrap();
    assert_eq!(wrong, hub_core::pickup::CodeCheck::WrongCode);
    for (order_id, code) in orders.iter().rev() {
        let check = hub::workflows::pickup::check(
            &store,
            &hub::workflows::Site::of(&config),
            "desk",
            &CodeEntry::scanned(&format!("{order_id}:{code}")),
            now(),
        )
        .await
        .unwrap();
        assert_eq!(
            check,
            hub_core::pickup::CodeCheck::Found {
                order_id: order_id.clone()
            }
        );
        hub::workflows::pickup::handover(
            &store,
            &hub::workflows::Site::of(&config),
            "desk",
            order_id,
            Default::default(),
            now(),
        )
        .await
        .unwrap();
    }
    let last = store.read(outbox::stats).await.unwrap().last_seq;
    // Still not connected: offline, or between two of its retries (on a busy machine the
    // handovers above can outlast a retry's back-off).
    let state = board.view().uplink.state;
    assert!(
        matches!(
            state,
            hub::status::UplinkState::Offline | hub::status::UplinkState::Connecting
        ),
        "{state:?}"
    );

    // The broker comes back; central starts; everything drains.
    tokio::task::block_in_place(|| broker.restart()).unwrap();
    let central = start_central(dir.path(), port).await;
    let central_db = dir.path().join("central.sqlite");
    wait_central(
        &central_db,
        "site-o",
        Duration::from_secs(60),
        "drain",
        |r| r.contiguous_seq >= last,
    )
    .await;
    shutdown.cancel();
    task.await.unwrap();
    central.stop().await.unwrap();
    assert_exactly_once_in_sequence(&central_db, "site-o", last);
    let handed: Vec<String> = central::CentralDb::open(&central_db)
        .unwrap()
        .events("site-o")
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "pickup_handed_over")
        .map(|e| {
            let body: serde_json::Value = serde_json::from_str(e.body.as_deref().unwrap()).unwrap();
            body["handover"]["order_id"].as_str().unwrap().to_owned()
        })
        .collect();
    let expected: Vec<String> = orders.iter().rev().map(|(o, _)| o.clone()).collect();
    assert_eq!(
        handed, expected,
        "each handover once, in the order it happened"
    );
    drop(broker);
}

/// Collects replies until every id in `ids` has one (or `stalled` passes with none new);
/// returns the first reply per id and how many copies arrived in all.
async fn collect_replies(
    tablet: &mut Tablet,
    ids: &[String],
    stalled: Duration,
) -> (std::collections::HashMap<String, serde_json::Value>, usize) {
    let mut got = std::collections::HashMap::new();
    let mut copies = 0;
    while got.len() < ids.len() {
        match tokio::time::timeout(stalled, tablet.replies.recv()).await {
            Ok(Some(r)) => {
                let id = r["id"].as_str().unwrap_or_default().to_owned();
                if !ids.contains(&id) {
                    continue;
                }
                copies += 1;
                if let Some(first) = got.get(&id) {
                    assert_eq!(first, &r, "two different replies to one command {id}");
                } else {
                    got.insert(id, r);
                }
            }
            _ => {
                let missing: Vec<&String> = ids.iter().filter(|i| !got.contains_key(*i)).collect();
                panic!(
                    "no reply for {stalled:?}; still missing {} replies: {missing:?}",
                    missing.len()
                );
            }
        }
    }
    (got, copies)
}

/// Station commands sent fast and in bulk: each is applied exactly once, every one gets its
/// reply, the uplink never drops its connection over them, a redelivered command gets its
/// stored reply, an id reused for another command is refused, and replies pending when the
/// broker goes away arrive after it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn station_commands_are_applied_once_and_every_reply_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker =
        Mosquitto::start(&dir.path().join("broker"), &MosquittoOptions::default()).unwrap();
    let port = broker.port();
    let config = hub::config::Config::parse(
        "[site]\nid = \"site-q\"\n[store]\ndata_dir = \"data\"\n[[stations]]\nid = \"counter-1\"\nkind = \"pickup\"\n",
        dir.path(),
    )
    .unwrap();
    let store = open_store(&dir.path().join("hub.sqlite"), "site-q");
    let orders: Vec<(String, String)> = (0..140)
        .map(|i| (format!("Q{i}"), format!("{:06}", 300_000 + i)))
        .collect();
    let refs: Vec<(&str, &str)> = orders
        .iter()
        .map(|(o, c)| (o.as_str(), c.as_str()))
        .collect();
    seed_orders(&store, "site-q", &refs, 500).await;

    let board = hub::status::StatusBoard::default();
    let mut s = settings(plain(port, "hub-site-q"), 20);
    s.stations = Some(std::sync::Arc::new(hub::workflows::Site::of(&config)));
    s.board = Some(board.clone());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(uplink::run(
        SiteId::new("site-q").unwrap(),
        s,
        store.clone(),
        shutdown.clone(),
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    while board.view().uplink.state != hub::status::UplinkState::Online {
        assert!(Instant::now() < deadline, "{:?}", board.view().uplink);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut tablet = Tablet::connect_as(port, "site-q", "tablet-q", false).await;
    let topic = contract::station_topic("site-q", "counter-1");
    // The hub subscribes right after it connects: wait for an answer to a harmless probe.
    let mut n = 0;
    loop {
        tablet
            .send(
                &topic,
                serde_json::json!({"id": format!("probe-{n}"), "staff": "li", "kind": "dance"}),
            )
            .await;
        if tablet
            .reply(&format!("probe-{n}"), Duration::from_millis(500))
            .await
            .is_some()
        {
            break;
        }
        n += 1;
        assert!(n < 40, "the hub never answered a station command");
    }
    // Watch the uplink: station replies must never cost it its connection.
    let drops = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let watch = {
        let (board, drops) = (board.clone(), drops.clone());
        tokio::spawn(async move {
            loop {
                if board.view().uplink.state != hub::status::UplinkState::Online {
                    drops.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    // 30 quick checks, 3 of them typos, published without waiting for any reply.
    let mut ids = Vec::new();
    for (i, (order, code)) in orders.iter().enumerate().take(30) {
        let code = if i % 10 == 3 {
            "000000".to_owned()
        } else {
            code.clone()
        };
        let id = format!("chk-{i}");
        tablet
            .send(&topic, serde_json::json!({"v": 1, "id": id, "staff": "li", "kind": "pickup_check", "code": code, "order_id": order}))
            .await;
        ids.push(id);
    }
    let (replies, _) = collect_replies(&mut tablet, &ids, Duration::from_secs(30)).await;
    let wrong = replies
        .values()
        .filter(|r| r["result"]["result"] == "wrong_code")
        .count();
    assert_eq!(wrong, 3, "three typos, three wrong codes");
    let counted: String = store
        .read_blocking(|c| {
            c.query_row(
                "SELECT state FROM station_attempts WHERE station = 'counter-1'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| StoreError::from_sqlite(Path::new(""), e))
        })
        .unwrap();
    let counted: serde_json::Value = serde_json::from_str(&counted).unwrap();
    assert_eq!(
        counted["failures"].as_array().unwrap().len(),
        3,
        "each typo counted once: {counted}"
    );

    // 100 check + handover pairs, published at about 10 messages a second... and faster.
    let mut ids = Vec::new();
    for (order, code) in &orders[30..130] {
        let check = format!("c-{order}");
        let hand = format!("h-{order}");
        tablet
            .send(&topic, serde_json::json!({"v": 1, "id": check, "staff": "li", "kind": "pickup_check", "code": format!("{order}:{code}")}))
            .await;
        tablet
            .send(&topic, serde_json::json!({"v": 1, "id": hand, "staff": "li", "kind": "pickup_handover", "order_id": order}))
            .await;
        ids.push(check);
        ids.push(hand);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (replies, _) = collect_replies(&mut tablet, &ids, Duration::from_secs(30)).await;
    for id in &ids {
        assert_eq!(replies[id]["ok"], true, "{}", replies[id]);
    }
    let collected: i64 = store
        .read_blocking(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM pickup_order WHERE status = 'collected'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| StoreError::from_sqlite(Path::new(""), e))
        })
        .unwrap();
    assert_eq!(collected, 100, "every order of the 100 pairs collected");
    assert_eq!(
        drops.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the uplink dropped its connection while answering station commands"
    );

    // A command delivered again gets its stored reply; it is not run again.
    let (order, _) = &orders[40];
    let hand = serde_json::json!({"v": 1, "id": format!("h-{order}"), "staff": "li", "kind": "pickup_handover", "order_id": order});
    let again = tablet.ask(&topic, hand).await;
    assert_eq!(
        again,
        replies[&format!("h-{order}")],
        "the stored reply, word for word"
    );
    tablet
        .send(&topic, serde_json::json!({"v": 1, "id": format!("h-{order}"), "staff": "li", "kind": "pickup_check", "code": "Q41:1"}))
        .await;
    // (copies of the stored reply may still be on their way; the answer to this one differs)
    let reused = loop {
        let r = tablet
            .reply(&format!("h-{order}"), Duration::from_secs(20))
            .await
            .expect("an answer to the reused id");
        if r != again {
            break r;
        }
    };
    assert_eq!(reused["error"], "id_reused", "{reused}");
    let handovers: i64 = store
        .read_blocking(|c| {
            c.query_row("SELECT COUNT(*) FROM handover", [], |r| r.get(0))
                .map_err(|e| StoreError::from_sqlite(Path::new(""), e))
        })
        .unwrap();
    assert_eq!(handovers, 100);

    // Replies waiting when the broker goes away arrive once it is back.
    let mut ids = Vec::new();
    for (order, code) in &orders[130..140] {
        let id = format!("late-{order}");
        tablet
            .send(&topic, serde_json::json!({"v": 1, "id": id, "staff": "li", "kind": "pickup_check", "code": format!("{order}:{code}")}))
            .await;
        ids.push(id);
    }
    tokio::task::block_in_place(|| {
        broker.stop();
        broker.restart().unwrap();
    });
    watch.abort();
    let (replies, _) = collect_replies(&mut tablet, &ids, Duration::from_secs(60)).await;
    for id in &ids {
        assert_eq!(replies[id]["result"]["result"], "found", "{}", replies[id]);
    }
    // The broker acknowledged every reply, and the hub recorded it (marks are written in
    // batches, so wait for them).
    let undelivered = || -> i64 {
        store
            .read_blocking(|c| {
                c.query_row(
                    "SELECT COUNT(*) FROM station_request WHERE delivered = 0",
                    [],
                    |r| r.get(0),
                )
                .map_err(|e| StoreError::from_sqlite(Path::new(""), e))
            })
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while undelivered() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} replies never acknowledged",
            undelivered()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    task.await.unwrap();
    tablet.poller.abort();
}

/// Mounts a small tmpfs (the tests run as root, as CI does) and unmounts it on drop.
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
            "mounting a tmpfs failed: run the tests as root"
        );
        Tmpfs { dir }
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

/// A command (version 1) as central puts it on the wire, decoded as the hub's downlink
/// decodes it.
fn wire_command(
    site: &str,
    id: &str,
    kind: &str,
    key: &str,
    body: serde_json::Value,
) -> commands::Command {
    let out = contract::CommandOut {
        v: contract::CONTRACT_VERSION,
        id: id.into(),
        site: site.into(),
        kind: kind.into(),
        key: key.into(),
        version: 1,
        body,
    };
    contract::decode_command(&contract::encode(&out), usize::MAX).unwrap()
}

/// A `sku_upsert` command as central sends it.
fn sku_command(site: &str, id: &str, code: &str) -> contract::CommandOut {
    contract::CommandOut {
        v: 1,
        id: id.into(),
        site: site.into(),
        kind: "sku_upsert".into(),
        key: code.into(),
        version: 1,
        body: serde_json::json!({"code": code, "name": format!("product {code}"), "unit": "piece", "version": 1}),
    }
}

/// Waits until the board shows the uplink online.
async fn wait_online(board: &hub::status::StatusBoard, within: Duration) {
    let deadline = Instant::now() + within;
    while board.view().uplink.state != hub::status::UplinkState::Online {
        assert!(
            Instant::now() < deadline,
            "the uplink did not come online: {:?}",
            board.view().uplink
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn skus_stored(store: &Store) -> i64 {
    store
        .read_blocking(|c| {
            c.query_row("SELECT COUNT(*) FROM sku", [], |r| r.get(0))
                .map_err(hub::store::sql_error(c))
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_that_could_not_be_stored_on_a_full_disk_apply_once_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let broker =
        Mosquitto::start(&dir.path().join("broker"), &MosquittoOptions::default()).unwrap();
    let port = broker.port();
    let fs = Tmpfs::mount("size=8m");
    let store = open_store(&fs.dir.path().join("hub.sqlite"), "site-f");
    let site = SiteId::new("site-f").unwrap();
    let board = hub::status::StatusBoard::new();
    let mut s = settings(plain(port, "hub-site-f"), 20);
    s.board = Some(board.clone());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(uplink::run(site, s, store.clone(), shutdown.clone()));
    wait_online(&board, Duration::from_secs(30)).await;

    // Fill the disk: another file takes what is left …
    let filler = fs.dir.path().join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    // … then the store's own writes use up whatever room its files still had, down to the
    // smallest write.
    for size in [20_000, 2_000, 200, 1] {
        let mut i = 0;
        loop {
            i += 1;
            let store = store.clone();
            let written = tokio::task::block_in_place(move || {
                store.write_blocking(move |c| {
                    outbox::append(
                        c,
                        &DomainEvent::SyncAlert {
                            code: "pad".into(),
                            message: "x".repeat(size),
                            seq: None,
                        },
                        hub::clock::now(),
                    )
                })
            });
            if written.is_err() {
                break;
            }
            assert!(i < 10_000, "the disk never filled up");
        }
    }
    assert!(
        store.write_fault().is_some(),
        "the store knows its writes fail"
    );

    // Central sends commands: the hub receives them and cannot store them.
    const N: usize = 40;
    let sender = plain(port, "central-sender");
    for n in 0..N {
        central::send_command(
            &sender,
            &sku_command("site-f", &format!("c-{n}"), &format!("SKU-{n:03}")),
        )
        .await
        .unwrap();
    }
    // The status page says so: the last write error and since when, in HTML, JSON and metrics.
    let source = hub::status::StatusSource {
        site_id: "site-f".into(),
        site_name: "F".into(),
        store: store.clone(),
        board: board.clone(),
        data_dir: fs.dir.path().to_owned(),
        disk: Default::default(),
        timezone: chrono_tz::Asia::Shanghai,
        started_at: hub::clock::now(),
    };
    let snapshot = hub::status::gather(&source, hub::clock::now()).await;
    let failing = snapshot
        .store_write_error
        .clone()
        .expect("the status page shows the store's write error");
    assert_eq!(
        failing.kind,
        hub::store::WriteFaultKind::DiskFull,
        "{failing:?}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&hub::status::render::json(&snapshot)).unwrap();
    assert_eq!(json["store_write_error"]["kind"], "disk_full");
    assert!(hub::status::render::metrics(&snapshot).contains("hub_store_write_failing 1\n"));
    assert!(
        snapshot
            .alerts
            .iter()
            .any(|a| a.kind == "store_write_failing" && a.tier == hub::status::AlertTier::Red),
        "{:?}",
        snapshot.alerts
    );
    assert_eq!(skus_stored(&store), 0, "nothing could be stored yet");

    // Space is freed: every command is applied without restarting anything.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while skus_stored(&store) < N as i64 {
        assert!(
            Instant::now() < deadline,
            "{} of {N} commands applied after space was freed; outcomes {:?}",
            skus_stored(&store),
            store.read_blocking(hub::store::applied_commands::outcome_counts)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        store
            .read_blocking(hub::store::applied_commands::outcome_counts)
            .unwrap(),
        vec![("applied".to_string(), N as i64)],
        "each command applied once"
    );
    assert!(store.write_fault().is_none(), "writes work again");
    let snapshot = hub::status::gather(&source, hub::clock::now()).await;
    assert!(snapshot.store_write_error.is_none());
    assert!(hub::status::render::metrics(&snapshot).contains("hub_store_write_failing 0\n"));
    shutdown.cancel();
    task.await.unwrap();
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_70_mb_command_on_a_broker_without_a_size_limit_is_rejected_once_and_the_uplink_carries_on()
 {
    let dir = tempfile::tempdir().unwrap();
    // The test broker has no message size limit.
    let broker =
        Mosquitto::start(&dir.path().join("broker"), &MosquittoOptions::default()).unwrap();
    let port = broker.port();
    let store = open_store(&dir.path().join("hub.sqlite"), "site-o");
    let site = SiteId::new("site-o").unwrap();
    let board = hub::status::StatusBoard::new();
    let run = |shutdown: CancellationToken| {
        let mut s = settings(plain(port, "hub-site-o"), 20);
        s.board = Some(board.clone());
        tokio::spawn(uplink::run(site.clone(), s, store.clone(), shutdown))
    };
    // The hub's persistent session exists; then it goes offline and central queues commands.
    let shutdown = CancellationToken::new();
    let task = run(shutdown.clone());
    wait_online(&board, Duration::from_secs(30)).await;
    shutdown.cancel();
    task.await.unwrap();

    let sender = plain(port, "central-sender");
    let topic = contract::commands_topic("site-o");
    hub_mqtt::publish_once(&sender, &topic, vec![b'x'; 70 << 20])
        .await
        .unwrap();
    central::send_command(&sender, &sku_command("site-o", "c-after", "AFTER"))
        .await
        .unwrap();

    let shutdown = CancellationToken::new();
    let task = run(shutdown.clone());
    let rejected_oversized = |store: &Store| -> i64 {
        store
            .read_blocking(|c| {
                c.query_row(
                    "SELECT COUNT(*) FROM outbox WHERE kind = 'command_rejected'
                     AND payload LIKE '%\"oversized\"%'",
                    [],
                    |r| r.get(0),
                )
                .map_err(hub::store::sql_error(c))
            })
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while skus_stored(&store) < 1 {
        assert!(
            Instant::now() < deadline,
            "the command behind the oversized one was never applied; uplink {:?}",
            board.view().uplink
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while rejected_oversized(&store) < 1 {
        assert!(Instant::now() < deadline, "no oversized rejection recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(board.view().oversized_messages, 1, "counted once");

    // The uplink is back to its normal limit and keeps working: a 1 MB command (over the
    // limit, under the broker's none) is got past the same way, and the next one applies.
    hub_mqtt::publish_once(&sender, &topic, vec![b'y'; 1 << 20])
        .await
        .unwrap();
    central::send_command(&sender, &sku_command("site-o", "c-later", "LATER"))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while skus_stored(&store) < 2 {
        assert!(
            Instant::now() < deadline,
            "the later command was never applied; uplink {:?}",
            board.view().uplink
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while rejected_oversized(&store) < 2 {
        assert!(
            Instant::now() < deadline,
            "the second oversized command was not rejected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        rejected_oversized(&store),
        2,
        "each oversized command rejected once"
    );
    assert_eq!(board.view().oversized_messages, 2);
    wait_online(&board, Duration::from_secs(30)).await;
    shutdown.cancel();
    task.await.unwrap();
    drop(broker);
}

/// Runs the `hub` binary to completion with the given arguments.
/// Runs the `central` binary (a workspace member: `cargo build --workspace` or `cargo build -p
/// central` builds it next to this test's executable, in `target/<profile>/`).
fn central_cli(args: &[&str]) -> std::process::Output {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let central = profile_dir.join("central");
    assert!(
        central.exists(),
        "{} not found: build it first with `cargo build -p central`",
        central.display()
    );
    std::process::Command::new(central)
        .args(args)
        .output()
        .expect("central runs")
}

fn hub_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hub"))
        .args(args)
        .output()
        .expect("hub runs")
}

/// Records one `sku_upserted` event per SKU code through `hub sku import`; returns its stderr.
fn import_skus(config: &Path, codes: &[&str]) -> String {
    let file = config.with_file_name("skus.json");
    let skus: Vec<serde_json::Value> = codes
        .iter()
        .map(|code| serde_json::json!({"code": code, "name": code, "unit": "piece", "version": 1}))
        .collect();
    std::fs::write(&file, serde_json::to_vec(&skus).unwrap()).unwrap();
    let out = hub_cli(&[
        "sku",
        "import",
        "--config",
        config.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "sku import failed: {stderr}");
    stderr
}

/// Runs `hub run` until central holds the site's current stream up to `last` under a stream
/// other than `not`, then stops it with SIGTERM (a clean stop) and returns that stream.
async fn run_hub_until_delivered(
    config: &Path,
    central_db: &Path,
    site: &str,
    last: i64,
    not: Option<&str>,
) -> String {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hub"))
        .args(["run", "--config"])
        .arg(config)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("hub starts");
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        wait_central(central_db, site, Duration::from_secs(60), "delivery", |r| {
            r.contiguous_seq >= last && r.stream.is_some() && r.stream.as_deref() != not
        }),
    )
    .await;
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let report = report.expect("central received the events");
    assert!(stopped.success() && status.success(), "hub run: {status:?}");
    report.stream.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_backup_starts_a_new_stream_and_central_keeps_both() {
    let dir = tempfile::tempdir().unwrap();
    let broker =
        Mosquitto::start(&dir.path().join("broker"), &MosquittoOptions::default()).unwrap();
    let port = broker.port();
    let central = start_central(dir.path(), port).await;
    let central_db = dir.path().join("central.sqlite");
    let config = write_hub_config(dir.path(), "site-r", port, 20);
    let db = dir.path().join("data/hub-site-r.sqlite");
    let backup = dir.path().join("backup.sqlite");
    let remove_wal = || {
        for ext in ["sqlite-wal", "sqlite-shm"] {
            let _ = std::fs::remove_file(db.with_extension(ext));
        }
    };

    // Events #1..=3 reach central; the database is copied while the hub is stopped.
    import_skus(&config, &["A-1", "A-2", "A-3"]);
    let first = run_hub_until_delivered(&config, &central_db, "site-r", 3, None).await;
    std::fs::copy(&db, &backup).unwrap();
    // The hub goes on: #4..=8 reach central too.
    import_skus(&config, &["A-4", "A-5", "A-6", "A-7", "A-8"]);
    run_hub_until_delivered(&config, &central_db, "site-r", 8, None).await;

    // The box's database is lost and the backup restored; the hub records new events, which
    // would reuse #4.. for other events.
    remove_wal();
    std::fs::copy(&backup, &db).unwrap();
    let log = import_skus(&config, &["B-1", "B-2", "B-3"]);
    assert!(
        log.contains("went back in time"),
        "the rewind is logged: {log}"
    );
    let second = run_hub_until_delivered(&config, &central_db, "site-r", 7, Some(&first)).await;
    central.stop().await.unwrap();

    // Central holds both streams, nothing dropped or in conflict.
    let r = site_report(&central_db, "site-r").unwrap();
    assert_eq!(r.stream.as_deref(), Some(second.as_str()));
    assert_eq!((r.conflicts, r.contiguous_seq), (0, 7), "{r:?}");
    assert!(r.gaps.is_empty(), "{r:?}");
    let old = r.streams.iter().find(|t| t.stream == first).unwrap();
    let new = r.streams.iter().find(|t| t.stream == second).unwrap();
    assert_eq!(
        (old.contiguous_seq, old.max_seq, old.current),
        (8, 8, false)
    );
    assert_eq!(
        (
            new.continues.as_deref(),
            new.base_seq,
            new.rewound_past,
            new.current
        ),
        (Some(first.as_str()), 3, Some(8), true)
    );
    let events = central::CentralDb::open(&central_db)
        .unwrap()
        .events("site-r")
        .unwrap();
    let of = |stream: &str| -> Vec<(i64, String, String)> {
        events
            .iter()
            .filter(|e| e.stream == stream)
            .map(|e| (e.seq, e.id.clone(), e.kind.clone()))
            .collect()
    };
    let (old_events, new_events) = (of(&first), of(&second));
    assert_eq!(
        old_events.iter().map(|e| e.0).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    // The new stream's own events are #4.. (any of #1..=3 sent again is the same event).
    for (seq, id, _) in new_events.iter().filter(|e| e.0 <= 3) {
        assert_eq!(Some(id), old_events.get(*seq as usize - 1).map(|e| &e.1));
    }
    let own: Vec<(i64, &str)> = new_events
        .iter()
        .filter(|e| e.0 > 3)
        .map(|e| (e.0, e.2.as_str()))
        .collect();
    assert_eq!(
        own,
        [
            (4, "stream_started"),
            (5, "sku_upserted"),
            (6, "sku_upserted"),
            (7, "sku_upserted")
        ]
    );
    // Nothing the hub recorded was discarded: every outbox row of the restored database is at
    // central under its stream with its own id.
    let store = open_store(&db, "site-r");
    let recorded: Vec<(i64, String)> = store
        .read_blocking(|c| {
            let mut st = c
                .prepare("SELECT seq, id FROM outbox WHERE seq > 3 ORDER BY seq")
                .map_err(hub::store::sql_error(c))?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
                .map_err(hub::store::sql_error(c))
        })
        .unwrap();
    assert_eq!(
        recorded,
        new_events
            .iter()
            .filter(|e| e.0 > 3)
            .map(|e| (e.0, e.1.clone()))
            .collect::<Vec<_>>()
    );
    store.close();
    // The rewind is told upstream and shows in `central report`.
    let started: serde_json::Value = serde_json::from_str(
        events
            .iter()
            .find(|e| e.kind == "stream_started")
            .and_then(|e| e.body.as_deref())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(started["reason"], "rewound");
    assert_eq!(started["continues_stream"], first.as_str());
    assert_eq!(
        (
            started["base_seq"].as_i64(),
            started["previous_high_water_seq"].as_i64()
        ),
        (Some(3), Some(8))
    );
    let out = central_cli(&["report", "--db", central_db.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains(&format!("continues {first} up to #3; REWOUND")),
        "{text}"
    );
    let out = central_cli(&["report", "--db", central_db.to_str().unwrap(), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let site = &json["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["site"] == "site-r")
        .unwrap();
    assert_eq!(site["streams"].as_array().unwrap().len(), 2, "{site}");
    assert_eq!(site["streams"][0]["rewound_past"], 8, "{site}");
    drop(broker);
}

/// What stock tiers are evaluated with in these tests: `policy`, the site's default calendar
/// and replenishment settings.
fn rules(policy: &TierPolicy) -> alert_book::StockRules<'_> {
    alert_book::StockRules {
        default_policy: policy,
        timezone: chrono_tz::Asia::Shanghai,
        replenishment: Default::default(),
    }
}

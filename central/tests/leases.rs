//! Resend leases outliving their consumer: a `central run` process that asked a hub for a gap
//! is killed (SIGKILL) before the gap is filled; another consumer of the same PostgreSQL
//! database asks again once the lease (`--resend-lease`, short here) has expired — exactly one
//! more request — and nothing more once the hub answered it.

use central::pg_cluster::PgCluster;
use central::{EventStore, PgStore};
use hub_contract::{self as contract, SyncControl};
use hub_mqtt::brokers::{Mosquitto, MosquittoOptions};
use hub_mqtt::{BrokerAddress, Connection};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SITE: &str = "lease-site";
const LEASE_S: u64 = 8;

fn consumer(port: u16, db: &str, client_id: &str, logs: &std::path::Path) -> Child {
    let log = std::fs::File::create(logs.join(format!("{client_id}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_central"))
        .args([
            "run",
            "--broker",
            &format!("mqtt://127.0.0.1:{port}"),
            "--client-id",
            client_id,
            "--postgres",
            db,
            "--share-group",
            "central",
            "--resend-lease",
            &LEASE_S.to_string(),
        ])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("central run starts")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Reads the store on a thread of its own (the store owns a runtime).
fn read<T: Send + 'static>(db: &str, f: impl FnOnce(&PgStore) -> T + Send + 'static) -> T {
    let db = db.to_owned();
    std::thread::spawn(move || f(&PgStore::open(&db, now_ms()).unwrap()))
        .join()
        .unwrap()
}

fn plain(port: u16, client_id: &str) -> Connection {
    Connection::plain(
        BrokerAddress {
            host: "127.0.0.1".into(),
            port,
            tls: false,
        },
        client_id,
    )
}

/// Publishes probe heartbeats until one reaches the database (a consumer is subscribed).
async fn wait_subscribed(port: u16, db: &str, probe_site: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let beat = json!({"v": 1, "site": probe_site, "at_ms": now_ms(), "outbox_depth": 0,
            "oldest_undelivered_age_s": 0.0, "last_seq": 0, "first_undelivered_seq": null,
            "confirmed_seq": 0, "in_flight": 0});
        let _ = hub_mqtt::publish_once(
            &plain(port, "probe"),
            &contract::heartbeat_topic(probe_site),
            serde_json::to_vec(&beat).unwrap(),
        )
        .await;
        let probe = probe_site.to_owned();
        let seen = read(db, move |s| {
            s.report()
                .map(|r| r.sites.iter().any(|x| x.site == probe))
                .unwrap_or(false)
        });
        if seen {
            return;
        }
        assert!(Instant::now() < deadline, "no consumer subscribed");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn event(seq: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({"v": 1, "site": SITE, "stream": "A", "seq": seq,
        "id": format!("e-{seq}"), "kind": "sync_alert", "at_ms": 1_700_000_000_000i64 + seq,
        "lane": "live",
        "event": {"kind": "sync_alert", "code": "t", "message": "m", "seq": null}}))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_left_by_a_dead_consumer_is_asked_again_once_after_it_expires() {
    let cluster = PgCluster::start().expect("private PostgreSQL cluster starts");
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path(), &MosquittoOptions::default()).unwrap();
    let port = broker.port();
    let db = cluster.create_database("leases").unwrap();
    read(&db, |_| ());

    // The hub's side of the sync topic: every resend request, as it arrives.
    let (requests_tx, mut requests) = tokio::sync::mpsc::unbounded_channel();
    let mut listen = MqttOptions::new("hub-listener", "127.0.0.1", port);
    listen.set_keep_alive(Duration::from_secs(5));
    let (listener, mut listener_loop) = AsyncClient::new(listen, 100);
    let listening = tokio::spawn(async move {
        loop {
            match listener_loop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = listener.try_subscribe(contract::sync_topic(SITE), QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = requests_tx.send(None);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if let Ok(SyncControl::Resend {
                        from_seq, to_seq, ..
                    }) = contract::decode_sync(&p.payload)
                    {
                        let _ = requests_tx.send(Some((from_seq, to_seq, Instant::now())));
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    let subscribed = tokio::time::timeout(Duration::from_secs(30), requests.recv()).await;
    assert!(matches!(subscribed, Ok(Some(None))), "{subscribed:?}");

    let mut first = consumer(port, &db, "central-a", dir.path());
    wait_subscribed(port, &db, "probe-a").await;

    // The hub had 1..=10 acknowledged by the broker; #6 never reached central.
    let hub = plain(port, "hub-lease-site");
    for seq in (1..=10).filter(|s| *s != 6) {
        hub_mqtt::publish_once(&hub, &contract::events_topic(SITE), event(seq))
            .await
            .unwrap();
    }
    let status = json!({"v": 1, "site": SITE, "state": "online", "hub_version": "t",
        "last_seq": 10, "first_undelivered_seq": null, "at_ms": now_ms(),
        "stream": "A", "stream_continues": null, "stream_base_seq": 0});
    hub_mqtt::publish_once(
        &hub,
        &contract::status_topic(SITE),
        serde_json::to_vec(&status).unwrap(),
    )
    .await
    .unwrap();

    // The first consumer asks (the hub does not answer), then dies holding the lease.
    let asked = tokio::time::timeout(Duration::from_secs(60), requests.recv())
        .await
        .expect("the first consumer asks for the gap");
    let Some(Some((from, to, first_at))) = asked else {
        panic!("{asked:?}")
    };
    assert_eq!((from, to), (6, 6));
    first.kill().unwrap();
    first.wait().unwrap();

    // Another consumer sees the same gap in the database; it asks only once the lease expired.
    let second = consumer(port, &db, "central-b", dir.path());
    wait_subscribed(port, &db, "probe-b").await;
    let asked = tokio::time::timeout(Duration::from_secs(60), requests.recv())
        .await
        .expect("the second consumer asks again after the lease expired");
    let Some(Some((from, to, second_at))) = asked else {
        panic!("{asked:?}")
    };
    assert_eq!((from, to), (6, 6));
    // Lower bound only: the second request cannot come before the lease ran out (less the
    // first request's own delivery to the hub, kept under two seconds even on a loaded
    // machine). A consumer ignoring the lease would ask about 3 s after the first request.
    assert!(
        second_at.duration_since(first_at) >= Duration::from_secs(LEASE_S - 2),
        "asked again after {:?}, within the {LEASE_S} s lease",
        second_at.duration_since(first_at)
    );

    // The dead consumer comes back under its client id, as its service manager restarts it:
    // its persistent session is still a member of the share group, and the broker may queue a
    // message for it while it is away (here: the answer below), handing it over on return.
    let first = consumer(port, &db, "central-a", dir.path());
    // The hub answers; the gap closes and nobody asks again when the second lease expires.
    hub_mqtt::publish_once(&hub, &contract::events_topic(SITE), event(6))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (contiguous, gaps) = read(&db, |s| {
            let r = s.report().unwrap();
            let site = r.sites.into_iter().find(|x| x.site == SITE).unwrap();
            (site.contiguous_seq, site.gaps.len())
        });
        if (contiguous, gaps) == (10, 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the gap did not close: {contiguous}, {gaps} gaps"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(LEASE_S + 3)).await;
    let mut more = Vec::new();
    while let Ok(r) = requests.try_recv() {
        more.push(r);
    }
    assert!(
        more.is_empty(),
        "asked again after the gap closed: {more:?}"
    );

    for mut consumer in [first, second] {
        consumer.kill().unwrap();
        consumer.wait().unwrap();
    }
    listening.abort();
}

//! Central's `delivery_dispute` commands over a real Mosquitto (started on a free loopback
//! port): a dispute opened with the older `open` flag, responded to with a note, its photos
//! recorded as inspected and settled with steps; an empty note, an unknown delivery, a delivery
//! without an open dispute, settling twice and an unknown step are refused with their reason.

use hub::store::deliveries;
use hub::store::{Store, StoreError, StoreOptions};
use hub::sync::uplink::{self, UplinkSettings};
use hub_contract as contract;
use hub_core::receiving::{Manifest, ManifestLine};
use hub_core::{SiteId, SkuCode, Timestamp};
use hub_mqtt::brokers::{Mosquitto, MosquittoOptions};
use hub_mqtt::{BrokerAddress, Connection};
use rusqlite::OptionalExtension;
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

fn command(id: &str, key: &str, body: &str) -> Vec<u8> {
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    serde_json::to_vec(&serde_json::json!({
        "v": 1, "id": id, "site": "site-d", "kind": "delivery_dispute", "key": key,
        "version": 1, "body": body
    }))
    .unwrap()
}

/// How the hub handled command `id` (`applied`, `unchanged`, `rejected`) and why, if it did.
fn outcome(store: &Store, id: &str) -> Option<(String, String)> {
    let id = id.to_owned();
    store
        .read_blocking(move |c| {
            c.query_row(
                "SELECT outcome, COALESCE(reason, '') FROM applied_command WHERE command_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| StoreError::from_sqlite(std::path::Path::new("hub"), e))
        })
        .unwrap()
}

fn manifest(id: &str) -> Manifest {
    Manifest {
        delivery_id: id.into(),
        supplier: "光明乳业".into(),
        expected_at: None,
        lines: vec![ManifestLine {
            line_no: 1,
            sku: SkuCode::new("MILK").unwrap(),
            lot: "L1".into(),
            production_date: None,
            expiry: None,
            expected_count: Some(10),
            expected_weight_g: None,
            weight_tolerance_g: 0,
            trace_codes: vec![],
            crate_label: None,
        }],
        cancelled: false,
        version: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn central_answers_and_settles_a_dispute_and_bad_steps_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let broker =
        Mosquitto::start(&dir.path().join("broker"), &MosquittoOptions::default()).unwrap();
    let port = broker.port();
    let store = Store::open(
        &dir.path().join("hub.sqlite"),
        "site-d",
        &StoreOptions::default(),
    )
    .unwrap();
    store
        .write(|c| {
            deliveries::upsert_manifest(c, &manifest("D1"), Timestamp(1_000))?;
            deliveries::upsert_manifest(c, &manifest("D2"), Timestamp(1_000))?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let mut settings = UplinkSettings::from_defaults(plain(port, "hub-site-d"));
    settings.tuning.reconnect_min = Duration::from_millis(50);
    settings.tuning.reconnect_max = Duration::from_millis(500);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(uplink::run(
        SiteId::new("site-d").unwrap(),
        settings,
        store.clone(),
        shutdown.clone(),
    ));
    let topic = contract::commands_topic("site-d");
    let sender = plain(port, "central-sender");

    // Each command is sent until the hub has handled it (the first may arrive before the hub
    // subscribed; a copy of a handled command is a duplicate and changes nothing), in order.
    let send = |id: &'static str, key: &'static str, body: &'static str| {
        let (store, sender, topic) = (store.clone(), sender.clone(), topic.clone());
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let s = store.clone();
                if let Some(found) = tokio::task::spawn_blocking(move || outcome(&s, id))
                    .await
                    .unwrap()
                {
                    return found;
                }
                assert!(Instant::now() < deadline, "the hub never handled {id}");
                hub_mqtt::publish_once(&sender, &topic, command(id, key, body))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let applied = |(outcome, reason): (String, String), id: &str| {
        assert_eq!(outcome, "applied", "{id}: {reason}");
    };
    let rejected = |(outcome, reason): (String, String), id: &str, why: &str| {
        assert_eq!(outcome, "rejected", "{id}: {reason}");
        assert!(reason.contains(why), "{id}: {reason}");
    };

    // An old message (the `open` flag) still opens the dispute.
    applied(
        send(
            "d-1",
            "D1",
            r#"{"open":true,"note":"customer 8812: caps leaking","by":"cs.zhao"}"#,
        )
        .await,
        "d-1",
    );
    applied(
        send(
            "d-2",
            "D1",
            r#"{"step":"respond","note":"called the dairy","by":"cs.zhao"}"#,
        )
        .await,
        "d-2",
    );
    applied(
        send(
            "d-3",
            "D1",
            r#"{"step":"photos_inspected","note":"two caps cracked"}"#,
        )
        .await,
        "d-3",
    );
    rejected(
        send("d-4", "D1", r#"{"step":"respond","note":"  "}"#).await,
        "d-4",
        "needs a note",
    );
    rejected(
        send("d-5", "D404", r#"{"step":"respond","note":"x"}"#).await,
        "d-5",
        "D404",
    );
    rejected(
        send("d-6", "D2", r#"{"step":"photos_inspected","note":"x"}"#).await,
        "d-6",
        "has no open dispute",
    );
    rejected(
        send("d-7", "D1", r#"{"step":"close","note":"x"}"#).await,
        "d-7",
        "not one of open, respond, photos_inspected, settle",
    );
    applied(
        send(
            "d-8",
            "D1",
            r#"{"step":"settle","note":"credited 2 bottles","by":"cs.qian"}"#,
        )
        .await,
        "d-8",
    );
    rejected(
        send("d-9", "D1", r#"{"step":"settle","note":"again"}"#).await,
        "d-9",
        "has no open dispute",
    );
    shutdown.cancel();
    task.await.unwrap();

    let (episodes, kinds) = store
        .read(|c| {
            let episodes = deliveries::dispute_episodes(c, "D1")?;
            // Every event the hub wrote (the uplink may have sent them already).
            let kinds: Vec<String> = c
                .prepare("SELECT kind FROM outbox WHERE kind LIKE 'dispute_%' ORDER BY seq")
                .and_then(|mut st| {
                    st.query_map([], |r| r.get(0))
                        .and_then(|rows| rows.collect())
                })
                .map_err(hub::store::sql_error(c))?;
            Ok::<_, StoreError>((episodes, kinds))
        })
        .await
        .unwrap();
    assert_eq!(episodes.len(), 1, "{episodes:#?}");
    let e = &episodes[0];
    assert_eq!(
        (
            e.opened_by.as_deref(),
            e.closed_by.as_deref(),
            e.settle_note.as_deref()
        ),
        (Some("cs.zhao"), Some("cs.qian"), Some("credited 2 bottles"))
    );
    assert_eq!(
        e.responses
            .iter()
            .map(|r| (r.by.as_str(), r.kind.as_str(), r.note.as_str()))
            .collect::<Vec<_>>(),
        [
            ("cs.zhao", "note", "called the dairy"),
            ("central", "photo_inspection", "two caps cracked")
        ]
    );
    let first = e.first_response.as_ref().unwrap();
    assert_eq!(
        (first.by.as_str(), first.kind.as_str()),
        ("cs.zhao", "note")
    );
    assert!(first.photos_inspected_at.is_some());
    assert_eq!(
        kinds,
        [
            "dispute_opened",
            "dispute_responded",
            "dispute_responded",
            "dispute_closed"
        ]
    );
    assert!(
        store
            .read(|c| deliveries::dispute_episodes(c, "D2"))
            .await
            .unwrap()
            .is_empty(),
        "nothing recorded for refused steps"
    );
}

//! Central's `staff_upsert` commands over a real Mosquitto (started on a free loopback port):
//! applied once however often the broker delivers them, ordered by version (an older upsert
//! never overwrites a newer one), a plaintext PIN or a new member without a PIN hash refused
//! with its reason, and a member central disables is stored disabled (the app refuses them).

use hub::station_app::hash_pin;
use hub::store::staff as staff_store;
use hub::store::{Store, StoreError, StoreOptions};
use hub::sync::uplink::{self, UplinkSettings};
use hub_contract as contract;
use hub_core::SiteId;
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

fn command(id: &str, key: &str, version: i64, body: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "v": 1, "id": id, "site": "site-s", "kind": "staff_upsert", "key": key,
        "version": version, "body": body
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_upserts_from_central_apply_once_by_version_and_never_carry_a_pin() {
    let dir = tempfile::tempdir().unwrap();
    let broker =
        Mosquitto::start(&dir.path().join("broker"), &MosquittoOptions::default()).unwrap();
    let port = broker.port();
    let store = Store::open(
        &dir.path().join("hub.sqlite"),
        "site-s",
        &StoreOptions::default(),
    )
    .unwrap();
    let mut settings = UplinkSettings::from_defaults(plain(port, "hub-site-s"));
    settings.tuning.reconnect_min = Duration::from_millis(50);
    settings.tuning.reconnect_max = Duration::from_millis(500);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(uplink::run(
        SiteId::new("site-s").unwrap(),
        settings,
        store.clone(),
        shutdown.clone(),
    ));
    let topic = contract::commands_topic("site-s");
    let sender = plain(port, "central-sender");
    let pin_hash = tokio::task::spawn_blocking(|| hash_pin("8642").unwrap())
        .await
        .unwrap();
    let zhao = |version: i64, name: &str, disabled: bool| {
        command(
            &format!("staff-zhao-{version}"),
            "zhao",
            version,
            serde_json::json!({"name": name, "role": "supervisor", "lang": "zh-CN",
                "pin_hash": pin_hash, "disabled": disabled}),
        )
    };

    // Sent until the hub has it (it may not be subscribed yet): each copy after the first
    // is a duplicate of the same command and changes nothing.
    let deadline = Instant::now() + Duration::from_secs(30);
    while outcome(&store, "staff-zhao-2").is_none() {
        assert!(
            Instant::now() < deadline,
            "the hub never applied staff-zhao-2"
        );
        hub_mqtt::publish_once(&sender, &topic, zhao(2, "赵主管", false))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for _ in 0..3 {
        hub_mqtt::publish_once(&sender, &topic, zhao(2, "赵主管", false))
            .await
            .unwrap();
    }
    let id = |id: &str, key: &str, v: i64, body: serde_json::Value| command(id, key, v, body);
    let messages = vec![
        // Older than what is stored: refused, nothing changes.
        zhao(1, "old name", false),
        // Central must never send a PIN.
        id(
            "staff-plain",
            "zhao",
            5,
            serde_json::json!({"name": "赵主管", "role": "supervisor", "pin": "8642"}),
        ),
        // A new member without a PIN hash could never sign in.
        id(
            "staff-qian",
            "qian",
            1,
            serde_json::json!({"name": "钱", "role": "clerk"}),
        ),
        // Not a PHC string.
        id(
            "staff-badhash",
            "sun",
            1,
            serde_json::json!({"name": "孙", "role": "clerk", "pin_hash": "8642"}),
        ),
        // Newer: disables the member (the PIN hash stays).
        zhao(3, "赵主管", true),
        // The store manager's role.
        id(
            "staff-zhou",
            "zhou",
            1,
            serde_json::json!({"name": "周店长", "role": "manager", "pin_hash": pin_hash}),
        ),
    ];
    for m in messages {
        hub_mqtt::publish_once(&sender, &topic, m).await.unwrap();
    }
    let ids = [
        "staff-zhao-1",
        "staff-plain",
        "staff-qian",
        "staff-badhash",
        "staff-zhao-3",
        "staff-zhou",
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    while ids.iter().any(|i| outcome(&store, i).is_none()) {
        assert!(Instant::now() < deadline, "not every command was handled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    task.await.unwrap();

    assert_eq!(outcome(&store, "staff-zhao-2").unwrap().0, "applied");
    assert_eq!(outcome(&store, "staff-zhao-3").unwrap().0, "applied");
    assert_eq!(
        outcome(&store, "staff-zhou").unwrap(),
        ("applied".to_owned(), String::new())
    );
    let rejected = |i: &str| {
        let (outcome, reason) = outcome(&store, i).unwrap();
        assert_eq!(outcome, "rejected", "{i}: {reason}");
        reason
    };
    assert!(rejected("staff-zhao-1").contains("older than the stored version 2"));
    let plain_pin = rejected("staff-plain");
    assert!(plain_pin.contains("plaintext PIN"), "{plain_pin}");
    assert!(
        !plain_pin.contains("8642"),
        "the PIN is never echoed: {plain_pin}"
    );
    assert!(rejected("staff-qian").contains("no pin_hash"));
    assert!(rejected("staff-badhash").contains("argon2 PHC"));

    let (zhao, zhou, others, saved) = store
        .read_blocking(|c| {
            Ok::<_, StoreError>((
                staff_store::staff(c, "zhao")?,
                staff_store::staff(c, "zhou")?,
                staff_store::all_staff(c)?.len(),
                staff_store::count_actions(c, "zhao", "staff_saved_by_central")?,
            ))
        })
        .unwrap();
    let zhao = zhao.expect("zhao stored");
    assert_eq!(zhao.name, "赵主管");
    assert_eq!(zhao.role, staff_store::Role::Supervisor);
    assert!(zhao.disabled, "version 3 disabled them");
    assert_eq!(zhao.pin_hash, pin_hash, "the hash central sent, as sent");
    assert_eq!(zhou.expect("zhou stored").role, staff_store::Role::Manager);
    assert_eq!(others, 2, "nothing stored for refused members");
    assert_eq!(saved, 2, "versions 2 and 3, each once");
}

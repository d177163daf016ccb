//! The periodic checks raise and clear alerts through one mechanism: batches near expiry,
//! stock held for review too long, and an outbox backlog the uplink has not drained.

mod support;

use hub::config::Config;
use hub::store::{Store, StoreError, StoreOptions, alert_book, sku as sku_store};
use hub::workflows::alerts::run_checks;
use hub_core::alerts::{AlertKind, Tier};
use hub_core::{BatchKey, Movement, MovementId, MovementKind, Sku, Timestamp};

const DAY: i64 = 86_400_000;
const T0: i64 = 1_795_000_000_000; // 2026-11-18T…Z

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_quarantine_and_backlog_alerts_are_raised_then_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(
        "[site]\nid = \"a-1\"\n[store]\ndata_dir = \"d\"\n[alerts]\nexpiry_warn_days = 2\nquarantine_warn_hours = 4\noutbox_backlog_warn_minutes = 60\nmeasure = \"absolute\"\nyellow = 3\norange = 2\nred = 1\ntarget = 10\n",
        dir.path(),
    )
    .unwrap();
    let store = Store::open(&config.database_path(), "a-1", &StoreOptions::default()).unwrap();
    let today = chrono::DateTime::from_timestamp_millis(T0)
        .unwrap()
        .date_naive();
    tokio::task::block_in_place(|| {
        store
            .write_blocking(move |c| {
                let sku = Sku {
                    name: "Yogurt".into(),
                    ..support::sku("YOGURT")
                };
                sku_store::upsert(c, &sku, Timestamp(T0))?;
                let m = Movement {
                    id: MovementId::new("r1").unwrap(),
                    sku: sku.code.clone(),
                    batch: Some(BatchKey::new("Y-1", Some(today + chrono::Days::new(1))).unwrap()),
                    kind: MovementKind::Receipt,
                    quantity: 20,
                    reason: String::new(),
                    reference: "delivery D1".into(),
                    at: Timestamp(T0 - 2 * 3_600_000),
                };
                support::record(c, &m)?;
                c.execute(
                    "INSERT INTO quarantine (delivery_id, line_no, sku, lot, quantity, since, status)
                     VALUES ('D1', 2, 'YOGURT', 'Y-2', 6, ?1, 'held')",
                    [T0 - 5 * 3_600_000],
                )
                .map_err(hub::store::sql_error(c))?;
                Ok::<_, StoreError>(())
            })
            .unwrap()
    });

    let round = run_checks(
        &store,
        &hub::workflows::Site::of(&config),
        &config.alerts,
        Timestamp(T0),
    )
    .await
    .unwrap();
    assert!(round.alert_changes >= 3, "{round:?}");
    let open = store.read(alert_book::open_alerts).await.unwrap();
    let find = |kind: AlertKind| open.iter().find(|a| a.kind == kind).cloned();
    let expiry = find(AlertKind::NearExpiry).expect("batch expiring tomorrow");
    assert_eq!(
        (expiry.tier, expiry.subject.as_str()),
        (Tier::Orange, "YOGURT/Y-1")
    );
    assert!(
        expiry.message.contains("hand it over first"),
        "FEFO hint: {}",
        expiry.message
    );
    let held = find(AlertKind::QuarantineWaiting).expect("held for 5 h");
    assert_eq!(held.subject, "D1/2");
    let backlog = find(AlertKind::OutboxBacklog).expect("events waiting 2 h for the uplink");
    assert_eq!(backlog.tier, Tier::Yellow);

    // Nothing changed: a second round raises nothing new (no duplicate events).
    let again = run_checks(
        &store,
        &hub::workflows::Site::of(&config),
        &config.alerts,
        Timestamp(T0 + 1_000),
    )
    .await
    .unwrap();
    assert_eq!(again.alert_changes, 0);

    // The held stock is resolved, the events are delivered: those alerts clear; the batch expires.
    store
        .write(|c| {
            c.execute("UPDATE quarantine SET status = 'rejected'", [])
                .map_err(hub::store::sql_error(c))?;
            c.execute("UPDATE outbox SET delivered_at = ?1", [T0])
                .map_err(hub::store::sql_error(c))?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    run_checks(
        &store,
        &hub::workflows::Site::of(&config),
        &config.alerts,
        Timestamp(T0 + 2 * DAY),
    )
    .await
    .unwrap();
    let open = store.read(alert_book::open_alerts).await.unwrap();
    assert!(
        !open.iter().any(|a| a.kind == AlertKind::QuarantineWaiting),
        "{open:?}"
    );
    // Past its expiry the batch is no longer "near expiry, hand it over first": it is expired
    // stock that must not be handed over, red until it is written off.
    assert!(
        !open.iter().any(|a| a.kind == AlertKind::NearExpiry),
        "{open:?}"
    );
    assert_eq!(
        open.iter()
            .find(|a| a.kind == AlertKind::StockExpired)
            .map(|a| (a.tier, a.subject.as_str())),
        Some((Tier::Red, "YOGURT/Y-1"))
    );
    let cleared: i64 = store
        .read(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM outbox WHERE kind = 'alert_cleared'",
                [],
                |r| r.get(0),
            )
            .map_err(hub::store::sql_error(c))
        })
        .await
        .unwrap();
    assert!(cleared >= 2, "clearing is reported upstream ({cleared})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_one_backlog_alert_turns_red_at_the_uplinks_row_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(
        "[site]\nid = \"a-2\"\n[store]\ndata_dir = \"d\"\n[uplink]\nbroker = \"mqtt://127.0.0.1:1\"\nbacklog_alert_rows = 5\n",
        dir.path(),
    )
    .unwrap();
    assert_eq!(config.alerts.outbox_backlog_red_rows, 5);
    let store = Store::open(&config.database_path(), "a-2", &StoreOptions::default()).unwrap();
    let backlog = |store: &Store| {
        store
            .read_blocking(alert_book::open_alerts)
            .unwrap()
            .into_iter()
            .find(|a| a.kind == AlertKind::OutboxBacklog)
            .map(|a| a.tier)
    };
    // Four fresh events: below both thresholds, no alert.
    let append = |n: usize| {
        let store = store.clone();
        tokio::task::block_in_place(move || {
            store
                .write_blocking(move |c| {
                    for i in 0..n {
                        hub::store::outbox::append(
                            c,
                            &hub_core::DomainEvent::SyncAlert {
                                code: "test".into(),
                                message: format!("event {i}"),
                                seq: None,
                            },
                            Timestamp(T0),
                        )?;
                    }
                    Ok::<_, StoreError>(())
                })
                .unwrap()
        })
    };
    append(4);
    run_checks(
        &store,
        &hub::workflows::Site::of(&config),
        &config.alerts,
        Timestamp(T0 + 60_000),
    )
    .await
    .unwrap();
    assert_eq!(backlog(&store), None);
    // The fifth makes it red at once, long before the age thresholds.
    append(1);
    run_checks(
        &store,
        &hub::workflows::Site::of(&config),
        &config.alerts,
        Timestamp(T0 + 120_000),
    )
    .await
    .unwrap();
    assert_eq!(backlog(&store), Some(Tier::Red));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backlog_alert_turns_red_at_the_documented_age_not_at_six_times_the_warning() {
    let dir = tempfile::tempdir().unwrap();
    // Defaults: yellow past alerts.outbox_backlog_warn_minutes (60), red at
    // uplink.backlog_alert_age_hours (24) or backlog_alert_rows (1,000,000).
    let config = Config::parse(
        "[site]\nid = \"a-3\"\n[store]\ndata_dir = \"d\"\n[uplink]\nbroker = \"mqtt://127.0.0.1:1\"\n",
        dir.path(),
    )
    .unwrap();
    let store = Store::open(&config.database_path(), "a-3", &StoreOptions::default()).unwrap();
    store
        .write(|c| {
            hub::store::outbox::append(
                c,
                &hub_core::DomainEvent::SyncAlert {
                    code: "test".into(),
                    message: "waiting".into(),
                    seq: None,
                },
                Timestamp(T0),
            )
        })
        .await
        .unwrap();
    let tier_at = |hours: i64| {
        let (store, config) = (store.clone(), config.clone());
        async move {
            run_checks(
                &store,
                &hub::workflows::Site::of(&config),
                &config.alerts,
                Timestamp(T0 + hours * 3_600_000),
            )
            .await
            .unwrap();
            store
                .read(alert_book::open_alerts)
                .await
                .unwrap()
                .into_iter()
                .find(|a| a.kind == AlertKind::OutboxBacklog)
                .map(|a| a.tier)
        }
    };
    assert_eq!(tier_at(2).await, Some(Tier::Yellow));
    assert_eq!(tier_at(7).await, Some(Tier::Yellow), "7 h is not yet 24 h");
    assert_eq!(tier_at(23).await, Some(Tier::Yellow));
    assert_eq!(tier_at(24).await, Some(Tier::Red));
}

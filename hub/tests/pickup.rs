//! Pickup handover and stock alerts against real SQLite files and real processes: exactly one
//! of two competing stations wins, brute force is locked out, everything works with no
//! uplink, and a noisy stock series yields exactly the expected tier events and one
//! replenishment request per episode, across a restart.

mod support;

use hub::config::Config;
use hub::store::pickup_orders::{HandoverError, HandoverRequest, upsert_order};
use hub::store::{Store, StoreError, StoreOptions, ledger, outbox, sku as sku_store};
use hub::workflows::pickup;
use hub::workflows::pickup::CodeEntry;
use hub_core::pickup::{CodeCheck, OrderStatus, PickupItem, PickupOrder, hash_code};
use hub_core::{
    BatchKey, Movement, MovementId, MovementKind, SiteId, Sku, SkuCode, StockUnit, Timestamp,
};
use std::path::Path;
use std::process::Command;

const T0: i64 = 1_790_000_000_000;

/// Two pickup desks and 200 more: a brute force spread over many stations meets the site's
/// budget.
const STATIONS: &str = "[[stations]]\nid = \"desk-1\"\nkind = \"pickup\"\n[[stations]]\nid = \"desk-2\"\nkind = \"pickup\"\n[[stations]]\nid = \"dock\"\nkind = \"receiving\"\n";

fn entry(order: &str, code: &str) -> CodeEntry {
    CodeEntry {
        code: code.into(),
        order_id: Some(order.into()),
        phone_tail: None,
    }
}

fn config(dir: &Path, extra: &str) -> (Config, std::path::PathBuf) {
    let text = format!(
        "[site]\nid = \"pp-1\"\n[store]\ndata_dir = \"data\"\n[pickup]\nmax_wrong_codes = 3\nlockout_minutes = 5\n{STATIONS}{extra}"
    );
    let file = dir.join("hub.toml");
    std::fs::write(&file, &text).unwrap();
    (Config::parse(&text, dir).unwrap(), file)
}

fn open(config: &Config) -> Store {
    Store::open(
        &config.database_path(),
        config.site.id.as_str(),
        &StoreOptions::default(),
    )
    .unwrap()
}

fn order(id: &str, code: &str, quantity: i64) -> PickupOrder {
    let salt = format!("{:0>8}", hex_of(id));
    PickupOrder {
        order_id: id.into(),
        site: SiteId::new("pp-1").unwrap(),
        code_hash: hash_code(&salt, code).unwrap(),
        code_salt: salt,
        items: vec![PickupItem {
            sku: SkuCode::new("MILK").unwrap(),
            quantity,
            lot: None,
            trace_codes: vec![],
            unit_price_cents: None,
        }],
        opens_at: Timestamp(T0 - 3_600_000),
        closes_at: Timestamp(T0 + 86_400_000 * 365 * 5),
        status: OrderStatus::Open,
        version: 1,
        phone_tail: None,
    }
}

fn hex_of(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn seed(store: &Store, stock: i64, orders: Vec<PickupOrder>) {
    store
        .write_blocking(move |c| {
            let sku = Sku {
                name: "Milk".into(),
                ..support::sku("MILK")
            };
            sku_store::upsert(c, &sku, Timestamp(T0))?;
            if stock > 0 {
                let m = Movement {
                    id: MovementId::new("rcv-1").unwrap(),
                    sku: sku.code.clone(),
                    batch: Some(BatchKey::new("L1", "2030-01-01".parse().ok()).unwrap()),
                    kind: MovementKind::Receipt,
                    quantity: stock,
                    reason: String::new(),
                    reference: "delivery D1".into(),
                    at: Timestamp(T0),
                };
                support::record(c, &m)?;
            }
            for o in &orders {
                upsert_order(c, o, Timestamp(T0))?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
}

#[test]
fn two_stations_as_separate_processes_hand_an_order_over_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (config, file) = config(dir.path(), "");
    let store = open(&config);
    let orders: Vec<_> = (0..8)
        .map(|i| order(&format!("P{i}"), &format!("10000{i}"), 2))
        .collect();
    seed(&store, 100, orders);
    store.close();

    let hub = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hub"))
            .args(args)
            .arg("--config")
            .arg(&file)
            .output()
            .unwrap()
    };
    // No handover by order number alone.
    let unchecked = hub(&["pickup", "handover", "--station", "desk-1", "--order", "P0"]);
    assert_eq!(unchecked.status.code(), Some(5));
    assert!(
        String::from_utf8_lossy(&unchecked.stderr)
            .contains("check the customer's pickup code first"),
        "{}",
        String::from_utf8_lossy(&unchecked.stderr)
    );
    for i in 0..8 {
        // Both desks check the customer's code, then both try to hand the order over.
        for desk in ["desk-1", "desk-2"] {
            let qr = format!("P{i}:10000{i}");
            let out = hub(&["pickup", "check", "--station", desk, &qr]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        let spawn = |station: &str| {
            Command::new(env!("CARGO_BIN_EXE_hub"))
                .args([
                    "pickup",
                    "handover",
                    "--station",
                    station,
                    "--order",
                    &format!("P{i}"),
                    "--config",
                ])
                .arg(&file)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn("desk-1"), spawn("desk-2"));
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let codes = [a.status.code(), b.status.code()];
        assert!(
            codes.contains(&Some(0)) && codes.contains(&Some(5)),
            "order P{i}: exit codes {codes:?}"
        );
        let loser = if a.status.code() == Some(5) { &a } else { &b };
        let text = String::from_utf8_lossy(&loser.stderr);
        assert!(
            text.contains("collected"),
            "the loser is told the order was collected: {text}"
        );
    }
    let store = open(&config);
    let report = store.read_blocking(ledger::verify).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    let stock = store.read_blocking(ledger::balances).unwrap();
    assert_eq!(
        stock[0].on_hand,
        100 - 8 * 2,
        "each order issued exactly once"
    );
    let handovers: i64 = store
        .read_blocking(|c| {
            c.query_row("SELECT COUNT(*) FROM handover", [], |r| r.get(0))
                .map_err(hub::store::sql_error(c))
        })
        .unwrap();
    assert_eq!(handovers, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_is_locked_out_and_the_right_code_works_after_the_lockout() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config(dir.path(), "");
    let store = open(&config);
    tokio::task::block_in_place(|| seed(&store, 10, vec![order("P1", "424242", 1)]));
    let at = |s: i64| Timestamp(T0 + s * 1000);
    for (i, guess) in ["000000", "000001"].iter().enumerate() {
        assert_eq!(
            pickup::check(
                &store,
                &hub::workflows::Site::of(&config),
                "desk-1",
                &entry("P1", guess),
                at(i as i64)
            )
            .await
            .unwrap(),
            CodeCheck::WrongCode
        );
    }
    // A right code in between does not reset the count.
    assert!(
        pickup::check(
            &store,
            &hub::workflows::Site::of(&config),
            "desk-1",
            &entry("P1", "424242"),
            at(2)
        )
        .await
        .unwrap()
        .is_found()
    );
    // The third wrong code starts a five-minute lockout.
    assert_eq!(
        pickup::check(
            &store,
            &hub::workflows::Site::of(&config),
            "desk-1",
            &entry("P1", "000002"),
            at(2)
        )
        .await
        .unwrap(),
        CodeCheck::WrongCode
    );
    let locked = pickup::check(
        &store,
        &hub::workflows::Site::of(&config),
        "desk-1",
        &entry("P1", "424242"),
        at(3),
    )
    .await
    .unwrap();
    assert_eq!(locked, CodeCheck::LockedOut { until: at(2 + 300) });
    // The lockout survives a restart of the hub.
    store.close();
    let store = open(&config);
    assert_eq!(
        pickup::check(
            &store,
            &hub::workflows::Site::of(&config),
            "desk-1",
            &entry("P1", "424242"),
            at(4)
        )
        .await
        .unwrap(),
        CodeCheck::LockedOut { until: at(2 + 300) }
    );
    // Another station is not affected; the locked one works again after the lockout.
    assert!(
        pickup::check(
            &store,
            &hub::workflows::Site::of(&config),
            "desk-2",
            &entry("P1", "424242"),
            at(4)
        )
        .await
        .unwrap()
        .is_found()
    );
    assert!(
        pickup::check(
            &store,
            &hub::workflows::Site::of(&config),
            "desk-1",
            &entry("P1", "424242"),
            at(303)
        )
        .await
        .unwrap()
        .is_found()
    );
    let alerts = store
        .read(hub::store::alert_book::open_alerts)
        .await
        .unwrap();
    assert!(
        alerts
            .iter()
            .any(|a| a.subject == "desk-1" && a.kind.as_str() == "pickup_lockout"),
        "{alerts:?}"
    );
    let kinds: Vec<String> = store
        .read(|c| {
            outbox::pending(c, 0, 1000).map(|rows| rows.into_iter().map(|r| r.kind).collect())
        })
        .await
        .unwrap();
    assert!(
        kinds.contains(&"pickup_station_locked_out".to_string()),
        "{kinds:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_uplink_codes_are_checked_and_handovers_recorded_for_later_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config(dir.path(), "");
    let store = open(&config);
    let mut on_hold = order("P2", "222222", 1);
    on_hold.status = OrderStatus::OnHold;
    tokio::task::block_in_place(|| seed(&store, 10, vec![order("P1", "111111", 3), on_hold]));
    let now = Timestamp(T0);
    assert_eq!(
        pickup::check(
            &store,
            &hub::workflows::Site::of(&config),
            "desk-1",
            &CodeEntry::scanned("P1:111111"),
            now
        )
        .await
        .unwrap(),
        CodeCheck::Found {
            order_id: "P1".into()
        }
    );
    assert_eq!(
        pickup::check(
            &store,
            &hub::workflows::Site::of(&config),
            "desk-1",
            &entry("P2", "222222"),
            now
        )
        .await
        .unwrap(),
        CodeCheck::OnHold {
            order_id: "P2".into()
        }
    );
    let request = HandoverRequest {
        refusals: vec![hub::store::pickup_orders::Refusal {
            line_no: 1,
            quantity: 1,
            to: hub_core::event::RefusedTo::Loss,
            reason: "dented".into(),
        }],
        staff: Some(" li.na ".into()),
        ..Default::default()
    };
    let handover = pickup::handover(
        &store,
        &hub::workflows::Site::of(&config),
        "desk-1",
        "P1",
        request,
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        (handover.lines[0].handed_over, handover.lines[0].refused),
        (2, 1)
    );
    assert_eq!(
        handover.staff.as_deref(),
        Some("li.na"),
        "staff id kept, trimmed"
    );
    let again = pickup::handover(
        &store,
        &hub::workflows::Site::of(&config),
        "desk-2",
        "P1",
        HandoverRequest::default(),
        now,
    )
    .await
    .unwrap_err();
    assert!(matches!(&again, HandoverError::NotOpen { .. }), "{again}");
    assert!(again.to_string().contains("already collected"), "{again}");
    // A person is told when and where, in the site's zone (not UTC).
    let zone = chrono_tz::Asia::Shanghai;
    let told = hub::catalogue::handover_error(&again, hub::catalogue::Lang::En, zone);
    let local = hub::catalogue::local_date_time(now, zone);
    assert!(
        told.contains("already collected") && told.contains("desk-1") && told.contains(&local),
        "{told} (local time {local})"
    );
    assert!(
        !told.contains(&hub::catalogue::local_date_time(now, chrono_tz::UTC)),
        "{told}"
    );
    let on_hold_handover = pickup::handover(
        &store,
        &hub::workflows::Site::of(&config),
        "desk-1",
        "P2",
        HandoverRequest::default(),
        now,
    )
    .await
    .unwrap_err();
    assert!(
        on_hold_handover.to_string().contains("on hold"),
        "{on_hold_handover}"
    );

    let (stock, pending) = store
        .read(|c| Ok::<_, StoreError>((ledger::balances(c)?, outbox::pending(c, 0, 1000)?)))
        .await
        .unwrap();
    assert_eq!(
        stock[0].on_hand,
        10 - 2 - 1,
        "two handed over, one written off"
    );
    let kinds: Vec<&str> = pending.iter().map(|r| r.kind.as_str()).collect();
    assert!(
        kinds.contains(&"pickup_handed_over"),
        "the handover waits in the outbox for the uplink: {kinds:?}"
    );
    assert!(pending.iter().all(|r| r.delivered_at.is_none()));
}

#[test]
fn a_noisy_stock_series_yields_exact_tier_events_and_one_request_per_episode_across_a_restart() {
    use hub_core::alerts::Tier;
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config(
        dir.path(),
        "[alerts]\nmeasure = \"absolute\"\nyellow = 30\norange = 20\nred = 10\nhysteresis = 0.2\ntarget = 60\nre_request_after_minutes = 600\n",
    );
    let policy = config.alerts.default_policy.clone();
    let mut store = open(&config);
    seed(&store, 0, vec![]);
    // Available stock over time: down through every tier with noise, hold in red, restart,
    // noise around red, back up to normal, and down into red again (a second episode).
    let series: &[i64] = &[
        40, 35, 31, 30, 29, 31, 30, 25, 21, 20, 19, 21, 15, 11, 10, 9, 11, 12, 8, 11, 9, 12, 11,
        30, 40, 37, 60, 45, 9, 8,
    ];
    let restart_at = 17;
    let mut on_hand = 0i64;
    let mut tiers = Vec::new();
    let mut requests = Vec::new();
    let mut episodes_ended = 0;
    for (i, target) in series.iter().enumerate() {
        if i == restart_at {
            store.close();
            store = open(&config);
        }
        let delta = target - on_hand;
        on_hand = *target;
        let now = Timestamp(T0 + i as i64 * 60_000);
        let policy = policy.clone();
        let actions = store
            .write_blocking(move |c| {
                if delta != 0 {
                    let m = Movement {
                        id: MovementId::new(format!("adj-{i}")).unwrap(),
                        sku: SkuCode::new("MILK").unwrap(),
                        batch: None,
                        kind: MovementKind::Adjustment,
                        quantity: delta,
                        reason: "stock series".into(),
                        reference: "test".into(),
                        at: now,
                    };
                    support::record(c, &m)?;
                }
                let rules = hub::store::alert_book::StockRules {
                    default_policy: &policy,
                    timezone: chrono_tz::Asia::Shanghai,
                    replenishment: Default::default(),
                };
                hub::store::alert_book::evaluate_sku(c, &SkuCode::new("MILK").unwrap(), &rules, now)
            })
            .unwrap();
        for a in actions {
            match a {
                hub_core::alerts::StockAction::TierChanged { to, .. } => tiers.push((i, to)),
                hub_core::alerts::StockAction::RequestReplenishment { episode_id, .. } => {
                    requests.push((i, episode_id))
                }
                hub_core::alerts::StockAction::EpisodeEnded { .. } => episodes_ended += 1,
            }
        }
    }
    use Tier::*;
    assert_eq!(
        tiers,
        vec![
            (3, Yellow),
            (9, Orange),
            (14, Red),
            (23, Yellow),
            (24, Normal),
            (28, Red)
        ],
        "noise within the hysteresis margin never flaps"
    );
    assert_eq!(
        requests.len(),
        2,
        "one request per episode, none repeated after the restart: {requests:?}"
    );
    assert_eq!((requests[0].0, requests[1].0), (14, 28));
    assert_ne!(requests[0].1, requests[1].1);
    assert_eq!(episodes_ended, 1);
    let events: Vec<String> = store
        .read_blocking(|c| {
            outbox::pending(c, 0, 10_000).map(|r| r.into_iter().map(|r| r.kind).collect())
        })
        .unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|k| *k == "replenishment_requested")
            .count(),
        2
    );
    assert_eq!(
        events.iter().filter(|k| *k == "stock_tier_changed").count(),
        6
    );
}

fn many_stations(n: usize) -> String {
    (0..n)
        .map(|i| format!("[[stations]]\nid = \"s{i}\"\nkind = \"pickup\"\n"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_spread_over_many_stations_meet_the_site_budget_and_a_supervisor_lifts_it() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config(dir.path(), &many_stations(60));
    let store = open(&config);
    tokio::task::block_in_place(|| seed(&store, 10, vec![order("P1", "424242", 1)]));
    let at = |s: i64| Timestamp(T0 + s * 1000);
    let policy = config.pickup.rules.attempts;
    let mut outcome = None;
    for i in 0..60 {
        let station = format!("s{i}");
        let check = pickup::check(
            &store,
            &hub::workflows::Site::of(&config),
            &station,
            &entry("P1", "000000"),
            at(i),
        )
        .await
        .unwrap();
        if check != CodeCheck::WrongCode {
            outcome = Some((i, check));
            break;
        }
        if i as u32 + 1 == policy.site_alert_per_hour {
            let alerts = store
                .read(hub::store::alert_book::open_alerts)
                .await
                .unwrap();
            assert!(
                alerts
                    .iter()
                    .any(|a| a.kind.as_str() == "pickup_wrong_code_rate"),
                "a sustained wrong-code rate raises an alert: {alerts:?}"
            );
        }
    }
    // One wrong guess per station never locks a station, but the site's hourly budget does.
    let (i, check) = outcome.expect("the site budget paused the checks");
    assert_eq!(
        i as u32, policy.site_max_per_hour,
        "the budget is {}",
        policy.site_max_per_hour
    );
    assert!(
        matches!(check, CodeCheck::SiteLockedOut { .. }),
        "{check:?}"
    );
    let right = pickup::check(
        &store,
        &hub::workflows::Site::of(&config),
        "desk-1",
        &entry("P1", "424242"),
        at(61),
    )
    .await
    .unwrap();
    assert!(
        matches!(right, CodeCheck::SiteLockedOut { .. }),
        "even a right code waits while the site is paused: {right:?}"
    );
    let alerts = store
        .read(hub::store::alert_book::open_alerts)
        .await
        .unwrap();
    assert!(
        alerts
            .iter()
            .any(|a| a.kind.as_str() == "pickup_lockout" && a.subject == "site"),
        "{alerts:?}"
    );
    // A supervisor lifts it: checks work again, and the lift is reported upstream.
    assert!(
        pickup::unlock(
            &store,
            &hub::workflows::Site::of(&config),
            None,
            "sup-zhang",
            "checked the cameras",
            at(62)
        )
        .await
        .unwrap()
    );
    assert!(
        pickup::check(
            &store,
            &hub::workflows::Site::of(&config),
            "desk-1",
            &entry("P1", "424242"),
            at(63)
        )
        .await
        .unwrap()
        .is_found()
    );
    let kinds: Vec<String> = store
        .read(|c| outbox::pending(c, 0, 10_000).map(|r| r.into_iter().map(|r| r.kind).collect()))
        .await
        .unwrap();
    for kind in ["pickup_site_locked_out", "pickup_lockout_lifted"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} missing: {kinds:?}");
    }
    let alerts = store
        .read(hub::store::alert_book::open_alerts)
        .await
        .unwrap();
    assert!(
        !alerts.iter().any(|a| a.subject == "site"),
        "lifting clears the site's alerts: {alerts:?}"
    );
}

const DAY: i64 = 86_400_000;

/// Receives `lots` (lot, expiry, count) of `sku` through the receiving workflow on day `T0`.
async fn receive_lots(store: &Store, config: &Config, sku: &Sku, lots: &[(&str, &str, i64)]) {
    use hub::store::deliveries::{set_count, upsert_manifest};
    use hub_core::receiving::{Manifest, ManifestLine};
    let now = Timestamp(T0);
    let manifest = Manifest {
        delivery_id: "D1".into(),
        supplier: "Dairy Co".into(),
        expected_at: None,
        lines: lots
            .iter()
            .enumerate()
            .map(|(i, (lot, expiry, count))| ManifestLine {
                expiry: expiry.parse().ok(),
                expected_count: Some(*count),
                ..ManifestLine::unexpected(i as u32 + 1, sku.code.clone(), lot)
            })
            .collect(),
        cancelled: false,
        version: 1,
    };
    let counts: Vec<(u32, i64)> = lots
        .iter()
        .enumerate()
        .map(|(i, l)| (i as u32 + 1, l.2))
        .collect();
    let sku = sku.clone();
    store
        .write(move |c| {
            sku_store::upsert(c, &sku, now)?;
            upsert_manifest(c, &manifest, now)?;
            for (line, count) in counts {
                set_count(c, "D1", line, count, now)?;
            }
            Ok::<_, hub::store::deliveries::ReceivingError>(())
        })
        .await
        .unwrap();
    for line in 1..=lots.len() as u32 {
        let d = hub::workflows::receiving::decide(
            store,
            &hub::workflows::Site::of(config),
            "D1",
            line,
            "staff-1",
            now,
        )
        .await
        .unwrap();
        assert_eq!(d.decision.outcome, hub_core::receiving::Outcome::Accepted);
    }
}

fn milk(check_items: bool, gtins: &[&str]) -> Sku {
    Sku {
        code: SkuCode::new("MILK").unwrap(),
        name: "Milk".into(),
        unit: StockUnit::Piece,
        gtins: gtins.iter().map(|g| g.parse().unwrap()).collect(),
        allow_negative: false,
        check_items_at_handover: check_items,
        version: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_stock_is_never_picked_and_stays_alerted_until_written_off() {
    use hub::store::alert_book::open_alerts;
    use hub_core::alerts::{AlertKind, Tier};
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config(dir.path(), "[receiving]\nphoto_required = false\n");
    let store = open(&config);
    // T0 is 2026-09-21: OLD expires two days later, NEW in ten.
    let today = chrono::DateTime::from_timestamp_millis(T0)
        .unwrap()
        .date_naive();
    let day = |n: u64| (today + chrono::Days::new(n)).to_string();
    receive_lots(
        &store,
        &config,
        &milk(false, &[]),
        &[("OLD", &day(2), 4), ("NEW", &day(10), 5)],
    )
    .await;
    let orders = vec![order("P1", "111111", 5), order("P2", "222222", 1)];
    store
        .write(move |c| {
            for o in &orders {
                upsert_order(c, o, Timestamp(T0))?;
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();

    // Four days on, OLD has expired: the handover takes NEW, first-expiry-first-out among
    // what may still be handed over.
    let later = Timestamp(T0 + 4 * DAY);
    let pick = store
        .read(move |c| hub::store::pickup_orders::pick_list(c, "P1", today + chrono::Days::new(4)))
        .await
        .unwrap();
    assert_eq!(pick[0].lot.as_deref(), Some("NEW"), "{pick:?}");
    for (order_id, code) in [("P1", "111111"), ("P2", "222222")] {
        assert!(
            pickup::check(
                &store,
                &hub::workflows::Site::of(&config),
                "desk-1",
                &entry(order_id, code),
                later
            )
            .await
            .unwrap()
            .is_found()
        );
    }
    let handover = pickup::handover(
        &store,
        &hub::workflows::Site::of(&config),
        "desk-1",
        "P1",
        HandoverRequest::default(),
        later,
    )
    .await
    .unwrap();
    assert_eq!(handover.lines[0].lot.as_deref(), Some("NEW"));
    // Nothing but the expired lot is left: refused, and nothing was written.
    let refused = pickup::handover(
        &store,
        &hub::workflows::Site::of(&config),
        "desk-1",
        "P2",
        HandoverRequest::default(),
        later,
    )
    .await
    .unwrap_err();
    assert!(
        refused.to_string().contains("only expired stock"),
        "{refused}"
    );
    let (stock, p2) = store
        .read(|c| {
            Ok::<_, StoreError>((
                ledger::balances(c)?,
                hub::store::pickup_orders::order(c, "P2")?.unwrap(),
            ))
        })
        .await
        .unwrap();
    assert_eq!(stock[0].on_hand, 4, "only the expired lot is left");
    assert_eq!(p2.status, OrderStatus::Open, "the refused order stays open");

    // The periodic checks raise a red `stock_expired` alert for the lot on hand ...
    hub::workflows::alerts::run_checks(
        &store,
        &hub::workflows::Site::of(&config),
        &config.alerts,
        later,
    )
    .await
    .unwrap();
    let open_now = store.read(open_alerts).await.unwrap();
    let expired = open_now
        .iter()
        .find(|a| a.kind == AlertKind::StockExpired)
        .unwrap_or_else(|| panic!("{open_now:?}"));
    assert_eq!(
        (expired.tier, expired.subject.as_str()),
        (Tier::Red, "MILK/OLD")
    );
    // ... until a loss writes it off.
    let loss = Movement {
        id: MovementId::new("loss-OLD").unwrap(),
        sku: SkuCode::new("MILK").unwrap(),
        batch: Some(BatchKey::new("OLD", day(2).parse().ok()).unwrap()),
        kind: MovementKind::Loss,
        quantity: 4,
        reason: "expired".into(),
        reference: "daily check".into(),
        at: later,
    };
    store
        .write(move |c| ledger::record(c, &loss))
        .await
        .unwrap();
    hub::workflows::alerts::run_checks(
        &store,
        &hub::workflows::Site::of(&config),
        &config.alerts,
        later.plus_millis(60_000),
    )
    .await
    .unwrap();
    let open_after = store.read(open_alerts).await.unwrap();
    assert!(
        !open_after.iter().any(|a| a.kind == AlertKind::StockExpired),
        "{open_after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_targets_one_order_and_a_typed_code_alone_is_refused_uncounted() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config(dir.path(), "");
    let store = open(&config);
    let mut tail = order("P7", "777777", 1);
    tail.phone_tail = Some("1234".into());
    tokio::task::block_in_place(|| seed(&store, 10, vec![order("P1", "424242", 1), tail]));
    let now = Timestamp(T0);
    let alone = pickup::check(
        &store,
        &hub::workflows::Site::of(&config),
        "desk-1",
        &CodeEntry::scanned("424242"),
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        alone,
        CodeCheck::Unreadable {
            problem: hub_core::pickup::CodeProblem::NeedsOrderOrPhoneTail
        }
    );
    let huge = pickup::check(
        &store,
        &hub::workflows::Site::of(&config),
        "desk-1",
        &CodeEntry::scanned(&"7".repeat(60_000)),
        now,
    )
    .await
    .unwrap();
    assert!(matches!(huge, CodeCheck::Unreadable { .. }), "{huge:?}");
    let by_tail = CodeEntry {
        code: "777777".into(),
        order_id: None,
        phone_tail: Some("1234".into()),
    };
    assert!(
        pickup::check(
            &store,
            &hub::workflows::Site::of(&config),
            "desk-1",
            &by_tail,
            now
        )
        .await
        .unwrap()
        .is_found()
    );
    // None of that counted as a wrong guess: three real wrong codes still lock.
    for s in 0..3 {
        pickup::check(
            &store,
            &hub::workflows::Site::of(&config),
            "desk-1",
            &entry("P1", "1"),
            Timestamp(T0 + s),
        )
        .await
        .unwrap();
    }
    assert!(matches!(
        pickup::check(
            &store,
            &hub::workflows::Site::of(&config),
            "desk-1",
            &entry("P1", "424242"),
            Timestamp(T0 + 5)
        )
        .await
        .unwrap(),
        CodeCheck::LockedOut { .. }
    ));
    // An undeclared station checks nothing.
    let err = pickup::check(
        &store,
        &hub::workflows::Site::of(&config),
        "desk-99",
        &entry("P1", "424242"),
        now,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("not declared"), "{err}");
    // Where a site allows code-only lookups, a wrong code is one guess per open order.
    let dir2 = tempfile::tempdir().unwrap();
    let (open_config, _) = config_with(
        dir2.path(),
        "[pickup]\nmax_wrong_codes = 3\nallow_code_only = true\n",
    );
    let store2 = open(&open_config);
    tokio::task::block_in_place(|| {
        seed(
            &store2,
            10,
            (0..5)
                .map(|i| order(&format!("P{i}"), &format!("55555{i}"), 1))
                .collect(),
        )
    });
    assert!(
        pickup::check(
            &store2,
            &hub::workflows::Site::of(&open_config),
            "desk-1",
            &CodeEntry::scanned("555553"),
            now
        )
        .await
        .unwrap()
        .is_found()
    );
    pickup::check(
        &store2,
        &hub::workflows::Site::of(&open_config),
        "desk-1",
        &CodeEntry::scanned("000000"),
        now,
    )
    .await
    .unwrap();
    assert!(
        matches!(
            pickup::check(
                &store2,
                &hub::workflows::Site::of(&open_config),
                "desk-1",
                &CodeEntry::scanned("555553"),
                now
            )
            .await
            .unwrap(),
            CodeCheck::LockedOut { .. }
        ),
        "one wrong code compared with five orders is five guesses"
    );
}

/// A config without the fixed `[pickup]` section of [`config`].
fn config_with(dir: &Path, extra: &str) -> (Config, std::path::PathBuf) {
    let text = format!("[site]\nid = \"pp-1\"\n[store]\ndata_dir = \"data\"\n{extra}{STATIONS}");
    let file = dir.join("hub.toml");
    std::fs::write(&file, &text).unwrap();
    (Config::parse(&text, dir).unwrap(), file)
}

#[test]
fn a_supervisor_lifts_a_station_lockout_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (config, file) = config(dir.path(), "");
    let store = open(&config);
    seed(&store, 10, vec![order("P1", "424242", 1)]);
    store.close();
    let hub = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hub"))
            .args(args)
            .arg("--config")
            .arg(&file)
            .output()
            .unwrap()
    };
    for _ in 0..3 {
        let out = hub(&[
            "pickup",
            "check",
            "--station",
            "desk-1",
            "--order",
            "P1",
            "000000",
        ]);
        assert_eq!(out.status.code(), Some(5));
    }
    let locked = hub(&["pickup", "check", "--station", "desk-1", "P1:424242"]);
    assert_eq!(locked.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&locked.stdout).contains("locked"));
    let unlock = hub(&[
        "pickup",
        "unlock",
        "--station",
        "desk-1",
        "--staff",
        "sup-zhang",
    ]);
    assert!(
        unlock.status.success(),
        "{}",
        String::from_utf8_lossy(&unlock.stderr)
    );
    assert!(String::from_utf8_lossy(&unlock.stdout).contains("lifted by sup-zhang"));
    let ok = hub(&["pickup", "check", "--station", "desk-1", "P1:424242"]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let unknown = hub(&["pickup", "check", "--station", "nowhere", "P1:424242"]);
    assert_eq!(
        unknown.status.code(),
        Some(2),
        "an undeclared station is a usage error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_scanned_at_handover_is_found_whichever_form_the_scanner_sends() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config(dir.path(), "[receiving]\nphoto_required = false\n");
    let store = open(&config);
    let sku = milk(true, &["6901234567892"]);
    let now = Timestamp(T0);
    let manifest = hub_core::receiving::Manifest {
        delivery_id: "D1".into(),
        supplier: "Dairy Co".into(),
        expected_at: None,
        lines: vec![hub_core::receiving::ManifestLine {
            expected_count: Some(1),
            ..hub_core::receiving::ManifestLine::unexpected(1, sku.code.clone(), "L1")
        }],
        cancelled: false,
        version: 1,
    };
    store
        .write(move |c| {
            sku_store::upsert(c, &sku, now)?;
            hub::store::deliveries::upsert_manifest(c, &manifest, now)?;
            upsert_order(c, &order("P1", "111111", 1), now)?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let site = hub::workflows::Site::of(&config);
    for code in ["D1/1", "]C10106901234567892\u{1d}21S1"] {
        hub::workflows::receiving::scan(&store, &site, "dock", code, now)
            .await
            .unwrap();
    }
    hub::workflows::receiving::decide(
        &store,
        &hub::workflows::Site::of(&config),
        "D1",
        1,
        "staff-1",
        now,
    )
    .await
    .unwrap();
    assert!(
        pickup::check(
            &store,
            &hub::workflows::Site::of(&config),
            "desk-1",
            &entry("P1", "111111"),
            now
        )
        .await
        .unwrap()
        .is_found()
    );
    // The desk's scanner sends the GS1 data with its AIM identifier, not the printed form.
    let request = HandoverRequest {
        trace_codes: vec!["]C10106901234567892\u{1d}21S1".into()],
        ..Default::default()
    };
    let handover = pickup::handover(
        &store,
        &hub::workflows::Site::of(&config),
        "desk-1",
        "P1",
        request,
        now,
    )
    .await
    .unwrap();
    assert_eq!(handover.trace_codes, vec!["(01)06901234567892(21)S1"]);
}

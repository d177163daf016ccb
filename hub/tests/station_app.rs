//! The station app's HTTP layer against a real SQLite file and a real server on a loopback
//! port: pairing a tablet with a one-time code, signing in with a PIN (and the lockout after
//! wrong ones), refusals of forged, unauthenticated and malformed requests, and a handover
//! through the app that lands in the ledger and the outbox exactly once.

mod support;

use hub::config::Config;
use hub::station_app::{StationApp, feed::StationFeed, hash_pin, router};
use hub::store::pickup_orders::upsert_order;
use hub::store::staff::{self as staff_store, Role, StaffMember};
use hub::store::{Store, StoreError, StoreOptions, ledger, outbox, sku as sku_store};
use hub::workflows::Site;
use hub_core::pickup::{OrderStatus, PickupItem, PickupOrder, hash_code};
use hub_core::{
    BatchKey, Movement, MovementId, MovementKind, SiteId, Sku, SkuCode, StockUnit, Timestamp,
};
use std::net::SocketAddr;
use std::path::Path;
use support::http::request;

const STATIONS: &str = "[[stations]]\nid = \"desk-1\"\nkind = \"pickup\"\nname = \"取货台 1\"\n[[stations]]\nid = \"dock\"\nkind = \"receiving\"\n";

fn config(dir: &Path) -> Config {
    let text = format!(
        "[site]\nid = \"pp-1\"\ntimezone = \"Asia/Shanghai\"\n[store]\ndata_dir = \"data\"\n{STATIONS}"
    );
    Config::parse(&text, dir).unwrap()
}

/// An order open from the epoch to far in the future: the test does not depend on today.
fn order(id: &str, code: &str, quantity: i64) -> PickupOrder {
    let salt = "00112233".to_owned();
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
        opens_at: Timestamp(0),
        closes_at: Timestamp(i64::MAX / 4),
        status: OrderStatus::Open,
        version: 1,
        phone_tail: Some("1234".into()),
    }
}

fn seed(store: &Store) {
    let pin_hash = hash_pin("2468").unwrap();
    let boss_hash = hash_pin("1357").unwrap();
    store
        .write_blocking(move |c| {
            let now = Timestamp(1_000);
            let sku = Sku {
                code: SkuCode::new("MILK").unwrap(),
                name: "鲜牛奶 1L".into(),
                unit: StockUnit::Piece,
                gtins: vec![],
                allow_negative: false,
                check_items_at_handover: false,
                version: 1,
            };
            sku_store::upsert(c, &sku, now)?;
            let m = Movement {
                id: MovementId::new("rcv-1").unwrap(),
                sku: sku.code.clone(),
                batch: Some(BatchKey::new("L1", "2999-01-01".parse().ok()).unwrap()),
                kind: MovementKind::Receipt,
                quantity: 10,
                reason: String::new(),
                reference: "delivery D1".into(),
                at: now,
            };
            ledger::record(c, &m).map_err(|e| match e {
                ledger::RecordError::Store(e) => e,
                other => panic!("{other}"),
            })?;
            upsert_order(c, &order("A1", "123456", 2), now)?;
            upsert_order(c, &order("A2", "654321", 1), now)?;
            for (id, name, role, hash) in [
                ("li", "李小红", Role::Clerk, pin_hash),
                ("wang", "王主管", Role::Supervisor, boss_hash),
            ] {
                staff_store::upsert_staff(
                    c,
                    &StaffMember {
                        staff_id: id.into(),
                        name: name.into(),
                        role,
                        lang: "zh-CN".into(),
                        disabled: false,
                        failed_pins: 0,
                        locked_until: None,
                        pin_hash: hash,
                    },
                    now,
                )?;
            }
            // Valid for a long time: the test does not depend on today.
            staff_store::add_pairing(c, "desk-1", "11223344", now, Timestamp(i64::MAX / 4))?;
            staff_store::add_pairing(c, "desk-1", "55667788", now, Timestamp(i64::MAX / 4))?;
            staff_store::add_pairing(c, "desk-1", "99990000", now, Timestamp(2_000))?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
}

struct Hub {
    addr: SocketAddr,
    store: Store,
    feed: StationFeed,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    dir: tempfile::TempDir,
}

async fn start() -> Hub {
    let dir = tempfile::tempdir().unwrap();
    serve(dir, true).await
}

/// The app over the store in `dir` (seeded first when `fresh`), on a new loopback port, with
/// the screens kept in the store as `hub run` does.
async fn serve(dir: tempfile::TempDir, fresh: bool) -> Hub {
    let config = config(dir.path());
    std::fs::create_dir_all(&config.store.data_dir).unwrap();
    let store = Store::open(
        &config.database_path(),
        config.site.id.as_str(),
        &StoreOptions::default(),
    )
    .unwrap();
    if fresh {
        let s = store.clone();
        tokio::task::spawn_blocking(move || seed(&s)).await.unwrap();
    }
    let feed = StationFeed::durable(store.clone()).await.unwrap();
    let app = StationApp::new(store.clone(), Site::of(&config), feed.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router(app)).await });
    Hub {
        addr,
        store,
        feed,
        server,
        dir,
    }
}

/// Stops the app and closes its store, then starts it again over the same file (a hub
/// restart: nothing survives but what the store kept).
async fn restart(hub: Hub) -> Hub {
    hub.server.abort();
    let _ = hub.server.await;
    let store = hub.store.clone();
    tokio::task::spawn_blocking(move || store.close())
        .await
        .unwrap();
    drop(hub.store);
    serve(hub.dir, false).await
}

fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Pairs a tablet and signs `staff` in; returns the cookies and the page's CSRF token.
async fn paired_and_signed_in(
    hub: &Hub,
    code: &str,
    staff: &str,
    pin: &str,
) -> (String, String, String) {
    let origin = format!("http://{}", hub.addr);
    let paired = request(
        hub.addr,
        "POST",
        "/station/pair",
        &[],
        Some(&origin),
        &format!("code={code}"),
    )
    .await;
    assert_eq!(paired.status, 303, "{}", paired.body);
    let device = paired.cookie("hub_device").expect("device cookie");
    let signed = request(
        hub.addr,
        "POST",
        "/station/signin",
        &[&device],
        Some(&origin),
        &format!("staff={staff}&pin={pin}"),
    )
    .await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let session = signed.cookie("hub_session").expect("session cookie");
    let page = request(hub.addr, "GET", "/station", &[&device, &session], None, "").await;
    assert_eq!(page.status, 200);
    let csrf = page.field("csrf");
    (device, session, csrf)
}

fn handovers(store: &Store) -> (usize, i64) {
    store
        .read_blocking(|c| {
            let events = outbox::pending(c, 0, 10_000)?
                .into_iter()
                .filter(|r| r.kind == "pickup_handed_over")
                .count();
            let on_hand = ledger::balances(c)?
                .into_iter()
                .find(|b| b.sku == "MILK")
                .map(|b| b.on_hand)
                .unwrap_or(0);
            Ok::<_, StoreError>((events, on_hand))
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paired_tablet_signs_in_checks_a_code_and_hands_over_exactly_once() {
    let hub = start().await;
    let origin = format!("http://{}", hub.addr);

    // An unpaired tablet sees the pairing form; a wrong or expired code pairs nothing.
    let first = request(hub.addr, "GET", "/station", &[], None, "").await;
    assert_eq!(first.status, 200);
    assert!(first.body.contains("id=\"pairing-code\""), "{}", first.body);
    assert!(first.body.contains("lang=\"zh-CN\""));
    for wrong in ["00000000", "99990000"] {
        let refused = request(
            hub.addr,
            "POST",
            "/station/pair",
            &[],
            Some(&origin),
            &format!("code={wrong}"),
        )
        .await;
        assert_eq!(refused.status, 400, "{wrong}");
        assert!(
            refused.body.contains("配对码无效或已过期"),
            "{}",
            refused.body
        );
        assert!(refused.cookie("hub_device").is_none());
    }
    // Pairing from another site's page is refused.
    let forged = request(
        hub.addr,
        "POST",
        "/station/pair",
        &[],
        Some("http://evil.example"),
        "code=11223344",
    )
    .await;
    assert_eq!(forged.status, 403);

    // A wrong PIN says how many tries are left; the right one signs in.
    let paired = request(
        hub.addr,
        "POST",
        "/station/pair",
        &[],
        Some(&origin),
        "code=11223344",
    )
    .await;
    assert_eq!(paired.status, 303);
    let device = paired.cookie("hub_device").unwrap();
    let set = paired.header("set-cookie").unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    // The code was for one use only.
    let again = request(
        hub.addr,
        "POST",
        "/station/pair",
        &[],
        Some(&origin),
        "code=11223344",
    )
    .await;
    assert_eq!(again.status, 400);
    let signin = request(hub.addr, "GET", "/station", &[&device], None, "").await;
    assert!(signin.body.contains("id=\"pin\""), "{}", signin.body);
    assert!(signin.body.contains("取货台 1"));
    let wrong = request(
        hub.addr,
        "POST",
        "/station/signin",
        &[&device],
        Some(&origin),
        "staff=li&pin=0000",
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("剩余尝试次数: 4"), "{}", wrong.body);
    // Signing in needs a paired tablet.
    let unpaired = request(
        hub.addr,
        "POST",
        "/station/signin",
        &[],
        Some(&origin),
        "staff=li&pin=2468",
    )
    .await;
    assert_eq!(unpaired.status, 401);
    let signed = request(
        hub.addr,
        "POST",
        "/station/signin",
        &[&device],
        Some(&origin),
        "staff=li&pin=2468",
    )
    .await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let session = signed.cookie("hub_session").unwrap();
    let page = request(hub.addr, "GET", "/station", &[&device, &session], None, "").await;
    assert!(page.body.contains("请扫描顾客的取货码"), "{}", page.body);
    assert!(page.body.contains("李小红"));
    let csrf = page.field("csrf");
    let cookies = [device.as_str(), session.as_str()];

    // Forged and unauthenticated requests change nothing.
    let body = format!("csrf={csrf}&code=A1%3A123456");
    let no_csrf = request(
        hub.addr,
        "POST",
        "/station/pickup/check",
        &cookies,
        Some(&origin),
        "code=A1%3A123456",
    )
    .await;
    assert_eq!(no_csrf.status, 403);
    let bad_csrf = request(
        hub.addr,
        "POST",
        "/station/pickup/check",
        &cookies,
        Some(&origin),
        "csrf=0000&code=A1%3A123456",
    )
    .await;
    assert_eq!(bad_csrf.status, 403);
    let cross = request(
        hub.addr,
        "POST",
        "/station/pickup/check",
        &cookies,
        Some("http://evil.example"),
        &body,
    )
    .await;
    assert_eq!(cross.status, 403);
    let no_origin = request(
        hub.addr,
        "POST",
        "/station/pickup/check",
        &cookies,
        None,
        &body,
    )
    .await;
    assert_eq!(no_origin.status, 403);
    let no_session = request(
        hub.addr,
        "POST",
        "/station/pickup/check",
        &[&device],
        Some(&origin),
        &body,
    )
    .await;
    assert_eq!(no_session.status, 401);
    let malformed = request(
        hub.addr,
        "POST",
        "/station/pickup/handover",
        &cookies,
        Some(&origin),
        &format!("csrf={csrf}"),
    )
    .await;
    assert!(
        (400..500).contains(&malformed.status),
        "{}",
        malformed.status
    );
    let huge = format!("csrf={csrf}&code={}", "9".repeat(100_000));
    let huge = request(
        hub.addr,
        "POST",
        "/station/pickup/check",
        &cookies,
        Some(&origin),
        &huge,
    )
    .await;
    assert_eq!(huge.status, 413);

    // No handover by order number alone.
    let early = request(
        hub.addr,
        "POST",
        "/station/pickup/handover",
        &cookies,
        Some(&origin),
        &format!("csrf={csrf}&order_id=A1&request_id=r-early"),
    )
    .await;
    assert_eq!(early.status, 200);
    assert!(
        early.body.contains("class=\"result error\""),
        "{}",
        early.body
    );
    // Said wholly in zh-CN from the refusal's code, no English detail after it.
    assert!(
        early
            .body
            .contains("A1: 请先在本取货台查询顾客的取货码，再交付"),
        "{}",
        early.body
    );
    assert!(
        !early.body.contains("has not been checked"),
        "{}",
        early.body
    );
    assert_eq!(handovers(&hub.store), (0, 10));

    // A wrong code is red with its zh-CN reason.
    let wrong_code = request(
        hub.addr,
        "POST",
        "/station/pickup/check",
        &cookies,
        Some(&origin),
        &format!("csrf={csrf}&code=000000&extra=A1"),
    )
    .await;
    assert!(
        wrong_code.body.contains("取货码错误"),
        "{}",
        wrong_code.body
    );
    assert!(wrong_code.body.contains("data-tone=\"error\""));

    // The right code shows the order: the SKU's name, the quantity, the phone tail.
    let found = request(
        hub.addr,
        "POST",
        "/station/pickup/check",
        &cookies,
        Some(&origin),
        &body,
    )
    .await;
    assert_eq!(found.status, 200);
    assert!(found.body.contains("data-tone=\"ok\""), "{}", found.body);
    assert!(found.body.contains("鲜牛奶 1L"), "{}", found.body);
    assert!(found.body.contains("id=\"phone-tail\">1234<"));
    assert!(found.body.contains("id=\"hand-over\""));
    let request_id = found.field("request_id");

    // The same handover request twice (a double tap, a retry): applied once.
    let hand = format!("csrf={csrf}&order_id=A1&request_id={}", enc(&request_id));
    for _ in 0..2 {
        let done = request(
            hub.addr,
            "POST",
            "/station/pickup/handover",
            &cookies,
            Some(&origin),
            &hand,
        )
        .await;
        assert_eq!(done.status, 200);
        assert!(done.body.contains("已交付 · A1"), "{}", done.body);
    }
    assert_eq!(handovers(&hub.store), (1, 8));
    let recorded = hub
        .store
        .read_blocking(|c| staff_store::count_actions(c, "li", "pickup_handover"))
        .unwrap();
    assert_eq!(
        recorded, 3,
        "the refused early request and both taps are on record; one handover happened"
    );
    let staff_in_event = hub
        .store
        .read_blocking(|c| outbox::pending(c, 0, 10_000))
        .unwrap()
        .into_iter()
        .find(|r| r.kind == "pickup_handed_over")
        .unwrap()
        .payload;
    assert!(
        staff_in_event.contains("\"staff\":\"li\""),
        "{staff_in_event}"
    );

    // The same code again: already collected, amber, in Chinese.
    let twice = request(
        hub.addr,
        "POST",
        "/station/pickup/check",
        &cookies,
        Some(&origin),
        &body,
    )
    .await;
    assert!(
        twice.body.contains("data-tone=\"attention\""),
        "{}",
        twice.body
    );
    assert!(twice.body.contains("被领取"), "{}", twice.body);
    let ledger = hub.store.read_blocking(ledger::verify).unwrap();
    assert!(ledger.ok());

    // A second tablet on the same station sees the station's current result.
    let (device2, session2, _) = paired_and_signed_in(&hub, "55667788", "wang", "1357").await;
    let current = request(
        hub.addr,
        "GET",
        "/station/pickup/current",
        &[&device2, &session2],
        None,
        "",
    )
    .await;
    assert!(current.body.contains("被领取"), "{}", current.body);

    // Revoking the first tablet ends its access.
    let n = hub
        .store
        .write({
            let id = hub
                .store
                .read(staff_store::devices)
                .await
                .unwrap()
                .into_iter()
                .map(|d| d.device_id)
                .next_back()
                .unwrap();
            move |c| staff_store::revoke(c, &id, Timestamp(5_000))
        })
        .await
        .unwrap();
    assert_eq!(n, 1);
    let after = request(
        hub.addr,
        "POST",
        "/station/pickup/check",
        &cookies,
        Some(&origin),
        &body,
    )
    .await;
    assert_eq!(after.status, 401);
    let home = request(hub.addr, "GET", "/station", &cookies, None, "").await;
    assert!(home.body.contains("id=\"pairing-code\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pins_lock_the_account_even_for_the_right_pin() {
    let hub = start().await;
    let origin = format!("http://{}", hub.addr);
    let paired = request(
        hub.addr,
        "POST",
        "/station/pair",
        &[],
        Some(&origin),
        "code=11223344",
    )
    .await;
    let device = paired.cookie("hub_device").unwrap();
    for left in (0..5).rev() {
        let wrong = request(
            hub.addr,
            "POST",
            "/station/signin",
            &[&device],
            Some(&origin),
            "staff=li&pin=9999",
        )
        .await;
        if left > 0 {
            assert_eq!(wrong.status, 401);
            assert!(
                wrong.body.contains(&format!("剩余尝试次数: {left}")),
                "{}",
                wrong.body
            );
        } else {
            assert_eq!(wrong.status, 429);
            assert!(wrong.body.contains("账号已锁定"), "{}", wrong.body);
        }
    }
    let right = request(
        hub.addr,
        "POST",
        "/station/signin",
        &[&device],
        Some(&origin),
        "staff=li&pin=2468",
    )
    .await;
    assert_eq!(right.status, 429, "{}", right.body);
    assert!(right.cookie("hub_session").is_none());
    // Another staff member on the same tablet is not affected.
    let other = request(
        hub.addr,
        "POST",
        "/station/signin",
        &[&device],
        Some(&origin),
        "staff=wang&pin=1357",
    )
    .await;
    assert_eq!(other.status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_the_tablet_is_still_signed_in_and_shows_the_same_order() {
    let hub = start().await;
    let (device, session, csrf) = paired_and_signed_in(&hub, "11223344", "li", "2468").await;
    let cookies = [device.as_str(), session.as_str()];
    let origin = format!("http://{}", hub.addr);
    let found = request(
        hub.addr,
        "POST",
        "/station/pickup/check",
        &cookies,
        Some(&origin),
        &format!("csrf={csrf}&code=A1%3A123456&extra="),
    )
    .await;
    assert!(found.body.contains("data-tone=\"ok\""), "{}", found.body);

    let hub = restart(hub).await;
    let origin = format!("http://{}", hub.addr);

    // Still signed in, with the same CSRF token, and the order is on screen again.
    let page = request(hub.addr, "GET", "/station", &cookies, None, "").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("李小红"), "{}", page.body);
    assert_eq!(page.field("csrf"), csrf);
    assert!(page.body.contains("鲜牛奶 1L"), "{}", page.body);
    assert!(
        page.body.contains("id=\"phone-tail\">1234<"),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"hand-over\""));

    // The handover works from the restored screen (the check before the restart counts).
    let request_id = page.field("request_id");
    let done = request(
        hub.addr,
        "POST",
        "/station/pickup/handover",
        &cookies,
        Some(&origin),
        &format!("csrf={csrf}&order_id=A1&request_id={}", enc(&request_id)),
    )
    .await;
    assert_eq!(done.status, 200);
    assert!(done.body.contains("已交付 · A1"), "{}", done.body);
    assert_eq!(handovers(&hub.store), (1, 8));

    // ...and that result is what the next restart shows.
    let hub = restart(hub).await;
    let current = request(
        hub.addr,
        "GET",
        "/station/pickup/current",
        &cookies,
        None,
        "",
    )
    .await;
    assert_eq!(current.status, 200);
    assert!(current.body.contains("已交付 · A1"), "{}", current.body);

    // Signing out ends the session for good, restart or not.
    let origin = format!("http://{}", hub.addr);
    let out = request(
        hub.addr,
        "POST",
        "/station/signout",
        &cookies,
        Some(&origin),
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(out.status, 303);
    let hub = restart(hub).await;
    let page = request(hub.addr, "GET", "/station", &cookies, None, "").await;
    assert!(page.body.contains("id=\"pin\""), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_unlocks_a_locked_station_and_a_clerk_may_not() {
    let hub = start().await;
    let origin = format!("http://{}", hub.addr);
    let (device, clerk, csrf) = paired_and_signed_in(&hub, "11223344", "li", "2468").await;
    let cookies = [device.as_str(), clerk.as_str()];

    // Wrong codes until the station locks: a countdown and how to unlock, no unlock button
    // for a clerk.
    let mut locked = None;
    for _ in 0..8 {
        let wrong = request(
            hub.addr,
            "POST",
            "/station/pickup/check",
            &cookies,
            Some(&origin),
            &format!("csrf={csrf}&code=000000&extra=A2"),
        )
        .await;
        if wrong.body.contains("id=\"countdown\"") {
            locked = Some(wrong);
            break;
        }
    }
    let locked = locked.expect("the station locks after wrong codes");
    assert!(locked.body.contains("已锁定"), "{}", locked.body);
    assert!(
        locked.body.contains("data-remaining-ms=\""),
        "{}",
        locked.body
    );
    assert!(
        locked.body.contains("主管可在本平板登录"),
        "{}",
        locked.body
    );
    assert!(!locked.body.contains("id=\"unlock\""), "{}", locked.body);

    // A clerk asking for supervisor actions is refused and nothing changes.
    for path in ["/station/supervisor/unlock", "/station/supervisor/pairing"] {
        let refused = request(
            hub.addr,
            "POST",
            path,
            &cookies,
            Some(&origin),
            &format!("csrf={csrf}"),
        )
        .await;
        assert_eq!(refused.status, 403, "{path}");
        assert!(refused.body.contains("此操作仅限主管"), "{}", refused.body);
    }
    let still = request(
        hub.addr,
        "POST",
        "/station/pickup/check",
        &cookies,
        Some(&origin),
        &format!("csrf={csrf}&code=654321&extra=A2"),
    )
    .await;
    assert!(still.body.contains("已锁定"), "{}", still.body);

    // The clerk signs out; a supervisor signs in on the same tablet and sees the button.
    let out = request(
        hub.addr,
        "POST",
        "/station/signout",
        &cookies,
        Some(&origin),
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(out.status, 303);
    let signed = request(
        hub.addr,
        "POST",
        "/station/signin",
        &[&device],
        Some(&origin),
        "staff=wang&pin=1357",
    )
    .await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let boss = signed.cookie("hub_session").unwrap();
    let cookies = [device.as_str(), boss.as_str()];
    let page = request(hub.addr, "GET", "/station", &cookies, None, "").await;
    assert!(page.body.contains("id=\"unlock\""), "{}", page.body);
    let csrf = page.field("csrf");
    let unlocked = request(
        hub.addr,
        "POST",
        "/station/supervisor/unlock",
        &cookies,
        Some(&origin),
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(unlocked.status, 200, "{}", unlocked.body);
    assert!(
        unlocked.body.contains("取货台已解除锁定"),
        "{}",
        unlocked.body
    );
    let recorded = hub
        .store
        .read_blocking(|c| staff_store::count_actions(c, "wang", "station_unlocked"))
        .unwrap();
    assert_eq!(recorded, 1);
    let found = request(
        hub.addr,
        "POST",
        "/station/pickup/check",
        &cookies,
        Some(&origin),
        &format!("csrf={csrf}&code=654321&extra=A2"),
    )
    .await;
    assert!(found.body.contains("data-tone=\"ok\""), "{}", found.body);

    // A new pairing code for this station, shown once to the supervisor, pairs a tablet.
    let made = request(
        hub.addr,
        "POST",
        "/station/supervisor/pairing",
        &cookies,
        Some(&origin),
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let start = made.body.find("id=\"pairing-code-shown\">").unwrap() + 24;
    let code = &made.body[start..start + 8];
    assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code}");
    let paired = request(
        hub.addr,
        "POST",
        "/station/pair",
        &[],
        Some(&origin),
        &format!("code={code}"),
    )
    .await;
    assert_eq!(paired.status, 303, "{}", paired.body);
}

fn movements_of(store: &Store, kind: &str) -> i64 {
    let kind = kind.to_owned();
    store
        .read_blocking(move |c| {
            c.query_row(
                "SELECT COUNT(*) FROM movement WHERE kind = ?1 AND reference = 'pickup order A1'",
                [kind],
                |r| r.get(0),
            )
            .map_err(|e| StoreError::from_sqlite(Path::new("test"), e))
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_undoes_a_handover_and_the_stock_comes_back() {
    let hub = start().await;
    let origin = format!("http://{}", hub.addr);
    let (device, clerk, csrf) = paired_and_signed_in(&hub, "11223344", "li", "2468").await;
    let cookies = [device.as_str(), clerk.as_str()];
    let check = format!("csrf={csrf}&code=A1%3A123456&extra=");
    let found = request(
        hub.addr,
        "POST",
        "/station/pickup/check",
        &cookies,
        Some(&origin),
        &check,
    )
    .await;
    let request_id = found.field("request_id");
    let done = request(
        hub.addr,
        "POST",
        "/station/pickup/handover",
        &cookies,
        Some(&origin),
        &format!("csrf={csrf}&order_id=A1&request_id={}", enc(&request_id)),
    )
    .await;
    assert!(done.body.contains("已交付 · A1"), "{}", done.body);
    assert!(
        !done.body.contains("id=\"undo\""),
        "a clerk has no undo button"
    );
    assert_eq!(handovers(&hub.store), (1, 8));

    // A clerk may not undo.
    let refused = request(
        hub.addr,
        "POST",
        "/station/supervisor/undo",
        &cookies,
        Some(&origin),
        &format!("csrf={csrf}&order_id=A1&reason=wrong_customer"),
    )
    .await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("此操作仅限主管"), "{}", refused.body);
    assert_eq!(handovers(&hub.store), (1, 8));

    // The supervisor signs in on this tablet and sees the handover with an undo button.
    request(
        hub.addr,
        "POST",
        "/station/signout",
        &cookies,
        Some(&origin),
        &format!("csrf={csrf}"),
    )
    .await;
    let signed = request(
        hub.addr,
        "POST",
        "/station/signin",
        &[&device],
        Some(&origin),
        "staff=wang&pin=1357",
    )
    .await;
    let boss = signed.cookie("hub_session").unwrap();
    let cookies = [device.as_str(), boss.as_str()];
    let page = request(hub.addr, "GET", "/station", &cookies, None, "").await;
    assert!(page.body.contains("id=\"undo\""), "{}", page.body);
    assert!(page.body.contains("交给了错误的顾客"), "{}", page.body);
    let csrf = page.field("csrf");

    // A reason not on the list is refused; then the undo itself.
    let bad = request(
        hub.addr,
        "POST",
        "/station/supervisor/undo",
        &cookies,
        Some(&origin),
        &format!("csrf={csrf}&order_id=A1&reason=felt+like+it"),
    )
    .await;
    assert_eq!(bad.status, 400);
    let undo = format!("csrf={csrf}&order_id=A1&reason=wrong_customer");
    let undone = request(
        hub.addr,
        "POST",
        "/station/supervisor/undo",
        &cookies,
        Some(&origin),
        &undo,
    )
    .await;
    assert_eq!(undone.status, 200, "{}", undone.body);
    assert!(undone.body.contains("已撤销交付"), "{}", undone.body);
    // Stock is back with a return movement; the original issue stays in the journal.
    assert_eq!(handovers(&hub.store).1, 10);
    assert_eq!(movements_of(&hub.store, "issue"), 1);
    assert_eq!(movements_of(&hub.store, "return"), 1);
    let event = hub
        .store
        .read_blocking(|c| {
            Ok::<_, StoreError>(
                outbox::pending(c, 0, 10_000)?
                    .into_iter()
                    .find(|r| r.kind == "pickup_handover_undone")
                    .map(|r| r.payload),
            )
        })
        .unwrap()
        .expect("an upstream event");
    assert!(event.contains("\"staff\":\"wang\""), "{event}");
    assert!(event.contains("\"reason\":\"wrong_customer\""), "{event}");

    // Once only.
    let again = request(
        hub.addr,
        "POST",
        "/station/supervisor/undo",
        &cookies,
        Some(&origin),
        &undo,
    )
    .await;
    assert_eq!(again.status, 409);
    assert!(again.body.contains("未交付或已撤销"), "{}", again.body);
    assert_eq!(movements_of(&hub.store, "return"), 1);

    // The order is open again: a new check, a new handover takes the stock again.
    let found = request(
        hub.addr,
        "POST",
        "/station/pickup/check",
        &cookies,
        Some(&origin),
        &format!("csrf={csrf}&code=A1%3A123456&extra="),
    )
    .await;
    assert!(found.body.contains("data-tone=\"ok\""), "{}", found.body);
    let request_id = found.field("request_id");
    let done = request(
        hub.addr,
        "POST",
        "/station/pickup/handover",
        &cookies,
        Some(&origin),
        &format!("csrf={csrf}&order_id=A1&request_id={}", enc(&request_id)),
    )
    .await;
    assert!(done.body.contains("已交付 · A1"), "{}", done.body);
    assert_eq!(handovers(&hub.store), (2, 8));
    assert_eq!(movements_of(&hub.store, "issue"), 2);
    // The report counts what left once: the undone handover's issue was returned.
    assert_eq!(report_today(&hub.store), (Some(1.0), 1));

    // Past the undo window the store refuses (time is an argument: no waiting).
    let late = hub
        .store
        .write(|c| {
            Ok::<_, StoreError>(hub::store::handover_undo::undo_handover(
                c,
                "A1",
                "wang",
                "clerk_mistake",
                60_000,
                Timestamp(i64::MAX / 2),
            ))
        })
        .await
        .unwrap();
    assert!(
        matches!(
            late,
            Err(hub::store::handover_undo::UndoError::Refused {
                refusal: hub_core::pickup::UndoRefusal::TooLate { .. },
                ..
            })
        ),
        "{late:?}"
    );
    assert_eq!(handovers(&hub.store).1, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scanned_items_tick_their_line_and_wrong_ones_are_red_with_their_reason() {
    let hub = start().await;
    hub.store
        .write(|c| {
            for (code, sku, status) in [
                ("TC-1", "MILK", "in_stock"),
                ("TC-2", "MILK", "in_stock"),
                ("TC-3", "MILK", "in_stock"),
                ("TC-Q", "MILK", "quarantined"),
                ("TC-EGG", "EGGS", "in_stock"),
            ] {
                c.execute(
                    "INSERT INTO trace_code (code, sku, lot, status, bound_at, updated_at) VALUES (?1, ?2, 'L1', ?3, 0, 0)",
                    [code, sku, status],
                )
                .map_err(|e| StoreError::from_sqlite(Path::new("test"), e))?;
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let origin = format!("http://{}", hub.addr);
    let (device, session, csrf) = paired_and_signed_in(&hub, "11223344", "li", "2468").await;
    let cookies = [device.as_str(), session.as_str()];
    let post = |path: &'static str, body: String| {
        let cookies = cookies.map(str::to_owned);
        let origin = origin.clone();
        let addr = hub.addr;
        async move {
            let c: Vec<&str> = cookies.iter().map(String::as_str).collect();
            request(addr, "POST", path, &c, Some(&origin), &body).await
        }
    };

    // No order on screen: scan the pickup code first.
    let early = post("/station/pickup/item", format!("csrf={csrf}&code=TC-1")).await;
    assert_eq!(early.status, 409);
    assert!(
        early.body.contains("请先扫描顾客的取货码"),
        "{}",
        early.body
    );

    let found = post(
        "/station/pickup/check",
        format!("csrf={csrf}&code=A1%3A123456&extra="),
    )
    .await;
    assert!(found.body.contains("id=\"tick-1\">0/2<"), "{}", found.body);
    let ticked = post("/station/pickup/item", format!("csrf={csrf}&code=TC-1")).await;
    assert!(ticked.body.contains("data-tone=\"ok\""), "{}", ticked.body);
    assert!(
        ticked.body.contains("id=\"tick-1\">1/2<"),
        "{}",
        ticked.body
    );
    // The same item again ticks nothing more.
    let again = post("/station/pickup/item", format!("csrf={csrf}&code=TC-1")).await;
    assert!(again.body.contains("id=\"tick-1\">1/2<"), "{}", again.body);
    // Wrong item, quarantined, unknown: red with the reason in zh-CN, nothing ticked.
    for (code, words) in [
        ("TC-EGG", "错货：此商品不在该订单中"),
        ("TC-Q", "该商品被隔离，不能交付"),
        ("NOPE-1", "未知追溯码"),
    ] {
        let red = post("/station/pickup/item", format!("csrf={csrf}&code={code}")).await;
        assert!(
            red.body.contains("data-tone=\"error\""),
            "{code}: {}",
            red.body
        );
        assert!(red.body.contains(words), "{code}: {}", red.body);
        assert!(red.body.contains("id=\"tick-1\">1/2<"), "{}", red.body);
        // The red headline says what is wrong, never "hand over".
        assert!(
            red.body.contains(&format!("<span id=\"verdict\">{words}")),
            "{code}: {}",
            red.body
        );
        assert!(!red.body.contains("确认交付 · A1"), "{code}: {}", red.body);
    }
    let full = post("/station/pickup/item", format!("csrf={csrf}&code=TC-2")).await;
    assert!(full.body.contains("id=\"tick-1\">✔ 2/2<"), "{}", full.body);
    let over = post("/station/pickup/item", format!("csrf={csrf}&code=TC-3")).await;
    assert!(over.body.contains("该行商品已全部核对"), "{}", over.body);

    // The ticked items leave with the handover.
    let request_id = full.field("request_id");
    let done = post(
        "/station/pickup/handover",
        format!("csrf={csrf}&order_id=A1&request_id={}", enc(&request_id)),
    )
    .await;
    assert!(done.body.contains("已交付 · A1"), "{}", done.body);
    let (statuses, event) = hub
        .store
        .read_blocking(|c| {
            let mut st = c
                .prepare("SELECT code, status FROM trace_code WHERE code IN ('TC-1','TC-2','TC-3') ORDER BY code")
                .map_err(|e| StoreError::from_sqlite(Path::new("test"), e))?;
            let rows: Vec<(String, String)> = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|r| r.collect())
                .map_err(|e| StoreError::from_sqlite(Path::new("test"), e))?;
            let event = outbox::pending(c, 0, 10_000)?
                .into_iter()
                .find(|r| r.kind == "pickup_handed_over")
                .map(|r| r.payload)
                .unwrap_or_default();
            Ok::<_, StoreError>((rows, event))
        })
        .unwrap();
    assert_eq!(
        statuses,
        vec![
            ("TC-1".to_owned(), "handed_over".to_owned()),
            ("TC-2".to_owned(), "handed_over".to_owned()),
            ("TC-3".to_owned(), "in_stock".to_owned()),
        ]
    );
    assert!(event.contains("TC-1") && event.contains("TC-2"), "{event}");

    // On the next order, an item already handed over is red with its reason.
    post(
        "/station/pickup/check",
        format!("csrf={csrf}&code=A2%3A654321&extra="),
    )
    .await;
    let gone = post("/station/pickup/item", format!("csrf={csrf}&code=TC-1")).await;
    assert!(
        gone.body.contains("该商品已随其他订单交付"),
        "{}",
        gone.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_peak_mode_codes_scanned_in_a_row_queue_and_are_handed_over_in_turn() {
    let hub = start().await;
    let (device, session, csrf) = paired_and_signed_in(&hub, "11223344", "li", "2468").await;
    let cookies = [device.as_str(), session.as_str()];
    let origin = format!("http://{}", hub.addr);
    let check = |code: &'static str| {
        let body = format!("csrf={csrf}&code={code}&extra=");
        let origin = origin.clone();
        let addr = hub.addr;
        let cookies = cookies.map(str::to_owned);
        async move {
            let c: Vec<&str> = cookies.iter().map(String::as_str).collect();
            request(
                addr,
                "POST",
                "/station/pickup/check",
                &c,
                Some(&origin),
                &body,
            )
            .await
        }
    };
    check("A1%3A123456").await;
    // The second customer's code while A1 is on screen: A1 stays, A2 waits.
    let queued = check("A2%3A654321").await;
    assert!(queued.body.contains("确认交付 · A1"), "{}", queued.body);
    assert!(
        queued.body.contains("id=\"queue\">排队中 (1): A2<"),
        "{}",
        queued.body
    );

    // The queue survives a restart.
    let hub = restart(hub).await;
    let origin = format!("http://{}", hub.addr);
    let page = request(hub.addr, "GET", "/station", &cookies, None, "").await;
    assert!(page.body.contains("排队中 (1): A2"), "{}", page.body);

    // Handing A1 over brings A2 on screen; then A2 is handed over in turn.
    for order in ["A1", "A2"] {
        let page = request(hub.addr, "GET", "/station", &cookies, None, "").await;
        assert!(
            page.body.contains(&format!("确认交付 · {order}")),
            "{}",
            page.body
        );
        let done = request(
            hub.addr,
            "POST",
            "/station/pickup/handover",
            &cookies,
            Some(&origin),
            &format!(
                "csrf={csrf}&order_id={order}&request_id={}",
                enc(&page.field("request_id"))
            ),
        )
        .await;
        assert_eq!(done.status, 200, "{}", done.body);
    }
    let last = request(
        hub.addr,
        "GET",
        "/station/pickup/current",
        &cookies,
        None,
        "",
    )
    .await;
    assert!(last.body.contains("已交付 · A2"), "{}", last.body);
    assert!(!last.body.contains("id=\"queue\""), "{}", last.body);
    assert_eq!(handovers(&hub.store), (2, 7));
}

/// The counter's scanner as the serial and MQTT adapters report it: the real device
/// dispatcher, fed over its channel. Returns the sender (one scan per call of `scan`).
fn counter_scanner(hub: &Hub) -> tokio::sync::mpsc::Sender<hub::devices::DeviceEvent> {
    let text = format!(
        "[site]\nid = \"pp-1\"\ntimezone = \"Asia/Shanghai\"\n[store]\ndata_dir = \"data\"\n{STATIONS}[[devices]]\nname = \"desk-scanner\"\nkind = \"scanner\"\npath = \"/dev/null\"\nstation = \"desk-1\"\nrole = \"pickup\"\n[[devices]]\nname = \"desk-scale\"\nkind = \"scale\"\npath = \"/dev/null\"\nprotocol = \"mt-sics\"\nstation = \"desk-1\"\nrole = \"pickup\"\n"
    );
    let config = Config::parse(&text, hub.dir.path()).unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let devices = hub::devices::dispatch::Devices {
        site: Site::of(&config),
        configs: config.devices.clone(),
        feed: hub.feed.clone(),
    };
    let board = hub::devices::HealthBoard::new(&config.devices);
    tokio::spawn(hub::devices::dispatch::run(
        rx,
        hub.store.clone(),
        devices,
        board,
        tokio_util::sync::CancellationToken::new(),
    ));
    tx
}

async fn scan_on_counter(tx: &tokio::sync::mpsc::Sender<hub::devices::DeviceEvent>, text: &str) {
    let site = Site::of(&config(Path::new("/")));
    let scan = hub::codes::Scanned {
        text: text.to_owned(),
        code: hub::codes::classify_text(text, &site.patterns),
        raw: text.to_owned(),
    };
    tx.send(hub::devices::DeviceEvent::Scan {
        device: "desk-scanner".into(),
        scan: Box::new(scan),
    })
    .await
    .unwrap();
}

/// The station's screen once it shows `expected` (the dispatcher works in the background).
async fn screen_showing(hub: &Hub, cookies: &[&str], expected: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let page = request(
            hub.addr,
            "GET",
            "/station/pickup/current",
            cookies,
            None,
            "",
        )
        .await;
        if page.body.contains(expected) {
            return page.body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the screen never showed {expected:?}: {}",
            page.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_code_on_the_counters_scanner_ticks_the_order_on_screen_like_a_wedge_scan() {
    let hub = start().await;
    hub.store
        .write(|c| {
            for (code, sku) in [("TC-1", "MILK"), ("TC-2", "MILK"), ("TC-EGG", "EGGS")] {
                c.execute(
                    "INSERT INTO trace_code (code, sku, lot, status, bound_at, updated_at) VALUES (?1, ?2, 'L1', 'in_stock', 0, 0)",
                    [code, sku],
                )
                .map_err(|e| StoreError::from_sqlite(Path::new("test"), e))?;
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let (device, session, csrf) = paired_and_signed_in(&hub, "11223344", "li", "2468").await;
    let cookies = [device.as_str(), session.as_str()];
    let scanner = counter_scanner(&hub);

    // The customer's QR on the counter's scanner puts the order on screen.
    scan_on_counter(&scanner, "A1:123456").await;
    screen_showing(&hub, &cookies, "id=\"tick-1\">0/2<").await;
    // A trace code on the same scanner ticks its line (it is no code guess).
    scan_on_counter(&scanner, "TC-1").await;
    let ticked = screen_showing(&hub, &cookies, "id=\"tick-1\">1/2<").await;
    assert!(ticked.contains("确认交付 · A1"), "{ticked}");
    // A wrong item is red with its reason; the order stays on screen.
    scan_on_counter(&scanner, "TC-EGG").await;
    let red = screen_showing(&hub, &cookies, "错货：此商品不在该订单中").await;
    assert!(red.contains("data-tone=\"error\""), "{red}");
    assert!(red.contains("id=\"tick-1\">1/2<"), "{red}");
    // Another customer's QR queues behind the order on screen.
    scan_on_counter(&scanner, "A2:654321").await;
    let queued = screen_showing(&hub, &cookies, "排队中 (1): A2").await;
    assert!(queued.contains("id=\"tick-1\">1/2<"), "{queued}");

    // A keyboard-wedge scan goes through the same rule: an item ticks, a QR queues.
    let origin = format!("http://{}", hub.addr);
    let wedge = request(
        hub.addr,
        "POST",
        "/station/pickup/scan",
        &cookies,
        Some(&origin),
        &format!("csrf={csrf}&code=TC-2"),
    )
    .await;
    assert!(
        wedge.body.contains("id=\"tick-1\">✔ 2/2<"),
        "{}",
        wedge.body
    );

    // The scans are journaled as device input: the items as applied or refused, never as
    // failed code checks (no try of the station was used up). A code that checked out is
    // journaled a few seconds later: closing the store commits it, numbered
    // then, so the journal is read in the order the scans came.
    let store = hub.store.clone();
    tokio::task::spawn_blocking(move || store.close())
        .await
        .unwrap();
    let journal = hub
        .store
        .read_blocking(|c| {
            let mut st = c
                .prepare(
                    "SELECT code, outcome FROM device_input WHERE kind = 'scan'
                     ORDER BY received_at, id",
                )
                .map_err(|e| StoreError::from_sqlite(Path::new("test"), e))?;
            let rows: Vec<(String, String)> = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|r| r.collect())
                .map_err(|e| StoreError::from_sqlite(Path::new("test"), e))?;
            Ok::<_, StoreError>(rows)
        })
        .unwrap();
    assert_eq!(
        journal,
        vec![
            ("A1:123456".to_owned(), "applied".to_owned()),
            ("TC-1".to_owned(), "applied".to_owned()),
            ("TC-EGG".to_owned(), "refused".to_owned()),
            ("A2:654321".to_owned(), "applied".to_owned()),
        ]
    );
}

/// The report's order figures for the site's day of `now` (whatever day the test runs).
fn report_today(store: &Store) -> (Option<f64>, i64) {
    let site = Site::of(&config(Path::new("/")));
    let today = site.today(hub::clock::now());
    store
        .read_blocking(move |c| {
            let r = hub::store::report::compute(
                c,
                today,
                today + chrono::Duration::days(1),
                site.timezone,
                3,
                hub::clock::now(),
            )?;
            Ok::<_, StoreError>((r.order_fill_rate, r.handovers))
        })
        .unwrap()
}

fn outbox_of(store: &Store, kind: &'static str) -> Vec<String> {
    store
        .read_blocking(move |c| {
            Ok::<_, StoreError>(
                outbox::pending(c, 0, 10_000)?
                    .into_iter()
                    .filter(|r| r.kind == kind)
                    .map(|r| r.payload)
                    .collect::<Vec<_>>(),
            )
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_handover_takes_what_is_ticked_and_a_later_check_collects_the_rest() {
    let hub = start().await;
    hub.store
        .write(|c| {
            for code in ["TC-1", "TC-2"] {
                c.execute(
                    "INSERT INTO trace_code (code, sku, lot, status, bound_at, updated_at) VALUES (?1, 'MILK', 'L1', 'in_stock', 0, 0)",
                    [code],
                )
                .map_err(|e| StoreError::from_sqlite(Path::new("test"), e))?;
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let origin = format!("http://{}", hub.addr);
    let (device, session, csrf) = paired_and_signed_in(&hub, "11223344", "li", "2468").await;
    let cookies = [device.as_str(), session.as_str()];
    let post = |path: &'static str, body: String| {
        let cookies = cookies.map(str::to_owned);
        let origin = origin.clone();
        let addr = hub.addr;
        async move {
            let c: Vec<&str> = cookies.iter().map(String::as_str).collect();
            request(addr, "POST", path, &c, Some(&origin), &body).await
        }
    };

    post(
        "/station/pickup/check",
        format!("csrf={csrf}&code=A1%3A123456&extra="),
    )
    .await;
    // Nothing ticked: a partial handover has nothing to take.
    let none = post(
        "/station/pickup/handover",
        format!("csrf={csrf}&order_id=A1&request_id=p0&ticked_only=1"),
    )
    .await;
    assert_eq!(none.status, 409, "{}", none.body);
    assert!(none.body.contains("还没有核对任何商品"), "{}", none.body);
    let ticked = post("/station/pickup/item", format!("csrf={csrf}&code=TC-1")).await;
    assert!(
        ticked.body.contains("id=\"hand-over-ticked\""),
        "{}",
        ticked.body
    );
    let partly = post(
        "/station/pickup/handover",
        format!("csrf={csrf}&order_id=A1&request_id=p1&ticked_only=1"),
    )
    .await;
    assert!(partly.body.contains("部分交付 · A1"), "{}", partly.body);
    assert!(partly.body.contains("第 1 行 ×1"), "{}", partly.body);
    // One milk left: stock and the upstream event say so; the order is not collected yet.
    assert_eq!(handovers(&hub.store), (0, 9));
    let part_events = outbox_of(&hub.store, "pickup_partly_handed_over");
    assert_eq!(part_events.len(), 1);
    assert!(
        part_events[0].contains("\"open\":[1]"),
        "{}",
        part_events[0]
    );
    assert!(
        part_events[0].contains("\"handed_over\":1"),
        "{}",
        part_events[0]
    );
    assert_eq!(report_today(&hub.store), (None, 0));

    // The rest needs the code checked again; then it shows what is still open.
    let unchecked = post(
        "/station/pickup/handover",
        format!("csrf={csrf}&order_id=A1&request_id=p2"),
    )
    .await;
    assert!(
        unchecked.body.contains("请先在本取货台查询顾客的取货码"),
        "{}",
        unchecked.body
    );
    let again = post(
        "/station/pickup/check",
        format!("csrf={csrf}&code=A1%3A123456&extra="),
    )
    .await;
    assert!(again.body.contains("确认交付 · A1"), "{}", again.body);
    assert!(again.body.contains("id=\"tick-1\">0/1<"), "{}", again.body);
    // The item already gone with the first part may not tick again.
    let gone = post("/station/pickup/item", format!("csrf={csrf}&code=TC-1")).await;
    assert!(gone.body.contains("id=\"tick-1\">0/1<"), "{}", gone.body);
    post("/station/pickup/item", format!("csrf={csrf}&code=TC-2")).await;
    let done = post(
        "/station/pickup/handover",
        format!("csrf={csrf}&order_id=A1&request_id=p3"),
    )
    .await;
    assert!(done.body.contains("已交付 · A1"), "{}", done.body);
    // Collected: one whole handover upstream (the sum of the parts), two milks out of stock,
    // and the report counts the order once, filled.
    assert_eq!(handovers(&hub.store), (1, 8));
    let whole = outbox_of(&hub.store, "pickup_handed_over");
    assert!(whole[0].contains("\"handed_over\":2"), "{}", whole[0]);
    assert!(
        whole[0].contains("TC-1") && whole[0].contains("TC-2"),
        "{}",
        whole[0]
    );
    assert_eq!(report_today(&hub.store), (Some(1.0), 1));
    // A third handover finds the order collected.
    let third = post(
        "/station/pickup/handover",
        format!("csrf={csrf}&order_id=A1&request_id=p4"),
    )
    .await;
    assert!(!third.body.contains("部分交付"), "{}", third.body);
    assert_eq!(handovers(&hub.store), (1, 8));
}

async fn weigh_on_counter(tx: &tokio::sync::mpsc::Sender<hub::devices::DeviceEvent>, grams: i64) {
    tx.send(hub::devices::DeviceEvent::StableWeight {
        device: "desk-scale".into(),
        grams,
        raw: format!("S S {grams} g"),
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counter_scale_weighs_a_by_weight_line_live_and_the_weight_goes_with_the_handover() {
    let hub = start().await;
    hub.store
        .write(|c| {
            let now = Timestamp(1_000);
            let pork = Sku {
                code: SkuCode::new("PORK").unwrap(),
                name: "五花肉".into(),
                unit: StockUnit::Gram,
                gtins: vec![],
                allow_negative: false,
                check_items_at_handover: false,
                version: 1,
            };
            sku_store::upsert(c, &pork, now)?;
            ledger::record(
                c,
                &Movement {
                    id: MovementId::new("rcv-pork").unwrap(),
                    sku: pork.code.clone(),
                    batch: Some(BatchKey::new("P1", "2999-01-01".parse().ok()).unwrap()),
                    kind: MovementKind::Receipt,
                    quantity: 5_000,
                    reason: String::new(),
                    reference: "delivery D2".into(),
                    at: now,
                },
            )
            .map_err(|e| match e {
                ledger::RecordError::Store(e) => e,
                other => panic!("{other}"),
            })?;
            let mut o = order("A3", "333333", 1);
            o.items.push(PickupItem {
                sku: pork.code.clone(),
                quantity: 500,
                lot: None,
                trace_codes: vec![],
                // 30.00 a kilogram, as central sent it with the order.
                unit_price_cents: Some(3_000),
            });
            upsert_order(c, &o, now)?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let origin = format!("http://{}", hub.addr);
    let (device, session, csrf) = paired_and_signed_in(&hub, "11223344", "li", "2468").await;
    let cookies = [device.as_str(), session.as_str()];
    let devices = counter_scanner(&hub);

    // No order on screen: the weight fills nothing and the screen is left alone.
    weigh_on_counter(&devices, 120).await;
    scan_on_counter(&devices, "A3:333333").await;
    screen_showing(&hub, &cookies, "确认交付 · A3").await;
    // The pork on the scale: its line shows weighed vs ordered and the price difference,
    // with where the price comes from; the order stays on screen.
    weigh_on_counter(&devices, 540).await;
    let weighed = screen_showing(&hub, &cookies, "id=\"weighed-2\">⚖ 称重 540 克").await;
    assert!(weighed.contains("订购 500 克"), "{weighed}");
    assert!(
        weighed.contains("差价 +¥1.20（按订单单价 ¥30.00"),
        "{weighed}"
    );
    assert!(weighed.contains("确认交付 · A3"), "{weighed}");
    // Every by-weight line is weighed: another weight fills nothing, and says so.
    weigh_on_counter(&devices, 777).await;
    let extra = screen_showing(&hub, &cookies, "秤上 777 克").await;
    assert!(extra.contains("称重 540 克"), "{extra}");

    let page = request(hub.addr, "GET", "/station", &cookies, None, "").await;
    let done = request(
        hub.addr,
        "POST",
        "/station/pickup/handover",
        &cookies,
        Some(&origin),
        &format!(
            "csrf={csrf}&order_id=A3&request_id={}",
            enc(&page.field("request_id"))
        ),
    )
    .await;
    assert!(done.body.contains("已交付 · A3"), "{}", done.body);
    let event = outbox_of(&hub.store, "pickup_handed_over");
    assert!(event[0].contains("\"weighed_g\":540"), "{}", event[0]);
    assert!(
        event[0].contains("\"price_difference_cents\":120"),
        "{}",
        event[0]
    );
    let pork_left = hub
        .store
        .read_blocking(|c| {
            Ok::<_, StoreError>(
                ledger::balances(c)?
                    .into_iter()
                    .find(|b| b.sku == "PORK")
                    .map(|b| b.on_hand)
                    .unwrap_or(0),
            )
        })
        .unwrap();
    assert_eq!(pork_left, 5_000 - 540);
    // The weights are journaled as device input at the counter.
    let journal: Vec<(i64, String)> = hub
        .store
        .read_blocking(|c| {
            let mut st = c
                .prepare(
                    "SELECT grams, outcome FROM device_input WHERE kind = 'weight' ORDER BY id",
                )
                .map_err(|e| StoreError::from_sqlite(Path::new("test"), e))?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|r| r.collect())
                .map_err(|e| StoreError::from_sqlite(Path::new("test"), e))?;
            Ok::<_, StoreError>(rows)
        })
        .unwrap();
    assert_eq!(
        journal,
        vec![
            (120, "refused".to_owned()),
            (540, "applied".to_owned()),
            (777, "applied".to_owned())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bag_that_weighs_wrong_turns_the_screen_amber_and_names_the_missing_item() {
    let hub = start().await;
    // The master data says what one milk weighs.
    hub.store
        .write(|c| hub::store::unit_weights::set(c, "MILK", Some(1_030)))
        .await
        .unwrap();
    let (device, session, _csrf) = paired_and_signed_in(&hub, "11223344", "li", "2468").await;
    let cookies = [device.as_str(), session.as_str()];
    let devices = counter_scanner(&hub);
    scan_on_counter(&devices, "A1:123456").await;
    screen_showing(&hub, &cookies, "确认交付 · A1").await;

    // Two milks ordered (2,060 g); the bag on the scale weighs one milk: amber, named.
    weigh_on_counter(&devices, 1_035).await;
    let short = screen_showing(&hub, &cookies, "重量不符").await;
    assert!(short.contains("data-tone=\"attention\""), "{short}");
    assert!(
        short.contains("秤上 1035 克，应为 2060 克（±30 克）"),
        "{short}"
    );
    assert!(short.contains("可能少了：鲜牛奶 1L ×1"), "{short}");
    assert!(short.contains("重量不符，请核对 · A1"), "{short}");
    // Both milks in the bag: it matches, green, and the order can be handed over.
    weigh_on_counter(&devices, 2_075).await;
    let right = screen_showing(&hub, &cookies, "袋重相符").await;
    assert!(right.contains("data-tone=\"ok\""), "{right}");
    assert!(right.contains("确认交付 · A1"), "{right}");
    // A third milk slipped in: likely extra.
    weigh_on_counter(&devices, 3_090).await;
    let extra = screen_showing(&hub, &cookies, "可能多了：鲜牛奶 1L ×1").await;
    assert!(extra.contains("data-tone=\"attention\""), "{extra}");
}

/// Movements of `kind` referring to `reference`.
fn movements_with(store: &Store, kind: &str, reference: &str) -> i64 {
    let (kind, reference) = (kind.to_owned(), reference.to_owned());
    store
        .read_blocking(move |c| {
            c.query_row(
                "SELECT COUNT(*) FROM movement WHERE kind = ?1 AND reference = ?2",
                [kind, reference],
                |r| r.get(0),
            )
            .map_err(|e| StoreError::from_sqlite(Path::new("test"), e))
        })
        .unwrap()
}

/// An order of two milk lines (2 and 1), code 777777.
fn two_line_order(id: &str) -> PickupOrder {
    let mut o = order(id, "777777", 2);
    let mut second = o.items[0].clone();
    second.quantity = 1;
    o.items.push(second);
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_refuses_one_line_on_the_tablet_once_and_hands_over_the_rest() {
    let hub = start().await;
    hub.store
        .write(|c| upsert_order(c, &two_line_order("B1"), Timestamp(1_000)).map(|_| ()))
        .await
        .unwrap();
    let origin = format!("http://{}", hub.addr);
    let (device, session, csrf) = paired_and_signed_in(&hub, "11223344", "li", "2468").await;
    let cookies = [device.as_str(), session.as_str()];
    let post = |path: &'static str, body: String| {
        let cookies = cookies.map(str::to_owned);
        let origin = origin.clone();
        let addr = hub.addr;
        async move {
            let c: Vec<&str> = cookies.iter().map(String::as_str).collect();
            request(addr, "POST", path, &c, Some(&origin), &body).await
        }
    };
    let found = post(
        "/station/pickup/check",
        format!("csrf={csrf}&code=B1%3A777777&extra="),
    )
    .await;
    assert!(found.body.contains("id=\"refuse-line\""), "{}", found.body);
    assert!(found.body.contains("商品破损 → 报损"), "{}", found.body);

    // One damaged milk of line 1: written off at once, the rest stays on screen.
    let refuse =
        format!("csrf={csrf}&order_id=B1&request_id=lr1&line_no=1&quantity=1&reason=damaged");
    let refused = post("/station/pickup/refuse-line", refuse.clone()).await;
    assert_eq!(refused.status, 200, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("第 1 行 鲜牛奶 1L ×1 已拒收: 商品破损 → 报损"),
        "{}",
        refused.body
    );
    assert!(
        refused
            .body
            .contains("id=\"refused-1\">✖ 已拒收 ×1 · 报损<"),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("id=\"hand-over\""),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("id=\"tick-1\">0/1<"),
        "{}",
        refused.body
    );
    assert_eq!(handovers(&hub.store), (0, 9));
    assert_eq!(
        movements_with(&hub.store, "loss", "pickup order B1-refused"),
        1
    );
    // The same request again (a double tap, a retry) changes nothing.
    let again = post("/station/pickup/refuse-line", refuse).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(handovers(&hub.store), (0, 9));
    assert_eq!(
        movements_with(&hub.store, "loss", "pickup order B1-refused"),
        1
    );
    let parts = outbox_of(&hub.store, "pickup_partly_handed_over");
    assert_eq!(parts.len(), 1, "{parts:?}");
    assert!(parts[0].contains("\"refused\":1"), "{}", parts[0]);
    assert!(parts[0].contains("\"refused_to\":\"loss\""), "{}", parts[0]);

    // Line 2 refused by the customer: back to stock, no movement.
    let declined = post(
        "/station/pickup/refuse-line",
        format!(
            "csrf={csrf}&order_id=B1&request_id=lr2&line_no=2&quantity=1&reason=customer_declined"
        ),
    )
    .await;
    assert!(
        declined
            .body
            .contains("id=\"refused-2\">✖ 已拒收 ×1 · 退回库存<"),
        "{}",
        declined.body
    );
    assert_eq!(handovers(&hub.store), (0, 9));

    // A reason not on the list, no line, more than is open: refused, nothing changes.
    let bad = post(
        "/station/pickup/refuse-line",
        format!("csrf={csrf}&order_id=B1&request_id=lr3&line_no=1&quantity=1&reason=dented"),
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    let bad = post(
        "/station/pickup/refuse-line",
        format!("csrf={csrf}&order_id=B1&request_id=lr4&line_no=0&quantity=1&reason=damaged"),
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    let too_many = post(
        "/station/pickup/refuse-line",
        format!("csrf={csrf}&order_id=B1&request_id=lr5&line_no=1&quantity=5&reason=damaged"),
    )
    .await;
    assert!(
        too_many.body.contains("拒收数量超过订购数量"),
        "{}",
        too_many.body
    );
    assert_eq!(
        movements_with(&hub.store, "loss", "pickup order B1-refused"),
        1
    );

    // The rest leaves with the same code check: one milk.
    let done = post(
        "/station/pickup/handover",
        format!("csrf={csrf}&order_id=B1&request_id=h1"),
    )
    .await;
    assert!(done.body.contains("已交付 · B1"), "{}", done.body);
    assert_eq!(handovers(&hub.store), (1, 8));
    let whole = outbox_of(&hub.store, "pickup_handed_over");
    assert!(
        whole[0].contains("\"ordered\":2,\"handed_over\":1,\"refused\":1,\"refused_to\":\"loss\""),
        "{}",
        whole[0]
    );
    assert!(
        whole[0].contains("\"ordered\":1,\"handed_over\":0,\"refused\":1,\"refused_to\":\"stock\""),
        "{}",
        whole[0]
    );
    // The report counts the order once: 1 of 3 units handed over.
    let (fill, count) = report_today(&hub.store);
    assert_eq!(count, 1);
    assert!((fill.unwrap() - 1.0 / 3.0).abs() < 1e-9, "{fill:?}");
}

/// The order's stored status and the status of each trace code.
fn order_and_codes(store: &Store, order_id: &str) -> (String, Vec<(String, String)>) {
    let order_id = order_id.to_owned();
    store
        .read_blocking(move |c| {
            let e = |e| StoreError::from_sqlite(Path::new("test"), e);
            let status: String = c
                .query_row(
                    "SELECT status FROM pickup_order WHERE order_id = ?1",
                    [&order_id],
                    |r| r.get(0),
                )
                .map_err(e)?;
            let mut st = c
                .prepare("SELECT code, status FROM trace_code ORDER BY code")
                .map_err(e)?;
            let codes = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
                .map_err(e)?;
            Ok::<_, StoreError>((status, codes))
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_undoes_an_order_handed_over_in_parts_one_part_at_a_time() {
    let hub = start().await;
    hub.store
        .write(|c| {
            for code in ["TC-1", "TC-2"] {
                c.execute(
                    "INSERT INTO trace_code (code, sku, lot, status, bound_at, updated_at) VALUES (?1, 'MILK', 'L1', 'in_stock', 0, 0)",
                    [code],
                )
                .map_err(|e| StoreError::from_sqlite(Path::new("test"), e))?;
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let origin = format!("http://{}", hub.addr);
    let (device, session, csrf) = paired_and_signed_in(&hub, "11223344", "wang", "1357").await;
    let cookies = [device.as_str(), session.as_str()];
    let post = |path: &'static str, body: String| {
        let cookies = cookies.map(str::to_owned);
        let origin = origin.clone();
        let addr = hub.addr;
        async move {
            let c: Vec<&str> = cookies.iter().map(String::as_str).collect();
            request(addr, "POST", path, &c, Some(&origin), &body).await
        }
    };
    let check = format!("csrf={csrf}&code=A1%3A123456&extra=");
    // Two parts: TC-1 first, TC-2 later; the order is collected.
    post("/station/pickup/check", check.clone()).await;
    post("/station/pickup/item", format!("csrf={csrf}&code=TC-1")).await;
    let first = post(
        "/station/pickup/handover",
        format!("csrf={csrf}&order_id=A1&request_id=p1&ticked_only=1"),
    )
    .await;
    assert!(first.body.contains("部分交付 · A1"), "{}", first.body);
    // The part just handed over may be undone from this screen.
    assert!(first.body.contains("id=\"undo\""), "{}", first.body);
    post("/station/pickup/check", check.clone()).await;
    post("/station/pickup/item", format!("csrf={csrf}&code=TC-2")).await;
    let second = post(
        "/station/pickup/handover",
        format!("csrf={csrf}&order_id=A1&request_id=p2"),
    )
    .await;
    assert!(second.body.contains("已交付 · A1"), "{}", second.body);
    assert_eq!(handovers(&hub.store), (1, 8));
    assert_eq!(report_today(&hub.store), (Some(1.0), 1));

    // The first undo takes back the last part only: one milk, TC-2.
    let undo = format!("csrf={csrf}&order_id=A1&reason=clerk_mistake");
    let undone = post("/station/supervisor/undo", undo.clone()).await;
    assert_eq!(undone.status, 200, "{}", undone.body);
    assert!(undone.body.contains("已撤销交付"), "{}", undone.body);
    assert_eq!(handovers(&hub.store).1, 9);
    assert_eq!(movements_of(&hub.store, "return"), 1);
    assert_eq!(
        movements_of(&hub.store, "issue"),
        2,
        "the issues stay in the journal"
    );
    assert_eq!(
        order_and_codes(&hub.store, "A1"),
        (
            "partially_collected".to_owned(),
            vec![
                ("TC-1".to_owned(), "handed_over".to_owned()),
                ("TC-2".to_owned(), "in_stock".to_owned())
            ]
        )
    );
    let events = outbox_of(&hub.store, "pickup_handover_undone");
    assert_eq!(events.len(), 1);
    assert!(events[0].contains("\"staff\":\"wang\""), "{}", events[0]);
    assert!(events[0].contains("\"open\":[1]"), "{}", events[0]);
    assert!(
        events[0].contains("\"trace_codes\":[\"TC-2\"]"),
        "{}",
        events[0]
    );
    // Not collected any more: the report does not count it.
    assert_eq!(report_today(&hub.store), (None, 0));

    // A new check hands over what the undo opened again.
    let again = post("/station/pickup/check", check.clone()).await;
    assert!(again.body.contains("id=\"tick-1\">0/1<"), "{}", again.body);

    // The second undo takes back the first part: the order is open, all stock is back.
    let undone = post("/station/supervisor/undo", undo.clone()).await;
    assert_eq!(undone.status, 200, "{}", undone.body);
    assert_eq!(handovers(&hub.store).1, 10);
    assert_eq!(
        order_and_codes(&hub.store, "A1").0,
        "open",
        "no part stands"
    );
    // Nothing is left to undo.
    let none = post("/station/supervisor/undo", undo).await;
    assert_eq!(none.status, 409, "{}", none.body);
    assert_eq!(movements_of(&hub.store, "return"), 2);

    // Handed over whole now: two milks leave, and the report counts what left once.
    post("/station/pickup/check", check).await;
    let whole = post(
        "/station/pickup/handover",
        format!("csrf={csrf}&order_id=A1&request_id=w1"),
    )
    .await;
    assert!(whole.body.contains("已交付 · A1"), "{}", whole.body);
    assert_eq!(handovers(&hub.store).1, 8);
    assert_eq!(report_today(&hub.store), (Some(1.0), 1));
}

/// Runs a station command as the MQTT downlink does (`workflows::station::handle_in`).
async fn station_command(hub: &Hub, payload: &str) -> hub_contract::station::StationReply {
    let site = Site::of(&config(hub.dir.path()));
    let payload = payload.as_bytes().to_vec();
    hub.store
        .write(move |c| {
            hub::workflows::station::handle_in(
                c,
                Some(&site),
                "desk-1",
                &payload,
                hub::clock::now(),
            )
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_undoes_a_handover_over_mqtt_once_and_a_clerk_may_not() {
    let hub = start().await;
    let origin = format!("http://{}", hub.addr);
    let (device, clerk, csrf) = paired_and_signed_in(&hub, "11223344", "li", "2468").await;
    let cookies = [device.as_str(), clerk.as_str()];
    request(
        hub.addr,
        "POST",
        "/station/pickup/check",
        &cookies,
        Some(&origin),
        &format!("csrf={csrf}&code=A1%3A123456&extra="),
    )
    .await;
    let done = request(
        hub.addr,
        "POST",
        "/station/pickup/handover",
        &cookies,
        Some(&origin),
        &format!("csrf={csrf}&order_id=A1&request_id=h1"),
    )
    .await;
    assert!(done.body.contains("已交付 · A1"), "{}", done.body);
    assert_eq!(handovers(&hub.store), (1, 8));

    let clerk = station_command(
        &hub,
        r#"{"v":1,"id":"u0","staff":"li","kind":"pickup_undo","order_id":"A1","reason":"wrong_customer"}"#,
    ).await;
    assert!(!clerk.ok);
    assert_eq!(clerk.code.as_deref(), Some("supervisor_only"), "{clerk:?}");
    let unknown = station_command(
        &hub,
        r#"{"v":1,"id":"u1","staff":"nobody","kind":"pickup_undo","order_id":"A1","reason":"wrong_customer"}"#,
    ).await;
    assert_eq!(
        unknown.code.as_deref(),
        Some("supervisor_only"),
        "{unknown:?}"
    );
    let bad = station_command(
        &hub,
        r#"{"v":1,"id":"u2","staff":"wang","kind":"pickup_undo","order_id":"A1","reason":"because"}"#,
    ).await;
    assert_eq!(bad.code.as_deref(), Some("unknown_reason"), "{bad:?}");
    assert_eq!(handovers(&hub.store), (1, 8));

    let undo = r#"{"v":1,"id":"u3","staff":"wang","kind":"pickup_undo","order_id":"A1","reason":"customer_returned"}"#;
    let undone = station_command(&hub, undo).await;
    assert!(undone.ok, "{undone:?}");
    assert_eq!(
        undone.result.as_ref().and_then(|r| r.text("status")),
        Some("open")
    );
    assert_eq!(handovers(&hub.store).1, 10);
    // Redelivered: the stored reply, nothing undone twice.
    let again = station_command(&hub, undo).await;
    assert!(again.ok, "{again:?}");
    assert_eq!(movements_of(&hub.store, "return"), 1);
    let event = outbox_of(&hub.store, "pickup_handover_undone");
    assert_eq!(event.len(), 1);
    assert!(event[0].contains("\"staff\":\"wang\""), "{}", event[0]);
    // Nothing left to undo.
    let none = station_command(
        &hub,
        r#"{"v":1,"id":"u4","staff":"wang","kind":"pickup_undo","order_id":"A1","reason":"customer_returned"}"#,
    ).await;
    assert_eq!(none.code.as_deref(), Some("not_handed_over"), "{none:?}");
}

/// Each commit costs the SD card a WAL write and an fsync: a code check and its handover
/// through the app are one commit each — the screen's state rides on the next commit instead
/// of two commits of its own — and the handed-over screen is still what a restart shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_check_and_its_handover_take_one_commit_each_and_the_screen_rides_along() {
    let hub = start().await;
    let (device, session, csrf) = paired_and_signed_in(&hub, "11223344", "li", "2468").await;
    let cookies = [device.as_str(), session.as_str()];
    let origin = format!("http://{}", hub.addr);
    let before = hub.store.writer_stats();
    let found = request(
        hub.addr,
        "POST",
        "/station/pickup/check",
        &cookies,
        Some(&origin),
        &format!("csrf={csrf}&code=A1%3A123456&extra="),
    )
    .await;
    assert!(found.body.contains("data-tone=\"ok\""), "{}", found.body);
    let page = request(hub.addr, "GET", "/station", &cookies, None, "").await;
    let request_id = page.field("request_id");
    let done = request(
        hub.addr,
        "POST",
        "/station/pickup/handover",
        &cookies,
        Some(&origin),
        &format!("csrf={csrf}&order_id=A1&request_id={}", enc(&request_id)),
    )
    .await;
    assert!(done.body.contains("已交付 · A1"), "{}", done.body);
    let after = hub.store.writer_stats();
    assert_eq!(
        after.groups_committed - before.groups_committed,
        2,
        "commits for a code check and its handover"
    );
    let hub = restart(hub).await;
    let current = request(
        hub.addr,
        "GET",
        "/station/pickup/current",
        &cookies,
        None,
        "",
    )
    .await;
    assert!(current.body.contains("已交付 · A1"), "{}", current.body);
}

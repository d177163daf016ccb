//! The stock and alerts screen over HTTP against a real SQLite file and a real server on a
//! loopback port: lots with their expiry marked (expired, near expiry, fine) on the site's day,
//! the tier colour, days of cover and the replenishment request state, open alerts worst first
//! with what to do, in zh-CN and English; refused without a session.

mod support;

use hub::config::Config;
use hub::station_app::{StationApp, feed::StationFeed, hash_pin, router};
use hub::store::staff::{self as staff_store, Role, StaffMember};
use hub::store::{Store, StoreError, StoreOptions, alert_book, ledger, sku as sku_store};
use hub::workflows::Site;
use hub_core::alerts::{Alert, AlertKind, Episode, SkuAlertState, Tier};
use hub_core::{BatchKey, Movement, MovementId, MovementKind, Sku, SkuCode, StockUnit, Timestamp};
use rusqlite::params;
use std::net::SocketAddr;
use support::http::{http, pair_and_sign_in};

const CONFIG: &str = "[site]\nid = \"pp-1\"\ntimezone = \"Asia/Shanghai\"\n[store]\ndata_dir = \"data\"\n[alerts]\nexpiry_warn_days = 2\n[[stations]]\nid = \"desk-1\"\nkind = \"pickup\"\nname = \"取货台 1\"\n";

fn seed(store: &Store, now: i64, soon: String) {
    let clerk = hash_pin("2468").unwrap();
    store
        .write_blocking(move |c| {
            for (code, name, unit) in [
                ("MILK", "鲜牛奶 1L", StockUnit::Piece),
                ("RICE", "大米", StockUnit::Gram),
            ] {
                sku_store::upsert(
                    c,
                    &Sku::new(SkuCode::new(code).unwrap(), name, unit),
                    Timestamp(0),
                )?;
            }
            let hour = 3_600_000;
            for (id, sku, kind, quantity, lot, expiry, at) in [
                (
                    "m1",
                    "MILK",
                    MovementKind::Receipt,
                    3,
                    "OLD",
                    "2000-01-01".to_owned(),
                    now - 48 * hour,
                ),
                (
                    "m2",
                    "MILK",
                    MovementKind::Receipt,
                    4,
                    "SOON",
                    soon.clone(),
                    now - 48 * hour,
                ),
                (
                    "m3",
                    "MILK",
                    MovementKind::Receipt,
                    20,
                    "FAR",
                    "2999-01-01".to_owned(),
                    now - 48 * hour,
                ),
                (
                    "m4",
                    "MILK",
                    MovementKind::Issue,
                    7,
                    "FAR",
                    "2999-01-01".to_owned(),
                    now - hour,
                ),
                (
                    "m5",
                    "RICE",
                    MovementKind::Receipt,
                    5000,
                    "R1",
                    "2999-01-01".to_owned(),
                    now - hour,
                ),
            ] {
                let m = Movement {
                    id: MovementId::new(id).unwrap(),
                    sku: SkuCode::new(sku).unwrap(),
                    batch: Some(BatchKey::new(lot, expiry.parse().ok()).unwrap()),
                    kind,
                    quantity,
                    reason: "scenario".into(),
                    reference: "test".into(),
                    at: Timestamp(at),
                };
                ledger::record(c, &m).map_err(|e| match e {
                    ledger::RecordError::Store(e) => e,
                    other => panic!("{other}"),
                })?;
            }
            let state = SkuAlertState {
                tier: Tier::Red,
                episode: Some(Episode {
                    id: "ep-1".into(),
                    started_at: Timestamp(now - hour),
                    last_requested_at: Timestamp(now - hour),
                    requests_sent: 1,
                    acknowledged: true,
                }),
            };
            c.execute(
                "INSERT INTO sku_alert_state (sku, state, updated_at) VALUES ('MILK', ?1, ?2)",
                params![hub_contract::stored::encode_alert_state(&state), now],
            )
            .map_err(hub::store::sql_error(c))?;
            for alert in [
                Alert {
                    kind: AlertKind::NearExpiry,
                    subject: "MILK/SOON".into(),
                    tier: Tier::Yellow,
                    message: "expires soon".into(),
                },
                Alert {
                    kind: AlertKind::StockLow,
                    subject: "MILK".into(),
                    tier: Tier::Red,
                    message: "2 days of cover".into(),
                },
            ] {
                alert_book::raise(c, &alert, Timestamp(now))?;
            }
            staff_store::upsert_staff(
                c,
                &StaffMember {
                    staff_id: "li".into(),
                    name: "李小红".into(),
                    role: Role::Clerk,
                    lang: "zh-CN".into(),
                    disabled: false,
                    failed_pins: 0,
                    locked_until: None,
                    pin_hash: clerk,
                },
                Timestamp(0),
            )?;
            staff_store::add_pairing(
                c,
                "desk-1",
                "11223344",
                Timestamp(0),
                Timestamp(i64::MAX / 4),
            )?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
}

/// The site's store in a new temporary folder (kept while the folder lives).
fn open_store() -> (tempfile::TempDir, Config, Store) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(CONFIG, dir.path()).unwrap();
    std::fs::create_dir_all(&config.store.data_dir).unwrap();
    let store = Store::open(
        &config.database_path(),
        config.site.id.as_str(),
        &StoreOptions::default(),
    )
    .unwrap();
    (dir, config, store)
}

/// The station app serving `store` on a loopback port.
async fn serve(store: &Store, config: &Config) -> SocketAddr {
    let app = StationApp::new(store.clone(), Site::of(config), StationFeed::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(app)).await });
    addr
}

/// Seeds `store` (`seed`) with dates relative to now in the site's zone (tomorrow, within the
/// 2 warning days, is the near-expiry lot's); now in milliseconds.
async fn seeded_now(store: &Store) -> i64 {
    let now = chrono::Utc::now();
    let soon = (now.with_timezone(&chrono_tz::Asia::Shanghai).date_naive() + chrono::Days::new(1))
        .to_string();
    let s = store.clone();
    let millis = now.timestamp_millis();
    tokio::task::spawn_blocking(move || seed(&s, millis, soon))
        .await
        .unwrap();
    millis
}

async fn signed_in(addr: SocketAddr, code: &str, staff: &str, pin: &str) -> Vec<String> {
    pair_and_sign_in(addr, code, staff, pin).await.cookies()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stock_screen_marks_lots_tiers_requests_and_alerts_worst_first() {
    let (_dir, config, store) = open_store();
    let millis = seeded_now(&store).await;
    let addr = serve(&store, &config).await;

    assert_eq!(
        http(addr, "GET", "/station/stock", &[], "").await.status,
        401
    );
    let clerk = signed_in(addr, "11223344", "li", "2468").await;
    let clerk: Vec<&str> = clerk.iter().map(String::as_str).collect();
    let page = http(addr, "GET", "/station/stock", &clerk, "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;

    // Lots: expired, near expiry, fine; the issued lot shows what is left.
    assert!(
        body.contains(r#"data-lot="OLD" data-state="expired""#),
        "{body}"
    );
    assert!(
        body.contains(r#"data-lot="SOON" data-state="near""#),
        "{body}"
    );
    assert!(body.contains(r#"data-lot="FAR" data-state="ok""#), "{body}");
    assert!(body.contains("FAR · 2999-01-01 · 13"), "{body}");
    assert!(body.contains("已过期（不可交付）"));
    // The red SKU comes first, with its acknowledged request; days of cover from 7 issued
    // over 7 days: (27 - 7) / 1.0 = 20.0.
    let milk = body.find(r#"data-sku="MILK""#).unwrap();
    let rice = body.find(r#"data-sku="RICE""#).unwrap();
    assert!(milk < rice, "worst tier first");
    assert!(body.contains(r#"data-sku="MILK" data-tier="red" data-request="acknowledged""#));
    assert!(body.contains(r#"data-sku="RICE" data-tier="normal" data-request="none""#));
    assert!(body.contains("20.0 天<br><small>按近 7 天平均"), "{body}");
    assert!(body.contains("5000 按克"));
    // Alerts worst first, each with what to do.
    let red = body
        .find(r#"data-tier="red" data-kind="stock_low""#)
        .unwrap();
    let yellow = body
        .find(r#"data-tier="yellow" data-kind="near_expiry""#)
        .unwrap();
    assert!(red < yellow);
    assert!(body.contains("补货申请已自动发出"));
    // The alert book's detail is English (for logs and central): a zh-CN screen shows the
    // catalogue's words, an English one the detail too.
    assert!(!body.contains("2 days of cover"), "{body}");
    assert!(!body.contains("id=\"alerts-more\""), "{body}");

    let en = http(addr, "GET", "/station/stock?lang=en", &clerk, "").await;
    assert!(
        en.body.contains("expired (cannot be handed over)")
            && en.body.contains("Put it first on the shelf")
            && en.body.contains("2 days of cover")
    );

    // After a long outage: the worst 50 are listed, the heading counts all, the rest are
    // counted below the list.
    store
        .write(move |c| {
            for n in 0..60 {
                let alert = Alert {
                    kind: AlertKind::DeviceOffline,
                    subject: format!("scale-{n}"),
                    tier: Tier::Yellow,
                    message: "no reading".into(),
                };
                alert_book::raise(c, &alert, Timestamp(millis))?;
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let many = http(addr, "GET", "/station/stock", &clerk, "").await.body;
    assert!(many.contains("（最严重在前） (62)"), "{many}");
    assert_eq!(many.matches(r#"<li class="alert""#).count(), 50);
    assert!(
        many.contains(r#"<p class="muted" id="alerts-more">未列出的较轻预警（条）： 12</p>"#),
        "{many}"
    );
    assert!(
        many.find("data-kind=\"stock_low\"").is_some(),
        "the red one is still listed"
    );
    store.close();
}

fn acknowledgements(store: &Store) -> Vec<String> {
    store
        .read_blocking(|c| {
            let mut st = c
                .prepare(
                    "SELECT payload FROM outbox WHERE kind = 'alert_acknowledged' ORDER BY seq",
                )
                .map_err(hub::store::sql_error(c))?;
            st.query_map([], |r| r.get::<_, String>(0))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(hub::store::sql_error(c))
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_acknowledge_an_alert_once_and_a_worse_tier_asks_again() {
    let (_dir, config, store) = open_store();
    let millis = seeded_now(&store).await;
    let addr = serve(&store, &config).await;
    let clerk = signed_in(addr, "11223344", "li", "2468").await;
    let clerk: Vec<&str> = clerk.iter().map(String::as_str).collect();
    let page = http(addr, "GET", "/station/stock", &clerk, "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.body.matches("class=\"ack-button\"").count(),
        2,
        "{}",
        page.body
    );
    let csrf = page.field("csrf");
    let ack = |body: String| {
        let clerk = clerk.clone();
        async move { http(addr, "POST", "/station/stock/ack", &clerk, &body).await }
    };

    // Without the CSRF token: refused, nothing recorded.
    let forged = ack("kind=near_expiry&subject=MILK%2FSOON".into()).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(acknowledgements(&store).is_empty());
    // An unknown kind, and an alert that is not open: refused in words.
    let unknown = ack(format!("csrf={csrf}&kind=weather&subject=MILK")).await;
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.body.contains("无法识别这条预警"),
        "{}",
        unknown.body
    );
    let closed = ack(format!("csrf={csrf}&kind=near_expiry&subject=RICE%2FR1")).await;
    assert_eq!(closed.status, 409);
    assert!(closed.body.contains("已经解除"), "{}", closed.body);

    // Acknowledged once (twice changes nothing): who and when are on the screen.
    for _ in 0..2 {
        let done = ack(format!("csrf={csrf}&kind=near_expiry&subject=MILK%2FSOON")).await;
        assert_eq!(done.status, 303, "{}", done.body);
    }
    let events = acknowledgements(&store);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0].contains("\"staff\":\"li\"") && events[0].contains("\"tier\":\"yellow\""),
        "{events:?}"
    );
    let page = http(addr, "GET", "/station/stock", &clerk, "").await.body;
    assert!(page.contains("data-acked-by=\"li\""), "{page}");
    assert!(page.contains("已知悉： li"), "{page}");
    assert_eq!(page.matches("class=\"ack-button\"").count(), 1, "{page}");

    // The same tier again keeps it; worse than what was seen asks again.
    for tier in [Tier::Yellow, Tier::Orange] {
        store
            .write(move |c| {
                let alert = Alert {
                    kind: AlertKind::NearExpiry,
                    subject: "MILK/SOON".into(),
                    tier,
                    message: "expires soon".into(),
                };
                alert_book::raise(c, &alert, Timestamp(millis + 1000))?;
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
        let page = http(addr, "GET", "/station/stock", &clerk, "").await.body;
        let acked = page.contains("data-acked-by=\"li\"");
        assert_eq!(acked, tier == Tier::Yellow, "{tier:?}: {page}");
    }
    store.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_records_a_stocktake_and_a_loss_once_and_bad_ones_are_refused_in_words() {
    let (_dir, config, store) = open_store();
    let now = chrono::Utc::now();
    let soon = (now.with_timezone(&chrono_tz::Asia::Shanghai).date_naive() + chrono::Days::new(1))
        .to_string();
    let s = store.clone();
    let millis = now.timestamp_millis();
    let boss = hash_pin("1357").unwrap();
    tokio::task::spawn_blocking(move || {
        seed(&s, millis, soon);
        s.write_blocking(move |c| {
            staff_store::upsert_staff(
                c,
                &StaffMember {
                    staff_id: "wang".into(),
                    name: "王主管".into(),
                    role: Role::Supervisor,
                    lang: "zh-CN".into(),
                    disabled: false,
                    failed_pins: 0,
                    locked_until: None,
                    pin_hash: boss,
                },
                Timestamp(0),
            )?;
            staff_store::add_pairing(
                c,
                "desk-1",
                "55667788",
                Timestamp(0),
                Timestamp(i64::MAX / 4),
            )
        })
        .unwrap();
    })
    .await
    .unwrap();
    let addr = serve(&store, &config).await;
    let lot_of = |lot: &'static str| {
        let store = store.clone();
        move || {
            store
                .read_blocking(move |c| ledger::lot(c, &SkuCode::new("MILK").unwrap(), lot))
                .unwrap()
                .map(|(_, on_hand)| on_hand)
        }
    };
    let journal = || {
        store
            .read_blocking(|c| {
                c.query_row(
                    "SELECT COUNT(*) FROM movement WHERE kind IN ('adjustment', 'loss')",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(hub::store::sql_error(c))
            })
            .unwrap()
    };

    // A clerk has no form, and a forged post is refused.
    let clerk = signed_in(addr, "11223344", "li", "2468").await;
    let clerk: Vec<&str> = clerk.iter().map(String::as_str).collect();
    let page = http(addr, "GET", "/station/stock", &clerk, "").await;
    assert!(!page.body.contains("id=\"correction\""));
    let csrf = page.field("csrf");
    let refused = http(
        addr,
        "POST",
        "/station/stock/correct",
        &clerk,
        &format!("csrf={csrf}&request_id=r0&lot=MILK%7CFAR&kind=count&quantity=1"),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("仅限主管"), "{}", refused.body);
    assert_eq!(journal(), 0);

    let boss = signed_in(addr, "55667788", "wang", "1357").await;
    let boss: Vec<&str> = boss.iter().map(String::as_str).collect();
    let page = http(addr, "GET", "/station/stock", &boss, "").await;
    assert!(page.body.contains("id=\"correction\""), "{}", page.body);
    assert!(page.body.contains("value=\"MILK|FAR\""), "{}", page.body);
    let csrf = page.field("csrf");
    let post = |body: String| {
        let boss = boss.clone();
        async move { http(addr, "POST", "/station/stock/correct", &boss, &body).await }
    };

    // A count of 10 where the books say 13: one adjustment of -3, applied once per request.
    assert_eq!(lot_of("FAR")(), Some(13));
    for _ in 0..2 {
        let done = post(format!(
            "csrf={csrf}&request_id=r1&lot=MILK%7CFAR&kind=count&quantity=10&reason=spoiled"
        ))
        .await;
        assert_eq!(done.status, 200, "{}", done.body);
        assert!(
            done.body.contains("已记录盘点 MILK · FAR: -3 → 10"),
            "{}",
            done.body
        );
    }
    assert_eq!(lot_of("FAR")(), Some(10));
    assert_eq!(journal(), 1);

    // Refusals in words, nothing recorded.
    for (body, words) in [
        (
            "request_id=r2&lot=MILK%7CSOON&kind=loss&quantity=5&reason=spoiled",
            "超过该批次",
        ),
        (
            "request_id=r3&lot=MILK%7CFAR&kind=count&quantity=-1",
            "不能是负数",
        ),
        (
            "request_id=r4&lot=MILK%7CFAR&kind=count&quantity=10",
            "无需调整",
        ),
        (
            "request_id=r5&lot=MILK%7CNOPE&kind=count&quantity=1",
            "账上没有这个批次",
        ),
        (
            "request_id=r6&lot=MILK%7CFAR&kind=loss&quantity=1&reason=stolen",
            "还要选择原因",
        ),
        (
            "request_id=r7&lot=MILK%7CFAR&kind=count&quantity=99999999999",
            "数量过大",
        ),
    ] {
        let answer = post(format!("csrf={csrf}&{body}")).await;
        assert!(answer.body.contains(words), "{body}: {}", answer.body);
        assert!(answer.body.contains("class=\"notice refused\""), "{body}");
    }
    assert_eq!(journal(), 1);

    // A loss of 2 spoiled from the lot of 4.
    let lost = post(format!(
        "csrf={csrf}&request_id=r8&lot=MILK%7CSOON&kind=loss&quantity=2&reason=spoiled"
    ))
    .await;
    assert!(
        lost.body.contains("已记录报损 MILK · SOON: -2 → 2"),
        "{}",
        lost.body
    );
    assert_eq!(lot_of("SOON")(), Some(2));
    let (reason, events, actions) = store
        .read_blocking(|c| {
            let reason: String = c
                .query_row("SELECT reason FROM movement WHERE kind = 'loss'", [], |r| r.get(0))
                .map_err(hub::store::sql_error(c))?;
            let events: i64 = c
                .query_row(
                    "SELECT COUNT(*) FROM outbox WHERE kind = 'movement_recorded' AND payload LIKE '%by wang%'",
                    [],
                    |r| r.get(0),
                )
                .map_err(hub::store::sql_error(c))?;
            let actions = staff_store::count_actions(c, "wang", "stocktake")?
                + staff_store::count_actions(c, "wang", "loss")?;
            Ok::<_, StoreError>((reason, events, actions))
        })
        .unwrap();
    assert_eq!(reason, "spoiled by wang");
    assert_eq!(events, 2, "both corrections go upstream with who did them");
    assert_eq!(actions, 2);
    let verify = store.read_blocking(ledger::verify).unwrap();
    assert!(verify.ok(), "{verify:?}");
    store.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn days_of_cover_use_todays_stored_forecast_when_the_daily_job_made_one() {
    let (_dir, config, store) = open_store();
    let now = chrono::Utc::now();
    let today = now.with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    let soon = (today + chrono::Days::new(1)).to_string();
    let s = store.clone();
    let millis = now.timestamp_millis();
    tokio::task::spawn_blocking(move || {
        seed(&s, millis, soon);
        // The shape the daemon's daily job stores: MILK is forecast at 4 a day today, RICE
        // (nothing handed over in 7 days) at 1,000 g.
        s.write_blocking(move |c| {
            let row =
                |sku: &str, unit: &str, forecast: f64| hub::store::day_forecast::DayForecast {
                    day: today,
                    sku: sku.into(),
                    unit: unit.into(),
                    forecast,
                    method: "ets".into(),
                    history_days: 30,
                    made_at: Timestamp(millis),
                };
            hub::store::day_forecast::store_day(
                c,
                today,
                &[row("MILK", "piece", 4.0), row("RICE", "gram", 1000.0)],
            )
        })
        .unwrap();
    })
    .await
    .unwrap();
    let addr = serve(&store, &config).await;
    let clerk = signed_in(addr, "11223344", "li", "2468").await;
    let clerk: Vec<&str> = clerk.iter().map(String::as_str).collect();
    let body = http(addr, "GET", "/station/stock", &clerk, "").await.body;
    // MILK: (27 - 7) free over 4 a day; RICE: 5,000 g over 1,000 g a day.
    assert!(body.contains("5.0 天<br><small>按今日预测"), "{body}");
    assert!(!body.contains("按近 7 天平均"), "{body}");
    assert_eq!(
        body.matches(r#"data-cover-basis="forecast""#).count(),
        2,
        "{body}"
    );
    store.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_drills_down_into_one_skus_days_with_the_stored_forecasts() {
    let (_dir, config, store) = open_store();
    let now = chrono::Utc::now();
    let zone = chrono_tz::Asia::Shanghai;
    let today = now.with_timezone(&zone).date_naive();
    // The seed hands 7 MILK over an hour ago: that hour's site day.
    let issue_day = (now - chrono::Duration::hours(1))
        .with_timezone(&zone)
        .date_naive();
    let soon = (today + chrono::Days::new(1)).to_string();
    let s = store.clone();
    let millis = now.timestamp_millis();
    let boss = hash_pin("1357").unwrap();
    tokio::task::spawn_blocking(move || {
        seed(&s, millis, soon);
        s.write_blocking(move |c| {
            staff_store::upsert_staff(
                c,
                &StaffMember {
                    staff_id: "wang".into(),
                    name: "王主管".into(),
                    role: Role::Supervisor,
                    lang: "zh-CN".into(),
                    disabled: false,
                    failed_pins: 0,
                    locked_until: None,
                    pin_hash: boss,
                },
                Timestamp(0),
            )?;
            staff_store::add_pairing(
                c,
                "desk-1",
                "55667788",
                Timestamp(0),
                Timestamp(i64::MAX / 4),
            )?;
            hub::store::day_forecast::store_day(
                c,
                issue_day,
                &[hub::store::day_forecast::DayForecast {
                    day: issue_day,
                    sku: "MILK".into(),
                    unit: "piece".into(),
                    forecast: 4.0,
                    method: "ets".into(),
                    history_days: 30,
                    made_at: Timestamp(millis),
                }],
            )
        })
        .unwrap();
    })
    .await
    .unwrap();
    let addr = serve(&store, &config).await;

    let clerk = signed_in(addr, "11223344", "li", "2468").await;
    let clerk: Vec<&str> = clerk.iter().map(String::as_str).collect();
    let refused = http(addr, "GET", "/station/dashboard/sku?code=MILK", &clerk, "").await;
    assert_eq!(refused.status, 403, "{}", refused.body);

    let boss = signed_in(addr, "55667788", "wang", "1357").await;
    let boss: Vec<&str> = boss.iter().map(String::as_str).collect();
    let stock = http(addr, "GET", "/station/stock", &boss, "").await.body;
    assert!(
        stock.contains(r#"href="/station/dashboard/sku?code=MILK""#),
        "{stock}"
    );
    let unknown = http(addr, "GET", "/station/dashboard/sku?code=NOPE", &boss, "").await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.body.contains("没有这个商品"), "{}", unknown.body);

    let page = http(addr, "GET", "/station/dashboard/sku?code=MILK", &boss, "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    assert!(
        body.contains("鲜牛奶 1L") && body.contains("<svg"),
        "{body}"
    );
    assert_eq!(body.matches("data-day=").count(), 30, "{body}");
    // The day of the handover: 7 handed over against the stored forecast of 4.
    let row = body
        .split(&format!(r#"data-day="{issue_day}">"#))
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap_or_else(|| panic!("no row for {issue_day}: {body}"));
    assert!(row.contains("<td>7</td><td>4.0</td><td>3.0</td>"), "{row}");
    store.close();
}

/// After a long outage a SKU can have dozens of expired lots: the screen lists them as one
/// line (the SKU by name, how many lots, the first few named), which one tap acknowledges
/// together, one event per alert; a SKU whose code has a slash in it keeps its own line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_expired_lots_of_one_sku_are_one_line_acknowledged_together() {
    let (_dir, config, store) = open_store();
    let millis = seeded_now(&store).await;
    store
        .write(move |c| {
            sku_store::upsert(
                c,
                &Sku::new(
                    SkuCode::new("MILK/2L").unwrap(),
                    "鲜牛奶 2L",
                    StockUnit::Piece,
                ),
                Timestamp(0),
            )?;
            let expired = |subject: String| Alert {
                kind: AlertKind::StockExpired,
                subject,
                tier: Tier::Red,
                message: "expired".into(),
            };
            for n in 0..30 {
                alert_book::raise(c, &expired(format!("MILK/E{n:02}")), Timestamp(millis))?;
            }
            alert_book::raise(c, &expired("MILK/2L/X1".into()), Timestamp(millis))?;
            // E29 is on hand and expired first of all: it is named first.
            let m = Movement {
                id: MovementId::new("e29").unwrap(),
                sku: SkuCode::new("MILK").unwrap(),
                batch: Some(BatchKey::new("E29", "1999-12-31".parse().ok()).unwrap()),
                kind: MovementKind::Receipt,
                quantity: 1,
                reason: "scenario".into(),
                reference: "test".into(),
                at: Timestamp(millis - 3_600_000),
            };
            ledger::record(c, &m).map_err(|e| match e {
                ledger::RecordError::Store(e) => e,
                other => panic!("{other}"),
            })?;
            // One of the thirty was acknowledged on its own before.
            alert_book::acknowledge_alert(
                c,
                AlertKind::StockExpired,
                "MILK/E03",
                "wang",
                Timestamp(millis),
            )?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let addr = serve(&store, &config).await;
    let clerk = signed_in(addr, "11223344", "li", "2468").await;
    let clerk: Vec<&str> = clerk.iter().map(String::as_str).collect();

    let page = http(addr, "GET", "/station/stock", &clerk, "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    // 33 open alerts in four lines: MILK's expired lots, MILK/2L's one, MILK's near-expiry
    // lot and its low stock.
    assert!(body.contains("（最严重在前） (33)"), "{body}");
    assert_eq!(body.matches(r#"<li class="alert""#).count(), 4, "{body}");
    assert!(
        body.contains(r#"data-kind="stock_expired" data-lots-of="MILK" data-lots="30""#),
        "{body}"
    );
    assert!(body.contains("鲜牛奶 1L（MILK）"), "{body}");
    assert!(body.contains("30 个批次： E29 · E00 · E01"), "{body}");
    assert!(body.contains("E06 … (另有 22 个批次)"), "{body}");
    assert!(body.contains("✔ 已知悉 1/30"), "{body}");
    assert!(body.contains("全部知悉 (29)"), "{body}");
    assert!(
        body.contains("鲜牛奶 2L（MILK&#x2f;2L） · 批次 X1"),
        "{body}"
    );
    assert!(body.contains("鲜牛奶 1L（MILK） · 批次 SOON"), "{body}");
    assert!(!body.contains("id=\"alerts-more\""), "{body}");
    let en = http(addr, "GET", "/station/stock?lang=en", &clerk, "")
        .await
        .body;
    assert!(en.contains("30 lots: E29 · E00 · E01"), "{en}");
    assert!(en.contains("E06 … (and 22 more)"), "{en}");
    assert!(en.contains("Acknowledge all (29)"), "{en}");
    let csrf = page.field("csrf");
    let before = acknowledgements(&store).len();
    let ack = |body: String| {
        let clerk = clerk.clone();
        async move { http(addr, "POST", "/station/stock/ack", &clerk, &body).await }
    };

    // One tap: the 29 not yet acknowledged, each with its event; a second tap adds none.
    for _ in 0..2 {
        let done = ack(format!("csrf={csrf}&kind=stock_expired&lots_of=MILK")).await;
        assert_eq!(done.status, 303, "{}", done.body);
    }
    let events = acknowledgements(&store);
    assert_eq!(events.len() - before, 29, "{events:?}");
    assert!(
        events[before..]
            .iter()
            .all(|e| e.contains("\"staff\":\"li\""))
    );
    let page = http(addr, "GET", "/station/stock", &clerk, "").await.body;
    let line = &page[page.find(r#"data-lots-of="MILK""#).unwrap()..];
    let line = &line[..line.find("</li>").unwrap()];
    assert!(line.contains("已知悉： li"), "{line}");
    assert!(!line.contains("ack-button"), "{line}");
    // MILK/2L's expired lot is not MILK's: still waiting.
    let other = store
        .read_blocking(|c| {
            c.query_row(
                "SELECT acked_by IS NULL FROM alert WHERE kind = 'stock_expired' AND subject = 'MILK/2L/X1'",
                [],
                |r| r.get::<_, bool>(0),
            )
            .map_err(hub::store::sql_error(c))
        })
        .unwrap();
    assert!(other, "another SKU's lot is not acknowledged with MILK's");

    // Lots of a SKU with no open alert, or a kind that is not about lots: refused in words.
    let none = ack(format!("csrf={csrf}&kind=stock_expired&lots_of=RICE")).await;
    assert_eq!(none.status, 409, "{}", none.body);
    assert!(none.body.contains("已经解除"), "{}", none.body);
    let not_lots = ack(format!("csrf={csrf}&kind=stock_low&lots_of=MILK")).await;
    assert_eq!(not_lots.status, 400, "{}", not_lots.body);
    let both = ack(format!(
        "csrf={csrf}&kind=stock_expired&lots_of=MILK&subject=MILK%2FE01"
    ))
    .await;
    assert_eq!(both.status, 400, "{}", both.body);
    store.close();
}

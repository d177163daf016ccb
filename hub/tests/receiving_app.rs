//! The receiving bench screen's HTTP layer against a real SQLite file and a real server on a
//! loopback port: today's deliveries with their progress, a delivery's lines with the proposed
//! decision in the clerk's words, scans that tick or flag, a count entered (negative and absurd
//! ones refused, a repeated request applied once), a decision that holds the line, a release
//! only a supervisor may make, and actions on a closed delivery refused.

mod support;

use hub::config::Config;
use hub::station_app::{StationApp, feed::StationFeed, hash_pin, router};
use hub::store::deliveries::{self, upsert_manifest};
use hub::store::staff::{self as staff_store, Role, StaffMember};
use hub::store::{Store, StoreError, StoreOptions, ledger, outbox, sku as sku_store};
use hub::workflows::Site;
use hub_core::receiving::{Manifest, ManifestLine};
use hub_core::{Sku, SkuCode, StockUnit, Timestamp};
use std::net::SocketAddr;
use std::path::Path;
use support::http::{Answer, pair_and_sign_in, post_body, request};

const CONFIG: &str = "[site]\nid = \"pp-1\"\ntimezone = \"Asia/Shanghai\"\n[store]\ndata_dir = \"data\"\n[[stations]]\nid = \"dock\"\nkind = \"receiving\"\nname = \"收货台\"\n";

fn config(dir: &Path) -> Config {
    Config::parse(CONFIG, dir).unwrap()
}

fn line(line_no: u32, sku: &str, lot: &str, count: i64, grams: i64) -> ManifestLine {
    ManifestLine {
        line_no,
        sku: SkuCode::new(sku).unwrap(),
        lot: lot.into(),
        production_date: None,
        // Far away: the test does not depend on today.
        expiry: "2999-12-31".parse().ok(),
        expected_count: Some(count),
        expected_weight_g: Some(grams),
        weight_tolerance_g: 50,
        trace_codes: vec![],
        crate_label: None,
    }
}

fn seed(store: &Store) {
    let clerk = hash_pin("2468").unwrap();
    let boss = hash_pin("1357").unwrap();
    store
        .write_blocking(move |c| {
            let now = Timestamp(1_000);
            for (code, name) in [("MILK", "鲜牛奶 1L"), ("EGGS", "鸡蛋 10 枚")] {
                sku_store::upsert(
                    c,
                    &Sku {
                        code: SkuCode::new(code).unwrap(),
                        name: name.into(),
                        unit: StockUnit::Piece,
                        gtins: vec![],
                        allow_negative: false,
                        check_items_at_handover: false,
                        version: 1,
                    },
                    now,
                )?;
            }
            upsert_manifest(
                c,
                &Manifest {
                    delivery_id: "D1".into(),
                    supplier: "光明乳业".into(),
                    expected_at: Some("08:30".into()),
                    lines: vec![
                        line(1, "MILK", "L1", 10, 10_000),
                        line(2, "EGGS", "E7", 5, 3_000),
                    ],
                    cancelled: false,
                    version: 1,
                },
                now,
            )?;
            for (id, name, role, hash) in [
                ("li", "李小红", Role::Clerk, clerk),
                ("wang", "王主管", Role::Supervisor, boss.clone()),
                ("zhou", "周店长", Role::Manager, boss),
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
            staff_store::add_pairing(c, "dock", "11223344", now, Timestamp(i64::MAX / 4))?;
            staff_store::add_pairing(c, "dock", "55667788", now, Timestamp(i64::MAX / 4))?;
            staff_store::add_pairing(c, "dock", "99001122", now, Timestamp(i64::MAX / 4))?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
}

struct Hub {
    addr: SocketAddr,
    store: Store,
    feed: StationFeed,
    _dir: tempfile::TempDir,
}

async fn start() -> Hub {
    start_with(CONFIG).await
}

async fn start_with(text: &str) -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(text, dir.path()).unwrap();
    std::fs::create_dir_all(&config.store.data_dir).unwrap();
    let store = Store::open(
        &config.database_path(),
        config.site.id.as_str(),
        &StoreOptions::default(),
    )
    .unwrap();
    let s = store.clone();
    tokio::task::spawn_blocking(move || seed(&s)).await.unwrap();
    let feed = StationFeed::new();
    let app = StationApp::new(store.clone(), Site::of(&config), feed.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(app)).await });
    Hub {
        addr,
        store,
        feed,
        _dir: dir,
    }
}

/// Pairs a tablet and signs `staff` in; returns the cookies and the page.
async fn signed_in(hub: &Hub, code: &str, staff: &str, pin: &str) -> (Vec<String>, Answer) {
    let signed = pair_and_sign_in(hub.addr, code, staff, pin).await;
    (signed.cookies(), signed.page)
}

struct Tablet<'a> {
    hub: &'a Hub,
    cookies: Vec<String>,
    csrf: String,
}

impl Tablet<'_> {
    async fn post(&self, path: &str, body: &str) -> Answer {
        let cookies: Vec<&str> = self.cookies.iter().map(String::as_str).collect();
        let origin = format!("http://{}", self.hub.addr);
        request(
            self.hub.addr,
            "POST",
            path,
            &cookies,
            Some(&origin),
            &format!("csrf={}&{body}", self.csrf),
        )
        .await
    }
}

fn line_state(store: &Store, line_no: u32) -> deliveries::BenchLine {
    store
        .read_blocking(move |c| {
            deliveries::bench_delivery(c, "D1", &Default::default(), "2026-01-01".parse().unwrap())
        })
        .unwrap()
        .unwrap()
        .lines
        .into_iter()
        .find(|l| l.line.line_no == line_no)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_is_received_on_the_bench_screen_in_the_clerks_words() {
    let hub = start().await;
    let (cookies, page) = signed_in(&hub, "11223344", "li", "2468").await;
    // The home page of a receiving station is the bench: today's delivery with its progress.
    assert!(page.body.contains("收货台"), "{}", page.body);
    assert!(page.body.contains("D1") && page.body.contains("光明乳业"));
    assert!(page.body.contains("▣ 2 待处理"), "{}", page.body);
    let clerk = Tablet {
        hub: &hub,
        csrf: page.field("csrf"),
        cookies,
    };

    // Opening the delivery shows its expected lines with names and the proposed decision.
    let opened = clerk
        .post("/station/receiving/open", "delivery=D1&line=1")
        .await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    assert!(opened.body.contains("已打开 D1 第 1 行"), "{}", opened.body);
    assert!(opened.body.contains("鲜牛奶 1L") && opened.body.contains("鸡蛋 10 枚"));
    assert!(opened.body.contains("系统建议"), "{}", opened.body);
    assert!(opened.body.contains("未点数"), "{}", opened.body);
    assert!(!opened.body.contains("NotCounted") && !opened.body.contains("not_counted"));

    // A code that is not valid is flagged red on the open line, with its reason in Chinese.
    let flagged = clerk
        .post(
            "/station/receiving/scan",
            "code=%2801%2912345678901234%2821%29X1",
        )
        .await;
    assert!(
        flagged.body.contains("data-tone=\"error\""),
        "{}",
        flagged.body
    );
    assert!(flagged.body.contains("第 1 行已标记"), "{}", flagged.body);

    // A stable weight from the bench's scale (as the device dispatcher reports it) shows on
    // the screen, and the line's weighed figure is the recorded one.
    let site = Site::of(&config(Path::new("/")));
    let s = hub.store.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        s.write_blocking(move |c| {
            hub::workflows::devices::weighed(
                c,
                &site,
                hub::workflows::devices::Source {
                    device: "scale-1",
                    station: "dock",
                    pickup: false,
                },
                9_480,
                "S S 9.480 kg",
                Timestamp(2_000),
            )
        })
    })
    .await
    .unwrap()
    .unwrap();
    hub::station_app::receiving::show_device_input(&hub.feed, "dock", &outcome, Timestamp(2_000));
    let cookies: Vec<&str> = clerk.cookies.iter().map(String::as_str).collect();
    let live = request(
        hub.addr,
        "GET",
        "/station/receiving/current",
        &cookies,
        None,
        "",
    )
    .await;
    assert!(
        live.body.contains("已记录稳定重量 9480 克"),
        "{}",
        live.body
    );
    assert!(
        live.body.contains("<b id=\"scale\">9480 克</b>"),
        "{}",
        live.body
    );

    // Negative and absurd counts are refused in the clerk's words; nothing is recorded.
    for bad in ["-3", "99999999999"] {
        let refused = clerk
            .post(
                "/station/receiving/action",
                &format!("request_id=r-bad{bad}&op=count&delivery=D1&line=1&count={bad}"),
            )
            .await;
        assert!(
            refused.body.contains(&format!("数量 {bad} 不可能")),
            "{}",
            refused.body
        );
        assert_eq!(line_state(&hub.store, 1).observed.counted_by_staff, None);
    }
    let not_a_number = clerk
        .post(
            "/station/receiving/action",
            "request_id=r-nan&op=count&delivery=D1&line=1&count=ten",
        )
        .await;
    assert!(
        not_a_number.body.contains("需要一个数字"),
        "{}",
        not_a_number.body
    );

    // A count is applied once per request id: the same request again changes nothing.
    let counted = clerk
        .post(
            "/station/receiving/action",
            "request_id=r-1&op=count&delivery=D1&line=1&count=10",
        )
        .await;
    assert!(
        counted.body.contains("已保存第 1 行的数量"),
        "{}",
        counted.body
    );
    clerk
        .post(
            "/station/receiving/action",
            "request_id=r-2&op=count&delivery=D1&line=1&count=9",
        )
        .await;
    clerk
        .post(
            "/station/receiving/action",
            "request_id=r-1&op=count&delivery=D1&line=1&count=10",
        )
        .await;
    assert_eq!(line_state(&hub.store, 1).observed.counted_by_staff, Some(9));

    // Confirming the decision holds the line (short, no weight, no photo) with its reasons.
    let decided = clerk
        .post(
            "/station/receiving/action",
            "request_id=r-3&op=decide&delivery=D1&line=1",
        )
        .await;
    assert!(decided.body.contains("第 1 行已决定"), "{}", decided.body);
    assert!(decided.body.contains("暂扣待审"), "{}", decided.body);
    assert!(
        decided.body.contains("数量不足：应到 10，实点 9"),
        "{}",
        decided.body
    );
    let held = line_state(&hub.store, 1);
    assert_eq!(held.state, deliveries::LineState::Held);
    let held_quantity = held.decision.as_ref().unwrap().decision.held;
    assert!(held_quantity > 0);

    // A clerk may not release held stock.
    let by_clerk = clerk
        .post(
            "/station/receiving/action",
            &format!("request_id=r-4&op=release&delivery=D1&line=1&release={held_quantity}&reject=0&reason=checked_by_hand"),
        )
        .await;
    assert_eq!(by_clerk.status, 403, "{}", by_clerk.body);
    assert!(by_clerk.body.contains("只有主管"), "{}", by_clerk.body);
    assert_eq!(line_state(&hub.store, 1).state, deliveries::LineState::Held);

    // A supervisor on another tablet releases it; the line then says so, and stock is there.
    let (cookies, page) = signed_in(&hub, "55667788", "wang", "1357").await;
    let boss = Tablet {
        hub: &hub,
        csrf: page.field("csrf"),
        cookies,
    };
    let released = boss
        .post(
            "/station/receiving/action",
            &format!("request_id=b-1&op=release&delivery=D1&line=1&release={held_quantity}&reject=0&reason=checked_by_hand"),
        )
        .await;
    assert!(
        released.body.contains("暂扣的货已处理") || released.body.contains("暂扣已处理"),
        "{}",
        released.body
    );
    assert!(released.body.contains("暂扣后已放行"), "{}", released.body);
    assert_eq!(
        line_state(&hub.store, 1).state,
        deliveries::LineState::Released
    );
    let (on_hand, who) = hub
        .store
        .read_blocking(|c| {
            let on_hand = ledger::balances(c)?
                .into_iter()
                .find(|b| b.sku == "MILK")
                .map(|b| b.on_hand)
                .unwrap_or(0);
            let who = staff_store::count_actions(c, "wang", "receive_release")?;
            Ok::<_, StoreError>((on_hand, who))
        })
        .unwrap();
    assert_eq!(on_hand, 9);
    assert_eq!(who, 1, "the release is recorded with the supervisor's id");

    // Closing the delivery decides the rest; any action after it is refused in words.
    let closed = clerk
        .post(
            "/station/receiving/action",
            "request_id=r-5&op=close&delivery=D1",
        )
        .await;
    assert!(closed.body.contains("到货单 D1 已关闭"), "{}", closed.body);
    let events_before = hub
        .store
        .read_blocking(|c| outbox::pending(c, 0, 10_000).map(|e| e.len()))
        .unwrap();
    let late = clerk
        .post(
            "/station/receiving/action",
            "request_id=r-6&op=count&delivery=D1&line=2&count=5",
        )
        .await;
    assert!(late.body.contains("已关闭，不能再操作"), "{}", late.body);
    let events_after = hub
        .store
        .read_blocking(|c| outbox::pending(c, 0, 10_000).map(|e| e.len()))
        .unwrap();
    assert_eq!(
        events_before, events_after,
        "nothing recorded after the close"
    );
    assert_eq!(line_state(&hub.store, 2).observed.counted_by_staff, None);

    // In English for an English-speaking clerk: the words come from the same catalogue.
    let page = request(
        hub.addr,
        "GET",
        "/station/receiving/current",
        &clerk.cookies.iter().map(String::as_str).collect::<Vec<_>>(),
        None,
        "",
    )
    .await;
    assert!(page.body.contains("暂扣后已放行"), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_imports_central_command_files_in_the_app_and_every_error_is_listed() {
    let hub = start().await;
    let (clerk, _) = signed_in(&hub, "11223344", "li", "2468").await;
    let clerk: Vec<&str> = clerk.iter().map(String::as_str).collect();
    let page = request(hub.addr, "GET", "/station/import", &clerk, None, "").await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("仅限主管"), "{}", page.body);

    let (boss, home) = signed_in(&hub, "55667788", "wang", "1357").await;
    let boss: Vec<&str> = boss.iter().map(String::as_str).collect();
    let csrf = home.field("csrf");
    let page = request(hub.addr, "GET", "/station/import", &boss, None, "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(r#"data-kind="sku_upsert""#),
        "{}",
        page.body
    );
    let upload = |kind: &'static str, body: String, csrf: String| {
        let boss = boss.clone();
        let addr = hub.addr;
        async move {
            post_body(
                addr,
                &format!("/station/import?kind={kind}"),
                &boss,
                &[
                    ("X-CSRF-Token", &csrf),
                    ("Content-Type", "application/json"),
                ],
                body.as_bytes(),
            )
            .await
        }
    };
    let sku = |id: &str, code: &str, name: &str| {
        serde_json::json!({"v":1,"id":id,"site":"pp-1","kind":"sku_upsert","key":code,"version":1,
            "body":{"code":code,"name":name,"unit":"piece","gtins":[],"allow_negative":false,"version":1}})
    };
    let skus = || hub.store.read_blocking(sku_store::codes).unwrap();
    let before = skus();

    // Without the CSRF token: refused.
    let forged = upload("sku_upsert", "[]".into(), "wrong".into()).await;
    assert_eq!(forged.status, 403);
    // Two mistakes in a file of three: both listed, nothing imported.
    let bad = serde_json::json!([
        sku("c-1", "RICE", "大米 5kg"),
        {"v":1,"id":"c-2","site":"pp-1","kind":"pickup_order","key":"P1","version":1,"body":{}},
        {"v":1,"site":"pp-1","kind":"sku_upsert","key":"OIL","version":1,"body":{}}
    ]);
    let answer = upload("sku_upsert", bad.to_string(), csrf.clone()).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(
        answer.body.contains("文件有 2 处错误，未导入任何内容"),
        "{}",
        answer.body
    );
    assert!(
        answer
            .body
            .contains("第 2 条命令（编号 c-2）：这是取货订单命令，本文件只能有商品资料命令"),
        "{}",
        answer.body
    );
    assert_eq!(skus(), before);
    let answer = upload("sku_upsert", "{not json".into(), csrf.clone()).await;
    assert!(answer.body.contains("不是有效的 JSON"), "{}", answer.body);

    // A good file: applied once; the same file again is recognised.
    let good = serde_json::json!([sku("c-1", "RICE", "大米 5kg"), sku("c-3", "OIL", "花生油")]);
    let answer = upload("sku_upsert", good.to_string(), csrf.clone()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer.body.contains("c-1：RICE 第 1 版，已导入"),
        "{}",
        answer.body
    );
    assert!(skus().contains(&"RICE".to_owned()) && skus().contains(&"OIL".to_owned()));
    let again = upload("sku_upsert", good.to_string(), csrf.clone()).await;
    assert!(again.body.contains("c-1：之前已导入"), "{}", again.body);
    let imports = hub
        .store
        .read_blocking(|c| staff_store::count_actions(c, "wang", "import"))
        .unwrap();
    assert_eq!(imports, 2);
}

/// A photo of the selected line with a stored copy, as the vision check records it.
fn stored_photo(sha: char) -> hub_core::receiving::PhotoEvidence {
    hub_core::receiving::PhotoEvidence {
        photo_sha256: std::iter::repeat_n(sha, 64).collect(),
        photo_path: Some(format!("evidence/{sha}.jpg")),
        model_name: "efficientnet-lite0".into(),
        model_sha256: "0".repeat(64),
        backend: "tract".into(),
        top_k: vec![],
        expected_labels: vec![],
        min_probability: 0.2,
        verdict: hub_core::receiving::PhotoVerdict::NeedsReview,
        reasons: vec![],
        duration_ms: 1.0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_opens_answers_and_settles_a_dispute_on_the_bench_screen() {
    let hub = start().await;
    let (cookies, page) = signed_in(&hub, "55667788", "wang", "1357").await;
    let boss = Tablet {
        hub: &hub,
        csrf: page.field("csrf"),
        cookies,
    };
    let opened = boss
        .post("/station/receiving/open", "delivery=D1&line=1")
        .await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    // No dispute yet: the supervisor can open one about the selected line, whose stored photos
    // are listed (none yet).
    assert!(opened.body.contains("发起争议"), "{}", opened.body);
    assert!(opened.body.contains("本行没有已存照片"), "{}", opened.body);
    hub.store
        .write(|c| {
            deliveries::record_photo(c, "dock", &stored_photo('a'), Timestamp(3_000))?;
            deliveries::record_photo(c, "dock", &stored_photo('b'), Timestamp(3_100))
        })
        .await
        .unwrap();

    // An empty note is refused in words; nothing is opened.
    let empty = boss
        .post(
            "/station/receiving/dispute",
            "request_id=q-0&op=open&delivery=D1&line=1&note=++",
        )
        .await;
    assert!(empty.body.contains("争议需要写明说明"), "{}", empty.body);

    let open = boss
        .post(
            "/station/receiving/dispute",
            "request_id=q-1&op=open&delivery=D1&line=1&note=%E7%93%B6%E7%9B%96%E6%BC%8F%E5%A5%B6",
        )
        .await;
    assert!(
        open.body.contains("已对到货单 D1 发起争议"),
        "{}",
        open.body
    );
    assert!(open.body.contains("瓶盖漏奶"), "{}", open.body);
    assert!(open.body.contains("aaaaaaaaaaaa"), "{}", open.body);
    // The same request again is applied once.
    boss.post(
        "/station/receiving/dispute",
        "request_id=q-1&op=open&delivery=D1&line=1&note=%E7%93%B6%E7%9B%96%E6%BC%8F%E5%A5%B6",
    )
    .await;

    // A clerk sees the dispute but may not act on it: refused with the reason in Chinese.
    let (cookies, page) = signed_in(&hub, "11223344", "li", "2468").await;
    let clerk = Tablet {
        hub: &hub,
        csrf: page.field("csrf"),
        cookies,
    };
    let by_clerk = clerk
        .post(
            "/station/receiving/dispute",
            "request_id=c-1&op=settle&delivery=D1&note=ok",
        )
        .await;
    assert_eq!(by_clerk.status, 403, "{}", by_clerk.body);
    assert!(
        by_clerk.body.contains("争议只能由主管或店长处理"),
        "{}",
        by_clerk.body
    );

    for (id, op, note, said) in [
        (
            "q-2",
            "respond",
            "called+the+dairy",
            "已记录对到货单 D1 争议的响应",
        ),
        (
            "q-3",
            "photos_inspected",
            "caps+cracked",
            "已记录到货单 D1 的照片已查看",
        ),
        (
            "q-4",
            "settle",
            "credited+2+bottles",
            "到货单 D1 的争议已结案",
        ),
    ] {
        let answer = boss
            .post(
                "/station/receiving/dispute",
                &format!("request_id={id}&op={op}&delivery=D1&note={note}"),
            )
            .await;
        assert!(answer.body.contains(said), "{op}: {}", answer.body);
    }
    // Settling twice is refused in the supervisor's words.
    let twice = boss
        .post(
            "/station/receiving/dispute",
            "request_id=q-5&op=settle&delivery=D1&note=again",
        )
        .await;
    assert!(twice.body.contains("没有未结争议"), "{}", twice.body);

    let episodes = hub
        .store
        .read(|c| deliveries::dispute_episodes(c, "D1"))
        .await
        .unwrap();
    assert_eq!(episodes.len(), 1, "{episodes:#?}");
    let e = &episodes[0];
    assert_eq!(
        (
            e.opened_by.as_deref(),
            e.note.as_str(),
            e.line_no,
            e.closed_by.as_deref(),
            e.settle_note.as_deref()
        ),
        (
            Some("wang"),
            "瓶盖漏奶",
            Some(1),
            Some("wang"),
            Some("credited 2 bottles")
        )
    );
    assert_eq!(
        e.photos,
        vec!["a".repeat(64), "b".repeat(64)],
        "the line's stored photos are the dispute's evidence"
    );
    assert_eq!(
        e.responses
            .iter()
            .map(|r| (r.kind.as_str(), r.note.as_str()))
            .collect::<Vec<_>>(),
        [
            ("note", "called the dairy"),
            ("photo_inspection", "caps cracked")
        ]
    );
    let first = e.first_response.as_ref().unwrap();
    assert_eq!((first.kind.as_str(), first.by.as_str()), ("note", "wang"));
    assert!(first.photos_inspected_at.is_some());
    let (recorded, events) = hub
        .store
        .read(|c| {
            let recorded = staff_store::count_actions(c, "wang", "receive_dispute")?;
            let events: Vec<String> = outbox::pending(c, 0, 10_000)?
                .into_iter()
                .filter(|e| e.kind.starts_with("dispute_"))
                .map(|e| e.kind)
                .collect();
            Ok::<_, StoreError>((recorded, events))
        })
        .await
        .unwrap();
    // Each request recorded with the supervisor's id (the repeated one too, as a request; its
    // effects once), and the upstream events once each.
    assert!(recorded >= 4, "{recorded}");
    assert_eq!(
        events,
        [
            "dispute_opened",
            "dispute_responded",
            "dispute_responded",
            "dispute_closed"
        ]
    );
    // Settled: the screen offers to open a new one, and shows the settled episode.
    let page = request(
        hub.addr,
        "GET",
        "/station/receiving/current",
        &boss.cookies.iter().map(String::as_str).collect::<Vec<_>>(),
        None,
        "",
    )
    .await;
    assert!(page.body.contains("已结"), "{}", page.body);
    assert!(page.body.contains("credited 2 bottles"), "{}", page.body);
    assert!(page.body.contains("dispute-open"), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_holds_a_line_for_review_with_a_reason_from_the_list() {
    let hub = start().await;
    let (cookies, page) = signed_in(&hub, "11223344", "li", "2468").await;
    let clerk = Tablet {
        hub: &hub,
        csrf: page.field("csrf"),
        cookies,
    };
    let opened = clerk
        .post("/station/receiving/open", "delivery=D1&line=2")
        .await;
    assert!(opened.body.contains(r#"id="hold-form""#), "{}", opened.body);
    clerk
        .post(
            "/station/receiving/action",
            "request_id=h-1&op=count&delivery=D1&line=2&count=5",
        )
        .await;
    // A reason not on the list: refused in words, the line still waits.
    let bad = clerk
        .post(
            "/station/receiving/action",
            "request_id=h-2&op=hold&delivery=D1&line=2&reason=looks+odd",
        )
        .await;
    assert!(bad.body.contains("请从列表中选择扣留原因"), "{}", bad.body);
    assert_eq!(
        line_state(&hub.store, 2).state,
        deliveries::LineState::Waiting
    );

    let held = clerk
        .post(
            "/station/receiving/action",
            "request_id=h-3&op=hold&delivery=D1&line=2&reason=damaged_packaging",
        )
        .await;
    assert!(
        held.body.contains("收货员扣留待审：包装破损"),
        "{}",
        held.body
    );
    let line = line_state(&hub.store, 2);
    assert_eq!(line.state, deliveries::LineState::Held);
    let decision = line.decision.unwrap().decision;
    assert_eq!((decision.accepted, decision.held), (0, 5));
    assert!(
        decision
            .reasons
            .contains(&hub_core::receiving::Reason::HeldByStaff {
                reason: hub_core::receiving::HoldReason::DamagedPackaging
            }),
        "{:?}",
        decision.reasons
    );
}

/// The bench scale's reading while the load settles reaches the signed-in bench's live channel
/// (SSE `weight` events) from a networked scale on a real broker; only the stable weight is
/// journaled and recorded on the line, and the screen has the greyed place for the live one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_scales_live_reading_reaches_the_screen_and_only_the_stable_weight_is_recorded() {
    use hub_mqtt::brokers::{Mosquitto, MosquittoOptions};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let broker_dir = tempfile::tempdir().unwrap();
    let mut broker = Mosquitto::start(broker_dir.path(), &MosquittoOptions::default())
        .expect("start mosquitto (apt-get install mosquitto)");
    let port = broker.port();
    let text = format!(
        "{CONFIG}[device_broker]\nhost = \"127.0.0.1\"\nport = {port}\n\
         [[devices]]\nname = \"bench-scale\"\nkind = \"scale\"\ntransport = \"mqtt\"\n\
         topic = \"bench/scale\"\nstation = \"dock\"\nstable_readings = 2\n"
    );
    let hub = start_with(&text).await;
    let config = Config::parse(&text, hub._dir.path()).unwrap();
    let tracker = tokio_util::task::TaskTracker::new();
    let shutdown = tokio_util::sync::CancellationToken::new();
    hub::devices::spawn(&config, &hub.store, &hub.feed, &tracker, &shutdown);

    let (cookies, page) = signed_in(&hub, "11223344", "li", "2468").await;
    let clerk = Tablet {
        hub: &hub,
        csrf: page.field("csrf"),
        cookies,
    };
    let opened = clerk
        .post("/station/receiving/open", "delivery=D1&line=1")
        .await;
    assert!(
        opened.body.contains(r#"id="live-weight""#),
        "{}",
        opened.body
    );
    assert!(opened.body.contains("称重中…"), "{}", opened.body);

    // The screen's live channel.
    let mut sse = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    sse.write_all(
        format!(
            "GET /station/events HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\n\r\n",
            hub.addr,
            clerk.cookies.join("; ")
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut heard = String::new();
    let mut listen = async |heard: &mut String, wanted: &str| {
        let mut buf = [0u8; 4096];
        if let Ok(Ok(n)) =
            tokio::time::timeout(std::time::Duration::from_millis(100), sse.read(&mut buf)).await
        {
            heard.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        heard.contains(wanted)
    };

    let mut options = rumqttc::MqttOptions::new("bench-scale-device", "127.0.0.1", port);
    options.set_keep_alive(std::time::Duration::from_secs(5));
    let (scale, mut eventloop) = rumqttc::AsyncClient::new(options, 64);
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let publish = async |payload: &str| {
        scale
            .publish(
                "bench/scale",
                rumqttc::QoS::AtLeastOnce,
                false,
                payload.as_bytes().to_vec(),
            )
            .await
            .unwrap();
    };

    // The load settles: readings the scale marks unstable are shown live, as they come (the
    // hub subscribes a moment after it connects, so they are sent until one is heard).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        publish(r#"{"grams": 700, "stable": false}"#).await;
        if listen(&mut heard, "event: weight\ndata: 700").await {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no live reading on the bench's channel: {heard}"
        );
    }
    // A live reading is not a result: the bench's current result is untouched.
    assert!(hub.feed.current("dock").is_none_or(|c| !matches!(
        c.shown,
        hub::station_app::feed::Shown::Receiving(hub::station_app::feed::Bench::Weight { .. })
    )));

    // Then the load is stable: that weight, and only it, is journaled and recorded.
    publish(r#"{"grams": 1250, "stable": true}"#).await;
    publish(r#"{"grams": 1250, "stable": true}"#).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while line_state(&hub.store, 1).observed.weights_g.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the stable weight was not recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(line_state(&hub.store, 1).observed.weights_g, [1250]);
    let journal = hub
        .store
        .read_blocking(|c| hub::store::device_input::recent(c, 1_000))
        .unwrap();
    let weights: Vec<Option<i64>> = journal
        .iter()
        .filter(|r| r.device == "bench-scale")
        .map(|r| r.grams)
        .collect();
    assert_eq!(weights, [Some(1250)], "a live reading was journaled");
    while !listen(&mut heard, "event: changed").await {
        assert!(
            std::time::Instant::now() < deadline,
            "the recorded weight was not announced: {heard}"
        );
    }
    shutdown.cancel();
    tracker.close();
    tracker.wait().await;
    broker.stop();
}

/// A supervisor reverses a received line's receipt on the bench ("撤销收货"),
/// with a reason from the list and a ticked confirmation; the stock leaves again, the line
/// waits, a repeated request is applied once, a clerk never gets the action, and a refusal
/// (stock already gone since the receipt) is said in words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_reverses_a_received_line_on_the_bench_and_it_waits_again() {
    let hub = start_with(&format!("{CONFIG}[receiving]\nphoto_required = false\n")).await;
    let site = Site::of(&Config::parse(CONFIG, Path::new("/")).unwrap());
    let (cookies, page) = signed_in(&hub, "11223344", "li", "2468").await;
    let clerk = Tablet {
        hub: &hub,
        csrf: page.field("csrf"),
        cookies,
    };
    // The clerk receives line 1 whole: counted, weighed, confirmed.
    let receive = |request: &'static str| {
        let (store, site) = (hub.store.clone(), site.clone());
        let clerk = &clerk;
        async move {
            clerk
                .post("/station/receiving/open", "delivery=D1&line=1")
                .await;
            clerk
                .post(
                    "/station/receiving/action",
                    &format!("request_id={request}c&op=count&delivery=D1&line=1&count=10"),
                )
                .await;
            hub::workflows::receiving::weight(&store, &site, "dock", 10_000, hub::clock::now())
                .await
                .unwrap();
            let decided = clerk
                .post(
                    "/station/receiving/action",
                    &format!("request_id={request}d&op=decide&delivery=D1&line=1"),
                )
                .await;
            assert!(
                !decided.body.contains(r#"id="reverse""#),
                "a clerk: {}",
                decided.body
            );
        }
    };
    receive("a").await;
    let on_hand = || {
        hub.store
            .read_blocking(|c| ledger::lot(c, &SkuCode::new("MILK").unwrap(), "L1"))
            .unwrap()
            .map(|(_, n)| n)
            .unwrap_or(0)
    };
    assert_eq!(
        line_state(&hub.store, 1).state,
        deliveries::LineState::Accepted
    );
    assert_eq!(on_hand(), 10);
    // A clerk's forged request is refused.
    let forged = clerk
        .post(
            "/station/receiving/action",
            "request_id=v-0&op=reverse&delivery=D1&line=1&reason=count_error&confirm=yes",
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);

    let (cookies, page) = signed_in(&hub, "55667788", "wang", "1357").await;
    let boss = Tablet {
        hub: &hub,
        csrf: page.field("csrf"),
        cookies,
    };
    let opened = boss
        .post("/station/receiving/open", "delivery=D1&line=1")
        .await;
    assert!(opened.body.contains(r#"id="reverse""#), "{}", opened.body);
    assert!(opened.body.contains("撤销收货") && opened.body.contains("数量或重量记错"));
    // Not confirmed, or a reason not on the list: said in words, nothing changes.
    let unconfirmed = boss
        .post(
            "/station/receiving/action",
            "request_id=v-1&op=reverse&delivery=D1&line=1&reason=count_error",
        )
        .await;
    assert!(
        unconfirmed.body.contains("请先勾选确认"),
        "{}",
        unconfirmed.body
    );
    let odd = boss
        .post(
            "/station/receiving/action",
            "request_id=v-2&op=reverse&delivery=D1&line=1&reason=looks+odd&confirm=yes",
        )
        .await;
    assert!(odd.body.contains("请从列表中选择撤销原因"), "{}", odd.body);
    assert_eq!(on_hand(), 10);

    let body = "request_id=v-3&op=reverse&delivery=D1&line=1&reason=count_error&confirm=yes";
    let reversed = boss.post("/station/receiving/action", body).await;
    assert!(reversed.body.contains("入库已撤销"), "{}", reversed.body);
    assert_eq!(on_hand(), 0);
    assert_eq!(
        line_state(&hub.store, 1).state,
        deliveries::LineState::Waiting
    );
    // The same request again (a double tap, a retry) is applied once.
    boss.post("/station/receiving/action", body).await;
    assert_eq!(on_hand(), 0);
    let (events, reversals, by): (usize, i64, String) = hub
        .store
        .read_blocking(|c| {
            let events = outbox::pending(c, 0, 10_000)?
                .iter()
                .filter(|e| e.kind == "receipt_reversed")
                .count();
            let (n, by) = c
                .query_row(
                    "SELECT COUNT(*), MAX(staff) FROM receipt_reversal",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(hub::store::sql_error(c))?;
            Ok::<_, StoreError>((events, n, by))
        })
        .unwrap();
    assert_eq!((events, reversals, by.as_str()), (1, 1, "wang"));

    // Redone, the line stocks again; once some of it has left, the reversal is refused in words.
    receive("b").await;
    assert_eq!(on_hand(), 10);
    tokio::task::block_in_place(|| {
        hub.store.write_blocking(|c| {
            ledger::record(
                c,
                &hub_core::Movement {
                    id: hub_core::MovementId::new("loss-1").unwrap(),
                    sku: SkuCode::new("MILK").unwrap(),
                    batch: Some(hub_core::BatchKey {
                        lot: "L1".into(),
                        expiry: "2999-12-31".parse().ok(),
                    }),
                    kind: hub_core::MovementKind::Loss,
                    quantity: 2,
                    reason: "dropped".into(),
                    reference: "test".into(),
                    at: hub::clock::now(),
                },
            )
            .map(|_| ())
        })
    })
    .unwrap();
    let refused = boss
        .post(
            "/station/receiving/action",
            "request_id=v-4&op=reverse&delivery=D1&line=1&reason=damage_found&confirm=yes",
        )
        .await;
    assert!(
        refused.body.contains("本次入库 10 中已有 2 出库，不能撤销"),
        "{}",
        refused.body
    );
    assert_eq!(on_hand(), 8);
}

/// A store manager may do what a supervisor may on the bench: the reversal form is shown to a
/// manager and the reversal is applied (a manager was refused as "not a supervisor" before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_manager_reverses_a_receipt_like_a_supervisor() {
    let hub = start_with(&format!("{CONFIG}[receiving]\nphoto_required = false\n")).await;
    let site = Site::of(&Config::parse(CONFIG, Path::new("/")).unwrap());
    let (cookies, page) = signed_in(&hub, "11223344", "li", "2468").await;
    let clerk = Tablet {
        hub: &hub,
        csrf: page.field("csrf"),
        cookies,
    };
    clerk
        .post("/station/receiving/open", "delivery=D1&line=1")
        .await;
    clerk
        .post(
            "/station/receiving/action",
            "request_id=m-c&op=count&delivery=D1&line=1&count=10",
        )
        .await;
    hub::workflows::receiving::weight(&hub.store, &site, "dock", 10_000, hub::clock::now())
        .await
        .unwrap();
    clerk
        .post(
            "/station/receiving/action",
            "request_id=m-d&op=decide&delivery=D1&line=1",
        )
        .await;
    let on_hand = || {
        hub.store
            .read_blocking(|c| ledger::lot(c, &SkuCode::new("MILK").unwrap(), "L1"))
            .unwrap()
            .map(|(_, n)| n)
            .unwrap_or(0)
    };
    assert_eq!(on_hand(), 10);
    let (cookies, page) = signed_in(&hub, "99001122", "zhou", "1357").await;
    let manager = Tablet {
        hub: &hub,
        csrf: page.field("csrf"),
        cookies,
    };
    let opened = manager
        .post("/station/receiving/open", "delivery=D1&line=1")
        .await;
    assert!(opened.body.contains(r#"id="reverse""#), "{}", opened.body);
    let reversed = manager
        .post(
            "/station/receiving/action",
            "request_id=m-r&op=reverse&delivery=D1&line=1&reason=count_error&confirm=yes",
        )
        .await;
    assert!(reversed.body.contains("入库已撤销"), "{}", reversed.body);
    assert_eq!(on_hand(), 0);
    assert_eq!(
        line_state(&hub.store, 1).state,
        deliveries::LineState::Waiting
    );
}

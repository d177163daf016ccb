//! The stock screen and the manager's dashboard in a real browser: headless Debian `chromium`
//! over WebDriver (`chromedriver`) against `hub run`. A supervisor pairs a tablet and signs in;
//! the stock screen shows lots (an expired one marked) and tiers; the dashboard for a fixed
//! fortnight of generated days shows the same figures as `hub report --json` for that period,
//! a chart per figure with one point per day that has a value, and the 7 × 24 heat map.
//! Screenshots in zh-CN and en at 1024×768 and 390×844 go to `docs/screens/`.

use hub::store::{Store, StoreError, StoreOptions, bench_site, ledger, sku as sku_store};
use hub_core::{BatchKey, Movement, MovementId, MovementKind, Sku, SkuCode, StockUnit, Timestamp};
use serde_json::{Value, json};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tests::browser::{Driver, free_port};
use tests::{LogOnFailure, Reaped, hub, hub_binary, stderr, stdout, workspace_root};

/// Fourteen generated days from 2026-03-01 (site time) and a SKU with three lots.
fn seed(db: &Path) {
    let store = Store::open(db, "browser-1", &StoreOptions::default()).unwrap();
    // 2026-03-01 00:00 in Asia/Shanghai (UTC+8, no DST).
    let start: i64 = 1_772_294_400_000;
    store
        .write_blocking(move |c| {
            let sku = Sku::new(SkuCode::new("MILK").unwrap(), "鲜牛奶 1L", StockUnit::Piece);
            sku_store::upsert(c, &sku, Timestamp(0))?;
            for (id, lot, expiry, quantity) in [
                ("s1", "OLD", "2000-01-01", 3),
                ("s2", "FAR", "2999-01-01", 12),
            ] {
                let m = Movement {
                    id: MovementId::new(id).unwrap(),
                    sku: sku.code.clone(),
                    batch: Some(BatchKey::new(lot, expiry.parse().ok()).unwrap()),
                    kind: MovementKind::Receipt,
                    quantity,
                    reason: String::new(),
                    reference: "delivery D1".into(),
                    at: Timestamp(start),
                };
                ledger::record(c, &m).map_err(|e| match e {
                    ledger::RecordError::Store(e) => e,
                    other => panic!("{other}"),
                })?;
            }
            // After the ledger's own rows: the generated rows take the next journal numbers.
            bench_site::fill(c, start, 14, 600, 11)?;
            // The day-ahead forecasts the hub's daily job made on each of those days.
            bench_site::record_forecasts(c, start, 14, chrono_tz::Asia::Shanghai)?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
    store.close();
}

#[test]
fn a_supervisor_sees_stock_and_the_dashboard_equal_to_hub_report_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "[site]\nid = \"browser-1\"\nname = \"浏览器测试站\"\ntimezone = \"Asia/Shanghai\"\n\
             [store]\ndata_dir = \"{}\"\n[status]\nlisten = \"127.0.0.1:{port}\"\n\
             [[stations]]\nid = \"desk-1\"\nkind = \"pickup\"\nname = \"取货台 1\"\n",
            dir.path().join("data").display(),
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let listed = hub(&["staff", "list", "--config", cfg]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    seed(&dir.path().join("data").join("hub-browser-1.sqlite"));
    let added = Command::new(hub_binary())
        .args([
            "staff",
            "add",
            "wang",
            "--name",
            "王主管",
            "--role",
            "supervisor",
            "--config",
            cfg,
        ])
        .env("HUB_STAFF_PIN", "1357")
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", stderr(&added));
    let (from, to) = ("2026-03-01", "2026-03-15");
    let report = hub(&[
        "report", "--from", from, "--to", to, "--json", "--config", cfg,
    ]);
    assert!(report.status.success(), "{}", stderr(&report));
    let report: Value = serde_json::from_str(&stdout(&report)).unwrap();
    let paired = hub(&["station", "pair", "desk-1", "--config", cfg]);
    assert!(paired.status.success(), "{}", stderr(&paired));
    let text = stdout(&paired);
    let code: String = text
        .split("desk-1: ")
        .nth(1)
        .unwrap()
        .chars()
        .take(8)
        .collect();

    let (_hub_log, hub_stderr) = LogOnFailure::create(&dir.path().join("hub.log"));
    let _hub = Reaped::spawn(
        Command::new(hub_binary())
            .args(["run", "--config", cfg])
            .stdout(Stdio::null())
            .stderr(hub_stderr),
    );
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "hub did not serve");
        std::thread::sleep(Duration::from_millis(100));
    }
    let screens: PathBuf = workspace_root().join("docs").join("screens");
    let mut browser = Driver::start();
    browser.go(&format!("{base}/station"));
    browser.type_into("#pairing-code", &code);
    browser.click("#pair");
    browser.type_into("#staff-id", "wang");
    browser.type_into("#pin", "1357");
    browser.click("#signin");
    browser.wait_text("#who", "王主管");

    // Stock: the expired lot is marked; SKUs show their tier.
    browser.go(&format!("{base}/station/stock"));
    let old = browser.wait_text("[data-lot='OLD']", "已过期");
    assert!(old.contains("2000-01-01"), "{old}");
    assert!(browser.text("[data-lot='FAR']").contains("12"));
    assert!(browser.text("tr[data-sku='MILK']").contains("鲜牛奶 1L"));
    for (lang, w, h) in [
        ("zh", 1024, 768),
        ("zh", 390, 844),
        ("en", 1024, 768),
        ("en", 390, 844),
    ] {
        browser.size(w, h);
        browser.go(&format!(
            "{base}/station/stock?lang={}",
            if lang == "zh" { "zh-CN" } else { "en" }
        ));
        browser.find("[data-lot='OLD']");
        browser.screenshot(&screens.join(format!("stock-{lang}-{w}x{h}.png")));
    }
    browser.size(1024, 768);

    // The expired lot's alert, worst first: the supervisor acknowledges it (知悉); who and when
    // (site time) replace the button.
    browser.go(&format!("{base}/station/stock"));
    // (The generated fortnight has many expired lots; the first listed is acknowledged.)
    let expired = "li.alert[data-kind='stock_expired']";
    let alert = browser.wait_text(expired, "有过期库存");
    assert!(alert.contains("把过期批次下架并登记报损"), "{alert}");
    assert_eq!(browser.attribute(expired, "data-tier"), "red");
    let buttons = count(&mut browser, ".ack-button");
    browser.click(&format!("{expired} .ack-button"));
    let acked = browser.wait_text(&format!("{expired} .acked"), "已知悉");
    assert!(acked.contains("wang"), "{acked}");
    assert!(!acked.contains("UTC"), "site time, not UTC: {acked}");
    assert_eq!(count(&mut browser, ".ack-button"), buttons - 1);
    shots(
        &mut browser,
        &screens,
        "stock-acked",
        &format!("{base}/station/stock"),
    );

    // A loss and a stocktake on the stock screen, each said above the list and in the stock.
    correct(&mut browser, "MILK|OLD", "loss", "3", Some("expired"));
    let notice = browser.wait_text("#notice", "已记录报损");
    assert!(notice.contains("MILK · OLD: -3 → 0"), "{notice}");
    assert!(browser.attribute("#notice", "class").contains("ok"));
    shots(&mut browser, &screens, "stock-loss-zh", "");
    correct(&mut browser, "MILK|FAR", "count", "11", None);
    let notice = browser.wait_text("#notice", "MILK · FAR: -1 → 11");
    assert!(notice.starts_with('✔'), "{notice}");
    browser.go(&format!("{base}/station/stock"));
    let far = browser.wait_text("[data-lot='FAR']", "FAR");
    assert!(far.ends_with("· 11"), "{far}");
    assert!(
        !browser.exists("[data-lot='OLD']"),
        "the lot written off is gone"
    );
    // A count that is not a number is not sent (the form says so on the field); nothing is
    // recorded.
    correct(&mut browser, "MILK|FAR", "count", "十", None);
    let valid = browser.call(
        "POST",
        "/execute/sync",
        json!({"script": "return document.querySelector('#correction input[name=quantity]').validity.valid", "args": []}),
    );
    assert_eq!(valid, json!(false));
    assert!(!browser.exists("#notice"));
    browser.go(&format!("{base}/station/stock"));
    let far = browser.wait_text("[data-lot='FAR']", "FAR");
    assert!(far.ends_with("· 11"), "{far}");
    let ledger = hub(&["stock", "--json", "--config", cfg]);
    assert!(ledger.status.success(), "{}", stderr(&ledger));
    let ledger: Value = serde_json::from_str(&stdout(&ledger)).unwrap();
    let milk = ledger
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sku"] == "MILK")
        .expect("MILK in hub stock");
    assert_eq!(milk["on_hand"], 11, "{milk}");
    let far = milk["batches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["lot"] == "FAR")
        .expect("lot FAR");
    assert_eq!(far["on_hand"], 11, "{milk}");

    // The import page: a file with mistakes lists every one and imports nothing; the good file
    // is applied and its SKU named.
    let sku = |id: &str, code: &str, name: &str| {
        json!({"v":1,"id":id,"site":"browser-1","kind":"sku_upsert","key":code,"version":1,
               "body":{"code":code,"name":name,"unit":"piece","gtins":[],"allow_negative":false,"version":1}})
    };
    let bad = dir.path().join("bad-skus.json");
    let mut broken = sku("c-2", "RICE", "东北大米 5kg");
    broken["body"]["unit"] = json!("bucket");
    std::fs::write(
        &bad,
        json!([sku("c-1", "TOFU", "嫩豆腐"), broken, {"kind": "sku_upsert"}]).to_string(),
    )
    .unwrap();
    let good = dir.path().join("skus.json");
    std::fs::write(
        &good,
        json!([
            sku("c-3", "TOFU", "嫩豆腐"),
            sku("c-4", "RICE", "东北大米 5kg")
        ])
        .to_string(),
    )
    .unwrap();
    browser.go(&format!("{base}/station/stock"));
    browser.click("#import-link");
    browser.wait_text("h1", "导入文件");
    browser.pick_file("#import-sku_upsert", &bad);
    let heading = browser.wait_text("#import-heading", "未导入任何内容");
    assert!(heading.contains("2 处错误"), "{heading}");
    assert_eq!(count(&mut browser, "#import-result li.refused"), 2);
    shots(&mut browser, &screens, "import-errors-zh", "");
    let listed = stdout(&hub(&["sku", "list", "--config", cfg]));
    assert!(!listed.contains("TOFU"), "nothing imported: {listed}");
    browser.pick_file("#import-sku_upsert", &good);
    browser.wait_text("#import-result", "c-4");
    assert_eq!(count(&mut browser, "#import-result li.ok"), 2);
    assert_eq!(count(&mut browser, "#import-result li.refused"), 0);
    shots(&mut browser, &screens, "import-zh", "");
    browser.go(&format!("{base}/station/import?lang=en"));
    browser.wait_text("h1", "Import files");
    assert!(browser.text("main").contains("SKU master data"));
    shots(&mut browser, &screens, "import-en", "");
    let listed = stdout(&hub(&["sku", "list", "--config", cfg]));
    assert!(
        listed.contains("TOFU") && listed.contains("RICE"),
        "{listed}"
    );

    // The per-SKU drill-down, from the stock screen's SKU name: 30 site days with a chart.
    browser.go(&format!("{base}/station/stock"));
    browser.click("tr[data-sku='MILK'] a");
    browser.wait_text("h1", "鲜牛奶 1L");
    assert_eq!(count(&mut browser, "#drill-days tr[data-day]"), 30);
    assert!(browser.exists("#drill-chart svg"));
    // Drawn as the dashboard's charts are (it had no chart style: a row of big black dots).
    let drawn = browser.call(
        "POST",
        "/execute/sync",
        json!({"script": "const svg = document.querySelector('#drill-chart svg'); return [getComputedStyle(svg.querySelector('circle.pt')).fill, svg.getBoundingClientRect().height];", "args": []}),
    );
    assert_eq!(drawn[0], "rgb(9, 105, 218)", "{drawn}");
    assert!(drawn[1].as_f64().unwrap_or(0.0) <= 160.0, "{drawn}");
    for lang in ["zh-CN", "en"] {
        let short = if lang == "en" { "en" } else { "zh" };
        let url = format!("{base}/station/dashboard/sku?code=MILK&lang={lang}");
        shots(&mut browser, &screens, &format!("drilldown-{short}"), &url);
    }
    browser.go(&format!("{base}/station/dashboard/sku?code=MILK&lang=en"));
    browser.wait_text("#drill-days", "Day");

    // The dashboard for the same fortnight shows hub report's figures.
    browser.go(&format!("{base}/station/dashboard?from={from}&to={to}"));
    browser.wait_text("h1", "经营看板");
    for (key, path) in [
        ("stock_out_rate", vec!["stock_out_rate"]),
        ("sell_through_rate", vec!["sell_through_rate"]),
        ("acceptance_pass_rate", vec!["acceptance_pass_rate"]),
        ("order_fill_rate", vec!["order_fill_rate"]),
        ("handovers", vec!["handovers"]),
        ("receipts", vec!["receipts"]),
    ] {
        let id = browser.find(&format!("[data-figure='{key}']"));
        let shown = browser.call(
            "GET",
            &format!("/element/{id}/attribute/data-value"),
            json!({}),
        );
        let shown: f64 = shown.as_str().unwrap().parse().unwrap();
        let want = path.iter().fold(&report, |v, k| &v[*k]).as_f64().unwrap();
        assert!(
            (shown - want).abs() < 1e-9,
            "{key}: page {shown}, hub report {want}"
        );
    }
    let on_page = |browser: &mut Driver, script: &str| {
        browser.call(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
    };
    // One chart point per day with a value: 14 days of stock-out and handovers.
    let points = on_page(
        &mut browser,
        "return document.querySelectorAll(\"[data-figure='stock_out_rate'] svg circle.pt\").length",
    );
    assert_eq!(points, 14, "{points}");
    let points = on_page(
        &mut browser,
        "return document.querySelectorAll(\"[data-figure='handovers'] svg circle.pt\").length",
    );
    assert_eq!(points, 14);
    let cells = on_page(
        &mut browser,
        "return document.querySelectorAll('#heat svg rect.cell').length",
    );
    assert_eq!(cells, 168);
    // The charts are laid out (drawn with a size), not just present in the markup.
    let width = on_page(
        &mut browser,
        "return document.querySelector(\"[data-figure='stock_out_rate'] svg\").getBoundingClientRect().width",
    );
    assert!(width.as_f64().unwrap_or(0.0) > 100.0, "{width}");
    let heat_total = on_page(
        &mut browser,
        "return [...document.querySelectorAll('#heat rect.cell')].reduce((s, r) => s + Number(r.dataset.count), 0)",
    );
    assert_eq!(
        heat_total, report["handovers"],
        "the heat map sums to the handovers"
    );
    for (lang, w, h) in [
        ("zh", 1024, 768),
        ("zh", 390, 844),
        ("en", 1024, 768),
        ("en", 390, 844),
    ] {
        browser.size(w, h);
        browser.go(&format!(
            "{base}/station/dashboard?from={from}&to={to}&lang={}",
            if lang == "zh" { "zh-CN" } else { "en" }
        ));
        browser.find("#heat");
        browser.screenshot(&screens.join(format!("dashboard-{lang}-{w}x{h}.png")));
    }
}

/// Screenshots of `url` (the page as it is when `url` is empty) at 1024×768 and 390×844, as
/// `docs/screens/{name}-{lang}-{w}x{h}.png`; a name that already ends in its language keeps it,
/// others get `-zh` and `-en` (the page in both through `?lang=`).
fn shots(browser: &mut Driver, screens: &Path, name: &str, url: &str) {
    let langs: Vec<(&str, &str)> =
        if name.ends_with("-zh") || name.ends_with("-en") || url.contains("lang=") {
            vec![("", "")]
        } else {
            vec![("-zh", "zh-CN"), ("-en", "en")]
        };
    for (suffix, lang) in langs {
        for (w, h) in [(1024, 768), (390, 844)] {
            browser.size(w, h);
            if !url.is_empty() {
                let sep = if url.contains('?') { '&' } else { '?' };
                if lang.is_empty() {
                    browser.go(url);
                } else {
                    browser.go(&format!("{url}{sep}lang={lang}"));
                }
                browser.find("h1");
            }
            browser.screenshot(&screens.join(format!("{name}{suffix}-{w}x{h}.png")));
        }
    }
    browser.size(1024, 768);
}

/// Fills in and sends the stock screen's stocktake / loss form.
fn correct(browser: &mut Driver, lot: &str, kind: &str, quantity: &str, reason: Option<&str>) {
    browser.click(&format!(
        "#correction select[name=lot] option[value='{lot}']"
    ));
    browser.click(&format!("#correction input[name=kind][value={kind}]"));
    browser.type_into("#correction input[name=quantity]", quantity);
    if let Some(reason) = reason {
        browser.click(&format!(
            "#correction select[name=reason] option[value={reason}]"
        ));
    }
    browser.click("#correct");
}

/// How many elements match `css` now.
fn count(browser: &mut Driver, css: &str) -> usize {
    let found = browser.call(
        "POST",
        "/elements",
        json!({"using": "css selector", "value": css}),
    );
    found.as_array().map_or(0, Vec::len)
}

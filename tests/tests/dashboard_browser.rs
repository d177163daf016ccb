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
use tests::{Reaped, hub, hub_binary, stderr, stdout, workspace_root};

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

    let _hub = Reaped::spawn(
        Command::new(hub_binary())
            .args(["run", "--config", cfg])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
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

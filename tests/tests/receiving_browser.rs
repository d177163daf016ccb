//! The receiving bench in a real browser: headless Debian `chromium` driven over WebDriver
//! (`chromedriver`) against `hub run` with the bench's simulated scanner on a pseudo-terminal
//! (`hub sim scanner`). One browser for the file: a clerk signs in on the bench, scans the
//! delivery label on the bench's scanner and sees the line open, scans a bad code and sees it
//! flagged red with its reason, enters a short count, confirms the decision (held, with its
//! reasons in words); an English-speaking supervisor signs in and releases the hold.
//! Screenshots in zh-CN and en at 1024×768 and 390×844 go to `docs/screens/receiving-*.png`.

use hub::store::deliveries::upsert_manifest;
use hub::store::{Store, StoreError, StoreOptions, sku as sku_store};
use hub_core::receiving::{Manifest, ManifestLine};
use hub_core::{Sku, SkuCode, StockUnit, Timestamp};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tests::browser::{Driver, Sim, free_port};
use tests::{Reaped, hub, hub_binary, stderr, stdout};

/// Two SKUs with Chinese names and a delivery of two lines (expiry far away: the test does
/// not depend on today).
fn seed(db: &Path) {
    let store = Store::open(db, "browser-2", &StoreOptions::default()).unwrap();
    store
        .write_blocking(|c| {
            let now = Timestamp(1_000);
            for (code, name) in [("MILK", "鲜牛奶 1L"), ("ORANGE", "赣南脐橙 5kg")] {
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
            let line = |line_no: u32, sku: &str, lot: &str, count: i64, grams: i64| ManifestLine {
                line_no,
                sku: SkuCode::new(sku).unwrap(),
                lot: lot.into(),
                production_date: None,
                expiry: "2999-12-31".parse().ok(),
                expected_count: Some(count),
                expected_weight_g: Some(grams),
                weight_tolerance_g: 50,
                trace_codes: vec![],
                crate_label: None,
            };
            upsert_manifest(
                c,
                &Manifest {
                    delivery_id: "D1".into(),
                    supplier: "光明乳业".into(),
                    expected_at: Some("08:30".into()),
                    lines: vec![
                        line(1, "MILK", "L1", 10, 10_000),
                        line(2, "ORANGE", "OR1", 4, 20_000),
                    ],
                    cancelled: false,
                    version: 1,
                },
                now,
            )?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
    store.close();
}

#[test]
fn a_delivery_is_received_and_a_hold_released_on_the_bench_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("scan");
    let mut scanner = Sim::start(&["scanner", "--link", link.to_str().unwrap()]);
    let port = free_port();
    let config = dir.path().join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "[site]\nid = \"browser-2\"\nname = \"收货测试站\"\ntimezone = \"Asia/Shanghai\"\n\
             [store]\ndata_dir = \"{}\"\n[status]\nlisten = \"127.0.0.1:{port}\"\n\
             [[stations]]\nid = \"dock\"\nkind = \"receiving\"\nname = \"收货台 1\"\n\
             [[devices]]\nname = \"dock-scanner\"\nkind = \"scanner\"\npath = \"{}\"\nterminator = \"cr\"\nstation = \"dock\"\nrole = \"receiving\"\nreconnect_max_ms = 1000\n",
            dir.path().join("data").display(),
            link.display()
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let listed = hub(&["staff", "list", "--config", cfg]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    seed(&dir.path().join("data").join("hub-browser-2.sqlite"));
    for (id, name, role, lang, pin) in [
        ("li", "李小红", "clerk", "zh-CN", "2468"),
        ("amy", "Amy Wang", "supervisor", "en", "1357"),
    ] {
        let added = Command::new(hub_binary())
            .args([
                "staff", "add", id, "--name", name, "--role", role, "--lang", lang, "--config", cfg,
            ])
            .env("HUB_STAFF_PIN", pin)
            .output()
            .unwrap();
        assert!(added.status.success(), "{}", stderr(&added));
    }
    let paired = hub(&["station", "pair", "dock", "--config", cfg]);
    assert!(paired.status.success(), "{}", stderr(&paired));
    let code: String = stdout(&paired)
        .split("dock: ")
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
    // This test file's own workspace (not `tests::workspace_root()`, which a target directory
    // copied from another checkout may have compiled with that checkout's path).
    let screens: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("docs")
        .join("screens");
    let mut browser = Driver::start();

    browser.go(&format!("{base}/station"));
    browser.type_into("#pairing-code", &code);
    browser.click("#pair");
    browser.type_into("#staff-id", "li");
    browser.type_into("#pin", "2468");
    browser.click("#signin");
    browser.wait_text("#verdict", "请扫描周转箱或到货单标签");
    assert!(browser.text("#deliveries").contains("光明乳业"));

    // The delivery label on the bench's scanner opens its line, live.
    scanner.send("scan D1/1");
    browser.wait_text("#verdict", "已打开 D1 第 1 行");
    assert!(browser.text("#lines").contains("鲜牛奶 1L"));
    // A code that is not valid: red, with its reason.
    scanner.send("scan (01)12345678901234(21)X1");
    browser.wait_text("#verdict", "第 1 行已标记");
    // A short count, then the decision: held, with the reasons in words.
    browser.type_into("#count", "9");
    browser.click("#save-count");
    browser.wait_text("#verdict", "已保存第 1 行的数量");
    browser.screenshot(&screens.join("receiving-line-zh-1024x768.png"));
    browser.size(390, 844);
    browser.screenshot(&screens.join("receiving-line-zh-390x844.png"));
    browser.size(1024, 768);
    browser.click("#decide");
    browser.wait_text("#verdict", "第 1 行已决定");
    let lines = browser.wait_text("#lines", "暂扣待审");
    assert!(lines.contains("数量不足：应到 10，实点 9"), "{lines}");
    browser.screenshot(&screens.join("receiving-held-zh-1024x768.png"));

    // An English-speaking supervisor releases the hold.
    browser.click("#signout");
    browser.wait_text("h1", "收货台 1");
    browser.type_into("#staff-id", "amy");
    browser.type_into("#pin", "1357");
    browser.click("#signin");
    browser.wait_text("h1", "Receiving bench");
    browser.wait_text("#lines", "held for review");
    browser.click("#resolve");
    browser.wait_text("#verdict", "held stock of line 1 resolved");
    browser.wait_text("#lines", "released after the hold");
    browser.screenshot(&screens.join("receiving-released-en-1024x768.png"));
    browser.size(390, 844);
    browser.screenshot(&screens.join("receiving-released-en-390x844.png"));
    browser.size(1024, 768);
}

//! The receiving bench in a real browser: headless Debian `chromium` driven over WebDriver
//! (`chromedriver`) against `hub run` with the bench's simulated scanner and scale on
//! pseudo-terminals (`hub sim scanner`, `hub sim scale`) and the image model. One browser for
//! the file, one mixed delivery: a clerk signs in on the bench, scans the delivery label on the
//! bench's scanner and sees the line open, scans a bad code and sees it flagged red with its
//! reason, enters a short count, confirms the decision (held, with its reasons in words); a good
//! line is ticked by scanning its trace codes and weighed on the scale and accepted; on the
//! third line the same trace code scanned again is flagged (already bound), the scale weighs
//! out of tolerance, a photo of the wrong product taken with the tablet's camera (the file
//! input, a real JPEG) fails the check, and the clerk holds the line with a reason
//! (⏸ 扣留待审). An English-speaking supervisor releases the short line, opens a dispute with
//! the line's photo, and the stock screen shows the new lots.
//! Screenshots in zh-CN and en at 1024×768 and 390×844 go to `docs/screens/receiving-*.png`.

use hub::store::deliveries::upsert_manifest;
use hub::store::{Store, StoreError, StoreOptions, sku as sku_store};
use hub_core::receiving::{Manifest, ManifestLine};
use hub_core::{Sku, SkuCode, StockUnit, Timestamp};
use serde_json::Value;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tests::browser::{Driver, Sim, free_port};
use tests::{LogOnFailure, Reaped, hub, hub_binary, stderr, stdout};

/// Two SKUs with Chinese names and a delivery of three lines (expiry far away: the test does
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
                        line(2, "ORANGE", "OR1", 2, 10_000),
                        line(3, "ORANGE", "OR2", 2, 10_000),
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
fn a_mixed_delivery_is_received_and_a_hold_released_on_the_bench_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("scan");
    let mut scanner = Sim::start(&["scanner", "--link", link.to_str().unwrap()]);
    let scale_link = dir.path().join("scale");
    let mut scale = Sim::start(&[
        "scale",
        "--protocol",
        "mt-sics",
        "--link",
        scale_link.to_str().unwrap(),
    ]);
    let port = free_port();
    let config = dir.path().join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "[site]\nid = \"browser-2\"\nname = \"收货测试站\"\ntimezone = \"Asia/Shanghai\"\n\
             [store]\ndata_dir = \"{}\"\n[status]\nlisten = \"127.0.0.1:{port}\"\n\
             [[stations]]\nid = \"dock\"\nkind = \"receiving\"\nname = \"收货台 1\"\n\
             [[devices]]\nname = \"dock-scanner\"\nkind = \"scanner\"\npath = \"{}\"\nterminator = \"cr\"\nstation = \"dock\"\nrole = \"receiving\"\nreconnect_max_ms = 1000\n\
             [[devices]]\nname = \"dock-scale\"\nkind = \"scale\"\npath = \"{}\"\nprotocol = \"mt-sics\"\nstation = \"dock\"\npoll_interval_ms = 100\nreconnect_max_ms = 1000\n\
             [vision]\nenabled = true\n\
             [[vision.rules]]\nsku = \"ORANGE\"\nexpected = [\"orange\"]\nmin_probability = 0.2\n",
            dir.path().join("data").display(),
            link.display(),
            scale_link.display()
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

    // This test file's own workspace (not `tests::workspace_root()`, which a target directory
    // copied from another checkout may have compiled with that checkout's path).
    let root: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    // From the workspace root: the shipped model is found in models/.
    let (_hub_log, hub_stderr) = LogOnFailure::create(&dir.path().join("hub.log"));
    let _hub = Reaped::spawn(
        Command::new(hub_binary())
            .current_dir(&root)
            .env_remove("HUB_ONNXRUNTIME_LIB")
            .args(["run", "--config", cfg])
            .stdout(Stdio::null())
            .stderr(hub_stderr),
    );
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "hub did not serve");
        std::thread::sleep(Duration::from_millis(100));
    }
    let screens = root.join("docs").join("screens");
    let photos = root
        .join("hub")
        .join("vision")
        .join("testdata")
        .join("images");
    let mut browser = Driver::start();
    // Both sizes of the screen, from the top or (`at`) with that element at the top.
    let shots_at = |browser: &mut Driver, name: &str, at: Option<&str>| {
        for (w, h) in [(1024, 768), (390, 844)] {
            browser.size(w, h);
            let path = screens.join(format!("{name}-{w}x{h}.png"));
            match at {
                Some(css) => browser.screenshot_of(&path, css),
                None => browser.screenshot(&path),
            }
        }
        browser.size(1024, 768);
    };
    let shots = |browser: &mut Driver, name: &str| shots_at(browser, name, None);

    browser.go(&format!("{base}/station"));
    browser.type_into("#pairing-code", &code);
    browser.click("#pair");
    browser.type_into("#staff-id", "li");
    browser.type_into("#pin", "2468");
    browser.click("#signin");
    browser.wait_text("#verdict", "请扫描周转箱或到货单标签");
    assert!(browser.text("#deliveries").contains("光明乳业"));

    // The short line. The delivery label on the bench's scanner opens its line, live.
    scanner.send("scan D1/1");
    browser.wait_text("#verdict", "已打开 D1 第 1 行");
    assert!(browser.text("#lines").contains("鲜牛奶 1L"));
    // A code that is not valid: red, with its reason.
    scanner.send("scan (01)12345678901234(21)X1");
    browser.wait_text("#verdict", "第 1 行已标记");
    assert_eq!(browser.attribute("#result", "data-tone"), "error");
    // A short count, then the decision: held, with the reasons in words.
    browser.type_into("#count", "9");
    browser.click("#save-count");
    browser.wait_text("#verdict", "已保存第 1 行的数量");
    shots(&mut browser, "receiving-line-zh");
    browser.click("#decide");
    browser.wait_text("#verdict", "第 1 行已决定");
    let lines = browser.wait_text("#lines", "暂扣待审");
    assert!(lines.contains("数量不足：应到 10，实点 9"), "{lines}");
    browser.screenshot(&screens.join("receiving-held-zh-1024x768.png"));

    // The good line: its two trace codes ticked by scanning, weighed in tolerance, its photo
    // taken with the tablet's camera passes; accepted.
    scanner.send("scan D1/2");
    browser.wait_text("#verdict", "已打开 D1 第 2 行");
    for (n, serial) in ["S1", "S2"].into_iter().enumerate() {
        scanner.send(&format!("scan 010950600013435221{serial}"));
        let said = browser.wait_text("#verdict", &format!("已扫 {} 件", n + 1));
        assert_eq!(browser.attribute("#result", "data-tone"), "ok", "{said}");
    }
    browser.wait_text("#line-2 .scanned", "2");
    scale.send("put 10010g");
    browser.wait_text("#verdict", "已记录稳定重量 10010 克（D1 第 2 行）");
    browser.wait_text("#scale", "10010 克");
    browser.pick_file("#photo-upload", &photos.join("orange.jpg"));
    browser.wait_text("#verdict", "照片已检查：通过");
    assert_eq!(browser.attribute("#result", "data-tone"), "ok");
    let photo = browser.wait_text("#photo", "橙");
    assert!(!photo.contains("不通过"), "{photo}");
    browser.click("#decide");
    browser.wait_text("#verdict", "第 2 行已决定");
    let line = browser.text("#line-2");
    assert_eq!(browser.attribute("#line-2", "data-state"), "ok", "{line}");
    scale.send("remove");

    // The wrong line: a duplicate code, a weight out of tolerance, a wrong-product photo from
    // the tablet's camera, and the clerk's hold with a reason.
    scanner.send("scan D1/3");
    browser.wait_text("#verdict", "已打开 D1 第 3 行");
    scanner.send("scan 010950600013435221S1");
    browser.wait_text("#verdict", "此码已绑定到批次 OR1");
    assert_eq!(browser.attribute("#result", "data-tone"), "error");
    scale.send("put 13500g");
    browser.wait_text("#verdict", "已记录稳定重量 13500 克（D1 第 3 行）");
    let baboon = photos.join("baboon.jpg");
    browser.pick_file("#photo-upload", &baboon);
    // Not an orange: the model alone may not reject (allow_model_reject = false), so a person
    // must look; amber, with the classes it saw and why.
    let verdict = browser.wait_text("#verdict", "照片已检查：需人工复核");
    let photo = browser.wait_text("#photo", "需人工复核");
    assert!(photo.contains("此行应为 橙子"), "{verdict} / {photo}");
    assert_eq!(
        browser.attribute("#result", "data-tone"),
        "attention",
        "a photo a person must look at is not green"
    );
    assert_eq!(browser.attribute("#photo .pill", "class"), "pill attention");
    shots_at(&mut browser, "receiving-photo-zh", Some("#selected"));
    browser.click("#hold-reason option[value='quality_doubt']");
    browser.click("#hold");
    browser.wait_text("#verdict", "第 3 行");
    let line = browser.wait_text("#line-3", "收货员扣留待审：质量存疑");
    for reason in [
        "重量超出允差：应到 10000 克 ± 50 克，称得 13500 克",
        "照片检查",
    ] {
        assert!(line.contains(reason), "{line}");
    }
    shots_at(&mut browser, "receiving-hold-zh", Some("#line-2"));

    // An English-speaking supervisor releases the short line.
    browser.click("#signout");
    browser.wait_text("h1", "收货台 1");
    browser.type_into("#staff-id", "amy");
    browser.type_into("#pin", "1357");
    browser.click("#signin");
    browser.wait_text("h1", "Receiving bench");
    scanner.send("scan D1/1");
    browser.wait_text("#verdict", "opened D1 line 1");
    browser.wait_text("#selected", "1 · 鲜牛奶 1L");
    browser.click("#resolve");
    browser.wait_text("#verdict", "held stock of line 1 resolved");
    browser.wait_text("#lines", "released after the hold");
    shots(&mut browser, "receiving-released-en");

    // … and opens a dispute on the wrong line with its photo.
    scanner.send("scan D1/3");
    browser.wait_text("#verdict", "opened D1 line 3");
    let offered = browser.wait_text("#dispute-form", "Line 3");
    let sha = sha256_of(&baboon);
    assert!(
        offered.contains(&sha[..12]),
        "the line's photo is offered: {offered}"
    );
    browser.type_into(
        "#dispute-note",
        "Wrong product in the crates, photo attached",
    );
    browser.click("#dispute-open");
    let episode = browser.wait_text("#disputes .dispute-episode.open", "Wrong product");
    assert!(episode.contains(&sha[..12]), "{episode}");
    shots_at(&mut browser, "receiving-dispute-en", Some("#disputes"));

    // The stock screen shows the new lots: the released short line and the good line.
    browser.go(&format!("{base}/station/stock"));
    let milk = browser.wait_text("[data-lot='L1']", "L1");
    assert!(milk.contains("· 9"), "{milk}");
    let oranges = browser.wait_text("[data-lot='OR1']", "OR1");
    assert!(oranges.contains("· 2"), "{oranges}");
    assert!(
        !browser.exists("[data-lot='OR2']"),
        "the held oranges are not stock"
    );
    assert!(browser.text("tr[data-sku='ORANGE']").contains("赣南脐橙"));

    // The store agrees: the delivery's lines as `hub receive show` reads them.
    let shown = hub(&[
        "receive",
        "show",
        "--delivery",
        "D1",
        "--json",
        "--config",
        cfg,
    ]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    let shown: Value = serde_json::from_str(&stdout(&shown)).unwrap();
    let text = shown.to_string();
    assert!(text.contains("held_by_staff"), "{text}");
    assert!(text.contains(&sha), "{text}");
}

/// The sha256 of a file, as `sha256sum` prints it.
fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

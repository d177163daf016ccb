//! The stock screen and the manager's dashboard in a real browser: headless Debian `chromium`
//! over WebDriver (`chromedriver`) against `hub run`. A supervisor pairs a tablet and signs in;
//! the stock screen shows lots (an expired one marked) and tiers; the dashboard for a fixed
//! fortnight of generated days shows the same figures as `hub report --json` for that period,
//! a chart per figure with one point per day that has a value, and the 7 × 24 heat map.
//! Screenshots in zh-CN and en at 1024×768 and 390×844 go to `docs/screens/`.

use hub::store::{Store, StoreError, StoreOptions, bench_site, ledger, sku as sku_store};
use hub_core::{BatchKey, Movement, MovementId, MovementKind, Sku, SkuCode, StockUnit, Timestamp};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tests::{Reaped, hub, hub_binary, stderr, stdout, workspace_root};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A bare WebDriver client over HTTP/1.1 (chromedriver speaks JSON over plain HTTP).
struct Driver {
    port: u16,
    session: String,
    _child: Reaped,
}

impl Driver {
    fn start() -> Driver {
        let port = free_port();
        let child = Reaped::spawn(
            Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut driver = Driver {
            port,
            session: String::new(),
            _child: child,
        };
        let created = driver.call(
            "POST",
            "/session",
            json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--window-size=1024,768", "--lang=zh-CN",
                             "--autoplay-policy=no-user-gesture-required"]
                }
            }}}),
        );
        driver.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        driver
    }

    fn call(&mut self, method: &str, path: &str, body: Value) -> Value {
        let path = if self.session.is_empty() || path == "/session" {
            path.to_owned()
        } else {
            format!("/session/{}{path}", self.session)
        };
        let body = if method == "GET" {
            String::new()
        } else {
            body.to_string()
        };
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let port = self.port;
        let request = if method == "GET" {
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
        } else {
            format!(
                "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        stream.write_all(request.as_bytes()).unwrap();
        // chromedriver may keep the connection open: read the head, then Content-Length bytes.
        let mut raw = Vec::new();
        let mut byte = [0u8; 1];
        while !raw.ends_with(b"\r\n\r\n") {
            if stream
                .read(&mut byte)
                .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
                == 0
            {
                break;
            }
            raw.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
        let payload = if let Some(len) = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
        {
            let mut body = vec![0u8; len];
            stream.read_exact(&mut body).unwrap();
            String::from_utf8_lossy(&body).into_owned()
        } else {
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).unwrap();
            let rest = String::from_utf8_lossy(&rest).into_owned();
            if head.contains("transfer-encoding: chunked") {
                dechunk(&rest)
            } else {
                rest
            }
        };
        let value: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
        value["value"].clone()
    }

    fn go(&mut self, url: &str) {
        self.call("POST", "/url", json!({"url": url}));
    }

    fn find(&mut self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self.call(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            );
            if let Some(id) = found
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(Value::as_str)
            {
                return id.to_owned();
            }
            assert!(Instant::now() < deadline, "no element {css}: {found}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn type_into(&mut self, css: &str, text: &str) {
        let id = self.find(css);
        self.call("POST", &format!("/element/{id}/clear"), json!({}));
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            json!({"text": text}),
        );
    }

    fn click(&mut self, css: &str) {
        let id = self.find(css);
        self.call("POST", &format!("/element/{id}/click"), json!({}));
    }

    fn text(&mut self, css: &str) -> String {
        let id = self.find(css);
        self.call("GET", &format!("/element/{id}/text"), json!({}))
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the element's text contains `wanted`; returns the text.
    fn wait_text(&mut self, css: &str, wanted: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = self.text(css);
            if text.contains(wanted) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never said '{wanted}'; it says '{text}'"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn size(&mut self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            json!({"width": width, "height": height}),
        );
    }

    fn screenshot(&mut self, path: &Path) {
        let data = self.call("GET", "/screenshot", json!({}));
        let png = base64(data.as_str().expect("screenshot data"));
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.call("DELETE", "", json!({}));
            }));
        }
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n]);
        rest = &tail[n + 2..];
    }
    out
}

fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let bytes: Vec<u8> = text.bytes().filter(|&c| c != b'=' && c != b'\n').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let v: Vec<u32> = chunk.iter().map(|&c| value(c) as u32).collect();
        let n = v
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, x)| acc | (x << (18 - 6 * i)));
        out.push((n >> 16) as u8);
        if v.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if v.len() > 3 {
            out.push(n as u8);
        }
    }
    out
}

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

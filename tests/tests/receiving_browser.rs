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
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tests::{Reaped, hub, hub_binary, stderr, stdout};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A simulated device process, driven by stdin commands.
struct Sim {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Sim {
    fn start(args: &[&str]) -> Sim {
        let mut child = Command::new(hub_binary())
            .arg("sim")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start hub sim");
        let stdin = child.stdin.take().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut sim = Sim {
            child,
            stdin,
            lines,
        };
        sim.expect("ready");
        sim
    }

    fn expect(&mut self, wanted: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line.starts_with(wanted) => return,
                Ok(line) if line.starts_with("error") => panic!("sim: {line}"),
                Ok(_) => {}
                Err(_) => panic!("sim did not say '{wanted}' in time"),
            }
        }
    }

    fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let verb = command.split(' ').next().unwrap();
        self.expect(&format!("ok {verb}"));
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
        // From the top of the page, whatever the last click scrolled to.
        self.call(
            "POST",
            "/execute/sync",
            json!({"script": "window.scrollTo(0, 0)", "args": []}),
        );
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

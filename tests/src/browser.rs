//! A headless Chromium driven over WebDriver (`chromedriver`, Debian's `chromium-driver`), and
//! the simulated devices (`hub sim` on a pseudo-terminal) the station app's browser tests scan
//! and weigh with. One home for both, so every screen's test drives the browser the same way.

use crate::Reaped;
use crate::hub_binary;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A simulated device process, driven by stdin commands.
pub struct Sim {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Sim {
    pub fn start(args: &[&str]) -> Sim {
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

    pub fn expect(&mut self, wanted: &str) {
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

    pub fn send(&mut self, command: &str) {
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

/// The key of a W3C WebDriver element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A bare WebDriver client over HTTP/1.1 (chromedriver speaks JSON over plain HTTP).
pub struct Driver {
    port: u16,
    session: String,
    /// The page's viewport (CSS pixels) that screenshots are taken at.
    viewport: (u32, u32),
    _child: Reaped,
}

impl Driver {
    pub fn start() -> Driver {
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
            viewport: (1024, 768),
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
        driver.size(1024, 768);
        driver
    }

    pub fn call(&mut self, method: &str, path: &str, body: Value) -> Value {
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

    pub fn go(&mut self, url: &str) {
        self.call("POST", "/url", json!({"url": url}));
    }

    pub fn find(&mut self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self.call(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            );
            // Only WebDriver's element reference is an element: an error answer is an object
            // too ({"error": "no such element", ...}), and must not pass for one.
            if let Some(id) = found[ELEMENT_KEY].as_str() {
                return id.to_owned();
            }
            if Instant::now() >= deadline {
                let url = self.call("GET", "/url", json!({}));
                let page = self.call("GET", "/source", json!({}));
                let page: String = page
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .take(3000)
                    .collect();
                panic!("no element {css}: {found}\nat {url}, page begins: {page}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs one element command on `css` and returns WebDriver's answer. While the answer is
    /// an error (the screen replaced the element a moment ago, so it is stale; or it is not yet
    /// interactable) the element is found again and the command retried; at the deadline the
    /// error fails the test instead of passing unnoticed.
    fn on_element(&mut self, css: &str, method: &str, command: &str, body: Value) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let id = self.find(css);
            let answer = self.call(method, &format!("/element/{id}/{command}"), body.clone());
            if answer.get("error").is_none() {
                return answer;
            }
            assert!(
                Instant::now() < deadline,
                "{method} {command} on {css}: {answer}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clears the field, then types `text` into it.
    pub fn type_into(&mut self, css: &str, text: &str) {
        self.on_element(css, "POST", "clear", json!({}));
        self.send_keys(css, text);
    }

    /// Types `text` into the element as it is (a file input takes a file's path this way).
    pub fn send_keys(&mut self, css: &str, text: &str) {
        self.on_element(css, "POST", "value", json!({"text": text}));
    }

    pub fn click(&mut self, css: &str) {
        self.on_element(css, "POST", "click", json!({}));
    }

    /// Gives the file input `css` the file at `path`, as a person picking it would.
    pub fn pick_file(&mut self, css: &str, path: &Path) {
        self.send_keys(css, &path.to_string_lossy());
    }

    /// An attribute of the element `css`, as text ("" when it has none).
    pub fn attribute(&mut self, css: &str, name: &str) -> String {
        self.on_element(css, "GET", &format!("attribute/{name}"), json!({}))
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The element's text. The screen replaces parts of itself when the hub says something
    /// changed, so an element found a moment ago may be gone ("stale element reference"):
    /// find it again rather than read an error as an empty text.
    pub fn text(&mut self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let id = self.find(css);
            let text = self.call("GET", &format!("/element/{id}/text"), json!({}));
            if let Some(text) = text.as_str() {
                return text.to_owned();
            }
            assert!(Instant::now() < deadline, "cannot read {css}: {text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the element's text contains `wanted`; returns the text.
    pub fn wait_text(&mut self, css: &str, wanted: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = self.text(css);
            if text.contains(wanted) {
                return text;
            }
            if Instant::now() >= deadline {
                let page = self.call("GET", "/source", json!({}));
                let page = page.as_str().unwrap_or_default();
                let id = self.find(css);
                let raw = self.call("GET", &format!("/element/{id}/text"), json!({}));
                let tail: String = page
                    .chars()
                    .rev()
                    .take(2000)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                panic!("{css} never said '{wanted}'; it says '{text}' ({raw}); page ends: {tail}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the page has an element matching `css` now (no waiting).
    pub fn exists(&mut self, css: &str) -> bool {
        let found = self.call(
            "POST",
            "/elements",
            json!({"using": "css selector", "value": css}),
        );
        found.as_array().is_some_and(|a| !a.is_empty())
    }

    /// Waits until the element is (or is not) displayed.
    pub fn wait_displayed(&mut self, css: &str, wanted: bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let id = self.find(css);
            let shown = self.call("GET", &format!("/element/{id}/displayed"), json!({}));
            if shown.as_bool() == Some(wanted) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{css} displayed is not {wanted} ({shown})"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Makes the page's viewport `width` × `height` CSS pixels, as on that tablet or phone. The
    /// window's size alone is not: the browser's own frame takes its part of the window, and a
    /// "1024×768" screenshot came out 1024×625.
    pub fn size(&mut self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            json!({"width": width, "height": height}),
        );
        self.call(
            "POST",
            "/goog/cdp/execute",
            json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": {
                "width": width, "height": height, "deviceScaleFactor": 1,
                "mobile": width < 600
            }}),
        );
        self.viewport = (width, height);
    }

    pub fn screenshot(&mut self, path: &Path) {
        // From the top of the page, whatever the last click scrolled to.
        self.call(
            "POST",
            "/execute/sync",
            json!({"script": "window.scrollTo(0, 0)", "args": []}),
        );
        self.capture(path);
    }

    /// A screenshot with the element `css` scrolled to the top of the screen (the part of a
    /// long page the shot is about: the selected line, the disputes).
    pub fn screenshot_of(&mut self, path: &Path, css: &str) {
        self.find(css);
        self.call(
            "POST",
            "/execute/sync",
            json!({"script": "document.querySelector(arguments[0]).scrollIntoView({block: 'start'})", "args": [css]}),
        );
        self.capture(path);
    }

    fn capture(&mut self, path: &Path) {
        let data = self.call("GET", "/screenshot", json!({}));
        let png = base64(data.as_str().expect("screenshot data"));
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let (width, height) = png_size(&png);
        assert_eq!(
            (width, height),
            self.viewport,
            "{} is not the size of the screen it stands for",
            path.display()
        );
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

/// Width and height from a PNG's header chunk (IHDR, right after the signature).
fn png_size(png: &[u8]) -> (u32, u32) {
    let at = |i: usize| u32::from_be_bytes(png[i..i + 4].try_into().expect("a PNG header"));
    (at(16), at(20))
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

//! The on-site status page, served by a running demo hub: rendered in a real headless browser
//! (Debian `chromium`) with live figures, its JSON and Prometheus forms, and the token that a
//! LAN-bound page demands.

use std::path::{Path, PathBuf};
use std::process::Command;
use tests::{DemoHub, Reaped, http_get, hub, stderr};

/// The headless browser: `HUB_CHROMIUM` or `chromium` on PATH (deploy/setup.sh installs it).
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("HUB_CHROMIUM") {
        return PathBuf::from(path);
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            && out.status.success()
        {
            return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        }
    }
    panic!("no headless browser found: install Debian's chromium (bash deploy/setup.sh)");
}

/// Runs headless Chromium with a throwaway profile and returns its stdout.
fn browse(profile: &Path, args: &[&str]) -> String {
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn the_page_renders_live_figures_in_headless_chromium() {
    let demo = DemoHub::start(&[], &[]);
    let (code, json) = http_get(&demo.addr, "/status.json", &[]);
    assert_eq!(code, 200, "{json}");
    let status: serde_json::Value = serde_json::from_str(&json).unwrap();
    let outbox = status["outbox"]["undelivered"].as_i64().unwrap();
    let handovers = status["today"]["handovers"].as_i64().unwrap();
    let receipts = status["today"]["deliveries"].as_i64().unwrap();
    // The demo drains its events to an embedded central, so the depth may be zero; the page
    // must show whatever it is, and the day's receipts and handovers.
    assert!(
        status["outbox"]["total"].as_i64().unwrap() > 0 && handovers > 0 && receipts > 0,
        "{status}"
    );
    assert_eq!(status["site_id"], "demo-site-001");

    let scratch = tempfile::tempdir().unwrap();
    let dom = browse(&scratch.path().join("profile"), &["--dump-dom", &demo.url]);
    for needle in [
        "Demo front warehouse",
        &format!("id=\"handovers-today\">{handovers}<"),
        &format!("id=\"receipts-today\">{receipts}<"),
        "scale-1",
        "25.000 kg stable",
        "offline",
        "id=\"alerts-yellow\"",
        "not configured",
    ] {
        assert!(
            dom.contains(needle),
            "{needle:?} missing from the page:\n{dom}"
        );
    }

    // The demo keeps recording (periodic checks), so the depth may have grown since the JSON.
    let shown: i64 = dom
        .split("id=\"outbox-depth\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .and_then(|n| n.trim().parse().ok())
        .expect("the page shows the outbox depth");
    assert!(
        (outbox..=outbox + 10).contains(&shown),
        "page shows depth {shown}, JSON said {outbox}"
    );

    // A screenshot at tablet size, kept under the target folder for a person to look at.
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    browse(
        &scratch.path().join("profile"),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1024,768",
            &demo.url,
        ],
    );
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert_eq!(png_size(&png), (1024, 768));
    assert!(
        png.len() > 20_000,
        "screenshot looks empty: {} bytes",
        png.len()
    );

    let (code, metrics) = http_get(&demo.addr, "/metrics", &[]);
    assert_eq!(code, 200);
    let undelivered: i64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("hub_outbox_undelivered "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the outbox depth is a metric");
    assert!((outbox..=outbox + 10).contains(&undelivered), "{metrics}");
    assert!(metrics.contains("hub_device_up{device=\"scale-1\",kind=\"scale\"} 1"));
    assert!(metrics.contains("# TYPE hub_alerts_open gauge"));
}

#[test]
fn a_lan_bound_page_refuses_requests_without_its_token() {
    let token = "lan-token-0123456789abcdef";
    let demo = DemoHub::start(
        &["--status-listen", "0.0.0.0:0"],
        &[("HUB_STATUS_TOKEN", token)],
    );
    let port = demo.addr.rsplit(':').next().unwrap();
    // The server listens on every interface, so this box's own LAN address reaches it too;
    // loopback is one of those interfaces and gets no exemption.
    let mut addrs = vec![format!("127.0.0.1:{port}")];
    if let Ok(out) = Command::new("hostname").arg("-I").output() {
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if let Some(ip) = text
            .split_whitespace()
            .find(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
        {
            addrs.push(format!("{ip}:{port}"));
        }
    }
    for addr in &addrs {
        for path in ["/", "/status.json", "/metrics"] {
            let (code, body) = http_get(addr, path, &[]);
            assert_eq!(code, 401, "{addr}{path} without a token: {body}");
            assert!(!body.contains("demo-site-001"));
            let (code, _) = http_get(
                addr,
                path,
                &[("Authorization", "Bearer wrong-token-0123456789")],
            );
            assert_eq!(code, 401, "{addr}{path} with a wrong token");
        }
        let auth = format!("Bearer {token}");
        let (code, body) = http_get(addr, "/status.json", &[("Authorization", &auth)]);
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("demo-site-001"));
        let (code, body) = http_get(addr, &format!("/?token={token}"), &[]);
        assert_eq!(code, 200);
        assert!(body.contains("Demo front warehouse"));
    }

    let scratch = tempfile::tempdir().unwrap();
    let dom = browse(&scratch.path().join("profile"), &["--dump-dom", &demo.url]);
    assert!(dom.contains("401 Unauthorized"), "{dom}");
    assert!(!dom.contains("Demo front warehouse"));
}

#[test]
fn a_lan_address_without_a_token_is_refused_at_start() {
    let out = hub(&["demo", "--keep-running", "--status-listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a loopback address"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_taken_status_port_does_not_stop_the_hub() {
    use std::io::BufRead;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "[site]\nid = \"port-site\"\n[store]\ndata_dir = \"data\"\n[status]\nlisten = \"127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    let mut child = Reaped::spawn(
        Command::new(tests::hub_binary())
            .args(["run", "--config"])
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped()),
    );
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut seen = Vec::new();
    while std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            seen.push(line);
        }
        if seen.iter().any(|l| l.contains("hub running"))
            && seen.iter().any(|l| l.contains("status page unavailable"))
        {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("status page unavailable")),
        "{seen:?}"
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the hub exited: {seen:?}"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success(), "{seen:?}");
    drop(taken);
}

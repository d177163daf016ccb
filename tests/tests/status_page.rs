//! The on-site status page, served by a running demo hub: rendered in a real headless browser
//! (Debian `chromium`) with live figures, its JSON and Prometheus forms, and the token that a
//! LAN-bound page demands; and, served by `hub run`, what idle sockets and a flood of requests
//! leave of the page and the process (files, threads, memory).

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
    // The page is zh-CN by default; `?lang=en` gives the English words checked here.
    let chinese = browse(&scratch.path().join("profile"), &["--dump-dom", &demo.url]);
    assert!(
        chinese.contains("lang=\"zh-CN\"") && chinese.contains("上行连接"),
        "{chinese}"
    );
    let english_url = format!("{}?lang=en", demo.url);
    let dom = browse(
        &scratch.path().join("profile"),
        &["--dump-dom", &english_url],
    );
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
    // Once the port is free, the hub binds it on its next try (every 30 s) and serves.
    drop(taken);
    let addr = format!("127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(75);
    let served = loop {
        if try_get(&addr, "/status.json", std::time::Duration::from_secs(5)) == Some(200) {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    while let Ok(line) = rx.try_recv() {
        seen.push(line);
    }
    assert!(
        served,
        "the status page never came up on the freed port: {seen:?}"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success(), "{seen:?}");
}

/// `hub run` on a free status port with `env`; returns the child and the page's address once
/// `/status.json` answers.
fn run_hub_with_status_page(dir: &Path, env: &[(&str, &str)]) -> (Reaped, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "[site]\nid = \"durable-site\"\n[store]\ndata_dir = \"data\"\n[status]\nlisten = \"127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    let mut child = Reaped::spawn(
        Command::new(tests::hub_binary())
            .args(["run", "--config"])
            .arg(&config)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    let addr = format!("127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while try_get(&addr, "/status.json", std::time::Duration::from_secs(5)) != Some(200) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "hub run exited before serving its page"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the status page never answered"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    (child, addr)
}

fn stop(mut child: Reaped) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_running_hub_shows_the_durability_settings_its_writer_runs_with() {
    let dir = tempfile::tempdir().unwrap();
    let (child, addr) = run_hub_with_status_page(dir.path(), &[]);
    let (code, body) = http_get(&addr, "/status.json", &[]);
    assert_eq!(code, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["store_durability"]["journal_mode"], "wal", "{body}");
    assert_eq!(json["store_durability"]["synchronous"], "full", "{body}");
    let (_, metrics) = http_get(&addr, "/metrics", &[]);
    assert!(metrics.contains("\nhub_store_durable 1"), "{metrics}");
    stop(child);

    // The figures are read back from the writer's connection, not restated: a debug build's
    // test switch (the power-cut harness's negative control) shows up on the page.
    let weakened = tempfile::tempdir().unwrap();
    let (child, addr) = run_hub_with_status_page(
        weakened.path(),
        &[("HUB_TEST_WEAKEN_DURABILITY", "synchronous-off")],
    );
    let (_, body) = http_get(&addr, "/status.json", &[]);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    if cfg!(debug_assertions) {
        assert_eq!(json["store_durability"]["synchronous"], "off", "{body}");
        let (_, metrics) = http_get(&addr, "/metrics", &[]);
        assert!(metrics.contains("\nhub_store_durable 0"), "{metrics}");
        let (_, page) = http_get(&addr, "/", &[]);
        assert!(page.contains("store-not-durable"), "{page}");
    } else {
        assert_eq!(
            json["store_durability"]["synchronous"], "full",
            "release builds ignore the switch: {body}"
        );
    }
    stop(child);
}

/// Open file descriptors and threads of a process, from /proc.
fn fds_and_threads(pid: u32) -> (usize, usize) {
    let count = |what: &str| {
        std::fs::read_dir(format!("/proc/{pid}/{what}"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    (count("fd"), count("task"))
}

/// Resident memory of a process in KiB, from /proc.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// One GET on its own connection; the status code, or `None` when the connection failed or
/// nothing came back within `timeout`.
fn try_get(addr: &str, path: &str, timeout: std::time::Duration) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

#[test]
fn idle_sockets_and_request_floods_leave_the_page_up_and_the_hub_within_bounds() {
    use hub::status::server::MAX_CONNECTIONS;
    use std::io::{BufRead, Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hub.toml");
    std::fs::write(
        &config,
        "[site]\nid = \"flood-site\"\n[store]\ndata_dir = \"data\"\n[status]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    // Under the soft limit of open files systemd gives a service by default.
    let mut child = Reaped::spawn(
        Command::new("prlimit")
            .arg("--nofile=1024:1024")
            .arg(tests::hub_binary())
            .args(["--log-format", "json", "run", "--config"])
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped()),
    );
    let pid = child.id();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["message"] == "status page served"
            {
                let _ = tx.send(v["url"].as_str().unwrap_or_default().to_owned());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the hub serves its status page");
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    assert_eq!(
        try_get(&addr, "/status.json", Duration::from_secs(10)),
        Some(200)
    );
    // Let start-up's blocking threads retire before taking the baseline.
    std::thread::sleep(Duration::from_secs(12));
    let (base_fds, base_threads) = fds_and_threads(pid);
    let base_rss = rss_kib(pid);
    // Bounds: the connection limit and the store's readers (a file, its WAL and shared memory
    // each), and a few blocking threads for the snapshots.
    let fd_bound = base_fds + MAX_CONNECTIONS + 3 * hub::store::READERS + 8;
    let thread_bound = base_threads + 2 * hub::status::server::MAX_CONCURRENT_SNAPSHOTS + 6;

    // A sampler keeps the highest counts seen from here on.
    let stop = Arc::new(AtomicBool::new(false));
    let most_fds = Arc::new(AtomicUsize::new(0));
    let most_threads = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (stop, most_fds, most_threads) = (stop.clone(), most_fds.clone(), most_threads.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let (fds, threads) = fds_and_threads(pid);
                most_fds.fetch_max(fds, Ordering::SeqCst);
                most_threads.fetch_max(threads, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    // 1,000 idle connections that never send a byte: the page still answers.
    let idle: Vec<std::net::TcpStream> = (0..1000)
        .filter_map(|_| std::net::TcpStream::connect(&addr).ok())
        .collect();
    assert!(idle.len() >= 900, "only {} connections opened", idle.len());
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        if try_get(&addr, "/status.json", Duration::from_secs(5)) == Some(200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the status page did not answer with 1,000 idle connections open"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(idle);

    // 1,000 requests at once (50 clients with 20 connections each): every one is answered,
    // served or refused with 503, or its connection closed.
    let served = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..50)
        .map(|_| {
            let (addr, served, refused) = (addr.clone(), served.clone(), refused.clone());
            std::thread::spawn(move || {
                let mut streams: Vec<std::net::TcpStream> = (0..20)
                    .filter_map(|_| std::net::TcpStream::connect(&addr).ok())
                    .collect();
                let request = format!(
                    "GET /status.json HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
                );
                for s in &mut streams {
                    let _ = s.write_all(request.as_bytes());
                }
                for mut s in streams {
                    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                    let mut response = Vec::new();
                    let _ = s.read_to_end(&mut response);
                    let text = String::from_utf8_lossy(&response);
                    if text.starts_with("HTTP/1.1 200") {
                        served.fetch_add(1, Ordering::SeqCst);
                    } else if text.starts_with("HTTP/1.1 503") || text.is_empty() {
                        refused.fetch_add(1, Ordering::SeqCst);
                    } else {
                        panic!("unexpected answer: {text}");
                    }
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let (served, refused) = (
        served.load(Ordering::SeqCst),
        refused.load(Ordering::SeqCst),
    );
    assert!(served > 0, "some requests are served ({refused} refused)");

    // Back to about where it started (the store's pool of readers may have grown to its
    // size), and never beyond the bounds on the way.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (fds, threads) = fds_and_threads(pid);
        if fds <= base_fds + 3 * hub::store::READERS && threads <= base_threads + 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {fds} fds (baseline {base_fds}) and {threads} threads (baseline {base_threads})"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    let (most_fds, most_threads) = (
        most_fds.load(Ordering::SeqCst),
        most_threads.load(Ordering::SeqCst),
    );
    eprintln!(
        "{served} served, {refused} refused; at most {most_fds} fds (baseline {base_fds}) and {most_threads} threads (baseline {base_threads})"
    );
    assert!(
        most_fds <= fd_bound,
        "{most_fds} open fds at most (baseline {base_fds}, bound {fd_bound})"
    );
    assert!(
        most_threads <= thread_bound,
        "{most_threads} threads at most (baseline {base_threads}, bound {thread_bound})"
    );
    assert_eq!(
        try_get(&addr, "/status.json", Duration::from_secs(10)),
        Some(200)
    );
    // Memory comes back too (blocking threads and reader connections were its users).
    let rss = rss_kib(pid);
    assert!(
        rss <= base_rss + 32 * 1024,
        "resident memory {rss} KiB after the flood, {base_rss} KiB before"
    );

    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// Runs openssl in `dir`; panics with its error output when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (bash deploy/setup.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca.pem`) and a server certificate for 127.0.0.1 signed by it (`hub.pem`, `hub.key`),
/// plus an unrelated key (`other.key`).
fn make_certificates(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=hub test CA",
    ]);
    openssl(dir, &args);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend([
        "-keyout",
        "hub.key",
        "-out",
        "hub.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(dir, &args);
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "hub.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "hub.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend([
        "-keyout",
        "other.key",
        "-out",
        "other.csr",
        "-subj",
        "/CN=other",
    ]);
    openssl(dir, &args);
}

/// One HTTP/1.1 request over TLS, trusting only `ca`; returns the status code and the head.
fn https_request(addr: &str, ca: &Path, request: &str) -> Result<(u16, String), String> {
    use rustls::pki_types::pem::PemObject;
    use std::io::{Read, Write};
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let connection = rustls::ClientConnection::new(std::sync::Arc::new(config), name)
        .map_err(|e| e.to_string())?;
    let tcp = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    tls.write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    // A server may close without close_notify after `Connection: close`: keep what came.
    if let Err(e) = tls.read_to_end(&mut answer)
        && answer.is_empty()
    {
        return Err(e.to_string());
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let head = text.split("\r\n\r\n").next().unwrap_or_default().to_owned();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no HTTP status in {text:?}"))?;
    Ok((code, head))
}

#[test]
fn the_station_app_is_served_over_tls_with_secure_cookies_and_a_wrong_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config_text = |key: &str| {
        format!(
            "[site]\nid = \"tls-site\"\n[store]\ndata_dir = \"data\"\n\
             [[stations]]\nid = \"desk-1\"\nkind = \"pickup\"\nname = \"取货台 1\"\n\
             [status]\nlisten = \"127.0.0.1:{port}\"\ntls_cert_file = \"hub.pem\"\ntls_key_file = \"{key}\"\n"
        )
    };
    let config = dir.path().join("hub.toml");
    let config_arg = config.to_str().unwrap();

    // A key that is not the certificate's is named by check-config, with what to do.
    std::fs::write(&config, config_text("other.key")).unwrap();
    let out = hub(&["check-config", config_arg]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("status.tls_cert_file")
            && stderr(&out).contains("do not go together"),
        "{}",
        stderr(&out)
    );

    std::fs::write(&config, config_text("hub.key")).unwrap();
    let out = hub(&["check-config", config_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = hub(&["station", "pair", "desk-1", "--config", config_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = tests::stdout(&out);
    assert!(printed.contains("open https://"), "{printed}");
    let code: String = printed
        .split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 8)
        .expect("an 8-digit pairing code")
        .to_owned();

    let mut child = Reaped::spawn(
        Command::new(tests::hub_binary())
            .args(["run", "--config", config_arg])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    let addr = format!("127.0.0.1:{port}");
    let ca = dir.path().join("ca.pem");
    let get_status =
        format!("GET /status.json HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Ok((200, _)) = https_request(&addr, &ca, &get_status) {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "hub run exited");
        assert!(
            std::time::Instant::now() < deadline,
            "the page never answered over TLS"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Plain HTTP on the same port gets no page.
    assert_ne!(
        try_get(&addr, "/status.json", std::time::Duration::from_secs(15)),
        Some(200)
    );

    // Pairing a tablet over TLS: its device cookie is Secure (never sent over plain HTTP).
    let body = format!("code={code}");
    let pair = format!(
        "POST /station/pair HTTP/1.1\r\nHost: {addr}\r\nOrigin: https://{addr}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, head) = https_request(&addr, &ca, &pair).unwrap();
    assert_eq!(status, 303, "{head}");
    let cookie = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie in {head}"));
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("; Secure"),
        "{cookie}"
    );
    stop(child);
}

//! Hardware-in-the-loop tests: the `hub` binary reads simulated scales and scanners (`hub sim`)
//! over real pseudo-terminals, exactly as it reads USB-serial adapters in the field.
//!
//! Assertions poll the hub's journal (`device_input`), its outbox, its alerts and the device
//! status file with deadlines; sleeps only pace the scenario, never decide a result.

mod support;

use rusqlite::{Connection, OpenFlags};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const HUB: &str = env!("CARGO_BIN_EXE_hub");

/// A simulated device process, driven by stdin commands.
struct Sim {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Sim {
    fn start(args: &[&str]) -> Sim {
        let mut child = Command::new(HUB)
            .arg("sim")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start hub sim");
        let stdin = child.stdin.take().expect("sim stdin");
        let stdout = child.stdout.take().expect("sim stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
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
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(wanted) => return,
                Ok(line) if line.starts_with("error") => panic!("sim: {line}"),
                Ok(_) => {}
                Err(_) => panic!("sim did not say '{wanted}' in time"),
            }
        }
    }

    /// Sends a command and waits for its acknowledgement.
    fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").expect("write to sim");
        self.stdin.flush().expect("flush sim stdin");
        let verb = command.split(' ').next().unwrap_or(command);
        self.expect(&format!("ok {verb}"));
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `hub run` on its own site.
struct Hub {
    child: Child,
    dir: tempfile::TempDir,
}

impl Hub {
    fn config_path(dir: &Path) -> PathBuf {
        dir.join("hub.toml")
    }

    fn write_config(dir: &Path, devices: &str) {
        let text = format!(
            "[site]\nid = \"hil\"\n[store]\ndata_dir = \"data\"\n[log]\nlevel = \"info\"\n[shutdown]\ngrace_seconds = 3\n[[stations]]\nid = \"recv-1\"\nkind = \"receiving\"\n[[stations]]\nid = \"pickup-1\"\nkind = \"pickup\"\n{devices}"
        );
        std::fs::write(Hub::config_path(dir), text).expect("write config");
    }

    fn start(dir: tempfile::TempDir) -> Hub {
        let log = std::fs::File::create(dir.path().join("hub.log")).expect("log file");
        let child = Command::new(HUB)
            .arg("run")
            .arg("--config")
            .arg(Hub::config_path(dir.path()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start hub");
        Hub { child, dir }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("data").join("hub-hil.sqlite")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("hub.log")).unwrap_or_default()
    }

    fn query<T>(&self, sql: &str, f: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>) -> Vec<T> {
        let Ok(conn) = Connection::open_with_flags(self.db(), OpenFlags::SQLITE_OPEN_READ_ONLY)
        else {
            return Vec::new();
        };
        let _ = conn.busy_timeout(Duration::from_secs(2));
        let Ok(mut st) = conn.prepare(sql) else {
            return Vec::new();
        };
        st.query_map([], |r| f(r))
            .and_then(|rows| rows.collect())
            .unwrap_or_default()
    }

    /// (device, grams, outcome) of every journaled weight.
    fn weights(&self) -> Vec<(String, i64, String)> {
        self.query(
            "SELECT device, grams, outcome FROM device_input WHERE kind = 'weight' ORDER BY id",
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }

    /// (device, code, parsed, outcome, detail) of every journaled scan.
    fn scans(&self) -> Vec<(String, String, String, String, String)> {
        self.query(
            "SELECT device, code, parsed, outcome, detail FROM device_input WHERE kind = 'scan' ORDER BY id",
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
    }

    fn outbox_kinds(&self) -> Vec<String> {
        self.query("SELECT kind FROM outbox ORDER BY seq", |r| r.get(0))
    }

    fn open_alert_subjects(&self) -> Vec<String> {
        self.query(
            "SELECT subject FROM alert WHERE kind = 'device_offline'",
            |r| r.get(0),
        )
    }

    fn status(&self) -> serde_json::Value {
        std::fs::read(self.dir.path().join("data").join("devices-status.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    fn device_status(&self, name: &str) -> serde_json::Value {
        self.status()
            .as_array()
            .and_then(|a| a.iter().find(|d| d["name"] == name).cloned())
            .unwrap_or(serde_json::Value::Null)
    }

    /// User + system CPU time of the hub process, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("hub /proc stat");
        let after = &stat[stat.rfind(')').expect("comm field") + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    fn pid_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(what: &str, hub: &Hub, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "timed out waiting for {what}\n--- device status ---\n{}\n--- hub log ---\n{}",
        hub.status(),
        hub.log()
    );
}

fn scale_entry(name: &str, protocol: &str, link: &Path, extra: &str) -> String {
    format!(
        "[[devices]]\nname = \"{name}\"\nkind = \"scale\"\npath = \"{}\"\nprotocol = \"{protocol}\"\nstation = \"recv-1\"\npoll_interval_ms = 100\noffline_after_ms = 1500\nreconnect_max_ms = 1000\n{extra}\n",
        link.display()
    )
}

fn scanner_entry(name: &str, link: &Path) -> String {
    format!(
        "[[devices]]\nname = \"{name}\"\nkind = \"scanner\"\npath = \"{}\"\nterminator = \"cr\"\nstation = \"recv-1\"\nreconnect_max_ms = 1000\n",
        link.display()
    )
}

fn link(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("by-id-{name}"))
}

fn link_arg(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn each_protocol_reads_a_stable_weight() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("sics", "mt-sics", "1.250", 1250),
        ("toledo", "toledo8217", "2.340", 2340),
        ("cont", "mettler-continuous", "0.875", 875),
        ("a9", "yaohua-a9", "3.100", 3100),
    ];
    let mut sims = Vec::new();
    let mut devices = String::new();
    for (name, protocol, _, _) in cases {
        let l = link(dir.path(), name);
        sims.push(Sim::start(&[
            "scale",
            "--protocol",
            protocol,
            "--link",
            &link_arg(&l),
        ]));
        devices.push_str(&scale_entry(name, protocol, &l, ""));
    }
    Hub::write_config(dir.path(), &devices);
    let hub = Hub::start(dir);
    for (sim, (_, _, kg, _)) in sims.iter_mut().zip(cases) {
        sim.send(&format!("put {kg}"));
    }
    wait_for("a stable weight from every protocol", &hub, 20, || {
        let w = hub.weights();
        cases
            .iter()
            .all(|(name, _, _, grams)| w.iter().any(|(d, g, _)| d == name && g == grams))
    });
    // Exactly one journal row per placement, and nothing but the placed weights.
    std::thread::sleep(Duration::from_millis(800));
    let w = hub.weights();
    for (name, _, _, grams) in cases {
        let rows: Vec<_> = w.iter().filter(|(d, _, _)| d == name).collect();
        assert_eq!(rows.len(), 1, "{name}: {rows:?}");
        assert_eq!(rows[0].1, grams);
    }
    for (name, ..) in cases {
        assert_eq!(hub.device_status(name)["online"], true, "{name}");
    }
}

#[test]
fn motion_never_yields_a_stable_reading() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("sics", "mt-sics"),
        ("toledo", "toledo8217"),
        ("a9", "yaohua-a9"),
    ];
    let mut sims = Vec::new();
    let mut devices = String::new();
    for (name, protocol) in cases {
        let l = link(dir.path(), name);
        let mut sim = Sim::start(&["scale", "--protocol", protocol, "--link", &link_arg(&l)]);
        sim.send("move");
        sim.send("put 1.500");
        sims.push(sim);
        devices.push_str(&scale_entry(name, protocol, &l, ""));
    }
    Hub::write_config(dir.path(), &devices);
    let hub = Hub::start(dir);
    wait_for("readings from every moving scale", &hub, 10, || {
        cases
            .iter()
            .all(|(name, _)| hub.device_status(name)["frames"].as_u64().unwrap_or(0) >= 20)
    });
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(3) {
        assert!(
            hub.weights().is_empty(),
            "a moving load gave a stable weight: {:?}",
            hub.weights()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The same scales do report once the goods stop moving: the check above could fail.
    for sim in &mut sims {
        sim.send("still");
    }
    wait_for("stable weights after the motion stops", &hub, 15, || {
        let w = hub.weights();
        cases
            .iter()
            .all(|(name, _)| w.iter().any(|(d, g, _)| d == name && *g == 1500))
    });
}

fn seed_receiving(dir: &Path) {
    use hub::store::{Store, StoreOptions, deliveries, sku};
    use hub_core::receiving::{Manifest, ManifestLine};
    use hub_core::{Sku, SkuCode, Timestamp};
    let config = hub::config::Config::load(&Hub::config_path(dir)).expect("config");
    let store = Store::open(
        &config.database_path(),
        config.site.id.as_str(),
        &StoreOptions::default(),
    )
    .expect("open store");
    store
        .write_blocking(|c| {
            sku::upsert(
                c,
                &Sku {
                    name: "Apples 1 kg".into(),
                    gtins: vec!["09506000134352".parse().unwrap()],
                    ..support::sku("APPLE-1KG")
                },
                Timestamp(0),
            )?;
            deliveries::upsert_manifest(
                c,
                &Manifest {
                    delivery_id: "DLV-1".into(),
                    supplier: "Orchard".into(),
                    expected_at: None,
                    lines: vec![ManifestLine {
                        line_no: 1,
                        sku: SkuCode::new("APPLE-1KG").unwrap(),
                        lot: "LOT7".into(),
                        production_date: None,
                        expiry: None,
                        expected_count: Some(10),
                        expected_weight_g: Some(1250),
                        weight_tolerance_g: 50,
                        trace_codes: vec![],
                        crate_label: None,
                    }],
                    cancelled: false,
                    version: 1,
                },
                Timestamp(0),
            )?;
            Ok::<_, hub::store::StoreError>(())
        })
        .expect("seed");
    store.close();
}

#[test]
fn a_gs1_scan_is_parsed_and_bound_and_the_weight_lands_on_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let scan_link = link(dir.path(), "scan");
    let scale_link = link(dir.path(), "scale");
    let mut scanner = Sim::start(&["scanner", "--link", &link_arg(&scan_link)]);
    let mut scale = Sim::start(&[
        "scale",
        "--protocol",
        "mt-sics",
        "--link",
        &link_arg(&scale_link),
    ]);
    Hub::write_config(
        dir.path(),
        &format!(
            "{}{}",
            scanner_entry("scan", &scan_link),
            scale_entry("scale", "mt-sics", &scale_link, "")
        ),
    );
    seed_receiving(dir.path());
    let hub = Hub::start(dir);
    wait_for("both devices online", &hub, 10, || {
        hub.device_status("scan")["online"] == true && hub.device_status("scale")["online"] == true
    });
    scanner.send("scan DLV-1/1");
    scanner.send(r"scan ]C1010950600013435221ABC123\x1d10LOT7");
    wait_for("two journaled scans", &hub, 10, || hub.scans().len() == 2);
    let scans = hub.scans();
    assert_eq!(scans[0].3, "applied", "{scans:?}");
    assert!(scans[0].4.contains("DLV-1 line 1"), "{scans:?}");
    let (_, code, parsed, outcome, detail) = &scans[1];
    assert_eq!(code, "010950600013435221ABC123\u{1d}10LOT7");
    let parsed: serde_json::Value = serde_json::from_str(parsed).unwrap();
    assert_eq!(parsed["class"], "gs1_item");
    assert_eq!(parsed["gtin"], "09506000134352");
    assert_eq!(parsed["serial"], "ABC123");
    assert_eq!(parsed["lot"], "LOT7");
    assert_eq!(parsed["aim"], "]C1");
    assert_eq!(outcome, "applied", "{detail}");
    assert!(detail.contains("bound"), "{detail}");
    scale.send("put 1.250");
    wait_for("the weight recorded on the line", &hub, 10, || {
        hub.weights()
            .iter()
            .any(|(_, g, o)| *g == 1250 && o == "applied")
    });
    assert!(hub.outbox_kinds().contains(&"trace_code_bound".to_owned()));
}

#[test]
fn a_malformed_scan_is_journaled_as_flagged_with_its_reason_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let scan_link = link(dir.path(), "scan");
    let mut scanner = Sim::start(&["scanner", "--link", &link_arg(&scan_link)]);
    Hub::write_config(dir.path(), &scanner_entry("scan", &scan_link));
    seed_receiving(dir.path());
    let hub = Hub::start(dir);
    wait_for("the scanner online", &hub, 10, || {
        hub.device_status("scan")["online"] == true
    });
    scanner.send("scan DLV-1/1");
    // A GS1 item code whose GTIN check digit is wrong (…352 is right).
    scanner.send(r"scan ]C1010950600013435321ABC123");
    wait_for("two journaled scans", &hub, 10, || hub.scans().len() == 2);
    let scans = hub.scans();
    let (_, _, parsed, outcome, detail) = &scans[1];
    assert!(parsed.contains("\"class\":\"invalid\""), "{parsed}");
    assert_eq!(outcome, "flagged", "{scans:?}");
    assert!(
        detail.contains("malformed") && detail.contains("check digit"),
        "the reason is journaled: {detail}"
    );
    wait_for("the malformed scan counted", &hub, 5, || {
        let s = hub.device_status("scan");
        s["malformed"].as_u64() == Some(1) && s["flagged"].as_u64() == Some(1)
    });
    assert_eq!(hub.device_status("scan")["applied"].as_u64(), Some(1));
    assert!(
        hub.outbox_kinds()
            .contains(&"trace_code_flagged".to_owned())
    );
}

#[test]
fn an_mt_sics_probe_answer_split_across_writes_is_reassembled_not_counted_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let scale_link = link(dir.path(), "scale");
    let mut scale = Sim::start(&[
        "scale",
        "--protocol",
        "mt-sics",
        "--link",
        &link_arg(&scale_link),
    ]);
    // Every answer, the probe's `I4 A "SIM0000001"` first, arrives in two pieces 200 ms apart.
    scale.send("split 200");
    Hub::write_config(
        dir.path(),
        &scale_entry("scale", "mt-sics", &scale_link, ""),
    );
    let hub = Hub::start(dir);
    wait_for("the scale online", &hub, 10, || {
        hub.device_status("scale")["online"] == true
    });
    let detail = hub.device_status("scale")["detail"].to_string();
    assert!(
        detail.contains("SIM0000001"),
        "the whole serial number was read: {detail}"
    );
    scale.send("put 1.500");
    wait_for("a stable weight from split answers", &hub, 10, || {
        hub.weights().iter().any(|(_, g, _)| *g == 1500)
    });
    wait_for("the counters published", &hub, 5, || {
        hub.device_status("scale")["frames"].as_u64().unwrap_or(0) > 3
    });
    let status = hub.device_status("scale");
    assert_eq!(status["malformed"].as_u64(), Some(0), "{status}");
    assert_eq!(status["garbage_frames"].as_u64(), Some(0), "{status}");
}

#[test]
fn unplug_and_replug_resume_without_a_restart_and_without_spinning() {
    let dir = tempfile::tempdir().unwrap();
    let l = link(dir.path(), "scale");
    let mut sim = Sim::start(&["scale", "--protocol", "mt-sics", "--link", &link_arg(&l)]);
    Hub::write_config(dir.path(), &scale_entry("scale", "mt-sics", &l, ""));
    let mut hub = Hub::start(dir);
    sim.send("put 1.000");
    wait_for("the first weight", &hub, 10, || {
        hub.weights().iter().any(|(_, g, _)| *g == 1000)
    });
    sim.send("unplug");
    wait_for("the device reported offline", &hub, 10, || {
        hub.outbox_kinds().contains(&"device_offline".to_owned())
            && hub.open_alert_subjects() == vec!["scale".to_owned()]
    });
    // Unplugged for 3 s: the hub must sleep between reopen attempts, not spin on the dead fd.
    let before = hub.cpu_ticks();
    std::thread::sleep(Duration::from_secs(3));
    let used = hub.cpu_ticks() - before;
    assert!(
        used < 30,
        "hub used {used} clock ticks of CPU in 3 s with the adapter unplugged"
    );
    sim.send("replug");
    wait_for(
        "the device back online and the alert cleared",
        &hub,
        10,
        || hub.device_status("scale")["online"] == true && hub.open_alert_subjects().is_empty(),
    );
    sim.send("put 2.000");
    wait_for("readings after the replug", &hub, 10, || {
        hub.weights().iter().any(|(_, g, _)| *g == 2000)
    });
    assert!(hub.pid_alive(), "the hub restarted or died");
    let kinds = hub.outbox_kinds();
    let offline = kinds.iter().position(|k| k == "device_offline").unwrap();
    assert!(
        kinds[offline..].iter().any(|k| k == "device_online"),
        "{kinds:?}"
    );
    assert!(hub.device_status("scale")["reconnects"].as_u64().unwrap() >= 1);
}

#[test]
fn noise_partial_frames_and_overlong_lines_are_survived_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let scale_link = link(dir.path(), "scale");
    let scan_link = link(dir.path(), "scan");
    let mut scale = Sim::start(&[
        "scale",
        "--protocol",
        "mt-sics",
        "--link",
        &link_arg(&scale_link),
    ]);
    let mut scanner = Sim::start(&["scanner", "--link", &link_arg(&scan_link)]);
    Hub::write_config(
        dir.path(),
        &format!(
            "{}{}",
            scale_entry("scale", "mt-sics", &scale_link, ""),
            scanner_entry("scan", &scan_link)
        ),
    );
    let hub = Hub::start(dir);
    wait_for("both devices online", &hub, 10, || {
        hub.device_status("scan")["online"] == true && hub.device_status("scale")["online"] == true
    });
    // Separate incidents, paced apart so each one reaches the hub on its own: a partial frame,
    // wrong-baud noise and an over-long line, into each stream.
    let pace = || std::thread::sleep(Duration::from_millis(300));
    scale.send("partial");
    pace();
    scale.send("garbage 300");
    pace();
    scale.send("overlong 400");
    scanner.send("partial ]C10109506");
    pace();
    scanner.send("garbage 100");
    pace();
    scanner.send("overlong 2000");
    pace();
    scale.send("put 1.750");
    scanner.send("scan DLV-9/1");
    wait_for("a weight and a scan after the noise", &hub, 10, || {
        hub.weights().iter().any(|(_, g, _)| *g == 1750)
            && hub.scans().iter().any(|s| s.1 == "DLV-9/1")
    });
    wait_for("counters in the status file", &hub, 5, || {
        let s = hub.device_status("scale");
        let c = hub.device_status("scan");
        s["garbage_bytes"].as_u64().unwrap_or(0) > 0
            && s["overlong"].as_u64().unwrap_or(0) >= 1
            && s["malformed"].as_u64().unwrap_or(0) >= 1
            && c["overlong"].as_u64().unwrap_or(0) >= 1
            && c["garbage_frames"].as_u64().unwrap_or(0) >= 1
    });
    // Noise never became a scan or a weight.
    assert!(
        hub.scans()
            .iter()
            .all(|s| s.1.bytes().all(|b| b.is_ascii_graphic())),
        "{:?}",
        hub.scans()
    );
    assert!(hub.weights().iter().all(|(_, g, _)| *g == 1750));
    assert_eq!(hub.device_status("scale")["online"], true);
}

/// A free loopback port for the status page.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` on 127.0.0.1:`port`; the parsed JSON body, or `Null` while the page is not up.
fn get_json(port: u16, path: &str) -> serde_json::Value {
    use std::io::Read;
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return serde_json::Value::Null;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return serde_json::Value::Null;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    match response.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => {
            serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
        }
        _ => serde_json::Value::Null,
    }
}

/// The `devices` entry named `name` of `/status.json`.
fn page_device(port: u16, name: &str) -> serde_json::Value {
    get_json(port, "/status.json")["devices"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["name"] == name).cloned())
        .unwrap_or(serde_json::Value::Null)
}

#[test]
fn the_status_page_shows_a_scale_online_with_its_weight_then_offline_after_unplug() {
    let dir = tempfile::tempdir().unwrap();
    let l = link(dir.path(), "scale");
    let mut sim = Sim::start(&["scale", "--protocol", "mt-sics", "--link", &link_arg(&l)]);
    let port = free_port();
    Hub::write_config(
        dir.path(),
        &format!(
            "{}[status]\nlisten = \"127.0.0.1:{port}\"\n",
            scale_entry("scale", "mt-sics", &l, "")
        ),
    );
    let hub = Hub::start(dir);
    sim.send("put 1.250");
    wait_for(
        "the scale online with 1.250 kg on the status page",
        &hub,
        15,
        || {
            let d = page_device(port, "scale");
            d["online"] == true && d["last_reading"] == "1.250 kg"
        },
    );
    let d = page_device(port, "scale");
    assert_eq!(d["kind"], "scale");
    assert_eq!(d["detail"], link_arg(&l), "{d}");
    assert!(d["last_seen"].as_i64().unwrap_or(0) > 0, "{d}");
    assert!(
        get_json(port, "/status.json")["devices_online"]
            .as_u64()
            .unwrap_or(0)
            == 1
    );
    sim.send("unplug");
    wait_for("the scale offline on the status page", &hub, 15, || {
        page_device(port, "scale")["online"] == false
    });
    let d = page_device(port, "scale");
    assert_eq!(d["last_reading"], "1.250 kg", "{d}");
    let detail = d["detail"].as_str().unwrap_or_default();
    assert!(detail.starts_with(&link_arg(&l)), "{detail}");
    assert_eq!(get_json(port, "/status.json")["devices_online"], 0);
}

/// A test client publishing as a networked device would; its network thread reconnects on
/// its own and ends when the client is dropped.
struct Publisher {
    client: rumqttc::Client,
}

impl Publisher {
    fn connect(port: u16, id: &str) -> Publisher {
        let mut options = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(5));
        let (client, mut connection) = rumqttc::Client::new(options, 64);
        std::thread::spawn(move || {
            for event in connection.iter() {
                if let Err(rumqttc::ConnectionError::RequestsDone) = event {
                    break;
                }
                if event.is_err() {
                    // Reconnect pacing only.
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
        Publisher { client }
    }

    fn publish(&self, topic: &str, payload: &[u8]) {
        self.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload.to_vec())
            .expect("queue publish");
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.client.disconnect();
    }
}

/// `hub devices --json` on the running hub's config.
fn devices_json(hub: &Hub) -> serde_json::Value {
    let out = Command::new(HUB)
        .args(["devices", "--json", "--config"])
        .arg(Hub::config_path(hub.dir.path()))
        .output()
        .expect("run hub devices");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("hub devices --json output")
}

#[test]
fn mqtt_devices_on_a_real_broker_survive_its_loss_without_a_restart() {
    use hub_mqtt::brokers::{Mosquitto, MosquittoOptions};
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Mosquitto::start(&dir.path().join("broker"), &MosquittoOptions::default())
        .expect("start mosquitto (apt-get install mosquitto)");
    let port = broker.port();
    let (scan_topic, scale_topic) = ("hil/devices/net-scan", "hil/devices/net-scale");
    Hub::write_config(
        dir.path(),
        &format!(
            "[codes]\npatterns = [\"licence:SC:N:14:mod10\"]\n\
             [device_broker]\nhost = \"127.0.0.1\"\nport = {port}\n\
             [[devices]]\nname = \"net-scan\"\nkind = \"scanner\"\ntransport = \"mqtt\"\n\
             topic = \"{scan_topic}\"\nstation = \"recv-1\"\nrole = \"receiving\"\n\
             [[devices]]\nname = \"net-scale\"\nkind = \"scale\"\ntransport = \"mqtt\"\n\
             topic = \"{scale_topic}\"\nstation = \"recv-1\"\nstable_readings = 2\n"
        ),
    );
    seed_receiving(dir.path());
    let mut hub = Hub::start(dir);
    let both = |online: bool| {
        hub.device_status("net-scan")["online"] == online
            && hub.device_status("net-scale")["online"] == online
    };
    wait_for("both networked devices online", &hub, 15, || both(true));
    let device = Publisher::connect(port, "hil-device-1");
    // The hub subscribes right after it connects; an empty pan, published until the hub
    // counts it, proves the subscriptions are in place (zero is never a placement).
    wait_for("the hub hearing the scale topic", &hub, 15, || {
        device.publish(scale_topic, br#"{"grams": 0, "stable": true}"#);
        std::thread::sleep(Duration::from_millis(100));
        hub.device_status("net-scale")["frames"]
            .as_u64()
            .unwrap_or(0)
            > 0
    });

    device.publish(scan_topic, b"DLV-1/1");
    wait_for("the scan journaled and the line selected", &hub, 10, || {
        hub.scans()
            .iter()
            .any(|s| s.0 == "net-scan" && s.3 == "applied" && s.4.contains("DLV-1 line 1"))
    });
    for payload in [
        &br#"{"grams": 700, "stable": false}"#[..],
        br#"{"grams": 700, "stable": false}"#,
        br#"{"grams": 700, "stable": false}"#,
        br#"{"grams": "#,
        b"1.250 kg",
        br#"{"grams": 1250, "stable": true}"#,
        br#"{"grams": 1250, "stable": true}"#,
    ] {
        device.publish(scale_topic, payload);
    }
    wait_for("the stable weight recorded on the line", &hub, 10, || {
        hub.weights()
            .iter()
            .any(|(d, g, o)| d == "net-scale" && *g == 1250 && o == "applied")
    });
    wait_for("the malformed payloads counted", &hub, 5, || {
        hub.device_status("net-scale")["malformed"]
            .as_u64()
            .unwrap_or(0)
            >= 2
    });
    let weights = hub.weights();
    assert!(
        weights.iter().all(|(_, g, _)| *g == 1250),
        "an unstable reading was recorded: {weights:?}"
    );
    // The site's [codes] pattern reaches the scanner adapter and the receiving workflow: a
    // matching licence code is bound, one with a wrong check digit is flagged with the reason.
    device.publish(scan_topic, b"SC12345678901231");
    device.publish(scan_topic, b"SC12345678901232");
    wait_for("both licence codes journaled", &hub, 10, || {
        hub.scans().iter().filter(|s| s.1.starts_with("SC")).count() == 2
    });
    let scans = hub.scans();
    let licence: Vec<_> = scans.iter().filter(|s| s.1.starts_with("SC")).collect();
    let parsed = |i: usize| serde_json::from_str::<serde_json::Value>(&licence[i].2).unwrap();
    assert_eq!(parsed(0)["class"], "site", "{licence:?}");
    assert_eq!(parsed(0)["pattern"], "licence", "{licence:?}");
    assert!(licence[0].4.contains("bound"), "{licence:?}");
    assert_eq!(parsed(1)["class"], "invalid", "{licence:?}");
    assert_eq!(licence[1].3, "flagged", "{licence:?}");
    assert!(
        licence[1]
            .4
            .contains("pattern licence: check character '2', expected '1'"),
        "{licence:?}"
    );
    // The status file behind `hub devices` is rewritten twice a second. The flagged licence
    // code is not "applied": it is counted as flagged and as malformed.
    wait_for("the scanner's counters in the status file", &hub, 5, || {
        let s = hub.device_status("net-scan");
        s["applied"] == 2 && s["flagged"] == 1 && s["malformed"] == 1
    });
    let listed = devices_json(&hub);
    let entry = |name: &str| {
        listed["devices"]
            .as_array()
            .and_then(|a| a.iter().find(|d| d["name"] == name).cloned())
            .unwrap_or_default()
    };
    let (scale, scanner) = (entry("net-scale"), entry("net-scan"));
    assert!(scale["malformed"].as_u64().unwrap_or(0) >= 2, "{scale}");
    assert!(scale["applied"].as_u64().unwrap_or(0) >= 1, "{scale}");
    assert_eq!(scale["last_grams"], 1250, "{scale}");
    assert_eq!(scale["source"], format!("mqtt:{scale_topic}"), "{scale}");
    assert_eq!(scanner["applied"], 2, "{scanner}");
    assert_eq!(scanner["flagged"], 1, "{scanner}");
    assert_eq!(scanner["last_code"], "SC12345678901232", "{scanner}");
    assert!(
        listed["journal"].as_array().map_or(0, Vec::len) >= 2,
        "{listed}"
    );

    let table = Command::new(HUB)
        .args(["devices", "--config"])
        .arg(Hub::config_path(hub.dir.path()))
        .output()
        .expect("run hub devices");
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("last 1.250 kg at "), "{table}");
    assert!(table.contains("last SC12345678901232 at "), "{table}");

    broker.kill();
    wait_for(
        "both devices offline with an event and an alert each",
        &hub,
        15,
        || {
            let mut alerts = hub.open_alert_subjects();
            alerts.sort();
            both(false)
                && alerts == ["net-scale", "net-scan"]
                && hub
                    .outbox_kinds()
                    .iter()
                    .filter(|k| *k == "device_offline")
                    .count()
                    >= 2
        },
    );
    broker.restart().expect("restart mosquitto");
    wait_for(
        "both devices online again, alerts cleared",
        &hub,
        30,
        || both(true) && hub.open_alert_subjects().is_empty(),
    );
    let device = Publisher::connect(port, "hil-device-2");
    wait_for("readings after the broker came back", &hub, 15, || {
        device.publish(scale_topic, br#"{"grams": 2000, "stable": true}"#);
        std::thread::sleep(Duration::from_millis(100));
        hub.weights()
            .iter()
            .any(|(d, g, _)| d == "net-scale" && *g == 2000)
    });
    assert!(hub.pid_alive(), "the hub restarted or died");
}

//! Photo checks through the `hub` binary: `hub check-image` on both backends, what a missing
//! ONNX Runtime library does under each `on_load_failure`, and a photo dropped by a camera into
//! the spool folder of a running `hub run`, or published on its station's MQTT topic (a real
//! Mosquitto), reaching the selected receiving line.
//!
//! ONNX Runtime comes from `.runtime/onnxruntime/<arch>/` (deploy/fetch-onnxruntime.sh, run by
//! deploy/setup.sh); the commands run from the workspace root so the hub finds it and the model.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use tests::{Reaped, hub_binary, stderr, stdout, workspace_root};

fn image(name: &str) -> PathBuf {
    workspace_root()
        .join("hub/vision/testdata/images")
        .join(name)
}

fn hub_in_root(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(hub_binary())
        .current_dir(workspace_root())
        .args(args)
        .envs(env.iter().copied())
        .env_remove("HUB_ONNXRUNTIME_LIB")
        .output()
        .expect("run hub")
}

fn check_image(photo: &Path, env: &[(&str, &str)]) -> (Option<i32>, Value, String) {
    let out = hub_in_root(
        &[
            "check-image",
            photo.to_str().unwrap(),
            "--sku",
            "ORANGE-5KG",
            "--expect",
            "950",
            "--json",
        ],
        env,
    );
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check-image printed no JSON ({e}): {}{}",
            stdout(&out),
            stderr(&out)
        )
    });
    (out.status.code(), json, stderr(&out))
}

fn assert_orange_passes_and_baboon_does_not(env: &[(&str, &str)], backend: &str) {
    let (code, json, err) = check_image(&image("orange.jpg"), env);
    assert_eq!(code, Some(0), "orange.jpg should pass: {json}\n{err}");
    assert_eq!(json["outcome"], "pass", "{json}");
    assert_eq!(json["backend"], backend, "{json}");
    assert_eq!(json["top_k"][0]["class_id"], 950, "{json}");
    assert_eq!(json["model_name"].as_str().map(str::is_empty), Some(false));

    let (code, json, err) = check_image(&image("baboon.jpg"), env);
    assert_eq!(code, Some(5), "baboon.jpg must not pass: {json}\n{err}");
    assert_eq!(
        json["outcome"], "needs_review",
        "the model alone may not reject by default: {json}"
    );
    assert_eq!(json["backend"], backend);
}

#[test]
fn check_image_passes_an_orange_and_not_a_baboon_on_onnxruntime() {
    assert_orange_passes_and_baboon_does_not(
        &[("HUB_VISION_BACKEND", "onnxruntime")],
        "onnxruntime",
    );
}

#[test]
fn check_image_passes_an_orange_and_not_a_baboon_on_tract() {
    assert_orange_passes_and_baboon_does_not(&[("HUB_VISION_BACKEND", "tract")], "tract");
}

fn config_with_missing_library(dir: &Path, on_load_failure: &str) -> PathBuf {
    let file = dir.join("hub.toml");
    std::fs::write(
        &file,
        format!(
            "[site]\nid = \"vision-site\"\n[store]\ndata_dir = \"data\"\n\
             [vision]\nbackend = \"onnxruntime\"\nlibrary_path = \"/nonexistent/libonnxruntime.so\"\n\
             on_load_failure = \"{on_load_failure}\"\n\
             [[vision.rules]]\nsku = \"ORANGE-5KG\"\nexpected = [\"orange\"]\n"
        ),
    )
    .unwrap();
    file
}

#[test]
fn a_missing_runtime_library_is_a_clear_error_or_a_fallback_as_configured() {
    let dir = tempfile::tempdir().unwrap();
    let photo = image("orange.jpg");
    let refuse = config_with_missing_library(dir.path(), "refuse");
    let out = hub_in_root(
        &[
            "check-image",
            photo.to_str().unwrap(),
            "--sku",
            "ORANGE-5KG",
            "--config",
            refuse.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("cannot start the inference backend")
            && err.contains("/nonexistent/libonnxruntime.so"),
        "the error names what failed and where: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let fallback = config_with_missing_library(dir.path(), "fallback_to_tract");
    let out = hub_in_root(
        &[
            "check-image",
            photo.to_str().unwrap(),
            "--sku",
            "ORANGE-5KG",
            "--config",
            fallback.to_str().unwrap(),
            "--json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["backend"], "tract", "{json}");
    assert_eq!(json["outcome"], "pass", "{json}");
}

fn run_ok(args: &[&str]) -> String {
    let out = hub_in_root(args, &[]);
    assert!(
        out.status.success(),
        "hub {args:?} failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// A site whose config has `vision_extra` in its `[vision]` section (and `extra` after it), an
/// ORANGE SKU with a rule, delivery D950 with line 1 selected at station `dock` and counted.
/// Returns the config path.
fn receiving_site(dir: &Path, vision_extra: &str, extra: &str) -> String {
    let config = dir.join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "[site]\nid = \"photo-site\"\n[store]\ndata_dir = \"data\"\n[shutdown]\ngrace_seconds = 5\n[[stations]]\nid = \"dock\"\nkind = \"receiving\"\n\
             [status]\nlisten = \"127.0.0.1:0\"\n\
             [vision]\nenabled = true\n{vision_extra}\n\
             [[vision.rules]]\nsku = \"ORANGE\"\nexpected = [950, \"lemon\"]\nmin_probability = 0.2\n{extra}"
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap().to_owned();
    let write = |name: &str, value: Value| {
        let path = dir.join(name);
        std::fs::write(&path, value.to_string()).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let skus = write(
        "skus.json",
        json!([{
            "code": "ORANGE", "name": "Navel oranges", "unit": "piece", "gtins": [],
            "allow_negative": false, "check_items_at_handover": false, "version": 1
        }]),
    );
    run_ok(&["sku", "import", &skus, "--config", &cfg]);
    let manifest = write(
        "manifest.json",
        json!({
            "delivery_id": "D950", "supplier": "Sunny Orchards", "version": 1,
            "lines": [{"line_no": 1, "sku": "ORANGE", "lot": "OR-950", "expiry": "2030-01-31",
                       "expected_count": 12}]
        }),
    );
    run_ok(&["receive", "manifest", &manifest, "--config", &cfg]);
    let selected = run_ok(&[
        "receive",
        "scan",
        "--station",
        "dock",
        "D950/1",
        "--config",
        &cfg,
    ]);
    assert!(selected.contains("line 1 selected"), "{selected}");
    run_ok(&[
        "receive",
        "count",
        "--delivery",
        "D950",
        "--line",
        "1",
        "12",
        "--config",
        &cfg,
    ]);
    cfg
}

/// The sha256 of a test image, as `sha256sum` prints it.
fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// `hub receive show --delivery D950 --json`, as compact JSON text.
fn delivery_d950(cfg: &str) -> String {
    let shown = run_ok(&[
        "receive",
        "show",
        "--delivery",
        "D950",
        "--config",
        cfg,
        "--json",
    ]);
    serde_json::from_str::<Value>(&shown)
        .unwrap_or_else(|e| panic!("receive show --json printed no JSON ({e}): {shown}"))
        .to_string()
}

/// After orange.jpg reached line 1 of D950: deciding accepts the line, the decision carries the
/// photo's hash and a passing verdict, and the photo is kept in the evidence folder.
fn assert_orange_accepted_with_its_evidence(dir: &Path, cfg: &str) {
    let decided = run_ok(&[
        "receive",
        "decide",
        "--delivery",
        "D950",
        "--line",
        "1",
        "--staff",
        "li.wei",
        "--config",
        cfg,
    ]);
    assert!(decided.contains("ACCEPTED"), "{decided}");
    let text = delivery_d950(cfg);
    let sha = sha256_of(&image("orange.jpg"));
    assert!(
        text.contains(&sha),
        "the photo's hash is on the line: {text}"
    );
    assert!(text.contains("\"verdict\":\"pass\""), "{text}");
    assert!(
        dir.join(format!("data/evidence/{sha}.jpg")).exists(),
        "the photo is kept as evidence"
    );
}

#[test]
fn a_photo_dropped_into_the_spool_folder_becomes_the_lines_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = receiving_site(
        dir.path(),
        "spool_dir = \"spool\"\nspool_station = \"dock\"\nspool_poll_ms = 100",
        "",
    );
    let cfg = cfg.as_str();

    let child = Reaped::spawn(
        Command::new(hub_binary())
            .current_dir(workspace_root())
            .env_remove("HUB_ONNXRUNTIME_LIB")
            .args(["run", "--config", cfg])
            .stderr(Stdio::piped()),
    );
    // The camera writes under a temporary name and renames when done, as FTP uploads do.
    let spool = dir.path().join("spool");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !spool.is_dir() {
        assert!(Instant::now() < deadline, "hub run never created {spool:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let photo = std::fs::read(image("orange.jpg")).unwrap();
    std::fs::write(spool.join("cam-0001.part"), &photo).unwrap();
    std::fs::rename(spool.join("cam-0001.part"), spool.join("cam-0001.jpg")).unwrap();
    let done = spool.join("done/cam-0001.jpg");
    let rejected = spool.join("rejected/cam-0001.jpg");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done.exists() && !rejected.exists() {
        assert!(
            Instant::now() < deadline,
            "the spooled photo was never processed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.into_inner().wait_with_output().unwrap();
    assert!(out.status.success(), "hub run: {}", stderr(&out));
    assert!(
        done.exists(),
        "the photo was rejected: {}\n{}",
        std::fs::read_to_string(spool.join("rejected/cam-0001.jpg.reason.txt")).unwrap_or_default(),
        stderr(&out)
    );

    assert_orange_accepted_with_its_evidence(dir.path(), cfg);
}

#[test]
fn a_photo_published_on_the_stations_mqtt_topic_becomes_the_lines_evidence() {
    use hub_mqtt::brokers::{Mosquitto, MosquittoOptions};
    use std::io::{BufRead, BufReader};
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let broker =
        Mosquitto::start(&dir.path().join("broker"), &MosquittoOptions::default()).unwrap();
    let topic = "photo-site/cameras/dock/photo";
    let cfg = receiving_site(
        dir.path(),
        &format!(
            "max_file_mb = 1\n[[vision.photo_topics]]\nstation = \"dock\"\ntopic = \"{topic}\""
        ),
        &format!(
            "[device_broker]\nhost = \"127.0.0.1\"\nport = {}\n",
            broker.port()
        ),
    );
    let mut child = Reaped::spawn(
        Command::new(hub_binary())
            .current_dir(workspace_root())
            .env_remove("HUB_ONNXRUNTIME_LIB")
            .args(["run", "--config", &cfg])
            .stderr(Stdio::piped()),
    );
    // The hub's log, read as it is written.
    let log = Arc::new(Mutex::new(String::new()));
    let reader = {
        let log = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        })
    };
    // Waits until the log holds `times` lines containing `what`.
    let wait_log_n = |what: &str, times: usize, within: Duration| {
        let deadline = Instant::now() + within;
        while log.lock().unwrap().matches(what).count() < times {
            assert!(
                Instant::now() < deadline,
                "the hub never logged '{what}' {times} times:\n{}",
                log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let wait_log = |what: &str, within: Duration| wait_log_n(what, 1, within);
    wait_log("photo topics subscribed", Duration::from_secs(60));

    let mut options = rumqttc::MqttOptions::new("dock-camera", "127.0.0.1", broker.port());
    options.set_max_packet_size(4 << 20, 4 << 20);
    let (client, mut connection) = rumqttc::Client::new(options, 8);
    let network = std::thread::spawn(move || {
        for event in connection.iter() {
            if matches!(event, Err(rumqttc::ConnectionError::RequestsDone)) || event.is_err() {
                break;
            }
        }
    });
    let publish = |payload: Vec<u8>| {
        client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
            .unwrap();
    };
    // Garbage first: refused with a reason, nothing recorded, the task goes on.
    publish(b"this is not a photo".to_vec());
    wait_log("photo from MQTT not recorded", Duration::from_secs(60));
    // Larger than vision.max_file_mb: refused by the hub's client; it reconnects by itself.
    publish(vec![0xFF; 2 << 20]);
    wait_log("payload size limit exceeded", Duration::from_secs(60));
    wait_log_n("photo topics subscribed", 2, Duration::from_secs(60));
    // The camera's real photo.
    publish(std::fs::read(image("orange.jpg")).unwrap());
    wait_log("photo from MQTT checked", Duration::from_secs(120));
    client.disconnect().unwrap();
    network.join().unwrap();

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success(), "{}", log.lock().unwrap());
    reader.join().unwrap();
    assert_orange_accepted_with_its_evidence(dir.path(), &cfg);
    drop(broker);
}

#[test]
fn receive_photo_without_a_rule_for_the_sku_holds_for_review() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hub.toml");
    std::fs::write(
        &config,
        "[site]\nid = \"photo-site\"\n[store]\ndata_dir = \"data\"\n[[stations]]\nid = \"dock\"\nkind = \"receiving\"\n[vision]\nbackend = \"tract\"\n",
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let skus = dir.path().join("skus.json");
    std::fs::write(
        &skus,
        json!([{
            "code": "KIWI", "name": "Kiwi fruit", "unit": "piece", "gtins": [],
            "allow_negative": false, "check_items_at_handover": false, "version": 1
        }])
        .to_string(),
    )
    .unwrap();
    run_ok(&["sku", "import", skus.to_str().unwrap(), "--config", cfg]);
    let manifest = dir.path().join("manifest.json");
    std::fs::write(
        &manifest,
        json!({
            "delivery_id": "D951", "supplier": "Sunny Orchards", "version": 1,
            "lines": [{"line_no": 1, "sku": "KIWI", "lot": "K-1", "expiry": "2030-01-31",
                       "expected_count": 3}]
        })
        .to_string(),
    )
    .unwrap();
    run_ok(&[
        "receive",
        "manifest",
        manifest.to_str().unwrap(),
        "--config",
        cfg,
    ]);
    run_ok(&[
        "receive",
        "scan",
        "--station",
        "dock",
        "D951/1",
        "--config",
        cfg,
    ]);
    let photo = image("orange.jpg");
    let out = run_ok(&[
        "receive",
        "photo",
        "--station",
        "dock",
        photo.to_str().unwrap(),
        "--config",
        cfg,
        "--json",
    ]);
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["evidence"]["verdict"], "needs_review", "{json}");
    assert!(
        json["evidence"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("no vision rule for SKU KIWI"),
        "{json}"
    );
    assert_eq!(json["selected"]["delivery_id"], "D951");
}

/// The figures `hub bench vision --json` must always hold, each a positive number.
const BENCH_FIGURES: [&str; 10] = [
    "py_draft_1080p_ms",
    "hub_1080p_ms",
    "py_draft_12mp_ms",
    "hub_12mp_ms",
    "py_plain_1080p_ms",
    "py_plain_12mp_ms",
    "ort_infer_ms",
    "hub_infer_ms",
    "tract_infer_ms",
    "rss_mb_model_loaded",
];

fn run_bench(dir: &Path, extra: &[&str]) -> (Option<i32>, Value, String) {
    let json_path = dir.join("bench.json");
    let mut args = vec!["bench", "vision", "--reps", "1", "--json"];
    args.push(json_path.to_str().unwrap());
    args.extend_from_slice(extra);
    let out = hub_in_root(&args, &[]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    let json = std::fs::read(&json_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| panic!("hub bench vision wrote no JSON: {text}"));
    (out.status.code(), json, text)
}

fn assert_camera_photo_set(json: &Value, text: &str) {
    let photos = json["photos"].as_array().expect("photos");
    for size in ["1080p", "12mp"] {
        let names: Vec<&str> = photos
            .iter()
            .filter(|p| p["size"] == size)
            .filter_map(|p| p["name"].as_str())
            .collect();
        for want in [
            "camera-420",
            "camera-422",
            "camera-420-rotated",
            "camera-420-restart",
            "camera-420-progressive",
        ] {
            assert!(names.contains(&want), "{size} lacks {want}: {text}");
        }
    }
    for p in photos {
        assert!(p["hub_ms"].as_f64().unwrap_or(0.0) > 0.0, "{p}");
    }
}

#[test]
fn bench_vision_measures_the_hub_and_the_python_baseline() {
    // Reps 1: it proves the command works end to end (venv, photos, both sides, tract child,
    // JSON); its ratios are not judged here, so exit 0 (targets met) and 4 (missed) both do.
    let dir = tempfile::tempdir().unwrap();
    let (code, json, text) = run_bench(dir.path(), &[]);
    assert!(
        matches!(code, Some(0 | 4)),
        "exit {code:?} (0 or 4 expected): {text}"
    );
    for key in BENCH_FIGURES {
        let v = json[key].as_f64();
        assert!(v.is_some_and(|v| v > 0.0), "{key} = {}: {text}", json[key]);
    }
    assert!(json["baseline_error"].is_null(), "{text}");
    assert_camera_photo_set(&json, &text);
    for p in json["photos"].as_array().unwrap() {
        assert!(p["py_draft_ms"].as_f64().unwrap_or(0.0) > 0.0, "{p}");
    }
    assert!(text.contains("target <= 0.8x"), "{text}");
}

#[test]
fn bench_vision_without_the_baseline_says_so_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (code, json, text) = run_bench(dir.path(), &["--skip-python"]);
    assert_eq!(code, Some(1), "not judged is never a pass: {text}");
    assert!(text.contains("baseline not measured"), "{text}");
    assert!(json["py_draft_1080p_ms"].is_null(), "{json}");
    assert!(json["targets_met"].is_null(), "{json}");
    assert!(json["hub_1080p_ms"].as_f64().is_some_and(|v| v > 0.0));
    assert_camera_photo_set(&json, &text);
}

#[test]
fn bench_vision_with_a_python_that_fails_is_not_a_pass() {
    // The interpreter exits at once: the baseline cannot be measured, which is exit 1 with
    // the reason, never "targets not judged" and exit 0.
    let dir = tempfile::tempdir().unwrap();
    let (code, json, text) = run_bench(dir.path(), &["--python", "/bin/false"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("baseline not measured"), "{text}");
    assert!(text.contains("the Python pipeline stopped"), "{text}");
    assert!(json["baseline_error"].is_string(), "{json}");
    assert!(json["targets_met"].is_null(), "{json}");
}

/// One HTTP/1.1 request from the station app's own origin; returns the status, the head and
/// the body.
fn app_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the hub");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// The `name=value` of the cookie `name` a response sets.
fn cookie_of(head: &str, name: &str) -> String {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, v)| {
            let pair = v.trim().split(';').next()?;
            pair.starts_with(&format!("{name}="))
                .then(|| pair.to_owned())
        })
        .unwrap_or_else(|| panic!("no {name} cookie in {head}"))
}

/// The photos kept in the evidence folder.
fn kept_photos(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir.join("data/evidence"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_photo_taken_with_the_receiving_tablet_is_checked_and_bad_uploads_are_refused_and_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = receiving_site(dir.path(), "", "");
    let cfg = cfg.as_str();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = std::fs::read_to_string(cfg).unwrap();
    std::fs::write(
        cfg,
        text.replace("127.0.0.1:0", &format!("127.0.0.1:{port}")),
    )
    .unwrap();
    let added = hub_in_root(
        &[
            "staff",
            "add",
            "li",
            "--name",
            "李小红",
            "--role",
            "clerk",
            "--config",
            cfg,
        ],
        &[("HUB_STAFF_PIN", "2468")],
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let paired = run_ok(&["station", "pair", "dock", "--config", cfg]);
    let code: String = paired
        .split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 8)
        .expect("an 8-digit pairing code")
        .to_owned();

    let child = Reaped::spawn(
        Command::new(hub_binary())
            .current_dir(workspace_root())
            .env_remove("HUB_ONNXRUNTIME_LIB")
            .args(["run", "--config", cfg])
            .stderr(Stdio::null()),
    );
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "hub run never served its page");
        std::thread::sleep(Duration::from_millis(100));
    }
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let (status, head, _) = app_request(
        &addr,
        "POST",
        "/station/pair",
        &form,
        format!("code={code}").as_bytes(),
    );
    assert_eq!(status, 303, "{head}");
    let device = cookie_of(&head, "hub_device");
    let with_device = [form[0], ("Cookie", device.as_str())];
    let (status, head, _) = app_request(
        &addr,
        "POST",
        "/station/signin",
        &with_device,
        b"staff=li&pin=2468",
    );
    assert_eq!(status, 303, "{head}");
    let cookies = format!("{device}; {}", cookie_of(&head, "hub_session"));
    let (status, _, page) = app_request(&addr, "GET", "/station", &[("Cookie", &cookies)], b"");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("data-photo-upload"),
        "the selected line offers the camera: {page}"
    );
    let csrf = page
        .split("name=\"csrf\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page's CSRF token")
        .to_owned();
    let upload = |body: &[u8], csrf: &str| {
        app_request(
            &addr,
            "POST",
            "/station/receiving/photo",
            &[
                ("Cookie", &cookies),
                ("X-CSRF-Token", csrf),
                ("Content-Type", "image/jpeg"),
            ],
            body,
        )
    };

    // Without the CSRF token: refused before anything is read.
    let (status, _, _) = upload(b"\xff\xd8\xff", "wrong");
    assert_eq!(status, 403);
    // Not a photo: refused in the clerk's words, nothing kept.
    let (status, _, answer) = upload(b"GIF89a this is no camera photo", &csrf);
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("这不是照片"), "{answer}");
    assert!(kept_photos(dir.path()).is_empty());
    // A decompression bomb: orange.jpg whose header claims 65000 × 65000 pixels.
    let mut bomb = std::fs::read(image("orange.jpg")).unwrap();
    let sof = bomb
        .windows(2)
        .position(|w| w[0] == 0xFF && (w[1] == 0xC0 || w[1] == 0xC2))
        .expect("a frame header");
    bomb[sof + 5..sof + 9].copy_from_slice(&[0xFD, 0xE8, 0xFD, 0xE8]);
    let (_, _, answer) = upload(&bomb, &csrf);
    assert!(answer.contains("照片尺寸异常"), "{answer}");
    assert!(
        kept_photos(dir.path()).is_empty(),
        "{:?}",
        kept_photos(dir.path())
    );

    // The real photo: checked by the model, kept, and on the line.
    let (status, _, answer) = upload(&std::fs::read(image("orange.jpg")).unwrap(), &csrf);
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("照片已检查"), "{answer}");
    let sha = sha256_of(&image("orange.jpg"));
    assert_eq!(kept_photos(dir.path()), vec![format!("{sha}.jpg")]);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.into_inner().wait_with_output().unwrap();
    assert!(out.status.success(), "hub run stops cleanly");
    assert_orange_accepted_with_its_evidence(dir.path(), cfg);
}

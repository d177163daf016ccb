//! A hub whose data directory sits on a nearly full device warns at start-up, raises the
//! `disk_nearly_full` alert and shows it on the status page. The device is a small tmpfs
//! (the suite runs as root, as CI does).

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tests::{Reaped, http_get, hub_binary};

struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount(8): this test needs root to mount a small tmpfs");
        assert!(status.success(), "mounting a tmpfs failed: run as root");
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

#[test]
fn a_nearly_full_data_device_is_warned_about_and_shown_as_an_alert() {
    let fs = Tmpfs::mount("48m");
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "[site]\nid = \"small-card\"\n[store]\ndata_dir = \"{}\"\n[status]\nlisten = \"127.0.0.1:0\"\n",
            fs.0.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = Reaped::spawn(
        Command::new(hub_binary())
            .args(["run", "--log-format", "json", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
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
    let mut logs: Vec<serde_json::Value> = Vec::new();
    let mut url = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while url.is_none() && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200))
            && let Ok(json) = serde_json::from_str::<serde_json::Value>(&line)
        {
            if json["message"] == "status page served" {
                url = json["url"].as_str().map(str::to_owned);
            }
            logs.push(json);
        }
    }
    let url = url.unwrap_or_else(|| panic!("no status page URL in {logs:?}"));
    let addr = url.trim_start_matches("http://").trim_end_matches('/');

    let warned = logs.iter().any(|l| {
        l["level"] == "WARN"
            && l["message"]
                .as_str()
                .is_some_and(|m| m.contains("nearly full"))
    });
    assert!(warned, "no start-up warning about free space: {logs:?}");

    // The alert is raised by the running hub; give it a moment to commit.
    let mut status = serde_json::Value::Null;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let (code, body) = http_get(addr, "/status.json", &[]);
        assert_eq!(code, 200);
        status = serde_json::from_str(&body).unwrap();
        if status["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "disk_nearly_full")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let alert = status["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "disk_nearly_full")
        .unwrap_or_else(|| panic!("no disk_nearly_full alert in {status}"));
    assert_eq!(alert["tier"], "red", "{alert}");
    assert!(status["storage"]["available_bytes"].as_u64().unwrap() < 48 << 20);
    let (_, metrics) = http_get(addr, "/metrics", &[]);
    assert!(
        metrics.contains("hub_data_dir_available_bytes "),
        "{metrics}"
    );

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

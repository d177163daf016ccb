//! `hub run` under a service manager: READY=1 once it runs, WATCHDOG=1 while healthy,
//! STOPPING=1 on SIGTERM — checked on a notify socket this test owns, as systemd would see it.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tests::{Reaped, hub_binary};

#[test]
fn the_daemon_reports_ready_feeds_the_watchdog_and_reports_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hub.toml");
    std::fs::write(
        &config,
        // No disk alert, whatever this machine's disk: the status line counts exactly the
        // events the test expects (none).
        "[site]\nid = \"notify-site\"\n[store]\ndata_dir = \"data\"\nmin_free_percent = 0\nmin_free_mb = 0\n[status]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();

    // WATCHDOG_PID must be the hub's own pid, as systemd sets it: `exec` keeps the shell's pid.
    let mut child = Reaped::spawn(
        Command::new("sh")
            .args([
                "-c",
                "WATCHDOG_PID=$$ exec \"$0\" run --config \"$1\"",
                hub_binary().to_str().unwrap(),
                config.to_str().unwrap(),
            ])
            .env("NOTIFY_SOCKET", &socket_path)
            .env("WATCHDOG_USEC", "400000")
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );

    let mut messages: Vec<String> = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stop_sent = false;
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        let pings = messages
            .iter()
            .filter(|m| m.lines().any(|l| l == "WATCHDOG=1"))
            .count();
        if !stop_sent && pings >= 3 {
            Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            stop_sent = true;
        }
        if messages
            .iter()
            .any(|m| m.lines().any(|l| l == "STOPPING=1"))
        {
            break;
        }
    }
    let status = child.wait().unwrap();
    let log = {
        use std::io::Read;
        let mut s = String::new();
        child.stderr.take().unwrap().read_to_string(&mut s).unwrap();
        s
    };
    assert!(status.success(), "hub run failed: {log}");

    let first = |needle: &str| {
        messages
            .iter()
            .position(|m| m.lines().any(|l| l == needle))
            .unwrap_or_else(|| panic!("{needle} never sent; got {messages:?}\n{log}"))
    };
    let ready = first("READY=1");
    let watchdog = first("WATCHDOG=1");
    let stopping = first("STOPPING=1");
    assert!(ready < watchdog && watchdog < stopping, "{messages:?}");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("STATUS=running; 0 events waiting")),
        "{messages:?}"
    );
}

#[test]
fn the_watchdog_is_not_fed_while_the_store_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hub.toml");
    std::fs::write(
        &config,
        "[site]\nid = \"stall-site\"\n[store]\ndata_dir = \"data\"\n[status]\nenabled = false\n",
    )
    .unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut child = Reaped::spawn(
        Command::new("sh")
            .args([
                "-c",
                "WATCHDOG_PID=$$ exec \"$0\" run --config \"$1\"",
                hub_binary().to_str().unwrap(),
                config.to_str().unwrap(),
            ])
            .env("NOTIFY_SOCKET", &socket_path)
            .env("WATCHDOG_USEC", "400000")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let mut buf = [0u8; 4096];
    // Receives until `until` holds for a message, or 30 s pass; returns what arrived.
    let mut receive_until = |until: &dyn Fn(&str) -> bool| -> Vec<String> {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(n) = socket.recv(&mut buf) {
                let m = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = until(&m);
                got.push(m);
                if done {
                    return got;
                }
            }
        }
        panic!(
            "no such message within 30 s; {} received, the last: {:?}",
            got.len(),
            &got[got.len().saturating_sub(5)..]
        );
    };
    let is_ping = |m: &str| m.lines().any(|l| l == "WATCHDOG=1");
    let is_unhealthy = |m: &str| m.contains("STATUS=unhealthy");
    receive_until(&is_ping);

    // Another process takes the database's write lock: the hub's writer cannot commit.
    let db = dir.path().join("data/hub-stall-site.sqlite");
    let blocker = rusqlite::Connection::open(&db).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let before_stall = receive_until(&is_unhealthy);
    // From the first "unhealthy" on, while the lock is held: no ping, only more "unhealthy".
    let mut stalled = Vec::new();
    for _ in 0..3 {
        stalled.extend(receive_until(&is_unhealthy));
    }
    assert!(
        !stalled.iter().any(|m| is_ping(m)),
        "the watchdog was fed while the store could not write: {stalled:?}"
    );
    assert!(
        before_stall
            .iter()
            .chain(&stalled)
            .any(|m| m.contains("did not answer") || m.contains("locked") || m.contains("busy")),
        "the status says why: {stalled:?}"
    );
    // Once the lock is gone the hub is fed again.
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);
    receive_until(&is_ping);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

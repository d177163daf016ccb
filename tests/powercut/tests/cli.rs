//! The `powercut` binary as a script uses it: `sdcard` runs a command on a card and returns its
//! exit code; `mount` serves a control socket that `ctl` drives; both unmount when done.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

const POWERCUT: &str = env!("CARGO_BIN_EXE_powercut");

fn is_mounted(path: &Path) -> bool {
    let needle = format!(" {} ", path.display());
    fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|l| l.contains(&needle))
}

#[test]
fn sdcard_runs_the_command_on_the_mount_and_returns_its_exit_code() {
    let out = Command::new(POWERCUT)
        .args(["sdcard", "--fsync-ms", "2", "--"])
        .args([
            "sh",
            "-c",
            // Exit 7 only if `{}` became a power-cut mount we can write on and fsync.
            r#"grep -q "^powercut {} fuse" /proc/mounts && dd if=/dev/zero of={}/f bs=1 count=1 conv=fsync 2>/dev/null && echo "{}" && exit 7"#,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "stderr: {stderr}");
    let mountpoint = String::from_utf8(out.stdout).unwrap();
    let mountpoint = Path::new(mountpoint.trim());
    assert!(mountpoint.is_absolute() && !mountpoint.as_os_str().is_empty());
    assert!(!is_mounted(mountpoint), "unmounted after the command");
    assert!(!mountpoint.exists(), "temporary mount point removed");
    assert!(
        stderr.contains("1 fsyncs"),
        "counters are reported: {stderr}"
    );
}

#[test]
fn sdcard_reports_a_missing_command_as_127() {
    let out = Command::new(POWERCUT)
        .args(["sdcard", "-q", "--", "/nonexistent/command", "{}"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot run /nonexistent/command"));
}

fn ctl(socket: &Path, command: &[&str]) -> String {
    let out = Command::new(POWERCUT)
        .arg("ctl")
        .arg(socket)
        .args(command)
        .output()
        .unwrap();
    let reply = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "ctl {command:?}: {reply}");
    reply.trim().to_owned()
}

#[test]
fn mount_is_driven_through_its_control_socket_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let card = dir.path().join("card");
    fs::create_dir(&card).unwrap();
    let socket = dir.path().join("control.sock");
    let mut server = Command::new(POWERCUT)
        .arg("mount")
        .arg(&card)
        .arg("--control")
        .arg(&socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert!(ready.contains(&socket.display().to_string()), "{ready}");

    fs::write(card.join("unsynced"), b"x").unwrap();
    let report: serde_json::Value = serde_json::from_str(&ctl(&socket, &["cut"])).unwrap();
    assert_eq!(report["nodes_dropped"], 1, "{report}");
    assert!(!card.join("unsynced").exists());

    assert_eq!(ctl(&socket, &["fail-fsync", "1"]), "ok");
    let f = fs::File::create(card.join("f")).unwrap();
    assert_eq!(f.sync_all().unwrap_err().raw_os_error(), Some(5), "EIO");
    drop(f);
    let counters: serde_json::Value = serde_json::from_str(&ctl(&socket, &["counters"])).unwrap();
    assert_eq!(counters["fsyncs"], 1);
    assert_eq!(counters["failed_syncs"], 1);
    assert_eq!(counters["cuts"], 1);

    let bad = Command::new(POWERCUT)
        .arg("ctl")
        .arg(&socket)
        .arg("reboot")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stdout).starts_with("error: unknown command"));

    rustix::process::kill_process(
        rustix::process::Pid::from_raw(server.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let status = server.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!is_mounted(&card));
    assert!(!socket.exists(), "socket removed");
}

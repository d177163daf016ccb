//! Helpers shared by the end-to-end tests: find the `hub` binary and run it like a user would.

pub mod browser;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root (where `config/` and `models/` live).
pub fn workspace_root() -> PathBuf {
    // Cargo sets CARGO_MANIFEST_DIR when it runs a test too: prefer the checkout the test runs
    // from over the one it was compiled in (a test binary may be run from another checkout).
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("tests/ sits in the workspace")
        .to_owned()
}

/// The `hub` binary built by cargo for this test run.
pub fn hub_binary() -> PathBuf {
    // Integration tests of this crate do not get CARGO_BIN_EXE_hub (the binary lives in another
    // package), so look next to the test executable: target/<profile>/hub.
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let hub = profile_dir.join("hub");
    assert!(
        hub.exists(),
        "{} not found: build it first with `cargo build -p hub`",
        hub.display()
    );
    hub
}

/// Runs `hub` with arguments and returns its output.
pub fn hub(args: &[&str]) -> Output {
    Command::new(hub_binary())
        .args(args)
        .output()
        .expect("run hub")
}

/// Stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A child process that is killed and reaped if the test ends before it waited for the child
/// (a failed assertion included), so no `hub run` outlives its test. Derefs to the `Child`.
pub struct Reaped(Option<std::process::Child>);

impl Reaped {
    /// Spawns `command`; panics with the program name if it cannot start.
    pub fn spawn(command: &mut Command) -> Reaped {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", command.get_program()));
        Reaped(Some(child))
    }

    /// Hands the child over (for `wait_with_output`); the caller reaps it from then on.
    pub fn into_inner(mut self) -> std::process::Child {
        self.0.take().expect("the child is only taken once")
    }
}

impl std::ops::Deref for Reaped {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        self.0.as_ref().expect("the child is only taken once")
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0.as_mut().expect("the child is only taken once")
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut()
            && matches!(child.try_wait(), Ok(None))
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A child process's log file whose tail is printed when the test fails, so a failure in a
/// browser test shows what the hub said at the time (its stderr is otherwise not shown).
pub struct LogOnFailure(std::path::PathBuf);

impl LogOnFailure {
    /// Creates the file; give the returned `Stdio` to the child's stderr.
    pub fn create(path: &std::path::Path) -> (LogOnFailure, std::process::Stdio) {
        let file = std::fs::File::create(path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        (
            LogOnFailure(path.to_owned()),
            std::process::Stdio::from(file),
        )
    }
}

impl Drop for LogOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.0).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(60)..].join("\n");
            eprintln!("--- last lines of {} ---\n{tail}", self.0.display());
        }
    }
}

/// A `hub demo --keep-running` process serving its status page; stopped (SIGTERM) on drop.
pub struct DemoHub {
    child: std::process::Child,
    /// The status page URL the demo printed, e.g. `http://127.0.0.1:41234/`.
    pub url: String,
    /// The address part of `url`, e.g. `127.0.0.1:41234`.
    pub addr: String,
}

impl DemoHub {
    /// Starts the demo with extra arguments and environment, and waits (up to 60 s) until it
    /// prints its status page URL.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> DemoHub {
        use std::io::BufRead;
        let mut child = Command::new(hub_binary())
            .args(["demo", "--keep-running"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start hub demo");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(url) = line.strip_prefix("status page: ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let url = match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("hub demo did not print its status page URL within 60 s");
            }
        };
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        DemoHub { child, url, addr }
    }
}

impl Drop for DemoHub {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET; returns the status code and the body. `headers` are extra lines such
/// as `("Authorization", "Bearer …")`.
pub fn http_get(addr: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the status page");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

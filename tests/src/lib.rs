//! Helpers shared by the end-to-end tests: find the `hub` binary and run it like a user would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root (where `config/` and `models/` live).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
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

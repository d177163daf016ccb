//! Running the `hub` binary as staff would: one CLI command per step, with the site's config,
//! either to the end or killed at a chosen moment (the power cut takes the process first).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How one CLI command ended.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The exit code; `None` when a signal (our kill) ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Answer {
    /// The caller heard "ok": exit 0, with its output.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// The command answered (any exit code), i.e. it was not killed.
    pub fn answered(&self) -> bool {
        self.code.is_some()
    }

    /// Both outputs, for messages.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// The hub binary, the config it runs with and how its children are started.
pub struct Hub {
    pub binary: PathBuf,
    pub config: PathBuf,
    pub workdir: Option<PathBuf>,
    /// Extra environment (the negative control's switch).
    pub env: Vec<(String, String)>,
}

impl Hub {
    /// `hub ARGS --config CONFIG` with the harness's environment, outputs piped.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1");
        for (k, v) in &self.env {
            command.env(k, v);
        }
        if let Some(dir) = &self.workdir {
            command.current_dir(dir);
        }
        command
    }

    /// Runs `hub ARGS --config CONFIG` to its end.
    pub fn run(&self, args: &[&str]) -> anyhow::Result<Answer> {
        self.run_killed_after(args, None)
    }

    /// Runs `hub ARGS --config CONFIG`, and SIGKILLs it `kill_after` after it started unless
    /// it ended before. The outputs are read after it ended (they are small: the pipes hold
    /// them).
    pub fn run_killed_after(
        &self,
        args: &[&str],
        kill_after: Option<Duration>,
    ) -> anyhow::Result<Answer> {
        let started = Instant::now();
        let mut child = self
            .command(args)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", self.binary.display()))?;
        if let Some(after) = kill_after {
            let deadline = started + after;
            loop {
                if child.try_wait()?.is_some() {
                    break;
                }
                let now = Instant::now();
                if now >= deadline {
                    // The process may end between the check and the kill: then `wait` below
                    // reports its own exit status and it counts as answered.
                    let _ = child.kill();
                    break;
                }
                std::thread::sleep((deadline - now).min(Duration::from_micros(500)));
            }
        }
        let out = child.wait_with_output()?;
        Ok(Answer {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            took: started.elapsed(),
        })
    }

    /// Runs a command that must succeed, and returns its stdout.
    pub fn must(&self, args: &[&str]) -> anyhow::Result<String> {
        let answer = self.run(args)?;
        anyhow::ensure!(
            answer.ok(),
            "hub {} failed (exit {:?}): {}",
            args.join(" "),
            answer.code,
            answer.text()
        );
        Ok(answer.stdout)
    }
}

/// The `hub` binary to drive: `--hub`, else `hub` next to this executable (cargo puts both in
/// `target/<profile>/`), else next to its parent folder (a test executable in `deps/`).
pub fn find_hub(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        anyhow::ensure!(path.is_file(), "--hub {} is not a file", path.display());
        return Ok(path.to_owned());
    }
    let exe = std::env::current_exe()?;
    let mut tried = Vec::new();
    for dir in exe.ancestors().skip(1).take(2) {
        let candidate = dir.join("hub");
        if candidate.is_file() {
            return Ok(candidate);
        }
        tried.push(candidate);
    }
    anyhow::bail!(
        "no hub binary found (tried {}); build it with `cargo build -p hub` or pass --hub PATH",
        tried
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

//! `powercut sdcard -- COMMAND ARGS...`: a fresh emulated card in a temporary directory for
//! the life of one command. The card is never cut here; it measures and slows storage. SIGTERM
//! is passed on to the command; SIGINT from a terminal already reaches it (same process group)
//! and is not sent twice. The card is unmounted however the command ends.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitCode;

use clap::Args;
use powercut::PowerCutFs;
use tokio::signal::unix::{SignalKind, signal};

use super::{CardArgs, POWERCUT_FAILED, summary};

/// Arguments of `powercut sdcard`.
#[derive(Debug, Args)]
pub struct SdcardArgs {
    #[command(flatten)]
    card: CardArgs,
    /// Print nothing of powercut's own (mount point, counters)
    #[arg(long, short)]
    quiet: bool,
    /// The command and its arguments; every `{}` in them becomes the mount point
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    command: Vec<OsString>,
}

/// Replaces every `{}` inside `arg` by `mountpoint`.
pub fn substitute(arg: &OsStr, mountpoint: &OsStr) -> OsString {
    let bytes = arg.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"{}") {
            out.extend_from_slice(mountpoint.as_bytes());
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    OsString::from_vec(out)
}

fn failed(message: impl std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("powercut: error: {message}");
    ExitCode::from(code)
}

/// Runs the subcommand.
pub async fn run(args: SdcardArgs) -> ExitCode {
    let options = match args.card.options(5.0) {
        Ok(options) => options,
        Err(e) => return failed(format!("{e:#}"), POWERCUT_FAILED),
    };
    let fs = match PowerCutFs::mount_temp(options) {
        Ok(fs) => fs,
        Err(e) => return failed(e, POWERCUT_FAILED),
    };
    let mountpoint = fs.mountpoint().as_os_str().to_owned();
    let argv: Vec<OsString> = args
        .command
        .iter()
        .map(|a| substitute(a, &mountpoint))
        .collect();
    if !args.quiet {
        eprintln!(
            "powercut: SD card at {} (fsync +{:?}{})",
            fs.mountpoint().display(),
            fs.options().fsync_latency,
            fs.options()
                .write_bandwidth
                .map(|b| format!(", {:.1} MB/s", b as f64 / 1e6))
                .unwrap_or_default()
        );
    }
    let (Ok(mut sigterm), Ok(mut sigint)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return failed("cannot install signal handlers", POWERCUT_FAILED);
    };
    let mut child = match tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            let code = match e.kind() {
                std::io::ErrorKind::NotFound => 127,
                std::io::ErrorKind::PermissionDenied => 126,
                _ => POWERCUT_FAILED,
            };
            return failed(
                format!("cannot run {}: {e}", argv[0].to_string_lossy()),
                code,
            );
        }
    };
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            _ = sigterm.recv() => {
                if let Some(pid) = child.id().and_then(|id| rustix::process::Pid::from_raw(id as i32)) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
                }
            }
            _ = sigint.recv() => {}
        }
    };
    let counters = fs.counters();
    let unmounted = fs.unmount();
    if !args.quiet {
        eprintln!("powercut: {}", summary(&counters));
    }
    if let Err(e) = unmounted {
        return failed(e, POWERCUT_FAILED);
    }
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => ExitCode::from(code.clamp(0, 255) as u8),
            (None, Some(signal)) => ExitCode::from((128 + signal).clamp(0, 255) as u8),
            (None, None) => ExitCode::from(POWERCUT_FAILED),
        },
        Err(e) => failed(
            format!("waiting for the command failed: {e}"),
            POWERCUT_FAILED,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_inside_an_argument_is_replaced() {
        let mp = OsStr::new("/tmp/card");
        assert_eq!(substitute(OsStr::new("{}"), mp), "/tmp/card");
        assert_eq!(
            substitute(OsStr::new("--db={}/a.db:{}"), mp),
            "--db=/tmp/card/a.db:/tmp/card"
        );
        assert_eq!(substitute(OsStr::new("{x}"), mp), "{x}");
    }
}

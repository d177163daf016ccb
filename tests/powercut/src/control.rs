//! The control protocol of `powercut mount`: one text command per connection on a Unix
//! socket, one reply line back, so that a shell script can cut the power and inject faults.
//!
//! Commands: `cut`, `cut --tear [K]`, `fail-fsync N`, `fail-fsyncdir N`, `eio PATTERN`,
//! `eio-fsync PATTERN`, `enospc BYTES`, `clear`, `counters`, `help`. A reply is `ok`, a JSON
//! object (`cut`, `counters`), or a line starting with `error: `. This module parses and runs
//! commands and serves the socket; it does not decide when to cut.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;

use crate::mount::MountedFs;
use crate::options::{Fault, Tear};

/// Help text, also the reply to `help`.
pub const HELP: &str = "commands: cut | cut --tear [K] | fail-fsync N | fail-fsyncdir N | \
eio PATTERN | eio-fsync PATTERN | enospc BYTES | clear | counters | help";

/// A parsed control command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Cut the power; `None`: no tear; `Some(None)`: the mount's tear; `Some(Some(k))`: keep k
    /// blocks.
    Cut {
        /// Whether and how to tear.
        tear: Option<Option<u64>>,
    },
    /// Inject a fault.
    Inject(Fault),
    /// Remove every injected fault.
    Clear,
    /// Print the counters as JSON.
    Counters,
    /// Print the command list.
    Help,
}

fn number<T: std::str::FromStr>(word: Option<&str>, what: &str) -> Result<T, String> {
    let word = word.ok_or_else(|| format!("missing {what}"))?;
    word.parse()
        .map_err(|_| format!("{what} must be a whole number, got {word:?}"))
}

/// Parses one command line.
pub fn parse(line: &str) -> Result<Command, String> {
    let line = line.trim();
    let (verb, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    let mut words = rest.split_whitespace();
    let command = match verb {
        "cut" => match words.next() {
            None => Command::Cut { tear: None },
            Some("--tear") => Command::Cut {
                tear: Some(match words.next() {
                    None => None,
                    Some(k) => Some(number(Some(k), "block count")?),
                }),
            },
            Some(other) => return Err(format!("cut takes only --tear [K], got {other:?}")),
        },
        "fail-fsync" => Command::Inject(Fault::FsyncEio {
            count: number(words.next(), "fsync count")?,
        }),
        "fail-fsyncdir" => Command::Inject(Fault::FsyncDirEio {
            count: number(words.next(), "fsyncdir count")?,
        }),
        "eio" | "eio-fsync" if rest.is_empty() => {
            return Err(format!("{verb} needs a path PATTERN"));
        }
        "eio" => Command::Inject(Fault::WriteEio {
            path_contains: rest.to_owned(),
        }),
        "eio-fsync" => Command::Inject(Fault::FsyncEioOn {
            path_contains: rest.to_owned(),
        }),
        "enospc" => Command::Inject(Fault::Capacity {
            bytes: number(words.next(), "capacity in bytes")?,
        }),
        "clear" => Command::Clear,
        "counters" => Command::Counters,
        "help" => Command::Help,
        "" => return Err(format!("empty command; {HELP}")),
        other => return Err(format!("unknown command {other:?}; {HELP}")),
    };
    let extra = matches!(
        command,
        Command::Inject(
            Fault::FsyncEio { .. } | Fault::FsyncDirEio { .. } | Fault::Capacity { .. }
        ) | Command::Cut { .. }
            | Command::Clear
            | Command::Counters
            | Command::Help
    ) && words.next().is_some();
    if extra {
        return Err(format!("too many arguments in {line:?}; {HELP}"));
    }
    Ok(command)
}

/// Runs a command against `fs`; the reply line (without newline).
pub fn execute(fs: &MountedFs, command: Command) -> Result<String, String> {
    match command {
        Command::Cut { tear } => {
            let tear = match tear {
                None => Tear::None,
                Some(Some(k)) => Tear::Blocks(k),
                Some(None) if fs.options().tear == Tear::None => Tear::Random,
                Some(None) => fs.options().tear,
            };
            let report = fs.cut(tear).map_err(|e| e.to_string())?;
            serde_json::to_string(&report).map_err(|e| e.to_string())
        }
        Command::Inject(fault) => {
            fs.inject(fault);
            Ok("ok".into())
        }
        Command::Clear => {
            fs.clear_faults();
            Ok("ok".into())
        }
        Command::Counters => serde_json::to_string(&fs.counters()).map_err(|e| e.to_string()),
        Command::Help => Ok(HELP.into()),
    }
}

/// Parses and runs one line; the reply, errors as `error: ...`.
pub fn handle_line(fs: &MountedFs, line: &str) -> String {
    match parse(line).and_then(|command| execute(fs, command)) {
        Ok(reply) => reply,
        Err(e) => format!("error: {e}"),
    }
}

/// Serves `listener` until it fails: one command per connection, answered in order.
pub fn serve(fs: Arc<MountedFs>, listener: UnixListener) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                if let Err(e) = answer(&fs, stream) {
                    tracing::warn!(error = %e, "control connection failed");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "control socket failed; no more commands");
                return;
            }
        }
    }
}

fn answer(fs: &MountedFs, stream: UnixStream) -> std::io::Result<()> {
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let reply = handle_line(fs, &line);
    tracing::info!(command = line.trim(), reply = %reply, "control");
    let mut stream = stream;
    writeln!(stream, "{reply}")
}

/// Sends one command to the socket at `socket` and returns the reply line.
pub fn send(socket: &Path, command: &str) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(socket)?;
    writeln!(stream, "{command}")?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply)?;
    Ok(reply.trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command() {
        assert_eq!(parse("cut"), Ok(Command::Cut { tear: None }));
        assert_eq!(parse("cut --tear"), Ok(Command::Cut { tear: Some(None) }));
        assert_eq!(
            parse(" cut --tear 3 \n"),
            Ok(Command::Cut {
                tear: Some(Some(3))
            })
        );
        assert_eq!(
            parse("fail-fsync 2"),
            Ok(Command::Inject(Fault::FsyncEio { count: 2 }))
        );
        assert_eq!(
            parse("eio photos/ x"),
            Ok(Command::Inject(Fault::WriteEio {
                path_contains: "photos/ x".into()
            }))
        );
        assert_eq!(
            parse("enospc 1048576"),
            Ok(Command::Inject(Fault::Capacity { bytes: 1 << 20 }))
        );
        assert_eq!(parse("counters"), Ok(Command::Counters));
    }

    #[test]
    fn rejects_bad_commands_with_a_reason() {
        assert!(parse("cut --tear x").unwrap_err().contains("whole number"));
        assert!(parse("cut now").unwrap_err().contains("--tear"));
        assert!(parse("fail-fsync").unwrap_err().contains("missing"));
        assert!(parse("eio").unwrap_err().contains("PATTERN"));
        assert!(parse("reboot").unwrap_err().contains("unknown command"));
        assert!(parse("counters please").unwrap_err().contains("too many"));
    }
}

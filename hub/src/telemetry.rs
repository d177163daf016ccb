//! Logging set-up: `tracing` with key/value fields, human text or JSON lines.
//!
//! Level policy: ERROR = data may be lost or a person must act; WARN = degraded but coping
//! (uplink down, device offline); INFO = lifecycle and business events; DEBUG = detail.
//!
//! Text logs are coloured only when stderr is a terminal: under systemd they go to the journal,
//! and redirected to a file they must stay plain text.

use crate::config::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG` overrides `level` when set. Logs go to stderr so
/// that command output on stdout stays clean for people and pipes.
pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        ))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}

/// Whether text logs get ANSI colours: only on a terminal, and not when `NO_COLOR` is set.
fn colour(stderr_is_terminal: bool, no_color: bool) -> bool {
    stderr_is_terminal && !no_color
}

#[cfg(test)]
mod tests {
    use super::colour;

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(colour(true, false));
        assert!(!colour(false, false), "journal or file: plain text");
        assert!(!colour(true, true), "NO_COLOR is honoured");
    }
}

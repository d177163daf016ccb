//! Logging set-up: `tracing` with key/value fields, human text or JSON lines.
//!
//! Level policy: ERROR = data may be lost or a person must act; WARN = degraded but coping
//! (uplink down, device offline); INFO = lifecycle and business events; DEBUG = detail.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG` overrides `level` when set. Logs go to stderr so
/// that command output on stdout stays clean for people and pipes.
pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}

//! `[status]`: the on-site status page.

use super::problems::{Problems, int_in};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The on-site status page (`hub::status`).
#[derive(Clone)]
pub struct StatusConfig {
    /// Whether `hub run` serves the page at all.
    pub enabled: bool,
    /// Address the page is served on; loopback unless a LAN address is chosen explicitly.
    pub listen: std::net::SocketAddr,
    /// Bearer token every request must carry; always set when `listen` is not loopback.
    pub token: Option<String>,
    /// How often the HTML page reloads itself.
    pub refresh: Duration,
    /// Serve over TLS with this certificate and key (PEM), e.g. for tablets on the LAN.
    pub tls: Option<StatusTls>,
}

/// The status page's certificate chain and private key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl fmt::Debug for StatusConfig {
    // The token is a secret: never print it, not even in debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusConfig")
            .field("enabled", &self.enabled)
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("refresh", &self.refresh)
            .field("tls", &self.tls)
            .finish()
    }
}

impl Default for StatusConfig {
    fn default() -> Self {
        StatusConfig {
            enabled: true,
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: None,
            refresh: Duration::from_secs(10),
            tls: None,
        }
    }
}

/// Shortest status token accepted: long enough that guessing it over a LAN is hopeless.
pub const MIN_STATUS_TOKEN_LEN: usize = 16;

/// Checks a status-page token: at least [`MIN_STATUS_TOKEN_LEN`] URL-safe characters, so it can
/// sit in a bookmark (`?token=`) without escaping.
pub fn check_status_token(token: &str) -> Result<(), BadStatusToken> {
    if token.len() < MIN_STATUS_TOKEN_LEN {
        return Err(BadStatusToken::TooShort(token.len()));
    }
    if let Some(c) = token
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._~".contains(*c)))
    {
        return Err(BadStatusToken::Character(c));
    }
    Ok(())
}

/// Why a status-page token is refused (the message follows the key's name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadStatusToken {
    #[error(
        "is too short ({0} characters); use at least {MIN_STATUS_TOKEN_LEN}, e.g. from `openssl rand -hex 16`"
    )]
    TooShort(usize),
    #[error("contains {0:?}; use letters, digits and - . _ ~ only")]
    Character(char),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStatus {
    enabled: Option<bool>,
    listen: Option<String>,
    token: Option<String>,
    refresh_seconds: Option<i64>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
}

pub(super) fn validate_status(
    raw: RawStatus,
    base_dir: &Path,
    problems: &mut Problems,
) -> StatusConfig {
    let defaults = StatusConfig::default();
    let listen = match raw.listen.as_deref() {
        None => defaults.listen,
        Some(text) => match text.parse::<std::net::SocketAddr>() {
            Ok(addr) => addr,
            Err(_) => {
                problems.push(
                    "status.listen",
                    format!(
                        "'{text}' is not an address:port; e.g. \"127.0.0.1:8080\" or \"192.168.1.20:8080\""
                    ),
                );
                defaults.listen
            }
        },
    };
    let token = raw.token.filter(|t| !t.is_empty());
    if let Some(token) = &token
        && let Err(message) = check_status_token(token)
    {
        problems.push("status.token", message.to_string());
    }
    let enabled = raw.enabled.unwrap_or(true);
    if enabled && !listen.ip().is_loopback() && token.is_none() {
        problems.push(
            "status.token",
            format!(
                "required because status.listen ({listen}) is not a loopback address; anyone on the LAN could read the page otherwise"
            ),
        );
    }
    let refresh = int_in(
        raw.refresh_seconds,
        10,
        2,
        3600,
        "status.refresh_seconds",
        problems,
    );
    // Relative paths are read from the config file's folder, like the uplink's TLS files.
    let resolve = |p: PathBuf| if p.is_relative() { base_dir.join(p) } else { p };
    let tls = match (raw.tls_cert_file, raw.tls_key_file) {
        (Some(cert), Some(key)) => Some(StatusTls {
            cert_file: resolve(cert),
            key_file: resolve(key),
        }),
        (None, None) => None,
        (Some(_), None) => {
            problems.push(
                "status.tls_key_file",
                "missing: status.tls_cert_file needs the certificate's private key (PEM) beside it"
                    .to_owned(),
            );
            None
        }
        (None, Some(_)) => {
            problems.push(
                "status.tls_cert_file",
                "missing: status.tls_key_file needs the certificate (PEM) it belongs to".to_owned(),
            );
            None
        }
    };
    StatusConfig {
        enabled,
        listen,
        token,
        refresh: Duration::from_secs(refresh as u64),
        tls,
    }
}

//! Arguments shared by the subcommands (the card's speed and size) and the helpers they use.

pub mod ctl;
pub mod mount;
pub mod run;
pub mod sdcard;

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use powercut::{Counters, MountOptions};

/// Exit code when powercut itself failed (as `env` and `timeout` use it).
pub const POWERCUT_FAILED: u8 = 125;

/// How fast and how big the emulated card is.
#[derive(Debug, Clone, Args)]
pub struct CardArgs {
    /// Milliseconds added to every fsync, fdatasync and fsyncdir [default: 5 for sdcard, 0 for
    /// mount]
    #[arg(long, value_name = "MS")]
    pub fsync_ms: Option<f64>,
    /// Write bandwidth in megabytes (10^6 bytes) per second, charged at fsync time for the
    /// bytes made durable [default: unlimited]
    #[arg(long, value_name = "MB_PER_S")]
    pub write_mbps: Option<f64>,
    /// Card size: writes fail with ENOSPC beyond it (bytes, or with a K, M or G suffix)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub capacity: Option<u64>,
    /// Seed of the random choices (random tears)
    #[arg(long)]
    pub seed: Option<u64>,
}

impl CardArgs {
    /// The mount options these arguments ask for.
    pub fn options(&self, default_fsync_ms: f64) -> anyhow::Result<MountOptions> {
        let fsync_ms = self.fsync_ms.unwrap_or(default_fsync_ms);
        anyhow::ensure!(
            fsync_ms.is_finite() && fsync_ms >= 0.0,
            "--fsync-ms must be a number of milliseconds ≥ 0, got {fsync_ms}"
        );
        let write_bandwidth = match self.write_mbps {
            None => None,
            Some(mbps) if mbps.is_finite() && mbps > 0.0 => Some((mbps * 1e6) as u64),
            Some(mbps) => anyhow::bail!("--write-mbps must be > 0, got {mbps}"),
        };
        Ok(MountOptions {
            fsync_latency: Duration::from_secs_f64(fsync_ms / 1000.0),
            write_bandwidth,
            capacity: self.capacity,
            seed: self.seed,
            ..MountOptions::default()
        })
    }
}

/// Parses `4096`, `64K`, `512M`, `2G` (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last() {
        Some((i, 'k' | 'K')) => (&text[..i], 10),
        Some((i, 'm' | 'M')) => (&text[..i], 20),
        Some((i, 'g' | 'G')) => (&text[..i], 30),
        _ => (text, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("expected a size like 4096, 64K, 512M or 2G, got {text:?}"))
}

/// One line for people: what the card saw.
pub fn summary(c: &Counters) -> String {
    format!(
        "{} fsyncs, {} fdatasyncs, {} fsyncdirs ({} failed); {} bytes written, {} made durable",
        c.fsyncs, c.fdatasyncs, c.fsyncdirs, c.failed_syncs, c.bytes_written, c.bytes_made_durable
    )
}

/// Exit code of `mount`: 0, or 1 after printing the error.
pub fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("powercut: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999G").is_err());
    }
}

//! `hub devices` (device health) and `hub sim …` (simulated scales and scanners).

use super::*;

#[derive(Debug, Subcommand)]
pub(super) enum SimCommand {
    /// A scale running the firmware-shim code over a load-cell model.
    ///
    /// Stdin commands: put <kg>|<g>g, remove, move, still, silent, talk, split <ms>, garbage [n],
    /// partial, overlong [n], send <text with \xNN escapes>, unplug, replug, quit.
    Scale {
        /// mt-sics, toledo8217, mettler-continuous or yaohua-a9.
        #[arg(long)]
        protocol: String,
        /// A stable symlink to the pseudo-terminal, re-created on every replug.
        #[arg(long)]
        link: Option<PathBuf>,
        /// Interval between frames of the continuous protocols, in ms.
        #[arg(long, default_value_t = 100)]
        interval_ms: u32,
    },
    /// A barcode scanner with configurable framing.
    ///
    /// Stdin commands: scan <code>, partial <text>, garbage [n], overlong [n], send <text>,
    /// unplug, replug, quit. Codes may use \xNN escapes (e.g. \x1d for GS).
    Scanner {
        #[arg(long)]
        link: Option<PathBuf>,
        /// cr, lf, crlf, tab or none.
        #[arg(long, default_value = "cr")]
        terminator: String,
        #[arg(long, default_value = "")]
        prefix: String,
        #[arg(long, default_value = "")]
        suffix: String,
    },
}

pub(super) fn devices_command(
    path: &std::path::Path,
    limit: usize,
    json: bool,
    format: Option<LogFormatArg>,
) -> Result<Exit, Failure> {
    let (config, store) = open_site(path, format)?;
    let journal = store.read_blocking(|c| crate::store::device_input::recent(c, limit))?;
    store.close();
    let status_path = crate::devices::status_file(&config.store.data_dir);
    let health: Vec<crate::devices::DeviceHealth> = match std::fs::read(&status_path) {
        Ok(bytes) => hub_contract::devices::decode_device_status(&bytes).unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    if json {
        print_json(&serde_json::json!({"devices": health, "journal": journal}))?;
        return Ok(Exit::Ok);
    }
    if health.is_empty() {
        println!(
            "no device status yet ({} is written by a running hub)",
            status_path.display()
        );
    }
    for h in &health {
        let shown = crate::devices::status_device(h);
        let last = match (&shown.last_reading, h.last_seen_ms) {
            (Some(reading), Some(ms)) => format!(
                "  last {reading} at {}",
                hub_core::Timestamp(ms).to_rfc3339()
            ),
            (Some(reading), None) => format!("  last {reading}"),
            _ => String::new(),
        };
        println!(
            "{:<14} {:<8} {:<8} {:<7} {}{last}  [frames {} garbage {}B/{} overlong {} checksum {} malformed {} reconnects {} applied {} flagged {} refused {}]",
            h.name,
            h.kind,
            h.station,
            if h.online { "online" } else { "OFFLINE" },
            h.detail,
            h.frames,
            h.garbage_bytes,
            h.garbage_frames,
            h.overlong,
            h.checksum_failures,
            h.malformed,
            h.reconnects,
            h.applied,
            h.flagged,
            h.refused
        );
    }
    if !journal.is_empty() {
        println!("\nlatest inputs:");
    }
    for r in &journal {
        let what = match (&r.code, r.grams) {
            (Some(code), _) => code.clone(),
            (None, Some(g)) => format!("{g} g"),
            (None, None) => String::new(),
        };
        println!(
            "  #{:<6} {:<14} {:<7} {:<30} {:<8} {}",
            r.id, r.device, r.kind, what, r.outcome, r.detail
        );
    }
    Ok(Exit::Ok)
}

pub(super) fn sim_command(
    command: SimCommand,
    format: Option<LogFormatArg>,
) -> Result<Exit, Failure> {
    use crate::config::devices::{ScaleProtocol, ScannerFraming, parse_terminator};
    telemetry::init("warn", log_format(format, None));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match command {
        SimCommand::Scale {
            protocol,
            link,
            interval_ms,
        } => {
            let protocol = ScaleProtocol::parse(&protocol).ok_or_else(|| Failure {
                code: Exit::Invalid,
                error: anyhow::anyhow!(
                    "--protocol {protocol}: use one of {}",
                    ScaleProtocol::NAMES.join(", ")
                ),
            })?;
            rt.block_on(crate::tools::sim::run_scale(
                protocol,
                link,
                interval_ms.max(10),
            ))?;
        }
        SimCommand::Scanner {
            link,
            terminator,
            prefix,
            suffix,
        } => {
            let terminator = parse_terminator(&terminator).ok_or_else(|| Failure {
                code: Exit::Invalid,
                error: anyhow::anyhow!("--terminator {terminator}: use cr, lf, crlf, tab or none"),
            })?;
            let framing = ScannerFraming {
                terminator,
                prefix: crate::tools::sim::unescape(&prefix),
                suffix: crate::tools::sim::unescape(&suffix),
            };
            rt.block_on(crate::tools::sim::run_scanner(framing, link))?;
        }
    }
    Ok(Exit::Ok)
}

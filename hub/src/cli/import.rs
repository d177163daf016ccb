//! Import files in the shape of central's commands: `hub receive manifest`,
//! `hub pickup import` and `hub sku import` read exactly the messages documented in
//! `docs/mqtt.md` (`down/commands`: the envelope with `v`, `id`, `site`, `kind`, `key`,
//! `version` and `body`), one per file or a JSON array of them, decoded by the contract crate
//! (`hub_contract::decode_command`, the decoder the MQTT downlink uses) and applied by
//! `commands::apply`, as if central had sent them. Every error in a file is listed at once
//! with its place, and then nothing is applied.
//!
//! A file without any `kind` is an older file of plain records (the shape these commands read
//! before); the caller reads it as it did.

use super::*;
use hub_contract::command::{Command, CommandKind};

/// The commands of `file` if it holds commands (`None`: a file of plain records), each
/// checked to be of `kind`; every problem is listed in the failure.
pub(super) fn read_commands(
    file: &std::path::Path,
    kind: CommandKind,
) -> Result<Option<Vec<Command>>, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    crate::imports::decode_file(&text, kind).map_err(|e| Failure {
        code: Exit::Invalid,
        error: anyhow::anyhow!(
            "{} {e}",
            match e {
                crate::imports::ImportError::NotJson { .. } => format!("{} is", file.display()),
                crate::imports::ImportError::Problems(_) => format!("{} has", file.display()),
            }
        ),
    })
}

/// Applies commands read from a file, as central's would be, in one transaction; prints each
/// outcome. Exit `Refused` when any was refused by the hub's state (a stale version, a closed
/// delivery …): those are recorded and reported upstream like central's.
pub(super) fn apply_commands(
    config: &std::path::Path,
    format: Option<LogFormatArg>,
    commands: Vec<Command>,
) -> Result<Exit, Failure> {
    let (config, store) = open_site(config, format)?;
    let (site, zone, now) = (
        config.site.id.clone(),
        config.site.timezone,
        crate::clock::now(),
    );
    let outcomes = store.write_blocking(move |c| {
        commands
            .into_iter()
            .map(|command| crate::commands::apply(c, &site, zone, Ok(command), now))
            .collect::<Result<Vec<_>, _>>()
    })?;
    store.close();
    let mut refused = false;
    for outcome in &outcomes {
        outcome.log();
        match outcome {
            crate::commands::Applied::Applied {
                command_id,
                changed,
                kind,
                key,
                version,
            } => println!(
                "{command_id}: {kind} {key} version {version} {}",
                if *changed { "applied" } else { "unchanged" }
            ),
            crate::commands::Applied::Duplicate { command_id } => {
                println!("{command_id}: applied before; not applied again")
            }
            crate::commands::Applied::Rejected(r) => {
                refused = true;
                eprintln!(
                    "{}: refused ({}): {}",
                    r.command_id.as_deref().unwrap_or("-"),
                    r.code.as_str(),
                    r.reason
                );
            }
        }
    }
    Ok(if refused { Exit::Refused } else { Exit::Ok })
}

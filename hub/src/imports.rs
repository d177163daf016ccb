//! Import files in the shape of central's commands: exactly the `down/commands` messages of
//! `docs/mqtt.md`, one per file or a JSON array of them, decoded by the contract crate's
//! downlink decoder. Every problem in a file is listed at once, with its place; a caller
//! applies nothing unless there is none. Used by `hub receive manifest`, `hub pickup import`,
//! `hub sku import` and the station app's import page.

use hub_contract::command::{Command, CommandKind};

/// Why a file cannot be imported; nothing from it is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error(
        "not JSON (line {line}, column {column}): {detail}; see docs/mqtt.md for the `{kind}` command"
    )]
    NotJson {
        line: usize,
        column: usize,
        detail: String,
        kind: &'static str,
    },
    #[error("{} error(s); nothing was imported:\n  {}", .0.len(), .0.join("\n  "))]
    Problems(Vec<String>),
}

/// The commands of `text` if it holds commands (`None`: a file of plain records, the older
/// shape some commands still read), each checked to be of `kind`.
pub fn decode_file(text: &str, kind: CommandKind) -> Result<Option<Vec<Command>>, ImportError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ImportError::NotJson {
            line: e.line(),
            column: e.column(),
            detail: e.to_string(),
            kind: kind.as_str(),
        })?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        one => vec![one],
    };
    if !items.iter().any(|i| i.get("kind").is_some()) {
        return Ok(None);
    }
    let mut commands = Vec::with_capacity(items.len());
    let mut problems = Vec::new();
    for (n, item) in items.iter().enumerate() {
        let place = match item.get("id").and_then(|v| v.as_str()) {
            Some(id) => format!("command {} (id {id})", n + 1),
            None => format!("command {}", n + 1),
        };
        let bytes = serde_json::to_vec(item).unwrap_or_default();
        match hub_contract::decode_command(&bytes, usize::MAX) {
            Err(r) => problems.push(format!("{place}: {}", r.reason)),
            Ok(c) if c.kind != kind => problems.push(format!(
                "{place}: a `{}` command; this file must hold `{}` commands",
                c.kind.as_str(),
                kind.as_str()
            )),
            Ok(c) => match &c.body {
                Err(e) => problems.push(format!("{place} ({}): {}", c.key, e.0)),
                Ok(_) => commands.push(c),
            },
        }
    }
    if problems.is_empty() {
        Ok(Some(commands))
    } else {
        Err(ImportError::Problems(problems))
    }
}

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
    #[error("{} error(s); nothing was imported:\n  {}", .0.len(), list(.0))]
    Problems(Vec<Problem>),
}

/// One command of a file that cannot be imported: where it is and what is wrong with it. The
/// English text (`Display`) is the CLI's; the station app words it in the clerk's language
/// with `catalogue::import_problem`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based position of the command in the file.
    pub number: usize,
    /// The command's `id`, when it has one.
    pub id: Option<String>,
    pub what: ProblemKind,
}

/// What is wrong with one command of an import file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// Not a command central could send (envelope fields missing or wrong); the decoder's
    /// reason in English.
    NotACommand { reason: String },
    /// A command of another kind than the file's.
    WrongKind {
        found: &'static str,
        expected: &'static str,
    },
    /// The right kind, but its body does not fit it; the decoder's reason in English.
    BadBody { key: String, reason: String },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.id {
            Some(id) => write!(f, "command {} (id {id})", self.number)?,
            None => write!(f, "command {}", self.number)?,
        }
        match &self.what {
            ProblemKind::NotACommand { reason } => write!(f, ": {reason}"),
            ProblemKind::WrongKind { found, expected } => write!(
                f,
                ": a `{found}` command; this file must hold `{expected}` commands"
            ),
            ProblemKind::BadBody { key, reason } => write!(f, " ({key}): {reason}"),
        }
    }
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("\n  ")
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
        let problem = |what| Problem {
            number: n + 1,
            id: item.get("id").and_then(|v| v.as_str()).map(str::to_owned),
            what,
        };
        let bytes = serde_json::to_vec(item).unwrap_or_default();
        match hub_contract::decode_command(&bytes, usize::MAX) {
            Err(r) => problems.push(problem(ProblemKind::NotACommand { reason: r.reason })),
            Ok(c) if c.kind != kind => problems.push(problem(ProblemKind::WrongKind {
                found: c.kind.as_str(),
                expected: kind.as_str(),
            })),
            Ok(c) => match &c.body {
                Err(e) => problems.push(problem(ProblemKind::BadBody {
                    key: c.key.clone(),
                    reason: e.0.clone(),
                })),
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

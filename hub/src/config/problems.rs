//! Configuration problems and the small parsers every section uses. The bottom of the config
//! module: it knows no section, so every section can use it.

use serde::de::DeserializeOwned;
use std::fmt;
use std::time::Duration;

/// One thing wrong with a configuration file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, e.g. `store.queue_capacity` or `devices[1].port`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Collects every problem found while validating.
#[derive(Debug, Default)]
pub struct Problems(Vec<Problem>);

impl Problems {
    /// Records a problem at a key path.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems found, in file order of discovery.
    pub fn list(&self) -> &[Problem] {
        &self.0
    }

    /// Takes the list out.
    pub fn into_vec(self) -> Vec<Problem> {
        self.0
    }
}

/// Deserialises one top-level section on its own so that its errors carry its name and do not
/// stop the other sections from being checked.
pub fn section<T: DeserializeOwned + Default>(
    table: &toml::Table,
    key: &str,
    problems: &mut Problems,
) -> T {
    match table.get(key) {
        None => T::default(),
        Some(value) => match value.clone().try_into::<T>() {
            Ok(v) => v,
            Err(e) => {
                problems.push(key, e.message().trim().to_owned());
                T::default()
            }
        },
    }
}

/// An integer setting in `min..=max`, or `default` when absent; out of range is a problem.
pub fn int_in(
    value: Option<i64>,
    default: usize,
    min: i64,
    max: i64,
    path: &str,
    problems: &mut Problems,
) -> usize {
    match value {
        None => default,
        Some(v) if (min..=max).contains(&v) => v as usize,
        Some(v) => {
            problems.push(path, format!("{v} is out of range {min}..={max}"));
            default
        }
    }
}

/// A duration in seconds within `range`, or `default` when absent.
pub fn seconds_in(
    value: Option<f64>,
    default: f64,
    range: std::ops::RangeInclusive<f64>,
    path: &str,
    problems: &mut Problems,
) -> Duration {
    match value {
        None => Duration::from_secs_f64(default),
        Some(s) if s.is_finite() && range.contains(&s) => Duration::from_secs_f64(s),
        Some(s) => {
            problems.push(
                path,
                format!("{s} is out of range {}..={}", range.start(), range.end()),
            );
            Duration::from_secs_f64(default)
        }
    }
}

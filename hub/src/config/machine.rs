//! What `hub check-config` checks on this machine (never at load: loading has no side effects).

use super::Config;
use super::problems::Problem;
use std::path::Path;

/// What `hub check-config` finds on this machine about the files and devices a valid config
/// names (loading a config never looks at them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineCheck {
    /// Missing or unreadable TLS and credential files: the uplink cannot connect without them.
    pub problems: Vec<Problem>,
    /// Serial devices not plugged in now, or named by an unstable path: the hub copes.
    pub warnings: Vec<Problem>,
}

/// Stable serial device links: udev's, and the ones the package's rules add.
const STABLE_SERIAL_DIRS: [&str; 2] = ["/dev/serial/by-id/", "/dev/hub/by-id/"];

/// Why a file the config names cannot be used.
#[derive(Debug, thiserror::Error)]
enum FileProblem {
    #[error("{0} is not a file")]
    NotAFile(std::path::PathBuf),
    #[error("cannot read {path}: {source}; check the path and its permissions")]
    Unreadable {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

fn readable_file(path: &Path) -> Result<(), FileProblem> {
    match std::fs::File::open(path).and_then(|f| f.metadata()) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(_) => Err(FileProblem::NotAFile(path.to_owned())),
        Err(source) => Err(FileProblem::Unreadable {
            path: path.to_owned(),
            source,
        }),
    }
}

impl Config {
    /// Checks the files and devices this config names, as they are on this machine now.
    pub fn check_machine(&self) -> MachineCheck {
        let mut check = MachineCheck::default();
        if let Some(u) = &self.uplink {
            for (key, path) in [
                ("uplink.ca_file", &u.connection.ca_file),
                ("uplink.client_cert_file", &u.connection.client_cert_file),
                ("uplink.client_key_file", &u.connection.client_key_file),
                ("uplink.password_file", &u.connection.password_file),
            ] {
                if let Some(path) = path
                    && let Err(message) = readable_file(path)
                {
                    check.problems.push(Problem {
                        path: key.into(),
                        message: message.to_string(),
                    });
                }
            }
        }
        for (i, device) in self.devices.iter().enumerate() {
            let crate::config::devices::DeviceTransport::Serial { path, .. } = &device.transport
            else {
                continue;
            };
            let key = format!("devices[{i}].path");
            let text = path.to_string_lossy();
            if !STABLE_SERIAL_DIRS.iter().any(|dir| text.starts_with(dir)) {
                check.warnings.push(Problem {
                    path: key.clone(),
                    message: format!(
                        "{text} is not a /dev/serial/by-id/... link: ttyUSB/ttyACM numbers change when devices are replugged; use the by-id path (`ls -l /dev/serial/by-id/`)"
                    ),
                });
            }
            if !path.exists() {
                check.warnings.push(Problem {
                    path: key,
                    message: format!(
                        "{text} does not exist now (device unplugged or path mistyped?); the hub keeps trying to open it"
                    ),
                });
            }
        }
        check
    }
}

//! Python baselines for the benchmarks: a virtual environment with the packages a bench
//! compares against, created from PyPI once and kept in a cache folder.
//!
//! Only the bench commands use this (never the daemon): it runs `python3 -m venv` and `pip`,
//! which need network access to PyPI the first time. A venv is named after its package list,
//! so benches that ask for the same packages share one. It is built under a temporary name and
//! renamed into place when pip has finished, so an interrupted install is never taken for a
//! ready venv, and two benches creating the same venv at once both end up with a whole one.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The interpreter a venv is created with (looked up on `PATH`).
pub const BASE_PYTHON: &str = "python3";

/// Written into a venv after pip succeeded; holds the package list, one per line.
const READY_MARKER: &str = "hub-bench-packages.txt";

/// Why a Python baseline could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum VenvError {
    #[error("cannot create the cache folder {path}: {source}")]
    CacheDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run {command}: {source} (is {BASE_PYTHON} installed?)")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error(
        "{command} failed ({status}): {stderr}; it needs network access to PyPI the first time \
         (or give --python with an interpreter that has {packages})"
    )]
    Failed {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
        packages: String,
    },
    #[error("cannot move the new venv into place at {path}: {source}")]
    Rename {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The default cache folder: `$XDG_CACHE_HOME/hub`, else `~/.cache/hub`, else a folder in
/// the system's temporary directory.
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })
        .unwrap_or_else(std::env::temp_dir)
        .join("hub")
}

/// Where the venv for `packages` lives under `cache_dir`.
pub fn venv_dir(cache_dir: &Path, packages: &[&str]) -> PathBuf {
    let mut hash = Sha256::new();
    for p in packages {
        hash.update(p.as_bytes());
        hash.update(b"\n");
    }
    let digest = hex::encode(hash.finalize());
    cache_dir
        .join("python-venvs")
        .join(format!("bench-{}", &digest[..16]))
}

/// The venv's interpreter if the venv is complete for `packages`.
fn ready_python(venv: &Path, packages: &[&str]) -> Option<PathBuf> {
    let python = venv.join("bin/python");
    let marker = std::fs::read_to_string(venv.join(READY_MARKER)).ok()?;
    let listed: Vec<&str> = marker.lines().collect();
    (listed == packages
        && Command::new(&python)
            .args(["-c", "import sys"])
            .output()
            .is_ok_and(|o| o.status.success()))
    .then_some(python)
}

fn run(command: &mut Command, what: &str, packages: &[&str]) -> Result<(), VenvError> {
    let out = command.output().map_err(|source| VenvError::Spawn {
        command: what.to_owned(),
        source,
    })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .rev()
        .take(4)
        .collect();
    Err(VenvError::Failed {
        command: what.to_owned(),
        status: out.status,
        stderr: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
        packages: packages.join(" "),
    })
}

/// Returns the interpreter of a venv under `cache_dir` that has `packages` (pip requirement
/// specifiers, e.g. `onnxruntime==1.31.1`), creating it with [`BASE_PYTHON`] and pip on first
/// use. Later calls with the same packages reuse it without touching the network.
pub fn ensure_venv(cache_dir: &Path, packages: &[&str]) -> Result<PathBuf, VenvError> {
    let venv = venv_dir(cache_dir, packages);
    if let Some(python) = ready_python(&venv, packages) {
        return Ok(python);
    }
    let parent = venv.parent().unwrap_or(cache_dir);
    std::fs::create_dir_all(parent).map_err(|source| VenvError::CacheDir {
        path: parent.to_owned(),
        source,
    })?;
    let building = venv.with_extension(format!("building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    let result = (|| {
        run(
            Command::new(BASE_PYTHON)
                .args(["-m", "venv"])
                .arg(&building),
            &format!("{BASE_PYTHON} -m venv {}", building.display()),
            packages,
        )?;
        run(
            Command::new(building.join("bin/python"))
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(packages),
            &format!("pip install {}", packages.join(" ")),
            packages,
        )?;
        std::fs::write(
            building.join(READY_MARKER),
            packages
                .iter()
                .map(|p| format!("{p}\n"))
                .collect::<String>(),
        )
        .map_err(|source| VenvError::CacheDir {
            path: building.clone(),
            source,
        })
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&building);
        return Err(e);
    }
    // An incomplete venv left by an interrupted run is replaced; a complete one made by a
    // concurrent run is kept and ours dropped.
    if ready_python(&venv, packages).is_none() {
        let _ = std::fs::remove_dir_all(&venv);
        if let Err(source) = std::fs::rename(&building, &venv)
            && ready_python(&venv, packages).is_none()
        {
            let _ = std::fs::remove_dir_all(&building);
            return Err(VenvError::Rename { path: venv, source });
        }
    }
    let _ = std::fs::remove_dir_all(&building);
    ready_python(&venv, packages).ok_or_else(|| VenvError::Rename {
        path: venv.clone(),
        source: std::io::Error::other("the venv is not usable after it was moved into place"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn venv_folder_depends_on_the_package_list() {
        let cache = Path::new("/cache");
        let a = venv_dir(cache, &["pillow", "numpy"]);
        assert_eq!(a, venv_dir(cache, &["pillow", "numpy"]));
        assert_ne!(a, venv_dir(cache, &["pillow", "numpy==2"]));
        assert!(a.starts_with("/cache/python-venvs"));
    }

    #[test]
    fn an_unfinished_venv_is_not_taken_for_a_ready_one() {
        let dir = tempfile::tempdir().unwrap();
        let venv = venv_dir(dir.path(), &["pillow"]);
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        // No marker: pip never finished.
        assert!(ready_python(&venv, &["pillow"]).is_none());
        // A marker for other packages does not count either.
        std::fs::write(venv.join(READY_MARKER), "numpy\n").unwrap();
        assert!(ready_python(&venv, &["pillow"]).is_none());
    }

    #[test]
    fn a_cache_folder_that_cannot_be_made_is_a_clear_error() {
        // A cache folder that cannot be created (a file is in the way).
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let err = ensure_venv(&blocker, &["pillow"]).unwrap_err();
        assert!(
            err.to_string().contains("cannot create the cache folder"),
            "{err}"
        );
    }
}

//! Evidence photos on disk: stored by content hash with an fsync, pruned by age and size, and
//! never deleted while they back a held batch or an open dispute.
//!
//! A full disk must not fail an acceptance: storing returns an error the caller turns into an
//! alert, and the decision is recorded with the photo's hash but without a stored copy.

use crate::store::{StoreError, Tx, photos};
use hub_core::Timestamp;
pub use hub_core::sha256_hex;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where photos live inside the data directory.
pub fn photo_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("evidence")
}

/// Why a photo could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error(
        "no space left to store photo {sha256} in {dir}; the decision is kept without the photo copy"
    )]
    DiskFull { sha256: String, dir: PathBuf },
    #[error("cannot store photo {sha256} in {dir}: {source}")]
    Io {
        sha256: String,
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// Stores a photo as `<dir>/<sha256>.<ext>` durably (file and folder fsynced). Storing the same
/// photo twice is a no-op.
pub fn store_photo(
    data_dir: &Path,
    bytes: &[u8],
    ext: &str,
) -> Result<(String, PathBuf), EvidenceError> {
    let sha256 = sha256_hex(bytes);
    let dir = photo_dir(data_dir);
    let io = |source: std::io::Error, sha256: &str| {
        if source.raw_os_error() == Some(libc::ENOSPC) {
            EvidenceError::DiskFull {
                sha256: sha256.to_owned(),
                dir: dir.clone(),
            }
        } else {
            EvidenceError::Io {
                sha256: sha256.to_owned(),
                dir: dir.clone(),
                source,
            }
        }
    };
    std::fs::create_dir_all(&dir).map_err(|e| io(e, &sha256))?;
    let path = dir.join(format!("{sha256}.{ext}"));
    if path.exists() {
        return Ok((sha256, path));
    }
    let tmp = dir.join(format!(".{sha256}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&dir)?.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e, &sha256));
    }
    Ok((sha256, path))
}

pub use crate::config::Retention;

/// What a prune did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PruneReport {
    pub deleted: usize,
    pub freed_bytes: u64,
    pub kept_protected: usize,
    pub kept: usize,
}

/// Deletes photos past the age limit, then oldest-first while over the size limit — except
/// photos of held (quarantined) lines and of deliveries with an open dispute.
pub fn prune(tx: &Tx<'_>, retention: Retention, now: Timestamp) -> Result<PruneReport, StoreError> {
    let copies = photos::copies(tx)?;
    let size = |p: &str| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut total: u64 = copies.iter().map(|c| size(&c.path)).sum();
    let mut report = PruneReport::default();
    let max_age_ms = retention.max_age_days * 86_400_000;
    for copy in copies {
        let too_old = now.millis() - copy.stored_at > max_age_ms;
        let too_big = total > retention.max_total_bytes;
        if !(too_old || too_big) {
            report.kept += 1;
            continue;
        }
        if copy.protected {
            report.kept_protected += 1;
            continue;
        }
        let bytes = size(&copy.path);
        if std::fs::remove_file(&copy.path).is_ok() || !Path::new(&copy.path).exists() {
            photos::forget_copy(tx, &copy.sha256)?;
            total = total.saturating_sub(bytes);
            report.deleted += 1;
            report.freed_bytes += bytes;
        }
    }
    Ok(report)
}

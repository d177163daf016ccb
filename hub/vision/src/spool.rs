//! Spool-folder photo source: a camera (or an FTP/SMB drop) writes photos into a folder; the
//! watcher picks up `*.jpg|*.jpeg|*.png` files once they have stopped growing, hands each to the
//! caller, and moves it to `done/` or `rejected/` (with a `<name>.reason.txt` beside it).
//!
//! Polling (std + tokio only) rather than inotify: it works on every filesystem, including network
//! shares, and a file is only taken once its size and mtime have been unchanged for the settle
//! time. Leftovers from before a restart are picked up the same way. This module must not decode
//! photos or judge them: the handler does.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::VisionError;

/// Spool watcher settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolConfig {
    /// Folder the camera writes into. `done/` and `rejected/` are created inside it.
    pub dir: PathBuf,
    /// How often to look (default 500 ms).
    #[serde(default = "default_poll", with = "millis")]
    pub poll_interval: Duration,
    /// How long size and mtime must stay unchanged before a file is taken (default 1 s).
    #[serde(default = "default_settle", with = "millis")]
    pub settle_time: Duration,
}

fn default_poll() -> Duration {
    Duration::from_millis(500)
}

fn default_settle() -> Duration {
    Duration::from_secs(1)
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

impl SpoolConfig {
    /// Defaults for a folder.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            poll_interval: default_poll(),
            settle_time: default_settle(),
        }
    }
}

/// What the handler decided for a spooled file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpoolDisposition {
    /// Processed; move to `done/`.
    Done,
    /// Not usable; move to `rejected/` and write the reason next to it.
    Rejected {
        /// Shown to the operator.
        reason: String,
    },
}

/// A photo file ready for processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolFile {
    /// Its path in the spool folder.
    pub path: PathBuf,
    /// Its bytes, read once.
    pub bytes: Vec<u8>,
}

/// Where a file ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolOutcome {
    /// The original path.
    pub source: PathBuf,
    /// The path in `done/` or `rejected/`.
    pub moved_to: PathBuf,
    /// The disposition.
    pub disposition: SpoolDisposition,
}

fn is_photo_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    len: u64,
    modified: Option<SystemTime>,
    stable_since: Instant,
}

/// Tracks files between polls and tells which ones have settled. Separate from the async loop so
/// it can be driven with explicit instants.
#[derive(Debug, Default)]
pub struct SpoolScanner {
    seen: HashMap<PathBuf, Seen>,
}

impl SpoolScanner {
    /// A scanner that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Looks at `dir` at time `now` and returns the photos whose size and mtime have not changed
    /// for `settle` (sorted by name). A returned file is forgotten; the caller must move it away.
    pub fn scan(
        &mut self,
        dir: &Path,
        now: Instant,
        settle: Duration,
    ) -> Result<Vec<PathBuf>, VisionError> {
        let entries =
            std::fs::read_dir(dir).map_err(|e| VisionError::io("list spool folder", dir, e))?;
        let mut present = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if !is_photo_name(&path) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let (len, modified) = (meta.len(), meta.modified().ok());
            let seen = self.seen.entry(path.clone()).or_insert(Seen {
                len,
                modified,
                stable_since: now,
            });
            if seen.len != len || seen.modified != modified {
                *seen = Seen {
                    len,
                    modified,
                    stable_since: now,
                };
            }
            present.push(path);
        }
        self.seen.retain(|p, _| present.contains(p));
        let mut ready: Vec<PathBuf> = self
            .seen
            .iter()
            .filter(|(_, s)| now.duration_since(s.stable_since) >= settle)
            .map(|(p, _)| p.clone())
            .collect();
        ready.sort();
        for p in &ready {
            self.seen.remove(p);
        }
        Ok(ready)
    }
}

/// Moves `path` into `dir/<sub>/`, choosing a free name, and for rejections writes
/// `<name>.reason.txt` next to it.
pub fn dispose(
    dir: &Path,
    path: &Path,
    disposition: &SpoolDisposition,
) -> Result<PathBuf, VisionError> {
    let sub = match disposition {
        SpoolDisposition::Done => "done",
        SpoolDisposition::Rejected { .. } => "rejected",
    };
    let target_dir = dir.join(sub);
    std::fs::create_dir_all(&target_dir).map_err(|e| VisionError::io("create", &target_dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "photo".into());
    let mut target = target_dir.join(&name);
    let mut n = 1;
    while target.exists() {
        target = target_dir.join(format!("{n}-{name}"));
        n += 1;
    }
    std::fs::rename(path, &target)
        .map_err(|e| VisionError::io("move spooled file to", &target, e))?;
    if let SpoolDisposition::Rejected { reason } = disposition {
        let mut reason_path = target.clone().into_os_string();
        reason_path.push(".reason.txt");
        std::fs::write(&reason_path, format!("{reason}\n"))
            .map_err(|e| VisionError::io("write", PathBuf::from(&reason_path), e))?;
    }
    Ok(target)
}

/// Watches `config.dir` until `shutdown` completes. Each settled photo is read and passed to
/// `handler`; the file is then moved per the returned disposition, and `on_outcome` is told.
/// A file that cannot be read is rejected with the I/O error as reason. Errors listing the folder
/// are logged and retried at the next poll; only a missing folder at start is an error.
pub async fn watch_spool<H, Fut, O>(
    config: SpoolConfig,
    shutdown: impl Future<Output = ()>,
    mut handler: H,
    mut on_outcome: O,
) -> Result<(), VisionError>
where
    H: FnMut(SpoolFile) -> Fut,
    Fut: Future<Output = SpoolDisposition>,
    O: FnMut(SpoolOutcome),
{
    if !config.dir.is_dir() {
        return Err(VisionError::io(
            "watch spool folder",
            &config.dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "not a folder"),
        ));
    }
    let mut scanner = SpoolScanner::new();
    let mut ticker = tokio::time::interval(config.poll_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = ticker.tick() => {}
        }
        let ready = match scanner.scan(&config.dir, Instant::now(), config.settle_time) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "spool scan failed; retrying");
                continue;
            }
        };
        for path in ready {
            let disposition = match tokio::fs::read(&path).await {
                Ok(bytes) => {
                    handler(SpoolFile {
                        path: path.clone(),
                        bytes,
                    })
                    .await
                }
                Err(e) => SpoolDisposition::Rejected {
                    reason: format!("cannot read {}: {e}", path.display()),
                },
            };
            match dispose(&config.dir, &path, &disposition) {
                Ok(moved_to) => on_outcome(SpoolOutcome {
                    source: path,
                    moved_to,
                    disposition,
                }),
                Err(e) => {
                    tracing::error!(error = %e, "cannot move spooled photo; it will be offered again")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanner_waits_for_files_to_settle() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Instant::now();
        let settle = Duration::from_millis(100);
        let mut s = SpoolScanner::new();
        std::fs::write(dir.path().join("a.jpg"), b"12").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        assert!(s.scan(dir.path(), t0, settle).unwrap().is_empty());
        // Still growing: the clock restarts.
        std::fs::write(dir.path().join("a.jpg"), b"1234").unwrap();
        assert!(
            s.scan(dir.path(), t0 + Duration::from_millis(80), settle)
                .unwrap()
                .is_empty()
        );
        assert!(
            s.scan(dir.path(), t0 + Duration::from_millis(150), settle)
                .unwrap()
                .is_empty()
        );
        let ready = s
            .scan(dir.path(), t0 + Duration::from_millis(200), settle)
            .unwrap();
        assert_eq!(ready, vec![dir.path().join("a.jpg")]);
    }

    #[test]
    fn dispose_moves_and_writes_reason() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.PNG");
        std::fs::write(&p, b"x").unwrap();
        let moved = dispose(
            dir.path(),
            &p,
            &SpoolDisposition::Rejected {
                reason: "not a photo".into(),
            },
        )
        .unwrap();
        assert_eq!(moved, dir.path().join("rejected/b.PNG"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("rejected/b.PNG.reason.txt")).unwrap(),
            "not a photo\n"
        );
        std::fs::write(&p, b"y").unwrap();
        let again = dispose(
            dir.path(),
            &p,
            &SpoolDisposition::Rejected {
                reason: "again".into(),
            },
        )
        .unwrap();
        assert_eq!(again, dir.path().join("rejected/1-b.PNG"));
    }

    #[tokio::test]
    async fn watcher_hands_over_and_moves_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("good.jpg"), b"good").unwrap();
        std::fs::write(dir.path().join("bad.jpeg"), b"bad").unwrap();
        let config = SpoolConfig {
            dir: dir.path().to_path_buf(),
            poll_interval: Duration::from_millis(10),
            settle_time: Duration::from_millis(30),
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(watch_spool(
            config,
            async move {
                let _ = stop_rx.await;
            },
            |file: SpoolFile| async move {
                if file.bytes == b"good" {
                    SpoolDisposition::Done
                } else {
                    SpoolDisposition::Rejected {
                        reason: "bad bytes".into(),
                    }
                }
            },
            move |outcome| {
                let _ = tx.send(outcome);
            },
        ));
        let mut outcomes = Vec::new();
        while outcomes.len() < 2 {
            let o = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap()
                .unwrap();
            outcomes.push(o);
        }
        stop_tx.send(()).unwrap();
        task.await.unwrap().unwrap();
        assert!(dir.path().join("done/good.jpg").is_file());
        assert!(dir.path().join("rejected/bad.jpeg").is_file());
        assert!(dir.path().join("rejected/bad.jpeg.reason.txt").is_file());
        assert!(!dir.path().join("good.jpg").exists());
    }
}

//! Mounting, cutting and unmounting: [`PowerCutFs::mount`] and the [`MountedFs`] handle.
//!
//! A cut is an unmount, a revert of the in-memory state to its durable image, and a fresh
//! mount at the same place. A fresh mount has no page cache, dentry or attribute cache, so the
//! kernel cannot serve anything from before the cut. The caller must first have killed every
//! process using the mount (that is what a power cut does to them); if the mount is still busy
//! this module says who holds it, retries for [`BUSY_RETRY`], and only then detaches it lazily
//! (`MNT_DETACH`), logging a warning: processes still holding the old mount keep a detached
//! view whose every request fails with `EIO`.
//!
//! Unmounting is decided here, not by `fuser`: the first attempt goes through fuser's handle
//! (so that fuser never unmounts the path again later, when a new mount may sit there), the
//! retries and the lazy fallback call umount2 directly, and the old session is always stopped
//! before a new one is mounted at the same place.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fuser::{MountOption, SessionACL, SessionUnmounter};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rustix::io::Errno;
use rustix::mount::UnmountFlags;
use tempfile::TempDir;

use crate::adapter::{Adapter, AtomicCounters, Faults, Shared, State, lock};
use crate::error::Error;
use crate::model::Model;
use crate::options::{Counters, CutReport, Fault, MountOptions, Tear};

/// How long a busy mount is retried before it is detached lazily.
pub const BUSY_RETRY: Duration = Duration::from_secs(2);

/// How long to wait for the FUSE worker threads to finish after an unmount.
const WORKER_EXIT_WAIT: Duration = Duration::from_secs(5);

/// The same after a lazy unmount, where they finish only once the detached mount is let go.
const LAZY_WORKER_EXIT_WAIT: Duration = Duration::from_millis(100);

/// Worker threads serving requests, so that one fsync sleeping on the slow card does not stall
/// the reads and writes of other processes.
const WORKER_THREADS: usize = 4;

/// A FUSE session being served: its workers' thread and fuser's handle on the mount.
#[derive(Debug)]
struct Running {
    thread: JoinHandle<std::io::Result<()>>,
    unmounter: SessionUnmounter,
}

/// The power-cut filesystem. Mount it with [`PowerCutFs::mount`] or [`PowerCutFs::mount_temp`].
#[derive(Debug)]
pub struct PowerCutFs;

/// A mounted power-cut filesystem. Dropping it unmounts (also while a test panics).
#[derive(Debug)]
pub struct MountedFs {
    mountpoint: PathBuf,
    shared: Arc<Shared>,
    session: Mutex<Option<Running>>,
    /// The mount point made by [`PowerCutFs::mount_temp`]; removed after the unmount.
    _tempdir: Option<TempDir>,
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Checks what a mount needs, with an error that says how to get it.
fn preflight(mountpoint: &Path) -> Result<(), Error> {
    if !Path::new("/dev/fuse").exists() {
        return Err(Error::FuseDeviceMissing);
    }
    if !is_root() && !on_path("fusermount3") && !on_path("fusermount") {
        return Err(Error::FusermountMissing);
    }
    match std::fs::metadata(mountpoint) {
        Err(e) if e.raw_os_error() == Some(Errno::NOTCONN.raw_os_error()) => {
            // A FUSE mount whose server died (e.g. a test process killed with SIGKILL).
            tracing::warn!(
                mountpoint = %mountpoint.display(),
                "mount point is a stale FUSE mount (transport endpoint is not connected): detaching it"
            );
            rustix::mount::unmount(mountpoint, UnmountFlags::DETACH).map_err(|e| {
                Error::Unmount {
                    path: mountpoint.to_owned(),
                    source: e.into(),
                }
            })?;
            preflight(mountpoint)
        }
        Ok(meta) if meta.is_dir() => Ok(()),
        _ => Err(Error::NotADirectory {
            path: mountpoint.to_owned(),
        }),
    }
}

impl PowerCutFs {
    /// Mounts an empty power-cut filesystem at `mountpoint` (an existing directory), served by
    /// background threads until the returned handle is dropped.
    pub fn mount(mountpoint: impl AsRef<Path>, options: MountOptions) -> Result<MountedFs, Error> {
        Self::mount_inner(mountpoint.as_ref().to_owned(), options, None)
    }

    /// Mounts an empty power-cut filesystem on a new temporary directory, removed on drop.
    pub fn mount_temp(options: MountOptions) -> Result<MountedFs, Error> {
        let tempdir = tempfile::Builder::new()
            .prefix("powercut-")
            .tempdir()
            .map_err(|source| Error::TempDir { source })?;
        Self::mount_inner(tempdir.path().to_owned(), options, Some(tempdir))
    }

    fn mount_inner(
        mountpoint: PathBuf,
        options: MountOptions,
        tempdir: Option<TempDir>,
    ) -> Result<MountedFs, Error> {
        preflight(&mountpoint)?;
        let seed = options.seed.unwrap_or_else(rand::random);
        let state = State {
            model: Model::new(
                rustix::process::geteuid().as_raw(),
                rustix::process::getegid().as_raw(),
            ),
            generation: 0,
            faults: Faults::default(),
            rng: StdRng::seed_from_u64(seed),
            dir_handles: Default::default(),
            next_handle: 0,
        };
        let fs = MountedFs {
            mountpoint,
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                counters: AtomicCounters::default(),
                options,
            }),
            session: Mutex::new(None),
            _tempdir: tempdir,
        };
        let session = fs.start_session(0)?;
        *lock(&fs.session) = Some(session);
        tracing::debug!(mountpoint = %fs.mountpoint.display(), seed, "power-cut filesystem mounted");
        Ok(fs)
    }
}

impl MountedFs {
    /// Where the filesystem is mounted.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// The options it was mounted with.
    pub fn options(&self) -> &MountOptions {
        &self.shared.options
    }

    /// Cuts the power: unmounts, drops everything not synced (tearing each file's last
    /// un-synced write as `tear` says), and mounts the durable image again at the same place.
    ///
    /// Kill every process using the mount first (and close files the caller holds). If the
    /// mount stays busy for [`BUSY_RETRY`] it is detached lazily and the report says so.
    pub fn cut(&self, tear: Tear) -> Result<CutReport, Error> {
        let mut slot = lock(&self.session);
        let session = slot.take().ok_or_else(|| Error::NotMounted {
            path: self.mountpoint.clone(),
        })?;
        let lazy = self.stop_session(session)?;
        let (mut report, generation) = {
            let mut st = lock(&self.shared.state);
            st.generation += 1;
            st.dir_handles.clear();
            let State { model, rng, .. } = &mut *st;
            (model.cut(tear, rng), st.generation)
        };
        report.lazy_unmount = lazy;
        self.shared.counters.cuts.fetch_add(1, Ordering::Relaxed);
        *slot = Some(self.start_session(generation)?);
        tracing::debug!(mountpoint = %self.mountpoint.display(), ?report, "power cut");
        Ok(report)
    }

    /// Operation counts since the mount.
    pub fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }

    /// Injects a fault; it stays until [`clear_faults`](Self::clear_faults) (or is used up).
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.state).faults.inject(fault);
    }

    /// Removes every injected fault (the capacity goes back to [`MountOptions::capacity`]).
    /// Data already lost to a failed fsync stays lost.
    pub fn clear_faults(&self) {
        lock(&self.shared.state).faults = Faults::default();
    }

    /// Durable plus un-synced bytes, the measure the capacity applies to.
    pub fn used_bytes(&self) -> u64 {
        lock(&self.shared.state).model.used_bytes()
    }

    /// Unmounts now, reporting errors that dropping would only log. Returns whether the mount
    /// had to be detached lazily. Afterwards [`cut`](Self::cut) fails with
    /// [`Error::NotMounted`]; a second call does nothing.
    pub fn unmount(&self) -> Result<bool, Error> {
        let session = lock(&self.session).take();
        match session {
            Some(session) => self.stop_session(session),
            None => Ok(false),
        }
    }

    fn start_session(&self, generation: u64) -> Result<Running, Error> {
        let adapter = Adapter::new(Arc::clone(&self.shared), generation);
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            MountOption::FSName("powercut".into()),
            MountOption::Subtype("powercut".into()),
            MountOption::DefaultPermissions,
            MountOption::NoAtime,
        ];
        if is_root() {
            // Lets services running as another user (as the hub does) use the card.
            config.acl = SessionACL::All;
        }
        config.n_threads = Some(WORKER_THREADS);
        config.clone_fd = true;
        let mount_error = |source: std::io::Error| {
            if source.kind() == std::io::ErrorKind::NotFound && !is_root() {
                Error::FusermountMissing
            } else {
                Error::Mount {
                    path: self.mountpoint.clone(),
                    source,
                }
            }
        };
        let mut session =
            fuser::Session::new(adapter, &self.mountpoint, &config).map_err(mount_error)?;
        let unmounter = session.unmount_callable();
        let thread = std::thread::Builder::new()
            .name("powercut-fuse".into())
            .spawn(move || session.run())
            .map_err(mount_error)?;
        Ok(Running { thread, unmounter })
    }

    /// Unmounts and stops the session's threads; returns whether the unmount had to be lazy.
    fn stop_session(&self, mut session: Running) -> Result<bool, Error> {
        let connection = fuse_connection_id(&self.mountpoint);
        let mut lazy = false;
        let deadline = Instant::now() + BUSY_RETRY;
        let mut delay = Duration::from_millis(5);
        // The first attempt goes through fuser, which so gives up its own handle on the mount:
        // otherwise it unmounts the path again when its session ends, maybe after a new mount
        // took the place.
        let mut first = Some(&mut session.unmounter);
        loop {
            let attempt = match first.take() {
                Some(unmounter) => unmounter
                    .unmount()
                    .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO)),
                None => rustix::mount::unmount(&self.mountpoint, UnmountFlags::empty()),
            };
            match attempt {
                Ok(()) => break,
                Err(Errno::BUSY) if Instant::now() < deadline => {
                    tracing::debug!(mountpoint = %self.mountpoint.display(), "unmount: busy, retrying");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_millis(200));
                }
                Err(Errno::BUSY) => {
                    tracing::warn!(
                        mountpoint = %self.mountpoint.display(),
                        holders = %holders_of(&self.mountpoint),
                        "unmount failed with EBUSY for {BUSY_RETRY:?}: falling back to a lazy unmount (MNT_DETACH); \
                         kill every process using the mount before a cut"
                    );
                    rustix::mount::unmount(&self.mountpoint, UnmountFlags::DETACH).map_err(
                        |e| Error::Unmount {
                            path: self.mountpoint.clone(),
                            source: e.into(),
                        },
                    )?;
                    if let Some(id) = connection {
                        abort_connection(id);
                    }
                    lazy = true;
                    break;
                }
                Err(Errno::INVAL) => {
                    tracing::warn!(mountpoint = %self.mountpoint.display(), "was no longer mounted (unmounted by someone else)");
                    break;
                }
                Err(e) => {
                    return Err(Error::Unmount {
                        path: self.mountpoint.clone(),
                        source: e.into(),
                    });
                }
            }
        }
        // The kernel ends the FUSE connection; the workers see ENODEV and return.
        // After a lazy unmount they serve the detached mount until its last user lets go.
        let wait = if lazy {
            LAZY_WORKER_EXIT_WAIT
        } else {
            WORKER_EXIT_WAIT
        };
        let waited = Instant::now();
        while !session.thread.is_finished() && waited.elapsed() < wait {
            std::thread::sleep(Duration::from_millis(2));
        }
        if session.thread.is_finished() {
            match session.thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "FUSE session ended with an error"),
                Err(_) => tracing::error!("a FUSE worker panicked"),
            }
        } else {
            tracing::warn!(
                mountpoint = %self.mountpoint.display(),
                "FUSE workers still serving a detached mount; leaving them (their requests fail with EIO)"
            );
        }
        Ok(lazy)
    }
}

impl Drop for MountedFs {
    fn drop(&mut self) {
        let session = lock(&self.session).take();
        if let Some(session) = session
            && let Err(e) = self.stop_session(session)
        {
            tracing::error!(error = %e, "unmount on drop failed");
        }
    }
}

/// The kernel's id of the FUSE connection mounted at `mountpoint` (its fusectl directory name).
fn fuse_connection_id(mountpoint: &Path) -> Option<u64> {
    let stat = rustix::fs::stat(mountpoint).ok()?;
    let (major, minor) = (
        rustix::fs::major(stat.st_dev),
        rustix::fs::minor(stat.st_dev),
    );
    Some((u64::from(major) << 20) | u64::from(minor))
}

/// Aborts a FUSE connection through fusectl (if mounted), so a lazily detached mount's
/// remaining users get errors at once instead of talking to the old session.
fn abort_connection(id: u64) {
    let abort = PathBuf::from(format!("/sys/fs/fuse/connections/{id}/abort"));
    match std::fs::write(&abort, "1") {
        Ok(()) => tracing::warn!(connection = id, "aborted the detached FUSE connection"),
        Err(e) => {
            tracing::debug!(path = %abort.display(), error = %e, "cannot abort the FUSE connection")
        }
    }
}

/// Processes with a file, directory, mapping or cwd under `mountpoint`, as "pid (name)".
fn holders_of(mountpoint: &Path) -> String {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return "unknown (no /proc)".into();
    };
    let mut out = String::new();
    for entry in procs.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let dir = entry.path();
        let under = |p: &Path| p.starts_with(mountpoint);
        let mut holds = ["cwd", "root"]
            .iter()
            .any(|l| std::fs::read_link(dir.join(l)).is_ok_and(|p| under(&p)));
        if !holds && let Ok(fds) = std::fs::read_dir(dir.join("fd")) {
            holds = fds
                .flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|p| under(&p)));
        }
        if !holds && let Ok(maps) = std::fs::read_to_string(dir.join("maps")) {
            let needle = mountpoint.to_string_lossy();
            holds = maps.lines().any(|l| l.contains(needle.as_ref()));
        }
        if holds {
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            let _ = write!(
                out,
                "{}pid {pid} ({})",
                if out.is_empty() { "" } else { ", " },
                comm.trim()
            );
        }
    }
    if out.is_empty() {
        "no process found (a file open in this process, or a submount?)".into()
    } else {
        out
    }
}

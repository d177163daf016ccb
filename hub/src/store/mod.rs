//! The site's SQLite store: one file per site, one writer thread, group commit.
//!
//! All writes go through [`Store::write`]: a closure that runs inside a transaction on the
//! writer thread. The writer drains whatever is queued (up to `max_batch`) into one
//! `BEGIN IMMEDIATE` transaction, runs each closure inside its own savepoint (so one refused
//! request does not undo the others), commits once with `synchronous=FULL`, and only then
//! answers each caller. An answer of `Ok` therefore means "durable on disk".
//!
//! Reads run on separate read-only connections (WAL lets them proceed while the writer works),
//! from a fixed pool of [`READERS`]: callers wait for a free one rather than opening more, so a
//! burst of readers (status page requests) cannot run the process out of file descriptors.
//!
//! The writer watches what its commits meet: a damaged file, a full disk or an I/O error is a
//! [`WriteFault`], kept (with when it started) until a later commit writes again — a damaged
//! file stays faulted for good. Callers read it with [`Store::write_fault`] (status page,
//! watchdog) or wait for changes with [`Store::subscribe_write_faults`].
//! Nothing here knows about MQTT, devices or the wall clock; domain rules live in `hub-core`.

pub mod alert_book;
pub mod applied_commands;
pub mod bench_site;
pub mod day_forecast;
pub mod deliveries;
pub mod demand;
pub mod device_input;
pub mod disputes;
pub mod figures;
pub mod handover_undo;
pub mod integrity;
pub mod ledger;
pub mod outbox;
pub mod photos;
pub mod pickup_orders;
pub mod receipt_reversal;
pub mod report;
mod report_journal;
pub mod report_rollup;
mod schema;
pub mod screens;
pub mod sku;
pub mod staff;
pub mod station;
pub mod stream;
pub mod trace;
pub mod unit_weights;

use rusqlite::{Connection, OpenFlags};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

pub use outbox::sql as sql_error;

/// Oldest SQLite the hub accepts: 3.51.3 fixes the WAL-reset corruption bug.
pub const MIN_SQLITE_VERSION: i32 = 3_051_003;

/// Read-only connections a store keeps at most; readers beyond this wait for one to be free.
pub const READERS: usize = 4;

/// What the README calls the restore procedure, for messages that send a person there.
pub const RESTORE_HINT: &str = "stop the hub and restore the database from the last backup \
     (README, \"Back up and restore\")";

/// A failure of the store itself (as opposed to a refused request).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "SQLite {found} is too old; the hub needs 3.51.3 or newer (older versions can corrupt WAL databases)"
    )]
    SqliteTooOld { found: String },
    #[error(
        "cannot create data directory {path}: {source}; check that the path is right and writable"
    )]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot open database {path}: {source}; check that the data directory exists and is writable"
    )]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "{path} is not a hub database (not an SQLite file, or encrypted or damaged); move it aside or point store.data_dir elsewhere"
    )]
    NotADatabase { path: PathBuf },
    #[error("database {path} is damaged ({source}); {RESTORE_HINT}")]
    Corrupt {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "database {path} was written by a newer hub (schema {found}, this hub knows up to {known}); upgrade the hub"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error(
        "database {path} belongs to site '{found}', not '{expected}'; check site.id and store.data_dir"
    )]
    WrongSite {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("migration to schema {version} of {path} failed, database left unchanged: {source}")]
    Migration {
        path: PathBuf,
        version: i64,
        source: rusqlite::Error,
    },
    #[error("the disk holding {path} is full; nothing new was stored, free space and retry")]
    DiskFull { path: PathBuf },
    #[error("database {path} is read-only: {source}")]
    ReadOnly {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database error on {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "SQLite abandoned a transaction on {path} (disk full or I/O error); nothing of it was stored, retry"
    )]
    RolledBack { path: PathBuf },
    #[error("the store is shut down")]
    Closed,
}

impl StoreError {
    /// Classifies a raw SQLite error on a given database file.
    /// On the writer thread, a storage fault among them (damaged file, full disk, I/O error)
    /// is also noted for [`Store::write_fault`].
    pub fn from_sqlite(path: &Path, source: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode;
        if let Some(kind) = WriteFaultKind::of(&source) {
            note_fault(kind, &source);
        }
        let path = path.to_owned();
        match source.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => StoreError::NotADatabase { path },
            Some(ErrorCode::DatabaseCorrupt) => StoreError::Corrupt { path, source },
            Some(ErrorCode::DiskFull) => StoreError::DiskFull { path },
            // SQLite reports ENOSPC as SQLITE_FULL only on some paths: growing the `-shm` file
            // or syncing on a full disk is a plain I/O error. Say what it is when the disk is
            // full.
            Some(ErrorCode::SystemIoFailure) if disk_is_full(&path) => {
                StoreError::DiskFull { path }
            }
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly { path, source },
            _ => StoreError::Sqlite { path, source },
        }
    }
}

/// Whether the filesystem holding `db` has (next to) no space left for its user.
fn disk_is_full(db: &Path) -> bool {
    let dir = db
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    rustix::fs::statvfs(dir)
        .is_ok_and(|st| st.f_bavail.saturating_mul(st.f_frsize) < FULL_BELOW_BYTES)
}

/// Free bytes below which an I/O error of the store is reported as a full disk (a WAL frame
/// and a `-shm` page need more than this).
const FULL_BELOW_BYTES: u64 = 64 * 1024;

/// Why the store's writes fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteFaultKind {
    /// The database file is damaged (SQLite: malformed, not a database). It stays damaged:
    /// only restoring a backup helps.
    Corrupt,
    /// The filesystem holding the database is full.
    DiskFull,
    /// The storage refused a read or write (failing card, filesystem remounted read-only,
    /// permissions taken away).
    Io,
    /// A commit failed for another reason.
    Other,
}

impl WriteFaultKind {
    /// The fault an SQLite error reports, if it is one (a refused constraint is not).
    pub fn of(error: &rusqlite::Error) -> Option<WriteFaultKind> {
        use rusqlite::ErrorCode;
        match error.sqlite_error_code()? {
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => Some(WriteFaultKind::Corrupt),
            ErrorCode::DiskFull => Some(WriteFaultKind::DiskFull),
            ErrorCode::SystemIoFailure
            | ErrorCode::ReadOnly
            | ErrorCode::CannotOpen
            | ErrorCode::PermissionDenied
            | ErrorCode::FileLockingProtocolFailed => Some(WriteFaultKind::Io),
            _ => None,
        }
    }

    /// Stable name, as in `/status.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteFaultKind::Corrupt => "corrupt",
            WriteFaultKind::DiskFull => "disk_full",
            WriteFaultKind::Io => "io",
            WriteFaultKind::Other => "other",
        }
    }

    /// What a person should do about it.
    pub fn advice(self) -> &'static str {
        match self {
            WriteFaultKind::Corrupt => {
                "the database file is damaged: stop the hub and restore the database from the \
                 last backup (README, \"Back up and restore\"); nothing new can be stored until then"
            }
            WriteFaultKind::DiskFull => {
                "the disk holding the database is full: free space on it (old photos, logs); \
                 writes resume by themselves"
            }
            WriteFaultKind::Io => {
                "the storage refuses writes (failing SD card, filesystem remounted read-only, \
                 permissions): check `dmesg` and the data directory, replace the card if it is \
                 failing, then restart the hub"
            }
            WriteFaultKind::Other => {
                "check the hub's log for the cause; restart the hub if it persists"
            }
        }
    }

    /// Whether the systemd watchdog should stop being fed: yes for a damaged file or failing
    /// storage (the restarted hub checks the file and refuses to run on a damaged one, which
    /// makes the failure visible to systemd and the technician); no for a full disk, where a
    /// restart only takes the status page away while space is freed, nor for other failures,
    /// which the next successful write clears.
    pub fn stops_watchdog(self) -> bool {
        matches!(self, WriteFaultKind::Corrupt | WriteFaultKind::Io)
    }
}

/// The store's writes are failing: what the latest failure said and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFault {
    pub kind: WriteFaultKind,
    /// The latest failure's text.
    pub error: String,
    /// When the first failure of this run happened (monotonic; the store reads no wall clock).
    pub since: Instant,
    /// Failed commits or requests since then.
    pub failures: u64,
}

impl WriteFault {
    /// One line for a person: what fails, why, and what to do.
    pub fn describe(&self) -> String {
        format!(
            "database writes are failing ({}; {} failure(s)): {}",
            self.error,
            self.failures,
            self.kind.advice()
        )
    }
}

thread_local! {
    /// Set on the writer thread only: the storage fault its current request ran into.
    static WRITER_FAULT: RefCell<Option<Option<(WriteFaultKind, String)>>> = const { RefCell::new(None) };
}

/// Records a storage fault met by the request running on the writer thread (elsewhere a no-op).
fn note_fault(kind: WriteFaultKind, error: &rusqlite::Error) {
    WRITER_FAULT.with(|slot| {
        if let Some(current) = slot.borrow_mut().as_mut() {
            // A damaged file outranks whatever else went wrong in the same request.
            if !matches!(current, Some((WriteFaultKind::Corrupt, _))) {
                *current = Some((kind, error.to_string()));
            }
        }
    });
}

/// Takes the fault noted since the last call on the writer thread.
fn take_noted_fault() -> Option<(WriteFaultKind, String)> {
    WRITER_FAULT.with(|slot| slot.borrow_mut().as_mut().and_then(Option::take))
}

/// Settings for opening a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub queue_capacity: usize,
    pub max_batch: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            queue_capacity: 1024,
            max_batch: 512,
        }
    }
}

type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A queued write. Called with the connection to run it, or with `None` when the group it
/// belongs to could not start (its completion then reports the error without running it).
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Completion) + Send>;

/// Cloneable handle to the site's store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

/// What the writer has committed since the store was opened.
#[derive(Debug, Default)]
struct Counters {
    groups: AtomicU64,
    requests: AtomicU64,
}

/// Group commits and the requests they carried, since the store was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WriterStats {
    /// Durable transactions committed (one fsync of the WAL each).
    pub groups_committed: u64,
    /// Write requests those transactions carried (refused ones included).
    pub requests_committed: u64,
}

/// The durability settings in effect on the writer's connection, as SQLite reports them back
/// (`PRAGMA journal_mode`, `PRAGMA synchronous`), read once when the store opens.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Durability {
    /// `wal` is what the store sets.
    pub journal_mode: String,
    /// `full` is what the store sets (`off`, `normal`, `full` or `extra`).
    pub synchronous: String,
}

impl Durability {
    /// Whether these are the settings the store promises (WAL, `synchronous=FULL` or stricter).
    pub fn as_promised(&self) -> bool {
        self.journal_mode == "wal" && matches!(self.synchronous.as_str(), "full" | "extra")
    }
}

/// Test-only switch, honoured by debug builds alone (compiled out of release builds, which is
/// what the `.deb` and the aarch64 build ship): `HUB_TEST_WEAKEN_DURABILITY=synchronous-off`
/// opens the writer with `PRAGMA synchronous=OFF`, so commits are acknowledged before they are
/// on the disk. It exists for the negative control of the power-cut harness (`powercut run`),
/// which must see acknowledged data lost with it, or it proves nothing. The store logs an
/// error whenever it is in effect, and the status page shows the setting.
pub const WEAKEN_DURABILITY_ENV: &str = "HUB_TEST_WEAKEN_DURABILITY";

#[cfg(debug_assertions)]
fn weaken_for_test(conn: &Connection, path: &Path) -> rusqlite::Result<()> {
    if std::env::var(WEAKEN_DURABILITY_ENV).as_deref() == Ok("synchronous-off") {
        tracing::error!(
            db = %path.display(),
            "{WEAKEN_DURABILITY_ENV}=synchronous-off: commits are NOT durable (test build only)"
        );
        conn.execute_batch("PRAGMA synchronous=OFF;")?;
    }
    Ok(())
}

#[cfg(not(debug_assertions))]
fn weaken_for_test(_conn: &Connection, _path: &Path) -> rusqlite::Result<()> {
    Ok(())
}

fn durability(conn: &Connection) -> rusqlite::Result<Durability> {
    let journal_mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
    let synchronous = match synchronous {
        0 => "off",
        1 => "normal",
        2 => "full",
        3 => "extra",
        _ => "unknown",
    };
    Ok(Durability {
        journal_mode: journal_mode.to_ascii_lowercase(),
        synchronous: synchronous.to_owned(),
    })
}

struct Inner {
    path: PathBuf,
    durability: Durability,
    counters: Arc<Counters>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    readers: Mutex<Readers>,
    /// Signalled whenever a reader connection is handed back or given up.
    reader_freed: Condvar,
    /// One permit per reader: async reads wait here before taking a blocking thread.
    read_permits: Arc<Semaphore>,
    faults: Arc<watch::Sender<Option<WriteFault>>>,
    deferred: Arc<Mutex<Deferred>>,
}

/// The read-only connections: `idle` ready for use, `open` in existence (idle or lent out).
#[derive(Default)]
struct Readers {
    idle: Vec<Connection>,
    open: usize,
}

/// A reader lent out; handed back to the pool (or given up, on error) when dropped.
struct Lent<'a> {
    inner: &'a Inner,
    conn: Option<Connection>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        let mut readers = self.inner.readers.lock().unwrap_or_else(|e| e.into_inner());
        match self.conn.take() {
            Some(conn) => readers.idle.push(conn),
            None => readers.open = readers.open.saturating_sub(1),
        }
        drop(readers);
        self.inner.reader_freed.notify_one();
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.jobs.lock().map(|mut j| j.take()).ok();
        if let Some(handle) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = handle.join();
        }
    }
}

/// A write transaction of the store, as the workflows see it: what [`Store::write`] hands its
/// closure. Store functions take the SQLite connection it derefs to; nothing outside the store
/// names SQLite.
#[derive(Debug, Clone, Copy)]
pub struct Tx<'a> {
    conn: &'a Connection,
}

impl<'a> Tx<'a> {
    /// A transaction the test itself opened on `conn` (unit tests outside the store).
    #[cfg(test)]
    pub(crate) fn opened_by_test(conn: &'a Connection) -> Tx<'a> {
        Tx { conn }
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// Runs `f` inside a nested savepoint of the caller's transaction: its effects are kept when it
/// succeeds and undone when it returns an error, while what the caller wrote before (a journal
/// row, a stored reply) stays either way. A failure of the savepoint itself is a store error.
pub fn savepoint<T, E>(
    tx: &Tx<'_>,
    f: impl FnOnce(&Tx<'_>) -> Result<T, E>,
) -> Result<Result<T, E>, StoreError> {
    let conn: &Connection = tx;
    conn.execute_batch("SAVEPOINT step")
        .map_err(sql_error(conn))?;
    let result = f(tx);
    let finish = if result.is_ok() {
        "RELEASE step"
    } else {
        "ROLLBACK TO step; RELEASE step"
    };
    conn.execute_batch(finish).map_err(sql_error(conn))?;
    Ok(result)
}

/// Checks that the linked SQLite is new enough.
pub fn check_sqlite_version() -> Result<(), StoreError> {
    if rusqlite::version_number() < MIN_SQLITE_VERSION {
        return Err(StoreError::SqliteTooOld {
            found: rusqlite::version().to_owned(),
        });
    }
    Ok(())
}

/// SQLite page size of a database the store creates (an existing file keeps its own: SQLite
/// cannot change it in WAL mode). Smaller than SQLite's default 4096 because the WAL writes
/// every page a commit touches, whole: a handover touches about twenty b-tree pages, each
/// holding one small new or changed row, so 1 KiB pages write a quarter of the bytes per
/// commit (README, "Bytes per handover"). Rows stay well below the 989 bytes a 1 KiB page
/// holds without overflow pages.
pub const NEW_DATABASE_PAGE_SIZE: i64 = 1024;

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Before anything is written: on a new, empty file this sets the page size; on an
    // existing one SQLite ignores it.
    conn.execute_batch(&format!("PRAGMA page_size={NEW_DATABASE_PAGE_SIZE};"))?;
    // WAL keeps readers off the writer's back; FULL makes each commit survive a power cut; the
    // journal size limit keeps the WAL from growing on an SD card after a burst. Each write
    // request runs in a savepoint, whose statement journal SQLite spills to a temporary file
    // above 64 KiB: kept in memory instead, it never reaches the card.
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         PRAGMA synchronous=FULL;
         PRAGMA foreign_keys=ON;
         PRAGMA journal_size_limit=16777216;
         PRAGMA temp_store=MEMORY;",
    )?;
    // A checkpoint copies each page changed since the last one into the main file once,
    // however many commits changed it: the hot pages of a handover (the rightmost leaves of
    // the journal, the outbox and their indexes, the balances) are rewritten by every
    // commit, so checkpointing after 4 MiB of WAL instead of SQLite's 1000 pages copies them
    // a quarter as often with 1 KiB pages. Well below `journal_size_limit`.
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let pages = (CHECKPOINT_AFTER_WAL_BYTES / page_size.max(512)).max(1000);
    conn.execute_batch(&format!("PRAGMA wal_autocheckpoint={pages};"))?;
    Ok(())
}

/// WAL size after which a commit checkpoints it into the main file.
pub const CHECKPOINT_AFTER_WAL_BYTES: i64 = 4 * 1024 * 1024;

/// How long a [`Store::write_deferred`] waits at most for another write to ride on before the
/// store commits it on its own.
pub const DEFERRED_AT_MOST: std::time::Duration = std::time::Duration::from_secs(10);

/// A write kept until the next group commit (see [`Store::write_deferred`]).
type DeferredJob = Box<dyn FnOnce(&Tx<'_>) -> Result<(), StoreError> + Send>;

/// How long a [`Store::write_deferred_lazily`] write waits before it rides on a commit: a
/// station's screen changes with every scan and handover, and kept at most this
/// often it costs a page of a commit every few seconds instead of one of every commit.
pub const LAZY_DEFERRED_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

/// A deferred write with when it was first deferred (a replacement under the same key keeps
/// that) and how long it waits before riding on a commit.
struct DeferredEntry {
    job: DeferredJob,
    since: Instant,
    ride_after: std::time::Duration,
}

/// Deferred writes by key (a later one under the same key replaces the earlier), whether a
/// thread watches that none waits longer than [`DEFERRED_AT_MOST`], and whether the next group
/// must run them all.
#[derive(Default)]
struct Deferred {
    jobs: std::collections::BTreeMap<String, DeferredEntry>,
    nudged: bool,
    force: bool,
}

/// Runs the deferred writes that are due (all of them when forced: a commit of their own, or
/// closing) inside the group's transaction, each in its own savepoint; one that fails is
/// undone and logged (it only costs what it would have kept).
fn run_deferred(conn: &Connection, deferred: &Mutex<Deferred>, path: &Path) {
    let jobs = {
        let mut d = deferred.lock().unwrap_or_else(|e| e.into_inner());
        let force = std::mem::take(&mut d.force);
        let (due, waiting) = std::mem::take(&mut d.jobs)
            .into_iter()
            .partition(|(_, e)| force || e.since.elapsed() >= e.ride_after);
        d.jobs = waiting;
        due
    };
    for (key, DeferredEntry { job, .. }) in jobs {
        if conn.execute_batch("SAVEPOINT deferred").is_err() {
            continue;
        }
        let finish = match job(&Tx { conn }) {
            Ok(()) => "RELEASE deferred",
            Err(e) => {
                tracing::warn!(path = %path.display(), key, error = %e, "a deferred write failed; it is not kept");
                "ROLLBACK TO deferred; RELEASE deferred"
            }
        };
        let _ = conn.execute_batch(finish);
    }
}

/// Creates `dir` and its missing ancestors, then fsyncs the parent of each one created: a new
/// directory's entry lives in its parent, and without that fsync a power cut soon after the
/// first start can leave the database's folder (and so the database) missing. SQLite itself
/// syncs only the folder holding its files.
fn create_dir_durably(dir: &Path) -> std::io::Result<()> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    std::fs::create_dir_all(dir)?;
    for created in missing {
        if let Some(parent) = created.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::File::open(parent)?.sync_all()?;
        }
    }
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the database of `site`, migrates it, starts the writer.
    pub fn open(path: &Path, site: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        check_sqlite_version()?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_dir_durably(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let mut conn =
            Connection::open(path).map_err(|source| match source.sqlite_error_code() {
                Some(rusqlite::ErrorCode::NotADatabase) => StoreError::NotADatabase {
                    path: path.to_owned(),
                },
                _ => StoreError::Open {
                    path: path.to_owned(),
                    source,
                },
            })?;
        configure(&conn).map_err(|e| StoreError::from_sqlite(path, e))?;
        weaken_for_test(&conn, path).map_err(|e| StoreError::from_sqlite(path, e))?;
        let durability = durability(&conn).map_err(|e| StoreError::from_sqlite(path, e))?;
        schema::migrate(&mut conn, path)?;
        schema::bind_site(&conn, path, site)?;
        stream::bind(&mut conn, path)?;

        let (tx, rx) = mpsc::channel::<Job>(options.queue_capacity.max(1));
        let max_batch = options.max_batch.max(1);
        let writer_path = path.to_owned();
        let counters = Arc::new(Counters::default());
        let writer_counters = counters.clone();
        let faults = Arc::new(watch::Sender::new(None));
        let writer_faults = faults.clone();
        let deferred = Arc::new(Mutex::new(Deferred::default()));
        let writer_deferred = deferred.clone();
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                writer_loop(
                    conn,
                    rx,
                    max_batch,
                    &writer_path,
                    &writer_faults,
                    &writer_counters,
                    &writer_deferred,
                )
            })
            .map_err(|e| StoreError::CreateDir {
                path: path.to_owned(),
                source: e,
            })?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                durability,
                counters,
                jobs: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(writer)),
                readers: Mutex::new(Readers::default()),
                reader_freed: Condvar::new(),
                read_permits: Arc::new(Semaphore::new(READERS)),
                faults,
                deferred,
            }),
        })
    }

    /// Why writes are failing now, if they are (see [`WriteFault`]).
    pub fn write_fault(&self) -> Option<WriteFault> {
        self.inner.faults.borrow().clone()
    }

    /// Follows [`Store::write_fault`]: the receiver sees every change.
    pub fn subscribe_write_faults(&self) -> watch::Receiver<Option<WriteFault>> {
        self.inner.faults.subscribe()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The journal mode and `synchronous` level the writer's connection runs with.
    pub fn durability(&self) -> &Durability {
        &self.inner.durability
    }

    /// How many group commits the writer made, and how many requests they carried.
    pub fn writer_stats(&self) -> WriterStats {
        WriterStats {
            groups_committed: self.inner.counters.groups.load(Ordering::Relaxed),
            requests_committed: self.inner.counters.requests.load(Ordering::Relaxed),
        }
    }

    fn sender(&self) -> Result<mpsc::Sender<Job>, StoreError> {
        self.inner
            .jobs
            .lock()
            .ok()
            .and_then(|j| j.clone())
            .ok_or(StoreError::Closed)
    }

    fn make_job<T, E, F>(f: F) -> (Job, oneshot::Receiver<Result<T, E>>)
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<T, E> + Send + 'static,
    {
        let (reply_tx, reply_rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let Some(conn) = conn else {
                let completion: Completion = Box::new(move |commit| {
                    let err = commit.err().unwrap_or(StoreError::Closed);
                    let _ = reply_tx.send(Err(E::from(err)));
                });
                return (false, completion);
            };
            let result = f(&Tx { conn });
            let ok = result.is_ok();
            let completion: Completion = Box::new(move |commit| {
                let answer = match (result, commit) {
                    (Err(e), _) => Err(e),
                    (Ok(v), Ok(())) => Ok(v),
                    (Ok(_), Err(e)) => Err(E::from(e)),
                };
                let _ = reply_tx.send(answer);
            });
            (ok, completion)
        });
        (job, reply_rx)
    }

    /// Runs `f` in a write transaction and returns once its effects are durable.
    ///
    /// If `f` returns an error, its effects are rolled back and the error returned; other
    /// requests committed in the same group are unaffected.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<T, E> + Send + 'static,
    {
        let (job, reply) = Self::make_job(f);
        self.sender()?
            .send(job)
            .await
            .map_err(|_| StoreError::Closed)?;
        reply.await.map_err(|_| StoreError::Closed)?
    }

    /// [`Store::write`] for callers outside the async runtime.
    pub fn write_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<T, E> + Send + 'static,
    {
        let (job, reply) = Self::make_job(f);
        self.sender()?
            .blocking_send(job)
            .map_err(|_| StoreError::Closed)?;
        reply.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Keeps `f` to run inside the next group commit, whatever request it carries, instead of
    /// a commit of its own; a later deferred write under the same `key` replaces this one.
    /// When no other write comes within [`DEFERRED_AT_MOST`], the store commits it alone;
    /// [`Store::close`] commits what is pending. For state a restart can do without or redo
    /// (what a station's screen shows): nobody waits for it, a power cut can lose the last
    /// [`DEFERRED_AT_MOST`] of it, and an error is only logged. Each commit of its own costs the
    /// SD card a WAL frame and an fsync; riding on the next one costs a page of that commit.
    pub fn write_deferred<F>(&self, key: impl Into<String>, f: F)
    where
        F: FnOnce(&Tx<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        self.defer(key.into(), Box::new(f), std::time::Duration::ZERO);
    }

    /// [`Store::write_deferred`] for state that can wait longer (what a station's screen
    /// shows), which spares the SD card: it rides on the first group commit at least
    /// [`LAZY_DEFERRED_AFTER`] after it was first deferred (a replacement under the same key
    /// keeps that time), alone after [`DEFERRED_AT_MOST`], on closing. A power cut can lose the
    /// last [`DEFERRED_AT_MOST`] of it, as for [`Store::write_deferred`].
    pub fn write_deferred_lazily<F>(&self, key: impl Into<String>, f: F)
    where
        F: FnOnce(&Tx<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        self.defer(key.into(), Box::new(f), LAZY_DEFERRED_AFTER);
    }

    fn defer(&self, key: String, job: DeferredJob, ride_after: std::time::Duration) {
        let nudge = {
            let mut d = self
                .inner
                .deferred
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let since = d.jobs.get(&key).map_or_else(Instant::now, |e| e.since);
            d.jobs.insert(
                key,
                DeferredEntry {
                    job,
                    since,
                    ride_after,
                },
            );
            !std::mem::replace(&mut d.nudged, true)
        };
        if nudge {
            let inner = Arc::downgrade(&self.inner);
            let spawned = std::thread::Builder::new()
                .name("store-deferred".into())
                .spawn(move || nudge_deferred(&inner));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "no thread to commit a deferred write; it waits for the next write");
                self.inner
                    .deferred
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .nudged = false;
            }
        }
    }

    /// Runs `f` on a read-only connection (blocking; call from a blocking context). Waits for
    /// a free connection when all [`READERS`] are in use.
    pub fn read_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<StoreError>,
        F: FnOnce(&Connection) -> Result<T, E>,
    {
        let lent = self.lend_reader()?;
        let result = match lent.conn.as_ref() {
            Some(conn) => f(conn),
            None => Err(E::from(StoreError::Closed)),
        };
        drop(lent);
        result
    }

    fn lend_reader(&self) -> Result<Lent<'_>, StoreError> {
        let inner = &*self.inner;
        let mut readers = inner.readers.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(conn) = readers.idle.pop() {
                return Ok(Lent {
                    inner,
                    conn: Some(conn),
                });
            }
            if readers.open < READERS {
                readers.open += 1;
                drop(readers);
                // Counted as open before it is: a failure below gives the slot back on drop.
                let mut lent = Lent { inner, conn: None };
                lent.conn = Some(self.open_reader()?);
                return Ok(lent);
            }
            readers = inner
                .reader_freed
                .wait(readers)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    fn open_reader(&self) -> Result<Connection, StoreError> {
        let path = &self.inner.path;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::from_sqlite(path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| StoreError::from_sqlite(path, e))?;
        Ok(conn)
    }

    /// Runs a read on the blocking pool, off the async workers. At most [`READERS`] reads
    /// hold a blocking thread at once; the others wait here without one.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let permit = self
            .inner
            .read_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| E::from(StoreError::Closed))?;
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            store.read_blocking(f)
        })
        .await
        .map_err(|_| E::from(StoreError::Closed))?
    }

    /// Stops accepting writes, lets the writer commit what is queued, and waits for it.
    pub fn close(&self) {
        self.inner.jobs.lock().map(|mut j| j.take()).ok();
        if let Some(handle) = self.inner.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = handle.join();
        }
        if let Ok(mut readers) = self.inner.readers.lock() {
            let closed = readers.idle.len();
            readers.idle.clear();
            readers.open = readers.open.saturating_sub(closed);
        }
    }
}

/// Watches the deferred writes while there are any: every [`DEFERRED_AT_MOST`], one that has
/// waited that long and rode on no commit meanwhile is committed, with all the others, by an
/// empty request of its own.
fn nudge_deferred(inner: &std::sync::Weak<Inner>) {
    let mut wait = DEFERRED_AT_MOST;
    loop {
        std::thread::sleep(wait);
        let Some(inner) = inner.upgrade() else {
            return;
        };
        {
            let mut d = inner.deferred.lock().unwrap_or_else(|e| e.into_inner());
            let Some(oldest) = d.jobs.values().map(|e| e.since).min() else {
                d.nudged = false;
                return;
            };
            let age = oldest.elapsed();
            if age < DEFERRED_AT_MOST {
                wait = DEFERRED_AT_MOST - age;
                continue;
            }
            d.force = true;
        }
        wait = DEFERRED_AT_MOST;
        let store = Store { inner };
        // An empty request: its group runs what is deferred. A closed store committed it on
        // closing.
        if store.write_blocking(|_| Ok::<_, StoreError>(())).is_err() {
            return;
        }
    }
}

fn writer_loop(
    conn: Connection,
    mut jobs: mpsc::Receiver<Job>,
    max_batch: usize,
    path: &Path,
    faults: &watch::Sender<Option<WriteFault>>,
    counters: &Counters,
    deferred: &Mutex<Deferred>,
) {
    WRITER_FAULT.with(|slot| *slot.borrow_mut() = Some(None));
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    while let Some(first) = jobs.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut outcome = run_group(&conn, &mut batch, path, counters, deferred);
        // A caller that hears of a failure can already see it in `Store::write_fault`.
        let answers = std::mem::take(&mut outcome.answers);
        record_outcome(faults, outcome, path);
        for (completion, answer) in answers {
            completion(answer);
        }
    }
    // What is still deferred is committed before the store closes.
    let pending = !deferred
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .jobs
        .is_empty();
    if pending {
        deferred.lock().unwrap_or_else(|e| e.into_inner()).force = true;
        let outcome = run_group(&conn, &mut batch, path, counters, deferred);
        record_outcome(faults, outcome, path);
    }
    // Leave the WAL folded into the main file so a copy of the .sqlite alone is complete.
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
}

/// What a group commit meant for the store's health, and the answers to give.
#[derive(Default)]
struct GroupOutcome {
    /// A storage fault met by a request or by the commit itself (the last one wins, a damaged
    /// file over anything else).
    fault: Option<(WriteFaultKind, String)>,
    /// Something was written and committed.
    wrote: bool,
    /// Each request's answer, given after the fault state is updated.
    answers: Vec<(Completion, Result<(), StoreError>)>,
}

impl GroupOutcome {
    fn answer(&mut self, completion: Completion, result: Result<(), StoreError>) {
        self.answers.push((completion, result));
    }

    fn fault(&mut self, kind: WriteFaultKind, error: String) {
        if !matches!(self.fault, Some((WriteFaultKind::Corrupt, _))) {
            self.fault = Some((kind, error));
        }
    }
}

/// Keeps [`Store::write_fault`] up to date: a fault starts or continues it; a group that wrote
/// without a fault ends it, except for a damaged file, which stays damaged.
fn record_outcome(faults: &watch::Sender<Option<WriteFault>>, outcome: GroupOutcome, path: &Path) {
    faults.send_if_modified(|current| match (outcome.fault, current.as_mut()) {
        (Some((kind, error)), Some(fault)) => {
            if fault.kind != WriteFaultKind::Corrupt {
                fault.kind = kind;
            }
            fault.error = error;
            fault.failures += 1;
            true
        }
        (Some((kind, error)), None) => {
            tracing::error!(path = %path.display(), kind = kind.as_str(), %error, advice = kind.advice(), "database writes are failing");
            *current = Some(WriteFault {
                kind,
                error,
                since: Instant::now(),
                failures: 1,
            });
            true
        }
        (None, Some(fault)) if outcome.wrote && fault.kind != WriteFaultKind::Corrupt => {
            tracing::info!(path = %path.display(), failures = fault.failures, "database writes work again");
            *current = None;
            true
        }
        (None, _) => false,
    });
}

/// Answers every request of `batch` with `e`, a failed `BEGIN IMMEDIATE`: none of them ran.
fn fail_batch(outcome: &mut GroupOutcome, batch: &mut Vec<Job>, path: &Path, e: &rusqlite::Error) {
    if let Some(kind) = failed_commit_fault(e) {
        outcome.fault(kind, e.to_string());
    }
    for job in batch.drain(..) {
        let (_, completion) = job(None);
        outcome.answer(
            completion,
            Err(StoreError::from_sqlite(path, clone_error(e))),
        );
    }
    take_noted_fault();
}

/// Runs a group of jobs in one transaction; their answers are in the outcome, to be given once
/// the store's health reflects the group (see [`writer_loop`]).
fn run_group(
    conn: &Connection,
    batch: &mut Vec<Job>,
    path: &Path,
    counters: &Counters,
    deferred: &Mutex<Deferred>,
) -> GroupOutcome {
    let mut outcome = GroupOutcome::default();
    take_noted_fault();
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        tracing::error!(path = %path.display(), error = %e, "cannot start a write transaction");
        fail_batch(&mut outcome, batch, path, &e);
        return outcome;
    }
    let changes_before_deferred = conn.total_changes();
    run_deferred(conn, deferred, path);
    if conn.is_autocommit() {
        // SQLite abandoned the transaction under a deferred write (disk full, I/O error):
        // the deferred writes are lost, the requests get a transaction of their own.
        tracing::error!(path = %path.display(), "SQLite rolled back the deferred writes");
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            fail_batch(&mut outcome, batch, path, &e);
            return outcome;
        }
    }
    let mut completions: Vec<Completion> = Vec::with_capacity(batch.len());
    let mut wrote = conn.total_changes() > changes_before_deferred;
    let mut jobs = std::mem::take(batch).into_iter();
    while let Some(job) = jobs.next() {
        if let Err(e) = conn.execute_batch("SAVEPOINT job") {
            if let Some(kind) = WriteFaultKind::of(&e) {
                outcome.fault(kind, e.to_string());
            }
            let (_, completion) = job(None);
            outcome.answer(completion, Err(StoreError::from_sqlite(path, e)));
            continue;
        }
        let changes_before = conn.total_changes();
        let (ok, completion) = job(Some(conn));
        if let Some((kind, error)) = take_noted_fault() {
            outcome.fault(kind, error);
        }
        if conn.is_autocommit() {
            // SQLite abandoned the whole transaction (disk full, I/O error): nothing of this
            // group was kept, so nobody may hear "ok". The rest gets a fresh transaction.
            tracing::error!(path = %path.display(), "SQLite rolled back a group commit");
            if outcome.fault.is_none() {
                outcome.fault(
                    WriteFaultKind::Other,
                    "SQLite abandoned a transaction (disk full or I/O error)".into(),
                );
            }
            let rolled_back = || StoreError::RolledBack {
                path: path.to_owned(),
            };
            outcome.answer(completion, Err(rolled_back()));
            for c in completions.drain(..) {
                outcome.answer(c, Err(rolled_back()));
            }
            batch.extend(jobs);
            if !batch.is_empty() {
                let rest = run_group(conn, batch, path, counters, deferred);
                if let Some((kind, error)) = rest.fault {
                    outcome.fault(kind, error);
                }
                outcome.wrote = rest.wrote;
                outcome.answers.extend(rest.answers);
            }
            return outcome;
        }
        let finish = if ok {
            "RELEASE job"
        } else {
            "ROLLBACK TO job; RELEASE job"
        };
        if let Err(e) = conn.execute_batch(finish) {
            tracing::error!(path = %path.display(), error = %e, "savepoint failed");
        }
        wrote |= ok && conn.total_changes() > changes_before;
        completions.push(completion);
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => {
            counters.groups.fetch_add(1, Ordering::Relaxed);
            counters
                .requests
                .fetch_add(completions.len() as u64, Ordering::Relaxed);
            outcome.wrote = wrote;
            for c in completions {
                outcome.answer(c, Ok(()));
            }
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            tracing::error!(path = %path.display(), error = %e, "group commit failed; every request in it was refused");
            if let Some(kind) = failed_commit_fault(&e) {
                outcome.fault(kind, e.to_string());
            }
            for c in completions {
                outcome.answer(c, Err(StoreError::from_sqlite(path, clone_error(&e))));
            }
        }
    }
    take_noted_fault();
    outcome
}

/// The fault a failed `BEGIN` or `COMMIT` stands for: its storage fault, or `Other`, except
/// for a lock held too long by another process (contention, not a failing store).
fn failed_commit_fault(e: &rusqlite::Error) -> Option<WriteFaultKind> {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => None,
        _ => Some(WriteFaultKind::of(e).unwrap_or(WriteFaultKind::Other)),
    }
}

fn clone_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, msg) => {
            rusqlite::Error::SqliteFailure(*code, msg.clone())
        }
        other => {
            rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(1), Some(other.to_string()))
        }
    }
}

//! The site's SQLite store: one file per site, one writer thread, group commit.
//!
//! All writes go through [`Store::write`]: a closure that runs inside a transaction on the
//! writer thread. The writer drains whatever is queued (up to `max_batch`) into one
//! `BEGIN IMMEDIATE` transaction, runs each closure inside its own savepoint (so one refused
//! request does not undo the others), commits once with `synchronous=FULL`, and only then
//! answers each caller. An answer of `Ok` therefore means "durable on disk".
//!
//! Reads run on separate read-only connections (WAL lets them proceed while the writer works).
//! Nothing here knows about MQTT, devices or the clock; domain rules live in `hub-core`.

pub mod alerts;
pub mod device_input;
pub mod ledger;
pub mod outbox;
pub mod pickup;
pub mod receiving;
mod schema;
pub mod sku;
pub mod stream;
pub mod trace;

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

pub use outbox::sql as sql_error;

/// Oldest SQLite the hub accepts: 3.51.3 fixes the WAL-reset corruption bug.
pub const MIN_SQLITE_VERSION: i32 = 3_051_003;

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
    pub fn from_sqlite(path: &Path, source: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode;
        let path = path.to_owned();
        match source.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => StoreError::NotADatabase { path },
            Some(ErrorCode::DiskFull) => StoreError::DiskFull { path },
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly { path, source },
            _ => StoreError::Sqlite { path, source },
        }
    }
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

struct Inner {
    path: PathBuf,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.jobs.lock().map(|mut j| j.take()).ok();
        if let Some(handle) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = handle.join();
        }
    }
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

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // WAL keeps readers off the writer's back; FULL makes each commit survive a power cut; the
    // journal size limit keeps the WAL from growing on an SD card after a burst.
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         PRAGMA synchronous=FULL;
         PRAGMA foreign_keys=ON;
         PRAGMA journal_size_limit=16777216;",
    )?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the database of `site`, migrates it, starts the writer.
    pub fn open(path: &Path, site: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        check_sqlite_version()?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
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
        schema::migrate(&mut conn, path)?;
        schema::bind_site(&conn, path, site)?;
        stream::bind(&mut conn, path)?;

        let (tx, rx) = mpsc::channel::<Job>(options.queue_capacity.max(1));
        let max_batch = options.max_batch.max(1);
        let writer_path = path.to_owned();
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(conn, rx, max_batch, &writer_path))
            .map_err(|e| StoreError::CreateDir {
                path: path.to_owned(),
                source: e,
            })?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                jobs: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(writer)),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
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
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
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
            let result = f(conn);
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
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
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
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let (job, reply) = Self::make_job(f);
        self.sender()?
            .blocking_send(job)
            .map_err(|_| StoreError::Closed)?;
        reply.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on a read-only connection (blocking; call from a blocking context).
    pub fn read_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<StoreError>,
        F: FnOnce(&Connection) -> Result<T, E>,
    {
        let pooled = self.inner.readers.lock().ok().and_then(|mut r| r.pop());
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.inner.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|e| StoreError::from_sqlite(&self.inner.path, e))?;
                conn.busy_timeout(std::time::Duration::from_secs(5))
                    .map_err(|e| StoreError::from_sqlite(&self.inner.path, e))?;
                conn
            }
        };
        let result = f(&conn);
        if let Ok(mut readers) = self.inner.readers.lock()
            && readers.len() < 4
        {
            readers.push(conn);
        }
        result
    }

    /// Runs a read on the blocking pool, off the async workers.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read_blocking(f))
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
            readers.clear();
        }
    }
}

fn writer_loop(conn: Connection, mut jobs: mpsc::Receiver<Job>, max_batch: usize, path: &Path) {
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    while let Some(first) = jobs.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_group(&conn, &mut batch, path);
    }
    // Leave the WAL folded into the main file so a copy of the .sqlite alone is complete.
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
}

/// Runs a group of jobs in one transaction and answers each after the commit.
fn run_group(conn: &Connection, batch: &mut Vec<Job>, path: &Path) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        tracing::error!(path = %path.display(), error = %e, "cannot start a write transaction");
        for job in batch.drain(..) {
            let (_, completion) = job(None);
            completion(Err(StoreError::from_sqlite(path, clone_error(&e))));
        }
        return;
    }
    let mut completions: Vec<Completion> = Vec::with_capacity(batch.len());
    let mut jobs = std::mem::take(batch).into_iter();
    while let Some(job) = jobs.next() {
        if let Err(e) = conn.execute_batch("SAVEPOINT job") {
            let (_, completion) = job(None);
            completion(Err(StoreError::from_sqlite(path, e)));
            continue;
        }
        let (ok, completion) = job(Some(conn));
        if conn.is_autocommit() {
            // SQLite abandoned the whole transaction (disk full, I/O error): nothing of this
            // group was kept, so nobody may hear "ok". The rest gets a fresh transaction.
            tracing::error!(path = %path.display(), "SQLite rolled back a group commit");
            completion(Err(StoreError::RolledBack {
                path: path.to_owned(),
            }));
            for c in completions.drain(..) {
                c(Err(StoreError::RolledBack {
                    path: path.to_owned(),
                }));
            }
            batch.extend(jobs);
            if !batch.is_empty() {
                run_group(conn, batch, path);
            }
            return;
        }
        let finish = if ok {
            "RELEASE job"
        } else {
            "ROLLBACK TO job; RELEASE job"
        };
        if let Err(e) = conn.execute_batch(finish) {
            tracing::error!(path = %path.display(), error = %e, "savepoint failed");
        }
        completions.push(completion);
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => completions.into_iter().for_each(|c| c(Ok(()))),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            tracing::error!(path = %path.display(), error = %e, "group commit failed; every request in it was refused");
            for c in completions {
                c(Err(StoreError::from_sqlite(path, clone_error(&e))));
            }
        }
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

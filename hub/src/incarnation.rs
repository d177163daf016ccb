//! The site's stream marker: a small file beside the database that remembers which stream
//! (incarnation, see `store::stream`) the site numbers its events in and how far it had got,
//! so that a database that went missing or back in time is noticed at start-up instead of
//! silently numbering events again from a number central already holds.
//!
//! `<data_dir>/hub-<site>.stream` is JSON: the site, the stream id, when the stream was
//! created, a high-water sequence number and when that was recorded. It is written atomically
//! (temporary file, fsync, rename, fsync of the folder) whenever a store is opened through
//! [`open_store`], by the daemon when the outbox counter passes a multiple of 1,000 or at most
//! every five minutes while events are recorded, and at a clean stop: a few small writes an
//! hour at most, cheap on an SD card. Its high-water mark is always a number the database had
//! durably committed, so the database it describes is never below it.
//!
//! At start-up ([`open_store`]):
//! - the database is missing or empty but the marker exists: refuse, saying which stream and
//!   what to do (restore the backup, or `hub run --new-database`, which starts a new stream
//!   and reports it upstream as `stream_started`, reason `new_database`);
//! - the database's stream is the marker's but its outbox counter is below the high-water
//!   mark (a restored backup went back in time): the database starts a new stream that
//!   continues its own up to its counter, reported as `stream_started`, reason `rewound`;
//! - the database belongs to another stream than the marker's (another copy put in place):
//!   the same, reason `replaced`;
//! - otherwise, or without a marker (first start, first start after an upgrade): carry on.
//!
//! A rewind the marker was too stale to notice still shows at central: the reused sequence
//! numbers arrive with other event ids than the ones it holds, and central keeps them as
//! conflicts instead of dropping them (see the `central` crate).

use crate::config::Config;
use crate::store::stream::{self as stream_store, DatabaseFile, StreamInfo, position};
use crate::store::{Store, StoreError, StoreOptions, outbox};
use hub_core::{DomainEvent, Timestamp};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub use hub_contract::stored::StreamMarker as Marker;

/// A database that is missing or empty where the marker knows a stream.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to start: database {} {state}, but the stream marker {} says site '{site}' has \
     numbered its events in stream {stream} since {since} and had reached event #{high_water} \
     by {recorded}. A new empty database would number events from #1 again. Restore the \
     database from its backup (see the README, \"Where data lives\"), or, to start a new \
     database on purpose, run `hub run --new-database` once: its events get a new stream and \
     central keeps the old stream's events apart",
    db.display(),
    marker.display()
)]
pub struct MissingDatabase {
    pub db: PathBuf,
    /// `does not exist`, `is empty (0 bytes)`, …
    pub state: String,
    pub marker: PathBuf,
    pub site: String,
    pub stream: String,
    pub since: String,
    pub high_water: i64,
    pub recorded: String,
}

/// Why the store could not be opened safely.
#[derive(Debug, thiserror::Error)]
pub enum IncarnationError {
    #[error(transparent)]
    DatabaseMissing(Box<MissingDatabase>),
    #[error(
        "cannot use the stream marker {path}: {detail}; the hub writes it beside its database. \
         If the database in that folder is the right one, move the marker aside and start again \
         (a new one is written)"
    )]
    BadMarker { path: PathBuf, detail: String },
    #[error(
        "cannot write the stream marker {path}: {source}; check that the data directory is \
         writable and not full"
    )]
    WriteMarker {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads the marker; `None` when there is none.
pub fn read_marker(path: &Path) -> Result<Option<Marker>, IncarnationError> {
    let bad = |detail: String| IncarnationError::BadMarker {
        path: path.to_owned(),
        detail,
    };
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(format!("cannot read it: {e}"))),
    };
    hub_contract::stored::decode_marker(&text)
        .map(Some)
        .map_err(|e| bad(format!("it is not a stream marker: {}", e.source)))
}

/// Writes the marker atomically: a temporary file of its own beside it (two hub processes on
/// one site, e.g. two CLI commands, may write at once), fsync, rename over it, fsync of the
/// folder. A crash leaves either the old marker or the new one, never a torn one.
pub fn write_marker(path: &Path, marker: &Marker) -> Result<(), IncarnationError> {
    let failed = |source| IncarnationError::WriteMarker {
        path: path.to_owned(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let json = hub_contract::stored::encode_marker(marker);
    let write = || -> std::io::Result<()> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut file = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(dir)?;
        file.write_all(&json)?;
        file.as_file().sync_all()?;
        file.persist(path).map_err(|e| e.error)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(failed)
}

fn marker_for(site: &str, info: &StreamInfo, last_seq: i64, now: Timestamp) -> Marker {
    Marker {
        site: site.to_owned(),
        stream: info.id.clone(),
        stream_created_at_ms: info.created_at.millis(),
        high_water_seq: last_seq,
        recorded_at_ms: now.millis(),
    }
}

/// Records the store's current stream and counter in the marker (blocking).
pub fn record(
    store: &Store,
    path: &Path,
    site: &str,
    now: Timestamp,
) -> Result<Marker, IncarnationError> {
    let (info, last) = store.read_blocking(position)?;
    let marker = marker_for(site, &info, last, now);
    write_marker(path, &marker)?;
    Ok(marker)
}

/// What start-up does with the database it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Keep numbering in the database's stream.
    Carry,
    /// A new database started on purpose where the marker knew a stream: say so upstream.
    NewDatabase,
    /// The database must number its events in a new stream (`rewound` or `replaced`).
    NewStream(&'static str),
}

/// The start-up rule. `fresh`: the store was just created on a missing or empty file.
fn decide(marker: Option<&Marker>, fresh: bool, db_stream: &str, last_seq: i64) -> Next {
    match marker {
        None => Next::Carry,
        Some(_) if fresh => Next::NewDatabase,
        Some(m) if m.stream != db_stream => Next::NewStream("replaced"),
        Some(m) if last_seq < m.high_water_seq => Next::NewStream("rewound"),
        Some(_) => Next::Carry,
    }
}

fn seen(m: &Marker) -> String {
    format!(
        "stream {} (events up to at least #{}, recorded {})",
        m.stream,
        m.high_water_seq,
        Timestamp(m.recorded_at_ms).to_rfc3339()
    )
}

/// Opens the site's store, checking it against the marker first and recording it in the
/// marker after (see the module documentation). `new_database`: a missing or empty database
/// may be started anew although the marker knows a stream.
pub fn open_store(
    config: &Config,
    new_database: bool,
    now: Timestamp,
) -> Result<Store, IncarnationError> {
    let db = config.database_path();
    let marker_path = config.marker_path();
    let site = config.site.id.as_str();
    let marker = read_marker(&marker_path)?;
    if let Some(m) = &marker
        && m.site != site
    {
        return Err(IncarnationError::BadMarker {
            path: marker_path,
            detail: format!("it is the marker of site '{}', not of '{site}'", m.site),
        });
    }
    let file = stream_store::inspect(&db)?;
    let fresh = match (&file, &marker) {
        (DatabaseFile::Present, _) => {
            if new_database {
                tracing::warn!(db = %db.display(), "--new-database ignored: the database exists and is used as it is");
            }
            false
        }
        (_, Some(m)) if !new_database => {
            let state = match file {
                DatabaseFile::Empty { bytes: 0 } => "is empty (0 bytes)".to_owned(),
                DatabaseFile::Empty { bytes } => {
                    format!("holds no hub data (an SQLite file of {bytes} bytes without tables)")
                }
                _ => "does not exist".to_owned(),
            };
            return Err(IncarnationError::DatabaseMissing(Box::new(
                MissingDatabase {
                    db,
                    state,
                    marker: marker_path,
                    site: site.to_owned(),
                    stream: m.stream.clone(),
                    since: Timestamp(m.stream_created_at_ms).to_rfc3339(),
                    high_water: m.high_water_seq,
                    recorded: Timestamp(m.recorded_at_ms).to_rfc3339(),
                },
            )));
        }
        _ => true,
    };
    let store = Store::open(
        &db,
        site,
        &StoreOptions {
            queue_capacity: config.store.queue_capacity,
            max_batch: config.store.max_batch,
        },
    )?;
    match check(&store, marker.as_ref(), fresh, now) {
        Ok(()) => {}
        Err(e) => {
            store.close();
            return Err(e);
        }
    }
    if let Err(e) = record(&store, &marker_path, site, now) {
        store.close();
        return Err(e);
    }
    Ok(store)
}

/// Applies the start-up rule to an open store: starts a new stream or reports the new
/// database, with the event that tells central, in one write.
fn check(
    store: &Store,
    marker: Option<&Marker>,
    fresh: bool,
    now: Timestamp,
) -> Result<(), IncarnationError> {
    let (info, last) = store.read_blocking(position)?;
    let next = decide(marker, fresh, &info.id, last);
    let Some(m) = marker.cloned() else {
        return Ok(());
    };
    match next {
        Next::Carry => Ok(()),
        Next::NewDatabase => {
            let message = format!(
                "started on a new database on purpose (hub run --new-database); this stream \
                 numbers events from #1, and {} is closed: its events at central stay as they are",
                seen(&m)
            );
            tracing::warn!(stream = %info.id, previous_stream = %m.stream, "{message}");
            let event = DomainEvent::StreamStarted {
                stream: info.id.clone(),
                reason: "new_database".into(),
                continues_stream: None,
                base_seq: 0,
                previous_stream: Some(m.stream.clone()),
                previous_high_water_seq: Some(m.high_water_seq),
                previous_recorded_at: Some(Timestamp(m.recorded_at_ms)),
                message,
            };
            store.write_blocking(move |c| outbox::append(c, &event, now))?;
            Ok(())
        }
        Next::NewStream(reason) => {
            let message = if reason == "rewound" {
                format!(
                    "stream {} was rewound from #{} to #{last} at {}: the database went back in \
                     time (a restored backup) and its last event is #{last}, but the stream had \
                     reached at least #{} by {}. Events are numbered in a new stream from #{}; \
                     events after #{last} in stream {} may differ from this stream's and are kept \
                     apart at central",
                    m.stream,
                    m.high_water_seq,
                    now.to_rfc3339(),
                    m.high_water_seq,
                    Timestamp(m.recorded_at_ms).to_rfc3339(),
                    last + 1,
                    m.stream
                )
            } else {
                format!(
                    "the database belongs to stream {} (last event #{last}), not to {} that the \
                     site recorded last: another copy was put in place. Events are numbered in a \
                     new stream from #{}, continuing stream {} up to #{last}",
                    info.id,
                    seen(&m),
                    last + 1,
                    info.id
                )
            };
            let continues = info.id.clone();
            let started = store.write_blocking(move |c| {
                let new = stream_store::start_new(c, Some(&continues), last)?;
                outbox::append(
                    c,
                    &DomainEvent::StreamStarted {
                        stream: new.id.clone(),
                        reason: reason.into(),
                        continues_stream: Some(continues.clone()),
                        base_seq: last,
                        previous_stream: Some(m.stream.clone()),
                        previous_high_water_seq: Some(m.high_water_seq),
                        previous_recorded_at: Some(Timestamp(m.recorded_at_ms)),
                        message: message.clone(),
                    },
                    now,
                )?;
                Ok::<_, StoreError>((new, message))
            })?;
            let (new, message) = started;
            tracing::warn!(reason, stream = %new.id, continues = %info.id, base_seq = last, "{message}");
            Ok(())
        }
    }
}

/// How often the daemon looks at the outbox counter for the marker.
const MARKER_CHECK: Duration = Duration::from_secs(10);
/// The longest the marker lags behind recorded events.
const MARKER_MAX_AGE: Duration = Duration::from_secs(300);

/// Whether the marker, last written with `written_seq` of `written_stream` `age` ago, must be
/// written again for `stream` at `last_seq`: another stream, a multiple of 1,000 passed, or
/// events recorded and [`MARKER_MAX_AGE`] gone by.
fn marker_due(
    written_stream: &str,
    written_seq: i64,
    age: Duration,
    stream: &str,
    last_seq: i64,
) -> bool {
    written_stream != stream
        || last_seq / 1000 > written_seq / 1000
        || (last_seq != written_seq && age >= MARKER_MAX_AGE)
}

/// Keeps the marker's high-water mark close behind the outbox counter while the daemon runs:
/// written when the counter passes a multiple of 1,000 and at most every five minutes while
/// it moves (and once at start). The daemon writes it a last time at a clean stop.
pub async fn marker_task(store: Store, path: PathBuf, site: String, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(MARKER_CHECK);
    let mut written: Option<(String, i64, tokio::time::Instant)> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (info, last) = match store.read(position).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the outbox counter for the stream marker");
                continue;
            }
        };
        let due = written
            .as_ref()
            .is_none_or(|(stream, seq, at)| marker_due(stream, *seq, at.elapsed(), &info.id, last));
        if !due {
            continue;
        }
        let marker = marker_for(&site, &info, last, crate::clock::now());
        let target = path.clone();
        match tokio::task::spawn_blocking(move || write_marker(&target, &marker)).await {
            Ok(Ok(())) => written = Some((info.id, last, tokio::time::Instant::now())),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot update the stream marker"),
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(stream: &str, high_water: i64) -> Marker {
        Marker {
            site: "s1".into(),
            stream: stream.into(),
            stream_created_at_ms: 1,
            high_water_seq: high_water,
            recorded_at_ms: 2,
        }
    }

    #[test]
    fn the_start_up_rule() {
        let m = marker("S", 100);
        assert_eq!(decide(None, true, "S", 0), Next::Carry);
        assert_eq!(decide(None, false, "S", 5), Next::Carry);
        assert_eq!(decide(Some(&m), false, "S", 100), Next::Carry);
        assert_eq!(decide(Some(&m), false, "S", 250), Next::Carry);
        assert_eq!(decide(Some(&m), false, "S", 99), Next::NewStream("rewound"));
        assert_eq!(
            decide(Some(&m), false, "T", 250),
            Next::NewStream("replaced")
        );
        assert_eq!(decide(Some(&m), true, "T", 0), Next::NewDatabase);
    }

    #[test]
    fn the_marker_follows_the_counter_without_wearing_the_card() {
        let soon = Duration::from_secs(20);
        assert!(!marker_due("S", 1200, soon, "S", 1200));
        assert!(
            !marker_due("S", 1200, soon, "S", 1999),
            "same thousand, recently"
        );
        assert!(
            marker_due("S", 1200, soon, "S", 2000),
            "passed a multiple of 1,000"
        );
        assert!(
            !marker_due("S", 1200, MARKER_MAX_AGE, "S", 1200),
            "nothing new"
        );
        assert!(
            marker_due("S", 1200, MARKER_MAX_AGE, "S", 1201),
            "new events, five minutes"
        );
        assert!(marker_due("S", 1200, soon, "T", 5), "another stream");
    }

    #[test]
    fn the_marker_is_replaced_whole_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub-s1.stream");
        assert_eq!(read_marker(&path).unwrap(), None);
        write_marker(&path, &marker("S", 1)).unwrap();
        write_marker(&path, &marker("S", 2000)).unwrap();
        assert_eq!(read_marker(&path).unwrap(), Some(marker("S", 2000)));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["hub-s1.stream"], "no temporary file is left behind");
        std::fs::write(&path, b"{\"site\":").unwrap();
        let err = read_marker(&path).unwrap_err().to_string();
        assert!(
            err.contains("hub-s1.stream") && err.contains("move the marker aside"),
            "{err}"
        );
    }
}

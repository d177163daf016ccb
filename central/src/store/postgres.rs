//! Central's PostgreSQL store, for a fleet: any number of consumers write one database.
//!
//! The same rules as the SQLite store (module docs of [`crate::store`]), in the standard
//! exactly-once form: a batch is one transaction that locks its sites' rows (in site order, so
//! two consumers never deadlock on each other), inserts the new events with
//! `ON CONFLICT DO NOTHING`, and moves each stream's contiguous high-water mark in the same
//! transaction; the consumer acknowledges the batch to the broker only after the commit.
//! Whatever consumer receives whichever copy, a `(site, stream, seq)` is stored once.
//!
//! Events are partitioned by month of the hub's event time (`at_ms`; a copy of an event always
//! carries the same time), so retention drops whole partitions; months are created ahead at
//! open, and rows outside them land in the default partition. Migrations are versioned in
//! `central_schema`, applied under an advisory lock so consumers starting together apply each
//! once.
//!
//! The API is synchronous like [`EventStore`]'s (the consumer calls it from a blocking
//! thread): the store owns a small runtime that drives its one connection. A connection lost
//! (PostgreSQL restarted) is an error for the call that met it and is opened again by the next.

use super::{
    Arrival, BatchCounts, EventStore, Incoming, Quarantined, ResendClaim, SiteSyncState,
    StoreError, StoredEvent, classify, excerpt, topic_site,
};
use super::{HubReport, read_hub_report};
use crate::report::{CentralReport, ConflictReport, Gaps, SiteReport, StreamReport};
use hub_contract::{self as contract, LEGACY_STREAM, UpTopic};
use std::collections::{BTreeSet, HashMap, HashSet};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, GenericClient, NoTls, Statement};

/// Versioned migrations, applied in order, each once (`central_schema`). Append only.
const MIGRATIONS: &[&str] = &[
    // 1: sites, streams, events (partitioned by month), conflicts, quarantine, resend leases.
    r#"
CREATE TABLE site (
    site TEXT PRIMARY KEY,
    current_stream TEXT,
    arrivals BIGINT NOT NULL DEFAULT 0,
    hub_last_seq BIGINT,
    hub_first_undelivered BIGINT,
    status TEXT,
    status_at_ms BIGINT,
    heartbeat TEXT,
    heartbeat_at_ms BIGINT
);
CREATE TABLE stream (
    site TEXT NOT NULL,
    stream TEXT NOT NULL,
    continues TEXT,
    base_seq BIGINT NOT NULL DEFAULT 0,
    first_seen_at BIGINT NOT NULL,
    contiguous_seq BIGINT NOT NULL DEFAULT 0,
    max_seq BIGINT NOT NULL DEFAULT 0,
    received BIGINT NOT NULL DEFAULT 0,
    duplicates BIGINT NOT NULL DEFAULT 0,
    conflicts BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (site, stream)
);
CREATE TABLE event (
    site TEXT NOT NULL,
    stream TEXT NOT NULL,
    seq BIGINT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    lane TEXT NOT NULL,
    withheld TEXT,
    body TEXT,
    arrival BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (site, stream, seq, at_ms)
) PARTITION BY RANGE (at_ms);
CREATE TABLE event_default PARTITION OF event DEFAULT;
CREATE TABLE conflict (
    site TEXT NOT NULL,
    stream TEXT NOT NULL,
    seq BIGINT NOT NULL,
    id TEXT NOT NULL,
    stored_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    lane TEXT NOT NULL,
    withheld TEXT,
    body TEXT,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (site, stream, seq, id)
);
CREATE TABLE quarantine (
    n BIGSERIAL PRIMARY KEY,
    topic TEXT NOT NULL,
    site TEXT,
    reason TEXT NOT NULL,
    excerpt TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE TABLE resend_lease (
    site TEXT NOT NULL,
    stream TEXT NOT NULL,
    from_seq BIGINT NOT NULL,
    to_seq BIGINT NOT NULL,
    requested_at BIGINT NOT NULL,
    requested_by TEXT NOT NULL,
    PRIMARY KEY (site, stream, from_seq)
);
"#,
    // 2: what the fleet view reads: how long a stream's gap is open, events per site and day.
    r#"
ALTER TABLE stream ADD COLUMN gap_since BIGINT;
ALTER TABLE site ADD COLUMN status_hub_at BIGINT;
ALTER TABLE site ADD COLUMN heartbeat_hub_at BIGINT;
CREATE TABLE site_day (
    site TEXT NOT NULL,
    day BIGINT NOT NULL,
    events BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (site, day)
);
CREATE INDEX quarantine_by_site ON quarantine (site);
"#,
];

/// Months of event partitions created ahead of the current one.
const MONTHS_AHEAD: i64 = 2;

/// Central's PostgreSQL database.
pub struct PgStore {
    runtime: Option<tokio::runtime::Runtime>,
    config: String,
    client: Option<Client>,
    /// The ingest statements, prepared on `client` (dropped with it).
    prepared: Option<Box<Prepared>>,
}

impl PgStore {
    /// Connects, applies any missing migration and makes sure this month's and the next
    /// months' event partitions exist. `config` is a `tokio-postgres` connection string
    /// (`host=… port=… user=… dbname=…` or a `postgresql://` URL).
    pub fn open(config: &str, now_ms: i64) -> Result<PgStore, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::PostgresSetup(format!("cannot start its runtime: {e}")))?;
        let mut store = PgStore {
            runtime: Some(runtime),
            config: config.to_owned(),
            client: None,
            prepared: None,
        };
        store.with_client(|client| Box::pin(migrate(client, now_ms)))?;
        Ok(store)
    }

    /// Connects for reading only (reports, the fleet view): no migration, no partition is
    /// created. The database must have been opened by a consumer ([`open`](Self::open)) once.
    pub fn open_for_reading(config: &str) -> Result<PgStore, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::PostgresSetup(format!("cannot start its runtime: {e}")))?;
        let mut store = PgStore {
            runtime: Some(runtime),
            config: config.to_owned(),
            client: None,
            prepared: None,
        };
        store.connect()?;
        let known = store.read(|c| {
            Box::pin(async move {
                Ok(
                    c.query_one("SELECT to_regclass('central_schema') IS NOT NULL", &[])
                        .await?
                        .get::<_, bool>(0),
                )
            })
        })?;
        if !known {
            return Err(StoreError::PostgresSetup(
                "the database has no central schema yet; start `central run --postgres` on it first".into(),
            ));
        }
        Ok(store)
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("runtime lives until drop")
    }

    fn connect(&mut self) -> Result<(), StoreError> {
        if self.client.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(());
        }
        self.client = None;
        self.prepared = None;
        let runtime = self.runtime.as_ref().expect("runtime lives until drop");
        let (client, connection) =
            runtime.block_on(tokio_postgres::connect(&self.config, NoTls))?;
        runtime.spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "central's PostgreSQL connection ended");
            }
        });
        self.client = Some(client);
        Ok(())
    }

    /// Runs `f` on a connected client (connecting first if needed); a lost connection is
    /// dropped so the next call connects again.
    fn with_client<T>(
        &mut self,
        f: impl for<'c> FnOnce(
            &'c mut Client,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, StoreError>> + 'c>,
        >,
    ) -> Result<T, StoreError> {
        self.connect()?;
        let runtime = self.runtime.as_ref().expect("runtime lives until drop");
        let client = self.client.as_mut().expect("connected");
        let out = runtime.block_on(f(client));
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
            self.prepared = None;
        }
        out
    }

    /// Reads with a connection of its own (reports take `&self`).
    fn read<T>(
        &self,
        f: impl for<'c> FnOnce(
            &'c Client,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, StoreError>> + 'c>,
        >,
    ) -> Result<T, StoreError> {
        if let Some(client) = self.client.as_ref().filter(|c| !c.is_closed()) {
            return self.runtime().block_on(f(client));
        }
        let (client, connection) = self
            .runtime()
            .block_on(tokio_postgres::connect(&self.config, NoTls))?;
        self.runtime().spawn(connection);
        self.runtime().block_on(f(&client))
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.client = None;
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn migrate(client: &mut Client, now_ms: i64) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    // One migrator at a time, whichever consumer starts first.
    tx.execute("SELECT pg_advisory_xact_lock(7261001)", &[])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS central_schema (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await?;
    let at: i32 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM central_schema", &[])
        .await?
        .get(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(at as usize) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO central_schema (version) VALUES ($1)",
            &[&(i as i32 + 1)],
        )
        .await?;
    }
    if at as usize > MIGRATIONS.len() {
        return Err(StoreError::PostgresSetup(format!(
            "the database has schema version {at}, newer than this central ({}); upgrade central",
            MIGRATIONS.len()
        )));
    }
    let (year, month) = year_month(now_ms);
    for ahead in 0..=MONTHS_AHEAD {
        let (y, m) = add_months(year, month, ahead);
        let (ny, nm) = add_months(y, m, 1);
        let name = format!("event_{y:04}_{m:02}");
        let exists: bool = tx
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
            .await?
            .get(0);
        // Rows of that month already in the default partition (events whose time was far
        // from the consumers' clock) stay there: a new partition may not overlap them.
        let (from, to) = (month_start_ms(y, m), month_start_ms(ny, nm));
        let in_default: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM event_default WHERE at_ms >= $1 AND at_ms < $2)",
                &[&from, &to],
            )
            .await?
            .get(0);
        if !exists && !in_default {
            tx.batch_execute(&format!(
                "CREATE TABLE {name} PARTITION OF event FOR VALUES FROM ({}) TO ({})",
                month_start_ms(y, m),
                month_start_ms(ny, nm)
            ))
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Days since the epoch of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn month_start_ms(y: i64, m: i64) -> i64 {
    days_from_civil(y, m, 1) * 86_400_000
}

fn year_month(ms: i64) -> (i64, i64) {
    let days = ms.div_euclid(86_400_000);
    // Civil from days (inverse of the above).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m)
}

fn add_months(y: i64, m: i64, n: i64) -> (i64, i64) {
    let total = y * 12 + (m - 1) + n;
    (total.div_euclid(12), total.rem_euclid(12) + 1)
}

/// The ingest path's statements, prepared once per connection (a batch then costs no parse
/// round trip, and its independent statements go out together, pipelined).
struct Prepared {
    ensure_sites: Statement,
    lock_sites: Statement,
    stream_state: Statement,
    insert_streams: Statement,
    insert_events: Statement,
    count_day: Statement,
    set_arrivals: Statement,
    update_streams: Statement,
}

impl Prepared {
    async fn new(c: &Client) -> Result<Prepared, StoreError> {
        Ok(Prepared {
            ensure_sites: c
                .prepare(
                    "INSERT INTO site (site) SELECT s FROM unnest($1::text[]) AS s ORDER BY s
                     ON CONFLICT DO NOTHING",
                )
                .await?,
            // The lock: a site's events are decided by one transaction at a time, and sites
            // are locked in order so two consumers never deadlock.
            lock_sites: c
                .prepare(
                    "SELECT site, arrivals FROM site WHERE site = ANY($1::text[]) ORDER BY site
                     FOR UPDATE",
                )
                .await?,
            // A statement of its own after the lock (not joined to it): under READ COMMITTED
            // it reads what the transaction that held the lock before committed.
            stream_state: c
                .prepare(
                    "SELECT site, stream, max_seq, contiguous_seq, continues IS NOT NULL FROM stream
                     WHERE site = ANY($1::text[])",
                )
                .await?,
            insert_streams: c
                .prepare(
                    "INSERT INTO stream (site, stream, first_seen_at)
                     SELECT site, stream, $3 FROM unnest($1::text[], $2::text[]) AS o(site, stream)
                     ON CONFLICT DO NOTHING RETURNING site, stream",
                )
                .await?,
            insert_events: c
                .prepare(
                    "INSERT INTO event (site, stream, seq, id, kind, at_ms, lane, withheld, body, arrival, received_at)
                     SELECT site, stream, seq, id, kind, at_ms, lane, withheld, body, arrival, $11
                     FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[],
                                 $7::text[], $8::text[], $9::text[], $10::bigint[])
                          AS r(site, stream, seq, id, kind, at_ms, lane, withheld, body, arrival)
                     ON CONFLICT DO NOTHING",
                )
                .await?,
            count_day: c
                .prepare(
                    "INSERT INTO site_day (site, day, events)
                     SELECT site, $3, n FROM unnest($1::text[], $2::bigint[]) AS d(site, n) ORDER BY site
                     ON CONFLICT (site, day) DO UPDATE SET events = site_day.events + excluded.events",
                )
                .await?,
            set_arrivals: c
                .prepare(
                    "UPDATE site SET arrivals = a.n FROM unnest($1::text[], $2::bigint[]) AS a(site, n)
                     WHERE site.site = a.site",
                )
                .await?,
            // Each stream of the batch once: counters, highest number, contiguous mark and
            // gap state together.
            update_streams: c
                .prepare(
                    "UPDATE stream t SET received = t.received + d.received,
                            duplicates = t.duplicates + d.duplicates,
                            conflicts = t.conflicts + d.conflicts,
                            max_seq = GREATEST(t.max_seq, d.max_seq),
                            contiguous_seq = GREATEST(t.contiguous_seq, d.contiguous),
                            gap_since = CASE
                                WHEN GREATEST(t.contiguous_seq, d.contiguous) < GREATEST(t.max_seq, d.max_seq)
                                THEN COALESCE(t.gap_since, $8) ELSE NULL END
                     FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[],
                                 $6::bigint[], $7::bigint[])
                          AS d(site, stream, received, duplicates, conflicts, max_seq, contiguous)
                     WHERE t.site = d.site AND t.stream = d.stream",
                )
                .await?,
        })
    }
}

/// An event of the batch, read.
struct NewEvent<'a> {
    site: &'a str,
    event: Box<contract::EventIn>,
}

/// A stream of the batch's sites as the transaction found it (under the site lock).
#[derive(Clone, Copy, Default)]
struct StreamState {
    max_seq: i64,
    contiguous_seq: i64,
    chained: bool,
}

/// What a batch changes in one stream.
#[derive(Default)]
struct StreamDelta {
    received: i64,
    duplicates: i64,
    conflicts: i64,
    max_seq: i64,
    fresh: Vec<i64>,
}

/// How a batch writes its new event rows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RowsBy {
    /// `COPY … FROM STDIN BINARY`: the rows were decided new under the site lock.
    Copy,
    /// `INSERT … ON CONFLICT DO NOTHING`: the fallback should a row be held after all (a
    /// stream's `max_seq` below what its events hold, e.g. after a hand edit).
    InsertOnConflict,
}

/// Column types of `event` as the COPY writes them.
const EVENT_COPY_TYPES: [Type; 11] = [
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::INT8,
];

async fn store_batch(
    client: &mut Client,
    p: &Prepared,
    batch: &[Arrival<'_>],
    now: i64,
    rows_by: RowsBy,
) -> Result<BatchCounts, StoreError> {
    let started = std::time::Instant::now();
    let mut counts = BatchCounts::default();
    let mut events: Vec<NewEvent<'_>> = Vec::new();
    let mut reports: Vec<(&str, UpTopic, String)> = Vec::new();
    let mut quarantine: Vec<(&Arrival<'_>, &'static str)> = Vec::new();
    let mut sites: BTreeSet<&str> = BTreeSet::new();
    for a in batch {
        match classify(a) {
            Ok(Incoming::Event { site, event }) => {
                sites.insert(site);
                events.push(NewEvent { site, event });
            }
            Ok(Incoming::Report { site, kind }) => {
                sites.insert(site);
                reports.push((site, kind, String::from_utf8_lossy(a.payload).into_owned()));
            }
            Err(reason) => {
                tracing::warn!(
                    topic = a.topic,
                    reason = reason.as_str(),
                    "central quarantined a message"
                );
                counts.quarantined(reason);
                quarantine.push((a, reason.as_str()));
            }
        }
    }
    let decoded = started.elapsed();
    let site_list: Vec<&str> = sites.iter().copied().collect();
    let by_site: [&(dyn ToSql + Sync); 1] = [&site_list];
    let mut tx = client.transaction().await?;
    let (mut locked, mut state_rows) = (Vec::new(), Vec::new());
    if !sites.is_empty() {
        // One round trip: the batch's sites locked in order, then its streams read (a
        // statement of its own: it sees what the previous holder of a lock committed).
        (locked, state_rows) = tokio::try_join!(
            tx.query(&p.lock_sites, &by_site),
            tx.query(&p.stream_state, &by_site),
        )?;
        if locked.len() < sites.len() {
            // A site seen for the first time: its row is created before any is locked, so
            // locks are still taken in site order (no deadlock between consumers).
            tx.rollback().await?;
            tx = client.transaction().await?;
            let (_, l, s) = tokio::try_join!(
                tx.execute(&p.ensure_sites, &by_site),
                tx.query(&p.lock_sites, &by_site),
                tx.query(&p.stream_state, &by_site),
            )?;
            (locked, state_rows) = (l, s);
        }
    }
    for (a, reason) in &quarantine {
        tx.execute(
            "INSERT INTO quarantine (topic, site, reason, excerpt, bytes, received_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &a.topic,
                &topic_site(a.topic),
                reason,
                &excerpt(a.payload),
                &(a.payload.len() as i64),
                &now,
            ],
        )
        .await?;
    }
    if sites.is_empty() {
        tx.commit().await?;
        return Ok(counts);
    }
    let locked_at = started.elapsed();
    let mut arrivals: HashMap<&str, i64> = HashMap::new();
    for row in &locked {
        let site: &str = row.get(0);
        if let Some(s) = sites.get(site) {
            arrivals.insert(s, row.get(1));
        }
    }
    let mut state: HashMap<(String, String), StreamState> = state_rows
        .iter()
        .map(|r| {
            (
                (r.get(0), r.get(1)),
                StreamState {
                    max_seq: r.get(2),
                    contiguous_seq: r.get(3),
                    chained: r.get(4),
                },
            )
        })
        .collect();
    // Streams, in arrival order (the first stream seen becomes the site's current one).
    let report_streams: Vec<(&str, String)> = reports
        .iter()
        .map(|(site, kind, text)| {
            (
                *site,
                read_hub_report(*kind, text)
                    .lineage
                    .stream
                    .unwrap_or_else(|| LEGACY_STREAM.into()),
            )
        })
        .collect();
    let mut seen = HashSet::new();
    let mut missing: Vec<(&str, &str)> = Vec::new();
    for (site, stream) in events
        .iter()
        .map(|e| (e.site, e.event.stream()))
        .chain(report_streams.iter().map(|(s, t)| (*s, t.as_str())))
    {
        if seen.insert((site, stream)) && !state.contains_key(&(site.to_owned(), stream.to_owned()))
        {
            missing.push((site, stream));
        }
    }
    // The batch's new streams in one statement; the first new one of a site without a current
    // stream becomes it.
    if !missing.is_empty() {
        let (o_site, o_stream): (Vec<&str>, Vec<&str>) = missing.iter().copied().unzip();
        let created: HashSet<(String, String)> = tx
            .query(&p.insert_streams, &[&o_site, &o_stream, &now])
            .await?
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let mut first: Vec<(&str, &str)> = Vec::new();
        for (site, stream) in &missing {
            let key = (site.to_string(), stream.to_string());
            if created.contains(&key) && !first.iter().any(|(s, _)| s == site) {
                first.push((site, stream));
            }
            state.entry(key).or_default();
        }
        if !first.is_empty() {
            let (f_site, f_stream): (Vec<&str>, Vec<&str>) = first.into_iter().unzip();
            tx.execute(
                "UPDATE site SET current_stream = f.stream FROM unnest($1::text[], $2::text[]) AS f(site, stream)
                 WHERE site.site = f.site AND site.current_stream IS NULL",
                &[&f_site, &f_stream],
            )
            .await?;
        }
    }
    // Which keys are already held, then decide each event in arrival order. Only numbers up
    // to a stream's highest held one can be held (the site rows are locked): a catch-up or
    // live batch asks the index for none of its events.
    let batch_state: HashMap<(&str, &str), StreamState> = seen
        .iter()
        .map(|(site, stream)| {
            let key = (site.to_string(), stream.to_string());
            (
                (*site, *stream),
                state.get(&key).copied().unwrap_or_default(),
            )
        })
        .collect();
    let max_held =
        |site: &str, stream: &str| batch_state.get(&(site, stream)).map_or(0, |s| s.max_seq);
    let maybe_held: Vec<&NewEvent<'_>> = events
        .iter()
        .filter(|e| e.event.seq <= max_held(e.site, e.event.stream()))
        .collect();
    let mut held_ids: Vec<(usize, String)> = Vec::new();
    if !maybe_held.is_empty() {
        let key_sites: Vec<&str> = maybe_held.iter().map(|e| e.site).collect();
        let key_streams: Vec<&str> = maybe_held.iter().map(|e| e.event.stream()).collect();
        let key_seqs: Vec<i64> = maybe_held.iter().map(|e| e.event.seq).collect();
        let rows = tx
            .query(
                "SELECT k.n, e.id FROM event e
                 JOIN unnest($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS k(site, stream, seq, n)
                   ON e.site = k.site AND e.stream = k.stream AND e.seq = k.seq",
                &[&key_sites, &key_streams, &key_seqs],
            )
            .await?;
        held_ids = rows
            .into_iter()
            .map(|row| ((row.get::<_, i64>(0) - 1) as usize, row.get(1)))
            .collect();
    }
    let mut held: HashMap<(&str, &str, i64), &str> = HashMap::with_capacity(events.len());
    for (n, id) in &held_ids {
        let e = maybe_held[*n];
        held.insert((e.site, e.event.stream(), e.event.seq), id);
    }
    let mut deltas: HashMap<(&str, &str), StreamDelta> = HashMap::new();
    let mut rows: Vec<(&NewEvent<'_>, i64)> = Vec::new();
    let mut conflicts: Vec<(&NewEvent<'_>, String)> = Vec::new();
    for e in &events {
        let stream = e.event.stream();
        let key = (e.site, stream, e.event.seq);
        let delta = deltas.entry((e.site, stream)).or_default();
        match held.get(&key) {
            None => {
                let n = arrivals.entry(e.site).or_insert(0);
                *n += 1;
                rows.push((e, *n));
                held.insert(key, &e.event.id);
                delta.received += 1;
                delta.max_seq = delta.max_seq.max(e.event.seq);
                delta.fresh.push(e.event.seq);
                counts.stored += 1;
            }
            Some(stored_id) if *stored_id == e.event.id => {
                delta.duplicates += 1;
                counts.duplicates += 1;
            }
            Some(stored_id) => conflicts.push((e, stored_id.to_string())),
        }
    }
    for (e, stored_id) in &conflicts {
        let stream = e.event.stream();
        let inserted = tx
            .execute(
                "INSERT INTO conflict (site, stream, seq, id, stored_id, kind, at_ms, lane, withheld, body, received_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
                &[
                    &e.site,
                    &stream,
                    &e.event.seq,
                    &e.event.id,
                    stored_id,
                    &e.event.kind,
                    &e.event.at_ms,
                    &e.event.lane.as_str(),
                    &e.event.withheld.as_ref().map(contract::Withheld::to_json),
                    &e.event.event.as_ref().map(|b| b.get().to_owned()),
                    &now,
                ],
            )
            .await?;
        let delta = deltas.entry((e.site, stream)).or_default();
        if inserted == 1 {
            counts.conflicts += 1;
            delta.conflicts += 1;
            tracing::warn!(site = e.site, stream, seq = e.event.seq, stored_id = %stored_id, id = %e.event.id,
                "an event arrived under a sequence number already held by another event; both are kept");
        } else {
            counts.duplicates += 1;
            delta.duplicates += 1;
        }
    }
    let decided = started.elapsed();
    // The new rows, the sites' arrival counters and daily counts: one round trip.
    if !rows.is_empty() {
        let r_site: Vec<&str> = rows.iter().map(|(e, _)| e.site).collect();
        let r_stream: Vec<&str> = rows.iter().map(|(e, _)| e.event.stream()).collect();
        let r_id: Vec<&str> = rows.iter().map(|(e, _)| e.event.id.as_str()).collect();
        let r_kind: Vec<&str> = rows.iter().map(|(e, _)| e.event.kind.as_str()).collect();
        let r_lane: Vec<&str> = rows.iter().map(|(e, _)| e.event.lane.as_str()).collect();
        let r_seq: Vec<i64> = rows.iter().map(|(e, _)| e.event.seq).collect();
        let r_at: Vec<i64> = rows.iter().map(|(e, _)| e.event.at_ms).collect();
        let r_arrival: Vec<i64> = rows.iter().map(|(_, n)| *n).collect();
        let r_withheld: Vec<Option<String>> = rows
            .iter()
            .map(|(e, _)| e.event.withheld.as_ref().map(contract::Withheld::to_json))
            .collect();
        let r_body: Vec<Option<&str>> = rows
            .iter()
            .map(|(e, _)| e.event.event.as_ref().map(|b| b.get()))
            .collect();
        let mut per_site: HashMap<&str, i64> = HashMap::new();
        for (e, _) in &rows {
            *per_site.entry(e.site).or_insert(0) += 1;
        }
        let (a_sites, a_counts): (Vec<&str>, Vec<i64>) =
            per_site.keys().map(|s| (*s, arrivals[s])).unzip();
        let (day_sites, day_counts): (Vec<&str>, Vec<i64>) = per_site.into_iter().unzip();
        let day = now.div_euclid(86_400_000);
        let event_params: [&(dyn ToSql + Sync); 11] = [
            &r_site,
            &r_stream,
            &r_seq,
            &r_id,
            &r_kind,
            &r_at,
            &r_lane,
            &r_withheld,
            &r_body,
            &r_arrival,
            &now,
        ];
        let day_params: [&(dyn ToSql + Sync); 3] = [&day_sites, &day_counts, &day];
        let arrival_params: [&(dyn ToSql + Sync); 2] = [&a_sites, &a_counts];
        match rows_by {
            // No row of these is held (decided above under the site lock): plain COPY, no
            // conflict check per row.
            RowsBy::Copy => {
                let sink = tx
                    .copy_in(
                        "COPY event (site, stream, seq, id, kind, at_ms, lane, withheld, body, arrival, received_at)
                         FROM STDIN BINARY",
                    )
                    .await?;
                let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &EVENT_COPY_TYPES));
                for (i, (e, arrival)) in rows.iter().enumerate() {
                    writer
                        .as_mut()
                        .write(&[
                            &e.site,
                            &e.event.stream(),
                            &e.event.seq,
                            &e.event.id,
                            &e.event.kind,
                            &e.event.at_ms,
                            &e.event.lane.as_str(),
                            &r_withheld[i],
                            &r_body[i],
                            arrival,
                            &now,
                        ])
                        .await?;
                }
                writer.as_mut().finish().await?;
                tokio::try_join!(
                    tx.execute(&p.count_day, &day_params),
                    tx.execute(&p.set_arrivals, &arrival_params),
                )?;
            }
            RowsBy::InsertOnConflict => {
                tokio::try_join!(
                    tx.execute(&p.insert_events, &event_params),
                    tx.execute(&p.count_day, &day_params),
                    tx.execute(&p.set_arrivals, &arrival_params),
                )?;
            }
        }
    }
    let inserted = started.elapsed();
    // Each stream's new contiguous mark. A stream of its own moves only with its own new
    // events: walk them from the mark, and ask the index only when events beyond the walk
    // were held before this batch (arrived earlier, out of order). Chained streams move below.
    let mut chained = !reports.is_empty();
    let mut d_site = Vec::with_capacity(deltas.len());
    let mut d_stream = Vec::with_capacity(deltas.len());
    let mut d_received = Vec::with_capacity(deltas.len());
    let mut d_duplicates = Vec::with_capacity(deltas.len());
    let mut d_conflicts = Vec::with_capacity(deltas.len());
    let mut d_max = Vec::with_capacity(deltas.len());
    let mut d_contiguous = Vec::with_capacity(deltas.len());
    for ((site, stream), d) in &mut deltas {
        let before = batch_state
            .get(&(*site, *stream))
            .copied()
            .unwrap_or_default();
        let mut contiguous = before.contiguous_seq;
        if before.chained {
            chained = true;
        } else if !d.fresh.is_empty() {
            d.fresh.sort_unstable();
            for seq in &d.fresh {
                if *seq == contiguous + 1 {
                    contiguous = *seq;
                } else if *seq > contiguous + 1 {
                    break;
                }
            }
            if contiguous > before.contiguous_seq && contiguous < before.max_seq {
                let own = [(stream.to_string(), i64::MAX)];
                'held: loop {
                    let (held, complete) = held_after(&tx, site, &own, contiguous, 1000).await?;
                    for seq in &held {
                        if *seq != contiguous + 1 {
                            break 'held;
                        }
                        contiguous = *seq;
                    }
                    if complete || held.is_empty() {
                        break;
                    }
                }
            }
        }
        d_site.push(*site);
        d_stream.push(*stream);
        d_received.push(d.received);
        d_duplicates.push(d.duplicates);
        d_conflicts.push(d.conflicts);
        d_max.push(d.max_seq);
        d_contiguous.push(contiguous);
    }
    if !d_site.is_empty() {
        tx.execute(
            &p.update_streams,
            &[
                &d_site,
                &d_stream,
                &d_received,
                &d_duplicates,
                &d_conflicts,
                &d_max,
                &d_contiguous,
                &now,
            ],
        )
        .await?;
    }
    // Statuses and heartbeats, in arrival order.
    for ((site, kind, text), (_, stream)) in reports.iter().zip(&report_streams) {
        let HubReport {
            at_ms,
            last_seq: last,
            first_undelivered: first,
            lineage,
        } = read_hub_report(*kind, text);
        if let Some(base) = lineage.stream_base_seq {
            tx.execute(
                "UPDATE stream SET continues = $3, base_seq = $4 WHERE site = $1 AND stream = $2",
                &[site, stream, &lineage.stream_continues, &base],
            )
            .await?;
        }
        // Consumers may commit a hub's reports out of order: the newest (hub's clock) wins.
        let sql = if *kind == UpTopic::Status {
            "UPDATE site SET status = $2, status_at_ms = $6, status_hub_at = $7, hub_last_seq = $3,
                    hub_first_undelivered = $4, current_stream = $5
             WHERE site = $1 AND (status_hub_at IS NULL OR status_hub_at <= $7)"
        } else {
            "UPDATE site SET heartbeat = $2, heartbeat_at_ms = $6, heartbeat_hub_at = $7, hub_last_seq = $3,
                    hub_first_undelivered = $4, current_stream = $5
             WHERE site = $1 AND (heartbeat_hub_at IS NULL OR heartbeat_hub_at <= $7)"
        };
        tx.execute(
            sql,
            &[
                site,
                text,
                &last,
                &first.unwrap_or(last + 1),
                stream,
                &now,
                &at_ms,
            ],
        )
        .await?;
    }
    // Streams that continue another (or may, after a report named a lineage) move through
    // their chain, and their sites' gap state follows.
    if chained {
        advance_chained(&tx, &site_list).await?;
        tx.execute(
            "UPDATE stream SET gap_since = CASE WHEN contiguous_seq < max_seq
                 THEN COALESCE(gap_since, $2) ELSE NULL END
             WHERE site = ANY($1) AND (gap_since IS NULL) = (contiguous_seq < max_seq)",
            &[&site_list, &now],
        )
        .await?;
    }
    let marked = started.elapsed();
    tx.commit().await?;
    // Where a batch's time goes (`RUST_LOG=central::store=debug`).
    tracing::debug!(
        messages = batch.len(),
        decode_us = decoded.as_micros() as u64,
        lock_us = (locked_at - decoded).as_micros() as u64,
        decide_us = (decided - locked_at).as_micros() as u64,
        insert_us = (inserted - decided).as_micros() as u64,
        marks_us = (marked - inserted).as_micros() as u64,
        commit_us = (started.elapsed() - marked).as_micros() as u64,
        "central batch phases"
    );
    Ok(counts)
}

/// Moves the streams of these sites that continue another to their highest contiguous
/// sequence number through their chain.
async fn advance_chained(tx: &impl GenericClient, sites: &[&str]) -> Result<(), StoreError> {
    let chained: Vec<(String, String, i64)> = tx
        .query(
            "SELECT site, stream, contiguous_seq FROM stream WHERE site = ANY($1) AND continues IS NOT NULL",
            &[&sites],
        )
        .await?
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    for (site, stream, start) in chained {
        let chain = chain(tx, &site, &stream).await?;
        let mut contiguous = start;
        'outer: loop {
            let (seqs, complete) = held_after(tx, &site, &chain, contiguous, 1000).await?;
            for seq in &seqs {
                if *seq != contiguous + 1 {
                    break 'outer;
                }
                contiguous = *seq;
            }
            if complete || seqs.is_empty() {
                break;
            }
        }
        if contiguous != start {
            tx.execute(
                "UPDATE stream SET contiguous_seq = $3 WHERE site = $1 AND stream = $2",
                &[&site, &stream, &contiguous],
            )
            .await?;
        }
    }
    Ok(())
}

/// The streams whose events count for `stream`, each with the highest sequence number that
/// counts (as in the SQLite store).
async fn chain(
    c: &impl GenericClient,
    site: &str,
    stream: &str,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut out = vec![(stream.to_owned(), i64::MAX)];
    let mut limit = i64::MAX;
    let mut at = stream.to_owned();
    while out.len() < 32 {
        let link = c
            .query_opt(
                "SELECT continues, base_seq FROM stream WHERE site = $1 AND stream = $2",
                &[&site, &at],
            )
            .await?;
        let Some(row) = link else { break };
        let (parent, base): (Option<String>, i64) = (row.get(0), row.get(1));
        let Some(parent) = parent else { break };
        if out.iter().any(|(s, _)| *s == parent) {
            break;
        }
        limit = limit.min(base);
        out.push((parent.clone(), limit));
        at = parent;
    }
    Ok(out)
}

/// Sequence numbers after `after` held for a stream through its chain, in order, at most
/// about `batch`; `true` when that is all of them.
async fn held_after(
    c: &impl GenericClient,
    site: &str,
    chain: &[(String, i64)],
    after: i64,
    batch: usize,
) -> Result<(Vec<i64>, bool), StoreError> {
    let mut all = Vec::new();
    let mut bound = i64::MAX;
    for (stream, limit) in chain {
        let rows: Vec<i64> = c
            .query(
                "SELECT seq FROM event WHERE site = $1 AND stream = $2 AND seq > $3 AND seq <= $4
                 ORDER BY seq LIMIT $5",
                &[&site, stream, &after, limit, &(batch as i64)],
            )
            .await?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        if rows.len() >= batch
            && let Some(last) = rows.last()
        {
            bound = bound.min(*last);
        }
        all.extend(rows);
    }
    all.sort_unstable();
    all.dedup();
    all.retain(|seq| *seq <= bound);
    Ok((all, bound == i64::MAX))
}

async fn gaps(
    c: &impl GenericClient,
    site: &str,
    stream: &str,
    contiguous: i64,
    max_seq: i64,
) -> Result<Gaps, StoreError> {
    let mut out = Vec::new();
    if max_seq <= contiguous {
        return Ok(out);
    }
    let chain = chain(c, site, stream).await?;
    let mut expected = contiguous + 1;
    let mut after = contiguous;
    loop {
        let (seqs, complete) = held_after(c, site, &chain, after, 1000).await?;
        for seq in &seqs {
            if *seq > max_seq {
                return Ok(out);
            }
            if *seq > expected {
                out.push((expected, seq - 1));
                if out.len() >= 100 {
                    return Ok(out);
                }
            }
            expected = seq + 1;
        }
        match seqs.last() {
            Some(last) if !complete => after = *last,
            _ => return Ok(out),
        }
    }
}

async fn report(c: &Client) -> Result<CentralReport, StoreError> {
    let rows = c
        .query(
            "SELECT site, current_stream, hub_last_seq, status FROM site ORDER BY site",
            &[],
        )
        .await?;
    let mut sites = Vec::new();
    for row in rows {
        let (site, current, hub_last, status): (
            String,
            Option<String>,
            Option<i64>,
            Option<String>,
        ) = (row.get(0), row.get(1), row.get(2), row.get(3));
        let streams = streams(c, &site, current.as_deref()).await?;
        let withheld: i64 = c
            .query_one(
                "SELECT COUNT(*) FROM event WHERE site = $1 AND withheld IS NOT NULL",
                &[&site],
            )
            .await?
            .get(0);
        let now = streams.iter().find(|t| t.current);
        sites.push(SiteReport {
            stream: current.clone(),
            events: streams.iter().map(|t| t.events).sum(),
            duplicates_dropped: streams.iter().map(|t| t.duplicates_dropped).sum(),
            contiguous_seq: now.map_or(0, |t| t.contiguous_seq),
            max_seq: now.map_or(0, |t| t.max_seq),
            gaps: now.map(|t| t.gaps.clone()).unwrap_or_default(),
            withheld,
            hub_state: status
                .and_then(|s| contract::decode_status(s.as_bytes()).ok())
                .map(|s| s.state),
            hub_last_seq: hub_last,
            conflicts: streams.iter().map(|t| t.conflicts).sum(),
            conflicting_events: conflicts(c, &site).await?,
            streams,
            site,
        });
    }
    Ok(CentralReport { sites })
}

async fn streams(
    c: &Client,
    site: &str,
    current: Option<&str>,
) -> Result<Vec<StreamReport>, StoreError> {
    let rows: Vec<StreamReport> = c
        .query(
            "SELECT stream, continues, base_seq, first_seen_at, received, duplicates, conflicts,
                    contiguous_seq, max_seq
             FROM stream WHERE site = $1
             ORDER BY stream IS NOT DISTINCT FROM $2 DESC, first_seen_at DESC, stream",
            &[&site, &current],
        )
        .await?
        .into_iter()
        .map(|r| StreamReport {
            current: false,
            stream: r.get(0),
            continues: r.get(1),
            base_seq: r.get(2),
            rewound_past: None,
            first_seen_at_ms: r.get(3),
            events: r.get(4),
            duplicates_dropped: r.get(5),
            conflicts: r.get(6),
            contiguous_seq: r.get(7),
            max_seq: r.get(8),
            gaps: Vec::new(),
        })
        .collect();
    let max_of: HashMap<String, i64> = rows.iter().map(|t| (t.stream.clone(), t.max_seq)).collect();
    let mut out = Vec::new();
    for mut t in rows {
        t.current = current == Some(t.stream.as_str());
        t.gaps = gaps(c, site, &t.stream, t.contiguous_seq, t.max_seq).await?;
        t.rewound_past = t
            .continues
            .as_ref()
            .and_then(|c| max_of.get(c))
            .copied()
            .filter(|past| *past > t.base_seq);
        out.push(t);
    }
    Ok(out)
}

async fn conflicts(c: &Client, site: &str) -> Result<Vec<ConflictReport>, StoreError> {
    Ok(c.query(
        "SELECT stream, seq, stored_id, id, kind, received_at FROM conflict
             WHERE site = $1 ORDER BY stream, seq, received_at LIMIT 100",
        &[&site],
    )
    .await?
    .into_iter()
    .map(|r| ConflictReport {
        stream: r.get(0),
        seq: r.get(1),
        stored_id: r.get(2),
        id: r.get(3),
        kind: r.get(4),
        received_at_ms: r.get(5),
    })
    .collect())
}

async fn sync_states(c: &Client) -> Result<Vec<SiteSyncState>, StoreError> {
    // Streams of their own in one query (the next held seq by index); chained ones in turn.
    let rows = c
        .query(
            "SELECT s.site, s.current_stream, t.contiguous_seq, s.hub_first_undelivered,
                    t.continues IS NOT NULL,
                    (SELECT MIN(e.seq) FROM event e WHERE e.site = s.site
                       AND e.stream = s.current_stream AND e.seq > t.contiguous_seq)
             FROM site s JOIN stream t ON t.site = s.site AND t.stream = s.current_stream",
            &[],
        )
        .await?;
    let mut out = Vec::new();
    for r in rows {
        let (site, stream, contiguous, first, chained, next): (
            String,
            String,
            i64,
            Option<i64>,
            bool,
            Option<i64>,
        ) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
        let next_held = if chained {
            let chain = chain(c, &site, &stream).await?;
            held_after(c, &site, &chain, contiguous, 1)
                .await?
                .0
                .first()
                .copied()
        } else {
            next
        };
        out.push(SiteSyncState {
            site,
            stream,
            contiguous_seq: contiguous,
            hub_first_undelivered: first,
            next_held,
        });
    }
    Ok(out)
}

impl EventStore for PgStore {
    fn store_batch(
        &mut self,
        batch: &[Arrival<'_>],
        received_at_ms: i64,
    ) -> Result<BatchCounts, StoreError> {
        self.connect()?;
        let runtime = self.runtime.as_ref().expect("runtime lives until drop");
        let client = self.client.as_mut().expect("connected");
        let prepared = &mut self.prepared;
        let out = runtime.block_on(async {
            if prepared.is_none() {
                *prepared = Some(Box::new(Prepared::new(client).await?));
            }
            let prepared = prepared.as_ref().expect("prepared just now");
            match store_batch(client, prepared, batch, received_at_ms, RowsBy::Copy).await {
                Err(StoreError::Postgres(e)) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                    tracing::warn!(error = %e, "a stream's highest number was behind its stored events; the batch is stored again with conflict checks");
                    store_batch(client, prepared, batch, received_at_ms, RowsBy::InsertOnConflict).await
                }
                out => out,
            }
        });
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
            self.prepared = None;
        }
        out
    }

    fn report(&self) -> Result<CentralReport, StoreError> {
        self.read(|c| Box::pin(report(c)))
    }

    fn sync_state(&self) -> Result<Vec<SiteSyncState>, StoreError> {
        self.read(|c| Box::pin(sync_states(c)))
    }

    fn events(&self, site: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let site = site.to_owned();
        self.read(move |c| {
            Box::pin(async move {
                Ok(c.query(
                    "SELECT e.stream, e.seq, e.id, e.kind, e.lane, e.arrival, e.withheld, e.body
                     FROM event e JOIN stream s ON s.site = e.site AND s.stream = e.stream
                     WHERE e.site = $1 ORDER BY s.first_seen_at, e.stream, e.seq",
                    &[&site],
                )
                .await?
                .into_iter()
                .map(|r| StoredEvent {
                    stream: r.get(0),
                    seq: r.get(1),
                    id: r.get(2),
                    kind: r.get(3),
                    lane: r.get(4),
                    arrival: r.get(5),
                    withheld: r.get(6),
                    body: r.get(7),
                })
                .collect())
            })
        })
    }

    fn claim_resend(&mut self, c: &ResendClaim<'_>) -> Result<bool, StoreError> {
        let (site, stream, consumer) = (
            c.site.to_owned(),
            c.stream.to_owned(),
            c.consumer.to_owned(),
        );
        let (from, to, now, lease) = (c.from_seq, c.to_seq, c.now_ms, c.lease_ms);
        self.with_client(move |client| {
            Box::pin(async move {
                let n = client
                    .execute(
                        "INSERT INTO resend_lease (site, stream, from_seq, to_seq, requested_at, requested_by)
                         VALUES ($1, $2, $3, $4, $5, $6)
                         ON CONFLICT (site, stream, from_seq) DO UPDATE
                            SET to_seq = excluded.to_seq, requested_at = excluded.requested_at,
                                requested_by = excluded.requested_by
                            WHERE resend_lease.requested_at <= excluded.requested_at - $7",
                        &[&site, &stream, &from, &to, &now, &consumer, &lease],
                    )
                    .await?;
                Ok(n == 1)
            })
        })
    }

    fn fleet_rows(&self, day: i64) -> Result<Vec<crate::fleet::FleetRow>, StoreError> {
        self.read(move |c| {
            Box::pin(async move {
                Ok(c.query(
                    "SELECT s.site, s.status, s.status_at_ms, s.heartbeat, s.heartbeat_at_ms,
                    COALESCE(t.contiguous_seq, 0), COALESCE(t.max_seq, 0), s.hub_last_seq, t.gap_since,
                    COALESCE((SELECT d.events FROM site_day d WHERE d.site = s.site AND d.day = $1), 0),
                    COALESCE((SELECT SUM(x.received) FROM stream x WHERE x.site = s.site), 0)::BIGINT,
                    (SELECT COUNT(*) FROM quarantine q WHERE q.site = s.site)
             FROM site s LEFT JOIN stream t ON t.site = s.site AND t.stream = s.current_stream
             ORDER BY s.site",
                    &[&day],
                )
                .await?
                .into_iter()
                .map(|r| crate::fleet::FleetRow {
                    site: r.get(0),
                    status: r.get(1),
                    status_at_ms: r.get(2),
                    heartbeat: r.get(3),
                    heartbeat_at_ms: r.get(4),
                    contiguous_seq: r.get(5),
                    max_seq: r.get(6),
                    hub_last_seq: r.get(7),
                    gap_since_ms: r.get(8),
                    events_today: r.get(9),
                    events_total: r.get(10),
                    quarantined: r.get(11),
                })
                .collect())
            })
        })
    }

    fn quarantined(&self) -> Result<Vec<Quarantined>, StoreError> {
        self.read(|c| {
            Box::pin(async move {
                Ok(c.query(
                    "SELECT topic, reason, excerpt, bytes, received_at FROM quarantine ORDER BY n LIMIT 1000",
                    &[],
                )
                .await?
                .into_iter()
                .map(|r| Quarantined {
                    topic: r.get(0),
                    reason: r.get(1),
                    excerpt: r.get(2),
                    bytes: r.get(3),
                    received_at_ms: r.get(4),
                })
                .collect())
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_partitions_start_on_the_first_of_each_month() {
        assert_eq!(month_start_ms(1970, 1), 0);
        assert_eq!(month_start_ms(2024, 3), 1_709_251_200_000);
        assert_eq!(year_month(1_709_251_200_000), (2024, 3));
        assert_eq!(year_month(1_709_251_199_999), (2024, 2));
        assert_eq!(add_months(2024, 11, 2), (2025, 1));
    }
}

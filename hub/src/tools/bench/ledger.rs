//! `hub bench ledger`: the hub's ledger writes against raw SQLite writing the same rows.
//!
//! Four phases on one storage, each repeated and reported as a median:
//! (a) raw SQLite writing what one movement writes (journal row, both balances, outbox row
//! and counters) in one durable transaction per movement — the floor the storage allows;
//! (b) ledger movements one at a time through the store (rules, savepoint, writer thread);
//! (c) many concurrent requesters, which the writer folds into group commits;
//! (d) raw SQLite writing the same rows in transactions as large as the groups (c) made.
//! (b) is judged against (a) and (c) against (d): the same work on the same disk, so the
//! ratios measure the hub's code, not the disk. Where a durable commit is slow (an SD card:
//! fsync ≥ 2 ms), (c) is also judged against (a): that is what group commit is for.

use crate::store::ledger::record;
use crate::store::{Store, StoreError, StoreOptions, sku as sku_store};
use hub_core::{Movement, MovementId, MovementKind, Sku, SkuCode, StockUnit, Timestamp};
use rusqlite::{Connection, params};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Targets: ledger single vs raw single, ledger grouped vs raw batched, and — on slow-fsync
/// storage — ledger grouped vs raw single.
pub const SINGLE_TARGET: f64 = 0.5;
pub const GROUPED_TARGET: f64 = 0.5;
pub const GROUP_COMMIT_TARGET: f64 = 10.0;
/// A median durable commit at least this slow makes the storage "fsync-bound".
pub const SLOW_FSYNC_MS: f64 = 2.0;

/// Figures from one run; field names are the JSON contract.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LedgerBenchReport {
    pub raw_single_per_s: f64,
    pub raw_batched_per_s: f64,
    pub ledger_single_per_s: f64,
    pub ledger_grouped_per_s: f64,
    /// ledger single ÷ raw single.
    pub single_ratio: f64,
    /// ledger grouped ÷ raw batched.
    pub grouped_ratio: f64,
    /// ledger grouped ÷ raw single: what group commit buys.
    pub group_commit_ratio: f64,
    /// Requests per durable transaction in the grouped phase (the raw batch size).
    pub mean_group_size: f64,
    /// Median fsync latency of the folder (a 1 KiB append + fdatasync).
    pub fsync_p50_ms: f64,
    /// Whether the group-commit target applies (fsync ≥ 2 ms).
    pub fsync_bound: bool,
    pub concurrent_requesters: usize,
    pub seconds_per_phase: f64,
    pub repetitions: usize,
    pub folder: String,
}

impl LedgerBenchReport {
    /// Whether the targets hold.
    pub fn meets_targets(&self) -> bool {
        self.single_ratio >= SINGLE_TARGET
            && self.grouped_ratio >= GROUPED_TARGET
            && (!self.fsync_bound || self.group_commit_ratio >= GROUP_COMMIT_TARGET)
    }
}

impl std::fmt::Display for LedgerBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
        writeln!(
            f,
            "Ledger benchmark on {} (median of {} x {:.1} s per phase; fsync p50 {:.2} ms)",
            self.folder, self.repetitions, self.seconds_per_phase, self.fsync_p50_ms
        )?;
        writeln!(
            f,
            "  {:<60} {:>10}  {:>20}",
            "phase", "per second", "ratio (target)"
        )?;
        let row = |f: &mut std::fmt::Formatter<'_>, what: &str, rate: f64, ratio: &str| {
            writeln!(f, "  {what:<60} {rate:>10.0}  {ratio:>20}")
        };
        row(
            f,
            "(a) raw SQLite, one movement's rows per durable commit",
            self.raw_single_per_s,
            "baseline",
        )?;
        row(
            f,
            "(b) ledger movements one at a time",
            self.ledger_single_per_s,
            &format!(
                "{:.2}x of (a) (>= {SINGLE_TARGET}) {}",
                self.single_ratio,
                verdict(self.single_ratio >= SINGLE_TARGET)
            ),
        )?;
        row(
            f,
            &format!(
                "(d) raw SQLite, the same rows, {:.0} movements per commit",
                self.mean_group_size
            ),
            self.raw_batched_per_s,
            "baseline",
        )?;
        row(
            f,
            &format!(
                "(c) ledger, {} requesters, group commit",
                self.concurrent_requesters
            ),
            self.ledger_grouped_per_s,
            &format!(
                "{:.2}x of (d) (>= {GROUPED_TARGET}) {}",
                self.grouped_ratio,
                verdict(self.grouped_ratio >= GROUPED_TARGET)
            ),
        )?;
        if self.fsync_bound {
            writeln!(
                f,
                "  group commit on this slow-fsync storage: (c) is {:.1}x (a) (>= {GROUP_COMMIT_TARGET}) {}",
                self.group_commit_ratio,
                verdict(self.group_commit_ratio >= GROUP_COMMIT_TARGET)
            )?;
        } else {
            writeln!(
                f,
                "  group commit: (c) is {:.1}x (a); not judged on storage with a fast fsync (< {SLOW_FSYNC_MS} ms), where that ratio measures the disk",
                self.group_commit_ratio
            )?;
        }
        writeln!(f)?;
        write!(
            f,
            "  This storage sustains about {:.0} durable movements/s one by one and {:.0}/s under load.\n  A site peak of 5,000 orders/day needs well under 10/s.",
            self.ledger_single_per_s, self.ledger_grouped_per_s
        )
    }
}

/// Single-row durable commits per second on a fresh WAL database in `dir` (synchronous=FULL).
/// The disk benchmark's SQLite figure.
pub(crate) fn raw_sqlite(dir: &Path, seconds: f64) -> anyhow::Result<f64> {
    let path = dir.join("raw-baseline.sqlite");
    let conn = Connection::open(&path)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, payload TEXT NOT NULL);",
    )?;
    let payload = "x".repeat(200);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut n = 0u64;
    while Instant::now() < deadline {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        conn.prepare_cached("INSERT INTO t (payload) VALUES (?1)")?
            .execute([&payload])?;
        conn.execute_batch("COMMIT")?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

const SKUS: usize = 50;
const LOTS: u64 = 7;

fn receipt(prefix: &str, n: u64) -> Movement {
    Movement {
        id: MovementId::new(format!("{prefix}-{n}")).expect("bench ids are valid"),
        sku: SkuCode::new(format!("BENCH-{}", n as usize % SKUS)).expect("bench SKUs are valid"),
        batch: Some(hub_core::BatchKey {
            lot: format!("L{}", n % LOTS),
            expiry: None,
        }),
        kind: MovementKind::Receipt,
        quantity: 1,
        reason: String::new(),
        reference: "benchmark".into(),
        at: crate::clock::now(),
    }
}

/// A store with the bench SKUs, on a fresh file in `dir`.
fn bench_store(dir: &Path, name: &str) -> anyhow::Result<Store> {
    let store = Store::open(&dir.join(name), "bench", &StoreOptions::default())?;
    store.write_blocking(|c| {
        for i in 0..SKUS {
            let sku = Sku::new(
                SkuCode::new(format!("BENCH-{i}")).expect("valid"),
                format!("Benchmark SKU {i}"),
                StockUnit::Piece,
            );
            sku_store::upsert(c, &sku, Timestamp(0))?;
        }
        Ok::<_, StoreError>(())
    })?;
    Ok(store)
}

/// Raw SQLite writing the rows one receipt writes (journal, balances, outbox, counters) on a
/// database with the hub's own schema, `batch` movements per durable transaction. No rules,
/// no reads, no savepoints: what the storage allows for the same rows.
fn raw_rows(dir: &Path, name: &str, seconds: f64, batch: usize) -> anyhow::Result<f64> {
    // The hub's schema (and its pragmas) on a fresh file, then a plain connection.
    bench_store(dir, name)?.close();
    let conn = Connection::open(dir.join(name))?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")?;
    // The outbox payload as the hub writes it (serialised beforehand: not part of the floor).
    let sample = receipt("raw", 0);
    let payload = serde_json::to_string(&hub_core::DomainEvent::MovementRecorded {
        movement: sample.clone(),
        sku_balance_after: 1,
        batch_balance_after: Some(1),
    })?;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut n = 0u64;
    let now = crate::clock::now().millis();
    while Instant::now() < deadline {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        for _ in 0..batch.max(1) {
            let sku = format!("BENCH-{}", n as usize % SKUS);
            let lot = format!("L{}", n % LOTS);
            // Numbered as the store numbers them: one above the highest row.
            let journal: i64 = conn
                .prepare_cached(
                    "SELECT MAX(COALESCE((SELECT MAX(journal_seq) FROM movement), 0),
                                COALESCE((SELECT value FROM counter WHERE name = 'journal_seq'), 0)) + 1",
                )?
                .query_row([], |r| r.get(0))?;
            conn.prepare_cached(
                "INSERT INTO movement (journal_seq, id, sku, lot, expiry, kind, quantity, delta, reason, reference, at)
                 VALUES (?1, ?2, ?3, ?4, NULL, 'receipt', 1, 1, '', 'benchmark', ?5)",
            )?
            .execute(params![journal, format!("raw-{n}"), sku, lot, now])?;
            conn.prepare_cached(
                "INSERT INTO balance_sku (sku, on_hand, updated_at) VALUES (?1, 1, ?2)
                 ON CONFLICT (sku) DO UPDATE SET on_hand = on_hand + 1, updated_at = ?2",
            )?
            .execute(params![sku, now])?;
            conn.prepare_cached(
                "INSERT INTO balance_batch (sku, lot, expiry, on_hand, updated_at) VALUES (?1, ?2, NULL, 1, ?3)
                 ON CONFLICT (sku, lot) DO UPDATE SET on_hand = on_hand + 1, updated_at = ?3",
            )?
            .execute(params![sku, lot, now])?;
            let seq: i64 = conn
                .prepare_cached(
                    "SELECT MAX(COALESCE((SELECT MAX(seq) FROM outbox), 0),
                                COALESCE((SELECT value FROM counter WHERE name = 'outbox_seq'), 0)) + 1",
                )?
                .query_row([], |r| r.get(0))?;
            conn.prepare_cached(
                "INSERT INTO outbox (seq, id, kind, payload, created_at) VALUES (?1, ?2, 'movement_recorded', ?3, ?4)",
            )?
            .execute(params![seq, uuid::Uuid::now_v7().to_string(), payload, now])?;
            n += 1;
        }
        conn.execute_batch("COMMIT")?;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

fn ledger_single(dir: &Path, name: &str, seconds: f64) -> anyhow::Result<f64> {
    let store = bench_store(dir, name)?;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut n = 0u64;
    while Instant::now() < deadline {
        let m = receipt("single", n);
        store.write_blocking(move |c| record(c, &m))?;
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    store.close();
    Ok(rate)
}

/// Movements per second from `requesters` concurrent callers, and the mean group size.
fn ledger_grouped(
    dir: &Path,
    name: &str,
    seconds: f64,
    requesters: usize,
) -> anyhow::Result<(f64, f64)> {
    let store = bench_store(dir, name)?;
    let before = store.writer_stats();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let done = Arc::new(AtomicU64::new(0));
    let rate = runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(seconds);
        let start = Instant::now();
        let mut tasks = Vec::new();
        for r in 0..requesters {
            let store = store.clone();
            let done = done.clone();
            tasks.push(tokio::spawn(async move {
                let mut i = 0u64;
                while tokio::time::Instant::now() < deadline {
                    let m = receipt(&format!("grouped-{r}"), i);
                    store.write(move |c| record(c, &m)).await?;
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                Ok::<_, anyhow::Error>(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        Ok::<_, anyhow::Error>(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
    })?;
    let after = store.writer_stats();
    let groups = (after.groups_committed - before.groups_committed).max(1);
    let requests = after.requests_committed - before.requests_committed;
    let verify = store.read_blocking(crate::store::ledger::verify)?;
    anyhow::ensure!(
        verify.ok(),
        "ledger did not verify after the benchmark: {:?}",
        verify.problems
    );
    store.close();
    Ok((rate, requests as f64 / groups as f64))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Runs every phase `repetitions` times in a scratch folder inside `dir` (removed afterwards).
pub fn run(
    dir: &Path,
    seconds: f64,
    requesters: usize,
    repetitions: usize,
) -> anyhow::Result<LedgerBenchReport> {
    let scratch = tempfile::Builder::new()
        .prefix("hub-bench-")
        .tempdir_in(dir)?;
    let repetitions = repetitions.max(1);
    let mut fsyncs = crate::storage::fsync_latencies(scratch.path(), 20)?;
    let fsync_p50_ms = crate::storage::Percentiles::of(&mut fsyncs).p50_ms;
    let (mut raw_single, mut single, mut grouped, mut raw_batched, mut sizes) =
        (vec![], vec![], vec![], vec![], vec![]);
    for rep in 0..repetitions {
        eprintln!("round {}/{repetitions}: (a) raw single …", rep + 1);
        raw_single.push(raw_rows(
            scratch.path(),
            &format!("raw-single-{rep}.sqlite"),
            seconds,
            1,
        )?);
        eprintln!("round {}/{repetitions}: (b) ledger single …", rep + 1);
        single.push(ledger_single(
            scratch.path(),
            &format!("single-{rep}.sqlite"),
            seconds,
        )?);
        eprintln!(
            "round {}/{repetitions}: (c) ledger, {requesters} requesters …",
            rep + 1
        );
        let (rate, size) = ledger_grouped(
            scratch.path(),
            &format!("grouped-{rep}.sqlite"),
            seconds,
            requesters,
        )?;
        grouped.push(rate);
        sizes.push(size);
        eprintln!(
            "round {}/{repetitions}: (d) raw, {size:.0} movements per commit …",
            rep + 1
        );
        raw_batched.push(raw_rows(
            scratch.path(),
            &format!("raw-batched-{rep}.sqlite"),
            seconds,
            size.round().max(1.0) as usize,
        )?);
    }
    let (raw_single, single, grouped, raw_batched) = (
        median(raw_single),
        median(single),
        median(grouped),
        median(raw_batched),
    );
    Ok(LedgerBenchReport {
        raw_single_per_s: raw_single,
        raw_batched_per_s: raw_batched,
        ledger_single_per_s: single,
        ledger_grouped_per_s: grouped,
        single_ratio: single / raw_single,
        grouped_ratio: grouped / raw_batched,
        group_commit_ratio: grouped / raw_single,
        mean_group_size: median(sizes),
        fsync_p50_ms,
        fsync_bound: fsync_p50_ms >= SLOW_FSYNC_MS,
        concurrent_requesters: requesters,
        seconds_per_phase: seconds,
        repetitions,
        folder: dir.display().to_string(),
    })
}

//! `hub bench ledger`: durable commit rates of raw SQLite versus the hub's ledger.
//!
//! (a) raw SQLite, one row per durable transaction (WAL, synchronous=FULL) — the baseline the
//! storage itself allows; (b) ledger movements one at a time through the store's writer, each
//! with its balances and outbox event; (c) many concurrent requesters, which the writer folds
//! into group commits. All on a file database in the given folder.

use crate::store::ledger::record;
use crate::store::{Store, StoreError, StoreOptions, sku as sku_store};
use hub_core::{Movement, MovementId, MovementKind, Sku, SkuCode, StockUnit, Timestamp};
use rusqlite::Connection;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Figures from one run; field names are the JSON contract.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LedgerBenchReport {
    pub raw_sqlite_commits_per_s: f64,
    pub ledger_single_per_s: f64,
    pub ledger_grouped_per_s: f64,
    pub single_ratio: f64,
    pub grouped_ratio: f64,
    pub concurrent_requesters: usize,
    pub seconds_per_phase: f64,
    pub folder: String,
}

impl LedgerBenchReport {
    /// Whether the targets hold: (b) ≥ 0.5 × (a) and (c) ≥ 10 × (a).
    pub fn meets_targets(&self) -> bool {
        self.single_ratio >= 0.5 && self.grouped_ratio >= 10.0
    }
}

impl std::fmt::Display for LedgerBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = |ok: bool| if ok { "ok" } else { "BELOW TARGET" };
        writeln!(
            f,
            "Ledger benchmark on {} ({:.1} s per phase)",
            self.folder, self.seconds_per_phase
        )?;
        writeln!(
            f,
            "  {:<52} {:>12} {:>9}  target",
            "phase", "per second", "ratio"
        )?;
        writeln!(
            f,
            "  {:<52} {:>12.0} {:>9}",
            "(a) raw SQLite durable commits, 1 row each", self.raw_sqlite_commits_per_s, "1.00x"
        )?;
        writeln!(
            f,
            "  {:<52} {:>12.0} {:>8.2}x  >= 0.5x  {}",
            "(b) ledger movements, one per durable commit",
            self.ledger_single_per_s,
            self.single_ratio,
            verdict(self.single_ratio >= 0.5)
        )?;
        writeln!(
            f,
            "  {:<52} {:>12.0} {:>8.2}x  >= 10x   {}",
            format!(
                "(c) ledger movements, {} requesters, group commit",
                self.concurrent_requesters
            ),
            self.ledger_grouped_per_s,
            self.grouped_ratio,
            verdict(self.grouped_ratio >= 10.0)
        )?;
        writeln!(f)?;
        write!(
            f,
            "  This storage sustains about {:.0} durable movements/s one by one and {:.0}/s under load.\n  A site peak of 5,000 orders/day needs well under 10/s.",
            self.ledger_single_per_s, self.ledger_grouped_per_s
        )
    }
}

/// Single-row durable commits per second on a fresh WAL database in `dir` (synchronous=FULL).
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

fn receipt(prefix: &str, n: u64) -> Movement {
    Movement {
        id: MovementId::new(format!("{prefix}-{n}")).expect("bench ids are valid"),
        sku: SkuCode::new(format!("BENCH-{}", n as usize % SKUS)).expect("bench SKUs are valid"),
        batch: Some(hub_core::BatchKey {
            lot: format!("L{}", n % 7),
            expiry: None,
        }),
        kind: MovementKind::Receipt,
        quantity: 1,
        reason: String::new(),
        reference: "benchmark".into(),
        at: crate::clock::now(),
    }
}

/// Runs all three phases in `dir` (a scratch folder that is removed afterwards).
pub fn run(dir: &Path, seconds: f64, requesters: usize) -> anyhow::Result<LedgerBenchReport> {
    let scratch = tempfile::Builder::new()
        .prefix("hub-bench-")
        .tempdir_in(dir)?;
    eprintln!("(a) raw SQLite durable commits …");
    let raw = raw_sqlite(scratch.path(), seconds)?;

    let store = Store::open(
        &scratch.path().join("ledger.sqlite"),
        "bench",
        &StoreOptions::default(),
    )?;
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

    eprintln!("(b) ledger movements one at a time …");
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut n = 0u64;
    while Instant::now() < deadline {
        let m = receipt("single", n);
        store.write_blocking(move |c| record(c, &m))?;
        n += 1;
    }
    let single = n as f64 / start.elapsed().as_secs_f64();

    eprintln!("(c) ledger movements from {requesters} concurrent requesters …");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let done = Arc::new(AtomicU64::new(0));
    let grouped = runtime.block_on(async {
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
    let verify = store.read_blocking(crate::store::ledger::verify)?;
    anyhow::ensure!(
        verify.ok(),
        "ledger did not verify after the benchmark: {:?}",
        verify.problems
    );
    store.close();

    Ok(LedgerBenchReport {
        raw_sqlite_commits_per_s: raw,
        ledger_single_per_s: single,
        ledger_grouped_per_s: grouped,
        single_ratio: single / raw,
        grouped_ratio: grouped / raw,
        concurrent_requesters: requesters,
        seconds_per_phase: seconds,
        folder: dir.display().to_string(),
    })
}

//! A generated site for `hub bench dashboard`: days of a busy pickup point written straight
//! into a fresh store (SKUs, receipts, pickup orders with their lines, handovers and issue
//! movements, receiving decisions), so the dashboard can be timed on a month of data. Bench
//! data only: the rows bypass the ledger's checks (the balances are recomputed from the journal
//! at the end). Deterministic for a seed.

use super::{StoreError, sql_error};
use rusqlite::{Connection, params};

/// What was written.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Filled {
    pub skus: i64,
    pub orders: i64,
    pub movements: i64,
}

/// Fills `days` days from `start_ms` (one day = 24 h) with `orders_per_day` pickup orders a
/// day over 200 piece SKUs and 20 gram SKUs (the store's writer gives the transaction).
pub fn fill(
    conn: &Connection,
    start_ms: i64,
    days: i64,
    orders_per_day: i64,
    seed: u64,
) -> Result<Filled, StoreError> {
    const DAY: i64 = 86_400_000;
    let sql = sql_error(conn);
    let mut state = seed | 1;
    let mut next = move |n: i64| -> i64 {
        // xorshift64: deterministic and dependency-free.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n.max(1) as u64) as i64
    };
    // The store's writer runs this in one transaction.
    let tx = conn;
    let skus: Vec<(String, &str)> = (0..220)
        .map(|i| {
            if i < 200 {
                (format!("P{i:03}"), "piece")
            } else {
                (format!("G{i:03}"), "gram")
            }
        })
        .collect();
    {
        let mut st = tx
            .prepare("INSERT INTO sku (code, name, unit, gtins, allow_negative, version, updated_at) VALUES (?1, ?1, ?2, '[]', 1, 1, 0)")
            .map_err(&sql)?;
        for (code, unit) in &skus {
            st.execute(params![code, unit]).map_err(&sql)?;
        }
    }
    let mut movement = tx
        .prepare("INSERT INTO movement (id, sku, lot, expiry, kind, quantity, delta, reason, reference, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'bench', ?8, ?9)")
        .map_err(&sql)?;
    let mut order = tx
        .prepare("INSERT INTO pickup_order (order_id, site, code_salt, code_hash, body, opens_at, closes_at, status, collected_at, version, updated_at) VALUES (?1, 'bench', 'aa', 'bb', '{}', ?2, ?3, ?4, ?5, 1, 0)")
        .map_err(&sql)?;
    let mut line = tx
        .prepare("INSERT INTO pickup_order_line (order_id, line_no, sku, quantity) VALUES (?1, ?2, ?3, ?4)")
        .map_err(&sql)?;
    let mut handover = tx
        .prepare(
            "INSERT INTO handover (order_id, station, at, body) VALUES (?1, 'desk-1', ?2, '{}')",
        )
        .map_err(&sql)?;
    let mut decision = tx
        .prepare("INSERT INTO line_decision (delivery_id, line_no, sku, lot, outcome, accepted, rejected, held, body, staff, decided_at) VALUES (?1, ?2, ?3, ?4, ?5, 0, 0, 0, '{}', 'bench', ?6)")
        .map_err(&sql)?;
    let mut filled = Filled {
        skus: skus.len() as i64,
        ..Filled::default()
    };
    let mut seq = 0i64;
    for d in 0..days {
        let day = start_ms + d * DAY;
        let lot = format!("L{d}");
        let expiry = chrono::DateTime::from_timestamp_millis(day + 5 * DAY)
            .map(|t| t.date_naive().to_string());
        for (i, (code, unit)) in skus.iter().enumerate() {
            // What a SKU sells in a day (2 lines an order, 19 in 20 collected) plus 30 %, and
            // two days' worth more on the first day.
            let lines = orders_per_day as f64 * 2.0 * 0.95 / skus.len() as f64;
            let mean = if *unit == "gram" { 500.0 } else { 1.5 };
            let days_worth = if d == 0 { 2.3 } else { 1.3 };
            let quantity = ((lines * mean * days_worth).ceil() as i64).max(1);
            seq += 1;
            movement
                .execute(params![
                    format!("r{seq}"),
                    code,
                    lot,
                    expiry,
                    "receipt",
                    quantity,
                    quantity,
                    format!("delivery D{d}"),
                    day + 6 * 3_600_000
                ])
                .map_err(&sql)?;
            decision
                .execute(params![
                    format!("D{d}"),
                    i as i64,
                    code,
                    lot,
                    if next(50) == 0 { "held" } else { "accepted" },
                    day + 6 * 3_600_000
                ])
                .map_err(&sql)?;
            filled.movements += 1;
        }
        for o in 0..orders_per_day {
            let id = format!("O{d}-{o}");
            let at = day + 8 * 3_600_000 + next(12 * 3_600_000);
            let closes = day + 21 * 3_600_000;
            let collected = (next(20) != 0).then_some(at);
            order
                .execute(params![
                    id,
                    day,
                    closes,
                    if collected.is_some() {
                        "collected"
                    } else {
                        "open"
                    },
                    collected
                ])
                .map_err(&sql)?;
            for l in 0..2 {
                let (code, unit) = &skus[next(skus.len() as i64) as usize];
                let quantity = if *unit == "gram" { 500 } else { 1 + next(2) };
                line.execute(params![id, l, code, quantity]).map_err(&sql)?;
                if collected.is_some() {
                    seq += 1;
                    movement
                        .execute(params![
                            format!("i{seq}"),
                            code,
                            lot,
                            expiry,
                            "issue",
                            quantity,
                            -quantity,
                            format!("pickup order {id}"),
                            at
                        ])
                        .map_err(&sql)?;
                    filled.movements += 1;
                }
            }
            if let Some(at) = collected {
                handover.execute(params![id, at]).map_err(&sql)?;
            }
            filled.orders += 1;
        }
    }
    // The balances the ledger would have kept, so stock screens and checks read the same.
    tx.execute_batch(
        "INSERT OR REPLACE INTO balance_sku (sku, on_hand, updated_at)
           SELECT sku, SUM(delta), MAX(at) FROM movement GROUP BY sku;
         INSERT OR REPLACE INTO balance_batch (sku, lot, expiry, on_hand, updated_at)
           SELECT sku, lot, MAX(expiry), SUM(delta), MAX(at) FROM movement WHERE lot IS NOT NULL GROUP BY sku, lot;
         -- The journal's counter past the rows written here, so the ledger's next movement (a
         -- stocktake on the generated site) does not take a number already used.
         INSERT INTO counter (name, value)
           SELECT 'journal_seq', COALESCE(MAX(journal_seq), 0) FROM movement WHERE true
           ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value);",
    )
    .map_err(&sql)?;
    Ok(filled)
}

/// The bytes the pages in use of the database at `path` take (page size × (pages − free
/// pages)), read through a read-only connection, so WAL frames not yet checkpointed count:
/// `hub bench stations` compares the growth per handover with what the daemon wrote.
pub fn used_bytes(path: &std::path::Path) -> Result<i64, StoreError> {
    let err = |e| StoreError::from_sqlite(path, e);
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(err)?;
    let pragma = |name: &str| -> Result<i64, StoreError> {
        conn.pragma_query_value(None, name, |r| r.get::<_, i64>(0))
            .map_err(err)
    };
    Ok(pragma("page_size")? * (pragma("page_count")? - pragma("freelist_count")?))
}

/// How many photo checks the database at `path` has recorded (read-only).
pub fn photos_recorded(path: &std::path::Path) -> Result<i64, StoreError> {
    let err = |e| StoreError::from_sqlite(path, e);
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(err)?;
    conn.query_row("SELECT COUNT(*) FROM photo", [], |r| r.get(0))
        .map_err(err)
}

/// Runs the hub's daily forecast job (`day_forecast::record_day`) for each of the `days` site
/// days from the one `start_ms` falls on (`fill`'s start), made at each day's start, as a site
/// that ran every day would have: the job reads only the rows before its day, so running it
/// after `fill` stores the forecasts the hub would have made then. The number stored.
pub fn record_forecasts(
    conn: &Connection,
    start_ms: i64,
    days: i64,
    zone: chrono_tz::Tz,
) -> Result<usize, StoreError> {
    let from = crate::clock::site_date(zone, hub_core::Timestamp(start_ms));
    let mut stored = 0;
    for d in 0..days.max(0) {
        let day = from + chrono::Days::new(d as u64);
        let made_at = crate::clock::day_start(zone, day);
        stored += super::day_forecast::record_day(conn, day, zone, made_at)?;
    }
    Ok(stored)
}

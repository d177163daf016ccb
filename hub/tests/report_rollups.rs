//! The report's per-site-day rollups (`store::report_rollup`) on real SQLite files: over
//! generated histories with random movements — written out of time order, dated in days
//! already rolled up, returns of undone handovers, orders taken out of their collection day,
//! days the hub was off — every figure of `hub report` read from the rollups is identical to
//! the one computed from the whole journal (a copy of the database without rollups), a
//! late movement is never hidden by a rollup, and a damaged or old rollup is rebuilt, never
//! trusted.

use chrono::{NaiveDate, TimeZone};
use hub::store::report::{self, ReportSettings};
use hub::store::{Store, StoreError, StoreOptions, report_rollup, sku as sku_store};
use hub_core::{Sku, SkuCode, StockUnit, Timestamp};
use rusqlite::params;

const ZONE: chrono_tz::Tz = chrono_tz::Asia::Shanghai;
const SETTINGS: ReportSettings = ReportSettings {
    expiry_warn_days: 2,
    on_time_tolerance_minutes: 30,
};

fn march(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, day).unwrap()
}

/// Milliseconds of `minute` minutes after the start of the site day `day` of March 2026.
fn at(day: u32, minute: i64) -> i64 {
    ZONE.from_local_datetime(&march(day).and_hms_opt(0, 0, 0).unwrap())
        .unwrap()
        .timestamp_millis()
        + minute * 60_000
}

/// A deterministic generator (xorshift64).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: i64) -> i64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as i64
    }
}

const SKUS: [(&str, StockUnit); 7] = [
    ("G0", StockUnit::Gram),
    ("G1", StockUnit::Gram),
    ("P0", StockUnit::Piece),
    ("P1", StockUnit::Piece),
    ("P2", StockUnit::Piece),
    ("P3", StockUnit::Piece),
    ("P4", StockUnit::Piece),
];

/// A site's history: what one day of it writes.
struct Site {
    store: Store,
    rng: Rng,
    next_id: i64,
    _dir: tempfile::TempDir,
}

impl Site {
    fn new(seed: u64) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("hub.sqlite"),
            "s1",
            &StoreOptions::default(),
        )
        .unwrap();
        store
            .write_blocking(|c| {
                for (code, unit) in SKUS {
                    sku_store::upsert(
                        c,
                        &Sku::new(SkuCode::new(code).unwrap(), code, unit),
                        Timestamp(0),
                    )?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        Site {
            store,
            rng: Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
            next_id: 0,
            _dir: dir,
        }
    }

    /// Appends a movement to the journal (as a late sync or an import would: any date).
    #[allow(
        clippy::too_many_arguments,
        reason = "one journal row, column by column"
    )]
    fn movement(
        &mut self,
        sku: &str,
        lot: &str,
        expiry: Option<NaiveDate>,
        kind: &str,
        quantity: i64,
        delta: i64,
        reference: &str,
        when: i64,
    ) {
        self.next_id += 1;
        let id = format!("m{}", self.next_id);
        let (sku, lot, kind, reference) = (
            sku.to_owned(),
            lot.to_owned(),
            kind.to_owned(),
            reference.to_owned(),
        );
        let expiry = expiry.map(|e| e.to_string());
        self.store
            .write_blocking(move |c| {
                c.execute(
                    "INSERT INTO movement (id, sku, lot, expiry, kind, quantity, delta, reason, reference, at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'test', ?8, ?9)",
                    params![id, sku, lot, expiry, kind, quantity, delta, reference, when],
                )
                .map_err(hub::store::sql_error(c))
            })
            .unwrap();
    }

    fn unit_quantity(&mut self, sku: &str) -> i64 {
        if sku.starts_with('G') {
            100 * (1 + self.rng.below(6))
        } else {
            1 + self.rng.below(3)
        }
    }

    /// One site day of March: receipts, pickup orders (most collected, with their issue
    /// movements), losses, adjustments, a reversed receipt now and then, some rows written
    /// out of time order.
    fn day(&mut self, day: u32) {
        for (i, (sku, _)) in SKUS.iter().enumerate() {
            if self.rng.below(4) == 0 {
                continue;
            }
            let expiry = march(day) + chrono::Days::new(1 + self.rng.below(6) as u64);
            let quantity = 3 * self.unit_quantity(sku);
            let when = at(day, 360 + self.rng.below(120));
            self.movement(
                sku,
                &format!("L{day}"),
                Some(expiry),
                "receipt",
                quantity,
                quantity,
                &format!("delivery D{day}"),
                when,
            );
            if self.rng.below(9) == 0 {
                self.movement(
                    sku,
                    &format!("L{day}"),
                    Some(expiry),
                    "adjustment",
                    quantity,
                    -quantity,
                    &format!("receipt reversed: delivery D{day} line {i}"),
                    when + 600_000,
                );
            }
        }
        for o in 0..8 {
            let id = format!("O{day}-{o}");
            let collected = (self.rng.below(5) != 0).then(|| at(day, 480 + self.rng.below(700)));
            let lines: Vec<(String, i64)> = (0..1 + self.rng.below(2))
                .map(|_| {
                    let sku = SKUS[self.rng.below(SKUS.len() as i64) as usize]
                        .0
                        .to_owned();
                    let q = self.unit_quantity(&sku);
                    (sku, q)
                })
                .collect();
            let (oid, lines_db) = (id.clone(), lines.clone());
            self.store
                .write_blocking(move |c| {
                    c.execute(
                        "INSERT INTO pickup_order (order_id, site, code_salt, code_hash, body, opens_at, closes_at, status, collected_at, version, updated_at)
                         VALUES (?1, 's1', 'aa', 'bb', '{}', ?2, ?3, ?4, ?5, 1, 0)",
                        params![oid, at(day, 0), at(day, 1260), if collected.is_some() { "collected" } else { "open" }, collected],
                    )
                    .map_err(hub::store::sql_error(c))?;
                    for (n, (sku, q)) in lines_db.iter().enumerate() {
                        c.execute(
                            "INSERT INTO pickup_order_line (order_id, line_no, sku, quantity) VALUES (?1, ?2, ?3, ?4)",
                            params![oid, n as i64, sku, q],
                        )
                        .map_err(hub::store::sql_error(c))?;
                    }
                    if let Some(t) = collected {
                        c.execute(
                            "INSERT INTO handover (order_id, station, at, body) VALUES (?1, 'desk-1', ?2, '{}')",
                            params![oid, t],
                        )
                        .map_err(hub::store::sql_error(c))?;
                    }
                    Ok::<_, StoreError>(())
                })
                .unwrap();
            if let Some(t) = collected {
                for (sku, q) in lines {
                    // Now and then short, or from yesterday's lot.
                    let q = q - i64::from(self.rng.below(6) == 0);
                    let lot = format!("L{}", day - self.rng.below(2) as u32);
                    self.movement(
                        &sku,
                        &lot,
                        None,
                        "issue",
                        q,
                        -q,
                        &format!("pickup order {id}"),
                        t,
                    );
                }
            }
        }
        if self.rng.below(2) == 0 {
            let sku = SKUS[self.rng.below(SKUS.len() as i64) as usize].0;
            let q = self.unit_quantity(sku);
            self.movement(
                sku,
                &format!("L{day}"),
                None,
                "loss",
                q,
                -q,
                "spoiled",
                at(day, 900),
            );
        }
        if self.rng.below(3) == 0 {
            let sku = SKUS[self.rng.below(SKUS.len() as i64) as usize].0;
            // A stocktake, written after later rows but dated in the morning.
            self.movement(
                sku,
                &format!("L{day}"),
                None,
                "adjustment",
                1,
                1,
                "stocktake",
                at(day, 300),
            );
        }
    }

    /// The daily forecast job for `day` (as the daemon's first round of the day).
    fn forecasts(&self, day: u32) {
        self.store
            .write_blocking(move |c| {
                hub::store::day_forecast::record_day(c, march(day), ZONE, Timestamp(at(day, 0)))
            })
            .unwrap();
    }

    fn refresh(&self, now: i64) -> usize {
        self.store
            .write_blocking(move |c| report_rollup::refresh(c, ZONE, Timestamp(now)))
            .unwrap()
    }

    /// The report as `hub report` computes it now (rollups where usable), and the days it read
    /// from rollups.
    fn report(&self, from: u32, to: u32, now: i64) -> (serde_json::Value, usize) {
        let r = self
            .store
            .read_blocking(move |c| {
                report::compute_with(c, march(from), march(to), ZONE, SETTINGS, Timestamp(now))
            })
            .unwrap();
        (serde_json::to_value(&r).unwrap(), r.rollup_days)
    }

    /// The report from the whole journal: on a copy of the database without rollups.
    fn report_of_whole_journal(&self, from: u32, to: u32, now: i64) -> serde_json::Value {
        let copy = tempfile::tempdir().unwrap();
        let path = copy.path().join("copy.sqlite");
        let target = path.to_string_lossy().into_owned();
        self.store
            .read_blocking(move |c| {
                c.execute("VACUUM INTO ?1", [target])
                    .map_err(hub::store::sql_error(c))
            })
            .unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("DELETE FROM report_rollup; DELETE FROM report_rollup_state;")
            .unwrap();
        let r = report::compute_with(
            &conn,
            march(from),
            march(to),
            ZONE,
            SETTINGS,
            Timestamp(now),
        )
        .unwrap();
        assert_eq!(r.rollup_days, 0);
        serde_json::to_value(&r).unwrap()
    }

    /// Every period's report equals the whole journal's; returns the days read from rollups.
    fn assert_identical(&self, periods: &[(u32, u32)], now: i64, what: &str) -> usize {
        let mut rolled = 0;
        for (from, to) in periods {
            let (report, days) = self.report(*from, *to, now);
            let journal = self.report_of_whole_journal(*from, *to, now);
            assert!(
                report == journal,
                "{what}: March {from}..{to} differs from the whole journal's figures:\n{}\n{}",
                serde_json::to_string(&report).unwrap(),
                serde_json::to_string(&journal).unwrap()
            );
            rolled += days;
        }
        rolled
    }
}

const PERIODS: [(u32, u32); 5] = [(1, 13), (3, 13), (5, 9), (12, 13), (2, 12)];

/// Over several generated histories: rolled up at midnight, the figures are the whole
/// journal's; then late movements (dated in a rolled-up day, a return for an order of a
/// rolled-up day, an undone collection), the next day, and two days the hub was off.
#[test]
fn rollups_give_the_whole_journals_figures_over_random_histories_with_late_movements() {
    for seed in 1..=4u64 {
        let mut site = Site::new(seed);
        for day in 1..=12 {
            if day > 2 && day % 3 != 0 {
                site.forecasts(day);
            }
            site.day(day);
        }
        let now = at(12, 900);
        // Before any rollup: the whole journal.
        assert_eq!(site.assert_identical(&PERIODS, now, "no rollups"), 0);
        assert_eq!(site.refresh(now), report_rollup::HORIZON_DAYS as usize);
        assert!(site.assert_identical(&PERIODS, now, "rolled up") > 0);

        // A movement dated in a rolled-up day arrives (a late sync): the rollups are stale;
        // the report reads the whole journal until the next refresh rebuilds them.
        site.movement("P1", "L4", None, "loss", 1, -1, "late sync", at(5, 600));
        assert_eq!(
            site.assert_identical(&PERIODS, now, "late movement"),
            0,
            "seed {seed}: a late movement must not be hidden by the rollups"
        );
        site.refresh(now);
        assert!(site.assert_identical(&PERIODS, now, "rebuilt") > 0);

        // A return today for an order collected on the 7th, and an order of the 8th whose
        // handover is undone (its collection cleared, its goods back).
        let (order7, order8) = collected_orders(&site, 7, 8);
        site.movement(
            "P0",
            "L7",
            None,
            "return",
            1,
            1,
            &format!("pickup order {order7}"),
            at(12, 960),
        );
        let o8 = order8.clone();
        site.store
            .write_blocking(move |c| {
                c.execute(
                    "UPDATE pickup_order SET status = 'open', collected_at = NULL WHERE order_id = ?1",
                    [o8],
                )
                .map_err(hub::store::sql_error(c))
            })
            .unwrap();
        site.movement(
            "P2",
            "L8",
            None,
            "return",
            1,
            1,
            &format!("pickup order {order8}"),
            at(12, 965),
        );
        let now = at(12, 1000);
        assert!(site.assert_identical(&PERIODS, now, "returns after the rollups") > 0);

        // The next day: its rows, a row dated yesterday evening that arrives after midnight,
        // then the refresh rolls up the 12th from the checkpoint.
        site.day(13);
        site.movement(
            "G0",
            "L12",
            None,
            "loss",
            100,
            -100,
            "late evening",
            at(12, 1430),
        );
        let now = at(13, 1200);
        assert_eq!(site.refresh(now), 1);
        let next = [(1, 14), (6, 14), (13, 14), (12, 13)];
        assert!(site.assert_identical(&next, now, "next day") > 0);

        // Off from the 13th evening for three midnights: the first refresh after it rolls
        // up the 13th to the 15th.
        site.day(14);
        site.day(15);
        let now = at(16, 60);
        assert_eq!(site.refresh(now), 3);
        let later = [(1, 17), (10, 17), (14, 16), (16, 17)];
        assert!(site.assert_identical(&later, now, "after two days off") > 0);
    }
}

/// One order collected on the site day `a` and one on `b` of March.
fn collected_orders(site: &Site, a: u32, b: u32) -> (String, String) {
    let pick = |day: u32| {
        site.store
            .read_blocking(move |c| {
                c.query_row(
                    "SELECT o.order_id FROM pickup_order o
                     WHERE o.collected_at >= ?1 AND o.collected_at < ?2
                       AND EXISTS (SELECT 1 FROM movement m WHERE m.reference = 'pickup order ' || o.order_id)
                     ORDER BY o.order_id LIMIT 1",
                    params![at(day, 0), at(day + 1, 0)],
                    |r| r.get::<_, String>(0),
                )
                .map_err(hub::store::sql_error(c))
            })
            .unwrap()
    };
    (pick(a), pick(b))
}

/// A hub switched off before midnight and started two days later: its first refresh rolls up
/// the days it missed, and the figures are the whole journal's.
#[test]
fn a_hub_off_at_midnight_rolls_up_the_missed_days_on_its_first_refresh() {
    let mut site = Site::new(11);
    for day in 1..=6 {
        site.day(day);
    }
    assert!(site.refresh(at(6, 600)) > 0);
    // Off from the 6th 22:00 to the 9th 08:00; the rows of the 6th evening were written
    // before it went off.
    site.movement("P3", "L6", None, "loss", 1, -1, "evening", at(6, 1300));
    let now = at(9, 480);
    let periods = [(1, 10), (4, 10), (6, 9), (9, 10)];
    // Before the refresh: days 6..8 are not rolled up; the report is still right.
    site.assert_identical(&periods, now, "before the first refresh");
    assert_eq!(site.refresh(now), 3, "the 6th to the 8th");
    let (_, days) = site.report(4, 10, now);
    assert_eq!(days, 5, "the 4th to the 8th from their rollups");
    site.assert_identical(&periods, now, "after the first refresh");
}

/// A rollup record that cannot be read, of another format version, or a state row of
/// another version is never read: the report reads the whole journal, and the next refresh
/// rebuilds them.
#[test]
fn a_damaged_or_old_rollup_is_rebuilt_not_trusted() {
    let mut site = Site::new(5);
    for day in 1..=8 {
        site.day(day);
    }
    let now = at(8, 700);
    site.refresh(now);
    assert_eq!(site.report(3, 9, now).1, 5);
    let damage = [
        "UPDATE report_rollup SET record = '{\"r\": ' WHERE day = '2026-03-05'",
        "UPDATE report_rollup SET version = version - 1 WHERE day = '2026-03-04'",
        "UPDATE report_rollup SET record = '[1, 2]' WHERE day = '2026-03-06'",
        "UPDATE report_rollup_state SET version = version + 1",
        "UPDATE report_rollup_state SET checkpoint = 'not json'",
        "UPDATE report_rollup_state SET zone = 'Europe/Paris'",
    ];
    for sql in damage {
        site.store
            .write_blocking(move |c| c.execute(sql, []).map_err(hub::store::sql_error(c)))
            .unwrap();
        let (_, days) = site.report(3, 9, now);
        assert_eq!(days, 0, "{sql}: the damaged rollups were read");
        site.assert_identical(&[(3, 9), (1, 9)], now, sql);
        assert!(site.refresh(now) > 0, "{sql}: not rebuilt");
        assert_eq!(
            site.report(3, 9, now).1,
            5,
            "{sql}: rebuilt rollups not read"
        );
        site.assert_identical(&[(3, 9), (1, 9), (8, 9)], now, sql);
    }
}

//! `hub bench dashboard`: how long the manager's dashboard takes for 30 days of a busy site
//! (5,000 pickup orders a day by default), beside the raw SQL queries that read the same rows
//! in the same run.
//!
//! A fresh store in a temporary folder under the data directory is filled with generated days
//! (`store::bench_site`), and the hub's daily forecast job is run for each of its days as a
//! site that ran every day would have (`bench_site::record_forecasts`: the day-ahead forecasts
//! the report's forecast accuracy reads), outside the timed part, and so are the per-site-day
//! rollups the daemon writes once each day has closed (`store::report_rollup::refresh`).
//! Each round then times (1) the raw queries alone
//! (`store::report::raw_reads_with_rollups`: the rows the report reads — the rollup records,
//! the journal's tail after them, the live tables, the stored forecasts — fetched, nothing
//! computed), (2) the dashboard as served: `store::report::compute` (the function behind
//! `hub report`) plus the page with its SVG charts, and, for information, (3) the raw reads of
//! the whole journal the report made before the rollups (`store::report::raw_reads`). The medians are reported; the goal is a render in ≤ 500 ms. A baseline that
//! could not be measured (no rows read, or a failure) is an error, not a pass.

use crate::catalogue::Lang;
use crate::station_app::dashboard::{Frame, render};
use crate::store::{Store, StoreOptions, bench_site, report};
use std::path::Path;
use std::time::Instant;

/// The dashboard must render 30 days within this many milliseconds.
pub const TARGET_MS: f64 = 500.0;

/// What to generate and how often to measure.
#[derive(Debug, Clone, Copy)]
pub struct DashboardBenchOptions {
    pub orders_per_day: i64,
    pub days: i64,
    pub rounds: usize,
}

/// The run's figures; field names are the JSON contract.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DashboardBenchReport {
    pub orders_per_day: i64,
    pub days: i64,
    pub orders: i64,
    pub movements: i64,
    pub rounds: usize,
    pub fill_s: f64,
    /// Day-ahead forecasts stored by the daily job over the period, and how long the job took
    /// for all its days (not timed with the dashboard).
    pub forecasts_stored: usize,
    pub forecasts_s: f64,
    pub rows_read: i64,
    /// Closed site days rolled up (`report_rollup::refresh`, not timed below) and how long it
    /// took; days of the period the dashboard read from their rollups.
    pub rollup_days_written: usize,
    pub rollup_s: f64,
    pub rollup_days_read: usize,
    /// Median of the raw reads of the whole journal and the live tables (what the report read
    /// before the rollups; for information).
    pub whole_journal_raw_sql_ms: f64,
    pub whole_journal_rows_read: i64,
    /// Median render of the dashboard over the whole period (`report::compute` + page).
    pub dashboard_30d_ms: f64,
    /// Median of the raw queries reading the same rows.
    pub dashboard_30d_raw_sql_ms: f64,
    pub page_bytes: usize,
    pub target_ms: f64,
}

impl DashboardBenchReport {
    /// Whether the render met [`TARGET_MS`].
    pub fn meets_targets(&self) -> bool {
        self.dashboard_30d_ms <= TARGET_MS
    }
}

impl std::fmt::Display for DashboardBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "Manager dashboard over {} days of {} orders a day ({} orders, {} movements; filled in {:.1} s)",
            self.days, self.orders_per_day, self.orders, self.movements, self.fill_s
        )?;
        writeln!(
            f,
            "  daily forecast job: {} day-ahead forecasts stored in {:.1} s (not timed below)",
            self.forecasts_stored, self.forecasts_s
        )?;
        writeln!(
            f,
            "  rollups: {} closed days written in {:.1} s (not timed below); the dashboard read {} days from them",
            self.rollup_days_written, self.rollup_s, self.rollup_days_read
        )?;
        writeln!(
            f,
            "  raw SQL reads, whole journal, before the rollups ({} rows): {:>8.1} ms (for information)",
            self.whole_journal_rows_read, self.whole_journal_raw_sql_ms
        )?;
        writeln!(
            f,
            "  raw SQL reads of the same rows ({} rows): {:>8.1} ms (median of {})",
            self.rows_read, self.dashboard_30d_raw_sql_ms, self.rounds
        )?;
        writeln!(
            f,
            "  dashboard (report + SVG page):  {:>8.1} ms  ({:.1}x raw; page {} KB)  target ≤ {:.0} ms: {}",
            self.dashboard_30d_ms,
            self.dashboard_30d_ms / self.dashboard_30d_raw_sql_ms.max(1e-9),
            self.page_bytes / 1024,
            self.target_ms,
            if self.meets_targets() {
                "met"
            } else {
                "MISSED"
            }
        )
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Runs the bench in a temporary folder under `dir`.
pub fn run(dir: &Path, options: &DashboardBenchOptions) -> anyhow::Result<DashboardBenchReport> {
    let zone = chrono_tz::Asia::Shanghai;
    let days = options.days.clamp(1, 366);
    let tmp = tempfile::tempdir_in(dir)?;
    let store = Store::open(
        &tmp.path().join("bench.sqlite"),
        "bench",
        &StoreOptions::default(),
    )?;
    // Fixed dates: the figures do not depend on today.
    let from: chrono::NaiveDate = "2026-03-01".parse()?;
    let to = from + chrono::Days::new(days as u64);
    let start = crate::clock::day_start(zone, from).millis();
    let per_day = options.orders_per_day.max(1);
    let began = Instant::now();
    let filled = store.write_blocking(move |c| bench_site::fill(c, start, days, per_day, 7))?;
    let fill_s = began.elapsed().as_secs_f64();
    let began = Instant::now();
    let forecasts_stored =
        store.write_blocking(move |c| bench_site::record_forecasts(c, start, days, zone))?;
    let forecasts_s = began.elapsed().as_secs_f64();
    let now = crate::clock::day_start(zone, to);
    let began = Instant::now();
    let rollup_days_written =
        store.write_blocking(move |c| crate::store::report_rollup::refresh(c, zone, now))?;
    let rollup_s = began.elapsed().as_secs_f64();
    let (mut raw, mut full, mut rows_read, mut page_bytes) = (Vec::new(), Vec::new(), 0, 0);
    let (mut whole, mut whole_rows, mut rollup_days_read) = (Vec::new(), 0, 0);
    for _ in 0..options.rounds.max(1) {
        let t = Instant::now();
        whole_rows = store.read_blocking(move |c| report::raw_reads(c, from, to, zone))?;
        whole.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        rows_read =
            store.read_blocking(move |c| report::raw_reads_with_rollups(c, from, to, zone))?;
        raw.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let r = store.read_blocking(move |c| report::compute(c, from, to, zone, 2, now))?;
        rollup_days_read = r.rollup_days;
        let frame = Frame {
            csrf: "-",
            staff_id: "bench",
            staff_name: "bench",
            station_name: "bench",
            period: "30",
        };
        let page = render(&r, Lang::ZhCn, zone, now, &frame);
        full.push(t.elapsed().as_secs_f64() * 1e3);
        page_bytes = page.len();
        anyhow::ensure!(
            page.contains("class=\"pt\""),
            "the dashboard page has no chart points; the measurement is void"
        );
    }
    store.close();
    anyhow::ensure!(
        rows_read > 0,
        "the raw SQL baseline read no rows, so it could not be measured"
    );
    Ok(DashboardBenchReport {
        orders_per_day: per_day,
        days,
        orders: filled.orders,
        movements: filled.movements,
        rounds: options.rounds.max(1),
        fill_s,
        forecasts_stored,
        forecasts_s,
        rows_read,
        dashboard_30d_ms: median(full),
        dashboard_30d_raw_sql_ms: median(raw),
        rollup_days_written,
        rollup_s,
        rollup_days_read,
        whole_journal_raw_sql_ms: median(whole),
        whole_journal_rows_read: whole_rows,
        page_bytes,
        target_ms: TARGET_MS,
    })
}

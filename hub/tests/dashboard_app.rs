//! The manager's dashboard over HTTP against a real SQLite file and a real server on a loopback
//! port: supervisors only; every figure on the page, the JSON and the CSV equal what the real
//! `hub report --json` binary prints for the same period; the charts have one point per day
//! with a value and the heat map a cell per weekday and hour.
//!
//! The period is 2026-03-02 .. 2026-03-04 (to = 03-05) in Asia/Shanghai; a handover at 23:30
//! site time on 03-03 counts on 03-03, in the heat map's Tuesday 23:00.

use chrono::{NaiveDate, TimeZone};
mod support;

use hub::config::Config;
use hub::station_app::{StationApp, feed::StationFeed, hash_pin, router};
use hub::store::staff::{self as staff_store, Role, StaffMember};
use hub::store::{Store, StoreError, StoreOptions, ledger, sku as sku_store};
use hub::workflows::Site;
use hub_core::{BatchKey, Movement, MovementId, MovementKind, Sku, SkuCode, StockUnit, Timestamp};
use rusqlite::params;
use std::net::SocketAddr;
use support::http::{http, pair_and_sign_in};

const ZONE: chrono_tz::Tz = chrono_tz::Asia::Shanghai;
const CONFIG: &str = "[site]\nid = \"pp-1\"\ntimezone = \"Asia/Shanghai\"\n[store]\ndata_dir = \"data\"\n[[stations]]\nid = \"desk-1\"\nkind = \"pickup\"\nname = \"取货台 1\"\n[receiving]\non_time_tolerance_minutes = 15\n";

fn at(day: u32, hour: u32, minute: u32) -> i64 {
    ZONE.from_local_datetime(
        &NaiveDate::from_ymd_opt(2026, 3, day)
            .unwrap()
            .and_hms_opt(hour, minute, 0)
            .unwrap(),
    )
    .unwrap()
    .timestamp_millis()
}

fn movement(
    id: &str,
    sku: &str,
    kind: MovementKind,
    quantity: i64,
    lot: &str,
    when: i64,
    reference: &str,
) -> Movement {
    Movement {
        id: MovementId::new(id).unwrap(),
        sku: SkuCode::new(sku).unwrap(),
        batch: Some(BatchKey::new(lot, "2026-03-06".parse().ok()).unwrap()),
        kind,
        quantity,
        reason: "scenario".into(),
        reference: reference.into(),
        at: Timestamp(when),
    }
}

fn seed(store: &Store) {
    use MovementKind::*;
    let clerk = hash_pin("2468").unwrap();
    let boss = hash_pin("1357").unwrap();
    let manager = hash_pin("8642").unwrap();
    store
        .write_blocking(move |c| {
            for (code, unit) in [("MILK", StockUnit::Piece), ("RICE", StockUnit::Gram)] {
                sku_store::upsert(c, &Sku::new(SkuCode::new(code).unwrap(), code, unit), Timestamp(0))?;
            }
            for m in [
                movement("m1", "MILK", Receipt, 10, "L1", at(2, 8, 0), "d1"),
                movement("m2", "RICE", Receipt, 5000, "R1", at(2, 8, 0), "d1"),
                movement("m3", "MILK", Issue, 4, "L1", at(2, 19, 0), "pickup order O1"),
                movement("m4", "MILK", Issue, 6, "L1", at(3, 23, 30), "pickup order O2"),
                movement("m5", "RICE", Loss, 100, "R1", at(4, 9, 0), "spoiled"),
                movement("m6", "RICE", Issue, 900, "R1", at(4, 10, 0), "counter"),
            ] {
                ledger::record(c, &m).map_err(|e| match e {
                    ledger::RecordError::Store(e) => e,
                    other => panic!("{other}"),
                })?;
            }
            for (id, closes, collected, ordered) in [
                ("O1", at(2, 20, 0), Some(at(2, 19, 0)), 4),
                ("O2", at(3, 20, 0), Some(at(3, 23, 30)), 7),
                ("O3", at(4, 20, 0), None, 1),
            ] {
                c.execute(
                    "INSERT INTO pickup_order (order_id, site, code_salt, code_hash, body, opens_at, closes_at, status, collected_at, version, updated_at)
                     VALUES (?1, 'pp-1', 'aa', 'bb', '{}', ?2, ?3, ?4, ?5, 1, 0)",
                    params![id, at(1, 8, 0), closes, if collected.is_some() { "collected" } else { "open" }, collected],
                )
                .map_err(hub::store::sql_error(c))?;
                c.execute(
                    "INSERT INTO pickup_order_line (order_id, line_no, sku, quantity) VALUES (?1, 1, 'MILK', ?2)",
                    params![id, ordered],
                )
                .map_err(hub::store::sql_error(c))?;
                if let Some(t) = collected {
                    c.execute(
                        "INSERT INTO handover (order_id, station, at, body) VALUES (?1, 'desk-1', ?2, '{}')",
                        params![id, t],
                    )
                    .map_err(hub::store::sql_error(c))?;
                }
            }
            // Delivery D1 was expected at 07:50; its first line was decided at 08:00: on time
            // within the configured 15 minutes.
            let manifest = hub_core::receiving::Manifest {
                delivery_id: "D1".into(),
                supplier: "Farm".into(),
                expected_at: Some("2026-03-02T07:50:00+08:00".into()),
                lines: (1..=2)
                    .map(|n| hub_core::receiving::ManifestLine::unexpected(n, SkuCode::new("MILK").unwrap(), "L1"))
                    .collect(),
                cancelled: false,
                version: 1,
            };
            hub::store::deliveries::upsert_manifest(c, &manifest, Timestamp(at(1, 6, 0)))?;
            for (line, outcome) in [(1, "accepted"), (2, "held")] {
                c.execute(
                    "INSERT INTO line_decision (delivery_id, line_no, sku, lot, outcome, accepted, rejected, held, body, staff, decided_at)
                     VALUES ('D1', ?1, 'MILK', 'L1', ?2, 0, 0, 0, '{}', 'li', ?3)",
                    params![line, outcome, at(2, 8, 0)],
                )
                .map_err(hub::store::sql_error(c))?;
            }
            c.execute(
                "INSERT INTO quarantine (delivery_id, line_no, sku, lot, quantity, since, status)
                 VALUES ('D1', 2, 'MILK', 'L1', 3, ?1, 'held')",
                params![at(2, 8, 0)],
            )
            .map_err(hub::store::sql_error(c))?;
            c.execute(
                "INSERT INTO dispute (delivery_id, opened_at, closed_at, note) VALUES ('D1', ?1, ?2, 'short')",
                params![at(2, 10, 0), at(2, 10, 25)],
            )
            .map_err(hub::store::sql_error(c))?;
            for (id, name, role, hash) in [
                ("li", "李小红", Role::Clerk, clerk),
                ("wang", "王主管", Role::Supervisor, boss),
                ("zhou", "周店长", Role::Manager, manager),
            ] {
                staff_store::upsert_staff(
                    c,
                    &StaffMember {
                        staff_id: id.into(),
                        name: name.into(),
                        role,
                        lang: "zh-CN".into(),
                        disabled: false,
                        failed_pins: 0,
                        locked_until: None,
                        pin_hash: hash,
                    },
                    Timestamp(0),
                )?;
            }
            // The day-ahead forecasts the hub's daily job made on each day of the period.
            for day in 2..=4 {
                let day = NaiveDate::from_ymd_opt(2026, 3, day).unwrap();
                let made_at = Timestamp(ZONE.from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap()).unwrap().timestamp_millis());
                hub::store::day_forecast::record_day(c, day, ZONE, made_at)?;
            }
            // Valid for a long time: the test does not depend on today.
            staff_store::add_pairing(c, "desk-1", "11223344", Timestamp(0), Timestamp(i64::MAX / 4))?;
            staff_store::add_pairing(c, "desk-1", "55667788", Timestamp(0), Timestamp(i64::MAX / 4))?;
            staff_store::add_pairing(c, "desk-1", "99001122", Timestamp(0), Timestamp(i64::MAX / 4))?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
}

fn open(config: &Config) -> Store {
    Store::open(
        &config.database_path(),
        config.site.id.as_str(),
        &StoreOptions::default(),
    )
    .unwrap()
}

async fn signed_in(addr: SocketAddr, code: &str, staff: &str, pin: &str) -> Vec<String> {
    pair_and_sign_in(addr, code, staff, pin).await.cookies()
}

/// `data-figure="key" data-value="v"` pairs of the page.
fn figures(page: &str) -> Vec<(String, Option<f64>)> {
    page.split("data-figure=\"")
        .skip(1)
        .map(|rest| {
            let key = &rest[..rest.find('"').unwrap()];
            let v = rest.split("data-value=\"").nth(1).unwrap();
            let v = &v[..v.find('"').unwrap()];
            (key.to_owned(), (!v.is_empty()).then(|| v.parse().unwrap()))
        })
        .collect()
}

/// The figure `key` (`a.b`, or `by_unit.<unit>.x`) of a `hub report --json` document.
fn lookup(report: &serde_json::Value, key: &str) -> Option<f64> {
    let parts: Vec<&str> = key.split('.').collect();
    let v = match parts.as_slice() {
        ["by_unit", unit, field] => report["by_unit"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["unit"] == *unit)
            .map(|u| u[*field].clone())
            .unwrap_or(serde_json::Value::Null),
        [a, b] => report[*a][*b].clone(),
        [a] => report[*a].clone(),
        _ => panic!("unexpected key {key}"),
    };
    v.as_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_hub_reports_figures_with_charts_to_supervisors_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hub.toml"), CONFIG).unwrap();
    let config = Config::parse(CONFIG, dir.path()).unwrap();
    std::fs::create_dir_all(&config.store.data_dir).unwrap();
    let store = open(&config);
    let s = store.clone();
    tokio::task::spawn_blocking(move || seed(&s)).await.unwrap();
    store.close();

    // What the operator's `hub report --json` prints for the period.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hub"))
        .args([
            "report",
            "--from",
            "2026-03-02",
            "--to",
            "2026-03-05",
            "--json",
            "--config",
        ])
        .arg(dir.path().join("hub.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let store = open(&config);
    let app = StationApp::new(store.clone(), Site::of(&config), StationFeed::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(app)).await });
    let period = "from=2026-03-02&to=2026-03-05";

    // No session, or a clerk: refused.
    let anonymous = http(
        addr,
        "GET",
        &format!("/station/dashboard?{period}"),
        &[],
        "",
    )
    .await;
    assert_eq!(anonymous.status, 401);
    let clerk = signed_in(addr, "11223344", "li", "2468").await;
    let clerk: Vec<&str> = clerk.iter().map(String::as_str).collect();
    let refused = http(
        addr,
        "GET",
        &format!("/station/dashboard?{period}"),
        &clerk,
        "",
    )
    .await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("主管"), "{}", refused.body);
    let refused = http(
        addr,
        "GET",
        &format!("/station/dashboard.csv?{period}"),
        &clerk,
        "",
    )
    .await;
    assert_eq!(refused.status, 403);

    let boss = signed_in(addr, "55667788", "wang", "1357").await;
    let boss: Vec<&str> = boss.iter().map(String::as_str).collect();
    let page = http(
        addr,
        "GET",
        &format!("/station/dashboard?{period}"),
        &boss,
        "",
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("缺货率") && page.body.contains("动销率"));

    // Every figure on the page is the CLI's.
    let shown = figures(&page.body);
    for key in [
        "stock_out_rate",
        "by_unit.piece.turnover_days",
        "by_unit.gram.loss_rate",
        "by_unit.piece.forecast_wape",
        "sell_through_rate",
        "acceptance_pass_rate",
        "order_fill_rate",
        "near_expiry_share",
        "pickups.collected_on_time",
        "disputes.settled_within_24_h",
        "disputes.responded_within_30_min",
        "handovers",
        "receipts",
        "deliveries.on_time_rate",
    ] {
        assert!(
            shown.iter().any(|(k, _)| k == key),
            "{key} is not on the page"
        );
    }
    for (key, value) in &shown {
        let want = lookup(&cli, key);
        assert!(
            match (value, want) {
                (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                (None, None) => true,
                _ => false,
            },
            "{key}: page {value:?}, hub report {want:?}"
        );
    }
    // The handover at 23:30 site time on 03-03 counts on 03-03, at Tuesday 23:00.
    assert_eq!(cli["handovers"], 2);
    assert_eq!(cli["daily"][1]["handovers"], 1);
    assert_eq!(cli["handovers_by_weekday_hour"][1][23], 1);
    assert_eq!(cli["delivery_on_time_tolerance_minutes"], 15);
    assert_eq!(cli["deliveries"]["on_time"], 1);
    assert_eq!(cli["daily"][0]["deliveries"]["on_time_rate"], 1.0);
    // `hub report` as text says it too.
    let text = std::process::Command::new(env!("CARGO_BIN_EXE_hub"))
        .args([
            "report",
            "--from",
            "2026-03-02",
            "--to",
            "2026-03-05",
            "--config",
        ])
        .arg(dir.path().join("hub.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("deliveries on time (±15 min)") && text.contains("100.0% (1 of 1 due"),
        "{text}"
    );

    // Charts: one point per day with a value; the heat map has 7 × 24 cells.
    let stock_out = page
        .body
        .split("data-figure=\"stock_out_rate\"")
        .nth(1)
        .unwrap();
    let svg = &stock_out[..stock_out.find("</svg>").unwrap()];
    assert_eq!(svg.matches("class=\"pt\"").count(), 3, "{svg}");
    assert!(svg.contains("class=\"target\""));
    let pass = page
        .body
        .split("data-figure=\"acceptance_pass_rate\"")
        .nth(1)
        .unwrap();
    let svg = &pass[..pass.find("</svg>").unwrap()];
    assert_eq!(
        svg.matches("class=\"pt\"").count(),
        1,
        "only 03-02 had decisions"
    );
    assert_eq!(page.body.matches("class=\"cell\"").count(), 168);
    assert!(
        page.body
            .contains("data-day=\"1\" data-hour=\"23\" data-count=\"1\"")
    );
    assert_eq!(page.body.matches("class=\"held-line\"").count(), 1);

    // The JSON is the CLI's report (but for `now`-dependent ages); the CSV has a row a day.
    let json = http(
        addr,
        "GET",
        &format!("/station/dashboard.json?{period}"),
        &boss,
        "",
    )
    .await;
    assert_eq!(json.status, 200);
    let app_report: serde_json::Value = serde_json::from_str(&json.body).unwrap();
    for key in [
        "daily",
        "by_unit",
        "pickups",
        "disputes",
        "handovers_by_weekday_hour",
        "stock_out_rate",
        "deliveries",
        "delivery_on_time_tolerance_minutes",
        "from",
        "to",
    ] {
        assert_eq!(app_report[key], cli[key], "{key}");
    }
    let csv = http(
        addr,
        "GET",
        &format!("/station/dashboard.csv?{period}"),
        &boss,
        "",
    )
    .await;
    assert_eq!(csv.status, 200);
    let rows: Vec<&str> = csv.body.lines().collect();
    assert_eq!(rows.len(), 4, "{}", csv.body);
    assert!(rows[0].starts_with("date,") && rows[0].contains("stock_gram"));
    let header: Vec<&str> = rows[0].split(',').collect();
    assert!(
        header.contains(&"forecast_wape_piece")
            && header.contains(&"disputes_responded_within_30_min")
            && header.contains(&"deliveries_on_time_rate"),
        "{}",
        rows[0]
    );
    assert!(
        rows[1..]
            .iter()
            .all(|r| r.split(',').count() == header.len()),
        "{}",
        csv.body
    );
    assert!(rows[2].starts_with("2026-03-03,"));
    assert!(rows[1].ends_with(",1,1,0,0,0,1.000000"), "{}", rows[1]);

    // English on request; an unreadable period is refused in words.
    let en = http(
        addr,
        "GET",
        &format!("/station/dashboard?{period}&lang=en"),
        &boss,
        "",
    )
    .await;
    assert!(en.body.contains("Stock-out rate"));
    let bad = http(addr, "GET", "/station/dashboard?period=9", &boss, "").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("30"), "{}", bad.body);
    store.close();
}

/// A store manager (role `manager`) sees the dashboard, its CSV and the drill-down, and may do
/// what a supervisor may (here: the import page); a clerk still may not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_manager_sees_the_dashboard_and_may_do_what_a_supervisor_may() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(CONFIG, dir.path()).unwrap();
    std::fs::create_dir_all(&config.store.data_dir).unwrap();
    let store = open(&config);
    let s = store.clone();
    tokio::task::spawn_blocking(move || seed(&s)).await.unwrap();
    let app = StationApp::new(store.clone(), Site::of(&config), StationFeed::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(app)).await });
    let period = "from=2026-03-02&to=2026-03-05";

    let manager = signed_in(addr, "99001122", "zhou", "8642").await;
    let manager: Vec<&str> = manager.iter().map(String::as_str).collect();
    let clerk = signed_in(addr, "11223344", "li", "2468").await;
    let clerk: Vec<&str> = clerk.iter().map(String::as_str).collect();
    for path in [
        format!("/station/dashboard?{period}"),
        format!("/station/dashboard.csv?{period}"),
        format!("/station/dashboard.json?{period}"),
        "/station/dashboard/sku?code=MILK".to_owned(),
        "/station/import".to_owned(),
    ] {
        let seen = http(addr, "GET", &path, &manager, "").await;
        assert_eq!(seen.status, 200, "{path}: {}", seen.body);
        let refused = http(addr, "GET", &path, &clerk, "").await;
        assert_eq!(refused.status, 403, "{path}: {}", refused.body);
    }
    let page = http(
        addr,
        "GET",
        &format!("/station/dashboard?{period}"),
        &manager,
        "",
    )
    .await;
    assert!(page.body.contains("缺货率"), "{}", page.body);
    // The stored role reads back as a manager.
    let member = store
        .read_blocking(|c| staff_store::staff(c, "zhou"))
        .unwrap()
        .unwrap();
    assert_eq!(member.role, Role::Manager);
    store.close();
}

/// Over the last days (relative to the clock, so that the closed days are
/// rolled up), `hub report --json` — which rolls up the closed days first — and the dashboard's
/// JSON read the rollups and agree; a movement dated in a rolled-up day that arrives later
/// changes the figures in both, still alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_report_and_the_dashboard_agree_from_rollups_and_see_a_late_movement() {
    use MovementKind::*;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hub.toml"), CONFIG).unwrap();
    let config = Config::parse(CONFIG, dir.path()).unwrap();
    std::fs::create_dir_all(&config.store.data_dir).unwrap();
    let store = open(&config);
    let s = store.clone();
    tokio::task::spawn_blocking(move || seed(&s)).await.unwrap();
    let today = hub::clock::site_date(ZONE, hub::clock::now());
    let noon = move |days_ago: u64| {
        let day = today - chrono::Days::new(days_ago);
        ZONE.from_local_datetime(&day.and_hms_opt(12, 0, 0).unwrap())
            .unwrap()
            .timestamp_millis()
    };
    let record = |store: &Store, moves: Vec<Movement>| {
        store
            .write_blocking(move |c| {
                for m in &moves {
                    ledger::record(c, m).map_err(|e| match e {
                        ledger::RecordError::Store(e) => e,
                        other => panic!("{other}"),
                    })?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap()
    };
    let moves = vec![
        movement("n1", "MILK", Receipt, 30, "N1", noon(4), "d4"),
        movement("n2", "MILK", Issue, 5, "N1", noon(3), "counter"),
        movement("n3", "RICE", Receipt, 2000, "N2", noon(3), "d3"),
        movement("n4", "MILK", Issue, 7, "N1", noon(2), "counter"),
        movement("n5", "RICE", Issue, 500, "N2", noon(1), "counter"),
    ];
    let s = store.clone();
    tokio::task::spawn_blocking(move || record(&s, moves))
        .await
        .unwrap();
    store.close();
    let (from, to) = (today - chrono::Days::new(4), today + chrono::Days::new(1));
    let cli = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hub"))
            .args([
                "report",
                "--from",
                &from.to_string(),
                "--to",
                &to.to_string(),
                "--json",
                "--config",
            ])
            .arg(dir.path().join("hub.toml"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        without_ages(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap())
    };
    let before = cli();
    let store = open(&config);
    // The CLI rolled up the closed days.
    let through: String = store
        .read(|c| {
            c.query_row("SELECT through_day FROM report_rollup_state", [], |r| {
                r.get(0)
            })
            .map_err(hub::store::sql_error(c))
        })
        .await
        .unwrap();
    assert_eq!(through, (today - chrono::Days::new(1)).to_string());
    let app = StationApp::new(store.clone(), Site::of(&config), StationFeed::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(app)).await });
    let boss = signed_in(addr, "55667788", "wang", "1357").await;
    let boss: Vec<&str> = boss.iter().map(String::as_str).collect();
    let json = format!("/station/dashboard.json?from={from}&to={to}");
    let dashboard = |boss: Vec<String>| {
        let json = json.clone();
        async move {
            let boss: Vec<&str> = boss.iter().map(String::as_str).collect();
            let got = http(addr, "GET", &json, &boss, "").await;
            assert_eq!(got.status, 200, "{}", got.body);
            without_ages(serde_json::from_str::<serde_json::Value>(&got.body).unwrap())
        }
    };
    let boss_owned: Vec<String> = boss.iter().map(|s| s.to_string()).collect();
    assert_eq!(dashboard(boss_owned.clone()).await, before);
    assert_eq!(
        lookup(&before, "by_unit.piece.handed_over_quantity"),
        Some(12.0)
    );

    // A handover two days ago that reaches the hub only now (a late sync).
    let s = store.clone();
    let late = movement("late", "MILK", Issue, 3, "N1", noon(2), "late sync");
    tokio::task::spawn_blocking(move || record(&s, vec![late]))
        .await
        .unwrap();
    let after = dashboard(boss_owned).await;
    assert_eq!(
        lookup(&after, "by_unit.piece.handed_over_quantity"),
        Some(15.0)
    );
    store.close();
    assert_eq!(cli(), after);
}

/// A report without the held lines' ages (hours until the moment each was computed).
fn without_ages(mut report: serde_json::Value) -> serde_json::Value {
    for line in report["held_lines"].as_array_mut().into_iter().flatten() {
        line["age_hours"] = serde_json::Value::Null;
    }
    report
}

//! `hub report` figures against a hand-computed scenario on a real SQLite file: quantities per
//! unit kind (grams and pieces never added), stock-out counted only on days a SKU existed,
//! released lines passing, the site's calendar days (not UTC), and the extra figures.
//!
//! The period is Monday 2026-03-02 .. Wednesday 2026-03-04 (to = 03-05) in Asia/Shanghai.
//!
//! | SKU | unit | movements (site time) | end-of-day stock 02 / 03 / 04 |
//! |---|---|---|---|
//! | APPLE | piece | 02 08:00 +10 (A1, exp 03-05); 02 12:00 −4 (order O1); 03 12:00 −6 (O2); 04 08:00 +10 (A2, exp 03-20); 04 18:00 loss 1 (A2); 05 00:30 −2 (after the period) | 6 / 0 / 9 |
//! | SALT | piece | 03-01 +5 (S1, exp 03-06), before the period | 5 / 5 / 5 |
//! | LATE | piece | none: in the catalogue, never listed | — |
//! | RICE | gram | 03 08:00 +5000 (R1, exp 09-01); 03 13:00 −1000; 04 13:00 −1000 | — / 4000 / 3000 |
//!
//! - stock-out: listed SKU-days APPLE 3 + SALT 3 + RICE 2 = 8, out 1 (APPLE on 03) → 1/8;
//!   pieces 1/6, grams 0/2;
//! - pieces: stock 6+0+9+5+5+5 = 30 over 3 days, 10 handed over → turnover 3.0 d; received 20,
//!   lost 1 → loss 5 %; grams: 7000 / 2000 → 3.5 d; received 5000, lost 0 → 0 %; overall
//!   turnover and loss: none (two unit kinds);
//! - sell-through: APPLE, RICE sold of APPLE, SALT, RICE stocked → 2/3;
//! - near expiry (2 days) at the end of 03-04: lots on hand A2 (03-20), S1 (03-06), R1 → 1/3;
//! - pass rate: accepted, held then released, rejected → 2/3;
//! - pickups closing in the period (now = 04 19:00): O1 on time, O2 late, O3 never, O5 still
//!   open, O4 cancelled (not due) → due 4;
//! - order fill: O1 4 of 4, O2 6 of 7 → 10/11;
//! - disputes: settled after 20 min, 180 min, one open → median 100 min; within 30 min 1,
//!   2 h 1, 24 h 2; first responses after 10 min (a note), 180 (the settlement), 150 (photos
//!   inspected) → median 150, within 30 min 1; photos inspected after 15 and 150 min → within
//!   2 h 1 of 2;
//! - handovers: Monday 19:00 and Wednesday 09:00.
//!
//! Day by day (`daily`, the dashboard's trend charts), 02 / 03 / 04:
//!
//! - listed SKUs 2 / 3 / 3, out 0 / 1 / 0; sell-through 1/2 (APPLE of APPLE, SALT) / 2/3 / 1/3
//!   (RICE of SALT, RICE, APPLE received that day);
//! - receipts 1 / 1 / 1; handovers 1 / 0 / 1; lines decided 3 / 0 / 0 with 2 passed;
//! - pickups by the day their window closed: O1 on time / O2 late + O3 never / O5 still open;
//! - order fill by collection day: 4/4 / none / 6/7;
//! - disputes opened 1 (20 min) / 1 (180 min) / 1 (open); responded within 30 min and photos
//!   inspected within 2 h 1 / 0 / 0;
//! - near expiry 0/2 / 0/2 / 1/3;
//! - pieces: stock 11 / 5 / 14, handed over 4 / 6 / 0 → turnover 2.75 / 5/6 / none; received
//!   10 / 0 / 10, lost 0 / 0 / 1 → loss 0 / none / 0.1; grams only from 03: stock 4000, 1000
//!   handed over → 4.0.

use chrono::{NaiveDate, TimeZone};
use hub::store::{Store, StoreError, StoreOptions, deliveries, ledger, sku as sku_store};
use hub_core::{BatchKey, Movement, MovementId, MovementKind, Sku, SkuCode, StockUnit, Timestamp};
use rusqlite::params;

const ZONE: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

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

#[allow(
    clippy::too_many_arguments,
    reason = "one row of the scenario table, read like the table"
)]
fn movement(
    id: &str,
    sku: &str,
    kind: MovementKind,
    quantity: i64,
    lot: &str,
    expiry: &str,
    when: i64,
    reference: &str,
) -> Movement {
    Movement {
        id: MovementId::new(id).unwrap(),
        sku: SkuCode::new(sku).unwrap(),
        batch: Some(BatchKey::new(lot, expiry.parse().ok()).unwrap()),
        kind,
        quantity,
        reason: "scenario".into(),
        reference: reference.into(),
        at: Timestamp(when),
    }
}

/// The site day `day` of March 2026.
fn march(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, day).unwrap()
}

/// Runs the hub's daily forecast job for `day` (what the daemon's first checks round of the
/// day does), made at the day's start.
fn forecast_job(store: &Store, day: NaiveDate) -> usize {
    store
        .write_blocking(move |c| {
            let made_at = Timestamp(
                ZONE.from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap())
                    .unwrap()
                    .timestamp_millis(),
            );
            hub::store::day_forecast::record_day(c, day, ZONE, made_at)
        })
        .unwrap()
}

/// Records `moves` as a site that ran every day would have: in time order, the daily forecast
/// job running at the start of each site day from `first` to `last` before that day's
/// movements.
fn record_days_with_forecasts(
    store: &Store,
    moves: &[Movement],
    first: NaiveDate,
    last: NaiveDate,
) {
    let mut moves = moves.to_vec();
    moves.sort_by_key(|m| m.at);
    let day_start = |day: NaiveDate| {
        ZONE.from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap())
            .unwrap()
            .timestamp_millis()
    };
    let record = |moves: Vec<Movement>| {
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
    let mut day = first;
    let mut rest = moves;
    while day <= last {
        let begins = day_start(day);
        let before: Vec<Movement> = rest
            .iter()
            .filter(|m| m.at.millis() < begins)
            .cloned()
            .collect();
        rest.retain(|m| m.at.millis() >= begins);
        record(before);
        forecast_job(store, day);
        day = day + chrono::Days::new(1);
    }
    record(rest);
}

#[test]
fn every_report_figure_matches_the_hand_computed_scenario() {
    use MovementKind::*;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("hub.sqlite"),
        "s1",
        &StoreOptions::default(),
    )
    .unwrap();
    let moves = vec![
        movement(
            "m1",
            "SALT",
            Receipt,
            5,
            "S1",
            "2026-03-06",
            at(1, 9, 0),
            "d0",
        ),
        movement(
            "m2",
            "APPLE",
            Receipt,
            10,
            "A1",
            "2026-03-05",
            at(2, 8, 0),
            "d1",
        ),
        movement(
            "m3",
            "APPLE",
            Issue,
            4,
            "A1",
            "2026-03-05",
            at(2, 12, 0),
            "pickup order O1",
        ),
        movement(
            "m4",
            "RICE",
            Receipt,
            5000,
            "R1",
            "2026-09-01",
            at(3, 8, 0),
            "d2",
        ),
        movement(
            "m5",
            "APPLE",
            Issue,
            6,
            "A1",
            "2026-03-05",
            at(3, 12, 0),
            "pickup order O2",
        ),
        movement(
            "m6",
            "RICE",
            Issue,
            1000,
            "R1",
            "2026-09-01",
            at(3, 13, 0),
            "counter",
        ),
        movement(
            "m7",
            "APPLE",
            Receipt,
            10,
            "A2",
            "2026-03-20",
            at(4, 8, 0),
            "d3",
        ),
        movement(
            "m8",
            "RICE",
            Issue,
            1000,
            "R1",
            "2026-09-01",
            at(4, 13, 0),
            "counter",
        ),
        movement(
            "m9",
            "APPLE",
            Loss,
            1,
            "A2",
            "2026-03-20",
            at(4, 18, 0),
            "spoiled",
        ),
        // 00:30 on the 5th in Shanghai is still the 4th in UTC: outside the period.
        movement(
            "m10",
            "APPLE",
            Issue,
            2,
            "A2",
            "2026-03-20",
            at(5, 0, 30),
            "counter",
        ),
    ];
    store
        .write_blocking(move |c| {
            for (code, unit) in [
                ("APPLE", StockUnit::Piece),
                ("SALT", StockUnit::Piece),
                ("LATE", StockUnit::Piece),
                ("RICE", StockUnit::Gram),
            ] {
                sku_store::upsert(c, &Sku::new(SkuCode::new(code).unwrap(), code, unit), Timestamp(0))?;
            }
            for m in &moves {
                ledger::record(c, m).map_err(|e| match e {
                    ledger::RecordError::Store(e) => e,
                    other => panic!("{other}"),
                })?;
            }
            // Receiving: accepted, held then released, rejected.
            for (line, outcome) in [(1, "accepted"), (2, "held"), (3, "rejected")] {
                c.execute(
                    "INSERT INTO line_decision (delivery_id, line_no, sku, lot, outcome, accepted, rejected, held, body, staff, decided_at)
                     VALUES ('D1', ?1, 'APPLE', 'A1', ?2, 0, 0, 0, '{}', 'li', ?3)",
                    params![line, outcome, at(2, 8, 0)],
                )
                .map_err(hub::store::sql_error(c))?;
            }
            c.execute(
                "INSERT INTO quarantine (delivery_id, line_no, sku, lot, quantity, since, status, resolved_at)
                 VALUES ('D1', 2, 'APPLE', 'A1', 3, ?1, 'released', ?2)",
                params![at(2, 8, 0), at(2, 11, 0)],
            )
            .map_err(hub::store::sql_error(c))?;
            // Pickup orders: (id, closes, status, collected, ordered APPLE).
            for (id, closes, status, collected, ordered) in [
                ("O1", at(2, 20, 0), "collected", Some(at(2, 19, 0)), 4),
                ("O2", at(3, 20, 0), "collected", Some(at(4, 9, 0)), 7),
                ("O3", at(3, 20, 0), "open", None, 1),
                ("O4", at(3, 20, 0), "cancelled", None, 1),
                ("O5", at(4, 20, 0), "open", None, 1),
            ] {
                c.execute(
                    "INSERT INTO pickup_order (order_id, site, code_salt, code_hash, body, opens_at, closes_at, status, collected_at, version, updated_at)
                     VALUES (?1, 's1', 'aa', 'bb', '{}', ?2, ?3, ?4, ?5, 1, 0)",
                    params![id, at(1, 8, 0), closes, status, collected],
                )
                .map_err(hub::store::sql_error(c))?;
                c.execute(
                    "INSERT INTO pickup_order_line (order_id, line_no, sku, quantity) VALUES (?1, 1, 'APPLE', ?2)",
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
            for (id, opened) in [
                ("D1", at(2, 10, 0)),
                ("D2", at(3, 10, 0)),
                ("D3", at(4, 10, 0)),
            ] {
                c.execute(
                    "INSERT INTO dispute (delivery_id, opened_at, closed_at, note) VALUES (?1, ?2, NULL, 'n')",
                    params![id, opened],
                )
                .map_err(hub::store::sql_error(c))?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    // D1: a note after 10 min, photos inspected after 15, settled after 20; D2: nothing until
    // settled after 180 min (the settlement is its first response); D3: photos inspected
    // after 150 min, a note after 160, still open.
    {
        use deliveries::DisputeResponse::{Note, PhotoInspection};
        type Step = (&'static str, Option<deliveries::DisputeResponse>, i64);
        let steps: [Step; 7] = [
            ("D1", Some(Note), at(2, 10, 10)),
            ("D1", Some(PhotoInspection), at(2, 10, 15)),
            ("D1", None, at(2, 10, 20)),
            ("D2", None, at(3, 13, 0)),
            ("D3", Some(PhotoInspection), at(4, 12, 30)),
            ("D3", Some(Note), at(4, 12, 40)),
            ("D3", Some(PhotoInspection), at(4, 12, 50)),
        ];
        for (id, response, when) in steps {
            store
                .write_blocking(move |c| match response {
                    Some(r) => deliveries::respond_to_dispute(
                        c,
                        id,
                        "li.wei",
                        "looked",
                        r,
                        Timestamp(when),
                    ),
                    None => {
                        deliveries::close_dispute(c, id, "wang.fang", "settled", Timestamp(when))
                    }
                })
                .unwrap();
        }
        let first = |id: &'static str| {
            store
                .read_blocking(move |c| deliveries::dispute_first_response(c, id))
                .unwrap()
                .unwrap()
        };
        let d1 = first("D1");
        assert_eq!(
            (
                d1.at,
                d1.by.as_str(),
                d1.kind.as_str(),
                d1.photos_inspected_at
            ),
            (
                Timestamp(at(2, 10, 10)),
                "li.wei",
                "note",
                Some(Timestamp(at(2, 10, 15)))
            )
        );
        let d2 = first("D2");
        assert_eq!(
            (
                d2.at,
                d2.by.as_str(),
                d2.kind.as_str(),
                d2.photos_inspected_at
            ),
            (Timestamp(at(3, 13, 0)), "wang.fang", "settled", None)
        );
        let d3 = first("D3");
        assert_eq!(
            (d3.at, d3.kind.as_str(), d3.photos_inspected_at),
            (
                Timestamp(at(4, 12, 30)),
                "photo_inspection",
                Some(Timestamp(at(4, 12, 30)))
            ),
            "later responses change neither the first response nor the first inspection"
        );
        // Every response goes upstream with its note.
        let events = store
            .read_blocking(|c| hub::store::outbox::pending(c, 0, 10_000))
            .unwrap();
        let responded: Vec<String> = events
            .iter()
            .filter(|e| e.kind == "dispute_responded")
            .map(|e| e.payload.to_string())
            .collect();
        assert_eq!(responded.len(), 5, "{responded:?}");
        assert!(
            responded[1].contains("\"photos_inspected\":true") && responded[1].contains("D1"),
            "{responded:?}"
        );
    }

    let from = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    let to = NaiveDate::from_ymd_opt(2026, 3, 5).unwrap();
    // The daily forecast job of each day of the period (it reads only the rows before its day).
    for day in 2..=4 {
        forecast_job(&store, march(day));
    }
    let now = Timestamp(at(4, 19, 0));
    let r = store
        .read_blocking(move |c| hub::store::report::compute(c, from, to, ZONE, 2, now))
        .unwrap();
    let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
    assert_eq!(r.days, 3);
    assert_eq!(r.timezone, "Asia/Shanghai");
    assert!(
        close(Some(r.stock_out_rate), 1.0 / 8.0),
        "{}",
        r.stock_out_rate
    );
    assert_eq!(r.turnover_days, None, "grams and pieces are never added");
    assert_eq!(r.loss_rate, None);
    assert_eq!(r.by_unit.len(), 2);
    let gram = &r.by_unit[0];
    let piece = &r.by_unit[1];
    assert_eq!((gram.unit.as_str(), gram.skus), ("gram", 1));
    assert_eq!((piece.unit.as_str(), piece.skus), ("piece", 3));
    assert!(close(piece.stock_out_rate, 1.0 / 6.0));
    assert!(close(gram.stock_out_rate, 0.0));
    assert!(close(piece.turnover_days, 3.0), "{:?}", piece.turnover_days);
    assert!(close(gram.turnover_days, 3.5), "{:?}", gram.turnover_days);
    assert!(close(piece.loss_rate, 0.05));
    assert!(close(gram.loss_rate, 0.0));
    assert_eq!(
        (
            piece.received_quantity,
            piece.handed_over_quantity,
            piece.lost_quantity
        ),
        (20, 10, 1),
        "the issue at 00:30 on the 5th (site time) is outside the period"
    );
    assert_eq!(
        (gram.received_quantity, gram.handed_over_quantity),
        (5000, 2000)
    );
    assert!(close(r.sell_through_rate, 2.0 / 3.0));
    assert!(close(r.near_expiry_share, 1.0 / 3.0));
    assert!(
        close(r.acceptance_pass_rate, 2.0 / 3.0),
        "a released line passes"
    );
    let p = &r.pickups;
    assert_eq!(
        (
            p.due,
            p.collected_on_time,
            p.collected_late,
            p.never_collected,
            p.still_open
        ),
        (4, 1, 1, 1, 1)
    );
    assert!(close(r.order_fill_rate, 10.0 / 11.0));
    let d = &r.disputes;
    assert_eq!((d.opened, d.settled, d.responded), (3, 2, 3));
    assert!(
        close(d.median_first_response_minutes, 150.0),
        "{:?}",
        d.median_first_response_minutes
    );
    assert_eq!(
        (
            d.responded_within_30_min,
            d.photos_inspected,
            d.photos_inspected_within_2_h
        ),
        (1, 2, 1)
    );
    assert!(close(d.median_settle_minutes, 100.0));
    assert_eq!(
        (
            d.settled_within_30_min,
            d.settled_within_2_h,
            d.settled_within_24_h
        ),
        (1, 1, 2)
    );
    assert_eq!(r.handovers, 2);
    assert_eq!(r.handovers_by_weekday_hour[0][19], 1, "Monday 19:00");
    assert_eq!(r.handovers_by_weekday_hour[2][9], 1, "Wednesday 09:00");
    assert_eq!(r.handovers_by_weekday_hour.iter().flatten().sum::<i64>(), 2);
    assert_eq!(r.receipts, 3);

    let days: Vec<&str> = r.daily.iter().map(|d| d.date.as_str()).collect();
    assert_eq!(days, ["2026-03-02", "2026-03-03", "2026-03-04"]);
    let per_day = |f: fn(&hub::store::report::DayFigures) -> Option<f64>| -> Vec<Option<f64>> {
        r.daily.iter().map(f).collect()
    };
    let same = |got: Vec<Option<f64>>, want: [Option<f64>; 3]| {
        assert!(
            got.iter().zip(want).all(|(g, w)| match (g, w) {
                (Some(g), Some(w)) => (g - w).abs() < 1e-9,
                (None, None) => true,
                _ => false,
            }),
            "{got:?} != {want:?}"
        );
    };
    assert_eq!(
        r.daily
            .iter()
            .map(|d| (d.listed_skus, d.out_of_stock_skus))
            .collect::<Vec<_>>(),
        [(2, 0), (3, 1), (3, 0)]
    );
    same(
        per_day(|d| d.stock_out_rate),
        [Some(0.0), Some(1.0 / 3.0), Some(0.0)],
    );
    same(
        per_day(|d| d.sell_through_rate),
        [Some(0.5), Some(2.0 / 3.0), Some(1.0 / 3.0)],
    );
    assert_eq!(
        r.daily
            .iter()
            .map(|d| (d.receipts, d.handovers, d.lines_decided, d.lines_passed))
            .collect::<Vec<_>>(),
        [(1, 1, 3, 2), (1, 0, 0, 0), (1, 1, 0, 0)]
    );
    same(
        per_day(|d| d.acceptance_pass_rate),
        [Some(2.0 / 3.0), None, None],
    );
    assert_eq!(
        r.daily
            .iter()
            .map(|d| {
                let p = &d.pickups;
                (
                    p.due,
                    p.collected_on_time,
                    p.collected_late,
                    p.never_collected,
                    p.still_open,
                )
            })
            .collect::<Vec<_>>(),
        [(1, 1, 0, 0, 0), (2, 0, 1, 1, 0), (1, 0, 0, 0, 1)]
    );
    same(
        per_day(|d| d.order_fill_rate),
        [Some(1.0), None, Some(6.0 / 7.0)],
    );
    assert_eq!(
        r.daily
            .iter()
            .map(|d| (
                d.disputes_opened,
                d.disputes_settled_within_30_min,
                d.disputes_settled_within_2_h,
                d.disputes_settled_within_24_h
            ))
            .collect::<Vec<_>>(),
        [(1, 1, 1, 1), (1, 0, 0, 1), (1, 0, 0, 0)]
    );
    assert_eq!(
        r.daily
            .iter()
            .map(|d| (
                d.disputes_responded_within_30_min,
                d.disputes_photos_inspected_within_2_h
            ))
            .collect::<Vec<_>>(),
        [(1, 1), (0, 0), (0, 0)]
    );
    same(
        per_day(|d| d.near_expiry_share),
        [Some(0.0), Some(0.0), Some(1.0 / 3.0)],
    );
    let unit_day = |unit: &str, day: usize| {
        r.daily[day]
            .by_unit
            .iter()
            .find(|u| u.unit == unit)
            .cloned()
            .unwrap_or_else(|| panic!("no {unit} figures on day {day}"))
    };
    let pieces: Vec<_> = (0..3).map(|d| unit_day("piece", d)).collect();
    assert_eq!(
        pieces
            .iter()
            .map(|u| (
                u.stock_quantity,
                u.handed_over_quantity,
                u.received_quantity,
                u.lost_quantity
            ))
            .collect::<Vec<_>>(),
        [(11, 4, 10, 0), (5, 6, 0, 0), (14, 0, 10, 1)]
    );
    same(
        pieces.iter().map(|u| u.turnover_days).collect(),
        [Some(2.75), Some(5.0 / 6.0), None],
    );
    same(
        pieces.iter().map(|u| u.loss_rate).collect(),
        [Some(0.0), None, Some(0.1)],
    );
    assert!(
        r.daily[0].by_unit.iter().all(|u| u.unit != "gram"),
        "no grams before RICE was listed"
    );
    let rice = unit_day("gram", 1);
    assert_eq!(
        (rice.stock_quantity, rice.handed_over_quantity),
        (4000, 1000)
    );
    assert!(close(rice.turnover_days, 4.0));
}

/// Forecast accuracy against a hand computation. Period 2026-03-02 .. 03-04 (to = 03-05); every
/// SKU has fewer than 14 days of history, so the hub's forecast is the stated short-history
/// rule: the mean of the days before (a stock-out day counted at least at the clean days' mean).
///
/// | SKU | unit | handed over 01 / 02 / 03 / 04 | forecast 02 / 03 / 04 | counted |
/// |---|---|---|---|---|
/// | EGG | piece | 2 / 4 / 6 / 0 (100 received on 01) | 2 / 3 / 4 | 3 days: errors 2, 3, 4 of 4, 6, 0 |
/// | MILK | piece | 1 / 2 (runs out) / 3 (5 received) / 0 | — / 1.5 / 2 | 02 is a stock-out (censored): errors 1.5, 2 of 3, 0 |
/// | RICE | gram | 1000 each day (10 kg received on 01) | 1000 each day | 3 days, errors 0 |
///
/// Pieces: (2 + 3 + 4 + 1.5 + 2) ÷ (4 + 6 + 0 + 3 + 0) = 12.5 ÷ 13 over 5 SKU-days; grams:
/// constant demand → 0 over 3 SKU-days. By day, pieces: 2 ÷ 4 (1) / 4.5 ÷ 9 (2) / none, nothing
/// handed over (2). A SKU with 30 days of a constant 3 a day (the fitted model) → 0 as well.
#[test]
fn forecast_accuracy_is_the_wape_of_the_forecast_made_from_earlier_days_per_unit_kind() {
    use MovementKind::*;
    let mut moves = Vec::new();
    let mut n = 0;
    let mut push = |sku: &str, kind: MovementKind, quantity: i64, when: i64| {
        n += 1;
        moves.push(movement(
            &format!("m{n}"),
            sku,
            kind,
            quantity,
            "L1",
            "2026-09-01",
            when,
            "scenario",
        ));
    };
    push("EGG", Receipt, 100, at(1, 8, 0));
    for (day, q) in [(1, 2), (2, 4), (3, 6)] {
        push("EGG", Issue, q, at(day, 12, 0));
    }
    push("MILK", Receipt, 3, at(1, 8, 0));
    push("MILK", Issue, 1, at(1, 12, 0));
    push("MILK", Issue, 2, at(2, 12, 0));
    push("MILK", Receipt, 5, at(3, 8, 0));
    push("MILK", Issue, 3, at(3, 12, 0));
    push("RICE", Receipt, 10_000, at(1, 8, 0));
    for day in 1..=4 {
        push("RICE", Issue, 1000, at(day, 12, 0));
    }
    // SALT: 30 days of a constant 3 a day before and in the period (from 02-03 on).
    let feb = |day: u32| {
        ZONE.from_local_datetime(
            &NaiveDate::from_ymd_opt(2026, 2, day)
                .unwrap()
                .and_hms_opt(12, 0, 0)
                .unwrap(),
        )
        .unwrap()
        .timestamp_millis()
    };
    push("SALT", Receipt, 1000, feb(3) - 3_600_000);
    for day in 3..=28 {
        push("SALT", Issue, 3, feb(day));
    }
    for day in 1..=4 {
        push("SALT", Issue, 3, at(day, 12, 0));
    }
    let from = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    let to = NaiveDate::from_ymd_opt(2026, 3, 5).unwrap();
    // The figures of a subset of the SKUs, each subset in its own store; `spice`: SALT is in
    // category `spice` and a promotion doubling that category's demand over the period was
    // known from 02-28.
    let report_with = |skus: &[&str], spice: bool| {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("hub.sqlite"),
            "s1",
            &StoreOptions::default(),
        )
        .unwrap();
        let skus: Vec<String> = skus.iter().map(|s| s.to_string()).collect();
        let moves: Vec<Movement> = moves
            .iter()
            .filter(|m| skus.contains(&m.sku.as_str().to_string()))
            .cloned()
            .collect();
        store
            .write_blocking(move |c| {
                for code in &skus {
                    let unit = if code == "RICE" {
                        StockUnit::Gram
                    } else {
                        StockUnit::Piece
                    };
                    sku_store::upsert(
                        c,
                        &Sku::new(SkuCode::new(code).unwrap(), code, unit),
                        Timestamp(0),
                    )?;
                }
                if spice {
                    sku_store::set_category(c, &SkuCode::new("SALT").unwrap(), Some("spice"))?;
                    let promotion = hub_forecast::DemandSignal {
                        id: "p-spice".into(),
                        kind: hub_forecast::SignalKind::Promotion {
                            reserve_fraction: 0.0,
                        },
                        start: from,
                        end: to,
                        scope: hub_forecast::SignalScope::Category("spice".into()),
                        multiplier: 2.0,
                    };
                    hub::store::demand::store_signals(c, &[promotion], Timestamp(feb(28)))?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        // The forecasts the hub made each day it ran, February's days included.
        let first = NaiveDate::from_ymd_opt(2026, 2, 3).unwrap();
        record_days_with_forecasts(&store, &moves, first, march(4));
        store
            .read_blocking(move |c| {
                hub::store::report::compute(c, from, to, ZONE, 2, Timestamp(at(4, 20, 0)))
            })
            .unwrap()
    };
    let report = |skus: &[&str]| report_with(skus, false);
    let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
    let unit = |r: &hub::store::report::OpsReport, unit: &str| {
        r.by_unit.iter().find(|u| u.unit == unit).cloned().unwrap()
    };

    let r = report(&["EGG", "MILK", "RICE"]);
    let piece = unit(&r, "piece");
    let gram = unit(&r, "gram");
    assert_eq!(piece.forecast_sku_days, 5);
    assert_eq!(
        (
            piece.forecast_sku_days_missing,
            gram.forecast_sku_days_missing
        ),
        (0, 0),
        "the job ran every day"
    );
    assert!(
        close(piece.forecast_wape, 12.5 / 13.0),
        "{:?}",
        piece.forecast_wape
    );
    assert_eq!(gram.forecast_sku_days, 3);
    assert!(close(gram.forecast_wape, 0.0), "{:?}", gram.forecast_wape);
    let day_piece: Vec<(i64, Option<f64>)> = r
        .daily
        .iter()
        .map(|d| {
            let u = d.by_unit.iter().find(|u| u.unit == "piece").unwrap();
            (u.forecast_sku_days, u.forecast_wape)
        })
        .collect();
    assert_eq!(day_piece[0].0, 1);
    assert!(close(day_piece[0].1, 0.5), "{day_piece:?}");
    assert_eq!(day_piece[1].0, 2);
    assert!(close(day_piece[1].1, 0.5), "{day_piece:?}");
    assert_eq!(day_piece[2], (2, None), "nothing handed over on 03-04");

    let r = report(&["SALT"]);
    let salt = unit(&r, "piece");
    assert_eq!(salt.forecast_sku_days, 3);
    assert!(
        salt.forecast_wape.is_some_and(|w| w.abs() < 1e-6),
        "constant demand: {:?}",
        salt.forecast_wape
    );
    // The category's promotion reaches SALT: on 03-02 the forecast from the unpromoted
    // history is 2 × 3 against 3 handed over → WAPE 3/3 = 1 (later days learn from promoted
    // days, divided by the multiplier, so the period's WAPE is above 0 but below 1).
    let r = report_with(&["SALT"], true);
    let salt = unit(&r, "piece");
    assert_eq!(salt.forecast_sku_days, 3);
    assert!(
        salt.forecast_wape.is_some_and(|w| w > 0.5),
        "the spice promotion raises the forecast: {:?}",
        salt.forecast_wape
    );
    let first_day = r.daily[0]
        .by_unit
        .iter()
        .find(|u| u.unit == "piece")
        .unwrap()
        .forecast_wape;
    assert!(
        first_day.is_some_and(|w| (w - 1.0).abs() < 1e-6),
        "03-02: forecast 6 against 3: {first_day:?}"
    );
}

/// The report reads the journal in storage order, not sorted by time: a journal whose rows
/// were written out of time order (a late-entered movement dated before the period, a row
/// exactly at the period's end written first) gives the figures of time order: the opening
/// stock counts, a lot's expiry is the one of its earliest movement by time, and nothing at
/// or after the period's end counts.
///
/// Period 2026-03-02 .. 03-03 (to = 03-04), Asia/Shanghai, expiry warning 2 days. APPLE
/// (piece), lot L1, rows in journal order: 03-04 00:00 +100 (the period's end: not counted);
/// 03-02 10:00 +5 (exp 03-20); 03-01 09:00 +3 (exp 03-03, before the period: the lot's
/// expiry); 03-03 12:00 −8. BEAN (piece) never moves.
///
/// 03-02: listed 1, out 0, stock 8, received 5, near expiry 1/1 (L1 expires 03-03).
/// 03-03: listed 1, out 1, stock 0, handed over 8, near expiry none (nothing on hand).
///
/// Order O9 (9 units ordered) collected 03-03 12:00; its issues are the −8 and one more unit
/// recorded after the period (03-04 01:00, written first): handed over 9 of 9, as the order
/// fill rate always counted an order's issues whenever they were recorded.
#[test]
fn a_journal_written_out_of_time_order_gives_the_figures_of_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("hub.sqlite"),
        "s1",
        &StoreOptions::default(),
    )
    .unwrap();
    let rows: [(&str, &str, &str, i64, i64, i64, &str); 5] = [
        (
            "m0",
            "2026-03-20",
            "issue",
            1,
            -1,
            at(4, 1, 0),
            "pickup order O9",
        ),
        ("m1", "2026-03-20", "receipt", 100, 100, at(4, 0, 0), "d3"),
        ("m2", "2026-03-20", "receipt", 5, 5, at(2, 10, 0), "d2"),
        ("m3", "2026-03-03", "receipt", 3, 3, at(1, 9, 0), "d1"),
        (
            "m4",
            "2026-03-20",
            "issue",
            8,
            -8,
            at(3, 12, 0),
            "pickup order O9",
        ),
    ];
    store
        .write_blocking(move |c| {
            for code in ["APPLE", "BEAN"] {
                sku_store::upsert(
                    c,
                    &Sku::new(SkuCode::new(code).unwrap(), code, StockUnit::Piece),
                    Timestamp(0),
                )?;
            }
            for (id, expiry, kind, quantity, delta, when, reference) in rows {
                c.execute(
                    "INSERT INTO movement (id, sku, lot, expiry, kind, quantity, delta, reason, reference, at)
                     VALUES (?1, 'APPLE', 'L1', ?2, ?3, ?4, ?5, 'scenario', ?6, ?7)",
                    params![id, expiry, kind, quantity, delta, reference, when],
                )
                .map_err(hub::store::sql_error(c))?;
            }
            c.execute(
                "INSERT INTO pickup_order (order_id, site, code_salt, code_hash, body, opens_at, closes_at, status, collected_at, version, updated_at)
                 VALUES ('O9', 's1', 'aa', 'bb', '{}', ?1, ?2, 'collected', ?3, 1, 0)",
                params![at(3, 8, 0), at(3, 21, 0), at(3, 12, 0)],
            )
            .map_err(hub::store::sql_error(c))?;
            c.execute(
                "INSERT INTO pickup_order_line (order_id, line_no, sku, quantity) VALUES ('O9', 0, 'APPLE', 9)",
                [],
            )
            .map_err(hub::store::sql_error(c))?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let from = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    let to = NaiveDate::from_ymd_opt(2026, 3, 4).unwrap();
    let r = store
        .read_blocking(move |c| {
            hub::store::report::compute(c, from, to, ZONE, 2, Timestamp(at(4, 0, 0)))
        })
        .unwrap();
    assert_eq!(r.days, 2);
    assert_eq!(r.skus, 2);
    assert_eq!(r.receipts, 1);
    assert_eq!(r.stock_out_rate, 0.5, "APPLE out on 03-03 of 2 listed days");
    assert_eq!(r.sell_through_rate, Some(1.0));
    let piece = &r.by_unit[0];
    assert_eq!(r.by_unit.len(), 1);
    assert_eq!(
        (piece.unit.as_str(), piece.skus, piece.received_quantity),
        ("piece", 2, 5)
    );
    assert_eq!(piece.handed_over_quantity, 8);
    // (8 + 0) ÷ 8.
    assert_eq!(piece.turnover_days, Some(1.0));
    let (d2, d3) = (&r.daily[0], &r.daily[1]);
    assert_eq!((d2.listed_skus, d2.out_of_stock_skus), (1, 0));
    assert_eq!((d3.listed_skus, d3.out_of_stock_skus), (1, 1));
    assert_eq!(d2.by_unit[0].stock_quantity, 8);
    assert_eq!(d2.by_unit[0].received_quantity, 5);
    assert_eq!(d3.by_unit[0].stock_quantity, 0);
    assert_eq!(d3.by_unit[0].handed_over_quantity, 8);
    assert_eq!(
        d2.near_expiry_share,
        Some(1.0),
        "the lot's expiry is its earliest movement's (03-03)"
    );
    assert_eq!(d3.near_expiry_share, None);
    assert_eq!(r.near_expiry_share, None);
    assert_eq!(r.order_fill_rate, Some(1.0), "9 of 9 units handed over");
    assert_eq!((d3.units_ordered, d3.units_handed_over), (9, 9));
}

/// A SKU selling 2 a day (EGG, pieces, 100 received 03-01 08:00; 2 handed over each day at
/// noon from 03-01 to 03-03) with only 03-01 .. 03-02 recorded when 03-03's forecast job runs.
fn egg_days() -> Vec<Movement> {
    let mut moves = vec![movement(
        "r1",
        "EGG",
        MovementKind::Receipt,
        100,
        "L1",
        "2026-09-01",
        at(1, 8, 0),
        "d1",
    )];
    for day in 1..=3 {
        moves.push(movement(
            &format!("i{day}"),
            "EGG",
            MovementKind::Issue,
            2,
            "L1",
            "2026-09-01",
            at(day, 12, 0),
            "counter",
        ));
    }
    moves
}

fn egg_store(dir: &std::path::Path) -> Store {
    let store = Store::open(&dir.join("hub.sqlite"), "s1", &StoreOptions::default()).unwrap();
    store
        .write_blocking(|c| {
            sku_store::upsert(
                c,
                &Sku::new(SkuCode::new("EGG").unwrap(), "EGG", StockUnit::Piece),
                Timestamp(0),
            )
        })
        .unwrap();
    store
}

/// No peeking: the forecast stored for 03-03 (the mean of 2 and 2 = 2, from the days before
/// it) stays what it was when demand recorded afterwards would have changed a refit — a
/// handover of 10 entered late but dated 03-02, and a demand signal received during 03-03
/// doubling 03-03's demand. The job running again that day (a later checks round, a restart)
/// stores nothing and the report's 03-03 error is |2 − 2| ÷ 2 = 0, not that of a refit.
#[test]
fn a_stored_forecast_is_never_changed_by_later_demand() {
    let dir = tempfile::tempdir().unwrap();
    let store = egg_store(dir.path());
    record_days_with_forecasts(&store, &egg_days(), march(1), march(3));
    let stored = |store: &Store| {
        store
            .read_blocking(|c| hub::store::day_forecast::between(c, march(3), march(4)))
            .unwrap()
    };
    let before = stored(&store);
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(
        (before[0].sku.as_str(), before[0].unit.as_str()),
        ("EGG", "piece")
    );
    assert!((before[0].forecast - 2.0).abs() < 1e-9, "{before:?}");
    assert_eq!(before[0].method, "history_mean");

    // Later demand: a late-entered handover dated the day before, and a signal received in the
    // afternoon of 03-03 for that day.
    store
        .write_blocking(|c| {
            ledger::record(
                c,
                &movement(
                    "late",
                    "EGG",
                    MovementKind::Issue,
                    10,
                    "L1",
                    "2026-09-01",
                    at(2, 18, 0),
                    "counter",
                ),
            )
            .map_err(|e| match e {
                ledger::RecordError::Store(e) => e,
                other => panic!("{other}"),
            })?;
            let signal = hub_forecast::DemandSignal {
                id: "promo-1".into(),
                kind: hub_forecast::SignalKind::Holiday,
                start: march(3),
                end: march(3),
                scope: hub_forecast::SignalScope::All,
                multiplier: 2.0,
            };
            hub::store::demand::store_signals(c, &[signal], Timestamp(at(3, 15, 0)))
        })
        .unwrap();
    let made_at = Timestamp(at(3, 16, 0));
    let again = store
        .write_blocking(move |c| hub::store::day_forecast::record_day(c, march(3), ZONE, made_at))
        .unwrap();
    assert_eq!(again, 0, "the day's forecasts were made already");
    assert_eq!(stored(&store), before, "the stored forecast is unchanged");
    let refused = store.write_blocking(|c| {
        c.execute("UPDATE day_forecast SET forecast = 7", [])
            .map_err(hub::store::sql_error(c))
    });
    assert!(refused.is_err(), "a stored forecast cannot be rewritten");

    let r = store
        .read_blocking(|c| {
            hub::store::report::compute(c, march(3), march(4), ZONE, 2, Timestamp(at(3, 20, 0)))
        })
        .unwrap();
    let piece = &r.by_unit[0];
    assert_eq!(piece.forecast_sku_days, 1);
    assert_eq!(
        piece.forecast_wape,
        Some(0.0),
        "the forecast made that morning"
    );
}

/// The stated rule for SKU-days without a stored forecast (days the hub did not run, history
/// from before the stored forecasts): left out of the WAPE, never refitted, and counted as
/// `forecast_sku_days_missing`. EGG's job ran on 03-03 only: of the qualifying days 03-02
/// (2 handed over, history 03-01) and 03-03, 03-02 is missing; 03-03's forecast 2 against 2.
#[test]
fn a_day_without_a_stored_forecast_is_left_out_and_counted_missing() {
    let dir = tempfile::tempdir().unwrap();
    let store = egg_store(dir.path());
    let moves = egg_days();
    store
        .write_blocking(move |c| {
            for m in moves.iter().filter(|m| m.at.millis() < at(3, 0, 0)) {
                ledger::record(c, m).map_err(|e| match e {
                    ledger::RecordError::Store(e) => e,
                    other => panic!("{other}"),
                })?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    assert_eq!(forecast_job(&store, march(3)), 1);
    store
        .write_blocking(move |c| {
            ledger::record(c, &egg_days()[3]).map_err(|e| match e {
                ledger::RecordError::Store(e) => e,
                other => panic!("{other}"),
            })
        })
        .unwrap();
    let r = store
        .read_blocking(|c| {
            hub::store::report::compute(c, march(1), march(4), ZONE, 2, Timestamp(at(3, 20, 0)))
        })
        .unwrap();
    let piece = &r.by_unit[0];
    assert_eq!(
        (piece.forecast_sku_days, piece.forecast_sku_days_missing),
        (1, 1)
    );
    assert_eq!(piece.forecast_wape, Some(0.0));
    let by_day: Vec<(i64, i64)> = r
        .daily
        .iter()
        .map(|d| {
            d.by_unit.first().map_or((0, 0), |u| {
                (u.forecast_sku_days, u.forecast_sku_days_missing)
            })
        })
        .collect();
    assert_eq!(
        by_day,
        vec![(0, 0), (0, 1), (1, 0)],
        "03-01 has no history, 03-02 no stored forecast"
    );
}

/// The daemon's daily forecast job (`workflows::alerts::record_day_forecasts`, run before each
/// round of checks): its first run on a site day — here at 10:00, the box having been off at
/// midnight, no uplink — stores the day's forecasts; later runs that day store nothing.
#[tokio::test]
async fn the_daemons_daily_forecast_job_stores_the_days_forecasts_on_its_first_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = hub::config::Config::parse(
        "[site]\nid = \"s1\"\ntimezone = \"Asia/Shanghai\"\n[store]\ndata_dir = \"data\"\n",
        dir.path(),
    )
    .unwrap();
    let site = hub::workflows::Site::of(&config);
    let store = Store::open(
        &dir.path().join("hub.sqlite"),
        "s1",
        &StoreOptions::default(),
    )
    .unwrap();
    let moves: Vec<Movement> = egg_days()
        .into_iter()
        .filter(|m| m.at.millis() < at(3, 0, 0))
        .collect();
    store
        .write(move |c| {
            sku_store::upsert(
                c,
                &Sku::new(SkuCode::new("EGG").unwrap(), "EGG", StockUnit::Piece),
                Timestamp(0),
            )?;
            for m in &moves {
                ledger::record(c, m).map_err(|e| match e {
                    ledger::RecordError::Store(e) => e,
                    other => panic!("{other}"),
                })?;
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let job = |hour: u32| {
        hub::workflows::alerts::record_day_forecasts(&store, &site, Timestamp(at(3, hour, 0)))
    };
    assert_eq!(job(10).await.unwrap(), 1);
    assert_eq!(job(11).await.unwrap(), 0);
    let rows = store
        .read(|c| hub::store::day_forecast::between(c, march(3), march(4)))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].sku.as_str(), rows[0].forecast, rows[0].made_at),
        ("EGG", 2.0, Timestamp(at(3, 10, 0)))
    );
}

/// Deliveries on time, Asia/Shanghai, period 03-02 .. 03-04, now 03-04 12:00,
/// tolerance 30 min; a delivery is received when its first line is decided:
///
/// | delivery | expected (as sent) | first line decided | counts |
/// |---|---|---|---|
/// | D1 | 02 08:00 (`+08:00`) | 02 08:20 (second line 11:00) | 02 on time |
/// | D2 | 02 09:00 | 02 10:00 | 02 late (on time within 60 min) |
/// | D3 | 03 10:00 | 03 08:00 | 03 early |
/// | D4 | 03 22:00 | 04 00:30 | 03 not received that day |
/// | D5 | 03 15:00 | — | 03 not received that day |
/// | D6 | 04 16:00 | — | 04 still expected |
/// | D7 | 02 12:00, cancelled | 02 12:00 | not counted |
/// | D8 | `08:30` (no date) | 02 08:30 | not counted |
/// | D9 | 01 23:50 (`2026-03-01T15:50:00Z`) | 01 23:50 | before the period |
/// | D10 | 03 00:30 (`2026-03-02T16:30:00Z`: a UTC date of 02) | 03 00:45 | 03 on time |
/// | D11 | 04 09:00 (`2026-03-04 09:00`, site time) | 04 09:10 | 04 on time |
///
/// → due 8: on time 3, early 1, late 1, never 2, still expected 1 → 3/7; by day 02 1/2, 03
/// 1/4, 04 1/1 (one still expected).
#[test]
fn deliveries_count_on_time_by_their_first_decided_line_within_the_tolerance() {
    use hub_core::receiving::{Manifest, ManifestLine};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("hub.sqlite"),
        "pp-1",
        &StoreOptions::default(),
    )
    .unwrap();
    let utc = |day: u32, hour: u32, minute: u32| {
        chrono::DateTime::from_timestamp_millis(at(day, hour, minute))
            .unwrap()
            .with_timezone(&ZONE)
            .to_rfc3339()
    };
    type Case = (&'static str, String, bool, Vec<i64>);
    let cases: Vec<Case> = vec![
        ("D1", utc(2, 8, 0), false, vec![at(2, 8, 20), at(2, 11, 0)]),
        ("D2", utc(2, 9, 0), false, vec![at(2, 10, 0)]),
        ("D3", utc(3, 10, 0), false, vec![at(3, 8, 0)]),
        ("D4", utc(3, 22, 0), false, vec![at(4, 0, 30)]),
        ("D5", utc(3, 15, 0), false, vec![]),
        ("D6", utc(4, 16, 0), false, vec![]),
        ("D7", utc(2, 12, 0), true, vec![at(2, 12, 0)]),
        ("D8", "08:30".into(), false, vec![at(2, 8, 30)]),
        (
            "D9",
            "2026-03-01T15:50:00Z".into(),
            false,
            vec![at(1, 23, 50)],
        ),
        (
            "D10",
            "2026-03-02T16:30:00Z".into(),
            false,
            vec![at(3, 0, 45)],
        ),
        ("D11", "2026-03-04 09:00".into(), false, vec![at(4, 9, 10)]),
    ];
    store
        .write_blocking(move |c| {
            sku_store::upsert(
                c,
                &Sku::new(SkuCode::new("MILK").unwrap(), "MILK", StockUnit::Piece),
                Timestamp(0),
            )?;
            for (id, expected, cancelled, decided) in &cases {
                let lines = (1..=decided.len().max(1) as u32)
                    .map(|n| ManifestLine::unexpected(n, SkuCode::new("MILK").unwrap(), "L1"))
                    .collect();
                let manifest = Manifest {
                    delivery_id: (*id).into(),
                    supplier: "Farm".into(),
                    expected_at: Some(expected.clone()),
                    lines,
                    cancelled: *cancelled,
                    version: 1,
                };
                deliveries::upsert_manifest(c, &manifest, Timestamp(at(1, 6, 0)))?;
                for (n, when) in decided.iter().enumerate() {
                    c.execute(
                        "INSERT INTO line_decision (delivery_id, line_no, sku, lot, outcome, accepted, rejected, held, body, staff, decided_at)
                         VALUES (?1, ?2, 'MILK', 'L1', 'accepted', 1, 0, 0, '{}', 'li', ?3)",
                        params![id, n as i64 + 1, when],
                    )
                    .map_err(hub::store::sql_error(c))?;
                }
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let report = |tolerance: i64| {
        let settings = hub::store::report::ReportSettings {
            expiry_warn_days: 2,
            on_time_tolerance_minutes: tolerance,
        };
        store
            .read_blocking(move |c| {
                hub::store::report::compute_with(
                    c,
                    march(2),
                    march(5),
                    ZONE,
                    settings,
                    Timestamp(at(4, 12, 0)),
                )
            })
            .unwrap()
    };
    let r = report(30);
    let d = &r.deliveries;
    assert_eq!(r.delivery_on_time_tolerance_minutes, 30);
    assert_eq!(
        (
            d.due,
            d.on_time,
            d.early,
            d.late,
            d.never_received,
            d.still_expected
        ),
        (8, 3, 1, 1, 2, 1),
        "{d:?}"
    );
    assert_eq!(d.on_time_rate, Some(3.0 / 7.0));
    type Day = (i64, i64, i64, i64, i64, i64, Option<f64>);
    let by_day: Vec<Day> = r
        .daily
        .iter()
        .map(|x| {
            let d = &x.deliveries;
            (
                d.due,
                d.on_time,
                d.early,
                d.late,
                d.never_received,
                d.still_expected,
                d.on_time_rate,
            )
        })
        .collect();
    assert_eq!(
        by_day,
        vec![
            (2, 1, 0, 1, 0, 0, Some(0.5)),
            (4, 1, 1, 0, 2, 0, Some(0.25)),
            (2, 1, 0, 0, 0, 1, Some(1.0)),
        ]
    );
    // The default is the configuration's default (30 min), and the tolerance is the setting.
    let default = store
        .read_blocking(|c| {
            hub::store::report::compute(c, march(2), march(5), ZONE, 2, Timestamp(at(4, 12, 0)))
        })
        .unwrap();
    assert_eq!(default.deliveries, r.deliveries);
    let wide = report(60);
    assert_eq!((wide.deliveries.on_time, wide.deliveries.late), (4, 0));
    assert_eq!(wide.delivery_on_time_tolerance_minutes, 60);
}

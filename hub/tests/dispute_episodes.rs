//! A delivery's dispute can be settled and opened again: each episode keeps its own times, the
//! report counts each in the period it was opened, and `hub receive show` lists every episode.
//!
//! Scenario (Asia/Shanghai), delivery D1:
//!
//! | episode | opened | first response | photos inspected | settled |
//! |---|---|---|---|---|
//! | 1 | 03-02 10:00 | 10:20 (note) | 10:40 | 03-02 11:00 (60 min) |
//! | 2 | 03-03 09:00 | 12:00 (photos inspected, 180 min) | 12:00 | 03-04 08:00 (1380 min) |
//!
//! Report over 03-02 .. 03-04: opened 2; responded 2, median (20 + 180) / 2 = 100 min, within
//! 30 min 1; photos inspected 2, within 2 h 1 (40 min; 180 min is not); settled 2, median
//! (60 + 1380) / 2 = 720 min, within 30 min 0, 2 h 1, 24 h 2. Day by day: opened 1 / 1 / 0.
//! Over 03-03 only: episode 2 alone.

use chrono::{NaiveDate, TimeZone};
use hub::catalogue::Lang;
use hub::cli_output::BenchDeliveryView;
use hub::store::deliveries::{self, DisputeResponse};
use hub::store::{Store, StoreError, StoreOptions};
use hub_core::receiving::{Manifest, ManifestLine, ReceivingPolicy};
use hub_core::{SkuCode, Timestamp};

const ZONE: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

fn at(day: u32, hour: u32, minute: u32) -> Timestamp {
    Timestamp(
        ZONE.from_local_datetime(
            &NaiveDate::from_ymd_opt(2026, 3, day)
                .unwrap()
                .and_hms_opt(hour, minute, 0)
                .unwrap(),
        )
        .unwrap()
        .timestamp_millis(),
    )
}

fn date(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, day).unwrap()
}

#[test]
fn a_reopened_dispute_keeps_the_earlier_episode_and_the_report_counts_both() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("hub.sqlite"),
        "s1",
        &StoreOptions::default(),
    )
    .unwrap();
    let manifest = Manifest {
        delivery_id: "D1".into(),
        supplier: "Green Farm".into(),
        expected_at: None,
        lines: vec![ManifestLine {
            line_no: 1,
            sku: SkuCode::new("APPLE").unwrap(),
            lot: "A1".into(),
            production_date: None,
            expiry: None,
            expected_count: Some(10),
            expected_weight_g: None,
            weight_tolerance_g: 0,
            trace_codes: vec![],
            crate_label: None,
        }],
        cancelled: false,
        version: 1,
    };
    store
        .write_blocking(move |c| {
            deliveries::upsert_manifest(c, &manifest, at(1, 9, 0))?;
            hub::store::trace::bind_trace_code(
                c,
                "TC-1",
                &SkuCode::new("APPLE").unwrap(),
                "A1",
                Some("D1"),
                "in_stock",
                &[],
                at(1, 9, 30),
            )?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
    type Step =
        Box<dyn FnOnce(&rusqlite::Connection) -> Result<(), deliveries::ReceivingError> + Send>;
    let step = |f: Step| store.write_blocking(move |c| f(c)).unwrap();
    step(Box::new(|c| {
        deliveries::open_dispute(c, "D1", "li.wei", "mouldy oranges", at(2, 10, 0))
    }));
    step(Box::new(|c| {
        deliveries::respond_to_dispute(
            c,
            "D1",
            "wang.fang",
            "called the supplier",
            DisputeResponse::Note,
            at(2, 10, 20),
        )
    }));
    step(Box::new(|c| {
        deliveries::respond_to_dispute(
            c,
            "D1",
            "wang.fang",
            "two crates mouldy",
            DisputeResponse::PhotoInspection,
            at(2, 10, 40),
        )
    }));
    step(Box::new(|c| {
        deliveries::close_dispute(c, "D1", "wang.fang", "credited 2 kg", at(2, 11, 0))
    }));
    step(Box::new(|c| {
        deliveries::open_dispute(c, "D1", "li.wei", "customer appealed", at(3, 9, 0))
    }));
    step(Box::new(|c| {
        deliveries::respond_to_dispute(
            c,
            "D1",
            "zhao.min",
            "photos show bruising",
            DisputeResponse::PhotoInspection,
            at(3, 12, 0),
        )
    }));
    step(Box::new(|c| {
        deliveries::close_dispute(c, "D1", "zhao.min", "refund confirmed", at(4, 8, 0))
    }));

    let episodes = store
        .read_blocking(|c| deliveries::dispute_episodes(c, "D1"))
        .unwrap();
    assert_eq!(episodes.len(), 2, "{episodes:#?}");
    let (one, two) = (&episodes[0], &episodes[1]);
    assert_eq!(
        (
            one.opened_at,
            one.opened_by.as_deref(),
            one.note.as_str(),
            one.closed_at,
            one.closed_by.as_deref(),
            one.settle_note.as_deref()
        ),
        (
            at(2, 10, 0),
            Some("li.wei"),
            "mouldy oranges",
            Some(at(2, 11, 0)),
            Some("wang.fang"),
            Some("credited 2 kg")
        )
    );
    let first = one.first_response.as_ref().unwrap();
    assert_eq!(
        (first.at, first.kind.as_str(), first.photos_inspected_at),
        (at(2, 10, 20), "note", Some(at(2, 10, 40)))
    );
    assert_eq!(
        one.responses
            .iter()
            .map(|r| r.note.as_str())
            .collect::<Vec<_>>(),
        ["called the supplier", "two crates mouldy"]
    );
    assert_eq!(
        (two.opened_at, two.closed_at, two.note.as_str()),
        (at(3, 9, 0), Some(at(4, 8, 0)), "customer appealed")
    );
    let first = two.first_response.as_ref().unwrap();
    assert_eq!(
        (
            first.at,
            first.by.as_str(),
            first.kind.as_str(),
            first.photos_inspected_at
        ),
        (
            at(3, 12, 0),
            "zhao.min",
            "photo_inspection",
            Some(at(3, 12, 0))
        )
    );
    assert_eq!(two.responses.len(), 1);

    // The report: each episode in its period, with its own times.
    let report = |from: u32, to: u32| {
        store
            .read_blocking(move |c| {
                hub::store::report::compute(c, date(from), date(to), ZONE, 2, at(5, 0, 0))
            })
            .unwrap()
    };
    let r = report(2, 5);
    let d = &r.disputes;
    assert_eq!(
        (d.opened, d.responded, d.responded_within_30_min),
        (2, 2, 1)
    );
    assert_eq!(d.median_first_response_minutes, Some(100.0));
    assert_eq!((d.photos_inspected, d.photos_inspected_within_2_h), (2, 1));
    assert_eq!(d.settled, 2);
    assert_eq!(d.median_settle_minutes, Some(720.0));
    assert_eq!(
        (
            d.settled_within_30_min,
            d.settled_within_2_h,
            d.settled_within_24_h
        ),
        (0, 1, 2)
    );
    assert_eq!(
        r.daily
            .iter()
            .map(|x| x.disputes_opened)
            .collect::<Vec<_>>(),
        [1, 1, 0]
    );
    let r = report(3, 4);
    assert_eq!(
        (
            r.disputes.opened,
            r.disputes.median_first_response_minutes,
            r.disputes.median_settle_minutes
        ),
        (1, Some(180.0), Some(1380.0))
    );

    // `hub receive show` lists both episodes with their notes and settlements.
    let bench = store
        .read_blocking(|c| {
            deliveries::bench_delivery(c, "D1", &ReceivingPolicy::default(), date(5))
        })
        .unwrap()
        .unwrap();
    let shown = BenchDeliveryView {
        delivery: &bench,
        lang: Lang::En,
        zone: ZONE,
    }
    .to_string();
    for expected in [
        "mouldy oranges",
        "opened (li.wei): 2026-03-02 10:00",
        "called the supplier",
        "settled (wang.fang): 2026-03-02 11:00 · credited 2 kg",
        "customer appealed",
        "first response (photo inspection, zhao.min): 2026-03-03 12:00",
        "settled (zhao.min): 2026-03-04 08:00 · refund confirmed",
    ] {
        assert!(shown.contains(expected), "{expected:?} not in:\n{shown}");
    }

    // So does the trace of an item of the delivery (`hub trace`).
    let trace = store
        .read_blocking(|c| hub::store::trace::item(c, "TC-1"))
        .unwrap()
        .unwrap();
    assert_eq!(trace.disputes, episodes);
    let traced = hub::cli_output::ItemTraceView {
        trace: &trace,
        lang: hub::catalogue::Lang::En,
        zone: chrono_tz::Asia::Shanghai,
    }
    .to_string();
    assert!(
        traced.contains("mouldy oranges") && traced.contains("customer appealed"),
        "{traced}"
    );
    assert_eq!(traced.matches("Disputes #").count(), 2, "{traced}");
    assert_eq!(traced.matches("· settled:").count(), 2, "{traced}");
}

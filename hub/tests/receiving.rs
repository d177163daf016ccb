//! Receiving against real SQLite files: a delivery with a good line, a short line, a
//! wrong-product photo, a duplicate trace code and a weight out of tolerance ends with the right
//! decisions, balances, quarantine and upstream events; SIGKILL during acceptance leaves each
//! decision wholly present or wholly absent; a trace answers from receipt to handover.

mod support;

use hub::config::Config;
use hub::store::deliveries::{BindOutcome, upsert_manifest};
use hub::store::{Store, StoreError, StoreOptions, ledger, outbox, sku as sku_store};
use hub::workflows::Site;
use hub::workflows::receiving::{self, ScanOutcome};
use hub_core::receiving::{
    CodeFlag, LabelScore, Manifest, ManifestLine, Outcome, PhotoEvidence, PhotoVerdict, Reason,
};
use hub_core::{Sku, SkuCode, StockUnit, Timestamp};
use rand::Rng;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const NOW: i64 = 1_795_000_000_000; // 2026-11-18

fn config(dir: &Path) -> Config {
    Config::parse(
        "[site]\nid = \"rcv-1\"\n[store]\ndata_dir = \"data\"\n[[stations]]\nid = \"dock-1\"\nkind = \"receiving\"\n",
        dir,
    )
    .unwrap()
}

/// The site of [`config`], as the workflows take it.
fn site() -> Site {
    Site::of(&config(Path::new("/")))
}

fn sku(code: &str, gtin: &str) -> Sku {
    Sku {
        gtins: vec![gtin.parse().unwrap()],
        ..support::sku(code)
    }
}

fn line(line_no: u32, code: &str, lot: &str, count: i64, grams: i64) -> ManifestLine {
    ManifestLine {
        line_no,
        sku: SkuCode::new(code).unwrap(),
        lot: lot.into(),
        production_date: None,
        expiry: "2026-12-20".parse().ok(),
        expected_count: Some(count),
        expected_weight_g: Some(grams),
        weight_tolerance_g: 200,
        trace_codes: vec![],
        crate_label: Some(format!("0037612345000000{line_no:02}")),
    }
}

fn photo(verdict: PhotoVerdict, label: &str, p: f32) -> PhotoEvidence {
    PhotoEvidence {
        photo_sha256: format!("{:064x}", label.len() as u64 * 7919 + p.to_bits() as u64),
        photo_path: Some(format!("evidence/{label}.jpg")),
        model_name: "efficientnet-lite0".into(),
        model_sha256: "5f4fce55a9a273926628970e0fb1491f91179e95bc595b0fea3289e5e3df4559".into(),
        backend: "onnxruntime".into(),
        top_k: vec![LabelScore {
            class_id: 950,
            label: label.into(),
            probability: p,
        }],
        expected_labels: vec!["orange".into(), "lemon".into()],
        min_probability: 0.2,
        verdict,
        reasons: vec![],
        duration_ms: 12.0,
    }
}

fn item(gtin: &str, serial: &str) -> String {
    format!("]C101{gtin}21{serial}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_delivery_ends_with_the_right_decisions_stock_quarantine_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store = Store::open(&config.database_path(), "rcv-1", &StoreOptions::default()).unwrap();
    let orange = "09506000134352";
    let milk = "06901234567892";
    let manifest = Manifest {
        delivery_id: "D7".into(),
        supplier: "Sunny Orchards".into(),
        expected_at: None,
        lines: vec![
            line(1, "ORANGE", "OR-A", 3, 15_000), // good
            // Short: 2 of 3. A line without an expected weight: the count alone decides (with
            // one, the weight is judged against the manifest's full 15 kg and a person looks).
            ManifestLine {
                expected_weight_g: None,
                ..line(2, "ORANGE", "OR-B", 3, 15_000)
            },
            line(3, "ORANGE", "OR-C", 2, 10_000), // wrong-product photo
            line(4, "MILK", "MK-1", 2, 2_000),    // duplicate trace code
            line(5, "MILK", "MK-2", 2, 2_000),    // weight out of tolerance
        ],
        cancelled: false,
        version: 1,
    };
    tokio::task::block_in_place(|| {
        store
            .write_blocking(move |c| {
                sku_store::upsert(c, &sku("ORANGE", orange), Timestamp(NOW))?;
                sku_store::upsert(c, &sku("MILK", milk), Timestamp(NOW))?;
                upsert_manifest(c, &manifest, Timestamp(NOW))?;
                Ok::<_, StoreError>(())
            })
            .unwrap()
    });
    let now = Timestamp(NOW);
    let scan = |code: String| {
        let store = store.clone();
        async move {
            receiving::scan(&store, &site(), "dock-1", &code, now)
                .await
                .unwrap()
        }
    };
    let good = photo(PhotoVerdict::Pass, "orange", 0.61);
    let steps: Vec<(u32, Vec<String>, i64, PhotoEvidence)> = vec![
        (
            1,
            (0..3).map(|i| item(orange, &format!("A{i}"))).collect(),
            15_050,
            good.clone(),
        ),
        (
            2,
            (0..2).map(|i| item(orange, &format!("B{i}"))).collect(),
            10_020,
            good.clone(),
        ), // 2 of 3
        (
            3,
            (0..2).map(|i| item(orange, &format!("C{i}"))).collect(),
            10_000,
            photo(PhotoVerdict::NeedsReview, "baboon", 0.65),
        ),
        (
            4,
            vec![
                item(milk, "M1"),
                item(milk, "A0-not-milk"),
                item(milk, "M1"),
            ],
            2_000,
            photo(PhotoVerdict::Pass, "milk can", 0.3),
        ),
        (
            5,
            (0..2).map(|i| item(milk, &format!("W{i}"))).collect(),
            2_900,
            photo(PhotoVerdict::Pass, "milk can", 0.3),
        ),
    ];
    for (line_no, codes, grams, evidence) in steps {
        // The crate label (SSCC) selects the line.
        let selected = scan(format!("]C1000037612345000000{line_no:02}")).await;
        assert!(
            matches!(&selected, ScanOutcome::LineSelected(s) if s.line_no == line_no),
            "{selected:?}"
        );
        for code in codes {
            scan(code).await;
        }
        receiving::weight(&store, &site(), "dock-1", grams, now)
            .await
            .unwrap();
        receiving::photo(&store, &site(), "dock-1", evidence, now)
            .await
            .unwrap();
    }
    // A scan of an orange item code on the milk line is a GTIN mismatch.
    let selected = scan("D7/4".into()).await;
    assert!(matches!(selected, ScanOutcome::LineSelected(_)));
    let mismatch = scan(item(orange, "X9")).await;
    assert!(
        matches!(
            mismatch,
            ScanOutcome::Item(BindOutcome::Flagged {
                flag: CodeFlag::GtinMismatch { .. },
                ..
            })
        ),
        "{mismatch:?}"
    );
    // A code with a wrong check digit is flagged as malformed, not bound.
    let bad = scan("]C10109506000134353211".into()).await;
    assert!(
        matches!(
            bad,
            ScanOutcome::Item(BindOutcome::Flagged {
                flag: CodeFlag::Malformed { .. },
                ..
            })
        ),
        "{bad:?}"
    );

    let decisions = receiving::close(&store, &Site::of(&config), "D7", "staff-42", now)
        .await
        .unwrap();
    let by_line = |n: u32| decisions.iter().find(|d| d.line_no == n).unwrap();
    assert_eq!(
        (by_line(1).decision.outcome, by_line(1).decision.accepted),
        (Outcome::Accepted, 3)
    );
    assert_eq!(
        (by_line(2).decision.outcome, by_line(2).decision.accepted),
        (Outcome::PartiallyAccepted, 2)
    );
    assert_eq!(
        by_line(2).decision.reasons,
        vec![Reason::CountShort {
            expected: 3,
            counted: 2
        }]
    );
    assert_eq!(
        (by_line(3).decision.outcome, by_line(3).decision.held),
        (Outcome::Held, 2)
    );
    assert!(
        by_line(3)
            .decision
            .reasons
            .contains(&Reason::ModelUncertain)
    );
    assert_eq!(
        by_line(4).decision.outcome,
        Outcome::Held,
        "suspicious codes hold the line"
    );
    assert!(
        matches!(
            by_line(4).decision.reasons[..],
            [Reason::SuspiciousCodes { count: 3 }, ..]
        ),
        "{:?}",
        by_line(4).decision.reasons
    );
    assert!(
        by_line(4)
            .flagged_codes
            .iter()
            .any(|(_, f)| matches!(f, CodeFlag::AlreadyBound { .. })),
        "the duplicate scan is named"
    );
    assert_eq!(by_line(5).decision.outcome, Outcome::Held);
    assert!(matches!(
        by_line(5).decision.reasons[0],
        Reason::WeightOutOfTolerance {
            measured_g: 2_900,
            ..
        }
    ));
    assert_eq!(
        by_line(1).photos[0].model_name,
        "efficientnet-lite0",
        "evidence is kept with the decision"
    );

    let (stock, held, events, report) = store
        .read(|c| {
            Ok::<_, StoreError>((
                ledger::balances(c)?,
                hub::store::deliveries::held(c)?,
                outbox::pending(c, 0, 10_000)?,
                ledger::verify(c)?,
            ))
        })
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    let on_hand = |code: &str| {
        stock
            .iter()
            .find(|s| s.sku == code)
            .map(|s| s.on_hand)
            .unwrap()
    };
    assert_eq!(
        on_hand("ORANGE"),
        5,
        "3 + 2 accepted; the held line is not sellable"
    );
    assert_eq!(on_hand("MILK"), 0, "both milk lines held");
    assert_eq!(held.len(), 3);
    let figures = store
        .read(|c| hub::store::figures::read(c, Timestamp(0)))
        .await
        .unwrap();
    assert_eq!(
        (figures.receiving.held_lines, figures.receiving.held_units),
        (3, held.iter().map(|h| h.quantity).sum::<i64>()),
        "the status page counts the held lines and their units"
    );
    assert_eq!(
        figures.receiving.open_deliveries, 0,
        "the delivery is closed"
    );
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "receiving_line_decided")
            .count(),
        5
    );
    assert!(
        kinds.contains(&"trace_code_flagged")
            && kinds.contains(&"trace_code_bound")
            && kinds.contains(&"delivery_closed")
    );

    // Release the held oranges after a person looked at the photo: they become stock.
    receiving::resolve(
        &store,
        &Site::of(&config),
        receiving::Resolution {
            delivery_id: "D7".into(),
            line_no: 3,
            release: 2,
            reject: 0,
            staff: "staff-7".into(),
            reason: "photo checked by hand: oranges".into(),
        },
        now,
    )
    .await
    .unwrap();
    let stock = store.read(ledger::balances).await.unwrap();
    assert_eq!(stock.iter().find(|s| s.sku == "ORANGE").unwrap().on_hand, 7);
}

#[test]
fn sigkill_during_acceptance_leaves_each_decision_whole_or_absent() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rcv.sqlite");
    let mut rng = rand::rng();
    let mut acked = 0usize;
    for round in 0..20 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hub"))
            .args(["dev", "receive-loop", "--prefix", &format!("r{round}")])
            .arg("--db")
            .arg(&db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter(|l| l.starts_with("DECIDED"))
                .count()
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(80..500)));
        child.kill().unwrap();
        child.wait().unwrap();
        acked += reader.join().unwrap();

        let store = Store::open(&db, "crash-site", &StoreOptions::default()).unwrap();
        let problems = store
            .read_blocking(|c| {
                let mut problems = ledger::verify(c)?.problems;
                let rows: Vec<(String, u32, i64, i64)> = c
                    .prepare("SELECT delivery_id, line_no, accepted, held FROM line_decision")
                    .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).and_then(|r| r.collect()))
                    .map_err(hub::store::sql_error(c))?;
                for (d, line, accepted, held) in rows {
                    let receipts: i64 = c
                        .query_row("SELECT COALESCE(SUM(quantity), 0) FROM movement WHERE id = ?1", [format!("rcv-{d}-{line}")], |r| r.get(0))
                        .map_err(hub::store::sql_error(c))?;
                    let quarantined: i64 = c
                        .query_row(
                            "SELECT COALESCE(SUM(quantity), 0) FROM quarantine WHERE delivery_id = ?1 AND line_no = ?2",
                            rusqlite::params![d, line],
                            |r| r.get(0),
                        )
                        .map_err(hub::store::sql_error(c))?;
                    if receipts != accepted || quarantined != held {
                        problems.push(format!("{d}/{line}: receipts {receipts}/{accepted}, quarantine {quarantined}/{held}"));
                    }
                }
                let (decided, events): (i64, i64) = c
                    .query_row(
                        "SELECT (SELECT COUNT(*) FROM line_decision),
                                (SELECT COUNT(*) FROM outbox WHERE kind = 'receiving_line_decided')",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .map_err(hub::store::sql_error(c))?;
                if decided != events {
                    problems.push(format!("{decided} decisions but {events} decision events"));
                }
                // No half-done work: a manifest's trace codes exist only with its decisions.
                let orphans: i64 = c
                    .query_row(
                        "SELECT COUNT(*) FROM trace_code t WHERE NOT EXISTS
                         (SELECT 1 FROM line_decision d WHERE d.delivery_id = t.delivery_id AND d.lot = t.lot)",
                        [],
                        |r| r.get(0),
                    )
                    .map_err(hub::store::sql_error(c))?;
                if orphans > 0 {
                    problems.push(format!("{orphans} trace codes bound without their decision"));
                }
                Ok::<_, StoreError>(problems)
            })
            .unwrap();
        assert!(problems.is_empty(), "round {round}: {problems:?}");
        store.close();
    }
    assert!(
        acked > 20,
        "the child decided lines before being killed ({acked})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_retention_spares_a_disputed_delivery_until_its_dispute_is_closed() {
    use hub::evidence::{Retention, prune};
    use hub::store::deliveries::{ReceivingError, close_dispute, open_dispute, record_photo};
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store = Store::open(&config.database_path(), "rcv-1", &StoreOptions::default()).unwrap();
    let orange = "09506000134352";
    let photos = dir.path().join("data/evidence");
    std::fs::create_dir_all(&photos).unwrap();
    let stored_at = Timestamp(NOW - 100 * 86_400_000); // older than the 90-day limit
    for (delivery, lot) in [("D10", "OR-10"), ("D11", "OR-11")] {
        let manifest = Manifest {
            delivery_id: delivery.into(),
            supplier: "Sunny Orchards".into(),
            expected_at: None,
            lines: vec![line(1, "ORANGE", lot, 3, 15_000)],
            cancelled: false,
            version: 1,
        };
        let path = photos.join(format!("{delivery}.jpg"));
        std::fs::write(&path, b"jpeg bytes").unwrap();
        let mut evidence = photo(PhotoVerdict::Pass, delivery, 0.9);
        evidence.photo_path = Some(path.display().to_string());
        evidence.photo_sha256 = format!("{:0>64}", lot.replace('-', ""));
        store
            .write(move |c| {
                sku_store::upsert(c, &sku("ORANGE", orange), stored_at)?;
                upsert_manifest(c, &manifest, stored_at)?;
                let label = format!("{delivery}/1");
                let code = hub::codes::classify_text(&label, &Default::default());
                hub::workflows::receiving::scan_in(c, &site(), "dock-1", &label, &code, stored_at)?;
                record_photo(c, "dock-1", &evidence, stored_at)?;
                Ok::<_, ReceivingError>(())
            })
            .await
            .unwrap();
    }
    let now = Timestamp(NOW);
    let dispute = |delivery: &'static str, open: bool, note: &'static str| {
        let store = store.clone();
        async move {
            store
                .write(move |c| {
                    if open {
                        open_dispute(c, delivery, "li.wei", note, now)
                    } else {
                        close_dispute(c, delivery, "li.wei", note, now)
                    }
                })
                .await
        }
    };
    // Refusals name their reason and change nothing.
    assert!(matches!(
        dispute("D99", true, "crate crushed").await,
        Err(ReceivingError::UnknownDelivery(_))
    ));
    assert!(matches!(
        dispute("D10", true, "  ").await,
        Err(ReceivingError::EmptyDisputeNote)
    ));
    assert!(matches!(
        dispute("D10", false, "settled").await,
        Err(ReceivingError::NoOpenDispute(_))
    ));
    dispute("D10", true, "customer says the oranges were mouldy")
        .await
        .unwrap();
    match dispute("D10", true, "again").await {
        Err(ReceivingError::DisputeAlreadyOpen { note, .. }) => {
            assert_eq!(note, "customer says the oranges were mouldy")
        }
        other => panic!("{other:?}"),
    }
    // The status page lists the open dispute and both deliveries still open.
    let figures = store
        .read(|c| hub::store::figures::read(c, Timestamp(0)))
        .await
        .unwrap();
    assert_eq!(figures.receiving.open_deliveries, 2);
    assert_eq!(figures.receiving.disputes.len(), 1);
    assert_eq!(figures.receiving.disputes[0].delivery_id, "D10");
    assert_eq!(
        figures.receiving.disputes[0].note,
        "customer says the oranges were mouldy"
    );

    let retention = Retention {
        max_age_days: 90,
        max_total_bytes: 1 << 30,
    };
    let report = store
        .write(move |c| prune(c, retention, now))
        .await
        .unwrap();
    assert_eq!(
        (report.deleted, report.kept_protected),
        (1, 1),
        "{report:?}"
    );
    assert!(
        photos.join("D10.jpg").exists(),
        "the disputed delivery's photo is kept"
    );
    assert!(
        !photos.join("D11.jpg").exists(),
        "an old undisputed photo is pruned"
    );

    dispute("D10", false, "refunded 2 kg; supplier credited")
        .await
        .unwrap();
    let figures = store
        .read(|c| hub::store::figures::read(c, Timestamp(0)))
        .await
        .unwrap();
    assert!(
        figures.receiving.disputes.is_empty(),
        "a closed dispute leaves the page"
    );
    let report = store
        .write(move |c| prune(c, retention, now))
        .await
        .unwrap();
    assert_eq!(
        (report.deleted, report.kept_protected),
        (1, 0),
        "{report:?}"
    );
    assert!(
        !photos.join("D10.jpg").exists(),
        "once settled, retention applies again"
    );
    // The settlement was D10's first response (nobody responded before it).
    let first = store
        .read(|c| hub::store::deliveries::dispute_first_response(c, "D10"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (first.kind.as_str(), first.by.as_str(), first.at),
        ("settled", "li.wei", now)
    );
    // A settled dispute can be opened again, and its response time starts over.
    dispute("D10", true, "customer appealed").await.unwrap();
    let first = store
        .read(|c| hub::store::deliveries::dispute_first_response(c, "D10"))
        .await
        .unwrap();
    assert_eq!(first, None, "a reopened dispute has not been responded to");

    let events = store.read(|c| outbox::pending(c, 0, 10_000)).await.unwrap();
    let disputes: Vec<(String, String)> = events
        .iter()
        .filter(|e| e.kind.starts_with("dispute_"))
        .map(|e| (e.kind.clone(), e.payload.to_string()))
        .collect();
    assert_eq!(disputes.len(), 3, "{disputes:?}");
    assert_eq!(disputes[0].0, "dispute_opened");
    assert!(disputes[0].1.contains("mouldy") && disputes[0].1.contains("li.wei"));
    assert_eq!(disputes[1].0, "dispute_closed");
    assert!(disputes[1].1.contains("supplier credited"));
    assert_eq!(disputes[2].0, "dispute_opened");
}

/// A store with `skus` and one delivery `D` of `lines`, the station on line 1.
fn receiving_site(dir: &Path, skus: Vec<Sku>, lines: Vec<ManifestLine>) -> (Config, Store) {
    let config = config(dir);
    let store = Store::open(&config.database_path(), "rcv-1", &StoreOptions::default()).unwrap();
    let manifest = Manifest {
        delivery_id: "D".into(),
        supplier: "Sunny Orchards".into(),
        expected_at: None,
        lines,
        cancelled: false,
        version: 1,
    };
    store
        .write_blocking(move |c| {
            for s in &skus {
                sku_store::upsert(c, s, Timestamp(NOW))?;
            }
            upsert_manifest(c, &manifest, Timestamp(NOW))?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
    (config, store)
}

async fn scan_at(store: &Store, code: &str) -> ScanOutcome {
    receiving::scan(store, &site(), "dock-1", code, Timestamp(NOW))
        .await
        .unwrap()
}

fn flag_of(outcome: &ScanOutcome) -> Option<serde_json::Value> {
    match outcome {
        ScanOutcome::Item(BindOutcome::Flagged { flag, .. }) => {
            Some(serde_json::to_value(flag).unwrap())
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ean13_and_gtin14_of_one_product_match_whichever_form_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    // MILK stores the GTIN-14, MILK-B the EAN-13 of the same product.
    let mut milk_b = sku("MILK-B", "6901234567892");
    milk_b.name = "Milk, master data with the EAN-13".into();
    let (_config, store) = tokio::task::block_in_place(|| {
        receiving_site(
            dir.path(),
            vec![sku("MILK", "06901234567892"), milk_b],
            vec![
                ManifestLine {
                    crate_label: None,
                    ..line(1, "MILK", "MK-1", 2, 2_000)
                },
                ManifestLine {
                    crate_label: None,
                    ..line(2, "MILK-B", "MK-2", 1, 1_000)
                },
            ],
        )
    });
    scan_at(&store, "D/1").await;
    // An EAN-13 read by a scanner with AIM id ]E0 against the stored GTIN-14.
    let ean = scan_at(&store, "]E06901234567892").await;
    assert_eq!(flag_of(&ean), None, "{ean:?}");
    scan_at(&store, "D/2").await;
    // A GS1 (01) GTIN-14 with a serial against the stored EAN-13.
    let gs1 = scan_at(&store, &item("06901234567892", "S1")).await;
    assert!(
        matches!(gs1, ScanOutcome::Item(BindOutcome::Bound { .. })),
        "{gs1:?}"
    );
    // The master data keeps one form: the GTIN-14.
    let stored = store
        .read(|c| sku_store::get(c, &SkuCode::new("MILK-B").unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        serde_json::to_value(&stored.gtins).unwrap(),
        serde_json::json!(["06901234567892"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_no_rule_recognises_is_flagged_unrecognised_not_bound() {
    let dir = tempfile::tempdir().unwrap();
    let (_config, store) = tokio::task::block_in_place(|| {
        receiving_site(
            dir.path(),
            vec![sku("ORANGE", "09506000134352")],
            vec![line(1, "ORANGE", "OR-1", 3, 15_000)],
        )
    });
    scan_at(&store, "D/1").await;
    let odd = scan_at(&store, "HELLO-WORLD-42").await;
    let flag = flag_of(&odd).unwrap_or_else(|| panic!("not flagged: {odd:?}"));
    assert_eq!(flag["reason"], "unrecognised", "{flag}");
    assert!(
        flag["detail"]
            .as_str()
            .unwrap()
            .contains("[codes] patterns"),
        "the clerk is told what would make it a trace code: {flag}"
    );
    let bound: i64 = store
        .read(|c| {
            c.query_row("SELECT COUNT(*) FROM trace_code", [], |r| r.get(0))
                .map_err(hub::store::sql_error(c))
        })
        .await
        .unwrap();
    assert_eq!(bound, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lot_and_expiry_in_an_items_code_are_checked_against_the_line_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    // NOW is 2026-11-18; the line's lot expires 2026-12-20; the site wants 2 days at least.
    let (_config, store) = tokio::task::block_in_place(|| {
        receiving_site(
            dir.path(),
            vec![sku("ORANGE", "09506000134352")],
            vec![line(1, "ORANGE", "OR-1", 5, 25_000)],
        )
    });
    scan_at(&store, "D/1").await;
    let gs1 = |lot: &str, expiry: &str, serial: &str| {
        format!("]C10109506000134352 17{expiry}10{lot}\x1d21{serial}").replace(' ', "")
    };
    let good = scan_at(&store, &gs1("OR-1", "261220", "S1")).await;
    assert!(
        matches!(good, ScanOutcome::Item(BindOutcome::Bound { .. })),
        "{good:?}"
    );
    let reason = |o: &ScanOutcome| {
        flag_of(o)
            .map(|f| f["reason"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| format!("not flagged: {o:?}"))
    };
    assert_eq!(
        reason(&scan_at(&store, &gs1("OR-9", "261220", "S2")).await),
        "lot_mismatch"
    );
    assert_eq!(
        reason(&scan_at(&store, &gs1("OR-1", "261115", "S3")).await),
        "expired"
    );
    assert_eq!(
        reason(&scan_at(&store, &gs1("OR-1", "261119", "S4")).await),
        "expiry_too_close"
    );
    assert_eq!(
        reason(&scan_at(&store, &gs1("OR-1", "261231", "S5")).await),
        "expiry_mismatch"
    );
    // The parsed element strings stay with the bound code, and `hub trace` shows them.
    let trace = store
        .read(|c| hub::store::trace::item(c, "(01)09506000134352(21)S1"))
        .await
        .unwrap()
        .expect("the bound code is traceable");
    let trace = serde_json::to_value(&trace).unwrap();
    assert_eq!(
        trace["elements"],
        serde_json::json!([
            {"ai": "01", "value": "09506000134352"},
            {"ai": "17", "value": "261220"},
            {"ai": "10", "value": "OR-1"},
            {"ai": "21", "value": "S1"}
        ]),
        "{trace}"
    );
}

fn passing_photo() -> PhotoEvidence {
    photo(PhotoVerdict::Pass, "orange", 0.9)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_scans_count_for_a_line_without_issued_codes_but_are_never_bound() {
    let dir = tempfile::tempdir().unwrap();
    let traced = ManifestLine {
        trace_codes: vec!["(01)09506000134352(21)T1".into()],
        crate_label: None,
        ..line(2, "ORANGE", "OR-2", 1, 5_000)
    };
    let (config, store) = tokio::task::block_in_place(|| {
        receiving_site(
            dir.path(),
            vec![sku("ORANGE", "09506000134352")],
            vec![line(1, "ORANGE", "OR-1", 3, 15_000), traced],
        )
    });
    let now = Timestamp(NOW);
    scan_at(&store, "D/1").await;
    // The same EAN-13 on two boxes: two product scans, the second not "already bound".
    for _ in 0..2 {
        let o = scan_at(&store, "]E09506000134352").await;
        assert_eq!(flag_of(&o), None, "{o:?}");
        assert!(
            !matches!(o, ScanOutcome::Item(BindOutcome::Bound { .. })),
            "a product scan is not a trace code: {o:?}"
        );
    }
    // GS1 data with a GTIN and a lot but no serial is a product scan too.
    let o = scan_at(
        &store,
        "]C10109506000134352 10OR-1".replace(' ', "").as_str(),
    )
    .await;
    assert_eq!(flag_of(&o), None, "{o:?}");
    let rec = store
        .read(|c| hub::store::deliveries::line_record(c, "D", 1))
        .await
        .unwrap();
    assert!(rec.bound_codes.is_empty(), "{rec:?}");
    let bound: i64 = store
        .read(|c| {
            c.query_row("SELECT COUNT(*) FROM trace_code", [], |r| r.get(0))
                .map_err(hub::store::sql_error(c))
        })
        .await
        .unwrap();
    assert_eq!(bound, 0, "product scans never become trace codes");
    receiving::weight(&store, &site(), "dock-1", 15_050, now)
        .await
        .unwrap();
    receiving::photo(&store, &site(), "dock-1", passing_photo(), now)
        .await
        .unwrap();
    // A line with an issued trace-code list wants those codes, not the product barcode.
    scan_at(&store, "D/2").await;
    let refused = receiving::scan(&store, &site(), "dock-1", "]E09506000134352", now).await;
    let message = refused
        .expect_err("a product scan on a traced line")
        .to_string();
    assert!(message.contains("trace code"), "{message}");

    let d = receiving::decide(&store, &Site::of(&config), "D", 1, "staff-1", now)
        .await
        .unwrap();
    assert_eq!(
        (d.decision.outcome, d.decision.accepted),
        (Outcome::Accepted, 3),
        "three product scans count three boxes: {:?}",
        d.decision.reasons
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_weight_is_judged_on_the_manifests_figures_not_scaled_by_the_scanned_count() {
    let dir = tempfile::tempdir().unwrap();
    let (config, store) = tokio::task::block_in_place(|| {
        receiving_site(
            dir.path(),
            vec![sku("ORANGE", "09506000134352")],
            vec![line(1, "ORANGE", "OR-1", 3, 15_000)],
        )
    });
    let now = Timestamp(NOW);
    scan_at(&store, "D/1").await;
    // Two boxes scanned, three on the scale: the weight matches the manifest, the count does not.
    for serial in ["A", "B"] {
        scan_at(&store, &item("09506000134352", serial)).await;
    }
    receiving::weight(&store, &site(), "dock-1", 15_000, now)
        .await
        .unwrap();
    receiving::photo(&store, &site(), "dock-1", passing_photo(), now)
        .await
        .unwrap();
    let d = receiving::decide(&store, &Site::of(&config), "D", 1, "staff-1", now)
        .await
        .unwrap();
    assert_eq!(d.decision.outcome, Outcome::Held, "{:?}", d.decision);
    assert!(
        !d.decision
            .reasons
            .iter()
            .any(|r| matches!(r, Reason::WeightOutOfTolerance { .. })),
        "15 kg is the manifest's 15 kg: {:?}",
        d.decision.reasons
    );
    assert!(
        d.decision
            .reasons
            .contains(&Reason::CountDisagreesWithWeight {
                expected: 3,
                counted: 2
            }),
        "{:?}",
        d.decision.reasons
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_by_weight_line_within_tolerance_is_accepted_by_its_weight() {
    let dir = tempfile::tempdir().unwrap();
    let cabbage = Sku {
        unit: StockUnit::Gram,
        ..sku("CABBAGE", "06901234567892")
    };
    let cabbage_line = ManifestLine {
        weight_tolerance_g: 500,
        crate_label: None,
        ..line(1, "CABBAGE", "CB-1", 25_000, 25_000)
    };
    let (config, store) = tokio::task::block_in_place(|| {
        receiving_site(dir.path(), vec![cabbage], vec![cabbage_line])
    });
    let now = Timestamp(NOW);
    scan_at(&store, "D/1").await;
    // The clerk scans the cabbage's product barcode once, then weighs the crate: 25.1 kg.
    scan_at(&store, "]E06901234567892").await;
    receiving::weight(&store, &site(), "dock-1", 25_100, now)
        .await
        .unwrap();
    receiving::photo(&store, &site(), "dock-1", passing_photo(), now)
        .await
        .unwrap();
    let d = receiving::decide(&store, &Site::of(&config), "D", 1, "staff-1", now)
        .await
        .unwrap();
    assert_eq!(
        (
            d.decision.outcome,
            d.decision.accepted,
            d.decision.rejected,
            d.decision.held
        ),
        (Outcome::Accepted, 25_100, 0, 0),
        "{:?}",
        d.decision.reasons
    );
    let stock = store.read(ledger::balances).await.unwrap();
    assert_eq!(
        stock.iter().find(|s| s.sku == "CABBAGE").unwrap().on_hand,
        25_100,
        "the grams that arrived are on the ledger"
    );
}

// ---- A supervisor reverses a line's last receipt ----

fn reversal(
    request_id: &str,
    supervisor: bool,
    reason: hub_core::receiving_reversal::ReversalReason,
) -> hub::store::receipt_reversal::ReversalRequest {
    hub::store::receipt_reversal::ReversalRequest {
        delivery_id: "D".into(),
        line_no: 1,
        staff: if supervisor { "wang.zhu" } else { "li.na" }.into(),
        supervisor,
        reason,
        request_id: request_id.into(),
        // The workflow takes the site's window (`receiving.reversal_window_minutes`, 30).
        window_minutes: 0,
    }
}

async fn on_hand(store: &Store, lot: &'static str) -> i64 {
    store
        .read(move |c| ledger::lot(c, &SkuCode::new("ORANGE").unwrap(), lot))
        .await
        .unwrap()
        .map(|(_, n)| n)
        .unwrap_or(0)
}

/// Receives line 1 of `D`: three trace codes, the weight and a passing photo, then decides.
async fn receive_line_1(store: &Store, now: Timestamp) -> hub_core::event::ReceivingDecision {
    receiving::scan(store, &site(), "dock-1", "D/1", now)
        .await
        .unwrap();
    for i in 0..3 {
        let o = receiving::scan(
            store,
            &site(),
            "dock-1",
            &item("09506000134352", &format!("R{i}")),
            now,
        )
        .await
        .unwrap();
        assert!(
            matches!(o, ScanOutcome::Item(BindOutcome::Bound { .. })),
            "code R{i} binds: {o:?}"
        );
    }
    receiving::weight(store, &site(), "dock-1", 15_050, now)
        .await
        .unwrap();
    receiving::photo(store, &site(), "dock-1", passing_photo(), now)
        .await
        .unwrap();
    receiving::decide(store, &site(), "D", 1, "li.na", now)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_reverses_a_receipt_in_the_window_and_the_redone_line_stocks_again() {
    use hub::store::deliveries::{LineState, ReceivingError};
    use hub_core::receiving_reversal::{ReversalReason, ReversalRefusal};
    let dir = tempfile::tempdir().unwrap();
    let (_config, store) = tokio::task::block_in_place(|| {
        receiving_site(
            dir.path(),
            vec![sku("ORANGE", "09506000134352")],
            vec![line(1, "ORANGE", "OR-1", 3, 15_000)],
        )
    });
    let now = Timestamp(NOW);
    let minutes = |m: i64| Timestamp(NOW + m * 60_000);
    let d = receive_line_1(&store, now).await;
    assert_eq!(
        (d.decision.outcome, d.decision.accepted),
        (Outcome::Accepted, 3)
    );
    assert_eq!(on_hand(&store, "OR-1").await, 3);

    let refused = |r: Result<_, ReceivingError>| match r {
        Err(ReceivingError::ReversalRefused { refusal, .. }) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    };
    // A clerk may not; nor may a supervisor after the window; nothing changes.
    let clerk = receiving::reverse(
        &store,
        &site(),
        reversal("q-1", false, ReversalReason::CountError),
        minutes(5),
    )
    .await;
    assert_eq!(refused(clerk), ReversalRefusal::NotSupervisor);
    let late = receiving::reverse(
        &store,
        &site(),
        reversal("q-2", true, ReversalReason::CountError),
        minutes(31),
    )
    .await;
    assert_eq!(
        refused(late),
        ReversalRefusal::OutsideWindow {
            window_minutes: 30,
            age_minutes: 31
        }
    );
    assert_eq!(on_hand(&store, "OR-1").await, 3);

    let done = receiving::reverse(
        &store,
        &site(),
        reversal("q-3", true, ReversalReason::CountError),
        minutes(5),
    )
    .await
    .unwrap();
    assert_eq!(
        (done.quantity, done.receipts.clone(), done.freed_codes.len()),
        (3, vec!["rcv-D-1".to_owned()], 3),
        "{done:?}"
    );
    assert_eq!(
        on_hand(&store, "OR-1").await,
        0,
        "the reversal took the stock out"
    );
    // The same request again is answered from the stored reversal, not applied twice.
    let again = receiving::reverse(
        &store,
        &site(),
        reversal("q-3", true, ReversalReason::CountError),
        minutes(6),
    )
    .await
    .unwrap();
    assert!(
        again.repeated && again.movement_id == done.movement_id,
        "{again:?}"
    );
    assert_eq!(on_hand(&store, "OR-1").await, 0);
    // A new request finds nothing left to reverse.
    let twice = receiving::reverse(
        &store,
        &site(),
        reversal("q-4", true, ReversalReason::CountError),
        minutes(6),
    )
    .await;
    assert_eq!(refused(twice), ReversalRefusal::NothingReceived);

    // The receipt stays in the journal beside the reversal; the ledger checks out; the line waits.
    let (receipt, reversal_movement, verify, bench) = store
        .read(|c| {
            Ok::<_, ReceivingError>((
                ledger::movement_by_id(c, &hub_core::MovementId::new("rcv-D-1").unwrap())?,
                ledger::movement_by_id(c, &hub_core::MovementId::new("rev-D-1").unwrap())?,
                ledger::verify(c)?,
                hub::store::deliveries::bench_delivery(
                    c,
                    "D",
                    &site().receiving,
                    "2026-11-18".parse().unwrap(),
                )?
                .unwrap(),
            ))
        })
        .await
        .unwrap();
    assert_eq!(receipt.map(|m| m.quantity), Some(3));
    assert_eq!(reversal_movement.map(|m| m.delta()), Some(-3));
    assert!(verify.problems.is_empty(), "{:?}", verify.problems);
    assert_eq!(bench.lines[0].state, LineState::Waiting);
    let events = store.read(|c| outbox::pending(c, 0, 10_000)).await.unwrap();
    let upstream: Vec<serde_json::Value> = events
        .iter()
        .filter(|e| e.kind == "receipt_reversed")
        .map(|e| serde_json::from_str(&e.payload).unwrap())
        .collect();
    assert_eq!(upstream.len(), 1, "one event per reversal");
    assert_eq!(
        (
            &upstream[0]["quantity"],
            &upstream[0]["reason"],
            &upstream[0]["staff"]
        ),
        (
            &serde_json::json!(3),
            &serde_json::json!("count_error"),
            &serde_json::json!("wang.zhu")
        ),
        "{}",
        upstream[0]
    );

    // The report counts no receipt and no decided line while the line waits.
    assert_eq!(report_receipts(&store, minutes(7)).await, (0, 0, 0));

    // Redo: the same codes bind again, and the new receipt is not taken for the old one.
    let redo = receive_line_1(&store, minutes(7)).await;
    assert_eq!(redo.decision.accepted, 3);
    assert_eq!(
        on_hand(&store, "OR-1").await,
        3,
        "the redone receipt is on hand"
    );
    assert_eq!(
        report_receipts(&store, minutes(8)).await,
        (1, 3, 1),
        "one receipt of 3, one line decided: the reversed one is not counted"
    );

    // Stock that left since the receipt cannot be reversed.
    store
        .write(move |c| {
            ledger::record(
                c,
                &hub_core::Movement {
                    id: hub_core::MovementId::new("loss-1").unwrap(),
                    sku: SkuCode::new("ORANGE").unwrap(),
                    batch: Some(hub_core::BatchKey {
                        lot: "OR-1".into(),
                        expiry: "2026-12-20".parse().ok(),
                    }),
                    kind: hub_core::MovementKind::Loss,
                    quantity: 1,
                    reason: "dropped".into(),
                    reference: "test".into(),
                    at: minutes(8),
                },
            )
            .map(|_| ())
        })
        .await
        .unwrap();
    let left = receiving::reverse(
        &store,
        &site(),
        reversal("q-5", true, ReversalReason::DamageFound),
        minutes(9),
    )
    .await;
    assert_eq!(
        refused(left),
        ReversalRefusal::AlreadyHandedOver {
            received: 3,
            left: 1
        }
    );
    // A closed delivery's receipts stay.
    receiving::close(&store, &site(), "D", "wang.zhu", minutes(10))
        .await
        .unwrap();
    let closed = receiving::reverse(
        &store,
        &site(),
        reversal("q-6", true, ReversalReason::DamageFound),
        minutes(10),
    )
    .await;
    assert_eq!(refused(closed), ReversalRefusal::DeliveryClosed);
}

/// The report's receipts, pieces received and lines decided on the site's day 2026-11-18.
async fn report_receipts(store: &Store, now: Timestamp) -> (i64, i64, i64) {
    let day: chrono::NaiveDate = "2026-11-18".parse().unwrap();
    let r = store
        .read(move |c| {
            hub::store::report::compute(c, day, day.succ_opt().unwrap(), site().timezone, 2, now)
        })
        .await
        .unwrap();
    (
        r.receipts,
        r.by_unit.iter().map(|u| u.received_quantity).sum(),
        r.daily.iter().map(|d| d.lines_decided).sum(),
    )
}

/// A line held and then released is received by the release; reversing it takes
/// the released quantity out, and the redone line's receipt gets a new id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_receipt_is_reversed_and_the_redone_line_gets_a_new_receipt_id() {
    use hub_core::receiving_reversal::ReversalReason;
    let dir = tempfile::tempdir().unwrap();
    let (_config, store) = tokio::task::block_in_place(|| {
        receiving_site(
            dir.path(),
            vec![sku("ORANGE", "09506000134352")],
            vec![line(1, "ORANGE", "OR-1", 3, 15_000)],
        )
    });
    let now = Timestamp(NOW);
    receiving::count(&store, "D", 1, 3, now).await.unwrap();
    let held = receiving::decide_holding(
        &store,
        &site(),
        "D",
        1,
        "li.na",
        Some(hub_core::receiving::HoldReason::QualityDoubt),
        now,
    )
    .await
    .unwrap();
    assert_eq!((held.decision.accepted, held.decision.held), (0, 3));
    receiving::resolve(
        &store,
        &site(),
        receiving::Resolution {
            delivery_id: "D".into(),
            line_no: 1,
            release: 3,
            reject: 0,
            staff: "wang.zhu".into(),
            reason: "checked_by_hand".into(),
        },
        now,
    )
    .await
    .unwrap();
    assert_eq!(on_hand(&store, "OR-1").await, 3);
    let done = receiving::reverse(
        &store,
        &site(),
        reversal("q-1", true, ReversalReason::WrongLine),
        Timestamp(NOW + 60_000),
    )
    .await
    .unwrap();
    assert_eq!(
        (done.quantity, done.receipts),
        (3, vec!["rel-D-1".to_owned()])
    );
    assert_eq!(on_hand(&store, "OR-1").await, 0);
    let held_now = store.read(hub::store::deliveries::held).await.unwrap();
    assert!(held_now.is_empty(), "{held_now:?}");
    // Redone and accepted this time: a receipt of its own, not taken for a duplicate.
    scan_at(&store, "D/1").await;
    receiving::count(&store, "D", 1, 3, now).await.unwrap();
    receiving::weight(&store, &site(), "dock-1", 15_000, now)
        .await
        .unwrap();
    receiving::photo(&store, &site(), "dock-1", passing_photo(), now)
        .await
        .unwrap();
    let redo = receiving::decide(&store, &site(), "D", 1, "li.na", Timestamp(NOW + 120_000))
        .await
        .unwrap();
    assert_eq!(redo.decision.accepted, 3, "{:?}", redo.decision);
    let id = hub_core::MovementId::new("rcv-D-1-r1").unwrap();
    let receipt = store
        .read(move |c| ledger::movement_by_id(c, &id))
        .await
        .unwrap();
    assert_eq!(receipt.map(|m| m.quantity), Some(3));
    assert_eq!(on_hand(&store, "OR-1").await, 3);
}

/// `receive_reverse` as a station command (MQTT's path, the bench's too): a staff
/// member known as a clerk is refused in words, so are staff the hub does not know or has
/// disabled, a supervisor's command reverses the receipt, and the same command again gets the
/// stored reply without reversing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receive_reverse_station_command_is_a_supervisors_and_applies_once() {
    use hub::store::staff::{self as staff_store, Role, StaffMember};
    let dir = tempfile::tempdir().unwrap();
    let (_config, store) = tokio::task::block_in_place(|| {
        receiving_site(
            dir.path(),
            vec![sku("ORANGE", "09506000134352")],
            vec![line(1, "ORANGE", "OR-1", 3, 15_000)],
        )
    });
    let now = Timestamp(NOW);
    receive_line_1(&store, now).await;
    let pin = hub::station_app::hash_pin("1357").unwrap();
    store
        .write(move |c| {
            for (id, role) in [
                ("li.na", Role::Clerk),
                ("wang.zhu", Role::Supervisor),
                ("zhao.left", Role::Supervisor),
            ] {
                staff_store::upsert_staff(
                    c,
                    &StaffMember {
                        staff_id: id.into(),
                        name: id.into(),
                        role,
                        lang: "zh-CN".into(),
                        disabled: false,
                        failed_pins: 0,
                        locked_until: None,
                        pin_hash: pin.clone(),
                    },
                    now,
                )?;
            }
            staff_store::disable_staff(c, "zhao.left", now)?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let send = |id: &str, staff: &str| {
        let payload = format!(
            r#"{{"v":1,"id":"{id}","staff":"{staff}","kind":"receive_reverse","delivery_id":"D","line_no":1,"reason":"count_error"}}"#
        );
        let store = store.clone();
        async move {
            store
                .write(move |c| {
                    hub::workflows::station::handle_in(
                        c,
                        Some(&site()),
                        "dock-1",
                        payload.as_bytes(),
                        Timestamp(NOW + 60_000),
                    )
                })
                .await
                .unwrap()
        }
    };
    let clerk = send("m-1", "li.na").await;
    assert!(!clerk.ok, "{clerk:?}");
    assert!(
        clerk
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("Only a supervisor")),
        "{clerk:?}"
    );
    assert_eq!(on_hand(&store, "OR-1").await, 3);
    // Staff the hub does not know, or has disabled, cannot act as a supervisor.
    for (id, who, why) in [
        ("m-x", "ghost", "not known at this hub"),
        ("m-y", "zhao.left", "disabled"),
    ] {
        let refused = send(id, who).await;
        assert!(!refused.ok, "{refused:?}");
        assert!(
            refused.reason.as_deref().is_some_and(|r| r.contains(why)),
            "{refused:?}"
        );
    }
    assert_eq!(on_hand(&store, "OR-1").await, 3);
    let boss = send("m-2", "wang.zhu").await;
    assert!(boss.ok, "{boss:?}");
    assert_eq!(on_hand(&store, "OR-1").await, 0);
    let again = send("m-2", "wang.zhu").await;
    assert!(again.ok, "{again:?}");
    let reversals: i64 = store
        .read(|c| {
            c.query_row("SELECT COUNT(*) FROM receipt_reversal", [], |r| r.get(0))
                .map_err(hub::store::sql_error(c))
        })
        .await
        .unwrap();
    assert_eq!(reversals, 1);
    assert_eq!(on_hand(&store, "OR-1").await, 0);
}

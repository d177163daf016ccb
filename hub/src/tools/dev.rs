//! Hidden developer commands used by the crash tests: they drive the real store the way the
//! daemon does and report each acknowledgement on stdout the moment it is durable.

use crate::store::ledger::{Recorded, record};
use crate::store::{Store, StoreError, StoreOptions, sku as sku_store};
use hub_core::{BatchKey, Movement, MovementId, MovementKind, Sku, SkuCode, StockUnit, Timestamp};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// Applies movements from `threads` concurrent writers until killed (or `limit` is reached),
/// printing `ACK <movement id> <outbox seq>` after each durable acknowledgement.
pub fn apply_loop(db: &Path, prefix: &str, threads: usize, limit: u64) -> anyhow::Result<()> {
    let store = Store::open(db, "crash-site", &StoreOptions::default())?;
    store.write_blocking(|c| {
        for code in ["CRASH-A", "CRASH-B"] {
            let sku = Sku::new(SkuCode::new(code).expect("valid"), code, StockUnit::Piece);
            sku_store::upsert(c, &sku, Timestamp(0))?;
        }
        Ok::<_, StoreError>(())
    })?;
    let out = Mutex::new(std::io::stdout());
    std::thread::scope(|scope| {
        for t in 0..threads {
            let store = store.clone();
            let out = &out;
            scope.spawn(move || {
                for i in 0..limit {
                    // Receipts and issues interleave so that refusals (not enough stock) happen too.
                    let kind = if i % 3 == 2 {
                        MovementKind::Issue
                    } else {
                        MovementKind::Receipt
                    };
                    let m = Movement {
                        id: MovementId::new(format!("{prefix}-{t}-{i}")).expect("valid"),
                        sku: SkuCode::new(if i % 2 == 0 { "CRASH-A" } else { "CRASH-B" })
                            .expect("valid"),
                        batch: Some(BatchKey {
                            lot: format!("LOT{}", i % 4),
                            expiry: None,
                        }),
                        kind,
                        quantity: 1 + (i % 5) as i64,
                        reason: String::new(),
                        reference: format!("crash test {prefix}"),
                        at: crate::clock::now(),
                    };
                    let id = m.id.clone();
                    match store.write_blocking(move |c| record(c, &m)) {
                        Ok(Recorded::Applied { outbox_seq, .. }) => {
                            if let Ok(mut o) = out.lock() {
                                let _ = writeln!(o, "ACK {id} {outbox_seq}");
                                let _ = o.flush();
                            }
                        }
                        Ok(Recorded::Duplicate)
                        | Err(crate::store::ledger::RecordError::Refused(_)) => {}
                        Err(e) => {
                            eprintln!("write failed: {e}");
                            return;
                        }
                    }
                }
            });
        }
    });
    store.close();
    Ok(())
}

/// Receives deliveries in a loop — manifest, label scan, item scans, weight, decision — and
/// prints `DECIDED <delivery> <line> <outcome>` after each durable decision.
pub fn receive_loop(db: &Path, prefix: &str, limit: u64) -> anyhow::Result<()> {
    use crate::store::deliveries;
    use hub_core::receiving::{Manifest, ManifestLine, ReceivingPolicy};
    let store = Store::open(db, "crash-site", &StoreOptions::default())?;
    store.write_blocking(|c| {
        let sku = Sku {
            code: SkuCode::new("CRASH-R").expect("valid"),
            name: "crash receiving".into(),
            unit: StockUnit::Piece,
            gtins: vec!["09506000134352".parse().expect("a valid GTIN")],
            allow_negative: false,
            check_items_at_handover: false,
            version: 1,
        };
        sku_store::upsert(c, &sku, Timestamp(0))?;
        Ok::<_, StoreError>(())
    })?;
    let policy = ReceivingPolicy {
        min_days_to_expiry: 0,
        photo_required: false,
    };
    let mut out = std::io::stdout();
    for n in 0..limit {
        let delivery_id = format!("{prefix}-D{n}");
        let line = |line_no: u32, expected: i64| ManifestLine {
            line_no,
            sku: SkuCode::new("CRASH-R").expect("valid"),
            lot: format!("{prefix}-L{n}-{line_no}"),
            production_date: None,
            expiry: None,
            expected_count: Some(expected),
            expected_weight_g: Some(1000 * expected),
            weight_tolerance_g: 100,
            trace_codes: vec![],
            crate_label: None,
        };
        let manifest = Manifest {
            delivery_id: delivery_id.clone(),
            supplier: "Crash Farms".into(),
            expected_at: None,
            lines: vec![line(1, 3), line(2, 3)],
            cancelled: false,
            version: 1,
        };
        let now = crate::clock::now();
        let today = chrono::Utc::now().date_naive();
        let id = delivery_id.clone();
        let decisions = store.write_blocking(move |c| {
            deliveries::upsert_manifest(c, &manifest, now)?;
            let mut outcomes = Vec::new();
            for (line_no, weight) in [(1u32, 3_000i64), (2, 2_000)] {
                deliveries::scan_label(c, "dock", &format!("{id}/{line_no}"), now)?;
                for k in 0..3 {
                    let item = deliveries::ScannedItem {
                        code: format!("(01)09506000134352(21){id}-{line_no}-{k}"),
                        kind: hub_core::receiving::CodeKind::TraceCode,
                        gtin: "09506000134352".parse().ok(),
                        lot: None,
                        expiry: None,
                        elements: vec![],
                    };
                    deliveries::scan_item(c, "dock", &item, &policy, today, now)?;
                }
                deliveries::record_weight(c, "dock", weight, now)?;
                let d = deliveries::decide(c, &id, line_no, "crash-test", &policy, today, now)?;
                outcomes.push((line_no, d.decision.outcome.as_str()));
            }
            Ok::<_, deliveries::ReceivingError>(outcomes)
        })?;
        for (line_no, outcome) in decisions {
            let _ = writeln!(out, "DECIDED {delivery_id} {line_no} {outcome}");
        }
        let _ = out.flush();
    }
    store.close();
    Ok(())
}

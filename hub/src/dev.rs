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
            let sku = Sku {
                code: SkuCode::new(code).expect("valid"),
                name: code.into(),
                unit: StockUnit::Piece,
                gtins: vec![],
                allow_negative: false,
                check_items_at_handover: false,
                version: 1,
            };
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

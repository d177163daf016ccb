//! `hub report` counts the site's calendar days (`site.timezone`), end to end through the CLI:
//! on a site in America/New_York, a handover at 23:30 local time on 2026-01-14 (04:30 UTC on
//! the 15th) counts on the 14th — in the period, in `daily` and in the heat map (Wednesday
//! 23:00) — and not on the 15th, which it would be on in UTC.

use hub::store::{Store, StoreError, StoreOptions, ledger, sku as sku_store};
use hub_core::{BatchKey, Movement, MovementId, MovementKind, Sku, SkuCode, StockUnit, Timestamp};
use rusqlite::params;
use serde_json::Value;
use tests::{hub, stderr, stdout};

/// 2026-01-14 23:30 in New York (UTC-5) = 2026-01-15 04:30 UTC.
const HANDED_OVER_AT: i64 = 1_768_451_400_000;

fn report(cfg: &str, from: &str, to: &str) -> Value {
    let out = hub(&[
        "report", "--from", from, "--to", to, "--json", "--config", cfg,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[test]
fn hub_report_counts_a_late_evening_handover_on_the_sites_day_not_the_utc_day() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "[site]\nid = \"ny-1\"\ntimezone = \"America/New_York\"\n[store]\ndata_dir = \"{}\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    // The hub creates its database, then the day is written into it.
    let listed = hub(&["staff", "list", "--config", cfg]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let store = Store::open(
        &dir.path().join("data").join("hub-ny-1.sqlite"),
        "ny-1",
        &StoreOptions::default(),
    )
    .unwrap();
    store
        .write_blocking(|c| {
            let sku = Sku::new(SkuCode::new("MILK").unwrap(), "milk", StockUnit::Piece);
            sku_store::upsert(c, &sku, Timestamp(0))?;
            for (id, kind, quantity, at, reference) in [
                ("m1", MovementKind::Receipt, 5, HANDED_OVER_AT - 12 * 3_600_000, "delivery D1"),
                ("m2", MovementKind::Issue, 2, HANDED_OVER_AT, "pickup order O1"),
            ] {
                let m = Movement {
                    id: MovementId::new(id).unwrap(),
                    sku: sku.code.clone(),
                    batch: Some(BatchKey::new("L1", None).unwrap()),
                    kind,
                    quantity,
                    reason: String::new(),
                    reference: reference.into(),
                    at: Timestamp(at),
                };
                ledger::record(c, &m).map_err(|e| match e {
                    ledger::RecordError::Store(e) => e,
                    other => panic!("{other}"),
                })?;
            }
            c.execute(
                "INSERT INTO pickup_order (order_id, site, code_salt, code_hash, body, opens_at, closes_at, status, collected_at, version, updated_at)
                 VALUES ('O1', 'ny-1', 'aa', 'bb', '{}', 0, ?1, 'collected', ?2, 1, 0)",
                params![HANDED_OVER_AT + 3_600_000, HANDED_OVER_AT],
            )
            .map_err(hub::store::sql_error(c))?;
            c.execute(
                "INSERT INTO handover (order_id, station, at, body) VALUES ('O1', 'desk-1', ?1, '{}')",
                params![HANDED_OVER_AT],
            )
            .map_err(hub::store::sql_error(c))?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
    store.close();

    let day = report(cfg, "2026-01-14", "2026-01-15");
    assert_eq!(day["timezone"], "America/New_York");
    assert_eq!(day["handovers"], 1, "{day}");
    assert_eq!(day["by_unit"][0]["handed_over_quantity"], 2, "{day}");
    assert_eq!(day["daily"][0]["date"], "2026-01-14");
    assert_eq!(day["daily"][0]["handovers"], 1);
    // 2026-01-14 is a Wednesday (row 2, Monday first), 23:00 local.
    assert_eq!(day["handovers_by_weekday_hour"][2][23], 1, "{day}");
    let next = report(cfg, "2026-01-15", "2026-01-16");
    assert_eq!(next["handovers"], 0, "{next}");
    assert_eq!(next["by_unit"][0]["handed_over_quantity"], 0, "{next}");
}

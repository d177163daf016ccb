//! The station app in `hub demo --keep-running`: a demo clerk and supervisor (PINs printed),
//! pairing codes for the pickup desks, and a few open orders with their QR payloads, so a
//! newcomer can click through a pickup at once.

use crate::config::{Config, StationKind};
use crate::store::staff::{self as staff_store, Role, StaffMember};
use crate::store::{Store, ledger, pickup_orders, sku as sku_store};
use hub_core::pickup::{OrderStatus, PickupItem, PickupOrder, hash_code};
use hub_core::{BatchKey, Movement, MovementId, MovementKind, Sku, SkuCode, StockUnit, Timestamp};

/// The demo clerk: id, name, PIN.
pub const CLERK: (&str, &str, &str) = ("clerk", "李小红", "1234");
/// The demo supervisor: id, name, PIN.
pub const SUPERVISOR: (&str, &str, &str) = ("boss", "王主管", "9876");
/// Demo orders: order id, code, quantity, phone tail.
pub const ORDERS: [(&str, &str, i64, &str); 4] = [
    ("APP-1001", "246810", 2, "1234"),
    ("APP-1002", "135791", 1, "5678"),
    ("APP-1003", "112233", 3, "2468"),
    ("APP-1004", "445566", 1, "1357"),
];

/// What a newcomer needs to try the app.
#[derive(Debug, Clone)]
pub struct DemoStations {
    /// `(station id, pairing code)` for each pickup desk.
    pub pairing: Vec<(String, String)>,
}

/// Adds the demo staff, stock, orders and pairing codes.
pub fn set_up(store: &Store, config: &Config, now: Timestamp) -> anyhow::Result<DemoStations> {
    let clerk_hash = crate::station_app::hash_pin(CLERK.2)?;
    let boss_hash = crate::station_app::hash_pin(SUPERVISOR.2)?;
    let pairing: Vec<(String, String)> = config
        .stations
        .iter()
        .filter(|s| s.kind == StationKind::Pickup)
        .map(|s| (s.id.clone(), crate::station_app::new_pairing_code()))
        .collect();
    let site = config.site.id.clone();
    let codes = pairing.clone();
    store.write_blocking(move |c| {
        let sku = Sku {
            code: SkuCode::new("APPLE-1KG").expect("valid code"),
            name: "红富士苹果 1kg".into(),
            unit: StockUnit::Piece,
            gtins: vec![],
            allow_negative: false,
            check_items_at_handover: false,
            version: 1,
        };
        sku_store::upsert(c, &sku, now)?;
        let receipt = Movement {
            id: MovementId::new("demo-app-receipt").expect("valid id"),
            sku: sku.code.clone(),
            batch: BatchKey::new("APL-01", None).ok(),
            kind: MovementKind::Receipt,
            quantity: 40,
            reason: String::new(),
            reference: "demo delivery for the station app".into(),
            at: now,
        };
        ledger::record(c, &receipt)
            .map_err(|e| anyhow::anyhow!("cannot receive the demo stock: {e}"))?;
        for (i, (id, code, qty, tail)) in ORDERS.iter().enumerate() {
            let salt = format!("{:08x}", 0xa0a0_0000_u32 + i as u32);
            let order = PickupOrder {
                order_id: (*id).into(),
                site: site.clone(),
                code_hash: hash_code(&salt, code).unwrap_or_default(),
                code_salt: salt,
                items: vec![PickupItem {
                    sku: sku.code.clone(),
                    quantity: *qty,
                    lot: None,
                    trace_codes: vec![],
                    unit_price_cents: None,
                }],
                opens_at: Timestamp(now.millis() - 3_600_000),
                closes_at: Timestamp(now.millis() + 7 * 86_400_000),
                status: OrderStatus::Open,
                version: 1,
                phone_tail: Some((*tail).into()),
            };
            pickup_orders::upsert_order(c, &order, now)?;
        }
        for (id, name, role, hash) in [
            (CLERK.0, CLERK.1, Role::Clerk, clerk_hash),
            (SUPERVISOR.0, SUPERVISOR.1, Role::Supervisor, boss_hash),
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
                now,
            )?;
        }
        for (station, code) in &codes {
            staff_store::add_pairing(c, station, code, now, Timestamp(now.millis() + 86_400_000))?;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(DemoStations { pairing })
}

/// The lines printed for a newcomer.
pub fn instructions(url: &str, demo: &DemoStations) -> String {
    let mut out = format!("station app: {url}station\n");
    for (station, code) in &demo.pairing {
        out.push_str(&format!("  pairing code for {station}: {code}\n"));
    }
    out.push_str(&format!(
        "  clerk: staff id {} PIN {} · supervisor: staff id {} PIN {}\n",
        CLERK.0, CLERK.2, SUPERVISOR.0, SUPERVISOR.2
    ));
    out.push_str("  orders to pick up (type the QR text in the code field):");
    for (id, code, _, tail) in ORDERS {
        out.push_str(&format!(" {id}:{code} (尾号 {tail})"));
    }
    out.push('\n');
    out
}

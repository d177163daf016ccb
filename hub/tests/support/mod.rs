//! What the hub's integration tests share, written once: master data, movements and the way a
//! test records one inside a store write. Each test binary uses a part of it.
#![allow(
    dead_code,
    reason = "each test binary uses a part of the shared support"
)]

use hub::store::StoreError;
use hub::store::ledger::{self, RecordError};
use hub_core::{BatchKey, Movement, MovementId, MovementKind, Sku, SkuCode, StockUnit, Timestamp};
use rusqlite::Connection;

pub mod http;

/// A SKU counted in pieces, named by its code, version 1, no GTINs: change what a test needs
/// with `Sku { gtins: …, ..sku("X") }`.
pub fn sku(code: &str) -> Sku {
    Sku {
        code: SkuCode::new(code).unwrap(),
        name: code.into(),
        unit: StockUnit::Piece,
        gtins: vec![],
        allow_negative: false,
        check_items_at_handover: false,
        version: 1,
    }
}

/// A movement with no reason text.
pub fn movement(
    id: &str,
    sku: &str,
    kind: MovementKind,
    quantity: i64,
    batch: Option<BatchKey>,
    reference: &str,
    at: Timestamp,
) -> Movement {
    Movement {
        id: MovementId::new(id).unwrap(),
        sku: SkuCode::new(sku).unwrap(),
        batch,
        kind,
        quantity,
        reason: String::new(),
        reference: reference.into(),
        at,
    }
}

/// Records `m` inside a store write: a store failure is returned, a refusal by the ledger's
/// rules fails the test (the tests' seeds are always valid).
pub fn record(c: &Connection, m: &Movement) -> Result<(), StoreError> {
    ledger::record(c, m).map(|_| ()).map_err(|e| match e {
        RecordError::Store(e) => e,
        other => panic!("{other}"),
    })
}

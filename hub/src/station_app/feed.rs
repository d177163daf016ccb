//! What each station's screens show now, and the live channel that tells them it changed.
//!
//! The device dispatcher (a scan on the station's scanner) and the app's own requests (a
//! typed code, a handover) put the station's latest result here; every open screen of that
//! station hears a change on its Server-Sent Events stream and fetches the result. In memory
//! only: after a hub restart a screen starts from "scan a code".

use hub_core::Timestamp;
use hub_core::pickup::CodeCheck;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// The station's current result.
#[derive(Debug, Clone)]
pub enum Shown {
    /// A code was checked.
    Check(CodeCheck),
    /// An order was handed over (or, `refused`, every line refused) by `staff`.
    HandedOver {
        order_id: String,
        staff: String,
        refused: bool,
    },
    /// A handover was asked for and refused; `reason` says why.
    HandoverRefused { order_id: String, reason: String },
    /// Something happened at a receiving bench (a scan, a weight, a refused step).
    Receiving(Bench),
}

/// What a receiving bench's last input did (its screen renders it in the clerk's language).
#[derive(Debug, Clone)]
pub enum Bench {
    /// A label or item scan, taken (or flagged on its line).
    Scan(crate::workflows::receiving::ScanOutcome),
    /// A stable weight recorded on the selected line.
    Weight {
        grams: i64,
        delivery_id: String,
        line_no: u32,
    },
    /// A step was refused; nothing was recorded. The words in zh-CN and English.
    Refused { zh: String, en: String },
    /// A clerk's action was applied. The words in zh-CN and English.
    Done { zh: String, en: String },
}

/// One station's current result with its number (screens compare numbers to know it changed).
#[derive(Debug, Clone)]
pub struct Current {
    pub seq: u64,
    pub at: Timestamp,
    pub shown: Shown,
}

/// A change at `station`.
#[derive(Debug, Clone)]
pub struct Changed {
    pub station: String,
    pub seq: u64,
}

/// Shared, cheap to clone.
#[derive(Debug, Clone)]
pub struct StationFeed {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    current: Mutex<(u64, HashMap<String, Current>)>,
    changes: broadcast::Sender<Changed>,
}

impl Default for StationFeed {
    fn default() -> Self {
        StationFeed::new()
    }
}

impl StationFeed {
    /// An empty feed.
    pub fn new() -> StationFeed {
        let (changes, _) = broadcast::channel(256);
        StationFeed {
            inner: Arc::new(Inner {
                current: Mutex::new((0, HashMap::new())),
                changes,
            }),
        }
    }

    /// Shows `shown` on `station`'s screens.
    pub fn show(&self, station: &str, shown: Shown, at: Timestamp) -> u64 {
        let seq = {
            let mut guard = self.inner.current.lock().unwrap_or_else(|e| e.into_inner());
            guard.0 += 1;
            let seq = guard.0;
            guard
                .1
                .insert(station.to_owned(), Current { seq, at, shown });
            seq
        };
        // No screen open is fine: the result waits in `current`.
        let _ = self.inner.changes.send(Changed {
            station: station.to_owned(),
            seq,
        });
        seq
    }

    /// Clears `station`'s screen (back to "scan a code").
    pub fn clear(&self, station: &str) {
        let seq = {
            let mut guard = self.inner.current.lock().unwrap_or_else(|e| e.into_inner());
            guard.0 += 1;
            guard.1.remove(station);
            guard.0
        };
        let _ = self.inner.changes.send(Changed {
            station: station.to_owned(),
            seq,
        });
    }

    /// `station`'s current result, if any.
    pub fn current(&self, station: &str) -> Option<Current> {
        let guard = self.inner.current.lock().unwrap_or_else(|e| e.into_inner());
        guard.1.get(station).cloned()
    }

    /// Hears every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Changed> {
        self.inner.changes.subscribe()
    }
}

//! What each station's screens show now, and the live channel that tells them it changed.
//!
//! The device dispatcher (a scan on the station's scanner) and the app's own requests (a
//! typed code, a handover) put the station's latest result here; every open screen of that
//! station hears a change on its Server-Sent Events stream and fetches the result. A feed
//! made [`StationFeed::durable`] keeps every station's result in the store
//! (`store::screens`), so after a hub restart each screen shows the same order again.

use crate::store::Store;
use crate::store::screens::{self, StoredScreen};
use hub_core::Timestamp;
use hub_core::pickup::CodeCheck;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// The station's current result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "shown", rename_all = "snake_case")]
pub enum Shown {
    /// A code was checked.
    Check(CodeCheck),
    /// An order was handed over (or, `refused`, every line refused) by `staff`.
    HandedOver {
        order_id: String,
        staff: String,
        refused: bool,
        /// A partial handover: what stays open of each line (empty: the order is collected).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        open: Vec<i64>,
    },
    /// A handover was asked for and refused; `code` says why (the workflow's refusal code;
    /// screens kept by an older hub have none), `reason` in English for the log.
    HandoverRefused {
        order_id: String,
        reason: String,
        #[serde(default)]
        code: Option<String>,
    },
    /// The order of a successful code check with the items scanned so far: each ticked
    /// code with its order line (0-based), and the last scan's result (`refusal`: why it may
    /// not leave with this order, as a code; `None`: it ticked its line).
    Items {
        order_id: String,
        ticked: Vec<(usize, String)>,
        last_code: String,
        refusal: Option<String>,
        /// Lines sold by weight weighed on the counter's scale (0-based line, grams).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        weighed: Vec<(usize, i64)>,
        /// The last input was a stable weight of this many grams (not a scan).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_weight: Option<i64>,
        /// The weight cross-check of the bagged order (错领), when the last weight was one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bag: Option<BagShown>,
        /// The last input was the customer refusing units of a line: 0-based line, units and
        /// the reason from the list.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        line_refused: Option<(usize, i64, String)>,
    },
    /// A supervisor did something at this station: `done` names it (`unlocked`, …; its words
    /// are `supervisor.done.<done>` in the catalogue), `detail` is shown beside.
    Supervisor {
        done: String,
        staff: String,
        detail: String,
    },
    /// Something happened at a receiving bench (a scan, a weight, a refused step).
    Receiving(Bench),
}

/// The weight cross-check of a bagged order as the screen shows it: expected and measured
/// grams, the tolerance, and the likely missing (`-`) or extra (`+`) units of one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BagShown {
    pub expected_g: i64,
    pub measured_g: i64,
    pub tolerance_g: i64,
    pub matches: bool,
    /// 0-based line and units: negative missing, positive extra.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub likely: Option<(usize, i64)>,
}

/// What a receiving bench's last input did (its screen renders it in the clerk's language).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
    /// Applied, and a person must look at what it found (a tablet photo the model is not sure
    /// of, or would fail): amber, not green.
    Attention { zh: String, en: String },
}

/// One station's current result with its number (screens compare numbers to know it changed).
#[derive(Debug, Clone)]
pub struct Current {
    pub seq: u64,
    pub at: Timestamp,
    pub shown: Shown,
    /// Peak mode: orders whose codes were checked while another order was on screen, in
    /// the order they were scanned; each comes on screen when the one before is handed over.
    pub queue: Vec<String>,
}

/// A station's screen as kept in the store (older hubs kept the bare `Shown`: no queue).
#[derive(Serialize, Deserialize)]
struct Kept {
    #[serde(flatten)]
    shown: Shown,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    queue: Vec<String>,
}

/// The order a screen shows for handing over, if any.
pub(crate) fn open_order(shown: &Shown) -> Option<&str> {
    match shown {
        Shown::Check(CodeCheck::Found { order_id }) | Shown::Items { order_id, .. } => {
            Some(order_id)
        }
        _ => None,
    }
}

/// A change at `station`.
#[derive(Debug, Clone)]
pub struct Changed {
    pub station: String,
    pub seq: u64,
    /// A live scale reading (grams) while the load settles, rather than a new result: the
    /// screens show it as it is and fetch nothing; it is never stored.
    pub live_weight_g: Option<i64>,
}

/// At most one live scale reading per this many milliseconds reaches a station's screens
/// (about four a second: enough to watch the load settle, without flooding the channel).
pub const LIVE_WEIGHT_GAP_MS: i64 = 250;

/// Shared, cheap to clone.
#[derive(Debug, Clone)]
pub struct StationFeed {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    current: Mutex<(u64, HashMap<String, Current>)>,
    changes: broadcast::Sender<Changed>,
    /// When each station's screens were last sent a live scale reading.
    live_sent: Mutex<HashMap<String, Timestamp>>,
    /// Where results are kept across restarts, if anywhere.
    store: Option<Store>,
}

impl Default for StationFeed {
    fn default() -> Self {
        StationFeed::new()
    }
}

impl StationFeed {
    /// An empty feed, in memory only.
    pub fn new() -> StationFeed {
        StationFeed::with(None, 0, HashMap::new())
    }

    fn with(store: Option<Store>, seq: u64, current: HashMap<String, Current>) -> StationFeed {
        let (changes, _) = broadcast::channel(256);
        StationFeed {
            inner: Arc::new(Inner {
                current: Mutex::new((seq, current)),
                changes,
                live_sent: Mutex::new(HashMap::new()),
                store,
            }),
        }
    }

    /// A feed that starts from the results kept in `store` and keeps every new one there
    /// (call at start-up). A stored result this version cannot read is skipped with a warning
    /// (that screen starts from "scan a code").
    pub async fn durable(store: Store) -> Result<StationFeed, crate::store::StoreError> {
        let stored = store.read(screens::screens).await?;
        let mut seq = 0;
        let mut current = HashMap::new();
        for screen in stored {
            seq = seq.max(screen.seq);
            match serde_json::from_str::<Kept>(&screen.shown) {
                Ok(kept) => {
                    current.insert(
                        screen.station,
                        Current {
                            seq: screen.seq,
                            at: screen.at,
                            shown: kept.shown,
                            queue: kept.queue,
                        },
                    );
                }
                Err(e) => tracing::warn!(
                    station = %screen.station,
                    error = %e,
                    "station screen kept by another version cannot be read; it starts empty"
                ),
            }
        }
        Ok(StationFeed::with(Some(store), seq, current))
    }

    /// Puts `shown` on the station's screen, with peak mode: a new order checked while
    /// another is on screen waits in the queue behind it; when the order on screen is handed
    /// over (or refused), the next in the queue comes on screen.
    fn put(&self, station: &str, shown: Shown, at: Timestamp) -> (u64, Option<StoredScreen>) {
        let (seq, kept) = {
            let mut guard = self.inner.current.lock().unwrap_or_else(|e| e.into_inner());
            let prev = guard.1.get(station);
            let mut queue = prev.map(|c| c.queue.clone()).unwrap_or_default();
            let on_screen = prev.and_then(|c| open_order(&c.shown)).map(str::to_owned);
            let shown = match (&shown, on_screen) {
                (Shown::Check(CodeCheck::Found { order_id }), Some(current))
                    if *order_id != current =>
                {
                    if !queue.contains(order_id) {
                        queue.push(order_id.clone());
                    }
                    prev.map(|c| c.shown.clone()).unwrap_or(shown)
                }
                (Shown::HandedOver { .. }, _) if !queue.is_empty() => {
                    let next = queue.remove(0);
                    Shown::Check(CodeCheck::Found { order_id: next })
                }
                _ => {
                    if let Some(order_id) = open_order(&shown) {
                        queue.retain(|q| q != order_id);
                    }
                    shown
                }
            };
            let kept = self.inner.store.as_ref().map(|_| {
                serde_json::to_string(&Kept {
                    shown: shown.clone(),
                    queue: queue.clone(),
                })
                .unwrap_or_default()
            });
            guard.0 += 1;
            let seq = guard.0;
            guard.1.insert(
                station.to_owned(),
                Current {
                    seq,
                    at,
                    shown,
                    queue,
                },
            );
            (seq, kept)
        };
        let kept = kept.map(|shown| StoredScreen {
            station: station.to_owned(),
            seq,
            at,
            shown,
        });
        // No screen open is fine: the result waits in `current`.
        let _ = self.inner.changes.send(Changed {
            station: station.to_owned(),
            seq,
            live_weight_g: None,
        });
        (seq, kept)
    }

    /// Shows `shown` on `station`'s screens; a durable feed stores it with a later commit
    /// ([`Store::write_deferred_lazily`]: only the station's latest screen, and never over a
    /// later one). Not a commit of its own: the screen rides on the first commit at least
    /// `LAZY_DEFERRED_AFTER` after it changed (on its own after `DEFERRED_AT_MOST` when
    /// nothing else is written; on closing the store). What a power cut can lose is the last screen
    /// of that moment, which is safe to redo: the screen is a view of what the store keeps
    /// durably (a handover needs the stored code check and the order's state, checked in its
    /// own transaction, and the ticked codes go with the handover request), so after the cut
    /// the station shows the result before — a handed-over order still on screen is refused
    /// as collected, a lost tick or check is scanned again.
    pub fn show(&self, station: &str, shown: Shown, at: Timestamp) -> u64 {
        let (seq, kept) = self.put(station, shown, at);
        if let (Some(store), Some(screen)) = (self.inner.store.as_ref(), kept) {
            store.write_deferred_lazily(format!("station_screen:{station}"), move |c| {
                screens::save_screen(c, &screen)
            });
        }
        seq
    }

    /// [`StationFeed::show`] for async callers (kept for their `?`; the screen is stored with
    /// the next commit, as there).
    pub async fn show_kept(
        &self,
        station: &str,
        shown: Shown,
        at: Timestamp,
    ) -> Result<u64, crate::store::StoreError> {
        Ok(self.show(station, shown, at))
    }

    /// Sends a live scale reading (while the load settles) to `station`'s screens, unless one
    /// went there less than [`LIVE_WEIGHT_GAP_MS`] before `at`; returns whether it was sent.
    /// The station's current result is unchanged and nothing is stored: the recorded stable
    /// weight stays what the screen and the decision use.
    pub fn show_live_weight(&self, station: &str, grams: i64, at: Timestamp) -> bool {
        {
            let mut sent = self
                .inner
                .live_sent
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(last) = sent.get(station)
                && (0..LIVE_WEIGHT_GAP_MS).contains(&(at.millis() - last.millis()))
            {
                return false;
            }
            sent.insert(station.to_owned(), at);
        }
        let seq = {
            let guard = self.inner.current.lock().unwrap_or_else(|e| e.into_inner());
            guard.0
        };
        // No screen open is fine: a live reading is not kept.
        let _ = self.inner.changes.send(Changed {
            station: station.to_owned(),
            seq,
            live_weight_g: Some(grams),
        });
        true
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_readings_are_throttled_per_station_and_never_change_or_keep_the_result() {
        let feed = StationFeed::new();
        let mut heard = feed.subscribe();
        feed.show(
            "dock",
            Shown::Receiving(Bench::Weight {
                grams: 1250,
                delivery_id: "D1".into(),
                line_no: 1,
            }),
            Timestamp(1_000),
        );
        let result = heard.try_recv().unwrap();
        assert_eq!(result.live_weight_g, None);
        let sent: Vec<bool> = [
            ("dock", 700, 2_000),
            ("dock", 710, 2_100),
            ("dock-2", 300, 2_100),
            ("dock", 720, 2_249),
            ("dock", 730, 2_250),
            // A clock that went back is not a reason to flood the screen either.
            ("dock", 740, 1_900),
        ]
        .into_iter()
        .map(|(station, grams, at)| feed.show_live_weight(station, grams, Timestamp(at)))
        .collect();
        assert_eq!(sent, [true, false, true, false, true, true]);
        let live: Vec<(String, Option<i64>)> = std::iter::from_fn(|| heard.try_recv().ok())
            .map(|c| (c.station, c.live_weight_g))
            .collect();
        assert_eq!(
            live,
            [
                ("dock".to_owned(), Some(700)),
                ("dock-2".to_owned(), Some(300)),
                ("dock".to_owned(), Some(730)),
                ("dock".to_owned(), Some(740)),
            ]
        );
        let current = feed.current("dock").unwrap();
        assert_eq!(
            current.seq, result.seq,
            "a live reading is not a new result"
        );
        assert!(matches!(
            current.shown,
            Shown::Receiving(Bench::Weight { grams: 1250, .. })
        ));
        assert!(feed.current("dock-2").is_none());
    }
}

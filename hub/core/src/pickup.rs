//! Pickup handover rules: is this code good for this order, right now, at this site?
//!
//! Codes are never stored in clear: central sends a per-order salt and `sha256(salt || code)`.
//! Matching hashes the typed or scanned code with each candidate's salt and compares digests
//! in constant time. Wrong attempts are counted per station by [`AttemptLimiter`]; after too
//! many the station is locked out for a while, so a 6-digit code cannot be brute-forced.
//! Pure: no clock, no storage — the caller passes the orders and the time.

use crate::domain::{SiteId, SkuCode, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where an order stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum OrderStatus {
    Open,
    OnHold,
    Cancelled,
    Refunded,
    Collected { at: Timestamp, station: String },
}

impl OrderStatus {
    /// Stable name for storage and payloads.
    pub fn name(&self) -> &'static str {
        match self {
            OrderStatus::Open => "open",
            OrderStatus::OnHold => "on_hold",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Refunded => "refunded",
            OrderStatus::Collected { .. } => "collected",
        }
    }
}

/// One line of a pickup order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PickupItem {
    pub sku: SkuCode,
    /// Quantity in the SKU's unit (grams for produce sold by weight: the ordered weight).
    pub quantity: i64,
    /// Batch reserved for this line, if central reserved one.
    #[serde(default)]
    pub lot: Option<String>,
    /// Trace codes reserved for this line, if any.
    #[serde(default)]
    pub trace_codes: Vec<String>,
    /// Unit price in cents, for the price difference of weighed items.
    #[serde(default)]
    pub unit_price_cents: Option<i64>,
}

/// A pickup order as synced from central.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PickupOrder {
    pub order_id: String,
    pub site: SiteId,
    /// Per-order salt, hex.
    pub code_salt: String,
    /// `sha256(salt bytes || code utf-8)`, hex.
    pub code_hash: String,
    pub items: Vec<PickupItem>,
    pub opens_at: Timestamp,
    pub closes_at: Timestamp,
    pub status: OrderStatus,
    pub version: i64,
}

/// Hashes a code the way central does: `sha256(salt || code)`, hex. Returns `None` for a salt
/// that is not hex.
pub fn hash_code(salt_hex: &str, code: &str) -> Option<String> {
    let salt = hex::decode(salt_hex).ok()?;
    let mut h = Sha256::new();
    h.update(&salt);
    h.update(code.as_bytes());
    Some(hex::encode(h.finalize()))
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl PickupOrder {
    /// Whether `code` is this order's code (constant-time over the digest).
    pub fn code_matches(&self, code: &str) -> bool {
        match hash_code(&self.code_salt, code.trim()) {
            Some(h) => {
                constant_time_eq(h.as_bytes(), self.code_hash.to_ascii_lowercase().as_bytes())
            }
            None => false,
        }
    }
}

/// What a presented code means. Each variant is what the clerk is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CodeCheck {
    /// Hand it over.
    Found {
        order_id: String,
    },
    WrongCode,
    /// Several open orders share this code: scan the QR (it carries the order id).
    Ambiguous {
        order_ids: Vec<String>,
    },
    Expired {
        order_id: String,
        closed_at: Timestamp,
    },
    NotYetOpen {
        order_id: String,
        opens_at: Timestamp,
    },
    AlreadyCollected {
        order_id: String,
        at: Timestamp,
        station: String,
    },
    Cancelled {
        order_id: String,
    },
    Refunded {
        order_id: String,
    },
    OnHold {
        order_id: String,
    },
    WrongSite {
        order_id: String,
        site: SiteId,
    },
    /// Too many wrong codes from this station; try again after `until`.
    LockedOut {
        until: Timestamp,
    },
}

impl CodeCheck {
    /// Whether the clerk may hand the order over.
    pub fn is_found(&self) -> bool {
        matches!(self, CodeCheck::Found { .. })
    }

    /// Whether this counts as a wrong attempt for rate limiting.
    pub fn is_wrong_code(&self) -> bool {
        matches!(self, CodeCheck::WrongCode)
    }
}

/// What the clerk presented: a QR payload `ORDER_ID:CODE`, or typed digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedCode {
    pub order_id: Option<String>,
    pub code: String,
}

impl PresentedCode {
    /// Parses a scan or typed entry. QR codes carry `ORDER:CODE`; typed entries carry the code.
    pub fn parse(input: &str) -> PresentedCode {
        let input = input.trim();
        match input.rsplit_once(':') {
            Some((order, code)) if !order.is_empty() && !code.is_empty() => PresentedCode {
                order_id: Some(order.to_owned()),
                code: code.to_owned(),
            },
            _ => PresentedCode {
                order_id: None,
                code: input.to_owned(),
            },
        }
    }
}

/// Checks a presented code against the candidate orders (all orders of the site that are not
/// archived, or just the one named by a QR code).
pub fn check_code<'a>(
    site: &SiteId,
    presented: &PresentedCode,
    candidates: impl IntoIterator<Item = &'a PickupOrder>,
    now: Timestamp,
) -> CodeCheck {
    let matching: Vec<&PickupOrder> = candidates
        .into_iter()
        .filter(|o| {
            presented
                .order_id
                .as_ref()
                .is_none_or(|id| id == &o.order_id)
        })
        .filter(|o| o.code_matches(&presented.code))
        .collect();
    // Prefer an order that can be handed over; otherwise explain the most relevant one.
    let usable: Vec<&&PickupOrder> = matching
        .iter()
        .filter(|o| {
            &o.site == site
                && o.status == OrderStatus::Open
                && o.opens_at <= now
                && now <= o.closes_at
        })
        .collect();
    match usable.as_slice() {
        [one] => {
            return CodeCheck::Found {
                order_id: one.order_id.clone(),
            };
        }
        [_, _, ..] => {
            return CodeCheck::Ambiguous {
                order_ids: usable.iter().map(|o| o.order_id.clone()).collect(),
            };
        }
        [] => {}
    }
    let Some(order) = matching.iter().max_by_key(|o| o.opens_at) else {
        return CodeCheck::WrongCode;
    };
    let order_id = order.order_id.clone();
    if &order.site != site {
        return CodeCheck::WrongSite {
            order_id,
            site: order.site.clone(),
        };
    }
    match &order.status {
        OrderStatus::Collected { at, station } => CodeCheck::AlreadyCollected {
            order_id,
            at: *at,
            station: station.clone(),
        },
        OrderStatus::Cancelled => CodeCheck::Cancelled { order_id },
        OrderStatus::Refunded => CodeCheck::Refunded { order_id },
        OrderStatus::OnHold => CodeCheck::OnHold { order_id },
        OrderStatus::Open if now < order.opens_at => CodeCheck::NotYetOpen {
            order_id,
            opens_at: order.opens_at,
        },
        OrderStatus::Open => CodeCheck::Expired {
            order_id,
            closed_at: order.closes_at,
        },
    }
}

/// Limits on wrong attempts per station.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptPolicy {
    /// Wrong codes allowed within `window_ms` before a lockout.
    pub max_failures: u32,
    pub window_ms: i64,
    /// How long a lockout lasts.
    pub lockout_ms: i64,
}

impl Default for AttemptPolicy {
    fn default() -> Self {
        AttemptPolicy {
            max_failures: 5,
            window_ms: 10 * 60_000,
            lockout_ms: 15 * 60_000,
        }
    }
}

/// Wrong-attempt state of one station; serialisable so lockouts survive restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptLimiter {
    /// Times of recent wrong attempts, oldest first.
    pub failures: Vec<Timestamp>,
    pub locked_until: Option<Timestamp>,
}

/// What recording a wrong attempt led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Still allowed; `remaining` more wrong codes before a lockout.
    Counted { remaining: u32 },
    /// This attempt started a lockout (raise an alert).
    LockoutStarted { until: Timestamp },
}

impl AttemptLimiter {
    /// `Some(until)` while the station is locked out.
    pub fn locked(&self, now: Timestamp) -> Option<Timestamp> {
        self.locked_until.filter(|until| now < *until)
    }

    /// Records a wrong code.
    pub fn record_failure(&mut self, policy: &AttemptPolicy, now: Timestamp) -> AttemptOutcome {
        self.failures
            .retain(|t| now.millis() - t.millis() < policy.window_ms);
        self.failures.push(now);
        if self.failures.len() as u32 >= policy.max_failures {
            let until = now.plus_millis(policy.lockout_ms);
            self.locked_until = Some(until);
            self.failures.clear();
            AttemptOutcome::LockoutStarted { until }
        } else {
            AttemptOutcome::Counted {
                remaining: policy.max_failures - self.failures.len() as u32,
            }
        }
    }

    /// A right code clears the count (a lockout still runs its course).
    pub fn record_success(&mut self) {
        self.failures.clear();
    }
}

/// Why a scanned item may not leave with this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum ItemRefusal {
    /// The code is not for any SKU on this order.
    NotOnOrder {
        sku: Option<SkuCode>,
    },
    /// The code belongs to another batch than the one reserved.
    WrongBatch {
        expected: String,
        found: String,
    },
    /// Held for review at receipt: must not be handed over.
    Quarantined,
    AlreadyHandedOver {
        order_id: String,
    },
    /// The hub has never seen this trace code.
    Unknown,
}

/// What the hub knows about a scanned trace code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceFacts {
    pub sku: SkuCode,
    pub lot: String,
    pub quarantined: bool,
    /// The order it already left with, if any.
    pub handed_over_with: Option<String>,
}

/// Checks one scanned item against the order (item check at handover).
pub fn check_item(order: &PickupOrder, facts: Option<&TraceFacts>) -> Result<usize, ItemRefusal> {
    let facts = facts.ok_or(ItemRefusal::Unknown)?;
    if let Some(order_id) = &facts.handed_over_with {
        return Err(ItemRefusal::AlreadyHandedOver {
            order_id: order_id.clone(),
        });
    }
    if facts.quarantined {
        return Err(ItemRefusal::Quarantined);
    }
    let lines: Vec<(usize, &PickupItem)> = order
        .items
        .iter()
        .enumerate()
        .filter(|(_, i)| i.sku == facts.sku)
        .collect();
    if lines.is_empty() {
        return Err(ItemRefusal::NotOnOrder {
            sku: Some(facts.sku.clone()),
        });
    }
    if let Some((index, _)) = lines
        .iter()
        .find(|(_, i)| i.lot.as_deref().is_none_or(|l| l == facts.lot))
    {
        return Ok(*index);
    }
    let expected = lines[0].1.lot.clone().unwrap_or_default();
    Err(ItemRefusal::WrongBatch {
        expected,
        found: facts.lot.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(id: &str) -> SiteId {
        SiteId::new(id).unwrap()
    }

    fn order(id: &str, code: &str, status: OrderStatus) -> PickupOrder {
        let salt = hex::encode(id.as_bytes());
        PickupOrder {
            order_id: id.into(),
            site: site("s1"),
            code_hash: hash_code(&salt, code).unwrap(),
            code_salt: salt,
            items: vec![PickupItem {
                sku: SkuCode::new("MILK").unwrap(),
                quantity: 2,
                lot: Some("L1".into()),
                trace_codes: vec![],
                unit_price_cents: None,
            }],
            opens_at: Timestamp(1_000),
            closes_at: Timestamp(10_000),
            status,
            version: 1,
        }
    }

    fn check(orders: &[PickupOrder], input: &str, now: i64) -> CodeCheck {
        check_code(
            &site("s1"),
            &PresentedCode::parse(input),
            orders,
            Timestamp(now),
        )
    }

    #[test]
    fn every_outcome_of_a_code_check() {
        let collected = OrderStatus::Collected {
            at: Timestamp(5_000),
            station: "desk-2".into(),
        };
        let mut other_site = order("P9", "999999", OrderStatus::Open);
        other_site.site = site("s2");
        let orders = vec![
            order("P1", "123456", OrderStatus::Open),
            order("P2", "222222", collected.clone()),
            order("P3", "333333", OrderStatus::Cancelled),
            order("P4", "444444", OrderStatus::Refunded),
            order("P5", "555555", OrderStatus::OnHold),
            other_site,
        ];
        let p = |s: &str| s.to_owned();
        assert_eq!(
            check(&orders, "123456", 2_000),
            CodeCheck::Found { order_id: p("P1") }
        );
        assert_eq!(
            check(&orders, "P1:123456", 2_000),
            CodeCheck::Found { order_id: p("P1") }
        );
        assert_eq!(
            check(&orders, "P2:123456", 2_000),
            CodeCheck::WrongCode,
            "QR names another order"
        );
        assert_eq!(check(&orders, "123457", 2_000), CodeCheck::WrongCode);
        assert_eq!(
            check(&orders, "123456", 500),
            CodeCheck::NotYetOpen {
                order_id: p("P1"),
                opens_at: Timestamp(1_000)
            }
        );
        assert_eq!(
            check(&orders, "123456", 20_000),
            CodeCheck::Expired {
                order_id: p("P1"),
                closed_at: Timestamp(10_000)
            }
        );
        assert_eq!(
            check(&orders, "222222", 2_000),
            CodeCheck::AlreadyCollected {
                order_id: p("P2"),
                at: Timestamp(5_000),
                station: p("desk-2")
            }
        );
        assert_eq!(
            check(&orders, "333333", 2_000),
            CodeCheck::Cancelled { order_id: p("P3") }
        );
        assert_eq!(
            check(&orders, "444444", 2_000),
            CodeCheck::Refunded { order_id: p("P4") }
        );
        assert_eq!(
            check(&orders, "555555", 2_000),
            CodeCheck::OnHold { order_id: p("P5") }
        );
        assert_eq!(
            check(&orders, "999999", 2_000),
            CodeCheck::WrongSite {
                order_id: p("P9"),
                site: site("s2")
            }
        );
    }

    #[test]
    fn two_open_orders_with_one_code_ask_for_the_qr() {
        let orders = vec![
            order("P1", "111111", OrderStatus::Open),
            order("P2", "111111", OrderStatus::Open),
        ];
        assert!(matches!(
            check(&orders, "111111", 2_000),
            CodeCheck::Ambiguous { .. }
        ));
        assert_eq!(
            check(&orders, "P2:111111", 2_000),
            CodeCheck::Found {
                order_id: "P2".into()
            }
        );
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_eq!(
            hash_code("zz", "1"),
            None,
            "a salt that is not hex matches nothing"
        );
    }

    #[test]
    fn wrong_codes_lock_a_station_out_and_the_lockout_ends() {
        let policy = AttemptPolicy {
            max_failures: 3,
            window_ms: 1_000,
            lockout_ms: 5_000,
        };
        let mut l = AttemptLimiter::default();
        assert_eq!(
            l.record_failure(&policy, Timestamp(0)),
            AttemptOutcome::Counted { remaining: 2 }
        );
        // Old failures age out of the window.
        assert_eq!(
            l.record_failure(&policy, Timestamp(2_000)),
            AttemptOutcome::Counted { remaining: 2 }
        );
        assert_eq!(
            l.record_failure(&policy, Timestamp(2_100)),
            AttemptOutcome::Counted { remaining: 1 }
        );
        assert_eq!(
            l.record_failure(&policy, Timestamp(2_200)),
            AttemptOutcome::LockoutStarted {
                until: Timestamp(7_200)
            }
        );
        assert_eq!(l.locked(Timestamp(7_199)), Some(Timestamp(7_200)));
        assert_eq!(l.locked(Timestamp(7_200)), None);
    }

    #[test]
    fn item_checks_name_their_reason() {
        let o = order("P1", "1", OrderStatus::Open);
        let facts = |sku: &str, lot: &str| TraceFacts {
            sku: SkuCode::new(sku).unwrap(),
            lot: lot.into(),
            quarantined: false,
            handed_over_with: None,
        };
        assert_eq!(check_item(&o, Some(&facts("MILK", "L1"))), Ok(0));
        assert_eq!(check_item(&o, None), Err(ItemRefusal::Unknown));
        assert!(matches!(
            check_item(&o, Some(&facts("EGGS", "L1"))),
            Err(ItemRefusal::NotOnOrder { .. })
        ));
        assert!(matches!(
            check_item(&o, Some(&facts("MILK", "L9"))),
            Err(ItemRefusal::WrongBatch { .. })
        ));
        let mut q = facts("MILK", "L1");
        q.quarantined = true;
        assert_eq!(check_item(&o, Some(&q)), Err(ItemRefusal::Quarantined));
        let mut gone = facts("MILK", "L1");
        gone.handed_over_with = Some("P0".into());
        assert_eq!(
            check_item(&o, Some(&gone)),
            Err(ItemRefusal::AlreadyHandedOver {
                order_id: "P0".into()
            })
        );
    }
}

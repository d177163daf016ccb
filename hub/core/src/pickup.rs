//! Pickup handover rules: is this code good for this order, right now, at this site?
//!
//! Codes are never stored in clear: central sends a per-order salt and `sha256(salt || code)`.
//! Matching hashes the typed or scanned code with each candidate's salt and compares digests
//! in constant time. A check targets one order — the QR `ORDER:CODE`, or the typed code with
//! the order number or the customer's phone tail (尾号) — so a guess is compared with one order
//! (or the few sharing a phone tail), never with every open order. Every comparison that fails
//! is one *guess*; guesses are counted per station and for the whole site by
//! [`AttemptLimiter`], so a 6-digit code cannot be brute-forced (see [`GuessBudget`] for the
//! arithmetic). Pure: no clock, no storage — the caller passes the orders and the time.

use crate::domain::{SiteId, SkuCode, Timestamp};
use crate::event::RefusedTo;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where an order stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum OrderStatus {
    Open,
    /// Part of the order left with the customer; the rest of its lines is still open (a later
    /// code check and handover collects it).
    PartiallyCollected,
    OnHold,
    Cancelled,
    Refunded,
    Collected {
        at: Timestamp,
        station: String,
    },
}

impl OrderStatus {
    /// Open, or partly collected with lines still open: what a code check may find and a
    /// handover may take (within the order's window).
    pub fn is_collectable(&self) -> bool {
        matches!(self, OrderStatus::Open | OrderStatus::PartiallyCollected)
    }

    /// Stable name for storage and payloads.
    pub fn name(&self) -> &'static str {
        match self {
            OrderStatus::Open => "open",
            OrderStatus::PartiallyCollected => "partially_collected",
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
    /// The last digits of the customer's phone number (尾号), as central sends them masked;
    /// lets a clerk target the order without its number.
    #[serde(default)]
    pub phone_tail: Option<String>,
}

/// Longest pickup code input read (a QR `ORDER:CODE` included); longer input is refused
/// before anything is hashed.
pub const MAX_PRESENTED_CHARS: usize = 64;

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Too many wrong codes at this site within the hour (every station is paused); try again
    /// after `until`, or a supervisor lifts it.
    SiteLockedOut {
        until: Timestamp,
    },
    /// The input cannot be a pickup code; nothing was compared.
    Unreadable {
        problem: CodeProblem,
    },
}

/// Why an input is not checked at all (it does not count as a guess).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum CodeProblem {
    Empty,
    /// Longer than [`MAX_PRESENTED_CHARS`].
    TooLong {
        max: usize,
    },
    /// A typed code alone: scan the QR, or type the order number or the phone tail with it.
    NeedsOrderOrPhoneTail,
    /// The phone tail is not 4 digits.
    BadPhoneTail,
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

/// What the clerk presented: a QR payload `ORDER_ID:CODE`, or a typed code with the order
/// number or the customer's phone tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedCode {
    pub order_id: Option<String>,
    pub phone_tail: Option<String>,
    pub code: String,
}

/// Which orders a presented code is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    Order(&'a str),
    PhoneTail(&'a str),
    /// Every open order: only where the site allows code-only lookups.
    AnyOpenOrder,
}

impl PresentedCode {
    /// Parses a scan or typed entry. QR codes carry `ORDER:CODE`; typed entries carry the code.
    pub fn parse(input: &str) -> PresentedCode {
        let input = input.trim();
        match input.rsplit_once(':') {
            Some((order, code)) if !order.is_empty() && !code.is_empty() => PresentedCode {
                order_id: Some(order.to_owned()),
                phone_tail: None,
                code: code.to_owned(),
            },
            _ => PresentedCode {
                order_id: None,
                phone_tail: None,
                code: input.to_owned(),
            },
        }
    }

    /// A code typed on the keypad, with the order number or the phone tail the clerk typed
    /// beside it (a QR payload in `code` still carries its own order).
    pub fn typed(code: &str, order_id: Option<&str>, phone_tail: Option<&str>) -> PresentedCode {
        let mut presented = PresentedCode::parse(code);
        let given = |v: Option<&str>| {
            v.map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        if presented.order_id.is_none() {
            presented.order_id = given(order_id);
        }
        presented.phone_tail = given(phone_tail);
        presented
    }

    /// Checks the input's shape and says which orders it is compared with. `allow_code_only`
    /// is the site's `pickup.allow_code_only`.
    pub fn target(&self, raw_len: usize, allow_code_only: bool) -> Result<Target<'_>, CodeProblem> {
        if raw_len > MAX_PRESENTED_CHARS {
            return Err(CodeProblem::TooLong {
                max: MAX_PRESENTED_CHARS,
            });
        }
        if self.code.trim().is_empty() {
            return Err(CodeProblem::Empty);
        }
        if let Some(order) = &self.order_id {
            return Ok(Target::Order(order));
        }
        if let Some(tail) = &self.phone_tail {
            if tail.len() != 4 || !tail.bytes().all(|b| b.is_ascii_digit()) {
                return Err(CodeProblem::BadPhoneTail);
            }
            return Ok(Target::PhoneTail(tail));
        }
        if allow_code_only {
            Ok(Target::AnyOpenOrder)
        } else {
            Err(CodeProblem::NeedsOrderOrPhoneTail)
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
                && presented
                    .phone_tail
                    .as_ref()
                    .is_none_or(|tail| o.phone_tail.as_ref() == Some(tail))
        })
        .filter(|o| o.code_matches(&presented.code))
        .collect();
    // Prefer an order that can be handed over; otherwise explain the most relevant one.
    let usable: Vec<&&PickupOrder> = matching
        .iter()
        .filter(|o| {
            &o.site == site && o.status.is_collectable() && o.opens_at <= now && now <= o.closes_at
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
    handover_blocker(order, site, now).unwrap_or_else(|| CodeCheck::Found {
        order_id: order.order_id.clone(),
    })
}

/// Why `order` cannot be handed over at `site` at `now`, as the clerk hears it; `None` when it
/// can (open, of this site, within its pickup window). The one home of the order-state rule:
/// code checks and handovers both ask here.
pub fn handover_blocker(order: &PickupOrder, site: &SiteId, now: Timestamp) -> Option<CodeCheck> {
    let order_id = order.order_id.clone();
    if &order.site != site {
        return Some(CodeCheck::WrongSite {
            order_id,
            site: order.site.clone(),
        });
    }
    match &order.status {
        OrderStatus::Collected { at, station } => Some(CodeCheck::AlreadyCollected {
            order_id,
            at: *at,
            station: station.clone(),
        }),
        OrderStatus::Cancelled => Some(CodeCheck::Cancelled { order_id }),
        OrderStatus::Refunded => Some(CodeCheck::Refunded { order_id }),
        OrderStatus::OnHold => Some(CodeCheck::OnHold { order_id }),
        OrderStatus::Open | OrderStatus::PartiallyCollected if now < order.opens_at => {
            Some(CodeCheck::NotYetOpen {
                order_id,
                opens_at: order.opens_at,
            })
        }
        OrderStatus::Open | OrderStatus::PartiallyCollected if now > order.closes_at => {
            Some(CodeCheck::Expired {
                order_id,
                closed_at: order.closes_at,
            })
        }
        OrderStatus::Open | OrderStatus::PartiallyCollected => None,
    }
}

/// A line the customer refused (wholly or partly) at handover: `line_no` from 1, where the
/// goods go, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRefusal {
    pub line_no: usize,
    pub quantity: i64,
    pub to: RefusedTo,
    pub reason: String,
}

/// The weighed grams of a by-weight line at handover (`line_no` from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineWeighing {
    pub line_no: usize,
    pub grams: i64,
}

/// A quantity of an order line to hand over now, in a partial handover (`line_no` from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineQuantity {
    pub line_no: usize,
    pub quantity: i64,
}

/// What the clerk reports at handover, beyond "everything as ordered", and what the hub knows
/// about the order's lines.
#[derive(Debug, Clone, Copy)]
pub struct HandoverReport<'a> {
    pub refusals: &'a [LineRefusal],
    pub weighings: &'a [LineWeighing],
    /// Trace codes scanned per line (index from 0), each already accepted by [`check_item`].
    pub scanned_per_line: &'a [i64],
    /// Per line: whether its SKU must have every item scanned at handover.
    pub items_checked: &'a [bool],
    /// A partial handover: what leaves now of each line (lines not named: nothing, unless
    /// weighed; a weighed line always leaves whole). `None`: everything open leaves.
    pub partial: Option<&'a [LineQuantity]>,
}

/// What one order line does at handover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedLine {
    /// Index of the line in the order, from 0.
    pub index: usize,
    /// Units (grams for a weighed line) that leave with the customer.
    pub handed_over: i64,
    /// Units refused by the customer.
    pub refused: i64,
    pub refused_to: Option<RefusedTo>,
    pub weighed_g: Option<i64>,
    /// By-weight lines with a price per kilogram: what the weighed quantity changes.
    pub price_difference_cents: Option<i64>,
    /// Refused units written off, each with its reason.
    pub losses: Vec<(i64, String)>,
    /// Units of the (open) line this handover settles: handed over plus refused, or the whole
    /// line once weighed. Less than the line's open quantity in a partial handover.
    pub settled: i64,
}

/// Why the clerk's report cannot be applied to the order. Nothing is handed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandoverRefusal {
    /// A refusal or weighing names a line the order does not have (`line` from 1).
    NoSuchLine { line: usize, lines: usize },
    /// More refused on a line than was ordered (or a negative refusal).
    TooMuchRefused {
        line: usize,
        refused: i64,
        ordered: i64,
    },
    /// A partial handover asks for more of a line than is open (less what was refused), or a
    /// negative quantity.
    TooMuchHandedOver { line: usize, asked: i64, open: i64 },
    /// A line whose SKU checks items at handover has fewer scanned codes than units leaving.
    ItemsNotScanned {
        line: usize,
        sku: SkuCode,
        needed: i64,
        scanned: i64,
    },
}

/// Plans every line of a handover from the clerk's report: what leaves, what is refused and
/// where it goes, the weighed price difference. The order must already have passed
/// [`handover_blocker`]; stock (which lots, expired stock) is the store's to find.
pub fn plan_handover_lines(
    order: &PickupOrder,
    report: &HandoverReport<'_>,
) -> Result<Vec<PlannedLine>, HandoverRefusal> {
    let lines = order.items.len();
    for line in report
        .refusals
        .iter()
        .map(|r| r.line_no)
        .chain(report.weighings.iter().map(|w| w.line_no))
        .chain(report.partial.unwrap_or_default().iter().map(|p| p.line_no))
    {
        if line == 0 || line > lines {
            return Err(HandoverRefusal::NoSuchLine { line, lines });
        }
    }
    let mut planned = Vec::with_capacity(lines);
    for (index, item) in order.items.iter().enumerate() {
        let line_no = index + 1;
        let of_line = || report.refusals.iter().filter(move |r| r.line_no == line_no);
        let refused: i64 = of_line().map(|r| r.quantity).sum();
        if refused > item.quantity || refused < 0 {
            return Err(HandoverRefusal::TooMuchRefused {
                line: line_no,
                refused,
                ordered: item.quantity,
            });
        }
        let weighed_g = report
            .weighings
            .iter()
            .find(|w| w.line_no == line_no)
            .map(|w| w.grams);
        let handed_over = match (weighed_g, report.partial) {
            (Some(grams), _) => grams.max(0),
            (None, None) => item.quantity - refused,
            (None, Some(partial)) => {
                let asked: i64 = partial
                    .iter()
                    .filter(|p| p.line_no == line_no)
                    .map(|p| p.quantity)
                    .sum();
                let open = item.quantity - refused;
                if asked < 0 || asked > open {
                    return Err(HandoverRefusal::TooMuchHandedOver {
                        line: line_no,
                        asked,
                        open,
                    });
                }
                asked
            }
        };
        let settled = match weighed_g {
            Some(_) => item.quantity,
            None => handed_over + refused,
        };
        let scanned = report.scanned_per_line.get(index).copied().unwrap_or(0);
        if report.items_checked.get(index).copied().unwrap_or(false) && scanned < handed_over {
            return Err(HandoverRefusal::ItemsNotScanned {
                line: line_no,
                sku: item.sku.clone(),
                needed: handed_over,
                scanned,
            });
        }
        let losses = of_line()
            .filter(|r| r.to == RefusedTo::Loss)
            .map(|r| {
                let reason = match r.reason.trim() {
                    "" => "refused by customer",
                    given => given,
                };
                (r.quantity, reason.to_owned())
            })
            .collect();
        planned.push(PlannedLine {
            index,
            handed_over,
            refused,
            refused_to: of_line().next().map(|r| r.to),
            weighed_g,
            // By-weight prices are per kilogram; ordered and weighed quantities are grams.
            price_difference_cents: match (weighed_g, item.unit_price_cents) {
                (Some(grams), Some(per_kg)) => {
                    Some(weighed_price_difference(item.quantity, grams, per_kg))
                }
                _ => None,
            },
            losses,
            settled,
        });
    }
    Ok(planned)
}

/// Limits on wrong guesses: per station, and for the whole site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptPolicy {
    /// Wrong guesses a station may make within `window_ms` before it is locked out.
    pub max_failures: u32,
    pub window_ms: i64,
    /// How long a lockout lasts.
    pub lockout_ms: i64,
    /// The site's budget: wrong guesses, all stations together, within any hour. Reaching it
    /// pauses every station's code checks until the hour has room again.
    pub site_max_per_hour: u32,
    /// Wrong guesses within an hour, site-wide, that raise an alert (a sustained rate that may
    /// be someone guessing below the lockouts).
    pub site_alert_per_hour: u32,
}

impl Default for AttemptPolicy {
    fn default() -> Self {
        AttemptPolicy {
            max_failures: 5,
            window_ms: 10 * 60_000,
            lockout_ms: 15 * 60_000,
            site_max_per_hour: 50,
            site_alert_per_hour: 20,
        }
    }
}

/// A site's pickup rules (`[pickup]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PickupRules {
    pub attempts: AttemptPolicy,
    /// Whether a typed code alone is looked up among every open order.
    pub allow_code_only: bool,
    /// A handover needs a successful check of that order at that station within this.
    pub check_valid_ms: i64,
    /// A supervisor may undo a handover for this long after it.
    pub undo_window_ms: i64,
    /// The weight cross-check of a bagged order: how far (grams, either way) the scale may be
    /// from the order's expected weight (the counter's `check_bag`).
    #[serde(default = "default_bag_tolerance_g")]
    pub bag_tolerance_g: i64,
}

fn default_bag_tolerance_g() -> i64 {
    DEFAULT_BAG_TOLERANCE_G
}

/// `pickup.bag_tolerance_g` when the config does not say.
pub const DEFAULT_BAG_TOLERANCE_G: i64 = 30;

impl Default for PickupRules {
    fn default() -> Self {
        PickupRules {
            attempts: AttemptPolicy::default(),
            allow_code_only: false,
            check_valid_ms: 10 * 60_000,
            undo_window_ms: 15 * 60_000,
            bag_tolerance_g: DEFAULT_BAG_TOLERANCE_G,
        }
    }
}

/// The reasons a supervisor picks from when undoing a handover.
pub const UNDO_REASONS: [&str; 3] = ["wrong_customer", "customer_returned", "clerk_mistake"];

/// The reasons a clerk picks from when a customer refuses goods at the counter. The one
/// rule of where refused goods go: damaged goods are written off (loss),
/// everything else goes back to stock. The station app, `hub pickup handover --refuse
/// LINE:QTY:REASON` and MQTT station commands (a refusal naming a listed reason without `to`)
/// all take the destination from [`refusal_destination`].
pub const REFUSAL_REASONS: [&str; 4] = ["customer_declined", "damaged", "wrong_items", "identity"];

/// The reasons that fit one line of an order (an identity refusal is of the whole order).
pub const LINE_REFUSAL_REASONS: [&str; 3] = ["customer_declined", "damaged", "wrong_items"];

/// Where goods refused for `reason` go; `None` when `reason` is not on [`REFUSAL_REASONS`].
pub fn refusal_destination(reason: &str) -> Option<RefusedTo> {
    match reason {
        "damaged" => Some(RefusedTo::Loss),
        other if REFUSAL_REASONS.contains(&other) => Some(RefusedTo::Stock),
        _ => None,
    }
}

/// Why a handover cannot be undone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum UndoRefusal {
    /// The order has no handover to undo (never handed over, or undone already).
    NotHandedOver,
    /// Handed over at `at`; an undo was allowed for `window_ms` after it.
    TooLate { at: Timestamp, window_ms: i64 },
}

/// Whether the handover made at `handed_over_at` (`None`: there is none) may be undone at
/// `now` within `window_ms`. The one undo rule: the station app and `hub pickup undo` ask it.
pub fn undo_blocker(
    handed_over_at: Option<Timestamp>,
    window_ms: i64,
    now: Timestamp,
) -> Option<UndoRefusal> {
    let at = match handed_over_at {
        None => return Some(UndoRefusal::NotHandedOver),
        Some(at) => at,
    };
    // A handover "after" now (a clock set back) is inside the window: it just happened.
    (now.0 - at.0 > window_ms).then_some(UndoRefusal::TooLate { at, window_ms })
}

/// The window of the site-wide budget.
pub const SITE_WINDOW_MS: i64 = 3_600_000;

/// The arithmetic behind the site-wide budget: how long an attacker needs, at the most the
/// budget allows, to expect to guess one order's code.
///
/// A guess is one comparison with one order's code. Targeted checks compare with one order
/// (or the few sharing a phone tail, each counted), so whatever the number of open orders, at
/// most `site_max_per_hour` comparisons a wrong guess can make per hour. Against one order a
/// guesser who never repeats a code needs `(space + 1) / 2` comparisons on average; spreading
/// guesses over many orders needs about `space` (each comparison succeeds with `1 / space`),
/// so the focused attack is the worst case.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuessBudget {
    /// Number of possible codes (10^6 for 6 digits).
    pub code_space: f64,
    pub guesses_per_hour: f64,
}

impl GuessBudget {
    /// The budget for `digits`-digit codes under `policy`.
    pub fn for_policy(digits: u32, policy: &AttemptPolicy) -> GuessBudget {
        GuessBudget {
            code_space: 10f64.powi(digits as i32),
            guesses_per_hour: f64::from(policy.site_max_per_hour.max(1)),
        }
    }

    /// Expected hours until one order's code is guessed, at the full budget.
    pub fn expected_hours_to_guess(&self) -> f64 {
        (self.code_space + 1.0) / 2.0 / self.guesses_per_hour
    }

    /// The same in years of 365.25 days.
    pub fn expected_years_to_guess(&self) -> f64 {
        self.expected_hours_to_guess() / (365.25 * 24.0)
    }
}

/// Wrong-guess state of one station (or of the site); serialisable so lockouts survive
/// restarts. A right code does not clear it: the count only ages out of its window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptLimiter {
    /// Times of recent wrong guesses, oldest first (one entry per guess).
    pub failures: Vec<Timestamp>,
    pub locked_until: Option<Timestamp>,
}

/// What recording wrong guesses led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Still allowed; `remaining` more wrong guesses before a lockout.
    Counted { remaining: u32 },
    /// These guesses started a lockout (raise an alert).
    LockoutStarted { until: Timestamp },
}

impl AttemptLimiter {
    /// `Some(until)` while locked out.
    pub fn locked(&self, now: Timestamp) -> Option<Timestamp> {
        self.locked_until.filter(|until| now < *until)
    }

    /// Wrong guesses within the last `window_ms`.
    pub fn recent(&self, window_ms: i64, now: Timestamp) -> usize {
        self.failures
            .iter()
            .filter(|t| now.millis() - t.millis() < window_ms)
            .count()
    }

    /// Records `guesses` wrong guesses (one per order the code was compared with) against a
    /// limit of `max` within `window_ms`; reaching it locks out for `lockout_ms`.
    pub fn record_failures(
        &mut self,
        guesses: u32,
        max: u32,
        window_ms: i64,
        lockout_ms: i64,
        now: Timestamp,
    ) -> AttemptOutcome {
        self.failures
            .retain(|t| now.millis() - t.millis() < window_ms);
        // A code-only lookup against thousands of orders counts them all, but the state keeps
        // no more entries than the limit needs.
        let keep = max.max(1) as usize;
        for _ in 0..guesses.min(max.max(1)) {
            self.failures.push(now);
        }
        if self.failures.len() > keep {
            let excess = self.failures.len() - keep;
            self.failures.drain(..excess);
        }
        if guesses >= max || self.failures.len() as u32 >= max {
            let until = now.plus_millis(lockout_ms);
            self.locked_until = Some(until);
            AttemptOutcome::LockoutStarted { until }
        } else {
            AttemptOutcome::Counted {
                remaining: max - self.failures.len() as u32,
            }
        }
    }

    /// A station's wrong guesses under `policy`; the station's count restarts after a lockout.
    pub fn record_failure(
        &mut self,
        policy: &AttemptPolicy,
        guesses: u32,
        now: Timestamp,
    ) -> AttemptOutcome {
        let outcome = self.record_failures(
            guesses,
            policy.max_failures,
            policy.window_ms,
            policy.lockout_ms,
            now,
        );
        if matches!(outcome, AttemptOutcome::LockoutStarted { .. }) {
            self.failures.clear();
        }
        outcome
    }

    /// The site's wrong guesses under `policy`: locked until the oldest guess of the hour ages
    /// out (the budget has room again). The site's history is kept, so a rate just under the
    /// budget stays visible to [`AttemptLimiter::recent`].
    pub fn record_site_failure(
        &mut self,
        policy: &AttemptPolicy,
        guesses: u32,
        now: Timestamp,
    ) -> AttemptOutcome {
        let max = policy.site_max_per_hour.max(1);
        let outcome = self.record_failures(guesses, max, SITE_WINDOW_MS, 0, now);
        if let AttemptOutcome::LockoutStarted { .. } = outcome {
            let oldest = self.failures.first().copied().unwrap_or(now);
            let until = oldest.plus_millis(SITE_WINDOW_MS);
            self.locked_until = Some(until);
            return AttemptOutcome::LockoutStarted { until };
        }
        outcome
    }

    /// A supervisor lifted the lockout: the count starts over.
    pub fn lift(&mut self) {
        self.failures.clear();
        self.locked_until = None;
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

/// What weighing a by-weight line changes in its price: (weighed − ordered) grams at
/// `per_kg_cents` a kilogram, in cents (truncated toward zero, as the handover records it).
pub fn weighed_price_difference(ordered_g: i64, weighed_g: i64, per_kg_cents: i64) -> i64 {
    (weighed_g - ordered_g) * per_kg_cents / 1000
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
            phone_tail: None,
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

    fn policy(max: u32, window_ms: i64, lockout_ms: i64) -> AttemptPolicy {
        AttemptPolicy {
            max_failures: max,
            window_ms,
            lockout_ms,
            ..AttemptPolicy::default()
        }
    }

    #[test]
    fn wrong_codes_lock_a_station_out_and_the_lockout_ends() {
        let policy = policy(3, 1_000, 5_000);
        let mut l = AttemptLimiter::default();
        assert_eq!(
            l.record_failure(&policy, 1, Timestamp(0)),
            AttemptOutcome::Counted { remaining: 2 }
        );
        // Old failures age out of the window.
        assert_eq!(
            l.record_failure(&policy, 1, Timestamp(2_000)),
            AttemptOutcome::Counted { remaining: 2 }
        );
        assert_eq!(
            l.record_failure(&policy, 1, Timestamp(2_100)),
            AttemptOutcome::Counted { remaining: 1 }
        );
        assert_eq!(
            l.record_failure(&policy, 1, Timestamp(2_200)),
            AttemptOutcome::LockoutStarted {
                until: Timestamp(7_200)
            }
        );
        assert_eq!(l.locked(Timestamp(7_199)), Some(Timestamp(7_200)));
        assert_eq!(l.locked(Timestamp(7_200)), None);
    }

    #[test]
    fn a_right_code_between_wrong_ones_does_not_reset_the_count() {
        // 4 wrong + 1 own valid code, repeated: the fifth wrong guess within the window locks.
        let policy = policy(5, 600_000, 900_000);
        let mut l = AttemptLimiter::default();
        let mut locked_at = None;
        for round in 0..20i64 {
            for i in 0..4 {
                let now = Timestamp(round * 10_000 + i * 1_000);
                if let AttemptOutcome::LockoutStarted { .. } = l.record_failure(&policy, 1, now) {
                    locked_at.get_or_insert(round * 4 + i + 1);
                }
            }
            // (the valid code is not recorded: nothing resets the count)
        }
        assert_eq!(locked_at, Some(5), "the fifth wrong code locks the station");
    }

    #[test]
    fn a_guess_against_several_orders_counts_each_comparison() {
        let policy = policy(5, 600_000, 900_000);
        let mut l = AttemptLimiter::default();
        assert!(matches!(
            l.record_failure(&policy, 3, Timestamp(0)),
            AttemptOutcome::Counted { remaining: 2 }
        ));
        assert!(matches!(
            l.record_failure(&policy, 2, Timestamp(1)),
            AttemptOutcome::LockoutStarted { .. }
        ));
        // A code-only lookup against 1,000 orders is 1,000 guesses: locked at once, and the
        // state stays small.
        let mut l = AttemptLimiter::default();
        assert!(matches!(
            l.record_failure(&policy, 1_000, Timestamp(0)),
            AttemptOutcome::LockoutStarted { .. }
        ));
        assert!(l.failures.len() <= 5);
    }

    #[test]
    fn the_site_budget_caps_guesses_per_hour_across_stations() {
        let policy = AttemptPolicy::default();
        let mut site = AttemptLimiter::default();
        // 4 wrong codes every 10 minutes at each of 200 invented... declared stations: the
        // site counts them all. Guess every 30 s until the budget locks.
        let mut t = 0;
        let mut guesses = 0;
        loop {
            guesses += 1;
            if let AttemptOutcome::LockoutStarted { until } =
                site.record_site_failure(&policy, 1, Timestamp(t))
            {
                assert_eq!(guesses, policy.site_max_per_hour);
                // Locked until the oldest guess of the hour ages out.
                assert_eq!(until, Timestamp(SITE_WINDOW_MS));
                break;
            }
            t += 30_000;
        }
        assert!(site.locked(Timestamp(t + 1)).is_some());
        assert_eq!(site.locked(Timestamp(SITE_WINDOW_MS)), None);
        // A sustained rate just under the budget stays visible for the alert.
        assert_eq!(site.recent(SITE_WINDOW_MS, Timestamp(t)), 50);
    }

    #[test]
    fn the_default_budget_makes_guessing_a_code_take_over_a_year() {
        let policy = AttemptPolicy::default();
        let budget = GuessBudget::for_policy(6, &policy);
        // 10^6 codes, 50 guesses per hour: (10^6 + 1) / 2 / 50 = 10,000.01 hours.
        assert!((budget.expected_hours_to_guess() - 10_000.01).abs() < 1e-6);
        assert!(budget.expected_years_to_guess() >= 1.0);
        // With 1,000 open orders and digits-only matching, each typed guess would be compared
        // with all of them: 1,000 comparisons per wrong code, so the same budget allows one
        // wrong code every 20 hours — which is why it is off by default.
        let per_guess = 1_000.0;
        assert!(budget.guesses_per_hour / per_guess < 1.0);
        // The per-station limit alone (5 per 10 minutes, 30 per hour) would be too weak with
        // several stations: two stations reach 60 per hour.
        let two_stations = 2.0 * 30.0;
        let weak = GuessBudget {
            code_space: 1e6,
            guesses_per_hour: two_stations * 1_000.0,
        };
        assert!(weak.expected_years_to_guess() < 1.0);
    }

    #[test]
    fn a_check_targets_one_order_or_a_phone_tail() {
        let p = PresentedCode::parse("P1:123456");
        assert_eq!(p.target(9, false), Ok(Target::Order("P1")));
        let typed = PresentedCode::typed("123456", Some("P1"), None);
        assert_eq!(typed.target(6, false), Ok(Target::Order("P1")));
        let tail = PresentedCode::typed("123456", None, Some("1234"));
        assert_eq!(tail.target(6, false), Ok(Target::PhoneTail("1234")));
        let bare = PresentedCode::typed("123456", None, None);
        assert_eq!(
            bare.target(6, false),
            Err(CodeProblem::NeedsOrderOrPhoneTail)
        );
        assert_eq!(bare.target(6, true), Ok(Target::AnyOpenOrder));
        assert_eq!(
            PresentedCode::typed("1", None, Some("12a4")).target(1, false),
            Err(CodeProblem::BadPhoneTail)
        );
        assert_eq!(
            PresentedCode::parse(&"9".repeat(65)).target(65, true),
            Err(CodeProblem::TooLong { max: 64 })
        );
        assert_eq!(
            PresentedCode::typed(" ", Some("P1"), None).target(1, true),
            Err(CodeProblem::Empty)
        );
        // Only orders with that tail are compared.
        let mut a = order("P1", "111111", OrderStatus::Open);
        a.phone_tail = Some("1234".into());
        let mut b = order("P2", "111111", OrderStatus::Open);
        b.phone_tail = Some("9999".into());
        let orders = vec![a, b];
        assert_eq!(
            check_code(
                &site("s1"),
                &PresentedCode::typed("111111", None, Some("9999")),
                &orders,
                Timestamp(2_000)
            ),
            CodeCheck::Found {
                order_id: "P2".into()
            }
        );
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

    #[test]
    fn the_order_state_rule_is_the_same_for_code_checks_and_handovers() {
        let s1 = site("s1");
        let collected = OrderStatus::Collected {
            at: Timestamp(2_000),
            station: "counter-1".into(),
        };
        for (status, now) in [
            (OrderStatus::Open, 500),
            (OrderStatus::Open, 5_000),
            (OrderStatus::Open, 20_000),
            (OrderStatus::OnHold, 5_000),
            (OrderStatus::Cancelled, 5_000),
            (OrderStatus::Refunded, 5_000),
            (collected.clone(), 5_000),
        ] {
            let o = order("P1", "123456", status.clone());
            let blocker = handover_blocker(&o, &s1, Timestamp(now));
            let check = check_code(
                &s1,
                &PresentedCode::parse("P1:123456"),
                [&o],
                Timestamp(now),
            );
            match blocker {
                None => assert_eq!(
                    check,
                    CodeCheck::Found {
                        order_id: "P1".into()
                    }
                ),
                Some(b) => assert_eq!(check, b, "{status:?} at {now}"),
            }
        }
        let open = order("P1", "123456", OrderStatus::Open);
        assert_eq!(handover_blocker(&open, &s1, Timestamp(5_000)), None);
        assert!(matches!(
            handover_blocker(&open, &s1, Timestamp(500)),
            Some(CodeCheck::NotYetOpen { .. })
        ));
        assert!(matches!(
            handover_blocker(&open, &s1, Timestamp(10_001)),
            Some(CodeCheck::Expired { .. })
        ));
        assert!(matches!(
            handover_blocker(&open, &site("s2"), Timestamp(5_000)),
            Some(CodeCheck::WrongSite { .. })
        ));
    }

    fn two_lines() -> PickupOrder {
        let mut o = order("P2", "123456", OrderStatus::Open);
        o.items.push(PickupItem {
            sku: SkuCode::new("PORK").unwrap(),
            quantity: 500,
            lot: None,
            trace_codes: vec![],
            unit_price_cents: Some(3_000),
        });
        o
    }

    #[test]
    fn damaged_goods_are_written_off_and_other_refusals_go_back_to_stock() {
        assert_eq!(refusal_destination("damaged"), Some(RefusedTo::Loss));
        for reason in ["customer_declined", "wrong_items", "identity"] {
            assert_eq!(
                refusal_destination(reason),
                Some(RefusedTo::Stock),
                "{reason}"
            );
        }
        assert_eq!(refusal_destination("dented"), None);
        assert!(
            LINE_REFUSAL_REASONS
                .iter()
                .all(|r| REFUSAL_REASONS.contains(r))
        );
    }

    fn refusal(line_no: usize, quantity: i64, to: RefusedTo, reason: &str) -> LineRefusal {
        LineRefusal {
            line_no,
            quantity,
            to,
            reason: reason.into(),
        }
    }

    #[test]
    fn a_handover_plan_hands_over_what_was_not_refused_and_writes_off_refused_losses() {
        let o = two_lines();
        let refusals = [
            refusal(1, 1, RefusedTo::Loss, " "),
            refusal(1, 0, RefusedTo::Loss, "bruised"),
        ];
        let weighings = [LineWeighing {
            line_no: 2,
            grams: 540,
        }];
        let report = HandoverReport {
            refusals: &refusals,
            weighings: &weighings,
            scanned_per_line: &[0, 0],
            items_checked: &[false, false],
            partial: None,
        };
        let plan = plan_handover_lines(&o, &report).unwrap();
        assert_eq!(plan.len(), 2);
        assert_eq!((plan[0].handed_over, plan[0].refused), (1, 1));
        assert_eq!(plan[0].refused_to, Some(RefusedTo::Loss));
        assert_eq!(
            plan[0].losses,
            vec![
                (1, "refused by customer".to_owned()),
                (0, "bruised".to_owned())
            ]
        );
        // 40 g more than ordered at 30.00 per kg: 1.20 more.
        assert_eq!(plan[1].weighed_g, Some(540));
        assert_eq!(plan[1].handed_over, 540);
        assert_eq!(plan[1].price_difference_cents, Some(120));
        assert!(plan[1].losses.is_empty() && plan[1].refused_to.is_none());
    }

    #[test]
    fn a_handover_plan_refuses_lines_the_order_lacks_too_much_refused_and_unscanned_items() {
        let o = two_lines();
        let none: [LineRefusal; 0] = [];
        fn report<'a>(
            refusals: &'a [LineRefusal],
            weighings: &'a [LineWeighing],
            scanned: &'a [i64],
            checked: &'a [bool],
        ) -> HandoverReport<'a> {
            HandoverReport {
                refusals,
                weighings,
                scanned_per_line: scanned,
                items_checked: checked,
                partial: None,
            }
        }
        let r3 = &[refusal(3, 1, RefusedTo::Stock, "")];
        assert_eq!(
            plan_handover_lines(&o, &report(r3, &[], &[0, 0], &[false, false])),
            Err(HandoverRefusal::NoSuchLine { line: 3, lines: 2 })
        );
        let w0: &[LineWeighing] = &[LineWeighing {
            line_no: 0,
            grams: 1,
        }];
        assert_eq!(
            plan_handover_lines(&o, &report(&[], w0, &[0, 0], &[false, false])),
            Err(HandoverRefusal::NoSuchLine { line: 0, lines: 2 })
        );
        let r_many = &[
            refusal(1, 2, RefusedTo::Stock, ""),
            refusal(1, 1, RefusedTo::Loss, ""),
        ];
        assert_eq!(
            plan_handover_lines(&o, &report(r_many, &[], &[0, 0], &[false, false])),
            Err(HandoverRefusal::TooMuchRefused {
                line: 1,
                refused: 3,
                ordered: 2
            })
        );
        let r_neg = &[refusal(1, -1, RefusedTo::Stock, "")];
        assert!(matches!(
            plan_handover_lines(&o, &report(r_neg, &[], &[0, 0], &[false, false])),
            Err(HandoverRefusal::TooMuchRefused { refused: -1, .. })
        ));
        assert_eq!(
            plan_handover_lines(&o, &report(&none, &[], &[1, 0], &[true, false])),
            Err(HandoverRefusal::ItemsNotScanned {
                line: 1,
                sku: SkuCode::new("MILK").unwrap(),
                needed: 2,
                scanned: 1
            })
        );
        // Refused units need no scan: one scanned item for one unit leaving is enough.
        let r_one = &[refusal(1, 1, RefusedTo::Stock, "")];
        assert!(plan_handover_lines(&o, &report(r_one, &[], &[1, 0], &[true, false])).is_ok());
    }

    #[test]
    fn a_partial_handover_hands_over_what_was_chosen_and_settles_only_that() {
        let o = two_lines();
        let plan = |refusals: &[LineRefusal],
                    weighings: &[LineWeighing],
                    scanned: &[i64],
                    checked: &[bool],
                    partial: &[LineQuantity]| {
            plan_handover_lines(
                &o,
                &HandoverReport {
                    refusals,
                    weighings,
                    scanned_per_line: scanned,
                    items_checked: checked,
                    partial: Some(partial),
                },
            )
        };
        let q = |line_no, quantity| LineQuantity { line_no, quantity };
        // One of two milks now; the produce line is not named and not weighed: it stays open.
        let one = plan(&[], &[], &[0, 0], &[false, false], &[q(1, 1)]).unwrap();
        assert_eq!((one[0].handed_over, one[0].settled), (1, 1));
        assert_eq!((one[1].handed_over, one[1].settled), (0, 0));
        // A refused milk and the other handed over settle the line; a weighed line leaves
        // whole, named or not.
        let refused = [refusal(1, 1, RefusedTo::Stock, "")];
        let weighed = [LineWeighing {
            line_no: 2,
            grams: 480,
        }];
        let both = plan(&refused, &weighed, &[0, 0], &[false, false], &[q(1, 1)]).unwrap();
        assert_eq!(
            (both[0].handed_over, both[0].refused, both[0].settled),
            (1, 1, 2)
        );
        assert_eq!((both[1].handed_over, both[1].settled), (480, 500));
        // Split over two entries of the same line, the quantities add up.
        let split = plan(&[], &[], &[0, 0], &[false, false], &[q(1, 1), q(1, 1)]).unwrap();
        assert_eq!(split[0].settled, 2);
        // More than is open (after refusals), a negative quantity or a line the order lacks.
        assert_eq!(
            plan(&refused, &[], &[0, 0], &[false, false], &[q(1, 2)]),
            Err(HandoverRefusal::TooMuchHandedOver {
                line: 1,
                asked: 2,
                open: 1
            })
        );
        assert!(matches!(
            plan(&[], &[], &[0, 0], &[false, false], &[q(1, -1)]),
            Err(HandoverRefusal::TooMuchHandedOver { asked: -1, .. })
        ));
        assert_eq!(
            plan(&[], &[], &[0, 0], &[false, false], &[q(3, 1)]),
            Err(HandoverRefusal::NoSuchLine { line: 3, lines: 2 })
        );
        // Items checked at handover: only what leaves now needs its scans.
        assert!(plan(&[], &[], &[1, 0], &[true, false], &[q(1, 1)]).is_ok());
        assert!(matches!(
            plan(&[], &[], &[1, 0], &[true, false], &[q(1, 2)]),
            Err(HandoverRefusal::ItemsNotScanned { needed: 2, .. })
        ));
    }

    #[test]
    fn a_handover_may_be_undone_only_within_its_window() {
        let at = Timestamp(1_000_000);
        let w = 15 * 60_000;
        assert_eq!(undo_blocker(Some(at), w, at), None);
        assert_eq!(undo_blocker(Some(at), w, Timestamp(at.0 + w)), None);
        assert_eq!(
            undo_blocker(Some(at), w, Timestamp(at.0 + w + 1)),
            Some(UndoRefusal::TooLate { at, window_ms: w })
        );
        // A clock set back: the handover just happened.
        assert_eq!(undo_blocker(Some(at), w, Timestamp(at.0 - 5_000)), None);
        assert_eq!(undo_blocker(None, w, at), Some(UndoRefusal::NotHandedOver));
    }
}

//! Pickup orders as stored: versioned upserts from central, code checks with per-station
//! lockouts, and the exactly-once handover.
//!
//! A handover is one conditional update (`open` → `collected`) plus its issue movements,
//! trace-code updates, handover record and outbox event, in one transaction. Stock leaves
//! first-expiry-first-out from lots that have not expired on the site's day: an expired lot
//! is never picked, and a line only expired stock could fill is refused. Two stations (or
//! two processes) confirming the same order serialise on SQLite's write lock; the second finds
//! the order no longer open and is told who collected it and when.

use chrono::NaiveDate;
use hub_contract::stored;
use hub_core::alerts::{Alert, AlertKind, Tier};
use hub_core::event::{Handover, HandoverLine};
use hub_core::pickup::{
    self, AttemptLimiter, AttemptOutcome, AttemptPolicy, CodeCheck, ItemRefusal, OrderStatus,
    PickupItem, PickupOrder, PickupRules, PresentedCode, SITE_WINDOW_MS, Target, TraceFacts,
    check_code, check_item,
};
use hub_core::{
    BatchKey, DomainEvent, Movement, MovementId, MovementKind, SiteId, SkuCode, Timestamp,
};
use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::ledger::{RecordError, record};
use super::outbox::{self, sql};

/// How long after its window closes an order still answers "expired"/"collected" rather than
/// "wrong code".
const RECENT_MS: i64 = 7 * 24 * 3_600_000;

/// What storing an order from central did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderUpsert {
    Inserted,
    Updated,
    /// An equal or newer version is stored already.
    Stale {
        stored_version: i64,
    },
    /// The order was collected here; central's change came too late and is not applied.
    AlreadyCollected,
}

fn status_from_row(status: &str, at: Option<i64>, station: Option<String>) -> OrderStatus {
    match status {
        "on_hold" => OrderStatus::OnHold,
        "cancelled" => OrderStatus::Cancelled,
        "refunded" => OrderStatus::Refunded,
        "partially_collected" => OrderStatus::PartiallyCollected,
        "collected" => OrderStatus::Collected {
            at: Timestamp(at.unwrap_or(0)),
            station: station.unwrap_or_default(),
        },
        _ => OrderStatus::Open,
    }
}

/// Stores or updates an order from central.
pub fn upsert_order(
    conn: &Connection,
    order: &PickupOrder,
    now: Timestamp,
) -> Result<OrderUpsert, StoreError> {
    let stored: Option<(i64, String)> = conn
        .prepare_cached("SELECT version, status FROM pickup_order WHERE order_id = ?1")
        .and_then(|mut st| {
            st.query_row([&order.order_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(sql(conn))?;
    if let Some((stored_version, status)) = &stored {
        if *stored_version >= order.version {
            return Ok(OrderUpsert::Stale {
                stored_version: *stored_version,
            });
        }
        // Goods of a partly collected order have left too: central's change is not applied.
        if status == "collected" || status == "partially_collected" {
            return Ok(OrderUpsert::AlreadyCollected);
        }
    }
    let body = stored::encode_order_items(&order.items);
    conn.prepare_cached(
        "INSERT INTO pickup_order (order_id, site, code_salt, code_hash, body, opens_at, closes_at, status,
                                   version, updated_at, phone_tail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (order_id) DO UPDATE SET site = ?2, code_salt = ?3, code_hash = ?4, body = ?5,
             opens_at = ?6, closes_at = ?7, status = ?8, version = ?9, updated_at = ?10, phone_tail = ?11",
    )
    .and_then(|mut st| {
        st.execute(params![
            order.order_id,
            order.site.as_str(),
            order.code_salt,
            order.code_hash,
            body,
            order.opens_at.millis(),
            order.closes_at.millis(),
            order.status.name(),
            order.version,
            now.millis(),
            order.phone_tail
        ])
    })
    .map_err(sql(conn))?;
    conn.execute(
        "DELETE FROM pickup_order_line WHERE order_id = ?1",
        [&order.order_id],
    )
    .map_err(sql(conn))?;
    for (i, item) in order.items.iter().enumerate() {
        conn.prepare_cached("INSERT INTO pickup_order_line (order_id, line_no, sku, quantity) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut st| st.execute(params![order.order_id, i as i64, item.sku.as_str(), item.quantity]))
            .map_err(sql(conn))?;
    }
    Ok(if stored.is_some() {
        OrderUpsert::Updated
    } else {
        OrderUpsert::Inserted
    })
}

fn row_to_order(r: &rusqlite::Row<'_>) -> rusqlite::Result<PickupOrder> {
    let conv = |e: String| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    };
    let body: String = r.get(4)?;
    let status: String = r.get(7)?;
    Ok(PickupOrder {
        order_id: r.get(0)?,
        site: SiteId::new(r.get::<_, String>(1)?).map_err(|e| conv(e.to_string()))?,
        code_salt: r.get(2)?,
        code_hash: r.get(3)?,
        items: stored::decode_order_items(&body).map_err(|e| conv(e.to_string()))?,
        opens_at: Timestamp(r.get(5)?),
        closes_at: Timestamp(r.get(6)?),
        status: status_from_row(&status, r.get(8)?, r.get(9)?),
        version: r.get(10)?,
        phone_tail: r.get(11)?,
    })
}

const ORDER_COLUMNS: &str = "order_id, site, code_salt, code_hash, body, opens_at, closes_at, status, collected_at, collected_by, version, phone_tail";

/// Reads one order.
pub fn order(conn: &Connection, order_id: &str) -> Result<Option<PickupOrder>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {ORDER_COLUMNS} FROM pickup_order WHERE order_id = ?1"
    ))
    .and_then(|mut st| st.query_row([order_id], row_to_order).optional())
    .map_err(sql(conn))
}

/// The orders a check compares the code with: the one named, those with the phone tail, or
/// (code-only lookups) every order still answerable.
fn candidates(
    conn: &Connection,
    target: &Target<'_>,
    now: Timestamp,
) -> Result<Vec<PickupOrder>, StoreError> {
    let recent = now.millis() - RECENT_MS;
    let (filter, value) = match target {
        Target::Order(id) => return Ok(order(conn, id)?.into_iter().collect()),
        Target::PhoneTail(tail) => ("phone_tail = ?2 AND closes_at >= ?1", Some(*tail)),
        Target::AnyOpenOrder => ("closes_at >= ?1 AND ?2 IS NULL", None),
    };
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {ORDER_COLUMNS} FROM pickup_order WHERE {filter}"
        ))
        .map_err(sql(conn))?;
    st.query_map(params![recent, value], row_to_order)
        .and_then(|rows| rows.collect())
        .map_err(sql(conn))
}

/// The limiter row of the whole site (station ids cannot contain `*`).
const SITE_LIMITER: &str = "*";

fn load_limiter(conn: &Connection, station: &str) -> Result<AttemptLimiter, StoreError> {
    let state: Option<String> = conn
        .prepare_cached("SELECT state FROM station_attempts WHERE station = ?1")
        .and_then(|mut st| st.query_row([station], |r| r.get(0)).optional())
        .map_err(sql(conn))?;
    Ok(state
        .and_then(|s| stored::decode_limiter(&s).ok())
        .unwrap_or_default())
}

fn save_limiter(
    conn: &Connection,
    station: &str,
    limiter: &AttemptLimiter,
    now: Timestamp,
) -> Result<(), StoreError> {
    let state = stored::encode_limiter(limiter);
    conn.prepare_cached(
        "INSERT INTO station_attempts (station, state, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (station) DO UPDATE SET state = ?2, updated_at = ?3",
    )
    .and_then(|mut st| st.execute(params![station, state, now.millis()]))
    .map_err(sql(conn))?;
    Ok(())
}

/// Checks a presented code for a station: refuses unreadable or untargeted input before
/// anything is hashed, compares the code with the targeted order(s) only, counts every failed
/// comparison as a wrong guess for the station and for the site, locks out (with an event and
/// an alert) when a limit is reached, and remembers a successful check for the handover that
/// follows. `raw_len` is the length of what the clerk entered. Runs in a write transaction.
pub fn check_presented_code(
    conn: &Connection,
    site: &SiteId,
    station: &str,
    presented: &PresentedCode,
    raw_len: usize,
    rules: &PickupRules,
    now: Timestamp,
) -> Result<CodeCheck, StoreError> {
    let evaluated = evaluate_presented_code(conn, site, station, presented, raw_len, rules, now)?;
    let Evaluated {
        result,
        guesses,
        limiters,
    } = evaluated;
    if result.is_wrong_code() {
        let (mut limiter, mut site_limiter) = limiters;
        record_wrong_guesses(
            conn,
            station,
            guesses,
            &rules.attempts,
            (&mut limiter, &mut site_limiter),
            now,
        )?;
        save_limiter(conn, station, &limiter, now)?;
        save_limiter(conn, SITE_LIMITER, &site_limiter, now)?;
    } else if let CodeCheck::Found { order_id } = &result {
        record_check_pass(conn, station, order_id, now)?;
    }
    Ok(result)
}

/// A code check worked out without writing anything: its result, and what a wrong code
/// would count against the station and the site.
struct Evaluated {
    result: CodeCheck,
    guesses: u32,
    limiters: (AttemptLimiter, AttemptLimiter),
}

/// The reading half of [`check_presented_code`]: what the check answers, from the stored
/// lockouts and orders; writes nothing.
fn evaluate_presented_code(
    conn: &Connection,
    site: &SiteId,
    station: &str,
    presented: &PresentedCode,
    raw_len: usize,
    rules: &PickupRules,
    now: Timestamp,
) -> Result<Evaluated, StoreError> {
    let limiter = load_limiter(conn, station)?;
    let done = |result| Evaluated {
        result,
        guesses: 0,
        limiters: Default::default(),
    };
    if let Some(until) = limiter.locked(now) {
        return Ok(done(CodeCheck::LockedOut { until }));
    }
    let site_limiter = load_limiter(conn, SITE_LIMITER)?;
    if let Some(until) = site_limiter.locked(now) {
        return Ok(done(CodeCheck::SiteLockedOut { until }));
    }
    let target = match presented.target(raw_len, rules.allow_code_only) {
        Ok(target) => target,
        Err(problem) => return Ok(done(CodeCheck::Unreadable { problem })),
    };
    let orders = candidates(conn, &target, now)?;
    Ok(Evaluated {
        result: check_code(site, presented, &orders, now),
        guesses: u32::try_from(orders.len()).unwrap_or(u32::MAX).max(1),
        limiters: (limiter, site_limiter),
    })
}

/// A code check that changes nothing stored when it is answered: anything but a wrong code,
/// which counts towards the lockouts and must be stored at once. On a read-only connection;
/// `None` when the check is a wrong code (then run [`check_presented_code`] in a write).
/// A `Found` check still needs [`record_check_pass`] before a handover can follow (the
/// pass rides on the next commit instead of one of its own).
pub fn check_presented_code_read_only(
    conn: &Connection,
    site: &SiteId,
    station: &str,
    presented: &PresentedCode,
    raw_len: usize,
    rules: &PickupRules,
    now: Timestamp,
) -> Result<Option<CodeCheck>, StoreError> {
    let evaluated = evaluate_presented_code(conn, site, station, presented, raw_len, rules, now)?;
    Ok((!evaluated.result.is_wrong_code()).then_some(evaluated.result))
}

/// Remembers a successful check of `order_id` at `station` at `at`, for the handover that
/// follows.
pub fn record_check_pass(
    conn: &Connection,
    station: &str,
    order_id: &str,
    at: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO pickup_check_pass (station, order_id, at) VALUES (?1, ?2, ?3)
         ON CONFLICT (station, order_id) DO UPDATE SET at = ?3",
    )
    .and_then(|mut st| st.execute(params![station, order_id, at.millis()]))
    .map_err(sql(conn))?;
    Ok(())
}

fn record_wrong_guesses(
    conn: &Connection,
    station: &str,
    guesses: u32,
    policy: &AttemptPolicy,
    (limiter, site_limiter): (&mut AttemptLimiter, &mut AttemptLimiter),
    now: Timestamp,
) -> Result<(), StoreError> {
    if let AttemptOutcome::LockoutStarted { until } = limiter.record_failure(policy, guesses, now) {
        tracing::warn!(station, until = %until.to_rfc3339(), "pickup station locked out after repeated wrong codes");
        outbox::append(
            conn,
            &DomainEvent::PickupStationLockedOut {
                station: station.to_owned(),
                until,
                failures: policy.max_failures,
            },
            now,
        )?;
        super::alert_book::raise(conn, &station_lockout_alert(station, policy, until), now)?;
    }
    let site_outcome = site_limiter.record_site_failure(policy, guesses, now);
    if let AttemptOutcome::LockoutStarted { until } = site_outcome {
        tracing::error!(until = %until.to_rfc3339(), "pickup code checks paused site-wide: the hourly budget of wrong guesses is used up");
        outbox::append(
            conn,
            &DomainEvent::PickupSiteLockedOut {
                until,
                guesses: policy.site_max_per_hour,
            },
            now,
        )?;
        super::alert_book::raise(conn, &site_lockout_alert(policy, until), now)?;
    } else if let Some(alert) = wrong_code_rate_alert(site_limiter, policy, now) {
        super::alert_book::raise(conn, &alert, now)?;
    }
    Ok(())
}

fn station_lockout_alert(station: &str, policy: &AttemptPolicy, until: Timestamp) -> Alert {
    Alert {
        kind: AlertKind::PickupLockout,
        subject: station.to_owned(),
        tier: Tier::Orange,
        message: format!(
            "station {station} typed {} wrong pickup codes; locked until {} (a supervisor can lift it: hub pickup unlock)",
            policy.max_failures,
            until.to_rfc3339()
        ),
    }
}

fn site_lockout_alert(policy: &AttemptPolicy, until: Timestamp) -> Alert {
    Alert {
        kind: AlertKind::PickupLockout,
        subject: "site".into(),
        tier: Tier::Red,
        message: format!(
            "{} wrong pickup guesses within an hour at this site: code checks paused at every station until {}; look for someone guessing codes, a supervisor can lift it (hub pickup unlock --site)",
            policy.site_max_per_hour,
            until.to_rfc3339()
        ),
    }
}

fn wrong_code_rate_alert(
    site_limiter: &AttemptLimiter,
    policy: &AttemptPolicy,
    now: Timestamp,
) -> Option<Alert> {
    let recent = site_limiter.recent(SITE_WINDOW_MS, now);
    (recent >= policy.site_alert_per_hour as usize).then(|| Alert {
        kind: AlertKind::PickupWrongCodeRate,
        subject: "site".into(),
        tier: Tier::Orange,
        message: format!(
            "{recent} wrong pickup guesses in the last hour (alert at {}, checks pause at {}): someone may be guessing codes",
            policy.site_alert_per_hour, policy.site_max_per_hour
        ),
    })
}

/// The pickup alerts that hold now: locked stations, the site-wide pause, and a sustained
/// wrong-guess rate. The periodic checks reconcile the open-alert book with these, so an
/// alert clears when its lockout ends.
pub fn lockout_alerts(
    conn: &Connection,
    policy: &AttemptPolicy,
    now: Timestamp,
) -> Result<Vec<Alert>, StoreError> {
    let rows: Vec<(String, String)> = conn
        .prepare_cached("SELECT station, state FROM station_attempts")
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql(conn))?;
    let mut alerts = Vec::new();
    for (station, state) in rows {
        let limiter: AttemptLimiter = stored::decode_limiter(&state).unwrap_or_default();
        if station == SITE_LIMITER {
            if let Some(until) = limiter.locked(now) {
                alerts.push(site_lockout_alert(policy, until));
            }
            alerts.extend(wrong_code_rate_alert(&limiter, policy, now));
        } else if let Some(until) = limiter.locked(now) {
            alerts.push(station_lockout_alert(&station, policy, until));
        }
    }
    Ok(alerts)
}

/// A station's (or, with `None`, the site's) lockout as it stands.
pub fn lockout(
    conn: &Connection,
    station: Option<&str>,
    now: Timestamp,
) -> Result<Option<Timestamp>, StoreError> {
    Ok(load_limiter(conn, station.unwrap_or(SITE_LIMITER))?.locked(now))
}

/// A supervisor lifts a station's lockout (or, with `None`, the site-wide pause) early. Its
/// wrong-guess count starts over; the event says who and why. Returns whether it was locked.
pub fn lift_lockout(
    conn: &Connection,
    station: Option<&str>,
    staff: &str,
    reason: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let key = station.unwrap_or(SITE_LIMITER);
    let mut limiter = load_limiter(conn, key)?;
    let was_locked = limiter.locked(now).is_some();
    limiter.lift();
    save_limiter(conn, key, &limiter, now)?;
    outbox::append(
        conn,
        &DomainEvent::PickupLockoutLifted {
            station: station.map(str::to_owned),
            staff: staff.to_owned(),
            reason: reason.to_owned(),
        },
        now,
    )?;
    let subject = station.unwrap_or("site");
    super::alert_book::clear(conn, AlertKind::PickupLockout, subject, now)?;
    if station.is_none() {
        super::alert_book::clear(conn, AlertKind::PickupWrongCodeRate, "site", now)?;
    }
    Ok(was_locked)
}

/// What the clerk reports at handover, beyond "everything as ordered".
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HandoverRequest {
    /// Trace codes scanned while handing over.
    #[serde(default)]
    pub trace_codes: Vec<String>,
    /// Lines the customer refused (wholly or partly).
    #[serde(default)]
    pub refusals: Vec<Refusal>,
    /// Weighed quantities (grams) of by-weight lines.
    #[serde(default)]
    pub weighings: Vec<Weighing>,
    /// Who hands the order over (kept with the handover and sent upstream).
    #[serde(default)]
    pub staff: Option<String>,
    /// A partial handover: what leaves now of each line; the rest stays open. Empty: all.
    #[serde(default)]
    pub partial: Vec<Part>,
}

/// Refusals and weighings at handover: what the clerk reports, as a station command carries
/// it (lines numbered from 1; older messages' 0-based `line` still read).
pub use hub_contract::station::{Part, Refusal, Weighing};

/// Why a handover did not happen. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    #[error("order {0} is not known at this site")]
    UnknownOrder(String),
    #[error(
        "order {order_id} has not been checked at station {station}: check the customer's pickup code first"
    )]
    NotChecked { order_id: String, station: String },
    /// Its Display names the state only; a person is told when and where in the site's zone
    /// by `catalogue::handover_error`.
    #[error("order {order_id} cannot be handed over: {}", not_open_state(check))]
    NotOpen { order_id: String, check: CodeCheck },
    #[error("trace code {code} cannot leave with order {order_id}: {refusal:?}")]
    ItemRefused {
        order_id: String,
        code: String,
        refusal: ItemRefusal,
    },
    #[error(
        "order {order_id} line {line} ({sku}) needs {needed} scanned trace code(s), got {scanned}"
    )]
    ItemsNotScanned {
        order_id: String,
        line: usize,
        sku: String,
        needed: i64,
        scanned: i64,
    },
    #[error(
        "order {order_id}: refusal or weighing names line {line}, but the order has lines 1 to {lines}"
    )]
    NoSuchLine {
        order_id: String,
        line: usize,
        lines: usize,
    },
    #[error("order {order_id} line {line}: refused {refused} is more than the {ordered} ordered")]
    TooMuchRefused {
        order_id: String,
        line: usize,
        refused: i64,
        ordered: i64,
    },
    #[error(
        "order {order_id} line {line}: {asked} asked for in a partial handover, but {open} is open; hand over at most what is open"
    )]
    TooMuchHandedOver {
        order_id: String,
        line: usize,
        asked: i64,
        open: i64,
    },
    #[error(
        "order {order_id} line {line} ({sku}): only expired stock is left for {missing} of {needed} (lot(s) {lots} expired); write it off (loss) and hand over fresh stock"
    )]
    OnlyExpiredStock {
        order_id: String,
        line: usize,
        sku: String,
        needed: i64,
        missing: i64,
        lots: String,
    },
    #[error(
        "order {order_id} line {line} ({sku}): the reserved lot {lot} expired on {expiry}; ask central to reserve another lot"
    )]
    ReservedLotExpired {
        order_id: String,
        line: usize,
        sku: String,
        lot: String,
        expiry: String,
    },
    #[error(transparent)]
    Station(crate::config::StationError),
    #[error(transparent)]
    Ledger(#[from] RecordError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl HandoverError {
    /// Every refusal code [`HandoverError::code`] gives (a screen has words for each).
    pub const CODES: &'static [&'static str] = &[
        "unknown_order",
        "not_checked",
        "not_open",
        "not_open.expired",
        "not_open.not_yet_open",
        "not_open.already_collected",
        "not_open.cancelled",
        "not_open.refunded",
        "not_open.on_hold",
        "not_open.wrong_site",
        "item_refused",
        "items_not_scanned",
        "no_such_line",
        "too_much_refused",
        "too_much_handed_over",
        "only_expired_stock",
        "reserved_lot_expired",
        "station",
        "ledger",
        "refused",
    ];

    /// The refusal as a stable code (one of [`HandoverError::CODES`]).
    pub fn code(&self) -> String {
        match self {
            HandoverError::UnknownOrder(_) => "unknown_order".into(),
            HandoverError::NotChecked { .. } => "not_checked".into(),
            HandoverError::NotOpen { check, .. } => {
                let code = match check {
                    CodeCheck::Expired { .. } => "not_open.expired",
                    CodeCheck::NotYetOpen { .. } => "not_open.not_yet_open",
                    CodeCheck::AlreadyCollected { .. } => "not_open.already_collected",
                    CodeCheck::Cancelled { .. } => "not_open.cancelled",
                    CodeCheck::Refunded { .. } => "not_open.refunded",
                    CodeCheck::OnHold { .. } => "not_open.on_hold",
                    CodeCheck::WrongSite { .. } => "not_open.wrong_site",
                    _ => "not_open",
                };
                code.into()
            }
            HandoverError::ItemRefused { .. } => "item_refused".into(),
            HandoverError::ItemsNotScanned { .. } => "items_not_scanned".into(),
            HandoverError::NoSuchLine { .. } => "no_such_line".into(),
            HandoverError::TooMuchRefused { .. } => "too_much_refused".into(),
            HandoverError::TooMuchHandedOver { .. } => "too_much_handed_over".into(),
            HandoverError::OnlyExpiredStock { .. } => "only_expired_stock".into(),
            HandoverError::ReservedLotExpired { .. } => "reserved_lot_expired".into(),
            HandoverError::Station(_) => "station".into(),
            HandoverError::Ledger(_) => "ledger".into(),
            HandoverError::Store(_) => "refused".into(),
        }
    }
}

/// The order's state in a log line's (and a machine's) words: times in RFC 3339 UTC, since the
/// store knows no time zone; people get `catalogue::handover_error` instead.
fn not_open_state(check: &CodeCheck) -> String {
    match check {
        CodeCheck::Expired { closed_at, .. } => {
            format!("its pickup window closed at {}", closed_at.to_rfc3339())
        }
        CodeCheck::NotYetOpen { opens_at, .. } => {
            format!("its pickup window opens at {}", opens_at.to_rfc3339())
        }
        CodeCheck::AlreadyCollected { at, station, .. } => format!(
            "it was already collected at station {station} at {}",
            at.to_rfc3339()
        ),
        other => not_open_word(other).to_owned(),
    }
}

fn not_open_word(check: &CodeCheck) -> &'static str {
    match check {
        CodeCheck::Cancelled { .. } => "it was cancelled",
        CodeCheck::Refunded { .. } => "it was refunded",
        CodeCheck::OnHold { .. } => "it is on hold",
        CodeCheck::WrongSite { .. } => "it belongs to another site",
        _ => "it is not open for pickup",
    }
}

impl HandoverError {
    /// The store's error for a report the core's plan refused.
    fn from_plan(order_id: &str, refusal: pickup::HandoverRefusal) -> HandoverError {
        let order_id = order_id.to_owned();
        match refusal {
            pickup::HandoverRefusal::NoSuchLine { line, lines } => HandoverError::NoSuchLine {
                order_id,
                line,
                lines,
            },
            pickup::HandoverRefusal::TooMuchRefused {
                line,
                refused,
                ordered,
            } => HandoverError::TooMuchRefused {
                order_id,
                line,
                refused,
                ordered,
            },
            pickup::HandoverRefusal::TooMuchHandedOver { line, asked, open } => {
                HandoverError::TooMuchHandedOver {
                    order_id,
                    line,
                    asked,
                    open,
                }
            }
            pickup::HandoverRefusal::ItemsNotScanned {
                line,
                sku,
                needed,
                scanned,
            } => HandoverError::ItemsNotScanned {
                order_id,
                line,
                sku: sku.to_string(),
                needed,
                scanned,
            },
        }
    }
}

/// Checks one scanned item (its stored form) against order `order_id` before the handover
/// (the pickup screen's item check): the order line it ticks, or why it may not leave with
/// this order. `None` when the order is unknown.
pub fn item_check(
    conn: &Connection,
    order_id: &str,
    code: &str,
) -> Result<Option<Result<usize, pickup::ItemRefusal>>, StoreError> {
    let Some(order) = order(conn, order_id)? else {
        return Ok(None);
    };
    let facts = trace_facts(conn, code)?;
    Ok(Some(check_item(&order, facts.as_ref())))
}

fn trace_facts(conn: &Connection, code: &str) -> Result<Option<TraceFacts>, StoreError> {
    conn.prepare_cached("SELECT sku, lot, status, order_id FROM trace_code WHERE code = ?1")
        .and_then(|mut st| {
            st.query_row([code], |r| {
                let status: String = r.get(2)?;
                let order_id: Option<String> = r.get(3)?;
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    status,
                    order_id,
                ))
            })
            .optional()
        })
        .map_err(sql(conn))
        .map(|row| {
            row.and_then(|(sku, lot, status, order_id)| {
                Some(TraceFacts {
                    sku: SkuCode::new(sku).ok()?,
                    lot,
                    quarantined: status == "quarantined",
                    handed_over_with: if status == "handed_over" {
                        order_id
                    } else {
                        None
                    },
                })
            })
        })
}

/// Batches of a SKU with stock that may still be handed over on the site's day `today`
/// (no expiry, or expiring today or later), earliest expiry first (first-expiry-first-out).
pub fn fefo_batches(
    conn: &Connection,
    sku: &SkuCode,
    today: NaiveDate,
) -> Result<Vec<(String, Option<String>, i64)>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT lot, expiry, on_hand FROM balance_batch
             WHERE sku = ?1 AND on_hand > 0 AND (expiry IS NULL OR expiry >= ?2)
             ORDER BY expiry IS NULL, expiry, lot",
        )
        .map_err(sql(conn))?;
    st.query_map(params![sku.as_str(), today.to_string()], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
    .and_then(|rows| rows.collect())
    .map_err(sql(conn))
}

/// Lots of a SKU on hand whose expiry is before the site's day `today`: never handed over.
pub fn expired_batches(
    conn: &Connection,
    sku: &SkuCode,
    today: NaiveDate,
) -> Result<Vec<(String, String, i64)>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT lot, expiry, on_hand FROM balance_batch
             WHERE sku = ?1 AND on_hand > 0 AND expiry < ?2 ORDER BY expiry, lot",
        )
        .map_err(sql(conn))?;
    st.query_map(params![sku.as_str(), today.to_string()], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
    .and_then(|rows| rows.collect())
    .map_err(sql(conn))
}

/// One order line's stock change at handover: what, why, and when (`today` is the site's day).
struct LineMove<'a> {
    order_id: &'a str,
    /// How many earlier handovers of this order were undone (their movement ids are taken).
    generation: i64,
    /// How many parts of this order were handed over before (their movement ids are taken).
    part: i64,
    line: usize,
    item: &'a PickupItem,
    kind: MovementKind,
    reason: &'a str,
    now: Timestamp,
    today: NaiveDate,
}

fn record_line_move(
    conn: &Connection,
    mv: &LineMove<'_>,
    id: String,
    lot: Option<(String, Option<String>)>,
    quantity: i64,
) -> Result<(), HandoverError> {
    let m = Movement {
        id: MovementId::new(id).map_err(|e| StoreError::Sqlite {
            path: conn.path().unwrap_or_default().into(),
            source: rusqlite::Error::InvalidParameterName(e.to_string()),
        })?,
        sku: mv.item.sku.clone(),
        batch: lot.map(|(lot, expiry)| BatchKey {
            lot,
            expiry: expiry.and_then(|e| e.parse().ok()),
        }),
        kind: mv.kind,
        quantity,
        reason: mv.reason.to_owned(),
        reference: format!("pickup order {}", mv.order_id),
        at: mv.now,
    };
    record(conn, &m)?;
    Ok(())
}

/// Takes `quantity` of a line out of stock: from the reserved batch, or first-expiry-first-out
/// from lots that have not expired. Refused when the reserved lot expired, or when only
/// expired stock could make up the quantity.
fn take_from_stock(
    conn: &Connection,
    mv: &LineMove<'_>,
    quantity: i64,
) -> Result<Vec<String>, HandoverError> {
    let base = if mv.kind == MovementKind::Loss {
        "loss"
    } else {
        "ho"
    };
    // After an undo the order may be handed over again: its movements need fresh ids.
    let mut tag = match mv.generation {
        0 => base.to_owned(),
        n => format!("{base}{}", n + 1),
    };
    if mv.part > 0 {
        tag = format!("{tag}p{}", mv.part + 1);
    }
    let (order_id, line) = (mv.order_id, mv.line);
    if quantity <= 0 {
        return Ok(vec![]);
    }
    if let Some(lot) = &mv.item.lot {
        let expiry: Option<String> = conn
            .prepare_cached("SELECT expiry FROM balance_batch WHERE sku = ?1 AND lot = ?2")
            .and_then(|mut st| {
                st.query_row(params![mv.item.sku.as_str(), lot], |r| r.get(0))
                    .optional()
            })
            .map_err(sql(conn))?
            .flatten();
        if let Some(expiry) = expiry.filter(|e| e.as_str() < mv.today.to_string().as_str()) {
            return Err(HandoverError::ReservedLotExpired {
                order_id: order_id.to_owned(),
                line,
                sku: mv.item.sku.to_string(),
                lot: lot.clone(),
                expiry,
            });
        }
        record_line_move(
            conn,
            mv,
            format!("{tag}-{order_id}-{line}-{lot}"),
            Some((lot.clone(), None)),
            quantity,
        )?;
        return Ok(vec![lot.clone()]);
    }
    let mut left = quantity;
    let mut lots = Vec::new();
    for (lot, expiry, on_hand) in fefo_batches(conn, &mv.item.sku, mv.today)? {
        let take = left.min(on_hand);
        record_line_move(
            conn,
            mv,
            format!("{tag}-{order_id}-{line}-{lot}"),
            Some((lot.clone(), expiry)),
            take,
        )?;
        lots.push(lot);
        left -= take;
        if left == 0 {
            break;
        }
    }
    if left > 0 {
        let expired = expired_batches(conn, &mv.item.sku, mv.today)?;
        if !expired.is_empty() {
            return Err(HandoverError::OnlyExpiredStock {
                order_id: order_id.to_owned(),
                line,
                sku: mv.item.sku.to_string(),
                needed: quantity,
                missing: left,
                lots: expired
                    .iter()
                    .map(|(lot, expiry, _)| format!("{lot} on {expiry}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        // Not enough in any batch: the ledger rules refuse (or allow, for negative-stock SKUs).
        record_line_move(conn, mv, format!("{tag}-{order_id}-{line}"), None, left)?;
    }
    Ok(lots)
}

/// Hands an order over, exactly once, on the site's day `today` (for expiry), if its code
/// was checked at `station` within `check_valid_ms`. Everything commits together or not at all.
#[allow(
    clippy::too_many_arguments,
    reason = "the handover's inputs; a plan in hub-core will take them as one view"
)]
pub fn hand_over(
    conn: &Connection,
    site: &SiteId,
    station: &str,
    order_id: &str,
    request: &HandoverRequest,
    check_valid_ms: i64,
    today: NaiveDate,
    now: Timestamp,
) -> Result<Handover, HandoverError> {
    let order =
        order(conn, order_id)?.ok_or_else(|| HandoverError::UnknownOrder(order_id.to_owned()))?;
    let state_check = pickup::handover_blocker(&order, site, now);
    if let Some(check) = state_check {
        return Err(HandoverError::NotOpen {
            order_id: order_id.into(),
            check,
        });
    }
    // No handover by order number alone: the customer's code was checked here, recently.
    let checked_at: Option<i64> = conn
        .prepare_cached("SELECT at FROM pickup_check_pass WHERE station = ?1 AND order_id = ?2")
        .and_then(|mut st| {
            st.query_row(params![station, order_id], |r| r.get(0))
                .optional()
        })
        .map_err(sql(conn))?;
    if checked_at.is_none_or(|at| now.millis() - at > check_valid_ms || at > now.millis()) {
        return Err(HandoverError::NotChecked {
            order_id: order_id.into(),
            station: station.into(),
        });
    }
    // The one conditional update that makes the handover exactly-once (a partial one puts
    // the order back to `partially_collected` below).
    let won = conn
        .prepare_cached(
            "UPDATE pickup_order SET status = 'collected', collected_at = ?2, collected_by = ?3, updated_at = ?2
             WHERE order_id = ?1 AND status IN ('open', 'partially_collected')",
        )
        .and_then(|mut st| st.execute(params![order_id, now.millis(), station]))
        .map_err(sql(conn))?;
    if won != 1 {
        let check = CodeCheck::AlreadyCollected {
            order_id: order_id.into(),
            at: now,
            station: String::new(),
        };
        return Err(HandoverError::NotOpen {
            order_id: order_id.into(),
            check,
        });
    }

    let generation: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM handover_undone WHERE order_id = ?1")
        .and_then(|mut st| st.query_row([order_id], |r| r.get(0)))
        .map_err(sql(conn))?;
    let part: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM handover_part WHERE order_id = ?1")
        .and_then(|mut st| st.query_row([order_id], |r| r.get(0)))
        .map_err(sql(conn))?;
    // What is still open of each line (all of it, unless parts were handed over before).
    let settled = settled_per_line(conn, order_id, order.items.len())?;
    let mut open_order = order.clone();
    for (item, settled) in open_order.items.iter_mut().zip(&settled) {
        item.quantity -= settled;
    }
    let lines_count = order.items.len();
    // Item checks: every scanned code must belong to the order and be free to leave.
    let mut scanned_per_line = vec![0i64; lines_count];
    for code in &request.trace_codes {
        let facts = trace_facts(conn, code)?;
        let line = check_item(&open_order, facts.as_ref()).map_err(|refusal| {
            HandoverError::ItemRefused {
                order_id: order_id.into(),
                code: code.clone(),
                refusal,
            }
        })?;
        scanned_per_line[line] += 1;
    }
    let mut items_checked = Vec::with_capacity(lines_count);
    for item in &order.items {
        items_checked
            .push(super::sku::get(conn, &item.sku)?.is_some_and(|s| s.check_items_at_handover));
    }
    let refusals: Vec<pickup::LineRefusal> = request.refusals.iter().map(Into::into).collect();
    let weighings: Vec<pickup::LineWeighing> = request.weighings.iter().map(Into::into).collect();
    let partial: Vec<pickup::LineQuantity> = request.partial.iter().map(Into::into).collect();
    let report = pickup::HandoverReport {
        refusals: &refusals,
        weighings: &weighings,
        scanned_per_line: &scanned_per_line,
        items_checked: &items_checked,
        partial: (!partial.is_empty()).then_some(partial.as_slice()),
    };
    let planned = pickup::plan_handover_lines(&open_order, &report)
        .map_err(|refusal| HandoverError::from_plan(order_id, refusal))?;

    let open: Vec<i64> = planned
        .iter()
        .map(|p| open_order.items[p.index].quantity - p.settled)
        .collect();
    let complete = open.iter().all(|o| *o == 0);
    let mut lines = Vec::with_capacity(lines_count);
    for plan in planned {
        let (i, item) = (plan.index, &open_order.items[plan.index]);
        conn.prepare_cached(
            "UPDATE pickup_order_line SET settled = settled + ?3 WHERE order_id = ?1 AND line_no = ?2",
        )
        .and_then(|mut st| st.execute(params![order_id, i as i64, plan.settled]))
        .map_err(sql(conn))?;
        let issue = LineMove {
            order_id,
            generation,
            part,
            line: i,
            item,
            kind: MovementKind::Issue,
            reason: "",
            now,
            today,
        };
        let lots = take_from_stock(conn, &issue, plan.handed_over)?;
        let refused_id = format!("{order_id}-refused");
        for (quantity, reason) in &plan.losses {
            let loss = LineMove {
                order_id: &refused_id,
                generation,
                part,
                line: i,
                item,
                kind: MovementKind::Loss,
                reason,
                now,
                today,
            };
            take_from_stock(conn, &loss, *quantity)?;
        }
        lines.push(HandoverLine {
            sku: item.sku.clone(),
            lot: item.lot.clone().or_else(|| lots.first().cloned()),
            ordered: order.items[i].quantity,
            handed_over: plan.handed_over,
            refused: plan.refused,
            refused_to: plan.refused_to,
            weighed_g: plan.weighed_g,
            price_difference_cents: plan.price_difference_cents,
        });
    }
    // A refusal that hands nothing over (the customer is still at the counter) keeps the code
    // check, so the rest can follow at once; anything leaving uses the check up.
    if complete || lines.iter().any(|l| l.handed_over > 0) {
        conn.prepare_cached("DELETE FROM pickup_check_pass WHERE order_id = ?1")
            .and_then(|mut st| st.execute([order_id]))
            .map_err(sql(conn))?;
    }
    for code in &request.trace_codes {
        conn.prepare_cached("UPDATE trace_code SET status = 'handed_over', order_id = ?2, updated_at = ?3 WHERE code = ?1")
            .and_then(|mut st| st.execute(params![code, order_id, now.millis()]))
            .map_err(sql(conn))?;
    }
    let handover = Handover {
        order_id: order_id.into(),
        station: station.into(),
        staff: request
            .staff
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        at: now,
        lines,
        trace_codes: request.trace_codes.clone(),
        open: if complete { vec![] } else { open },
    };
    if !complete || part > 0 {
        conn.prepare_cached(
            "INSERT INTO handover_part (order_id, part, station, at, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut st| {
            st.execute(params![
                order_id,
                part,
                station,
                now.millis(),
                stored::encode_handover(&handover)
            ])
        })
        .map_err(sql(conn))?;
    }
    if !complete {
        // The rest stays open: not collected (the report counts the order once it is), and
        // a later handover needs a new code check.
        conn.prepare_cached(
            "UPDATE pickup_order SET status = 'partially_collected', collected_at = NULL, collected_by = NULL
             WHERE order_id = ?1",
        )
        .and_then(|mut st| st.execute([order_id]))
        .map_err(sql(conn))?;
        outbox::append(
            conn,
            &DomainEvent::PickupPartlyHandedOver {
                handover: handover.clone(),
            },
            now,
        )?;
        return Ok(handover);
    }
    // Collected whole: the handover (kept and sent upstream) is the sum of its parts.
    let handover = if part > 0 {
        merged_parts(conn, order_id, handover)?
    } else {
        handover
    };
    conn.prepare_cached(
        "INSERT INTO handover (order_id, station, at, body) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut st| {
        st.execute(params![
            order_id,
            station,
            now.millis(),
            stored::encode_handover(&handover)
        ])
    })
    .map_err(sql(conn))?;
    outbox::append(
        conn,
        &DomainEvent::PickupHandedOver {
            handover: handover.clone(),
        },
        now,
    )?;
    Ok(handover)
}

/// What each line of `order_id` has settled (handed over or refused) in earlier parts.
pub fn settled_per_line(
    conn: &Connection,
    order_id: &str,
    lines: usize,
) -> Result<Vec<i64>, StoreError> {
    let mut settled = vec![0; lines];
    let mut st = conn
        .prepare_cached("SELECT line_no, settled FROM pickup_order_line WHERE order_id = ?1")
        .map_err(sql(conn))?;
    let rows = st
        .query_map([order_id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(sql(conn))?;
    for (line, value) in rows {
        if let Some(slot) = usize::try_from(line).ok().and_then(|l| settled.get_mut(l)) {
            *slot = value;
        }
    }
    Ok(settled)
}

/// What each line of `order_id` has had refused in earlier parts (the parts of an order not
/// collected yet), and where the goods went (the counter shows it in words).
pub fn refused_per_line(
    conn: &Connection,
    order_id: &str,
    lines: usize,
) -> Result<Vec<(i64, Option<hub_core::event::RefusedTo>)>, StoreError> {
    let bodies: Vec<String> = conn
        .prepare_cached("SELECT body FROM handover_part WHERE order_id = ?1 ORDER BY part")
        .and_then(|mut st| {
            st.query_map([order_id], |r| r.get(0))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql(conn))?;
    let mut refused = vec![(0, None); lines];
    for body in bodies {
        // A part this version cannot read shows no refusal; the handover itself reads it.
        let Ok(part) = stored::decode_handover(&body) else {
            continue;
        };
        for (slot, line) in refused.iter_mut().zip(&part.lines) {
            slot.0 += line.refused;
            slot.1 = slot.1.or(line.refused_to);
        }
    }
    Ok(refused)
}

/// The whole handover of an order collected in parts: every part's lines added up (the
/// last part's station, staff and time), every trace code.
fn merged_parts(conn: &Connection, order_id: &str, last: Handover) -> Result<Handover, StoreError> {
    let bodies: Vec<String> = conn
        .prepare_cached("SELECT body FROM handover_part WHERE order_id = ?1 ORDER BY part")
        .and_then(|mut st| {
            st.query_map([order_id], |r| r.get(0))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql(conn))?;
    let mut whole = Handover {
        lines: last
            .lines
            .iter()
            .map(|l| HandoverLine {
                handed_over: 0,
                refused: 0,
                refused_to: None,
                weighed_g: None,
                price_difference_cents: None,
                ..l.clone()
            })
            .collect(),
        trace_codes: vec![],
        open: vec![],
        ..last
    };
    for body in bodies {
        let part = stored::decode_handover(&body).map_err(|e| {
            sql(conn)(rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                format!("handover part of order {order_id}: {e}").into(),
            ))
        })?;
        for (line, of_part) in whole.lines.iter_mut().zip(&part.lines) {
            line.handed_over += of_part.handed_over;
            line.refused += of_part.refused;
            line.refused_to = line.refused_to.or(of_part.refused_to);
            line.weighed_g = line.weighed_g.or(of_part.weighed_g);
            line.price_difference_cents = line
                .price_difference_cents
                .or(of_part.price_difference_cents);
            if line.lot.is_none() {
                line.lot = of_part.lot.clone();
            }
        }
        whole.trace_codes.extend(part.trace_codes);
    }
    Ok(whole)
}

/// Which batch to take each order line from: the reserved lot, or first-expiry-first-out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PickHint {
    pub sku: String,
    pub quantity: i64,
    pub lot: Option<String>,
    pub expiry: Option<String>,
}

/// The pick list for an order on the site's day `today`, first-expiry-first-out from lots
/// that have not expired where no lot is reserved.
pub fn pick_list(
    conn: &Connection,
    order_id: &str,
    today: NaiveDate,
) -> Result<Vec<PickHint>, StoreError> {
    let Some(order) = order(conn, order_id)? else {
        return Ok(vec![]);
    };
    let settled = settled_per_line(conn, order_id, order.items.len())?;
    let mut hints = Vec::new();
    for (item, settled) in order.items.iter().zip(settled) {
        let batches = fefo_batches(conn, &item.sku, today)?;
        let (lot, expiry) = match &item.lot {
            Some(lot) => (
                Some(lot.clone()),
                batches
                    .iter()
                    .find(|b| &b.0 == lot)
                    .and_then(|b| b.1.clone()),
            ),
            None => batches
                .first()
                .map(|b| (Some(b.0.clone()), b.1.clone()))
                .unwrap_or((None, None)),
        };
        hints.push(PickHint {
            sku: item.sku.to_string(),
            // What is still open: less what earlier parts handed over or refused.
            quantity: item.quantity - settled,
            lot,
            expiry,
        });
    }
    Ok(hints)
}

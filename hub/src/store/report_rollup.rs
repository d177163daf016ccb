//! Per-site-day rollups of the report's journal figures, so that `hub report`
//! and the dashboard read one small record per closed day instead of the whole journal.
//!
//! **What a record holds.** A closed site day's record is the report's own per-day state
//! ([`DayState`]), exactly what the report builds from the journal for that day: for each SKU
//! listed by the end of the day its end-of-day balance, whether it had history, moved, was
//! stocked (stock at the start or a receipt), sold, ended a movement at or below zero
//! (forecast censoring), and its received / handed-over / lost quantities; the day's receipts;
//! the lots on hand at the end of the day counted by expiry date (near-expiry share for any
//! warning days); and, for the order fill rate, the orders collected that day (a count and a
//! fingerprint of their ids) with the units the journal had handed over for them. Figures are
//! made from these records at report time with the master data's unit kinds, the stored
//! forecasts and the settings of the request, by the same code whether a day came from a
//! record or from the journal, so the figures are identical.
//!
//! **Shape: one serialized record per day, not a row per (day, SKU).** The report needs the
//! whole per-day state at once (distinct SKUs stocked and sold over the period are a union of
//! the days' flags, the forecast accuracy sums in SKU order), so one row per day is read in
//! one B-tree step, written in one insert (a few pages on the SD card once a day), versioned
//! as a whole ([`ROLLUP_VERSION`]), and cannot be half written.
//!
//! **The checkpoint and what the records cover.** One state row says which site days have
//! records (`from_day ..= through_day`, in `zone`), the journal sequence they cover
//! (`covered_seq`: every row with a sequence up to it and dated up to the end of
//! `through_day` is in them), the smallest sequence up to `covered_seq` of a row dated after
//! `through_day` (`next_seq`), and the fold state at the end of `through_day` (SKU balances,
//! lots with stock and their expiry) from which the open day is computed. Journal sequences
//! only grow, so what arrived later is the journal's tail after `min(next_seq, covered_seq +
//! 1)`, a range of the primary key: no write per movement, no trigger. A tail row dated in a
//! covered day (a late sync, an import, a back-dated entry) means the records are stale: the
//! report then computes from the whole journal and the next refresh rebuilds every record.
//! A record or state of another version, another time zone, or that cannot be parsed is not
//! trusted either (the whole journal, then a rebuild).
//!
//! **Who writes them.** [`plan`] (on a reader) and [`store`] (in the writer's transaction):
//! the daemon beside its daily forecast job, `hub report` and the dashboard before they
//! compute (so a hub that was off at midnight catches up on its first report). A refresh
//! rolls up the closed days since the last one from the checkpoint and the tail, or, when
//! there is no usable state, rebuilds the last [`HORIZON_DAYS`] days from the whole journal.
//! Today is never rolled up. The figures that change without a journal movement after a day
//! closed (holds released, disputes answered, pickups collected late, handovers) stay live
//! queries in `report`; an undone handover both writes `return` rows (added from the tail) and
//! takes its order out of its collection day (the fingerprint no longer matches: that day's
//! units handed over are then looked up by reference, as for the open day).

use super::report_journal::{Collected, JOURNAL_SQL, ORDER_REFERENCE};
use super::{StoreError, sql_error};
use chrono::{Datelike, NaiveDate};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::{BTreeMap, HashMap};

/// The records' format; another version is rebuilt, never read.
pub const ROLLUP_VERSION: i64 = 1;

/// Days a rebuild rolls up (the rows before them are folded into the first day's opening
/// state); a report starting earlier reads the whole journal. Bounded so that a rebuild keeps
/// at most this many days of movements in memory.
pub const HORIZON_DAYS: u64 = 45;

/// Days of records kept; older ones are deleted by the refresh.
const KEEP_DAYS: u64 = 400;

/// One SKU's journal figures on one site day (listed SKUs only).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct SkuDay {
    #[serde(rename = "k")]
    pub sku: String,
    /// End-of-day balance.
    #[serde(rename = "b")]
    pub balance: i64,
    /// Bit flags, see the `SKU_*` constants.
    #[serde(rename = "f")]
    pub flags: u8,
    #[serde(rename = "r")]
    pub received: i64,
    #[serde(rename = "i")]
    pub issued: i64,
    #[serde(rename = "l")]
    pub lost: i64,
}

/// Listed before the day began.
pub(super) const SKU_HAD_HISTORY: u8 = 1;
/// Had a movement on the day.
pub(super) const SKU_MOVED: u8 = 2;
/// Had stock at the start of the day or a receipt during it.
pub(super) const SKU_STOCKED: u8 = 4;
/// Had an issue movement.
pub(super) const SKU_SOLD: u8 = 8;
/// Moved, and a movement took its stock to zero or below.
pub(super) const SKU_CENSORED: u8 = 16;

impl SkuDay {
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Orders collected on a day (by `collected_at`) when the record was made: how many, a
/// fingerprint of their ids, the units they ordered (a collected order's lines are never
/// changed: `pickup_orders::upsert` refuses), and the units the journal (up to the state's
/// covered sequence) handed over for them.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct DayFill {
    #[serde(rename = "o")]
    pub orders: i64,
    #[serde(rename = "h")]
    pub fingerprint: u64,
    #[serde(rename = "q")]
    pub ordered: i64,
    #[serde(rename = "u")]
    pub handed: i64,
}

/// The report's per-day state from the journal.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct DayState {
    /// Receipts less reversed receipts.
    #[serde(rename = "r")]
    pub receipts: i64,
    /// SKUs listed by the end of the day, by code.
    #[serde(rename = "s")]
    pub skus: Vec<SkuDay>,
    /// Lots on hand at the end of the day with a readable expiry: (expiry as days from the
    /// common era, lots).
    #[serde(rename = "e")]
    pub lots_by_expiry: Vec<(i32, i64)>,
    #[serde(rename = "f")]
    pub fill: DayFill,
}

impl DayState {
    /// Lots on hand at the end of `day` expiring within `warn_days` ÷ lots on hand with an
    /// expiry date.
    pub fn near_expiry(&self, day: NaiveDate, warn_days: i64) -> Option<f64> {
        let today = i64::from(day.num_days_from_ce());
        let (mut on_hand, mut near) = (0i64, 0i64);
        for (expiry, lots) in &self.lots_by_expiry {
            on_hand += lots;
            if i64::from(*expiry) - today <= warn_days {
                near += lots;
            }
        }
        (on_hand > 0).then(|| near as f64 / on_hand as f64)
    }
}

/// A movement's kind, as far as the report tells them apart.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Receipt,
    Issue,
    Loss,
    /// A supervisor's reversal of a receipt: the receipt no longer counts.
    ReceiptReversal,
    Other,
}

/// A lot index meaning "no lot".
const NO_LOT: u32 = u32::MAX;

/// One journal row, its texts replaced by indices.
#[derive(Clone, Copy)]
pub(super) struct Move {
    sku: u32,
    lot: u32,
    kind: Kind,
    quantity: i64,
    delta: i64,
    /// Time, then journal order.
    order: (i64, i64),
}

/// A lot seen in the journal: its expiry is the one its earliest movement carries.
struct Lot {
    first: (i64, i64),
    expiry: Option<String>,
    expiry_day: Option<i32>,
    balance: i64,
}

/// The journal rows the report reads, with the sequence.
const ROW_COLUMNS: &str = "journal_seq, sku, lot, expiry, kind, quantity, delta, at, reference";

/// The running state of the fold: SKUs and lots interned, balances.
pub(super) struct Fold {
    sku_index: HashMap<String, u32>,
    sku_names: Vec<String>,
    lot_index: Vec<HashMap<String, u32>>,
    lots: Vec<Lot>,
    /// SKU → balance; `None` until the SKU's first movement.
    balance: Vec<Option<i64>>,
    /// Resumed from a checkpoint that keeps lots with stock only: a lot it does not hold is
    /// looked up among the rows it covered (sequence up to the first, dated before the second).
    resumed: Option<(i64, i64)>,
}

/// A journal row as read: its kind and whether it is a `return`.
fn row_kind(r: &rusqlite::Row) -> rusqlite::Result<(Kind, bool)> {
    let kind = match r.get_ref(4)?.as_str()? {
        "receipt" => Kind::Receipt,
        "issue" => Kind::Issue,
        "loss" => Kind::Loss,
        "adjustment"
            if r.get_ref(8)?
                .as_str()?
                .starts_with(super::receipt_reversal::REVERSAL_REFERENCE) =>
        {
            Kind::ReceiptReversal
        }
        _ => Kind::Other,
    };
    let undone = kind == Kind::Other && r.get_ref(4)?.as_str()? == "return";
    Ok((kind, undone))
}

/// The order an issue or return row is for, and its signed units (issue +, return −).
fn order_units<'r>(
    r: &'r rusqlite::Row,
    kind: Kind,
    undone: bool,
) -> rusqlite::Result<Option<(&'r str, i64)>> {
    if kind != Kind::Issue && !undone {
        return Ok(None);
    }
    let Some(order) = r.get_ref(8)?.as_str()?.strip_prefix(ORDER_REFERENCE) else {
        return Ok(None);
    };
    let quantity: i64 = r.get(5)?;
    Ok(Some((order, if undone { -quantity } else { quantity })))
}

impl Fold {
    fn new(codes: impl Iterator<Item = String>) -> Fold {
        let mut f = Fold {
            sku_index: HashMap::new(),
            sku_names: Vec::new(),
            lot_index: Vec::new(),
            lots: Vec::new(),
            balance: Vec::new(),
            resumed: None,
        };
        for code in codes {
            f.sku(&code);
        }
        f
    }

    fn sku(&mut self, code: &str) -> u32 {
        if let Some(i) = self.sku_index.get(code) {
            return *i;
        }
        let i = self.sku_names.len() as u32;
        self.sku_index.insert(code.to_owned(), i);
        self.sku_names.push(code.to_owned());
        self.lot_index.push(HashMap::new());
        self.balance.push(None);
        i
    }

    fn new_lot(&mut self, sku: u32, lot: &str, first: (i64, i64), expiry: Option<String>) -> u32 {
        let i = self.lots.len() as u32;
        self.lot_index[sku as usize].insert(lot.to_owned(), i);
        let expiry_day = expiry_day(expiry.as_deref());
        self.lots.push(Lot {
            first,
            expiry,
            expiry_day,
            balance: 0,
        });
        i
    }

    /// Interns the row's SKU and lot (the lot's expiry from its earliest row) and returns its
    /// move.
    fn intern(
        &mut self,
        conn: &Connection,
        r: &rusqlite::Row,
        kind: Kind,
    ) -> rusqlite::Result<Move> {
        let (seq, at): (i64, i64) = (r.get(0)?, r.get(7)?);
        let sku = self.sku(r.get_ref(1)?.as_str()?);
        let lot = match r.get_ref(2)?.as_str_or_null()? {
            None => NO_LOT,
            Some(lot) => {
                let i = match self.lot_index[sku as usize].get(lot).copied() {
                    Some(i) => i,
                    None => {
                        // A lot the checkpoint left out (no stock): its earliest covered row.
                        let earlier = match self.resumed {
                            Some((covered, before)) => earliest_row(
                                conn,
                                &self.sku_names[sku as usize],
                                lot,
                                covered,
                                before,
                            )?,
                            None => None,
                        };
                        match earlier {
                            Some((first, expiry)) => self.new_lot(sku, lot, first, expiry),
                            None => self.new_lot(sku, lot, (i64::MAX, i64::MAX), None),
                        }
                    }
                };
                let l = &mut self.lots[i as usize];
                if (at, seq) < l.first {
                    l.first = (at, seq);
                    l.expiry = r.get_ref(3)?.as_str_or_null()?.map(str::to_owned);
                    l.expiry_day = expiry_day(l.expiry.as_deref());
                }
                i
            }
        };
        Ok(Move {
            sku,
            lot,
            kind,
            quantity: r.get(5)?,
            delta: r.get(6)?,
            order: (at, seq),
        })
    }

    fn apply(&mut self, m: &Move) {
        *self.balance[m.sku as usize].get_or_insert(0) += m.delta;
        if m.lot != NO_LOT {
            self.lots[m.lot as usize].balance += m.delta;
        }
    }

    /// Folds one day's moves (in time order) and returns the day's state.
    fn day(&mut self, moves: &[Move]) -> DayState {
        let n = self.sku_names.len();
        let mut flags = vec![0u8; n];
        let mut sums = vec![(0i64, 0i64, 0i64); n];
        let mut receipts = 0i64;
        for (sku, b) in self.balance.iter().enumerate() {
            if b.is_some() {
                flags[sku] |= SKU_HAD_HISTORY;
            }
            if b.is_some_and(|b| b > 0) {
                flags[sku] |= SKU_STOCKED;
            }
        }
        for m in moves {
            self.apply(m);
            let sku = m.sku as usize;
            flags[sku] |= SKU_MOVED;
            if m.delta < 0 && self.balance[sku].is_some_and(|b| b <= 0) {
                flags[sku] |= SKU_CENSORED;
            }
            let s = &mut sums[sku];
            match m.kind {
                Kind::Receipt => {
                    s.0 += m.quantity;
                    receipts += 1;
                    flags[sku] |= SKU_STOCKED;
                }
                Kind::Issue => {
                    s.1 += m.quantity;
                    flags[sku] |= SKU_SOLD;
                }
                Kind::Loss => s.2 += m.quantity,
                Kind::ReceiptReversal => {
                    s.0 += m.delta;
                    receipts -= 1;
                }
                Kind::Other => {}
            }
        }
        let mut skus: Vec<SkuDay> = self
            .balance
            .iter()
            .enumerate()
            .filter_map(|(sku, b)| {
                let balance = (*b)?;
                let (received, issued, lost) = sums[sku];
                Some(SkuDay {
                    sku: self.sku_names[sku].clone(),
                    balance,
                    flags: flags[sku],
                    received,
                    issued,
                    lost,
                })
            })
            .collect();
        skus.sort_by(|a, b| a.sku.cmp(&b.sku));
        let mut by_expiry: BTreeMap<i32, i64> = BTreeMap::new();
        for lot in &self.lots {
            if let Some(e) = lot.expiry_day.filter(|_| lot.balance > 0) {
                *by_expiry.entry(e).or_insert(0) += 1;
            }
        }
        DayState {
            receipts,
            skus,
            lots_by_expiry: by_expiry.into_iter().collect(),
            fill: DayFill::default(),
        }
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            skus: self
                .sku_names
                .iter()
                .zip(&self.balance)
                .map(|(code, b)| (code.clone(), *b))
                .collect(),
            lots: self
                .lot_index
                .iter()
                .enumerate()
                .flat_map(|(sku, lots)| lots.iter().map(move |(lot, i)| (sku, lot, *i)))
                .filter(|(_, _, i)| self.lots[*i as usize].balance != 0)
                .map(|(sku, lot, i)| {
                    let l = &self.lots[i as usize];
                    (
                        self.sku_names[sku].clone(),
                        lot.clone(),
                        l.first.0,
                        l.first.1,
                        l.expiry.clone(),
                        l.balance,
                    )
                })
                .collect(),
        }
    }

    fn resume(cp: Checkpoint, covered_seq: i64, before: i64) -> Fold {
        let mut f = Fold::new(std::iter::empty());
        for (code, balance) in cp.skus {
            let i = f.sku(&code);
            f.balance[i as usize] = balance;
        }
        for (code, lot, at, seq, expiry, balance) in cp.lots {
            let sku = f.sku(&code);
            let i = f.new_lot(sku, &lot, (at, seq), expiry);
            f.lots[i as usize].balance = balance;
        }
        f.resumed = Some((covered_seq, before));
        f
    }
}

fn expiry_day(expiry: Option<&str>) -> Option<i32> {
    expiry
        .and_then(|e| e.parse::<NaiveDate>().ok())
        .map(|d| d.num_days_from_ce())
}

/// A lot's earliest row: (time, sequence) and its expiry.
type FirstRow = ((i64, i64), Option<String>);

/// The earliest row (time, then sequence) of a lot among the rows with a sequence up to
/// `covered` dated before `before`, and its expiry.
fn earliest_row(
    conn: &Connection,
    sku: &str,
    lot: &str,
    covered: i64,
    before: i64,
) -> rusqlite::Result<Option<FirstRow>> {
    conn.prepare_cached(
        "SELECT at, journal_seq, expiry FROM movement
         WHERE sku = ?1 AND lot = ?2 AND journal_seq <= ?3 AND at < ?4
         ORDER BY at, journal_seq LIMIT 1",
    )?
    .query_row(params![sku, lot, covered, before], |r| {
        Ok(((r.get(0)?, r.get(1)?), r.get(2)?))
    })
    .optional()
}

/// A lot of the checkpoint: SKU, lot, first at, first sequence, expiry, balance.
type CheckpointLot = (String, String, i64, i64, Option<String>, i64);

/// The fold state at the end of the last day with a record: SKU balances, and the lots with
/// stock (`sku, lot, first at, first sequence, expiry, balance`).
#[derive(serde::Serialize, serde::Deserialize)]
struct Checkpoint {
    #[serde(rename = "s")]
    skus: Vec<(String, Option<i64>)>,
    #[serde(rename = "l")]
    lots: Vec<CheckpointLot>,
}

/// The period's states folded from the whole journal, and what the scan saw.
pub(super) struct Folded {
    pub days: Vec<DayState>,
    fold: Fold,
    /// The largest journal sequence.
    max_seq: i64,
    /// The smallest sequence of a row dated at or after the last day's end.
    first_seq_after: Option<i64>,
}

/// Reads the whole journal in storage order (no sort in SQL): rows before `start` make the
/// opening state, each of the days (their ends in `day_ends`) is folded from its rows in time
/// order; every issue and return row, whatever its date, adds to the units handed over of the
/// `collected` order it refers to.
pub(super) fn fold_journal(
    conn: &Connection,
    codes: impl Iterator<Item = String>,
    start: i64,
    day_ends: &[i64],
    collected: &mut Collected,
) -> rusqlite::Result<Folded> {
    let end = day_ends.last().copied().unwrap_or(start);
    let mut fold = Fold::new(codes);
    let mut days: Vec<Vec<Move>> = vec![Vec::new(); day_ends.len()];
    let (mut max_seq, mut first_seq_after) = (0i64, None::<i64>);
    let mut st = conn.prepare(JOURNAL_SQL)?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let (seq, at): (i64, i64) = (r.get(0)?, r.get(7)?);
        max_seq = max_seq.max(seq);
        let (kind, undone) = row_kind(r)?;
        if let Some((order, units)) = order_units(r, kind, undone)?
            && let Some(i) = collected.index.get(order)
        {
            collected.rows[*i].2 += units;
        }
        if at >= end {
            first_seq_after = Some(first_seq_after.map_or(seq, |s: i64| s.min(seq)));
            continue;
        }
        let m = fold.intern(conn, r, kind)?;
        if at < start {
            fold.apply(&m);
        } else {
            let d = day_ends.partition_point(|e| *e <= at);
            if let Some(day) = days.get_mut(d) {
                day.push(m);
            }
        }
    }
    let days = fold_days(&mut fold, days);
    Ok(Folded {
        days,
        fold,
        max_seq,
        first_seq_after,
    })
}

/// Folds each day's moves, sorted into time order when they are not.
fn fold_days(fold: &mut Fold, days: Vec<Vec<Move>>) -> Vec<DayState> {
    days.into_iter()
        .map(|mut moves| {
            if !moves.is_sorted_by_key(|m| m.order) {
                moves.sort_by_key(|m| m.order);
            }
            fold.day(&moves)
        })
        .collect()
}

/// The state row.
struct StateRow {
    version: i64,
    zone: String,
    from_day: NaiveDate,
    through_day: NaiveDate,
    covered_seq: i64,
    next_seq: i64,
    checkpoint: String,
}

impl StateRow {
    fn tail_from(&self) -> i64 {
        self.next_seq.min(self.covered_seq + 1)
    }
}

fn read_state(conn: &Connection) -> rusqlite::Result<Option<StateRow>> {
    conn.prepare_cached(
        "SELECT version, zone, from_day, through_day, covered_seq, next_seq, checkpoint
         FROM report_rollup_state WHERE id = 1",
    )?
    .query_row([], |r| {
        let day = |i: usize| -> rusqlite::Result<Option<NaiveDate>> {
            Ok(r.get_ref(i)?.as_str()?.parse().ok())
        };
        Ok((
            r.get(0)?,
            r.get(1)?,
            day(2)?,
            day(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
        ))
    })
    .optional()
    .map(|row| {
        row.and_then(
            |(version, zone, from, through, covered_seq, next_seq, checkpoint)| {
                Some(StateRow {
                    version,
                    zone,
                    from_day: from?,
                    through_day: through?,
                    covered_seq,
                    next_seq,
                    checkpoint,
                })
            },
        )
    })
}

/// The state row if it can be trusted for `zone`.
fn usable_state(conn: &Connection, zone: chrono_tz::Tz) -> rusqlite::Result<Option<StateRow>> {
    Ok(read_state(conn)?.filter(|s| {
        s.version == ROLLUP_VERSION && s.zone == zone.name() && s.from_day <= s.through_day
    }))
}

/// A 64-bit FNV-1a hash of an order id (the fingerprint of a day's collected orders is the
/// wrapping sum of its orders').
fn order_hash(order_id: &str) -> u64 {
    order_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The orders collected on each of the days (their ends in `day_ends`, from `start`):
/// (orders, fingerprint) per day.
fn fingerprints(collected: &Collected, start: i64, day_ends: &[i64]) -> Vec<(i64, u64)> {
    let mut out = vec![(0i64, 0u64); day_ends.len()];
    for (order, i) in &collected.index {
        let at = collected.rows[*i].0;
        if at < start {
            continue;
        }
        let d = day_ends.partition_point(|e| *e <= at);
        if let Some(f) = out.get_mut(d) {
            f.0 += 1;
            f.1 = f.1.wrapping_add(order_hash(order));
        }
    }
    out
}

/// Units an order ordered (its lines).
fn ordered_units(conn: &Connection, order_id: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "SELECT COALESCE(SUM(quantity), 0) FROM pickup_order_line WHERE order_id = ?1",
    )?
    .query_row([order_id], |r| r.get(0))
}

/// Units handed over for an order: its issue rows less the returns of its undone handovers,
/// whenever recorded (the journal's reference index).
fn handed_by_reference(conn: &Connection, order_id: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "SELECT COALESCE(SUM(CASE kind WHEN 'issue' THEN quantity ELSE -quantity END), 0)
         FROM movement WHERE reference = ?1 AND kind IN ('issue', 'return')",
    )?
    .query_row([format!("{ORDER_REFERENCE}{order_id}")], |r| r.get(0))
}

/// Whether the report over days from `from` may read rollups (a usable state covering it):
/// then it reads the collected orders' ids only ([`Collected::read_ids`]).
pub(super) fn usable_for(
    conn: &Connection,
    from: NaiveDate,
    zone: chrono_tz::Tz,
) -> rusqlite::Result<bool> {
    Ok(usable_state(conn, zone)?.is_some_and(|s| s.from_day <= from))
}

/// The period's days from the rollups, when they can be used.
pub(super) struct Rolled {
    pub days: Vec<DayState>,
    /// Units ordered and units handed over for the orders collected on each day.
    pub ordered: Vec<i64>,
    pub handed: Vec<i64>,
    /// Days served from records.
    pub from_records: usize,
}

/// The days `from ..` (their ends in `day_ends`) from the records and the journal's tail
/// (the days after the last record folded live from the checkpoint), or `None` when the
/// records cannot be used (none, another version or zone, the period starts before them, a
/// record missing or unreadable, or a tail row dated in a covered day): the caller then reads
/// the whole journal.
pub(super) fn rolled_period(
    conn: &Connection,
    from: NaiveDate,
    zone: chrono_tz::Tz,
    day_ends: &[i64],
    collected: &Collected,
) -> Result<Option<Rolled>, StoreError> {
    let sql = sql_error(conn);
    let Some(state) = usable_state(conn, zone).map_err(&sql)? else {
        return Ok(None);
    };
    if from < state.from_day {
        return Ok(None);
    }
    let days = day_ends.len();
    let start = crate::clock::day_start(zone, from).millis();
    let end = day_ends.last().copied().unwrap_or(start);
    let covered_end =
        crate::clock::day_start(zone, state.through_day + chrono::Days::new(1)).millis();
    // Days of the period with a record.
    let recorded = day_ends.iter().take_while(|e| **e <= covered_end).count();
    let mut out: Vec<DayState> = Vec::with_capacity(days);
    if recorded > 0 {
        let last = from + chrono::Days::new(recorded as u64);
        let mut st = conn
            .prepare_cached(
                "SELECT day, version, record FROM report_rollup WHERE day >= ?1 AND day < ?2 ORDER BY day",
            )
            .map_err(&sql)?;
        let mut rows = st
            .query(params![from.to_string(), last.to_string()])
            .map_err(&sql)?;
        while let Some(r) = rows.next().map_err(&sql)? {
            let expected = from + chrono::Days::new(out.len() as u64);
            let day = r
                .get_ref(0)
                .and_then(|v| v.as_str().map_err(Into::into))
                .map_err(&sql)?;
            let version: i64 = r.get(1).map_err(&sql)?;
            if day != expected.to_string() || version != ROLLUP_VERSION {
                return Ok(None);
            }
            let text = r
                .get_ref(2)
                .and_then(|v| v.as_str().map_err(Into::into))
                .map_err(&sql)?;
            match serde_json::from_str::<DayState>(text) {
                Ok(d) => out.push(d),
                Err(_) => return Ok(None),
            }
        }
        if out.len() != recorded {
            return Ok(None);
        }
    }
    // The tail: rows not in the records.
    let live_days = days - recorded;
    let mut fold = if live_days > 0 {
        match serde_json::from_str::<Checkpoint>(&state.checkpoint) {
            Ok(cp) => Some(Fold::resume(cp, state.covered_seq, covered_end)),
            Err(_) => return Ok(None),
        }
    } else {
        None
    };
    let live_ends = &day_ends[recorded..];
    let live_start = if recorded > 0 {
        day_ends[recorded - 1]
    } else {
        start
    };
    let mut live: Vec<Vec<Move>> = vec![Vec::new(); live_days];
    // Units handed over after the covered sequence for orders collected on a recorded day.
    let mut late_handed = vec![0i64; recorded];
    {
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM movement WHERE journal_seq >= ?1"
            ))
            .map_err(&sql)?;
        let mut rows = st.query([state.tail_from()]).map_err(&sql)?;
        while let Some(r) = rows.next().map_err(&sql)? {
            let (seq, at): (i64, i64) = (r.get(0).map_err(&sql)?, r.get(7).map_err(&sql)?);
            if seq > state.covered_seq && at < covered_end {
                // Dated in a day the records cover, recorded after them: stale.
                return Ok(None);
            }
            let (kind, undone) = row_kind(r).map_err(&sql)?;
            if seq > state.covered_seq
                && let Some((order, units)) = order_units(r, kind, undone).map_err(&sql)?
                && let Some(i) = collected.index.get(order)
            {
                let at = collected.rows[*i].0;
                let d = day_ends.partition_point(|e| *e <= at);
                if let Some(h) = late_handed.get_mut(d) {
                    *h += units;
                }
            }
            if at < covered_end || at >= end {
                continue;
            }
            let Some(fold) = fold.as_mut() else { continue };
            let m = fold.intern(conn, r, kind).map_err(&sql)?;
            if at < live_start {
                fold.apply(&m);
            } else {
                let d = live_ends.partition_point(|e| *e <= at);
                if let Some(day) = live.get_mut(d) {
                    day.push(m);
                }
            }
        }
    }
    if let Some(fold) = fold.as_mut() {
        out.extend(fold_days(fold, live));
    }
    // Units ordered and handed over per day: a record's, while its day's collected orders are
    // the same, plus what was handed over after it; otherwise (and for the live days) each
    // order's lines and its movements by reference.
    let prints = fingerprints(collected, start, day_ends);
    let mut handed = vec![0i64; days];
    let mut ordered = vec![0i64; days];
    let mut by_reference = vec![false; days];
    for (d, &(orders, fingerprint)) in prints.iter().enumerate() {
        if d < recorded && out[d].fill.orders == orders && out[d].fill.fingerprint == fingerprint {
            handed[d] = out[d].fill.handed + late_handed[d];
            ordered[d] = out[d].fill.ordered;
        } else {
            by_reference[d] = true;
        }
    }
    if by_reference.iter().any(|b| *b) {
        for (order, i) in &collected.index {
            let at = collected.rows[*i].0;
            let d = day_ends.partition_point(|e| *e <= at);
            if by_reference.get(d).copied().unwrap_or(false) {
                handed[d] += handed_by_reference(conn, order).map_err(&sql)?;
                ordered[d] += ordered_units(conn, order).map_err(&sql)?;
            }
        }
    }
    Ok(Some(Rolled {
        days: out,
        ordered,
        handed,
        from_records: recorded,
    }))
}

/// What a refresh will write.
pub struct RollupPlan {
    /// The state's (covered sequence, last day) the plan was made from; `None` for a
    /// rebuild from nothing usable.
    basis: Option<(i64, NaiveDate)>,
    rebuild: bool,
    records: Vec<(NaiveDate, String)>,
    /// Handed-over units to add to older records' fill (late returns and parts).
    fill_updates: Vec<(NaiveDate, i64)>,
    zone: String,
    from_day: NaiveDate,
    through_day: NaiveDate,
    covered_seq: i64,
    next_seq: i64,
    checkpoint: String,
}

impl RollupPlan {
    /// Site days whose record the plan writes.
    pub fn days(&self) -> usize {
        self.records.len()
    }
}

/// Plans the refresh of the records for the site days closed at `now` (reads only): `None`
/// when they are up to date. The records since the last one are folded from the checkpoint
/// and the journal's tail; without a usable state, or when a row arrived dated in a covered
/// day, the last [`HORIZON_DAYS`] days are rebuilt from the whole journal.
pub fn plan(
    conn: &Connection,
    zone: chrono_tz::Tz,
    now: hub_core::Timestamp,
) -> Result<Option<RollupPlan>, StoreError> {
    let sql = sql_error(conn);
    // One snapshot: the tail, the collected orders and their units agree.
    let _snapshot = conn
        .is_autocommit()
        .then(|| conn.unchecked_transaction())
        .transpose()
        .map_err(&sql)?;
    let yesterday = crate::clock::site_date(zone, now) - chrono::Days::new(1);
    let state = usable_state(conn, zone).map_err(&sql)?;
    let basis = read_state(conn)
        .map_err(&sql)?
        .map(|s| (s.covered_seq, s.through_day));
    if let Some(state) = state.filter(|s| s.through_day <= yesterday)
        && records_readable(conn, &state).map_err(&sql)?
        && let Some(plan) = extend(conn, zone, &state, yesterday)?
    {
        return Ok(plan.map(|mut p| {
            p.basis = basis;
            p
        }));
    }
    rebuild(conn, zone, yesterday, basis).map(Some)
}

/// Whether every day the state covers has a record of this version that reads as a day's
/// state, and the checkpoint reads (a record that does not is rebuilt, never trusted).
fn records_readable(conn: &Connection, state: &StateRow) -> rusqlite::Result<bool> {
    let days = (state.through_day - state.from_day).num_days() + 1;
    let mut st = conn.prepare_cached(
        "SELECT version, record FROM report_rollup WHERE day >= ?1 AND day <= ?2",
    )?;
    let mut rows = st.query(params![
        state.from_day.to_string(),
        state.through_day.to_string()
    ])?;
    let mut good = 0i64;
    while let Some(r) = rows.next()? {
        let version: i64 = r.get(0)?;
        let text = r.get_ref(1)?.as_str()?;
        if version != ROLLUP_VERSION || serde_json::from_str::<DayState>(text).is_err() {
            return Ok(false);
        }
        good += 1;
    }
    Ok(good == days && serde_json::from_str::<Checkpoint>(&state.checkpoint).is_ok())
}

/// Rolls up the days after the state's last one through `yesterday` from its checkpoint and
/// the tail: `Some(None)` when up to date, `None` when the tail has a row dated in a covered
/// day (a rebuild is needed).
fn extend(
    conn: &Connection,
    zone: chrono_tz::Tz,
    state: &StateRow,
    yesterday: NaiveDate,
) -> Result<Option<Option<RollupPlan>>, StoreError> {
    let sql = sql_error(conn);
    let covered_end =
        crate::clock::day_start(zone, state.through_day + chrono::Days::new(1)).millis();
    let new_days = (yesterday - state.through_day).num_days().max(0) as usize;
    let day_ends: Vec<i64> = (1..=new_days)
        .map(|d| {
            crate::clock::day_start(zone, state.through_day + chrono::Days::new(d as u64 + 1))
                .millis()
        })
        .collect();
    let end = day_ends.last().copied().unwrap_or(covered_end);
    let Ok(cp) = serde_json::from_str::<Checkpoint>(&state.checkpoint) else {
        return Ok(None);
    };
    let mut fold = Fold::resume(cp, state.covered_seq, covered_end);
    let mut days: Vec<Vec<Move>> = vec![Vec::new(); new_days];
    let (mut max_seq, mut first_after) = (state.covered_seq, None::<i64>);
    // Late issue and return rows, for the fill of the orders' collection days.
    let mut late: HashMap<String, i64> = HashMap::new();
    {
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM movement WHERE journal_seq >= ?1"
            ))
            .map_err(&sql)?;
        let mut rows = st.query([state.tail_from()]).map_err(&sql)?;
        while let Some(r) = rows.next().map_err(&sql)? {
            let (seq, at): (i64, i64) = (r.get(0).map_err(&sql)?, r.get(7).map_err(&sql)?);
            if seq > state.covered_seq && at < covered_end {
                return Ok(None);
            }
            max_seq = max_seq.max(seq);
            let (kind, undone) = row_kind(r).map_err(&sql)?;
            if seq > state.covered_seq
                && let Some((order, units)) = order_units(r, kind, undone).map_err(&sql)?
            {
                *late.entry(order.to_owned()).or_insert(0) += units;
            }
            if at < covered_end {
                continue;
            }
            if at >= end {
                first_after = Some(first_after.map_or(seq, |s: i64| s.min(seq)));
                continue;
            }
            let m = fold.intern(conn, r, kind).map_err(&sql)?;
            let d = day_ends.partition_point(|e| *e <= at);
            if let Some(day) = days.get_mut(d) {
                day.push(m);
            }
        }
    }
    if new_days == 0 {
        return Ok(Some(None));
    }
    let mut states = fold_days(&mut fold, days);
    // The new days' collected orders, their units handed over by reference.
    let mut collected = Collected::read(conn, covered_end, end).map_err(&sql)?;
    for (order, i) in &collected.index {
        collected.rows[*i].2 = handed_by_reference(conn, order).map_err(&sql)?;
    }
    fill_days(&collected, covered_end, &day_ends, &mut states);
    // Late rows for orders collected on an older recorded day add to its fill.
    let mut fill_updates: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    for (order, units) in late {
        let at: Option<Option<i64>> = conn
            .prepare_cached("SELECT collected_at FROM pickup_order WHERE order_id = ?1")
            .and_then(|mut st| st.query_row([&order], |r| r.get(0)).optional())
            .map_err(&sql)?;
        if let Some(Some(at)) = at
            && at < covered_end
        {
            let day = crate::clock::site_date(zone, hub_core::Timestamp(at));
            if day >= state.from_day {
                *fill_updates.entry(day).or_insert(0) += units;
            }
        }
    }
    let records = records_of(conn, state.through_day + chrono::Days::new(1), &states)?;
    let through_day = yesterday;
    let from_day = state
        .from_day
        .max(through_day - chrono::Days::new(KEEP_DAYS - 1));
    Ok(Some(Some(RollupPlan {
        basis: None,
        rebuild: false,
        records,
        fill_updates: fill_updates.into_iter().collect(),
        zone: zone.name().to_owned(),
        from_day,
        through_day,
        covered_seq: max_seq,
        next_seq: first_after.unwrap_or(max_seq + 1),
        checkpoint: encode(conn, &fold.checkpoint())?,
    })))
}

/// A record or checkpoint as stored (JSON).
fn encode<T: serde::Serialize>(conn: &Connection, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| sql_error(conn)(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))
}

/// Puts each collected order's units on its collection day's fill.
fn fill_days(collected: &Collected, start: i64, day_ends: &[i64], states: &mut [DayState]) {
    let prints = fingerprints(collected, start, day_ends);
    for (d, (orders, fingerprint)) in prints.into_iter().enumerate() {
        states[d].fill.orders = orders;
        states[d].fill.fingerprint = fingerprint;
    }
    for (at, ordered, handed) in &collected.rows {
        if *at < start {
            continue;
        }
        let d = day_ends.partition_point(|e| *e <= *at);
        if let Some(s) = states.get_mut(d) {
            s.fill.ordered += ordered;
            s.fill.handed += handed;
        }
    }
}

fn records_of(
    conn: &Connection,
    first: NaiveDate,
    states: &[DayState],
) -> Result<Vec<(NaiveDate, String)>, StoreError> {
    states
        .iter()
        .enumerate()
        .map(|(d, s)| Ok((first + chrono::Days::new(d as u64), encode(conn, s)?)))
        .collect()
}

/// Rebuilds the last [`HORIZON_DAYS`] days through `yesterday` from the whole journal.
fn rebuild(
    conn: &Connection,
    zone: chrono_tz::Tz,
    yesterday: NaiveDate,
    basis: Option<(i64, NaiveDate)>,
) -> Result<RollupPlan, StoreError> {
    let sql = sql_error(conn);
    let from_day = yesterday - chrono::Days::new(HORIZON_DAYS - 1);
    let start = crate::clock::day_start(zone, from_day).millis();
    let day_ends: Vec<i64> = (1..=HORIZON_DAYS)
        .map(|d| crate::clock::day_start(zone, from_day + chrono::Days::new(d)).millis())
        .collect();
    let end = day_ends.last().copied().unwrap_or(start);
    let codes: Vec<String> = conn
        .prepare_cached("SELECT code FROM sku ORDER BY code")
        .and_then(|mut st| {
            st.query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect())
        })
        .map_err(&sql)?;
    let mut collected = Collected::read(conn, start, end).map_err(&sql)?;
    let folded =
        fold_journal(conn, codes.into_iter(), start, &day_ends, &mut collected).map_err(&sql)?;
    let mut states = folded.days;
    fill_days(&collected, start, &day_ends, &mut states);
    Ok(RollupPlan {
        basis,
        rebuild: true,
        records: records_of(conn, from_day, &states)?,
        fill_updates: Vec::new(),
        zone: zone.name().to_owned(),
        from_day,
        through_day: yesterday,
        covered_seq: folded.max_seq,
        next_seq: folded.first_seq_after.unwrap_or(folded.max_seq + 1),
        checkpoint: encode(conn, &folded.fold.checkpoint())?,
    })
}

/// Writes a plan in the caller's transaction unless another refresh changed the state since
/// it was made; the number of day records written.
pub fn store(conn: &Connection, plan: &RollupPlan) -> Result<usize, StoreError> {
    let sql = sql_error(conn);
    let now_basis = read_state(conn)
        .map_err(&sql)?
        .map(|s| (s.covered_seq, s.through_day));
    if now_basis != plan.basis {
        return Ok(0);
    }
    if plan.rebuild {
        conn.execute("DELETE FROM report_rollup", [])
            .map_err(&sql)?;
    }
    for (day, record) in &plan.records {
        conn.prepare_cached(
            "INSERT INTO report_rollup (day, version, record) VALUES (?1, ?2, ?3)
             ON CONFLICT (day) DO UPDATE SET version = excluded.version, record = excluded.record",
        )
        .and_then(|mut st| st.execute(params![day.to_string(), ROLLUP_VERSION, record]))
        .map_err(&sql)?;
    }
    for (day, units) in &plan.fill_updates {
        let record: Option<String> = conn
            .prepare_cached("SELECT record FROM report_rollup WHERE day = ?1")
            .and_then(|mut st| st.query_row([day.to_string()], |r| r.get(0)).optional())
            .map_err(&sql)?;
        if let Some(mut state) = record.and_then(|r| serde_json::from_str::<DayState>(&r).ok()) {
            state.fill.handed += units;
            let text = encode(conn, &state)?;
            conn.execute(
                "UPDATE report_rollup SET record = ?2 WHERE day = ?1",
                params![day.to_string(), text],
            )
            .map_err(&sql)?;
        }
    }
    conn.execute(
        "DELETE FROM report_rollup WHERE day < ?1",
        [plan.from_day.to_string()],
    )
    .map_err(&sql)?;
    conn.prepare_cached(
        "INSERT INTO report_rollup_state (id, version, zone, from_day, through_day, covered_seq, next_seq, checkpoint)
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version, zone = excluded.zone,
             from_day = excluded.from_day, through_day = excluded.through_day,
             covered_seq = excluded.covered_seq, next_seq = excluded.next_seq,
             checkpoint = excluded.checkpoint",
    )
    .and_then(|mut st| {
        st.execute(params![
            ROLLUP_VERSION,
            plan.zone,
            plan.from_day.to_string(),
            plan.through_day.to_string(),
            plan.covered_seq,
            plan.next_seq,
            plan.checkpoint
        ])
    })
    .map_err(&sql)?;
    Ok(plan.records.len())
}

/// [`plan`] and [`store`] on one connection, in the caller's transaction (tests, the bench,
/// the CLI); the number of day records written.
pub fn refresh(
    conn: &Connection,
    zone: chrono_tz::Tz,
    now: hub_core::Timestamp,
) -> Result<usize, StoreError> {
    match plan(conn, zone, now)? {
        Some(p) => store(conn, &p),
        None => Ok(0),
    }
}

/// The rollup rows a report over the site days `from ..= to - 1` reads (the state row, the
/// period's records, the journal's tail after them), fetched with plain queries and nothing
/// computed: part of `hub bench dashboard`'s raw SQL baseline. The number of rows read.
pub fn raw_reads(conn: &Connection, from: NaiveDate, to: NaiveDate) -> Result<i64, StoreError> {
    let sql = sql_error(conn);
    let mut read = 0i64;
    let tail_from: i64 = conn
        .query_row(
            "SELECT version, zone, from_day, through_day, covered_seq, next_seq, checkpoint,
                    MIN(next_seq, covered_seq + 1)
             FROM report_rollup_state WHERE id = 1",
            [],
            |r| {
                for i in 0..7 {
                    let _ = r.get_ref(i)?;
                }
                r.get(7)
            },
        )
        .optional()
        .map_err(&sql)?
        .unwrap_or(0);
    read += 1;
    let mut each = |query: &str, args: &[&dyn rusqlite::ToSql]| -> Result<(), StoreError> {
        let mut st = conn.prepare(query).map_err(&sql)?;
        let columns = st.column_count();
        let mut rows = st.query(args).map_err(&sql)?;
        while let Some(row) = rows.next().map_err(&sql)? {
            for i in 0..columns {
                let _ = row.get_ref(i).map_err(&sql)?;
            }
            read += 1;
        }
        Ok(())
    };
    each(
        "SELECT day, version, record FROM report_rollup WHERE day >= ?1 AND day < ?2 ORDER BY day",
        &[&from.to_string(), &to.to_string()],
    )?;
    each(
        &format!("SELECT {ROW_COLUMNS} FROM movement WHERE journal_seq >= ?1"),
        &[&tail_from],
    )?;
    Ok(read)
}

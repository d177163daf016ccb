//! Receiving as stored: manifests from central, what each station observed per line, and the
//! one-transaction decision that turns observations into stock, quarantine and evidence.
//!
//! Every device input that changes a line (a label or item scan, a stable weight, a photo
//! verdict) is written here before anything acts on it, so a crash never loses a scan staff
//! saw accepted. A decision writes its record, evidence, trace-code states, receipt movements,
//! quarantine rows and outbox events together: after a crash it is wholly there or not at all.

use hub_contract::stored;
use hub_core::event::ReceivingDecision;
use hub_core::receiving::{
    CodeElement, CodeFlag, CodeKind, ItemScan, LineDecision, LineObservation, Manifest,
    ManifestLine, PhotoEvidence, ReceivingPolicy, ScanVerdict, check_scan_for_line, decide_line,
    decide_unexpected,
};
use hub_core::{
    BatchKey, DomainEvent, Gtin, Movement, MovementId, MovementKind, SkuCode, StockUnit, Timestamp,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::StoreError;
pub use super::disputes::{
    DisputeEpisode, DisputeFirstResponse, DisputeResponseRecord, dispute_episodes,
};
use super::ledger::{RecordError, record};
use super::outbox::{self, sql};

/// Why a receiving step was refused. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ReceivingError {
    #[error("delivery {0} is not known: its manifest has not arrived from central")]
    UnknownDelivery(String),
    #[error("delivery {delivery_id} has no line {line_no}")]
    UnknownLine { delivery_id: String, line_no: u32 },
    #[error("delivery {0} was cancelled by central")]
    Cancelled(String),
    #[error("delivery {0} is closed")]
    Closed(String),
    #[error("delivery {delivery_id} line {line_no} is already decided")]
    AlreadyDecided { delivery_id: String, line_no: u32 },
    #[error("station {0} has no delivery line selected: scan the crate or delivery label first")]
    NoLineSelected(String),
    #[error("'{0}' is neither a delivery label nor a crate label of an open delivery")]
    UnknownLabel(String),
    #[error(
        "delivery {delivery_id} line {line_no} has issued trace codes: scan the item's trace code, not its product barcode ({code})"
    )]
    WantsTraceCode {
        delivery_id: String,
        line_no: u32,
        code: String,
    },
    #[error("delivery {delivery_id} line {line_no} has no quarantined stock to resolve")]
    NothingHeld { delivery_id: String, line_no: u32 },
    #[error("cannot resolve {asked} of {held} held on delivery {delivery_id} line {line_no}")]
    BadQuantity {
        delivery_id: String,
        line_no: u32,
        asked: i64,
        held: i64,
    },
    #[error("SKU {0} of the manifest is unknown; SKU master data must arrive first")]
    UnknownSku(String),
    #[error("delivery {delivery_id} already has an open dispute ({note})")]
    DisputeAlreadyOpen { delivery_id: String, note: String },
    #[error("delivery {0} has no open dispute (never opened, or already settled): open one first")]
    NoOpenDispute(String),
    #[error("a dispute needs a note saying what is contested or how it was settled")]
    EmptyDisputeNote,
    #[error(
        "a count of {0} is not possible: enter the number of items counted (0 to {MAX_LINE_COUNT})"
    )]
    BadCount(i64),
    #[error("delivery {delivery_id} line {line_no}: {refusal}")]
    ReversalRefused {
        delivery_id: String,
        line_no: u32,
        refusal: hub_core::receiving_reversal::ReversalRefusal,
    },
    #[error(
        "request id {0} already reversed another line's receipt; give each new request a new id"
    )]
    ReversalRequestReused(String),
    #[error(transparent)]
    Station(#[from] crate::config::StationError),
    #[error(transparent)]
    Ledger(#[from] RecordError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What storing a manifest did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestUpsert {
    Inserted,
    Amended,
    Cancelled,
    Stale {
        stored_version: i64,
    },
    /// Received and closed already; a late amendment is not applied.
    AlreadyClosed,
}

pub use hub_contract::stored::LineRecord;

/// Stores a manifest from central, applying amendments and cancellations by version.
pub fn upsert_manifest(
    conn: &Connection,
    manifest: &Manifest,
    now: Timestamp,
) -> Result<ManifestUpsert, StoreError> {
    let stored: Option<(i64, Option<i64>)> = conn
        .query_row(
            "SELECT version, closed_at FROM delivery_manifest WHERE delivery_id = ?1",
            [&manifest.delivery_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(sql(conn))?;
    if let Some((stored_version, closed_at)) = stored {
        if stored_version >= manifest.version {
            return Ok(ManifestUpsert::Stale { stored_version });
        }
        if closed_at.is_some() {
            return Ok(ManifestUpsert::AlreadyClosed);
        }
    }
    conn.execute(
        "INSERT INTO delivery_manifest (delivery_id, supplier, body, version, cancelled, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (delivery_id) DO UPDATE SET supplier = ?2, body = ?3, version = ?4, cancelled = ?5, updated_at = ?6",
        params![
            manifest.delivery_id,
            manifest.supplier,
            stored::encode_manifest(manifest),
            manifest.version,
            manifest.cancelled,
            now.millis()
        ],
    )
    .map_err(sql(conn))?;
    Ok(match (stored, manifest.cancelled) {
        (_, true) => ManifestUpsert::Cancelled,
        (Some(_), false) => ManifestUpsert::Amended,
        (None, false) => ManifestUpsert::Inserted,
    })
}

struct Delivery {
    manifest: Manifest,
    closed: bool,
}

fn load_delivery(conn: &Connection, delivery_id: &str) -> Result<Delivery, ReceivingError> {
    let row: Option<(String, Option<i64>)> = conn
        .prepare_cached("SELECT body, closed_at FROM delivery_manifest WHERE delivery_id = ?1")
        .and_then(|mut st| {
            st.query_row([delivery_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(sql(conn))?;
    let (body, closed_at) =
        row.ok_or_else(|| ReceivingError::UnknownDelivery(delivery_id.to_owned()))?;
    let manifest: Manifest = stored::decode_manifest(&body).map_err(|e| StoreError::Sqlite {
        path: conn.path().unwrap_or_default().into(),
        source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
    })?;
    Ok(Delivery {
        manifest,
        closed: closed_at.is_some(),
    })
}

fn open_delivery(conn: &Connection, delivery_id: &str) -> Result<Delivery, ReceivingError> {
    let d = load_delivery(conn, delivery_id)?;
    if d.manifest.cancelled {
        return Err(ReceivingError::Cancelled(delivery_id.to_owned()));
    }
    if d.closed {
        return Err(ReceivingError::Closed(delivery_id.to_owned()));
    }
    Ok(d)
}

/// Whether a known, not cancelled delivery with line `line_no` is closed (a
/// receipt's reversal asks).
pub(super) fn delivery_state(
    conn: &Connection,
    delivery_id: &str,
    line_no: u32,
) -> Result<bool, ReceivingError> {
    let d = load_delivery(conn, delivery_id)?;
    if d.manifest.cancelled {
        return Err(ReceivingError::Cancelled(delivery_id.to_owned()));
    }
    line_of(&d, line_no)?;
    Ok(d.closed)
}

fn line_of(d: &Delivery, line_no: u32) -> Result<&ManifestLine, ReceivingError> {
    d.manifest
        .lines
        .iter()
        .find(|l| l.line_no == line_no)
        .ok_or_else(|| ReceivingError::UnknownLine {
            delivery_id: d.manifest.delivery_id.clone(),
            line_no,
        })
}

/// Reads what was observed on a line.
pub fn line_record(
    conn: &Connection,
    delivery_id: &str,
    line_no: u32,
) -> Result<LineRecord, StoreError> {
    let body: Option<String> = conn
        .prepare_cached(
            "SELECT observations FROM receiving_line WHERE delivery_id = ?1 AND line_no = ?2",
        )
        .and_then(|mut st| {
            st.query_row(params![delivery_id, line_no], |r| r.get(0))
                .optional()
        })
        .map_err(sql(conn))?;
    Ok(body
        .and_then(|b| stored::decode_line_record(&b).ok())
        .unwrap_or_default())
}

fn save_line_record(
    conn: &Connection,
    delivery_id: &str,
    line_no: u32,
    rec: &LineRecord,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO receiving_line (delivery_id, line_no, observations, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (delivery_id, line_no) DO UPDATE SET observations = ?3, updated_at = ?4",
    )
    .and_then(|mut st| st.execute(params![delivery_id, line_no, stored::encode_line_record(rec), now.millis()]))
    .map_err(sql(conn))?;
    Ok(())
}

fn decided(conn: &Connection, delivery_id: &str, line_no: u32) -> Result<bool, StoreError> {
    conn.prepare_cached(
        "SELECT COUNT(*) FROM line_decision WHERE delivery_id = ?1 AND line_no = ?2",
    )
    .and_then(|mut st| st.query_row(params![delivery_id, line_no], |r| r.get::<_, i64>(0)))
    .map(|n| n > 0)
    .map_err(sql(conn))
}

/// The line a station is working on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selected {
    pub delivery_id: String,
    pub line_no: u32,
    pub sku: String,
    pub lot: String,
}

fn select(
    conn: &Connection,
    station: &str,
    d: &Delivery,
    line: &ManifestLine,
    now: Timestamp,
) -> Result<Selected, StoreError> {
    conn.prepare_cached(
        "INSERT INTO station_session (station, delivery_id, line_no, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (station) DO UPDATE SET delivery_id = ?2, line_no = ?3, updated_at = ?4",
    )
    .and_then(|mut st| st.execute(params![station, d.manifest.delivery_id, line.line_no, now.millis()]))
    .map_err(sql(conn))?;
    Ok(Selected {
        delivery_id: d.manifest.delivery_id.clone(),
        line_no: line.line_no,
        sku: line.sku.to_string(),
        lot: line.lot.clone(),
    })
}

/// Digits of an SSCC in any of its printed forms (`00` + 18 digits, `(00)…`, `]C1 00…`).
fn normalise_label(label: &str) -> String {
    let digits: String = label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let digits = digits.strip_prefix("C1").unwrap_or(&digits).to_owned();
    if digits.len() == 20 && digits.starts_with("00") {
        digits[2..].to_owned()
    } else {
        digits
    }
}

/// A crate or delivery label was scanned at a station: select the line it names.
/// Accepts a crate's SSCC, `DELIVERY/LINE`, or a delivery id (its first undecided line).
pub fn scan_label(
    conn: &Connection,
    station: &str,
    label: &str,
    now: Timestamp,
) -> Result<Selected, ReceivingError> {
    let label = label.trim();
    let (delivery_part, line_part) = match label.rsplit_once('/') {
        Some((d, l)) if l.parse::<u32>().is_ok() => (d, l.parse::<u32>().ok()),
        _ => (label, None),
    };
    if let Ok(d) = open_delivery(conn, delivery_part) {
        let line = match line_part {
            Some(n) => line_of(&d, n)?,
            None => {
                let mut first = None;
                for l in &d.manifest.lines {
                    if !decided(conn, &d.manifest.delivery_id, l.line_no)? {
                        first = Some(l);
                        break;
                    }
                }
                first.ok_or_else(|| ReceivingError::Closed(d.manifest.delivery_id.clone()))?
            }
        };
        return Ok(select(conn, station, &d, line, now)?);
    }
    let wanted = normalise_label(label);
    let mut st = conn
        .prepare_cached(
            "SELECT delivery_id FROM delivery_manifest WHERE closed_at IS NULL AND cancelled = 0",
        )
        .map_err(sql(conn))?;
    let open: Vec<String> = st
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(sql(conn))?;
    for delivery_id in open {
        let d = load_delivery(conn, &delivery_id)?;
        if let Some(line) = d.manifest.lines.iter().find(|l| {
            l.crate_label
                .as_deref()
                .is_some_and(|c| normalise_label(c) == wanted)
        }) {
            return Ok(select(conn, station, &d, line, now)?);
        }
    }
    Err(ReceivingError::UnknownLabel(label.to_owned()))
}

fn current(conn: &Connection, station: &str) -> Result<(Delivery, u32), ReceivingError> {
    let row: Option<(String, u32)> = conn
        .prepare_cached("SELECT delivery_id, line_no FROM station_session WHERE station = ?1")
        .and_then(|mut st| {
            st.query_row([station], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(sql(conn))?;
    let (delivery_id, line_no) =
        row.ok_or_else(|| ReceivingError::NoLineSelected(station.to_owned()))?;
    let d = open_delivery(conn, &delivery_id)?;
    if decided(conn, &delivery_id, line_no)? {
        return Err(ReceivingError::AlreadyDecided {
            delivery_id,
            line_no,
        });
    }
    Ok((d, line_no))
}

/// The line selected at a station (for a photo check: which SKU's rule applies). Fails like
/// the station steps do: no line selected, delivery closed or cancelled, line already decided.
pub fn selected_line(conn: &Connection, station: &str) -> Result<Selected, ReceivingError> {
    let (d, line_no) = current(conn, station)?;
    let line = line_of(&d, line_no)?;
    Ok(Selected {
        delivery_id: d.manifest.delivery_id.clone(),
        line_no,
        sku: line.sku.to_string(),
        lot: line.lot.clone(),
    })
}

/// What happened to a scanned item code. `count` is the line's count so far: trace codes
/// bound plus product scans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum BindOutcome {
    /// A trace code, bound to the line's batch.
    Bound {
        delivery_id: String,
        line_no: u32,
        count: usize,
    },
    /// A product scan (no serial), counted on the line; nothing was bound.
    Counted {
        delivery_id: String,
        line_no: u32,
        count: usize,
    },
    /// Recorded on the line with its reason; the line will be held for review.
    Flagged {
        delivery_id: String,
        line_no: u32,
        flag: CodeFlag,
    },
}

/// An item code as the receiving step takes it: what the code is, and what it prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedItem {
    /// The code in its stored form (for GS1, `(01)…(21)…`; a bare GTIN as its GTIN-14).
    pub code: String,
    pub kind: CodeKind,
    pub gtin: Option<Gtin>,
    /// Lot (AI 10) and expiry (AI 17) printed in the code.
    pub lot: Option<String>,
    pub expiry: Option<chrono::NaiveDate>,
    /// Every GS1 element read from the code, kept with a bound trace code.
    pub elements: Vec<CodeElement>,
}

/// An item code was scanned at a station: bind a trace code to the selected line's batch,
/// count a product scan, or flag either with its reason. A product scan on a line whose items
/// carry issued trace codes is refused ([`ReceivingError::WantsTraceCode`]): nothing is
/// recorded. `today` is the site's day, for the expiry printed in the code.
pub fn scan_item(
    conn: &Connection,
    station: &str,
    item: &ScannedItem,
    policy: &ReceivingPolicy,
    today: chrono::NaiveDate,
    now: Timestamp,
) -> Result<BindOutcome, ReceivingError> {
    let (d, line_no) = current(conn, station)?;
    let line = line_of(&d, line_no)?.clone();
    let delivery_id = d.manifest.delivery_id.clone();
    let bound_to: Option<String> = conn
        .prepare_cached("SELECT lot FROM trace_code WHERE code = ?1")
        .and_then(|mut st| st.query_row([&item.code], |r| r.get(0)).optional())
        .map_err(sql(conn))?;
    let gtins = super::sku::get(conn, &line.sku)?
        .map(|s| s.gtins)
        .unwrap_or_default();
    let scan = ItemScan {
        code: &item.code,
        kind: item.kind,
        gtin: item.gtin.as_ref(),
        lot: item.lot.as_deref(),
        expiry: item.expiry,
    };
    let mut rec = line_record(conn, &delivery_id, line_no)?;
    let outcome =
        match check_scan_for_line(&line, &gtins, &scan, bound_to.as_deref(), policy, today) {
            ScanVerdict::Bind => {
                super::trace::bind_trace_code(
                    conn,
                    &item.code,
                    &line.sku,
                    &line.lot,
                    Some(&delivery_id),
                    "receiving",
                    &item.elements,
                    now,
                )?;
                rec.bound_codes.push(item.code.clone());
                let event = DomainEvent::TraceCodeBound {
                    code: item.code.clone(),
                    sku: line.sku.clone(),
                    lot: line.lot.clone(),
                    delivery_id: delivery_id.clone(),
                    line_no,
                    elements: item.elements.clone(),
                };
                outbox::append(conn, &event, now)?;
                BindOutcome::Bound {
                    delivery_id: delivery_id.clone(),
                    line_no,
                    count: rec.scanned(),
                }
            }
            ScanVerdict::CountProduct => {
                rec.product_scans.push(item.code.clone());
                BindOutcome::Counted {
                    delivery_id: delivery_id.clone(),
                    line_no,
                    count: rec.scanned(),
                }
            }
            ScanVerdict::WantsTraceCode => {
                return Err(ReceivingError::WantsTraceCode {
                    delivery_id,
                    line_no,
                    code: item.code.clone(),
                });
            }
            ScanVerdict::Flag(flag) => {
                flag_on_line(conn, &mut rec, &delivery_id, line_no, &item.code, flag, now)?
            }
        };
    save_line_record(conn, &delivery_id, line_no, &rec, now)?;
    Ok(outcome)
}

/// A scan that is not a usable code at all (malformed, or recognised by no rule) is flagged on
/// the station's selected line with its reason.
pub fn flag_scan(
    conn: &Connection,
    station: &str,
    raw: &str,
    flag: CodeFlag,
    now: Timestamp,
) -> Result<BindOutcome, ReceivingError> {
    let (d, line_no) = current(conn, station)?;
    let delivery_id = d.manifest.delivery_id.clone();
    let mut rec = line_record(conn, &delivery_id, line_no)?;
    let outcome = flag_on_line(conn, &mut rec, &delivery_id, line_no, raw, flag, now)?;
    save_line_record(conn, &delivery_id, line_no, &rec, now)?;
    Ok(outcome)
}

fn flag_on_line(
    conn: &Connection,
    rec: &mut LineRecord,
    delivery_id: &str,
    line_no: u32,
    code: &str,
    flag: CodeFlag,
    now: Timestamp,
) -> Result<BindOutcome, StoreError> {
    tracing::warn!(code, delivery = %delivery_id, line_no, flag = flag.code(), detail = %flag.describe(), "scanned code flagged");
    rec.flagged.push((code.to_owned(), flag.clone()));
    let event = DomainEvent::TraceCodeFlagged {
        code: code.to_owned(),
        delivery_id: delivery_id.to_owned(),
        line_no,
        flag: flag.clone(),
    };
    outbox::append(conn, &event, now)?;
    Ok(BindOutcome::Flagged {
        delivery_id: delivery_id.to_owned(),
        line_no,
        flag,
    })
}

/// A stable weight (grams, net) was read for the station's selected line.
pub fn record_weight(
    conn: &Connection,
    station: &str,
    grams: i64,
    now: Timestamp,
) -> Result<Selected, ReceivingError> {
    let (d, line_no) = current(conn, station)?;
    let line = line_of(&d, line_no)?;
    let mut rec = line_record(conn, &d.manifest.delivery_id, line_no)?;
    rec.weights_g.push(grams);
    save_line_record(conn, &d.manifest.delivery_id, line_no, &rec, now)?;
    Ok(Selected {
        delivery_id: d.manifest.delivery_id.clone(),
        line_no,
        sku: line.sku.to_string(),
        lot: line.lot.clone(),
    })
}

/// A photo check finished for the station's selected line.
pub fn record_photo(
    conn: &Connection,
    station: &str,
    evidence: &PhotoEvidence,
    now: Timestamp,
) -> Result<Selected, ReceivingError> {
    let (d, line_no) = current(conn, station)?;
    let line = line_of(&d, line_no)?;
    let mut rec = line_record(conn, &d.manifest.delivery_id, line_no)?;
    rec.photos.push(evidence.clone());
    save_line_record(conn, &d.manifest.delivery_id, line_no, &rec, now)?;
    conn.prepare_cached(
        "INSERT INTO photo (sha256, path, bytes, delivery_id, line_no, stored_at) VALUES (?1, ?2, 0, ?3, ?4, ?5)
         ON CONFLICT (sha256) DO UPDATE SET delivery_id = ?3, line_no = ?4",
    )
    .and_then(|mut st| {
        st.execute(params![evidence.photo_sha256, evidence.photo_path, d.manifest.delivery_id, line_no, now.millis()])
    })
    .map_err(sql(conn))?;
    Ok(Selected {
        delivery_id: d.manifest.delivery_id.clone(),
        line_no,
        sku: line.sku.to_string(),
        lot: line.lot.clone(),
    })
}

/// The largest count staff may enter for one line (pieces, or grams of a by-weight line): a
/// larger one is a typing slip, refused.
pub const MAX_LINE_COUNT: i64 = 10_000_000;

/// Staff entered a count for a line (goods without trace codes); a negative or absurd count is
/// refused ([`ReceivingError::BadCount`]).
pub fn set_count(
    conn: &Connection,
    delivery_id: &str,
    line_no: u32,
    count: i64,
    now: Timestamp,
) -> Result<(), ReceivingError> {
    let d = open_delivery(conn, delivery_id)?;
    line_of(&d, line_no)?;
    if decided(conn, delivery_id, line_no)? {
        return Err(ReceivingError::AlreadyDecided {
            delivery_id: delivery_id.into(),
            line_no,
        });
    }
    if !(0..=MAX_LINE_COUNT).contains(&count) {
        return Err(ReceivingError::BadCount(count));
    }
    let mut rec = line_record(conn, delivery_id, line_no)?;
    rec.counted_by_staff = Some(count);
    save_line_record(conn, delivery_id, line_no, &rec, now)?;
    Ok(())
}

/// Splits `quantity` of a line off into a new line with another lot (a line that arrived as
/// two batches). Only before the line is decided.
pub fn split_line(
    conn: &Connection,
    delivery_id: &str,
    line_no: u32,
    new_lot: &str,
    new_expiry: Option<chrono::NaiveDate>,
    quantity: i64,
    now: Timestamp,
) -> Result<u32, ReceivingError> {
    let mut d = open_delivery(conn, delivery_id)?;
    if decided(conn, delivery_id, line_no)? {
        return Err(ReceivingError::AlreadyDecided {
            delivery_id: delivery_id.into(),
            line_no,
        });
    }
    let original = line_of(&d, line_no)?.clone();
    let expected = original.expected_count.unwrap_or(0);
    if quantity <= 0 || quantity >= expected {
        return Err(ReceivingError::BadQuantity {
            delivery_id: delivery_id.into(),
            line_no,
            asked: quantity,
            held: expected,
        });
    }
    let new_no = d
        .manifest
        .lines
        .iter()
        .map(|l| l.line_no)
        .max()
        .unwrap_or(0)
        + 1;
    let share = |g: Option<i64>| g.map(|g| g * quantity / expected);
    let mut split = original.clone();
    split.line_no = new_no;
    split.lot = new_lot.to_owned();
    split.expiry = new_expiry.or(original.expiry);
    split.expected_count = Some(quantity);
    split.expected_weight_g = share(original.expected_weight_g);
    split.crate_label = None;
    for l in d.manifest.lines.iter_mut().filter(|l| l.line_no == line_no) {
        l.expected_count = Some(expected - quantity);
        l.expected_weight_g = l.expected_weight_g.map(|g| g - share(Some(g)).unwrap_or(0));
    }
    d.manifest.lines.push(split);
    save_manifest(conn, &d.manifest, now)?;
    Ok(new_no)
}

fn save_manifest(conn: &Connection, manifest: &Manifest, now: Timestamp) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE delivery_manifest SET body = ?2, updated_at = ?3 WHERE delivery_id = ?1",
        params![
            manifest.delivery_id,
            stored::encode_manifest(manifest),
            now.millis()
        ],
    )
    .map_err(sql(conn))?;
    Ok(())
}

/// Writes a decision and, when it holds stock, its quarantine row.
fn insert_decision(
    conn: &Connection,
    record: &ReceivingDecision,
    expiry: Option<chrono::NaiveDate>,
) -> Result<(), StoreError> {
    let d = &record.decision;
    conn.execute(
        "INSERT INTO line_decision (delivery_id, line_no, sku, lot, outcome, accepted, rejected, held, body, staff, decided_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            record.delivery_id,
            record.line_no,
            record.sku.as_str(),
            record.lot,
            d.outcome.as_str(),
            d.accepted,
            d.rejected,
            d.held,
            stored::encode_decision(record),
            record.staff,
            record.decided_at.millis()
        ],
    )
    .map_err(sql(conn))?;
    conn.execute(
        "INSERT INTO quarantine (delivery_id, line_no, sku, lot, expiry, quantity, since, status)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, 'held' WHERE ?6 > 0",
        params![
            record.delivery_id,
            record.line_no,
            record.sku.as_str(),
            record.lot,
            expiry.map(|e| e.to_string()),
            d.held,
            record.decided_at.millis()
        ],
    )
    .map_err(sql(conn))?;
    Ok(())
}

fn observation(rec: &LineRecord, unit: StockUnit) -> LineObservation {
    let counted = match unit {
        // Scans count pieces: trace codes bound plus product scans.
        StockUnit::Piece => rec
            .counted_by_staff
            .or_else(|| (rec.scanned() > 0).then_some(rec.scanned() as i64)),
        // Goods sold by weight arrive as grams: the scale's weight, or what staff entered.
        StockUnit::Gram => rec.counted_by_staff,
    };
    LineObservation {
        counted,
        weight_g: rec.weights_g.last().copied(),
        photo: rec.photos.last().map(|p| p.verdict),
        flagged_codes: rec.flagged.iter().map(|(_, f)| f.clone()).collect(),
    }
}

fn set_code_status(
    conn: &Connection,
    codes: &[String],
    status: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    for code in codes {
        conn.prepare_cached("UPDATE trace_code SET status = ?2, updated_at = ?3 WHERE code = ?1")
            .and_then(|mut st| st.execute(params![code, status, now.millis()]))
            .map_err(sql(conn))?;
    }
    Ok(())
}

fn receipt(
    conn: &Connection,
    id: String,
    line: &ManifestLine,
    quantity: i64,
    reference: String,
    now: Timestamp,
) -> Result<(), ReceivingError> {
    let m = Movement {
        id: MovementId::new(id).map_err(|e| ReceivingError::UnknownLabel(e.to_string()))?,
        sku: line.sku.clone(),
        batch: Some(BatchKey {
            lot: line.lot.clone(),
            expiry: line.expiry,
        }),
        kind: MovementKind::Receipt,
        quantity,
        reason: String::new(),
        reference,
        at: now,
    };
    record(conn, &m)?;
    Ok(())
}

/// Decides one line: decision, evidence, trace codes, stock, quarantine and events, together.
pub fn decide(
    conn: &Connection,
    delivery_id: &str,
    line_no: u32,
    staff: &str,
    policy: &ReceivingPolicy,
    today: chrono::NaiveDate,
    now: Timestamp,
) -> Result<ReceivingDecision, ReceivingError> {
    decide_holding(conn, delivery_id, line_no, staff, None, policy, today, now)
}

/// [`decide`], with a clerk's hold (`hub_core::receiving::hold_for_review`) when given.
#[allow(clippy::too_many_arguments)]
pub fn decide_holding(
    conn: &Connection,
    delivery_id: &str,
    line_no: u32,
    staff: &str,
    hold: Option<hub_core::receiving::HoldReason>,
    policy: &ReceivingPolicy,
    today: chrono::NaiveDate,
    now: Timestamp,
) -> Result<ReceivingDecision, ReceivingError> {
    let d = open_delivery(conn, delivery_id)?;
    let line = line_of(&d, line_no)?.clone();
    if decided(conn, delivery_id, line_no)? {
        return Err(ReceivingError::AlreadyDecided {
            delivery_id: delivery_id.into(),
            line_no,
        });
    }
    let sku = super::sku::get(conn, &line.sku)?
        .ok_or_else(|| ReceivingError::UnknownSku(line.sku.to_string()))?;
    let rec = line_record(conn, delivery_id, line_no)?;
    let checked = decide_line(&line, sku.unit, &observation(&rec, sku.unit), policy, today);
    let decision: LineDecision = match hold {
        Some(reason) => hub_core::receiving::hold_for_review(checked, reason),
        None => checked,
    };
    let reference = format!("delivery {delivery_id} line {line_no}");
    if decision.accepted > 0 {
        receipt(
            conn,
            receipt_id(conn, "rcv", delivery_id, line_no)?,
            &line,
            decision.accepted,
            reference.clone(),
            now,
        )?;
    }
    let code_status = if decision.held > 0 {
        "quarantined"
    } else if decision.accepted > 0 {
        "in_stock"
    } else {
        "rejected"
    };
    set_code_status(conn, &rec.bound_codes, code_status, now)?;
    let record = ReceivingDecision {
        delivery_id: delivery_id.into(),
        supplier: d.manifest.supplier.clone(),
        line_no,
        sku: line.sku.clone(),
        lot: line.lot.clone(),
        decision: decision.clone(),
        staff: staff.into(),
        decided_at: now,
        weight_readings_g: rec.weights_g.clone(),
        photos: rec.photos.clone(),
        bound_codes: rec.bound_codes.clone(),
        flagged_codes: rec.flagged.clone(),
        product_scans: rec.product_scans.clone(),
    };
    insert_decision(conn, &record, line.expiry)?;
    tracing::info!(
        delivery = delivery_id,
        line_no,
        outcome = decision.outcome.as_str(),
        accepted = decision.accepted,
        held = decision.held,
        rejected = decision.rejected,
        "line decided"
    );
    outbox::append(
        conn,
        &DomainEvent::ReceivingLineDecided {
            decision: record.clone(),
        },
        now,
    )?;
    Ok(record)
}

/// Releases held stock into the ledger and/or rejects it, after a person's review.
#[allow(clippy::too_many_arguments)]
pub fn resolve_quarantine(
    conn: &Connection,
    delivery_id: &str,
    line_no: u32,
    release: i64,
    reject: i64,
    staff: &str,
    reason: &str,
    now: Timestamp,
) -> Result<(), ReceivingError> {
    let row: Option<(String, String, Option<String>, i64)> = conn
        .query_row(
            "SELECT sku, lot, expiry, quantity FROM quarantine WHERE delivery_id = ?1 AND line_no = ?2 AND status = 'held'",
            params![delivery_id, line_no],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()
        .map_err(sql(conn))?;
    let (sku, lot, expiry, held) = row.ok_or_else(|| ReceivingError::NothingHeld {
        delivery_id: delivery_id.into(),
        line_no,
    })?;
    if release < 0 || reject < 0 || release + reject != held {
        return Err(ReceivingError::BadQuantity {
            delivery_id: delivery_id.into(),
            line_no,
            asked: release + reject,
            held,
        });
    }
    let sku = SkuCode::new(sku).map_err(|e| ReceivingError::UnknownSku(e.to_string()))?;
    if release > 0 {
        let line = ManifestLine {
            expiry: expiry.and_then(|e| e.parse().ok()),
            ..ManifestLine::unexpected(line_no, sku.clone(), &lot)
        };
        let reference =
            format!("delivery {delivery_id} line {line_no} released by {staff}: {reason}");
        receipt(
            conn,
            receipt_id(conn, "rel", delivery_id, line_no)?,
            &line,
            release,
            reference,
            now,
        )?;
    }
    conn.execute(
        "UPDATE quarantine SET status = ?3, resolved_at = ?4, resolved_by = ?5, reason = ?6
         WHERE delivery_id = ?1 AND line_no = ?2",
        params![
            delivery_id,
            line_no,
            if release > 0 { "released" } else { "rejected" },
            now.millis(),
            staff,
            reason
        ],
    )
    .map_err(sql(conn))?;
    let codes: Vec<String> = conn
        .prepare("SELECT code FROM trace_code WHERE delivery_id = ?1 AND lot = ?2 AND status = 'quarantined'")
        .and_then(|mut st| st.query_map(params![delivery_id, lot], |r| r.get(0)).and_then(|rows| rows.collect()))
        .map_err(sql(conn))?;
    set_code_status(
        conn,
        &codes,
        if release > 0 { "in_stock" } else { "rejected" },
        now,
    )?;
    let event = DomainEvent::QuarantineResolved {
        delivery_id: delivery_id.into(),
        line_no,
        sku,
        lot,
        released: release,
        rejected: reject,
        staff: staff.into(),
        reason: reason.into(),
    };
    outbox::append(conn, &event, now)?;
    Ok(())
}

/// Closes a delivery: decides every undecided line (what was not observed is held for review).
pub fn close_delivery(
    conn: &Connection,
    delivery_id: &str,
    staff: &str,
    policy: &ReceivingPolicy,
    today: chrono::NaiveDate,
    now: Timestamp,
) -> Result<Vec<ReceivingDecision>, ReceivingError> {
    let d = open_delivery(conn, delivery_id)?;
    let mut decisions = Vec::new();
    for line in &d.manifest.lines {
        if !decided(conn, delivery_id, line.line_no)? {
            decisions.push(decide(
                conn,
                delivery_id,
                line.line_no,
                staff,
                policy,
                today,
                now,
            )?);
        }
    }
    conn.execute(
        "UPDATE delivery_manifest SET closed_at = ?2, closed_by = ?3 WHERE delivery_id = ?1",
        params![delivery_id, now.millis(), staff],
    )
    .map_err(sql(conn))?;
    outbox::append(
        conn,
        &DomainEvent::DeliveryClosed {
            delivery_id: delivery_id.into(),
            staff: staff.into(),
            lines: d.manifest.lines.len(),
        },
        now,
    )?;
    Ok(decisions)
}

/// An open dispute on a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenDispute {
    /// The episode (a delivery's dispute can be settled and opened again).
    pub id: i64,
    pub delivery_id: String,
    pub opened_at: Timestamp,
    pub note: String,
}

/// The open dispute on a delivery, if any.
pub fn open_dispute_of(
    conn: &Connection,
    delivery_id: &str,
) -> Result<Option<OpenDispute>, StoreError> {
    conn.prepare_cached(
        "SELECT id, opened_at, note FROM dispute WHERE delivery_id = ?1 AND closed_at IS NULL",
    )
    .and_then(|mut st| {
        st.query_row([delivery_id], |r| {
            Ok(OpenDispute {
                id: r.get(0)?,
                delivery_id: delivery_id.to_owned(),
                opened_at: Timestamp(r.get(1)?),
                note: r.get(2)?,
            })
        })
        .optional()
    })
    .map_err(sql(conn))
}

/// Opens a dispute on a known delivery (open, closed or cancelled): until it is closed,
/// evidence retention keeps the delivery's photos whatever their age or the folder's size.
/// A closed dispute can be opened again: a new episode, the earlier one kept with its times.
/// Emits `dispute_opened`.
pub fn open_dispute(
    conn: &Connection,
    delivery_id: &str,
    staff: &str,
    note: &str,
    now: Timestamp,
) -> Result<(), ReceivingError> {
    open_dispute_on_line(conn, delivery_id, staff, note, None, now)
}

/// Opens a dispute as [`open_dispute`] does, about one manifest line when `line_no` is given:
/// the line's photos stored so far are the episode's evidence (kept with it and sent in
/// `dispute_opened`).
pub fn open_dispute_on_line(
    conn: &Connection,
    delivery_id: &str,
    staff: &str,
    note: &str,
    line_no: Option<u32>,
    now: Timestamp,
) -> Result<(), ReceivingError> {
    if note.trim().is_empty() {
        return Err(ReceivingError::EmptyDisputeNote);
    }
    let d = load_delivery(conn, delivery_id)?;
    let photos = match line_no {
        Some(n) => {
            line_of(&d, n)?;
            super::photos::of_line(conn, delivery_id, n)?
        }
        None => Vec::new(),
    };
    if let Some(open) = open_dispute_of(conn, delivery_id)? {
        return Err(ReceivingError::DisputeAlreadyOpen {
            delivery_id: delivery_id.to_owned(),
            note: open.note,
        });
    }
    conn.execute(
        "INSERT INTO dispute (delivery_id, opened_at, opened_by, note, line_no, photos)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            delivery_id,
            now.millis(),
            staff,
            note,
            line_no,
            line_no.map(|_| serde_json::to_string(&photos).unwrap_or_else(|_| "[]".into()))
        ],
    )
    .map_err(sql(conn))?;
    outbox::append(
        conn,
        &DomainEvent::DisputeOpened {
            delivery_id: delivery_id.into(),
            staff: staff.into(),
            note: note.into(),
            line_no,
            photos,
        },
        now,
    )?;
    Ok(())
}

/// Closes the open dispute on a delivery; its evidence falls back under the retention policy.
/// Emits `dispute_closed`.
pub fn close_dispute(
    conn: &Connection,
    delivery_id: &str,
    staff: &str,
    note: &str,
    now: Timestamp,
) -> Result<(), ReceivingError> {
    if note.trim().is_empty() {
        return Err(ReceivingError::EmptyDisputeNote);
    }
    let closed = conn
        .execute(
            "UPDATE dispute SET closed_at = ?2, closed_by = ?3, settle_note = ?4,
               first_response_kind = COALESCE(first_response_kind, 'settled'),
               first_response_by = COALESCE(first_response_by, ?3),
               first_response_at = COALESCE(first_response_at, ?2)
             WHERE delivery_id = ?1 AND closed_at IS NULL",
            params![delivery_id, now.millis(), staff, note],
        )
        .map_err(sql(conn))?;
    if closed == 0 {
        load_delivery(conn, delivery_id)?;
        return Err(ReceivingError::NoOpenDispute(delivery_id.to_owned()));
    }
    outbox::append(
        conn,
        &DomainEvent::DisputeClosed {
            delivery_id: delivery_id.into(),
            staff: staff.into(),
            note: note.into(),
        },
        now,
    )?;
    Ok(())
}

/// What a supervisor did on an open dispute (`hub receive dispute --respond`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisputeResponse {
    /// A note: the supplier was called, the case was looked at, what happens next.
    Note,
    /// The delivery's photos were inspected (with a note on what they show).
    PhotoInspection,
}

impl DisputeResponse {
    pub fn as_str(self) -> &'static str {
        match self {
            DisputeResponse::Note => "note",
            DisputeResponse::PhotoInspection => "photo_inspection",
        }
    }
}

/// A supervisor responds to the open dispute on a delivery: the first response (of any kind,
/// or the settlement when nothing came before it) is what the report's response time counts;
/// the first photo inspection is kept beside it. Later responses change neither. Every
/// response is kept with its note and emits `dispute_responded`.
pub fn respond_to_dispute(
    conn: &Connection,
    delivery_id: &str,
    staff: &str,
    note: &str,
    response: DisputeResponse,
    now: Timestamp,
) -> Result<(), ReceivingError> {
    if note.trim().is_empty() {
        return Err(ReceivingError::EmptyDisputeNote);
    }
    let inspected = response == DisputeResponse::PhotoInspection;
    let Some(open) = open_dispute_of(conn, delivery_id)? else {
        load_delivery(conn, delivery_id)?;
        return Err(ReceivingError::NoOpenDispute(delivery_id.to_owned()));
    };
    conn.execute(
        "UPDATE dispute SET
               first_response_kind = COALESCE(first_response_kind, ?4),
               first_response_by = COALESCE(first_response_by, ?3),
               first_response_at = COALESCE(first_response_at, ?2),
               photos_inspected_at = CASE WHEN ?5 THEN COALESCE(photos_inspected_at, ?2)
                                          ELSE photos_inspected_at END
             WHERE id = ?1",
        params![open.id, now.millis(), staff, response.as_str(), inspected],
    )
    .map_err(sql(conn))?;
    conn.execute(
        "INSERT INTO dispute_response (delivery_id, at, staff, kind, note, dispute_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            delivery_id,
            now.millis(),
            staff,
            response.as_str(),
            note,
            open.id
        ],
    )
    .map_err(sql(conn))?;
    outbox::append(
        conn,
        &DomainEvent::DisputeResponded {
            delivery_id: delivery_id.into(),
            staff: staff.into(),
            note: note.into(),
            photos_inspected: inspected,
        },
        now,
    )?;
    Ok(())
}

/// The first response to the delivery's latest dispute, if it had one.
pub fn dispute_first_response(
    conn: &Connection,
    delivery_id: &str,
) -> Result<Option<DisputeFirstResponse>, StoreError> {
    Ok(dispute_episodes(conn, delivery_id)?
        .pop()
        .and_then(|e| e.first_response))
}

/// Goods that arrived without a manifest line: held for review with their own quarantine row.
pub fn unexpected_goods(
    conn: &Connection,
    delivery_id: &str,
    sku: &SkuCode,
    lot: &str,
    counted: i64,
    now: Timestamp,
) -> Result<LineDecision, ReceivingError> {
    let mut d = open_delivery(conn, delivery_id)?;
    let decision = decide_unexpected(counted);
    let line_no = d
        .manifest
        .lines
        .iter()
        .map(|l| l.line_no)
        .max()
        .unwrap_or(0)
        + 1;
    d.manifest
        .lines
        .push(ManifestLine::unexpected(line_no, sku.clone(), lot));
    save_manifest(conn, &d.manifest, now)?;
    let record = ReceivingDecision {
        delivery_id: delivery_id.into(),
        supplier: d.manifest.supplier.clone(),
        line_no,
        sku: sku.clone(),
        lot: lot.into(),
        decision: decision.clone(),
        staff: String::new(),
        decided_at: now,
        weight_readings_g: vec![],
        photos: vec![],
        bound_codes: vec![],
        flagged_codes: vec![],
        product_scans: vec![],
    };
    insert_decision(conn, &record, None)?;
    outbox::append(
        conn,
        &DomainEvent::ReceivingLineDecided { decision: record },
        now,
    )?;
    Ok(decision)
}

/// One manifest line and what was observed on it so far, decided or not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineProgress {
    pub line_no: u32,
    pub sku: String,
    pub lot: String,
    pub decided: bool,
    pub observed: LineRecord,
}

/// Where a delivery stands: every manifest line with its observations (what staff need to
/// resume an interrupted session), `None` for an unknown delivery.
pub fn progress(
    conn: &Connection,
    delivery_id: &str,
) -> Result<Option<(bool, Vec<LineProgress>)>, ReceivingError> {
    let d = match load_delivery(conn, delivery_id) {
        Ok(d) => d,
        Err(ReceivingError::UnknownDelivery(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut lines = Vec::with_capacity(d.manifest.lines.len());
    for line in &d.manifest.lines {
        lines.push(LineProgress {
            line_no: line.line_no,
            sku: line.sku.to_string(),
            lot: line.lot.clone(),
            decided: decided(conn, delivery_id, line.line_no)?,
            observed: line_record(conn, delivery_id, line.line_no)?,
        });
    }
    Ok(Some((d.closed, lines)))
}

/// Every decision of a delivery, by line.
pub fn decisions(
    conn: &Connection,
    delivery_id: &str,
) -> Result<Vec<ReceivingDecision>, StoreError> {
    let mut st = conn
        .prepare_cached("SELECT body FROM line_decision WHERE delivery_id = ?1 ORDER BY line_no")
        .map_err(sql(conn))?;
    let bodies: Vec<String> = st
        .query_map([delivery_id], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(sql(conn))?;
    Ok(bodies
        .iter()
        .filter_map(|b| stored::decode_decision(b).ok())
        .collect())
}

/// Stock held for review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldStock {
    pub delivery_id: String,
    pub line_no: u32,
    pub sku: String,
    pub lot: String,
    pub quantity: i64,
    pub since: Timestamp,
}

/// Held stock waiting for review, oldest first.
pub fn held(conn: &Connection) -> Result<Vec<HeldStock>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT delivery_id, line_no, sku, lot, quantity, since FROM quarantine WHERE status = 'held' ORDER BY since",
        )
        .map_err(sql(conn))?;
    st.query_map([], |r| {
        Ok(HeldStock {
            delivery_id: r.get(0)?,
            line_no: r.get(1)?,
            sku: r.get(2)?,
            lot: r.get(3)?,
            quantity: r.get(4)?,
            since: Timestamp(r.get(5)?),
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(sql(conn))
}

// ---- The receiving bench's view of deliveries ----

/// Where a line stands, as people see it: waiting for a decision, or its decision, and for
/// held stock whether a person released or rejected it since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineState {
    Waiting,
    Accepted,
    PartiallyAccepted,
    Rejected,
    Held,
    /// Held, then released into stock (wholly or in part) by a person.
    Released,
    /// Held, then rejected by a person.
    HeldRejected,
}

impl LineState {
    /// Stable name (catalogue key `receiving.state.<name>`).
    pub fn as_str(self) -> &'static str {
        match self {
            LineState::Waiting => "waiting",
            LineState::Accepted => "accepted",
            LineState::PartiallyAccepted => "partially_accepted",
            LineState::Rejected => "rejected",
            LineState::Held => "held",
            LineState::Released => "released",
            LineState::HeldRejected => "held_rejected",
        }
    }
}

/// What a person decided about a line's held stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HoldResolution {
    pub quantity: i64,
    /// `held`, `released` or `rejected`.
    pub status: String,
    pub resolved_by: Option<String>,
    pub reason: Option<String>,
    pub resolved_at: Option<Timestamp>,
}

/// One line of a delivery with everything the bench shows about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchLine {
    pub line: ManifestLine,
    /// The SKU's name from the master data (empty when the SKU is unknown).
    pub sku_name: String,
    pub unit: Option<StockUnit>,
    pub observed: LineRecord,
    pub state: LineState,
    pub decision: Option<ReceivingDecision>,
    pub hold: Option<HoldResolution>,
    /// What deciding now would give (undecided lines of a known SKU): the same rule
    /// [`decide`] applies.
    pub proposal: Option<LineDecision>,
}

/// A delivery as the bench shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchDelivery {
    pub delivery_id: String,
    pub supplier: String,
    pub expected_at: Option<String>,
    pub closed: bool,
    pub cancelled: bool,
    pub lines: Vec<BenchLine>,
    /// Every dispute episode of the delivery, oldest first (the last may be open).
    pub disputes: Vec<DisputeEpisode>,
}

impl BenchDelivery {
    /// Lines decided without a hold still open, lines held, lines waiting.
    pub fn progress(&self) -> (usize, usize, usize) {
        let held = self
            .lines
            .iter()
            .filter(|l| l.state == LineState::Held)
            .count();
        let waiting = self
            .lines
            .iter()
            .filter(|l| l.state == LineState::Waiting)
            .count();
        (self.lines.len() - held - waiting, held, waiting)
    }
}

fn hold_of(
    conn: &Connection,
    delivery_id: &str,
    line_no: u32,
) -> Result<Option<HoldResolution>, StoreError> {
    conn.prepare_cached(
        "SELECT quantity, status, resolved_by, reason, resolved_at FROM quarantine WHERE delivery_id = ?1 AND line_no = ?2",
    )
    .and_then(|mut st| {
        st.query_row(params![delivery_id, line_no], |r| {
            Ok(HoldResolution {
                quantity: r.get(0)?,
                status: r.get(1)?,
                resolved_by: r.get(2)?,
                reason: r.get(3)?,
                resolved_at: r.get::<_, Option<i64>>(4)?.map(Timestamp),
            })
        })
        .optional()
    })
    .map_err(sql(conn))
}

/// A delivery with every line's expectation, observations, state and (undecided) proposal;
/// `None` for an unknown delivery. `today` is the site's day (expiry rules).
pub fn bench_delivery(
    conn: &Connection,
    delivery_id: &str,
    policy: &ReceivingPolicy,
    today: chrono::NaiveDate,
) -> Result<Option<BenchDelivery>, ReceivingError> {
    let d = match load_delivery(conn, delivery_id) {
        Ok(d) => d,
        Err(ReceivingError::UnknownDelivery(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let decisions = decisions(conn, delivery_id)?;
    let mut lines = Vec::with_capacity(d.manifest.lines.len());
    for line in &d.manifest.lines {
        let sku = super::sku::get(conn, &line.sku)?;
        let observed = line_record(conn, delivery_id, line.line_no)?;
        let decision = decisions
            .iter()
            .find(|x| x.line_no == line.line_no)
            .cloned();
        let hold = hold_of(conn, delivery_id, line.line_no)?;
        let state = match (&decision, hold.as_ref().map(|h| h.status.as_str())) {
            (None, _) => LineState::Waiting,
            (Some(_), Some("released")) => LineState::Released,
            (Some(_), Some("rejected")) => LineState::HeldRejected,
            (Some(x), _) => match x.decision.outcome {
                hub_core::receiving::Outcome::Accepted => LineState::Accepted,
                hub_core::receiving::Outcome::PartiallyAccepted => LineState::PartiallyAccepted,
                hub_core::receiving::Outcome::Rejected => LineState::Rejected,
                hub_core::receiving::Outcome::Held => LineState::Held,
            },
        };
        let proposal = match (&decision, &sku) {
            (None, Some(sku)) if !d.closed && !d.manifest.cancelled => Some(decide_line(
                line,
                sku.unit,
                &observation(&observed, sku.unit),
                policy,
                today,
            )),
            _ => None,
        };
        lines.push(BenchLine {
            line: line.clone(),
            sku_name: sku.as_ref().map(|s| s.name.clone()).unwrap_or_default(),
            unit: sku.map(|s| s.unit),
            observed,
            state,
            decision,
            hold,
            proposal,
        });
    }
    Ok(Some(BenchDelivery {
        delivery_id: d.manifest.delivery_id.clone(),
        supplier: d.manifest.supplier.clone(),
        expected_at: d.manifest.expected_at.clone(),
        closed: d.closed,
        cancelled: d.manifest.cancelled,
        lines,
        disputes: dispute_episodes(conn, delivery_id)?,
    }))
}

/// The deliveries a bench shows today: every open one, and those closed since `since` (the
/// start of the site's day), by expected time.
pub fn bench_deliveries(
    conn: &Connection,
    since: Timestamp,
    policy: &ReceivingPolicy,
    today: chrono::NaiveDate,
) -> Result<Vec<BenchDelivery>, ReceivingError> {
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT delivery_id FROM delivery_manifest
             WHERE cancelled = 0 AND (closed_at IS NULL OR closed_at >= ?1) ORDER BY delivery_id",
        )
        .and_then(|mut st| {
            st.query_map([since.millis()], |r| r.get(0))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql(conn))?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(d) = bench_delivery(conn, &id, policy, today)? {
            out.push(d);
        }
    }
    out.sort_by(|a, b| a.expected_at.cmp(&b.expected_at));
    Ok(out)
}

/// The line selected at a station, if any (whatever its state).
pub fn station_selection(
    conn: &Connection,
    station: &str,
) -> Result<Option<(String, u32)>, StoreError> {
    conn.prepare_cached("SELECT delivery_id, line_no FROM station_session WHERE station = ?1")
        .and_then(|mut st| {
            st.query_row([station], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(sql(conn))
}

/// The id of a line's next receipt movement of kind `prefix` (`rcv`, `rel`, or `rev` for a
/// reversal): `{prefix}-{delivery}-{line}` until the line's first reversal, then suffixed
/// with the number of reversals of the line (`store::receipt_reversal`) so a redo never reuses an id.
pub fn receipt_id(
    conn: &Connection,
    prefix: &str,
    delivery_id: &str,
    line_no: u32,
) -> Result<String, StoreError> {
    let reversals = reversals_of(conn, delivery_id, line_no)?;
    Ok(if reversals == 0 {
        format!("{prefix}-{delivery_id}-{line_no}")
    } else {
        format!("{prefix}-{delivery_id}-{line_no}-r{reversals}")
    })
}

fn reversals_of(conn: &Connection, delivery_id: &str, line_no: u32) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "SELECT COUNT(*) FROM receipt_reversal WHERE delivery_id = ?1 AND line_no = ?2",
    )
    .and_then(|mut st| st.query_row(params![delivery_id, line_no], |r| r.get(0)))
    .map_err(sql(conn))
}

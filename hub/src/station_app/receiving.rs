//! The receiving bench screen (station kind `receiving`): today's deliveries with their
//! progress, the open delivery's lines (expected against scanned and weighed, the photo
//! verdict, the hub's proposed decision and its reasons, in the clerk's words), the last scan or
//! weight from the bench's devices (live over the station's SSE channel), and the clerk's
//! actions: count, split, confirm the decision, release or reject held stock (supervisor),
//! reverse a line's last receipt (supervisor, `receipt_reversal`), close the delivery.
//!
//! It decides nothing itself. Opening a line and typed scans go through
//! `workflows::receiving`; every action goes through `workflows::station::run_command_in`,
//! the path MQTT station commands take, so it is applied once per client request id and its
//! reply is stored with its effects; each action is recorded with the staff id. What the
//! screen shows is read from the store (`store::deliveries::bench_delivery`), so a restarted hub
//! or a reloaded tablet resumes where the bench was.

use super::feed::{Bench, Shown, StationFeed};
use super::{Session, StaffView, StationApp, authorised, html, random_hex, refusal, templates};
use crate::catalogue::receiving as words;
use crate::catalogue::{self, Lang, Tone};
use crate::config::StationKind;
use crate::store::deliveries::{self, BenchDelivery, BenchLine, LineState, ReceivingError};
use crate::store::staff as staff_store;
use crate::workflows::receiving::ScanOutcome;
use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use hub_contract::station::StationAction;
use hub_core::Timestamp;
use hub_core::receiving::PhotoVerdict;
use serde::{Deserialize, Serialize};

/// The reasons a supervisor picks from when releasing or rejecting held stock (catalogue keys
/// `receiving.resolve.<code>`).
pub const RESOLVE_REASONS: [&str; 4] = [
    "checked_by_hand",
    "supplier_confirmed",
    "damaged",
    "wrong_product",
];

/// The receiving screen's routes (merged into the app's router).
pub fn routes() -> Router<StationApp> {
    Router::new()
        .route("/station/receiving/current", get(current))
        .route("/station/receiving/open", post(open))
        .route("/station/receiving/scan", post(scan))
        .route("/station/receiving/action", post(action))
        .route(
            "/station/receiving/photo",
            // The photo limit is checked by the vision desk (the configured `max_file_bytes`);
            // the body limit only stops a sender from filling the box's memory first.
            post(photo).layer(axum::extract::DefaultBodyLimit::max(PHOTO_BODY_LIMIT)),
        )
}

/// Largest request body a tablet's photo upload may have (the vision limits decide below it).
const PHOTO_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// A photo taken with the tablet's camera for the selected line: the same limits and checks as
/// the bench camera's photos (spool folder, MQTT). The body is the image itself.
async fn photo(
    State(app): State<StationApp>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let s = match authorised(&app, &headers, None).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Some(r) = not_at_bench(&app, &s) {
        return r;
    }
    let now = crate::clock::now();
    let Some(desk) = app.photos.clone() else {
        let bench = said(
            catalogue::text("receiving.upload.no_model", Lang::ZhCn).to_owned(),
            catalogue::text("receiving.upload.no_model", Lang::En).to_owned(),
            false,
        );
        app.feed.show(&s.station, Shown::Receiving(bench), now);
        return fragment(&app, &s, true).await;
    };
    let size = body.len();
    let bench = match desk.check(s.station.clone(), body.to_vec(), now).await {
        super::PhotoAnswer::Checked { verdict } => {
            tracing::info!(station = %s.station, staff = %s.staff_id, bytes = size, ?verdict, "photo from the tablet checked");
            let zh = format!("照片已检查：{}", words::verdict(verdict, Lang::ZhCn));
            let en = format!("photo checked: {}", words::verdict(verdict, Lang::En));
            match verdict {
                PhotoVerdict::Pass => Bench::Done { zh, en },
                PhotoVerdict::NeedsReview | PhotoVerdict::Fail => Bench::Attention { zh, en },
            }
        }
        super::PhotoAnswer::Refused(e) => refused(&e),
        super::PhotoAnswer::BadPhoto(key) | super::PhotoAnswer::Failed(key) => {
            tracing::warn!(station = %s.station, bytes = size, reason = key, "photo from the tablet refused");
            said(
                catalogue::text(key, Lang::ZhCn).to_owned(),
                catalogue::text(key, Lang::En).to_owned(),
                false,
            )
        }
    };
    app.feed.show(&s.station, Shown::Receiving(bench), now);
    fragment(&app, &s, true).await
}

/// Shows what a receiving bench's device input did on the station's screens (the device
/// dispatcher calls this for every input; pickup inputs are not its business).
pub fn show_device_input(
    feed: &StationFeed,
    station: &str,
    outcome: &crate::workflows::devices::InputOutcome,
    at: Timestamp,
) {
    use crate::workflows::devices::InputOutcome;
    let bench = match outcome {
        InputOutcome::Scan(scan) => Bench::Scan(scan.clone()),
        InputOutcome::Weight { grams, line } => Bench::Weight {
            grams: *grams,
            delivery_id: line.delivery_id.clone(),
            line_no: line.line_no,
        },
        InputOutcome::ReceivingRefused(e) => refused(e),
        InputOutcome::Code(_)
        | InputOutcome::PickupRefused(_)
        | InputOutcome::Item { .. }
        | InputOutcome::CounterWeight { .. } => {
            return;
        }
    };
    feed.show(station, Shown::Receiving(bench), at);
}

fn refused(e: &ReceivingError) -> Bench {
    Bench::Refused {
        zh: words::refusal(e, Lang::ZhCn),
        en: words::refusal(e, Lang::En),
    }
}

pub(super) fn said(zh: String, en: String, ok: bool) -> Bench {
    if ok {
        Bench::Done { zh, en }
    } else {
        Bench::Refused { zh, en }
    }
}

/// The receiving home page of a signed-in clerk.
pub(super) async fn home(app: &StationApp, s: &Session) -> Response {
    html(
        StatusCode::OK,
        templates::render("receiving.html", context(app, s, false).await),
    )
}

#[derive(Serialize)]
struct DeliveryRow {
    delivery_id: String,
    supplier: String,
    expected_at: String,
    done: usize,
    held: usize,
    waiting: usize,
    state: &'static str,
    open_line: u32,
    current: bool,
}

#[derive(Serialize)]
struct PhotoView {
    tone: Tone,
    verdict: &'static str,
    why: Vec<String>,
    top: Vec<String>,
}

#[derive(Serialize)]
struct LineRow {
    line_no: u32,
    sku: String,
    name: String,
    lot: String,
    expiry: String,
    expected_count: String,
    scanned: String,
    expected_weight: String,
    weighed: String,
    tolerance: String,
    photo: Option<PhotoView>,
    flags: Vec<String>,
    state: &'static str,
    state_text: &'static str,
    proposal: Option<String>,
    reasons: Vec<String>,
    held: i64,
    selected: bool,
    /// The line's decision (or a release) put stock on the ledger; a supervisor
    /// may reverse that receipt on an open delivery.
    #[serde(default)]
    received: bool,
}

#[derive(Serialize)]
struct CurrentView {
    delivery_id: String,
    supplier: String,
    closed: bool,
    lines: Vec<LineRow>,
    selected: Option<LineRow>,
}

#[derive(Serialize)]
struct LastView {
    tone: Tone,
    text: String,
}

fn or_dash(v: Option<i64>, unit: &str) -> String {
    v.map(|v| format!("{v}{unit}"))
        .unwrap_or_else(|| "—".into())
}

fn tone_of(state: LineState) -> &'static str {
    match state {
        LineState::Waiting => "waiting",
        LineState::Accepted | LineState::Released => "ok",
        LineState::PartiallyAccepted | LineState::Held => "attention",
        LineState::Rejected | LineState::HeldRejected => "error",
    }
}

fn line_row(l: &BenchLine, lang: Lang, selected: bool) -> LineRow {
    let g = if lang == Lang::ZhCn { " 克" } else { " g" };
    let photo = l.observed.photos.last().map(|p| {
        let top: Vec<String> = p
            .top_k
            .iter()
            .take(3)
            .map(|s| {
                format!(
                    "{} {:.0}%",
                    words::produce_class(&s.label, lang),
                    s.probability * 100.0
                )
            })
            .collect();
        let expected: Vec<String> = p
            .expected_labels
            .iter()
            .map(|e| words::produce_class(e, lang))
            .collect();
        let why = match (p.verdict, lang) {
            (PhotoVerdict::Pass, Lang::ZhCn) => {
                vec![format!("识别为应到商品（{}）", expected.join("、"))]
            }
            (PhotoVerdict::Pass, Lang::En) => vec![format!(
                "recognised as the expected product ({})",
                expected.join(", ")
            )],
            (_, Lang::ZhCn) => vec![format!(
                "模型认为是 {}，此行应为 {}",
                top.first().cloned().unwrap_or_default(),
                expected.join("、")
            )],
            (_, Lang::En) => vec![format!(
                "the model sees {}, the line expects {}",
                top.first().cloned().unwrap_or_default(),
                expected.join(", ")
            )],
        };
        PhotoView {
            tone: match p.verdict {
                PhotoVerdict::Pass => Tone::Ok,
                PhotoVerdict::NeedsReview => Tone::Attention,
                PhotoVerdict::Fail => Tone::Error,
            },
            verdict: words::verdict(p.verdict, lang),
            why,
            top,
        }
    });
    let scanned = match l.observed.counted_by_staff {
        Some(n) => format!("{n} ✎"),
        None => l.observed.scanned().to_string(),
    };
    let (proposal, reasons) = match (&l.proposal, &l.decision) {
        (Some(p), _) => (
            Some(format!(
                "{} · {}",
                words::outcome(p.outcome, lang),
                quantities(p.accepted, p.held, p.rejected, lang)
            )),
            p.reasons.iter().map(|r| words::reason(r, lang)).collect(),
        ),
        (None, Some(d)) => (
            None,
            d.decision
                .reasons
                .iter()
                .map(|r| words::reason(r, lang))
                .collect(),
        ),
        (None, None) => (None, vec![]),
    };
    LineRow {
        line_no: l.line.line_no,
        sku: l.line.sku.to_string(),
        name: if l.sku_name.is_empty() {
            l.line.sku.to_string()
        } else {
            l.sku_name.clone()
        },
        lot: l.line.lot.clone(),
        expiry: l.line.expiry.map(|e| e.to_string()).unwrap_or_default(),
        expected_count: or_dash(l.line.expected_count, ""),
        scanned,
        expected_weight: or_dash(l.line.expected_weight_g, g),
        weighed: or_dash(l.observed.weights_g.last().copied(), g),
        tolerance: format!("± {}{g}", l.line.weight_tolerance_g),
        photo,
        flags: l
            .observed
            .flagged
            .iter()
            .map(|(code, f)| format!("{code}: {}", words::flag(f, lang)))
            .collect(),
        state: tone_of(l.state),
        state_text: words::state(l.state, lang),
        proposal,
        reasons,
        held: l
            .hold
            .as_ref()
            .filter(|h| h.status == "held")
            .map(|h| h.quantity)
            .unwrap_or(0),
        selected,
        received: l.state == LineState::Released
            || l.decision.as_ref().is_some_and(|d| d.decision.accepted > 0),
    }
}

fn quantities(accepted: i64, held: i64, rejected: i64, lang: Lang) -> String {
    match lang {
        Lang::ZhCn => format!("接收 {accepted} / 暂扣 {held} / 拒收 {rejected}"),
        Lang::En => format!("accept {accepted} / hold {held} / reject {rejected}"),
    }
}

fn last_view(app: &StationApp, station: &str, lang: Lang) -> (u64, Option<LastView>) {
    let Some(current) = app.feed.current(station) else {
        return (0, None);
    };
    let Shown::Receiving(bench) = &current.shown else {
        return (current.seq, None);
    };
    let zh = lang == Lang::ZhCn;
    let (tone, text) = match bench {
        Bench::Scan(ScanOutcome::LineSelected(sel)) => (
            Tone::Ok,
            if zh {
                format!(
                    "已打开 {} 第 {} 行（{}）",
                    sel.delivery_id, sel.line_no, sel.sku
                )
            } else {
                format!(
                    "opened {} line {} ({})",
                    sel.delivery_id, sel.line_no, sel.sku
                )
            },
        ),
        Bench::Scan(ScanOutcome::Item(deliveries::BindOutcome::Bound {
            line_no, count, ..
        })) => (
            Tone::Ok,
            if zh {
                format!("✔ 追溯码已绑定到第 {line_no} 行 · 已扫 {count} 件")
            } else {
                format!("✔ trace code bound to line {line_no} · {count} scanned")
            },
        ),
        Bench::Scan(ScanOutcome::Item(deliveries::BindOutcome::Counted {
            line_no, count, ..
        })) => (
            Tone::Ok,
            if zh {
                format!("✔ 第 {line_no} 行已计数 · 已扫 {count} 件")
            } else {
                format!("✔ counted on line {line_no} · {count} scanned")
            },
        ),
        Bench::Scan(ScanOutcome::Item(deliveries::BindOutcome::Flagged {
            line_no, flag, ..
        })) => (
            Tone::Error,
            if zh {
                format!("✖ 第 {line_no} 行已标记：{}", words::flag(flag, lang))
            } else {
                format!("✖ flagged on line {line_no}: {}", words::flag(flag, lang))
            },
        ),
        Bench::Weight {
            grams,
            delivery_id,
            line_no,
        } => (
            Tone::Ok,
            if zh {
                format!("已记录稳定重量 {grams} 克（{delivery_id} 第 {line_no} 行）")
            } else {
                format!("stable weight {grams} g recorded ({delivery_id} line {line_no})")
            },
        ),
        Bench::Done { zh: z, en } => (Tone::Ok, if zh { z.clone() } else { en.clone() }),
        Bench::Attention { zh: z, en } => {
            (Tone::Attention, if zh { z.clone() } else { en.clone() })
        }
        Bench::Refused { zh: z, en } => (Tone::Error, if zh { z.clone() } else { en.clone() }),
    };
    (current.seq, Some(LastView { tone, text }))
}

async fn context(app: &StationApp, s: &Session, fresh: bool) -> serde_json::Value {
    let now = crate::clock::now();
    let today = app.site.today(now);
    let since = crate::clock::site_day_start(app.site.timezone, now);
    let (policy, station) = (app.site.receiving, s.station.clone());
    let read = app
        .store
        .read(move |c| {
            let list = deliveries::bench_deliveries(c, since, &policy, today)?;
            let selection = deliveries::station_selection(c, &station)?;
            let current = match &selection {
                Some((d, _)) => deliveries::bench_delivery(c, d, &policy, today)?,
                None => None,
            };
            Ok::<_, ReceivingError>((list, selection, current))
        })
        .await;
    let (list, selection, current): (Vec<BenchDelivery>, _, Option<BenchDelivery>) = read
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "station app: cannot read the deliveries");
            (vec![], None, None)
        });
    let lang = s.lang;
    let rows: Vec<DeliveryRow> = list
        .iter()
        .map(|d| {
            let (done, held, waiting) = d.progress();
            DeliveryRow {
                delivery_id: d.delivery_id.clone(),
                supplier: d.supplier.clone(),
                expected_at: d.expected_at.clone().unwrap_or_default(),
                done,
                held,
                waiting,
                state: catalogue::text(
                    if d.closed {
                        "receiving.closed"
                    } else {
                        "receiving.in_progress"
                    },
                    lang,
                ),
                open_line: d
                    .lines
                    .iter()
                    .find(|l| l.state == LineState::Waiting)
                    .or(d.lines.first())
                    .map(|l| l.line.line_no)
                    .unwrap_or(1),
                current: selection
                    .as_ref()
                    .is_some_and(|(id, _)| *id == d.delivery_id),
            }
        })
        .collect();
    let dispute = super::dispute_view::view(
        current.as_ref(),
        selection.as_ref(),
        lang,
        app.site.timezone,
    );
    let current = current.map(|d| {
        let selected_no = selection.as_ref().map(|(_, n)| *n);
        CurrentView {
            delivery_id: d.delivery_id.clone(),
            supplier: d.supplier.clone(),
            closed: d.closed,
            lines: d
                .lines
                .iter()
                .map(|l| line_row(l, lang, Some(l.line.line_no) == selected_no))
                .collect(),
            selected: d
                .lines
                .iter()
                .find(|l| Some(l.line.line_no) == selected_no)
                .map(|l| line_row(l, lang, true)),
        }
    });
    let (seq, last) = last_view(app, &s.station, lang);
    serde_json::json!({
        "lang": lang.tag(),
        "csrf": s.csrf,
        "staff": StaffView { staff_id: &s.staff_id, name: &s.name },
        "station_name": app.station_name(&s.station),
        "supervisor": s.role.supervises(),
        "seq": seq,
        "fresh": if fresh { "1" } else { "0" },
        "deliveries": rows,
        "current": current,
        "last": last,
        "request_id": random_hex(12),
        "resolve_reasons": RESOLVE_REASONS,
        "hold_reasons": hub_core::receiving::HoldReason::ALL.map(|r| r.as_str()),
        "reversal_reasons": hub_core::receiving_reversal::ReversalReason::ALL.map(|r| r.as_str()),
        "dispute": dispute,
    })
}

pub(super) async fn fragment(app: &StationApp, s: &Session, fresh: bool) -> Response {
    html(
        StatusCode::OK,
        templates::render("receiving_panel.html", context(app, s, fresh).await),
    )
}

/// The refusal to send when the session's station is not a declared receiving bench.
pub(super) fn not_at_bench(app: &StationApp, s: &Session) -> Option<Response> {
    app.site
        .station(&s.station, StationKind::Receiving)
        .err()
        .map(|_| {
            refusal(
                StatusCode::CONFLICT,
                "station is not a receiving bench",
                s.lang,
                "error.wrong_station",
            )
        })
}

async fn current(State(app): State<StationApp>, headers: HeaderMap) -> Response {
    let Some(s) = super::session(&app, &headers).await else {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "no session",
            Lang::default(),
            "error.session",
        );
    };
    if let Some(r) = not_at_bench(&app, &s) {
        return r;
    }
    fragment(&app, &s, false).await
}

#[derive(Deserialize)]
struct OpenForm {
    #[serde(default)]
    csrf: Option<String>,
    delivery: String,
    line: String,
}

/// Opens a delivery line on the bench (as scanning its label would).
async fn open(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Form(form): Form<OpenForm>,
) -> Response {
    let s = match authorised(&app, &headers, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Some(r) = not_at_bench(&app, &s) {
        return r;
    }
    let now = crate::clock::now();
    let Ok(line_no) = form.line.trim().parse::<u32>() else {
        return bad_number(&app, &s, "line", now).await;
    };
    let (site, station, delivery) = (app.site.clone(), s.station.clone(), form.delivery);
    let opened = app
        .store
        .write(move |c| {
            crate::workflows::receiving::select_in(
                c,
                &site,
                &station,
                delivery.trim(),
                line_no,
                now,
            )
        })
        .await;
    let bench = match opened {
        Ok(sel) => Bench::Scan(ScanOutcome::LineSelected(sel)),
        Err(e) => refused(&e),
    };
    app.feed.show(&s.station, Shown::Receiving(bench), now);
    fragment(&app, &s, true).await
}

#[derive(Deserialize)]
struct ScanForm {
    #[serde(default)]
    csrf: Option<String>,
    code: String,
}

/// A code typed or scanned with a keyboard-wedge scanner on the tablet: the same step as the
/// bench's own scanner.
async fn scan(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Form(form): Form<ScanForm>,
) -> Response {
    let s = match authorised(&app, &headers, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Some(r) = not_at_bench(&app, &s) {
        return r;
    }
    let now = crate::clock::now();
    let code = form.code.trim();
    let bench = if code.is_empty() || code.len() > 256 {
        said(
            "请扫描或输入一个码".into(),
            "scan or type a code".into(),
            false,
        )
    } else {
        match crate::workflows::receiving::scan(&app.store, &app.site, &s.station, code, now).await
        {
            Ok(outcome) => Bench::Scan(outcome),
            Err(e) => refused(&e),
        }
    };
    app.feed.show(&s.station, Shown::Receiving(bench), now);
    fragment(&app, &s, true).await
}

pub(super) async fn refuse(
    app: &StationApp,
    s: &Session,
    now: Timestamp,
    e: ReceivingError,
) -> Response {
    app.feed
        .show(&s.station, Shown::Receiving(refused(&e)), now);
    fragment(app, s, true).await
}

async fn bad_number(app: &StationApp, s: &Session, field: &str, now: Timestamp) -> Response {
    let bench = said(
        format!("“{field}” 需要一个数字"),
        format!("“{field}” needs a number"),
        false,
    );
    app.feed.show(&s.station, Shown::Receiving(bench), now);
    fragment(app, s, true).await
}

#[derive(Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: Option<String>,
    request_id: String,
    /// What to do (`count`, `split`, `decide`, `release`, `close`). Not named `action`: a
    /// field of that name would shadow the form's `action` property in the page's script.
    #[serde(rename = "op")]
    action: String,
    delivery: String,
    #[serde(default)]
    line: String,
    #[serde(default)]
    count: String,
    #[serde(default)]
    lot: String,
    #[serde(default)]
    expiry: String,
    #[serde(default)]
    quantity: String,
    #[serde(default)]
    release: String,
    #[serde(default)]
    reject: String,
    #[serde(default)]
    reason: String,
    /// The supervisor ticked that the receipt is to be reversed.
    #[serde(default)]
    confirm: String,
}

/// A number field: empty is `None`, anything else must be an integer.
fn number(text: &str) -> Result<Option<i64>, ()> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse::<i64>().map(Some).map_err(|_| ())
}

/// The clerk's actions on the open delivery, each a station command run once per request id.
async fn action(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    let s = match authorised(&app, &headers, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Some(r) = not_at_bench(&app, &s) {
        return r;
    }
    let now = crate::clock::now();
    let request_id = form.request_id.trim().to_owned();
    let delivery_id = form.delivery.trim().to_owned();
    if request_id.is_empty() || request_id.len() > 64 || delivery_id.is_empty() {
        return refusal(
            StatusCode::BAD_REQUEST,
            "receiving action without a request id or delivery",
            s.lang,
            "error.forged",
        );
    }
    let line = number(&form.line);
    let line_no = match line {
        Ok(Some(n)) if n > 0 && n <= i64::from(u32::MAX) => n as u32,
        _ if form.action == "close" => 0,
        _ => return bad_number(&app, &s, "line", now).await,
    };
    let command = match form.action.as_str() {
        "count" => match number(&form.count) {
            Ok(Some(count)) if (0..=deliveries::MAX_LINE_COUNT).contains(&count) => {
                StationAction::ReceiveCount {
                    delivery_id: delivery_id.clone(),
                    line_no,
                    count,
                }
            }
            Ok(Some(count)) => return refuse(&app, &s, now, ReceivingError::BadCount(count)).await,
            _ => return bad_number(&app, &s, "count", now).await,
        },
        "split" => {
            let Ok(Some(quantity)) = number(&form.quantity) else {
                return bad_number(&app, &s, "quantity", now).await;
            };
            let expiry = form.expiry.trim();
            let expiry = if expiry.is_empty() {
                None
            } else {
                match expiry.parse::<chrono::NaiveDate>() {
                    Ok(d) => Some(d),
                    Err(_) => return bad_number(&app, &s, "expiry", now).await,
                }
            };
            if form.lot.trim().is_empty() || form.lot.trim().len() > 64 {
                return bad_number(&app, &s, "lot", now).await;
            }
            StationAction::ReceiveSplit {
                delivery_id: delivery_id.clone(),
                line_no,
                lot: form.lot.trim().to_owned(),
                expiry,
                quantity,
            }
        }
        "decide" => StationAction::ReceiveDecide {
            delivery_id: delivery_id.clone(),
            line_no,
            hold: None,
        },
        "hold" => {
            let Some(hold) = hub_core::receiving::HoldReason::parse(form.reason.trim()) else {
                let bench = said(
                    "请从列表中选择扣留原因".into(),
                    "pick why the line is held from the list".into(),
                    false,
                );
                app.feed.show(&s.station, Shown::Receiving(bench), now);
                return fragment(&app, &s, true).await;
            };
            StationAction::ReceiveDecide {
                delivery_id: delivery_id.clone(),
                line_no,
                hold: Some(hold),
            }
        }
        "close" => StationAction::ReceiveClose {
            delivery_id: delivery_id.clone(),
        },
        "release" => {
            if !s.role.supervises() {
                return refusal(
                    StatusCode::FORBIDDEN,
                    "release by a clerk",
                    s.lang,
                    "receiving.supervisor_only",
                );
            }
            let (Ok(release), Ok(reject)) = (number(&form.release), number(&form.reject)) else {
                return bad_number(&app, &s, "release", now).await;
            };
            let (release, reject) = (release.unwrap_or(0), reject.unwrap_or(0));
            if release < 0 || reject < 0 || release + reject == 0 {
                return refuse(
                    &app,
                    &s,
                    now,
                    ReceivingError::BadQuantity {
                        delivery_id,
                        line_no,
                        asked: release + reject,
                        held: 0,
                    },
                )
                .await;
            }
            let Some(reason) = RESOLVE_REASONS.iter().find(|r| **r == form.reason.trim()) else {
                return refusal(
                    StatusCode::BAD_REQUEST,
                    "release without a reason from the list",
                    s.lang,
                    "error.forged",
                );
            };
            StationAction::ReceiveRelease {
                delivery_id: delivery_id.clone(),
                line_no,
                release,
                reject,
                reason: (*reason).to_owned(),
            }
        }
        "reverse" => match reversal_command(
            &app,
            &s,
            &form.reason,
            &form.confirm,
            &delivery_id,
            line_no,
            now,
        )
        .await
        {
            Ok(command) => command,
            Err(r) => return r,
        },
        _ => {
            return refusal(
                StatusCode::BAD_REQUEST,
                "unknown receiving action",
                s.lang,
                "error.forged",
            );
        }
    };
    // An action on a closed or cancelled delivery is refused in the clerk's words before it is
    // run (the workflow refuses it too).
    let (id, policy, today) = (delivery_id.clone(), app.site.receiving, app.site.today(now));
    match app
        .store
        .read(move |c| deliveries::bench_delivery(c, &id, &policy, today))
        .await
    {
        Ok(None) => {
            return refuse(&app, &s, now, ReceivingError::UnknownDelivery(delivery_id)).await;
        }
        Ok(Some(d)) if d.closed => {
            return refuse(&app, &s, now, ReceivingError::Closed(delivery_id)).await;
        }
        Ok(Some(d)) if d.cancelled => {
            return refuse(&app, &s, now, ReceivingError::Cancelled(delivery_id)).await;
        }
        Ok(Some(_)) => {}
        Err(e) => {
            tracing::error!(error = %e, "station app: cannot read a delivery");
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "store error at a receiving action",
                s.lang,
                "error.store",
            );
        }
    }
    let kind = command_kind(&command);
    let body = serde_json::json!({
        "kind": kind,
        "delivery": delivery_id,
        "line": line_no,
        "count": form.count.trim(),
        "lot": form.lot.trim(),
        "expiry": form.expiry.trim(),
        "quantity": form.quantity.trim(),
        "release": form.release.trim(),
        "reject": form.reject.trim(),
        "reason": form.reason.trim(),
    })
    .to_string();
    let hash = staff_store::secret_hash(&format!("app|{body}"));
    let record = super::recorded::Record {
        action: kind,
        detail: format!("{delivery_id}/{line_no}"),
    };
    let done = super::recorded::run_and_record(
        &app,
        &s,
        (request_id, hash),
        record,
        move |_| Ok(command),
        now,
    )
    .await;
    let bench = match done {
        Ok(reply) if reply.ok => {
            tracing::info!(staff = %s.staff_id, station = %s.station, kind, delivery = %delivery_id, line_no, "receiving action from the station app");
            let (zh, en) = done_words(kind, &delivery_id, line_no);
            said(zh, en, true)
        }
        Ok(reply) => {
            let reason = reply.reason.unwrap_or_default();
            tracing::warn!(kind, delivery = %delivery_id, line_no, reason = %reason, "station app: receiving action refused");
            said(
                format!("操作被拒绝：{reason}"),
                format!("refused: {reason}"),
                false,
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "station app: a receiving action could not be stored");
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "store error at a receiving action",
                s.lang,
                "error.store",
            );
        }
    };
    app.feed.show(&s.station, Shown::Receiving(bench), now);
    fragment(&app, &s, true).await
}

fn command_kind(action: &StationAction) -> &'static str {
    action.name()
}

fn done_words(kind: &str, delivery_id: &str, line_no: u32) -> (String, String) {
    match kind {
        "receive_count" => (
            format!("已保存第 {line_no} 行的数量"),
            format!("count saved for line {line_no}"),
        ),
        "receive_split" => (
            format!("第 {line_no} 行已拆分出新批次"),
            format!("line {line_no} split into a new lot"),
        ),
        "receive_decide" => (
            format!("第 {line_no} 行已决定"),
            format!("line {line_no} decided"),
        ),
        "receive_reverse" => (
            format!("第 {line_no} 行的入库已撤销，等待重新决定"),
            format!(
                "the receipt of line {line_no} was reversed; the line waits for a new decision"
            ),
        ),
        "receive_release" => (
            format!("第 {line_no} 行的暂扣已处理"),
            format!("held stock of line {line_no} resolved"),
        ),
        _ => (
            format!("到货单 {delivery_id} 已关闭"),
            format!("delivery {delivery_id} closed"),
        ),
    }
}

// The bench's "撤销收货": a supervisor reverses a received line's last receipt on an open
// delivery, with a reason from the list and a ticked confirmation. Checked first so a refusal
// (outside the window, stock already gone, …) is said in the clerk's words; then it runs as the
// `receive_reverse` station command through the bench's usual action path (once per request
// id, recorded with the staff id).

async fn say_reversal(
    app: &StationApp,
    s: &Session,
    zh: String,
    en: String,
    now: Timestamp,
) -> Response {
    app.feed
        .show(&s.station, Shown::Receiving(said(zh, en, false)), now);
    fragment(app, s, true).await
}

/// The station command for the bench form's `reverse`, or the answer that refuses it.
async fn reversal_command(
    app: &StationApp,
    s: &Session,
    reason: &str,
    confirm: &str,
    delivery_id: &str,
    line_no: u32,
    now: Timestamp,
) -> Result<StationAction, Response> {
    if !s.role.supervises() {
        return Err(refusal(
            StatusCode::FORBIDDEN,
            "receipt reversal by a clerk",
            s.lang,
            "receiving.supervisor_only",
        ));
    }
    let text = |key: &str| {
        (
            catalogue::text(key, Lang::ZhCn).to_owned(),
            catalogue::text(key, Lang::En).to_owned(),
        )
    };
    let Some(reason) = hub_core::receiving_reversal::ReversalReason::parse(reason.trim()) else {
        let (zh, en) = text("receiving.reverse.pick_reason");
        return Err(say_reversal(app, s, zh, en, now).await);
    };
    if confirm.trim() != "yes" {
        let (zh, en) = text("receiving.reverse.unconfirmed");
        return Err(say_reversal(app, s, zh, en, now).await);
    }
    let (id, window) = (delivery_id.to_owned(), app.site.reversal_window_minutes);
    let checked = app
        .store
        .read(move |c| crate::store::receipt_reversal::check(c, &id, line_no, true, window, now))
        .await;
    match checked {
        Ok(Ok(_)) => Ok(StationAction::ReceiveReverse {
            delivery_id: delivery_id.to_owned(),
            line_no,
            reason,
        }),
        Ok(Err(why)) => {
            use catalogue::receiving::reversal_refusal;
            Err(say_reversal(
                app,
                s,
                reversal_refusal(why, Lang::ZhCn),
                reversal_refusal(why, Lang::En),
                now,
            )
            .await)
        }
        Err(e) => Err(refuse(app, s, now, e).await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: &'static str, held: i64, selected: bool) -> LineRow {
        LineRow {
            line_no: 1,
            sku: "ORANGE".into(),
            name: "<b>橙子</b>".into(),
            lot: "L1".into(),
            expiry: "2030-01-01".into(),
            expected_count: "10".into(),
            scanned: "9".into(),
            expected_weight: "1000 g".into(),
            weighed: "990 g".into(),
            tolerance: "± 50 g".into(),
            photo: Some(PhotoView {
                tone: Tone::Error,
                verdict: "fail",
                why: vec!["why".into()],
                top: vec!["banana 90%".into()],
            }),
            flags: vec!["X: already bound".into()],
            state,
            state_text: "held",
            proposal: Some("held".into()),
            reasons: vec!["short".into()],
            held,
            selected,
            received: true,
        }
    }

    /// The bench page with every optional part shown (the last scan, a delivery, the selected
    /// line with its photo, flags, the count/split/decide forms and a supervisor's release), in
    /// both languages: it renders, names only texts the catalogue has, and escapes outside text.
    #[test]
    fn the_bench_renders_in_both_languages_with_catalogue_texts_only() {
        for (lang, supervisor, state, held) in [
            (Lang::ZhCn, false, "waiting", 0),
            (Lang::En, true, "attention", 5),
            (Lang::ZhCn, true, "attention", 5),
        ] {
            let context = serde_json::json!({
                "lang": lang.tag(), "csrf": "c",
                "staff": {"staff_id": "li", "name": "李"}, "station_name": "收货台",
                "supervisor": supervisor, "seq": 3, "fresh": "1",
                "deliveries": [DeliveryRow {
                    delivery_id: "D1".into(), supplier: "<b>S</b>".into(), expected_at: "08:30".into(),
                    done: 1, held: 1, waiting: 1, state: "x", open_line: 1, current: true,
                }],
                "current": CurrentView {
                    delivery_id: "D1".into(), supplier: "S".into(), closed: false,
                    lines: vec![row(state, held, true)], selected: Some(row(state, held, true)),
                },
                "last": LastView { tone: Tone::Error, text: "flagged".into() },
                "request_id": "r1", "resolve_reasons": RESOLVE_REASONS,
                "hold_reasons": hub_core::receiving::HoldReason::ALL.map(|r| r.as_str()),
                "reversal_reasons": hub_core::receiving_reversal::ReversalReason::ALL.map(|r| r.as_str()),
            });
            let page = templates::try_render("receiving.html", &context)
                .unwrap_or_else(|e| panic!("receiving.html: {e:#}"));
            assert!(
                !page.contains(">receiving.") && !page.contains(" receiving."),
                "{} shows a key without text: {page}",
                lang.tag()
            );
            assert!(!page.contains("<b>S</b>") && !page.contains("<b>橙子</b>"));
            assert!(page.contains("id=\"scale\"") && page.contains("id=\"close-delivery\""));
            assert_eq!(page.contains("id=\"resolve\""), supervisor && held > 0);
            assert_eq!(page.contains("id=\"save-count\""), state == "waiting");
            assert_eq!(
                page.contains("id=\"reverse\""),
                supervisor,
                "only a supervisor may reverse"
            );
        }
    }
}

//! The station app: the touch screens of the pickup counter (and, later, the receiving bench),
//! served by `hub run` on the status page's server under `/station`.
//!
//! Server-rendered pages ([`templates`], texts from [`crate::catalogue`]), one small script and
//! a style sheet compiled into the binary ([`assets`]), results pushed live over Server-Sent
//! Events ([`feed`]). The app decides nothing itself: a code check goes through
//! `workflows::pickup`, a handover through the same station-command path that MQTT station
//! commands take (`workflows::station::run_command_in`: one workflow, applied once per request id).
//!
//! Who may do what: a tablet is first **paired** to a declared station with a one-time code
//! (`hub station pair`), which gives it a long-lived device cookie (stored hashed, revocable
//! with `hub station revoke`). Staff then **sign in** on it with staff id and PIN (argon2
//! hash; 5 wrong PINs lock the account for 5 minutes). A session is kept in the store (its
//! token hashed, `store::screens`) so it survives a restart of the hub, idles out after
//! [`SESSION_IDLE`], and carries a CSRF token every state-changing request must send; every
//! POST must also come from the app's own origin. A refused request changes nothing and is
//! logged with its reason.

pub mod assets;
pub mod charts;
pub mod dashboard;
mod dispute_view;
pub mod disputes;
pub mod drilldown;
pub mod feed;
pub mod import;
pub mod items;
mod line_refusal;
mod partial;
pub mod receiving;
mod recorded;
pub mod stock;
mod supervisor;
pub mod templates;
mod weighing;

use crate::catalogue::{self, Lang, Tone};
use crate::config::StationKind;
use crate::store::Store;
use crate::store::staff::{self as staff_store, Role, StaffMember};
use crate::workflows::Site;
use crate::workflows::pickup::CodeEntry;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use feed::{Shown, StationFeed};
use hub_core::Timestamp;
use hub_core::event::RefusedTo;
use hub_core::pickup::CodeCheck;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A session unused this long is signed out.
pub const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// A session's idle clock is stored again only after this long (one write per minute of use,
/// not one per request: the card wears).
const SESSION_TOUCH_MS: i64 = 60 * 1000;
/// Wrong PINs in a row that lock an account.
pub const MAX_PIN_FAILURES: i64 = 5;
/// How long a locked account stays locked.
pub const PIN_LOCK_MS: i64 = 5 * 60 * 1000;
/// How long a pairing code from `hub station pair` is valid.
pub const PAIRING_VALID_MS: i64 = 10 * 60 * 1000;
/// Largest request body the app reads (its forms are tiny).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

const DEVICE_COOKIE: &str = "hub_device";
const SESSION_COOKIE: &str = "hub_session";

/// A signed-in person on a paired tablet.
#[derive(Debug, Clone)]
struct Session {
    staff_id: String,
    name: String,
    role: Role,
    lang: Lang,
    device_id: String,
    station: String,
    csrf: String,
}

/// The app's shared state; cheap to clone.
#[derive(Clone)]
pub struct StationApp {
    store: Store,
    site: Site,
    feed: StationFeed,
    /// The vision check, for photos taken with a receiving tablet's camera (none: the hub has
    /// no model, and the tablet is told so).
    photos: Option<std::sync::Arc<dyn PhotoCheck>>,
}

/// What checking a tablet's photo said, for the bench screen.
#[derive(Debug)]
pub enum PhotoAnswer {
    /// Checked and recorded on the selected line.
    Checked {
        verdict: hub_core::receiving::PhotoVerdict,
    },
    /// The receiving step was refused (no line selected, a closed delivery …).
    Refused(crate::store::deliveries::ReceivingError),
    /// The photo itself is at fault (not an image, too large, a bomb, corrupt): the
    /// catalogue key of the words; nothing of it is kept.
    BadPhoto(&'static str),
    /// The check could not run now: the catalogue key of the words.
    Failed(&'static str),
}

/// The photo check a receiving tablet's upload goes through. The daemon gives the vision
/// desk (`crate::vision::PhotoDesk`), the one check of every photo source; the app only asks.
pub trait PhotoCheck: Send + Sync {
    /// Checks `bytes` for the line selected at `station` and records the evidence.
    fn check(
        &self,
        station: String,
        bytes: Vec<u8>,
        now: Timestamp,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = PhotoAnswer> + Send + '_>>;
}

impl std::fmt::Debug for StationApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StationApp")
            .field("site", &self.site.id)
            .finish_non_exhaustive()
    }
}

impl StationApp {
    /// The app for `site` over `store`; `feed` is shared with the device dispatcher.
    pub fn new(store: Store, site: Site, feed: StationFeed) -> StationApp {
        StationApp {
            store,
            site,
            feed,
            photos: None,
        }
    }

    /// Lets receiving tablets send photos from their camera through `check`.
    pub fn with_photos(mut self, check: std::sync::Arc<dyn PhotoCheck>) -> StationApp {
        self.photos = Some(check);
        self
    }

    fn station_name(&self, station: &str) -> String {
        self.site
            .stations
            .iter()
            .find(|s| s.id == station)
            .map(|s| s.name.clone())
            .unwrap_or_else(|| station.to_owned())
    }
}

/// A random secret, hex.
fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A new pairing code: 8 digits.
pub fn new_pairing_code() -> String {
    let n = rand::random::<u32>() % 100_000_000;
    format!("{n:08}")
}

/// Hashes a PIN with argon2id and a random salt (slow on purpose; call off the async workers).
pub fn hash_pin(pin: &str) -> Result<String, PinHashError> {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(pin.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PinHashError(e.to_string()))
}

/// The PIN could not be hashed (argon2 refused its parameters or input).
#[derive(Debug, thiserror::Error)]
#[error("cannot hash the PIN: {0}")]
pub struct PinHashError(String);

fn pin_matches(pin: &str, stored: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(stored)
        .map(|h| {
            argon2::Argon2::default()
                .verify_password(pin.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Checks a PIN's form: 4-12 digits.
pub fn valid_pin(pin: &str) -> bool {
    (4..=12).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit())
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The app's routes (under `/station` and `/assets`), with their own state.
pub fn router(app: StationApp) -> Router {
    Router::new()
        .route("/station", get(home))
        .route("/station/pair", post(pair))
        .route("/station/signin", post(sign_in))
        .route("/station/signout", post(sign_out))
        .route("/station/pickup/current", get(current))
        .route("/station/pickup/check", post(check))
        .route("/station/pickup/handover", post(handover))
        .route("/station/pickup/refuse", post(refuse))
        .merge(line_refusal::routes())
        .route("/station/events", get(events))
        .route("/assets/{version}/{name}", get(asset))
        .merge(receiving::routes())
        .merge(supervisor::routes())
        .merge(items::routes())
        .merge(dashboard::routes())
        .merge(stock::routes())
        .merge(import::routes())
        .merge(drilldown::routes())
        .merge(disputes::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(app)
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        // Not `no-referrer`: with it a browser sends `Origin: null` on the app's own forms.
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn asset(Path((version, name)): Path<(String, String)>) -> Response {
    match assets::get(&version, &name) {
        Some((content_type, body)) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            body,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "404: no such asset in this version of the hub; reload the page\n",
        )
            .into_response(),
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

fn set_cookie(name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let age = max_age
        .map(|s| format!("; Max-Age={s}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict{age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// Whether a state-changing request comes from the app's own pages: its `Origin` names this
/// host, or (browsers that send no `Origin`) `Sec-Fetch-Site` says same-origin.
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if let Some(origin) = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| *o != "null")
    {
        let Some(host) = host else { return false };
        return origin == format!("http://{host}") || origin == format!("https://{host}");
    }
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "same-origin")
}

/// A refusal for people: the status, a line in the log, a page that says what to do.
fn refusal(status: StatusCode, why: &str, lang: Lang, message_key: &str) -> Response {
    tracing::warn!(
        status = status.as_u16(),
        reason = why,
        "station app request refused"
    );
    let page = templates::render(
        "message.html",
        serde_json::json!({
            "lang": lang.tag(),
            "message": catalogue::text(message_key, lang),
        }),
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response()
}

fn html(status: StatusCode, page: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response()
}

/// The paired device behind the request's device cookie, if any.
async fn device(app: &StationApp, headers: &HeaderMap) -> Option<staff_store::PairedDevice> {
    let token = cookie(headers, DEVICE_COOKIE)?.to_owned();
    if token.len() != 64 {
        return None;
    }
    match app
        .store
        .read(move |c| staff_store::device_by_token(c, &token))
        .await
    {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e, "station app: cannot read paired devices");
            None
        }
    }
}

/// The live session of the request, on the device it was opened on; refreshes its idle clock.
async fn session(app: &StationApp, headers: &HeaderMap) -> Option<Session> {
    let token = cookie(headers, SESSION_COOKIE)?;
    if token.len() != 64 {
        return None;
    }
    let key = staff_store::secret_hash(token);
    let device = device(app, headers).await?;
    let now = crate::clock::now();
    let idle_before = idle_before(now);
    let k = key.clone();
    let found = match app
        .store
        .read(move |c| crate::store::screens::session(c, &k, idle_before))
        .await
    {
        Ok(found) => found?,
        Err(e) => {
            tracing::error!(error = %e, "station app: cannot read sessions");
            return None;
        }
    };
    if found.device_id != device.device_id || found.station != device.station {
        return None;
    }
    if now.millis() - found.last_seen.millis() >= SESSION_TOUCH_MS {
        let touched = app
            .store
            .write(move |c| crate::store::screens::touch_session(c, &key, now))
            .await;
        if let Err(e) = touched {
            tracing::warn!(error = %e, "station app: session's idle clock not stored");
        }
    }
    Some(Session {
        staff_id: found.staff_id,
        name: found.name,
        role: found.role,
        lang: Lang::parse(&found.lang).unwrap_or_default(),
        device_id: found.device_id,
        station: found.station,
        csrf: found.csrf,
    })
}

/// Sessions last used before this are idle.
fn idle_before(now: Timestamp) -> Timestamp {
    Timestamp(now.millis() - SESSION_IDLE.as_millis() as i64)
}

/// A signed-in session whose CSRF token the request carries, from the app's own origin.
async fn authorised(
    app: &StationApp,
    headers: &HeaderMap,
    form_csrf: Option<&str>,
) -> Result<Session, Response> {
    if !same_origin(headers) {
        return Err(refusal(
            StatusCode::FORBIDDEN,
            "cross-site or origin-less request",
            Lang::default(),
            "error.forged",
        ));
    }
    let Some(s) = session(app, headers).await else {
        return Err(refusal(
            StatusCode::UNAUTHORIZED,
            "no session (unpaired tablet, expired or missing sign-in)",
            Lang::default(),
            "error.session",
        ));
    };
    let offered = form_csrf.or_else(|| headers.get("x-csrf-token").and_then(|v| v.to_str().ok()));
    if !offered.is_some_and(|t| constant_time_eq(t, &s.csrf)) {
        return Err(refusal(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token",
            s.lang,
            "error.forged",
        ));
    }
    Ok(s)
}

#[derive(Serialize)]
struct StaffView<'a> {
    staff_id: &'a str,
    name: &'a str,
}

async fn home(State(app): State<StationApp>, headers: HeaderMap) -> Response {
    let Some(dev) = device(&app, &headers).await else {
        return html(StatusCode::OK, pair_page(None));
    };
    let Some(s) = session(&app, &headers).await else {
        return html(
            StatusCode::OK,
            signin_page(&app, &dev.station, None, None, ""),
        );
    };
    let kind = app
        .site
        .stations
        .iter()
        .find(|st| st.id == s.station)
        .map(|st| st.kind);
    if kind == Some(StationKind::Receiving) {
        return receiving::home(&app, &s).await;
    }
    if kind != Some(StationKind::Pickup) {
        return refusal(
            StatusCode::CONFLICT,
            "station is not a pickup counter",
            s.lang,
            "error.wrong_station",
        );
    }
    let result = result_view(&app, &s.station, s.lang).await;
    html(
        StatusCode::OK,
        templates::render("pickup.html", page_context(&app, &s, result, false)),
    )
}

fn pair_page(problem: Option<&str>) -> String {
    templates::render(
        "pair.html",
        serde_json::json!({"lang": Lang::default().tag(), "problem": problem}),
    )
}

fn signin_page(
    app: &StationApp,
    station: &str,
    problem: Option<&str>,
    tries_left: Option<i64>,
    staff_id: &str,
) -> String {
    templates::render(
        "signin.html",
        serde_json::json!({
            "lang": Lang::default().tag(),
            "station_name": app.station_name(station),
            "problem": problem,
            "tries_left": tries_left,
            "staff_id": staff_id,
        }),
    )
}

#[derive(Deserialize)]
struct PairForm {
    code: String,
}

async fn pair(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Form(form): Form<PairForm>,
) -> Response {
    if !same_origin(&headers) {
        return refusal(
            StatusCode::FORBIDDEN,
            "cross-site pairing request",
            Lang::default(),
            "error.forged",
        );
    }
    let code = form.code.trim().to_owned();
    let device_id = format!("tablet-{}", &random_hex(4));
    let token = random_hex(32);
    let now = crate::clock::now();
    let (id, tok) = (device_id.clone(), token.clone());
    let paired = if code.is_empty() || code.len() > 32 {
        Ok(None)
    } else {
        app.store
            .write(move |c| staff_store::redeem_pairing(c, &code, &id, &tok, now))
            .await
    };
    match paired {
        Ok(Some(station)) => {
            tracing::info!(device = %device_id, station, "tablet paired");
            let mut response = Redirect::to("/station").into_response();
            response.headers_mut().insert(
                header::SET_COOKIE,
                set_cookie(DEVICE_COOKIE, &token, Some(10 * 365 * 86_400)),
            );
            response
        }
        Ok(None) => {
            tracing::warn!("station app: wrong or expired pairing code");
            // Slows guessing; the code space and its ten minutes do the rest.
            tokio::time::sleep(Duration::from_millis(500)).await;
            html(StatusCode::BAD_REQUEST, pair_page(Some("pair.bad_code")))
        }
        Err(e) => {
            tracing::error!(error = %e, "station app: cannot store a pairing");
            refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "store error while pairing",
                Lang::default(),
                "error.store",
            )
        }
    }
}

#[derive(Deserialize)]
struct SignInForm {
    staff: String,
    pin: String,
}

async fn sign_in(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    if !same_origin(&headers) {
        return refusal(
            StatusCode::FORBIDDEN,
            "cross-site sign-in",
            Lang::default(),
            "error.forged",
        );
    }
    let Some(dev) = device(&app, &headers).await else {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "sign-in on an unpaired tablet",
            Lang::default(),
            "error.session",
        );
    };
    let staff_id = form.staff.trim().to_owned();
    let id = staff_id.clone();
    let member: Option<StaffMember> =
        match app.store.read(move |c| staff_store::staff(c, &id)).await {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "station app: cannot read staff");
                return refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store error at sign-in",
                    Lang::default(),
                    "error.store",
                );
            }
        };
    let now = crate::clock::now();
    let page = |status, problem: &str, tries: Option<i64>| {
        html(
            status,
            signin_page(&app, &dev.station, Some(problem), tries, &staff_id),
        )
    };
    let Some(member) = member else {
        tracing::warn!(staff = %staff_id, device = %dev.device_id, "sign-in with an unknown staff id");
        tokio::time::sleep(Duration::from_millis(300)).await;
        return page(StatusCode::UNAUTHORIZED, "signin.wrong", None);
    };
    if member.disabled {
        tracing::warn!(staff = %staff_id, "sign-in of a disabled staff member");
        return page(StatusCode::FORBIDDEN, "signin.disabled", None);
    }
    if member.locked_until.is_some_and(|t| t > now) {
        tracing::warn!(staff = %staff_id, "sign-in while locked out");
        return page(StatusCode::TOO_MANY_REQUESTS, "signin.locked", None);
    }
    let (pin, stored) = (form.pin, member.pin_hash.clone());
    let ok = tokio::task::spawn_blocking(move || pin_matches(&pin, &stored))
        .await
        .unwrap_or(false);
    let (sid, did) = (member.staff_id.clone(), dev.device_id.clone());
    let attempt = app
        .store
        .write(move |c| {
            staff_store::record_pin_attempt(c, &sid, &did, ok, MAX_PIN_FAILURES, PIN_LOCK_MS, now)
        })
        .await;
    let (failed, locked) = match attempt {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "station app: cannot record a sign-in");
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "store error at sign-in",
                Lang::default(),
                "error.store",
            );
        }
    };
    if !ok {
        tracing::warn!(staff = %staff_id, device = %dev.device_id, failed, "wrong PIN");
        if locked.is_some_and(|t| t > now) {
            return page(StatusCode::TOO_MANY_REQUESTS, "signin.locked", None);
        }
        return page(
            StatusCode::UNAUTHORIZED,
            "signin.wrong",
            Some((MAX_PIN_FAILURES - failed).max(0)),
        );
    }
    let token = random_hex(32);
    let s = Session {
        staff_id: member.staff_id.clone(),
        name: member.name.clone(),
        role: member.role,
        lang: Lang::parse(&member.lang).unwrap_or_default(),
        device_id: dev.device_id.clone(),
        station: dev.station.clone(),
        csrf: random_hex(16),
    };
    let key = staff_store::secret_hash(&token);
    let (sid, did, station, csrf) = (
        s.staff_id.clone(),
        s.device_id.clone(),
        s.station.clone(),
        s.csrf.clone(),
    );
    let opened = app
        .store
        .write(move |c| {
            crate::store::screens::open_session(
                c,
                &key,
                &sid,
                &did,
                &station,
                &csrf,
                now,
                idle_before(now),
            )
        })
        .await;
    if let Err(e) = opened {
        tracing::error!(error = %e, "station app: cannot store a session");
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "store error at sign-in",
            Lang::default(),
            "error.store",
        );
    }
    tracing::info!(staff = %s.staff_id, role = s.role.as_str(), station = %s.station, "signed in");
    let mut response = Redirect::to("/station").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &token, None));
    response
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: Option<String>,
}

async fn sign_out(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(r) = authorised(&app, &headers, form.csrf.as_deref()).await {
        return r;
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        let key = staff_store::secret_hash(token);
        let closed = app
            .store
            .write(move |c| crate::store::screens::close_session(c, &key))
            .await;
        if let Err(e) = closed {
            tracing::error!(error = %e, "station app: cannot end a session");
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "store error at sign-out",
                Lang::default(),
                "error.store",
            );
        }
    }
    let mut response = Redirect::to("/station").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", Some(0)));
    response
}

/// One line of the order on screen.
#[derive(Serialize)]
struct LineView {
    sku: String,
    name: String,
    quantity: i64,
    lot: String,
    expiry: String,
    /// Items of this line scanned and accepted so far.
    ticked: i64,
    /// A line sold by weight weighed on the counter's scale: weighed vs ordered and the price
    /// difference, in words (empty until weighed).
    weighed: String,
    /// The order's price of this line per kilogram (by-weight lines), if central sent one.
    #[serde(skip)]
    per_kg_cents: Option<i64>,
    /// Units of this line the customer refused in earlier parts, in words (empty: none).
    refused: String,
}

/// What the result panel shows.
#[derive(Serialize)]
struct ResultView {
    tone: Tone,
    headline: String,
    message: String,
    order_id: Option<String>,
    customer: Option<String>,
    lines: Vec<LineView>,
    can_hand_over: bool,
    /// A handover a supervisor may undo from this screen.
    can_undo: bool,
    /// Peak mode: the orders waiting behind this one.
    queue: Vec<String>,
    /// A locked-out station: milliseconds until it unlocks by itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    locked_for_ms: Option<i64>,
}

async fn order_lines(
    app: &StationApp,
    order_id: &str,
    lang: Lang,
) -> (Option<String>, Vec<LineView>) {
    let id = order_id.to_owned();
    let today = app.site.today(crate::clock::now());
    let read = app
        .store
        .read(move |c| {
            let order = crate::store::pickup_orders::order(c, &id)?;
            let pick = crate::store::pickup_orders::pick_list(c, &id, today)?;
            let refused = crate::store::pickup_orders::refused_per_line(c, &id, pick.len())?;
            let prices: Vec<Option<i64>> = order
                .as_ref()
                .map(|o| o.items.iter().map(|i| i.unit_price_cents).collect())
                .unwrap_or_default();
            let mut lines = Vec::new();
            for (i, p) in pick.into_iter().enumerate() {
                let name = match hub_core::SkuCode::new(p.sku.clone()) {
                    Ok(code) => crate::store::sku::get(c, &code)?
                        .map(|s| s.name)
                        .unwrap_or_default(),
                    Err(_) => String::new(),
                };
                lines.push(LineView {
                    name: if name.is_empty() { p.sku.clone() } else { name },
                    sku: p.sku,
                    quantity: p.quantity,
                    lot: p.lot.unwrap_or_default(),
                    expiry: p.expiry.unwrap_or_default(),
                    ticked: 0,
                    weighed: String::new(),
                    per_kg_cents: prices.get(i).copied().flatten(),
                    refused: line_refusal::refused_words(refused.get(i).copied(), lang),
                });
            }
            Ok::<_, crate::store::StoreError>((order.and_then(|o| o.phone_tail), lines))
        })
        .await;
    read.unwrap_or_else(|e| {
        tracing::error!(error = %e, order = order_id, "station app: cannot read the order");
        (None, vec![])
    })
}

async fn result_view(app: &StationApp, station: &str, lang: Lang) -> Option<(u64, ResultView)> {
    let current = app.feed.current(station)?;
    let zone = app.site.timezone;
    let mut view = match &current.shown {
        Shown::Check(check) => {
            let tone = catalogue::code_check_tone(check);
            let sentence = catalogue::code_check(check, lang, zone);
            match check {
                CodeCheck::Found { order_id } => {
                    let (customer, lines) = order_lines(app, order_id, lang).await;
                    ResultView {
                        tone,
                        headline: format!(
                            "{} · {order_id}",
                            catalogue::text("pickup.hand_over", lang)
                        ),
                        message: sentence,
                        order_id: Some(order_id.clone()),
                        customer,
                        lines,
                        can_hand_over: true,
                        can_undo: false,
                        queue: vec![],
                        locked_for_ms: None,
                    }
                }
                _ => ResultView {
                    tone,
                    headline: sentence,
                    message: String::new(),
                    order_id: None,
                    customer: None,
                    lines: vec![],
                    can_hand_over: false,
                    can_undo: false,
                    queue: vec![],
                    locked_for_ms: match check {
                        CodeCheck::LockedOut { until } | CodeCheck::SiteLockedOut { until } => {
                            Some((until.millis() - crate::clock::now().millis()).max(0))
                        }
                        _ => None,
                    },
                },
            }
        }
        Shown::Items {
            order_id,
            ticked,
            last_code,
            refusal,
            weighed,
            last_weight,
            bag,
            line_refused,
        } => {
            let (customer, mut lines) = order_lines(app, order_id, lang).await;
            for (i, line) in lines.iter_mut().enumerate() {
                line.ticked = ticked.iter().filter(|(l, _)| *l == i).count() as i64;
            }
            for (i, grams) in weighed {
                if let Some(line) = lines.get_mut(*i) {
                    line.weighed =
                        weighing::weighed(line.quantity, *grams, line.per_kg_cents, lang);
                }
            }
            let (tone, message) = match (refusal, last_weight) {
                (None, None) if line_refused.is_some() => {
                    line_refusal::message(line_refused.as_ref(), &lines, lang)
                }
                (_, Some(_)) if bag.is_some() => match bag {
                    Some(bag) => weighing::bag_message(bag, &lines, lang),
                    None => weighing::weight_message(0, weighed, &lines, lang),
                },
                (_, Some(grams)) => weighing::weight_message(*grams, weighed, &lines, lang),
                (None, None) => (
                    Tone::Ok,
                    format!("✔ {} · {last_code}", catalogue::text("item.ok", lang)),
                ),
                (Some(code), None) => (
                    Tone::Error,
                    format!(
                        "✖ {} · {last_code}",
                        catalogue::text(&format!("item.{code}"), lang)
                    ),
                ),
            };
            // A refused item says what is wrong in the headline too, never "hand over".
            let headline = match (refusal, last_weight) {
                (Some(code), None) => format!(
                    "{} · {order_id}",
                    catalogue::text(&format!("item.{code}"), lang)
                ),
                // A bag that weighs wrong says so before the clerk hands it over.
                (_, Some(_)) if bag.as_ref().is_some_and(|b| !b.matches) => format!(
                    "{} · {order_id}",
                    catalogue::text("weigh.bag_mismatch", lang)
                ),
                _ => format!("{} · {order_id}", catalogue::text("pickup.hand_over", lang)),
            };
            ResultView {
                tone,
                headline,
                message,
                order_id: Some(order_id.clone()),
                customer,
                lines,
                can_hand_over: true,
                can_undo: false,
                queue: vec![],
                locked_for_ms: None,
            }
        }
        Shown::HandedOver {
            order_id,
            staff,
            refused,
            open,
        } => ResultView {
            tone: Tone::Ok,
            headline: format!(
                "{} · {order_id}",
                catalogue::text(
                    if *refused {
                        "pickup.refused"
                    } else if !open.is_empty() {
                        "pickup.partly_handed_over"
                    } else {
                        "pickup.handed_over"
                    },
                    lang
                )
            ),
            message: if open.is_empty() {
                format!(
                    "{} {staff} · {}",
                    catalogue::text("pickup.by", lang),
                    catalogue::local_time(current.at, zone)
                )
            } else {
                format!(
                    "{} {staff} · {} · {}",
                    catalogue::text("pickup.by", lang),
                    catalogue::local_time(current.at, zone),
                    partial::still_open(open, lang)
                )
            },
            order_id: Some(order_id.clone()),
            customer: None,
            lines: vec![],
            can_hand_over: false,
            // A part of an order handed over in parts may be undone too (its last part).
            can_undo: !*refused,
            queue: vec![],
            locked_for_ms: None,
        },
        // A receiving bench's input: the receiving screen shows it.
        Shown::Receiving(_) => return None,
        Shown::HandoverRefused { order_id, code, .. } => ResultView {
            tone: Tone::Error,
            headline: format!(
                "{order_id}: {}",
                catalogue::handover_refusal(code.as_deref(), lang)
            ),
            message: String::new(),
            order_id: Some(order_id.clone()),
            customer: None,
            lines: vec![],
            can_hand_over: false,
            can_undo: false,
            queue: vec![],
            locked_for_ms: None,
        },
        Shown::Supervisor {
            done,
            staff,
            detail,
        } => ResultView {
            tone: Tone::Ok,
            headline: catalogue::text(&format!("supervisor.done.{done}"), lang).to_owned(),
            message: format!(
                "{} {staff} · {} {detail}",
                catalogue::text("pickup.by", lang),
                catalogue::local_time(current.at, zone)
            ),
            order_id: None,
            customer: None,
            lines: vec![],
            can_hand_over: false,
            can_undo: false,
            queue: vec![],
            locked_for_ms: None,
        },
    };
    view.queue = current.queue.clone();
    Some((current.seq, view))
}

fn page_context(
    app: &StationApp,
    s: &Session,
    result: Option<(u64, ResultView)>,
    fresh: bool,
) -> serde_json::Value {
    let (seq, r) = match result {
        Some((seq, r)) => (seq, Some(r)),
        None => (0, None),
    };
    serde_json::json!({
        "lang": s.lang.tag(),
        "csrf": s.csrf,
        "staff": StaffView { staff_id: &s.staff_id, name: &s.name },
        "station_name": app.station_name(&s.station),
        "seq": seq,
        "r": r,
        "fresh": if fresh { "1" } else { "0" },
        "request_id": random_hex(12),
        "refuse_request_id": random_hex(12),
        "partial_request_id": random_hex(12),
        "line_request_id": random_hex(12),
        "line_reasons": line_refusal::reasons(),
        "reasons": catalogue::REFUSAL_REASONS,
        "supervisor": s.role.supervises(),
        "undo_reasons": hub_core::pickup::UNDO_REASONS,
    })
}

async fn fragment(app: &StationApp, s: &Session) -> Response {
    let result = result_view(app, &s.station, s.lang).await;
    html(
        StatusCode::OK,
        templates::render("result.html", page_context(app, s, result, true)),
    )
}

async fn current(State(app): State<StationApp>, headers: HeaderMap) -> Response {
    let Some(s) = session(&app, &headers).await else {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "no session",
            Lang::default(),
            "error.session",
        );
    };
    fragment(&app, &s).await
}

#[derive(Deserialize)]
struct CheckForm {
    #[serde(default)]
    csrf: Option<String>,
    code: String,
    #[serde(default)]
    extra: String,
}

async fn check(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Form(form): Form<CheckForm>,
) -> Response {
    let s = match authorised(&app, &headers, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let extra = form.extra.trim();
    let is_tail = extra.len() == 4 && extra.bytes().all(|b| b.is_ascii_digit());
    let entry = CodeEntry {
        code: form.code.trim().to_owned(),
        order_id: (!extra.is_empty() && !is_tail).then(|| extra.to_owned()),
        phone_tail: is_tail.then(|| extra.to_owned()),
    };
    let now = crate::clock::now();
    let (site, station, staff, device) = (
        app.site.clone(),
        s.station.clone(),
        s.staff_id.clone(),
        s.device_id.clone(),
    );
    let checked = app
        .store
        .write(move |c| {
            let check = crate::workflows::pickup::check_in(c, &site, &station, &entry, now)?;
            let detail = match &check {
                CodeCheck::Found { order_id } => order_id.clone(),
                _ => String::new(),
            };
            staff_store::record_action(
                c,
                &staff_store::Action {
                    staff: Some(&staff),
                    station: Some(&station),
                    device: Some(&device),
                    action: "pickup_check",
                    detail: &detail,
                },
                now,
            )?;
            Ok::<_, crate::workflows::pickup::PickupError>(check)
        })
        .await;
    match checked {
        Ok(check) => {
            show(&app, &s.station, Shown::Check(check), now).await;
            fragment(&app, &s).await
        }
        Err(e) => {
            tracing::error!(error = %e, station = %s.station, "station app: code check failed");
            refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "code check failed",
                s.lang,
                "error.store",
            )
        }
    }
}

#[derive(Deserialize)]
struct HandoverForm {
    #[serde(default)]
    csrf: Option<String>,
    order_id: String,
    request_id: String,
    #[serde(default)]
    reason: Option<String>,
    /// `1`: hand over only the items ticked on the screen; the rest of the order stays open.
    #[serde(default)]
    ticked_only: Option<String>,
}

async fn handover(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Form(form): Form<HandoverForm>,
) -> Response {
    hand_over_or_refuse(app, headers, form, false).await
}

async fn refuse(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Form(form): Form<HandoverForm>,
) -> Response {
    hand_over_or_refuse(app, headers, form, true).await
}

/// Hands the order over (or records the customer's refusal of every line) through the same
/// station-command path as MQTT: the workflow runs once per request id, a repeat gets the
/// stored reply.
async fn hand_over_or_refuse(
    app: StationApp,
    headers: HeaderMap,
    form: HandoverForm,
    refuse_all: bool,
) -> Response {
    let s = match authorised(&app, &headers, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let request_id = form.request_id.trim().to_owned();
    let order_id = form.order_id.trim().to_owned();
    if request_id.is_empty() || request_id.len() > 64 || order_id.is_empty() || order_id.len() > 64
    {
        return refusal(
            StatusCode::BAD_REQUEST,
            "handover without a request id or order id",
            s.lang,
            "error.forged",
        );
    }
    let reason = if refuse_all {
        match form
            .reason
            .as_deref()
            .filter(|r| catalogue::REFUSAL_REASONS.contains(r))
        {
            Some(r) => Some(r.to_owned()),
            None => {
                return refusal(
                    StatusCode::BAD_REQUEST,
                    "refusal without a reason from the list",
                    s.lang,
                    "error.forged",
                );
            }
        }
    } else {
        None
    };
    let now = crate::clock::now();
    // The items ticked on this station's screen for this order leave with it.
    // So do the weights of its lines weighed on the counter's scale.
    let (ticked, weighed) = match app.feed.current(&s.station).map(|c| c.shown) {
        Some(Shown::Items {
            order_id: on_screen,
            ticked,
            weighed,
            ..
        }) if on_screen == order_id && !refuse_all => (ticked, weighed),
        _ => (vec![], vec![]),
    };
    let weighings: Vec<crate::store::pickup_orders::Weighing> = weighed
        .iter()
        .map(|(line, grams)| crate::store::pickup_orders::Weighing {
            line_no: line + 1,
            grams: *grams,
        })
        .collect();
    // A partial handover: what is ticked of each line leaves, the rest stays open.
    let partial = partial::ticked_parts(&ticked);
    if form.ticked_only.as_deref() == Some("1") && !refuse_all && partial.is_empty() {
        return refusal(
            StatusCode::CONFLICT,
            "partial handover with nothing ticked",
            s.lang,
            "pickup.nothing_ticked",
        );
    }
    let partial = if form.ticked_only.as_deref() == Some("1") && !refuse_all {
        partial
    } else {
        vec![]
    };
    let trace_codes: Vec<String> = ticked.into_iter().map(|(_, code)| code).collect();
    let oid = order_id.clone();
    let body = format!(
        "app|{}|{oid}|{}|{}{}",
        if reason.is_some() {
            "refuse"
        } else {
            "handover"
        },
        reason.as_deref().unwrap_or(""),
        trace_codes.join(","),
        partial
            .iter()
            .map(|p| format!("|{}:{}", p.line_no, p.quantity))
            .chain(
                weighings
                    .iter()
                    .map(|w| format!("|w{}:{}", w.line_no, w.grams))
            )
            .collect::<String>()
    );
    let hash = staff_store::secret_hash(&body);
    let record = recorded::Record {
        action: if reason.is_some() {
            "pickup_refuse"
        } else {
            "pickup_handover"
        },
        detail: order_id.clone(),
    };
    let done = recorded::run_and_record(
        &app,
        &s,
        (request_id.clone(), hash),
        record,
        move |c| {
            let refusals = match &reason {
                Some(reason) => crate::store::pickup_orders::order(c, &oid)?
                    .map(|o| {
                        let settled =
                            crate::store::pickup_orders::settled_per_line(c, &oid, o.items.len())?;
                        Ok::<_, crate::store::StoreError>(
                            o.items
                                .iter()
                                .zip(settled)
                                .enumerate()
                                .filter(|(_, (item, settled))| item.quantity > *settled)
                                .map(
                                    |(i, (item, settled))| crate::store::pickup_orders::Refusal {
                                        line_no: i + 1,
                                        quantity: item.quantity - settled,
                                        to: hub_core::pickup::refusal_destination(reason)
                                            .unwrap_or(RefusedTo::Stock),
                                        reason: reason.clone(),
                                    },
                                )
                                .collect(),
                        )
                    })
                    .transpose()?
                    .unwrap_or_default(),
                None => vec![],
            };
            Ok(hub_contract::station::StationAction::PickupHandover {
                order_id: oid,
                trace_codes,
                refusals,
                weighings,
                partial,
            })
        },
        now,
    )
    .await;
    match done {
        Ok(reply) if reply.ok => {
            tracing::info!(order = %order_id, staff = %s.staff_id, station = %s.station, refused = refuse_all, "handed over from the station app");
            show(
                &app,
                &s.station,
                Shown::HandedOver {
                    order_id,
                    staff: s.staff_id.clone(),
                    refused: refuse_all,
                    open: reply
                        .result
                        .as_ref()
                        .map(|r| r.numbers("open"))
                        .unwrap_or_default(),
                },
                now,
            )
            .await;
            fragment(&app, &s).await
        }
        Ok(reply) => {
            let reason = reply.reason.unwrap_or_default();
            tracing::warn!(order = %order_id, reason = %reason, "station app: handover refused");
            show(
                &app,
                &s.station,
                Shown::HandoverRefused {
                    order_id,
                    reason,
                    code: reply.code,
                },
                now,
            )
            .await;
            fragment(&app, &s).await
        }
        Err(e) => {
            tracing::error!(error = %e, "station app: handover could not be stored");
            refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "store error at handover",
                s.lang,
                "error.store",
            )
        }
    }
}

/// Shows `shown` on the station's screens, kept for a restart of the hub.
async fn show(app: &StationApp, station: &str, shown: Shown, now: Timestamp) {
    if let Err(e) = app.feed.show_kept(station, shown, now).await {
        tracing::warn!(error = %e, station, "station app: screen not kept for a restart");
    }
}

/// The station's live channel: an event `changed` whenever its result changes.
async fn events(State(app): State<StationApp>, headers: HeaderMap) -> Response {
    let Some(s) = session(&app, &headers).await else {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "live channel without a session",
            Lang::default(),
            "error.session",
        );
    };
    use tokio_stream::StreamExt;
    let station = s.station.clone();
    let stream = tokio_stream::wrappers::BroadcastStream::new(app.feed.subscribe()).filter_map(
        move |change| match change {
            Ok(change) if change.station == station => Some(Ok::<_, std::convert::Infallible>(
                match change.live_weight_g {
                    // The scale's reading while the load settles: shown as it comes.
                    Some(grams) => Event::default().event("weight").data(grams.to_string()),
                    None => Event::default()
                        .event("changed")
                        .data(change.seq.to_string()),
                },
            )),
            // A slow screen missed some changes: tell it to fetch the latest.
            Err(_) => Some(Ok(Event::default().event("changed").data("0"))),
            Ok(_) => None,
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// A page body, for tests that read a response.
pub async fn body_text(body: Body) -> String {
    axum::body::to_bytes(body, 1 << 20)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Records the code check a device scan made on the station's screens (the dispatcher calls
/// this).
pub fn show_device_check(feed: &StationFeed, station: &str, check: CodeCheck, at: Timestamp) {
    feed.show(station, Shown::Check(check), at);
}

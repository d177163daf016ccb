//! Commands from central (`down/commands`): the envelope, its decoding (every failure a
//! [`Rejection`] naming as much of the command as could be read), the fingerprint that makes
//! "the same command again" recognisable, and each kind's body decoded once into a typed,
//! validated value ([`CommandBody`]). Applying a command is the hub's business
//! (`hub::commands`); what a command *says* is decided here.

use hub_core::alerts::{Measure, Tier, TierPolicy};
use hub_core::pickup::{OrderStatus, PickupItem};
use hub_core::receiving::{Manifest, ManifestLine};
use hub_core::{Sku, SkuCode, Timestamp};
use serde::{Deserialize, Serialize};

use crate::CONTRACT_VERSION;

/// What a command asks for. Each kind is applied to its typed table: SKU master data
/// (`sku`), tier thresholds (`sku_tier_policy`), manifests (`delivery_manifest`), pickup orders
/// (`pickup_order`), replenishment episodes (`sku_alert_state`), disputes (`dispute`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    /// SKU master data (body: the SKU).
    SkuUpsert,
    /// Stock alert thresholds of one SKU.
    SkuThresholds,
    /// A delivery manifest for goods on their way to the site.
    DeliveryManifest,
    /// A customer's pickup order.
    PickupOrder,
    /// The central system's answer to a replenishment request.
    ReplenishmentAck,
    /// The site's alert-tier configuration.
    AlertTiers,
    /// Open or close the dispute about a delivery (a customer complaint raised at central):
    /// its evidence is kept while it is open.
    DeliveryDispute,
    /// Demand signals for the forecast: holidays, promotions (uplift and pre-sale reserve),
    /// weather.
    DemandSignals,
    /// A staff member of the site's station app (name, role, PIN as an argon2 hash, disabled).
    StaffUpsert,
}

impl CommandKind {
    /// Every kind, for documentation and validation messages.
    pub const ALL: [CommandKind; 9] = [
        CommandKind::SkuUpsert,
        CommandKind::SkuThresholds,
        CommandKind::DeliveryManifest,
        CommandKind::PickupOrder,
        CommandKind::ReplenishmentAck,
        CommandKind::AlertTiers,
        CommandKind::DeliveryDispute,
        CommandKind::DemandSignals,
        CommandKind::StaffUpsert,
    ];

    /// The stable name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::SkuUpsert => "sku_upsert",
            CommandKind::SkuThresholds => "sku_thresholds",
            CommandKind::DeliveryManifest => "delivery_manifest",
            CommandKind::PickupOrder => "pickup_order",
            CommandKind::ReplenishmentAck => "replenishment_ack",
            CommandKind::AlertTiers => "alert_tiers",
            CommandKind::DeliveryDispute => "delivery_dispute",
            CommandKind::DemandSignals => "demand_signals",
            CommandKind::StaffUpsert => "staff_upsert",
        }
    }

    /// Looks a kind up by its name.
    pub fn parse(name: &str) -> Option<CommandKind> {
        CommandKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// A command whose envelope could be read, with its body decoded for its kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Unique id chosen by the central system; the unit of exactly-once.
    pub id: String,
    /// The site the command is meant for.
    pub site: String,
    pub kind: CommandKind,
    /// What the command is about (SKU code, manifest id, order id, …).
    pub key: String,
    /// Version of that thing; older versions never replace newer ones. Any `i64` is read
    /// here; the range versions may take ([`MAX_VERSION`]) is checked where the command is
    /// applied, after duplicates, so that the refusal is remembered under the id.
    pub version: i64,
    /// The body, decoded and validated for its kind; or why it does not fit (answered as
    /// `invalid_body` once the envelope's checks have passed).
    pub body: Result<CommandBody, InvalidBody>,
    /// What the command is (see [`fingerprint`]): the same command delivered again is
    /// recognised, another one reusing the id is not.
    pub fingerprint: String,
}

/// Why a command is refused, as reported upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectCode {
    /// Not readable as a command at all (bad JSON, missing fields).
    Malformed,
    /// Larger than the configured limit.
    Oversized,
    /// Meant for another site.
    WrongSite,
    /// A kind this hub does not know.
    UnknownKind,
    /// An envelope version this hub does not speak.
    UnsupportedVersion,
    /// Older than what is stored.
    StaleVersion,
    /// The body does not fit the kind.
    InvalidBody,
    /// The change comes too late: the order was collected or the delivery closed here.
    Conflict,
    /// The command id was used before by a command with other content.
    IdReused,
}

impl RejectCode {
    /// The stable code sent upstream.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::Malformed => "malformed",
            RejectCode::Oversized => "oversized",
            RejectCode::WrongSite => "wrong_site",
            RejectCode::UnknownKind => "unknown_kind",
            RejectCode::UnsupportedVersion => "unsupported_version",
            RejectCode::StaleVersion => "stale_version",
            RejectCode::InvalidBody => "invalid_body",
            RejectCode::Conflict => "conflict",
            RejectCode::IdReused => "id_reused",
        }
    }
}

/// A refused command with what could be read of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub command_id: Option<String>,
    pub kind: Option<String>,
    pub code: RejectCode,
    pub reason: String,
    /// What the refused message was (a hash of its bytes, set by the decoder), so that the same
    /// message delivered again is a duplicate and another one under the same id is answered.
    /// `None`: unknown (every later use of the id counts as a duplicate).
    pub fingerprint: Option<String>,
}

/// Highest version a command may carry: 2^53, the largest whole number every JSON reader
/// (JavaScript included) holds exactly. Versions start at 1.
pub const MAX_VERSION: i64 = 1 << 53;

/// Why a version is refused (also for numbers on the wire that are not an `i64`).
pub fn version_out_of_range(version: impl std::fmt::Display) -> String {
    format!(
        "version {version} is outside 1..={MAX_VERSION}: a version is a whole number from 1 \
         that central raises with each change (a huge one would lock the key for good)"
    )
}

/// The fingerprint of a command: a hash of everything it asks for (site, kind, key, version
/// and body, objects with sorted keys), so the same command re-encoded by central is
/// recognised and another command under the same id is not. Stored with the command's id:
/// its form must never change (a redelivered command would look like a reused id).
pub fn fingerprint(
    site: &str,
    kind: CommandKind,
    key: &str,
    version: i64,
    body: &serde_json::Value,
) -> String {
    use sha2::Digest;
    let canonical = canonical_json(&serde_json::json!({
        "site": site,
        "kind": kind.as_str(),
        "key": key,
        "version": version,
        "body": body,
    }));
    hex::encode(sha2::Sha256::digest(canonical.as_bytes()))
}

/// JSON text with object keys sorted at every level, whatever map order serde_json keeps.
fn canonical_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        serde_json::Value::String(k.clone()),
                        canonical_json(&map[k])
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

/// A command as put on the wire (central side).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandOut {
    pub v: u32,
    pub id: String,
    pub site: String,
    pub kind: String,
    pub key: String,
    pub version: i64,
    pub body: serde_json::Value,
}

/// How far into an unreadable command [`sniff_identity`] looks for its id and kind. Central
/// writes them first (`v`, `id`, `site`, `kind`, … then `body`), so a bounded prefix finds them
/// in any command central sends, however large or damaged its body.
pub const SNIFF_LIMIT: usize = 1 << 20;

/// Longest command id accepted (bytes).
const MAX_COMMAND_ID_BYTES: usize = 128;

fn usable_id(id: String) -> Option<String> {
    (!id.is_empty() && id.len() <= MAX_COMMAND_ID_BYTES).then_some(id)
}

/// Reads the top-level `"id"` and `"kind"` of a command that cannot be decoded (too large, not
/// UTF-8, not JSON, cut off), so that its rejection names it. Lenient: it walks the top-level
/// object byte by byte within the first [`SNIFF_LIMIT`] bytes, skips nested values, and stops
/// at the first thing it cannot follow, keeping what it found before. Only string values that
/// are themselves valid JSON strings count; nested `"id"` keys (inside `body`) never do.
pub fn sniff_identity(bytes: &[u8]) -> (Option<String>, Option<String>) {
    let bytes = &bytes[..bytes.len().min(SNIFF_LIMIT)];
    let mut scan = Sniffer { bytes, at: 0 };
    let (mut id, mut kind) = (None, None);
    scan.whitespace();
    if !scan.eat(b'{') {
        return (None, None);
    }
    loop {
        scan.whitespace();
        let Some(key) = scan.string() else { break };
        scan.whitespace();
        if !scan.eat(b':') {
            break;
        }
        scan.whitespace();
        let value_start = scan.at;
        if scan.peek() == Some(b'"') {
            let Some(token) = scan.string() else { break };
            let text = || serde_json::from_slice::<String>(token).ok();
            match key {
                b"\"id\"" if id.is_none() => id = text().and_then(usable_id),
                b"\"kind\"" if kind.is_none() => kind = text().filter(|k| !k.is_empty()),
                _ => {}
            }
        } else if !scan.skip_value() || scan.at == value_start {
            break;
        }
        scan.whitespace();
        if !scan.eat(b',') {
            break;
        }
    }
    (id, kind)
}

/// A cursor over the bytes of a JSON text, for [`sniff_identity`].
struct Sniffer<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Sniffer<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let hit = self.peek() == Some(byte);
        self.at += usize::from(hit);
        hit
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// A string token, quotes included; `None` when there is none or it is cut off.
    fn string(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        if !self.eat(b'"') {
            return None;
        }
        while let Some(b) = self.peek() {
            self.at += 1;
            match b {
                b'\\' => self.at += 1,
                b'"' => return self.bytes.get(start..self.at),
                _ => {}
            }
        }
        None
    }

    /// Skips a non-string value: an object or array (strings inside included) or a scalar.
    /// `false` when it is cut off.
    fn skip_value(&mut self) -> bool {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'"' => {
                    if self.string().is_none() {
                        return false;
                    }
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth == 0 => return true,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        self.at += 1;
                        return true;
                    }
                }
                b',' if depth == 0 => return true,
                _ => {}
            }
            self.at += 1;
        }
        depth == 0
    }
}

/// A fingerprint of a command's exact bytes, for commands that could not be decoded: the same
/// message delivered again is recognised, another one under the same id is not.
fn raw_fingerprint(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Why a command's body does not fit its kind: the reason sent upstream with `invalid_body`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidBody(pub String);

fn invalid(what: &str, e: impl std::fmt::Display) -> InvalidBody {
    InvalidBody(format!(
        "body is not {what}: {e}; see docs/mqtt.md for the payload"
    ))
}

/// A command's body, decoded and validated for its kind. Everything here was checked
/// without the hub's state; what depends on it (stored versions, a collected order, a closed
/// delivery, an open dispute) is checked where the command is applied.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandBody {
    SkuUpsert(SkuUpsertBody),
    SkuThresholds(SkuThresholdsBody),
    AlertTiers(AlertTiersBody),
    /// The manifest, with the envelope's key as its delivery id and its version.
    DeliveryManifest(Manifest),
    PickupOrder(PickupOrderBody),
    ReplenishmentAck(ReplenishmentAckBody),
    DeliveryDispute(DisputeBody),
    DemandSignals(DemandSignalsBody),
    StaffUpsert(StaffUpsertBody),
}

/// `staff_upsert`: one staff member of the station app (the staff id is the envelope's key,
/// the envelope's version orders upserts: an older one never replaces a newer one). Central
/// never sends a PIN: `pin_hash` is an argon2 PHC string (`$argon2id$v=19$…`) computed where
/// the PIN was set; a body with a `pin` field is refused.
#[derive(Debug, Clone, PartialEq)]
pub struct StaffUpsertBody {
    pub name: String,
    /// `clerk`, `supervisor` or `manager` (the store manager; hubs before the manager role
    /// refuse it as an invalid body).
    pub role: String,
    /// `zh-CN` (default) or `en`.
    pub lang: String,
    /// An argon2 PHC string; `None` keeps the stored hash (a member who exists already).
    pub pin_hash: Option<String>,
    pub disabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StaffUpsertWire {
    name: String,
    role: String,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    pin_hash: Option<String>,
    #[serde(default)]
    disabled: bool,
}

fn staff_upsert(key: &str, mut body: serde_json::Value) -> Result<StaffUpsertBody, InvalidBody> {
    if body.as_object_mut().and_then(|o| o.remove("pin")).is_some() {
        return Err(InvalidBody(
            "a staff_upsert must never carry a plaintext PIN ('pin'); send 'pin_hash', the argon2 PHC string of the PIN".into(),
        ));
    }
    let wire: StaffUpsertWire =
        serde_json::from_value(body).map_err(|e| invalid("a staff member", e))?;
    let key_ok = !key.trim().is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !key_ok {
        return Err(InvalidBody(format!(
            "staff id '{key}' must be 1 to 64 letters, digits, '.', '_' or '-'"
        )));
    }
    let name = wire.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(InvalidBody("staff name must be 1 to 64 characters".into()));
    }
    if !matches!(wire.role.as_str(), "clerk" | "supervisor" | "manager") {
        return Err(InvalidBody(format!(
            "staff role '{}' is not clerk, supervisor or manager",
            wire.role
        )));
    }
    let lang = wire.lang.unwrap_or_else(|| "zh-CN".to_owned());
    if !matches!(lang.as_str(), "zh-CN" | "en") {
        return Err(InvalidBody(format!(
            "staff lang '{lang}' is not zh-CN or en"
        )));
    }
    if let Some(hash) = &wire.pin_hash {
        let phc = ["$argon2id$", "$argon2i$", "$argon2d$"]
            .iter()
            .any(|p| hash.starts_with(p));
        if !phc || hash.len() > 512 {
            return Err(InvalidBody(
                "pin_hash must be an argon2 PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash)"
                    .into(),
            ));
        }
    }
    Ok(StaffUpsertBody {
        name,
        role: wire.role,
        lang,
        pin_hash: wire.pin_hash,
        disabled: wire.disabled,
    })
}

/// `demand_signals`: signals for the forecast, each with central's id (a signal sent again
/// under its id replaces the stored one). Checked here for their shape; dates against the
/// site's day and SKU codes against the catalogue where the command is applied.
#[derive(Debug, Clone, PartialEq)]
pub struct DemandSignalsBody {
    pub signals: Vec<hub_forecast::DemandSignal>,
}

/// `sku_upsert`: SKU master data (its code and version are the envelope's key and version),
/// with the SKU's thresholds when central sends them along.
#[derive(Debug, Clone, PartialEq)]
pub struct SkuUpsertBody {
    pub sku: Sku,
    /// Stored by the same version sequence as `sku_thresholds`.
    pub thresholds: Option<TierPolicy>,
    /// What one unit weighs in grams, for the pickup counter's weight cross-check (`None`:
    /// not sent, no cross-check for orders with this SKU).
    pub unit_weight_g: Option<i64>,
    /// The SKU's category (demand signals scoped to a category reach its SKUs); optional,
    /// absent from older messages.
    pub category: Option<String>,
}

/// Longest SKU category read.
pub const MAX_CATEGORY_CHARS: usize = 64;

/// `sku_thresholds`: one SKU's stock tier thresholds (the SKU is the envelope's key).
#[derive(Debug, Clone, PartialEq)]
pub struct SkuThresholdsBody {
    pub sku: SkuCode,
    pub policy: TierPolicy,
}

/// `alert_tiers`: thresholds for many SKUs at once, all usable (one unusable entry refuses the
/// whole command), by SKU code.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertTiersBody {
    pub policies: Vec<(SkuCode, TierPolicy)>,
}

/// `pickup_order`: the order without its id (the envelope's key), site and version. Salt and
/// hash are lower-case hex.
#[derive(Debug, Clone, PartialEq)]
pub struct PickupOrderBody {
    pub code_salt: String,
    pub code_hash: String,
    pub items: Vec<PickupItem>,
    pub opens_at: Timestamp,
    pub closes_at: Timestamp,
    /// `Open`, `OnHold`, `Cancelled` or `Refunded` (central never sends `Collected`).
    pub status: OrderStatus,
    /// The last 4 digits of the customer's phone number, so a clerk can target the order.
    pub phone_tail: Option<String>,
}

/// `replenishment_ack`: central's answer to a replenishment request (the envelope's key is
/// the request's `episode_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplenishmentAckBody {
    /// The SKU; found from the open episodes when omitted.
    pub sku: Option<SkuCode>,
    pub accepted: bool,
    pub eta_ms: Option<i64>,
}

/// `delivery_dispute`: a step on the dispute about a delivery (the envelope's key): open it,
/// respond to it with a note, record that its photos were inspected, or settle it. Messages
/// from before the steps carry `"open": true | false` (open or settle) and are still read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisputeBody {
    pub step: crate::station::DisputeStep,
    /// The manifest line a new dispute is about (its stored photos become the evidence).
    pub line_no: Option<u32>,
    /// Why it is opened, the response, what the photos show, or how it was settled.
    pub note: String,
    /// Who at central raised or settled it, recorded as the dispute's staff (`central` when
    /// the command names nobody).
    pub by: String,
}

/// Thresholds of one SKU as central sends them (`sku_thresholds`, `alert_tiers`, or the
/// optional `thresholds` of `sku_upsert`). Omitted fields take the hub's documented defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdsWire {
    #[serde(default = "default_measure")]
    measure: Measure,
    yellow: f64,
    orange: f64,
    red: f64,
    #[serde(default = "default_hysteresis")]
    hysteresis: f64,
    #[serde(default = "default_replenish_at")]
    replenish_at: Tier,
    target: f64,
    #[serde(default = "default_re_request_minutes")]
    re_request_after_minutes: i64,
}

fn default_measure() -> Measure {
    Measure::DaysOfCover
}
fn default_hysteresis() -> f64 {
    0.15
}
fn default_replenish_at() -> Tier {
    Tier::Red
}
fn default_re_request_minutes() -> i64 {
    240
}

/// Thresholds that decode but cannot be used.
#[derive(Debug, thiserror::Error)]
enum UnusableThresholds {
    #[error("re_request_after_minutes {0} must be between 1 and 10080")]
    ReRequestAfter(i64),
    #[error(transparent)]
    Policy(#[from] hub_core::alerts::PolicyError),
}

impl ThresholdsWire {
    fn policy(&self) -> Result<TierPolicy, UnusableThresholds> {
        if !(1..=7 * 24 * 60).contains(&self.re_request_after_minutes) {
            return Err(UnusableThresholds::ReRequestAfter(
                self.re_request_after_minutes,
            ));
        }
        let policy = TierPolicy {
            measure: self.measure,
            yellow: self.yellow,
            orange: self.orange,
            red: self.red,
            hysteresis: self.hysteresis,
            replenish_at: self.replenish_at,
            target: self.target,
            re_request_after_ms: self.re_request_after_minutes * 60_000,
        };
        policy.validate()?;
        Ok(policy)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTiersWire {
    policies: std::collections::BTreeMap<String, ThresholdsWire>,
}

/// `delivery_manifest` body: the manifest without its id and version (those are the
/// envelope's `key` and `version`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestWire {
    supplier: String,
    #[serde(default)]
    expected_at: Option<String>,
    #[serde(default)]
    lines: Vec<ManifestLine>,
    #[serde(default)]
    cancelled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PickupOrderWire {
    code_salt: String,
    code_hash: String,
    items: Vec<PickupItem>,
    opens_at_ms: i64,
    closes_at_ms: i64,
    #[serde(default = "default_order_status")]
    status: String,
    #[serde(default)]
    phone_tail: Option<String>,
}

fn default_order_status() -> String {
    "open".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplenishmentAckWire {
    #[serde(default)]
    sku: Option<SkuCode>,
    #[serde(default = "yes")]
    accepted: bool,
    #[serde(default)]
    eta_ms: Option<i64>,
}

fn yes() -> bool {
    true
}

/// One signal as central sends it: `kind` `holiday`, `promotion` (with `reserve_fraction`) or
/// `weather`; `skus` (a list) or `category` or neither (every SKU).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalWire {
    id: String,
    kind: String,
    start: chrono::NaiveDate,
    end: chrono::NaiveDate,
    multiplier: f64,
    #[serde(default)]
    reserve_fraction: Option<f64>,
    #[serde(default)]
    skus: Option<Vec<String>>,
    #[serde(default)]
    category: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DemandSignalsWire {
    signals: Vec<SignalWire>,
}

fn demand_signals(body: serde_json::Value) -> Result<DemandSignalsBody, InvalidBody> {
    use hub_forecast::{DemandSignal, SignalKind, SignalScope};
    const WHAT: &str = "a set of demand signals";
    let wire: DemandSignalsWire = serde_json::from_value(body).map_err(|e| invalid(WHAT, e))?;
    if wire.signals.is_empty() {
        return Err(invalid(WHAT, "\"signals\" is empty"));
    }
    let mut ids = std::collections::BTreeSet::new();
    let mut signals = Vec::with_capacity(wire.signals.len());
    for s in wire.signals {
        let id = s.id.trim().to_owned();
        if id.is_empty() {
            return Err(invalid(WHAT, "a signal has an empty id"));
        }
        if !ids.insert(id.clone()) {
            return Err(invalid(WHAT, format!("signal id '{id}' appears twice")));
        }
        let kind = match (s.kind.as_str(), s.reserve_fraction) {
            ("holiday", None) => SignalKind::Holiday,
            ("weather", None) => SignalKind::Weather,
            ("promotion", fraction) => SignalKind::Promotion {
                reserve_fraction: fraction.unwrap_or(0.0),
            },
            ("holiday" | "weather", Some(_)) => {
                return Err(invalid(
                    WHAT,
                    format!("signal {id}: only a promotion has a reserve_fraction"),
                ));
            }
            (other, _) => {
                return Err(invalid(
                    WHAT,
                    format!("signal {id}: kind '{other}' must be holiday, promotion or weather"),
                ));
            }
        };
        let scope = match (s.skus, s.category) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    WHAT,
                    format!("signal {id}: give skus or category, not both"),
                ));
            }
            (Some(skus), None) => SignalScope::Skus(skus),
            (None, Some(category)) => SignalScope::Category(category),
            (None, None) => SignalScope::All,
        };
        signals.push(DemandSignal {
            id,
            kind,
            start: s.start,
            end: s.end,
            scope,
            multiplier: s.multiplier,
        });
    }
    Ok(DemandSignalsBody { signals })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DisputeWire {
    #[serde(default)]
    open: Option<bool>,
    #[serde(default)]
    step: Option<String>,
    #[serde(default)]
    line_no: Option<u32>,
    note: String,
    #[serde(default)]
    by: Option<String>,
}

/// Decodes and validates a body for its kind; `key` and `version` are the envelope's.
fn decode_body(
    kind: CommandKind,
    key: &str,
    version: i64,
    body: serde_json::Value,
) -> Result<CommandBody, InvalidBody> {
    match kind {
        CommandKind::SkuUpsert => sku_upsert(key, version, body).map(CommandBody::SkuUpsert),
        CommandKind::SkuThresholds => sku_thresholds(key, body).map(CommandBody::SkuThresholds),
        CommandKind::AlertTiers => alert_tiers(body).map(CommandBody::AlertTiers),
        CommandKind::DeliveryManifest => {
            manifest(key, version, body).map(CommandBody::DeliveryManifest)
        }
        CommandKind::PickupOrder => pickup_order(body).map(CommandBody::PickupOrder),
        CommandKind::ReplenishmentAck => serde_json::from_value::<ReplenishmentAckWire>(body)
            .map(|b| {
                CommandBody::ReplenishmentAck(ReplenishmentAckBody {
                    sku: b.sku,
                    accepted: b.accepted,
                    eta_ms: b.eta_ms,
                })
            })
            .map_err(|e| invalid("a replenishment acknowledgement", e)),
        CommandKind::DeliveryDispute => serde_json::from_value::<DisputeWire>(body)
            .map_err(|e| invalid("a delivery dispute", e))
            .and_then(dispute_body)
            .map(CommandBody::DeliveryDispute),
        CommandKind::DemandSignals => demand_signals(body).map(CommandBody::DemandSignals),
        CommandKind::StaffUpsert => staff_upsert(key, body).map(CommandBody::StaffUpsert),
    }
}

/// A dispute step from its wire form: `step` (`open`, `respond`, `photos_inspected`,
/// `settle`), or the older `open` flag (true: open, false: settle); not both disagreeing.
fn dispute_body(b: DisputeWire) -> Result<DisputeBody, InvalidBody> {
    use crate::station::DisputeStep;
    let by = b.by.as_deref().map(str::trim).filter(|b| !b.is_empty());
    let named = match b.step.as_deref() {
        None => None,
        Some(s) => Some(DisputeStep::parse(s.trim()).ok_or_else(|| {
            InvalidBody(format!(
                "a delivery dispute: step '{s}' is not one of open, respond, photos_inspected, \
                 settle"
            ))
        })?),
    };
    let flagged = b.open.map(|open| {
        if open {
            DisputeStep::Open
        } else {
            DisputeStep::Settle
        }
    });
    let step = match (named, flagged) {
        (Some(s), None) => s,
        (None, Some(f)) => f,
        (Some(s), Some(f)) if s == f => s,
        (Some(s), Some(_)) => {
            return Err(InvalidBody(format!(
                "a delivery dispute: step '{}' disagrees with \"open\": {}; send the step alone",
                s.as_str(),
                b.open.unwrap_or_default()
            )));
        }
        (None, None) => {
            return Err(InvalidBody(
                "a delivery dispute needs a step (open, respond, photos_inspected, settle) \
                 or the older \"open\": true | false"
                    .into(),
            ));
        }
    };
    if b.line_no.is_some() && step != DisputeStep::Open {
        return Err(InvalidBody(format!(
            "a delivery dispute: line_no only goes with the open step, not {}",
            step.as_str()
        )));
    }
    Ok(DisputeBody {
        step,
        line_no: b.line_no,
        note: b.note,
        by: by.unwrap_or("central").to_owned(),
    })
}

fn sku_upsert(
    key: &str,
    version: i64,
    mut body: serde_json::Value,
) -> Result<SkuUpsertBody, InvalidBody> {
    let thresholds = body.as_object_mut().and_then(|o| o.remove("thresholds"));
    let unit_weight_g = match body.as_object_mut().and_then(|o| o.remove("unit_weight_g")) {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(g) if g > 0 => Some(g),
            _ => {
                return Err(InvalidBody(format!(
                    "SKU master data: unit_weight_g {v} is not a whole number of grams above 0"
                )));
            }
        },
    };
    let category = match body.as_object_mut().and_then(|o| o.remove("category")) {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(c)) => {
            let c = c.trim();
            if c.is_empty()
                || c.chars().count() > MAX_CATEGORY_CHARS
                || c.chars().any(char::is_control)
            {
                return Err(InvalidBody(format!(
                    "SKU master data: category '{c}' must be 1 to {MAX_CATEGORY_CHARS} characters \
                     without control characters (or leave it out)"
                )));
            }
            Some(c.to_owned())
        }
        Some(other) => {
            return Err(InvalidBody(format!(
                "SKU master data: category must be a string, not {other}"
            )));
        }
    };
    let sku: Sku = serde_json::from_value(body).map_err(|e| invalid("SKU master data", e))?;
    if sku.code.as_str() != key || sku.version != version {
        return Err(InvalidBody(format!(
            "body describes SKU '{}' version {} but the command names '{key}' version {version}",
            sku.code, sku.version
        )));
    }
    let thresholds = match thresholds.map(serde_json::from_value::<ThresholdsWire>) {
        None => None,
        Some(Err(e)) => return Err(invalid("SKU master data with thresholds", e)),
        Some(Ok(t)) => Some(
            t.policy()
                .map_err(|e| invalid("SKU master data with usable thresholds", e))?,
        ),
    };
    Ok(SkuUpsertBody {
        sku,
        thresholds,
        unit_weight_g,
        category,
    })
}

fn sku_thresholds(key: &str, body: serde_json::Value) -> Result<SkuThresholdsBody, InvalidBody> {
    let sku = SkuCode::new(key.to_owned())
        .map_err(|e| InvalidBody(format!("key '{key}' is not a SKU code: {e}")))?;
    let wire: ThresholdsWire =
        serde_json::from_value(body).map_err(|e| invalid("a set of SKU thresholds", e))?;
    let policy = wire
        .policy()
        .map_err(|e| invalid("a usable set of SKU thresholds", e))?;
    Ok(SkuThresholdsBody { sku, policy })
}

fn alert_tiers(body: serde_json::Value) -> Result<AlertTiersBody, InvalidBody> {
    let wire: AlertTiersWire =
        serde_json::from_value(body).map_err(|e| invalid("alert tiers per SKU", e))?;
    let mut policies = Vec::with_capacity(wire.policies.len());
    for (code, thresholds) in &wire.policies {
        let sku = SkuCode::new(code.clone())
            .map_err(|e| invalid("alert tiers per SKU", format!("'{code}': {e}")))?;
        let policy = thresholds
            .policy()
            .map_err(|e| invalid("alert tiers per SKU", format!("{code}: {e}")))?;
        policies.push((sku, policy));
    }
    Ok(AlertTiersBody { policies })
}

fn manifest(key: &str, version: i64, body: serde_json::Value) -> Result<Manifest, InvalidBody> {
    let wire: ManifestWire =
        serde_json::from_value(body).map_err(|e| invalid("a delivery manifest", e))?;
    if !wire.cancelled && wire.lines.is_empty() {
        return Err(invalid(
            "a delivery manifest",
            "it has no lines (send \"cancelled\":true to cancel a delivery)",
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for line in &wire.lines {
        if !seen.insert(line.line_no) {
            return Err(invalid(
                "a delivery manifest",
                format!("line_no {} appears twice", line.line_no),
            ));
        }
    }
    Ok(Manifest {
        delivery_id: key.to_owned(),
        supplier: wire.supplier,
        expected_at: wire.expected_at,
        lines: wire.lines,
        cancelled: wire.cancelled,
        version,
    })
}

fn pickup_order(body: serde_json::Value) -> Result<PickupOrderBody, InvalidBody> {
    let body: PickupOrderWire =
        serde_json::from_value(body).map_err(|e| invalid("a pickup order", e))?;
    let status = match body.status.as_str() {
        "open" => OrderStatus::Open,
        "on_hold" => OrderStatus::OnHold,
        "cancelled" => OrderStatus::Cancelled,
        "refunded" => OrderStatus::Refunded,
        other => {
            return Err(invalid(
                "a pickup order",
                format!("status '{other}' must be open, on_hold, cancelled or refunded"),
            ));
        }
    };
    let is_hex = |s: &str| {
        !s.is_empty() && s.len().is_multiple_of(2) && s.bytes().all(|b| b.is_ascii_hexdigit())
    };
    if !is_hex(&body.code_salt) || body.code_hash.len() != 64 || !is_hex(&body.code_hash) {
        return Err(invalid(
            "a pickup order",
            "code_salt must be hex and code_hash 64 hex digits (sha256 of salt bytes and code)",
        ));
    }
    if body.items.is_empty() || body.items.iter().any(|i| i.quantity <= 0) {
        return Err(invalid(
            "a pickup order",
            "items must be non-empty, each with a positive quantity",
        ));
    }
    if body.closes_at_ms <= body.opens_at_ms {
        return Err(invalid(
            "a pickup order",
            "closes_at_ms must be after opens_at_ms",
        ));
    }
    if body
        .phone_tail
        .as_deref()
        .is_some_and(|t| t.len() != 4 || !t.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid(
            "a pickup order",
            "phone_tail must be the last 4 digits of the customer's phone number",
        ));
    }
    Ok(PickupOrderBody {
        code_salt: body.code_salt.to_ascii_lowercase(),
        code_hash: body.code_hash.to_ascii_lowercase(),
        items: body.items,
        opens_at: Timestamp(body.opens_at_ms),
        closes_at: Timestamp(body.closes_at_ms),
        status,
        phone_tail: body.phone_tail,
    })
}

/// Decodes a command message; every failure becomes a [`Rejection`] with as much of the
/// command's identity as could be read (see [`sniff_identity`]). Checks the size and the
/// encoding before parsing anything.
pub fn decode_command(bytes: &[u8], max_bytes: usize) -> Result<Command, Rejection> {
    let rejection = |id: Option<String>, kind: Option<String>, code, reason: String| Rejection {
        command_id: id,
        kind,
        code,
        reason,
        fingerprint: Some(raw_fingerprint(bytes)),
    };
    let unreadable = |code, reason: String| {
        let (id, kind) = sniff_identity(bytes);
        rejection(id, kind, code, reason)
    };
    if bytes.len() > max_bytes {
        return Err(unreadable(
            RejectCode::Oversized,
            format!("command is {} bytes; the limit is {max_bytes}", bytes.len()),
        ));
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(unreadable(
            RejectCode::Malformed,
            format!(
                "command is not valid UTF-8 (bad byte at offset {}); JSON commands must be UTF-8",
                e.valid_up_to()
            ),
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| unreadable(RejectCode::Malformed, format!("not a JSON command: {e}")))?;
    let text = |key: &str| {
        value
            .get(key)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let id = text("id").and_then(usable_id);
    let kind_name = text("kind");
    let Some(id) = id else {
        return Err(rejection(
            None,
            kind_name,
            RejectCode::Malformed,
            format!(
                "missing or invalid \"id\" (a string of 1..={MAX_COMMAND_ID_BYTES} characters)"
            ),
        ));
    };
    match value.get("v").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(CONTRACT_VERSION) => {}
        other => {
            return Err(rejection(
                Some(id),
                kind_name,
                RejectCode::UnsupportedVersion,
                format!(
                    "envelope version {} is not supported; this hub speaks v{CONTRACT_VERSION}",
                    other.map_or("(missing)".to_owned(), |v| v.to_string())
                ),
            ));
        }
    }
    let Some(kind_name) = kind_name else {
        return Err(rejection(
            Some(id),
            None,
            RejectCode::Malformed,
            "missing \"kind\"".into(),
        ));
    };
    let Some(kind) = CommandKind::parse(&kind_name) else {
        let known: Vec<&str> = CommandKind::ALL.iter().map(|k| k.as_str()).collect();
        return Err(rejection(
            Some(id),
            Some(kind_name.clone()),
            RejectCode::UnknownKind,
            format!(
                "unknown command kind '{kind_name}'; known kinds are {}",
                known.join(", ")
            ),
        ));
    };
    let refuse = |reason: String| {
        rejection(
            Some(id.clone()),
            Some(kind_name.clone()),
            RejectCode::Malformed,
            reason,
        )
    };
    let missing = |what: &str| refuse(format!("missing or invalid \"{what}\""));
    let site = text("site").ok_or_else(|| missing("site"))?;
    let key = text("key").ok_or_else(|| missing("key"))?;
    // Any whole number that fits is read here; the hub refuses the ones outside the range
    // versions may take when it applies the command. One that does not fit is refused here
    // for the same reason.
    let version = match value.get("version") {
        Some(serde_json::Value::Number(n)) => match n.as_i64() {
            Some(v) => v,
            None => return Err(refuse(version_out_of_range(n))),
        },
        _ => return Err(missing("version")),
    };
    let body = value.get("body").ok_or_else(|| missing("body"))?;
    let fingerprint = fingerprint(&site, kind, &key, version, body);
    let body = decode_body(kind, &key, version, body.clone());
    Ok(Command {
        id,
        site,
        kind,
        key,
        version,
        body,
        fingerprint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_commands_are_rejected_with_their_identity() {
        let ok = br#"{"v":1,"id":"c1","site":"s1","kind":"pickup_order","key":"P1","version":2,"body":{}}"#;
        let c = decode_command(ok, 1000).unwrap();
        assert_eq!((c.kind, c.version), (CommandKind::PickupOrder, 2));
        let code = |b: &[u8]| decode_command(b, 200).unwrap_err().code;
        assert_eq!(code(b"not json"), RejectCode::Malformed);
        assert_eq!(code(&[b' '; 300]), RejectCode::Oversized);
        let unknown = decode_command(
            br#"{"v":1,"id":"c2","site":"s1","kind":"launch","key":"k","version":1,"body":{}}"#,
            200,
        )
        .unwrap_err();
        assert_eq!(unknown.code, RejectCode::UnknownKind);
        assert_eq!(unknown.command_id.as_deref(), Some("c2"));
        assert_eq!(
            code(br#"{"v":9,"id":"c3","kind":"pickup_order"}"#),
            RejectCode::UnsupportedVersion
        );
    }

    #[test]
    fn unreadable_commands_still_name_their_top_level_id_and_kind() {
        let named = |bytes: &[u8], limit| {
            let r = decode_command(bytes, limit).unwrap_err();
            (r.command_id, r.kind)
        };
        let some = |s: &str| Some(s.to_owned());
        // The id after a nested "id" and a long body; only the top level counts.
        let late = format!(
            r#"{{"v":1,"body":{{"id":"inner","items":[{{"id":"x"}}],"pad":"{}"}},"kind":"pickup_order","id":"outer"}}"#,
            "y".repeat(3000)
        );
        assert_eq!(
            named(late.as_bytes(), 100),
            (some("outer"), some("pickup_order"))
        );
        // Escapes in the id are decoded; invalid UTF-8 elsewhere does not hide it.
        let mut bad = br#"{"id" : "c-\"q\"\u00e9", "note":"#.to_vec();
        bad.extend_from_slice(b"\"\xc3\x28\", \"kind\":\"sku_upsert\"}");
        assert_eq!(named(&bad, 1000), (some("c-\"q\"é"), some("sku_upsert")));
        // Cut off mid-way: whatever was read before the cut still names it.
        assert_eq!(
            named(br#"{"id":"c-cut","kind":"sku_ups"#, 1000),
            (some("c-cut"), None)
        );
        // No usable id: an empty, over-long or non-string id, or none at all.
        assert_eq!(named(br#"{"id":"","kind":"x"#, 1000).0, None);
        let long = format!(r#"{{"id":"{}","x":"#, "i".repeat(129));
        assert_eq!(named(long.as_bytes(), 1000).0, None);
        assert_eq!(named(br#"{"id":42,"x":"#, 1000).0, None);
        assert_eq!(named(b"\xff\xfe not json at all", 1000).0, None);
        assert_eq!(named(br#"["id","c1"]"#, 1000).0, None);
    }

    fn decoded(kind: &str, key: &str, version: i64, body: &str) -> Command {
        let bytes = format!(
            r#"{{"v":1,"id":"c1","site":"s1","kind":"{kind}","key":"{key}","version":{version},"body":{body}}}"#
        );
        decode_command(bytes.as_bytes(), 1 << 20).unwrap()
    }

    #[test]
    fn bodies_are_decoded_once_into_their_kinds_type() {
        let c = decoded(
            "sku_upsert",
            "MILK-1L",
            2,
            r#"{"code":"MILK-1L","name":"Milk","unit":"piece","gtins":["6901234567892"],"version":2,
                "thresholds":{"measure":"absolute","yellow":20,"orange":10,"red":5,"target":40}}"#,
        );
        let Ok(CommandBody::SkuUpsert(body)) = &c.body else {
            panic!("{:?}", c.body)
        };
        assert_eq!(body.sku.gtins[0].as_str(), "06901234567892");
        let policy = body.thresholds.as_ref().unwrap();
        assert_eq!((policy.measure, policy.target), (Measure::Absolute, 40.0));
        assert_eq!(policy.re_request_after_ms, 240 * 60_000);

        let c = decoded(
            "pickup_order",
            "P1",
            3,
            r#"{"code_salt":"A1B2","code_hash":"ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB",
                "items":[{"sku":"MILK-1L","quantity":2}],"opens_at_ms":0,"closes_at_ms":10,
                "status":"on_hold","phone_tail":"1234"}"#,
        );
        let Ok(CommandBody::PickupOrder(order)) = &c.body else {
            panic!("{:?}", c.body)
        };
        assert_eq!(order.status, OrderStatus::OnHold);
        assert_eq!(order.code_salt, "a1b2");
        assert_eq!(order.closes_at, Timestamp(10));

        let c = decoded(
            "delivery_manifest",
            "D1",
            4,
            r#"{"supplier":"Farm","lines":[{"line_no":1,"sku":"MILK-1L","lot":"L1","expected_count":10}]}"#,
        );
        let Ok(CommandBody::DeliveryManifest(m)) = &c.body else {
            panic!("{:?}", c.body)
        };
        assert_eq!(
            (m.delivery_id.as_str(), m.version, m.lines.len()),
            ("D1", 4, 1)
        );

        let c = decoded(
            "alert_tiers",
            "site",
            5,
            r#"{"policies":{"MILK-1L":{"yellow":3,"orange":2,"red":1,"target":6}}}"#,
        );
        let Ok(CommandBody::AlertTiers(tiers)) = &c.body else {
            panic!("{:?}", c.body)
        };
        assert_eq!(tiers.policies[0].0.as_str(), "MILK-1L");

        let c = decoded(
            "delivery_dispute",
            "D1",
            1,
            r#"{"open":true,"note":"n","by":"  "}"#,
        );
        assert_eq!(
            c.body,
            Ok(CommandBody::DeliveryDispute(DisputeBody {
                step: crate::station::DisputeStep::Open,
                line_no: None,
                note: "n".into(),
                by: "central".into()
            }))
        );
        // The steps, and the older open flag still read (false: settle).
        for (body, step) in [
            (r#"{"open":false,"note":"n"}"#, "settle"),
            (r#"{"step":"respond","note":"n"}"#, "respond"),
            (
                r#"{"step":"photos_inspected","note":"n"}"#,
                "photos_inspected",
            ),
            (r#"{"step":"settle","open":false,"note":"n"}"#, "settle"),
            (r#"{"step":"open","line_no":2,"note":"n"}"#, "open"),
        ] {
            match decoded("delivery_dispute", "D1", 1, body).body {
                Ok(CommandBody::DeliveryDispute(b)) => assert_eq!(b.step.as_str(), step, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        for (body, why) in [
            (r#"{"note":"n"}"#, "needs a step"),
            (r#"{"step":"close","note":"n"}"#, "'close' is not one of"),
            (r#"{"step":"respond","open":true,"note":"n"}"#, "disagrees"),
            (
                r#"{"step":"respond","line_no":1,"note":"n"}"#,
                "only goes with the open step",
            ),
        ] {
            match decoded("delivery_dispute", "D1", 1, body).body {
                Err(InvalidBody(reason)) => assert!(reason.contains(why), "{body}: {reason}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        let c = decoded("replenishment_ack", "E-1", 1, "{}");
        assert_eq!(
            c.body,
            Ok(CommandBody::ReplenishmentAck(ReplenishmentAckBody {
                sku: None,
                accepted: true,
                eta_ms: None
            }))
        );
    }

    #[test]
    fn bodies_that_do_not_fit_their_kind_say_why() {
        let reason = |kind: &str, key: &str, body: &str| match decoded(kind, key, 1, body).body {
            Err(InvalidBody(reason)) => reason,
            Ok(b) => panic!("{kind} {body} decoded as {b:?}"),
        };
        let r = reason(
            "sku_upsert",
            "MILK-1L",
            r#"{"code":"EGGS","name":"E","unit":"piece","version":1}"#,
        );
        assert!(
            r.contains(
                "body describes SKU 'EGGS' version 1 but the command names 'MILK-1L' version 1"
            ),
            "{r}"
        );
        let r = reason(
            "sku_thresholds",
            "MILK-1L",
            r#"{"yellow":1,"orange":2,"red":3,"target":6}"#,
        );
        assert!(
            r.starts_with("body is not a usable set of SKU thresholds: "),
            "{r}"
        );
        let r = reason(
            "sku_thresholds",
            "a b",
            r#"{"yellow":3,"orange":2,"red":1,"target":6}"#,
        );
        assert!(r.starts_with("key 'a b' is not a SKU code"), "{r}");
        let r = reason(
            "pickup_order",
            "P1",
            r#"{"code_salt":"a1","code_hash":"ab","items":[],"opens_at_ms":0,"closes_at_ms":1}"#,
        );
        assert!(r.contains("code_hash 64 hex digits"), "{r}");
        let r = reason("delivery_manifest", "D1", r#"{"supplier":"F"}"#);
        assert!(r.contains("it has no lines"), "{r}");
        let r = reason(
            "sku_upsert",
            "A",
            r#"{"code":"A","name":"a","unit":"piece","version":1,"category":"  "}"#,
        );
        assert!(r.contains("category '' must be 1 to 64 characters"), "{r}");
        let r = reason(
            "sku_upsert",
            "A",
            r#"{"code":"A","name":"a","unit":"piece","version":1,"category":7}"#,
        );
        assert!(r.contains("category must be a string"), "{r}");
        let r = reason("delivery_dispute", "D1", r#"{"note":"x"}"#);
        assert!(
            r.starts_with("a delivery dispute needs a step (open, respond"),
            "{r}"
        );
        let r = reason("replenishment_ack", "E", r#"{"sku":"X","extra":1}"#);
        assert!(r.contains("unknown field `extra`"), "{r}");
    }

    #[test]
    fn sku_master_data_may_carry_a_unit_weight_for_the_counters_cross_check() {
        let with = br#"{"v":1,"id":"c9","site":"s1","kind":"sku_upsert","key":"MILK-1L","version":2,"body":{"code":"MILK-1L","name":"Milk","unit":"piece","version":2,"unit_weight_g":1030}}"#;
        let c = decode_command(with, 10_000).unwrap();
        let Ok(CommandBody::SkuUpsert(body)) = &c.body else {
            panic!("{:?}", c.body)
        };
        assert_eq!(body.unit_weight_g, Some(1030));
        let without = br#"{"v":1,"id":"c9","site":"s1","kind":"sku_upsert","key":"MILK-1L","version":2,"body":{"code":"MILK-1L","name":"Milk","unit":"piece","version":2}}"#;
        let c = decode_command(without, 10_000).unwrap();
        let Ok(CommandBody::SkuUpsert(body)) = &c.body else {
            panic!("{:?}", c.body)
        };
        assert_eq!(body.unit_weight_g, None);
        for bad in ["0", "-5", "1.5", "\"heavy\""] {
            let text = format!(
                r#"{{"v":1,"id":"c9","site":"s1","kind":"sku_upsert","key":"MILK-1L","version":2,"body":{{"code":"MILK-1L","name":"Milk","unit":"piece","version":2,"unit_weight_g":{bad}}}}}"#
            );
            let c = decode_command(text.as_bytes(), 10_000).unwrap();
            let Err(e) = &c.body else {
                panic!("{bad}: {:?}", c.body)
            };
            assert!(format!("{e:?}").contains("unit_weight_g"), "{bad}: {e:?}");
        }
    }

    /// sha256 of `{"body":{"code":"MILK-1L","name":"Milk","unit":"piece","version":2},"key":"MILK-1L","kind":"sku_upsert","site":"s1","version":2}`.
    const FINGERPRINT_VECTOR: &str =
        "84eaf70576ce303cad55ed9457200d9472a70e0c2e922d32743872e313c0876f";

    #[test]
    fn the_fingerprint_of_a_command_never_changes_form() {
        // Stored beside every command id since the first hub that kept fingerprints: the same
        // command delivered again must hash the same, whatever order its keys come in.
        let a = br#"{"v":1,"id":"c1","site":"s1","kind":"sku_upsert","key":"MILK-1L","version":2,"body":{"code":"MILK-1L","name":"Milk","unit":"piece","version":2}}"#;
        let b = br#"{"body":{"version":2,"unit":"piece","name":"Milk","code":"MILK-1L"},"version":2,"key":"MILK-1L","kind":"sku_upsert","site":"s1","id":"c1","v":1}"#;
        let fa = decode_command(a, 1000).unwrap().fingerprint;
        assert_eq!(fa, decode_command(b, 1000).unwrap().fingerprint);
        assert_eq!(fa, FINGERPRINT_VECTOR);
        let c = br#"{"v":1,"id":"c1","site":"s1","kind":"sku_upsert","key":"MILK-1L","version":2,"body":{"code":"MILK-1L","name":"Milk!","unit":"piece","version":2}}"#;
        assert_ne!(fa, decode_command(c, 1000).unwrap().fingerprint);
    }
}

//! The hub's side of the vision adapter (`hub-vision`): the `[vision]` config section, start-up
//! (backend first, then the model on its own thread), and photo sources feeding receiving.
//!
//! Start-up order: [`start`] calls `hub_vision::init_backend` before anything else touches
//! ONNX Runtime, so a missing library is a start-up error (or a logged fallback to tract, as
//! configured), never a panic on the first photo. `HUB_VISION_BACKEND` overrides the configured
//! backend (the aarch64 qemu test runs on tract).
//!
//! A photo from any source (spool folder, an MQTT photo topic, `hub receive photo`) goes through
//! [`photo_for_station`]:
//! the rule for the SKU of the station's selected line, the photo stored by hash (a full disk
//! keeps the decision without a stored copy and raises `disk_nearly_full`), the check on the
//! inference thread, and `workflows::receiving::photo` with the evidence. This module must not
//! decide acceptance itself: `hub_vision::evaluate` and `hub_core::receiving::decide_line` do.

use crate::config::{Problems, int_in};
use crate::store::Store;
use crate::store::receiving::{ReceivingError, Selected};
use hub_core::Timestamp;
use hub_core::receiving::{LabelScore, PhotoEvidence, PhotoVerdict};
use hub_vision::{
    ActiveBackend, BackendKind, BackendSettings, DecodeLimits, Evidence, ExpectedLabel,
    ModelOptions, OnLoadFailure, Outcome, PhotoFormat, SkuRule, VisionConfig, VisionError,
    VisionHandle, VisionWorker,
};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Environment variable that overrides `vision.backend` (`onnxruntime` or `tract`).
pub const BACKEND_ENV: &str = "HUB_VISION_BACKEND";

/// The manifest of the model shipped with the hub, relative to the models folder.
pub const DEFAULT_MANIFEST: &str = "efficientnet-lite0.toml";

/// Where the `.deb` installs the shipped models.
pub const INSTALLED_MODELS_DIR: &str = "/usr/share/hub/models";

/// Photos dropped into a folder by an IP camera, for one receiving station.
#[derive(Debug, Clone, PartialEq)]
pub struct SpoolSource {
    /// The folder watched; processed photos move to `done/` or `rejected/` inside it.
    pub dir: PathBuf,
    /// The receiving station whose selected line the photos are for.
    pub station: String,
    /// How often the folder is listed.
    pub poll_interval: Duration,
}

/// Photos published over MQTT for one receiving station: each message on `topic` (on the local
/// device broker, `[device_broker]`) is one JPEG or PNG file, raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoTopic {
    pub station: String,
    pub topic: String,
}

/// The validated `[vision]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct VisionSettings {
    pub enabled: bool,
    /// Backend wanted, library and what to do when ONNX Runtime cannot be loaded.
    pub backend: BackendSettings,
    /// Model manifest; `None` means the shipped model, found by [`default_manifest`].
    pub model_manifest: Option<PathBuf>,
    /// Intra-op threads for inference.
    pub threads: usize,
    /// Photos that may wait for the inference thread.
    pub queue_capacity: usize,
    pub limits: DecodeLimits,
    /// Acceptance rules per SKU.
    pub rules: Vec<SkuRule>,
    pub spool: Option<SpoolSource>,
    /// MQTT topics carrying photos, one per station.
    pub photo_topics: Vec<PhotoTopic>,
    /// The config file's folder, where the shipped model is looked for first.
    pub config_dir: Option<PathBuf>,
}

impl Default for VisionSettings {
    /// Vision off; ONNX Runtime with fallback to tract; the shipped model; no rules.
    fn default() -> Self {
        VisionSettings {
            enabled: false,
            backend: BackendSettings {
                backend: BackendKind::OnnxRuntime,
                library_path: None,
                on_load_failure: OnLoadFailure::FallbackToTract,
            },
            model_manifest: None,
            threads: 1,
            queue_capacity: 8,
            limits: DecodeLimits::default(),
            rules: Vec::new(),
            spool: None,
            photo_topics: Vec::new(),
            config_dir: None,
        }
    }
}

impl VisionSettings {
    /// The rule for a SKU, if the config has one.
    pub fn rule_for(&self, sku: &str) -> Option<&SkuRule> {
        self.rules.iter().find(|r| r.sku == sku)
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVision {
    enabled: Option<bool>,
    backend: Option<String>,
    library_path: Option<PathBuf>,
    on_load_failure: Option<String>,
    model_manifest: Option<PathBuf>,
    threads: Option<i64>,
    queue_capacity: Option<i64>,
    max_side: Option<i64>,
    max_file_mb: Option<i64>,
    max_decoded_mb: Option<i64>,
    spool_dir: Option<PathBuf>,
    spool_station: Option<String>,
    spool_poll_ms: Option<i64>,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    photo_topics: Vec<RawPhotoTopic>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhotoTopic {
    station: String,
    topic: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    sku: String,
    expected: Vec<ExpectedLabel>,
    top_k: Option<i64>,
    min_probability: Option<f64>,
    allow_model_reject: Option<bool>,
}

fn parse_backend(text: &str) -> Result<BackendKind, String> {
    match text {
        "onnxruntime" => Ok(BackendKind::OnnxRuntime),
        "tract" => Ok(BackendKind::Tract),
        other => Err(format!(
            "'{other}' is not a backend; use \"onnxruntime\" or \"tract\""
        )),
    }
}

/// Validates `[vision]`; relative paths are resolved against `base_dir` (the config's folder).
pub(crate) fn validate(raw: RawVision, base_dir: &Path, problems: &mut Problems) -> VisionSettings {
    let defaults = VisionSettings::default();
    let resolve = |p: PathBuf| if p.is_relative() { base_dir.join(p) } else { p };
    let backend = match raw.backend.as_deref().map(parse_backend) {
        None => BackendKind::OnnxRuntime,
        Some(Ok(b)) => b,
        Some(Err(e)) => {
            problems.push("vision.backend", e);
            BackendKind::OnnxRuntime
        }
    };
    let on_load_failure = match raw.on_load_failure.as_deref() {
        None | Some("fallback_to_tract") => OnLoadFailure::FallbackToTract,
        Some("refuse") => OnLoadFailure::Refuse,
        Some(other) => {
            problems.push(
                "vision.on_load_failure",
                format!("'{other}' is not a choice; use \"fallback_to_tract\" or \"refuse\""),
            );
            OnLoadFailure::FallbackToTract
        }
    };
    let mb = |v: Option<i64>, default: u64, max: i64, path: &str, problems: &mut Problems| {
        int_in(v, (default >> 20) as usize, 1, max, path, problems) as u64 * 1024 * 1024
    };
    let limits = DecodeLimits {
        max_side: int_in(
            raw.max_side,
            defaults.limits.max_side as usize,
            224,
            65_535,
            "vision.max_side",
            problems,
        ) as u32,
        max_file_bytes: mb(
            raw.max_file_mb,
            defaults.limits.max_file_bytes,
            1024,
            "vision.max_file_mb",
            problems,
        ),
        max_decoded_bytes: mb(
            raw.max_decoded_mb,
            defaults.limits.max_decoded_bytes,
            4096,
            "vision.max_decoded_mb",
            problems,
        ),
    };
    let mut rules: Vec<SkuRule> = Vec::new();
    for (i, r) in raw.rules.into_iter().enumerate() {
        let path = format!("vision.rules[{i}]");
        let min_probability = match r.min_probability {
            None => 0.2,
            Some(p) if p.is_finite() && (0.0..=1.0).contains(&p) => p as f32,
            Some(p) => {
                problems.push(
                    format!("{path}.min_probability"),
                    format!("{p} is out of range 0..=1"),
                );
                0.2
            }
        };
        let rule = SkuRule {
            sku: r.sku,
            expected: r.expected,
            top_k: int_in(r.top_k, 5, 1, 1000, &format!("{path}.top_k"), problems),
            min_probability,
            allow_model_reject: r.allow_model_reject.unwrap_or(false),
        };
        if let Err(e) = rule.validate() {
            problems.push(format!("{path}.expected"), e.to_string());
        }
        if rules.iter().any(|other| other.sku == rule.sku) {
            problems.push(
                format!("{path}.sku"),
                format!("a rule for SKU '{}' is already defined", rule.sku),
            );
        }
        rules.push(rule);
    }
    let spool = match (raw.spool_dir, raw.spool_station) {
        (None, None) => None,
        (Some(dir), Some(station)) if !station.trim().is_empty() => Some(SpoolSource {
            dir: resolve(dir),
            station,
            poll_interval: Duration::from_millis(int_in(
                raw.spool_poll_ms,
                500,
                50,
                60_000,
                "vision.spool_poll_ms",
                problems,
            ) as u64),
        }),
        (Some(_), _) => {
            problems.push(
                "vision.spool_station",
                "missing; the receiving station whose selected line spooled photos are for",
            );
            None
        }
        (None, Some(_)) => {
            problems.push(
                "vision.spool_dir",
                "missing; the folder the camera drops photos into (or remove spool_station)",
            );
            None
        }
    };
    let mut photo_topics: Vec<PhotoTopic> = Vec::new();
    for (i, t) in raw.photo_topics.into_iter().enumerate() {
        let path = format!("vision.photo_topics[{i}]");
        if t.station.trim().is_empty() {
            problems.push(format!("{path}.station"), "is empty");
        }
        if t.topic.is_empty() || t.topic.contains(['+', '#', '\0']) {
            problems.push(
                format!("{path}.topic"),
                format!(
                    "'{}' is not a topic to subscribe to: give one exact topic, without + or # wildcards",
                    t.topic
                ),
            );
        } else if let Some(other) = photo_topics.iter().find(|o| o.topic == t.topic) {
            problems.push(
                format!("{path}.topic"),
                format!(
                    "'{}' is already used for station '{}'",
                    t.topic, other.station
                ),
            );
        }
        photo_topics.push(PhotoTopic {
            station: t.station,
            topic: t.topic,
        });
    }
    VisionSettings {
        enabled: raw.enabled.unwrap_or(false),
        backend: BackendSettings {
            backend,
            library_path: raw.library_path.map(resolve),
            on_load_failure,
        },
        model_manifest: raw.model_manifest.map(resolve),
        threads: int_in(raw.threads, 1, 1, 64, "vision.threads", problems),
        queue_capacity: int_in(
            raw.queue_capacity,
            8,
            1,
            1024,
            "vision.queue_capacity",
            problems,
        ),
        limits,
        rules,
        spool,
        photo_topics,
        config_dir: Some(base_dir.to_owned()),
    }
}

/// Why vision could not start.
#[derive(Debug, thiserror::Error)]
pub enum VisionStartError {
    #[error("{BACKEND_ENV}={value} is not a backend; use onnxruntime or tract")]
    BadEnv { value: String },
    #[error(
        "cannot start the inference backend: {0}\n  hint: run deploy/fetch-onnxruntime.sh (or install the hub .deb), set vision.library_path, or set vision.on_load_failure = \"fallback_to_tract\""
    )]
    Backend(#[source] VisionError),
    #[error(
        "no model manifest found; looked for {DEFAULT_MANIFEST} in: {}\n  hint: set vision.model_manifest to the model's .toml",
        tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NoManifest { tried: Vec<PathBuf> },
    #[error("cannot load the vision model {manifest}: {source}")]
    Model {
        manifest: PathBuf,
        #[source]
        source: VisionError,
    },
}

/// The shipped model's manifest: next to the config (`<base>/models/`, `<base>/../models/`),
/// installed by the `.deb` (`/usr/share/hub/models/`), or in a `models/` folder above the current
/// directory or the executable (a checkout). Returns every path tried when none exists.
pub fn default_manifest(base_dir: Option<&Path>) -> Result<PathBuf, Vec<PathBuf>> {
    let mut candidates = Vec::new();
    if let Some(base) = base_dir {
        candidates.push(base.join("models").join(DEFAULT_MANIFEST));
        candidates.push(base.join("../models").join(DEFAULT_MANIFEST));
    }
    candidates.push(Path::new(INSTALLED_MODELS_DIR).join(DEFAULT_MANIFEST));
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_owned));
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_owned))
    {
        roots.extend(exe_dir.ancestors().map(Path::to_owned));
    }
    for root in roots {
        candidates.push(root.join("models").join(DEFAULT_MANIFEST));
    }
    match candidates.iter().find(|p| p.is_file()) {
        Some(found) => Ok(found.clone()),
        None => Err(candidates),
    }
}

/// Backend settings with the `HUB_VISION_BACKEND` override applied.
pub fn effective_backend(settings: &BackendSettings) -> Result<BackendSettings, VisionStartError> {
    let mut out = settings.clone();
    if let Ok(value) = std::env::var(BACKEND_ENV)
        && !value.trim().is_empty()
    {
        out.backend =
            parse_backend(value.trim()).map_err(|_| VisionStartError::BadEnv { value })?;
    }
    Ok(out)
}

/// The running vision adapter: the handle photo sources use, and the inference thread.
#[derive(Debug)]
pub struct VisionService {
    pub handle: VisionHandle,
    pub worker: VisionWorker,
    pub backend: ActiveBackend,
    pub settings: VisionSettings,
}

impl VisionService {
    /// What the status board shows.
    pub fn board_entry(&self) -> crate::status::Vision {
        let info = self.handle.model_info();
        let mut v = crate::status::Vision::new(info.name.clone(), self.backend.to_string());
        v.detail = self
            .backend
            .fallback_reason
            .as_ref()
            .map(|r| format!("fallback to tract: {r}"));
        v
    }

    /// Drops the handle and waits for queued checks to finish.
    pub fn stop(self) {
        let VisionService { handle, worker, .. } = self;
        drop(handle);
        if worker.join().is_err() {
            tracing::error!("the vision inference thread panicked");
        }
    }
}

/// Starts vision: the backend first (process-wide, before anything else touches ONNX Runtime),
/// then the model on its own thread. Blocks for up to a few seconds; call it at start-up.
pub fn start(settings: &VisionSettings) -> Result<VisionService, VisionStartError> {
    let backend_settings = effective_backend(&settings.backend)?;
    let backend = hub_vision::init_backend(&backend_settings).map_err(VisionStartError::Backend)?;
    if let Some(reason) = &backend.fallback_reason {
        tracing::warn!(reason = %reason, "ONNX Runtime unavailable; vision runs on tract (slower)");
    }
    let manifest = match &settings.model_manifest {
        Some(path) => path.clone(),
        None => default_manifest(settings.config_dir.as_deref())
            .map_err(|tried| VisionStartError::NoManifest { tried })?,
    };
    let mut config = VisionConfig::new(&manifest);
    config.model = ModelOptions {
        intra_threads: settings.threads,
    };
    config.limits = settings.limits;
    config.queue_capacity = settings.queue_capacity;
    let (handle, worker) =
        VisionHandle::start(&config).map_err(|source| VisionStartError::Model {
            manifest: manifest.clone(),
            source,
        })?;
    tracing::info!(model = %handle.model_info().name, manifest = %manifest.display(), backend = %backend, "vision ready");
    Ok(VisionService {
        handle,
        worker,
        backend,
        settings: settings.clone(),
    })
}

/// Maps hub-vision's evidence record onto the receiving record kept with the line.
pub fn to_photo_evidence(e: &Evidence) -> PhotoEvidence {
    PhotoEvidence {
        photo_sha256: e.photo_sha256.clone(),
        photo_path: e.photo_path.as_ref().map(|p| p.display().to_string()),
        model_name: e.model_name.clone(),
        model_sha256: e.model_sha256.clone(),
        backend: match &e.backend_version {
            Some(v) => format!("{} {v}", e.backend),
            None => e.backend.to_string(),
        },
        top_k: e
            .top_k
            .iter()
            .map(|p| LabelScore {
                class_id: p.class_id,
                label: p.label.clone(),
                probability: p.probability,
            })
            .collect(),
        expected_labels: e.thresholds.expected.iter().map(label_text).collect(),
        min_probability: e.thresholds.min_probability,
        verdict: match e.outcome {
            Outcome::Pass => PhotoVerdict::Pass,
            Outcome::Fail => PhotoVerdict::Fail,
            Outcome::NeedsReview => PhotoVerdict::NeedsReview,
        },
        reasons: e.reasons.clone(),
        duration_ms: e.timings.total_ms,
    }
}

fn label_text(l: &ExpectedLabel) -> String {
    match l {
        ExpectedLabel::Id(id) => id.to_string(),
        ExpectedLabel::Name(n) => n.clone(),
    }
}

/// Why a photo did not reach a receiving line.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    #[error(transparent)]
    Receiving(#[from] ReceivingError),
    #[error("cannot check the photo from station {station}: {source}")]
    Vision {
        station: String,
        #[source]
        source: VisionError,
    },
}

/// What a photo did at a station.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PhotoRecorded {
    pub selected: Selected,
    pub evidence: PhotoEvidence,
    /// Set when the photo could not be kept (the decision stands without a stored copy).
    pub storage_problem: Option<String>,
}

/// Runs a photo from `station` through the check for its selected line's SKU and records the
/// evidence on that line. SKUs without a rule get `NeedsReview` with the reason. A photo that
/// cannot be stored (disk full) is checked anyway, recorded without a stored copy, and raises
/// the `disk_nearly_full` alert.
pub async fn photo_for_station(
    store: &Store,
    vision: &VisionService,
    data_dir: &Path,
    station: &str,
    bytes: Vec<u8>,
    now: Timestamp,
) -> Result<PhotoRecorded, PhotoError> {
    let st = station.to_owned();
    let selected = store
        .read(move |c| crate::store::receiving::selected_line(c, &st))
        .await?;
    let ext = PhotoFormat::sniff(&bytes).map_or("jpg", PhotoFormat::extension);
    let (dir, copy) = (data_dir.to_owned(), bytes.clone());
    let stored =
        tokio::task::spawn_blocking(move || crate::evidence::store_photo(&dir, &copy, ext))
            .await
            .unwrap_or_else(|e| {
                Err(crate::evidence::EvidenceError::Io {
                    sha256: crate::evidence::sha256_hex(&bytes),
                    dir: crate::evidence::photo_dir(data_dir),
                    source: std::io::Error::other(e.to_string()),
                })
            });
    let (stored_path, storage_problem) = match stored {
        Ok((_, path)) => (Some(path), None),
        Err(e) => {
            tracing::error!(station, error = %e, "photo not stored; the check goes on without a copy");
            if matches!(e, crate::evidence::EvidenceError::DiskFull { .. }) {
                raise_disk_full(store, data_dir, &e.to_string(), now).await;
            }
            (None, Some(e.to_string()))
        }
    };
    let evidence = match vision.settings.rule_for(&selected.sku) {
        Some(rule) => {
            let report = vision
                .handle
                .check(bytes, rule.clone(), stored_path)
                .await
                .map_err(|source| PhotoError::Vision {
                    station: station.to_owned(),
                    source,
                })?;
            to_photo_evidence(&report.evidence)
        }
        None => {
            let info = vision.handle.model_info();
            PhotoEvidence {
                photo_sha256: crate::evidence::sha256_hex(&bytes),
                photo_path: stored_path.map(|p| p.display().to_string()),
                model_name: info.name.clone(),
                model_sha256: info.sha256.clone(),
                backend: vision.backend.to_string(),
                top_k: Vec::new(),
                expected_labels: Vec::new(),
                min_probability: 0.0,
                verdict: PhotoVerdict::NeedsReview,
                reasons: vec![format!(
                    "no vision rule for SKU {}; a person must check the photo (add a [[vision.rules]] entry for it)",
                    selected.sku
                )],
                duration_ms: 0.0,
            }
        }
    };
    let recorded =
        crate::workflows::receiving::photo(store, station, evidence.clone(), now).await?;
    if recorded.sku != selected.sku || recorded.line_no != selected.line_no {
        tracing::warn!(station, checked_sku = %selected.sku, recorded_sku = %recorded.sku, "the station's line changed during the photo check");
    }
    Ok(PhotoRecorded {
        selected: recorded,
        evidence,
        storage_problem,
    })
}

async fn raise_disk_full(store: &Store, data_dir: &Path, message: &str, now: Timestamp) {
    use hub_core::alerts::{Alert, AlertKind, Tier};
    let alert = Alert {
        kind: AlertKind::DiskNearlyFull,
        subject: data_dir.display().to_string(),
        tier: Tier::Red,
        message: message.to_owned(),
    };
    if let Err(e) = store
        .write(move |c| crate::store::alerts::raise(c, &alert, now))
        .await
    {
        tracing::error!(error = %e, "cannot record the disk space alert");
    }
}

/// Watches the spool folder until `shutdown`: each settled photo goes to
/// [`photo_for_station`]; recorded photos move to `done/`, the others to `rejected/` with the
/// reason next to them.
pub async fn spool_task(
    store: Store,
    vision: std::sync::Arc<VisionService>,
    data_dir: PathBuf,
    source: SpoolSource,
    shutdown: tokio_util::sync::CancellationToken,
) {
    if let Err(e) = std::fs::create_dir_all(&source.dir) {
        tracing::error!(dir = %source.dir.display(), error = %e, "cannot create the photo spool folder; spooled photos are not read");
        return;
    }
    let mut config = hub_vision::SpoolConfig::new(&source.dir);
    config.poll_interval = source.poll_interval;
    let station = source.station.clone();
    let handler = |file: hub_vision::SpoolFile| {
        let (store, vision, data_dir, station) = (
            store.clone(),
            vision.clone(),
            data_dir.clone(),
            station.clone(),
        );
        async move {
            let now = crate::clock::now();
            match photo_for_station(&store, &vision, &data_dir, &station, file.bytes, now).await {
                Ok(r) => {
                    tracing::info!(station = %station, file = %file.path.display(), delivery = %r.selected.delivery_id, line = r.selected.line_no, verdict = ?r.evidence.verdict, "spooled photo checked");
                    hub_vision::SpoolDisposition::Done
                }
                Err(e) => {
                    tracing::warn!(station = %station, file = %file.path.display(), error = %e, "spooled photo not recorded");
                    hub_vision::SpoolDisposition::Rejected {
                        reason: e.to_string(),
                    }
                }
            }
        }
    };
    let result = hub_vision::watch_spool(config, shutdown.cancelled(), handler, |outcome| {
        tracing::debug!(moved_to = %outcome.moved_to.display(), "spooled photo moved");
    })
    .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "photo spool watcher stopped");
    }
}

/// Subscribes to the configured photo topics on the local device broker until `shutdown`:
/// each message is one photo (JPEG or PNG bytes) for the topic's station and goes to
/// [`photo_for_station`], in arrival order, so a photo lands on the line that was selected
/// when it was taken. One task polls the rumqttc event loop and only polls it; a second one
/// runs the checks, so a slow check never stalls keep-alives. A message larger than
/// `vision.max_file_mb` is refused by the client before it is read (the broker then drops the
/// connection's clean session, so it is not redelivered); the client reconnects with back-off.
pub async fn photo_topic_task(
    store: Store,
    vision: std::sync::Arc<VisionService>,
    data_dir: PathBuf,
    broker: crate::devices::config::BrokerConfig,
    topics: Vec<PhotoTopic>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let max_photo = usize::try_from(vision.settings.limits.max_file_bytes).unwrap_or(usize::MAX);
    let mut options = MqttOptions::new(
        format!("{}-photos", broker.client_id),
        broker.host.clone(),
        broker.port,
    );
    options.set_keep_alive(Duration::from_secs(15));
    options.set_clean_session(true);
    options.set_max_packet_size(max_photo.saturating_add(1024), 64 * 1024);
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    // Photos waiting for their check; when full, the poller waits and the broker holds the rest.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, Vec<u8>)>(4);
    let checker = {
        let (store, vision, data_dir) = (store.clone(), vision.clone(), data_dir.clone());
        tokio::spawn(async move {
            while let Some((station, bytes)) = rx.recv().await {
                let size = bytes.len();
                let now = crate::clock::now();
                match photo_for_station(&store, &vision, &data_dir, &station, bytes, now).await {
                    Ok(r) => tracing::info!(
                        station = %station, bytes = size, delivery = %r.selected.delivery_id,
                        line = r.selected.line_no, verdict = ?r.evidence.verdict,
                        "photo from MQTT checked"
                    ),
                    Err(e) => tracing::warn!(
                        station = %station, bytes = size, error = %e,
                        "photo from MQTT not recorded"
                    ),
                }
            }
        })
    };
    let mut backoff =
        crate::devices::reconnect_backoff(Duration::from_millis(500), Duration::from_secs(30));
    let mut connected = false;
    loop {
        let polled = tokio::select! {
            _ = shutdown.cancelled() => break,
            polled = eventloop.poll() => polled,
        };
        match polled {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                connected = true;
                tracing::info!(host = %broker.host, port = broker.port, topics = topics.len(), "photo topics subscribed");
                for t in &topics {
                    if let Err(e) = client.try_subscribe(t.topic.clone(), QoS::AtLeastOnce) {
                        tracing::warn!(topic = %t.topic, error = %e, "cannot subscribe photo topic");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let Some(t) = topics.iter().find(|t| t.topic == p.topic) else {
                    continue;
                };
                if tx
                    .send((t.station.clone(), p.payload.to_vec()))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                if connected {
                    connected = false;
                    tracing::warn!(host = %broker.host, port = broker.port, error = %e, "photo topics: local broker connection lost (a photo over vision.max_file_mb also ends the connection)");
                } else {
                    tracing::debug!(error = %e, "photo topics: local broker unreachable");
                }
                let delay = backoff.next_delay(rand::random());
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    let _ = client.try_disconnect();
    // Photos already taken off the broker are still checked and recorded.
    drop(tx);
    if let Err(e) = checker.await {
        tracing::error!(error = %e, "photo checker task failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<VisionSettings, Vec<String>> {
        let table: toml::Table = text.parse().unwrap();
        let mut problems = Problems::default();
        let raw: RawVision = crate::config::section(&table, "vision", &mut problems);
        let v = validate(raw, Path::new("/etc/hub"), &mut problems);
        if problems.is_empty() {
            Ok(v)
        } else {
            Err(problems.list().iter().map(|p| p.to_string()).collect())
        }
    }

    #[test]
    fn full_section_validates() {
        let v = parse(
            r#"[vision]
enabled = true
backend = "tract"
on_load_failure = "refuse"
model_manifest = "models/m.toml"
spool_dir = "/var/spool/hub/photos"
spool_station = "dock-1"
[[vision.rules]]
sku = "ORANGE-5KG"
expected = [950, "lemon"]
min_probability = 0.3
"#,
        )
        .unwrap();
        assert!(v.enabled);
        assert_eq!(v.backend.backend, BackendKind::Tract);
        assert_eq!(v.backend.on_load_failure, OnLoadFailure::Refuse);
        assert_eq!(
            v.model_manifest,
            Some(PathBuf::from("/etc/hub/models/m.toml"))
        );
        let rule = v.rule_for("ORANGE-5KG").unwrap();
        assert_eq!(
            rule.expected,
            vec![ExpectedLabel::Id(950), ExpectedLabel::Name("lemon".into())]
        );
        assert_eq!(rule.top_k, 5);
        assert!(!rule.allow_model_reject);
        assert_eq!(v.spool.unwrap().station, "dock-1");
    }

    #[test]
    fn photo_topics_are_exact_topics_one_per_station() {
        let v = parse(
            r#"[vision]
[[vision.photo_topics]]
station = "dock-1"
topic = "hub/v1/s1/local/cameras/dock-1/photo"
[[vision.photo_topics]]
station = "dock-2"
topic = "hub/v1/s1/local/cameras/dock-2/photo"
"#,
        )
        .unwrap();
        assert_eq!(
            v.photo_topics,
            vec![
                PhotoTopic {
                    station: "dock-1".into(),
                    topic: "hub/v1/s1/local/cameras/dock-1/photo".into()
                },
                PhotoTopic {
                    station: "dock-2".into(),
                    topic: "hub/v1/s1/local/cameras/dock-2/photo".into()
                },
            ]
        );
        let problems = parse(
            r#"[vision]
[[vision.photo_topics]]
station = ""
topic = "cams/+/photo"
[[vision.photo_topics]]
station = "a"
topic = "cams/a"
[[vision.photo_topics]]
station = "b"
topic = "cams/a"
"#,
        )
        .unwrap_err();
        let text = problems.join("\n");
        assert!(
            text.contains("vision.photo_topics[0].station: is empty"),
            "{text}"
        );
        assert!(
            text.contains("vision.photo_topics[0].topic: 'cams/+/photo' is not a topic"),
            "{text}"
        );
        assert!(
            text.contains("vision.photo_topics[2].topic: 'cams/a' is already used"),
            "{text}"
        );
        assert_eq!(problems.len(), 3, "{text}");
    }

    #[test]
    fn problems_carry_key_paths() {
        let problems = parse(
            r#"[vision]
backend = "cuda"
on_load_failure = "panic"
spool_dir = "x"
[[vision.rules]]
sku = "A"
expected = []
min_probability = 2.0
"#,
        )
        .unwrap_err();
        let text = problems.join("\n");
        for path in [
            "vision.backend",
            "vision.on_load_failure",
            "vision.spool_station",
            "vision.rules[0].min_probability",
            "vision.rules[0].expected",
        ] {
            assert!(text.contains(path), "{path} missing in:\n{text}");
        }
        let unknown = parse("[vision]\nbackend_name = \"tract\"\n").unwrap_err();
        assert!(unknown[0].starts_with("vision:"), "{unknown:?}");
    }

    #[test]
    fn evidence_maps_onto_the_receiving_record() {
        let e = Evidence {
            sku: "ORANGE-5KG".into(),
            outcome: Outcome::Pass,
            reasons: vec!["ok".into()],
            photo_sha256: "ab".into(),
            photo_path: Some(PathBuf::from("/d/evidence/ab.jpg")),
            photo_format: PhotoFormat::Jpeg,
            photo_size: (10, 10),
            exif_orientation: 1,
            dct_scale_denominator: 1,
            pixel_decoder: hub_vision::PixelDecoder::LibjpegTurbo,
            model_name: "m".into(),
            model_sha256: "cd".into(),
            backend: BackendKind::OnnxRuntime,
            backend_version: Some("1.31.1".into()),
            top_k: vec![hub_vision::Prediction {
                class_id: 950,
                label: "orange".into(),
                probability: 0.9,
            }],
            expected_probability: 0.9,
            thresholds: hub_vision::Thresholds {
                expected: vec![ExpectedLabel::Id(950)],
                top_k: 5,
                min_probability: 0.2,
                allow_model_reject: false,
            },
            timings: hub_vision::Timings {
                hash_ms: 0.1,
                decode_ms: 1.0,
                preprocess_ms: 1.0,
                infer_ms: 1.0,
                total_ms: 3.1,
            },
        };
        let p = to_photo_evidence(&e);
        assert_eq!(p.verdict, PhotoVerdict::Pass);
        assert_eq!(p.backend, "onnxruntime 1.31.1");
        assert_eq!(p.photo_path.as_deref(), Some("/d/evidence/ab.jpg"));
        assert_eq!(p.expected_labels, vec!["950".to_owned()]);
        assert_eq!(p.top_k[0].class_id, 950);
    }
}

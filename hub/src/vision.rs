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

pub use crate::config::vision::{PhotoTopic, SpoolSource, VisionSettings};
use crate::devices::local_broker::{self, LocalHandler};
use crate::store::Store;
use crate::store::deliveries::{ReceivingError, Selected};
use hub_core::Timestamp;
use hub_core::receiving::{LabelScore, PhotoEvidence, PhotoVerdict};
use hub_vision::{
    ActiveBackend, BackendSettings, Evidence, ExpectedLabel, ModelOptions, Outcome, PhotoFormat,
    VisionConfig, VisionError, VisionHandle, VisionWorker,
};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// Environment variable that overrides `vision.backend` (`onnxruntime` or `tract`).
pub const BACKEND_ENV: &str = "HUB_VISION_BACKEND";

/// The manifest of the model shipped with the hub, relative to the models folder.
pub const DEFAULT_MANIFEST: &str = "efficientnet-lite0.toml";

/// Where the `.deb` installs the shipped models.
pub const INSTALLED_MODELS_DIR: &str = "/usr/share/hub/models";

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
        out.backend = crate::config::vision::parse_backend(value.trim())
            .map_err(|_| VisionStartError::BadEnv { value })?;
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

/// The daemon's inference thread runs this many nice steps below the daemon: a photo check
/// takes what the scans and handovers leave of the box's cores, so a clerk's scan is answered
/// at once even while a 12 MP photo is checked (`hub bench stations` measures it with a core kept busy).
pub const INFERENCE_NICE: i32 = 10;

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
    config.nice = Some(INFERENCE_NICE);
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

/// Where photos go: the store, the model, the evidence folder and the site. Cheap to clone.
#[derive(Clone)]
pub struct PhotoDesk {
    pub store: Store,
    pub vision: std::sync::Arc<VisionService>,
    /// The data folder (photos are kept under its evidence folder).
    pub data_dir: PathBuf,
    pub site: crate::workflows::Site,
}

impl PhotoDesk {
    /// Stops the model once this is the last desk holding it (queued checks finish first).
    pub fn stop(self) {
        if let Ok(vision) = std::sync::Arc::try_unwrap(self.vision) {
            vision.stop();
        }
    }
}

/// The station app's photo uploads go through the same desk as the bench camera's photos.
impl crate::station_app::PhotoCheck for PhotoDesk {
    fn check(
        &self,
        station: String,
        bytes: Vec<u8>,
        now: Timestamp,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = crate::station_app::PhotoAnswer> + Send + '_>,
    > {
        use crate::station_app::PhotoAnswer;
        Box::pin(async move {
            match photo_for_station(self, &station, bytes, now).await {
                Ok(r) => PhotoAnswer::Checked {
                    verdict: r.evidence.verdict,
                },
                Err(PhotoError::Receiving(e)) => PhotoAnswer::Refused(e),
                Err(PhotoError::Vision { source, .. }) => {
                    tracing::warn!(station, error = %source, "photo refused");
                    match &source {
                        VisionError::UnsupportedFormat { .. } => {
                            PhotoAnswer::BadPhoto("receiving.upload.not_image")
                        }
                        VisionError::FileTooLarge { .. } => {
                            PhotoAnswer::BadPhoto("receiving.upload.too_large")
                        }
                        VisionError::TooLarge { .. } => {
                            PhotoAnswer::BadPhoto("receiving.upload.bomb")
                        }
                        e if e.is_bad_photo() => PhotoAnswer::BadPhoto("receiving.upload.corrupt"),
                        _ => PhotoAnswer::Failed("receiving.upload.failed"),
                    }
                }
            }
        })
    }
}

/// Runs a photo from `station` through the check for its selected line's SKU and records the
/// evidence on that line. SKUs without a rule get `NeedsReview` with the reason. A photo that
/// cannot be stored (disk full) is checked anyway, recorded without a stored copy, and raises
/// the `disk_nearly_full` alert.
pub async fn photo_for_station(
    desk: &PhotoDesk,
    station: &str,
    bytes: Vec<u8>,
    now: Timestamp,
) -> Result<PhotoRecorded, PhotoError> {
    let (store, vision, data_dir) = (&desk.store, &*desk.vision, desk.data_dir.as_path());
    desk.site
        .station(station, crate::config::StationKind::Receiving)
        .map_err(ReceivingError::from)?;
    let st = station.to_owned();
    let selected = store
        .read(move |c| crate::store::deliveries::selected_line(c, &st))
        .await?;
    // What is plainly not a photo, or too large, is refused before anything is kept.
    let bad_photo = |source: VisionError| PhotoError::Vision {
        station: station.to_owned(),
        source,
    };
    let max_file_bytes = vision.settings.limits.max_file_bytes;
    if bytes.len() as u64 > max_file_bytes {
        return Err(bad_photo(VisionError::FileTooLarge {
            bytes: bytes.len() as u64,
            max: max_file_bytes,
        }));
    }
    let Some(format) = PhotoFormat::sniff(&bytes) else {
        return Err(bad_photo(VisionError::UnsupportedFormat {
            magic: hex::encode(&bytes[..bytes.len().min(8)]),
        }));
    };
    let ext = format.extension();
    // A copy kept before (the same photo sent twice) stays whatever this check says.
    let kept_before = crate::evidence::photo_dir(data_dir)
        .join(format!("{}.{ext}", crate::evidence::sha256_hex(&bytes)))
        .exists();
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
            let checked = vision
                .handle
                .check(bytes, rule.clone(), stored_path.clone())
                .await;
            let report = match checked {
                Ok(report) => report,
                Err(source) => {
                    // A photo that cannot be decoded (a bomb, corrupt, an odd pixel format) is
                    // not evidence of anything: its copy goes.
                    if source.is_bad_photo()
                        && !kept_before
                        && let Some(path) = &stored_path
                    {
                        let _ = std::fs::remove_file(path);
                    }
                    return Err(bad_photo(source));
                }
            };
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
        crate::workflows::receiving::photo(store, &desk.site, station, evidence.clone(), now)
            .await?;
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
        .write(move |c| crate::store::alert_book::raise(c, &alert, now))
        .await
    {
        tracing::error!(error = %e, "cannot record the disk space alert");
    }
}

/// Watches the spool folder until `shutdown`: each settled photo goes to
/// [`photo_for_station`]; recorded photos move to `done/`, the others to `rejected/` with the
/// reason next to them.
pub async fn spool_task(
    desk: PhotoDesk,
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
        let (desk, station) = (desk.clone(), station.clone());
        async move {
            let now = crate::clock::now();
            match photo_for_station(&desk, &station, file.bytes, now).await {
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
    desk: PhotoDesk,
    broker: crate::config::devices::BrokerConfig,
    topics: Vec<PhotoTopic>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let max_photo =
        usize::try_from(desk.vision.settings.limits.max_file_bytes).unwrap_or(usize::MAX);
    // Photos waiting for their check; when full, the poller waits and the broker holds the rest.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, Vec<u8>)>(4);
    let checker = {
        let desk = desk.clone();
        tokio::spawn(async move {
            while let Some((station, bytes)) = rx.recv().await {
                let size = bytes.len();
                let now = crate::clock::now();
                match photo_for_station(&desk, &station, bytes, now).await {
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
    let subscription = local_broker::Subscription {
        client_id: format!("{}-photos", broker.client_id),
        topics: topics.iter().map(|t| t.topic.clone()).collect(),
        max_incoming_bytes: max_photo.saturating_add(1024),
        queue: 16,
    };
    let mut traffic = PhotoTraffic {
        topics,
        checks: tx,
        connected: false,
    };
    local_broker::run(&broker, subscription, &mut traffic, &shutdown).await;
    // Photos already taken off the broker are still checked and recorded.
    drop(traffic);
    if let Err(e) = checker.await {
        tracing::error!(error = %e, "photo checker task failed");
    }
}

/// The camera's side of the local broker: each photo goes to its station's check, in arrival
/// order.
struct PhotoTraffic {
    topics: Vec<PhotoTopic>,
    checks: tokio::sync::mpsc::Sender<(String, Vec<u8>)>,
    connected: bool,
}

impl LocalHandler for PhotoTraffic {
    async fn connected(&mut self) -> ControlFlow<()> {
        self.connected = true;
        tracing::info!(topics = self.topics.len(), "photo topics subscribed");
        ControlFlow::Continue(())
    }

    async fn message(&mut self, topic: &str, payload: &[u8]) -> ControlFlow<()> {
        let Some(t) = self.topics.iter().find(|t| t.topic == topic) else {
            return ControlFlow::Continue(());
        };
        match self
            .checks
            .send((t.station.clone(), payload.to_vec()))
            .await
        {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    }

    async fn lost(&mut self, reason: &str) -> ControlFlow<()> {
        if std::mem::take(&mut self.connected) {
            tracing::warn!(%reason, "photo topics: local broker connection lost (a photo over vision.max_file_mb also ends the connection)");
        } else {
            tracing::debug!(%reason, "photo topics: local broker unreachable");
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            backend: hub_vision::BackendKind::OnnxRuntime,
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

//! The vision actor: one OS thread owns the model and runs checks from a bounded queue; callers
//! hold a cloneable `VisionHandle` and await (or block on) the reply.
//!
//! Inference and decoding are CPU-bound and must never run on tokio worker threads. The queue is
//! bounded so a burst of photos applies back-pressure instead of growing memory; `try_check`
//! reports a full queue instead of waiting. The thread stops when the last handle is dropped.
//! This module must not decide policy (that is `acceptance`) or store files.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::acceptance::SkuRule;
use crate::backend::BackendKind;
use crate::classifier::{CheckReport, Classifier};
use crate::error::VisionError;
use crate::model::ModelOptions;
use crate::preprocess::DecodeLimits;

/// What the vision adapter needs to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisionConfig {
    /// Model manifest, e.g. `models/efficientnet-lite0.toml`.
    pub manifest_path: PathBuf,
    /// Session options (intra-op threads).
    #[serde(default)]
    pub model: ModelOptions,
    /// Photo limits.
    #[serde(default)]
    pub limits: DecodeLimits,
    /// Photos that may wait for the inference thread (default 8).
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// How many nice steps the inference thread runs below its caller (Linux), when set: a
    /// daemon runs photo checks below the work a clerk waits for (scans, handovers), so a check
    /// never delays a scan's answer on a box with few cores. `None` (the default, and
    /// benchmarks): the caller's priority.
    #[serde(default)]
    pub nice: Option<i32>,
}

fn default_queue_capacity() -> usize {
    8
}

impl VisionConfig {
    /// Defaults for a manifest path.
    pub fn new(manifest_path: impl Into<PathBuf>) -> Self {
        Self {
            manifest_path: manifest_path.into(),
            model: ModelOptions::default(),
            limits: DecodeLimits::default(),
            queue_capacity: default_queue_capacity(),
            nice: None,
        }
    }
}

/// Facts about the loaded model, for status pages and logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelInfo {
    /// Model name.
    pub name: String,
    /// Model file sha256.
    pub sha256: String,
    /// Backend running it.
    pub backend: BackendKind,
    /// Backend version (ONNX Runtime only).
    pub backend_version: Option<String>,
}

struct Job {
    bytes: Vec<u8>,
    rule: SkuRule,
    stored_path: Option<PathBuf>,
    reply: oneshot::Sender<Result<CheckReport, VisionError>>,
}

/// Cloneable handle to the inference thread.
#[derive(Clone)]
pub struct VisionHandle {
    tx: mpsc::Sender<Job>,
    capacity: usize,
    info: Arc<ModelInfo>,
}

impl std::fmt::Debug for VisionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VisionHandle")
            .field("model", &self.info)
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// The inference thread; join it after dropping every handle to wait for queued checks.
#[derive(Debug)]
pub struct VisionWorker {
    thread: JoinHandle<()>,
}

impl VisionWorker {
    /// Waits for the thread to finish (it finishes once every handle is dropped and the queue is
    /// drained).
    pub fn join(self) -> Result<(), VisionError> {
        self.thread.join().map_err(|_| VisionError::WorkerGone)
    }
}

/// Lowers the calling thread `nice` steps below the priority it has (Linux: nice is per
/// thread; at most 19), so that a daemon started at some nice value still checks photos below
/// its own work. A failure only leaves the thread at its priority; it is logged.
fn lower_this_thread(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        let me = Some(rustix::thread::gettid());
        let lowered = rustix::process::getpriority_process(me)
            .and_then(|now| rustix::process::setpriority_process(me, (now + nice).min(19)));
        if let Err(e) = lowered {
            tracing::warn!(nice, error = %e, "cannot lower the inference thread's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

impl VisionHandle {
    /// Starts the inference thread and loads the model on it. Blocks until the model is loaded
    /// and verified (up to a second or two), so call it at start-up or from `spawn_blocking`.
    /// [`crate::init_backend`] must have run.
    pub fn start(config: &VisionConfig) -> Result<(Self, VisionWorker), VisionError> {
        if config.queue_capacity == 0 {
            return Err(VisionError::InvalidSettings(
                "queue_capacity must be at least 1".into(),
            ));
        }
        let (tx, mut rx) = mpsc::channel::<Job>(config.queue_capacity);
        let (ready_tx, ready_rx) =
            std::sync::mpsc::sync_channel::<Result<ModelInfo, VisionError>>(1);
        let config_for_thread = config.clone();
        let thread = std::thread::Builder::new()
            .name("hub-vision".into())
            .spawn(move || {
                if let Some(nice) = config_for_thread.nice {
                    lower_this_thread(nice);
                }
                let mut classifier = match Classifier::load(
                    &config_for_thread.manifest_path,
                    &config_for_thread.model,
                    config_for_thread.limits,
                ) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let model = classifier.model();
                let _ = ready_tx.send(Ok(ModelInfo {
                    name: model.manifest().name.clone(),
                    sha256: model.sha256().to_owned(),
                    backend: model.backend(),
                    backend_version: model.backend_version().map(str::to_owned),
                }));
                while let Some(job) = rx.blocking_recv() {
                    let result = classifier.check_bytes(&job.bytes, &job.rule, job.stored_path);
                    if let Err(e) = &result {
                        tracing::debug!(sku = %job.rule.sku, error = %e, "vision check failed");
                    }
                    // The caller may have gone away; nothing to do then.
                    let _ = job.reply.send(result);
                }
                tracing::debug!("vision inference thread stopping: all handles dropped");
            })
            .map_err(|e| {
                VisionError::io("spawn the inference thread for", &config.manifest_path, e)
            })?;
        let info = match ready_rx.recv() {
            Ok(Ok(info)) => info,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(VisionError::WorkerGone);
            }
        };
        Ok((
            Self {
                tx,
                capacity: config.queue_capacity,
                info: Arc::new(info),
            },
            VisionWorker { thread },
        ))
    }

    /// The loaded model.
    pub fn model_info(&self) -> &ModelInfo {
        &self.info
    }

    /// Checks a photo, waiting for queue space if needed. `stored_path` is recorded in the
    /// evidence.
    pub async fn check(
        &self,
        bytes: Vec<u8>,
        rule: SkuRule,
        stored_path: Option<PathBuf>,
    ) -> Result<CheckReport, VisionError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job {
                bytes,
                rule,
                stored_path,
                reply,
            })
            .await
            .map_err(|_| VisionError::WorkerGone)?;
        rx.await.map_err(|_| VisionError::WorkerGone)?
    }

    /// Checks a photo given as a slice (e.g. an MQTT payload); copies it once.
    pub async fn check_bytes(
        &self,
        bytes: &[u8],
        rule: &SkuRule,
    ) -> Result<CheckReport, VisionError> {
        self.check(bytes.to_vec(), rule.clone(), None).await
    }

    /// Like [`VisionHandle::check`] but fails with [`VisionError::QueueFull`] instead of waiting
    /// for queue space.
    pub async fn try_check(
        &self,
        bytes: Vec<u8>,
        rule: SkuRule,
        stored_path: Option<PathBuf>,
    ) -> Result<CheckReport, VisionError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .try_send(Job {
                bytes,
                rule,
                stored_path,
                reply,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => VisionError::QueueFull {
                    capacity: self.capacity,
                },
                mpsc::error::TrySendError::Closed(_) => VisionError::WorkerGone,
            })?;
        rx.await.map_err(|_| VisionError::WorkerGone)?
    }

    /// Blocking variant for threads outside the async runtime. Must not be called from an async
    /// context (it would block a runtime worker; tokio panics on that).
    pub fn check_blocking(
        &self,
        bytes: Vec<u8>,
        rule: SkuRule,
        stored_path: Option<PathBuf>,
    ) -> Result<CheckReport, VisionError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .blocking_send(Job {
                bytes,
                rule,
                stored_path,
                reply,
            })
            .map_err(|_| VisionError::WorkerGone)?;
        rx.blocking_recv().map_err(|_| VisionError::WorkerGone)?
    }
}

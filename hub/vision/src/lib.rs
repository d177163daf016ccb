//! The hub's vision adapter: checks a delivery photo against the SKU's acceptance rule with an
//! ONNX image classifier and keeps the evidence.
//!
//! Start-up order for the hub binary:
//! 1. [`init_backend`] once, before anything else touches `ort` (ONNX Runtime loaded at run time,
//!    or tract; a missing library is a start-up error, never a later panic);
//! 2. [`VisionHandle::start`] with a [`VisionConfig`] (loads and verifies the model on its own
//!    thread);
//! 3. [`VisionHandle::check`] / [`VisionHandle::check_blocking`] per photo, with a [`SkuRule`];
//!    photos come from MQTT payloads or from [`watch_spool`]; the hub keeps the bytes.
//!
//! Invariants: inference never runs on an async runtime thread; the model alone never rejects
//! stock unless the rule allows it; nothing here reads files outside the paths it is given.

pub mod acceptance;
pub mod backend;
pub mod bench;
pub mod classifier;
pub mod error;
pub mod evidence;
pub mod exif;
pub mod handle;
mod jpeg_dc;
pub mod manifest;
pub mod model;
pub mod preprocess;
pub mod spool;
mod turbo;

pub use acceptance::{ExpectedLabel, Outcome, Prediction, SkuRule, Verdict, evaluate};
pub use backend::{
    ActiveBackend, BackendKind, BackendSettings, OnLoadFailure, active_backend, init_backend,
};
pub use bench::{
    TractChildCommand, VisionBenchOptions, VisionBenchReport, run_tract_infer_child,
    run_vision_bench,
};
pub use classifier::{CheckReport, Classifier};
pub use error::VisionError;
pub use evidence::{Evidence, Thresholds, Timings};
pub use handle::{ModelInfo, VisionConfig, VisionHandle, VisionWorker};
pub use manifest::ModelManifest;
pub use model::{Model, ModelOptions, sha256_hex};
pub use preprocess::{DecodeLimits, PhotoFormat, PixelDecoder};
pub use spool::{SpoolConfig, SpoolDisposition, SpoolFile, SpoolOutcome, watch_spool};

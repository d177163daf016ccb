//! One synchronous acceptance check: photo bytes + SKU rule → verdict and evidence.
//!
//! `Classifier` glues the pre-processor, the model and the acceptance rules together. It is
//! single-threaded and blocking; the hub reaches it through `VisionHandle` (the actor), the
//! benchmark and tests use it directly. It must not store files or talk to the network.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::acceptance::{self, SkuRule, Verdict};
use crate::error::VisionError;
use crate::evidence::{Evidence, Thresholds, Timings};
use crate::model::{Model, ModelOptions, sha256_hex};
use crate::preprocess::{DecodeLimits, Prepared, Preprocessor};

/// How many classes are recorded in evidence at least (more when a rule's top_k is larger).
pub const EVIDENCE_TOP_K: usize = 5;

/// Verdict plus evidence for one photo.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    /// Outcome and reasons.
    pub verdict: Verdict,
    /// The record to keep.
    pub evidence: Evidence,
}

/// Pre-processor and model for one thread.
#[derive(Debug)]
pub struct Classifier {
    model: Model,
    preprocessor: Preprocessor,
}

impl Classifier {
    /// Loads and verifies the model of `manifest_path` (see [`Model::load`]).
    pub fn load(
        manifest_path: &Path,
        options: &ModelOptions,
        limits: DecodeLimits,
    ) -> Result<Self, VisionError> {
        Ok(Self::new(Model::load(manifest_path, options)?, limits))
    }

    /// Wraps an already loaded model.
    pub fn new(model: Model, limits: DecodeLimits) -> Self {
        let preprocessor = Preprocessor::new(&model.manifest().input, limits);
        Self {
            model,
            preprocessor,
        }
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model, mutably (for inference-only measurements).
    pub fn model_mut(&mut self) -> &mut Model {
        &mut self.model
    }

    /// Lets photos read at 1/8 scale go to the DC-only JPEG reader (the default), or sends
    /// every JPEG to libjpeg-turbo; see [`Preprocessor::set_dc_reader`].
    pub fn set_dc_reader(&mut self, enabled: bool) {
        self.preprocessor.set_dc_reader(enabled);
    }

    /// Decodes and prepares a photo without running the model.
    pub fn prepare(&mut self, bytes: &[u8]) -> Result<Prepared, VisionError> {
        self.preprocessor.prepare(bytes)
    }

    /// Full check of one photo against one rule. `stored_path` is recorded in the evidence when
    /// the caller has stored the photo .
    pub fn check_bytes(
        &mut self,
        bytes: &[u8],
        rule: &SkuRule,
        stored_path: Option<PathBuf>,
    ) -> Result<CheckReport, VisionError> {
        rule.validate()?;
        let started = Instant::now();
        // The evidence's SHA-256 is worked out beside the decode (a photo of 12 MP takes about
        // 1.3 ms to hash): it needs only the bytes, and the decode does not need it, so on a box
        // with a free core the photo's answer does not wait for it. The decode itself and the
        // inference stay on this thread.
        let hash = || {
            let at = Instant::now();
            (sha256_hex(bytes), at.elapsed().as_secs_f64() * 1000.0)
        };
        let (hashed, prepared) = std::thread::scope(|scope| {
            // No thread to be had (the system is out of them): hash here, after the decode.
            let hashing = std::thread::Builder::new().spawn_scoped(scope, hash).ok();
            let prepared = self.preprocessor.prepare(bytes);
            let hashed = hashing.and_then(|h| h.join().ok()).unwrap_or_else(hash);
            (hashed, prepared)
        });
        let (photo_sha256, hash_ms) = hashed;
        let prepared = prepared?;
        let (probabilities, infer_ms) = self.model.infer(&prepared.tensor)?;
        let predictions = acceptance::top_k(
            &probabilities,
            self.model.labels(),
            rule.top_k.max(EVIDENCE_TOP_K),
        );
        let verdict = acceptance::evaluate(rule, &predictions);
        let total_ms = started.elapsed().as_secs_f64() * 1000.0;
        let evidence = Evidence {
            sku: rule.sku.clone(),
            outcome: verdict.outcome,
            reasons: verdict.reasons.clone(),
            photo_sha256,
            photo_path: stored_path,
            photo_format: prepared.info.format,
            photo_size: (prepared.info.width, prepared.info.height),
            exif_orientation: prepared.info.orientation.exif_value(),
            dct_scale_denominator: prepared.info.dct_scale_denominator,
            pixel_decoder: prepared.info.pixel_decoder,
            model_name: self.model.manifest().name.clone(),
            model_sha256: self.model.sha256().to_owned(),
            backend: self.model.backend(),
            backend_version: self.model.backend_version().map(str::to_owned),
            top_k: predictions,
            expected_probability: verdict.expected_probability,
            thresholds: Thresholds {
                expected: rule.expected.clone(),
                top_k: rule.top_k,
                min_probability: rule.min_probability,
                allow_model_reject: rule.allow_model_reject,
            },
            timings: Timings {
                hash_ms,
                decode_ms: prepared.decode_ms,
                preprocess_ms: prepared.preprocess_ms,
                infer_ms,
                total_ms,
            },
        };
        Ok(CheckReport { verdict, evidence })
    }

    /// Reads a photo file and checks it.
    pub fn check_file(&mut self, path: &Path, rule: &SkuRule) -> Result<CheckReport, VisionError> {
        let bytes = std::fs::read(path).map_err(|source| VisionError::PhotoRead {
            path: path.to_path_buf(),
            source,
        })?;
        self.check_bytes(&bytes, rule, Some(path.to_path_buf()))
    }
}

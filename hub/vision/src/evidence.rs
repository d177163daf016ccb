//! The evidence record kept for every acceptance check. Storing the photo is the hub's job
//! (one photo store, `hub::evidence`); the record names where the caller stored it.
//!
//! Disputes are settled from this record: which photo (sha256 and where it is stored), which
//! model (name, sha256, backend), what the model said (top-k with probabilities), which rule and
//! thresholds applied, the outcome and reasons, and how long each stage took. The record holds no
//! timestamp: the hub stamps the decision when it stores it. This module must not judge or infer.

use std::path::PathBuf;

use serde::Serialize;

use crate::acceptance::{ExpectedLabel, Outcome, Prediction};
use crate::backend::BackendKind;
use crate::exif::Orientation;
use crate::preprocess::{PhotoFormat, PixelDecoder};

/// Thresholds the verdict was reached with (a copy of the SKU rule).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Thresholds {
    /// Expected classes.
    pub expected: Vec<ExpectedLabel>,
    /// How many top classes were considered.
    pub top_k: usize,
    /// Minimum combined probability.
    pub min_probability: f32,
    /// Whether the model alone could reject.
    pub allow_model_reject: bool,
}

/// Time spent per stage, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Timings {
    /// Hashing the photo bytes.
    pub hash_ms: f64,
    /// Decoding the photo.
    pub decode_ms: f64,
    /// Resize, orientation, normalisation.
    pub preprocess_ms: f64,
    /// Model inference.
    pub infer_ms: f64,
    /// Whole check.
    pub total_ms: f64,
}

/// Everything that backs one acceptance decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// The SKU checked.
    pub sku: String,
    /// The verdict.
    pub outcome: Outcome,
    /// Why.
    pub reasons: Vec<String>,
    /// sha256 of the photo bytes as received.
    pub photo_sha256: String,
    /// Where the caller stored the photo, if it did.
    pub photo_path: Option<PathBuf>,
    /// Encoded format.
    pub photo_format: PhotoFormat,
    /// Stored width and height of the photo, pixels.
    pub photo_size: (u32, u32),
    /// EXIF orientation value applied (1 = none).
    pub exif_orientation: u8,
    /// JPEG DCT scale denominator used when decoding.
    pub dct_scale_denominator: u8,
    /// Which decoder produced the pixels.
    pub pixel_decoder: PixelDecoder,
    /// Model name from the manifest.
    pub model_name: String,
    /// sha256 of the model file.
    pub model_sha256: String,
    /// Backend that ran it.
    pub backend: BackendKind,
    /// Backend library version, when known.
    pub backend_version: Option<String>,
    /// The model's best classes, best first.
    pub top_k: Vec<Prediction>,
    /// Combined probability of the expected classes within the top-k.
    pub expected_probability: f32,
    /// Thresholds used.
    pub thresholds: Thresholds,
    /// Stage timings.
    pub timings: Timings,
}

impl Evidence {
    /// Helper for callers that need the orientation as an enum.
    pub fn orientation(&self) -> Orientation {
        Orientation::from_exif(u16::from(self.exif_orientation))
    }
}

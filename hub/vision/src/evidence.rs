//! The evidence record kept for every acceptance check, and a helper that stores the photo
//! durably under its content hash.
//!
//! Disputes are settled from this record: which photo (sha256 and where it is stored), which
//! model (name, sha256, backend), what the model said (top-k with probabilities), which rule and
//! thresholds applied, the outcome and reasons, and how long each stage took. The record holds no
//! timestamp: the hub stamps the decision when it stores it. This module must not judge or infer.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::acceptance::{ExpectedLabel, Outcome, Prediction};
use crate::backend::BackendKind;
use crate::error::VisionError;
use crate::exif::Orientation;
use crate::model::sha256_hex;
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
    /// Where the caller stored the photo, if it did (see [`store_photo`]).
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

/// Where a photo was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredPhoto {
    /// sha256 of the bytes.
    pub sha256: String,
    /// The file, `<dir>/<sha256>.<jpg|png>`.
    pub path: PathBuf,
}

/// Stores `bytes` in `dir` as `<sha256>.jpg` (or `.png` for PNG photos), durably: written to a
/// temporary file, fsynced, renamed, and the folder fsynced. A photo already stored under its hash
/// is not written again. Creates `dir` if needed.
pub fn store_photo(dir: &Path, bytes: &[u8]) -> Result<StoredPhoto, VisionError> {
    let sha256 = sha256_hex(bytes);
    let ext = PhotoFormat::sniff(bytes).map_or("jpg", PhotoFormat::extension);
    let path = dir.join(format!("{sha256}.{ext}"));
    std::fs::create_dir_all(dir).map_err(|e| VisionError::io("create evidence folder", dir, e))?;
    if let Ok(existing) = std::fs::read(&path)
        && sha256_hex(&existing) == sha256
    {
        return Ok(StoredPhoto { sha256, path });
    }
    let tmp = dir.join(format!(".{sha256}.{ext}.tmp"));
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| VisionError::io("create", &tmp, e))?;
        file.write_all(bytes)
            .map_err(|e| VisionError::io("write", &tmp, e))?;
        file.sync_all()
            .map_err(|e| VisionError::io("fsync", &tmp, e))?;
    }
    std::fs::rename(&tmp, &path).map_err(|e| VisionError::io("rename into place", &path, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| VisionError::io("fsync folder", dir, e))?;
    Ok(StoredPhoto { sha256, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_by_hash_idempotently() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3];
        let a = store_photo(&dir.path().join("evidence"), &bytes).unwrap();
        assert_eq!(
            a.path.file_name().unwrap().to_str().unwrap(),
            format!("{}.jpg", a.sha256)
        );
        assert_eq!(std::fs::read(&a.path).unwrap(), bytes);
        let b = store_photo(&dir.path().join("evidence"), &bytes).unwrap();
        assert_eq!(a, b);
        let png = store_photo(dir.path(), b"\x89PNG\r\n\x1a\nxx").unwrap();
        assert!(png.path.extension().unwrap() == "png");
    }
}

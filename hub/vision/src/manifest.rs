//! The model manifest: what the hub expects of a model file (hash, input tensor, normalisation,
//! output tensor, labels), read from a TOML file next to the model.
//!
//! This module only parses and validates the manifest on its own terms; comparing it with a real
//! session is done in `model`. It must not touch the inference runtime.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::VisionError;

/// A model manifest, e.g. `models/efficientnet-lite0.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    /// Short model name recorded in evidence.
    pub name: String,
    /// ONNX file, relative to the manifest.
    pub file: PathBuf,
    /// Lower-case hex sha256 of the ONNX file.
    pub sha256: String,
    /// Labels file (one label per line, line n = class n), relative to the manifest.
    pub labels: PathBuf,
    /// The single input tensor.
    pub input: InputSpec,
    /// The output tensor holding class scores.
    pub output: OutputSpec,
}

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElementType {
    /// 32-bit float; the only type the pipeline feeds or reads today.
    F32,
}

/// Memory layout of the image tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// Batch, channel, height, width.
    #[serde(rename = "NCHW")]
    Nchw,
    /// Batch, height, width, channel.
    #[serde(rename = "NHWC")]
    Nhwc,
}

/// Channel order the model was trained with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColourOrder {
    /// Red, green, blue.
    #[serde(rename = "RGB")]
    Rgb,
    /// Blue, green, red (OpenCV-trained models).
    #[serde(rename = "BGR")]
    Bgr,
}

/// The model's image input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Tensor name.
    pub name: String,
    /// Element type.
    pub element_type: ElementType,
    /// Full shape including batch, e.g. `[1, 3, 224, 224]`.
    pub shape: Vec<i64>,
    /// Layout of `shape`.
    pub layout: Layout,
    /// Channel order.
    pub colour_order: ColourOrder,
    /// Per-channel mean (in `colour_order`) subtracted after scaling pixels to 0..1.
    pub mean: [f32; 3],
    /// Per-channel standard deviation the result is divided by.
    pub std: [f32; 3],
}

/// What the output scores are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// Raw scores; softmax is applied to get probabilities.
    Logits,
    /// Already probabilities.
    Probabilities,
}

/// The model's class-score output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Tensor name.
    pub name: String,
    /// Element type.
    pub element_type: ElementType,
    /// Full shape, e.g. `[1, 1000]`.
    pub shape: Vec<i64>,
    /// Logits or probabilities.
    pub kind: OutputKind,
}

impl InputSpec {
    /// `(width, height)` of the image the model takes.
    pub fn image_size(&self) -> (u32, u32) {
        let (h, w) = match self.layout {
            Layout::Nchw => (self.shape[2], self.shape[3]),
            Layout::Nhwc => (self.shape[1], self.shape[2]),
        };
        (w as u32, h as u32)
    }
}

impl OutputSpec {
    /// Number of classes (product of the non-batch dimensions).
    pub fn class_count(&self) -> usize {
        self.shape.iter().skip(1).product::<i64>() as usize
    }
}

impl ModelManifest {
    /// Reads and validates a manifest file. Relative paths inside it are resolved against the
    /// manifest's folder; see [`ModelManifest::model_path`].
    pub fn from_file(path: &Path) -> Result<(Self, PathBuf), VisionError> {
        let text = std::fs::read_to_string(path).map_err(|e| VisionError::Manifest {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let manifest = Self::from_toml(&text).map_err(|reason| VisionError::Manifest {
            path: path.to_path_buf(),
            reason,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok((manifest, base))
    }

    /// Parses and validates manifest text. Returns every problem found, joined.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let manifest: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks the manifest on its own: shapes, hash format, normalisation.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            problems.push(format!("sha256 '{}' is not 64 hex digits", self.sha256));
        }
        if self.input.shape.len() != 4 || self.input.shape.iter().any(|&d| d <= 0) {
            problems.push(format!(
                "input.shape {:?} must have 4 positive dimensions",
                self.input.shape
            ));
        } else {
            let channels = match self.input.layout {
                Layout::Nchw => self.input.shape[1],
                Layout::Nhwc => self.input.shape[3],
            };
            if channels != 3 {
                problems.push(format!(
                    "input has {channels} channels; only 3 (colour) is supported"
                ));
            }
            if self.input.shape[0] != 1 {
                problems.push(format!(
                    "input batch is {}; only 1 is supported",
                    self.input.shape[0]
                ));
            }
        }
        if self.input.std.iter().any(|&s| !(s.is_finite() && s > 0.0)) {
            problems.push(format!("input.std {:?} must be positive", self.input.std));
        }
        if self.input.mean.iter().any(|m| !m.is_finite()) {
            problems.push(format!("input.mean {:?} must be finite", self.input.mean));
        }
        if self.output.shape.is_empty() || self.output.shape.iter().any(|&d| d <= 0) {
            problems.push(format!(
                "output.shape {:?} must have positive dimensions",
                self.output.shape
            ));
        } else if self.output.shape.len() < 2 || self.output.shape[0] != 1 {
            problems.push(format!(
                "output.shape {:?} must be [1, classes]",
                self.output.shape
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// The model file, resolved against `base` (the manifest's folder).
    pub fn model_path(&self, base: &Path) -> PathBuf {
        base.join(&self.file)
    }

    /// The labels file, resolved against `base`.
    pub fn labels_path(&self, base: &Path) -> PathBuf {
        base.join(&self.labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../../models/efficientnet-lite0.toml");

    #[test]
    fn shipped_manifest_parses() {
        let m = ModelManifest::from_toml(SHIPPED).unwrap();
        assert_eq!(m.input.image_size(), (224, 224));
        assert_eq!(m.output.class_count(), 1000);
        assert_eq!(m.output.kind, OutputKind::Logits);
    }

    #[test]
    fn bad_values_are_all_reported() {
        let text = SHIPPED
            .replace("shape = [1, 3, 224, 224]", "shape = [1, 4, 224]")
            .replace("std = [0.229, 0.224, 0.225]", "std = [0.0, 0.224, 0.225]");
        let err = ModelManifest::from_toml(&text).unwrap_err();
        assert!(err.contains("input.shape"), "{err}");
        assert!(err.contains("input.std"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let text = format!("{SHIPPED}\nsurprise = 1\n");
        assert!(ModelManifest::from_toml(&text).is_err());
    }
}

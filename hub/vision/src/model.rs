//! Loading a model from its manifest and running it.
//!
//! The model bytes are read once, hashed and checked against the manifest's sha256, and the same
//! bytes in memory are handed to the runtime (no verify-by-path-then-load TOCTOU). The session's
//! real inputs and outputs are then compared with the manifest; any difference is a start-up
//! error naming it. A `Model` is owned by one thread (`Session::run` needs `&mut`); sharing goes
//! through the actor in `handle`. This module must not decode photos or judge acceptance.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{TensorElementType, TensorRef, ValueType};
use serde::{Deserialize, Serialize};

use crate::acceptance::softmax;
use crate::backend::{self, BackendKind};
use crate::error::VisionError;
use crate::manifest::{ElementType, ModelManifest, OutputKind};

/// Session options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelOptions {
    /// ONNX Runtime intra-op threads. On a 4-core board 2–3 leaves a core for the rest of the
    /// hub. Spinning is always off and inter-op threads are 1. Ignored by tract (single-threaded).
    pub intra_threads: usize,
}

impl Default for ModelOptions {
    fn default() -> Self {
        Self { intra_threads: 2 }
    }
}

/// A loaded, verified model.
pub struct Model {
    session: Session,
    manifest: ModelManifest,
    labels: Vec<String>,
    sha256: String,
    path: PathBuf,
    backend: BackendKind,
    backend_version: Option<String>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.manifest.name)
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

pub use hub_core::sha256_hex;

fn shape_text(shape: &[i64]) -> String {
    let dims: Vec<String> = shape
        .iter()
        .map(|d| {
            if *d < 0 {
                "?".to_owned()
            } else {
                d.to_string()
            }
        })
        .collect();
    format!("[{}]", dims.join(","))
}

fn element_text(ty: TensorElementType) -> String {
    match ty {
        TensorElementType::Float32 => "f32".to_owned(),
        other => format!("{other:?}"),
    }
}

impl Model {
    /// Loads the model a manifest describes: reads the manifest, the labels and the model bytes,
    /// checks the hash, creates the session and checks its signature against the manifest.
    /// [`crate::init_backend`] must have run.
    pub fn load(manifest_path: &Path, options: &ModelOptions) -> Result<Self, VisionError> {
        let (manifest, base) = ModelManifest::from_file(manifest_path)?;
        Self::load_manifest(manifest, &base, options)
    }

    /// Like [`Model::load`] with an already-parsed manifest whose relative paths resolve
    /// against `base`.
    pub fn load_manifest(
        manifest: ModelManifest,
        base: &Path,
        options: &ModelOptions,
    ) -> Result<Self, VisionError> {
        let env = backend::environment()?;
        let active = backend::active_backend().ok_or(VisionError::BackendNotInitialised)?;
        if options.intra_threads == 0 {
            return Err(VisionError::InvalidSettings(
                "intra_threads must be at least 1".into(),
            ));
        }
        let path = manifest.model_path(base);
        let bytes = std::fs::read(&path).map_err(|source| VisionError::ModelFile {
            what: "model file",
            path: path.clone(),
            source,
        })?;
        let sha256 = sha256_hex(&bytes);
        if !sha256.eq_ignore_ascii_case(&manifest.sha256) {
            return Err(VisionError::ModelHashMismatch {
                path,
                expected: manifest.sha256.clone(),
                actual: sha256,
            });
        }
        let labels_path = manifest.labels_path(base);
        let labels_text =
            std::fs::read_to_string(&labels_path).map_err(|source| VisionError::ModelFile {
                what: "labels file",
                path: labels_path.clone(),
                source,
            })?;
        let labels: Vec<String> = labels_text
            .lines()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect();

        let mut builder = Session::builder(env)
            .map_err(|e| VisionError::runtime("creating the session builder", e))?;
        if active.kind == BackendKind::OnnxRuntime {
            builder = builder
                .with_optimization_level(GraphOptimizationLevel::Level3)
                .map_err(|e| VisionError::runtime("configuring the session", e))?
                .with_intra_threads(options.intra_threads)
                .map_err(|e| VisionError::runtime("configuring the session", e))?
                .with_inter_threads(1)
                .map_err(|e| VisionError::runtime("configuring the session", e))?
                .with_parallel_execution(false)
                .map_err(|e| VisionError::runtime("configuring the session", e))?
                .with_intra_op_spinning(false)
                .map_err(|e| VisionError::runtime("configuring the session", e))?
                .with_inter_op_spinning(false)
                .map_err(|e| VisionError::runtime("configuring the session", e))?;
        }
        let session = builder
            .commit_from_memory(&bytes)
            .map_err(|e| VisionError::runtime("creating the session from the model bytes", e))?;
        drop(bytes);

        check_signature(&session, &manifest).map_err(|differences| {
            VisionError::ModelSignatureMismatch {
                path: path.clone(),
                differences,
            }
        })?;
        let classes = manifest.output.class_count();
        if labels.len() != classes {
            return Err(VisionError::LabelsMismatch {
                path: labels_path,
                expected: classes,
                found: labels.len(),
            });
        }
        tracing::info!(model = %manifest.name, path = %path.display(), backend = %active, "model loaded and verified");
        Ok(Self {
            session,
            manifest,
            labels,
            sha256,
            path,
            backend: active.kind,
            backend_version: active.version,
        })
    }

    /// The manifest the model was verified against.
    pub fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    /// Class labels, index = class id.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// sha256 of the model file.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Backend running the model.
    pub fn backend(&self) -> BackendKind {
        self.backend
    }

    /// The backend library version (ONNX Runtime only).
    pub fn backend_version(&self) -> Option<&str> {
        self.backend_version.as_deref()
    }

    /// Runs the model on a prepared tensor and returns class probabilities (softmax applied when
    /// the output is logits) and the inference time in ms.
    pub fn infer(&mut self, tensor: &[f32]) -> Result<(Vec<f32>, f64), VisionError> {
        let expected: i64 = self.manifest.input.shape.iter().product();
        if tensor.len() as i64 != expected {
            return Err(VisionError::InvalidSettings(format!(
                "input tensor has {} values but the model takes {}",
                tensor.len(),
                expected
            )));
        }
        let input = TensorRef::from_array_view((self.manifest.input.shape.clone(), tensor))
            .map_err(|e| VisionError::runtime("wrapping the input tensor", e))?;
        let started = Instant::now();
        let outputs = self
            .session
            .run(ort::inputs![self.manifest.input.name.as_str() => input])
            .map_err(|e| VisionError::runtime("running the model", e))?;
        let infer_ms = started.elapsed().as_secs_f64() * 1000.0;
        let output = outputs
            .get(self.manifest.output.name.as_str())
            .ok_or_else(|| {
                VisionError::runtime(
                    "reading the output",
                    format!("no output named '{}'", self.manifest.output.name),
                )
            })?;
        let (_, scores) = output
            .try_extract_tensor::<f32>()
            .map_err(|e| VisionError::runtime("reading the output", e))?;
        let probabilities = match self.manifest.output.kind {
            OutputKind::Logits => softmax(scores),
            OutputKind::Probabilities => scores.to_vec(),
        };
        Ok((probabilities, infer_ms))
    }
}

/// Compares the session's inputs/outputs with the manifest; returns one line per difference.
fn check_signature(session: &Session, manifest: &ModelManifest) -> Result<(), Vec<String>> {
    let mut differences = Vec::new();
    let mut check =
        |kind: &str, outlets: &[ort::value::Outlet], name: &str, ty: ElementType, shape: &[i64]| {
            let Some(outlet) = outlets.iter().find(|o| o.name() == name) else {
                let names: Vec<&str> = outlets.iter().map(|o| o.name()).collect();
                differences.push(format!(
                    "model has no {kind} named '{name}' (its {kind}s: {names:?})"
                ));
                return;
            };
            match outlet.dtype() {
                ValueType::Tensor {
                    ty: real_ty,
                    shape: real_shape,
                    ..
                } => {
                    let want_ty = match ty {
                        ElementType::F32 => TensorElementType::Float32,
                    };
                    if *real_ty != want_ty {
                        differences.push(format!(
                            "model {kind} '{name}' has element type {} but manifest says {}",
                            element_text(*real_ty),
                            element_text(want_ty)
                        ));
                    }
                    let real: Vec<i64> = real_shape.iter().copied().collect();
                    let compatible = real.len() == shape.len()
                        && real.iter().zip(shape).all(|(r, m)| *r < 0 || r == m);
                    if !compatible {
                        differences.push(format!(
                            "model {kind} '{name}' has shape {} but manifest says {}",
                            shape_text(&real),
                            shape_text(shape)
                        ));
                    }
                }
                other => {
                    differences.push(format!("model {kind} '{name}' is {other:?}, not a tensor"))
                }
            }
        };
    check(
        "input",
        session.inputs(),
        &manifest.input.name,
        manifest.input.element_type,
        &manifest.input.shape,
    );
    check(
        "output",
        session.outputs(),
        &manifest.output.name,
        manifest.output.element_type,
        &manifest.output.shape,
    );
    if session.inputs().len() != 1 {
        differences.push(format!(
            "model has {} inputs; the pipeline feeds exactly one",
            session.inputs().len()
        ));
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(differences)
    }
}

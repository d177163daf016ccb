//! The one error type of the vision adapter.
//!
//! Every variant says what failed, on what, and, where an operator can act, what to do. Callers
//! branch on the variant (a bad photo is the supplier's problem, a missing runtime is the
//! installer's); the hub binary maps them to exit codes. This module must not log: whoever
//! handles the error decides its level.

use std::path::PathBuf;

/// Errors from the vision adapter.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    /// The ONNX Runtime shared library could not be found or loaded and the settings say refuse.
    #[error(
        "cannot load the ONNX Runtime library: {reason}; tried: {tried}. \
         Run deploy/fetch-onnxruntime.sh, install libonnxruntime.so.1.31.1 into /usr/lib/hub/, \
         or set HUB_ONNXRUNTIME_LIB to its path (or set on_load_failure = fallback_to_tract)",
        tried = display_paths(tried)
    )]
    RuntimeLibrary {
        /// Every path that was tried, in order.
        tried: Vec<PathBuf>,
        /// Why the last candidate failed.
        reason: String,
    },

    /// `init_backend` was called twice with different choices, or another part of the process
    /// already set the `ort` API.
    #[error(
        "the inference backend is already set for this process ({active}); it can be chosen only once, before any model is loaded"
    )]
    BackendAlreadySet {
        /// The backend that is active.
        active: String,
    },

    /// A model was loaded before `init_backend`.
    #[error(
        "no inference backend is set; call hub_vision::init_backend at start-up before loading a model"
    )]
    BackendNotInitialised,

    /// The model manifest could not be read or parsed.
    #[error("cannot read model manifest {path}: {reason}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },

    /// A file the model needs (ONNX file, labels) could not be read.
    #[error("cannot read {what} {path}: {source}")]
    ModelFile {
        /// "model file" or "labels file".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// The model file's sha256 is not the one the manifest pins.
    #[error(
        "model file {path} has sha256 {actual} but the manifest pins {expected}; \
         the file is corrupt or was replaced: restore it or update the manifest deliberately"
    )]
    ModelHashMismatch {
        /// The model file.
        path: PathBuf,
        /// The manifest's hash.
        expected: String,
        /// The hash of the bytes read.
        actual: String,
    },

    /// The session's real inputs/outputs disagree with the manifest.
    #[error("model {path} does not match its manifest: {}", differences.join("; "))]
    ModelSignatureMismatch {
        /// The model file.
        path: PathBuf,
        /// One line per difference, e.g. "model input 'input' has shape [1,3,224,224] but manifest says [1,3,256,256]".
        differences: Vec<String>,
    },

    /// The labels file does not have one label per output class.
    #[error("labels file {path} has {found} labels but the model outputs {expected} classes")]
    LabelsMismatch {
        /// The labels file.
        path: PathBuf,
        /// Number of classes the output has.
        expected: usize,
        /// Number of non-empty lines found.
        found: usize,
    },

    /// ONNX Runtime / tract reported an error.
    #[error("inference runtime failed while {action}: {message}")]
    Runtime {
        /// What was being done ("creating the session", "running the model", ...).
        action: &'static str,
        /// The runtime's message.
        message: String,
    },

    /// The photo file could not be read.
    #[error("cannot read photo {path}: {source}")]
    PhotoRead {
        /// The photo file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// The bytes are not a JPEG or PNG.
    #[error(
        "photo is not a JPEG or PNG image (first bytes {magic}); the camera or sender must send JPEG or PNG"
    )]
    UnsupportedFormat {
        /// The first bytes, hex.
        magic: String,
    },

    /// The encoded photo is larger than the configured file limit.
    #[error(
        "photo file is {bytes} bytes, above the limit of {max} bytes; ask the camera for a smaller image"
    )]
    FileTooLarge {
        /// Size of the photo.
        bytes: u64,
        /// Configured limit.
        max: u64,
    },

    /// The photo's header claims dimensions or a decoded size above the configured limits.
    #[error(
        "photo header claims {width}x{height} pixels ({decoded_mb} MB decoded), above the limit of \
         {max_side} px per side / {max_mb} MB; refusing to decode it (possible decompression bomb)"
    )]
    TooLarge {
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
        /// Decoded size the header implies, MB.
        decoded_mb: u64,
        /// Configured per-side limit.
        max_side: u32,
        /// Configured decoded-size limit, MB.
        max_mb: u64,
    },

    /// The photo is truncated or corrupt.
    #[error("photo is corrupt or truncated ({format}): {reason}")]
    CorruptImage {
        /// "JPEG" or "PNG".
        format: &'static str,
        /// The decoder's message.
        reason: String,
    },

    /// The photo uses a pixel format the pipeline does not convert (e.g. CMYK JPEG, 16-bit grey).
    #[error("photo uses an unsupported pixel format ({detail}); send 8-bit RGB or greyscale")]
    UnsupportedPixelFormat {
        /// The format found.
        detail: String,
    },

    /// An SKU rule is not usable.
    #[error("SKU rule for '{sku}' is invalid: {reason}")]
    InvalidRule {
        /// The SKU.
        sku: String,
        /// What is wrong.
        reason: String,
    },

    /// Settings passed by the caller are inconsistent.
    #[error("invalid vision settings: {0}")]
    InvalidSettings(String),

    /// The inference thread has stopped (it panicked or was shut down).
    #[error("the vision inference thread is not running; restart the hub")]
    WorkerGone,

    /// The inference queue is full (only from `try_check`).
    #[error("the vision inference queue is full ({capacity} photos waiting); try again shortly")]
    QueueFull {
        /// The queue's capacity.
        capacity: usize,
    },

    /// Storing a photo or a spool file failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// The benchmark could not run.
    #[error("vision benchmark failed: {0}")]
    Bench(String),
}

fn display_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "(no candidate paths)".to_owned();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl VisionError {
    /// Whether the photo itself is at fault (not a JPEG or PNG, too large, a decompression bomb,
    /// corrupt, an unsupported pixel format): sending it again will not help, and it is not
    /// kept as evidence.
    pub fn is_bad_photo(&self) -> bool {
        matches!(
            self,
            VisionError::UnsupportedFormat { .. }
                | VisionError::FileTooLarge { .. }
                | VisionError::TooLarge { .. }
                | VisionError::CorruptImage { .. }
                | VisionError::UnsupportedPixelFormat { .. }
        )
    }

    pub(crate) fn runtime(action: &'static str, err: impl std::fmt::Display) -> Self {
        Self::Runtime {
            action,
            message: err.to_string(),
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

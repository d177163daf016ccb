//! Chooses the process-wide inference backend at run time: ONNX Runtime loaded from a shared
//! library, or tract compiled in.
//!
//! `ort` is built with `alternative-backend`, so nothing is linked at build time and the `OrtApi`
//! table must be installed with `ort::set_api` once, before any other `ort` call. This module is
//! the only place that does it, and (with `turbo`, the JPEG decoder's FFI) the only place with
//! `unsafe` code (loading the library and reading its API table). A missing or unusable library is reported here, at start-up, with every
//! path tried; it must never surface later as a panic inside the inference thread.
//!
//! This module must not load models or run inference.
#![allow(
    unsafe_code,
    reason = "dlopen of libonnxruntime and reading its C API table are FFI; kept to this module"
)]

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use crate::error::VisionError;

/// Environment variable that names the ONNX Runtime library explicitly.
pub const ONNXRUNTIME_LIB_ENV: &str = "HUB_ONNXRUNTIME_LIB";

/// The ONNX Runtime version the fetch script installs and this build is tested with.
pub const ONNXRUNTIME_VERSION: &str = "1.31.1";

/// Which inference engine runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// ONNX Runtime, loaded dynamically from `libonnxruntime.so`. Fast; the default.
    #[serde(rename = "onnxruntime")]
    OnnxRuntime,
    /// tract, pure Rust, always available; roughly 10–20× slower on this model.
    Tract,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::OnnxRuntime => "onnxruntime",
            Self::Tract => "tract",
        })
    }
}

/// What to do when ONNX Runtime was asked for but cannot be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnLoadFailure {
    /// Log the reason and run on tract instead.
    FallbackToTract,
    /// Fail start-up with [`VisionError::RuntimeLibrary`].
    Refuse,
}

/// Backend choice, usually read from the hub's config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSettings {
    /// The backend wanted.
    pub backend: BackendKind,
    /// Explicit path of `libonnxruntime.so`. When set, it is the only candidate; when unset, the
    /// default search applies (see [`default_library_candidates`]).
    #[serde(default)]
    pub library_path: Option<PathBuf>,
    /// What to do when ONNX Runtime cannot be loaded.
    pub on_load_failure: OnLoadFailure,
}

impl Default for BackendSettings {
    fn default() -> Self {
        Self {
            backend: BackendKind::OnnxRuntime,
            library_path: None,
            on_load_failure: OnLoadFailure::Refuse,
        }
    }
}

/// The backend this process runs on, as decided by [`init_backend`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveBackend {
    /// The backend in use.
    pub kind: BackendKind,
    /// The library loaded (ONNX Runtime only).
    pub library: Option<PathBuf>,
    /// The library's version string (ONNX Runtime only).
    pub version: Option<String>,
    /// Set when ONNX Runtime was wanted but tract runs instead: why.
    pub fallback_reason: Option<String>,
}

impl std::fmt::Display for ActiveBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(version) = &self.version {
            write!(f, " {version}")?;
        }
        if let Some(lib) = &self.library {
            write!(f, " ({})", lib.display())?;
        }
        if self.fallback_reason.is_some() {
            write!(f, " [fallback]")?;
        }
        Ok(())
    }
}

struct Installed {
    requested: BackendSettings,
    active: ActiveBackend,
    environment: ort::environment::Environment,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();
static INIT_LOCK: Mutex<()> = Mutex::new(());
/// Keeps the loaded library mapped for the life of the process: the API table points into it.
static LIBRARY: OnceLock<libloading::Library> = OnceLock::new();

/// Sets the process-wide inference backend. Call once at start-up, before loading any model.
///
/// Calling it again with the same settings returns the backend already chosen; with different
/// settings it fails with [`VisionError::BackendAlreadySet`].
pub fn init_backend(settings: &BackendSettings) -> Result<ActiveBackend, VisionError> {
    let _guard = INIT_LOCK
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    if let Some(installed) = INSTALLED.get() {
        if installed.requested == *settings {
            return Ok(installed.active.clone());
        }
        return Err(VisionError::BackendAlreadySet {
            active: installed.active.to_string(),
        });
    }

    let active = match settings.backend {
        BackendKind::Tract => install_tract(None)?,
        BackendKind::OnnxRuntime => {
            let candidates = match &settings.library_path {
                Some(path) => vec![path.clone()],
                None => default_library_candidates(),
            };
            match load_onnxruntime(&candidates) {
                Ok(loaded) => install_onnxruntime(loaded)?,
                Err(err) => match settings.on_load_failure {
                    OnLoadFailure::Refuse => return Err(err),
                    OnLoadFailure::FallbackToTract => {
                        tracing::warn!(error = %err, "ONNX Runtime unavailable, falling back to tract");
                        install_tract(Some(err.to_string()))?
                    }
                },
            }
        }
    };

    let environment = ort::init()
        .with_name("hub-vision")
        .build()
        .map_err(|e| VisionError::runtime("creating the inference environment", e))?;
    let installed = Installed {
        requested: settings.clone(),
        active: active.clone(),
        environment,
    };
    // Cannot already be set: we hold INIT_LOCK and checked above.
    let _ = INSTALLED.set(installed);
    tracing::info!(backend = %active, "inference backend ready");
    Ok(active)
}

/// The backend chosen by [`init_backend`], if it has run.
pub fn active_backend() -> Option<ActiveBackend> {
    INSTALLED.get().map(|i| i.active.clone())
}

pub(crate) fn environment() -> Result<&'static ort::environment::Environment, VisionError> {
    INSTALLED
        .get()
        .map(|i| &i.environment)
        .ok_or(VisionError::BackendNotInitialised)
}

fn install_tract(fallback_reason: Option<String>) -> Result<ActiveBackend, VisionError> {
    if !ort::set_api(ort_tract::api()) {
        return Err(VisionError::BackendAlreadySet {
            active: "set outside hub_vision::init_backend".to_owned(),
        });
    }
    Ok(ActiveBackend {
        kind: BackendKind::Tract,
        library: None,
        version: None,
        fallback_reason,
    })
}

struct LoadedOnnxRuntime {
    path: PathBuf,
    version: String,
    library: libloading::Library,
    api: ort_sys::OrtApi,
}

fn install_onnxruntime(loaded: LoadedOnnxRuntime) -> Result<ActiveBackend, VisionError> {
    // Keep the library mapped before handing out pointers into it.
    let _ = LIBRARY.set(loaded.library);
    if !ort::set_api(loaded.api) {
        return Err(VisionError::BackendAlreadySet {
            active: "set outside hub_vision::init_backend".to_owned(),
        });
    }
    Ok(ActiveBackend {
        kind: BackendKind::OnnxRuntime,
        library: Some(loaded.path),
        version: Some(loaded.version),
        fallback_reason: None,
    })
}

/// Tries each candidate in order and returns the first library that loads and offers the API
/// version this build needs.
fn load_onnxruntime(candidates: &[PathBuf]) -> Result<LoadedOnnxRuntime, VisionError> {
    let mut last_reason = String::from("no candidate library file exists");
    for path in candidates {
        if !path.is_file() {
            last_reason = format!("{} does not exist", path.display());
            continue;
        }
        match load_one(path) {
            Ok(loaded) => return Ok(loaded),
            Err(reason) => {
                tracing::debug!(path = %path.display(), %reason, "cannot use ONNX Runtime library");
                last_reason = format!("{}: {reason}", path.display());
            }
        }
    }
    Err(VisionError::RuntimeLibrary {
        tried: candidates.to_vec(),
        reason: last_reason,
    })
}

fn load_one(path: &Path) -> Result<LoadedOnnxRuntime, String> {
    // SAFETY: loading a shared library runs its initialisers. The candidates are the ONNX Runtime
    // library by name and location (operator-controlled paths, see default_library_candidates);
    // ONNX Runtime's initialisers have no preconditions on the host process.
    let library = unsafe { libloading::Library::new(path) }.map_err(|e| e.to_string())?;
    // SAFETY: `OrtGetApiBase` is declared in onnxruntime_c_api.h as
    // `const OrtApiBase* ORT_API_CALL OrtGetApiBase(void)`; the type below matches it.
    let get_api_base: libloading::Symbol<
        '_,
        unsafe extern "system" fn() -> *const ort_sys::OrtApiBase,
    > = unsafe { library.get(b"OrtGetApiBase\0") }
        .map_err(|e| format!("not an ONNX Runtime library (no OrtGetApiBase symbol): {e}"))?;
    // SAFETY: the function takes no arguments and returns a pointer to a static table or null.
    let base = unsafe { get_api_base() };
    if base.is_null() {
        return Err("OrtGetApiBase returned null".to_owned());
    }
    // SAFETY: `base` is non-null and points to the library's static OrtApiBase, valid while the
    // library stays loaded (we keep it loaded for the life of the process).
    let base = unsafe { &*base };
    // SAFETY: GetVersionString returns a pointer to a static NUL-terminated string.
    let version = unsafe {
        let ptr = (base.GetVersionString)();
        if ptr.is_null() {
            String::from("unknown")
        } else {
            CStr::from_ptr(ptr).to_string_lossy().into_owned()
        }
    };
    // SAFETY: GetApi takes a version number and returns a static table or null when the library is
    // older than the requested API version.
    let api_ptr = unsafe { (base.GetApi)(ort_sys::ORT_API_VERSION) };
    if api_ptr.is_null() {
        return Err(format!(
            "ONNX Runtime {version} is too old: this build needs API version {} (ONNX Runtime 1.{} or newer; ship {ONNXRUNTIME_VERSION})",
            ort_sys::ORT_API_VERSION,
            ort_sys::ORT_API_VERSION
        ));
    }
    // SAFETY: `api_ptr` is non-null and points to an `OrtApi` of at least version
    // ORT_API_VERSION, whose layout `ort_sys::OrtApi` mirrors (repr(C)). Copying the table of
    // function pointers is sound; they stay valid because the library is never unloaded.
    let api = unsafe { (*api_ptr).clone() };
    Ok(LoadedOnnxRuntime {
        path: path.to_path_buf(),
        version,
        library,
        api,
    })
}

/// The default places searched for `libonnxruntime.so`, in order:
///
/// 1. the file named by `HUB_ONNXRUNTIME_LIB` (when set, it is the only candidate);
/// 2. `<dir of the executable>/../lib/hub/libonnxruntime.so*`;
/// 3. `/usr/lib/hub/libonnxruntime.so*`;
/// 4. `.runtime/onnxruntime/<arch>/libonnxruntime.so*` in the current directory or any parent
///    (where `deploy/fetch-onnxruntime.sh` puts it in a checkout), then the same beside the
///    executable's ancestors.
///
/// Within a folder, versioned names (`libonnxruntime.so.1.31.1`) come before the bare name.
/// Folders that do not exist are still listed (as `<dir>/libonnxruntime.so`), so an error can say
/// where it looked.
pub fn default_library_candidates() -> Vec<PathBuf> {
    if let Some(explicit) = std::env::var_os(ONNXRUNTIME_LIB_ENV).filter(|v| !v.is_empty()) {
        return vec![PathBuf::from(explicit)];
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    if let Some(exe_dir) = &exe_dir {
        dirs.push(exe_dir.join("../lib/hub"));
    }
    dirs.push(PathBuf::from("/usr/lib/hub"));
    let runtime_rel = Path::new(".runtime/onnxruntime").join(std::env::consts::ARCH);
    let mut project_dirs = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        project_dirs.extend(cwd.ancestors().map(|a| a.join(&runtime_rel)));
    }
    if let Some(exe_dir) = &exe_dir {
        project_dirs.extend(exe_dir.ancestors().map(|a| a.join(&runtime_rel)));
    }
    // Only list project folders that exist: the ancestors of a path are many.
    let mut existing_project: Vec<PathBuf> =
        project_dirs.into_iter().filter(|d| d.is_dir()).collect();
    existing_project.dedup();
    if existing_project.is_empty()
        && let Ok(cwd) = std::env::current_dir()
    {
        existing_project.push(cwd.join(&runtime_rel));
    }
    dirs.extend(existing_project);

    let mut candidates = Vec::new();
    for dir in dirs {
        let found = library_files_in(&dir);
        if found.is_empty() {
            candidates.push(dir.join("libonnxruntime.so"));
        } else {
            candidates.extend(found);
        }
    }
    candidates
}

fn library_files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n == "libonnxruntime.so" || n.starts_with("libonnxruntime.so."))
        })
        .collect();
    // Versioned names first (longer name), then the bare symlink.
    files.sort_by(|a, b| b.as_os_str().len().cmp(&a.as_os_str().len()).then(a.cmp(b)));
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_from_toml() {
        let s: BackendSettings = toml::from_str(
            "backend = \"onnxruntime\"\nlibrary_path = \"/opt/x.so\"\non_load_failure = \"fallback_to_tract\"\n",
        )
        .unwrap();
        assert_eq!(s.backend, BackendKind::OnnxRuntime);
        assert_eq!(s.on_load_failure, OnLoadFailure::FallbackToTract);
        let t: BackendSettings =
            toml::from_str("backend = \"tract\"\non_load_failure = \"refuse\"\n").unwrap();
        assert_eq!(t.backend, BackendKind::Tract);
        assert!(
            toml::from_str::<BackendSettings>("backend = \"tpu\"\non_load_failure = \"refuse\"\n")
                .is_err()
        );
    }

    #[test]
    fn missing_library_error_names_paths_and_remedy() {
        let err = load_onnxruntime(&[PathBuf::from("/nonexistent/libonnxruntime.so")])
            .err()
            .unwrap();
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/libonnxruntime.so"), "{msg}");
        assert!(msg.contains("fetch-onnxruntime.sh"), "{msg}");
    }

    #[test]
    fn non_library_file_is_rejected_with_reason() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("libonnxruntime.so");
        std::fs::write(&fake, b"not an ELF file").unwrap();
        let msg = load_onnxruntime(std::slice::from_ref(&fake))
            .err()
            .unwrap()
            .to_string();
        assert!(msg.contains(&fake.display().to_string()), "{msg}");
    }

    #[test]
    fn versioned_names_come_first() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("libonnxruntime.so"), b"").unwrap();
        std::fs::write(dir.path().join("libonnxruntime.so.1.31.1"), b"").unwrap();
        std::fs::write(dir.path().join("other.so"), b"").unwrap();
        let files = library_files_in(dir.path());
        assert_eq!(files.len(), 2);
        assert!(files[0].ends_with("libonnxruntime.so.1.31.1"));
    }
}

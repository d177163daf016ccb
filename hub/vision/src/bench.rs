//! The vision benchmark: the hub's pipeline against the Python pipeline a user would write, on
//! the same model and the same photos, one thread each, in one run.
//!
//! Measured (medians, ms): (a) Python — Pillow decode + resize, numpy normalise, onnxruntime
//! 1.31.1 — on a 1080p and a 12 MP JPEG, and with Pillow's `draft()` on the 12 MP one; ONNX
//! Runtime inference alone from Python; (b) the hub's full check on the same files and its
//! inference alone; (c) tract inference alone. tract and ONNX Runtime cannot both be this
//! process's `ort` API, so tract is measured in a child process: the caller passes a command
//! (e.g. the hub binary's hidden subcommand) that ends up in [`run_tract_infer_child`].
//!
//! The photos are generated at bench time from the shipped test images (upscaled, mild noise,
//! JPEG q90) into a temporary folder. The Python venv is created from PyPI in a cache folder on
//! first use. This module must not be used on the hot path: it spawns processes and writes files.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::acceptance::{ExpectedLabel, SkuRule};
use crate::backend::{BackendKind, BackendSettings, OnLoadFailure, active_backend, init_backend};
use crate::classifier::Classifier;
use crate::error::VisionError;
use crate::model::ModelOptions;
use crate::preprocess::{DecodeLimits, PixelDecoder};

/// The Python pipeline, shipped with the crate.
pub const PY_PIPELINE: &str = include_str!("../bench/py_pipeline.py");

/// Python packages the baseline venv gets.
pub const PY_PACKAGES: [&str; 3] = ["pillow", "numpy", "onnxruntime==1.31.1"];

/// A command that runs [`run_tract_infer_child`] in a fresh process. The bench appends
/// `--manifest <path> --image <jpeg> --reps <n>` to `args`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TractChildCommand {
    /// Executable, e.g. `std::env::current_exe()`.
    pub program: PathBuf,
    /// Leading arguments, e.g. `["__vision-tract-bench"]`.
    pub args: Vec<String>,
}

/// Benchmark options.
#[derive(Debug, Clone)]
pub struct VisionBenchOptions {
    /// Model manifest.
    pub manifest_path: PathBuf,
    /// Folder with `orange.jpg` and `fruits.jpg`, the sources of the generated photos.
    pub source_images_dir: PathBuf,
    /// Cache folder for the Python venv (default `~/.cache/hub-vision`).
    pub cache_dir: PathBuf,
    /// Python interpreter used to create the venv.
    pub python: String,
    /// Timed repetitions per case (after 3 warm-ups).
    pub reps: usize,
    /// How to measure tract; `None` skips it.
    pub tract_child: Option<TractChildCommand>,
    /// Skip the Python baseline (e.g. offline).
    pub skip_python: bool,
}

impl VisionBenchOptions {
    /// Defaults for a manifest and the test-images folder.
    pub fn new(manifest_path: impl Into<PathBuf>, source_images_dir: impl Into<PathBuf>) -> Self {
        let cache_dir = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir)
            .join("hub-vision");
        Self {
            manifest_path: manifest_path.into(),
            source_images_dir: source_images_dir.into(),
            cache_dir,
            python: "python3".into(),
            reps: 15,
            tract_child: None,
            skip_python: false,
        }
    }
}

/// Benchmark results; times are medians in milliseconds, single-threaded.
#[derive(Debug, Clone, Serialize)]
pub struct VisionBenchReport {
    /// Python pipeline, 1080p JPEG.
    pub py_1080p_ms: Option<f64>,
    /// Hub full check, 1080p JPEG.
    pub hub_1080p_ms: f64,
    /// Python pipeline, 12 MP JPEG.
    pub py_12mp_ms: Option<f64>,
    /// Python pipeline with Pillow `draft()`, 12 MP JPEG.
    pub py_draft_12mp_ms: Option<f64>,
    /// Hub full check, 12 MP JPEG.
    pub hub_12mp_ms: f64,
    /// ONNX Runtime inference alone, from Python.
    pub ort_infer_ms: Option<f64>,
    /// Hub inference alone (ONNX Runtime through `ort`).
    pub hub_infer_ms: f64,
    /// tract inference alone (child process).
    pub tract_infer_ms: Option<f64>,
    /// VmRSS of this process with the model loaded, MB.
    pub rss_mb_model_loaded: f64,
    /// Hub 1080p stage split: decode, preprocess, infer (medians, ms).
    pub hub_1080p_split_ms: [f64; 3],
    /// Hub 12 MP stage split: decode, preprocess, infer (medians, ms).
    pub hub_12mp_split_ms: [f64; 3],
    /// JPEG DCT scale denominators used for 1080p and 12 MP.
    pub dct_denominators: [u8; 2],
    /// Decoders that produced the pixels for 1080p and 12 MP.
    pub pixel_decoders: [PixelDecoder; 2],
    /// The 12 MP photo decoded by libjpeg-turbo at the same DCT scale (median ms): the
    /// baseline for the hub's decode figure when the DC-only reader took it.
    pub turbo_decode_12mp_ms: f64,
    /// Generated photo sizes (bytes) for 1080p and 12 MP.
    pub photo_bytes: [usize; 2],
    /// ONNX Runtime version loaded by the hub.
    pub hub_onnxruntime_version: Option<String>,
    /// Versions reported by the Python side.
    pub python_versions: Option<serde_json::Value>,
    /// Targets: hub_1080p ≤ 0.5 × py_1080p, hub_12mp ≤ 0.8 × py_draft_12mp, hub_infer ≤ 1.2 × ort_infer.
    pub targets_met: Option<[bool; 3]>,
    /// Timed repetitions per case.
    pub reps: usize,
    /// Anything that was skipped or went wrong but did not stop the run.
    pub notes: Vec<String>,
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1}"))
}

impl std::fmt::Display for VisionBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "vision benchmark (median ms, 1 thread, {} reps)",
            self.reps
        )?;
        writeln!(f, "{:<34} {:>10} {:>10}", "case", "python", "hub")?;
        writeln!(
            f,
            "{:<34} {:>10} {:>10.1}",
            "full check, 1080p JPEG",
            opt(self.py_1080p_ms),
            self.hub_1080p_ms
        )?;
        writeln!(
            f,
            "{:<34} {:>10} {:>10.1}",
            "full check, 12 MP JPEG",
            opt(self.py_12mp_ms),
            self.hub_12mp_ms
        )?;
        writeln!(
            f,
            "{:<34} {:>10} {:>10}",
            "full check, 12 MP, Pillow draft()",
            opt(self.py_draft_12mp_ms),
            ""
        )?;
        writeln!(
            f,
            "{:<34} {:>10} {:>10.1}",
            "inference only (ONNX Runtime)",
            opt(self.ort_infer_ms),
            self.hub_infer_ms
        )?;
        writeln!(
            f,
            "{:<34} {:>10} {:>10}",
            "inference only (tract)",
            "",
            opt(self.tract_infer_ms)
        )?;
        let [d, p, i] = self.hub_1080p_split_ms;
        writeln!(
            f,
            "hub 1080p split: decode {d:.1}, preprocess {p:.2}, infer {i:.1} (DCT 1/{}, {:?})",
            self.dct_denominators[0], self.pixel_decoders[0]
        )?;
        let [d, p, i] = self.hub_12mp_split_ms;
        writeln!(
            f,
            "hub 12 MP split: decode {d:.1}, preprocess {p:.2}, infer {i:.1} (DCT 1/{}, {:?}); \
             libjpeg-turbo alone at 1/{}: {:.1} ({:.2}x)",
            self.dct_denominators[1],
            self.pixel_decoders[1],
            self.dct_denominators[1],
            self.turbo_decode_12mp_ms,
            d / self.turbo_decode_12mp_ms
        )?;
        writeln!(
            f,
            "RSS with model loaded: {:.1} MB",
            self.rss_mb_model_loaded
        )?;
        if let Some([a, b, c]) = self.targets_met {
            let mark = |ok: bool| if ok { "met" } else { "MISSED" };
            writeln!(
                f,
                "targets: 1080p <= 0.5x python {}; 12 MP <= 0.8x python draft {}; infer <= 1.2x ORT {}",
                mark(a),
                mark(b),
                mark(c)
            )?;
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        Ok(())
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// VmRSS of this process in MB, from `/proc/self/status` (Linux).
pub fn rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Upscales `source` to `width`×`height`, adds mild noise and encodes JPEG q90.
pub fn make_bench_photo(
    source: &Path,
    width: u32,
    height: u32,
    seed: u64,
) -> Result<Vec<u8>, VisionError> {
    let img = image::open(source)
        .map_err(|e| VisionError::Bench(format!("cannot open {}: {e}", source.display())))?;
    let mut big = image::imageops::resize(
        &img.to_rgb8(),
        width,
        height,
        image::imageops::FilterType::Triangle,
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for px in big.pixels_mut() {
        for c in px.0.iter_mut() {
            let n: i16 = rng.random_range(-6..=6);
            *c = (i16::from(*c) + n).clamp(0, 255) as u8;
        }
    }
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&big)
        .map_err(|e| VisionError::Bench(format!("cannot encode bench JPEG: {e}")))?;
    Ok(out)
}

fn bench_rule() -> SkuRule {
    SkuRule {
        sku: "BENCH".into(),
        expected: vec![ExpectedLabel::Id(950), ExpectedLabel::Id(951)],
        top_k: 5,
        min_probability: 0.2,
        allow_model_reject: false,
    }
}

/// Runs the benchmark. The process's backend must be ONNX Runtime (it is initialised here with
/// the default search if no backend is set yet).
pub fn run_vision_bench(opts: &VisionBenchOptions) -> Result<VisionBenchReport, VisionError> {
    let reps = opts.reps.max(1);
    let mut notes = Vec::new();
    let active = match active_backend() {
        Some(a) => a,
        None => init_backend(&BackendSettings {
            backend: BackendKind::OnnxRuntime,
            library_path: None,
            on_load_failure: OnLoadFailure::Refuse,
        })?,
    };
    if active.kind != BackendKind::OnnxRuntime {
        return Err(VisionError::Bench(format!(
            "the bench compares against ONNX Runtime but this process runs {active}"
        )));
    }

    let work = std::env::temp_dir().join(format!("hub-vision-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| VisionError::io("create", &work, e))?;
    let result = run_in(opts, reps, &work, &mut notes, active.version.clone());
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn run_in(
    opts: &VisionBenchOptions,
    reps: usize,
    work: &Path,
    notes: &mut Vec<String>,
    ort_version: Option<String>,
) -> Result<VisionBenchReport, VisionError> {
    let photo_1080p = make_bench_photo(&opts.source_images_dir.join("orange.jpg"), 1920, 1080, 1)?;
    let photo_12mp = make_bench_photo(&opts.source_images_dir.join("fruits.jpg"), 4000, 3000, 2)?;
    let path_1080p = work.join("bench-1080p.jpg");
    let path_12mp = work.join("bench-12mp.jpg");
    std::fs::write(&path_1080p, &photo_1080p)
        .map_err(|e| VisionError::io("write", &path_1080p, e))?;
    std::fs::write(&path_12mp, &photo_12mp).map_err(|e| VisionError::io("write", &path_12mp, e))?;

    let mut classifier = Classifier::load(
        &opts.manifest_path,
        &ModelOptions { intra_threads: 1 },
        DecodeLimits::default(),
    )?;
    let rss_mb_model_loaded = rss_mb().unwrap_or(f64::NAN);
    let rule = bench_rule();

    let mut full = |bytes: &[u8]| -> Result<(f64, [f64; 3], u8, PixelDecoder), VisionError> {
        for _ in 0..3 {
            classifier.check_bytes(bytes, &rule, None)?;
        }
        let (mut total, mut dec, mut pre, mut inf) = (vec![], vec![], vec![], vec![]);
        let mut denom = 1;
        let mut decoder = PixelDecoder::LibjpegTurbo;
        for _ in 0..reps {
            let t = Instant::now();
            let r = classifier.check_bytes(bytes, &rule, None)?;
            total.push(t.elapsed().as_secs_f64() * 1000.0);
            dec.push(r.evidence.timings.decode_ms);
            pre.push(r.evidence.timings.preprocess_ms);
            inf.push(r.evidence.timings.infer_ms);
            denom = r.evidence.dct_scale_denominator;
            decoder = r.evidence.pixel_decoder;
        }
        Ok((
            median(total),
            [median(dec), median(pre), median(inf)],
            denom,
            decoder,
        ))
    };
    let (hub_1080p_ms, hub_1080p_split_ms, d1, decoder_1080p) = full(&photo_1080p)?;
    let (hub_12mp_ms, hub_12mp_split_ms, d2, decoder_12mp) = full(&photo_12mp)?;
    let mut turbo = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        crate::turbo::decode_rgb(&photo_12mp, d2, u64::MAX).map_err(VisionError::Bench)?;
        turbo.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let turbo_decode_12mp_ms = median(turbo);

    let prepared = classifier.prepare(&photo_1080p)?;
    let model = classifier.model_mut();
    for _ in 0..3 {
        model.infer(&prepared.tensor)?;
    }
    let mut inf = Vec::new();
    for _ in 0..reps * 2 {
        let t = Instant::now();
        model.infer(&prepared.tensor)?;
        inf.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let hub_infer_ms = median(inf);
    let model_path = classifier.model().path().to_path_buf();
    drop(classifier);

    let python = if opts.skip_python {
        notes.push("python baseline skipped".into());
        None
    } else {
        match run_python(opts, work, &model_path, &path_1080p, &path_12mp, reps) {
            Ok(v) => Some(v),
            Err(e) => {
                notes.push(format!("python baseline failed: {e}"));
                None
            }
        }
    };
    let py = |key: &str| {
        python
            .as_ref()
            .and_then(|v| v.get(key))
            .and_then(serde_json::Value::as_f64)
    };

    let tract_infer_ms = match &opts.tract_child {
        None => {
            notes.push("tract not measured (no child command given)".into());
            None
        }
        Some(cmd) => match run_tract_child(cmd, &opts.manifest_path, &path_1080p, reps.min(10)) {
            Ok(v) => Some(v),
            Err(e) => {
                notes.push(format!("tract measurement failed: {e}"));
                None
            }
        },
    };

    let (py_1080p_ms, py_12mp_ms, py_draft_12mp_ms, ort_infer_ms) = (
        py("py_1080p_ms"),
        py("py_12mp_ms"),
        py("py_draft_12mp_ms"),
        py("ort_infer_ms"),
    );
    let targets_met = match (py_1080p_ms, py_draft_12mp_ms, ort_infer_ms) {
        (Some(a), Some(b), Some(c)) => Some([
            hub_1080p_ms <= 0.5 * a,
            hub_12mp_ms <= 0.8 * b,
            hub_infer_ms <= 1.2 * c,
        ]),
        _ => None,
    };
    Ok(VisionBenchReport {
        py_1080p_ms,
        hub_1080p_ms,
        py_12mp_ms,
        py_draft_12mp_ms,
        hub_12mp_ms,
        ort_infer_ms,
        hub_infer_ms,
        tract_infer_ms,
        rss_mb_model_loaded,
        hub_1080p_split_ms,
        hub_12mp_split_ms,
        dct_denominators: [d1, d2],
        pixel_decoders: [decoder_1080p, decoder_12mp],
        turbo_decode_12mp_ms,
        photo_bytes: [photo_1080p.len(), photo_12mp.len()],
        hub_onnxruntime_version: ort_version,
        python_versions: python.map(|v| {
            serde_json::json!({
                "onnxruntime": v.get("onnxruntime_version"),
                "pillow": v.get("pillow_version"),
                "numpy": v.get("numpy_version"),
            })
        }),
        targets_met,
        reps,
        notes: std::mem::take(notes),
    })
}

fn command_output(cmd: &mut Command, what: &str) -> Result<String, VisionError> {
    let out = cmd
        .output()
        .map_err(|e| VisionError::Bench(format!("cannot run {what}: {e}")))?;
    if !out.status.success() {
        return Err(VisionError::Bench(format!(
            "{what} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .join(" | ")
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Creates (once) a venv with the baseline packages and returns its python.
fn ensure_venv(opts: &VisionBenchOptions) -> Result<PathBuf, VisionError> {
    let venv = opts.cache_dir.join("bench-venv-ort1.31.1");
    let python = venv.join("bin/python");
    let ready = python.is_file()
        && Command::new(&python)
            .args([
                "-c",
                "import PIL, numpy, onnxruntime; assert onnxruntime.__version__ == '1.31.1'",
            ])
            .status()
            .is_ok_and(|s| s.success());
    if ready {
        return Ok(python);
    }
    std::fs::create_dir_all(&opts.cache_dir)
        .map_err(|e| VisionError::io("create", &opts.cache_dir, e))?;
    command_output(
        Command::new(&opts.python).args(["-m", "venv"]).arg(&venv),
        "python3 -m venv",
    )?;
    command_output(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet"])
            .args(PY_PACKAGES),
        "pip install pillow numpy onnxruntime==1.31.1",
    )?;
    Ok(python)
}

fn run_python(
    opts: &VisionBenchOptions,
    work: &Path,
    model: &Path,
    img_1080p: &Path,
    img_12mp: &Path,
    reps: usize,
) -> Result<serde_json::Value, VisionError> {
    let python = ensure_venv(opts)?;
    let script = work.join("py_pipeline.py");
    std::fs::write(&script, PY_PIPELINE).map_err(|e| VisionError::io("write", &script, e))?;
    let stdout = command_output(
        Command::new(python)
            .arg(&script)
            .arg("--model")
            .arg(model)
            .arg("--img-1080p")
            .arg(img_1080p)
            .arg("--img-12mp")
            .arg(img_12mp)
            .arg("--reps")
            .arg(reps.to_string())
            .env("OMP_NUM_THREADS", "1")
            .env("OPENBLAS_NUM_THREADS", "1"),
        "the Python pipeline",
    )?;
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_default();
    serde_json::from_str(line)
        .map_err(|e| VisionError::Bench(format!("Python pipeline printed no JSON ({e}): {stdout}")))
}

fn run_tract_child(
    cmd: &TractChildCommand,
    manifest: &Path,
    image: &Path,
    reps: usize,
) -> Result<f64, VisionError> {
    let stdout = command_output(
        Command::new(&cmd.program)
            .args(&cmd.args)
            .arg("--manifest")
            .arg(manifest)
            .arg("--image")
            .arg(image)
            .arg("--reps")
            .arg(reps.to_string()),
        "the tract child",
    )?;
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(line)
        .map_err(|e| VisionError::Bench(format!("tract child printed no JSON ({e}): {stdout}")))?;
    v.get("tract_infer_ms")
        .and_then(serde_json::Value::as_f64)
        .ok_or_else(|| {
            VisionError::Bench(format!("tract child JSON has no tract_infer_ms: {line}"))
        })
}

/// Body of the tract child process. `args` are the arguments after the hidden subcommand:
/// `--manifest <path> --image <photo> --reps <n>`. Sets tract as this process's backend, loads
/// the model, and returns one JSON line `{"tract_infer_ms": <median>, ...}` to print on stdout.
///
/// The hub binary wires it as a hidden subcommand, e.g.
/// `hub __vision-tract-bench --manifest M --image I --reps N`, and passes
/// `TractChildCommand { program: current_exe, args: ["__vision-tract-bench"] }` to the bench.
pub fn run_tract_infer_child(args: &[String]) -> Result<String, VisionError> {
    let mut manifest = None;
    let mut image = None;
    let mut reps = 5usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| VisionError::Bench(format!("{a} needs a value")))
        };
        match a.as_str() {
            "--manifest" => manifest = Some(PathBuf::from(value()?)),
            "--image" => image = Some(PathBuf::from(value()?)),
            "--reps" => {
                reps = value()?
                    .parse()
                    .map_err(|e| VisionError::Bench(format!("--reps: {e}")))?
            }
            other => {
                return Err(VisionError::Bench(format!(
                    "unknown tract child argument '{other}'"
                )));
            }
        }
    }
    let manifest = manifest.ok_or_else(|| VisionError::Bench("--manifest is required".into()))?;
    let image = image.ok_or_else(|| VisionError::Bench("--image is required".into()))?;
    init_backend(&BackendSettings {
        backend: BackendKind::Tract,
        library_path: None,
        on_load_failure: OnLoadFailure::Refuse,
    })?;
    let mut classifier = Classifier::load(
        &manifest,
        &ModelOptions { intra_threads: 1 },
        DecodeLimits::default(),
    )?;
    let bytes = std::fs::read(&image).map_err(|source| VisionError::PhotoRead {
        path: image.clone(),
        source,
    })?;
    let prepared = classifier.prepare(&bytes)?;
    let model = classifier.model_mut();
    for _ in 0..2 {
        model.infer(&prepared.tensor)?;
    }
    let mut times = Vec::new();
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        model.infer(&prepared.tensor)?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(serde_json::json!({
        "tract_infer_ms": median(times),
        "reps": reps.max(1),
        "rss_mb": rss_mb(),
    })
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn report_serialises_with_the_agreed_field_names() {
        let r = VisionBenchReport {
            py_1080p_ms: Some(30.0),
            hub_1080p_ms: 12.0,
            py_12mp_ms: Some(119.0),
            py_draft_12mp_ms: Some(20.0),
            hub_12mp_ms: 15.0,
            ort_infer_ms: Some(6.6),
            hub_infer_ms: 6.7,
            tract_infer_ms: None,
            rss_mb_model_loaded: 60.0,
            hub_1080p_split_ms: [4.0, 0.5, 6.7],
            hub_12mp_split_ms: [8.0, 0.5, 6.7],
            dct_denominators: [4, 8],
            pixel_decoders: [PixelDecoder::LibjpegTurbo, PixelDecoder::JpegDcOnly],
            turbo_decode_12mp_ms: 20.0,
            photo_bytes: [1, 2],
            hub_onnxruntime_version: None,
            python_versions: None,
            targets_met: Some([true, true, true]),
            reps: 15,
            notes: vec![],
        };
        let v = serde_json::to_value(&r).unwrap();
        for key in [
            "py_1080p_ms",
            "hub_1080p_ms",
            "py_12mp_ms",
            "py_draft_12mp_ms",
            "hub_12mp_ms",
            "ort_infer_ms",
            "hub_infer_ms",
            "tract_infer_ms",
            "rss_mb_model_loaded",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert!(r.to_string().contains("full check, 1080p JPEG"));
    }

    #[test]
    fn tract_child_rejects_bad_arguments() {
        let err = run_tract_infer_child(&["--bogus".into()]).unwrap_err();
        assert!(err.to_string().contains("--bogus"));
        let err = run_tract_infer_child(&["--image".into(), "x".into()]).unwrap_err();
        assert!(err.to_string().contains("--manifest"));
    }
}

//! The vision benchmark: the hub's photo check against the best Python pipeline a user would
//! write, on the same model and the same photos, one thread each, in one run.
//!
//! Each side is timed from the photo file on disk to the model's answer: the hub reads the file
//! and runs its full check (hash, decode, resize, normalise, inference, rule); Python opens the
//! file with Pillow. The baseline is Pillow with `draft()` (libjpeg-turbo's DCT scaling, the
//! same library and scale the hub uses) at every size; the plain Pillow pipeline, which decodes
//! the full picture, is measured for information. Photos: at 1080p and 12 MP, five camera-like
//! JPEGs (4:2:0 and 4:2:2 chroma, EXIF with an orientation, restart markers, progressive) and a
//! synthetic 4:4:4 one, made at bench time (see [`photos`]). Figures are medians of repeated
//! runs per photo; a size's figure is the mean of its photos' medians (the time per photo over
//! the set). The Python pipeline runs in a child process that takes one case per request, and
//! the two sides run in turn, one repetition each, so both see the same load. Also measured: inference alone (ONNX Runtime from Python and from the hub, tract
//! in a child process, because tract and ONNX Runtime cannot both be this process's `ort`
//! API), the 12 MP decode alone by libjpeg-turbo, and resident memory.
//!
//! The Python interpreter comes from the caller (the hub's bench command sets up a venv with
//! [`PY_PACKAGES`]); this library installs nothing. Without one the report says the baseline
//! was not measured. This module must not be used on the hot path: it spawns processes and
//! writes files.

pub mod photos;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde::Serialize;

use crate::acceptance::{ExpectedLabel, SkuRule};
use crate::backend::{BackendKind, BackendSettings, OnLoadFailure, active_backend, init_backend};
use crate::classifier::Classifier;
use crate::error::VisionError;
use crate::model::ModelOptions;
use crate::preprocess::{DecodeLimits, PixelDecoder};
use photos::{BenchPhoto, PhotoStyle, bench_photo_set, camera_like_pixels, encode_photo};

/// The Python pipeline, shipped with the crate.
pub const PY_PIPELINE: &str = include_str!("../../bench/py_pipeline.py");

/// Python packages the baseline needs (pip requirement specifiers).
pub const PY_PACKAGES: [&str; 3] = ["pillow", "numpy", "onnxruntime==1.31.1"];

/// Photo sizes measured: name, width, height, source image.
const SIZES: [(&str, u32, u32, &str); 2] = [
    ("1080p", 1920, 1080, "orange.jpg"),
    ("12mp", 4000, 3000, "fruits.jpg"),
];

/// Targets: the hub's check at most this share of the Python `draft()` pipeline's time...
pub const TARGET_VS_DRAFT: f64 = 0.8;
/// ...and its inference alone at most this multiple of ONNX Runtime's from Python.
pub const TARGET_INFER_VS_ORT: f64 = 1.2;

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
    /// Python interpreter that has [`PY_PACKAGES`]; `None`: the baseline is not measured.
    pub python: Option<PathBuf>,
    /// Timed repetitions per case (after up to 3 warm-ups).
    pub reps: usize,
    /// How to measure tract; `None` skips it.
    pub tract_child: Option<TractChildCommand>,
}

impl VisionBenchOptions {
    /// Defaults for a manifest and the test-images folder: no Python baseline, no tract.
    pub fn new(manifest_path: impl Into<PathBuf>, source_images_dir: impl Into<PathBuf>) -> Self {
        Self {
            manifest_path: manifest_path.into(),
            source_images_dir: source_images_dir.into(),
            python: None,
            reps: 15,
            tract_child: None,
        }
    }
}

/// One photo's figures (medians, ms).
#[derive(Debug, Clone, Serialize)]
pub struct PhotoFigures {
    /// Name in the set, e.g. `camera-420`.
    pub name: String,
    /// `1080p` or `12mp`.
    pub size: String,
    /// How it was encoded.
    pub style: PhotoStyle,
    /// Stored width and height.
    pub pixels: (u32, u32),
    /// File size.
    pub bytes: usize,
    /// Hub: file read + full check.
    pub hub_ms: f64,
    /// Hub stages: file read, decode, preprocess, inference (the rest is hashing and the rule).
    pub hub_split_ms: [f64; 4],
    /// DCT scale denominator and decoder the hub used.
    pub dct_denominator: u8,
    /// Decoder that produced the hub's pixels.
    pub pixel_decoder: PixelDecoder,
    /// Python with `draft()`.
    pub py_draft_ms: Option<f64>,
    /// Python without `draft()` (full-size decode).
    pub py_plain_ms: Option<f64>,
    /// Top class of the hub and of Python with `draft()`.
    pub top1: (u32, Option<u32>),
}

/// Benchmark results; times are medians in milliseconds, single-threaded. A size's figure is
/// the mean over its photos of each photo's median.
#[derive(Debug, Clone, Serialize)]
pub struct VisionBenchReport {
    /// Python with Pillow `draft()`, 1080p photos (the baseline).
    pub py_draft_1080p_ms: Option<f64>,
    /// Hub, 1080p photos.
    pub hub_1080p_ms: f64,
    /// Python with Pillow `draft()`, 12 MP photos (the baseline).
    pub py_draft_12mp_ms: Option<f64>,
    /// Hub, 12 MP photos.
    pub hub_12mp_ms: f64,
    /// Python without `draft()`, 1080p photos (information).
    pub py_plain_1080p_ms: Option<f64>,
    /// Python without `draft()`, 12 MP photos (information).
    pub py_plain_12mp_ms: Option<f64>,
    /// ONNX Runtime inference alone, from Python.
    pub ort_infer_ms: Option<f64>,
    /// Hub inference alone (ONNX Runtime through `ort`).
    pub hub_infer_ms: f64,
    /// tract inference alone (child process).
    pub tract_infer_ms: Option<f64>,
    /// VmRSS of this process with the model loaded, MB.
    pub rss_mb_model_loaded: f64,
    /// The 12 MP camera-420 photo decoded by the hub (median ms).
    pub hub_decode_12mp_ms: f64,
    /// The same photo decoded by libjpeg-turbo alone at the same DCT scale (median ms).
    pub turbo_decode_12mp_ms: f64,
    /// Every photo's figures.
    pub photos: Vec<PhotoFigures>,
    /// ONNX Runtime version loaded by the hub.
    pub hub_onnxruntime_version: Option<String>,
    /// Versions reported by the Python side.
    pub python_versions: Option<serde_json::Value>,
    /// Why the Python baseline was not measured (`None` when it was).
    pub baseline_error: Option<String>,
    /// Targets: 1080p and 12 MP ≤ 0.8 × Python `draft()`, inference ≤ 1.2 × ONNX Runtime;
    /// `None` when the baseline was not measured.
    pub targets_met: Option<[bool; 3]>,
    /// Timed repetitions per case.
    pub reps: usize,
    /// Anything that was skipped or went wrong but did not stop the run.
    pub notes: Vec<String>,
}

impl VisionBenchReport {
    /// Whether the Python baseline was measured.
    pub fn baseline_measured(&self) -> bool {
        self.baseline_error.is_none() && self.targets_met.is_some()
    }

    /// Whether every target was met; `None` when they could not be judged.
    pub fn meets_targets(&self) -> Option<bool> {
        self.targets_met.map(|t| t.iter().all(|m| *m))
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1}"))
}

fn ratio(hub: f64, base: Option<f64>) -> String {
    base.map_or_else(String::new, |b| format!("{:.2}x", hub / b))
}

impl std::fmt::Display for VisionBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "vision benchmark: median ms per photo over {} reps, 1 thread, each side timed from \
             the file on disk to the answer",
            self.reps
        )?;
        writeln!(
            f,
            "{:<29} {:>5} {:>7} {:>8} {:>8} {:>7} {:>8}  hub decoder",
            "photo", "size", "KB", "py plain", "py draft", "hub", "hub/draft"
        )?;
        for p in &self.photos {
            writeln!(
                f,
                "{:<29} {:>5} {:>7} {:>8} {:>8} {:>7.1} {:>9}  {:?} 1/{}",
                p.name,
                p.size,
                p.bytes / 1000,
                opt(p.py_plain_ms),
                opt(p.py_draft_ms),
                p.hub_ms,
                ratio(p.hub_ms, p.py_draft_ms),
                p.pixel_decoder,
                p.dct_denominator
            )?;
        }
        let mark = |i: usize| match self.targets_met {
            Some(t) if t[i] => "met",
            Some(_) => "MISSED",
            None => "not judged",
        };
        for (i, (label, plain, draft, hub)) in [
            (
                "1080p",
                self.py_plain_1080p_ms,
                self.py_draft_1080p_ms,
                self.hub_1080p_ms,
            ),
            (
                "12 MP",
                self.py_plain_12mp_ms,
                self.py_draft_12mp_ms,
                self.hub_12mp_ms,
            ),
        ]
        .into_iter()
        .enumerate()
        {
            writeln!(
                f,
                "{:<37} {:>8} {:>8} {:>7.1} {:>9}  target <= {TARGET_VS_DRAFT}x: {}",
                format!("mean over the {label} photos"),
                opt(plain),
                opt(draft),
                hub,
                ratio(hub, draft),
                mark(i)
            )?;
        }
        writeln!(
            f,
            "inference only: ONNX Runtime from Python {}, hub {:.1} ({}; target <= {TARGET_INFER_VS_ORT}x: {}), tract {}",
            opt(self.ort_infer_ms),
            self.hub_infer_ms,
            ratio(self.hub_infer_ms, self.ort_infer_ms),
            mark(2),
            opt(self.tract_infer_ms)
        )?;
        writeln!(
            f,
            "12 MP camera-420 decode alone: hub {:.1}, libjpeg-turbo at the same scale {:.1} ({:.2}x)",
            self.hub_decode_12mp_ms,
            self.turbo_decode_12mp_ms,
            self.hub_decode_12mp_ms / self.turbo_decode_12mp_ms
        )?;
        writeln!(
            f,
            "RSS with model loaded: {:.1} MB",
            self.rss_mb_model_loaded
        )?;
        if let Some(reason) = &self.baseline_error {
            writeln!(f, "baseline not measured: {reason}")?;
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

fn mean(v: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, n) = v.into_iter().fold((0.0, 0u32), |(s, n), x| (s + x, n + 1));
    sum / f64::from(n.max(1))
}

fn warmups(reps: usize) -> usize {
    reps.clamp(1, 3)
}

/// VmRSS of this process in MB, from `/proc/self/status` (Linux).
pub fn rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
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

/// A generated photo on disk.
struct PhotoFile {
    photo: BenchPhoto,
    size: &'static str,
    path: PathBuf,
    pixels: (u32, u32),
    bytes: usize,
}

/// Writes the photo set for every size into `work`.
fn make_photos(source_dir: &Path, work: &Path) -> Result<Vec<PhotoFile>, VisionError> {
    let mut files = Vec::new();
    for (seed, (size, width, height, source)) in SIZES.into_iter().enumerate() {
        let source = source_dir.join(source);
        let upright = camera_like_pixels(&source, width, height, seed as u64 + 1)?;
        for photo in bench_photo_set() {
            let jpeg = encode_photo(&upright, &photo.style)?;
            let path = work.join(format!("{size}-{}.jpg", photo.name));
            std::fs::write(&path, &jpeg).map_err(|e| VisionError::io("write", &path, e))?;
            let swapped = matches!(photo.style.exif_orientation, Some(5..=8));
            files.push(PhotoFile {
                photo,
                size,
                path,
                pixels: if swapped {
                    (height, width)
                } else {
                    (width, height)
                },
                bytes: jpeg.len(),
            });
        }
    }
    Ok(files)
}

/// Runs the benchmark. The process's backend must be ONNX Runtime (it is initialised here with
/// the default search if no backend is set yet).
pub fn run_vision_bench(opts: &VisionBenchOptions) -> Result<VisionBenchReport, VisionError> {
    let reps = opts.reps.max(1);
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
    let result = run_in(opts, reps, &work, active.version.clone());
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// One hub check of a photo, timed from reading the file: (total ms, read ms, report).
fn hub_check(
    classifier: &mut Classifier,
    rule: &SkuRule,
    path: &Path,
) -> Result<(f64, f64, crate::classifier::CheckReport), VisionError> {
    let started = Instant::now();
    let bytes = std::fs::read(path).map_err(|source| VisionError::PhotoRead {
        path: path.to_owned(),
        source,
    })?;
    let read_ms = started.elapsed().as_secs_f64() * 1000.0;
    let report = classifier.check_bytes(&bytes, rule, Some(path.to_owned()))?;
    Ok((started.elapsed().as_secs_f64() * 1000.0, read_ms, report))
}

/// The Python pipeline as a child process that runs one case per request, so that its runs
/// alternate with the hub's and both sides see the same load on a shared machine.
struct PythonPipeline {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    /// Where its stderr goes (a file, so that a chatty library can never fill a pipe).
    stderr_path: PathBuf,
    /// The first line it printed: versions.
    hello: serde_json::Value,
}

impl PythonPipeline {
    fn start(python: &Path, work: &Path, model: &Path) -> Result<Self, VisionError> {
        let script = work.join("py_pipeline.py");
        std::fs::write(&script, PY_PIPELINE).map_err(|e| VisionError::io("write", &script, e))?;
        let stderr_path = work.join("py_pipeline.stderr");
        let stderr = std::fs::File::create(&stderr_path)
            .map_err(|e| VisionError::io("create", &stderr_path, e))?;
        let mut child = Command::new(python)
            .arg(&script)
            .arg("--model")
            .arg(model)
            .env("OMP_NUM_THREADS", "1")
            .env("OPENBLAS_NUM_THREADS", "1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| {
                VisionError::Bench(format!(
                    "cannot run the Python pipeline ({}): {e}",
                    python.display()
                ))
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(VisionError::Bench(
                "the Python pipeline has no pipes".into(),
            ));
        };
        let mut pipeline = Self {
            child,
            stdin,
            stdout: std::io::BufReader::new(stdout),
            stderr_path,
            hello: serde_json::Value::Null,
        };
        pipeline.hello = pipeline.read_reply()?;
        Ok(pipeline)
    }

    fn read_reply(&mut self) -> Result<serde_json::Value, VisionError> {
        use std::io::BufRead;
        let mut line = String::new();
        let n = self
            .stdout
            .read_line(&mut line)
            .map_err(|e| VisionError::Bench(format!("reading the Python pipeline: {e}")))?;
        if n == 0 {
            let _ = self.child.wait();
            let stderr = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
            return Err(VisionError::Bench(format!(
                "the Python pipeline stopped: {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            )));
        }
        let reply: serde_json::Value = serde_json::from_str(&line).map_err(|e| {
            VisionError::Bench(format!("the Python pipeline printed no JSON ({e}): {line}"))
        })?;
        if let Some(error) = reply.get("error") {
            return Err(VisionError::Bench(format!(
                "the Python pipeline failed: {error}"
            )));
        }
        Ok(reply)
    }

    /// Runs one case (`draft`, `plain` or `infer`) on a photo: (ms, top class).
    fn run(&mut self, case: &str, path: &Path) -> Result<(f64, Option<u32>), VisionError> {
        use std::io::Write;
        let request = serde_json::json!({ "case": case, "path": path });
        writeln!(self.stdin, "{request}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| VisionError::Bench(format!("writing to the Python pipeline: {e}")))?;
        let reply = self.read_reply()?;
        let ms = reply
            .get("ms")
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| {
                VisionError::Bench(format!("the Python pipeline's reply lacks ms: {reply}"))
            })?;
        let top1 = reply
            .get("top1")
            .and_then(serde_json::Value::as_u64)
            .and_then(|v| u32::try_from(v).ok());
        Ok((ms, top1))
    }
}

impl Drop for PythonPipeline {
    fn drop(&mut self) {
        // Closing stdin ends the script; kill it if it does not.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Per-photo samples of both sides.
#[derive(Default)]
struct Samples {
    hub: Vec<f64>,
    read: Vec<f64>,
    decode: Vec<f64>,
    preprocess: Vec<f64>,
    infer: Vec<f64>,
    draft: Vec<f64>,
    plain: Vec<f64>,
    py_top1: Option<u32>,
}

fn run_in(
    opts: &VisionBenchOptions,
    reps: usize,
    work: &Path,
    ort_version: Option<String>,
) -> Result<VisionBenchReport, VisionError> {
    let mut notes = Vec::new();
    let files = make_photos(&opts.source_images_dir, work)?;

    let mut classifier = Classifier::load(
        &opts.manifest_path,
        &ModelOptions { intra_threads: 1 },
        DecodeLimits::default(),
    )?;
    let rss_mb_model_loaded = rss_mb().unwrap_or(f64::NAN);
    let model_path = classifier.model().path().to_path_buf();
    let rule = bench_rule();

    let mut baseline_error = None;
    let mut python = match &opts.python {
        None => {
            baseline_error = Some("no Python interpreter was given".to_owned());
            None
        }
        Some(python) => match PythonPipeline::start(python, work, &model_path) {
            Ok(p) => Some(p),
            Err(e) => {
                baseline_error = Some(e.to_string());
                None
            }
        },
    };
    // Runs one Python case; the first failure ends the baseline for the rest of the run.
    let mut py = |case: &str, path: &Path, baseline_error: &mut Option<String>| {
        let pipeline = python.as_mut()?;
        match pipeline.run(case, path) {
            Ok(v) => Some(v),
            Err(e) => {
                *baseline_error = Some(e.to_string());
                python = None;
                None
            }
        }
    };

    // Each photo: warm-ups on both sides, then hub, Python draft() and Python plain in turn.
    let mut photos = Vec::with_capacity(files.len());
    for file in &files {
        let mut s = Samples::default();
        let mut last = None;
        for i in 0..warmups(reps) + reps {
            let (ms, read_ms, report) = hub_check(&mut classifier, &rule, &file.path)?;
            let draft = py("draft", &file.path, &mut baseline_error);
            let plain = py("plain", &file.path, &mut baseline_error);
            if i < warmups(reps) {
                continue;
            }
            s.hub.push(ms);
            s.read.push(read_ms);
            s.decode.push(report.evidence.timings.decode_ms);
            s.preprocess.push(report.evidence.timings.preprocess_ms);
            s.infer.push(report.evidence.timings.infer_ms);
            if let (Some((d, top1)), Some((p, _))) = (draft, plain) {
                s.draft.push(d);
                s.plain.push(p);
                s.py_top1 = top1;
            }
            last = Some(report);
        }
        let last = last.ok_or_else(|| VisionError::Bench("no repetitions".into()))?;
        let complete = s.draft.len() == reps;
        photos.push(PhotoFigures {
            name: file.photo.name.to_owned(),
            size: file.size.to_owned(),
            style: file.photo.style,
            pixels: file.pixels,
            bytes: file.bytes,
            hub_ms: median(s.hub),
            hub_split_ms: [
                median(s.read),
                median(s.decode),
                median(s.preprocess),
                median(s.infer),
            ],
            dct_denominator: last.evidence.dct_scale_denominator,
            pixel_decoder: last.evidence.pixel_decoder,
            py_draft_ms: complete.then(|| median(s.draft)),
            py_plain_ms: complete.then(|| median(s.plain)),
            top1: (
                last.evidence.top_k.first().map_or(0, |p| p.class_id),
                s.py_top1.filter(|_| complete),
            ),
        });
    }

    // Decode alone, 12 MP camera-420: the hub's decoder and libjpeg-turbo at the same scale.
    let reference = files
        .iter()
        .position(|f| f.size == "12mp" && f.photo.style == PhotoStyle::CAMERA)
        .ok_or_else(|| VisionError::Bench("no 12 MP camera photo in the set".into()))?;
    let reference_path = files[reference].path.clone();
    let reference_bytes =
        std::fs::read(&reference_path).map_err(|e| VisionError::io("read", &reference_path, e))?;
    let denominator = photos[reference].dct_denominator;
    let (mut hub_decode, mut turbo) = (Vec::new(), Vec::new());
    for i in 0..reps + warmups(reps) {
        let prepared = classifier.prepare(&reference_bytes)?;
        let t = Instant::now();
        crate::turbo::decode_rgb(&reference_bytes, denominator, u64::MAX)
            .map_err(VisionError::Bench)?;
        if i >= warmups(reps) {
            turbo.push(t.elapsed().as_secs_f64() * 1000.0);
            hub_decode.push(prepared.decode_ms);
        }
    }
    let (hub_decode_12mp_ms, turbo_decode_12mp_ms) = (median(hub_decode), median(turbo));

    // Inference alone, in turn with ONNX Runtime from Python.
    let prepared = classifier.prepare(&reference_bytes)?;
    let model = classifier.model_mut();
    let (mut inf, mut ort) = (Vec::new(), Vec::new());
    for i in 0..warmups(reps) + reps * 2 {
        let t = Instant::now();
        model.infer(&prepared.tensor)?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let py_ms = py("infer", &reference_path, &mut baseline_error);
        if i >= warmups(reps) {
            inf.push(ms);
            if let Some((v, _)) = py_ms {
                ort.push(v);
            }
        }
    }
    let hub_infer_ms = median(inf);
    let ort_infer_ms = (ort.len() == reps * 2).then(|| median(ort));
    drop(classifier);
    let python_versions = python.as_ref().map(|p| {
        serde_json::json!({
            "onnxruntime": p.hello.get("onnxruntime_version"),
            "pillow": p.hello.get("pillow_version"),
            "numpy": p.hello.get("numpy_version"),
            "libjpeg_turbo": p.hello.get("libjpeg_turbo_version"),
        })
    });
    drop(python);

    let baseline_error = baseline_error.or_else(|| {
        (ort_infer_ms.is_none()
            || photos
                .iter()
                .any(|p| p.py_draft_ms.is_none() || p.py_plain_ms.is_none()))
        .then(|| "the Python pipeline's output lacks figures".to_owned())
    });
    for p in &photos {
        if let (hub, Some(py)) = p.top1
            && hub != py
        {
            notes.push(format!(
                "{} {}: hub's top class {hub}, Python's {py}",
                p.size, p.name
            ));
        }
    }

    let tract_infer_ms = match &opts.tract_child {
        None => {
            notes.push("tract not measured (no child command given)".into());
            None
        }
        Some(cmd) => match run_tract_child(cmd, &opts.manifest_path, &reference_path, reps.min(10))
        {
            Ok(v) => Some(v),
            Err(e) => {
                notes.push(format!("tract measurement failed: {e}"));
                None
            }
        },
    };

    let size_mean = |size: &str, f: &dyn Fn(&PhotoFigures) -> Option<f64>| -> Option<f64> {
        let values: Option<Vec<f64>> = photos.iter().filter(|p| p.size == size).map(f).collect();
        values.map(mean)
    };
    let hub_1080p_ms = size_mean("1080p", &|p| Some(p.hub_ms)).unwrap_or(f64::NAN);
    let hub_12mp_ms = size_mean("12mp", &|p| Some(p.hub_ms)).unwrap_or(f64::NAN);
    let measured = baseline_error.is_none();
    let py_mean = |size: &str, f: &dyn Fn(&PhotoFigures) -> Option<f64>| {
        size_mean(size, f).filter(|_| measured)
    };
    let py_draft_1080p_ms = py_mean("1080p", &|p| p.py_draft_ms);
    let py_draft_12mp_ms = py_mean("12mp", &|p| p.py_draft_ms);
    let py_plain_1080p_ms = py_mean("1080p", &|p| p.py_plain_ms);
    let py_plain_12mp_ms = py_mean("12mp", &|p| p.py_plain_ms);
    let ort_infer_ms = ort_infer_ms.filter(|_| measured);
    let targets_met = match (py_draft_1080p_ms, py_draft_12mp_ms, ort_infer_ms) {
        (Some(a), Some(b), Some(c)) => Some([
            hub_1080p_ms <= TARGET_VS_DRAFT * a,
            hub_12mp_ms <= TARGET_VS_DRAFT * b,
            hub_infer_ms <= TARGET_INFER_VS_ORT * c,
        ]),
        _ => None,
    };
    Ok(VisionBenchReport {
        py_draft_1080p_ms,
        hub_1080p_ms,
        py_draft_12mp_ms,
        hub_12mp_ms,
        py_plain_1080p_ms,
        py_plain_12mp_ms,
        ort_infer_ms,
        hub_infer_ms,
        tract_infer_ms,
        rss_mb_model_loaded,
        hub_decode_12mp_ms,
        turbo_decode_12mp_ms,
        photos,
        hub_onnxruntime_version: ort_version,
        python_versions,
        baseline_error,
        targets_met,
        reps,
        notes,
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

    fn photo(size: &str, hub_ms: f64, py_draft_ms: Option<f64>) -> PhotoFigures {
        PhotoFigures {
            name: "camera-420".into(),
            size: size.into(),
            style: PhotoStyle::CAMERA,
            pixels: (1920, 1080),
            bytes: 400_000,
            hub_ms,
            hub_split_ms: [0.1, 2.0, 0.3, 6.0],
            dct_denominator: 4,
            pixel_decoder: PixelDecoder::LibjpegTurbo,
            py_draft_ms,
            py_plain_ms: py_draft_ms.map(|v| v * 3.0),
            top1: (950, Some(950)),
        }
    }

    fn report(targets_met: Option<[bool; 3]>, baseline_error: Option<String>) -> VisionBenchReport {
        VisionBenchReport {
            py_draft_1080p_ms: Some(10.0),
            hub_1080p_ms: 9.0,
            py_draft_12mp_ms: Some(40.0),
            hub_12mp_ms: 25.0,
            py_plain_1080p_ms: Some(30.0),
            py_plain_12mp_ms: Some(120.0),
            ort_infer_ms: Some(6.6),
            hub_infer_ms: 6.7,
            tract_infer_ms: None,
            rss_mb_model_loaded: 60.0,
            hub_decode_12mp_ms: 12.0,
            turbo_decode_12mp_ms: 20.0,
            photos: vec![
                photo("1080p", 9.0, Some(10.0)),
                photo("12mp", 25.0, Some(40.0)),
            ],
            hub_onnxruntime_version: None,
            python_versions: None,
            baseline_error,
            targets_met,
            reps: 15,
            notes: vec![],
        }
    }

    #[test]
    fn report_serialises_with_the_agreed_field_names() {
        let r = report(Some([false, true, true]), None);
        let v = serde_json::to_value(&r).unwrap();
        for key in [
            "py_draft_1080p_ms",
            "hub_1080p_ms",
            "py_draft_12mp_ms",
            "hub_12mp_ms",
            "py_plain_1080p_ms",
            "py_plain_12mp_ms",
            "ort_infer_ms",
            "hub_infer_ms",
            "tract_infer_ms",
            "rss_mb_model_loaded",
            "photos",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert_eq!(v["photos"][0]["style"]["subsampling"], "4:2:0");
        let text = r.to_string();
        assert!(text.contains("mean over the 1080p photos"), "{text}");
        assert!(text.contains("MISSED"), "{text}");
        assert_eq!(r.meets_targets(), Some(false));
        assert!(r.baseline_measured());
    }

    #[test]
    fn a_missing_baseline_is_not_judged_and_says_why() {
        let r = report(None, Some("no Python interpreter was given".into()));
        assert!(!r.baseline_measured());
        assert_eq!(r.meets_targets(), None);
        let text = r.to_string();
        assert!(text.contains("baseline not measured: no Python"), "{text}");
        assert!(!text.contains(": met"), "{text}");
    }

    #[test]
    fn tract_child_rejects_bad_arguments() {
        let err = run_tract_infer_child(&["--bogus".into()]).unwrap_err();
        assert!(err.to_string().contains("--bogus"));
        let err = run_tract_infer_child(&["--image".into(), "x".into()]).unwrap_err();
        assert!(err.to_string().contains("--manifest"));
    }
}

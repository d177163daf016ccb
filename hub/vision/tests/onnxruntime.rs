//! Integration tests on the ONNX Runtime backend (this test binary's process-wide backend).
//!
//! They need libonnxruntime.so (deploy/fetch-onnxruntime.sh puts it where the default search
//! finds it). A missing library FAILS these tests with the search error; they never skip.

mod common;

use std::path::PathBuf;
use std::sync::Once;

use common::*;
use hub_vision::bench::photos::{
    PhotoStyle, Subsampling, camera_like_pixels, encode_photo, make_bench_photo,
};
use hub_vision::{
    BackendKind, BackendSettings, Classifier, DecodeLimits, ModelManifest, ModelOptions,
    OnLoadFailure, Outcome, VisionConfig, VisionError, VisionHandle, init_backend,
};

fn ort_settings() -> BackendSettings {
    BackendSettings {
        backend: BackendKind::OnnxRuntime,
        library_path: None,
        on_load_failure: OnLoadFailure::Refuse,
    }
}

fn setup() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if std::env::var_os("HUB_VISION_TRACT_CHILD").is_some() {
            return;
        }
        match init_backend(&ort_settings()) {
            Ok(active) => assert_eq!(active.kind, BackendKind::OnnxRuntime),
            Err(e) => {
                panic!("ONNX Runtime is required for these tests and could not be loaded: {e}")
            }
        }
    });
}

fn classifier() -> Classifier {
    setup();
    Classifier::load(
        &manifest_path(),
        &ModelOptions { intra_threads: 1 },
        DecodeLimits::default(),
    )
    .unwrap_or_else(|e| panic!("loading the shipped model failed: {e}"))
}

#[test]
fn orange_and_fruits_pass_the_orange_sku() {
    let mut c = classifier();
    for name in ["orange.jpg", "fruits.jpg"] {
        let report = c.check_bytes(&image(name), &orange_rule(), None).unwrap();
        assert_eq!(
            report.verdict.outcome,
            Outcome::Pass,
            "{name}: {:#?}",
            report.evidence
        );
        assert!(
            matches!(report.evidence.top_k[0].class_id, 950 | 951),
            "{name}: {:?}",
            report.evidence.top_k
        );
    }
}

#[test]
fn twelve_megapixel_photos_read_from_dc_give_the_same_verdict() {
    // Photos of 8x the model input and more are read at 1/8 scale from DC coefficients by
    // the hub's own reader; the verdict and top class must be those of the original photo.
    let mut c = classifier();
    for (name, seed) in [("orange.jpg", 1), ("fruits.jpg", 2)] {
        let original = c.check_bytes(&image(name), &orange_rule(), None).unwrap();
        let big = make_bench_photo(
            &images_dir().join(name),
            4000,
            3000,
            seed,
            &PhotoStyle::CAMERA,
        )
        .unwrap();
        let report = c.check_bytes(&big, &orange_rule(), None).unwrap();
        let e = &report.evidence;
        assert_eq!(e.photo_size, (4000, 3000));
        assert_eq!(e.dct_scale_denominator, 8);
        assert_eq!(e.pixel_decoder, hub_vision::PixelDecoder::JpegDcOnly);
        assert_eq!(report.verdict.outcome, Outcome::Pass, "{name}: {e:#?}");
        // fruits.jpg is a near tie between orange and lemon, so compare the leading pair
        // and the probability the rule adds up, not the order within the pair.
        let top2 = |p: &[hub_vision::Prediction]| {
            let mut ids = [p[0].class_id, p[1].class_id];
            ids.sort_unstable();
            ids
        };
        assert_eq!(
            top2(&e.top_k),
            top2(&original.evidence.top_k),
            "{name}: {:?} vs {:?}",
            e.top_k,
            original.evidence.top_k
        );
        let drift = (e.expected_probability - original.evidence.expected_probability).abs();
        assert!(
            drift < 0.1,
            "{name}: expected-class probability moved by {drift}"
        );
    }
}

#[test]
fn the_dc_reader_gives_libjpeg_turbo_s_answer_on_camera_subsampling() {
    // Every test photo upscaled to a 12 MP-class size and encoded as cameras do (4:2:0, 4:2:2)
    // and at 4:4:4: the DC-only reader must give the model's answer that libjpeg-turbo gives
    // at the same 1/8 scale: the same top class, and each of libjpeg-turbo's top five within
    // 0.02 of its probability.
    let mut dc = classifier();
    let mut turbo = classifier();
    turbo.set_dc_reader(false);
    // Evidence lists the rule's top_k: 20 classes, to find libjpeg-turbo's five in them.
    let rule = hub_vision::SkuRule {
        top_k: 20,
        ..orange_rule()
    };
    for (name, (width, height)) in [
        ("orange.jpg", (4000, 3000)),
        ("fruits.jpg", (4032, 3024)),
        ("baboon.jpg", (4000, 3008)),
    ] {
        let upright = camera_like_pixels(&images_dir().join(name), width, height, 7).unwrap();
        for subsampling in [Subsampling::S420, Subsampling::S422, Subsampling::S444] {
            let style = PhotoStyle {
                subsampling,
                ..PhotoStyle::CAMERA
            };
            let jpeg = encode_photo(&upright, &style).unwrap();
            let fast = dc.check_bytes(&jpeg, &rule, None).unwrap().evidence;
            let reference = turbo.check_bytes(&jpeg, &rule, None).unwrap().evidence;
            let case = format!("{name} {subsampling:?}");
            assert_eq!(fast.dct_scale_denominator, 8, "{case}");
            assert_eq!(reference.dct_scale_denominator, 8, "{case}");
            assert_eq!(
                fast.pixel_decoder,
                hub_vision::PixelDecoder::JpegDcOnly,
                "{case}"
            );
            assert_eq!(
                reference.pixel_decoder,
                hub_vision::PixelDecoder::LibjpegTurbo,
                "{case}"
            );
            assert_eq!(
                fast.top_k[0].class_id, reference.top_k[0].class_id,
                "{case}: {:?} vs {:?}",
                fast.top_k, reference.top_k
            );
            for want in &reference.top_k[..5] {
                let got = fast
                    .top_k
                    .iter()
                    .find(|p| p.class_id == want.class_id)
                    .unwrap_or_else(|| panic!("{case}: class {} left the top 20", want.class_id));
                assert!(
                    (got.probability - want.probability).abs() <= 0.02,
                    "{case}: class {} at {} vs libjpeg-turbo's {}",
                    want.class_id,
                    got.probability,
                    want.probability
                );
            }
            assert_eq!(fast.outcome, reference.outcome, "{case}");
        }
    }
}

#[test]
fn baboon_passes_no_produce_sku() {
    let mut c = classifier();
    let bytes = image("baboon.jpg");
    for rule in produce_rules() {
        let report = c.check_bytes(&bytes, &rule, None).unwrap();
        assert_ne!(
            report.verdict.outcome,
            Outcome::Pass,
            "{}: {:?}",
            rule.sku,
            report.evidence.top_k
        );
    }
    let report = c.check_bytes(&bytes, &orange_rule(), None).unwrap();
    assert_eq!(report.evidence.top_k[0].label, "baboon");
    assert_eq!(report.verdict.outcome, Outcome::Fail);
    // Without allow_model_reject the model alone cannot reject.
    let lenient = hub_vision::SkuRule {
        allow_model_reject: false,
        ..orange_rule()
    };
    assert_eq!(
        c.check_bytes(&bytes, &lenient, None)
            .unwrap()
            .verdict
            .outcome,
        Outcome::NeedsReview
    );
}

#[test]
fn evidence_records_photo_model_backend_and_timings() {
    let mut c = classifier();
    let dir = tempfile::tempdir().unwrap();
    let bytes = image("orange.jpg");
    let stored = dir.path().join("orange.jpg");
    std::fs::write(&stored, &bytes).unwrap();
    let report = c
        .check_bytes(&bytes, &orange_rule(), Some(stored.clone()))
        .unwrap();
    let e = &report.evidence;
    assert_eq!(e.photo_sha256, hub_vision::sha256_hex(&bytes));
    assert_eq!(e.photo_path.as_ref(), Some(&stored));
    assert_eq!(
        e.model_sha256,
        "5f4fce55a9a273926628970e0fb1491f91179e95bc595b0fea3289e5e3df4559"
    );
    assert_eq!(e.backend, BackendKind::OnnxRuntime);
    assert_eq!(e.backend_version.as_deref(), Some("1.31.1"));
    assert_eq!(e.top_k.len(), 5);
    assert!(
        e.top_k
            .windows(2)
            .all(|w| w[0].probability >= w[1].probability)
    );
    assert!(e.timings.infer_ms > 0.0 && e.timings.total_ms >= e.timings.infer_ms);
    assert_eq!(e.photo_size, (512, 512));
    let json = serde_json::to_value(e).unwrap();
    assert_eq!(json["backend"], "onnxruntime");
    assert_eq!(json["outcome"], "pass");
    assert!(json["thresholds"]["min_probability"].is_number());
}

#[test]
fn missing_truncated_and_non_image_files_are_typed_errors() {
    let mut c = classifier();
    let err = c
        .check_file(&PathBuf::from("/nonexistent/photo.jpg"), &orange_rule())
        .unwrap_err();
    assert!(matches!(err, VisionError::PhotoRead { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/photo.jpg"), "{err}");

    let full = image("fruits.jpg");
    for cut in [3usize, 20, 200, full.len() / 2] {
        let err = c
            .check_bytes(&full[..cut], &orange_rule(), None)
            .unwrap_err();
        assert!(
            matches!(err, VisionError::CorruptImage { format: "JPEG", .. }),
            "cut at {cut}: {err}"
        );
    }
    let err = c
        .check_bytes(b"hello, this is a text file", &orange_rule(), None)
        .unwrap_err();
    assert!(
        matches!(err, VisionError::UnsupportedFormat { .. }),
        "{err}"
    );
    let err = c.check_bytes(b"", &orange_rule(), None).unwrap_err();
    assert!(
        matches!(err, VisionError::UnsupportedFormat { .. }),
        "{err}"
    );
    let png = png_header_claiming(64, 64);
    let err = c.check_bytes(&png, &orange_rule(), None).unwrap_err();
    assert!(
        matches!(err, VisionError::CorruptImage { format: "PNG", .. }),
        "{err}"
    );
}

#[test]
fn decompression_bombs_are_refused_from_the_header() {
    let mut c = classifier();
    let png = png_header_claiming(60_000, 60_000);
    assert!(png.len() < 64);
    let err = c.check_bytes(&png, &orange_rule(), None).unwrap_err();
    assert!(
        matches!(
            err,
            VisionError::TooLarge {
                width: 60_000,
                height: 60_000,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("decompression bomb"), "{err}");
    let jpeg = jpeg_claiming(60_000, 60_000);
    let err = c.check_bytes(&jpeg, &orange_rule(), None).unwrap_err();
    assert!(
        matches!(
            err,
            VisionError::TooLarge {
                width: 60_000,
                height: 60_000,
                ..
            }
        ),
        "{err}"
    );
}

fn write_manifest(edit: impl Fn(String) -> String) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let models = repo_root().join("models");
    let text = std::fs::read_to_string(manifest_path())
        .unwrap()
        .replace(
            "file = \"efficientnet-lite0.onnx\"",
            &format!(
                "file = {:?}",
                models.join("efficientnet-lite0.onnx").display().to_string()
            ),
        )
        .replace(
            "labels = \"imagenet-labels.txt\"",
            &format!(
                "labels = {:?}",
                models.join("imagenet-labels.txt").display().to_string()
            ),
        );
    let path = dir.path().join("model.toml");
    std::fs::write(&path, edit(text)).unwrap();
    (dir, path)
}

#[test]
fn manifest_shape_mismatch_names_the_difference() {
    setup();
    let (_dir, path) =
        write_manifest(|t| t.replace("shape = [1, 3, 224, 224]", "shape = [1, 3, 256, 256]"));
    let err =
        Classifier::load(&path, &ModelOptions::default(), DecodeLimits::default()).unwrap_err();
    assert!(
        matches!(err, VisionError::ModelSignatureMismatch { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains(
            "model input 'input' has shape [1,3,224,224] but manifest says [1,3,256,256]"
        ),
        "{err}"
    );
    let (_dir, path) = write_manifest(|t| t.replace("name = \"logits\"", "name = \"probs\""));
    let err =
        Classifier::load(&path, &ModelOptions::default(), DecodeLimits::default()).unwrap_err();
    assert!(err.to_string().contains("no output named 'probs'"), "{err}");
}

#[test]
fn wrong_model_hash_is_refused() {
    setup();
    let (_dir, path) = write_manifest(|t| t.replace("5f4fce55a9a2", "000000000000"));
    let err =
        Classifier::load(&path, &ModelOptions::default(), DecodeLimits::default()).unwrap_err();
    match &err {
        VisionError::ModelHashMismatch { actual, .. } => {
            assert_eq!(
                actual,
                "5f4fce55a9a273926628970e0fb1491f91179e95bc595b0fea3289e5e3df4559"
            )
        }
        other => panic!("expected a hash mismatch, got {other}"),
    }
    // A manifest that parses badly names the file.
    let (_dir, path) = write_manifest(|t| t.replace("kind = \"logits\"", "kind = \"scores\""));
    let err = ModelManifest::from_file(&path).unwrap_err();
    assert!(
        matches!(err, VisionError::Manifest { .. }) && err.to_string().contains("model.toml"),
        "{err}"
    );
}

#[test]
fn backend_choice_is_once_per_process() {
    setup();
    assert_eq!(
        init_backend(&ort_settings()).unwrap().kind,
        BackendKind::OnnxRuntime
    );
    let tract = BackendSettings {
        backend: BackendKind::Tract,
        ..ort_settings()
    };
    let err = init_backend(&tract).unwrap_err();
    assert!(
        matches!(err, VisionError::BackendAlreadySet { .. }),
        "{err}"
    );
}

/// The nice value of this process's thread named `name` (Linux `/proc`), if there is one.
fn nice_of_thread(name: &str) -> Option<i64> {
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            // Fields after the command's closing parenthesis; nice is field 19 of stat.
            let rest = stat.rsplit_once(')')?.1;
            return rest.split_whitespace().nth(16)?.parse().ok();
        }
    }
    None
}

#[test]
fn a_daemons_inference_thread_runs_at_the_nice_value_it_was_given() {
    setup();
    let mut config = VisionConfig::new(manifest_path());
    config.model.intra_threads = 1;
    config.nice = Some(7);
    let (handle, worker) = VisionHandle::start(&config).unwrap();
    let ours = nice_of_thread("hub-vision");
    let report = handle
        .check_blocking(image("orange.jpg"), orange_rule(), None)
        .unwrap();
    assert_eq!(report.verdict.outcome, Outcome::Pass);
    drop(handle);
    worker.join().unwrap();
    // Other tests' inference threads keep the caller's priority; this one is 7 above it.
    let caller: i64 = {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        stat.rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .nth(16)
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(ours, Some((caller + 7).min(19)));
}

#[test]
fn vision_handle_async_and_blocking() {
    setup();
    let mut config = VisionConfig::new(manifest_path());
    config.model.intra_threads = 1;
    config.queue_capacity = 2;
    let (handle, worker) = VisionHandle::start(&config).unwrap();
    assert_eq!(handle.model_info().backend, BackendKind::OnnxRuntime);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let h = handle.clone();
    let reports = rt.block_on(async move {
        let (orange, rule) = (image("orange.jpg"), orange_rule());
        let a = h.check_bytes(&orange, &rule);
        let b = h.check(image("fruits.jpg"), orange_rule(), None);
        let c = h.check(b"junk".to_vec(), orange_rule(), None);
        tokio::join!(a, b, c)
    });
    assert_eq!(reports.0.unwrap().verdict.outcome, Outcome::Pass);
    assert_eq!(reports.1.unwrap().verdict.outcome, Outcome::Pass);
    assert!(matches!(
        reports.2,
        Err(VisionError::UnsupportedFormat { .. })
    ));
    let blocking = handle
        .check_blocking(image("baboon.jpg"), orange_rule(), None)
        .unwrap();
    assert_eq!(blocking.verdict.outcome, Outcome::Fail);
    drop(handle);
    worker.join().unwrap();

    let bad = VisionConfig::new("/nonexistent/model.toml");
    let err = VisionHandle::start(&bad).unwrap_err();
    assert!(matches!(err, VisionError::Manifest { .. }), "{err}");
}

/// Top-1 class per test image, printed by the tract child process below.
fn top1_lines(c: &mut Classifier) -> Vec<String> {
    ["orange.jpg", "fruits.jpg", "baboon.jpg"]
        .iter()
        .map(|name| {
            let report = c.check_bytes(&image(name), &orange_rule(), None).unwrap();
            format!("TOP1 {name} {}", report.evidence.top_k[0].class_id)
        })
        .collect()
}

#[test]
fn onnxruntime_and_tract_agree_on_the_top_class() {
    let mut c = classifier();
    let ort_lines = top1_lines(&mut c);
    // The backend is process-wide: tract runs in a child process of its own.
    let images: Vec<PathBuf> = ["orange.jpg", "fruits.jpg", "baboon.jpg"]
        .iter()
        .map(|n| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("testdata/images")
                .join(n)
        })
        .collect();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vision-top1"))
        .arg("tract")
        .arg(manifest_path())
        .args(&images)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tract child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tract_lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    assert_eq!(tract_lines, ort_lines);
}

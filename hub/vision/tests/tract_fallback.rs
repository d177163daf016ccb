//! Integration tests on the tract backend, reached the way a box without ONNX Runtime reaches
//! it: ONNX Runtime is asked for at a path that does not exist. With `refuse` that is a clear
//! start-up error; with `fallback_to_tract` tract becomes this process's backend.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use common::*;
use hub_vision::{
    ActiveBackend, BackendKind, BackendSettings, Classifier, DecodeLimits, ModelOptions,
    OnLoadFailure, Outcome, VisionError, init_backend,
};

const MISSING: &str = "/nonexistent/hub/libonnxruntime.so.1.31.1";

struct Setup {
    refuse_error: String,
    refuse_was_runtime_library_error: bool,
    fallback: ActiveBackend,
}

/// Runs both start-up attempts once, in order, for every test of this process.
fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let refuse = BackendSettings {
            backend: BackendKind::OnnxRuntime,
            library_path: Some(PathBuf::from(MISSING)),
            on_load_failure: OnLoadFailure::Refuse,
        };
        let err = init_backend(&refuse).expect_err("a missing library with refuse must fail");
        assert!(
            hub_vision::active_backend().is_none(),
            "a refused start must not set a backend"
        );
        let fallback = init_backend(&BackendSettings {
            on_load_failure: OnLoadFailure::FallbackToTract,
            ..refuse
        })
        .expect("fallback to tract must succeed");
        Setup {
            refuse_was_runtime_library_error: matches!(err, VisionError::RuntimeLibrary { .. }),
            refuse_error: err.to_string(),
            fallback,
        }
    })
}

#[test]
fn missing_runtime_library_with_refuse_is_a_clear_error() {
    let s = setup();
    assert!(s.refuse_was_runtime_library_error, "{}", s.refuse_error);
    assert!(s.refuse_error.contains(MISSING), "{}", s.refuse_error);
    assert!(
        s.refuse_error.contains("does not exist"),
        "{}",
        s.refuse_error
    );
    assert!(
        s.refuse_error.contains("fetch-onnxruntime.sh"),
        "{}",
        s.refuse_error
    );
}

#[test]
fn missing_runtime_library_with_fallback_activates_tract() {
    let s = setup();
    assert_eq!(s.fallback.kind, BackendKind::Tract);
    let reason = s.fallback.fallback_reason.as_deref().unwrap_or_default();
    assert!(reason.contains(MISSING), "{reason}");
}

#[test]
fn tract_passes_orange_and_fruits_and_not_baboon() {
    setup();
    let mut c = Classifier::load(
        &manifest_path(),
        &ModelOptions::default(),
        DecodeLimits::default(),
    )
    .unwrap();
    assert_eq!(c.model().backend(), BackendKind::Tract);
    for name in ["orange.jpg", "fruits.jpg"] {
        let report = c.check_bytes(&image(name), &orange_rule(), None).unwrap();
        assert_eq!(
            report.verdict.outcome,
            Outcome::Pass,
            "{name}: {:?}",
            report.evidence.top_k
        );
        assert_eq!(report.evidence.backend, BackendKind::Tract);
    }
    let baboon = image("baboon.jpg");
    for rule in produce_rules() {
        let report = c.check_bytes(&baboon, &rule, None).unwrap();
        assert_ne!(
            report.verdict.outcome,
            Outcome::Pass,
            "{}: {:?}",
            rule.sku,
            report.evidence.top_k
        );
    }
}

//! `vision-top1 BACKEND MANIFEST IMAGE…`: prints `TOP1 <file name> <class id>` for each image
//! with the given backend (`onnxruntime` or `tract`).
//!
//! The inference backend is chosen once per process, so comparing the two backends needs two
//! processes; the agreement test runs this binary once per backend.

use hub_vision::{
    BackendKind, BackendSettings, Classifier, DecodeLimits, ExpectedLabel, ModelOptions,
    OnLoadFailure, SkuRule, init_backend,
};
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: vision-top1 onnxruntime|tract MANIFEST IMAGE...";
    let backend = match args.next().as_deref() {
        Some("onnxruntime") => BackendKind::OnnxRuntime,
        Some("tract") => BackendKind::Tract,
        _ => return Err(usage.into()),
    };
    let manifest = args.next().ok_or(usage)?;
    init_backend(&BackendSettings {
        backend,
        library_path: None,
        on_load_failure: OnLoadFailure::Refuse,
    })?;
    let mut classifier = Classifier::load(
        Path::new(&manifest),
        &ModelOptions::default(),
        DecodeLimits::default(),
    )?;
    // The rule does not change the top class; any rule will do.
    let rule = SkuRule {
        sku: "any".into(),
        expected: vec![ExpectedLabel::Id(950)],
        top_k: 5,
        min_probability: 0.2,
        allow_model_reject: false,
    };
    for image in args {
        let bytes = std::fs::read(&image).map_err(|e| format!("cannot read {image}: {e}"))?;
        let report = classifier.check_bytes(&bytes, &rule, None)?;
        let name = Path::new(&image)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or(image.clone());
        let top = report
            .evidence
            .top_k
            .first()
            .ok_or("the model returned no classes")?;
        println!("TOP1 {name} {}", top.class_id);
    }
    Ok(())
}

//! `hub check-image`: one acceptance check from the command line, and the vision start-up
//! shared with the other commands.

use super::*;

/// Starts the vision adapter when `[vision]` enables it (backend first, then the model).
pub(super) fn start_vision_if_enabled(
    settings: &crate::vision::VisionSettings,
) -> Result<Option<crate::vision::VisionService>, Failure> {
    if !settings.enabled {
        return Ok(None);
    }
    Ok(Some(crate::vision::start(settings)?))
}

pub(super) struct CheckImageArgs {
    pub(super) file: PathBuf,
    pub(super) sku: String,
    pub(super) config: Option<PathBuf>,
    pub(super) expect: Vec<String>,
    pub(super) min_probability: f32,
    pub(super) allow_model_reject: bool,
    pub(super) json: bool,
}

pub(super) fn check_image(
    args: CheckImageArgs,
    format: Option<LogFormatArg>,
) -> Result<Exit, Failure> {
    use hub_vision::{ExpectedLabel, Outcome, SkuRule};
    let config = args.config.as_deref().map(Config::load).transpose()?;
    match &config {
        Some(c) => telemetry::init("warn", log_format(format, Some(c))),
        None => telemetry::init("warn", log_format(format, None)),
    }
    let settings = config
        .as_ref()
        .map(|c| c.vision.clone())
        .unwrap_or_default();
    let rule = if args.expect.is_empty() {
        settings.rule_for(&args.sku).cloned().ok_or_else(|| Failure {
            code: Exit::Invalid,
            error: anyhow::anyhow!(
                "no vision rule for SKU {}: give --expect (class ids or label names, e.g. --expect 950,951) or add a [[vision.rules]] entry to the config",
                args.sku
            ),
        })?
    } else {
        SkuRule {
            sku: args.sku.clone(),
            expected: args
                .expect
                .iter()
                .map(|e| match e.trim().parse::<u32>() {
                    Ok(id) => ExpectedLabel::Id(id),
                    Err(_) => ExpectedLabel::Name(e.trim().to_owned()),
                })
                .collect(),
            top_k: 5,
            min_probability: args.min_probability,
            allow_model_reject: args.allow_model_reject,
        }
    };
    rule.validate().map_err(|e| Failure {
        code: Exit::Invalid,
        error: e.into(),
    })?;
    let bytes = std::fs::read(&args.file)
        .map_err(|e| anyhow::anyhow!("cannot read photo {}: {e}", args.file.display()))?;
    let vision = crate::vision::start(&settings)?;
    let result = vision
        .handle
        .check_blocking(bytes, rule, Some(args.file.clone()));
    let backend = vision.backend.clone();
    vision.stop();
    let report =
        result.map_err(|e| anyhow::anyhow!("cannot check {}: {e}", args.file.display()))?;
    let e = &report.evidence;
    if args.json {
        print_json(e)?;
    } else {
        println!("{}: {:?} for SKU {}", args.file.display(), e.outcome, e.sku);
        for reason in &e.reasons {
            println!("  reason: {reason}");
        }
        for p in &e.top_k {
            println!(
                "  {:>6.1}%  #{:<4} {}",
                p.probability * 100.0,
                p.class_id,
                p.label
            );
        }
        println!(
            "  model {} ({}), backend {backend}, {:.1} ms",
            e.model_name,
            &e.model_sha256[..e.model_sha256.len().min(12)],
            e.timings.total_ms
        );
    }
    Ok(if e.outcome == Outcome::Pass {
        Exit::Ok
    } else {
        Exit::Refused
    })
}

/// A folder named `rel` in the current directory, the executable's folder, or any parent.
pub(super) fn find_upwards(rel: &str) -> Option<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(std::path::Path::to_owned));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(std::path::Path::to_owned))
    {
        roots.extend(dir.ancestors().map(std::path::Path::to_owned));
    }
    roots.into_iter().map(|r| r.join(rel)).find(|p| p.is_dir())
}

//! `[vision]`: the image model's backend, model, limits, per-SKU rules, and the photo sources
//! (a camera's spool folder, MQTT photo topics) of receiving stations.

use super::problems::{Problems, int_in};
use hub_vision::{
    BackendKind, BackendSettings, DecodeLimits, ExpectedLabel, OnLoadFailure, SkuRule,
};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Photos dropped into a folder by an IP camera, for one receiving station.
#[derive(Debug, Clone, PartialEq)]
pub struct SpoolSource {
    /// The folder watched; processed photos move to `done/` or `rejected/` inside it.
    pub dir: PathBuf,
    /// The receiving station whose selected line the photos are for.
    pub station: String,
    /// How often the folder is listed.
    pub poll_interval: Duration,
}

/// Photos published over MQTT for one receiving station: each message on `topic` (on the local
/// device broker, `[device_broker]`) is one JPEG or PNG file, raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoTopic {
    pub station: String,
    pub topic: String,
}

/// The validated `[vision]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct VisionSettings {
    pub enabled: bool,
    /// Backend wanted, library and what to do when ONNX Runtime cannot be loaded.
    pub backend: BackendSettings,
    /// Model manifest; `None` means the shipped model, found by [`default_manifest`].
    pub model_manifest: Option<PathBuf>,
    /// Intra-op threads for inference.
    pub threads: usize,
    /// Photos that may wait for the inference thread.
    pub queue_capacity: usize,
    pub limits: DecodeLimits,
    /// Acceptance rules per SKU.
    pub rules: Vec<SkuRule>,
    pub spool: Option<SpoolSource>,
    /// MQTT topics carrying photos, one per station.
    pub photo_topics: Vec<PhotoTopic>,
    /// The config file's folder, where the shipped model is looked for first.
    pub config_dir: Option<PathBuf>,
}

impl Default for VisionSettings {
    /// Vision off; ONNX Runtime with fallback to tract; the shipped model; no rules.
    fn default() -> Self {
        VisionSettings {
            enabled: false,
            backend: BackendSettings {
                backend: BackendKind::OnnxRuntime,
                library_path: None,
                on_load_failure: OnLoadFailure::FallbackToTract,
            },
            model_manifest: None,
            threads: 1,
            queue_capacity: 8,
            limits: DecodeLimits::default(),
            rules: Vec::new(),
            spool: None,
            photo_topics: Vec::new(),
            config_dir: None,
        }
    }
}

impl VisionSettings {
    /// The rule for a SKU, if the config has one.
    pub fn rule_for(&self, sku: &str) -> Option<&SkuRule> {
        self.rules.iter().find(|r| r.sku == sku)
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawVision {
    enabled: Option<bool>,
    backend: Option<String>,
    library_path: Option<PathBuf>,
    on_load_failure: Option<String>,
    model_manifest: Option<PathBuf>,
    threads: Option<i64>,
    queue_capacity: Option<i64>,
    max_side: Option<i64>,
    max_file_mb: Option<i64>,
    max_decoded_mb: Option<i64>,
    spool_dir: Option<PathBuf>,
    spool_station: Option<String>,
    spool_poll_ms: Option<i64>,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    photo_topics: Vec<RawPhotoTopic>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhotoTopic {
    station: String,
    topic: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    sku: String,
    expected: Vec<ExpectedLabel>,
    top_k: Option<i64>,
    min_probability: Option<f64>,
    allow_model_reject: Option<bool>,
}

/// A `[vision] backend` (or `HUB_VISION_BACKEND`) that names no backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a backend; use \"onnxruntime\" or \"tract\"")]
pub struct UnknownBackend(pub String);

pub fn parse_backend(text: &str) -> Result<BackendKind, UnknownBackend> {
    match text {
        "onnxruntime" => Ok(BackendKind::OnnxRuntime),
        "tract" => Ok(BackendKind::Tract),
        other => Err(UnknownBackend(other.to_owned())),
    }
}

/// Validates `[vision]`; relative paths are resolved against `base_dir` (the config's folder).
pub fn validate(raw: RawVision, base_dir: &Path, problems: &mut Problems) -> VisionSettings {
    let defaults = VisionSettings::default();
    let resolve = |p: PathBuf| if p.is_relative() { base_dir.join(p) } else { p };
    let backend = match raw.backend.as_deref().map(parse_backend) {
        None => BackendKind::OnnxRuntime,
        Some(Ok(b)) => b,
        Some(Err(e)) => {
            problems.push("vision.backend", e.to_string());
            BackendKind::OnnxRuntime
        }
    };
    let on_load_failure = match raw.on_load_failure.as_deref() {
        None | Some("fallback_to_tract") => OnLoadFailure::FallbackToTract,
        Some("refuse") => OnLoadFailure::Refuse,
        Some(other) => {
            problems.push(
                "vision.on_load_failure",
                format!("'{other}' is not a choice; use \"fallback_to_tract\" or \"refuse\""),
            );
            OnLoadFailure::FallbackToTract
        }
    };
    let mb = |v: Option<i64>, default: u64, max: i64, path: &str, problems: &mut Problems| {
        int_in(v, (default >> 20) as usize, 1, max, path, problems) as u64 * 1024 * 1024
    };
    let limits = DecodeLimits {
        max_side: int_in(
            raw.max_side,
            defaults.limits.max_side as usize,
            224,
            65_535,
            "vision.max_side",
            problems,
        ) as u32,
        max_file_bytes: mb(
            raw.max_file_mb,
            defaults.limits.max_file_bytes,
            1024,
            "vision.max_file_mb",
            problems,
        ),
        max_decoded_bytes: mb(
            raw.max_decoded_mb,
            defaults.limits.max_decoded_bytes,
            4096,
            "vision.max_decoded_mb",
            problems,
        ),
    };
    let mut rules: Vec<SkuRule> = Vec::new();
    for (i, r) in raw.rules.into_iter().enumerate() {
        let path = format!("vision.rules[{i}]");
        let min_probability = match r.min_probability {
            None => 0.2,
            Some(p) if p.is_finite() && (0.0..=1.0).contains(&p) => p as f32,
            Some(p) => {
                problems.push(
                    format!("{path}.min_probability"),
                    format!("{p} is out of range 0..=1"),
                );
                0.2
            }
        };
        let rule = SkuRule {
            sku: r.sku,
            expected: r.expected,
            top_k: int_in(r.top_k, 5, 1, 1000, &format!("{path}.top_k"), problems),
            min_probability,
            allow_model_reject: r.allow_model_reject.unwrap_or(false),
        };
        if let Err(e) = rule.validate() {
            problems.push(format!("{path}.expected"), e.to_string());
        }
        if rules.iter().any(|other| other.sku == rule.sku) {
            problems.push(
                format!("{path}.sku"),
                format!("a rule for SKU '{}' is already defined", rule.sku),
            );
        }
        rules.push(rule);
    }
    let spool = match (raw.spool_dir, raw.spool_station) {
        (None, None) => None,
        (Some(dir), Some(station)) if !station.trim().is_empty() => Some(SpoolSource {
            dir: resolve(dir),
            station,
            poll_interval: Duration::from_millis(int_in(
                raw.spool_poll_ms,
                500,
                50,
                60_000,
                "vision.spool_poll_ms",
                problems,
            ) as u64),
        }),
        (Some(_), _) => {
            problems.push(
                "vision.spool_station",
                "missing; the receiving station whose selected line spooled photos are for",
            );
            None
        }
        (None, Some(_)) => {
            problems.push(
                "vision.spool_dir",
                "missing; the folder the camera drops photos into (or remove spool_station)",
            );
            None
        }
    };
    let mut photo_topics: Vec<PhotoTopic> = Vec::new();
    for (i, t) in raw.photo_topics.into_iter().enumerate() {
        let path = format!("vision.photo_topics[{i}]");
        if t.station.trim().is_empty() {
            problems.push(format!("{path}.station"), "is empty");
        }
        if t.topic.is_empty() || t.topic.contains(['+', '#', '\0']) {
            problems.push(
                format!("{path}.topic"),
                format!(
                    "'{}' is not a topic to subscribe to: give one exact topic, without + or # wildcards",
                    t.topic
                ),
            );
        } else if let Some(other) = photo_topics.iter().find(|o| o.topic == t.topic) {
            problems.push(
                format!("{path}.topic"),
                format!(
                    "'{}' is already used for station '{}'",
                    t.topic, other.station
                ),
            );
        }
        photo_topics.push(PhotoTopic {
            station: t.station,
            topic: t.topic,
        });
    }
    VisionSettings {
        enabled: raw.enabled.unwrap_or(false),
        backend: BackendSettings {
            backend,
            library_path: raw.library_path.map(resolve),
            on_load_failure,
        },
        model_manifest: raw.model_manifest.map(resolve),
        threads: int_in(raw.threads, 1, 1, 64, "vision.threads", problems),
        queue_capacity: int_in(
            raw.queue_capacity,
            8,
            1,
            1024,
            "vision.queue_capacity",
            problems,
        ),
        limits,
        rules,
        spool,
        photo_topics,
        config_dir: Some(base_dir.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<VisionSettings, Vec<String>> {
        let table: toml::Table = text.parse().unwrap();
        let mut problems = Problems::default();
        let raw: RawVision = super::super::problems::section(&table, "vision", &mut problems);
        let v = validate(raw, Path::new("/etc/hub"), &mut problems);
        if problems.is_empty() {
            Ok(v)
        } else {
            Err(problems.list().iter().map(|p| p.to_string()).collect())
        }
    }

    #[test]
    fn full_section_validates() {
        let v = parse(
            r#"[vision]
enabled = true
backend = "tract"
on_load_failure = "refuse"
model_manifest = "models/m.toml"
spool_dir = "/var/spool/hub/photos"
spool_station = "dock-1"
[[vision.rules]]
sku = "ORANGE-5KG"
expected = [950, "lemon"]
min_probability = 0.3
"#,
        )
        .unwrap();
        assert!(v.enabled);
        assert_eq!(v.backend.backend, BackendKind::Tract);
        assert_eq!(v.backend.on_load_failure, OnLoadFailure::Refuse);
        assert_eq!(
            v.model_manifest,
            Some(PathBuf::from("/etc/hub/models/m.toml"))
        );
        let rule = v.rule_for("ORANGE-5KG").unwrap();
        assert_eq!(
            rule.expected,
            vec![ExpectedLabel::Id(950), ExpectedLabel::Name("lemon".into())]
        );
        assert_eq!(rule.top_k, 5);
        assert!(!rule.allow_model_reject);
        assert_eq!(v.spool.unwrap().station, "dock-1");
    }

    #[test]
    fn photo_topics_are_exact_topics_one_per_station() {
        let v = parse(
            r#"[vision]
[[vision.photo_topics]]
station = "dock-1"
topic = "hub/v1/s1/local/cameras/dock-1/photo"
[[vision.photo_topics]]
station = "dock-2"
topic = "hub/v1/s1/local/cameras/dock-2/photo"
"#,
        )
        .unwrap();
        assert_eq!(
            v.photo_topics,
            vec![
                PhotoTopic {
                    station: "dock-1".into(),
                    topic: "hub/v1/s1/local/cameras/dock-1/photo".into()
                },
                PhotoTopic {
                    station: "dock-2".into(),
                    topic: "hub/v1/s1/local/cameras/dock-2/photo".into()
                },
            ]
        );
        let problems = parse(
            r#"[vision]
[[vision.photo_topics]]
station = ""
topic = "cams/+/photo"
[[vision.photo_topics]]
station = "a"
topic = "cams/a"
[[vision.photo_topics]]
station = "b"
topic = "cams/a"
"#,
        )
        .unwrap_err();
        let text = problems.join("\n");
        assert!(
            text.contains("vision.photo_topics[0].station: is empty"),
            "{text}"
        );
        assert!(
            text.contains("vision.photo_topics[0].topic: 'cams/+/photo' is not a topic"),
            "{text}"
        );
        assert!(
            text.contains("vision.photo_topics[2].topic: 'cams/a' is already used"),
            "{text}"
        );
        assert_eq!(problems.len(), 3, "{text}");
    }

    #[test]
    fn problems_carry_key_paths() {
        let problems = parse(
            r#"[vision]
backend = "cuda"
on_load_failure = "panic"
spool_dir = "x"
[[vision.rules]]
sku = "A"
expected = []
min_probability = 2.0
"#,
        )
        .unwrap_err();
        let text = problems.join("\n");
        for path in [
            "vision.backend",
            "vision.on_load_failure",
            "vision.spool_station",
            "vision.rules[0].min_probability",
            "vision.rules[0].expected",
        ] {
            assert!(text.contains(path), "{path} missing in:\n{text}");
        }
        let unknown = parse("[vision]\nbackend_name = \"tract\"\n").unwrap_err();
        assert!(unknown[0].starts_with("vision:"), "{unknown:?}");
    }
}

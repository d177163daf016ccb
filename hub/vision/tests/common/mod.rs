//! Shared helpers for the integration tests: paths of the shipped model and test images, SKU
//! rules, and file builders for bad inputs. Each test file is its own process, so each can choose
//! its own process-wide backend.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::PathBuf;

use hub_vision::{ExpectedLabel, SkuRule};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn manifest_path() -> PathBuf {
    repo_root().join("models/efficientnet-lite0.toml")
}

pub fn images_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/images")
}

pub fn image(name: &str) -> Vec<u8> {
    let path = images_dir().join(name);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("cannot read test image {}: {e}", path.display()))
}

/// Orange SKU: ImageNet 950 orange or 951 lemon in the top 5 with combined p >= 0.2.
/// orange.jpg gives 950 at p ~ 0.27 (plus lemon), fruits.jpg 950/951 ~ 0.46 each.
pub fn orange_rule() -> SkuRule {
    SkuRule {
        sku: "ORANGE-1KG".into(),
        expected: vec![ExpectedLabel::Id(950), ExpectedLabel::Name("lemon".into())],
        top_k: 5,
        min_probability: 0.2,
        allow_model_reject: true,
    }
}

/// Every produce class of ImageNet the shipped model knows, one SKU rule each.
pub fn produce_rules() -> Vec<SkuRule> {
    [
        936u32, 937, 938, 939, 943, 945, 947, 948, 949, 950, 951, 952, 953, 954, 957, 987,
    ]
    .iter()
    .map(|&id| SkuRule {
        sku: format!("PRODUCE-{id}"),
        expected: vec![ExpectedLabel::Id(id)],
        top_k: 5,
        min_probability: 0.2,
        allow_model_reject: true,
    })
    .collect()
}

/// A valid PNG header (signature + IHDR) that claims `w`x`h` RGB, followed by nothing.
pub fn png_header_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend_from_slice(&13u32.to_be_bytes());
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&ihdr);
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&crc32(&chunk).to_be_bytes());
    out
}

/// A JPEG whose SOF0 header claims `w`x`h` (edited from a real small JPEG).
pub fn jpeg_claiming(w: u16, h: u16) -> Vec<u8> {
    let mut bytes = image("orange.jpg");
    let sof = bytes
        .windows(2)
        .position(|p| p == [0xFF, 0xC0])
        .expect("baseline JPEG has SOF0");
    // FF C0, length(2), precision(1), height(2), width(2)
    bytes[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    bytes
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

//! Fuzzes the GS1, Digital Link and trace-code parsers.
#![no_main]

use firmware_shim::codes::trace::{SitePattern, classify};
use firmware_shim::codes::{digital_link, gs1};
use firmware_shim::wire::scanner::{ScannerConfig, split_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(es) = gs1::parse(data) {
        let mut buf = [0u8; 1024];
        let n = es.encode(&mut buf).unwrap();
        let again = gs1::parse_elements(&buf[..n], None).unwrap();
        assert!(again.iter().eq(es.iter()));
    }
    let _ = gs1::parse_bracketed(data);
    let mut scratch = [0u8; 256];
    let _ = digital_link::parse(data, &mut scratch);
    if let Ok(text) = core::str::from_utf8(data) {
        let _ = SitePattern::parse(text);
    }
    let patterns = [
        SitePattern::parse("sc:SC:N:14").unwrap(),
        SitePattern::parse("id::N:18:mod11").unwrap(),
    ];
    let scan = split_frame(&ScannerConfig::default(), data);
    let mut scratch = [0u8; 256];
    let _ = classify(&scan, &patterns, &mut scratch);
});

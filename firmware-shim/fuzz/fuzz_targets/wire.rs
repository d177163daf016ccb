//! Fuzzes every wire-format parser and stream decoder with the same bytes.
#![no_main]

use firmware_shim::wire::continuous::{self, ContinuousConfig, ContinuousDecoder};
use firmware_shim::wire::framer::{FramerConfig, LineFramer, Terminator};
use firmware_shim::wire::mtsics;
use firmware_shim::wire::scanner::{ScannerConfig, ScannerFramer};
use firmware_shim::wire::toledo8217::{self, ReplyFramer};
use firmware_shim::wire::yaohua::{self, A9Decoder, EqDecoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mtsics::parse_command(data);
    let _ = mtsics::parse_response(data);
    let _ = toledo8217::parse_reply(data);
    let _ = continuous::decode(data, ContinuousConfig::FULL);
    let _ = yaohua::decode_a9(data);
    let _ = yaohua::decode_eq(data, true);

    let mut lines = LineFramer::<64>::new(FramerConfig::MT_SICS);
    let mut any = LineFramer::<8>::new(FramerConfig {
        terminator: Terminator::None,
        ascii_only: false,
        idle_timeout_ms: Some(3),
    });
    let mut scanner = ScannerFramer::<64>::new(ScannerConfig::default());
    let mut replies = ReplyFramer::new();
    let mut cont = ContinuousDecoder::new(ContinuousConfig::FULL);
    let mut a9 = A9Decoder::new();
    let mut eq = EqDecoder::new(false);
    for (t, &b) in data.iter().enumerate() {
        if let Some(Ok(line)) = lines.push(b) {
            assert!(line.len() <= 64);
            if let Ok(resp) = mtsics::parse_response(line) {
                let mut buf = [0u8; 128];
                if let Ok(n) = resp.encode(&mut buf) {
                    assert_eq!(mtsics::parse_response(&buf[..n - 2]), Ok(resp));
                }
            }
        }
        let now = t as u64;
        let _ = any.poll_idle(now);
        let _ = any.push_at(b, now);
        let _ = scanner.poll_idle(now * 40);
        let _ = scanner.push(b, now * 40);
        let _ = replies.push(b);
        let _ = cont.push(b);
        let _ = a9.push(b);
        let _ = eq.push(b);
    }
});

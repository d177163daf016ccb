//! Property tests: every parser that reads outside input never panics and stays bounded on
//! arbitrary bytes, and formats round-trip through their parsers.

use firmware_shim::codes::digital_link;
use firmware_shim::codes::gs1;
use firmware_shim::codes::trace::{SitePattern, classify};
use firmware_shim::wire::continuous::{self, ContinuousConfig, ContinuousDecoder, ContinuousFrame};
use firmware_shim::wire::framer::{FramerConfig, LineFramer, Terminator};
use firmware_shim::wire::mtsics::{self, Command, Response, Status};
use firmware_shim::wire::scanner::{ScannerConfig, ScannerFramer};
use firmware_shim::wire::toledo8217::{self, HostCommand, Reply, ReplyFramer};
use firmware_shim::wire::yaohua::{self, A9Decoder, EqDecoder};
use firmware_shim::wire::{Unit, Weight};
use proptest::prelude::*;

fn terminator() -> impl Strategy<Value = Terminator> {
    prop_oneof![
        Just(Terminator::Cr),
        Just(Terminator::Lf),
        Just(Terminator::CrLf),
        Just(Terminator::AnyEol),
        any::<u8>().prop_map(Terminator::Byte),
        Just(Terminator::None),
    ]
}

fn unit() -> impl Strategy<Value = Unit> {
    prop_oneof![
        Just(Unit::Gram),
        Just(Unit::Kilogram),
        Just(Unit::Milligram),
        Just(Unit::Pound),
        Just(Unit::Ounce),
        Just(Unit::Carat),
        Just(Unit::Tonne),
        "[A-Za-z][A-Za-z0-9]{0,5}".prop_map(|s| Unit::parse(s.as_bytes()).unwrap()),
    ]
}

/// Weights that fit the 10-character MT-SICS field.
fn sics_weight() -> impl Strategy<Value = Weight> {
    (0u8..=6, -99_999_999i64..=99_999_999, unit()).prop_filter_map("fits", |(d, v, u)| {
        let w = Weight::new(v, d, u);
        (w.decimal_len() <= 10).then_some(w)
    })
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Stable),
        Just(Status::Dynamic),
        Just(Status::Executed),
        Just(Status::More),
        Just(Status::NotExecutable),
        Just(Status::Logical),
        Just(Status::Overload),
        Just(Status::Underload),
    ]
}

/// Bytes biased towards the characters the parsers care about.
fn protocol_bytes() -> impl Strategy<Value = Vec<u8>> {
    let interesting = prop_oneof![
        any::<u8>(),
        Just(b'\r'),
        Just(b'\n'),
        Just(0x02u8),
        Just(0x03u8),
        Just(0x1Du8),
        Just(b' '),
        Just(b'"'),
        Just(b'='),
        Just(b']'),
        (b'0'..=b'9'),
        (b'A'..=b'Z'),
    ];
    proptest::collection::vec(interesting, 0..300)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn framer_never_panics_and_stays_bounded(
        input in protocol_bytes(),
        term in terminator(),
        ascii_only in any::<bool>(),
        idle in proptest::option::of(1u32..100),
    ) {
        let mut f = LineFramer::<16>::new(FramerConfig { terminator: term, ascii_only, idle_timeout_ms: idle });
        let mut emitted = 0u32;
        for (t, &b) in input.iter().enumerate() {
            if let Some(r) = f.poll_idle(t as u64 * 7) {
                if let Ok(frame) = r { prop_assert!(frame.len() <= 16 && !frame.is_empty()); }
                emitted += 1;
            }
            if let Some(r) = f.push_at(b, t as u64 * 7) {
                if let Ok(frame) = r { prop_assert!(frame.len() <= 16 && !frame.is_empty()); }
                emitted += 1;
            }
            prop_assert!(f.pending().len() <= 16);
        }
        let s = f.stats();
        prop_assert_eq!(s.frames + s.overlong + s.garbage_frames, emitted);
    }

    #[test]
    fn mtsics_parsers_total(input in protocol_bytes()) {
        let _ = mtsics::parse_command(&input);
        let _ = mtsics::parse_response(&input);
        let mut f = LineFramer::<64>::new(FramerConfig::MT_SICS);
        for &b in &input {
            if let Some(Ok(line)) = f.push(b) {
                if let Ok(resp) = mtsics::parse_response(line) {
                    let mut buf = [0u8; 128];
                    // Whatever parses re-encodes and parses to the same value.
                    if let Ok(n) = resp.encode(&mut buf) {
                        let again = mtsics::parse_response(&buf[..n - 2]);
                        prop_assert_eq!(again, Ok(resp));
                    }
                }
            }
        }
    }

    #[test]
    fn mtsics_weight_round_trip(id in "[A-Z][A-Z0-9]{0,4}", st in status(), w in sics_weight()) {
        let resp = Response::weight(&id, st, w);
        let mut buf = [0u8; 64];
        let n = resp.encode(&mut buf).unwrap();
        prop_assert!(buf[..n].ends_with(b"\r\n"));
        prop_assert_eq!(mtsics::parse_response(&buf[..n - 2]), Ok(resp));
        let cmd = Command::TareValue(Some(w));
        let n = cmd.encode(&mut buf).unwrap();
        prop_assert_eq!(mtsics::parse_command(&buf[..n - 2]), Ok(cmd));
    }

    #[test]
    fn toledo8217_parsers_total(input in protocol_bytes()) {
        let _ = toledo8217::parse_reply(&input);
        let _ = HostCommand::parse(&input);
        let mut f = ReplyFramer::new();
        for &b in &input {
            let _ = f.push(b);
        }
    }

    #[test]
    fn toledo8217_round_trip(v in 0i64..10_000_000, kg in any::<bool>(), net in any::<bool>(), flags in 0u8..64) {
        let (decimals, unit) = if kg { (3, Unit::Kilogram) } else { (2, Unit::Pound) };
        let reply = Reply::Weight { weight: Weight::new(v, decimals, unit), net };
        let mut buf = [0u8; 24];
        let n = toledo8217::encode_reply(&reply, &mut buf).unwrap();
        prop_assert_eq!(toledo8217::parse_reply(&buf[..n]), Ok(reply));
        let status = Reply::Status(toledo8217::StatusByte::from_flags(flags));
        let n = toledo8217::encode_reply(&status, &mut buf).unwrap();
        prop_assert_eq!(toledo8217::parse_reply(&buf[..n]), Ok(status));
    }

    #[test]
    fn continuous_parsers_total(input in protocol_bytes(), tare in any::<bool>(), chk in any::<bool>()) {
        let cfg = ContinuousConfig { with_tare: tare, with_checksum: chk };
        let _ = continuous::decode(&input, cfg);
        let mut d = ContinuousDecoder::new(cfg);
        for &b in &input {
            let _ = d.push(b);
        }
    }

    #[test]
    fn continuous_round_trip(
        v in -999_999i64..=999_999,
        t in 0i64..=999_999,
        decimals in 0u8..=5,
        unit in prop_oneof![Just(Unit::Kilogram), Just(Unit::Pound), Just(Unit::Gram)],
        inc in prop_oneof![Just(0u8), Just(1), Just(2), Just(5)],
        flags in any::<[bool; 6]>(),
    ) {
        let frame = ContinuousFrame {
            weight: Weight::new(v, decimals, unit),
            tare: Weight::new(t, decimals, unit),
            increment: inc,
            net: flags[0],
            out_of_range: flags[1],
            motion: flags[2],
            not_zeroed: flags[3],
            print_request: flags[4],
            expanded: flags[5],
        };
        let mut buf = [0u8; continuous::MAX_FRAME];
        let n = continuous::encode(&frame, ContinuousConfig::FULL, &mut buf).unwrap();
        let mut d = ContinuousDecoder::new(ContinuousConfig::FULL);
        let got: Vec<_> = buf[..n].iter().filter_map(|&b| d.push(b)).collect();
        prop_assert_eq!(got, vec![Ok(frame)]);
    }

    #[test]
    fn yaohua_parsers_total(input in protocol_bytes(), reversed in any::<bool>()) {
        let _ = yaohua::decode_a9(&input);
        let _ = yaohua::decode_eq(&input, reversed);
        let mut a9 = A9Decoder::new();
        let mut eq = EqDecoder::new(reversed);
        for &b in &input {
            let _ = a9.push(b);
            let _ = eq.push(b);
        }
    }

    #[test]
    fn yaohua_round_trip(v in -999_999i64..=999_999, decimals in 0u8..=4, reversed in any::<bool>()) {
        let w = Weight::new(v, decimals, Unit::Kilogram);
        let frame = yaohua::encode_a9(&w).unwrap();
        let mut d = A9Decoder::new();
        let got: Vec<_> = frame.iter().filter_map(|&b| d.push(b)).collect();
        prop_assert_eq!(got, vec![Ok(w)]);
        if let Ok(eq) = yaohua::encode_eq(&w, reversed) {
            let back = yaohua::decode_eq(&eq[1..], reversed).unwrap();
            prop_assert_eq!(back.value * 10i64.pow(u32::from(decimals)), w.value * 10i64.pow(u32::from(back.decimals)));
        }
    }

    #[test]
    fn scanner_framer_total(input in protocol_bytes(), term in terminator(), strip in any::<bool>()) {
        let cfg = ScannerConfig { terminator: term, strip_stx_etx: strip, ..ScannerConfig::default() };
        let mut f = ScannerFramer::<32>::new(cfg);
        for (t, &b) in input.iter().enumerate() {
            let now = t as u64 * 30;
            if let Some(Ok(scan)) = f.poll_idle(now) {
                prop_assert!(scan.data.len() <= 32);
            }
            if let Some(Ok(scan)) = f.push(b, now) {
                prop_assert!(scan.data.len() <= 32);
            }
        }
    }

    #[test]
    fn gs1_parser_total_and_reencodes(input in protocol_bytes()) {
        let _ = gs1::parse(&input);
        if let Ok(es) = gs1::parse_elements(&input, None) {
            let mut buf = [0u8; 512];
            let n = es.encode(&mut buf).unwrap();
            let again = gs1::parse_elements(&buf[..n], None).unwrap();
            prop_assert!(again.iter().eq(es.iter()));
        }
    }

    #[test]
    fn gs1_bracketed_total_and_round_trips(s in "[()0-9A-Z]{0,60}") {
        if let Ok(es) = gs1::parse_bracketed(s.as_bytes()) {
            let mut buf = [0u8; 256];
            let n = es.write_bracketed(&mut buf).unwrap();
            let again = gs1::parse_bracketed(&buf[..n]).unwrap();
            prop_assert!(again.iter().eq(es.iter()));
        }
    }

    #[test]
    fn gs1_digit_heavy_inputs(s in "(\\]C1|\\]d2|)[0-9A-Z\\x1d]{0,60}") {
        if let Ok(es) = gs1::parse(s.as_bytes()) {
            prop_assert!(es.len() <= gs1::MAX_ELEMENTS);
            let mut buf = [0u8; 256];
            let n = es.encode(&mut buf).unwrap();
            let again = gs1::parse_elements(&buf[..n], None).unwrap();
            prop_assert!(again.iter().eq(es.iter()));
        }
    }

    #[test]
    fn digital_link_total(input in protocol_bytes(), tail in "[0-9A-Za-z/?&=%+#]{0,60}") {
        let mut scratch = [0u8; 64];
        let _ = digital_link::parse(&input, &mut scratch);
        let uri = format!("https://id.gs1.org/01/09520123456788{tail}");
        let _ = digital_link::parse(uri.as_bytes(), &mut scratch);
    }

    #[test]
    fn trace_classify_total(input in protocol_bytes(), spec in "[a-z]{1,4}:[A-Z]{0,2}:[NAXQ]:[0-9]{1,2}(-[0-9]{1,2})?(:(mod10|mod11|luhn|none|x))?") {
        let pattern = SitePattern::parse(&spec).ok();
        let patterns: Vec<SitePattern<'_>> = pattern.into_iter().collect();
        let mut scratch = [0u8; 128];
        let scan = firmware_shim::wire::scanner::split_frame(&ScannerConfig::default(), &input);
        let _ = classify(&scan, &patterns, &mut scratch);
    }
}

mod responder_speaks_the_wire_format {
    use std::convert::Infallible;

    use firmware_shim::responder::{DeviceInfo, SicsConfig, SicsResponder, Toledo8217Responder};
    use firmware_shim::scale::{Calibration, Scale, ScaleConfig};
    use firmware_shim::wire::framer::{FramerConfig, LineFramer};
    use firmware_shim::wire::mtsics;
    use firmware_shim::wire::toledo8217::ReplyFramer;
    use proptest::prelude::*;

    struct Out(Vec<u8>);

    impl embedded_io::ErrorType for Out {
        type Error = Infallible;
    }

    impl embedded_io::Write for Out {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> Result<(), Infallible> {
            Ok(())
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Feed(i32),
        Send(&'static [u8]),
        Wait(u64),
    }

    const SICS: &[&[u8]] = &[
        b"S\r\n",
        b"SI\r\n",
        b"SIR\r\n",
        b"Z\r\n",
        b"ZI\r\n",
        b"T\r\n",
        b"TI\r\n",
        b"TA\r\n",
        b"TA 1.5 kg\r\n",
        b"TAC\r\n",
        b"@\r\n",
        b"I0\r\n",
        b"I1\r\n",
        b"I2\r\n",
        b"I3\r\n",
        b"I4\r\n",
        b"XX\r\n",
        b"\xff\r\n",
        b"S",
        b"\r\n",
    ];
    const TOLEDO: &[&[u8]] = &[
        b"W", b"Z", b"T", b"T01000", b"C", b"A", b"B", b"F", b"?", b"1",
    ];

    fn ops(commands: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<Op>> {
        let op = prop_oneof![
            (-400_000i32..4_000_000).prop_map(Op::Feed),
            proptest::sample::select(commands).prop_map(Op::Send),
            (0u64..2_000).prop_map(Op::Wait),
        ];
        proptest::collection::vec(op, 0..60)
    }

    fn scale() -> Scale<4> {
        let cfg = ScaleConfig::platform_30kg(Calibration {
            counts: 100,
            weight: 1,
        });
        Scale::new(cfg, 0).unwrap()
    }

    proptest! {
        #[test]
        fn sics_output_always_parses(ops in ops(SICS)) {
            let mut r = SicsResponder::new(scale(), SicsConfig::default(), DeviceInfo::default());
            let mut out = Out(Vec::new());
            let mut now = 0u64;
            for op in ops {
                match op {
                    Op::Feed(raw) => { r.scale_mut().feed(raw, now); }
                    Op::Send(bytes) => r.on_bytes(bytes, now, &mut out).unwrap(),
                    Op::Wait(dt) => { now += dt; r.tick(now, &mut out).unwrap(); }
                }
            }
            prop_assert!(out.0.is_empty() || out.0.ends_with(b"\r\n"));
            let mut framer = LineFramer::<128>::new(FramerConfig::MT_SICS);
            for &b in &out.0 {
                if let Some(line) = framer.push(b) {
                    let line = line.unwrap();
                    prop_assert!(mtsics::parse_response(line).is_ok(), "{:?}", String::from_utf8_lossy(line));
                }
            }
        }

        #[test]
        fn toledo_output_always_parses(ops in ops(TOLEDO)) {
            let mut r = Toledo8217Responder::new(scale());
            let mut out = Out(Vec::new());
            let mut now = 0u64;
            for op in ops {
                match op {
                    Op::Feed(raw) => { r.scale_mut().feed(raw, now); }
                    Op::Send(bytes) => r.on_bytes(bytes, now, &mut out).unwrap(),
                    Op::Wait(dt) => { now += dt; r.tick(now, &mut out).unwrap(); }
                }
            }
            let mut framer = ReplyFramer::new();
            for &b in &out.0 {
                if let Some(reply) = framer.push(b) {
                    prop_assert!(reply.is_ok(), "{:?}", reply);
                }
            }
            prop_assert_eq!(framer.stats().garbage_bytes, 0);
        }
    }
}

//! Framing and wire-format behaviour beyond the reference vectors: noise, partial frames,
//! resynchronisation, error reasons.

use firmware_shim::wire::continuous::{ContinuousConfig, ContinuousDecoder, ContinuousError};
use firmware_shim::wire::framer::{FrameError, FramerConfig, LineFramer, Terminator};
use firmware_shim::wire::mtsics::{
    self, Command, CommandError, EncodeError, Response, ResponseError, Status,
};
use firmware_shim::wire::toledo8217::{self, HostCommand, Reply, ReplyError, ReplyFramer};
use firmware_shim::wire::yaohua::{A9Decoder, EqDecoder, YaohuaError};
use firmware_shim::wire::{DecimalError, Unit, Weight};

fn lines<const N: usize>(
    framer: &mut LineFramer<N>,
    input: &[u8],
) -> Vec<Result<Vec<u8>, FrameError>> {
    input
        .iter()
        .filter_map(|&b| framer.push(b).map(|r| r.map(<[u8]>::to_vec)))
        .collect()
}

#[test]
fn framer_survives_noise_partial_frames_and_wrong_baud() {
    let mut f = LineFramer::<32>::new(FramerConfig::MT_SICS);
    // Wrong-baud garbage, then a clean line.
    let got = lines(&mut f, b"\xf0\x87\x00\xff\r\nS S     100.00 g\r\n");
    assert_eq!(
        got,
        vec![Err(FrameError::Garbage), Ok(b"S S     100.00 g".to_vec())]
    );
    // Noise inside a line discards that line only.
    let got = lines(&mut f, b"S S  \x9f   1.00 g\r\nS I\r\n");
    assert_eq!(got, vec![Err(FrameError::Garbage), Ok(b"S I".to_vec())]);
    // A partial frame continues across calls; CR, LF and CR LF all end lines; empty lines vanish.
    assert!(lines(&mut f, b"Z ").is_empty());
    assert_eq!(f.pending(), b"Z ");
    let got = lines(&mut f, b"A\r\r\n\nES\nET\r");
    assert_eq!(
        got,
        vec![Ok(b"Z A".to_vec()), Ok(b"ES".to_vec()), Ok(b"ET".to_vec())]
    );
    let stats = f.stats();
    assert_eq!(
        (stats.frames, stats.garbage_frames, stats.garbage_bytes),
        (5, 2, 5)
    );
}

#[test]
fn framer_discards_overlong_frames_with_bounded_memory() {
    let mut f = LineFramer::<4>::new(FramerConfig::MT_SICS);
    let got = lines(&mut f, b"ABCD\r\nABCDE\r\nXY\r\n");
    assert_eq!(
        got,
        vec![
            Ok(b"ABCD".to_vec()),
            Err(FrameError::Overlong),
            Ok(b"XY".to_vec())
        ]
    );
    assert_eq!(f.stats().overlong, 1);
}

#[test]
fn framer_terminator_variants() {
    let mut cr = LineFramer::<16>::new(FramerConfig {
        terminator: Terminator::Cr,
        ascii_only: false,
        idle_timeout_ms: None,
    });
    assert_eq!(
        lines(&mut cr, b"A\rB\n\r"),
        vec![Ok(b"A".to_vec()), Ok(b"B\n".to_vec())]
    );
    let mut crlf = LineFramer::<16>::new(FramerConfig {
        terminator: Terminator::CrLf,
        ascii_only: false,
        idle_timeout_ms: None,
    });
    assert_eq!(
        lines(&mut crlf, b"A\r\nB\rC\nD\n"),
        vec![Ok(b"A".to_vec()), Ok(b"B\rC".to_vec()), Ok(b"D".to_vec())]
    );
    let mut byte = LineFramer::<16>::new(FramerConfig {
        terminator: Terminator::Byte(b';'),
        ascii_only: false,
        idle_timeout_ms: Some(10),
    });
    assert_eq!(lines(&mut byte, b"A;B"), vec![Ok(b"A".to_vec())]);
    assert!(
        byte.poll_idle(0).is_none(),
        "no byte time recorded via push()"
    );
    byte.push_at(b'C', 100);
    assert!(byte.poll_idle(105).is_none());
    assert_eq!(byte.poll_idle(110), Some(Ok(&b"BC"[..])));
}

#[test]
fn mtsics_parse_errors_name_their_reason() {
    assert_eq!(mtsics::parse_command(b""), Err(CommandError::Empty));
    assert_eq!(mtsics::parse_command(b"  "), Err(CommandError::Empty));
    assert_eq!(
        mtsics::parse_command(b"S\x01"),
        Err(CommandError::NotPrintable(1))
    );
    assert_eq!(
        mtsics::parse_command(b"Z 1"),
        Err(CommandError::UnexpectedArgument)
    );
    assert_eq!(
        mtsics::parse_command(b"TA x g"),
        Err(CommandError::BadTarePreset)
    );
    assert_eq!(
        mtsics::parse_command(b"TA 2.486 g"),
        Ok(Command::TareValue(Some(Weight::new(2486, 3, Unit::Gram))))
    );
    assert_eq!(
        mtsics::parse_command(b"D \"HELLO\""),
        Ok(Command::Other {
            id: "D",
            args: "\"HELLO\""
        })
    );
    assert_eq!(mtsics::parse_response(b""), Err(ResponseError::Empty));
    assert_eq!(
        mtsics::parse_response(b"S"),
        Err(ResponseError::MissingStatus)
    );
    assert_eq!(
        mtsics::parse_response(b"S Q"),
        Err(ResponseError::BadStatus)
    );
    assert_eq!(
        mtsics::parse_response(b"S SS"),
        Err(ResponseError::BadStatus)
    );
    assert_eq!(
        mtsics::parse_response(b"S S 1.2.3 g"),
        Err(ResponseError::BadWeight(DecimalError::TwoDecimalPoints))
    );
    assert_eq!(
        mtsics::parse_response(b"S S 1.23 9g"),
        Err(ResponseError::BadUnit)
    );
    assert_eq!(
        mtsics::parse_response(b"I4 A \"B2076"),
        Err(ResponseError::UnterminatedQuote)
    );
    assert_eq!(
        mtsics::parse_response(b"S S 12345678901234567890 g"),
        Err(ResponseError::BadWeight(DecimalError::TooManyDigits))
    );
    // Hardware error replies are kept as parameters.
    assert!(matches!(
        mtsics::parse_response(b"S S Error 10t"),
        Ok(Response::Reply {
            body: mtsics::Body::Params("Error 10t"),
            ..
        })
    ));
    // Lenient: `S A 1.234 g` (seen in some test suites) still reads as a weight.
    assert!(matches!(
        mtsics::parse_response(b"S A 1.234 g"),
        Ok(Response::Reply {
            status: Status::Executed,
            body: mtsics::Body::Weight(_),
            ..
        })
    ));
    let mut buf = [0u8; 64];
    assert_eq!(
        Response::weight(
            "S",
            Status::Stable,
            Weight::new(12_345_678_901, 2, Unit::Gram)
        )
        .encode(&mut buf),
        Err(EncodeError::WeightTooWide)
    );
    assert_eq!(
        Response::status("S", Status::Stable).encode(&mut buf[..3]),
        Err(EncodeError::BufferFull)
    );
}

#[test]
fn toledo8217_framer_and_errors() {
    let mut f = ReplyFramer::new();
    let mut got = Vec::new();
    for &b in b"hello\x0201.234\r\x02?A\r\x02\x02X\r\x02123456789012345678\r\x02F\r" {
        if let Some(r) = f.push(b) {
            got.push(r);
        }
    }
    assert_eq!(
        got,
        vec![
            Ok(Reply::Weight {
                weight: Weight::new(1234, 3, Unit::Kilogram),
                net: false
            }),
            Ok(Reply::Status(toledo8217::StatusByte(b'A'))),
            Err(ReplyError::BadWeight(DecimalError::BadCharacter(b'X'))),
            Ok(Reply::EchoEnd),
        ]
    );
    let stats = f.stats();
    assert_eq!(
        (stats.overlong, stats.malformed, stats.garbage_bytes),
        (1, 1, 6)
    );
    assert_eq!(
        toledo8217::parse_reply(b"01.234\r"),
        Err(ReplyError::NotFramed)
    );
    assert_eq!(
        toledo8217::parse_reply(b"\x02?AB\r"),
        Err(ReplyError::BadStatus)
    );
    assert_eq!(
        toledo8217::parse_reply(b"\x02-1.000\r"),
        Err(ReplyError::NegativeWeight)
    );
    assert_eq!(
        toledo8217::parse_reply(b"\x02 01.23\r"),
        Ok(Reply::Weight {
            weight: Weight::new(123, 2, Unit::Pound),
            net: false
        })
    );
    assert_eq!(
        HostCommand::parse(b"T01250"),
        Some(HostCommand::PresetTare(1250))
    );
    assert_eq!(HostCommand::parse(b"T0125"), None);
    assert_eq!(HostCommand::parse(b"Q"), Some(HostCommand::Unknown(b'Q')));
    let mut buf = [0u8; 8];
    let n = HostCommand::PresetTare(500).encode(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"T00500");
}

#[test]
fn continuous_decoder_resynchronises() {
    let good: &[u8] = b"\x02-0 001234000000\r\x2a";
    let mut stream = Vec::new();
    stream.extend_from_slice(b"\x30\x31garbage");
    stream.extend_from_slice(&good[..9]); // cut short by a new STX
    stream.extend_from_slice(good);
    let mut bad = good.to_vec();
    bad[17] = 0x2b;
    stream.extend_from_slice(&bad);
    stream.extend_from_slice(b"\x02-0 00\r"); // early CR
    stream.extend_from_slice(good);
    let mut d = ContinuousDecoder::new(ContinuousConfig::FULL);
    let results: Vec<_> = stream.iter().filter_map(|&b| d.push(b)).collect();
    assert_eq!(results.len(), 4);
    assert!(results[0].is_ok() && results[3].is_ok());
    assert!(matches!(results[1], Err(ContinuousError::Checksum { .. })));
    assert_eq!(results[2], Err(ContinuousError::NotFramed));
    let stats = d.stats();
    assert_eq!(
        (stats.frames, stats.checksum_failures, stats.malformed),
        (2, 1, 1)
    );
    assert_eq!(stats.garbage_bytes, 9 + 9);
    // Short variant without tare or checksum.
    let short = ContinuousConfig {
        with_tare: false,
        with_checksum: false,
    };
    let mut d = ContinuousDecoder::new(short);
    let r: Vec<_> = b"\x02-0 001234\r"
        .iter()
        .filter_map(|&b| d.push(b))
        .collect();
    assert_eq!(r[0].unwrap().weight, Weight::new(1234, 3, Unit::Kilogram));
}

#[test]
fn yaohua_decoders_resynchronise() {
    let mut d = A9Decoder::new();
    let mut stream = b"xx\x02+0012".to_vec();
    stream.extend_from_slice(b"\x02+00200021B\x03");
    stream.extend_from_slice(b"\x02+00200021C\x03");
    stream.extend_from_slice(b"\x02?00200021B\x03");
    stream.extend_from_slice(b"\x02+002\x03");
    let r: Vec<_> = stream.iter().filter_map(|&b| d.push(b)).collect();
    assert_eq!(r[0], Ok(Weight::new(2000, 2, Unit::Kilogram)));
    assert_eq!(
        r[1],
        Err(YaohuaError::Checksum {
            expected: 0x1b,
            found: 0x1c
        })
    );
    // A damaged sign byte also breaks the XOR check.
    assert!(matches!(r[2], Err(YaohuaError::Checksum { .. })));
    assert_eq!(r[3], Err(YaohuaError::NotFramed));
    assert_eq!(d.stats().checksum_failures, 2);
    assert_eq!(
        firmware_shim::wire::yaohua::decode_a9(b"\x02?00200020F\x03"),
        Err(YaohuaError::BadSign(b'?'))
    );

    let mut eq = EqDecoder::new(true);
    let r: Vec<_> = b"0.3000=000.3000=00.1000-=00.1"
        .iter()
        .filter_map(|&b| eq.push(b))
        .collect();
    assert_eq!(
        r,
        vec![
            Ok(Weight::new(3000, 3, Unit::Kilogram)),
            Ok(Weight::new(-100, 2, Unit::Kilogram))
        ]
    );
    let mut plain = EqDecoder::new(false);
    let r: Vec<_> = b"=0003.000=-0001.00"
        .iter()
        .filter_map(|&b| plain.push(b))
        .collect();
    assert_eq!(
        r,
        vec![
            Ok(Weight::new(3000, 3, Unit::Kilogram)),
            Ok(Weight::new(-100, 2, Unit::Kilogram))
        ]
    );
}

#[test]
fn weight_decimal_text() {
    assert_eq!(Weight::parse_decimal(b"-12.34"), Ok((-1234, 2)));
    assert_eq!(Weight::parse_decimal(b"+.5"), Ok((5, 1)));
    assert_eq!(Weight::parse_decimal(b"100"), Ok((100, 0)));
    assert_eq!(Weight::parse_decimal(b"-"), Err(DecimalError::NoDigits));
    assert_eq!(Weight::new(-5, 3, Unit::Kilogram).to_string(), "-0.005 kg");
    assert_eq!(Weight::new(1251, 3, Unit::Kilogram).with_decimals(2), None);
    assert_eq!(
        Weight::new(1250, 3, Unit::Kilogram).with_decimals(4),
        Some(Weight::new(12500, 4, Unit::Kilogram))
    );
    assert_eq!(Unit::parse(b"PCS").unwrap().to_string(), "PCS");
    assert_eq!(Unit::parse(b"toolongunit"), None);
}

//! Every vector in `testdata/vectors.json` (copied from the project's protocol research notes),
//! as table tests, plus the same facts as explicit byte literals.

use firmware_shim::codes::gs1::{self, Gs1Error};
use firmware_shim::wire::continuous::{self, ContinuousConfig};
use firmware_shim::wire::mtsics::{self, Body, Command, GeneralError, Response, Status};
use firmware_shim::wire::toledo8217::{self, HostCommand, Reply};
use firmware_shim::wire::{Unit, Weight, yaohua};
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("../testdata/vectors.json")).unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn section(name: &str) -> Vec<Value> {
    vectors()[name].as_array().unwrap().clone()
}

fn strip_crlf(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\r\n")
        .expect("MT-SICS lines end with CR LF")
}

#[test]
fn mt_sics_vectors_round_trip() {
    let all = section("mt_sics");
    assert_eq!(all.len(), 16);
    for v in all {
        let ascii = v["ascii"].as_str().unwrap().as_bytes();
        assert_eq!(ascii, unhex(v["hex"].as_str().unwrap()).as_slice());
        let mut buf = [0u8; 128];
        match v["dir"].as_str().unwrap() {
            "host->scale" => {
                let cmd = mtsics::parse_command(strip_crlf(ascii)).unwrap();
                let n = cmd.encode(&mut buf).unwrap();
                assert_eq!(&buf[..n], ascii);
            }
            _ => {
                let resp = mtsics::parse_response(strip_crlf(ascii)).unwrap();
                let n = resp.encode(&mut buf).unwrap();
                assert_eq!(&buf[..n], ascii, "{v}");
            }
        }
    }
}

#[test]
fn mt_sics_vectors_meaning() {
    fn p(s: &[u8]) -> Response<'_> {
        mtsics::parse_response(s).unwrap()
    }
    assert_eq!(mtsics::parse_command(b"S"), Ok(Command::Stable));
    assert_eq!(mtsics::parse_command(b"@"), Ok(Command::Reset));
    assert_eq!(
        p(b"S S     100.00 g"),
        Response::weight("S", Status::Stable, Weight::new(10000, 2, Unit::Gram))
    );
    assert_eq!(
        p(b"S D     -12.34 g"),
        Response::weight("S", Status::Dynamic, Weight::new(-1234, 2, Unit::Gram))
    );
    assert_eq!(
        p(b"S S      1.250 kg"),
        Response::weight("S", Status::Stable, Weight::new(1250, 3, Unit::Kilogram))
    );
    assert_eq!(p(b"S I"), Response::status("S", Status::NotExecutable));
    assert_eq!(p(b"S +"), Response::status("S", Status::Overload));
    assert_eq!(p(b"S -"), Response::status("S", Status::Underload));
    assert_eq!(p(b"ES"), Response::Error(GeneralError::Syntax));
    assert_eq!(p(b"ET"), Response::Error(GeneralError::Transmission));
    assert_eq!(p(b"EL"), Response::Error(GeneralError::Logical));
    assert_eq!(p(b"Z A"), Response::status("Z", Status::Executed));
    assert_eq!(p(b"TAC A"), Response::status("TAC", Status::Executed));
    assert_eq!(
        p(b"TA A      2.486 g"),
        Response::weight("TA", Status::Executed, Weight::new(2486, 3, Unit::Gram))
    );
    assert_eq!(
        p(b"I4 A \"B207696838\""),
        Response::Reply {
            id: "I4",
            status: Status::Executed,
            body: Body::Params("\"B207696838\"")
        }
    );
    let Response::Reply {
        body: Body::Params(params),
        ..
    } = p(b"I1 A \"0123\" \"2.00\" \"2.20\" \"1.00\" \"1.50\"")
    else {
        panic!("I1 has parameters")
    };
    let tokens: Vec<&str> = mtsics::Tokens::new(params).map(Result::unwrap).collect();
    assert_eq!(tokens, ["0123", "2.00", "2.20", "1.00", "1.50"]);
}

#[test]
fn mt_sics_byte_literals() {
    let mut buf = [0u8; 64];
    let n = Response::weight("S", Status::Stable, Weight::new(10000, 2, Unit::Gram))
        .encode(&mut buf)
        .unwrap();
    assert_eq!(
        &buf[..n],
        &[
            0x53, 0x20, 0x53, 0x20, 0x20, 0x20, 0x20, 0x20, 0x31, 0x30, 0x30, 0x2e, 0x30, 0x30,
            0x20, 0x67, 0x0d, 0x0a
        ]
    );
    let n = Command::Stable.encode(&mut buf).unwrap();
    assert_eq!(&buf[..n], &[0x53, 0x0d, 0x0a]);
    let n = Response::status("S", Status::Overload)
        .encode(&mut buf)
        .unwrap();
    assert_eq!(&buf[..n], &[0x53, 0x20, 0x2b, 0x0d, 0x0a]);
}

fn toledo_meaning(meaning: &str) -> Reply {
    match meaning {
        "gross 1.234 kg" => Reply::Weight {
            weight: Weight::new(1234, 3, Unit::Kilogram),
            net: false,
        },
        "net 1.234 kg" => Reply::Weight {
            weight: Weight::new(1234, 3, Unit::Kilogram),
            net: true,
        },
        m if m.starts_with("status 0x") => Reply::Status(toledo8217::StatusByte(
            u8::from_str_radix(&m[9..11], 16).unwrap(),
        )),
        other => panic!("no expectation for {other}"),
    }
}

#[test]
fn toledo8217_vectors() {
    let all = section("toledo8217");
    assert_eq!(all.len(), 6);
    for v in all {
        let host = v["host"].as_str().unwrap().as_bytes();
        let scale = v["scale"].as_str().unwrap().as_bytes();
        assert_eq!(host, unhex(v["host_hex"].as_str().unwrap()).as_slice());
        assert_eq!(scale, unhex(v["scale_hex"].as_str().unwrap()).as_slice());
        if host == toledo8217::PROBE {
            assert_eq!(scale, toledo8217::PROBE_REPLY);
            continue;
        }
        assert_eq!(HostCommand::parse(host), Some(HostCommand::Weight));
        let reply = toledo8217::parse_reply(scale).unwrap();
        assert_eq!(reply, toledo_meaning(v["meaning"].as_str().unwrap()), "{v}");
        let mut buf = [0u8; 16];
        let n = toledo8217::encode_reply(&reply, &mut buf).unwrap();
        assert_eq!(&buf[..n], scale);
    }
}

#[test]
fn toledo8217_status_bits() {
    let motion = toledo8217::StatusByte(b'A');
    assert!(motion.motion() && !motion.over_capacity() && !motion.under_zero());
    assert!(toledo8217::StatusByte(b'D').under_zero());
    assert!(toledo8217::StatusByte(b'B').over_capacity());
    // Bit 7 (parity seen on an 8N1 port) is ignored.
    assert_eq!(
        toledo8217::parse_reply(&[0x82, b'?', 0xC1, 0x8D]),
        Ok(Reply::Status(toledo8217::StatusByte(0x41)))
    );
}

#[test]
fn toledo_continuous_vectors() {
    let all = section("toledo_continuous");
    assert_eq!(all.len(), 2);
    for v in all {
        let bytes = unhex(v["hex"].as_str().unwrap());
        let frame = continuous::decode(&bytes, ContinuousConfig::FULL).unwrap();
        assert_eq!(frame.weight, Weight::new(1234, 3, Unit::Kilogram));
        let meaning = v["meaning"].as_str().unwrap();
        let net_motion = meaning.contains("NET");
        assert_eq!(frame.net, net_motion);
        assert_eq!(frame.motion, net_motion);
        let tare = if net_motion { 500 } else { 0 };
        assert_eq!(frame.tare, Weight::new(tare, 3, Unit::Kilogram));
        assert_eq!(frame.increment, 1);
        let mut out = [0u8; continuous::MAX_FRAME];
        let n = continuous::encode(&frame, ContinuousConfig::FULL, &mut out).unwrap();
        assert_eq!(&out[..n], bytes.as_slice());
    }
}

#[test]
fn toledo_continuous_byte_literals() {
    let gross: [u8; 18] = [
        0x02, 0x2d, 0x30, 0x20, 0x30, 0x30, 0x31, 0x32, 0x33, 0x34, 0x30, 0x30, 0x30, 0x30, 0x30,
        0x30, 0x0d, 0x2a,
    ];
    assert_eq!(continuous::checksum(&gross[..17]), 0x2a);
    let mut bad = gross;
    bad[17] = 0x2b;
    assert_eq!(
        continuous::decode(&bad, ContinuousConfig::FULL),
        Err(continuous::ContinuousError::Checksum {
            expected: 0x2a,
            found: 0x2b
        })
    );
}

fn parse_meaning(m: &str) -> Weight {
    let (value, decimals) = Weight::parse_decimal(m.as_bytes()).unwrap();
    Weight::new(value, decimals, Unit::Kilogram)
}

#[test]
fn yaohua_a9_vectors() {
    let all = section("yaohua_a9_tf0");
    assert_eq!(all.len(), 3);
    for v in all {
        let bytes = unhex(v["hex"].as_str().unwrap());
        let expected = parse_meaning(v["meaning"].as_str().unwrap());
        assert_eq!(yaohua::decode_a9(&bytes), Ok(expected));
        assert_eq!(
            yaohua::encode_a9(&expected).unwrap().as_slice(),
            bytes.as_slice()
        );
    }
}

#[test]
fn yaohua_a9_byte_literals() {
    assert_eq!(
        yaohua::encode_a9(&Weight::new(2000, 2, Unit::Kilogram)).unwrap(),
        *b"\x02+00200021B\x03"
    );
    assert_eq!(
        yaohua::decode_a9(b"\x02+00125031E\x03"),
        Ok(Weight::new(1250, 3, Unit::Kilogram))
    );
    assert_eq!(
        yaohua::decode_a9(b"\x02+00125031F\x03"),
        Err(yaohua::YaohuaError::Checksum {
            expected: 0x1e,
            found: 0x1f
        })
    );
}

#[test]
fn yaohua_eq_reversed_vectors() {
    let all = section("yaohua_eq_reversed");
    assert_eq!(all.len(), 2);
    for v in all {
        let ascii = v["ascii"].as_str().unwrap().as_bytes();
        let expected = parse_meaning(v["meaning"].as_str().unwrap());
        let w = yaohua::decode_eq(&ascii[1..], true).unwrap();
        assert_eq!(w, expected);
        assert_eq!(yaohua::encode_eq(&w, true).unwrap().as_slice(), ascii);
    }
}

fn expected_error(text: &str, err: &Gs1Error) -> bool {
    match text {
        t if t.starts_with("bad check digit") => matches!(err, Gs1Error::BadCheckDigit { .. }),
        t if t.ends_with("too short") => matches!(err, Gs1Error::TooShort { .. }),
        "unknown AI" => matches!(err, Gs1Error::UnknownAi { .. }),
        t if t.ends_with("illegal month") => matches!(err, Gs1Error::BadMonth(_)),
        t if t.ends_with("too long") => matches!(err, Gs1Error::TooLong { .. }),
        "bad CSET82 char" => matches!(
            err,
            Gs1Error::BadCharacter {
                cset: gs1::Cset::Cset82,
                ..
            }
        ),
        other => panic!("no mapping for expected error {other:?}"),
    }
}

#[test]
fn gs1_element_string_vectors() {
    let all = section("gs1_element_strings");
    assert_eq!(all.len(), 15);
    for v in all {
        let input = v["in"].as_str().unwrap().as_bytes();
        assert_eq!(input, unhex(v["in_hex"].as_str().unwrap()).as_slice());
        let parsed = gs1::parse(input);
        if let Some(out) = v["out"].as_object() {
            let es = parsed.unwrap_or_else(|e| panic!("{v}: {e}"));
            assert_eq!(es.len(), out.len(), "{v}");
            for (ai, value) in out {
                assert_eq!(es.get(ai), value.as_str(), "{v}");
            }
        } else {
            let err = parsed.expect_err(v["in"].as_str().unwrap());
            let text = v["error"].as_str().unwrap();
            assert!(expected_error(text, &err), "{v}: got {err:?}");
        }
    }
}

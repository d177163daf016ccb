//! One test per reference vector, written out as byte literals (the same vectors as
//! `testdata/vectors.json`, which `vectors.rs` checks as a table).

use firmware_shim::codes::gs1::{self, Cset, Gs1Error};
use firmware_shim::wire::continuous::{self, ContinuousConfig};
use firmware_shim::wire::mtsics::{self, Body, Command, GeneralError, Response, Status};
use firmware_shim::wire::toledo8217::{self, HostCommand, Reply, StatusByte};
use firmware_shim::wire::{Unit, Weight, yaohua};

const G: Unit = Unit::Gram;
const KG: Unit = Unit::Kilogram;

macro_rules! sics_command {
    ($name:ident, $bytes:expr, $expected:expr) => {
        #[test]
        fn $name() {
            let bytes: &[u8] = $bytes;
            let cmd = mtsics::parse_command(bytes.strip_suffix(b"\r\n").unwrap()).unwrap();
            assert_eq!(cmd, $expected);
            let mut buf = [0u8; 64];
            let n = cmd.encode(&mut buf).unwrap();
            assert_eq!(&buf[..n], bytes);
        }
    };
}

macro_rules! sics_response {
    ($name:ident, $bytes:expr, $expected:expr) => {
        #[test]
        fn $name() {
            let bytes: &[u8] = $bytes;
            let resp = mtsics::parse_response(bytes.strip_suffix(b"\r\n").unwrap()).unwrap();
            assert_eq!(resp, $expected);
            let mut buf = [0u8; 96];
            let n = resp.encode(&mut buf).unwrap();
            assert_eq!(&buf[..n], bytes);
        }
    };
}

sics_command!(sics_host_s, &[0x53, 0x0d, 0x0a], Command::Stable);
sics_response!(
    sics_stable_100_00_g,
    &[
        0x53, 0x20, 0x53, 0x20, 0x20, 0x20, 0x20, 0x20, 0x31, 0x30, 0x30, 0x2e, 0x30, 0x30, 0x20,
        0x67, 0x0d, 0x0a
    ],
    Response::weight("S", Status::Stable, Weight::new(10000, 2, G))
);
sics_response!(
    sics_dynamic_minus_12_34_g,
    &[
        0x53, 0x20, 0x44, 0x20, 0x20, 0x20, 0x20, 0x20, 0x2d, 0x31, 0x32, 0x2e, 0x33, 0x34, 0x20,
        0x67, 0x0d, 0x0a
    ],
    Response::weight("S", Status::Dynamic, Weight::new(-1234, 2, G))
);
sics_response!(
    sics_stable_1_250_kg,
    &[
        0x53, 0x20, 0x53, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x31, 0x2e, 0x32, 0x35, 0x30, 0x20,
        0x6b, 0x67, 0x0d, 0x0a
    ],
    Response::weight("S", Status::Stable, Weight::new(1250, 3, KG))
);
sics_response!(
    sics_s_i,
    &[0x53, 0x20, 0x49, 0x0d, 0x0a],
    Response::status("S", Status::NotExecutable)
);
sics_response!(
    sics_s_overload,
    &[0x53, 0x20, 0x2b, 0x0d, 0x0a],
    Response::status("S", Status::Overload)
);
sics_response!(
    sics_s_underload,
    &[0x53, 0x20, 0x2d, 0x0d, 0x0a],
    Response::status("S", Status::Underload)
);
sics_response!(
    sics_es,
    &[0x45, 0x53, 0x0d, 0x0a],
    Response::Error(GeneralError::Syntax)
);
sics_response!(
    sics_et,
    &[0x45, 0x54, 0x0d, 0x0a],
    Response::Error(GeneralError::Transmission)
);
sics_response!(
    sics_el,
    &[0x45, 0x4c, 0x0d, 0x0a],
    Response::Error(GeneralError::Logical)
);
sics_response!(
    sics_z_a,
    &[0x5a, 0x20, 0x41, 0x0d, 0x0a],
    Response::status("Z", Status::Executed)
);
sics_response!(
    sics_tac_a,
    &[0x54, 0x41, 0x43, 0x20, 0x41, 0x0d, 0x0a],
    Response::status("TAC", Status::Executed)
);
sics_response!(
    sics_ta_a_2_486_g,
    b"TA A      2.486 g\r\n",
    Response::weight("TA", Status::Executed, Weight::new(2486, 3, G))
);
sics_command!(sics_host_reset, &[0x40, 0x0d, 0x0a], Command::Reset);
sics_response!(
    sics_i4_serial,
    b"I4 A \"B207696838\"\r\n",
    Response::Reply {
        id: "I4",
        status: Status::Executed,
        body: Body::Params("\"B207696838\"")
    }
);
sics_response!(
    sics_i1_levels,
    b"I1 A \"0123\" \"2.00\" \"2.20\" \"1.00\" \"1.50\"\r\n",
    Response::Reply {
        id: "I1",
        status: Status::Executed,
        body: Body::Params("\"0123\" \"2.00\" \"2.20\" \"1.00\" \"1.50\"")
    }
);

macro_rules! toledo_reply {
    ($name:ident, $bytes:expr, $expected:expr) => {
        #[test]
        fn $name() {
            assert_eq!(HostCommand::parse(&[0x57]), Some(HostCommand::Weight));
            let bytes: &[u8] = $bytes;
            let reply = toledo8217::parse_reply(bytes).unwrap();
            assert_eq!(reply, $expected);
            let mut buf = [0u8; 16];
            let n = toledo8217::encode_reply(&reply, &mut buf).unwrap();
            assert_eq!(&buf[..n], bytes);
        }
    };
}

toledo_reply!(
    toledo_gross_1_234_kg,
    &[0x02, 0x30, 0x31, 0x2e, 0x32, 0x33, 0x34, 0x0d],
    Reply::Weight {
        weight: Weight::new(1234, 3, KG),
        net: false
    }
);
toledo_reply!(
    toledo_net_1_234_kg,
    &[0x02, 0x30, 0x31, 0x2e, 0x32, 0x33, 0x34, 0x4e, 0x0d],
    Reply::Weight {
        weight: Weight::new(1234, 3, KG),
        net: true
    }
);
toledo_reply!(
    toledo_status_motion,
    &[0x02, 0x3f, 0x41, 0x0d],
    Reply::Status(StatusByte(0x41))
);
toledo_reply!(
    toledo_status_under_zero,
    &[0x02, 0x3f, 0x44, 0x0d],
    Reply::Status(StatusByte(0x44))
);
toledo_reply!(
    toledo_status_over_capacity,
    &[0x02, 0x3f, 0x42, 0x0d],
    Reply::Status(StatusByte(0x42))
);

#[test]
fn toledo_echo_probe() {
    assert_eq!(toledo8217::PROBE, &[0x45, 0x68, 0x65, 0x6c, 0x6c, 0x6f]);
    assert_eq!(
        toledo8217::PROBE_REPLY,
        &[0x02, 0x45, 0x0d, 0x68, 0x65, 0x6c, 0x6c, 0x6f]
    );
    assert_eq!(
        toledo8217::parse_reply(&toledo8217::PROBE_REPLY[..3]),
        Ok(Reply::EchoStart)
    );
    assert_eq!(toledo8217::PROBE_END, b"F");
}

#[test]
fn continuous_gross_stable_tare_0() {
    let bytes = [
        0x02, 0x2d, 0x30, 0x20, 0x30, 0x30, 0x31, 0x32, 0x33, 0x34, 0x30, 0x30, 0x30, 0x30, 0x30,
        0x30, 0x0d, 0x2a,
    ];
    let f = continuous::decode(&bytes, ContinuousConfig::FULL).unwrap();
    assert_eq!(f.weight, Weight::new(1234, 3, KG));
    assert_eq!(f.tare, Weight::new(0, 3, KG));
    assert!(!f.net && !f.motion && !f.out_of_range);
}

#[test]
fn continuous_net_motion_tare_0_500() {
    let bytes = [
        0x02, 0x2d, 0x39, 0x20, 0x30, 0x30, 0x31, 0x32, 0x33, 0x34, 0x30, 0x30, 0x30, 0x35, 0x30,
        0x30, 0x0d, 0x1c,
    ];
    let f = continuous::decode(&bytes, ContinuousConfig::FULL).unwrap();
    assert_eq!(f.weight, Weight::new(1234, 3, KG));
    assert_eq!(f.tare, Weight::new(500, 3, KG));
    assert!(f.net && f.motion && !f.out_of_range);
}

macro_rules! yaohua_a9 {
    ($name:ident, $bytes:expr, $value:expr, $decimals:expr) => {
        #[test]
        fn $name() {
            let bytes: [u8; 12] = $bytes;
            let w = Weight::new($value, $decimals, KG);
            assert_eq!(yaohua::decode_a9(&bytes), Ok(w));
            assert_eq!(yaohua::encode_a9(&w), Ok(bytes));
        }
    };
}

yaohua_a9!(
    yaohua_a9_plus_20_00,
    [
        0x02, 0x2b, 0x30, 0x30, 0x32, 0x30, 0x30, 0x30, 0x32, 0x31, 0x42, 0x03
    ],
    2000,
    2
);
yaohua_a9!(
    yaohua_a9_plus_1_250,
    [
        0x02, 0x2b, 0x30, 0x30, 0x31, 0x32, 0x35, 0x30, 0x33, 0x31, 0x45, 0x03
    ],
    1250,
    3
);
yaohua_a9!(
    yaohua_a9_minus_0_50,
    [
        0x02, 0x2d, 0x30, 0x30, 0x30, 0x30, 0x35, 0x30, 0x32, 0x31, 0x41, 0x03
    ],
    -50,
    2
);

#[test]
fn yaohua_eq_reversed_3_000() {
    assert_eq!(
        yaohua::decode_eq(b"000.3000", true),
        Ok(Weight::new(3000, 3, KG))
    );
    assert_eq!(
        yaohua::encode_eq(&Weight::new(3000, 3, KG), true),
        Ok(*b"=000.3000")
    );
}

#[test]
fn yaohua_eq_reversed_minus_1_00() {
    assert_eq!(
        yaohua::decode_eq(b"00.1000-", true),
        Ok(Weight::new(-100, 2, KG))
    );
    assert_eq!(
        yaohua::encode_eq(&Weight::new(-100, 2, KG), true),
        Ok(*b"=00.1000-")
    );
}

macro_rules! gs1_ok {
    ($name:ident, $bytes:expr, [$(($ai:expr, $value:expr)),*]) => {
        #[test]
        fn $name() {
            let es = gs1::parse($bytes).unwrap();
            let got: Vec<(&str, &str)> = es.iter().map(|e| (e.ai(), e.value)).collect();
            assert_eq!(got, vec![$(($ai, $value)),*]);
        }
    };
}

macro_rules! gs1_err {
    ($name:ident, $bytes:expr, $pattern:pat) => {
        #[test]
        fn $name() {
            let err = gs1::parse($bytes).unwrap_err();
            assert!(matches!(err, $pattern), "{err:?}");
            assert!(!err.to_string().is_empty());
        }
    };
}

gs1_ok!(
    gs1_gtin_expiry_batch,
    b"]d201095212345432131727123110ABC123",
    [("01", "09521234543213"), ("17", "271231"), ("10", "ABC123")]
);
gs1_ok!(
    gs1_gtin_batch_gs_serial,
    b"]C1010952123454321310LOT42\x1d21SER001",
    [("01", "09521234543213"), ("10", "LOT42"), ("21", "SER001")]
);
gs1_ok!(
    gs1_sscc,
    b"]C100006141411234567890",
    [("00", "006141411234567890")]
);
gs1_ok!(
    gs1_weight_then_price_last,
    b"]e00102112345678900310300125039221299",
    [
        ("01", "02112345678900"),
        ("3103", "001250"),
        ("3922", "1299")
    ]
);
gs1_ok!(
    gs1_price_gs_then_weight,
    b"]C1010211234567890039221299\x1d3103001250",
    [
        ("01", "02112345678900"),
        ("3922", "1299"),
        ("3103", "001250")
    ]
);
gs1_err!(
    gs1_bad_check_digit,
    b"]d20112345678901234",
    Gs1Error::BadCheckDigit {
        expected: 1,
        found: 4,
        ..
    }
);
gs1_err!(
    gs1_gtin_too_short,
    b"]d2011234567890123",
    Gs1Error::TooShort {
        len: 13,
        min: 14,
        ..
    }
);
gs1_err!(
    gs1_unknown_ai_89,
    b"]C1891234",
    Gs1Error::UnknownAi { offset: 0, .. }
);
gs1_ok!(
    gs1_day_00_is_end_of_month,
    b"]d2010952123454321317271200",
    [("01", "09521234543213"), ("17", "271200")]
);
gs1_err!(
    gs1_month_13,
    b"]d2010952123454321317271300",
    Gs1Error::BadMonth(_)
);
gs1_err!(
    gs1_batch_too_long,
    b"]C110AAAAAAAAAAAAAAAAAAAAA",
    Gs1Error::TooLong {
        len: 21,
        max: 20,
        ..
    }
);
gs1_ok!(
    gs1_missing_gs_swallows_serial,
    b"]C110ABC12321XYZ",
    [("10", "ABC12321XYZ")]
);
gs1_ok!(
    gs1_trailing_gs_tolerated,
    b"]d20112345678901231\x1d",
    [("01", "12345678901231")]
);
gs1_ok!(
    gs1_qr_three_elements,
    b"]Q3011231231231233310ABC123\x1d99TESTING",
    [
        ("01", "12312312312333"),
        ("10", "ABC123"),
        ("99", "TESTING")
    ]
);
gs1_err!(
    gs1_tilde_not_in_cset82,
    b"]C110AB~C",
    Gs1Error::BadCharacter {
        byte: b'~',
        position: 2,
        cset: Cset::Cset82,
        ..
    }
);

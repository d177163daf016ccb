//! GS1 element strings, Digital Link, check digits, scanner framing and trace-code classes.

use firmware_shim::codes::check::{
    gs1_check_digit, gs1_check_ok, luhn_check_digit, mod11_2_check_char,
};
use firmware_shim::codes::digital_link::{self, DlError};
use firmware_shim::codes::gs1::{self, AssociationError, Cset, Gs1Date, Gs1Error, Linter};
use firmware_shim::codes::trace::{
    Charset, CheckKind, PatternError, PatternMatch, SitePattern, TraceCode, TraceError, classify,
};
use firmware_shim::wire::framer::{FrameError, Terminator};
use firmware_shim::wire::scanner::{Affix, AimId, Scan, ScannerConfig, ScannerFramer, Symbology};

fn parse(s: &[u8]) -> Result<Vec<(String, String)>, Gs1Error> {
    gs1::parse(s).map(|es| {
        es.iter()
            .map(|e| (e.ai().to_string(), e.value.to_string()))
            .collect()
    })
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, v)| (a.to_string(), v.to_string()))
        .collect()
}

#[test]
fn check_digit_linter_vectors() {
    for good in [
        &b"02345673"[..],
        b"416000336108",
        b"1234567890128",
        b"12345678901231",
        b"123456789012345675",
    ] {
        assert!(gs1_check_ok(good), "{}", String::from_utf8_lossy(good));
    }
    for bad in [
        &b"12345673"[..],
        b"416000336109",
        b"1234567890129",
        b"12345678901232",
        b"123456789012345670",
        b"12345A78901231",
        b"",
    ] {
        assert!(!gs1_check_ok(bad), "{}", String::from_utf8_lossy(bad));
    }
    assert_eq!(gs1_check_digit(b"1234567"), Some(0));
    assert_eq!(gs1_check_digit(b"12a"), None);
    assert_eq!(luhn_check_digit(b"7992739871"), Some(3));
    // A well-known valid ISO 7064 MOD 11-2 example (CN resident ID layout).
    assert_eq!(mod11_2_check_char(b"11010519491231002"), Some(b'X'));
}

#[test]
fn dictionary_table_is_generated() {
    let sscc = gs1::lookup("00").unwrap();
    assert!(sscc.predefined && sscc.dl_primary_key == Some(""));
    assert_eq!((sscc.min_len(), sscc.max_len()), (18, 18));
    assert_eq!(sscc.title, "SSCC");
    let gtin = gs1::lookup("01").unwrap();
    assert_eq!(gtin.dl_primary_key, Some("22,10,21|235"));
    assert_eq!(gtin.components[0].linters, &[Linter::Csum]);
    let batch = gs1::lookup("10").unwrap();
    assert!(!batch.predefined);
    assert_eq!((batch.min_len(), batch.max_len()), (1, 20));
    assert_eq!(batch.components[0].cset, Cset::Cset82);
    assert!(gs1::lookup("3105").is_some() && gs1::lookup("3106").is_none());
    assert!(gs1::lookup("23").is_none() && gs1::lookup("235").is_some());
    assert_eq!(
        gs1::lookup("8010").unwrap().components[0].cset,
        Cset::Cset39
    );
    assert_eq!(
        gs1::lookup("8030").unwrap().components[0].cset,
        Cset::Cset64
    );
    assert_eq!(gs1::lookup("7003").unwrap().max_len(), 10);
    assert!(!gs1::lookup("7003").unwrap().predefined);
}

#[test]
fn gs1_research_note_vectors() {
    // Rows 1-5, 9, 12, 13 of the research notes' GS1 table (and 2, 4, 5 with extra checks).
    assert_eq!(
        parse(b"]d201095212345432131727123110ABC123").unwrap(),
        pairs(&[("01", "09521234543213"), ("17", "271231"), ("10", "ABC123")])
    );
    assert_eq!(
        parse(b"]C1010952123454321310LOT42\x1d21SER001").unwrap(),
        pairs(&[("01", "09521234543213"), ("10", "LOT42"), ("21", "SER001")])
    );
    let es = gs1::parse(b"]e00102112345678900310300125039221299").unwrap();
    let weight = es.iter().find(|e| e.ai() == "3103").unwrap();
    assert_eq!(weight.decimal(), Some((1250, 3)));
    let price = es.iter().find(|e| e.ai() == "3922").unwrap();
    assert_eq!(price.decimal(), Some((1299, 2)));
    // Row 12: the missing GS swallows (21); flagged by the association check.
    let es = gs1::parse(b"]C110ABC12321XYZ").unwrap();
    assert_eq!(es.get("10"), Some("ABC12321XYZ"));
    assert!(matches!(
        es.check_associations(),
        Err(AssociationError::MissingRequired { ai: "10", .. })
    ));
    // Row 15 with GS for '^': AI (01) is 14 digits, so the 15th digit breaks the string.
    assert!(gs1::parse(b"]C101123456789012345\x1d991234").is_err());
}

#[test]
fn gs1_own_vectors_from_dictionary() {
    // Fixed-length numeric with check digit: GLN (414) and SSCC (00).
    assert_eq!(
        parse(b"]C14141234567890128").unwrap(),
        pairs(&[("414", "1234567890128")])
    );
    assert!(matches!(
        gs1::parse(b"]C14141234567890129"),
        Err(Gs1Error::BadCheckDigit {
            expected: 8,
            found: 9,
            ..
        })
    ));
    assert!(matches!(
        gs1::parse(b"]C100006141411234567891"),
        Err(Gs1Error::BadCheckDigit { expected: 0, .. })
    ));
    // A redundant GS after a pre-defined-length AI is tolerated; two in a row are not.
    assert_eq!(
        parse(b"]C10109521234543213\x1d3012345678").unwrap(),
        pairs(&[("01", "09521234543213"), ("30", "12345678")])
    );
    assert_eq!(
        parse(b"]C110A\x1d\x1d21B").unwrap_err(),
        Gs1Error::MisplacedSeparator { offset: 4 }
    );
    // Variable numeric (30, N..8) and too long.
    assert_eq!(
        parse(b"]C1010952123454321330123456789"),
        Err(Gs1Error::TooLong {
            ai: gs1::Ai::from_bytes(b"30"),
            len: 9,
            max: 8
        })
    );
    assert_eq!(
        parse(b"]C101095212345432133012345678").unwrap(),
        pairs(&[("01", "09521234543213"), ("30", "12345678")])
    );
    // Numeric AI with a letter.
    assert!(matches!(
        gs1::parse(b"]C13012A4"),
        Err(Gs1Error::BadCharacter {
            byte: b'A',
            position: 2,
            cset: Cset::Numeric,
            ..
        })
    ));
    // Fixed length that still needs FNC1: 7003 YYMMDD HHMI.
    assert_eq!(
        parse(b"]C170032512312359\x1d10A").unwrap(),
        pairs(&[("7003", "2512312359"), ("10", "A")])
    );
    assert!(matches!(
        gs1::parse(b"]C170032512312460"),
        Err(Gs1Error::BadTime(_))
    ));
    assert!(matches!(
        gs1::parse(b"]C1700325123123"),
        Err(Gs1Error::TooShort { .. })
    ));
    // 7003 uses YYMMDD: day 00 is not allowed there, unlike (17).
    assert!(matches!(
        gs1::parse(b"]C170032512002359"),
        Err(Gs1Error::BadDay(_))
    ));
    // Bad dates.
    assert!(matches!(
        gs1::parse(b"]C117250230"),
        Err(Gs1Error::BadDay(_))
    ));
    assert!(gs1::parse(b"]C117240229").is_ok());
    assert!(matches!(
        gs1::parse(b"]C117250229"),
        Err(Gs1Error::BadDay(_))
    ));
    assert!(matches!(
        gs1::parse(b"]C117250001"),
        Err(Gs1Error::BadMonth(_))
    ));
    // CSET 39 (8010 CPID) rejects lowercase; CSET 82 accepts it.
    assert!(matches!(
        gs1::parse(b"]C18010abc"),
        Err(Gs1Error::BadCharacter {
            cset: Cset::Cset39,
            ..
        })
    ));
    assert!(gs1::parse(b"]C18010ABC-1#").is_ok());
    assert!(gs1::parse(b"]C110abc").is_ok());
    assert!(matches!(
        gs1::parse(b"]C110a b"),
        Err(Gs1Error::BadCharacter { byte: b' ', .. })
    ));
    // Unknown AIs and empty values.
    assert!(matches!(
        gs1::parse(b"]C123ABC"),
        Err(Gs1Error::UnknownAi { offset: 0, .. })
    ));
    assert!(matches!(gs1::parse(b"]C1"), Err(Gs1Error::Empty)));
    assert!(matches!(
        gs1::parse(b"]C110\x1d21A"),
        Err(Gs1Error::EmptyValue(_))
    ));
    // Non-GS1 symbology identifiers are refused.
    assert!(matches!(
        gs1::parse(b"]Q1TESTING"),
        Err(Gs1Error::NotGs1(_))
    ));
    // Conflicting duplicates are refused, identical ones tolerated.
    assert!(matches!(
        gs1::parse(b"]C110A\x1d10B"),
        Err(Gs1Error::ConflictingDuplicate(_))
    ));
    assert_eq!(gs1::parse(b"]C110A\x1d10A").unwrap().len(), 1);
    // Optional components: 8008 PROD TIME N6 N2 [N2][N2].
    assert!(gs1::parse(b"]C1800825123123").is_ok());
    assert!(gs1::parse(b"]C1800825123123595").is_err());
    assert!(gs1::parse(b"]C180082512312359").is_ok());
}

#[test]
fn gs1_too_many_elements() {
    let ais = [
        "90", "91", "92", "93", "94", "95", "96", "97", "98", "99", "240", "241", "250", "251",
        "400", "403", "420",
    ];
    let build = |n: usize| {
        let mut s = b"]C1".to_vec();
        for ai in &ais[..n] {
            s.extend_from_slice(format!("{ai}X\x1d").as_bytes());
        }
        s
    };
    assert_eq!(gs1::parse(&build(16)).unwrap().len(), 16);
    assert_eq!(gs1::parse(&build(17)), Err(Gs1Error::TooManyElements));
}

#[test]
fn gs1_encode_and_bracketed() {
    let es = gs1::parse(b"]C1010211234567890039221299\x1d3103001250").unwrap();
    let mut buf = [0u8; 64];
    let n = es.encode(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"010211234567890039221299\x1d3103001250");
    let n = es.write_bracketed(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"(01)02112345678900(3922)1299(3103)001250");
}

#[test]
fn gs1_bracketed_form() {
    // Research-note rows 16 and 17.
    let es = gs1::parse_bracketed(b"(01)12345678901231(10)12345").unwrap();
    let mut buf = [0u8; 64];
    let n = es.encode(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"01123456789012311012345");
    assert!(matches!(
        gs1::parse_bracketed(b"(17)9(90)217"),
        Err(Gs1Error::TooShort { .. })
    ));
    assert!(matches!(
        gs1::parse_bracketed(b"(23)1"),
        Err(Gs1Error::UnknownAi { .. })
    ));
    assert!(matches!(
        gs1::parse_bracketed(b"01"),
        Err(Gs1Error::UnknownAi { .. })
    ));
    assert!(matches!(
        gs1::parse_bracketed(b"(01"),
        Err(Gs1Error::UnknownAi { .. })
    ));
    assert!(matches!(
        gs1::parse_bracketed(b"(10)"),
        Err(Gs1Error::EmptyValue(_))
    ));
    // Round trip through the bracketed writer.
    let es = gs1::parse(b"]C1010211234567890039221299\x1d3103001250").unwrap();
    let n = es.write_bracketed(&mut buf).unwrap();
    let again = gs1::parse_bracketed(&buf[..n]).unwrap();
    assert!(again.iter().eq(es.iter()));
}

#[test]
fn gs1_dates_use_the_sliding_window() {
    let es = gs1::parse(b"]d2010952123454321317271200").unwrap();
    let expiry = es.iter().find(|e| e.ai() == "17").unwrap();
    assert_eq!(
        expiry.date(2026),
        Some(Gs1Date {
            year: 2027,
            month: 12,
            day: 0
        })
    );
    let es = gs1::parse(b"]C111990101").unwrap();
    assert_eq!(es.iter().next().unwrap().date(2026).unwrap().year, 1999);
}

#[test]
fn gtin14_normalises_short_gtins() {
    assert_eq!(&gs1::gtin14(b"2112345678900").unwrap(), b"02112345678900");
    assert_eq!(&gs1::gtin14(b"02345673").unwrap(), b"00000002345673");
    assert!(gs1::gtin14(b"2112345678901").is_err());
    assert!(gs1::gtin14(b"123").is_err());
}

fn dl(uri: &str) -> Result<Vec<(String, String)>, DlError> {
    let mut scratch = [0u8; 256];
    digital_link::parse(uri.as_bytes(), &mut scratch).map(|es| {
        es.iter()
            .map(|e| (e.ai().to_string(), e.value.to_string()))
            .collect()
    })
}

#[test]
fn digital_link_research_note_vectors() {
    // Row 18, also checked against its element-string form.
    let uri = b"https://id.gs1.org/01/09520123456788/10/ABC1/21/12345?17=180426";
    let mut scratch = [0u8; 128];
    let es = digital_link::parse(uri, &mut scratch).unwrap();
    let mut buf = [0u8; 64];
    let n = es.encode(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"010952012345678810ABC1\x1d2112345\x1d17180426");
    // Row 19.
    assert_eq!(
        dl("https://example.com/01/09520123456788?3103=000195&3922=0299&17=201225").unwrap(),
        pairs(&[
            ("01", "09520123456788"),
            ("3103", "000195"),
            ("3922", "0299"),
            ("17", "201225")
        ])
    );
    // Row 20: percent-decoding.
    assert_eq!(
        dl("https://a/01/12312312312333/22/ABC%2d123?99=ABC&98=XYZ%2f987").unwrap(),
        pairs(&[
            ("01", "12312312312333"),
            ("22", "ABC-123"),
            ("99", "ABC"),
            ("98", "XYZ/987")
        ])
    );
    // Row 21: '+' in the query is a space, which CSET 82 refuses.
    assert!(matches!(
        dl("https://a/01/12312312312333/22/ABC%2d123?99=ABC&98=XYZ+987"),
        Err(DlError::Value(Gs1Error::BadCharacter { byte: b' ', .. }))
    ));
    // Row 22-25.
    assert_eq!(
        dl("https://a/stem/00/006141411234567890/"),
        Err(DlError::TrailingSlash)
    );
    assert_eq!(
        dl("HtTp://a/b/00/006141411234567890"),
        Err(DlError::MixedCaseScheme)
    );
    assert!(matches!(
        dl("https://a/01/2112345678900"),
        Err(DlError::Value(Gs1Error::TooShort { .. }))
    ));
    assert!(matches!(
        dl("https://a/01/12312312312333?99=ABC&999=faux"),
        Err(DlError::UnknownQueryAi { .. })
    ));
    // Row 26: unknown non-numeric parameters are ignored.
    assert_eq!(
        dl("https://a/01/12312312312333?99=ABC&unknown=666&98=XYZ").unwrap(),
        pairs(&[("01", "12312312312333"), ("99", "ABC"), ("98", "XYZ")])
    );
}

#[test]
fn digital_link_own_vectors() {
    // Stem with a fake AI, uppercase scheme, fragment.
    assert_eq!(
        dl("HTTPS://example.com/00/stem/01/09520123456788#frag").unwrap(),
        pairs(&[("01", "09520123456788")])
    );
    assert_eq!(
        dl("https://a/00/006141411234567890").unwrap(),
        pairs(&[("00", "006141411234567890")])
    );
    // Qualifier order and mixing.
    assert!(dl("https://a/01/09520123456788/22/A/10/B/21/C").is_ok());
    assert!(matches!(
        dl("https://a/01/09520123456788/10/B/22/A"),
        Err(DlError::BadQualifier { .. })
    ));
    assert!(matches!(
        dl("https://a/01/09520123456788/22/A/235/X"),
        Err(DlError::BadQualifier { .. })
    ));
    assert!(dl("https://a/01/09520123456788/235/X").is_ok());
    assert_eq!(
        dl("https://a/gtin/09520123456788"),
        Err(DlError::NoPrimaryKey)
    );
    assert_eq!(dl("ftp://a/01/09520123456788"), Err(DlError::NotHttp));
    assert_eq!(dl("https:///01/09520123456788"), Err(DlError::NoDomain));
    assert_eq!(
        dl("https://a/01/09520123456788?10=%zz"),
        Err(DlError::BadPercentEncoding)
    );
    assert!(matches!(
        dl("https://a/01/09520123456788?21=X"),
        Err(DlError::NotDataAttribute { .. })
    ));
    assert!(matches!(
        dl("https://a/01/09520123456788?10="),
        Err(DlError::Value(Gs1Error::EmptyValue(_)))
    ));
    let mut tiny = [0u8; 4];
    assert_eq!(
        digital_link::parse(b"https://a/01/09520123456788", &mut tiny).unwrap_err(),
        DlError::ScratchFull
    );
}

fn frames(cfg: ScannerConfig, input: &[u8]) -> Vec<(Option<AimId>, Vec<u8>)> {
    let mut f = ScannerFramer::<128>::new(cfg);
    let mut out = Vec::new();
    for (i, &b) in input.iter().enumerate() {
        if let Some(Ok(scan)) = f.push(b, i as u64) {
            out.push((scan.aim, scan.data.to_vec()));
        }
    }
    out
}

/// Raw frame, AIM id, symbology, expected elements.
type ScannerCase = (
    &'static [u8],
    &'static str,
    Symbology,
    &'static [(&'static str, &'static str)],
);

#[test]
fn scanner_research_note_vectors() {
    let cfg = ScannerConfig::default();
    let cases: &[ScannerCase] = &[
        (
            b"]Q3011231231231233310ABC123\x1d99TESTING\r",
            "]Q3",
            Symbology::Gs1Qr,
            &[
                ("01", "12312312312333"),
                ("10", "ABC123"),
                ("99", "TESTING"),
            ],
        ),
        (
            b"]d2011231231231233310ABC123\x1d99TESTING\r",
            "]d2",
            Symbology::Gs1DataMatrix,
            &[
                ("01", "12312312312333"),
                ("10", "ABC123"),
                ("99", "TESTING"),
            ],
        ),
        (
            b"]C1011231231231233310ABC123\x1d99TESTING\r",
            "]C1",
            Symbology::Gs1_128,
            &[
                ("01", "12312312312333"),
                ("10", "ABC123"),
                ("99", "TESTING"),
            ],
        ),
        (
            b"]e0011231231231233310ABC123\x1d99TESTING\x1d98COMPOSITE\x1d97XYZ\r",
            "]e0",
            Symbology::Gs1DataBar,
            &[
                ("01", "12312312312333"),
                ("10", "ABC123"),
                ("99", "TESTING"),
                ("98", "COMPOSITE"),
                ("97", "XYZ"),
            ],
        ),
        (
            b"]d2011231231231233310ABC123\x1d99TESTING\x1d\r",
            "]d2",
            Symbology::Gs1DataMatrix,
            &[
                ("01", "12312312312333"),
                ("10", "ABC123"),
                ("99", "TESTING"),
            ],
        ),
    ];
    for (input, aim, sym, expected) in cases {
        let got = frames(cfg, input);
        assert_eq!(got.len(), 1);
        let (id, data) = &got[0];
        let id = id.unwrap();
        assert_eq!(id.to_string(), *aim);
        assert_eq!(id.symbology(), *sym);
        assert!(id.is_gs1());
        let es = gs1::parse_elements(data, Some(id)).unwrap();
        let got: Vec<_> = es
            .iter()
            .map(|e| (e.ai().to_string(), e.value.to_string()))
            .collect();
        assert_eq!(got, pairs(expected));
    }
    let linear: &[(&[u8], Symbology, &[u8])] = &[
        (b"]E02112345678900\r", Symbology::Ean13, b"2112345678900"),
        (b"]E00416000336108\r", Symbology::Ean13, b"0416000336108"),
        (b"]E402345673\r", Symbology::Ean8, b"02345673"),
        (b"]Q1TESTING\r", Symbology::Qr, b"TESTING"),
    ];
    for (input, sym, data) in linear {
        let got = frames(cfg, input);
        assert_eq!(got[0].0.unwrap().symbology(), *sym);
        assert_eq!(got[0].1, *data);
    }
    assert_eq!(&gs1::gtin14(b"2112345678900").unwrap(), b"02112345678900");
    let got = frames(cfg, b"2110001005008\r");
    assert_eq!(got, vec![(None, b"2110001005008".to_vec())]);
}

#[test]
fn scanner_terminators_affixes_and_idle_flush() {
    let crlf = frames(ScannerConfig::default(), b"ABC\r\nDEF\nGHI\r");
    assert_eq!(
        crlf.iter().map(|f| f.1.clone()).collect::<Vec<_>>(),
        vec![b"ABC".to_vec(), b"DEF".to_vec(), b"GHI".to_vec()]
    );
    let cfg = ScannerConfig {
        terminator: Terminator::Byte(b'\t'),
        prefix: Affix::new(b"P:").unwrap(),
        suffix: Affix::new(b"#").unwrap(),
        strip_stx_etx: true,
        idle_timeout_ms: None,
    };
    assert_eq!(
        frames(cfg, b"P:\x02]C0HELLO\x03#\t"),
        vec![(AimId::split(b"]C0").map(|x| x.0), b"HELLO".to_vec())]
    );
    // No terminator: frames end on the idle timeout only.
    let cfg = ScannerConfig {
        terminator: Terminator::None,
        idle_timeout_ms: Some(50),
        ..ScannerConfig::default()
    };
    let mut f = ScannerFramer::<32>::new(cfg);
    for (t, &b) in b"12345".iter().enumerate() {
        assert!(f.poll_idle(t as u64).is_none());
        assert!(f.push(b, t as u64).is_none());
    }
    assert!(f.poll_idle(30).is_none());
    let scan = f.poll_idle(54).unwrap().unwrap();
    assert_eq!(scan.data, b"12345");
    assert!(f.poll_idle(200).is_none());
    // Over-long frames are dropped and counted; memory stays bounded.
    let mut f = ScannerFramer::<8>::new(ScannerConfig::default());
    let mut results = Vec::new();
    for (t, &b) in b"0123456789ABCDEF\rOK\r".iter().enumerate() {
        if let Some(r) = f.push(b, t as u64) {
            results.push(r.map(|s| s.data.to_vec()));
        }
    }
    assert_eq!(results, vec![Err(FrameError::Overlong), Ok(b"OK".to_vec())]);
    assert_eq!(f.stats().overlong, 1);
    assert_eq!(f.stats().frames, 1);
}

fn scan(data: &[u8]) -> Scan<'_> {
    match AimId::split(data) {
        Some((aim, rest)) => Scan {
            aim: Some(aim),
            data: rest,
        },
        None => Scan { aim: None, data },
    }
}

#[test]
fn trace_code_classes() {
    let mut scratch = [0u8; 256];
    let patterns = [
        SitePattern::parse("sc-licence:SC:N:14").unwrap(),
        SitePattern::parse("id::N:18:mod11").unwrap(),
    ];
    let c = classify(
        &scan(b"]d201095212345432132112345\x1d10B1"),
        &patterns,
        &mut scratch,
    )
    .unwrap();
    assert!(matches!(
        c,
        TraceCode::Gs1Item {
            gtin: "09521234543213",
            serial: "12345",
            ..
        }
    ));
    let c = classify(&scan(b"]C100006141411234567890"), &patterns, &mut scratch).unwrap();
    assert!(matches!(
        c,
        TraceCode::Sscc {
            sscc: "006141411234567890",
            ..
        }
    ));
    let c = classify(&scan(b"]C1010952123454321310LOT"), &patterns, &mut scratch).unwrap();
    assert!(matches!(c, TraceCode::Gs1Other { .. }));
    let c = classify(&scan(b"81234567890123456789"), &patterns, &mut scratch).unwrap();
    let TraceCode::CnDrug(code) = c else {
        panic!("{c:?}")
    };
    assert_eq!(
        (code.product_code(), code.serial(), code.check()),
        ("8123456", "789012345", "6789")
    );
    let c = classify(&scan(b"]C012345678901234567890"), &patterns, &mut scratch).unwrap();
    assert!(
        matches!(c, TraceCode::Opaque { .. }),
        "20 digits not starting with 8: {c:?}"
    );
    let c = classify(&scan(b"SC10644010500012"), &patterns, &mut scratch).unwrap();
    assert!(matches!(
        c,
        TraceCode::Site {
            pattern: 0,
            name: "sc-licence",
            ..
        }
    ));
    let c = classify(&scan(b"11010519491231002X"), &patterns, &mut scratch).unwrap();
    assert!(matches!(c, TraceCode::Site { pattern: 1, .. }));
    assert_eq!(
        classify(&scan(b"110105194912310021"), &patterns, &mut scratch),
        Err(TraceError::SitePatternCheck {
            name: "id",
            expected: b'X',
            found: b'1'
        })
    );
    let c = classify(&scan(b"]E00416000336108"), &patterns, &mut scratch).unwrap();
    assert!(matches!(
        c,
        TraceCode::Gtin {
            digits: "0416000336108"
        }
    ));
    assert_eq!(
        classify(&scan(b"]E00416000336109"), &patterns, &mut scratch),
        Err(TraceError::BadCheckDigit {
            expected: 8,
            found: 9
        })
    );
    let c = classify(&scan(b"2110001005008"), &patterns, &mut scratch).unwrap();
    assert!(matches!(c, TraceCode::ScaleLabel { .. }));
    let c = classify(&scan(b"261000101299012509"), &patterns, &mut scratch).unwrap();
    assert!(matches!(c, TraceCode::ScaleLabel { .. }));
    assert!(matches!(
        classify(&scan(b"]d20112345678901234"), &patterns, &mut scratch),
        Err(TraceError::Gs1(Gs1Error::BadCheckDigit { .. }))
    ));
    let c = classify(
        &scan(b"https://id.gs1.org/01/09520123456788/21/XYZ"),
        &patterns,
        &mut scratch,
    )
    .unwrap();
    assert!(matches!(c, TraceCode::Gs1Item { serial: "XYZ", .. }));
    let c = classify(
        &scan(b"https://vendor.example/t?c=1"),
        &patterns,
        &mut scratch,
    )
    .unwrap();
    assert!(matches!(c, TraceCode::Opaque { .. }));
    assert!(matches!(
        classify(
            &scan(b"https://a/01/09520123456789"),
            &patterns,
            &mut scratch
        ),
        Err(TraceError::DigitalLink(_))
    ));
    // Un-flagged GS1 data (scanner without AIM ids).
    let c = classify(&scan(b"010952123454321321A1"), &patterns, &mut scratch).unwrap();
    assert!(matches!(c, TraceCode::Gs1Item { .. }));
    assert_eq!(
        classify(&scan(b""), &patterns, &mut scratch),
        Err(TraceError::Empty)
    );
    let c = classify(&scan("药品".as_bytes()), &patterns, &mut scratch).unwrap();
    assert!(matches!(c, TraceCode::Opaque { .. }));
}

#[test]
fn site_pattern_language() {
    let p = SitePattern::parse("vet::N:24").unwrap();
    assert_eq!(
        (p.prefix, p.charset, p.min_len, p.max_len, p.check),
        ("", Charset::Digits, 24, 24, CheckKind::None)
    );
    let p = SitePattern::parse("lot:L-:A:4-10:mod10").unwrap();
    assert_eq!(
        (p.min_len, p.max_len, p.check),
        (4, 10, CheckKind::Gs1Mod10)
    );
    assert_eq!(
        p.test(b"L-1234567"),
        PatternMatch::BadCheck {
            expected: b'5',
            found: b'7'
        }
    );
    assert_eq!(p.test(b"L-1234565"), PatternMatch::Match);
    assert_eq!(p.test(b"X-1234565"), PatternMatch::NoMatch);
    assert_eq!(p.test(b"L-12"), PatternMatch::NoMatch);
    assert_eq!(SitePattern::parse("x"), Err(PatternError::Shape));
    assert_eq!(SitePattern::parse(":a:N:1"), Err(PatternError::EmptyName));
    assert_eq!(SitePattern::parse("a::Q:1"), Err(PatternError::BadCharset));
    assert_eq!(SitePattern::parse("a::N:5-2"), Err(PatternError::BadLength));
    assert_eq!(SitePattern::parse("a::N:0"), Err(PatternError::BadLength));
    assert_eq!(
        SitePattern::parse("a::N:5:crc"),
        Err(PatternError::BadCheck)
    );
    assert_eq!(
        SitePattern::parse("a::N:5:luhn:x"),
        Err(PatternError::Shape)
    );
    // Every rejection has a readable reason.
    assert_eq!(
        PatternError::BadCheck.to_string(),
        "check must be none, mod10, luhn or mod11"
    );
    let e = gs1::parse(b"]C110AB~C").unwrap_err();
    assert_eq!(
        e.to_string(),
        "AI (10): byte 0x7e at position 2 is not in CSET 82"
    );
}

//! Check-digit algorithms: the GS1 mod-10 (weights 3,1 from the right), Luhn, and ISO/IEC 7064
//! MOD 11-2. Pure functions over ASCII digits; they must not allocate or panic.

/// GS1 check digit for `body` (ASCII digits, without the check digit); `None` on a non-digit.
///
/// One algorithm covers GTIN-8/12/13/14, SSCC, GLN and GSRN.
pub fn gs1_check_digit(body: &[u8]) -> Option<u8> {
    let mut sum = 0u32;
    let mut weight = 3;
    for &c in body.iter().rev() {
        if !c.is_ascii_digit() {
            return None;
        }
        sum += u32::from(c - b'0') * weight;
        weight = 4 - weight;
    }
    Some(((10 - sum % 10) % 10) as u8)
}

/// True when the last digit of `digits` is its GS1 check digit.
pub fn gs1_check_ok(digits: &[u8]) -> bool {
    match digits.split_last() {
        Some((&last, body)) if last.is_ascii_digit() => gs1_check_digit(body) == Some(last - b'0'),
        _ => false,
    }
}

/// Luhn check digit for `body` (ASCII digits, without the check digit).
pub fn luhn_check_digit(body: &[u8]) -> Option<u8> {
    let mut sum = 0u32;
    let mut double = true;
    for &c in body.iter().rev() {
        if !c.is_ascii_digit() {
            return None;
        }
        let mut d = u32::from(c - b'0');
        if double {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        double = !double;
    }
    Some(((10 - sum % 10) % 10) as u8)
}

/// ISO/IEC 7064 MOD 11-2 check character for `body` (ASCII digits): `b'0'..=b'9'` or `b'X'`.
pub fn mod11_2_check_char(body: &[u8]) -> Option<u8> {
    let mut p = 0u32;
    for &c in body {
        if !c.is_ascii_digit() {
            return None;
        }
        p = ((p + u32::from(c - b'0')) * 2) % 11;
    }
    let check = (12 - p % 11) % 11;
    Some(if check == 10 {
        b'X'
    } else {
        b'0' + check as u8
    })
}

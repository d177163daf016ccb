//! GS1 Digital Link URIs: `https://<domain>[/<stem>]/<key AI>/<value>[/<qualifier AI>/<value>…]
//! [?<AI>=<value>&…][#fragment]`.
//!
//! The primary key is the rightmost one in the path; qualifiers must follow one of the key's
//! orders from the syntax dictionary; query parameters that are AIs become elements, other
//! non-numeric parameters are ignored, numeric non-AI ones are errors. Values are
//! percent-decoded into a caller-provided scratch buffer (in the query `+` is a space, which then
//! fails CSET 82). This module must not allocate and does not resolve or fetch anything.

use core::fmt;

use super::gs1::{self, AiEntry, Element, ElementString, Gs1Error, MAX_ELEMENTS};

/// Most path segments considered.
pub const MAX_SEGMENTS: usize = 32;

/// Why a URI was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DlError {
    /// Not an `http://` or `https://` URI.
    NotHttp,
    /// The scheme is in mixed case (`HtTp`).
    MixedCaseScheme,
    /// No domain before the path.
    NoDomain,
    /// The path ends with `/`.
    TrailingSlash,
    /// No GS1 primary key AI with a value at the end of the path.
    NoPrimaryKey,
    /// A qualifier is not allowed for the key or is out of order.
    BadQualifier {
        /// The qualifier AI as it appeared.
        ai: gs1::Ai,
    },
    /// A numeric query parameter that is not a known AI.
    UnknownQueryAi {
        /// The parameter name.
        ai: gs1::Ai,
    },
    /// A query AI that is not allowed as a Digital Link data attribute.
    NotDataAttribute {
        /// The AI.
        ai: gs1::Ai,
    },
    /// A `%` not followed by two hex digits.
    BadPercentEncoding,
    /// A byte outside printable ASCII in the URI.
    BadCharacter(u8),
    /// More path segments than [`MAX_SEGMENTS`].
    TooManySegments,
    /// The scratch buffer is too small for the decoded values.
    ScratchFull,
    /// A value failed GS1 validation.
    Value(Gs1Error),
}

impl From<Gs1Error> for DlError {
    fn from(e: Gs1Error) -> Self {
        DlError::Value(e)
    }
}

impl fmt::Display for DlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotHttp => f.write_str("not an http(s) URI"),
            Self::MixedCaseScheme => f.write_str("URI scheme in mixed case"),
            Self::NoDomain => f.write_str("URI has no domain"),
            Self::TrailingSlash => f.write_str("URI path ends with '/'"),
            Self::NoPrimaryKey => f.write_str("no GS1 primary key in the URI path"),
            Self::BadQualifier { ai } => write!(f, "qualifier {ai} not allowed here"),
            Self::UnknownQueryAi { ai } => write!(f, "numeric query parameter {ai} is not an AI"),
            Self::NotDataAttribute { ai } => write!(f, "AI {ai} is not a Digital Link attribute"),
            Self::BadPercentEncoding => f.write_str("bad percent-encoding"),
            Self::BadCharacter(b) => write!(f, "byte 0x{b:02x} not allowed in a URI"),
            Self::TooManySegments => write!(f, "more than {MAX_SEGMENTS} path segments"),
            Self::ScratchFull => f.write_str("scratch buffer too small"),
            Self::Value(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for DlError {}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_ai(seg: &str) -> Option<&'static AiEntry> {
    if (2..=4).contains(&seg.len()) && seg.bytes().all(|b| b.is_ascii_digit()) {
        gs1::lookup(seg)
    } else {
        None
    }
}

/// True when `qualifiers` follow one of the orders in `spec` (`22,10,21|235`).
fn qualifiers_ok<'s>(
    spec: &str,
    qualifiers: impl Iterator<Item = &'s str> + Clone,
) -> Result<(), &'s str> {
    let mut first_bad = None;
    for alternative in spec.split('|') {
        let mut order = alternative.split(',').filter(|s| !s.is_empty());
        let mut ok = true;
        for q in qualifiers.clone() {
            if !order.by_ref().any(|a| a == q) {
                ok = false;
                first_bad.get_or_insert(q);
                break;
            }
        }
        if ok {
            return Ok(());
        }
    }
    Err(first_bad.unwrap_or(""))
}

struct Pending {
    entry: &'static AiEntry,
    start: usize,
    end: usize,
}

struct Decoder<'s> {
    scratch: &'s mut [u8],
    len: usize,
    pending: [Option<Pending>; MAX_ELEMENTS],
    count: usize,
}

impl Decoder<'_> {
    fn add(
        &mut self,
        entry: &'static AiEntry,
        raw: &str,
        plus_is_space: bool,
    ) -> Result<(), DlError> {
        let start = self.len;
        let bytes = raw.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = match bytes[i] {
                b'%' => {
                    let (Some(h), Some(l)) = (
                        bytes.get(i + 1).copied().and_then(hex),
                        bytes.get(i + 2).copied().and_then(hex),
                    ) else {
                        return Err(DlError::BadPercentEncoding);
                    };
                    i += 2;
                    (h << 4) | l
                }
                b'+' if plus_is_space => b' ',
                other => other,
            };
            *self.scratch.get_mut(self.len).ok_or(DlError::ScratchFull)? = b;
            self.len += 1;
            i += 1;
        }
        gs1::validate_value(entry, &self.scratch[start..self.len])?;
        let slot = self
            .pending
            .get_mut(self.count)
            .ok_or(DlError::Value(Gs1Error::TooManyElements))?;
        *slot = Some(Pending {
            entry,
            start,
            end: self.len,
        });
        self.count += 1;
        Ok(())
    }
}

/// Parses a GS1 Digital Link URI; decoded values are stored in `scratch` and borrowed by the
/// result. Elements come in URI order: path key, qualifiers, then query attributes.
pub fn parse<'s>(uri: &[u8], scratch: &'s mut [u8]) -> Result<ElementString<'s>, DlError> {
    if let Some(&b) = uri.iter().find(|b| !b.is_ascii_graphic()) {
        return Err(DlError::BadCharacter(b));
    }
    let uri = core::str::from_utf8(uri).map_err(|_| DlError::BadCharacter(0))?;
    let rest = ["https://", "http://", "HTTPS://", "HTTP://"]
        .iter()
        .find_map(|s| uri.strip_prefix(s));
    let rest = match rest {
        Some(r) => r,
        None => {
            let lower_ok = |p: &str| {
                uri.len() >= p.len() && uri.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
            };
            return Err(if lower_ok("https://") || lower_ok("http://") {
                DlError::MixedCaseScheme
            } else {
                DlError::NotHttp
            });
        }
    };
    let rest = rest.split('#').next().unwrap_or("");
    let (before_query, query) = match rest.find('?') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let (domain, path) = match before_query.find('/') {
        Some(i) => (&before_query[..i], &before_query[i + 1..]),
        None => (before_query, ""),
    };
    if domain.is_empty() {
        return Err(DlError::NoDomain);
    }
    if before_query.ends_with('/') && !path.is_empty() {
        return Err(DlError::TrailingSlash);
    }
    let mut segments = [""; MAX_SEGMENTS];
    let mut n = 0;
    for seg in path.split('/') {
        *segments.get_mut(n).ok_or(DlError::TooManySegments)? = seg;
        n += 1;
    }
    // Walk back over (AI, value) pairs to the rightmost primary key.
    let mut key_at = None;
    let mut k = n;
    while k >= 2 {
        k -= 2;
        let Some(entry) = is_ai(segments[k]) else {
            break;
        };
        if entry.dl_primary_key.is_some() {
            key_at = Some((k, entry));
            break;
        }
    }
    let (key_at, key) = key_at.ok_or(DlError::NoPrimaryKey)?;
    let quals = (key_at + 2..n).step_by(2).map(|i| segments[i]);
    if let Err(bad) = qualifiers_ok(key.dl_primary_key.unwrap_or(""), quals) {
        return Err(DlError::BadQualifier {
            ai: gs1::Ai::from_bytes(bad.as_bytes()),
        });
    }
    let mut dec = Decoder {
        scratch,
        len: 0,
        pending: [const { None }; MAX_ELEMENTS],
        count: 0,
    };
    for i in (key_at..n).step_by(2) {
        let entry = is_ai(segments[i]).ok_or(DlError::NoPrimaryKey)?;
        dec.add(entry, segments[i + 1], false)?;
    }
    for param in query.split('&').filter(|p| !p.is_empty()) {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let ai = gs1::Ai::from_bytes(name.as_bytes());
        let entry = is_ai(name).ok_or(DlError::UnknownQueryAi { ai })?;
        if !entry.dl_attribute {
            return Err(DlError::NotDataAttribute { ai });
        }
        dec.add(entry, value, true)?;
    }
    let Decoder {
        scratch,
        pending,
        count,
        ..
    } = dec;
    let scratch: &'s [u8] = scratch;
    let mut out = ElementString::new(None);
    for p in pending[..count].iter().flatten() {
        let value =
            core::str::from_utf8(&scratch[p.start..p.end]).map_err(|_| DlError::BadCharacter(0))?;
        out.push(Element {
            entry: p.entry,
            value,
        })?;
    }
    Ok(out)
}

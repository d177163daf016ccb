//! Baseline JPEG read at 1/8 scale from DC coefficients only: the fast path for photos many
//! times larger than the model input (a 12 MP photo for a 224×224 model).
//!
//! At 1/8 scale each 8×8 block becomes one pixel, its DC value (what libjpeg-turbo's 1×1 IDCT
//! computes too). The time then goes to entropy-decoding the AC coefficients only to skip them,
//! so this decoder never builds them: one lookup of the next 12 bits gives the bits and the
//! coefficient advance of every whole symbol (code and magnitude together) those bits hold, and
//! whether they end the block. That is where it is faster than libjpeg-turbo, which decodes
//! each code and then its magnitude bits. Chroma is what libjpeg-turbo makes of it at 1/8:
//! with 4:2:0 sampling (what most cameras write) each chroma block becomes 2×2 pixels by
//! libjpeg-turbo's reduced 2×2 IDCT, so chroma blocks are decoded with their AC coefficients;
//! with 4:2:2 or 4:4:0 chroma DC is replicated (libjpeg-turbo's "fancy" upsampling is off at
//! 1/8). The pixels are then those of libjpeg-turbo at the same scale, within one level of
//! rounding in its SIMD colour conversion.
//!
//! It handles what cameras write: one interleaved baseline (or extended sequential) Huffman
//! scan, 8-bit, greyscale or YCbCr with luma sampled 1 or 2 times chroma on each axis, restart
//! markers. Anything else, and anything suspicious — an unknown marker, a bad Huffman code, a
//! scan cut short, bytes left over before a marker, a wrong restart number, a missing EOI — is
//! `NotHandled`, and the caller hands the file to libjpeg-turbo, which decodes it or names the
//! error. So this path is never more lenient than libjpeg-turbo with stop-on-warning.
//! Pure Rust, no `unsafe`, no I/O.

/// Why the fast path declined a file (the caller falls back to libjpeg-turbo).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotHandled(pub(crate) &'static str);

/// A picture decoded at 1/8 scale: packed RGB, ceil(width / 8) × ceil(height / 8).
pub(crate) struct EighthRgb {
    pub(crate) rgb: Vec<u8>,
    pub(crate) width: u32,
    pub(crate) height: u32,
}

/// Bits looked up at once for AC codes; longer codes take the slow path.
const AC_LOOKAHEAD: u32 = 12;
/// Bits looked up at once for DC codes.
const DC_LOOKAHEAD: u32 = 9;

type Result<T> = std::result::Result<T, NotHandled>;

fn no(reason: &'static str) -> NotHandled {
    NotHandled(reason)
}

/// The canonical code of one DHT table, for codes longer than a lookahead table covers.
struct Canonical {
    /// Largest code of each length (index 1..=16), -1 if none.
    max_code: [i32; 18],
    /// Index in `values` of the first code of each length, minus that code.
    value_offset: [i32; 17],
    values: Vec<u8>,
}

/// One code: its length, its bits (right-aligned) and its symbol.
struct Code {
    len: u32,
    bits: u32,
    symbol: u8,
}

impl Canonical {
    /// Builds from a DHT table (counts per length 1..=16 and symbols), rejecting tables that
    /// overflow their code space as libjpeg does; returns the codes too.
    fn build(counts: &[u8; 16], values: &[u8]) -> Result<(Self, Vec<Code>)> {
        let mut max_code = [-1i32; 18];
        let mut value_offset = [0i32; 17];
        let mut codes = Vec::with_capacity(values.len());
        let mut code: u32 = 0;
        for len in 1..=16u32 {
            let n = usize::from(counts[len as usize - 1]);
            if n > 0 {
                value_offset[len as usize] = codes.len() as i32 - code as i32;
                for _ in 0..n {
                    // libjpeg's check (JERR_BAD_HUFF_TABLE): the codes of each length must
                    // leave the all-ones code of that length unused.
                    if code >= (1 << len) - 1 {
                        return Err(no("Huffman table overflows its code space"));
                    }
                    let symbol = *values
                        .get(codes.len())
                        .ok_or(no("Huffman table too short"))?;
                    codes.push(Code {
                        len,
                        bits: code,
                        symbol,
                    });
                    code += 1;
                }
                max_code[len as usize] = code as i32 - 1;
            }
            code <<= 1;
        }
        let table = Self {
            max_code,
            value_offset,
            values: values[..codes.len()].to_vec(),
        };
        Ok((table, codes))
    }

    /// Decodes a code longer than `covered` bits from MSB-aligned `bits`: (length, symbol).
    #[cold]
    fn decode_long(&self, bits: u64, covered: u32) -> Result<(u32, u8)> {
        for len in covered + 1..=16 {
            let code = (bits >> (64 - len)) as i32;
            if code <= self.max_code[len as usize] {
                let i = usize::try_from(self.value_offset[len as usize] + code)
                    .map_err(|_| no("bad Huffman code"))?;
                return Ok((len, *self.values.get(i).ok_or(no("bad Huffman code"))?));
            }
        }
        Err(no("bad Huffman code"))
    }
}

/// Fills `N`-bit lookahead slots: every index starting with a code of at most `lookahead` bits
/// gets `entry(code)`.
fn lookahead_slots<T: Copy + Default, const N: usize>(
    codes: &[Code],
    lookahead: u32,
    entry: impl Fn(&Code) -> T,
) -> Box<[T; N]> {
    let mut slots: Box<[T; N]> = vec![T::default(); N]
        .into_boxed_slice()
        .try_into()
        .unwrap_or_else(|_| unreachable!("the vector has N slots"));
    for code in codes.iter().filter(|c| c.len <= lookahead) {
        let shift = lookahead - code.len;
        let first = (code.bits << shift) as usize;
        slots[first..first + (1 << shift)].fill(entry(code));
    }
    slots
}

/// A DC table: each lookahead slot holds code length (high byte) and magnitude size (low
/// byte); 0 for codes longer than the lookahead.
struct DcTable {
    fast: Box<[u16; 1 << DC_LOOKAHEAD]>,
    canonical: Canonical,
}

impl DcTable {
    fn build(counts: &[u8; 16], values: &[u8]) -> Result<Self> {
        if values.iter().any(|&s| s > 15) {
            return Err(no("DC symbol above 15"));
        }
        let (canonical, codes) = Canonical::build(counts, values)?;
        let fast = lookahead_slots(&codes, DC_LOOKAHEAD, |c| {
            ((c.len as u16) << 8) | u16::from(c.symbol)
        });
        Ok(Self { fast, canonical })
    }
}

/// Bits and index advance of an AC symbol: an end-of-block jumps past coefficient 63, ZRL
/// skips 16 zeros, anything else skips its run and one coefficient.
fn ac_step(len: u32, symbol: u8) -> (u32, u32) {
    let (run, size) = (u32::from(symbol >> 4), u32::from(symbol & 15));
    let advance = match (run, size) {
        (15, 0) => 16,
        (_, 0) => 64,
        _ => run + 1,
    };
    (len + size, advance)
}

/// An AC table for skipping coefficients. Each lookahead slot describes, for the next
/// `AC_LOOKAHEAD` bits:
/// - the run of whole symbols (code and magnitude) those bits hold: bits they take
///   (bits 0–4, low so the shift needs no masking), the index advance of its symbols before
///   any end-of-block (bits 5–11; 127 when not even the first symbol fits), and whether it
///   ends with an end-of-block (bit 12);
/// - the first symbol alone: bits to skip (bits 16–20) and index advance (bits 21–27).
///
/// 0 marks codes longer than the lookahead.
struct AcTable {
    fast: Box<[u32; 1 << AC_LOOKAHEAD]>,
    /// For decoding coefficient values: code length (high byte) and symbol (low byte) of the
    /// code each lookahead value starts with; 0 for codes longer than the lookahead.
    symbols: Box<[u16; 1 << AC_LOOKAHEAD]>,
    canonical: Canonical,
}

const RUN_ADVANCE_SHIFT: u32 = 5;
const RUN_EOB: u32 = 1 << 12;
const NO_RUN: u32 = 127 << RUN_ADVANCE_SHIFT;
const FIRST_SKIP_SHIFT: u32 = 16;
const FIRST_ADVANCE_SHIFT: u32 = 21;

impl AcTable {
    fn build(counts: &[u8; 16], values: &[u8]) -> Result<Self> {
        let (canonical, codes) = Canonical::build(counts, values)?;
        let l = AC_LOOKAHEAD;
        // (length, symbol) of the code each lookahead value starts with, 0 length if longer.
        let first: Box<[(u32, u8); 1 << AC_LOOKAHEAD]> =
            lookahead_slots(&codes, l, |c| (c.len, c.symbol));
        let mut fast = lookahead_slots::<u32, { 1 << AC_LOOKAHEAD }>(&[], l, |_| 0);
        for (prefix, slot) in fast.iter_mut().enumerate() {
            let (len, symbol) = first[prefix];
            if len == 0 {
                continue;
            }
            let (skip, advance) = ac_step(len, symbol);
            // Whole symbols (code and magnitude) held by the lookahead bits.
            let (mut used, mut run_advance, mut eob) = (0u32, 0u32, false);
            loop {
                let rest = (prefix << used) & ((1 << l) - 1);
                let (len, symbol) = first[rest];
                if len == 0 || len > l - used {
                    break;
                }
                let (bits, step) = ac_step(len, symbol);
                if used + bits > l {
                    break;
                }
                used += bits;
                if step == 64 {
                    eob = true;
                    break;
                }
                run_advance += step;
            }
            let run = if used == 0 {
                NO_RUN
            } else {
                used | (run_advance.min(127) << RUN_ADVANCE_SHIFT) | if eob { RUN_EOB } else { 0 }
            };
            *slot = run | (skip << FIRST_SKIP_SHIFT) | (advance << FIRST_ADVANCE_SHIFT);
        }
        let symbols = lookahead_slots(&codes, l, |c| ((c.len as u16) << 8) | u16::from(c.symbol));
        Ok(Self {
            fast,
            symbols,
            canonical,
        })
    }
}

/// MSB-first bit reader over entropy-coded data. Byte stuffing is undone; at a marker (or the
/// end of the data) it feeds zero bits and counts them, so running past the data is detected
/// afterwards instead of checked per symbol.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    buf: u64,
    /// Valid bits at the top of `buf`, zero bits fed after a marker included.
    count: u32,
    /// Zero bits fed since the marker was reached.
    fed_zeros: u32,
    at_marker: bool,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        Self {
            data,
            pos,
            buf: 0,
            count: 0,
            fed_zeros: 0,
            at_marker: false,
        }
    }

    /// Returns `buf` and `count` topped up to at least 57 bits. The hot loop keeps the bit
    /// buffer in locals and hands it over only here, so it stays in registers.
    #[inline(always)]
    fn refill(&mut self, buf: u64, count: u32) -> (u64, u32) {
        if !self.at_marker
            && let Some(chunk) = self.data.get(self.pos..self.pos + 8)
        {
            let mut be = [0u8; 8];
            be.copy_from_slice(chunk);
            let x = u64::from_be_bytes(be);
            // A zero byte in !x is a 0xFF byte in x (stuffing or a marker): take the slow way.
            let inv = !x;
            let has_ff =
                inv.wrapping_sub(0x0101_0101_0101_0101) & !inv & 0x8080_8080_8080_8080 != 0;
            if !has_ff {
                let bytes = (63 - count) >> 3;
                let kept = x & !(u64::MAX >> (bytes * 8));
                self.pos += bytes as usize;
                return (buf | (kept >> count), count + bytes * 8);
            }
        }
        self.refill_bytewise(buf, count)
    }

    #[cold]
    #[inline(never)]
    fn refill_bytewise(&mut self, mut buf: u64, mut count: u32) -> (u64, u32) {
        while count <= 56 {
            let byte = if self.at_marker {
                0
            } else {
                match self.data.get(self.pos) {
                    Some(&0xFF) => {
                        // 0xFF, any fill 0xFFs, then 0x00 is a data 0xFF; anything else a marker.
                        let mut next = self.pos + 1;
                        while self.data.get(next) == Some(&0xFF) {
                            next += 1;
                        }
                        if self.data.get(next) == Some(&0x00) {
                            self.pos = next + 1;
                            0xFF
                        } else {
                            self.at_marker = true;
                            0
                        }
                    }
                    Some(&b) => {
                        self.pos += 1;
                        b
                    }
                    None => {
                        self.at_marker = true;
                        0
                    }
                }
            };
            if self.at_marker {
                self.fed_zeros += 8;
            }
            buf |= u64::from(byte) << (56 - count);
            count += 8;
        }
        (buf, count)
    }

    /// Whether a zero bit fed past the data was consumed (the scan was cut short).
    fn overran(&self) -> bool {
        self.count < self.fed_zeros
    }

    /// Ends a run of entropy-coded data: it must have ended with at most 7 padding bits, right
    /// before a marker. Returns the marker byte and moves past it.
    fn finish(&mut self) -> Result<u8> {
        if self.overran() {
            return Err(no("entropy-coded data ends early"));
        }
        if self.count - self.fed_zeros >= 8 {
            return Err(no("extraneous bytes before a marker"));
        }
        if self.data.get(self.pos) != Some(&0xFF) {
            return Err(no("extraneous bytes before a marker"));
        }
        let mut p = self.pos + 1;
        while self.data.get(p) == Some(&0xFF) {
            p += 1;
        }
        let marker = *self.data.get(p).ok_or(no("data ends without a marker"))?;
        self.pos = p + 1;
        self.buf = 0;
        self.count = 0;
        self.fed_zeros = 0;
        self.at_marker = false;
        Ok(marker)
    }
}

#[derive(Clone, Copy)]
struct FrameComponent {
    id: u8,
    h: usize,
    v: usize,
    quant: usize,
}

#[derive(Clone, Copy)]
struct ScanComponent {
    /// Index into the frame's components.
    frame_index: usize,
    dc_table: usize,
    ac_table: usize,
}

/// Everything the markers before the scan said.
struct Header {
    width: usize,
    height: usize,
    components: Vec<FrameComponent>,
    scan: Vec<ScanComponent>,
    /// First byte of entropy-coded data.
    scan_start: usize,
    restart_interval: usize,
    /// Quantisation tables in natural (row-major) order.
    quant: [Option<Quant>; 4],
    dc_tables: [Option<DcTable>; 4],
    ac_tables: [Option<AcTable>; 4],
}

fn be16(data: &[u8], at: usize) -> Result<usize> {
    match data.get(at..at + 2) {
        Some(b) => Ok(usize::from(u16::from_be_bytes([b[0], b[1]]))),
        None => Err(no("marker segment cut short")),
    }
}

fn parse_header(data: &[u8]) -> Result<Header> {
    if data.get(..2) != Some(&[0xFF, 0xD8]) {
        return Err(no("no SOI marker"));
    }
    let mut pos = 2;
    let mut frame: Option<(usize, usize, Vec<FrameComponent>)> = None;
    let mut restart_interval = 0;
    let mut quant = [None; 4];
    let mut dc_tables: [Option<DcTable>; 4] = Default::default();
    let mut ac_tables: [Option<AcTable>; 4] = Default::default();
    let (mut saw_jfif, mut saw_adobe) = (false, false);
    loop {
        if data.get(pos) != Some(&0xFF) {
            return Err(no("bytes between markers"));
        }
        while data.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let marker = *data.get(pos).ok_or(no("data ends before the scan"))?;
        pos += 1;
        let len = be16(data, pos)?;
        if len < 2 {
            return Err(no("marker segment length below 2"));
        }
        let body = data
            .get(pos + 2..pos + len)
            .ok_or(no("marker segment cut short"))?;
        match marker {
            // Baseline and extended sequential Huffman frames.
            0xC0 | 0xC1 => {
                if frame.is_some() {
                    return Err(no("two frame headers"));
                }
                frame = Some(parse_frame(body)?);
            }
            0xC4 => parse_huffman(body, &mut dc_tables, &mut ac_tables)?,
            0xDB => parse_quant(body, &mut quant)?,
            0xDD => {
                if body.len() != 2 {
                    return Err(no("bad DRI length"));
                }
                restart_interval = be16(body, 0)?;
            }
            0xE0 => {
                if body.len() >= 12 && body.starts_with(b"JFIF\0") {
                    if body[5] != 1 {
                        return Err(no("JFIF major version is not 1"));
                    }
                    saw_jfif = true;
                }
            }
            0xEE => {
                if body.len() >= 10 && body.starts_with(b"Adobe") {
                    saw_adobe = true;
                }
            }
            // Other APPn and comments.
            0xE1..=0xED | 0xEF | 0xFE => {}
            0xDA => {
                let (width, height, components) = frame.ok_or(no("scan before the frame"))?;
                let scan = parse_scan(body, &components)?;
                if components.len() == 3 {
                    let rgb_ids = [components[0].id, components[1].id, components[2].id]
                        == [b'R', b'G', b'B'];
                    // Adobe files name their colour transform; leave those and RGB files to
                    // libjpeg-turbo's colour-space rules.
                    if saw_adobe || (!saw_jfif && rgb_ids) {
                        return Err(no("not a YCbCr JPEG"));
                    }
                }
                return Ok(Header {
                    width,
                    height,
                    components,
                    scan,
                    scan_start: pos + len,
                    restart_interval,
                    quant,
                    dc_tables,
                    ac_tables,
                });
            }
            _ => return Err(no("marker this path does not handle")),
        }
        pos += len;
    }
}

fn parse_frame(body: &[u8]) -> Result<(usize, usize, Vec<FrameComponent>)> {
    if body.len() < 6 || body[0] != 8 {
        return Err(no("not an 8-bit frame"));
    }
    let height = be16(body, 1)?;
    let width = be16(body, 3)?;
    let n = usize::from(body[5]);
    if width == 0 || height == 0 {
        return Err(no("zero image dimension"));
    }
    if !(n == 1 || n == 3) || body.len() != 6 + 3 * n {
        return Err(no("component count"));
    }
    let components: Vec<FrameComponent> = (0..n)
        .map(|i| {
            let c = &body[6 + 3 * i..9 + 3 * i];
            FrameComponent {
                id: c[0],
                h: usize::from(c[1] >> 4),
                v: usize::from(c[1] & 15),
                quant: usize::from(c[2]),
            }
        })
        .collect();
    for (i, c) in components.iter().enumerate() {
        if !(1..=2).contains(&c.h) || !(1..=2).contains(&c.v) || c.quant > 3 {
            return Err(no("sampling factors or quantisation table"));
        }
        if i > 0 && (c.h, c.v) != (1, 1) {
            return Err(no("chroma sampled above 1x1"));
        }
        if components[..i].iter().any(|o| o.id == c.id) {
            return Err(no("duplicate component id"));
        }
    }
    if n == 1 {
        // A greyscale scan is non-interleaved: its sampling factors do not matter.
        return Ok((
            width,
            height,
            vec![FrameComponent {
                h: 1,
                v: 1,
                ..components[0]
            }],
        ));
    }
    Ok((width, height, components))
}

fn parse_huffman(
    mut body: &[u8],
    dc: &mut [Option<DcTable>; 4],
    ac: &mut [Option<AcTable>; 4],
) -> Result<()> {
    while !body.is_empty() {
        if body.len() < 17 {
            return Err(no("DHT cut short"));
        }
        let (class, id) = (body[0] >> 4, usize::from(body[0] & 15));
        if class > 1 || id > 3 {
            return Err(no("DHT class or id"));
        }
        let mut counts = [0u8; 16];
        counts.copy_from_slice(&body[1..17]);
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        if total > 256 {
            return Err(no("DHT has more than 256 codes"));
        }
        let values = body.get(17..17 + total).ok_or(no("DHT cut short"))?;
        if class == 0 {
            dc[id] = Some(DcTable::build(&counts, values)?);
        } else {
            ac[id] = Some(AcTable::build(&counts, values)?);
        }
        body = &body[17 + total..];
    }
    Ok(())
}

/// A quantisation table in natural order, as libjpeg-turbo's islow multiplier table holds it
/// (16-bit signed: a 16-bit table entry above 32767 wraps there too).
type Quant = [i32; 64];

/// Zig-zag position → natural (row-major) position in an 8×8 block.
const NATURAL_ORDER: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

fn parse_quant(mut body: &[u8], quant: &mut [Option<Quant>; 4]) -> Result<()> {
    while !body.is_empty() {
        let (precision, id) = (body[0] >> 4, usize::from(body[0] & 15));
        if precision > 1 || id > 3 {
            return Err(no("DQT precision or id"));
        }
        let size = if precision == 0 { 64 } else { 128 };
        let table = body.get(1..1 + size).ok_or(no("DQT cut short"))?;
        let mut natural = [0i32; 64];
        for (zigzag, &position) in NATURAL_ORDER.iter().enumerate() {
            let value = if precision == 0 {
                u16::from(table[zigzag])
            } else {
                u16::from_be_bytes([table[2 * zigzag], table[2 * zigzag + 1]])
            };
            natural[usize::from(position)] = i32::from(value as i16);
        }
        quant[id] = Some(natural);
        body = &body[1 + size..];
    }
    Ok(())
}

fn parse_scan(body: &[u8], components: &[FrameComponent]) -> Result<Vec<ScanComponent>> {
    let n = usize::from(*body.first().ok_or(no("SOS cut short"))?);
    if n != components.len() || body.len() != 4 + 2 * n {
        return Err(no("scan does not hold every component at once"));
    }
    let mut scan = Vec::with_capacity(n);
    for i in 0..n {
        let (id, tables) = (body[1 + 2 * i], body[2 + 2 * i]);
        let frame_index = components
            .iter()
            .position(|c| c.id == id)
            .ok_or(no("scan names an unknown component"))?;
        if scan
            .iter()
            .any(|s: &ScanComponent| s.frame_index == frame_index)
        {
            return Err(no("scan names a component twice"));
        }
        let (dc_table, ac_table) = (usize::from(tables >> 4), usize::from(tables & 15));
        if dc_table > 3 || ac_table > 3 {
            return Err(no("scan table ids"));
        }
        scan.push(ScanComponent {
            frame_index,
            dc_table,
            ac_table,
        });
    }
    if body[1 + 2 * n..] != [0, 63, 0] {
        return Err(no("not a sequential scan"));
    }
    Ok(scan)
}

/// One component's DC picture: one byte per block, padded to whole MCUs.
struct Plane {
    pixels: Vec<u8>,
    stride: usize,
}

/// Decodes `data` at 1/8 scale, or says why it will not. Refuses more than `max_pixels`
/// full-resolution pixels (libjpeg-turbo then gives the error).
pub(crate) fn decode_eighth(
    data: &[u8],
    max_pixels: u64,
) -> std::result::Result<EighthRgb, NotHandled> {
    let header = parse_header(data)?;
    if (header.width as u64) * (header.height as u64) > max_pixels {
        return Err(no("more pixels than the budget"));
    }
    let h_max = header.components.iter().map(|c| c.h).max().unwrap_or(1);
    let v_max = header.components.iter().map(|c| c.v).max().unwrap_or(1);
    let mcus_x = header.width.div_ceil(8 * h_max);
    let mcus_y = header.height.div_ceil(8 * v_max);

    // What libjpeg-turbo does at 1/8 (jdmaster.c, jdsample.c), which this reader reproduces: a
    // component gets a larger IDCT while that still divides evenly into the luma scale, so with
    // luma sampled twice chroma on both axes (4:2:0) each chroma block becomes 2×2 pixels by
    // the reduced 2×2 IDCT (its AC coefficients count); otherwise every block becomes one pixel
    // and chroma is replicated (fancy upsampling is off at 1/8).
    let chroma_idct2 = header.components.len() == 3 && (h_max, v_max) == (2, 2);

    struct Slot<'t> {
        dc: &'t DcTable,
        ac: &'t AcTable,
        quant: &'t Quant,
        h: usize,
        v: usize,
        plane: usize,
        idct2: bool,
    }
    let mut slots = Vec::with_capacity(header.scan.len());
    for s in &header.scan {
        let c = header.components[s.frame_index];
        slots.push(Slot {
            dc: header.dc_tables[s.dc_table]
                .as_ref()
                .ok_or(no("scan uses an undefined DC table"))?,
            ac: header.ac_tables[s.ac_table]
                .as_ref()
                .ok_or(no("scan uses an undefined AC table"))?,
            quant: header.quant[c.quant]
                .as_ref()
                .ok_or(no("undefined quantisation table"))?,
            h: c.h,
            v: c.v,
            plane: s.frame_index,
            idct2: chroma_idct2 && s.frame_index > 0,
        });
    }
    let mut planes: Vec<Plane> = header
        .components
        .iter()
        .enumerate()
        .map(|(i, c)| {
            // A 2×2 IDCT gives two pixels per block on each axis.
            let scale = if chroma_idct2 && i > 0 { 2 } else { 1 };
            Plane {
                pixels: vec![0; mcus_x * c.h * scale * mcus_y * c.v * scale],
                stride: mcus_x * c.h * scale,
            }
        })
        .collect();

    let mut bits = Bits::new(data, header.scan_start);
    let mut predictors = vec![0i32; slots.len()];
    let mut next_restart = 0u8;
    let mut left_in_interval = header.restart_interval;
    let mut coefficients = [0i16; 64];
    for mcu_y in 0..mcus_y {
        for mcu_x in 0..mcus_x {
            if header.restart_interval > 0 {
                if left_in_interval == 0 {
                    let marker = bits.finish()?;
                    if marker != 0xD0 + next_restart {
                        return Err(no("restart marker out of sequence"));
                    }
                    next_restart = (next_restart + 1) & 7;
                    predictors.fill(0);
                    left_in_interval = header.restart_interval;
                }
                left_in_interval -= 1;
            }
            for (slot, predictor) in slots.iter().zip(predictors.iter_mut()) {
                let plane = &mut planes[slot.plane];
                if slot.idct2 {
                    coefficients.fill(0);
                    let dc =
                        decode_block_coefficients(&mut bits, slot.dc, slot.ac, &mut coefficients)?;
                    *predictor = predictor.wrapping_add(dc);
                    coefficients[0] = *predictor as i16;
                    let [top, bottom] = idct_2x2(&coefficients, slot.quant);
                    let at = mcu_y * 2 * plane.stride + mcu_x * 2;
                    plane.pixels[at..at + 2].copy_from_slice(&top);
                    plane.pixels[at + plane.stride..at + plane.stride + 2].copy_from_slice(&bottom);
                    continue;
                }
                for by in 0..slot.v {
                    let row = (mcu_y * slot.v + by) * plane.stride + mcu_x * slot.h;
                    for bx in 0..slot.h {
                        let dc = decode_block(&mut bits, slot.dc, slot.ac)?;
                        *predictor = predictor.wrapping_add(dc);
                        plane.pixels[row + bx] = dc_pixel(*predictor, slot.quant[0]);
                    }
                }
            }
        }
    }
    if bits.finish()? != 0xD9 {
        return Err(no("scan not followed by EOI"));
    }

    let (width, height) = (header.width.div_ceil(8), header.height.div_ceil(8));
    let rgb = if planes.len() == 1 {
        grey_to_rgb(&planes[0], width, height)
    } else {
        let (luma_w, luma_h) = (planes[0].stride, planes[0].pixels.len() / planes[0].stride);
        let luma = &planes[0].pixels;
        if chroma_idct2 || (h_max, v_max) == (1, 1) {
            ycc_to_rgb(
                luma,
                &planes[1].pixels,
                &planes[2].pixels,
                luma_w,
                width,
                height,
            )
        } else {
            let cb = replicate(&planes[1], h_max, v_max, luma_w, luma_h);
            let cr = replicate(&planes[2], h_max, v_max, luma_w, luma_h);
            ycc_to_rgb(luma, &cb, &cr, luma_w, width, height)
        }
    };
    Ok(EighthRgb {
        rgb,
        width: width as u32,
        height: height as u32,
    })
}

/// Decodes one block's DC difference and skips its AC coefficients.
#[inline(always)]
fn decode_block(bits: &mut Bits<'_>, dc: &DcTable, ac: &AcTable) -> Result<i32> {
    // Every step below needs at most 31 bits (a 16-bit code and 15 magnitude bits).
    let (mut buf, mut count) = (bits.buf, bits.count);
    if count < 32 {
        (buf, count) = bits.refill(buf, count);
    }
    let e = dc.fast[(buf >> (64 - DC_LOOKAHEAD)) as usize];
    let (len, size) = if e != 0 {
        (u32::from(e >> 8), u32::from(e & 0xFF))
    } else {
        let (len, symbol) = dc.canonical.decode_long(buf, DC_LOOKAHEAD)?;
        (len, u32::from(symbol))
    };
    buf <<= len;
    count -= len;
    let diff = if size == 0 {
        0
    } else {
        let v = (buf >> (64 - size)) as i32;
        buf <<= size;
        count -= size;
        extend(v, size)
    };
    let mut k = 1u32;
    loop {
        if count < 32 {
            (buf, count) = bits.refill(buf, count);
        }
        let e = ac.fast[(buf >> (64 - AC_LOOKAHEAD)) as usize];
        if e == 0 {
            let (len, symbol) = ac.canonical.decode_long(buf, AC_LOOKAHEAD)?;
            let (skip, advance) = ac_step(len, symbol);
            buf <<= skip;
            count -= skip;
            k += advance;
            if k >= 64 {
                break;
            }
            continue;
        }
        let run_advance = (e >> RUN_ADVANCE_SHIFT) & 127;
        if k + run_advance < 64 {
            // Every symbol the lookahead holds belongs to this block: take them at once.
            let used = e & 31;
            buf <<= used;
            count -= used;
            if e & RUN_EOB != 0 {
                break;
            }
            k += run_advance;
        } else {
            let skip = (e >> FIRST_SKIP_SHIFT) & 31;
            buf <<= skip;
            count -= skip;
            k += (e >> FIRST_ADVANCE_SHIFT) & 127;
            if k >= 64 {
                break;
            }
        }
    }
    bits.buf = buf;
    bits.count = count;
    Ok(diff)
}

/// Decodes one block's DC difference and its AC coefficients into `coefficients` (natural
/// order, zero where none was coded), as libjpeg-turbo does for a block it runs an IDCT on.
#[inline(always)]
fn decode_block_coefficients(
    bits: &mut Bits<'_>,
    dc: &DcTable,
    ac: &AcTable,
    coefficients: &mut [i16; 64],
) -> Result<i32> {
    // Every step below needs at most 31 bits (a 16-bit code and 15 magnitude bits).
    let (mut buf, mut count) = (bits.buf, bits.count);
    if count < 32 {
        (buf, count) = bits.refill(buf, count);
    }
    let e = dc.fast[(buf >> (64 - DC_LOOKAHEAD)) as usize];
    let (len, size) = if e != 0 {
        (u32::from(e >> 8), u32::from(e & 0xFF))
    } else {
        let (len, symbol) = dc.canonical.decode_long(buf, DC_LOOKAHEAD)?;
        (len, u32::from(symbol))
    };
    buf <<= len;
    count -= len;
    let diff = if size == 0 {
        0
    } else {
        let v = (buf >> (64 - size)) as i32;
        buf <<= size;
        count -= size;
        extend(v, size)
    };
    let mut k = 1usize;
    while k < 64 {
        if count < 32 {
            (buf, count) = bits.refill(buf, count);
        }
        let e = ac.symbols[(buf >> (64 - AC_LOOKAHEAD)) as usize];
        let (len, symbol) = if e != 0 {
            (u32::from(e >> 8), (e & 0xFF) as u8)
        } else {
            ac.canonical.decode_long(buf, AC_LOOKAHEAD)?
        };
        buf <<= len;
        count -= len;
        let (run, size) = (usize::from(symbol >> 4), u32::from(symbol & 15));
        if size == 0 {
            if run != 15 {
                break; // end of block
            }
            k += 16;
            continue;
        }
        k += run;
        let v = (buf >> (64 - size)) as i32;
        buf <<= size;
        count -= size;
        // libjpeg's natural-order table sends a run past the block's end to position 63.
        coefficients[usize::from(NATURAL_ORDER[k.min(63)])] = extend(v, size) as i16;
        k += 1;
    }
    bits.buf = buf;
    bits.count = count;
    Ok(diff)
}

/// The signed value of `size` magnitude bits `v` (JPEG's EXTEND).
#[inline(always)]
fn extend(v: i32, size: u32) -> i32 {
    if v < 1 << (size - 1) {
        v - (1 << size) + 1
    } else {
        v
    }
}

/// libjpeg-turbo's reduced 2×2 inverse DCT (`jpeg_idct_2x2` in jidctred.c, which its SIMD
/// versions reproduce): only rows and columns 0, 1, 3, 5 and 7 of the coefficients count.
fn idct_2x2(coefficients: &[i16; 64], quant: &Quant) -> [[u8; 2]; 2] {
    const CONST_BITS: u32 = 13;
    const PASS1_BITS: u32 = 2;
    const FIX_0_720959822: i64 = 5906;
    const FIX_0_850430095: i64 = 6967;
    const FIX_1_272758580: i64 = 10426;
    const FIX_3_624509785: i64 = 29692;
    fn descale(x: i64, n: u32) -> i64 {
        (x + (1 << (n - 1))) >> n
    }
    let odd = |c1: i64, c3: i64, c5: i64, c7: i64| {
        c7 * -FIX_0_720959822 + c5 * FIX_0_850430095 + c3 * -FIX_1_272758580 + c1 * FIX_3_624509785
    };
    let q = |row: usize, col: usize| {
        i64::from(coefficients[row * 8 + col]) * i64::from(quant[row * 8 + col])
    };
    // Pass 1: columns 0, 1, 3, 5, 7 into two rows of a work array.
    let mut work = [[0i64; 8]; 2];
    for col in [0usize, 1, 3, 5, 7] {
        let even = q(0, col) << (CONST_BITS + 2);
        let odd = odd(q(1, col), q(3, col), q(5, col), q(7, col));
        work[0][col] = i64::from(descale(even + odd, CONST_BITS - PASS1_BITS + 2) as i32);
        work[1][col] = i64::from(descale(even - odd, CONST_BITS - PASS1_BITS + 2) as i32);
    }
    // Pass 2: each work row into two pixels, level-shifted and clamped.
    let out = |x: i64| (descale(x, CONST_BITS + PASS1_BITS + 3 + 2) + 128).clamp(0, 255) as u8;
    work.map(|w| {
        let even = w[0] << (CONST_BITS + 2);
        let odd = odd(w[1], w[3], w[5], w[7]);
        [out(even + odd), out(even - odd)]
    })
}

/// libjpeg's 1×1 inverse DCT: dequantise, divide by 8 with rounding, level-shift, clamp.
#[inline(always)]
fn dc_pixel(dc: i32, quant: i32) -> u8 {
    // libjpeg keeps coefficients as 16-bit values.
    let dequantised = i32::from(dc as i16) * quant;
    (((dequantised + 4) >> 3) + 128).clamp(0, 255) as u8
}

fn grey_to_rgb(plane: &Plane, width: usize, height: usize) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(width * height * 3);
    for y in 0..height {
        for &g in &plane.pixels[y * plane.stride..y * plane.stride + width] {
            rgb.extend_from_slice(&[g, g, g]);
        }
    }
    rgb
}

/// Upsamples a chroma plane by `fx`×`fy` (1 or 2) to `out_w`×`out_h` by replication, as
/// libjpeg-turbo does where it does not run its "fancy" upsampling (at 1/8 scale).
fn replicate(plane: &Plane, fx: usize, fy: usize, out_w: usize, out_h: usize) -> Vec<u8> {
    let mut out = vec![0u8; out_w * out_h];
    for (y, out_row) in out.chunks_exact_mut(out_w).enumerate() {
        let row = &plane.pixels[(y / fy) * plane.stride..][..plane.stride];
        for (x, o) in out_row.iter_mut().enumerate() {
            *o = row[x / fx];
        }
    }
    out
}

/// JFIF YCbCr → RGB with libjpeg's fixed-point coefficients (16 fraction bits, rounded).
fn ycc_to_rgb(
    luma: &[u8],
    cb: &[u8],
    cr: &[u8],
    stride: usize,
    width: usize,
    height: usize,
) -> Vec<u8> {
    const R_CR: i32 = 91_881; // 1.40200
    const G_CB: i32 = -22_554; // -0.34414
    const G_CR: i32 = -46_802; // -0.71414
    const B_CB: i32 = 116_130; // 1.77200
    const HALF: i32 = 1 << 15;
    let mut rgb = vec![0u8; width * height * 3];
    for (y, out_row) in rgb.chunks_exact_mut(width * 3).enumerate() {
        let row = y * stride;
        let (l, b, r) = (
            &luma[row..][..width],
            &cb[row..][..width],
            &cr[row..][..width],
        );
        for (((px, &l), &b), &r) in out_row.chunks_exact_mut(3).zip(l).zip(b).zip(r) {
            let (l, b, r) = (i32::from(l), i32::from(b) - 128, i32::from(r) - 128);
            px[0] = (l + ((R_CR * r + HALF) >> 16)).clamp(0, 255) as u8;
            px[1] = (l + ((G_CB * b + G_CR * r + HALF) >> 16)).clamp(0, 255) as u8;
            px[2] = (l + ((B_CB * b + HALF) >> 16)).clamp(0, 255) as u8;
        }
    }
    rgb
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use turbojpeg_sys as tj;

    use super::*;
    use crate::turbo::{EncodeOptions, decode_rgb, encode_rgb};

    /// Gradients, a few edges and noise, at a size that is not a whole number of MCUs.
    fn picture(width: u32, height: u32, seed: u64) -> Vec<u8> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut rgb = Vec::with_capacity((width * height * 3) as usize);
        for y in 0..height {
            for x in 0..width {
                let band = if (x / 37 + y / 23) % 2 == 0 { 60 } else { 0 };
                let base = [
                    (x * 200 / width) as i32 + band,
                    (y * 180 / height) as i32 + 30,
                    ((x + y) * 120 / (width + height)) as i32 + 90 - band,
                ];
                for c in base {
                    rgb.push((c + rng.random_range(-20..=20)).clamp(0, 255) as u8);
                }
            }
        }
        rgb
    }

    fn encode(width: u32, height: u32, opts: EncodeOptions) -> Vec<u8> {
        encode_rgb(&picture(width, height, 7), width, height, opts)
    }

    /// Mean and largest per-channel difference between two pictures of the same size.
    fn difference(a: &[u8], b: &[u8]) -> (f64, u8) {
        assert_eq!(a.len(), b.len());
        let sum: u64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| u64::from(x.abs_diff(*y)))
            .sum();
        let max = a
            .iter()
            .zip(b)
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap_or(0);
        (sum as f64 / a.len() as f64, max)
    }

    fn compare_with_turbo(jpeg: &[u8]) -> (f64, u8) {
        let fast = decode_eighth(jpeg, u64::MAX).expect("the DC path decodes it");
        let turbo = decode_rgb(jpeg, 8, u64::MAX).unwrap();
        assert_eq!((fast.width, fast.height), (turbo.width, turbo.height));
        difference(&fast.rgb, &turbo.rgb)
    }

    #[test]
    fn greyscale_and_unsubsampled_colour_match_libjpeg_turbo_exactly() {
        // Here libjpeg-turbo also computes each output pixel from its block's DC alone.
        for subsampling in [tj::TJSAMP_TJSAMP_GRAY, tj::TJSAMP_TJSAMP_444] {
            for (w, h) in [(203, 157), (64, 64), (8, 8), (1, 1), (9, 300)] {
                let jpeg = encode(
                    w,
                    h,
                    EncodeOptions {
                        subsampling,
                        ..Default::default()
                    },
                );
                let (mean, max) = compare_with_turbo(&jpeg);
                assert!(max <= 1, "{subsampling} {w}x{h}: mean {mean}, max {max}");
            }
        }
    }

    #[test]
    fn subsampled_colour_matches_libjpeg_turbo() {
        // libjpeg-turbo gives 4:2:0 chroma its 2x2 IDCT and replicates 4:2:2 and 4:4:0
        // chroma at 1/8; this reader does the same. On steep colour gradients, on noisy
        // pictures with edges, and at sizes that are not whole MCUs, every pixel agrees within
        // the one level of rounding of libjpeg-turbo's SIMD colour conversion.
        for subsampling in [
            tj::TJSAMP_TJSAMP_420,
            tj::TJSAMP_TJSAMP_422,
            tj::TJSAMP_TJSAMP_440,
        ] {
            for (w, h) in [(640u32, 480u32), (203, 157), (9, 300)] {
                let mut gradient = Vec::new();
                for y in 0..h {
                    for x in 0..w {
                        gradient.extend_from_slice(&[
                            (x * 255 / w) as u8,
                            (y * 255 / h) as u8,
                            128,
                        ]);
                    }
                }
                for (rgb, quality) in [
                    (gradient, 90),
                    (picture(w, h, 3), 75),
                    (picture(w, h, 5), 97),
                ] {
                    let jpeg = encode_rgb(
                        &rgb,
                        w,
                        h,
                        EncodeOptions {
                            subsampling,
                            quality,
                            ..Default::default()
                        },
                    );
                    let (mean, max) = compare_with_turbo(&jpeg);
                    assert!(
                        max <= 1,
                        "{subsampling} {w}x{h} q{quality}: mean {mean}, max {max}"
                    );
                }
            }
        }
    }

    #[test]
    fn optimised_tables_and_restart_markers_decode_the_same() {
        let plain = encode(203, 157, EncodeOptions::default());
        let reference = decode_eighth(&plain, u64::MAX).unwrap();
        for (optimize_huffman, restart_mcus) in [(true, 0), (false, 1), (false, 7), (true, 3)] {
            let jpeg = encode(
                203,
                157,
                EncodeOptions {
                    optimize_huffman,
                    restart_mcus,
                    ..Default::default()
                },
            );
            let out = decode_eighth(&jpeg, u64::MAX).unwrap();
            assert_eq!(
                out.rgb, reference.rgb,
                "optimise {optimize_huffman} rst {restart_mcus}"
            );
            compare_with_turbo(&jpeg);
        }
    }

    #[test]
    fn progressive_arithmetic_and_non_jpeg_are_left_to_libjpeg_turbo() {
        for opts in [
            EncodeOptions {
                progressive: true,
                ..Default::default()
            },
            EncodeOptions {
                arithmetic: true,
                ..Default::default()
            },
        ] {
            let jpeg = encode(64, 48, opts);
            assert!(decode_eighth(&jpeg, u64::MAX).is_err(), "{opts:?}");
            assert!(decode_rgb(&jpeg, 8, u64::MAX).is_ok());
        }
        assert!(decode_eighth(b"\x89PNG\r\n\x1a\n", u64::MAX).is_err());
        assert!(decode_eighth(&[], u64::MAX).is_err());
    }

    #[test]
    fn pixel_budget_is_left_to_libjpeg_turbo() {
        let jpeg = encode(64, 48, EncodeOptions::default());
        assert!(decode_eighth(&jpeg, 64 * 48).is_ok());
        assert!(decode_eighth(&jpeg, 64 * 48 - 1).is_err());
    }

    #[test]
    fn every_truncation_is_declined() {
        let jpeg = encode(
            97,
            61,
            EncodeOptions {
                restart_mcus: 2,
                ..Default::default()
            },
        );
        for cut in 0..jpeg.len() - 1 {
            assert!(
                decode_eighth(&jpeg[..cut], u64::MAX).is_err(),
                "cut at {cut}"
            );
        }
        assert!(decode_eighth(&jpeg, u64::MAX).is_ok());
    }

    #[test]
    fn never_accepts_what_libjpeg_turbo_refuses() {
        // Damage bytes at random; whenever the DC path decodes, libjpeg-turbo (stopping on
        // warnings) must decode too, at the same size. Most damage is caught by both.
        let originals = [
            encode(97, 61, EncodeOptions::default()),
            encode(
                97,
                61,
                EncodeOptions {
                    restart_mcus: 3,
                    ..Default::default()
                },
            ),
            encode(
                97,
                61,
                EncodeOptions {
                    subsampling: tj::TJSAMP_TJSAMP_GRAY,
                    ..Default::default()
                },
            ),
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let (mut both, mut declined) = (0, 0);
        for original in &originals {
            for _ in 0..1500 {
                let mut jpeg = original.clone();
                for _ in 0..rng.random_range(1..=3) {
                    let i = rng.random_range(0..jpeg.len());
                    jpeg[i] = match rng.random_range(0..3) {
                        0 => jpeg[i] ^ (1 << rng.random_range(0..8)),
                        1 => 0xFF,
                        _ => rng.random(),
                    };
                }
                match decode_eighth(&jpeg, u64::MAX) {
                    Ok(fast) => {
                        let turbo = decode_rgb(&jpeg, 8, u64::MAX)
                            .expect("libjpeg-turbo accepts what the DC path accepted");
                        assert_eq!((fast.width, fast.height), (turbo.width, turbo.height));
                        both += 1;
                    }
                    Err(_) => declined += 1,
                }
            }
        }
        // The damage must exercise both outcomes, or the test proves nothing.
        assert!(
            both > 100 && declined > 100,
            "both {both}, declined {declined}"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]

        /// Random entropy-coded data behind valid headers: never a panic, and whatever the
        /// DC path decodes, libjpeg-turbo decodes too.
        #[test]
        fn random_scan_data_never_panics(
            scan in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
            restart in proptest::prelude::any::<bool>(),
        ) {
            let valid = encode(
                61,
                45,
                EncodeOptions { restart_mcus: if restart { 2 } else { 0 }, ..Default::default() },
            );
            let header = parse_header(&valid).unwrap();
            let mut jpeg = valid[..header.scan_start].to_vec();
            jpeg.extend(scan);
            jpeg.extend([0xFF, 0xD9]);
            if let Ok(out) = decode_eighth(&jpeg, u64::MAX) {
                proptest::prop_assert_eq!(out.rgb.len(), 8 * 6 * 3);
                proptest::prop_assert!(decode_rgb(&jpeg, 8, u64::MAX).is_ok());
            }
        }

        /// Random bytes after SOI: never a panic.
        #[test]
        fn random_headers_never_panic(
            rest in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
        ) {
            let mut jpeg = vec![0xFF, 0xD8];
            jpeg.extend(rest);
            if let Ok(out) = decode_eighth(&jpeg, 1 << 20) {
                proptest::prop_assert_eq!(out.rgb.len() as u32, out.width * out.height * 3);
            }
        }
    }

    #[test]
    fn bad_huffman_tables_are_declined_not_a_panic() {
        // Three one-bit codes, and two one-bit codes (the all-ones code is reserved).
        for counts in [[3u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [2; 16]] {
            let values = [0u8; 64];
            let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
            assert!(DcTable::build(&counts, &values[..total.min(64)]).is_err());
            assert!(AcTable::build(&counts, &values[..total.min(64)]).is_err());
        }
    }

    #[test]
    fn the_orange_photo_gives_the_same_small_picture() {
        let jpeg = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/images/orange.jpg"
        ))
        .unwrap();
        // A real 4:2:0 camera photo: the same pixels as libjpeg-turbo's.
        let (mean, max) = compare_with_turbo(&jpeg);
        assert!(max <= 1, "mean {mean}, max {max}");
    }
}

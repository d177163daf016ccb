//! Cutting a baseline JPEG with restart markers into two independent files at an MCU-row
//! boundary, so that libjpeg-turbo can decode the two halves on two cores at once.
//!
//! A restart marker resets the entropy decoder (DC predictions, bit buffer), so the entropy data
//! after one is the start of a valid scan: the bottom file is the original's header with the
//! frame height reduced, the data after the chosen marker (later markers renumbered from RST0)
//! and EOI; the top file is the header with the height of the rows before it, the data before
//! the marker and EOI. The cut is only offered where the two decodes are bit-identical to the
//! whole file's at the requested DCT scale: every component reaches the output size through
//! libjpeg-turbo's IDCT scaling or horizontal-only upsampling (no upsampler reads the rows of a
//! neighbouring MCU row), which holds for 4:4:4, 4:2:2 and greyscale at every scale and for 4:2:0
//! at 1/2, 1/4 and 1/8 — not for 4:2:0 at full size (its fancy upsampling blends across rows).
//!
//! The parse is strict: one interleaved baseline (or extended sequential Huffman) scan, markers
//! numbered in sequence, as many of them as the restart interval implies, and EOI. Anything
//! else is declined and the whole file goes to libjpeg-turbo, which decodes it or names the
//! error; the cut never makes a damaged file decodable.

/// The two files, top rows first.
#[derive(Debug)]
pub(crate) struct Halves {
    pub(crate) top: Vec<u8>,
    pub(crate) bottom: Vec<u8>,
    /// Full-resolution rows in the top file (a whole number of MCU rows).
    pub(crate) top_rows: u32,
}

/// Smallest picture worth cutting (rows): below this a second thread costs more than it saves.
const MIN_ROWS: u32 = 256;

struct Frame {
    /// Offset of the frame header's height field.
    height_at: usize,
    width: u32,
    height: u32,
    /// (h, v) sampling factors per component.
    sampling: Vec<(u32, u32)>,
}

fn be16(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes([
        *bytes.get(at)?,
        *bytes.get(at + 1)?,
    ])))
}

/// Whether every component's picture comes out of libjpeg-turbo's reduced IDCT at 1/`denominator`
/// without vertical upsampling (jdmaster.c's choice of each component's DCT scaled size).
fn rows_are_independent(sampling: &[(u32, u32)], denominator: u8) -> bool {
    let min = 8 / u32::from(denominator);
    let h_max = sampling.iter().map(|s| s.0).max().unwrap_or(1);
    let v_max = sampling.iter().map(|s| s.1).max().unwrap_or(1);
    sampling.iter().all(|&(h, v)| {
        let mut size = min;
        while size < 8 && (h_max * min) % (h * size * 2) == 0 && (v_max * min) % (v * size * 2) == 0
        {
            size *= 2;
        }
        v_max * min == v * size
    })
}

/// Cuts `jpeg` near its middle row at a restart marker, or `None` (see the module notes).
pub(crate) fn split(jpeg: &[u8], denominator: u8) -> Option<Halves> {
    if !matches!(denominator, 1 | 2 | 4 | 8) || jpeg.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut at = 2;
    let mut frame = None;
    let mut interval = 0u32;
    // The header: markers up to and including SOS.
    let data_start = loop {
        if *jpeg.get(at)? != 0xFF {
            return None;
        }
        let marker = *jpeg.get(at + 1)?;
        if marker == 0xFF {
            at += 1; // fill byte
            continue;
        }
        let len = usize::try_from(be16(jpeg, at + 2)?).ok()?;
        if len < 2 {
            return None;
        }
        let body = at + 4;
        let end = at + 2 + len;
        jpeg.get(..end)?;
        match marker {
            // Baseline or extended sequential, Huffman.
            0xC0 | 0xC1 => {
                if frame.is_some() || *jpeg.get(body)? != 8 {
                    return None;
                }
                let count = usize::from(*jpeg.get(body + 5)?);
                if count != 1 && count != 3 {
                    return None;
                }
                let mut sampling = Vec::with_capacity(count);
                for c in 0..count {
                    let hv = *jpeg.get(body + 6 + 3 * c + 1)?;
                    let (h, v) = (u32::from(hv >> 4), u32::from(hv & 0x0F));
                    if !matches!(h, 1 | 2) || !matches!(v, 1 | 2) {
                        return None;
                    }
                    sampling.push((h, v));
                }
                if count == 1 {
                    // A single-component scan's MCU is one block whatever its factors.
                    sampling = vec![(1, 1)];
                }
                frame = Some(Frame {
                    height_at: body + 1,
                    height: be16(jpeg, body + 1)?,
                    width: be16(jpeg, body + 3)?,
                    sampling,
                });
            }
            // Any other frame type (progressive, lossless, arithmetic, hierarchical).
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
            0xDD => interval = be16(jpeg, body)?,
            0xDA => {
                let f = frame.as_ref()?;
                // One scan with every component (interleaved), or the only one.
                if usize::from(*jpeg.get(body)?) != f.sampling.len() {
                    return None;
                }
                break end;
            }
            0xD0..=0xD9 => return None,
            _ => {}
        }
        at = end;
    };
    let frame = frame?;
    if interval == 0
        || frame.width == 0
        || frame.height < MIN_ROWS
        || !rows_are_independent(&frame.sampling, denominator)
    {
        return None;
    }
    let h_max = frame.sampling.iter().map(|s| s.0).max()?;
    let v_max = frame.sampling.iter().map(|s| s.1).max()?;
    let (mcu_w, mcu_h) = (8 * h_max, 8 * v_max);
    let per_row = frame.width.div_ceil(mcu_w);
    let rows = frame.height.div_ceil(mcu_h);
    let total_mcus = u64::from(per_row) * u64::from(rows);

    // The entropy data: restart marker positions (checked in sequence) and the EOI.
    let mut markers: Vec<usize> = Vec::new();
    let mut i = data_start;
    let eoi = loop {
        let rel = jpeg.get(i..)?.iter().position(|&b| b == 0xFF)?;
        let p = i + rel;
        match *jpeg.get(p + 1)? {
            0x00 => i = p + 2,
            0xFF => i = p + 1,
            m @ 0xD0..=0xD7 => {
                if usize::from(m - 0xD0) != markers.len() % 8 {
                    return None;
                }
                markers.push(p);
                i = p + 2;
            }
            0xD9 => break p,
            _ => return None,
        }
    };
    if markers.len() as u64 + 1 != total_mcus.div_ceil(u64::from(interval)) {
        return None;
    }

    // The MCU row nearest the middle that starts right after a restart marker.
    let aligned = |r: u32| {
        let mcus = u64::from(r) * u64::from(per_row);
        (mcus % u64::from(interval) == 0).then(|| mcus / u64::from(interval))
    };
    let half = rows / 2;
    let (cut_row, k) = (0..half).find_map(|d| {
        [half.checked_sub(d), half.checked_add(d)]
            .into_iter()
            .flatten()
            .filter(|&r| r >= 1 && r < rows)
            .find_map(|r| aligned(r).map(|k| (r, k)))
    })?;
    // The marker that ends the top file (the k-th, 1-based).
    let k = usize::try_from(k).ok()?;
    let marker_at = *markers.get(k.checked_sub(1)?)?;
    let top_rows = cut_row * mcu_h;
    let bottom_rows = frame.height - top_rows;

    let header = &jpeg[..data_start];
    let with_height = |rows: u32| {
        let mut h = header.to_vec();
        let [hi, lo] = u16::try_from(rows).ok()?.to_be_bytes();
        h[frame.height_at] = hi;
        h[frame.height_at + 1] = lo;
        Some(h)
    };
    let mut top = with_height(top_rows)?;
    top.reserve(marker_at - data_start + 2);
    top.extend_from_slice(&jpeg[data_start..marker_at]);
    top.extend_from_slice(&[0xFF, 0xD9]);

    let mut bottom = with_height(bottom_rows)?;
    let body_at = bottom.len();
    bottom.extend_from_slice(&jpeg[marker_at + 2..eoi + 2]);
    if k % 8 != 0 {
        for (j, &p) in markers[k..].iter().enumerate() {
            // p + 1 is the marker's second byte; the copy starts at marker_at + 2.
            bottom[body_at + p + 1 - (marker_at + 2)] = 0xD0 + (j % 8) as u8;
        }
    }
    Some(Halves {
        top,
        bottom,
        top_rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::turbo::{EncodeOptions, decode_rgb, encode_rgb};
    use turbojpeg_sys as tj;

    fn pixels(w: u32, h: u32) -> Vec<u8> {
        let mut v = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                let n = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729)) % 31;
                v.extend_from_slice(&[
                    ((x * 255 / w) as u8).wrapping_add(n as u8),
                    ((y * 255 / h) as u8).wrapping_sub(n as u8),
                    ((x + y) % 256) as u8,
                ]);
            }
        }
        v
    }

    fn jpeg(w: u32, h: u32, subsampling: tj::TJSAMP, restart_mcus: i32) -> Vec<u8> {
        encode_rgb(
            &pixels(w, h),
            w,
            h,
            EncodeOptions {
                subsampling,
                quality: 90,
                restart_mcus,
                ..EncodeOptions::default()
            },
        )
    }

    /// Decodes both halves and stacks them.
    fn stacked(halves: &Halves, d: u8) -> (Vec<u8>, u32, u32) {
        let top = decode_rgb(&halves.top, d, u64::MAX).unwrap();
        let bottom = decode_rgb(&halves.bottom, d, u64::MAX).unwrap();
        assert_eq!(top.width, bottom.width);
        assert_eq!(top.height, halves.top_rows / u32::from(d));
        let mut rgb = top.rgb;
        rgb.extend_from_slice(&bottom.rgb);
        (rgb, top.width, top.height + bottom.height)
    }

    #[test]
    fn halves_decode_to_the_whole_files_pixels_where_rows_are_independent() {
        let cases = [
            (tj::TJSAMP_TJSAMP_420, 4u8),
            (tj::TJSAMP_TJSAMP_420, 8),
            (tj::TJSAMP_TJSAMP_420, 2),
            (tj::TJSAMP_TJSAMP_422, 4),
            (tj::TJSAMP_TJSAMP_422, 1),
            (tj::TJSAMP_TJSAMP_444, 4),
            (tj::TJSAMP_TJSAMP_GRAY, 4),
        ];
        // Odd sizes (partial MCUs at both edges); intervals of one row, two rows and a
        // number of MCUs that is not a row's (the cut then lands where they line up), and one
        // where the number of markers before the cut is not a multiple of 8 (renumbering).
        for (w, h) in [(1000u32, 700u32), (641, 517)] {
            for (sub, d) in cases {
                let mcu_w = if matches!(sub, tj::TJSAMP_TJSAMP_444 | tj::TJSAMP_TJSAMP_GRAY) {
                    8
                } else {
                    16
                };
                let per_row = w.div_ceil(mcu_w) as i32;
                for interval in [per_row, 2 * per_row, 7, 1] {
                    let file = jpeg(w, h, sub, interval);
                    let whole = decode_rgb(&file, d, u64::MAX).unwrap();
                    let halves = split(&file, d).unwrap_or_else(|| {
                        panic!("no cut for {w}x{h} sampling {sub} 1/{d} interval {interval}")
                    });
                    let (rgb, sw, sh) = stacked(&halves, d);
                    assert_eq!((sw, sh), (whole.width, whole.height));
                    assert!(
                        rgb == whole.rgb,
                        "{w}x{h} sampling {sub} 1/{d} interval {interval}: pixels differ"
                    );
                }
            }
        }
    }

    #[test]
    fn files_that_cannot_be_cut_exactly_are_declined() {
        // 4:2:0 at full size: the fancy upsampler blends chroma across MCU rows.
        assert!(split(&jpeg(640, 480, tj::TJSAMP_TJSAMP_420, 40), 1).is_none());
        // No restart markers.
        assert!(split(&jpeg(640, 480, tj::TJSAMP_TJSAMP_420, 0), 4).is_none());
        // Too small to be worth a thread.
        assert!(split(&jpeg(640, 200, tj::TJSAMP_TJSAMP_420, 40), 4).is_none());
        // Progressive.
        let progressive = encode_rgb(
            &pixels(640, 480),
            640,
            480,
            EncodeOptions {
                progressive: true,
                restart_mcus: 40,
                ..EncodeOptions::default()
            },
        );
        assert!(split(&progressive, 4).is_none());
        // Not a JPEG, empty, truncated.
        assert!(split(b"not a jpeg", 4).is_none());
        assert!(split(&[], 4).is_none());
        let file = jpeg(640, 480, tj::TJSAMP_TJSAMP_420, 40);
        for cut in [2, 100, file.len() / 2, file.len() - 2] {
            assert!(split(&file[..cut], 4).is_none(), "cut at {cut}");
        }
    }

    #[test]
    fn a_restart_marker_out_of_sequence_or_missing_is_declined() {
        let file = jpeg(640, 480, tj::TJSAMP_TJSAMP_420, 40);
        let positions: Vec<usize> = file
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[0] == 0xFF && (0xD0..=0xD7).contains(&w[1]))
            .map(|(i, _)| i)
            .collect();
        assert!(positions.len() > 8);
        assert!(split(&file, 4).is_some());
        // A wrong number: libjpeg-turbo warns on the whole file, so no cut may hide it.
        let mut wrong = file.clone();
        wrong[positions[3] + 1] = 0xD0 + 5;
        assert!(split(&wrong, 4).is_none());
        assert!(decode_rgb(&wrong, 4, u64::MAX).is_err());
        // A marker missing.
        let mut missing = file.clone();
        missing.drain(positions[5]..positions[5] + 2);
        assert!(split(&missing, 4).is_none());
    }
}

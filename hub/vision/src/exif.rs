//! EXIF orientation: reads tag 0x0112 from a TIFF/EXIF block and rotates/flips a small RGB
//! buffer accordingly.
//!
//! Cameras store pixels as the sensor saw them and record the rotation in EXIF; the model must
//! see the photo upright. The reader is deliberately tiny (IFD0 only) and bounds-checks every
//! offset: it reads untrusted bytes and must never panic or allocate on their say-so.

/// EXIF orientation values 1..=8 (TIFF 6.0 / EXIF 2.3 tag 0x0112).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum Orientation {
    /// 1: as stored.
    #[default]
    Normal,
    /// 2: mirrored left-right.
    FlipHorizontal,
    /// 3: upside down.
    Rotate180,
    /// 4: mirrored top-bottom.
    FlipVertical,
    /// 5: mirrored across the top-left/bottom-right diagonal.
    Transpose,
    /// 6: rotate 90° clockwise to display.
    Rotate90,
    /// 7: mirrored across the top-right/bottom-left diagonal.
    Transverse,
    /// 8: rotate 270° clockwise (90° counter-clockwise) to display.
    Rotate270,
}

impl Orientation {
    /// From the EXIF value; anything outside 1..=8 is treated as normal.
    pub fn from_exif(value: u16) -> Self {
        match value {
            2 => Self::FlipHorizontal,
            3 => Self::Rotate180,
            4 => Self::FlipVertical,
            5 => Self::Transpose,
            6 => Self::Rotate90,
            7 => Self::Transverse,
            8 => Self::Rotate270,
            _ => Self::Normal,
        }
    }

    /// The EXIF value.
    pub fn exif_value(self) -> u8 {
        match self {
            Self::Normal => 1,
            Self::FlipHorizontal => 2,
            Self::Rotate180 => 3,
            Self::FlipVertical => 4,
            Self::Transpose => 5,
            Self::Rotate90 => 6,
            Self::Transverse => 7,
            Self::Rotate270 => 8,
        }
    }

    /// Whether applying it swaps width and height.
    pub fn swaps_axes(self) -> bool {
        matches!(
            self,
            Self::Transpose | Self::Rotate90 | Self::Transverse | Self::Rotate270
        )
    }

    /// Converts from the `image` crate's orientation (used for PNG's eXIf chunk).
    pub(crate) fn from_image(o: image::metadata::Orientation) -> Self {
        use image::metadata::Orientation as I;
        match o {
            I::NoTransforms => Self::Normal,
            I::FlipHorizontal => Self::FlipHorizontal,
            I::Rotate180 => Self::Rotate180,
            I::FlipVertical => Self::FlipVertical,
            I::Rotate90FlipH => Self::Transpose,
            I::Rotate90 => Self::Rotate90,
            I::Rotate270FlipH => Self::Transverse,
            I::Rotate270 => Self::Rotate270,
        }
    }
}

/// Reads the orientation from an EXIF block that starts at the TIFF header (`II*\0` or `MM\0*`),
/// as returned by JPEG decoders for the APP1 `Exif\0\0` segment. Returns `None` when the block
/// is malformed or has no orientation tag.
pub fn orientation_from_tiff(data: &[u8]) -> Option<Orientation> {
    let big_endian = match data.get(0..2)? {
        b"II" => false,
        b"MM" => true,
        _ => return None,
    };
    let u16_at = |off: usize| -> Option<u16> {
        let b: [u8; 2] = data.get(off..off.checked_add(2)?)?.try_into().ok()?;
        Some(if big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let u32_at = |off: usize| -> Option<u32> {
        let b: [u8; 4] = data.get(off..off.checked_add(4)?)?.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    if u16_at(2)? != 42 {
        return None;
    }
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let count = usize::from(u16_at(ifd)?);
    for i in 0..count {
        let entry = ifd.checked_add(2)?.checked_add(i.checked_mul(12)?)?;
        let tag = u16_at(entry)?;
        if tag != 0x0112 {
            continue;
        }
        let kind = u16_at(entry + 2)?;
        if kind != 3 {
            // Orientation must be SHORT; anything else is a broken writer.
            return None;
        }
        return Some(Orientation::from_exif(u16_at(entry + 8)?));
    }
    None
}

/// Applies `orientation` to a packed RGB8 buffer of `width`×`height`, returning the upright buffer
/// and its size. Meant for the small, already resized image: cost is one pass over it.
pub fn apply_orientation(
    rgb: &[u8],
    width: u32,
    height: u32,
    orientation: Orientation,
) -> (Vec<u8>, u32, u32) {
    if orientation == Orientation::Normal {
        return (rgb.to_vec(), width, height);
    }
    let (w, h) = (width as usize, height as usize);
    let (out_w, out_h) = if orientation.swaps_axes() {
        (h, w)
    } else {
        (w, h)
    };
    let mut out = vec![0u8; w * h * 3];
    for y in 0..out_h {
        for x in 0..out_w {
            let (sx, sy) = match orientation {
                Orientation::Normal => (x, y),
                Orientation::FlipHorizontal => (w - 1 - x, y),
                Orientation::Rotate180 => (w - 1 - x, h - 1 - y),
                Orientation::FlipVertical => (x, h - 1 - y),
                Orientation::Transpose => (y, x),
                Orientation::Rotate90 => (y, h - 1 - x),
                Orientation::Transverse => (w - 1 - y, h - 1 - x),
                Orientation::Rotate270 => (w - 1 - y, x),
            };
            let src = (sy * w + sx) * 3;
            let dst = (y * out_w + x) * 3;
            out[dst..dst + 3].copy_from_slice(&rgb[src..src + 3]);
        }
    }
    (out, out_w as u32, out_h as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiff(big_endian: bool, orientation: u16) -> Vec<u8> {
        let mut v = Vec::new();
        let p16 = |v: &mut Vec<u8>, x: u16| {
            v.extend_from_slice(&if big_endian {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            })
        };
        let p32 = |v: &mut Vec<u8>, x: u32| {
            v.extend_from_slice(&if big_endian {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            })
        };
        v.extend_from_slice(if big_endian { b"MM" } else { b"II" });
        p16(&mut v, 42);
        p32(&mut v, 8);
        p16(&mut v, 2); // two entries
        // ImageWidth (0x0100), LONG, 1, 640
        p16(&mut v, 0x0100);
        p16(&mut v, 4);
        p32(&mut v, 1);
        p32(&mut v, 640);
        // Orientation, SHORT, 1, value in the first two bytes
        p16(&mut v, 0x0112);
        p16(&mut v, 3);
        p32(&mut v, 1);
        p16(&mut v, orientation);
        p16(&mut v, 0);
        p32(&mut v, 0);
        v
    }

    #[test]
    fn reads_orientation_both_byte_orders() {
        for value in 1..=8u16 {
            assert_eq!(
                orientation_from_tiff(&tiff(false, value))
                    .unwrap()
                    .exif_value() as u16,
                value
            );
            assert_eq!(
                orientation_from_tiff(&tiff(true, value))
                    .unwrap()
                    .exif_value() as u16,
                value
            );
        }
    }

    #[test]
    fn malformed_exif_gives_none_not_panic() {
        let good = tiff(true, 6);
        for cut in 0..good.len() {
            let _ = orientation_from_tiff(&good[..cut]);
        }
        assert_eq!(orientation_from_tiff(&good[..20]), None);
        assert_eq!(orientation_from_tiff(b"XX*\0\0\0\0\x08"), None);
        let mut huge_offset = good.clone();
        huge_offset[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(orientation_from_tiff(&huge_offset), None);
        // The shipped orange.jpg has an EXIF block with zero entries.
        assert_eq!(orientation_from_tiff(b"MM\0*\0\0\0\x08\0\0"), None);
    }

    /// 2×3 image (w=2, h=3) whose pixel value encodes its position.
    fn sample() -> Vec<u8> {
        (0..6u8).flat_map(|i| [i, i, i]).collect()
    }

    fn grey(buf: &[u8]) -> Vec<u8> {
        buf.chunks(3).map(|p| p[0]).collect()
    }

    #[test]
    fn orientation_transforms_match_exif_definitions() {
        // Stored:        0 1
        //                2 3
        //                4 5
        let cases: [(Orientation, (u32, u32), [u8; 6]); 8] = [
            (Orientation::Normal, (2, 3), [0, 1, 2, 3, 4, 5]),
            (Orientation::FlipHorizontal, (2, 3), [1, 0, 3, 2, 5, 4]),
            (Orientation::Rotate180, (2, 3), [5, 4, 3, 2, 1, 0]),
            (Orientation::FlipVertical, (2, 3), [4, 5, 2, 3, 0, 1]),
            (Orientation::Transpose, (3, 2), [0, 2, 4, 1, 3, 5]),
            (Orientation::Rotate90, (3, 2), [4, 2, 0, 5, 3, 1]),
            (Orientation::Transverse, (3, 2), [5, 3, 1, 4, 2, 0]),
            (Orientation::Rotate270, (3, 2), [1, 3, 5, 0, 2, 4]),
        ];
        for (o, size, want) in cases {
            let (out, w, h) = apply_orientation(&sample(), 2, 3, o);
            assert_eq!((w, h), size, "{o:?}");
            assert_eq!(grey(&out), want, "{o:?}");
        }
    }
}

//! The benchmark's photos, made at bench time from the shipped test images: upscaled to a
//! camera's size, with mild sensor-like noise, and encoded by the vendored libjpeg-turbo's
//! compressor (TurboJPEG) the way cameras write JPEG — 4:2:0 or 4:2:2 chroma, an EXIF segment
//! (with an orientation), restart markers, progressive — besides a synthetic 4:4:4 file.
//!
//! Used by the benchmark and by tests that need camera-like files; nothing here runs on the
//! hot path.

use std::path::Path;

use rand::{Rng, SeedableRng};
use serde::Serialize;
use turbojpeg_sys as tj;

use crate::error::VisionError;
use crate::turbo::{EncodeOptions, try_encode_rgb};

/// Chroma subsampling of a generated JPEG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Subsampling {
    /// Full-resolution chroma.
    #[serde(rename = "4:4:4")]
    S444,
    /// Chroma halved horizontally (many cameras).
    #[serde(rename = "4:2:2")]
    S422,
    /// Chroma halved on both axes (most cameras and phones).
    #[serde(rename = "4:2:0")]
    S420,
}

impl Subsampling {
    fn turbo(self) -> tj::TJSAMP {
        match self {
            Self::S444 => tj::TJSAMP_TJSAMP_444,
            Self::S422 => tj::TJSAMP_TJSAMP_422,
            Self::S420 => tj::TJSAMP_TJSAMP_420,
        }
    }
}

/// How a photo is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PhotoStyle {
    /// Chroma subsampling.
    pub subsampling: Subsampling,
    /// JPEG quality (1–100).
    pub quality: u8,
    /// Progressive instead of baseline.
    pub progressive: bool,
    /// Restart markers every MCU row.
    pub restart_every_row: bool,
    /// An EXIF segment with this orientation (1–8); `None` writes a plain JFIF file.
    pub exif_orientation: Option<u16>,
}

impl PhotoStyle {
    /// A camera's baseline file: 4:2:0, quality 92, EXIF with orientation 1.
    pub const CAMERA: Self = Self {
        subsampling: Subsampling::S420,
        quality: 92,
        progressive: false,
        restart_every_row: false,
        exif_orientation: Some(1),
    };

    /// The synthetic file earlier benchmarks used: 4:4:4, quality 90, no EXIF.
    pub const SYNTHETIC_444: Self = Self {
        subsampling: Subsampling::S444,
        quality: 90,
        progressive: false,
        restart_every_row: false,
        exif_orientation: None,
    };
}

/// One photo of the benchmark set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchPhoto {
    /// Short name, e.g. `camera-420`.
    pub name: &'static str,
    /// How it is encoded.
    pub style: PhotoStyle,
}

/// The photo set measured at each size: five camera-like files and the synthetic one.
pub fn bench_photo_set() -> Vec<BenchPhoto> {
    let camera = PhotoStyle::CAMERA;
    vec![
        BenchPhoto {
            name: "camera-420",
            style: camera,
        },
        BenchPhoto {
            name: "camera-422",
            style: PhotoStyle {
                subsampling: Subsampling::S422,
                ..camera
            },
        },
        BenchPhoto {
            name: "camera-420-rotated",
            style: PhotoStyle {
                exif_orientation: Some(6),
                ..camera
            },
        },
        BenchPhoto {
            name: "camera-420-restart",
            style: PhotoStyle {
                restart_every_row: true,
                ..camera
            },
        },
        BenchPhoto {
            name: "camera-420-progressive",
            style: PhotoStyle {
                progressive: true,
                ..camera
            },
        },
        BenchPhoto {
            name: "synthetic-444",
            style: PhotoStyle::SYNTHETIC_444,
        },
    ]
}

/// `source` upscaled (triangle filter) to `width`×`height` with mild noise (±6 levels per
/// channel, seeded), as an upright picture.
pub fn camera_like_pixels(
    source: &Path,
    width: u32,
    height: u32,
    seed: u64,
) -> Result<image::RgbImage, VisionError> {
    let img = image::open(source)
        .map_err(|e| VisionError::Bench(format!("cannot open {}: {e}", source.display())))?;
    let mut big = image::imageops::resize(
        &img.to_rgb8(),
        width,
        height,
        image::imageops::FilterType::Triangle,
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for chunk in big.as_mut().chunks_mut(8) {
        let noise: u64 = rng.random();
        for (i, c) in chunk.iter_mut().enumerate() {
            // 13 values, -6..=6, from each byte of the random word.
            let n = ((noise >> (8 * i)) & 0xFF) as i16 % 13 - 6;
            *c = (i16::from(*c) + n).clamp(0, 255) as u8;
        }
    }
    Ok(big)
}

/// Encodes an upright picture as `style` says. With an EXIF orientation that swaps the axes
/// (5–8) the picture is stored turned, so that a viewer honouring the tag shows it upright.
pub fn encode_photo(upright: &image::RgbImage, style: &PhotoStyle) -> Result<Vec<u8>, VisionError> {
    let stored = match style.exif_orientation {
        // 6: the viewer turns the stored picture 90° clockwise, so store it turned back.
        Some(6) => image::imageops::rotate270(upright),
        Some(8) => image::imageops::rotate90(upright),
        Some(3) => image::imageops::rotate180(upright),
        Some(1) | None => upright.clone(),
        Some(other) => {
            return Err(VisionError::Bench(format!(
                "bench photos support EXIF orientations 1, 3, 6 and 8, not {other}"
            )));
        }
    };
    let (w, h) = stored.dimensions();
    let mcu_w = match style.subsampling {
        Subsampling::S444 => 8,
        Subsampling::S422 | Subsampling::S420 => 16,
    };
    let options = EncodeOptions {
        subsampling: style.subsampling.turbo(),
        quality: i32::from(style.quality.clamp(1, 100)),
        restart_mcus: if style.restart_every_row {
            i32::try_from(w.div_ceil(mcu_w)).unwrap_or(i32::MAX)
        } else {
            0
        },
        optimize_huffman: false,
        progressive: style.progressive,
        arithmetic: false,
    };
    let jpeg = try_encode_rgb(stored.as_raw(), w, h, options)
        .map_err(|e| VisionError::Bench(format!("cannot encode a bench JPEG: {e}")))?;
    Ok(match style.exif_orientation {
        Some(orientation) => with_exif(&jpeg, orientation),
        None => jpeg,
    })
}

/// Makes one photo: [`camera_like_pixels`] at `width`×`height` (upright), encoded per `style`.
pub fn make_bench_photo(
    source: &Path,
    width: u32,
    height: u32,
    seed: u64,
    style: &PhotoStyle,
) -> Result<Vec<u8>, VisionError> {
    encode_photo(&camera_like_pixels(source, width, height, seed)?, style)
}

/// Inserts an EXIF APP1 segment (camera make and model, orientation) after the JFIF APP0
/// segment, or after SOI when there is none.
fn with_exif(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    // Big-endian TIFF: header, IFD0 with three entries, then the two strings.
    let make = b"hub-bench\0";
    let model = b"camera-like\0";
    let entries = 3u16;
    let ifd_end = 8 + 2 + 12 * u32::from(entries) + 4;
    let mut tiff = b"MM\0*\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&entries.to_be_bytes());
    // Make (0x010F), ASCII, count, offset.
    tiff.extend_from_slice(&[0x01, 0x0F, 0, 2]);
    tiff.extend_from_slice(&(make.len() as u32).to_be_bytes());
    tiff.extend_from_slice(&ifd_end.to_be_bytes());
    // Model (0x0110).
    tiff.extend_from_slice(&[0x01, 0x10, 0, 2]);
    tiff.extend_from_slice(&(model.len() as u32).to_be_bytes());
    tiff.extend_from_slice(&(ifd_end + make.len() as u32).to_be_bytes());
    // Orientation (0x0112), SHORT, 1, value in the first two bytes.
    tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]);
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&[0, 0, 0, 0]); // no next IFD
    tiff.extend_from_slice(make);
    tiff.extend_from_slice(model);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);

    let mut at = 2;
    if jpeg.get(2..4) == Some(&[0xFF, 0xE0]) {
        let len = usize::from(u16::from_be_bytes([jpeg[4], jpeg[5]]));
        at = 4 + len;
    }
    let mut out = jpeg[..at].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exif::{Orientation, orientation_from_tiff};

    fn source() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/images/orange.jpg")
    }

    #[test]
    fn every_style_gives_a_jpeg_with_what_it_says() {
        for photo in bench_photo_set() {
            let jpeg = make_bench_photo(&source(), 320, 240, 1, &photo.style).unwrap();
            let mut decoder = jpeg_decoder::Decoder::new(std::io::Cursor::new(&jpeg));
            decoder.read_info().unwrap();
            let info = decoder.info().unwrap();
            let orientation = decoder.exif_data().and_then(orientation_from_tiff);
            match photo.style.exif_orientation {
                Some(6) => {
                    // Stored turned: 240 wide, 320 tall, shown upright by the tag.
                    assert_eq!((info.width, info.height), (240, 320), "{}", photo.name);
                    assert_eq!(orientation, Some(Orientation::Rotate90), "{}", photo.name);
                }
                Some(_) => {
                    assert_eq!((info.width, info.height), (320, 240), "{}", photo.name);
                    assert_eq!(orientation, Some(Orientation::Normal), "{}", photo.name);
                }
                None => assert_eq!(orientation, None, "{}", photo.name),
            }
            assert_eq!(
                info.coding_process == jpeg_decoder::CodingProcess::DctProgressive,
                photo.style.progressive,
                "{}",
                photo.name
            );
            let has_restart = jpeg.windows(2).any(|w| w == [0xFF, 0xDD]);
            assert_eq!(has_restart, photo.style.restart_every_row, "{}", photo.name);
            // The sampling factors of the frame header: luma's byte after its id.
            let sof = jpeg
                .windows(2)
                .position(|w| w == [0xFF, 0xC0] || w == [0xFF, 0xC2])
                .unwrap();
            let luma_sampling = jpeg[sof + 2 + 2 + 6 + 1];
            let want = match photo.style.subsampling {
                Subsampling::S444 => 0x11,
                Subsampling::S422 => 0x21,
                Subsampling::S420 => 0x22,
            };
            assert_eq!(luma_sampling, want, "{}", photo.name);
            assert!(crate::turbo::decode_rgb(&jpeg, 1, u64::MAX).is_ok());
        }
    }
}

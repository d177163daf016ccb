//! Photo bytes → model input tensor: sniff, bound-check the header, decode (JPEG with DCT-domain
//! downscaling when the photo is much larger than the model input), resize with SIMD
//! (`fast_image_resize`), turn upright per EXIF, normalise to f32 NCHW/NHWC.
//!
//! Decoding dominates large photos, so the JPEG decoder is asked for the smallest 1/1, 1/2, 1/4
//! or 1/8 scale that is still at least the model input on both axes: libjpeg-turbo (see
//! `turbo`), or at 1/8 the DC-only reader (see `jpeg_dc`) unless it declines the file. Limits
//! are checked from the
//! header before any pixel buffer is allocated. Corrupt or truncated files are typed errors.
//! This module must not run inference or do any file I/O.

use std::io::Cursor;
use std::time::Instant;

use fast_image_resize as fir;
use image::ImageDecoder;
use serde::{Deserialize, Serialize};

use crate::error::VisionError;
use crate::exif::{Orientation, apply_orientation, orientation_from_tiff};
use crate::manifest::{ColourOrder, InputSpec, Layout};

/// Bounds on what a photo may claim before it is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecodeLimits {
    /// Largest accepted width or height, pixels.
    pub max_side: u32,
    /// Largest accepted full-resolution decoded size (width × height × 3), bytes.
    pub max_decoded_bytes: u64,
    /// Largest accepted encoded file, bytes.
    pub max_file_bytes: u64,
}

impl Default for DecodeLimits {
    /// 16384 px per side, 256 MB decoded (a 48 MP photo is 144 MB), 64 MB files.
    fn default() -> Self {
        Self {
            max_side: 16_384,
            max_decoded_bytes: 256 * 1024 * 1024,
            max_file_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Encoded format of a photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PhotoFormat {
    /// JPEG / JFIF / EXIF.
    Jpeg,
    /// PNG.
    Png,
}

impl PhotoFormat {
    /// Sniffs the format from the first bytes; `None` when neither JPEG nor PNG.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else {
            None
        }
    }

    /// File extension used when storing the photo as evidence.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
        }
    }
}

/// What was learnt about the photo while preparing it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PhotoInfo {
    /// Encoded format.
    pub format: PhotoFormat,
    /// Stored width (before orientation), pixels.
    pub width: u32,
    /// Stored height (before orientation), pixels.
    pub height: u32,
    /// EXIF orientation applied.
    pub orientation: Orientation,
    /// JPEG DCT scale denominator used (1, 2, 4 or 8; 1 for PNG).
    pub dct_scale_denominator: u8,
    /// Which decoder produced the pixels.
    pub pixel_decoder: PixelDecoder,
}

/// Which decoder produced a photo's pixels (kept in the evidence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PixelDecoder {
    /// libjpeg-turbo, at the DCT scale recorded alongside.
    LibjpegTurbo,
    /// The hub's own baseline JPEG reader at 1/8 scale (see `jpeg_dc`): DC coefficients, and
    /// the AC coefficients of 4:2:0 chroma, giving libjpeg-turbo's pixels at that scale.
    JpegDcOnly,
    /// The `image` crate's PNG decoder.
    Png,
}

/// A prepared model input.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The tensor data in the manifest's layout and colour order.
    pub tensor: Vec<f32>,
    /// About the source photo.
    pub info: PhotoInfo,
    /// Time spent decoding, ms.
    pub decode_ms: f64,
    /// Time spent resizing, orienting and normalising, ms.
    pub preprocess_ms: f64,
}

/// Photos smaller than this many times the model input on either axis are decoded at full size:
/// they are cheap to decode anyway, and there the DCT scale would do most of the downscaling
/// with a coarser filter than the resizer's, which moves a borderline model verdict (orange.jpg,
/// 512 px, drops from p=0.27 to 0.16 for "orange" at 1/2, in Pillow's `draft()` too).
pub const DCT_SCALING_MIN_RATIO: u32 = 4;

/// Chooses the JPEG DCT scale denominator (1, 2, 4 or 8): 1 for photos under
/// [`DCT_SCALING_MIN_RATIO`] times the target, else the largest reduction whose output is still
/// at least `target` on both axes, so no detail the model could use is thrown away.
pub fn choose_dct_denominator(source: (u32, u32), target: (u32, u32)) -> u8 {
    if source.0 < target.0.saturating_mul(DCT_SCALING_MIN_RATIO)
        || source.1 < target.1.saturating_mul(DCT_SCALING_MIN_RATIO)
    {
        return 1;
    }
    let scaled = |len: u32, d: u32| len.div_ceil(d);
    for d in [8u32, 4, 2] {
        if scaled(source.0, d) >= target.0 && scaled(source.1, d) >= target.1 {
            return d as u8;
        }
    }
    1
}

/// Reusable pre-processor for one model input. Owns its resize buffers; keep one per thread.
pub struct Preprocessor {
    target: (u32, u32),
    layout: Layout,
    colour_order: ColourOrder,
    /// lut[c][v] = (v / 255 - mean[c]) / std[c], in the model's channel order.
    lut: Box<[[f32; 256]; 3]>,
    limits: DecodeLimits,
    resizer: fir::Resizer,
    /// Whether photos read at 1/8 scale may go to the DC-only reader.
    dc_reader: bool,
}

impl std::fmt::Debug for Preprocessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Preprocessor")
            .field("target", &self.target)
            .field("layout", &self.layout)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Preprocessor {
    /// A pre-processor for the manifest's input.
    pub fn new(input: &InputSpec, limits: DecodeLimits) -> Self {
        let mut lut = Box::new([[0f32; 256]; 3]);
        for (c, table) in lut.iter_mut().enumerate() {
            for (v, slot) in table.iter_mut().enumerate() {
                *slot = (v as f32 / 255.0 - input.mean[c]) / input.std[c];
            }
        }
        Self {
            target: input.image_size(),
            layout: input.layout,
            colour_order: input.colour_order,
            lut,
            limits,
            resizer: fir::Resizer::new(),
            dc_reader: true,
        }
    }

    /// Lets photos read at 1/8 scale go to the DC-only reader (the default), or sends every
    /// JPEG to libjpeg-turbo (for comparisons: both give the same pixels at that scale).
    pub fn set_dc_reader(&mut self, enabled: bool) {
        self.dc_reader = enabled;
    }

    /// The limits in force.
    pub fn limits(&self) -> DecodeLimits {
        self.limits
    }

    /// Decodes and prepares one photo.
    pub fn prepare(&mut self, bytes: &[u8]) -> Result<Prepared, VisionError> {
        if bytes.len() as u64 > self.limits.max_file_bytes {
            return Err(VisionError::FileTooLarge {
                bytes: bytes.len() as u64,
                max: self.limits.max_file_bytes,
            });
        }
        let format = PhotoFormat::sniff(bytes).ok_or_else(|| VisionError::UnsupportedFormat {
            magic: hex::encode(&bytes[..bytes.len().min(8)]),
        })?;
        let started = Instant::now();
        let decoded = match format {
            PhotoFormat::Jpeg => decode_jpeg(bytes, self.target, &self.limits, self.dc_reader)?,
            PhotoFormat::Png => decode_png(bytes, &self.limits)?,
        };
        let decode_ms = ms_since(started);

        let started = Instant::now();
        let (tw, th) = self.target;
        // Resize to the target as stored, then orient the small image (cheap).
        let stored_target = if decoded.info.orientation.swaps_axes() {
            (th, tw)
        } else {
            (tw, th)
        };
        let resized = self.resize(decoded.rgb, decoded.width, decoded.height, stored_target)?;
        let (upright, w, h) = if decoded.info.orientation == Orientation::Normal {
            (resized, stored_target.0, stored_target.1)
        } else {
            apply_orientation(
                &resized,
                stored_target.0,
                stored_target.1,
                decoded.info.orientation,
            )
        };
        debug_assert_eq!((w, h), (tw, th));
        let tensor = self.normalise(&upright);
        Ok(Prepared {
            tensor,
            info: decoded.info,
            decode_ms,
            preprocess_ms: ms_since(started),
        })
    }

    fn resize(
        &mut self,
        rgb: Vec<u8>,
        w: u32,
        h: u32,
        target: (u32, u32),
    ) -> Result<Vec<u8>, VisionError> {
        if (w, h) == target {
            return Ok(rgb);
        }
        let src =
            fir::images::Image::from_vec_u8(w, h, rgb, fir::PixelType::U8x3).map_err(|e| {
                VisionError::CorruptImage {
                    format: "decoded",
                    reason: e.to_string(),
                }
            })?;
        let mut dst = fir::images::Image::new(target.0, target.1, fir::PixelType::U8x3);
        let options = fir::ResizeOptions::new()
            .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Bilinear));
        self.resizer
            .resize(&src, &mut dst, &options)
            .map_err(|e| VisionError::CorruptImage {
                format: "decoded",
                reason: e.to_string(),
            })?;
        Ok(dst.into_vec())
    }

    /// Packed RGB8 (target size) → f32 tensor in the manifest's layout and colour order.
    pub fn normalise(&self, rgb: &[u8]) -> Vec<f32> {
        let plane = rgb.len() / 3;
        let mut out = vec![0f32; plane * 3];
        // Source channel feeding model channel c.
        let src_channel = |c: usize| match self.colour_order {
            ColourOrder::Rgb => c,
            ColourOrder::Bgr => 2 - c,
        };
        match self.layout {
            Layout::Nchw => {
                for c in 0..3 {
                    let table = &self.lut[c];
                    let s = src_channel(c);
                    let dst = &mut out[c * plane..(c + 1) * plane];
                    for (d, px) in dst.iter_mut().zip(rgb.chunks_exact(3)) {
                        *d = table[usize::from(px[s])];
                    }
                }
            }
            Layout::Nhwc => {
                for (d, px) in out.chunks_exact_mut(3).zip(rgb.chunks_exact(3)) {
                    for c in 0..3 {
                        d[c] = self.lut[c][usize::from(px[src_channel(c)])];
                    }
                }
            }
        }
        out
    }
}

struct Decoded {
    rgb: Vec<u8>,
    width: u32,
    height: u32,
    info: PhotoInfo,
}

fn check_limits(width: u32, height: u32, limits: &DecodeLimits) -> Result<(), VisionError> {
    let decoded = u64::from(width) * u64::from(height) * 3;
    if width == 0 || height == 0 {
        return Err(VisionError::CorruptImage {
            format: "header",
            reason: format!("image has zero size ({width}x{height})"),
        });
    }
    if width > limits.max_side || height > limits.max_side || decoded > limits.max_decoded_bytes {
        return Err(VisionError::TooLarge {
            width,
            height,
            decoded_mb: decoded / (1024 * 1024),
            max_side: limits.max_side,
            max_mb: limits.max_decoded_bytes / (1024 * 1024),
        });
    }
    Ok(())
}

fn jpeg_error(e: jpeg_decoder::Error) -> VisionError {
    match e {
        jpeg_decoder::Error::Unsupported(feature) => VisionError::UnsupportedPixelFormat {
            detail: format!("JPEG feature {feature:?}"),
        },
        other => VisionError::CorruptImage {
            format: "JPEG",
            reason: other.to_string(),
        },
    }
}

fn decode_jpeg(
    bytes: &[u8],
    target: (u32, u32),
    limits: &DecodeLimits,
    dc_reader: bool,
) -> Result<Decoded, VisionError> {
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.read_info().map_err(jpeg_error)?;
    let header = decoder.info().ok_or_else(|| VisionError::CorruptImage {
        format: "JPEG",
        reason: "no frame header".to_owned(),
    })?;
    let (width, height) = (u32::from(header.width), u32::from(header.height));
    check_limits(width, height, limits)?;
    match header.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 | jpeg_decoder::PixelFormat::L8 => {}
        other => {
            return Err(VisionError::UnsupportedPixelFormat {
                detail: format!("JPEG {other:?}"),
            });
        }
    }
    let orientation = decoder
        .exif_data()
        .and_then(orientation_from_tiff)
        .unwrap_or_default();
    let stored_target = if orientation.swaps_axes() {
        (target.1, target.0)
    } else {
        target
    };
    let denominator = choose_dct_denominator((width, height), stored_target);
    // The header, EXIF and limits come from the pure-Rust parser above. At 1/8 scale the
    // DC-only decoder reads the pixels when it can; everything else, and every file it
    // declines, goes to libjpeg-turbo, which decodes it or names the error.
    let max_pixels = limits.max_decoded_bytes / 3;
    let fast = if denominator == 8 && dc_reader {
        crate::jpeg_dc::decode_eighth(bytes, max_pixels)
            .map_err(|declined| tracing::debug!(reason = declined.0, "DC-only JPEG path declined"))
            .ok()
    } else {
        None
    };
    let (rgb, ow, oh, pixel_decoder) = match fast {
        Some(d) => (d.rgb, d.width, d.height, PixelDecoder::JpegDcOnly),
        None => {
            let d = crate::turbo::decode_rgb(bytes, denominator, max_pixels).map_err(|reason| {
                VisionError::CorruptImage {
                    format: "JPEG",
                    reason,
                }
            })?;
            (d.rgb, d.width, d.height, PixelDecoder::LibjpegTurbo)
        }
    };
    Ok(Decoded {
        rgb,
        width: ow,
        height: oh,
        info: PhotoInfo {
            format: PhotoFormat::Jpeg,
            width,
            height,
            orientation,
            dct_scale_denominator: denominator,
            pixel_decoder,
        },
    })
}

fn png_error(e: image::ImageError) -> VisionError {
    match e {
        image::ImageError::Unsupported(u) => VisionError::UnsupportedPixelFormat {
            detail: u.to_string(),
        },
        other => VisionError::CorruptImage {
            format: "PNG",
            reason: other.to_string(),
        },
    }
}

/// Width and height from the PNG IHDR chunk, which the format requires to come first.
fn png_header_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.get(12..16)? != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(bytes.get(16..20)?.try_into().ok()?);
    let h = u32::from_be_bytes(bytes.get(20..24)?.try_into().ok()?);
    Some((w, h))
}

fn decode_png(bytes: &[u8], limits: &DecodeLimits) -> Result<Decoded, VisionError> {
    // Check the claimed size before the decoder reads (and buffers) anything else.
    let (claimed_w, claimed_h) =
        png_header_size(bytes).ok_or_else(|| VisionError::CorruptImage {
            format: "PNG",
            reason: "no IHDR chunk at the start".to_owned(),
        })?;
    check_limits(claimed_w, claimed_h, limits)?;
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_side);
    image_limits.max_image_height = Some(limits.max_side);
    image_limits.max_alloc = Some(limits.max_decoded_bytes.saturating_mul(2));
    let mut decoder =
        image::codecs::png::PngDecoder::new(Cursor::new(bytes)).map_err(|e| match e {
            image::ImageError::Limits(_) => VisionError::CorruptImage {
                format: "PNG",
                reason: e.to_string(),
            },
            other => png_error(other),
        })?;
    let (width, height) = decoder.dimensions();
    check_limits(width, height, limits)?;
    decoder.set_limits(image_limits).map_err(png_error)?;
    let orientation = decoder
        .orientation()
        .map(Orientation::from_image)
        .unwrap_or_default();
    let image = image::DynamicImage::from_decoder(decoder).map_err(png_error)?;
    let rgb = image.into_rgb8().into_raw();
    Ok(Decoded {
        rgb,
        width,
        height,
        info: PhotoInfo {
            format: PhotoFormat::Png,
            width,
            height,
            orientation,
            dct_scale_denominator: 1,
            pixel_decoder: PixelDecoder::Png,
        },
    })
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ElementType;

    fn spec(layout: Layout, colour_order: ColourOrder) -> InputSpec {
        InputSpec {
            name: "input".into(),
            element_type: ElementType::F32,
            shape: match layout {
                Layout::Nchw => vec![1, 3, 2, 2],
                Layout::Nhwc => vec![1, 2, 2, 3],
            },
            layout,
            colour_order,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        }
    }

    #[test]
    fn dct_scale_is_largest_reduction_that_keeps_target() {
        assert_eq!(choose_dct_denominator((4000, 3000), (224, 224)), 8); // 500x375
        assert_eq!(choose_dct_denominator((1920, 1080), (224, 224)), 4); // 480x270
        assert_eq!(choose_dct_denominator((1792, 1792), (224, 224)), 8); // exactly 224
        assert_eq!(choose_dct_denominator((1791, 1792), (224, 224)), 8); // ceil(1791/8) = 224
        assert_eq!(choose_dct_denominator((1783, 4000), (224, 224)), 4); // 1783/8 -> 223
        assert_eq!(choose_dct_denominator((896, 900), (224, 224)), 4); // 224x225
        // Under 4x the input on an axis: full-size decode.
        assert_eq!(choose_dct_denominator((895, 4000), (224, 224)), 1);
        assert_eq!(choose_dct_denominator((512, 480), (224, 224)), 1);
        assert_eq!(choose_dct_denominator((400, 300), (224, 224)), 1);
        assert_eq!(choose_dct_denominator((224, 224), (224, 224)), 1);
        assert_eq!(choose_dct_denominator((100, 100), (224, 224)), 1);
        // Portrait target is honoured per axis.
        assert_eq!(choose_dct_denominator((3000, 4000), (224, 300)), 8);
        assert_eq!(choose_dct_denominator((3000, 2000), (224, 300)), 4);
        assert_eq!(choose_dct_denominator((3000, 1000), (224, 300)), 1);
    }

    #[test]
    fn normalisation_matches_formula_nchw_rgb() {
        let p = Preprocessor::new(
            &spec(Layout::Nchw, ColourOrder::Rgb),
            DecodeLimits::default(),
        );
        // 2x2 pixels: red, green, blue, white.
        let rgb = [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255];
        let t = p.normalise(&rgb);
        let f =
            |v: f32, c: usize| (v / 255.0 - [0.485, 0.456, 0.406][c]) / [0.229, 0.224, 0.225][c];
        let want = [
            f(255.0, 0),
            f(0.0, 0),
            f(0.0, 0),
            f(255.0, 0), // R plane
            f(0.0, 1),
            f(255.0, 1),
            f(0.0, 1),
            f(255.0, 1), // G plane
            f(0.0, 2),
            f(0.0, 2),
            f(255.0, 2),
            f(255.0, 2), // B plane
        ];
        for (a, b) in t.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{t:?}");
        }
    }

    #[test]
    fn normalisation_bgr_nhwc() {
        let p = Preprocessor::new(
            &spec(Layout::Nhwc, ColourOrder::Bgr),
            DecodeLimits::default(),
        );
        let rgb = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30];
        let t = p.normalise(&rgb);
        // First pixel, model channel 0 is blue (source 0), channel 2 is red (255).
        assert!((t[0] - (0.0 - 0.485) / 0.229).abs() < 1e-6);
        assert!((t[2] - (1.0 - 0.406) / 0.225).abs() < 1e-6);
        assert_eq!(t.len(), 12);
    }

    #[test]
    fn sniffing() {
        assert_eq!(
            PhotoFormat::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(PhotoFormat::Jpeg)
        );
        assert_eq!(
            PhotoFormat::sniff(b"\x89PNG\r\n\x1a\n...."),
            Some(PhotoFormat::Png)
        );
        assert_eq!(PhotoFormat::sniff(b"GIF89a"), None);
        assert_eq!(PhotoFormat::sniff(b""), None);
    }

    fn jpeg_bytes(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .unwrap();
        out
    }

    #[test]
    fn large_jpeg_uses_dct_scaling_and_gives_target_size() {
        let input = InputSpec {
            shape: vec![1, 3, 224, 224],
            ..spec(Layout::Nchw, ColourOrder::Rgb)
        };
        let mut p = Preprocessor::new(&input, DecodeLimits::default());
        let prepared = p.prepare(&jpeg_bytes(1920, 1080)).unwrap();
        assert_eq!(prepared.info.dct_scale_denominator, 4);
        assert_eq!((prepared.info.width, prepared.info.height), (1920, 1080));
        assert_eq!(prepared.tensor.len(), 3 * 224 * 224);
    }

    #[test]
    fn scaled_decode_keeps_the_picture_at_every_dct_scale() {
        // A left-to-right red ramp: every scale must give the same ramp at its own size.
        let img = image::RgbImage::from_fn(640, 480, |x, _| {
            image::Rgb([(x * 255 / 639) as u8, 40, 200])
        });
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .encode_image(&img)
            .unwrap();
        for d in [1u8, 2, 4, 8] {
            let out = crate::turbo::decode_rgb(&jpeg, d, u64::MAX).unwrap();
            let want = (640u32.div_ceil(u32::from(d)), 480u32.div_ceil(u32::from(d)));
            assert_eq!((out.width, out.height), want, "1/{d}");
            let px = |x: u32, y: u32| {
                let i = ((y * out.width + x) * 3) as usize;
                [out.rgb[i], out.rgb[i + 1], out.rgb[i + 2]]
            };
            let (left, right) = (px(0, out.height / 2), px(out.width - 1, out.height / 2));
            assert!(
                left[0] < 20 && right[0] > 235,
                "1/{d}: {left:?} .. {right:?}"
            );
            assert!(
                left[1].abs_diff(40) < 12 && left[2].abs_diff(200) < 12,
                "1/{d}: {left:?}"
            );
        }
    }

    #[test]
    fn jpeg_cut_inside_the_scan_is_an_error_not_a_grey_picture() {
        let jpeg = jpeg_bytes(1920, 1080);
        let input = InputSpec {
            shape: vec![1, 3, 224, 224],
            ..spec(Layout::Nchw, ColourOrder::Rgb)
        };
        let mut p = Preprocessor::new(&input, DecodeLimits::default());
        for cut in [jpeg.len() / 3, jpeg.len() * 9 / 10, jpeg.len() - 2] {
            match p.prepare(&jpeg[..cut]) {
                Err(VisionError::CorruptImage {
                    format: "JPEG",
                    reason,
                }) => {
                    assert!(!reason.is_empty());
                }
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
        // Garbage in the middle of the entropy-coded data is refused too.
        let mut damaged = jpeg.clone();
        let mid = damaged.len() / 2;
        damaged[mid..mid + 64].fill(0xFF);
        assert!(p.prepare(&damaged).is_err());
        // The whole file still decodes with the same preprocessor.
        assert!(p.prepare(&jpeg).is_ok());
    }

    #[test]
    fn turbo_decoder_refuses_more_pixels_than_its_budget() {
        let err = crate::turbo::decode_rgb(&jpeg_bytes(640, 480), 1, 640 * 480 - 1)
            .err()
            .unwrap();
        assert!(!err.is_empty());
        assert!(crate::turbo::decode_rgb(&jpeg_bytes(640, 480), 3, u64::MAX).is_err());
    }

    #[test]
    fn limits_checked_from_header() {
        let limits = DecodeLimits {
            max_side: 1000,
            ..DecodeLimits::default()
        };
        let mut p = Preprocessor::new(&spec(Layout::Nchw, ColourOrder::Rgb), limits);
        let err = p.prepare(&jpeg_bytes(1200, 16)).unwrap_err();
        assert!(
            matches!(err, VisionError::TooLarge { width: 1200, .. }),
            "{err}"
        );
    }

    /// Inserts an EXIF APP1 segment with the given orientation right after SOI.
    fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut tiff = b"MM\0*\0\0\0\x08\0\x01".to_vec();
        tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]);
        tiff.extend_from_slice(&orientation.to_be_bytes());
        tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    #[test]
    fn exif_orientation_is_applied_to_the_model_input() {
        // Left half black, right half white, 64x32.
        let img = image::RgbImage::from_fn(64, 32, |x, _| {
            if x < 32 {
                image::Rgb([0, 0, 0])
            } else {
                image::Rgb([255, 255, 255])
            }
        });
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .encode_image(&img)
            .unwrap();
        let input = InputSpec {
            shape: vec![1, 3, 16, 16],
            ..spec(Layout::Nchw, ColourOrder::Rgb)
        };
        let mut p = Preprocessor::new(&input, DecodeLimits::default());
        let plain = p.prepare(&jpeg).unwrap();
        assert_eq!(plain.info.orientation, Orientation::Normal);
        // Upright as stored: top-left dark, top-right bright.
        assert!(plain.tensor[0] < 0.0 && plain.tensor[15] > 0.0);
        let rotated = p.prepare(&with_exif_orientation(&jpeg, 6)).unwrap();
        assert_eq!(rotated.info.orientation, Orientation::Rotate90);
        // Rotated 90 degrees clockwise: the dark half is now on top.
        assert!(
            rotated.tensor[0] < 0.0 && rotated.tensor[15] < 0.0,
            "top row should be dark"
        );
        assert!(
            rotated.tensor[15 * 16] > 0.0,
            "bottom-left should be bright"
        );
    }
}

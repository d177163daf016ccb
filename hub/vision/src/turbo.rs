//! JPEG pixel decoding with libjpeg-turbo (its TurboJPEG 3 API, built from the vendored source
//! by `turbojpeg-sys` and linked statically), used because decoding dominates large photos:
//! libjpeg-turbo's Huffman decoder and SIMD IDCT are about twice as fast as the pure-Rust
//! decoder at the 1/8 DCT scale a 12 MP photo is read at, and it is what Pillow's `draft()`
//! uses, so the hub is not slower than the Python pipeline it is measured against.
//!
//! Safety boundary: this module and `backend` are the only places with `unsafe` code. Errors
//! are returned by the C API as status codes (no `longjmp` crosses Rust frames), warnings are
//! turned into errors (`TJPARAM_STOPONWARNING`), so a truncated or corrupt file is an error and
//! never a half-grey picture, and the decoder refuses images larger than the configured pixel
//! budget and progressive files with absurd scan counts (a known decompression-time bomb).
#![allow(
    unsafe_code,
    reason = "libjpeg-turbo is C; its TurboJPEG API is called through FFI, kept to this module"
)]

use std::ffi::{CStr, c_int};
use std::ptr::NonNull;

use turbojpeg_sys as tj;

/// Progressive scans allowed; real photos have about ten (libjpeg-turbo's advice is to cap it).
const MAX_SCANS: c_int = 500;

/// An RGB picture decoded at a DCT scale of 1/`denominator`.
pub(crate) struct TurboRgb {
    pub(crate) rgb: Vec<u8>,
    pub(crate) width: u32,
    pub(crate) height: u32,
}

/// One TurboJPEG decompressor instance; destroyed on drop.
struct Handle(NonNull<std::ffi::c_void>);

impl Handle {
    fn new() -> Result<Self, String> {
        Self::init(tj::TJINIT_TJINIT_DECOMPRESS)
    }

    fn init(kind: tj::TJINIT) -> Result<Self, String> {
        // SAFETY: tj3Init has no preconditions; a null return is handled.
        let raw = unsafe { tj::tj3Init(kind as c_int) };
        NonNull::new(raw)
            .map(Self)
            .ok_or_else(|| "libjpeg-turbo could not allocate a (de)compressor".to_owned())
    }

    fn error(&self) -> String {
        // SAFETY: the handle is live; tj3GetErrorStr returns a NUL-terminated string owned by
        // the handle (or a static one), valid until the next call on it, and copied here.
        let message = unsafe { tj::tj3GetErrorStr(self.0.as_ptr()) };
        if message.is_null() {
            return "libjpeg-turbo reported an unknown error".to_owned();
        }
        // SAFETY: non-null and NUL-terminated, see above.
        unsafe { CStr::from_ptr(message) }
            .to_string_lossy()
            .into_owned()
    }

    fn set(&self, param: tj::TJPARAM, value: c_int) -> Result<(), String> {
        // SAFETY: the handle is live; tj3Set only reads its arguments.
        let status = unsafe { tj::tj3Set(self.0.as_ptr(), param as c_int, value) };
        if status == 0 {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    fn get(&self, param: tj::TJPARAM) -> c_int {
        // SAFETY: the handle is live; tj3Get only reads.
        unsafe { tj::tj3Get(self.0.as_ptr(), param as c_int) }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init and is destroyed exactly once.
        unsafe { tj::tj3Destroy(self.0.as_ptr()) }
    }
}

/// Decodes `jpeg` to packed RGB at a DCT scale of 1/`denominator` (1, 2, 4 or 8), refusing more
/// than `max_pixels` full-resolution pixels. Errors carry libjpeg-turbo's own message.
pub(crate) fn decode_rgb(
    jpeg: &[u8],
    denominator: u8,
    max_pixels: u64,
) -> Result<TurboRgb, String> {
    if !matches!(denominator, 1 | 2 | 4 | 8) {
        return Err(format!("unsupported DCT scale 1/{denominator}"));
    }
    let handle = Handle::new()?;
    handle.set(tj::TJPARAM_TJPARAM_STOPONWARNING, 1)?;
    handle.set(tj::TJPARAM_TJPARAM_SCANLIMIT, MAX_SCANS)?;
    handle.set(
        tj::TJPARAM_TJPARAM_MAXPIXELS,
        c_int::try_from(max_pixels).unwrap_or(c_int::MAX),
    )?;
    let len = tj::size_t::try_from(jpeg.len()).map_err(|_| "JPEG too large".to_owned())?;
    // SAFETY: the pointer and length describe `jpeg`, which outlives the call; the library
    // only reads from it.
    if unsafe { tj::tj3DecompressHeader(handle.0.as_ptr(), jpeg.as_ptr(), len) } != 0 {
        return Err(handle.error());
    }
    let width = handle.get(tj::TJPARAM_TJPARAM_JPEGWIDTH);
    let height = handle.get(tj::TJPARAM_TJPARAM_JPEGHEIGHT);
    if width <= 0 || height <= 0 {
        return Err(format!("header claims {width}x{height} pixels"));
    }
    let factor = tj::tjscalingfactor {
        num: 1,
        denom: c_int::from(denominator),
    };
    // SAFETY: the handle is live; the factor is passed by value.
    if unsafe { tj::tj3SetScalingFactor(handle.0.as_ptr(), factor) } != 0 {
        return Err(handle.error());
    }
    // TJSCALED: ceil(dimension × num / denom).
    let scaled = |len: c_int| (len + factor.denom - 1) / factor.denom;
    let (out_w, out_h) = (scaled(width), scaled(height));
    let pitch = out_w.checked_mul(3).ok_or("scaled row too wide")?;
    let bytes = usize::try_from(pitch)
        .ok()
        .and_then(|p| p.checked_mul(usize::try_from(out_h).ok()?))
        .ok_or("scaled picture too large")?;
    let mut rgb = vec![0u8; bytes];
    // SAFETY: `rgb` holds exactly pitch × out_h bytes, the size tj3Decompress8 writes for a
    // packed RGB picture at the scaling factor set above; `jpeg` is only read.
    let status = unsafe {
        tj::tj3Decompress8(
            handle.0.as_ptr(),
            jpeg.as_ptr(),
            len,
            rgb.as_mut_ptr(),
            pitch,
            tj::TJPF_TJPF_RGB,
        )
    };
    if status != 0 {
        return Err(handle.error());
    }
    Ok(TurboRgb {
        rgb,
        width: out_w.unsigned_abs(),
        height: out_h.unsigned_abs(),
    })
}

/// How a picture is encoded: the benchmark's photos and the tests' pictures (the hub itself
/// never writes JPEG).
#[derive(Debug, Clone, Copy)]
pub(crate) struct EncodeOptions {
    pub(crate) subsampling: tj::TJSAMP,
    pub(crate) quality: c_int,
    /// Restart interval in MCUs (0: none).
    pub(crate) restart_mcus: c_int,
    pub(crate) optimize_huffman: bool,
    pub(crate) progressive: bool,
    pub(crate) arithmetic: bool,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self {
            subsampling: tj::TJSAMP_TJSAMP_420,
            quality: 90,
            restart_mcus: 0,
            optimize_huffman: false,
            progressive: false,
            arithmetic: false,
        }
    }
}

/// Encodes packed RGB (greyscale output when `subsampling` is TJSAMP_GRAY) with libjpeg-turbo.
/// Panics when `rgb` is not `width` × `height` pixels; errors carry libjpeg-turbo's message.
pub(crate) fn try_encode_rgb(
    rgb: &[u8],
    width: u32,
    height: u32,
    opts: EncodeOptions,
) -> Result<Vec<u8>, String> {
    assert_eq!(rgb.len(), width as usize * height as usize * 3);
    let handle = Handle::init(tj::TJINIT_TJINIT_COMPRESS)?;
    handle.set(tj::TJPARAM_TJPARAM_SUBSAMP, opts.subsampling as c_int)?;
    handle.set(tj::TJPARAM_TJPARAM_QUALITY, opts.quality)?;
    handle.set(tj::TJPARAM_TJPARAM_RESTARTBLOCKS, opts.restart_mcus)?;
    handle.set(
        tj::TJPARAM_TJPARAM_OPTIMIZE,
        c_int::from(opts.optimize_huffman),
    )?;
    handle.set(
        tj::TJPARAM_TJPARAM_PROGRESSIVE,
        c_int::from(opts.progressive),
    )?;
    handle.set(tj::TJPARAM_TJPARAM_ARITHMETIC, c_int::from(opts.arithmetic))?;
    let w = c_int::try_from(width).map_err(|_| "picture too wide".to_owned())?;
    let h = c_int::try_from(height).map_err(|_| "picture too tall".to_owned())?;
    let mut out: *mut std::ffi::c_uchar = std::ptr::null_mut();
    let mut size: tj::size_t = 0;
    // SAFETY: `rgb` holds width × height packed RGB pixels (asserted above) and is only read;
    // the library allocates `out` with tj3Alloc and sets `size`.
    let status = unsafe {
        tj::tj3Compress8(
            handle.0.as_ptr(),
            rgb.as_ptr(),
            w,
            w * 3,
            h,
            tj::TJPF_TJPF_RGB as c_int,
            &mut out,
            &mut size,
        )
    };
    if status != 0 || out.is_null() {
        let error = handle.error();
        if !out.is_null() {
            // SAFETY: `out` came from the library's allocator and is freed once.
            unsafe { tj::tj3Free(out.cast()) };
        }
        return Err(error);
    }
    // SAFETY: on success `out` points to `size` bytes owned by us until tj3Free.
    let jpeg = unsafe { std::slice::from_raw_parts(out, size as usize) }.to_vec();
    // SAFETY: `out` came from the library's allocator and is freed once.
    unsafe { tj::tj3Free(out.cast()) };
    Ok(jpeg)
}

/// [`try_encode_rgb`] for tests.
#[cfg(test)]
pub(crate) fn encode_rgb(rgb: &[u8], width: u32, height: u32, opts: EncodeOptions) -> Vec<u8> {
    try_encode_rgb(rgb, width, height, opts).unwrap()
}

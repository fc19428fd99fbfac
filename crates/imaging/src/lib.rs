//! Untrusted camera images in, bounded RGB rasters out.
//!
//! [`decode`] is the one place in Valet where image bytes from the network meet a decoder. It
//! sniffs the format ([`ImageFormat`]), reads the header, and refuses anything over the
//! [`DecodeLimits`] budgets *before* allocating pixels; big JPEGs are decoded at 1/2, 1/4 or
//! 1/8 scale in the DCT instead. The result is a [`Decoded`] RGB8 image or a [`DecodeError`]
//! whose message a person can act on. [`resize_rgb`] is the Pillow-compatible resize the
//! models' inputs go through, and [`synthetic`] makes photo-like and hostile test images.
//!
//! Architecture invariant: nothing else in the codebase calls `image`, `jpeg-decoder` or `png`
//! on untrusted bytes.

mod error;
mod jpeg;
mod png;
mod resize;
mod sniff;
pub mod synthetic;

pub use error::{DecodeError, SizeLimit};
pub use resize::resize_rgb;
pub use sniff::{ImageFormat, sniff};

/// Budgets for one decode. Every check is made from the header, before pixels are allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest image accepted at all (width × height as the header claims it).
    pub max_source_pixels: u64,
    /// Largest raster handed back. JPEGs above it are decoded at the smallest DCT scale that
    /// fits; PNGs above it are refused.
    pub max_output_pixels: u64,
    /// Ceiling on the decoder's estimated working memory, in bytes.
    pub max_alloc_bytes: u64,
}

impl Default for DecodeLimits {
    /// 200 MP in (the 162 MP photo that crashed the prototype is allowed), 16 MP out, 256 MiB.
    fn default() -> Self {
        DecodeLimits { max_source_pixels: 200_000_000, max_output_pixels: 16_000_000, max_alloc_bytes: 256 << 20 }
    }
}

/// A decoded image and how it was obtained.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The pixels, always RGB8 (grayscale, CMYK, alpha and 16-bit are converted).
    pub image: image::RgbImage,
    /// The format the bytes were in.
    pub format: ImageFormat,
    /// Width of the image as encoded, before any DCT scaling.
    pub source_width: u32,
    /// Height of the image as encoded, before any DCT scaling.
    pub source_height: u32,
    /// 1, 2, 4 or 8: JPEG DCT downscale factor used (`image` is about `source / this`,
    /// rounded up). Always 1 for PNG.
    pub scale_denominator: u32,
}

/// Decodes an untrusted JPEG or PNG within `limits`.
///
/// Never panics, and allocates nothing in proportion to the image until the header has passed
/// every budget. Errors say what was wrong in words a camera installer understands; see
/// [`DecodeError::is_too_large`] for the 413 case.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Decoded, DecodeError> {
    match sniff(bytes)? {
        ImageFormat::Jpeg => jpeg::decode(bytes, limits),
        ImageFormat::Png => png::decode(bytes, limits),
    }
}

/// Decodes an untrusted image small, for a cheap look (motion gating, previews): a JPEG at the
/// largest DCT reduction (1/2, 1/4 or 1/8) whose longer side still reaches `max_side`, or at 1/8 when
/// even that is longer, so a 1280×720 frame costs a 160×90 raster and no inverse DCT at full size. A
/// PNG (which has no reduced decode) is decoded within `limits` and then shrunk to fit `max_side`.
///
/// The same budgets and errors as [`decode`]; `scale_denominator` says what the DCT did.
pub fn decode_thumbnail(bytes: &[u8], max_side: u32, limits: &DecodeLimits) -> Result<Decoded, DecodeError> {
    match sniff(bytes)? {
        ImageFormat::Jpeg => jpeg::decode_thumbnail(bytes, max_side.max(1), limits),
        ImageFormat::Png => {
            let mut decoded = png::decode(bytes, limits)?;
            let (w, h) = decoded.image.dimensions();
            let side = max_side.max(1);
            if w.max(h) > side {
                let (tw, th) = if w >= h {
                    (side, (u64::from(h) * u64::from(side) / u64::from(w)).max(1) as u32)
                } else {
                    ((u64::from(w) * u64::from(side) / u64::from(h)).max(1) as u32, side)
                };
                decoded.image = resize_rgb(&decoded.image, tw, th);
            }
            Ok(decoded)
        }
    }
}

/// Encodes `image` as a baseline JPEG: small previews, such as a plate's crop for a reviewer.
pub fn encode_jpeg(image: &image::RgbImage, quality: u8) -> Result<Vec<u8>, jpeg_encoder::EncodingError> {
    let (Ok(width), Ok(height)) = (u16::try_from(image.width()), u16::try_from(image.height())) else {
        return Err(jpeg_encoder::EncodingError::BadImageData { length: image.as_raw().len(), required: 0 });
    };
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, quality).encode(
        image.as_raw(),
        width,
        height,
        jpeg_encoder::ColorType::Rgb,
    )?;
    Ok(out)
}

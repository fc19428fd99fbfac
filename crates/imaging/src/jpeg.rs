//! JPEG decoding through `jpeg-decoder`, scaled in the DCT so big photos never exist at full size.
//!
//! Memory is decided from our own header parse ([`JpegHeader`]) before a decoder sees the data:
//! the DCT scale comes from `max_output_pixels`, and the working-set estimate (which for
//! progressive files includes the full-resolution coefficient store) from `max_alloc_bytes`.
//!
//! The everyday case, an 8-bit colour JPEG decoded at full size (a camera frame), goes through
//! `zune-jpeg` in strict mode, which is about a third faster; anything it refuses is decoded again
//! by `jpeg-decoder`, whose answer (pixels or a precise error) stands.

use std::panic::{AssertUnwindSafe, catch_unwind};

use image::RgbImage;
use jpeg_decoder::{Decoder, PixelFormat};

use crate::sniff::JpegHeader;
use crate::{DecodeError, DecodeLimits, Decoded, ImageFormat, SizeLimit};

/// The DCT scale denominators `jpeg-decoder` implements, smallest reduction first.
const SCALE_DENOMINATORS: [u32; 4] = [1, 2, 4, 8];

pub(crate) fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Decoded, DecodeError> {
    decode_at(bytes, limits, None)
}

/// A decode at the largest DCT reduction whose longer side is still at least `max_side` (1/8 when
/// even that is longer): every budget of [`decode`] still applies.
pub(crate) fn decode_thumbnail(bytes: &[u8], max_side: u32, limits: &DecodeLimits) -> Result<Decoded, DecodeError> {
    decode_at(bytes, limits, Some(max_side))
}

fn decode_at(bytes: &[u8], limits: &DecodeLimits, thumbnail: Option<u32>) -> Result<Decoded, DecodeError> {
    let header = JpegHeader::parse(bytes)?;
    let (width, height) = (header.width, header.height);
    let too_large = |limit| DecodeError::TooLarge { width, height, limit };
    if u64::from(width) * u64::from(height) > limits.max_source_pixels {
        return Err(too_large(SizeLimit::SourcePixels { max: limits.max_source_pixels }));
    }
    let scaled = |d: u32| u64::from(width.div_ceil(d)) * u64::from(height.div_ceil(d));
    let max_out = limits.max_output_pixels;
    // Lossless JPEG has no DCT to scale in.
    let scales = &SCALE_DENOMINATORS[..if header.lossless { 1 } else { 4 }];
    let fitting = scales
        .iter()
        .copied()
        .find(|&d| scaled(d) <= max_out)
        .ok_or_else(|| too_large(SizeLimit::OutputPixels { max: max_out }))?;
    let denominator = match thumbnail {
        None => fitting,
        // The most reduction that keeps the longer side at `side` or more, never less than the
        // budget demands.
        Some(side) => {
            scales.iter().copied().rev().find(|&d| width.max(height).div_ceil(d) >= side).unwrap_or(1).max(fitting)
        }
    };
    let needed = working_set_bytes(&header, denominator);
    if needed > limits.max_alloc_bytes {
        return Err(too_large(SizeLimit::AllocBytes {
            needed,
            max: limits.max_alloc_bytes,
            what: if header.progressive {
                "the full-size DCT coefficients a progressive JPEG keeps while decoding"
            } else {
                "the decoded colour planes"
            },
        }));
    }

    // jpeg-decoder is well fuzzed, but a panic here would take a server worker down with it;
    // turning one into `Malformed` keeps "no panics ever" true for callers (with panic=unwind).
    let decoded = catch_unwind(AssertUnwindSafe(|| run_decoder(bytes, &header, denominator, limits)))
        .unwrap_or_else(|_| Err(DecodeError::Malformed("the JPEG decoder failed on this data".to_owned())))?;
    Ok(Decoded {
        image: decoded,
        format: ImageFormat::Jpeg,
        source_width: width,
        source_height: height,
        scale_denominator: denominator,
    })
}

fn run_decoder(
    bytes: &[u8],
    header: &JpegHeader,
    denominator: u32,
    limits: &DecodeLimits,
) -> Result<RgbImage, DecodeError> {
    // Progressive files go to jpeg-decoder: on a malformed one, zune-jpeg's progressive path trips
    // its own debug assertion (fuzz/image_decode), and cameras send baseline frames anyway.
    if denominator == 1
        && header.precision == 8
        && !header.lossless
        && !header.progressive
        && header.sampling.len() == 3
        && let Some(rgb) = run_fast_decoder(bytes, header)
    {
        return Ok(rgb);
    }
    let mut decoder = Decoder::new(bytes);
    // A second line of defence if our estimate and the decoder ever disagree.
    decoder.set_max_decoding_buffer_size(usize::try_from(limits.max_alloc_bytes).unwrap_or(usize::MAX));
    decoder.read_info().map_err(map_error)?;
    let info =
        decoder.info().ok_or_else(|| DecodeError::Malformed("the JPEG decoder found no frame header".to_owned()))?;
    if (u32::from(info.width), u32::from(info.height)) != (header.width, header.height) {
        return Err(DecodeError::Malformed("the JPEG has more than one frame header with different sizes".to_owned()));
    }
    if denominator > 1 {
        // `scale` picks the largest reduction whose output is at least the requested size in
        // one axis; asking for exactly width/d × height/d therefore selects 1/d.
        let request = |len: u32| u16::try_from(len.div_ceil(denominator)).unwrap_or(u16::MAX);
        decoder.scale(request(header.width), request(header.height)).map_err(map_error)?;
    }
    let pixels = decoder.decode().map_err(map_error)?;
    let info =
        decoder.info().ok_or_else(|| DecodeError::Malformed("the JPEG decoder lost its frame header".to_owned()))?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    if u64::from(w) * u64::from(h) > limits.max_output_pixels {
        return Err(DecodeError::TooLarge {
            width: header.width,
            height: header.height,
            limit: SizeLimit::OutputPixels { max: limits.max_output_pixels },
        });
    }
    to_rgb(pixels, info.pixel_format, w, h, header.precision)
}

/// A full-size decode by `zune-jpeg`, or `None` if it found anything to object to, which sends the
/// file to `jpeg-decoder` for the verdict. Strict mode refuses corrupt streams, but it fills in a
/// stream cut a few bytes short, so only files that end with their end-of-image marker (trailing
/// padding aside) are taken: a cut file, or one with data after the image, goes the careful way.
fn run_fast_decoder(bytes: &[u8], header: &JpegHeader) -> Option<RgbImage> {
    let end = bytes.iter().rposition(|&b| b != 0 && !b.is_ascii_whitespace())?;
    if end == 0 || bytes[end - 1..=end] != [0xFF, 0xD9] {
        return None;
    }
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;

    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(header.width as usize)
        .set_max_height(header.height as usize)
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(bytes, options);
    let pixels = decoder.decode().ok()?;
    let (w, h) = decoder.dimensions()?;
    if (w, h) != (header.width as usize, header.height as usize) {
        return None;
    }
    RgbImage::from_raw(header.width, header.height, pixels)
}

/// Upper bound on what a decode at 1/`denominator` holds at once: one padded plane per
/// component plus the interleaved output, our RGB conversion, and for progressive files the
/// coefficient store.
fn working_set_bytes(header: &JpegHeader, denominator: u32) -> u64 {
    let components = header.sampling.len() as u64;
    let out_w = u64::from(header.width.div_ceil(denominator).next_multiple_of(8));
    let out_h = u64::from(header.height.div_ceil(denominator).next_multiple_of(8));
    let sample_bytes = if header.precision > 8 { 2 } else { 1 };
    let planes = components * out_w * out_h * sample_bytes;
    let interleaved = components * out_w * out_h * sample_bytes;
    let rgb = 3 * out_w * out_h;
    let coefficients = if header.progressive { header.progressive_coefficient_bytes() } else { 0 };
    planes + interleaved + rgb + coefficients
}

fn to_rgb(
    pixels: Vec<u8>,
    format: PixelFormat,
    width: u32,
    height: u32,
    precision: u8,
) -> Result<RgbImage, DecodeError> {
    let count = width as usize * height as usize;
    if pixels.len() != count * format.pixel_bytes() {
        return Err(DecodeError::UnsupportedFormat {
            detail: format!(
                "a {precision}-bit JPEG whose decoded layout ({} bytes for {width}×{height} \
                 {format:?}) is not supported",
                pixels.len()
            ),
        });
    }
    let rgb = match format {
        PixelFormat::RGB24 => pixels,
        PixelFormat::L8 => pixels.iter().flat_map(|&l| [l, l, l]).collect(),
        PixelFormat::L16 => {
            // Lossless JPEG of 9..16 bits; keep the most significant 8 bits of the sample.
            let shift = precision.saturating_sub(8);
            pixels
                .chunks_exact(2)
                .map(|s| (u16::from_ne_bytes([s[0], s[1]]) >> shift).min(255) as u8)
                .flat_map(|l| [l, l, l])
                .collect()
        }
        // jpeg-decoder has already undone Adobe's inversion, so this is plain CMYK ink (0 = no
        // ink); this is the naive conversion Pillow and the image crate use, no ICC profile.
        PixelFormat::CMYK32 => pixels
            .chunks_exact(4)
            .flat_map(|p| {
                let k = 255 - u32::from(p[3]);
                let channel = |c: u8| ((255 - u32::from(c)) * k / 255) as u8;
                [channel(p[0]), channel(p[1]), channel(p[2])]
            })
            .collect(),
    };
    RgbImage::from_raw(width, height, rgb)
        .ok_or_else(|| DecodeError::Malformed("the JPEG decoded to a buffer of the wrong size".to_owned()))
}

fn map_error(error: jpeg_decoder::Error) -> DecodeError {
    use jpeg_decoder::Error;
    match error {
        Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            DecodeError::Truncated("the JPEG data ends before the image is complete".to_owned())
        }
        Error::Io(e) => DecodeError::Malformed(format!("reading the JPEG failed: {e}")),
        Error::Format(why) => DecodeError::Malformed(format!("JPEG: {why}")),
        Error::Unsupported(feature) => {
            DecodeError::UnsupportedFormat { detail: format!("a JPEG using a feature the decoder lacks: {feature:?}") }
        }
        Error::Internal(e) => DecodeError::Malformed(format!("JPEG: {e}")),
    }
}

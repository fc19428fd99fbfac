//! PNG decoding through `image::ImageReader` with explicit `image::Limits`, converted to RGB8.
//!
//! PNG cannot be decoded at a reduced scale, so anything over `max_output_pixels` is refused
//! outright. Alpha is dropped rather than composited, as Pillow's `convert("RGB")` does.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use image::{ImageError, ImageReader, Limits};

use crate::sniff::PngHeader;
use crate::{DecodeError, DecodeLimits, Decoded, ImageFormat, SizeLimit};

pub(crate) fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Decoded, DecodeError> {
    let header = PngHeader::parse(bytes)?;
    let (width, height) = (header.width, header.height);
    let too_large = |limit| DecodeError::TooLarge { width, height, limit };
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_source_pixels {
        return Err(too_large(SizeLimit::SourcePixels { max: limits.max_source_pixels }));
    }
    if pixels > limits.max_output_pixels {
        return Err(too_large(SizeLimit::OutputPixels { max: limits.max_output_pixels }));
    }
    // The decoder's native buffer plus the RGB8 copy made from it.
    let needed = pixels * (header.decoded_bytes_per_pixel + 3);
    if needed > limits.max_alloc_bytes {
        return Err(too_large(SizeLimit::AllocBytes {
            needed,
            max: limits.max_alloc_bytes,
            what: "the decoded pixels and their RGB copy",
        }));
    }

    let mut image_limits = Limits::default();
    // Our checks above already bound these; the decoder enforcing them too means a header we
    // misread still cannot make it allocate more.
    image_limits.max_image_width = Some(width);
    image_limits.max_image_height = Some(height);
    image_limits.max_alloc = Some(limits.max_alloc_bytes);

    let image = catch_unwind(AssertUnwindSafe(|| {
        let mut reader = ImageReader::with_format(Cursor::new(bytes), image::ImageFormat::Png);
        reader.limits(image_limits);
        reader.decode()
    }))
    .map_err(|_| DecodeError::Malformed("the PNG decoder failed on this data".to_owned()))?
    .map_err(|e| map_error(e, width, height, limits))?;
    Ok(Decoded {
        // A no-op move for RGB8 PNGs; everything else is converted once.
        image: image.into_rgb8(),
        format: ImageFormat::Png,
        source_width: width,
        source_height: height,
        scale_denominator: 1,
    })
}

fn map_error(error: ImageError, width: u32, height: u32, limits: &DecodeLimits) -> DecodeError {
    match error {
        ImageError::Limits(_) => DecodeError::TooLarge {
            width,
            height,
            limit: SizeLimit::AllocBytes {
                // The decoder does not say how much it wanted; report the ceiling it hit.
                needed: limits.max_alloc_bytes.saturating_add(1),
                max: limits.max_alloc_bytes,
                what: "the PNG decoder's buffers",
            },
        },
        ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            DecodeError::Truncated("the PNG data ends before the image is complete".to_owned())
        }
        ImageError::Unsupported(e) => {
            DecodeError::UnsupportedFormat { detail: format!("a PNG using a feature the decoder lacks: {e}") }
        }
        other => {
            let message = other.to_string();
            // The png crate reports a cut-off stream as a format error, not as an I/O EOF.
            if is_truncation(&message) {
                DecodeError::Truncated(format!("the PNG data ends early ({message})"))
            } else {
                DecodeError::Malformed(format!("PNG: {message}"))
            }
        }
    }
}

fn is_truncation(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    ["end of file", "eof", "unexpected end", "no more data", "truncated"].iter().any(|needle| lower.contains(needle))
}

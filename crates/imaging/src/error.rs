//! `DecodeError`: why an untrusted image was refused, worded for the person who sent it.
//!
//! The server maps [`DecodeError::is_too_large`] to 413 and everything else to 415/422, so the
//! variants are split by what the sender can do about it, not by which library noticed.

use std::fmt;

/// Why [`crate::decode`] refused an image. `Display` is meant to be shown to a person as is.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Zero bytes: usually a camera that posted before its frame was ready.
    #[error("the image is empty (0 bytes were received)")]
    Empty,
    /// Not a JPEG or PNG, or a JPEG/PNG using a feature the decoder lacks.
    #[error("unsupported image: {detail}")]
    UnsupportedFormat {
        /// What the data looks like instead, e.g. "this looks like HTML or text ...".
        detail: String,
    },
    /// The image is bigger than a [`crate::DecodeLimits`] budget. Refused before the pixels
    /// were decoded, usually from the header alone.
    #[error("image is too large: {width}×{height} pixels; {limit}")]
    TooLarge {
        /// Width claimed by the image header.
        width: u32,
        /// Height claimed by the image header.
        height: u32,
        /// Which budget it exceeds.
        limit: SizeLimit,
    },
    /// The data stops before the image is complete (a cut-off upload).
    #[error("image is truncated: {0}")]
    Truncated(String),
    /// The data is a JPEG/PNG in name only: corrupt headers or compressed data.
    #[error("image is corrupt: {0}")]
    Malformed(String),
}

impl DecodeError {
    /// True for [`DecodeError::TooLarge`]: the server answers 413 Payload Too Large.
    pub fn is_too_large(&self) -> bool {
        matches!(self, DecodeError::TooLarge { .. })
    }
}

/// The budget of [`crate::DecodeLimits`] an image exceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeLimit {
    /// More pixels than `max_source_pixels`.
    SourcePixels {
        /// The largest accepted pixel count.
        max: u64,
    },
    /// Even at the smallest decode scale (1/8 for JPEG, 1 for PNG) the output has more pixels
    /// than `max_output_pixels`.
    OutputPixels {
        /// The largest accepted output pixel count.
        max: u64,
    },
    /// Decoding would need more working memory than `max_alloc_bytes`.
    AllocBytes {
        /// Estimated bytes the decode needs.
        needed: u64,
        /// The configured ceiling.
        max: u64,
        /// What the memory is for, e.g. "the DCT coefficients of a progressive JPEG".
        what: &'static str,
    },
}

impl fmt::Display for SizeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SizeLimit::SourcePixels { max } => {
                write!(f, "images of at most {} are accepted", megapixels(max))
            }
            SizeLimit::OutputPixels { max } => write!(
                f,
                "it cannot be decoded to {} or less (PNG is never scaled while decoding; \
                 JPEG at most 1/8)",
                megapixels(max)
            ),
            SizeLimit::AllocBytes { needed, max, what } => write!(
                f,
                "decoding it needs about {} MiB of memory for {what}, more than the {} MiB allowed",
                needed.div_ceil(1 << 20),
                max >> 20
            ),
        }
    }
}

/// "16.0 MP": people think of camera images in megapixels.
fn megapixels(pixels: u64) -> String {
    format!("{:.1} MP", pixels as f64 / 1e6)
}

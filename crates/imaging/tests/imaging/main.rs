//! Integration tests for `valet_imaging::decode`, `resize_rgb` and `synthetic`, compiled into
//! one test binary (ripgrep-style): hostile input, every supported layout, the 162 MP photo's
//! memory, and Pillow parity of the resize.
//!
//! `big_photo` re-executes this binary as a child process so that peak RSS is the measured
//! operation's own, not the whole test run's.

mod big_photo;
mod formats;
mod refusals;
mod resize;
mod thumbnail;

use image::{ExtendedColorType, ImageEncoder, codecs::png::PngEncoder};
use jpeg_encoder::{ColorType, Encoder};
use valet_imaging::{DecodeError, DecodeLimits, Decoded, decode};

/// Decodes with the server's default limits.
fn decode_default(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    decode(bytes, &DecodeLimits::default())
}

/// A JPEG of `data` laid out as `color` (quality 90, the encoder's default 4:2:0 subsampling).
fn jpeg(data: &[u8], width: u16, height: u16, color: ColorType, progressive: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out, 90);
    encoder.set_progressive(progressive);
    encoder.encode(data, width, height, color).unwrap();
    out
}

/// A solid-colour RGB JPEG.
fn solid_jpeg(width: u16, height: u16, rgb: [u8; 3]) -> Vec<u8> {
    let data = rgb.repeat(usize::from(width) * usize::from(height));
    jpeg(&data, width, height, ColorType::Rgb, false)
}

/// A PNG of raw `data` (16-bit samples as native-endian u16s, as `image` expects).
fn png(data: &[u8], width: u32, height: u32, color: ExtendedColorType) -> Vec<u8> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out).write_image(data, width, height, color).unwrap();
    out
}

/// Asserts the error is the expected variant, showing the message otherwise.
macro_rules! assert_error {
    ($result:expr, $pattern:pat) => {
        match $result {
            Err(error @ $pattern) => error,
            Err(other) => panic!("expected {}, got {other:?} ({other})", stringify!($pattern)),
            Ok(decoded) => panic!(
                "expected {}, got a {}×{} image",
                stringify!($pattern),
                decoded.image.width(),
                decoded.image.height()
            ),
        }
    };
}
pub(crate) use assert_error;

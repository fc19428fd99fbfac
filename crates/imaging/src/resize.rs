//! `resize_rgb`: the one resize the models' inputs go through.
//!
//! Architecture invariant: inference must see the same pixels training saw. The training side
//! resizes with Pillow's `Image.resize(size, Image.BILINEAR)`; `fast_image_resize`'s
//! `Convolution(Bilinear)` is the same separable convolution (a triangle filter whose support
//! widens by the scale factor when shrinking, 8-bit fixed-point accumulation), so the outputs
//! agree to within one grey level. `resize_matches_pillow_bilinear` in the tests pins this
//! against bytes produced by Pillow.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;

/// Resizes to exactly `width`×`height` (aspect ratio is not kept), matching Pillow's
/// `Image.resize((width, height), Image.BILINEAR)` on an RGB image.
///
/// A zero target dimension, or an empty source, gives an empty (or black) image rather than
/// a panic.
pub fn resize_rgb(src: &RgbImage, width: u32, height: u32) -> RgbImage {
    if width == 0 || height == 0 || src.width() == 0 || src.height() == 0 {
        return RgbImage::new(width, height);
    }
    if (width, height) == src.dimensions() {
        return src.clone();
    }
    let src_view = ImageRef::new(src.width(), src.height(), src.as_raw(), PixelType::U8x3)
        .expect("an RgbImage buffer is exactly width×height×3 bytes, and u8 needs no alignment");
    let mut dst = Image::new(width, height, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    Resizer::new().resize(&src_view, &mut dst, &options).expect("source and destination are both non-empty U8x3");
    RgbImage::from_raw(width, height, dst.into_vec()).expect("fast_image_resize allocates exactly width×height×3 bytes")
}

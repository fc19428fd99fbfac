//! The plate a reviewer sees: [`review_crop_jpeg`] cuts a read plate out of its frame with a wide
//! margin, for the review queue (the server's plate reader) and a camera passage's best crop.

use image::RgbImage;

use crate::PlateBox;

/// A review crop is at most this wide: enough to read every glyph, small enough to store per read.
pub const REVIEW_CROP_MAX_WIDTH: u32 = 320;

/// The plate and a wide margin around it (half its width each side, its height above and below:
/// the detector's box can be tight, and a cut-off first or last glyph is exactly what a reviewer
/// must see), at most [`REVIEW_CROP_MAX_WIDTH`] wide, as JPEG. `None` for a box outside the frame.
pub fn review_crop_jpeg(frame: &RgbImage, bbox: &PlateBox) -> Option<Vec<u8>> {
    let (mx, my) = (bbox.w / 2, bbox.h);
    let x = bbox.x.saturating_sub(mx);
    let y = bbox.y.saturating_sub(my);
    let w = (bbox.w + 2 * mx).min(frame.width().saturating_sub(x));
    let h = (bbox.h + 2 * my).min(frame.height().saturating_sub(y));
    if w == 0 || h == 0 {
        return None;
    }
    let mut crop = image::imageops::crop_imm(frame, x, y, w, h).to_image();
    if w > REVIEW_CROP_MAX_WIDTH {
        crop = valet_imaging::resize_rgb(&crop, REVIEW_CROP_MAX_WIDTH, (h * REVIEW_CROP_MAX_WIDTH / w).max(1));
    }
    valet_imaging::encode_jpeg(&crop, 80).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crop_size(frame: &RgbImage, bbox: PlateBox) -> Option<(u32, u32)> {
        let jpeg = review_crop_jpeg(frame, &bbox)?;
        let decoded = valet_imaging::decode(&jpeg, &valet_imaging::DecodeLimits::default()).unwrap();
        Some(decoded.image.dimensions())
    }

    #[test]
    fn the_reviewers_crop_keeps_half_a_plate_of_margin_each_side() {
        let frame = RgbImage::new(640, 480);
        // A 100×30 plate in the middle: 50 px either side, 30 above and below.
        assert_eq!(crop_size(&frame, PlateBox { x: 200, y: 200, w: 100, h: 30 }), Some((200, 90)));
        // At the frame's right edge the margin is what the frame has.
        assert_eq!(crop_size(&frame, PlateBox { x: 560, y: 200, w: 80, h: 30 }), Some((120, 90)));
        // A wide plate is shrunk to the crop's width limit, keeping its shape.
        assert_eq!(crop_size(&frame, PlateBox { x: 100, y: 100, w: 300, h: 60 }), Some((320, 96)));
        // A box outside the frame has nothing to show.
        assert_eq!(crop_size(&frame, PlateBox { x: 700, y: 500, w: 10, h: 10 }), None);
    }
}

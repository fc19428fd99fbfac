//! Stage 2: detected boxes → the grey crops the recogniser reads. [`rectify`] widens each box by the
//! sidecar's margins, crops, optionally straightens a tilted plate ([`estimate_skew`]), resizes to
//! the recogniser's input size ignoring aspect, and converts to grey.
//!
//! The order and arithmetic are training's (`training/plates/train_ocr.py`, `to_input`): Pillow
//! bilinear resize of the RGB crop, then grey as 0.299 R + 0.587 G + 0.114 B, here rounded to a grey
//! level (at most half a level from training's float).

use image::{GrayImage, Luma, RgbImage};

use crate::detection::PlateBox;
use crate::recognition::RecognizerSpec;

/// Skew is searched within ±this many degrees: steeper than that is a camera problem, not a tilt.
pub const MAX_SKEW_DEGREES: f32 = 20.0;
/// A tilt smaller than this is left alone: rotating resamples the glyphs for nothing.
const MIN_SKEW_DEGREES: f32 = 2.0;
/// The best angle's projection energy must beat level's by this factor to count as confident.
const MIN_SKEW_GAIN: f64 = 1.1;
/// Skew is estimated on a copy this wide: enough edges to measure a degree, a few microseconds.
const SKEW_WIDTH: u32 = 96;

/// The views of a detected box read by [`crate::PlateReader::read`], as (left, top, right, bottom)
/// shifts of its edges in fractions of its width/height: the box itself, a tighter and a looser
/// one. Training jitters box edges by about this much (`train_ocr.py`, `jitter`).
pub const VIEWS: [[f32; 4]; 3] = [[0.0, 0.0, 0.0, 0.0], [0.03, 0.06, -0.06, -0.12], [-0.04, -0.08, 0.08, 0.16]];

/// The first `n` of [`VIEWS`] of `bbox`, clamped to the frame (never empty while the frame is not).
pub fn views(bbox: &PlateBox, n: usize, frame_width: u32, frame_height: u32) -> Vec<PlateBox> {
    let (x, y, w, h) = (bbox.x as f32, bbox.y as f32, bbox.w as f32, bbox.h as f32);
    VIEWS[..n.min(VIEWS.len())]
        .iter()
        .map(|[l, t, r, b]| {
            let left = (x + l * w).round().clamp(0.0, frame_width.saturating_sub(1) as f32);
            let top = (y + t * h).round().clamp(0.0, frame_height.saturating_sub(1) as f32);
            let right = (x + w * (1.0 + r)).round().clamp(left + 1.0, frame_width.max(1) as f32);
            let bottom = (y + h * (1.0 + b)).round().clamp(top + 1.0, frame_height.max(1) as f32);
            PlateBox { x: left as u32, y: top as u32, w: (right - left) as u32, h: (bottom - top) as u32 }
        })
        .collect()
}

/// The box widened by the margins the recogniser was trained with, clamped to the frame.
pub fn plate_region(bbox: &PlateBox, spec: &RecognizerSpec, frame_width: u32, frame_height: u32) -> PlateBox {
    let (x, y, w, h) = (bbox.x as f32, bbox.y as f32, bbox.w as f32, bbox.h as f32);
    let (mx, my) = (spec.margin_x * w, spec.margin_y * h);
    let left = (x - mx).floor().clamp(0.0, frame_width.saturating_sub(1) as f32) as u32;
    let top = (y - my).floor().clamp(0.0, frame_height.saturating_sub(1) as f32) as u32;
    let right = ((x + w + mx).ceil() as u32).clamp(left + 1, frame_width.max(left + 1));
    let bottom = ((y + h + my).ceil() as u32).clamp(top + 1, frame_height.max(top + 1));
    PlateBox { x: left, y: top, w: right - left, h: bottom - top }
}

/// One `spec.width`×`spec.height` grey crop per box, in the boxes' order. An empty frame gives
/// blank crops rather than a panic.
pub fn rectify(frame: &RgbImage, boxes: &[PlateBox], spec: &RecognizerSpec, deskew: bool) -> Vec<GrayImage> {
    boxes
        .iter()
        .map(|bbox| {
            if frame.width() == 0 || frame.height() == 0 {
                return GrayImage::new(spec.width, spec.height);
            }
            let region = plate_region(bbox, spec, frame.width(), frame.height());
            let mut crop = image::imageops::crop_imm(frame, region.x, region.y, region.w, region.h).to_image();
            if deskew && let Some(degrees) = estimate_skew(&to_grey(&crop)) {
                crop = rotated_crop(frame, &region, degrees);
            }
            to_grey(&valet_imaging::resize_rgb(&crop, spec.width, spec.height))
        })
        .collect()
}

/// The tilt of the text lines in a grey crop, in degrees (positive: lines descend to the right),
/// or `None` when no angle within ±[`MAX_SKEW_DEGREES`] clearly beats level.
///
/// Horizontal edges (glyph tops and bottoms, the plate's border) projected along the right angle
/// pile up in a few rows; along a wrong one they smear. So the angle whose projection profile has
/// the most energy (sum of squared bins, i.e. variance at a fixed total) is the skew.
pub fn estimate_skew(crop: &GrayImage) -> Option<f32> {
    if crop.width() < 16 || crop.height() < 8 {
        return None;
    }
    let width = crop.width().min(SKEW_WIDTH);
    let height = ((crop.height() as f32 * width as f32 / crop.width() as f32).round() as u32).max(8);
    let small = resize_gray(crop, width, height);
    // Vertical gradient magnitude: large on horizontal edges, zero on flat plate and on verticals.
    let (cx, cy) = (width as f32 / 2.0, height as f32 / 2.0);
    let mut edges = Vec::new();
    for y in 1..height - 1 {
        for x in 0..width {
            let g = (i32::from(small.get_pixel(x, y + 1).0[0]) - i32::from(small.get_pixel(x, y - 1).0[0])).abs();
            if g > 8 {
                edges.push((x as f32 - cx, y as f32 - cy, g as f64));
            }
        }
    }
    if edges.is_empty() {
        return None;
    }
    let reach = (width + height) as usize;
    let mut bins = vec![0.0f64; 2 * reach + 1];
    let mut energy = |degrees: f32| {
        bins.fill(0.0);
        let (sin, cos) = degrees.to_radians().sin_cos();
        for &(x, y, g) in &edges {
            let u = (y * cos - x * sin).round() as isize + reach as isize;
            bins[u as usize] += g;
        }
        bins.iter().map(|b| b * b).sum::<f64>()
    };
    let level = energy(0.0);
    let mut best = (0.0f32, level);
    // Half-degree steps: a glyph row 12 px tall drifts by less than a pixel across a 96 px copy.
    let steps = (MAX_SKEW_DEGREES * 4.0) as i32;
    for degrees in (0..=steps).map(|i| i as f32 * 0.5 - MAX_SKEW_DEGREES) {
        let e = energy(degrees);
        if e > best.1 {
            best = (degrees, e);
        }
    }
    (best.0.abs() >= MIN_SKEW_DEGREES && best.1 >= level * MIN_SKEW_GAIN).then_some(best.0)
}

/// Training's grey: ITU-R 601 luma weights.
fn grey(px: &image::Rgb<u8>) -> u8 {
    let [r, g, b] = px.0.map(f32::from);
    (0.299 * r + 0.587 * g + 0.114 * b).round() as u8
}

fn to_grey(rgb: &RgbImage) -> GrayImage {
    GrayImage::from_fn(rgb.width(), rgb.height(), |x, y| Luma([grey(rgb.get_pixel(x, y))]))
}

/// The region's pixels turned by `degrees` about its centre, sampled (bilinear) from the whole frame
/// so the corners show what surrounds the plate rather than black.
fn rotated_crop(frame: &RgbImage, region: &PlateBox, degrees: f32) -> RgbImage {
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cx, cy) = (region.x as f32 + region.w as f32 / 2.0, region.y as f32 + region.h as f32 / 2.0);
    let (max_x, max_y) = (frame.width() as f32 - 1.0, frame.height() as f32 - 1.0);
    RgbImage::from_fn(region.w, region.h, |x, y| {
        let (dx, dy) = (x as f32 + 0.5 - region.w as f32 / 2.0, y as f32 + 0.5 - region.h as f32 / 2.0);
        let sx = (cx + dx * cos - dy * sin - 0.5).clamp(0.0, max_x);
        let sy = (cy + dx * sin + dy * cos - 0.5).clamp(0.0, max_y);
        let (x0, y0) = (sx.floor() as u32, sy.floor() as u32);
        let (x1, y1) = ((x0 + 1).min(frame.width() - 1), (y0 + 1).min(frame.height() - 1));
        let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
        let at = |x: u32, y: u32, c: usize| f32::from(frame.get_pixel(x, y).0[c]);
        image::Rgb(std::array::from_fn(|c| {
            let top = at(x0, y0, c) * (1.0 - fx) + at(x1, y0, c) * fx;
            let bottom = at(x0, y1, c) * (1.0 - fx) + at(x1, y1, c) * fx;
            (top * (1.0 - fy) + bottom * fy).round() as u8
        }))
    })
}

/// Pillow-bilinear resize of a grey image, through the one RGB resize the models' inputs use.
pub(crate) fn resize_gray(src: &GrayImage, width: u32, height: u32) -> GrayImage {
    if src.dimensions() == (width, height) {
        return src.clone();
    }
    let rgb = RgbImage::from_fn(src.width(), src.height(), |x, y| image::Rgb([src.get_pixel(x, y).0[0]; 3]));
    let resized = valet_imaging::resize_rgb(&rgb, width, height);
    GrayImage::from_fn(width, height, |x, y| Luma([resized.get_pixel(x, y).0[0]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::recognizer_spec;

    #[test]
    fn views_are_the_box_a_tighter_and_a_looser_one_inside_the_frame() {
        let bbox = PlateBox { x: 100, y: 50, w: 200, h: 50 };
        let [same, tight, loose] = views(&bbox, 3, 1280, 720)[..] else { panic!("three views") };
        assert_eq!(same, bbox);
        assert!(tight.w < bbox.w && tight.h < bbox.h && tight.x > bbox.x);
        assert!(loose.w > bbox.w && loose.h > bbox.h && loose.x < bbox.x);
        assert_eq!(views(&bbox, 1, 1280, 720), vec![bbox]);
        for frame in [(1, 1), (5, 300), (300, 5)] {
            let corner = PlateBox { x: 0, y: 0, w: 400, h: 400 };
            for v in views(&corner, 3, frame.0, frame.1) {
                assert!(v.w >= 1 && v.h >= 1 && v.x + v.w <= frame.0 && v.y + v.h <= frame.1, "{frame:?}: {v:?}");
            }
        }
    }

    /// Dark horizontal bars (glyph rows) every 30 pixels, tilted by `degrees` (positive: descending
    /// right).
    fn striped(width: u32, height: u32, degrees: f32) -> GrayImage {
        let (sin, cos) = degrees.to_radians().sin_cos();
        GrayImage::from_fn(width, height, |x, y| {
            let (dx, dy) = (x as f32 - width as f32 / 2.0, y as f32 - height as f32 / 2.0);
            let u = dy * cos - dx * sin;
            Luma([if u.rem_euclid(30.0) < 12.0 { 30 } else { 220 }])
        })
    }

    #[test]
    fn the_skew_of_tilted_lines_is_found_in_both_directions() {
        for degrees in [-15.0, -8.0, 6.0, 12.0] {
            let found = estimate_skew(&striped(200, 60, degrees)).unwrap();
            assert!((found - degrees).abs() <= 1.0, "tilted {degrees}°, estimated {found}°");
        }
    }

    #[test]
    fn a_level_or_featureless_crop_is_left_alone() {
        assert_eq!(estimate_skew(&striped(200, 60, 0.0)), None);
        assert_eq!(estimate_skew(&GrayImage::from_pixel(200, 60, Luma([128]))), None);
        assert_eq!(estimate_skew(&GrayImage::new(3, 2)), None);
    }

    #[test]
    fn the_region_adds_the_margins_and_stays_inside_the_frame() {
        let spec = recognizer_spec();
        let region = plate_region(&PlateBox { x: 100, y: 100, w: 100, h: 20 }, &spec, 640, 480);
        assert_eq!(region, PlateBox { x: 92, y: 97, w: 116, h: 26 });
        let corner = plate_region(&PlateBox { x: 630, y: 470, w: 100, h: 100 }, &spec, 640, 480);
        assert!(corner.x + corner.w <= 640 && corner.y + corner.h <= 480 && corner.w > 0 && corner.h > 0);
        let tiny = plate_region(&PlateBox { x: 0, y: 0, w: 1, h: 1 }, &spec, 1, 1);
        assert_eq!(tiny, PlateBox { x: 0, y: 0, w: 1, h: 1 });
    }

    #[test]
    fn deskewing_levels_a_tilted_plate() {
        let spec = recognizer_spec();
        let tilted = striped(400, 200, 10.0);
        let frame = RgbImage::from_fn(400, 200, |x, y| image::Rgb([tilted.get_pixel(x, y).0[0]; 3]));
        let bbox = PlateBox { x: 100, y: 70, w: 200, h: 60 };
        let straight = rectify(&frame, &[bbox], &spec, true);
        let as_is = rectify(&frame, &[bbox], &spec, false);
        assert_eq!(straight[0].dimensions(), (128, 32));
        // Straightened bars make whole rows uniform: row variance drops.
        let row_spread = |crop: &GrayImage| -> f64 {
            (4..28)
                .map(|y| {
                    let row: Vec<f64> = (8..120).map(|x| f64::from(crop.get_pixel(x, y).0[0])).collect();
                    let mean = row.iter().sum::<f64>() / row.len() as f64;
                    row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / row.len() as f64
                })
                .sum()
        };
        assert!(row_spread(&straight[0]) < row_spread(&as_is[0]) / 4.0);
    }

    #[test]
    fn grey_weighs_red_green_and_blue_as_training_does() {
        assert_eq!(grey(&image::Rgb([255, 255, 255])), 255);
        assert_eq!(grey(&image::Rgb([255, 0, 0])), 76);
        assert_eq!(grey(&image::Rgb([0, 255, 0])), 150);
        assert_eq!(grey(&image::Rgb([0, 0, 255])), 29);
    }
}

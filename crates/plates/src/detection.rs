//! Stage 1: a frame → plate boxes. [`detect`] shrinks the frame so its longer side is at most the
//! sidecar's `long_side` (never enlarging it), pads it to a multiple of `multiple`, runs the
//! centre-heatmap detector and decodes its `[1, 5, H/stride, W/stride]` output: local maxima of the
//! heatmap above `score_threshold`, each with a sub-cell offset and a log box size, then greedy
//! non-maximum suppression.
//!
//! [`DetectorSpec`] is `models/plate-detector.json`, the contract with training.

use image::RgbImage;
use serde::Deserialize;
use valet_engine::{Batch, Network, Output};

use crate::PlateError;

/// Plates read per frame at most: a gate frame has one or two, a street a handful; this bounds the
/// recogniser's batch whatever a confused detector finds.
pub const MAX_PLATES: usize = 16;

/// An axis-aligned box in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct PlateBox {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl PlateBox {
    pub fn area(&self) -> u64 {
        u64::from(self.w) * u64::from(self.h)
    }

    /// Intersection over union; 0 when either box is empty.
    pub fn iou(&self, other: &PlateBox) -> f32 {
        let overlap = |a0: u32, a1: u32, b0: u32, b1: u32| u64::from(a1.min(b1).saturating_sub(a0.max(b0)));
        let inter = overlap(self.x, self.x + self.w, other.x, other.x + other.w)
            * overlap(self.y, self.y + self.h, other.y, other.y + other.h);
        let union = self.area() + other.area() - inter;
        if union == 0 { 0.0 } else { inter as f32 / union as f32 }
    }
}

/// One plate the detector found.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Detection {
    pub bbox: PlateBox,
    /// The heatmap peak's probability, in `[score_threshold, 1]`.
    pub confidence: f32,
}

/// The detector's sidecar: input normalisation, resize rule and decoding thresholds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DetectorSpec {
    pub name: String,
    pub input: String,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// The frame's longer side is resized to this.
    pub long_side: u32,
    /// Both sides are padded (right, bottom) up to a multiple of this.
    pub multiple: u32,
    /// Input pixels per output cell.
    pub stride: u32,
    pub score_threshold: f32,
    pub nms_iou: f32,
}

impl DetectorSpec {
    pub fn parse(json: &str) -> Result<DetectorSpec, PlateError> {
        let spec: DetectorSpec =
            serde_json::from_str(json).map_err(|e| PlateError::Spec(format!("detector sidecar: {e}")))?;
        let bad = |why: String| Err(PlateError::Spec(format!("detector sidecar {}: {why}", spec.name)));
        if spec.input != "image" {
            return bad(format!("expects input {:?}, not an image", spec.input));
        }
        if spec.std.iter().any(|s| s.is_nan() || *s <= 0.0) || spec.mean.iter().any(|m| !m.is_finite()) {
            return bad(format!("mean {:?} / std {:?} unusable", spec.mean, spec.std));
        }
        if !(32..=4096).contains(&spec.long_side) || spec.stride == 0 || !spec.multiple.is_multiple_of(spec.stride) {
            return bad(format!(
                "long side {}, multiple {} and stride {} must give whole cells",
                spec.long_side, spec.multiple, spec.stride
            ));
        }
        if !(spec.score_threshold > 0.0 && spec.score_threshold < 1.0 && spec.nms_iou > 0.0 && spec.nms_iou <= 1.0) {
            return bad(format!("thresholds {} / {} outside 0..1", spec.score_threshold, spec.nms_iou));
        }
        Ok(spec)
    }
}

/// The detector's input for one frame and how to map its cells back to frame pixels.
#[derive(Debug, Clone)]
pub struct DetectorInput {
    pub batch: Batch,
    /// Resized pixels per frame pixel.
    pub scale: f32,
    pub frame_width: u32,
    pub frame_height: u32,
}

/// Shrinks (longer side to at most `long_side`, aspect kept; a smaller frame keeps its size: an
/// upscaled frame costs the detector more and shows it no more), normalises and zero-pads one frame.
pub fn preprocess(spec: &DetectorSpec, frame: &RgbImage) -> DetectorInput {
    let (fw, fh) = frame.dimensions();
    let scale = (spec.long_side as f32 / fw.max(fh).max(1) as f32).min(1.0);
    let (w, h) = (
        ((fw as f32 * scale).round() as u32).clamp(1, spec.long_side),
        ((fh as f32 * scale).round() as u32).clamp(1, spec.long_side),
    );
    let padded = |side: u32| side.div_ceil(spec.multiple) * spec.multiple;
    let (pw, ph) = (padded(w) as usize, padded(h) as usize);
    let resized = valet_imaging::resize_rgb(frame, w, h);
    let plane = pw * ph;
    // Padding is 0 in normalised space, i.e. the mean colour, as in training.
    let mut data = vec![0.0f32; 3 * plane];
    let gain = spec.std.map(|s| 1.0 / (255.0 * s));
    let offset: [f32; 3] = std::array::from_fn(|c| -spec.mean[c] / spec.std[c]);
    for (y, row) in resized.rows().enumerate() {
        for (x, px) in row.enumerate() {
            for c in 0..3 {
                data[c * plane + y * pw + x] = f32::from(px.0[c]) * gain[c] + offset[c];
            }
        }
    }
    let batch = Batch::new([1, 3, ph, pw], data).expect("shape matches data");
    DetectorInput { batch, scale, frame_width: fw, frame_height: fh }
}

/// Plate boxes from the detector's output for `input`, most confident first.
pub fn decode(spec: &DetectorSpec, input: &DetectorInput, output: &Output) -> Result<Vec<Detection>, PlateError> {
    let [_, _, ph, pw] = input.batch.shape();
    let stride = spec.stride as usize;
    let (rows, cols) = (ph / stride, pw / stride);
    if output.shape() != [1, 5, rows, cols] {
        return Err(PlateError::Output(format!(
            "{}: expected output [1, 5, {rows}, {cols}] for a {pw}×{ph} input, got {:?}",
            spec.name,
            output.shape()
        )));
    }
    let plane = rows * cols;
    let channel = |c: usize| &output.data()[c * plane..(c + 1) * plane];
    let heat = channel(0);
    // sigmoid(v) ≥ t  ⇔  v ≥ logit(t): compare logits, take the sigmoid only for peaks.
    let threshold = (spec.score_threshold / (1.0 - spec.score_threshold)).ln();
    let to_frame = spec.stride as f32 / input.scale;
    let (fw, fh) = (input.frame_width as f32, input.frame_height as f32);
    let mut found: Vec<([f32; 4], f32)> = Vec::new();
    for y in 0..rows {
        for x in 0..cols {
            let v = heat[y * cols + x];
            if v.is_nan() || v < threshold || !is_peak(heat, rows, cols, x, y) {
                continue;
            }
            let i = y * cols + x;
            // Log sizes are clamped so a wild output gives a frame-sized box, not infinity.
            let (dx, dy, lw, lh) = (channel(1)[i], channel(2)[i], channel(3)[i].min(16.0), channel(4)[i].min(16.0));
            let (cx, cy) = ((x as f32 + dx) * to_frame, (y as f32 + dy) * to_frame);
            let (w, h) = (lw.exp() * to_frame, lh.exp() * to_frame);
            let corners =
                [(cx - w / 2.0).max(0.0), (cy - h / 2.0).max(0.0), (cx + w / 2.0).min(fw), (cy + h / 2.0).min(fh)];
            if corners.iter().all(|c| c.is_finite()) && corners[2] - corners[0] >= 1.0 && corners[3] - corners[1] >= 1.0
            {
                found.push((corners, 1.0 / (1.0 + (-v).exp())));
            }
        }
    }
    found.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut kept: Vec<([f32; 4], f32)> = Vec::new();
    for (corners, score) in found {
        if kept.len() == MAX_PLATES {
            break;
        }
        if kept.iter().all(|(k, _)| corner_iou(k, &corners) <= spec.nms_iou) {
            kept.push((corners, score));
        }
    }
    Ok(kept
        .into_iter()
        .map(|([x0, y0, x1, y1], confidence)| {
            let (left, top) = (x0.floor() as u32, y0.floor() as u32);
            let bbox = PlateBox { x: left, y: top, w: x1.ceil() as u32 - left, h: y1.ceil() as u32 - top };
            Detection { bbox, confidence }
        })
        .collect())
}

/// Finds the plates in one frame. A frame without plates (or without pixels) gives no detections.
pub fn detect(network: &dyn Network, spec: &DetectorSpec, frame: &RgbImage) -> Result<Vec<Detection>, PlateError> {
    if frame.width() == 0 || frame.height() == 0 {
        return Ok(Vec::new());
    }
    let input = preprocess(spec, frame);
    let output = network.infer(&input.batch)?;
    decode(spec, &input, &output)
}

/// The cell is at least as hot as its 3×3 neighbourhood (equal neighbours both pass; NMS keeps one).
fn is_peak(heat: &[f32], rows: usize, cols: usize, x: usize, y: usize) -> bool {
    let v = heat[y * cols + x];
    (y.saturating_sub(1)..(y + 2).min(rows))
        .all(|ny| (x.saturating_sub(1)..(x + 2).min(cols)).all(|nx| heat[ny * cols + nx] <= v))
}

fn corner_iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let inter = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0) * (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let area = |c: &[f32; 4]| (c[2] - c[0]) * (c[3] - c[1]);
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{detector_spec, heatmap};

    #[test]
    fn the_contract_sidecar_parses_and_a_broken_one_says_why() {
        let spec = detector_spec();
        assert_eq!((spec.long_side, spec.multiple, spec.stride), (512, 32, 4));
        let json = crate::testing::DETECTOR_JSON.replace(r#""stride":4"#, r#""stride":5"#);
        assert!(DetectorSpec::parse(&json).unwrap_err().to_string().contains("whole cells"));
    }

    #[test]
    fn a_large_frame_shrinks_to_long_side_a_small_one_is_never_upscaled_and_both_are_padded() {
        let spec = detector_spec();
        let table = [
            ((1280, 720), [1, 3, 288, 512], 0.4),
            ((512, 384), [1, 3, 384, 512], 1.0),
            ((480, 360), [1, 3, 384, 480], 1.0),
            ((300, 5), [1, 3, 32, 320], 1.0),
            ((1, 1), [1, 3, 32, 32], 1.0),
        ];
        for ((w, h), shape, scale) in table {
            let input = preprocess(&spec, &RgbImage::new(w, h));
            assert_eq!(input.batch.shape(), shape, "{w}×{h}");
            assert!((input.scale - scale).abs() < 1e-6);
        }
    }

    #[test]
    fn pixels_are_normalised_and_padding_is_zero() {
        let spec = detector_spec();
        let input = preprocess(&spec, &RgbImage::from_pixel(512, 500, image::Rgb([255, 128, 0])));
        let [_, _, h, w] = input.batch.shape();
        let plane = h * w;
        let data = input.batch.data();
        assert!((data[0] - 2.0).abs() < 1e-6, "(1 - 0.5) / 0.25");
        assert!((data[plane] - (128.0 / 255.0 - 0.5) / 0.25).abs() < 1e-6);
        assert!((data[2 * plane] + 2.0).abs() < 1e-6);
        assert_eq!(data[(h - 1) * w], 0.0, "the padded bottom row");
    }

    #[test]
    fn a_peak_becomes_a_box_in_frame_pixels() {
        let spec = detector_spec();
        // 1280×720 → scale 0.4, input 512×288, cells 128×72. A plate centred on cell (50.5, 30.25),
        // 20×5 cells: in frame pixels centre (505, 302.5), size 200×50.
        let input = preprocess(&spec, &RgbImage::new(1280, 720));
        let output = heatmap(72, 128, &[(50, 30, 0.5, 0.25, 20.0, 5.0, 3.0)]);
        let found = decode(&spec, &input, &output).unwrap();
        assert_eq!(found.len(), 1);
        let b = found[0].bbox;
        let near = |got: u32, want: u32| got.abs_diff(want) <= 1;
        assert!(near(b.x, 405) && near(b.y, 277) && near(b.w, 200) && near(b.h, 51), "{b:?}");
        assert!((found[0].confidence - 1.0 / (1.0 + (-3.0f32).exp())).abs() < 1e-6);
    }

    #[test]
    fn weak_cells_and_shoulders_of_a_peak_are_not_plates() {
        let spec = detector_spec();
        let input = preprocess(&spec, &RgbImage::new(1280, 720));
        // logit(0.3) ≈ -0.85: -1 is below the threshold; the 2.0 cell is next to a 3.0 peak.
        let output = heatmap(
            72,
            128,
            &[
                (10, 10, 0.5, 0.5, 10.0, 3.0, -1.0),
                (50, 30, 0.5, 0.5, 20.0, 5.0, 3.0),
                (51, 30, 0.5, 0.5, 20.0, 5.0, 2.0),
            ],
        );
        let found = decode(&spec, &input, &output).unwrap();
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn overlapping_peaks_are_suppressed_and_distinct_ones_kept_in_confidence_order() {
        let spec = detector_spec();
        let input = preprocess(&spec, &RgbImage::new(1280, 720));
        let output = heatmap(
            72,
            128,
            &[
                (50, 30, 0.5, 0.5, 20.0, 5.0, 1.0),
                (53, 30, 0.5, 0.5, 20.0, 5.0, 2.0),
                (100, 60, 0.5, 0.5, 10.0, 3.0, 4.0),
            ],
        );
        let found = decode(&spec, &input, &output).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].confidence > found[1].confidence);
        assert!(found[1].bbox.x > 405, "the stronger of the two overlapping peaks survives");
    }

    #[test]
    fn boxes_are_clamped_to_the_frame() {
        let spec = detector_spec();
        let input = preprocess(&spec, &RgbImage::new(1280, 720));
        let output = heatmap(72, 128, &[(0, 0, 0.0, 0.0, 40.0, 40.0, 3.0), (127, 71, 0.9, 0.9, 1e9, 1e9, 3.0)]);
        for d in decode(&spec, &input, &output).unwrap() {
            assert!(d.bbox.x + d.bbox.w <= 1280 && d.bbox.y + d.bbox.h <= 720, "{d:?}");
        }
    }

    #[test]
    fn an_output_of_the_wrong_shape_is_an_error() {
        let spec = detector_spec();
        let input = preprocess(&spec, &RgbImage::new(1280, 720));
        let err = decode(&spec, &input, &heatmap(72, 127, &[])).unwrap_err();
        assert!(err.to_string().contains("[1, 5, 72, 128]"), "{err}");
    }

    #[test]
    fn iou_of_boxes() {
        let a = PlateBox { x: 0, y: 0, w: 10, h: 10 };
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&PlateBox { x: 5, y: 0, w: 10, h: 10 }), 50.0 / 150.0);
        assert_eq!(a.iou(&PlateBox { x: 10, y: 10, w: 5, h: 5 }), 0.0);
        assert_eq!(PlateBox::default().iou(&PlateBox::default()), 0.0);
    }
}

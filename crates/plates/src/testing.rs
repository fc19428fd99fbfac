//! Stand-ins for the trained networks and their sidecars, so every stage is tested without weights.

use image::RgbImage;
use valet_engine::{Batch, EngineError, Network, Output};

use crate::detection::DetectorSpec;
use crate::recognition::RecognizerSpec;

pub const DETECTOR_JSON: &str = r#"{"name":"PlateNet-det","input":"image","mean":[0.5,0.5,0.5],
    "std":[0.25,0.25,0.25],"long_side":512,"multiple":32,"stride":4,"score_threshold":0.3,"nms_iou":0.3}"#;

pub const RECOGNIZER_JSON: &str = r#"{"name":"PlateNet-ocr","input":"crop","height":32,"width":128,
    "channels":1,"mean":0.5,"std":0.5,"alphabet":"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ","blank":0,
    "margin_x":0.08,"margin_y":0.15}"#;

pub fn detector_spec() -> DetectorSpec {
    DetectorSpec::parse(DETECTOR_JSON).unwrap()
}

pub fn recognizer_spec() -> RecognizerSpec {
    RecognizerSpec::parse(RECOGNIZER_JSON).unwrap()
}

/// A detector output of `rows`×`cols` cells, cold everywhere but at the given peaks:
/// `(x, y, dx, dy, width in cells, height in cells, heat logit)`.
pub fn heatmap(rows: usize, cols: usize, peaks: &[(usize, usize, f32, f32, f32, f32, f32)]) -> Output {
    let plane = rows * cols;
    let mut data = vec![0.0; 5 * plane];
    data[..plane].fill(-10.0);
    for &(x, y, dx, dy, w, h, heat) in peaks {
        let i = y * cols + x;
        for (c, v) in [heat, dx, dy, w.ln(), h.ln()].into_iter().enumerate() {
            data[c * plane + i] = v;
        }
    }
    Output::new(vec![1, 5, rows, cols], data).unwrap()
}

/// A detector that sees one plate in the middle of any frame, a quarter of its width wide.
#[derive(Debug)]
pub struct OnePlateDetector;

impl Network for OnePlateDetector {
    fn infer(&self, batch: &Batch) -> Result<Output, EngineError> {
        let [_, _, h, w] = batch.shape();
        let (rows, cols) = (h / 4, w / 4);
        let size = |cells: usize| (cells as f32 / 4.0).max(1.0);
        Ok(heatmap(rows, cols, &[(cols / 2, rows / 2, 0.5, 0.5, size(cols), size(rows) / 2.0, 2.0)]))
    }
}

/// A detector that never sees a plate.
#[derive(Debug)]
pub struct NoPlateDetector;

impl Network for NoPlateDetector {
    fn infer(&self, batch: &Batch) -> Result<Output, EngineError> {
        let [_, _, h, w] = batch.shape();
        Ok(heatmap(h / 4, w / 4, &[]))
    }
}

/// A recogniser that reads the same glyphs in every crop: one slot per glyph, each slot the
/// probabilities of the glyphs it might be (the rest of the step goes to the blank); slots are
/// separated by confident blanks across 32 steps.
#[derive(Debug)]
pub struct SpellingRecognizer(pub Vec<Vec<(char, f32)>>);

impl SpellingRecognizer {
    /// Every glyph read with probability `p`.
    pub fn sure(text: &str, p: f32) -> SpellingRecognizer {
        SpellingRecognizer(text.chars().map(|c| vec![(c, p)]).collect())
    }

    pub fn logits(&self) -> Vec<f32> {
        let alphabet = recognizer_spec().alphabet;
        let (steps, classes) = (32, alphabet.len() + 1);
        let mut probs = vec![0.0f32; steps * classes];
        for t in 0..steps {
            let step = &mut probs[t * classes..(t + 1) * classes];
            match self.0.get(t / 2).filter(|_| t % 2 == 1) {
                Some(slot) => {
                    for &(c, p) in slot {
                        step[alphabet.find(c).unwrap() + 1] = p;
                    }
                    step[0] = 1.0 - slot.iter().map(|(_, p)| p).sum::<f32>();
                }
                None => step[0] = 1.0,
            }
        }
        probs.iter().map(|p| p.max(1e-6).ln()).collect()
    }
}

impl Network for SpellingRecognizer {
    fn infer(&self, batch: &Batch) -> Result<Output, EngineError> {
        let logits = self.logits();
        let n = batch.len();
        Output::new(vec![n, 32, 37], logits.iter().copied().cycle().take(n * logits.len()).collect())
    }
}

/// A photo-like frame of the given size.
pub fn frame(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| image::Rgb([(x * 7 % 256) as u8, (y * 5 % 256) as u8, 90]))
}

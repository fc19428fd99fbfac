//! Stage 3: rectified plate crops → text. [`recognize`] runs the CRNN on a batch of crops and
//! decodes its `[N, T, C]` scores with CTC ([`crate::ctc`]) into a [`Recognition`] per plate: the
//! best path, its per-glyph confidences, and beam-search alternatives.
//!
//! [`RecognizerSpec`] is `models/plate-ocr.json`, the contract with training: crop size, grey
//! normalisation, alphabet (class 0 is the CTC blank, class `i + 1` the alphabet's `i`-th glyph) and
//! the margins rectification adds around a detected box.

use std::sync::Arc;

use image::GrayImage;
use serde::Deserialize;
use valet_engine::{Batch, Network};

use crate::PlateError;
use crate::ctc::Posteriors;
use crate::formats::Candidate;

/// Beams kept by the prefix search, and spellings it hands on to ranking.
const BEAM_WIDTH: usize = 12;

/// The recogniser's sidecar: how crops are made and what its classes mean.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RecognizerSpec {
    pub name: String,
    pub input: String,
    pub height: u32,
    pub width: u32,
    pub channels: u32,
    pub mean: f32,
    pub std: f32,
    pub alphabet: String,
    pub blank: usize,
    /// Fraction of the box width added on each side before cropping.
    pub margin_x: f32,
    /// Fraction of the box height added above and below before cropping.
    pub margin_y: f32,
}

impl RecognizerSpec {
    pub fn parse(json: &str) -> Result<RecognizerSpec, PlateError> {
        let spec: RecognizerSpec =
            serde_json::from_str(json).map_err(|e| PlateError::Spec(format!("recognizer sidecar: {e}")))?;
        let bad = |why: String| Err(PlateError::Spec(format!("recognizer sidecar {}: {why}", spec.name)));
        if spec.input != "crop" || spec.channels != 1 {
            return bad(format!("expects a grey crop, not {:?} with {} channels", spec.input, spec.channels));
        }
        if !(8..=256).contains(&spec.height) || !(8..=1024).contains(&spec.width) {
            return bad(format!("crop size {}×{} out of range", spec.width, spec.height));
        }
        if spec.std.is_nan() || spec.std <= 0.0 || !spec.mean.is_finite() {
            return bad(format!("mean {} / std {} unusable", spec.mean, spec.std));
        }
        if spec.blank != 0 {
            return bad(format!("blank must be class 0, not {}", spec.blank));
        }
        let glyphs: Vec<char> = spec.alphabet.chars().collect();
        let unique = glyphs.iter().enumerate().all(|(i, c)| !glyphs[..i].contains(c));
        if glyphs.is_empty() || !unique || !glyphs.iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
            return bad(format!("alphabet {:?} must be distinct uppercase letters and digits", spec.alphabet));
        }
        if ![spec.margin_x, spec.margin_y].iter().all(|m| (0.0..=1.0).contains(m)) {
            return bad(format!("margins {} / {} outside 0..1", spec.margin_x, spec.margin_y));
        }
        Ok(spec)
    }

    /// Classes the network scores: the blank plus one per glyph.
    pub fn classes(&self) -> usize {
        self.alphabet.chars().count() + 1
    }
}

/// The glyphs the recogniser knows, by class index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alphabet {
    glyphs: Vec<char>,
}

impl Alphabet {
    pub fn new(alphabet: &str) -> Alphabet {
        Alphabet { glyphs: alphabet.chars().collect() }
    }

    /// The glyph of class `label`; `None` for the blank or an unknown class.
    pub fn glyph(&self, label: usize) -> Option<char> {
        label.checked_sub(1).and_then(|i| self.glyphs.get(i)).copied()
    }

    pub fn label(&self, glyph: char) -> Option<usize> {
        self.glyphs.iter().position(|g| *g == glyph).map(|i| i + 1)
    }

    /// The classes spelling `text`, or `None` if it has a glyph the recogniser cannot emit.
    pub fn labels(&self, text: &str) -> Option<Vec<usize>> {
        text.chars().map(|c| self.label(c)).collect()
    }

    pub fn text(&self, labels: &[usize]) -> String {
        labels.iter().filter_map(|l| self.glyph(*l)).collect()
    }
}

/// What the recogniser read in one crop, before any knowledge of plate formats.
#[derive(Debug, Clone, PartialEq)]
pub struct Recognition {
    /// The greedy (best-path) reading.
    pub text: String,
    /// Product of `char_confidences`: the probability of the best path's glyphs, comparable with
    /// the beams' sequence probabilities (1 for an empty reading).
    pub confidence: f32,
    /// For each glyph of `text`, its highest probability over the steps that emitted it.
    pub char_confidences: Vec<f32>,
    /// Prefix beam search's spellings with their probabilities, most likely first.
    pub beams: Vec<Candidate>,
    posteriors: Posteriors,
    alphabet: Arc<Alphabet>,
}

impl Recognition {
    /// Decodes one crop's softmaxed scores.
    pub fn decode(posteriors: Posteriors, alphabet: Arc<Alphabet>) -> Recognition {
        let path = posteriors.best_path();
        let beams = posteriors
            .beam_search(BEAM_WIDTH, BEAM_WIDTH)
            .into_iter()
            .map(|(labels, p)| Candidate { text: alphabet.text(&labels), confidence: p as f32 })
            .collect();
        Recognition {
            text: alphabet.text(&path.labels),
            confidence: path.confidences.iter().product(),
            char_confidences: path.confidences,
            beams,
            posteriors,
            alphabet,
        }
    }

    pub fn posteriors(&self) -> &Posteriors {
        &self.posteriors
    }

    pub fn alphabet(&self) -> &Alphabet {
        &self.alphabet
    }
}

/// Normalises crops into one `[N, 1, height, width]` batch; crops of another size are resized
/// (bilinear, like rectification) first.
pub fn preprocess(spec: &RecognizerSpec, crops: &[GrayImage]) -> Batch {
    let (w, h) = (spec.width, spec.height);
    let plane = (w * h) as usize;
    let mut data = Vec::with_capacity(crops.len() * plane);
    let scale = 1.0 / (255.0 * spec.std);
    let offset = -spec.mean / spec.std;
    for crop in crops {
        let resized;
        let crop = if crop.dimensions() == (w, h) {
            crop
        } else {
            resized = crate::rectification::resize_gray(crop, w, h);
            &resized
        };
        data.extend(crop.as_raw().iter().map(|g| f32::from(*g) * scale + offset));
    }
    Batch::new([crops.len(), 1, h as usize, w as usize], data).expect("shape matches data")
}

/// Reads every crop in one network call.
pub fn recognize(
    network: &dyn Network,
    spec: &RecognizerSpec,
    crops: &[GrayImage],
) -> Result<Vec<Recognition>, PlateError> {
    if crops.is_empty() {
        return Ok(Vec::new());
    }
    let output = network.infer(&preprocess(spec, crops))?;
    let &[n, steps, classes] = output.shape() else {
        return Err(PlateError::Output(format!("{}: expected [N, T, C] scores, got {:?}", spec.name, output.shape())));
    };
    if n != crops.len() || classes != spec.classes() || steps == 0 {
        return Err(PlateError::Output(format!(
            "{}: scores of shape {:?} for {} crops and {} classes",
            spec.name,
            output.shape(),
            crops.len(),
            spec.classes()
        )));
    }
    let alphabet = Arc::new(Alphabet::new(&spec.alphabet));
    Ok(output
        .data()
        .chunks_exact(steps * classes)
        .map(|logits| Recognition::decode(Posteriors::from_logits(steps, classes, logits), alphabet.clone()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::RECOGNIZER_JSON as SPEC;

    #[test]
    fn the_contract_sidecar_parses() {
        let spec = RecognizerSpec::parse(SPEC).unwrap();
        assert_eq!(spec.classes(), 37);
    }

    #[test]
    fn a_sidecar_breaking_the_contract_is_refused_with_the_reason() {
        let table = [
            (r#""blank":0"#, r#""blank":36"#, "blank"),
            (r#""channels":1"#, r#""channels":3"#, "grey crop"),
            (r#""std":0.5"#, r#""std":0"#, "std"),
            ("0123456789ABC", "0123456789ABA", "alphabet"),
            (r#""margin_x":0.08"#, r#""margin_x":3"#, "margins"),
        ];
        for (from, to, why) in table {
            let err = RecognizerSpec::parse(&SPEC.replace(from, to)).unwrap_err().to_string();
            assert!(err.contains(why), "{to}: {err}");
        }
    }

    #[test]
    fn crops_are_normalised_grey_in_one_batch() {
        let spec = RecognizerSpec::parse(SPEC).unwrap();
        let crops =
            [GrayImage::from_pixel(128, 32, image::Luma([255])), GrayImage::from_pixel(40, 10, image::Luma([0]))];
        let batch = preprocess(&spec, &crops);
        assert_eq!(batch.shape(), [2, 1, 32, 128]);
        assert!(batch.data()[..4096].iter().all(|v| (v - 1.0).abs() < 1e-6));
        assert!(batch.data()[4096..].iter().all(|v| (v + 1.0).abs() < 1e-6));
    }

    #[test]
    fn the_alphabet_maps_glyphs_to_classes_after_the_blank() {
        let alphabet = Alphabet::new("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ");
        assert_eq!(alphabet.labels("0A"), Some(vec![1, 11]));
        assert_eq!(alphabet.glyph(0), None);
        assert_eq!(alphabet.text(&[36, 1]), "Z0");
        assert_eq!(alphabet.labels("a-1"), None);
    }
}

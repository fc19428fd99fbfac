//! Is this parking space occupied? [`OccupancyClassifier`] turns space patches (RGB pixels, never
//! paths) into [`Verdict`]s (and [`Observation`]s, with the embedding); an [`Adapter`] fitted on
//! one camera's labels corrects the universal model for that camera; [`Confusion`] scores
//! verdicts against labels.
//!
//! The bundled model (`models/occupancy.onnx`) and its sidecar (`models/occupancy.json`) are compiled
//! into the binary, so `valet` runs with no files beside it. The sidecar is the preprocessing
//! contract shared with `training/occupancy`: input size, per-channel mean and standard deviation,
//! label order.
//!
//! Architecture invariant: preprocessing here is byte-for-byte the training side's (Pillow bilinear
//! resize, /255, normalise, NCHW); `tests/golden.rs` pins it with committed logits.

pub mod adapter;
mod score;

use std::fmt;

use image::RgbImage;
use serde::Deserialize;
use valet_engine::{Batch, EngineError, Logits, Network, RtenNetwork};

pub use adapter::{Adapter, CrossValidated, Fit, FitError, LabelledObservation};
pub use score::{Confusion, PerClass};

static OCCUPANCY_ONNX: &[u8] = include_bytes!("../../../models/occupancy.onnx");
static OCCUPANCY_SPEC: &str = include_str!("../../../models/occupancy.json");
static MALEXNET_ONNX: &[u8] = include_bytes!("../../../models/malexnet.onnx");
static MALEXNET_SPEC: &str = include_str!("../../../models/malexnet.json");

/// Patches per inference call: large enough to amortise per-call overhead, small enough to keep a
/// 224² batch of the reference model within a few tens of MB.
pub const MAX_BATCH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpaceState {
    Free,
    Occupied,
}

impl SpaceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SpaceState::Free => "free",
            SpaceState::Occupied => "occupied",
        }
    }
}

impl fmt::Display for SpaceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The classifier's answer for one patch.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Verdict {
    pub state: SpaceState,
    /// Softmax probability that the space is occupied, in `[0, 1]`.
    pub p_occupied: f32,
}

impl Verdict {
    fn from_logits(logits: &[f32]) -> Verdict {
        // Index 0 is free, 1 is occupied (checked against the sidecar's labels at load time).
        Verdict::from_log_odds(logits[1] - logits[0])
    }

    /// The verdict for log-odds `z = ln(p / (1 - p))` of occupied.
    pub fn from_log_odds(z: f32) -> Verdict {
        let p_occupied = 1.0 / (1.0 + (-z).exp());
        let state = if p_occupied >= 0.5 { SpaceState::Occupied } else { SpaceState::Free };
        Verdict { state, p_occupied }
    }

    /// `ln(p / (1 - p))`, bounded where `p` rounds to 0 or 1 in `f32`.
    pub fn log_odds(&self) -> f32 {
        let p = self.p_occupied.clamp(1e-7, 1.0 - 1e-7);
        (p / (1.0 - p)).ln()
    }

    /// How sure the classifier is of its own state, in `[0.5, 1]`.
    pub fn confidence(&self) -> f32 {
        self.p_occupied.max(1.0 - self.p_occupied)
    }
}

/// What the universal model saw in one patch: its verdict, and the embedding it came from (the
/// input of its last layer), which a per-camera [`Adapter`] reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub verdict: Verdict,
    pub embedding: Vec<f32>,
}

/// The preprocessing contract written by training beside each model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelSpec {
    pub model: String,
    pub input_size: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub labels: Vec<String>,
    pub resize: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    #[error("invalid model sidecar: {0}")]
    Spec(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("model {0} has no embedding output, so it cannot be adapted to a camera (use the bundled model)")]
    NoEmbedding(String),
}

impl ModelSpec {
    pub fn parse(json: &str) -> Result<ModelSpec, ClassifyError> {
        let spec: ModelSpec = serde_json::from_str(json).map_err(|e| ClassifyError::Spec(e.to_string()))?;
        if spec.labels != ["free", "occupied"] {
            return Err(ClassifyError::Spec(format!("labels must be [free, occupied], got {:?}", spec.labels)));
        }
        if spec.resize != "pillow-bilinear" {
            return Err(ClassifyError::Spec(format!("unknown resize {:?}", spec.resize)));
        }
        if !(8..=512).contains(&spec.input_size) || spec.std.iter().any(|s| *s <= 0.0) {
            return Err(ClassifyError::Spec(format!(
                "input size {} or std {:?} out of range",
                spec.input_size, spec.std
            )));
        }
        Ok(spec)
    }
}

/// A trained occupancy network plus its preprocessing.
#[derive(Debug)]
pub struct OccupancyClassifier {
    network: Box<dyn Network>,
    spec: ModelSpec,
}

impl OccupancyClassifier {
    /// The model Valet ships with.
    pub fn bundled() -> Result<OccupancyClassifier, ClassifyError> {
        Self::from_static("occupancy", OCCUPANCY_ONNX, OCCUPANCY_SPEC)
    }

    /// The faithful mAlexNet (Amato et al. 2017, without LRN): the reference the bundled model is
    /// measured against.
    pub fn reference_malexnet() -> Result<OccupancyClassifier, ClassifyError> {
        Self::from_static("malexnet", MALEXNET_ONNX, MALEXNET_SPEC)
    }

    fn from_static(name: &str, onnx: &'static [u8], spec: &str) -> Result<OccupancyClassifier, ClassifyError> {
        let spec = ModelSpec::parse(spec)?;
        Ok(OccupancyClassifier { network: Box::new(RtenNetwork::from_static(name, onnx)?), spec })
    }

    /// Any engine, for instance a stand-in network in tests.
    pub fn with_network(network: Box<dyn Network>, spec: ModelSpec) -> OccupancyClassifier {
        OccupancyClassifier { network, spec }
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// Resizes and normalises patches into one NCHW batch, exactly as training does.
    pub fn preprocess(&self, patches: &[RgbImage]) -> Batch {
        let side = self.spec.input_size;
        let plane = (side * side) as usize;
        let mut data = vec![0.0f32; patches.len() * 3 * plane];
        // (v/255 - mean)/std folded into one multiply-add per value.
        let scale = self.spec.std.map(|s| 1.0 / (255.0 * s));
        let offset: [f32; 3] = std::array::from_fn(|c| -self.spec.mean[c] / self.spec.std[c]);
        for (patch, out) in patches.iter().zip(data.chunks_exact_mut(3 * plane)) {
            let resized;
            let pixels = if patch.dimensions() == (side, side) {
                patch
            } else {
                resized = valet_imaging::resize_rgb(patch, side, side);
                &resized
            };
            for (i, px) in pixels.pixels().enumerate() {
                for c in 0..3 {
                    out[c * plane + i] = f32::from(px.0[c]) * scale[c] + offset[c];
                }
            }
        }
        Batch::new([patches.len(), 3, side as usize, side as usize], data).expect("shape matches data")
    }

    /// Classifies patches of any size, in batches of at most [`MAX_BATCH`].
    pub fn classify(&self, patches: &[RgbImage]) -> Result<Vec<Verdict>, ClassifyError> {
        let mut verdicts = Vec::with_capacity(patches.len());
        for chunk in patches.chunks(MAX_BATCH) {
            let logits = self.logits(&self.preprocess(chunk))?;
            verdicts.extend(logits.iter().map(Verdict::from_logits));
        }
        Ok(verdicts)
    }

    /// Classifies patches like [`OccupancyClassifier::classify`] and keeps each one's embedding,
    /// for an [`Adapter`] to fit on or to read. The network's second output is the embedding.
    pub fn observe(&self, patches: &[RgbImage]) -> Result<Vec<Observation>, ClassifyError> {
        let mut observations = Vec::with_capacity(patches.len());
        for chunk in patches.chunks(MAX_BATCH) {
            let batch = self.preprocess(chunk);
            let mut outputs = self.network.infer_all(&batch)?.into_iter();
            let logits = outputs.next().ok_or_else(|| ClassifyError::NoEmbedding(self.spec.model.clone()))?;
            let embedding = outputs.next().ok_or_else(|| ClassifyError::NoEmbedding(self.spec.model.clone()))?;
            let logits = checked(logits.into_logits()?, &batch)?;
            let dim = embedding.data().len() / chunk.len().max(1);
            if embedding.shape().len() != 2 || dim == 0 {
                return Err(EngineError::Shape(format!("embedding of shape {:?}", embedding.shape())).into());
            }
            observations.extend(
                logits
                    .iter()
                    .zip(embedding.data().chunks_exact(dim))
                    .map(|(row, e)| Observation { verdict: Verdict::from_logits(row), embedding: e.to_vec() }),
            );
        }
        Ok(observations)
    }

    /// Raw logits for an already preprocessed batch (golden tests, benchmarks): one row of
    /// `[free, occupied]` per patch, or an error.
    pub fn logits(&self, batch: &Batch) -> Result<Logits, ClassifyError> {
        checked(self.network.infer(batch)?.into_logits()?, batch)
    }
}

fn checked(logits: Logits, batch: &Batch) -> Result<Logits, ClassifyError> {
    // A row per patch, two scores per row: anything else would pair verdicts with the wrong
    // patches or index past a row.
    if logits.rows() != batch.len() || (logits.rows() > 0 && logits.cols() != 2) {
        return Err(EngineError::Shape(format!(
            "{} rows of {} scores for a batch of {}",
            logits.rows(),
            logits.cols(),
            batch.len()
        ))
        .into());
    }
    Ok(logits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_logits_are_a_coin_toss_and_the_larger_logit_wins() {
        assert_eq!(Verdict::from_logits(&[1.0, 1.0]).p_occupied, 0.5);
        assert_eq!(Verdict::from_logits(&[0.0, 3.0]).state, SpaceState::Occupied);
        assert_eq!(Verdict::from_logits(&[3.0, 0.0]).state, SpaceState::Free);
        assert!(Verdict::from_logits(&[0.0, 3.0]).confidence() > 0.95);
    }

    #[test]
    fn a_sidecar_with_other_labels_is_refused() {
        let json = r#"{"model":"m.onnx","input_size":64,"mean":[0,0,0],"std":[1,1,1],
                       "labels":["busy","free"],"resize":"pillow-bilinear"}"#;
        assert!(ModelSpec::parse(json).unwrap_err().to_string().contains("labels"));
    }

    /// Answers a fixed output, whatever the batch.
    #[derive(Debug)]
    struct Canned(Vec<usize>);

    impl Network for Canned {
        fn infer(&self, _: &Batch) -> Result<valet_engine::Output, EngineError> {
            let len = self.0.iter().product();
            valet_engine::Output::new(self.0.clone(), vec![0.0; len])
        }
    }

    fn spec() -> ModelSpec {
        ModelSpec::parse(OCCUPANCY_SPEC).unwrap()
    }

    #[test]
    fn a_network_that_answers_one_row_per_patch_gives_one_verdict_per_patch() {
        let classifier = OccupancyClassifier::with_network(Box::new(Canned(vec![3, 2])), spec());
        let verdicts = classifier.classify(&vec![RgbImage::new(8, 8); 3]).unwrap();
        assert_eq!(verdicts.len(), 3);
        assert!(verdicts.iter().all(|v| v.p_occupied == 0.5));
    }

    #[test]
    fn a_network_that_answers_the_wrong_rows_or_shape_is_an_error_not_a_misread() {
        for shape in [vec![2, 2], vec![3, 3], vec![3, 2, 1]] {
            let classifier = OccupancyClassifier::with_network(Box::new(Canned(shape.clone())), spec());
            assert!(classifier.classify(&vec![RgbImage::new(8, 8); 3]).is_err(), "{shape:?}");
        }
    }

    #[test]
    fn the_bundled_sidecars_parse() {
        ModelSpec::parse(OCCUPANCY_SPEC).unwrap();
        ModelSpec::parse(MALEXNET_SPEC).unwrap();
    }
}

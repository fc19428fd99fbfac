//! Inference behind one small trait: [`Network`] maps an NCHW [`Batch`] to an [`Output`] tensor
//! (a classifier's [`Logits`], a detector's heatmaps, a recogniser's per-step scores).
//!
//! [`RtenNetwork`] is the default engine (pure Rust, loads `.onnx`, so a fresh machine needs nothing
//! else). Callers own pre- and post-processing; this crate knows nothing about parking.
//!
//! Architecture invariant: nothing outside this crate names the engine's own types, so swapping rten
//! for another runtime touches this crate alone.

use std::fmt;

use rten_tensor::{AsView, Layout};

/// A batch of images as one contiguous NCHW `f32` tensor.
#[derive(Clone, PartialEq)]
pub struct Batch {
    shape: [usize; 4],
    data: Vec<f32>,
}

impl Batch {
    /// `data` must hold exactly `n * c * h * w` values in NCHW order.
    pub fn new(shape: [usize; 4], data: Vec<f32>) -> Result<Batch, EngineError> {
        let expected = shape.iter().product::<usize>();
        if data.len() != expected {
            return Err(EngineError::Shape(format!(
                "batch of shape {shape:?} needs {expected} values, got {}",
                data.len()
            )));
        }
        Ok(Batch { shape, data })
    }

    pub fn shape(&self) -> [usize; 4] {
        self.shape
    }

    pub fn len(&self) -> usize {
        self.shape[0]
    }

    pub fn is_empty(&self) -> bool {
        self.shape[0] == 0
    }

    pub fn data(&self) -> &[f32] {
        &self.data
    }
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch").field("shape", &self.shape).finish_non_exhaustive()
    }
}

/// What a network answers: one `f32` tensor of any rank, batch first.
#[derive(Clone, PartialEq)]
pub struct Output {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Output {
    /// `data` must hold exactly the product of `shape` values, in row-major order.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Output, EngineError> {
        let expected = shape.iter().product::<usize>();
        if data.len() != expected {
            return Err(EngineError::Shape(format!(
                "output of shape {shape:?} needs {expected} values, got {}",
                data.len()
            )));
        }
        Ok(Output { shape, data })
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn data(&self) -> &[f32] {
        &self.data
    }

    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// The output as one row of scores per item; refuses anything but `[N, K]`.
    pub fn into_logits(self) -> Result<Logits, EngineError> {
        Logits::try_from(self)
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Output").field("shape", &self.shape).finish_non_exhaustive()
    }
}

/// One row of scores per item of the batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Logits {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

impl Logits {
    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    pub fn iter(&self) -> impl Iterator<Item = &[f32]> {
        self.data.chunks_exact(self.cols.max(1))
    }
}

impl TryFrom<Output> for Logits {
    type Error = EngineError;

    fn try_from(output: Output) -> Result<Logits, EngineError> {
        match output.shape[..] {
            [rows, cols] => Ok(Logits { rows, cols, data: output.data }),
            // What `infer` answers for an empty batch.
            [0] => Ok(Logits { rows: 0, cols: 0, data: Vec::new() }),
            _ => Err(EngineError::Shape(format!("expected [N, K] logits, got {:?}", output.shape))),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("could not load the model: {0}")]
    Load(String),
    #[error("inference failed: {0}")]
    Run(String),
    #[error("unexpected tensor shape: {0}")]
    Shape(String),
}

/// A trained network that turns a batch of images into one output tensor whose first dimension is
/// the batch (an empty batch gives an empty output of shape `[0]`).
///
/// Implementations must be safe to call from several threads at once.
pub trait Network: Send + Sync + fmt::Debug {
    fn infer(&self, batch: &Batch) -> Result<Output, EngineError>;

    /// Every output the network declares, in its order (the first is [`Network::infer`]'s), each
    /// with the batch as its first dimension: for instance logits and the embedding they come from.
    fn infer_all(&self, batch: &Batch) -> Result<Vec<Output>, EngineError> {
        Ok(vec![self.infer(batch)?])
    }
}

/// [`Network`] on rten, the pure-Rust ONNX runtime.
pub struct RtenNetwork {
    model: rten::Model,
    name: String,
}

impl RtenNetwork {
    /// Loads an ONNX (or `.rten`) model that is bundled into the binary.
    pub fn from_static(name: &str, bytes: &'static [u8]) -> Result<RtenNetwork, EngineError> {
        let model = rten::Model::load_static_slice(bytes).map_err(|e| EngineError::Load(format!("{name}: {e}")))?;
        Ok(RtenNetwork { model, name: name.to_owned() })
    }

    /// Loads a model from bytes read at run time (for instance an operator's retrained model).
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<RtenNetwork, EngineError> {
        let model = rten::Model::load(bytes).map_err(|e| EngineError::Load(format!("{name}: {e}")))?;
        Ok(RtenNetwork { model, name: name.to_owned() })
    }
}

impl fmt::Debug for RtenNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RtenNetwork").field("name", &self.name).finish_non_exhaustive()
    }
}

impl RtenNetwork {
    fn run(&self, batch: &Batch, outputs: &[rten::NodeId]) -> Result<Vec<Output>, EngineError> {
        if batch.is_empty() {
            return Ok(outputs.iter().map(|_| Output { shape: vec![0], data: Vec::new() }).collect());
        }
        let input_id = *self
            .model
            .input_ids()
            .first()
            .ok_or_else(|| EngineError::Shape(format!("{}: the model has no input", self.name)))?;
        let input = rten_tensor::NdTensorView::from_data(batch.shape, batch.data());
        let values = self
            .model
            .run(vec![(input_id, input.into())], outputs, None)
            .map_err(|e| EngineError::Run(format!("{}: {e}", self.name)))?;
        values
            .into_iter()
            .map(|value| {
                let tensor = value
                    .into_tensor::<f32>()
                    .ok_or_else(|| EngineError::Shape(format!("{}: output is not f32", self.name)))?;
                let shape = tensor.shape().to_vec();
                // Every caller indexes the output by batch item, so a model that drops or merges
                // items is refused here rather than misread there.
                if shape.first() != Some(&batch.len()) {
                    return Err(EngineError::Shape(format!(
                        "{}: output of shape {shape:?} for a batch of {}",
                        self.name,
                        batch.len()
                    )));
                }
                Ok(Output { shape, data: tensor.to_vec() })
            })
            .collect()
    }
}

impl Network for RtenNetwork {
    fn infer(&self, batch: &Batch) -> Result<Output, EngineError> {
        let first = *self
            .model
            .output_ids()
            .first()
            .ok_or_else(|| EngineError::Shape(format!("{}: the model has no output", self.name)))?;
        let mut outputs = self.run(batch, &[first])?;
        Ok(outputs.remove(0))
    }

    fn infer_all(&self, batch: &Batch) -> Result<Vec<Output>, EngineError> {
        self.run(batch, self.model.output_ids())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_must_hold_exactly_its_shape() {
        assert!(Batch::new([2, 3, 4, 4], vec![0.0; 96]).is_ok());
        let err = Batch::new([2, 3, 4, 4], vec![0.0; 95]).unwrap_err();
        assert!(err.to_string().contains("needs 96 values"), "{err}");
    }

    #[test]
    fn only_a_two_dimensional_output_is_logits() {
        let logits = Output::new(vec![2, 3], (0..6).map(|v| v as f32).collect()).unwrap().into_logits().unwrap();
        assert_eq!((logits.rows(), logits.cols()), (2, 3));
        assert_eq!(logits.row(1), [3.0, 4.0, 5.0]);
        let heatmap = Output::new(vec![1, 5, 2, 2], vec![0.0; 20]).unwrap();
        assert!(heatmap.into_logits().unwrap_err().to_string().contains("[N, K]"));
        assert_eq!(Output::new(vec![0], Vec::new()).unwrap().into_logits().unwrap().rows(), 0);
    }

    #[test]
    fn an_output_must_hold_exactly_its_shape() {
        let err = Output::new(vec![1, 4, 8], vec![0.0; 31]).unwrap_err();
        assert!(err.to_string().contains("needs 32 values"), "{err}");
    }

    #[test]
    fn a_model_that_is_not_onnx_is_refused_with_its_name() {
        let err = RtenNetwork::from_bytes("occupancy", b"not a model".to_vec()).unwrap_err();
        assert!(err.to_string().contains("occupancy"), "{err}");
    }
}

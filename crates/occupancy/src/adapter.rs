//! The per-camera [`Adapter`]: what one camera's labels teach on top of the universal model.
//!
//! No frozen model is right on every camera on day one (a foliage-hidden car, a red roof, a bay
//! in deep shade), while the same camera's own labelled frames are nearly always enough. So an
//! operator labels a few frames and Valet fits, per camera, a logistic head on three things the
//! universal model already computes for every patch:
//!
//! - its logit (log-odds of occupied), whose prior weight is 1: with no evidence to the contrary
//!   the adapter *is* the universal model;
//! - its embedding (the input of its final layer), prior weight 0: the head may move away from
//!   the universal one only as far as the labels pay for (L2 towards the prior);
//! - the log distance of the embedding to the bay's own *empty look*: the nearest embedding of
//!   that bay labelled free on another frame (any bay's, when this one was never labelled free).
//!   A bay that looks like it did empty is empty, whatever a car-shaped shadow suggests.
//!
//! Classes are weighted equally (labels of an early-morning frame are mostly free), and the fit
//! is Newton's method on a problem of `D + 3` unknowns: 500 labels fit and cross-validate in a third of
//! a second on the 2-core dev box (see
//! `valet bench adapter`). [`Fit::cross_validated`] scores the adapter by frames held out (one
//! frame at a time, or [`MAX_FOLDS`] folds of consecutive frames) on the
//! labels and the universal model on the same labels: an adapter is only worth keeping when it
//! beats the model it adapts ([`Fit::beats_universal`]).
//!
//! Invariants: an adapter reads only embeddings of the model it was fitted on
//! ([`Adapter::model`], checked by [`Adapter::check_model`]); its parameters serialise to JSON
//! and back exactly; fitting is deterministic.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::{Observation, SpaceState, Verdict};

/// Strength of the pull towards the universal model (the prior). Chosen on PKLot-Padova (empty
/// frames plus one labelled frame, scored on the other frames) among 3e-4…1e-2: the scores
/// differ by under half a point, and 3e-3 was best or within a patch of best on each split.
pub const PRIOR_STRENGTH: f64 = 3e-3;

/// Empty looks kept per bay (the most recent labelled frames): enough to span a day's light.
pub const EMPTY_LOOKS_PER_BAY: usize = 24;

/// The fewest labels of each state a fit needs: with none of one state there is nothing to
/// tell apart.
pub const MIN_LABELS_PER_STATE: usize = 1;

const NEWTON_STEPS: usize = 30;
/// Cross-validation folds at most: with up to this many labelled frames it is exactly
/// leave-one-frame-out; beyond, consecutive frames share a fold, which keeps a fit of 500 labels
/// over a day of frames within its budget (11 fits instead of one per frame).
pub const MAX_FOLDS: usize = 10;
/// `ln(d + EPS)` keeps a bay identical to its empty look finite.
const DISTANCE_EPS: f32 = 1e-3;

/// One labelled patch, as the universal model saw it.
#[derive(Debug, Clone)]
pub struct LabelledObservation {
    pub space: String,
    /// The frame the patch was cut from: folds of the cross-validation are frames, and a bay's
    /// empty look never comes from the frame being judged.
    pub frame: String,
    pub state: SpaceState,
    pub observation: Observation,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FitError {
    #[error(
        "the labels hold {free} free and {occupied} occupied bays: an adapter needs at least \
         {MIN_LABELS_PER_STATE} of each (label a frame with parked cars, or mark the lot empty)"
    )]
    OneState { free: usize, occupied: usize },
    #[error("labels carry embeddings of {found} values, expected {expected}: they come from another model")]
    Dimension { expected: usize, found: usize },
    #[error("the adapter was fitted on model {found:?}, not {expected:?}: fit it again from its labels")]
    Model { expected: String, found: String },
}

/// The adapter of one camera.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adapter {
    /// The universal model whose embeddings this adapter reads (its sidecar's `model`).
    pub model: String,
    /// Length of that model's embedding.
    pub dim: usize,
    /// Weights of `[logit, ln empty distance, embedding…]`.
    weights: Vec<f64>,
    bias: f64,
    /// Unit-length embeddings of each bay's labelled empty looks, newest frames first.
    empty_looks: BTreeMap<String, Vec<Vec<f32>>>,
}

/// A fitted adapter and how it scores against the universal model on its own labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fit {
    #[serde(skip)]
    pub adapter: Adapter,
    pub labels: usize,
    pub frames: usize,
    pub cross_validated: CrossValidated,
    pub fit_ms: f64,
}

/// Accuracy on the labels, each frame judged by a fit on the other frames (leave one frame out).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CrossValidated {
    /// The universal model on every label (it never saw them).
    pub universal: f64,
    /// The adapter, each frame judged by a fit on the others (a frame whose removal leaves one
    /// state only is judged by the universal model, as the product would).
    pub adapted: f64,
}

impl Fit {
    /// Whether the adapter earns its place: strictly better cross-validated accuracy.
    pub fn beats_universal(&self) -> bool {
        self.cross_validated.adapted > self.cross_validated.universal
    }
}

impl Adapter {
    /// Fits an adapter for the universal model `model` on one camera's labels, and
    /// cross-validates it with frames held out (see [`MAX_FOLDS`]).
    pub fn fit(model: &str, labels: &[LabelledObservation]) -> Result<Fit, FitError> {
        let started = Instant::now();
        let dim = check_labels(labels)?;
        let adapter = fit_on(model, dim, labels, &[])?;
        let frames: Vec<&str> = labels.iter().map(|l| l.frame.as_str()).collect::<BTreeSet<_>>().into_iter().collect();

        let universal = accuracy(labels.iter().map(|l| (l.observation.verdict.state, l.state)));
        let mut judged = Vec::with_capacity(labels.len());
        // Folds of consecutive frames: neighbouring frames of a camera look alike, so a fold
        // holds them out together rather than leaving their twins in the fit.
        let folds = frames.len().min(MAX_FOLDS);
        for fold in 0..folds {
            let out: Vec<&str> =
                frames.iter().enumerate().filter(|(i, _)| i * folds / frames.len() == fold).map(|(_, f)| *f).collect();
            let held_out = labels.iter().filter(|l| out.contains(&l.frame.as_str()));
            match fit_on(model, dim, labels, &out) {
                Ok(fold) => judged.extend(held_out.map(|l| (fold.verdict(&l.space, &l.observation).state, l.state))),
                // One state left without this frame: the product would run the universal model.
                Err(FitError::OneState { .. }) => {
                    judged.extend(held_out.map(|l| (l.observation.verdict.state, l.state)))
                }
                Err(e) => return Err(e),
            }
        }
        let adapted = accuracy(judged.into_iter());
        Ok(Fit {
            adapter,
            labels: labels.len(),
            frames: frames.len(),
            cross_validated: CrossValidated { universal, adapted },
            fit_ms: started.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// Refuses an adapter fitted on another model's embeddings (after a model upgrade, the
    /// labels are still there to fit a new one).
    pub fn check_model(&self, model: &str, dim: usize) -> Result<(), FitError> {
        if self.dim != dim {
            return Err(FitError::Dimension { expected: dim, found: self.dim });
        }
        if self.model != model {
            return Err(FitError::Model { expected: model.to_owned(), found: self.model.clone() });
        }
        Ok(())
    }

    /// The adapted verdict for `space` on one patch the universal model saw (the universal
    /// verdict itself for an embedding of another length, which [`Adapter::check_model`] keeps
    /// from happening).
    pub fn verdict(&self, space: &str, observation: &Observation) -> Verdict {
        if observation.embedding.len() != self.dim {
            return observation.verdict;
        }
        let distance = self.empty_distance(space, &unit(&observation.embedding));
        let z = self.score(&features(&observation.verdict, distance, &observation.embedding));
        Verdict::from_log_odds(z as f32)
    }

    /// Bays with at least one labelled empty look.
    pub fn bays_with_empty_look(&self) -> usize {
        self.empty_looks.len()
    }

    fn score(&self, x: &[f64]) -> f64 {
        self.bias + x.iter().zip(&self.weights).map(|(a, b)| a * b).sum::<f64>()
    }

    /// Cosine distance to the nearest empty look of `space` (else of any bay), 1 when none.
    fn empty_distance(&self, space: &str, unit_embedding: &[f32]) -> f32 {
        nearest(self.empty_looks.get(space).into_iter().flatten(), unit_embedding)
            .or_else(|| nearest(self.empty_looks.values().flatten(), unit_embedding))
            .unwrap_or(1.0)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an adapter serialises")
    }

    pub fn from_json(json: &str) -> Result<Adapter, serde_json::Error> {
        serde_json::from_str(json)
    }
}

fn check_labels(labels: &[LabelledObservation]) -> Result<usize, FitError> {
    let dim = labels.first().map_or(0, |l| l.observation.embedding.len());
    if let Some(odd) = labels.iter().find(|l| l.observation.embedding.len() != dim) {
        return Err(FitError::Dimension { expected: dim, found: odd.observation.embedding.len() });
    }
    Ok(dim)
}

/// Fits on every label except those of the `held_out` frames.
fn fit_on(model: &str, dim: usize, labels: &[LabelledObservation], held_out: &[&str]) -> Result<Adapter, FitError> {
    let used: Vec<&LabelledObservation> = labels.iter().filter(|l| !held_out.contains(&l.frame.as_str())).collect();
    let free = used.iter().filter(|l| l.state == SpaceState::Free).count();
    let occupied = used.len() - free;
    if free < MIN_LABELS_PER_STATE || occupied < MIN_LABELS_PER_STATE {
        return Err(FitError::OneState { free, occupied });
    }
    let units: Vec<Vec<f32>> = used.iter().map(|l| unit(&l.observation.embedding)).collect();

    // Each label's distance to its bay's empty look on *other* frames: the fit must see the
    // distances it will meet on a new frame, not the zero of a patch compared with itself.
    let rows: Vec<Vec<f64>> = used
        .iter()
        .zip(&units)
        .map(|(l, u)| {
            let same_bay = |other: &&LabelledObservation| other.space == l.space;
            let looks = |bay_only: bool| {
                used.iter()
                    .zip(&units)
                    .filter(move |(o, _)| {
                        o.state == SpaceState::Free && o.frame != l.frame && (!bay_only || same_bay(o))
                    })
                    .map(|(_, u)| u)
            };
            let d = nearest(looks(true), u).or_else(|| nearest(looks(false), u)).unwrap_or(1.0);
            features(&l.observation.verdict, d, &l.observation.embedding)
        })
        .collect();
    let targets: Vec<f64> = used.iter().map(|l| f64::from(u8::from(l.state == SpaceState::Occupied))).collect();
    let weights_per_state = [used.len() as f64 / (2.0 * free as f64), used.len() as f64 / (2.0 * occupied as f64)];
    let sample_weights: Vec<f64> = targets.iter().map(|&t| weights_per_state[t as usize]).collect();

    let mut prior = vec![0.0; dim + 2];
    prior[0] = 1.0;
    let (weights, bias) = logistic_newton(&rows, &targets, &sample_weights, &prior, PRIOR_STRENGTH);

    // The newest frames' empty looks, per bay (frame keys sort by time in every source Valet has).
    let mut empty_looks: BTreeMap<String, Vec<(&str, Vec<f32>)>> = BTreeMap::new();
    for (l, u) in used.iter().zip(units) {
        if l.state == SpaceState::Free {
            empty_looks.entry(l.space.clone()).or_default().push((&l.frame, u));
        }
    }
    let empty_looks = empty_looks
        .into_iter()
        .map(|(bay, mut looks)| {
            looks.sort_by(|a, b| b.0.cmp(a.0));
            (bay, looks.into_iter().take(EMPTY_LOOKS_PER_BAY).map(|(_, u)| u).collect())
        })
        .collect();
    Ok(Adapter { model: model.to_owned(), dim, weights, bias, empty_looks })
}

/// `[logit, ln(distance + ε), embedding…]`.
fn features(verdict: &Verdict, distance: f32, embedding: &[f32]) -> Vec<f64> {
    let mut x = Vec::with_capacity(embedding.len() + 2);
    x.push(f64::from(verdict.log_odds()));
    x.push(f64::from((distance.clamp(0.0, 1.0) + DISTANCE_EPS).ln()));
    x.extend(embedding.iter().map(|&v| f64::from(v)));
    x
}

fn unit(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 { v.iter().map(|x| x / norm).collect() } else { v.to_vec() }
}

/// Smallest cosine distance from `u` to `looks` (all unit length); `None` when there are none.
fn nearest<'a>(looks: impl Iterator<Item = &'a Vec<f32>>, u: &[f32]) -> Option<f32> {
    looks.map(|l| 1.0 - l.iter().zip(u).map(|(a, b)| a * b).sum::<f32>()).reduce(f32::min)
}

fn accuracy(pairs: impl Iterator<Item = (SpaceState, SpaceState)>) -> f64 {
    let (mut right, mut all) = (0usize, 0usize);
    for (said, truth) in pairs {
        right += usize::from(said == truth);
        all += 1;
    }
    if all == 0 { 0.0 } else { right as f64 / all as f64 }
}

/// Weighted logistic regression with an L2 pull of the weights (not the bias) towards `prior`,
/// by Newton's method: minimises `Σ sᵢ·loss(xᵢ·w + b, yᵢ) / n + λ/2·‖w − prior‖²`. Starts at
/// the prior, so a few steps suffice; stops when a step no longer moves anything.
fn logistic_newton(x: &[Vec<f64>], y: &[f64], s: &[f64], prior: &[f64], lambda: f64) -> (Vec<f64>, f64) {
    let n = x.len() as f64;
    let d = prior.len();
    let k = d + 1; // the bias is the last unknown
    let mut theta: Vec<f64> = prior.iter().copied().chain([0.0]).collect();
    // Each row with a trailing 1 for the bias, so the inner loops have no branch.
    let rows: Vec<Vec<f64>> = x.iter().map(|xi| xi.iter().copied().chain([1.0]).collect()).collect();
    for _ in 0..NEWTON_STEPS {
        let mut gradient = vec![0.0; k];
        let mut hessian = vec![0.0; k * k];
        for ((xi, &yi), &si) in rows.iter().zip(y).zip(s) {
            let z = xi.iter().zip(&theta).map(|(a, b)| a * b).sum::<f64>();
            let p = 1.0 / (1.0 + (-z).exp());
            let g = si * (p - yi) / n;
            let h = si * p * (1.0 - p) / n;
            for (a, &xa) in xi.iter().enumerate() {
                gradient[a] += g * xa;
                let hx = h * xa;
                for (cell, &xb) in hessian[a * k..=a * k + a].iter_mut().zip(xi) {
                    *cell += hx * xb;
                }
            }
        }
        for a in 0..d {
            gradient[a] += lambda * (theta[a] - prior[a]);
            hessian[a * k + a] += lambda;
        }
        hessian[d * k + d] += 1e-9; // the bias alone may be unidentified (one state): keep it solvable
        let step = cholesky_solve(&mut hessian, k, &gradient);
        // Damped: on nearly separable labels a full Newton step overshoots into saturation.
        let before = objective(x, y, s, prior, lambda, &theta);
        let mut t = 1.0;
        let mut next: Vec<f64> = theta.iter().zip(&step).map(|(a, b)| a - b).collect();
        while objective(x, y, s, prior, lambda, &next) > before && t > 1e-6 {
            t *= 0.5;
            next = theta.iter().zip(&step).map(|(a, b)| a - t * b).collect();
        }
        let moved = step.iter().fold(0.0f64, |m, v| m.max((t * v).abs()));
        theta = next;
        if moved < 1e-7 {
            break;
        }
    }
    let bias = theta.pop().expect("the bias is the last unknown");
    (theta, bias)
}

/// The penalised, weighted mean log-loss that [`logistic_newton`] minimises.
fn objective(x: &[Vec<f64>], y: &[f64], s: &[f64], prior: &[f64], lambda: f64, theta: &[f64]) -> f64 {
    let d = prior.len();
    let loss: f64 = x
        .iter()
        .zip(y)
        .zip(s)
        .map(|((xi, &yi), &si)| {
            let z = theta[d] + xi.iter().zip(theta).map(|(a, b)| a * b).sum::<f64>();
            si * (z.max(0.0) + (-z.abs()).exp().ln_1p() - yi * z)
        })
        .sum();
    let pull: f64 = theta[..d].iter().zip(prior).map(|(t, p)| (t - p) * (t - p)).sum();
    loss / x.len() as f64 + lambda / 2.0 * pull
}

/// Solves `A·v = b` for a symmetric positive definite `A` given by its lower triangle (row major,
/// `k × k`), in place.
fn cholesky_solve(a: &mut [f64], k: usize, b: &[f64]) -> Vec<f64> {
    for j in 0..k {
        let mut diagonal = a[j * k + j];
        for p in 0..j {
            diagonal -= a[j * k + p] * a[j * k + p];
        }
        let diagonal = diagonal.max(1e-12).sqrt();
        a[j * k + j] = diagonal;
        for i in j + 1..k {
            let mut v = a[i * k + j];
            for p in 0..j {
                v -= a[i * k + p] * a[j * k + p];
            }
            a[i * k + j] = v / diagonal;
        }
    }
    let mut v = b.to_vec();
    for i in 0..k {
        for p in 0..i {
            v[i] -= a[i * k + p] * v[p];
        }
        v[i] /= a[i * k + i];
    }
    for i in (0..k).rev() {
        for p in i + 1..k {
            v[i] -= a[p * k + i] * v[p];
        }
        v[i] /= a[i * k + i];
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observation(p: f32, embedding: Vec<f32>) -> Observation {
        Observation { verdict: Verdict::from_log_odds((p / (1.0 - p)).ln()), embedding }
    }

    fn label(space: &str, frame: &str, state: SpaceState, p: f32, embedding: Vec<f32>) -> LabelledObservation {
        LabelledObservation { space: space.into(), frame: frame.into(), state, observation: observation(p, embedding) }
    }

    #[test]
    fn cholesky_solves_a_small_system() {
        // [[4, 2], [2, 3]] v = [2, 1] → v = [0.5, 0].
        let mut a = vec![4.0, 0.0, 2.0, 3.0];
        let v = cholesky_solve(&mut a, 2, &[2.0, 1.0]);
        assert!((v[0] - 0.5).abs() < 1e-12 && v[1].abs() < 1e-12, "{v:?}");
    }

    /// A camera where the universal model calls a bay's empty look occupied (a red roof, say):
    /// the bay's empty look and the labels correct it, and cross-validation says so.
    #[test]
    fn labels_correct_a_bay_the_universal_model_gets_wrong() {
        let roof = vec![1.0, 0.0, 0.2];
        let car = vec![0.0, 1.0, 0.2];
        let mut labels = Vec::new();
        for f in 0..6 {
            let frame = format!("f{f}");
            // Bay r is always empty, but looks "occupied" to the universal model.
            labels.push(label("r", &frame, SpaceState::Free, 0.8, roof.clone()));
            labels.push(label("c", &frame, SpaceState::Occupied, 0.9, car.clone()));
            labels.push(label("e", &frame, SpaceState::Free, 0.1, vec![0.3, 0.0, 1.0]));
        }
        let fit = Adapter::fit("m", &labels).unwrap();
        assert!((fit.cross_validated.universal - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(fit.cross_validated.adapted, 1.0);
        assert!(fit.beats_universal());
        assert_eq!(fit.adapter.verdict("r", &observation(0.8, roof.clone())).state, SpaceState::Free);
        assert_eq!(fit.adapter.verdict("c", &observation(0.9, car)).state, SpaceState::Occupied);
        // A car parked in bay r: it no longer looks like r's empty look.
        assert_eq!(fit.adapter.verdict("r", &observation(0.9, vec![0.0, 1.0, 0.25])).state, SpaceState::Occupied);
        assert_eq!(fit.frames, 6);
    }

    #[test]
    fn labels_of_one_state_cannot_fit_an_adapter() {
        let labels: Vec<_> =
            (0..3).map(|f| label("a", &format!("f{f}"), SpaceState::Free, 0.2, vec![1.0, 0.0])).collect();
        assert_eq!(Adapter::fit("m", &labels).unwrap_err(), FitError::OneState { free: 3, occupied: 0 });
    }

    #[test]
    fn an_adapter_round_trips_through_json_and_refuses_another_model() {
        let labels = vec![
            label("a", "f0", SpaceState::Free, 0.2, vec![1.0, 0.0]),
            label("a", "f1", SpaceState::Occupied, 0.7, vec![0.0, 1.0]),
        ];
        let fit = Adapter::fit("occupancy.onnx", &labels).unwrap();
        let back = Adapter::from_json(&fit.adapter.to_json()).unwrap();
        assert_eq!(back, fit.adapter);
        assert!(back.check_model("occupancy.onnx", 2).is_ok());
        assert!(back.check_model("occupancy.onnx", 3).is_err());
        assert!(back.check_model("other.onnx", 2).is_err());
    }

    #[test]
    fn mixed_embedding_lengths_are_refused() {
        let labels = vec![
            label("a", "f0", SpaceState::Free, 0.2, vec![1.0, 0.0]),
            label("a", "f1", SpaceState::Occupied, 0.7, vec![0.0, 1.0, 0.0]),
        ];
        assert_eq!(Adapter::fit("m", &labels).unwrap_err(), FitError::Dimension { expected: 2, found: 3 });
    }
}

//! Reads licence plates in a frame: [`PlateReader::read`] turns RGB pixels (never paths) into one
//! [`PlateRead`] per plate (box, text, confidence, alternatives) with [`StageTimings`].
//!
//! The stages are modules, each usable alone: [`detection`] (frame → boxes), [`rectification`]
//! (boxes → grey crops), [`recognition`] (crops → CTC readings), then post-processing by plate
//! [`formats`] and [`confusion`] classes. [`consensus`] merges several reads of one car ([`pool`]
//! with their alternatives), [`crop`] cuts the plate a reviewer sees, and [`eval`] scores reads
//! against the openalpr benchmark.
//!
//! The bundled models (`models/plate-detector.onnx`, `models/plate-ocr.onnx`) and their sidecars are
//! compiled in; the sidecars are the preprocessing contract with `training/plates`.
//!
//! Architecture invariant: inference goes through `valet_engine::Network` only, so every stage is
//! tested with stand-in networks and the engine can change without touching this crate.

pub mod confusion;
pub mod consensus;
pub mod crop;
pub mod ctc;
pub mod detection;
pub mod eval;
pub mod formats;
pub mod recognition;
pub mod rectification;
#[cfg(test)]
mod testing;

use std::time::Instant;

use image::{GrayImage, RgbImage};
use valet_engine::{EngineError, Network, RtenNetwork};

pub use consensus::{Consensus, Pooled, ReadVote, consensus, pool};
pub use crop::review_crop_jpeg;
pub use detection::{Detection, DetectorSpec, PlateBox};
pub use formats::{Candidate, Region};
pub use recognition::{Recognition, RecognizerSpec};

static DETECTOR_ONNX: &[u8] = include_bytes!("../../../models/plate-detector.onnx");
static DETECTOR_SPEC: &str = include_str!("../../../models/plate-detector.json");
static RECOGNIZER_ONNX: &[u8] = include_bytes!("../../../models/plate-ocr.onnx");
static RECOGNIZER_SPEC: &str = include_str!("../../../models/plate-ocr.json");

#[derive(Debug, thiserror::Error)]
pub enum PlateError {
    #[error("invalid model sidecar: {0}")]
    Spec(String),
    #[error("the model broke its output contract: {0}")]
    Output(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// A plate whose best spelling is at least this probable in its detected box is not read again in
/// the other views. On the training images every threshold from 0 to 1 read the same (they are all
/// read right); 0.9 halves the recogniser's time on the held-out images at the same accuracy.
pub const SURE_ENOUGH: f32 = 0.9;

/// How to read a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReaderOptions {
    /// Whose plate formats rank the spellings.
    pub region: Region,
    /// Candidates kept per plate (at least 1).
    pub top_n: usize,
    /// Straighten tilted plates before reading them. Off until measured to help.
    pub deskew: bool,
    /// Crops read per plate at most, 1 to [`rectification::VIEWS`]`.len()`: the detected box, then
    /// a tighter and a looser one when the first read is below [`SURE_ENOUGH`]. More views forgive a
    /// box edge that cuts or adds a glyph.
    pub views: usize,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions { region: Region::Auto, top_n: 5, deskew: false, views: rectification::VIEWS.len() }
    }
}

/// One plate found and read in a frame.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlateRead {
    pub bbox: PlateBox,
    pub detection_confidence: f32,
    /// The best spelling, `candidates[0]` ("" when nothing legible was read).
    pub text: String,
    /// The best spelling's [`Candidate::confidence`].
    pub confidence: f32,
    /// One per glyph of `text`.
    pub char_confidences: Vec<f32>,
    /// The spellings considered most likely, best first.
    pub candidates: Vec<Candidate>,
    /// The region whose formats ranked the spellings (the one that fitted, under `Auto`).
    pub region: Region,
}

/// Milliseconds spent in each stage of one [`PlateReader::read`].
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct StageTimings {
    pub detect_ms: f64,
    pub rectify_ms: f64,
    pub recognize_ms: f64,
    pub postprocess_ms: f64,
}

/// Everything read in one frame: plates in detection-confidence order.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FrameReading {
    pub plates: Vec<PlateRead>,
    pub timings: StageTimings,
}

/// The plate detector and recogniser with their preprocessing contracts.
#[derive(Debug)]
pub struct PlateReader {
    detector: Box<dyn Network>,
    detector_spec: DetectorSpec,
    recognizer: Box<dyn Network>,
    recognizer_spec: RecognizerSpec,
}

impl PlateReader {
    /// The models Valet ships with.
    pub fn bundled() -> Result<PlateReader, PlateError> {
        Ok(PlateReader::with_networks(
            Box::new(RtenNetwork::from_static("plate-detector", DETECTOR_ONNX)?),
            DetectorSpec::parse(DETECTOR_SPEC)?,
            Box::new(RtenNetwork::from_static("plate-ocr", RECOGNIZER_ONNX)?),
            RecognizerSpec::parse(RECOGNIZER_SPEC)?,
        ))
    }

    /// Any engines, for instance stand-in networks in tests.
    pub fn with_networks(
        detector: Box<dyn Network>,
        detector_spec: DetectorSpec,
        recognizer: Box<dyn Network>,
        recognizer_spec: RecognizerSpec,
    ) -> PlateReader {
        PlateReader { detector, detector_spec, recognizer, recognizer_spec }
    }

    pub fn detector_spec(&self) -> &DetectorSpec {
        &self.detector_spec
    }

    pub fn recognizer_spec(&self) -> &RecognizerSpec {
        &self.recognizer_spec
    }

    /// Stage 1 alone: the plates' boxes, most confident first.
    pub fn detect(&self, frame: &RgbImage) -> Result<Vec<Detection>, PlateError> {
        detection::detect(self.detector.as_ref(), &self.detector_spec, frame)
    }

    /// Stage 2 alone: one recogniser-sized grey crop per box.
    pub fn rectify(&self, frame: &RgbImage, boxes: &[PlateBox], deskew: bool) -> Vec<GrayImage> {
        rectification::rectify(frame, boxes, &self.recognizer_spec, deskew)
    }

    /// Stage 3 alone: one reading per crop, in one network call.
    pub fn recognize(&self, crops: &[GrayImage]) -> Result<Vec<Recognition>, PlateError> {
        recognition::recognize(self.recognizer.as_ref(), &self.recognizer_spec, crops)
    }

    /// Finds and reads every plate in `frame`. A frame without plates reads as no plates.
    pub fn read(&self, frame: &RgbImage, options: &ReaderOptions) -> Result<FrameReading, PlateError> {
        let mut timings = StageTimings::default();
        let since = |t: Instant| t.elapsed().as_secs_f64() * 1e3;

        let t = Instant::now();
        let detections = self.detect(frame)?;
        timings.detect_ms = since(t);

        // Pass 1: every plate read in its detected box.
        let t = Instant::now();
        let boxes: Vec<PlateBox> = detections.iter().map(|d| d.bbox).collect();
        let crops = self.rectify(frame, &boxes, options.deskew);
        timings.rectify_ms = since(t);
        let t = Instant::now();
        let mut views: Vec<Vec<Recognition>> = self.recognize(&crops)?.into_iter().map(|r| vec![r]).collect();
        timings.recognize_ms = since(t);
        let t = Instant::now();
        let mut rankings: Vec<formats::Ranking> =
            views.iter().map(|v| formats::rank(v, options.region, options.top_n)).collect();
        timings.postprocess_ms = since(t);

        // Pass 2: plates not read surely enough are read again in the other views, and ranked anew
        // over all of them. Most plates are sure at once, so most frames pay for one crop a plate.
        let extra = options.views.clamp(1, rectification::VIEWS.len());
        let unsure: Vec<usize> = (0..rankings.len())
            .filter(|&i| extra > 1 && rankings[i].candidates.first().is_none_or(|c| c.confidence < SURE_ENOUGH))
            .collect();
        if !unsure.is_empty() {
            let t = Instant::now();
            let boxes: Vec<PlateBox> = unsure
                .iter()
                .flat_map(|&i| {
                    rectification::views(&detections[i].bbox, extra, frame.width(), frame.height()).split_off(1)
                })
                .collect();
            let crops = self.rectify(frame, &boxes, options.deskew);
            timings.rectify_ms += since(t);
            let t = Instant::now();
            let more = self.recognize(&crops)?;
            timings.recognize_ms += since(t);
            let t = Instant::now();
            for (&i, more) in unsure.iter().zip(more.chunks_exact(extra - 1)) {
                views[i].extend_from_slice(more);
                rankings[i] = formats::rank(&views[i], options.region, options.top_n);
            }
            timings.postprocess_ms += since(t);
        }

        let plates = detections
            .iter()
            .zip(rankings)
            .map(|(detection, ranking)| {
                let best = ranking.candidates.first();
                PlateRead {
                    bbox: detection.bbox,
                    detection_confidence: detection.confidence,
                    text: best.map(|c| c.text.clone()).unwrap_or_default(),
                    confidence: best.map_or(0.0, |c| c.confidence),
                    char_confidences: ranking.char_confidences,
                    candidates: ranking.candidates,
                    region: ranking.region,
                }
            })
            .collect();
        Ok(FrameReading { plates, timings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{
        NoPlateDetector, OnePlateDetector, SpellingRecognizer, detector_spec, frame, recognizer_spec,
    };

    fn reader(detector: impl Network + 'static, recognizer: SpellingRecognizer) -> PlateReader {
        PlateReader::with_networks(Box::new(detector), detector_spec(), Box::new(recognizer), recognizer_spec())
    }

    /// The recogniser, counting the crops of each call.
    #[derive(Debug)]
    struct CountingCrops(SpellingRecognizer, std::sync::Arc<std::sync::Mutex<Vec<usize>>>);

    impl Network for CountingCrops {
        fn infer(&self, batch: &valet_engine::Batch) -> Result<valet_engine::Output, EngineError> {
            self.1.lock().unwrap().push(batch.len());
            self.0.infer(batch)
        }
    }

    #[test]
    fn only_an_unsure_plate_is_read_again_in_the_other_views() {
        for (p, calls) in [(0.999, vec![1]), (0.9, vec![1, 2])] {
            let seen = std::sync::Arc::default();
            let recognizer = CountingCrops(SpellingRecognizer::sure("ABC123", p), std::sync::Arc::clone(&seen));
            let reader = PlateReader::with_networks(
                Box::new(OnePlateDetector),
                detector_spec(),
                Box::new(recognizer),
                recognizer_spec(),
            );
            let options = ReaderOptions { views: 3, ..options(Region::Us) };
            let reading = reader.read(&frame(640, 480), &options).unwrap();
            assert_eq!(reading.plates[0].text, "ABC123");
            assert_eq!(*seen.lock().unwrap(), calls, "glyphs read with probability {p}");
        }
    }

    fn options(region: Region) -> ReaderOptions {
        ReaderOptions { region, top_n: 5, deskew: false, views: 1 }
    }

    #[test]
    fn a_plate_is_found_read_and_timed() {
        let reader = reader(OnePlateDetector, SpellingRecognizer::sure("ABC1234", 0.95));
        let reading = reader.read(&frame(1280, 720), &options(Region::Us)).unwrap();
        let [plate] = &reading.plates[..] else { panic!("{:?}", reading.plates) };
        assert_eq!(plate.text, "ABC1234");
        assert_eq!(plate.char_confidences.len(), 7);
        assert!(plate.char_confidences.iter().all(|c| (c - 0.95).abs() < 1e-3), "{:?}", plate.char_confidences);
        assert!(plate.confidence > 0.5 && plate.confidence <= 1.0);
        assert_eq!(plate.candidates[0].text, plate.text);
        assert!(plate.bbox.x > 400 && plate.bbox.x + plate.bbox.w < 880, "{:?}", plate.bbox);
        assert!(reading.timings.detect_ms > 0.0);
    }

    #[test]
    fn a_brazilian_o_in_a_digit_slot_is_read_as_zero() {
        // The network prefers O in fifth place, where every Brazilian format has a digit.
        let mut slots = SpellingRecognizer::sure("AYO9O34", 0.95).0;
        slots[4] = vec![('O', 0.8), ('0', 0.15)];
        let reader = reader(OnePlateDetector, SpellingRecognizer(slots.clone()));
        let br = reader.read(&frame(640, 480), &options(Region::Br)).unwrap();
        assert_eq!(br.plates[0].text, "AYO9034");
        assert_eq!(br.plates[0].region, Region::Br);
        assert!(br.plates[0].candidates.iter().any(|c| c.text == "AYO9O34"));
        // US plates have no law for slot five, but LLLDDDD is a common shape there and LLLDLDD is not.
        let us = reader.read(&frame(640, 480), &options(Region::Us)).unwrap();
        assert_eq!(us.plates[0].text, "AYO9034");
        // Auto finds the format that fits.
        let auto = reader.read(&frame(640, 480), &options(Region::Auto)).unwrap();
        assert_eq!(auto.plates[0].text, "AYO9034");
    }

    #[test]
    fn a_correction_happens_even_when_the_network_is_sure_of_the_wrong_glyph() {
        let reader = reader(OnePlateDetector, SpellingRecognizer::sure("AYO9O34", 0.99));
        let br = reader.read(&frame(640, 480), &options(Region::Br)).unwrap();
        assert_eq!(br.plates[0].text, "AYO9034");
        assert!(br.plates[0].confidence < 0.6, "the substituted glyph costs confidence");
    }

    #[test]
    fn top_n_bounds_the_candidates() {
        let mut slots = SpellingRecognizer::sure("ABC123", 0.9).0;
        slots[0] = vec![('A', 0.5), ('4', 0.3)];
        slots[5] = vec![('3', 0.5), ('8', 0.4)];
        let reader = reader(OnePlateDetector, SpellingRecognizer(slots));
        for top_n in [1, 3] {
            let reading = reader.read(&frame(640, 480), &ReaderOptions { top_n, ..options(Region::Us) }).unwrap();
            assert_eq!(reading.plates[0].candidates.len(), top_n);
        }
        let reading = reader.read(&frame(640, 480), &options(Region::Us)).unwrap();
        let texts: Vec<&str> = reading.plates[0].candidates.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts[..2], ["ABC123", "ABC128"]);
        assert!(reading.plates[0].candidates.windows(2).all(|w| w[0].confidence >= w[1].confidence));
    }

    #[test]
    fn a_frame_without_plates_reads_as_no_plates() {
        let reader = reader(NoPlateDetector, SpellingRecognizer::sure("ABC1234", 0.9));
        assert!(reader.read(&frame(1280, 720), &ReaderOptions::default()).unwrap().plates.is_empty());
    }

    #[test]
    fn tiny_and_odd_shaped_frames_never_panic() {
        for (w, h) in [(1, 1), (5, 300), (300, 5), (0, 0), (2, 4000)] {
            for deskew in [false, true] {
                let reader = reader(OnePlateDetector, SpellingRecognizer::sure("AB12", 0.9));
                let reading = reader.read(&frame(w, h), &ReaderOptions { deskew, ..ReaderOptions::default() }).unwrap();
                for plate in &reading.plates {
                    assert!(plate.bbox.x + plate.bbox.w <= w && plate.bbox.y + plate.bbox.h <= h, "{w}×{h}: {plate:?}");
                }
            }
        }
    }

    #[test]
    fn an_unreadable_plate_keeps_its_box_with_an_empty_text() {
        let reader = reader(OnePlateDetector, SpellingRecognizer(Vec::new()));
        let reading = reader.read(&frame(640, 480), &ReaderOptions::default()).unwrap();
        assert_eq!(reading.plates.len(), 1);
        assert_eq!((reading.plates[0].text.as_str(), reading.plates[0].confidence), ("", 0.0));
        assert!(reading.plates[0].candidates.is_empty());
    }
}

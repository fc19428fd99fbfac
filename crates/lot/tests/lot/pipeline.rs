//! The frame pipeline with a stand-in network: which space is bright decides its verdict, so the
//! tests check warping, batching, ordering, frame-size handling and counts without weights.

use image::{Rgb, RgbImage};
use valet_engine::{Batch, EngineError, Network, Output};
use valet_lot::{CameraId, FrameError, Layout, LotReader, LotState, SmoothingConfig, SpaceId, SpaceState, WarpMode};
use valet_occupancy::{ModelSpec, OccupancyClassifier};

use crate::GOOD;

/// Occupied when a patch's mean red value is above the normalised mid-grey.
#[derive(Debug)]
struct Brightness;

impl Network for Brightness {
    fn infer(&self, batch: &Batch) -> Result<Output, EngineError> {
        let [n, c, h, w] = batch.shape();
        let plane = h * w;
        let mut logits = Vec::with_capacity(n * 2);
        for item in batch.data().chunks_exact(c * plane) {
            let mean = item[..plane].iter().sum::<f32>() / plane as f32;
            logits.extend(if mean > 0.0 { [0.0, 4.0] } else { [4.0, 0.0] });
        }
        Output::new(vec![n, 2], logits)
    }
}

fn reader(mode: WarpMode) -> LotReader {
    let spec = ModelSpec::parse(
        r#"{"model":"brightness","input_size":24,"mean":[0.5,0.5,0.5],"std":[0.25,0.25,0.25],
            "labels":["free","occupied"],"resize":"pillow-bilinear"}"#,
    )
    .unwrap();
    let classifier = OccupancyClassifier::with_network(Box::new(Brightness), spec);
    LotReader::new(Layout::from_toml(GOOD).unwrap(), classifier, mode)
}

/// A `scale`× frame of the test layout's camera with space a1 bright and b1 dark.
fn frame(scale: u32) -> RgbImage {
    RgbImage::from_fn(200 * scale, 100 * scale, |x, y| {
        let (x, y) = (x / scale, y / scale);
        if (10..60).contains(&x) && (10..60).contains(&y) { Rgb([250, 250, 250]) } else { Rgb([10, 10, 10]) }
    })
}

fn cam() -> CameraId {
    CameraId::new("cam1")
}

#[test]
fn each_space_gets_its_own_verdict_in_layout_order() {
    for mode in [WarpMode::Via { side: 150 }, WarpMode::Direct { supersample: 2 }] {
        let reading = reader(mode).read(&cam(), &frame(1)).unwrap();
        let got: Vec<(&str, bool)> = reading.spaces.iter().map(|s| (s.space.as_str(), s.p_occupied > 0.5)).collect();
        assert_eq!(got, vec![("a1", true), ("b1", false)], "{mode:?}");
        assert!(reading.warnings.is_empty());
    }
}

#[test]
fn a_frame_of_the_same_aspect_is_rescaled_with_a_warning() {
    let reading = reader(WarpMode::default()).read(&cam(), &frame(2)).unwrap();
    assert!(reading.spaces[0].p_occupied > 0.5 && reading.spaces[1].p_occupied < 0.5);
    assert_eq!(reading.warnings.len(), 1);
    assert!(reading.warnings[0].contains("400×200"), "{:?}", reading.warnings);
}

#[test]
fn a_frame_of_another_aspect_is_refused_not_misread() {
    let err = reader(WarpMode::default()).read(&cam(), &RgbImage::new(200, 200)).unwrap_err();
    assert!(matches!(err, FrameError::AspectMismatch { got_w: 200, got_h: 200, .. }), "{err}");
    assert!(err.to_string().contains("200×100"), "{err}");
}

#[test]
fn a_frame_from_a_camera_the_layout_lacks_is_refused() {
    let err = reader(WarpMode::default()).read(&CameraId::new("cam7"), &frame(1)).unwrap_err();
    assert!(matches!(err, FrameError::UnknownCamera(_)), "{err}");
}

#[test]
fn counts_follow_the_smoothed_states_per_zone_level_and_lot() {
    let reader = reader(WarpMode::default());
    let mut lot = LotState::new(reader.layout().clone(), SmoothingConfig::default());
    let before = lot.counts();
    assert_eq!((before.lot.unknown, before.lot.free, before.lot.occupied), (2, 0, 0));
    let changes = lot.update(&reader.read(&cam(), &frame(1)).unwrap());
    assert_eq!(changes.len(), 2, "both spaces get their first state");
    let counts = lot.counts();
    assert_eq!((counts.lot.free, counts.lot.occupied, counts.lot.unknown), (1, 1, 0));
    let zone_a = counts.zones.iter().find(|z| z.zone.as_str() == "A").unwrap();
    assert_eq!((zone_a.tally.occupied, zone_a.level.as_str()), (1, "L0"));
    let level_1 = counts.levels.iter().find(|l| l.level.as_str() == "L1").unwrap();
    assert_eq!(level_1.tally.free, 1);
    assert_eq!(lot.space(&SpaceId::new("a1")).unwrap().state, SpaceState::Occupied);
    assert!(lot.update(&reader.read(&cam(), &frame(1)).unwrap()).is_empty(), "nothing changed");
}

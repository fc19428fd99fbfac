//! Pins the preprocessing contract with training: the committed golden patch, preprocessed here,
//! must equal the tensor the Python side fed the exported model, and give the logits it gave.

use std::path::Path;

use valet_imaging::DecodeLimits;
use valet_occupancy::OccupancyClassifier;

fn golden_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/golden"))
}

#[derive(serde::Deserialize)]
struct Golden {
    image: String,
    input_size: usize,
    logits: [f32; 2],
}

fn check(classifier: &OccupancyClassifier, name: &str) {
    let golden: Golden =
        serde_json::from_slice(&std::fs::read(golden_dir().join(format!("{name}.json"))).unwrap()).unwrap();
    assert_eq!(golden.input_size as u32, classifier.spec().input_size);
    let bytes = std::fs::read(golden_dir().join(&golden.image)).unwrap();
    let patch = valet_imaging::decode(&bytes, &DecodeLimits::default()).unwrap().image;

    let batch = classifier.preprocess(std::slice::from_ref(&patch));
    let expected: Vec<f32> = std::fs::read(golden_dir().join(format!("{name}-input.f32")))
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(batch.data().len(), expected.len(), "{name}: tensor size");
    // One grey level of one pixel is 1/255/std ≈ 0.017. fast_image_resize rounds a few pixels one
    // level away from Pillow (~3 % of them when enlarging this 37×23 patch), never more.
    let diffs: Vec<f32> = batch.data().iter().zip(&expected).map(|(a, b)| (a - b).abs()).collect();
    let worst = diffs.iter().copied().fold(0.0, f32::max);
    let off = diffs.iter().filter(|d| **d > 1e-4).count();
    assert!(worst <= 0.018, "{name}: preprocessed input differs by up to {worst}");
    assert!(off * 20 <= diffs.len(), "{name}: {off} of {} values differ", diffs.len());

    let logits = classifier.logits(&batch).unwrap();
    for (got, want) in logits.row(0).iter().zip(golden.logits) {
        assert!((got - want).abs() < 0.02, "{name}: logits {:?} vs training's {:?}", logits.row(0), golden.logits);
    }
}

#[test]
fn the_bundled_model_sees_the_golden_patch_exactly_as_training_did() {
    check(&OccupancyClassifier::bundled().unwrap(), "occupancy");
}

#[test]
fn the_reference_malexnet_sees_the_golden_patch_exactly_as_training_did() {
    check(&OccupancyClassifier::reference_malexnet().unwrap(), "malexnet");
}

#[test]
fn a_batch_gives_the_same_verdicts_as_one_patch_at_a_time() {
    let classifier = OccupancyClassifier::bundled().unwrap();
    let patches: Vec<_> = (0..5u64)
        .map(|seed| {
            let jpeg = valet_imaging::synthetic::photo_jpeg(150 + seed as u16 * 7, 150, None, seed);
            valet_imaging::decode(&jpeg, &DecodeLimits::default()).unwrap().image
        })
        .collect();
    let together = classifier.classify(&patches).unwrap();
    for (patch, verdict) in patches.iter().zip(&together) {
        let alone = classifier.classify(std::slice::from_ref(patch)).unwrap()[0];
        assert!((alone.p_occupied - verdict.p_occupied).abs() < 1e-5);
    }
    assert!(classifier.classify(&[]).unwrap().is_empty());
}

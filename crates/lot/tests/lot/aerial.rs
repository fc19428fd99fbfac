//! The bundled occupancy model on the rendered aerial lot (`valet_lot::synthetic::aerial`), the
//! one `valet serve --demo` shows: frames with known cars go through JPEG, the safe decode, the
//! warp and the real model, and every bay's verdict is checked against the cars drawn into it.

use valet_imaging::DecodeLimits;
use valet_lot::synthetic::aerial::{self, BAYS, ParkedCar};
use valet_lot::{CameraId, LotReader, WarpMode};
use valet_occupancy::OccupancyClassifier;

/// Which bays frame `n` has cars in: about half, a different set each frame.
fn parked(n: u64) -> Vec<ParkedCar> {
    (0..BAYS)
        .filter(|bay| (n * 7 + *bay as u64 * 13 + n * n) % 11 < 5)
        .map(|bay| ParkedCar { bay, car: n * 100 + bay as u64 })
        .collect()
}

#[test]
fn the_bundled_model_reads_the_rendered_lots_bays_right() {
    let reader = LotReader::new(aerial::layout(), OccupancyClassifier::bundled().unwrap(), WarpMode::default());
    let camera = CameraId::new(aerial::CAMERA);
    // [truth][verdict] counts, free = 0, occupied = 1.
    let mut confusion = [[0u32; 2]; 2];
    let mut misread = Vec::new();
    // The least sure right answers: the smallest p(occupied) of a car, the largest of an empty bay.
    let (mut weakest_car, mut weakest_empty) = (1.0f32, 0.0f32);
    for n in 0..40 {
        let cars = parked(n);
        let jpeg = valet_imaging::encode_jpeg(&aerial::frame(&cars, n), 85).unwrap();
        let frame = valet_imaging::decode(&jpeg, &DecodeLimits::default()).unwrap().image;
        let reading = reader.read(&camera, &frame).unwrap();
        for (bay, space) in reading.spaces.iter().enumerate() {
            let truth = cars.iter().any(|c| c.bay == bay);
            let verdict = space.p_occupied >= 0.5;
            confusion[usize::from(truth)][usize::from(verdict)] += 1;
            if truth {
                weakest_car = weakest_car.min(space.p_occupied);
            } else {
                weakest_empty = weakest_empty.max(space.p_occupied);
            }
            if truth != verdict {
                misread.push(format!("frame {n} {}: p={:.2}", space.space, space.p_occupied));
            }
        }
    }
    let total: u32 = confusion.iter().flatten().sum();
    let accuracy = f64::from(confusion[0][0] + confusion[1][1]) / f64::from(total);
    let recall = |s: usize| f64::from(confusion[s][s]) / f64::from(confusion[s][0] + confusion[s][1]);
    eprintln!(
        "aerial lot, {total} bays: accuracy {:.2} %, free read free {:.2} %, occupied read occupied {:.2} %; \
         p(occupied) at least {weakest_car:.3} with a car, at most {weakest_empty:.3} without; misread: {misread:?}",
        100.0 * accuracy,
        100.0 * recall(0),
        100.0 * recall(1)
    );
    assert!(confusion[0][0] > 100 && confusion[1][1] > 100, "both states are well represented: {confusion:?}");
    assert!(accuracy >= 0.98, "accuracy {accuracy:.4}: {misread:?}");
    assert!(recall(0) >= 0.97 && recall(1) >= 0.97, "{confusion:?}: {misread:?}");
}

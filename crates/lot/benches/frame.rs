//! Guards the per-frame cost of a lot camera: warping N spaces with precomputed sampling maps
//! and the whole read (warp + one batched inference), for 10 and 50 spaces of a 1280×720 frame.
//! `valet bench lot` prints the full table (10–200 spaces, decode separately).

use criterion::{Criterion, criterion_group, criterion_main};
use valet_lot::synthetic::grid_layout;
use valet_lot::{CameraId, LotReader, WarpMode};
use valet_occupancy::OccupancyClassifier;

fn frame(c: &mut Criterion) {
    let jpeg = valet_imaging::synthetic::photo_jpeg(1280, 720, None, 3);
    let frame = valet_imaging::decode(&jpeg, &valet_imaging::DecodeLimits::default()).unwrap().image;
    let classifier = std::sync::Arc::new(OccupancyClassifier::bundled().unwrap());
    let cam = CameraId::new("cam1");
    for n in [10, 50] {
        let reader = LotReader::new(grid_layout(n, 1280, 720), classifier.clone(), WarpMode::default());
        reader.plan(&cam, 1280, 720).unwrap();
        c.bench_function(&format!("warp_{n}_spaces"), |b| b.iter(|| reader.patches(&cam, &frame).unwrap()));
        c.bench_function(&format!("read_{n}_spaces"), |b| b.iter(|| reader.read(&cam, &frame).unwrap()));
    }
}

criterion_group!(benches, frame);
criterion_main!(benches);

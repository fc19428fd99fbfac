//! Guards occupancy inference speed: one patch, and a warm batch of 50 (target ≤ 0.3 ms per patch
//! on a 2-core machine), for the bundled model and the faithful mAlexNet through the same engine.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use valet_imaging::DecodeLimits;
use valet_occupancy::OccupancyClassifier;

fn patches(n: usize) -> Vec<image::RgbImage> {
    (0..n as u64)
        .map(|seed| {
            let jpeg = valet_imaging::synthetic::photo_jpeg(150, 150, None, seed);
            valet_imaging::decode(&jpeg, &DecodeLimits::default()).unwrap().image
        })
        .collect()
}

fn classify(c: &mut Criterion) {
    let models = [
        ("occupancy", OccupancyClassifier::bundled().unwrap()),
        ("malexnet", OccupancyClassifier::reference_malexnet().unwrap()),
    ];
    let batch = patches(50);
    let mut group = c.benchmark_group("classify");
    for (name, model) in &models {
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("one_patch", name), &batch[..1], |b, p| {
            b.iter(|| model.classify(p).unwrap())
        });
        group.throughput(Throughput::Elements(50));
        group.bench_with_input(BenchmarkId::new("batch_of_50", name), &batch[..], |b, p| {
            b.iter(|| model.classify(p).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, classify);
criterion_main!(benches);

//! Guards against regressions in decode time of the prototype's four problem files (205 KB to
//! 37 MB / 162 MP, the big ones through DCT scaling) and in the per-patch model resizes.
//!
//! The files are regenerated once into a temporary directory by `valet_imaging::synthetic`, so
//! the bench needs no fixtures; the 48 MP and 162 MP cases use 10 samples to keep a run short.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use valet_imaging::synthetic::{PROTOTYPE_FILES, photo_jpeg, write_photo_jpeg};
use valet_imaging::{DecodeLimits, decode, resize_rgb};

fn decode_prototype_files(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let limits = DecodeLimits::default();
    let mut group = c.benchmark_group("decode");
    for file in PROTOTYPE_FILES {
        let path = dir.path().join(format!("{}.jpg", file.name));
        let out = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        write_photo_jpeg(out, file.width, file.height, Some(file.target_bytes), 1).expect("write the synthetic photo");
        let bytes = std::fs::read(&path).expect("read it back");
        println!("{}: {}x{}, {} bytes", file.name, file.width, file.height, bytes.len());
        let megapixels = u32::from(file.width) * u32::from(file.height) / 1_000_000;
        group.sample_size(if megapixels > 20 { 10 } else { 30 });
        group.bench_function(file.name, |b| b.iter(|| decode(black_box(&bytes), &limits).expect("decodes")));
    }
    group.finish();
}

fn resize_patches(c: &mut Criterion) {
    let patch = decode(&photo_jpeg(150, 150, None, 1), &DecodeLimits::default()).expect("decodes").image;
    let mut group = c.benchmark_group("resize_150");
    for side in [64, 224] {
        group.bench_function(format!("to_{side}"), |b| b.iter(|| resize_rgb(black_box(&patch), side, side)));
    }
    group.finish();
}

criterion_group!(benches, decode_prototype_files, resize_patches);
criterion_main!(benches);

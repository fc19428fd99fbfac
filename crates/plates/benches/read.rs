//! Guards plate-reading speed per stage on a 1280×720 gate frame: detection, recognition of one crop
//! and of a batch of 4, the whole `read` (3 views and 1), and decode + read from JPEG bytes (the
//! budget a gate camera's frame rate leaves us: 15 ms).

use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use image::RgbImage;
use valet_imaging::DecodeLimits;
use valet_plates::{PlateBox, PlateReader, ReaderOptions};

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;

/// A real US benchmark photo fitted into 1280×720 (black bars), or a synthetic one without the data.
fn gate_frame() -> RgbImage {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/openalpr-benchmarks/endtoend/us");
    let first_jpeg = std::fs::read_dir(&dir).ok().and_then(|entries| {
        let mut jpegs: Vec<_> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
            .collect();
        jpegs.sort();
        jpegs.into_iter().next()
    });
    let Some(path) = first_jpeg else {
        eprintln!("{} is absent: benchmarking a synthetic frame", dir.display());
        let jpeg = valet_imaging::synthetic::photo_jpeg(WIDTH as u16, HEIGHT as u16, None, 1);
        return valet_imaging::decode(&jpeg, &DecodeLimits::default()).unwrap().image;
    };
    eprintln!("benchmarking {}", path.display());
    let photo = valet_imaging::decode(&std::fs::read(&path).unwrap(), &DecodeLimits::default()).unwrap().image;
    let scale = (WIDTH as f32 / photo.width() as f32).min(HEIGHT as f32 / photo.height() as f32);
    let (w, h) = ((photo.width() as f32 * scale) as u32, (photo.height() as f32 * scale) as u32);
    let fitted = valet_imaging::resize_rgb(&photo, w.clamp(1, WIDTH), h.clamp(1, HEIGHT));
    let mut frame = RgbImage::new(WIDTH, HEIGHT);
    image::imageops::replace(&mut frame, &fitted, 0, 0);
    frame
}

fn read(c: &mut Criterion) {
    let reader = PlateReader::bundled().unwrap();
    let frame = gate_frame();
    let plate = PlateBox { x: 540, y: 400, w: 200, h: 60 };
    let crops = reader.rectify(&frame, &[plate; 4], false);
    let options = ReaderOptions::default();

    let mut group = c.benchmark_group("plates");
    group.throughput(Throughput::Elements(1));
    group.bench_function("detect_1280x720", |b| b.iter(|| reader.detect(&frame).unwrap()));
    group.bench_function("rectify_one", |b| b.iter(|| reader.rectify(&frame, &[plate], false)));
    group.bench_function("rectify_one_deskewed", |b| b.iter(|| reader.rectify(&frame, &[plate], true)));
    for n in [1, 4] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("recognize", n), &crops[..n], |b, crops| {
            b.iter(|| reader.recognize(crops).unwrap())
        });
    }
    group.throughput(Throughput::Elements(1));
    group.bench_function("read_1280x720", |b| b.iter(|| reader.read(&frame, &options).unwrap()));
    let one_view = ReaderOptions { views: 1, ..options };
    group.bench_function("read_1280x720_one_view", |b| b.iter(|| reader.read(&frame, &one_view).unwrap()));
    let jpeg = encode_jpeg(&frame);
    let limits = DecodeLimits::default();
    group.bench_function("decode_jpeg_1280x720", |b| b.iter(|| valet_imaging::decode(&jpeg, &limits).unwrap()));
    group.bench_function("decode_and_read_jpeg_1280x720", |b| {
        b.iter(|| reader.read(&valet_imaging::decode(&jpeg, &limits).unwrap().image, &options).unwrap())
    });
    group.finish();
}

/// The frame as a gate camera would send it: baseline JPEG, quality 90, 4:2:0.
fn encode_jpeg(frame: &RgbImage) -> Vec<u8> {
    let mut jpeg = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, 90);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    encoder.encode(frame.as_raw(), frame.width() as u16, frame.height() as u16, jpeg_encoder::ColorType::Rgb).unwrap();
    jpeg
}

criterion_group!(benches, read);
criterion_main!(benches);

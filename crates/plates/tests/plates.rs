//! The bundled plate models end to end: they load, odd frames and hostile bytes never panic, a batch
//! reads like single crops, and benchmark photos (when `../shared/data` is present) are read.

use std::path::Path;

use image::RgbImage;
use valet_imaging::DecodeLimits;
use valet_plates::{PlateBox, PlateReader, ReaderOptions, Region};

fn benchmark(region: &str) -> Option<std::path::PathBuf> {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/openalpr-benchmarks/endtoend").join(region);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is absent (shared data is not on this machine)", dir.display());
        None
    }
}

fn decode(bytes: &[u8]) -> RgbImage {
    valet_imaging::decode(bytes, &DecodeLimits::default()).unwrap().image
}

#[test]
fn the_bundled_models_load_with_their_sidecars() {
    let reader = PlateReader::bundled().unwrap();
    assert_eq!(reader.recognizer_spec().classes(), reader.recognizer_spec().alphabet.len() + 1);
    assert!(reader.detector_spec().long_side >= 32);
}

#[test]
fn tiny_and_odd_shaped_frames_read_without_panicking() {
    let reader = PlateReader::bundled().unwrap();
    for (w, h) in [(1, 1), (5, 300), (300, 5)] {
        for deskew in [false, true] {
            let frame = RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 13) as u8, (y * 7) as u8, 128]));
            let options = ReaderOptions { deskew, ..ReaderOptions::default() };
            let reading = reader.read(&frame, &options).unwrap();
            for plate in &reading.plates {
                assert!(plate.bbox.x + plate.bbox.w <= w && plate.bbox.y + plate.bbox.h <= h, "{w}×{h}: {plate:?}");
            }
        }
    }
}

#[test]
fn random_bytes_are_a_decode_error_not_a_panic() {
    // A fixed xorshift stream: the same bytes every run.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    };
    for magic in [&b""[..], &[0xFF, 0xD8, 0xFF], b"\x89PNG\r\n\x1a\n"] {
        for len in [0, 1, 64, 4096] {
            let mut bytes = magic.to_vec();
            bytes.extend(noise(len));
            assert!(valet_imaging::decode(&bytes, &DecodeLimits::default()).is_err(), "{} bytes after {magic:?}", len);
        }
    }
}

#[test]
fn a_60000_pixel_square_jpeg_is_refused_from_its_header() {
    let bomb = valet_imaging::synthetic::bomb_jpeg(60000, 60000);
    let err = valet_imaging::decode(&bomb, &DecodeLimits::default()).unwrap_err();
    assert!(err.is_too_large(), "{err}");
}

#[test]
fn a_batch_of_crops_reads_like_each_crop_alone() {
    let reader = PlateReader::bundled().unwrap();
    let frame = decode(&valet_imaging::synthetic::photo_jpeg(1280, 720, None, 3));
    let boxes = [
        PlateBox { x: 100, y: 500, w: 180, h: 50 },
        PlateBox { x: 600, y: 400, w: 120, h: 40 },
        PlateBox { x: 900, y: 600, w: 200, h: 60 },
    ];
    let crops = reader.rectify(&frame, &boxes, false);
    let together = reader.recognize(&crops).unwrap();
    for (crop, batched) in crops.iter().zip(&together) {
        let alone = &reader.recognize(std::slice::from_ref(crop)).unwrap()[0];
        assert_eq!(alone.text, batched.text);
        assert!((alone.confidence - batched.confidence).abs() < 1e-4);
    }
    assert!(reader.recognize(&[]).unwrap().is_empty());
}

#[test]
fn brazilian_benchmark_plates_are_found_and_mostly_read() {
    let Some(dir) = benchmark("br") else { return };
    let reader = PlateReader::bundled().unwrap();
    let options = ReaderOptions { region: Region::Br, top_n: 5, ..ReaderOptions::default() };
    let (mut found, mut read, mut n) = (0, 0, 0);
    for name in ["AYO9034", "AZJ6991", "FZB9581", "JGZ3298", "JIT7463", "MTW5608", "NTH0518", "OKM0944"] {
        let labels =
            valet_plates::eval::parse_labels(&std::fs::read_to_string(dir.join(format!("{name}.txt"))).unwrap())
                .unwrap();
        let frame = decode(&std::fs::read(dir.join(&labels[0].file)).unwrap());
        let reading = reader.read(&frame, &options).unwrap();
        let outcome = valet_plates::eval::score(&labels[0], &reading.plates);
        n += 1;
        found += usize::from(outcome.found);
        read += usize::from(outcome.top1);
    }
    eprintln!("{found}/{n} found, {read}/{n} read exactly");
    // These photos are training data: this checks the Rust path end to end (crop, normalisation,
    // CTC, formats), not generalisation; `valet eval plates --only models/plates-holdout.txt` does.
    assert_eq!(found, n, "{found}/{n} found");
    assert!(read * 8 >= n * 7, "{read}/{n} read exactly");
}

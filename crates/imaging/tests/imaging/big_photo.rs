//! The prototype's crash: a 37 MB / 162 MP JPEG must decode (downscaled) in well under 512 MB,
//! and generating it must not need its raster in memory either.
//!
//! Each measurement runs in a child process (this test binary re-executed with `--exact` and
//! `VALET_IMAGING_CHILD` set) and reads its own `VmHWM`, so the figure is the operation's
//! peak, not that of whatever else the test run did. Linux only: elsewhere the tests say so
//! and skip.

use std::process::Command;

use valet_imaging::synthetic::{PROTOTYPE_FILES, write_photo_jpeg};
use valet_imaging::{DecodeLimits, decode};

const CHILD: &str = "VALET_IMAGING_CHILD";
const MIB: u64 = 1 << 20;

/// In the child process (the test binary re-run with `CHILD` naming a file): decode the file and
/// print what came out and the peak RSS for the parent to read. Returns whether this is the child.
fn decoded_as_child() -> bool {
    let Ok(path) = std::env::var(CHILD) else { return false };
    let bytes = std::fs::read(path).unwrap();
    let decoded = decode(&bytes, &DecodeLimits::default()).unwrap();
    println!("DECODED {}x{} at 1/{}", decoded.image.width(), decoded.image.height(), decoded.scale_denominator);
    report_peak_rss();
    true
}

fn can_measure_memory() -> bool {
    let can = peak_rss_bytes().is_some();
    if !can {
        println!("skipped: peak RSS is read from /proc/self/status, which this OS lacks");
    }
    can
}

#[test]
fn the_162_megapixel_prototype_photo_decodes_downscaled_in_under_512_mb() {
    if decoded_as_child() || !can_measure_memory() {
        return;
    }
    let file = PROTOTYPE_FILES[3];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("photo-162mp.jpg");
    let out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    write_photo_jpeg(out, file.width, file.height, Some(file.target_bytes), 162).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    let ratio = size as f64 / file.target_bytes as f64;
    assert!((0.85..=1.15).contains(&ratio), "generated {size} bytes");

    let (decoded, peak) = run_child(
        "big_photo::the_162_megapixel_prototype_photo_decodes_downscaled_in_under_512_mb",
        path.to_str().unwrap(),
    );
    println!("{size} byte JPEG decoded to {decoded}, peak RSS {} MiB", peak / MIB);
    assert_eq!(decoded, "3900x2600 at 1/4");
    assert!(peak < 512 * MIB, "peak RSS {} MiB", peak / MIB);
}

#[test]
fn a_12_megapixel_progressive_jpeg_decodes_at_full_size_in_under_200_mb() {
    if decoded_as_child() || !can_measure_memory() {
        return;
    }
    let (width, height) = (4000u16, 3000u16);
    let raster: Vec<u8> = (0..u32::from(width) * u32::from(height))
        .flat_map(|i| {
            let (x, y) = (i % 4000, i / 4000);
            [(x / 16) as u8, (y / 12) as u8, ((x ^ y) & 0x3F) as u8]
        })
        .collect();
    let mut bytes = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut bytes, 85);
    encoder.set_progressive(true);
    encoder.encode(&raster, width, height, jpeg_encoder::ColorType::Rgb).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("progressive-12mp.jpg");
    std::fs::write(&path, &bytes).unwrap();

    let (decoded, peak) = run_child(
        "big_photo::a_12_megapixel_progressive_jpeg_decodes_at_full_size_in_under_200_mb",
        path.to_str().unwrap(),
    );
    // Coefficients (36 MB), colour planes (36 MB) and the RGB output (36 MB), plus the file.
    println!("progressive 12 MP decoded to {decoded}, peak RSS {} MiB", peak / MIB);
    assert_eq!(decoded, "4000x3000 at 1/1");
    assert!(peak < 200 * MIB, "peak RSS {} MiB", peak / MIB);
}

#[test]
fn generating_a_40_megapixel_photo_streams_instead_of_holding_its_raster() {
    if std::env::var(CHILD).is_ok() {
        write_photo_jpeg(std::io::sink(), 8000, 5000, None, 40).unwrap();
        report_peak_rss();
        return;
    }
    let Some(_) = peak_rss_bytes() else {
        println!("skipped: peak RSS is read from /proc/self/status, which this OS lacks");
        return;
    };
    let (_, peak) =
        run_child("big_photo::generating_a_40_megapixel_photo_streams_instead_of_holding_its_raster", "generate");
    // The RGB raster alone would be 120 MB.
    println!("peak RSS generating 40 MP: {} MiB", peak / MIB);
    assert!(peak < 40 * MIB, "peak RSS {} MiB", peak / MIB);
}

/// Runs one test of this binary in a fresh process; returns what it printed after "DECODED "
/// and its peak RSS.
fn run_child(test: &str, argument: &str) -> (String, u64) {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, argument)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "child failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    // libtest prints "test name ... " without a newline, so our lines may follow it.
    let after =
        |marker: &str| stdout.lines().find_map(|line| line.split_once(marker).map(|(_, rest)| rest.trim().to_owned()));
    let peak = after("PEAK_RSS_BYTES=")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("child reported no peak RSS: {stdout}"));
    (after("DECODED ").unwrap_or_default(), peak)
}

fn report_peak_rss() {
    println!("PEAK_RSS_BYTES={}", peak_rss_bytes().unwrap());
}

/// `VmHWM`: the process's peak resident set since it started.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

//! Every layout a camera or a person might send decodes to the right RGB8 pixels.

use image::ExtendedColorType;
use jpeg_encoder::ColorType;
use valet_imaging::synthetic::photo_jpeg;
use valet_imaging::{DecodeLimits, ImageFormat, decode};

use super::{decode_default, jpeg, png, solid_jpeg};

/// JPEG is lossy; solid colours come back within a few levels.
fn assert_close(actual: &[u8], expected: [u8; 3], tolerance: u8) {
    for (a, e) in actual.iter().zip(expected) {
        assert!(a.abs_diff(e) <= tolerance, "got {actual:?}, expected about {expected:?}");
    }
}

#[test]
fn a_1x1_jpeg_and_a_1x1_png_decode() {
    let jpeg = decode_default(&solid_jpeg(1, 1, [200, 100, 50])).unwrap();
    assert_eq!(jpeg.image.dimensions(), (1, 1));
    assert_eq!(jpeg.format, ImageFormat::Jpeg);
    assert_close(&jpeg.image.as_raw()[..3], [200, 100, 50], 4);
    let png = decode_default(&png(&[1, 2, 3], 1, 1, ExtendedColorType::Rgb8)).unwrap();
    assert_eq!(png.image.as_raw(), &[1, 2, 3]);
    assert_eq!(png.format, ImageFormat::Png);
}

#[test]
fn thin_5x300_and_300x5_images_decode_in_both_formats() {
    for (w, h) in [(5u16, 300u16), (300, 5)] {
        let jpeg = decode_default(&solid_jpeg(w, h, [10, 200, 30])).unwrap();
        assert_eq!(jpeg.image.dimensions(), (u32::from(w), u32::from(h)));
        let (w, h) = (u32::from(w), u32::from(h));
        let data = vec![77; (w * h * 3) as usize];
        let png = decode_default(&png(&data, w, h, ExtendedColorType::Rgb8)).unwrap();
        assert_eq!(png.image.dimensions(), (w, h));
    }
}

#[test]
fn a_grayscale_jpeg_decodes_to_equal_rgb_channels() {
    let bytes = jpeg(&[128; 16 * 16], 16, 16, ColorType::Luma, false);
    let decoded = decode_default(&bytes).unwrap();
    let pixel = decoded.image.get_pixel(5, 5).0;
    assert_eq!(pixel[0], pixel[1]);
    assert_eq!(pixel[1], pixel[2]);
    assert_close(&pixel, [128, 128, 128], 2);
}

#[test]
fn a_cmyk_jpeg_decodes_to_rgb() {
    // Pure magenta + yellow ink, no cyan or black: red.
    let bytes = jpeg(&[0, 255, 255, 0].repeat(16 * 16), 16, 16, ColorType::Cmyk, false);
    let decoded = decode_default(&bytes).unwrap();
    assert_close(&decoded.image.get_pixel(8, 8).0, [255, 0, 0], 6);
}

#[test]
fn a_progressive_jpeg_within_budget_decodes() {
    let data = [30u8, 60, 90].repeat(320 * 240);
    let bytes = jpeg(&data, 320, 240, ColorType::Rgb, true);
    let decoded = decode_default(&bytes).unwrap();
    assert_eq!(decoded.image.dimensions(), (320, 240));
    assert_close(&decoded.image.get_pixel(100, 100).0, [30, 60, 90], 4);
}

#[test]
fn a_jpeg_over_the_output_budget_is_decoded_at_the_smallest_scale_that_fits() {
    let limits = DecodeLimits { max_output_pixels: 1_000_000, ..DecodeLimits::default() };
    let decoded = decode(&photo_jpeg(4000, 3000, None, 1), &limits).unwrap();
    // 1/2 would be 3 MP; 1/4 is 0.75 MP.
    assert_eq!(decoded.scale_denominator, 4);
    assert_eq!(decoded.image.dimensions(), (1000, 750));
    assert_eq!((decoded.source_width, decoded.source_height), (4000, 3000));
}

#[test]
fn a_jpeg_within_the_output_budget_is_decoded_at_full_size() {
    let decoded = decode_default(&photo_jpeg(1001, 333, None, 1)).unwrap();
    assert_eq!(decoded.scale_denominator, 1);
    assert_eq!(decoded.image.dimensions(), (1001, 333));
}

#[test]
fn grayscale_alpha_and_16_bit_pngs_decode_to_rgb8() {
    // `image` takes 16-bit samples as native-endian u16s.
    let wide = |samples: &[u16]| -> Vec<u8> { samples.iter().flat_map(|s| s.to_ne_bytes()).collect() };
    let cases: [(Vec<u8>, ExtendedColorType, [u8; 3]); 6] = [
        (vec![90], ExtendedColorType::L8, [90, 90, 90]),
        (vec![90, 0], ExtendedColorType::La8, [90, 90, 90]),
        (vec![10, 20, 30, 0], ExtendedColorType::Rgba8, [10, 20, 30]),
        (wide(&[0x1234]), ExtendedColorType::L16, [0x12, 0x12, 0x12]),
        (wide(&[0xFFFF, 0x8000, 0]), ExtendedColorType::Rgb16, [255, 128, 0]),
        (wide(&[0x1000, 0x2000, 0x3000, 0]), ExtendedColorType::Rgba16, [16, 32, 48]),
    ];
    for (pixel, color, expected) in cases {
        let bytes = png(&pixel.repeat(3 * 2), 3, 2, color);
        let decoded = decode_default(&bytes).unwrap_or_else(|e| panic!("{color:?}: {e}"));
        assert_eq!(decoded.image.dimensions(), (3, 2));
        // 16-bit samples round to the nearest 8-bit level.
        assert_close(&decoded.image.get_pixel(2, 1).0, expected, 1);
    }
}

#[test]
fn a_palette_png_decodes_to_its_palette_colours() {
    let bytes = palette_png(4, 2, &[[255, 0, 0], [0, 0, 255]], &[0, 1, 1, 0, 1, 0, 0, 1]);
    let decoded = decode_default(&bytes).unwrap();
    assert_eq!(decoded.image.get_pixel(0, 0).0, [255, 0, 0]);
    assert_eq!(decoded.image.get_pixel(1, 0).0, [0, 0, 255]);
    assert_eq!(decoded.image.get_pixel(3, 1).0, [0, 0, 255]);
}

/// An 8-bit indexed PNG, written by hand because `image` only encodes direct colour. The image
/// data is a stored (uncompressed) zlib block.
fn palette_png(width: u32, height: u32, palette: &[[u8; 3]], indices: &[u8]) -> Vec<u8> {
    let mut raw = Vec::new();
    for row in indices.chunks(width as usize) {
        raw.push(0); // filter: none
        raw.extend_from_slice(row);
    }
    let len = u16::try_from(raw.len()).unwrap();
    let mut zlib = vec![0x78, 0x01, 0x01];
    zlib.extend_from_slice(&len.to_le_bytes());
    zlib.extend_from_slice(&(!len).to_le_bytes());
    zlib.extend_from_slice(&raw);
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());

    let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    let ihdr = [&width.to_be_bytes()[..], &height.to_be_bytes(), &[8, 3, 0, 0, 0]].concat();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"PLTE", &palette.concat());
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = !0u32;
    for &byte in kind.iter().chain(data) {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    out.extend_from_slice(&(!crc).to_be_bytes());
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    b << 16 | a
}

#[test]
fn a_camera_frame_decodes_the_same_on_the_fast_and_the_careful_path() {
    // Data after the end-of-image marker sends the same frame through `jpeg-decoder` instead of
    // `zune-jpeg`; the two may round differently, but never by more than a couple of levels.
    let frame = photo_jpeg(640, 360, None, 7);
    let mut trailed = frame.clone();
    trailed.extend_from_slice(b"camera vendor trailer");
    let (fast, careful) = (decode_default(&frame).unwrap().image, decode_default(&trailed).unwrap().image);
    assert_eq!(fast.dimensions(), careful.dimensions());
    let diffs: Vec<u32> = fast.as_raw().iter().zip(careful.as_raw()).map(|(a, b)| u32::from(a.abs_diff(*b))).collect();
    let mean = diffs.iter().sum::<u32>() as f64 / diffs.len() as f64;
    assert!(mean < 1.0 && diffs.iter().all(|&d| d <= 8), "mean {mean}, max {:?}", diffs.iter().max());
}

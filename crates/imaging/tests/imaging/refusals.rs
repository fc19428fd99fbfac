//! What `decode` refuses, and how fast: bombs, foreign data, truncation, corruption.

use std::time::{Duration, Instant};

use valet_imaging::synthetic::{bomb_jpeg, bomb_png, bomb_progressive_jpeg, photo_jpeg};
use valet_imaging::{DecodeError, DecodeLimits, SizeLimit, decode};

use super::{assert_error, decode_default, png, solid_jpeg};

/// A refusal from the header alone takes microseconds; 100 ms leaves room for a loaded CI
/// machine while still failing if the decoder started filling a multi-gigabyte raster.
const HEADER_ONLY: Duration = Duration::from_millis(100);

fn assert_refused_from_header(bytes: &[u8], side: u32) {
    let started = Instant::now();
    let result = decode_default(bytes);
    let elapsed = started.elapsed();
    println!("{side}×{side} refused in {elapsed:?}");
    let error = assert_error!(result, DecodeError::TooLarge { .. });
    assert!(error.is_too_large());
    let DecodeError::TooLarge { width, height, limit } = error else { unreachable!() };
    assert_eq!((width, height), (side, side));
    assert_eq!(limit, SizeLimit::SourcePixels { max: 200_000_000 });
    assert!(elapsed < HEADER_ONLY, "took {elapsed:?}: the decoder did real work");
}

#[test]
fn jpeg_bombs_claiming_30000_and_60000_pixels_square_are_refused_from_the_header() {
    for side in [30_000, 60_000] {
        assert_refused_from_header(&bomb_jpeg(side, side), u32::from(side));
    }
}

#[test]
fn png_bombs_claiming_30000_and_60000_pixels_square_are_refused_from_the_header() {
    for side in [30_000, 60_000] {
        assert_refused_from_header(&bomb_png(side, side), side);
    }
}

#[test]
fn a_progressive_jpeg_whose_coefficients_exceed_the_memory_budget_is_refused() {
    // 192 MP passes the source budget and fits 16 MP at 1/4, but its coefficient store would
    // be 384 MB whatever the scale.
    let started = Instant::now();
    let result = decode_default(&bomb_progressive_jpeg(16_000, 12_000));
    let error = assert_error!(result, DecodeError::TooLarge { .. });
    assert!(started.elapsed() < HEADER_ONLY);
    let DecodeError::TooLarge { limit, .. } = &error else { unreachable!() };
    assert!(matches!(limit, SizeLimit::AllocBytes { needed, .. } if *needed > 256 << 20));
    assert!(error.to_string().contains("progressive"), "{error}");
}

#[test]
fn a_png_over_the_output_budget_is_refused_rather_than_decoded() {
    let error = assert_error!(decode_default(&bomb_png(5000, 5000)), DecodeError::TooLarge { .. });
    let DecodeError::TooLarge { limit, .. } = error else { unreachable!() };
    assert_eq!(limit, SizeLimit::OutputPixels { max: 16_000_000 });
}

#[test]
fn a_jpeg_too_big_even_at_one_eighth_scale_is_refused() {
    let limits = DecodeLimits { max_output_pixels: 1_000, ..DecodeLimits::default() };
    let result = decode(&solid_jpeg(1000, 1000, [9, 9, 9]), &limits);
    assert_error!(result, DecodeError::TooLarge { limit: SizeLimit::OutputPixels { .. }, .. });
}

#[test]
fn an_empty_body_is_refused_as_empty() {
    let error = assert_error!(decode_default(&[]), DecodeError::Empty);
    assert!(!error.is_too_large());
}

#[test]
fn random_bytes_are_refused_as_an_unsupported_format() {
    let mut state = 0x1234_5678_u32;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect();
    let error = assert_error!(decode_default(&noise), DecodeError::UnsupportedFormat { .. });
    assert!(error.to_string().contains("first bytes"), "{error}");
}

#[test]
fn an_http_request_posted_as_an_image_is_named_as_such() {
    let body = b"GET /config/getuser?index=0 HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n";
    let error = assert_error!(decode_default(body), DecodeError::UnsupportedFormat { .. });
    let message = error.to_string();
    assert!(message.contains("HTTP request"), "{message}");
    assert!(message.contains("GET /config/getuser"), "{message}");
}

#[test]
fn an_html_page_posted_as_an_image_is_named_as_such() {
    let body = b"<!DOCTYPE html><html><body>401 Unauthorized</body></html>";
    let error = assert_error!(decode_default(body), DecodeError::UnsupportedFormat { .. });
    assert!(error.to_string().contains("HTML"), "{error}");
}

#[test]
fn a_tls_client_hello_is_named_as_such() {
    // Record header (handshake, TLS 1.0 record version, length), then ClientHello, TLS 1.2.
    let mut hello = vec![0x16, 0x03, 0x01, 0x00, 0xF1, 0x01, 0x00, 0x00, 0xED, 0x03, 0x03];
    hello.extend((0..32).map(|i| i * 7));
    let error = assert_error!(decode_default(&hello), DecodeError::UnsupportedFormat { .. });
    assert!(error.to_string().contains("TLS"), "{error}");
}

#[test]
fn a_body_cut_inside_the_jpeg_signature_is_truncated() {
    assert_error!(decode_default(&[0xFF, 0xD8]), DecodeError::Truncated(_));
}

#[test]
fn a_jpeg_cut_in_half_is_reported_as_truncated() {
    let whole = photo_jpeg(640, 480, None, 1);
    let error = assert_error!(decode_default(&whole[..whole.len() / 2]), DecodeError::Truncated(_));
    assert!(!error.is_too_large());
}

#[test]
fn a_jpeg_cut_before_its_frame_header_is_reported_as_truncated() {
    let whole = photo_jpeg(640, 480, None, 1);
    assert_error!(decode_default(&whole[..30]), DecodeError::Truncated(_));
}

#[test]
fn a_png_cut_in_half_is_reported_as_truncated() {
    let data: Vec<u8> = (0..200 * 100 * 3).map(|i| (i * 31 % 251) as u8).collect();
    let whole = png(&data, 200, 100, image::ExtendedColorType::Rgb8);
    assert_error!(decode_default(&whole[..whole.len() / 2]), DecodeError::Truncated(_));
    assert_error!(decode_default(&whole[..20]), DecodeError::Truncated(_));
}

#[test]
fn a_jpeg_with_a_broken_frame_header_is_reported_as_malformed() {
    let mut bytes = solid_jpeg(64, 64, [1, 2, 3]);
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    bytes[sof + 9] = 0; // component count
    let error = assert_error!(decode_default(&bytes), DecodeError::Malformed(_));
    assert!(error.to_string().contains("frame header"), "{error}");
}

#[test]
fn a_png_with_a_bad_checksum_is_reported_as_malformed() {
    let mut bytes = png(&[7; 8 * 8 * 3], 8, 8, image::ExtendedColorType::Rgb8);
    bytes[29] ^= 0xFF; // IHDR's CRC
    assert_error!(decode_default(&bytes), DecodeError::Malformed(_));
}

#[test]
fn no_prefix_or_bit_flip_of_a_valid_image_panics() {
    let jpeg = photo_jpeg(96, 64, None, 5);
    let png = png(&[200; 33 * 17 * 3], 33, 17, image::ExtendedColorType::Rgb8);
    for bytes in [&jpeg, &png] {
        for cut in (0..bytes.len()).step_by(7) {
            let _ = decode_default(&bytes[..cut]);
        }
        let mut state = 99u64;
        for _ in 0..300 {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let mut damaged = bytes.clone();
            let at = (state >> 33) as usize % damaged.len();
            damaged[at] ^= 1 << ((state >> 29) & 7);
            let _ = decode_default(&damaged);
        }
    }
}

/// Found by `fuzz/image_decode` (CI's 5 s run): a progressive JPEG whose scans ask for more bits
/// than they hold. zune-jpeg's progressive path trips its own debug assertion on it (release
/// builds saturate and go on), so progressive files go to jpeg-decoder, which answers plainly.
/// `decode` catches panics either way; this checks that none happens, with a hook that notes a
/// panic on this thread only, since tests run side by side.
#[test]
fn a_progressive_jpeg_whose_scans_run_out_of_bits_decodes_without_a_panic() {
    use std::cell::Cell;
    thread_local!(static PANICKED: Cell<bool> = const { Cell::new(false) });
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICKED.with(|p| p.set(true));
        previous(info);
    }));
    let bytes = include_bytes!("progressive-scan-past-its-bits.jpg");
    let result = decode_default(bytes);
    assert!(!PANICKED.with(Cell::get), "a decoder panicked (caught, but a panic all the same): {result:?}");
}

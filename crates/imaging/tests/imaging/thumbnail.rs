//! `decode_thumbnail`: the cheap look motion gating takes at every camera frame.

use image::ExtendedColorType;
use valet_imaging::synthetic::{bomb_jpeg, photo_jpeg};
use valet_imaging::{DecodeError, DecodeLimits, decode, decode_thumbnail};

use super::{assert_error, png, solid_jpeg};

#[test]
fn a_camera_frame_decodes_at_the_largest_dct_reduction_that_still_reaches_the_side() {
    let limits = DecodeLimits::default();
    // (frame, longest side asked, expected size, expected denominator)
    type Row = ((u16, u16), u32, (u32, u32), u32);
    let table: &[Row] = &[
        ((1280, 720), 160, (160, 90), 8),
        ((960, 720), 160, (240, 180), 4),
        ((1280, 720), 320, (320, 180), 4),
        ((1280, 720), 2000, (1280, 720), 1),
        ((1920, 1080), 100, (240, 135), 8),
        ((64, 48), 160, (64, 48), 1),
    ];
    for &((w, h), side, size, denominator) in table {
        let thumb = decode_thumbnail(&photo_jpeg(w, h, None, 3), side, &limits).unwrap();
        assert_eq!((thumb.image.dimensions(), thumb.scale_denominator), (size, denominator), "{w}×{h} to {side}");
        assert_eq!((thumb.source_width, thumb.source_height), (u32::from(w), u32::from(h)));
    }
}

#[test]
fn a_thumbnail_looks_like_the_frame_it_shrinks() {
    let frame = solid_jpeg(320, 240, [200, 40, 90]);
    let thumb = decode_thumbnail(&frame, 40, &DecodeLimits::default()).unwrap();
    assert_eq!(thumb.image.dimensions(), (40, 30));
    for p in thumb.image.pixels() {
        assert!(p.0.iter().zip([200u8, 40, 90]).all(|(a, e)| a.abs_diff(e) <= 6), "{p:?}");
    }
}

#[test]
fn a_png_thumbnail_is_shrunk_after_decoding() {
    let data = vec![120; 400 * 100 * 3];
    let thumb =
        decode_thumbnail(&png(&data, 400, 100, ExtendedColorType::Rgb8), 100, &DecodeLimits::default()).unwrap();
    assert_eq!((thumb.image.dimensions(), thumb.scale_denominator), ((100, 25), 1));
}

#[test]
fn thumbnails_keep_every_budget_and_refuse_garbage() {
    let limits = DecodeLimits::default();
    // A header bomb is refused from the header, as by `decode`.
    assert!(
        assert_error!(decode_thumbnail(&bomb_jpeg(60000, 60000), 160, &limits), DecodeError::TooLarge { .. })
            .is_too_large()
    );
    assert_error!(
        decode_thumbnail(b"--frame\r\nContent-Type: text/plain", 160, &limits),
        DecodeError::UnsupportedFormat { .. }
    );
    assert_error!(decode_thumbnail(&[], 160, &limits), DecodeError::Empty);
    let frame = photo_jpeg(640, 480, None, 5);
    assert_error!(
        decode_thumbnail(&frame[..frame.len() / 3], 80, &limits),
        DecodeError::Truncated(_) | DecodeError::Malformed(_)
    );
    // A budget smaller than the thumbnail asked for still wins: the reduction goes further.
    let tight = DecodeLimits { max_output_pixels: 80 * 60, ..limits };
    assert_eq!(decode_thumbnail(&frame, 640, &tight).unwrap().image.dimensions(), (80, 60));
    assert_eq!(decode(&frame, &tight).unwrap().image.dimensions(), (80, 60));
}

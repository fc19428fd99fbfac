//! `resize_rgb`: output sizes, and parity with Pillow's `Image.resize(BILINEAR)`.

use image::RgbImage;
use valet_imaging::resize_rgb;

/// The pattern the Pillow reference below was computed from; sharp, wrapping values make any
/// difference in filter support or rounding show.
fn pattern(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([((x * 37 + y * 11) % 256) as u8, ((x * x + y * 5) % 256) as u8, ((x * y * 3 + 40) % 256) as u8])
    })
}

/// `pattern(23, 17).resize((7, 5), Image.BILINEAR).tobytes()` with Pillow 13.0.0.
const PILLOW_23X17_TO_7X5: [u8; 105] = [
    71, 11, 47, 161, 30, 60, 94, 69, 75, 154, 131, 90, 96, 164, 106, 150, 79, 113, 110, 175, 119, 104, 26, 60, 160, 45,
    101, 100, 84, 145, 162, 146, 161, 94, 173, 140, 157, 92, 114, 87, 175, 124, 140, 43, 75, 129, 62, 146, 118, 101,
    151, 145, 163, 97, 110, 143, 123, 152, 97, 135, 91, 152, 127, 167, 60, 90, 102, 79, 160, 148, 118, 97, 105, 177,
    147, 140, 117, 136, 122, 111, 124, 119, 167, 140, 172, 75, 103, 98, 94, 140, 165, 133, 119, 94, 188, 133, 156, 95,
    142, 94, 126, 132, 151, 138, 124,
];

/// `pattern(5, 4).resize((11, 9), Image.BILINEAR).tobytes()` with Pillow 13.0.0.
const PILLOW_5X4_TO_11X9: [u8; 297] = [
    0, 0, 40, 7, 0, 40, 24, 1, 40, 40, 1, 40, 57, 3, 40, 74, 4, 40, 91, 6, 40, 108, 9, 40, 124, 12, 40, 141, 15, 40,
    148, 16, 40, 2, 1, 40, 9, 1, 40, 26, 2, 40, 42, 2, 41, 59, 4, 41, 76, 5, 41, 93, 7, 41, 110, 10, 42, 126, 13, 42,
    143, 16, 42, 150, 17, 42, 7, 3, 40, 14, 3, 41, 31, 4, 41, 47, 4, 42, 64, 6, 43, 81, 7, 44, 98, 9, 44, 115, 12, 46,
    131, 15, 46, 148, 18, 47, 155, 19, 47, 12, 5, 40, 19, 5, 41, 36, 6, 42, 52, 6, 43, 69, 8, 45, 86, 9, 46, 103, 11,
    47, 120, 14, 49, 136, 17, 51, 153, 20, 52, 160, 21, 53, 17, 8, 40, 24, 8, 41, 41, 9, 43, 57, 9, 45, 74, 11, 47, 91,
    12, 49, 108, 14, 51, 125, 17, 53, 141, 20, 55, 158, 23, 57, 165, 24, 58, 21, 10, 40, 28, 10, 41, 45, 11, 44, 61,
    11, 47, 78, 13, 49, 95, 14, 52, 112, 16, 55, 129, 19, 57, 145, 22, 59, 162, 25, 62, 169, 26, 63, 26, 12, 40, 33,
    12, 41, 50, 13, 45, 66, 13, 48, 83, 15, 51, 100, 16, 54, 117, 18, 58, 134, 21, 60, 150, 24, 64, 167, 27, 67, 174,
    28, 69, 31, 14, 40, 38, 14, 42, 55, 15, 46, 71, 15, 49, 88, 17, 53, 105, 18, 57, 122, 20, 61, 139, 23, 64, 155, 26,
    68, 172, 29, 72, 179, 30, 74, 33, 15, 40, 40, 15, 42, 57, 16, 46, 73, 16, 50, 90, 18, 54, 107, 19, 58, 124, 21, 62,
    141, 24, 66, 157, 27, 70, 174, 30, 74, 181, 31, 76,
];

/// Asserts no sample is more than one level from Pillow's, and prints how many differ at all.
///
/// `fast_image_resize` and Pillow both compute the bilinear convolution in fixed point but
/// round their coefficients differently, so an exact match is not on offer; one level is far
/// below anything the models can notice.
fn assert_within_one_level(ours: &RgbImage, pillow: &[u8]) {
    assert_eq!(ours.as_raw().len(), pillow.len());
    let differences: Vec<u8> = ours.as_raw().iter().zip(pillow).map(|(a, b)| a.abs_diff(*b)).collect();
    let largest = differences.iter().max().copied().unwrap_or(0);
    let differing = differences.iter().filter(|&&d| d > 0).count();
    println!("{differing} of {} samples differ from Pillow, by at most {largest}", pillow.len());
    assert!(largest <= 1, "a sample differs from Pillow by {largest} levels");
}

#[test]
fn shrinking_matches_pillow_bilinear() {
    let ours = resize_rgb(&pattern(23, 17), 7, 5);
    assert_within_one_level(&ours, &PILLOW_23X17_TO_7X5);
}

#[test]
fn enlarging_matches_pillow_bilinear() {
    let ours = resize_rgb(&pattern(5, 4), 11, 9);
    assert_within_one_level(&ours, &PILLOW_5X4_TO_11X9);
}

#[test]
fn a_150_pixel_patch_resizes_to_the_64_and_224_pixel_model_inputs() {
    let patch = pattern(150, 150);
    assert_eq!(resize_rgb(&patch, 64, 64).dimensions(), (64, 64));
    assert_eq!(resize_rgb(&patch, 224, 224).dimensions(), (224, 224));
    assert_eq!(resize_rgb(&patch, 300, 5).dimensions(), (300, 5));
}

#[test]
fn resizing_to_or_from_nothing_gives_an_empty_image_instead_of_panicking() {
    assert_eq!(resize_rgb(&pattern(10, 10), 0, 64).dimensions(), (0, 64));
    assert_eq!(resize_rgb(&RgbImage::new(0, 0), 64, 64).dimensions(), (64, 64));
}

//! Fuzz target: `valet_imaging::decode` and `decode_thumbnail`, the one decoder of untrusted images.
//!
//! Invariants: neither panics; a decoded image is non-empty, within the output budget, and its
//! size is the source's divided (rounded up) by the DCT scale, which is 1, 2, 4 or 8.

#![no_main]

use libfuzzer_sys::fuzz_target;
use valet_imaging::{DecodeLimits, Decoded, ImageFormat};

/// Tighter than the server's defaults so that one input costs milliseconds, not seconds: a 4 KB
/// input may claim any size, and the budgets are what stop it.
const LIMITS: DecodeLimits =
    DecodeLimits { max_source_pixels: 4_000_000, max_output_pixels: 1_000_000, max_alloc_bytes: 64 << 20 };

fn check(decoded: &Decoded) {
    let (w, h) = decoded.image.dimensions();
    assert!(w > 0 && h > 0, "an empty raster was returned");
    assert!(u64::from(w) * u64::from(h) <= LIMITS.max_output_pixels, "{w}×{h} is over the output budget");
    assert!(
        u64::from(decoded.source_width) * u64::from(decoded.source_height) <= LIMITS.max_source_pixels,
        "a source of {}×{} passed the source budget",
        decoded.source_width,
        decoded.source_height
    );
    assert!([1, 2, 4, 8].contains(&decoded.scale_denominator), "scale 1/{}", decoded.scale_denominator);
    assert_eq!(decoded.image.as_raw().len(), w as usize * h as usize * 3);
}

fuzz_target!(|bytes: &[u8]| {
    if let Ok(decoded) = valet_imaging::decode(bytes, &LIMITS) {
        check(&decoded);
        let s = decoded.scale_denominator;
        assert_eq!(decoded.image.dimensions(), (decoded.source_width.div_ceil(s), decoded.source_height.div_ceil(s)));
        if decoded.format == ImageFormat::Png {
            assert_eq!(s, 1, "a PNG has no reduced decode");
        }
    }
    let max_side = bytes.first().map_or(64, |b| u32::from(*b) + 1);
    if let Ok(decoded) = valet_imaging::decode_thumbnail(bytes, max_side, &LIMITS) {
        check(&decoded);
        if decoded.format == ImageFormat::Png {
            let (w, h) = decoded.image.dimensions();
            assert!(w.max(h) <= max_side, "a PNG thumbnail of {w}×{h} for a side of {max_side}");
        }
    }
});

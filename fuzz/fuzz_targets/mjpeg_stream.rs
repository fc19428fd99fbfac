//! Fuzz target: an MJPEG camera stream (`multipart/x-mixed-replace`): the boundary parameter of its
//! content type, and the incremental part parser fed the same bytes in different chunkings.
//!
//! The input is the answer's `Content-Type` on the first line, then the stream.
//!
//! Invariants: no panic; the parts (and errors) do not depend on how the bytes were chunked; the
//! parts together are never longer than the stream; every part is a JPEG (starts FF D8 FF).

#![no_main]

use libfuzzer_sys::fuzz_target;
use valet_cameras::fuzzing::{mjpeg_boundary, mjpeg_parts};

fuzz_target!(|input: &[u8]| {
    let (content_type, stream) = match input.iter().position(|b| *b == b'\n') {
        Some(at) => (String::from_utf8_lossy(&input[..at]), &input[at + 1..]),
        None => (String::from_utf8_lossy(input), &[][..]),
    };
    let boundary = mjpeg_boundary(&content_type);
    if let Some(token) = &boundary {
        assert!(!token.is_empty() && !token.starts_with('-'), "{token:?}");
    }
    let boundary = boundary.unwrap_or_else(|| "frame".to_owned());
    let whole = mjpeg_parts(&boundary, stream, stream.len());
    for chunk in [1, 3, 64] {
        assert_eq!(mjpeg_parts(&boundary, stream, chunk), whole, "chunks of {chunk} bytes changed the parts");
    }
    let total: usize = whole.iter().filter_map(|p| p.as_ref().ok()).map(Vec::len).sum();
    assert!(total <= stream.len());
    for part in whole.iter().flatten() {
        assert!(part.starts_with(&[0xFF, 0xD8, 0xFF]));
    }
});

//! Fuzz target: CloudEvents binary content mode, `CloudEvent::from_http` on arbitrary headers and
//! body (structured mode too, when the content type says so).
//!
//! Invariants: no panic; an event that was read writes back (`write_headers`) as headers that
//! read as the same event (its time to the microsecond `time` carries), and its structured form
//! reads back as the same event too.

#![no_main]

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use valet_fuzz::assert_same_event;
use valet_server::functions::CloudEvent;

/// The input is a request's head and body: `name: value` lines, a blank line, the body. Lines
/// that are no valid header are skipped.
fn request(input: &[u8]) -> (HeaderMap, Bytes) {
    let (head, body) = match input.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&input[..at], &input[at + 2..]),
        None => (input, &[][..]),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
        let value = line[colon + 1..].strip_prefix(b" ").unwrap_or(&line[colon + 1..]);
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(&line[..colon]), HeaderValue::from_bytes(value)) {
            headers.append(name, value);
        }
    }
    (headers, Bytes::copy_from_slice(body))
}

fuzz_target!(|input: &[u8]| {
    let (headers, body) = request(input);
    let Ok(event) = CloudEvent::from_http(&headers, body) else { return };

    // Binary mode tells structured mode by this content type, so such data cannot travel in it.
    if event.content_type.as_deref().is_some_and(|t| t.starts_with("application/cloudevents+json")) {
        return;
    }
    let mut written = HeaderMap::new();
    event.write_headers(&mut written);
    let again = CloudEvent::from_http(&written, event.data.clone())
        .unwrap_or_else(|e| panic!("{event:?} was read, but its own headers {written:?} are refused: {e}"));
    assert_same_event(&event, &again);

    let structured = event.to_structured();
    let again = CloudEvent::from_structured(&structured)
        .unwrap_or_else(|e| panic!("{event:?} was read, but its structured form {structured} is refused: {e}"));
    assert_same_event(&event, &again);
});

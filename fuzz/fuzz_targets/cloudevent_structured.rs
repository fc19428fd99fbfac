//! Fuzz target: CloudEvents structured content mode, `CloudEvent::from_structured` on arbitrary
//! text (what a sender posts as `application/cloudevents+json`, and what the inbox replays).
//!
//! Invariants: no panic; an event that was read writes (`to_structured`) a text that reads as the
//! same event (its time to the microsecond `time` carries), and writing that one again gives the
//! same text; its binary-mode headers read back as the same event too.

#![no_main]

use axum::http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use valet_fuzz::assert_same_event;
use valet_server::functions::CloudEvent;

fuzz_target!(|text: &str| {
    let Ok(event) = CloudEvent::from_structured(text) else { return };

    let written = event.to_structured();
    let again = CloudEvent::from_structured(&written)
        .unwrap_or_else(|e| panic!("{event:?} was read, but its own structured form {written} is refused: {e}"));
    assert_same_event(&event, &again);
    assert_eq!(again.to_structured(), written, "writing the event read back changed its text");

    // Binary mode tells structured mode by this content type, so such data cannot travel in it.
    if event.content_type.as_deref().is_some_and(|t| t.starts_with("application/cloudevents+json")) {
        return;
    }
    let mut headers = HeaderMap::new();
    event.write_headers(&mut headers);
    let again = CloudEvent::from_http(&headers, event.data.clone())
        .unwrap_or_else(|e| panic!("{event:?} was read, but its headers {headers:?} are refused: {e}"));
    assert_same_event(&event, &again);
});

//! Fuzz target: a `multipart/form-data` upload to `POST /v1/classify`, read as the handler reads it
//! (axum's `Multipart`, then our choice of part and size limit).
//!
//! The input is the request's `Content-Type` parameters on the first line (after
//! `multipart/form-data; `), then its body; or `form` on the first line, and the rest describes a
//! well-formed form's parts for `arbitrary`.
//!
//! Invariants: no panic; never more than the limit; from a well-formed form the image is exactly
//! the first part with a file name or named `image`/`file`, and a form without one is refused.

#![no_main]

use std::sync::LazyLock;

use axum::body::Body;
use axum::extract::Request;
use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use valet_server::fuzzing::classify_upload;

const BOUNDARY: &str = "valet-fuzz-boundary";

#[derive(Debug, Arbitrary)]
struct Part {
    name: u8,
    file_name: Option<u8>,
    content: Vec<u8>,
}

static RUNTIME: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_current_thread().build().expect("a runtime"));

/// The handler's answer, or `None` when `content_type` is no valid header value (the HTTP server
/// would have refused the request before the handler).
fn upload(content_type: &str, body: Vec<u8>, limit: u64) -> Option<Result<bytes::Bytes, String>> {
    let content_type = axum::http::HeaderValue::from_str(content_type).ok()?;
    let request = Request::builder()
        .method("POST")
        .uri("/v1/classify")
        .header("content-type", content_type)
        .body(Body::from(body))
        .expect("a request of valid parts");
    Some(RUNTIME.block_on(classify_upload(request, limit)))
}

/// The largest image the handler takes here: small, so that the limit is met often.
const LIMIT: u64 = 512;

fuzz_target!(|input: &[u8]| {
    let (first, rest) = match input.iter().position(|b| *b == b'\n') {
        Some(at) => (&input[..at], &input[at + 1..]),
        None => (input, &[][..]),
    };
    if first != b"form" {
        let content_type = format!("multipart/form-data; {}", String::from_utf8_lossy(first));
        if let Some(Ok(image)) = upload(&content_type, rest.to_vec(), LIMIT) {
            assert!(image.len() as u64 <= LIMIT);
        }
        return;
    }
    let Ok(parts) = Vec::<Part>::arbitrary_take_rest(Unstructured::new(rest)) else { return };
    let names = ["image", "file", "other", "image[]", ""];
    let mut body = Vec::new();
    let mut expected = None;
    for part in &parts {
        if part.content.windows(BOUNDARY.len()).any(|w| w == BOUNDARY.as_bytes()) {
            return;
        }
        let name = names[usize::from(part.name) % names.len()];
        body.extend(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"").bytes());
        if let Some(n) = part.file_name {
            body.extend(format!("; filename=\"f{n}.jpg\"").bytes());
        }
        body.extend(b"\r\nContent-Type: application/octet-stream\r\n\r\n");
        body.extend(&part.content);
        body.extend(b"\r\n");
        if expected.is_none() && (part.file_name.is_some() || name == "image" || name == "file") {
            expected = Some(part.content.clone());
        }
    }
    body.extend(format!("--{BOUNDARY}--\r\n").bytes());
    let Some(answer) = upload(&format!("multipart/form-data; boundary={BOUNDARY}"), body, LIMIT) else {
        unreachable!("our own content type is a valid header value")
    };
    match (expected, answer) {
        (Some(image), Ok(read)) => assert_eq!(read, image),
        (Some(image), Err(e)) => assert!(image.len() as u64 > LIMIT, "a {}-byte image was refused: {e}", image.len()),
        (None, Ok(read)) => panic!("a form without an image read as {} bytes", read.len()),
        (None, Err(_)) => {}
    }
});

//! Routes through `oneshot`: auth, answers, every bad input, and what the store keeps.

use std::time::Instant;

use axum::body::Body;
use axum::http::Request;
use valet_imaging::synthetic::{bomb_jpeg, bomb_png, photo_jpeg};

use crate::helpers::{photo, spawn_app, spawn_app_with};

#[tokio::test]
async fn liveness_and_readiness_answer_without_a_key() {
    let app = spawn_app().await;
    let (status, body) = app.call(Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = app.call(Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
}

#[tokio::test]
async fn classify_without_a_key_is_refused_and_names_the_header() {
    let app = spawn_app().await;
    let request = Request::post("/v1/classify").body(Body::from(photo())).unwrap();
    let response = tower::ServiceExt::oneshot(app.router.clone(), request).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let (_, body) = app.call(Request::post("/v1/classify").body(Body::from(photo())).unwrap()).await;
    assert_eq!(body["error"], "missing_api_key");
    assert!(body["message"].as_str().unwrap().contains("Authorization: Bearer"));
}

#[tokio::test]
async fn classify_with_a_wrong_key_is_refused() {
    let app = spawn_app().await;
    for header in ["Bearer valet_0000", "Basic dXNlcjpwYXNz", "Bearer "] {
        let request = Request::post("/v1/classify").header("authorization", header).body(Body::from(photo())).unwrap();
        let (status, body) = app.call(request).await;
        assert_eq!(status, 401, "{header}");
        assert!(body["error"] == "invalid_api_key" || body["error"] == "missing_api_key", "{header}: {body}");
    }
}

#[tokio::test]
async fn classify_with_the_right_key_answers_label_scores_image_and_timings() {
    let app = spawn_app().await;
    let jpeg = photo();
    let (status, body) = app.call(app.classify(jpeg.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert!(["occupied", "free"].contains(&body["label"].as_str().unwrap()));
    let (occ, free) = (body["scores"]["occupied"].as_f64().unwrap(), body["scores"]["free"].as_f64().unwrap());
    assert!((occ + free - 1.0).abs() < 1e-5 && (0.0..=1.0).contains(&occ));
    assert_eq!(body["label"] == "occupied", occ >= 0.5);
    assert_eq!(body["image"]["width"], 320);
    assert_eq!(body["image"]["height"], 240);
    assert_eq!(body["image"]["bytes"], jpeg.len());
    assert_eq!(body["image"]["format"], "jpeg");
    for t in ["receive", "decode", "model", "total"] {
        assert!(body["timings_ms"][t].as_f64().unwrap() >= 0.0, "{t}");
    }
    assert!(body["timings_ms"]["total"].as_f64() >= body["timings_ms"]["decode"].as_f64());
}

#[tokio::test]
async fn a_multipart_upload_is_classified_like_a_raw_body() {
    let app = spawn_app().await;
    let jpeg = photo();
    let mut body = b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nbay 12\r\n--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"bay.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n".to_vec();
    body.extend_from_slice(&jpeg);
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    let request = Request::post("/v1/classify")
        .header("authorization", format!("Bearer {}", app.key))
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(Body::from(body))
        .unwrap();
    let (status, answer) = app.call(request).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["image"]["bytes"], jpeg.len());
    let (_, raw) = app.call(app.classify(jpeg)).await;
    assert_eq!(answer["scores"], raw["scores"], "the same image gets the same scores either way");
}

#[tokio::test]
async fn a_multipart_body_without_a_file_says_so() {
    let app = spawn_app().await;
    let request = Request::post("/v1/classify")
        .header("authorization", format!("Bearer {}", app.key))
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(Body::from("--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--XyZ--\r\n"))
        .unwrap();
    let (status, body) = app.call(request).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("no_image")));
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413_before_and_while_streaming() {
    let settings = valet_server::Settings { max_body_bytes: 10_000, ..Default::default() };
    let app = spawn_app_with(settings).await;
    let big = photo_jpeg(800, 600, Some(40_000), 3);
    assert!(big.len() > 10_000);
    // Announced with Content-Length: refused before reading.
    let (status, body) = app.call(app.classify(big.clone())).await;
    assert_eq!((status, body["error"].as_str()), (413, Some("body_too_large")));
    // Streamed without a length: refused once the limit is crossed.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big.chunks(4096).map(|c| Ok(c.to_vec())).collect();
    let stream = Body::from_stream(futures_util::stream::iter(chunks));
    let (status, body) = app.call(app.classify(stream)).await;
    assert_eq!((status, body["error"].as_str()), (413, Some("body_too_large")));
}

#[tokio::test]
async fn images_that_claim_billions_of_pixels_are_refused_in_milliseconds() {
    let app = spawn_app().await;
    for (name, bomb) in [
        ("jpeg 30000²", bomb_jpeg(30000, 30000)),
        ("jpeg 60000²", bomb_jpeg(60000, 60000)),
        ("png 60000²", bomb_png(60000, 60000)),
    ] {
        let started = Instant::now();
        let (status, body) = app.call(app.classify(bomb)).await;
        let elapsed = started.elapsed();
        assert_eq!((status, body["error"].as_str()), (413, Some("image_too_large")), "{name}: {body}");
        assert!(body["message"].as_str().unwrap().contains("pixels"), "{name}: {body}");
        // Generous: allocating the claimed raster alone would take seconds and gigabytes.
        assert!(elapsed.as_millis() < 500, "{name} took {elapsed:?}");
    }
}

#[tokio::test]
async fn non_images_and_broken_images_get_415_or_422_with_a_reason() {
    let app = spawn_app().await;
    let jpeg = photo();
    let truncated = jpeg[..jpeg.len() / 2].to_vec();
    let mut random = vec![0u8; 4096];
    let mut x = 0x2545_f491_u32;
    for b in &mut random {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let cases: [(&str, Vec<u8>, u16, &str); 5] = [
        ("empty", Vec::new(), 415, "unsupported_image"),
        ("html", b"<html><body>GET /config/getuser</body></html>".to_vec(), 415, "unsupported_image"),
        ("random", random, 415, "unsupported_image"),
        ("truncated jpeg", truncated, 422, "undecodable_image"),
        ("jpeg header only", jpeg[..200].to_vec(), 422, "undecodable_image"),
    ];
    for (name, body, want_status, want_code) in cases {
        let (status, answer) = app.call(app.classify(body)).await;
        assert_eq!((status, answer["error"].as_str()), (want_status, Some(want_code)), "{name}: {answer}");
        assert!(answer["message"].as_str().unwrap().len() > 10, "{name}: the message says what was wrong");
    }
}

#[tokio::test]
async fn the_37_mb_162_megapixel_photo_gets_an_answer() {
    let app = spawn_app().await;
    let huge = photo_jpeg(15600, 10400, Some(37_000_000), 7);
    assert!(huge.len() > 30_000_000, "{} bytes", huge.len());
    let (status, body) = app.call(app.classify(huge.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["image"]["width"].as_u64(), body["image"]["height"].as_u64()), (Some(15600), Some(10400)));
    let decoded = body["image"]["decoded_width"].as_u64().unwrap() * body["image"]["decoded_height"].as_u64().unwrap();
    assert!(decoded <= app.settings.max_decoded_pixels, "decoded downscaled: {decoded} pixels");
}

#[tokio::test]
async fn every_authenticated_request_is_recorded_answered_or_refused() {
    let app = spawn_app().await;
    let jpeg = photo();
    let (_, answer) = app.call(app.classify(jpeg.clone())).await;
    app.call(app.classify(b"not an image".to_vec())).await;
    let records = app.store.recent_classifications(10).await.unwrap();
    assert_eq!(records.len(), 2);
    let (refused, ok) = (&records[0], &records[1]);
    assert_eq!(ok.outcome, "ok");
    assert_eq!(ok.bytes, jpeg.len() as u64);
    assert_eq!((ok.width, ok.height), (Some(320), Some(240)));
    assert_eq!(ok.label.as_deref(), answer["label"].as_str());
    assert!((ok.p_occupied.unwrap() - answer["scores"]["occupied"].as_f64().unwrap()).abs() < 1e-6);
    assert!(ok.decode_ms.is_some() && ok.model_ms.is_some());
    assert_eq!(answer["record_id"].as_i64().unwrap(), 1);
    assert_eq!(refused.outcome, "unsupported_image");
    assert_eq!(refused.label, None);
}

#[tokio::test]
async fn a_scanner_probing_for_admin_pages_gets_a_plain_404() {
    let app = spawn_app().await;
    let (status, body) = app.call(Request::get("/config/getuser?index=0").body(Body::empty()).unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn the_readmes_classify_example_is_what_the_bundled_model_answers() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let example = readme
        .split("```sh\n")
        .find(|block| block.contains("/v1/classify\n"))
        .expect("the README shows a classify example");
    let file = example.split("--data-binary @").nth(1).unwrap().split_whitespace().next().unwrap();
    let shown = example.split_once("/v1/classify\n").unwrap().1.split("\n```").next().unwrap();
    let shown: serde_json::Value = serde_json::from_str(shown).expect("the example's answer is JSON");
    let app = spawn_app().await;
    let image = std::fs::read(format!("{}/../../{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let request = Request::post("/v1/classify")
        .header("authorization", format!("Bearer {}", app.key))
        .header("content-type", "image/png")
        .body(Body::from(image))
        .unwrap();
    let (status, answer) = app.call(request).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["label"], shown["label"], "{answer}");
    assert_eq!(answer["image"], shown["image"], "{answer}");
    for class in ["occupied", "free"] {
        let (got, said) = (answer["scores"][class].as_f64().unwrap(), shown["scores"][class].as_f64().unwrap());
        assert!((got - said).abs() < 1e-4, "{class}: the model says {got}, the README {said}: {answer}");
    }
}

/// Every web page and asset is sent with the strict policy and the usual security headers; the
/// live map's script is a file of its own, since the policy allows no inline script.
#[tokio::test]
async fn web_pages_send_a_strict_content_security_policy_and_the_usual_headers() {
    let app = spawn_app().await;
    for path in ["/", "/signin", "/ops/login", "/ops", "/assets/live-map.js", "/assets/valet.css", "/pay/not-a-link"] {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = tower::ServiceExt::oneshot(app.router.clone(), request).await.unwrap();
        let headers = response.headers();
        let policy = headers.get("content-security-policy").map(|v| v.to_str().unwrap().to_owned());
        let policy = policy.unwrap_or_else(|| panic!("{path} ({}) has no Content-Security-Policy", response.status()));
        assert_eq!(policy, valet_server::CONTENT_SECURITY_POLICY, "{path}");
        for directive in ["default-src 'self'", "script-src 'self' https://js.stripe.com;", "frame-ancestors 'none'"] {
            assert!(policy.contains(directive), "{path}: {policy}");
        }
        assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"), "{policy}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
    }
    // No page carries an inline script for the policy to block.
    let request = Request::get("/").body(Body::empty()).unwrap();
    let response = tower::ServiceExt::oneshot(app.router.clone(), request).await.unwrap();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let page = String::from_utf8_lossy(&body);
    assert!(!page.contains("<script>") && !page.contains(" style=\""), "{page}");
}

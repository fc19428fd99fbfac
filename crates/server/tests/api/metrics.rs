//! `GET /metrics`: OpenMetrics text with what happened (gate decisions, function handling times)
//! and what is (cameras, lot spaces, review queue, open stays), with no key and no plate in it.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use serde_json::json;
use valet_garage::Direction;

use crate::cameras::{Shared, StandIn, passage, stored};
use crate::helpers::{TestApp, spawn_app};

async fn scrape(app: &TestApp) -> String {
    let request = Request::get("/metrics").body(Body::empty()).unwrap();
    let response = tower::ServiceExt::oneshot(app.router.clone(), request).await.unwrap();
    assert_eq!(response.status(), 200);
    let kind = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    String::from_utf8(body.to_vec()).unwrap()
}

/// The value of the sample `name{labels}` exactly as written, if the scrape has it.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.split(' ').next()?.parse().ok())
}

#[tokio::test]
async fn gate_decisions_handling_times_and_the_garage_are_counted_without_a_key_or_a_plate() {
    let app = spawn_app().await;
    let before = scrape(&app).await;
    assert!(before.trim_end().ends_with("# EOF"), "{before}");
    assert_eq!(sample(&before, "valet_open_stays"), Some(0.0), "{before}");

    for (plate, confidence) in [("AB123CD", 0.97), ("ZX987YW", 0.96)] {
        let read = json!({ "camera": "lane-1", "direction": "entry", "text": plate, "confidence": confidence });
        let (status, answer) = app.call(app.json("POST", "/v1/plate-reads", &app.key, read)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["outcome"], "opened", "{answer}");
    }
    let read = json!({ "camera": "lane-1", "direction": "exit", "text": "AB123CD", "confidence": 0.97 });
    let (status, answer) = app.call(app.json("POST", "/v1/plate-reads", &app.key, read)).await;
    assert_eq!(status, 200, "{answer}");
    let text = scrape(&app).await;
    assert_eq!(sample(&text, r#"valet_gate_decisions_total{direction="entry",outcome="opened"}"#), Some(2.0), "{text}");
    let exit =
        format!(r#"valet_gate_decisions_total{{direction="exit",outcome="{}"}}"#, answer["outcome"].as_str().unwrap());
    assert_eq!(sample(&text, &exit), Some(1.0), "{text}");
    assert_eq!(sample(&text, r#"valet_plate_reads_total{camera="lane-1"}"#), Some(3.0), "{text}");
    assert_eq!(sample(&text, "valet_open_stays"), Some(1.0), "{text}");

    // A signed-up driver's stay is charged at the exit: counted by outcome.
    app.charge_from_the_first_minute().await;
    let body = json!({ "plates": ["KM907RS"], "payment_method": "pm_card_visa" });
    let (status, signed) = app.call(app.json("POST", "/v1/drivers", "", body)).await;
    assert_eq!(status, 201, "{signed}");
    for direction in ["entry", "exit"] {
        let (status, answer) = app.read(direction, "KM907RS").await;
        assert_eq!(status, 200, "{answer}");
    }
    let text = scrape(&app).await;
    assert_eq!(sample(&text, r#"valet_charges_total{outcome="succeeded"}"#), Some(1.0), "{text}");
    assert_eq!(sample(&text, r#"valet_gate_decisions_total{direction="exit",outcome="charged"}"#), Some(1.0));
    assert_eq!(sample(&text, "valet_review_queue"), Some(0.0), "{text}");
    assert_eq!(sample(&text, "valet_charges_pending"), Some(0.0), "{text}");
    assert!(sample(&text, "valet_dead_letters").is_some(), "{text}");
    // Nothing claimed and unfinished; then a worker dies holding an event.
    assert!(!text.lines().any(|l| l.starts_with("valet_inbox_in_progress{")), "{text}");
    let store = app.state.gate().store();
    store.claim_event("billing", "died-holding-it", chrono::Utc::now(), chrono::TimeDelta::seconds(60)).await.unwrap();
    let text = scrape(&app).await;
    assert_eq!(sample(&text, r#"valet_inbox_in_progress{function="billing"}"#), Some(1.0), "{text}");
    // The test app's lots are read by its occupancy function: every space unknown before a frame.
    assert!(text.lines().any(|l| l.starts_with("valet_lot_spaces{") && l.contains(r#"state="unknown""#)), "{text}");
    for secret in ["AB123CD", "ZX987YW", "KM907RS", app.key.as_str(), app.operator.as_str()] {
        assert!(!text.contains(secret), "{secret} in the metrics");
    }
}

#[tokio::test]
async fn a_pulled_camera_shows_its_health_and_reads_by_camera() {
    let app = spawn_app().await;
    let puller = Arc::new(StandIn::default());
    valet_server::cameras::spawn(&app.state, Arc::new(Shared(Arc::clone(&puller))));
    app.store
        .gate_cameras()
        .add(&stored("north-in", "http://admin:hunter2@127.0.0.1:9/mjpeg", Direction::Entry))
        .await
        .unwrap();
    let start = std::time::Instant::now();
    while puller.started_names().is_empty() {
        assert!(start.elapsed() < std::time::Duration::from_secs(6), "the camera was not pulled");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    puller.sender("north-in").send(passage("north-in", 7, "KR552TE")).await.unwrap();
    let start = std::time::Instant::now();
    let text = loop {
        let text = scrape(&app).await;
        if sample(&text, r#"valet_plate_reads_total{camera="north-in"}"#) == Some(1.0) {
            break text;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(6), "the passage was not counted:\n{text}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // The stand-in's pull says: connected, 42 frames.
    assert_eq!(sample(&text, r#"valet_camera_connected{camera="north-in"}"#), Some(1.0), "{text}");
    assert_eq!(sample(&text, r#"valet_camera_frames_total{camera="north-in"}"#), Some(42.0), "{text}");
    assert_eq!(sample(&text, r#"valet_camera_reconnects_total{camera="north-in"}"#), Some(0.0), "{text}");
    assert!(!text.contains("hunter2") && !text.contains("KR552TE"), "{text}");
}

/// A camera's frame through the chain of functions (ingest → plate reader → gate): each
/// function's handling time is a histogram.
#[tokio::test]
async fn each_function_handling_an_event_is_timed() {
    let reader = Arc::new(valet_plates::PlateReader::bundled().unwrap());
    let wiring = valet_server::Wiring { plate_reader: Some(reader), ..valet_server::Wiring::default() };
    let app = crate::helpers::spawn_functions(valet_server::Settings::default(), wiring).await;
    let request = Request::post("/v1/gates/lane-in/frames?direction=entry")
        .header("authorization", format!("Bearer {}", app.key))
        .header("content-type", "image/jpeg")
        .body(Body::from(&include_bytes!("../../demo/gate-VL482TG.jpg")[..]))
        .unwrap();
    let (status, answer) = app.call(request).await;
    assert_eq!(status, 200, "{answer}");
    let text = scrape(&app).await;
    for function in ["plate-reader", "gate"] {
        let count = format!(r#"valet_function_handling_seconds_count{{function="{function}",result="ok"}}"#);
        assert_eq!(sample(&text, &count), Some(1.0), "{function}: {text}");
        let buckets = text.lines().filter(|l| {
            l.starts_with("valet_function_handling_seconds_bucket{") && l.contains(&format!(r#"function="{function}""#))
        });
        assert_eq!(buckets.count(), 16, "15 bounds and +Inf for {function}: {text}");
    }
    assert_eq!(sample(&text, r#"valet_plate_reads_total{camera="lane-in"}"#), Some(1.0), "{text}");
}

//! Guidance over HTTP: a bay frame moves the lot's counts, availability answers them, the SSE
//! stream carries them, and frames the layout cannot be read against are refused.

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::helpers::spawn_app;

fn frame(width: u16, height: u16) -> Vec<u8> {
    valet_imaging::synthetic::photo_jpeg(width, height, None, 3)
}

fn post_frame(key: &str, bytes: Vec<u8>) -> Request<Body> {
    Request::post("/v1/lots/grid/frames")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "image/jpeg")
        .body(Body::from(bytes))
        .unwrap()
}

async fn next_event(body: &mut Body) -> String {
    let frame = tokio::time::timeout(Duration::from_secs(10), body.frame()).await.expect("an event in time");
    String::from_utf8(frame.unwrap().unwrap().into_data().unwrap().to_vec()).unwrap()
}

fn total(counts: &Value) -> u64 {
    ["free", "occupied", "unknown"].iter().map(|k| counts["lot"][k].as_u64().unwrap()).sum()
}

#[tokio::test]
async fn a_bay_frame_moves_the_counts_that_availability_and_the_stream_report() {
    let app = spawn_app().await;
    let (status, before) = app.call(app.json("GET", "/v1/lots/grid/availability", "", Value::Null)).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["at"], Value::Null);
    assert_eq!(before["counts"]["lot"]["unknown"], 10, "no frame yet: every space unknown: {before}");
    assert!(before.get("reconciliation").is_none(), "nothing to reconcile before a frame: {before}");

    // Subscribe first: the stream opens with the current availability.
    let events = app.router.clone().oneshot(app.json("GET", "/v1/lots/grid/events", "", Value::Null)).await.unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let mut body = events.into_body();
    let opening = next_event(&mut body).await;
    assert!(opening.starts_with("event: availability"), "{opening}");

    let (status, update) = app.call(post_frame(&app.key, frame(640, 480))).await;
    assert_eq!(status, 200, "{update}");
    assert_eq!(total(&update["counts"]), 10);
    assert_eq!(update["counts"]["lot"]["unknown"], update["counts"]["lot"]["unsure"], "every space read: {update}");
    assert_eq!(update["changes"].as_array().unwrap().len(), 10, "first sight of each space is a change");

    let event = next_event(&mut body).await;
    assert!(event.starts_with("event: counts"), "{event}");
    let data: Value = serde_json::from_str(event.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap();
    assert_eq!(data["counts"], update["counts"]);

    // One car came in through the gate: the gates' balance stands beside the bays' count.
    let read = serde_json::json!({ "camera": "entry-1", "direction": "entry", "text": "AB123CD", "confidence": 0.99 });
    let (status, _) = app.call(app.json("POST", "/v1/plate-reads", &app.key, read)).await;
    assert_eq!(status, 200);
    let (_, after) = app.call(app.json("GET", "/v1/lots/grid/availability", "", Value::Null)).await;
    assert_eq!(after["counts"], update["counts"]);
    assert!(after["at"].is_string());
    let occupied = update["counts"]["lot"]["occupied"].as_i64().unwrap();
    assert_eq!(after["reconciliation"]["gate_inside"], 1, "{after}");
    assert_eq!(after["reconciliation"]["bays_occupied"], occupied);
    assert_eq!(after["reconciliation"]["disagreement"], 1 - occupied);
    let history = app.store.lot_history().latest_frame("grid").await.unwrap();
    assert!(history.is_some(), "the frame is stored with its counts");
}

#[tokio::test]
async fn frames_the_layout_cannot_be_read_against_are_refused() {
    let app = spawn_app().await;
    // Same aspect, half size: read, rescaled (with a warning in the log).
    let (status, body) = app.call(post_frame(&app.key, frame(320, 240))).await;
    assert_eq!(status, 200, "{body}");
    // Another aspect ratio: refused, never guessed.
    let (status, body) = app.call(post_frame(&app.key, frame(640, 360))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("aspect"), "{body}");
    // Not an image, no key, an unknown lot.
    let (status, body) = app.call(post_frame(&app.key, b"not a jpeg".to_vec())).await;
    assert!(matches!(status, 415 | 422), "{status} {body}");
    let (status, _) = app.call(post_frame("", frame(640, 480))).await;
    assert_eq!(status, 401);
    let (status, body) = app.call(app.json("GET", "/v1/lots/nowhere/availability", "", Value::Null)).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")), "{body}");
}

#[tokio::test]
async fn each_frame_publishes_the_counts_retained_for_the_signs() {
    const BROKER: &str = "127.0.0.1:1883";
    if std::net::TcpStream::connect_timeout(&BROKER.parse().unwrap(), Duration::from_secs(1)).is_err() {
        eprintln!("skipping: no MQTT broker answers at {BROKER}");
        return;
    }
    let app = spawn_app().await;
    let prefix = format!("valet-test-{}", std::process::id());
    let (mqtt, _) = valet_server::Mqtt::connect(BROKER, &prefix, 1 << 20, false).unwrap();
    valet_server::signs::spawn(&mqtt, app.state.lots());
    let (status, update) = app.call(post_frame(&app.key, frame(640, 480))).await;
    assert_eq!(status, 200, "{update}");

    // A sign connecting afterwards gets the retained counts at once.
    let mut options = rumqttc::MqttOptions::new(format!("{prefix}-sign"), "127.0.0.1", 1883);
    options.set_keep_alive(Duration::from_secs(5));
    let (sign, mut events) = rumqttc::AsyncClient::new(options, 10);
    let topic = valet_server::signs::topic(&prefix, "grid");
    sign.subscribe(&topic, rumqttc::QoS::AtLeastOnce).await.unwrap();
    let payload = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) = events.poll().await.unwrap() {
                return p.payload;
            }
        }
    })
    .await
    .expect("the counts arrive");
    let published: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(published["counts"], update["counts"]);
    // Clear the retained message so the broker keeps nothing from tests.
    sign.publish(&topic, rumqttc::QoS::AtLeastOnce, true, Vec::<u8>::new()).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(2), events.poll()).await;
}

#[tokio::test]
async fn a_restarted_server_resumes_each_lot_from_its_history() {
    let app = spawn_app().await;
    let (status, update) = app.call(post_frame(&app.key, frame(640, 480))).await;
    assert_eq!(status, 200, "{update}");

    // A new server over the same database: the lots as they were, not ten unknown spaces.
    let restarted = crate::helpers::lots();
    restarted.restore(&app.store.lot_history()).await.unwrap();
    let availability = serde_json::to_value(restarted.get("grid").unwrap().availability()).unwrap();
    assert_eq!(availability["counts"], update["counts"], "{availability}");
    assert_eq!(availability["at"], update["at"]);
    // And a lot with no history starts unknown, as before.
    let fresh = crate::helpers::lots();
    fresh.restore(&valet_store::Store::open_in_memory().await.unwrap().lot_history()).await.unwrap();
    assert_eq!(fresh.get("grid").unwrap().availability().counts.lot.unknown, 10);
}

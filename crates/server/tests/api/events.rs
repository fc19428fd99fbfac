//! `POST /`, the CloudEvents endpoint of a process running some of the functions: what it does
//! with malformed, misrouted, duplicate and out-of-order events, and the dead-letter sink.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use valet_server::{Settings, Wiring};

use crate::helpers::{TestApp, spawn_app, spawn_functions};

async fn gate_only() -> TestApp {
    let wiring = Wiring { functions: "gate,query".parse().unwrap(), ..Wiring::default() };
    spawn_functions(Settings::default(), wiring).await
}

/// (status, ce-type, ce-id, body) of a binary-mode delivery.
async fn deliver(app: &TestApp, id: &str, ty: &str, data: Value) -> (u16, Option<String>, Option<String>, Value) {
    deliver_to(app, "/", id, ty, data).await
}

async fn deliver_to(
    app: &TestApp,
    path: &str,
    id: &str,
    ty: &str,
    data: Value,
) -> (u16, Option<String>, Option<String>, Value) {
    let request = Request::post(path)
        .header("ce-specversion", "1.0")
        .header("ce-id", id)
        .header("ce-source", "/test")
        .header("ce-type", ty)
        .header("content-type", "application/json")
        .body(Body::from(data.to_string()))
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let (ty, id) = (header("ce-type"), header("ce-id"));
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, ty, id, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn read(plate: &str, direction: &str) -> Value {
    json!({ "camera": format!("lane-{direction}"), "direction": direction, "text": plate, "confidence": 0.97 })
}

const PLATE_READ: &str = "io.valet.plate.read.v1";

#[tokio::test]
async fn the_embedded_garage_takes_no_events_from_the_network() {
    let app = spawn_app().await;
    // `/` is the driver portal's page there, and it takes no POST.
    let (status, _, _, _) = deliver(&app, "e1", PLATE_READ, read("AB123CD", "entry")).await;
    assert_eq!(status, 405);
    let (_, sessions) = app.call(app.json("GET", "/v1/sessions", &app.operator, Value::Null)).await;
    assert_eq!(sessions, json!([]), "nothing was decided");
}

#[tokio::test]
async fn a_redelivered_read_gets_the_first_answer_with_the_same_event_id() {
    let app = gate_only().await;
    let (status, ty, first_id, first) = deliver(&app, "e1", PLATE_READ, read("AB123CD", "entry")).await;
    assert_eq!((status, ty.as_deref()), (200, Some("io.valet.session.opened.v1")), "{first}");
    let (status, _, again_id, again) = deliver(&app, "e1", PLATE_READ, read("AB123CD", "entry")).await;
    assert_eq!(status, 200);
    assert_eq!((again_id, &again), (first_id, &first), "replayed, not decided again");
    let (_, sessions) = app.call(app.json("GET", "/v1/sessions?state=open", &app.operator, Value::Null)).await;
    assert_eq!(sessions.as_array().unwrap().len(), 1, "{sessions}");
}

#[tokio::test]
async fn an_exit_read_delivered_before_its_entry_is_decided_and_reviewed_not_lost() {
    let app = gate_only().await;
    // The broker delivered the exit first: no session to close, so the gate says so and queues
    // the read for a person (the car has already been let out by the lane's own rule).
    let (status, ty, _, exit) = deliver(&app, "out", PLATE_READ, read("AB123CD", "exit")).await;
    assert_eq!((status, ty.as_deref()), (200, Some("io.valet.gate.decided.v1")), "{exit}");
    assert_eq!(exit["outcome"], "no_open_session", "{exit}");
    assert_eq!(exit["review_items"].as_array().unwrap().len(), 1, "{exit}");
    // The entry, late: it opens the session, which the review shows next to the exit read.
    let (status, ty, _, entry) = deliver(&app, "in", PLATE_READ, read("AB123CD", "entry")).await;
    assert_eq!((status, ty.as_deref()), (200, Some("io.valet.session.opened.v1")), "{entry}");
}

#[tokio::test]
async fn malformed_and_misrouted_events_are_refused_and_chain_ends_are_accepted() {
    let app = gate_only().await;
    // No ce-* headers at all.
    let request = Request::post("/").header("content-type", "application/json").body(Body::from("{}")).unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 400);
    // A read that is not JSON: refused, not retried forever (400, so the broker dead-letters it).
    let (status, _, _, body) = deliver(&app, "bad", PLATE_READ, json!("not a read")).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_event")), "{body}");
    // A frame for the plate reader, which this process does not run.
    let (status, _, _, body) = deliver(&app, "f", "io.valet.gate.frame.received.v1", Value::Null).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("plate-reader"), "{body}");
    // The end of a chain (nobody consumes charge events): accepted and let go.
    let (status, _, _, _) = deliver(&app, "c", "io.valet.charge.succeeded.v1", json!({})).await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn dead_letters_are_kept_for_operators() {
    let app = gate_only().await;
    let (status, _, _, _) = deliver_to(&app, "/v1/dead-letters", "lost-1", PLATE_READ, read("AB123CD", "exit")).await;
    assert_eq!(status, 202);
    let (status, letters) = app.call(app.json("GET", "/v1/dead-letters", &app.operator, Value::Null)).await;
    assert_eq!(status, 200, "{letters}");
    assert_eq!(letters[0]["event"]["id"], "lost-1", "{letters}");
    assert_eq!(letters[0]["event"]["data"]["text"], "AB123CD", "{letters}");
    let (status, _) = app.call(app.json("GET", "/v1/dead-letters", &app.key, Value::Null)).await;
    assert_eq!(status, 403, "a camera's key does not read them");
}

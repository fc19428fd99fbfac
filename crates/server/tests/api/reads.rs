//! A gate camera's reads at the edge: every number the schema bounds is refused outside its
//! bounds, with nothing stored, so a forged or broken read cannot make a stay free.

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};

use crate::helpers::spawn_app;

fn read(direction: &str, plate: &str) -> Value {
    json!({ "camera": format!("{direction}-1"), "direction": direction, "text": plate, "confidence": 0.98 })
}

#[tokio::test]
async fn reads_outside_the_schemas_bounds_are_refused_and_open_nothing() {
    let app = spawn_app().await;
    let cases: Vec<(&str, Value)> = vec![
        ("a confidence above 1", json!({ "confidence": 7 })),
        ("a negative confidence", json!({ "confidence": -0.1 })),
        ("a candidate's confidence above 1", json!({ "candidates": [{ "text": "AB123CD", "confidence": 1.5 }] })),
        ("a candidate's negative confidence", json!({ "candidates": [{ "text": "AB123CD", "confidence": -2 }] })),
        (
            "more candidates than the schema's maxItems",
            json!({ "candidates": vec![json!({ "text": "AB123CD", "confidence": 0.5 }); 33] }),
        ),
        ("an entry dated years ahead", json!({ "at": "2030-01-01T00:00:00Z" })),
        ("an entry 10 minutes ahead of the garage's clock", json!({ "at": Utc::now() + TimeDelta::minutes(10) })),
        ("an entry 3 days old", json!({ "at": Utc::now() - TimeDelta::days(3) })),
    ];
    for (what, change) in cases {
        let mut body = read("entry", "AB123CD");
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = app.call(app.json("POST", "/v1/plate-reads", &app.key, body)).await;
        assert_eq!(status, 400, "{what}: {answer}");
        assert_eq!(answer["error"], "bad_request", "{what}: {answer}");
    }
    let (_, sessions) = app.call(app.json("GET", "/v1/sessions", &app.operator, Value::Null)).await;
    assert_eq!(sessions, json!([]), "no refused read opened a session");
}

#[tokio::test]
async fn an_entry_dated_in_the_future_cannot_make_the_exit_free() {
    let app = spawn_app().await;
    app.charge_from_the_first_minute().await;
    let mut entry = read("entry", "FR33CAR");
    entry["at"] = json!("2030-06-01T12:00:00Z");
    let (status, _) = app.call(app.json("POST", "/v1/plate-reads", &app.key, entry)).await;
    assert_eq!(status, 400);
    // An honest entry 50 minutes ago within the bounds is priced as usual.
    let (status, answer) = app.read("entry", "FR33CAR").await;
    assert_eq!((status, answer["outcome"].as_str()), (200, Some("opened")), "{answer}");
    let (status, answer) = app.read("exit", "FR33CAR").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "pay_by_plate", "an unregistered car pays by plate: {answer}");
    let link = answer["link"].as_str().unwrap();
    let (status, quote) = app.call(app.json("GET", &format!("/v1/pay/{link}"), "", Value::Null)).await;
    assert_eq!(status, 200, "{quote}");
    assert_eq!(quote["price"]["total"]["minor"], 300, "50 minutes at 75 cents a started quarter: {quote}");
}

#[tokio::test]
async fn reads_within_the_bounds_are_taken() {
    let app = spawn_app().await;
    let mut body = read("entry", "OK123AY");
    body["confidence"] = json!(1.0);
    body["at"] = json!(Utc::now() + TimeDelta::seconds(60));
    body["candidates"] = json!([{ "text": "OK123AY", "confidence": 0.0 }]);
    let (status, answer) = app.call(app.json("POST", "/v1/plate-reads", &app.key, body)).await;
    assert_eq!((status, answer["outcome"].as_str()), (200, Some("opened")), "{answer}");
    let mut body = read("entry", "OLD123");
    body["at"] = json!(Utc::now() - TimeDelta::hours(23));
    let (status, answer) = app.call(app.json("POST", "/v1/plate-reads", &app.key, body)).await;
    assert_eq!((status, answer["outcome"].as_str()), (200, Some("opened")), "{answer}");
}

const FRAME_VL482TG: &[u8] = include_bytes!("../../demo/gate-VL482TG.jpg");

/// The whole garage with the plate reader loaded, as `valet serve` runs it.
async fn garage_reading_frames() -> crate::helpers::TestApp {
    let reader = std::sync::Arc::new(valet_plates::PlateReader::bundled().unwrap());
    let wiring = valet_server::Wiring { plate_reader: Some(reader), ..valet_server::Wiring::default() };
    crate::helpers::spawn_functions(valet_server::Settings::default(), wiring).await
}

async fn post_frame(app: &crate::helpers::TestApp, direction: &str) -> (u16, Value) {
    let request = axum::http::Request::post(format!("/v1/gates/lane-{direction}/frames?direction={direction}"))
        .header("authorization", format!("Bearer {}", app.key))
        .header("content-type", "image/jpeg")
        .body(axum::body::Body::from(FRAME_VL482TG))
        .unwrap();
    app.call(request).await
}

#[tokio::test]
async fn a_gate_frame_answers_the_barrier_at_the_top_level_and_never_the_plate_crop() {
    let app = garage_reading_frames().await;
    app.charge_from_the_first_minute().await;
    let (status, entry) = post_frame(&app, "entry").await;
    assert_eq!(status, 200, "{entry}");
    assert_eq!(entry["barrier"], "lift", "{entry}");
    assert_eq!(entry["outcome"], "opened", "{entry}");
    assert_eq!(entry["read"]["text"], "VL482TG", "{entry}");
    assert!(entry["link"].is_string(), "an unregistered car gets its sign-up link: {entry}");
    assert!(!entry.to_string().contains("crop_jpeg"), "the plate crop is personal data: {entry}");
    let types: Vec<&str> = entry["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["io.valet.plate.read.v1", "io.valet.session.opened.v1"], "{entry}");
    assert!(entry["events"][0].get("data").is_none(), "events are named, not carried: {entry}");

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, exit) = post_frame(&app, "exit").await;
    assert_eq!(status, 200, "{exit}");
    // Unregistered: the barrier holds and the screen sends the driver to the pay link, in the
    // same shape as every other screen.
    assert_eq!((exit["barrier"].as_str(), exit["outcome"].as_str()), (Some("hold"), Some("pay_by_plate")), "{exit}");
    let screen = exit["display"].as_object().unwrap();
    assert_eq!(screen.keys().map(String::as_str).collect::<Vec<_>>(), ["fee", "link", "message"], "{exit}");
    assert_eq!(screen["message"], "pay_by_plate");
    assert_eq!(screen["link"], entry["link"]);
    assert!(!exit.to_string().contains("crop_jpeg") && !exit.to_string().contains("charge_request"), "{exit}");
}

#[tokio::test]
async fn every_exit_screen_has_the_same_shape() {
    // A garage that holds the barrier when unsure, so an unreadable exit asks the driver to wait.
    let settings = valet_server::Settings { hold_when_unsure: true, ..valet_server::Settings::default() };
    let app = crate::helpers::spawn_app_with(settings).await;
    // goodbye (an allowed plate), pay_by_plate (unregistered, owing), please_wait (unreadable).
    let (status, _) = app
        .call(app.json(
            "POST",
            "/v1/lists",
            &app.operator,
            json!({ "plate": "STAFF1", "list": "allow", "why": "test: staff car" }),
        ))
        .await;
    assert_eq!(status, 204);
    app.charge_from_the_first_minute().await;
    app.read("entry", "GUEST12").await;
    let mut messages = Vec::new();
    for plate in ["STAFF1", "GUEST12", ""] {
        let (status, exit) = app.read("exit", plate).await;
        assert_eq!(status, 200, "{exit}");
        let screen = exit["display"].as_object().unwrap_or_else(|| panic!("{plate}: {exit}"));
        assert_eq!(screen.keys().map(String::as_str).collect::<Vec<_>>(), ["fee", "link", "message"], "{exit}");
        messages.push(screen["message"].as_str().unwrap().to_owned());
    }
    assert_eq!(messages, ["goodbye", "pay_by_plate", "please_wait"]);
}

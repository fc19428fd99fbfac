//! Calibrating a bay camera over HTTP, on the rendered `aerial` lot: labels cut from the latest
//! frame (bays, a confirmed frame, an empty lot), bad labels refused with nothing stored, a fit
//! that beats the universal model read through on the next frame, one that does not refused,
//! rollback, and a second replica on the same database swapping adapters without a restart
//! (SQLite file and PostgreSQL).
//!
//! The camera the universal model misreads: bay A1 has a car painted on its ground (an advert),
//! which the model calls occupied on every frame and the operator labels free. A camera's own
//! labels teach exactly that, so a fitted adapter beats the universal model on them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use valet_lot::synthetic::aerial::{self, ParkedCar};
use valet_lot::{CameraId, SpaceId};
use valet_occupancy::OccupancyClassifier;
use valet_server::Settings;
use valet_server::lots::Lots;
use valet_store::Store;

use crate::helpers::{TestApp, spawn_on, spawn_with_lots};

const LOT: &str = "aerial";
/// The bay with the painted car.
const MURAL: usize = 0;

fn aerial_lots() -> Lots {
    let mut lots = Lots::default();
    lots.insert(aerial::layout(), Arc::new(OccupancyClassifier::bundled().unwrap()));
    lots
}

async fn aerial_app() -> TestApp {
    spawn_with_lots(Settings::default(), valet_server::Wiring::default(), aerial_lots()).await
}

/// A frame with cars in `bays` and, with `mural`, the painted car on bay A1's ground.
fn render(bays: &[usize], mural: bool, seed: u64) -> image::RgbImage {
    let cars: Vec<ParkedCar> = bays.iter().map(|&bay| ParkedCar { bay, car: bay as u64 * 7 + 1 }).collect();
    let mut frame = aerial::frame(&cars, seed);
    if mural {
        // The same car, always, drawn flat on the bay: what the camera sees is a car.
        let painted = aerial::frame(&[ParkedCar { bay: MURAL, car: 99 }], 1);
        let [[x0, y0], _, [x1, y1], _] = aerial::bay_quad(MURAL);
        for y in y0 as u32..y1 as u32 {
            for x in x0 as u32..x1 as u32 {
                frame.put_pixel(x, y, *painted.get_pixel(x, y));
            }
        }
    }
    frame
}

fn jpeg(frame: &image::RgbImage) -> Vec<u8> {
    valet_imaging::encode_jpeg(frame, 90).unwrap()
}

async fn post_frame(app: &TestApp, jpeg: Vec<u8>) -> Value {
    let request = Request::post(format!("/v1/lots/{LOT}/frames"))
        .header("authorization", format!("Bearer {}", app.key))
        .header("content-type", "image/jpeg")
        .body(Body::from(jpeg))
        .unwrap();
    let (status, update) = app.call(request).await;
    assert_eq!(status, 200, "{update}");
    update
}

async fn label(app: &TestApp, body: Value) -> (u16, Value) {
    app.call(app.json("POST", &format!("/v1/lots/{LOT}/labels"), &app.operator, body)).await
}

async fn calibration(app: &TestApp) -> Value {
    let (status, body) =
        app.call(app.json("GET", &format!("/v1/lots/{LOT}/calibration"), &app.operator, Value::Null)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["lot"], LOT);
    body["cameras"][0].clone()
}

/// The camera's calibration once no fit is queued or running.
async fn fitted(app: &TestApp) -> Value {
    let started = Instant::now();
    loop {
        let camera = calibration(app).await;
        if camera["fitting"] == false {
            return camera;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the fit never ended: {camera}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn choose(app: &TestApp, version: Value) -> (u16, Value) {
    let path = format!("/v1/lots/{LOT}/cameras/{}/adapter", aerial::CAMERA);
    app.call(app.json("POST", &path, &app.operator, json!({ "version": version }))).await
}

fn bay(index: usize) -> String {
    aerial::layout().spaces[index].id.to_string()
}

/// Every bay's truth on a frame with cars in `bays` (the mural bay is free).
fn truth(bays: &[usize]) -> Value {
    let spaces: serde_json::Map<String, Value> =
        (0..aerial::BAYS).map(|b| (bay(b), json!(if bays.contains(&b) { "occupied" } else { "free" }))).collect();
    json!({ "camera": aerial::CAMERA, "spaces": spaces })
}

/// Cars come and go; bay A1's mural stays.
const DAY: [&[usize]; 4] = [&[2, 6], &[2, 6, 8], &[3, 7, 9], &[1, 4, 8]];

/// Films and labels the mural camera through `app` until its adapter is kept; the camera's calibration.
async fn calibrate_the_mural_camera(app: &TestApp) -> Value {
    for (seed, bays) in DAY.iter().enumerate() {
        post_frame(app, jpeg(&render(bays, true, seed as u64 + 10))).await;
        let (status, body) = label(app, truth(bays)).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["labels"], aerial::BAYS, "{body}");
    }
    let camera = fitted(app).await;
    assert!(camera["active_version"].is_i64(), "the adapter was kept: {camera:#}");
    camera
}

fn reader_adapter(app: &TestApp) -> bool {
    app.state.lots().get(LOT).unwrap().reader.adapter(&CameraId::new(aerial::CAMERA)).is_some()
}

async fn audit(app: &TestApp) -> Vec<Value> {
    let (status, body) = app.call(app.json("GET", "/v1/audit", &app.operator, Value::Null)).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

#[tokio::test]
async fn an_operator_labels_bays_confirms_a_frame_and_marks_the_lot_empty() {
    let app = aerial_app().await;
    let update = post_frame(&app, jpeg(&render(&[2, 6], false, 1))).await;
    let (status, labelled) =
        label(&app, json!({ "camera": "cam1", "spaces": { bay(2): "occupied", bay(0): "free" } })).await;
    assert_eq!(status, 201, "{labelled}");
    assert_eq!((labelled["lot"].as_str(), labelled["camera"].as_str()), (Some(LOT), Some("cam1")));
    assert_eq!(labelled["labels"], 2);
    let frame = labelled["frame"].as_str().unwrap();
    let read_at = chrono::DateTime::parse_from_rfc3339(update["at"].as_str().unwrap()).unwrap();
    assert_eq!(chrono::DateTime::parse_from_rfc3339(frame).unwrap(), read_at, "the frame's key is when it was read");

    // The next frame: "the map is right", every bay as shown (the lot's only camera by default).
    post_frame(&app, jpeg(&render(&[2, 6], false, 2))).await;
    let (status, confirmed) = label(&app, json!({ "confirm": true })).await;
    assert_eq!(status, 201, "{confirmed}");
    let shown = app.state.lots().get(LOT).unwrap().availability().spaces;
    let sure = shown.iter().filter(|s| s.state != "unknown").count();
    assert!(sure >= 8, "the rendered lot is read surely: {shown:?}");
    assert_eq!(confirmed["labels"], sure, "unsure bays are not confirmed");
    assert_ne!(confirmed["frame"], labelled["frame"]);

    // And an empty lot.
    post_frame(&app, jpeg(&render(&[], false, 3))).await;
    let (status, empty) = label(&app, json!({ "camera": "cam1", "empty": true })).await;
    assert_eq!((status, empty["labels"].as_u64()), (201, Some(aerial::BAYS as u64)), "{empty}");

    let stored = app.store.occupancy_calibration().labels(LOT, "cam1").await.unwrap();
    assert_eq!(stored.len(), 2 + sure + aerial::BAYS);
    let a3 = stored.iter().find(|l| l.label.space == bay(2) && l.label.frame == frame).unwrap();
    assert!(a3.label.occupied && a3.label.labelled_by == "alice" && !a3.label.crop_png.is_empty());
    assert_eq!((a3.label.frame_width, a3.label.frame_height), (aerial::WIDTH, aerial::HEIGHT));
    let camera = fitted(&app).await;
    assert_eq!(camera["frames"], 3, "{camera}");
    assert_eq!(camera["occupied_labels"], 1 + 2, "A3 on the first frame, A3 and B2 confirmed: {camera}");
    assert_eq!(camera["free_labels"].as_u64().unwrap() as usize, 1 + (sure - 2) + aerial::BAYS, "{camera}");
    assert_eq!(camera["least_sure"].as_array().unwrap().len(), 5, "{camera}");

    let labels: Vec<Value> =
        audit(&app).await.into_iter().filter(|e| e["what"]["occupancy_labels"].is_object()).collect();
    assert_eq!(labels.len(), 3, "every batch is audited: {labels:?}");
    assert_eq!(labels[0]["who"], "alice");
    assert_eq!(labels[0]["what"]["occupancy_labels"]["occupied"], 1);
    assert_eq!(labels[2]["what"]["occupancy_labels"]["free"], aerial::BAYS);
}

#[tokio::test]
async fn bad_labels_are_refused_with_what_is_wrong_and_nothing_is_stored() {
    let app = aerial_app().await;
    let refused = |status: u16, code: &str, (got, body): (u16, Value)| {
        assert_eq!((got, body["error"].as_str()), (status, Some(code)), "{body}");
        body["message"].as_str().unwrap().to_owned()
    };
    let message = refused(409, "no_frame_yet", label(&app, json!({ "camera": "cam1", "empty": true })).await);
    assert!(message.contains("cam1"), "{message}");

    post_frame(&app, jpeg(&render(&[2], false, 1))).await;
    let message = refused(404, "unknown_camera", label(&app, json!({ "camera": "cam9", "empty": true })).await);
    assert!(message.contains("cam9") && message.contains("cam1"), "{message}");
    let (status, _) =
        app.call(app.json("POST", "/v1/lots/nowhere/labels", &app.operator, json!({ "empty": true }))).await;
    assert_eq!(status, 404);
    let message =
        refused(422, "invalid_label", label(&app, json!({ "spaces": { "Z9": "free", bay(0): "free" } })).await);
    assert!(
        message.contains("Z9") && message.contains("A1") && message.contains("B5"),
        "names the known bays: {message}"
    );
    refused(400, "bad_request", label(&app, json!({ "spaces": { bay(0): "parked" } })).await);
    refused(400, "bad_request", label(&app, json!({ "camera": "cam1" })).await);
    refused(400, "bad_request", label(&app, json!({ "confirm": true, "empty": true })).await);
    let (status, _) = app.call(app.json("POST", &format!("/v1/lots/{LOT}/labels"), "", json!({ "empty": true }))).await;
    assert_eq!(status, 401);
    assert!(app.store.occupancy_calibration().labels(LOT, "cam1").await.unwrap().is_empty(), "nothing stored yet");

    // A bay labelled twice on one frame: the second is refused, and its whole batch with it.
    let (status, body) = label(&app, json!({ "spaces": { bay(0): "free" } })).await;
    assert_eq!(status, 201, "{body}");
    let message =
        refused(409, "label_exists", label(&app, json!({ "spaces": { bay(1): "free", bay(0): "occupied" } })).await);
    assert!(message.contains("A1"), "{message}");
    let stored = app.store.occupancy_calibration().labels(LOT, "cam1").await.unwrap();
    assert_eq!(stored.len(), 1, "only the first label: {stored:?}");
    assert!(!stored[0].label.occupied);

    // A frame of another aspect ratio never reaches the lot, so nothing can be cut from it.
    let square = valet_imaging::synthetic::photo_jpeg(480, 480, None, 3);
    let request = Request::post(format!("/v1/lots/{LOT}/frames"))
        .header("authorization", format!("Bearer {}", app.key))
        .header("content-type", "image/jpeg")
        .body(Body::from(square))
        .unwrap();
    assert_eq!(app.call(request).await.0, 400);
    assert_eq!(app.store.occupancy_calibration().labels(LOT, "cam1").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_fit_that_beats_the_universal_model_becomes_active_and_reads_the_next_frame() {
    let app = aerial_app().await;
    assert!(!reader_adapter(&app));
    let camera = calibrate_the_mural_camera(&app).await;
    let latest = &camera["versions"][0];
    assert_eq!(latest["active"], true, "{camera:#}");
    assert_eq!(latest["version"], camera["active_version"]);
    assert_eq!(latest["labels"], DAY.len() * aerial::BAYS);
    let (universal, adapted) =
        (camera["universal_accuracy"].as_f64().unwrap(), camera["adapted_accuracy"].as_f64().unwrap());
    assert!(adapted > universal, "kept because it is better: {adapted} vs {universal}");
    assert!(universal < 1.0, "the universal model misreads the mural: {universal}");
    assert!(reader_adapter(&app), "this process swapped at once");

    // The next frame is read through the adapter: the mural is free, parked cars still occupied.
    let lot = app.state.lots().get(LOT).unwrap();
    let reading = lot.reader.read(&CameraId::new(aerial::CAMERA), &render(&[5], true, 77)).unwrap();
    assert!(reading.adapted);
    let p = |b: usize| reading.spaces.iter().find(|s| s.space == SpaceId::new(bay(b))).unwrap().clone();
    assert!(p(MURAL).p_universal.unwrap() >= 0.5, "the universal model still sees a car: {:?}", p(MURAL));
    assert!(p(MURAL).p_occupied < 0.5, "the adapter knows the mural: {:?}", p(MURAL));
    assert!(p(5).p_occupied >= 0.5, "a real car: {:?}", p(5));
    // Over HTTP, after the smoothing's two agreeing frames: A1 free on the map.
    for seed in [78, 79, 80] {
        post_frame(&app, jpeg(&render(&[5], true, seed))).await;
    }
    let (_, availability) = app.call(app.json("GET", &format!("/v1/lots/{LOT}/availability"), "", Value::Null)).await;
    let a1 = availability["spaces"].as_array().unwrap().iter().find(|s| s["space"] == bay(MURAL)).unwrap();
    assert_eq!(a1["state"], "free", "{availability}");

    let activations: Vec<Value> =
        audit(&app).await.into_iter().filter(|e| e["what"]["occupancy_adapter"].is_object()).collect();
    assert_eq!(activations.last().unwrap()["what"]["occupancy_adapter"]["version"], camera["active_version"]);
}

#[tokio::test]
async fn an_adapter_no_better_than_the_universal_model_is_refused_and_saved_with_why() {
    let app = aerial_app().await;
    // Confirmed frames are the universal model's own answers: nothing left to beat.
    for (seed, bays) in DAY.iter().enumerate() {
        post_frame(&app, jpeg(&render(bays, false, seed as u64))).await;
        let (status, body) = label(&app, json!({ "confirm": true })).await;
        assert_eq!(status, 201, "{body}");
    }
    let camera = fitted(&app).await;
    assert_eq!(camera["active_version"], Value::Null, "{camera:#}");
    let latest = &camera["versions"][0];
    assert_eq!(latest["active"], false);
    assert_eq!(latest["universal_accuracy"], 1.0, "{latest}");
    assert!(latest["note"].as_str().unwrap().contains("not kept"), "{latest}");
    assert!(!reader_adapter(&app));
}

#[tokio::test]
async fn an_operator_rolls_back_to_the_universal_model_and_to_a_version() {
    let app = aerial_app().await;
    let kept = calibrate_the_mural_camera(&app).await["active_version"].clone();

    let (status, camera) = choose(&app, Value::Null).await;
    assert_eq!((status, &camera["active_version"]), (200, &Value::Null), "{camera}");
    assert!(!reader_adapter(&app), "back on the universal model at once");
    let (status, camera) = choose(&app, kept.clone()).await;
    assert_eq!((status, &camera["active_version"]), (200, &kept), "{camera}");
    assert!(reader_adapter(&app));

    let (status, body) = choose(&app, json!(999)).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("unknown_adapter")), "{body}");
    assert_eq!(calibration(&app).await["active_version"], kept, "an unknown version changes nothing");
    let path = format!("/v1/lots/{LOT}/cameras/{}/adapter", aerial::CAMERA);
    let (status, body) = app.call(app.json("POST", &path, &app.operator, json!({}))).await;
    assert_eq!(status, 400, "an empty body rolls nothing back: {body}");
    let (status, body) = app
        .call(app.json(
            "POST",
            &format!("/v1/lots/{LOT}/cameras/cam9/adapter"),
            &app.operator,
            json!({ "version": null }),
        ))
        .await;
    assert_eq!((status, body["error"].as_str()), (404, Some("unknown_camera")), "{body}");

    let versions: Vec<Value> = audit(&app)
        .await
        .into_iter()
        .filter_map(|e| Some(e["what"].get("occupancy_adapter")?["version"].clone()))
        .collect();
    assert_eq!(versions[versions.len() - 2..], [Value::Null, kept], "rollback and activation audited: {versions:?}");
}

/// Two replicas on one database: what one fits and chooses, the other reads with within seconds.
async fn a_second_replica_swaps_adapters_without_a_restart(first: Store, second: Store) {
    let settings = Settings::default();
    let one = spawn_on(first, "", settings.clone(), valet_server::Wiring::default(), aerial_lots()).await;
    let two = spawn_on(second, "-2", settings, valet_server::Wiring::default(), aerial_lots()).await;
    valet_server::calibration::spawn_adapter_watch(two.state.clone());
    assert!(!reader_adapter(&two));

    let kept = calibrate_the_mural_camera(&one).await["active_version"].clone();
    follows(&two, true).await;
    let reading =
        two.state.lots().get(LOT).unwrap().reader.read(&CameraId::new("cam1"), &render(&[], true, 5)).unwrap();
    assert!(reading.adapted);

    assert_eq!(choose(&one, Value::Null).await.0, 200);
    follows(&two, false).await;
    assert_eq!(choose(&one, kept).await.0, 200);
    follows(&two, true).await;
}

/// Waits until `app` reads the camera through an adapter (`true`) or not.
async fn follows(app: &TestApp, adapted: bool) {
    let started = Instant::now();
    while reader_adapter(app) != adapted {
        assert!(started.elapsed() < Duration::from_secs(10), "the second replica did not follow within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_second_replica_on_the_same_sqlite_file_swaps_adapters_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path()).await.unwrap();
    let second = Store::open(dir.path()).await.unwrap();
    a_second_replica_swaps_adapters_without_a_restart(first, second).await;
}

#[tokio::test]
async fn labels_and_adapters_reach_a_second_replica_on_postgresql() {
    let key = valet_store::PlateKey::new(&[7; 32]).unwrap();
    let scratch = match valet_store::scratch::ScratchGarage::postgres(key, "valet_calibration").await {
        Ok(scratch) => scratch,
        Err(why) => {
            eprintln!("skipping: {why}");
            return;
        }
    };
    let url = scratch.postgres_url().unwrap();
    let first = Store::connect_postgres(&url).await.unwrap();
    let second = Store::connect_postgres(&url).await.unwrap();
    a_second_replica_swaps_adapters_without_a_restart(first, second).await;
    drop(scratch);
}

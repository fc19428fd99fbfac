//! Pulled gate cameras: `/v1/cameras` (operators read, admins change), the supervisor that starts
//! a camera added while the app runs and stops one removed (through a stand-in puller), passages
//! → sessions (one per car, one for a passage delivered twice), and a real MJPEG camera on
//! loopback through `valet-cameras` to a session.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use valet_cameras::{CameraConfig, CameraError, Health, Passage, PassageId};
use valet_garage::{Candidate, Direction};
use valet_server::cameras::{Puller, Pulling};
use valet_store::{DeviceName, Role, StoredCamera};

use crate::helpers::{TestApp, spawn_app, spawn_functions};

/// A puller that starts nothing: it records each start, hands out the passage sender so the test
/// can drive passages, and notes when a pull is dropped (stopped).
#[derive(Default)]
pub(crate) struct StandIn {
    started: Mutex<Vec<CameraConfig>>,
    senders: Mutex<Vec<(String, mpsc::Sender<Passage>)>>,
    stopped: Arc<Mutex<Vec<String>>>,
}

struct StandInPull {
    name: String,
    stopped: Arc<Mutex<Vec<String>>>,
    live: AtomicBool,
}

impl Pulling for StandInPull {
    fn health(&self) -> Health {
        Health { connected: self.live.load(Ordering::Relaxed), frames: 42, ..Health::default() }
    }
}

impl Drop for StandInPull {
    fn drop(&mut self) {
        self.stopped.lock().unwrap().push(self.name.clone());
    }
}

/// The stand-in as the supervisor holds it, shared with the test.
pub(crate) struct Shared(pub(crate) Arc<StandIn>);

impl Puller for Shared {
    fn start(&self, config: CameraConfig, passages: mpsc::Sender<Passage>) -> Result<Box<dyn Pulling>, CameraError> {
        if config.url.starts_with("refuse://") {
            return Err(CameraError::Config("the stand-in refuses this URL".into()));
        }
        let stand_in = &self.0;
        stand_in.started.lock().unwrap().push(config.clone());
        stand_in.senders.lock().unwrap().push((config.name.clone(), passages));
        Ok(Box::new(StandInPull {
            name: config.name,
            stopped: Arc::clone(&stand_in.stopped),
            live: AtomicBool::new(true),
        }))
    }
}

impl StandIn {
    pub(crate) fn started_names(&self) -> Vec<String> {
        self.started.lock().unwrap().iter().map(|c| c.name.clone()).collect()
    }

    pub(crate) fn sender(&self, camera: &str) -> mpsc::Sender<Passage> {
        let senders = self.senders.lock().unwrap();
        senders.iter().rev().find(|(name, _)| name == camera).map(|(_, s)| s.clone()).expect("camera started")
    }
}

pub(crate) fn stored(name: &str, url: &str, direction: Direction) -> StoredCamera {
    StoredCamera {
        name: name.to_owned(),
        url: url.to_owned(),
        direction,
        lane: None,
        region: None,
        every_ms: 500,
        added_at: Utc::now(),
        added_by: "test".to_owned(),
    }
}

/// Waits up to `within` for `done`, checking every 50 ms.
async fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

async fn open_sessions(app: &TestApp) -> Vec<Value> {
    let (status, sessions) =
        app.call(app.json("GET", "/v1/sessions?state=open&limit=500", &app.operator, Value::Null)).await;
    assert_eq!(status, 200, "{sessions}");
    sessions.as_array().unwrap().clone()
}

/// Polls the open sessions until there are `n` or 10 s passed.
async fn wait_for_sessions(app: &TestApp, n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let sessions = open_sessions(app).await;
        if sessions.len() >= n || start.elapsed() > Duration::from_secs(10) {
            return sessions;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn passage(camera: &str, id: u64, plate: &str) -> Passage {
    let now = Utc::now();
    Passage {
        camera: camera.to_owned(),
        lane: None,
        direction: Direction::Entry,
        id: PassageId(id),
        first_frame_at: now,
        decided_at: now,
        text: plate.to_owned(),
        confidence: 0.97,
        candidates: vec![Candidate { text: plate.to_owned(), confidence: 0.97 }],
        crop_jpeg: None,
        frames: 12,
        reads: 6,
    }
}

async fn key(app: &TestApp, name: &str, role: Role) -> String {
    let (_, key) = app.store.add_key(&DeviceName::parse(name).unwrap(), role, Utc::now()).await.unwrap();
    key.expose().to_owned()
}

#[tokio::test]
async fn only_admins_change_the_cameras_and_only_operators_read_them() {
    let app = spawn_app().await;
    let operator = key(&app, "bob", Role::Operator).await;
    let body = json!({ "name": "north-exit", "url": "rtsp://10.0.0.7/stream", "direction": "exit" });
    for (method, path, body) in
        [("POST", "/v1/cameras", body.clone()), ("DELETE", "/v1/cameras/north-exit", Value::Null)]
    {
        let (status, answer) = app.call(app.json(method, path, &operator, body.clone())).await;
        assert_eq!((status, answer["error"].as_str()), (403, Some("wrong_role")), "{method} {path}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains("admin key"), "{answer}");
        let (status, _) = app.call(app.json(method, path, "", body)).await;
        assert_eq!(status, 401, "{method} {path} without a key");
    }
    // A camera's own device key reads nothing of the others.
    let (status, answer) = app.call(app.json("GET", "/v1/cameras", &app.key, Value::Null)).await;
    assert_eq!((status, answer["error"].as_str()), (403, Some("wrong_role")), "{answer}");
    assert!(app.store.gate_cameras().list().await.unwrap().is_empty(), "nothing was added");
}

#[tokio::test]
async fn a_camera_added_while_the_app_runs_is_pulled_within_seconds_and_stopped_when_removed() {
    let app = spawn_app().await;
    let puller = Arc::new(StandIn::default());
    valet_server::cameras::spawn(&app.state, Arc::new(Shared(Arc::clone(&puller))));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(puller.started_names().is_empty(), "no camera yet, nothing pulled");

    let cameras = app.store.gate_cameras();
    cameras.add(&stored("north-entry", "http://127.0.0.1:9/mjpeg", Direction::Entry)).await.unwrap();
    assert!(
        eventually(Duration::from_secs(6), || puller.started_names() == ["north-entry"]).await,
        "started: {:?}",
        puller.started_names()
    );
    let state = app.state.pulls().state("north-entry").expect("pulled here");
    assert_eq!(state.health.map(|h| (h.connected, h.frames)), Some((true, 42)), "its health is the pull's");

    // A camera whose pull does not start keeps the reason and is not retried every tick.
    cameras.add(&stored("broken", "refuse://x", Direction::Exit)).await.unwrap();
    assert!(
        eventually(Duration::from_secs(6), || app.state.pulls().state("broken").is_some_and(|s| s.problem.is_some()))
            .await
    );
    let problem = app.state.pulls().state("broken").unwrap().problem.unwrap();
    assert!(problem.contains("refuses"), "{problem}");

    // Changed (removed and added with another URL): the old pull stops, a new one starts.
    cameras.remove("north-entry").await.unwrap();
    cameras.add(&stored("north-entry", "http://127.0.0.1:9/other", Direction::Entry)).await.unwrap();
    assert!(
        eventually(Duration::from_secs(6), || puller.started.lock().unwrap().len() == 2).await,
        "restarted on the new URL"
    );
    assert_eq!(puller.started.lock().unwrap()[1].url, "http://127.0.0.1:9/other");
    assert_eq!(*puller.stopped.lock().unwrap(), ["north-entry"]);

    // Removed: stopped, and no longer listed as pulled here.
    cameras.remove("north-entry").await.unwrap();
    assert!(eventually(Duration::from_secs(6), || puller.stopped.lock().unwrap().len() == 2).await);
    assert!(app.state.pulls().state("north-entry").is_none());
    assert_eq!(app.state.pulls().names(), ["broken"]);
}

#[tokio::test]
async fn ten_cars_make_ten_sessions_and_a_passage_delivered_twice_makes_one() {
    let app = spawn_app().await;
    let puller = Arc::new(StandIn::default());
    valet_server::cameras::spawn(&app.state, Arc::new(Shared(Arc::clone(&puller))));
    app.store.gate_cameras().add(&stored("lane-in", "http://127.0.0.1:9/mjpeg", Direction::Entry)).await.unwrap();
    assert!(eventually(Duration::from_secs(6), || !puller.started_names().is_empty()).await);
    let passages = puller.sender("lane-in");

    let plates: Vec<String> = (0..10).map(|n| format!("AB{n}23CD")).collect();
    for (n, plate) in plates.iter().enumerate() {
        passages.send(passage("lane-in", n as u64 + 1, plate)).await.unwrap();
    }
    let sessions = wait_for_sessions(&app, 10).await;
    assert_eq!(sessions.len(), 10, "{sessions:?}");
    let mut seen: Vec<String> = sessions.iter().map(|s| s["plate"].as_str().unwrap_or_default().to_owned()).collect();
    seen.sort();
    assert_eq!(seen, plates);

    // The same car again under the same passage (a reconnect, a second replica): one session.
    let twice = passage("lane-in", 99, "ZZ999ZZ");
    passages.send(twice.clone()).await.unwrap();
    passages.send(twice).await.unwrap();
    let sessions = wait_for_sessions(&app, 11).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sessions_after = open_sessions(&app).await;
    assert_eq!((sessions.len(), sessions_after.len()), (11, 11), "{sessions_after:?}");
    let zz = sessions_after.iter().filter(|s| s["plate"] == "ZZ999ZZ").count();
    assert_eq!(zz, 1);
    // The read's camera became a known lane, as a pushed camera's does.
    let lanes = app.state.gate().lanes().await.unwrap();
    assert!(lanes.iter().any(|l| l.camera.0 == "lane-in" && l.direction == Direction::Entry), "{lanes:?}");
}

/// Two replicas pulling one camera derive the same passage id for a car, unless the minute turns
/// between the first frames each saw: then the same car arrives under two ids. The gate still
/// makes one session of it at the entry and one charge at the exit.
#[tokio::test]
async fn one_car_reported_under_two_passage_ids_is_one_session_and_one_charge() {
    let app = spawn_app().await;
    let puller = Arc::new(StandIn::default());
    valet_server::cameras::spawn(&app.state, Arc::new(Shared(Arc::clone(&puller))));
    app.store.gate_cameras().add(&stored("lane-in", "http://127.0.0.1:9/in", Direction::Entry)).await.unwrap();
    app.store.gate_cameras().add(&stored("lane-out", "http://127.0.0.1:9/out", Direction::Exit)).await.unwrap();
    assert!(eventually(Duration::from_secs(6), || puller.started_names().len() == 2).await);
    let body = json!({ "plates": ["KR552TE"], "payment_method": "pm_card_visa" });
    let (status, signed) = app.call(app.json("POST", "/v1/drivers", "", body)).await;
    assert_eq!(status, 201, "{signed}");
    let token = signed["token"].as_str().unwrap().to_owned();

    let entries = puller.sender("lane-in");
    entries.send(passage("lane-in", 1, "KR552TE")).await.unwrap();
    entries.send(passage("lane-in", 2, "KR552TE")).await.unwrap();
    assert_eq!(wait_for_sessions(&app, 1).await.len(), 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(open_sessions(&app).await.len(), 1, "the second id opened a second stay");

    let exits = puller.sender("lane-out");
    for id in [3, 4] {
        let mut exit = passage("lane-out", id, "KR552TE");
        exit.direction = Direction::Exit;
        exits.send(exit).await.unwrap();
    }
    let start = Instant::now();
    while !open_sessions(&app).await.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "the car's stay did not close");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, stays) = app.call(app.json("GET", "/v1/me/sessions", &token, Value::Null)).await;
    assert_eq!(stays.as_array().unwrap().len(), 1, "{stays}");
    assert_eq!(stays[0]["state"], "paid", "{stays}");
    let (_, receipts) = app.call(app.json("GET", "/v1/me/receipts", &token, Value::Null)).await;
    assert_eq!(receipts.as_array().unwrap().len(), 1, "charged once: {receipts}");
}

/// Needs the real `valet-cameras` (its validation and redaction).
#[tokio::test]
async fn cameras_are_added_listed_redacted_and_removed_over_the_api() {
    let app = spawn_app().await;
    let admin = app.operator.clone();
    // A pushed camera: one that reported a read itself.
    let read = json!({ "camera": "lane-push", "direction": "entry", "text": "AB123CD", "confidence": 0.97 });
    let (status, _) = app.call(app.json("POST", "/v1/plate-reads", &app.key, read)).await;
    assert_eq!(status, 200);

    let body = json!({
        "name": "north-exit", "url": "rtsp://admin:hunter2@10.0.0.7/stream1", "direction": "exit",
        "lane": "north", "region": "eu"
    });
    let (status, added) = app.call(app.json("POST", "/v1/cameras", &admin, body.clone())).await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["kind"], "pulled");
    let url = added["url"].as_str().unwrap();
    assert!(!url.contains("hunter2") && url.contains("***"), "{url}");
    assert_eq!(added["every_ms"], 500, "the default poll interval");

    let (status, again) = app.call(app.json("POST", "/v1/cameras", &admin, body)).await;
    assert_eq!((status, again["error"].as_str()), (409, Some("camera_exists")), "{again}");

    for bad in [
        json!({ "name": "bad name!", "url": "rtsp://10.0.0.7/s", "direction": "entry" }),
        json!({ "name": "tls", "url": "https://10.0.0.7/snap.jpg", "direction": "entry" }),
        json!({ "name": "ftp", "url": "ftp://10.0.0.7/snap.jpg", "direction": "entry" }),
        json!({ "name": "fast", "url": "http://10.0.0.7/snap.jpg", "direction": "entry", "every_ms": 1 }),
    ] {
        let (status, refused) = app.call(app.json("POST", "/v1/cameras", &admin, bad.clone())).await;
        assert_eq!((status, refused["error"].as_str()), (422, Some("invalid_camera")), "{bad}: {refused}");
        assert!(!refused["message"].as_str().unwrap().is_empty());
    }
    let (status, refused) = app
        .call(app.json("POST", "/v1/cameras", &admin, json!({ "name": "x", "url": "rtsp://h/s", "direction": "up" })))
        .await;
    assert_eq!(status, 400, "{refused}");

    let (status, list) = app.call(app.json("GET", "/v1/cameras", &admin, Value::Null)).await;
    assert_eq!(status, 200, "{list}");
    let names: Vec<(&str, &str)> =
        list.as_array().unwrap().iter().map(|c| (c["name"].as_str().unwrap(), c["kind"].as_str().unwrap())).collect();
    assert_eq!(names, [("north-exit", "pulled"), ("lane-push", "pushed")]);
    assert!(!list.to_string().contains("hunter2"), "{list}");

    let (status, _) = app.call(app.json("DELETE", "/v1/cameras/north-exit", &admin, Value::Null)).await;
    assert_eq!(status, 204);
    let (status, missing) = app.call(app.json("DELETE", "/v1/cameras/north-exit", &admin, Value::Null)).await;
    assert_eq!((status, missing["error"].as_str()), (404, Some("not_found")), "{missing}");
    assert!(app.store.gate_cameras().list().await.unwrap().is_empty());

    // The audit log has the add (the password redacted) and the one removal: not the refused adds
    // nor the second, missing removal.
    let (status, audit) = app.call(app.json("GET", "/v1/audit", &admin, Value::Null)).await;
    assert_eq!(status, 200, "{audit}");
    let cameras: Vec<&Value> =
        audit.as_array().unwrap().iter().filter(|e| e["what"].to_string().contains("gate_camera")).collect();
    assert_eq!(cameras.len(), 2, "{audit}");
    assert_eq!(cameras[0]["what"]["gate_camera_added"]["camera"], "north-exit", "{audit}");
    assert_eq!(cameras[0]["what"]["gate_camera_added"]["url"], "rtsp://admin:***@10.0.0.7/stream1");
    assert_eq!(cameras[1]["what"]["gate_camera_removed"]["camera"], "north-exit", "{audit}");
    assert!(!audit.to_string().contains("hunter2"), "{audit}");
}

/// A loopback MJPEG camera: `frames` served in order, each `every` apart, then the last again
/// and again. Returns its URL.
async fn mjpeg_camera(frames: Vec<Vec<u8>>, every: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let frames = Arc::new(frames);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let frames = Arc::clone(&frames);
            tokio::spawn(async move {
                let mut request = [0u8; 2048];
                let _ = socket.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\
                            Cache-Control: no-cache\r\nConnection: close\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let mut n = 0usize;
                loop {
                    let jpeg = &frames[n.min(frames.len() - 1)];
                    let part = format!("--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", jpeg.len());
                    if socket.write_all(part.as_bytes()).await.is_err()
                        || socket.write_all(jpeg).await.is_err()
                        || socket.write_all(b"\r\n").await.is_err()
                    {
                        return;
                    }
                    n += 1;
                    tokio::time::sleep(every).await;
                }
            });
        }
    });
    format!("http://{addr}/mjpeg")
}

/// The empty lane: the demo's car frame with the car painted out (flat grey), same size.
fn empty_lane(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(width, height, image::Rgb([96, 100, 104]));
    valet_imaging::encode_jpeg(&image, 85).unwrap()
}

/// Needs the real `valet-cameras`: a car through a pulled MJPEG camera → one plate read → one
/// session with the right plate.
#[tokio::test]
async fn a_car_through_a_pulled_mjpeg_camera_makes_one_session() {
    let car = include_bytes!("../../demo/gate-VL482TG.jpg").to_vec();
    let empty = empty_lane(960, 720);
    // 1 s of empty lane, 2 s of the car, then the empty lane for ever (10 fps).
    let mut frames = vec![empty.clone(); 10];
    frames.extend(std::iter::repeat_n(car, 20));
    frames.push(empty);
    let url = mjpeg_camera(frames, Duration::from_millis(100)).await;

    let reader = Arc::new(valet_plates::PlateReader::bundled().unwrap());
    let wiring = valet_server::Wiring { plate_reader: Some(Arc::clone(&reader)), ..valet_server::Wiring::default() };
    let app = spawn_functions(valet_server::Settings::default(), wiring).await;
    let puller = valet_server::cameras::ReaderPuller { reader, limits: app.settings.decode_limits() };
    valet_server::cameras::spawn(&app.state, Arc::new(puller));
    let body = json!({ "name": "lane-mjpeg", "url": url, "direction": "entry" });
    let (status, added) = app.call(app.json("POST", "/v1/cameras", &app.operator, body)).await;
    assert_eq!(status, 201, "{added}");

    let start = Instant::now();
    let mut sessions = Vec::new();
    while start.elapsed() < Duration::from_secs(60) && sessions.is_empty() {
        tokio::time::sleep(Duration::from_millis(250)).await;
        sessions = open_sessions(&app).await;
    }
    // Once the car has gone, the pull has had every chance to read it twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sessions = open_sessions(&app).await;
    assert_eq!(sessions.len(), 1, "one car, one session: {sessions:?}");
    assert_eq!(sessions[0]["plate"], "VL482TG", "{sessions:?}");
    let (_, list) = app.call(app.json("GET", "/v1/cameras", &app.operator, Value::Null)).await;
    let camera = &list.as_array().unwrap()[0];
    assert_eq!(camera["name"], "lane-mjpeg");
    assert!(camera["health"]["frames"].as_u64().unwrap_or(0) > 0, "{camera}");
    assert!(camera["health"]["passages"].as_u64().unwrap_or(0) >= 1, "{camera}");
}

//! A pulled MJPEG camera end to end: a loopback server streams an empty lane, then cars driving
//! through it one after another (the demo's rendered gate frames and, when `../shared/data` has
//! them, openalpr benchmark photos), and hangs up once in the middle of a car. Exactly one passage
//! per car must come out, with its plate, distinct ids, a crop, and no duplicate for the reconnect.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use image::RgbImage;
use valet_cameras::{CameraConfig, Passage, pull};
use valet_garage::Direction;
use valet_imaging::DecodeLimits;
use valet_plates::{PlateReader, ReaderOptions};

const DEMO_CARS: [(&str, &[u8]); 6] = [
    ("VL482TG", include_bytes!("../../../server/demo/gate-VL482TG.jpg")),
    ("KR552TE", include_bytes!("../../../server/demo/gate-KR552TE.jpg")),
    ("GT468WS", include_bytes!("../../../server/demo/gate-GT468WS.jpg")),
    ("BV310NP", include_bytes!("../../../server/demo/gate-BV310NP.jpg")),
    ("DM104AX", include_bytes!("../../../server/demo/gate-DM104AX.jpg")),
    ("ZH927LC", include_bytes!("../../../server/demo/gate-ZH927LC.jpg")),
];
const WIDTH: u32 = 960;
const HEIGHT: u32 = 720;
const FPS: u64 = 10;
/// Frames each car is in the picture, and empty-lane frames after it.
const CAR_FRAMES: usize = 15;
const GAP_FRAMES: usize = 15;
/// The server hangs up once, this many frames into this car.
const HANG_UP_IN: (usize, usize) = (2, 7);

/// A lane frame: `picture` (a car) fitted into the lane at `dx` pixels, over tarmac with noise.
fn lane_frame(tarmac: &RgbImage, picture: Option<&RgbImage>, dx: i64, seed: u32) -> Vec<u8> {
    let mut frame = tarmac.clone();
    let mut state = 0x9e37_79b9u32.wrapping_mul(seed + 1);
    for p in frame.pixels_mut() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let delta = (state % 7) as i16 - 3;
        p.0 = p.0.map(|c| (i16::from(c) + delta).clamp(0, 255) as u8);
    }
    if let Some(picture) = picture {
        let y = i64::from(HEIGHT.saturating_sub(picture.height()) / 2);
        image::imageops::replace(&mut frame, picture, dx + i64::from(WIDTH.saturating_sub(picture.width()) / 2), y);
    }
    valet_imaging::encode_jpeg(&frame, 85).unwrap()
}

fn read_text(reader: &PlateReader, jpeg: &[u8]) -> String {
    let frame = valet_imaging::decode(jpeg, &DecodeLimits::default()).unwrap().image;
    let reading = reader.read(&frame, &ReaderOptions::default()).unwrap();
    reading.plates.first().map(|p| p.text.clone()).unwrap_or_default()
}

/// Up to `n` openalpr benchmark photos the reader reads exactly when fitted into the lane, with
/// their plates; none (and the reason printed) when the data set is absent.
fn benchmark_cars(reader: &PlateReader, tarmac: &RgbImage, n: usize, taken: &[String]) -> Vec<(String, RgbImage)> {
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/openalpr-benchmarks/endtoend");
    let Ok(regions) = std::fs::read_dir(&root) else {
        eprintln!("skipping benchmark cars: {} is absent; the demo's six cars only", root.display());
        return Vec::new();
    };
    let mut labels: Vec<_> = regions
        .flatten()
        .flat_map(|region| std::fs::read_dir(region.path()).into_iter().flatten().flatten())
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "txt"))
        .collect();
    labels.sort();
    let mut cars: Vec<(String, RgbImage)> = Vec::new();
    for label in labels {
        if cars.len() == n {
            break;
        }
        let Ok(plates) = valet_plates::eval::parse_labels(&std::fs::read_to_string(&label).unwrap_or_default()) else {
            continue;
        };
        let [plate] = &plates[..] else { continue };
        let key = valet_plates::confusion::matching_key(&plate.text);
        if taken.iter().chain(cars.iter().map(|c| &c.0)).any(|t| valet_plates::confusion::matching_key(t) == key) {
            continue;
        }
        let Ok(bytes) = std::fs::read(label.with_file_name(&plate.file)) else { continue };
        let Ok(photo) = valet_imaging::decode(&bytes, &DecodeLimits::default()) else { continue };
        let (w, h) = photo.image.dimensions();
        let scale = (f64::from(WIDTH) / f64::from(w)).min(f64::from(HEIGHT) / f64::from(h)).min(1.0);
        let picture = valet_imaging::resize_rgb(
            &photo.image,
            ((f64::from(w) * scale) as u32).max(1),
            ((f64::from(h) * scale) as u32).max(1),
        );
        if read_text(reader, &lane_frame(tarmac, Some(&picture), 0, 0)) == plate.text {
            cars.push((plate.text.clone(), picture));
        }
    }
    cars
}

/// What the server streams, frame by frame, shared by every connection: a reconnect resumes
/// where the last connection stopped, as a live camera would.
struct Script {
    frames: Vec<Vec<u8>>,
    empty: Vec<u8>,
    position: AtomicUsize,
    hang_up_at: usize,
    hung_up: AtomicBool,
    connections: AtomicUsize,
}

async fn mjpeg(axum::extract::State(script): axum::extract::State<Arc<Script>>) -> axum::response::Response {
    script.connections.fetch_add(1, Ordering::SeqCst);
    let stream = futures_util::stream::unfold(script, |script| async move {
        tokio::time::sleep(Duration::from_millis(1000 / FPS)).await;
        let i = script.position.load(Ordering::SeqCst);
        if i == script.hang_up_at && !script.hung_up.swap(true, Ordering::SeqCst) {
            return None;
        }
        script.position.fetch_add(1, Ordering::SeqCst);
        let jpeg = script.frames.get(i).unwrap_or(&script.empty);
        let mut part =
            format!("--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", jpeg.len()).into_bytes();
        part.extend_from_slice(jpeg);
        part.extend_from_slice(b"\r\n");
        Some((Ok::<_, std::io::Error>(part), script))
    });
    axum::response::Response::builder()
        .header("content-type", "multipart/x-mixed-replace; boundary=frame")
        .body(axum::body::Body::from_stream(stream))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cars_through_a_pulled_mjpeg_camera_are_one_passage_each_with_their_plate() {
    let reader = Arc::new(PlateReader::bundled().unwrap());
    let limits = DecodeLimits::default();
    let tarmac =
        valet_imaging::decode(&valet_imaging::synthetic::photo_jpeg(120, 90, None, 17), &limits).unwrap().image;
    let tarmac = valet_imaging::resize_rgb(&tarmac, WIDTH, HEIGHT);

    // The demo's cars the reader reads alone (a car it misreads is the reader's limit, not the
    // passage's, and is reported), then benchmark photos up to ten cars.
    let mut cars: Vec<(String, RgbImage)> = Vec::new();
    for (plate, jpeg) in DEMO_CARS {
        let picture = valet_imaging::decode(jpeg, &limits).unwrap().image;
        let read = read_text(&reader, &lane_frame(&tarmac, Some(&picture), 0, 0));
        if read == plate {
            cars.push((plate.to_owned(), picture));
        } else {
            eprintln!("demo car {plate}: the reader alone reads {read:?}; left out");
        }
    }
    let taken: Vec<String> = cars.iter().map(|c| c.0.clone()).collect();
    cars.extend(benchmark_cars(&reader, &tarmac, 10usize.saturating_sub(cars.len()), &taken));
    assert!(cars.len() >= 6, "only {} cars the reader reads", cars.len());
    eprintln!("{} cars: {:?}", cars.len(), cars.iter().map(|c| &c.0).collect::<Vec<_>>());

    let mut frames: Vec<Vec<u8>> = (0..20).map(|k| lane_frame(&tarmac, None, 0, k)).collect();
    let mut hang_up_at = 0;
    for (c, (_, picture)) in cars.iter().enumerate() {
        for k in 0..CAR_FRAMES {
            if (c, k) == HANG_UP_IN {
                hang_up_at = frames.len();
            }
            // The car creeps forward 6 px a frame.
            frames.push(lane_frame(&tarmac, Some(picture), 6 * k as i64 - 42, (c * 100 + k) as u32));
        }
        frames.extend((0..GAP_FRAMES).map(|k| lane_frame(&tarmac, None, 0, (c * 100 + 50 + k) as u32)));
    }
    let script = Arc::new(Script {
        empty: frames[0].clone(),
        frames,
        position: AtomicUsize::new(0),
        hang_up_at,
        hung_up: AtomicBool::new(false),
        connections: AtomicUsize::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route("/mjpeg", axum::routing::get(mjpeg)).with_state(script.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let config = CameraConfig {
        name: "gate-north".into(),
        url: format!("http://127.0.0.1:{port}/mjpeg"),
        direction: Direction::Entry,
        lane: Some("north".into()),
        region: None,
        every: Duration::from_millis(500),
    };
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Passage>(64);
    let camera = pull(config, reader, limits, sender).unwrap();

    // Wait for the whole script and a second of empty lane after it.
    let deadline = Instant::now() + Duration::from_secs(180);
    while script.position.load(Ordering::SeqCst) < script.frames.len() + 2 * FPS as usize {
        assert!(Instant::now() < deadline, "the camera stalled at frame {:?}: {:?}", script.position, camera.health());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let health = camera.health();
    drop(camera);
    let mut passages = Vec::new();
    while let Ok(Some(p)) = tokio::time::timeout(Duration::from_secs(2), receiver.recv()).await {
        passages.push(p);
    }

    let texts: Vec<&str> = passages.iter().map(|p| p.text.as_str()).collect();
    let plates: Vec<&str> = cars.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(texts, plates, "one passage per car, in order, with its plate; health {health:?}");
    let mut ids: Vec<String> = passages.iter().map(Passage::event_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), passages.len(), "passage ids are distinct");
    for p in &passages {
        assert_eq!(
            (p.camera.as_str(), p.lane.as_deref(), p.direction),
            ("gate-north", Some("north"), Direction::Entry)
        );
        assert!(p.first_frame_at <= p.decided_at && p.frames >= 1 && p.reads >= 1, "{p:?}");
        assert_eq!(p.candidates[0].text, p.text);
        let crop = valet_imaging::decode(p.crop_jpeg.as_deref().expect("a crop"), &limits).unwrap();
        assert!(crop.image.width() > 20, "{}", crop.image.width());
    }
    assert!(
        script.connections.load(Ordering::SeqCst) >= 2 && health.reconnects >= 1,
        "the hang-up was reconnected: {health:?}"
    );
    assert_eq!(health.passages, passages.len() as u64);
    // Gating: the empty lane (most of the script) is not read.
    assert!(health.frames_read * 3 < health.frames, "{health:?}");
}

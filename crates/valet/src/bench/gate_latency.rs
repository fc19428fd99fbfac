//! `valet bench gate-latency`: how long a car waits at the barrier, from the first frame that shows
//! it to the barrier command on MQTT (issue 18: p99 ≤ 300 ms on loopback).
//!
//! Default (`--from frame`): an embedded garage (`valet_server::run`, every function, SQLite in a
//! temporary directory) with an MQTT broker (`--broker`, default 127.0.0.1:1883; skipped with the
//! reason when none answers) pulls gate cameras from a loopback MJPEG server in this process. Each
//! car is one of the demo's rendered cars driving up to the barrier (a few frames sliding into place)
//! and standing a while on an empty lane; the clock starts when
//! the server writes the first frame with the car and stops when a subscriber on the lane's barrier
//! topic gets the command. So it covers the stream, motion gating, the plate reader, the passage
//! decision, the gate (store included) and MQTT. Each camera sees a plate at most once (a camera
//! suppresses a plate repeated within its cool-down), so the cars are spread over several
//! cameras, alternately entry and exit lanes.
//!
//! `--from passage`: the same garage without cameras, each passage handed straight to the
//! supervisor's channel: the gate + MQTT part alone.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::mpsc;
use valet_cameras::{CameraConfig, CameraError, Health, Passage, PassageId};
use valet_garage::{Candidate, Direction};
use valet_server::cameras::{Puller, Pulling};
use valet_server::demo::CARS;

use crate::report::median;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Start {
    /// The first frame with the car, served by a loopback MJPEG camera.
    Frame,
    /// The passage, handed to the supervisor: the gate and MQTT alone.
    Passage,
}

#[derive(Debug, clap::Args)]
pub struct GateLatencyArgs {
    /// Cars through the gates.
    #[arg(long, default_value_t = 54)]
    cars: usize,
    /// Where the clock starts.
    #[arg(long, value_enum, default_value = "frame")]
    from: Start,
    /// The MQTT broker the barriers listen on.
    #[arg(long, default_value = "127.0.0.1:1883")]
    broker: String,
    /// Frames per second the cameras serve.
    #[arg(long, default_value_t = 10)]
    fps: u32,
    /// How long each car stays in view.
    #[arg(long, default_value = "1500ms", value_parser = crate::cameras::parse_every)]
    dwell: Duration,
}

pub async fn run(args: GateLatencyArgs) -> anyhow::Result<ExitCode> {
    let address = args.broker.strip_prefix("mqtt://").unwrap_or(&args.broker).to_owned();
    let reachable = match tokio::net::lookup_host(&address).await.ok().and_then(|mut a| a.next()) {
        Some(addr) => std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok(),
        None => false,
    };
    if !reachable {
        println!("skipping: no MQTT broker answers at {address} (start one, e.g. mosquitto, or pass --broker)");
        return Ok(ExitCode::SUCCESS);
    }
    if args.cars == 0 {
        bail!("--cars is at least 1");
    }
    let prefix = format!("valet-bench-{}", std::process::id());
    let commands = Barriers::subscribe(&address, &prefix).await?;
    let latencies = match args.from {
        Start::Frame => from_frames(&args, &address, &prefix, &commands).await?,
        Start::Passage => from_passages(&args, &address, &prefix, &commands).await?,
    };
    report(&args, &latencies);
    Ok(ExitCode::SUCCESS)
}

/// Every barrier command received, by camera, with when it arrived.
#[derive(Clone)]
struct Barriers {
    received: Arc<Mutex<HashMap<String, Vec<Instant>>>>,
}

impl Barriers {
    async fn subscribe(address: &str, prefix: &str) -> anyhow::Result<Barriers> {
        let (host, port) = address.rsplit_once(':').context("the broker is HOST:PORT")?;
        let mut options =
            rumqttc::MqttOptions::new(format!("{prefix}-barriers"), host.to_owned(), port.parse::<u16>()?);
        options.set_keep_alive(Duration::from_secs(10));
        let (client, mut events) = rumqttc::AsyncClient::new(options, 64);
        client.subscribe(format!("{prefix}/barriers/+"), rumqttc::QoS::AtLeastOnce).await?;
        let received: Arc<Mutex<HashMap<String, Vec<Instant>>>> = Arc::default();
        let (subscribed, mut acked) = tokio::sync::oneshot::channel();
        let mut subscribed = Some(subscribed);
        let inbox = Arc::clone(&received);
        let topic_prefix = format!("{prefix}/barriers/");
        tokio::spawn(async move {
            let _client = client;
            loop {
                match events.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                        if let Some(tx) = subscribed.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(publish))) => {
                        let at = Instant::now();
                        if let Some(camera) = publish.topic.strip_prefix(&topic_prefix) {
                            inbox.lock().unwrap().entry(camera.to_owned()).or_default().push(at);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), &mut acked)
            .await
            .context("the broker did not confirm the barrier subscription within 10 s")??;
        Ok(Barriers { received })
    }

    fn count(&self, camera: &str) -> usize {
        self.received.lock().unwrap().get(camera).map_or(0, Vec::len)
    }

    /// Waits for `camera`'s command number `n` (0-based) up to `within`; when it arrived.
    async fn wait(&self, camera: &str, n: usize, within: Duration) -> Option<Instant> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(at) = self.received.lock().unwrap().get(camera).and_then(|v| v.get(n)).copied() {
                return Some(at);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// The garage, started on a temporary directory; stops when dropped.
struct Garage {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _data: tempfile::TempDir,
}

impl Drop for Garage {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn settings(data: &std::path::Path, broker: &str, prefix: &str) -> anyhow::Result<valet_server::Settings> {
    Ok(valet_server::Settings {
        listen: "127.0.0.1:0".parse()?,
        data_dir: data.to_path_buf(),
        mqtt_broker: Some(broker.to_owned()),
        mqtt_prefix: prefix.to_owned(),
        ..valet_server::Settings::default()
    })
}

/// What each loopback camera shows now, and when its first frame with the current car went out.
#[derive(Default)]
struct Lanes {
    showing: HashMap<String, Showing>,
}

/// One lane: the car in view (none: the empty lane) as the frames of its approach, how many of
/// them went out, and when the first did.
#[derive(Default)]
struct Showing {
    car: Option<Arc<Vec<Vec<u8>>>>,
    served: usize,
    first_served: Option<Instant>,
}

/// Frames of the car driving up to the barrier: the photo slid up into place by
/// [`APPROACH_STEP`] pixels a frame over [`APPROACH_FRAMES`] frames, then standing still. A real
/// car moves while it is read; a still photo would only be re-read once a second.
fn approach(jpeg: &[u8], lane: image::Rgb<u8>) -> anyhow::Result<Vec<Vec<u8>>> {
    let car = valet_imaging::decode(jpeg, &valet_imaging::DecodeLimits::default())?.image;
    (0..APPROACH_FRAMES)
        .rev()
        .map(|step| {
            let offset = step * APPROACH_STEP;
            let frame = image::RgbImage::from_fn(car.width(), car.height(), |x, y| {
                if y + offset < car.height() { *car.get_pixel(x, y + offset) } else { lane }
            });
            Ok(valet_imaging::encode_jpeg(&frame, 85)?)
        })
        .collect()
}

const APPROACH_FRAMES: u32 = 8;
const APPROACH_STEP: u32 = 6;

async fn from_frames(
    args: &GateLatencyArgs,
    broker: &str,
    prefix: &str,
    barriers: &Barriers,
) -> anyhow::Result<Vec<Option<f64>>> {
    let cameras = args.cars.div_ceil(CARS.len());
    let lanes: Arc<Mutex<Lanes>> = Arc::default();
    let lane_grey = image::Rgb([96, 100, 104]);
    let empty = {
        let image = image::RgbImage::from_pixel(960, 720, lane_grey);
        Arc::new(valet_imaging::encode_jpeg(&image, 85)?)
    };
    let approaches =
        CARS.iter().map(|(_, jpeg)| approach(jpeg, lane_grey).map(Arc::new)).collect::<anyhow::Result<Vec<_>>>()?;
    let url = mjpeg_server(Arc::clone(&lanes), Arc::clone(&empty), Duration::from_secs(1) / args.fps.max(1)).await?;
    let data = tempfile::tempdir()?;
    let store = valet_store::Store::open(data.path()).await?;
    let camera_name = |c: usize| format!("bench-lane-{c}");
    for c in 0..cameras {
        let direction = if c % 2 == 0 { Direction::Entry } else { Direction::Exit };
        store
            .gate_cameras()
            .add(&bench_camera(&camera_name(c), &format!("{url}/{}", camera_name(c)), direction))
            .await?;
    }
    drop(store);
    let garage = start(data, broker, prefix).await?;
    eprintln!("{cameras} cameras pulled; letting them connect and learn the empty lane…");
    tokio::time::sleep(Duration::from_secs(4)).await;

    let mut latencies = Vec::with_capacity(args.cars);
    for car in 0..args.cars {
        let camera = camera_name(car / CARS.len());
        let (plate, _) = CARS[car % CARS.len()];
        let before = barriers.count(&camera);
        lanes.lock().unwrap().showing.insert(
            camera.clone(),
            Showing { car: Some(Arc::clone(&approaches[car % CARS.len()])), ..Showing::default() },
        );
        let commanded = barriers.wait(&camera, before, Duration::from_secs(10)).await;
        let shown = lanes.lock().unwrap().showing.get(&camera).and_then(|lane| lane.first_served);
        let latency = match (shown, commanded) {
            (Some(shown), Some(commanded)) => Some(commanded.saturating_duration_since(shown).as_secs_f64() * 1000.0),
            _ => None,
        };
        match latency {
            Some(ms) => eprintln!("car {:>3} {plate} at {camera}: {ms:.1} ms", car + 1),
            None => eprintln!("car {:>3} {plate} at {camera}: no barrier command within 10 s", car + 1),
        }
        latencies.push(latency);
        // The car stays its while, then drives off; the lane is empty before the next one.
        let left_in_view = args.dwell.saturating_sub(shown.map_or(Duration::ZERO, |s| s.elapsed()));
        tokio::time::sleep(left_in_view).await;
        lanes.lock().unwrap().showing.insert(camera.clone(), Showing::default());
        // Longer than the lane tracker's EMPTY_GAP with room to spare: a gate's barrier closes
        // between two cars. A shorter gap makes the next car, unless read surely at once, part of
        // the last one's passage (that is the tracker's tailgating rule, not the latency).
        tokio::time::sleep(valet_cameras::lane::EMPTY_GAP.to_std().unwrap_or_default() * 2).await;
    }
    drop(garage);
    Ok(latencies)
}

/// A camera the bench adds to the garage's store, as an operator would.
fn bench_camera(name: &str, url: &str, direction: Direction) -> valet_store::StoredCamera {
    valet_store::StoredCamera {
        name: name.to_owned(),
        url: url.to_owned(),
        direction,
        lane: None,
        region: None,
        every_ms: 500,
        added_at: chrono::Utc::now(),
        added_by: "bench".to_owned(),
    }
}

async fn start(data: tempfile::TempDir, broker: &str, prefix: &str) -> anyhow::Result<Garage> {
    let settings = settings(data.path(), broker, prefix)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(e) = valet_server::run(settings, shutdown, |addr| {
            let _ = ready_tx.send(addr);
        })
        .await
        {
            eprintln!("bench garage failed: {e:#}");
        }
    });
    ready_rx.await.context("the bench garage did not start")?;
    Ok(Garage { stop: Some(stop), _data: data })
}

/// A loopback MJPEG server: `GET /NAME` streams what lane `NAME` shows (the empty lane when
/// nothing), noting when the first frame with each car went out. Returns its base URL.
async fn mjpeg_server(lanes: Arc<Mutex<Lanes>>, empty: Arc<Vec<u8>>, every: Duration) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let lanes = Arc::clone(&lanes);
            let empty = Arc::clone(&empty);
            tokio::spawn(async move {
                let _ = socket.set_nodelay(true);
                let mut request = vec![0u8; 4096];
                let n = socket.read(&mut request).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&request[..n]);
                let name = text.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_owned();
                let head = "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\
                            Cache-Control: no-cache\r\nConnection: close\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    let jpeg = {
                        let mut lanes = lanes.lock().unwrap();
                        match lanes.showing.get_mut(&name) {
                            Some(Showing { car: Some(car), served, first_served }) => {
                                first_served.get_or_insert_with(Instant::now);
                                let frame = Arc::new(car[(*served).min(car.len() - 1)].clone());
                                *served += 1;
                                frame
                            }
                            _ => Arc::clone(&empty),
                        }
                    };
                    let part = format!("--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", jpeg.len());
                    if socket.write_all(part.as_bytes()).await.is_err()
                        || socket.write_all(&jpeg).await.is_err()
                        || socket.write_all(b"\r\n").await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Ok(format!("http://{addr}"))
}

/// Hands the supervisor's passage channel to the bench instead of pulling a camera.
struct Handover(Mutex<Option<mpsc::Sender<Passage>>>);

struct Handed;

impl Pulling for Handed {
    fn health(&self) -> Health {
        Health::default()
    }
}

/// The handover as the supervisor holds it.
struct HandoverPuller(Arc<Handover>);

impl Puller for HandoverPuller {
    fn start(&self, _: CameraConfig, passages: mpsc::Sender<Passage>) -> Result<Box<dyn Pulling>, CameraError> {
        *self.0.0.lock().unwrap() = Some(passages);
        Ok(Box::new(Handed))
    }
}

async fn from_passages(
    args: &GateLatencyArgs,
    broker: &str,
    prefix: &str,
    barriers: &Barriers,
) -> anyhow::Result<Vec<Option<f64>>> {
    let data = tempfile::tempdir()?;
    let settings = settings(data.path(), broker, prefix)?;
    let store = valet_server::garage::open_store(&settings).await?;
    let gate = Arc::new(valet_server::garage::open(&settings, &store).await?);
    let (mqtt, _) = valet_server::Mqtt::connect(broker, prefix, 1 << 20, false)?;
    let classifier = Arc::new(valet_occupancy::OccupancyClassifier::bundled()?);
    let wiring = valet_server::Wiring { mqtt: Some(mqtt), ..valet_server::Wiring::default() };
    let state =
        valet_server::AppState::new(store.clone(), gate, valet_server::lots::Lots::default(), classifier, &settings)
            .wired(wiring);
    let handover = Arc::new(Handover(Mutex::new(None)));
    valet_server::cameras::spawn(&state, Arc::new(HandoverPuller(Arc::clone(&handover))));
    let camera = "bench-lane";
    store.gate_cameras().add(&bench_camera(camera, "http://127.0.0.1:9/unused", Direction::Entry)).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let passages = loop {
        if let Some(sender) = handover.0.lock().unwrap().clone() {
            break sender;
        }
        if Instant::now() > deadline {
            bail!("the supervisor did not start the bench camera within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The garage's own MQTT connection comes up in the background.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut latencies = Vec::with_capacity(args.cars);
    for car in 0..args.cars {
        let plate = format!("BE{:03}NC", car % 1000);
        let before = barriers.count(camera);
        let now = chrono::Utc::now();
        let passage = Passage {
            camera: camera.to_owned(),
            lane: None,
            direction: Direction::Entry,
            id: PassageId(car as u64 + 1),
            first_frame_at: now,
            decided_at: now,
            text: plate.clone(),
            confidence: 0.97,
            candidates: vec![Candidate { text: plate.clone(), confidence: 0.97 }],
            crop_jpeg: None,
            frames: 10,
            reads: 5,
        };
        let sent = Instant::now();
        passages.send(passage).await.context("the supervisor stopped")?;
        let latency = barriers
            .wait(camera, before, Duration::from_secs(10))
            .await
            .map(|at| at.saturating_duration_since(sent).as_secs_f64() * 1000.0);
        if latency.is_none() {
            eprintln!("car {:>3} {plate}: no barrier command within 10 s", car + 1);
        }
        latencies.push(latency);
    }
    Ok(latencies)
}

fn report(args: &GateLatencyArgs, latencies: &[Option<f64>]) {
    let mut measured: Vec<f64> = latencies.iter().flatten().copied().collect();
    measured.sort_by(f64::total_cmp);
    let missed = latencies.len() - measured.len();
    let from = match args.from {
        Start::Frame => "first frame with the car served",
        Start::Passage => "passage handed to the gate",
    };
    println!("gate latency: {from} → barrier command received over MQTT ({} cars)", latencies.len());
    println!("{:>6} {:>10} {:>10} {:>10} {:>10} {:>8}", "cars", "median ms", "p99 ms", "min ms", "max ms", "missed");
    if measured.is_empty() {
        println!("{:>6} {:>10} {:>10} {:>10} {:>10} {missed:>8}", latencies.len(), "-", "-", "-", "-");
        return;
    }
    let p99 = measured[(measured.len() * 99).div_ceil(100).saturating_sub(1)];
    println!(
        "{:>6} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {missed:>8}",
        latencies.len(),
        median(&measured),
        p99,
        measured[0],
        measured[measured.len() - 1]
    );
    println!("target: p99 ≤ 300 ms on loopback — {}", if p99 <= 300.0 && missed == 0 { "met" } else { "NOT met" });
}

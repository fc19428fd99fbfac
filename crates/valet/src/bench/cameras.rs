//! `valet bench cameras`: how many 10 fps gate cameras one box keeps up with, motion gating on.
//!
//! Each simulated camera is an in-process feeder that puts 1280×720 JPEG frames into a
//! `valet_cameras::FrameSlot` at `--fps`, as a pulled source does, and the real lane worker
//! (`valet_cameras::spawn_lane`: gating → plate reader on the blocking pool → passage tracker)
//! takes them. The lane is empty tarmac with a little sensor noise; every `--car-every` seconds a
//! car (one of the demo's six rendered gate frames, pasted into the lane) drives through it for 15
//! frames. Cameras start at different phases, as real lanes do. Per camera count it prints frames
//! in, frames read, frames dropped (the reader fell behind and a newer frame replaced one), cars,
//! passages, cars read right, the time from a car's first frame to its read, and the process's CPU
//! time over the run; a count *keeps up* when at most `--max-drop` % of frames were dropped and
//! every car came out as exactly one passage with its plate.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use image::RgbImage;
use tokio::sync::mpsc;
use valet_cameras::{CameraConfig, Frame, FrameSlot, HealthRecorder, Passage};
use valet_garage::Direction;
use valet_imaging::DecodeLimits;

use crate::report::{median, percentile};

/// Frames a car is in the picture: 1.5 s at 10 fps, the short end of the 10–30 the issue measured.
const CAR_FRAMES: usize = 15;
/// The car moves this many pixels a frame across the lane.
const CAR_STEP: u32 = 16;
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;
/// Differently noised empty-lane frames, so consecutive empty frames differ as a sensor's do.
const EMPTY_VARIANTS: usize = 4;

#[derive(Debug, clap::Args)]
pub struct CamerasBenchArgs {
    /// Camera counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,12,16")]
    cameras: Vec<usize>,
    /// Seconds of frames per count (rounded up to whole car cycles).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Frames per second per camera.
    #[arg(long, default_value_t = 10)]
    fps: u32,
    /// A car passes each camera this often, in seconds.
    #[arg(long, default_value_t = 4.0)]
    car_every: f64,
    /// A count keeps up when at most this percentage of frames was dropped.
    #[arg(long, default_value_t = 5.0)]
    max_drop: f64,
}

/// A frame's JPEG bytes, shared by every camera that shows it.
type Jpeg = Arc<Vec<u8>>;

/// One camera's frames for one car cycle: the car's frames, then the empty lane.
struct Cycle {
    plate: String,
    frames: Vec<Arc<Vec<u8>>>,
}

pub async fn run(args: CamerasBenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.fps >= 1 && args.car_every > 0.0, "--fps and --car-every must be positive");
    let cycle_frames = ((args.car_every * f64::from(args.fps)).round() as usize).max(CAR_FRAMES + 10);
    eprintln!("rendering {}×{} lane frames…", WIDTH, HEIGHT);
    let reader = Arc::new(valet_plates::PlateReader::bundled()?);
    let (cycles, empties) = render_cycles(cycle_frames, &reader)?;
    anyhow::ensure!(!cycles.is_empty(), "the reader reads none of the demo cars alone");
    let limits = DecodeLimits::default();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Each car at most once per camera: the same plate again within a minute is, rightly, the
    // same car to the passage tracker.
    let cycles_per_camera =
        ((args.seconds as f64 * f64::from(args.fps) / cycle_frames as f64).ceil().max(1.0) as usize).min(cycles.len());
    println!(
        "{} fps cameras, 1280×720 JPEG frames (~{} KB), a car every {:.1} s for {CAR_FRAMES} frames, {} cars per camera \
         ({:.0} s), {cores} cores; keeps up = ≤ {:.1} % dropped and every car one passage with its plate",
        args.fps,
        cycles[0].frames[0].len() / 1024,
        cycle_frames as f64 / f64::from(args.fps),
        cycles_per_camera,
        (cycles_per_camera * cycle_frames) as f64 / f64::from(args.fps),
        args.max_drop,
    );
    println!("cars: {}", cycles.iter().map(|c| c.plate.as_str()).collect::<Vec<_>>().join(", "));
    println!(
        "{:>7} | {:>9} {:>7} {:>6} | {:>7} {:>6} | {:>4} {:>8} {:>5} | {:>17} | {:>8} | keeps up",
        "cameras",
        "frames in",
        "read",
        "read %",
        "dropped",
        "drop %",
        "cars",
        "passages",
        "right",
        "car→read p50/p99",
        "CPU busy",
    );
    let mut largest = None;
    for &n in &args.cameras {
        let row = run_count(n, &args, &cycles, &empties, cycles_per_camera, &reader, limits).await?;
        let keeps_up = row.drop_percent() <= args.max_drop && row.right == row.cars && row.passages == row.cars;
        if keeps_up {
            largest = Some(n);
        }
        println!(
            "{n:>7} | {:>9} {:>7} {:>5.1}% | {:>7} {:>5.1}% | {:>4} {:>8} {:>5} | {:>7.0} / {:>4.0} ms | {:>7.0}% | {}",
            row.frames,
            row.read,
            100.0 * row.read as f64 / row.frames.max(1) as f64,
            row.dropped,
            row.drop_percent(),
            row.cars,
            row.passages,
            row.right,
            median(&row.latencies_ms),
            percentile(&row.latencies_ms, 0.99),
            100.0 * row.cpu_seconds / (row.wall_seconds * cores as f64),
            if keeps_up { "yes" } else { "no" },
        );
    }
    match largest {
        Some(n) => println!("largest count that keeps up: {n} cameras"),
        None => println!("no count kept up"),
    }
    println!(
        "CPU busy = process CPU time / (wall time × {cores} cores); car→read = first frame with the car → its passage"
    );
    Ok(ExitCode::SUCCESS)
}

struct Row {
    frames: u64,
    read: u64,
    dropped: u64,
    cars: usize,
    passages: usize,
    right: usize,
    latencies_ms: Vec<f64>,
    cpu_seconds: f64,
    wall_seconds: f64,
}

impl Row {
    fn drop_percent(&self) -> f64 {
        100.0 * self.dropped as f64 / self.frames.max(1) as f64
    }
}

async fn run_count(
    n: usize,
    args: &CamerasBenchArgs,
    cycles: &[Cycle],
    empties: &[Arc<Vec<u8>>],
    cycles_per_camera: usize,
    reader: &Arc<valet_plates::PlateReader>,
    limits: DecodeLimits,
) -> anyhow::Result<Row> {
    let period = Duration::from_secs_f64(1.0 / f64::from(args.fps));
    let (sender, mut receiver) = mpsc::channel::<Passage>(1024);
    let mut cameras = Vec::new();
    for i in 0..n {
        let config = CameraConfig {
            name: format!("bench-{i}"),
            url: "http://bench.invalid/mjpeg".into(),
            direction: Direction::Entry,
            lane: None,
            region: None,
            every: Duration::from_millis(500),
        };
        let (slot, health) = (FrameSlot::new(), HealthRecorder::new());
        let lane =
            valet_cameras::spawn_lane(&config, slot.clone(), health.clone(), reader.clone(), limits, sender.clone());
        // Lanes start at different phases; each camera sees the cars in its own order.
        let lead_in = (i * 7) % cycles[0].frames.len() + 5;
        let mut timeline: Vec<Arc<Vec<u8>>> = (0..lead_in).map(|k| empties[k % empties.len()].clone()).collect();
        let mut plates = Vec::new();
        for c in 0..cycles_per_camera {
            let cycle = &cycles[(i + c) % cycles.len()];
            plates.push(cycle.plate.clone());
            timeline.extend(cycle.frames.iter().cloned());
        }
        let feeder = tokio::spawn(feed(timeline, period, slot.clone(), health.clone()));
        cameras.push((config.name, plates, slot, health, lane, feeder));
    }
    drop(sender);
    // Passages are stamped as they arrive: car → read is the first frame's arrival to this.
    let collector = tokio::spawn(async move {
        let mut passages = Vec::new();
        while let Some(p) = receiver.recv().await {
            passages.push((Utc::now(), p));
        }
        passages
    });
    let (cpu_start, wall_start) = (cpu_seconds(), Instant::now());
    let mut row = Row {
        frames: 0,
        read: 0,
        dropped: 0,
        cars: 0,
        passages: 0,
        right: 0,
        latencies_ms: Vec::new(),
        cpu_seconds: 0.0,
        wall_seconds: 0.0,
    };
    let mut expected = Vec::new();
    for (name, plates, slot, health, lane, feeder) in cameras {
        feeder.await?;
        slot.close();
        lane.await?;
        let h = health.snapshot();
        row.frames += h.frames;
        row.read += h.frames_read;
        row.dropped += h.frames_dropped;
        row.cars += plates.len();
        expected.push((name, plates));
    }
    row.wall_seconds = wall_start.elapsed().as_secs_f64();
    row.cpu_seconds = cpu_seconds() - cpu_start;
    let stamped = collector.await?;
    row.latencies_ms = stamped
        .iter()
        .map(|(received, p)| (*received - p.first_frame_at).num_microseconds().unwrap_or(0) as f64 / 1e3)
        .collect();
    let passages: Vec<Passage> = stamped.into_iter().map(|(_, p)| p).collect();
    row.passages = passages.len();
    for (name, plates) in &expected {
        let got: Vec<&str> = passages.iter().filter(|p| p.camera == *name).map(|p| p.text.as_str()).collect();
        let plates: Vec<&str> = plates.iter().map(String::as_str).collect();
        row.right += common_subsequence(&plates, &got);
    }
    Ok(row)
}

/// Puts `timeline`'s frames into `slot` every `period`, as a camera's source does.
async fn feed(timeline: Vec<Arc<Vec<u8>>>, period: Duration, slot: FrameSlot, health: HealthRecorder) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for jpeg in timeline {
        ticks.tick().await;
        let at = Utc::now();
        health.frame(at);
        if slot.put(Frame { jpeg: jpeg.as_ref().clone(), at }) {
            health.dropped();
        }
    }
    // The last frame's turn to be taken.
    tokio::time::sleep(period).await;
}

/// The lane frames: per demo car, its passage (the car moving across the lane) and the empty lane
/// until the next; and the empty-lane variants. Only the cars the reader reads right from one
/// still frame are kept (the others are printed): this measures the passages, not the reader.
fn render_cycles(cycle_frames: usize, reader: &valet_plates::PlateReader) -> anyhow::Result<(Vec<Cycle>, Vec<Jpeg>)> {
    let limits = DecodeLimits::default();
    let tarmac = valet_imaging::decode(&valet_imaging::synthetic::photo_jpeg(160, 90, None, 17), &limits)?.image;
    let tarmac = valet_imaging::resize_rgb(&tarmac, WIDTH, HEIGHT);
    let empties: Vec<Arc<Vec<u8>>> = (0..EMPTY_VARIANTS)
        .map(|seed| Ok(Arc::new(valet_imaging::encode_jpeg(&noisy(&tarmac, seed as u32), 85)?)))
        .collect::<anyhow::Result<_>>()?;
    let mut cycles = Vec::new();
    let mut cars: Vec<(String, RgbImage)> = Vec::new();
    for (plate, jpeg) in valet_server::demo::CARS {
        cars.push((plate.to_owned(), valet_imaging::decode(jpeg, &limits)?.image));
    }
    cars.extend(benchmark_cars(BENCHMARK_CARS));
    for (plate, car) in cars {
        if cycles.iter().any(|c: &Cycle| matching_key(&c.plate) == matching_key(&plate)) {
            continue;
        }
        let mut frames = Vec::new();
        for k in 0..CAR_FRAMES as u32 {
            let mut frame = noisy(&tarmac, k);
            let x = WIDTH.saturating_sub(car.width()).min(16 + k * CAR_STEP);
            image::imageops::replace(
                &mut frame,
                &car,
                i64::from(x),
                i64::from(HEIGHT.saturating_sub(car.height()) / 2),
            );
            frames.push(Arc::new(valet_imaging::encode_jpeg(&frame, 85)?));
        }
        let middle = valet_imaging::decode(&frames[CAR_FRAMES / 2], &limits)?.image;
        let read = reader.read(&middle, &valet_plates::ReaderOptions::default())?;
        let text = read.plates.first().map_or("", |p| p.text.as_str());
        if text != plate {
            eprintln!("car {plate}: the reader alone reads {text:?}; left out");
            continue;
        }
        for k in CAR_FRAMES..cycle_frames {
            frames.push(empties[k % empties.len()].clone());
        }
        cycles.push(Cycle { plate, frames });
    }
    Ok((cycles, empties))
}

/// openalpr benchmark photos added to the demo's cars when `../shared/data` has them, so that a
/// camera sees different plates within the passage cool-down.
const BENCHMARK_CARS: usize = 12;

/// Up to `n` labelled single-plate photos of the openalpr benchmark, fitted into the lane's size.
fn benchmark_cars(n: usize) -> Vec<(String, RgbImage)> {
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/openalpr-benchmarks/endtoend");
    let Ok(regions) = std::fs::read_dir(&root) else {
        eprintln!("{} is absent: the demo's cars only", root.display());
        return Vec::new();
    };
    let mut labels: Vec<_> = regions
        .flatten()
        .flat_map(|region| std::fs::read_dir(region.path()).into_iter().flatten().flatten())
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "txt"))
        .collect();
    labels.sort();
    let mut cars = Vec::new();
    for label in labels.into_iter().take(n * 2) {
        let Ok(plates) = valet_plates::eval::parse_labels(&std::fs::read_to_string(&label).unwrap_or_default()) else {
            continue;
        };
        let [plate] = &plates[..] else { continue };
        let Ok(bytes) = std::fs::read(label.with_file_name(&plate.file)) else { continue };
        let Ok(photo) = valet_imaging::decode(&bytes, &DecodeLimits::default()) else { continue };
        let (w, h) = photo.image.dimensions();
        let scale = (f64::from(WIDTH - 16 - CAR_FRAMES as u32 * CAR_STEP) / f64::from(w))
            .min(f64::from(HEIGHT) / f64::from(h))
            .min(1.0);
        let size = (((f64::from(w) * scale) as u32).max(1), ((f64::from(h) * scale) as u32).max(1));
        cars.push((plate.text.clone(), valet_imaging::resize_rgb(&photo.image, size.0, size.1)));
    }
    cars
}

fn matching_key(text: &str) -> String {
    valet_plates::confusion::matching_key(text)
}

/// `image` with a little sensor noise (±3 grey levels), different per `seed`.
fn noisy(image: &RgbImage, seed: u32) -> RgbImage {
    let mut out = image.clone();
    let mut state = 0x9e37_79b9u32.wrapping_mul(seed + 1);
    for p in out.pixels_mut() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let delta = (state % 7) as i16 - 3;
        p.0 = p.0.map(|c| (i16::from(c) + delta).clamp(0, 255) as u8);
    }
    out
}

/// Plates read right, in order: the longest common subsequence of the cars and the passages' texts.
fn common_subsequence(cars: &[&str], texts: &[&str]) -> usize {
    let mut row = vec![0usize; texts.len() + 1];
    for car in cars {
        let mut diagonal = 0;
        for (j, text) in texts.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if car == text { diagonal + 1 } else { row[j + 1].max(row[j]) };
            diagonal = above;
        }
    }
    row[texts.len()]
}

/// This process's CPU time (user + system, all threads) in seconds, from `/proc/self/stat`
/// (Linux, in USER_HZ = 100 ticks a second); 0 elsewhere.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plates_read_right_are_counted_in_order_once() {
        assert_eq!(common_subsequence(&["A", "B", "C"], &["A", "B", "C"]), 3);
        assert_eq!(common_subsequence(&["A", "B", "C"], &["A", "A", "C"]), 2);
        assert_eq!(common_subsequence(&["A", "B", "C"], &["X", "B"]), 1);
        assert_eq!(common_subsequence(&["A", "B"], &[]), 0);
    }

    #[test]
    fn cpu_time_is_counted() {
        let start = cpu_seconds();
        let mut x = 0u64;
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(300) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        assert!(x != 1 && cpu_seconds() > start, "{start}");
    }
}

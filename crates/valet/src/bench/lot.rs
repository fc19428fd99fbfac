//! `valet bench lot`: ms per frame against the number of spaces (10, 50, 100, 200 by default) on
//! a 1280×720 camera frame, medians of warm runs, with decode measured separately.
//!
//! The frame is a synthetic photo-like JPEG (`valet_imaging::synthetic`), or `--frame FILE`; the
//! spaces are `valet_lot::synthetic::grid_layout`'s PKLot-sized quads. Sampling maps are built once
//! per layout before timing (their cost is printed too), as a running garage builds them once.

use crate::report::median;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use valet_imaging::DecodeLimits;
use valet_lot::synthetic::grid_layout;
use valet_lot::{CameraId, LotReader, WarpMode};
use valet_occupancy::OccupancyClassifier;

#[derive(Debug, clap::Args)]
pub struct LotBenchArgs {
    /// Space counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "10,50,100,200")]
    spaces: Vec<usize>,
    /// Timed runs per count (after 3 warm-up runs).
    #[arg(long, default_value_t = 30)]
    runs: u32,
    /// A real frame to use instead of the synthetic 1280×720 one.
    #[arg(long)]
    frame: Option<PathBuf>,
    /// How spaces are warped to the model input: via[:SIDE] or direct[:SAMPLES].
    #[arg(long, value_parser = crate::lot::parse_warp, default_value = "direct:2")]
    warp: WarpMode,
}

pub fn run(args: LotBenchArgs) -> anyhow::Result<ExitCode> {
    let bytes = match &args.frame {
        Some(path) => std::fs::read(path)?,
        None => valet_imaging::synthetic::photo_jpeg(1280, 720, Some(200_000), 11),
    };
    let limits = DecodeLimits::default();
    let mut decode = Vec::new();
    let mut frame = None;
    for _ in 0..args.runs.max(1) + 3 {
        let t = Instant::now();
        let decoded = valet_imaging::decode(&bytes, &limits)?;
        decode.push(ms(t));
        frame = Some(decoded.image);
    }
    let decode_ms = median(&decode[3.min(decode.len() - 1)..]);
    let frame = frame.expect("decoded at least once");
    let (w, h) = frame.dimensions();
    let classifier = Arc::new(OccupancyClassifier::bundled()?);
    let cam = CameraId::new("cam1");
    println!(
        "frame {w}×{h} ({} bytes), model {} at {}², warp {}, {} threads available; medians of {} warm runs",
        bytes.len(),
        classifier.spec().model,
        classifier.spec().input_size,
        args.warp,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        args.runs
    );
    println!("decode (valet_imaging::decode): {decode_ms:.2} ms per frame, not included below");
    println!(
        "{:>7} | {:>9} {:>9} {:>10} | {:>12} | {:>14} | {:>13}",
        "spaces", "warp ms", "model ms", "frame ms", "ms per space", "+ decode ms", "maps ms (once)"
    );
    for &n in &args.spaces {
        let reader = LotReader::new(grid_layout(n, w, h), classifier.clone(), args.warp);
        let t = Instant::now();
        reader.plan(&cam, w, h)?;
        let plan_ms = ms(t);
        let (mut warp, mut model, mut total) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..args.runs.max(1) + 3 {
            let t = Instant::now();
            let reading = reader.read(&cam, &frame)?;
            if run >= 3 {
                total.push(ms(t));
                warp.push(reading.warp_ms);
                model.push(reading.model_ms);
            }
        }
        let frame_ms = median(&total);
        println!(
            "{n:>7} | {:>9.2} {:>9.2} {frame_ms:>10.2} | {:>12.3} | {:>14.2} | {plan_ms:>13.1}",
            median(&warp),
            median(&model),
            frame_ms / n.max(1) as f64,
            frame_ms + decode_ms,
        );
    }
    println!("frame ms = warp + one batched inference (chunks of {}) + bookkeeping", valet_occupancy::MAX_BATCH);
    Ok(ExitCode::SUCCESS)
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

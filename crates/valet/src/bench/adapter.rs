//! `valet bench adapter DIR`: what fitting one camera's adapter costs, stage by stage, on labelled
//! patches (`busy/`, `free/`, named `FRAME_BAY.jpg` as `valet eval occupancy --calibrate` reads
//! them). The labels are taken evenly over DIR's frames, turned into the PNG crops the store keeps,
//! then each run decodes them, runs the universal model over them and fits (with its
//! cross-validation by frame), as `valet_calibration::fit_camera` does.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use valet_imaging::DecodeLimits;
use valet_occupancy::{Adapter, LabelledObservation, OccupancyClassifier};

use crate::eval::{frame_and_bay, labelled_patches};

#[derive(Debug, clap::Args)]
pub struct AdapterBenchArgs {
    /// Labelled patches: `busy/` and `free/` folders.
    dir: PathBuf,
    /// Labels per fit.
    #[arg(long, default_value_t = 500)]
    labels: usize,
    /// Fits timed (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

pub fn run(args: AdapterBenchArgs) -> anyhow::Result<ExitCode> {
    let all = labelled_patches(&args.dir)?;
    if all.len() < args.labels {
        bail!("{} holds {} patches, fewer than --labels {}", args.dir.display(), all.len(), args.labels);
    }
    // Evenly spaced over the sorted names: every frame and bay represented, both states.
    let step = all.len() as f64 / args.labels as f64;
    let picked: Vec<_> = (0..args.labels).map(|i| &all[(i as f64 * step) as usize]).collect();
    let limits = DecodeLimits::default();
    let mut crops = Vec::with_capacity(picked.len());
    for (path, state) in &picked {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let image = valet_imaging::decode(&bytes, &limits)?.image;
        let mut png = std::io::Cursor::new(Vec::new());
        image.write_to(&mut png, image::ImageFormat::Png)?;
        let (frame, bay) = frame_and_bay(path);
        crops.push((png.into_inner(), frame, bay, *state));
    }
    let classifier = OccupancyClassifier::bundled()?;
    let (mut decode, mut observe, mut fit, mut total) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    for _ in 0..args.runs.max(1) {
        let t0 = Instant::now();
        let patches: Vec<_> = crops
            .iter()
            .map(|(png, ..)| valet_imaging::decode(png, &limits).map(|d| d.image))
            .collect::<Result<_, _>>()?;
        let t1 = Instant::now();
        let observations = classifier.observe(&patches)?;
        let t2 = Instant::now();
        let labels: Vec<LabelledObservation> = crops
            .iter()
            .zip(observations)
            .map(|((_, frame, bay, state), observation)| LabelledObservation {
                space: bay.clone(),
                frame: frame.clone(),
                state: *state,
                observation,
            })
            .collect();
        let fitted = Adapter::fit(&classifier.spec().model, &labels)?;
        let t3 = Instant::now();
        decode.push((t1 - t0).as_secs_f64() * 1e3);
        observe.push((t2 - t1).as_secs_f64() * 1e3);
        fit.push((t3 - t2).as_secs_f64() * 1e3);
        total.push((t3 - t0).as_secs_f64() * 1e3);
        last = Some(fitted);
    }
    let fitted = last.expect("at least one run");
    println!(
        "{} labels ({} frames) from {}, {} runs, model {}, {} cores",
        fitted.labels,
        fitted.frames,
        args.dir.display(),
        args.runs.max(1),
        classifier.spec().model,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("stage                                   median ms      min ms");
    for (name, ms) in [
        ("decode the PNG crops", &mut decode),
        ("universal model (logits + embedding)", &mut observe),
        ("fit + cross-validation by frame", &mut fit),
        ("total", &mut total),
    ] {
        ms.sort_by(f64::total_cmp);
        println!("{name:<38} {:>10.1} {:>11.1}", ms[ms.len() / 2], ms[0]);
    }
    let cv = fitted.cross_validated;
    println!(
        "cross-validated by frame on the labels: universal {:.2} %, adapted {:.2} % ({})",
        cv.universal * 100.0,
        cv.adapted * 100.0,
        if fitted.beats_universal() { "kept" } else { "refused" }
    );
    Ok(ExitCode::SUCCESS)
}

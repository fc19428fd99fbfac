//! `valet eval`: a bundled model measured on labelled data.
//!
//! `valet eval occupancy DIR`: accuracy, per-class precision/recall, confusion matrix, ms per patch.
//! DIR holds `busy/` and `free/` folders (CNRPark layout), possibly nested per camera
//! (`A/busy/…`, `B/free/…`); a file's label is its nearest `busy`/`free` ancestor.
//! `--calibrate CAL_DIR` first fits the camera's adapter on CAL_DIR's patches as the product
//! does ([`valet_occupancy::Adapter::fit`], kept only if it beats the universal model
//! cross-validated by frame), then scores DIR through it. A patch's bay is the last `_`-separated token
//! of its file stem and its frame the rest (CNRPark's `YYYYMMDD_HHMM_BAY.jpg`).
//! `valet eval plates DIR` is in [`plates`], `valet eval lot DIR` (whole PKLot frames) in [`lot`],
//! `valet eval gate DIR` (plate photos through the gate, entry to charge) in [`gate`].

mod gate;
mod lot;
pub(crate) mod plates;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use serde_json::json;
use valet_imaging::DecodeLimits;
use valet_occupancy::{Adapter, Confusion, Fit, LabelledObservation, MAX_BATCH, OccupancyClassifier, SpaceState};

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Space patches in `busy/` and `free/` folders.
    Occupancy {
        /// A folder with `busy/` and `free/` folders of space patches (nested per camera allowed).
        dir: PathBuf,
        /// Which bundled network to measure.
        #[arg(long, value_enum, default_value_t = Model::Occupancy)]
        model: Model,
        /// Labelled patches of the same camera (`busy/`, `free/`, named `FRAME_BAY.jpg`) to fit
        /// the camera's adapter on first, as the product does; those patches are not scored.
        #[arg(long, value_name = "CAL_DIR")]
        calibrate: Option<PathBuf>,
        /// The last line is one JSON object with n, accuracy, ms_per_patch and the rest.
        #[arg(long)]
        json: bool,
    },
    /// Plate photos in the openalpr benchmark layout (`name.jpg` + `name.txt`), one region folder
    /// or a folder of `us/`, `eu/`, `br/`.
    Plates(plates::PlatesArgs),
    /// Whole frames with PKLot XML labels: every space warped and classified.
    Lot(lot::LotArgs),
    /// Plate photos (the `plates` layout) through the gate: each plate signed up, the photo read as
    /// the entry and, a minute later, the exit; charged to the right driver, a wrong one, reviewed.
    Gate(gate::GateArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Model {
    /// The model Valet ships with.
    Occupancy,
    /// The faithful mAlexNet reference (224², no LRN).
    Malexnet,
}

pub async fn run(cmd: EvalCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        EvalCommand::Occupancy { dir, model, calibrate, json } => occupancy(dir, model, calibrate, json),
        EvalCommand::Plates(args) => plates::run(args),
        EvalCommand::Lot(args) => lot::run(args),
        EvalCommand::Gate(args) => gate::run(args).await,
    }
}

fn occupancy(dir: PathBuf, model: Model, calibrate: Option<PathBuf>, json: bool) -> anyhow::Result<ExitCode> {
    let classifier = match model {
        Model::Occupancy => OccupancyClassifier::bundled()?,
        Model::Malexnet => OccupancyClassifier::reference_malexnet()?,
    };
    let labelled = labelled_patches(&dir)?;
    let limits = DecodeLimits::default();
    let calibration = calibrate.map(|cal| calibrated(&classifier, &cal, &limits)).transpose()?;
    let adapter = calibration.as_ref().and_then(|c| c.fit.beats_universal().then_some(&c.fit.adapter));

    let mut confusion = Confusion::default();
    let (mut decode_s, mut model_s) = (0.0, 0.0);
    let mut unreadable = Vec::new();
    for chunk in labelled.chunks(MAX_BATCH) {
        let t = Instant::now();
        let mut patches = Vec::with_capacity(chunk.len());
        let mut truths = Vec::with_capacity(chunk.len());
        let mut bays = Vec::with_capacity(chunk.len());
        for (path, truth) in chunk {
            let read = std::fs::read(path).map_err(anyhow::Error::from);
            match read.and_then(|b| Ok(valet_imaging::decode(&b, &limits)?)) {
                Ok(decoded) => {
                    patches.push(decoded.image);
                    truths.push(*truth);
                    bays.push(frame_and_bay(path).1);
                }
                Err(e) => unreadable.push(format!("{}: {e:#}", path.display())),
            }
        }
        decode_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let verdicts = match adapter {
            None => classifier.classify(&patches)?,
            Some(adapter) => {
                classifier.observe(&patches)?.iter().zip(&bays).map(|(o, bay)| adapter.verdict(bay, o)).collect()
            }
        };
        model_s += t.elapsed().as_secs_f64();
        for (truth, verdict) in truths.iter().zip(verdicts) {
            confusion.add(*truth, verdict.state);
        }
    }

    let n = confusion.total();
    let ms_per_patch = model_s * 1e3 / n.max(1) as f64;
    let decode_ms_per_patch = decode_s * 1e3 / n.max(1) as f64;
    let accuracy = confusion.accuracy().unwrap_or(0.0);
    let occupied = confusion.class(SpaceState::Occupied);
    let free = confusion.class(SpaceState::Free);

    println!(
        "{} patches in {} ({} occupied, {} free), model {}",
        n,
        dir.display(),
        occupied.support,
        free.support,
        classifier.spec().model
    );
    for line in &unreadable {
        println!("  unreadable: {line}");
    }
    print_confusion(&confusion);
    println!(
        "ms per patch: model {ms_per_patch:.3} (preprocess + inference, batches of {MAX_BATCH}); decode {decode_ms_per_patch:.3}"
    );
    if let Some(c) = &calibration {
        c.print();
    }
    if json {
        println!(
            "{}",
            json!({
                "n": n,
                "accuracy": accuracy,
                "ms_per_patch": ms_per_patch,
                "decode_ms_per_patch": decode_ms_per_patch,
                "model": classifier.spec().model,
                "occupied": occupied,
                "free": free,
                "confusion": { "rows": "truth", "columns": "predicted", "order": ["free", "occupied"], "counts": confusion.counts },
                "unreadable": unreadable.len(),
                "calibration": calibration.as_ref().map(Calibration::to_json),
            })
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn labelled_patches(dir: &Path) -> anyhow::Result<Vec<(PathBuf, SpaceState)>> {
    let mut labelled = Vec::new();
    collect(dir, None, &mut labelled)?;
    labelled.sort_by(|a, b| a.0.cmp(&b.0));
    if labelled.is_empty() {
        bail!("no images under {} in busy/ or free/ folders", dir.display());
    }
    Ok(labelled)
}

/// A patch's frame and bay from its file stem: `20150703_0805_14` is bay `14` of frame
/// `20150703_0805`; a stem with no `_` is a bay of its own frame.
pub(crate) fn frame_and_bay(path: &Path) -> (String, String) {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    match stem.rsplit_once('_') {
        Some((frame, bay)) => (frame.to_owned(), bay.to_owned()),
        None => (stem.clone(), stem),
    }
}

/// An adapter fitted on a calibration folder, and what it took.
struct Calibration {
    dir: PathBuf,
    fit: Fit,
    /// Decoding and the universal model's pass over the labelled patches, before the fit.
    observe_ms: f64,
}

fn calibrated(classifier: &OccupancyClassifier, dir: &Path, limits: &DecodeLimits) -> anyhow::Result<Calibration> {
    let t = Instant::now();
    let mut patches = Vec::new();
    let mut keys = Vec::new();
    for (path, state) in labelled_patches(dir)? {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let decoded = valet_imaging::decode(&bytes, limits).with_context(|| format!("decoding {}", path.display()))?;
        patches.push(decoded.image);
        keys.push((frame_and_bay(&path), state));
    }
    let observations = classifier.observe(&patches)?;
    let observe_ms = t.elapsed().as_secs_f64() * 1e3;
    let labels: Vec<LabelledObservation> = keys
        .into_iter()
        .zip(observations)
        .map(|(((frame, space), state), observation)| LabelledObservation { space, frame, state, observation })
        .collect();
    let fit = Adapter::fit(&classifier.spec().model, &labels)?;
    Ok(Calibration { dir: dir.to_owned(), fit, observe_ms })
}

impl Calibration {
    fn print(&self) {
        let cv = self.fit.cross_validated;
        println!(
            "calibration: {} labels on {} frames from {}; fit {:.1} ms (+ {:.1} ms to decode and observe them)",
            self.fit.labels,
            self.fit.frames,
            self.dir.display(),
            self.fit.fit_ms,
            self.observe_ms
        );
        println!(
            "  cross-validated by frame on the labels: universal {}, adapted {} -> {}",
            pct(Some(cv.universal)),
            pct(Some(cv.adapted)),
            if self.fit.beats_universal() {
                "adapter kept; the patches above were read through it"
            } else {
                "adapter refused (not better than the universal model); the patches above were read by the universal model"
            }
        );
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "labels": self.fit.labels,
            "frames": self.fit.frames,
            "fit_ms": self.fit.fit_ms,
            "observe_ms": self.observe_ms,
            "cross_validated": self.fit.cross_validated,
            "kept": self.fit.beats_universal(),
        })
    }
}

/// Every image below `dir` whose nearest labelled ancestor is `busy`/`occupied` or `free`/`empty`.
/// A share as a percentage, or a dash where it is undefined (no support).
pub(crate) fn pct(v: Option<f64>) -> String {
    v.map_or("—".to_owned(), |v| format!("{:.2} %", v * 100.0))
}

/// Accuracy, per-class precision / recall and the confusion matrix, as both evals print them.
pub(crate) fn print_confusion(confusion: &Confusion) {
    let (occupied, free) = (confusion.class(SpaceState::Occupied), confusion.class(SpaceState::Free));
    println!("accuracy   {}", pct(confusion.accuracy()));
    println!("           precision   recall     support");
    println!("occupied   {:<11} {:<10} {}", pct(occupied.precision), pct(occupied.recall), occupied.support);
    println!("free       {:<11} {:<10} {}", pct(free.precision), pct(free.recall), free.support);
    println!("confusion (rows: truth, columns: predicted)");
    println!("           free      occupied");
    println!("free       {:<9} {}", confusion.counts[0][0], confusion.counts[0][1]);
    println!("occupied   {:<9} {}", confusion.counts[1][0], confusion.counts[1][1]);
}

fn collect(dir: &Path, label: Option<SpaceState>, out: &mut Vec<(PathBuf, SpaceState)>) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        if path.is_dir() {
            let here = match name.as_str() {
                "busy" | "occupied" => Some(SpaceState::Occupied),
                "free" | "empty" => Some(SpaceState::Free),
                _ => label,
            };
            collect(&path, here, out)?;
        } else if let Some(state) = label
            && [".jpg", ".jpeg", ".png"].iter().any(|ext| name.ends_with(ext))
        {
            out.push((path, state));
        }
    }
    Ok(())
}

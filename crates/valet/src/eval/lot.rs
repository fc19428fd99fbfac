//! `valet eval lot DIR`: whole labelled frames through decode → warp → classify, scored per space:
//! accuracy, per-class precision/recall, confusion matrix, per-folder accuracy, the spaces misread
//! most often, ms per frame.
//!
//! DIR holds PKLot-layout frames: each `NAME.xml` (PKLot XML with `occupied` flags) beside its
//! `NAME.jpg`/`.png`, or in a `bounding_boxes/` folder whose sibling `frames/` holds the image (as
//! pklot-padova). Each XML is its own layout; frames sharing one reuse its sampling maps.
//!
//! `--calibrate-frames STEM,…` labels those frames as an operator would (every space with its
//! XML flag), fits the camera's adapter on them exactly as the product does, reads the other
//! frames through it when it beats the universal model, and does not score those frames.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::json;
use valet_imaging::DecodeLimits;

use super::pct;
use valet_lot::import::{PKLOT_FRAME, pklot};
use valet_lot::{CameraId, Layout, LotReader, SpaceId, WarpMode};
use valet_occupancy::{Adapter, Confusion, Fit, LabelledObservation, OccupancyClassifier, SpaceState};

#[derive(Debug, clap::Args)]
pub struct LotArgs {
    /// A folder of PKLot-layout frames: each image beside its XML of spaces and `occupied` flags.
    dir: PathBuf,
    /// How spaces are warped to the model input: via[:SIDE] or direct[:SAMPLES].
    #[arg(long, value_parser = crate::lot::parse_warp, default_value = "direct:2")]
    warp: WarpMode,
    /// How many of the spaces misread most often to list (those misread at least twice).
    #[arg(long, default_value_t = 10)]
    worst: usize,
    /// Frames (file stems, e.g. `2013-02-24_10_05_04`) whose labels calibrate the camera, as an
    /// operator's would; they are not scored.
    #[arg(long, value_delimiter = ',', value_name = "STEM")]
    calibrate_frames: Vec<String>,
    /// The last line is one JSON object with n, frames, accuracy, ms_per_frame and the rest.
    #[arg(long)]
    json: bool,
}

pub fn run(args: LotArgs) -> anyhow::Result<ExitCode> {
    let mut xmls = Vec::new();
    collect_xml(&args.dir, &mut xmls)?;
    xmls.sort();
    if xmls.is_empty() {
        bail!("no PKLot .xml files under {}", args.dir.display());
    }
    let classifier = Arc::new(OccupancyClassifier::bundled()?);
    let camera = CameraId::new("cam1");
    let limits = DecodeLimits::default();
    let calibration = calibrate(&args, &xmls, &classifier, &camera, &limits)?;
    let adapter = calibration.as_ref().filter(|c| c.beats_universal()).map(|c| Arc::new(c.adapter.clone()));
    let mut readers: Vec<LotReader> = Vec::new();
    let mut confusion = Confusion::default();
    let mut per_folder: BTreeMap<String, Confusion> = BTreeMap::new();
    // Keyed by (layout, space): a camera's systematic misreads (one bay's worn paint, a kerb)
    // show up here as the same space wrong frame after frame.
    let mut per_space: BTreeMap<(usize, SpaceId), SpaceTally> = BTreeMap::new();
    let (mut frames, mut decode_ms, mut pipeline_ms, mut warp_ms, mut model_ms) = (0usize, 0.0, 0.0, 0.0, 0.0);
    let mut skipped = Vec::new();
    for xml_path in &xmls {
        if calibration.is_some() && args.calibrate_frames.iter().any(|c| Some(c.as_str()) == stem(xml_path)) {
            continue;
        }
        let Some(image_path) = frame_for(xml_path) else {
            skipped.push(format!("{}: no frame image beside it", xml_path.display()));
            continue;
        };
        let xml = std::fs::read_to_string(xml_path).with_context(|| format!("reading {}", xml_path.display()))?;
        let labelled = match pklot(&xml, camera.clone(), PKLOT_FRAME) {
            Ok(l) => l,
            Err(e) => {
                skipped.push(format!("{}: {e}", xml_path.display()));
                continue;
            }
        };
        let bytes = std::fs::read(&image_path).with_context(|| format!("reading {}", image_path.display()))?;
        let t = Instant::now();
        let frame = match valet_imaging::decode(&bytes, &limits) {
            Ok(d) => d.image,
            Err(e) => {
                skipped.push(format!("{}: {e}", image_path.display()));
                continue;
            }
        };
        decode_ms += t.elapsed().as_secs_f64() * 1e3;
        let layout = reader_for(&mut readers, &labelled.layout, &classifier, args.warp);
        let reader = &readers[layout];
        reader.set_adapter(&camera, adapter.clone());
        // Sampling maps are built once per layout and frame size, outside the per-frame time.
        reader.plan(&camera, frame.width(), frame.height())?;
        let t = Instant::now();
        let reading = reader.read(&camera, &frame).with_context(|| format!("reading {}", image_path.display()))?;
        pipeline_ms += t.elapsed().as_secs_f64() * 1e3;
        warp_ms += reading.warp_ms;
        model_ms += reading.model_ms;
        frames += 1;
        let folder = folder_name(&args.dir, xml_path);
        for (space, occupied) in &labelled.labels {
            let Some(r) = reading.spaces.iter().find(|s| &s.space == space) else { continue };
            let truth = if *occupied { SpaceState::Occupied } else { SpaceState::Free };
            let predicted = if r.p_occupied >= 0.5 { SpaceState::Occupied } else { SpaceState::Free };
            confusion.add(truth, predicted);
            per_folder.entry(folder.clone()).or_default().add(truth, predicted);
            let tally = per_space.entry((layout, space.clone())).or_default();
            tally.frames += 1;
            tally.occupied += usize::from(*occupied);
            tally.wrong += usize::from(truth != predicted);
        }
    }

    let n = confusion.total();
    let per_frame = |total: f64| total / frames.max(1) as f64;
    let ms_per_frame = per_frame(pipeline_ms);
    let accuracy = confusion.accuracy().unwrap_or(0.0);
    let occupied = confusion.class(SpaceState::Occupied);
    let free = confusion.class(SpaceState::Free);

    println!(
        "{n} spaces in {frames} frames under {} ({} occupied, {} free), model {}, warp {}",
        args.dir.display(),
        occupied.support,
        free.support,
        classifier.spec().model,
        args.warp
    );
    for line in &skipped {
        println!("  skipped: {line}");
    }
    super::print_confusion(&confusion);
    for (folder, c) in &per_folder {
        println!("  {folder:<20} {:>5} spaces  accuracy {}", c.total(), pct(c.accuracy()));
    }
    let worst = most_misread(&per_space, args.worst);
    if !worst.is_empty() {
        println!("spaces misread most often:");
    }
    for ((layout, space), t) in &worst {
        let name =
            if readers.len() > 1 { format!("layout {} space {space}", layout + 1) } else { format!("space {space}") };
        println!("  {name:<20} wrong in {:>3} of {:>3} frames (occupied in {} of them)", t.wrong, t.frames, t.occupied);
    }
    println!(
        "ms per frame: {ms_per_frame:.2} (warp {:.2} + model {:.2}, one batch per frame); decode {:.2} separately",
        per_frame(warp_ms),
        per_frame(model_ms),
        per_frame(decode_ms)
    );
    if let Some(fit) = &calibration {
        let cv = fit.cross_validated;
        println!(
            "calibration: {} labels on {} frames ({}), fit {:.1} ms; cross-validated by frame: universal {}, adapted {} -> {}",
            fit.labels,
            fit.frames,
            args.calibrate_frames.join(", "),
            fit.fit_ms,
            pct(Some(cv.universal)),
            pct(Some(cv.adapted)),
            if fit.beats_universal() { "adapter kept" } else { "adapter refused, universal model used" }
        );
    }
    if args.json {
        let folders: BTreeMap<&String, serde_json::Value> =
            per_folder.iter().map(|(k, c)| (k, json!({ "n": c.total(), "accuracy": c.accuracy() }))).collect();
        println!(
            "{}",
            json!({
                "n": n,
                "frames": frames,
                "accuracy": accuracy,
                "ms_per_frame": ms_per_frame,
                "warp_ms_per_frame": per_frame(warp_ms),
                "model_ms_per_frame": per_frame(model_ms),
                "decode_ms_per_frame": per_frame(decode_ms),
                "model": classifier.spec().model,
                "warp": args.warp.to_string(),
                "occupied": occupied,
                "free": free,
                "confusion": { "rows": "truth", "columns": "predicted", "order": ["free", "occupied"], "counts": confusion.counts },
                "per_folder": folders,
                "most_misread": worst.iter().map(|((layout, space), t)| json!({
                    "layout": layout + 1, "space": space, "wrong": t.wrong, "frames": t.frames, "occupied": t.occupied,
                })).collect::<Vec<_>>(),
                "skipped": skipped.len(),
                "calibration": calibration.as_ref().map(|fit| json!({
                    "frames": args.calibrate_frames,
                    "labels": fit.labels,
                    "fit_ms": fit.fit_ms,
                    "cross_validated": fit.cross_validated,
                    "kept": fit.beats_universal(),
                })),
            })
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn stem(path: &Path) -> Option<&str> {
    path.file_stem()?.to_str()
}

/// Fits the camera's adapter on the `--calibrate-frames`, every space labelled with its XML flag;
/// `None` without that option. A stem that names no frame is an error, not a silent no-op.
fn calibrate(
    args: &LotArgs,
    xmls: &[PathBuf],
    classifier: &Arc<OccupancyClassifier>,
    camera: &CameraId,
    limits: &DecodeLimits,
) -> anyhow::Result<Option<Fit>> {
    if args.calibrate_frames.is_empty() {
        return Ok(None);
    }
    let mut labels = Vec::new();
    for wanted in &args.calibrate_frames {
        let (xml_path, image_path) = xmls
            .iter()
            .filter(|x| stem(x) == Some(wanted.as_str()))
            .find_map(|xml| Some((xml, frame_for(xml)?)))
            .with_context(|| {
                format!("--calibrate-frames: no frame {wanted:?} (an XML with its image) under {}", args.dir.display())
            })?;
        let xml = std::fs::read_to_string(xml_path).with_context(|| format!("reading {}", xml_path.display()))?;
        let labelled = pklot(&xml, camera.clone(), PKLOT_FRAME).with_context(|| format!("{}", xml_path.display()))?;
        let bytes = std::fs::read(&image_path).with_context(|| format!("reading {}", image_path.display()))?;
        let image =
            valet_imaging::decode(&bytes, limits).with_context(|| format!("decoding {}", image_path.display()))?.image;
        let reader = LotReader::new(labelled.layout, classifier.clone(), args.warp);
        let (spaces, patches): (Vec<SpaceId>, Vec<_>) = reader.space_patches(camera, &image)?.into_iter().unzip();
        let observations = classifier.observe(&patches)?;
        for (space, observation) in spaces.into_iter().zip(observations) {
            let Some((_, occupied)) = labelled.labels.iter().find(|(s, _)| *s == space) else { continue };
            let state = if *occupied { SpaceState::Occupied } else { SpaceState::Free };
            labels.push(LabelledObservation { space: space.to_string(), frame: wanted.clone(), state, observation });
        }
    }
    Ok(Some(Adapter::fit(&classifier.spec().model, &labels)?))
}

/// One space of one layout over every frame that labels it.
#[derive(Debug, Default)]
struct SpaceTally {
    frames: usize,
    wrong: usize,
    /// Frames in which the space is labelled occupied.
    occupied: usize,
}

/// The `limit` spaces misread in the most frames (at least two), most first, then by layout and id.
fn most_misread(
    per_space: &BTreeMap<(usize, SpaceId), SpaceTally>,
    limit: usize,
) -> Vec<(&(usize, SpaceId), &SpaceTally)> {
    let mut worst: Vec<_> = per_space.iter().filter(|(_, t)| t.wrong >= 2).collect();
    worst.sort_by_key(|(_, t)| std::cmp::Reverse(t.wrong)); // stable: ties keep the map's order
    worst.truncate(limit);
    worst
}

/// The index of the reader for this layout: the one already built for the same geometry, or a new one.
fn reader_for(
    readers: &mut Vec<LotReader>,
    layout: &Layout,
    classifier: &Arc<OccupancyClassifier>,
    warp: WarpMode,
) -> usize {
    let same = |r: &LotReader| r.layout().cameras == layout.cameras && r.layout().spaces == layout.spaces;
    readers.iter().position(same).unwrap_or_else(|| {
        readers.push(LotReader::new(layout.clone(), classifier.clone(), warp));
        readers.len() - 1
    })
}

fn collect_xml(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_xml(&path, out)?;
        } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml")) {
            out.push(path);
        }
    }
    Ok(())
}

/// `NAME.{jpg,jpeg,png}` beside the XML, or in `../frames/` when the XML is in `bounding_boxes/`.
fn frame_for(xml: &Path) -> Option<PathBuf> {
    let stem = xml.file_stem()?.to_str()?;
    let dir = xml.parent()?;
    let mut places = vec![dir.to_path_buf()];
    if let Some(parent) = dir.parent() {
        places.push(parent.join("frames"));
    }
    places
        .iter()
        .flat_map(|d| ["jpg", "jpeg", "png", "JPG", "PNG"].map(|e| d.join(format!("{stem}.{e}"))))
        .find(|p| p.is_file())
}

/// The first folder below DIR (e.g. `sequence3`), or `.` for XMLs directly in it.
fn folder_name(root: &Path, xml: &Path) -> String {
    xml.strip_prefix(root)
        .ok()
        .and_then(|rel| rel.components().next())
        .filter(|_| xml.parent() != Some(root))
        .map_or_else(|| ".".to_owned(), |c| c.as_os_str().to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_misread_spaces_come_first_and_single_slips_are_left_out() {
        let tally = |wrong| SpaceTally { frames: 30, wrong, occupied: 0 };
        let per_space: BTreeMap<(usize, SpaceId), SpaceTally> =
            [(0, "1", 0), (0, "2", 1), (0, "3", 2), (0, "4", 5), (1, "4", 5), (0, "5", 3)]
                .into_iter()
                .map(|(layout, id, wrong)| ((layout, SpaceId::new(id)), tally(wrong)))
                .collect();
        let names = |v: Vec<(&(usize, SpaceId), &SpaceTally)>| {
            v.iter().map(|((l, s), t)| (*l, s.as_str().to_owned(), t.wrong)).collect::<Vec<_>>()
        };
        assert_eq!(
            names(most_misread(&per_space, 3)),
            [(0, "4".to_owned(), 5), (1, "4".to_owned(), 5), (0, "5".to_owned(), 3)]
        );
        assert_eq!(
            names(most_misread(&per_space, 10)).len(),
            4,
            "the space wrong once and the one never wrong stay out"
        );
    }
}

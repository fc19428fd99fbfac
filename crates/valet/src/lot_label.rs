//! `valet lot label`: an operator's labels from files, stored as the dashboard's are, then the
//! camera's adapter fitted and saved as a new version (kept only when it beats the universal
//! model). A frame with its bays' states (`--pklot XML`, `--occupied`/`--free`, `--empty`), or
//! patches already cut (`--patches DIR`: `busy/` and `free/`, each `FRAME_BAY.jpg`, CNRPark's way).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::Utc;
use valet_calibration::{CalibrationError, FrameLabels};
use valet_imaging::DecodeLimits;
use valet_lot::{CameraId, Layout, LotReader, SpaceId, SpaceState, WarpMode};
use valet_occupancy::OccupancyClassifier;
use valet_store::{NewLabel, Store};

use crate::Place;
use crate::classify::decode_file;

/// Who the labels and fits of this command are recorded as made by.
const BY: &str = "cli";

#[derive(Debug, clap::Args)]
pub struct LabelArgs {
    /// The lot's id: its layout saved with `valet lot add`, or in the lots directory.
    lot: String,
    /// Which camera (needed when the lot has several).
    #[arg(long)]
    camera: Option<String>,
    /// A frame of the camera (JPEG or PNG); its file stem is the frame's key, so labelling the
    /// same bay of the same frame twice is refused.
    #[arg(long, required_unless_present = "patches", conflicts_with = "patches")]
    frame: Option<PathBuf>,
    /// The frame's PKLot XML: each bay's `occupied` attribute.
    #[arg(long, requires = "frame", conflicts_with_all = ["occupied", "free", "empty"])]
    pklot: Option<PathBuf>,
    /// Bays occupied on the frame, comma-separated.
    #[arg(long, value_delimiter = ',', requires = "frame")]
    occupied: Vec<String>,
    /// Bays free on the frame, comma-separated; `rest` for every bay not named occupied.
    #[arg(long, value_delimiter = ',', requires = "frame")]
    free: Vec<String>,
    /// The lot is empty on the frame: every bay of the camera free.
    #[arg(long, requires = "frame", conflicts_with_all = ["occupied", "free"])]
    empty: bool,
    /// Patches instead of a frame: DIR/busy/ and DIR/free/, each named FRAME_BAY.jpg (the bay is
    /// the last `_`-separated part of the name, the frame the rest).
    #[arg(long)]
    patches: Option<PathBuf>,
    #[command(flatten)]
    place: Place,
}

pub async fn label(args: LabelArgs) -> anyhow::Result<ExitCode> {
    let settings = args.place.settings()?;
    let store = valet_server::garage::open_store(&settings).await?;
    let layout = saved_layout(&store, &valet_server::layouts::lots_dir(&settings), &args.lot).await?;
    let camera = crate::lot::pick_camera(&layout, args.camera.clone())?;
    let classifier = Arc::new(OccupancyClassifier::bundled()?);
    let labels = match &args.patches {
        Some(dir) => patch_labels(&layout, &camera, dir)?,
        None => frame_labels(&args, layout.clone(), &camera, Arc::clone(&classifier))?,
    };
    let calibration = store.occupancy_calibration();
    calibration.add_labels(&labels).await?;
    let occupied = labels.iter().filter(|l| l.occupied).count();
    let frames: std::collections::BTreeSet<&str> = labels.iter().map(|l| l.frame.as_str()).collect();
    println!(
        "lot {} camera {camera}: {} labels stored ({} free, {occupied} occupied) on {} frame(s)",
        layout.id,
        labels.len(),
        labels.len() - occupied,
        frames.len()
    );

    let lot = layout.id.to_string();
    match valet_calibration::fit_camera(&calibration, classifier, &lot, camera.as_str(), BY, Utc::now()).await {
        Ok(fit) => {
            println!(
                "fitted on {} labels of {} frames in {:.0} ms; leave-one-frame-out accuracy: universal model {:.1} %, \
                 adapted {:.1} %",
                fit.labels,
                fit.frames,
                fit.fit_ms,
                fit.universal_accuracy * 100.0,
                fit.adapted_accuracy * 100.0
            );
            if fit.kept {
                println!(
                    "kept: version {} is camera {camera}'s adapter now; running occupancy functions swap to it within \
                     {} s",
                    fit.version,
                    valet_server::calibration::SWAP_EVERY.as_secs()
                );
            } else {
                let note = fit.note.unwrap_or_default();
                println!("refused: version {} saved inactive; {note}", fit.version);
            }
        }
        // Too few labels to fit is not a failure of this command: the labels are stored.
        Err(CalibrationError::Fit(e)) => println!("no adapter fitted yet: {e}"),
        Err(e) => return Err(e).context("fitting the camera's adapter"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The lot's layout as the running functions see it: the database's, else the lots directory's.
async fn saved_layout(store: &Store, dir: &Path, lot: &str) -> anyhow::Result<Layout> {
    if let Some(stored) = store.lot_layouts().get(lot).await? {
        return Layout::from_toml(&stored.toml).with_context(|| format!("lot {lot}'s layout in the database"));
    }
    let files = std::fs::read_dir(dir).into_iter().flatten().filter_map(Result::ok).map(|e| e.path());
    for path in files.filter(|p| p.extension().is_some_and(|e| e == "toml")) {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        if let Ok(layout) = Layout::from_toml(&text)
            && layout.id.as_str() == lot
        {
            return Ok(layout);
        }
    }
    bail!("no lot {lot:?} in the database or in {}: add its layout with `valet lot add LAYOUT.toml`", dir.display())
}

/// One frame's labels: each named bay's patch cut as the live pipeline cuts it.
fn frame_labels(
    args: &LabelArgs,
    layout: Layout,
    camera: &CameraId,
    classifier: Arc<OccupancyClassifier>,
) -> anyhow::Result<Vec<NewLabel>> {
    let path = args.frame.as_ref().context("give --frame IMAGE or --patches DIR")?;
    let (_, decoded, _) =
        decode_file(path, &DecodeLimits::default()).with_context(|| format!("reading {}", path.display()))?;
    let on_camera: Vec<SpaceId> = layout.spaces_of(camera).map(|s| s.id.clone()).collect();
    let states: Vec<(SpaceId, SpaceState)> = if let Some(xml) = &args.pklot {
        let text = std::fs::read_to_string(xml).with_context(|| format!("reading {}", xml.display()))?;
        let frame = valet_lot::import::pklot(&text, camera.clone(), decoded.image.dimensions())
            .with_context(|| format!("reading {}", xml.display()))?;
        frame.labels.into_iter().map(|(space, occupied)| (space, state(occupied))).collect()
    } else if args.empty {
        on_camera.iter().map(|s| (s.clone(), SpaceState::Free)).collect()
    } else {
        let mut states: Vec<(SpaceId, SpaceState)> =
            args.occupied.iter().map(|s| (SpaceId::new(s.trim()), SpaceState::Occupied)).collect();
        for free in &args.free {
            if free.trim() == "rest" {
                let rest = on_camera.iter().filter(|s| !args.occupied.iter().any(|o| o.trim() == s.as_str()));
                states.extend(rest.map(|s| (s.clone(), SpaceState::Free)));
            } else {
                states.push((SpaceId::new(free.trim()), SpaceState::Free));
            }
        }
        states
    };
    let frame = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let request = FrameLabels {
        lot: layout.id.to_string(),
        camera: camera.clone(),
        frame,
        states,
        by: BY.to_owned(),
        at: Utc::now(),
    };
    let reader = LotReader::new(layout, classifier, WarpMode::default());
    Ok(valet_calibration::labels_for_frame(&reader, &decoded.image, &request)?)
}

/// Patches already cut: `DIR/busy/FRAME_BAY.jpg` occupied, `DIR/free/FRAME_BAY.jpg` free.
fn patch_labels(layout: &Layout, camera: &CameraId, dir: &Path) -> anyhow::Result<Vec<NewLabel>> {
    let cam = layout.camera(camera).context("camera not in layout")?;
    let known: Vec<&str> = layout.spaces_of(camera).map(|s| s.id.as_str()).collect();
    let at = Utc::now();
    let mut labels = Vec::new();
    for (folder, occupied) in [("busy", true), ("free", false)] {
        let folder = dir.join(folder);
        let mut paths: Vec<PathBuf> = match std::fs::read_dir(&folder) {
            Ok(entries) => entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", folder.display())),
        };
        paths.sort();
        for path in paths {
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let Some((frame, bay)) = stem.rsplit_once('_') else {
                bail!("{}: name a patch FRAME_BAY (e.g. 20150703_0805_12.jpg)", path.display());
            };
            if !known.contains(&bay) {
                bail!(
                    "{}: bay {bay:?} is not in camera {camera}'s layout (its bays: {})",
                    path.display(),
                    known.join(", ")
                );
            }
            let (_, decoded, _) =
                decode_file(&path, &DecodeLimits::default()).with_context(|| format!("reading {}", path.display()))?;
            let mut png = std::io::Cursor::new(Vec::new());
            decoded.image.write_to(&mut png, image::ImageFormat::Png).context("encoding a patch as PNG")?;
            labels.push(NewLabel {
                lot: layout.id.to_string(),
                camera: camera.to_string(),
                space: bay.to_owned(),
                frame: frame.to_owned(),
                frame_width: cam.width,
                frame_height: cam.height,
                occupied,
                crop_png: png.into_inner(),
                labelled_at: at,
                labelled_by: BY.to_owned(),
            });
        }
    }
    if labels.is_empty() {
        bail!("no patches in {}: put them in busy/ and free/", dir.display());
    }
    Ok(labels)
}

fn state(occupied: bool) -> SpaceState {
    if occupied { SpaceState::Occupied } else { SpaceState::Free }
}

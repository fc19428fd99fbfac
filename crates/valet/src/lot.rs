//! `valet lot import|show|render` (layout files), `valet lot add|list|remove` (the layouts kept in
//! the garage's database, which every running occupancy and query function picks up), `valet lot
//! label` (calibration labels from files: [`crate::lot_label`]) and
//! `valet occupancy FRAME --lot LAYOUT` (a whole camera frame read into per-space states and
//! counts, optionally drawn and recorded).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::json;
use valet_imaging::DecodeLimits;
use valet_lot::import::{PKLOT_FRAME, cnr_csv, pklot};
use valet_lot::overlay::{self, Mark};
use valet_lot::{CameraId, Layout, LotId, LotReader, LotState, SmoothingConfig, WarpMode};
use valet_occupancy::OccupancyClassifier;

use crate::Place;
use crate::classify::decode_file;

#[derive(Debug, Subcommand)]
pub enum LotCommand {
    /// Make a layout from a dataset's annotations (PKLot XML or CNR-EXT CSV): a file (--out),
    /// saved in the garage's database (--data), or both.
    Import(ImportArgs),
    /// Save a layout file in the garage's database (replacing the lot's layout, if it had one);
    /// running occupancy and query functions pick it up within seconds.
    Add {
        /// The layout file (TOML, e.g. from `valet lot import --out`); `-` reads it from stdin.
        layout: PathBuf,
        #[command(flatten)]
        place: Place,
    },
    /// List the layouts saved in the garage's database.
    List {
        #[command(flatten)]
        place: Place,
    },
    /// Remove a lot's layout from the garage's database (its history stays until retention).
    Remove {
        /// The lot's id.
        lot: String,
        #[command(flatten)]
        place: Place,
    },
    /// Label bays of a camera from files (a frame with its bays' states, or patches), then fit and
    /// save the camera's occupancy adapter (kept only when it beats the universal model).
    Label(crate::lot_label::LabelArgs),
    /// Print a layout's cameras, levels, zones and space counts (validating it).
    Show {
        /// The layout file (TOML).
        layout: PathBuf,
    },
    /// Draw a layout's spaces over a frame (p0 marked with a dot), to check it by eye.
    Render {
        /// The layout file (TOML).
        layout: PathBuf,
        /// A frame of the layout's camera (JPEG or PNG).
        frame: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Which camera's spaces (needed when the layout has several).
        #[arg(long)]
        camera: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// A PKLot XML file (`<parking><space id occupied>…`).
    #[arg(long, required_unless_present = "cnr_csv", conflicts_with = "cnr_csv")]
    pklot: Option<PathBuf>,
    /// A CNR-EXT camera CSV (`SlotId,X,Y,W,H` in 2592×1944 pixels); needs --frame-size.
    #[arg(long, requires = "frame_size")]
    cnr_csv: Option<PathBuf>,
    /// The frames' size, WxH (CNR-EXT: e.g. 1000x750; PKLot default 1280x720).
    #[arg(long)]
    frame_size: Option<FrameSize>,
    /// The layout file to write (TOML).
    #[arg(long, required_unless_present = "data_dir")]
    out: Option<PathBuf>,
    /// Also (or only) save the layout in the garage's database: the data directory's SQLite,
    /// or PostgreSQL when VALET_DATABASE_URL is set.
    #[command(flatten)]
    place: Place,
    /// Lot id (default: PKLot's parking id, or `cnr-ext`).
    #[arg(long)]
    lot: Option<String>,
    /// Camera id (default: `cam1` for PKLot, the CSV's file stem for CNR-EXT).
    #[arg(long)]
    camera: Option<String>,
}

/// `WIDTHxHEIGHT`, e.g. `1000x750`.
#[derive(Debug, Clone, Copy)]
pub struct FrameSize(u32, u32);

impl FromStr for FrameSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not WIDTHxHEIGHT (e.g. 1000x750)");
        let (w, h) = s.split_once(['x', 'X', '×']).ok_or_else(bad)?;
        match (w.trim().parse(), h.trim().parse()) {
            (Ok(w), Ok(h)) if w > 0 && h > 0 => Ok(FrameSize(w, h)),
            _ => Err(bad()),
        }
    }
}

/// How spaces are warped to the model input: `via:150` (warp to 150×150, then the model's
/// resize) or `direct:2` (straight to the input size, 2×2 samples per pixel; the default).
pub fn parse_warp(s: &str) -> Result<WarpMode, String> {
    let (kind, n) = s.split_once(':').unwrap_or((s, ""));
    let n = |default: u32| if n.is_empty() { Ok(default) } else { n.parse::<u32>().map_err(|e| e.to_string()) };
    match kind {
        "via" => Ok(WarpMode::Via { side: n(150)?.clamp(8, 1024) }),
        "direct" => Ok(WarpMode::Direct { supersample: n(2)?.clamp(1, 8) }),
        _ => Err(format!("{s:?}: expected via[:SIDE] or direct[:SAMPLES]")),
    }
}

pub async fn run(cmd: LotCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        LotCommand::Import(args) => import(args).await,
        LotCommand::Add { layout, place } => {
            let text = if layout == Path::new("-") {
                std::io::read_to_string(std::io::stdin()).context("reading the layout from stdin")?
            } else {
                std::fs::read_to_string(&layout).with_context(|| format!("reading {}", layout.display()))?
            };
            let parsed = Layout::from_toml(&text).with_context(|| format!("layout {}", layout.display()))?;
            save(&place, &parsed, &text).await?;
            Ok(ExitCode::SUCCESS)
        }
        LotCommand::List { place } => {
            let store = valet_server::garage::open_store(&place.settings()?).await?;
            let saved = store.lot_layouts().all().await?;
            if saved.is_empty() {
                println!("no lot layouts saved; add one with `valet lot add LAYOUT.toml`");
            }
            for stored in saved {
                let spaces = Layout::from_toml(&stored.toml)
                    .map_or_else(|e| format!("does not load: {e}"), |l| format!("{} spaces", l.spaces.len()));
                println!(
                    "{:<20} version {:<4} saved {}  {spaces}",
                    stored.lot,
                    stored.version,
                    stored.saved_at.format("%Y-%m-%d %H:%M UTC")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        LotCommand::Remove { lot, place } => {
            let store = valet_server::garage::open_store(&place.settings()?).await?;
            if store.lot_layouts().remove(&lot).await? {
                println!("removed lot {lot}'s layout; running functions drop the lot within seconds");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("no layout saved for lot {lot}");
                Ok(ExitCode::FAILURE)
            }
        }
        LotCommand::Label(args) => crate::lot_label::label(args).await,
        LotCommand::Show { layout } => show(&load_layout(&layout)?),
        LotCommand::Render { layout, frame, out, camera } => {
            let layout = load_layout(&layout)?;
            let camera = pick_camera(&layout, camera)?;
            let (_, decoded, _) = decode_file(&frame, &DecodeLimits::default())
                .with_context(|| format!("reading {}", frame.display()))?;
            let mut image = decoded.image;
            let marks = marks(&layout, &camera, image.dimensions(), |_| None)?;
            overlay::draw(&mut image, &marks);
            write_png(&out, &image)?;
            println!("{} spaces of camera {camera} drawn on {}", marks.len(), out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Saves `layout` (as `text`) in the garage's database `place` names.
async fn save(place: &Place, layout: &Layout, text: &str) -> anyhow::Result<()> {
    let store = valet_server::garage::open_store(&place.settings()?).await?;
    let id = layout.id.to_string();
    let version = store.lot_layouts().save(&id, text, chrono::Utc::now()).await?;
    println!(
        "lot {id}: {} spaces on camera(s) {} saved in the database (version {version}); running occupancy and \
         query functions pick it up within {} s",
        layout.spaces.len(),
        camera_list(layout),
        valet_server::layouts::WATCH_EVERY.as_secs()
    );
    Ok(())
}

async fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let layout = if let Some(path) = &args.pklot {
        let xml = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let size = args.frame_size.map_or(PKLOT_FRAME, |s| (s.0, s.1));
        let camera = CameraId::new(args.camera.as_deref().unwrap_or("cam1"));
        let mut layout = pklot(&xml, camera, size).with_context(|| format!("importing {}", path.display()))?.layout;
        if let Some(lot) = &args.lot {
            layout.id = LotId::new(lot.as_str());
        }
        layout
    } else if let (Some(path), Some(size)) = (&args.cnr_csv, args.frame_size) {
        let csv = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "cam1".into());
        let camera = CameraId::new(args.camera.clone().unwrap_or(stem));
        let lot = LotId::new(args.lot.as_deref().unwrap_or("cnr-ext"));
        cnr_csv(&csv, lot, camera, (size.0, size.1)).with_context(|| format!("importing {}", path.display()))?
    } else {
        bail!("give --pklot XML, or --cnr-csv CSV with --frame-size WxH");
    };
    let text = layout.to_toml();
    if let Some(out) = &args.out {
        std::fs::write(out, &text).with_context(|| format!("writing {}", out.display()))?;
        println!(
            "lot {}: {} spaces on camera(s) {} → {}",
            layout.id,
            layout.spaces.len(),
            camera_list(&layout),
            out.display()
        );
    }
    if args.place.data_dir.is_some() {
        save(&args.place, &layout, &text).await?;
    }
    Ok(ExitCode::SUCCESS)
}

fn show(layout: &Layout) -> anyhow::Result<ExitCode> {
    println!("lot {}{}", layout.id, if layout.name.is_empty() { String::new() } else { format!(" ({})", layout.name) });
    for camera in &layout.cameras {
        println!(
            "camera {} {}×{}: {} spaces",
            camera.id,
            camera.width,
            camera.height,
            layout.spaces_of(&camera.id).count()
        );
    }
    for level in &layout.levels {
        println!("level {}", level.id);
        for zone in layout.zones.iter().filter(|z| z.level == level.id) {
            let spaces: Vec<&str> = layout.spaces.iter().filter(|s| s.zone == zone.id).map(|s| s.id.as_str()).collect();
            println!("  zone {}: {} spaces ({})", zone.id, spaces.len(), abbreviate(&spaces));
        }
    }
    println!("{} spaces in all; the layout is valid", layout.spaces.len());
    Ok(ExitCode::SUCCESS)
}

fn abbreviate(ids: &[&str]) -> String {
    if ids.len() <= 8 {
        ids.join(", ")
    } else {
        format!("{}, …, {}", ids[..4].join(", "), ids[ids.len() - 2..].join(", "))
    }
}

fn camera_list(layout: &Layout) -> String {
    layout.cameras.iter().map(|c| format!("{} {}×{}", c.id, c.width, c.height)).collect::<Vec<_>>().join(", ")
}

pub fn load_layout(path: &Path) -> anyhow::Result<Layout> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Layout::from_toml(&text).with_context(|| format!("layout {}", path.display()))
}

/// The camera a frame belongs to: `--camera`, or the layout's only camera.
pub(crate) fn pick_camera(layout: &Layout, camera: Option<String>) -> anyhow::Result<CameraId> {
    match camera {
        Some(id) => {
            let id = CameraId::new(id);
            if layout.camera(&id).is_none() {
                bail!("camera {id:?} is not in the layout (it has {})", camera_list(layout));
            }
            Ok(id)
        }
        None if layout.cameras.len() == 1 => Ok(layout.cameras[0].id.clone()),
        None => {
            bail!("the layout has {} cameras ({}); say which with --camera", layout.cameras.len(), camera_list(layout))
        }
    }
}

/// The camera's spaces in frame coordinates (scaled when the frame is the same aspect but
/// another size, as the reader does), with what `state` says about each.
fn marks(
    layout: &Layout,
    camera: &CameraId,
    (w, h): (u32, u32),
    state: impl Fn(&valet_lot::SpaceId) -> Option<(valet_lot::SpaceState, f32)>,
) -> anyhow::Result<Vec<Mark>> {
    let cam = layout.camera(camera).context("camera not in layout")?;
    let (sx, sy) = (f64::from(w) / f64::from(cam.width), f64::from(h) / f64::from(cam.height));
    if (sx / sy - 1.0).abs() > valet_lot::pipeline::ASPECT_TOLERANCE {
        bail!(
            "frame is {w}×{h} but camera {camera:?}'s spaces were drawn on {}×{}, a different aspect ratio",
            cam.width,
            cam.height
        );
    }
    Ok(layout
        .spaces_of(camera)
        .filter_map(|s| {
            let quad = s.quad()?.map(|[x, y]| [x * sx, y * sy]);
            let st = state(&s.id);
            Some(Mark { quad, state: st.map(|s| s.0), confidence: st.map(|s| s.1) })
        })
        .collect())
}

fn write_png(path: &Path, image: &image::RgbImage) -> anyhow::Result<()> {
    std::fs::write(path, overlay::png(image)).with_context(|| format!("writing {}", path.display()))
}

#[derive(Debug, clap::Args)]
pub struct OccupancyArgs {
    /// A frame of one of the lot's cameras (JPEG or PNG).
    frame: PathBuf,
    /// The lot's layout file (TOML, e.g. from `valet lot import`).
    #[arg(long = "lot")]
    layout: PathBuf,
    /// Which camera took the frame (needed when the layout has several).
    #[arg(long)]
    camera: Option<String>,
    /// Draw every space coloured by state with its confidence, as PNG.
    #[arg(long)]
    overlay: Option<PathBuf>,
    /// One JSON object: spaces, counts, warnings, timings.
    #[arg(long)]
    json: bool,
    /// How spaces are warped to the model input: via[:SIDE] or direct[:SAMPLES].
    #[arg(long, value_parser = parse_warp, default_value = "direct:2")]
    warp: WarpMode,
    /// Also record the reading (states, changes, counts) in this data directory's database.
    #[arg(long = "record-in")]
    record_in: Option<PathBuf>,
}

pub async fn occupancy(args: OccupancyArgs) -> anyhow::Result<ExitCode> {
    let layout = load_layout(&args.layout)?;
    let camera = pick_camera(&layout, args.camera.clone())?;
    let (_, decoded, decode_ms) = decode_file(&args.frame, &DecodeLimits::default())
        .with_context(|| format!("reading {}", args.frame.display()))?;
    let reader = LotReader::new(layout.clone(), OccupancyClassifier::bundled()?, args.warp);
    let t = Instant::now();
    reader.plan(&camera, decoded.image.width(), decoded.image.height())?;
    let plan_ms = t.elapsed().as_secs_f64() * 1e3;
    let reading = reader.read(&camera, &decoded.image)?;
    for warning in &reading.warnings {
        eprintln!("warning: {warning}");
    }
    let mut lot = LotState::new(layout.clone(), SmoothingConfig::default());
    let changes = lot.update(&reading);
    let counts = lot.counts();
    let spaces: Vec<_> = reading
        .spaces
        .iter()
        .map(|r| {
            let s = lot.space(&r.space).expect("every read space has a state");
            // An unsure space is reported unknown with why, as the server's counts do.
            let state = if s.unsure { "unknown" } else { s.state.as_str() };
            (r, state, s.confidence, s.unsure_reason())
        })
        .collect();

    if let Some(path) = &args.overlay {
        let mut image = decoded.image.clone();
        let marks = marks(&layout, &camera, image.dimensions(), |id| lot.space(id).map(|s| (s.state, s.confidence)))?;
        overlay::draw(&mut image, &marks);
        write_png(path, &image)?;
        eprintln!("overlay written to {}", path.display());
    }
    if let Some(dir) = &args.record_in {
        let id =
            crate::lot_history::record(dir, &layout, &camera, &reading, &lot, &changes, chrono::Utc::now()).await?;
        eprintln!("recorded as frame {id} in {}", dir.display());
    }

    if args.json {
        let spaces: Vec<_> = spaces
            .iter()
            .map(|(r, state, confidence, reason)| {
                json!({ "space": r.space, "state": state, "confidence": confidence, "p_occupied": r.p_occupied, "reason": reason })
            })
            .collect();
        println!(
            "{}",
            json!({
                "lot": layout.id,
                "camera": camera,
                "frame": args.frame.display().to_string(),
                "spaces": spaces,
                "counts": counts,
                "warnings": reading.warnings,
                "timings_ms": { "decode": decode_ms, "plan": plan_ms, "warp": reading.warp_ms, "model": reading.model_ms },
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "lot {} camera {camera}: {} ({}×{})",
        layout.id,
        args.frame.display(),
        decoded.image.width(),
        decoded.image.height()
    );
    println!("{:<12} {:<9} {:>10} {:>10}", "space", "state", "confidence", "p_occupied");
    for (r, state, confidence, reason) in &spaces {
        let why = reason.as_deref().map(|w| format!("  ({w})")).unwrap_or_default();
        println!("{:<12} {:<9} {:>9.1}% {:>10.3}{why}", r.space.as_str(), state, confidence * 100.0, r.p_occupied);
    }
    println!("counts            free  occupied  unknown");
    for z in &counts.zones {
        println!(
            "zone {:<12} {:>4} {:>9} {:>8}   (level {})",
            z.zone.as_str(),
            z.tally.free,
            z.tally.occupied,
            z.tally.unknown,
            z.level
        );
    }
    for l in &counts.levels {
        println!("level {:<11} {:>4} {:>9} {:>8}", l.level.as_str(), l.tally.free, l.tally.occupied, l.tally.unknown);
    }
    println!(
        "lot {:<13} {:>4} {:>9} {:>8}",
        layout.id.as_str(),
        counts.lot.free,
        counts.lot.occupied,
        counts.lot.unknown
    );
    println!(
        "decode {decode_ms:.1} ms · warp {:.1} ms · model {:.1} ms ({} spaces, one batch) · sampling maps {plan_ms:.1} ms (once per layout)",
        reading.warp_ms,
        reading.model_ms,
        reading.spaces.len()
    );
    Ok(ExitCode::SUCCESS)
}

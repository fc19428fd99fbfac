//! `valet bench plates DIR [--only LIST] [--peer CMD]…`: Valet's plate reader and any other
//! reader side by side, on the same images, the same machine, in one run.
//!
//! Every reader is run the same way: one process per region folder, given all of that region's
//! images, printing one OpenALPR-style JSON object per image (`crate::openalpr`). Valet runs as
//! `valet plate --openalpr --min-confidence 0 --region R` (every box it read, as `valet eval plates`
//! scores them); a peer is a shell command with `{region}` replaced by the
//! folder's name and the image paths appended (`alpr -c {region} -j` for OpenALPR). So start-up and
//! decode count for every reader alike: *batch* ms/image is the process's wall time over its
//! images, *in-process* the median of what the reader itself reports per image
//! (`processing_time_ms`, decode excluded). Reads are scored as `valet eval plates` scores them
//! (`valet_plates::eval::score`: the box that overlaps the label, else the most confident read).

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use valet_plates::eval::{Tally, score};

use crate::eval::plates::{Set, read_list, region_sets, selects};
use crate::openalpr::AlprResults;
use crate::report::median;

#[derive(Debug, clap::Args)]
pub struct PlatesBenchArgs {
    /// A folder in the openalpr benchmark layout (`us/`, `eu/`, `br/` of `name.jpg` + `name.txt`).
    dir: PathBuf,
    /// Only the images this file lists, one path per line (e.g. `models/plates-holdout.txt`).
    #[arg(long)]
    only: Option<PathBuf>,
    /// Another reader: a shell command that prints OpenALPR-style JSON, one line per image, for the
    /// image paths appended to it; `{region}` becomes the region folder's name. For OpenALPR:
    /// `--peer 'alpr -c {region} -j'`. May be given more than once.
    #[arg(long)]
    peer: Vec<String>,
}

/// One reader's run over one region.
#[derive(Debug)]
struct Run {
    images: usize,
    tally: Tally,
    wall_ms: f64,
    in_process_ms: Vec<f64>,
}

pub fn run(args: PlatesBenchArgs) -> anyhow::Result<ExitCode> {
    let only = args.only.as_deref().map(read_list).transpose()?;
    let mut sets = region_sets(&args.dir, None)?;
    for set in &mut sets {
        if let Some(only) = &only {
            set.samples.retain(|s| only.iter().any(|entry| selects(entry, &s.name)));
        }
    }
    sets.retain(|set| !set.samples.is_empty());
    if sets.is_empty() {
        bail!(
            "no labelled images in {}{}",
            args.dir.display(),
            if only.is_some() { " on the --only list" } else { "" }
        );
    }
    let valet = std::env::current_exe().context("finding this valet binary")?;
    let mut readers = vec![(
        "valet".to_owned(),
        format!("{} plate --openalpr --min-confidence 0 --region {{region}}", quoted(&valet)),
    )];
    readers.extend(args.peer.iter().enumerate().map(|(i, cmd)| (format!("peer-{}", i + 1), cmd.clone())));

    println!(
        "plates in {}{}: one process per reader and region, start-up and decode included",
        args.dir.display(),
        args.only.as_ref().map_or(String::new(), |p| format!(", only those listed in {}", p.display()))
    );
    for (name, cmd) in &readers[1..] {
        println!("{name}: {cmd}");
    }
    println!(
        "{:<8} {:<6} {:>6} {:>8} {:>8} {:>14} {:>16}",
        "reader", "region", "images", "top-1", "found", "batch ms/image", "in-process ms"
    );
    let mut failed = false;
    let mut batch: Vec<Vec<Option<f64>>> = Vec::new();
    for (name, cmd) in &readers {
        let mut per_region = Vec::new();
        let mut all = Run { images: 0, tally: Tally::default(), wall_ms: 0.0, in_process_ms: Vec::new() };
        for set in &sets {
            match run_reader(cmd, set) {
                Ok(run) => {
                    row(name, &set.name, &run);
                    per_region.push(Some(run.wall_ms / run.images.max(1) as f64));
                    all.images += run.images;
                    all.tally.merge(&run.tally);
                    all.wall_ms += run.wall_ms;
                    all.in_process_ms.extend(run.in_process_ms);
                }
                Err(e) => {
                    failed = true;
                    println!("{name:<8} {:<6} failed: {e:#}", set.name);
                    per_region.push(None);
                }
            }
        }
        if sets.len() > 1 && all.images > 0 {
            row(name, "all", &all);
        }
        per_region.push((all.images > 0).then(|| all.wall_ms / all.images as f64));
        batch.push(per_region);
    }
    // How many times faster Valet is than each peer, batch ms/image against batch ms/image.
    for (peer, (name, _)) in batch.iter().zip(&readers).skip(1) {
        let ratios: Vec<String> = sets
            .iter()
            .map(|s| s.name.as_str())
            .chain(["all"])
            .zip(peer.iter().zip(&batch[0]))
            .filter_map(|(region, pair)| match pair {
                (Some(theirs), Some(ours)) if *ours > 0.0 => Some(format!("{region} {:.1}×", theirs / ours)),
                _ => None,
            })
            .collect();
        println!("valet against {name}: {}", ratios.join(", "));
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn row(reader: &str, region: &str, run: &Run) {
    let rates = run.tally.rates();
    let in_process =
        if run.in_process_ms.is_empty() { "-".to_owned() } else { format!("{:.1}", median(&run.in_process_ms)) };
    println!(
        "{reader:<8} {region:<6} {:>6} {:>8} {:>8} {:>14.1} {in_process:>16}",
        run.images,
        format!("{:.1} %", rates.top1 * 100.0),
        format!("{:.1} %", rates.found * 100.0),
        run.wall_ms / run.images.max(1) as f64,
    );
}

/// Runs `cmd` (through `sh -c`, `{region}` filled in) on every image of `set` at once and scores
/// what it printed. Its stdout must hold one JSON object per image, in order.
fn run_reader(cmd: &str, set: &Set) -> anyhow::Result<Run> {
    let script = format!("{} \"$@\"", cmd.replace("{region}", &set.name));
    let started = Instant::now();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .arg("sh")
        .args(set.samples.iter().map(|s| &s.path))
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {script:?}"))?;
    let wall_ms = started.elapsed().as_secs_f64() * 1e3;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        bail!("{script:?} exited with {}: {last}", out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let results: Vec<AlprResults> = stdout
        .lines()
        .filter(|line| line.trim_start().starts_with('{'))
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .context("a line of its output is not OpenALPR-style JSON")?;
    if results.len() != set.samples.len() {
        bail!("it printed {} results for {} images", results.len(), set.samples.len());
    }
    let mut run = Run { images: results.len(), tally: Tally::default(), wall_ms, in_process_ms: Vec::new() };
    for (sample, result) in set.samples.iter().zip(&results) {
        let reads = result.plate_reads();
        for plate in &sample.plates {
            run.tally.add(&score(plate, &reads));
        }
        run.in_process_ms.push(result.processing_time_ms);
    }
    Ok(run)
}

/// `path` as one shell word.
fn quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

//! `valet eval plates DIR`: top-1 exact, top-1 with O/0 folded, top-N, plate found (IoU ≥ 0.5) and
//! ms per image, per region and overall, then every plate read wrong.
//!
//! DIR is one region folder of the openalpr benchmark (`name.jpg` + `name.txt`, lines
//! `file x y w h PLATE`) or a folder holding `us/`, `eu/`, `br/` such folders. `--only LIST` keeps
//! the images a list names (one path per line, relative to DIR or to its parent, or a bare file name),
//! which is how the held-out split (`models/plates-holdout.txt`) is measured.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::json;
use valet_imaging::DecodeLimits;
use valet_plates::eval::{LabelledPlate, Outcome, Tally, parse_labels, score};
use valet_plates::{PlateReader, Region, StageTimings};

use crate::plate::ReadingArgs;

const REGION_FOLDERS: [&str; 3] = ["us", "eu", "br"];

#[derive(Debug, clap::Args)]
pub struct PlatesArgs {
    /// A folder in the openalpr benchmark layout: `name.jpg` beside `name.txt` (`file x y w h PLATE`).
    dir: PathBuf,
    /// Whose formats rank the spellings: us, eu, br or auto (default: the region folder's name,
    /// else auto).
    #[arg(long)]
    region: Option<Region>,
    /// Candidates per plate that count for top-N.
    #[arg(long = "top", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    top_n: u16,
    /// Evaluate only the images this file lists, one path per line (e.g. `us/abc.jpg`).
    #[arg(long)]
    only: Option<PathBuf>,
    #[command(flatten)]
    reading: ReadingArgs,
    /// The last line is one JSON object with n, top1, top1_folded, topn, found, ms_per_image,
    /// per_region and failures.
    #[arg(long)]
    json: bool,
}

/// One benchmark image and the plates labelled in it.
#[derive(Debug)]
pub(crate) struct Sample {
    /// Path relative to DIR, `/`-separated: what `--only` lists and failures name.
    pub(crate) name: String,
    pub(crate) path: PathBuf,
    pub(crate) plates: Vec<LabelledPlate>,
}

/// A region folder's samples and results.
#[derive(Debug, Default)]
pub(crate) struct Set {
    pub(crate) name: String,
    region: Region,
    pub(crate) samples: Vec<Sample>,
    tally: Tally,
    images: usize,
    total_ms: f64,
    decode_ms: f64,
    stages: StageTimings,
}

#[derive(Debug, serde::Serialize)]
struct Failure {
    file: String,
    truth: String,
    read: String,
    found: bool,
}

pub fn run(args: PlatesArgs) -> anyhow::Result<ExitCode> {
    let reader = PlateReader::bundled()?;
    let only = args.only.as_deref().map(read_list).transpose()?;
    let mut sets = region_sets(&args.dir, args.region)?;
    for set in &mut sets {
        if let Some(only) = &only {
            set.samples.retain(|s| only.iter().any(|entry| selects(entry, &s.name)));
        }
    }
    let total: usize = sets.iter().map(|s| s.samples.len()).sum();
    if total == 0 {
        bail!(
            "no labelled images in {}{}",
            args.dir.display(),
            if only.is_some() { " on the --only list" } else { "" }
        );
    }

    let limits = DecodeLimits::default();
    let top_n = usize::from(args.top_n);
    // The first read pays for lazy allocations and cold caches; it is not what a running gate sees.
    if let Some(first) = sets.iter().flat_map(|s| &s.samples).next()
        && let Ok(decoded) = std::fs::read(&first.path)
            .map_err(anyhow::Error::from)
            .and_then(|b| Ok(valet_imaging::decode(&b, &limits)?))
    {
        reader.read(&decoded.image, &args.reading.options(Region::Auto, top_n))?;
    }

    let mut failures = Vec::new();
    let mut unreadable = Vec::new();
    for set in &mut sets {
        let options = args.reading.options(set.region, top_n);
        for sample in &set.samples {
            let bytes = std::fs::read(&sample.path).with_context(|| format!("reading {}", sample.path.display()))?;
            let t = Instant::now();
            let decoded = match valet_imaging::decode(&bytes, &limits) {
                Ok(decoded) => decoded,
                Err(e) => {
                    unreadable.push(format!("{}: {e}", sample.name));
                    for plate in &sample.plates {
                        set.tally.add(&Outcome {
                            found: false,
                            top1: false,
                            top1_folded: false,
                            topn: false,
                            read: String::new(),
                        });
                        failures.push(Failure {
                            file: sample.name.clone(),
                            truth: plate.text.clone(),
                            read: String::new(),
                            found: false,
                        });
                    }
                    continue;
                }
            };
            let decode_ms = t.elapsed().as_secs_f64() * 1e3;
            let reading = reader.read(&decoded.image, &options)?;
            set.total_ms += t.elapsed().as_secs_f64() * 1e3;
            set.decode_ms += decode_ms;
            set.images += 1;
            add_stages(&mut set.stages, &reading.timings);
            for plate in &sample.plates {
                let outcome = score(plate, &reading.plates);
                set.tally.add(&outcome);
                if !outcome.top1 {
                    let (file, truth) = (sample.name.clone(), plate.text.clone());
                    failures.push(Failure { file, truth, read: outcome.read, found: outcome.found });
                }
            }
        }
    }

    print_report(&args, &sets, &failures, &unreadable, top_n);
    if args.json {
        let mut all = Tally::default();
        let mut per_region = BTreeMap::new();
        for set in &sets {
            all.merge(&set.tally);
            per_region.insert(set.name.clone(), summary(&set.tally, set.images, set.total_ms));
        }
        let images: usize = sets.iter().map(|s| s.images).sum();
        let total_ms: f64 = sets.iter().map(|s| s.total_ms).sum();
        let mut stages = StageTimings::default();
        sets.iter().for_each(|s| add_stages(&mut stages, &s.stages));
        let per_image = |ms: f64| ms / images.max(1) as f64;
        let mut line = summary(&all, images, total_ms);
        line["images"] = json!(images);
        line["top_n"] = json!(top_n);
        line["deskew"] = json!(args.reading.deskew);
        line["views"] = json!(args.reading.views);
        line["stage_ms"] = json!({
            "decode": per_image(sets.iter().map(|s| s.decode_ms).sum()),
            "detect": per_image(stages.detect_ms),
            "rectify": per_image(stages.rectify_ms),
            "recognize": per_image(stages.recognize_ms),
            "postprocess": per_image(stages.postprocess_ms),
        });
        line["per_region"] = json!(per_region);
        line["failures"] = json!(failures);
        line["unreadable"] = json!(unreadable);
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn summary(tally: &Tally, images: usize, total_ms: f64) -> serde_json::Value {
    let r = tally.rates();
    json!({
        "n": r.n, "top1": r.top1, "top1_folded": r.top1_folded, "topn": r.topn, "found": r.found,
        "ms_per_image": total_ms / images.max(1) as f64,
    })
}

fn add_stages(sum: &mut StageTimings, t: &StageTimings) {
    sum.detect_ms += t.detect_ms;
    sum.rectify_ms += t.rectify_ms;
    sum.recognize_ms += t.recognize_ms;
    sum.postprocess_ms += t.postprocess_ms;
}

fn print_report(args: &PlatesArgs, sets: &[Set], failures: &[Failure], unreadable: &[String], top_n: usize) {
    println!(
        "plates in {}{}{}",
        args.dir.display(),
        args.only.as_ref().map_or(String::new(), |p| format!(", only those listed in {}", p.display())),
        if args.reading.deskew { ", deskewed" } else { "" }
    );
    println!("{} view(s) per plate", args.reading.views);
    for line in unreadable {
        println!("  unreadable: {line}");
    }
    let top_header = format!("top-{top_n}");
    println!(
        "{:<8} {:<6} {:>7} {:>9} {:>7} {:>7} {:>9}  read as",
        "region", "n", "top-1", "top-1 O/0", top_header, "found", "ms/image"
    );
    let pct = |v: f64| format!("{:.1} %", v * 100.0);
    let row = |name: &str, tally: &Tally, images: usize, ms: f64, region: &str| {
        let r = tally.rates();
        println!(
            "{name:<8} {:<6} {:>7} {:>9} {:>7} {:>7} {:>9.1}  {region}",
            r.n,
            pct(r.top1),
            pct(r.top1_folded),
            pct(r.topn),
            pct(r.found),
            ms / images.max(1) as f64
        );
    };
    let mut all = Tally::default();
    for set in sets {
        row(&set.name, &set.tally, set.images, set.total_ms, set.region.as_str());
        all.merge(&set.tally);
    }
    if sets.len() > 1 {
        let images: usize = sets.iter().map(|s| s.images).sum();
        let ms: f64 = sets.iter().map(|s| s.total_ms).sum();
        row("all", &all, images, ms, "");
    }
    println!("ms/image = decode + read (detect, rectify, recognize, rank), after one warm-up read");
    if !failures.is_empty() {
        println!("read wrong ({}):", failures.len());
        for f in failures {
            let read = if f.read.is_empty() { "—" } else { &f.read };
            println!(
                "  {:<48} truth {:<10} read {:<10} found {}",
                f.file,
                f.truth,
                read,
                if f.found { "yes" } else { "no" }
            );
        }
    }
}

/// The region folders below `dir` (`us/`, `eu/`, `br/`), or `dir` itself as the only one.
pub(crate) fn region_sets(dir: &Path, region: Option<Region>) -> anyhow::Result<Vec<Set>> {
    if !dir.is_dir() {
        bail!("{} is not a folder", dir.display());
    }
    let subfolders: Vec<&str> = REGION_FOLDERS.into_iter().filter(|r| dir.join(r).is_dir()).collect();
    let folders: Vec<(String, PathBuf, &str)> = if subfolders.is_empty() {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| ".".into());
        vec![(name, dir.to_path_buf(), "")]
    } else {
        subfolders.into_iter().map(|r| (r.to_owned(), dir.join(r), r)).collect()
    };
    folders
        .into_iter()
        .map(|(name, folder, prefix)| {
            // The folder's name is its region when it is one.
            let region = region.unwrap_or_else(|| name.parse().unwrap_or(Region::Auto));
            let samples = samples(&folder, prefix)?;
            Ok(Set { name, region, samples, ..Set::default() })
        })
        .collect()
}

/// Every image named by a `*.txt` label file in `folder`, with its plates, sorted by name.
fn samples(folder: &Path, prefix: &str) -> anyhow::Result<Vec<Sample>> {
    let mut by_image: BTreeMap<String, Sample> = BTreeMap::new();
    let entries = std::fs::read_dir(folder).with_context(|| format!("reading {}", folder.display()))?;
    for entry in entries {
        let txt = entry?.path();
        if txt.extension().is_none_or(|e| e != "txt") {
            continue;
        }
        let text = std::fs::read_to_string(&txt).with_context(|| format!("reading {}", txt.display()))?;
        let labels = parse_labels(&text).with_context(|| format!("{}", txt.display()))?;
        for label in labels {
            let path = folder.join(&label.file);
            if !path.is_file() {
                eprintln!("warning: {} labels {}, which is missing", txt.display(), label.file);
                continue;
            }
            let name = if prefix.is_empty() { label.file.clone() } else { format!("{prefix}/{}", label.file) };
            by_image
                .entry(name.clone())
                .or_insert_with(|| Sample { name, path, plates: Vec::new() })
                .plates
                .push(label);
        }
    }
    Ok(by_image.into_values().collect())
}

/// The `--only` list: one path per line; blank lines and `#` comments are skipped.
pub(crate) fn read_list(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the --only list {}", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.trim().replace('\\', "/").trim_start_matches("./").to_owned())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect())
}

/// Whether a list entry names the image at `name` (relative to DIR): the same path, a longer path
/// ending in it (the list was written for DIR's parent), or a bare file name equal to its own.
pub(crate) fn selects(entry: &str, name: &str) -> bool {
    let file_name = name.rsplit('/').next().unwrap_or(name);
    entry == name || entry.ends_with(&format!("/{name}")) || (!entry.contains('/') && entry == file_name)
}

#[cfg(test)]
mod tests {
    use super::selects;

    #[test]
    fn a_list_entry_selects_by_relative_path_parent_path_or_bare_name() {
        let table = [
            ("us/abc.jpg", "us/abc.jpg", true),
            ("br/GWT2180.jpg", "GWT2180.jpg", true),
            ("abc.jpg", "us/abc.jpg", true),
            ("eu/abc.jpg", "us/abc.jpg", false),
            ("xabc.jpg", "abc.jpg", false),
            ("us/abc.jpg", "abc.png", false),
        ];
        for (entry, name, selected) in table {
            assert_eq!(selects(entry, name), selected, "{entry} for {name}");
        }
    }
}

//! `valet plate`: the bundled plate reader on local files, no server: boxes, texts, candidates and
//! the time each stage took.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;
use valet_imaging::DecodeLimits;
use valet_plates::{PlateReader, ReaderOptions, Region};

use crate::classify::{decode_file, format_name};
use crate::openalpr::AlprResults;
use crate::report;

/// How each plate is read; shared by `valet plate` and `valet eval plates`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ReadingArgs {
    /// Straighten tilted plates before reading them.
    #[arg(long)]
    pub deskew: bool,
    /// Crops read per plate (1 to 3): the detected box, then a tighter and a looser one.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub views: u8,
}

impl ReadingArgs {
    pub fn options(&self, region: Region, top_n: usize) -> ReaderOptions {
        ReaderOptions { region, top_n, deskew: self.deskew, views: usize::from(self.views) }
    }
}

#[derive(Debug, clap::Args)]
pub struct PlateArgs {
    /// Photos of cars (JPEG or PNG).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Whose plate formats rank the spellings: us, eu, br or auto.
    #[arg(long, default_value_t = Region::Auto)]
    region: Region,
    /// Candidates shown per plate.
    #[arg(long = "top", default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    top_n: u16,
    #[command(flatten)]
    reading: ReadingArgs,
    /// Reads less sure than this (0 to 1) are dropped: far below the gate's review threshold (0.6 by
    /// default) a box is a sign, a sticker or a grille, not a plate. 0 shows every box read.
    #[arg(long, default_value_t = MIN_CONFIDENCE, value_parser = unit_interval)]
    min_confidence: f32,
    /// One JSON object per file.
    #[arg(long, conflicts_with = "openalpr")]
    json: bool,
    /// One JSON object per file as OpenALPR's `alpr -j` writes it (confidences in percent, corners),
    /// for tools that consume OpenALPR's output.
    #[arg(long)]
    openalpr: bool,
}

/// A sixth of the gate's default review threshold: on the benchmark photos the boxes read below it
/// are text on signs and bumpers (`L1` at 0.000, `JN` at 0.003), while real plates the reader is
/// unsure of (0.2–0.5) stay shown.
pub const MIN_CONFIDENCE: f32 = 0.1;

fn unit_interval(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("a confidence is between 0 and 1, not {text:?}")),
    }
}

pub fn run(args: PlateArgs) -> anyhow::Result<ExitCode> {
    let reader = PlateReader::bundled()?;
    let options = args.reading.options(args.region, usize::from(args.top_n));
    let limits = DecodeLimits::default();
    let mut failed = false;
    for path in &args.files {
        let result = decode_file(path, &limits).and_then(|(len, decoded, decode_ms)| {
            let reading = reader.read(&decoded.image, &options)?;
            Ok((len, decoded, decode_ms, reading))
        });
        let (len, decoded, decode_ms, reading) = match result {
            Ok(done) => done,
            Err(e) => {
                failed = true;
                report::failed(path, &format!("{e:#}"), args.json);
                continue;
            }
        };
        let t = &reading.timings;
        if args.openalpr {
            let ms = t.detect_ms + t.rectify_ms + t.recognize_ms + t.postprocess_ms;
            let (width, height) = (decoded.source_width, decoded.source_height);
            let mut results = AlprResults::from_reading(&reading, width, height, ms, usize::from(args.top_n));
            results.results.retain(|r| r.confidence >= args.min_confidence * 100.0);
            println!("{}", serde_json::to_string(&results)?);
            continue;
        }
        let format = format_name(decoded.format);
        let read = reading.plates.len();
        let plates: Vec<_> = reading.plates.into_iter().filter(|p| p.confidence >= args.min_confidence).collect();
        let dropped = read - plates.len();
        if args.json {
            println!(
                "{}",
                json!({
                    "file": path.display().to_string(),
                    "plates": plates,
                    "dropped": dropped,
                    "image": { "format": format, "width": decoded.source_width, "height": decoded.source_height, "bytes": len },
                    "timings_ms": {
                        "decode": decode_ms, "detect": t.detect_ms, "rectify": t.rectify_ms,
                        "recognize": t.recognize_ms, "postprocess": t.postprocess_ms,
                    },
                })
            );
            continue;
        }
        match plates.len() {
            0 => println!("{}: no plate found", path.display()),
            1 => println!("{}: 1 plate", path.display()),
            n => println!("{}: {n} plates", path.display()),
        }
        if dropped > 0 {
            println!(
                "  ({dropped} more read below {:.2} confidence, dropped; --min-confidence 0 shows them)",
                args.min_confidence
            );
        }
        for plate in &plates {
            let b = plate.bbox;
            let text = if plate.text.is_empty() { "(unreadable)" } else { &plate.text };
            println!(
                "  {text}  confidence {:.3}  at {},{} {}×{} (detected {:.2}, region {})",
                plate.confidence, b.x, b.y, b.w, b.h, plate.detection_confidence, plate.region
            );
            let candidates: Vec<String> =
                plate.candidates.iter().map(|c| format!("{} {:.3}", c.text, c.confidence)).collect();
            if candidates.len() > 1 {
                println!("    candidates: {}", candidates.join(" · "));
            }
        }
        println!(
            "  image {}, {} · decode {decode_ms:.1} ms · detect {:.1} ms · rectify {:.2} ms · recognize {:.1} ms · post {:.2} ms",
            report::dimensions(decoded.source_width, decoded.source_height, format),
            report::bytes(len as u64),
            t.detect_ms,
            t.rectify_ms,
            t.recognize_ms,
            t.postprocess_ms
        );
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

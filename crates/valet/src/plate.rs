//! `valet plate`: the bundled plate reader on local files, no server: boxes, texts, candidates and
//! the time each stage took.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;
use valet_imaging::DecodeLimits;
use valet_plates::{PlateReader, ReaderOptions, Region};

use crate::classify::{decode_file, format_name};
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
    /// One JSON object per file.
    #[arg(long)]
    json: bool,
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
        let format = format_name(decoded.format);
        let t = &reading.timings;
        if args.json {
            println!(
                "{}",
                json!({
                    "file": path.display().to_string(),
                    "plates": reading.plates,
                    "image": { "format": format, "width": decoded.source_width, "height": decoded.source_height, "bytes": len },
                    "timings_ms": {
                        "decode": decode_ms, "detect": t.detect_ms, "rectify": t.rectify_ms,
                        "recognize": t.recognize_ms, "postprocess": t.postprocess_ms,
                    },
                })
            );
            continue;
        }
        match reading.plates.len() {
            0 => println!("{}: no plate found", path.display()),
            1 => println!("{}: 1 plate", path.display()),
            n => println!("{}: {n} plates", path.display()),
        }
        for plate in &reading.plates {
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

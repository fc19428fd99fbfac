//! `valet classify`: the bundled occupancy model on local files, no server.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use serde_json::json;
use valet_imaging::{DecodeLimits, Decoded, ImageFormat};
use valet_occupancy::OccupancyClassifier;

use crate::report;

#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    /// Images of single parking spaces (JPEG or PNG).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// One JSON object per file.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ClassifyArgs) -> anyhow::Result<ExitCode> {
    let classifier = OccupancyClassifier::bundled()?;
    let limits = DecodeLimits::default();
    let mut failed = false;
    for path in &args.files {
        let result = decode_file(path, &limits).and_then(|(len, decoded, decode_ms)| {
            let t = Instant::now();
            let verdict = classifier.classify(std::slice::from_ref(&decoded.image))?[0];
            Ok((len, decoded, verdict, decode_ms, t.elapsed().as_secs_f64() * 1e3))
        });
        match result {
            Ok((len, decoded, verdict, decode_ms, model_ms)) => {
                let format = format_name(decoded.format);
                if args.json {
                    println!(
                        "{}",
                        json!({
                            "file": path.display().to_string(),
                            "label": verdict.state,
                            "scores": { "occupied": verdict.p_occupied, "free": 1.0 - verdict.p_occupied },
                            "image": { "format": format, "width": decoded.source_width, "height": decoded.source_height, "bytes": len },
                            "timings_ms": { "decode": decode_ms, "model": model_ms },
                        })
                    );
                } else {
                    println!(
                        "{}: {} (occupied {:.3}, free {:.3})",
                        path.display(),
                        verdict.state,
                        verdict.p_occupied,
                        1.0 - verdict.p_occupied
                    );
                    println!(
                        "  image {}, {} · decode {decode_ms:.1} ms · model {model_ms:.2} ms",
                        report::dimensions(decoded.source_width, decoded.source_height, format),
                        report::bytes(len as u64)
                    );
                }
            }
            Err(e) => {
                failed = true;
                report::failed(path, &format!("{e:#}"), args.json);
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Reads and decodes one local image: its size in bytes, the pixels and the decode time in ms.
pub fn decode_file(path: &Path, limits: &DecodeLimits) -> anyhow::Result<(usize, Decoded, f64)> {
    let bytes = std::fs::read(path)?;
    let t = Instant::now();
    let decoded = valet_imaging::decode(&bytes, limits)?;
    Ok((bytes.len(), decoded, t.elapsed().as_secs_f64() * 1e3))
}

pub fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "jpeg",
        ImageFormat::Png => "png",
    }
}

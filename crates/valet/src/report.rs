//! How answers are printed: one human paragraph per file, or one JSON object per line.

use std::path::Path;

use serde_json::{Value, json};
use valet_server::api::ErrorAnswer;

use crate::send::Sent;

pub fn sent(path: &Path, sent: &Sent, as_json: bool) {
    let a = &sent.answer;
    if as_json {
        let mut v = serde_json::to_value(a).expect("answer serialises");
        if let Value::Object(map) = &mut v {
            map.insert("file".into(), json!(path.display().to_string()));
            map.insert("transfer_ms".into(), json!(sent.transfer_ms));
            map.insert("round_trip_ms".into(), json!(sent.round_trip_ms));
            map.insert("attempts".into(), json!(sent.attempts));
        }
        println!("{v}");
        return;
    }
    println!("{}: {} (occupied {:.3}, free {:.3})", path.display(), a.label, a.scores.occupied, a.scores.free);
    println!("  image {}, {}", dimensions(a.image.width, a.image.height, &a.image.format), bytes(a.image.bytes));
    let t = &a.timings_ms;
    println!(
        "  transfer {:.1} ms (client) · receive {:.1} ms · decode {:.1} ms · model {:.2} ms · server total {:.1} ms · round trip {:.1} ms{}",
        sent.transfer_ms,
        t.receive,
        t.decode,
        t.model,
        t.total,
        sent.round_trip_ms,
        if sent.attempts > 1 { format!(" ({} attempts)", sent.attempts) } else { String::new() }
    );
}

pub fn refused(path: &Path, status: u16, error: &ErrorAnswer, as_json: bool) {
    if as_json {
        println!(
            "{}",
            json!({ "file": path.display().to_string(), "status": status, "error": error.error, "message": error.message })
        );
    } else {
        eprintln!("{}: refused ({status} {}): {}", path.display(), error.error, error.message);
    }
}

pub fn failed(path: &Path, message: &str, as_json: bool) {
    if as_json {
        println!("{}", json!({ "file": path.display().to_string(), "error": "send_failed", "message": message }));
    } else {
        eprintln!("{}: {message}", path.display());
    }
}

pub fn dimensions(width: u32, height: u32, format: &str) -> String {
    format!("{width}×{height} {format} ({:.2} MP)", f64::from(width) * f64::from(height) / 1e6)
}

pub fn bytes(n: u64) -> String {
    match n {
        n if n >= 1_000_000 => format!("{:.2} MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} kB", n as f64 / 1e3),
        n => format!("{n} B"),
    }
}

/// The median of `values` (0 for none); the bench tables report medians, since this machine is noisy.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 0 => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        n => sorted[n / 2],
    }
}

/// The `q` quantile (0..=1) of `values`, nearest rank; 0 for none.
pub fn percentile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n => sorted[((n - 1) as f64 * q).round() as usize],
    }
}

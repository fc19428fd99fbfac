//! `valet bench functions`: the functions as separate processes on loopback, measured the way
//! Knative runs them. For each function alone: cold start (exec → `/readyz` answers 200) and
//! resident memory once ready; then frames per second through the chain ingest → plate reader →
//! gate → billing wired by `K_SINK`, against the same frames in one process (all functions).
//!
//! Each process gets a fresh data directory (a Knative pod's disk is empty at start), so a cold
//! start includes creating the SQLite file and running its migrations.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};

use super::process::{Process, device_key, wait_ready};
use futures_util::StreamExt;

use crate::report::median;

const FUNCTIONS: [&str; 6] = ["ingest", "plate-reader", "occupancy", "gate", "billing", "query"];

#[derive(Debug, clap::Args)]
pub struct FunctionsBenchArgs {
    /// Cold starts per function.
    #[arg(long, default_value_t = 10)]
    runs: u32,
    /// Frames sent through the chain (and through one process).
    #[arg(long, default_value_t = 100)]
    frames: u32,
    /// Frames in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// A gate camera's JPEG (default: the test fixture with plate VL482TG).
    #[arg(long)]
    frame: Option<PathBuf>,
}

pub async fn run(args: FunctionsBenchArgs) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe()?;
    let frame_path =
        args.frame.unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/demo/gate-VL482TG.jpg"));
    let frame = std::fs::read(&frame_path).with_context(|| format!("reading {}", frame_path.display()))?;

    println!("cold start: exec → /readyz 200, median of {} runs; RSS once ready", args.runs);
    println!("{:<14} {:>10} {:>10} {:>10} {:>12}", "function", "median ms", "min ms", "max ms", "RSS MiB");
    for function in FUNCTIONS {
        let mut times = Vec::new();
        let mut rss = Vec::new();
        for _ in 0..args.runs {
            let dir = tempfile::tempdir()?;
            let started = Instant::now();
            let process = Process::start(&exe, &["--functions", function], dir.path(), None)?;
            wait_ready(&process.url).await?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            rss.push(process.rss_mib()?);
        }
        let min = times.iter().copied().fold(f64::INFINITY, f64::min);
        let max = times.iter().copied().fold(0.0, f64::max);
        println!("{function:<14} {:>10.1} {min:>10.1} {max:>10.1} {:>12.1}", median(&times), median(&rss));
    }

    // The chain, wired last-to-first. One data directory: the functions share its SQLite file.
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let key = device_key(&exe, &data)?;
    let billing = Process::start(&exe, &["--functions", "billing"], &data, None)?;
    wait_ready(&billing.url).await?;
    let gate = Process::start(&exe, &["--functions", "gate"], &data, Some(&billing.url))?;
    wait_ready(&gate.url).await?;
    let reader = Process::start(&exe, &["--functions", "plate-reader"], &data, Some(&gate.url))?;
    wait_ready(&reader.url).await?;
    let ingest = Process::start(&exe, &["--functions", "ingest"], &data, Some(&reader.url))?;
    wait_ready(&ingest.url).await?;
    let chain = send_frames(&ingest.url, &key, &frame, args.frames, args.concurrency).await?;
    let chain_rss: Vec<f64> =
        [&ingest, &reader, &gate, &billing].iter().map(|p| p.rss_mib()).collect::<Result<_, _>>()?;
    drop((ingest, reader, gate, billing));

    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let key = device_key(&exe, &data)?;
    let all = Process::start(&exe, &["--functions", "all"], &data, None)?;
    wait_ready(&all.url).await?;
    let embedded = send_frames(&all.url, &key, &frame, args.frames, args.concurrency).await?;
    let all_rss = all.rss_mib()?;

    println!();
    println!(
        "{} gate frames, {} in flight; each frame is 3 events (frame → plate read → session)",
        args.frames, args.concurrency
    );
    println!("{:<34} {:>10} {:>10} {:>14} {:>10}", "wiring", "frames/s", "events/s", "median ms", "RSS MiB");
    for (name, (per_second, latencies), rss) in [
        ("4 processes, K_SINK over HTTP", chain, chain_rss.iter().sum::<f64>()),
        ("1 process, in memory", embedded, all_rss),
    ] {
        println!("{name:<34} {per_second:>10.1} {:>10.1} {:>14.1} {rss:>10.1}", per_second * 3.0, median(&latencies));
    }
    println!(
        "chain RSS after the run: ingest {:.1}, plate-reader {:.1}, gate {:.1}, billing {:.1} MiB",
        chain_rss[0], chain_rss[1], chain_rss[2], chain_rss[3]
    );
    Ok(ExitCode::SUCCESS)
}

/// Sends `frames` entry frames, `concurrency` at a time: (frames per second, latencies in ms).
async fn send_frames(
    url: &str,
    key: &str,
    frame: &[u8],
    frames: u32,
    concurrency: usize,
) -> anyhow::Result<(f64, Vec<f64>)> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let latencies: Vec<anyhow::Result<f64>> = futures_util::stream::iter(0..frames)
        .map(|n| {
            let client = client.clone();
            let frame = frame.to_vec();
            async move {
                let sent = Instant::now();
                let answer = client
                    .post(format!("{url}/v1/gates/bench-lane/frames?direction=entry"))
                    .bearer_auth(key)
                    .header("idempotency-key", format!("bench-{n}"))
                    .body(frame)
                    .send()
                    .await?;
                if !answer.status().is_success() {
                    bail!("frame {n}: {} {}", answer.status(), answer.text().await.unwrap_or_default());
                }
                Ok(sent.elapsed().as_secs_f64() * 1000.0)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    let latencies = latencies.into_iter().collect::<anyhow::Result<Vec<f64>>>()?;
    Ok((f64::from(frames) / elapsed, latencies))
}

//! `valet bench prototype`: the student prototype's upload measurements, reproduced. `valet bench lot`
//! (ms per lot frame against the number of spaces) is in [`lot`], `valet bench functions` (cold start,
//! memory and throughput of the functions as separate processes) in [`functions`], `valet bench
//! adapter` (fitting one camera's occupancy adapter, stage by stage) in [`adapter`], `valet bench
//! cameras` (how many 10 fps gate cameras one box keeps up with) in [`cameras`], `valet bench
//! gate-latency` (first frame with a car → barrier command) in [`gate_latency`], `valet bench plates`
//! (the plate reader beside OpenALPR or any other reader) in [`plates`], `valet bench load` (each
//! endpoint's knee, and twice its load) in [`load`], `valet bench soak` (half an hour at a fixed rate,
//! for leaks) in [`soak`].
//!
//! It generates the prototype's four problem files (`valet_imaging::synthetic::PROTOTYPE_FILES`:
//! ~205 KB, ~1.19 MB, ~22 MB and the 37 MB / 162 MP photo that crashed it), sends each `--runs`
//! times through the same uploader as `valet send`, and prints transfer and model times beside the
//! prototype's.

mod adapter;
mod cameras;
mod functions;
mod gate_latency;
mod load;
mod lot;
mod plates;
mod process;
mod soak;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use indicatif::ProgressBar;
use valet_imaging::synthetic::{PROTOTYPE_FILES, write_photo_jpeg};

use crate::send::{Outcome, Uploader};

/// The prototype's published numbers per file: (transfer s, model s); `None` = it crashed.
const PROTOTYPE: [Option<(f64, f64)>; 4] = [Some((0.014, 6.77)), Some((0.042, 6.37)), Some((0.56, 8.05)), None];

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Send the prototype's four test images N times each and print the timing table.
    Prototype {
        /// Sends per file.
        #[arg(long, default_value_t = 10)]
        runs: u32,
        /// Use a running server instead of starting one in-process on a free loopback port.
        #[arg(long, requires = "key")]
        server: Option<String>,
        /// Device key for `--server`.
        #[arg(long)]
        key: Option<String>,
        /// Where the generated images are kept between runs (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// ms per lot frame against the number of spaces, decode separately.
    Lot(lot::LotBenchArgs),
    /// Each function's cold start and memory, and frames per second through the chain of
    /// separate processes against one process.
    Functions(functions::FunctionsBenchArgs),
    /// What fitting one camera's occupancy adapter costs, stage by stage, on labelled patches.
    Adapter(adapter::AdapterBenchArgs),
    /// How many 10 fps gate cameras this box keeps up with, motion gating on: frames read and
    /// dropped, passages, CPU.
    Cameras(cameras::CamerasBenchArgs),
    /// First frame with a car (or its passage) → barrier command over MQTT: median and p99.
    GateLatency(gate_latency::GateLatencyArgs),
    /// The plate reader beside other readers (`--peer`, e.g. OpenALPR) on the same images: top-1,
    /// found and ms per image, per region.
    Plates(plates::PlatesBenchArgs),
    /// Each endpoint's knee (throughput against requests in flight), then twice the knee's load:
    /// what is answered, how fast, what is shed, resident memory, and gate frames lost.
    Load(load::LoadArgs),
    /// The demo garage under a fixed rate for half an hour: RSS, open descriptors, data size and
    /// p99 every minute, so that a leak shows as a slope.
    Soak(soak::SoakArgs),
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    let (runs, server, key, dir) = match cmd {
        BenchCommand::Prototype { runs, server, key, dir } => (runs, server, key, dir),
        BenchCommand::Lot(args) => return lot::run(args),
        BenchCommand::Functions(args) => return functions::run(args).await,
        BenchCommand::Adapter(args) => return adapter::run(args),
        BenchCommand::Cameras(args) => return cameras::run(args).await,
        BenchCommand::GateLatency(args) => return gate_latency::run(args).await,
        BenchCommand::Plates(args) => return plates::run(args),
        BenchCommand::Load(args) => return load::run(args).await,
        BenchCommand::Soak(args) => return soak::run(args).await,
    };
    let dir = dir.unwrap_or_else(|| std::env::temp_dir().join("valet-bench-prototype"));
    std::fs::create_dir_all(&dir)?;
    let mut files = Vec::new();
    for spec in PROTOTYPE_FILES {
        let path = dir.join(format!("{}.jpg", spec.name));
        if !path.exists() {
            eprintln!("generating {} ({}×{}, ~{} bytes)…", path.display(), spec.width, spec.height, spec.target_bytes);
            let tmp = path.with_extension("partial");
            let out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            write_photo_jpeg(out, spec.width, spec.height, Some(spec.target_bytes), 7)?;
            std::fs::rename(&tmp, &path)?;
        }
        files.push((spec, path));
    }

    // Without --server: a private in-process server with a throwaway database and device.
    let (url, key, _guard) = match server {
        Some(url) => (url, key, None),
        None => {
            let local = LocalServer::start().await?;
            (local.url.clone(), Some(local.key.clone()), Some(local))
        }
    };
    let uploader = Uploader::new(&url, key, 0)?;

    println!("{runs} sends per file to {url}; times in seconds, mean / median");
    println!(
        "{:<22} {:>9} {:>8} | {:>17} {:>17} {:>17} | {:>18}",
        "file", "size", "MP", "transfer", "decode", "model", "prototype xfer/model"
    );
    for ((spec, path), prototype) in files.iter().zip(PROTOTYPE) {
        let (mut transfer, mut decode, mut model) = (Vec::new(), Vec::new(), Vec::new());
        let size = std::fs::metadata(path)?.len();
        for _ in 0..runs {
            match uploader.send(path, &ProgressBar::hidden()).await? {
                Outcome::Answered(sent) => {
                    transfer.push(sent.transfer_ms / 1e3);
                    decode.push(sent.answer.timings_ms.decode / 1e3);
                    model.push(sent.answer.timings_ms.model / 1e3);
                }
                Outcome::Refused { status, error } => {
                    bail!("{} was refused ({status}): {}", path.display(), error.message)
                }
            }
        }
        let proto = match prototype {
            Some((t, m)) => format!("{t:.3} / {m:.2}"),
            None => "crashed".to_owned(),
        };
        println!(
            "{:<22} {:>9} {:>8.1} | {:>17} {:>17} {:>17} | {:>18}",
            spec.name,
            crate::report::bytes(size),
            f64::from(spec.width) * f64::from(spec.height) / 1e6,
            mean_median(&transfer),
            mean_median(&decode),
            mean_median(&model),
            proto
        );
    }
    println!("model = preprocessing + inference of the bundled occupancy network; decode = the safe decoder");
    println!("(downscaled JPEG decode for images over the pixel budget). Prototype: Caffe mAlexNet, 2019.");
    Ok(ExitCode::SUCCESS)
}

fn mean_median(values: &[f64]) -> String {
    if values.is_empty() {
        return "—".to_owned();
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
    let mid = sorted.len() / 2;
    let median = if sorted.len().is_multiple_of(2) { (sorted[mid - 1] + sorted[mid]) / 2.0 } else { sorted[mid] };
    format!("{mean:.4} / {median:.4}")
}

/// An in-process server on a free port with a fresh data directory, stopped on drop.
struct LocalServer {
    url: String,
    key: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _data: tempfile::TempDir,
}

impl LocalServer {
    async fn start() -> anyhow::Result<LocalServer> {
        let data = tempfile::tempdir()?;
        let store = valet_store::Store::open(data.path()).await?;
        let name = valet_store::DeviceName::parse("bench")?;
        let (_, key) = store.add_device(&name, chrono::Utc::now()).await?;
        drop(store);
        let settings = valet_server::Settings {
            listen: "127.0.0.1:0".parse()?,
            data_dir: data.path().to_path_buf(),
            ..valet_server::Settings::default()
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = valet_server::run(settings, shutdown, |addr| {
                let _ = ready_tx.send(addr);
            })
            .await
            {
                eprintln!("bench server failed: {e:#}");
            }
        });
        let addr = ready_rx.await.context("the bench server did not start")?;
        Ok(LocalServer { url: format!("http://{addr}"), key: key.expose().to_owned(), stop: Some(stop), _data: data })
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

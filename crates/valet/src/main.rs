//! `valet`: one binary for the whole garage. Parsing is two steps (clap flags → resolved settings);
//! every subcommand is a thin shell over the library crates.

mod bench;
mod cameras;
mod classify;
mod demo;
mod devices;
mod eval;
mod lot;
mod lot_history;
mod lot_label;
mod openalpr;
mod plate;
mod report;
mod send;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use valet_server::Settings;
use valet_server::settings::LogFormat;

#[derive(Debug, Parser)]
#[command(name = "valet", version, about = "A parking structure with nobody in the booth.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the garage: HTTP API, SQLite database and bundled models in one process.
    Serve {
        #[command(flatten)]
        place: Place,
        /// Address to listen on (env VALET_LISTEN, or PORT for all interfaces; default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Functions this process runs: `all`, or some of ingest, plate-reader, occupancy, gate,
        /// billing, query, separated by commas (env VALET_FUNCTIONS). Events for the others go to K_SINK.
        #[arg(long)]
        functions: Option<valet_server::FunctionSet>,
        /// A simulated garage: cars with rendered plates and a bay camera through the real
        /// pipeline, in a throwaway data directory unless --data names one; prints an operator key.
        #[arg(long)]
        demo: bool,
    },
    /// Register, list or revoke the cameras and gates allowed to post.
    #[command(subcommand)]
    Devices(devices::DevicesCommand),
    /// Upload images to a running server and print its answers with the timings.
    Send(send::SendArgs),
    /// Classify space images locally with the bundled model (no server).
    Classify(classify::ClassifyArgs),
    /// Find and read the licence plates in photos locally with the bundled models (no server).
    Plate(plate::PlateArgs),
    /// Lot layouts: import from PKLot/CNR-EXT, save in the database, list, show, render over a frame.
    #[command(subcommand)]
    Lot(lot::LotCommand),
    /// Pulled gate cameras: add (RTSP, MJPEG or snapshot URL), list, remove.
    #[command(subcommand)]
    Cameras(cameras::CamerasCommand),
    /// Read a whole camera frame of a lot: per-space states and free counts per zone and level.
    Occupancy(lot::OccupancyArgs),
    /// Measure a model on labelled data.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Reproduce published measurements.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// Where the garage's configuration and data live.
#[derive(Debug, Clone, clap::Args)]
struct Place {
    /// Data directory holding the SQLite database (env VALET_DATA_DIR; default ./valet-data).
    #[arg(long = "data")]
    data_dir: Option<PathBuf>,
    /// TOML configuration file (env VALET_CONFIG; default ./valet.toml when present).
    #[arg(long)]
    config: Option<PathBuf>,
}

impl Place {
    /// Flags override the file and the environment.
    fn settings(&self) -> anyhow::Result<Settings> {
        let mut settings = Settings::load(self.config.as_deref())?;
        if let Some(dir) = &self.data_dir {
            settings.data_dir = dir.clone();
        }
        Ok(settings)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { place, listen, functions, demo } => {
            let mut settings = place.settings()?;
            if let Some(listen) = listen {
                settings.listen = listen;
            }
            if let Some(functions) = functions {
                settings.functions = functions;
            }
            init_logging(settings.log_format, "info");
            // Held until the server stops: the demo's throwaway data directory.
            let mut _demo_dir = None;
            let mut demo_key = None;
            if demo {
                if place.data_dir.is_none() && std::env::var_os("VALET_DATA_DIR").is_none() {
                    let dir = tempfile::tempdir()?;
                    settings.data_dir = dir.path().to_path_buf();
                    _demo_dir = Some(dir);
                }
                demo_key = Some(demo::prepare(&mut settings).await?);
            }
            let data_dir = settings.data_dir.clone();
            let serves_pages = settings.functions.contains(valet_server::Function::Query);
            let functions = String::from(settings.functions.clone());
            valet_server::run(settings, valet_server::shutdown_signal(), |addr| {
                let mut lines = format!(
                    "Valet is serving on http://{addr} (functions: {functions}; data in {})",
                    data_dir.display()
                );
                match &demo_key {
                    Some((name, key)) => {
                        lines += &format!("\ndemo: open http://{addr}/ops and sign in as `{name}` with the key {key}");
                    }
                    None if serves_pages => {
                        lines += &format!(
                            "\ndashboard: http://{addr}/ops · driver portal: http://{addr}/\n\
                             an operator signs in with a key from `valet devices add NAME --role operator --data {}`",
                            data_dir.display()
                        );
                    }
                    None => {}
                }
                // One write, its error ignored: a reader that takes the first line and hangs up
                // (a supervisor, a test) must not kill the server with a broken pipe.
                let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), format!("{lines}\n").as_bytes());
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Devices(cmd) => {
            init_logging(LogFormat::Text, "warn");
            devices::run(cmd).await
        }
        Command::Send(args) => {
            init_logging(LogFormat::Text, "warn");
            send::run(args).await
        }
        Command::Classify(args) => classify::run(args),
        Command::Plate(args) => plate::run(args),
        Command::Lot(cmd) => lot::run(cmd).await,
        Command::Cameras(cmd) => cameras::run(cmd).await,
        Command::Occupancy(args) => lot::occupancy(args).await,
        Command::Eval(cmd) => eval::run(cmd).await,
        Command::Bench(cmd) => {
            init_logging(LogFormat::Text, "warn");
            bench::run(cmd).await
        }
    }
}

/// Logs go to stderr so that stdout stays for answers (and `--json`).
fn init_logging(format: LogFormat, default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("VALET_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

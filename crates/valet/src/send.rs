//! `valet send`: stream images to a server with a progress bar, retrying when the garage Wi-Fi drops.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use valet_server::api::{ClassifyAnswer, ErrorAnswer};

use crate::report;

#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// JPEG or PNG files to classify.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Server URL (env VALET_SERVER).
    #[arg(long, env = "VALET_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Device key from `valet devices add` (env VALET_KEY).
    #[arg(long, env = "VALET_KEY", hide_env_values = true)]
    key: Option<String>,
    /// One JSON object per file: the server's answer plus `transfer_ms`.
    #[arg(long)]
    json: bool,
    /// Attempts after the first when the connection fails or the server is unavailable.
    #[arg(long, default_value_t = 5)]
    retries: u32,
}

/// What the server said about one file.
#[derive(Debug)]
pub enum Outcome {
    Answered(Sent),
    /// The server answered with an error status; retrying would not help.
    Refused {
        status: StatusCode,
        error: ErrorAnswer,
    },
}

#[derive(Debug)]
pub struct Sent {
    pub answer: ClassifyAnswer,
    /// Client-side: the round trip less the server's own work (decode, model, bookkeeping), i.e.
    /// connecting plus moving the request and the answer over the network.
    pub transfer_ms: f64,
    /// Client-side: from the start of the request to the end of the answer.
    pub round_trip_ms: f64,
    pub attempts: u32,
}

/// Posts files to `/v1/classify` of one server.
#[derive(Debug, Clone)]
pub struct Uploader {
    client: reqwest::Client,
    url: String,
    key: Option<String>,
    retries: u32,
}

/// First wait between attempts; doubles each time.
const BACKOFF: Duration = Duration::from_millis(250);

impl Uploader {
    pub fn new(server: &str, key: Option<String>, retries: u32) -> anyhow::Result<Uploader> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client")?;
        Ok(Uploader { client, url: format!("{}/v1/classify", server.trim_end_matches('/')), key, retries })
    }

    pub async fn send(&self, path: &Path, progress: &ProgressBar) -> anyhow::Result<Outcome> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.attempt(path, progress).await {
                Ok((status, _)) if retryable_status(status) && attempt <= self.retries => {}
                Ok((status, body)) => return finish(status, body, attempt),
                Err(e) if attempt <= self.retries && retryable_error(&e) => {
                    progress.println(format!("{}: {e}; retrying", path.display()));
                }
                Err(e) => return Err(e).with_context(|| format!("sending {}", path.display())),
            }
            tokio::time::sleep(BACKOFF * 2u32.pow(attempt - 1)).await;
        }
    }

    async fn attempt(&self, path: &Path, progress: &ProgressBar) -> anyhow::Result<(StatusCode, Attempt)> {
        let file = tokio::fs::File::open(path).await.with_context(|| format!("opening {}", path.display()))?;
        let size = file.metadata().await?.len();
        progress.set_length(size);
        progress.set_position(0);

        // The body is streamed from disk, never held whole; the bar follows the chunks as they leave.
        let bar = progress.clone();
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).inspect(move |chunk| {
            if let Ok(bytes) = chunk {
                bar.inc(bytes.len() as u64);
            }
        });

        let started = Instant::now();
        let mut request = self
            .client
            .post(&self.url)
            .header(CONTENT_TYPE, content_type(path))
            .header(CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(stream));
        if let Some(key) = &self.key {
            request = request.header(AUTHORIZATION, format!("Bearer {key}"));
        }
        let response = request.send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        let round_trip_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok((status, Attempt { body, round_trip_ms }))
    }
}

struct Attempt {
    body: bytes::Bytes,
    round_trip_ms: f64,
}

fn finish(status: StatusCode, a: Attempt, attempts: u32) -> anyhow::Result<Outcome> {
    if status.is_success() {
        let answer: ClassifyAnswer =
            serde_json::from_slice(&a.body).context("the server's answer is not valid JSON")?;
        // Everything the server did not spend working on the image was spent moving bytes.
        let t = &answer.timings_ms;
        let transfer_ms = (a.round_trip_ms - (t.total - t.receive)).max(0.0);
        return Ok(Outcome::Answered(Sent { answer, transfer_ms, round_trip_ms: a.round_trip_ms, attempts }));
    }
    let error = serde_json::from_slice(&a.body).unwrap_or_else(|_| ErrorAnswer {
        error: "http_error".into(),
        message: String::from_utf8_lossy(&a.body).chars().take(300).collect(),
    });
    Ok(Outcome::Refused { status, error })
}

/// Worth another attempt: the connection failed, or a proxy or the server is briefly unavailable.
fn retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 502..=504)
}

fn retryable_error(e: &anyhow::Error) -> bool {
    e.downcast_ref::<reqwest::Error>()
        .is_some_and(|e| e.is_connect() || e.is_timeout() || e.is_request() || e.is_body())
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        _ => "application/octet-stream",
    }
}

pub fn progress_bar(json: bool) -> ProgressBar {
    // Hidden automatically when stderr is not a terminal; never drawn in JSON mode.
    let bar = if json { ProgressBar::hidden() } else { ProgressBar::new(0) };
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

pub async fn run(args: SendArgs) -> anyhow::Result<ExitCode> {
    let uploader = Uploader::new(&args.server, args.key.clone(), args.retries)?;
    let mut failed = false;
    for path in &args.files {
        let bar = progress_bar(args.json);
        bar.set_message(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        let outcome = uploader.send(path, &bar).await;
        bar.finish_and_clear();
        match outcome {
            Ok(Outcome::Answered(sent)) => report::sent(path, &sent, args.json),
            Ok(Outcome::Refused { status, error }) => {
                failed = true;
                report::refused(path, status.as_u16(), &error, args.json);
            }
            Err(e) => {
                failed = true;
                report::failed(path, &format!("{e:#}"), args.json);
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

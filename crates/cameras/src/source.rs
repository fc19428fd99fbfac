//! A camera's source: connect, read JPEG frames into the camera's [`FrameSlot`], and on any
//! failure (refused, garbage, stall, end of stream) record it in [`Health`](crate::Health) and
//! connect again with backoff, for ever.
//!
//! `rtsp://` goes through an ffmpeg child that transcodes to MJPEG ([`rtsp`]); `http://` is told
//! apart by the answer's content type: `multipart/x-mixed-replace` is MJPEG, parsed here
//! ([`mjpeg`]), `image/jpeg` is a snapshot, polled ([`snapshot`]).

mod mjpeg;
mod rtsp;
mod snapshot;

/// The MJPEG parser without a camera, for `fuzz/` (feature `fuzzing`; not part of the API).
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    /// The boundary a `multipart/x-mixed-replace` content type names, as the source reads it.
    pub fn mjpeg_boundary(content_type: &str) -> Option<String> {
        super::mjpeg::boundary(content_type)
    }

    /// The parts of an MJPEG `stream` pushed in chunks of `chunk` bytes, or each part's error.
    pub fn mjpeg_parts(boundary: &str, stream: &[u8], chunk: usize) -> Vec<Result<Vec<u8>, String>> {
        super::mjpeg::parse_in_chunks(boundary, stream, chunk)
    }
}

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use crate::{CameraConfig, Frame, FrameSlot, HealthRecorder};

/// No frame may be bigger: a longer MJPEG part, snapshot or ffmpeg frame is an error, and no
/// buffer grows past about this much.
pub const MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;

/// The knobs of [`run_source_with`]. [`Default`] is what [`run_source`] uses; tests shorten the
/// waits and point `ffmpeg` elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSettings {
    /// No frame for this long: the camera stalled; reconnect.
    pub stall: Duration,
    /// The wait before the first reconnect; doubled after each failure up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// A connection that delivered frames for this long resets the backoff.
    pub healthy: Duration,
    /// The ffmpeg program for `rtsp://` cameras (looked up on `PATH` when not a path).
    pub ffmpeg: PathBuf,
}

impl Default for SourceSettings {
    fn default() -> Self {
        Self {
            stall: Duration::from_secs(10),
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            healthy: Duration::from_secs(60),
            ffmpeg: PathBuf::from("ffmpeg"),
        }
    }
}

/// Pulls `config`'s camera into `slot` until the task is aborted or the slot is closed,
/// recording everything in `health`: frames (and a drop when a frame replaced one the lane
/// worker had not taken), connected, errors, reconnects.
pub async fn run_source(config: CameraConfig, slot: FrameSlot, health: HealthRecorder) {
    run_source_with(config, slot, health, SourceSettings::default()).await
}

/// [`run_source`] with other [`SourceSettings`].
pub async fn run_source_with(config: CameraConfig, slot: FrameSlot, health: HealthRecorder, settings: SourceSettings) {
    tokio::select! {
        _ = slot.closed() => {}
        _ = pull_for_ever(&config, &slot, &health, &settings) => {}
    }
    health.connected(false);
}

/// Why one connection to a camera ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SourceError {
    #[error("unsupported camera URL {0:?}: expected rtsp:// or http://")]
    Scheme(String),
    #[error("no frame for {}s: the camera stalled", .0.as_secs_f32())]
    Stalled(Duration),
    #[error("a frame of {0} bytes or more: over the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("the camera ended the stream")]
    Ended,
    #[error("{0}")]
    Camera(String),
    #[error("rtsp:// cameras need ffmpeg on PATH; install it (Debian: apt-get install ffmpeg)")]
    NoFfmpeg,
}

/// A reqwest error as a person reads it: every cause, never the URL (it may hold a password).
pub(crate) fn http_error(context: &str, error: reqwest::Error) -> SourceError {
    let error = error.without_url();
    let mut text = format!("{context}: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    SourceError::Camera(text)
}

/// Hands frames from a connection to the slot and keeps the tallies the reconnect loop needs.
pub(crate) struct Feed<'a> {
    slot: &'a FrameSlot,
    health: &'a HealthRecorder,
    camera: &'a CameraConfig,
    stall: Duration,
    started: Instant,
    first_frame: Option<Instant>,
    last_frame: Option<Instant>,
}

impl<'a> Feed<'a> {
    fn new(slot: &'a FrameSlot, health: &'a HealthRecorder, camera: &'a CameraConfig, stall: Duration) -> Self {
        Self { slot, health, camera, stall, started: Instant::now(), first_frame: None, last_frame: None }
    }

    /// A whole JPEG arrived.
    pub(crate) fn frame(&mut self, jpeg: Vec<u8>) {
        let now = Instant::now();
        if self.first_frame.is_none() {
            self.first_frame = Some(now);
            self.health.connected(true);
        }
        self.last_frame = Some(now);
        let at = Utc::now();
        self.health.frame(at);
        if self.slot.put(Frame { jpeg, at }) {
            self.health.dropped();
        }
    }

    /// Something went wrong that the connection survives (one garbage part, say).
    pub(crate) fn error(&self, error: impl std::fmt::Display) {
        let text = scrub(&error.to_string(), &self.camera.url);
        // Counted in the camera's health; at debug only, since a broken camera can send ten a second.
        tracing::debug!(camera = %self.camera.name, error = %text, "camera sent a bad frame");
        self.health.error(text);
    }

    /// When the camera counts as stalled unless another frame arrives first.
    pub(crate) fn deadline(&self) -> Instant {
        self.last_frame.unwrap_or(self.started) + self.stall
    }

    fn healthy_for(&self) -> Duration {
        self.first_frame.map_or(Duration::ZERO, |first| first.elapsed())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Rtsp,
    Http,
}

fn scheme(url: &str) -> Option<Scheme> {
    let (scheme, _) = url.split_once("://")?;
    match scheme.to_ascii_lowercase().as_str() {
        "rtsp" => Some(Scheme::Rtsp),
        "http" => Some(Scheme::Http),
        _ => None,
    }
}

async fn pull_for_ever(config: &CameraConfig, slot: &FrameSlot, health: &HealthRecorder, settings: &SourceSettings) {
    let Some(scheme) = scheme(&config.url) else {
        // Nothing to retry: the URL will not change under us (pull validates before this runs).
        health.error(SourceError::Scheme(scrub(&config.url, &config.url)));
        return std::future::pending().await;
    };
    let client = http_client();
    let mut backoff = Backoff::new(settings);
    let mut attempts = 0u64;
    loop {
        if attempts > 0 {
            health.reconnect();
        }
        attempts += 1;
        let mut feed = Feed::new(slot, health, config, settings.stall);
        let error = match scheme {
            Scheme::Rtsp => rtsp::stream(&config.url, &settings.ffmpeg, &mut feed).await,
            Scheme::Http => match &client {
                Ok(client) => http_stream(client, config, &mut feed).await,
                Err(error) => SourceError::Camera(error.clone()),
            },
        };
        health.connected(false);
        let text = scrub(&error.to_string(), &config.url);
        let wait = backoff.after_failure(feed.healthy_for());
        tracing::warn!(camera = %config.name, error = %text, retry_in = ?wait, "camera source failed; reconnecting");
        health.error(text);
        tokio::time::sleep(wait).await;
    }
}

/// The wait before each reconnect: doubling from `first_backoff` to `max_backoff`, back to the
/// first after a connection that delivered frames for `healthy`.
#[derive(Debug)]
struct Backoff {
    next: Duration,
    first: Duration,
    max: Duration,
    healthy: Duration,
}

impl Backoff {
    fn new(settings: &SourceSettings) -> Self {
        Self {
            next: settings.first_backoff,
            first: settings.first_backoff,
            max: settings.max_backoff,
            healthy: settings.healthy,
        }
    }

    /// How long to wait after a connection that delivered frames for `healthy_for` failed.
    fn after_failure(&mut self, healthy_for: Duration) -> Duration {
        if healthy_for >= self.healthy {
            self.next = self.first;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }
}

fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        // Cameras live on the garage's LAN: a proxy set for the internet must not capture them.
        .no_proxy()
        .build()
        .map_err(|e| format!("could not build an HTTP client: {e}"))
}

/// One HTTP connection: the answer's content type says MJPEG stream or snapshot.
async fn http_stream(client: &reqwest::Client, config: &CameraConfig, feed: &mut Feed<'_>) -> SourceError {
    let response = match snapshot::get(client, &config.url, feed.stall).await {
        Ok(response) => response,
        Err(error) => return error,
    };
    let content_type =
        response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let media_type = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if media_type.starts_with("multipart/") {
        match mjpeg::boundary(&content_type) {
            Some(boundary) => mjpeg::stream(response, &boundary, feed).await,
            None => SourceError::Camera(format!("the camera's multipart stream names no boundary ({content_type})")),
        }
    } else if snapshot::is_jpeg_type(&media_type) {
        snapshot::poll(client, &config.url, config.every, response, feed).await
    } else {
        SourceError::Camera(format!(
            "the camera answered Content-Type {content_type:?}; expected multipart/x-mixed-replace (MJPEG) \
             or image/jpeg (a snapshot)"
        ))
    }
}

/// `text` with the password `url` carries (if any) replaced by `***`: errors and logs quote URLs.
fn scrub(text: &str, url: &str) -> String {
    let authority = url.split_once("://").map_or("", |(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""));
    let password = authority.rsplit_once('@').and_then(|(userinfo, _)| userinfo.split_once(':')).map(|(_, p)| p);
    match password {
        Some(password) if !password.is_empty() => text.replace(password, "***"),
        _ => text.to_owned(),
    }
}

/// Whether `bytes` begin like a JPEG (SOI then a marker).
pub(crate) fn looks_like_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

/// How something that is not a JPEG begins, for an error message: `it starts "<html>…"`.
pub(crate) fn describe_start(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(16)];
    if head.is_empty() {
        "it is empty".into()
    } else if head.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("it starts {:?}", String::from_utf8_lossy(head))
    } else {
        format!("it starts {}", head.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_an_error() {
        let url = "rtsp://admin:s3cret@10.0.0.7:554/stream1";
        assert_eq!(
            scrub("rtsp://admin:s3cret@10.0.0.7:554/stream1: Connection refused", url),
            "rtsp://admin:***@10.0.0.7:554/stream1: Connection refused"
        );
        assert_eq!(scrub("no password here", "http://10.0.0.7/mjpeg"), "no password here");
        assert_eq!(scrub("user only", "http://admin@10.0.0.7/mjpeg"), "user only");
    }

    #[test]
    fn the_contract_timings_are_the_defaults() {
        let settings = SourceSettings::default();
        assert_eq!(settings.stall, Duration::from_secs(10));
        assert_eq!(settings.first_backoff, Duration::from_millis(500));
        assert_eq!(settings.max_backoff, Duration::from_secs(30));
        assert_eq!(settings.healthy, Duration::from_secs(60));
    }

    #[test]
    fn backoff_doubles_to_its_ceiling_and_resets_after_a_healthy_minute() {
        let mut backoff = Backoff::new(&SourceSettings::default());
        let waits: Vec<f32> = (0..9).map(|_| backoff.after_failure(Duration::from_secs(59)).as_secs_f32()).collect();
        assert_eq!(waits, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]);
        assert_eq!(backoff.after_failure(Duration::from_secs(60)), Duration::from_millis(500));
        assert_eq!(backoff.after_failure(Duration::ZERO), Duration::from_secs(1));
    }

    #[test]
    fn schemes() {
        assert_eq!(scheme("RTSP://cam/1"), Some(Scheme::Rtsp));
        assert_eq!(scheme("http://cam/mjpeg"), Some(Scheme::Http));
        assert_eq!(scheme("https://cam/mjpeg"), None);
        assert_eq!(scheme("cam"), None);
    }
}

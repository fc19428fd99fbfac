//! Pulled gate cameras: an operator's [`CameraConfig`] in, one [`Passage`] (one plate read) per car
//! out.
//!
//! [`pull`] runs two tasks per camera: the source (`source`: RTSP through ffmpeg, MJPEG, snapshots)
//! puts frames into a [`FrameSlot`] where the newest frame wins, and the lane worker
//! ([`spawn_lane`]) takes them, gates them ([`gating`]: only a lane that changed is read), reads
//! the plate on the blocking pool and tracks the car ([`lane`]) until it is one [`Passage`].

pub mod gating;
mod health;
pub mod lane;
mod slot;
mod source;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use valet_garage::{Candidate, Direction};
use valet_imaging::DecodeLimits;
use valet_plates::{PlateReader, ReaderOptions, Region};

pub use health::HealthRecorder;
pub use slot::{Frame, FrameSlot};
#[cfg(feature = "fuzzing")]
pub use source::fuzzing;
pub use source::{MAX_FRAME_BYTES, SourceSettings, run_source, run_source_with};

/// A gate camera Valet pulls frames from, as an operator configured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CameraConfig {
    /// The camera's name: also the gate camera id of its reads and its barrier's MQTT topic.
    pub name: String,
    /// `rtsp://…`, or `http://…` serving MJPEG or a snapshot. May carry credentials: show it
    /// only through [`CameraConfig::redacted_url`].
    pub url: String,
    pub direction: Direction,
    pub lane: Option<String>,
    /// The plate region the reader ranks spellings for (`us`, `eu`, `br`…); `None`: automatic.
    pub region: Option<String>,
    /// How often a snapshot URL is polled.
    #[serde(with = "millis")]
    pub every: Duration,
}

/// What kind of source a URL is, once known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Rtsp,
    /// `http://`: MJPEG or a snapshot, told apart by the answer's content type.
    Http,
}

#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    #[error("{0}")]
    Config(String),
}

/// A camera's name: its gate camera id, its barrier's MQTT topic, a path segment.
const NAME_MAX: usize = 64;
/// Snapshots are polled at least this often apart: faster is a stream's job.
const EVERY_MIN: Duration = Duration::from_millis(100);
/// And at most this far apart: slower misses cars.
const EVERY_MAX: Duration = Duration::from_secs(60);

impl CameraConfig {
    /// Checks the name, URL scheme, region and poll interval; the source kind the URL names.
    pub fn validate(&self) -> Result<SourceKind, CameraError> {
        let bad = |why: String| Err(CameraError::Config(why));
        let name = &self.name;
        if name.is_empty() || name.chars().count() > NAME_MAX {
            return bad(format!("a camera name is 1 to {NAME_MAX} characters, not {}", name.chars().count()));
        }
        if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
            return bad(format!("camera name {name:?} has {c:?}: use letters, digits, '.', '_' and '-'"));
        }
        let url = self.redacted_url();
        let Some((scheme, rest)) = self.url.split_once("://") else {
            return bad(format!("camera URL {url:?} has no scheme: use rtsp://… or http://…"));
        };
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "rtsp" => SourceKind::Rtsp,
            "http" => SourceKind::Http,
            "https" | "rtsps" => {
                return bad(format!(
                    "camera URL {url:?} uses {scheme}, and this build has no TLS client for cameras yet \
                     (issue 20): use http:// or rtsp:// on the garage's camera network"
                ));
            }
            other => {
                return bad(format!("camera URL {url:?}: {other}:// is not a camera source; use rtsp:// or http://"));
            }
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        if host.is_empty() || host.starts_with(':') || self.url.chars().any(char::is_whitespace) {
            return bad(format!("camera URL {url:?} names no host (or has spaces)"));
        }
        if let Some(region) = &self.region {
            region.parse::<Region>().map_err(|e| CameraError::Config(format!("camera region: {e}")))?;
        }
        if !(EVERY_MIN..=EVERY_MAX).contains(&self.every) {
            return bad(format!(
                "a snapshot is polled every {} ms to {} s, not {} ms",
                EVERY_MIN.as_millis(),
                EVERY_MAX.as_secs(),
                self.every.as_millis()
            ));
        }
        Ok(kind)
    }

    /// The URL with any password replaced by `***`, for lists, logs and pages: the password of
    /// `user:password@`, and query parameters that carry one (`?pwd=…`, as snapshot CGIs take it).
    pub fn redacted_url(&self) -> String {
        let (scheme, rest) = match self.url.split_once("://") {
            Some((scheme, rest)) => (Some(scheme), rest),
            None => (None, self.url.as_str()),
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let authority = match authority.rsplit_once('@') {
            Some((user_info, host)) => match user_info.split_once(':') {
                Some((user, _password)) => format!("{user}:***@{host}"),
                None => format!("{user_info}@{host}"),
            },
            None => authority.to_owned(),
        };
        let tail = match tail.split_once('?') {
            Some((path, query)) => {
                let (query, fragment) = query.split_once('#').map_or((query, None), |(q, f)| (q, Some(f)));
                let query: Vec<String> = query
                    .split('&')
                    .map(|pair| match pair.split_once('=') {
                        Some((key, _)) if is_secret_parameter(key) => format!("{key}=***"),
                        _ => pair.to_owned(),
                    })
                    .collect();
                let fragment = fragment.map(|f| format!("#{f}")).unwrap_or_default();
                format!("{path}?{}{fragment}", query.join("&"))
            }
            None => tail.to_owned(),
        };
        match scheme {
            Some(scheme) => format!("{scheme}://{authority}{tail}"),
            None => format!("{authority}{tail}"),
        }
    }

    /// The reader's options for this camera: its region, the reader's defaults otherwise.
    pub fn reader_options(&self) -> ReaderOptions {
        let region = self.region.as_deref().and_then(|r| r.parse().ok()).unwrap_or(Region::Auto);
        ReaderOptions { region, ..ReaderOptions::default() }
    }
}

fn is_secret_parameter(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "passwd", "pwd", "pass", "token", "key", "secret", "auth"].contains(&key.as_str())
}

/// One camera's health, as `GET /v1/cameras` and the dashboard show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    pub connected: bool,
    pub last_frame_at: Option<DateTime<Utc>>,
    /// Frames per second received, over the last few seconds.
    pub fps: f32,
    pub frames: u64,
    /// Frames that passed motion gating and went to the plate reader.
    pub frames_read: u64,
    /// Frames dropped because the reader was busy.
    pub frames_dropped: u64,
    pub passages: u64,
    pub errors: u64,
    pub reconnects: u64,
    pub last_error: Option<String>,
}

/// A passage's identity, stable for (camera, plate matching key, start minute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PassageId(pub u64);

/// One car passing one camera: exactly one plate read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Passage {
    pub camera: String,
    pub lane: Option<String>,
    pub direction: Direction,
    pub id: PassageId,
    /// When the first frame showing the car arrived.
    pub first_frame_at: DateTime<Utc>,
    /// When the read was decided.
    pub decided_at: DateTime<Utc>,
    pub text: String,
    pub confidence: f32,
    pub candidates: Vec<Candidate>,
    /// The best crop of the plate, JPEG.
    pub crop_jpeg: Option<Vec<u8>>,
    pub frames: u32,
    pub reads: u32,
}

impl Passage {
    /// The CloudEvent id of this passage's `plate.read`: the same for a reconnect or a second replica.
    pub fn event_id(&self) -> String {
        format!("camera-{}-passage-{:016x}", self.camera, self.id.0)
    }
}

/// A running pull; dropping it stops the camera.
#[derive(Debug)]
pub struct Pull {
    config: CameraConfig,
    health: HealthRecorder,
    slot: FrameSlot,
    source: tokio::task::JoinHandle<()>,
    lane: tokio::task::JoinHandle<()>,
}

impl Pull {
    pub fn config(&self) -> &CameraConfig {
        &self.config
    }
    pub fn health(&self) -> Health {
        self.health.snapshot()
    }
}

impl Drop for Pull {
    /// Aborting the source drops its ffmpeg child, which is killed on drop.
    fn drop(&mut self) {
        self.source.abort();
        self.lane.abort();
        self.slot.close();
    }
}

/// Starts pulling `config`'s camera on the current tokio runtime: frames → gating → reader →
/// passages sent to `passages`. Reconnects with backoff for ever; errors go into [`Health`].
pub fn pull(
    config: CameraConfig,
    reader: Arc<PlateReader>,
    limits: DecodeLimits,
    passages: tokio::sync::mpsc::Sender<Passage>,
) -> Result<Pull, CameraError> {
    config.validate()?;
    let (slot, health) = (FrameSlot::new(), HealthRecorder::new());
    let lane = spawn_lane(&config, slot.clone(), health.clone(), reader, limits, passages);
    let source = tokio::spawn(run_source(config.clone(), slot.clone(), health.clone()));
    Ok(Pull { config, health, slot, source, lane })
}

/// The lane worker alone, fed by any source of frames (a pull's, or a benchmark's): takes the
/// newest frame from `slot`, gates it, reads it on the blocking pool when gating says so, tracks
/// the car and sends each decided [`Passage`]. An undecided car is answered at its deadline
/// ([`lane::LaneTracker::due`]) even while a read is in flight or no frame comes. Ends when the
/// slot is closed (answering an undecided car with what it showed) or `passages` is closed. A
/// frame that does not decode is an error in `health`, never the end of the lane.
pub fn spawn_lane(
    config: &CameraConfig,
    slot: FrameSlot,
    health: HealthRecorder,
    reader: Arc<PlateReader>,
    limits: DecodeLimits,
    passages: tokio::sync::mpsc::Sender<Passage>,
) -> tokio::task::JoinHandle<()> {
    let options = config.reader_options();
    let mut tracker = lane::LaneTracker::new(config.name.clone(), config.lane.clone(), config.direction);
    tokio::spawn(async move {
        let emit = |passage: Passage| {
            health.passage();
            passages.send(passage)
        };
        let mut gate = gating::LaneGate::new();
        loop {
            let frame = match until_due(&mut tracker, slot.take(), &emit).await {
                Some(Some(frame)) => frame,
                Some(None) => break,
                None => return,
            };
            let (state, at, reader) = (tracker.state(), frame.at, reader.clone());
            let job =
                tokio::task::spawn_blocking(move || look_at(&frame.jpeg, at, gate, state, &reader, &options, &limits));
            let Some(done) = until_due(&mut tracker, job, &emit).await else { return };
            let (returned, looked) = match done {
                Ok(done) => done,
                Err(e) => {
                    // A panic in a decoder or the reader: this frame is lost, the lane goes on.
                    health.error(format!("reading a frame failed: {e}"));
                    (gating::LaneGate::new(), Err(String::new()))
                }
            };
            gate = returned;
            let (occupied, look) = match looked {
                Ok(seen) => seen,
                Err(why) => {
                    if !why.is_empty() {
                        health.error(why);
                    }
                    continue;
                }
            };
            if !matches!(look, lane::Look::Unread) {
                health.read();
            }
            if let Some(passage) = tracker.observe(at, occupied, look)
                && emit(passage).await.is_err()
            {
                return;
            }
        }
        if let Some(passage) = tracker.finish(Utc::now()) {
            let _ = emit(passage).await;
        }
    })
}

/// Awaits `work`, answering the lane's undecided car if its deadline passes meanwhile. `None`
/// when the passage could not be sent (the receiver is gone).
async fn until_due<T, E>(
    tracker: &mut lane::LaneTracker,
    work: impl Future<Output = T>,
    emit: &impl Fn(Passage) -> E,
) -> Option<T>
where
    E: Future<Output = Result<(), tokio::sync::mpsc::error::SendError<Passage>>>,
{
    tokio::pin!(work);
    loop {
        let wait = tracker.due().map(|due| (due - Utc::now()).to_std().unwrap_or_default());
        tokio::select! {
            done = &mut work => return Some(done),
            () = tokio::time::sleep(wait.unwrap_or_default()), if wait.is_some() => {
                if let Some(passage) = tracker.overdue(Utc::now()) {
                    emit(passage).await.ok()?;
                }
            }
        }
    }
}

/// One frame, on the blocking pool: the gate's look, and the reader's when the gate says so.
/// Hands the gate back with the outcome: whether the lane is occupied and what was read.
fn look_at(
    jpeg: &[u8],
    at: DateTime<Utc>,
    mut gate: gating::LaneGate,
    state: gating::LaneState,
    reader: &PlateReader,
    options: &ReaderOptions,
    limits: &DecodeLimits,
) -> (gating::LaneGate, Result<(bool, lane::Look), String>) {
    let thumbnail = match valet_imaging::decode_thumbnail(jpeg, gating::THUMBNAIL_SIDE, limits) {
        Ok(decoded) => gating::Thumbnail::from_rgb(&decoded.image),
        Err(e) => return (gate, Err(format!("a frame that is not a usable JPEG: {e}"))),
    };
    let scene = gate.look(&thumbnail, at, state);
    if !gate.should_read(&scene, state, at) {
        return (gate, Ok((scene.occupied, lane::Look::Unread)));
    }
    let started = std::time::Instant::now();
    let frame = match valet_imaging::decode(jpeg, limits) {
        Ok(decoded) => decoded.image,
        Err(e) => return (gate, Err(format!("a frame that is not a usable JPEG: {e}"))),
    };
    let reading = match reader.read(&frame, options) {
        Ok(reading) => reading,
        Err(e) => return (gate, Err(format!("the plate reader failed: {e}"))),
    };
    tracing::debug!(
        ms = started.elapsed().as_secs_f64() * 1e3,
        presence = scene.presence,
        motion = scene.motion,
        plate = reading.plates.first().map_or("", |p| p.text.as_str()),
        confidence = reading.plates.first().map_or(0.0, |p| p.confidence),
        "frame read"
    );
    // Plates come in detection-confidence order: the first is the car in the lane.
    let look = match reading.plates.into_iter().next() {
        None => lane::Look::NoPlate,
        Some(plate) => lane::Look::Plate(lane::Sighting {
            crop_jpeg: valet_plates::review_crop_jpeg(&frame, &plate.bbox),
            candidates: plate.candidates,
        }),
    };
    (gate, Ok((scene.occupied, look)))
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camera(name: &str, url: &str) -> CameraConfig {
        CameraConfig {
            name: name.to_owned(),
            url: url.to_owned(),
            direction: Direction::Entry,
            lane: None,
            region: None,
            every: Duration::from_millis(500),
        }
    }

    #[test]
    fn configs_are_validated_as_the_table_says() {
        // (name, url, region, every ms, Ok(kind) or a word the error must contain)
        type Row = (&'static str, &'static str, Option<&'static str>, u64, Result<SourceKind, &'static str>);
        let long = "c".repeat(65);
        let table: &[Row] = &[
            ("gate-1", "rtsp://admin:secret@10.0.0.5:554/stream1", None, 500, Ok(SourceKind::Rtsp)),
            ("Gate_2.north", "http://10.0.0.6/mjpeg", Some("eu"), 100, Ok(SourceKind::Http)),
            ("g", "HTTP://cam.local/snapshot.jpg?pwd=x", Some("BR"), 60_000, Ok(SourceKind::Http)),
            ("", "rtsp://cam/1", None, 500, Err("1 to 64")),
            ("gate 1", "rtsp://cam/1", None, 500, Err("' '")),
            ("gate/1", "rtsp://cam/1", None, 500, Err("'/'")),
            ("gäte", "rtsp://cam/1", None, 500, Err("'ä'")),
            ("gate-1", "https://cam/1", None, 500, Err("no TLS")),
            ("gate-1", "ftp://cam/1", None, 500, Err("ftp://")),
            ("gate-1", "cam/1", None, 500, Err("no scheme")),
            ("gate-1", "rtsp://", None, 500, Err("no host")),
            ("gate-1", "rtsp://user:pw@/1", None, 500, Err("no host")),
            ("gate-1", "http://cam/a b", None, 500, Err("spaces")),
            ("gate-1", "rtsp://cam/1", Some("mars"), 500, Err("unknown region")),
            ("gate-1", "http://cam/s.jpg", None, 99, Err("100 ms")),
            ("gate-1", "http://cam/s.jpg", None, 60_001, Err("60 s")),
        ];
        for (name, url, region, every, expected) in table {
            let mut config = camera(name, url);
            config.region = region.map(str::to_owned);
            config.every = Duration::from_millis(*every);
            match (config.validate(), expected) {
                (Ok(kind), Ok(want)) => assert_eq!(kind, *want, "{name} {url}"),
                (Err(e), Err(word)) => assert!(e.to_string().contains(word), "{name} {url}: {e}"),
                (got, want) => panic!("{name} {url}: got {got:?}, expected {want:?}"),
            }
        }
        assert!(camera(&long, "rtsp://cam/1").validate().is_err());
        assert!(camera(&long[..64], "rtsp://cam/1").validate().is_ok());
    }

    #[test]
    fn a_password_never_shows_in_a_redacted_url_or_an_error() {
        let table = [
            ("rtsp://admin:s3cret@10.0.0.5:554/stream1", "rtsp://admin:***@10.0.0.5:554/stream1"),
            ("rtsp://admin@10.0.0.5/stream1", "rtsp://admin@10.0.0.5/stream1"),
            ("http://u:p:q@cam/x?y=1", "http://u:***@cam/x?y=1"),
            ("http://cam/cgi?user=admin&pwd=s3cret&chn=1#top", "http://cam/cgi?user=admin&pwd=***&chn=1#top"),
            ("http://cam/snap.jpg", "http://cam/snap.jpg"),
            ("https://a:s3cret@cam/", "https://a:***@cam/"),
        ];
        for (url, redacted) in table {
            assert_eq!(camera("c", url).redacted_url(), redacted);
        }
        let error = camera("c", "https://a:s3cret@cam/").validate().unwrap_err().to_string();
        assert!(!error.contains("s3cret") && error.contains("a:***@cam"), "{error}");
    }

    #[test]
    fn the_config_round_trips_with_every_in_milliseconds() {
        let mut config = camera("gate-1", "rtsp://cam/1");
        config.lane = Some("north".into());
        config.region = Some("eu".into());
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(json["every"], 500);
        assert_eq!(serde_json::from_value::<CameraConfig>(json).unwrap(), config);
        assert_eq!(config.reader_options().region, Region::Eu);
    }
}

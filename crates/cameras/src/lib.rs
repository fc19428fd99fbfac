//! Pulled gate cameras: an operator's [`CameraConfig`] in, one [`Passage`] (one plate read) per car
//! out. SKELETON from the lead: types are the contract (/work/notes/contract.md); helper H2 builds it.

mod health;
mod slot;
mod source;

pub use health::HealthRecorder;
pub use slot::{Frame, FrameSlot};
pub use source::{MAX_FRAME_BYTES, SourceSettings, run_source, run_source_with};

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use valet_garage::{Candidate, Direction};

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

impl CameraConfig {
    /// Checks the name, URL scheme, region and poll interval; the source kind the URL names.
    pub fn validate(&self) -> Result<SourceKind, CameraError> {
        unimplemented!("H2")
    }

    /// The URL with any password replaced by `***`, for lists, logs and pages.
    pub fn redacted_url(&self) -> String {
        unimplemented!("H2")
    }
}

/// One camera's health, as `GET /v1/cameras` and the dashboard show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
pub struct Pull {
    _config: CameraConfig,
}

impl Pull {
    pub fn config(&self) -> &CameraConfig {
        &self._config
    }
    pub fn health(&self) -> Health {
        unimplemented!("H2")
    }
}

/// Starts pulling `config`'s camera on the current tokio runtime: frames → gating → reader →
/// passages sent to `passages`. Reconnects with backoff for ever; errors go into [`Health`].
pub fn pull(
    config: CameraConfig,
    reader: Arc<valet_plates::PlateReader>,
    limits: valet_imaging::DecodeLimits,
    passages: tokio::sync::mpsc::Sender<Passage>,
) -> Result<Pull, CameraError> {
    let _ = (reader, limits, passages);
    config.validate()?;
    unimplemented!("H2")
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

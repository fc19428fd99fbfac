//! [`PlateRead`]: what a gate camera reports about one car, the input to every gate decision.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which way the car is going, from the camera's mounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Entry,
    Exit,
}

/// The camera (or the device that read the plate itself), as the device registry names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct CameraId(pub String);

/// Another spelling the reader considered, with its confidence in 0..=1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Candidate {
    pub text: String,
    pub confidence: f32,
}

/// One car's plate as read at a gate. `text` is raw: the gate parses it (and may find it is no
/// plate at all). `confidence` is in 0..=1; a NaN counts as no confidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlateRead {
    pub text: String,
    pub confidence: f32,
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    pub camera: CameraId,
    pub direction: Direction,
    pub at: DateTime<Utc>,
}

impl PlateRead {
    /// True when the reader is at least `threshold` sure (false for NaN, which is never sure).
    pub fn is_confident(&self, threshold: f32) -> bool {
        self.confidence >= threshold
    }
}

//! The JSON shapes of the public API, shared by the server and `valet send`.

use serde::{Deserialize, Serialize};

/// `POST /v1/classify` → 200.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifyAnswer {
    /// `occupied` or `free`.
    pub label: String,
    pub scores: Scores,
    pub image: ImageInfo,
    pub timings_ms: Timings,
    /// The row this classification was recorded as.
    pub record_id: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub occupied: f32,
    pub free: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageInfo {
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    /// Size after decoding; smaller than `width`×`height` when a huge JPEG was decoded downscaled.
    pub decoded_width: u32,
    pub decoded_height: u32,
}

/// Server-side timings, as the prototype reported them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// From the request's headers to the last byte of its body.
    pub receive: f64,
    pub decode: f64,
    pub model: f64,
    pub total: f64,
}

/// Every error answer: a stable machine code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorAnswer {
    pub error: String,
    pub message: String,
}

//! The plate reader: a gate camera's frame → `plate.read`. Pure given the frame, so a redelivered
//! frame is simply read again and emits the same event (same id, same read).

use std::sync::Arc;

use valet_garage::{Candidate, Direction};
use valet_plates::ReaderOptions;

use super::{CloudEvent, Function, types};
use crate::AppState;
use crate::api::PlateReadEvent;
use crate::error::ApiError;

/// Names the gate camera on a frame event.
pub const CAMERA: &str = "valetcamera";
/// `entry` or `exit`, from the camera's mounting.
pub const DIRECTION: &str = "valetdirection";

pub async fn handle(state: &AppState, event: &CloudEvent) -> Result<CloudEvent, ApiError> {
    let camera = event
        .extension(CAMERA)
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| ApiError::BadEvent(format!("a {} names its camera in `{CAMERA}`", event.ty)))?
        .to_owned();
    let direction = parse_direction(event.extension(DIRECTION))?;
    let reader = state.plate_reader().ok_or_else(|| ApiError::Internal("the plate reader is not loaded".into()))?;
    let _permit = state.admit(crate::admission::Work::Gate).await?;
    let limits = state.inner.limits;
    let image = event.data.clone();
    let (reading, crop) = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let decoded = valet_imaging::decode(&image, &limits)?;
        let reading =
            reader.read(&decoded.image, &ReaderOptions::default()).map_err(|e| ApiError::Internal(e.to_string()))?;
        let crop = reading.plates.first().and_then(|plate| crop_jpeg(&decoded.image, &plate.bbox));
        Ok((reading, crop))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    // Plates come in detection-confidence order: the first is the car in the lane.
    let read = match reading.plates.into_iter().next() {
        Some(plate) => PlateReadEvent {
            camera,
            direction,
            text: plate.text,
            confidence: plate.confidence,
            candidates: plate
                .candidates
                .into_iter()
                .map(|c| Candidate { text: c.text, confidence: c.confidence })
                .collect(),
            at: event.time,
            crop_jpeg: crop,
        },
        None => PlateReadEvent {
            camera,
            direction,
            text: String::new(),
            confidence: 0.0,
            candidates: Vec::new(),
            at: event.time,
            crop_jpeg: None,
        },
    };
    tracing::info!(event = %event.id, camera = %read.camera, text = %read.text, confidence = read.confidence, "plate read");
    state.metrics().plate_read(&read.camera);
    Ok(event.caused(&Function::PlateReader.source(), types::PLATE_READ, &read))
}

/// The reviewer's crop of the plate (`valet_plates::review_crop_jpeg`) as base64 JPEG.
fn crop_jpeg(frame: &image::RgbImage, bbox: &valet_plates::PlateBox) -> Option<String> {
    use base64::Engine;
    valet_plates::review_crop_jpeg(frame, bbox).map(|jpeg| base64::engine::general_purpose::STANDARD.encode(jpeg))
}

fn parse_direction(text: Option<&str>) -> Result<Direction, ApiError> {
    match text {
        Some("entry") => Ok(Direction::Entry),
        Some("exit") => Ok(Direction::Exit),
        other => Err(ApiError::BadEvent(format!("`{DIRECTION}` is `entry` or `exit`, not {other:?}"))),
    }
}

/// Loads the bundled plate models once per process.
pub fn load() -> anyhow::Result<Arc<valet_plates::PlateReader>> {
    Ok(Arc::new(valet_plates::PlateReader::bundled()?))
}

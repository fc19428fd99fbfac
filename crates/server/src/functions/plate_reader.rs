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
    let _permit = state.inner.decode_permits.acquire().await.map_err(|e| ApiError::Internal(e.to_string()))?;
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
    Ok(event.caused(&Function::PlateReader.source(), types::PLATE_READ, &read))
}

/// The plate and a wide margin around it (half its width each side, its height above and
/// below: the detector's box can be tight, and a cut-off first or last glyph is exactly what a
/// reviewer must see), at most 320 px wide, as base64 JPEG for a reviewer's eyes.
fn crop_jpeg(frame: &image::RgbImage, bbox: &valet_plates::PlateBox) -> Option<String> {
    use base64::Engine;
    let (mx, my) = (bbox.w / 2, bbox.h);
    let x = bbox.x.saturating_sub(mx);
    let y = bbox.y.saturating_sub(my);
    let w = (bbox.w + 2 * mx).min(frame.width().saturating_sub(x));
    let h = (bbox.h + 2 * my).min(frame.height().saturating_sub(y));
    if w == 0 || h == 0 {
        return None;
    }
    let mut crop = image::imageops::crop_imm(frame, x, y, w, h).to_image();
    if w > 320 {
        crop = valet_imaging::resize_rgb(&crop, 320, (h * 320 / w).max(1));
    }
    let jpeg = valet_imaging::encode_jpeg(&crop, 80).ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(jpeg))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn crop_size(frame: &image::RgbImage, bbox: valet_plates::PlateBox) -> (u32, u32) {
        use base64::Engine;
        let jpeg = base64::engine::general_purpose::STANDARD.decode(crop_jpeg(frame, &bbox).unwrap()).unwrap();
        let decoded = valet_imaging::decode(&jpeg, &valet_imaging::DecodeLimits::default()).unwrap();
        (decoded.image.width(), decoded.image.height())
    }

    #[test]
    fn the_reviewers_crop_keeps_half_a_plate_of_margin_each_side() {
        let frame = image::RgbImage::new(640, 480);
        // A 100×30 plate in the middle: 50 px either side, 30 above and below.
        assert_eq!(crop_size(&frame, valet_plates::PlateBox { x: 200, y: 200, w: 100, h: 30 }), (200, 90));
        // At the frame's right edge the margin is what the frame has.
        assert_eq!(crop_size(&frame, valet_plates::PlateBox { x: 560, y: 200, w: 80, h: 30 }), (120, 90));
    }
}

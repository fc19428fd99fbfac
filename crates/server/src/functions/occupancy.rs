//! The occupancy function: a bay camera's frame → every space of its lot classified, smoothed
//! and counted → `lot.counted` (the lot's counts and the spaces that changed), with the frame
//! and the changes written to the lot history. A redelivered frame is one more look at the same
//! scene: the smoother takes it as agreement, and the counts do not move.

use std::sync::Arc;

use valet_lot::CameraId;
use valet_store::{LotFrameRecord, SpaceChangeRecord};

use super::{CloudEvent, Function, types};
use crate::AppState;
use crate::error::ApiError;
use crate::lots::LotUpdate;

/// Names the lot on a frame event.
pub const LOT: &str = "valetlot";
/// Names the layout's camera; the lot's only camera when absent.
pub const CAMERA: &str = "valetcamera";

pub async fn handle(state: &AppState, event: &CloudEvent) -> Result<CloudEvent, ApiError> {
    let lot =
        event.extension(LOT).ok_or_else(|| ApiError::BadEvent(format!("a {} names its lot in `{LOT}`", event.ty)))?;
    let update = read_frame(state, lot, event.extension(CAMERA), event.data.clone()).await?;
    Ok(event.caused(&Function::Occupancy.source(), types::LOT_COUNTED, &update))
}

/// Reads one frame of lot `id`'s `camera` and records it.
pub async fn read_frame(
    state: &AppState,
    id: &str,
    camera: Option<&str>,
    bytes: bytes::Bytes,
) -> Result<LotUpdate, ApiError> {
    let lot = crate::routes::lots::live_lot(state, id)?;
    let camera = match camera {
        Some(camera) => CameraId::new(camera.to_owned()),
        None => match lot.reader.layout().cameras.as_slice() {
            [only] => only.id.clone(),
            _ => return Err(ApiError::BadRequest(format!("lot {id} has several cameras: say which with ?camera="))),
        },
    };
    let _permit = state.admit(crate::admission::Work::Bulk).await?;
    let limits = state.inner.limits;
    let reader_lot = Arc::clone(&lot);
    let reader_camera = camera.clone();
    let jpeg = bytes.clone();
    let reading = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let decoded = valet_imaging::decode(&bytes, &limits)?;
        reader_lot.reader.read(&reader_camera, &decoded.image).map_err(|e| ApiError::BadRequest(e.to_string()))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    for warning in &reading.warnings {
        tracing::warn!(lot = %id, camera = %camera, %warning, "frame read with a warning");
    }
    let at = chrono::Utc::now();
    lot.keep_frame(camera.as_str(), jpeg, at);
    let (update, spaces) = lot.apply(camera.as_str(), &reading, at);
    let frame = LotFrameRecord {
        lot: update.lot.clone(),
        camera: update.camera.clone(),
        at,
        free: update.counts.lot.free,
        occupied: update.counts.lot.occupied,
        unknown: update.counts.lot.unknown,
        spaces,
        counts: serde_json::to_value(&update.counts).map_err(|e| ApiError::Internal(e.to_string()))?,
    };
    let changes: Vec<SpaceChangeRecord> = update
        .changes
        .iter()
        .map(|c| SpaceChangeRecord {
            space: c.space.clone(),
            from: c.from.map(str::to_owned),
            to: c.to.to_owned(),
            confidence: f64::from(c.confidence),
            at,
        })
        .collect();
    state.store().lot_history().record_frame(&frame, &changes).await?;
    Ok(update)
}

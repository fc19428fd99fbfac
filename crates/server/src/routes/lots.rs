//! Guidance: a bay camera posts a frame (`POST /v1/lots/{id}/frames?camera=…`), the lot's
//! state moves, and signs and apps read `GET /v1/lots/{id}/availability` or follow
//! `GET /v1/lots/{id}/events` (server-sent events, one `counts` event per frame).

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use valet_lot::CameraId;
use valet_store::{LotFrameRecord, SpaceChangeRecord};

use crate::AppState;
use crate::auth::AuthedDevice;
use crate::error::ApiError;
use crate::lots::{Availability, LiveLot, LotUpdate, Reconciliation};

#[derive(Debug, Deserialize)]
pub struct FrameQuery {
    /// The layout's camera the frame comes from; the lot's only camera when absent.
    camera: Option<String>,
}

pub async fn post_frame(
    State(state): State<AppState>,
    AuthedDevice(_device): AuthedDevice,
    Path(id): Path<String>,
    Query(query): Query<FrameQuery>,
    request: Request,
) -> Result<Json<LotUpdate>, ApiError> {
    let lot = live_lot(&state, &id)?;
    let camera = match query.camera {
        Some(camera) => CameraId::new(camera),
        None => match lot.reader.layout().cameras.as_slice() {
            [only] => only.id.clone(),
            _ => return Err(ApiError::BadRequest(format!("lot {id} has several cameras: say which with ?camera="))),
        },
    };
    let bytes = super::classify::receive(&state, request).await?;
    let _permit = state.inner.decode_permits.acquire().await.map_err(|e| ApiError::Internal(e.to_string()))?;
    let limits = state.inner.limits;
    let reader_lot = Arc::clone(&lot);
    let reader_camera = camera.clone();
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
    Ok(Json(update))
}

/// With the gates' balance beside the bays' count once a frame has been read (the lot is taken
/// to be the garage the gates guard).
pub async fn availability(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Availability>, ApiError> {
    let mut availability = live_lot(&state, &id)?.availability();
    if availability.at.is_some() {
        let inside = state.gate().store().open_session_count().await?;
        availability.reconciliation = Some(Reconciliation::new(availability.counts.lot.occupied, inside));
    }
    Ok(Json(availability))
}

/// The current counts at once, then one event per frame; a subscriber that fell behind skips
/// to the newest counts (each event carries whole counts, so nothing is lost but history).
pub async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let lot = live_lot(&state, &id)?;
    let first = Event::default().event("availability").json_data(lot.availability()).ok();
    let receiver = lot.subscribe();
    let updates = futures_util::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(update) => {
                    let event = Event::default().event("counts").json_data(&update).ok()?;
                    return Some((Ok(event), receiver));
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    let stream = futures_util::StreamExt::chain(futures_util::stream::iter(first.map(Ok)), updates);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn live_lot(state: &AppState, id: &str) -> Result<Arc<LiveLot>, ApiError> {
    state.lots().get(id).cloned().ok_or_else(|| ApiError::Missing(format!("no lot {id:?} in the lots directory")))
}

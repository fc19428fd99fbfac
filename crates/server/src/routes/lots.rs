//! Guidance: a bay camera posts a frame (`POST /v1/lots/{id}/frames?camera=…`), the lot's
//! state moves, and signs and apps read `GET /v1/lots/{id}/availability` or follow
//! `GET /v1/lots/{id}/events` (server-sent events, one `counts` event per frame).

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::ingest::idempotency_key;
use crate::AppState;
use crate::auth::AuthedDevice;
use crate::error::ApiError;
use crate::functions::{self, occupancy, types};
use crate::lots::{Availability, LiveLot, Reconciliation};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FrameQuery {
    /// The layout's camera the frame comes from; the lot's only camera when absent.
    camera: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/lots/{id}/frames",
    operation_id = "post_lot_frame",
    tag = "devices",
    security(("deviceKey" = [])),
    summary = "A bay camera's frame (`?camera=`)",
    description = "A bay camera's frame (`?camera=`): read every space, smooth, store, and publish the new \
        counts.",
    params(("id" = String, Path, description = "The lot."), FrameQuery),
    request_body(content = inline(crate::routes::openapi::Jpeg), content_type = "image/jpeg"),
    responses((status = 200, description = "OK", body = crate::lots::LotUpdate), (status = 202, description = "Accepted: the chain went on in another function", body = crate::api::ChainAnswer))
)]
pub async fn post_frame(
    State(state): State<AppState>,
    AuthedDevice(_device): AuthedDevice,
    Path(id): Path<String>,
    super::ApiQuery(query): super::ApiQuery<FrameQuery>,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, ApiError> {
    let bytes = super::classify::receive(&state, request).await?;
    let mut extensions = vec![(occupancy::LOT, id.as_str())];
    if let Some(camera) = &query.camera {
        extensions.push((occupancy::CAMERA, camera.as_str()));
    }
    let event = functions::frame_event(types::LOT_FRAME_RECEIVED, idempotency_key(&headers)?, bytes, &extensions);
    // With the occupancy function here, the answer is the lot's update, as it always was.
    super::ingest::answer(&state, event, |chain| {
        chain.trail.iter().find(|e| e.ty == types::LOT_COUNTED).and_then(|e| e.data_json::<serde_json::Value>().ok())
    })
    .await
}

/// With the gates' balance beside the garage's bay count once every lot has read a frame.
#[utoipa::path(
    get,
    path = "/v1/lots/{id}/availability",
    operation_id = "availability",
    tag = "public",
    summary = "Free, occupied and unknown spaces per zone, level and lot",
    description = "Free, occupied and unknown spaces per zone, level and lot.",
    params(("id" = String, Path, description = "The lot.")),
    responses((status = 200, description = "OK", body = Availability))
)]
pub async fn availability(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Availability>, ApiError> {
    let mut availability = live_lot(&state, &id)?.availability();
    if let Some(bays_occupied) = state.lots().garage_bays_occupied() {
        let inside = state.gate().store().open_session_count().await?;
        availability.reconciliation = Some(Reconciliation::new(bays_occupied, inside));
    }
    Ok(Json(availability))
}

/// The current counts at once, then one event per frame; a subscriber that fell behind skips
/// to the newest counts (each event carries whole counts, so nothing is lost but history).
#[utoipa::path(
    get,
    path = "/v1/lots/{id}/events",
    operation_id = "lot_events",
    tag = "public",
    summary = "Server-sent events",
    description = "Server-sent events: `availability` at once, then `counts` after every frame.",
    params(("id" = String, Path, description = "The lot.")),
    responses((status = 200, description = "OK", body = String, content_type = "text/event-stream"))
)]
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

pub(crate) fn live_lot(state: &AppState, id: &str) -> Result<Arc<LiveLot>, ApiError> {
    state.lots().get(id).ok_or_else(|| ApiError::Missing(format!("no lot {id:?}: add its layout with `valet lot add`")))
}

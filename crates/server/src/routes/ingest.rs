//! Ingest over HTTP: a gate camera posts a frame (`POST /v1/gates/{camera}/frames?direction=`),
//! which becomes a `gate.frame.received` event and runs through whichever functions this process
//! has; the rest of the chain is `K_SINK`'s. `POST /` is the CloudEvents endpoint the broker (or
//! the previous function) delivers to when the functions run apart.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use valet_garage::Direction;

use crate::AppState;
use crate::api::{ChainAnswer, ChainStep, GateEvent, PlateReadEvent};
use crate::auth::AuthedDevice;
use crate::error::ApiError;
use crate::functions::{self, Chain, CloudEvent, Function, plate_reader, types};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GateFrameQuery {
    direction: Direction,
}

#[utoipa::path(
    post,
    path = "/v1/gates/{camera}/frames",
    operation_id = "post_gate_frame",
    tag = "devices",
    security(("deviceKey" = [])),
    summary = "A gate camera's frame (`?direction=entry|exit`, JPEG body; `Idempotency-Key` makes a retry the same event)",
    description = "A gate camera's frame (`?direction=entry|exit`, JPEG body; `Idempotency-Key` makes a \
        retry the same event): plate read, gate decision, charge, as far as this process's \
        functions go.",
    params(("camera" = String, Path, description = "The gate camera."), GateFrameQuery, ("Idempotency-Key" = Option<String>, Header, description = "The same key makes a retry the same event: 1 to 128 printable ASCII characters.", pattern = "^[!-~]{1,128}$")),
    request_body(content = inline(crate::routes::openapi::Jpeg), content_type = "image/jpeg"),
    responses((status = 200, description = "OK", body = ChainAnswer), (status = 202, description = "Accepted: the chain went on in another function", body = ChainAnswer))
)]
pub async fn post_gate_frame(
    State(state): State<AppState>,
    AuthedDevice(_device): AuthedDevice,
    Path(camera): Path<String>,
    super::ApiQuery(query): super::ApiQuery<GateFrameQuery>,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, ApiError> {
    if camera.trim().is_empty() {
        return Err(ApiError::BadRequest("the path names the gate camera".into()));
    }
    let bytes = super::classify::receive(&state, request).await?;
    let direction = match query.direction {
        Direction::Entry => "entry",
        Direction::Exit => "exit",
    };
    let extensions = [(plate_reader::CAMERA, camera.as_str()), (plate_reader::DIRECTION, direction)];
    let event = functions::frame_event(types::GATE_FRAME_RECEIVED, idempotency_key(&headers)?, bytes, &extensions);
    answer(&state, event, |_| None).await
}

/// Runs a device's event through this process and on to the sink. `in_process` picks the answer
/// when the chain was handled here (the lot's update, for a bay frame); otherwise the answer
/// lists the events caused, 200 when the chain ended here and 202 when it went on.
pub(crate) async fn answer(
    state: &AppState,
    event: CloudEvent,
    in_process: impl FnOnce(&Chain) -> Option<serde_json::Value>,
) -> Result<Response, ApiError> {
    let id = event.id.clone();
    let (chain, forwarded) = functions::start(state, event).await?;
    if let Some(value) = in_process(&chain) {
        return Ok(Json(value).into_response());
    }
    let status = if forwarded.is_some() { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok((status, Json(chain_answer(id, &chain, forwarded))).into_response())
}

/// The device's view of a chain: the read (without its crop), the gate's answer with the charge's
/// outcome once billing ran here, and the events by type and id.
fn chain_answer(id: String, chain: &Chain, forwarded: Option<String>) -> ChainAnswer {
    let (mut read, mut gate, mut charged) = (None, None, None);
    for event in &chain.trail {
        match event.ty.as_str() {
            types::PLATE_READ => read = event.data_json::<PlateReadEvent>().ok(),
            types::SESSION_OPENED | types::SESSION_CLOSED | types::GATE_DECIDED => {
                gate = event.data_json::<GateEvent>().ok().map(|e| e.answer);
            }
            types::CHARGE_SUCCEEDED => charged = Some("succeeded"),
            types::CHARGE_FAILED => charged = Some("failed"),
            _ => {}
        }
    }
    if let Some(read) = &mut read {
        read.crop_jpeg = None;
    }
    if let (Some(gate), Some(charged)) = (&mut gate, charged) {
        gate.charge = Some(charged.to_owned());
    }
    let events = chain.trail.iter().map(|e| ChainStep { ty: e.ty.clone(), id: e.id.clone() }).collect();
    ChainAnswer { id, read, gate, events, forwarded }
}

/// `POST /`: one CloudEvent from the broker or the previous function. 200 with the next event,
/// or 202 when the chain ends here (or went on to `K_SINK`).
pub async fn receive_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let event = CloudEvent::from_http(&headers, body).map_err(|e| ApiError::BadEvent(e.to_string()))?;
    match Function::consumer_of(&event.ty) {
        // A chain's last event (a session opened, a charge settled) reached the end of a line of
        // functions wired by `K_SINK`: nothing consumes it, so it is accepted and let go.
        None => {
            tracing::debug!(ty = %event.ty, id = %event.id, "event no function consumes: accepted");
            return Ok(StatusCode::ACCEPTED.into_response());
        }
        Some(consumer) if !state.functions().contains(consumer) => {
            return Err(ApiError::BadEvent(format!(
                "{} events are for the {consumer} function, which this process does not run",
                event.ty
            )));
        }
        Some(_) => {}
    }
    let mut chain = functions::run(&state, event).await?;
    Ok(match functions::forward(&state, &mut chain).await? {
        Some(reply) => reply.into_response(StatusCode::OK),
        None => StatusCode::ACCEPTED.into_response(),
    })
}

/// `POST /v1/dead-letters`: the broker's dead-letter sink. Knative delivers the event it gave up
/// on, with why in its `knativeerror*` attributes; it is kept for operators
/// (`GET /v1/dead-letters`) and never acted on.
pub async fn receive_dead_letter(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let event = CloudEvent::from_http(&headers, body).map_err(|e| ApiError::BadEvent(e.to_string()))?;
    tracing::error!(ty = %event.ty, id = %event.id, dest = event.extension("knativeerrordest"), "event dead-lettered");
    state.gate().store().record_dead_letter(&event.id, &event.to_structured(), chrono::Utc::now()).await?;
    Ok(StatusCode::ACCEPTED)
}

/// A device's `Idempotency-Key` becomes the frame event's id, so a device that retries an upload
/// (the answer was lost) starts the same chain, which the gate recognises.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key =
        value.to_str().ok().filter(|k| !k.is_empty() && k.len() <= 128 && k.bytes().all(|b| b.is_ascii_graphic()));
    key.map(|k| Some(k.to_owned()))
        .ok_or_else(|| ApiError::BadRequest("Idempotency-Key is 1 to 128 printable ASCII characters".into()))
}

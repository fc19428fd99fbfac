//! The gate cameras over HTTP: `GET /v1/cameras` (operators: every camera, pulled ones with their
//! URL redacted and their health, pushed ones from the lanes), `POST /v1/cameras` and
//! `DELETE /v1/cameras/{name}` (admins). Parse → [`crate::cameras`] → map.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::ApiJson;
use crate::AppState;
use crate::auth::{AuthedAdmin, AuthedOperator};
use crate::cameras::{self, CameraView, NewCamera};
use crate::error::ApiError;

#[utoipa::path(
    get,
    path = "/v1/cameras",
    operation_id = "cameras",
    tag = "operators",
    security(("operatorKey" = [])),
    summary = "The gate cameras",
    description = "The gate cameras: each pulled camera (`kind: pulled`) with its URL redacted and its \
        health where this process pulls it (connected, last frame, fps, frames read and dropped, \
        passages, errors, reconnects, last error), then each lane whose camera pushes frames or \
        reads (`kind: pushed`).",
    responses((status = 200, description = "OK", body = Vec<CameraView>))
)]
pub async fn list(State(state): State<AppState>, _: AuthedOperator) -> Result<Json<Vec<CameraView>>, ApiError> {
    Ok(Json(cameras::overview(&state).await?))
}

#[utoipa::path(
    post,
    path = "/v1/cameras",
    operation_id = "add_camera",
    tag = "operators",
    security(("adminKey" = [])),
    summary = "Add a pulled gate camera (`rtsp://` through ffmpeg, `http://` MJPEG or snapshot polled every `every_ms`, default 500)",
    description = "Add a pulled gate camera (`rtsp://` through ffmpeg, `http://` MJPEG or snapshot polled \
        every `every_ms`, default 500); every plate-reader replica pulls it within seconds, one \
        plate read per passing car. 422 `invalid_camera` says what is wrong; 409 `camera_exists` \
        for a name already taken.",
    request_body = NewCamera,
    responses((status = 201, description = "Created", body = CameraView))
)]
pub async fn add(
    State(state): State<AppState>,
    admin: AuthedAdmin,
    ApiJson(camera): ApiJson<NewCamera>,
) -> Result<(StatusCode, Json<CameraView>), ApiError> {
    let view = cameras::add(&state, &camera, &admin.id().0).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(
    delete,
    path = "/v1/cameras/{name}",
    operation_id = "remove_camera",
    tag = "operators",
    security(("adminKey" = [])),
    summary = "Remove a pulled gate camera",
    description = "Remove a pulled gate camera; its pulls stop within seconds. 404 for a name not pulled.",
    params(("name" = String, Path, description = "The pulled camera.")),
    responses((status = 204, description = "Done"))
)]
pub async fn remove(
    State(state): State<AppState>,
    admin: AuthedAdmin,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    cameras::remove(&state, &name, &admin.id().0).await?;
    Ok(StatusCode::NO_CONTENT)
}

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

pub async fn list(State(state): State<AppState>, _: AuthedOperator) -> Result<Json<Vec<CameraView>>, ApiError> {
    Ok(Json(cameras::overview(&state).await?))
}

pub async fn add(
    State(state): State<AppState>,
    admin: AuthedAdmin,
    ApiJson(camera): ApiJson<NewCamera>,
) -> Result<(StatusCode, Json<CameraView>), ApiError> {
    let view = cameras::add(&state, &camera, &admin.id().0).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

pub async fn remove(
    State(state): State<AppState>,
    admin: AuthedAdmin,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    cameras::remove(&state, &name, &admin.id().0).await?;
    Ok(StatusCode::NO_CONTENT)
}

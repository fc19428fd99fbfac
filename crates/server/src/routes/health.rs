//! Liveness (the process answers), readiness (the database answers; the model is loaded before
//! the port is bound, so it needs no check) and the metrics Prometheus scrapes.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;

use crate::AppState;
use crate::error::ApiError;

/// The health checks' answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Status {
    /// `ok` (alive), `ready`, or `unavailable` (the database does not answer).
    status: &'static str,
    /// Why it is unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "live",
    tag = "public",
    summary = "Liveness",
    description = "Liveness: the process answers.",
    responses((status = 200, description = "OK", body = Status))
)]
pub async fn live() -> Json<Status> {
    Json(Status { status: "ok", reason: None })
}

#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "ready",
    tag = "public",
    summary = "Readiness",
    description = "Readiness: the database answers.",
    responses((status = 200, description = "OK", body = Status), (status = 503, description = "Not ready", body = Status))
)]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Status>) {
    match state.store().ping().await {
        Ok(()) => (StatusCode::OK, Json(Status { status: "ready", reason: None })),
        Err(e) => {
            tracing::error!(error = %e, "not ready: database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, Json(Status { status: "unavailable", reason: Some(e.to_string()) }))
        }
    }
}

/// `GET /metrics`: OpenMetrics text (`crate::metrics`). Public, like the health checks: it names
/// functions, cameras and lots, never a plate or a key.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "public",
    summary = "Prometheus metrics of this process",
    description = "Prometheus metrics of this process: gate decisions, charges, plate reads, function \
        handling times, camera health, lot spaces, review queue, pending charges, dead letters.",
    responses((status = 200, description = "OK", body = String, content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"))
)]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let text = crate::metrics::scrape(&state).await?;
    Ok(([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text))
}

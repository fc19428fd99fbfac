//! Device authentication: `Authorization: Bearer <key>` → [`AuthedDevice`].

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use valet_store::Device;

use crate::AppState;
use crate::error::ApiError;

/// A request from a registered, unrevoked device. Taking it as an argument is what makes an
/// endpoint a device endpoint.
#[derive(Debug, Clone)]
pub struct AuthedDevice(pub Device);

impl FromRequestParts<AppState> for AuthedDevice {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(AUTHORIZATION).ok_or(ApiError::MissingKey)?;
        let key = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(ApiError::MissingKey)?;
        let device = state
            .store()
            .device_by_key(key)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .ok_or(ApiError::InvalidKey)?;
        tracing::Span::current().record("device", device.name.as_str());
        Ok(AuthedDevice(device))
    }
}

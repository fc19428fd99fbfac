//! Who is calling, from `Authorization: Bearer <secret>`: a device ([`AuthedDevice`]), an
//! operator ([`AuthedOperator`], admins included), an admin ([`AuthedAdmin`]) or a signed-up
//! driver ([`AuthedDriver`]). Taking one as a handler argument is what makes an endpoint theirs;
//! each refuses the others' secrets.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use valet_garage::{Driver, OperatorId};
use valet_store::{Device, Role};

use crate::AppState;
use crate::error::ApiError;

/// A request from a registered, unrevoked device (camera, gate).
#[derive(Debug, Clone)]
pub struct AuthedDevice(pub Device);

/// A request from an operator's key; handlers audit their actions under its name.
#[derive(Debug, Clone)]
pub struct AuthedOperator(pub Device);

impl AuthedOperator {
    pub fn id(&self) -> OperatorId {
        OperatorId(self.0.name.as_str().to_owned())
    }
}

/// A request from an admin's key: an operator who may change the garage's rules.
#[derive(Debug, Clone)]
pub struct AuthedAdmin(pub AuthedOperator);

impl AuthedAdmin {
    pub fn id(&self) -> OperatorId {
        self.0.id()
    }
}

/// A request from a driver holding the token they got at sign-up.
#[derive(Debug, Clone)]
pub struct AuthedDriver(pub Driver);

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts.headers.get(AUTHORIZATION).ok_or(ApiError::MissingKey)?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or(ApiError::MissingKey)
}

/// The live key's holder, if `allowed` accepts its role (`needs` names the role it takes).
async fn key_with_role(
    parts: &Parts,
    state: &AppState,
    needs: &'static str,
    allowed: fn(Role) -> bool,
) -> Result<Device, ApiError> {
    let device = state
        .store()
        .device_by_key(bearer(parts)?)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .ok_or(ApiError::InvalidKey)?;
    tracing::Span::current().record("device", device.name.as_str());
    if !allowed(device.role) {
        return Err(ApiError::WrongRole { needs });
    }
    Ok(device)
}

impl FromRequestParts<AppState> for AuthedDevice {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        key_with_role(parts, state, "device", |role| role == Role::Device).await.map(AuthedDevice)
    }
}

impl FromRequestParts<AppState> for AuthedOperator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        key_with_role(parts, state, "operator", Role::operates).await.map(AuthedOperator)
    }
}

impl FromRequestParts<AppState> for AuthedAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        key_with_role(parts, state, "admin", |role| role == Role::Admin).await.map(|d| AuthedAdmin(AuthedOperator(d)))
    }
}

impl FromRequestParts<AppState> for AuthedDriver {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        let driver = state.gate().store().driver_by_token(token).await?.ok_or(ApiError::InvalidKey)?;
        Ok(AuthedDriver(driver))
    }
}

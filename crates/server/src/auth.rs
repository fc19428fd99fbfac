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
use crate::throttle::Source;

/// What an endpoint takes in `Authorization: Bearer …`, named in its refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    DeviceKey,
    OperatorKey,
    AdminKey,
    DriverToken,
}

impl Credential {
    pub fn article(self) -> &'static str {
        match self {
            Credential::OperatorKey | Credential::AdminKey => "an",
            Credential::DeviceKey | Credential::DriverToken => "a",
        }
    }
}

impl std::fmt::Display for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::DeviceKey => "device key",
            Credential::OperatorKey => "operator key",
            Credential::AdminKey => "admin key",
            Credential::DriverToken => "driver token",
        })
    }
}

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

fn bearer(parts: &Parts, needs: Credential) -> Result<&str, ApiError> {
    let value = parts.headers.get(AUTHORIZATION).ok_or(ApiError::MissingKey(needs))?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or(ApiError::MissingKey(needs))
}

/// The live key's holder, if `allowed` accepts its role (`needs` names the key it takes).
async fn key_with_role(
    parts: &Parts,
    state: &AppState,
    needs: Credential,
    allowed: fn(Role) -> bool,
) -> Result<Device, ApiError> {
    let key = bearer(parts, needs)?;
    let guesser = Source::of(parts).with([]);
    state.throttle().check(&guesser).map_err(ApiError::TooManyAttempts)?;
    // Through `ApiError::from`, so an unreachable database is a 503, not a 500.
    let device = state.store().device_by_key(key).await?;
    let Some(device) = device else {
        state.throttle().failed(&guesser);
        return Err(ApiError::InvalidKey(needs));
    };
    tracing::Span::current().record("device", device.name.as_str());
    if !allowed(device.role) {
        return Err(ApiError::WrongRole(needs));
    }
    Ok(device)
}

impl FromRequestParts<AppState> for AuthedDevice {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        key_with_role(parts, state, Credential::DeviceKey, |role| role == Role::Device).await.map(AuthedDevice)
    }
}

impl FromRequestParts<AppState> for AuthedOperator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        key_with_role(parts, state, Credential::OperatorKey, Role::operates).await.map(AuthedOperator)
    }
}

impl FromRequestParts<AppState> for AuthedAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        key_with_role(parts, state, Credential::AdminKey, |role| role == Role::Admin)
            .await
            .map(|d| AuthedAdmin(AuthedOperator(d)))
    }
}

impl FromRequestParts<AppState> for AuthedDriver {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(parts, Credential::DriverToken)?;
        let guesser = Source::of(parts).with([]);
        state.throttle().check(&guesser).map_err(ApiError::TooManyAttempts)?;
        let Some(driver) = state.gate().store().driver_by_token(token).await? else {
            state.throttle().failed(&guesser);
            return Err(ApiError::InvalidKey(Credential::DriverToken));
        };
        Ok(AuthedDriver(driver))
    }
}

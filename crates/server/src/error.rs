//! [`ApiError`]: every way a request can fail, mapped once to a status and a JSON [`ErrorAnswer`].

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use valet_imaging::DecodeError;

use crate::api::ErrorAnswer;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("this endpoint needs a device key: send `Authorization: Bearer <key>`")]
    MissingKey,
    #[error("the device key is not valid (unknown or revoked)")]
    InvalidKey,
    #[error("the body is larger than the {limit}-byte limit")]
    BodyTooLarge { limit: u64 },
    #[error("the body did not arrive within {0} s")]
    BodyTimeout(u64),
    #[error("the request body was cut off: {0}")]
    BodyBroken(String),
    #[error("no image in the request: {0}")]
    NoImage(String),
    #[error("{0}")]
    Decode(#[from] DecodeError),
    #[error("no route for {method} {path}")]
    NotFound { method: String, path: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingKey | ApiError::InvalidKey => StatusCode::UNAUTHORIZED,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::BodyBroken(_) | ApiError::NoImage(_) => StatusCode::BAD_REQUEST,
            ApiError::Decode(e) if e.is_too_large() => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Decode(DecodeError::UnsupportedFormat { .. } | DecodeError::Empty) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ApiError::Decode(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable code for clients and for the `outcome` column of the store.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MissingKey => "missing_api_key",
            ApiError::InvalidKey => "invalid_api_key",
            ApiError::BodyTooLarge { .. } => "body_too_large",
            ApiError::BodyTimeout(_) => "body_timeout",
            ApiError::BodyBroken(_) => "body_broken",
            ApiError::NoImage(_) => "no_image",
            ApiError::Decode(e) if e.is_too_large() => "image_too_large",
            ApiError::Decode(DecodeError::UnsupportedFormat { .. } | DecodeError::Empty) => "unsupported_image",
            ApiError::Decode(_) => "undecodable_image",
            ApiError::NotFound { .. } => "not_found",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // Logged here, once: handlers return errors and never log them themselves.
        if status.is_server_error() {
            tracing::error!(code = self.code(), error = %self, "request failed");
        } else {
            tracing::warn!(code = self.code(), error = %self, "request refused");
        }
        let body = ErrorAnswer { error: self.code().to_owned(), message: self.to_string() };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

//! [`ApiError`]: every way a request can fail, mapped once to a status and a JSON [`ErrorAnswer`].

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use valet_gate::{DeskError, GateError};
use valet_imaging::DecodeError;
use valet_store::StoreError;

use crate::api::ErrorAnswer;
use crate::auth::Credential;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("this endpoint needs {article} {0}: send `Authorization: Bearer <{0}>`", article = .0.article())]
    MissingKey(Credential),
    #[error("the {0} is not valid (unknown or revoked)")]
    InvalidKey(Credential),
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
    #[error("this endpoint needs {article} {0}; the key sent is another caller's", article = .0.article())]
    WrongRole(Credential),
    #[error("no route for {method} {path}")]
    NotFound { method: String, path: String },
    #[error("no gate lane {camera:?}: the known lanes are {}", if known.is_empty() { "none yet (a lane is known once its camera has read a plate)".to_owned() } else { known.join(", ") })]
    UnknownLane { camera: String, known: Vec<String> },
    /// A barrier command that did not reach the barrier channel: the barrier did not move.
    #[error("the barrier was not lifted: {0}")]
    BarrierNotReached(String),
    #[error("{path} does not take {method}")]
    MethodNotAllowed { method: String, path: String },
    #[error("lot {lot} has no camera {camera:?}: its cameras are {}", known.join(", "))]
    UnknownCamera { lot: String, camera: String, known: Vec<String> },
    /// Labels are cut from the camera's latest frame: there must be one.
    #[error("camera {camera} of lot {lot} has sent no frame since Valet started: label once it has posted one")]
    NoFrameYet { lot: String, camera: String },
    /// A label the layout or the frame cannot take (a bay not in the layout, a frame of another size).
    #[error("{0}")]
    InvalidLabel(String),
    #[error("{0}")]
    LabelExists(String),
    #[error("{0}")]
    UnknownAdapter(String),
    /// A gate camera's configuration `valet-cameras` refuses (name, URL scheme, region, interval).
    #[error("{0}")]
    InvalidCamera(String),
    #[error("{0}")]
    CameraExists(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Missing(String),
    #[error(transparent)]
    Desk(#[from] DeskError),
    /// A bad CloudEvent, or one no function in this process consumes: retrying cannot help, so
    /// the broker dead-letters it.
    #[error("{0}")]
    BadEvent(String),
    /// Try again shortly: another worker holds the event, or the payment provider did not answer.
    #[error("{0}")]
    Unavailable(String),
    /// The next function (the `K_SINK`) did not take the event; the caller's retry resends it.
    #[error("the next function did not take the event: {0}")]
    SinkFailed(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// Every worker is busy and the line is full: send it again after the seconds given.
    #[error("overloaded: {0}; send it again in {1} s")]
    Overloaded(&'static str, u64),
    /// Too many failed attempts at a credential from this source or at this name.
    #[error("too many failed attempts; try again in {} s", .0.as_secs())]
    TooManyAttempts(std::time::Duration),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingKey(_) | ApiError::InvalidKey(_) => StatusCode::UNAUTHORIZED,
            ApiError::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Overloaded(..) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::WrongRole(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Missing(_) => StatusCode::NOT_FOUND,
            ApiError::Desk(e) => desk_status(e),
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::BodyBroken(_) | ApiError::NoImage(_) => StatusCode::BAD_REQUEST,
            ApiError::Decode(e) if e.is_too_large() => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Decode(DecodeError::UnsupportedFormat { .. } | DecodeError::Empty) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ApiError::Decode(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnknownLane { .. } => StatusCode::NOT_FOUND,
            ApiError::UnknownCamera { .. } | ApiError::UnknownAdapter(_) => StatusCode::NOT_FOUND,
            ApiError::NoFrameYet { .. } | ApiError::LabelExists(_) => StatusCode::CONFLICT,
            ApiError::InvalidLabel(_) | ApiError::InvalidCamera(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::CameraExists(_) => StatusCode::CONFLICT,
            ApiError::BarrierNotReached(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BadEvent(_) => StatusCode::BAD_REQUEST,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::SinkFailed(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable code for clients and for the `outcome` column of the store.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MissingKey(_) => "missing_api_key",
            ApiError::TooManyAttempts(_) => "too_many_attempts",
            ApiError::Overloaded(..) => "overloaded",
            ApiError::WrongRole(_) => "wrong_role",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Missing(_) => "not_found",
            ApiError::Desk(e) => desk_code(e),
            ApiError::InvalidKey(_) => "invalid_api_key",
            ApiError::BodyTooLarge { .. } => "body_too_large",
            ApiError::BodyTimeout(_) => "body_timeout",
            ApiError::BodyBroken(_) => "body_broken",
            ApiError::NoImage(_) => "no_image",
            ApiError::Decode(e) if e.is_too_large() => "image_too_large",
            ApiError::Decode(DecodeError::UnsupportedFormat { .. } | DecodeError::Empty) => "unsupported_image",
            ApiError::Decode(_) => "undecodable_image",
            ApiError::NotFound { .. } => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::UnknownLane { .. } => "unknown_lane",
            ApiError::UnknownCamera { .. } => "unknown_camera",
            ApiError::UnknownAdapter(_) => "unknown_adapter",
            ApiError::NoFrameYet { .. } => "no_frame_yet",
            ApiError::LabelExists(_) => "label_exists",
            ApiError::InvalidLabel(_) => "invalid_label",
            ApiError::InvalidCamera(_) => "invalid_camera",
            ApiError::CameraExists(_) => "camera_exists",
            ApiError::BarrierNotReached(_) => "barrier_not_reached",
            ApiError::BadEvent(_) => "bad_event",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::SinkFailed(_) => "sink_failed",
            ApiError::Internal(_) => "internal",
        }
    }
}

fn desk_status(error: &DeskError) -> StatusCode {
    use valet_garage::PlateChangeError as P;
    match error {
        DeskError::Gate(GateError::Store(e)) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
        DeskError::Plates(P::NotListed(_)) | DeskError::UnknownLink | DeskError::UnknownReviewItem(_) => {
            StatusCode::NOT_FOUND
        }
        DeskError::UnknownSession(_) => StatusCode::NOT_FOUND,
        DeskError::SignInRefused => StatusCode::UNAUTHORIZED,
        DeskError::PlateUnavailable => StatusCode::CONFLICT,
        DeskError::Plates(_)
        | DeskError::Registered(_)
        | DeskError::SessionNotOpen(_)
        | DeskError::NotPayable(..)
        | DeskError::NothingToRefund(_)
        | DeskError::AlreadyDecided(_)
        | DeskError::NotDecidable(..)
        | DeskError::NotRetryable(..) => StatusCode::CONFLICT,
        DeskError::Gate(GateError::Store(StoreError::PlateTaken(_))) => StatusCode::CONFLICT,
        DeskError::Tariff(_)
        | DeskError::Permit(_)
        | DeskError::NoSessionToDecide(_)
        | DeskError::NotAMissedExit(_)
        | DeskError::OverRefund { .. }
        | DeskError::RefundKeyReused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        DeskError::RefundRefused(e) | DeskError::CardNotSaved(e) if e.is_final() => StatusCode::PAYMENT_REQUIRED,
        DeskError::CardNotSaved(_) => StatusCode::SERVICE_UNAVAILABLE,
        DeskError::RefundRefused(_) => StatusCode::SERVICE_UNAVAILABLE,
        DeskError::Gate(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn desk_code(error: &DeskError) -> &'static str {
    use valet_garage::PlateChangeError as P;
    match error {
        DeskError::Gate(GateError::Store(e)) if e.is_unavailable() => "database_unavailable",
        DeskError::Plates(P::NotListed(_)) => "plate_not_on_account",
        DeskError::Plates(P::AlreadyListed(_)) => "plate_already_on_account",
        DeskError::Plates(P::ActiveSession(_)) => "plate_in_active_session",
        DeskError::Gate(GateError::Store(StoreError::PlateTaken(_))) | DeskError::PlateUnavailable => {
            "plate_unavailable"
        }
        DeskError::SignInRefused => "sign_in_refused",
        DeskError::Registered(_) => "session_already_registered",
        DeskError::UnknownLink => "unknown_link",
        DeskError::SessionNotOpen(_) => "session_not_open",
        DeskError::NotPayable(..) => "not_payable",
        DeskError::NothingToRefund(_) => "nothing_to_refund",
        DeskError::RefundRefused(_) => "refund_refused",
        DeskError::OverRefund { .. } => "over_refund",
        DeskError::RefundKeyReused { .. } => "idempotency_key_reused",
        DeskError::CardNotSaved(_) => "card_not_saved",
        DeskError::UnknownReviewItem(_) | DeskError::UnknownSession(_) => "not_found",
        DeskError::AlreadyDecided(_) => "already_decided",
        DeskError::NoSessionToDecide(_) => "no_session_to_decide",
        DeskError::NotAMissedExit(_) => "not_a_missed_exit",
        DeskError::NotRetryable(..) => "not_retryable",
        DeskError::NotDecidable(..) => "not_decidable",
        DeskError::Tariff(_) => "invalid_tariff",
        DeskError::Permit(_) => "invalid_permit",
        DeskError::Gate(_) => "internal",
    }
}

impl From<GateError> for ApiError {
    fn from(error: GateError) -> ApiError {
        ApiError::Desk(DeskError::Gate(error))
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        ApiError::Desk(DeskError::from(error))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // Logged here, once: handlers return errors and never log them themselves.
        if let ApiError::Overloaded(..) = self {
            // Shedding is what overload looks like: a line per refusal would flood the log (and
            // cost the CPU the overloaded server lacks) thousands of times a second.
            tracing::debug!(error = %self, "request shed");
        } else if status.is_server_error() {
            tracing::error!(code = self.code(), error = %self, "request failed");
        } else {
            tracing::warn!(code = self.code(), error = %self, "request refused");
        }
        let body = ErrorAnswer { error: self.code().to_owned(), message: self.to_string() };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        match &self {
            ApiError::Overloaded(_, seconds) => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
            }
            _ if status == StatusCode::SERVICE_UNAVAILABLE => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        if let ApiError::TooManyAttempts(wait) = &self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
        }
        response
    }
}

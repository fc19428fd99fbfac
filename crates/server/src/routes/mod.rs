//! The router: which path goes to which handler, and the layers around them.

mod calibration;
mod cameras;
pub(crate) mod classify;
mod drivers;
mod health;
mod ingest;
pub(crate) mod lots;
pub(crate) mod openapi;
mod operators;
pub(crate) mod reads;
mod webhooks;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::{Method, Uri};
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tower_http::trace::TraceLayer;

use crate::AppState;
use crate::error::ApiError;
use crate::functions::Function;

/// Stripe's events are a few kilobytes; a bigger body is not one.
const WEBHOOK_BODY_LIMIT: usize = 256 * 1024;

pub fn router(state: AppState) -> Router {
    // The upload handlers enforce the configured limit themselves (early 413 on Content-Length,
    // then while streaming); this only lifts axum's 2 MB default for the extractors.
    let body_limit = DefaultBodyLimit::max(usize::try_from(state.inner.max_body_bytes).unwrap_or(usize::MAX));
    let functions = state.functions().clone();
    let mut app = Router::new()
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/openapi.json", get(openapi::serve))
        .route("/metrics", get(health::metrics));
    if functions.contains(Function::Ingest) {
        app = app
            .route("/v1/gates/{camera}/frames", post(ingest::post_gate_frame).layer(body_limit))
            .route("/v1/lots/{id}/frames", post(lots::post_frame).layer(body_limit));
    }
    if functions.contains(Function::Gate) {
        // Cameras that read plates themselves report the read straight to the gate.
        app = app.route("/v1/plate-reads", post(reads::post));
    }
    if functions.contains(Function::Occupancy) || functions.contains(Function::Query) {
        // Guidance: signs and apps, no key. The lots' live state is the occupancy function's,
        // which the query function follows through the lot history when it runs apart.
        app = app
            .route("/v1/lots/{id}/availability", get(lots::availability))
            .route("/v1/lots/{id}/events", get(lots::events))
            .route("/v1/lots/{id}/calibration", get(calibration::overview));
    }
    if functions.contains(Function::Occupancy) {
        // Labels are cut from a camera's latest frame, which only the process reading the frames
        // holds; fits run there too. Operators only.
        app = app
            .route("/v1/lots/{id}/labels", post(calibration::label))
            .route("/v1/lots/{id}/cameras/{camera}/adapter", post(calibration::choose_adapter));
    }
    if functions.contains(Function::Query) {
        app = app
            .route("/v1/classify", post(classify::classify).layer(body_limit))
            // Drivers.
            .route("/v1/drivers", post(drivers::sign_up))
            .route("/v1/drivers/sign-in", post(drivers::sign_in))
            .route("/v1/card-setups", post(drivers::begin_card_setup))
            .route("/v1/me", get(drivers::me))
            .route("/v1/me/plates", post(drivers::add_plate))
            .route("/v1/me/plates/{plate}", delete(drivers::remove_plate))
            .route("/v1/me/recovery-code", post(drivers::new_recovery_code))
            .route("/v1/me/sign-out", post(drivers::sign_out))
            .route("/v1/me/email", put(drivers::set_email))
            .route("/v1/me/sessions", get(drivers::sessions))
            .route("/v1/me/sessions/{id}/payments", post(drivers::pay_now))
            .route("/v1/me/receipts", get(drivers::receipts))
            .route("/v1/pay/{link}", get(drivers::quote).post(drivers::pay))
            // Stripe's, on this public function since billing is cluster-local. The signature is
            // the credential (404 where no secret is configured).
            .route("/v1/webhooks/stripe", post(webhooks::stripe).layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT)))
            // Operators.
            .route("/v1/sessions", get(operators::sessions))
            .route("/v1/sessions/{id}", get(operators::session))
            .route("/v1/sessions/{id}/refunds", post(operators::refund))
            .route("/v1/sessions/{id}/charges", post(operators::retry_charge))
            .route("/v1/review-items", get(operators::review_items))
            .route("/v1/review-items/{id}/decision", post(operators::decide_review))
            .route("/v1/review-items/{id}/plate", post(operators::correct_plate))
            .route("/v1/tariff", get(operators::tariff).put(operators::change_tariff))
            .route("/v1/lists", get(operators::lists).post(operators::change_list))
            .route("/v1/permits", get(operators::permits).post(operators::save_permit))
            .route("/v1/lanes", get(operators::lanes))
            .route("/v1/cameras", get(cameras::list).post(cameras::add))
            .route("/v1/cameras/{name}", delete(cameras::remove))
            .route("/v1/barriers/{camera}/open", post(operators::open_barrier))
            .route("/v1/audit", get(operators::audit))
            .route("/v1/dead-letters", get(operators::dead_letters))
            .merge(crate::web::routes());
    }
    if !functions.is_all() {
        // The functions run apart: events arrive from the broker or the previous function. In
        // one process nothing ever arrives this way, so the embedded garage does not listen.
        app = app.route("/", post(ingest::receive_event).layer(body_limit));
        if functions.contains(Function::Query) {
            app = app.route("/v1/dead-letters", post(ingest::receive_dead_letter).layer(body_limit));
        }
    }
    app.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                let peer = req
                    .extensions()
                    .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                    .map(|c| c.0.to_string())
                    .unwrap_or_default();
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), %peer, device = tracing::field::Empty)
            }),
        )
        .with_state(state)
}

/// Scanners probe for admin pages (`GET /config/getuser`); they get a plain 404, logged with the
/// peer by the trace layer.
async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound { method: method.to_string(), path: uri.path().chars().take(200).collect() }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed { method: method.to_string(), path: uri.path().chars().take(200).collect() }
}

/// A query string whose rejection is an [`ApiError`], like [`ApiJson`]'s.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::BadRequest(format!("the query string: {}", query_problem(&rejection)))),
        }
    }
}

/// serde's words for the field at fault, without axum's preamble.
fn query_problem(rejection: &axum::extract::rejection::QueryRejection) -> String {
    let text = rejection.body_text();
    text.strip_prefix("Failed to deserialize query string: ").unwrap_or(&text).to_owned()
}

/// A JSON body whose rejection is an [`ApiError`] (a JSON answer naming the problem), not
/// axum's plain-text one.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}

/// `?limit=` on list endpoints: 50 by default, at most 500.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    limit: Option<u32>,
}

impl Page {
    fn limit(&self) -> u32 {
        self.limit.unwrap_or(50).clamp(1, 500)
    }
}

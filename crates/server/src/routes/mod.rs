//! The router: which path goes to which handler, and the layers around them.

mod classify;
mod health;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::routing::{get, post};
use tower_http::trace::TraceLayer;

use crate::AppState;
use crate::error::ApiError;

pub fn router(state: AppState) -> Router {
    // The classify handler enforces the configured limit itself (early 413 on Content-Length, then
    // while streaming); this only lifts axum's 2 MB default for the multipart extractor.
    let body_limit = DefaultBodyLimit::max(usize::try_from(state.inner.max_body_bytes).unwrap_or(usize::MAX));
    Router::new()
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/v1/classify", post(classify::classify).layer(body_limit))
        .fallback(not_found)
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

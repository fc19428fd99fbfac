//! `spawn_app`: a router over a fresh in-memory database with one registered device.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use http_body_util::BodyExt;
use tower::ServiceExt;
use valet_occupancy::OccupancyClassifier;
use valet_server::{AppState, Settings};
use valet_store::{DeviceName, Store};

#[allow(missing_debug_implementations)]
pub struct TestApp {
    pub router: Router,
    pub store: Store,
    pub key: String,
    pub settings: Settings,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Settings::default()).await
}

pub async fn spawn_app_with(settings: Settings) -> TestApp {
    let store = Store::open_in_memory().await.unwrap();
    let (_, key) = store.add_device(&DeviceName::parse("gate-1").unwrap(), chrono::Utc::now()).await.unwrap();
    let state = AppState::new(store.clone(), OccupancyClassifier::bundled().unwrap(), &settings);
    TestApp { router: valet_server::router(state), store, key: key.expose().to_owned(), settings }
}

impl TestApp {
    pub async fn call(&self, request: Request<Body>) -> (u16, serde_json::Value) {
        let response: Response<Body> = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, json)
    }

    pub fn classify(&self, body: impl Into<Body>) -> Request<Body> {
        Request::post("/v1/classify")
            .header("authorization", format!("Bearer {}", self.key))
            .header("content-type", "image/jpeg")
            .body(body.into())
            .unwrap()
    }
}

/// A small real-looking space photo.
pub fn photo() -> Vec<u8> {
    valet_imaging::synthetic::photo_jpeg(320, 240, None, 1)
}

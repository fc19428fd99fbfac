//! `spawn_app`: a router over a fresh in-memory database with one registered device, one
//! operator, and the garage on the embedded ledger with the example tariff.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use http_body_util::BodyExt;
use std::sync::Arc;
use tower::ServiceExt;
use valet_occupancy::OccupancyClassifier;

use valet_server::settings::Secret;
use valet_server::{AppState, Settings};
use valet_store::{DeviceName, Role, Store};

#[allow(missing_debug_implementations)]
pub struct TestApp {
    pub router: Router,
    pub store: Store,
    pub key: String,
    pub operator: String,
    pub settings: Settings,
    pub state: AppState,
}

/// One synthetic lot, `grid`: ten spaces on one 640×480 camera.
pub fn lots() -> valet_server::lots::Lots {
    let mut lots = valet_server::lots::Lots::default();
    let mut layout = valet_lot::synthetic::grid_layout(10, 640, 480);
    layout.id = valet_lot::LotId::new("grid");
    lots.insert(layout, Arc::new(OccupancyClassifier::bundled().unwrap()));
    lots
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Settings::default()).await
}

pub async fn spawn_app_with(settings: Settings) -> TestApp {
    spawn_functions(settings, valet_server::Wiring::default()).await
}

/// An app running only `wiring`'s functions, as one of several processes would.
pub async fn spawn_functions(settings: Settings, wiring: valet_server::Wiring) -> TestApp {
    spawn_with_lots(settings, wiring, lots()).await
}

/// An app watching `lots` instead of the synthetic grid.
pub async fn spawn_with_lots(
    settings: Settings,
    wiring: valet_server::Wiring,
    lots: valet_server::lots::Lots,
) -> TestApp {
    spawn_on(Store::open_in_memory().await.unwrap(), "", settings, wiring, lots).await
}

/// An app on `store`, which other apps may share as replicas do one database; its keys' names end
/// in `replica` (`gate-1{replica}`, `alice{replica}`) so each replica adds its own.
pub async fn spawn_on(
    store: Store,
    replica: &str,
    mut settings: Settings,
    wiring: valet_server::Wiring,
    lots: valet_server::lots::Lots,
) -> TestApp {
    let now = chrono::Utc::now();
    let (_, key) = store.add_device(&DeviceName::parse(&format!("gate-1{replica}")).unwrap(), now).await.unwrap();
    // Alice is an admin: the tests change tariffs and lists with her key (an operator's is refused).
    let alice = DeviceName::parse(&format!("alice{replica}")).unwrap();
    let (_, operator) = store.add_key(&alice, Role::Admin, now).await.unwrap();
    settings.plate_key.get_or_insert_with(|| Secret::new("5ec7e7".repeat(8)));
    let gate = Arc::new(valet_server::garage::open(&settings, &store).await.unwrap());
    let state = AppState::new(store.clone(), gate, lots, Arc::new(OccupancyClassifier::bundled().unwrap()), &settings)
        .wired(wiring);
    TestApp {
        router: valet_server::router(state.clone()),
        state,
        store,
        key: key.expose().to_owned(),
        operator: operator.expose().to_owned(),
        settings,
    }
}

impl TestApp {
    pub async fn call(&self, request: Request<Body>) -> (u16, serde_json::Value) {
        let response: Response<Body> = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, json)
    }

    /// A JSON request with `bearer` as its credential (none when empty).
    pub fn json(&self, method: &str, path: &str, bearer: &str, body: serde_json::Value) -> Request<Body> {
        let mut request = Request::builder().method(method).uri(path).header("content-type", "application/json");
        if !bearer.is_empty() {
            request = request.header("authorization", format!("Bearer {bearer}"));
        }
        let body = if body.is_null() { Body::empty() } else { Body::from(body.to_string()) };
        request.body(body).unwrap()
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

//! `valet serve`: the HTTP API ([`router`]), its layered [`Settings`], and a connection loop
//! ([`serve`]) that survives junk on the port and shuts down gracefully.
//!
//! Request flow: connection loop (timeouts, peer address) → tower layers (tracing, body limit) →
//! route → [`auth::AuthedDevice`] → handler (parse → call → map) → [`error::ApiError`] on failure.
//!
//! Architecture invariants: CPU-heavy work (decode, inference) never runs on the async executor, and
//! at most `decode_concurrency` images are decoded at once, so a burst of huge uploads cannot exhaust
//! memory; every authenticated classification request leaves a row in the store, answered or not.

pub mod api;
mod auth;
mod error;
pub mod garage;
pub mod lots;
mod routes;
mod serve;
pub mod settings;
pub mod signs;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use valet_imaging::DecodeLimits;
use valet_occupancy::OccupancyClassifier;
use valet_store::Store;

pub use garage::Gate;
pub use routes::openapi::document as openapi_document;
pub use routes::router;
pub use serve::{serve, shutdown_signal};
pub use settings::Settings;

/// Everything a request handler may touch; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    gate: Arc<Gate>,
    lots: lots::Lots,
    classifier: Arc<OccupancyClassifier>,
    limits: DecodeLimits,
    max_body_bytes: u64,
    body_timeout: Duration,
    decode_permits: Semaphore,
}

impl AppState {
    pub fn new(
        store: Store,
        gate: Arc<Gate>,
        lots: lots::Lots,
        classifier: Arc<OccupancyClassifier>,
        settings: &Settings,
    ) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                store,
                gate,
                lots,
                classifier,
                limits: settings.decode_limits(),
                max_body_bytes: settings.max_body_bytes,
                body_timeout: Duration::from_secs(settings.body_timeout_secs),
                decode_permits: Semaphore::new(settings.decode_concurrency.max(1)),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn gate(&self) -> &Gate {
        &self.inner.gate
    }

    pub fn lots(&self) -> &lots::Lots {
        &self.inner.lots
    }
}

/// Opens the store, loads the bundled model, binds the port and serves until `shutdown` resolves.
/// `on_ready` receives the bound address (port 0 picks a free one).
pub async fn run(
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    use anyhow::Context;
    let store = Store::open(&settings.data_dir)
        .await
        .with_context(|| format!("opening the database in {}", settings.data_dir.display()))?;
    let gate = Arc::new(garage::open(&settings, &store).await?);
    // One model in memory, shared by single-space classification and every lot's frame reader.
    let classifier = Arc::new(OccupancyClassifier::bundled().context("loading the bundled occupancy model")?);
    let lots_dir = settings.lots_dir.clone().unwrap_or_else(|| settings.data_dir.join("lots"));
    let lots = lots::Lots::load(&lots_dir, &classifier)?;
    if let Some(broker) = &settings.mqtt_broker {
        signs::spawn(broker, &settings.mqtt_prefix, &lots)?;
    }
    let listener =
        tokio::net::TcpListener::bind(settings.listen).await.with_context(|| format!("binding {}", settings.listen))?;
    let addr = listener.local_addr()?;
    garage::spawn_housekeeping(Arc::clone(&gate), settings.retention_days);
    let state = AppState::new(store, gate, lots, classifier, &settings);
    on_ready(addr);
    serve(listener, router(state), &settings, shutdown).await?;
    Ok(())
}

//! `valet serve`: the HTTP API ([`router`]), its layered [`Settings`], and a connection loop
//! ([`serve`]) that survives junk on the port and shuts down gracefully.
//!
//! Request flow: connection loop (timeouts, peer address) → tower layers (tracing, body limit) →
//! route → [`auth::AuthedDevice`] → handler (parse → call → map) → [`error::ApiError`] on failure.
//!
//! Architecture invariants: CPU-heavy work (decode, inference) never runs on the async executor, and
//! at most `decode_concurrency` images are decoded at once, so a burst of huge uploads cannot exhaust
//! memory; every authenticated classification request leaves a row in the store, answered or not.

mod admission;
pub mod api;
mod auth;
mod barriers;
pub mod calibration;
pub mod cameras;
pub mod demo;
mod error;
pub mod functions;
pub mod garage;
pub mod layouts;
pub mod lots;
pub mod metrics;
pub mod mqtt;
mod routes;
mod serve;
pub mod settings;
pub mod signs;
mod throttle;
mod web;

/// The web pages' Content-Security-Policy, for tests and reverse proxies that copy it.
pub use web::CONTENT_SECURITY_POLICY;

use std::sync::Arc;
use std::time::Duration;

use valet_imaging::DecodeLimits;
use valet_occupancy::OccupancyClassifier;
use valet_store::Store;

/// Parsers of untrusted input that are not public API, reachable for `fuzz/` (feature `fuzzing`).
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    use bytes::Bytes;

    /// The frame an MQTT message on `topic` carries, under the topic prefix `prefix`, if any.
    pub fn mqtt_frame(prefix: &str, topic: &str, payload: Vec<u8>) -> Option<crate::mqtt::Frame> {
        let publish = rumqttc::Publish::new(topic, rumqttc::QoS::AtLeastOnce, payload);
        crate::mqtt::parse(prefix, &publish)
    }

    /// The image part of a `multipart/form-data` upload to `POST /v1/classify`, as the handler
    /// reads it, or the answer's message.
    pub async fn classify_upload(request: axum::extract::Request, limit: u64) -> Result<Bytes, String> {
        crate::routes::classify::read_multipart(request, &(), limit).await.map_err(|e| e.to_string())
    }
}

pub use functions::{Function, FunctionSet, Sink};
pub use garage::Gate;
pub use mqtt::Mqtt;
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
    /// The occupancy fits queued here and the adapters loaded.
    calibration: calibration::Calibration,
    /// The gate cameras this process pulls (where it runs the plate reader).
    pulls: cameras::Pulls,
    /// What `GET /metrics` reports of what happened here.
    metrics: metrics::Metrics,
    limits: DecodeLimits,
    max_body_bytes: u64,
    body_timeout: Duration,
    /// Turns at decoding and the models, and at the gate's decisions on reported plate reads,
    /// and the bounded lines for them.
    admission: admission::Admission,
    wiring: Wiring,
    /// Stripe's publishable key when the garage charges through Stripe: the portal then shows
    /// Stripe's own card fields.
    card_fields: Option<valet_billing::StripePublishableKey>,
    /// Failed credential attempts, per source and per name.
    throttle: throttle::Throttle,
    /// The signing secret of Stripe's webhook endpoint, when one is configured.
    stripe_webhook: Option<valet_billing::StripeWebhookSecret>,
}

/// Which functions this process runs and how it reaches the others.
#[derive(Debug, Clone, Default)]
pub struct Wiring {
    pub functions: FunctionSet,
    /// Loaded when the process runs the plate reader.
    pub plate_reader: Option<Arc<valet_plates::PlateReader>>,
    pub sink: Option<Sink>,
    pub mqtt: Option<Mqtt>,
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
                calibration: calibration::Calibration::default(),
                pulls: cameras::Pulls::default(),
                metrics: metrics::Metrics::default(),
                limits: settings.decode_limits(),
                max_body_bytes: settings.max_body_bytes,
                body_timeout: Duration::from_secs(settings.body_timeout_secs),
                admission: admission::Admission::new(settings.decode_concurrency, settings.image_queue),
                wiring: Wiring::default(),
                card_fields: match settings.payment_gateway {
                    settings::GatewayKind::Stripe => settings
                        .stripe_publishable_key
                        .as_deref()
                        .and_then(|key| valet_billing::StripePublishableKey::parse(key).ok()),
                    settings::GatewayKind::Ledger => None,
                },
                throttle: throttle::Throttle::default(),
                // Checked by `garage::open`, which refuses to start on a malformed one.
                stripe_webhook: settings
                    .stripe_webhook_secret
                    .as_ref()
                    .and_then(|secret| valet_billing::StripeWebhookSecret::parse(secret.expose()).ok()),
            }),
        }
    }

    /// The same state with `wiring`; call before the state is shared (cloned).
    pub fn wired(mut self, wiring: Wiring) -> AppState {
        let inner = Arc::get_mut(&mut self.inner).expect("the state is wired before it is shared");
        inner.wiring = wiring;
        self
    }

    pub fn functions(&self) -> &FunctionSet {
        &self.inner.wiring.functions
    }

    pub fn plate_reader(&self) -> Option<Arc<valet_plates::PlateReader>> {
        self.inner.wiring.plate_reader.clone()
    }

    pub fn sink(&self) -> Option<&Sink> {
        self.inner.wiring.sink.as_ref()
    }

    pub fn mqtt(&self) -> Option<&Mqtt> {
        self.inner.wiring.mqtt.as_ref()
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn gate(&self) -> &Gate {
        &self.inner.gate
    }

    /// The publishable key for Stripe's card fields, when the garage charges through Stripe.
    pub fn stripe_card_fields(&self) -> Option<&valet_billing::StripePublishableKey> {
        self.inner.card_fields.as_ref()
    }

    /// Failed credential attempts, counted to answer guessing with 429.
    pub fn throttle(&self) -> &throttle::Throttle {
        &self.inner.throttle
    }

    /// The secret Stripe's webhook deliveries are signed with, when one is configured.
    pub fn stripe_webhook_secret(&self) -> Option<&valet_billing::StripeWebhookSecret> {
        self.inner.stripe_webhook.as_ref()
    }

    /// A turn at the image workers or the gate's deciders for `work`, or 503 when its line is full.
    pub async fn admit(&self, work: admission::Work) -> Result<tokio::sync::OwnedSemaphorePermit, error::ApiError> {
        self.inner.admission.admit(work).await
    }

    pub fn lots(&self) -> &lots::Lots {
        &self.inner.lots
    }

    /// The gate cameras this process pulls, with their health.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    pub fn pulls(&self) -> &cameras::Pulls {
        &self.inner.pulls
    }
}

/// Opens the store, loads the models this process's functions need, binds the port and serves
/// until `shutdown` resolves. `on_ready` receives the bound address (port 0 picks a free one).
pub async fn run(
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    use anyhow::Context;
    let functions = settings.functions.clone();
    refuse_stranded_events(&settings)?;
    // The port first: a port already taken fails here, before the data directory, the database
    // or a plate key is written.
    let listener =
        tokio::net::TcpListener::bind(settings.listen).await.with_context(|| format!("binding {}", settings.listen))?;
    let store = garage::open_store(&settings).await?;
    let gate = Arc::new(garage::open(&settings, &store).await?);
    let mailer = garage::mailer(&settings, gate.store()).context("configuring mail (VALET_SMTP_URL)")?;
    // One occupancy model in memory, shared by single-space classification and every lot's
    // frame reader.
    let classifier = Arc::new(OccupancyClassifier::bundled().context("loading the bundled occupancy model")?);
    // The occupancy function reads frames into its lots; the query function shows them (and,
    // without occupancy in this process, follows the frames the history records).
    let has_lots = functions.contains(Function::Occupancy) || functions.contains(Function::Query);
    let lots = lots::Lots::default();
    let mut layouts = None;
    let mut follow_from = None;
    if has_lots {
        let history = store.lot_history();
        if !functions.contains(Function::Occupancy) {
            follow_from = Some(history.last_frame_id().await?.unwrap_or(0));
        }
        let builtin = if settings.demo { vec![demo::layout()] } else { Vec::new() };
        let mut watch = layouts::LayoutWatch::new(store.lot_layouts(), layouts::lots_dir(&settings), builtin);
        watch.load(&lots, &classifier, &history).await.context("loading the lot layouts")?;
        layouts = Some(watch);
    }
    let plate_reader = match functions.contains(Function::PlateReader) {
        true => Some(functions::plate_reader::load().context("loading the bundled plate models")?),
        false => None,
    };
    let sink = match &settings.sink {
        Some(url) => Some(Sink::new(url, settings.sink_attempts, Duration::from_millis(200))?),
        None => None,
    };
    let (mqtt, frames) = match &settings.mqtt_broker {
        Some(broker) => {
            let frame_limit = usize::try_from(settings.max_body_bytes).unwrap_or(usize::MAX);
            let (mqtt, frames) =
                Mqtt::connect(broker, &settings.mqtt_prefix, frame_limit, functions.contains(Function::Ingest))?;
            if functions.contains(Function::Occupancy) {
                signs::spawn(&mqtt, &lots);
            }
            (Some(mqtt), frames)
        }
        None => (None, None),
    };
    let addr = listener.local_addr()?;
    if functions.contains(Function::Billing) || functions.contains(Function::Gate) {
        garage::spawn_housekeeping(Arc::clone(&gate), settings.retention_days);
    }
    let puller: Option<Arc<dyn cameras::Puller>> = match &plate_reader {
        // A pulled camera's passages start chains here: with neither the gate nor K_SINK they
        // would be read and dropped, so the cameras show why they are not pulled instead.
        Some(_) if !functions.contains(Function::Gate) && sink.is_none() => {
            tracing::warn!("{}", cameras::STRANDED);
            Some(Arc::new(cameras::Stranded))
        }
        Some(reader) => {
            Some(Arc::new(cameras::ReaderPuller { reader: Arc::clone(reader), limits: settings.decode_limits() }))
        }
        None => None,
    };
    let wiring = Wiring { functions: functions.clone(), plate_reader, sink, mqtt: mqtt.clone() };
    let state = AppState::new(store, gate, lots, classifier, &settings).wired(wiring);
    // Mail goes with billing: it tells what charges did, and needs its own secret (SMTP).
    if functions.contains(Function::Billing)
        && let Some(mailer) = mailer
    {
        let metrics = state.metrics().clone();
        mailer.spawn(move |pass| metrics.mail_pass(pass));
    }
    if let Some(puller) = puller {
        // The pulled gate cameras run where the plate reader runs; each passage is a plate read.
        cameras::spawn(&state, puller);
    }
    if let Some(watch) = layouts {
        watch.spawn(state.clone());
    }
    if functions.contains(Function::Occupancy) {
        // Each camera's adapter before the first frame, then every few seconds (hot swap).
        if let Err(e) = calibration::swap_adapters(&state).await {
            tracing::warn!(error = %e, "loading the occupancy adapters failed; the cameras start on the universal model");
        }
        calibration::spawn_adapter_watch(state.clone());
    }
    if let Some(after) = follow_from {
        lots::spawn_follower(state.clone(), after);
    }
    let (stop_ingest, stopped) = tokio::sync::watch::channel(false);
    let mqtt_ingest = match (mqtt, frames) {
        (Some(mqtt), Some(frames)) => Some(tokio::spawn(functions::ingest_mqtt(state.clone(), mqtt, frames, stopped))),
        _ => None,
    };
    if settings.demo {
        tokio::spawn(demo::run(state.clone()));
    }
    tracing::info!(functions = %String::from(functions), sink = ?settings.sink, "functions ready");
    on_ready(addr);
    serve(listener, router(state), &settings, shutdown).await?;
    // Like the HTTP requests, the frame MQTT ingest is handling is finished, and no new one taken.
    let _ = stop_ingest.send(true);
    if let Some(ingest) = mqtt_ingest
        && tokio::time::timeout(Duration::from_secs(30), ingest).await.is_err()
    {
        tracing::warn!("an MQTT frame was still being handled after 30 s; leaving it to the broker");
    }
    Ok(())
}

/// Refuses a process that would take devices' frames and have nowhere to send the events they
/// start (say `--functions ingest` without `K_SINK`): it would look ready, then fail every
/// upload. Checked before anything is opened or written.
fn refuse_stranded_events(settings: &Settings) -> anyhow::Result<()> {
    if settings.sink.is_some() {
        return Ok(());
    }
    let stranded = settings.functions.stranded_without_sink();
    if stranded.is_empty() {
        return Ok(());
    }
    let events: Vec<String> = stranded.iter().map(|(ty, consumer)| format!("{ty} for {consumer}")).collect();
    let consumers: Vec<&str> = stranded.iter().map(|(_, consumer)| consumer.name()).collect();
    anyhow::bail!(
        "refusing to start: the functions {} would send {} and no function here takes them. Set K_SINK to where \
         they go (the Broker's address; Knative's SinkBinding sets it), or run {} in this process too",
        String::from(settings.functions.clone()),
        events.join(", "),
        consumers.join(" and ")
    )
}

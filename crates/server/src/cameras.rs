//! Pulled gate cameras, wired in: the [`Supervisor`] keeps this process's pulls in step with the
//! store's `gate_cameras`, and every [`Passage`] a pull reports becomes a `plate.read` handed into
//! the chain like any other read; [`overview`], [`add`] and [`remove`] are what `/v1/cameras` and
//! the dashboard's Cameras page call.
//!
//! The supervisor runs where the plate reader runs. Every [`WATCH_EVERY`] it reads the store's
//! cameras, starts a pull for each new one, and drops the pull of one removed or changed (dropping a
//! [`valet_cameras::Pull`] stops its camera), so a camera added while Valet runs is pulled within
//! seconds, in every replica on its own. A camera whose pull cannot start keeps the reason for
//! `GET /v1/cameras` and is tried again only when its configuration changes.
//!
//! Invariants: a passage's event id is [`Passage::event_id`], so the same car delivered twice (a
//! reconnect, two replicas pulling one camera) is claimed once in the gate's inbox and makes one
//! session. The barrier command goes out on the gate's decision, before billing settles the
//! charge (`functions::gate`), so the lane never waits for money. Starting a pull goes through a
//! [`Puller`], so tests feed passages without a camera.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use valet_cameras::{CameraConfig, CameraError, Health, Passage};
use valet_garage::{AuditAction, AuditEvent, Direction, OperatorId, Reason};
use valet_store::{GarageStore, GateCameras, StoreError, StoredCamera};

use crate::AppState;
use crate::api::{MAX_CANDIDATES, PlateReadEvent};
use crate::error::ApiError;
use crate::functions::{self, CloudEvent, Function, types};

/// How often every replica reads the store's cameras again.
pub const WATCH_EVERY: Duration = Duration::from_secs(2);
/// Passages waiting for the chain; a pull blocks (and its camera drops frames) beyond this.
const PASSAGE_QUEUE: usize = 64;
/// A snapshot camera's poll interval when the operator gives none.
pub const DEFAULT_EVERY: Duration = Duration::from_millis(500);

/// Starts pulling one camera: the real [`valet_cameras::pull`] in Valet ([`ReaderPuller`]), a
/// stand-in in tests.
pub trait Puller: Send + Sync + 'static {
    fn start(&self, config: CameraConfig, passages: mpsc::Sender<Passage>) -> Result<Box<dyn Pulling>, CameraError>;
}

/// A running pull; dropping it stops the camera.
pub trait Pulling: Send + Sync {
    fn health(&self) -> Health;
}

impl Pulling for valet_cameras::Pull {
    fn health(&self) -> Health {
        valet_cameras::Pull::health(self)
    }
}

/// Pulls through `valet-cameras` with this process's plate reader and decode limits.
#[derive(Debug, Clone)]
pub struct ReaderPuller {
    pub reader: Arc<valet_plates::PlateReader>,
    pub limits: valet_imaging::DecodeLimits,
}

impl Puller for ReaderPuller {
    fn start(&self, config: CameraConfig, passages: mpsc::Sender<Passage>) -> Result<Box<dyn Pulling>, CameraError> {
        let pull = valet_cameras::pull(config, Arc::clone(&self.reader), self.limits, passages)?;
        Ok(Box::new(pull))
    }
}

/// Why a process running the plate reader without the gate and without `K_SINK` pulls no camera.
pub const STRANDED: &str = "not pulled here: this process runs the plate reader without the gate and has no K_SINK, \
                            so a passage's plate read would reach nobody; set K_SINK (Knative's SinkBinding sets it) \
                            or run the gate function in this process";

/// The puller of such a process: every camera keeps [`STRANDED`] as its problem.
#[derive(Debug, Clone, Copy)]
pub struct Stranded;

impl Puller for Stranded {
    fn start(&self, _: CameraConfig, _: mpsc::Sender<Passage>) -> Result<Box<dyn Pulling>, CameraError> {
        Err(CameraError::Config(STRANDED.to_owned()))
    }
}

/// The cameras this process pulls now, by name: what `GET /v1/cameras` shows their health from.
#[derive(Clone, Default)]
pub struct Pulls {
    inner: Arc<Mutex<BTreeMap<String, Pulled>>>,
}

impl std::fmt::Debug for Pulls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

struct Pulled {
    config: CameraConfig,
    /// `None` when the pull did not start; `problem` says why.
    pull: Option<Box<dyn Pulling>>,
    problem: Option<String>,
}

/// What this process knows of one camera it pulls.
#[derive(Debug, Clone)]
pub struct PullState {
    pub health: Option<Health>,
    pub problem: Option<String>,
}

impl Pulls {
    /// The names of the cameras pulled (or tried) here.
    pub fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// `name`'s health, or why its pull did not start; `None` when this process does not pull it.
    pub fn state(&self, name: &str) -> Option<PullState> {
        let pulls = self.lock();
        let pulled = pulls.get(name)?;
        Some(PullState { health: pulled.pull.as_ref().map(|p| p.health()), problem: pulled.problem.clone() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Pulled>> {
        // A panic while holding the map leaves it consistent (every change is one insert or remove).
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Keeps the pulls of one process in step with the store.
pub struct Supervisor {
    store: GateCameras,
    puller: Arc<dyn Puller>,
    pulls: Pulls,
    passages: mpsc::Sender<Passage>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor").field("pulls", &self.pulls).finish_non_exhaustive()
    }
}

impl Supervisor {
    /// A supervisor over `store`'s cameras whose passages go to the returned receiver.
    pub fn new(store: GateCameras, puller: Arc<dyn Puller>, pulls: Pulls) -> (Supervisor, mpsc::Receiver<Passage>) {
        let (passages, received) = mpsc::channel(PASSAGE_QUEUE);
        (Supervisor { store, puller, pulls, passages }, received)
    }

    /// One look at the store: starts the new cameras, stops the removed and changed ones.
    pub async fn sync(&self) -> Result<(), StoreError> {
        let wanted: BTreeMap<String, CameraConfig> =
            self.store.list().await?.into_iter().map(|c| (c.name.clone(), config_of(&c))).collect();
        // Stopped outside the lock: dropping a pull may wait for its tasks to notice.
        let mut stopped = Vec::new();
        let mut to_start = Vec::new();
        {
            let mut pulls = self.pulls.lock();
            let names: Vec<String> = pulls.keys().cloned().collect();
            for name in names {
                if wanted.get(&name) != pulls.get(&name).map(|p| &p.config) {
                    let what = if wanted.contains_key(&name) { "changed" } else { "removed" };
                    tracing::info!(camera = %name, "gate camera {what}: its pull stops");
                    stopped.extend(pulls.remove(&name));
                }
            }
            for (name, config) in &wanted {
                if !pulls.contains_key(name) {
                    to_start.push(config.clone());
                }
            }
        }
        drop(stopped);
        for config in to_start {
            let name = config.name.clone();
            let started = self.puller.start(config.clone(), self.passages.clone());
            let pulled = match started {
                Ok(pull) => {
                    tracing::info!(camera = %name, direction = ?config.direction, "gate camera pulled");
                    Pulled { config, pull: Some(pull), problem: None }
                }
                Err(e) => {
                    tracing::error!(camera = %name, error = %e, "gate camera not pulled");
                    Pulled { config, pull: None, problem: Some(e.to_string()) }
                }
            };
            self.pulls.lock().insert(name, pulled);
        }
        Ok(())
    }

    /// Syncs now and every [`WATCH_EVERY`], and runs each passage through the chain.
    pub fn spawn(self, state: AppState, passages: mpsc::Receiver<Passage>) {
        tokio::spawn(deliver(state, passages));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(WATCH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = self.sync().await {
                    tracing::warn!(error = %e, "reading the gate cameras failed; keeping the pulls running");
                }
            }
        });
    }
}

/// Starts the supervisor of `state`'s process with `puller`: what `valet serve` runs where the
/// plate reader runs (and tests run with a stand-in puller).
pub fn spawn(state: &AppState, puller: Arc<dyn Puller>) {
    let (supervisor, passages) = Supervisor::new(state.store().gate_cameras(), puller, state.pulls().clone());
    supervisor.spawn(state.clone(), passages);
}

/// Each passage becomes a `plate.read` and runs through this process's functions (the gate
/// decides and commands the barrier, billing settles after) or on to `K_SINK`. Each in its own
/// task, so one lane's slow charge never holds another lane's barrier.
async fn deliver(state: AppState, mut passages: mpsc::Receiver<Passage>) {
    while let Some(passage) = passages.recv().await {
        let state = state.clone();
        state.metrics().plate_read(&passage.camera);
        tokio::spawn(async move {
            let event = passage_event(&passage);
            let id = event.id.clone();
            match functions::start(&state, event).await {
                Ok((chain, forwarded)) => {
                    let last = chain.trail.last().map(|e| e.ty.as_str()).unwrap_or("none");
                    tracing::info!(
                        event = %id, camera = %passage.camera, text = %passage.text, last,
                        forwarded = forwarded.is_some(), "passage handled"
                    );
                }
                Err(e) => tracing::error!(event = %id, camera = %passage.camera, error = %e, "passage not handled"),
            }
        });
    }
}

/// The `plate.read` of a passage: id [`Passage::event_id`], read at the first frame that showed
/// the car, with the best crop for a reviewer.
pub fn passage_event(passage: &Passage) -> CloudEvent {
    use base64::Engine;
    let read = PlateReadEvent {
        camera: passage.camera.clone(),
        direction: passage.direction,
        text: passage.text.clone(),
        confidence: passage.confidence.clamp(0.0, 1.0),
        candidates: passage.candidates.iter().take(MAX_CANDIDATES).cloned().collect(),
        at: Some(passage.first_frame_at),
        crop_jpeg: passage.crop_jpeg.as_ref().map(|jpeg| base64::engine::general_purpose::STANDARD.encode(jpeg)),
    };
    CloudEvent::json(passage.event_id(), &Function::PlateReader.source(), types::PLATE_READ, &read)
}

/// A stored camera as `valet-cameras` takes it.
pub fn config_of(camera: &StoredCamera) -> CameraConfig {
    CameraConfig {
        name: camera.name.clone(),
        url: camera.url.clone(),
        direction: camera.direction,
        lane: camera.lane.clone(),
        region: camera.region.clone(),
        every: Duration::from_millis(u64::try_from(camera.every_ms).unwrap_or(0)),
    }
}

/// A validated camera as the store keeps it, added now `by` an operator (a name, or `cli`).
fn stored_camera(config: &CameraConfig, by: &str) -> StoredCamera {
    StoredCamera {
        name: config.name.clone(),
        url: config.url.clone(),
        direction: config.direction,
        lane: config.lane.clone(),
        region: config.region.clone(),
        every_ms: i64::try_from(config.every.as_millis()).unwrap_or(i64::MAX),
        added_at: Utc::now(),
        added_by: by.to_owned(),
    }
}

/// Saves a validated camera and audits who added it: what `POST /v1/cameras`, the dashboard and
/// `valet cameras add` share. A name taken is [`StoreError::CameraExists`], with nothing audited.
pub async fn save_audited(
    cameras: &GateCameras,
    garage: &GarageStore,
    config: &CameraConfig,
    by: &str,
) -> Result<StoredCamera, StoreError> {
    let stored = stored_camera(config, by);
    cameras.add(&stored).await?;
    let what = AuditAction::GateCameraAdded {
        camera: stored.name.clone(),
        url: config.redacted_url(),
        direction: stored.direction,
    };
    audit(garage, by, what, "a gate camera for Valet to pull").await?;
    tracing::info!(camera = %stored.name, url = %config.redacted_url(), by, "gate camera added");
    Ok(stored)
}

/// Removes a pulled camera and audits it; `false` (nothing audited) when there was none.
pub async fn remove_audited(
    cameras: &GateCameras,
    garage: &GarageStore,
    name: &str,
    by: &str,
) -> Result<bool, StoreError> {
    if !cameras.remove(name).await? {
        return Ok(false);
    }
    let what = AuditAction::GateCameraRemoved { camera: name.to_owned() };
    audit(garage, by, what, "a pulled gate camera taken out of service").await?;
    tracing::info!(camera = %name, by, "gate camera removed");
    Ok(true)
}

async fn audit(garage: &GarageStore, by: &str, what: AuditAction, why: &str) -> Result<(), StoreError> {
    let why = Reason::parse(why).expect("a fixed reason is not blank");
    garage.append_audit_event(&AuditEvent { who: OperatorId(by.to_owned()), what, why, at: Utc::now() }).await?;
    Ok(())
}

/// A camera to add: `POST /v1/cameras`'s body and the dashboard's form.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCamera {
    /// Also the lane's barrier topic.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub name: String,
    pub url: String,
    pub direction: Direction,
    #[serde(default)]
    pub lane: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    /// A snapshot URL's poll interval; [`DEFAULT_EVERY`] when absent.
    #[serde(default)]
    #[schema(minimum = 100, maximum = 60000)]
    pub every_ms: Option<u64>,
}

impl NewCamera {
    pub fn config(&self) -> CameraConfig {
        let blank_is_none =
            |text: &Option<String>| text.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned);
        CameraConfig {
            name: self.name.trim().to_owned(),
            url: self.url.trim().to_owned(),
            direction: self.direction,
            lane: blank_is_none(&self.lane),
            region: blank_is_none(&self.region),
            every: self.every_ms.map_or(DEFAULT_EVERY, Duration::from_millis),
        }
    }
}

/// One gate camera as operators see it: pulled (its configuration, the URL redacted, and its
/// health where this process pulls it) or pushed (a lane whose camera posts frames or reads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CameraView {
    pub name: String,
    /// `pulled` (Valet fetches its frames) or `pushed` (it sends them).
    pub kind: CameraKind,
    pub direction: Direction,
    /// The URL with any password as `***`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_at: Option<chrono::DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_by: Option<String>,
    /// A pulled camera's health in this process; absent where another replica pulls it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// Why this process could not pull it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// A pushed camera's latest read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<chrono::DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CameraKind {
    Pulled,
    Pushed,
}

fn pulled_view(state: &AppState, camera: &StoredCamera) -> CameraView {
    let config = config_of(camera);
    let pulled = state.pulls().state(&camera.name);
    CameraView {
        name: camera.name.clone(),
        kind: CameraKind::Pulled,
        direction: camera.direction,
        url: Some(config.redacted_url()),
        lane: camera.lane.clone(),
        region: camera.region.clone(),
        every_ms: u64::try_from(camera.every_ms).ok(),
        added_at: Some(camera.added_at),
        added_by: Some(camera.added_by.clone()),
        health: pulled.as_ref().and_then(|p| p.health.clone()),
        problem: pulled.and_then(|p| p.problem),
        last_seen: None,
    }
}

/// Every gate camera: the pulled ones by name, then the lanes whose cameras push.
pub async fn overview(state: &AppState) -> Result<Vec<CameraView>, ApiError> {
    let pulled = state.store().gate_cameras().list().await?;
    let mut views: Vec<CameraView> = pulled.iter().map(|c| pulled_view(state, c)).collect();
    for lane in state.gate().lanes().await? {
        if pulled.iter().any(|c| c.name == lane.camera.0) {
            continue;
        }
        views.push(CameraView {
            name: lane.camera.0,
            kind: CameraKind::Pushed,
            direction: lane.direction,
            url: None,
            lane: None,
            region: None,
            every_ms: None,
            added_at: None,
            added_by: None,
            health: None,
            problem: None,
            last_seen: Some(lane.last_seen),
        });
    }
    Ok(views)
}

/// Validates and saves a camera `by` an admin; every plate-reader replica pulls it within
/// [`WATCH_EVERY`].
pub async fn add(state: &AppState, camera: &NewCamera, by: &str) -> Result<CameraView, ApiError> {
    let config = camera.config();
    config.validate().map_err(|e| ApiError::InvalidCamera(e.to_string()))?;
    let stored = match save_audited(&state.store().gate_cameras(), state.gate().store(), &config, by).await {
        Ok(stored) => stored,
        Err(e @ StoreError::CameraExists(_)) => return Err(ApiError::CameraExists(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    Ok(pulled_view(state, &stored))
}

/// Removes a pulled camera; its pulls stop within [`WATCH_EVERY`].
pub async fn remove(state: &AppState, name: &str, by: &str) -> Result<(), ApiError> {
    let cameras = state.store().gate_cameras();
    if remove_audited(&cameras, state.gate().store(), name, by).await? {
        return Ok(());
    }
    let known: Vec<String> = cameras.list().await?.into_iter().map(|c| c.name).collect();
    Err(ApiError::Missing(format!(
        "no pulled gate camera {name:?}: the pulled cameras are {}",
        if known.is_empty() { "none yet".to_owned() } else { known.join(", ") }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(candidates: usize) -> Passage {
        let first = chrono::DateTime::parse_from_rfc3339("2026-03-02T08:00:00.250Z").unwrap().to_utc();
        Passage {
            camera: "north-exit".to_owned(),
            lane: Some("north".to_owned()),
            direction: Direction::Exit,
            id: PassageId(0xfeed),
            first_frame_at: first,
            decided_at: first + chrono::TimeDelta::milliseconds(180),
            text: "AB123CD".to_owned(),
            confidence: 0.93,
            candidates: (0..candidates)
                .map(|n| valet_garage::Candidate { text: format!("AB12{n}CD"), confidence: 0.5 })
                .collect(),
            crop_jpeg: Some(vec![0xff, 0xd8, 0xff, 0xd9]),
            frames: 14,
            reads: 6,
        }
    }

    use valet_cameras::PassageId;

    #[test]
    fn a_passage_is_one_plate_read_named_by_the_passage_read_when_the_car_was_first_seen() {
        let passage = passage(3);
        let event = passage_event(&passage);
        assert_eq!(event.id, passage.event_id());
        assert_eq!(event.ty, types::PLATE_READ);
        let read: PlateReadEvent = event.data_json().unwrap();
        assert_eq!((read.camera.as_str(), read.direction), ("north-exit", Direction::Exit));
        assert_eq!((read.text.as_str(), read.confidence, read.candidates.len()), ("AB123CD", 0.93, 3));
        assert_eq!(read.at, Some(passage.first_frame_at), "the stay starts when the car was first seen");
        assert_eq!(read.crop_jpeg.as_deref(), Some("/9j/2Q=="));
        // The same passage again (a reconnect, another replica): the same event, so the gate's inbox
        // takes it once.
        assert_eq!(passage_event(&passage).id, event.id);
        // The gate takes at most MAX_CANDIDATES; a chatty reader is trimmed, not refused.
        let read: PlateReadEvent = passage_event(&super::tests::passage(50)).data_json().unwrap();
        assert_eq!(read.candidates.len(), MAX_CANDIDATES);
        read.into_read(passage.first_frame_at, passage.decided_at).unwrap();
    }

    #[test]
    fn a_new_camera_trims_its_fields_and_polls_every_500_ms_by_default() {
        let camera: NewCamera = serde_json::from_value(serde_json::json!({
            "name": " north ", "url": "http://10.0.0.7/snap.jpg ", "direction": "entry", "lane": " ", "region": "eu"
        }))
        .unwrap();
        let config = camera.config();
        assert_eq!((config.name.as_str(), config.url.as_str()), ("north", "http://10.0.0.7/snap.jpg"));
        assert_eq!((config.lane, config.region.as_deref(), config.every), (None, Some("eu"), DEFAULT_EVERY));
        let unknown = serde_json::from_value::<NewCamera>(serde_json::json!({
            "name": "n", "url": "rtsp://h/s", "direction": "exit", "password": "x"
        }));
        assert!(unknown.is_err(), "an unknown field is refused, not ignored");
        let stored = StoredCamera {
            name: "n".into(),
            url: "rtsp://h/s".into(),
            direction: Direction::Exit,
            lane: None,
            region: None,
            every_ms: 250,
            added_at: Utc::now(),
            added_by: "alice".into(),
        };
        assert_eq!(config_of(&stored).every, Duration::from_millis(250));
    }
}

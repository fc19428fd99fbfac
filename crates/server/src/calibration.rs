//! Calibration of the occupancy model per bay camera, for the running server: the operator's
//! labels, and the cameras' adapters. The fitting itself is `valet-calibration`'s; this module
//! only says where labels come from and when adapters change.
//!
//! - [`label`]: the operator's word on the camera's latest frame (bays clicked, the whole frame
//!   confirmed, or the lot empty), cut into crops and stored under the frame's time, so a second
//!   label of a bay on that frame is refused. Audited. A fit of the camera is then queued.
//! - Fits run off the request path, one at a time per camera: labels that arrive while a fit runs
//!   ask for one more fit when it ends, not one each. A fit that beats the universal model
//!   becomes the camera's active adapter (audited); one that does not is saved inactive with why.
//! - [`swap_adapters`]: every replica that reads frames compares each camera's active version
//!   with the one it loaded, every [`SWAP_EVERY`] ([`spawn_adapter_watch`]) and at once after a
//!   fit or an activation here, and puts the new adapter in the lot's reader. An adapter that
//!   does not load is logged once and the camera keeps the universal model.
//! - [`overview`] and [`activate`]: what the dashboard and `GET /v1/lots/{id}/calibration` show,
//!   and the operator's rollback (to a version, or to the universal model). Audited.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use valet_calibration::{FrameLabels, LabelError};
use valet_garage::{AuditAction, AuditEvent, OperatorId, Reason};
use valet_lot::{CameraId, SpaceId, SpaceState};
use valet_occupancy::Adapter;
use valet_store::StoreError;

use crate::AppState;
use crate::error::ApiError;
use crate::lots::LiveLot;

/// How often every replica looks for adapter changes.
pub const SWAP_EVERY: Duration = Duration::from_secs(2);

/// Bays listed as the ones to label next.
const LEAST_SURE: usize = 5;

/// What an operator says of a camera's latest frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelRequest {
    /// These bays, each free or occupied (a correction on the map).
    Spaces(BTreeMap<String, SpaceState>),
    /// The map is right: every bay of the camera as shown, except bays not seen yet, unsure, or
    /// whose state the frame itself contradicts (a flip the smoothing has not confirmed yet).
    ConfirmFrame,
    /// The lot is empty now: every bay of the camera free.
    LotEmpty,
}

/// Labels stored: `POST /v1/lots/{id}/labels`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Labelled {
    pub lot: String,
    pub camera: String,
    /// The labelled frame's key: when it was read (RFC 3339).
    pub frame: String,
    pub labels: usize,
}

/// One camera's calibration, as the dashboard and `GET /v1/lots/{id}/calibration` show it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CameraCalibration {
    pub camera: String,
    pub free_labels: u64,
    pub occupied_labels: u64,
    /// Distinct frames labelled.
    pub frames: u64,
    /// The adapter reading the camera; `None`: the universal model.
    pub active_version: Option<i64>,
    /// Leave-one-frame-out accuracies of the latest fit, on the labels it was fitted on.
    pub universal_accuracy: Option<f64>,
    pub adapted_accuracy: Option<f64>,
    /// Every fit, newest first.
    pub versions: Vec<AdapterVersion>,
    /// The camera's bays the model is least sure of now: label these next.
    pub least_sure: Vec<LeastSure>,
    /// A fit is queued or running.
    pub fitting: bool,
    /// Why the last fit made no version (say, labels of one state only), until one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fit_problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AdapterVersion {
    pub version: i64,
    pub fitted_at: chrono::DateTime<Utc>,
    pub fitted_by: String,
    pub labels: u32,
    pub universal_accuracy: f64,
    pub adapted_accuracy: f64,
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LeastSure {
    pub space: String,
    /// The smoothed probability of occupied: the closer to 0.5, the less sure.
    pub p_occupied: f32,
}

/// The fit queue and the adapters this process has loaded; one per [`AppState`].
#[derive(Debug, Default)]
pub struct Calibration {
    fits: Mutex<BTreeMap<(String, String), FitSlot>>,
    /// Held across the store's answer and the swap, so two swaps never interleave.
    loaded: tokio::sync::Mutex<HashMap<(String, String), Loaded>>,
}

#[derive(Debug, Default)]
struct FitSlot {
    busy: bool,
    /// Labels arrived while a fit ran: one more fit when it ends, credited to whoever labelled last.
    again: Option<String>,
    problem: Option<String>,
}

/// An active version as loaded here; `None` when it did not load (logged once, not retried).
#[derive(Debug)]
struct Loaded {
    version: i64,
    adapter: Option<Arc<Adapter>>,
}

/// Stores the operator's labels of `camera`'s latest frame and queues a fit of its adapter.
pub async fn label(
    state: &AppState,
    lot: &str,
    camera: &str,
    request: LabelRequest,
    by: &str,
) -> Result<Labelled, ApiError> {
    let live = crate::routes::lots::live_lot(state, lot)?;
    let camera_id = camera_of(&live, lot, camera)?;
    let (jpeg, read_at) = live
        .latest_frame_at(camera)
        .ok_or_else(|| ApiError::NoFrameYet { lot: lot.to_owned(), camera: camera.to_owned() })?;
    let frame = read_at.to_rfc3339_opts(SecondsFormat::Nanos, true);
    let layout = live.reader.layout();
    let on_camera = |id: &SpaceId| layout.spaces_of(&camera_id).any(|s| s.id == *id);
    let (states, confirm) = match request {
        LabelRequest::Spaces(spaces) => (spaces.into_iter().map(|(space, s)| (SpaceId::new(space), s)).collect(), None),
        // What the map shows, checked against the frame itself below.
        LabelRequest::ConfirmFrame => (
            Vec::new(),
            Some(
                live.smoothed()
                    .into_iter()
                    .filter(|(id, _)| on_camera(id))
                    .filter_map(|(id, smoothed)| smoothed.filter(|s| !s.unsure).map(|s| (id, s.state)))
                    .collect::<Vec<_>>(),
            ),
        ),
        LabelRequest::LotEmpty => {
            (layout.spaces_of(&camera_id).map(|s| (s.id.clone(), SpaceState::Free)).collect(), None)
        }
    };
    let mut request = FrameLabels {
        lot: lot.to_owned(),
        camera: camera_id,
        frame: frame.clone(),
        states,
        by: by.to_owned(),
        at: Utc::now(),
    };
    let permit = state.admit(crate::admission::Work::Bulk).await?;
    let limits = state.inner.limits;
    let cutter = Arc::clone(&live);
    let labels = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let decoded = valet_imaging::decode(&jpeg, &limits)?;
        if let Some(shown) = confirm {
            // A bay whose state is about to flip shows its old state on the map while the frame
            // already shows the new one: "the map is right" says nothing of it, so it is left out.
            let reading = cutter
                .reader
                .read(&request.camera, &decoded.image)
                .map_err(|e| ApiError::InvalidLabel(e.to_string()))?;
            request.states = shown
                .into_iter()
                .filter(|(id, state)| {
                    reading
                        .spaces
                        .iter()
                        .any(|r| r.space == *id && (r.p_occupied >= 0.5) == (*state == SpaceState::Occupied))
                })
                .collect();
        }
        valet_calibration::labels_for_frame(&cutter.reader, &decoded.image, &request).map_err(label_refusal)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    drop(permit);
    state.store().occupancy_calibration().add_labels(&labels).await.map_err(store_refusal)?;
    let occupied = labels.iter().filter(|l| l.occupied).count();
    let (free, occupied) = (count(labels.len() - occupied), count(occupied));
    let what = AuditAction::OccupancyLabels {
        lot: lot.to_owned(),
        camera: camera.to_owned(),
        frame: frame.clone(),
        free,
        occupied,
    };
    audit(state, by, what, "calibrating the camera's occupancy model from its live frame").await?;
    queue_fit(state, lot, camera, by);
    Ok(Labelled { lot: lot.to_owned(), camera: camera.to_owned(), frame, labels: labels.len() })
}

/// Every camera of `lot`, in the layout's order.
pub async fn overview(state: &AppState, lot: &str) -> Result<Vec<CameraCalibration>, ApiError> {
    let live = crate::routes::lots::live_lot(state, lot)?;
    let store = state.store().occupancy_calibration();
    let counts = store.label_counts(lot).await?;
    let smoothed = live.smoothed();
    let layout = live.reader.layout();
    let mut cameras = Vec::with_capacity(layout.cameras.len());
    for camera in &layout.cameras {
        let history = store.adapters(lot, camera.id.as_str()).await?;
        let labelled = counts.iter().find(|c| c.camera == camera.id.as_str());
        let mut least_sure: Vec<LeastSure> = smoothed
            .iter()
            .filter(|(id, _)| layout.spaces_of(&camera.id).any(|s| s.id == *id))
            .filter_map(|(id, s)| s.map(|s| LeastSure { space: id.to_string(), p_occupied: s.p_occupied }))
            .collect();
        least_sure.sort_by(|a, b| (a.p_occupied - 0.5).abs().total_cmp(&(b.p_occupied - 0.5).abs()));
        least_sure.truncate(LEAST_SURE);
        let (fitting, fit_problem) = {
            let fits = state.inner.calibration.fits.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            fits.get(&(lot.to_owned(), camera.id.to_string())).map_or((false, None), |s| (s.busy, s.problem.clone()))
        };
        cameras.push(CameraCalibration {
            camera: camera.id.to_string(),
            free_labels: labelled.map_or(0, |c| c.free),
            occupied_labels: labelled.map_or(0, |c| c.occupied),
            frames: labelled.map_or(0, |c| c.frames),
            active_version: history.iter().find(|a| a.adapter.active).map(|a| a.version),
            universal_accuracy: history.first().map(|a| a.adapter.universal_accuracy),
            adapted_accuracy: history.first().map(|a| a.adapter.adapted_accuracy),
            versions: history
                .into_iter()
                .map(|a| AdapterVersion {
                    version: a.version,
                    fitted_at: a.adapter.fitted_at,
                    fitted_by: a.adapter.fitted_by,
                    labels: a.adapter.labels,
                    universal_accuracy: a.adapter.universal_accuracy,
                    adapted_accuracy: a.adapter.adapted_accuracy,
                    active: a.adapter.active,
                    note: a.adapter.note,
                })
                .collect(),
            least_sure,
            fitting,
            fit_problem,
        });
    }
    Ok(cameras)
}

/// Makes `version` the camera's adapter, or with `None` puts it back on the universal model;
/// this process swaps at once, the other replicas within [`SWAP_EVERY`].
pub async fn activate(
    state: &AppState,
    lot: &str,
    camera: &str,
    version: Option<i64>,
    by: &str,
) -> Result<(), ApiError> {
    let live = crate::routes::lots::live_lot(state, lot)?;
    camera_of(&live, lot, camera)?;
    state.store().occupancy_calibration().activate(lot, camera, version).await.map_err(store_refusal)?;
    let why = match version {
        Some(_) => "adapter version chosen by hand",
        None => "rolled back to the universal model",
    };
    let what = AuditAction::OccupancyAdapter { lot: lot.to_owned(), camera: camera.to_owned(), version };
    audit(state, by, what, why).await?;
    if let Err(e) = swap_adapters(state).await {
        tracing::warn!(error = %e, "swapping adapters failed; the watch tries again");
    }
    Ok(())
}

/// Puts each camera's active adapter (or none) in its lot's reader, loading only versions that
/// changed. Called every [`SWAP_EVERY`] and after a fit or an activation in this process.
pub async fn swap_adapters(state: &AppState) -> Result<(), StoreError> {
    let store = state.store().occupancy_calibration();
    let mut loaded = state.inner.calibration.loaded.lock().await;
    let active: HashMap<(String, String), i64> =
        store.active_versions().await?.into_iter().map(|a| ((a.lot, a.camera), a.version)).collect();
    loaded.retain(|key, _| active.contains_key(key));
    for lot in state.lots().all() {
        let lot_id = lot.reader.layout().id.to_string();
        for camera in &lot.reader.layout().cameras {
            let key = (lot_id.clone(), camera.id.to_string());
            let adapter = match active.get(&key) {
                None => None,
                Some(&version) => {
                    if loaded.get(&key).is_none_or(|l| l.version != version) {
                        let fresh = load(state, &key, version).await?;
                        loaded.insert(key.clone(), fresh);
                    }
                    loaded.get(&key).and_then(|l| l.adapter.clone())
                }
            };
            let current = lot.reader.adapter(&camera.id);
            let same = match (&current, &adapter) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            if !same {
                let version = adapter.as_ref().and_then(|_| loaded.get(&key).map(|l| l.version));
                lot.reader.set_adapter(&camera.id, adapter);
                match version {
                    Some(version) => {
                        tracing::info!(lot = %lot_id, camera = %camera.id, version, "occupancy adapter swapped in")
                    }
                    None => {
                        tracing::info!(lot = %lot_id, camera = %camera.id, "camera back on the universal occupancy model")
                    }
                }
            }
        }
    }
    Ok(())
}

/// The active adapter of `key`'s camera, loaded off the async threads (it probes the model).
async fn load(state: &AppState, (lot, camera): &(String, String), version: i64) -> Result<Loaded, StoreError> {
    let store = state.store().occupancy_calibration();
    // Read again: it may have changed since the versions were listed; the next round catches up.
    let Some(stored) = store.active_adapter(lot, camera).await? else {
        return Ok(Loaded { version, adapter: None });
    };
    let classifier = Arc::clone(&state.inner.classifier);
    let version = stored.version;
    let loaded = tokio::task::spawn_blocking(move || valet_calibration::load_adapter(&stored, &classifier)).await;
    let adapter = match loaded {
        Ok(Ok(adapter)) => Some(Arc::new(adapter)),
        Ok(Err(e)) => {
            tracing::error!(%lot, %camera, version, error = %e, "occupancy adapter does not load; the camera keeps the universal model");
            None
        }
        Err(e) => {
            tracing::error!(%lot, %camera, version, error = %e, "loading an occupancy adapter stopped");
            None
        }
    };
    Ok(Loaded { version, adapter })
}

/// Swaps adapters every [`SWAP_EVERY`], in every process that reads frames; a database that
/// does not answer is logged and changes nothing.
pub fn spawn_adapter_watch(state: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWAP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = swap_adapters(&state).await {
                tracing::warn!(error = %e, "reading the active occupancy adapters failed; keeping the ones loaded");
            }
        }
    });
}

/// Queues a fit of the camera's adapter; while one runs, asks for one more when it ends.
fn queue_fit(state: &AppState, lot: &str, camera: &str, by: &str) {
    let key = (lot.to_owned(), camera.to_owned());
    {
        let mut fits = state.inner.calibration.fits.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = fits.entry(key.clone()).or_default();
        if slot.busy {
            slot.again = Some(by.to_owned());
            return;
        }
        slot.busy = true;
    }
    tokio::spawn(run_fits(state.clone(), key, by.to_owned()));
}

async fn run_fits(state: AppState, key: (String, String), mut by: String) {
    let (lot, camera) = &key;
    loop {
        let store = state.store().occupancy_calibration();
        let fitted =
            valet_calibration::fit_camera(&store, Arc::clone(&state.inner.classifier), lot, camera, &by, Utc::now())
                .await;
        let problem = match fitted {
            Ok(fit) => {
                tracing::info!(
                    %lot, %camera, version = fit.version, kept = fit.kept, labels = fit.labels, frames = fit.frames,
                    universal = fit.universal_accuracy, adapted = fit.adapted_accuracy, fit_ms = fit.fit_ms,
                    "occupancy adapter fitted"
                );
                if fit.kept {
                    let why = format!(
                        "fitted on {} labels: {:.1} % leave-one-frame-out against the universal model's {:.1} %",
                        fit.labels,
                        fit.adapted_accuracy * 100.0,
                        fit.universal_accuracy * 100.0
                    );
                    let what = AuditAction::OccupancyAdapter {
                        lot: lot.clone(),
                        camera: camera.clone(),
                        version: Some(fit.version),
                    };
                    if let Err(e) = audit(&state, &by, what, &why).await {
                        tracing::error!(error = %e, "auditing an adapter's activation failed");
                    }
                    if let Err(e) = swap_adapters(&state).await {
                        tracing::warn!(error = %e, "swapping adapters failed; the watch tries again");
                    }
                }
                None
            }
            Err(e) => {
                tracing::warn!(%lot, %camera, error = %e, "no occupancy adapter fitted");
                Some(e.to_string())
            }
        };
        let next = {
            let mut fits = state.inner.calibration.fits.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let slot = fits.entry(key.clone()).or_default();
            slot.problem = problem;
            let next = slot.again.take();
            slot.busy = next.is_some();
            next
        };
        match next {
            Some(next) => by = next,
            None => return,
        }
    }
}

fn camera_of(live: &LiveLot, lot: &str, camera: &str) -> Result<CameraId, ApiError> {
    let layout = live.reader.layout();
    let id = CameraId::new(camera.to_owned());
    match layout.camera(&id) {
        Some(_) => Ok(id),
        None => Err(ApiError::UnknownCamera {
            lot: lot.to_owned(),
            camera: camera.to_owned(),
            known: layout.cameras.iter().map(|c| c.id.to_string()).collect(),
        }),
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

async fn audit(state: &AppState, by: &str, what: AuditAction, why: &str) -> Result<(), ApiError> {
    let why = Reason::parse(why).map_err(|e| ApiError::Internal(e.to_string()))?;
    let event = AuditEvent { who: OperatorId(by.to_owned()), what, why, at: Utc::now() };
    state.gate().store().append_audit_event(&event).await?;
    Ok(())
}

fn label_refusal(error: LabelError) -> ApiError {
    match error {
        LabelError::Encode(_) => ApiError::Internal(error.to_string()),
        _ => ApiError::InvalidLabel(error.to_string()),
    }
}

fn store_refusal(error: StoreError) -> ApiError {
    match error {
        StoreError::LabelExists { .. } => ApiError::LabelExists(error.to_string()),
        StoreError::UnknownAdapter { .. } => ApiError::UnknownAdapter(error.to_string()),
        other => other.into(),
    }
}

//! Calibrating a bay camera's occupancy model over HTTP, behind an operator key: label bays of
//! its latest frame (`POST /v1/lots/{id}/labels`), see each camera's labels, fits and least sure
//! bays (`GET /v1/lots/{id}/calibration`), and choose or roll back its adapter
//! (`POST /v1/lots/{id}/cameras/{camera}/adapter`). Parse → [`crate::calibration`] → map.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer, Serialize};
use valet_lot::SpaceState;

use super::ApiJson;
use crate::AppState;
use crate::auth::AuthedOperator;
use crate::calibration::{self, CameraCalibration, LabelRequest, Labelled};
use crate::error::ApiError;

/// `{camera, spaces: {"A1": "occupied"}}`, `{camera, confirm: true}` or `{camera, empty: true}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelBody {
    /// The lot's only camera when absent.
    camera: Option<String>,
    spaces: Option<BTreeMap<String, String>>,
    #[serde(default)]
    confirm: bool,
    #[serde(default)]
    empty: bool,
}

pub async fn label(
    State(state): State<AppState>,
    operator: AuthedOperator,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<LabelBody>,
) -> Result<(StatusCode, Json<Labelled>), ApiError> {
    let request = match (body.spaces, body.confirm, body.empty) {
        (Some(spaces), false, false) if !spaces.is_empty() => {
            let mut states = BTreeMap::new();
            for (space, state) in spaces {
                let state = space_state(&space, &state)?;
                states.insert(space, state);
            }
            LabelRequest::Spaces(states)
        }
        (None, true, false) => LabelRequest::ConfirmFrame,
        (None, false, true) => LabelRequest::LotEmpty,
        _ => {
            return Err(ApiError::BadRequest(
                "say one of: `spaces` (bays and their states, e.g. {\"A1\": \"occupied\"}), `confirm: true` (the map \
                 is right) or `empty: true` (the lot is empty now)"
                    .into(),
            ));
        }
    };
    let camera = camera_or_only(&state, &id, body.camera)?;
    let labelled = calibration::label(&state, &id, &camera, request, operator.0.name.as_str()).await?;
    Ok((StatusCode::CREATED, Json(labelled)))
}

#[derive(Debug, Serialize)]
pub struct LotCalibration {
    lot: String,
    cameras: Vec<CameraCalibration>,
}

pub async fn overview(
    State(state): State<AppState>,
    _: AuthedOperator,
    Path(id): Path<String>,
) -> Result<Json<LotCalibration>, ApiError> {
    let cameras = calibration::overview(&state, &id).await?;
    Ok(Json(LotCalibration { lot: id, cameras }))
}

/// `{"version": 3}` makes version 3 the camera's adapter; `{"version": null}` goes back to the
/// universal model. The field must be there: an empty body rolls nothing back by accident.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterBody {
    #[serde(default, deserialize_with = "present")]
    version: Option<Option<i64>>,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(deserializer).map(Some)
}

pub async fn choose_adapter(
    State(state): State<AppState>,
    operator: AuthedOperator,
    Path((id, camera)): Path<(String, String)>,
    ApiJson(body): ApiJson<AdapterBody>,
) -> Result<Json<CameraCalibration>, ApiError> {
    let Some(version) = body.version else {
        return Err(ApiError::BadRequest(
            "say which adapter: {\"version\": N}, or {\"version\": null} for the universal model".into(),
        ));
    };
    calibration::activate(&state, &id, &camera, version, operator.0.name.as_str()).await?;
    let cameras = calibration::overview(&state, &id).await?;
    cameras
        .into_iter()
        .find(|c| c.camera == camera)
        .map(Json)
        .ok_or_else(|| ApiError::Internal(format!("camera {camera} vanished from lot {id}")))
}

fn space_state(space: &str, state: &str) -> Result<SpaceState, ApiError> {
    match state {
        "free" => Ok(SpaceState::Free),
        "occupied" => Ok(SpaceState::Occupied),
        other => Err(ApiError::BadRequest(format!("bay {space}: {other:?} is neither \"free\" nor \"occupied\""))),
    }
}

/// The camera named, or the lot's only one.
fn camera_or_only(state: &AppState, lot: &str, camera: Option<String>) -> Result<String, ApiError> {
    if let Some(camera) = camera {
        return Ok(camera);
    }
    let live = super::lots::live_lot(state, lot)?;
    match live.reader.layout().cameras.as_slice() {
        [only] => Ok(only.id.to_string()),
        cameras => Err(ApiError::BadRequest(format!("lot {lot} has {} cameras: say which in `camera`", cameras.len()))),
    }
}

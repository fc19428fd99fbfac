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
#[derive(Debug, Deserialize, utoipa::ToSchema)]
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

#[utoipa::path(
    post,
    path = "/v1/lots/{id}/labels",
    operation_id = "label_bays",
    tag = "operators",
    security(("operatorKey" = [])),
    summary = "Label bays of a camera's latest frame to calibrate its occupancy model",
    description = "Label bays of a camera's latest frame to calibrate its occupancy model: `spaces` \
        corrected, the frame confirmed (`confirm: true`) or the lot empty (`empty: true`); a fit \
        of the camera's adapter follows. 409 `no_frame_yet` before the camera's first frame, 409 \
        `label_exists` for a bay labelled on that frame already, 422 `invalid_label` for a bay \
        not in the layout (naming the known ones). Audited.",
    params(("id" = String, Path, description = "The lot.")),
    request_body = LabelBody,
    responses((status = 201, description = "Created", body = Labelled))
)]
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

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LotCalibration {
    lot: String,
    cameras: Vec<CameraCalibration>,
}

#[utoipa::path(
    get,
    path = "/v1/lots/{id}/calibration",
    operation_id = "calibration",
    tag = "operators",
    security(("operatorKey" = [])),
    summary = "Each camera's labels, fits, adapter and least sure bays",
    description = "Per camera: labels, fits (both leave-one-frame-out accuracies), the active adapter, and \
        the bays the model is least sure of (label those next).",
    params(("id" = String, Path, description = "The lot.")),
    responses((status = 200, description = "OK", body = LotCalibration))
)]
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
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdapterBody {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, required = true, minimum = 1)]
    version: Option<Option<i64>>,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(deserializer).map(Some)
}

#[utoipa::path(
    post,
    path = "/v1/lots/{id}/cameras/{camera}/adapter",
    operation_id = "choose_adapter",
    tag = "operators",
    security(("operatorKey" = [])),
    summary = "Choose the camera's adapter (`{\"version\": N}`) or roll back to the universal model (`{\"version\": null}`)",
    description = "Choose the camera's adapter (`{\"version\": N}`) or roll back to the universal model \
        (`{\"version\": null}`); every replica swaps within seconds. 404 `unknown_adapter` for a \
        version the camera never had. Audited.",
    params(("id" = String, Path, description = "The lot."), ("camera" = String, Path, description = "The layout's bay camera.")),
    request_body = AdapterBody,
    responses((status = 200, description = "OK", body = CameraCalibration))
)]
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

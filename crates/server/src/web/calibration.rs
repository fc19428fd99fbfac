//! The dashboard's calibration panel: per camera, the operator's labels, how the latest adapter
//! fit scored against the universal model (both cross-validated leave one frame out), which
//! version reads the camera now, the fit history, the bays to label next, and for admins a
//! rollback to an earlier version or to the universal model. The data is
//! [`crate::calibration::overview`]; the rollback calls [`crate::calibration::activate`].

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::dashboard::form_operator;
use super::{csrf_field, local_time, page, redirect, respond};
use crate::AppState;
use crate::calibration::{AdapterVersion, CameraCalibration};

/// The panel's element id for `camera` of `lot`, also the fragment a label's redirect goes to.
pub(super) fn anchor(lot: &str, camera: &str) -> String {
    let safe = |text: &str| text.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect::<String>();
    format!("calibration-{}-{}", safe(lot), safe(camera))
}

/// `0.975` as `97.5 %`.
fn percent(fraction: f64) -> String {
    format!("{:.1} %", fraction * 100.0)
}

/// Whether the fit beat the universal model on its own labels, i.e. was kept rather than refused.
fn kept(version: &AdapterVersion) -> bool {
    version.adapted_accuracy > version.universal_accuracy
}

/// One lot's panel. `cameras` is the overview, or why it could not be had.
pub(super) fn panel(
    state: &AppState,
    lot: &str,
    cameras: &Result<Vec<CameraCalibration>, String>,
    csrf: &str,
    admin: bool,
) -> Markup {
    html! {
        section.calibration aria-labelledby=(format!("calibration-h-{lot}")) data-lot=(lot) {
            h2 id=(format!("calibration-h-{lot}")) { "Calibration of lot " (lot) }
            @match cameras {
                Err(why) => { p.error role="alert" { "The calibration could not be read: " (why) } },
                Ok(cameras) => { @for camera in cameras { (camera_panel(state, lot, camera, csrf, admin)) } },
            }
        }
    }
}

fn camera_panel(state: &AppState, lot: &str, camera: &CameraCalibration, csrf: &str, admin: bool) -> Markup {
    let labels = camera.free_labels + camera.occupied_labels;
    // What the admin can switch to: the universal model when an adapter reads, and every other
    // version that beat it.
    let choices: Vec<&AdapterVersion> = camera.versions.iter().filter(|v| !v.active && kept(v)).collect();
    html! {
        article.camera-calibration id=(anchor(lot, &camera.camera)) data-camera=(camera.camera) {
            h3 { "Camera " (camera.camera) }
            @if camera.fitting {
                p.fitting role="status" { "Fitting a new adapter from the labels\u{2026} reload in a moment to see how it scored." }
            }
            @if let Some(problem) = &camera.fit_problem {
                p.error.fit-problem { "The last fit made no adapter: " (problem) }
            }
            dl.facts {
                dt { "Labels" }
                dd.labels {
                    @if labels == 0 {
                        "None yet: correct or confirm a frame on the map above."
                    } @else {
                        (camera.free_labels) " free, " (camera.occupied_labels) " occupied, from " (camera.frames) " "
                        (if camera.frames == 1 { "frame" } else { "frames" })
                    }
                }
                dt { "Reads with" }
                dd.active {
                    @match camera.active_version {
                        Some(version) => { "adapter version " (version) },
                        None => "the universal model",
                    }
                }
                dt { "Latest fit, leave one frame out" }
                dd.accuracy {
                    @match (camera.universal_accuracy, camera.adapted_accuracy) {
                        (Some(universal), Some(adapted)) => {
                            "universal model " strong.universal { (percent(universal)) } ", adapter " strong.adapted { (percent(adapted)) }
                        },
                        _ => "no fit yet",
                    }
                }
            }
            @if !camera.least_sure.is_empty() {
                h4 { "Label these next" }
                p { "The bays the model is least sure of now:" }
                ol.least-sure {
                    @for bay in &camera.least_sure {
                        li data-space=(bay.space) { (bay.space) " (" (percent(f64::from(bay.p_occupied))) " occupied)" }
                    }
                }
            }
            @if !camera.versions.is_empty() {
                h4 { "Fits" }
                table.fits {
                    thead { tr { th { "Version" } th { "Fitted" } th { "By" } th { "Labels" } th { "Universal" } th { "Adapter" } th { "Outcome" } } }
                    tbody { @for version in &camera.versions {
                        tr data-version=(version.version) {
                            td { (version.version) }
                            td { (local_time(state, version.fitted_at)) }
                            td { (version.fitted_by) }
                            td { (version.labels) }
                            td { (percent(version.universal_accuracy)) }
                            td { (percent(version.adapted_accuracy)) }
                            td {
                                // A refusal's note says so and why ("not kept: …").
                                @match (&version.note, version.active) {
                                    (Some(note), false) => { (note) },
                                    (note, true) => { strong { "in use" } @if let Some(note) = note { ": " (note) } },
                                    (None, false) => { (if kept(version) { "kept" } else { "refused" }) },
                                }
                            }
                        }
                    } }
                }
            }
            @if admin && (camera.active_version.is_some() || !choices.is_empty()) {
                form.rollback method="post" action=(format!("/ops/lots/{lot}/cameras/{}/adapter", camera.camera)) {
                    (csrf_field(csrf))
                    label for=(format!("{}-version", anchor(lot, &camera.camera))) { "Read this camera with" }
                    select id=(format!("{}-version", anchor(lot, &camera.camera))) name="version" {
                        @if camera.active_version.is_some() { option value="universal" { "the universal model" } }
                        @for version in &choices {
                            option value=(version.version) { "adapter version " (version.version) " (" (percent(version.adapted_accuracy)) ")" }
                        }
                    }
                    button type="submit" { "Switch" }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct RollbackForm {
    /// A version number, or `universal`.
    version: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /ops/lots/{id}/cameras/{camera}/adapter`: an admin switches the camera's adapter.
pub async fn rollback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((lot, camera)): Path<(String, String)>,
    Form(form): Form<RollbackForm>,
) -> Response {
    let operator = match form_operator(&state, &headers, &form.csrf).await {
        Ok(operator) => operator,
        Err(refused) => return refused,
    };
    if operator.role != valet_store::Role::Admin {
        return (StatusCode::FORBIDDEN, "an admin switches a camera's adapter").into_response();
    }
    let version = match form.version.trim() {
        "universal" => Ok(None),
        number => number.parse::<i64>().map(Some).map_err(|_| {
            (StatusCode::UNPROCESSABLE_ENTITY, format!("{number:?} is not an adapter version: pick one from the list."))
        }),
    };
    let switched = match version {
        Ok(version) => crate::calibration::activate(&state, &lot, &camera, version, operator.name.as_str())
            .await
            .map_err(|e| (e.status(), e.to_string())),
        Err(refused) => Err(refused),
    };
    match switched {
        Ok(()) => redirect(&format!("/ops#{}", anchor(&lot, &camera))),
        Err((status, message)) => respond(&headers, status, |_| {
            page(
                "Adapter not switched",
                html! { a href="/ops" { "Dashboard" } },
                html! { p.error role="alert" { (message) } },
            )
        }),
    }
}

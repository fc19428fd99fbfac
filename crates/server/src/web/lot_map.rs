//! The dashboard's live lot map, and the operator's labels drawn on it: each camera's latest
//! frame with every space coloured by its state (unsure spaces hatched grey, with why), kept live
//! by the lot's SSE stream. Clicking a bay marks the state it really has; the corrections, "this
//! frame is right" and "the lot is empty now" are one form per camera, which works without
//! JavaScript (each bay also has a select), and become labels through [`crate::calibration::label`].
//!
//! Invariant: a label is only stored against the frame the operator was shown. The form carries
//! that frame's time, and a camera that sent a newer one since gets the form refused, not
//! labelled with a picture nobody looked at.

use std::collections::BTreeMap;

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use maud::{Markup, html};
use valet_occupancy::SpaceState;

use super::dashboard::{form_operator, signed_in};
use super::{csrf_field, page, redirect, respond};
use crate::AppState;
use crate::calibration::LabelRequest;
use crate::lots::LiveLot;

/// The hatching unsure spaces are filled with; drawn once per page, used by every map.
pub(super) fn map_defs() -> Markup {
    html! {
        svg.defs width="0" height="0" aria-hidden="true" focusable="false" {
            defs {
                pattern #unsure-hatch width="12" height="12" patternUnits="userSpaceOnUse" patternTransform="rotate(45)" {
                    rect width="12" height="12" fill="#666" {}
                    rect width="5" height="12" fill="#bbb" {}
                }
            }
        }
    }
}

/// The name of a frame on the page and in the form: its time as the lot's stream sends it.
fn frame_name(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// One lot: its counts and each camera's latest frame with the spaces drawn over it, each
/// camera's map in the form that labels it.
pub(super) fn lot_map(lot: &LiveLot, csrf: &str) -> Markup {
    let layout = lot.reader.layout();
    let id = layout.id.to_string();
    let availability = lot.availability();
    // Each seen space's state and, when it is too unsure to count, why.
    let seen: BTreeMap<String, (&'static str, Option<String>)> = lot
        .smoothed()
        .into_iter()
        .filter_map(|(space, smoothed)| smoothed.map(|s| (space.to_string(), (s.state.as_str(), s.unsure_reason()))))
        .collect();
    let lot_name = if layout.name.is_empty() { id.as_str() } else { layout.name.as_str() };
    html! {
        section.lot aria-labelledby=(format!("lot-{id}-h")) data-lot=(id) {
            h2 id=(format!("lot-{id}-h")) { "Lot " (lot_name) }
            p.counts aria-live="polite" {
                span.free { "Free " strong data-count="free" { (availability.counts.lot.free) } }
                span.occupied { "Occupied " strong data-count="occupied" { (availability.counts.lot.occupied) } }
                span.unknown {
                    "Unknown " strong data-count="unknown" { (availability.counts.lot.unknown) }
                    " (unsure " strong data-count="unsure" { (availability.counts.lot.unsure) } ")"
                }
            }
            @for camera in &layout.cameras {
                @let frame = lot.latest_frame_at(camera.id.as_str()).map(|(_, at)| at);
                @let href = format!("/ops/lots/{id}/cameras/{}/frame.jpg", camera.id);
                @let spaces: Vec<_> = layout.spaces.iter().filter(|s| s.camera == camera.id).collect();
                form.label-frame method="post" action=(format!("/ops/lots/{id}/cameras/{}/labels", camera.id)) data-camera=(camera.id) {
                    (csrf_field(csrf))
                    input type="hidden" name="frame" value=(frame.map(frame_name).unwrap_or_default());
                    figure.map {
                        svg viewBox=(format!("0 0 {} {}", camera.width, camera.height)) role="img" aria-label=(format!("Camera {} of lot {id}", camera.id)) {
                            // No frame yet: the spaces alone, on the map's dark ground, until the
                            // stream says one came.
                            @if frame.is_some() {
                                image href=(href) data-href=(href) width=(camera.width) height=(camera.height) {}
                            } @else {
                                image data-href=(href) width=(camera.width) height=(camera.height) {}
                            }
                            @for space in &spaces {
                                @if let Some(quad) = space.quad() {
                                    @let (state, why) = seen.get(space.id.as_str()).map_or(("unknown", None), |(state, why)| (*state, why.as_ref()));
                                    polygon data-space=(space.id) data-seen=(state) data-state=(if why.is_some() { "unsure" } else { state })
                                        points=(quad.iter().map(|[x, y]| format!("{x:.0},{y:.0}")).collect::<Vec<_>>().join(" ")) {
                                        title { (space_title(space.id.as_str(), why.map(String::as_str))) }
                                    }
                                }
                            }
                        }
                        figcaption { "Camera " (camera.id) }
                    }
                    p.hint { "Click a bay whose colour is wrong to mark what is really there (click again to change or clear it), then save. When every other bay is right, press " em { "This frame is right" } " instead." }
                    details.bays {
                        summary { "Correct bays one by one" }
                        div.bay-choices {
                            @for space in &spaces {
                                label {
                                    (space.id)
                                    select name=(format!("bay.{}", space.id)) data-space=(space.id) {
                                        option value="" { "as shown" }
                                        option value="free" { "free" }
                                        option value="occupied" { "occupied" }
                                    }
                                }
                            }
                        }
                    }
                    div.label-actions {
                        button type="submit" name="label" value="bays" { "Save corrections" }
                        button type="submit" name="label" value="confirm" { "This frame is right" }
                        button type="submit" name="label" value="empty" { "The lot is empty now" }
                    }
                }
            }
        }
        // From a file, not inline: the pages' Content-Security-Policy allows no inline script.
        script src="/assets/live-map.js" {}
    }
}

fn space_title(space: &str, unsure: Option<&str>) -> String {
    match unsure {
        Some(why) => format!("Space {space}: unsure, {why}"),
        None => format!("Space {space}"),
    }
}

/// `POST /ops/lots/{id}/cameras/{camera}/labels`: the form's fields in order, since each bay is
/// a field of its own (`bay.A1=occupied`).
pub async fn label(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((lot, camera)): Path<(String, String)>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let field = |name: &str| fields.iter().find(|(key, _)| key == name).map_or("", |(_, value)| value.as_str());
    let operator = match form_operator(&state, &headers, field("csrf")).await {
        Ok(operator) => operator,
        Err(refused) => return refused,
    };
    let corrections: BTreeMap<String, &str> = fields
        .iter()
        .filter_map(|(key, value)| Some((key.strip_prefix("bay.")?.to_owned(), value.as_str())))
        .filter(|(_, value)| !value.is_empty())
        .collect();
    let labelled = match request(&state, &lot, &camera, field("frame"), field("label"), &corrections) {
        Ok(request) => crate::calibration::label(&state, &lot, &camera, request, operator.name.as_str())
            .await
            .map_err(|e| (e.status(), e.to_string())),
        Err(refused) => Err(refused),
    };
    match labelled {
        Ok(labelled) => {
            tracing::info!(lot = %lot, camera = %camera, frame = %labelled.frame, labels = labelled.labels, operator = operator.name.as_str(), "operator labelled a frame");
            redirect(&format!(
                "/ops?labelled={}&camera={}#{}",
                labelled.labels,
                urlencoding(&camera),
                super::calibration::anchor(&lot, &camera)
            ))
        }
        Err((status, message)) => respond(&headers, status, |_| {
            page(
                "Not labelled",
                html! { a href="/ops" { "Dashboard" } },
                html! {
                    p.error role="alert" { (message) }
                    p { a href="/ops" { "Back to the lot map" } }
                },
            )
        }),
    }
}

/// What the operator asked for, checked against the lot as it is now.
fn request(
    state: &AppState,
    lot: &str,
    camera: &str,
    shown: &str,
    action: &str,
    corrections: &BTreeMap<String, &str>,
) -> Result<LabelRequest, (StatusCode, String)> {
    let live = state.lots().get(lot).ok_or((StatusCode::NOT_FOUND, format!("There is no lot {lot:?} (any more).")))?;
    let Some((_, latest)) = live.latest_frame_at(camera) else {
        return Err((
            StatusCode::CONFLICT,
            format!(
                "Camera {camera} has sent no frame yet: labels are cut from its latest frame. Wait until the map shows one, then label it."
            ),
        ));
    };
    let shown = DateTime::parse_from_rfc3339(shown).ok().map(|at| at.with_timezone(&Utc));
    if shown != Some(latest) {
        return Err((
            StatusCode::CONFLICT,
            format!(
                "Camera {camera} sent a new frame after the one on your page, so nothing was labelled. Look at the new frame and label it."
            ),
        ));
    }
    let mut chosen = BTreeMap::new();
    for (space, value) in corrections {
        let state = match *value {
            "free" => SpaceState::Free,
            "occupied" => SpaceState::Occupied,
            other => {
                return Err((
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("Bay {space} cannot be {other:?}: a bay is free or occupied."),
                ));
            }
        };
        chosen.insert(space.clone(), state);
    }
    match action {
        "bays" if chosen.is_empty() => Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            "No bay was chosen: click each bay whose colour is wrong (or pick it under \u{201c}Correct bays one by one\u{201d}), then save.".to_owned(),
        )),
        "bays" => Ok(LabelRequest::Spaces(chosen)),
        "confirm" if chosen.is_empty() => Ok(LabelRequest::ConfirmFrame),
        // "Right except these": the corrected bays as chosen, every other bay as the map shows it.
        "confirm" => {
            let mut frame: BTreeMap<String, SpaceState> = shown_states(&live, camera);
            frame.extend(chosen);
            Ok(LabelRequest::Spaces(frame))
        }
        "empty" => match chosen.iter().find(|(_, state)| **state == SpaceState::Occupied) {
            Some((space, _)) => Err((
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("You marked bay {space} occupied, so the lot is not empty: save that correction instead."),
            )),
            None => Ok(LabelRequest::LotEmpty),
        },
        other => Err((StatusCode::UNPROCESSABLE_ENTITY, format!("Unknown label action {other:?}."))),
    }
}

/// The states the map shows for `camera`'s bays and vouches for: seen, not unsure (an unsure bay
/// shows no state), and not about to flip (the map still shows the old state while the frame
/// already shows the new one; the service leaves those out of a plain confirmation too).
fn shown_states(lot: &LiveLot, camera: &str) -> BTreeMap<String, SpaceState> {
    let layout = lot.reader.layout();
    lot.smoothed()
        .into_iter()
        .filter(|(space, _)| layout.spaces.iter().any(|s| s.id == *space && s.camera.as_str() == camera))
        .filter_map(|(space, smoothed)| {
            smoothed.filter(|s| !s.unsure && s.confidence >= 0.5).map(|s| (space.to_string(), s.state))
        })
        .collect()
}

/// Enough of percent-encoding for a camera name in a query string.
fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A camera's latest frame, for the map; operators only (it shows the cars).
pub async fn frame(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((lot, camera)): Path<(String, String)>,
) -> Response {
    if signed_in(&state, &headers).await.is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match state.lots().get(&lot).and_then(|l| l.latest_frame(&camera)) {
        Some(jpeg) => {
            ([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "no-store")], jpeg).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use valet_lot::{FrameReading, SpaceReading};
    use valet_occupancy::OccupancyClassifier;

    use super::*;
    use crate::lots::Lots;

    #[test]
    fn an_unsure_bay_is_drawn_hatched_with_why_and_counted_apart() {
        let lots = Lots::default();
        let lot =
            lots.put(valet_lot::synthetic::grid_layout(2, 640, 480), Arc::new(OccupancyClassifier::bundled().unwrap()));
        let layout = lot.reader.layout();
        let reading = FrameReading {
            camera: layout.cameras[0].id.clone(),
            spaces: layout
                .spaces
                .iter()
                .zip([0.97, 0.45])
                .map(|(s, p_occupied)| SpaceReading { space: s.id.clone(), p_occupied, p_universal: None })
                .collect(),
            warnings: Vec::new(),
            warp_ms: 0.0,
            model_ms: 0.0,
            adapted: false,
        };
        lot.apply(layout.cameras[0].id.as_str(), &reading, Utc::now());
        let page = lot_map(&lot, "token").into_string();
        let (sure, unsure) = (&layout.spaces[0].id, &layout.spaces[1].id);
        assert!(page.contains(&format!(r#"data-space="{sure}" data-seen="occupied" data-state="occupied""#)), "{page}");
        assert!(page.contains(&format!(r#"data-space="{unsure}" data-seen="free" data-state="unsure""#)), "{page}");
        assert!(page.contains(&format!("Space {unsure}: unsure, weak evidence: 45 % occupied")), "{page}");
        assert!(page.contains(r#"data-count="unsure">1<"#), "{page}");
    }
}

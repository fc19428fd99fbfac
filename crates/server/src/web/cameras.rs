//! The dashboard's Cameras page (`/ops/cameras`): every gate camera with its health (pulled ones:
//! connected, last frame, fps, passages, errors, reconnects, the last error; pushed ones: the last
//! read), and for admins a form to add a pulled camera and a button to remove one. The data and
//! the changes are [`crate::cameras`]'s, as for `/v1/cameras`.

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use valet_garage::Direction;

use super::dashboard::{form_operator, nav, signed_in};
use super::{csrf_field, local_time, page, redirect, respond};
use crate::AppState;
use crate::cameras::{self, CameraKind, CameraView, NewCamera};

pub async fn page_of_cameras(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(operator) = signed_in(&state, &headers).await else { return redirect("/ops/login") };
    let admin = operator.role == valet_store::Role::Admin;
    let cameras = cameras::overview(&state).await.map_err(|e| e.to_string());
    respond(&headers, StatusCode::OK, |csrf| {
        page(
            "Cameras",
            nav(csrf, Some(&operator)),
            html! {
                @match &cameras {
                    Err(why) => { p.error role="alert" { "The cameras could not be read: " (why) } },
                    Ok(cameras) => { (list(&state, cameras, csrf, admin)) },
                }
                @if admin { (add_form(csrf, None)) }
            },
        )
    })
}

fn list(state: &AppState, cameras: &[CameraView], csrf: &str, admin: bool) -> Markup {
    html! {
        @if cameras.is_empty() {
            p #no-cameras { "No gate camera yet: add a pulled one below, or let a camera post its frames or reads." }
        } @else {
            table #cameras {
                thead { tr {
                    th { "Camera" } th { "Kind" } th { "Direction" } th { "Source" } th { "Health" }
                    @if admin { th { "Remove" } }
                } }
                tbody { @for camera in cameras {
                    tr data-camera=(camera.name) data-kind=(kind(camera.kind)) {
                        td { strong { (camera.name) } @if let Some(lane) = &camera.lane { br; small { "lane " (lane) } } }
                        td { (kind(camera.kind)) }
                        td { (direction(camera.direction)) }
                        td.url { @if let Some(url) = &camera.url { code { (url) } } @else { "posts its frames or reads" } }
                        td.health { (health(state, camera)) }
                        @if admin { td { @if camera.kind == CameraKind::Pulled {
                            form.remove method="post" action=(format!("/ops/cameras/{}/remove", camera.name)) {
                                (csrf_field(csrf))
                                button type="submit" aria-label=(format!("Remove camera {}", camera.name)) { "Remove" }
                            }
                        } } }
                    }
                } }
            }
        }
    }
}

fn health(state: &AppState, camera: &CameraView) -> Markup {
    html! {
        @if let Some(problem) = &camera.problem {
            span.error { "Not pulled: " (problem) }
        } @else if let Some(health) = &camera.health {
            span.status { @if health.connected { "connected" } @else { "not connected" } }
            ", " (format!("{:.1}", health.fps)) " fps, " (health.passages) " cars, "
            (health.errors) " errors, " (health.reconnects) " reconnects"
            @if let Some(at) = health.last_frame_at { br; small { "last frame " (local_time(state, at)) } }
            @if let Some(error) = &health.last_error { br; small.error { "last error: " (error) } }
        } @else if let Some(seen) = camera.last_seen {
            "last read " (local_time(state, seen))
        } @else {
            "pulled by another replica"
        }
    }
}

fn add_form(csrf: &str, error: Option<&str>) -> Markup {
    html! {
        section aria-labelledby="add-camera-h" {
            h2 #add-camera-h { "Add a pulled camera" }
            @if let Some(error) = error { p.error role="alert" #camera-error { (error) } }
            form.card #add-camera method="post" action="/ops/cameras" {
                (csrf_field(csrf))
                label for="camera-name" { "Name" }
                input #camera-name name="name" required pattern="[A-Za-z0-9._\\-]{1,64}";
                label for="camera-url" { "URL (rtsp:// or http:// MJPEG or snapshot)" }
                input #camera-url name="url" required autocomplete="off";
                label for="camera-direction" { "Direction" }
                select #camera-direction name="direction" {
                    option value="entry" { "entry" }
                    option value="exit" { "exit" }
                }
                label for="camera-lane" { "Lane (optional)" }
                input #camera-lane name="lane";
                label for="camera-region" { "Plate region (optional: us, eu, …)" }
                input #camera-region name="region";
                label for="camera-every" { "Snapshot every (ms)" }
                input #camera-every name="every_ms" type="number" min="100" max="60000" value="500";
                button type="submit" { "Add camera" }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct AddForm {
    name: String,
    url: String,
    direction: String,
    #[serde(default)]
    lane: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    every_ms: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /ops/cameras`: an admin adds a pulled camera.
pub async fn add(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<AddForm>) -> Response {
    let operator = match form_operator(&state, &headers, &form.csrf).await {
        Ok(operator) => operator,
        Err(refused) => return refused,
    };
    if operator.role != valet_store::Role::Admin {
        return (StatusCode::FORBIDDEN, "an admin adds and removes cameras").into_response();
    }
    let parsed = parse(&form);
    let added = match parsed {
        Ok(camera) => {
            cameras::add(&state, &camera, operator.name.as_str()).await.map_err(|e| (e.status(), e.to_string()))
        }
        Err(message) => Err((StatusCode::UNPROCESSABLE_ENTITY, message)),
    };
    match added {
        Ok(_) => redirect("/ops/cameras"),
        Err((status, message)) => respond(&headers, status, |csrf| {
            page("Camera not added", nav(csrf, Some(&operator)), add_form(csrf, Some(&message)))
        }),
    }
}

fn parse(form: &AddForm) -> Result<NewCamera, String> {
    let direction = match form.direction.trim() {
        "entry" => Direction::Entry,
        "exit" => Direction::Exit,
        other => return Err(format!("the direction is entry or exit, not {other:?}")),
    };
    let every_ms = match form.every_ms.trim() {
        "" => None,
        ms => Some(ms.parse::<u64>().map_err(|_| format!("{ms:?} is not a number of milliseconds"))?),
    };
    let optional = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
    Ok(NewCamera {
        name: form.name.clone(),
        url: form.url.clone(),
        direction,
        lane: optional(&form.lane),
        region: optional(&form.region),
        every_ms,
    })
}

#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /ops/cameras/{name}/remove`: an admin removes a pulled camera.
pub async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<RemoveForm>,
) -> Response {
    let operator = match form_operator(&state, &headers, &form.csrf).await {
        Ok(operator) => operator,
        Err(refused) => return refused,
    };
    if operator.role != valet_store::Role::Admin {
        return (StatusCode::FORBIDDEN, "an admin adds and removes cameras").into_response();
    }
    match cameras::remove(&state, &name, operator.name.as_str()).await {
        Ok(()) => redirect("/ops/cameras"),
        Err(e) => respond(&headers, e.status(), |csrf| {
            page("Camera not removed", nav(csrf, Some(&operator)), html! { p.error role="alert" { (e.to_string()) } })
        }),
    }
}

fn kind(kind: CameraKind) -> &'static str {
    match kind {
        CameraKind::Pulled => "pulled",
        CameraKind::Pushed => "pushed",
    }
}

fn direction(direction: Direction) -> &'static str {
    match direction {
        Direction::Entry => "entry",
        Direction::Exit => "exit",
    }
}

//! The web pages of the query function, rendered on the server: the driver portal (sign up, the
//! account, pay by link) and the operator dashboard (`/ops`: the lot map, live, where bays are
//! labelled; each camera's calibration; open sessions; the review queue; the gate cameras and their health). Plain HTML forms, one small script for the live map, usable on a phone
//! and with a keyboard. Every page is sent with a strict Content-Security-Policy
//! ([`CONTENT_SECURITY_POLICY`]: no inline script or style) and the usual security headers.
//!
//! Invariants: every form that changes something carries a CSRF token that must match the
//! `valet_csrf` cookie (double submit), and every cookie is `HttpOnly; SameSite=Strict`, so
//! another site can neither read nor ride a session. Operators sign in with their name and key
//! and get a login that lapses ([`LOGIN_HOURS`]); drivers keep the token they got at sign-up (or
//! at a sign-in with a plate and their recovery code) in a cookie, revoked when they sign out. The pages call the same `valet-gate` service as the JSON API.

mod account;
mod calibration;
mod cameras;
mod charges;
mod dashboard;
mod lot_map;
mod pay_by_plate;
mod portal;

use axum::Router;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};

use crate::AppState;

/// How long an operator's login lasts.
pub const LOGIN_HOURS: i64 = 8;
const CSRF_COOKIE: &str = "valet_csrf";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(portal::home))
        .route("/signup", post(portal::sign_up))
        .route("/me", get(portal::account))
        .route("/me/plates", post(portal::add_plate))
        .route("/me/plates/{plate}/remove", post(portal::remove_plate))
        .route("/me/email", post(portal::set_email))
        .route("/me/stays/{session}/pay", post(portal::pay_now))
        .route("/me/signout", post(account::sign_out))
        .route("/me/recovery-code", post(account::new_recovery_code))
        .route("/signin", get(account::sign_in_form).post(account::sign_in))
        .route("/pay", post(pay_by_plate::find_stay))
        .route("/pay/{link}", get(portal::quote).post(portal::pay))
        .route("/ops/login", get(dashboard::login_form).post(dashboard::login))
        .route("/ops/logout", post(dashboard::logout))
        .route("/ops", get(dashboard::dashboard))
        .route("/ops/review/{id}", post(dashboard::decide))
        .route("/ops/review/{id}/plate", post(dashboard::correct_plate))
        .route("/ops/review/{id}/crop.jpg", get(dashboard::review_crop))
        .route("/ops/barriers/open", post(dashboard::open_barrier))
        .route("/ops/refunds/{session}", post(dashboard::refund))
        .route("/ops/charges/reconcile", post(charges::reconcile))
        .route("/ops/charges/{session}/retry", post(charges::retry))
        .route("/ops/lists", post(dashboard::change_list))
        .route("/ops/cameras", get(cameras::page_of_cameras).post(cameras::add))
        .route("/ops/cameras/{name}/remove", post(cameras::remove))
        .route("/ops/lots/{id}/cameras/{camera}/frame.jpg", get(lot_map::frame))
        .route("/ops/lots/{id}/cameras/{camera}/labels", post(lot_map::label))
        .route("/ops/lots/{id}/cameras/{camera}/adapter", post(calibration::rollback))
        .route("/assets/valet.css", get(stylesheet))
        .route("/assets/card.js", get(card_script))
        .route("/assets/live-map.js", get(live_map_script))
        // Browsers ask for it on every first visit: an answer, not a logged 404.
        .route("/favicon.ico", get(favicon))
        .layer(axum::middleware::map_response(security_headers))
}

/// What every page may load and do: scripts, styles and images from Valet itself (the card form's
/// Stripe.js and its frames excepted), no inline script or style, no plugins, no framing by
/// another site, forms posted only back to Valet, and no referrer (a pay link's token is in its URL).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' https://js.stripe.com; \
     frame-src https://js.stripe.com https://hooks.stripe.com; connect-src 'self' https://api.stripe.com; \
     img-src 'self' data:; style-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn stylesheet() -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("valet.css"))
}

async fn favicon() -> impl IntoResponse {
    (
        [
            (axum::http::header::CONTENT_TYPE, "image/svg+xml"),
            (axum::http::header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("favicon.svg"),
    )
}

async fn card_script() -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("card.js"))
}

async fn live_map_script() -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("live-map.js"))
}

/// The page shell: title, stylesheet, a skip link and the content.
fn page(title: &str, nav: Markup, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Valet" }
                link rel="stylesheet" href="/assets/valet.css";
                link rel="icon" type="image/svg+xml" href="/favicon.ico";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header { span.brand { "Valet" } nav { (nav) } }
                main #main { h1 { (title) } (content) }
            }
        }
    }
}

/// A page, with a fresh CSRF cookie when the browser has none.
fn respond(headers: &HeaderMap, status: StatusCode, render: impl FnOnce(&str) -> Markup) -> Response {
    let (token, fresh) = match cookie(headers, CSRF_COOKIE) {
        Some(token) if token.len() == 64 => (token, false),
        _ => (crate::functions::cloudevents::fresh_id() + &crate::functions::cloudevents::fresh_id(), true),
    };
    let mut response = (status, render(&token)).into_response();
    if fresh {
        set_cookie(&mut response, CSRF_COOKIE, &token, "/", None);
    }
    response
}

/// Too many failed sign-ins from this address or at this name: the wait, said plainly, with
/// `Retry-After`.
fn too_many_attempts(headers: &HeaderMap, wait: std::time::Duration) -> Response {
    let minutes = wait.as_secs().div_ceil(60);
    let mut response = respond(headers, StatusCode::TOO_MANY_REQUESTS, |_| {
        page(
            "Too many attempts",
            html! { a href="/" { "Home" } },
            html! {
                p.error role="alert" { "Too many sign-in attempts failed. Try again in " (minutes) (if minutes == 1 { " minute." } else { " minutes." }) }
            },
        )
    });
    response
        .headers_mut()
        .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(wait.as_secs().max(1)));
    response
}

/// The hidden form field every changing form carries.
fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// Whether a form's token matches the browser's cookie.
fn csrf_ok(headers: &HeaderMap, submitted: &str) -> bool {
    cookie(headers, CSRF_COOKIE).is_some_and(|token| !submitted.is_empty() && token == submitted)
}

fn refused_csrf() -> Response {
    (StatusCode::FORBIDDEN, page("Form expired", html! {}, html! {
        p { "This form was not sent from this site's page, or the page is too old. Go back, reload and try again." }
    }))
        .into_response()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

fn set_cookie(response: &mut Response, name: &str, value: &str, path: &str, max_age: Option<i64>) {
    let age = max_age.map(|s| format!("; Max-Age={s}")).unwrap_or_default();
    let text = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict{age}");
    if let Ok(value) = HeaderValue::from_str(&text) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}

fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(axum::http::header::LOCATION, to.to_owned())]).into_response()
}

/// A time as every page shows it: the garage's local time (the tariff's UTC offset), to the minute.
fn local_time(state: &AppState, at: chrono::DateTime<chrono::Utc>) -> String {
    let offset = state.gate().tariff().spec().utc_offset_minutes;
    let zone = chrono::FixedOffset::east_opt(offset * 60).unwrap_or(chrono::FixedOffset::east_opt(0).expect("UTC"));
    at.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string()
}

/// A money amount as people read it: `€6.75`.
fn money(amount: valet_garage::Money) -> String {
    amount.to_string()
}

//! A driver's way back into the portal: the recovery code shown after sign-up (and after every
//! sign-in, since a code signs in once), the sign-in page that takes a plate and that code on a new
//! phone, a new code on demand, and sign-out, which revokes the browser's token.

use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use valet_garage::{Plate, RecoveryCode};

use super::portal::{CsrfForm, DRIVER_COOKIE, failed, nav, signed_in_driver};
use super::{cookie, csrf_field, csrf_ok, page, redirect, refused_csrf, respond, set_cookie, too_many_attempts};
use crate::AppState;
use crate::throttle::{Source, Subject};

/// A year: the cookie is the browser's credential until it signs out.
const COOKIE_SECONDS: i64 = 365 * 24 * 3600;

/// The page that shows a recovery code, the one time it is shown, with the driver signed in by
/// `token` (set as the cookie). Kept out of every cache.
pub(super) fn recovery_code_page(
    headers: &HeaderMap,
    title: &str,
    lead: &str,
    code: &RecoveryCode,
    token: Option<&str>,
) -> Response {
    let mut response = respond(headers, StatusCode::OK, |_| {
        page(
            title,
            nav(true),
            html! {
                p { (lead) }
                section.card aria-labelledby="code-h" {
                    h2 #code-h { "Your recovery code" }
                    p #recovery-code.code { (code.expose()) }
                    p { "Write it down or keep it in your password manager: it is shown only now. With it and one of your plates you sign in on another phone (" a href="/signin" { "Sign in" } "). Each code works once; signing in gives you a new one." }
                }
                p { a #continue href="/me" { "Continue to my account" } }
            },
        )
    });
    if let Some(token) = token {
        set_cookie(&mut response, DRIVER_COOKIE, token, "/", Some(COOKIE_SECONDS));
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn sign_in_page(headers: &HeaderMap, status: StatusCode, refusal: Option<&str>) -> Response {
    respond(headers, status, |csrf| {
        page(
            "Sign in",
            nav(false),
            html! {
                @if let Some(refusal) = refusal { p.error role="alert" { (refusal) } }
                p { "On a new phone or after signing out: one of your plates and the recovery code you were given." }
                form.card method="post" action="/signin" {
                    (csrf_field(csrf))
                    label for="signin-plate" { "A plate on your account" }
                    input #signin-plate name="plate" required autocomplete="off" autocapitalize="characters";
                    label for="signin-code" { "Recovery code" }
                    input #signin-code name="recovery_code" required autocomplete="off" autocapitalize="characters" placeholder="XXXX-XXXX-XXXX-XXXX-XXXX";
                    button type="submit" { "Sign in" }
                }
                p { "Lost the code? Your plates still open the gate and are charged as before; sign in on the phone you signed up with to get a new code." }
            },
        )
    })
}

pub async fn sign_in_form(headers: HeaderMap) -> Response {
    sign_in_page(&headers, StatusCode::OK, None)
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    plate: String,
    recovery_code: String,
    #[serde(default)]
    csrf: String,
}

/// Any refusal, a plate or code that does not even parse included, reads the same.
pub async fn sign_in(
    State(state): State<AppState>,
    source: Source,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    if !csrf_ok(&headers, &form.csrf) {
        return refused_csrf();
    }
    let guesser = source.with([Subject::plate(&form.plate)]);
    if let Err(wait) = state.throttle().check(&guesser) {
        return too_many_attempts(&headers, wait);
    }
    let signed = match (Plate::parse(&form.plate), RecoveryCode::parse(&form.recovery_code)) {
        (Ok(plate), Ok(code)) => state.gate().sign_in(&plate, &code).await,
        _ => Err(valet_gate::DeskError::SignInRefused),
    };
    if matches!(signed, Err(valet_gate::DeskError::SignInRefused)) {
        state.throttle().failed(&guesser);
    }
    match signed {
        Ok(signed) => recovery_code_page(
            &headers,
            "Signed in",
            "Welcome back. The code you used is spent, and any other phone signed in to this account was signed out; here is your new one.",
            &signed.recovery_code,
            Some(signed.token.expose()),
        ),
        Err(valet_gate::DeskError::SignInRefused) => {
            sign_in_page(&headers, StatusCode::UNAUTHORIZED, Some(&valet_gate::DeskError::SignInRefused.to_string()))
        }
        Err(e) => {
            tracing::error!(error = %e, "driver sign-in failed");
            sign_in_page(
                &headers,
                StatusCode::SERVICE_UNAVAILABLE,
                Some("Signing in is not possible right now; try again in a minute."),
            )
        }
    }
}

/// A new recovery code for the signed-in driver; the old one stops working.
pub async fn new_recovery_code(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !csrf_ok(&headers, &form.csrf) {
        return refused_csrf();
    }
    let Some(driver) = signed_in_driver(&state, &headers).await else { return redirect("/signin") };
    match state.gate().new_recovery_code(&driver).await {
        Ok(code) => recovery_code_page(&headers, "New recovery code", "Your old code no longer works.", &code, None),
        Err(e) => {
            failed(&headers, "No new code", format!("A new code could not be made: {e}. Your old code still works."))
        }
    }
}

/// Signs this browser out: its token is revoked, not only its cookie cleared, so a copy of the
/// cookie opens nothing either.
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    if !csrf_ok(&headers, &form.csrf) {
        return refused_csrf();
    }
    if let Some(token) = cookie(&headers, DRIVER_COOKIE)
        && let Err(e) = state.gate().sign_out(&token).await
    {
        tracing::error!(error = %e, "driver sign-out could not revoke the token");
    }
    let mut response = redirect("/");
    set_cookie(&mut response, DRIVER_COOKIE, "", "/", Some(0));
    response
}

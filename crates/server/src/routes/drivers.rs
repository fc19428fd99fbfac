//! The driver's side: sign up once (`POST /v1/drivers`), then with the token from the answer see
//! and change the account (`/v1/me…`); on a new device, sign in with a plate and the recovery code
//! from the answer (`POST /v1/drivers/sign-in`). Pay-by-plate needs no account: the link shown at
//! the gate is the capability (`/v1/pay/{link}`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use valet_garage::{ChargeState, LinkToken, PaymentMethodToken, Plate, RecoveryCode};
use valet_store::{SessionFilter, SessionRecord};

use super::{ApiJson, ApiQuery, Page};
use crate::AppState;
use crate::api::{
    CardSetupAnswer, DriverView, EmailBody, PaidAnswer, PayBody, PlateBody, Quote, RecoveryCodeAnswer, SessionView,
    SignIn, SignUp, SignedInAnswer, SignedUpAnswer,
};
use crate::auth::AuthedDriver;
use crate::error::ApiError;
use crate::throttle::{Source, Subject};

#[utoipa::path(
    post,
    path = "/v1/drivers",
    operation_id = "sign_up",
    tag = "public",
    summary = "Sign up with plates and a payment method (never a card number)",
    description = "Sign up with plates and a payment method (never a card number); returns the driver's \
        token and recovery code once. A plate another account holds is refused without saying so \
        (409 `plate_unavailable`).",
    request_body = SignUp,
    responses((status = 201, description = "Created", body = SignedUpAnswer))
)]
pub async fn sign_up(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SignUp>,
) -> Result<(StatusCode, Json<SignedUpAnswer>), ApiError> {
    let plates = body.plates.iter().map(|p| parse_plate(p)).collect::<Result<Vec<_>, _>>()?;
    if plates.is_empty() {
        return Err(ApiError::BadRequest("sign up with at least one plate".into()));
    }
    let method = payment_method(&state, body.payment_method.as_deref(), body.card_setup.as_deref()).await?;
    let link = body.link.as_deref().map(parse_link).transpose()?;
    let email = body.email.as_deref().map(parse_email).transpose()?;
    let signed = state.gate().sign_up(plates, method, link).await?;
    if let Some(email) = &email {
        state.gate().set_email(&signed.driver, Some(email)).await?;
    }
    let answer = SignedUpAnswer {
        driver: signed.driver.id.to_string(),
        token: signed.token.expose().to_owned(),
        recovery_code: signed.recovery_code.expose(),
        plates: signed.driver.plates().map(|p| p.display().to_owned()).collect(),
        session: signed.session.map(|s| s.to_string()),
    };
    Ok((StatusCode::CREATED, Json(answer)))
}

/// A plate and a recovery code that do not parse are refused like ones that do not match, so the
/// answer never says which half was wrong.
#[utoipa::path(
    post,
    path = "/v1/drivers/sign-in",
    operation_id = "sign_in",
    tag = "public",
    summary = "Sign in on a new device with a plate on the account and its recovery code",
    description = "Sign in on a new device with a plate on the account and its recovery code: a fresh \
        token, and a new code (each code signs in once; other devices are signed out). A wrong \
        plate or code is one 401 `sign_in_refused`.",
    request_body = SignIn,
    responses((status = 200, description = "OK", body = SignedInAnswer))
)]
pub async fn sign_in(
    State(state): State<AppState>,
    source: Source,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Json<SignedInAnswer>, ApiError> {
    let guesser = source.with([Subject::plate(&body.plate)]);
    state.throttle().check(&guesser).map_err(ApiError::TooManyAttempts)?;
    let signed = match (Plate::parse(&body.plate), RecoveryCode::parse(&body.recovery_code)) {
        (Ok(plate), Ok(code)) => state.gate().sign_in(&plate, &code).await,
        _ => Err(valet_gate::DeskError::SignInRefused),
    };
    if matches!(signed, Err(valet_gate::DeskError::SignInRefused)) {
        state.throttle().failed(&guesser);
    }
    let signed = signed?;
    Ok(Json(SignedInAnswer {
        driver: signed.driver.id.to_string(),
        token: signed.token.expose().to_owned(),
        recovery_code: signed.recovery_code.expose(),
        plates: signed.driver.plates().map(|p| p.display().to_owned()).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/v1/me/recovery-code",
    operation_id = "new_recovery_code",
    tag = "drivers",
    security(("driverToken" = [])),
    summary = "A new recovery code, shown once",
    description = "A new recovery code, shown once; the old one stops working.",
    responses((status = 201, description = "Created", body = RecoveryCodeAnswer))
)]
pub async fn new_recovery_code(
    State(state): State<AppState>,
    AuthedDriver(driver): AuthedDriver,
) -> Result<(StatusCode, Json<RecoveryCodeAnswer>), ApiError> {
    let code = state.gate().new_recovery_code(&driver).await?;
    Ok((StatusCode::CREATED, Json(RecoveryCodeAnswer { recovery_code: code.expose() })))
}

#[utoipa::path(
    post,
    path = "/v1/me/sign-out",
    operation_id = "sign_out",
    tag = "drivers",
    security(("driverToken" = [])),
    summary = "Sign this token out",
    description = "Sign this token out: it opens nothing from now on.",
    responses((status = 204, description = "Done"))
)]
pub async fn sign_out(
    State(state): State<AppState>,
    AuthedDriver(_): AuthedDriver,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    // `AuthedDriver` accepted this header, so it holds a bearer token.
    let token = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let token = token.and_then(|v| v.strip_prefix("Bearer ")).map(str::trim).unwrap_or_default();
    state.gate().sign_out(token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/v1/me",
    operation_id = "me",
    tag = "drivers",
    security(("driverToken" = [])),
    summary = "The signed-up driver's account",
    description = "The signed-up driver's account.",
    responses((status = 200, description = "OK", body = DriverView))
)]
pub async fn me(
    State(state): State<AppState>,
    AuthedDriver(driver): AuthedDriver,
) -> Result<Json<DriverView>, ApiError> {
    let email = state.gate().store().driver_email(driver.id).await?;
    Ok(Json(DriverView {
        driver: driver.id.to_string(),
        plates: driver.plates().map(|p| p.display().to_owned()).collect(),
        payment_method: driver.payment_method.as_str().to_owned(),
        email: email.map(String::from),
    }))
}

/// Sets (or with `null` removes) the address receipts and failed-charge notices go to.
#[utoipa::path(
    put,
    path = "/v1/me/email",
    operation_id = "set_email",
    tag = "drivers",
    security(("driverToken" = [])),
    summary = "Set the address receipts and failed-charge notices are mailed to (`{\"email\": null}` removes it)",
    description = "Set the address receipts and failed-charge notices are mailed to (`{\"email\": null}` \
        removes it); only stays from now on are mailed. 400 for an address that is not one.",
    request_body = EmailBody,
    responses((status = 204, description = "Done"))
)]
pub async fn set_email(
    State(state): State<AppState>,
    AuthedDriver(driver): AuthedDriver,
    ApiJson(body): ApiJson<EmailBody>,
) -> Result<StatusCode, ApiError> {
    let email = body.email.as_deref().map(parse_email).transpose()?;
    state.gate().set_email(&driver, email.as_ref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pays one of the driver's unpaid stays with the card on the account: the link in a
/// failed-charge notice leads here (through the portal's "Pay now").
#[utoipa::path(
    post,
    path = "/v1/me/sessions/{id}/payments",
    operation_id = "pay_now",
    tag = "drivers",
    security(("driverToken" = [])),
    summary = "Pay one of the driver's unpaid stays now with the card on the account (the link in a failed-charge notice)",
    description = "Pay one of the driver's unpaid stays now with the card on the account (the link in a \
        failed-charge notice). 404 for a stay of another account, 409 `not_retryable` for one \
        that is not unpaid. Audited.",
    params(("id" = String, Path, description = "The stay.")),
    responses((status = 201, description = "Created", body = valet_garage::Charge))
)]
pub async fn pay_now(
    State(state): State<AppState>,
    AuthedDriver(driver): AuthedDriver,
    Path(session): Path<String>,
) -> Result<(StatusCode, Json<valet_garage::Charge>), ApiError> {
    let id = valet_garage::SessionId::parse(&session)
        .map_err(|_| ApiError::Missing(format!("no stay {session} on this account")))?;
    let settled = state.gate().pay_now(&driver, id).await?;
    state.metrics().charge_settled(crate::metrics::charge_outcome(settled.charge.state()));
    Ok((StatusCode::CREATED, Json(settled.charge)))
}

#[utoipa::path(
    post,
    path = "/v1/me/plates",
    operation_id = "add_plate",
    tag = "drivers",
    security(("driverToken" = [])),
    summary = "Add a plate to the account",
    description = "Add a plate to the account.",
    request_body = PlateBody,
    responses((status = 201, description = "Created"))
)]
pub async fn add_plate(
    State(state): State<AppState>,
    AuthedDriver(driver): AuthedDriver,
    ApiJson(body): ApiJson<PlateBody>,
) -> Result<StatusCode, ApiError> {
    state.gate().add_plate(&driver, parse_plate(&body.plate)?).await?;
    Ok(StatusCode::CREATED)
}

#[utoipa::path(
    delete,
    path = "/v1/me/plates/{plate}",
    operation_id = "remove_plate",
    tag = "drivers",
    security(("driverToken" = [])),
    summary = "Remove a plate (refused with 409 while its car is inside)",
    description = "Remove a plate (refused with 409 while its car is inside).",
    params(("plate" = String, Path, description = "A plate on the account.")),
    responses((status = 204, description = "Done"))
)]
pub async fn remove_plate(
    State(state): State<AppState>,
    AuthedDriver(driver): AuthedDriver,
    Path(plate): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.gate().remove_plate(&driver, &parse_plate(&plate)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/v1/me/sessions",
    operation_id = "my_sessions",
    tag = "drivers",
    security(("driverToken" = [])),
    summary = "The driver's stays, newest first (`?limit=`)",
    description = "The driver's stays, newest first (`?limit=`).",
    params(Page),
    responses((status = 200, description = "OK", body = Vec<SessionView>))
)]
pub async fn sessions(
    State(state): State<AppState>,
    AuthedDriver(driver): AuthedDriver,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    let records = state.gate().store().sessions(SessionFilter::Driver(driver.id), page.limit()).await?;
    Ok(Json(records.iter().map(session_view).collect()))
}

#[utoipa::path(
    get,
    path = "/v1/me/receipts",
    operation_id = "my_receipts",
    tag = "drivers",
    security(("driverToken" = [])),
    summary = "The driver's receipts, newest first (`?limit=`)",
    description = "The driver's receipts, newest first (`?limit=`).",
    params(Page),
    responses((status = 200, description = "OK", body = Vec<valet_garage::Receipt>))
)]
pub async fn receipts(
    State(state): State<AppState>,
    AuthedDriver(driver): AuthedDriver,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Vec<valet_garage::Receipt>>, ApiError> {
    Ok(Json(state.gate().store().receipts_of_driver(driver.id, page.limit()).await?))
}

/// What an unregistered car owes if its driver pays now.
#[utoipa::path(
    get,
    path = "/v1/pay/{link}",
    operation_id = "quote",
    tag = "public",
    summary = "What an unregistered car owes if paid now",
    description = "What an unregistered car owes if paid now; the link from the gate is the credential.",
    params(("link" = String, Path, description = "The link's token.")),
    responses((status = 200, description = "OK", body = Quote))
)]
pub async fn quote(State(state): State<AppState>, Path(link): Path<String>) -> Result<Json<Quote>, ApiError> {
    let gate = state.gate();
    let record = gate.store().session_by_link(parse_link(&link)?).await?;
    let unknown = || ApiError::Missing("no stay has this link; it may have been paid already".into());
    let session = record.and_then(|r| r.to_session().transpose()).transpose()?.ok_or_else(unknown)?;
    let price = match session.state().exit() {
        Some(exit) => exit.price.clone(),
        None => gate.tariff().price(&session.stay(Utc::now())),
    };
    Ok(Json(Quote {
        session: session.id.to_string(),
        plate: session.plate.display().to_owned(),
        entry: session.entry,
        state: session.state().name().to_owned(),
        price,
    }))
}

#[utoipa::path(
    post,
    path = "/v1/pay/{link}",
    operation_id = "pay",
    tag = "public",
    summary = "Pay by plate",
    description = "Pay by plate: closes the stay, charges the payment method; the car may then leave.",
    params(("link" = String, Path, description = "The link's token.")),
    request_body = PayBody,
    responses((status = 200, description = "OK", body = PaidAnswer))
)]
pub async fn pay(
    State(state): State<AppState>,
    Path(link): Path<String>,
    ApiJson(body): ApiJson<PayBody>,
) -> Result<Json<PaidAnswer>, ApiError> {
    let gate = state.gate();
    let link = parse_link(&link)?;
    let method = payment_method(&state, body.payment_method.as_deref(), body.card_setup.as_deref()).await?;
    let handled = gate.pay_by_link(link, method).await?;
    let session = match &handled.decision.outcome {
        valet_garage::ExitOutcome::Charge { session, .. }
        | valet_garage::ExitOutcome::NothingOwed { session, .. }
        | valet_garage::ExitOutcome::AlreadyClosed { session } => session.to_string(),
        _ => String::new(),
    };
    let charge = handled.charge.as_ref().map(|c| match c.state() {
        ChargeState::Requested { .. } => "requested".to_owned(),
        ChargeState::Succeeded { .. } => "succeeded".to_owned(),
        ChargeState::Failed { reason, .. } => format!("failed: {reason}"),
    });
    Ok(Json(PaidAnswer {
        session,
        charge,
        receipt: handled.receipt,
        leave_within_minutes: gate.config().leave_within_minutes,
    }))
}

pub(crate) fn session_view(record: &SessionRecord) -> SessionView {
    let exit = record.state.exit();
    SessionView {
        id: record.id.to_string(),
        plate: record.plate.as_ref().map(|p| p.display().to_owned()),
        state: record.state.name().to_owned(),
        entry: record.entry,
        exit: exit.map(|e| e.at),
        price: exit.map(|e| e.price.clone()),
        driver: match record.payer {
            valet_garage::Payer::Registered(id) => Some(id.to_string()),
            valet_garage::Payer::Unregistered { .. } => None,
        },
        permit: record.permit.map(|p| p.to_string()),
    }
}

pub(crate) fn parse_plate(text: &str) -> Result<Plate, ApiError> {
    Plate::parse(text).map_err(|e| ApiError::BadRequest(format!("plate {text:?}: {e}")))
}

/// Starts a card setup in Stripe's own card fields (`POST /v1/card-setups`); only with the Stripe
/// gateway and its publishable key configured.
#[utoipa::path(
    post,
    path = "/v1/card-setups",
    operation_id = "begin_card_setup",
    tag = "public",
    summary = "Start saving a card in Stripe's own card fields",
    description = "With Stripe: start saving a card in Stripe's own card fields; sign up or pay with the \
        returned card_setup.",
    responses((status = 201, description = "Created", body = CardSetupAnswer))
)]
pub async fn begin_card_setup(State(state): State<AppState>) -> Result<(StatusCode, Json<CardSetupAnswer>), ApiError> {
    let Some(key) = state.stripe_card_fields() else {
        return Err(ApiError::Missing("this garage takes no cards through Stripe's fields".into()));
    };
    let setup = state.gate().begin_card_setup().await?;
    let client_secret = setup.client_secret.clone().unwrap_or_default();
    Ok((
        StatusCode::CREATED,
        Json(CardSetupAnswer { card_setup: setup.id, client_secret, publishable_key: key.as_str().to_owned() }),
    ))
}

/// The payment method a sign-up or payment brings. With Stripe it must be a completed card setup,
/// checked with Stripe: a raw `cus_…/pm_…` token could name someone else's card. With the ledger
/// it is the ledger's card token.
async fn payment_method(
    state: &AppState,
    token: Option<&str>,
    card_setup: Option<&str>,
) -> Result<PaymentMethodToken, ApiError> {
    match (state.gate().biller().gateway().name(), token, card_setup) {
        ("ledger", Some(token), None) => {
            PaymentMethodToken::parse(token).map_err(|e| ApiError::BadRequest(e.to_string()))
        }
        ("ledger", ..) => Err(ApiError::BadRequest("give payment_method (the ledger's card token)".into())),
        (_, None, Some(setup)) => Ok(state.gate().saved_card(setup).await?),
        _ => Err(ApiError::BadRequest(
            "give card_setup: a card setup from POST /v1/card-setups, completed in Stripe's card fields".into(),
        )),
    }
}

pub(crate) fn parse_email(text: &str) -> Result<valet_garage::EmailAddress, ApiError> {
    valet_garage::EmailAddress::parse(text).map_err(|e| ApiError::BadRequest(format!("e-mail {text:?}: {e}")))
}

fn parse_link(text: &str) -> Result<LinkToken, ApiError> {
    LinkToken::parse(text).map_err(|_| ApiError::Missing("no stay has this link".into()))
}

//! The driver portal: sign up once (plates and a payment method), see stays and receipts, manage
//! plates, and pay a stay by its link (or by plate) without an account.

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use maud::{Markup, html};
use serde::Deserialize;
use valet_billing::StripePublishableKey;
use valet_garage::{ChargeState, Driver, EmailAddress, LinkToken, PaymentMethodToken, Plate, SessionId, SessionState};
use valet_store::SessionFilter;

use super::{cookie, csrf_field, csrf_ok, local_time, money, page, redirect, refused_csrf, respond};
use crate::AppState;

pub(super) const DRIVER_COOKIE: &str = "valet_driver";
/// The ledger gateway's card: it stands in for the provider's token in the embedded garage.
const LEDGER_CARD: &str = "pm_card_visa";

pub(super) fn nav(signed_in: bool) -> Markup {
    html! {
        a href="/" { "Home" }
        @if signed_in { a href="/me" { "My account" } } @else { a href="/signin" { "Sign in" } }
        a href="/ops" { "Operators" }
    }
}

/// How a driver gives a payment method in a form.
enum CardEntry<'a> {
    /// The ledger gateway (the embedded default): its test card, picked in the form itself.
    Ledger,
    /// Stripe: a second step shows Stripe's own card fields ([`card_step`]); the card number goes
    /// from the browser to Stripe, and the form posts only the setup's id.
    Stripe(&'a StripePublishableKey),
    /// Stripe without a publishable key: no card fields can be shown here.
    Unavailable,
}

fn card_entry(state: &AppState) -> CardEntry<'_> {
    match (state.gate().biller().gateway().name(), state.stripe_card_fields()) {
        ("ledger", _) => CardEntry::Ledger,
        (_, Some(key)) => CardEntry::Stripe(key),
        (_, None) => CardEntry::Unavailable,
    }
}

fn payment_field(state: &AppState) -> Markup {
    match card_entry(state) {
        CardEntry::Ledger => html! {
            label for="payment_method" { "Payment method" }
            select #payment_method name="payment_method" {
                option value=(LEDGER_CARD) { "Garage ledger (test card, no real money)" }
            }
        },
        CardEntry::Stripe(_) => html! {
            p.notice { "Next: your card, in Stripe's own secure form. Valet never sees the card number." }
        },
        CardEntry::Unavailable => html! {
            p.notice { "Card payments go through the payment provider's own page; ask the attendant for the link." }
        },
    }
}

/// The payment method a portal form brings: the ledger's card, or the card the driver saved in
/// Stripe's fields, as Stripe reports it (never what the browser claims).
async fn submitted_method(
    state: &AppState,
    payment_method: &str,
    setup_intent: &str,
) -> Result<PaymentMethodToken, String> {
    match card_entry(state) {
        CardEntry::Ledger => PaymentMethodToken::parse(payment_method).map_err(|e| format!("No payment method: {e}.")),
        CardEntry::Stripe(_) => {
            state.gate().saved_card(setup_intent).await.map_err(|e| format!("Your card was not saved: {e}."))
        }
        CardEntry::Unavailable => Err("Card payments are not set up on this site; ask the attendant.".to_owned()),
    }
}

/// The second step with Stripe: a card setup is started with Stripe, and the page shows Stripe's
/// card fields in a form that posts `fields` again to `action`, with the setup's id added.
async fn card_step(
    state: &AppState,
    key: &StripePublishableKey,
    headers: &HeaderMap,
    action: &str,
    fields: &[(&str, &str)],
    button: &str,
) -> Response {
    let setup = match state.gate().begin_card_setup().await {
        Ok(setup) => setup,
        Err(e) => {
            return failed(
                headers,
                "Card form unavailable",
                format!("The payment provider cannot take a card right now: {e}. Try again in a minute."),
            );
        }
    };
    let secret = setup.client_secret.as_deref().unwrap_or_default();
    let mut response = respond(headers, StatusCode::OK, |csrf| {
        page(
            "Your card",
            nav(false),
            html! {
                form.card method="post" action=(action) data-stripe-key=(key.as_str()) data-client-secret=(secret) {
                    (csrf_field(csrf))
                    @for (name, value) in fields { input type="hidden" name=(name) value=(value); }
                    input type="hidden" name="setup_intent" value=(setup.id);
                    label for="card-element" { "Card" }
                    div #card-element {}
                    p #card-errors role="alert" {}
                    noscript { p.error { "Stripe's card form needs JavaScript." } }
                    button type="submit" { (button) }
                }
                script src="https://js.stripe.com/v3/" {}
                script src="/assets/card.js" {}
            },
        )
    });
    // The setup's client secret lets anyone holding it complete the setup: keep it out of caches.
    response.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    response
}

pub(super) fn failed(headers: &HeaderMap, title: &str, message: String) -> Response {
    respond(headers, StatusCode::UNPROCESSABLE_ENTITY, |_| {
        page(
            title,
            nav(false),
            html! {
                p.error role="alert" { (message) }
                p { a href="/" { "Back" } }
            },
        )
    })
}

pub(super) async fn signed_in_driver(state: &AppState, headers: &HeaderMap) -> Option<Driver> {
    let token = cookie(headers, DRIVER_COOKIE)?;
    state.gate().store().driver_by_token(&token).await.ok().flatten()
}

pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let signed_in = signed_in_driver(&state, &headers).await.is_some();
    let payment = payment_field(&state);
    respond(&headers, StatusCode::OK, |csrf| {
        page(
            "Park without a ticket",
            nav(signed_in),
            html! {
                p { "Sign up once with your plate and a payment method: the gate opens for you, and you are charged when you leave." }
                section aria-labelledby="signup-h" {
                    h2 #signup-h { "Sign up" }
                    form.card method="post" action="/signup" {
                        (csrf_field(csrf))
                        label for="plates" { "Licence plate(s), separated by commas" }
                        input #plates name="plates" required autocomplete="off" autocapitalize="characters" placeholder="AB123CD";
                        label for="email" { "E-mail for receipts (optional)" }
                        input #email name="email" type="email" autocomplete="email";
                        (payment)
                        button type="submit" { "Sign up" }
                    }
                }
                section aria-labelledby="pay-h" {
                    h2 #pay-h { "Pay for a stay" }
                    p { "The code on the entry screen opens your stay directly. Without it: your plate and the hour you drove in." }
                    (super::pay_by_plate::form(&state, csrf))
                }
            },
        )
    })
}

#[derive(Debug, Deserialize)]
pub struct SignUpForm {
    plates: String,
    #[serde(default)]
    payment_method: String,
    /// Stripe's setup, once the driver has entered a card in Stripe's fields.
    #[serde(default)]
    setup_intent: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    csrf: String,
}

/// An optional address typed in a form: blank is none.
fn typed_email(text: &str) -> Result<Option<EmailAddress>, String> {
    match text.trim() {
        "" => Ok(None),
        typed => EmailAddress::parse(typed).map(Some).map_err(|e| format!("That e-mail address cannot be used: {e}.")),
    }
}

pub async fn sign_up(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<SignUpForm>) -> Response {
    if !csrf_ok(&headers, &form.csrf) {
        return refused_csrf();
    }
    let plates: Result<Vec<Plate>, _> =
        form.plates.split(',').map(str::trim).filter(|p| !p.is_empty()).map(Plate::parse).collect();
    if let (Ok(read), CardEntry::Stripe(key)) = (&plates, card_entry(&state))
        && !read.is_empty()
        && form.setup_intent.is_empty()
    {
        let fields = [("plates", form.plates.as_str()), ("email", form.email.as_str())];
        return card_step(&state, key, &headers, "/signup", &fields, "Save card and sign up").await;
    }
    let result = match (plates, typed_email(&form.email)) {
        (_, Err(message)) => Err(message),
        (Ok(plates), _) if plates.is_empty() => Err("Enter at least one plate.".to_owned()),
        (Err(e), _) => Err(format!("That plate cannot be read: {e}.")),
        (Ok(plates), Ok(email)) => match submitted_method(&state, &form.payment_method, &form.setup_intent).await {
            Ok(method) => signed_up_with(&state, plates, method, email).await,
            Err(message) => Err(message),
        },
    };
    match result {
        Ok(signed) => super::account::recovery_code_page(
            &headers,
            "Signed up",
            "Welcome. The gate now opens for your plates, and you are charged when you leave.",
            &signed.recovery_code,
            Some(signed.token.expose()),
        ),
        Err(message) => failed(&headers, "Sign-up failed", message),
    }
}

/// Signs up, then keeps the address the driver gave, if any.
async fn signed_up_with(
    state: &AppState,
    plates: Vec<Plate>,
    method: PaymentMethodToken,
    email: Option<EmailAddress>,
) -> Result<valet_gate::SignedUp, String> {
    let signed = state.gate().sign_up(plates, method, None).await.map_err(|e| e.to_string())?;
    if let Some(email) = &email {
        state.gate().set_email(&signed.driver, Some(email)).await.map_err(|e| e.to_string())?;
    }
    Ok(signed)
}

pub async fn account(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(driver) = signed_in_driver(&state, &headers).await else { return redirect("/") };
    let store = state.gate().store();
    let sessions = store.sessions(SessionFilter::Driver(driver.id), 50).await.unwrap_or_default();
    let receipts = store.receipts_of_driver(driver.id, 50).await.unwrap_or_default();
    let email = store.driver_email(driver.id).await.ok().flatten();
    respond(&headers, StatusCode::OK, |csrf| {
        page(
            "My account",
            html! {
                a href="/" { "Home" }
                form method="post" action="/me/signout" { (csrf_field(csrf)) button.link type="submit" { "Sign out" } }
            },
            html! {
                section aria-labelledby="plates-h" {
                    h2 #plates-h { "Plates" }
                    ul #plates { @for plate in driver.plates() { li {
                    (plate.display()) " "
                    form.inline method="post" action=(format!("/me/plates/{}/remove", plate.display())) {
                        (csrf_field(csrf))
                        button.link type="submit" aria-label=(format!("Remove {}", plate.display())) { "remove" }
                    }
                } } }
                    form.card method="post" action="/me/plates" {
                        (csrf_field(csrf))
                        label for="new-plate" { "Add a plate" }
                        input #new-plate name="plate" required autocapitalize="characters";
                        button type="submit" { "Add" }
                    }
                }
                section aria-labelledby="stays-h" {
                    h2 #stays-h { "Stays" }
                    @if sessions.is_empty() { p { "No stays yet." } } @else {
                        table #stays {
                            thead { tr { th { "Plate" } th { "Entered" } th { "State" } th { "Price" } th { "" } } }
                            tbody { @for s in &sessions { tr {
                                td { (s.plate.as_ref().map(|p| p.display().to_owned()).unwrap_or_default()) }
                                td { (local_time(&state, s.entry)) }
                                td { (s.state.name()) }
                                td { (s.state.exit().map(|e| money(e.price.total)).unwrap_or_default()) }
                                td { @if matches!(s.state, SessionState::Unpaid { .. }) {
                                    form.inline method="post" action=(format!("/me/stays/{}/pay", s.id)) {
                                        (csrf_field(csrf))
                                        button type="submit" { "Pay now" }
                                    }
                                } }
                            } } }
                        }
                    }
                }
                section aria-labelledby="email-h" {
                    h2 #email-h { "E-mail" }
                    p { "Receipts, and a notice if your bank refuses a charge, go to this address." }
                    form.card method="post" action="/me/email" {
                        (csrf_field(csrf))
                        label for="email" { "E-mail address" }
                        input #email name="email" type="email" autocomplete="email" value=(email.as_ref().map(|e| e.as_str()).unwrap_or(""));
                        button type="submit" { "Save" }
                        @if email.is_some() { " " button.link type="submit" name="remove" value="1" { "Stop e-mails" } }
                    }
                }
                section aria-labelledby="recovery-h" {
                    h2 #recovery-h { "Recovery code" }
                    p { "Your recovery code and a plate sign you in on another phone. Lost it? Make a new one; the old one stops working." }
                    form.inline method="post" action="/me/recovery-code" { (csrf_field(csrf)) button type="submit" { "Make a new recovery code" } }
                }
                section aria-labelledby="receipts-h" {
                    h2 #receipts-h { "Receipts" }
                    @if receipts.is_empty() { p { "No receipts yet." } } @else {
                        ul { @for r in &receipts { li { (r.plate) ": " (local_time(&state, r.entry)) " – " (local_time(&state, r.exit)) ", " (money(r.total)) } } }
                    }
                }
            },
        )
    })
}

#[derive(Debug, Deserialize)]
pub struct PlateForm {
    plate: String,
    #[serde(default)]
    csrf: String,
}

pub async fn add_plate(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<PlateForm>) -> Response {
    if !csrf_ok(&headers, &form.csrf) {
        return refused_csrf();
    }
    let Some(driver) = signed_in_driver(&state, &headers).await else { return redirect("/") };
    let added = match Plate::parse(&form.plate) {
        Ok(plate) => state.gate().add_plate(&driver, plate).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match added {
        Ok(()) => redirect("/me"),
        Err(message) => respond(&headers, StatusCode::UNPROCESSABLE_ENTITY, |_| {
            page(
                "Plate not added",
                nav(true),
                html! { p.error role="alert" { (message) } p { a href="/me" { "Back" } } },
            )
        }),
    }
}

pub async fn remove_plate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(plate): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !csrf_ok(&headers, &form.csrf) {
        return refused_csrf();
    }
    let Some(driver) = signed_in_driver(&state, &headers).await else { return redirect("/") };
    let removed = match Plate::parse(&plate) {
        Ok(plate) => state.gate().remove_plate(&driver, &plate).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match removed {
        Ok(()) => redirect("/me"),
        Err(message) => respond(&headers, StatusCode::CONFLICT, |_| {
            page(
                "Plate not removed",
                nav(true),
                html! { p.error role="alert" { (message) } p { a href="/me" { "Back" } } },
            )
        }),
    }
}

#[derive(Debug, Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    email: String,
    /// "Stop e-mails": remove the address whatever the field holds.
    #[serde(default)]
    remove: String,
    #[serde(default)]
    csrf: String,
}

pub async fn set_email(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<EmailForm>) -> Response {
    if !csrf_ok(&headers, &form.csrf) {
        return refused_csrf();
    }
    let Some(driver) = signed_in_driver(&state, &headers).await else { return redirect("/") };
    let typed = if form.remove.is_empty() { typed_email(&form.email) } else { Ok(None) };
    let saved = match typed {
        Ok(email) => state.gate().set_email(&driver, email.as_ref()).await.map_err(|e| e.to_string()),
        Err(message) => Err(message),
    };
    match saved {
        Ok(()) => redirect("/me"),
        Err(message) => failed(&headers, "E-mail not saved", message),
    }
}

/// "Pay now" on an unpaid stay: the card on the account is charged again.
pub async fn pay_now(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(session): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !csrf_ok(&headers, &form.csrf) {
        return refused_csrf();
    }
    let Some(driver) = signed_in_driver(&state, &headers).await else { return redirect("/") };
    let paid = match SessionId::parse(&session) {
        Ok(id) => state.gate().pay_now(&driver, id).await.map_err(|e| e.to_string()),
        Err(_) => Err(format!("There is no stay {session} on your account.")),
    };
    match paid {
        Ok(settled) => {
            state.metrics().charge_settled(crate::metrics::charge_outcome(settled.charge.state()));
            match settled.charge.state() {
                ChargeState::Succeeded { .. } => redirect("/me"),
                ChargeState::Failed { reason, .. } => {
                    failed(&headers, "Not paid", format!("Your bank refused the charge again: {reason}."))
                }
                ChargeState::Requested { .. } => failed(
                    &headers,
                    "Payment pending",
                    "The payment provider has not answered yet; the stay shows as paid once it does.".to_owned(),
                ),
            }
        }
        Err(message) => failed(&headers, "Not paid", message),
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub(super) csrf: String,
}

pub async fn quote(State(state): State<AppState>, headers: HeaderMap, Path(link): Path<String>) -> Response {
    let gate = state.gate();
    let session = match LinkToken::parse(&link) {
        Ok(link) => gate.store().session_by_link(link).await.ok().flatten().and_then(|r| r.to_session().ok().flatten()),
        Err(_) => None,
    };
    let Some(session) = session else {
        return respond(&headers, StatusCode::NOT_FOUND, |_| {
            page("No such stay", nav(false), html! { p { "This link is unknown or the stay is paid already." } })
        });
    };
    let price = match session.state().exit() {
        Some(exit) => exit.price.clone(),
        None => gate.tariff().price(&session.stay(Utc::now())),
    };
    let payment = payment_field(&state);
    respond(&headers, StatusCode::OK, |csrf| {
        page(
            "Pay for your stay",
            nav(false),
            html! {
                dl.card {
                    dt { "Plate" } dd #quote-plate { (session.plate.display()) }
                    dt { "Entered" } dd { (local_time(&state, session.entry)) }
                    dt { "To pay now" } dd #quote-total { (money(price.total)) }
                }
                form.card method="post" action=(format!("/pay/{link}")) {
                    (csrf_field(csrf))
                    (payment)
                    button type="submit" { "Pay " (money(price.total)) }
                }
            },
        )
    })
}

#[derive(Debug, Deserialize)]
pub struct PayForm {
    #[serde(default)]
    payment_method: String,
    #[serde(default)]
    setup_intent: String,
    #[serde(default)]
    csrf: String,
}

pub async fn pay(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(link): Path<String>,
    Form(form): Form<PayForm>,
) -> Response {
    if !csrf_ok(&headers, &form.csrf) {
        return refused_csrf();
    }
    let gate = state.gate();
    if let (Ok(_), CardEntry::Stripe(key)) = (LinkToken::parse(&link), card_entry(&state))
        && form.setup_intent.is_empty()
    {
        return card_step(&state, key, &headers, &format!("/pay/{link}"), &[], "Save card and pay").await;
    }
    let paid = match LinkToken::parse(&link) {
        Err(_) => Err("This link is not valid.".to_owned()),
        Ok(link) => match submitted_method(&state, &form.payment_method, &form.setup_intent).await {
            Ok(method) => gate.pay_by_link(link, method).await.map_err(|e| e.to_string()),
            Err(message) => Err(message),
        },
    };
    let minutes = gate.config().leave_within_minutes;
    match paid {
        Ok(handled) => respond(&headers, StatusCode::OK, |_| {
            page(
                "Paid",
                nav(false),
                html! {
                    p role="status" { "Thank you. Please leave within " (minutes) " minutes; the exit opens for your plate." }
                    @if let Some(receipt) = &handled.receipt {
                        p #receipt { "Receipt: " (receipt.plate) ", " (money(receipt.total)) }
                    }
                },
            )
        }),
        Err(message) => respond(&headers, StatusCode::UNPROCESSABLE_ENTITY, |_| {
            page("Not paid", nav(false), html! { p.error role="alert" { (message) } })
        }),
    }
}

//! Stripe's hosted card fields, end to end against the Stripe stand-in of `valet-billing`'s tests:
//! the card number never reaches Valet; a sign-up or payment brings only the id of a card setup,
//! and Valet believes Stripe about it, not the browser or the app.

use axum::body::Body;
use axum::http::{Request, Response};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use valet_server::Settings;
use valet_server::settings::{GatewayKind, Secret};

use crate::helpers::{TestApp, spawn_app_with};
// valet-billing's stand-in, shared by path; this suite uses only part of it.
#[allow(dead_code)]
#[path = "../../../billing/tests/billing/stripe_standin.rs"]
pub(crate) mod stripe_standin;
use stripe_standin::{SECRET_KEY, StripeStandin};

pub(crate) const PUBLISHABLE_KEY: &str = "pk_test_standin";
const CSRF: &str = "c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5";

pub(crate) fn stripe_settings(stripe: &StripeStandin, publishable_key: Option<&str>) -> Settings {
    Settings {
        payment_gateway: GatewayKind::Stripe,
        stripe_secret_key: Some(Secret::new(SECRET_KEY)),
        stripe_api_base: Some(stripe.base.clone()),
        stripe_ca_file: Some(stripe.ca_file.clone()),
        stripe_publishable_key: publishable_key.map(str::to_owned),
        ..Settings::default()
    }
}

/// A portal form post from a browser holding the CSRF cookie.
async fn post_form(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> Response<Body> {
    // The values are letters, digits and underscores: nothing to percent-encode.
    let body: String =
        fields.iter().fold(format!("csrf={CSRF}"), |body, (name, value)| format!("{body}&{name}={value}"));
    let request = Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("valet_csrf={CSRF}"))
        .body(Body::from(body))
        .unwrap();
    app.router.clone().oneshot(request).await.unwrap()
}

async fn text(response: Response<Body>) -> String {
    String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

/// The value of the hidden input `name` in a rendered form.
fn hidden(html: &str, name: &str) -> String {
    let at = html.find(&format!("name=\"{name}\" value=\"")).unwrap_or_else(|| panic!("no {name} in {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn the_api_signs_up_with_a_card_setup_only_once_stripe_says_a_card_was_saved() {
    let stripe = StripeStandin::start().await;
    let app = spawn_app_with(stripe_settings(&stripe, Some(PUBLISHABLE_KEY))).await;

    // A raw Stripe token could name someone else's card: with Stripe only a card setup will do.
    let raw = json!({ "plates": ["AB123CD"], "payment_method": "cus_someone/pm_theirs" });
    let (status, body) = app.call(app.json("POST", "/v1/drivers", "", raw)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("card_setup"), "{body}");

    let (status, setup) = app.call(app.json("POST", "/v1/card-setups", "", Value::Null)).await;
    assert_eq!(status, 201, "{setup}");
    assert_eq!(setup["publishable_key"], PUBLISHABLE_KEY);
    let id = setup["card_setup"].as_str().unwrap().to_owned();
    assert!(id.starts_with("seti_") && setup["client_secret"].as_str().unwrap().contains("_secret_"), "{setup}");

    // The app claims the driver entered a card; Stripe says the setup is not complete.
    let sign_up = json!({ "plates": ["AB123CD"], "card_setup": id });
    let (status, body) = app.call(app.json("POST", "/v1/drivers", "", sign_up.clone())).await;
    assert_eq!((status, body["error"].as_str()), (402, Some("card_not_saved")), "{body}");

    stripe.complete_card_setup(&id, "pm_card_visa");
    let (status, signed) = app.call(app.json("POST", "/v1/drivers", "", sign_up)).await;
    assert_eq!(status, 201, "the refused try left no account holding the plate: {signed}");
    let token = signed["token"].as_str().unwrap();
    let (_, me) = app.call(app.json("GET", "/v1/me", token, Value::Null)).await;
    let method = me["payment_method"].as_str().unwrap();
    assert!(method.starts_with("cus_") && method.ends_with("/pm_card_visa"), "{me}");
    // Card details never passed through Valet: Stripe received no card field from it.
    assert!(stripe.received().iter().all(|r| r.form.iter().all(|(k, _)| !k.starts_with("card["))));
}

#[tokio::test]
async fn the_portal_shows_stripes_card_fields_and_signs_up_with_the_card_stripe_saved() {
    let stripe = StripeStandin::start().await;
    let app = spawn_app_with(stripe_settings(&stripe, Some(PUBLISHABLE_KEY))).await;

    let home = text(app.router.clone().oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap()).await;
    assert!(home.contains("Stripe's own secure form") && !home.contains("name=\"payment_method\""), "{home}");

    // Step 2: Stripe's fields, in a form that posts the plates again with the setup's id.
    let card_page = post_form(&app, "/signup", &[("plates", "AB123CD")]).await;
    assert_eq!(card_page.status(), 200);
    assert_eq!(card_page.headers()["cache-control"], "no-store", "the page holds the setup's client secret");
    let html = text(card_page).await;
    for needed in [
        "data-stripe-key=\"pk_test_standin\"",
        "data-client-secret=\"seti_",
        "https://js.stripe.com/v3/",
        "id=\"card-element\"",
    ] {
        assert!(html.contains(needed), "{needed} missing: {html}");
    }
    assert!(!html.contains(SECRET_KEY), "the secret key never reaches a browser");
    let setup = hidden(&html, "setup_intent");
    assert_eq!(hidden(&html, "plates"), "AB123CD");

    // Posted before Stripe saved a card (a forged post, or Stripe.js never ran): refused, nothing stored.
    let early = post_form(&app, "/signup", &[("plates", "AB123CD"), ("setup_intent", &setup)]).await;
    assert_eq!(early.status(), 422);
    assert!(text(early).await.contains("Your card was not saved"));

    stripe.complete_card_setup(&setup, "pm_card_visa");
    let done = post_form(&app, "/signup", &[("plates", "AB123CD"), ("setup_intent", &setup)]).await;
    assert_eq!(done.status(), 200, "the page with the recovery code, signed in");
    let cookies: Vec<&str> = done.headers().get_all("set-cookie").iter().map(|c| c.to_str().unwrap()).collect();
    assert!(cookies.iter().any(|c| c.starts_with("valet_driver=")), "{cookies:?}");
    assert!(text(done).await.contains("id=\"recovery-code\""));

    let script =
        app.router.clone().oneshot(Request::get("/assets/card.js").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(text(script).await.contains("confirmCardSetup"));
}

#[tokio::test]
async fn without_a_publishable_key_no_card_setup_starts_and_a_secret_key_in_its_place_is_refused() {
    let stripe = StripeStandin::start().await;
    let app = spawn_app_with(stripe_settings(&stripe, None)).await;
    let (status, body) = app.call(app.json("POST", "/v1/card-setups", "", Value::Null)).await;
    assert_eq!(status, 404, "{body}");
    let refused = post_form(&app, "/signup", &[("plates", "AB123CD")]).await;
    assert_eq!(refused.status(), 422);
    assert!(stripe.received_at("/v1/setup_intents").is_empty(), "nothing was started with Stripe");

    let store = valet_store::Store::open_in_memory().await.unwrap();
    let mut pasted_secret = stripe_settings(&stripe, Some(SECRET_KEY));
    pasted_secret.plate_key = Some(Secret::new("5ec7e7".repeat(8)));
    let error = valet_server::garage::open(&pasted_secret, &store).await.unwrap_err().to_string();
    assert!(error.contains("publishable key") && !error.contains("standin"), "{error}");
}

#[tokio::test]
async fn a_driver_without_an_account_pays_by_link_with_a_card_saved_in_stripes_fields() {
    let stripe = StripeStandin::start().await;
    let app = spawn_app_with(stripe_settings(&stripe, Some(PUBLISHABLE_KEY))).await;
    app.charge_from_the_first_minute().await;
    app.read("entry", "KL555MN").await;
    let (_, held) = app.read("exit", "KL555MN").await;
    let link = held["link"].as_str().expect("an unregistered car pays by plate").to_owned();
    let path = format!("/pay/{link}");

    let html = text(post_form(&app, &path, &[]).await).await;
    assert!(html.contains(&format!("action=\"{path}\"")) && html.contains("data-client-secret=\"seti_"), "{html}");
    let setup = hidden(&html, "setup_intent");
    assert!(stripe.succeeded_payment_intents().is_empty(), "nothing is charged before a card is saved");

    stripe.complete_card_setup(&setup, "pm_card_visa");
    let paid = post_form(&app, &path, &[("setup_intent", &setup)]).await;
    assert_eq!(paid.status(), 200);
    let html = text(paid).await;
    assert!(html.contains("Receipt: KL•••MN, €3.00"), "the receipt masks the plate: {html}");
    assert_eq!(stripe.succeeded_payment_intents().iter().map(|(_, minor)| *minor).collect::<Vec<_>>(), [300]);
}

/// The whole point of signing up: a signed-up driver's exit charges their card at Stripe, here a
/// stand-in that answers only over TLS with a certificate from the CA in `VALET_STRIPE_CA_FILE`.
#[tokio::test]
async fn a_signed_up_drivers_exit_is_charged_at_stripe_over_tls() {
    let stripe = StripeStandin::start().await;
    assert!(stripe.base.starts_with("https://"), "{}", stripe.base);
    let app = spawn_app_with(stripe_settings(&stripe, Some(PUBLISHABLE_KEY))).await;
    app.charge_from_the_first_minute().await;
    let (_, setup) = app.call(app.json("POST", "/v1/card-setups", "", Value::Null)).await;
    let setup = setup["card_setup"].as_str().unwrap().to_owned();
    stripe.complete_card_setup(&setup, "pm_card_visa");
    let (status, signed) =
        app.call(app.json("POST", "/v1/drivers", "", json!({ "plates": ["TL512SX"], "card_setup": setup }))).await;
    assert_eq!(status, 201, "{signed}");

    app.read("entry", "TL512SX").await;
    let (status, exit) = app.read("exit", "TL512SX").await;

    assert_eq!((status, exit["outcome"].as_str()), (200, Some("charged")), "{exit}");
    let paid = stripe.succeeded_payment_intents();
    assert_eq!(paid.iter().map(|(_, minor)| *minor).collect::<Vec<_>>(), [300], "50 minutes, once");
    let [sent] = &stripe.received_at("/v1/payment_intents")[..] else { panic!("{:?}", stripe.received()) };
    assert_eq!(sent.field("off_session"), Some("true"));
    assert!(sent.idempotency_key.is_some());
}

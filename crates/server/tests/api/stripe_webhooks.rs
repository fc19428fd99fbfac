//! Stripe's webhooks end to end: the stand-in's payments and refunds, delivered as Stripe signs
//! them, to `POST /v1/webhooks/stripe`. A charge whose answer Valet lost is settled by the event,
//! once however often it is replayed; a forged or stale signature changes nothing; a refund made
//! in Stripe's dashboard is recorded and audited once, and one made through Valet is not counted
//! twice.

use axum::body::Body;
use axum::http::Request;
use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use valet_billing::StripeWebhookSecret;
use valet_server::settings::Secret;

use crate::helpers::{TestApp, spawn_app_with};
use crate::stripe::stripe_standin::StripeStandin;
use crate::stripe::{PUBLISHABLE_KEY, stripe_settings};

const WEBHOOK_SECRET: &str = "whsec_standin_endpoint";

async fn webhook_app(stripe: &StripeStandin) -> TestApp {
    let mut settings = stripe_settings(stripe, Some(PUBLISHABLE_KEY));
    settings.stripe_webhook_secret = Some(Secret::new(WEBHOOK_SECRET));
    let app = spawn_app_with(settings).await;
    app.charge_from_the_first_minute().await;
    app
}

/// A driver signed up with a card saved at the stand-in.
async fn sign_up(app: &TestApp, stripe: &StripeStandin, plate: &str, card: &str) {
    let (_, setup) = app.call(app.json("POST", "/v1/card-setups", "", Value::Null)).await;
    let setup = setup["card_setup"].as_str().unwrap().to_owned();
    stripe.complete_card_setup(&setup, card);
    let (status, body) =
        app.call(app.json("POST", "/v1/drivers", "", json!({ "plates": [plate], "card_setup": setup }))).await;
    assert_eq!(status, 201, "{body}");
}

/// Delivers `body` with `signature` as Stripe would.
async fn deliver(app: &TestApp, body: &[u8], signature: &str) -> (u16, Value) {
    let request = Request::post("/v1/webhooks/stripe")
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(Body::from(body.to_vec()))
        .unwrap();
    app.call(request).await
}

fn signed(body: &[u8]) -> String {
    StripeWebhookSecret::parse(WEBHOOK_SECRET).unwrap().sign(body, Utc::now())
}

async fn session(app: &TestApp, id: &str) -> Value {
    let (status, detail) = app.operator("GET", &format!("/v1/sessions/{id}"), Value::Null).await;
    assert_eq!(status, 200, "{detail}");
    detail
}

/// Stripe took the money but answered 500: Valet's exit leaves the charge pending. The
/// `payment_intent.succeeded` event settles it: paid, with a receipt, and Stripe is not asked again.
async fn a_lost_answer(app: &TestApp, stripe: &StripeStandin, plate: &str) -> (String, String) {
    sign_up(app, stripe, plate, "pm_card_visa").await;
    app.read("entry", plate).await;
    stripe.fail_after_running_next();
    let (_, exit) = app.read("exit", plate).await;
    assert_eq!(exit["charge"], "requested", "Valet does not know the outcome: {exit}");
    let session = exit["session"].as_str().unwrap().to_owned();
    let [(intent, 300)] = &stripe.succeeded_payment_intents()[..] else { panic!("{:?}", stripe.received()) };
    (session, intent.clone())
}

#[tokio::test]
async fn a_charge_whose_answer_was_lost_is_settled_by_the_webhook_once_though_replayed_ten_times() {
    let stripe = StripeStandin::start().await;
    let app = webhook_app(&stripe).await;
    let (id, intent) = a_lost_answer(&app, &stripe, "WH100OK").await;
    assert_eq!(session(&app, &id).await["state"], "closed");

    let event = stripe.event("evt_paid", "payment_intent.succeeded", &intent);
    let (status, first) = deliver(&app, &event, &signed(&event)).await;
    assert_eq!(
        (status, first["taken"].as_str(), first["again"].as_bool()),
        (200, Some("settled"), Some(false)),
        "{first}"
    );
    let settled = session(&app, &id).await;
    assert_eq!(settled["state"], "paid", "{settled}");
    assert_eq!(settled["charges"][0]["state"]["reference"], intent.as_str(), "{settled}");
    let receipt = settled["receipt"].clone();
    assert!(receipt.is_object(), "{settled}");

    // Stripe retries, and an attacker replays a captured delivery within the tolerance.
    for _ in 0..10 {
        let (status, again) = deliver(&app, &event, &signed(&event)).await;
        assert_eq!((status, again["taken"].as_str(), again["again"].as_bool()), (200, Some("settled"), Some(true)));
    }
    assert_eq!(session(&app, &id).await, settled, "ten replays changed nothing");
    // The periodic resend finds nothing pending: Stripe is not asked a second time.
    app.state.gate().resume_pending().await.unwrap();
    assert_eq!(stripe.received_at("/v1/payment_intents").len(), 1);
    assert_eq!(stripe.succeeded_payment_intents().len(), 1);
}

#[tokio::test]
async fn a_forged_altered_or_stale_delivery_is_refused_and_changes_nothing() {
    let stripe = StripeStandin::start().await;
    let app = webhook_app(&stripe).await;
    let (id, intent) = a_lost_answer(&app, &stripe, "WH200NO").await;
    let before = session(&app, &id).await;
    let event = stripe.event("evt_forged", "payment_intent.succeeded", &intent);
    let forger = StripeWebhookSecret::parse("whsec_not_the_endpoints").unwrap();
    let mut altered = event.clone();
    altered.extend_from_slice(b" ");
    let stale = StripeWebhookSecret::parse(WEBHOOK_SECRET).unwrap().sign(&event, Utc::now() - TimeDelta::minutes(6));

    for (what, body, signature) in [
        ("another secret", &event, forger.sign(&event, Utc::now())),
        ("an altered body", &altered, signed(&event)),
        ("signed six minutes ago", &event, stale),
        ("no v1", &event, format!("t={}", Utc::now().timestamp())),
        ("garbage", &event, "t=;v1=<script>".into()),
    ] {
        let (status, body) = deliver(&app, body, &signature).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")), "{what}: {body}");
    }
    let (status, _) = app.call(Request::post("/v1/webhooks/stripe").body(Body::from(event.clone())).unwrap()).await;
    assert_eq!(status, 400, "no signature at all");
    assert_eq!(session(&app, &id).await, before);
    // The genuine delivery still acts: the refusals claimed nothing in the inbox.
    let (status, taken) = deliver(&app, &event, &signed(&event)).await;
    assert_eq!((status, taken["taken"].as_str()), (200, Some("settled")), "{taken}");
}

#[tokio::test]
async fn a_failed_payment_event_makes_the_stay_unpaid_and_queues_it_for_operators() {
    let stripe = StripeStandin::start().await;
    let app = webhook_app(&stripe).await;
    sign_up(&app, &stripe, "WH300NF", "pm_card_chargeDeclined").await;
    stripe.decline("pm_card_chargeDeclined", "insufficient_funds");
    app.read("entry", "WH300NF").await;
    stripe.fail_after_running_next();
    let (_, exit) = app.read("exit", "WH300NF").await;
    assert_eq!(exit["charge"], "requested", "{exit}");
    let id = exit["session"].as_str().unwrap().to_owned();
    let [(intent_id, "requires_payment_method")] = &stripe.payment_intents()[..] else { panic!() };
    let (_, queue) = app.operator("GET", "/v1/review-items", Value::Null).await;
    let queued = queue.as_array().unwrap().len();

    let event = stripe.event("evt_failed", "payment_intent.payment_failed", intent_id);
    let (status, taken) = deliver(&app, &event, &signed(&event)).await;
    assert_eq!((status, taken["taken"].as_str()), (200, Some("settled")), "{taken}");

    let unpaid = session(&app, &id).await;
    assert_eq!(unpaid["state"], "unpaid", "{unpaid}");
    let reason = unpaid["charges"][0]["state"]["reason"].as_str().unwrap();
    assert!(reason.contains("insufficient_funds"), "{reason}");
    let (_, queue) = app.operator("GET", "/v1/review-items", Value::Null).await;
    assert_eq!(queue.as_array().unwrap().len(), queued + 1, "{queue}");
    // The same failure again, under a new event id (Stripe's requires_action after it): known.
    let event = stripe.event("evt_sca", "payment_intent.requires_action", intent_id);
    let (_, taken) = deliver(&app, &event, &signed(&event)).await;
    assert_eq!(taken["taken"], "already_known", "{taken}");
    let (_, queue) = app.operator("GET", "/v1/review-items", Value::Null).await;
    assert_eq!(queue.as_array().unwrap().len(), queued + 1, "queued once");
}

#[tokio::test]
async fn a_refund_made_in_stripes_dashboard_is_recorded_once_and_one_made_through_valet_is_not_doubled() {
    let stripe = StripeStandin::start().await;
    let app = webhook_app(&stripe).await;
    sign_up(&app, &stripe, "WH400RF", "pm_card_visa").await;
    app.read("entry", "WH400RF").await;
    let (_, exit) = app.read("exit", "WH400RF").await;
    assert_eq!(exit["charge"], "succeeded", "{exit}");
    let id = exit["session"].as_str().unwrap().to_owned();
    let [(intent, 300)] = &stripe.succeeded_payment_intents()[..] else { panic!() };

    // An operator refunds €0.50 through Valet; Stripe's event for it arrives after.
    let mut request = app.json(
        "POST",
        &format!("/v1/sessions/{id}/refunds"),
        &app.operator,
        json!({ "amount_minor": 50, "why": "scratched mirror" }),
    );
    request.headers_mut().insert("idempotency-key", "mirror".parse().unwrap());
    let (status, body) = app.call(request).await;
    assert_eq!(status, 201, "{body}");
    let event = stripe.event("evt_refund_valet", "charge.refunded", intent);
    let (_, taken) = deliver(&app, &event, &signed(&event)).await;
    assert_eq!(taken["taken"], "already_known", "{taken}");

    // Someone refunds €1.00 in Stripe's dashboard.
    let outside = stripe.refund_in_dashboard(intent, 100);
    let event = stripe.event("evt_refund_dashboard", "charge.refunded", intent);
    for _ in 0..3 {
        let (status, _) = deliver(&app, &event, &signed(&event)).await;
        assert_eq!(status, 200);
    }
    let refunds = session(&app, &id).await["refunds"].clone();
    let refunds = refunds.as_array().unwrap();
    assert_eq!(refunds.len(), 2, "{refunds:?}");
    let recorded = refunds.iter().find(|r| r["reference"] == outside.as_str()).unwrap();
    assert_eq!((recorded["amount"]["minor"].as_i64(), recorded["by"].as_str()), (Some(100), Some("payment-provider")));
    let (_, audit) = app.operator("GET", "/v1/audit", Value::Null).await;
    let by_provider = audit.as_array().unwrap().iter().filter(|e| e.to_string().contains("payment-provider")).count();
    assert_eq!(by_provider, 1, "{audit}");
    // What is left to refund counts both: €1.50.
    let mut request =
        app.json("POST", &format!("/v1/sessions/{id}/refunds"), &app.operator, json!({ "why": "the rest" }));
    request.headers_mut().insert("idempotency-key", "rest".parse().unwrap());
    let (status, rest) = app.call(request).await;
    assert_eq!((status, rest["amount"]["minor"].as_i64()), (201, Some(150)), "{rest}");
}

#[tokio::test]
async fn events_about_payments_valet_did_not_make_or_does_not_act_on_are_acknowledged_and_ignored() {
    let stripe = StripeStandin::start().await;
    let app = webhook_app(&stripe).await;
    let other = json!({"id": "evt_other", "type": "customer.created", "created": Utc::now().timestamp(), "data": {"object": {"id": "cus_1"}}});
    let foreign = json!({"id": "evt_foreign", "type": "payment_intent.succeeded", "created": Utc::now().timestamp(),
                         "data": {"object": {"id": "pi_theirs", "amount": 999, "currency": "eur"}}});
    for (event, taken) in [(other, "ignored"), (foreign, "not_ours")] {
        let body = serde_json::to_vec(&event).unwrap();
        let (status, answer) = deliver(&app, &body, &signed(&body)).await;
        assert_eq!((status, answer["taken"].as_str()), (200, Some(taken)), "{answer}");
    }
    let (status, body) = deliver(&app, b"[]", &signed(b"[]")).await;
    assert_eq!(status, 400, "signed but not an event: {body}");
}

#[tokio::test]
async fn without_a_webhook_secret_the_endpoint_says_it_is_not_configured() {
    let stripe = StripeStandin::start().await;
    let app = spawn_app_with(stripe_settings(&stripe, Some(PUBLISHABLE_KEY))).await;
    let (status, body) = deliver(&app, b"{}", &signed(b"{}")).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["message"].as_str().unwrap().contains("VALET_STRIPE_WEBHOOK_SECRET"), "{body}");
}

/// `POST /v1/sessions/{id}/charges`: a stay left unpaid by a refused card is charged again under
/// a new attempt's key (the first key would only replay the refusal), audited; once paid, or for
/// a stay that never owed, there is nothing to retry.
#[tokio::test]
async fn an_unpaid_stay_is_charged_again_under_a_new_key_once_the_card_goes_through() {
    let stripe = StripeStandin::start().await;
    let app = webhook_app(&stripe).await;
    sign_up(&app, &stripe, "RT500EE", "pm_card_chargeDeclined").await;
    stripe.decline("pm_card_chargeDeclined", "insufficient_funds");
    app.read("entry", "RT500EE").await;
    let (_, exit) = app.read("exit", "RT500EE").await;
    assert_eq!(exit["charge"], "failed", "{exit}");
    let id = exit["session"].as_str().unwrap().to_owned();
    let path = format!("/v1/sessions/{id}/charges");
    let why = json!({ "why": "the driver called: card topped up" });

    let (status, again) = app.operator("POST", &path, why.clone()).await;
    assert_eq!((status, again["state"]["state"].as_str()), (201, Some("failed")), "{again}");
    stripe.allow("pm_card_chargeDeclined");
    let (status, paid) = app.operator("POST", &path, why.clone()).await;
    assert_eq!((status, paid["state"]["state"].as_str()), (201, Some("succeeded")), "{paid}");
    let keys: Vec<String> =
        stripe.received_at("/v1/payment_intents").iter().filter_map(|r| r.idempotency_key.clone()).collect();
    assert_eq!(keys.len(), 3);
    assert!(keys[0].ends_with("-1") && keys[1].ends_with("-2") && keys[2].ends_with("-3"), "{keys:?}");
    let detail = session(&app, &id).await;
    assert_eq!(detail["state"], "paid", "{detail}");
    assert!(detail["receipt"].is_object());

    let (status, body) = app.operator("POST", &path, why).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("not_retryable")), "{body}");
    let (_, audit) = app.operator("GET", "/v1/audit", Value::Null).await;
    assert_eq!(audit.to_string().matches("charge_retried").count(), 2, "{audit}");
}

//! Mail through the router: a driver gives an address at sign-up or later, a refused charge's
//! notice and a paid stay's receipt reach a real SMTP server (aiosmtpd; skipped with the reason
//! when it is missing) once each, and "Pay now", where the notice leads, pays the stay.

use chrono::Utc;
use serde_json::{Value, json};
use valet_mail::Mailer;
use valet_mail::testing::SmtpSink;
use valet_server::settings::Secret;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::stripe::stripe_standin::StripeStandin;
use crate::stripe::{PUBLISHABLE_KEY, stripe_settings};

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
}

/// Mail a pass of the mailer `valet serve` would run (built from the same settings) sends now.
async fn mail_now(mailer: &Mailer, sink: &SmtpSink, expected: usize) -> Vec<String> {
    mailer.pass(Utc::now()).await.unwrap();
    sink.wait_for(expected, std::time::Duration::from_secs(5)).await
}

async fn sign_up(app: &TestApp, stripe: &StripeStandin, plate: &str, email: &str) -> String {
    let (_, setup) = app.call(app.json("POST", "/v1/card-setups", "", Value::Null)).await;
    let setup = setup["card_setup"].as_str().unwrap().to_owned();
    stripe.complete_card_setup(&setup, "pm_card_visa");
    let body = json!({ "plates": [plate], "card_setup": setup, "email": email });
    let (status, answer) = app.call(app.json("POST", "/v1/drivers", "", body)).await;
    assert_eq!(status, 201, "{answer}");
    answer["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_refusal_notice_then_the_receipt_reach_the_driver_once_each_and_pay_now_settles_the_stay() {
    let sink = match SmtpSink::start() {
        Ok(sink) => sink,
        Err(why) => return eprintln!("skipping: {why}"),
    };
    let stripe = StripeStandin::start().await;
    let mut settings = stripe_settings(&stripe, Some(PUBLISHABLE_KEY));
    settings.smtp_url = Some(Secret::new(sink.url()));
    settings.mail_from = Some("Valet Garage <garage@example.com>".into());
    settings.public_url = Some("https://park.example.com".into());
    let app = spawn_app_with(settings).await;
    app.charge_from_the_first_minute().await;
    let mailer = valet_server::garage::mailer(&app.settings, app.state.gate().store()).unwrap().unwrap();
    let token = sign_up(&app, &stripe, "ML100AB", "ana@example.com").await;
    let stranger = sign_up(&app, &stripe, "ML200CD", "bo@example.com").await;

    // The bank says no at the exit: the stay is unpaid, and the driver is told why and where to pay.
    stripe.decline("pm_card_visa", "insufficient_funds");
    app.read("entry", "ML100AB").await;
    let (_, exit) = app.read("exit", "ML100AB").await;
    assert!(exit["charge"].as_str().is_some_and(|c| c.starts_with("failed")), "{exit}");
    let session = exit["session"].as_str().unwrap().to_owned();
    let mails = mail_now(&mailer, &sink, 1).await;
    let [notice] = &mails[..] else { panic!("{mails:?}") };
    assert_eq!(header(notice, "To"), Some("ana@example.com"));
    assert_eq!(header(notice, "Subject").map(|s| s.starts_with("Payment needed: €3.00")), Some(true), "{notice}");
    for needle in ["insufficient_funds", "https://park.example.com/me", "Pay now"] {
        assert!(notice.contains(needle), "{needle}: {notice}");
    }

    // Another account cannot pay (or learn of) this stay; while the card still fails, it stays unpaid.
    let pay = |bearer: &str| app.json("POST", &format!("/v1/me/sessions/{session}/payments"), bearer, Value::Null);
    let (status, body) = app.call(pay(&stranger)).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")), "{body}");
    let (status, body) = app.call(pay(&token)).await;
    assert_eq!((status, &body["state"]["state"]), (201, &json!("failed")), "{body}");

    // The driver tops up the card and pays from their account: paid, with its receipt mailed.
    stripe.allow("pm_card_visa");
    let (status, body) = app.call(pay(&token)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["state"]["state"], "succeeded", "{body}");
    let (status, body) = app.call(pay(&token)).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("not_retryable")), "paid once: {body}");
    let mails = mail_now(&mailer, &sink, 2).await;
    assert_eq!(mails.len(), 2, "{mails:?}");
    let receipt = &mails[1];
    assert_eq!(header(receipt, "Subject").map(|s| s.starts_with("Parking receipt: €3.00")), Some(true), "{receipt}");
    assert!(!receipt.contains("ML100AB"), "the plate is masked: {receipt}");

    // Nothing more is owed: passes later mail nothing; the stranger was never mailed.
    assert_eq!(mail_now(&mailer, &sink, 3).await.len(), 2);
    assert!(sink.messages().iter().all(|m| header(m, "To") == Some("ana@example.com")));
    let (_, audit) = app.operator("GET", "/v1/audit", Value::Null).await;
    let by_driver =
        audit.as_array().unwrap().iter().filter(|e| e["who"].as_str().is_some_and(|w| w.starts_with("driver:")));
    assert_eq!(by_driver.count(), 2, "each of the driver's tries is audited: {audit}");
}

#[tokio::test]
async fn an_address_is_checked_at_sign_up_and_can_be_changed_or_removed() {
    let app = spawn_app().await;
    let sign_up = |email: &str| {
        app.json(
            "POST",
            "/v1/drivers",
            "",
            json!({ "plates": ["EM100AB"], "payment_method": "pm_card_visa", "email": email }),
        )
    };
    let (status, body) = app.call(sign_up("ana at example.com")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("e-mail"), "{body}");
    // The refused sign-up kept nothing: the plate signs up now.
    let (status, body) = app.call(sign_up("Ana@Example.COM")).await;
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    let me = || app.json("GET", "/v1/me", &token, Value::Null);
    assert_eq!(app.call(me()).await.1["email"], "Ana@example.com");

    let set = |email: Value| app.json("PUT", "/v1/me/email", &token, json!({ "email": email }));
    for bad in ["", "ana@localhost", "ana@example.com\r\nBcc: eve@example.com"] {
        let (status, body) = app.call(set(json!(bad))).await;
        assert_eq!(status, 400, "{bad:?}: {body}");
    }
    assert_eq!(app.call(me()).await.1["email"], "Ana@example.com", "a refused change changes nothing");
    assert_eq!(app.call(set(json!("bo@example.org"))).await.0, 204);
    assert_eq!(app.call(me()).await.1["email"], "bo@example.org");
    assert_eq!(app.call(set(Value::Null)).await.0, 204);
    assert_eq!(app.call(me()).await.1["email"], Value::Null);
    // Without a driver's token, nothing.
    assert_eq!(app.call(app.json("PUT", "/v1/me/email", "", json!({ "email": "x@example.com" }))).await.0, 401);
}

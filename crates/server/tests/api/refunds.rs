//! Refunds as an operator meets them: the same key for another amount is refused like Stripe
//! refuses it, a refund past what is left says so once, and a stay with nothing left to refund
//! offers no refund.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// A signed-up car charged €3.00 (four started quarter hours): its session id.
async fn charged_stay(app: &TestApp, plate: &str) -> String {
    app.charge_from_the_first_minute().await;
    let sign_up = json!({ "plates": [plate], "payment_method": "pm_card_visa" });
    let (status, body) = app.call(app.json("POST", "/v1/drivers", "", sign_up)).await;
    assert_eq!(status, 201, "{body}");
    app.read("entry", plate).await;
    let (_, exit) = app.read("exit", plate).await;
    assert_eq!(exit["charge"], "succeeded", "{exit}");
    exit["session"].as_str().unwrap().to_owned()
}

async fn refund(app: &TestApp, session: &str, key: &str, amount: Option<i64>) -> (u16, Value) {
    let mut body = json!({ "why": "barrier hit the car" });
    if let Some(minor) = amount {
        body["amount_minor"] = json!(minor);
    }
    let mut request = app.json("POST", &format!("/v1/sessions/{session}/refunds"), &app.operator, body);
    request.headers_mut().insert("idempotency-key", key.parse().unwrap());
    app.call(request).await
}

#[tokio::test]
async fn an_idempotency_key_reused_for_another_amount_is_refused_not_replayed() {
    let app = spawn_app().await;
    let session = charged_stay(&app, "KEY123").await;
    let (status, first) = refund(&app, &session, "k1", Some(25)).await;
    assert_eq!(status, 201, "{first}");
    let (status, body) = refund(&app, &session, "k1", Some(100)).await;
    assert_eq!((status, body["error"].as_str()), (422, Some("idempotency_key_reused")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("€0.25"), "{body}");
    // The same amount, or no amount (a retry of "the rest"), is the first refund again.
    assert_eq!(refund(&app, &session, "k1", Some(25)).await, (201, first.clone()));
    let (_, detail) = app.operator("GET", &format!("/v1/sessions/{session}"), Value::Null).await;
    assert_eq!(detail["refunds"].as_array().unwrap().len(), 1, "{detail}");
}

#[tokio::test]
async fn a_refund_past_what_is_left_is_refused_with_one_plain_message() {
    let app = spawn_app().await;
    let session = charged_stay(&app, "OVER123").await;
    let (status, body) = refund(&app, &session, "too-much", Some(10_000)).await;
    assert_eq!((status, body["error"].as_str()), (422, Some("over_refund")), "{body}");
    let message = body["message"].as_str().unwrap();
    assert_eq!(message, "cannot refund €100.00: €3.00 is left to refund", "{body}");
    // Refund all of it; then nothing is left, and a new refund says so.
    let (status, all) = refund(&app, &session, "all", None).await;
    assert_eq!(status, 201, "{all}");
    assert_eq!(all["amount"]["minor"], 300);
    let (status, body) = refund(&app, &session, "again", None).await;
    assert_eq!((status, body["error"].as_str()), (422, Some("over_refund")), "{body}");
    assert_eq!(body["message"], "cannot refund €0.00: €0.00 is left to refund");
}

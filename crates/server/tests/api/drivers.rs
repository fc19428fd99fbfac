//! The driver's side: sign-in with a plate and the recovery code, sign-out, refusals that do not
//! say who is registered, and the plate as the driver spelled it.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::helpers::{TestApp, spawn_app};

const CSRF: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A page's answer: status and body text.
struct PageAnswer {
    status: u16,
    text: String,
}

impl TestApp {
    async fn sign_up(&self, plates: &[&str]) -> Value {
        let body = json!({ "plates": plates, "payment_method": "pm_card_visa" });
        let (status, signed) = self.call(self.json("POST", "/v1/drivers", "", body)).await;
        assert_eq!(status, 201, "{signed}");
        signed
    }

    async fn sign_in(&self, plate: &str, code: &str) -> (u16, Value) {
        let body = json!({ "plate": plate, "recovery_code": code });
        self.call(self.json("POST", "/v1/drivers/sign-in", "", body)).await
    }

    /// A portal form, posted as the browser would with its CSRF cookie and field.
    async fn form(&self, path: &str, fields: &[(&str, &str)]) -> PageAnswer {
        let mut body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={}", v.replace(' ', "+"))).collect();
        body.push(format!("csrf={CSRF}"));
        let request = Request::post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", format!("valet_csrf={CSRF}"))
            .body(Body::from(body.join("&")))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let text = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        PageAnswer { status, text }
    }
}

#[tokio::test]
async fn a_driver_signs_in_on_a_new_phone_with_a_plate_and_the_recovery_code_which_works_once() {
    let app = spawn_app().await;
    let signed = app.sign_up(&["PHONE1", "KM907RS"]).await;
    let first_phone = signed["token"].as_str().unwrap().to_owned();
    let code = signed["recovery_code"].as_str().unwrap().to_owned();
    assert_eq!((code.len(), code.matches('-').count()), (24, 4), "five groups of four: {code}");

    // A wrong code, a plate of nobody's, a code of the wrong shape: one answer, word for word.
    let (_, other) =
        app.call(app.json("POST", "/v1/drivers", "", json!({ "plates": ["XY987ZW"], "payment_method": "pm_x" }))).await;
    let refusals = [
        app.sign_in("PHONE1", other["recovery_code"].as_str().unwrap()).await,
        app.sign_in("QQ111QQ", &code).await,
        app.sign_in("PHONE1", "1234").await,
        app.sign_in("!", &code).await,
    ];
    for (status, body) in &refusals {
        assert_eq!((*status, body), (401, &refusals[0].1), "{body}");
    }
    assert_eq!(refusals[0].1["error"], "sign_in_refused");

    // The new phone: a confusable spelling of a plate and the code typed loosely both do.
    let (status, back) = app.sign_in("ph0ne 1", &code.to_lowercase().replace('-', " ")).await;
    assert_eq!(status, 200, "{back}");
    assert_eq!(back["driver"], signed["driver"]);
    assert_eq!(back["plates"], json!(["KM907RS", "PHONE1"]));
    let new_phone = back["token"].as_str().unwrap();
    let (status, me) = app.call(app.json("GET", "/v1/me", new_phone, Value::Null)).await;
    assert_eq!((status, &me["driver"]), (200, &signed["driver"]), "{me}");

    // The code is spent, a new one was given, and the old phone is signed out.
    let next = back["recovery_code"].as_str().unwrap();
    assert_ne!(next, code);
    assert_eq!(app.sign_in("PHONE1", &code).await.0, 401, "a code signs in once");
    assert_eq!(app.call(app.json("GET", "/v1/me", &first_phone, Value::Null)).await.0, 401, "the lost phone is out");

    // Signing out revokes the token; the next code signs in again.
    let (status, _) = app.call(app.json("POST", "/v1/me/sign-out", new_phone, Value::Null)).await;
    assert_eq!(status, 204);
    assert_eq!(app.call(app.json("GET", "/v1/me", new_phone, Value::Null)).await.0, 401);
    let (status, again) = app.sign_in("KM907RS", next).await;
    assert_eq!(status, 200, "{again}");

    // A signed-in driver may ask for a new code; the one before it stops working.
    let token = again["token"].as_str().unwrap();
    let (status, fresh) = app.call(app.json("POST", "/v1/me/recovery-code", token, Value::Null)).await;
    assert_eq!(status, 201, "{fresh}");
    assert_eq!(app.sign_in("KM907RS", again["recovery_code"].as_str().unwrap()).await.0, 401);
    assert_eq!(app.sign_in("KM907RS", fresh["recovery_code"].as_str().unwrap()).await.0, 200);
}

#[tokio::test]
async fn a_plate_another_account_holds_is_refused_without_saying_that_anyone_holds_it() {
    let app = spawn_app().await;
    app.sign_up(&["AB123CD"]).await;

    let (status, refused) = app
        .call(app.json("POST", "/v1/drivers", "", json!({ "plates": ["ab-123-cd"], "payment_method": "pm_x" })))
        .await;
    assert_eq!((status, refused["error"].as_str()), (409, Some("plate_unavailable")), "{refused}");
    let message = refused["message"].as_str().unwrap();
    for tell in ["AB123CD", "already", "registered", "another", "driver's account"] {
        assert!(!message.contains(tell), "{tell:?} in {message:?}");
    }
    assert!(message.contains("sign in"), "the refusal points to sign-in: {message}");

    // Adding it to another account is refused in the same words.
    let mallory = app.sign_up(&["MM000MM"]).await;
    let add = json!({ "plate": "AB123CD" });
    let (status, body) = app.call(app.json("POST", "/v1/me/plates", mallory["token"].as_str().unwrap(), add)).await;
    assert_eq!((status, &body), (409, &refused), "{body}");

    // And in the portal.
    let page = app.form("/signup", &[("plates", "AB123CD"), ("payment_method", "pm_card_visa")]).await;
    assert_eq!(page.status, 422);
    assert!(!page.text.contains("already") && page.text.contains("sign in"), "{}", page.text);
}

#[tokio::test]
async fn a_driver_sees_their_plate_as_they_typed_it_though_the_camera_read_it_otherwise() {
    let app = spawn_app().await;
    app.charge_from_the_first_minute().await;
    // The entry camera reads PHONE1 as PH0NE1 (the digit a format prefers).
    let (_, entry) = app.read("entry", "PH0NE1").await;
    let link = entry["link"].as_str().unwrap();
    let body = json!({ "plates": ["PHONE1"], "payment_method": "pm_card_visa", "link": link });
    let (status, signed) = app.call(app.json("POST", "/v1/drivers", "", body)).await;
    assert_eq!(status, 201, "{signed}");
    let token = signed["token"].as_str().unwrap();

    let (_, me) = app.call(app.json("GET", "/v1/me", token, Value::Null)).await;
    assert_eq!(me["plates"], json!(["PHONE1"]));
    let (_, stays) = app.call(app.json("GET", "/v1/me/sessions", token, Value::Null)).await;
    assert_eq!(stays[0]["plate"], "PHONE1", "{stays}");

    // The exit camera misreads it again; the stay is found by its matching key and charged.
    let (_, exit) = app.read("exit", "PH0NE1").await;
    assert_eq!(exit["outcome"], "charged", "{exit}");
    let (_, stays) = app.call(app.json("GET", "/v1/me/sessions", token, Value::Null)).await;
    assert_eq!((stays[0]["plate"].as_str(), stays[0]["state"].as_str()), (Some("PHONE1"), Some("paid")), "{stays}");
    let (_, receipts) = app.call(app.json("GET", "/v1/me/receipts", token, Value::Null)).await;
    assert_eq!(receipts[0]["plate"], "PH••E1", "{receipts}");
}

//! The driver's side: sign-in with a plate and the recovery code, sign-out, refusals that do not
//! say who is registered, the plate as the driver spelled it, and pay-by-plate in the portal
//! (the arrival hour as proof, one answer for "no stay" and "wrong hour", a bound on wrong tries,
//! near plates for a misread car).

use axum::body::Body;
use axum::http::Request;
use chrono::{TimeDelta, Utc};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::helpers::{TestApp, spawn_app};

const CSRF: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A page's answer: status, `Location`, body text.
struct PageAnswer {
    status: u16,
    location: Option<String>,
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
        let location = response.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
        let text = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        PageAnswer { status, location, text }
    }

    /// The day and hour (on the garage's clock) `minutes_ago` minutes before now, as the form sends them.
    fn arrival(&self, minutes_ago: i64) -> (String, String) {
        let offset = i64::from(self.state.gate().tariff().spec().utc_offset_minutes);
        let local = (Utc::now() - TimeDelta::minutes(minutes_ago)).naive_utc() + TimeDelta::minutes(offset);
        (local.format("%Y-%m-%d").to_string(), local.format("%-H").to_string())
    }

    async fn find_stay(&self, plate: &str, (day, hour): &(String, String)) -> PageAnswer {
        self.form("/pay", &[("plate", plate), ("day", day), ("hour", hour)]).await
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

#[tokio::test]
async fn pay_by_plate_needs_the_arrival_hour_and_a_wrong_hour_reads_like_a_car_that_is_not_there() {
    let app = spawn_app().await;
    app.read("entry", "KL555MN").await; // 50 minutes ago, unregistered
    let right = app.arrival(50);
    let wrong = app.arrival(50 + 180);

    let wrong_hour = app.find_stay("KL555MN", &wrong).await;
    let not_there = app.find_stay("QQ999QQ", &right).await;
    assert_eq!((wrong_hour.status, not_there.status), (404, 404));
    assert_eq!(wrong_hour.text, not_there.text, "the two answers are the same page");
    for tell in ["KL555MN", "no unpaid stay", "not inside", "is inside"] {
        assert!(!wrong_hour.text.contains(tell), "{tell:?}");
    }
    assert!(wrong_hour.text.contains("intercom"), "the attendant's way out is offered");

    let found = app.find_stay("KL555MN", &right).await;
    assert_eq!(found.status, 303, "{}", found.text);
    let link = found.location.unwrap();
    assert!(link.starts_with("/pay/"), "{link}");

    // Five wrong tries in a day, then the plate answers only with the link and the intercom,
    // whatever the hour; another plate is not affected.
    for _ in 0..4 {
        assert_eq!(app.find_stay("KL555MN", &wrong).await.status, 404);
    }
    let used_up = app.find_stay("KL555MN", &right).await;
    assert_eq!((used_up.status, used_up.location), (429, None));
    assert!(used_up.text.contains("intercom"), "{}", used_up.text);
    assert_eq!(app.find_stay("KL555MM", &wrong).await.status, 404, "tries count per plate");

    // The link from the entry screen still pays the stay.
    let (status, quote) = app.call(app.json("GET", &format!("/v1{link}"), "", Value::Null)).await;
    assert_eq!(status, 200, "{quote}");
}

#[tokio::test]
async fn a_car_misread_at_the_entry_is_offered_the_near_plates_of_its_hour_and_no_others() {
    let app = spawn_app().await;
    app.read("entry", "KL555MH").await; // the car is KL555MN; the camera saw an H
    let (_, other) = app.read("entry", "XY987ZW").await;
    let right = app.arrival(50);

    let offered = app.find_stay("KL555MN", &right).await;
    assert_eq!(offered.status, 200, "{}", offered.text);
    assert!(offered.text.contains("KL555MH") && offered.text.contains("/pay/"), "{}", offered.text);
    assert!(!offered.text.contains("XY987ZW") && !offered.text.contains(other["link"].as_str().unwrap()));
    assert!(!offered.text.contains("no unpaid stay"));

    // In another hour the near plate is not offered: the hour is still the proof.
    let elsewhere = app.find_stay("KL555MN", &app.arrival(50 + 180)).await;
    assert_eq!(elsewhere.status, 404);
    assert!(!elsewhere.text.contains("KL555MH"));
}

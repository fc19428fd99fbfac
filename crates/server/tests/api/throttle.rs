//! Guessing is throttled: failed keys from one address, and failed sign-ins at one operator or
//! one plate from anywhere, are answered 429 with `Retry-After` once past the limit, before the
//! credential is even checked, while other addresses and names carry on.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::helpers::{TestApp, spawn_app};

const CSRF: &str = "7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a";

/// `request` as if it came from 192.0.2.`n`.
fn from(n: u8, mut request: Request<Body>) -> Request<Body> {
    request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([192, 0, 2, n], 40000))));
    request
}

async fn send(app: &TestApp, request: Request<Body>) -> (u16, Option<u64>, String) {
    let response = app.router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap());
    let body = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (status, retry_after, body)
}

fn login(name: &str, key: &str) -> Request<Body> {
    Request::post("/ops/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("valet_csrf={CSRF}"))
        .body(Body::from(format!("csrf={CSRF}&name={name}&key={key}")))
        .unwrap()
}

#[tokio::test]
async fn guessing_keys_from_one_address_is_answered_429_until_the_window_passes() {
    let app = spawn_app().await;
    for n in 0..20 {
        let (status, _, body) =
            send(&app, from(7, app.json("GET", "/v1/sessions", &format!("guess-{n}"), Value::Null))).await;
        assert_eq!(status, 401, "guess {n}: {body}");
    }
    let (status, retry_after, body) =
        send(&app, from(7, app.json("GET", "/v1/sessions", "guess-21", Value::Null))).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("too_many_attempts"), "{body}");
    assert!(retry_after.is_some_and(|secs| (500..=600).contains(&secs)), "{retry_after:?}");
    // Even the right key waits: the guesser learns nothing from what it sends.
    let (status, ..) = send(&app, from(7, app.json("GET", "/v1/sessions", &app.operator, Value::Null))).await;
    assert_eq!(status, 429);
    // Everyone else carries on, and a request that sends no key is no guess.
    let (status, ..) = send(&app, from(8, app.json("GET", "/v1/sessions", &app.operator, Value::Null))).await;
    assert_eq!(status, 200);
    let (status, ..) = send(&app, from(9, app.json("GET", "/v1/sessions", "", Value::Null))).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn guessing_one_operators_key_from_many_addresses_is_throttled_by_the_name() {
    let app = spawn_app().await;
    for n in 0..10 {
        let (status, _, body) = send(&app, from(n, login("alice", &format!("wrong{n}")))).await;
        assert_eq!(status, 401, "{body}");
    }
    let (status, retry_after, body) = send(&app, from(100, login("alice", "wrong"))).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("Too many sign-in attempts failed"), "{body}");
    assert!(retry_after.is_some());
    let (status, ..) = send(&app, from(101, login("bob", "wrong"))).await;
    assert_eq!(status, 401, "another name is not held up");
}

#[tokio::test]
async fn guessing_a_plates_recovery_code_is_throttled_by_the_plate_however_it_is_spelt() {
    let app = spawn_app().await;
    let body = json!({ "plates": ["AB123CD"], "payment_method": "pm_card_visa" });
    let (status, signed) = app.call(app.json("POST", "/v1/drivers", "", body)).await;
    assert_eq!(status, 201, "{signed}");
    let code = signed["recovery_code"].as_str().unwrap().to_owned();
    let sign_in = |plate: &str, code: &str| {
        app.json("POST", "/v1/drivers/sign-in", "", json!({ "plate": plate, "recovery_code": code }))
    };
    for (n, spelling) in ["AB123CD", "ab-123-cd", "AB 123 CD"].iter().cycle().take(10).enumerate() {
        let (status, _, body) =
            send(&app, from(u8::try_from(n).unwrap(), sign_in(spelling, "AAAA-BBBB-CCCC-DDDD"))).await;
        assert_eq!(status, 401, "{body}");
    }
    let (status, retry_after, body) = send(&app, from(200, sign_in("AB123CD", &code))).await;
    assert_eq!((status, retry_after.is_some()), (429, true), "even the right code waits: {body}");
}

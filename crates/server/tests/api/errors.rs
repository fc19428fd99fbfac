//! Every refusal is JSON (`{"error", "message"}`) and names what the caller should send: the
//! credential the endpoint takes, the query or path at fault, the methods a path has. Messages
//! speak the garage's words, never a Rust type's.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// A message that leaks an implementation type: `CameraId("cam1")`, `Direct { supersample: 2 }`, `i64`.
fn leaks_a_type_name(message: &str) -> bool {
    // The capitalised word just before byte `at`, if any.
    let type_before = |at: usize| {
        let word: String = message[..at].chars().rev().take_while(|c| c.is_ascii_alphanumeric()).collect();
        word.len() > 1 && word.chars().last().is_some_and(|c| c.is_ascii_uppercase())
    };
    let tuple = message.match_indices("(\"").any(|(at, _)| type_before(at));
    let fields = message.match_indices(" { ").any(|(at, _)| {
        let rest = &message[at + 3..];
        let field: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
        type_before(at) && !field.is_empty() && rest[field.len()..].starts_with(':')
    });
    let primitive =
        ["i64", "u32", "u64", "i32", "f32", "f64", "usize"].iter().any(|t| message.contains(&format!("`{t}`")));
    tuple || fields || primitive
}

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "00000000000000000000000000000000" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

async fn assert_json_refusal(app: &TestApp, method: &str, path: &str, bearer: &str, status: u16, code: &str) -> Value {
    assert_json_refusal_of(app, method, path, bearer, Value::Null, status, code).await
}

async fn assert_json_refusal_of(
    app: &TestApp,
    method: &str,
    path: &str,
    bearer: &str,
    body: Value,
    status: u16,
    code: &str,
) -> Value {
    let (got, body) = app.call(app.json(method, path, bearer, body)).await;
    assert_eq!(got, status, "{method} {path}: {body}");
    assert_eq!(body["error"], code, "{method} {path}: {body}");
    let message = body["message"].as_str().unwrap_or_else(|| panic!("{method} {path}: no message in {body}"));
    assert!(!leaks_a_type_name(message), "{method} {path}: {message}");
    body
}

#[tokio::test]
async fn a_missing_credential_is_named_for_what_each_endpoint_takes() {
    let app = spawn_app().await;
    let document = valet_server::openapi_document();
    let mut checked = 0;
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let Some(scheme) = operation["security"][0].as_object().and_then(|s| s.keys().next().cloned()) else {
                continue;
            };
            let needs = match scheme.as_str() {
                "deviceKey" => "a device key",
                "operatorKey" => "an operator key",
                "adminKey" => "an admin key",
                "driverToken" => "a driver token",
                other => panic!("unknown scheme {other}"),
            };
            let body =
                assert_json_refusal(&app, &method.to_uppercase(), &concrete(path), "", 401, "missing_api_key").await;
            let message = body["message"].as_str().unwrap();
            assert!(message.contains(needs), "{method} {path} takes {needs}: {message}");
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} operations need a credential");
}

#[tokio::test]
async fn a_wrong_or_unknown_credential_is_named_too() {
    let app = spawn_app().await;
    let body = assert_json_refusal(&app, "GET", "/v1/sessions", "no-such-key", 401, "invalid_api_key").await;
    assert!(body["message"].as_str().unwrap().contains("operator key"), "{body}");
    let body = assert_json_refusal(&app, "GET", "/v1/me", "no-such-token", 401, "invalid_api_key").await;
    assert!(body["message"].as_str().unwrap().contains("driver token"), "{body}");
    let body = assert_json_refusal(&app, "GET", "/v1/sessions", &app.key.clone(), 403, "wrong_role").await;
    assert!(body["message"].as_str().unwrap().contains("an operator key"), "{body}");
}

#[tokio::test]
async fn a_method_a_path_does_not_take_gets_a_json_405() {
    let app = spawn_app().await;
    let document = valet_server::openapi_document();
    for (path, operations) in document["paths"].as_object().unwrap() {
        let taken: Vec<&str> = operations.as_object().unwrap().keys().map(String::as_str).collect();
        let untaken = ["delete", "put", "patch", "post", "get"].into_iter().find(|m| !taken.contains(m)).unwrap();
        let body =
            assert_json_refusal(&app, &untaken.to_uppercase(), &concrete(path), "", 405, "method_not_allowed").await;
        assert!(body["message"].as_str().unwrap().contains(&untaken.to_uppercase()), "{path}: {body}");
    }
}

#[tokio::test]
async fn a_bad_query_string_or_path_gets_a_json_answer_naming_it() {
    let app = spawn_app().await;
    let operator = app.operator.clone();
    let key = app.key.clone();
    for (method, path, bearer, status, code) in [
        ("GET", "/v1/sessions?limit=lots", operator.as_str(), 400, "bad_request"),
        ("GET", "/v1/sessions?limit=-1", operator.as_str(), 400, "bad_request"),
        ("GET", "/v1/audit?since=yesterday", operator.as_str(), 400, "bad_request"),
        ("GET", "/v1/dead-letters?limit=x", operator.as_str(), 400, "bad_request"),
        ("POST", "/v1/gates/entry-1/frames?direction=sideways", key.as_str(), 400, "bad_request"),
    ] {
        let body = assert_json_refusal(&app, method, path, bearer, status, code).await;
        let message = body["message"].as_str().unwrap();
        assert!(message.starts_with("the query string"), "{path}: {message}");
    }
    // A path that cannot name a review item names nothing: 404, not a parser's complaint.
    for (path, body) in [
        ("/v1/review-items/abc/decision", json!({ "resolution": "x", "why": "y" })),
        ("/v1/review-items/99999999999999999999/plate", json!({ "plate": "AB123CD", "why": "y" })),
    ] {
        let body = assert_json_refusal_of(&app, "POST", path, &operator, body, 404, "not_found").await;
        assert!(body["message"].as_str().unwrap().starts_with("no review item"), "{path}: {body}");
    }
}

#[test]
fn the_type_name_check_catches_what_the_issue_saw() {
    assert!(leaks_a_type_name(r#"camera CameraId("cam1") is not in the lot's layout"#));
    assert!(leaks_a_type_name("warp Direct { supersample: 2 }"));
    assert!(leaks_a_type_name("Cannot parse `abc` to a `i64`"));
    assert!(!leaks_a_type_name(r#"camera "cam1" is not in the lot's layout"#));
}

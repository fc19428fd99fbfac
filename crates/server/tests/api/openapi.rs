//! `/openapi.json` against what the server really does: the document is valid OpenAPI 3.1 (by
//! the `openapi-spec-validator` package), and a day at the garage, through nearly every
//! operation, answers exactly as the document's generated schemas say, errors included.

use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::{TestApp, photo, spawn_app};

/// The document's schemas, checking answers.
struct Document {
    document: Value,
    /// Operations whose answers were checked: (method, path).
    checked: std::collections::BTreeSet<(String, String)>,
}

impl Document {
    fn new() -> Document {
        Document { document: valet_server::openapi_document(), checked: Default::default() }
    }

    /// Fails unless `body`, answered with `status` to `method path`, is what the document says:
    /// the status's own response (or `default`, an error) and its JSON schema.
    fn check(&mut self, method: &str, path: &str, status: u16, body: &Value) {
        let operation = &self.document["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        let responses = &operation["responses"];
        let response = responses.get(status.to_string()).unwrap_or(&responses["default"]);
        assert!(response.is_object(), "{method} {path}: {status} is not documented");
        let content = &response["content"];
        if content.is_null() {
            assert!(body.is_null(), "{method} {path}: {status} is documented without a body, got {body}");
        } else {
            let schema = &content["application/json"]["schema"];
            assert!(schema.is_object(), "{method} {path}: {status} has no JSON schema: {response}");
            // The schema's `$ref`s point into the document's components, so they travel with it.
            let root = json!({ "components": self.document["components"], "allOf": [schema] });
            let validator = jsonschema::draft202012::new(&root).unwrap();
            let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{method} {path} {status}: {errors:#?}\nin {body:#}\nagainst {schema:#}");
        }
        self.checked.insert((method.to_owned(), path.to_owned()));
    }
}

impl TestApp {
    /// `method path` with `bearer`, its answer checked against `template`'s documented schema.
    async fn checked(
        &self,
        document: &mut Document,
        (method, template): (&str, &str),
        path: &str,
        bearer: &str,
        body: Value,
    ) -> (u16, Value) {
        let (status, answer) = self.call(self.json(&method.to_uppercase(), path, bearer, body)).await;
        document.check(method, template, status, &answer);
        (status, answer)
    }
}

/// Whether `openapi-spec-validator` passes `document`; its complaint if not.
fn validate(document: &Value) -> Result<(), String> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), document.to_string()).unwrap();
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(open(sys.argv[1])))",
        ])
        .arg(file.path())
        .output()
        .unwrap();
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

#[test]
fn the_document_is_valid_openapi_3_1() {
    let probe = Command::new("python3").args(["-c", "import openapi_spec_validator"]).output();
    if !probe.is_ok_and(|out| out.status.success()) {
        eprintln!("skipping: openapi-spec-validator is not installed (pip install openapi-spec-validator==0.7.2)");
        return;
    }
    let document = valet_server::openapi_document();
    if let Err(complaint) = validate(&document) {
        panic!("{complaint}");
    }
    // And the validator does refuse a broken document, so the pass above means something.
    let mut broken = document;
    broken["paths"]["/v1/me"]["get"]["responses"] = json!("none");
    assert!(validate(&broken).is_err(), "a document whose responses are a string passed");
}

#[test]
fn the_document_is_generated_from_the_answer_types() {
    let document = valet_server::openapi_document();
    assert_eq!(document["openapi"], "3.1.0");
    let schemas = &document["components"]["schemas"];
    // Nested domain types are components of their own, with their serde names and shapes.
    assert_eq!(schemas["Money"]["required"], json!(["minor", "currency"]), "{:#}", schemas["Money"]);
    assert_eq!(schemas["SessionId"]["pattern"], "^[0-9a-fA-F]{32}$");
    let states: Vec<&str> = schemas["ChargeState"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|variant| variant["properties"]["state"]["enum"][0].as_str())
        .collect();
    assert_eq!(states, ["requested", "succeeded", "failed"], "{:#}", schemas["ChargeState"]);
    // Limits the handlers enforce are in the document.
    let read = &schemas["PlateReadEvent"]["properties"];
    assert_eq!(read["candidates"]["maxItems"], json!(valet_server::api::MAX_CANDIDATES));
    assert_eq!(
        (read["confidence"]["minimum"].as_f64(), read["confidence"]["maximum"].as_f64()),
        (Some(0.0), Some(1.0))
    );
    // A success answer names its type.
    let answer = &document["paths"]["/v1/me"]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(answer["$ref"], "#/components/schemas/DriverView");
}

#[tokio::test]
async fn a_day_at_the_garage_answers_as_the_document_says() {
    let app = spawn_app().await;
    let mut doc = Document::new();
    let (admin, key) = (app.operator.clone(), app.key.clone());

    let (status, _) = app.checked(&mut doc, ("get", "/healthz"), "/healthz", "", Value::Null).await;
    assert_eq!(status, 200);
    app.checked(&mut doc, ("get", "/readyz"), "/readyz", "", Value::Null).await;

    // The operator sets a tariff with a validation code and a night window.
    let tariff = json!({
        "currency": "EUR",
        "grace_minutes": 0,
        "daily_max_minor": 2400,
        "bands": [{ "name": "quarter", "from_minute": 0, "every_minutes": 15, "price_minor": 75 }],
        "windows": [{ "name": "night", "days": ["Sat", "Sun"], "from": "22:00", "to": "06:00", "every_minutes": 60, "price_minor": 100 }],
        "validations": [{ "code": "CINEMA", "discount": { "free_minutes": 60 }, "max_uses": 100 }]
    });
    let (status, body) = app
        .checked(&mut doc, ("put", "/v1/tariff"), "/v1/tariff", &admin, json!({ "tariff": tariff, "why": "opening" }))
        .await;
    assert_eq!(status, 200, "{body}");
    app.checked(&mut doc, ("get", "/v1/tariff"), "/v1/tariff", &admin, Value::Null).await;

    // A driver signs up; a registered car and an unknown one come and go.
    let sign_up = json!({ "plates": ["AB123CD"], "payment_method": "pm_card_visa", "email": "ann@example.com" });
    let (status, signed) = app.checked(&mut doc, ("post", "/v1/drivers"), "/v1/drivers", "", sign_up.clone()).await;
    assert_eq!(status, 201, "{signed}");
    let token = signed["token"].as_str().unwrap().to_owned();
    let (status, _) = app.checked(&mut doc, ("post", "/v1/drivers"), "/v1/drivers", "", sign_up).await;
    assert_eq!(status, 409, "the plate is taken: an error answer, checked too");

    let read = |direction: &str, text: &str, confidence: f64| {
        let mut body = json!({ "camera": format!("{direction}-1"), "direction": direction, "text": text, "confidence": confidence,
                               "candidates": [{ "text": text, "confidence": confidence }] });
        if direction == "entry" {
            body["at"] = json!(chrono::Utc::now() - chrono::TimeDelta::minutes(50));
        }
        body
    };
    let plate_reads = ("post", "/v1/plate-reads");
    for (direction, plate) in [("entry", "AB123CD"), ("entry", "XY987ZW"), ("exit", "AB123CD")] {
        let (status, body) =
            app.checked(&mut doc, plate_reads, "/v1/plate-reads", &key, read(direction, plate, 0.98)).await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, unsure) = app.checked(&mut doc, plate_reads, "/v1/plate-reads", &key, read("entry", "ZZ100ZZ", 0.2)).await;
    let item = unsure["review_items"][0].as_i64().expect("an unsure read is reviewed");
    let (_, unknown_exit) =
        app.checked(&mut doc, plate_reads, "/v1/plate-reads", &key, read("exit", "XY987ZW", 0.98)).await;
    let link = unknown_exit["display"]["link"].as_str().expect("an unregistered car pays by plate").to_owned();

    // The unregistered driver pays by the link.
    let pay = format!("/v1/pay/{link}");
    let (status, quote) = app.checked(&mut doc, ("get", "/v1/pay/{link}"), &pay, "", Value::Null).await;
    assert_eq!(status, 200, "{quote}");
    let (status, paid) =
        app.checked(&mut doc, ("post", "/v1/pay/{link}"), &pay, "", json!({ "payment_method": "pm_card_visa" })).await;
    assert_eq!(status, 200, "{paid}");

    // The signed-up driver's side.
    for path in ["/v1/me", "/v1/me/sessions", "/v1/me/receipts"] {
        let (status, body) = app.checked(&mut doc, ("get", path), path, &token, Value::Null).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (_, receipts) = app.checked(&mut doc, ("get", "/v1/me/receipts"), "/v1/me/receipts", &token, Value::Null).await;
    assert_eq!(receipts.as_array().unwrap().len(), 1, "{receipts}");
    app.checked(&mut doc, ("put", "/v1/me/email"), "/v1/me/email", &token, json!({ "email": null })).await;
    app.checked(&mut doc, ("post", "/v1/me/plates"), "/v1/me/plates", &token, json!({ "plate": "CD456EF" })).await;
    app.checked(&mut doc, ("delete", "/v1/me/plates/{plate}"), "/v1/me/plates/CD456EF", &token, Value::Null).await;
    let (status, code) =
        app.checked(&mut doc, ("post", "/v1/me/recovery-code"), "/v1/me/recovery-code", &token, Value::Null).await;
    assert_eq!(status, 201, "{code}");
    let sign_in = json!({ "plate": "AB123CD", "recovery_code": code["recovery_code"] });
    let (status, signed_in) =
        app.checked(&mut doc, ("post", "/v1/drivers/sign-in"), "/v1/drivers/sign-in", "", sign_in).await;
    assert_eq!(status, 200, "{signed_in}");

    // The operator's desk: sessions, a refund, the review queue, lists, permits, lanes, cameras.
    let (_, sessions) = app.checked(&mut doc, ("get", "/v1/sessions"), "/v1/sessions", &admin, Value::Null).await;
    assert!(sessions.as_array().unwrap().len() >= 3, "{sessions}");
    let charged = paid["session"].as_str().unwrap();
    let session = format!("/v1/sessions/{charged}");
    let (status, detail) = app.checked(&mut doc, ("get", "/v1/sessions/{id}"), &session, &admin, Value::Null).await;
    assert_eq!(status, 200, "{detail}");
    let (status, refund) = app
        .checked(
            &mut doc,
            ("post", "/v1/sessions/{id}/refunds"),
            &format!("{session}/refunds"),
            &admin,
            json!({ "amount_minor": 50, "why": "the barrier was slow" }),
        )
        .await;
    assert_eq!(status, 201, "{refund}");
    app.checked(&mut doc, ("get", "/v1/sessions/{id}"), &session, &admin, Value::Null).await;
    let (status, _) = app
        .checked(
            &mut doc,
            ("post", "/v1/sessions/{id}/charges"),
            &format!("{session}/charges"),
            &admin,
            json!({ "why": "it is paid" }),
        )
        .await;
    assert_eq!(status, 409, "a paid stay is not charged again");

    app.checked(&mut doc, ("get", "/v1/review-items"), "/v1/review-items", &admin, Value::Null).await;
    let decision = json!({ "resolution": "confirmed ZZ100ZZ", "why": "read off the image" });
    let (status, decided) = app
        .checked(
            &mut doc,
            ("post", "/v1/review-items/{id}/decision"),
            &format!("/v1/review-items/{item}/decision"),
            &admin,
            decision,
        )
        .await;
    assert_eq!(status, 200, "{decided}");

    let listing = json!({ "plate": "DE1234", "list": "allow", "why": "the caretaker" });
    app.checked(&mut doc, ("post", "/v1/lists"), "/v1/lists", &admin, listing).await;
    let (_, lists) = app.checked(&mut doc, ("get", "/v1/lists"), "/v1/lists", &admin, Value::Null).await;
    assert_eq!(lists["allow"], json!(["DE1234"]), "{lists}");
    let permit = json!({ "terms": {
        "id": "0123456789abcdef0123456789abcdef", "plates": ["PE12345"], "benefit": { "percent": 50 },
        "valid_from": chrono::Utc::now() - chrono::TimeDelta::days(1), "valid_to": chrono::Utc::now() + chrono::TimeDelta::days(30),
        "max_concurrent": 1 }, "why": "monthly" });
    let (status, body) = app.checked(&mut doc, ("post", "/v1/permits"), "/v1/permits", &admin, permit).await;
    assert_eq!(status, 201, "{body}");
    for path in ["/v1/permits", "/v1/lanes", "/v1/cameras", "/v1/dead-letters", "/v1/audit"] {
        let (status, body) = app.checked(&mut doc, ("get", path), path, &admin, Value::Null).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (_, audit) = app.checked(&mut doc, ("get", "/v1/audit"), "/v1/audit", &admin, Value::Null).await;
    assert!(audit.as_array().unwrap().len() >= 5, "tariff, refund, review, list and permit: {audit}");
    let (status, _) = app
        .checked(
            &mut doc,
            ("post", "/v1/barriers/{camera}/open"),
            "/v1/barriers/entry-1/open",
            &admin,
            json!({ "why": "intercom" }),
        )
        .await;
    assert_eq!(status, 503, "no broker in this test");

    // A camera's image work: a parking-space photo, a bay frame, and the lot's counts.
    let (status, classified) = app.call(app.classify(photo())).await;
    doc.check("post", "/v1/classify", status, &classified);
    assert_eq!(status, 200, "{classified}");
    let frame = axum::http::Request::post("/v1/lots/grid/frames")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "image/jpeg")
        .body(axum::body::Body::from(valet_imaging::synthetic::photo_jpeg(640, 480, None, 3)))
        .unwrap();
    let (status, update) = app.call(frame).await;
    doc.check("post", "/v1/lots/{id}/frames", status, &update);
    assert_eq!(status, 200, "{update}");
    let (status, _) = app
        .checked(&mut doc, ("get", "/v1/lots/{id}/availability"), "/v1/lots/grid/availability", "", Value::Null)
        .await;
    assert_eq!(status, 200);
    app.checked(&mut doc, ("get", "/v1/lots/{id}/calibration"), "/v1/lots/grid/calibration", &admin, Value::Null).await;

    // Errors everywhere are one shape.
    let (status, _) = app.checked(&mut doc, ("get", "/v1/me"), "/v1/me", "not-a-token", Value::Null).await;
    assert_eq!(status, 401);

    assert!(doc.checked.len() >= 35, "only {} operations checked: {:?}", doc.checked.len(), doc.checked);
}

#[test]
fn the_answer_check_refuses_what_the_schema_does_not_allow() {
    let mut doc = Document::new();
    let me = json!({ "driver": "d1", "plates": ["AB123CD"], "payment_method": "pm_card_visa", "email": null });
    doc.check("get", "/v1/me", 200, &me);
    for wrong in [
        json!({ "driver": 1, "plates": ["AB123CD"], "payment_method": "pm_card_visa", "email": null }),
        json!({ "plates": ["AB123CD"], "payment_method": "pm_card_visa" }),
        json!([]),
    ] {
        let refused =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| doc.check("get", "/v1/me", 200, &wrong)));
        assert!(refused.is_err(), "{wrong} passed as a DriverView");
    }
    // A gate frame's answer carries the gate's fields in full where the gate ran in the process,
    // and none of them where the functions run apart (the chain went on: 202).
    let apart = json!({ "id": "f1", "read": null, "events": [], "forwarded": "e2" });
    doc.check("post", "/v1/gates/{camera}/frames", 202, &apart);
    let mut half = apart.clone();
    half["barrier"] = json!("lift");
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        doc.check("post", "/v1/gates/{camera}/frames", 200, &half);
    }));
    assert!(refused.is_err(), "a barrier without the rest of the gate's answer passed");

    let error = json!({ "error": "unauthorized", "message": "no key" });
    doc.check("get", "/v1/me", 401, &error);
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| doc.check("get", "/v1/me", 401, &me)));
    assert!(refused.is_err(), "an error answer must be an ErrorAnswer");
}

//! The garage over HTTP: a camera's reads, a driver's account, pay-by-plate, and the operator's
//! desk, each through the router with real keys on an in-memory SQLite garage.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// A tariff with no grace: 75 cents per started quarter hour, so the 50-minute stays below cost 3 €.
fn no_grace_tariff() -> Value {
    json!({
        "currency": "EUR",
        "daily_max_minor": 2400,
        "bands": [{ "name": "quarter", "from_minute": 0, "every_minutes": 15, "price_minor": 75 }]
    })
}

impl TestApp {
    /// Entries are read 50 minutes ago, exits now (the server's clock).
    pub(crate) async fn read(&self, direction: &str, plate: &str) -> (u16, Value) {
        let mut body =
            json!({ "camera": format!("{direction}-1"), "direction": direction, "text": plate, "confidence": 0.98 });
        if direction == "entry" {
            body["at"] = json!(chrono::Utc::now() - chrono::TimeDelta::minutes(50));
        }
        self.call(self.json("POST", "/v1/plate-reads", &self.key, body)).await
    }

    pub(crate) async fn operator(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(self.json(method, path, &self.operator, body)).await
    }

    pub(crate) async fn charge_from_the_first_minute(&self) {
        let (status, body) =
            self.operator("PUT", "/v1/tariff", json!({ "tariff": no_grace_tariff(), "why": "test: no grace" })).await;
        assert_eq!(status, 200, "{body}");
    }
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = spawn_app().await;
    let document = valet_server::openapi_document();
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{} paths documented", paths.len());
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            let concrete: String = path
                .split('/')
                .map(|s| if s.starts_with('{') { "00000000000000000000000000000000" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let (status, body) = app.call(app.json(&method.to_uppercase(), &concrete, "", Value::Null)).await;
            let fell_through = status == 404 && body["message"].as_str().is_some_and(|m| m.starts_with("no route"));
            assert!(!fell_through && status != 405, "{method} {path} is documented but not routed ({status} {body})");
        }
    }
    // And the document is served.
    let (status, served) = app.call(app.json("GET", "/openapi.json", "", Value::Null)).await;
    assert_eq!((status, &served), (200, &document));
    assert_eq!(served["openapi"], "3.1.0");
}

#[tokio::test]
async fn a_driver_signs_up_at_the_entry_and_is_charged_at_the_exit() {
    let app = spawn_app().await;
    app.charge_from_the_first_minute().await;

    // An unknown car enters: a session opens as unregistered, with a sign-up link.
    let (status, entry) = app.read("entry", "AB123CD").await;
    assert_eq!(status, 200, "{entry}");
    assert_eq!((entry["barrier"].as_str(), entry["outcome"].as_str()), (Some("lift"), Some("opened")));
    let link = entry["link"].as_str().expect("an unregistered car gets a link").to_owned();

    // The driver signs up with that link while parked.
    let sign_up = json!({ "plates": ["AB123CD"], "payment_method": "pm_card_visa", "link": link });
    let (status, signed) = app.call(app.json("POST", "/v1/drivers", "", sign_up)).await;
    assert_eq!(status, 201, "{signed}");
    assert_eq!(signed["session"], entry["session"]);
    let token = signed["token"].as_str().unwrap().to_owned();

    // The plate cannot leave the account while the car is inside.
    let (status, refused) = app.call(app.json("DELETE", "/v1/me/plates/AB123CD", &token, Value::Null)).await;
    assert_eq!((status, refused["error"].as_str()), (409, Some("plate_in_active_session")), "{refused}");

    // The exit charges the stored payment method and lifts the barrier.
    let (status, exit) = app.read("exit", "AB123CD").await;
    assert_eq!(status, 200, "{exit}");
    assert_eq!(exit["outcome"], "charged", "{exit}");
    assert_eq!(exit["charge"], "succeeded");
    assert_eq!(exit["barrier"], "lift");

    // The driver sees the stay and its receipt, with the plate masked on the receipt.
    let (_, sessions) = app.call(app.json("GET", "/v1/me/sessions", &token, Value::Null)).await;
    assert_eq!(sessions.as_array().unwrap().len(), 1, "{sessions}");
    assert_eq!(sessions[0]["state"], "paid");
    let (_, receipts) = app.call(app.json("GET", "/v1/me/receipts", &token, Value::Null)).await;
    assert_eq!(receipts[0]["total"], json!({ "minor": 300, "currency": "EUR" }), "{receipts}");
    assert!(!receipts[0]["plate"].as_str().unwrap().contains("AB123CD"), "{receipts}");

    // Now that the car has left, the plate can go.
    let (status, _) = app.call(app.json("DELETE", "/v1/me/plates/AB123CD", &token, Value::Null)).await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn an_operator_refund_is_made_once_per_idempotency_key_and_audited() {
    let app = spawn_app().await;
    app.charge_from_the_first_minute().await;
    let sign_up = json!({ "plates": ["XY987ZW"], "payment_method": "pm_card_visa" });
    let (status, _) = app.call(app.json("POST", "/v1/drivers", "", sign_up)).await;
    assert_eq!(status, 201);
    app.read("entry", "XY987ZW").await;
    let (_, exit) = app.read("exit", "XY987ZW").await;
    let session = exit["session"].as_str().unwrap().to_owned();

    let refund = |key: &'static str| {
        let mut request = app.json(
            "POST",
            &format!("/v1/sessions/{session}/refunds"),
            &app.operator,
            json!({ "amount_minor": 25, "why": "barrier hit the car" }),
        );
        request.headers_mut().insert("idempotency-key", key.parse().unwrap());
        app.call(request)
    };
    let (status, first) = refund("refund-1").await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["amount"], json!({ "minor": 25, "currency": "EUR" }));
    let (status, again) = refund("refund-1").await;
    assert_eq!((status, &again), (201, &first), "a retry answers with the first refund");

    let (_, detail) = app.operator("GET", &format!("/v1/sessions/{session}"), Value::Null).await;
    assert_eq!(detail["refunds"].as_array().unwrap().len(), 1, "{detail}");
    assert_eq!(detail["charges"].as_array().unwrap().len(), 1);

    let (_, audit) = app.operator("GET", "/v1/audit", Value::Null).await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["what"].as_object()?.keys().next().map(String::as_str))
        .collect();
    assert_eq!(actions, ["tariff_change", "refund"], "{audit}");
    assert!(audit.as_array().unwrap().iter().all(|e| e["who"] == "alice"), "{audit}");

    // A refund needs a reason.
    let (status, body) = app.operator("POST", &format!("/v1/sessions/{session}/refunds"), json!({ "why": "  " })).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")), "{body}");
}

#[tokio::test]
async fn an_unregistered_driver_pays_by_plate_and_may_then_leave() {
    let app = spawn_app().await;
    app.charge_from_the_first_minute().await;
    app.read("entry", "KL555MN").await;

    let (_, held) = app.read("exit", "KL555MN").await;
    assert_eq!((held["barrier"].as_str(), held["outcome"].as_str()), (Some("hold"), Some("pay_by_plate")), "{held}");
    let link = held["link"].as_str().unwrap().to_owned();

    let (status, quote) = app.call(app.json("GET", &format!("/v1/pay/{link}"), "", Value::Null)).await;
    assert_eq!(status, 200, "{quote}");
    assert_eq!(quote["price"]["total"], json!({ "minor": 300, "currency": "EUR" }));

    let pay = json!({ "payment_method": "pm_card_mastercard" });
    let (status, paid) = app.call(app.json("POST", &format!("/v1/pay/{link}"), "", pay.clone())).await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(paid["charge"], "succeeded");
    assert_eq!(paid["receipt"]["total"]["minor"], 300);

    // The link is spent: a second payment (a double submit) charges nothing more.
    let (status, again) = app.call(app.json("POST", &format!("/v1/pay/{link}"), "", pay)).await;
    assert_eq!((status, again["error"].as_str()), (404, Some("unknown_link")), "{again}");
    let session = paid["session"].as_str().unwrap();
    let (_, detail) = app.operator("GET", &format!("/v1/sessions/{session}"), Value::Null).await;
    assert_eq!(detail["charges"].as_array().unwrap().len(), 1, "{detail}");

    let (_, out) = app.read("exit", "KL555MN").await;
    assert_eq!((out["barrier"].as_str(), out["outcome"].as_str()), (Some("lift"), Some("already_closed")), "{out}");
}

#[tokio::test]
async fn a_denied_plate_is_refused_and_its_review_item_decided_once() {
    let app = spawn_app().await;
    let (status, body) =
        app.operator("POST", "/v1/lists", json!({ "plate": "DD666EE", "list": "deny", "why": "unpaid debts" })).await;
    assert_eq!(status, 204, "{body}");

    let (_, entry) = app.read("entry", "DD666EE").await;
    assert_eq!((entry["barrier"].as_str(), entry["outcome"].as_str()), (Some("hold"), Some("refused")), "{entry}");
    let item = entry["review_items"][0].as_i64().expect("a refusal is reviewed");

    let (_, queue) = app.operator("GET", "/v1/review-items", Value::Null).await;
    assert_eq!(queue[0]["id"], item, "{queue}");
    assert_eq!(queue[0]["item"]["reason"], "denied_plate");

    let decide = json!({ "resolution": "turned away", "why": "deny list" });
    let path = format!("/v1/review-items/{item}/decision");
    let (status, decided) = app.operator("POST", &path, decide.clone()).await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["resolved_by"], "alice");
    let (status, twice) = app.operator("POST", &path, decide).await;
    assert_eq!((status, twice["error"].as_str()), (409, Some("already_decided")), "{twice}");

    let (_, queue) = app.operator("GET", "/v1/review-items", Value::Null).await;
    assert_eq!(queue, json!([]));
}

#[tokio::test]
async fn each_side_of_the_api_refuses_the_others_credentials() {
    let app = spawn_app().await;
    let (_, signed) =
        app.call(app.json("POST", "/v1/drivers", "", json!({ "plates": ["AA111BB"], "payment_method": "pm_x" }))).await;
    let driver = signed["token"].as_str().unwrap().to_owned();

    let cases = [
        ("GET", "/v1/sessions", "", 401, "missing_api_key"),
        ("GET", "/v1/sessions", driver.as_str(), 401, "invalid_api_key"),
        ("GET", "/v1/sessions", app.key.as_str(), 403, "wrong_role"),
        ("GET", "/v1/me", app.operator.as_str(), 401, "invalid_api_key"),
        ("GET", "/v1/me", "", 401, "missing_api_key"),
    ];
    for (method, path, bearer, status, code) in cases {
        let (got, body) = app.call(app.json(method, path, bearer, Value::Null)).await;
        assert_eq!((got, body["error"].as_str()), (status, Some(code)), "{method} {path}: {body}");
    }
    let read = json!({ "camera": "entry-1", "direction": "entry", "text": "AA111BB", "confidence": 0.9 });
    let (status, body) = app.call(app.json("POST", "/v1/plate-reads", &app.operator, read)).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("wrong_role")), "{body}");
}

#[tokio::test]
async fn bad_sign_ups_are_refused_with_a_reason_and_store_nothing() {
    let app = spawn_app().await;
    let card = json!({ "plates": ["AB123CD"], "payment_method": "4242 4242 4242 4242" });
    let (status, body) = app.call(app.json("POST", "/v1/drivers", "", card)).await;
    assert_eq!(status, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("card number") && !message.contains("4242"), "{message}");

    let cases = [
        json!({ "plates": [], "payment_method": "pm_x" }),
        json!({ "plates": ["!"], "payment_method": "pm_x" }),
        json!({ "plates": ["AB123CD"] }),
        json!({ "plates": ["AB123CD"], "payment_method": "pm_x", "link": "not-a-link" }),
    ];
    for case in cases {
        let (status, body) = app.call(app.json("POST", "/v1/drivers", "", case.clone())).await;
        assert!(matches!(status, 400 | 404 | 422), "{case}: {status} {body}");
        assert!(body["error"].is_string(), "{case}: an error answer is JSON: {body}");
    }
    // None of them left an account behind: the plate is still free to sign up with.
    let ok = json!({ "plates": ["AB123CD"], "payment_method": "pm_x" });
    let (status, body) = app.call(app.json("POST", "/v1/drivers", "", ok.clone())).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app.call(app.json("POST", "/v1/drivers", "", ok)).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("plate_unavailable")), "{body}");

    let (status, body) = app
        .call(app.json("POST", "/v1/plate-reads", &app.key, json!({ "camera": "x", "direction": "sideways" })))
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")), "{body}");
}

#[tokio::test]
async fn an_operator_runs_the_day_but_only_an_admin_changes_the_rules() {
    let app = spawn_app().await;
    let name = valet_store::DeviceName::parse("bob").unwrap();
    let (_, bob) = app.store.add_key(&name, valet_store::Role::Operator, chrono::Utc::now()).await.unwrap();
    let bob = bob.expose();
    // Bob, an operator, reads the queue, the tariff and the lists ...
    for path in ["/v1/review-items", "/v1/tariff", "/v1/lists", "/v1/permits", "/v1/sessions"] {
        let (status, body) = app.call(app.json("GET", path, bob, Value::Null)).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    // ... but changing them takes an admin's key.
    let change = json!({ "plate": "AB123CD", "list": "deny", "why": "reported stolen" });
    let (status, body) = app.call(app.json("POST", "/v1/lists", bob, change.clone())).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("wrong_role")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("admin"), "{body}");
    let (status, _) = app.call(app.json("POST", "/v1/lists", &app.operator, change)).await;
    assert_eq!(status, 204, "alice is an admin");
    // A camera's key is no operator's.
    let (status, _) = app.call(app.json("GET", "/v1/review-items", &app.key, Value::Null)).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn an_operator_corrects_a_misread_entry_plate_and_the_stay_follows_the_plate() {
    let app = spawn_app().await;
    let misread = json!({ "camera": "entry-1", "direction": "entry", "text": "AB123C0", "confidence": 0.3 });
    let (status, entry) = app.call(app.json("POST", "/v1/plate-reads", &app.key, misread)).await;
    assert_eq!(status, 200, "{entry}");
    let item = entry["review_items"][0].as_i64().expect("an unsure read is reviewed");
    let path = format!("/v1/review-items/{item}/plate");

    let (status, body) = app.operator("POST", &path, json!({ "plate": "!!", "why": "read off the image" })).await;
    assert_eq!(status, 400, "an unreadable correction is refused: {body}");
    let (status, body) = app.call(app.json("POST", &path, &app.key, json!({ "plate": "AB123CD", "why": "x" }))).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("wrong_role")), "a camera's key corrects nothing: {body}");

    let (status, corrected) =
        app.operator("POST", &path, json!({ "plate": "AB123CD", "why": "read off the image" })).await;
    assert_eq!(status, 200, "{corrected}");
    assert_eq!(corrected["resolved_by"], "alice", "{corrected}");
    let (status, again) = app.operator("POST", &path, json!({ "plate": "AB123CD", "why": "twice" })).await;
    assert_eq!((status, again["error"].as_str()), (409, Some("already_decided")), "{again}");

    // The exit reads the real plate and finds the stay under it (inside the free minutes: nothing owed).
    let (_, out) = app.read("exit", "AB123CD").await;
    assert_eq!(
        (out["outcome"].as_str(), &out["session"]),
        (Some("nothing_owed"), &corrected["item"]["session"]),
        "{out}"
    );
    let (_, audit) = app.operator("GET", "/v1/audit", Value::Null).await;
    assert!(audit.to_string().contains("plate_corrected"), "{audit}");
}

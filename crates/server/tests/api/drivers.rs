//! The driver's side: the plate as the driver spelled it.

use serde_json::{Value, json};

use crate::helpers::spawn_app;

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

//! Missed exits over HTTP: a stay open four days is raised for review, and an operator closes it
//! at the daily maximum through the review decision, charged to the signed-up driver and audited;
//! the close actions refuse an item that is not a missed exit.

use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_stay_open_four_days_is_raised_and_closed_at_the_daily_maximum_by_an_operator() {
    let app = spawn_app().await;
    app.charge_from_the_first_minute().await;
    let sign_up = json!({ "plates": ["MX400DD"], "payment_method": "pm_card_visa" });
    let (status, body) = app.call(app.json("POST", "/v1/drivers", "", sign_up)).await;
    assert_eq!(status, 201, "{body}");
    let four_days_ago = chrono::Utc::now() - chrono::TimeDelta::days(4);
    // The API takes no read a day old, so the gate is handed it as a camera's buffered read.
    let read = valet_garage::PlateRead {
        text: "MX400DD".into(),
        confidence: 0.98,
        candidates: Vec::new(),
        camera: valet_garage::CameraId("entry-1".into()),
        direction: valet_garage::Direction::Entry,
        at: four_days_ago,
    };
    let entry = app.state.gate().handle_entry(&read).await.unwrap();
    let valet_garage::EntryOutcome::Opened(session) = entry.decision.outcome else { panic!("{:?}", entry.decision) };
    let stay = session.id.to_string();
    // An unsure read raises an item that is no missed exit.
    let unsure = json!({ "camera": "entry-1", "direction": "entry", "text": "ZZ100ZZ", "confidence": 0.2 });
    app.call(app.json("POST", "/v1/plate-reads", &app.key, unsure)).await;

    let raised = app.state.gate().flag_missed_exits().await.unwrap();
    assert_eq!(raised.len(), 1, "only the four-day stay is past the 72 hours");
    let (_, items) = app.operator("GET", "/v1/review-items", Value::Null).await;
    let items = items.as_array().unwrap();
    let missed = items.iter().find(|i| i["item"]["session"] == stay.as_str()).unwrap_or_else(|| panic!("{items:?}"));
    assert!(missed["item"]["reason"].to_string().contains("missed_exit"), "{missed}");
    let other = items.iter().find(|i| i["item"]["session"] != stay.as_str()).unwrap();

    let close = |decision: &str| json!({ "session": { "decision": decision }, "resolution": "closed", "why": "exit camera was down" });
    let (status, body) =
        app.operator("POST", &format!("/v1/review-items/{}/decision", other["id"]), close("close_free")).await;
    assert_eq!((status, body["error"].as_str()), (422, Some("not_a_missed_exit")), "{body}");
    let path = format!("/v1/review-items/{}/decision", missed["id"]);
    let (status, decided) = app.operator("POST", &path, close("close_at_daily_maximum")).await;
    assert_eq!(status, 200, "{decided}");
    let (status, again) = app.operator("POST", &path, close("close_free")).await;
    assert_eq!((status, again["error"].as_str()), (409, Some("already_decided")), "{again}");

    let (_, detail) = app.operator("GET", &format!("/v1/sessions/{stay}"), Value::Null).await;
    assert_eq!(detail["state"], "paid", "{detail}");
    assert_eq!(detail["price"]["total"]["minor"], 2400, "the daily maximum once: {detail}");
    assert_eq!(detail["charges"].as_array().unwrap().len(), 1);
    assert_eq!(detail["charges"][0]["state"]["state"], "succeeded", "{detail}");
    let (_, audit) = app.operator("GET", "/v1/audit", Value::Null).await;
    let text = audit.to_string();
    assert!(text.contains("missed_exit_closed") && text.contains("exit camera was down"), "{audit}");
}

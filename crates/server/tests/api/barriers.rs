//! Lifting a barrier by hand: only a lane the gate knows, only when the command reaches the
//! MQTT broker, and only then audited. A typo'd lane or a missing broker is said plainly.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_functions};

const BROKER: &str = "127.0.0.1:1883";

async fn lift(app: &TestApp, camera: &str) -> (u16, Value) {
    app.operator("POST", &format!("/v1/barriers/{camera}/open"), json!({ "why": "intercom: ticket lost" })).await
}

async fn manual_lifts_audited(app: &TestApp) -> usize {
    let (_, audit) = app.operator("GET", "/v1/audit", Value::Null).await;
    audit.as_array().unwrap().iter().filter(|e| e["what"].get("manual_barrier_open").is_some()).count()
}

#[tokio::test]
async fn a_lane_no_camera_has_read_from_is_refused_and_not_audited() {
    let app = spawn_app().await;
    let (status, body) = lift(&app, "no-such-cam").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("unknown_lane")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("none yet"), "{body}");
    // Once a camera has read a plate its lane is known, and the refusal lists it.
    app.read("exit", "AB123CD").await;
    let (status, body) = lift(&app, "exit-l").await;
    assert_eq!(status, 404, "{body}");
    assert!(body["message"].as_str().unwrap().contains("exit-1"), "the known lanes are listed: {body}");
    let (status, lanes) = app.operator("GET", "/v1/lanes", Value::Null).await;
    assert_eq!(status, 200);
    assert_eq!(lanes.as_array().unwrap().len(), 1, "{lanes}");
    assert_eq!((lanes[0]["camera"].as_str(), lanes[0]["direction"].as_str()), (Some("exit-1"), Some("exit")));
    assert_eq!(manual_lifts_audited(&app).await, 0, "nothing was lifted, so nothing is audited as lifted");
}

#[tokio::test]
async fn without_a_barrier_channel_the_lift_is_refused_and_not_audited() {
    let app = spawn_app().await;
    app.read("exit", "AB123CD").await;
    let (status, body) = lift(&app, "exit-1").await;
    assert_eq!((status, body["error"].as_str()), (503, Some("barrier_not_reached")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("VALET_MQTT_BROKER"), "{body}");
    assert_eq!(manual_lifts_audited(&app).await, 0);
}

#[tokio::test]
async fn a_lift_reaches_the_barrier_over_mqtt_and_is_then_audited() {
    if std::net::TcpStream::connect_timeout(&BROKER.parse().unwrap(), Duration::from_secs(1)).is_err() {
        eprintln!("skipping: no MQTT broker answers at {BROKER}");
        return;
    }
    let prefix = format!("valet-barrier-test-{}", std::process::id());
    let (mqtt, _) = valet_server::Mqtt::connect(BROKER, &prefix, 1 << 20, false).unwrap();
    let wiring = valet_server::Wiring { mqtt: Some(mqtt), ..valet_server::Wiring::default() };
    let app = spawn_functions(valet_server::Settings::default(), wiring).await;
    app.read("exit", "AB123CD").await;

    let mut options = rumqttc::MqttOptions::new(format!("{prefix}-barrier"), "127.0.0.1", 1883);
    options.set_keep_alive(Duration::from_secs(5));
    let (barrier, mut events) = rumqttc::AsyncClient::new(options, 10);
    barrier.subscribe(format!("{prefix}/barriers/exit-1"), rumqttc::QoS::AtLeastOnce).await.unwrap();
    // Wait for the subscription to be in place before lifting.
    tokio::time::timeout(Duration::from_secs(10), async {
        while !matches!(events.poll().await, Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)))) {}
    })
    .await
    .expect("subscribed");

    // The server's own connection may still be coming up: it says so instead of pretending.
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (status, body) = lift(&app, "exit-1").await;
            if status != 503 {
                return (status, body);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the server connects to the broker");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sent_to"], format!("{prefix}/barriers/exit-1"));
    let command = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) = events.poll().await {
                return serde_json::from_slice::<Value>(&p.payload).unwrap();
            }
        }
    })
    .await
    .expect("the barrier hears the command");
    assert_eq!((command["barrier"].as_str(), command["outcome"].as_str()), (Some("lift"), Some("manual")));
    assert_eq!(manual_lifts_audited(&app).await, 1);
}

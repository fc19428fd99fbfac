//! The database goes away mid-chain and comes back. Valet reaches PostgreSQL through a TCP relay
//! the test can cut (every live connection dropped, new ones refused) and restore, as a database
//! restart or a network partition looks from Valet's side. While it is cut `/readyz` says so and a
//! camera's read is answered 503 with `Retry-After` within seconds, not after sqlx's 30 s nor as a
//! 500; once it is back the same process serves again without a restart, and the camera's
//! retried reads make exactly one stay and one charge.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use valet_server::Settings;

use crate::helpers::{TestApp, lots, spawn_on};

/// A TCP relay to `upstream` that can be cut and restored.
struct Relay {
    addr: SocketAddr,
    up: watch::Sender<bool>,
}

impl Relay {
    async fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, watching) = watch::channel(true);
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { continue };
                let mut cut = watching.clone();
                if !*cut.borrow() {
                    continue; // dropped: the database refuses connections
                }
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Relay { addr, up }
    }

    fn cut(&self) {
        self.up.send_replace(false);
    }

    fn restore(&self) {
        self.up.send_replace(true);
    }
}

/// `url` with its host and port replaced by `relay`'s, and the address it named.
fn through(url: &str, relay: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let (user, _) = authority.rsplit_once('@').unwrap_or(("", authority));
    let user = if user.is_empty() { String::new() } else { format!("{user}@") };
    format!("{scheme}://{user}{relay}/{path}")
}

fn upstream(url: &str) -> SocketAddr {
    let rest = url.split_once("://").unwrap().1;
    let authority = rest.split_once('/').unwrap().0;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let host_port = if host_port.contains(':') { host_port.to_owned() } else { format!("{host_port}:5432") };
    host_port.to_socket_addrs().unwrap().next().unwrap()
}

async fn read(app: &TestApp, direction: &str, plate: &str) -> (u16, Value, Duration) {
    let started = Instant::now();
    let body = json!({ "camera": format!("{direction}-1"), "direction": direction, "text": plate, "confidence": 0.97 });
    let (status, answer) = app.call(app.json("POST", "/v1/plate-reads", &app.key, body)).await;
    (status, answer, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_mid_chain_is_503_and_the_retries_after_it_make_one_stay_and_one_charge() {
    let key = valet_store::PlateKey::new(&[7; 32]).unwrap();
    let scratch = match valet_store::scratch::ScratchGarage::postgres(key, "valet_outage").await {
        Ok(scratch) => scratch,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    let url = scratch.postgres_url().unwrap();
    let relay = Relay::start(upstream(&url)).await;
    let store = valet_store::Store::connect_postgres(&through(&url, relay.addr)).await.unwrap();
    let settings =
        Settings { plate_key: Some(valet_server::settings::Secret::new("07".repeat(32))), ..Settings::default() };
    let app = spawn_on(store, "", settings, valet_server::Wiring::default(), lots()).await;
    app.charge_from_the_first_minute().await;
    let sign_up = json!({ "plates": ["DB503UP"], "payment_method": "pm_card_visa" });
    let (status, body) = app.call(app.json("POST", "/v1/drivers", "", sign_up)).await;
    assert_eq!(status, 201, "{body}");
    // Entered 50 minutes ago: its exit owes €3.00.
    assert_eq!(app.read("entry", "DB503UP").await.0, 200);

    relay.cut();
    let started = Instant::now();
    let (status, ready) = app.call(app.json("GET", "/readyz", "", Value::Null)).await;
    assert_eq!((status, ready["status"].as_str()), (503, Some("unavailable")), "{ready}");
    assert!(started.elapsed() < Duration::from_secs(6), "readyz answered in {:?}", started.elapsed());
    let (status, answer, took) = read(&app, "exit", "DB503UP").await;
    assert_eq!((status, answer["error"].as_str()), (503, Some("database_unavailable")), "{answer}");
    assert!(took < Duration::from_secs(6), "answered in {took:?}, not after a 30 s pool wait");
    let (status, answer, _) = read(&app, "entry", "DB503NEW").await;
    assert_eq!(status, 503, "{answer}");

    relay.restore();
    // The camera sends again, as a 503 with Retry-After tells it to; the same process serves.
    let (status, exit, _) = read(&app, "exit", "DB503UP").await;
    assert_eq!((status, exit["charge"].as_str()), (200, Some("succeeded")), "{exit}");
    let (status, entry, _) = read(&app, "entry", "DB503NEW").await;
    assert_eq!((status, entry["outcome"].as_str()), (200, Some("opened")), "{entry}");
    let (status, _) = app.call(app.json("GET", "/readyz", "", Value::Null)).await;
    assert_eq!(status, 200);

    // One stay each, one charge: nothing lost, nothing doubled.
    let (_, sessions) = app.operator("GET", "/v1/sessions", Value::Null).await;
    let plates: Vec<&str> = sessions.as_array().unwrap().iter().filter_map(|s| s["plate"].as_str()).collect();
    assert_eq!(plates.iter().filter(|p| **p == "DB503UP").count(), 1, "{sessions}");
    assert_eq!(plates.iter().filter(|p| **p == "DB503NEW").count(), 1, "{sessions}");
    let id = exit["session"].as_str().unwrap();
    let (_, detail) = app.operator("GET", &format!("/v1/sessions/{id}"), Value::Null).await;
    assert_eq!((detail["state"].as_str(), detail["charges"].as_array().unwrap().len()), (Some("paid"), 1), "{detail}");
}

//! The garage's MQTT broker restarts while cameras publish. The test runs its own Mosquitto on a
//! free port, so it can stop and start it: Valet's connection notices, reconnects on its own,
//! subscribes again, and the frames cameras publish after the restart reach ingest; barrier
//! commands go out again too. No restart of Valet is needed.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use valet_server::mqtt::Frame;

/// A Mosquitto of the test's own; killed on drop.
struct Broker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Broker {
    /// `None`, with the reason printed, where Mosquitto is not installed.
    fn start(port: u16, dir: tempfile::TempDir) -> Option<Broker> {
        let config = dir.path().join("mosquitto.conf");
        std::fs::write(&config, format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"))
            .unwrap();
        let child = match Command::new("mosquitto")
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                eprintln!("skipped: mosquitto cannot be started ({e}); apt-get install mosquitto");
                return None;
            }
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Broker { child, port, _dir: dir })
    }

    fn stop(mut self) -> (u16, tempfile::TempDir) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let port = self.port;
        // Moved out so that `Drop` does not run a second kill on a reaped child.
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap());
        (port, dir)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client id no other client of this run has.
fn client_id(role: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!("{role}-{}-{}", std::process::id(), NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A camera's MQTT client publishing `payload` on `topic` every 200 ms until `stop` fires.
fn camera(port: u16, topic: String, payload: Vec<u8>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut options = MqttOptions::new(client_id("camera"), "127.0.0.1", port);
        options.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut events) = AsyncClient::new(options, 16);
        tokio::spawn(async move {
            loop {
                if events.poll().await.is_err() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        });
        loop {
            let _ = client.publish(topic.clone(), QoS::AtLeastOnce, false, payload.clone()).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// A barrier listening on `topic`: the first command it receives.
fn barrier(port: u16, topic: String) -> tokio::task::JoinHandle<Vec<u8>> {
    tokio::spawn(async move {
        let options = MqttOptions::new(client_id("barrier"), "127.0.0.1", port);
        let (client, mut events) = AsyncClient::new(options, 16);
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    client.subscribe(topic.clone(), QoS::AtLeastOnce).await.unwrap()
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => return publish.payload.to_vec(),
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_broker_restarts_frames_reach_ingest_and_barrier_commands_go_out_without_restarting_valet() {
    let port = free_port();
    let Some(broker) = Broker::start(port, tempfile::tempdir().unwrap()) else { return };
    let prefix = format!("valet-restart-{}", std::process::id());
    let (mqtt, frames) = valet_server::Mqtt::connect(&format!("127.0.0.1:{port}"), &prefix, 1 << 20, true).unwrap();
    let mut frames = frames.unwrap();
    let jpeg = include_bytes!("../../demo/gate-VL482TG.jpg").to_vec();
    let topic = format!("{prefix}/gates/lane-1/entry");

    let before = camera(port, topic.clone(), jpeg.clone());
    let first = tokio::time::timeout(Duration::from_secs(15), frames.recv()).await.expect("a frame before").unwrap();
    let Frame::Gate { camera: lane, direction, image } = &first.frame else { panic!("{:?}", first.frame) };
    assert_eq!((lane.as_str(), *direction, image.len()), ("lane-1", "entry", jpeg.len()));
    mqtt.ack(&first).await;
    before.abort();

    // The broker goes away and comes back on the same port, with no memory of anyone.
    let (port, dir) = broker.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // What arrived before the restart is not evidence of what comes after it.
    while let Ok(stale) = frames.try_recv() {
        drop(stale);
    }
    let _broker = Broker::start(port, dir).expect("mosquitto started once already");
    let started = Instant::now();
    let after = camera(port, topic, jpeg.clone());
    // Frames published before Valet subscribed again had no one to go to; the first one after
    // it did arrives. Drain until one does.
    let again =
        tokio::time::timeout(Duration::from_secs(20), frames.recv()).await.expect("a frame after the restart").unwrap();
    assert!(matches!(&again.frame, Frame::Gate { image, .. } if image.len() == jpeg.len()));
    mqtt.ack(&again).await;
    after.abort();
    eprintln!("frames flowed again {:?} after the broker restarted", started.elapsed());

    // And the gate's commands reach a barrier through the restarted broker.
    let listening = barrier(port, format!("{prefix}/barriers/lane-1"));
    let deadline = Instant::now() + Duration::from_secs(15);
    let command = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = mqtt.publish_barrier("lane-1", &serde_json::json!({ "barrier": "lift" }));
        if listening.is_finished() {
            break listening.await.unwrap();
        }
        assert!(Instant::now() < deadline, "no barrier command got through the restarted broker");
    };
    assert!(String::from_utf8(command).unwrap().contains("lift"));
}

//! The garage LAN's MQTT broker (Mosquitto or any MQTT 3.1.1 broker), one connection per process:
//!
//! - ingest subscribes to the cameras' frames: `{prefix}/gates/{camera}/{entry|exit}` and
//!   `{prefix}/lots/{lot}/cameras/{camera}/frames`, each payload one JPEG (QoS 1);
//! - the gate publishes barrier commands on `{prefix}/barriers/{camera}` (QoS 1, not retained:
//!   a stale "lift" must never replay to a barrier that reconnects);
//! - occupancy publishes each lot's counts for signs, retained (see [`crate::signs`]).
//!
//! Several ingest replicas share one subscription (`$share/valet-ingest/…`), so each frame is
//! handled once. Devices authenticate to the broker (its password file and ACLs give each camera its own
//! topics); Valet trusts what the broker delivers on the frame topics. A broker that is down
//! delays signs and barrier commands, never the HTTP API: the client reconnects on its own and
//! subscribes again on every connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use tokio::sync::mpsc;

/// A shared handle: cheap to clone.
#[derive(Debug, Clone)]
pub struct Mqtt {
    client: AsyncClient,
    prefix: String,
    /// Whether the broker accepted the current connection: a command queued while it is down
    /// would reach a barrier only after the car has gone, so manual lifts refuse instead.
    connected: Arc<AtomicBool>,
    broker: String,
}

/// A camera frame that arrived over MQTT.
#[derive(Debug)]
pub enum Frame {
    Gate { camera: String, direction: &'static str, image: Bytes },
    Lot { lot: String, camera: String, image: Bytes },
}

/// A frame, and the broker's message to acknowledge once it has been handled.
#[derive(Debug)]
pub struct Delivery {
    pub frame: Frame,
    publish: Publish,
}

impl Mqtt {
    /// Connects to `broker` (`HOST:PORT`, or `mqtt://HOST:PORT`). With `frames`, subscribes to
    /// the camera topics and hands each frame to the returned receiver, acknowledged only when
    /// [`Mqtt::ack`] is called for it.
    pub fn connect(
        broker: &str,
        prefix: &str,
        max_frame_bytes: usize,
        frames: bool,
    ) -> anyhow::Result<(Mqtt, Option<mpsc::Receiver<Delivery>>)> {
        let address = broker.strip_prefix("mqtt://").unwrap_or(broker);
        let (host, port) = address
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host.to_owned(), port.parse::<u16>().ok()?)))
            .ok_or_else(|| anyhow::anyhow!("the MQTT broker is HOST:PORT, not {broker:?}"))?;
        let mut options = MqttOptions::new(
            format!("valet-{}-{}", std::process::id(), crate::functions::cloudevents::fresh_id()),
            host,
            port,
        );
        options.set_keep_alive(Duration::from_secs(30));
        options.set_max_packet_size(max_frame_bytes + 1024, max_frame_bytes + 1024);
        options.set_manual_acks(true);
        let (client, mut events) = AsyncClient::new(options, 64);
        let connected = Arc::new(AtomicBool::new(false));
        let mqtt = Mqtt {
            client: client.clone(),
            prefix: prefix.to_owned(),
            connected: Arc::clone(&connected),
            broker: address.to_owned(),
        };
        let (sender, receiver) = mpsc::channel(16);
        // A shared subscription: several ingest replicas split the frames instead of each
        // getting every one (Mosquitto ≥ 1.6 serves `$share` to MQTT 3.1.1 clients too).
        let topics = [
            format!("$share/valet-ingest/{prefix}/gates/+/+"),
            format!("$share/valet-ingest/{prefix}/lots/+/cameras/+/frames"),
        ];
        let prefix = prefix.to_owned();
        tokio::spawn(async move {
            loop {
                let event = events.poll().await;
                connected.store(event.is_ok(), Ordering::Relaxed);
                match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) if frames => {
                        for topic in &topics {
                            if let Err(e) = client.try_subscribe(topic.clone(), QoS::AtLeastOnce) {
                                tracing::warn!(error = %e, topic, "could not subscribe");
                            }
                        }
                        tracing::info!(?topics, "subscribed to the cameras' frames");
                    }
                    Ok(Event::Incoming(Packet::Publish(publish))) => match parse(&prefix, &publish) {
                        Some(frame) if frames => {
                            // Backpressure: the broker holds further frames while ingest is busy.
                            if sender.send(Delivery { frame, publish }).await.is_err() {
                                return;
                            }
                        }
                        _ => {
                            tracing::warn!(topic = %publish.topic, "message on a topic Valet does not read; dropped");
                            let _ = client.try_ack(&publish);
                        }
                    },
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "MQTT broker unreachable; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok((mqtt, frames.then_some(receiver)))
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Acknowledges a frame once handled (or refused for good): until then the broker may
    /// deliver it again.
    pub async fn ack(&self, delivery: &Delivery) {
        if let Err(e) = self.client.ack(&delivery.publish).await {
            tracing::warn!(error = %e, "could not acknowledge a frame");
        }
    }

    /// Queues a barrier command for `camera`'s lane, on `{prefix}/barriers/{camera}` (the
    /// topic is returned): refused while the broker is not connected, and when the client's
    /// queue is full.
    pub fn publish_barrier(&self, camera: &str, command: &serde_json::Value) -> Result<String, String> {
        if !self.connected.load(Ordering::Relaxed) {
            return Err(format!("the MQTT broker at {} is not connected", self.broker));
        }
        let topic = format!("{}/barriers/{camera}", self.prefix);
        self.client
            .try_publish(topic.clone(), QoS::AtLeastOnce, false, command.to_string())
            .map_err(|e| format!("the command could not be queued for the MQTT broker: {e}"))?;
        Ok(topic)
    }

    /// Publishes `payload` on `topic`, retained: the latest value a sign reads on connecting.
    pub async fn publish_retained(&self, topic: String, payload: Vec<u8>) {
        if let Err(e) = self.client.publish(topic, QoS::AtLeastOnce, true, payload).await {
            tracing::warn!(error = %e, "could not queue a retained message");
        }
    }
}

pub(crate) fn parse(prefix: &str, publish: &Publish) -> Option<Frame> {
    let rest = publish.topic.strip_prefix(prefix)?.strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    let image = publish.payload.clone();
    match parts.as_slice() {
        ["gates", camera, "entry"] => Some(Frame::Gate { camera: (*camera).to_owned(), direction: "entry", image }),
        ["gates", camera, "exit"] => Some(Frame::Gate { camera: (*camera).to_owned(), direction: "exit", image }),
        ["lots", lot, "cameras", camera, "frames"] => {
            Some(Frame::Lot { lot: (*lot).to_owned(), camera: (*camera).to_owned(), image })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(topic: &str) -> Publish {
        Publish::new(topic, QoS::AtLeastOnce, vec![0xff, 0xd8])
    }

    #[test]
    fn frame_topics_name_the_camera_and_the_lane_or_the_lot() {
        match parse("valet", &publish("valet/gates/north-in/entry")) {
            Some(Frame::Gate { camera, direction: "entry", image }) => {
                assert_eq!(camera, "north-in");
                assert_eq!(&image[..], &[0xff, 0xd8]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse("valet", &publish("valet/lots/p1/cameras/c2/frames")),
            Some(Frame::Lot { lot, camera, .. }) if lot == "p1" && camera == "c2"
        ));
        for other in ["valet/gates/x/sideways", "valet/lots/p1/availability", "other/gates/x/entry", "valet/barriers/x"]
        {
            assert!(parse("valet", &publish(other)).is_none(), "{other}");
        }
    }
}

//! Counts for signs over MQTT: after every frame, each lot's availability is published, retained,
//! on `{prefix}/lots/{id}/availability`, so a sign that (re)connects gets the latest at once. The
//! broker is the garage LAN's (Mosquitto or any MQTT 3.1.1 broker); a broker that is down delays
//! the signs, never the frames: the client reconnects on its own and the newest counts win.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio::sync::broadcast::error::RecvError;

use crate::lots::{LiveLot, Lots};

/// The topic a lot's availability is published on.
pub fn topic(prefix: &str, lot: &str) -> String {
    format!("{prefix}/lots/{lot}/availability")
}

/// Connects to the broker at `host:port` and publishes every lot's counts as they change.
pub fn spawn(broker: &str, prefix: &str, lots: &Lots) -> anyhow::Result<()> {
    let (host, port) = broker
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host.to_owned(), port.parse::<u16>().ok()?)))
        .ok_or_else(|| anyhow::anyhow!("the MQTT broker is HOST:PORT, not {broker:?}"))?;
    let mut options = MqttOptions::new(format!("valet-signs-{}", std::process::id()), host, port);
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(options, 64);
    tokio::spawn(async move {
        loop {
            if let Err(e) = events.poll().await {
                tracing::warn!(error = %e, "MQTT broker unreachable; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    });
    for lot in lots.iter() {
        tokio::spawn(publish(client.clone(), prefix.to_owned(), Arc::clone(lot)));
    }
    Ok(())
}

async fn publish(client: AsyncClient, prefix: String, lot: Arc<LiveLot>) {
    let mut updates = lot.subscribe();
    loop {
        match updates.recv().await {
            // Whole counts each time, so a skipped update loses nothing a sign shows.
            Ok(_) | Err(RecvError::Lagged(_)) => {
                let availability = lot.availability();
                let Ok(payload) = serde_json::to_vec(&availability) else { continue };
                let topic = topic(&prefix, &availability.lot);
                if let Err(e) = client.publish(topic, QoS::AtLeastOnce, true, payload).await {
                    tracing::warn!(error = %e, lot = %availability.lot, "could not queue counts for the signs");
                }
            }
            Err(RecvError::Closed) => return,
        }
    }
}

//! Counts for signs over MQTT: after every frame, each lot's availability is published, retained,
//! on `{prefix}/lots/{id}/availability`, so a sign that (re)connects gets the latest at once. A
//! broker that is down delays the signs, never the frames; the newest counts win.

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::lots::{Availability, Lots};
use crate::mqtt::Mqtt;

/// The topic a lot's availability is published on.
pub fn topic(prefix: &str, lot: &str) -> String {
    format!("{prefix}/lots/{lot}/availability")
}

/// Publishes every lot's counts as they change, lots added while Valet runs included.
pub fn spawn(mqtt: &Mqtt, lots: &Lots) {
    tokio::spawn(publish(mqtt.clone(), lots.subscribe_counts()));
}

async fn publish(mqtt: Mqtt, mut counted: broadcast::Receiver<Availability>) {
    loop {
        match counted.recv().await {
            // Whole counts each time: a lot's next frame makes up for any skipped.
            Ok(availability) => {
                let Ok(payload) = serde_json::to_vec(&availability) else { continue };
                mqtt.publish_retained(topic(mqtt.prefix(), &availability.lot), payload).await;
            }
            Err(RecvError::Lagged(skipped)) => tracing::debug!(skipped, "signs fell behind the lots' counts"),
            Err(RecvError::Closed) => return,
        }
    }
}

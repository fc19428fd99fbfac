//! Counts for signs over MQTT: after every frame, each lot's availability is published, retained,
//! on `{prefix}/lots/{id}/availability`, so a sign that (re)connects gets the latest at once. A
//! broker that is down delays the signs, never the frames; the newest counts win.

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;

use crate::lots::{LiveLot, Lots};
use crate::mqtt::Mqtt;

/// The topic a lot's availability is published on.
pub fn topic(prefix: &str, lot: &str) -> String {
    format!("{prefix}/lots/{lot}/availability")
}

/// Publishes every lot's counts as they change.
pub fn spawn(mqtt: &Mqtt, lots: &Lots) {
    for lot in lots.iter() {
        tokio::spawn(publish(mqtt.clone(), Arc::clone(lot)));
    }
}

async fn publish(mqtt: Mqtt, lot: Arc<LiveLot>) {
    let mut updates = lot.subscribe();
    loop {
        match updates.recv().await {
            // Whole counts each time, so a skipped update loses nothing a sign shows.
            Ok(_) | Err(RecvError::Lagged(_)) => {
                let availability = lot.availability();
                let Ok(payload) = serde_json::to_vec(&availability) else { continue };
                mqtt.publish_retained(topic(mqtt.prefix(), &availability.lot), payload).await;
            }
            Err(RecvError::Closed) => return,
        }
    }
}

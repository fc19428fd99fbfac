//! Lifting a barrier by hand (`POST /v1/barriers/{camera}/open` and the dashboard's form): the
//! lane must be one the gate knows, the command must reach the MQTT broker, and only then is
//! the lift audited, so the log never says a barrier lifted when none did.

use chrono::Utc;
use valet_garage::{CameraId, OperatorId, Reason};

use crate::AppState;
use crate::error::ApiError;

/// A lift that was sent: the lane and the topic its barrier listens on.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ManualLift {
    pub camera: String,
    pub barrier: valet_garage::Barrier,
    /// The MQTT topic the command was published on (QoS 1).
    pub sent_to: String,
}

pub async fn lift_by_hand(
    state: &AppState,
    camera: &str,
    who: OperatorId,
    why: Reason,
) -> Result<ManualLift, ApiError> {
    let gate = state.gate();
    let lanes = gate.lanes().await?;
    if !lanes.iter().any(|lane| lane.camera.0 == camera) {
        let known = lanes.iter().map(|lane| lane.camera.0.clone()).collect();
        return Err(ApiError::UnknownLane { camera: camera.to_owned(), known });
    }
    let Some(mqtt) = state.mqtt() else {
        return Err(ApiError::BarrierNotReached(
            "no barrier channel is configured (set VALET_MQTT_BROKER to the garage's MQTT broker)".into(),
        ));
    };
    let command = serde_json::json!({ "barrier": "lift", "outcome": "manual", "by": who.0, "at": Utc::now() });
    let sent_to = mqtt.publish_barrier(camera, &command).map_err(ApiError::BarrierNotReached)?;
    gate.record_manual_lift(CameraId(camera.to_owned()), who, why).await?;
    Ok(ManualLift { camera: camera.to_owned(), barrier: valet_garage::Barrier::Lift, sent_to })
}

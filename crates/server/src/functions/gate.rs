//! The gate function: `plate.read` → a decision stored, the barrier commanded, and the next
//! event: `session.opened`, `session.closed` (with the charge billing is to settle) or
//! `gate.decided`.
//!
//! Each event is claimed in the store's inbox before anything is decided, so of two replicas
//! handed the same read (or one read delivered twice) one decides and the other replays its
//! answer. A worker that dies mid-way leaves a claim that the broker's retry takes over after
//! [`LEASE`]; the retry then finds the session it had opened or closed (the gate's reads are
//! themselves repeat-safe) and passes on the charge a closed session still owes.

use chrono::{TimeDelta, Utc};
use valet_garage::{Direction, ExitOutcome};
use valet_store::EventClaim;

use super::{CloudEvent, Function, types};
use crate::AppState;
use crate::api::{GateAnswer, GateEvent, PlateReadEvent};
use crate::error::ApiError;
use crate::routes::reads::{entry_answer, exit_answer};

/// How long a claim protects an event from redelivery before it counts as abandoned: far longer
/// than a decision takes, shorter than a broker's retries last.
pub const LEASE: TimeDelta = TimeDelta::seconds(30);

const INBOX: &str = "gate";

pub async fn handle(state: &AppState, event: &CloudEvent) -> Result<Option<CloudEvent>, ApiError> {
    let store = state.gate().store();
    match store.claim_event(INBOX, &event.id, Utc::now(), LEASE).await? {
        EventClaim::Claimed => {}
        EventClaim::Handled { reply } => {
            tracing::info!(event = %event.id, "plate read delivered again: replaying the first answer");
            return reply
                .map(|text| CloudEvent::from_structured(&text).map_err(|e| ApiError::Internal(e.to_string())))
                .transpose();
        }
        EventClaim::InProgress => {
            return Err(ApiError::Unavailable(format!("plate read {} is being decided by another worker", event.id)));
        }
    }
    match decide(state, event).await {
        Ok(caused) => {
            let reply = caused.as_ref().map(CloudEvent::to_structured);
            store.finish_event(INBOX, &event.id, reply.as_deref(), Utc::now()).await?;
            Ok(caused)
        }
        Err(error) => {
            if let Err(e) = store.release_event(INBOX, &event.id).await {
                tracing::warn!(event = %event.id, error = %e, "could not release the claim; it lapses after its lease");
            }
            Err(error)
        }
    }
}

async fn decide(state: &AppState, event: &CloudEvent) -> Result<Option<CloudEvent>, ApiError> {
    let mut reported: PlateReadEvent = event.data_json().map_err(|e| ApiError::BadEvent(e.to_string()))?;
    let crop = reported.crop_jpeg.take();
    // The camera's time, else the event's (when the frame arrived), else now.
    let read = reported.into_read(event.time.unwrap_or_else(Utc::now), Utc::now()).map_err(ApiError::BadEvent)?;
    let gate = state.gate();
    let (ty, answer, charge_request) = match read.direction {
        Direction::Entry => {
            let answer = entry_answer(gate.handle_entry(&read).await?);
            let ty = if answer.session.is_some() { types::SESSION_OPENED } else { types::GATE_DECIDED };
            (ty, answer, None)
        }
        Direction::Exit => {
            let decided = gate.decide_exit(&read).await?;
            let mut charge_request = decided.charge_request().cloned();
            if let ExitOutcome::AlreadyClosed { session } = decided.handled.decision.outcome
                && charge_request.is_none()
            {
                charge_request = gate.charge_due(session).await?;
            }
            let closed = matches!(
                decided.handled.decision.outcome,
                ExitOutcome::Charge { .. } | ExitOutcome::NothingOwed { .. } | ExitOutcome::AlreadyClosed { .. }
            );
            let answer = exit_answer(decided.handled);
            (if closed { types::SESSION_CLOSED } else { types::GATE_DECIDED }, answer, charge_request)
        }
    };
    command_barrier(state, &read.camera.0, &answer, &event.id);
    state.metrics().gate_decided(read.direction, &answer.outcome);
    if let Some(jpeg) =
        crop.and_then(|b64| base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).ok())
    {
        for item in &answer.review_items {
            gate.store().attach_review_image(valet_store::ReviewItemId(*item), &jpeg).await?;
        }
    }
    let data = GateEvent { camera: read.camera.0, direction: read.direction, answer, charge_request };
    Ok(Some(event.caused(&Function::Gate.source(), ty, &data)))
}

/// Tells the lane's barrier what the gate decided, over MQTT when the garage has a broker.
fn command_barrier(state: &AppState, camera: &str, answer: &GateAnswer, event: &str) {
    let command = serde_json::json!({
        "barrier": answer.barrier,
        "outcome": answer.outcome,
        "session": answer.session,
        "event": event,
        "at": Utc::now(),
    });
    publish_barrier(state, camera, &command);
}

/// Sends `command` to `camera`'s barrier when the garage has an MQTT broker; a command that
/// cannot be sent is logged (the lane's own answer still carries the decision).
pub(crate) fn publish_barrier(state: &AppState, camera: &str, command: &serde_json::Value) {
    if let Some(mqtt) = state.mqtt()
        && let Err(e) = mqtt.publish_barrier(camera, command)
    {
        tracing::warn!(camera, error = %e, "barrier command not sent");
    }
}

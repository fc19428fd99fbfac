//! `POST /v1/plate-reads`: a gate camera that reads plates itself reports a car; the gate
//! decides, stores and (at an exit) charges, and answers with what the barrier and screen do.

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use valet_garage::{ChargeState, Direction, EntryOutcome, ExitOutcome};
use valet_gate::{HandledEntry, HandledExit};

use super::ApiJson;
use crate::AppState;
use crate::api::{ExitScreen, GateAnswer, PlateReadEvent};
use crate::auth::AuthedDevice;
use crate::error::ApiError;

#[utoipa::path(
    post,
    path = "/v1/plate-reads",
    operation_id = "report_plate_read",
    tag = "devices",
    security(("deviceKey" = [])),
    summary = "Report a plate read at an entry or exit gate",
    description = "Report a plate read at an entry or exit gate; answers with the barrier and the exit \
        screen.",
    request_body = PlateReadEvent,
    responses((status = 200, description = "OK", body = GateAnswer))
)]
pub async fn post(
    State(state): State<AppState>,
    _turn: ReadTurn,
    AuthedDevice(device): AuthedDevice,
    ApiJson(event): ApiJson<PlateReadEvent>,
) -> Result<Json<GateAnswer>, ApiError> {
    let now = Utc::now();
    let read = event.into_read(now, now).map_err(ApiError::BadRequest)?;
    tracing::debug!(device = device.name.as_str(), camera = %read.camera.0, direction = ?read.direction, "plate read");
    let gate = state.gate();
    state.metrics().plate_read(&read.camera.0);
    let answer = match read.direction {
        Direction::Entry => entry_answer(gate.handle_entry(&read).await?),
        Direction::Exit => {
            let handled = gate.handle_exit(&read).await?;
            // Charged here and now (not a stay settled before this read).
            if let (ExitOutcome::Charge { .. }, Some(charge), false) =
                (&handled.decision.outcome, &handled.charge, handled.closed_by_another_worker)
            {
                state.metrics().charge_settled(crate::metrics::charge_outcome(charge.state()));
            }
            exit_answer(handled)
        }
    };
    state.metrics().gate_decided(read.direction, &answer.outcome);
    Ok(Json(answer))
}

pub(crate) fn entry_answer(handled: HandledEntry) -> GateAnswer {
    let decision = handled.decision;
    let (outcome, session, link) = match &decision.outcome {
        EntryOutcome::Opened(session) => {
            let link = match session.payer {
                valet_garage::Payer::Unregistered { link } => Some(link.to_string()),
                valet_garage::Payer::Registered(_) => None,
            };
            ("opened", Some(session.id.to_string()), link)
        }
        EntryOutcome::Refused { .. } => ("refused", None, None),
        EntryOutcome::Exempt { .. } => ("exempt", None, None),
        EntryOutcome::Unreadable => ("unreadable", None, None),
    };
    GateAnswer {
        barrier: decision.barrier,
        outcome: outcome.to_owned(),
        session,
        link,
        display: None,
        charge: None,
        review_items: handled.review.map(|id| id.0).into_iter().collect(),
    }
}

pub(crate) fn exit_answer(handled: HandledExit) -> GateAnswer {
    let decision = handled.decision;
    let (outcome, session, link) = match &decision.outcome {
        ExitOutcome::Charge { session, .. } => ("charged", Some(*session), None),
        ExitOutcome::NothingOwed { session, .. } => ("nothing_owed", Some(*session), None),
        ExitOutcome::PayByPlate { session, link, .. } => ("pay_by_plate", Some(*session), Some(link.to_string())),
        ExitOutcome::AlreadyClosed { session } => ("already_closed", Some(*session), None),
        ExitOutcome::Exempt { .. } => ("exempt", None, None),
        ExitOutcome::Ambiguous { .. } => ("ambiguous", None, None),
        ExitOutcome::NoOpenSession => ("no_open_session", None, None),
        ExitOutcome::Unreadable => ("unreadable", None, None),
    };
    let charge = handled.charge.map(|charge| {
        match charge.state() {
            ChargeState::Requested { .. } => "requested",
            ChargeState::Succeeded { .. } => "succeeded",
            ChargeState::Failed { .. } => "failed",
        }
        .to_owned()
    });
    GateAnswer {
        barrier: decision.barrier,
        outcome: outcome.to_owned(),
        session: session.map(|s| s.to_string()),
        link,
        display: Some(ExitScreen::from(&decision.display)),
        charge,
        review_items: handled.review.iter().map(|id| id.0).collect(),
    }
}

/// A turn at the gate's deciders. Extractors run in order, so it is taken before the key is
/// checked and the body read: a read shed under overload costs no database lookup, and the CPU
/// an overloaded garage lacks goes to the reads it accepted.
pub struct ReadTurn {
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl axum::extract::FromRequestParts<AppState> for ReadTurn {
    type Rejection = ApiError;

    async fn from_request_parts(_: &mut axum::http::request::Parts, state: &AppState) -> Result<Self, ApiError> {
        state.admit(crate::admission::Work::Read).await.map(|permit| ReadTurn { _permit: permit })
    }
}

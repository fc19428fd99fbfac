//! The billing function: `session.closed` → the charge settled → `charge.succeeded` or
//! `charge.failed`. Idempotent by construction: the charge goes out under the session's
//! idempotency key, the log records it once, and a settled key is answered from the log, so two
//! replicas or two deliveries charge once. A provider that does not answer leaves the charge
//! pending and the event is answered 503, so the broker redelivers it (housekeeping retries the
//! pending charge too; whichever comes first settles it).

use valet_garage::ChargeState;

use super::{CloudEvent, Function, types};
use crate::AppState;
use crate::api::{ChargeEvent, GateEvent};
use crate::error::ApiError;

pub async fn handle(state: &AppState, event: &CloudEvent) -> Result<Option<CloudEvent>, ApiError> {
    let closed: GateEvent = event.data_json().map_err(|e| ApiError::BadEvent(e.to_string()))?;
    // A free stay, a pay-by-plate stay or one settled already: nothing to charge.
    let Some(request) = closed.charge_request else { return Ok(None) };
    let settled = state.gate().settle_charge(&request).await?;
    state.metrics().charge_settled(crate::metrics::charge_outcome(settled.charge.state()));
    let ty = match settled.charge.state() {
        ChargeState::Succeeded { .. } => types::CHARGE_SUCCEEDED,
        ChargeState::Failed { .. } => types::CHARGE_FAILED,
        ChargeState::Requested { .. } => {
            return Err(ApiError::Unavailable(format!(
                "the payment provider did not answer for {}; the charge stays pending under its key",
                request.idempotency_key
            )));
        }
    };
    tracing::info!(session = %request.session, key = %request.idempotency_key, ty, "charge settled");
    let data = ChargeEvent {
        session: request.session.to_string(),
        charge: settled.charge,
        receipt: settled.receipt.is_some(),
        review_item: settled.review.map(|id| id.0),
    };
    Ok(Some(event.caused(&Function::Billing.source(), ty, &data)))
}

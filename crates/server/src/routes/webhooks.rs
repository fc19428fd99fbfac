//! `POST /v1/webhooks/stripe`: Stripe telling the garage what became of a payment or a refund.
//!
//! The signature is the credential: a delivery whose `Stripe-Signature` does not verify against
//! the endpoint's secret (forged, altered or stale) is answered 400 and changes nothing. A
//! verified event is claimed in the functions' inbox by its id, so Stripe's retries and replays act
//! once and are answered with the first answer; a failure releases the claim and answers 503,
//! and Stripe delivers again.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use valet_gate::{NoticeError, NoticeTaken};
use valet_store::EventClaim;

use crate::AppState;
use crate::error::ApiError;
use crate::functions::gate::LEASE;

/// The inbox's name for Stripe's events.
const INBOX: &str = "stripe-webhook";

/// What Valet did with one Stripe event.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookAnswer {
    /// Stripe's event id (`evt_…`).
    pub event: String,
    /// Stripe's event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// `settled`, `already_known`, `refunds_recorded`, `not_ours`, `contradicts` or `ignored`
    /// (`unknown` for a delivery again whose first answer was lost).
    pub taken: String,
    /// Whether this event was delivered and taken before: nothing changed this time.
    pub again: bool,
}

#[utoipa::path(
    post,
    path = "/v1/webhooks/stripe",
    operation_id = "stripe_webhook",
    tag = "public",
    summary = "Stripe's webhook deliveries, signed (`Stripe-Signature`, VALET_STRIPE_WEBHOOK_SECRET)",
    description = "Stripe's webhook deliveries, signed (`Stripe-Signature`, VALET_STRIPE_WEBHOOK_SECRET): \
        payment_intent.succeeded, payment_intent.payment_failed and \
        payment_intent.requires_action settle a charge whose outcome Valet did not hear; \
        charge.refunded records refunds made in Stripe's dashboard. Each event acts once; a \
        forged, altered or stale signature is 400 and changes nothing; 404 without a secret.",
    params(("Stripe-Signature" = String, Header, description = "Stripe's signature of the body: `t=…,v1=…`.", pattern = "^[!-~]+$")),
    responses((status = 200, description = "OK", body = WebhookAnswer))
)]
pub async fn stripe(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookAnswer>, ApiError> {
    let secret = state.stripe_webhook_secret().ok_or_else(|| {
        ApiError::Missing("no Stripe webhook endpoint: VALET_STRIPE_WEBHOOK_SECRET is not set".into())
    })?;
    let signature = headers
        .get("stripe-signature")
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| ApiError::BadRequest("no Stripe-Signature header".into()))?;
    valet_billing::verify_signature(secret, &body, signature, Utc::now())
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let notice = valet_billing::read_event(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;

    let store = state.gate().store();
    match store.claim_event(INBOX, &notice.id, Utc::now(), LEASE).await? {
        EventClaim::Claimed => {}
        EventClaim::Handled { reply } => {
            tracing::info!(event = notice.id, "Stripe delivered an event again: answered as the first time");
            let first: Option<WebhookAnswer> = reply.and_then(|text| serde_json::from_str(&text).ok());
            let taken = first.map_or_else(|| "unknown".to_owned(), |first| first.taken);
            return Ok(Json(WebhookAnswer { event: notice.id, kind: notice.kind, taken, again: true }));
        }
        EventClaim::InProgress => {
            return Err(ApiError::Unavailable(format!("Stripe event {} is being handled", notice.id)));
        }
    }
    let taken = match state.gate().take_notice(&notice).await {
        Ok(taken) => taken,
        Err(error) => {
            if let Err(e) = store.release_event(INBOX, &notice.id).await {
                tracing::warn!(event = notice.id, error = %e, "could not release the claim; it lapses after its lease");
            }
            return Err(match error {
                NoticeError::Provider(e) => ApiError::Unavailable(e.to_string()),
                NoticeError::Gate(e) => e.into(),
            });
        }
    };
    if let NoticeTaken::Settled(charge) = &taken {
        state.metrics().charge_settled(crate::metrics::charge_outcome(charge.state()));
    }
    let answer = WebhookAnswer {
        event: notice.id.clone(),
        kind: notice.kind.clone(),
        taken: taken_name(&taken).to_owned(),
        again: false,
    };
    let reply = serde_json::to_string(&answer).map_err(|e| ApiError::Internal(e.to_string()))?;
    store.finish_event(INBOX, &notice.id, Some(&reply), Utc::now()).await?;
    tracing::info!(event = notice.id, kind = notice.kind, taken = taken_name(&taken), "Stripe event taken");
    Ok(Json(answer))
}

fn taken_name(taken: &NoticeTaken) -> &'static str {
    match taken {
        NoticeTaken::Settled(_) => "settled",
        NoticeTaken::Refunds(_) => "refunds_recorded",
        NoticeTaken::AlreadyKnown => "already_known",
        NoticeTaken::NotOurs => "not_ours",
        NoticeTaken::Contradicts(_) => "contradicts",
        NoticeTaken::Ignored => "ignored",
    }
}

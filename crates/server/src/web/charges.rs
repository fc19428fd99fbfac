//! The dashboard's charges section: charges whose outcome Valet does not know (the provider did
//! not answer, the process stopped mid-charge), with a button that asks the provider now instead
//! of waiting for the next minute's reconciliation; and stays a refused charge left unpaid, each
//! with a retry once the driver has sorted out their card.

use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use valet_garage::{ChargeState, OperatorId, Reason, SessionId};
use valet_store::{ChargeRecord, SessionFilter, SessionRecord};

use super::dashboard::{after_review, form_operator};
use super::{csrf_field, local_time, money};
use crate::AppState;

/// What the section shows.
pub(super) struct Charges {
    pending: Vec<ChargeRecord>,
    /// Each unpaid stay with the reason its last charge was refused, if it was charged at all.
    unpaid: Vec<(SessionRecord, Option<String>)>,
}

pub(super) async fn load(state: &AppState) -> Charges {
    let store = state.gate().store();
    let pending = store.charges_awaiting_outcome().await.unwrap_or_default();
    let mut unpaid = Vec::new();
    for stay in store.sessions(SessionFilter::State("unpaid"), 200).await.unwrap_or_default() {
        let charges = store.charges_for_session(stay.id).await.unwrap_or_default();
        let refused = charges.iter().rev().find_map(|record| match record.charge.state() {
            ChargeState::Failed { reason, .. } => Some(reason.clone()),
            _ => None,
        });
        unpaid.push((stay, refused));
    }
    Charges { pending, unpaid }
}

pub(super) fn section(state: &AppState, charges: &Charges, csrf: &str) -> Markup {
    html! {
        section aria-labelledby="charges-h" {
            h2 #charges-h { "Charges" }
            h3 { "Outcome unknown (" span #pending-count { (charges.pending.len()) } ")" }
            @if charges.pending.is_empty() { p #pending-charges { "Every charge's outcome is known." } } @else {
                table #pending-charges {
                    thead { tr { th { "Stay" } th { "Amount" } th { "Asked at" } } }
                    tbody { @for record in &charges.pending { tr {
                        td { code { (record.request.session) } }
                        td { (money(record.request.amount)) }
                        td { @if let ChargeState::Requested { at } = record.charge.state() { (local_time(state, *at)) } }
                    } } }
                }
                form.reconcile method="post" action="/ops/charges/reconcile" {
                    (csrf_field(csrf))
                    button type="submit" { "Ask the payment provider now" }
                }
                p { "Valet asks every minute on its own; nothing is charged twice." }
            }
            h3 { "Unpaid (" span #unpaid-count { (charges.unpaid.len()) } ")" }
            @if charges.unpaid.is_empty() { p #unpaid-stays { "No stay is unpaid." } } @else {
                table #unpaid-stays {
                    thead { tr { th { "Plate" } th { "Left" } th { "Owes" } th { "Why" } th { "Retry" } } }
                    tbody { @for (stay, refused) in &charges.unpaid { tr data-session=(stay.id) {
                        td { (stay.plate.as_ref().map(|p| p.display().to_owned()).unwrap_or_default()) }
                        td { (stay.state.exit().map(|e| local_time(state, e.at)).unwrap_or_default()) }
                        td { (stay.state.exit().map(|e| money(e.price.total)).unwrap_or_default()) }
                        td.refused { (refused.as_deref().unwrap_or("marked unpaid by an operator")) }
                        td { @if matches!(stay.payer, valet_garage::Payer::Registered(_)) {
                            form.retry method="post" action=(format!("/ops/charges/{}/retry", stay.id)) {
                                (csrf_field(csrf))
                                label for=(format!("retry-why-{}", stay.id)) { "Why" }
                                input id=(format!("retry-why-{}", stay.id)) name="why" required placeholder="the driver topped up the card";
                                button type="submit" { "Charge again" }
                            }
                        } @else { "paid by its link" } }
                    } } }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// Reconciles every pending charge now, as housekeeping does each minute.
pub async fn reconcile(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<CsrfOnly>) -> Response {
    if let Err(refused) = form_operator(&state, &headers, &form.csrf).await {
        return refused;
    }
    let asked = state.gate().resume_pending().await.map(|_| ()).map_err(|e| e.to_string());
    after_review(&headers, "The payment provider was not asked", asked)
}

#[derive(Debug, Deserialize)]
pub struct RetryForm {
    why: String,
    #[serde(default)]
    csrf: String,
}

pub async fn retry(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(session): Path<String>,
    Form(form): Form<RetryForm>,
) -> Response {
    let operator = match form_operator(&state, &headers, &form.csrf).await {
        Ok(operator) => operator,
        Err(refused) => return refused,
    };
    let who = OperatorId(operator.name.as_str().to_owned());
    let retried = match (SessionId::parse(&session), Reason::parse(&form.why)) {
        (Ok(session), Ok(why)) => match state.gate().retry_charge(session, who, why).await {
            Ok(settled) => match settled.charge.state() {
                ChargeState::Succeeded { .. } => Ok(()),
                ChargeState::Failed { reason, .. } => Err(format!("Refused again: {reason}")),
                ChargeState::Requested { .. } => {
                    Err("The payment provider did not answer; the charge is pending and asked again each minute."
                        .into())
                }
            },
            Err(e) => Err(e.to_string()),
        },
        (Err(_), _) => Err("No such stay.".to_owned()),
        (_, Err(_)) => Err("Say why: every charge made by hand is audited with a reason.".to_owned()),
    };
    after_review(&headers, "Not charged", retried)
}

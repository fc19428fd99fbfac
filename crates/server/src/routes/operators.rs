//! The operator's side, behind an operator key: sessions, the review queue, refunds, the tariff,
//! the plate lists, permits, manual barrier opens and the audit log. Every change is audited
//! with the key's name and the `why` the request gives (a blank one is refused).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use valet_garage::{AuditEvent, MissedExitPolicy, Money, PlateLists, Price, Reason, ReviewDecision, SessionId};
use valet_store::{ListKind, RefundRecord, ReviewItemId, SessionFilter, StoredReviewItem};

use super::drivers::{parse_plate, session_view};
use super::{ApiJson, ApiQuery, Page};
use crate::AppState;
use crate::api::{
    ListChangeBody, PermitBody, PlateCorrectionBody, RefundBody, RefundView, ReviewDecisionBody, ReviewView,
    SessionDecision, SessionView, TariffChangeBody, TariffView, Why,
};
use crate::auth::{AuthedAdmin, AuthedOperator};
use crate::error::ApiError;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionQuery {
    /// `open`, `closed`, `paid`, `unpaid` or `in_review`; all when absent.
    state: Option<String>,
    limit: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/v1/sessions",
    operation_id = "sessions",
    tag = "operators",
    security(("operatorKey" = [])),
    summary = "Sessions, newest first (`?state=open|closed|paid|unpaid|in_review&limit=`)",
    description = "Sessions, newest first (`?state=open|closed|paid|unpaid|in_review&limit=`).",
    params(SessionQuery),
    responses((status = 200, description = "OK", body = Vec<SessionView>))
)]
pub async fn sessions(
    State(state): State<AppState>,
    _: AuthedOperator,
    ApiQuery(query): ApiQuery<SessionQuery>,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    let filter = match query.state.as_deref() {
        None => SessionFilter::All,
        Some(name) => {
            let known = ["open", "closed", "paid", "unpaid", "in_review"];
            let name = known
                .into_iter()
                .find(|k| *k == name)
                .ok_or_else(|| ApiError::BadRequest(format!("state {name:?} is none of {}", known.join(", "))))?;
            SessionFilter::State(name)
        }
    };
    let limit = Page { limit: query.limit }.limit();
    let records = state.gate().store().sessions(filter, limit).await?;
    Ok(Json(records.iter().map(session_view).collect()))
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SessionDetail {
    #[serde(flatten)]
    session: SessionView,
    charges: Vec<valet_garage::Charge>,
    refunds: Vec<RefundView>,
    receipt: Option<valet_garage::Receipt>,
}

#[utoipa::path(
    get,
    path = "/v1/sessions/{id}",
    operation_id = "session",
    tag = "operators",
    security(("operatorKey" = [])),
    summary = "One session with its charges, refunds and receipt",
    description = "One session with its charges, refunds and receipt.",
    params(("id" = String, Path, description = "The session.")),
    responses((status = 200, description = "OK", body = SessionDetail))
)]
pub async fn session(
    State(state): State<AppState>,
    _: AuthedOperator,
    Path(id): Path<String>,
) -> Result<Json<SessionDetail>, ApiError> {
    let id = parse_session(&id)?;
    let store = state.gate().store();
    let record = store.session(id).await?.ok_or_else(|| ApiError::Missing(format!("no session {id}")))?;
    Ok(Json(SessionDetail {
        session: session_view(&record),
        charges: store.charges_for_session(id).await?.into_iter().map(|r| r.charge).collect(),
        refunds: store.refunds_for_session(id).await?.iter().map(refund_view).collect(),
        receipt: store.receipt(id).await?,
    }))
}

/// Refunds a session's charge. Send an `Idempotency-Key` header to make a retry safe: the same
/// key refunds once. Without one, each request is a new refund.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/refunds",
    operation_id = "refund",
    tag = "operators",
    security(("operatorKey" = [])),
    summary = "Refund a session's charge (all, or `amount_minor`)",
    description = "Refund a session's charge (all, or `amount_minor`); send `Idempotency-Key` to make \
        retries safe. Audited.",
    params(("id" = String, Path, description = "The session."), ("Idempotency-Key" = Option<String>, Header, description = "The same key makes a retry the same refund: 1 to 200 printable ASCII characters.", pattern = "^[!-~]{1,200}$")),
    request_body = RefundBody,
    responses((status = 201, description = "Created", body = RefundView))
)]
pub async fn refund(
    State(state): State<AppState>,
    operator: AuthedOperator,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RefundBody>,
) -> Result<(StatusCode, Json<RefundView>), ApiError> {
    let id = parse_session(&id)?;
    let gate = state.gate();
    let amount = match body.amount_minor {
        Some(minor) if minor <= 0 => return Err(ApiError::BadRequest("a refund is a positive amount".into())),
        Some(minor) => Some(Money::new(minor, gate.tariff().spec().currency)),
        None => None,
    };
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        Some(Ok(key)) if !key.is_empty() && key.len() <= 200 => key.to_owned(),
        Some(_) => return Err(ApiError::BadRequest("Idempotency-Key is 1 to 200 visible characters".into())),
        None => hex_id(),
    };
    let refund = gate.refund(id, amount, &key, operator.id(), reason(&body.why)?).await?;
    Ok((StatusCode::CREATED, Json(refund_view(&refund))))
}

/// Charges an unpaid stay again under a new attempt's key, to the card its driver holds now.
/// Audited. Answers the charge: succeeded (the stay is paid), failed again, or requested (the
/// provider did not answer; reconciliation asks it every minute).
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/charges",
    operation_id = "retry_charge",
    tag = "operators",
    security(("operatorKey" = [])),
    summary = "Charge an unpaid stay again (its card was refused and the driver has sorted it out), under a new attempt's key, to the card the account holds now",
    description = "Charge an unpaid stay again (its card was refused and the driver has sorted it out), \
        under a new attempt's key, to the card the account holds now. Audited. 409 \
        `not_retryable` for a stay that is not unpaid or that nobody signed up for (it is paid \
        by its link).",
    params(("id" = String, Path, description = "The session.")),
    request_body = Why,
    responses((status = 201, description = "Created", body = valet_garage::Charge))
)]
pub async fn retry_charge(
    State(state): State<AppState>,
    operator: AuthedOperator,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Why>,
) -> Result<(StatusCode, Json<valet_garage::Charge>), ApiError> {
    let id = parse_session(&id)?;
    let settled = state.gate().retry_charge(id, operator.id(), reason(&body.why)?).await?;
    state.metrics().charge_settled(crate::metrics::charge_outcome(settled.charge.state()));
    Ok((StatusCode::CREATED, Json(settled.charge)))
}

#[utoipa::path(
    get,
    path = "/v1/review-items",
    operation_id = "review_items",
    tag = "operators",
    security(("operatorKey" = [])),
    summary = "The open review queue, oldest first",
    description = "The open review queue, oldest first.",
    responses((status = 200, description = "OK", body = Vec<ReviewView>))
)]
pub async fn review_items(State(state): State<AppState>, _: AuthedOperator) -> Result<Json<Vec<ReviewView>>, ApiError> {
    let items = state.gate().store().open_review_items().await?;
    Ok(Json(items.into_iter().map(review_view).collect()))
}

#[utoipa::path(
    post,
    path = "/v1/review-items/{id}/decision",
    operation_id = "decide_review",
    tag = "operators",
    security(("operatorKey" = [])),
    summary = "Decide a review item, optionally marking its session paid or unpaid or repricing it",
    description = "Decide a review item, optionally marking its session paid or unpaid or repricing it. \
        Audited.",
    params(("id" = i64, Path, description = "The review item.")),
    request_body = ReviewDecisionBody,
    responses((status = 200, description = "OK", body = ReviewView))
)]
pub async fn decide_review(
    State(state): State<AppState>,
    operator: AuthedOperator,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReviewDecisionBody>,
) -> Result<Json<ReviewView>, ApiError> {
    let id = parse_review_item(&id)?;
    let gate = state.gate();
    let now = Utc::now();
    let missed_exit = match body.session {
        Some(SessionDecision::CloseAtDailyMaximum) => Some(MissedExitPolicy::DailyMaximum),
        Some(SessionDecision::CloseFree) => Some(MissedExitPolicy::Free),
        _ => None,
    };
    if let Some(policy) = missed_exit {
        let (item, _) = gate.decide_missed_exit(id, policy, operator.id(), reason(&body.why)?).await?;
        return Ok(Json(review_view(item)));
    }
    let decision = match body.session {
        None | Some(SessionDecision::CloseAtDailyMaximum | SessionDecision::CloseFree) => None,
        Some(SessionDecision::MarkPaid) => Some(ReviewDecision::MarkPaid { at: now }),
        Some(SessionDecision::MarkUnpaid) => Some(ReviewDecision::MarkUnpaid { at: now }),
        Some(SessionDecision::Reprice { amount_minor }) => {
            if amount_minor < 0 {
                return Err(ApiError::BadRequest("a price is not negative".into()));
            }
            let total = Money::new(amount_minor, gate.tariff().spec().currency);
            Some(ReviewDecision::Reprice { price: Price { total, lines: Vec::new() }, at: now })
        }
    };
    if body.resolution.trim().is_empty() {
        return Err(ApiError::BadRequest("say in `resolution` what was decided".into()));
    }
    let item = gate.decide_review(id, decision, body.resolution.trim(), operator.id(), reason(&body.why)?).await?;
    Ok(Json(review_view(item)))
}

/// The operator read the plate off the camera's image: the stay the item was raised over gets it.
#[utoipa::path(
    post,
    path = "/v1/review-items/{id}/plate",
    operation_id = "correct_plate",
    tag = "operators",
    security(("operatorKey" = [])),
    summary = "Correct a misread plate from the camera's image",
    description = "Correct a misread plate from the camera's image: the open stay the item was raised over \
        gets it. Audited.",
    params(("id" = i64, Path, description = "The review item.")),
    request_body = PlateCorrectionBody,
    responses((status = 200, description = "OK", body = ReviewView))
)]
pub async fn correct_plate(
    State(state): State<AppState>,
    operator: AuthedOperator,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PlateCorrectionBody>,
) -> Result<Json<ReviewView>, ApiError> {
    let id = parse_review_item(&id)?;
    let plate = parse_plate(&body.plate)?;
    let item = state.gate().correct_plate(id, plate, operator.id(), reason(&body.why)?).await?;
    Ok(Json(review_view(item)))
}

#[utoipa::path(
    get,
    path = "/v1/tariff",
    operation_id = "tariff",
    tag = "operators",
    security(("operatorKey" = [])),
    summary = "The active tariff and its version",
    description = "The active tariff and its version.",
    responses((status = 200, description = "OK", body = TariffView))
)]
pub async fn tariff(State(state): State<AppState>, _: AuthedOperator) -> Result<Json<TariffView>, ApiError> {
    let stored = state.gate().store().active_tariff().await?;
    let stored = stored.ok_or_else(|| ApiError::Missing("no tariff is active".into()))?;
    Ok(Json(TariffView { version: stored.version, tariff: stored.tariff.spec().clone() }))
}

#[utoipa::path(
    put,
    path = "/v1/tariff",
    operation_id = "change_tariff",
    tag = "operators",
    security(("adminKey" = [])),
    summary = "Activate a new tariff for every later exit",
    description = "Activate a new tariff for every later exit. Audited.",
    request_body = TariffChangeBody,
    responses((status = 200, description = "OK", body = TariffView))
)]
pub async fn change_tariff(
    State(state): State<AppState>,
    operator: AuthedAdmin,
    ApiJson(body): ApiJson<TariffChangeBody>,
) -> Result<Json<TariffView>, ApiError> {
    let version = state.gate().change_tariff(body.tariff.clone(), operator.id(), reason(&body.why)?).await?;
    Ok(Json(TariffView { version, tariff: body.tariff }))
}

#[utoipa::path(
    get,
    path = "/v1/lists",
    operation_id = "lists",
    tag = "operators",
    security(("operatorKey" = [])),
    summary = "The allow and deny lists",
    description = "The allow and deny lists.",
    responses((status = 200, description = "OK", body = PlateLists))
)]
pub async fn lists(State(state): State<AppState>, _: AuthedOperator) -> Result<Json<PlateLists>, ApiError> {
    Ok(Json(state.gate().store().plate_lists().await?))
}

#[utoipa::path(
    post,
    path = "/v1/lists",
    operation_id = "change_list",
    tag = "operators",
    security(("adminKey" = [])),
    summary = "Put a plate on the allow or deny list, or take it off (`none`)",
    description = "Put a plate on the allow or deny list, or take it off (`none`). Audited.",
    request_body = ListChangeBody,
    responses((status = 204, description = "Done"))
)]
pub async fn change_list(
    State(state): State<AppState>,
    operator: AuthedAdmin,
    ApiJson(body): ApiJson<ListChangeBody>,
) -> Result<StatusCode, ApiError> {
    let list = match body.list.as_str() {
        "allow" => Some(ListKind::Allow),
        "deny" => Some(ListKind::Deny),
        "none" => None,
        other => return Err(ApiError::BadRequest(format!("list {other:?} is none of allow, deny, none"))),
    };
    let plate = parse_plate(&body.plate)?;
    let changed = state.gate().change_list(plate, list, operator.id(), reason(&body.why)?).await?;
    Ok(if changed { StatusCode::NO_CONTENT } else { StatusCode::NOT_FOUND })
}

#[utoipa::path(
    get,
    path = "/v1/permits",
    operation_id = "permits",
    tag = "operators",
    security(("operatorKey" = [])),
    summary = "Permits valid now",
    description = "Permits valid now.",
    responses((status = 200, description = "OK", body = Vec<valet_garage::PermitTerms>))
)]
pub async fn permits(
    State(state): State<AppState>,
    _: AuthedOperator,
) -> Result<Json<Vec<valet_garage::PermitTerms>>, ApiError> {
    let permits = state.gate().store().permits_valid_at(Utc::now()).await?;
    Ok(Json(permits.into_iter().map(|p| p.terms().clone()).collect()))
}

#[utoipa::path(
    post,
    path = "/v1/permits",
    operation_id = "save_permit",
    tag = "operators",
    security(("adminKey" = [])),
    summary = "Save a monthly permit",
    description = "Save a monthly permit. Audited.",
    request_body = PermitBody,
    responses((status = 201, description = "Created", body = valet_garage::PermitTerms))
)]
pub async fn save_permit(
    State(state): State<AppState>,
    operator: AuthedAdmin,
    ApiJson(body): ApiJson<PermitBody>,
) -> Result<(StatusCode, Json<valet_garage::PermitTerms>), ApiError> {
    let permit = state.gate().save_permit(body.terms, operator.id(), reason(&body.why)?).await?;
    Ok((StatusCode::CREATED, Json(permit.terms().clone())))
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LaneView {
    camera: String,
    direction: valet_garage::Direction,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
}

/// The gate lanes whose cameras have read a plate: the barriers `open_barrier` may lift.
#[utoipa::path(
    get,
    path = "/v1/lanes",
    operation_id = "lanes",
    tag = "operators",
    security(("operatorKey" = [])),
    summary = "The gate lanes",
    description = "The gate lanes: each camera that has read a plate, its direction, first and last seen.",
    responses((status = 200, description = "OK", body = Vec<LaneView>))
)]
pub async fn lanes(State(state): State<AppState>, _: AuthedOperator) -> Result<Json<Vec<LaneView>>, ApiError> {
    let lanes = state.gate().lanes().await?;
    Ok(Json(
        lanes
            .into_iter()
            .map(|l| LaneView {
                camera: l.camera.0,
                direction: l.direction,
                first_seen: l.first_seen,
                last_seen: l.last_seen,
            })
            .collect(),
    ))
}

#[utoipa::path(
    post,
    path = "/v1/barriers/{camera}/open",
    operation_id = "open_barrier",
    tag = "operators",
    security(("operatorKey" = [])),
    summary = "Lift a barrier by hand (intercom, jammed reader)",
    description = "Lift a barrier by hand (intercom, jammed reader): a lane whose camera has read a plate \
        (404 `unknown_lane` lists the known ones), sent over MQTT (503 `barrier_not_reached` \
        when no broker is configured or connected), then audited.",
    params(("camera" = String, Path, description = "The lane's camera.")),
    request_body = Why,
    responses((status = 200, description = "OK", body = crate::barriers::ManualLift))
)]
pub async fn open_barrier(
    State(state): State<AppState>,
    operator: AuthedOperator,
    Path(camera): Path<String>,
    ApiJson(body): ApiJson<Why>,
) -> Result<Json<crate::barriers::ManualLift>, ApiError> {
    Ok(Json(crate::barriers::lift_by_hand(&state, &camera, operator.id(), reason(&body.why)?).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// RFC 3339; the last 24 hours when absent.
    since: Option<DateTime<Utc>>,
}

#[utoipa::path(
    get,
    path = "/v1/audit",
    operation_id = "audit",
    tag = "operators",
    security(("operatorKey" = [])),
    summary = "Audit events since `?since=` (RFC 3339; default 24 h)",
    description = "Audit events since `?since=` (RFC 3339; default 24 h).",
    params(AuditQuery),
    responses((status = 200, description = "OK", body = Vec<AuditEvent>))
)]
pub async fn audit(
    State(state): State<AppState>,
    _: AuthedOperator,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Vec<AuditEvent>>, ApiError> {
    let since = query.since.unwrap_or_else(|| Utc::now() - chrono::TimeDelta::days(1));
    Ok(Json(state.gate().store().audit_events(since).await?))
}

fn reason(why: &str) -> Result<Reason, ApiError> {
    Reason::parse(why)
        .map_err(|_| ApiError::BadRequest("say `why`: every operator action is audited with a reason".into()))
}

fn parse_session(text: &str) -> Result<SessionId, ApiError> {
    SessionId::parse(text).map_err(|_| ApiError::Missing(format!("no session {text:?}")))
}

fn parse_review_item(text: &str) -> Result<ReviewItemId, ApiError> {
    text.parse().map(ReviewItemId).map_err(|_| ApiError::Missing(format!("no review item {text:?}")))
}

fn refund_view(refund: &RefundRecord) -> RefundView {
    RefundView {
        key: refund.key.clone(),
        session: refund.session.to_string(),
        charge: refund.charge.to_string(),
        amount: refund.amount,
        reference: refund.reference.clone(),
        by: refund.by.clone(),
        reason: refund.reason.clone(),
        at: refund.at,
    }
}

fn review_view(stored: StoredReviewItem) -> ReviewView {
    let (resolved_by, resolution, resolved_at) = match stored.resolved {
        Some((by, how, at)) => (Some(by.0), Some(how), Some(at)),
        None => (None, None, None),
    };
    ReviewView { id: stored.id.0, item: stored.item, resolved_by, resolution, resolved_at }
}

/// A fresh random key for a request that came without one.
fn hex_id() -> String {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    hex::encode(bytes)
}

/// `GET /v1/dead-letters`: events the broker gave up delivering, newest first, as recorded
/// (structured CloudEvents, with Knative's `knativeerror*` attributes saying why).
#[utoipa::path(
    get,
    path = "/v1/dead-letters",
    operation_id = "dead_letters",
    tag = "operators",
    security(("operatorKey" = [])),
    summary = "Events the broker gave up delivering, newest first (`?limit=`)",
    description = "Events the broker gave up delivering, newest first (`?limit=`).",
    params(super::Page),
    responses((status = 200, description = "OK", body = Vec<DeadLetterView>))
)]
pub async fn dead_letters(
    State(state): State<AppState>,
    _: AuthedOperator,
    ApiQuery(page): ApiQuery<super::Page>,
) -> Result<Json<Vec<DeadLetterView>>, ApiError> {
    let letters = state.gate().store().dead_letters(page.limit()).await?;
    Ok(Json(
        letters
            .into_iter()
            .map(|(at, event)| {
                let event = serde_json::from_str(&event).unwrap_or(serde_json::Value::String(event));
                DeadLetterView { at, event }
            })
            .collect(),
    ))
}

/// An event the broker gave up delivering.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct DeadLetterView {
    /// When it arrived here.
    at: DateTime<Utc>,
    /// The CloudEvent as the broker delivered it (structured JSON; the text itself if it was not JSON).
    event: serde_json::Value,
}

//! The operator dashboard: sign in with a name and an operator key, then the lots (the live map
//! the operator labels bays on, [`super::lot_map`], and each camera's calibration,
//! [`super::calibration`]), the open sessions, what was paid today, the charges whose outcome is
//! unknown or refused ([`super::charges`]), and the review queue with its decisions.

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{TimeDelta, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use valet_garage::{MissedExitPolicy, OperatorId, Reason, ReviewDecision};
use valet_store::{Device, ListKind, ReviewItemId, SessionFilter};

use super::calibration::panel;
use super::lot_map::{lot_map, map_defs};
use super::{
    LOGIN_HOURS, cookie, csrf_field, csrf_ok, local_time, money, page, redirect, refused_csrf, respond, set_cookie,
};
use crate::AppState;
use crate::throttle::{Source, Subject};

const LOGIN_COOKIE: &str = "valet_ops";

pub(super) async fn signed_in(state: &AppState, headers: &HeaderMap) -> Option<Device> {
    let token = cookie(headers, LOGIN_COOKIE)?;
    state.store().operator_by_login(&token, Utc::now()).await.ok().flatten()
}

pub(super) fn nav(csrf: &str, operator: Option<&Device>) -> Markup {
    html! {
        a href="/ops" { "Dashboard" }
        @if operator.is_some() { a href="/ops/cameras" { "Cameras" } }
        a href="/" { "Driver portal" }
        @if let Some(operator) = operator {
            span { "Signed in as " strong #operator { (operator.name.as_str()) } }
            form method="post" action="/ops/logout" { (csrf_field(csrf)) button.link type="submit" { "Sign out" } }
        }
    }
}

pub async fn login_form(headers: HeaderMap) -> Response {
    login_page(&headers, StatusCode::OK, None)
}

fn login_page(headers: &HeaderMap, status: StatusCode, error: Option<&str>) -> Response {
    respond(headers, status, |csrf| {
        page(
            "Operator sign-in",
            nav(csrf, None),
            html! {
                @if let Some(error) = error { p.error role="alert" { (error) } }
                form.card method="post" action="/ops/login" {
                    (csrf_field(csrf))
                    label for="name" { "Operator name" }
                    input #name name="name" required autocomplete="username";
                    label for="key" { "Operator key" }
                    input #key name="key" type="password" required autocomplete="current-password";
                    button type="submit" { "Sign in" }
                }
                p { "Keys are made with " code { "valet devices add NAME --role operator" } "." }
            },
        )
    })
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    name: String,
    key: String,
    #[serde(default)]
    csrf: String,
}

pub async fn login(
    State(state): State<AppState>,
    source: Source,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if !csrf_ok(&headers, &form.csrf) {
        return refused_csrf();
    }
    let guesser = source.with([Subject::name("operator", &form.name)]);
    if let Err(wait) = state.throttle().check(&guesser) {
        return super::too_many_attempts(&headers, wait);
    }
    let now = Utc::now();
    match state.store().open_login(form.name.trim(), form.key.trim(), now, now + TimeDelta::hours(LOGIN_HOURS)).await {
        Ok(Some((operator, token))) => {
            tracing::info!(operator = operator.name.as_str(), "operator signed in to the dashboard");
            let mut response = redirect("/ops");
            set_cookie(&mut response, LOGIN_COOKIE, token.expose(), "/ops", Some(LOGIN_HOURS * 3600));
            response
        }
        Ok(None) => {
            state.throttle().failed(&guesser);
            tracing::warn!(name = form.name.trim(), "dashboard sign-in refused");
            login_page(&headers, StatusCode::UNAUTHORIZED, Some("That name and key do not match an operator."))
        }
        Err(e) => {
            login_page(&headers, StatusCode::SERVICE_UNAVAILABLE, Some(&format!("The database did not answer: {e}")))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    if !csrf_ok(&headers, &form.csrf) {
        return refused_csrf();
    }
    if let Some(token) = cookie(&headers, LOGIN_COOKIE) {
        let _ = state.store().close_login(&token).await;
    }
    let mut response = redirect("/ops/login");
    set_cookie(&mut response, LOGIN_COOKIE, "", "/ops", Some(0));
    response
}

/// What the page says after a form sent the operator back to it.
#[derive(Debug, Default, Deserialize)]
pub struct DashboardNotice {
    /// Labels just saved, of `camera`.
    labelled: Option<usize>,
    camera: Option<String>,
}

pub async fn dashboard(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(notice): Query<DashboardNotice>,
) -> Response {
    let Some(operator) = signed_in(&state, &headers).await else { return redirect("/ops/login") };
    let store = state.gate().store();
    let open = store.sessions(SessionFilter::State("open"), 200).await.unwrap_or_default();
    let today = Utc::now().date_naive();
    let paid: Vec<_> = store
        .sessions(SessionFilter::State("paid"), 500)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.state.exit().is_some_and(|exit| exit.at.date_naive() == today))
        .collect();
    // What each stay paid today keeps after its refunds: the day's takings and what is left to refund.
    let mut refundable = std::collections::HashMap::new();
    for session in &paid {
        if let Ok(Some(charge)) = state.gate().refundable(session.id).await {
            refundable.insert(session.id, charge);
        }
    }
    let paid_today: i64 = refundable.values().map(|c| c.charged.minor - c.refunded.minor).sum();
    let currency = state.gate().tariff().spec().currency;
    let reviews = store.open_review_items().await.unwrap_or_default();
    let mut with_image = std::collections::BTreeSet::new();
    for item in &reviews {
        if matches!(store.review_image(item.id).await, Ok(Some(_))) {
            with_image.insert(item.id.0);
        }
    }
    // Each item's stay, so the operator sees whether the car is still inside.
    let mut stays = std::collections::HashMap::new();
    for item in &reviews {
        if let Some(session) = item.item.session
            && let Ok(Some(stay)) = store.session(session).await
        {
            stays.insert(item.id.0, stay);
        }
    }
    let lists = store.plate_lists().await.unwrap_or_default();
    let permits = store.permits_valid_at(Utc::now()).await.unwrap_or_default();
    let tariff = state.gate().tariff();
    let mut audit = store.audit_events(Utc::now() - TimeDelta::days(1)).await.unwrap_or_default();
    audit.reverse();
    let lots = state.lots().all();
    let mut calibration = Vec::with_capacity(lots.len());
    for lot in &lots {
        let id = lot.reader.layout().id.to_string();
        calibration.push(crate::calibration::overview(&state, &id).await.map_err(|e| e.to_string()));
    }
    let admin = operator.role == valet_store::Role::Admin;
    let lanes = state.gate().lanes().await.unwrap_or_default();
    let charges = super::charges::load(&state).await;
    respond(&headers, StatusCode::OK, |csrf| {
        page(
            "Dashboard",
            nav(csrf, Some(&operator)),
            html! {
                @if let (Some(labels), Some(camera)) = (notice.labelled, &notice.camera) {
                    p.notice role="status" #labelled {
                        "Saved " (labels) (if labels == 1 { " label" } else { " labels" }) " of camera " (camera)
                        ". The camera's adapter is fitted again from every label, in the background."
                    }
                }
                (map_defs())
                @for (lot, calibration) in lots.iter().zip(&calibration) {
                    (lot_map(lot, csrf))
                    (panel(&state, &lot.reader.layout().id.to_string(), calibration, csrf, admin))
                }
                section aria-labelledby="sessions-h" {
                    h2 #sessions-h { "Cars inside (" span #inside { (open.len()) } ")" }
                    p { "Paid today: " strong #paid-today { (money(valet_garage::Money::new(paid_today, currency))) } }
                    table #sessions {
                        thead { tr { th { "Plate" } th { "Entered" } th { "Payer" } } }
                        tbody { @for s in &open { tr {
                            td { (s.plate.as_ref().map(|p| p.display().to_owned()).unwrap_or_default()) }
                            td { (local_time(&state, s.entry)) }
                            td { @match &s.payer { valet_garage::Payer::Registered(_) => "signed up", valet_garage::Payer::Unregistered { .. } => "pay by plate" } }
                        } } }
                    }
                }
                section aria-labelledby="paid-h" {
                h2 #paid-h { "Paid today" }
                @if paid.is_empty() { p { "No stay paid yet today." } } @else {
                    table #paid {
                        thead { tr { th { "Plate" } th { "Left" } th { "Price" } th { "Refund" } } }
                        tbody { @for s in &paid { tr {
                            td { (s.plate.as_ref().map(|p| p.display().to_owned()).unwrap_or_default()) }
                            td { (s.state.exit().map(|e| local_time(&state, e.at)).unwrap_or_default()) }
                            td { (s.state.exit().map(|e| money(e.price.total)).unwrap_or_default()) }
                            td { @match refundable.get(&s.id) {
                                None => "nothing charged",
                                Some(charge) if charge.left().is_zero() => { "refunded " (money(charge.refunded)) },
                                Some(charge) => {
                                    @if !charge.refunded.is_zero() { "refunded " (money(charge.refunded)) "; " }
                                    form.refund method="post" action=(format!("/ops/refunds/{}", s.id)) {
                                        (csrf_field(csrf))
                                        // One key per rendered form: sending it twice refunds once.
                                        input type="hidden" name="key" value=(crate::functions::cloudevents::fresh_id());
                                        label for=(format!("refund-why-{}", s.id)) { "Why" }
                                        input id=(format!("refund-why-{}", s.id)) name="why" required;
                                        button type="submit" {
                                            @if charge.refunded.is_zero() { "Refund in full" }
                                            @else { "Refund the remaining " (money(charge.left())) }
                                        }
                                    }
                                },
                            } }
                        } } }
                    }
                }
            }
            (super::charges::section(&state, &charges, csrf))
            section aria-labelledby="review-h" {
                    h2 #review-h { "Review queue (" (reviews.len()) ")" }
                    @if reviews.is_empty() { p { "Nothing to review." } }
                    @for item in &reviews {
                        @let id = item.id.0;
                        article.card.review data-item=(id) {
                            p {
                                strong { (reason(&item.item.reason)) }
                                @if let Some(read) = &item.item.read {
                                    " · read " code { (read.text) } " (" (format!("{:.0}", read.confidence * 100.0)) "% sure) at " (read.camera.0)
                                }
                                " · " (local_time(&state, item.item.at))
                            }
                            p.stay {
                                @match stays.get(&id) {
                                    Some(stay) => {
                                        "Stay " code { (stay.id) } ": "
                                        @if stay.state.name() == "open" { strong { "the car is still inside" } " (entered " (local_time(&state, stay.entry)) ")" }
                                        @else { "the car has left (" (stay.state.name()) ")" }
                                    },
                                    None => "No stay: nothing was opened or matched.",
                                }
                            }
                            @if with_image.contains(&id) {
                                img.crop src=(format!("/ops/review/{id}/crop.jpg")) alt="The plate as the camera saw it";
                            }
                            @if item.item.session.is_some() {
                                form.correct method="post" action=(format!("/ops/review/{id}/plate")) {
                                    (csrf_field(csrf))
                                    label for=(format!("plate-{id}")) { "The plate, if the camera misread it" }
                                    input id=(format!("plate-{id}")) name="plate" required autocapitalize="characters" autocomplete="off";
                                    label for=(format!("plate-why-{id}")) { "Why (kept in the audit log)" }
                                    input id=(format!("plate-why-{id}")) name="why" required placeholder="legible in the crop";
                                    button type="submit" { "Correct the plate" }
                                }
                            }
                            form.decide method="post" action=(format!("/ops/review/{id}")) {
                                (csrf_field(csrf))
                                label for=(format!("resolution-{id}")) { "What you decided" }
                                input id=(format!("resolution-{id}")) name="resolution" required placeholder="confirmed AB123CD";
                                @if item.item.session.is_some() {
                                    label for=(format!("decision-{id}")) { "The stay" }
                                    select id=(format!("decision-{id}")) name="decision" {
                                        option value="none" { "leave as it is" }
                                        @if matches!(item.item.reason, valet_garage::ReviewReason::MissedExit { .. }) {
                                            option value="close_daily_maximum" { "close at the daily maximum" }
                                            option value="close_free" { "close free" }
                                        } @else {
                                            option value="mark_paid" { "mark paid" }
                                            option value="mark_unpaid" { "mark unpaid (a debt)" }
                                        }
                                    }
                                }
                                label for=(format!("why-{id}")) { "Why (kept in the audit log)" }
                                input id=(format!("why-{id}")) name="why" required;
                                button type="submit" { "Decide" }
                            }
                        }
                    }
                }
                section aria-labelledby="rules-h" {
                    h2 #rules-h { "Tariff, lists and permits" }
                    h3 { "Tariff" }
                    ul #tariff {
                        li {
                            @match tariff.spec().grace_minutes {
                                0 => "Charged from the first minute",
                                1 => "Free for the first minute",
                                grace => { "Free for the first " (grace) " minutes" },
                            }
                            "; at most " (money(valet_garage::Money::new(tariff.spec().daily_max_minor, tariff.spec().currency))) " a day"
                        }
                        @for band in &tariff.spec().bands {
                            li { (band.name) ": from minute " (band.from_minute) ", "
                                (money(valet_garage::Money::new(band.price_minor, tariff.spec().currency))) " per started " (band.every_minutes) " minutes" }
                        }
                    }
                    p { "Change it with " code { "PUT /v1/tariff" } " (audited)." }
                    h3 { "Allow and deny lists" }
                    p #lists {
                        "Allowed: " (lists.allowed().map(|p| p.display()).collect::<Vec<_>>().join(", "))
                        br;
                        "Denied: " (lists.denied().map(|p| p.display()).collect::<Vec<_>>().join(", "))
                    }
                    @if operator.role == valet_store::Role::Admin { form.card method="post" action="/ops/lists" {
                        (csrf_field(csrf))
                        label for="list-plate" { "Plate" }
                        input #list-plate name="plate" required autocapitalize="characters";
                        label for="list-kind" { "List" }
                        select #list-kind name="list" {
                            option value="deny" { "deny (the barrier stays down)" }
                            option value="allow" { "allow (never charged)" }
                            option value="none" { "neither (take it off)" }
                        }
                        label for="list-why" { "Why (kept in the audit log)" }
                        input #list-why name="why" required;
                        button type="submit" { "Change the lists" }
                    } } @else { p { "An admin changes the lists." } }
                    h3 { "Permits valid now (" (permits.len()) ")" }
                    ul { @for permit in &permits { li {
                        (permit.terms().plates.iter().map(|p| p.display()).collect::<Vec<_>>().join(", "))
                        " until " (local_time(&state, permit.terms().valid_to))
                    } } }
                }
                section aria-labelledby="barrier-h" {
                    h2 #barrier-h { "Open a barrier by hand" }
                    @if lanes.is_empty() { p { "No lane yet: a lane is listed once its camera has read a plate." } }
                    @else if state.mqtt().is_none() { p.error { "No barrier channel: set VALET_MQTT_BROKER to reach the barriers." } }
                    @else { form.card method="post" action="/ops/barriers/open" {
                        (csrf_field(csrf))
                        label for="barrier-camera" { "Lane" }
                        select #barrier-camera name="camera" required {
                            @for lane in &lanes {
                                option value=(lane.camera.0) { (lane.camera.0) " (" (direction(lane.direction)) ")" }
                            }
                        }
                        label for="barrier-why" { "Why (kept in the audit log)" }
                        input #barrier-why name="why" required placeholder="intercom: reader cannot see the plate";
                        button type="submit" { "Lift the barrier" }
                    } }
                }
                section aria-labelledby="audit-h" {
                    h2 #audit-h { "Audit log, last 24 hours" }
                    @if audit.is_empty() { p { "Nothing yet." } } @else {
                        table #audit {
                            thead { tr { th { "When" } th { "Who" } th { "What" } th { "Why" } } }
                            tbody { @for event in &audit { tr {
                                td { (local_time(&state, event.at)) }
                                td { (event.who.0) }
                                td { (action(&event.what)) }
                                td { (event.why.as_str()) }
                            } } }
                        }
                    }
                }
            },
        )
    })
}

/// The operator behind a changing form: signed in, and the form's CSRF token is the cookie's.
pub(super) async fn form_operator(state: &AppState, headers: &HeaderMap, csrf: &str) -> Result<Device, Response> {
    let Some(operator) = signed_in(state, headers).await else {
        return Err((StatusCode::UNAUTHORIZED, "sign in first").into_response());
    };
    if !csrf_ok(headers, csrf) {
        return Err(refused_csrf());
    }
    Ok(operator)
}

fn direction(direction: valet_garage::Direction) -> &'static str {
    match direction {
        valet_garage::Direction::Entry => "entry",
        valet_garage::Direction::Exit => "exit",
    }
}

fn action(what: &valet_garage::AuditAction) -> String {
    use valet_garage::AuditAction as A;
    match what {
        A::ManualBarrierOpen { camera } => format!("lifted the barrier at {}", camera.0),
        A::Refund { charge, amount } => format!("refunded {amount} of {charge}"),
        A::ReviewDecision { session, .. } => format!("decided the review of stay {session}"),
        A::ChargeRetried { session, charge } => format!("charged stay {session} again ({charge})"),
        A::MissedExitClosed { session, policy, price } => {
            let how = match policy {
                valet_garage::MissedExitPolicy::DailyMaximum => "at the daily maximum",
                valet_garage::MissedExitPolicy::Free => "free",
            };
            format!("closed stay {session}, whose exit was never read, {how} ({price})")
        }
        A::ReviewResolved { item, resolution } => format!("resolved review item {item}: {resolution}"),
        A::PlateCorrected { read, plate, .. } => format!("corrected the plate {read} to {}", plate.display()),
        A::TariffChange { .. } => "changed the tariff".to_owned(),
        A::ListChange { plate, change } => {
            let change = match change {
                valet_garage::ListChange::Allowed => "put on the allow list",
                valet_garage::ListChange::Denied => "put on the deny list",
                valet_garage::ListChange::Removed => "taken off the lists",
            };
            format!("{} {change}", plate.display())
        }
        A::PermitChange { permit } => format!("saved permit {permit}"),
        A::OccupancyLabels { lot, camera, free, occupied, .. } => {
            format!("labelled {free} free and {occupied} occupied bays of camera {camera} in lot {lot}")
        }
        A::OccupancyAdapter { lot, camera, version: Some(version) } => {
            format!("made adapter version {version} active for camera {camera} in lot {lot}")
        }
        A::GateCameraAdded { camera, url, direction: way } => {
            format!("added the {} camera {camera} ({url})", direction(*way))
        }
        A::GateCameraRemoved { camera } => format!("removed the gate camera {camera}"),
        A::OccupancyAdapter { lot, camera, version: None } => {
            format!("put camera {camera} of lot {lot} back on the universal occupancy model")
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct RefundForm {
    why: String,
    key: String,
    #[serde(default)]
    csrf: String,
}

pub async fn refund(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(session): Path<String>,
    Form(form): Form<RefundForm>,
) -> Response {
    let operator = match form_operator(&state, &headers, &form.csrf).await {
        Ok(operator) => operator,
        Err(refused) => return refused,
    };
    let who = OperatorId(operator.name.as_str().to_owned());
    let refunded = match (valet_garage::SessionId::parse(&session), Reason::parse(&form.why)) {
        (Ok(session), Ok(why)) => {
            state.gate().refund(session, None, form.key.trim(), who, why).await.map_err(|e| e.to_string())
        }
        (Err(_), _) => Err("No such stay.".to_owned()),
        (_, Err(_)) => Err("Say why: every refund is audited with a reason.".to_owned()),
    };
    match refunded {
        Ok(_) => redirect("/ops"),
        Err(message) => respond(&headers, StatusCode::UNPROCESSABLE_ENTITY, |_| {
            page("Not refunded", html! { a href="/ops" { "Dashboard" } }, html! { p.error role="alert" { (message) } })
        }),
    }
}

#[derive(Debug, Deserialize)]
pub struct ListForm {
    plate: String,
    list: String,
    why: String,
    #[serde(default)]
    csrf: String,
}

pub async fn change_list(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<ListForm>) -> Response {
    let operator = match form_operator(&state, &headers, &form.csrf).await {
        Ok(operator) => operator,
        Err(refused) => return refused,
    };
    if operator.role != valet_store::Role::Admin {
        return (StatusCode::FORBIDDEN, "an admin changes the lists").into_response();
    }
    let list = match form.list.as_str() {
        "allow" => Some(ListKind::Allow),
        "deny" => Some(ListKind::Deny),
        _ => None,
    };
    let who = OperatorId(operator.name.as_str().to_owned());
    let changed = match (valet_garage::Plate::parse(&form.plate), Reason::parse(&form.why)) {
        (Ok(plate), Ok(why)) => state.gate().change_list(plate, list, who, why).await.map_err(|e| e.to_string()),
        (Err(e), _) => Err(format!("That plate cannot be read: {e}.")),
        (_, Err(_)) => Err("Say why: every change is audited with a reason.".to_owned()),
    };
    match changed {
        Ok(_) => redirect("/ops"),
        Err(message) => respond(&headers, StatusCode::UNPROCESSABLE_ENTITY, |_| {
            page(
                "Lists not changed",
                html! { a href="/ops" { "Dashboard" } },
                html! { p.error role="alert" { (message) } },
            )
        }),
    }
}

#[derive(Debug, Deserialize)]
pub struct BarrierForm {
    camera: String,
    why: String,
    #[serde(default)]
    csrf: String,
}

pub async fn open_barrier(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<BarrierForm>,
) -> Response {
    let operator = match form_operator(&state, &headers, &form.csrf).await {
        Ok(operator) => operator,
        Err(refused) => return refused,
    };
    let who = OperatorId(operator.name.as_str().to_owned());
    let lifted = match Reason::parse(&form.why) {
        Ok(why) => crate::barriers::lift_by_hand(&state, form.camera.trim(), who, why).await.map_err(|e| e.to_string()),
        Err(_) => Err("Say why: every barrier lifted by hand is audited with a reason.".to_owned()),
    };
    match lifted {
        Ok(_) => redirect("/ops"),
        Err(message) => respond(&headers, StatusCode::UNPROCESSABLE_ENTITY, |_| {
            page(
                "Barrier not lifted",
                html! { a href="/ops" { "Dashboard" } },
                html! { p.error role="alert" { (message) } },
            )
        }),
    }
}

fn reason(reason: &valet_garage::ReviewReason) -> &'static str {
    use valet_garage::ReviewReason as R;
    match reason {
        R::DeniedPlate => "Denied plate",
        R::LowConfidence => "Unsure read",
        R::Unreadable => "Unreadable plate",
        R::AmbiguousExit { .. } => "Several stays match the exit",
        R::NoOpenSession => "Exit with no open stay",
        R::ChargeFailed { .. } => "Charge declined",
        R::Disputed { .. } => "Disputed price",
        R::MissedExit { .. } => "Open too long: exit never read",
    }
}

#[derive(Debug, Deserialize)]
pub struct DecisionForm {
    resolution: String,
    #[serde(default)]
    decision: String,
    why: String,
    #[serde(default)]
    csrf: String,
}

pub async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<DecisionForm>,
) -> Response {
    let operator = match form_operator(&state, &headers, &form.csrf).await {
        Ok(operator) => operator,
        Err(refused) => return refused,
    };
    let now = Utc::now();
    let decision = match form.decision.as_str() {
        "mark_paid" => Some(ReviewDecision::MarkPaid { at: now }),
        "mark_unpaid" => Some(ReviewDecision::MarkUnpaid { at: now }),
        _ => None,
    };
    let missed_exit = match form.decision.as_str() {
        "close_daily_maximum" => Some(MissedExitPolicy::DailyMaximum),
        "close_free" => Some(MissedExitPolicy::Free),
        _ => None,
    };
    let who = OperatorId(operator.name.as_str().to_owned());
    let decided = match (Reason::parse(&form.why), form.resolution.trim(), missed_exit) {
        (Err(_), _, _) => Err("Say why: every decision is audited with a reason.".to_owned()),
        // The close is the decision: its resolution is written for the operator.
        (Ok(why), _, Some(policy)) => state
            .gate()
            .decide_missed_exit(ReviewItemId(id), policy, who, why)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        (_, "", None) => Err("Say what you decided.".to_owned()),
        (Ok(why), resolution, None) => state
            .gate()
            .decide_review(ReviewItemId(id), decision, resolution, who, why)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
    };
    after_review(&headers, "Not decided", decided)
}

#[derive(Debug, Deserialize)]
pub struct PlateForm {
    plate: String,
    why: String,
    #[serde(default)]
    csrf: String,
}

/// The operator read the plate off the camera's image: the item's stay takes it, and the item
/// is resolved with it (no separate decision to write).
pub async fn correct_plate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<PlateForm>,
) -> Response {
    let operator = match form_operator(&state, &headers, &form.csrf).await {
        Ok(operator) => operator,
        Err(refused) => return refused,
    };
    let who = OperatorId(operator.name.as_str().to_owned());
    let corrected = match (Reason::parse(&form.why), valet_garage::Plate::parse(form.plate.trim())) {
        (Err(_), _) => Err("Say why: every correction is audited with a reason.".to_owned()),
        (_, Err(e)) => Err(format!("That plate cannot be read: {e}.")),
        (Ok(why), Ok(plate)) => {
            state.gate().correct_plate(ReviewItemId(id), plate, who, why).await.map(|_| ()).map_err(|e| e.to_string())
        }
    };
    after_review(&headers, "Plate not corrected", corrected)
}

pub(super) fn after_review(headers: &HeaderMap, title: &str, outcome: Result<(), String>) -> Response {
    match outcome {
        Ok(()) => redirect("/ops"),
        Err(message) => respond(headers, StatusCode::UNPROCESSABLE_ENTITY, |_| {
            page(title, html! { a href="/ops" { "Dashboard" } }, html! { p.error role="alert" { (message) } })
        }),
    }
}

/// A review item's plate crop; operators only.
pub async fn review_crop(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    if signed_in(&state, &headers).await.is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match state.gate().store().review_image(ReviewItemId(id)).await {
        Ok(Some(jpeg)) => {
            ([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "private, max-age=3600")], jpeg)
                .into_response()
        }
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

//! Pay by plate in the portal, for a driver without the entry screen's link: the plate and the
//! hour they drove in (`valet_garage::pay_by_plate` says why the hour), then the stay's own pay
//! page. No stay and a stay of another hour read the same; a misread car is offered the near
//! plates of its hour; and whoever is not found is sent to the link or the intercom, never told
//! that no such car is inside.

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use valet_garage::{ArrivalHour, ParkingSession, Payer, Plate, WRONG_TRIES};
use valet_gate::FoundStays;

use super::portal::nav;
use super::{csrf_field, csrf_ok, page, redirect, refused_csrf, respond};
use crate::AppState;

/// Days back the form offers: a stay older than a week is a case for the attendant.
const DAYS_OFFERED: i64 = 7;

/// What a driver not found can do instead, on every page that does not find a stay.
fn other_ways() -> Markup {
    html! {
        ul #other-ways {
            li { "Scan the code shown on the screen at the entry: it opens your stay's page directly." }
            li { "Or press the intercom at the exit: the attendant finds your stay and lets you out." }
        }
    }
}

/// The garage's clock: the tariff's offset from UTC.
fn garage_time(state: &AppState, at: DateTime<Utc>) -> chrono::NaiveDateTime {
    at.naive_utc() + TimeDelta::minutes(i64::from(state.gate().tariff().spec().utc_offset_minutes))
}

/// The pay-by-plate form on the home page: plate, day and hour of arrival on the garage's clock.
pub(super) fn form(state: &AppState, csrf: &str) -> Markup {
    let today = garage_time(state, Utc::now()).date();
    html! {
        form.card method="post" action="/pay" {
            (csrf_field(csrf))
            label for="pay-plate" { "Your plate" }
            input #pay-plate name="plate" required autocomplete="off" autocapitalize="characters";
            fieldset {
                legend { "When did you drive in?" }
                label for="pay-day" { "Day" }
                select #pay-day name="day" {
                    @for back in 0..DAYS_OFFERED {
                        @let day = today - TimeDelta::days(back);
                        option value=(day.format("%Y-%m-%d")) { (day_name(day, back)) }
                    }
                }
                label for="pay-hour" { "Hour" }
                select #pay-hour name="hour" required {
                    option value="" { "Choose the hour" }
                    @for hour in 0..24 { option value=(hour) { (format!("{hour:02}:00 – {hour:02}:59")) } }
                }
            }
            button type="submit" { "Find my stay" }
        }
    }
}

fn day_name(day: NaiveDate, back: i64) -> String {
    match back {
        0 => format!("Today ({})", day.format("%a %-d %b")),
        1 => format!("Yesterday ({})", day.format("%a %-d %b")),
        _ => day.format("%a %-d %b").to_string(),
    }
}

#[derive(Debug, Deserialize)]
pub struct FindForm {
    plate: String,
    #[serde(default)]
    day: String,
    #[serde(default)]
    hour: String,
    #[serde(default)]
    csrf: String,
}

/// Plate and arrival hour → the stay's pay page, a choice of stays, or the other ways out.
pub async fn find_stay(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<FindForm>) -> Response {
    if !csrf_ok(&headers, &form.csrf) {
        return refused_csrf();
    }
    let offset = state.gate().tariff().spec().utc_offset_minutes;
    let day = NaiveDate::parse_from_str(&form.day, "%Y-%m-%d").ok();
    let arrival = day.zip(form.hour.parse::<u32>().ok()).and_then(|(day, hour)| ArrivalHour::new(day, hour, offset));
    let plate = match Plate::parse(&form.plate) {
        Ok(plate) => plate,
        Err(e) => {
            return not_found(&headers, StatusCode::UNPROCESSABLE_ENTITY, &format!("That plate cannot be read: {e}."));
        }
    };
    let Some(arrival) = arrival else {
        return not_found(&headers, StatusCode::UNPROCESSABLE_ENTITY, "Choose the day and the hour you drove in.");
    };
    match state.gate().find_unpaid_by_plate(&plate, arrival).await {
        Ok(FoundStays::Same(stays)) if stays.len() == 1 => match &stays[0].payer {
            Payer::Unregistered { link } => redirect(&format!("/pay/{link}")),
            Payer::Registered(_) => not_found(&headers, StatusCode::NOT_FOUND, NOT_MATCHED),
        },
        Ok(FoundStays::Same(stays)) => {
            choose(&state, &headers, html! { "More than one car with this plate drove in at that hour:" }, &stays)
        }
        Ok(FoundStays::Near(stays)) => {
            let lead = html! {
                "No stay of that hour has exactly " strong { (plate.display()) } ", but the entry camera may have misread \
                 your plate. These cars drove in at that hour:"
            };
            choose(&state, &headers, lead, &stays)
        }
        Ok(FoundStays::Nothing { tries_left }) => {
            let message = format!(
                "{NOT_MATCHED} Check the day and hour you drove in; {tries_left} more {} for this plate today.",
                if tries_left == 1 { "try" } else { "tries" }
            );
            not_found(&headers, StatusCode::NOT_FOUND, &message)
        }
        Ok(FoundStays::TriesUsedUp) => not_found(
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            &format!("This plate has had its {WRONG_TRIES} tries for today, so it is not looked up here any more."),
        ),
        Err(e) => not_found(
            &headers,
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("Stays cannot be looked up right now ({e}); try again in a minute."),
        ),
    }
}

/// The one answer for "no such stay" and "not in that hour".
const NOT_MATCHED: &str = "That plate and arrival hour did not lead to a stay.";

fn not_found(headers: &HeaderMap, status: StatusCode, message: &str) -> Response {
    respond(headers, status, |_| {
        page(
            "Find your stay",
            nav(false),
            html! {
                p.error role="alert" { (message) }
                (other_ways())
                p { a href="/#pay-h" { "Try again" } }
            },
        )
    })
}

/// Several stays of that hour may be this car: the plates as the entry camera read them, for the
/// driver to recognise their own (a misread shows as a near spelling).
fn choose(state: &AppState, headers: &HeaderMap, lead: Markup, stays: &[ParkingSession]) -> Response {
    respond(headers, StatusCode::OK, |_| {
        page(
            "Is one of these your car?",
            nav(false),
            html! {
                p { (lead) }
                ul #near-stays { @for stay in stays { @if let Payer::Unregistered { link } = &stay.payer {
                    li {
                        strong.plate { (stay.plate.display()) } ", in at " (super::local_time(state, stay.entry)) " "
                        a href=(format!("/pay/{link}")) { "This is my car" }
                    }
                } } }
                p { "None of them?" }
                (other_ways())
            },
        )
    })
}

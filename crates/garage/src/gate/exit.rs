//! The exit gate: find the car's session (exact spelling, then confusion key over the text and the
//! candidates), price the stay, and charge, wave out, or ask for payment by plate.

use chrono::TimeDelta;
use serde::Serialize;

use super::{Barrier, GateConfig, best_plate};
use crate::charge::{ChargeRequest, IdempotencyKey};
use crate::id::{LinkToken, SessionId};
use crate::lists::PlateLists;
use crate::money::Money;
use crate::plate::{MatchingKey, Plate};
use crate::read::PlateRead;
use crate::review::{ReviewItem, ReviewReason};
use crate::session::{Exit, ParkingSession, Payer};
use crate::tariff::{Price, Tariff};

/// What the caller looked up for one exit read: the sessions whose plates share a matching key
/// with the read's text or a candidate, open or recently closed. Others may be included; they
/// match nothing and change nothing.
#[derive(Debug, Clone, Copy)]
pub struct ExitContext<'a> {
    pub config: &'a GateConfig,
    pub tariff: &'a Tariff,
    pub lists: &'a PlateLists,
    pub sessions: &'a [ParkingSession],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitOutcome {
    /// Apply `exit` to the session, send the charge; the barrier lifts without waiting for it.
    Charge {
        session: SessionId,
        exit: Exit,
        charge: ChargeRequest,
    },
    /// Apply `exit` to the session: it owes nothing and is paid as it closes.
    NothingOwed {
        session: SessionId,
        exit: Exit,
    },
    /// An unregistered driver must pay first; `quote` is the price if paid now. The session stays open.
    PayByPlate {
        session: SessionId,
        quote: Price,
        link: LinkToken,
    },
    /// The session closed within the leave window (paid by plate, or this car was read twice).
    AlreadyClosed {
        session: SessionId,
    },
    /// On the allow list.
    Exempt {
        plate: Plate,
    },
    /// Several open sessions match; they stay open until an operator says which it was.
    Ambiguous {
        sessions: Vec<SessionId>,
    },
    NoOpenSession,
    Unreadable,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitMessage {
    Goodbye,
    PayByPlate {
        link: LinkToken,
    },
    /// An operator has been called.
    PleaseWait,
}

/// What the exit screen shows. `fee` is present only when [`GateConfig::show_fee_below`] allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExitDisplay {
    pub message: ExitMessage,
    pub fee: Option<Money>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExitDecision {
    pub barrier: Barrier,
    pub display: ExitDisplay,
    pub outcome: ExitOutcome,
    pub review: Option<ReviewItem>,
}

/// Decides one exit read. Order: unreadable → allow list → one open session (exact spelling, else
/// confusion key) → several: ambiguous → a session closed within the leave window → none.
pub fn decide_exit(read: &PlateRead, ctx: &ExitContext<'_>) -> ExitDecision {
    let config = ctx.config;
    let Some((plate, stood_in)) = best_plate(read) else {
        return unsure(ExitOutcome::Unreadable, ReviewReason::Unreadable, read, config);
    };
    if ctx.lists.allows(&plate) && !stood_in {
        let display = ExitDisplay { message: ExitMessage::Goodbye, fee: None };
        return ExitDecision { barrier: Barrier::Lift, display, outcome: ExitOutcome::Exempt { plate }, review: None };
    }
    let keys = read_keys(read);
    let open: Vec<_> = ctx.sessions.iter().filter(|s| s.is_open()).collect();
    match matching(&open, &plate, &keys) {
        Match::One(session, exact) => {
            // Sure means the read's own best spelling led here, not a candidate, and confidently.
            let by_read = !stood_in && session.plate.matching_key() == plate.matching_key();
            let confident = by_read && read.is_confident(config.review_below_confidence);
            charge_or_ask(session, exact && !stood_in, confident, read, ctx)
        }
        Match::Several(sessions) => {
            let ids: Vec<_> = sessions.iter().map(|s| s.id).collect();
            let reason = ReviewReason::AmbiguousExit { sessions: ids.clone() };
            unsure(ExitOutcome::Ambiguous { sessions: ids }, reason, read, config)
        }
        Match::None => {
            let window = TimeDelta::minutes(i64::from(config.leave_within_minutes));
            let left = |s: &&ParkingSession| s.state().exit().is_some_and(|e| read.at - e.at <= window);
            let recent: Vec<_> = ctx.sessions.iter().filter(left).collect();
            match matching(&recent, &plate, &keys) {
                // Any of several recently closed matches lets the car out: each was let out or paid.
                Match::One(session, _) => already_closed(session.id),
                Match::Several(sessions) => already_closed(sessions[0].id), // `Several` holds two or more.
                Match::None => unsure(ExitOutcome::NoOpenSession, ReviewReason::NoOpenSession, read, config),
            }
        }
    }
}

/// Prices the matched session and settles how it is paid. `exact`: the read's own text spelled
/// the session's plate, which is what lets the screen show the fee.
fn charge_or_ask(
    session: &ParkingSession,
    exact: bool,
    confident: bool,
    read: &PlateRead,
    ctx: &ExitContext<'_>,
) -> ExitDecision {
    let price = ctx.tariff.price(&session.stay(read.at));
    let threshold = ctx.config.show_fee_below;
    let below = price.total.currency == threshold.currency && price.total.minor < threshold.minor;
    let fee = (exact && below).then_some(price.total);
    let review = (!confident).then(|| ReviewItem::from_read(ReviewReason::LowConfidence, Some(session.id), read));
    let goodbye = ExitDisplay { message: ExitMessage::Goodbye, fee };
    let (barrier, display, outcome) = match session.payer {
        _ if price.total.is_zero() => {
            let exit = Exit { at: read.at, price };
            (Barrier::Lift, goodbye, ExitOutcome::NothingOwed { session: session.id, exit })
        }
        Payer::Registered(driver) => {
            let charge = ChargeRequest {
                idempotency_key: IdempotencyKey::for_session(session.id, 1),
                session: session.id,
                driver,
                amount: price.total,
            };
            let exit = Exit { at: read.at, price };
            (Barrier::Lift, goodbye, ExitOutcome::Charge { session: session.id, exit, charge })
        }
        Payer::Unregistered { link } => {
            let display = ExitDisplay { message: ExitMessage::PayByPlate { link }, fee };
            (Barrier::Hold, display, ExitOutcome::PayByPlate { session: session.id, quote: price, link })
        }
    };
    ExitDecision { barrier, display, outcome, review }
}

fn already_closed(session: SessionId) -> ExitDecision {
    ExitDecision {
        barrier: Barrier::Lift,
        display: ExitDisplay { message: ExitMessage::Goodbye, fee: None },
        outcome: ExitOutcome::AlreadyClosed { session },
        review: None,
    }
}

/// An exit no single session explains: the configured barrier, a call for an operator, a review item.
fn unsure(outcome: ExitOutcome, reason: ReviewReason, read: &PlateRead, config: &GateConfig) -> ExitDecision {
    let message = match config.when_unsure {
        Barrier::Lift => ExitMessage::Goodbye,
        Barrier::Hold => ExitMessage::PleaseWait,
    };
    let review = ReviewItem::from_read(reason, None, read);
    ExitDecision {
        barrier: config.when_unsure,
        display: ExitDisplay { message, fee: None },
        outcome,
        review: Some(review),
    }
}

/// The matching keys of the read's text and of every candidate that parses.
fn read_keys(read: &PlateRead) -> Vec<MatchingKey> {
    let texts = std::iter::once(&read.text).chain(read.candidates.iter().map(|c| &c.text));
    texts.filter_map(|text| Plate::parse(text).ok()).map(|plate| plate.matching_key()).collect()
}

enum Match<'a> {
    /// One session, and whether it matched by exact spelling.
    One(&'a ParkingSession, bool),
    Several(Vec<&'a ParkingSession>),
    None,
}

/// Exact spelling of the best plate first; only when no session has it, the confusion keys of the
/// text and every candidate. A session the caller listed twice counts once.
fn matching<'a>(sessions: &[&'a ParkingSession], plate: &Plate, keys: &[MatchingKey]) -> Match<'a> {
    let exact: Vec<_> = sessions.iter().copied().filter(|s| s.plate == *plate).collect();
    let is_exact = !exact.is_empty();
    let mut found = if is_exact {
        exact
    } else {
        sessions.iter().copied().filter(|s| keys.contains(&s.plate.matching_key())).collect()
    };
    found.sort_by_key(|s| s.id);
    found.dedup_by_key(|s| s.id);
    match found.as_slice() {
        [] => Match::None,
        [one] => Match::One(one, is_exact),
        _ => Match::Several(found),
    }
}

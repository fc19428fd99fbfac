//! The exit gate: find the car's session (the open session of the key the read's pooled evidence
//! points to), price the stay, and charge, wave out, or ask for payment by plate.

use chrono::TimeDelta;
use serde::Serialize;

use super::entry::dominant_spelling;
use super::evidence::{KeyEvidence, pool};
use super::{Barrier, GateConfig};
use crate::charge::{ChargeRequest, IdempotencyKey};
use crate::id::{LinkToken, SessionId};
use crate::lists::PlateLists;
use crate::money::Money;
use crate::plate::Plate;
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
    /// No single open session is surely this car: several match it, or the read is torn between
    /// keys and these fit one of them. They stay open until an operator says which it was.
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

/// Decides one exit read. Order: unreadable → allow list → the car's key (the read's pooled
/// evidence, [`PooledRead::car`](super::PooledRead::car)) has one open session → several: the one
/// its spelling names, else ambiguous → a session closed within the leave window → none.
///
/// A read torn between keys charges nobody: when an open session fits one of its keys, the
/// sessions that fit stay open for an operator (ambiguous); when none does, it is a car let out
/// (a session closed within the window) or no session.
pub fn decide_exit(read: &PlateRead, ctx: &ExitContext<'_>) -> ExitDecision {
    let config = ctx.config;
    let pooled = pool(read);
    if pooled.top().is_none() {
        return unsure(ExitOutcome::Unreadable, ReviewReason::Unreadable, read, config);
    }
    let car = pooled.car();
    if let Some((plate, _)) = car.and_then(|car| car.spellings.iter().find(|(p, _)| ctx.lists.allows(p))) {
        let display = ExitDisplay { message: ExitMessage::Goodbye, fee: None };
        let outcome = ExitOutcome::Exempt { plate: plate.clone() };
        return ExitDecision { barrier: Barrier::Lift, display, outcome, review: None };
    }
    // The keys the car may be: the car's alone, or every key of a torn read.
    let keys: Vec<&KeyEvidence> = match car {
        Some(car) => vec![car],
        None => pooled.keys.iter().collect(),
    };
    let fits = |s: &&ParkingSession| keys.iter().any(|k| k.key == s.plate.matching_key());
    let mut open: Vec<&ParkingSession> = ctx.sessions.iter().filter(|s| s.is_open()).filter(fits).collect();
    // A session the caller listed twice counts once.
    open.sort_by_key(|s| s.id);
    open.dedup_by_key(|s| s.id);
    let chosen = match (car, open.as_slice()) {
        (_, []) => None,
        (Some(_), [one]) => Some(*one),
        (Some(car), several) => dominant_spelling(car, several, |s| &s.plate).copied(),
        (None, _) => None,
    };
    if let Some(session) = chosen {
        let car = car.expect("a session is chosen only for the car's key");
        // The screen shows the fee only when the read's best spelling is the session's own.
        let exact = *car.best() == session.plate;
        // One session fits the car's key: that is the car, reviewed only when the read gave no
        // confidence at all.
        return charge_or_ask(session, exact, car.evidence > 0.0, read, ctx);
    }
    if !open.is_empty() {
        let ids: Vec<_> = open.iter().map(|s| s.id).collect();
        let reason = ReviewReason::AmbiguousExit { sessions: ids.clone() };
        return unsure(ExitOutcome::Ambiguous { sessions: ids }, reason, read, config);
    }
    let window = TimeDelta::minutes(i64::from(config.leave_within_minutes));
    let left = |s: &&ParkingSession| s.state().exit().is_some_and(|e| read.at - e.at <= window);
    // Any recently closed session that fits lets the car out: it was let out or paid already.
    match ctx.sessions.iter().filter(left).filter(fits).min_by_key(|s| s.id) {
        Some(session) => already_closed(session.id),
        None => unsure(ExitOutcome::NoOpenSession, ReviewReason::NoOpenSession, read, config),
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

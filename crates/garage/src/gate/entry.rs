//! The entry gate: refuse a denied plate, wave an allowed one through, and otherwise open a
//! session (under a permit, for a known driver, or as an unregistered visitor with a sign-up link).

use serde::Serialize;

use super::evidence::{DOMINANCE, KeyEvidence, pool};
use super::{Barrier, GateConfig};
use crate::driver::Driver;
use crate::id::{LinkToken, SessionId};
use crate::lists::{Permit, PermitCheck, PlateLists};
use crate::plate::Plate;
use crate::read::PlateRead;
use crate::review::{ReviewItem, ReviewReason};
use crate::session::{ParkingSession, Payer};

/// A permit the read's plate may fall under, and how many of its cars are inside right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermitOccupancy {
    pub permit: Permit,
    pub inside: u32,
}

/// What the caller looked up for one entry read. The lookups may be generous (every driver or
/// permit whose plates share the read's matching key); the decision picks what truly applies.
#[derive(Debug, Clone, Copy)]
pub struct EntryContext<'a> {
    pub config: &'a GateConfig,
    pub lists: &'a PlateLists,
    pub drivers: &'a [Driver],
    pub permits: &'a [PermitOccupancy],
    /// The id the new session takes, if one opens.
    pub session_id: SessionId,
    /// The sign-up / pay-by-plate link an unregistered driver is given.
    pub link: LinkToken,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryOutcome {
    /// On the deny list.
    Refused { plate: Plate },
    /// On the allow list: no session, no charge.
    Exempt { plate: Plate },
    /// A session to store. Its payer and permit say how it will be paid.
    Opened(Box<ParkingSession>),
    /// No plate could be made of the read.
    Unreadable,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntryDecision {
    pub barrier: Barrier,
    pub outcome: EntryOutcome,
    pub review: Option<ReviewItem>,
}

/// Decides one entry read. Order: unreadable → deny list → allow list → permit (within its car
/// limit) → known driver → unregistered. A full permit does not refuse: the car enters and pays.
///
/// The car is the read's pooled key ([`PooledRead::car`](super::PooledRead::car)). When an
/// account, permit or list entry fits it, that is the car with no review (unless the read gave
/// no confidence at all); a car nobody fits is reviewed when its evidence is below the threshold.
/// A read torn between keys still lets the car in (and is refused if its top key is denied), but
/// as unregistered with a review item: nobody is credited with a car the reader could not tell apart.
pub fn decide_entry(read: &PlateRead, ctx: &EntryContext<'_>) -> EntryDecision {
    let pooled = pool(read);
    let Some(top) = pooled.top() else {
        let review = ReviewItem::from_read(ReviewReason::Unreadable, None, read);
        return EntryDecision {
            barrier: ctx.config.when_unsure,
            outcome: EntryOutcome::Unreadable,
            review: Some(review),
        };
    };
    let car = pooled.car();
    // Someone fitting the car's key (an account, a permit, a list entry) settles it with any
    // evidence at all; a car nobody fits is a stranger, and an unsure stranger is reviewed.
    let confident = car.is_some_and(|car| car.is_confident(ctx.config.review_below_confidence));
    let some_evidence = car.is_some_and(|car| car.evidence > 0.0);
    let key = car.unwrap_or(top);
    if ctx.lists.denies(key.best()) {
        let review = ReviewItem::from_read(ReviewReason::DeniedPlate, None, read);
        return EntryDecision {
            barrier: Barrier::Hold,
            outcome: EntryOutcome::Refused { plate: key.best().clone() },
            review: Some(review),
        };
    }
    let review =
        |session, sure: bool| (!sure).then(|| ReviewItem::from_read(ReviewReason::LowConfidence, session, read));
    let Some(car) = car else {
        let session = ParkingSession::open(ctx.session_id, top.best().clone(), read.at, unregistered(ctx));
        return EntryDecision {
            barrier: Barrier::Lift,
            review: review(Some(session.id), false),
            outcome: EntryOutcome::Opened(Box::new(session)),
        };
    };
    // The allow list and permits are privileges, so they need a spelling the read holds exactly;
    // an account may take its car by a confusable spelling (see `identify`).
    if let Some((plate, _)) = car.spellings.iter().find(|(p, _)| ctx.lists.allows(p)) {
        return EntryDecision {
            barrier: Barrier::Lift,
            outcome: EntryOutcome::Exempt { plate: plate.clone() },
            review: review(None, some_evidence),
        };
    }
    let admitting = ctx.permits.iter().find(|p| {
        car.spellings.iter().any(|(plate, _)| p.permit.check(plate, read.at, p.inside) == PermitCheck::Admitted)
    });
    let known = admitting.is_some() || identify(car, ctx.drivers).is_some();
    let (plate, payer) = match identify(car, ctx.drivers) {
        // The account's spelling, so the exit read matches it exactly when the camera reads it right.
        Some((driver, spelling)) => (spelling.clone(), Payer::Registered(driver.id)),
        None => (car.best().clone(), unregistered(ctx)),
    };
    let mut session = ParkingSession::open(ctx.session_id, plate, read.at, payer);
    if let Some(PermitOccupancy { permit, .. }) = admitting {
        session.permit = Some(permit.id());
        session.discounts.push(permit.terms().benefit.discount());
    }
    let sure = if known { some_evidence } else { confident };
    EntryDecision {
        barrier: Barrier::Lift,
        review: review(Some(session.id), sure),
        outcome: EntryOutcome::Opened(Box::new(session)),
    }
}

fn unregistered(ctx: &EntryContext<'_>) -> Payer {
    Payer::Unregistered { link: ctx.link }
}

/// The driver who owns the car's key, and their spelling of it. One account listing a plate with
/// the key is that account. When several do (confusable plates on two accounts), the one whose
/// spelling the read holds [`DOMINANCE`] times surer than every other's; else nobody: charging the
/// wrong person is worse than asking the right one to pay by link.
fn identify<'a>(car: &KeyEvidence, drivers: &'a [Driver]) -> Option<(&'a Driver, &'a Plate)> {
    let mut fitting: Vec<(&Driver, &Plate)> =
        drivers.iter().filter_map(|d| d.plates().find(|p| p.matching_key() == car.key).map(|p| (d, p))).collect();
    // An account the caller listed twice counts once.
    fitting.sort_by_key(|(d, _)| d.id);
    fitting.dedup_by_key(|(d, _)| d.id);
    match fitting.as_slice() {
        [] => None,
        [one] => Some(*one),
        _ => dominant_spelling(car, &fitting, |(_, plate)| plate).copied(),
    }
}

/// Of several records sharing the car's key, the one whose spelling the read gave at least
/// [`DOMINANCE`] times the confidence of every other's (and more than nothing).
pub(super) fn dominant_spelling<'a, T>(
    car: &KeyEvidence,
    records: &'a [T],
    plate: impl Fn(&T) -> &Plate,
) -> Option<&'a T> {
    let sure = |r: &T| car.confidence_of(plate(r));
    let best = records.iter().max_by(|a, b| sure(a).total_cmp(&sure(b)))?;
    let others = records.iter().filter(|r| !std::ptr::eq(*r, best)).map(sure);
    others
        .fold(sure(best) > 0.0, |ok, other| ok && sure(best) > other && sure(best) >= DOMINANCE * other)
        .then_some(best)
}

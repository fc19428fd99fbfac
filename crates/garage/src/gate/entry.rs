//! The entry gate: refuse a denied plate, wave an allowed one through, and otherwise open a
//! session (under a permit, for a known driver, or as an unregistered visitor with a sign-up link).

use serde::Serialize;

use super::{Barrier, GateConfig, best_plate};
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
pub fn decide_entry(read: &PlateRead, ctx: &EntryContext<'_>) -> EntryDecision {
    let Some((plate, stood_in)) = best_plate(read) else {
        let review = ReviewItem::from_read(ReviewReason::Unreadable, None, read);
        return EntryDecision {
            barrier: ctx.config.when_unsure,
            outcome: EntryOutcome::Unreadable,
            review: Some(review),
        };
    };
    if ctx.lists.denies(&plate) {
        let review = ReviewItem::from_read(ReviewReason::DeniedPlate, None, read);
        return EntryDecision {
            barrier: Barrier::Hold,
            outcome: EntryOutcome::Refused { plate },
            review: Some(review),
        };
    }
    let unsure = stood_in || !read.is_confident(ctx.config.review_below_confidence);
    let review = |session| unsure.then(|| ReviewItem::from_read(ReviewReason::LowConfidence, session, read));
    if ctx.lists.allows(&plate) {
        return EntryDecision { barrier: Barrier::Lift, outcome: EntryOutcome::Exempt { plate }, review: review(None) };
    }

    // A permit is a privilege, so it needs the plate as read; `identify` may settle on a spelling.
    let admitting = ctx.permits.iter().find(|p| p.permit.check(&plate, read.at, p.inside) == PermitCheck::Admitted);
    let (plate, payer) = match identify(&plate, ctx.drivers) {
        // The account's spelling, so the exit read matches it exactly when the camera reads it right.
        Some((driver, spelling)) => (spelling.clone(), Payer::Registered(driver.id)),
        None => (plate, Payer::Unregistered { link: ctx.link }),
    };
    let mut session = ParkingSession::open(ctx.session_id, plate, read.at, payer);
    if let Some(PermitOccupancy { permit, .. }) = admitting {
        session.permit = Some(permit.id());
        session.discounts.push(permit.terms().benefit.discount());
    }
    EntryDecision {
        barrier: Barrier::Lift,
        review: review(Some(session.id)),
        outcome: EntryOutcome::Opened(Box::new(session)),
    }
}

/// The driver who owns `plate`, and their spelling of it: the one account listing it exactly, else
/// the one account listing a confusable spelling. Two candidates mean nobody: charging the wrong
/// person is worse than asking the right one to pay by link.
fn identify<'a>(plate: &Plate, drivers: &'a [Driver]) -> Option<(&'a Driver, &'a Plate)> {
    let exact: Vec<_> = drivers.iter().filter_map(|d| d.plates().find(|p| *p == plate).map(|p| (d, p))).collect();
    if !exact.is_empty() {
        return only(exact);
    }
    let key = plate.matching_key();
    only(drivers.iter().filter_map(|d| d.plates().find(|p| p.matching_key() == key).map(|p| (d, p))).collect())
}

/// The one driver in `found`, counting an account the caller listed twice once.
fn only<'a>(mut found: Vec<(&'a Driver, &'a Plate)>) -> Option<(&'a Driver, &'a Plate)> {
    found.sort_by_key(|(d, _)| d.id);
    found.dedup_by_key(|(d, _)| d.id);
    if found.len() == 1 { found.pop() } else { None }
}

//! Who gets special treatment at the gate: [`PlateLists`] (allowed plates pass free, denied ones are
//! refused) and [`Permit`]s (a period's free or discounted parking for a few plates, up to a number
//! of cars at once).
//!
//! Privileges match a plate exactly and refusals match its confusion key: a misread must never
//! grant free passage, and a denied car must not get in by being misread. A wrongful refusal is
//! recoverable, because it raises a review item an operator sees.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::discount::Discount;
use crate::id::PermitId;
use crate::money::Percent;
use crate::plate::{MatchingKey, Plate};

/// Allow and deny lists. Invariant: `deny_keys` holds exactly the matching keys of `deny`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ListedPlates", into = "ListedPlates")]
pub struct PlateLists {
    allow: BTreeSet<Plate>,
    deny: BTreeSet<Plate>,
    deny_keys: BTreeSet<MatchingKey>,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
struct ListedPlates {
    allow: BTreeSet<Plate>,
    deny: BTreeSet<Plate>,
}

impl PlateLists {
    /// Staff and emergency vehicles: both barriers lift for them, with no session and no charge.
    pub fn allow(&mut self, plate: Plate) {
        self.allow.insert(plate);
    }

    pub fn deny(&mut self, plate: Plate) {
        self.deny_keys.insert(plate.matching_key());
        self.deny.insert(plate);
    }

    pub fn remove(&mut self, plate: &Plate) {
        self.allow.remove(plate);
        if self.deny.remove(plate) {
            self.deny_keys = self.deny.iter().map(Plate::matching_key).collect();
        }
    }

    /// The allowed plates, in order.
    pub fn allowed(&self) -> impl Iterator<Item = &Plate> {
        self.allow.iter()
    }

    /// The denied plates, in order.
    pub fn denied(&self) -> impl Iterator<Item = &Plate> {
        self.deny.iter()
    }

    pub fn allows(&self, plate: &Plate) -> bool {
        self.allow.contains(plate)
    }

    pub fn denies(&self, plate: &Plate) -> bool {
        self.deny_keys.contains(&plate.matching_key())
    }
}

impl From<ListedPlates> for PlateLists {
    fn from(listed: ListedPlates) -> PlateLists {
        let deny_keys = listed.deny.iter().map(Plate::matching_key).collect();
        PlateLists { allow: listed.allow, deny: listed.deny, deny_keys }
    }
}

impl From<PlateLists> for ListedPlates {
    fn from(lists: PlateLists) -> ListedPlates {
        ListedPlates { allow: lists.allow, deny: lists.deny }
    }
}

/// Written and read as [`ListedPlates`] (the matching keys are derived).
impl utoipa::PartialSchema for PlateLists {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <ListedPlates as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for PlateLists {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        <ListedPlates as utoipa::ToSchema>::schemas(schemas);
    }
}

/// What a permit gives the cars parked under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PermitBenefit {
    Free,
    Percent(Percent),
    FixedMinor(u32),
}

impl PermitBenefit {
    /// The discount a session opened under the permit carries. Free is 100 % off, so a permit
    /// holder's stay is priced like any other and the receipt shows what the permit saved.
    pub fn discount(self) -> Discount {
        match self {
            PermitBenefit::Free => Discount::Percent(Percent::ALL),
            PermitBenefit::Percent(percent) => Discount::Percent(percent),
            PermitBenefit::FixedMinor(minor) => Discount::FixedMinor(minor),
        }
    }
}

/// A permit for `plates` from `valid_from` (inclusive) to `valid_to` (exclusive), for at most
/// `max_concurrent` of those cars inside at once. Invariants (checked by [`Permit::new`]): at least
/// one plate, a non-empty period, and room for at least one car.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PermitTerms", into = "PermitTerms")]
pub struct Permit {
    terms: PermitTerms,
}

/// A permit's terms as an operator enters them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PermitTerms {
    pub id: PermitId,
    pub plates: BTreeSet<Plate>,
    pub benefit: PermitBenefit,
    pub valid_from: DateTime<Utc>,
    pub valid_to: DateTime<Utc>,
    pub max_concurrent: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPermit {
    #[error("a permit names at least one plate")]
    NoPlates,
    #[error("a permit's period ends after it starts")]
    EmptyPeriod,
    #[error("a permit admits at least one car at a time")]
    NoRoom,
}

/// Whether a permit lets one car in now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermitCheck {
    Admitted,
    /// The plate is covered, but `max_concurrent` of the permit's cars are already inside.
    Full,
    /// Not this permit's plate, or not within its period.
    NotCovered,
}

impl Permit {
    pub fn new(terms: PermitTerms) -> Result<Permit, InvalidPermit> {
        if terms.plates.is_empty() {
            return Err(InvalidPermit::NoPlates);
        }
        if terms.valid_to <= terms.valid_from {
            return Err(InvalidPermit::EmptyPeriod);
        }
        if terms.max_concurrent == 0 {
            return Err(InvalidPermit::NoRoom);
        }
        Ok(Permit { terms })
    }

    pub fn terms(&self) -> &PermitTerms {
        &self.terms
    }

    pub fn id(&self) -> PermitId {
        self.terms.id
    }

    pub fn covers(&self, plate: &Plate, at: DateTime<Utc>) -> bool {
        self.terms.plates.contains(plate) && (self.terms.valid_from..self.terms.valid_to).contains(&at)
    }

    /// `inside` is how many open sessions the caller counts under this permit right now.
    pub fn check(&self, plate: &Plate, at: DateTime<Utc>, inside: u32) -> PermitCheck {
        if !self.covers(plate, at) {
            PermitCheck::NotCovered
        } else if inside >= self.terms.max_concurrent {
            PermitCheck::Full
        } else {
            PermitCheck::Admitted
        }
    }
}

impl TryFrom<PermitTerms> for Permit {
    type Error = InvalidPermit;
    fn try_from(terms: PermitTerms) -> Result<Self, Self::Error> {
        Permit::new(terms)
    }
}

impl From<Permit> for PermitTerms {
    fn from(permit: Permit) -> PermitTerms {
        permit.terms
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn plate(raw: &str) -> Plate {
        Plate::parse(raw).unwrap()
    }

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, 0, 0, 0).unwrap()
    }

    fn terms() -> PermitTerms {
        PermitTerms {
            id: PermitId::from_bytes([7; 16]),
            plates: BTreeSet::from([plate("AB0123"), plate("CD45")]),
            benefit: PermitBenefit::Free,
            valid_from: day(1),
            valid_to: day(31),
            max_concurrent: 1,
        }
    }

    #[test]
    fn allowing_is_exact_and_denying_catches_confusable_spellings() {
        let mut lists = PlateLists::default();
        lists.allow(plate("AB0123"));
        lists.deny(plate("XY5080"));
        let table =
            [("AB0123", true, false), ("ABO123", false, false), ("XY5080", false, true), ("XYS08O", false, true)];
        for (raw, allowed, denied) in table {
            assert_eq!((lists.allows(&plate(raw)), lists.denies(&plate(raw))), (allowed, denied), "{raw}");
        }
        lists.remove(&plate("XY5080"));
        assert!(!lists.denies(&plate("XYS08O")));
    }

    #[test]
    fn lists_rebuild_their_keys_when_read_back() {
        let mut lists = PlateLists::default();
        lists.deny(plate("XY5080"));
        let back: PlateLists = serde_json::from_str(&serde_json::to_string(&lists).unwrap()).unwrap();
        assert_eq!(back, lists);
        assert!(back.denies(&plate("XYS080")));
    }

    #[test]
    fn a_permit_admits_its_plates_within_its_period_up_to_its_limit() {
        let permit = Permit::new(terms()).unwrap();
        let table = [
            ("AB0123", day(5), 0, PermitCheck::Admitted),
            ("AB0123", day(5), 1, PermitCheck::Full),
            ("CD45", day(1), 0, PermitCheck::Admitted),
            ("CD45", day(31), 0, PermitCheck::NotCovered),
            ("ABO123", day(5), 0, PermitCheck::NotCovered),
            ("ZZ99", day(5), 0, PermitCheck::NotCovered),
        ];
        for (raw, at, inside, expected) in table {
            assert_eq!(permit.check(&plate(raw), at, inside), expected, "{raw} {at} {inside}");
        }
    }

    #[test]
    fn a_permit_that_could_admit_nobody_is_refused() {
        let table = [
            (PermitTerms { plates: BTreeSet::new(), ..terms() }, InvalidPermit::NoPlates),
            (PermitTerms { valid_to: day(1), ..terms() }, InvalidPermit::EmptyPeriod),
            (PermitTerms { max_concurrent: 0, ..terms() }, InvalidPermit::NoRoom),
        ];
        for (terms, error) in table {
            assert_eq!(Permit::new(terms), Err(error));
        }
    }
}

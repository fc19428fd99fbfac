//! Paying a stay by plate without its link: what a driver must prove, and which stays a plate
//! typed at the kiosk or on a phone may reach.
//!
//! A plate alone is no proof: anyone can read it off the car, and answering "this car is inside
//! since 14:05" to anyone who types it tells a stalker where a person is. So the driver also names
//! the hour they drove in ([`ArrivalHour`]), on the garage's clock, which a passer-by does not know;
//! the link from the entry screen stays the way that needs no proof at all. A plate with no stay
//! and a plate whose stay began in another hour get the same answer, and every wrong try counts
//! against the plate: after [`WRONG_TRIES`] in [`TRIES_WINDOW`] the plate is answered only with the
//! link and the intercom, so guessing the hour (24 a day) is not worth it.
//!
//! A camera may have misread the plate at the entry, so a typed plate that matches no stay of that
//! hour exactly (or through the confusion classes of [`Plate::matching_key`]) reaches the stays of
//! that hour whose keys are at most two glyphs apart: still under the hour's proof,
//! and the driver picks their own car from the plates as read.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use crate::plate::{MatchingKey, Plate};
use crate::session::ParkingSession;

/// Wrong tries a plate gets in [`TRIES_WINDOW`] before only the link and the intercom are offered.
pub const WRONG_TRIES: u32 = 5;
/// The window wrong tries are counted in.
pub const TRIES_WINDOW: TimeDelta = TimeDelta::hours(24);
/// An arrival a few minutes either side of the named hour still counts: a driver who entered at
/// 13:58 may well remember "14:00".
pub const SLACK: TimeDelta = TimeDelta::minutes(10);

/// The hour a driver says they drove in: a date and an hour on the garage's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArrivalHour {
    start: DateTime<Utc>,
}

impl ArrivalHour {
    /// `hour` (0–23) of `date` at the garage, whose clock is `utc_offset_minutes` ahead of UTC (the
    /// tariff's offset); `None` for an hour that does not exist.
    pub fn new(date: NaiveDate, hour: u32, utc_offset_minutes: i32) -> Option<ArrivalHour> {
        let local = date.and_hms_opt(hour, 0, 0)?;
        let start = local.and_utc() - TimeDelta::minutes(i64::from(utc_offset_minutes));
        Some(ArrivalHour { start })
    }

    /// Entries this hour admits: from [`SLACK`] before it starts to [`SLACK`] after it ends.
    pub fn window(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        (self.start - SLACK, self.start + TimeDelta::hours(1) + SLACK)
    }

    pub fn admits(&self, entry: DateTime<Utc>) -> bool {
        let (from, to) = self.window();
        from <= entry && entry < to
    }
}

/// The stays a plate and an hour reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reached<'a> {
    /// Stays of that hour with the plate's matching key: the plate as typed, or a confusable spelling.
    Same(Vec<&'a ParkingSession>),
    /// No such stay, but some of that hour whose plates were perhaps misread at the entry.
    Near(Vec<&'a ParkingSession>),
    /// Nothing: no stay of that plate, or not in that hour (the driver is never told which).
    Nothing,
}

/// The unpaid stays among `unpaid` that `typed` and `arrival` prove: first those with the same
/// matching key, else those a few confusions away. Stays outside the hour are never reached.
pub fn reach_unpaid<'a>(typed: &Plate, arrival: &ArrivalHour, unpaid: &'a [ParkingSession]) -> Reached<'a> {
    let key = typed.matching_key();
    let in_hour: Vec<&ParkingSession> = unpaid.iter().filter(|s| arrival.admits(s.entry)).collect();
    let same: Vec<_> = in_hour.iter().copied().filter(|s| s.plate.matching_key() == key).collect();
    if !same.is_empty() {
        return Reached::Same(same);
    }
    let near: Vec<_> = in_hour.into_iter().filter(|s| confusions(&s.plate.matching_key(), &key).is_some()).collect();
    if near.is_empty() { Reached::Nothing } else { Reached::Near(near) }
}

/// How many glyphs two keys may differ by and still be one plate misread: two, but never more
/// than a third of the shorter plate, so short plates do not reach half the garage.
fn confusion_limit(a: usize, b: usize) -> usize {
    (a.min(b) / 3).min(2)
}

/// The glyphs (substituted, missed or extra: edit distance) between two keys, when within
/// [`confusion_limit`]; `None` when further apart.
fn confusions(a: &MatchingKey, b: &MatchingKey) -> Option<usize> {
    let (a, b) = (a.as_str().as_bytes(), b.as_str().as_bytes());
    let limit = confusion_limit(a.len(), b.len());
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    // Levenshtein over two rows; keys are at most ten glyphs.
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut row = vec![i + 1; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            row[j + 1] = (previous[j] + usize::from(x != y)).min(previous[j + 1] + 1).min(row[j] + 1);
        }
        previous = row;
    }
    let distance = previous[b.len()];
    (distance <= limit).then_some(distance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{LinkToken, SessionId};
    use crate::session::Payer;

    fn plate(raw: &str) -> Plate {
        Plate::parse(raw).unwrap()
    }

    fn at(hh: u32, mm: u32) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(2026, 12, 3).unwrap().and_hms_opt(hh, mm, 0).unwrap().and_utc()
    }

    fn stay(n: u8, raw: &str, entry: DateTime<Utc>) -> ParkingSession {
        let payer = Payer::Unregistered { link: LinkToken::from_bytes([n; 16]) };
        ParkingSession::open(SessionId::from_bytes([n; 16]), plate(raw), entry, payer)
    }

    fn hour(hh: u32) -> ArrivalHour {
        ArrivalHour::new(NaiveDate::from_ymd_opt(2026, 12, 3).unwrap(), hh, 0).unwrap()
    }

    #[test]
    fn an_hour_on_the_garage_clock_admits_entries_in_it_and_ten_minutes_either_side() {
        let berlin = ArrivalHour::new(NaiveDate::from_ymd_opt(2026, 12, 3).unwrap(), 15, 60).unwrap();
        assert_eq!(berlin, hour(14), "15:00 in UTC+1 is 14:00 UTC");
        let table = [
            ((13, 49), false),
            ((13, 50), true),
            ((14, 0), true),
            ((14, 59), true),
            ((15, 9), true),
            ((15, 10), false),
        ];
        for ((hh, mm), admitted) in table {
            assert_eq!(hour(14).admits(at(hh, mm)), admitted, "{hh}:{mm}");
        }
        assert_eq!(ArrivalHour::new(NaiveDate::from_ymd_opt(2026, 12, 3).unwrap(), 24, 0), None);
    }

    #[test]
    fn a_plate_reaches_only_stays_of_the_named_hour_and_a_misread_one_reaches_near_plates() {
        let stays = [stay(1, "AB123CD", at(14, 5)), stay(2, "PH0NE1", at(9, 30)), stay(3, "XY987ZW", at(14, 40))];
        // The plate and the right hour; a confusable spelling is the same plate.
        assert_eq!(reach_unpaid(&plate("AB123CD"), &hour(14), &stays), Reached::Same(vec![&stays[0]]));
        assert_eq!(reach_unpaid(&plate("PHONE1"), &hour(9), &stays), Reached::Same(vec![&stays[1]]));
        // The wrong hour and an unknown plate look the same.
        assert_eq!(reach_unpaid(&plate("AB123CD"), &hour(9), &stays), Reached::Nothing);
        assert_eq!(reach_unpaid(&plate("QQ111QQ"), &hour(14), &stays), Reached::Nothing);
        // The car is AB128CD, read as AB123CD at the entry: one confusion beyond the classes (8/3).
        assert_eq!(reach_unpaid(&plate("AB128CD"), &hour(14), &stays), Reached::Near(vec![&stays[0]]));
        // ... a missed glyph too, but never a plate of another hour.
        assert_eq!(reach_unpaid(&plate("AB13CD"), &hour(14), &stays), Reached::Near(vec![&stays[0]]));
        assert_eq!(reach_unpaid(&plate("AB128CD"), &hour(9), &stays), Reached::Nothing);
    }

    #[test]
    fn keys_are_near_within_two_glyphs_but_a_third_of_a_short_plate_at_most() {
        let key = |raw: &str| plate(raw).matching_key();
        let table = [
            ("AB123CD", "AB123CD", Some(0)),
            ("AB123CD", "AB123CE", Some(1)),
            ("AB123CD", "AB723CE", Some(2)),
            ("AB123CD", "XB723CE", None),
            ("AB123CD", "AB123C", Some(1)),
            ("ABC12", "ABC13", Some(1)),
            ("ABC12", "ABD13", None),
            ("AB", "AC", None),
        ];
        for (a, b, distance) in table {
            assert_eq!(confusions(&key(a), &key(b)), distance, "{a} vs {b}");
        }
    }
}

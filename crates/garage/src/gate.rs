//! Gate decisions as pure functions of a [`PlateRead`] and what the caller looked up for it:
//! [`decide_entry`] and [`decide_exit`]. Nothing is stored here; the caller applies the decision
//! (opens the session, sends the charge, lifts the barrier) and keeps the review item.
//!
//! Two rules run through both: a car is never trapped for the reader's sake (an unsure read still
//! lifts, and raises a review item instead), and a decision that could charge or show a stranger's
//! fee needs a plate that matches one session and no other.

mod entry;
mod exit;

use serde::{Deserialize, Serialize};

pub use entry::{EntryContext, EntryDecision, EntryOutcome, PermitOccupancy, decide_entry};
pub use exit::{ExitContext, ExitDecision, ExitDisplay, ExitMessage, ExitOutcome, decide_exit};

use crate::money::Money;
use crate::plate::Plate;
use crate::read::{Candidate, PlateRead};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Barrier {
    Lift,
    Hold,
}

/// The operator's settings for gate decisions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateConfig {
    /// Reads less sure than this (0..=1) raise a review item; the barrier still lifts.
    pub review_below_confidence: f32,
    /// The barrier when no single session can be chosen: an unreadable plate, an exit matching
    /// several open sessions or none. `Lift` keeps traffic moving and leaves it to review;
    /// `Hold` keeps the car until an operator answers the intercom.
    pub when_unsure: Barrier,
    /// The exit display shows a fee only below this, and only for an exact match: a misread must
    /// not show a stranger what their stay cost.
    pub show_fee_below: Money,
    /// For this long after a session closes (a charged exit, a pay-by-plate payment) its car may
    /// pass the exit barrier, so a second read of the same car, or a driver who just paid on their
    /// phone, is let out.
    pub leave_within_minutes: u32,
}

/// The plate a read most likely shows: its text if that parses, else its most confident candidate
/// that does. The flag says whether a candidate had to stand in, which makes the read unsure.
fn best_plate(read: &PlateRead) -> Option<(Plate, bool)> {
    if let Ok(plate) = Plate::parse(&read.text) {
        return Some((plate, false));
    }
    // A NaN confidence sorts last: it is no confidence at all.
    let sure = |c: &&Candidate| if c.confidence.is_nan() { f32::NEG_INFINITY } else { c.confidence };
    let mut candidates: Vec<_> = read.candidates.iter().collect();
    candidates.sort_by(|a, b| sure(b).total_cmp(&sure(a)));
    candidates.into_iter().find_map(|c| Plate::parse(&c.text).ok()).map(|plate| (plate, true))
}

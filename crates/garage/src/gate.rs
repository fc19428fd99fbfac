//! Gate decisions as pure functions of a [`PlateRead`](crate::PlateRead) and what the caller looked up for it:
//! [`decide_entry`] and [`decide_exit`]. Nothing is stored here; the caller applies the decision
//! (opens the session, sends the charge, lifts the barrier) and keeps the review item.
//!
//! Three rules run through both: a car is never trapped for the reader's sake (an unsure read still
//! lifts, and raises a review item instead); the car is the key the read's pooled evidence points
//! to ([`evidence`]: spellings pooled by matching key, the top key only when it dominates), never a
//! key chosen because someone signed it up; and a decision that could charge or show a stranger's
//! fee needs a plate that matches one session and no other.

mod entry;
pub mod evidence;
mod exit;

use serde::{Deserialize, Serialize};

pub use entry::{EntryContext, EntryDecision, EntryOutcome, PermitOccupancy, decide_entry};
pub use evidence::{DOMINANCE, KeyEvidence, PooledRead, pool};
pub use exit::{ExitContext, ExitDecision, ExitDisplay, ExitMessage, ExitOutcome, decide_exit};

use crate::money::Money;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

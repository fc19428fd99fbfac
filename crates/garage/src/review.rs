//! [`ReviewItem`]: something a person must look at (an unsure read, a refused plate, an ambiguous
//! exit, a failed charge), with the read that raised it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::SessionId;
use crate::read::PlateRead;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewReason {
    /// The plate is on the deny list; the barrier stayed down.
    DeniedPlate,
    /// The reader was less sure than the configured threshold; the barrier lifted anyway.
    LowConfidence,
    /// Neither the text nor any candidate is a plate.
    Unreadable,
    /// Several open sessions match the exit read.
    AmbiguousExit { sessions: Vec<SessionId> },
    /// No open session matches the exit read (tailgating, a missed entry, a misread).
    NoOpenSession,
    /// The stored payment method was refused.
    ChargeFailed { reason: String },
    /// A stay open longer than the garage's limit: its exit was probably never read. An operator
    /// closes it at the daily maximum or free.
    MissedExit { open_since: DateTime<Utc> },
    /// An operator or driver disputes the price.
    Disputed { note: String },
}

/// One entry in the review queue. `read` is absent for items that no camera raised (a failed
/// charge, a dispute).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewItem {
    pub reason: ReviewReason,
    pub session: Option<SessionId>,
    pub read: Option<PlateRead>,
    pub at: DateTime<Utc>,
}

impl ReviewItem {
    /// An item raised by a gate read, at the read's time.
    pub fn from_read(reason: ReviewReason, session: Option<SessionId>, read: &PlateRead) -> ReviewItem {
        ReviewItem { reason, session, read: Some(read.clone()), at: read.at }
    }
}

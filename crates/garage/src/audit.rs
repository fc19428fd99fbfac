//! [`AuditEvent`]: who did what, when and why, for every operator action that moves a barrier,
//! money, a decision or the rules. The reason is required: an action without one is not recorded,
//! so it cannot happen.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::charge::IdempotencyKey;
use crate::id::{PermitId, SessionId};
use crate::missed_exit::MissedExitPolicy;
use crate::money::Money;
use crate::plate::Plate;
use crate::read::{CameraId, Direction};
use crate::session::ReviewDecision;
use crate::tariff::TariffSpec;

/// The operator's account name, as the operator API authenticated it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct OperatorId(pub String);

/// Why an operator acted, in their words: never blank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reason(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an operator action needs a reason")]
pub struct MissingReason;

crate::schema::checked_schema!(Reason, crate::schema::text("Why, for the audit log: never blank."));

impl Reason {
    pub fn parse(text: &str) -> Result<Reason, MissingReason> {
        let text = text.trim();
        if text.is_empty() { Err(MissingReason) } else { Ok(Reason(text.to_owned())) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Reason {
    type Error = MissingReason;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Reason::parse(&text)
    }
}

impl From<Reason> for String {
    fn from(reason: Reason) -> String {
        reason.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListChange {
    Allowed,
    Denied,
    Removed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    ManualBarrierOpen {
        camera: CameraId,
    },
    Refund {
        charge: IdempotencyKey,
        amount: Money,
    },
    ReviewDecision {
        session: SessionId,
        decision: ReviewDecision,
    },
    /// An unpaid stay charged again under a new attempt's key.
    ChargeRetried {
        session: SessionId,
        charge: IdempotencyKey,
    },
    /// A stay whose exit was never read, closed under `policy` at `price`: by an operator from
    /// the review queue, or by the gate when the same car entered again.
    MissedExitClosed {
        session: SessionId,
        policy: MissedExitPolicy,
        price: Money,
    },
    /// A review item closed without changing a session (a denied car turned away, a misread
    /// confirmed): the store's item id and the operator's resolution.
    ReviewResolved {
        item: i64,
        resolution: String,
    },
    /// An open stay's plate, misread at the entry, corrected from the camera's image: the review
    /// item it came from, and the plate as read and as corrected.
    PlateCorrected {
        item: i64,
        session: SessionId,
        read: String,
        plate: Plate,
    },
    /// The whole new tariff, so the log alone says what any past stay was priced by.
    TariffChange {
        tariff: TariffSpec,
    },
    ListChange {
        plate: Plate,
        change: ListChange,
    },
    PermitChange {
        permit: PermitId,
    },
    /// Bays of one bay camera's frame labelled free or occupied, to calibrate its occupancy model.
    OccupancyLabels {
        lot: String,
        camera: String,
        frame: String,
        free: u32,
        occupied: u32,
    },
    /// A gate camera Valet pulls was added: its URL with any password as `***`.
    GateCameraAdded {
        camera: String,
        url: String,
        direction: Direction,
    },
    /// A pulled gate camera was removed: its pulls stop.
    GateCameraRemoved {
        camera: String,
    },
    /// A bay camera's occupancy adapter changed: `version` made active (by hand, or by a fit that
    /// beat the universal model), or with `None` the camera went back to the universal model.
    OccupancyAdapter {
        lot: String,
        camera: String,
        version: Option<i64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEvent {
    pub who: OperatorId,
    pub what: AuditAction,
    pub why: Reason,
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blank_reason_is_no_reason() {
        for blank in ["", "   ", "\n\t"] {
            assert_eq!(Reason::parse(blank), Err(MissingReason), "{blank:?}");
        }
        assert_eq!(Reason::parse("  driver's ticket jammed ").unwrap().as_str(), "driver's ticket jammed");
        assert!(serde_json::from_str::<Reason>("\" \"").is_err());
    }
}

//! Charging a stored payment method: the [`ChargeRequest`] the exit gate makes, and the [`Charge`]
//! record with its own small state machine (requested → succeeded | failed).
//!
//! The [`IdempotencyKey`] is derived from the session, not drawn at random: after a crash between
//! "charge requested" and "charge recorded", the retry computes the same key, and the payment
//! provider answers with the first attempt's result instead of charging twice.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::{DriverId, SessionId};
use crate::money::Money;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key for charging `session`'s price the `attempt`-th time. The exit charge is attempt 1;
    /// only a new price (an operator's repricing) warrants a new attempt, since retrying a refused
    /// charge with the same key just replays the refusal.
    pub fn for_session(session: SessionId, attempt: u32) -> IdempotencyKey {
        IdempotencyKey(format!("valet-session-{session}-{attempt}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Charge `driver`'s stored payment method `amount` for `session`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeRequest {
    pub idempotency_key: IdempotencyKey,
    pub session: SessionId,
    pub driver: DriverId,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ChargeState {
    /// Sent, or about to be; the outcome is not known. A charge found in this state after a crash
    /// is retried with the same key.
    Requested {
        at: DateTime<Utc>,
    },
    /// `reference` is the provider's id for the payment (a PaymentIntent id, a ledger entry).
    Succeeded {
        at: DateTime<Utc>,
        reference: String,
    },
    Failed {
        at: DateTime<Utc>,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("charge {key}: a {new} outcome contradicts the recorded {recorded} one")]
pub struct ChargeConflict {
    pub key: IdempotencyKey,
    pub recorded: &'static str,
    pub new: &'static str,
}

/// One charge and what became of it. Its state changes only by [`Charge::succeed`] and
/// [`Charge::fail`]; an outcome is final, and reporting the same outcome again changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Charge {
    pub idempotency_key: IdempotencyKey,
    pub session: SessionId,
    pub amount: Money,
    state: ChargeState,
}

impl Charge {
    pub fn requested(request: &ChargeRequest, at: DateTime<Utc>) -> Charge {
        Charge {
            idempotency_key: request.idempotency_key.clone(),
            session: request.session,
            amount: request.amount,
            state: ChargeState::Requested { at },
        }
    }

    pub fn state(&self) -> &ChargeState {
        &self.state
    }

    pub fn succeed(&mut self, at: DateTime<Utc>, reference: String) -> Result<(), ChargeConflict> {
        match &self.state {
            ChargeState::Requested { .. } => {
                self.state = ChargeState::Succeeded { at, reference };
                Ok(())
            }
            ChargeState::Succeeded { reference: recorded, .. } if *recorded == reference => Ok(()),
            _ => Err(self.conflict("success")),
        }
    }

    pub fn fail(&mut self, at: DateTime<Utc>, reason: String) -> Result<(), ChargeConflict> {
        match &self.state {
            ChargeState::Requested { .. } => {
                self.state = ChargeState::Failed { at, reason };
                Ok(())
            }
            ChargeState::Failed { .. } => Ok(()),
            ChargeState::Succeeded { .. } => Err(self.conflict("failure")),
        }
    }

    fn conflict(&self, new: &'static str) -> ChargeConflict {
        let recorded = match self.state {
            ChargeState::Requested { .. } => "pending",
            ChargeState::Succeeded { .. } => "success",
            ChargeState::Failed { .. } => "failure",
        };
        ChargeConflict { key: self.idempotency_key.clone(), recorded, new }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::money::Currency;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    fn request() -> ChargeRequest {
        let session = SessionId::from_bytes([3; 16]);
        ChargeRequest {
            idempotency_key: IdempotencyKey::for_session(session, 1),
            session,
            driver: DriverId::from_bytes([4; 16]),
            amount: Money::new(600, Currency::USD),
        }
    }

    #[test]
    fn the_same_session_and_attempt_always_give_the_same_key() {
        let session = SessionId::from_bytes([3; 16]);
        assert_eq!(IdempotencyKey::for_session(session, 1), IdempotencyKey::for_session(session, 1));
        assert_ne!(IdempotencyKey::for_session(session, 1), IdempotencyKey::for_session(session, 2));
        assert_eq!(IdempotencyKey::for_session(session, 1).as_str(), format!("valet-session-{session}-1"));
    }

    /// Each row: the outcome already recorded (if any), the outcome reported now, and whether that
    /// is accepted.
    #[test]
    fn an_outcome_is_final_but_may_be_reported_twice() {
        type Report = fn(&mut Charge) -> Result<(), ChargeConflict>;
        let succeed: Report = |c| c.succeed(at(), "pi_1".into());
        let succeed_other: Report = |c| c.succeed(at(), "pi_2".into());
        let fail: Report = |c| c.fail(at(), "card declined".into());
        let table: [(Option<Report>, Report, bool); 7] = [
            (None, succeed, true),
            (None, fail, true),
            (Some(succeed), succeed, true),
            (Some(succeed), succeed_other, false),
            (Some(succeed), fail, false),
            (Some(fail), fail, true),
            (Some(fail), succeed, false),
        ];
        for (i, (recorded, report, accepted)) in table.into_iter().enumerate() {
            let mut charge = Charge::requested(&request(), at());
            if let Some(recorded) = recorded {
                recorded(&mut charge).unwrap();
            }
            let before = charge.clone();
            let result = report(&mut charge);
            assert_eq!(result.is_ok(), accepted, "row {i}: {result:?}");
            if !accepted {
                assert_eq!(charge, before, "row {i}: a refused report must not change the charge");
            }
        }
    }
}

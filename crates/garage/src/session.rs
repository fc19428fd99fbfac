//! A [`ParkingSession`], one visit, and the state machine that moves it from entry to settlement.
//!
//! ```text
//!  Open ──exit──▶ Closed ──payment succeeded──▶ Paid
//!    │              │ ╰────payment failed──▶ Unpaid ──payment succeeded──▶ Paid
//!    │              ╰──raised for review──▶ InReview ◀──raised for review── Unpaid
//!    ╰─exit owing nothing──▶ Paid            InReview ──operator decides──▶ Paid | Unpaid | Closed
//! ```
//!
//! Every other (state, event) pair is an [`IllegalTransition`]. A session owing nothing is paid
//! the moment it closes. Recording a success on a paid session, or a failure on an unpaid one,
//! again changes nothing: a payment retried after a crash reports the same outcome twice.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::discount::Discount;
use crate::id::{DriverId, LinkToken, PermitId, SessionId};
use crate::plate::Plate;
use crate::review::ReviewReason;
use crate::tariff::{Price, Stay};

/// Who pays: a signed-up driver's stored payment method, or, until they sign up, whoever opens
/// the session's link (the sign-up / pay-by-plate page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payer {
    Registered(DriverId),
    Unregistered { link: LinkToken },
}

/// When the car left and what the stay cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    pub at: DateTime<Utc>,
    pub price: Price,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum SessionState {
    Open,
    Closed { exit: Exit },
    Paid { exit: Exit, at: DateTime<Utc> },
    Unpaid { exit: Exit, since: DateTime<Utc> },
    InReview { exit: Exit, reason: ReviewReason },
}

impl SessionState {
    pub fn name(&self) -> &'static str {
        match self {
            SessionState::Open => "open",
            SessionState::Closed { .. } => "closed",
            SessionState::Paid { .. } => "paid",
            SessionState::Unpaid { .. } => "unpaid",
            SessionState::InReview { .. } => "in review",
        }
    }

    /// The exit, once there is one.
    pub fn exit(&self) -> Option<&Exit> {
        match self {
            SessionState::Open => None,
            SessionState::Closed { exit }
            | SessionState::Paid { exit, .. }
            | SessionState::Unpaid { exit, .. }
            | SessionState::InReview { exit, .. } => Some(exit),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEvent {
    Exit(Exit),
    PaymentSucceeded { at: DateTime<Utc> },
    PaymentFailed { at: DateTime<Utc> },
    RaisedForReview { reason: ReviewReason },
    Decided(ReviewDecision),
}

impl SessionEvent {
    pub fn name(&self) -> &'static str {
        match self {
            SessionEvent::Exit(_) => "exit",
            SessionEvent::PaymentSucceeded { .. } => "record a payment",
            SessionEvent::PaymentFailed { .. } => "record a failed payment",
            SessionEvent::RaisedForReview { .. } => "raise for review",
            SessionEvent::Decided(_) => "decide a review",
        }
    }
}

/// An operator's answer to a session in review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    /// Settled outside the system (cash, a goodwill waiver).
    MarkPaid { at: DateTime<Utc> },
    /// The driver owes the price; it stays a debt.
    MarkUnpaid { at: DateTime<Utc> },
    /// The price was wrong: close again at `price`, to be charged anew (paid at once if zero).
    Reprice { price: Price, at: DateTime<Utc> },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session {session}: cannot {event} while it is {state}")]
pub struct IllegalTransition {
    pub session: SessionId,
    pub state: &'static str,
    pub event: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session {session} already belongs to driver {driver}")]
pub struct AlreadyRegistered {
    pub session: SessionId,
    pub driver: DriverId,
}

/// One visit by one plate. The state changes only through [`ParkingSession::apply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkingSession {
    pub id: SessionId,
    pub plate: Plate,
    pub entry: DateTime<Utc>,
    pub payer: Payer,
    /// The permit the car entered under, if any (its benefit is already among `discounts`).
    pub permit: Option<PermitId>,
    pub discounts: Vec<Discount>,
    state: SessionState,
}

impl ParkingSession {
    pub fn open(id: SessionId, plate: Plate, entry: DateTime<Utc>, payer: Payer) -> ParkingSession {
        ParkingSession { id, plate, entry, payer, permit: None, discounts: Vec::new(), state: SessionState::Open }
    }

    pub fn state(&self) -> &SessionState {
        &self.state
    }

    pub fn is_open(&self) -> bool {
        self.state == SessionState::Open
    }

    /// The stay as the tariff prices it if the car left at `exit`.
    pub fn stay(&self, exit: DateTime<Utc>) -> Stay {
        Stay { entry: self.entry, exit, discounts: self.discounts.clone() }
    }

    /// Moves the state machine; on an illegal pair the session is left as it was.
    pub fn apply(&mut self, event: SessionEvent) -> Result<(), IllegalTransition> {
        use SessionEvent as E;
        use SessionState as S;
        let illegal = IllegalTransition { session: self.id, state: self.state.name(), event: event.name() };
        let next = match (&self.state, event) {
            (S::Open, E::Exit(exit)) => closed(exit, None),
            (S::Closed { exit } | S::Unpaid { exit, .. }, E::PaymentSucceeded { at }) => {
                S::Paid { exit: exit.clone(), at }
            }
            (S::Paid { .. }, E::PaymentSucceeded { .. }) => return Ok(()),
            (S::Closed { exit }, E::PaymentFailed { at }) => S::Unpaid { exit: exit.clone(), since: at },
            (S::Unpaid { .. }, E::PaymentFailed { .. }) => return Ok(()),
            (S::Closed { exit } | S::Unpaid { exit, .. }, E::RaisedForReview { reason }) => {
                S::InReview { exit: exit.clone(), reason }
            }
            (S::InReview { exit, .. }, E::Decided(decision)) => match decision {
                ReviewDecision::MarkPaid { at } => S::Paid { exit: exit.clone(), at },
                ReviewDecision::MarkUnpaid { at } => S::Unpaid { exit: exit.clone(), since: at },
                ReviewDecision::Reprice { price, at } => closed(Exit { at: exit.at, price }, Some(at)),
            },
            _ => return Err(illegal),
        };
        self.state = next;
        Ok(())
    }

    /// Links the session to a driver who signed up while it ran: from now on the stored payment
    /// method pays. Signing up again as the same driver changes nothing.
    pub fn register(&mut self, driver: DriverId) -> Result<(), AlreadyRegistered> {
        match self.payer {
            Payer::Registered(existing) if existing != driver => {
                Err(AlreadyRegistered { session: self.id, driver: existing })
            }
            _ => {
                self.payer = Payer::Registered(driver);
                Ok(())
            }
        }
    }
}

/// Closed, or paid already when nothing is owed (at `settled`, else at the exit itself).
fn closed(exit: Exit, settled: Option<DateTime<Utc>>) -> SessionState {
    if exit.price.total.is_zero() {
        let at = settled.unwrap_or(exit.at);
        SessionState::Paid { exit, at }
    } else {
        SessionState::Closed { exit }
    }
}

//! The garage's rules as plain values: [`Plate`] and its confusion-aware [`MatchingKey`], [`Money`],
//! [`Tariff`] (priced by the total function [`Tariff::price`]), [`ParkingSession`] and its state
//! machine, [`Driver`] with a [`PaymentMethodToken`], a [`RecoveryCode`] and perhaps an [`EmailAddress`], [`PlateLists`] and [`Permit`]s, the gate
//! decisions [`decide_entry`] and [`decide_exit`], and the records they produce: [`ChargeRequest`]
//! and [`Charge`], [`Receipt`], [`ReviewItem`], [`AuditEvent`].
//!
//! Architecture invariants:
//! - this crate does no I/O: no files, sockets, database or logging; callers look things up and
//!   store what the decisions return;
//! - time is always passed in (a read's `at`, a stay's entry and exit), never read from a clock,
//!   and ids and link tokens are made from bytes the caller supplies, never drawn here;
//! - money is never a float: integer minor units and a currency, with a written rounding rule;
//! - no card number enters the domain: [`PaymentMethodToken::parse`] refuses anything that holds one;
//! - it does not depend on vision: a plate read arrives as text, confidence and candidates.

mod audit;
mod charge;
mod discount;
mod driver;
mod email;
mod gate;
mod id;
mod lists;
mod missed_exit;
mod money;
mod pay_by_plate;
mod plate;
mod read;
mod receipt;
mod recovery;
mod review;
mod schema;
mod session;
mod tariff;

pub use audit::{AuditAction, AuditEvent, ListChange, MissingReason, OperatorId, Reason};
pub use charge::{Charge, ChargeConflict, ChargeRequest, ChargeState, IdempotencyKey};
pub use discount::{Discount, Validation, ValidationUsedUp};
pub use driver::{Driver, InvalidPaymentMethod, PaymentMethodToken, PlateChangeError};
pub use email::{EmailAddress, InvalidEmail};
pub use gate::{
    Barrier, EntryContext, EntryDecision, EntryOutcome, ExitContext, ExitDecision, ExitDisplay, ExitMessage,
    ExitOutcome, GateConfig, PermitOccupancy, decide_entry, decide_exit,
};
pub use gate::{DOMINANCE, KeyEvidence, PooledRead, pool};
pub use id::{DriverId, InvalidId, LinkToken, PermitId, SessionId};
pub use lists::{InvalidPermit, Permit, PermitBenefit, PermitCheck, PermitTerms, PlateLists};
pub use missed_exit::{InvalidMissedExitPolicy, MissedExitPolicy};
pub use money::{Currency, InvalidCurrency, InvalidPercent, Money, MoneyError, Percent};
pub use pay_by_plate::{ArrivalHour, Reached, TRIES_WINDOW, WRONG_TRIES, reach_unpaid};
pub use plate::{InvalidPlate, MAX_GLYPHS, MIN_GLYPHS, MatchingKey, Plate};
pub use read::{CameraId, Candidate, Direction, PlateRead};
pub use receipt::{PaidBy, Receipt, ReceiptError};
pub use recovery::{InvalidRecoveryCode, RecoveryCode};
pub use review::{ReviewItem, ReviewReason};
pub use session::{
    AlreadyRegistered, Exit, IllegalTransition, ParkingSession, Payer, ReviewDecision, SessionEvent, SessionState,
};
pub use tariff::{
    Band, LineItem, MAX_INCREMENT_PRICE_MINOR, MAX_SCHEDULE_MINUTES, Price, PriceLine, RateWindow, Stay, Tariff,
    TariffError, TariffSpec, TimeOfDay,
};

//! The gate service: a [`PlateRead`](valet_garage::PlateRead) in, a decision out, persisted and
//! charged. [`GateService::handle_entry`] and [`GateService::handle_exit`] look the read's
//! context up in the [`GarageStore`](valet_store::GarageStore), call the pure
//! [`valet_garage::decide_entry`] / [`valet_garage::decide_exit`], store what they decided, and
//! settle exit charges through a [`valet_billing::Biller`] whose log is the store itself
//! ([`StoreChargeLog`]). Time comes from a [`Clock`], ids and link tokens from an [`IdSource`].
//!
//! Architecture invariants:
//! - every rule lives in `valet-garage`; this crate only looks up, calls and stores;
//! - an exit is charged only by the worker whose `close_session` closed the session, under the
//!   session's own idempotency key, so two workers handling one read charge once;
//! - a charge's outcome reaches the session (paid and receipted, or unpaid and reviewed) on the
//!   exit itself or, after a crash, through [`GateService::resume_pending`] or the provider's
//!   own notice ([`GateService::take_notice`]).

mod account;
mod charge_log;
mod clock;
mod desk;
mod ledger;
mod missed_exits;
mod notices;
mod pay_by_plate;
mod service;

pub use account::SignedIn;
pub use charge_log::StoreChargeLog;
pub use clock::{Clock, FixedClock, IdSource, RandomIds, SystemClock};
pub use desk::{DeskError, PAY_BY_PLATE_CAMERA, Refundable, SignedUp};
pub use ledger::{ConfiguredGateway, StoreLedger};
pub use missed_exits::{GATE, MissedExitClosed, MissedExits};
pub use notices::{NoticeError, NoticeTaken, PAYMENT_PROVIDER};
pub use pay_by_plate::FoundStays;
pub use service::{DecidedExit, GateError, GateService, HandledEntry, HandledExit, SettledCharge};

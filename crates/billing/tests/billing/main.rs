//! `valet-billing`'s integration tests, one binary: the ledger, the Stripe adapter against a local
//! stand-in for Stripe, and the Biller surviving crashes between charging and recording.

mod biller;
mod helpers;
mod ledger;
mod stripe;
mod stripe_standin;

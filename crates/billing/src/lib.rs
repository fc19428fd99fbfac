//! Charging drivers: the [`PaymentGateway`] trait, the embedded [`LedgerGateway`] (receivables,
//! refunds, [`Statement`]s), the [`StripeGateway`] on Stripe's REST API and its signed webhooks
//! ([`verify_signature`], [`read_event`]), and the [`Biller`], which
//! settles a [`valet_garage::ChargeRequest`] through a [`ChargeLog`] so that a crash neither loses
//! a charge nor doubles it.
//!
//! Architecture invariants:
//! - no card number ever passes through this crate: cards are typed into the provider's own form,
//!   and the garage holds a [`valet_garage::PaymentMethodToken`];
//! - every charge sent to a provider carries its [`valet_garage::IdempotencyKey`], and a retry
//!   sends the same key with the same parameters;
//! - a charge's outcome is recorded, or the charge is still in [`ChargeLog::pending`]: never lost;
//! - secret keys, webhook secrets and client secrets are never logged or shown by `Debug`;
//! - a webhook's body is parsed only after its signature has been verified.

mod biller;
mod gateway;
mod ledger;
mod stripe;
mod stripe_webhook;

pub use biller::{Biller, BillerError, ChargeLog, ChargeLogError, LoggedCharge, MemoryChargeLog, Settlement};
pub use gateway::{
    CardSetup, CustomerRef, GatewayCharge, GatewayError, GatewayRefund, PaymentGateway, ProviderOutcome,
    ProviderRefund, RefundKey, RefundRequest,
};
pub use ledger::{LedgerGateway, Statement, StatementLine};
pub use stripe::{StripeConfig, StripeGateway, StripePublishableKey, StripeSecretKey, StripeSetupError};
pub use stripe_webhook::{
    Notice, NoticedPayment, ProviderNotice, SIGNATURE_TOLERANCE, StripeWebhookSecret, WebhookError, read_event,
    verify_signature,
};

//! The [`PaymentGateway`] trait every payment provider implements, the values that cross it
//! ([`CustomerRef`], [`CardSetup`], [`GatewayCharge`], [`RefundRequest`], [`GatewayRefund`]), and
//! [`GatewayError`], which tells a final answer from one worth retrying.

use std::fmt;
use std::future::Future;

use serde::{Deserialize, Serialize};
use valet_garage::{ChargeRequest, DriverId, IdempotencyKey, Money, PaymentMethodToken};

/// The provider's handle on a driver (`cus_…` at Stripe, `ledger-cus-…` in the ledger).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CustomerRef(pub String);

/// A card being saved for off-session charges. The driver types the card into the provider's own
/// form (Stripe.js with `client_secret`), so the card number never reaches the garage; once they
/// have, [`PaymentGateway::saved_payment_method`] turns the setup into a [`PaymentMethodToken`].
#[derive(Clone, PartialEq, Eq)]
pub struct CardSetup {
    /// The provider's id for the setup (`seti_…`).
    pub id: String,
    pub customer: CustomerRef,
    /// What the provider's form needs to attach the card; `None` where there is no form (the
    /// ledger). It lets anyone holding it complete the setup, so it is kept out of `Debug`.
    pub client_secret: Option<String>,
}

impl fmt::Debug for CardSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardSetup")
            .field("id", &self.id)
            .field("customer", &self.customer)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A charge the provider accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayCharge {
    pub idempotency_key: IdempotencyKey,
    /// The provider's id for the payment (`pi_…`, `ledger-ch-…`): what a refund names and a
    /// receipt prints.
    pub reference: String,
    pub amount: Money,
}

/// The key that makes a refund safe to retry: an operator's double click refunds once. Chosen by
/// the caller, typically from the audit event that authorised the refund.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RefundKey(pub String);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    pub key: RefundKey,
    /// The [`GatewayCharge::reference`] being refunded.
    pub charge_reference: String,
    /// `None` refunds whatever of the charge is not refunded yet.
    pub amount: Option<Money>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayRefund {
    pub key: RefundKey,
    pub reference: String,
    pub charge_reference: String,
    pub amount: Money,
}

/// A refund as the provider lists it, whoever made it: Valet, or a person in the provider's own
/// dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRefund {
    pub reference: String,
    pub amount: Money,
}

/// What the provider holds for a charge, when asked before a pending charge is sent again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderOutcome {
    /// It took the money.
    Paid(GatewayCharge),
    /// It will not take the money without the driver (declined, or waiting for them to
    /// authenticate): final, a [`GatewayError::Declined`].
    Refused(GatewayError),
    /// Still under way at the provider: ask again later.
    Processing,
}

/// Why a gateway call did not succeed, sorted by what the caller may do next. Messages carry the
/// provider's words and codes, never a secret key or card data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The payment method was refused (insufficient funds, expired card, authentication needed).
    /// Final: the same key replays the same refusal, and a new key needs a person (the review queue).
    #[error("declined{}: {message}", code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Declined { code: Option<String>, message: String },
    /// The request itself was refused: an unknown token, a key reused with other parameters, a
    /// bad secret key. Final for this request; sending it again cannot help.
    #[error("the payment provider refused the request: {message}")]
    Rejected { message: String },
    /// The provider could not be reached or asked us to slow down, and the outcome is unknown.
    /// Retry with the same key: the provider answers a retry with the first result instead of
    /// charging twice.
    #[error("the payment provider is unavailable, retry with the same key: {message}")]
    Transient { message: String },
}

impl GatewayError {
    /// Whether retrying cannot change the answer, so it may be recorded as the charge's outcome.
    pub fn is_final(&self) -> bool {
        !matches!(self, GatewayError::Transient { .. })
    }
}

/// A payment provider, as the garage uses one: a customer per driver, a card saved once for
/// off-session use, a charge per paid session, and refunds.
///
/// Every method that moves money takes a key, and an implementation must pass it on so that a
/// retry after a lost answer is answered with the first result instead of a second payment.
pub trait PaymentGateway: Send + Sync {
    /// Creates the provider's customer for `driver`. Repeating it for the same driver is safe.
    fn create_customer(&self, driver: DriverId) -> impl Future<Output = Result<CustomerRef, GatewayError>> + Send;

    /// Starts saving a card for charges made while the driver is not present.
    fn start_card_setup(&self, customer: &CustomerRef) -> impl Future<Output = Result<CardSetup, GatewayError>> + Send;

    /// The saved payment method once the driver has completed `setup_id`; `Declined` while they
    /// have not (or their bank refused the card).
    fn saved_payment_method(
        &self,
        setup_id: &str,
    ) -> impl Future<Output = Result<PaymentMethodToken, GatewayError>> + Send;

    /// Charges `method` off-session for `request`, sending `request.idempotency_key` with it.
    fn charge(
        &self,
        request: &ChargeRequest,
        method: &PaymentMethodToken,
    ) -> impl Future<Output = Result<GatewayCharge, GatewayError>> + Send;

    /// Refunds all or part of a charge, sending `request.key` with it.
    fn refund(&self, request: &RefundRequest) -> impl Future<Output = Result<GatewayRefund, GatewayError>> + Send;

    /// What the provider holds for a charge sent under `request`'s idempotency key, found by the
    /// key itself (Stripe: the `valet_charge` metadata), or `None` when it has no such charge. The
    /// [`crate::Biller`] asks this before sending a pending charge again, because a provider keeps
    /// idempotency keys only so long (Stripe: 24 hours): after that, a resend would charge twice.
    fn look_up(
        &self,
        request: &ChargeRequest,
    ) -> impl Future<Output = Result<Option<ProviderOutcome>, GatewayError>> + Send;

    /// Every refund of the charge `charge_reference` the provider holds that took money back
    /// (failed and cancelled ones left out), oldest first.
    fn refunds_of(
        &self,
        charge_reference: &str,
    ) -> impl Future<Output = Result<Vec<ProviderRefund>, GatewayError>> + Send;
}

/// Refuses what no provider should be asked: a charge of nothing or less. A free stay is settled
/// without a charge; a credit is a refund.
pub(crate) fn check_chargeable(request: &ChargeRequest) -> Result<(), GatewayError> {
    if request.amount.minor <= 0 {
        return Err(GatewayError::Rejected { message: format!("cannot charge {}", request.amount) });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_errors_are_worth_retrying() {
        let declined = GatewayError::Declined { code: Some("insufficient_funds".into()), message: "no".into() };
        assert!(declined.is_final());
        assert!(GatewayError::Rejected { message: "bad key".into() }.is_final());
        assert!(!GatewayError::Transient { message: "timeout".into() }.is_final());
        assert_eq!(declined.to_string(), "declined (insufficient_funds): no");
    }

    #[test]
    fn a_card_setup_never_prints_its_client_secret() {
        let setup = CardSetup {
            id: "seti_1".into(),
            customer: CustomerRef("cus_1".into()),
            client_secret: Some("seti_1_secret_abc".into()),
        };
        let shown = format!("{setup:?}");
        assert!(!shown.contains("secret_abc"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}

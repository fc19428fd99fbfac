//! [`StoreLedger`], the embedded default payment gateway: the garage's own book of receivables,
//! kept in the garage's records rather than in memory, so it survives restarts and is shared by
//! every replica on one PostgreSQL. A charge is a receivable the operator collects (an invoice, a
//! monthly statement); its reference is derived from its idempotency key, so a retry after a crash
//! is the same charge by construction. Refunds are checked against the charge and the refunds
//! already recorded. [`ConfiguredGateway`] picks this or Stripe from configuration.

use rand::Rng;
use valet_billing::{
    CardSetup, CustomerRef, GatewayCharge, GatewayError, GatewayRefund, PaymentGateway, ProviderOutcome,
    ProviderRefund, RefundRequest, StripeGateway,
};
use valet_garage::{ChargeRequest, ChargeState, DriverId, Money, PaymentMethodToken};
use valet_store::GarageStore;

#[derive(Debug, Clone)]
pub struct StoreLedger {
    store: GarageStore,
}

impl StoreLedger {
    pub fn new(store: GarageStore) -> StoreLedger {
        StoreLedger { store }
    }
}

fn rejected(message: String) -> GatewayError {
    GatewayError::Rejected { message }
}

fn unavailable(error: valet_store::StoreError) -> GatewayError {
    GatewayError::Transient { message: error.to_string() }
}

/// Letters only: a token of digits could look like a card number to `PaymentMethodToken::parse`.
fn account_name() -> String {
    let mut rng = rand::rng();
    (0..20).map(|_| char::from(b'a' + rng.random_range(0..26u8))).collect()
}

impl PaymentGateway for StoreLedger {
    async fn create_customer(&self, driver: DriverId) -> Result<CustomerRef, GatewayError> {
        Ok(CustomerRef(format!("ledger-cus-{driver}")))
    }

    /// Nothing to type in: the account is ready at once.
    async fn start_card_setup(&self, customer: &CustomerRef) -> Result<CardSetup, GatewayError> {
        Ok(CardSetup { id: format!("ledger-seti-{}", account_name()), customer: customer.clone(), client_secret: None })
    }

    async fn saved_payment_method(&self, setup_id: &str) -> Result<PaymentMethodToken, GatewayError> {
        let name =
            setup_id.strip_prefix("ledger-seti-").ok_or_else(|| rejected(format!("no ledger setup {setup_id}")))?;
        PaymentMethodToken::parse(&format!("ledger-acct-{name}")).map_err(|e| rejected(e.to_string()))
    }

    /// Any payment-method token names an account in the garage's own book: there is no card to
    /// decline. The charge's outcome is recorded by the caller's charge log like any provider's.
    async fn charge(
        &self,
        request: &ChargeRequest,
        _method: &PaymentMethodToken,
    ) -> Result<GatewayCharge, GatewayError> {
        if request.amount.minor <= 0 {
            return Err(rejected(format!("cannot charge {}", request.amount)));
        }
        Ok(GatewayCharge {
            idempotency_key: request.idempotency_key.clone(),
            reference: format!("ledger-ch-{}", request.idempotency_key),
            amount: request.amount,
        })
    }

    async fn refund(&self, request: &RefundRequest) -> Result<GatewayRefund, GatewayError> {
        let record = self.store.charge_by_reference(&request.charge_reference).await.map_err(unavailable)?;
        let record = record.ok_or_else(|| rejected(format!("no charge {} in the ledger", request.charge_reference)))?;
        if !matches!(record.charge.state(), ChargeState::Succeeded { .. }) {
            return Err(rejected(format!("charge {} did not succeed", request.charge_reference)));
        }
        let charged = record.request.amount;
        let refunds = self.store.refunds_for_session(record.request.session).await.map_err(unavailable)?;
        let refunds: Vec<_> = refunds.into_iter().filter(|r| r.charge == record.request.idempotency_key).collect();
        let reference = format!("ledger-re-{}", request.key.0);
        if let Some(done) = refunds.iter().find(|r| r.key == request.key.0) {
            return Ok(GatewayRefund {
                key: request.key.clone(),
                reference: done.reference.clone(),
                charge_reference: request.charge_reference.clone(),
                amount: done.amount,
            });
        }
        let remaining = charged.minor - refunds.iter().map(|r| r.amount.minor).sum::<i64>();
        let amount = request.amount.unwrap_or(Money::new(remaining, charged.currency));
        if amount.currency != charged.currency {
            return Err(rejected(format!("the charge was in {}, not {}", charged.currency, amount.currency)));
        }
        if amount.minor <= 0 || amount.minor > remaining {
            let left = Money::new(remaining, charged.currency);
            return Err(rejected(format!("cannot refund {amount}: {left} is left to refund")));
        }
        Ok(GatewayRefund {
            key: request.key.clone(),
            reference,
            charge_reference: request.charge_reference.clone(),
            amount,
        })
    }

    /// The ledger's charge is a receivable whose reference its key decides: a resend is the same
    /// charge by construction, however late, so there is nothing to ask first.
    async fn look_up(&self, _request: &ChargeRequest) -> Result<Option<ProviderOutcome>, GatewayError> {
        Ok(None)
    }

    /// The ledger's refunds are the garage's own records: a refund is made here only as the
    /// desk records it.
    async fn refunds_of(&self, charge_reference: &str) -> Result<Vec<ProviderRefund>, GatewayError> {
        let Some(record) = self.store.charge_by_reference(charge_reference).await.map_err(unavailable)? else {
            return Ok(Vec::new());
        };
        let refunds = self.store.refunds_for_session(record.request.session).await.map_err(unavailable)?;
        Ok(refunds
            .into_iter()
            .filter(|r| r.charge == record.request.idempotency_key)
            .map(|r| ProviderRefund { reference: r.reference, amount: r.amount })
            .collect())
    }
}

/// The gateway `valet serve` was configured with, as one concrete type, so the service above is
/// not generic over configuration.
#[derive(Debug)]
pub enum ConfiguredGateway {
    Ledger(StoreLedger),
    Stripe(StripeGateway),
}

impl ConfiguredGateway {
    pub fn name(&self) -> &'static str {
        match self {
            ConfiguredGateway::Ledger(_) => "ledger",
            ConfiguredGateway::Stripe(_) => "stripe",
        }
    }
}

impl PaymentGateway for ConfiguredGateway {
    async fn create_customer(&self, driver: DriverId) -> Result<CustomerRef, GatewayError> {
        match self {
            ConfiguredGateway::Ledger(g) => g.create_customer(driver).await,
            ConfiguredGateway::Stripe(g) => g.create_customer(driver).await,
        }
    }

    async fn start_card_setup(&self, customer: &CustomerRef) -> Result<CardSetup, GatewayError> {
        match self {
            ConfiguredGateway::Ledger(g) => g.start_card_setup(customer).await,
            ConfiguredGateway::Stripe(g) => g.start_card_setup(customer).await,
        }
    }

    async fn saved_payment_method(&self, setup_id: &str) -> Result<PaymentMethodToken, GatewayError> {
        match self {
            ConfiguredGateway::Ledger(g) => g.saved_payment_method(setup_id).await,
            ConfiguredGateway::Stripe(g) => g.saved_payment_method(setup_id).await,
        }
    }

    async fn charge(
        &self,
        request: &ChargeRequest,
        method: &PaymentMethodToken,
    ) -> Result<GatewayCharge, GatewayError> {
        match self {
            ConfiguredGateway::Ledger(g) => g.charge(request, method).await,
            ConfiguredGateway::Stripe(g) => g.charge(request, method).await,
        }
    }

    async fn refund(&self, request: &RefundRequest) -> Result<GatewayRefund, GatewayError> {
        match self {
            ConfiguredGateway::Ledger(g) => g.refund(request).await,
            ConfiguredGateway::Stripe(g) => g.refund(request).await,
        }
    }

    async fn look_up(&self, request: &ChargeRequest) -> Result<Option<ProviderOutcome>, GatewayError> {
        match self {
            ConfiguredGateway::Ledger(g) => g.look_up(request).await,
            ConfiguredGateway::Stripe(g) => g.look_up(request).await,
        }
    }

    async fn refunds_of(&self, charge_reference: &str) -> Result<Vec<ProviderRefund>, GatewayError> {
        match self {
            ConfiguredGateway::Ledger(g) => g.refunds_of(charge_reference).await,
            ConfiguredGateway::Stripe(g) => g.refunds_of(charge_reference).await,
        }
    }
}

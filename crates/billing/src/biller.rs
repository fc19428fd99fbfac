//! [`Biller`]: charging a session's price so that a crash can neither lose the charge nor double
//! it. Each charge goes request recorded → gateway called → result recorded, in a [`ChargeLog`];
//! whatever a crash interrupts is still in [`ChargeLog::pending`], and [`Biller::resume_pending`]
//! asks the provider what became of it, and sends it again with the same idempotency key only if
//! the provider has never seen it.
//!
//! [`MemoryChargeLog`] is for tests, and for a garage that accepts losing pending charges on
//! restart; `valet-gate`'s `StoreChargeLog` is the durable one, over the store's charges table,
//! whose insert-if-absent keeps several replicas safe.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use valet_garage::{Charge, ChargeConflict, ChargeRequest, ChargeState, IdempotencyKey, PaymentMethodToken};

use crate::gateway::{GatewayError, PaymentGateway, ProviderOutcome};

/// A charge as the log holds it: what was asked, of which payment method, and what became of it.
/// The request and method are kept so that a retry resends exactly what the first attempt sent: a
/// provider refuses a reused key with different parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedCharge {
    pub request: ChargeRequest,
    pub method: PaymentMethodToken,
    pub charge: Charge,
}

impl LoggedCharge {
    pub fn is_pending(&self) -> bool {
        matches!(self.charge.state(), ChargeState::Requested { .. })
    }
}

/// The log could not be read or written (the database is down, a constraint failed).
#[derive(Debug, thiserror::Error)]
#[error("charge log: {0}")]
pub struct ChargeLogError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl ChargeLogError {
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ChargeLogError {
        ChargeLogError(error.into())
    }
}

/// Where charges are written down before and after the provider is asked. Each write must be
/// durable when its future completes: the [`Biller`] calls the provider only after
/// `record_requested` has returned.
pub trait ChargeLog: Send + Sync {
    /// Records `logged` unless its key is recorded already, and returns what the log holds for
    /// the key: the new record, or the earlier one (pending or settled).
    fn record_requested(
        &self,
        logged: LoggedCharge,
    ) -> impl Future<Output = Result<LoggedCharge, ChargeLogError>> + Send;

    /// Records the outcome of a requested charge (`charge` has succeeded or failed). Recording the
    /// same outcome twice is harmless; a different one is refused.
    fn record_result(&self, charge: &Charge) -> impl Future<Output = Result<(), ChargeLogError>> + Send;

    /// Every charge requested whose outcome is not recorded, oldest first.
    fn pending(&self) -> impl Future<Output = Result<Vec<LoggedCharge>, ChargeLogError>> + Send;
}

/// What became of one attempt to settle a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// The outcome, succeeded or failed, is recorded in the log.
    Recorded(Charge),
    /// The provider could not be reached; the charge stays pending and
    /// [`Biller::resume_pending`] will send it again with the same key.
    StillPending { charge: Charge, error: GatewayError },
}

#[derive(Debug, thiserror::Error)]
pub enum BillerError {
    #[error(transparent)]
    Log(#[from] ChargeLogError),
    /// The provider's answer contradicts the recorded outcome: a person must look.
    #[error(transparent)]
    Conflict(#[from] ChargeConflict),
    #[error("idempotency key {0} is already recorded for a different charge")]
    KeyReused(IdempotencyKey),
}

/// Settles charges through a [`PaymentGateway`], writing each step to a [`ChargeLog`].
#[derive(Debug)]
pub struct Biller<G, L> {
    gateway: G,
    log: L,
}

impl<G: PaymentGateway, L: ChargeLog> Biller<G, L> {
    pub fn new(gateway: G, log: L) -> Biller<G, L> {
        Biller { gateway, log }
    }

    pub fn gateway(&self) -> &G {
        &self.gateway
    }

    pub fn log(&self) -> &L {
        &self.log
    }

    /// Charges `method` for `request` at `at`. A key already settled is answered from the log
    /// without asking the provider; a key still pending is sent again, which is safe because the
    /// provider sees the same key.
    pub async fn settle(
        &self,
        request: &ChargeRequest,
        method: &PaymentMethodToken,
        at: DateTime<Utc>,
    ) -> Result<Settlement, BillerError> {
        let asked =
            LoggedCharge { request: request.clone(), method: method.clone(), charge: Charge::requested(request, at) };
        let logged = self.log.record_requested(asked).await?;
        if logged.request != *request || logged.method != *method {
            return Err(BillerError::KeyReused(request.idempotency_key.clone()));
        }
        if !logged.is_pending() {
            return Ok(Settlement::Recorded(logged.charge));
        }
        self.attempt(logged, at).await
    }

    /// Reconciles every pending charge: run at start-up and periodically. The provider is asked
    /// first what it holds under the charge's key ([`PaymentGateway::look_up`]); what it knows is
    /// recorded, and only a charge it has never seen is sent again, with its recorded request and
    /// key. Asking first is what keeps a charge single after the provider has forgotten the key
    /// (Stripe: 24 hours), when a resend would be a second payment. Stops at the first log error,
    /// since the next write would meet the same database; a charge it did not reach stays
    /// pending, never lost.
    pub async fn resume_pending(&self, at: DateTime<Utc>) -> Result<Vec<Settlement>, BillerError> {
        let mut settlements = Vec::new();
        for logged in self.log.pending().await? {
            settlements.push(self.reconcile(logged, at).await?);
        }
        Ok(settlements)
    }

    async fn reconcile(&self, logged: LoggedCharge, at: DateTime<Utc>) -> Result<Settlement, BillerError> {
        let mut charge = logged.charge.clone();
        match self.gateway.look_up(&logged.request).await {
            Ok(None) => return self.attempt(logged, at).await,
            Ok(Some(ProviderOutcome::Paid(paid))) => charge.succeed(at, paid.reference)?,
            Ok(Some(ProviderOutcome::Refused(error))) => charge.fail(at, error.to_string())?,
            Ok(Some(ProviderOutcome::Processing)) => {
                let error = GatewayError::Transient { message: "the provider is still processing it".into() };
                return Ok(Settlement::StillPending { charge, error });
            }
            Err(error) => {
                tracing::warn!(key = %charge.idempotency_key, %error, "could not ask the provider; the charge stays pending");
                return Ok(Settlement::StillPending { charge, error });
            }
        }
        tracing::info!(key = %charge.idempotency_key, "the provider knew the pending charge's outcome");
        self.log.record_result(&charge).await?;
        Ok(Settlement::Recorded(charge))
    }

    async fn attempt(&self, logged: LoggedCharge, at: DateTime<Utc>) -> Result<Settlement, BillerError> {
        let mut charge = logged.charge;
        match self.gateway.charge(&logged.request, &logged.method).await {
            Ok(paid) => charge.succeed(at, paid.reference)?,
            Err(error) if error.is_final() => charge.fail(at, error.to_string())?,
            Err(error) => {
                tracing::warn!(key = %charge.idempotency_key, %error, "charge left pending for a retry");
                return Ok(Settlement::StillPending { charge, error });
            }
        }
        self.log.record_result(&charge).await?;
        Ok(Settlement::Recorded(charge))
    }
}

/// A [`ChargeLog`] in memory, for tests and for a garage that accepts that a restart forgets
/// pending charges (the provider still holds their outcome under the same keys).
#[derive(Debug, Default)]
pub struct MemoryChargeLog {
    charges: Mutex<(BTreeMap<IdempotencyKey, LoggedCharge>, Vec<IdempotencyKey>)>,
}

impl MemoryChargeLog {
    pub fn new() -> MemoryChargeLog {
        MemoryChargeLog::default()
    }

    /// What the log holds for `key`.
    pub fn get(&self, key: &IdempotencyKey) -> Option<LoggedCharge> {
        self.charges().0.get(key).cloned()
    }

    fn charges(&self) -> MutexGuard<'_, (BTreeMap<IdempotencyKey, LoggedCharge>, Vec<IdempotencyKey>)> {
        // Every write below is a single insert, so a panic elsewhere cannot leave it half-done.
        self.charges.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ChargeLog for MemoryChargeLog {
    async fn record_requested(&self, logged: LoggedCharge) -> Result<LoggedCharge, ChargeLogError> {
        let mut charges = self.charges();
        let (by_key, order) = &mut *charges;
        let key = logged.charge.idempotency_key.clone();
        if let Some(earlier) = by_key.get(&key) {
            return Ok(earlier.clone());
        }
        order.push(key.clone());
        by_key.insert(key, logged.clone());
        Ok(logged)
    }

    async fn record_result(&self, charge: &Charge) -> Result<(), ChargeLogError> {
        let mut charges = self.charges();
        let Some(logged) = charges.0.get_mut(&charge.idempotency_key) else {
            return Err(ChargeLogError::new(format!("no requested charge {}", charge.idempotency_key)));
        };
        // Through the charge's own transitions, so the same outcome twice keeps the first record
        // and a contradicting one is refused, as the store must do too.
        let mut settled = logged.charge.clone();
        match charge.state() {
            ChargeState::Requested { .. } => {
                return Err(ChargeLogError::new(format!("charge {} has no outcome to record", charge.idempotency_key)));
            }
            ChargeState::Succeeded { at, reference } => settled.succeed(*at, reference.clone()),
            ChargeState::Failed { at, reason } => settled.fail(*at, reason.clone()),
        }
        .map_err(ChargeLogError::new)?;
        logged.charge = settled;
        Ok(())
    }

    async fn pending(&self) -> Result<Vec<LoggedCharge>, ChargeLogError> {
        let charges = self.charges();
        let (by_key, order) = &*charges;
        Ok(order.iter().filter_map(|key| by_key.get(key)).filter(|logged| logged.is_pending()).cloned().collect())
    }
}

//! [`StoreChargeLog`]: billing's [`ChargeLog`] on the garage's charges table, so a charge
//! requested before a crash is found and resent after it, by any replica.

use valet_billing::{ChargeLog, ChargeLogError, LoggedCharge};
use valet_garage::{Charge, ChargeState};
use valet_store::{ChargeRecord, GarageStore, StoreError};

/// The durable [`ChargeLog`]: `record_requested` is the store's single `INSERT … ON CONFLICT DO
/// NOTHING`, so of two workers asking for one key, both get the first row.
#[derive(Debug, Clone)]
pub struct StoreChargeLog {
    store: GarageStore,
}

impl StoreChargeLog {
    pub fn new(store: GarageStore) -> StoreChargeLog {
        StoreChargeLog { store }
    }

    /// What the biller needs to resend a recorded charge. A row recorded without its payment
    /// method (before the column existed) is resent to the driver's current method: the best
    /// there is, and a provider refuses it rather than charging twice if the card changed.
    async fn logged(&self, record: ChargeRecord) -> Result<LoggedCharge, ChargeLogError> {
        let method = match record.method {
            Some(method) => method,
            None => {
                let driver = self.store.driver(record.request.driver).await.map_err(ChargeLogError::new)?;
                let driver = driver.ok_or_else(|| {
                    ChargeLogError::new(format!(
                        "charge {} names driver {}, who is not registered",
                        record.charge.idempotency_key, record.request.driver
                    ))
                })?;
                driver.payment_method
            }
        };
        Ok(LoggedCharge { request: record.request, method, charge: record.charge })
    }
}

impl ChargeLog for StoreChargeLog {
    async fn record_requested(&self, logged: LoggedCharge) -> Result<LoggedCharge, ChargeLogError> {
        let &ChargeState::Requested { at } = logged.charge.state() else {
            let key = &logged.charge.idempotency_key;
            return Err(ChargeLogError::new(format!("charge {key} is settled already; only a request is recorded")));
        };
        match self.store.record_charge_request_to(&logged.request, &logged.method, at).await {
            Ok((record, _created)) => self.logged(record).await,
            // The biller compares what the log holds with what it asked and names the reused key.
            Err(StoreError::ChargeKeyReused(key)) => match self.store.charge(&key).await {
                Ok(Some(record)) => self.logged(record).await,
                Ok(None) => Err(ChargeLogError::new(StoreError::UnknownCharge(key))),
                Err(error) => Err(ChargeLogError::new(error)),
            },
            Err(error) => Err(ChargeLogError::new(error)),
        }
    }

    async fn record_result(&self, charge: &Charge) -> Result<(), ChargeLogError> {
        let key = &charge.idempotency_key;
        let recorded = match charge.state() {
            ChargeState::Requested { .. } => {
                return Err(ChargeLogError::new(format!("charge {key} has no outcome to record")));
            }
            ChargeState::Succeeded { at, reference } => self.store.record_charge_succeeded(key, *at, reference).await,
            ChargeState::Failed { at, reason } => self.store.record_charge_failed(key, *at, reason).await,
        };
        recorded.map(drop).map_err(ChargeLogError::new)
    }

    async fn pending(&self) -> Result<Vec<LoggedCharge>, ChargeLogError> {
        let records = self.store.charges_awaiting_outcome().await.map_err(ChargeLogError::new)?;
        let mut pending = Vec::with_capacity(records.len());
        for record in records {
            pending.push(self.logged(record).await?);
        }
        Ok(pending)
    }
}

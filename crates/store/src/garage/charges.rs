//! Charges: record a request under its idempotency key before the payment provider is called,
//! record the outcome after, and list the requests whose outcome is unknown (the outbox a retry
//! worker resumes after a crash).

use chrono::{DateTime, Utc};
use valet_garage::{
    Charge, ChargeRequest, ChargeState, Currency, DriverId, IdempotencyKey, Money, PaymentMethodToken, SessionId,
};

use super::{GarageStore, parse_column, with_pool};
use crate::StoreError;

/// A charge with the request that made it: what a retry sends to the provider again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRecord {
    pub request: ChargeRequest,
    /// The payment method the request was sent to; `None` for a charge recorded without one
    /// (by [`GarageStore::record_charge_request`], or before the column existed).
    pub method: Option<PaymentMethodToken>,
    pub charge: Charge,
}

#[derive(sqlx::FromRow)]
struct ChargeRow {
    idempotency_key: String,
    session_id: String,
    driver_id: String,
    amount_minor: i64,
    currency: String,
    state: String,
    requested_at: DateTime<Utc>,
    settled_at: Option<DateTime<Utc>>,
    reference: Option<String>,
    failure_reason: Option<String>,
    payment_method: Option<String>,
}

const CHARGE_COLUMNS: &str = "idempotency_key, session_id, driver_id, amount_minor, currency, state, requested_at, \
                              settled_at, reference, failure_reason, payment_method";

impl TryFrom<ChargeRow> for ChargeRecord {
    type Error = StoreError;
    fn try_from(row: ChargeRow) -> Result<ChargeRecord, StoreError> {
        // The domain makes keys only from sessions; a stored one is read back through serde.
        let key: IdempotencyKey = serde_json::from_value(serde_json::Value::String(row.idempotency_key))
            .map_err(|e| StoreError::Corrupt(format!("idempotency key: {e}")))?;
        let request = ChargeRequest {
            idempotency_key: key.clone(),
            session: parse_column("charge session", SessionId::parse(&row.session_id))?,
            driver: parse_column("charge driver", DriverId::parse(&row.driver_id))?,
            amount: Money::new(row.amount_minor, parse_column("charge currency", Currency::parse(&row.currency))?),
        };
        // Replayed through the domain's own transitions, so a stored charge obeys them too.
        let mut charge = Charge::requested(&request, row.requested_at);
        let corrupt = || StoreError::Corrupt(format!("charge {key} is {} without its outcome", row.state));
        match row.state.as_str() {
            "requested" => {}
            "succeeded" => {
                let (at, reference) = row.settled_at.zip(row.reference).ok_or_else(corrupt)?;
                parse_column("charge", charge.succeed(at, reference))?;
            }
            "failed" => {
                let (at, reason) = row.settled_at.zip(row.failure_reason).ok_or_else(corrupt)?;
                parse_column("charge", charge.fail(at, reason))?;
            }
            other => return Err(StoreError::Corrupt(format!("charge {key} has unknown state {other:?}"))),
        }
        let method = row.payment_method.map(|m| parse_column("charge payment method", PaymentMethodToken::parse(&m)));
        Ok(ChargeRecord { request, method: method.transpose()?, charge })
    }
}

impl GarageStore {
    /// Records `request` before the provider is called. A request whose key is already recorded
    /// (a retry, or a second worker) adds nothing and gets the existing charge; the `bool` says
    /// whether this call created it. The same key for a different session, driver or amount is
    /// [`StoreError::ChargeKeyReused`].
    pub async fn record_charge_request(
        &self,
        request: &ChargeRequest,
        at: DateTime<Utc>,
    ) -> Result<(ChargeRecord, bool), StoreError> {
        self.insert_charge_request(request, None, at).await
    }

    /// [`GarageStore::record_charge_request`], keeping the payment method the request is sent
    /// to, so a retry after a crash sends the provider exactly what the first attempt did. The
    /// method of an existing record is returned as recorded, not compared: the caller decides
    /// whether a different one is a reused key.
    pub async fn record_charge_request_to(
        &self,
        request: &ChargeRequest,
        method: &PaymentMethodToken,
        at: DateTime<Utc>,
    ) -> Result<(ChargeRecord, bool), StoreError> {
        self.insert_charge_request(request, Some(method), at).await
    }

    async fn insert_charge_request(
        &self,
        request: &ChargeRequest,
        method: Option<&PaymentMethodToken>,
        at: DateTime<Utc>,
    ) -> Result<(ChargeRecord, bool), StoreError> {
        let created = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO charges (idempotency_key, session_id, driver_id, amount_minor, currency, state,
                                      requested_at, payment_method)
                 VALUES ($1, $2, $3, $4, $5, 'requested', $6, $7)
                 ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(request.idempotency_key.as_str())
            .bind(request.session.to_string())
            .bind(request.driver.to_string())
            .bind(request.amount.minor)
            .bind(request.amount.currency.code())
            .bind(at)
            .bind(method.map(PaymentMethodToken::as_str))
            .execute(pool)
            .await?
            .rows_affected()
                == 1
        });
        let record = self.charge(&request.idempotency_key).await?.ok_or_else(|| {
            StoreError::Corrupt(format!("charge {} vanished after it was recorded", request.idempotency_key))
        })?;
        if record.request != *request {
            return Err(StoreError::ChargeKeyReused(request.idempotency_key.clone()));
        }
        Ok((record, created))
    }

    pub async fn charge(&self, key: &IdempotencyKey) -> Result<Option<ChargeRecord>, StoreError> {
        let sql = format!("SELECT {CHARGE_COLUMNS} FROM charges WHERE idempotency_key = $1");
        let row: Option<ChargeRow> =
            with_pool!(self, |pool| sqlx::query_as(&sql).bind(key.as_str()).fetch_optional(pool).await?);
        row.map(ChargeRecord::try_from).transpose()
    }

    /// The successful charge the provider knows as `reference`, if any.
    pub async fn charge_by_reference(&self, reference: &str) -> Result<Option<ChargeRecord>, StoreError> {
        let sql = format!("SELECT {CHARGE_COLUMNS} FROM charges WHERE reference = $1");
        let row: Option<ChargeRow> =
            with_pool!(self, |pool| sqlx::query_as(&sql).bind(reference).fetch_optional(pool).await?);
        row.map(ChargeRecord::try_from).transpose()
    }

    pub async fn charges_for_session(&self, session: SessionId) -> Result<Vec<ChargeRecord>, StoreError> {
        let sql = format!("SELECT {CHARGE_COLUMNS} FROM charges WHERE session_id = $1 ORDER BY requested_at");
        let rows: Vec<ChargeRow> =
            with_pool!(self, |pool| sqlx::query_as(&sql).bind(session.to_string()).fetch_all(pool).await?);
        rows.into_iter().map(ChargeRecord::try_from).collect()
    }

    /// Charges whose outcome is not recorded, oldest first: after a crash each is sent again
    /// with its own key, and the provider answers with the first attempt's result.
    pub async fn charges_awaiting_outcome(&self) -> Result<Vec<ChargeRecord>, StoreError> {
        let sql = format!(
            "SELECT {CHARGE_COLUMNS} FROM charges WHERE state = 'requested' ORDER BY requested_at, idempotency_key"
        );
        let rows: Vec<ChargeRow> = with_pool!(self, |pool| sqlx::query_as(&sql).fetch_all(pool).await?);
        rows.into_iter().map(ChargeRecord::try_from).collect()
    }

    /// Records that the provider took the payment (`reference` is its id for it). Reporting the
    /// same success twice is fine; contradicting a recorded outcome is [`StoreError::Charge`].
    pub async fn record_charge_succeeded(
        &self,
        key: &IdempotencyKey,
        at: DateTime<Utc>,
        reference: &str,
    ) -> Result<ChargeRecord, StoreError> {
        let updated = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE charges SET state = 'succeeded', settled_at = $2, reference = $3
                 WHERE idempotency_key = $1 AND state = 'requested'",
            )
            .bind(key.as_str())
            .bind(at)
            .bind(reference)
            .execute(pool)
            .await?
            .rows_affected()
        });
        self.outcome_recorded(key, updated, |charge| charge.succeed(at, reference.to_owned())).await
    }

    /// Records that the provider refused the payment. Reporting the failure twice is fine;
    /// a failure after a recorded success is [`StoreError::Charge`].
    pub async fn record_charge_failed(
        &self,
        key: &IdempotencyKey,
        at: DateTime<Utc>,
        reason: &str,
    ) -> Result<ChargeRecord, StoreError> {
        let updated = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE charges SET state = 'failed', settled_at = $2, failure_reason = $3
                 WHERE idempotency_key = $1 AND state = 'requested'",
            )
            .bind(key.as_str())
            .bind(at)
            .bind(reason)
            .execute(pool)
            .await?
            .rows_affected()
        });
        self.outcome_recorded(key, updated, |charge| charge.fail(at, reason.to_owned())).await
    }

    /// The charge after an outcome was written (`updated == 1`), or, when it was already settled,
    /// after checking with the domain that the new report agrees with the recorded one.
    async fn outcome_recorded(
        &self,
        key: &IdempotencyKey,
        updated: u64,
        report: impl FnOnce(&mut Charge) -> Result<(), valet_garage::ChargeConflict>,
    ) -> Result<ChargeRecord, StoreError> {
        let mut record = self.charge(key).await?.ok_or_else(|| StoreError::UnknownCharge(key.clone()))?;
        if updated == 0 {
            debug_assert!(!matches!(record.charge.state(), ChargeState::Requested { .. }));
            let recorded = record.charge.clone();
            report(&mut record.charge)?;
            record.charge = recorded;
        }
        Ok(record)
    }
}

//! What the HTTP API reads and writes beyond the gate: drivers' access tokens, their plates and
//! history, operators' session lists, and refunds.

use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use valet_garage::{Currency, Driver, DriverId, IdempotencyKey, LinkToken, Money, Plate, Receipt, SessionId};

use super::sessions::{SESSION_SELECT, SessionRow};
use super::{GarageStore, from_json, parse_column, with_pool};
use crate::{SessionRecord, StoreError};

/// A driver's secret for the API, handed out once at sign-up. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct DriverToken(String);

impl std::fmt::Debug for DriverToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DriverToken(…)")
    }
}

impl DriverToken {
    fn generate() -> DriverToken {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        DriverToken(format!("valetd_{}", hex::encode(secret)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Tokens are 256 random bits and recovery codes 100, so a fast unsalted hash is enough to keep
/// them unusable at rest: neither can be found by trying guesses against it.
pub(super) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Which sessions an operator's list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionFilter {
    All,
    /// One state by its stored name: `open`, `closed`, `paid`, `unpaid`, `in_review`.
    State(&'static str),
    Driver(DriverId),
}

/// A refund as made: the provider's reference and the operator's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRecord {
    pub key: String,
    pub session: SessionId,
    pub charge: IdempotencyKey,
    pub amount: Money,
    pub reference: String,
    pub by: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct RefundRow {
    refund_key: String,
    session_id: String,
    charge_key: String,
    amount_minor: i64,
    currency: String,
    reference: String,
    refunded_by: String,
    reason: String,
    refunded_at: DateTime<Utc>,
}

impl TryFrom<RefundRow> for RefundRecord {
    type Error = StoreError;
    fn try_from(row: RefundRow) -> Result<RefundRecord, StoreError> {
        let charge: IdempotencyKey = serde_json::from_value(serde_json::Value::String(row.charge_key))
            .map_err(|e| StoreError::Corrupt(format!("refunded charge key: {e}")))?;
        Ok(RefundRecord {
            key: row.refund_key,
            session: parse_column("refund session", SessionId::parse(&row.session_id))?,
            charge,
            amount: Money::new(row.amount_minor, parse_column("refund currency", Currency::parse(&row.currency))?),
            reference: row.reference,
            by: row.refunded_by,
            reason: row.reason,
            at: row.refunded_at,
        })
    }
}

impl GarageStore {
    /// Hands `driver` a new access token; the plain text is returned once and not kept.
    pub async fn grant_driver_token(&self, driver: DriverId, at: DateTime<Utc>) -> Result<DriverToken, StoreError> {
        let token = DriverToken::generate();
        with_pool!(self, |pool| {
            sqlx::query("INSERT INTO driver_tokens (token_hash, driver_id, created_at) VALUES ($1, $2, $3)")
                .bind(token_hash(token.expose()))
                .bind(driver.to_string())
                .bind(at)
                .execute(pool)
                .await?;
        });
        Ok(token)
    }

    /// The driver holding `token`, if any.
    pub async fn driver_by_token(&self, token: &str) -> Result<Option<Driver>, StoreError> {
        let id: Option<String> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT driver_id FROM driver_tokens WHERE token_hash = $1")
                .bind(token_hash(token))
                .fetch_optional(pool)
                .await?
        });
        match id {
            Some(id) => self.driver(parse_column("token driver", DriverId::parse(&id))?).await,
            None => Ok(None),
        }
    }

    /// Revokes one token (a sign-out): it opens nothing from now on. `false` when it was unknown.
    pub async fn revoke_driver_token(&self, token: &str) -> Result<bool, StoreError> {
        let revoked = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM driver_tokens WHERE token_hash = $1")
                .bind(token_hash(token))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(revoked == 1)
    }

    /// Revokes every token of `driver` but `keep`: a recovery sign-in signs out the lost phone.
    /// Returns how many were revoked.
    pub async fn revoke_other_driver_tokens(&self, driver: DriverId, keep: &DriverToken) -> Result<u64, StoreError> {
        let revoked = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM driver_tokens WHERE driver_id = $1 AND token_hash <> $2")
                .bind(driver.to_string())
                .bind(token_hash(keep.expose()))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(revoked)
    }

    /// Takes `plate` off a driver's account; `false` when it was not on it. The caller checks
    /// first that no session of that plate is active (the domain's `Driver::remove_plate`).
    pub async fn remove_driver_plate(&self, driver: DriverId, plate: &Plate) -> Result<bool, StoreError> {
        let removed = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM driver_plates WHERE driver_id = $1 AND plate_display = $2")
                .bind(driver.to_string())
                .bind(plate.display())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(removed == 1)
    }

    /// The newest sessions first, at most `limit` of them.
    pub async fn sessions(&self, filter: SessionFilter, limit: u32) -> Result<Vec<SessionRecord>, StoreError> {
        let condition = match filter {
            SessionFilter::All => "TRUE",
            SessionFilter::State(_) => "s.state = $2",
            SessionFilter::Driver(_) => "s.payer_driver_id = $2",
        };
        let sql = format!("{SESSION_SELECT} WHERE {condition} ORDER BY s.entry_at DESC, s.id LIMIT $1");
        let rows: Vec<SessionRow> = with_pool!(self, |pool| {
            let query = sqlx::query_as(&sql).bind(i64::from(limit));
            let query = match filter {
                SessionFilter::All => query,
                SessionFilter::State(state) => query.bind(state),
                SessionFilter::Driver(driver) => query.bind(driver.to_string()),
            };
            query.fetch_all(pool).await?
        });
        rows.into_iter().map(SessionRecord::try_from).collect()
    }

    /// How many cars the gates have let in and not out: the entry/exit balance.
    pub async fn open_session_count(&self) -> Result<u32, StoreError> {
        let count: i64 = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE state = 'open'").fetch_one(pool).await?
        });
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// The unregistered session a sign-up or pay-by-plate link points at.
    pub async fn session_by_link(&self, link: LinkToken) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!("{SESSION_SELECT} WHERE s.payer_link_token = $1");
        let row: Option<SessionRow> =
            with_pool!(self, |pool| sqlx::query_as(&sql).bind(link.to_string()).fetch_optional(pool).await?);
        row.map(SessionRecord::try_from).transpose()
    }

    /// A driver's receipts, newest first.
    pub async fn receipts_of_driver(&self, driver: DriverId, limit: u32) -> Result<Vec<Receipt>, StoreError> {
        let bodies: Vec<String> = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT r.body FROM receipts r JOIN sessions s ON s.id = r.session_id
                 WHERE s.payer_driver_id = $1 ORDER BY r.issued_at DESC LIMIT $2",
            )
            .bind(driver.to_string())
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        bodies.iter().map(|b| from_json("receipt", b)).collect()
    }

    /// Records a refund the provider made. A key or a provider reference already recorded (a
    /// retried request, or the same refund heard of through a webhook) adds nothing and returns
    /// `false`.
    pub async fn record_refund(&self, refund: &RefundRecord) -> Result<bool, StoreError> {
        let written = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO refunds (refund_key, session_id, charge_key, amount_minor, currency, reference,
                                      refunded_by, reason, refunded_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            )
            .bind(&refund.key)
            .bind(refund.session.to_string())
            .bind(refund.charge.as_str())
            .bind(refund.amount.minor)
            .bind(refund.amount.currency.code())
            .bind(&refund.reference)
            .bind(&refund.by)
            .bind(&refund.reason)
            .bind(refund.at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(written == 1)
    }

    pub async fn refunds_for_session(&self, session: SessionId) -> Result<Vec<RefundRecord>, StoreError> {
        let rows: Vec<RefundRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT refund_key, session_id, charge_key, amount_minor, currency, reference, refunded_by, reason,
                        refunded_at
                 FROM refunds WHERE session_id = $1 ORDER BY refunded_at, refund_key",
            )
            .bind(session.to_string())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(RefundRecord::try_from).collect()
    }
}

//! Drivers' e-mail addresses and the mail outbox (`mail_outbox`): the receipts and failed-charge
//! notices owed to them, claimed by one sender at a time, and what became of each.
//!
//! Mail is owed by a sweep ([`GarageStore::owe_mail`]) that reads what the garage already
//! recorded (a receipt written, a stay left unpaid) rather than by the code paths that record
//! them, so no path (an exit, a webhook, reconciliation, a retry) can forget it, and a crash
//! between recording and owing only delays the mail to the next sweep. The row's id names what it
//! is about, so owing it again adds nothing: a receipt is mailed once.

use chrono::{DateTime, TimeDelta, Utc};
use valet_garage::{DriverId, EmailAddress, SessionId};

use super::{GarageStore, parse_column, with_pool};
use crate::StoreError;

/// What a mail is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// A paid stay's receipt.
    Receipt,
    /// The bank refused the stay's charge: the driver is told why and where to pay.
    ChargeFailed,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Receipt => "receipt",
            MailKind::ChargeFailed => "charge_failed",
        }
    }

    fn parse(text: &str) -> Result<MailKind, String> {
        match text {
            "receipt" => Ok(MailKind::Receipt),
            "charge_failed" => Ok(MailKind::ChargeFailed),
            other => Err(format!("unknown mail kind {other:?}")),
        }
    }
}

/// A mail a sender has claimed: send it, then record [`GarageStore::mail_sent`] or
/// [`GarageStore::mail_failed`] before the lease runs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwedMail {
    /// `receipt:<session>` or `unpaid:<session>`: stable, so it also makes a stable Message-ID.
    pub id: String,
    pub kind: MailKind,
    pub session: SessionId,
    pub driver: DriverId,
    /// Where the account wants mail now; `None` when the driver has since removed the address.
    pub recipient: Option<EmailAddress>,
    /// Tries so far, this one included.
    pub attempts: u32,
}

/// What became of one mail, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRecord {
    pub id: String,
    pub kind: MailKind,
    pub session: SessionId,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub recipient: Option<String>,
    /// `sent`, `skipped` or `given_up`; `None` while still owed.
    pub outcome: Option<String>,
}

/// How a try ended, for [`GarageStore::mail_failed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailRetry {
    /// Try again at this time.
    At(DateTime<Utc>),
    /// Stop trying: the server refused the mail for good, or it failed too often.
    GiveUp,
}

type OwedRow = (String, String, String, String, Option<String>, i64);
type RecordRow = (String, String, String, i64, Option<String>, Option<String>, Option<String>);

impl GarageStore {
    /// Sets or removes the address a driver wants mail at. Setting one (even the same one again)
    /// starts it from `at`: only what happens from then on is mailed. `false` for no such driver.
    pub async fn set_driver_email(
        &self,
        driver: DriverId,
        email: Option<&EmailAddress>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let changed = with_pool!(self, |pool| {
            sqlx::query("UPDATE drivers SET email = $2, email_since = $3 WHERE id = $1")
                .bind(driver.to_string())
                .bind(email.map(EmailAddress::as_str))
                .bind(email.map(|_| at))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(changed == 1)
    }

    pub async fn driver_email(&self, driver: DriverId) -> Result<Option<EmailAddress>, StoreError> {
        let email: Option<Option<String>> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT email FROM drivers WHERE id = $1")
                .bind(driver.to_string())
                .fetch_optional(pool)
                .await?
        });
        email.flatten().map(|e| parse_column("driver e-mail", EmailAddress::parse(&e))).transpose()
    }

    /// Owes the mail that what happened since `since` calls for: a receipt for each receipt
    /// written, a notice for each stay left unpaid, to drivers with an address that they gave
    /// before it happened. Owing what is already owed (or sent) adds nothing. Returns how many
    /// mails are newly owed.
    pub async fn owe_mail(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let owed = with_pool!(self, |pool| {
            let receipts = sqlx::query(
                "INSERT INTO mail_outbox (id, kind, session_id, driver_id, queued_at, next_attempt_at, attempts)
                 SELECT 'receipt:' || r.session_id, 'receipt', r.session_id, d.id, $1, $1, 0
                 FROM receipts r
                 JOIN sessions s ON s.id = r.session_id
                 JOIN drivers d ON d.id = s.payer_driver_id
                 WHERE d.email IS NOT NULL AND r.issued_at >= d.email_since AND r.issued_at >= $2
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(now)
            .bind(since)
            .execute(pool)
            .await?
            .rows_affected();
            let unpaid = sqlx::query(
                "INSERT INTO mail_outbox (id, kind, session_id, driver_id, queued_at, next_attempt_at, attempts)
                 SELECT 'unpaid:' || s.id, 'charge_failed', s.id, d.id, $1, $1, 0
                 FROM sessions s
                 JOIN drivers d ON d.id = s.payer_driver_id
                 WHERE s.state = 'unpaid' AND d.email IS NOT NULL
                   AND s.exit_at >= d.email_since AND s.exit_at >= $2
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(now)
            .bind(since)
            .execute(pool)
            .await?
            .rows_affected();
            receipts + unpaid
        });
        Ok(owed)
    }

    /// Claims up to `limit` mails due at `now` for `lease`: each is this caller's until then, and
    /// due again afterwards unless recorded sent or failed, so a sender that dies mid-send loses
    /// nothing, and two senders never hold one mail at once.
    pub async fn claim_due_mail(
        &self,
        now: DateTime<Utc>,
        lease: TimeDelta,
        limit: u32,
    ) -> Result<Vec<OwedMail>, StoreError> {
        let due: Vec<String> = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT id FROM mail_outbox WHERE done_at IS NULL AND next_attempt_at <= $1
                 ORDER BY next_attempt_at, id LIMIT $2",
            )
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        let mut claimed = Vec::with_capacity(due.len());
        for id in due {
            let row: Option<OwedRow> = with_pool!(self, |pool| {
                sqlx::query_as(
                    "UPDATE mail_outbox SET next_attempt_at = $3, attempts = attempts + 1
                     WHERE id = $1 AND done_at IS NULL AND next_attempt_at <= $2
                     RETURNING id, kind, session_id, driver_id,
                               (SELECT email FROM drivers WHERE drivers.id = mail_outbox.driver_id), attempts",
                )
                .bind(&id)
                .bind(now)
                .bind(now + lease)
                .fetch_optional(pool)
                .await?
            });
            let Some((id, kind, session, driver, recipient, attempts)) = row else { continue };
            claimed.push(OwedMail {
                id,
                kind: parse_column("mail kind", MailKind::parse(&kind))?,
                session: parse_column("mail session", SessionId::parse(&session))?,
                driver: parse_column("mail driver", DriverId::parse(&driver))?,
                recipient: recipient.map(|r| parse_column("driver e-mail", EmailAddress::parse(&r))).transpose()?,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            });
        }
        Ok(claimed)
    }

    /// Records a claimed mail as done: `sent` to `recipient`, or `skipped` (`recipient` `None`)
    /// when there was nothing left to say or nobody to say it to.
    pub async fn mail_sent(
        &self,
        id: &str,
        recipient: Option<&EmailAddress>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let outcome = if recipient.is_some() { "sent" } else { "skipped" };
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE mail_outbox SET done_at = $2, outcome = $3, recipient = $4, last_error = NULL
                 WHERE id = $1 AND done_at IS NULL",
            )
            .bind(id)
            .bind(at)
            .bind(outcome)
            .bind(recipient.map(EmailAddress::as_str))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Records a failed try and when to try again, or that trying stops.
    pub async fn mail_failed(
        &self,
        id: &str,
        error: &str,
        retry: MailRetry,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            match retry {
                MailRetry::At(next) => sqlx::query(
                    "UPDATE mail_outbox SET next_attempt_at = $2, last_error = $3 WHERE id = $1 AND done_at IS NULL",
                )
                .bind(id)
                .bind(next)
                .bind(error)
                .execute(pool)
                .await?,
                MailRetry::GiveUp => {
                    sqlx::query(
                        "UPDATE mail_outbox SET done_at = $2, outcome = 'given_up', last_error = $3
                         WHERE id = $1 AND done_at IS NULL",
                    )
                    .bind(id)
                    .bind(at)
                    .bind(error)
                    .execute(pool)
                    .await?
                }
            };
        });
        Ok(())
    }

    /// The outbox, newest first: what is owed, sent, skipped or given up.
    pub async fn mail_records(&self, limit: u32) -> Result<Vec<MailRecord>, StoreError> {
        let rows: Vec<RecordRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, kind, session_id, attempts, last_error, recipient, outcome
                 FROM mail_outbox ORDER BY queued_at DESC, id LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(id, kind, session, attempts, last_error, recipient, outcome)| {
                Ok(MailRecord {
                    id,
                    kind: parse_column("mail kind", MailKind::parse(&kind))?,
                    session: parse_column("mail session", SessionId::parse(&session))?,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    last_error,
                    recipient,
                    outcome,
                })
            })
            .collect()
    }
}

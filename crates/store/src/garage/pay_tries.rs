//! Pay-by-plate without the link: the unpaid stays of an arrival hour, and the tries counted per
//! plate (by its digest) that bound how often someone may guess that hour.

use chrono::{DateTime, Utc};
use valet_garage::Plate;

use super::sessions::{SESSION_SELECT, SessionRow};
use super::{GarageStore, with_pool};
use crate::{SessionRecord, StoreError};

impl GarageStore {
    /// Open stays of unregistered cars that entered in `[from, to)`, oldest first: what a plate
    /// and an arrival hour typed at pay-by-plate are matched against. A garage holds at most a
    /// few hundred cars that entered in one hour, so the plates are compared by the caller.
    pub async fn unpaid_stays_entered_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let sql = format!(
            "{SESSION_SELECT} WHERE s.state = 'open' AND s.payer_link_token IS NOT NULL
               AND s.entry_at >= $1 AND s.entry_at < $2 ORDER BY s.entry_at, s.id"
        );
        let rows: Vec<SessionRow> =
            with_pool!(self, |pool| sqlx::query_as(&sql).bind(from).bind(to).fetch_all(pool).await?);
        rows.into_iter().map(SessionRecord::try_from).collect()
    }

    /// Counts a try for `plate` under `try_id` at `at`, forgets every try before `since`, and
    /// returns how many tries `plate` has had since then, this one included. Counting after
    /// writing means concurrent tries see each other, so no burst gets past the bound.
    pub async fn record_pay_try(
        &self,
        plate: &Plate,
        try_id: &str,
        at: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let digest = self.plate_digest(plate);
        let count: i64 = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM pay_by_plate_tries WHERE tried_at < $1").bind(since).execute(pool).await?;
            sqlx::query("INSERT INTO pay_by_plate_tries (try_id, plate_hmac, tried_at) VALUES ($1, $2, $3)")
                .bind(try_id)
                .bind(digest.as_str())
                .bind(at)
                .execute(pool)
                .await?;
            sqlx::query_scalar("SELECT COUNT(*) FROM pay_by_plate_tries WHERE plate_hmac = $1 AND tried_at >= $2")
                .bind(digest.as_str())
                .bind(since)
                .fetch_one(pool)
                .await?
        });
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// Takes back a try that proved a stay: only wrong tries count against the plate.
    pub async fn forget_pay_try(&self, try_id: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM pay_by_plate_tries WHERE try_id = $1").bind(try_id).execute(pool).await?;
        });
        Ok(())
    }
}

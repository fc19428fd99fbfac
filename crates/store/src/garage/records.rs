//! What the garage writes down for people: receipts, the review queue and the audit log.

use chrono::{DateTime, Utc};
use valet_garage::{AuditEvent, OperatorId, Receipt, ReviewItem, SessionId};

use super::{GarageStore, from_json, to_json, variant_name, with_pool};
use crate::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct ReviewItemId(pub i64);

/// A review item with its place in the queue and, once decided, who decided it and how.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReviewItem {
    pub id: ReviewItemId,
    pub item: ReviewItem,
    pub resolved: Option<(OperatorId, String, DateTime<Utc>)>,
}

#[derive(sqlx::FromRow)]
struct ReviewRow {
    id: i64,
    body: String,
    resolved_at: Option<DateTime<Utc>>,
    resolved_by: Option<String>,
    resolution: Option<String>,
}

impl TryFrom<ReviewRow> for StoredReviewItem {
    type Error = StoreError;
    fn try_from(row: ReviewRow) -> Result<StoredReviewItem, StoreError> {
        let resolved = match (row.resolved_by, row.resolution, row.resolved_at) {
            (Some(by), Some(how), Some(at)) => Some((OperatorId(by), how, at)),
            _ => None,
        };
        Ok(StoredReviewItem { id: ReviewItemId(row.id), item: from_json("review item", &row.body)?, resolved })
    }
}

impl GarageStore {
    /// Keeps the receipt issued for a paid session. A session has one receipt: writing it again
    /// (a retried billing step) keeps the first and returns `false`.
    pub async fn write_receipt(&self, receipt: &Receipt, issued_at: DateTime<Utc>) -> Result<bool, StoreError> {
        let body = to_json(receipt)?;
        let written = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO receipts (session_id, total_minor, currency, body, issued_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (session_id) DO NOTHING",
            )
            .bind(receipt.session.to_string())
            .bind(receipt.total.minor)
            .bind(receipt.total.currency.code())
            .bind(&body)
            .bind(issued_at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(written == 1)
    }

    pub async fn receipt(&self, session: SessionId) -> Result<Option<Receipt>, StoreError> {
        let body: Option<String> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT body FROM receipts WHERE session_id = $1")
                .bind(session.to_string())
                .fetch_optional(pool)
                .await?
        });
        body.map(|b| from_json("receipt", &b)).transpose()
    }

    pub async fn add_review_item(&self, item: &ReviewItem) -> Result<ReviewItemId, StoreError> {
        let body = to_json(item)?;
        let reason = variant_name(&item.reason);
        let id = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "INSERT INTO review_items (session_id, reason, body, raised_at) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(item.session.map(|s| s.to_string()))
            .bind(&reason)
            .bind(&body)
            .bind(item.at)
            .fetch_one(pool)
            .await?
        });
        Ok(ReviewItemId(id))
    }

    /// The queue an operator works through: undecided items, oldest first.
    pub async fn open_review_items(&self) -> Result<Vec<StoredReviewItem>, StoreError> {
        let rows: Vec<ReviewRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, body, resolved_at, resolved_by, resolution FROM review_items
                 WHERE resolved_at IS NULL ORDER BY raised_at, id",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(StoredReviewItem::try_from).collect()
    }

    /// Keeps the plate crop a review item was raised over (the first one given is kept).
    pub async fn attach_review_image(&self, item: ReviewItemId, jpeg: &[u8]) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("INSERT INTO review_images (item_id, jpeg) VALUES ($1, $2) ON CONFLICT (item_id) DO NOTHING")
                .bind(item.0)
                .bind(jpeg)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// The plate crop of a review item, if its camera's frame came with one.
    pub async fn review_image(&self, item: ReviewItemId) -> Result<Option<Vec<u8>>, StoreError> {
        let jpeg: Option<Vec<u8>> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT jpeg FROM review_images WHERE item_id = $1")
                .bind(item.0)
                .fetch_optional(pool)
                .await?
        });
        Ok(jpeg)
    }

    pub async fn review_item(&self, id: ReviewItemId) -> Result<Option<StoredReviewItem>, StoreError> {
        let row: Option<ReviewRow> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT id, body, resolved_at, resolved_by, resolution FROM review_items WHERE id = $1")
                .bind(id.0)
                .fetch_optional(pool)
                .await?
        });
        row.map(StoredReviewItem::try_from).transpose()
    }

    /// Marks an item decided, once: `false` when it was already decided (by this operator or
    /// another), so two operators cannot both act on it. The decision itself is audited by the
    /// caller with [`GarageStore::append_audit_event`].
    pub async fn resolve_review_item(
        &self,
        id: ReviewItemId,
        by: &OperatorId,
        resolution: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE review_items SET resolved_at = $2, resolved_by = $3, resolution = $4
                 WHERE id = $1 AND resolved_at IS NULL",
            )
            .bind(id.0)
            .bind(at)
            .bind(&by.0)
            .bind(resolution)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Appends to the audit log, which nothing here ever edits.
    pub async fn append_audit_event(&self, event: &AuditEvent) -> Result<i64, StoreError> {
        let body = to_json(&event.what)?;
        let action = variant_name(&event.what);
        let id = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "INSERT INTO audit_events (who, action, body, why, at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(&event.who.0)
            .bind(&action)
            .bind(&body)
            .bind(event.why.as_str())
            .bind(event.at)
            .fetch_one(pool)
            .await?
        });
        Ok(id)
    }

    /// Audit events at or after `since`, in the order they happened.
    pub async fn audit_events(&self, since: DateTime<Utc>) -> Result<Vec<AuditEvent>, StoreError> {
        let rows: Vec<(String, String, String, DateTime<Utc>)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT who, body, why, at FROM audit_events WHERE at >= $1 ORDER BY at, id")
                .bind(since)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .map(|(who, body, why, at)| {
                let why = valet_garage::Reason::parse(&why).map_err(|e| StoreError::Corrupt(format!("audit: {e}")))?;
                Ok(AuditEvent { who: OperatorId(who), what: from_json("audit action", &body)?, why, at })
            })
            .collect()
    }
}

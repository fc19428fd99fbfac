//! [`LotLayouts`]: each lot's layout as the operator saved it (`valet lot add`), the one copy
//! every occupancy and query replica reads, on SQLite or PostgreSQL.
//!
//! A layout is kept as its TOML text: the store does not depend on vision, and `valet-lot`
//! parses and validates it on the way in and out. Each save bumps the lot's `version`, so a
//! replica that polls [`LotLayouts::versions`] re-reads only the layouts that changed.

use chrono::{DateTime, Utc};

use super::{Pool, with_pool};
use crate::StoreError;

/// The lot layouts on one database; cheap to clone. From [`crate::Store::lot_layouts`] or
/// [`super::GarageStore::lot_layouts`].
#[derive(Debug, Clone)]
pub struct LotLayouts {
    pub(super) pool: Pool,
}

/// One lot's saved layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLayout {
    pub lot: String,
    /// The layout file's text (TOML).
    pub toml: String,
    /// 1 on the first save, one more on each later one.
    pub version: i64,
    pub saved_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct LayoutRow {
    lot_id: String,
    layout: String,
    version: i64,
    saved_at: DateTime<Utc>,
}

impl From<LayoutRow> for StoredLayout {
    fn from(row: LayoutRow) -> StoredLayout {
        StoredLayout { lot: row.lot_id, toml: row.layout, version: row.version, saved_at: row.saved_at }
    }
}

impl LotLayouts {
    pub(crate) fn on_pool(pool: Pool) -> LotLayouts {
        LotLayouts { pool }
    }

    /// Saves `lot`'s layout, replacing the one it had; returns the new version. One statement,
    /// so two operators saving at once leave one layout and two versions, never a lost row.
    pub async fn save(&self, lot: &str, toml: &str, at: DateTime<Utc>) -> Result<i64, StoreError> {
        let version = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "INSERT INTO lot_layouts (lot_id, layout, version, saved_at) VALUES ($1, $2, 1, $3)
                 ON CONFLICT (lot_id) DO UPDATE
                 SET layout = excluded.layout, version = lot_layouts.version + 1, saved_at = excluded.saved_at
                 RETURNING version",
            )
            .bind(lot)
            .bind(toml)
            .bind(at)
            .fetch_one(pool)
            .await?
        });
        Ok(version)
    }

    pub async fn get(&self, lot: &str) -> Result<Option<StoredLayout>, StoreError> {
        let row: Option<LayoutRow> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT lot_id, layout, version, saved_at FROM lot_layouts WHERE lot_id = $1")
                .bind(lot)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(StoredLayout::from))
    }

    /// Every saved layout, by lot id.
    pub async fn all(&self) -> Result<Vec<StoredLayout>, StoreError> {
        let rows: Vec<LayoutRow> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT lot_id, layout, version, saved_at FROM lot_layouts ORDER BY lot_id")
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(StoredLayout::from).collect())
    }

    /// Each lot's id and version, by lot id: what a replica polls to notice a change cheaply.
    pub async fn versions(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT lot_id, version FROM lot_layouts ORDER BY lot_id").fetch_all(pool).await?
        });
        Ok(rows)
    }

    /// Forgets `lot`'s layout (its history stays, for retention to forget); false when it had none.
    pub async fn remove(&self, lot: &str) -> Result<bool, StoreError> {
        let removed = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM lot_layouts WHERE lot_id = $1").bind(lot).execute(pool).await?.rows_affected()
        });
        Ok(removed > 0)
    }
}

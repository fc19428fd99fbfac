//! The rules an operator configures: tariffs (every version kept, one active), the allow and
//! deny lists, and permits.

use chrono::{DateTime, Utc};
use valet_garage::{Permit, PermitId, Plate, PlateLists, Tariff};

use super::{BeginWrite, GarageStore, from_json, parse_column, to_json, with_pool};
use crate::StoreError;

/// A saved tariff and its version number (1, 2, …), which priced stays may refer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTariff {
    pub version: i64,
    pub tariff: Tariff,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Allow,
    Deny,
}

impl GarageStore {
    /// Saves `tariff` as the next version and makes it the active one, in one transaction, so
    /// the gate never sees no tariff or two. The audit event is the caller's to append.
    pub async fn activate_tariff(&self, tariff: &Tariff, at: DateTime<Utc>) -> Result<i64, StoreError> {
        let spec = to_json(tariff)?;
        let version = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let version: i64 =
                sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) + 1 FROM tariffs").fetch_one(&mut *tx).await?;
            sqlx::query("UPDATE tariffs SET active = FALSE WHERE active").execute(&mut *tx).await?;
            // Two operators saving at once collide on the version's primary key; one gets an
            // error and can try again, neither overwrites the other.
            sqlx::query("INSERT INTO tariffs (version, spec, active, created_at) VALUES ($1, $2, TRUE, $3)")
                .bind(version)
                .bind(&spec)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            version
        });
        Ok(version)
    }

    /// The tariff the gate prices by now, if one was ever saved.
    pub async fn active_tariff(&self) -> Result<Option<StoredTariff>, StoreError> {
        self.tariff_where("active", None).await
    }

    /// Any saved version, active or not: a disputed stay is priced by the tariff of its day.
    pub async fn tariff_version(&self, version: i64) -> Result<Option<StoredTariff>, StoreError> {
        self.tariff_where("version = $1", Some(version)).await
    }

    async fn tariff_where(&self, condition: &str, version: Option<i64>) -> Result<Option<StoredTariff>, StoreError> {
        let sql = format!("SELECT version, spec, active, created_at FROM tariffs WHERE {condition}");
        let row: Option<(i64, String, bool, DateTime<Utc>)> = with_pool!(self, |pool| {
            let query = sqlx::query_as(&sql);
            let query = match version {
                Some(v) => query.bind(v),
                None => query,
            };
            query.fetch_optional(pool).await?
        });
        row.map(|(version, spec, active, created_at)| {
            Ok(StoredTariff { version, tariff: from_json("tariff", &spec)?, active, created_at })
        })
        .transpose()
    }

    /// Puts `plate` on the allow or deny list (moving it if it was on the other).
    pub async fn list_plate(&self, plate: &Plate, list: ListKind, at: DateTime<Utc>) -> Result<(), StoreError> {
        let list = match list {
            ListKind::Allow => "allow",
            ListKind::Deny => "deny",
        };
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO plate_list_entries (plate_display, list, changed_at) VALUES ($1, $2, $3)
                 ON CONFLICT (plate_display) DO UPDATE SET list = excluded.list, changed_at = excluded.changed_at",
            )
            .bind(plate.display())
            .bind(list)
            .bind(at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Takes `plate` off whichever list holds it; `false` if none did.
    pub async fn unlist_plate(&self, plate: &Plate) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM plate_list_entries WHERE plate_display = $1")
                .bind(plate.display())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    pub async fn plate_lists(&self) -> Result<PlateLists, StoreError> {
        let rows: Vec<(String, String)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT plate_display, list FROM plate_list_entries ORDER BY plate_display")
                .fetch_all(pool)
                .await?
        });
        let mut lists = PlateLists::default();
        for (plate, list) in rows {
            let plate = parse_column("listed plate", Plate::parse(&plate))?;
            match list.as_str() {
                "allow" => lists.allow(plate),
                "deny" => lists.deny(plate),
                other => return Err(StoreError::Corrupt(format!("unknown plate list {other:?}"))),
            }
        }
        Ok(lists)
    }

    /// Saves a permit, replacing an earlier version with the same id.
    pub async fn save_permit(&self, permit: &Permit, at: DateTime<Utc>) -> Result<(), StoreError> {
        let terms = permit.terms();
        let body = to_json(permit)?;
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO permits (id, terms, valid_from, valid_to, saved_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO UPDATE SET terms = excluded.terms, valid_from = excluded.valid_from,
                                               valid_to = excluded.valid_to, saved_at = excluded.saved_at",
            )
            .bind(terms.id.to_string())
            .bind(&body)
            .bind(terms.valid_from)
            .bind(terms.valid_to)
            .bind(at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn permit(&self, id: PermitId) -> Result<Option<Permit>, StoreError> {
        let body: Option<String> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT terms FROM permits WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
        });
        body.map(|b| from_json("permit", &b)).transpose()
    }

    /// Permits valid at `at`: the ones the entry gate checks a plate against.
    pub async fn permits_valid_at(&self, at: DateTime<Utc>) -> Result<Vec<Permit>, StoreError> {
        let bodies: Vec<String> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT terms FROM permits WHERE valid_from <= $1 AND $1 < valid_to ORDER BY id")
                .bind(at)
                .fetch_all(pool)
                .await?
        });
        bodies.iter().map(|b| from_json("permit", b)).collect()
    }
}

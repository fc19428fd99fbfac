//! [`GateCameras`]: the gate cameras Valet pulls frames from, as operators added them (`valet
//! cameras add`, `POST /v1/cameras`, the dashboard), on SQLite or PostgreSQL. Every replica that
//! runs the plate reader polls [`GateCameras::list`] and starts or stops its pulls to match.
//!
//! The store keeps the configuration as plain values: `valet-cameras` validates it on the way in
//! (the store does not depend on vision). A name is added once; a second add of the same name is
//! [`StoreError::CameraExists`], so a typo cannot silently repoint a lane's camera.

use chrono::{DateTime, Utc};
use valet_garage::Direction;

use super::{Pool, with_pool};
use crate::StoreError;

/// The gate cameras on one database; cheap to clone. From [`crate::Store::gate_cameras`] or
/// [`super::GarageStore::gate_cameras`].
#[derive(Debug, Clone)]
pub struct GateCameras {
    pool: Pool,
}

/// One pulled gate camera as it was added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCamera {
    pub name: String,
    /// May carry credentials: show it only redacted.
    pub url: String,
    pub direction: Direction,
    pub lane: Option<String>,
    pub region: Option<String>,
    /// How often a snapshot URL is polled, in milliseconds.
    pub every_ms: i64,
    pub added_at: DateTime<Utc>,
    /// The operator (or `cli`) who added it.
    pub added_by: String,
}

#[derive(sqlx::FromRow)]
struct CameraRow {
    name: String,
    url: String,
    direction: String,
    lane: Option<String>,
    region: Option<String>,
    every_ms: i64,
    added_at: DateTime<Utc>,
    added_by: String,
}

impl TryFrom<CameraRow> for StoredCamera {
    type Error = StoreError;

    fn try_from(row: CameraRow) -> Result<StoredCamera, StoreError> {
        let direction = match row.direction.as_str() {
            "entry" => Direction::Entry,
            "exit" => Direction::Exit,
            other => return Err(StoreError::Corrupt(format!("gate camera {:?} has direction {other:?}", row.name))),
        };
        Ok(StoredCamera {
            name: row.name,
            url: row.url,
            direction,
            lane: row.lane,
            region: row.region,
            every_ms: row.every_ms,
            added_at: row.added_at,
            added_by: row.added_by,
        })
    }
}

const COLUMNS: &str = "name, url, direction, lane, region, every_ms, added_at, added_by";

impl GateCameras {
    pub(crate) fn on_pool(pool: Pool) -> GateCameras {
        GateCameras { pool }
    }

    /// Adds `camera`; [`StoreError::CameraExists`] when its name is taken (one statement, so of
    /// two operators adding the same name at once one wins and the other is told).
    pub async fn add(&self, camera: &StoredCamera) -> Result<(), StoreError> {
        let direction = match camera.direction {
            Direction::Entry => "entry",
            Direction::Exit => "exit",
        };
        let inserted = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO gate_cameras (name, url, direction, lane, region, every_ms, added_at, added_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&camera.name)
            .bind(&camera.url)
            .bind(direction)
            .bind(&camera.lane)
            .bind(&camera.region)
            .bind(camera.every_ms)
            .bind(camera.added_at)
            .bind(&camera.added_by)
            .execute(pool)
            .await
            .map(drop)
        });
        match inserted {
            Ok(()) => Ok(()),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(StoreError::CameraExists(camera.name.clone()))
            }
            Err(e) => Err(StoreError::Database(e)),
        }
    }

    /// Every camera, by name. Cheap enough to poll every few seconds (a garage has a handful).
    pub async fn list(&self) -> Result<Vec<StoredCamera>, StoreError> {
        let rows: Vec<CameraRow> = with_pool!(self, |pool| {
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM gate_cameras ORDER BY name")).fetch_all(pool).await?
        });
        rows.into_iter().map(StoredCamera::try_from).collect()
    }

    pub async fn get(&self, name: &str) -> Result<Option<StoredCamera>, StoreError> {
        let row: Option<CameraRow> = with_pool!(self, |pool| {
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM gate_cameras WHERE name = $1"))
                .bind(name)
                .fetch_optional(pool)
                .await?
        });
        row.map(StoredCamera::try_from).transpose()
    }

    /// Forgets `name`'s camera; false when there was none.
    pub async fn remove(&self, name: &str) -> Result<bool, StoreError> {
        let removed = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM gate_cameras WHERE name = $1").bind(name).execute(pool).await?.rows_affected()
        });
        Ok(removed > 0)
    }
}

//! [`OccupancyCalibration`]: what teaches the occupancy model each camera, on SQLite or
//! PostgreSQL: the operator's labels ([`NewLabel`], [`StoredLabel`]: one bay on one frame, free
//! or occupied, with the bay's crop) and the adapters fitted from them ([`NewAdapter`],
//! [`StoredAdapter`]), versioned per (lot, camera), at most one active.
//!
//! Plain strings and bytes, not `valet-lot`'s types: the store does not depend on vision. An
//! adapter's parameters are kept as the JSON the occupancy function wrote; the store never
//! parses them. Every occupancy replica polls [`OccupancyCalibration::active_versions`] and
//! loads an adapter only when its camera's active version changed.

use chrono::{DateTime, Utc};

use super::{BeginWrite, Pool, with_pool};
use crate::StoreError;

/// The calibration on one database; cheap to clone. From [`crate::Store::occupancy_calibration`]
/// or [`super::GarageStore::occupancy_calibration`].
#[derive(Debug, Clone)]
pub struct OccupancyCalibration {
    pub(super) pool: Pool,
}

/// An operator's word on one bay of one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLabel {
    pub lot: String,
    pub camera: String,
    pub space: String,
    /// The labelled frame's key: its time or its file's stem.
    pub frame: String,
    /// The frame's size, so a label is never applied to a frame of another size.
    pub frame_width: u32,
    pub frame_height: u32,
    pub occupied: bool,
    /// The bay's warped patch as PNG: what an adapter is fitted on.
    pub crop_png: Vec<u8>,
    pub labelled_at: DateTime<Utc>,
    /// The operator's name, or `cli`.
    pub labelled_by: String,
}

/// A label as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLabel {
    pub id: i64,
    pub label: NewLabel,
}

/// One camera's labels in a lot, counted: what the dashboard shows beside its accuracy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraLabels {
    pub camera: String,
    pub free: u64,
    pub occupied: u64,
    /// Distinct frames labelled.
    pub frames: u64,
}

/// A fitted adapter, kept or refused.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAdapter {
    pub lot: String,
    pub camera: String,
    pub fitted_at: DateTime<Utc>,
    pub fitted_by: String,
    /// How many labels it was fitted on.
    pub labels: u32,
    /// Leave-one-frame-out accuracy of the universal model, and of the adapter, on those labels.
    pub universal_accuracy: f64,
    pub adapted_accuracy: f64,
    pub fit_ms: f64,
    /// The adapter, serialized by the occupancy function.
    pub params: String,
    /// Whether it replaces the camera's active adapter now.
    pub active: bool,
    /// Why it was refused, or anything else a person should read.
    pub note: Option<String>,
}

/// An adapter as the store keeps it: its version is 1 for a camera's first fit, one more for each later.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAdapter {
    pub version: i64,
    pub adapter: NewAdapter,
}

/// The adapter a camera uses now: what a replica compares with the one it has loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveAdapter {
    pub lot: String,
    pub camera: String,
    pub version: i64,
}

#[derive(sqlx::FromRow)]
struct LabelRow {
    id: i64,
    lot_id: String,
    camera: String,
    space: String,
    frame: String,
    frame_width: i64,
    frame_height: i64,
    occupied: bool,
    crop: Vec<u8>,
    labelled_at: DateTime<Utc>,
    labelled_by: String,
}

#[derive(sqlx::FromRow)]
struct AdapterRow {
    lot_id: String,
    camera: String,
    version: i64,
    fitted_at: DateTime<Utc>,
    fitted_by: String,
    labels: i64,
    universal_accuracy: f64,
    adapted_accuracy: f64,
    fit_ms: f64,
    params: String,
    active: bool,
    note: Option<String>,
}

const ADAPTER_COLUMNS: &str = "lot_id, camera, version, fitted_at, fitted_by, labels, universal_accuracy, \
                               adapted_accuracy, fit_ms, params, active, note";

/// How often a save that raced another replica's is tried again. Each lost race means the other
/// committed, so a handful is plenty for the few replicas that fit one camera.
const SAVE_TRIES: u32 = 8;

impl OccupancyCalibration {
    pub(crate) fn on_pool(pool: Pool) -> OccupancyCalibration {
        OccupancyCalibration { pool }
    }

    /// Adds `labels`, all or none; returns their ids in order. A bay already labelled on that
    /// frame (in the store or earlier in the batch) is [`StoreError::LabelExists`], and nothing
    /// of the batch is written.
    pub async fn add_labels(&self, labels: &[NewLabel]) -> Result<Vec<i64>, StoreError> {
        let ids = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let mut ids = Vec::with_capacity(labels.len());
            for label in labels {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO occupancy_labels (lot_id, camera, space, frame, frame_width, frame_height, occupied,
                                                   crop, labelled_at, labelled_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                )
                .bind(&label.lot)
                .bind(&label.camera)
                .bind(&label.space)
                .bind(&label.frame)
                .bind(i64::from(label.frame_width))
                .bind(i64::from(label.frame_height))
                .bind(label.occupied)
                .bind(&label.crop_png)
                .bind(label.labelled_at)
                .bind(&label.labelled_by)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| match e {
                    // Dropping the transaction rolls the batch back.
                    sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::LabelExists {
                        camera: label.camera.clone(),
                        space: label.space.clone(),
                        frame: label.frame.clone(),
                    },
                    other => StoreError::Database(other),
                })?;
                ids.push(id);
            }
            tx.commit().await?;
            ids
        });
        Ok(ids)
    }

    /// The camera's labels, by frame then bay.
    pub async fn labels(&self, lot: &str, camera: &str) -> Result<Vec<StoredLabel>, StoreError> {
        let rows: Vec<LabelRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, lot_id, camera, space, frame, frame_width, frame_height, occupied, crop, labelled_at,
                        labelled_by
                 FROM occupancy_labels WHERE lot_id = $1 AND camera = $2 ORDER BY frame, space",
            )
            .bind(lot)
            .bind(camera)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(stored_label).collect()
    }

    /// Each camera of `lot` that has labels, by camera: how many say free, occupied, and on how many frames.
    pub async fn label_counts(&self, lot: &str) -> Result<Vec<CameraLabels>, StoreError> {
        let rows: Vec<(String, i64, i64, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT camera, SUM(CASE WHEN occupied THEN 0 ELSE 1 END), SUM(CASE WHEN occupied THEN 1 ELSE 0 END),
                        COUNT(DISTINCT frame)
                 FROM occupancy_labels WHERE lot_id = $1 GROUP BY camera ORDER BY camera",
            )
            .bind(lot)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(camera, free, occupied, frames)| {
                Ok(CameraLabels {
                    free: count(&camera, "free", free)?,
                    occupied: count(&camera, "occupied", occupied)?,
                    frames: count(&camera, "frame", frames)?,
                    camera,
                })
            })
            .collect()
    }

    /// Forgets labels made before `before` (retention), crops included; returns how many. The
    /// adapters fitted from them stay: they hold no picture.
    pub async fn forget_labels_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let forgotten = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM occupancy_labels WHERE labelled_at < $1")
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(forgotten)
    }

    /// Removes one label (a wrong click); false when there was none with that id.
    pub async fn remove_label(&self, id: i64) -> Result<bool, StoreError> {
        let removed = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM occupancy_labels WHERE id = $1").bind(id).execute(pool).await?.rows_affected()
        });
        Ok(removed > 0)
    }

    /// Saves a fit as the camera's next version and returns it; an `active` one replaces the
    /// camera's active adapter in the same transaction, so a replica never sees two or a gap.
    /// Two replicas saving at once collide on the version (or on the one active adapter); the
    /// loser tries again with the next version, so both fits are kept.
    pub async fn save_adapter(&self, adapter: &NewAdapter) -> Result<i64, StoreError> {
        let mut tries = 1;
        loop {
            match self.try_save_adapter(adapter).await {
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() && tries < SAVE_TRIES => tries += 1,
                saved => return Ok(saved?),
            }
        }
    }

    async fn try_save_adapter(&self, a: &NewAdapter) -> Result<i64, sqlx::Error> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            // Writing first: on SQLite the transaction then holds the write lock before it reads
            // the highest version, so two savers queue instead of failing on a stale snapshot.
            if a.active {
                sqlx::query(
                    "UPDATE occupancy_adapters SET active = FALSE WHERE lot_id = $1 AND camera = $2 AND active",
                )
                .bind(&a.lot)
                .bind(&a.camera)
                .execute(&mut *tx)
                .await?;
            }
            let version: i64 = sqlx::query_scalar(
                "INSERT INTO occupancy_adapters (lot_id, camera, version, fitted_at, fitted_by, labels, universal_accuracy,
                                                 adapted_accuracy, fit_ms, params, active, note)
                 SELECT $1, $2, COALESCE(MAX(version), 0) + 1, $3, $4, $5, $6, $7, $8, $9, $10, $11
                 FROM occupancy_adapters WHERE lot_id = $1 AND camera = $2
                 RETURNING version",
            )
            .bind(&a.lot)
            .bind(&a.camera)
            .bind(a.fitted_at)
            .bind(&a.fitted_by)
            .bind(i64::from(a.labels))
            .bind(a.universal_accuracy)
            .bind(a.adapted_accuracy)
            .bind(a.fit_ms)
            .bind(&a.params)
            .bind(a.active)
            .bind(&a.note)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(version)
        })
    }

    /// The adapter the camera uses now; `None`: the universal model.
    pub async fn active_adapter(&self, lot: &str, camera: &str) -> Result<Option<StoredAdapter>, StoreError> {
        let sql =
            format!("SELECT {ADAPTER_COLUMNS} FROM occupancy_adapters WHERE lot_id = $1 AND camera = $2 AND active");
        let row: Option<AdapterRow> =
            with_pool!(self, |pool| sqlx::query_as(&sql).bind(lot).bind(camera).fetch_optional(pool).await?);
        row.map(stored_adapter).transpose()
    }

    /// Every fit of the camera, newest first, refused ones included.
    pub async fn adapters(&self, lot: &str, camera: &str) -> Result<Vec<StoredAdapter>, StoreError> {
        let sql = format!(
            "SELECT {ADAPTER_COLUMNS} FROM occupancy_adapters WHERE lot_id = $1 AND camera = $2 ORDER BY version DESC"
        );
        let rows: Vec<AdapterRow> =
            with_pool!(self, |pool| sqlx::query_as(&sql).bind(lot).bind(camera).fetch_all(pool).await?);
        rows.into_iter().map(stored_adapter).collect()
    }

    /// Makes `version` the camera's active adapter, or with `None` goes back to the universal
    /// model (rollback). A version the camera never had is [`StoreError::UnknownAdapter`] and
    /// changes nothing. Racing another activation or save, it tries again like [`Self::save_adapter`].
    pub async fn activate(&self, lot: &str, camera: &str, version: Option<i64>) -> Result<(), StoreError> {
        let mut tries = 1;
        loop {
            match self.try_activate(lot, camera, version).await {
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() && tries < SAVE_TRIES => tries += 1,
                done => return done?,
            }
        }
    }

    /// The outer error is the database's (a lost race is tried again); the inner one refuses a
    /// version the camera never had, having changed nothing.
    async fn try_activate(
        &self,
        lot: &str,
        camera: &str,
        version: Option<i64>,
    ) -> Result<Result<(), StoreError>, sqlx::Error> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("UPDATE occupancy_adapters SET active = FALSE WHERE lot_id = $1 AND camera = $2 AND active")
                .bind(lot)
                .bind(camera)
                .execute(&mut *tx)
                .await?;
            if let Some(version) = version {
                let found = sqlx::query(
                    "UPDATE occupancy_adapters SET active = TRUE WHERE lot_id = $1 AND camera = $2 AND version = $3",
                )
                .bind(lot)
                .bind(camera)
                .bind(version)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if found == 0 {
                    // Dropping the transaction keeps the active adapter as it was.
                    let (lot, camera) = (lot.to_owned(), camera.to_owned());
                    return Ok(Err(StoreError::UnknownAdapter { lot, camera, version }));
                }
            }
            tx.commit().await?;
            Ok(Ok(()))
        })
    }

    /// Every camera's active adapter version, by lot and camera: the cheap query each occupancy
    /// replica polls to swap adapters without a restart. A camera missing here uses the universal model.
    pub async fn active_versions(&self) -> Result<Vec<ActiveAdapter>, StoreError> {
        let rows: Vec<(String, String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT lot_id, camera, version FROM occupancy_adapters WHERE active ORDER BY lot_id, camera",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(|(lot, camera, version)| ActiveAdapter { lot, camera, version }).collect())
    }
}

fn count(camera: &str, what: &str, n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("camera {camera} has {n} {what} labels")))
}

fn dimension(id: i64, n: i64) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("occupancy label {id} has frame size {n}")))
}

fn stored_label(row: LabelRow) -> Result<StoredLabel, StoreError> {
    Ok(StoredLabel {
        id: row.id,
        label: NewLabel {
            frame_width: dimension(row.id, row.frame_width)?,
            frame_height: dimension(row.id, row.frame_height)?,
            lot: row.lot_id,
            camera: row.camera,
            space: row.space,
            frame: row.frame,
            occupied: row.occupied,
            crop_png: row.crop,
            labelled_at: row.labelled_at,
            labelled_by: row.labelled_by,
        },
    })
}

fn stored_adapter(row: AdapterRow) -> Result<StoredAdapter, StoreError> {
    let labels = u32::try_from(row.labels).map_err(|_| {
        StoreError::Corrupt(format!("adapter {} of camera {} counts {} labels", row.version, row.camera, row.labels))
    })?;
    Ok(StoredAdapter {
        version: row.version,
        adapter: NewAdapter {
            lot: row.lot_id,
            camera: row.camera,
            fitted_at: row.fitted_at,
            fitted_by: row.fitted_by,
            labels,
            universal_accuracy: row.universal_accuracy,
            adapted_accuracy: row.adapted_accuracy,
            fit_ms: row.fit_ms,
            params: row.params,
            active: row.active,
            note: row.note,
        },
    })
}

//! The garage's database: [`Store`], on the embedded SQLite file or on PostgreSQL, holding
//! [`Device`]s (with hashed [`ApiKey`]s) and a [`ClassificationRecord`] for every classification
//! request; and [`GarageStore`], on the same database, holding drivers, sessions, charges,
//! receipts, review items, audit events, plate lists, permits and tariffs, with plates at rest
//! only as [`PlateKey`] digests.
//! [`LotHistory`] (from either) keeps the bay cameras' frames and space state changes, and
//! [`LotLayouts`] the lots' layouts every replica reads, [`OccupancyCalibration`] each bay
//! camera's labels and fitted adapters, and [`GateCameras`] the gate cameras Valet pulls.
//!
//! Architecture invariants: the schema changes only through migrations (`migrations/` for SQLite,
//! `migrations-postgres/` for PostgreSQL); an API key's plain text exists only in the value
//! returned by [`Store::add_device`]; a plate is stored as an HMAC of its matching key, its
//! spelling only where a person reads it; times are passed in, never read here.

mod devices;
mod garage;
mod plate_key;
#[cfg(feature = "scratch")]
pub mod scratch;

use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use devices::{ApiKey, Device, DeviceId, DeviceName, InvalidDeviceName, Role};
pub use garage::{ActiveAdapter, CameraLabels, NewAdapter, NewLabel, OccupancyCalibration, StoredAdapter, StoredLabel};
pub use garage::{
    Backend, ChargeRecord, CloseOutcome, DEFAULT_RETENTION_DAYS, DriverToken, EventClaim, GarageStore, Lane, ListKind,
    RefundRecord, ReviewItemId, SessionFilter, SessionRecord, StoredReviewItem, StoredTariff,
};
pub use garage::{GateCameras, PlateLock, StoredCamera};
pub use garage::{
    LotFrameRecord, LotHistory, LotLayouts, RecordedFrame, SpaceChangeRecord, SpaceStateRecord, StoredLayout,
};
pub use garage::{MailKind, MailRecord, MailRetry, OwedMail};
pub use plate_key::{MIN_PLATE_KEY_BYTES, PlateDigest, PlateKey, PlateKeyTooShort};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a device named {0:?} already exists")]
    DuplicateDevice(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("plate {0} is already on a driver's account")]
    PlateTaken(String),
    #[error("session {0} is still open; close it with its exit event before saving it as closed")]
    StillOpen(valet_garage::SessionId),
    #[error("charge {0} was already recorded for another session, driver or amount")]
    ChargeKeyReused(valet_garage::IdempotencyKey),
    #[error("no charge {0} was recorded")]
    UnknownCharge(valet_garage::IdempotencyKey),
    #[error(
        "bay {space} of camera {camera} was already labelled on frame {frame}; remove that label to label the bay again"
    )]
    LabelExists { camera: String, space: String, frame: String },
    #[error("camera {camera} of lot {lot} has no adapter version {version}; its adapter history lists the versions")]
    UnknownAdapter { lot: String, camera: String, version: i64 },
    #[error("a gate camera named {0:?} already exists; remove it first to change it, or pick another name")]
    CameraExists(String),
    #[error(transparent)]
    Charge(#[from] valet_garage::ChargeConflict),
    /// A stored row the domain refuses: written by something other than this crate, or a bug.
    #[error("corrupt garage record: {0}")]
    Corrupt(String),
}

/// How long a request waits for a database connection before it is told the database is
/// unavailable: long enough for a busy pool, short enough that an outage is answered at once
/// (503) instead of every request hanging for sqlx's default 30 s.
pub const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

impl StoreError {
    /// Whether the database could not be reached (down, restarting, unreachable, or every
    /// connection busy past [`ACQUIRE_TIMEOUT`]): worth retrying shortly, unlike an answer it gave.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::WorkerCrashed
            )
        )
    }
}

/// The one handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: garage::Pool,
}

/// The most page cache one SQLite connection keeps, in KiB.
const PAGE_CACHE_KIB: u32 = 1024;

/// File name of the embedded database inside the data directory.
pub const DATABASE_FILE: &str = "valet.sqlite3";

impl Store {
    /// Opens (creating if needed) `valet.sqlite3` in `data_dir` and brings its schema up to date.
    pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join(DATABASE_FILE))
            .create_if_missing(true)
            // WAL lets the dashboard read while a camera's record is written.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5))
            // Each of the 8 connections keeps at most 1 MiB of pages (SQLite's default is 2 MiB),
            // so the pool's caches stop at 8 MiB however large the database grows; the operating
            // system's file cache holds the rest, outside the process.
            .pragma("cache_size", format!("-{}", PAGE_CACHE_KIB));
        Self::connect(options, 8).await
    }

    /// A private database that lives as long as the store (tests, one-shot commands).
    pub async fn open_in_memory() -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        // One connection: every connection to `:memory:` would be a different database.
        Self::connect(options, 1).await
    }

    async fn connect(options: SqliteConnectOptions, max: u32) -> Result<Store, StoreError> {
        let pool = SqlitePoolOptions::new().max_connections(max).connect_with(options).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Store { pool: garage::Pool::Sqlite(pool) })
    }

    /// Connects to PostgreSQL at `url` (options such as `?options=-csearch_path%3Dname` included)
    /// and brings its schema up to date: the distributed garage, where no function keeps state on
    /// local disk.
    pub async fn connect_postgres(url: &str) -> Result<Store, StoreError> {
        let options = sqlx::postgres::PgConnectOptions::from_str(url)?;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations-postgres").run(&pool).await?;
        Ok(Store { pool: garage::Pool::Postgres(pool) })
    }

    /// The garage's records on the same database, under `plate_key`.
    pub fn garage(&self, plate_key: PlateKey) -> GarageStore {
        GarageStore::on_pool(self.pool.clone(), plate_key)
    }

    /// The bay cameras' history (lot frames and space changes) on the same database.
    pub fn lot_history(&self) -> LotHistory {
        LotHistory::on_pool(self.pool.clone())
    }

    /// The lots' layouts on the same database.
    pub fn lot_layouts(&self) -> LotLayouts {
        LotLayouts::on_pool(self.pool.clone())
    }

    /// The cameras' occupancy labels and adapters on the same database.
    pub fn occupancy_calibration(&self) -> OccupancyCalibration {
        OccupancyCalibration::on_pool(self.pool.clone())
    }

    /// The pulled gate cameras on the same database.
    pub fn gate_cameras(&self) -> GateCameras {
        GateCameras::on_pool(self.pool.clone())
    }

    /// Readiness: the database answers a query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        garage::with_pool!(self, |pool| sqlx::query("SELECT 1").execute(pool).await.map(drop))?;
        Ok(())
    }

    pub async fn record_classification(&self, record: &ClassificationRecord) -> Result<i64, StoreError> {
        let id = garage::with_pool!(self, |pool| {
            sqlx::query_scalar(
                "INSERT INTO classifications (device_id, received_at, bytes, width, height, label, p_occupied,
                                              outcome, receive_ms, decode_ms, model_ms, total_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
            )
            .bind(record.device.0)
            .bind(record.received_at)
            .bind(record.bytes as i64)
            .bind(record.width.map(i64::from))
            .bind(record.height.map(i64::from))
            .bind(&record.label)
            .bind(record.p_occupied)
            .bind(&record.outcome)
            .bind(record.receive_ms)
            .bind(record.decode_ms)
            .bind(record.model_ms)
            .bind(record.total_ms)
            .fetch_one(pool)
            .await?
        });
        Ok(id)
    }

    /// The most recent records first.
    pub async fn recent_classifications(&self, limit: u32) -> Result<Vec<ClassificationRecord>, StoreError> {
        let rows: Vec<ClassificationRow> = garage::with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT device_id, received_at, bytes, width, height, label, p_occupied, outcome,
                        receive_ms, decode_ms, model_ms, total_ms
                 FROM classifications ORDER BY id DESC LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(ClassificationRecord::from).collect())
    }
}

/// What the garage keeps about one classification request.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClassificationRecord {
    pub device: DeviceId,
    pub received_at: DateTime<Utc>,
    pub bytes: u64,
    /// Source dimensions; `None` when the image was refused before its header was read.
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub label: Option<String>,
    pub p_occupied: Option<f64>,
    /// `ok`, or the error code the device was answered with.
    pub outcome: String,
    pub receive_ms: f64,
    pub decode_ms: Option<f64>,
    pub model_ms: Option<f64>,
    pub total_ms: f64,
}

#[derive(sqlx::FromRow)]
struct ClassificationRow {
    device_id: i64,
    received_at: DateTime<Utc>,
    bytes: i64,
    width: Option<i64>,
    height: Option<i64>,
    label: Option<String>,
    p_occupied: Option<f64>,
    outcome: String,
    receive_ms: f64,
    decode_ms: Option<f64>,
    model_ms: Option<f64>,
    total_ms: f64,
}

impl From<ClassificationRow> for ClassificationRecord {
    fn from(row: ClassificationRow) -> Self {
        ClassificationRecord {
            device: DeviceId(row.device_id),
            received_at: row.received_at,
            bytes: row.bytes as u64,
            width: row.width.map(|w| w as u32),
            height: row.height.map(|h| h as u32),
            label: row.label,
            p_occupied: row.p_occupied,
            outcome: row.outcome,
            receive_ms: row.receive_ms,
            decode_ms: row.decode_ms,
            model_ms: row.model_ms,
            total_ms: row.total_ms,
        }
    }
}

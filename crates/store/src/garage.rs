//! [`GarageStore`]: the garage's records (drivers, sessions, charges, receipts, review items, audit
//! events, plate lists, permits, tariffs) on SQLite or PostgreSQL.
//!
//! One type over an enum of pools rather than a trait with two implementations: every query is
//! written once, with `$1`-style parameters both drivers accept, and [`with_pool!`] runs the same
//! text on whichever pool this store holds, type-checked against each database. Callers get a
//! plain cloneable value, not a generic or a `dyn`. The two backends' migrations keep the same
//! tables and columns (`migrations/0002_garage.sql`, `migrations-postgres/0001_garage.sql`).
//!
//! Concurrency: several gate and billing workers may share one PostgreSQL database, so every
//! state change that must happen once is a single conditional statement (`UPDATE … WHERE state =
//! 'open'`, `INSERT … ON CONFLICT DO NOTHING`), which PostgreSQL serialises on the row.

mod access;
mod calibration;
mod cameras;
mod charges;
mod drivers;
mod inbox;
mod lanes;
mod layouts;
mod lots;
mod mail;
mod pay_tries;
mod plate_lock;
mod records;
mod rules;
mod sessions;

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, SqlitePool};
use valet_garage::Plate;

use crate::StoreError;
use crate::plate_key::{PlateDigest, PlateKey};

pub use access::{DriverToken, RefundRecord, SessionFilter};
pub use calibration::{
    ActiveAdapter, CameraLabels, NewAdapter, NewLabel, OccupancyCalibration, StoredAdapter, StoredLabel,
};
pub use cameras::{GateCameras, StoredCamera};
pub use charges::ChargeRecord;
pub use inbox::EventClaim;
pub use lanes::Lane;
pub use layouts::{LotLayouts, StoredLayout};
pub use lots::{LotFrameRecord, LotHistory, RecordedFrame, SpaceChangeRecord, SpaceStateRecord};
pub use mail::{MailKind, MailRecord, MailRetry, OwedMail};
pub use plate_lock::PlateLock;
pub use records::{ReviewItemId, StoredReviewItem};
pub use rules::{ListKind, StoredTariff};
pub use sessions::{CloseOutcome, DEFAULT_RETENTION_DAYS, SessionRecord};

#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Starts a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`: a deferred transaction
/// that reads first and then writes must upgrade its lock, and SQLite answers an upgrade that
/// meets another writer with `SQLITE_BUSY` at once, without waiting out the busy timeout (an
/// operator's tariff change failed that way beside the demo's traffic). Taking the write lock at
/// the start waits its turn instead. PostgreSQL's plain `BEGIN` has no such upgrade.
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;
    fn begin_write(&self) -> impl Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>> + Send;
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error>> + Send {
        self.begin_with("BEGIN IMMEDIATE")
    }
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error>> + Send {
        self.begin()
    }
}

/// Runs `$body` with `$pool` bound to this store's pool, whichever database it is.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            crate::garage::Pool::Sqlite($pool) => $body,
            crate::garage::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// The garage's records on one database; cheap to clone.
#[derive(Debug, Clone)]
pub struct GarageStore {
    pool: Pool,
    plate_key: PlateKey,
}

/// Which database a [`GarageStore`] is on, for logs and readiness answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl GarageStore {
    /// The garage on the store's database, sharing it (and its migrations) with the device
    /// records: see [`crate::Store::garage`].
    pub(crate) fn on_pool(pool: Pool, plate_key: PlateKey) -> GarageStore {
        GarageStore { pool, plate_key }
    }

    /// Connects to PostgreSQL at `url` (`postgres://user@host:port/db`, options such as
    /// `?options=-csearch_path%3Dname` included) and brings the garage schema up to date.
    pub async fn connect_postgres(url: &str, plate_key: PlateKey) -> Result<GarageStore, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        Self::connect_postgres_with(options, 16, plate_key).await
    }

    pub async fn connect_postgres_with(
        options: PgConnectOptions,
        max_connections: u32,
        plate_key: PlateKey,
    ) -> Result<GarageStore, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(crate::ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations-postgres").run(&pool).await?;
        Ok(GarageStore { pool: Pool::Postgres(pool), plate_key })
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The digest a plate is stored and looked up by in this garage.
    pub fn plate_digest(&self, plate: &Plate) -> PlateDigest {
        self.plate_key.digest_plate(plate)
    }

    /// The bay cameras' history (lot frames and space changes) on this store's database.
    pub fn lot_history(&self) -> LotHistory {
        LotHistory { pool: self.pool.clone() }
    }

    /// The lots' layouts on this store's database.
    pub fn lot_layouts(&self) -> LotLayouts {
        LotLayouts::on_pool(self.pool.clone())
    }

    /// The cameras' occupancy labels and adapters on this store's database.
    pub fn occupancy_calibration(&self) -> OccupancyCalibration {
        OccupancyCalibration::on_pool(self.pool.clone())
    }

    /// The pulled gate cameras on this store's database.
    pub fn gate_cameras(&self) -> GateCameras {
        GateCameras::on_pool(self.pool.clone())
    }

    /// Readiness: the database answers a query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, |pool| sqlx::query("SELECT 1").execute(pool).await.map(drop))?;
        Ok(())
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await);
    }
}

/// Reads a JSON column back into a domain value; a row that does not parse is corrupt.
fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot write JSON: {e}")))
}

/// Parses a stored id or other domain text; failure means the row is corrupt.
fn parse_column<T, E: std::fmt::Display>(what: &str, parsed: Result<T, E>) -> Result<T, StoreError> {
    parsed.map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// The serde name of an enum value's variant (`denied_plate`, `refund`), for a column people filter on.
fn variant_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(map)) => map.keys().next().cloned().unwrap_or_default(),
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

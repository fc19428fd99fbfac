//! Throwaway garages for tests and benchmarks of any crate (feature `scratch`): a SQLite file in a
//! temporary directory, or a PostgreSQL schema of its own. Each is removed when the
//! [`ScratchGarage`] is dropped, even after a panic.
//!
//! PostgreSQL is found at `VALET_TEST_POSTGRES_URL`, else [`DEFAULT_POSTGRES_URL`]; when none
//! answers, [`ScratchGarage::postgres`] says why, so callers can skip with that reason.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, Executor, PgConnection, PgPool, SqlitePool};

use crate::{DATABASE_FILE, GarageStore, PlateKey, Store};

/// Where scratch PostgreSQL schemas are made unless `VALET_TEST_POSTGRES_URL` says otherwise.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A garage on a database of its own, and a side door to its raw rows.
#[derive(Debug)]
pub struct ScratchGarage {
    pub store: GarageStore,
    /// A pool past the store's API, for tests that inspect what is really written.
    pub raw: RawPool,
    _cleanup: Cleanup,
}

#[derive(Debug)]
pub enum RawPool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[derive(Debug)]
enum Cleanup {
    /// Held only so the database file outlives the garage.
    Sqlite { _dir: tempfile::TempDir },
    /// The schema to drop, and how to reach the server.
    Postgres { url: String, schema: String },
}

impl ScratchGarage {
    /// A garage in a fresh SQLite file (the embedded default's layout).
    pub async fn sqlite(key: PlateKey) -> Result<ScratchGarage, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?;
        let store = Store::open(dir.path()).await.map_err(|e| e.to_string())?.garage(key);
        let raw = SqlitePool::connect_with(SqliteConnectOptions::new().filename(dir.path().join(DATABASE_FILE)))
            .await
            .map_err(|e| e.to_string())?;
        Ok(ScratchGarage { store, raw: RawPool::Sqlite(raw), _cleanup: Cleanup::Sqlite { _dir: dir } })
    }

    /// A garage in a schema named `<prefix>_<random>`, or why there is none (no server answered
    /// within 5 s, or it refused us).
    pub async fn postgres(key: PlateKey, prefix: &str) -> Result<ScratchGarage, String> {
        let url = std::env::var("VALET_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let base = PgConnectOptions::from_str(&url).map_err(|e| format!("bad URL {url}: {e}"))?;
        let mut admin = match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(&base)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(format!("PostgreSQL at {url} is unreachable ({e}); set VALET_TEST_POSTGRES_URL")),
            Err(_) => return Err(format!("PostgreSQL at {url} did not answer in 5 s; set VALET_TEST_POSTGRES_URL")),
        };
        let schema = format!("{prefix}_{}", hex::encode(rand::random::<[u8; 8]>()));
        admin.execute(format!("CREATE SCHEMA {schema}").as_str()).await.map_err(|e| e.to_string())?;
        admin.close().await.map_err(|e| e.to_string())?;
        // Dropping the schema from here on, whatever fails next.
        let cleanup = Cleanup::Postgres { url, schema: schema.clone() };
        let options = base.options([("search_path", schema.as_str())]);
        let store = GarageStore::connect_postgres_with(options.clone(), 8, key).await.map_err(|e| e.to_string())?;
        let raw = PgPoolOptions::new().max_connections(1).connect_with(options).await.map_err(|e| e.to_string())?;
        Ok(ScratchGarage { store, raw: RawPool::Postgres(raw), _cleanup: cleanup })
    }
}

impl ScratchGarage {
    /// The URL another process (a `valet serve` under test) reaches this garage with: the
    /// server's URL with the schema as its search path. `None` on SQLite.
    pub fn postgres_url(&self) -> Option<String> {
        let Cleanup::Postgres { url, schema } = &self._cleanup else { return None };
        let separator = if url.contains('?') { '&' } else { '?' };
        Some(format!("{url}{separator}options=-csearch_path%3D{schema}"))
    }
}

impl Drop for Cleanup {
    /// Drops the schema on a thread of its own: a `Drop` cannot await, and the caller's runtime
    /// may be shutting down.
    fn drop(&mut self) {
        let Cleanup::Postgres { url, schema } = self else { return };
        let (url, schema) = (url.clone(), schema.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime
                .block_on(async {
                    let mut admin = PgConnection::connect(&url).await?;
                    admin.execute(format!("DROP SCHEMA {schema} CASCADE").as_str()).await?;
                    admin.close().await
                })
                .map_err(std::io::Error::other)
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop scratch schema: {dropped:?}");
        }
    }
}

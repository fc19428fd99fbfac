//! One conformance suite for [`GarageStore`], run against SQLite (a temporary file) and
//! PostgreSQL (a fresh schema per test; skipped with a printed reason when unreachable).
//!
//! Each body in `sessions.rs`, `charges.rs` and `records.rs` takes a [`TestGarage`]; the
//! [`conformance!`] macro turns it into `<body>::on_sqlite` and `<body>::on_postgres`.

mod charges;
mod records;
mod sessions;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rand::RngCore;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection, SqlitePool};
use valet_garage::{Driver, DriverId, LinkToken, ParkingSession, Payer, PaymentMethodToken, Plate, SessionId, Tariff};
use valet_store::{GarageStore, PlateKey, Store};

/// Where the Postgres tests look unless `VALET_TEST_POSTGRES_URL` says otherwise.
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A garage on a database of its own, and a side door to the raw rows.
pub struct TestGarage {
    pub store: GarageStore,
    raw: Raw,
    _cleanup: Cleanup,
}

enum Raw {
    Sqlite(SqlitePool),
    Postgres(sqlx::PgPool),
}

enum Cleanup {
    /// Held only so the database file outlives the test.
    Sqlite { _dir: tempfile::TempDir },
    /// The schema to drop, and how to reach the server.
    Postgres { url: String, schema: String },
}

impl TestGarage {
    pub async fn sqlite() -> TestGarage {
        let dir = tempfile::tempdir().unwrap();
        let devices = Store::open(dir.path()).await.unwrap();
        let store = devices.garage(plate_key());
        let raw = SqlitePool::connect_with(
            sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join(valet_store::DATABASE_FILE)),
        )
        .await
        .unwrap();
        TestGarage { store, raw: Raw::Sqlite(raw), _cleanup: Cleanup::Sqlite { _dir: dir } }
    }

    /// A garage in a schema made for this test alone, or `None` (after saying why) when no
    /// PostgreSQL answers.
    pub async fn postgres() -> Option<TestGarage> {
        let url = std::env::var("VALET_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let base = PgConnectOptions::from_str(&url).unwrap();
        let mut admin = match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(&base)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                eprintln!("skipping: PostgreSQL at {url} is unreachable ({e}); set VALET_TEST_POSTGRES_URL");
                return None;
            }
            Err(_) => {
                eprintln!("skipping: PostgreSQL at {url} did not answer in 5 s; set VALET_TEST_POSTGRES_URL");
                return None;
            }
        };
        let mut suffix = [0u8; 8];
        rand::rng().fill_bytes(&mut suffix);
        let schema = format!("valet_test_{}", hex::encode(suffix));
        admin.execute(format!("CREATE SCHEMA {schema}").as_str()).await.unwrap();
        admin.close().await.unwrap();
        let options = base.options([("search_path", schema.as_str())]);
        let store = GarageStore::connect_postgres_with(options.clone(), 8, plate_key()).await.unwrap();
        let raw = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
        Some(TestGarage { store, raw: Raw::Postgres(raw), _cleanup: Cleanup::Postgres { url, schema } })
    }

    /// Rows of `table` with `needle` anywhere in any column, read past the store's API.
    pub async fn raw_rows_containing(&self, table: &str, needle: &str) -> i64 {
        let pattern = format!("%{needle}%");
        match &self.raw {
            Raw::Postgres(pool) => {
                let sql = format!("SELECT COUNT(*) FROM {table} t WHERE CAST(t AS TEXT) LIKE $1");
                sqlx::query_scalar(&sql).bind(&pattern).fetch_one(pool).await.unwrap()
            }
            Raw::Sqlite(pool) => {
                let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info($1)")
                    .bind(table)
                    .fetch_all(pool)
                    .await
                    .unwrap();
                assert!(!columns.is_empty(), "no table {table}");
                let any = columns.iter().map(|c| format!("CAST({c} AS TEXT) LIKE $1")).collect::<Vec<_>>().join(" OR ");
                let sql = format!("SELECT COUNT(*) FROM {table} WHERE {any}");
                sqlx::query_scalar(&sql).bind(&pattern).fetch_one(pool).await.unwrap()
            }
        }
    }
}

impl Drop for Cleanup {
    /// Drops the test's schema even when the test panicked. On a thread of its own, because a
    /// `Drop` cannot await and the test's runtime may be shutting down.
    fn drop(&mut self) {
        let Cleanup::Postgres { url, schema } = self else { return };
        let (url, schema) = (url.clone(), schema.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&url).await?;
                admin.execute(format!("DROP SCHEMA {schema} CASCADE").as_str()).await?;
                admin.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema: {dropped:?}");
        }
    }
}

/// Turns `body(TestGarage)` into a test per backend. The runtime has two workers so the
/// concurrency bodies really race.
macro_rules! conformance {
    ($($body:ident),* $(,)?) => {$(
        mod $body {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                super::$body(crate::conformance::TestGarage::sqlite().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                if let Some(garage) = crate::conformance::TestGarage::postgres().await {
                    super::$body(garage).await;
                }
            }
        }
    )*};
}
pub(crate) use conformance;

pub fn plate_key() -> PlateKey {
    PlateKey::new(b"conformance-suite-plate-key-32by").unwrap()
}

pub fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, minute, 0).unwrap()
}

pub fn plate(raw: &str) -> Plate {
    Plate::parse(raw).unwrap()
}

/// €3 per started hour, at most €20 a day.
pub fn tariff() -> Tariff {
    Tariff::from_toml(
        r#"
        currency = "EUR"
        daily_max_minor = 2000
        [[bands]]
        name = "hourly"
        from_minute = 0
        every_minutes = 60
        price_minor = 300
        "#,
    )
    .unwrap()
}

/// Distinct ids from a counter: the store needs only that they differ.
pub fn session_id(n: u8) -> SessionId {
    SessionId::from_bytes([n; 16])
}

pub fn driver_id(n: u8) -> DriverId {
    DriverId::from_bytes([n; 16])
}

pub fn driver(n: u8, plates: &[&str]) -> Driver {
    let mut driver = Driver::new(driver_id(n), PaymentMethodToken::parse(&format!("pm_test_{n}")).unwrap());
    for raw in plates {
        driver.add_plate(plate(raw)).unwrap();
    }
    driver
}

pub fn unregistered_session(n: u8, raw_plate: &str, entry: DateTime<Utc>) -> ParkingSession {
    ParkingSession::open(
        session_id(n),
        plate(raw_plate),
        entry,
        Payer::Unregistered { link: LinkToken::from_bytes([n; 16]) },
    )
}

/// `session` closed at `exit` at the test tariff's price.
pub fn exited(session: &ParkingSession, exit: DateTime<Utc>) -> ParkingSession {
    let mut closed = session.clone();
    let price = tariff().price(&session.stay(exit));
    closed.apply(valet_garage::SessionEvent::Exit(valet_garage::Exit { at: exit, price })).unwrap();
    closed
}

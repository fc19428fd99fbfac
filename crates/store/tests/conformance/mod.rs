//! One conformance suite for [`GarageStore`], run against SQLite (a temporary file) and
//! PostgreSQL (a fresh schema per test; skipped with a printed reason when unreachable).
//!
//! Each body in `sessions.rs`, `charges.rs` and `records.rs` takes a [`TestGarage`]; the
//! [`conformance!`] macro turns it into `<body>::on_sqlite` and `<body>::on_postgres`.

mod calibration;
mod cameras;
mod charges;
mod drivers;
mod inbox;
mod lanes;
mod lots;
mod mail;
mod records;
mod sessions;

use chrono::{DateTime, TimeZone, Utc};
use valet_garage::{Driver, DriverId, LinkToken, ParkingSession, Payer, PaymentMethodToken, Plate, SessionId, Tariff};
use valet_store::scratch::{RawPool, ScratchGarage};
use valet_store::{GarageStore, PlateKey};

/// A garage on a database of its own (dropped with it), and a side door to the raw rows.
pub struct TestGarage {
    pub store: GarageStore,
    scratch: ScratchGarage,
}

impl TestGarage {
    pub async fn sqlite() -> TestGarage {
        let scratch = ScratchGarage::sqlite(plate_key()).await.unwrap();
        TestGarage { store: scratch.store.clone(), scratch }
    }

    /// A garage in a schema made for this test alone, or `None` (after saying why) when no
    /// PostgreSQL answers.
    pub async fn postgres() -> Option<TestGarage> {
        match ScratchGarage::postgres(plate_key(), "valet_test").await {
            Ok(scratch) => Some(TestGarage { store: scratch.store.clone(), scratch }),
            Err(why) => {
                eprintln!("skipping: {why}");
                None
            }
        }
    }

    /// Rows of `table` with `needle` anywhere in any column, read past the store's API.
    pub async fn raw_rows_containing(&self, table: &str, needle: &str) -> i64 {
        let pattern = format!("%{needle}%");
        match &self.scratch.raw {
            RawPool::Postgres(pool) => {
                let sql = format!("SELECT COUNT(*) FROM {table} t WHERE CAST(t AS TEXT) LIKE $1");
                sqlx::query_scalar(&sql).bind(&pattern).fetch_one(pool).await.unwrap()
            }
            RawPool::Sqlite(pool) => {
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

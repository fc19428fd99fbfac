//! What every gate test needs: a garage on SQLite or PostgreSQL, a ledger with a driver who has
//! a saved card, a fixed clock, and plate reads.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use valet_billing::{Biller, ChargeLog, LedgerGateway, PaymentGateway};
use valet_garage::{
    Barrier, CameraId, Currency, Direction, Driver, DriverId, GateConfig, Money, Plate, PlateRead, Tariff,
};
use valet_gate::{FixedClock, GateService, RandomIds, StoreChargeLog};
use valet_store::scratch::ScratchGarage;
use valet_store::{GarageStore, PlateKey};

/// A garage store on a database of its own, dropped with the test.
pub struct TestStore {
    pub store: GarageStore,
    _scratch: ScratchGarage,
}

impl TestStore {
    pub async fn sqlite() -> TestStore {
        let scratch = ScratchGarage::sqlite(plate_key()).await.unwrap();
        TestStore { store: scratch.store.clone(), _scratch: scratch }
    }

    /// A store in a schema made for this test alone, or `None` (after saying why) when no
    /// PostgreSQL answers.
    pub async fn postgres() -> Option<TestStore> {
        match ScratchGarage::postgres(plate_key(), "valet_gate_test").await {
            Ok(scratch) => Some(TestStore { store: scratch.store.clone(), _scratch: scratch }),
            Err(why) => {
                eprintln!("skipping: {why}");
                None
            }
        }
    }
}

/// Turns `body(TestStore)` into a test per database. Two workers, so concurrent exits race.
macro_rules! on_both_databases {
    ($($body:ident),* $(,)?) => {$(
        mod $body {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                super::$body(crate::support::TestStore::sqlite().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                if let Some(store) = crate::support::TestStore::postgres().await {
                    super::$body(store).await;
                }
            }
        }
    )*};
}
pub(crate) use on_both_databases;

pub fn plate_key() -> PlateKey {
    PlateKey::new(b"gate-service-tests-plate-key-32b").unwrap()
}

pub fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, hour, minute, 0).unwrap()
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

pub fn config() -> GateConfig {
    GateConfig {
        review_below_confidence: 0.6,
        when_unsure: Barrier::Hold,
        show_fee_below: Money::new(5000, Currency::EUR),
        leave_within_minutes: 10,
    }
}

/// A confident read of `text` at `at`.
pub fn read(text: &str, direction: Direction, at: DateTime<Utc>) -> PlateRead {
    let camera = CameraId(format!("{direction:?}-lane-1").to_lowercase());
    PlateRead { text: text.to_owned(), confidence: 0.97, candidates: Vec::new(), camera, direction, at }
}

/// A gate service on `store` with the ledger as its provider, the store as its charge log and the
/// clock at 08:00.
pub fn gate(store: &GarageStore) -> (GateService<LedgerGateway>, Arc<FixedClock>) {
    gate_with_log(store, StoreChargeLog::new(store.clone()))
}

pub fn gate_with_log<L: ChargeLog>(store: &GarageStore, log: L) -> (GateService<LedgerGateway, L>, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::new(at(8, 0)));
    let biller = Biller::new(LedgerGateway::new(), log);
    let gate = GateService::with_biller(store.clone(), biller, tariff(), config(), clock.clone(), Arc::new(RandomIds));
    (gate, clock)
}

/// Signs a driver up as the garage does: a ledger customer, a saved card, the account stored.
pub async fn sign_up<L: ChargeLog>(gate: &GateService<LedgerGateway, L>, n: u8, plates: &[&str]) -> Driver {
    let ledger = gate.biller().gateway();
    let id = DriverId::from_bytes([n; 16]);
    let customer = ledger.create_customer(id).await.unwrap();
    let setup = ledger.start_card_setup(&customer).await.unwrap();
    let method = ledger.saved_payment_method(&setup.id).await.unwrap();
    let mut driver = Driver::new(id, method);
    for raw in plates {
        driver.add_plate(plate(raw)).unwrap();
    }
    gate.store().register_driver(&driver, at(7, 0)).await.unwrap();
    driver
}

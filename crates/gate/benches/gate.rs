//! Guards the gate's latency through the service layer: entry (look up, decide, open), the exit
//! decision (look up, decide, price, close: what the barrier waits for) and the whole exit (that,
//! then charge on the ledger and the receipt) on SQLite (a temporary file) and
//! on PostgreSQL (skipped with a printed reason when unreachable). Prints decisions per second and
//! median / p99 latency; a plain table rather than criterion, which reports no p99.
//!
//! `cargo bench -p valet-gate --bench gate [-- CARS]` (default 2000 cars per database).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use valet_billing::{LedgerGateway, PaymentGateway};
use valet_garage::{
    Barrier, CameraId, Currency, Direction, Driver, DriverId, ExitOutcome, GateConfig, Money, Plate, PlateRead, Tariff,
};
use valet_gate::{FixedClock, GateService};
use valet_store::scratch::ScratchGarage;
use valet_store::{GarageStore, PlateKey};

fn main() {
    let cars: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(2000);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        println!(
            "{:<10} {:<26} {:>6} {:>12} {:>10} {:>10}",
            "database", "step", "cars", "decisions/s", "median", "p99"
        );
        let sqlite = ScratchGarage::sqlite(plate_key()).await.unwrap();
        run("sqlite", sqlite.store.clone(), cars).await;
        match ScratchGarage::postgres(plate_key(), "valet_gate_bench").await {
            Ok(postgres) => {
                run("postgres", postgres.store.clone(), cars).await;
                postgres.store.close().await;
            }
            Err(reason) => println!("postgres   skipped: {reason}"),
        }
    });
}

async fn run(database: &str, store: GarageStore, cars: usize) {
    let clock = Arc::new(FixedClock::new(at(0)));
    let gate = GateService::new(store, LedgerGateway::new(), tariff(), config(), clock.clone());
    for n in 0..cars {
        sign_up(&gate, n).await;
    }
    let mut entries = Vec::with_capacity(cars);
    for n in 0..cars {
        let read = plate_read(n, Direction::Entry, at(n as i64));
        let started = Instant::now();
        gate.handle_entry(&read).await.unwrap();
        entries.push(started.elapsed());
    }
    let (mut decisions, mut exits) = (Vec::with_capacity(cars), Vec::with_capacity(cars));
    for n in 0..cars {
        // Two to four hours later, so every exit owes and is charged.
        let read = plate_read(n, Direction::Exit, at(n as i64 + 120 + (n as i64 % 120)));
        clock.set(read.at);
        let started = Instant::now();
        // The decision (look up, decide, close: the barrier's answer), then the charge.
        let decided = gate.decide_exit(&read).await.unwrap();
        decisions.push(started.elapsed());
        let handled = gate.settle_exit(decided).await.unwrap();
        exits.push(started.elapsed());
        assert!(matches!(handled.decision.outcome, ExitOutcome::Charge { .. }), "{:?}", handled.decision);
        assert!(handled.receipt.is_some(), "car {n} left without a receipt");
    }
    assert_eq!(gate.biller().gateway().charge_count(), cars);
    report(database, "entry → open session", &mut entries);
    report(database, "exit decision → close", &mut decisions);
    report(database, "exit → charge → receipt", &mut exits);
}

fn report(database: &str, step: &str, latencies: &mut [Duration]) {
    latencies.sort();
    let total: Duration = latencies.iter().sum();
    let per_second = latencies.len() as f64 / total.as_secs_f64();
    let quantile = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    println!(
        "{database:<10} {step:<26} {:>6} {per_second:>12.0} {:>10} {:>10}",
        latencies.len(),
        ms(quantile(0.5)),
        ms(quantile(0.99))
    );
}

async fn sign_up(gate: &GateService<LedgerGateway>, n: usize) {
    let ledger = gate.biller().gateway();
    let mut id = [0u8; 16];
    id[8..].copy_from_slice(&(n as u64 + 1).to_be_bytes());
    let id = DriverId::from_bytes(id);
    let customer = ledger.create_customer(id).await.unwrap();
    let setup = ledger.start_card_setup(&customer).await.unwrap();
    let mut driver = Driver::new(id, ledger.saved_payment_method(&setup.id).await.unwrap());
    driver.add_plate(plate(n)).unwrap();
    gate.store().register_driver(&driver, at(0)).await.unwrap();
}

/// Distinct plates whose letters stay fixed, so no two share a confusion-folded key.
fn plate(n: usize) -> Plate {
    Plate::parse(&format!("GT{n:05}")).unwrap()
}

fn plate_read(n: usize, direction: Direction, at: DateTime<Utc>) -> PlateRead {
    let camera = CameraId("bench-lane".into());
    PlateRead { text: plate(n).display().to_owned(), confidence: 0.97, candidates: Vec::new(), camera, direction, at }
}

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 6, 0, 0).unwrap() + TimeDelta::minutes(minute)
}

fn plate_key() -> PlateKey {
    PlateKey::new(b"gate-benchmark-plate-key-32bytes").unwrap()
}

fn tariff() -> Tariff {
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

fn config() -> GateConfig {
    GateConfig {
        review_below_confidence: 0.6,
        when_unsure: Barrier::Hold,
        show_fee_below: Money::new(5000, Currency::EUR),
        leave_within_minutes: 10,
    }
}
